/* tests/gate/test_zone.c - canonical name order (RFC 4034 6.1), type
 * bitmaps (4.1.2), classes and EDE codes, and the loader on fixtures. */
#include "gate/internal.h"
#include "tests/gate/tap.h"

#include <string.h>

static ldns_rdf *dn(const char *s)
{
    ldns_rdf *r = NULL;
    ldns_str2rdf_dname(&r, s);
    ldns_dname2canonical(r);
    return r;
}

static int cmp(const char *a, const char *b)
{
    ldns_rdf *x = dn(a), *y = dn(b);
    int c = name_cmp(ldns_rdf_data(x), ldns_rdf_data(y));
    int l = ldns_dname_compare(x, y); /* libldns as the reference */
    ldns_rdf_deep_free(x);
    ldns_rdf_deep_free(y);
    return (c > 0) - (c < 0) == (l > 0) - (l < 0) ? (c > 0) - (c < 0) : 99;
}

int main(void)
{
    /* RFC 4034 6.1 example order */
    const char *order[] = {"example.", "a.example.", "yljkjljk.a.example.",
                           "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.",
                           "\\001.z.example.", "*.z.example.",
                           "\\200.z.example."};
    int sorted = 1;
    for (size_t i = 0; i + 1 < sizeof(order) / sizeof(order[0]); i++)
        sorted &= cmp(order[i], order[i + 1]) == -1;
    tap_ok(sorted, "RFC 4034 6.1 example is in canonical order");
    tap_ok(cmp("A.tld.", "a.tld.") == 0, "case does not matter");
    ldns_rdf *a = dn("x.y.tld."), *b = dn("tld."), *c = dn("xtld.");
    tap_ok(name_is_sub(ldns_rdf_data(a), ldns_rdf_data(b)), "x.y.tld. is below tld.");
    tap_ok(!name_is_sub(ldns_rdf_data(c), ldns_rdf_data(b)), "xtld. is not below tld.");
    tap_ok(name_labels(ldns_rdf_data(a)) == 3, "x.y.tld. has 3 labels");
    ldns_rdf_deep_free(a);
    ldns_rdf_deep_free(b);
    ldns_rdf_deep_free(c);

    uint16_t types[] = {1, 2, 6, 46, 47, 257};
    uint8_t bm[8704];
    size_t n = bitmap_build(types, 6, bm);
    /* window 0: 6 bytes (up to type 47), window 1: 1 byte (type 257) */
    tap_ok(n == 2 + 6 + 2 + 1 && bm[0] == 0 && bm[1] == 6 && bm[8] == 1 &&
               bm[9] == 1 && bm[10] == 0x40,
           "bitmap windows and lengths");
    tap_ok(bitmap_has(bm, n, 46) && bitmap_has(bm, n, 257) &&
               !bitmap_has(bm, n, 28) && !bitmap_has(bm, n, 258),
           "bitmap membership");

    tap_ok(strcmp(gate_class_name(GATE_C_BOGUS_SIGNATURE), "bogus-signature") == 0 &&
               gate_class_ede(GATE_C_BOGUS_SIGNATURE) == 6,
           "bogus-signature is EDE 6 (DNSSEC Bogus)");
    tap_ok(gate_class_ede(GATE_C_EXPIRED_SIGNATURE) == 7 &&
               gate_class_ede(GATE_C_NOT_YET_VALID_SIGNATURE) == 8 &&
               gate_class_ede(GATE_C_MISSING_SIGNATURE) == 10 &&
               gate_class_ede(GATE_C_UNKNOWN_KEY) == 9 &&
               gate_class_ede(GATE_C_NSEC3_CHAIN) == 12,
           "EDE codes of the RFC 8914 registry");

    const char *src = getenv("ZG_SRC");
    char path[4096];
    gate_diag_t diag = {{0}};
    struct gate_zone *z = NULL;
    snprintf(path, sizeof(path), "%s/tests/data/gate/tld.zone", src ? src : ".");
    tap_ok(gate_zone_load(&z, path, "tld.", 1, &diag) == 0, "template loads");
    tap_ok(z && gate_zone_serial(z) == 2026050501, "serial read");
    tap_ok(z && gate_zone_records(z) == 18, "18 records");
    if (z) {
        int cut = 0, occl = 0;
        for (size_t i = 0; i < z->nnames; i++) {
            cut += !!(z->names[i].flags & GATE_N_CUT);
            occl += !!(z->names[i].flags & GATE_N_OCCLUDED);
        }
        tap_ok(cut == 4 && occl == 1, "4 delegations, 1 glue name");
    }
    gate_zone_free(z);
    z = NULL;
    snprintf(path, sizeof(path), "%s/tests/data/gate/malformed-rdata.exit2.zone",
             src ? src : ".");
    int err = gate_zone_load(&z, path, "tld.", 1, &diag);
    tap_ok(err == GATE_ERR_SYNTAX && z == NULL && strstr(diag.msg, ".zone:6: "),
           "malformed rdata: error with FILE:LINE, no zone");
    return tap_done();
}

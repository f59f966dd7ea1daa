/* tests/signer/test_name.c - sort keys and canonical order (RFC 4034 6.1),
 * through the zone's own sort. */
#include <stdlib.h>

#include "signer/internal.h"
#include "tests/lib/tap.h"
#include "tests/signer/wire.h"

int main(void)
{
    /* RFC 4034 6.1 example, in canonical order */
    const char *order[] = {"example.", "a.example.", "yljkjljk.a.example.",
                           "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.",
                           "\001.z.example.", "*.z.example.",
                           "\200.z.example."};
    size_t n = sizeof(order) / sizeof(order[0]);
    uint8_t w[256], key[KEY_MAX], back[256];
    zone_t z;
    wire("example.", w);
    zone_init(&z, w, wire("example.", w));
    /* add in reverse so the sort has work to do */
    for (size_t i = n; i-- > 0;) {
        size_t l = wire(order[i], w);
        uint8_t rd[4] = {192, 0, 2, (uint8_t)i};
        ok(zone_add(&z, w, l, T_A, 60, rd, 4, 1, 0, 0) == 0, "add %zu", i);
    }
    /* a second record at example. with smaller RDATA must sort first */
    {
        size_t l = wire("example.", w);
        uint8_t rd[4] = {1, 0, 0, 0};
        zone_add(&z, w, l, T_A, 60, rd, 4, 1, 0, 0);
    }
    ok(zone_sort(&z) == 0, "sort");
    ok(z.n == n + 1, "count");
    rec_t r;
    rec_at(&z, 0, &r);
    ok(r.rdata[0] == 1, "RDATA order inside an RRset (RFC 4034 6.3)");
    for (size_t i = 0; i < n; i++) {
        rec_at(&z, i + 1, &r);
        size_t l = wire(order[i], w);
        name_lower(w);
        size_t bl = key_to_wire(r.key, r.klen, back);
        ok(bl == l && memcmp(back, w, l) == 0, "position %zu is %s", i + 1,
           order[i]);
    }
    /* key round trip with 0x00 and 0x01 bytes inside labels */
    uint8_t odd[] = {3, 0, 1, 'A', 1, 1, 0};
    size_t kl = name_to_key(odd, sizeof(odd), key);
    size_t bl = key_to_wire(key, kl, back);
    uint8_t oddl[] = {3, 0, 1, 'a', 1, 1, 0};
    ok(bl == sizeof(oddl) && memcmp(back, oddl, bl) == 0,
       "key round trip with escaped octets");
    ok(key_labels(key, kl) == 2, "key_labels");
    ok(name_labels(odd) == 2, "name_labels");
    /* ancestry by key prefix */
    uint8_t k1[KEY_MAX], k2[KEY_MAX], k3[KEY_MAX];
    size_t l1 = name_to_key(w, wire("a.example.", w), k1);
    size_t l2 = name_to_key(w, wire("b.a.example.", w), k2);
    size_t l3 = name_to_key(w, wire("ab.example.", w), k3);
    ok(key_under(k1, l1, k2, l2), "a.example is an ancestor of b.a.example");
    ok(!key_under(k1, l1, k3, l3), "a.example is not an ancestor of ab.example");
    ok(key_parent_len(k2, l2) == l1, "parent of b.a.example");
    char text[1100];
    uint8_t esc[] = {4, 'a', '.', ' ', 0xff, 0};
    name_to_text(esc, text);
    ok(strcmp(text, "a\\.\\032\\255.") == 0, "escaped presentation: %s", text);
    zone_free(&z);
    return done_testing();
}

/*
 * gate/denial.c - authenticated denial of existence: pick the zone's
 * chain (NSEC3, RFC 5155, in nsec3.c; NSEC, RFC 4034 4 and RFC 4035 2.3,
 * in nsec.c), and the type bitmap helpers both use (RFC 4034 4.1.2).
 */
#include "gate/internal.h"

#include <string.h>

int bitmap_has(const uint8_t *bm, size_t len, uint16_t type)
{
    size_t p = 0;
    while (p + 2 <= len) {
        uint8_t win = bm[p], blen = bm[p + 1];
        if (p + 2 + blen > len)
            return 0;
        if (win == type >> 8) {
            unsigned bit = type & 0xff;
            return bit / 8 < blen && (bm[p + 2 + bit / 8] & (0x80 >> (bit % 8)));
        }
        p += 2 + (size_t)blen;
    }
    return 0;
}

size_t bitmap_build(const uint16_t *types, size_t n, uint8_t *out)
{
    uint8_t win[256][32];
    int maxb[256];
    memset(maxb, -1, sizeof(maxb));
    for (size_t i = 0; i < n; i++) {
        unsigned w = types[i] >> 8, b = types[i] & 0xff;
        if (maxb[w] < 0) /* first type of this window: clear it now */
            memset(win[w], 0, sizeof(win[w]));
        win[w][b / 8] |= (uint8_t)(0x80 >> (b % 8));
        if ((int)(b / 8) > maxb[w])
            maxb[w] = (int)(b / 8);
    }
    size_t len = 0;
    for (unsigned w = 0; w < 256; w++) {
        if (maxb[w] < 0)
            continue;
        out[len++] = (uint8_t)w;
        out[len++] = (uint8_t)(maxb[w] + 1);
        memcpy(out + len, win[w], (size_t)maxb[w] + 1);
        len += (size_t)maxb[w] + 1;
    }
    return len;
}

void denial_check(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    int has_nsec = 0, has_nsec3 = 0;
    for (size_t i = 0; i < z->nrrsets; i++) {
        if (z->rrsets[i].type == LDNS_RR_TYPE_NSEC)
            has_nsec = 1;
        if (z->rrsets[i].type == LDNS_RR_TYPE_NSEC3 ||
            z->rrsets[i].type == LDNS_RR_TYPE_NSEC3PARAM)
            has_nsec3 = 1;
    }
    const uint8_t *apex = ldns_rdf_data(z->origin);
    if (has_nsec && has_nsec3)
        result_add_owner(r, GATE_C_NSEC3_CHAIN, apex, LDNS_RR_TYPE_NSEC,
                         "zone has both NSEC and NSEC3 records");
    if (has_nsec3)
        nsec3_check(r);
    else if (has_nsec)
        nsec_check(r);
    else if (z->dnskey_rrset >= 0)
        result_add_owner(r, GATE_C_NSEC3_CHAIN, apex, LDNS_RR_TYPE_NSEC3,
                         "signed zone has no NSEC or NSEC3 chain");
}

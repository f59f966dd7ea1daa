/*
 * gate/zonemd.c - ZONEMD (RFC 8976): when the apex holds ZONEMD records,
 * each with a supported scheme (1, SIMPLE) and hash (1 SHA-384,
 * 2 SHA-512) must carry the SOA serial and the digest of the zone in
 * canonical order (3.3.1), the apex ZONEMD RRset and RRSIGs covering it
 * left out (3.3.1.1).  Digests with OpenSSL EVP.
 */
#include "gate/internal.h"

#include <string.h>

static int excluded(const struct gate_zone *z, const gate_rec_t *rec)
{
    if (rec->name != z->recs[0].name &&
        name_cmp(rec_name(z, rec), ldns_rdf_data(z->origin)) != 0)
        return 0;
    if (rec->type == LDNS_RR_TYPE_ZONEMD)
        return 1;
    const uint8_t *rd = rec_rdata(z, rec);
    return rec->type == LDNS_RR_TYPE_RRSIG && rec->rdlen >= 2 &&
           (rd[0] << 8 | rd[1]) == LDNS_RR_TYPE_ZONEMD;
}

static int digest_zone(const struct gate_zone *z, const EVP_MD *md,
                       uint8_t *out, unsigned *olen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1;
    for (size_t i = 0; ok && i < z->nrecs; i++) {
        const gate_rec_t *rec = &z->recs[i];
        if (excluded(z, rec))
            continue;
        uint8_t hdr[10] = {rec->type >> 8, rec->type & 0xff, 0, 1,
                           rec->ttl >> 24, (rec->ttl >> 16) & 0xff,
                           (rec->ttl >> 8) & 0xff, rec->ttl & 0xff,
                           rec->rdlen >> 8, rec->rdlen & 0xff};
        ok = EVP_DigestUpdate(ctx, rec_name(z, rec), rec->namelen) == 1 &&
             EVP_DigestUpdate(ctx, hdr, 10) == 1 &&
             EVP_DigestUpdate(ctx, rec_rdata(z, rec), rec->rdlen) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, olen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

void zonemd_check(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    int64_t s = zone_find_rrset(z, 0, LDNS_RR_TYPE_ZONEMD);
    if (s < 0 || !(z->names[0].flags & GATE_N_APEX))
        return;
    const gate_rrset_t *set = &z->rrsets[s];
    for (uint32_t k = 0; k < set->count; k++) {
        const gate_rec_t *rec = &z->recs[set->first + k];
        const uint8_t *rd = rec_rdata(z, rec);
        if (rec->rdlen < 6) {
            result_add(r, GATE_C_ZONEMD, GATE_FAIL, set->first + k,
                       LDNS_RR_TYPE_ZONEMD, 0, 0, "malformed ZONEMD");
            continue;
        }
        uint32_t serial = (uint32_t)rd[0] << 24 | (uint32_t)rd[1] << 16 |
                          (uint32_t)rd[2] << 8 | rd[3];
        const EVP_MD *md = rd[5] == 1 ? EVP_sha384() : rd[5] == 2 ? EVP_sha512()
                                                                  : NULL;
        if (rd[4] != 1 || !md) {
            result_add(r, GATE_C_ZONEMD, GATE_UNCHECKED, set->first + k,
                       LDNS_RR_TYPE_ZONEMD, 0, 0,
                       "ZONEMD scheme or hash algorithm not supported");
            continue;
        }
        if (serial != z->serial) {
            result_add(r, GATE_C_ZONEMD, GATE_FAIL, set->first + k,
                       LDNS_RR_TYPE_ZONEMD, 0, 0,
                       "ZONEMD serial differs from the SOA serial");
            continue;
        }
        uint8_t dig[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        if (digest_zone(z, md, dig, &dlen) < 0) {
            result_add(r, GATE_C_ZONEMD, GATE_UNCHECKED, set->first + k,
                       LDNS_RR_TYPE_ZONEMD, 0, 0, "digest failed");
            continue;
        }
        if (rec->rdlen - 6u != dlen || memcmp(rd + 6, dig, dlen) != 0)
            result_add(r, GATE_C_ZONEMD, GATE_FAIL, set->first + k,
                       LDNS_RR_TYPE_ZONEMD, 0, 0,
                       "ZONEMD digest does not match the zone");
    }
}

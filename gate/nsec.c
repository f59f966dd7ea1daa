/*
 * gate/nsec.c - the NSEC chain (RFC 4034 4, RFC 4035 2.3): every
 * authoritative name and delegation point has exactly one NSEC, whose
 * next name is the next such name in canonical order (the last points to
 * the apex), and whose bitmap lists the types present (at a delegation:
 * NS, DS, NSEC, RRSIG only).  Glue and occluded names have none.
 * Findings: nsec-chain (bitmap faults included).
 */
#include "gate/internal.h"

#include <ctype.h>
#include <string.h>

static int needs_nsec(const gate_name_t *n)
{
    return !(n->flags & (GATE_N_OCCLUDED | GATE_N_HASHED));
}

/* Types the bitmap must list at name i (sorted). */
static size_t types_at(const struct gate_zone *z, size_t i, uint16_t *t)
{
    const gate_name_t *n = &z->names[i];
    size_t c = 0;
    for (uint32_t k = 0; k < n->nrrsets && c < 512; k++) {
        uint16_t ty = z->rrsets[n->first_rrset + k].type;
        if ((n->flags & GATE_N_CUT) && ty != LDNS_RR_TYPE_NS &&
            ty != LDNS_RR_TYPE_DS && ty != LDNS_RR_TYPE_NSEC &&
            ty != LDNS_RR_TYPE_RRSIG)
            continue;
        t[c++] = ty;
    }
    return c;
}

size_t denial_types_at(const struct gate_zone *z, size_t i, uint16_t *t)
{
    return types_at(z, i, t);
}

static void check_one(struct gate_result *r, size_t i, size_t next)
{
    const struct gate_zone *z = r->zone;
    int64_t s = zone_find_rrset(z, i, LDNS_RR_TYPE_NSEC);
    const uint8_t *owner = rec_name(z, &z->recs[z->names[i].rec]);
    if (s < 0) {
        result_add_owner(r, GATE_C_NSEC_CHAIN, owner, LDNS_RR_TYPE_NSEC,
                         "name has no NSEC record");
        return;
    }
    const gate_rrset_t *set = &z->rrsets[s];
    const gate_rec_t *rec = &z->recs[set->first];
    if (set->count != 1) {
        result_add(r, GATE_C_NSEC_CHAIN, GATE_FAIL, set->first,
                   LDNS_RR_TYPE_NSEC, 0, 0, "more than one NSEC at a name");
        return;
    }
    const uint8_t *rd = rec_rdata(z, rec);
    uint8_t nx[256];
    size_t nl = 0;
    while (nl < rec->rdlen && rd[nl] && nl + rd[nl] + 1 < rec->rdlen)
        nl += rd[nl] + 1;
    nl++;
    if (nl > rec->rdlen || nl > 255) {
        result_add(r, GATE_C_NSEC_CHAIN, GATE_FAIL, set->first,
                   LDNS_RR_TYPE_NSEC, 0, 0, "malformed NSEC rdata");
        return;
    }
    /* RFC 6840 5.1: the next name is not lower-cased in canonical form */
    for (size_t k = 0; k < nl; k++)
        nx[k] = (uint8_t)tolower(rd[k]);
    const uint8_t *want = rec_name(z, &z->recs[z->names[next].rec]);
    if (name_cmp(nx, want) != 0)
        result_add(r, GATE_C_NSEC_CHAIN, GATE_FAIL, set->first,
                   LDNS_RR_TYPE_NSEC, 0, 0,
                   "next domain name is not the next name in the zone");
    uint16_t t[512];
    uint8_t bm[8704];
    size_t bl = bitmap_build(t, types_at(z, i, t), bm);
    if (bl != rec->rdlen - nl || memcmp(bm, rd + nl, bl) != 0)
        result_add(r, GATE_C_NSEC_CHAIN, GATE_FAIL, set->first,
                   LDNS_RR_TYPE_NSEC, 0, 0,
                   "type bitmap disagrees with the types at the name");
}

void nsec_check(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    size_t first = SIZE_MAX, prev = SIZE_MAX;
    for (size_t i = 0; i < z->nnames; i++) {
        const gate_name_t *n = &z->names[i];
        if (!needs_nsec(n)) {
            int64_t s = zone_find_rrset(z, i, LDNS_RR_TYPE_NSEC);
            if (s >= 0)
                result_add(r, GATE_C_NSEC_CHAIN, GATE_FAIL,
                           z->rrsets[s].first, LDNS_RR_TYPE_NSEC, 0, 0,
                           "NSEC at glue or occluded name");
            continue;
        }
        if (first == SIZE_MAX)
            first = i;
        if (prev != SIZE_MAX)
            check_one(r, prev, i);
        prev = i;
    }
    if (prev != SIZE_MAX)
        check_one(r, prev, first);
}

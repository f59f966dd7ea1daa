/*
 * gate/coverage.c - which RRsets must be signed and are: every
 * authoritative RRset (and DS at a delegation) has at least one RRSIG
 * (RFC 4035 2.2, missing-signature), and one for every algorithm of the
 * apex DNSKEY RRset (RFC 4035 2.2, RFC 6840 5.11, algorithm-coverage).
 * RRSIGs that exist but fail are reported by rrsig.c under their own
 * class, so one fault gives one class.  Unsigned non-authoritative data
 * is checked in rrsig.c (signed-non-authoritative).
 */
#include "gate/internal.h"

#include <stdlib.h>

void coverage_check(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    uint8_t algs[8];
    int nalg = 0;
    for (size_t k = 0; k < r->nkeys; k++) {
        if (!(r->keys[k].flags & 0x0100))
            continue;
        int seen = 0;
        for (int a = 0; a < nalg; a++)
            seen |= algs[a] == r->keys[k].alg;
        if (!seen && nalg < 8)
            algs[nalg++] = r->keys[k].alg;
    }
    if (nalg == 0)
        return; /* no DNSKEY: trust.c reports it */
    uint8_t *any = calloc(z->nrrsets ? z->nrrsets : 1, 1);
    if (!any) {
        r->oom = 1;
        return;
    }
    for (size_t i = 0; i < r->nsigs; i++) {
        if (r->sig_rrset[i] == UINT32_MAX)
            continue;
        const gate_rec_t *rec = &z->recs[r->sigs[i]];
        if (rec->rdlen < 3)
            continue;
        uint8_t alg = rec_rdata(z, rec)[2];
        for (int a = 0; a < nalg; a++)
            if (algs[a] == alg)
                any[r->sig_rrset[i]] |= (uint8_t)(1u << a);
    }
    for (size_t s = 0; s < z->nrrsets; s++) {
        const gate_rrset_t *set = &z->rrsets[s];
        if (!set->auth)
            continue;
        r->rrsets_checked++;
        if (!any[s]) {
            result_add(r, GATE_C_MISSING_SIGNATURE, GATE_FAIL, set->first,
                       set->type, 0, 0, "authoritative RRset has no RRSIG");
            continue;
        }
        for (int a = 0; a < nalg; a++)
            if (!(any[s] & (1u << a)))
                result_add(r, GATE_C_ALGORITHM_COVERAGE, GATE_FAIL,
                           set->first, set->type, 0, algs[a],
                           "no RRSIG of this DNSKEY algorithm");
    }
    free(any);
}

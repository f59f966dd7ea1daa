/*
 * gate/transition.c - --previous: the change from the zone released
 * before must not break validation for caching resolvers (RFC 7583,
 * RFC 6781 4.1).  This first version checks that the SOA serial
 * increases (RFC 1982) and that every key that signed the previous zone
 * is still published in the candidate's DNSKEY RRset.  The fuller
 * timing model (TTLs, --previous-time, the release history) comes later.
 */
#include "gate/internal.h"

#include <stdlib.h>

int transition_check(struct gate_result *r, gate_diag_t *diag)
{
    const struct gate_zone *z = r->zone;
    struct gate_zone *p = NULL;
    char origin[1100];
    zone_name_str(ldns_rdf_data(z->origin), origin, sizeof(origin));
    int err = gate_zone_load(&p, r->opts->previous_file, origin,
                             r->opts->threads, diag);
    if (err < 0)
        return err;
    const uint8_t *apex = ldns_rdf_data(z->origin);
    if ((int32_t)(z->serial - p->serial) <= 0)
        result_add_owner(r, GATE_C_UNSAFE_TRANSITION, apex, LDNS_RR_TYPE_SOA,
                         "SOA serial does not increase over --previous");
    /* keys that signed the previous zone, each reported once */
    uint32_t *seen = NULL;
    size_t nseen = 0;
    for (size_t i = 0; i < p->nrecs; i++) {
        const gate_rec_t *rec = &p->recs[i];
        if (rec->type != LDNS_RR_TYPE_RRSIG || rec->rdlen < 18)
            continue;
        const uint8_t *rd = rec_rdata(p, rec);
        uint32_t id = (uint32_t)rd[2] << 16 | (uint32_t)rd[16] << 8 | rd[17];
        int dup = 0;
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = seen[k] == id;
        if (dup)
            continue;
        uint32_t *n = realloc(seen, (nseen + 1) * sizeof(*n));
        if (!n) {
            r->oom = 1;
            break;
        }
        seen = n;
        seen[nseen++] = id;
        int published = 0;
        for (size_t k = 0; k < r->nkeys; k++)
            published |= r->keys[k].alg == rd[2] &&
                         r->keys[k].tag == (uint16_t)(rd[16] << 8 | rd[17]);
        if (!published)
            result_add(r, GATE_C_UNSAFE_TRANSITION, GATE_FAIL, -1,
                       LDNS_RR_TYPE_DNSKEY, (uint16_t)(rd[16] << 8 | rd[17]),
                       rd[2],
                       "key that signed --previous is no longer published");
    }
    free(seen);
    gate_zone_free(p);
    return 0;
}

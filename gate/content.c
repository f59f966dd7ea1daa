/*
 * gate/content.c - --unsigned: the signed zone must carry exactly the
 * unsigned input's records (RFC 4035 2: signing adds DNSKEY, RRSIG, NSEC,
 * NSEC3, NSEC3PARAM and may add ZONEMD; it changes the SOA serial and
 * nothing else).  Glue and occluded data are compared too.  Both zones
 * are read with the same libldns loader and compared in canonical order.
 */
#include "gate/internal.h"

#include <string.h>

static int dnssec_type(uint16_t t)
{
    return t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC ||
           t == LDNS_RR_TYPE_NSEC3 || t == LDNS_RR_TYPE_NSEC3PARAM ||
           t == LDNS_RR_TYPE_DNSKEY || t == LDNS_RR_TYPE_ZONEMD;
}

static int cmp2(const struct gate_zone *a, const gate_rec_t *x,
                const struct gate_zone *b, const gate_rec_t *y)
{
    int c = name_cmp(rec_name(a, x), rec_name(b, y));
    if (c)
        return c;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    const uint8_t *p = rec_rdata(a, x), *q = rec_rdata(b, y);
    size_t lp = x->rdlen, lq = y->rdlen;
    if (x->type == LDNS_RR_TYPE_SOA) {
        /* RFC 1035 3.3.13: compare all but the serial */
        size_t op = name_len(p), oq = name_len(q);
        op += name_len(p + op);
        oq += name_len(q + oq);
        if (op + 20 == lp && oq + 20 == lq && op == oq)
            return memcmp(p, q, op) ? memcmp(p, q, op)
                                    : memcmp(p + op + 4, q + oq + 4, 16);
    }
    size_t m = lp < lq ? lp : lq;
    c = memcmp(p, q, m);
    return c ? c : (lp > lq) - (lp < lq);
}

int content_check(struct gate_result *r, gate_diag_t *diag)
{
    const struct gate_zone *s = r->zone;
    struct gate_zone *u = NULL;
    char origin[1100];
    zone_name_str(ldns_rdf_data(s->origin), origin, sizeof(origin));
    int err = gate_zone_load(&u, r->opts->unsigned_file, origin,
                             r->opts->threads, diag);
    if (err < 0)
        return err;
    size_t i = 0, j = 0;
    while (i < s->nrecs || j < u->nrecs) {
        if (i < s->nrecs && dnssec_type(s->recs[i].type)) {
            i++;
            continue;
        }
        if (j < u->nrecs && dnssec_type(u->recs[j].type)) {
            j++;
            continue;
        }
        int c = i >= s->nrecs ? 1
                : j >= u->nrecs ? -1
                                : cmp2(s, &s->recs[i], u, &u->recs[j]);
        if (c == 0) {
            if (s->recs[i].ttl != u->recs[j].ttl)
                result_add(r, GATE_C_CONTENT_MISMATCH, GATE_FAIL, (int64_t)i,
                           s->recs[i].type, 0, 0,
                           "TTL differs from the unsigned zone");
            i++;
            j++;
        } else if (c < 0) {
            result_add(r, GATE_C_CONTENT_MISMATCH, GATE_FAIL, (int64_t)i,
                       s->recs[i].type, 0, 0,
                       "record not in the unsigned zone");
            i++;
        } else {
            result_add_owner(r, GATE_C_CONTENT_MISMATCH,
                             rec_name(u, &u->recs[j]), u->recs[j].type,
                             "record of the unsigned zone is missing");
            j++;
        }
    }
    gate_zone_free(u);
    return 0;
}

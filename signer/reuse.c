/*
 * signer/reuse.c - --previous: an RRSIG of the previous signed zone is
 * reused when its RRset is unchanged (same records, same TTL), it names the
 * same key (algorithm, key tag), labels, original TTL and signer, it is
 * already valid, and it stays valid longer than the refresh threshold.
 * The signature itself is not re-verified here: the gate verifies every
 * signature of the candidate zone.
 */
#include "signer/internal.h"

/* Does the previous zone hold the RRset [i, e) of the zone unchanged? */
bool reuse_rrset_same(const struct sctx *c, size_t i, size_t e, size_t *pi)
{
    const zone_t *p = c->prev;
    rec_t a, b;
    rec_at(c->z, i, &a);
    size_t j = zone_lower_bound(p, a.key, a.klen, a.type);
    *pi = j;
    for (size_t k = i; k < e; k++, j++) {
        if (j >= p->n)
            return false;
        rec_at(c->z, k, &a);
        rec_at(p, j, &b);
        if (rec_cmp(&a, &b) != 0 || a.ttl != b.ttl)
            return false;
    }
    if (j < p->n) {
        rec_at(p, j, &b);
        if (b.klen == a.klen && memcmp(b.key, a.key, a.klen) == 0 &&
            b.type == a.type)
            return false;
    }
    return true;
}

const uint8_t *reuse_sig_find(const struct sctx *c, const rec_t *first,
                              const struct keyuse *k, uint8_t labels,
                              uint16_t *len)
{
    const zone_t *p = c->prev;
    size_t j = zone_lower_bound(p, first->key, first->klen, T_RRSIG);
    int64_t now = c->o->now;
    for (; j < p->n; j++) {
        rec_t s;
        rec_at(p, j, &s);
        if (s.type != T_RRSIG || s.klen != first->klen ||
            memcmp(s.key, first->key, s.klen) != 0)
            break;
        const uint8_t *rd = s.rdata;
        if (s.rdlen < 18 + c->z->origin_len || get16(rd) != first->type ||
            rd[2] != k->alg || rd[3] != labels ||
            get32(rd + 4) != first->ttl || get16(rd + 16) != k->tag ||
            memcmp(rd + 18, c->z->origin, c->z->origin_len) != 0)
            continue;
        int64_t exp = get32(rd + 8), inc = get32(rd + 12);
        if (inc > now || exp - now <= c->o->refresh)
            continue;
        *len = s.rdlen;
        return rd;
    }
    return NULL;
}


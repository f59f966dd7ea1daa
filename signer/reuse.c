/*
 * signer/reuse.c - --previous: an RRSIG of the previous signed zone is
 * reused when its RRset is unchanged (same records, same TTL), it names the
 * same key (algorithm, key tag), labels, original TTL and signer, it is
 * already valid, and it stays valid longer than the refresh threshold.
 * The previous zone is either parsed from its text (reuse_rrset_same
 * compares records and TTL) or reached through its signature cache
 * (cache.c: the RRset's digest over owner, type, TTL and canonical RDATA
 * must be the one the cached RRSIGs were made over).  The RRSIG checks are
 * the same on both roads.  The signature itself is not re-verified here:
 * the gate verifies every signature of the candidate zone.
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

/* May the RRSIG RDATA RD (LEN octets) stand for key K over the RRset
 * FIRST starts?  Same covered type, key, labels, original TTL and signer;
 * already valid and valid beyond the refresh threshold. */
static bool sig_ok(const struct sctx *c, const uint8_t *rd, size_t len,
                   const rec_t *first, const struct keyuse *k,
                   uint8_t labels)
{
    size_t ol = c->z->origin_len;
    if (len < 18 + ol || get16(rd) != first->type || rd[2] != k->alg ||
        rd[3] != labels || get32(rd + 4) != first->ttl ||
        get16(rd + 16) != k->tag || memcmp(rd + 18, c->z->origin, ol) != 0)
        return false;
    int64_t exp = get32(rd + 8), inc = get32(rd + 12), now = c->o->now;
    return inc <= now && exp - now > c->o->refresh;
}

const uint8_t *reuse_sig_find(const struct sctx *c, const rec_t *first,
                              const struct keyuse *k, uint8_t labels,
                              uint16_t *len)
{
    const zone_t *p = c->prev;
    size_t j = zone_lower_bound(p, first->key, first->klen, T_RRSIG);
    for (; j < p->n; j++) {
        rec_t s;
        rec_at(p, j, &s);
        if (s.type != T_RRSIG || s.klen != first->klen ||
            memcmp(s.key, first->key, s.klen) != 0)
            break;
        if (!sig_ok(c, s.rdata, s.rdlen, first, k, labels))
            continue;
        *len = s.rdlen;
        return s.rdata;
    }
    return NULL;
}

const uint8_t *reuse_cache_find(const struct sctx *c, const cache_sigs_t *it,
                                const rec_t *first, const struct keyuse *k,
                                uint8_t labels, uint16_t *len)
{
    cache_sigs_t s = *it;
    const uint8_t *rd;
    uint16_t l;
    while (cache_sigs_next(&s, &rd, &l) == 0) {
        if (!sig_ok(c, rd, l, first, k, labels))
            continue;
        *len = l;
        return rd;
    }
    return NULL;
}

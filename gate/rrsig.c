/*
 * gate/rrsig.c - every RRSIG in the zone, one at a time (RFC 4035 5.3):
 * a published DNSKEY with its key tag and algorithm (RFC 4034 3.1.6),
 * the fields (labels 3.1.3, original TTL 3.1.4, signer name 3.1.7, type
 * covered 3.1.1), the validity window against --now (3.1.5, serial
 * arithmetic) and the signature itself over the canonical RRset
 * (RFC 4034 3.1.8.1, 6.2, 6.3), tried with every DNSKEY carrying that tag.
 * Stricter than a resolver: each RRSIG must verify on its own.
 * Work is split across --threads; findings are made afterwards in order.
 * Does not decide which RRsets need signatures (coverage.c).
 */
#include "gate/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

int keys_load(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    if (z->dnskey_rrset < 0)
        return 0;
    const gate_rrset_t *s = &z->rrsets[z->dnskey_rrset];
    r->keys = calloc(s->count, sizeof(*r->keys));
    if (!r->keys)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->count; i++) {
        const gate_rec_t *rec = &z->recs[s->first + i];
        const uint8_t *rd = rec_rdata(z, rec);
        if (rec->rdlen < 4)
            continue;
        gate_key_t *k = &r->keys[r->nkeys++];
        k->rec = s->first + i;
        k->flags = (uint16_t)(rd[0] << 8 | rd[1]);
        k->alg = rd[3];
        k->tag = ldns_calc_keytag_raw(rd, rec->rdlen);
        if (crypto_alg_supported(k->alg))
            crypto_pkey_from_dnskey(&k->pkey, rd, rec->rdlen);
    }
    return 0;
}

void keys_free(struct gate_result *r)
{
    crypto_mds_free(r->mds);
    for (size_t i = 0; i < r->nkeys; i++)
        EVP_PKEY_free(r->keys[i].pkey);
    free(r->keys);
    r->keys = NULL;
    r->nkeys = 0;
}

typedef struct {
    uint8_t *p;
    size_t len, cap;
} sbuf_t;

static int sb_put(sbuf_t *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

/* RFC 4034 3.1.8.1: RRSIG rdata without signature, then the RRs. */
static int signed_data(const struct gate_zone *z, const gate_rrset_t *set,
                       const uint8_t *rd, size_t pre, sbuf_t *b)
{
    b->len = 0;
    if (sb_put(b, rd, pre) < 0)
        return -1;
    uint8_t labels = rd[3];
    const gate_rec_t *first = &z->recs[set->first];
    const uint8_t *owner = rec_name(z, first);
    uint8_t wild[256];
    size_t olen = first->namelen;
    if (labels < first->labels) {
        /* RFC 4035 5.3.2: the wildcard owner "*." + rightmost labels */
        const uint8_t *p = owner;
        for (int k = first->labels; k > labels; k--)
            p += p[0] + 1;
        size_t rest = name_len(p);
        wild[0] = 1;
        wild[1] = '*';
        memcpy(wild + 2, p, rest);
        owner = wild;
        olen = rest + 2;
    }
    for (uint32_t i = 0; i < set->count; i++) {
        const gate_rec_t *rec = &z->recs[set->first + i];
        uint8_t hdr[10] = {rec->type >> 8, rec->type & 0xff, 0, 1,
                           rd[4], rd[5], rd[6], rd[7],
                           rec->rdlen >> 8, rec->rdlen & 0xff};
        if (sb_put(b, owner, olen) < 0 || sb_put(b, hdr, 10) < 0 ||
            sb_put(b, rec_rdata(z, rec), rec->rdlen) < 0)
            return -1;
    }
    return 0;
}

/*
 * RFC 6781 4.1.4: while an algorithm is rolled in (or out), its RRSIGs are
 * in the zone without any DNSKEY of that algorithm.  Such an RRSIG counts
 * as verified (SIG_PREPUB) only if it verifies with a key the resolver has
 * seen or will see (history, --previous, --incoming-keys); whether the
 * algorithm then signs every RRset is decided in prepub_coverage.
 */
static uint16_t prepub_verify(struct gate_result *r, const gate_rrset_t *set,
                              const uint8_t *rd, size_t rdlen, size_t pre,
                              sbuf_t *b)
{
    const struct gate_zone *z = r->zone;
    uint8_t alg = rd[2];
    uint16_t tag = (uint16_t)(rd[16] << 8 | rd[17]);
    if (!set || r->nxkeys == 0)
        return SIG_UNKNOWN_KEY;
    for (size_t k = 0; k < r->nkeys; k++)
        if (r->keys[k].alg == alg)
            return SIG_UNKNOWN_KEY; /* the algorithm is published */
    for (size_t k = 0; k < r->nxkeys; k++) {
        const gate_xkey_t *x = &r->xkeys[k];
        if (x->tag != tag || x->alg != alg || !x->pkey)
            continue;
        if (b->len == 0 && signed_data(z, set, rd, pre, b) < 0)
            return SIG_UNKNOWN_KEY;
        if (crypto_verify(x->pkey, alg, b->p, b->len, rd + pre,
                          rdlen - pre) == 1)
            return SIG_VERIFIED | SIG_PREPUB;
    }
    return SIG_UNKNOWN_KEY;
}

/* An algorithm signing without a DNSKEY must sign every authoritative
 * RRset but the DNSKEY RRset (which changes when its key is added, so a
 * signature over today's set helps no resolver); otherwise its RRSIGs
 * stay unknown-key. */
static int prepub_coverage(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    uint8_t algs[256] = {0};
    for (size_t i = 0; i < r->nsigs; i++)
        if (r->sig_status[i] & SIG_PREPUB)
            algs[rec_rdata(z, &z->recs[r->sigs[i]])[2]] = 1;
    uint8_t *cov = malloc(z->nrrsets ? z->nrrsets : 1);
    if (!cov)
        return -ENOMEM;
    for (int a = 0; a < 256; a++) {
        if (!algs[a])
            continue;
        memset(cov, 0, z->nrrsets ? z->nrrsets : 1);
        for (size_t i = 0; i < r->nsigs; i++)
            if ((r->sig_status[i] & SIG_VERIFIED) &&
                r->sig_rrset[i] != UINT32_MAX &&
                rec_rdata(z, &z->recs[r->sigs[i]])[2] == a)
                cov[r->sig_rrset[i]] = 1;
        int full = 1;
        for (size_t s = 0; s < z->nrrsets && full; s++)
            if (z->rrsets[s].auth && !cov[s] &&
                z->rrsets[s].type != LDNS_RR_TYPE_DNSKEY)
                full = 0;
        if (full)
            continue;
        for (size_t i = 0; i < r->nsigs; i++)
            if ((r->sig_status[i] & SIG_PREPUB) &&
                rec_rdata(z, &z->recs[r->sigs[i]])[2] == a)
                r->sig_status[i] = (uint16_t)((r->sig_status[i] &
                                               ~(SIG_PREPUB | SIG_VERIFIED)) |
                                              SIG_UNKNOWN_KEY);
    }
    free(cov);
    return 0;
}

static uint16_t check_one(struct gate_result *r, size_t si, sbuf_t *b,
                          EVP_PKEY_CTX **cache, int16_t *keyout)
{
    const struct gate_zone *z = r->zone;
    const gate_rec_t *rec = &z->recs[r->sigs[si]];
    const uint8_t *rd = rec_rdata(z, rec);
    const uint8_t *origin = ldns_rdf_data(z->origin);
    uint16_t st = 0;
    *keyout = -1;
    if (rec->rdlen < 19)
        return SIG_FIELD;
    size_t slen = name_len(rd + 18);
    size_t pre = 18 + slen;
    if (pre > rec->rdlen)
        return SIG_FIELD;
    uint8_t alg = rd[2], labels = rd[3];
    uint32_t ottl = get32(rd + 4), exp = get32(rd + 8), inc = get32(rd + 12);
    uint16_t tag = (uint16_t)(rd[16] << 8 | rd[17]);
    const uint8_t *owner = rec_name(z, rec);
    int wildcard = owner[0] == 1 && owner[1] == '*';
    /* RFC 4035 5.3.1: signer is the apex; labels no more than the owner's */
    if (name_cmp(rd + 18, origin) != 0)
        st |= SIG_FIELD;
    if (labels > rec->labels - (wildcard ? 1 : 0) ||
        (!wildcard && labels != rec->labels))
        st |= SIG_FIELD;
    uint32_t target = r->sig_rrset[si];
    const gate_rrset_t *set = target != UINT32_MAX ? &z->rrsets[target] : NULL;
    if (!set)
        st |= SIG_ORPHAN;
    else {
        if (z->recs[set->first].ttl != ottl)
            st |= SIG_FIELD;
        if (!set->auth)
            st |= SIG_NONAUTH;
    }
    uint32_t now = (uint32_t)r->opts->now;
    if ((int32_t)(exp - now) < 0)
        st |= SIG_EXPIRED;
    else if ((int32_t)(inc - now) > 0)
        st |= SIG_NOT_YET;
    else if (r->opts->min_validity > 0 &&
             (int64_t)(int32_t)(exp - now) < r->opts->min_validity)
        st |= SIG_LOW;
    int found = 0, supported = 0;
    for (size_t k = 0; k < r->nkeys; k++) {
        gate_key_t *key = &r->keys[k];
        if (key->tag != tag || key->alg != alg || !(key->flags & 0x0100))
            continue;
        found = 1;
        if (!key->pkey || !set)
            continue;
        supported = 1;
        if (b->len == 0 && signed_data(z, set, rd, pre, b) < 0)
            return st | SIG_UNSUPPORTED; /* out of memory: unchecked */
        if (crypto_verify_cached(&cache[k], r->mds, key->pkey, alg, b->p,
                                 b->len, rd + pre, rec->rdlen - pre) == 1) {
            *keyout = (int16_t)k;
            return st | SIG_VERIFIED;
        }
    }
    if (!found)
        return st | prepub_verify(r, set, rd, rec->rdlen, pre, b);
    if (!crypto_alg_supported(alg))
        return st | SIG_UNSUPPORTED;
    if (!set)
        return st;
    return st | (supported ? SIG_BOGUS : SIG_UNSUPPORTED);
}

/* Shared by the verifying threads: the next RRSIG nobody has taken. */
typedef struct {
    struct gate_result *r;
    size_t next;
} job_t;

enum { VERIFY_BATCH = 128 }; /* RRSIGs taken at once: small, so no tail */

static void *worker(void *arg)
{
    job_t *j = arg;
    sbuf_t b = {0};
    size_t nk = j->r->nkeys ? j->r->nkeys : 1, n = j->r->nsigs;
    EVP_PKEY_CTX **cache = calloc(nk, sizeof(*cache));
    for (;;) {
        size_t from = __atomic_fetch_add(&j->next, VERIFY_BATCH,
                                         __ATOMIC_RELAXED);
        if (from >= n)
            break;
        size_t to = from + VERIFY_BATCH < n ? from + VERIFY_BATCH : n;
        for (size_t i = from; i < to; i++) {
            b.len = 0;
            j->r->sig_status[i] =
                cache ? check_one(j->r, i, &b, cache, &j->r->sig_key[i])
                      : SIG_UNSUPPORTED; /* out of memory: unchecked */
        }
    }
    for (size_t k = 0; cache && k < nk; k++)
        EVP_PKEY_CTX_free(cache[k]);
    free(cache);
    free(b.p);
    return NULL;
}

/* Covered RRset of every RRSIG (RFC 4034 3.1.1: same owner, that type). */
static int sigs_collect(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    size_t n = 0;
    for (size_t i = 0; i < z->nrrsets; i++)
        if (z->rrsets[i].type == LDNS_RR_TYPE_RRSIG)
            n += z->rrsets[i].count;
    r->sigs = malloc((n ? n : 1) * sizeof(*r->sigs));
    r->sig_rrset = malloc((n ? n : 1) * sizeof(*r->sig_rrset));
    r->sig_status = calloc(n ? n : 1, sizeof(*r->sig_status));
    r->sig_key = malloc((n ? n : 1) * sizeof(*r->sig_key));
    if (!r->sigs || !r->sig_rrset || !r->sig_status || !r->sig_key)
        return -ENOMEM;
    for (size_t i = 0; i < z->nrrsets; i++) {
        const gate_rrset_t *s = &z->rrsets[i];
        if (s->type != LDNS_RR_TYPE_RRSIG)
            continue;
        for (uint32_t k = 0; k < s->count; k++) {
            const gate_rec_t *rec = &z->recs[s->first + k];
            const uint8_t *rd = rec_rdata(z, rec);
            uint16_t cov = rec->rdlen >= 2 ? (uint16_t)(rd[0] << 8 | rd[1])
                                           : 0;
            int64_t t = cov == LDNS_RR_TYPE_RRSIG
                            ? -1
                            : zone_find_rrset(z, s->name, cov);
            r->sigs[r->nsigs] = s->first + k;
            r->sig_rrset[r->nsigs] = t < 0 ? UINT32_MAX : (uint32_t)t;
            r->nsigs++;
        }
    }
    return 0;
}

static gate_keystat_t *kstat(struct gate_result *r, uint16_t tag, uint8_t alg)
{
    for (size_t i = 0; i < r->nkstats; i++)
        if (r->kstats[i].tag == tag && r->kstats[i].alg == alg)
            return &r->kstats[i];
    gate_keystat_t *n = realloc(r->kstats, (r->nkstats + 1) * sizeof(*n));
    if (!n)
        return NULL;
    r->kstats = n;
    gate_keystat_t *k = &r->kstats[r->nkstats++];
    memset(k, 0, sizeof(*k));
    k->tag = tag;
    k->alg = alg;
    for (size_t i = 0; i < r->nkeys; i++)
        if (r->keys[i].tag == tag && r->keys[i].alg == alg)
            k->published = 1;
    return k;
}

/* Turn outcome bits into findings, in zone order. */
static void sig_findings(struct gate_result *r, size_t i)
{
    const struct gate_zone *z = r->zone;
    int64_t ri = r->sigs[i];
    const gate_rec_t *rec = &z->recs[ri];
    const uint8_t *rd = rec_rdata(z, rec);
    uint16_t st = r->sig_status[i];
    uint16_t cov = rec->rdlen >= 18 ? (uint16_t)(rd[0] << 8 | rd[1]) : 0;
    uint8_t alg = rec->rdlen >= 18 ? rd[2] : 0;
    uint16_t tag = rec->rdlen >= 18 ? (uint16_t)(rd[16] << 8 | rd[17]) : 0;
    gate_keystat_t *ks = kstat(r, tag, alg);
    if (!ks)
        r->oom = 1;
    else if (st & SIG_VERIFIED)
        ks->ok++;
    else if (st & (SIG_BOGUS | SIG_UNKNOWN_KEY))
        ks->bad++;
    r->sigs_checked++;
    if (st & SIG_VERIFIED)
        r->sigs_verified++;
    if (st & SIG_UNKNOWN_KEY)
        result_add(r, GATE_C_UNKNOWN_KEY, GATE_FAIL, ri, cov, tag, alg,
                   "no published DNSKEY has this key tag and algorithm");
    if (st & SIG_BOGUS)
        result_add(r, GATE_C_BOGUS_SIGNATURE, GATE_FAIL, ri, cov, tag, alg,
                   "signature does not verify with the published DNSKEY");
    if (st & SIG_UNSUPPORTED)
        result_add(r, GATE_C_UNSUPPORTED_ALGORITHM, GATE_UNCHECKED, ri, cov,
                   tag, alg, "algorithm or key not supported: unchecked");
    if (st & SIG_EXPIRED)
        result_add(r, GATE_C_EXPIRED_SIGNATURE, GATE_FAIL, ri, cov, tag, alg,
                   "signature expired before --now");
    if (st & SIG_NOT_YET)
        result_add(r, GATE_C_NOT_YET_VALID_SIGNATURE, GATE_FAIL, ri, cov, tag,
                   alg, "signature inception is after --now");
    if (st & SIG_LOW)
        result_add(r, GATE_C_LOW_VALIDITY, GATE_FAIL, ri, cov, tag, alg,
                   "signature expires within --min-validity");
    if (st & SIG_FIELD)
        result_add(r, GATE_C_RRSIG_FIELD, GATE_FAIL, ri, cov, tag, alg,
                   "wrong labels, original TTL or signer name");
    if (st & SIG_ORPHAN)
        result_add(r, GATE_C_RRSIG_FIELD, GATE_FAIL, ri, cov, tag, alg,
                   "type covered is not present at this owner");
    if (st & SIG_NONAUTH)
        result_add(r, GATE_C_SIGNED_NON_AUTHORITATIVE, GATE_FAIL, ri, cov,
                   tag, alg, "RRSIG over delegation NS, glue or occluded data");
}

int rrsig_check_all(struct gate_result *r)
{
    gate_clock_t c;
    timing_start(&c);
    int err = sigs_collect(r);
    if (err < 0)
        return err;
    if ((err = crypto_mds_fetch(r->mds)) < 0)
        return err;
    timing_stop(&r->timings, &c, "collect", r->nsigs);
    timing_start(&c);
    int nt = r->opts->threads > 0 ? r->opts->threads : 1;
    if (nt > 64)
        nt = 64;
    if ((size_t)nt > r->nsigs / 64 + 1)
        nt = (int)(r->nsigs / 64 + 1);
    pthread_t tid[64];
    int running[64] = {0};
    job_t job = {r, 0};
    for (int t = 0; t < nt - 1; t++)
        running[t] = pthread_create(&tid[t], NULL, worker, &job) == 0;
    worker(&job);
    for (int t = 0; t < nt - 1; t++)
        if (running[t])
            pthread_join(tid[t], NULL);
    timing_stop(&r->timings, &c, "verify", r->nsigs);
    timing_start(&c);
    if ((err = prepub_coverage(r)) < 0)
        return err;
    for (size_t i = 0; i < r->nsigs; i++)
        sig_findings(r, i);
    timing_stop(&r->timings, &c, "findings", 0);
    return 0;
}

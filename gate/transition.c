/*
 * gate/transition.c - the change from earlier releases must not break
 * validation for caching resolvers (RFC 7583, RFC 6781 4.1).  Earlier
 * releases are the --release DIR history and/or --previous ZONE taken as
 * released at --previous-time; the candidate is released at --now.  D is
 * --propagation-delay.  Rules, each a function below:
 *
 *  serial      the SOA serial increases over the last release (RFC 1982).
 *  a) newly    a key that signs data now but did not in the last release
 *     signing  was published at least (DNSKEY TTL + D) ago, unless every
 *              RRset it signs is also signed by an established key
 *              (double-signature rollover, RFC 7583 3.2).
 *  b) still    a key whose data signatures may still be cached (until the
 *     cached   release it last signed was replaced + largest signed TTL +
 *              D) stays in the DNSKEY RRset, unless another key that
 *              signed every RRset of that release is still published.
 *  c) DS       with --ds: every DS set a resolver may hold (the current
 *              one; earlier ones until the parent changed them + DS TTL
 *              + D) must validate every DNSKEY RRset it may meet (the
 *              candidate's; earlier ones until replaced + DNSKEY TTL +
 *              D): some DS names a KSK of that RRset which signs it.
 *              Failing that, a DS new at the parent points to a key
 *              published at least (DNSKEY TTL + D) ago, and a KSK an
 *              earlier DS set named stays published and signing until
 *              DS TTL + D after the parent dropped it.  A DS without a
 *              working key is allowed beside a working DS of its
 *              algorithm (double-DS rollover, RFC 7583 3.3.2).
 *  d) algorithm (RFC 6781 4.1.4) a DNSKEY of a new algorithm appears only
 *     rollover  after that algorithm has signed the data for (largest
 *              signed TTL + D); an algorithm's signatures go only after its
 *              DNSKEYs have been gone for (DNSKEY TTL + D).  Signatures of
 *              an algorithm without DNSKEY are accepted by rrsig.c.
 *
 * Which keys signed what comes from the history (history.c).  Only data
 * signatures (not over the DNSKEY RRset) are subject to a) and b): a
 * DNSKEY RRset travels with its own signatures; its link is the DS (c).
 */
#include "gate/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    struct gate_result *r;
    const hist_entry_t *h; /* earlier releases, oldest first */
    size_t n;
    const hist_entry_t *c; /* the candidate */
    int64_t now, delay;
    uint32_t dnskey_ttl;   /* largest DNSKEY TTL a cache may hold */
} tctx_t;

static int key_in(const hist_entry_t *e, uint16_t tag, uint8_t alg)
{
    for (size_t i = 0; i < e->nkeys; i++)
        if (e->keys[i].tag == tag && e->keys[i].alg == alg)
            return 1;
    return 0;
}

static const hist_signer_t *signer_in(const hist_signer_t *v, size_t n,
                                      uint16_t tag, uint8_t alg)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].tag == tag && v[i].alg == alg)
            return &v[i];
    return NULL;
}

static int alg_published(const hist_entry_t *e, uint8_t alg)
{
    for (size_t i = 0; i < e->nkeys; i++)
        if (e->keys[i].alg == alg)
            return 1;
    return 0;
}

static int alg_signs_data(const hist_entry_t *e, uint8_t alg)
{
    for (size_t i = 0; i < e->ndata_by; i++)
        if (e->data_by[i].alg == alg)
            return 1;
    return 0;
}

/* When a key in the candidate's DNSKEY RRset was first published without
 * a gap up to now; now if it is new. */
static int64_t first_published(const tctx_t *t, uint16_t tag, uint8_t alg)
{
    int64_t p = t->now;
    for (size_t j = t->n; j-- > 0;) {
        if (!key_in(&t->h[j], tag, alg))
            break;
        p = t->h[j].time;
    }
    return p;
}

/* When release j stopped being served: the next release's time, or now. */
static int64_t replaced_at(const tctx_t *t, size_t j)
{
    return j + 1 < t->n ? t->h[j + 1].time : t->now;
}

static void rule_serial(tctx_t *t)
{
    const hist_entry_t *last = &t->h[t->n - 1];
    char when[64];
    time_str(last->time, when, sizeof(when));
    if ((int32_t)(t->c->serial - last->serial) <= 0)
        result_add_msg(t->r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_SOA, 0, 0,
                       "SOA serial %u does not increase over serial %u "
                       "released at %s (RFC 1982)",
                       t->c->serial, last->serial, when);
    if (t->now < last->time)
        result_add_msg(t->r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_SOA, 0, 0,
                       "release time is before the last release (%s)", when);
}

/* Keys a resolver surely knows: signed data last time, or published long
 * enough (rule a). */
static int established(const tctx_t *t, uint16_t tag, uint8_t alg)
{
    if (!key_in(t->c, tag, alg))
        return 0;
    if (signer_in(t->h[t->n - 1].data_by, t->h[t->n - 1].ndata_by, tag, alg))
        return 1;
    return first_published(t, tag, alg) + t->dnskey_ttl + t->delay <= t->now;
}

static int rule_newly_signing(tctx_t *t)
{
    struct gate_result *r = t->r;
    const struct gate_zone *z = r->zone;
    const hist_entry_t *last = &t->h[t->n - 1];
    uint8_t *cov = calloc(z->nrrsets ? z->nrrsets : 1, 1);
    if (!cov)
        return -1;
    for (size_t i = 0; i < r->nsigs; i++) {
        if (!(r->sig_status[i] & SIG_VERIFIED) || r->sig_rrset[i] == UINT32_MAX)
            continue;
        const uint8_t *rd = rec_rdata(z, &z->recs[r->sigs[i]]);
        if (established(t, (uint16_t)(rd[16] << 8 | rd[17]), rd[2]))
            cov[r->sig_rrset[i]] = 1;
    }
    for (size_t k = 0; k < t->c->ndata_by; k++) {
        const hist_signer_t *s = &t->c->data_by[k];
        if (signer_in(last->data_by, last->ndata_by, s->tag, s->alg) ||
            established(t, s->tag, s->alg))
            continue;
        /* not established: fine only where an established key signs too */
        int alone = 0;
        for (size_t i = 0; i < r->nsigs && !alone; i++) {
            if (!(r->sig_status[i] & SIG_VERIFIED) ||
                r->sig_rrset[i] == UINT32_MAX ||
                r->sig_rrset[i] == (uint32_t)z->dnskey_rrset)
                continue;
            const uint8_t *rd = rec_rdata(z, &z->recs[r->sigs[i]]);
            if ((uint16_t)(rd[16] << 8 | rd[17]) == s->tag && rd[2] == s->alg)
                alone = !cov[r->sig_rrset[i]];
        }
        if (!alone)
            continue;
        char pub[64], safe[64];
        if (!key_in(t->c, s->tag, s->alg)) {
            result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DNSKEY,
                           s->tag, s->alg,
                           "key %u alg %u signs, but is not published and "
                           "no established key signs the same RRsets",
                           s->tag, s->alg);
            continue;
        }
        int64_t p = first_published(t, s->tag, s->alg);
        time_str(p, pub, sizeof(pub));
        time_str(p + t->dnskey_ttl + t->delay, safe, sizeof(safe));
        result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DNSKEY,
                       s->tag, s->alg,
                       "key %u alg %u signs, but was first published at %s; "
                       "earliest safe time %s (DNSKEY TTL %u + propagation "
                       "delay %lld s)",
                       s->tag, s->alg, pub, safe, t->dnskey_ttl,
                       (long long)t->delay);
    }
    free(cov);
    return 0;
}

/* Another key signed every RRset of release e and is still published. */
static int covered_by_other(const tctx_t *t, const hist_entry_t *e,
                            uint16_t tag, uint8_t alg)
{
    if (e->data_rrsets == 0)
        return 0;
    for (size_t i = 0; i < e->ndata_by; i++) {
        const hist_signer_t *s = &e->data_by[i];
        if ((s->tag != tag || s->alg != alg) && s->rrsets >= e->data_rrsets &&
            key_in(t->c, s->tag, s->alg))
            return 1;
    }
    return 0;
}

static void rule_still_cached(tctx_t *t)
{
    /* every key that signed data in some release, judged at the last
     * release it signed */
    for (size_t j = t->n; j-- > 0;) {
        const hist_entry_t *e = &t->h[j];
        for (size_t k = 0; k < e->ndata_by; k++) {
            const hist_signer_t *s = &e->data_by[k];
            int later = 0;
            for (size_t l = j + 1; l < t->n && !later; l++)
                later = signer_in(t->h[l].data_by, t->h[l].ndata_by, s->tag,
                                  s->alg) != NULL;
            if (later)
                continue; /* judged at that later release */
            int64_t until = replaced_at(t, j) + e->ttl_signed + t->delay;
            if (until <= t->now || key_in(t->c, s->tag, s->alg) ||
                covered_by_other(t, e, s->tag, s->alg))
                continue;
            char rel[64], safe[64];
            time_str(e->time, rel, sizeof(rel));
            if (j + 1 == t->n &&
                signer_in(t->c->data_by, t->c->ndata_by, s->tag, s->alg)) {
                time_str(until, safe, sizeof(safe));
                result_add_msg(t->r, GATE_C_UNSAFE_TRANSITION,
                               LDNS_RR_TYPE_DNSKEY, s->tag, s->alg,
                               "key %u alg %u signs but is no longer "
                               "published", s->tag, s->alg);
                continue;
            }
            time_str(until, safe, sizeof(safe));
            result_add_msg(t->r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DNSKEY,
                           s->tag, s->alg,
                           "key %u alg %u is removed, but its signatures in "
                           "the release of %s may be cached until %s; "
                           "earliest safe time %s (largest signed TTL %u + "
                           "propagation delay %lld s after that release was "
                           "replaced)",
                           s->tag, s->alg, rel, safe, safe, e->ttl_signed,
                           (long long)t->delay);
        }
    }
}

static int ds_in(const hist_entry_t *e, const uint8_t *ds, uint16_t len)
{
    for (size_t i = 0; i < e->nds; i++)
        if (e->dslen[i] == len && memcmp(e->ds[i], ds, len) == 0)
            return 1;
    return 0;
}

/* Index of the candidate's key a DS names, -1 none (-2: digest unknown). */
static int ds_key(const struct gate_result *r, const uint8_t *ds, size_t len)
{
    int sup = 0;
    for (size_t k = 0; k < r->nkeys; k++)
        if (trust_ds_matches(r->zone, &r->keys[k], ds, len, &sup))
            return (int)k;
    return sup ? -1 : -2;
}

static int signs_dnskey(const struct gate_result *r, size_t k)
{
    const struct gate_zone *z = r->zone;
    for (size_t i = 0; i < r->nsigs; i++)
        if (r->sig_rrset[i] == (uint32_t)z->dnskey_rrset &&
            (r->sig_status[i] & SIG_VERIFIED) && r->sig_key[i] == (int16_t)k)
            return 1;
    return 0;
}

/* A DS that validates the candidate: it names a published KSK that signs
 * the DNSKEY RRset. */
static int ds_works(const struct gate_result *r, const uint8_t *ds,
                    size_t len)
{
    int k = ds_key(r, ds, len);
    return k >= 0 && signs_dnskey(r, (size_t)k);
}

/* Whether a DS set holds a DS that validates the candidate; alg 0: any
 * algorithm, else only DS records of that algorithm count. */
static int set_works(const struct gate_result *r, const hist_entry_t *e,
                     uint8_t alg)
{
    for (size_t i = 0; i < e->nds; i++)
        if (e->dslen[i] >= 4 && (!alg || e->ds[i][2] == alg) &&
            ds_works(r, e->ds[i], e->dslen[i]))
            return 1;
    return 0;
}

/* Whether the DS set of the candidate validates the DNSKEY RRset of
 * release E, as a resolver holding that RRset in its cache sees it: some
 * DS names a key of E that signed E's DNSKEY RRset. */
static int set_works_with(const tctx_t *t, const hist_entry_t *e)
{
    const hist_entry_t *c = t->c;
    for (size_t i = 0; i < c->nds; i++) {
        const uint8_t *ds = c->ds[i];
        for (size_t k = 0; k < e->nkeys && c->dslen[i] >= 4; k++) {
            const hist_key_t *key = &e->keys[k];
            int sup = 0;
            if (signer_in(e->dnskey_by, e->ndnskey_by, key->tag, key->alg) &&
                trust_ds_matches_key(t->r->zone->origin, key->tag, key->alg,
                                     key->rdata, key->rdlen, ds, c->dslen[i],
                                     &sup))
                return 1;
        }
    }
    return 0;
}

/* The DS set a resolver fetches now meets two kinds of cached DNSKEY
 * RRsets: the candidate's and earlier releases' still in caches.  With
 * each, some DS must validate (RFC 7583 3.3).  A DS without a working key
 * is otherwise allowed: it is pre-published for a double-DS KSK rollover
 * (RFC 7583 3.3.2) or left over from one, as long as another DS of its
 * algorithm validates the candidate (an algorithm in the DS set with no
 * working DS is refused: hardened validators require every algorithm the
 * DS set names, and RFC 6781 4.1.4 adds a new algorithm's DS last). */
static void rule_ds_current(tctx_t *t)
{
    struct gate_result *r = t->r;
    const hist_entry_t *c = t->c, *last = &t->h[t->n - 1];
    int cached_ok = 1, told = 0;
    int64_t fail_at = 0, fail_until = 0; /* the RRset it fails: released,
                                            cached until, a key signing it */
    uint16_t fail_tag = 0;
    uint8_t fail_alg = 0;
    for (size_t j = 0; j < t->n; j++) {
        int64_t until = replaced_at(t, j) + t->h[j].ttl_dnskey + t->delay;
        if (until > t->now && t->h[j].nkeys > 0 &&
            !set_works_with(t, &t->h[j])) {
            cached_ok = 0;
            fail_at = t->h[j].time;
            if (t->h[j].ndnskey_by) {
                fail_tag = t->h[j].dnskey_by[0].tag;
                fail_alg = t->h[j].dnskey_by[0].alg;
            }
            fail_until = until > fail_until ? until : fail_until;
        }
    }
    for (size_t i = 0; i < c->nds; i++) {
        const uint8_t *ds = c->ds[i];
        uint16_t tag = c->dslen[i] >= 4 ? (uint16_t)(ds[0] << 8 | ds[1]) : 0;
        uint8_t alg = c->dslen[i] >= 4 ? ds[2] : 0;
        int k = ds_key(r, ds, c->dslen[i]);
        if (k == -2)
            continue; /* digest type we cannot check: trust.c says so */
        if (k < 0 || !signs_dnskey(r, (size_t)k)) {
            if (alg && set_works(r, c, alg))
                continue; /* stand-by or retired DS beside a working one */
            result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DS, tag,
                           alg,
                           "the parent's DS for key %u alg %u has no %s",
                           tag, alg,
                           k < 0 ? "published DNSKEY"
                                 : "signature over the DNSKEY RRset by that key");
            continue;
        }
        if (cached_ok || !last->has_ds || ds_in(last, ds, c->dslen[i]))
            continue;
        /* a DS new at the parent, and no DS validates an earlier DNSKEY
         * RRset still cached: its key must be in resolvers' caches */
        int64_t p = first_published(t, tag, alg);
        if (p + t->dnskey_ttl + t->delay <= t->now)
            continue;
        char pub[64], safe[64];
        time_str(p, pub, sizeof(pub));
        time_str(p + t->dnskey_ttl + t->delay, safe, sizeof(safe));
        told = 1;
        result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DS, tag, alg,
                       "the parent's DS set now names key %u alg %u, but "
                       "that key was first published at %s; earliest safe "
                       "time %s (DNSKEY TTL %u + propagation delay %lld s)",
                       tag, alg, pub, safe, t->dnskey_ttl,
                       (long long)t->delay);
    }
    if (!cached_ok && !told) {
        /* e.g. a double-DS rollover's old DS removed while the old
         * DNSKEY RRset is still in caches (RFC 7583 3.3.2) */
        char rel[64], safe[64];
        time_str(fail_at, rel, sizeof(rel));
        time_str(fail_until, safe, sizeof(safe));
        result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DS, fail_tag,
                       fail_alg,
                       "the parent's DS set no longer validates the DNSKEY "
                       "RRset released at %s (signed by key %u alg %u), "
                       "which resolvers may hold until %s; earliest safe "
                       "time %s (DNSKEY TTL + propagation delay %lld s)",
                       rel, fail_tag, fail_alg, safe, safe,
                       (long long)t->delay);
    }
}

static int same_set(const hist_entry_t *a, const hist_entry_t *b)
{
    if (a->nds != b->nds)
        return 0;
    for (size_t i = 0; i < a->nds; i++)
        if (!ds_in(b, a->ds[i], a->dslen[i]))
            return 0;
    return 1;
}

/* Earlier DS sets a resolver may still hold (until the parent changed the
 * set + DS TTL + D) meet the candidate's DNSKEY RRset: each must hold a
 * DS that validates it.  A set that does through another DS (double-DS:
 * the new key's DS stood beside the old one) needs nothing more; for one
 * that does not, every KSK it named and the parent has since dropped must
 * stay published and sign the DNSKEY RRset until then, and a set the
 * parent only added to (a double-DS key switch too early) is refused as
 * a whole. */
static void rule_ds_previous(tctx_t *t)
{
    struct gate_result *r = t->r;
    const hist_entry_t *c = t->c;
    for (size_t j = t->n; j-- > 0;) {
        const hist_entry_t *e = &t->h[j];
        if (!e->has_ds || e->nds == 0 || set_works(r, e, 0))
            continue;
        /* the set as it was last released: a later release with the same
         * set, or the candidate's, is the one a cache may hold longest */
        if ((j + 1 < t->n && t->h[j + 1].has_ds && same_set(&t->h[j + 1], e)) ||
            (j + 1 == t->n && same_set(c, e)))
            continue;
        int64_t until = replaced_at(t, j) + e->ds_ttl + t->delay;
        if (until <= t->now)
            continue;
        char chg[64], safe[64];
        time_str(replaced_at(t, j), chg, sizeof(chg));
        time_str(until, safe, sizeof(safe));
        int told = 0;
        for (size_t i = 0; i < e->nds; i++) {
            const uint8_t *ds = e->ds[i];
            uint16_t len = e->dslen[i];
            if (len < 4 || ds_in(c, ds, len))
                continue;
            uint16_t tag = (uint16_t)(ds[0] << 8 | ds[1]);
            uint8_t alg = ds[2];
            int k = ds_key(r, ds, len);
            if (k == -2)
                continue;
            told = 1;
            result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DNSKEY,
                           tag, alg,
                           "KSK key %u alg %u was named by the parent's DS "
                           "until %s and may be cached there until %s; it "
                           "must stay %s until then; earliest safe time %s "
                           "(DS TTL %u + propagation delay %lld s)",
                           tag, alg, chg, safe,
                           k < 0 ? "published and sign the DNSKEY RRset"
                                 : "signing the DNSKEY RRset",
                           safe, e->ds_ttl, (long long)t->delay);
        }
        if (!told) {
            const uint8_t *ds = e->ds[0];
            uint16_t tag = e->dslen[0] >= 4 ? (uint16_t)(ds[0] << 8 | ds[1]) : 0;
            uint8_t alg = e->dslen[0] >= 4 ? ds[2] : 0;
            result_add_msg(r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DNSKEY,
                           tag, alg,
                           "the parent's DS set before %s (%zu DS, key %u "
                           "alg %u first) may be cached until %s and names "
                           "no KSK that signs this DNSKEY RRset; earliest "
                           "safe time %s (DS TTL %u + propagation delay "
                           "%lld s)",
                           chg, e->nds, tag, alg, safe, safe, e->ds_ttl,
                           (long long)t->delay);
        }
    }
}

static void rule_algorithm(tctx_t *t)
{
    const hist_entry_t *c = t->c, *last = &t->h[t->n - 1];
    uint8_t seen[256] = {0};
    for (size_t k = 0; k < c->nkeys; k++) {
        uint8_t alg = c->keys[k].alg;
        if (seen[alg] || alg_published(last, alg))
            continue;
        seen[alg] = 1;
        /* a new algorithm's DNSKEY: its signatures came first (4.1.4) */
        int64_t since = t->now;
        uint32_t ttl = c->ttl_signed;
        for (size_t j = t->n; j-- > 0 && alg_signs_data(&t->h[j], alg);) {
            since = t->h[j].time;
            if (t->h[j].ttl_signed > ttl)
                ttl = t->h[j].ttl_signed;
        }
        if (since + ttl + t->delay <= t->now)
            continue;
        char s1[64], s2[64];
        time_str(since, s1, sizeof(s1));
        time_str(since + ttl + t->delay, s2, sizeof(s2));
        result_add_msg(t->r, GATE_C_UNSAFE_TRANSITION, LDNS_RR_TYPE_DNSKEY, 0,
                       alg,
                       "a DNSKEY of new algorithm %u is published, but "
                       "algorithm %u signs the data only since %s; earliest "
                       "safe time %s (RFC 6781 4.1.4: largest signed TTL %u "
                       "+ propagation delay %lld s)",
                       alg, alg, s1, s2, ttl, (long long)t->delay);
    }
    memset(seen, 0, sizeof(seen));
    for (size_t k = 0; k < last->ndata_by; k++) {
        uint8_t alg = last->data_by[k].alg;
        if (seen[alg] || alg_signs_data(c, alg) || alg_published(c, alg))
            continue; /* still published: algorithm-coverage reports it */
        seen[alg] = 1;
        /* signatures of an algorithm go after its DNSKEYs left caches */
        for (size_t j = t->n; j-- > 0;) {
            if (!alg_published(&t->h[j], alg))
                continue;
            int64_t until =
                replaced_at(t, j) + t->h[j].ttl_dnskey + t->delay;
            if (until > t->now) {
                char s2[64];
                time_str(until, s2, sizeof(s2));
                result_add_msg(t->r, GATE_C_UNSAFE_TRANSITION,
                               LDNS_RR_TYPE_RRSIG, 0, alg,
                               "algorithm %u no longer signs, but DNSKEY "
                               "RRsets with algorithm %u may be cached until "
                               "%s; earliest safe time %s (RFC 6781 4.1.4: "
                               "remove the DNSKEYs first)",
                               alg, alg, s2, s2);
            }
            break;
        }
    }
}

int transition_check(struct gate_result *r, gate_diag_t *diag)
{
    (void)diag;
    if (r->nhist == 0 || !r->have_cur)
        return 0; /* a first release: nothing a cache could hold */
    tctx_t t = {r, r->hist, r->nhist, &r->cur, r->opts->now,
                r->opts->propagation_delay, r->cur.ttl_dnskey};
    for (size_t j = 0; j < t.n; j++)
        if (replaced_at(&t, j) + t.h[j].ttl_dnskey + t.delay > t.now &&
            t.h[j].ttl_dnskey > t.dnskey_ttl)
            t.dnskey_ttl = t.h[j].ttl_dnskey;
    rule_serial(&t);
    if (rule_newly_signing(&t) < 0)
        r->oom = 1;
    rule_still_cached(&t);
    if (r->opts->ds_file) {
        rule_ds_current(&t);
        rule_ds_previous(&t);
    }
    rule_algorithm(&t);
    return 0;
}

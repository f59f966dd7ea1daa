/*
 * gate/nsec3.c - the NSEC3 chain (RFC 5155 7.1, 8.2, 8.3; RFC 9276):
 * hashes are recomputed (RFC 5155 5, with libldns's SHA-1, on --threads
 * threads) for every name that needs an NSEC3: authoritative names, empty non-terminals,
 * secure delegations, and insecure ones unless Opt-Out is set.  The chain
 * must hold exactly those hashes, sorted, each next-hashed-owner pointing
 * to the following hash and the last to the first; bitmaps must list the
 * types present; NSEC3PARAM, every NSEC3 and the policy (iterations 0, no
 * salt, unless allowed) must agree.
 */
#include "gate/internal.h"

#include <ldns/sha1.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * A name that needs an NSEC3 and either has one (its hash is among the
 * chain's) or is required to.  Names that need none and have none are not
 * kept, so memory follows the chain's size, not the zone's.
 */
typedef struct {
    uint8_t hash[64];
    uint8_t hlen;
    uint8_t required;
    int64_t name;     /* name index, or -1 for an empty non-terminal */
    uint8_t *ent;     /* ENT owner wire (malloc), or NULL */
} want_t;

typedef struct {
    uint8_t hash[64];
    uint8_t hlen;
    uint32_t rec;
} have_t;

typedef struct {
    uint8_t alg, flags;
    uint16_t iter;
    uint8_t saltlen;
    const uint8_t *salt;
} params_t;

static int b32hex_decode(const uint8_t *in, size_t n, uint8_t *out, size_t max)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v;
        uint8_t c = in[i];
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'v')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'V')
            v = c - 'A' + 10;
        else
            return -1;
        acc = acc << 5 | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (o >= max)
                return -1;
            out[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    return (int)o;
}

static int hash_cmp(const void *a, const void *b)
{
    const uint8_t *x = a, *y = b; /* hash is the first member */
    return memcmp(x, y, 64);
}

/* RFC 5155 5: IH(salt, x, 0) = H(x || salt), IH(salt, x, k) =
 * H(IH(salt, x, k-1) || salt), x the canonical wire name (lower case in
 * the arena), H libldns's SHA-1.  Writes the raw hash; returns its length. */
static int hash_name(const uint8_t *wire, const params_t *p, uint8_t *out)
{
    ldns_sha1_ctx c;
    ldns_sha1_init(&c);
    ldns_sha1_update(&c, wire, (unsigned)name_len(wire));
    ldns_sha1_update(&c, p->salt, p->saltlen);
    ldns_sha1_final(out, &c);
    for (unsigned k = 0; k < p->iter; k++) {
        ldns_sha1_init(&c);
        ldns_sha1_update(&c, out, LDNS_SHA1_DIGEST_LENGTH);
        ldns_sha1_update(&c, p->salt, p->saltlen);
        ldns_sha1_final(out, &c);
    }
    return LDNS_SHA1_DIGEST_LENGTH;
}

static int parse_nsec3(const uint8_t *rd, size_t len, params_t *p,
                       const uint8_t **next, uint8_t *nlen,
                       const uint8_t **bm, size_t *bmlen)
{
    if (len < 5 || len < 5u + rd[4] + 1)
        return -1;
    p->alg = rd[0];
    p->flags = rd[1];
    p->iter = (uint16_t)(rd[2] << 8 | rd[3]);
    p->saltlen = rd[4];
    p->salt = rd + 5;
    size_t o = 5 + p->saltlen;
    *nlen = rd[o];
    if (o + 1 + *nlen > len)
        return -1;
    *next = rd + o + 1;
    *bm = rd + o + 1 + *nlen;
    *bmlen = len - (o + 1 + *nlen);
    return 0;
}

static int same_params(const params_t *a, const params_t *b)
{
    return a->alg == b->alg && a->iter == b->iter &&
           a->saltlen == b->saltlen && !memcmp(a->salt, b->salt, a->saltlen);
}

/* RFC 5155 4, RFC 9276 3.1: NSEC3PARAM present, agreeing, in policy. */
static int params_check(struct gate_result *r, params_t *p, int *optout)
{
    const struct gate_zone *z = r->zone;
    const uint8_t *apex = ldns_rdf_data(z->origin);
    int64_t ps = zone_find_rrset(z, 0, LDNS_RR_TYPE_NSEC3PARAM);
    int have = 0, mixed = 0;
    *optout = -1;
    for (size_t i = 0; i < z->nrrsets; i++) {
        const gate_rrset_t *s = &z->rrsets[i];
        if (s->type != LDNS_RR_TYPE_NSEC3)
            continue;
        const gate_rec_t *rec = &z->recs[s->first];
        params_t q;
        const uint8_t *nx, *bm;
        uint8_t nl;
        size_t bl;
        if (parse_nsec3(rec_rdata(z, rec), rec->rdlen, &q, &nx, &nl, &bm,
                        &bl) < 0)
            continue;
        if (!have) {
            *p = q;
            have = 1;
            *optout = q.flags & 1;
        } else if ((q.flags & 1) != *optout) {
            mixed = 1;
        }
        if (!same_params(&q, p) || (q.flags & ~1))
            result_add(r, GATE_C_NSEC3_PARAM, GATE_FAIL, s->first,
                       LDNS_RR_TYPE_NSEC3, 0, 0,
                       "NSEC3 parameters or flags differ from the chain's");
    }
    if (mixed)
        result_add_owner(r, GATE_C_NSEC3_PARAM, apex, LDNS_RR_TYPE_NSEC3,
                         "Opt-Out flag differs between NSEC3 records");
    if (ps < 0 || !(z->names[0].flags & GATE_N_APEX)) {
        result_add_owner(r, GATE_C_NSEC3_PARAM, apex, LDNS_RR_TYPE_NSEC3PARAM,
                         "no NSEC3PARAM at the apex");
    } else {
        const gate_rec_t *rec = &z->recs[z->rrsets[ps].first];
        const uint8_t *rd = rec_rdata(z, rec);
        params_t q = {0};
        if (rec->rdlen >= 5 && rec->rdlen == 5u + rd[4]) {
            q.alg = rd[0];
            q.flags = rd[1];
            q.iter = (uint16_t)(rd[2] << 8 | rd[3]);
            q.saltlen = rd[4];
            q.salt = rd + 5;
        }
        if (!have) {
            *p = q;
            have = 1;
        }
        if (z->rrsets[ps].count != 1 || !same_params(&q, p) || q.flags != 0)
            result_add(r, GATE_C_NSEC3_PARAM, GATE_FAIL, z->rrsets[ps].first,
                       LDNS_RR_TYPE_NSEC3PARAM, 0, 0,
                       "NSEC3PARAM disagrees with the NSEC3 chain");
    }
    if (!have)
        return -1;
    if (p->alg != 1) {
        result_add_owner(r, GATE_C_NSEC3_PARAM, apex, LDNS_RR_TYPE_NSEC3PARAM,
                         "NSEC3 hash algorithm is not SHA-1");
        return -1;
    }
    if (p->iter > r->opts->allow_iterations)
        result_add_owner(r, GATE_C_NSEC3_PARAM, apex, LDNS_RR_TYPE_NSEC3PARAM,
                         "NSEC3 iterations above policy (RFC 9276 3.1)");
    if (p->saltlen > 0 && !r->opts->allow_salt)
        result_add_owner(r, GATE_C_NSEC3_PARAM, apex, LDNS_RR_TYPE_NSEC3PARAM,
                         "NSEC3 salt set against policy (RFC 9276 3.1)");
    return 0;
}

typedef struct {
    want_t *v;
    size_t n, cap;
} wants_t;

static want_t *want_push(wants_t *w)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        want_t *n = realloc(w->v, cap * sizeof(*n));
        if (!n)
            return NULL;
        w->v = n;
        w->cap = cap;
    }
    want_t *x = &w->v[w->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

/*
 * Lookup of a hash in the chain, for every name of the zone: the sorted
 * chain's first 8 octets of each hash in one compact array, and where
 * each value of the first 16 bits starts in it (hashes are uniform, so a
 * bucket holds a few entries and a lookup touches two or three cache
 * lines instead of a binary search over the whole chain).
 */
typedef struct {
    const have_t *h;
    size_t nh;
    uint64_t *key;   /* first 8 octets of h[i].hash, big-endian */
    uint32_t *start; /* 65537 offsets into key */
} hindex_t;

static uint64_t key64(const uint8_t *hash)
{
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = k << 8 | hash[i];
    return k;
}

static int hindex_build(hindex_t *x, const have_t *h, size_t nh)
{
    x->h = h;
    x->nh = nh;
    x->key = malloc((nh ? nh : 1) * sizeof(*x->key));
    x->start = malloc(65537 * sizeof(*x->start));
    if (!x->key || !x->start)
        return -1;
    size_t b = 0;
    for (size_t i = 0; i < nh; i++) {
        x->key[i] = key64(h[i].hash);
        for (; b <= (x->key[i] >> 48); b++)
            x->start[b] = (uint32_t)i;
    }
    for (; b < 65537; b++)
        x->start[b] = (uint32_t)nh;
    return 0;
}

static void hindex_free(hindex_t *x)
{
    free(x->key);
    free(x->start);
}

/* 1 if the chain holds hash. */
static int have_hash(const hindex_t *x, const uint8_t *hash)
{
    uint64_t k = key64(hash);
    for (uint32_t i = x->start[k >> 48]; i < x->start[(k >> 48) + 1]; i++)
        if (x->key[i] == k && !memcmp(x->h[i].hash, hash, 64))
            return 1;
    return 0;
}

/* One thread's share of the names (from, to) and what it found. */
typedef struct {
    const struct gate_result *r;
    const params_t *p;
    int optout;
    const hindex_t *hx;
    size_t from, to;
    wants_t w;
    int err;
} hjob_t;

/* Keep a hashed name if the chain has its hash or it must have one. */
static int want_keep(hjob_t *j, const uint8_t *hash, int req, int64_t name,
                     const uint8_t *ent)
{
    if (!req && !have_hash(j->hx, hash))
        return 0;
    want_t *x = want_push(&j->w);
    if (!x)
        return -1;
    memcpy(x->hash, hash, 64);
    x->hlen = LDNS_SHA1_DIGEST_LENGTH;
    x->name = name;
    x->required = (uint8_t)req;
    if (ent) {
        size_t l = name_len(ent);
        if (!(x->ent = malloc(l)))
            return -1;
        memcpy(x->ent, ent, l);
    }
    return 0;
}

/* RFC 5155 7.1: names needing an NSEC3, empty non-terminals included. */
static void *hash_names(void *arg)
{
    hjob_t *j = arg;
    const struct gate_zone *z = j->r->zone;
    const uint8_t *apex = ldns_rdf_data(z->origin);
    for (size_t i = j->from; i < j->to && !j->err; i++) {
        const gate_name_t *n = &z->names[i];
        if (n->flags & (GATE_N_OCCLUDED | GATE_N_HASHED))
            continue;
        int req = 1;
        if ((n->flags & GATE_N_CUT) &&
            zone_find_rrset(z, i, LDNS_RR_TYPE_DS) < 0 && j->optout == 1)
            req = 0;
        uint8_t hash[64] = {0};
        const uint8_t *a = rec_name(z, &z->recs[n->rec]);
        hash_name(a, j->p, hash);
        if (want_keep(j, hash, req, (int64_t)i, NULL) < 0)
            j->err = -1;
        /* ancestors up to the apex that hold no records: ENTs */
        while (!j->err && name_cmp(a, apex) != 0) {
            a += a[0] + 1;
            if (name_cmp(a, apex) == 0 || zone_find_name(z, a) >= 0)
                break;
            hash_name(a, j->p, hash);
            if (want_keep(j, hash, req, -1, a) < 0)
                j->err = -1;
        }
    }
    return NULL;
}

/* Hash every name on the run's threads; the kept ones, sorted by hash,
 * one entry per ENT (required if any name below requires it). */
static int collect_wants(struct gate_result *r, const params_t *p, int optout,
                         const have_t *h, size_t nh, wants_t *w)
{
    hindex_t hx = {0};
    if (hindex_build(&hx, h, nh) < 0) {
        hindex_free(&hx);
        return -1;
    }
    const struct gate_zone *z = r->zone;
    int nt = r->opts->threads > 0 ? r->opts->threads : 1;
    if (nt > 64)
        nt = 64;
    if ((size_t)nt > z->nnames / 4096 + 1)
        nt = (int)(z->nnames / 4096 + 1);
    hjob_t jobs[64];
    pthread_t tid[64];
    int running[64] = {0}, err = 0;
    memset(jobs, 0, sizeof(jobs));
    for (int t = 0; t < nt; t++) {
        jobs[t] = (hjob_t){r, p, optout, &hx, z->nnames * (size_t)t / (size_t)nt,
                           z->nnames * (size_t)(t + 1) / (size_t)nt, {0}, 0};
        if (t < nt - 1)
            running[t] = pthread_create(&tid[t], NULL, hash_names, &jobs[t]) == 0;
        if (!running[t])
            hash_names(&jobs[t]);
    }
    size_t total = 0;
    for (int t = 0; t < nt; t++) {
        if (running[t])
            pthread_join(tid[t], NULL);
        err |= jobs[t].err;
        total += jobs[t].w.n;
    }
    hindex_free(&hx);
    if (!err && !(w->v = malloc((total ? total : 1) * sizeof(*w->v))))
        err = -1;
    for (int t = 0; t < nt; t++) {
        for (size_t k = 0; k < jobs[t].w.n; k++) {
            if (err)
                free(jobs[t].w.v[k].ent);
            else
                w->v[w->n++] = jobs[t].w.v[k];
        }
        free(jobs[t].w.v);
    }
    if (err)
        return -1;
    qsort(w->v, w->n, sizeof(*w->v), hash_cmp);
    size_t o = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (o > 0 && !hash_cmp(&w->v[o - 1], &w->v[i]) && w->v[i].ent &&
            w->v[o - 1].ent) {
            w->v[o - 1].required |= w->v[i].required;
            free(w->v[i].ent);
            continue;
        }
        w->v[o++] = w->v[i];
    }
    w->n = o;
    return 0;
}

static int collect_haves(const struct gate_zone *z, have_t **out, size_t *n)
{
    size_t c = 0, k = 0;
    for (size_t i = 0; i < z->nrrsets; i++)
        if (z->rrsets[i].type == LDNS_RR_TYPE_NSEC3)
            c += z->rrsets[i].count;
    have_t *h = calloc(c ? c : 1, sizeof(*h));
    if (!h)
        return -1;
    for (size_t i = 0; i < z->nrrsets; i++) {
        const gate_rrset_t *s = &z->rrsets[i];
        if (s->type != LDNS_RR_TYPE_NSEC3)
            continue;
        for (uint32_t j = 0; j < s->count; j++) {
            const uint8_t *o = rec_name(z, &z->recs[s->first + j]);
            int hl = b32hex_decode(o + 1, o[0], h[k].hash, 64);
            h[k].hlen = hl < 0 ? 0 : (uint8_t)hl;
            h[k].rec = s->first + j;
            k++;
        }
    }
    qsort(h, k, sizeof(*h), hash_cmp);
    *out = h;
    *n = k;
    return 0;
}

static void check_match(struct gate_result *r, const want_t *w,
                        const have_t *h)
{
    const struct gate_zone *z = r->zone;
    const gate_rec_t *rec = &z->recs[h->rec];
    params_t q;
    const uint8_t *nx, *bm;
    uint8_t nl;
    size_t bl;
    if (parse_nsec3(rec_rdata(z, rec), rec->rdlen, &q, &nx, &nl, &bm, &bl) < 0)
        return;
    uint16_t t[512];
    uint8_t want[8704];
    size_t n = w->name >= 0 ? denial_types_at(z, (size_t)w->name, t) : 0;
    size_t wl = bitmap_build(t, n, want);
    if (wl != bl || memcmp(want, bm, bl) != 0)
        result_add(r, GATE_C_NSEC3_BITMAP, GATE_FAIL, h->rec,
                   LDNS_RR_TYPE_NSEC3, 0, 0,
                   "type bitmap disagrees with the types at the name");
}

static void check_links(struct gate_result *r, const have_t *h, size_t n)
{
    const struct gate_zone *z = r->zone;
    for (size_t i = 0; i < n; i++) {
        const gate_rec_t *rec = &z->recs[h[i].rec];
        params_t q;
        const uint8_t *nx, *bm;
        uint8_t nl;
        size_t bl;
        if (h[i].hlen == 0 || parse_nsec3(rec_rdata(z, rec), rec->rdlen, &q,
                                          &nx, &nl, &bm, &bl) < 0) {
            result_add(r, GATE_C_NSEC3_CHAIN, GATE_FAIL, h[i].rec,
                       LDNS_RR_TYPE_NSEC3, 0, 0, "malformed NSEC3 owner or rdata");
            continue;
        }
        if (i > 0 && !memcmp(h[i].hash, h[i - 1].hash, 64))
            result_add(r, GATE_C_NSEC3_CHAIN, GATE_FAIL, h[i].rec,
                       LDNS_RR_TYPE_NSEC3, 0, 0, "two NSEC3 records with one hash");
        const have_t *nxt = &h[(i + 1) % n];
        if (nl != nxt->hlen || memcmp(nx, nxt->hash, nl) != 0)
            result_add(r, GATE_C_NSEC3_CHAIN, GATE_FAIL, h[i].rec,
                       LDNS_RR_TYPE_NSEC3, 0, 0,
                       "next hashed owner is not the following NSEC3");
    }
}

void nsec3_check(struct gate_result *r)
{
    const struct gate_zone *z = r->zone;
    params_t p = {0};
    int optout;
    wants_t w = {0};
    have_t *h = NULL;
    size_t nh = 0;
    if (params_check(r, &p, &optout) < 0)
        return;
    if (collect_haves(z, &h, &nh) < 0 ||
        collect_wants(r, &p, optout, h, nh, &w) < 0) {
        result_add_owner(r, GATE_C_NSEC3_CHAIN, ldns_rdf_data(z->origin),
                         LDNS_RR_TYPE_NSEC3, "out of memory: unchecked");
        r->oom = 1;
        goto out;
    }
    check_links(r, h, nh);
    size_t i = 0, j = 0;
    while (i < w.n || j < nh) {
        int c = i >= w.n ? 1 : j >= nh ? -1 : hash_cmp(&w.v[i], &h[j]);
        if (c == 0) {
            check_match(r, &w.v[i], &h[j]);
            i++;
            j++;
            while (j < nh && !hash_cmp(&h[j], &h[j - 1]))
                j++;
        } else if (c < 0) {
            if (w.v[i].required) {
                if (w.v[i].ent)
                    result_add_owner(r, GATE_C_NSEC3_CHAIN, w.v[i].ent,
                                     LDNS_RR_TYPE_NSEC3,
                                     "empty non-terminal has no NSEC3");
                else
                    result_add(r, GATE_C_NSEC3_CHAIN, GATE_FAIL,
                               z->names[w.v[i].name].rec, LDNS_RR_TYPE_NSEC3,
                               0, 0, "name has no NSEC3");
            }
            i++;
        } else {
            result_add(r, GATE_C_NSEC3_CHAIN, GATE_FAIL, h[j].rec,
                       LDNS_RR_TYPE_NSEC3, 0, 0,
                       "NSEC3 whose hash matches no name in the zone");
            j++;
        }
    }
out:
    for (size_t k = 0; k < w.n; k++)
        free(w.v[k].ent);
    free(w.v);
    free(h);
}

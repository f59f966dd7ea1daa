/*
 * signer/sign.c - signer_zone_sign: read, build DNSKEY/NSEC3PARAM, chain,
 * sign through the hsm/ pool, write; the only file that talks to hsm/.
 *
 * Pipeline (built for TLD scale): the zone is cut into chunks of whole
 * names (~CHUNK records).  Submitter threads take chunks in order, build
 * RRSIG headers and signed data (RFC 4034 3.1.8.1) for every signing key,
 * reuse still-valid signatures of unchanged RRsets from --previous, and
 * hand each chunk's jobs to hsm_pool_sign as one batch; while one chunk is
 * at the HSMs the other submitter builds the next.  The writer consumes
 * finished chunks in order and frees them, so memory holds the zone plus a
 * bounded window of chunks.  Key use (RFC 4033 2, RFC 6840 5.11): per
 * algorithm, active KSK/CSK sign DNSKEY, active ZSK/CSK sign the rest; if
 * an algorithm has only one kind active, that kind signs everything.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "signer/internal.h"

#define BATCH 4096
#define CHUNK_MAX (1u << 18)
#define WINDOW 64

int denial_build(zone_t *z, const signer_opts_t *o, uint32_t ttl,
                 uint64_t *made, signer_diag_t *diag);

const char *signer_strerror(int code)
{
    switch (code) {
    case SIGNER_EOK: return "success";
    case SIGNER_EINPUT: return "malformed input";
    case SIGNER_ECOLLISION: return "NSEC3 hash collision";
    case SIGNER_EMISMATCH: return "HSM consistency proof failed";
    case SIGNER_EHSM: return "HSM failure";
    case SIGNER_EIO: return "output could not be written";
    case SIGNER_ETIME: return "bad time";
    default:
        if (code < 0 && code > -4096)
            return strerror(-code);
        return "unknown error";
    }
}

struct item {
    uint64_t pos;   /* index of the RRset's first record */
    uint32_t job;   /* job index, or UINT32_MAX: reused */
    uint32_t off;   /* RRSIG header (job) or whole RDATA (reused) in data */
    uint16_t len;
};

struct chunk {
    size_t start, end;
    int done;
    struct item *items;
    size_t nitems, icap;
    arena_t data;   /* headers, signed data, reused RDATA */
    hsm_job_t *jobs;
    size_t njobs, jcap;
    uint8_t *sigs;
    size_t read;    /* writer cursor in items */
    uint8_t rd[2048];
};

struct keyuse {
    size_t idx;
    uint8_t alg;
    uint16_t tag;
};

struct sctx {
    zone_t *z;
    zone_t *prev;
    const signer_opts_t *o;
    const hsm_keyset_t *ks;
    struct hsm_pool *pool;
    struct keyuse ksk[16], zsk[16];
    size_t nksk, nzsk;
    size_t sigmax;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cursor;
    struct chunk **chunks;
    size_t nchunks, ccap, written;
    int err;
    signer_diag_t errdiag;
    uint64_t made, reused, signed_rrsets;
    /* writer side */
    size_t wchunk;
    time_t last_progress;
};

static int parse_origin(const char *text, uint8_t *wire, size_t *len)
{
    size_t o = 0, tl = strlen(text);
    if (tl == 0)
        return SIGNER_EINPUT;
    if (strcmp(text, ".") == 0) {
        wire[0] = 0;
        *len = 1;
        return 0;
    }
    const char *p = text;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || o + l + 2 > 255)
            return SIGNER_EINPUT;
        wire[o++] = (uint8_t)l;
        memcpy(wire + o, p, l);
        o += l;
        p += l;
        if (*p == '.')
            p++;
    }
    wire[o++] = 0;
    *len = o;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Keys                                                              */

static void pick_keys(struct sctx *c)
{
    const hsm_keyset_t *ks = c->ks;
    for (size_t i = 0; i < ks->count; i++) {
        const hsm_key_t *k = &ks->keys[i];
        if (k->state != HSM_STATE_ACTIVE)
            continue;
        struct keyuse u = {i, k->alg, k->keytag};
        if ((k->role == HSM_ROLE_KSK || k->role == HSM_ROLE_CSK) &&
            c->nksk < 16)
            c->ksk[c->nksk++] = u;
        if ((k->role == HSM_ROLE_ZSK || k->role == HSM_ROLE_CSK) &&
            c->nzsk < 16)
            c->zsk[c->nzsk++] = u;
    }
    /* An algorithm with only KSKs (or only ZSKs) active signs everything
     * with them (RFC 6840 5.11: every algorithm signs every RRset). */
    size_t nk = c->nksk, nz = c->nzsk;
    for (size_t i = 0; i < nk; i++) {
        bool found = false;
        for (size_t j = 0; j < nz; j++)
            found |= c->zsk[j].alg == c->ksk[i].alg;
        if (!found && c->nzsk < 16)
            c->zsk[c->nzsk++] = c->ksk[i];
    }
    for (size_t j = 0; j < nz; j++) {
        bool found = false;
        for (size_t i = 0; i < nk; i++)
            found |= c->zsk[j].alg == c->ksk[i].alg;
        if (!found && c->nksk < 16)
            c->ksk[c->nksk++] = c->zsk[j];
    }
}

/* DNSKEY and NSEC3PARAM records at the apex, merged into the sorted zone. */
static int add_apex(struct sctx *c, uint32_t dnskey_ttl, uint32_t param_ttl)
{
    zone_t *z = c->z;
    size_t n0 = z->n;
    uint8_t rd[4 + HSM_PUBKEY_MAX + 8];
    int r = 0;
    for (size_t i = 0; i < c->ks->count; i++) {
        if (c->ks->keys[i].state == HSM_STATE_REMOVED)
            continue;
        size_t n = hsm_key_dnskey_rdata(&c->ks->keys[i], rd);
        if ((r = zone_add_key(z, z->okey, z->okey_len, T_DNSKEY, dnskey_ttl,
                              rd, (uint16_t)n, RF_GEN)))
            return r;
    }
    if (c->o->denial == SIGNER_DENIAL_NSEC3) {
        rd[0] = 1;
        rd[1] = 0;
        put16(rd + 2, c->o->iterations);
        rd[4] = (uint8_t)c->o->salt_len;
        memcpy(rd + 5, c->o->salt, c->o->salt_len);
        if ((r = zone_add_key(z, z->okey, z->okey_len, T_NSEC3PARAM,
                              param_ttl, rd, (uint16_t)(5 + c->o->salt_len),
                              RF_GEN)))
            return r;
    }
    size_t ng = z->n - n0;
    uint64_t *gen = malloc((ng + 1) * sizeof(*gen));
    if (!gen)
        return -ENOMEM;
    /* sort the few generated records, then merge */
    zone_t tmp = *z;
    tmp.idx = z->idx + n0;
    tmp.n = ng;
    r = zone_sort_index(&tmp);
    memcpy(gen, z->idx + n0, ng * sizeof(*gen));
    z->n = n0;
    if (!r)
        r = zone_merge(z, gen, ng);
    free(gen);
    return r;
}

/* ---------------------------------------------------------------- */
/* Reuse (--previous)                                                */

/* Does the previous zone hold the RRset [i, e) of the zone unchanged? */
static bool prev_same(const struct sctx *c, size_t i, size_t e, size_t *pi)
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

static const uint8_t *prev_sig(const struct sctx *c, const rec_t *first,
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

/* ---------------------------------------------------------------- */
/* Chunks                                                            */

static int item_add(struct chunk *ch, const struct item *it)
{
    if (ch->nitems == ch->icap) {
        size_t cap = ch->icap ? ch->icap * 2 : 1024;
        struct item *p = realloc(ch->items, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        ch->items = p;
        ch->icap = cap;
    }
    ch->items[ch->nitems++] = *it;
    return 0;
}

static int job_add(struct chunk *ch, uint32_t key, size_t off, size_t len)
{
    if (ch->njobs == ch->jcap) {
        size_t cap = ch->jcap ? ch->jcap * 2 : 1024;
        hsm_job_t *p = realloc(ch->jobs, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        ch->jobs = p;
        ch->jcap = cap;
    }
    hsm_job_t *j = &ch->jobs[ch->njobs++];
    memset(j, 0, sizeof(*j));
    j->data = (const uint8_t *)(uintptr_t)off; /* fixed up before signing */
    j->len = (uint32_t)len;
    j->key = key;
    return 0;
}

static int sign_rrset(struct sctx *c, struct chunk *ch, size_t i, size_t e)
{
    zone_t *z = c->z;
    rec_t first, r;
    rec_at(z, i, &first);
    uint8_t owner[256];
    size_t olen = key_to_wire(first.key, first.klen, owner);
    unsigned labels = name_labels(owner);
    if (owner[0] == 1 && owner[1] == '*')
        labels--; /* RFC 4034 3.1.3 */
    const struct keyuse *keys = first.type == T_DNSKEY ? c->ksk : c->zsk;
    size_t nkeys = first.type == T_DNSKEY ? c->nksk : c->nzsk;
    size_t pi;
    bool same = c->prev && prev_same(c, i, e, &pi);
    int64_t jit = rrsig_jitter(first.key, first.klen, first.type,
                               c->o->jitter);
    int ret;
    for (size_t k = 0; k < nkeys; k++) {
        struct item it = {.pos = i};
        uint16_t plen;
        const uint8_t *prd =
            same ? prev_sig(c, &first, &keys[k], (uint8_t)labels, &plen)
                 : NULL;
        if (prd) {
            it.job = UINT32_MAX;
            it.off = (uint32_t)ch->data.len;
            it.len = plen;
            if ((ret = arena_put(&ch->data, prd, plen)) ||
                (ret = item_add(ch, &it)))
                return ret;
            continue;
        }
        rrsig_hdr_t h = {
            .covered = first.type, .alg = keys[k].alg,
            .labels = (uint8_t)labels, .orig_ttl = first.ttl,
            .expiration = (uint32_t)(c->o->expiration - jit),
            .inception = (uint32_t)c->o->inception, .keytag = keys[k].tag,
            .signer = z->origin, .signer_len = z->origin_len};
        uint8_t hb[300];
        size_t hl = rrsig_rdata_hdr(&h, hb);
        size_t off = ch->data.len;
        if ((ret = arena_put(&ch->data, hb, hl)))
            return ret;
        for (size_t j = i; j < e; j++) {
            rec_at(z, j, &r);
            if ((ret = rrsig_signed_rr(&ch->data, owner, olen, r.type,
                                       first.ttl, r.rdata, r.rdlen)))
                return ret;
        }
        it.job = (uint32_t)ch->njobs;
        it.off = (uint32_t)off;
        it.len = (uint16_t)hl;
        if ((ret = job_add(ch, (uint32_t)keys[k].idx, off,
                           ch->data.len - off)) ||
            (ret = item_add(ch, &it)))
            return ret;
    }
    return 0;
}

static int chunk_build(struct sctx *c, struct chunk *ch)
{
    zone_t *z = c->z;
    for (size_t i = ch->start; i < ch->end;) {
        size_t e = zone_run_end(z, i, true);
        rec_t r;
        rec_at(z, i, &r);
        if (r.flags & RF_SIGN) {
            int ret = sign_rrset(c, ch, i, e);
            if (ret)
                return ret;
        }
        i = e;
    }
    return 0;
}

static int chunk_sign(struct sctx *c, struct chunk *ch, hsm_diag_t *hd)
{
    if (ch->njobs == 0)
        return 0;
    ch->sigs = malloc(ch->njobs * c->sigmax);
    if (!ch->sigs)
        return -ENOMEM;
    for (size_t j = 0; j < ch->njobs; j++) {
        ch->jobs[j].data = ch->data.buf + (uintptr_t)ch->jobs[j].data;
        ch->jobs[j].sig = ch->sigs + j * c->sigmax;
    }
    return hsm_pool_sign(c->pool, ch->jobs, ch->njobs, hd);
}

/* A chunk ends at a name boundary once it holds BATCH signing jobs or
 * CHUNK_MAX records: batches of thousands of jobs even in an opt-out zone
 * where few RRsets are signed. */
static size_t chunk_end(const struct sctx *c, size_t start)
{
    const zone_t *z = c->z;
    size_t jobs = 0, i = start;
    size_t per = c->nzsk ? c->nzsk : 1;
    while (i < z->n && jobs < BATCH && i - start < CHUNK_MAX) {
        rec_t r;
        rec_at(z, i, &r);
        if (r.flags & RF_SIGN)
            jobs += per;
        i++;
    }
    return i < z->n ? zone_run_end(z, i - 1, false) : z->n;
}

static void *submitter(void *arg)
{
    struct sctx *c = arg;
    zone_t *z = c->z;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->err && c->nchunks - c->wchunk >= WINDOW &&
               c->cursor < z->n)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->err || c->cursor >= z->n) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        struct chunk *ch = calloc(1, sizeof(*ch));
        if (!ch) {
            c->err = -ENOMEM;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        ch->start = c->cursor;
        ch->end = chunk_end(c, ch->start);
        c->cursor = ch->end;
        if (c->nchunks == c->ccap) {
            size_t cap = c->ccap ? c->ccap * 2 : 256;
            struct chunk **p = realloc(c->chunks, cap * sizeof(*p));
            if (!p) {
                free(ch);
                c->err = -ENOMEM;
                pthread_cond_broadcast(&c->cv);
                pthread_mutex_unlock(&c->mu);
                return NULL;
            }
            c->chunks = p;
            c->ccap = cap;
        }
        c->chunks[c->nchunks++] = ch;
        pthread_mutex_unlock(&c->mu);

        hsm_diag_t hd = {{0}};
        int ret = chunk_build(c, ch);
        if (!ret)
            ret = chunk_sign(c, ch, &hd);
        pthread_mutex_lock(&c->mu);
        if (ret && !c->err) {
            c->err = ret;
            if (hd.msg[0])
                snprintf(c->errdiag.msg, sizeof(c->errdiag.msg),
                         "signing: %.900s", hd.msg);
            else
                snprintf(c->errdiag.msg, sizeof(c->errdiag.msg),
                         "signing: %s",
                         ret >= HSM_ERROR_BASE && ret < HSM_ERROR_MAX
                             ? hsm_strerror(ret)
                             : signer_strerror(ret));
        }
        ch->done = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
}

static void chunk_free(struct chunk *ch)
{
    if (!ch)
        return;
    free(ch->items);
    arena_free(&ch->data);
    free(ch->jobs);
    free(ch->sigs);
    free(ch);
}

static void progress(struct sctx *c, size_t done_to)
{
    if (!c->o->progress)
        return;
    time_t t = time(NULL);
    if (t == c->last_progress)
        return;
    c->last_progress = t;
    fprintf(stderr, "\rzonesign: %zu of %zu records written", done_to,
            c->z->n);
}

/* The writer's signature stream: finished chunks in order. */
static int next_sig(void *arg, size_t *pos, const uint8_t **rd, uint16_t *len)
{
    struct sctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->err && c->wchunk < c->nchunks &&
               !c->chunks[c->wchunk]->done)
            pthread_cond_wait(&c->cv, &c->mu);
        while (!c->err && c->wchunk >= c->nchunks && c->cursor < c->z->n)
            pthread_cond_wait(&c->cv, &c->mu);
        int err = c->err;
        struct chunk *ch =
            c->wchunk < c->nchunks ? c->chunks[c->wchunk] : NULL;
        if (!err && ch && !ch->done) {
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        if (err)
            return -1;
        if (!ch)
            return 1;
        if (ch->read < ch->nitems) {
            const struct item *it = &ch->items[ch->read++];
            *pos = it->pos;
            if (it->job == UINT32_MAX) {
                *rd = ch->data.buf + it->off;
                *len = it->len;
                __atomic_add_fetch(&c->reused, 1, __ATOMIC_RELAXED);
            } else {
                const hsm_job_t *j = &ch->jobs[it->job];
                memcpy(ch->rd, ch->data.buf + it->off, it->len);
                memcpy(ch->rd + it->len, j->sig, j->sig_len);
                *rd = ch->rd;
                *len = (uint16_t)(it->len + j->sig_len);
                c->made++;
            }
            return 0;
        }
        pthread_mutex_lock(&c->mu);
        c->chunks[c->wchunk] = NULL;
        c->wchunk++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        size_t done_to = ch->end;
        chunk_free(ch);
        progress(c, done_to);
    }
}

/* ---------------------------------------------------------------- */

static int soa_serial(struct sctx *c, uint32_t *min_ttl, uint32_t *soa_ttl,
                      uint32_t *serial)
{
    zone_t *z = c->z;
    size_t i = zone_lower_bound(z, z->okey, z->okey_len, T_SOA);
    rec_t r;
    rec_at(z, i, &r);
    if (r.type != T_SOA || r.rdlen < 22)
        return SIGNER_EINPUT;
    uint8_t *rd = z->a.buf + r.off + 2 + r.klen + 14;
    uint32_t old = get32(rd + r.rdlen - 20);
    int has_prev = 0;
    uint32_t prev = 0;
    if (c->prev) {
        size_t j = zone_lower_bound(c->prev, z->okey, z->okey_len, T_SOA);
        rec_t p;
        if (j < c->prev->n) {
            rec_at(c->prev, j, &p);
            if (p.type == T_SOA && p.rdlen >= 22) {
                has_prev = 1;
                prev = get32(p.rdata + p.rdlen - 20);
            }
        }
    }
    *serial = signer_serial_next(c->o->serial, old, has_prev, prev,
                                 c->o->now);
    put32(rd + r.rdlen - 20, *serial);
    uint32_t minimum = get32(rd + r.rdlen - 4);
    *soa_ttl = r.ttl;
    *min_ttl = r.ttl < minimum ? r.ttl : minimum;
    return 0;
}

static int run_signing(struct sctx *c, const char *out, signer_diag_t *diag)
{
    unsigned ns = c->o->submitters ? c->o->submitters : 2;
    pthread_t th[16];
    unsigned started = 0;
    int ret = 0;
    if (ns > 16)
        ns = 16;
    for (; started < ns; started++)
        if (pthread_create(&th[started], NULL, submitter, c) != 0)
            break;
    if (started == 0)
        return -EAGAIN;
    ret = writer_write(c->z, out, next_sig, c, diag);
    pthread_mutex_lock(&c->mu);
    if (ret && !c->err)
        c->err = ret;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (c->o->progress)
        fprintf(stderr, "\n");
    if (c->err && c->err != ret) {
        *diag = c->errdiag;
        if (!diag->msg[0])
            snprintf(diag->msg, sizeof(diag->msg), "%s",
                     signer_strerror(c->err));
        return c->err >= HSM_ERROR_BASE && c->err < HSM_ERROR_MAX ? SIGNER_EHSM
                                                               : c->err;
    }
    return ret;
}

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) +
           (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Option checks and defaults (validity, jitter, refresh); the origin. */
static int check_options(signer_opts_t *o, const hsm_keyset_t *ks,
                         uint8_t *origin, size_t *olen, signer_diag_t *diag)
{
    const char *otext = o->origin ? o->origin : ks->zone;
    uint8_t kso[256];
    size_t kl;
    if (parse_origin(otext, origin, olen) != 0) {
        snprintf(diag->msg, sizeof(diag->msg), "bad origin '%s'", otext);
        return SIGNER_EINPUT;
    }
    if (parse_origin(ks->zone, kso, &kl) != 0 || kl != *olen ||
        (name_lower(kso), name_lower(origin), memcmp(kso, origin, kl) != 0)) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "key set is for zone %s, not %s", ks->zone, otext);
        return SIGNER_EINPUT;
    }
    if (o->expiration <= o->inception) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "expiration is not after inception");
        return SIGNER_ETIME;
    }
    int64_t validity = o->expiration - o->inception;
    if (o->jitter < 0)
        o->jitter = validity / 20;
    if (o->refresh < 0)
        o->refresh = validity / 4;
    if (o->jitter >= validity) {
        snprintf(diag->msg, sizeof(diag->msg), "jitter not below validity");
        return SIGNER_ETIME;
    }
    return 0;
}

/* The unsigned zone and, with --previous, the previous signed zone. */
static int load_zones(struct sctx *c, const uint8_t *origin, size_t olen,
                      const signer_hooks_t *hooks, uint64_t *warnings,
                      signer_diag_t *diag)
{
    void (*warn)(void *, const char *) = hooks ? hooks->warn : NULL;
    void *warg = hooks ? hooks->arg : NULL;
    int ret = zone_init(c->z, origin, olen);
    if (!ret)
        ret = reader_load(c->z, c->o->input, READ_UNSIGNED, warn, warg,
                          warnings, diag);
    if (ret || !c->o->previous)
        return ret;
    uint64_t pw = 0;
    if (!(c->prev = calloc(1, sizeof(*c->prev))))
        return -ENOMEM;
    if ((ret = zone_init(c->prev, origin, olen)))
        return ret;
    return reader_load(c->prev, c->o->previous, READ_SIGNED, warn, warg, &pw,
                       diag);
}

/* Serial, DNSKEY and NSEC3PARAM RRsets, which RRsets to sign, the chain. */
static int prepare(struct sctx *c, signer_stats_t *stats, signer_diag_t *diag)
{
    uint32_t min_ttl, soa_ttl;
    int ret;
    pick_keys(c);
    if (c->nzsk == 0) {
        snprintf(diag->msg, sizeof(diag->msg), "no active key in the key set");
        return SIGNER_EHSM;
    }
    if ((ret = soa_serial(c, &min_ttl, &soa_ttl, &stats->serial))) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: bad SOA", c->o->input);
        return ret;
    }
    if ((ret = add_apex(c, soa_ttl, min_ttl)))
        return ret;
    return denial_build(c->z, c->o, min_ttl, &stats->nsec3, diag);
}

/* The consistency proof (DESIGN.md invariant 1) and the workers. */
static int start_pool(struct sctx *c, struct hsm_set *set,
                      const signer_hooks_t *hooks, signer_diag_t *diag)
{
    hsm_pool_opts_t po = {.threads = c->o->threads,
                          .verify_every = c->o->verify_every,
                          .mismatch = hooks ? hooks->mismatch : NULL,
                          .log = hooks ? hooks->warn : NULL,
                          .arg = hooks ? hooks->arg : NULL};
    hsm_diag_t hd = {{0}};
    int hr = hsm_pool_new(&c->pool, set, c->ks, &po, &hd);
    if (hr == HSM_EMISMATCH) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "%s: nothing signed, nothing written", hsm_strerror(hr));
        return SIGNER_EMISMATCH;
    }
    if (hr) {
        snprintf(diag->msg, sizeof(diag->msg), "%s%s%.900s", hsm_strerror(hr),
                 hd.msg[0] ? ": " : "", hd.msg);
        return SIGNER_EHSM;
    }
    for (size_t i = 0; i < c->nksk + c->nzsk; i++) {
        size_t k = i < c->nksk ? c->ksk[i].idx : c->zsk[i - c->nksk].idx;
        size_t m = hsm_pool_sig_max(c->pool, k);
        c->sigmax = m > c->sigmax ? m : c->sigmax;
    }
    return 0;
}

static void fill_stats(const struct sctx *c, signer_stats_t *stats,
                       const signer_hooks_t *hooks)
{
    const zone_t *z = c->z;
    stats->sigs_made = c->made;
    stats->sigs_reused = c->reused;
    for (size_t i = 0; i < z->n;) {
        rec_t r;
        rec_at(z, i, &r);
        stats->rrsets++;
        stats->signed_rrsets += (r.flags & RF_SIGN) != 0;
        i = zone_run_end(z, i, true);
    }
    if (hooks && hooks->hsm_stat)
        for (size_t i = 0; i < hsm_pool_count(c->pool); i++) {
            hsm_stat_t st;
            hsm_pool_stat(c->pool, i, &st);
            hooks->hsm_stat(hooks->arg, i, &st);
        }
}

static void sctx_free(struct sctx *c)
{
    if (!c)
        return;
    hsm_pool_free(c->pool);
    for (size_t i = c->wchunk; i < c->nchunks; i++)
        chunk_free(c->chunks[i]);
    free(c->chunks);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    zone_free(c->z);
    free(c->z);
    zone_free(c->prev);
    free(c->prev);
    free(c);
}

int signer_zone_sign(const signer_opts_t *opts, struct hsm_set *set,
                     const hsm_keyset_t *ks, const signer_hooks_t *hooks,
                     signer_stats_t *stats, signer_diag_t *diag)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct sctx *c = calloc(1, sizeof(*c));
    signer_opts_t o = *opts;
    uint8_t origin[256];
    size_t olen;
    uint64_t warnings = 0;
    int ret;
    if (!c || !(c->z = calloc(1, sizeof(*c->z)))) {
        free(c);
        return -ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->o = &o;
    c->ks = ks;
    if ((ret = check_options(&o, ks, origin, &olen, diag)) ||
        (ret = load_zones(c, origin, olen, hooks, &warnings, diag)))
        goto out;
    stats->records_in = c->z->n;
    stats->t_read = since(&t0);
    if ((ret = prepare(c, stats, diag)))
        goto out;
    stats->t_prepare = since(&t0) - stats->t_read;
    if ((ret = start_pool(c, set, hooks, diag)))
        goto out;
    stats->t_proof = since(&t0) - stats->t_read - stats->t_prepare;
    if ((ret = run_signing(c, o.output, diag)))
        goto out;
    stats->t_sign_write =
        since(&t0) - stats->t_read - stats->t_prepare - stats->t_proof;
    stats->warnings = warnings;
    fill_stats(c, stats, hooks);
out:
    sctx_free(c);
    stats->seconds = since(&t0);
    return ret;
}

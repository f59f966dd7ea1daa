/*
 * signer/sign.c - signer_zone_sign, step by step: options, read the zone
 * (reader.c) and the previous one, SOA serial, DNSKEY/NSEC3PARAM
 * (keys.c), authoritative data and the denial chain (denial.c), the HSM
 * consistency proof (hsm_pool_new, DESIGN.md invariant 1), then signing and
 * writing (pipeline.c).  The files that talk to hsm/ are this one and
 * pipeline.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "signer/internal.h"

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

/* ---------------------------------------------------------------- */

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

/* The previous zone's SOA serial (its cache's or its text's); 0 if none. */
static int prev_serial(const struct sctx *c, uint32_t *prev)
{
    const zone_t *z = c->z;
    if (c->pcache) {
        *prev = cache_serial(c->pcache);
        return 1;
    }
    if (!c->prev)
        return 0;
    size_t j = zone_lower_bound(c->prev, z->okey, z->okey_len, T_SOA);
    rec_t p;
    if (j >= c->prev->n)
        return 0;
    rec_at(c->prev, j, &p);
    if (p.type != T_SOA || p.rdlen < 22)
        return 0;
    *prev = get32(p.rdata + p.rdlen - 20);
    return 1;
}

/* The SOA serial of the output from the input's (c->serial_in) into the
 * SOA record; returns the SOA record. */
static rec_t serial_set(struct sctx *c)
{
    zone_t *z = c->z;
    size_t i = zone_lower_bound(z, z->okey, z->okey_len, T_SOA);
    rec_t r;
    uint32_t prev = 0;
    rec_at(z, i, &r);
    int has_prev = prev_serial(c, &prev);
    c->serial = signer_serial_next(c->o->serial, c->serial_in, has_prev, prev,
                                   c->o->now);
    put32(z->a.buf + r.off + 2 + r.klen + 14 + r.rdlen - 20, c->serial);
    return r;
}

static int soa_serial(struct sctx *c, uint32_t *min_ttl, uint32_t *soa_ttl,
                      uint32_t *serial)
{
    zone_t *z = c->z;
    size_t i = zone_lower_bound(z, z->okey, z->okey_len, T_SOA);
    rec_t r;
    if (i >= z->n)
        return SIGNER_EINPUT;
    rec_at(z, i, &r);
    if (r.type != T_SOA || r.rdlen < 22)
        return SIGNER_EINPUT;
    c->serial_in = get32(r.rdata + r.rdlen - 20);
    r = serial_set(c);
    c->soa_ttl = r.ttl;
    c->soa_min = get32(r.rdata + r.rdlen - 4);
    *serial = c->serial;
    uint32_t minimum = get32(r.rdata + r.rdlen - 4);
    *soa_ttl = r.ttl;
    *min_ttl = r.ttl < minimum ? r.ttl : minimum;
    return 0;
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

struct prevload {
    struct sctx *c;
    const uint8_t *origin;
    size_t olen;
    int ret;
    signer_diag_t diag;
};

/* --previous parsed from its text into c->prev. */
static int read_previous_text(struct sctx *c, const uint8_t *origin,
                              size_t olen, signer_diag_t *diag)
{
    uint64_t pw = 0;
    int ret;
    if (!(c->prev = calloc(1, sizeof(*c->prev))))
        return -ENOMEM;
    if ((ret = zone_init(c->prev, origin, olen)))
        return ret;
    return reader_load(c->prev, c->o->previous, READ_SIGNED, NULL, NULL, &pw,
                       diag);
}

/* --previous: through its signature cache if there is an intact one for
 * a file of its size (cache.c; that the bytes are the ones the cache
 * belongs to is checked as the output is written, and a mismatch starts
 * the run over from the text: restart_from_text), else parsed from its
 * text.  The cache is opened on this thread while the input is read (the
 * zone's origin fields it reads are fixed before the thread starts). */
static void *load_previous(void *arg)
{
    struct prevload *pl = arg;
    struct sctx *c = pl->c;
    const signer_opts_t *o = c->o;
    if (!o->no_cache) {
        size_t l = strlen(o->previous);
        char *cp = o->previous_cache ? NULL : malloc(l + 5);
        if (cp)
            snprintf(cp, l + 5, "%s.zsc", o->previous);
        const char *path = o->previous_cache ? o->previous_cache : cp;
        int r = path ? cache_open(&c->pcache, path, o->previous, c->z) : -1;
        trace_mark("previous cache opened");
        free(cp);
        if (r == 0)
            return NULL;
        if (o->previous_cache && c->warn) {
            char line[1200];
            snprintf(line, sizeof(line), "%.500s: not a signature cache of "
                     "%.500s; reading the previous zone's text",
                     o->previous_cache, o->previous);
            c->warn(c->warg, line);
        }
    }
    pl->ret = read_previous_text(c, pl->origin, pl->olen, &pl->diag);
    return NULL;
}

/* The previous zone file is not the one its cache belongs to (found while
 * copying from it or in the check before committing): the signing starts
 * over from its text, as if the cache had not matched from the start. */
static int restart_from_text(struct sctx *c, signer_stats_t *stats,
                             signer_diag_t *diag)
{
    int ret;
    if (c->warn) {
        char line[1200];
        snprintf(line, sizeof(line), "%.500s: changed since its signature "
                 "cache was written; reading the previous zone's text",
                 c->o->previous);
        c->warn(c->warg, line);
    }
    if (getenv("ZONESIGN_TRACE"))
        fprintf(stderr, "zonesign: trace: previous file changed, found %s\n",
                c->stale_found == 1 ? "while copying" : "before committing");
    pipeline_reset(c);
    cache_free(c->pcache);
    c->pcache = NULL;
    if (c->cw) {
        cache_w_free(c->cw);
        if (cache_w_new(&c->cw) != 0)
            c->cw = NULL;
    }
    memset(diag, 0, sizeof(*diag));
    if ((ret = read_previous_text(c, c->z->origin, c->z->origin_len, diag)))
        return ret;
    serial_set(c);
    stats->serial = c->serial;
    stats->previous_from = 2;
    return pipeline_run(c, c->o->output, diag);
}

/* The unsigned zone and, with --previous, the previous signed zone (on a
 * second thread: the two reads overlap). */
static int load_zones(struct sctx *c, const uint8_t *origin, size_t olen,
                      const signer_hooks_t *hooks, uint64_t *warnings,
                      signer_diag_t *diag)
{
    void (*warn)(void *, const char *) = hooks ? hooks->warn : NULL;
    void *warg = hooks ? hooks->arg : NULL;
    struct prevload pl = {.c = c, .origin = origin, .olen = olen};
    pthread_t th;
    bool threaded = false;
    int ret = zone_init(c->z, origin, olen);
    if (ret)
        return ret;
    if (c->o->previous) {
        threaded = pthread_create(&th, NULL, load_previous, &pl) == 0;
        if (!threaded)
            load_previous(&pl);
    }
    ret = reader_load(c->z, c->o->input, READ_UNSIGNED, warn, warg,
                      warnings, diag);
    trace_mark("input read");
    if (threaded)
        pthread_join(th, NULL);
    trace_mark("previous joined");
    if (!ret && pl.ret) {
        *diag = pl.diag;
        ret = pl.ret;
    }
    return ret;
}

/* Serial, DNSKEY and NSEC3PARAM RRsets, which RRsets to sign, the chain. */
static int prepare(struct sctx *c, signer_stats_t *stats, signer_diag_t *diag)
{
    uint32_t min_ttl, soa_ttl;
    int ret;
    keys_pick(c);
    if (c->nzsk == 0) {
        snprintf(diag->msg, sizeof(diag->msg), "no active key in the key set");
        return SIGNER_EHSM;
    }
    if ((ret = soa_serial(c, &min_ttl, &soa_ttl, &stats->serial))) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: bad SOA", c->o->input);
        return ret;
    }
    c->serial = stats->serial;
    if ((ret = keys_add_apex(c, soa_ttl, min_ttl)))
        return ret;
    trace_mark("apex added");
    return denial_build(c->z, c->o, min_ttl, &stats->nsec3, diag);
}

/* The consistency proof (DESIGN.md invariant 1) and the workers. */
int sign_start_pool(struct sctx *c, struct hsm_set *set, bool helpers,
                    const signer_hooks_t *hooks, signer_diag_t *diag)
{
    hsm_pool_opts_t po = {.threads = c->o->threads,
                          .verify_every = c->o->verify_every,
                          .token_keys = c->o->token_keys != 0,
                          .helper_argv = helpers ? c->o->helper_argv : NULL,
                          .helpers = c->o->helpers < 0 ? UINT32_MAX
                                                       : (unsigned)c->o->helpers,
                          .mismatch = hooks ? hooks->mismatch : NULL,
                          .log = hooks ? hooks->warn : NULL,
                          .arg = hooks ? hooks->arg : NULL};
    hsm_diag_t hd = {{0}};
    int hr = 0;
    if (!set && hooks && hooks->set_wait)
        hr = hooks->set_wait(hooks->set_arg, &set, &hd);
    else if (!set)
        hr = HSM_ENOHSM; /* (a caller error: neither given) */
    if (!hr)
        hr = hsm_pool_new(&c->pool, set, c->ks, &po, &hd);
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
    c->helpers = hsm_pool_helpers(c->pool);
    for (size_t i = 0; i < c->nksk + c->nzsk; i++) {
        size_t k = i < c->nksk ? c->ksk[i].idx : c->zsk[i - c->nksk].idx;
        size_t m = hsm_pool_sig_max(c->pool, k);
        c->sigmax = m > c->sigmax ? m : c->sigmax;
    }
    return 0;
}

static void fill_hsm_stats(const struct sctx *c, const signer_hooks_t *hooks)
{
    if (hooks && hooks->hsm_stat)
        for (size_t i = 0; i < hsm_pool_count(c->pool); i++) {
            hsm_stat_t st;
            hsm_pool_stat(c->pool, i, &st);
            hooks->hsm_stat(hooks->arg, i, &st);
        }
}

static void fill_stats(const struct sctx *c, signer_stats_t *stats,
                       const signer_hooks_t *hooks)
{
    stats->sigs_made = c->made;
    stats->sigs_reused = c->reused;
    stats->rrsets = c->rrsets; /* counted as the chunks were written */
    stats->signed_rrsets = c->signed_rrsets;
    stats->helpers = c->helpers;
    fill_hsm_stats(c, hooks);
}

static void sctx_free(struct sctx *c)
{
    if (!c)
        return;
    hsm_pool_free(c->pool);
    for (size_t i = c->wchunk; i < c->nchunks; i++)
        chunk_free(c->chunks[i]);
    for (size_t i = 0; i < c->nspare; i++)
        chunk_free(c->spare[i]);
    free(c->chunks);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    zone_free(c->z);
    free(c->z);
    zone_free(c->prev);
    free(c->prev);
    cache_free(c->pcache);
    cache_w_free(c->cw);
    free(c);
}

int signer_zone_sign(const signer_opts_t *opts, struct hsm_set *set,
                     const hsm_keyset_t *ks, const signer_hooks_t *hooks,
                     signer_stats_t *stats, signer_diag_t *diag)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    trace_mark("start");
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
    c->sig_min_exp = INT64_MAX;
    c->sig_max_inc = INT64_MIN;
    c->warn = hooks ? hooks->warn : NULL;
    c->warg = hooks ? hooks->arg : NULL;
    if (!o.no_cache && cache_w_new(&c->cw) != 0)
        c->cw = NULL; /* no cache for OUT: a warning at the end */
    if ((ret = check_options(&o, ks, origin, &olen, diag)))
        goto out;
    if (o.previous) { /* first the road that edits the previous output */
        if ((ret = zone_init(c->z, origin, olen)))
            goto out;
        ret = patch_run(c, set, hooks, stats, diag);
        if (ret <= 0) {
            if (ret == 0)
                fill_hsm_stats(c, hooks);
            goto out;
        }
        ret = 0;
    }
    if ((ret = load_zones(c, origin, olen, hooks, &warnings, diag)))
        goto out;
    stats->records_in = c->z->n;
    stats->previous_from = c->pcache ? 1 : c->prev ? 2 : 0;
    stats->t_read = since(&t0);
    if ((ret = prepare(c, stats, diag)))
        goto out;
    stats->t_prepare = since(&t0) - stats->t_read;
    if (!c->pool && (ret = sign_start_pool(c, set, true, hooks, diag)))
        goto out;
    stats->t_proof = since(&t0) - stats->t_read - stats->t_prepare;
    trace_mark("pool started");
    ret = pipeline_run(c, o.output, diag);
    if (ret == -ESTALE)
        ret = restart_from_text(c, stats, diag);
    if (ret)
        goto out;
    trace_mark("pipeline done");
    stats->t_sign_write =
        since(&t0) - stats->t_read - stats->t_prepare - stats->t_proof;
    stats->warnings = warnings;
    fill_stats(c, stats, hooks);
    /* OUT's cache is on disk: its memory goes before the index is made */
    bool cached = c->cw && c->cache_ret == 0;
    cache_w_free(c->cw);
    c->cw = NULL;
    patch_index_write(c, stats, cached); /* (else: removes an old one) */
out:
    sctx_free(c);
    trace_mark("freed");
    stats->seconds = since(&t0);
    return ret;
}

/*
 * signer/pipeline.c - the signing pipeline (built for TLD scale).  The zone
 * is cut into chunks of whole names holding ~BATCH signing jobs.
 * Submitter threads take chunks in order, build RRSIG headers and signed
 * data (RFC 4034 3.1.8.1) for every signing key, reuse still-valid
 * signatures from --previous (reuse.c), and hand each chunk's jobs to
 * hsm_pool_sign as one batch; while one chunk is at the HSMs the other
 * submitter builds the next.  A finished chunk is turned into text
 * segment by segment (segment.c: copied from the previous output where
 * unchanged, printed otherwise); chunks end where segments end.  The
 * writer (writer.c) consumes finished chunks in order, records their
 * signatures and segments for OUT's cache, checks the previous file
 * behind the last segment copied, and frees them, so memory holds the
 * zone plus a bounded window of chunks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "signer/internal.h"

#define BATCH 4096
#define CHUNK_MAX (1u << 16)
#define WINDOW 32


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

static int sign_rrset(struct sctx *c, struct chunk *ch, size_t i, size_t e,
                      EVP_MD_CTX *md)
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
    uint8_t dg[CACHE_DIGEST] = {0};
    cache_sigs_t cs = {0};
    int ret;
    if ((c->cw || c->pcache) && (ret = cache_rrset_digest(md, z, i, e, dg)))
        return ret;
    bool same = c->pcache ? cache_find(c->pcache, dg, &cs) == 0
                          : c->prev && reuse_rrset_same(c, i, e, &pi);
    int64_t jit = rrsig_jitter(first.key, first.klen, first.type,
                               c->o->jitter);
    for (size_t k = 0; k < nkeys; k++) {
        struct item it = {.pos = i};
        uint16_t plen;
        const uint8_t *prd = NULL;
        memcpy(it.dg, dg, CACHE_DIGEST);
        if (same && c->pcache)
            prd = reuse_cache_find(c, &cs, &first, &keys[k], (uint8_t)labels,
                                   &plen);
        else if (same)
            prd = reuse_sig_find(c, &first, &keys[k], (uint8_t)labels, &plen);
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

int chunk_build(struct sctx *c, struct chunk *ch, EVP_MD_CTX *md)
{
    zone_t *z = c->z;
    for (size_t i = ch->start; i < ch->end;) {
        size_t e = zone_run_end_in(z, i, ch->end, true);
        rec_t r;
        rec_at(z, i, &r);
        ch->rrsets++;
        if (r.flags & RF_SIGN) {
            int ret = sign_rrset(c, ch, i, e, md);
            if (ret)
                return ret;
            ch->signed_rrsets++;
        }
        i = e;
    }
    return 0;
}

int chunk_jobs_point(struct sctx *c, struct chunk *ch)
{
    if (ch->njobs * c->sigmax > ch->sigcap) {
        uint8_t *p = realloc(ch->sigs, ch->njobs * c->sigmax);
        if (!p)
            return -ENOMEM;
        ch->sigs = p;
        ch->sigcap = ch->njobs * c->sigmax;
    }
    for (size_t j = 0; j < ch->njobs; j++) {
        ch->jobs[j].data = ch->data.buf + (uintptr_t)ch->jobs[j].data;
        ch->jobs[j].sig = ch->sigs + j * c->sigmax;
    }
    return 0;
}

int chunk_sign(struct sctx *c, struct chunk *ch, hsm_diag_t *hd)
{
    if (ch->njobs == 0)
        return 0;
    int r = chunk_jobs_point(c, ch);
    return r ? r : hsm_pool_sign(c->pool, ch->jobs, ch->njobs, hd);
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
    if (i >= z->n)
        return z->n;
    /* on to the end of a segment (segment.c): a chunk end elsewhere would
     * cut a segment that the previous output has whole */
    for (i = zone_run_end(z, i - 1, false); i < z->n;) {
        rec_t r;
        rec_at(z, i - 1, &r);
        if (segment_cut_after(r.key, r.klen))
            break;
        i = zone_run_end(z, i, false);
    }
    return i;
}

static void submit_loop(struct sctx *c, EVP_MD_CTX *md);

static void *submitter(void *arg)
{
    struct sctx *c = arg;
    EVP_MD_CTX *md = NULL;
    if (cache_md_new(&md) != 0) {
        pthread_mutex_lock(&c->mu);
        c->err = -ENOMEM;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    submit_loop(c, md);
    EVP_MD_CTX_free(md);
    return NULL;
}

static void submit_loop(struct sctx *c, EVP_MD_CTX *md)
{
    zone_t *z = c->z;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->err && c->nchunks - c->wchunk >= WINDOW &&
               c->cursor < z->n)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->err || c->cursor >= z->n) {
            pthread_mutex_unlock(&c->mu);
            return;
        }
        struct chunk *ch = c->nspare ? c->spare[--c->nspare]
                                     : calloc(1, sizeof(*ch));
        if (!ch) {
            c->err = -ENOMEM;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            return;
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
                return;
            }
            c->chunks = p;
            c->ccap = cap;
        }
        c->chunks[c->nchunks++] = ch;
        pthread_mutex_unlock(&c->mu);

        hsm_diag_t hd = {{0}};
        int ret = chunk_build(c, ch, md);
        if (!ret)
            ret = chunk_sign(c, ch, &hd);
        if (!ret)
            ret = segment_format(c, ch, md);
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

void chunk_free(struct chunk *ch)
{
    if (!ch)
        return;
    free(ch->items);
    arena_free(&ch->data);
    free(ch->jobs);
    free(ch->sigs);
    arena_free(&ch->text);
    arena_free(&ch->scratch);
    free(ch->segs);
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

const uint8_t *chunk_item_rdata(const struct chunk *ch, const struct item *it,
                                uint8_t *buf, uint16_t *len)
{
    if (it->job == UINT32_MAX) {
        *len = it->len;
        return ch->data.buf + it->off;
    }
    const hsm_job_t *j = &ch->jobs[it->job];
    memcpy(buf, ch->data.buf + it->off, it->len);
    memcpy(buf + it->len, j->sig, j->sig_len);
    *len = (uint16_t)(it->len + j->sig_len);
    return buf;
}

/* The earliest expiration and latest inception of the RRSIGs written
 * (the patch index records them: patch.c). */
void sig_times(struct sctx *c, const uint8_t *rd, uint16_t len)
{
    if (len < 18)
        return;
    int64_t exp = get32(rd + 8), inc = get32(rd + 12);
    if (exp < c->sig_min_exp)
        c->sig_min_exp = exp;
    if (inc > c->sig_max_inc)
        c->sig_max_inc = inc;
}

/* The signature cache of OUT collects every RRSIG written; a failure only
 * drops the cache (the zone does not depend on it).  Also counts. */
static void chunk_account(struct sctx *c, struct chunk *ch)
{
    c->rrsets += ch->rrsets;
    c->signed_rrsets += ch->signed_rrsets;
    for (size_t i = 0; i < ch->nsegs && c->cw && !c->cw_err; i++)
        c->cw_err = cache_w_seg(c->cw, ch->segs[i].cd, ch->segs[i].td,
                                ch->segs[i].len);
    for (size_t i = 0; i < ch->nitems; i++) {
        const struct item *it = &ch->items[i];
        uint16_t len;
        const uint8_t *rd = chunk_item_rdata(ch, it, ch->rd, &len);
        if (it->job == UINT32_MAX)
            c->reused++;
        else
            c->made++;
        sig_times(c, rd, len);
        if (!c->cw || c->cw_err)
            continue;
        if (it->pos != c->cw_last) {
            c->cw_last = it->pos;
            c->cw_err = cache_w_begin(c->cw, it->dg);
        }
        if (!c->cw_err)
            c->cw_err = cache_w_add(c->cw, rd, len);
    }
}

/* A written chunk keeps its buffers for the next one: fresh multi-megabyte
 * buffers per chunk cost page faults and munmap calls at TLD scale. */
static void chunk_recycle(struct sctx *c, struct chunk *ch)
{
    pthread_mutex_lock(&c->mu);
    if (c->nspare < CHUNK_SPARE) {
        ch->start = ch->end = 0;
        ch->done = 0;
        ch->nitems = ch->njobs = ch->read = ch->nsegs = ch->copied_end = 0;
        ch->rrsets = ch->signed_rrsets = 0;
        ch->data.len = ch->text.len = ch->scratch.len = 0;
        c->spare[c->nspare++] = ch;
        ch = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    chunk_free(ch);
}

/* The writer's block stream: finished chunks' text in order.  A chunk is
 * accounted for and freed when the writer asks for the next block. */
/* The previous zone file is the one its cache belongs to: as the output
 * is written, the writer checks the segments of the previous file that
 * will not be copied any more.  Chunks come in canonical order, so a
 * previous segment before the last one a written chunk copied is never
 * copied later; checked now, it costs the writer's idle time, not a pass
 * at the end.  0, or -ESTALE (and the run stops). */
static int verify_behind(struct sctx *c, size_t to)
{
    if (!c->pcache || to <= c->verified_to)
        return 0;
    int r = 0;
    if (cache_verify(c->pcache, c->verified_to, to) != 0)
        r = -ESTALE;
    c->verified_to = to;
    if (r) {
        if (r == -ESTALE)
            c->stale_found = 2;
        pthread_mutex_lock(&c->mu);
        if (!c->err)
            c->err = r;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return r;
}

static int next_block(void *arg, const uint8_t **p, size_t *n)
{
    struct sctx *c = arg;
    if (c->wlast) {
        struct chunk *done = c->wlast;
        c->wlast = NULL;
        chunk_account(c, done);
        size_t done_to = done->end, copied_end = done->copied_end;
        chunk_recycle(c, done);
        progress(c, done_to);
        if (copied_end && verify_behind(c, copied_end - 1) != 0)
            return -1;
    }
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->err)
            break;
        if (c->wchunk < c->nchunks && c->chunks[c->wchunk]->done)
            break;
        if (c->wchunk >= c->nchunks && c->cursor >= c->z->n)
            break;
        pthread_cond_wait(&c->cv, &c->mu);
    }
    int err = c->err;
    struct chunk *ch = NULL;
    if (!err && c->wchunk < c->nchunks) {
        ch = c->chunks[c->wchunk];
        c->chunks[c->wchunk++] = NULL;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (err)
        return -1;
    if (!ch)
        return 1;
    c->wlast = ch;
    *p = ch->text.buf;
    *n = ch->text.len;
    return 0;
}

/* OUT.zsc is written on its own thread while OUT is synced, and renamed
 * beside OUT once OUT is in place (the directory is synced once, for
 * both).  A cache that cannot be written is a warning, never a failed
 * signing; no stale OUT.zsc is left beside a new OUT. */
static void *cache_write_run(void *arg)
{
    struct sctx *c = arg;
    size_t l = strlen(c->o->output);
    char *path = malloc(l + 5);
    c->cache_ret = -ENOMEM;
    if (path) {
        snprintf(path, l + 5, "%s.zsc", c->o->output);
        c->cache_ret = cache_w_write(c->cw, path, c->o->no_spare, c->z,
                                     c->out_size, c->serial, &c->cache_tmp,
                                     &c->cache_diag);
    }
    free(path);
    return NULL;
}

/* Last step before OUT is synced: with --previous through its cache, the
 * previous zone file is the one the cache belongs to (what was copied was
 * checked as it was read, most of the rest as the output was written);
 * then OUT's own cache is started. */
static int before_sync(void *arg, uint64_t size)
{
    struct sctx *c = arg;
    if (verify_behind(c, SIZE_MAX) != 0)
        return -1;
    trace_mark("previous file verified");
    if (c->cw && !c->cw_err) {
        c->out_size = size;
        c->cache_started =
            pthread_create(&c->cache_th, NULL, cache_write_run, c) == 0;
    }
    return 0;
}

static void after_rename(void *arg, int err)
{
    struct sctx *c = arg;
    size_t l = strlen(c->o->output);
    char *path = malloc(l + 5);
    if (c->cache_started) {
        pthread_join(c->cache_th, NULL);
        c->cache_started = false;
    } else if (!err) {
        c->cache_ret = -ENOMEM; /* not started: no cache or no memory */
    }
    if (path)
        snprintf(path, l + 5, "%s.zsc", c->o->output);
    /* the old cache kept as the spare the next run writes over (reap.c) */
    if (!err && c->cache_tmp && path)
        side_retire(path, !c->o->no_spare, NULL);
    if (c->cache_tmp && (err || !path || rename(c->cache_tmp, path) != 0)) {
        if (!err && !c->cache_diag.msg[0])
            snprintf(c->cache_diag.msg, sizeof(c->cache_diag.msg),
                     "%s: %s", c->cache_tmp, strerror(errno));
        unlink(c->cache_tmp);
        c->cache_ret = -EIO;
    }
    free(c->cache_tmp);
    c->cache_tmp = NULL;
    if (!err && c->cache_ret) {
        if (path)
            side_retire(path, false, NULL); /* (and its spare) */
        if (c->cw && c->warn) {
            char line[1200];
            snprintf(line, sizeof(line), "signature cache not written: %s",
                     c->cache_diag.msg[0] ? c->cache_diag.msg
                                          : "out of memory");
            c->warn(c->warg, line);
        }
    }
    free(path);
    trace_mark("cache written");
}

void pipeline_reset(struct sctx *c)
{
    for (size_t i = c->wchunk; i < c->nchunks; i++)
        chunk_free(c->chunks[i]);
    for (size_t i = 0; i < c->nspare; i++)
        chunk_free(c->spare[i]);
    free(c->chunks);
    c->chunks = NULL;
    c->nchunks = c->ccap = c->wchunk = c->nspare = c->cursor = 0;
    c->err = 0;
    memset(&c->errdiag, 0, sizeof(c->errdiag));
    c->made = c->reused = 0;
    c->rrsets = c->signed_rrsets = 0;
    c->seg_copied = c->seg_printed = 0;
    c->stale_found = 0;
    c->verified_to = 0;
    c->cache_ret = 0;
    memset(&c->cache_diag, 0, sizeof(c->cache_diag));
    c->cw_err = 0;
}

int pipeline_run(struct sctx *c, const char *out, signer_diag_t *diag)
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
    uint64_t size = 0;
    c->cw_last = SIZE_MAX;
    writer_hooks_t wh = {next_block, before_sync, after_rename, c,
                         c->o->no_spare != 0};
    ret = writer_write(out, &wh, &size, diag);
    if (c->wlast) {
        chunk_account(c, c->wlast);
        chunk_free(c->wlast);
        c->wlast = NULL;
    }
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
    if (getenv("ZONESIGN_TRACE"))
        fprintf(stderr, "zonesign: trace: segments copied %llu, printed %llu\n",
                (unsigned long long)c->seg_copied,
                (unsigned long long)c->seg_printed);
    return ret;
}

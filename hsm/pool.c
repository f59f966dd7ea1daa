/*
 * hsm/pool.c - the signing pool: worker threads over all HSMs of a set.
 *
 * Each worker holds one raw PKCS#11 session per HSM (PKCS#11 sessions are
 * not for concurrent use; the module was initialised with
 * CKF_OS_LOCKING_OK by libp11).  Batches queue FIFO; workers take chunks of
 * CHUNK jobs, and each chunk goes to the next HSM in rotation, so a batch
 * spreads over every HSM.  Hashing is on the host, C_Sign on the token
 * (raw.c).  An HSM whose C_SignInit/C_Sign fails, or whose sampled
 * signature does not verify against the DNSKEY (1 of verify_every), is
 * taken out of rotation with a logged reason and the job is redone on
 * another HSM; when a batch ends, the jobs an HSM signed in that batch
 * before it was caught with a bad signature are signed again elsewhere.
 * No HSM left: HSM_ENOHSM and the batch must not be used.
 * The consistency proof (probe.c) runs before any worker starts.
 * Session keys: unless opts.token_keys is set, each worker copies every
 * private key into its own session on every HSM (C_CopyObject with
 * CKA_TOKEN false: the copy never leaves the HSM and keeps CKA_SENSITIVE
 * and CKA_EXTRACTABLE) and signs with the copy.  SoftHSM's token objects
 * are backed by files and cost system calls when used; a session object
 * lives in memory: about 1.5x faster per signature (bench_hsm).  Each
 * copy is proven before it signs: a probe signature of the copy must
 * verify against the DNSKEY, or the pool is not started (HSM_EMISMATCH).  An HSM that refuses the copy
 * (CKA_COPYABLE false, or no C_CopyObject) signs with the token object.
 * Signing helpers (opts.helper_argv, helper.c): a worker may send its
 * chunks to a process of its own instead of calling C_Sign itself; the
 * rotation, the checks of every signature, taking an HSM out and the redo
 * stay here, in the same code as for the worker's own sessions.
 * Not here: RRSIG wire form (signer/).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "hsm/internal.h"

#define CHUNK 32

struct pool_hsm {
    atomic_int in;            /* in rotation */
    atomic_int tainted;       /* taken out for a signature that failed */
    atomic_uint_fast64_t sigs;
    atomic_uint_fast64_t sampled;
    char reason[256];         /* under pool->lock */
    CK_OBJECT_HANDLE *priv;   /* per key; 0 for removed keys */
    unsigned copy_refused;    /* C_CopyObject refusals (pool start only) */
};

struct batch {
    hsm_job_t *jobs;
    size_t n, next, done;
    int err;
    pthread_cond_t cv;
    struct batch *qnext;
};

struct worker {
    struct hsm_pool *pool;
    pthread_t th;
    bool started;
    CK_SESSION_HANDLE *sess;  /* per HSM */
    CK_OBJECT_HANDLE *key;    /* per (HSM, key): session copy or token key */
    struct hsm_helper helper; /* fd -1: this worker signs in-process */
    uint8_t *hsig;            /* CHUNK helper signatures of 512 bytes */
    uint16_t hlen[CHUNK];
};

struct hsm_pool {
    struct hsm_set *set;
    const hsm_keyset_t *ks;
    hsm_pool_opts_t opts;
    struct pool_hsm *h;
    EVP_PKEY **pk;            /* per key, from the DNSKEY */
    size_t nworkers;
    struct worker *w;
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct batch *head, *tail;
    bool stop;
    atomic_uint rr;
};

static void take_out(struct hsm_pool *p, size_t i, bool bad_sig,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void take_out(struct hsm_pool *p, size_t i, bool bad_sig,
                     const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (bad_sig)
        atomic_store(&p->h[i].tainted, 1);
    if (atomic_exchange(&p->h[i].in, 0) == 0)
        return;
    pthread_mutex_lock(&p->lock);
    va_start(ap, fmt);
    vsnprintf(p->h[i].reason, sizeof(p->h[i].reason), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "HSM %zu (token %s) taken out of rotation: "
             "%s", i + 1, p->set->tok[i].label, p->h[i].reason);
    if (p->opts.log != NULL)
        p->opts.log(p->opts.arg, line);
    pthread_mutex_unlock(&p->lock);
}

/* Next HSM in rotation; the ones left share the work evenly. */
static int pick(struct hsm_pool *p)
{
    size_t n = p->set->n, live = 0, want;
    unsigned r = atomic_fetch_add(&p->rr, 1);
    for (size_t i = 0; i < n; i++)
        live += atomic_load(&p->h[i].in) != 0;
    if (live == 0)
        return -1;
    want = r % live;
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&p->h[i].in) && want-- == 0)
            return (int)i;
    return pick(p); /* one went out meanwhile */
}

/* Checks the signature HSM I made for job J (its length; 1 of
 * verify_every against the DNSKEY) and hands it to the job; false, with
 * the HSM taken out, if it is wrong. */
static bool accept_sig(struct hsm_pool *p, size_t i, hsm_job_t *j,
                       const uint8_t *sig, size_t len)
{
    const hsm_key_t *k = &p->ks->keys[j->key];
    unsigned every = p->opts.verify_every;
    if (len > alg_sig_max(k->alg, k->pubkey, k->pubkey_len)) {
        take_out(p, i, true, "key %s: signature of %zu bytes", k->label,
                 len);
        return false;
    }
    if (every != 0 && atomic_fetch_add(&p->h[i].sampled, 1) % every == 0 &&
        alg_verify(p->pk[j->key], k->alg, j->data, j->len, sig, len) != 0) {
        take_out(p, i, true, "key %s: a signature does not verify against "
                 "the DNSKEY (key tag %u)", k->label, k->keytag);
        return false;
    }
    memcpy(j->sig, sig, len);
    j->sig_len = (uint16_t)len;
    j->hsm = (uint16_t)(i + 1);
    atomic_fetch_add(&p->h[i].sigs, 1);
    return true;
}

/* Signs one job on HSM I in this process; false if that HSM must go. */
static bool sign_on(struct worker *w, size_t i, hsm_job_t *j)
{
    struct hsm_pool *p = w->pool;
    const hsm_key_t *k = &p->ks->keys[j->key];
    uint8_t sig[512];
    size_t len = 0;
    CK_RV rv = raw_sign(p->set->tok[i].mod->f, w->sess[i],
                        w->key[i * p->ks->count + j->key], k->alg, j->data,
                        j->len, sig, &len);
    if (rv != CKR_OK) {
        take_out(p, i, false, "key %s: C_Sign: %s", k->label,
                 hsm_ckr_name(rv));
        return false;
    }
    return accept_sig(p, i, j, sig, len);
}

static int run_chunk(struct worker *w, hsm_job_t *jobs, size_t n)
{
    int h = pick(w->pool);
    for (size_t j = 0; j < n; j++) {
        while (h >= 0 && !sign_on(w, (size_t)h, &jobs[j]))
            h = pick(w->pool);
        if (h < 0)
            return HSM_ENOHSM;
    }
    return 0;
}

static void helper_lost(struct worker *w)
{
    struct hsm_pool *p = w->pool;
    helper_stop(&w->helper);
    if (p->opts.log != NULL) {
        char line[160];
        snprintf(line, sizeof(line), "signing helper %zu lost; its worker "
                 "signs in this process from now on",
                 (size_t)(w - p->w) + 1);
        pthread_mutex_lock(&p->lock);
        p->opts.log(p->opts.arg, line);
        pthread_mutex_unlock(&p->lock);
    }
}

/* A chunk through the worker's helper: the whole chunk to one HSM in one
 * request; the helper stops at a failing C_Sign, the rest goes to the
 * next HSM.  A lost helper: the rest is signed in this process. */
static int run_chunk_helper(struct worker *w, hsm_job_t *jobs, size_t n)
{
    struct hsm_pool *p = w->pool;
    size_t j = 0;
    while (j < n) {
        int h = pick(p), done;
        size_t k;
        CK_RV rv = CKR_OK;
        if (h < 0)
            return HSM_ENOHSM;
        done = helper_sign(&w->helper, (size_t)h, jobs + j, n - j, w->hsig,
                           w->hlen, &rv);
        if (done < 0) {
            helper_lost(w);
            return run_chunk(w, jobs + j, n - j);
        }
        for (k = 0; k < (size_t)done; k++)
            if (!accept_sig(p, (size_t)h, &jobs[j + k], w->hsig + k * 512,
                            w->hlen[k]))
                break;
        j += k;
        if (k == (size_t)done && j < n)
            take_out(p, (size_t)h, false, "key %s: C_Sign: %s",
                     p->ks->keys[jobs[j].key].label, hsm_ckr_name(rv));
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct hsm_pool *p = w->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct batch *b;
        size_t start, cnt;
        int rc;
        while (!p->stop && p->head == NULL)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stop)
            break;
        b = p->head;
        start = b->next;
        cnt = b->n - start < CHUNK ? b->n - start : CHUNK;
        b->next += cnt;
        if (b->next == b->n && (p->head = b->qnext) == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        rc = b->err != 0            ? 0
             : w->helper.fd >= 0 ? run_chunk_helper(w, b->jobs + start, cnt)
                                 : run_chunk(w, b->jobs + start, cnt);
        pthread_mutex_lock(&p->lock);
        if (rc != 0)
            b->err = rc;
        b->done += cnt;
        if (b->done == b->n)
            pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int submit(struct hsm_pool *p, hsm_job_t *jobs, size_t n)
{
    struct batch b = {.jobs = jobs, .n = n};
    int rc;
    if (n == 0)
        return 0;
    pthread_cond_init(&b.cv, NULL);
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->qnext = &b;
    else
        p->head = &b;
    p->tail = &b;
    pthread_cond_broadcast(&p->work);
    while (b.done < b.n)
        pthread_cond_wait(&b.cv, &p->lock);
    rc = b.err;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&b.cv);
    return rc;
}

/* What an HSM signed before it was caught signing wrongly (it is
 * tainted), signed again by the others: 0, or the error of a batch. */
static int redo_tainted(struct hsm_pool *p, hsm_job_t *jobs, size_t n)
{
    int rc = 0;
    /* which HSMs are tainted, read once per round: another batch may
     * catch one meanwhile (it is then redone in the next round) */
    bool *bad = calloc(p->set->n ? p->set->n : 1, sizeof(*bad));
    if (bad == NULL)
        return -ENOMEM;
    while (rc == 0) {
        size_t redo = 0, r = 0;
        hsm_job_t *again;
        for (size_t h = 0; h < p->set->n; h++)
            bad[h] = atomic_load(&p->h[h].tainted) != 0;
        for (size_t i = 0; i < n; i++)
            if (bad[jobs[i].hsm - 1])
                redo++;
        if (redo == 0)
            break;
        if ((again = malloc(redo * sizeof(*again))) == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (bad[jobs[i].hsm - 1])
                again[r++] = jobs[i];
        rc = submit(p, again, redo);
        r = 0;
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (bad[jobs[i].hsm - 1]) {
                jobs[i].sig_len = again[r].sig_len;
                jobs[i].hsm = again[r++].hsm;
            }
        free(again);
    }
    free(bad);
    return rc;
}

int hsm_pool_sign(struct hsm_pool *p, hsm_job_t *jobs, size_t n,
                  hsm_diag_t *diag)
{
    int rc;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].key >= p->ks->count || jobs[i].sig == NULL ||
            (jobs[i].data == NULL && jobs[i].len != 0)) {
            diag_set(diag, "job %zu: bad key index or buffer", i);
            return -EINVAL;
        }
        if (p->ks->keys[jobs[i].key].state == HSM_STATE_REMOVED) {
            diag_set(diag, "job %zu: key %s is removed", i,
                     p->ks->keys[jobs[i].key].label);
            return HSM_ENOKEY;
        }
        jobs[i].hsm = 0;
    }
    rc = submit(p, jobs, n);
    if (rc == 0)
        rc = redo_tainted(p, jobs, n);
    if (rc == HSM_ENOHSM)
        diag_set(diag, "no HSM left in rotation: nothing signed");
    return rc;
}

int hsm_pool_redo_tainted(struct hsm_pool *p, hsm_job_t *jobs, size_t n,
                          hsm_diag_t *diag)
{
    for (size_t i = 0; i < n; i++)
        if (jobs[i].hsm == 0 || jobs[i].hsm > p->set->n) {
            diag_set(diag, "job %zu: not signed by an HSM of the pool", i);
            return -EINVAL;
        }
    int rc = redo_tainted(p, jobs, n);
    if (rc == HSM_ENOHSM)
        diag_set(diag, "no HSM left in rotation: nothing signed");
    return rc;
}

size_t hsm_pool_sig_max(const struct hsm_pool *p, size_t key)
{
    if (key >= p->ks->count)
        return 0;
    return alg_sig_max(p->ks->keys[key].alg, p->ks->keys[key].pubkey,
                       p->ks->keys[key].pubkey_len);
}

size_t hsm_pool_count(const struct hsm_pool *p) { return p->set->n; }

size_t hsm_pool_helpers(const struct hsm_pool *p)
{
    size_t n = 0;
    for (size_t t = 0; t < p->nworkers; t++)
        n += p->w[t].helper.fd >= 0;
    return n;
}

void hsm_pool_stat(const struct hsm_pool *p, size_t i, hsm_stat_t *out)
{
    struct hsm_pool *mp = (struct hsm_pool *)p; /* lock only */
    memset(out, 0, sizeof(*out));
    if (i >= p->set->n)
        return;
    out->token = p->set->tok[i].label;
    out->signatures = atomic_load(&mp->h[i].sigs);
    out->in_rotation = atomic_load(&mp->h[i].in);
    pthread_mutex_lock(&mp->lock);
    snprintf(out->reason, sizeof(out->reason), "%s", p->h[i].reason);
    pthread_mutex_unlock(&mp->lock);
}

void hsm_pool_free(struct hsm_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (size_t t = 0; p->w != NULL && t < p->nworkers; t++) {
        struct worker *w = &p->w[t];
        if (w->started)
            pthread_join(w->th, NULL);
        /* a helper that was working ends with 0 when its socket closes */
        int st = helper_stop(&w->helper);
        if (st != 0 && p->opts.log != NULL) {
            char line[128];
            snprintf(line, sizeof(line), "signing helper %zu ended with "
                     "status %d", t + 1, st);
            p->opts.log(p->opts.arg, line);
        }
        free(w->hsig);
        for (size_t i = 0; w->sess != NULL && i < p->set->n; i++)
            if (w->sess[i] != 0)
                p->set->tok[i].mod->f->C_CloseSession(w->sess[i]);
        free(w->sess);
        free(w->key);
    }
    for (size_t i = 0; p->h != NULL && i < p->set->n; i++)
        free(p->h[i].priv);
    for (size_t k = 0; p->pk != NULL && k < p->ks->count; k++)
        EVP_PKEY_free(p->pk[k]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    free(p->pk);
    free(p->h);
    free(p->w);
    free(p);
}

/* Private key handles per HSM and verification keys per key. */
static int pool_keys(struct hsm_pool *p, hsm_diag_t *diag)
{
    for (size_t k = 0; k < p->ks->count; k++) {
        const hsm_key_t *key = &p->ks->keys[k];
        int rc;
        if (key->state == HSM_STATE_REMOVED)
            continue;
        rc = alg_pkey_from_dnskey(key->alg, key->pubkey, key->pubkey_len,
                                  &p->pk[k]);
        if (rc != 0) {
            diag_set(diag, "key %s: cannot build a key from its DNSKEY",
                     key->label);
            return rc;
        }
        for (size_t i = 0; i < p->set->n; i++) {
            struct hsm_token *t = &p->set->tok[i];
            if (raw_find(t, t->admin, CKO_PRIVATE_KEY, key->id, key->id_len,
                         NULL, &p->h[i].priv[k], 1) != 1) {
                diag_set(diag, "HSM %zu (token %s): key %s: not exactly "
                         "one private key", i + 1, t->label, key->label);
                return HSM_ENOKEY;
            }
        }
    }
    return 0;
}

/* Worker W's handle for every key on HSM I: a proven session copy, or
 * the token object when the HSM will not copy it. */
static int worker_keys(struct hsm_pool *p, struct worker *w, size_t i,
                       hsm_diag_t *diag)
{
    struct hsm_token *tok = &p->set->tok[i];
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof(no)}};
    for (size_t k = 0; k < p->ks->count; k++) {
        const hsm_key_t *key = &p->ks->keys[k];
        CK_OBJECT_HANDLE *h = &w->key[i * p->ks->count + k];
        const char *why = NULL;
        CK_RV rv;
        int rc;
        *h = p->h[i].priv[k];
        if (key->state == HSM_STATE_REMOVED || p->opts.token_keys)
            continue;
        rv = tok->mod->f->C_CopyObject(w->sess[i], p->h[i].priv[k], tmpl, 1,
                                       h);
        if (rv != CKR_OK) {
            *h = p->h[i].priv[k];
            if (!p->h[i].copy_refused++ && p->opts.log != NULL) {
                char line[256];
                snprintf(line, sizeof(line), "HSM %zu (token %s): no "
                         "session copy of key %s (%s); signing with the "
                         "token objects", i + 1, tok->label, key->label,
                         hsm_ckr_name(rv));
                p->opts.log(p->opts.arg, line);
            }
            continue;
        }
        rc = probe_sign(tok, w->sess[i], *h, key, &why, diag);
        if (rc == HSM_EMISMATCH) {
            probe_mismatch(p->opts.mismatch, p->opts.arg, p->set, i, key, -1,
                           "session copy of the key: probe signature does "
                           "not verify");
            diag_set(diag, "HSM consistency proof failed");
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void helper_unused(struct hsm_pool *p, size_t t, const char *why)
{
    if (p->opts.log != NULL) {
        char line[1200];
        snprintf(line, sizeof(line), "signing helper %zu not used (%s); its "
                 "worker signs in this process", t + 1, why);
        p->opts.log(p->opts.arg, line);
    }
    helper_stop(&p->w[t].helper);
}

static void helper_start(struct hsm_pool *p, size_t t)
{
    hsm_diag_t d = {{0}};
    if (helper_spawn(&p->w[t].helper, p->opts.helper_argv, p->set, p->ks,
                     p->opts.token_keys, &d) != 0)
        helper_unused(p, t, d.msg);
}

/* Worker T's helper, once it is ready: the proof of its own keys, one
 * random challenge per HSM and key verified against the DNSKEY.  A helper
 * that cannot sign is not used (logged); one that signs with another key
 * stops the pool start (HSM_EMISMATCH), as the pool's own copies do. */
static int helper_prove(struct hsm_pool *p, size_t t, hsm_diag_t *diag)
{
    struct worker *w = &p->w[t];
    hsm_diag_t d = {{0}};
    if (helper_ready(&w->helper, &d) != 0) {
        helper_unused(p, t, d.msg);
        return 0;
    }
    if (w->hsig == NULL && (w->hsig = malloc(CHUNK * 512)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < p->set->n; i++)
        for (size_t k = 0; k < p->ks->count; k++) {
            const hsm_key_t *key = &p->ks->keys[k];
            uint8_t ch[64];
            hsm_job_t job = {.data = ch, .len = sizeof(ch),
                             .key = (uint32_t)k};
            CK_RV rv = CKR_OK;
            int done, rc;
            if (key->state == HSM_STATE_REMOVED)
                continue;
            if (RAND_bytes(ch, sizeof(ch)) != 1)
                return HSM_ECRYPTO;
            done = helper_sign(&w->helper, i, &job, 1, w->hsig, w->hlen, &rv);
            if (done != 1) {
                char why[160];
                snprintf(why, sizeof(why), "HSM %zu: key %s: %s", i + 1,
                         key->label, done < 0 ? "it ended" : hsm_ckr_name(rv));
                helper_unused(p, t, why);
                return 0;
            }
            rc = alg_verify(p->pk[k], key->alg, ch, sizeof(ch), w->hsig,
                            w->hlen[0]);
            if (rc == HSM_EMISMATCH) {
                probe_mismatch(p->opts.mismatch, p->opts.arg, p->set, i, key,
                               -1, "a signing helper's copy of the key: "
                               "probe signature does not verify");
                diag_set(diag, "HSM consistency proof failed");
            }
            if (rc != 0)
                return rc;
        }
    return 0;
}

static int pool_workers(struct hsm_pool *p, hsm_diag_t *diag)
{
    size_t nh = p->opts.helper_argv == NULL ? 0
                : p->opts.helpers < p->nworkers ? p->opts.helpers
                                                : p->nworkers;
    /* The first helper opens its HSMs while this process makes its
     * sessions; each next one when the one before is ready: SoftHSM
     * writes a token's files when a process initialises it and at every
     * login, and a process reading them meanwhile sees no token or a
     * wrong PIN (about one start in four on a loaded machine when the
     * helpers opened at once). */
    if (nh > 0)
        helper_start(p, 0);
    for (size_t t = 0; t < p->nworkers; t++) {
        struct worker *w = &p->w[t];
        w->pool = p;
        w->sess = calloc(p->set->n, sizeof(*w->sess));
        w->key = calloc(p->set->n * (p->ks->count > 0 ? p->ks->count : 1),
                        sizeof(*w->key));
        if (w->sess == NULL || w->key == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < p->set->n; i++) {
            struct hsm_token *tok = &p->set->tok[i];
            int rc;
            CK_RV rv = tok->mod->f->C_OpenSession(
                tok->slot_id, CKF_SERIAL_SESSION, NULL, NULL, &w->sess[i]);
            if (rv != CKR_OK) {
                w->sess[i] = 0;
                diag_set(diag, "HSM %zu (token %s): C_OpenSession: %s",
                         i + 1, tok->label, hsm_ckr_name(rv));
                return HSM_EDEVICE;
            }
            if ((rc = worker_keys(p, w, i, diag)) != 0)
                return rc;
        }
    }
    for (size_t t = 0; t < nh; t++) {
        int rc;
        if (p->w[t].helper.fd >= 0 && (rc = helper_prove(p, t, diag)) != 0)
            return rc;
        if (t + 1 < nh)
            helper_start(p, t + 1);
    }
    for (size_t t = 0; t < p->nworkers; t++) {
        if (pthread_create(&p->w[t].th, NULL, worker_main, &p->w[t]) != 0) {
            diag_set(diag, "cannot start worker threads");
            return -EAGAIN;
        }
        p->w[t].started = true;
    }
    return 0;
}

int hsm_pool_new(struct hsm_pool **out, struct hsm_set *set,
                 const hsm_keyset_t *ks, const hsm_pool_opts_t *opts,
                 hsm_diag_t *diag)
{
    struct hsm_pool *p;
    int rc;
    hsm_pool_opts_t o = {0};

    if (opts != NULL)
        o = *opts;
    rc = hsm_set_check(set, ks, o.mismatch, o.arg, diag);
    if (rc != 0)
        return rc;
    if (o.threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = c > 0 ? (unsigned)c : 1;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->set = set;
    p->ks = ks;
    p->opts = o;
    p->nworkers = o.threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    p->h = calloc(set->n, sizeof(*p->h));
    p->pk = calloc(ks->count > 0 ? ks->count : 1, sizeof(*p->pk));
    p->w = calloc(p->nworkers, sizeof(*p->w));
    if (p->h == NULL || p->pk == NULL || p->w == NULL) {
        p->nworkers = 0;
        hsm_pool_free(p);
        return -ENOMEM;
    }
    for (size_t t = 0; t < p->nworkers; t++)
        p->w[t].helper.fd = -1;
    for (size_t i = 0; i < set->n; i++) {
        atomic_init(&p->h[i].in, 1);
        p->h[i].priv = calloc(ks->count > 0 ? ks->count : 1,
                              sizeof(CK_OBJECT_HANDLE));
        if (p->h[i].priv == NULL) {
            p->nworkers = 0;
            hsm_pool_free(p);
            return -ENOMEM;
        }
    }
    if ((rc = pool_keys(p, diag)) != 0 || (rc = pool_workers(p, diag)) != 0) {
        hsm_pool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

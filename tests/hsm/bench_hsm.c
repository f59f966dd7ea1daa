/*
 * tests/hsm/bench_hsm.c - signatures per second: OpenSSL in-process, raw
 * C_Sign on the token object, raw C_Sign on a per-session copy of it
 * (C_CopyObject, CKA_TOKEN false: what the pool signs with by default),
 * and the hsm/ signing pool on 1 and N tokens, 1 and 2 threads, in this
 * process and through signing helpers.  A benchmark, not a test; scripts/bench-hsm runs it.
 *
 *   bench_hsm KEYSET LABEL SECONDS ROUNDS URI...
 *
 * Messages are 150 bytes; hashing is counted in every path.  Each figure
 * is the median of ROUNDS runs of SECONDS each; a round runs every path
 * once, so machine load falls on all alike.  ZG_BENCH_ONLY=openssl,
 * raw, rawcopy, pool1, poolN or poolH (the pool through signing helper
 * processes, as zonesign's full road signs) runs one path only;
 * ZG_BENCH_THREADS=1 or 2 only its rows of that many threads (scripts/
 * bench-hsm runs two such processes at once, to set SoftHSM in two
 * processes beside SoftHSM on two threads of one).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "hsm/internal.h"

#define MSG 150
#define BATCH 2000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct run {
    int kind;            /* 0 OpenSSL, 1 raw C_Sign, 2 pool, 3 raw C_Sign
                          * on a session copy */
    double seconds;
    uint8_t alg;
    EVP_PKEY *pk;        /* OpenSSL */
    struct hsm_token *tok;
    CK_OBJECT_HANDLE priv;
    struct hsm_pool *pool;
    size_t key;
    atomic_ulong count;
    atomic_int stop;
};

static void *worker(void *arg)
{
    struct run *r = arg;
    uint8_t msg[MSG], sig[1024];
    CK_SESSION_HANDLE s = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const EVP_MD *h = r->alg == 10 ? EVP_sha512()
                      : r->alg == 14 ? EVP_sha384() : EVP_sha256();
    CK_OBJECT_HANDLE key = r->priv;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof(no)}};
    RAND_bytes(msg, sizeof(msg));
    if ((r->kind == 1 || r->kind == 3) &&
        r->tok->mod->f->C_OpenSession(r->tok->slot_id, CKF_SERIAL_SESSION,
                                      NULL, NULL, &s) != CKR_OK)
        return NULL;
    if (r->kind == 3 && r->tok->mod->f->C_CopyObject(s, r->priv, tmpl, 1,
                                                     &key) != CKR_OK) {
        r->tok->mod->f->C_CloseSession(s);
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        size_t len = sizeof(sig);
        if (r->kind == 0) {
            if (EVP_DigestSignInit(md, NULL, h, NULL, r->pk) != 1 ||
                EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) != 1)
                break;
        } else if (raw_sign(r->tok->mod->f, s, key, r->alg, msg,
                            sizeof(msg), sig, &len) != CKR_OK) {
            break;
        }
        atomic_fetch_add(&r->count, 1);
        msg[0]++;
    }
    if (s != 0)
        r->tok->mod->f->C_CloseSession(s);
    EVP_MD_CTX_free(md);
    return NULL;
}

/* The pool path: one caller submitting batches (and a second caller when
 * two threads are asked for, so the workers never wait on one caller). */
static void *pool_caller(void *arg)
{
    struct run *r = arg;
    hsm_job_t *jobs = calloc(BATCH, sizeof(*jobs));
    uint8_t *data = malloc((size_t)BATCH * MSG), *sigs = malloc(BATCH * 512);
    hsm_diag_t d;
    RAND_bytes(data, BATCH * MSG);
    for (size_t i = 0; i < BATCH; i++)
        jobs[i] = (hsm_job_t){.data = data + i * MSG, .len = MSG,
                              .key = (uint32_t)r->key, .sig = sigs + i * 512};
    while (!atomic_load(&r->stop)) {
        if (hsm_pool_sign(r->pool, jobs, BATCH, &d) != 0)
            break;
        atomic_fetch_add(&r->count, BATCH);
    }
    free(jobs);
    free(data);
    free(sigs);
    return NULL;
}

static double measure(struct run *r, unsigned threads)
{
    pthread_t th[8];
    double t0, t1;
    unsigned callers = r->kind == 2 ? 2 : threads;
    atomic_store(&r->count, 0);
    atomic_store(&r->stop, 0);
    t0 = now();
    for (unsigned i = 0; i < callers; i++)
        pthread_create(&th[i], NULL, r->kind == 2 ? pool_caller : worker, r);
    usleep((useconds_t)(r->seconds * 1e6));
    atomic_store(&r->stop, 1);
    for (unsigned i = 0; i < callers; i++)
        pthread_join(th[i], NULL);
    t1 = now();
    return (double)atomic_load(&r->count) / (t1 - t0);
}

static bool want(const char *path)
{
    const char *only = getenv("ZG_BENCH_ONLY");
    return only == NULL || *only == '\0' || strcmp(only, path) == 0;
}

/* The threads of path C's row: the even rows one, the odd ones two. */
static unsigned cthreads(int c)
{
    return c % 2 == 0 ? 1u : 2u;
}

static bool want_threads(unsigned t)
{
    const char *only = getenv("ZG_BENCH_THREADS");
    return only == NULL || *only == '\0' || (unsigned)atoi(only) == t;
}

static void line(const char *path, uint8_t alg, unsigned tokens,
                 unsigned threads, double rate)
{
    printf("%-21s alg %-3u tokens %u threads %u  %9.0f sig/s\n", path, alg,
           tokens, threads, rate);
    fflush(stdout);
}

enum { C_OSSL1, C_OSSL2, C_RAW1, C_RAW2, C_RAWC1, C_RAWC2, C_P11, C_P12,
       C_PN1, C_PN2, C_PH1, C_PH2, C_COUNT };
static const char *const cname[C_COUNT] = {
    "openssl-in-process", "openssl-in-process", "raw-C_Sign", "raw-C_Sign",
    "raw-C_Sign-sesscopy", "raw-C_Sign-sesscopy", "hsm-pool", "hsm-pool",
    "hsm-pool", "hsm-pool", "hsm-pool-helpers", "hsm-pool-helpers",
};
static const char *const conly[C_COUNT] = {
    "openssl", "openssl", "raw", "raw", "rawcopy", "rawcopy", "pool1",
    "pool1", "poolN", "poolN", "poolH", "poolH",
};


/* One round over every path on a set of N tokens (1: raw and pool1). */
static int round_on_set(struct run *r, const hsm_keyset_t *ks,
                        const hsm_key_t *key, char **uris, size_t n,
                        double v[C_COUNT][32], int round)
{
    struct hsm_set *set = NULL;
    hsm_diag_t d = {""};
    int first = n == 1 ? C_RAW1 : C_PN1;
    /* SoftHSM writes a token's files when a process opens it: another
     * bench_hsm opening at once (scripts/bench-hsm runs two) may see no
     * token for a moment; so up to five tries, 50 ms apart */
    for (int try = 1; hsm_set_open(&set, (const char *const *)uris, n,
                                   &d) != 0; try++) {
        if (try == 5) {
            fprintf(stderr, "bench_hsm: %s\n", d.msg);
            return 2;
        }
        usleep(50000);
    }
    r->tok = &set->tok[0];
    if (raw_find(r->tok, r->tok->admin, CKO_PRIVATE_KEY, key->id,
                 key->id_len, NULL, &r->priv, 1) != 1) {
        fprintf(stderr, "bench_hsm: key not on token 1\n");
        return 2;
    }
    for (int c = first; c < (n == 1 ? C_PN1 : C_COUNT); c++) {
        unsigned t = cthreads(c);
        if (!want(conly[c]) || !want_threads(t))
            continue;
        if (c >= C_RAW1 && c <= C_RAWC2) {
            r->kind = c <= C_RAW2 ? 1 : 3;
            v[c][round] = measure(r, t);
            continue;
        }
        hsm_pool_opts_t o = {.threads = t};
        if (c >= C_PH1) { /* this program again, as zonesign's full road */
            o.helper_argv = hsm_helper_self;
            o.helpers = t;
        }
        r->kind = 2;
        if (hsm_pool_new(&r->pool, set, ks, &o, &d) != 0) {
            fprintf(stderr, "bench_hsm: %s\n", d.msg);
            return 2;
        }
        if (hsm_pool_helpers(r->pool) != o.helpers) {
            fprintf(stderr, "bench_hsm: %zu of %u signing helpers started\n",
                    hsm_pool_helpers(r->pool), o.helpers);
            hsm_pool_free(r->pool);
            return 2;
        }
        v[c][round] = measure(r, t);
        hsm_pool_free(r->pool);
    }
    hsm_set_free(set);
    return 0;
}

int main(int argc, char **argv)
{
    hsm_keyset_t *ks = NULL;
    hsm_diag_t d = {""};
    struct run r;
    int k, nrounds, rc;
    size_t nuris;
    const hsm_key_t *key;
    static double v[C_COUNT][32];

    if (argc == 2 && strcmp(argv[1], HSM_HELPER_ARG) == 0)
        return hsm_helper_main();
    if (argc < 6) {
        fprintf(stderr, "usage: bench_hsm KEYSET LABEL SECONDS ROUNDS URI...\n");
        return 2;
    }
    if (hsm_keyset_load(&ks, argv[1], &d) != 0 ||
        (k = hsm_keyset_find(ks, argv[2])) < 0) {
        fprintf(stderr, "bench_hsm: %s\n", d.msg[0] ? d.msg : "no such key");
        return 2;
    }
    key = &ks->keys[k];
    memset(&r, 0, sizeof(r));
    r.seconds = atof(argv[3]);
    nrounds = atoi(argv[4]);
    nrounds = nrounds < 1 ? 1 : nrounds > 31 ? 31 : nrounds;
    nuris = (size_t)(argc - 5);
    r.alg = key->alg;
    r.key = (size_t)k;
    r.pk = alg_is_rsa(key->alg)
               ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
                                   (size_t)(8 * alg_sig_max(key->alg,
                                                            key->pubkey,
                                                            key->pubkey_len)))
               : EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                   key->alg == 13 ? "P-256" : "P-384");
    /* Rounds interleave the paths, so load from elsewhere on the machine
     * falls on all of them alike. */
    for (int i = 0; i < nrounds; i++) {
        r.kind = 0;
        for (int c = C_OSSL1; c <= C_OSSL2; c++)
            if (want(conly[c]) && want_threads(cthreads(c)))
                v[c][i] = measure(&r, cthreads(c));
        if ((rc = round_on_set(&r, ks, key, argv + 5, 1, v, i)) != 0)
            return rc;
        if (nuris > 1 &&
            (rc = round_on_set(&r, ks, key, argv + 5, nuris, v, i)) != 0)
            return rc;
    }
    for (int c = 0; c < C_COUNT; c++) {
        if (!want(conly[c]) || !want_threads(cthreads(c)) ||
            (c >= C_PN1 && nuris == 1))
            continue;
        line(cname[c], key->alg,
             c < C_RAW1 ? 0 : c < C_PN1 ? 1 : (unsigned)nuris,
             cthreads(c), median(v[c], nrounds));
    }
    EVP_PKEY_free(r.pk);
    hsm_keyset_free(ks);
    return 0;
}

/*
 * tests/hsm/test_pool.c - the signing pool on three SoftHSM tokens.
 *
 *   test_pool KEYSET URI1 URI2 URI3    (run by test_pool.sh)
 *
 * Several callers sign concurrently across three tokens: every signature
 * verifies against the DNSKEY (checked here with OpenSSL EVP_DigestVerify
 * and a key built from the key set's DNSKEY field, not with hsm/ code) and
 * every HSM takes part.  Then the private key is deleted on token 2 in the
 * middle of a large batch (C_DestroyObject through another session): the
 * pool takes HSM 2 out with a logged reason, the other two finish, and
 * still every signature verifies.  With no HSM left: HSM_ENOHSM.  The pool
 * signs with per-session copies of the key; the deletions take those too,
 * and their count proves the copies exist.  --hsm-token-keys makes none.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "hsm/internal.h"
#include "tests/lib/tap.h"
#include "sigcheck.h"

#define DATA_LEN 150

static struct hsm_pool *pool;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[8][512];
static int nlog;

static void log_cb(void *arg, const char *line)
{
    (void)arg;
    pthread_mutex_lock(&log_lock);
    if (nlog < 8)
        snprintf(log_lines[nlog], sizeof(log_lines[0]), "%s", line);
    nlog++;
    pthread_mutex_unlock(&log_lock);
}

struct batch {
    hsm_job_t *jobs;
    uint8_t *data, *sigs;
    size_t n;
    int rc;
    hsm_diag_t diag;
};

static void batch_make(struct batch *b, size_t n, size_t rsa_every)
{
    b->n = n;
    b->diag.msg[0] = '\0';
    b->rc = 0;
    b->jobs = calloc(n, sizeof(*b->jobs));
    b->data = malloc(n * DATA_LEN);
    b->sigs = malloc(n * 512);
    RAND_bytes(b->data, (int)(n * DATA_LEN));
    for (size_t i = 0; i < n; i++) {
        b->jobs[i].data = b->data + i * DATA_LEN;
        b->jobs[i].len = DATA_LEN - (uint32_t)(i % 7);
        b->jobs[i].key = rsa_every != 0 && i % rsa_every == 0 ? 1 : 0;
        b->jobs[i].sig = b->sigs + i * 512;
    }
}

static void batch_free(struct batch *b)
{
    free(b->jobs);
    free(b->data);
    free(b->sigs);
}

static void *caller(void *arg)
{
    struct batch *b = arg;
    b->rc = hsm_pool_sign(pool, b->jobs, b->n, &b->diag);
    return NULL;
}

/* Verifies every job; counts per HSM. */
static size_t count_good(const struct batch *b, size_t per_hsm[4])
{
    size_t good = 0;
    for (size_t i = 0; i < b->n; i++) {
        const hsm_job_t *j = &b->jobs[i];
        if (j->hsm >= 1 && j->hsm <= 3 && verifies(j)) {
            good++;
            per_hsm[j->hsm]++;
        }
    }
    return good;
}

/* Deletes every private key object with K's CKA_ID on token I: the token
 * object and the pool's session copies (session objects are visible to
 * every session of the application, PKCS#11 v2.40 section 4.4).  Returns
 * how many were deleted, or -1. */
static int destroy_private(struct hsm_set *set, size_t i, const hsm_key_t *k)
{
    struct hsm_token *t = &set->tok[i];
    CK_OBJECT_HANDLE h[64];
    int n = raw_find(t, t->admin, CKO_PRIVATE_KEY, k->id, k->id_len, NULL, h,
                     64);
    if (n < 1 || n > 64)
        return -1;
    for (int j = 0; j < n; j++)
        if (t->mod->f->C_DestroyObject(t->admin, h[j]) != CKR_OK)
            return -1;
    return n;
}

int main(int argc, char **argv)
{
    struct hsm_set *set = NULL;
    hsm_keyset_t *keys = NULL;
    hsm_diag_t d = {""};
    hsm_pool_opts_t o = {.threads = 4, .verify_every = 0, .log = log_cb};
    struct batch b[3], big;
    pthread_t th[3];
    size_t per[4] = {0}, good = 0, total = 0;
    hsm_stat_t st;

    if (argc != 5) {
        fprintf(stderr, "usage: test_pool KEYSET URI URI URI\n");
        return 2;
    }
    ok(hsm_keyset_load(&keys, argv[1], &d) == 0 && keys->count == 2,
       "key set with two keys (%s)", d.msg);
    ok(hsm_set_open(&set, (const char *const *)argv + 2, 3, &d) == 0,
       "three HSMs open (%s)", d.msg);
    if (set == NULL || keys == NULL)
        return done_testing();
    ks = keys;
    for (size_t k = 0; k < keys->count; k++)
        vkeys[k] = dnskey_pkey(&keys->keys[k]);
    ok(hsm_pool_new(&pool, set, keys, &o, &d) == 0, "pool starts (%s)",
       d.msg);
    if (pool == NULL)
        return done_testing();
    ok(hsm_pool_sig_max(pool, 0) == 64 && hsm_pool_sig_max(pool, 1) == 256,
       "largest signatures: 64 (P-256), 256 (RSA-2048)");

    /* Three callers at once, ECDSA and RSA mixed. */
    for (int c = 0; c < 3; c++) {
        batch_make(&b[c], 4000, 10);
        pthread_create(&th[c], NULL, caller, &b[c]);
    }
    for (int c = 0; c < 3; c++) {
        pthread_join(th[c], NULL);
        ok(b[c].rc == 0, "caller %d: 4000 jobs signed (%s)", c + 1,
           b[c].diag.msg);
        good += count_good(&b[c], per);
        total += b[c].n;
    }
    ok(good == total, "all %zu signatures verify against the DNSKEYs (%zu)",
       total, good);
    ok(per[1] > total / 10 && per[2] > total / 10 && per[3] > total / 10,
       "work spread over all HSMs (%zu, %zu, %zu)", per[1], per[2], per[3]);
    ok(nlog == 0, "no HSM taken out so far");
    for (int c = 0; c < 3; c++)
        batch_free(&b[c]);

    /* Token 2 loses the key in the middle of a batch. */
    batch_make(&big, 30000, 0);
    pthread_create(&th[0], NULL, caller, &big);
    for (int spin = 0; spin < 2000; spin++) {
        hsm_pool_stat(pool, 1, &st);
        if (st.signatures > per[2] + 2000)
            break;
        usleep(1000);
    }
    {
        int n = destroy_private(set, 1, &keys->keys[0]);
        ok(n == 5, "private key of %s deleted on token 2 mid-run (after "
           "%llu of its signatures): the token object and the 4 workers' "
           "session copies (%d objects)", keys->keys[0].label,
           (unsigned long long)st.signatures, n);
    }
    pthread_join(th[0], NULL);
    ok(big.rc == 0, "the batch of 30000 still completes (%s)", big.diag.msg);
    memset(per, 0, sizeof(per));
    good = count_good(&big, per);
    ok(good == big.n, "all 30000 signatures verify (%zu)", good);
    ok(per[2] > 0 && per[2] < big.n / 3 && per[1] > big.n / 3 &&
           per[3] > big.n / 3,
       "token 2 signed some before it failed (%zu), HSMs 1 and 3 shared the "
       "rest (%zu, %zu)", per[2], per[1], per[3]);
    hsm_pool_stat(pool, 1, &st);
    /* SoftHSM reports a key deleted under a running operation as
     * CKR_KEY_HANDLE_INVALID or CKR_GENERAL_ERROR, depending on timing. */
    ok(!st.in_rotation && strstr(st.reason, "C_Sign") != NULL,
       "HSM 2 out of rotation: %s", st.reason);
    ok(nlog == 1 && strstr(log_lines[0], "HSM 2 (token hsm2) taken out") !=
                        NULL,
       "one log line: %s", log_lines[0]);
    hsm_pool_stat(pool, 0, &st);
    ok(st.in_rotation && st.token != NULL && strcmp(st.token, "hsm1") == 0,
       "HSM 1 still in rotation");
    batch_free(&big);

    /* Everything fails: no HSM left, nothing to use. */
    ok(destroy_private(set, 0, &keys->keys[0]) == 5 &&
           destroy_private(set, 2, &keys->keys[0]) == 5,
       "key deleted on tokens 1 and 3 too");
    batch_make(&big, 500, 0);
    ok(hsm_pool_sign(pool, big.jobs, big.n, &big.diag) == HSM_ENOHSM &&
           strstr(big.diag.msg, "no HSM left") != NULL,
       "HSM_ENOHSM when no HSM is left (%s)", big.diag.msg);
    ok(nlog == 3, "each HSM logged once when taken out (%d)", nlog);
    batch_free(&big);

    /* Bad jobs are refused before any work. */
    {
        hsm_job_t j = {.data = (const uint8_t *)"x", .len = 1, .key = 7};
        uint8_t sig[512];
        j.sig = sig;
        ok(hsm_pool_sign(pool, &j, 1, &d) == -EINVAL,
           "job with a bad key index refused");
    }
    hsm_pool_free(pool);

    /* The session copies go with their sessions; --hsm-token-keys makes
     * none and signs with the token object (key 1, still on every token). */
    {
        CK_OBJECT_HANDLE h[8];
        struct hsm_token *t = &set->tok[0];
        hsm_pool_opts_t to = o;
        EVP_PKEY *ecdsa = vkeys[0];
        to.token_keys = true;
        ok(raw_find(t, t->admin, CKO_PRIVATE_KEY, keys->keys[1].id,
                    keys->keys[1].id_len, NULL, h, 8) == 1,
           "the pool's session copies are gone when it stops");
        ok(hsm_pool_new(&pool, set, keys, &to, &d) == HSM_EMISMATCH,
           "a new pool refuses to start with key 0 deleted everywhere "
           "(%s)", d.msg);
        hsm_keyset_t one = *keys;
        one.keys = &keys->keys[1];
        one.count = 1;
        ks = &one;
        vkeys[0] = vkeys[1];
        d.msg[0] = '\0';
        ok(hsm_pool_new(&pool, set, &one, &to, &d) == 0,
           "pool with token keys starts (%s)", d.msg);
        ok(raw_find(t, t->admin, CKO_PRIVATE_KEY, keys->keys[1].id,
                    keys->keys[1].id_len, NULL, h, 8) == 1,
           "token keys: no session copy made");
        batch_make(&big, 600, 0);
        for (size_t i = 0; i < big.n; i++)
            big.jobs[i].key = 0;
        memset(per, 0, sizeof(per));
        ok(hsm_pool_sign(pool, big.jobs, big.n, &big.diag) == 0 &&
               count_good(&big, per) == big.n,
           "token keys: 600 RSA signatures verify (%s)", big.diag.msg);
        batch_free(&big);
        hsm_pool_free(pool);
        vkeys[0] = ecdsa;
        ks = keys;
    }
    for (size_t k = 0; k < keys->count; k++)
        EVP_PKEY_free(vkeys[k]);
    hsm_set_free(set);
    hsm_keyset_free(keys);
    return done_testing();
}

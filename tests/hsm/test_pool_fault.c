/*
 * tests/hsm/test_pool_fault.c - the signing pool against a token that
 * signs wrongly or fails, through the fault-injecting module tests/shim
 * (the fault file is set up by test_pool_fault.sh in ZG_SHIM_CONF).
 *
 *   test_pool_fault MODE KEYSET URI1 URI2 URI3
 *
 * MODE verify-all:     verify_every 1, token 2 flips a bit after 100
 *                      signatures: HSM 2 is taken out for a signature that
 *                      does not verify; every signature returned verifies.
 * MODE verify-sampled: verify_every 50, same fault: the jobs HSM 2 signed
 *                      in the batch before it was caught are signed again
 *                      elsewhere; every signature returned verifies.
 * MODE swapkey:        verify_every 1, token 3 signs with another key of
 *                      the same type after 100 signatures.
 * MODE deverror:       verify_every 0, token 3 returns CKR_DEVICE_ERROR
 *                      after 150 signatures.
 * MODE helpers-X:      mode X with every worker signing through a signing
 *                      helper (hsm/helper.c: this program again, given
 *                      HSM_HELPER_ARG).  The shim counts per process, so
 *                      the fault starts after the count in each helper.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "hsm/hsm.h"
#include "tests/lib/tap.h"
#include "sigcheck.h"

static char logged[4][512];
static int nlog;

static void log_cb(void *arg, const char *line)
{
    (void)arg;
    if (nlog < 4)
        snprintf(logged[nlog], sizeof(logged[0]), "%s", line);
    nlog++;
}

int main(int argc, char **argv)
{
    hsm_keyset_t *keys = NULL;
    struct hsm_set *set = NULL;
    struct hsm_pool *pool = NULL;
    hsm_diag_t d = {""};
    hsm_pool_opts_t o = {.threads = 3, .log = log_cb};
    const char *mode, *name;
    size_t n = 6000, good = 0, per[4] = {0}, bad_hsm = 2;
    const char *want_reason = "does not verify";
    hsm_job_t *jobs;
    uint8_t *data, *sigs;
    hsm_stat_t st;
    int rc;

    size_t helpers = 0;

    if (argc == 2 && strcmp(argv[1], HSM_HELPER_ARG) == 0)
        return hsm_helper_main();
    if (argc != 6) {
        fprintf(stderr, "usage: test_pool_fault MODE KEYSET URI URI URI\n");
        return 2;
    }
    mode = name = argv[1];
    if (strncmp(mode, "helpers-", 8) == 0) {
        o.helper_argv = hsm_helper_self;
        o.helpers = o.threads;
        helpers = o.threads;
        mode += 8;
    }
    if (strcmp(mode, "verify-all") == 0) {
        o.verify_every = 1;
    } else if (strcmp(mode, "verify-sampled") == 0) {
        o.verify_every = 50;
    } else if (strcmp(mode, "swapkey") == 0) {
        o.verify_every = 1;
        bad_hsm = 3;
    } else {
        o.verify_every = 0;
        bad_hsm = 3;
        want_reason = "CKR_DEVICE_ERROR";
    }
    ok(hsm_keyset_load(&keys, argv[2], &d) == 0, "key set (%s)", d.msg);
    ok(hsm_set_open(&set, (const char *const *)argv + 3, 3, &d) == 0,
       "three HSMs through the shim (%s)", d.msg);
    if (keys == NULL || set == NULL)
        return done_testing();
    ks = keys;
    vkeys[0] = dnskey_pkey(&keys->keys[0]);
    ok(hsm_pool_new(&pool, set, keys, &o, &d) == 0,
       "pool starts: the proof passes before the fault begins (%s)", d.msg);
    if (pool == NULL)
        return done_testing();
    ok(hsm_pool_helpers(pool) == helpers, "%s: %zu signing helpers started "
       "and proven (%zu)", name, helpers, hsm_pool_helpers(pool));

    jobs = calloc(n, sizeof(*jobs));
    data = malloc(n * 150);
    sigs = malloc(n * 64);
    RAND_bytes(data, (int)(n * 150));
    for (size_t i = 0; i < n; i++)
        jobs[i] = (hsm_job_t){.data = data + i * 150, .len = 150, .key = 0,
                              .sig = sigs + i * 64};
    rc = hsm_pool_sign(pool, jobs, n, &d);
    ok(rc == 0, "%s: the batch of %zu completes (%s)", name, n, d.msg);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].hsm >= 1 && jobs[i].hsm <= 3 && verifies(&jobs[i])) {
            good++;
            per[jobs[i].hsm]++;
        }
    ok(good == n, "%s: every signature returned verifies (%zu of %zu)",
       name, good, n);
    hsm_pool_stat(pool, bad_hsm - 1, &st);
    ok(!st.in_rotation && strstr(st.reason, want_reason) != NULL,
       "%s: HSM %zu out of rotation: %s", name, bad_hsm, st.reason);
    ok(nlog == 1 && strstr(logged[0], "taken out") != NULL,
       "%s: one log line: %s", name, logged[0]);
    /* each process signing counts the fault's after= on its own */
    ok(per[bad_hsm] <= 200 * (helpers ? helpers : 1), "%s: HSM %zu holds "
       "only signatures made before the fault (%zu)", name, bad_hsm,
       per[bad_hsm]);
    for (size_t i = 1; i <= 3; i++)
        if (i != bad_hsm)
            ok(per[i] > n / 3, "%s: HSM %zu signed %zu", name, i, per[i]);
    hsm_pool_free(pool);
    EVP_PKEY_free(vkeys[0]);
    hsm_set_free(set);
    hsm_keyset_free(keys);
    free(jobs);
    free(data);
    free(sigs);
    return done_testing();
}

/*
 * signer/zonesign.c - the zonesign program (CLI.md "zonesign"): parses
 * arguments, opens the HSMs and the key set, calls signer_zone_sign,
 * prints the summary and maps results to exit codes (0 ok, 1 HSMs
 * inconsistent, 2 usage, input or operational error).  No DNSSEC logic.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hsm/hsm.h"
#include "signer/signer.h"

static void usage(FILE *f)
{
    fputs("usage: zonesign [--hsm URI]... [--hsm-list FILE] --keyset FILE "
          "[--origin NAME]\n"
          "         [--nsec3 [--opt-out] [--salt HEX|-] [--iterations N] | "
          "--nsec]\n"
          "         [--inception T] [--expiration T] [--jitter DURATION] "
          "[--refresh DURATION]\n"
          "         [--serial keep|increment|unixtime|date]\n"
          "         [--previous SIGNED_ZONE] [--threads N] [--submitters N]"
          " [--quiet]\n"
          "         [--verify-every N] [--previous-cache FILE] [--no-cache]"
          " [--hsm-token-keys]\n"
          "         [--no-patch] [--no-spare] [--signing-helpers N]\n"
          "         -o OUT  IN\n"
          "T: YYYYMMDDHHMMSS, UNIX seconds, now, now+N, now-N (N: s m h d)\n"
          "Defaults: NSEC3 iterations 0 empty salt, inception now-1h, "
          "expiration now+14d,\n"
          "jitter 5% and refresh 25% of the validity, serial keep, threads"
          " = cores,\n"
          "verify 1 of every 1000 HSM signatures against the DNSKEY (1: "
          "all, 0: none).\n"
          "A binary signature cache OUT.zsc is written beside OUT; --previous "
          "P uses P.zsc\n(or --previous-cache FILE) when it belongs to P "
          "(its size, and the digest of\nevery part of P, checked as P is "
          "copied from), else parses P; the text of\nunchanged names is "
          "copied from P.  --no-cache: neither.\n"
          "A patch index OUT.zsp is written too when the zone allows it; "
          "--previous P\nthen first tries to make OUT by editing P: only "
          "the changed parts of IN\nare read, the changed names signed "
          "and printed, the rest copied from P.\nAnything it cannot "
          "handle, and --no-patch, takes the road above.\n"
          "Each signing session signs with its own copy of the key, made "
          "inside the HSM\n(C_CopyObject, a session object) and proven "
          "by a probe signature; an HSM\nthat refuses the copy signs with "
          "the token object.  --hsm-token-keys: always\nsign with the "
          "token objects.\n"
          "The OUT a run replaces is kept as DIR/.NAME.spare, and the next "
          "run writes\nits OUT over it (when it is the spare's only link "
          "and open nowhere) and\nexchanges the two names at once; "
          "OUT.zsc and OUT.zsp are kept and written\nover alike "
          "(DIR/.NAME.zsc.spare, DIR/.NAME.zsp.spare).  --no-spare: "
          "keep none.\n"
          "A full signing's pool threads each sign through a helper "
          "process of their own\n(zonesign again, which opens the same "
          "HSMs and proves its own key copies\nbefore it signs): a "
          "PKCS#11 library's process-wide locks do not slow them.\n"
          "--signing-helpers N: only N threads do (0: all sign in this "
          "process).\n",
          f);
}

static void warn_line(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "zonesign: %s\n", line);
}

static void mismatch_line(const hsm_mismatch_t *m, void *arg)
{
    (void)arg;
    char found[16];
    if (m->found_tag < 0)
        snprintf(found, sizeof(found), "none");
    else
        snprintf(found, sizeof(found), "%d", m->found_tag);
    fprintf(stderr,
            "zonesign: HSM %zu (token %s): key %s: expected key tag %u, "
            "found %s: %s\n",
            m->hsm, m->token ? m->token : "?", m->label ? m->label : "?",
            m->expected_tag, found, m->reason ? m->reason : "mismatch");
}

static void stat_line(void *arg, size_t i, const hsm_stat_t *st)
{
    (void)arg;
    fprintf(stderr, "zonesign: HSM %zu (token %s): %llu signatures%s%s\n",
            i + 1, st->token ? st->token : "?",
            (unsigned long long)st->signatures,
            st->in_rotation ? "" : ", taken out: ",
            st->in_rotation ? "" : st->reason);
}

/* The HSM set, opened on a thread of its own (set_open_run) and waited
 * for by the signer where its pool starts (set_wait), and at the end. */
struct set_open {
    const char *const *uris;
    size_t n;
    struct hsm_set *set;
    hsm_diag_t hd;
    int hr;
    pthread_t th;
    bool threaded; /* and not joined yet */
};

static void *set_open_run(void *arg)
{
    struct set_open *so = arg;
    so->hr = hsm_set_open(&so->set, so->uris, so->n, &so->hd);
    return NULL;
}

static int set_wait(void *arg, struct hsm_set **set, hsm_diag_t *diag)
{
    struct set_open *so = arg;
    if (so->threaded) {
        pthread_join(so->th, NULL);
        so->threaded = false;
    }
    *set = so->set;
    if (so->hr)
        *diag = so->hd;
    return so->hr;
}

/* A whole number 0..MAX for option --NAME: 0, or -1 after one line. */
static int count_arg(const char *s, unsigned long max, const char *name,
                     unsigned long *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || !*s || v > max) {
        fprintf(stderr, "zonesign: bad --%s\n", name);
        return -1;
    }
    *out = v;
    return 0;
}

static int hex_parse(const char *s, uint8_t *out, size_t *len)
{
    size_t n = strlen(s);
    if (strcmp(s, "-") == 0) {
        *len = 0;
        return 0;
    }
    if (n % 2 || n / 2 > 255)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

enum {
    O_HSM = 256, O_HSMLIST, O_KEYSET, O_ORIGIN, O_NSEC3, O_OPTOUT, O_SALT,
    O_ITER, O_NSEC, O_INC, O_EXP, O_SERIAL, O_PREV, O_THREADS, O_JITTER,
    O_REFRESH, O_SUBMIT, O_QUIET, O_HELP, O_VERIFY, O_PCACHE, O_NOCACHE, O_NOPATCH, O_NOSPARE,
    O_TOKENKEYS, O_HELPERS
};

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"hsm", required_argument, 0, O_HSM},
        {"hsm-list", required_argument, 0, O_HSMLIST},
        {"keyset", required_argument, 0, O_KEYSET},
        {"origin", required_argument, 0, O_ORIGIN},
        {"nsec3", no_argument, 0, O_NSEC3},
        {"opt-out", no_argument, 0, O_OPTOUT},
        {"salt", required_argument, 0, O_SALT},
        {"iterations", required_argument, 0, O_ITER},
        {"nsec", no_argument, 0, O_NSEC},
        {"inception", required_argument, 0, O_INC},
        {"expiration", required_argument, 0, O_EXP},
        {"jitter", required_argument, 0, O_JITTER},
        {"refresh", required_argument, 0, O_REFRESH},
        {"serial", required_argument, 0, O_SERIAL},
        {"previous", required_argument, 0, O_PREV},
        {"previous-cache", required_argument, 0, O_PCACHE},
        {"no-cache", no_argument, 0, O_NOCACHE},
        {"no-patch", no_argument, 0, O_NOPATCH},
        {"no-spare", no_argument, 0, O_NOSPARE},
        {"signing-helpers", required_argument, 0, O_HELPERS},
        {"threads", required_argument, 0, O_THREADS},
        {"submitters", required_argument, 0, O_SUBMIT},
        {"quiet", no_argument, 0, O_QUIET},
        {"verify-every", required_argument, 0, O_VERIFY},
        {"hsm-token-keys", no_argument, 0, O_TOKENKEYS},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    char **uris = NULL;
    size_t nuris = 0;
    const char *keyset = NULL, *inc = "now-1h", *exp = "now+14d";
    const char *jitter = NULL, *refresh = NULL;
    int nsec3 = 0, nsec = 0, quiet = 0, rc = 2, opt;
    signer_opts_t o;
    /* the pool's signing helpers are this program again (hsm/helper.c) */
    if (argc == 2 && strcmp(argv[1], HSM_HELPER_ARG) == 0)
        return hsm_helper_main();
    memset(&o, 0, sizeof(o));
    o.helper_argv = hsm_helper_self;
    o.helpers = -1;
    o.denial = SIGNER_DENIAL_NSEC3;
    o.jitter = o.refresh = -1;
    o.verify_every = 1000;
    hsm_diag_t hd = {{0}};
    hsm_keyset_t *ks = NULL;
    struct hsm_set *set = NULL;
    struct set_open so = {0};

    while ((opt = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        char *end;
        switch (opt) {
        case O_HSM: {
            char **u = realloc(uris, (nuris + 1) * sizeof(*u));
            if (!u || !(u[nuris] = strdup(optarg))) {
                fprintf(stderr, "zonesign: out of memory\n");
                goto out;
            }
            uris = u;
            nuris++;
            break;
        }
        case O_HSMLIST:
            if (hsm_urilist_load(&uris, &nuris, optarg, &hd) != 0) {
                fprintf(stderr, "zonesign: %s\n", hd.msg);
                goto out;
            }
            break;
        case O_KEYSET: keyset = optarg; break;
        case O_ORIGIN: o.origin = optarg; break;
        case O_NSEC3: nsec3 = 1; break;
        case O_OPTOUT: o.opt_out = 1; break;
        case O_SALT:
            if (hex_parse(optarg, o.salt, &o.salt_len) != 0) {
                fprintf(stderr, "zonesign: bad --salt\n");
                goto out;
            }
            break;
        case O_ITER: {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v > 65535) {
                fprintf(stderr, "zonesign: bad --iterations\n");
                goto out;
            }
            o.iterations = (uint16_t)v;
            break;
        }
        case O_NSEC: nsec = 1; break;
        case O_INC: inc = optarg; break;
        case O_EXP: exp = optarg; break;
        case O_JITTER: jitter = optarg; break;
        case O_REFRESH: refresh = optarg; break;
        case O_SERIAL:
            if (strcmp(optarg, "keep") == 0)
                o.serial = SIGNER_SERIAL_KEEP;
            else if (strcmp(optarg, "increment") == 0)
                o.serial = SIGNER_SERIAL_INCREMENT;
            else if (strcmp(optarg, "unixtime") == 0)
                o.serial = SIGNER_SERIAL_UNIXTIME;
            else if (strcmp(optarg, "date") == 0)
                o.serial = SIGNER_SERIAL_DATE;
            else {
                fprintf(stderr, "zonesign: bad --serial '%s'\n", optarg);
                goto out;
            }
            break;
        case O_PREV: o.previous = optarg; break;
        case O_PCACHE: o.previous_cache = optarg; break;
        case O_NOCACHE: o.no_cache = 1; break;
        case O_NOPATCH: o.no_patch = 1; break;
        case O_NOSPARE: o.no_spare = 1; break;
        case O_TOKENKEYS: o.token_keys = 1; break;
        case O_HELPERS: {
            unsigned long v;
            if (count_arg(optarg, 256, "signing-helpers", &v) != 0)
                goto out;
            o.helpers = (int)v;
            break;
        }
        case O_VERIFY: {
            unsigned long v;
            if (count_arg(optarg, 1000000000, "verify-every", &v) != 0)
                goto out;
            o.verify_every = (unsigned)v;
            break;
        }
        case O_THREADS:
        case O_SUBMIT: {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v > 256 || (opt == O_SUBMIT && v == 0)) {
                fprintf(stderr, "zonesign: bad %s\n",
                        opt == O_THREADS ? "--threads" : "--submitters");
                goto out;
            }
            if (opt == O_THREADS)
                o.threads = (unsigned)v;
            else
                o.submitters = (unsigned)v;
            break;
        }
        case O_QUIET: quiet = 1; break;
        case 'o': o.output = optarg; break;
        case 'h':
        case O_HELP: usage(stdout); rc = 0; goto out;
        default: usage(stderr); goto out;
        }
    }
    if (optind + 1 != argc || !o.output || !keyset) {
        fprintf(stderr, "zonesign: need --keyset, -o OUT and one input zone"
                        " (see --help)\n");
        goto out;
    }
    if (nsec && (nsec3 || o.opt_out)) {
        fprintf(stderr, "zonesign: --nsec excludes --nsec3 and --opt-out\n");
        goto out;
    }
    if (nsec)
        o.denial = SIGNER_DENIAL_NSEC;
    if (o.previous_cache && (!o.previous || o.no_cache)) {
        fprintf(stderr, "zonesign: --previous-cache needs --previous and "
                        "excludes --no-cache\n");
        goto out;
    }
    if (nuris == 0) {
        fprintf(stderr, "zonesign: no HSM given (--hsm or --hsm-list)\n");
        goto out;
    }
    o.input = argv[optind];
    o.now = (int64_t)time(NULL);
    if (signer_time_parse(inc, o.now, &o.inception) != 0 ||
        signer_time_parse(exp, o.now, &o.expiration) != 0) {
        fprintf(stderr, "zonesign: bad --inception or --expiration time\n");
        goto out;
    }
    if ((jitter && signer_duration_parse(jitter, &o.jitter) != 0) ||
        (refresh && signer_duration_parse(refresh, &o.refresh) != 0)) {
        fprintf(stderr, "zonesign: bad --jitter or --refresh duration\n");
        goto out;
    }
    o.progress = !quiet && isatty(2);
    if (hsm_keyset_load(&ks, keyset, &hd) != 0) {
        fprintf(stderr, "zonesign: %s\n", hd.msg);
        goto out;
    }
    /* the HSMs are opened (module loaded, tokens found, logged in) on a
     * thread while the signer reads the zone: it waits for them where its
     * pool starts, before anything is signed or written */
    so.uris = (const char *const *)uris;
    so.n = nuris;
    so.threaded = pthread_create(&so.th, NULL, set_open_run, &so) == 0;
    if (!so.threaded)
        set_open_run(&so);
    signer_hooks_t hooks = {.warn = warn_line, .mismatch = mismatch_line,
                            .hsm_stat = stat_line, .set_wait = set_wait,
                            .set_arg = &so};
    signer_stats_t st;
    signer_diag_t d = {{0}};
    memset(&st, 0, sizeof(st));
    int r = signer_zone_sign(&o, NULL, ks, &hooks, &st, &d);
    if (r != 0) {
        fprintf(stderr, "zonesign: %s\n", d.msg[0] ? d.msg : signer_strerror(r));
        rc = r == SIGNER_EMISMATCH ? 1 : 2;
        goto out;
    }
    fprintf(stderr,
            "zonesign: signed %s: serial %u, %llu records in, %llu RRsets "
            "(%llu signed), %llu %s made, signatures made %llu, reused "
            "%llu, %llu warnings, %.2f s\n",
            o.output, st.serial, (unsigned long long)st.records_in,
            (unsigned long long)st.rrsets, (unsigned long long)st.signed_rrsets,
            (unsigned long long)st.nsec3,
            o.denial == SIGNER_DENIAL_NSEC ? "NSEC" : "NSEC3",
            (unsigned long long)st.sigs_made,
            (unsigned long long)st.sigs_reused,
            (unsigned long long)st.warnings, st.seconds);
    fprintf(stderr,
            "zonesign: phases: read %.2f s, prepare %.2f s, proof %.2f s, "
            "sign+write %.2f s; %zu signing helper%s%s\n",
            st.t_read, st.t_prepare, st.t_proof, st.t_sign_write,
            st.helpers, st.helpers == 1 ? "" : "s",
            st.previous_from == 1   ? "; previous zone via its signature cache"
            : st.previous_from == 3 ? "; previous zone patched"
            : st.previous_from == 2 ? "; previous zone parsed from text"
                                    : "");
    rc = 0;
out:
    set_wait(&so, &set, &hd); /* (joined, if it was started) */
    hsm_set_free(set);
    hsm_keyset_free(ks);
    for (size_t i = 0; i < nuris; i++) {
        /* URIs may carry pin-value=: wipe before freeing */
        memset(uris[i], 0, strlen(uris[i]));
        free(uris[i]);
    }
    free(uris);
    return rc;
}

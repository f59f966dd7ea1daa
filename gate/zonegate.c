/*
 * gate/zonegate.c - the zonegate program (CLI.md "zonegate"): parse
 * options, load, check, report, release or refuse.  Exit 0 pass,
 * 1 rejected, 2 usage/input/operational error.  No DNSSEC logic here.
 */
#include "gate/gate.h"

#include <getopt.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *fp)
{
    fputs("usage: zonegate --origin NAME (--ds FILE | --trust-anchor FILE)\n"
          "         [--unsigned FILE] [--previous ZONE [--previous-time T]]\n"
          "         [--now T] [--min-validity DURATION]\n"
          "         [--json FILE] [--release DIR] [--on-fail CMD]\n"
          "         [--threads N] [--examples N]\n"
          "         [--allow-nsec3-iterations N] [--allow-salt]\n"
          "         [--propagation-delay DURATION] [--ds-ttl DURATION]\n"
          "         [--incoming-keys FILE] [--timings]\n"
          "         [--served ADDR[#PORT] [--served-timeout SECONDS]\n"
          "          [--served-limit SECONDS]]\n"
          "         SIGNED_ZONE\n"
          "       zonegate --origin NAME --release DIR --served ADDR[#PORT]\n"
          "         [--served-timeout SECONDS] [--served-limit SECONDS]\n"
          "         [--json FILE] [--on-fail CMD]\n"
          "         [--examples N] [--threads N] [--timings]\n"
          "Checks a signed zone and releases it only if every check passes.\n"
          "Transition (unsafe-transition), against --previous (released at\n"
          "--previous-time, default --now) and, with --release, every release\n"
          "in DIR/history.jsonl (RFC 7583, RFC 6781):\n"
          "  --propagation-delay D  time for a release to reach every server\n"
          "                         (default 1h); added to every TTL wait\n"
          "  --ds-ttl D             the parent's DS TTL (default: the TTL in the\n"
          "                         --ds file, 86400 where it has none)\n"
          "  --incoming-keys FILE   DNSKEY RRs of keys not yet published whose\n"
          "                         algorithm may sign first (RFC 6781 4.1.4)\n"
          "  --timings              wall and CPU time of each phase on stderr\n"
          "Drift (the second form: the drift check alone, nothing released):\n"
          "  --served ADDR[#PORT]   transfer the zone by AXFR from this server\n"
          "                         (loopback only: 127.0.0.0/8 or ::1; port 53)\n"
          "                         and compare it with the last release in\n"
          "                         --release DIR; any difference is drift, and\n"
          "                         with a SIGNED_ZONE it blocks the release\n"
          "  --served-timeout S     longest wait for the connection or for more\n"
          "                         data (default 10); no connection: exit 2\n"
          "  --served-limit S       longest time for the whole transfer, however\n"
          "                         the server paces it (default 900); past it\n"
          "                         the transfer is incomplete: drift\n"
          "T: YYYYMMDDHHMMSS, UNIX seconds, now, now+N, now-N (N: s m h d).\n"
          "Exit: 0 pass, 1 rejected, 2 error.\n",
          fp);
}

static int die(const char *msg)
{
    fprintf(stderr, "zonegate: %s\n", msg);
    return 2;
}

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

enum {
    O_ALLOW_IT = 256,
    O_ALLOW_SALT,
    O_EXAMPLES,
    O_PREV_TIME,
    O_MINVAL,
    O_PROP_DELAY,
    O_DS_TTL,
    O_INCOMING,
    O_TIMINGS,
    O_SERVED,
    O_SERVED_TIMEOUT,
    O_SERVED_LIMIT,
};

/* What to do with a result. */
typedef struct {
    const char *candidate; /* SIGNED_ZONE; NULL: the drift check alone */
    const char *release, *json, *onfail;
    int64_t now;
    int timings, examples;
} out_t;

/* Report, --json, then release on PASS (with a candidate) or --on-fail;
 * returns the exit status. */
static int finish(const out_t *out, const struct gate_zone *z,
                  const struct gate_result *r)
{
    gate_diag_t diag = {{0}};
    char *report = NULL;
    size_t rlen = 0;
    int rc = 2;
    FILE *mem = open_memstream(&report, &rlen);
    if (!mem || gate_report_text(r, mem, out->examples) < 0 || fclose(mem)) {
        fprintf(stderr, "zonegate: out of memory\n");
        goto done;
    }
    fputs(report, stdout);
    fflush(stdout);
    if (out->timings)
        gate_timings_print(z, r, stderr);
    if (out->json && gate_report_json(r, out->json, &diag) < 0) {
        fprintf(stderr, "zonegate: --json %s\n", diag.msg);
        goto done;
    }
    if (gate_result_verdict(r) == GATE_PASS) {
        rc = 0;
        if (out->candidate && out->release &&
            gate_release(r, out->candidate, out->release, out->now,
                         &diag) < 0) {
            fprintf(stderr, "zonegate: %s\n", diag.msg);
            rc = 2;
        }
    } else {
        rc = 1;
        if (out->onfail && gate_hook_run(out->onfail, report, &diag) < 0)
            fprintf(stderr, "zonegate: %s\n", diag.msg);
    }
done:
    free(report);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"origin", required_argument, NULL, 'o'},
        {"ds", required_argument, NULL, 'd'},
        {"trust-anchor", required_argument, NULL, 'a'},
        {"unsigned", required_argument, NULL, 'u'},
        {"previous", required_argument, NULL, 'p'},
        {"previous-time", required_argument, NULL, O_PREV_TIME},
        {"now", required_argument, NULL, 'n'},
        {"min-validity", required_argument, NULL, O_MINVAL},
        {"json", required_argument, NULL, 'j'},
        {"release", required_argument, NULL, 'r'},
        {"on-fail", required_argument, NULL, 'f'},
        {"threads", required_argument, NULL, 't'},
        {"examples", required_argument, NULL, O_EXAMPLES},
        {"allow-nsec3-iterations", required_argument, NULL, O_ALLOW_IT},
        {"allow-salt", no_argument, NULL, O_ALLOW_SALT},
        {"propagation-delay", required_argument, NULL, O_PROP_DELAY},
        {"ds-ttl", required_argument, NULL, O_DS_TTL},
        {"incoming-keys", required_argument, NULL, O_INCOMING},
        {"timings", no_argument, NULL, O_TIMINGS},
        {"served", required_argument, NULL, O_SERVED},
        {"served-timeout", required_argument, NULL, O_SERVED_TIMEOUT},
        {"served-limit", required_argument, NULL, O_SERVED_LIMIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    gate_opts_t o = {0};
    const char *json = NULL, *release = NULL, *onfail = NULL;
    const char *now_s = NULL, *prev_s = NULL;
    long v;
    int c;
    int timings = 0;
    int64_t clock = (int64_t)time(NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cores > 0 ? (int)cores : 1;
    o.examples = 5;
    o.propagation_delay = GATE_PROPAGATION_DELAY_DEFAULT;
    o.ds_ttl = -1;
    o.served_timeout = GATE_SERVED_TIMEOUT_DEFAULT;
    o.served_limit = GATE_SERVED_LIMIT_DEFAULT;
    int served_timeout_set = 0;
    gate_diag_t diag = {{0}};
    /* libldns's text parser allocates and frees about 200 KB per record;
     * without this glibc gives that back to the kernel (brk, madvise)
     * hundreds of thousands of times per zone */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    opterr = 0; /* one error line of our own, not getopt's */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o.origin = optarg; break;
        case 'd': o.ds_file = optarg; break;
        case 'a': o.anchor_file = optarg; break;
        case 'u': o.unsigned_file = optarg; break;
        case 'p': o.previous_file = optarg; break;
        case O_PREV_TIME: prev_s = optarg; break;
        case 'n': now_s = optarg; break;
        case O_MINVAL:
            if (gate_duration_parse(optarg, &o.min_validity) < 0)
                return die("--min-validity: not a duration (N[smhd])");
            break;
        case 'j': json = optarg; break;
        case 'r': release = optarg; break;
        case 'f': onfail = optarg; break;
        case 't':
            if (parse_uint(optarg, 64, &v) < 0 || v < 1)
                return die("--threads: a number from 1 to 64");
            o.threads = (int)v;
            break;
        case O_EXAMPLES:
            if (parse_uint(optarg, 1000000, &v) < 0)
                return die("--examples: a number");
            o.examples = (int)v;
            break;
        case O_ALLOW_IT:
            if (parse_uint(optarg, 65535, &v) < 0)
                return die("--allow-nsec3-iterations: 0 to 65535");
            o.allow_iterations = (unsigned)v;
            break;
        case O_ALLOW_SALT: o.allow_salt = 1; break;
        case O_PROP_DELAY:
            if (gate_duration_parse(optarg, &o.propagation_delay) < 0)
                return die("--propagation-delay: not a duration (N[smhd])");
            break;
        case O_DS_TTL:
            if (gate_duration_parse(optarg, &o.ds_ttl) < 0 ||
                o.ds_ttl > 0x7fffffff)
                return die("--ds-ttl: not a duration (N[smhd])");
            break;
        case O_INCOMING: o.incoming_keys = optarg; break;
        case O_TIMINGS: timings = 1; break;
        case O_SERVED:
            if (gate_served_check(optarg, &diag) < 0)
                return die(diag.msg);
            o.served = optarg;
            break;
        case O_SERVED_TIMEOUT:
            if (parse_uint(optarg, 86400, &v) < 0 || v < 1)
                return die("--served-timeout: seconds, from 1 to 86400");
            o.served_timeout = v;
            served_timeout_set = 1;
            break;
        case O_SERVED_LIMIT:
            if (parse_uint(optarg, 86400, &v) < 0 || v < 1)
                return die("--served-limit: seconds, from 1 to 86400");
            o.served_limit = v;
            served_timeout_set = 1;
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "zonegate: %s needs a value (see --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "zonegate: unknown option %s (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (served_timeout_set && !o.served)
        return die("--served-timeout and --served-limit need --served");
    if (o.served && !release)
        return die("--served needs --release DIR (the last release to "
                   "compare with)");
    if (!o.origin)
        return die("--origin is required");
    o.release_dir = release;
    out_t out = {.release = release, .json = json, .onfail = onfail,
                 .timings = timings, .examples = o.examples};
    if (optind == argc && o.served) {
        /* the drift check alone: no candidate, nothing to release */
        if (o.ds_file || o.anchor_file || o.unsigned_file ||
            o.previous_file || o.incoming_keys || now_s || prev_s)
            return die("without SIGNED_ZONE only the drift check runs: "
                       "--ds, --trust-anchor, --unsigned, --previous, "
                       "--incoming-keys and --now need a SIGNED_ZONE");
        struct gate_result *r = NULL;
        int err = gate_drift_run(&r, &o, &diag);
        if (err < 0) {
            fprintf(stderr, "zonegate: %s\n",
                    diag.msg[0] ? diag.msg : gate_strerror(err));
            return 2;
        }
        int rc = finish(&out, NULL, r);
        gate_result_free(r);
        return rc;
    }
    if (optind != argc - 1)
        return die("exactly one SIGNED_ZONE is required (see --help)");
    if (!!o.ds_file + !!o.anchor_file != 1)
        return die("exactly one of --ds or --trust-anchor is required");
    if (prev_s && !o.previous_file)
        return die("--previous-time needs --previous");
    if (now_s && gate_time_parse(now_s, clock, &clock) < 0)
        return die("--now: not a time (YYYYMMDDHHMMSS, seconds, now[+-]N)");
    o.now = clock;
    o.previous_time = clock;
    if (prev_s && gate_time_parse(prev_s, clock, &o.previous_time) < 0)
        return die("--previous-time: not a time");

    struct gate_zone *z = NULL;
    struct gate_result *r = NULL;
    int rc = 2, err;
    if ((err = gate_zone_load(&z, argv[optind], o.origin, o.threads,
                              &diag)) < 0) {
        fprintf(stderr, "zonegate: %s\n",
                diag.msg[0] ? diag.msg : gate_strerror(err));
        goto done;
    }
    if ((err = gate_check_run(&r, z, &o, &diag)) < 0) {
        fprintf(stderr, "zonegate: %s\n",
                diag.msg[0] ? diag.msg : gate_strerror(err));
        goto done;
    }
    out.candidate = argv[optind];
    out.now = o.now;
    rc = finish(&out, z, r);
done:
    gate_result_free(r);
    gate_zone_free(z);
    return rc;
}

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
          "         SIGNED_ZONE\n"
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
};

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
    if (optind != argc - 1)
        return die("exactly one SIGNED_ZONE is required (see --help)");
    if (!o.origin)
        return die("--origin is required");
    if (!!o.ds_file + !!o.anchor_file != 1)
        return die("exactly one of --ds or --trust-anchor is required");
    if (prev_s && !o.previous_file)
        return die("--previous-time needs --previous");
    if (now_s && gate_time_parse(now_s, clock, &clock) < 0)
        return die("--now: not a time (YYYYMMDDHHMMSS, seconds, now[+-]N)");
    o.now = clock;
    o.release_dir = release;
    o.previous_time = clock;
    if (prev_s && gate_time_parse(prev_s, clock, &o.previous_time) < 0)
        return die("--previous-time: not a time");

    gate_diag_t diag = {{0}};
    struct gate_zone *z = NULL;
    struct gate_result *r = NULL;
    char *report = NULL;
    size_t rlen = 0;
    int rc = 2, err;
    if ((err = gate_zone_load(&z, argv[optind], o.origin, o.threads,
                              &diag)) < 0) {
        fprintf(stderr, "zonegate: %s\n",
                diag.msg[0] ? diag.msg : gate_strerror(err));
        goto out;
    }
    if ((err = gate_check_run(&r, z, &o, &diag)) < 0) {
        fprintf(stderr, "zonegate: %s\n",
                diag.msg[0] ? diag.msg : gate_strerror(err));
        goto out;
    }
    FILE *mem = open_memstream(&report, &rlen);
    if (!mem || gate_report_text(r, mem, o.examples) < 0 || fclose(mem)) {
        fprintf(stderr, "zonegate: out of memory\n");
        goto out;
    }
    fputs(report, stdout);
    fflush(stdout);
    if (timings)
        gate_timings_print(z, r, stderr);
    if (json && gate_report_json(r, json, &diag) < 0) {
        fprintf(stderr, "zonegate: --json %s\n", diag.msg);
        goto out;
    }
    if (gate_result_verdict(r) == GATE_PASS) {
        rc = 0;
        if (release && gate_release(r, argv[optind], release, o.now,
                                    &diag) < 0) {
            fprintf(stderr, "zonegate: %s\n", diag.msg);
            rc = 2;
        }
    } else {
        rc = 1;
        if (onfail && gate_hook_run(onfail, report, &diag) < 0)
            fprintf(stderr, "zonegate: %s\n", diag.msg);
    }
out:
    free(report);
    gate_result_free(r);
    gate_zone_free(z);
    return rc;
}

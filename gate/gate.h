/*
 * gate/gate.h - zonegate's public API: load a signed candidate zone, check
 * it against a DS set or trust anchor (and optionally the unsigned input,
 * the previous zone), report findings, release atomically.
 *
 * Implementation (DESIGN.md invariant 2): zone parsing, canonical form,
 * NSEC3 hashing and key tags come from libldns; signature verification and
 * digests from OpenSSL EVP.  Nothing here is shared with hsm/ or signer/.
 */
#ifndef ZONEGATE_GATE_H
#define ZONEGATE_GATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Error codes: 0 success, -errno, or the gate's own range below. */
enum {
    GATE_OK = 0,
    GATE_ERR_BASE = -2000,
    GATE_ERR_SYNTAX = -2001,   /* malformed zone/DS/anchor text */
    GATE_ERR_ZONE = -2002,     /* zone unusable (no SOA, out-of-zone...) */
    GATE_ERR_USAGE = -2003,    /* bad option value */
    GATE_ERR_CRYPTO = -2004,   /* OpenSSL failure that is not a verdict */
    GATE_ERR_HOOK = -2005,     /* --on-fail command could not be run */
    GATE_ERR_NETWORK = -2006,  /* --served: no connection to the server */
};

/* Fixed string for any error code above or negated errno. */
const char *gate_strerror(int err);

/* Diagnostic text written by a failing call: "FILE:LINE: reason". */
typedef struct {
    char msg[512];
} gate_diag_t;

/* Verdicts (STYLE.md): unchecked blocks release just like fail. */
typedef enum {
    GATE_PASS = 0,
    GATE_FAIL = 1,
    GATE_UNCHECKED = 2,
} gate_verdict_t;

/* Problem classes (CLI.md table), each with one RFC 8914 EDE code. */
typedef enum {
    GATE_C_BOGUS_SIGNATURE = 0,
    GATE_C_UNKNOWN_KEY,
    GATE_C_MISSING_SIGNATURE,
    GATE_C_EXPIRED_SIGNATURE,
    GATE_C_NOT_YET_VALID_SIGNATURE,
    GATE_C_LOW_VALIDITY,
    GATE_C_RRSIG_FIELD,
    GATE_C_TRUST_ANCHOR,
    GATE_C_ALGORITHM_COVERAGE,
    GATE_C_SIGNED_NON_AUTHORITATIVE,
    GATE_C_NSEC3_CHAIN,
    GATE_C_NSEC3_BITMAP,
    GATE_C_NSEC3_PARAM,
    GATE_C_NSEC_CHAIN,
    GATE_C_CONTENT_MISMATCH,
    GATE_C_UNSAFE_TRANSITION,
    GATE_C_ZONEMD,
    GATE_C_DRIFT,
    GATE_C_UNSUPPORTED_ALGORITHM, /* verdict unchecked */
    GATE_C_COUNT
} gate_class_t;

const char *gate_class_name(gate_class_t c);
int gate_class_ede(gate_class_t c);

/* Options of one run; zero-initialise, then fill. */
typedef struct {
    const char *origin;        /* zone name, "tld." */
    const char *ds_file;       /* --ds */
    const char *anchor_file;   /* --trust-anchor (DS or DNSKEY RRs) */
    const char *unsigned_file; /* --unsigned */
    const char *previous_file; /* --previous */
    int64_t previous_time;     /* --previous-time (default: now) */
    int64_t now;               /* --now, UNIX seconds */
    int64_t min_validity;      /* --min-validity, seconds (0: off) */
    unsigned allow_iterations; /* --allow-nsec3-iterations N */
    int allow_salt;            /* --allow-salt */
    int threads;               /* --threads, >= 1 */
    int examples;              /* --examples N */
    const char *release_dir;   /* --release: its history is checked too */
    const char *incoming_keys; /* --incoming-keys: DNSKEYs not yet published */
    int64_t propagation_delay; /* --propagation-delay, seconds */
    int64_t ds_ttl;            /* --ds-ttl, seconds; -1: from the DS file */
    const char *served;        /* --served ADDR[#PORT]: drift check (drift.c) */
    int64_t served_timeout;    /* --served-timeout, seconds (> 0) */
    int64_t served_limit;      /* --served-limit, seconds (> 0): the whole
                                * transfer */
} gate_opts_t;

/* Default --propagation-delay (seconds) and DS TTL when the file has none. */
#define GATE_PROPAGATION_DELAY_DEFAULT 3600
#define GATE_DS_TTL_DEFAULT 86400
/* Default --served-timeout: longest wait for the connection or for data. */
#define GATE_SERVED_TIMEOUT_DEFAULT 10
/* Default --served-limit: longest time for the whole transfer (an 18M
 * delegation zone transfers in about 70 s on a 2-core machine). */
#define GATE_SERVED_LIMIT_DEFAULT 900

struct gate_zone;   /* a loaded zone: records in compact canonical form */
struct gate_result; /* findings and counts of one check run */

/*
 * Read a zone file with libldns.  origin: the zone's name.  On success
 * *out is a zone the caller frees with gate_zone_free; on failure returns
 * an error and writes "FILE:LINE: reason" into diag.  threads: readers.
 */
int gate_zone_load(struct gate_zone **out, const char *path,
                   const char *origin, int threads, gate_diag_t *diag);
void gate_zone_free(struct gate_zone *z);
uint32_t gate_zone_serial(const struct gate_zone *z);
size_t gate_zone_records(const struct gate_zone *z);

/*
 * Run every check on zone z with options o.  *out: caller frees with
 * gate_result_free.  Returns an error only when the run itself failed
 * (unreadable DS file: diag says why); a bad zone is a verdict.
 */
int gate_check_run(struct gate_result **out, const struct gate_zone *z,
                   const gate_opts_t *o, gate_diag_t *diag);
void gate_result_free(struct gate_result *r);
gate_verdict_t gate_result_verdict(const struct gate_result *r);

/* Wall and CPU seconds per phase of z's load and r's checks (either may
 * be NULL), one line each, for --timings. */
void gate_timings_print(const struct gate_zone *z, const struct gate_result *r,
                        FILE *fp);

/* Text report (first line PASS/FAIL, classes, keys, examples). */
int gate_report_text(const struct gate_result *r, FILE *fp, int examples);
/* JSON report (CLI.md shape), written atomically to path. */
int gate_report_json(const struct gate_result *r, const char *path,
                     gate_diag_t *diag);

/*
 * Release the candidate file at path into dir as <zone>.zone atomically
 * and append a line to dir/history.jsonl (atomically: rewrite + rename):
 * time, serial, DNSKEY RRset, the keys that signed the DNSKEY RRset and
 * the rest, largest TTLs, the parent's DS set (history.c).
 */
int gate_release(const struct gate_result *r, const char *path,
                 const char *dir, int64_t now, gate_diag_t *diag);
/*
 * Drift (drift.c): the zone a server serves against the last release,
 * DIR/<zone>.zone.  gate_served_check validates a --served ADDR[#PORT]
 * (an IP literal, loopback only: 127.0.0.0/8 or ::1; PORT default 53);
 * GATE_ERR_USAGE with diag on a bad one.  With a candidate, gate_check_run
 * runs the drift check when o->served is set (o->release_dir too).
 *
 * gate_drift_run is the drift check alone, with no candidate: it loads the
 * last release of o->origin from o->release_dir, transfers the zone from
 * o->served by AXFR and compares.  *out: a result (its zone is the release)
 * for gate_report_text/json and gate_result_verdict, never for
 * gate_release; caller frees with gate_result_free.  Errors (no release
 * yet, no connection, unreadable release): diag says why.
 */
int gate_served_check(const char *spec, gate_diag_t *diag);
int gate_drift_run(struct gate_result **out, const gate_opts_t *o,
                   gate_diag_t *diag);

/* Run cmd via /bin/sh with report text on its stdin; returns its status. */
int gate_hook_run(const char *cmd, const char *report, gate_diag_t *diag);

/*
 * Times (CLI.md "Common"): YYYYMMDDHHMMSS, UNIX seconds, now, now+N,
 * now-N (N with optional s/m/h/d).  clock: the value of "now".
 */
int gate_time_parse(const char *s, int64_t clock, int64_t *out);
/* Durations: N with optional s/m/h/d suffix. */
int gate_duration_parse(const char *s, int64_t *out);

#endif

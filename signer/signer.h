/*
 * signer/signer.h - zonesign's library: an RFC 1035 zone in, a DNSSEC-signed
 * zone out, signing only through hsm/ (hsm/hsm.h).
 *
 * Implementation split (DESIGN.md "a separate road"): zone text is read with
 * Knot's libzscanner, records are kept as compact wire-form bytes in one
 * arena, canonical form and order are the signer's own, NSEC3 hashes come
 * from OpenSSL SHA-1 directly, signatures from the hsm/ pool.
 *
 * Errors: functions return 0 or a negative code of enum signer_error
 * (errno values negated or the range below); the one line a person reads
 * ("FILE:LINE: reason", HSM and key tags) goes into the signer_diag_t.
 */
#ifndef ZONEGATE_SIGNER_H
#define ZONEGATE_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/hsm.h"

enum signer_error {
    SIGNER_EOK = 0,
    SIGNER_ERROR_BASE = -2000,
    SIGNER_EINPUT = SIGNER_ERROR_BASE, /* malformed zone or bad option */
    SIGNER_ECOLLISION,                 /* NSEC3 hash collision */
    SIGNER_EMISMATCH,                  /* HSM consistency proof failed */
    SIGNER_EHSM,                       /* HSM or key set failure */
    SIGNER_EIO,                        /* output could not be written */
    SIGNER_ETIME,                      /* bad time or validity window */
    SIGNER_ERROR_MAX
};

const char *signer_strerror(int code);

typedef struct signer_diag {
    char msg[1024];
} signer_diag_t;

/* --------------------------------------------------------------- */
/* Times and serials (signer/timeparse.c, signer/serial.c)          */

/* Parses T per CLI.md "Common": YYYYMMDDHHMMSS (UTC), UNIX seconds, now,
 * now+N, now-N (N with optional s m h d suffix), relative to NOW.
 * Returns 0 or SIGNER_ETIME. */
int signer_time_parse(const char *text, int64_t now, int64_t *out);
/* Parses a duration "N", "Ns", "Nm", "Nh", "Nd".  0 or SIGNER_ETIME. */
int signer_duration_parse(const char *text, int64_t *out);
/* Formats UNIX seconds as YYYYMMDDHHMMSS (buf >= 15 bytes). */
void signer_time_format(int64_t t, char *buf);

typedef enum signer_serial_policy {
    SIGNER_SERIAL_KEEP,
    SIGNER_SERIAL_INCREMENT,
    SIGNER_SERIAL_UNIXTIME,
    SIGNER_SERIAL_DATE,
} signer_serial_policy_t;

/* RFC 1982 serial arithmetic: <0 if a precedes b, 0 equal, >0 if a follows
 * b; 2 if undefined (exactly 2^31 apart). */
int signer_serial_cmp(uint32_t a, uint32_t b);
/* The new serial for OLD under POLICY at time NOW; PREV (if has_prev) is
 * a serial already published, which the result must follow (RFC 1982). */
uint32_t signer_serial_next(signer_serial_policy_t policy, uint32_t old,
                            int has_prev, uint32_t prev, int64_t now);

/* --------------------------------------------------------------- */
/* Signing                                                          */

typedef enum signer_denial {
    SIGNER_DENIAL_NSEC3,
    SIGNER_DENIAL_NSEC,
} signer_denial_t;

typedef struct signer_opts {
    const char *input;         /* unsigned zone file */
    const char *output;        /* signed zone, written atomically */
    const char *origin;        /* presentation form; NULL: key set's zone */
    const char *previous;      /* previous signed zone or NULL */
    const char *previous_cache; /* its signature cache; NULL: PREVIOUS.zsc */
    int no_cache;              /* neither write OUT.zsc nor read one */
    int no_patch;              /* never make OUT by editing --previous */
    int no_spare;              /* keep no spare of OUT to write over next
                                * time (see signer/reap.c) */
    signer_denial_t denial;
    int opt_out;
    uint8_t salt[255];
    size_t salt_len;
    uint16_t iterations;
    int64_t now;
    int64_t inception;
    int64_t expiration;
    int64_t jitter;            /* -1: default (5% of the validity) */
    int64_t refresh;           /* -1: default (1/4 of the validity) */
    signer_serial_policy_t serial;
    unsigned threads;          /* hsm pool workers, 0 = cores */
    unsigned submitters;       /* batch builders, 0 = 2 */
    unsigned verify_every;     /* check 1 of N signatures per HSM against
                                * the DNSKEY in the pool (0: never) */
    int token_keys;            /* sign with the HSMs' token objects, not
                                * with per-session copies */
    const char *const *helper_argv; /* how to start a signing helper
                                * process (hsm/helper.c); NULL: none */
    int helpers;               /* pool workers that sign through a helper
                                * on the full road; -1: every worker (the
                                * patch road signs in-process) */
    int progress;              /* print progress on stderr */
} signer_opts_t;

typedef struct signer_stats {
    uint64_t records_in;
    uint64_t rrsets;           /* RRsets in the output (without RRSIG) */
    uint64_t signed_rrsets;
    uint64_t sigs_made;
    uint64_t sigs_reused;
    uint64_t nsec3;            /* NSEC3 or NSEC records made */
    uint64_t warnings;
    uint32_t serial;
    double seconds;
    double t_read, t_prepare, t_proof, t_sign_write; /* phase seconds */
    size_t helpers;            /* signing helper processes the pool
                                * started and proved */
    int previous_from;         /* 0 no --previous, 1 its signature cache,
                                * 2 its text, 3 patched (patch.c) */
} signer_stats_t;

/* Reads, signs and writes a zone: opts->input to opts->output through the
 * HSMs of SET with the keys of KS.  Runs the consistency proof first
 * (hsm_pool_new): a mismatch gives SIGNER_EMISMATCH, one line per mismatch
 * printed through mismatch_cb, nothing written.  Warnings (one line each,
 * "FILE:LINE: ...") go to warn(arg, line).  Stats filled on success;
 * per-HSM counts via the pool: see signer_zone_sign's HSM_STAT callback. */
typedef struct signer_hooks {
    void (*warn)(void *arg, const char *line);
    hsm_mismatch_cb mismatch;
    void (*hsm_stat)(void *arg, size_t i, const hsm_stat_t *st);
    void *arg;
    /* The HSM set, when signer_zone_sign is given none (SET NULL): the
     * caller opens it while the zone is read, and the pool waits for it
     * where it starts.  Returns 0 and *SET, or an HSM_E* code with
     * DIAG's message. */
    int (*set_wait)(void *set_arg, struct hsm_set **set, hsm_diag_t *diag);
    void *set_arg;
} signer_hooks_t;

int signer_zone_sign(const signer_opts_t *opts, struct hsm_set *set,
                     const hsm_keyset_t *ks, const signer_hooks_t *hooks,
                     signer_stats_t *stats, signer_diag_t *diag);

#endif

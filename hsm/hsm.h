/*
 * hsm/hsm.h - PKCS#11 HSMs holding one DNSSEC key pair each, proven.
 *
 * The HSM layer speaks bytes and keys, not RRsets.  It opens HSMs named by
 * RFC 7512 PKCS#11 URIs (libp11, one PKCS11_CTX per module; raw PKCS#11 on
 * the same module where libp11 0.4.12 cannot do a job), keeps the zone's key
 * set file, places ONE key pair on every HSM, proves by probe signatures
 * that every HSM holds exactly the key published in the DNSKEY RRset, and
 * signs buffers in DNSSEC wire format through a pool of workers spread over
 * all HSMs (each worker in this process, or driving a signing helper
 * process of its own: helper.c).
 *
 * Errors: every function returns 0 or a negative code from enum hsm_error
 * (errno values negated, or the library's own range below).  Text a person
 * must read (HSM, token, label, key tag) goes into the hsm_diag_t the caller
 * passes in; no global "last error".  Out-parameters are written only on
 * success.  PINs are never written to a diagnostic.
 */
#ifndef ZONEGATE_HSM_H
#define ZONEGATE_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hsm_error {
    HSM_EOK = 0,
    HSM_ERROR_BASE = -1000,
    HSM_EURI = HSM_ERROR_BASE, /* malformed PKCS#11 URI */
    HSM_EMODULE,               /* module cannot be loaded */
    HSM_ENOTOKEN,              /* URI matches no token */
    HSM_EAMBIGUOUS,            /* URI matches more than one token / key */
    HSM_EPIN,                  /* PIN missing or unreadable */
    HSM_ELOGIN,                /* login refused */
    HSM_ENOKEY,                /* key not found */
    HSM_EALG,                  /* unsupported algorithm or key size */
    HSM_EKEYSET,               /* key set file malformed */
    HSM_ECOLLISION,            /* key tag or label collides in the zone */
    HSM_EMISMATCH,             /* consistency proof failed */
    HSM_EDEVICE,               /* PKCS#11 operation failed */
    HSM_ENOHSM,                /* no HSM left in rotation */
    HSM_EUNSUPPORTED,          /* the stack cannot do this */
    HSM_ECRYPTO,               /* OpenSSL failure */
    HSM_ERROR_MAX
};

/* Fixed string for any return code (negated errno included). */
const char *hsm_strerror(int code);

/* A diagnostic the caller passes in; filled with one line on failure. */
typedef struct hsm_diag {
    char msg[1024];
} hsm_diag_t;

/* ------------------------------------------------------------------ */
/* DNSSEC algorithm helpers                                             */

/* Parses "8", "RSASHA256", "13", "ECDSAP256SHA256", ... Returns the
 * algorithm number or HSM_EALG. */
int hsm_alg_parse(const char *text);
/* Mnemonic ("ECDSAP256SHA256") or NULL for an unknown algorithm. */
const char *hsm_alg_name(uint8_t alg);

/* RFC 4034 Appendix B key tag over DNSKEY RDATA. */
uint16_t hsm_keytag(const uint8_t *rdata, size_t len);

/* ------------------------------------------------------------------ */
/* Key set file: the zone's keys (format in README.md).                 */

typedef enum hsm_role {
    HSM_ROLE_KSK,
    HSM_ROLE_ZSK,
    HSM_ROLE_CSK,
} hsm_role_t;

typedef enum hsm_state {
    HSM_STATE_PUBLISHED, /* in DNSKEY, not signing */
    HSM_STATE_ACTIVE,    /* in DNSKEY and signing */
    HSM_STATE_RETIRED,   /* in DNSKEY, no longer signing */
    HSM_STATE_REMOVED,   /* gone from DNSKEY */
    HSM_STATE_SIGNING,   /* signs the zone's data, not in DNSKEY: an
                          * algorithm rollover's new key before its DNSKEY
                          * (and old key after it), RFC 6781 4.1.4 */
} hsm_state_t;

#define HSM_LABEL_MAX 64
#define HSM_ID_MAX 32
#define HSM_PUBKEY_MAX 1024

typedef struct hsm_key {
    char label[HSM_LABEL_MAX];  /* PKCS#11 CKA_LABEL */
    uint8_t id[HSM_ID_MAX];     /* PKCS#11 CKA_ID, unique per key */
    size_t id_len;
    hsm_role_t role;
    hsm_state_t state;
    uint8_t alg;                /* DNSSEC algorithm number */
    uint16_t flags;             /* DNSKEY flags: 257 KSK/CSK, 256 ZSK */
    uint16_t keytag;            /* RFC 4034 Appendix B */
    uint8_t pubkey[HSM_PUBKEY_MAX]; /* DNSKEY public key field (RFC 3110,
                                     * RFC 6605 Q.x||Q.y, ...) */
    size_t pubkey_len;
    int64_t created;            /* UNIX seconds */
    int64_t state_since;        /* UNIX seconds of the last state change */
} hsm_key_t;

typedef struct hsm_keyset {
    char zone[256];             /* origin in presentation form, ending '.' */
    size_t count;
    hsm_key_t *keys;            /* owned */
} hsm_keyset_t;

/* Reads a key set file.  Caller frees with hsm_keyset_free.  A malformed
 * file gives HSM_EKEYSET with "FILE:LINE: reason" in diag. */
int hsm_keyset_load(hsm_keyset_t **out, const char *path, hsm_diag_t *diag);
/* Empty key set for zone ORIGIN.  Caller frees with hsm_keyset_free. */
int hsm_keyset_new(hsm_keyset_t **out, const char *zone, hsm_diag_t *diag);
/* Writes atomically (temporary file, fsync, rename, directory fsync). */
int hsm_keyset_save(const hsm_keyset_t *ks, const char *path,
                    hsm_diag_t *diag);
void hsm_keyset_free(hsm_keyset_t *ks);
/* Index of the key with LABEL, or -1. */
int hsm_keyset_find(const hsm_keyset_t *ks, const char *label);
/* DNSKEY RDATA (flags, protocol 3, algorithm, public key) of key K into
 * buf (at least 4 + HSM_PUBKEY_MAX bytes); returns its length. */
size_t hsm_key_dnskey_rdata(const hsm_key_t *k, uint8_t *buf);

/* ------------------------------------------------------------------ */
/* A set of opened HSMs                                                  */

struct hsm_set;

/* Reads a --hsm-list file: one URI per line, '#' comments, blank lines
 * ignored.  Appends to *uris (realloc'd, strings strdup'd) and *n. */
int hsm_urilist_load(char ***uris, size_t *n, const char *path,
                     hsm_diag_t *diag);

/* Opens and logs in to N HSMs, numbered 1..N in the order given.  Each URI
 * must match exactly one token (by token label and/or serial, never slot
 * index).  Caller frees with hsm_set_free.
 * Threads: hsm_key_generate, hsm_set_check, hsm_set_list and hsm_kek_init
 * share one session per HSM: call them from one thread at a time per set
 * (hsm_pool_sign is the thread-safe path).  Keep one set per module open
 * in a process: freeing a set finalises its modules (C_Finalize). */
int hsm_set_open(struct hsm_set **out, const char *const *uris, size_t n,
                 hsm_diag_t *diag);
void hsm_set_free(struct hsm_set *set);
size_t hsm_set_count(const struct hsm_set *set);
/* Token label of HSM i (0-based). */
const char *hsm_set_token(const struct hsm_set *set, size_t i);

/* Key generation: ONE key pair for KEY (label, role, alg, flags filled in
 * by the caller; id, pubkey, keytag, created filled in here), placed on
 * every HSM of SET under one fresh CKA_ID.  BITS is used for RSA (0 gives
 * 2048).  Refuses a label already on a token and a key tag that collides
 * with KS.  Replication method: */
typedef enum hsm_replicate {
    HSM_REPLICATE_WRAP,   /* generate on HSM 1, wrap/unwrap under a KEK */
    HSM_REPLICATE_IMPORT, /* generate in host memory, import, wipe */
} hsm_replicate_t;
int hsm_key_generate(struct hsm_set *set, const hsm_keyset_t *ks,
                     hsm_key_t *key, unsigned bits, hsm_replicate_t how,
                     hsm_diag_t *diag);

/* Destroys KEY's objects (by CKA_ID) on every HSM of SET: undoes a
 * hsm_key_generate whose key could not be recorded in the key set. */
int hsm_key_destroy(struct hsm_set *set, const hsm_key_t *key,
                    hsm_diag_t *diag);

/* Creates the AES-256 key-encryption key used by HSM_REPLICATE_WRAP on
 * every HSM of SET (made in host memory, created on each token, wiped).
 * Refuses (HSM_ECOLLISION) if any token already has one.  A wrap keygen
 * does this by itself when no token has a KEK. */
int hsm_kek_init(struct hsm_set *set, hsm_diag_t *diag);

/* One line of the consistency proof's verdict. */
typedef struct hsm_mismatch {
    size_t hsm;             /* 1-based */
    const char *token;      /* token label */
    const char *label;      /* key label */
    uint16_t expected_tag;  /* from the key set */
    int found_tag;          /* tag of the public key on that HSM, -1 none */
    const char *reason;     /* fixed string */
} hsm_mismatch_t;
typedef void (*hsm_mismatch_cb)(const hsm_mismatch_t *m, void *arg);

/* The consistency proof (DESIGN.md invariant 1): for every key of KS that
 * is not removed and every HSM, the key is present, its public key equals
 * the key set's DNSKEY, and a probe signature made by that HSM over a fresh
 * random challenge verifies against the DNSKEY with plain OpenSSL.  Calls
 * CB once per mismatch.  Returns 0 if consistent, HSM_EMISMATCH if any
 * mismatch, another code if the proof could not be run. */
int hsm_set_check(struct hsm_set *set, const hsm_keyset_t *ks,
                  hsm_mismatch_cb cb, void *arg, hsm_diag_t *diag);

/* Per-HSM listing for `zonehsm list`. */
typedef struct hsm_listed {
    size_t hsm;
    const char *token;
    char label[HSM_LABEL_MAX];
    uint8_t alg;      /* 0 if the key type maps to no DNSSEC algorithm */
    int keytag;       /* computed with the flags of the matching key set
                       * entry (257 if none); -1 if unreadable */
} hsm_listed_t;
typedef void (*hsm_list_cb)(const hsm_listed_t *l, void *arg);
int hsm_set_list(struct hsm_set *set, const hsm_keyset_t *ks, hsm_list_cb cb,
                 void *arg, hsm_diag_t *diag);

/* ------------------------------------------------------------------ */
/* The signing pool                                                      */

struct hsm_pool;

typedef struct hsm_pool_opts {
    unsigned threads;      /* worker threads (0: number of cores); each
                            * worker keeps one session per HSM */
    unsigned verify_every; /* verify 1 of every N signatures of each HSM
                            * against the DNSKEY (0: never; 1: all) */
    bool token_keys;       /* sign with the token objects, not with proven
                            * per-session copies (see pool.c) */
    const char *const *helper_argv; /* how to start a signing helper
                            * (helper.c): an executable whose main calls
                            * hsm_helper_main when given HSM_HELPER_ARG,
                            * NULL-terminated; NULL: none */
    unsigned helpers;      /* workers that each drive a helper (at most
                            * threads); the rest sign in this process */
    hsm_mismatch_cb mismatch;     /* proof failures, may be NULL */
    void (*log)(void *arg, const char *line); /* HSM taken out, ... */
    void *arg;             /* for mismatch and log */
} hsm_pool_opts_t;

/* Runs the consistency proof over every key of KS that is not removed
 * (the signer cannot sign without it) and starts the workers.  Returns
 * HSM_EMISMATCH (nothing started) if the proof fails.  SET and KS must
 * outlive the pool.  Caller frees with hsm_pool_free. */
int hsm_pool_new(struct hsm_pool **out, struct hsm_set *set,
                 const hsm_keyset_t *ks, const hsm_pool_opts_t *opts,
                 hsm_diag_t *diag);
void hsm_pool_free(struct hsm_pool *pool);
/* Workers whose signing helper is running and proven. */
size_t hsm_pool_helpers(const struct hsm_pool *pool);

/* A signing helper's side (helper.c): run by the helper executable when
 * its argument is HSM_HELPER_ARG; talks to its pool over the socket at
 * descriptor HSM_HELPER_FD and returns the process's exit status (0 when
 * the pool closed it, 2 on an error).  The pool puts HSM_HELPER_ENV=1 in
 * the helper's environment. */
#define HSM_HELPER_ARG "--hsm-signing-helper"
#define HSM_HELPER_FD 3
#define HSM_HELPER_ENV "ZONEGATE_SIGNING_HELPER"
int hsm_helper_main(void);
/* helper_argv for a program that is its own helper: this executable
 * again (/proc/self/exe), given HSM_HELPER_ARG. */
extern const char *const hsm_helper_self[];

/* Largest signature of key index KEY, in bytes. */
size_t hsm_pool_sig_max(const struct hsm_pool *pool, size_t key);

typedef struct hsm_job {
    const uint8_t *data; /* signed data (RFC 4034 3.1.8.1), caller's */
    uint32_t len;
    uint32_t key;        /* index into the key set */
    uint8_t *sig;        /* out: caller's buffer, hsm_pool_sig_max bytes */
    uint16_t sig_len;    /* out */
    uint16_t hsm;        /* out: 1-based HSM that signed */
} hsm_job_t;

/* Signs N jobs, spread over all HSMs in rotation, and returns when all are
 * done.  Hashing per algorithm happens here (SHA-256 for 8 and 13, SHA-512
 * for 10, SHA-384 for 14); signatures come back in DNSSEC wire form (RSA
 * PKCS#1 v1.5; ECDSA fixed-width r||s, RFC 6605).  An HSM that fails (or
 * whose sampled signature does not verify) is taken out with a logged
 * reason and its jobs are retried on the others.  Returns HSM_ENOHSM if
 * none is left: then no job may be used.  Thread-safe: several callers may
 * submit batches at once. */
int hsm_pool_sign(struct hsm_pool *pool, hsm_job_t *jobs, size_t n,
                  hsm_diag_t *diag);
/* Jobs hsm_pool_sign signed in an earlier batch, checked again when a
 * later one has ended: those an HSM signed before it was taken out for a
 * bad signature are signed again by the others (as hsm_pool_sign does
 * for its own batch).  For a caller that splits one set of signatures
 * over several batches.  Returns 0, HSM_ENOHSM (then no job may be
 * used) or another error. */
int hsm_pool_redo_tainted(struct hsm_pool *pool, hsm_job_t *jobs, size_t n,
                          hsm_diag_t *diag);

typedef struct hsm_stat {
    const char *token;
    uint64_t signatures;
    int in_rotation;     /* 0 if taken out */
    char reason[256];    /* why it was taken out */
} hsm_stat_t;
size_t hsm_pool_count(const struct hsm_pool *pool);
void hsm_pool_stat(const struct hsm_pool *pool, size_t i, hsm_stat_t *out);

#endif

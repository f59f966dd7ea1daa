/*
 * gate/internal.h - struct bodies shared by gate/'s own files.
 *
 * Records are kept compact: one 32-byte gate_rec_t per RR plus its owner
 * and rdata bytes in one arena, in canonical form (RFC 4034 6.2, made by
 * ldns_rr2canonical), never one ldns_rr per record for the whole zone.
 */
#ifndef ZONEGATE_GATE_INTERNAL_H
#define ZONEGATE_GATE_INTERNAL_H

#include "gate/gate.h"

#include <ldns/ldns.h>
#include <openssl/evp.h>

/* Phase timings (timing.c), printed by zonegate --timings. */
typedef struct {
    const char *name;
    double wall, cpu;  /* seconds; cpu: the whole process, all threads */
    uint64_t items;    /* things done in the phase (0: not counted) */
} gate_phase_t;

enum { GATE_PHASES_MAX = 24 };

typedef struct {
    gate_phase_t p[GATE_PHASES_MAX];
    int n;
} gate_timings_t;

typedef struct {
    double wall, cpu;
} gate_clock_t;

void timing_start(gate_clock_t *c);
/* Record the phase begun at c under name (a static string). */
void timing_stop(gate_timings_t *t, const gate_clock_t *c, const char *name,
                 uint64_t items);

/* One RR. */
typedef struct {
    uint64_t name;  /* arena offset of the owner, canonical wire form */
    uint64_t rdata; /* arena offset of the canonical rdata */
    uint32_t ttl;
    uint32_t line;  /* line in the zone file */
    uint16_t type;
    uint16_t rdlen;
    uint8_t namelen;
    uint8_t labels; /* labels without the root */
} gate_rec_t;

/* Name flags. */
enum {
    GATE_N_APEX = 1,
    GATE_N_CUT = 2,      /* delegation point (NS, not apex) */
    GATE_N_OCCLUDED = 4, /* below a cut or DNAME: glue or occluded */
    GATE_N_HASHED = 8,   /* only NSEC3 (+RRSIG): an NSEC3 owner */
};

typedef struct {
    uint32_t first_rrset;
    uint32_t nrrsets;
    uint32_t rec;   /* a record of this name (for owner bytes) */
    uint8_t flags;
} gate_name_t;

typedef struct {
    uint32_t first; /* first record index */
    uint32_t count;
    uint32_t name;  /* gate_name_t index */
    uint16_t type;
    uint8_t auth;   /* must be signed */
} gate_rrset_t;

struct gate_zone {
    char *path;
    ldns_rdf *origin;     /* canonical */
    uint8_t *arena;
    size_t arena_len, arena_cap;
    gate_rec_t *recs;
    size_t nrecs, recs_cap;
    size_t duplicates;    /* identical RRs dropped */
    gate_name_t *names;
    size_t nnames;
    gate_rrset_t *rrsets;
    size_t nrrsets;
    uint32_t serial;
    int64_t soa_rrset;    /* rrset index of the apex SOA, -1 none */
    int64_t dnskey_rrset; /* apex DNSKEY rrset, -1 none */
    int sorted;           /* recs already in zone_rec_cmp order */
    gate_timings_t timings;
};

static inline const uint8_t *rec_name(const struct gate_zone *z,
                                      const gate_rec_t *r)
{
    return z->arena + r->name;
}

static inline const uint8_t *rec_rdata(const struct gate_zone *z,
                                       const gate_rec_t *r)
{
    return z->arena + r->rdata;
}

/* zone.c: sort records canonically, drop duplicates, build names/rrsets. */
/* threads: sorting threads (>= 1). */
int zone_index(struct gate_zone *z, int threads);
/* Canonical RR order (RFC 4034 6.1, 6.3), then file line; arg: the zone. */
int zone_rec_cmp(const void *a, const void *b, void *zone);
/* Sort z's records with zone_rec_cmp. */
void zone_recs_sort(struct gate_zone *z);
/* Canonical name order (RFC 4034 6.1) on lower-cased wire names. */
int name_cmp(const uint8_t *a, const uint8_t *b);
/* 1 if a is b or below b (wire names). */
int name_is_sub(const uint8_t *a, const uint8_t *b);
size_t name_len(const uint8_t *n);
int name_labels(const uint8_t *n);
/* rrset index of type at name index, -1 if none. */
int64_t zone_find_rrset(const struct gate_zone *z, size_t name, uint16_t type);
/* Name index of wire name, -1 if none. */
int64_t zone_find_name(const struct gate_zone *z, const uint8_t *wire);
/* Owner as presentation text into buf. */
void zone_name_str(const uint8_t *wire, char *buf, size_t len);
/* Type mnemonic into buf. */
void zone_type_str(uint16_t type, char *buf, size_t len);

/* A published DNSKEY. */
typedef struct {
    uint16_t tag;
    uint16_t flags;
    uint8_t alg;
    uint32_t rec;    /* record index */
    EVP_PKEY *pkey;  /* NULL: unsupported algorithm or bad key */
    int trusted;     /* matches the DS set / trust anchor */
} gate_key_t;

/* crypto.c: EVP keys from DNSKEY rdata, RRSIG verification. */
int crypto_alg_supported(uint8_t alg);
int crypto_pkey_from_dnskey(EVP_PKEY **out, const uint8_t *rdata, size_t len);
/* 1 verifies, 0 does not, <0 error. */
int crypto_verify(EVP_PKEY *pkey, uint8_t alg, const uint8_t *data,
                  size_t dlen, const uint8_t *sig, size_t slen);

/* Fetch SHA-1/256/384/512 once per run (caller frees with crypto_mds_free). */
int crypto_mds_fetch(EVP_MD *md[4]);
void crypto_mds_free(EVP_MD *md[4]);
/* As crypto_verify, with a per-thread, per-key verify context in *pctx. */
int crypto_verify_cached(EVP_PKEY_CTX **pctx, EVP_MD *mds[4], EVP_PKEY *pkey,
                         uint8_t alg, const uint8_t *data, size_t dlen,
                         const uint8_t *sig, size_t slen);

/* One finding. */
typedef struct {
    uint8_t cls;      /* gate_class_t */
    uint8_t verdict;  /* gate_verdict_t */
    uint8_t alg;
    uint16_t keytag;
    uint16_t type;    /* RR type concerned (0: none) */
    int64_t rec;      /* record whose owner is reported, -1 none */
    const char *reason; /* fixed string */
    char *owner;      /* owner text when rec is -1 (may be NULL) */
    char *msg;        /* made text replacing reason (may be NULL) */
} gate_finding_t;

/* Per-key signature tallies for the report. */
typedef struct {
    uint16_t tag;
    uint8_t alg;
    uint8_t published;
    uint64_t ok, bad;
} gate_keystat_t;

/* Per-RRSIG outcome bits (rrsig.c). */
enum {
    SIG_VERIFIED = 1,
    SIG_BOGUS = 2,
    SIG_UNKNOWN_KEY = 4,
    SIG_EXPIRED = 8,
    SIG_NOT_YET = 16,
    SIG_LOW = 32,
    SIG_FIELD = 64,
    SIG_UNSUPPORTED = 128,
    SIG_ORPHAN = 256,   /* covers a type absent at its owner */
    SIG_NONAUTH = 512,  /* covers a non-authoritative RRset */
    SIG_PREPUB = 1024,  /* verified by a key not in the DNSKEY RRset whose
                           algorithm has no DNSKEY there (RFC 6781 4.1.4) */
};

/* A key known from the history, --previous or --incoming-keys. */
typedef struct {
    uint16_t tag;
    uint16_t flags;
    uint8_t alg;
    EVP_PKEY *pkey;
} gate_xkey_t;

/* history.c: one released version as the transition check sees it. */
typedef struct {
    uint16_t tag;
    uint8_t alg;
    uint16_t flags;
    uint32_t ttl;
    uint8_t *rdata;
    uint16_t rdlen;
} hist_key_t;

typedef struct {
    uint16_t tag;
    uint8_t alg;
    uint32_t rrsets; /* RRsets it signed (0: not recorded) */
} hist_signer_t;

typedef struct {
    int64_t time;
    uint32_t serial;
    hist_key_t *keys;
    size_t nkeys;
    hist_signer_t *dnskey_by, *data_by;
    size_t ndnskey_by, ndata_by;
    uint32_t data_rrsets;  /* signed RRsets other than DNSKEY (0: unknown) */
    uint32_t ttl_dnskey, ttl_signed;
    int has_ds;            /* the parent's DS set is recorded */
    uint32_t ds_ttl;
    uint8_t **ds;          /* DS rdata */
    uint16_t *dslen;
    size_t nds;
} hist_entry_t;

/* drift.c: what the drift check compared, for the report. */
typedef struct {
    char server[64];           /* "127.0.0.1#53" */
    char release[4200];        /* DIR/<zone>.zone */
    int alone;                 /* no candidate: the drift check only */
    int compared;              /* records compared (transfer complete) */
    char note[256];            /* why not checked; "" when checked */
    uint32_t served_serial, released_serial;
    size_t served_recs, released_recs;
    size_t differences;        /* record differences found */
    size_t unlisted;           /* findings counted but not stored */
    struct gate_zone *owned;   /* the release loaded by drift.c */
} gate_drift_t;

struct gate_result {
    const struct gate_zone *zone;
    const gate_opts_t *opts;
    char *zone_name;
    gate_finding_t *f;
    size_t nf, cap;
    size_t class_count[GATE_C_COUNT];
    gate_key_t *keys;
    size_t nkeys;
    gate_keystat_t *kstats;
    size_t nkstats;
    uint64_t sigs_checked, sigs_verified, rrsets_checked;
    uint32_t *sigs;         /* record index of every RRSIG */
    size_t nsigs;
    uint32_t *sig_rrset;    /* per RRSIG: covered rrset, UINT32_MAX none */
    uint16_t *sig_status;   /* per RRSIG: SIG_* bits */
    int16_t *sig_key;       /* per RRSIG: key index that verified, -1 */
    EVP_MD *mds[4];         /* fetched digests (crypto.c) */
    int oom;
    gate_xkey_t *xkeys;     /* keys from history/--previous/--incoming-keys */
    size_t nxkeys;
    hist_entry_t *hist;     /* earlier releases, oldest first */
    size_t nhist;
    hist_entry_t cur;       /* this candidate (hist_current) */
    int have_cur;
    gate_timings_t timings;
    gate_drift_t *drift;    /* --served: NULL when not asked */
    ldns_rr_list *ds_list;  /* --ds as trust.c read it: read once, since a
                               pipe cannot be read twice (history.c) */
};

/* findings.c */
void result_add(struct gate_result *r, gate_class_t cls, gate_verdict_t v,
                int64_t rec, uint16_t type, uint16_t tag, uint8_t alg,
                const char *reason);
void result_add_owner(struct gate_result *r, gate_class_t cls,
                      const uint8_t *owner, uint16_t type, const char *reason);
/* A finding at owner (wire name) with made text (printf format). */
void result_add_owner_msg(struct gate_result *r, gate_class_t cls,
                          const uint8_t *owner, uint16_t type,
                          const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The checks; each adds findings to r. */
int keys_load(struct gate_result *r);                      /* rrsig.c */
void keys_free(struct gate_result *r);
int trust_check(struct gate_result *r, gate_diag_t *diag);  /* trust.c */
int rrsig_check_all(struct gate_result *r);                 /* rrsig.c */
void coverage_check(struct gate_result *r);                 /* coverage.c */
void denial_check(struct gate_result *r);                   /* denial.c */
void nsec_check(struct gate_result *r);                     /* nsec.c */
void nsec3_check(struct gate_result *r);                    /* nsec3.c */
int content_check(struct gate_result *r, gate_diag_t *diag); /* content.c */
void zonemd_check(struct gate_result *r);                   /* zonemd.c */
int transition_check(struct gate_result *r, gate_diag_t *diag);
/* drift.c: the served zone against the last release in r->opts->release_dir
 * (skipped, with r->drift->note, when there is none); frees with drift_free.
 * Returns GATE_ERR_NETWORK when the server cannot be reached at all. */
int drift_check(struct gate_result *r, gate_diag_t *diag);
void drift_free(struct gate_result *r);

/* history.c */
/* Earlier releases (--release DIR's history, --previous) and extra keys. */
int history_load(struct gate_result *r, gate_diag_t *diag);
/* This candidate as a history entry, in r->cur (after the checks). */
int hist_current(struct gate_result *r, gate_diag_t *diag);
/* Reads r->opts->release_dir's history into r->hist (oldest first) and
 * checks that the file the zone's last line names still has the SHA-256
 * it records; GATE_ERR_ZONE with diag when not.  Part of history_load;
 * the drift check alone calls it directly. */
int history_release_check(struct gate_result *r, gate_diag_t *diag);
/* One history.jsonl line for r->cur released at now as file whose content
 * has SHA-256 sha256 (64 hex digits); caller frees. */
char *hist_line(const struct gate_result *r, int64_t now, const char *file,
                const char *sha256);
void hist_entry_clear(hist_entry_t *e);
void history_free(struct gate_result *r);
/* A finding with made text (printf format). */
void result_add_msg(struct gate_result *r, gate_class_t cls, uint16_t type,
                    uint16_t tag, uint8_t alg, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* zone.c: append bytes to the arena (*off: where), a record to recs. */
int zone_arena_put(struct gate_zone *z, const void *p, size_t n,
                   uint64_t *off);
int zone_rec_push(struct gate_zone *z, const gate_rec_t *r);
/* zone.c: RFC 4034 6.2 canonical form of a parsed record (names
 * lower-cased only when one holds an upper-case letter). */
int zone_dname_has_upper(const ldns_rdf *d);
void zone_rr_canonical(ldns_rr *rr);
/* "2026-12-01 01:00:00 UTC" */
void time_str(int64_t t, char *buf, size_t len);
/* RFC 4034 5.1.4: does DS rdata ds match key k of zone z (trust.c). */
int trust_ds_matches_key(const ldns_rdf *origin, uint16_t tag, uint8_t alg,
                         const uint8_t *rdata, size_t rdlen,
                         const uint8_t *ds, size_t dslen, int *supported);
int trust_ds_matches(const struct gate_zone *z, const gate_key_t *k,
                     const uint8_t *ds, size_t dslen, int *supported);
/* As rrs_read_file, records without a TTL get ttl. */
int rrs_read_file_ttl(ldns_rr_list **out, const char *path,
                      const ldns_rdf *origin, uint32_t ttl, gate_diag_t *diag);

/* Read DS/DNSKEY RRs from a file (trust.c, ldns reader). */
int rrs_read_file(ldns_rr_list **out, const char *path, const ldns_rdf *origin,
                  gate_diag_t *diag);

/* Type bitmap helpers (RFC 4034 4.1.2). */
int bitmap_has(const uint8_t *bm, size_t len, uint16_t type);
/* Build the bitmap of types into out (>= 8704 bytes); returns length. */
size_t bitmap_build(const uint16_t *types, size_t n, uint8_t *out);

/* Types an NSEC/NSEC3 bitmap must list at name i (nsec.c); t >= 512. */
size_t denial_types_at(const struct gate_zone *z, size_t i, uint16_t *t);

/* release.c: SHA-256 of the file at path as 64 lower-case hex digits. */
int release_file_sha256(const char *path, char hex[65]);

/* Atomic file write helper (release.c). */
int atomic_write(const char *path, const void *data, size_t len,
                 gate_diag_t *diag);

#endif

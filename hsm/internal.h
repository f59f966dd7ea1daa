/*
 * hsm/internal.h - struct bodies and helpers shared by the files of hsm/.
 *
 * Not part of the contract in hsm/hsm.h; tests under tests/hsm/ may use it
 * to reach the building blocks (URI parser, raw PKCS#11 helpers, encoding).
 */
#ifndef ZONEGATE_HSM_INTERNAL_H
#define ZONEGATE_HSM_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>
#include <p11-kit/pkcs11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "hsm/hsm.h"

/* ---- diagnostics (error.c) ---- */
void diag_set(hsm_diag_t *diag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the first OpenSSL error of the queue (and clears the queue). */
void diag_openssl(hsm_diag_t *diag, const char *what);
/* Name of a PKCS#11 return value ("CKR_PIN_INCORRECT"). */
const char *hsm_ckr_name(CK_RV rv);

/* ---- RFC 7512 URIs (uri.c) ---- */
typedef struct hsm_uri {
    char *module_path; /* module-path query attribute */
    char *token;       /* token= (label) */
    char *serial;      /* serial= */
    char *manufacturer;
    char *model;
    char *pin;         /* from pin-value or pin-source; wiped on free */
    char *pin_source;  /* the file named by pin-source, for messages */
} hsm_uri_t;

/* Parses TEXT; reads the PIN file named by pin-source.  Caller frees with
 * hsm_uri_free.  The diagnostic never contains a PIN. */
int hsm_uri_parse(hsm_uri_t **out, const char *text, hsm_diag_t *diag);
void hsm_uri_free(hsm_uri_t *uri);

/* ---- opened modules and tokens (token.c) ---- */
struct hsm_module {
    char *path;
    void *p11ctx;              /* PKCS11_CTX *, libp11 */
    void *dl;                  /* our own dlopen handle on the module */
    CK_FUNCTION_LIST_PTR f;    /* raw entry points of the same module */
};

struct hsm_token {
    struct hsm_module *mod;
    void *slot;                /* PKCS11_SLOT *, libp11 */
    CK_SLOT_ID slot_id;
    CK_SESSION_HANDLE admin;   /* raw read/write session (keygen, check) */
    char label[33];
    char serial[17];
};

struct hsm_set {
    char **uri;                /* the URIs as given (a signing helper opens
                                * the set again from them); wiped on free */
    size_t nmod;
    struct hsm_module *mods;   /* owned */
    void **mod_slots;          /* PKCS11_SLOT * per module, libp11's */
    unsigned int *mod_nslots;
    size_t n;
    struct hsm_token *tok;     /* owned, numbered 1..n to the user */
};

/* ---- raw PKCS#11 helpers (raw.c) ---- */
/* Up to MAX object handles of class CLS with the given CKA_ID (id may be
 * NULL) and CKA_LABEL (may be NULL).  Returns the number found (may exceed
 * MAX: then only MAX are stored) or a negative hsm_error. */
int raw_find(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
             const uint8_t *id, size_t id_len, const char *label,
             CK_OBJECT_HANDLE *out, size_t max);
/* Reads one variable-length attribute into a malloc'd buffer. */
int raw_attr(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
             CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len);
/* DNSKEY public key field of a public (or RSA private) key object, and
 * the DNSSEC algorithm it fits (hint resolves RSA: 8 or 10). */
int raw_pubkey(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
               uint8_t alg_hint, uint8_t *pub, size_t *pub_len,
               uint8_t *alg);
/* Signs DATA with private key O for algorithm ALG on session S: hashes on
 * the host, C_Sign over the digest (RSA: DigestInfo; ECDSA: bare digest,
 * giving r||s).  sig holds at least 512 bytes. */
CK_RV raw_sign(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
               CK_OBJECT_HANDLE o, uint8_t alg, const uint8_t *data,
               size_t len, uint8_t *sig, size_t *sig_len);
/* Destroys every object with CKA_ID on token T (rollback). */
void raw_destroy_id(struct hsm_token *t, const uint8_t *id, size_t id_len);

/* ---- algorithms and encodings (alg.c) ---- */
bool alg_is_rsa(uint8_t alg);
bool alg_is_ec(uint8_t alg);
bool alg_is_eddsa(uint8_t alg);
/* CKK_RSA, CKK_EC or CKK_EC_EDWARDS for a supported algorithm. */
CK_KEY_TYPE alg_key_type(uint8_t alg);
/* Digest of DATA for ALG into md (64 bytes); returns its length or 0. */
size_t alg_digest(uint8_t alg, const uint8_t *data, size_t len, uint8_t *md);
/* Largest signature for a DNSKEY public key field. */
size_t alg_sig_max(uint8_t alg, const uint8_t *pub, size_t pub_len);
/* RFC 3110 encoding of an RSA public key (big-endian e and n). */
int alg_rsa_pub(const uint8_t *e, size_t e_len, const uint8_t *n,
                size_t n_len, uint8_t *out, size_t *out_len);
/* EVP_PKEY for verification, built from the DNSKEY public key field only. */
int alg_pkey_from_dnskey(uint8_t alg, const uint8_t *pub, size_t pub_len,
                         EVP_PKEY **out);
/* Verifies a DNSSEC wire-form signature (RSA PKCS#1 v1.5, ECDSA r||s)
 * over DATA with a key from alg_pkey_from_dnskey.  0 good, HSM_EMISMATCH
 * bad, other codes on failure to run. */
int alg_verify(EVP_PKEY *pk, uint8_t alg, const uint8_t *data, size_t len,
               const uint8_t *sig, size_t sig_len);
/* ECDSA signature conversions (RFC 6605 section 4): DER SEQUENCE {r, s}
 * to fixed-width r||s of 2*width bytes, and back (DER malloc'd). */
int hsm_ecdsa_der_to_rs(const uint8_t *der, size_t der_len, size_t width,
                        uint8_t *rs);
int hsm_ecdsa_rs_to_der(const uint8_t *rs, size_t rs_len, uint8_t **der,
                        size_t *der_len);
/* DER of the curve OID for alg 13 / 14 / 15 (CKA_EC_PARAMS). */
const uint8_t *alg_ec_params(uint8_t alg, size_t *len);
/* True if CKA_EC_PARAMS value V names ALG's curve (Ed25519: the OID or
 * the PrintableString "edwards25519"). */
bool alg_ec_params_match(uint8_t alg, const uint8_t *v, size_t len);

/* ---- key set helpers (keyset.c) ---- */
/* True if a key of KS (any state) has key tag TAG. */
bool keyset_tag_taken(const hsm_keyset_t *ks, uint16_t tag);
int b64_encode(const uint8_t *in, size_t len, char *out, size_t out_size);
int b64_decode(const char *in, uint8_t *out, size_t out_size, size_t *len);

/* ---- signing helpers (helper.c) ---- */
struct hsm_helper {
    pid_t pid;                 /* 0: none */
    int fd;                    /* the socket to it; -1: none */
    void *buf;                 /* request and reply buffer */
};
/* Starts a helper (ARGV[0] with ARGV, the socket at HSM_HELPER_FD) and
 * sends it SET's URIs and KS's keys; does not wait for it. */
int helper_spawn(struct hsm_helper *h, const char *const *argv,
                 const struct hsm_set *set, const hsm_keyset_t *ks,
                 bool token_keys, hsm_diag_t *diag);
/* Waits until the helper has opened its HSMs: 0, or why not in diag. */
int helper_ready(struct hsm_helper *h, hsm_diag_t *diag);
/* Has the helper sign JOBS[0..n) on HSM HSM (0-based), in order, up to
 * the first failure.  Signature j goes to sigs + j * 512, its length to
 * lens[j].  Returns how many were signed (*rv: CKR_OK if all, else the
 * failing call's), or -1 if the helper is lost (EOF, out of protocol). */
int helper_sign(struct hsm_helper *h, size_t hsm, const hsm_job_t *jobs,
                size_t n, uint8_t *sigs, uint16_t *lens, CK_RV *rv);
/* Closes the socket and reaps the helper (SIGKILL after 5 s).  Returns
 * its exit status (128 + N for signal N; 0 if there was none). */
int helper_stop(struct hsm_helper *h);

/* ---- check (probe.c) ---- */
/* Proof for key K on token T (1-based number I); calls CB per mismatch.
 * Returns 0, HSM_EMISMATCH, or an error. */
int probe_key(struct hsm_set *set, size_t i, const hsm_key_t *k,
              hsm_mismatch_cb cb, void *arg, hsm_diag_t *diag);
/* Reports HSM I's mismatch for key K (found: the tag seen there, or -1)
 * to CB, if any. */
void probe_mismatch(hsm_mismatch_cb cb, void *arg, struct hsm_set *set,
                    size_t i, const hsm_key_t *k, int found,
                    const char *reason);
/* Signs a random challenge with private key O in session S and verifies it
 * against K's DNSKEY.  0 good, HSM_EMISMATCH with *why set, or an error. */
int probe_sign(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
               const hsm_key_t *k, const char **why, hsm_diag_t *diag);

#endif

/*
 * hsm/keygen.c - ONE key pair, placed on every HSM of a set.
 *
 * Two ways (HSM-NOTES.md), both over raw PKCS#11 because libp11 0.4.12
 * can neither generate nor import EC keys nor wrap/unwrap:
 *  - wrap: generate on HSM 1 (extractable), wrap it once with
 *    CKM_AES_KEY_WRAP_PAD (RFC 5649) under an AES-256 key-encryption key
 *    (KEK) present on every token, unwrap it into the others as
 *    non-extractable, copy the public key object, then make the source
 *    non-extractable.  The KEK (label "zonegate-kek") is made by
 *    hsm_kek_init or automatically at the first wrap keygen when no token
 *    has one: 32 random bytes in host memory, created on every token,
 *    wiped.  With SoftHSM the KEK enters the tokens in clear.
 *  - import: generate in host memory with OpenSSL, C_CreateObject on every
 *    token, wipe every host copy with OPENSSL_cleanse.
 * Private keys never reach a disk in clear.  Refuses a label already in
 * the key set or on a token, and a key tag that collides with a key of the
 * zone (a colliding key is thrown away and another made, at most 8 times).
 * On any failure every object made so far is destroyed on every token.
 * Ed25519 is refused: libp11 0.4.12 fails on any token holding one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>

#include "hsm/internal.h"

#define KEK_LABEL "zonegate-kek"
#define TRIES 8

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* Public key material as PKCS#11 wants it for C_CreateObject. */
struct pubparts {
    uint8_t *n, *e;
    size_t n_len, e_len;
    uint8_t point[2 + 1 + 96]; /* DER OCTET STRING of 04||X||Y, or of
                                * the 32-byte Ed25519 key */
    size_t point_len;
};

static void pubparts_free(struct pubparts *p)
{
    free(p->n);
    free(p->e);
    memset(p, 0, sizeof(*p));
}

/* Fills KEY's pubkey and keytag from P; rejects a tag collision. */
static int key_fill(hsm_key_t *key, const struct pubparts *p,
                    const hsm_keyset_t *ks)
{
    uint8_t rd[4 + HSM_PUBKEY_MAX];
    int rc;
    if (alg_is_rsa(key->alg)) {
        rc = alg_rsa_pub(p->e, p->e_len, p->n, p->n_len, key->pubkey,
                         &key->pubkey_len);
        if (rc != 0)
            return rc;
    } else {
        /* skip the OCTET STRING header, and 0x04 (uncompressed) for ECDSA */
        size_t skip = alg_is_eddsa(key->alg) ? 2 : 3;
        key->pubkey_len = p->point_len - skip;
        memcpy(key->pubkey, p->point + skip, key->pubkey_len);
    }
    key->keytag = hsm_keytag(rd, hsm_key_dnskey_rdata(key, rd));
    return keyset_tag_taken(ks, key->keytag) ? HSM_ECOLLISION : 0;
}

static void point_der(struct pubparts *p, const uint8_t *pt, size_t len)
{
    p->point[0] = 0x04; /* OCTET STRING */
    p->point[1] = (uint8_t)len;
    memcpy(p->point + 2, pt, len);
    p->point_len = len + 2;
}

/* Public key object on token T, same CKA_ID and label as KEY. */
static CK_RV create_public(struct hsm_token *t, const hsm_key_t *key,
                           const struct pubparts *p)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = alg_key_type(key->alg);
    size_t plen;
    const uint8_t *params = alg_ec_params(key->alg, &plen);
    CK_ATTRIBUTE a[12];
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE h;

    a[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    a[n++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    a[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)key->id, key->id_len};
    a[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)key->label,
                            strlen(key->label)};
    if (kt == CKK_RSA) {
        a[n++] = (CK_ATTRIBUTE){CKA_MODULUS, p->n, p->n_len};
        a[n++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, p->e, p->e_len};
    } else {
        a[n++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)params, plen};
        a[n++] = (CK_ATTRIBUTE){CKA_EC_POINT, (void *)p->point,
                                p->point_len};
    }
    return t->mod->f->C_CreateObject(t->admin, a, n, &h);
}

/* ---- the key-encryption key ---- */

static int kek_find(struct hsm_token *t, CK_OBJECT_HANDLE *h)
{
    return raw_find(t, t->admin, CKO_SECRET_KEY, NULL, 0, KEK_LABEL, h, 1);
}

static int kek_create_all(struct hsm_set *set, hsm_diag_t *diag)
{
    uint8_t value[32];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_LABEL, (void *)KEK_LABEL, sizeof(KEK_LABEL) - 1},
        {CKA_VALUE, value, sizeof(value)},
    };
    int rc = 0;

    if (RAND_priv_bytes(value, sizeof(value)) != 1) {
        diag_openssl(diag, "RAND_priv_bytes");
        return HSM_ECRYPTO;
    }
    for (size_t i = 0; i < set->n && rc == 0; i++) {
        CK_OBJECT_HANDLE h;
        CK_RV rv = set->tok[i].mod->f->C_CreateObject(
            set->tok[i].admin, a, sizeof(a) / sizeof(a[0]), &h);
        if (rv != CKR_OK) {
            diag_set(diag, "HSM %zu (token %s): cannot create the "
                           "key-encryption key: %s", i + 1,
                     set->tok[i].label, hsm_ckr_name(rv));
            rc = HSM_EDEVICE;
            for (size_t j = 0; j < i; j++)
                if (kek_find(&set->tok[j], &h) == 1)
                    set->tok[j].mod->f->C_DestroyObject(set->tok[j].admin,
                                                        h);
        }
    }
    OPENSSL_cleanse(value, sizeof(value));
    return rc;
}

/* Number of tokens holding exactly one KEK; -1 if one holds several. */
static int kek_count(struct hsm_set *set, hsm_diag_t *diag)
{
    int have = 0;
    for (size_t i = 0; i < set->n; i++) {
        CK_OBJECT_HANDLE h;
        int n = kek_find(&set->tok[i], &h);
        if (n < 0 || n > 1) {
            diag_set(diag, "HSM %zu (token %s): %s", i + 1,
                     set->tok[i].label,
                     n < 0 ? "cannot search objects"
                           : "more than one key-encryption key");
            return -1;
        }
        have += n;
    }
    return have;
}

int hsm_kek_init(struct hsm_set *set, hsm_diag_t *diag)
{
    int have = kek_count(set, diag);
    if (have < 0)
        return HSM_EAMBIGUOUS;
    if (have > 0) {
        diag_set(diag, "a key-encryption key (%s) already exists on %d of "
                       "%zu tokens", KEK_LABEL, have, set->n);
        return HSM_ECOLLISION;
    }
    return kek_create_all(set, diag);
}

static int kek_ensure(struct hsm_set *set, hsm_diag_t *diag)
{
    int have = kek_count(set, diag);
    if (have < 0)
        return HSM_EAMBIGUOUS;
    if (have == 0)
        return kek_create_all(set, diag);
    if ((size_t)have != set->n) {
        diag_set(diag, "the key-encryption key (%s) is on %d of %zu tokens: "
                       "wrap replication needs it on all (use --replicate "
                       "import)", KEK_LABEL, have, set->n);
        return HSM_EUNSUPPORTED;
    }
    return 0;
}

/* ---- wrap: generate on HSM 1, wrap, unwrap elsewhere ---- */

static int gen_on_token(struct hsm_token *t, hsm_key_t *key, unsigned bits,
                        CK_OBJECT_HANDLE *priv, struct pubparts *p,
                        hsm_diag_t *diag)
{
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG mbits = bits;
    static CK_BYTE e65537[] = {0x01, 0x00, 0x01};
    size_t plen;
    const uint8_t *params = alg_ec_params(key->alg, &plen);
    CK_ATTRIBUTE pub[12], prv[12];
    CK_ULONG np = 0, nv = 0;
    CK_OBJECT_HANDLE hpub;
    uint8_t *v = NULL;
    size_t vlen;
    CK_RV rv;
    int rc;

    pub[np++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    pub[np++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof(no)};
    pub[np++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
    pub[np++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &no, sizeof(no)};
    pub[np++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof(no)};
    pub[np++] = (CK_ATTRIBUTE){CKA_ID, key->id, key->id_len};
    pub[np++] = (CK_ATTRIBUTE){CKA_LABEL, key->label, strlen(key->label)};
    if (alg_is_eddsa(key->alg))
        mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
    if (alg_is_rsa(key->alg)) {
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pub[np++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &mbits, sizeof(mbits)};
        pub[np++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e65537,
                                   sizeof(e65537)};
    } else {
        pub[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)params, plen};
    }
    prv[nv++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &yes, sizeof(yes)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof(no)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof(no)};
    prv[nv++] = (CK_ATTRIBUTE){CKA_ID, key->id, key->id_len};
    prv[nv++] = (CK_ATTRIBUTE){CKA_LABEL, key->label, strlen(key->label)};
    rv = t->mod->f->C_GenerateKeyPair(t->admin, &mech, pub, np, prv, nv,
                                      &hpub, priv);
    if (rv != CKR_OK) {
        diag_set(diag, "HSM 1 (token %s): C_GenerateKeyPair: %s", t->label,
                 hsm_ckr_name(rv));
        return HSM_EDEVICE;
    }
    if (alg_is_rsa(key->alg)) {
        if ((rc = raw_attr(t, t->admin, hpub, CKA_MODULUS, &p->n,
                           &p->n_len)) == 0)
            rc = raw_attr(t, t->admin, hpub, CKA_PUBLIC_EXPONENT, &p->e,
                          &p->e_len);
    } else if ((rc = raw_attr(t, t->admin, hpub, CKA_EC_POINT, &v, &vlen))
               == 0) {
        /* DER OCTET STRING around the point (or the bare point); an EC
         * point starts with 04 (uncompressed), an Ed25519 key does not */
        bool ed = alg_is_eddsa(key->alg);
        size_t w = ed ? 32 : 1 + 2 * (key->alg == 13 ? 32 : 48);
        if (vlen == w + 2 && v[0] == 0x04 && v[1] == w)
            point_der(p, v + 2, w);
        else if (vlen == w && (ed || v[0] == 0x04))
            point_der(p, v, w);
        else
            rc = HSM_EALG;
    }
    free(v);
    if (rc != 0)
        diag_set(diag, "HSM 1 (token %s): cannot read the new public key",
                 t->label);
    return rc;
}

static int unwrap_into(struct hsm_set *set, size_t i, const hsm_key_t *key,
                       const uint8_t *blob, size_t blob_len,
                       const struct pubparts *p, hsm_diag_t *diag)
{
    struct hsm_token *t = &set->tok[i];
    CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = alg_key_type(key->alg);
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_ID, (void *)key->id, key->id_len},
        {CKA_LABEL, (void *)key->label, strlen(key->label)},
    };
    CK_OBJECT_HANDLE kek, h;
    CK_RV rv;

    if (kek_find(t, &kek) != 1) {
        diag_set(diag, "HSM %zu (token %s): no key-encryption key", i + 1,
                 t->label);
        return HSM_ENOKEY;
    }
    rv = t->mod->f->C_UnwrapKey(t->admin, &mech, kek, (uint8_t *)blob,
                                blob_len, a, sizeof(a) / sizeof(a[0]), &h);
    if (rv != CKR_OK) {
        diag_set(diag, "HSM %zu (token %s): cannot place the key: "
                       "C_UnwrapKey: %s (does it hold the same "
                       "key-encryption key as HSM 1?)", i + 1, t->label,
                 hsm_ckr_name(rv));
        return HSM_EDEVICE;
    }
    rv = create_public(t, key, p);
    if (rv != CKR_OK) {
        diag_set(diag, "HSM %zu (token %s): cannot create the public key "
                       "object: %s", i + 1, t->label, hsm_ckr_name(rv));
        return HSM_EDEVICE;
    }
    return 0;
}

static int replicate_wrap(struct hsm_set *set, hsm_key_t *key,
                          CK_OBJECT_HANDLE priv, const struct pubparts *p,
                          hsm_diag_t *diag)
{
    struct hsm_token *t1 = &set->tok[0];
    CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE kek;
    CK_ATTRIBUTE ext = {CKA_EXTRACTABLE, &no, sizeof(no)};
    uint8_t blob[8192];
    CK_ULONG blob_len = sizeof(blob);
    CK_RV rv;
    int rc = 0;

    if (set->n > 1) {
        if (kek_find(t1, &kek) != 1) {
            diag_set(diag, "HSM 1 (token %s): no key-encryption key",
                     t1->label);
            return HSM_ENOKEY;
        }
        rv = t1->mod->f->C_WrapKey(t1->admin, &mech, kek, priv, blob,
                                   &blob_len);
        if (rv != CKR_OK) {
            /* SoftHSM 2.6.1 wraps RSA and ECDSA keys but not EdDSA ones */
            diag_set(diag, "HSM 1 (token %s): C_WrapKey: %s%s", t1->label,
                     hsm_ckr_name(rv),
                     rv == CKR_KEY_NOT_WRAPPABLE
                         ? " (this HSM cannot wrap such a key: use "
                           "--replicate import)"
                         : "");
            return HSM_EDEVICE;
        }
        for (size_t i = 1; i < set->n && rc == 0; i++)
            rc = unwrap_into(set, i, key, blob, blob_len, p, diag);
        OPENSSL_cleanse(blob, sizeof(blob));
        if (rc != 0)
            return rc;
    }
    /* One way only (PKCS#11 2.40 section 4.9): no copy leaves any more. */
    rv = t1->mod->f->C_SetAttributeValue(t1->admin, priv, &ext, 1);
    if (rv != CKR_OK) {
        diag_set(diag, "HSM 1 (token %s): cannot make the key "
                       "non-extractable: %s", t1->label, hsm_ckr_name(rv));
        return HSM_EDEVICE;
    }
    return 0;
}

static int keygen_wrap(struct hsm_set *set, const hsm_keyset_t *ks,
                       hsm_key_t *key, unsigned bits, hsm_diag_t *diag)
{
    struct pubparts p;
    CK_OBJECT_HANDLE priv;
    int rc = kek_ensure(set, diag);
    if (rc != 0)
        return rc;
    for (int tries = 0;; tries++) {
        memset(&p, 0, sizeof(p));
        rc = gen_on_token(&set->tok[0], key, bits, &priv, &p, diag);
        if (rc == 0)
            rc = key_fill(key, &p, ks);
        if (rc != HSM_ECOLLISION || tries == TRIES - 1)
            break;
        raw_destroy_id(&set->tok[0], key->id, key->id_len);
        pubparts_free(&p);
    }
    if (rc == HSM_ECOLLISION)
        diag_set(diag, "key tag %u collides with a key of the zone",
                 key->keytag);
    if (rc == 0)
        rc = replicate_wrap(set, key, priv, &p, diag);
    pubparts_free(&p);
    return rc;
}

/* ---- import: generate in host memory ---- */

struct privparts {
    uint8_t *v[8];
    size_t len[8];
    size_t n;
};

static void privparts_wipe(struct privparts *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] != NULL) {
            OPENSSL_cleanse(s->v[i], s->len[i]);
            free(s->v[i]);
        }
    }
    memset(s, 0, sizeof(*s));
}

static int bn_param(EVP_PKEY *pk, const char *name, size_t pad, uint8_t **v,
                    size_t *len)
{
    BIGNUM *bn = NULL;
    int rc = HSM_ECRYPTO;
    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
        return HSM_ECRYPTO;
    *len = pad != 0 ? pad : (size_t)BN_num_bytes(bn);
    *v = malloc(*len > 0 ? *len : 1);
    if (*v != NULL && BN_bn2binpad(bn, *v, (int)*len) >= 0)
        rc = 0;
    BN_clear_free(bn);
    return rc;
}

static int host_keygen(hsm_key_t *key, unsigned bits, struct privparts *s,
                       struct pubparts *p, hsm_diag_t *diag)
{
    static const char *const rsa[] = {
        OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    EVP_PKEY *pk;
    uint8_t pt[1 + 96];
    size_t ptlen = 0;
    int rc = 0;

    ERR_clear_error();
    if (alg_is_rsa(key->alg))
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    else if (alg_is_eddsa(key->alg))
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                               key->alg == 13 ? "P-256" : "P-384");
    if (pk == NULL) {
        diag_openssl(diag, "key generation in host memory");
        return HSM_ECRYPTO;
    }
    if (alg_is_rsa(key->alg)) {
        for (s->n = 0; s->n < 8 && rc == 0; s->n++)
            rc = bn_param(pk, rsa[s->n], 0, &s->v[s->n], &s->len[s->n]);
        if (rc == 0) {
            p->n = malloc(s->len[0]);
            p->e = malloc(s->len[1]);
            if (p->n == NULL || p->e == NULL) {
                rc = -ENOMEM;
            } else {
                memcpy(p->n, s->v[0], p->n_len = s->len[0]);
                memcpy(p->e, s->v[1], p->e_len = s->len[1]);
            }
        }
    } else if (alg_is_eddsa(key->alg)) {
        /* PKCS#11 3.0 2.3.6: CKA_VALUE is the 32-byte private key */
        size_t plen = 32;
        s->n = 1;
        s->len[0] = 32;
        ptlen = 32;
        if ((s->v[0] = malloc(32)) == NULL)
            rc = -ENOMEM;
        else if (EVP_PKEY_get_raw_private_key(pk, s->v[0], &plen) != 1 ||
                 plen != 32 ||
                 EVP_PKEY_get_raw_public_key(pk, pt, &ptlen) != 1 ||
                 ptlen != 32)
            rc = HSM_ECRYPTO;
        if (rc == 0)
            point_der(p, pt, 32);
    } else {
        s->n = 1;
        rc = bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, key->alg == 13 ? 32 : 48,
                      &s->v[0], &s->len[0]);
        if (rc == 0 && (EVP_PKEY_get_octet_string_param(
                            pk, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
                            &ptlen) != 1 ||
                        ptlen != 1 + 2 * (key->alg == 13 ? 32u : 48u) ||
                        pt[0] != 0x04))
            rc = HSM_ECRYPTO;
        if (rc == 0)
            point_der(p, pt, ptlen);
    }
    EVP_PKEY_free(pk); /* OpenSSL clears private key material on free */
    if (rc != 0)
        diag_set(diag, "cannot take the host key apart");
    return rc;
}

static CK_RV create_private(struct hsm_token *t, const hsm_key_t *key,
                            const struct privparts *s)
{
    static const CK_ATTRIBUTE_TYPE rsa[] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT,
    };
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = alg_key_type(key->alg);
    size_t plen;
    const uint8_t *params = alg_ec_params(key->alg, &plen);
    CK_ATTRIBUTE a[24];
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE h;

    a[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    a[n++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    a[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
    a[n++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof(no)};
    a[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)key->id, key->id_len};
    a[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)key->label,
                            strlen(key->label)};
    if (kt == CKK_RSA) {
        for (size_t i = 0; i < 8; i++)
            a[n++] = (CK_ATTRIBUTE){rsa[i], s->v[i], s->len[i]};
    } else {
        a[n++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)params, plen};
        a[n++] = (CK_ATTRIBUTE){CKA_VALUE, s->v[0], s->len[0]};
    }
    return t->mod->f->C_CreateObject(t->admin, a, n, &h);
}

static int keygen_import(struct hsm_set *set, const hsm_keyset_t *ks,
                         hsm_key_t *key, unsigned bits, hsm_diag_t *diag)
{
    struct privparts s;
    struct pubparts p;
    int rc;

    for (int tries = 0;; tries++) {
        memset(&s, 0, sizeof(s));
        memset(&p, 0, sizeof(p));
        rc = host_keygen(key, bits, &s, &p, diag);
        if (rc == 0)
            rc = key_fill(key, &p, ks);
        if (rc != HSM_ECOLLISION || tries == TRIES - 1)
            break;
        privparts_wipe(&s);
        pubparts_free(&p);
    }
    if (rc == HSM_ECOLLISION)
        diag_set(diag, "key tag %u collides with a key of the zone",
                 key->keytag);
    for (size_t i = 0; i < set->n && rc == 0; i++) {
        CK_RV rv = create_private(&set->tok[i], key, &s);
        if (rv == CKR_OK)
            rv = create_public(&set->tok[i], key, &p);
        if (rv != CKR_OK) {
            diag_set(diag, "HSM %zu (token %s): cannot import the key: %s",
                     i + 1, set->tok[i].label, hsm_ckr_name(rv));
            rc = HSM_EDEVICE;
        }
    }
    privparts_wipe(&s);
    pubparts_free(&p);
    return rc;
}

/* ---- entry ---- */

static int refuse_label(struct hsm_set *set, const hsm_keyset_t *ks,
                        const char *label, hsm_diag_t *diag)
{
    static const CK_OBJECT_CLASS cls[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
                                          CKO_SECRET_KEY};
    CK_OBJECT_HANDLE h;
    if (ks != NULL && hsm_keyset_find(ks, label) >= 0) {
        diag_set(diag, "label %s is already in the key set", label);
        return HSM_ECOLLISION;
    }
    for (size_t i = 0; i < set->n; i++)
        for (size_t c = 0; c < 3; c++) {
            int n = raw_find(&set->tok[i], set->tok[i].admin, cls[c], NULL,
                             0, label, &h, 1);
            if (n != 0) {
                diag_set(diag, "HSM %zu (token %s): %s", i + 1,
                         set->tok[i].label,
                         n < 0 ? "cannot search objects"
                               : "already holds an object with this label");
                return n < 0 ? HSM_EDEVICE : HSM_ECOLLISION;
            }
        }
    return 0;
}

static int check_params(hsm_key_t *key, unsigned *bits, hsm_diag_t *diag)
{
    if (key->alg == 16) {
        diag_set(diag, "algorithm 16 (ED448) is unsupported");
        return HSM_EUNSUPPORTED;
    }
    if (alg_is_eddsa(key->alg)) {
        if (*bits != 0 && *bits != 256) {
            diag_set(diag, "algorithm 15 has 256-bit keys only");
            return HSM_EALG;
        }
        return 0;
    }
    if (alg_is_rsa(key->alg)) {
        if (*bits == 0)
            *bits = 2048;
        if (*bits < 1024 || *bits > 4096 || *bits % 8 != 0) {
            diag_set(diag, "RSA key size %u outside 1024-4096 (multiple "
                           "of 8)", *bits);
            return HSM_EALG;
        }
        return 0;
    }
    if (alg_is_ec(key->alg)) {
        unsigned want = key->alg == 13 ? 256 : 384;
        if (*bits != 0 && *bits != want) {
            diag_set(diag, "algorithm %u has %u-bit keys only", key->alg,
                     want);
            return HSM_EALG;
        }
        return 0;
    }
    diag_set(diag, "unsupported algorithm %u", key->alg);
    return HSM_EALG;
}

int hsm_key_generate(struct hsm_set *set, const hsm_keyset_t *ks,
                     hsm_key_t *key, unsigned bits, hsm_replicate_t how,
                     hsm_diag_t *diag)
{
    hsm_key_t k = *key;
    int rc = check_params(&k, &bits, diag);

    if (rc != 0)
        return rc;
    if (k.label[0] == '\0' || strlen(k.label) >= HSM_LABEL_MAX ||
        strcspn(k.label, " \t\r\n#") != strlen(k.label)) {
        diag_set(diag, "bad label (1-63 printable characters, no blanks)");
        return HSM_EKEYSET;
    }
    if ((rc = refuse_label(set, ks, k.label, diag)) != 0)
        return rc;
    k.id_len = 16;
    if (RAND_bytes(k.id, (int)k.id_len) != 1) {
        diag_openssl(diag, "RAND_bytes");
        return HSM_ECRYPTO;
    }
    rc = how == HSM_REPLICATE_WRAP ? keygen_wrap(set, ks, &k, bits, diag)
                                   : keygen_import(set, ks, &k, bits, diag);
    if (rc != 0) {
        for (size_t i = 0; i < set->n; i++)
            raw_destroy_id(&set->tok[i], k.id, k.id_len);
        return rc;
    }
    k.created = (int64_t)time(NULL);
    k.state_since = k.created;
    *key = k;
    return 0;
}

int hsm_key_destroy(struct hsm_set *set, const hsm_key_t *key,
                    hsm_diag_t *diag)
{
    for (size_t i = 0; i < set->n; i++)
        raw_destroy_id(&set->tok[i], key->id, key->id_len);
    return 0;
}

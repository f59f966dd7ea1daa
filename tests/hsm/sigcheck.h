/*
 * tests/hsm/sigcheck.h - the tests' own signature check: a verification
 * key built from the key set's DNSKEY field and EVP_DigestVerify over the
 * data (not hsm/'s verification code).  Include once per test program.
 */
#ifndef ZONEGATE_TESTS_HSM_SIGCHECK_H
#define ZONEGATE_TESTS_HSM_SIGCHECK_H

#include <stdbool.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

#include "hsm/hsm.h"

static const hsm_keyset_t *ks;

/* Verification key from the DNSKEY public key field, written here. */
static EVP_PKEY *dnskey_pkey(const hsm_key_t *k)
{
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *pk = NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p;
    BIGNUM *n = NULL, *e = NULL;
    uint8_t pt[97];
    if (k->alg == 13 || k->alg == 14) {
        pt[0] = 4;
        memcpy(pt + 1, k->pubkey, k->pubkey_len);
        OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
                                        k->alg == 13 ? "P-256" : "P-384", 0);
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                         k->pubkey_len + 1);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        size_t el = k->pubkey[0], off = 1;
        if (el == 0) {
            el = (size_t)k->pubkey[1] << 8 | k->pubkey[2];
            off = 3;
        }
        e = BN_bin2bn(k->pubkey + off, (int)el, NULL);
        n = BN_bin2bn(k->pubkey + off + el, (int)(k->pubkey_len - off - el),
                      NULL);
        OSSL_PARAM_BLD_push_BN(b, "n", n);
        OSSL_PARAM_BLD_push_BN(b, "e", e);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    }
    p = OSSL_PARAM_BLD_to_param(b);
    if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, p) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_free(n);
    BN_free(e);
    return pk;
}

static EVP_PKEY *vkeys[16];

static bool verifies(const hsm_job_t *j)
{
    const hsm_key_t *k = &ks->keys[j->key];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const EVP_MD *h = k->alg == 10 ? EVP_sha512()
                      : k->alg == 14 ? EVP_sha384() : EVP_sha256();
    uint8_t der[128];
    const uint8_t *sig = j->sig;
    size_t sig_len = j->sig_len;
    bool good;
    if (k->alg == 13 || k->alg == 14) {
        ECDSA_SIG *s = ECDSA_SIG_new();
        unsigned char *p = der;
        size_t half = j->sig_len / 2;
        ECDSA_SIG_set0(s, BN_bin2bn(j->sig, (int)half, NULL),
                       BN_bin2bn(j->sig + half, (int)half, NULL));
        sig_len = (size_t)i2d_ECDSA_SIG(s, &p);
        sig = der;
        ECDSA_SIG_free(s);
        if (j->sig_len != (k->alg == 13 ? 64 : 96))
            return false;
    }
    good = EVP_DigestVerifyInit(md, NULL, h, NULL, vkeys[j->key]) == 1 &&
           EVP_DigestVerify(md, sig, sig_len, j->data, j->len) == 1;
    EVP_MD_CTX_free(md);
    return good;
}

#endif

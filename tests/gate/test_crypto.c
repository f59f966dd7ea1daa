/* tests/gate/test_crypto.c - EVP keys built from DNSKEY rdata verify
 * signatures in DNSSEC wire form (RFC 6605 r||s, RFC 3110 RSA), and a
 * changed byte fails.  Keys are made here with OpenSSL. */
#include "gate/internal.h"
#include "tests/gate/tap.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <string.h>

static int ec_case(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    uint8_t pub[65], rd[4 + 64], sig[64], der[80], *dp = der;
    size_t plen = 0, dlen = sizeof(der);
    const uint8_t msg[] = "rrsig rdata and canonical rrset";
    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                    sizeof(pub), &plen);
    rd[0] = 1; rd[1] = 0; rd[2] = 3; rd[3] = 13;
    memcpy(rd + 4, pub + 1, 64);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(ctx, der, &dlen, msg, sizeof(msg));
    EVP_MD_CTX_free(ctx);
    const uint8_t *cp = dp;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &cp, (long)dlen);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    EVP_PKEY *v = NULL;
    tap_ok(crypto_pkey_from_dnskey(&v, rd, sizeof(rd)) == 0, "P-256 DNSKEY to EVP");
    tap_ok(v && crypto_verify(v, 13, msg, sizeof(msg), sig, 64) == 1,
           "ECDSA r||s signature verifies");
    sig[10] ^= 1;
    tap_ok(v && crypto_verify(v, 13, msg, sizeof(msg), sig, 64) == 0,
           "changed signature does not verify");
    tap_ok(v && crypto_verify(v, 13, msg, sizeof(msg), sig, 63) == 0,
           "short signature does not verify");
    EVP_PKEY_free(v);
    EVP_PKEY_free(k);
    return 0;
}

static int rsa_case(void)
{
    EVP_PKEY *k = EVP_RSA_gen(1024);
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
    uint8_t rd[4 + 1 + 3 + 128], sig[128];
    int el = BN_num_bytes(e);
    rd[0] = 1; rd[1] = 0; rd[2] = 3; rd[3] = 8;
    rd[4] = (uint8_t)el;
    BN_bn2bin(e, rd + 5);
    BN_bn2binpad(n, rd + 5 + el, 128);
    size_t rdlen = 5 + (size_t)el + 128, slen = sizeof(sig);
    const uint8_t msg[] = "another rrset";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(ctx, sig, &slen, msg, sizeof(msg));
    EVP_MD_CTX_free(ctx);
    EVP_PKEY *v = NULL;
    tap_ok(crypto_pkey_from_dnskey(&v, rd, rdlen) == 0, "RSA DNSKEY to EVP");
    tap_ok(v && crypto_verify(v, 8, msg, sizeof(msg), sig, slen) == 1,
           "RSASHA256 signature verifies");
    tap_ok(v && crypto_verify(v, 8, msg, sizeof(msg) - 1, sig, slen) == 0,
           "other data does not verify");
    EVP_PKEY_free(v);
    EVP_PKEY_free(k);
    BN_free(n);
    BN_free(e);
    EVP_PKEY *bad = NULL;
    tap_ok(crypto_pkey_from_dnskey(&bad, rd, 6) < 0 && !bad, "truncated RSA key refused");
    uint8_t unk[8] = {1, 0, 3, 200, 1, 2, 3, 4};
    tap_ok(crypto_pkey_from_dnskey(&bad, unk, 8) < 0 && !crypto_alg_supported(200),
           "unknown algorithm refused");
    return 0;
}

int main(void)
{
    ec_case();
    rsa_case();
    return tap_done();
}

/*
 * hsm/alg.c - DNSSEC algorithms, key tags, DNSKEY public key encodings and
 * signature checks with plain OpenSSL.
 *
 * RFC 4034 section 2 and Appendix B (DNSKEY RDATA, key tag), RFC 3110 and
 * RFC 5702 (RSA/SHA-256 and SHA-512 keys), RFC 6605 (ECDSA P-256/P-384,
 * fixed-width r||s), RFC 8080 (Ed25519: the 32-byte public key; the
 * signature is over the whole message, no host digest).  Verification
 * keys are built from DNSKEY fields only, never from a token.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "hsm/internal.h"

static const struct {
    uint8_t alg;
    const char *name;
} algs[] = {
    {8, "RSASHA256"}, {10, "RSASHA512"}, {13, "ECDSAP256SHA256"},
    {14, "ECDSAP384SHA384"}, {15, "ED25519"},
};

int hsm_alg_parse(const char *text)
{
    char *end;
    long v;
    if (text == NULL || *text == '\0')
        return HSM_EALG;
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcasecmp(text, algs[i].name) == 0)
            return algs[i].alg;
    v = strtol(text, &end, 10);
    if (*end != '\0' || v < 0 || v > 255)
        return HSM_EALG;
    return hsm_alg_name((uint8_t)v) != NULL ? (int)v : HSM_EALG;
}

const char *hsm_alg_name(uint8_t alg)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (algs[i].alg == alg)
            return algs[i].name;
    return NULL;
}

bool alg_is_rsa(uint8_t alg) { return alg == 8 || alg == 10; }
bool alg_is_ec(uint8_t alg) { return alg == 13 || alg == 14; }
bool alg_is_eddsa(uint8_t alg) { return alg == 15; }

CK_KEY_TYPE alg_key_type(uint8_t alg)
{
    return alg_is_rsa(alg) ? CKK_RSA : alg_is_eddsa(alg) ? CKK_EC_EDWARDS
                                                         : CKK_EC;
}

/* RFC 4034 Appendix B (algorithm 1 is not supported). */
uint16_t hsm_keytag(const uint8_t *rdata, size_t len)
{
    uint32_t ac = 0;
    for (size_t i = 0; i < len; i++)
        ac += (i & 1) ? rdata[i] : (uint32_t)rdata[i] << 8;
    ac += (ac >> 16) & 0xffff;
    return (uint16_t)(ac & 0xffff);
}

size_t hsm_key_dnskey_rdata(const hsm_key_t *k, uint8_t *buf)
{
    buf[0] = (uint8_t)(k->flags >> 8);
    buf[1] = (uint8_t)k->flags;
    buf[2] = 3; /* RFC 4034 2.1.2 */
    buf[3] = k->alg;
    memcpy(buf + 4, k->pubkey, k->pubkey_len);
    return 4 + k->pubkey_len;
}

size_t alg_digest(uint8_t alg, const uint8_t *data, size_t len, uint8_t *md)
{
    switch (alg) {
    case 8:
    case 13:
        SHA256(data, len, md);
        return 32;
    case 10:
        SHA512(data, len, md);
        return 64;
    case 14:
        SHA384(data, len, md);
        return 48;
    default:
        return 0;
    }
}

size_t alg_sig_max(uint8_t alg, const uint8_t *pub, size_t pub_len)
{
    size_t el, off = 1;
    if (alg == 13 || alg == 15)
        return 64;
    if (alg == 14)
        return 96;
    if (!alg_is_rsa(alg) || pub_len < 3)
        return 0;
    /* RSA: as long as the modulus (RFC 3110: exponent length first). */
    el = pub[0];
    if (el == 0) {
        el = (size_t)pub[1] << 8 | pub[2];
        off = 3;
    }
    return off + el < pub_len ? pub_len - off - el : 0;
}

int alg_rsa_pub(const uint8_t *e, size_t e_len, const uint8_t *n,
                size_t n_len, uint8_t *out, size_t *out_len)
{
    size_t o = 0;
    while (e_len > 0 && e[0] == 0) {
        e++;
        e_len--;
    }
    while (n_len > 0 && n[0] == 0) {
        n++;
        n_len--;
    }
    if (e_len == 0 || n_len == 0 || e_len > 0xffff)
        return HSM_EALG;
    if ((e_len > 255 ? 3 : 1) + e_len + n_len > HSM_PUBKEY_MAX)
        return HSM_EALG;
    /* RFC 3110 section 2: one length byte, or zero and two bytes. */
    if (e_len > 255) {
        out[o++] = 0;
        out[o++] = (uint8_t)(e_len >> 8);
    }
    out[o++] = (uint8_t)e_len;
    memcpy(out + o, e, e_len);
    o += e_len;
    memcpy(out + o, n, n_len);
    *out_len = o + n_len;
    return 0;
}

const uint8_t *alg_ec_params(uint8_t alg, size_t *len)
{
    static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                   0x3d, 0x03, 0x01, 0x07};
    static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    static const uint8_t ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    if (alg == 13) {
        *len = sizeof(p256);
        return p256;
    }
    if (alg == 14) {
        *len = sizeof(p384);
        return p384;
    }
    if (alg == 15) {
        *len = sizeof(ed25519);
        return ed25519;
    }
    return NULL;
}

bool alg_ec_params_match(uint8_t alg, const uint8_t *v, size_t len)
{
    /* PKCS#11 3.0 2.3.10: Edwards curves by OID or by PrintableString. */
    static const uint8_t ed25519_name[] = {0x13, 0x0c, 'e', 'd', 'w', 'a',
                                           'r', 'd', 's', '2', '5', '5',
                                           '1', '9'};
    size_t plen;
    const uint8_t *p = alg_ec_params(alg, &plen);
    if (p != NULL && len == plen && memcmp(v, p, len) == 0)
        return true;
    return alg == 15 && len == sizeof(ed25519_name) &&
           memcmp(v, ed25519_name, len) == 0;
}

static int rsa_from_dnskey(const uint8_t *pub, size_t len, EVP_PKEY **out)
{
    size_t el, off = 1;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    int rc = HSM_ECRYPTO;

    if (len < 3)
        return HSM_EALG;
    el = pub[0];
    if (el == 0) {
        el = (size_t)pub[1] << 8 | pub[2];
        off = 3;
    }
    if (el == 0 || off + el >= len)
        return HSM_EALG;
    e = BN_bin2bn(pub + off, (int)el, NULL);
    n = BN_bin2bn(pub + off + el, (int)(len - off - el), NULL);
    bld = OSSL_PARAM_BLD_new();
    if (e == NULL || n == NULL || bld == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    *out = pk;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return rc;
}

static int ec_from_dnskey(uint8_t alg, const uint8_t *pub, size_t len,
                          EVP_PKEY **out)
{
    uint8_t point[1 + 96];
    const char *group = alg == 13 ? "prime256v1" : "secp384r1";
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    int rc = HSM_ECRYPTO;

    if (len != (alg == 13 ? 64u : 96u))
        return HSM_EALG;
    point[0] = 0x04; /* RFC 6605 section 4: Q.x || Q.y, uncompressed */
    memcpy(point + 1, pub, len);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  point, len + 1);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    *out = pk;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int alg_pkey_from_dnskey(uint8_t alg, const uint8_t *pub, size_t pub_len,
                         EVP_PKEY **out)
{
    ERR_clear_error();
    if (alg_is_rsa(alg))
        return rsa_from_dnskey(pub, pub_len, out);
    if (alg_is_ec(alg))
        return ec_from_dnskey(alg, pub, pub_len, out);
    if (alg_is_eddsa(alg)) {
        if (pub_len != 32)
            return HSM_EALG;
        *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
        return *out != NULL ? 0 : HSM_ECRYPTO;
    }
    return HSM_EALG;
}

/* RFC 8080 section 4: Ed25519 signs the RRSIG data itself (PureEdDSA). */
static int eddsa_verify(EVP_PKEY *pk, const uint8_t *data, size_t len,
                        const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *md;
    int rc = HSM_ECRYPTO, v;
    if (sig_len != 64)
        return HSM_EMISMATCH;
    md = EVP_MD_CTX_new();
    if (md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1) {
        v = EVP_DigestVerify(md, sig, sig_len, data, len);
        rc = v == 1 ? 0 : HSM_EMISMATCH;
    }
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    return rc;
}

int alg_verify(EVP_PKEY *pk, uint8_t alg, const uint8_t *data, size_t len,
               const uint8_t *sig, size_t sig_len)
{
    uint8_t md[64];
    size_t mdlen = alg_digest(alg, data, len, md);
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_PKEY_CTX *ctx = NULL;
    int rc = HSM_ECRYPTO, v;

    if (alg_is_eddsa(alg))
        return eddsa_verify(pk, data, len, sig, sig_len);
    if (mdlen == 0)
        return HSM_EALG;
    if (alg_is_ec(alg)) {
        if (sig_len != (alg == 13 ? 64u : 96u))
            return HSM_EMISMATCH;
        if (hsm_ecdsa_rs_to_der(sig, sig_len, &der, &der_len) != 0)
            return HSM_ECRYPTO;
        sig = der;
        sig_len = der_len;
    }
    ctx = EVP_PKEY_CTX_new(pk, NULL);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0)
        goto out;
    if (alg_is_rsa(alg) &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_signature_md(ctx, alg == 8 ? EVP_sha256()
                                                     : EVP_sha512()) <= 0))
        goto out;
    v = EVP_PKEY_verify(ctx, sig, sig_len, md, mdlen);
    rc = v == 1 ? 0 : HSM_EMISMATCH;
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    return rc;
}

int hsm_ecdsa_der_to_rs(const uint8_t *der, size_t der_len, size_t width,
                        uint8_t *rs)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r, *s;
    int rc = HSM_ECRYPTO;
    if (sig == NULL)
        return HSM_ECRYPTO;
    if (p != der + der_len)
        goto out; /* trailing bytes */
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_num_bytes(r) > (int)width || BN_num_bytes(s) > (int)width)
        goto out;
    if (BN_bn2binpad(r, rs, (int)width) < 0 ||
        BN_bn2binpad(s, rs + width, (int)width) < 0)
        goto out;
    rc = 0;
out:
    ECDSA_SIG_free(sig);
    return rc;
}

int hsm_ecdsa_rs_to_der(const uint8_t *rs, size_t rs_len, uint8_t **der,
                        size_t *der_len)
{
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *buf = NULL;
    int len;
    if (rs_len == 0 || rs_len % 2 != 0)
        return HSM_ECRYPTO;
    sig = ECDSA_SIG_new();
    r = BN_bin2bn(rs, (int)(rs_len / 2), NULL);
    s = BN_bin2bn(rs + rs_len / 2, (int)(rs_len / 2), NULL);
    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return HSM_ECRYPTO;
    }
    len = i2d_ECDSA_SIG(sig, &buf);
    ECDSA_SIG_free(sig);
    if (len <= 0)
        return HSM_ECRYPTO;
    *der = buf;
    *der_len = (size_t)len;
    return 0;
}

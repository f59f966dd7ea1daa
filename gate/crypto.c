/*
 * gate/crypto.c - OpenSSL EVP keys from DNSKEY rdata and verification of
 * one signature.  RSA (RFC 3110, 5702), ECDSA (RFC 6605: r||s turned into
 * DER here), Ed25519/Ed448 (RFC 8080).  Built directly on EVP, never on
 * the signer's code.  Does not build RRSIG signing input (rrsig.c).
 */
#include "gate/internal.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <string.h>

int crypto_alg_supported(uint8_t alg)
{
    switch (alg) {
    case 5: case 7: case 8: case 10: case 13: case 14: case 15: case 16:
        return 1;
    default:
        return 0;
    }
}

static const EVP_MD *alg_md(uint8_t alg)
{
    switch (alg) {
    case 5: case 7: return EVP_sha1();
    case 8: case 13: return EVP_sha256();
    case 14: return EVP_sha384();
    case 10: return EVP_sha512();
    default: return NULL;
    }
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
            pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* RFC 3110 2: exponent length (1 or 3 octets), exponent, modulus. */
static EVP_PKEY *rsa_key(const uint8_t *k, size_t len)
{
    size_t elen, off;
    if (len < 3)
        return NULL;
    if (k[0]) {
        elen = k[0];
        off = 1;
    } else {
        elen = (size_t)k[1] << 8 | k[2];
        off = 3;
    }
    if (elen == 0 || off + elen >= len)
        return NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *e = BN_bin2bn(k + off, (int)elen, NULL);
    BIGNUM *n = BN_bin2bn(k + off + elen, (int)(len - off - elen), NULL);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    if (e && n && b && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e) &&
        (p = OSSL_PARAM_BLD_to_param(b)))
        pkey = pkey_fromdata("RSA", p);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_free(e);
    BN_free(n);
    return pkey;
}

/* RFC 6605 4: the key is x||y; OpenSSL wants the point 0x04||x||y. */
static EVP_PKEY *ec_key(const char *group, size_t want, const uint8_t *k,
                        size_t len)
{
    uint8_t pt[1 + 96];
    if (len != want)
        return NULL;
    pt[0] = 4;
    memcpy(pt + 1, k, len);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt,
                                          len + 1),
        OSSL_PARAM_construct_end(),
    };
    return pkey_fromdata("EC", p);
}

int crypto_pkey_from_dnskey(EVP_PKEY **out, const uint8_t *rd, size_t len)
{
    if (len < 4)
        return GATE_ERR_CRYPTO;
    const uint8_t *k = rd + 4;
    size_t klen = len - 4;
    EVP_PKEY *pkey = NULL;
    ERR_clear_error();
    switch (rd[3]) {
    case 5: case 7: case 8: case 10:
        pkey = rsa_key(k, klen);
        break;
    case 13:
        pkey = ec_key("prime256v1", 64, k, klen);
        break;
    case 14:
        pkey = ec_key("secp384r1", 96, k, klen);
        break;
    case 15:
        if (klen == 32)
            pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k, 32);
        break;
    case 16:
        if (klen == 57)
            pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED448, NULL, k, 57);
        break;
    default:
        return GATE_ERR_CRYPTO;
    }
    ERR_clear_error();
    if (!pkey)
        return GATE_ERR_CRYPTO;
    *out = pkey;
    return 0;
}

/* One DER INTEGER (X.690 8.3) of the unsigned big-endian n bytes at v:
 * leading zero octets dropped, a zero octet added when the top bit is set. */
static size_t der_uint(const uint8_t *v, size_t n, uint8_t *out)
{
    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    size_t pad = v[0] & 0x80 ? 1 : 0, k = 0;
    out[k++] = 0x02;
    out[k++] = (uint8_t)(n + pad);
    if (pad)
        out[k++] = 0;
    memcpy(out + k, v, n);
    return k + n;
}

/* RFC 6605 4: r||s, each half the signature, into the DER SEQUENCE EVP
 * wants (RFC 3279 2.2.3), in out (at least 2 * (slen / 2 + 3) + 2 bytes;
 * slen at most 96, so every length fits one octet). */
static size_t ecdsa_der(const uint8_t *sig, size_t slen, uint8_t *out)
{
    size_t k = 2;
    k += der_uint(sig, slen / 2, out + k);
    k += der_uint(sig + slen / 2, slen / 2, out + k);
    out[0] = 0x30;
    out[1] = (uint8_t)(k - 2);
    return k;
}

int crypto_verify(EVP_PKEY *pkey, uint8_t alg, const uint8_t *data,
                  size_t dlen, const uint8_t *sig, size_t slen)
{
    uint8_t der[2 * (48 + 3) + 2];
    int ret = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -1;
    if (alg == 13 || alg == 14) {
        if (slen != (alg == 13 ? 64u : 96u))
            goto out;
        slen = ecdsa_der(sig, slen, der);
        sig = der;
    }
    if (EVP_DigestVerifyInit(ctx, NULL, alg_md(alg), NULL, pkey) != 1) {
        ret = -1;
        goto out;
    }
    ret = EVP_DigestVerify(ctx, sig, slen, data, dlen) == 1;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return ret;
}

int crypto_mds_fetch(EVP_MD *md[4])
{
    static const char *names[4] = {"SHA1", "SHA256", "SHA384", "SHA512"};
    for (int i = 0; i < 4; i++)
        if (!(md[i] = EVP_MD_fetch(NULL, names[i], NULL)))
            return GATE_ERR_CRYPTO;
    return 0;
}

void crypto_mds_free(EVP_MD *md[4])
{
    for (int i = 0; i < 4; i++) {
        EVP_MD_free(md[i]);
        md[i] = NULL;
    }
}

static EVP_MD *md_of(EVP_MD *md[4], uint8_t alg)
{
    switch (alg) {
    case 5: case 7: return md[0];
    case 8: case 13: return md[1];
    case 14: return md[2];
    case 10: return md[3];
    default: return NULL;
    }
}

/*
 * The same answer as crypto_verify, faster for many signatures: the
 * digest with an already fetched EVP_MD, then EVP_PKEY_verify on a
 * context kept per thread and key (*pctx, created on first use; the
 * caller frees it with EVP_PKEY_CTX_free).  EdDSA takes the plain path.
 */
int crypto_verify_cached(EVP_PKEY_CTX **pctx, EVP_MD *mds[4], EVP_PKEY *pkey,
                         uint8_t alg, const uint8_t *data, size_t dlen,
                         const uint8_t *sig, size_t slen)
{
    EVP_MD *md = md_of(mds, alg);
    if (!md)
        return crypto_verify(pkey, alg, data, dlen, sig, slen);
    uint8_t dig[EVP_MAX_MD_SIZE], der[2 * (48 + 3) + 2];
    unsigned dl = 0;
    int ret = 0;
    if (EVP_Digest(data, dlen, dig, &dl, md, NULL) != 1)
        return -1;
    if (!*pctx) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!c || EVP_PKEY_verify_init(c) != 1 ||
            ((alg != 13 && alg != 14) &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1) ||
            EVP_PKEY_CTX_set_signature_md(c, md) != 1) {
            EVP_PKEY_CTX_free(c);
            ERR_clear_error();
            return -1;
        }
        *pctx = c;
    }
    if (alg == 13 || alg == 14) {
        if (slen != (alg == 13 ? 64u : 96u))
            return 0;
        slen = ecdsa_der(sig, slen, der);
        sig = der;
    }
    ret = EVP_PKEY_verify(*pctx, sig, slen, dig, dl) == 1;
    ERR_clear_error();
    return ret;
}

/*
 * hsm/raw.c - raw PKCS#11 calls on a module libp11 has opened.
 *
 * Object search, attribute reads, the DNSKEY public key field of a key
 * object, and signing a host-computed digest with C_Sign (CKM_RSA_PKCS over
 * a DigestInfo, RFC 8017 section 9.2; CKM_ECDSA over the bare digest,
 * which PKCS#11 answers with r||s as RFC 6605 wants), or, for Ed25519,
 * the message itself with CKM_EDDSA (RFC 8080: PureEdDSA, no digest).
 * SoftHSM 2.6.1 has no CKM_ECDSA_SHA256, so hashing is always on the host.  Key generation,
 * wrapping and import live in keygen.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/internal.h"

int raw_find(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
             const uint8_t *id, size_t id_len, const char *label,
             CK_OBJECT_HANDLE *out, size_t max)
{
    CK_FUNCTION_LIST_PTR f = t->mod->f;
    CK_ATTRIBUTE tmpl[3];
    CK_ULONG n = 0, got;
    CK_OBJECT_HANDLE h[64];
    CK_RV rv;
    size_t total = 0;

    tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    if (id != NULL)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
    if (label != NULL)
        tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    rv = f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return HSM_EDEVICE;
    do {
        rv = f->C_FindObjects(s, h, 64, &got);
        if (rv != CKR_OK)
            break;
        for (CK_ULONG i = 0; i < got; i++, total++)
            if (total < max)
                out[total] = h[i];
    } while (got == 64);
    f->C_FindObjectsFinal(s);
    return rv == CKR_OK ? (int)total : HSM_EDEVICE;
}

int raw_attr(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
             CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len)
{
    CK_FUNCTION_LIST_PTR f = t->mod->f;
    CK_ATTRIBUTE a = {type, NULL, 0};
    uint8_t *buf;
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return HSM_EDEVICE;
    buf = malloc(a.ulValueLen + 1);
    if (buf == NULL)
        return -ENOMEM;
    a.pValue = buf;
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK) {
        free(buf);
        return HSM_EDEVICE;
    }
    *val = buf;
    *len = a.ulValueLen;
    return 0;
}

/* CKA_EC_POINT: DER OCTET STRING around 04||X||Y (PKCS#11 2.40), or the
 * bare point from older modules. */
static int ec_point(const uint8_t *p, size_t len, size_t width,
                    uint8_t *pub, size_t *pub_len)
{
    size_t inner = 1 + 2 * width;
    if (len == inner + 2 && p[0] == 0x04 && p[1] == inner) {
        p += 2;
        len -= 2;
    }
    if (len != inner || p[0] != 0x04)
        return HSM_EALG;
    memcpy(pub, p + 1, 2 * width);
    *pub_len = 2 * width;
    return 0;
}

int raw_pubkey(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
               uint8_t alg_hint, uint8_t *pub, size_t *pub_len,
               uint8_t *alg)
{
    CK_KEY_TYPE kt;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    uint8_t *v1 = NULL, *v2 = NULL;
    size_t l1, l2, plen;
    const uint8_t *p256 = alg_ec_params(13, &plen);
    int rc = HSM_EALG;

    if (t->mod->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK)
        return HSM_EDEVICE;
    if (kt == CKK_RSA) {
        if ((rc = raw_attr(t, s, o, CKA_PUBLIC_EXPONENT, &v1, &l1)) == 0 &&
            (rc = raw_attr(t, s, o, CKA_MODULUS, &v2, &l2)) == 0 &&
            (rc = alg_rsa_pub(v1, l1, v2, l2, pub, pub_len)) == 0)
            *alg = alg_is_rsa(alg_hint) ? alg_hint : 8;
    } else if (kt == CKK_EC_EDWARDS) {
        /* CKA_EC_POINT: DER OCTET STRING of the 32-byte key, or bare */
        if ((rc = raw_attr(t, s, o, CKA_EC_PARAMS, &v1, &l1)) != 0)
            goto out;
        rc = HSM_EALG;
        if (!alg_ec_params_match(15, v1, l1) ||
            raw_attr(t, s, o, CKA_EC_POINT, &v2, &l2) != 0)
            goto out;
        const uint8_t *q = l2 == 34 && v2[0] == 0x04 && v2[1] == 32 ? v2 + 2
                           : l2 == 32 ? v2 : NULL;
        if (q != NULL) {
            memcpy(pub, q, 32);
            *pub_len = 32;
            *alg = 15;
            rc = 0;
        }
    } else if (kt == CKK_EC) {
        if ((rc = raw_attr(t, s, o, CKA_EC_PARAMS, &v1, &l1)) != 0)
            goto out;
        if (l1 == plen && memcmp(v1, p256, plen) == 0) {
            *alg = 13;
        } else {
            const uint8_t *p384 = alg_ec_params(14, &plen);
            if (l1 != plen || memcmp(v1, p384, plen) != 0) {
                rc = HSM_EALG;
                goto out;
            }
            *alg = 14;
        }
        if ((rc = raw_attr(t, s, o, CKA_EC_POINT, &v2, &l2)) == 0)
            rc = ec_point(v2, l2, *alg == 13 ? 32 : 48, pub, pub_len);
    }
out:
    free(v1);
    free(v2);
    return rc;
}

static const uint8_t sha256_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09,
                                      0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
                                      0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
                                      0x20};
static const uint8_t sha512_info[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09,
                                      0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
                                      0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
                                      0x40};

CK_RV raw_sign(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
               CK_OBJECT_HANDLE o, uint8_t alg, const uint8_t *data,
               size_t len, uint8_t *sig, size_t *sig_len)
{
    uint8_t buf[sizeof(sha512_info) + 64];
    uint8_t *in = buf;
    size_t off = 0, in_len;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_ULONG out = 512;
    CK_RV rv;

    if (alg_is_eddsa(alg)) {
        /* RFC 8080 section 4: the message itself, no host digest */
        mech.mechanism = CKM_EDDSA;
        in = (uint8_t *)data;
        in_len = len;
    } else {
        /* RFC 5702 section 3 / RFC 8017 section 9.2: DigestInfo. */
        if (alg == 8) {
            memcpy(buf, sha256_info, sizeof(sha256_info));
            off = sizeof(sha256_info);
        } else if (alg == 10) {
            memcpy(buf, sha512_info, sizeof(sha512_info));
            off = sizeof(sha512_info);
        }
        in_len = alg_digest(alg, data, len, buf + off);
        if (in_len == 0)
            return CKR_MECHANISM_INVALID;
        in_len += off;
        if (alg_is_rsa(alg))
            mech.mechanism = CKM_RSA_PKCS;
    }
    rv = f->C_SignInit(s, &mech, o);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_Sign(s, in, in_len, sig, &out);
    if (rv == CKR_OK)
        *sig_len = out;
    return rv;
}

void raw_destroy_id(struct hsm_token *t, const uint8_t *id, size_t id_len)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY,
                                              CKO_PUBLIC_KEY};
    CK_OBJECT_HANDLE h[16];
    for (size_t c = 0; c < 2; c++) {
        int n = raw_find(t, t->admin, classes[c], id, id_len, NULL, h, 16);
        for (int i = 0; i < n && i < 16; i++)
            t->mod->f->C_DestroyObject(t->admin, h[i]);
    }
}

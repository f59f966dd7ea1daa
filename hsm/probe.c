/*
 * hsm/probe.c - the consistency proof (DESIGN.md invariant 1).
 *
 * For every key of the key set that is not removed, and every HSM: the
 * private key is there exactly once under the key set's CKA_ID and label,
 * the public key object equals the key set's DNSKEY, and a signature the
 * HSM makes over a fresh random challenge verifies with plain OpenSSL
 * against a key built from the DNSKEY rdata (never from the token).  The
 * probe signs the way the pool does (raw.c), so it proves the path that
 * will sign the zone.  Comparing public objects alone is not enough: a
 * token may hold the right public object beside a different private key.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "hsm/internal.h"

void probe_mismatch(hsm_mismatch_cb cb, void *arg, struct hsm_set *set,
                    size_t i, const hsm_key_t *k, int found,
                    const char *reason)
{
    hsm_mismatch_t m = {
        .hsm = i + 1, .token = set->tok[i].label, .label = k->label,
        .expected_tag = k->keytag, .found_tag = found, .reason = reason,
    };
    if (cb != NULL)
        cb(&m, arg);
}

/* Key tag of the public key in object O under K's flags, or -1. */
static int object_tag(struct hsm_token *t, CK_OBJECT_HANDLE o,
                      const hsm_key_t *k, hsm_key_t *found)
{
    uint8_t rd[4 + HSM_PUBKEY_MAX];
    *found = *k;
    if (raw_pubkey(t, t->admin, o, k->alg, found->pubkey, &found->pubkey_len,
                   &found->alg) != 0)
        return -1;
    return hsm_keytag(rd, hsm_key_dnskey_rdata(found, rd));
}

int probe_sign(struct hsm_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
               const hsm_key_t *k, const char **why, hsm_diag_t *diag)
{
    uint8_t challenge[64], sig[512];
    size_t sig_len = 0;
    EVP_PKEY *pk = NULL;
    CK_RV rv;
    int rc;

    if (RAND_bytes(challenge, sizeof(challenge)) != 1) {
        diag_openssl(diag, "RAND_bytes");
        return HSM_ECRYPTO;
    }
    rv = raw_sign(t->mod->f, s, o, k->alg, challenge,
                  sizeof(challenge), sig, &sig_len);
    if (rv != CKR_OK) {
        *why = "probe signature refused by the HSM";
        return HSM_EMISMATCH;
    }
    rc = alg_pkey_from_dnskey(k->alg, k->pubkey, k->pubkey_len, &pk);
    if (rc != 0) {
        diag_set(diag, "key %s: cannot build a key from its DNSKEY",
                 k->label);
        return rc;
    }
    rc = alg_verify(pk, k->alg, challenge, sizeof(challenge), sig, sig_len);
    EVP_PKEY_free(pk);
    if (rc == HSM_EMISMATCH)
        *why = "probe signature does not verify against DNSKEY";
    else if (rc != 0)
        diag_set(diag, "key %s: cannot verify the probe signature", k->label);
    return rc;
}

static bool label_equal(struct hsm_token *t, CK_OBJECT_HANDLE o,
                        const char *label)
{
    uint8_t *v = NULL;
    size_t len = 0;
    bool eq = raw_attr(t, t->admin, o, CKA_LABEL, &v, &len) == 0 &&
              len == strlen(label) && memcmp(v, label, len) == 0;
    free(v);
    return eq;
}

int probe_key(struct hsm_set *set, size_t i, const hsm_key_t *k,
              hsm_mismatch_cb cb, void *arg, hsm_diag_t *diag)
{
    struct hsm_token *t = &set->tok[i];
    CK_OBJECT_HANDLE priv[2], pub[2];
    hsm_key_t found;
    const char *why = NULL;
    int np, nq, tag = -1, rc;

    np = raw_find(t, t->admin, CKO_PRIVATE_KEY, k->id, k->id_len, NULL,
                  priv, 2);
    nq = raw_find(t, t->admin, CKO_PUBLIC_KEY, k->id, k->id_len, NULL, pub,
                  2);
    if (np < 0 || nq < 0) {
        diag_set(diag, "HSM %zu (token %s): cannot search objects", i + 1,
                 t->label);
        return HSM_EDEVICE;
    }
    if (nq == 1)
        tag = object_tag(t, pub[0], k, &found);
    else if (np == 1)
        tag = object_tag(t, priv[0], k, &found); /* RSA private keys say */
    if (np == 0)
        why = "no private key with the key set's CKA_ID";
    else if (np > 1)
        why = "more than one private key with the key set's CKA_ID";
    else if (!label_equal(t, priv[0], k->label))
        why = "private key has another CKA_LABEL";
    else if (nq == 0)
        why = "no public key object with the key set's CKA_ID";
    else if (nq > 1)
        why = "more than one public key object with the key set's CKA_ID";
    else if (tag < 0)
        why = "public key unreadable or of another algorithm";
    else if (found.alg != k->alg || found.pubkey_len != k->pubkey_len ||
             memcmp(found.pubkey, k->pubkey, k->pubkey_len) != 0)
        why = "public key differs from DNSKEY";
    if (why != NULL) {
        probe_mismatch(cb, arg, set, i, k, tag, why);
        return HSM_EMISMATCH;
    }
    rc = probe_sign(t, t->admin, priv[0], k, &why, diag);
    if (rc == HSM_EMISMATCH) {
        /* An RSA private object carries its modulus: name its real tag. */
        int ptag = object_tag(t, priv[0], k, &found);
        probe_mismatch(cb, arg, set, i, k,
                       ptag >= 0 && ptag != k->keytag ? ptag : -1, why);
    }
    return rc;
}

int hsm_set_check(struct hsm_set *set, const hsm_keyset_t *ks,
                  hsm_mismatch_cb cb, void *arg, hsm_diag_t *diag)
{
    int verdict = 0;
    for (size_t k = 0; k < ks->count; k++) {
        if (ks->keys[k].state == HSM_STATE_REMOVED)
            continue;
        for (size_t i = 0; i < set->n; i++) {
            int rc = probe_key(set, i, &ks->keys[k], cb, arg, diag);
            if (rc == HSM_EMISMATCH)
                verdict = HSM_EMISMATCH;
            else if (rc != 0)
                return rc;
        }
    }
    if (verdict != 0)
        diag_set(diag, "HSM consistency proof failed");
    return verdict;
}

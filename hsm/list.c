/*
 * hsm/list.c - what each HSM holds: every private key with its label, the
 * DNSSEC algorithm its type maps to and the key tag of its public key
 * object (flags from the key set entry of the same label, 257 if none).
 * Reports only; the proof is probe.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "hsm/internal.h"

static void list_one(struct hsm_set *set, size_t i, const hsm_keyset_t *ks,
                     CK_OBJECT_HANDLE priv, hsm_list_cb cb, void *arg)
{
    struct hsm_token *t = &set->tok[i];
    hsm_listed_t l = {.hsm = i + 1, .token = t->label, .keytag = -1};
    hsm_key_t k;
    uint8_t *label = NULL, *id = NULL, rd[4 + HSM_PUBKEY_MAX];
    size_t llen = 0, idlen = 0;
    CK_OBJECT_HANDLE pub;
    int e;

    memset(&k, 0, sizeof(k));
    k.flags = 257;
    if (raw_attr(t, t->admin, priv, CKA_LABEL, &label, &llen) == 0)
        snprintf(l.label, sizeof(l.label), "%.*s", (int)llen,
                 (const char *)label);
    e = ks != NULL ? hsm_keyset_find(ks, l.label) : -1;
    if (e >= 0) {
        k.flags = ks->keys[e].flags;
        k.alg = ks->keys[e].alg;
    }
    if (raw_attr(t, t->admin, priv, CKA_ID, &id, &idlen) == 0 &&
        idlen <= HSM_ID_MAX &&
        raw_find(t, t->admin, CKO_PUBLIC_KEY, id, idlen, NULL, &pub, 1) == 1
        && raw_pubkey(t, t->admin, pub, k.alg, k.pubkey, &k.pubkey_len,
                      &k.alg) == 0) {
        l.alg = k.alg;
        l.keytag = hsm_keytag(rd, hsm_key_dnskey_rdata(&k, rd));
    }
    cb(&l, arg);
    free(label);
    free(id);
}

int hsm_set_list(struct hsm_set *set, const hsm_keyset_t *ks, hsm_list_cb cb,
                 void *arg, hsm_diag_t *diag)
{
    CK_OBJECT_HANDLE priv[256];
    for (size_t i = 0; i < set->n; i++) {
        int n = raw_find(&set->tok[i], set->tok[i].admin, CKO_PRIVATE_KEY,
                         NULL, 0, NULL, priv, 256);
        if (n < 0) {
            diag_set(diag, "HSM %zu (token %s): cannot search objects",
                     i + 1, set->tok[i].label);
            return n;
        }
        for (int j = 0; j < n && j < 256; j++)
            list_one(set, i, ks, priv[j], cb, arg);
    }
    return 0;
}

/*
 * signer/keys.c - which keys sign what, and the apex records made from the
 * key set: the DNSKEY RRset (published, active and retired keys, after
 * hsm_pool_new's consistency proof has checked them) and NSEC3PARAM.
 * Key use (RFC 4033 2, RFC 6840 5.11): per algorithm, active KSK/CSK sign
 * DNSKEY, active ZSK/CSK sign the rest; if an algorithm has only one kind
 * active, that kind signs everything.  Keys in state "signing" (RFC 6781
 * 4.1.4: an algorithm rollover's signatures ahead of, or after, the
 * algorithm's DNSKEYs) are not in the DNSKEY RRset and sign everything
 * but it: their ZSKs, or their KSK/CSK where the algorithm has no ZSK in
 * that state.  Signing the DNSKEY RRset with a key it does not hold would
 * prove nothing to a resolver.
 */
#include <errno.h>
#include <stdlib.h>

#include "signer/internal.h"

void keys_pick(struct sctx *c)
{
    const hsm_keyset_t *ks = c->ks;
    for (size_t i = 0; i < ks->count; i++) {
        const hsm_key_t *k = &ks->keys[i];
        if (k->state != HSM_STATE_ACTIVE)
            continue;
        struct keyuse u = {i, k->alg, k->keytag};
        if ((k->role == HSM_ROLE_KSK || k->role == HSM_ROLE_CSK) &&
            c->nksk < 16)
            c->ksk[c->nksk++] = u;
        if ((k->role == HSM_ROLE_ZSK || k->role == HSM_ROLE_CSK) &&
            c->nzsk < 16)
            c->zsk[c->nzsk++] = u;
    }
    /* An algorithm with only KSKs (or only ZSKs) active signs everything
     * with them (RFC 6840 5.11: every algorithm signs every RRset). */
    size_t nk = c->nksk, nz = c->nzsk;
    for (size_t i = 0; i < nk; i++) {
        bool found = false;
        for (size_t j = 0; j < nz; j++)
            found |= c->zsk[j].alg == c->ksk[i].alg;
        if (!found && c->nzsk < 16)
            c->zsk[c->nzsk++] = c->ksk[i];
    }
    for (size_t j = 0; j < nz; j++) {
        bool found = false;
        for (size_t i = 0; i < nk; i++)
            found |= c->zsk[j].alg == c->ksk[i].alg;
        if (!found && c->nksk < 16)
            c->ksk[c->nksk++] = c->zsk[j];
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < ks->count; i++) {
            const hsm_key_t *k = &ks->keys[i];
            bool zsk_of_alg = false;
            if (k->state != HSM_STATE_SIGNING || c->nzsk >= 16)
                continue;
            for (size_t j = 0; j < ks->count; j++)
                zsk_of_alg |= ks->keys[j].state == HSM_STATE_SIGNING &&
                              ks->keys[j].alg == k->alg &&
                              ks->keys[j].role == HSM_ROLE_ZSK;
            /* pass 0: ZSKs; pass 1: KSK/CSK of algorithms without one */
            if (pass == 0 ? k->role == HSM_ROLE_ZSK
                          : k->role != HSM_ROLE_ZSK && !zsk_of_alg)
                c->zsk[c->nzsk++] = (struct keyuse){i, k->alg, k->keytag};
        }
}

/* DNSKEY and NSEC3PARAM records at the apex, merged into the sorted zone. */
int keys_add_apex(struct sctx *c, uint32_t dnskey_ttl, uint32_t param_ttl)
{
    zone_t *z = c->z;
    size_t n0 = z->n;
    uint8_t rd[4 + HSM_PUBKEY_MAX + 8];
    int r = 0;
    for (size_t i = 0; i < c->ks->count; i++) {
        if (c->ks->keys[i].state == HSM_STATE_REMOVED ||
            c->ks->keys[i].state == HSM_STATE_SIGNING)
            continue;
        size_t n = hsm_key_dnskey_rdata(&c->ks->keys[i], rd);
        if ((r = zone_add_key(z, z->okey, z->okey_len, T_DNSKEY, dnskey_ttl,
                              rd, (uint16_t)n, RF_GEN)))
            return r;
    }
    if (c->o->denial == SIGNER_DENIAL_NSEC3) {
        rd[0] = 1;
        rd[1] = 0;
        put16(rd + 2, c->o->iterations);
        rd[4] = (uint8_t)c->o->salt_len;
        memcpy(rd + 5, c->o->salt, c->o->salt_len);
        if ((r = zone_add_key(z, z->okey, z->okey_len, T_NSEC3PARAM,
                              param_ttl, rd, (uint16_t)(5 + c->o->salt_len),
                              RF_GEN)))
            return r;
    }
    return zone_merge_tail(z, n0);
}


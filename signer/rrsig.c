/*
 * signer/rrsig.c - RRSIG RDATA and the data a signature covers (RFC 4034
 * 3.1, 3.1.8.1, 6.2, 6.3), and per-RRset validity jitter.  Signing itself
 * is hsm/'s (hsm_pool_sign); the RRset's records arrive already in
 * canonical form and order from the zone (signer/zone.c).
 */
#include <openssl/sha.h>

#include "signer/internal.h"

size_t rrsig_rdata_hdr(const rrsig_hdr_t *h, uint8_t *out)
{
    put16(out, h->covered);
    out[2] = h->alg;
    out[3] = h->labels;
    put32(out + 4, h->orig_ttl);
    put32(out + 8, h->expiration);
    put32(out + 12, h->inception);
    put16(out + 16, h->keytag);
    memcpy(out + 18, h->signer, h->signer_len);
    return 18 + h->signer_len;
}

int rrsig_signed_rr(arena_t *a, const uint8_t *owner, size_t olen,
                    uint16_t type, uint32_t ttl, const uint8_t *rdata,
                    uint16_t rdlen)
{
    int r = arena_reserve(a, olen + 10 + rdlen);
    if (r)
        return r;
    uint8_t *p = a->buf + a->len;
    memcpy(p, owner, olen);
    p += olen;
    put16(p, type);
    put16(p + 2, 1); /* IN */
    put32(p + 4, ttl);
    put16(p + 8, rdlen);
    memcpy(p + 10, rdata, rdlen);
    a->len += olen + 10 + rdlen;
    return 0;
}

int64_t rrsig_jitter(const uint8_t *key, size_t klen, uint16_t type,
                     int64_t max)
{
    if (max <= 0)
        return 0;
    uint8_t d[SHA256_DIGEST_LENGTH], buf[KEY_MAX + 2];
    memcpy(buf, key, klen);
    put16(buf + klen, type);
    SHA256(buf, klen + 2, d);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return (int64_t)(v % (uint64_t)(max + 1));
}

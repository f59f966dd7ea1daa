/* tests/signer/test_xxlong.c - the long digests (signer/xxlong.c, through
 * libxxhash's run-time dispatch) are the digests the inlined xxHash gives,
 * which every index, cache and zone-file digest already on disk was made
 * with: one-shot XXH3-64 and XXH3-128 over every length up to 2 KiB and
 * some long ones, XXH3-128 fed in random pieces, and a zone file's digest
 * (fdig_*: blocks of 4 KiB, fed in random pieces) against one made here
 * block by block with the inlined functions. */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"
#include "tests/lib/splitmix.h"
#include "tests/lib/tap.h"

static uint64_t rng = 0x2545f4914f6cdd1du; /* fixed seed */
static uint64_t rnd(void)
{
    return splitmix64(&rng);
}

int main(void)
{
    const size_t big = (size_t)9 << 20;
    uint8_t *b = malloc(big);
    if (!b) {
        ok(0, "memory");
        return done_testing();
    }
    for (size_t i = 0; i < big; i++)
        b[i] = (uint8_t)rnd();

    /* one shot: every length to 2 KiB (the short, middle and long paths,
     * at odd alignments), and long ones */
    size_t bad64 = 0, bad128 = 0, n = 0;
    for (size_t len = 0; len <= 2048; len++, n++) {
        const uint8_t *p = b + (len * 7) % 61;
        uint8_t d1[16], d2[16];
        bad64 += xxl_64(p, len) != XXH3_64bits(p, len);
        xxl_128(p, len, d1);
        XXH128_canonicalFromHash((XXH128_canonical_t *)d2, XXH3_128bits(p, len));
        bad128 += memcmp(d1, d2, 16) != 0;
    }
    const size_t longs[] = {4096, 4095, 4097, 65536 + 3, (size_t)1 << 20, big};
    for (size_t k = 0; k < sizeof(longs) / sizeof(*longs); k++, n++) {
        uint8_t d1[16], d2[16];
        bad64 += xxl_64(b, longs[k]) != XXH3_64bits(b, longs[k]);
        xxl_128(b, longs[k], d1);
        XXH128_canonicalFromHash((XXH128_canonical_t *)d2,
                                 XXH3_128bits(b, longs[k]));
        bad128 += memcmp(d1, d2, 16) != 0;
    }
    ok(bad64 == 0, "xxl_64 == XXH3_64bits (%zu lengths, %zu differ)", n, bad64);
    ok(bad128 == 0, "xxl_128 == XXH3_128bits (%zu lengths, %zu differ)", n,
       bad128);

    /* streamed in random pieces, 64 and 128 bits */
    for (int wide = 0; wide < 2; wide++) {
        void *st = xxl_new(wide);
        ok(st != NULL, "a %s state", wide ? "128-bit" : "64-bit");
        if (!st)
            continue;
        for (size_t o = 0; o < big;) {
            size_t k = rnd() % 4 == 0 ? (size_t)(rnd() % 300000)
                                      : (size_t)(rnd() % 700);
            if (k > big - o)
                k = big - o;
            xxl_update(st, wide, b + o, k);
            o += k;
        }
        if (wide) {
            uint8_t d1[16], d2[16];
            xxl_digest128(st, d1);
            XXH128_canonicalFromHash((XXH128_canonical_t *)d2,
                                     XXH3_128bits(b, big));
            ok(memcmp(d1, d2, 16) == 0, "streamed XXH3-128 == one shot");
        } else {
            ok(xxl_digest64(st) == XXH3_64bits(b, big),
               "streamed XXH3-64 == one shot");
        }
        xxl_free(st);
    }

    /* a zone file's digest: the XXH3-128 of its 4 KiB blocks' XXH3-64s */
    size_t flen = big - 1234, nb = (flen + FDIG_BLOCK - 1) / FDIG_BLOCK;
    uint64_t *bd = malloc(nb * sizeof(*bd));
    struct fdig f = {0};
    int r = bd ? fdig_reserve(&f, flen) : -1;
    for (size_t o = 0; !r && o < flen;) {
        size_t k = (size_t)(rnd() % 20000);
        if (k > flen - o)
            k = flen - o;
        r = fdig_feed(&f, b + o, k);
        o += k;
    }
    if (!r)
        r = fdig_end(&f);
    ok(r == 0, "fed");
    if (!r && bd) {
        for (size_t i = 0; i < nb; i++) {
            size_t o = i * FDIG_BLOCK,
                   k = flen - o < FDIG_BLOCK ? flen - o : FDIG_BLOCK;
            bd[i] = XXH3_64bits(b + o, k);
        }
        uint8_t d1[16], d2[16];
        fdig_digest(&f, d1);
        XXH128_canonicalFromHash((XXH128_canonical_t *)d2,
                                 XXH3_128bits(bd, nb * sizeof(*bd)));
        ok(f.nb == nb && memcmp(d1, d2, 16) == 0,
           "zone-file digest == block by block with the inlined functions "
           "(%zu blocks)", nb);
    }
    fdig_free(&f);
    free(bd);
    free(b);
    return done_testing();
}

/*
 * signer/xxlong.c - XXH3 over long inputs, at the vector width the CPU has.
 *
 * The signer's other files inline xxHash (XXH_INLINE_ALL), compiled for
 * baseline x86-64: SSE2.  The long digests of a run go through here
 * instead, to libxxhash's run-time dispatch (AVX2 or AVX-512 where the CPU
 * and the kernel allow them): a zone file's 4 KiB blocks (OUT's, and P's on
 * a patched run: 150 MB each at 1M delegations), the text digests of its
 * segments, the index's body and the caches' checksums.  On this project's
 * machines that is 3.6 times as fast over 4 KiB blocks (7.9 ms against
 * 28.8 ms for 150 MB).  XXH3 is one function whatever the vector width,
 * so every digest is what the inlined code gives (file formats unchanged;
 * test_chunks and the patch tests compare them).  Elsewhere than x86-64,
 * the library's own functions.
 *
 * The streaming state is the library's, made, fed, read and freed here
 * only: the inlined code's state type has another tag.
 */
#include <stdlib.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <xxh_x86dispatch.h>
#define XXL_64(p, n) XXH3_64bits_dispatch(p, n)
#define XXL_128(p, n) XXH3_128bits_dispatch(p, n)
#define XXL_UPD64(s, p, n) XXH3_64bits_update_dispatch(s, p, n)
#define XXL_UPD128(s, p, n) XXH3_128bits_update_dispatch(s, p, n)
#else
#include <xxhash.h>
#define XXL_64(p, n) XXH3_64bits(p, n)
#define XXL_128(p, n) XXH3_128bits(p, n)
#define XXL_UPD64(s, p, n) XXH3_64bits_update(s, p, n)
#define XXL_UPD128(s, p, n) XXH3_128bits_update(s, p, n)
#endif

#include "signer/internal.h"

uint64_t xxl_64(const void *p, size_t n)
{
    return XXL_64(p, n);
}

void xxl_128(const void *p, size_t n, uint8_t dg[16])
{
    XXH128_canonicalFromHash((XXH128_canonical_t *)dg, XXL_128(p, n));
}

void *xxl_new(bool wide)
{
    XXH3_state_t *s = XXH3_createState();
    if (s && (wide ? XXH3_128bits_reset(s) : XXH3_64bits_reset(s)) != XXH_OK) {
        XXH3_freeState(s);
        s = NULL;
    }
    return s;
}

void xxl_update(void *st, bool wide, const void *p, size_t n)
{
    if (wide)
        (void)XXL_UPD128(st, p, n);
    else
        (void)XXL_UPD64(st, p, n);
}

uint64_t xxl_digest64(void *st)
{
    return XXH3_64bits_digest(st);
}

void xxl_digest128(void *st, uint8_t dg[16])
{
    XXH128_canonicalFromHash((XXH128_canonical_t *)dg, XXH3_128bits_digest(st));
}

void xxl_free(void *st)
{
    XXH3_freeState(st);
}

/*
 * signer/nsec3.c - NSEC3 owner hashing (RFC 5155 5) with OpenSSL SHA-1
 * directly, base32hex (RFC 4648 7, lowercase, no padding) written here,
 * and NSEC/NSEC3 type bitmaps (RFC 4034 4.1.2).  The chain itself is
 * built in signer/denial.c.
 */
#include <openssl/sha.h>

#include "signer/internal.h"

void nsec3_hash(const uint8_t *wire, size_t wlen, const uint8_t *salt,
                size_t salt_len, uint16_t iterations, uint8_t out[20])
{
    /* SHA1() one-shot: the SHA1_Init family is deprecated in OpenSSL 3. */
    uint8_t buf[255 + 255];
    memcpy(buf, wire, wlen);
    memcpy(buf + wlen, salt, salt_len);
    SHA1(buf, wlen + salt_len, out);
    for (unsigned i = 0; i < iterations; i++) {
        memcpy(buf, out, 20);
        memcpy(buf + 20, salt, salt_len);
        SHA1(buf, 20 + salt_len, out);
    }
}
size_t base32hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char alpha[] = "0123456789abcdefghijklmnopqrstuv";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alpha[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[o++] = alpha[(acc << (5 - bits)) & 31];
    out[o] = 0;
    return o;
}

size_t type_bitmap(const uint16_t *types, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint8_t win = (uint8_t)(types[i] >> 8);
        uint8_t bm[32] = {0};
        int maxb = -1;
        for (; i < n && (types[i] >> 8) == win; i++) {
            uint8_t lo = (uint8_t)types[i];
            bm[lo / 8] |= (uint8_t)(0x80 >> (lo % 8));
            if (lo / 8 > maxb)
                maxb = lo / 8;
        }
        out[o++] = win;
        out[o++] = (uint8_t)(maxb + 1);
        memcpy(out + o, bm, (size_t)maxb + 1);
        o += (size_t)maxb + 1;
    }
    return o;
}

size_t nsec3_find_collision(const uint8_t *base, size_t stride, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (memcmp(base + (i - 1) * stride, base + i * stride, 20) == 0)
            return i;
    return 0;
}

size_t type_bitmap_of(uint16_t *types, size_t n, uint8_t *out)
{
    /* a handful of types, nearly in order already (a name's records
     * are): insertion sort, not a qsort call per name */
    for (size_t a = 1; a < n; a++) {
        uint16_t x = types[a];
        size_t b = a;
        for (; b > 0 && types[b - 1] > x; b--)
            types[b] = types[b - 1];
        types[b] = x;
    }
    return type_bitmap(types, n, out);
}

/*
 * signer/name.c - wire-form domain names and their canonical sort keys.
 *
 * Sort key (internal.h): labels from the root down, lowercased (RFC 4034
 * 6.2), 0x00 and 0x01 escaped as 01 01 and 01 02, each label followed by a
 * 0x00 separator.  memcmp over keys is RFC 4034 6.1 canonical order: labels
 * are compared most significant first, octet by octet, and a label that is
 * a prefix of another sorts first because the separator is the smallest
 * byte.  Does not parse presentation form (libzscanner does that).
 */
#include <stdio.h>

#include "signer/internal.h"

static inline uint8_t lower(uint8_t c)
{
    /* no branch: every octet of every name of a zone passes here */
    return (uint8_t)(c | (uint8_t)((uint8_t)(c - 'A') < 26) << 5);
}

size_t name_wire_len(const uint8_t *wire, size_t max)
{
    size_t i = 0;
    while (i < max && wire[i] != 0) {
        if (wire[i] > 63)
            return 0;
        i += (size_t)wire[i] + 1;
    }
    return i < max ? i + 1 : 0;
}

unsigned name_labels(const uint8_t *wire)
{
    unsigned n = 0;
    while (*wire) {
        n++;
        wire += *wire + 1;
    }
    return n;
}

void name_lower(uint8_t *wire)
{
    while (*wire) {
        uint8_t l = *wire++;
        for (uint8_t i = 0; i < l; i++)
            wire[i] = lower(wire[i]);
        wire += l;
    }
}

size_t name_to_key(const uint8_t *wire, size_t wlen, uint8_t *key)
{
    const uint8_t *lab[128];
    size_t n = 0, k = 0;
    for (size_t i = 0; i < wlen && wire[i] != 0; i += (size_t)wire[i] + 1) {
        if (n == 128)
            return KEY_BAD;
        lab[n++] = wire + i;
    }
    while (n > 0) {
        const uint8_t *l = lab[--n];
        for (uint8_t i = 1; i <= l[0]; i++) {
            uint8_t c = lower(l[i]);
            if (c <= 1) {
                key[k++] = 1;
                key[k++] = (uint8_t)(c + 1);
            } else {
                key[k++] = c;
            }
        }
        key[k++] = 0;
        if (k > KEY_MAX - 130)
            return KEY_BAD;
    }
    return k;
}

size_t key_to_wire(const uint8_t *key, size_t klen, uint8_t *wire)
{
    size_t ends[128], n = 0, starts[128];
    size_t s = 0;
    for (size_t i = 0; i < klen; i++) {
        if (key[i] == 1) {
            i++;
            continue;
        }
        if (key[i] == 0) {
            starts[n] = s;
            ends[n++] = i;
            s = i + 1;
        }
    }
    size_t w = 0;
    while (n > 0) {
        n--;
        size_t lenpos = w++;
        uint8_t l = 0;
        for (size_t i = starts[n]; i < ends[n]; i++, l++) {
            if (key[i] == 1)
                wire[w++] = (uint8_t)(key[++i] - 1);
            else
                wire[w++] = key[i];
        }
        wire[lenpos] = l;
    }
    wire[w++] = 0;
    return w;
}

unsigned key_labels(const uint8_t *key, size_t klen)
{
    unsigned n = 0;
    for (size_t i = 0; i < klen; i++) {
        if (key[i] == 1)
            i++;
        else if (key[i] == 0)
            n++;
    }
    return n;
}

size_t key_parent_len(const uint8_t *key, size_t klen)
{
    size_t last = 0; /* end of the second-to-last label + 1 */
    for (size_t i = 0; i + 1 < klen; i++) {
        if (key[i] == 1)
            i++;
        else if (key[i] == 0)
            last = i + 1;
    }
    return last;
}

/* Characters escaped in presentation form (RFC 1035 5.1). */
static const bool special[256] = {
    ['.'] = true, ['\\'] = true, ['"'] = true, ['('] = true,
    [')'] = true, [';'] = true, ['@'] = true, ['$'] = true,
};

size_t name_to_text(const uint8_t *wire, char *buf)
{
    size_t o = 0;
    if (*wire == 0) {
        buf[0] = '.';
        buf[1] = 0;
        return 1;
    }
    while (*wire) {
        uint8_t l = *wire++;
        for (uint8_t i = 0; i < l; i++) {
            uint8_t c = wire[i];
            if (c <= 0x20 || c >= 0x7f) {
                buf[o++] = '\\';
                buf[o++] = (char)('0' + c / 100);
                buf[o++] = (char)('0' + c / 10 % 10);
                buf[o++] = (char)('0' + c % 10);
            } else {
                if (special[c])
                    buf[o++] = '\\';
                buf[o++] = (char)c;
            }
        }
        wire += l;
        buf[o++] = '.';
    }
    buf[o] = 0;
    return o;
}

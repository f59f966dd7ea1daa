/* tests/signer/wire.h - presentation name (no escapes) to wire form, for
 * the signer's unit tests. */
#ifndef ZONEGATE_TESTS_SIGNER_WIRE_H
#define ZONEGATE_TESTS_SIGNER_WIRE_H

#include <stdint.h>
#include <string.h>

static inline size_t wire(const char *t, uint8_t *w)
{
    size_t o = 0;
    while (*t && strcmp(t, ".") != 0) {
        const char *d = strchr(t, '.');
        size_t l = d ? (size_t)(d - t) : strlen(t);
        w[o++] = (uint8_t)l;
        memcpy(w + o, t, l);
        o += l;
        t += l + (d ? 1 : 0);
    }
    w[o++] = 0;
    return o;
}

#endif

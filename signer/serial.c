/*
 * signer/serial.c - SOA serial policy with RFC 1982 serial arithmetic.
 */
#include <time.h>

#include "signer/signer.h"

int signer_serial_cmp(uint32_t a, uint32_t b)
{
    if (a == b)
        return 0;
    uint32_t d = b - a;
    if (d == 0x80000000u)
        return 2;
    return d < 0x80000000u ? -1 : 1;
}

/* The smallest serial that follows both OLD and (if set) PREV, at least
 * CANDIDATE if CANDIDATE follows them. */
static uint32_t after(uint32_t candidate, uint32_t old, int has_prev,
                      uint32_t prev)
{
    uint32_t base = old;
    if (has_prev && signer_serial_cmp(prev, base) == 1)
        base = prev;
    if (signer_serial_cmp(candidate, base) == 1)
        return candidate;
    return base + 1;
}

uint32_t signer_serial_next(signer_serial_policy_t policy, uint32_t old,
                            int has_prev, uint32_t prev, int64_t now)
{
    switch (policy) {
    case SIGNER_SERIAL_KEEP:
        return old;
    case SIGNER_SERIAL_INCREMENT:
        return after(old + 1, old, has_prev, prev);
    case SIGNER_SERIAL_UNIXTIME:
        return after((uint32_t)now, old, has_prev, prev);
    case SIGNER_SERIAL_DATE: {
        time_t t = (time_t)now;
        struct tm tm;
        gmtime_r(&t, &tm);
        uint32_t d = (uint32_t)((tm.tm_year + 1900) * 10000 +
                                (tm.tm_mon + 1) * 100 + tm.tm_mday) * 100u;
        return after(d, old, has_prev, prev);
    }
    }
    return old;
}

/*
 * signer/timeparse.c - times and durations per CLI.md "Common":
 * YYYYMMDDHHMMSS (UTC, RRSIG presentation form, RFC 4034 3.2), UNIX
 * seconds, now, now+N, now-N with an optional s m h d suffix.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signer/signer.h"

int signer_duration_parse(const char *text, int64_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return SIGNER_ETIME;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || v > (1ULL << 40))
        return SIGNER_ETIME;
    int64_t mul = 1;
    if (*end) {
        if (end[1])
            return SIGNER_ETIME;
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return SIGNER_ETIME;
        }
    }
    *out = (int64_t)v * mul;
    return 0;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

int signer_time_parse(const char *text, int64_t now, int64_t *out)
{
    if (!text)
        return SIGNER_ETIME;
    if (strncmp(text, "now", 3) == 0) {
        int64_t d = 0;
        if (text[3] == 0) {
            *out = now;
            return 0;
        }
        if ((text[3] != '+' && text[3] != '-') ||
            signer_duration_parse(text + 4, &d) != 0)
            return SIGNER_ETIME;
        *out = text[3] == '+' ? now + d : now - d;
        return 0;
    }
    if (!all_digits(text))
        return SIGNER_ETIME;
    if (strlen(text) == 14) {
        struct tm tm = {0};
        char b[5] = {0};
        int f[6];
        static const int w[6] = {4, 2, 2, 2, 2, 2};
        const char *p = text;
        for (int i = 0; i < 6; i++) {
            memset(b, 0, sizeof(b));
            memcpy(b, p, (size_t)w[i]);
            f[i] = atoi(b);
            p += w[i];
        }
        if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 ||
            f[4] > 59 || f[5] > 60)
            return SIGNER_ETIME;
        tm.tm_year = f[0] - 1900;
        tm.tm_mon = f[1] - 1;
        tm.tm_mday = f[2];
        tm.tm_hour = f[3];
        tm.tm_min = f[4];
        tm.tm_sec = f[5];
        time_t t = timegm(&tm);
        struct tm back;
        gmtime_r(&t, &back);
        if (back.tm_mday != f[2]) /* 31 February and friends */
            return SIGNER_ETIME;
        *out = (int64_t)t;
        return 0;
    }
    if (strlen(text) > 12)
        return SIGNER_ETIME;
    *out = (int64_t)strtoll(text, NULL, 10);
    return 0;
}

void signer_time_format(int64_t t, char *buf)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(buf, 15, "%04u%02u%02u%02u%02u%02u",
             (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u);
}

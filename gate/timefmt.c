/*
 * gate/timefmt.c - times and durations as CLI.md "Common" writes them:
 * YYYYMMDDHHMMSS (UTC, RFC 4034 3.2), UNIX seconds, now, now+N, now-N,
 * N with an optional s/m/h/d unit.  Written here, not shared with signer/.
 */
#include "gate/internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int gate_duration_parse(const char *s, int64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return GATE_ERR_USAGE;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || v > (unsigned long long)INT64_MAX / 86400)
        return GATE_ERR_USAGE;
    int64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return GATE_ERR_USAGE;
        }
        if (end[1])
            return GATE_ERR_USAGE;
    }
    *out = (int64_t)v * mul;
    return 0;
}

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return s[n] == 0;
}

int gate_time_parse(const char *s, int64_t clock, int64_t *out)
{
    int64_t d;
    if (!s || !*s)
        return GATE_ERR_USAGE;
    if (strcmp(s, "now") == 0) {
        *out = clock;
        return 0;
    }
    if (strncmp(s, "now", 3) == 0 && (s[3] == '+' || s[3] == '-')) {
        if (gate_duration_parse(s + 4, &d) < 0)
            return GATE_ERR_USAGE;
        *out = s[3] == '+' ? clock + d : clock - d;
        return 0;
    }
    if (strlen(s) == 14 && digits(s, 14)) {
        struct tm tm = {0};
        char b[5] = {0};
        memcpy(b, s, 4); tm.tm_year = atoi(b) - 1900;
        memset(b, 0, 5); memcpy(b, s + 4, 2); tm.tm_mon = atoi(b) - 1;
        memcpy(b, s + 6, 2); tm.tm_mday = atoi(b);
        memcpy(b, s + 8, 2); tm.tm_hour = atoi(b);
        memcpy(b, s + 10, 2); tm.tm_min = atoi(b);
        memcpy(b, s + 12, 2); tm.tm_sec = atoi(b);
        if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
            tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60)
            return GATE_ERR_USAGE;
        *out = (int64_t)timegm(&tm);
        return 0;
    }
    if (digits(s, strlen(s)) && strlen(s) <= 12) {
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    return GATE_ERR_USAGE;
}

void time_str(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, len, "@%lld", (long long)t);
}

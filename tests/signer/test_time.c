/* tests/signer/test_time.c - time formats (CLI.md "Common") and RFC 1982
 * serial arithmetic with the serial policies. */
#include <string.h>

#include "signer/signer.h"
#include "tests/lib/tap.h"

int main(void)
{
    int64_t t, now = 1700000000;
    ok(signer_time_parse("20231114221320", now, &t) == 0 && t == 1700000000,
       "YYYYMMDDHHMMSS");
    ok(signer_time_parse("1700000000", now, &t) == 0 && t == 1700000000,
       "UNIX seconds");
    ok(signer_time_parse("now", now, &t) == 0 && t == now, "now");
    ok(signer_time_parse("now+3600", now, &t) == 0 && t == now + 3600,
       "now+N");
    ok(signer_time_parse("now-1h", now, &t) == 0 && t == now - 3600, "now-1h");
    ok(signer_time_parse("now+14d", now, &t) == 0 && t == now + 14 * 86400,
       "now+14d");
    ok(signer_time_parse("now+2m", now, &t) == 0 && t == now + 120, "now+2m");
    const char *bad[] = {"", "now+", "now*3", "now+5x", "2023111422132",
                         "20231314221320", "20230231000000", "abc", "12a",
                         "now+1hh", NULL};
    for (int i = 0; bad[i]; i++)
        ok(signer_time_parse(bad[i], now, &t) == SIGNER_ETIME,
           "refused \"%s\"", bad[i]);
    char buf[16];
    signer_time_format(1700000000, buf);
    ok(strcmp(buf, "20231114221320") == 0, "format");
    int64_t d;
    ok(signer_duration_parse("90m", &d) == 0 && d == 5400, "duration 90m");
    ok(signer_duration_parse("-1", &d) == SIGNER_ETIME, "negative duration");

    ok(signer_serial_cmp(1, 2) < 0, "1 < 2");
    ok(signer_serial_cmp(0xffffffffu, 0) < 0, "2^32-1 < 0 (wrap)");
    ok(signer_serial_cmp(0, 0xffffffffu) > 0, "0 > 2^32-1");
    ok(signer_serial_cmp(5, 5) == 0, "equal");
    ok(signer_serial_cmp(0, 0x80000000u) == 2, "undefined at 2^31");
    ok(signer_serial_next(SIGNER_SERIAL_KEEP, 7, 0, 0, now) == 7, "keep");
    ok(signer_serial_next(SIGNER_SERIAL_INCREMENT, 7, 0, 0, now) == 8,
       "increment");
    ok(signer_serial_next(SIGNER_SERIAL_INCREMENT, 0xffffffffu, 0, 0, now) == 0,
       "increment wraps");
    ok(signer_serial_next(SIGNER_SERIAL_INCREMENT, 7, 1, 20, now) == 21,
       "increment follows the previous zone");
    ok(signer_serial_next(SIGNER_SERIAL_UNIXTIME, 7, 0, 0, now) == 1700000000u,
       "unixtime");
    ok(signer_serial_next(SIGNER_SERIAL_UNIXTIME, 1800000000u, 0, 0, now) ==
           1800000001u,
       "unixtime never goes back");
    ok(signer_serial_next(SIGNER_SERIAL_DATE, 7, 0, 0, now) == 2023111400u,
       "date");
    ok(signer_serial_next(SIGNER_SERIAL_DATE, 2023111405u, 0, 0, now) ==
           2023111406u,
       "date counter");
    return done_testing();
}

/* tests/gate/test_timefmt.c - CLI.md time and duration formats. */
#include "gate/gate.h"
#include "tests/gate/tap.h"

int main(void)
{
    int64_t t = 0, d = 0;
    tap_ok(gate_time_parse("20260505193000", 0, &t) == 0 && t == 1778009400,
           "YYYYMMDDHHMMSS is UTC");
    tap_ok(gate_time_parse("1700000000", 5, &t) == 0 && t == 1700000000,
           "plain UNIX seconds");
    tap_ok(gate_time_parse("now", 42, &t) == 0 && t == 42, "now");
    tap_ok(gate_time_parse("now+2h", 100, &t) == 0 && t == 7300, "now+2h");
    tap_ok(gate_time_parse("now-1d", 100000, &t) == 0 && t == 13600,
           "now-1d");
    tap_ok(gate_time_parse("now+30", 0, &t) == 0 && t == 30, "now+N seconds");
    tap_ok(gate_time_parse("yesterday", 0, &t) < 0, "words are refused");
    tap_ok(gate_time_parse("20261332000000", 0, &t) < 0, "month 13 refused");
    tap_ok(gate_time_parse("now+", 0, &t) < 0, "now+ without N refused");
    tap_ok(gate_time_parse("", 0, &t) < 0, "empty refused");
    tap_ok(gate_duration_parse("14d", &d) == 0 && d == 14 * 86400, "14d");
    tap_ok(gate_duration_parse("90m", &d) == 0 && d == 5400, "90m");
    tap_ok(gate_duration_parse("3w", &d) < 0, "unknown unit refused");
    tap_ok(gate_duration_parse("-5", &d) < 0, "negative refused");
    tap_ok(gate_duration_parse("5dd", &d) < 0, "trailing junk refused");
    return tap_done();
}

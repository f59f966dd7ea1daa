/* tests/gate/tap.h - minimal TAP output for the gate's C unit tests. */
#ifndef ZONEGATE_TESTS_GATE_TAP_H
#define ZONEGATE_TESTS_GATE_TAP_H
#include <stdio.h>

static int tap_n, tap_fail;

static inline void tap_ok(int cond, const char *desc)
{
    tap_n++;
    if (!cond)
        tap_fail++;
    printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, desc);
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_fail || tap_n == 0;
}
#endif

/*
 * tests/lib/tap.h - minimal TAP output for the C unit tests.
 */
#ifndef ZONEGATE_TESTS_TAP_H
#define ZONEGATE_TESTS_TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                        \
    do {                                                                     \
        int ok_c_ = (cond);                                                  \
        tap_n++;                                                             \
        if (!ok_c_)                                                          \
            tap_failed++;                                                    \
        printf("%sok %d - ", ok_c_ ? "" : "not ", tap_n);                    \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        if (!ok_c_)                                                          \
            printf("#   failed at %s:%d\n", __FILE__, __LINE__);            \
        fflush(stdout);                                                      \
    } while (0)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed == 0 && tap_n > 0 ? 0 : 1;
}

#endif

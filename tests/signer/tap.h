/* tests/signer/tap.h - minimal TAP for the signer unit tests. */
#ifndef ZONEGATE_TESTS_SIGNER_TAP_H
#define ZONEGATE_TESTS_SIGNER_TAP_H
#include <stdio.h>
static int tap_n, tap_fail;
#define ok(cond, ...)                                                        \
    do {                                                                     \
        int c_ = (cond);                                                     \
        tap_n++;                                                             \
        if (!c_)                                                             \
            tap_fail++;                                                      \
        printf("%sok %d - ", c_ ? "" : "not ", tap_n);                       \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
    } while (0)
static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_fail != 0 || tap_n == 0;
}
#endif

/* tests/signer/test_mem.c - the patch road's memory advice (signer/zone.c,
 * mem_huge) and the room a laid-out zone keeps:
 *   - a buffer of 16 MiB is advised onto huge pages (the kernel marks its
 *     mapping "hg" in /proc/self/smaps) while the patch road is on, and a
 *     fresh one is not before or once the road is off again;
 *   - nothing is advised for a buffer under 4 MiB, road on or off;
 *   - a zone laid out (zone_sort) takes the signer's apex records without
 *     moving its arena (growing would copy every record again).
 * Skipped where the kernel has no transparent huge pages, or where
 * /proc/self/smaps cannot be read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signer/internal.h"
#include "tests/lib/tap.h"

/* Does the mapping that holds ADDR carry VM_HUGEPAGE ("hg")?  -1: not
 * found. */
static int advised(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int in = 0, ret = -1;
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof(line), f)) {
        unsigned long s, e;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &s, &dash, &e) == 3 && dash == '-') {
            in = a >= s && a < e;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            ret = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return ret;
}

/* The first whole 2 MiB page of [P, P + N). */
static const void *inner(const void *p)
{
    const uintptr_t hp = (uintptr_t)2 << 20;
    return (const void *)(((uintptr_t)p + hp - 1) & ~(hp - 1));
}

int main(void)
{
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
        printf("1..0 # SKIP no transparent huge pages in this kernel\n");
        return 0;
    }
    if (access("/proc/self/smaps", R_OK) != 0) {
        printf("1..0 # SKIP /proc/self/smaps cannot be read here\n");
        return 0;
    }
    const size_t big = (size_t)16 << 20, small = (size_t)1 << 20;

    /* road off: no advice (64 MiB: fresh memory, see below) */
    arena_t a = {0};
    ok(arena_reserve(&a, 4 * big) == 0, "64 MiB arena, road off");
    ok(advised(inner(a.buf)) == 0, "road off: its mapping is not advised");
    arena_free(&a);

    /* road on: advice for the large buffer, not for the small one */
    mem_huge_road(true);
    memset(&a, 0, sizeof(a));
    ok(arena_reserve(&a, big) == 0, "16 MiB arena, road on");
    ok(advised(inner(a.buf)) == 1, "road on: its mapping is advised");
    memset(a.buf, 1, big); /* (advice or not, the memory is whole) */
    ok(a.buf[big - 1] == 1, "road on: every octet is there");
    void *v = NULL;
    size_t cap = 0;
    ok(vec_grow(&v, &cap, small / 8, 8) == 0, "1 MiB vector, road on");
    ok(advised(v) != 1, "road on: a buffer under 4 MiB is not advised");
    free(v);
    v = NULL;
    cap = 0;
    ok(vec_grow(&v, &cap, big / 8, 8) == 0 && advised(inner(v)) == 1,
       "road on: a 16 MiB vector is advised");
    free(v);
    arena_free(&a);

    /* road off again: (64 MiB, above malloc's largest mmap threshold, so
     * fresh memory and not the advised memory freed above, which malloc
     * may hand out again with its advice) */
    mem_huge_road(false);
    memset(&a, 0, sizeof(a));
    ok(arena_reserve(&a, 4 * big) == 0 && advised(inner(a.buf)) == 0,
       "road off again: a new 64 MiB arena is not advised");
    arena_free(&a);

    /* a laid-out zone keeps room for the apex records */
    static const uint8_t origin[] = {3, 't', 'l', 'd', 0};
    zone_t z;
    ok(zone_init(&z, origin, sizeof(origin)) == 0, "zone tld.");
    int r = 0;
    for (unsigned i = 0; i < 20000 && !r; i++) {
        uint8_t owner[32], rd[4] = {192, 0, 2, (uint8_t)i};
        int n = snprintf((char *)owner + 1, sizeof(owner) - 1, "d%u", i);
        owner[0] = (uint8_t)n;
        memcpy(owner + 1 + n, origin, sizeof(origin));
        r = zone_add(&z, owner, (size_t)n + 1 + sizeof(origin), 1, 3600,
                     rd, 4, i + 1, 0, 0);
    }
    ok(r == 0 && zone_sort(&z) == 0, "20,000 records laid out");
    const uint8_t *before = z.a.buf;
    size_t len = z.a.len;
    ok(z.a.cap > len, "the arena keeps room past its records (%zu > %zu)",
       z.a.cap, len);
    uint8_t rd[260];
    memset(rd, 7, sizeof(rd));
    for (int k = 0; k < 8 && !r; k++)
        r = zone_add(&z, origin, sizeof(origin), 48, 3600, rd, sizeof(rd),
                     0, 0, 0);
    ok(r == 0 && z.a.buf == before,
       "eight DNSKEY-sized apex records added without moving the arena");
    zone_free(&z);
    return done_testing();
}

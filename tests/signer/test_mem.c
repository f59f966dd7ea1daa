/* tests/signer/test_mem.c - the large buffers' memory advice (signer/zone.c)
 * and the room a laid-out zone keeps:
 *   - no buffer is advised onto transparent huge pages (the kernel would
 *     mark its mapping "hg" in /proc/self/smaps): on a virtual machine
 *     that hands free memory back to its host, a huge page a run takes
 *     after a few seconds' idle costs several times the 4 KiB pages it
 *     replaces (zone.c says how much);
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

    /* arenas and vectors, large and small: none advised */
    arena_t a = {0};
    ok(arena_reserve(&a, 4 * big) == 0, "64 MiB arena");
    ok(advised(inner(a.buf)) == 0, "its mapping is not advised");
    memset(a.buf, 1, 4 * big);
    ok(a.buf[4 * big - 1] == 1, "every octet is there");
    arena_free(&a);
    void *v = NULL;
    size_t cap = 0;
    ok(vec_grow(&v, &cap, big / 8, 8) == 0 && advised(inner(v)) == 0,
       "a 16 MiB vector is not advised");
    free(v);
    v = NULL;
    cap = 0;
    ok(vec_grow(&v, &cap, small / 8, 8) == 0 && advised(v) != 1,
       "a 1 MiB vector is not advised");
    free(v);

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

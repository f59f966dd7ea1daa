/*
 * signer/zone.c - the in-memory zone: one byte arena of record blobs and a
 * sorted array of their offsets (layout in internal.h).
 *
 * Built for TLD scale: no heap object per record; a record costs 24 bytes
 * plus its owner key and RDATA.  Records are sorted in bins by the first
 * octet of the owner key below the origin (no name spans two bins, and a
 * bin is a few megabytes, so sorting and laying it out stay in the
 * cache); within a bin, a radix sort on a 32-byte big-endian prefix of
 * the key, then type and RDATA octets, with the full canonical comparison
 * (RFC 4034 6.1 names, 6.3 RDATA) only on ties.
 *
 * Zone content policy (copied into the README):
 *  - Owner names and the names inside RDATA of the RFC 4034 6.2 types are
 *    kept and written in canonical (lowercase) form; other RDATA as given.
 *  - TTLs that disagree inside an RRset (RFC 2181 5.2): the whole RRset
 *    takes the smallest TTL, with a warning FILE:LINE for each record
 *    whose TTL was changed.
 *  - Duplicate records (same owner, class, type, RDATA in canonical form):
 *    one is kept, a warning FILE:LINE names each dropped copy.
 *  - DNSSEC records in the input (RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY)
 *    are dropped with a warning FILE:LINE for each one: the signer makes
 *    them anew (the DNSKEY RRset from the key set).  CDS/CDNSKEY and DS
 *    are kept as data.
 *  - Errors (exit 2, nothing written): syntax, no SOA or several, SOA not
 *    at the origin, records outside the origin, class other than IN,
 *    CNAME beside other data, DS at a name that is not a delegation,
 *    data below a DNAME (RFC 6672 2.3),
 *    over-long labels or names.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>

#include "signer/internal.h"

void trace_mark(const char *what)
{
    static int on = -1;
    static struct timespec w0, c0;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (on == 0)
        return;
    struct timespec w, c, t;
    clock_gettime(CLOCK_MONOTONIC, &w);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    pthread_mutex_lock(&mu);
    if (on < 0) {
        on = getenv("ZONESIGN_TRACE") != NULL;
        w0 = w;
        c0 = c;
    }
    if (on)
        fprintf(stderr,
                "zonesign: trace: %-24s wall %.3f cpu %.3f thread %.3f\n",
                what,
                (double)(w.tv_sec - w0.tv_sec) +
                    (double)(w.tv_nsec - w0.tv_nsec) / 1e9,
                (double)(c.tv_sec - c0.tv_sec) +
                    (double)(c.tv_nsec - c0.tv_nsec) / 1e9,
                (double)t.tv_sec + (double)t.tv_nsec / 1e9);
    pthread_mutex_unlock(&mu);
}

/* (No transparent huge pages, on any road.  A patched run once advised
 * its large buffers onto 2 MiB pages, which halved its page faults and
 * took 3-6% off its CPU when runs came back to back; but on a virtual
 * machine that hands free memory back to its host (free page reporting),
 * a huge page taken a few seconds after the memory was freed is one the
 * host must fault in again, 4 KiB at a time, while the guest zeroes it:
 * 1.8-2.5 ms per MiB against 0.45 ms for 4 KiB pages, which come from
 * the free lists' small blocks that are not handed back.  A pipeline
 * re-signs minutes apart, so its runs always met the slow case: without
 * the advice a patched run of the 1M benchmark zone after 4 s idle took
 * 0.92 of the time, 40 runs each.) */

void mem_populate(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    /* (advice only: a kernel that refuses it leaves the memory as it
     * was, to be faulted in page by page) */
    uintptr_t s = ((uintptr_t)p + 4095) & ~(uintptr_t)4095,
              e = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (e > s)
        (void)madvise((void *)s, e - s, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}

int arena_reserve(arena_t *a, size_t more)
{
    if (a->len + more <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : 1 << 20;
    while (cap < a->len + more)
        cap *= 2;
    uint8_t *b = realloc(a->buf, cap);
    if (!b)
        return -ENOMEM;
    a->buf = b;
    a->cap = cap;
    return 0;
}

int arena_put(arena_t *a, const void *p, size_t n)
{
    int r = arena_reserve(a, n);
    if (r)
        return r;
    memcpy(a->buf + a->len, p, n);
    a->len += n;
    return 0;
}

void arena_free(arena_t *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

int zone_init(zone_t *z, const uint8_t *origin_wire, size_t len)
{
    memset(z, 0, sizeof(*z));
    if (len > 255)
        return SIGNER_EINPUT;
    memcpy(z->origin, origin_wire, len);
    z->origin_len = len;
    name_lower(z->origin);
    z->okey_len = name_to_key(z->origin, len, z->okey);
    if (z->okey_len == KEY_BAD)
        return SIGNER_EINPUT;
    z->origin_labels = name_labels(z->origin);
    return 0;
}

void zone_free(zone_t *z)
{
    if (!z)
        return;
    arena_free(&z->a);
    free(z->idx);
    for (size_t i = 0; i < z->nfiles; i++)
        free(z->files[i]);
    free(z->files);
    memset(z, 0, sizeof(*z));
}

/* Appends one record blob (layout in internal.h) to A. */
static int arena_add_blob(arena_t *a, const uint8_t *key, size_t klen,
                          uint16_t type, uint32_t ttl, const uint8_t *rdata,
                          uint16_t rdlen, uint32_t line, uint8_t file,
                          uint8_t flags)
{
    size_t n = 2 + klen + 14 + rdlen;
    int r = arena_reserve(a, n);
    if (r)
        return r;
    uint8_t *p = a->buf + a->len;
    put16(p, (uint16_t)klen);
    memcpy(p + 2, key, klen);
    p += 2 + klen;
    put16(p, type);
    put32(p + 2, ttl);
    put32(p + 6, line);
    p[10] = file;
    p[11] = flags;
    put16(p + 12, rdlen);
    memcpy(p + 14, rdata, rdlen);
    a->len += n;
    return 0;
}

int zone_add_rec(zone_t *z, const uint8_t *key, size_t klen, uint16_t type,
                 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                 uint32_t line, uint8_t file, uint8_t flags)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 1 << 16;
        uint64_t *p = realloc(z->idx, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        z->idx = p;
        z->cap = cap;
    }
    uint64_t off = z->a.len;
    int r = arena_add_blob(&z->a, key, klen, type, ttl, rdata, rdlen, line,
                           file, flags);
    if (r)
        return r;
    z->idx[z->n++] = off;
    return 0;
}

int zone_add_key(zone_t *z, const uint8_t *key, size_t klen, uint16_t type,
                 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                 uint8_t flags)
{
    return zone_add_rec(z, key, klen, type, ttl, rdata, rdlen, 0, 0, flags);
}

int zone_add(zone_t *z, const uint8_t *owner, size_t olen, uint16_t type,
             uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
             uint32_t line, uint8_t file, uint8_t flags)
{
    uint8_t key[KEY_MAX];
    size_t klen = name_to_key(owner, olen, key);
    if (klen == KEY_BAD)
        return SIGNER_EINPUT;
    return zone_add_rec(z, key, klen, type, ttl, rdata, rdlen, line, file,
                        flags);
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

int rec_cmp(const rec_t *a, const rec_t *b)
{
    int c = bytes_cmp(a->key, a->klen, b->key, b->klen);
    if (c)
        return c;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    return bytes_cmp(a->rdata, a->rdlen, b->rdata, b->rdlen);
}

/* ---------------------------------------------------------------- */
/* Sorting and laying out                                             */

/* Sort entry of one record: the first 32 octets of its owner key below
 * the origin (big-endian, zero-padded: most names fit), its type and
 * first 5 octets of RDATA (for records of one owner, without reaching for
 * the blob; flag ENT_LONG: the key is longer than the prefix), and its
 * blob. */
#define ENT_PFX 4
#define ENT_LONG 1u
typedef struct sortent {
    uint64_t pfx[ENT_PFX];
    uint64_t aux;
    const uint8_t *p;
} sortent_t;


static inline uint64_t load_be64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Full canonical comparison of two blobs (prefix tie). */
static int __attribute__((noinline)) blob_cmp(const uint8_t *pa,
                                              const uint8_t *pb)
{
    rec_t ra, rb;
    rec_parse(pa, 0, &ra);
    rec_parse(pb, 0, &rb);
    return rec_cmp(&ra, &rb);
}

static inline int ent_cmp(const sortent_t *a, const sortent_t *b)
{
    for (size_t i = 0; i < ENT_PFX; i++)
        if (a->pfx[i] != b->pfx[i])
            return a->pfx[i] < b->pfx[i] ? -1 : 1;
    /* equal prefixes and one key within them: the same owner, so type
     * and RDATA decide, and their first octets mostly do */
    if (!((a->aux | b->aux) & ENT_LONG) && a->aux != b->aux)
        return a->aux < b->aux ? -1 : 1;
    return blob_cmp(a->p, b->p);
}

static size_t blob_len(const uint8_t *p)
{
    size_t klen = get16(p);
    return 2 + klen + 14 + get16(p + 2 + klen + 12);
}

/* The entry of the blob at P; SKIP: the origin's key length. */
static inline void ent_fill(sortent_t *e, const uint8_t *p, size_t skip)
{
    size_t klen = get16(p), n = klen > skip ? klen - skip : 0;
    const uint8_t *r = p + 2 + klen;
    size_t rdlen = get16(r + 12);
    uint8_t b[8 * ENT_PFX] = {0}, d[8] = {0};
    memcpy(b, p + 2 + skip, n < sizeof(b) ? n : sizeof(b));
    memcpy(d + 2, r + 14, rdlen < 5 ? rdlen : 5);
    d[0] = r[0]; /* type */
    d[1] = r[1];
    for (size_t i = 0; i < ENT_PFX; i++)
        e->pfx[i] = load_be64(b + 8 * i);
    /* zero padding keeps the order: after a key's end comes a label's
     * first octet (never 0) in any longer key, and shorter RDATA sorts
     * first; equal auxiliaries go to the full comparison */
    e->aux = (load_be64(d) & ~(uint64_t)0xff) |
             (n > sizeof(b) ? ENT_LONG : 0);
    e->p = p;
}

/* The entries of Z's records in index order (caller frees *OUT) and the
 * total size of their blobs. */
static int zone_entries(const zone_t *z, sortent_t **out, size_t *bytes)
{
    sortent_t *e = malloc((z->n ? z->n : 1) * sizeof(*e));
    size_t total = 0;
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < z->n; i++) {
        const uint8_t *p = z->a.buf + z->idx[i];
        ent_fill(&e[i], p, z->okey_len);
        total += blob_len(p);
    }
    *out = e;
    *bytes = total;
    return 0;
}

/* Merge sort of N entries with scratch T ((N + 1) / 2 entries: only the
 * left run is copied out, and the two recursive calls share it), the
 * comparison inlined (qsort_r's indirect calls cost twice as much at TLD
 * scale); already ordered runs cost one comparison.  Stable: records
 * that compare equal keep the order in which they were read, so the first
 * of two duplicates is the one kept (reader.c). */
static void ent_sort(sortent_t *a, sortent_t *t, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            sortent_t x = a[i];
            size_t j = i;
            for (; j > 0 && ent_cmp(&a[j - 1], &x) > 0; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    size_t m = n / 2;
    ent_sort(a, t, m);
    ent_sort(a + m, t, n - m);
    if (ent_cmp(&a[m - 1], &a[m]) <= 0)
        return;
    memcpy(t, a, m * sizeof(*a));
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n)
        a[k++] = ent_cmp(&t[i], &a[j]) <= 0 ? t[i++] : a[j++];
    while (i < m)
        a[k++] = t[i++];
}

static inline unsigned ent_digit(const sortent_t *e, unsigned b)
{
    return (unsigned)(e->pfx[b / 8] >> (56 - 8 * (b % 8))) & 255;
}

/* Most-significant-digit radix sort of N entries on the octets from B on
 * of their key prefixes, with scratch T (N entries): a counting pass
 * and a stable scatter per level, recursing into each bucket; a bucket
 * of a few entries, or of entries equal in all the prefix, goes to the
 * merge sort.  Stable. */
static void ent_radix(sortent_t *a, sortent_t *t, size_t n, unsigned b)
{
    while (n > 32 && b < 8 * ENT_PFX) {
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++)
            cnt[ent_digit(&a[i], b)]++;
        unsigned d0 = ent_digit(&a[0], b);
        if (cnt[d0] == n) { /* one bucket: the next octet, no move */
            b++;
            continue;
        }
        size_t pos[256], sum = 0;
        for (unsigned d = 0; d < 256; d++) {
            pos[d] = sum;
            sum += cnt[d];
        }
        for (size_t i = 0; i < n; i++)
            t[pos[ent_digit(&a[i], b)]++] = a[i];
        memcpy(a, t, n * sizeof(*a));
        for (size_t d = 0, start = 0; d < 256; start += cnt[d], d++)
            if (cnt[d] > 1)
                ent_radix(a + start, t + start, cnt[d], b + 1);
        return;
    }
    ent_sort(a, t, n);
}

static int zone_entries_sort(sortent_t *e, size_t n)
{
    sortent_t *t = malloc((n / 2 + 1) * sizeof(*t));
    if (!t)
        return -ENOMEM;
    ent_sort(e, t, n);
    free(t);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Reading in bins                                                    */

void zone_bins_free(zone_bins_t *b)
{
    for (size_t i = 0; i < ZONE_BINS; i++)
        arena_free(&b->bin[i]);
    memset(b, 0, sizeof(*b));
}

int zone_bins_add(zone_bins_t *b, size_t skip, const uint8_t *key,
                  size_t klen, uint16_t type, uint32_t ttl,
                  const uint8_t *rdata, uint16_t rdlen, uint32_t line,
                  uint8_t file, uint8_t flags)
{
    /* bin 0 holds the apex: a label's first octet is never 0 (escaped) */
    size_t k = klen > skip ? key[skip] : 0;
    arena_t *a = &b->bin[k];
    int r = arena_add_blob(a, key, klen, type, ttl, rdata, rdlen, line, file,
                           flags);
    if (r)
        return r;
    b->count[k]++;
    b->n++;
    return 0;
}

struct binjob {
    zone_t *z;
    zone_bins_t *const *parts;
    size_t np;
    size_t next;                 /* next bin to take (shared) */
    size_t off[ZONE_BINS + 1];   /* where each bin starts in the arena */
    size_t first[ZONE_BINS + 1]; /* and in the index */
    uint8_t order[ZONE_BINS];    /* the bins, largest first */
    void (*done)(void *arg, size_t bin, size_t first, size_t n);
    void *done_arg;
    size_t maxn; /* records of the largest bin */
    uint8_t *dst;
    int err;
};

/* One bin: its records from every part (in part order, each part's in
 * the order read), sorted stably, laid out at the bin's place. */
static int bin_lay_out(struct binjob *j, size_t k, sortent_t *e,
                       sortent_t **spare)
{
    size_t n = 0, skip = j->z->okey_len;
    for (size_t q = 0; q < j->np; q++) {
        const arena_t *a = &j->parts[q]->bin[k];
        for (size_t o = 0; o < a->len;) {
            const uint8_t *p = a->buf + o;
            ent_fill(&e[n++], p, skip);
            o += blob_len(p);
        }
    }
    /* the radix sort's scratch: the bin's place in the new arena, not yet
     * written (a record's blob is mostly larger than its entry), else a
     * buffer of the thread's own */
    uintptr_t at = ((uintptr_t)(j->dst + j->off[k]) + 7) & ~(uintptr_t)7;
    sortent_t *t = (sortent_t *)at;
    if (at + n * sizeof(*t) > (uintptr_t)(j->dst + j->off[k + 1])) {
        if (!*spare && !(*spare = malloc(j->maxn * sizeof(**spare))))
            return -ENOMEM;
        t = *spare;
    }
    ent_radix(e, t, n, 1); /* octet 0 is the bin's */
    size_t off = j->off[k];
    uint64_t *idx = j->z->idx + j->first[k];
    for (size_t i = 0; i < n; i++) {
        size_t len = blob_len(e[i].p);
        memcpy(j->dst + off, e[i].p, len);
        idx[i] = off;
        off += len;
    }
    return 0;
}

static void *bin_worker(void *arg)
{
    struct binjob *j = arg;
    sortent_t *e = malloc((j->maxn ? j->maxn : 1) * sizeof(*e)), *t = NULL;
    if (!e) {
        __atomic_store_n(&j->err, -ENOMEM, __ATOMIC_RELAXED);
        return NULL;
    }
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= ZONE_BINS)
            break;
        size_t k = j->order[i];
        if (bin_lay_out(j, k, e, &t) != 0) {
            __atomic_store_n(&j->err, -ENOMEM, __ATOMIC_RELAXED);
            break;
        }
        if (j->done && j->first[k + 1] > j->first[k])
            j->done(j->done_arg, k, j->first[k],
                    j->first[k + 1] - j->first[k]);
    }
    free(e);
    free(t);
    return NULL;
}

int zone_bins_lay_out(zone_t *z, zone_bins_t *const *parts, size_t np,
                      void (*done)(void *arg, size_t bin, size_t first,
                                   size_t n),
                      void *arg)
{
    struct binjob *j = calloc(1, sizeof(*j));
    size_t total = 0, n = 0;
    if (!j)
        return -ENOMEM;
    j->z = z;
    j->parts = parts;
    j->np = np;
    j->done = done;
    j->done_arg = arg;
    for (size_t k = 0; k < ZONE_BINS; k++) {
        size_t c = 0;
        j->off[k] = total;
        j->first[k] = n;
        for (size_t q = 0; q < np; q++) {
            total += parts[q]->bin[k].len;
            c += parts[q]->count[k];
        }
        n += c;
        j->maxn = c > j->maxn ? c : j->maxn;
    }
    j->first[ZONE_BINS] = n;
    j->off[ZONE_BINS] = total;
    /* largest first: the last bins taken are small, so the two threads
     * end close together (bins differ by orders of magnitude) */
    for (size_t k = 0; k < ZONE_BINS; k++) {
        size_t i = k, nk = j->first[k + 1] - j->first[k];
        for (; i > 0; i--) {
            size_t p = j->order[i - 1];
            if (j->first[p + 1] - j->first[p] >= nk)
                break;
            j->order[i] = j->order[i - 1];
        }
        j->order[i] = (uint8_t)k;
    }
    /* room past the records for what the signer adds (DNSKEY, NSEC3PARAM,
     * NSEC3): growing would copy them all; untouched room costs nothing */
    size_t cap = total + total / 8 + ((size_t)64 << 10);
    uint8_t *buf = malloc(cap);
    uint64_t *idx = malloc((n ? n : 1) * sizeof(*idx));
    if (!buf || !idx) {
        free(buf);
        free(idx);
        free(j);
        return -ENOMEM;
    }
    arena_free(&z->a);
    free(z->idx);
    z->a.buf = buf;
    z->a.cap = cap;
    z->a.len = total;
    z->idx = idx;
    z->n = z->cap = n;
    j->dst = buf;
    /* bins to two threads as they come: the largest ones are not known
     * to be balanced in advance */
    pthread_t th;
    bool threaded =
        n >= 65536 && pthread_create(&th, NULL, bin_worker, j) == 0;
    bin_worker(j);
    if (threaded)
        pthread_join(th, NULL);
    int r = j->err;
    free(j);
    return r;
}

int zone_sort(zone_t *z)
{
    /* the records through bins, as split reading does: each bin sorted
     * and laid out on its own, on two threads */
    zone_bins_t *b = calloc(1, sizeof(*b));
    int r = b ? 0 : -ENOMEM;
    for (size_t i = 0; i < z->n && !r; i++) {
        rec_t x;
        rec_at(z, i, &x);
        r = zone_bins_add(b, z->okey_len, x.key, x.klen, x.type, x.ttl,
                          x.rdata, x.rdlen, x.line, x.file, x.flags);
    }
    if (!r) {
        arena_free(&z->a); /* its records are in the bins now */
        r = zone_bins_lay_out(z, &b, 1, NULL, NULL);
    }
    if (b)
        zone_bins_free(b);
    free(b);
    return r;
}

int zone_sort_index(zone_t *z)
{
    sortent_t *e = NULL;
    size_t total;
    int r = zone_entries(z, &e, &total);
    if (!r)
        r = zone_entries_sort(e, z->n);
    if (!r)
        for (size_t i = 0; i < z->n; i++)
            z->idx[i] = (uint64_t)(e[i].p - z->a.buf);
    free(e);
    return r;
}

/* Does record I of Z sort after the blob at OFF (ties: no)? */
static bool after(const zone_t *z, size_t i, uint64_t off)
{
    return blob_cmp(z->a.buf + z->idx[i], z->a.buf + off) > 0;
}

int zone_merge_tail(zone_t *z, size_t n0)
{
    size_t ng = z->n - n0;
    if (ng == 0)
        return 0;
    uint64_t *gen = malloc(ng * sizeof(*gen));
    if (!gen)
        return -ENOMEM;
    /* sort the few records added, then merge */
    zone_t tmp = *z;
    tmp.idx = z->idx + n0;
    tmp.n = ng;
    int r = zone_sort_index(&tmp);
    memcpy(gen, z->idx + n0, ng * sizeof(*gen));
    z->n = n0;
    if (!r)
        r = zone_merge(z, gen, ng);
    free(gen);
    return r;
}

int zone_merge(zone_t *z, const uint64_t *idx, size_t n)
{
    if (n == 0)
        return 0;
    size_t *pos = malloc(n * sizeof(*pos));
    uint64_t *m = pos ? realloc(z->idx, (z->n + n) * sizeof(*m)) : NULL;
    if (!m) {
        free(pos);
        return -ENOMEM;
    }
    z->idx = m;
    z->cap = z->n + n;
    /* the few records added (NSEC3, apex) go between long runs of the
     * zone's: find each one's place by galloping from the last place
     * (equal records: the zone's first), then shift the runs up in place,
     * from the end */
    for (size_t j = 0, i = 0; j < n; j++) {
        size_t lo = i, step = 1, hi;
        while (lo + step < z->n && !after(z, lo + step, idx[j])) {
            lo += step;
            step *= 2;
        }
        hi = lo + step < z->n ? lo + step : z->n;
        /* the first record after idx[j] is in [lo, hi] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (after(z, mid, idx[j]))
                hi = mid;
            else
                lo = mid + 1;
        }
        pos[j] = i = lo;
    }
    size_t end = z->n;
    for (size_t j = n; j-- > 0;) {
        memmove(m + pos[j] + j + 1, m + pos[j], (end - pos[j]) * sizeof(*m));
        m[pos[j] + j] = idx[j];
        end = pos[j];
    }
    z->n += n;
    free(pos);
    return 0;
}

size_t zone_run_end(const zone_t *z, size_t i, bool bytype)
{
    return zone_run_end_in(z, i, z->n, bytype);
}

size_t zone_run_end_in(const zone_t *z, size_t i, size_t end, bool bytype)
{
    rec_t a, b;
    rec_at(z, i, &a);
    size_t j = i + 1;
    for (; j < end; j++) {
        rec_at(z, j, &b);
        if (b.klen != a.klen || memcmp(a.key, b.key, a.klen) != 0)
            break;
        if (bytype && b.type != a.type)
            break;
    }
    return j;
}

size_t zone_lower_bound(const zone_t *z, const uint8_t *key, size_t klen,
                        uint16_t type)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rec_t r;
        rec_at(z, mid, &r);
        int c = bytes_cmp(r.key, r.klen, key, klen);
        if (c == 0)
            c = r.type < type ? -1 : (r.type > type);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

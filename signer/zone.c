/*
 * signer/zone.c - the in-memory zone: one byte arena of record blobs and a
 * sorted array of their offsets (layout in internal.h).
 *
 * Built for TLD scale: no heap object per record; a record costs 24 bytes
 * plus its owner key and RDATA.  Sorting uses a 16-byte big-endian prefix
 * of the owner key below the origin and falls back to the full canonical
 * comparison (RFC 4034 6.1 names, 6.3 RDATA) only on ties.
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
#include <stdlib.h>

#include "signer/internal.h"

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

int zone_add_key(zone_t *z, const uint8_t *key, size_t klen, uint16_t type,
                 uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                 uint8_t flags)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 1 << 16;
        uint64_t *p = realloc(z->idx, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        z->idx = p;
        z->cap = cap;
    }
    int r = arena_reserve(&z->a, 2 + klen + 14 + rdlen);
    if (r)
        return r;
    uint64_t off = z->a.len;
    uint8_t *p = z->a.buf + off;
    put16(p, (uint16_t)klen);
    memcpy(p + 2, key, klen);
    p += 2 + klen;
    put16(p, type);
    put32(p + 2, ttl);
    put32(p + 6, 0);
    p[10] = 0;
    p[11] = flags;
    put16(p + 12, rdlen);
    memcpy(p + 14, rdata, rdlen);
    z->a.len += 2 + klen + 14 + rdlen;
    z->idx[z->n++] = off;
    return 0;
}

int zone_add(zone_t *z, const uint8_t *owner, size_t olen, uint16_t type,
             uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
             uint32_t line, uint8_t file, uint8_t flags)
{
    uint8_t key[KEY_MAX];
    size_t klen = name_to_key(owner, olen, key);
    if (klen == KEY_BAD)
        return SIGNER_EINPUT;
    int r = zone_add_key(z, key, klen, type, ttl, rdata, rdlen, flags);
    if (r)
        return r;
    uint8_t *p = z->a.buf + z->idx[z->n - 1] + 2 + klen;
    put32(p + 6, line);
    p[10] = file;
    return 0;
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

struct sortent {
    uint64_t pfx[2]; /* 16 octets of the owner key below the origin */
    uint64_t off;
};

/* Full canonical comparison of two blobs (prefix tie). */
static int __attribute__((noinline)) blob_cmp(const zone_t *z, uint64_t oa,
                                              uint64_t ob)
{
    zone_t tmp = *z;
    uint64_t offs[2] = {oa, ob};
    tmp.idx = offs;
    rec_t ra, rb;
    rec_at(&tmp, 0, &ra);
    rec_at(&tmp, 1, &rb);
    return rec_cmp(&ra, &rb);
}

static inline int ent_cmp(const struct sortent *a, const struct sortent *b,
                          const zone_t *z)
{
    if (a->pfx[0] != b->pfx[0])
        return a->pfx[0] < b->pfx[0] ? -1 : 1;
    if (a->pfx[1] != b->pfx[1])
        return a->pfx[1] < b->pfx[1] ? -1 : 1;
    return blob_cmp(z, a->off, b->off);
}

/* Merge sort of N entries with scratch T ((N + 1) / 2 entries: only the
 * left run is copied out, and the two recursive calls share it), the
 * comparison inlined (qsort_r's indirect calls cost twice as much at TLD
 * scale); already ordered runs cost one comparison. */
static void ent_sort(struct sortent *a, struct sortent *t, size_t n,
                     const zone_t *z)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            struct sortent x = a[i];
            size_t j = i;
            for (; j > 0 && ent_cmp(&a[j - 1], &x, z) > 0; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    size_t m = n / 2;
    ent_sort(a, t, m, z);
    ent_sort(a + m, t, n - m, z);
    if (ent_cmp(&a[m - 1], &a[m], z) <= 0)
        return;
    memcpy(t, a, m * sizeof(*a));
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n)
        a[k++] = ent_cmp(&t[i], &a[j], z) <= 0 ? t[i++] : a[j++];
    while (i < m)
        a[k++] = t[i++];
}

static size_t blob_len(const uint8_t *p)
{
    size_t klen = get16(p);
    return 2 + klen + 14 + get16(p + 2 + klen + 12);
}

/* Lays the blobs out in index order, so that every later pass reads the
 * arena sequentially instead of jumping through it (a TLD zone file is not
 * in canonical order).  Costs one copy of the arena at the peak. */
int zone_compact(zone_t *z)
{
    arena_t na = {0};
    size_t total = 0;
    for (size_t i = 0; i < z->n; i++)
        total += blob_len(z->a.buf + z->idx[i]);
    na.buf = malloc(total ? total : 1);
    if (!na.buf)
        return 0; /* not fatal: the zone stays as it is */
    na.cap = total ? total : 1;
    for (size_t i = 0; i < z->n; i++) {
        const uint8_t *p = z->a.buf + z->idx[i];
        size_t l = blob_len(p);
        memcpy(na.buf + na.len, p, l);
        z->idx[i] = na.len;
        na.len += l;
    }
    arena_free(&z->a);
    z->a = na;
    return 0;
}

struct half {
    struct sortent *e, *t;
    size_t n;
    const zone_t *z;
};

static void *sort_half(void *arg)
{
    struct half *h = arg;
    ent_sort(h->e, h->t, h->n, h->z);
    return NULL;
}

/* Sorts E (z->n entries) into z->idx: the halves on two threads (a large
 * zone's sort is the longest step before signing), then one merge. */
static void sort_two_halves(zone_t *z, struct sortent *e, struct sortent *t)
{
    size_t n = z->n, m = n / 2;
    /* scratch: (m + 1) / 2 entries for the low half, then the high's */
    struct half lo = {e, t, m, z}, hi = {e + m, t + (m + 1) / 2, n - m, z};
    pthread_t th;
    bool threaded = n >= 65536 && pthread_create(&th, NULL, sort_half, &hi) == 0;
    if (!threaded)
        sort_half(&hi);
    sort_half(&lo);
    if (threaded)
        pthread_join(th, NULL);
    size_t i = 0, j = m, k = 0;
    while (i < m || j < n) {
        bool take_lo = j == n || (i < m && ent_cmp(&e[i], &e[j], z) <= 0);
        z->idx[k++] = take_lo ? e[i++].off : e[j++].off;
    }
}

int zone_sort_index(zone_t *z)
{
    if (z->n == 0)
        return 0;
    struct sortent *e = malloc(z->n * sizeof(*e));
    struct sortent *t = malloc((z->n / 2 + 2) * sizeof(*t));
    if (!e || !t) {
        free(e);
        free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < z->n; i++) {
        const uint8_t *p = z->a.buf + z->idx[i];
        size_t klen = get16(p);
        for (size_t h = 0; h < 2; h++) {
            uint64_t pfx = 0;
            for (size_t j = 0; j < 8; j++) {
                size_t k = z->okey_len + 8 * h + j;
                pfx = pfx << 8 | (k < klen ? p[2 + k] : 0);
            }
            e[i].pfx[h] = pfx;
        }
        e[i].off = z->idx[i];
    }
    sort_two_halves(z, e, t);
    free(t);
    free(e);
    return 0;
}

int zone_sort(zone_t *z)
{
    int r = zone_sort_index(z);
    return r ? r : zone_compact(z);
}

int zone_merge(zone_t *z, const uint64_t *idx, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t *m = malloc((z->n + n) * sizeof(*m));
    if (!m)
        return -ENOMEM;
    zone_t tmp = *z;
    size_t i = 0, j = 0, k = 0;
    while (i < z->n || j < n) {
        bool take_a;
        if (j == n) {
            take_a = true;
        } else if (i == z->n) {
            take_a = false;
        } else {
            uint64_t offs[2] = {z->idx[i], idx[j]};
            rec_t ra, rb;
            tmp.idx = offs;
            rec_at(&tmp, 0, &ra);
            rec_at(&tmp, 1, &rb);
            take_a = rec_cmp(&ra, &rb) <= 0;
        }
        m[k++] = take_a ? z->idx[i++] : idx[j++];
    }
    free(z->idx);
    z->idx = m;
    z->n = z->cap = k;
    return 0;
}

size_t zone_run_end(const zone_t *z, size_t i, bool bytype)
{
    rec_t a, b;
    rec_at(z, i, &a);
    size_t j = i + 1;
    for (; j < z->n; j++) {
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

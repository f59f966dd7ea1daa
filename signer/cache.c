/*
 * signer/cache.c - the signature cache: a binary sidecar OUT.zsc written
 * atomically next to the signed zone OUT, so that a later run with
 * `--previous OUT` finds the signatures of unchanged RRsets without parsing
 * OUT's text (which at TLD scale costs more than the rest of an
 * incremental run), and copies the text of unchanged runs of names from
 * OUT instead of printing it again (segment.c).
 *
 * Layout (integers big-endian):
 *   "ZGSC", u32 version
 *   u32 presentation format version of writer.c, u32 segment rule
 *   u64 size of the zone file the cache belongs to
 *   u32 SOA serial of that zone, u32 origin length, origin (wire)
 *   u64 N, then N index entries { digest[16], u64 offset } sorted by digest
 *   u64 data length, data: at each offset u16 count, then count times
 *       { u16 length, RRSIG RDATA }
 *   u64 S, then S segments of the zone file in file order
 *       { content digest[16], text digest[16], u32 length }
 *   16-octet XXH3-128 of everything before it (a check against a file
 *       torn or damaged, not against forgery: an attacker who can write
 *       the cache can write its checksum; the gate verifies every
 *       signature of the output whatever the cache held)
 * An RRset's digest is the first 16 octets of SHA-256 over its owner sort
 * key, type, TTL and the canonical RDATA of its records in canonical order
 * (each with its length): everything an RRSIG covers except the RRSIG's
 * own fields, which reuse.c checks from the stored RDATA (key, labels,
 * original TTL, signer, validity).  Segments are described in segment.c;
 * their lengths add up to the zone file's size and each text digest is
 * the XXH3-128 of that segment's bytes (version 4; SHA-256 before), so
 * together they bind the cache to the zone file.  Like the checksum, the
 * text digests guard against a file changed or damaged since, not against
 * forgery: the zone file is this signer's own output, and whoever can
 * write it can write its cache.  The RRset and content digests, over
 * what registrants' data shapes, stay SHA-256.
 *
 * The cache is used only when its own checksum holds, its origin is the
 * zone's and the zone file has the recorded size; the zone file's bytes
 * are checked against the text digests as the run goes (every segment
 * copied is hashed where it lands) and all the others before the output
 * is committed (cache_verify): a file changed since the cache was
 * written makes the caller start over with the previous zone's text.
 * Whether a signature may be reused is decided in reuse.c, not here.
 * Written with the same atomic steps as the zone (temporary file, fsync,
 * rename, directory fsync).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"

#define MAGIC "ZGSC"
#define VERSION 4
#define SUM_SIZE 16 /* the file's checksum: XXH3-128 */
#define IDX_SIZE 24
#define SEG_SIZE (2 * CACHE_DIGEST + 4)

struct cache_ent {
    uint8_t dg[CACHE_DIGEST];
    uint64_t off;
};

struct cache_w {
    struct cache_ent *ent;
    size_t n, cap;
    arena_t data;
    uint64_t cur; /* offset of the current entry's count */
    arena_t segs; /* SEG_SIZE bytes each, file order */
    uint64_t nsegs, zsize;
};

struct cache {
    uint8_t *map;
    size_t size;
    const uint8_t *idx, *data, *segs;
    uint64_t n, dlen, nsegs;
    uint32_t serial;
    bool copy_ok;          /* same presentation format and segment rule */
    int zfd;               /* the zone file (read with pread: a file cut
                            * short meanwhile is an error, not a SIGBUS) */
    uint64_t *segoff;      /* offset of each segment in the zone file */
    uint32_t *slot;        /* content digest -> segment + 1, open addressing */
    size_t slotmask;
    uint8_t *verified;     /* per segment: its bytes were found intact */
    bool known;            /* opened by cache_open_known: its file's
                            * identity was checked, not its checksum */
};

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* ---------------------------------------------------------------- */
/* Digests                                                            */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 fetched once: EVP_sha256() in every EVP_DigestInit_ex fetches
 * it again (a lock and a lookup), which shows at a digest per segment. */
static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

int cache_md_new(EVP_MD_CTX **out)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || !EVP_DigestInit_ex(m, sha256(), NULL)) {
        EVP_MD_CTX_free(m);
        return SIGNER_EIO;
    }
    *out = m;
    return 0;
}

int cache_rrset_digest(EVP_MD_CTX *m, const zone_t *z, size_t i, size_t e,
                       uint8_t dg[CACHE_DIGEST])
{
    rec_t r;
    uint8_t h[16], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    rec_at(z, i, &r);
    if (!EVP_DigestInit_ex(m, sha256(), NULL))
        return SIGNER_EIO;
    put16(h, r.klen);
    put16(h + 2, r.type);
    put32(h + 4, r.ttl);
    put32(h + 8, (uint32_t)(e - i));
    if (!EVP_DigestUpdate(m, h, 2) || !EVP_DigestUpdate(m, r.key, r.klen) ||
        !EVP_DigestUpdate(m, h + 2, 10))
        return SIGNER_EIO;
    for (size_t j = i; j < e; j++) {
        rec_at(z, j, &r);
        put16(h, r.rdlen);
        if (!EVP_DigestUpdate(m, h, 2) ||
            !EVP_DigestUpdate(m, r.rdata, r.rdlen))
            return SIGNER_EIO;
    }
    if (!EVP_DigestFinal_ex(m, md, &mdlen) || mdlen < CACHE_DIGEST)
        return SIGNER_EIO;
    memcpy(dg, md, CACHE_DIGEST);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Writing                                                            */

int cache_w_new(struct cache_w **out)
{
    struct cache_w *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    *out = w;
    return 0;
}

void cache_w_free(struct cache_w *w)
{
    if (!w)
        return;
    free(w->ent);
    arena_free(&w->data);
    arena_free(&w->segs);
    free(w);
}

int cache_w_begin(struct cache_w *w, const uint8_t dg[CACHE_DIGEST])
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        struct cache_ent *p = realloc(w->ent, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        w->ent = p;
        w->cap = cap;
    }
    memcpy(w->ent[w->n].dg, dg, CACHE_DIGEST);
    w->ent[w->n++].off = w->cur = w->data.len;
    uint8_t zero[2] = {0, 0};
    return arena_put(&w->data, zero, 2);
}

int cache_w_add(struct cache_w *w, const uint8_t *rdata, uint16_t len)
{
    uint8_t l[2];
    if (w->n == 0)
        return -EINVAL;
    put16(l, len);
    int r = arena_put(&w->data, l, 2);
    if (!r)
        r = arena_put(&w->data, rdata, len);
    if (r)
        return r;
    uint8_t *cnt = w->data.buf + w->cur;
    put16(cnt, (uint16_t)(get16(cnt) + 1));
    return 0;
}

int cache_w_seg(struct cache_w *w, const uint8_t cd[CACHE_DIGEST],
                const uint8_t td[CACHE_DIGEST], uint32_t len)
{
    uint8_t e[SEG_SIZE];
    memcpy(e, cd, CACHE_DIGEST);
    memcpy(e + CACHE_DIGEST, td, CACHE_DIGEST);
    put32(e + 2 * CACHE_DIGEST, len);
    int r = arena_put(&w->segs, e, SEG_SIZE);
    if (r)
        return r;
    w->nsegs++;
    w->zsize += len;
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    return memcmp(a, b, CACHE_DIGEST);
}

/* A cache file being written: the file, its running checksum (XXH3-128,
 * kept in the file), and optionally the whole file's digest as the patch
 * index records it (XXH3-128 too, so it need not be read back). */
struct cput {
    FILE *f;
    void *m; /* (xxl_new states, 128 bits) */
    void *x;
    uint64_t n;
};

/* Writes N bytes to the file and into the running checksum (if SUMMED). */
static int put_raw(struct cput *o, const void *p, size_t n, bool summed)
{
    if (n == 0)
        return 0;
    if (fwrite(p, 1, n, o->f) != n)
        return -EIO;
    if (summed)
        xxl_update(o->m, true, p, n);
    if (o->x)
        xxl_update(o->x, true, p, n);
    o->n += n;
    return 0;
}

static int put_all(struct cput *o, const void *p, size_t n)
{
    return put_raw(o, p, n, true);
}

/* The checksum at the end of the file. */
static int put_sum(struct cput *o)
{
    uint8_t h[SUM_SIZE];
    xxl_digest128(o->m, h);
    return put_raw(o, h, SUM_SIZE, false);
}

/* A checksum's state, reset (xxl_free frees it). */
static void *sum_new(void)
{
    return xxl_new(true);
}

/* The cache's header: format, the zone file's size, serial, origin. */
static int put_header(struct cput *o, uint64_t zsize, uint32_t serial,
                      const zone_t *z)
{
    uint8_t h[32];
    memcpy(h, MAGIC, 4);
    put32(h + 4, VERSION);
    put32(h + 8, WRITER_FORMAT_VERSION);
    put32(h + 12, SEGMENT_RULE);
    put64(h + 16, zsize);
    put32(h + 24, serial);
    put32(h + 28, (uint32_t)z->origin_len);
    int r = put_all(o, h, 32);
    return r ? r : put_all(o, z->origin, z->origin_len);
}

/* The file PATH's next version is written to: PATH's spare written over
 * unless NO_SPARE, or a new PATH.tmp.XXXXXX (side_open; *TMP its name),
 * with a buffer of 1 MiB (*VBUF, freed by tmp_close: glibc's setvbuf
 * takes no size without a buffer, and its own is 4 KiB, a write call per
 * entry run); NULL and *ERR if it cannot be made. */
static FILE *tmp_open(const char *path, bool no_spare, char **tmp,
                      char **vbuf, int *err)
{
    int fd = side_open(path, no_spare, 0644, NULL, tmp);
    FILE *f;
    *vbuf = NULL;
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    if (!(f = fdopen(fd, "w"))) { /* ("w": not truncated) */
        *err = -errno;
        close(fd);
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
        return NULL;
    }
    if ((*vbuf = malloc(1 << 20)))
        setvbuf(f, *vbuf, _IOFBF, 1 << 20);
    return f;
}

/* F flushed, cut to what was written (a spare written over may have been
 * longer), synced if SYNC and closed after writing ended with R, its
 * buffer VBUF freed; TMP removed if anything failed.  Returns the
 * outcome. */
static int tmp_close(FILE *f, char *vbuf, const char *tmp, bool sync, int r)
{
    if (!r && (fflush(f) != 0 || ftruncate(fileno(f), ftello(f)) != 0 ||
               (sync && fsync(fileno(f)) != 0)))
        r = -errno;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    free(vbuf);
    if (r)
        unlink(tmp);
    return r;
}

static int write_body(struct cput *o, struct cache_w *w, const zone_t *z,
                      uint32_t serial)
{
    uint8_t h[64];
    int r;
    if ((r = put_header(o, w->zsize, serial, z)))
        return r;
    if (w->n > 1)
        qsort(w->ent, w->n, sizeof(w->ent[0]), ent_cmp);
    put64(h, w->n);
    if ((r = put_all(o, h, 8)))
        return r;
    /* entries written 256 at a time (as cache_patch_begin does): a call
     * to the file and the checksums per 6 KB, not per entry */
    uint8_t eb[IDX_SIZE * 256];
    size_t ne = 0;
    for (size_t i = 0; i < w->n; i++) {
        memcpy(eb + ne * IDX_SIZE, w->ent[i].dg, CACHE_DIGEST);
        put64(eb + ne * IDX_SIZE + CACHE_DIGEST, w->ent[i].off);
        if (++ne == 256 || i + 1 == w->n) {
            if ((r = put_all(o, eb, ne * IDX_SIZE)))
                return r;
            ne = 0;
        }
    }
    put64(h, w->data.len);
    if ((r = put_all(o, h, 8)) || (r = put_all(o, w->data.buf, w->data.len)))
        return r;
    put64(h, w->nsegs);
    if ((r = put_all(o, h, 8)) || (r = put_all(o, w->segs.buf, w->segs.len)))
        return r;
    return put_sum(o);
}

int cache_w_write(struct cache_w *w, const char *path, bool no_spare,
                  const zone_t *z, uint64_t zsize, uint32_t serial,
                  char **tmpname, signer_diag_t *diag)
{
    char *tmp = NULL;
    void *m = NULL;
    FILE *f = NULL;
    int r = 0;
    if (zsize != w->zsize) { /* the segments must tile the zone file */
        r = -EINVAL;
        goto out;
    }
    if (!(m = sum_new()))
        r = -ENOMEM;
    char *vbuf;
    if (r || !(f = tmp_open(path, no_spare, &tmp, &vbuf, &r)))
        goto out;
    struct cput o = {f, m, NULL, 0};
    r = tmp_close(f, vbuf, tmp, true, write_body(&o, w, z, serial));
out:
    if (r)
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
                 strerror(r < 0 && r > -4096 ? -r : EIO));
    if (m)
        xxl_free(m);
    if (r) {
        free(tmp);
        return r;
    }
    *tmpname = tmp;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Reading                                                            */

/* Structure and checksum of the mapped cache; 0 if usable. */
static int cache_parse(struct cache *c, const zone_t *z, uint64_t *zsize)
{
    const uint8_t *p = c->map, *end = c->map + c->size;
    uint8_t sum[SUM_SIZE];
    if (c->size < 24 + 8 + 8 + 8 + 8 + SUM_SIZE || memcmp(p, MAGIC, 4) != 0 ||
        get32(p + 4) != VERSION)
        return -1;
    if (!c->known) {
        xxl_128(c->map, c->size - SUM_SIZE, sum);
        if (memcmp(sum, end - SUM_SIZE, SUM_SIZE) != 0)
            return -1;
    }
    end -= SUM_SIZE;
    c->copy_ok = get32(p + 8) == WRITER_FORMAT_VERSION &&
                 get32(p + 12) == SEGMENT_RULE;
    *zsize = get64(p + 16);
    p += 24;
    c->serial = get32(p);
    uint32_t ol = get32(p + 4);
    p += 8;
    if (ol != z->origin_len || (size_t)(end - p) < ol + 8 ||
        memcmp(p, z->origin, ol) != 0)
        return -1;
    p += ol;
    c->n = get64(p);
    p += 8;
    if (c->n > (uint64_t)(end - p) / IDX_SIZE)
        return -1;
    c->idx = p;
    p += c->n * IDX_SIZE;
    if ((size_t)(end - p) < 8)
        return -1;
    c->dlen = get64(p);
    p += 8;
    if (c->dlen > (uint64_t)(end - p) || (uint64_t)(end - p) - c->dlen < 8)
        return -1;
    c->data = p;
    p += c->dlen;
    c->nsegs = get64(p);
    p += 8;
    if (c->nsegs > (uint64_t)(end - p) / SEG_SIZE ||
        c->nsegs * SEG_SIZE != (uint64_t)(end - p))
        return -1;
    c->segs = p;
    return 0;
}

static uint64_t slot_hash(const uint8_t *dg)
{
    return get64(dg); /* the digest is uniform already */
}

/* Segment offsets (they must tile ZSIZE bytes) and the lookup table. */
static int cache_index_segs(struct cache *c, uint64_t zsize)
{
    uint64_t off = 0;
    size_t slots = 16;
    if (c->nsegs > SIZE_MAX / 8 / sizeof(uint64_t))
        return -1;
    while (slots < 2 * c->nsegs)
        slots *= 2;
    c->segoff = malloc((c->nsegs + 1) * sizeof(*c->segoff));
    c->slot = calloc(slots, sizeof(*c->slot));
    c->verified = calloc(c->nsegs + 1, 1);
    if (!c->segoff || !c->slot || !c->verified || c->nsegs >= UINT32_MAX)
        return -1;
    c->slotmask = slots - 1;
    for (uint64_t k = 0; k < c->nsegs; k++) {
        const uint8_t *e = c->segs + k * SEG_SIZE;
        c->segoff[k] = off;
        off += get32(e + 2 * CACHE_DIGEST);
        size_t h = (size_t)slot_hash(e) & c->slotmask;
        while (c->slot[h])
            h = (h + 1) & c->slotmask;
        c->slot[h] = (uint32_t)(k + 1);
    }
    c->segoff[c->nsegs] = off;
    return off == zsize ? 0 : -1;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    if (c->map)
        munmap(c->map, c->size);
    if (c->zfd >= 0)
        close(c->zfd);
    free(c->segoff);
    free(c->slot);
    free(c->verified);
    free(c);
}

/* The zone file opened, if it has the recorded size. */
static int cache_open_zone(struct cache *c, const char *zone_path,
                           uint64_t zsize)
{
    struct stat st;
    int fd = open(zone_path, O_RDONLY);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size != zsize) {
        close(fd);
        return -1;
    }
    c->zfd = fd;
    return 0;
}

/* A cache with the file at PATH mapped at c->map (file_map); NULL if it
 * cannot be. */
static struct cache *cache_read_file(const char *path)
{
    struct cache *c = calloc(1, sizeof(*c));
    struct stat st;
    int fd;
    if (!c)
        return NULL;
    c->zfd = -1;
    if ((fd = open(path, O_RDONLY)) < 0)
        goto fail;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        goto fail;
    }
    c->size = (size_t)st.st_size;
    c->map = file_map(fd, c->size);
    close(fd);
    if (!c->map)
        goto fail;
    return c;
fail:
    cache_free(c);
    return NULL;
}

int cache_open(struct cache **out, const char *cache_path,
               const char *zone_path, const zone_t *z)
{
    struct cache *c = cache_read_file(cache_path);
    uint64_t zsize = 0;
    if (!c)
        return -1;
    if (cache_parse(c, z, &zsize) != 0 || cache_index_segs(c, zsize) != 0 ||
        cache_open_zone(c, zone_path, zsize) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    cache_free(c);
    return -1;
}

int cache_content_digest(EVP_MD_CTX *m, const uint8_t *p, size_t n,
                         uint8_t cd[CACHE_DIGEST])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned l = 0;
    if (!EVP_DigestInit_ex(m, sha256(), NULL) ||
        !EVP_DigestUpdate(m, p, n) || !EVP_DigestFinal_ex(m, md, &l))
        return SIGNER_EIO;
    memcpy(cd, md, CACHE_DIGEST);
    return 0;
}

void cache_text_digest(const uint8_t *p, size_t n, uint8_t td[CACHE_DIGEST])
{
    _Static_assert(CACHE_DIGEST == sizeof(XXH128_canonical_t),
                   "a text digest is one XXH3-128");
    xxl_128(p, n, td);
}

bool cache_can_copy(const struct cache *c)
{
    return c && c->copy_ok;
}

static void seg_at(const struct cache *c, size_t k, cache_seg_t *seg)
{
    const uint8_t *e = c->segs + k * SEG_SIZE;
    seg->index = k;
    seg->off = c->segoff[k];
    seg->len = get32(e + 2 * CACHE_DIGEST);
    seg->td = e + CACHE_DIGEST;
}

int cache_seg_find(const struct cache *c, const uint8_t cd[CACHE_DIGEST],
                   size_t hint, cache_seg_t *seg)
{
    if (!c->copy_ok)
        return -1;
    /* most segments follow the one found before them, as in the file */
    if (hint < c->nsegs &&
        memcmp(c->segs + hint * SEG_SIZE, cd, CACHE_DIGEST) == 0) {
        seg_at(c, hint, seg);
        return 0;
    }
    for (size_t h = (size_t)slot_hash(cd) & c->slotmask; c->slot[h];
         h = (h + 1) & c->slotmask) {
        size_t k = c->slot[h] - 1;
        if (memcmp(c->segs + k * SEG_SIZE, cd, CACHE_DIGEST) == 0) {
            seg_at(c, k, seg);
            return 0;
        }
    }
    return -1;
}

int cache_zone_read(const struct cache *c, uint64_t off, size_t len,
                    uint8_t *buf)
{
    for (size_t o = 0; o < len;) {
        ssize_t n = pread(c->zfd, buf + o, len - o, (off_t)(off + o));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* error or the file is shorter now */
        o += (size_t)n;
    }
    return 0;
}

void cache_seg_verified(struct cache *c, size_t k)
{
    __atomic_store_n(&c->verified[k], 1, __ATOMIC_RELAXED);
}

int cache_verify(struct cache *c, size_t from, size_t to)
{
    uint8_t td[CACHE_DIGEST];
    uint8_t *buf = NULL;
    size_t cap = 0;
    int r = 0;
    if (to > c->nsegs)
        to = c->nsegs;
    for (uint64_t k = from; k < to && r == 0; k++) {
        if (__atomic_load_n(&c->verified[k], __ATOMIC_RELAXED))
            continue;
        /* the run of unverified segments from k, read in one go (up to
         * 4 MiB unless one segment is longer) */
        uint64_t e = k + 1;
        while (e < to && c->segoff[e + 1] - c->segoff[k] <= (4u << 20) &&
               !__atomic_load_n(&c->verified[e], __ATOMIC_RELAXED))
            e++;
        size_t len = (size_t)(c->segoff[e] - c->segoff[k]);
        if (len > cap) {
            free(buf);
            if (!(buf = malloc(len))) {
                r = -ENOMEM;
                break;
            }
            cap = len;
        }
        if (cache_zone_read(c, c->segoff[k], len, buf) != 0) {
            r = -1;
            break;
        }
        for (uint64_t j = k; j < e; j++) {
            const uint8_t *s = c->segs + j * SEG_SIZE;
            cache_text_digest(buf + (c->segoff[j] - c->segoff[k]),
                              get32(s + 2 * CACHE_DIGEST), td);
            if (memcmp(td, s + CACHE_DIGEST, CACHE_DIGEST) != 0) {
                r = -1;
                break;
            }
            c->verified[j] = 1;
        }
        k = e - 1;
    }
    free(buf);
    return r;
}

uint32_t cache_serial(const struct cache *c)
{
    return c->serial;
}

int cache_find(const struct cache *c, const uint8_t dg[CACHE_DIGEST],
               cache_sigs_t *it)
{
    uint64_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int d = memcmp(c->idx + mid * IDX_SIZE, dg, CACHE_DIGEST);
        if (d == 0) {
            uint64_t off = get64(c->idx + mid * IDX_SIZE + CACHE_DIGEST);
            if (off > c->dlen || c->dlen - off < 2)
                return -1;
            it->p = c->data + off + 2;
            it->end = c->data + c->dlen;
            it->left = get16(c->data + off);
            return 0;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int cache_sigs_next(cache_sigs_t *it, const uint8_t **rd, uint16_t *len)
{
    if (it->left == 0 || it->end - it->p < 2)
        return -1;
    uint16_t l = get16(it->p);
    if ((size_t)(it->end - it->p - 2) < l)
        return -1;
    *rd = it->p + 2;
    *len = l;
    it->p += 2 + l;
    it->left--;
    return 0;
}

/* ---------------------------------------------------------------- */
/* For patch.c                                                        */

int cache_open_known(struct cache **out, const char *cache_path,
                     const zone_t *z, const struct pidx_file *want)
{
    struct cache *c = cache_read_file(cache_path);
    uint64_t zsize = 0;
    if (!c)
        return -1;
    /* the file the patch index was written with (its digest stands for
     * the checksum, which would cost a SHA-256 of the whole cache) */
    uint8_t dg[16];
    xxl_128(c->map, c->size, dg);
    if (c->size != want->size || memcmp(dg, want->dg, 16) != 0)
        goto fail;
    c->known = true;
    if (cache_parse(c, z, &zsize) != 0 || !c->copy_ok)
        goto fail;
    /* offsets only: no lookup table (nothing is looked up by content) */
    if (!(c->segoff = malloc((c->nsegs + 1) * sizeof(*c->segoff))))
        goto fail;
    uint64_t off = 0;
    for (uint64_t k = 0; k < c->nsegs; k++) {
        c->segoff[k] = off;
        off += get32(c->segs + k * SEG_SIZE + 2 * CACHE_DIGEST);
    }
    c->segoff[c->nsegs] = off;
    if (off != zsize)
        goto fail;
    *out = c;
    return 0;
fail:
    cache_free(c);
    return -1;
}

size_t cache_nsegs(const struct cache *c)
{
    return (size_t)c->nsegs;
}

uint64_t cache_seg_off(const struct cache *c, size_t k)
{
    return c->segoff[k];
}

const uint8_t *cache_seg_rec(const struct cache *c, size_t k)
{
    return c->segs + k * SEG_SIZE;
}

/* The octets of the entry at P (count and RRSIGs) before END; 0 if it
 * runs past it. */
static size_t entry_len(const uint8_t *p, const uint8_t *end)
{
    if (end - p < 2)
        return 0;
    unsigned n = get16(p);
    size_t o = 2;
    for (unsigned i = 0; i < n; i++) {
        if ((size_t)(end - p) < o + 2 ||
            (size_t)(end - p) < o + 2 + get16(p + o))
            return 0;
        o += 2 + get16(p + o);
    }
    return o;
}

struct span {
    uint64_t off, len;
};

/* Octets of dropped entries before data offset OFF (SP: sorted, with
 * their running sums in SUM); *HIT: OFF starts one of them. */
static uint64_t dropped_before(const struct span *sp, const uint64_t *sum,
                               size_t n, uint64_t off, bool *hit)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    *hit = lo < n && sp[lo].off == off;
    return lo ? sum[lo - 1] : 0;
}

/* A patched cache being written: all but W's segments (cache_patch_end). */
struct cache_pw {
    FILE *f;
    char *vbuf; /* f's buffer (tmp_open) */
    void *m, *xs; /* the checksum, the file's digest (xxl_new states) */
    struct cput o;
    char *tmp;
    uint64_t zsize;
};

void cache_patch_abort(struct cache_pw *cp)
{
    if (!cp)
        return;
    if (cp->f) {
        fclose(cp->f);
        unlink(cp->tmp);
    }
    free(cp->vbuf);
    if (cp->m)
        xxl_free(cp->m);
    if (cp->xs)
        xxl_free(cp->xs);
    free(cp->tmp);
    free(cp);
}

int cache_patch_begin(const struct cache *old, struct cache_w *w,
                      bool (*dead)(void *arg, const uint8_t *rd, uint16_t len),
                      void *arg, const char *path, bool no_spare,
                      const zone_t *z, uint32_t serial, uint64_t zsize,
                      struct cache_pw **out, uint64_t *dropped)
{
    struct cache_pw *cp = calloc(1, sizeof(*cp));
    uint8_t h[64];
    struct span *sp = NULL;
    uint64_t *sum = NULL;
    size_t nsp = 0, spcap = 0;
    int r = 0;
    *out = NULL;
    if (!cp)
        return -ENOMEM;
    cp->zsize = zsize;
    /* OLD's data in order: the entries whose RRsets are gone (their first
     * RRSIG is dead) are dropped, the rest keep their order */
    const uint8_t *d = old->data, *dend = old->data + old->dlen;
    uint64_t dkeep = 0;
    for (uint64_t o = 0; o < old->dlen;) {
        size_t l = entry_len(d + o, dend);
        if (l == 0) {
            r = -EINVAL;
            goto out;
        }
        if (dead && get16(d + o) > 0 && dead(arg, d + o + 4, get16(d + o + 2))) {
            if (nsp == spcap) {
                spcap = spcap ? 2 * spcap : 1024;
                struct span *q = realloc(sp, spcap * sizeof(*q));
                if (!q) {
                    r = -ENOMEM;
                    goto out;
                }
                sp = q;
            }
            sp[nsp++] = (struct span){o, l};
        } else {
            dkeep += l;
        }
        o += l;
    }
    if (!(sum = malloc((nsp + 1) * sizeof(*sum)))) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nsp; i++)
        sum[i] = (i ? sum[i - 1] : 0) + sp[i].len;
    *dropped = nsp;
    if (!(cp->m = sum_new()) || !(cp->xs = sum_new()))
        r = -ENOMEM;
    if (r || !(cp->f = tmp_open(path, no_spare, &cp->tmp, &cp->vbuf, &r)))
        goto out;
    cp->o = (struct cput){cp->f, cp->m, cp->xs, 0};
    struct cput *o = &cp->o;
    if (w->n > 1)
        qsort(w->ent, w->n, sizeof(w->ent[0]), ent_cmp);
    if (!(r = put_header(o, zsize, serial, z))) {
        put64(h, old->n - nsp + w->n);
        r = put_all(o, h, 8);
    }
    /* the index: OLD's kept entries (offsets less the dropped octets
     * before them) merged with W's (their data after OLD's) */
    uint64_t i = 0;
    size_t j = 0;
    uint8_t eb[IDX_SIZE * 256]; /* entries written 256 at a time */
    size_t ne = 0;
    while (!r && (i < old->n || j < w->n)) {
        const uint8_t *oe = i < old->n ? old->idx + i * IDX_SIZE : NULL;
        uint8_t *he = eb + ne * IDX_SIZE;
        if (oe && (j >= w->n || memcmp(oe, w->ent[j].dg, CACHE_DIGEST) <= 0)) {
            bool hit;
            uint64_t eo = get64(oe + CACHE_DIGEST);
            uint64_t before = dropped_before(sp, sum, nsp, eo, &hit);
            i++;
            if (hit)
                continue;
            memcpy(he, oe, CACHE_DIGEST);
            put64(he + CACHE_DIGEST, eo - before);
        } else {
            memcpy(he, w->ent[j].dg, CACHE_DIGEST);
            put64(he + CACHE_DIGEST, dkeep + w->ent[j].off);
            j++;
        }
        if (++ne == 256) {
            r = put_all(o, eb, ne * IDX_SIZE);
            ne = 0;
        }
    }
    if (!r)
        r = put_all(o, eb, ne * IDX_SIZE);
    if (!r) {
        put64(h, dkeep + w->data.len);
        r = put_all(o, h, 8);
    }
    /* OLD's data between the dropped entries, then W's */
    uint64_t at = 0;
    for (size_t k = 0; k <= nsp && !r; k++) {
        uint64_t e = k < nsp ? sp[k].off : old->dlen;
        r = put_all(o, d + at, e - at);
        at = k < nsp ? sp[k].off + sp[k].len : e;
    }
    if (!r)
        r = put_all(o, w->data.buf, w->data.len);
out:
    free(sp);
    free(sum);
    if (r) {
        cache_patch_abort(cp);
        return r;
    }
    *out = cp;
    return 0;
}

int cache_patch_end(struct cache_pw *cp, const struct cache_w *w,
                    char **tmpname, uint64_t *fsize, uint8_t fdg[16])
{
    uint8_t h[8];
    struct cput *o = &cp->o;
    int r = w->zsize == cp->zsize ? 0 : -EINVAL;
    put64(h, w->nsegs);
    if (!r && !(r = put_all(o, h, 8)))
        r = put_all(o, w->segs.buf, w->segs.len);
    if (!r && !(r = put_sum(o))) {
        *fsize = o->n;
        xxl_digest128(cp->xs, fdg);
    }
    /* not synced: a cache torn by a crash fails its checksum (the cache
     * road) or its digest in the patch index (the patch road), and the
     * next run is only slower */
    r = tmp_close(cp->f, cp->vbuf, cp->tmp, false, r);
    cp->f = NULL;
    cp->vbuf = NULL;
    if (!r) {
        *tmpname = cp->tmp;
        cp->tmp = NULL;
    }
    cache_patch_abort(cp);
    return r;
}

int cache_w_segs_from(struct cache_w *w, const struct cache *old, size_t k,
                      size_t k2)
{
    if (k2 <= k)
        return 0;
    int r = arena_put(&w->segs, old->segs + k * SEG_SIZE,
                      (k2 - k) * SEG_SIZE);
    if (r)
        return r;
    w->nsegs += k2 - k;
    w->zsize += old->segoff[k2] - old->segoff[k];
    return 0;
}

void cache_w_seg_set(struct cache_w *w, uint64_t i,
                     const uint8_t cd[CACHE_DIGEST],
                     const uint8_t td[CACHE_DIGEST])
{
    uint8_t *e = w->segs.buf + i * SEG_SIZE;
    memcpy(e, cd, CACHE_DIGEST);
    memcpy(e + CACHE_DIGEST, td, CACHE_DIGEST);
}

uint64_t cache_w_nsegs(const struct cache_w *w)
{
    return w->nsegs;
}

int cache_w_segs_reserve(struct cache_w *w, size_t n)
{
    int r = arena_reserve(&w->segs, n * SEG_SIZE);
    if (!r) /* (written through at once: its pages made present now) */
        mem_populate(w->segs.buf + w->segs.len, n * SEG_SIZE);
    return r;
}

void cache_w_segs_reset(struct cache_w *w)
{
    w->segs.len = 0;
    w->nsegs = w->zsize = 0;
}

uint64_t cache_w_size(const struct cache_w *w)
{
    return w->zsize;
}

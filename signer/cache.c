/*
 * signer/cache.c - the signature cache: a binary sidecar OUT.zsc written
 * atomically next to the signed zone OUT, so that a later run with
 * `--previous OUT` finds the signatures of unchanged RRsets without parsing
 * OUT's text (which at TLD scale costs more than the rest of an
 * incremental run).
 *
 * Layout (integers big-endian):
 *   "ZGSC", u32 version
 *   u64 size and 32-octet SHA-256 of the zone file the cache belongs to
 *   u32 SOA serial of that zone, u32 origin length, origin (wire)
 *   u64 N, then N index entries { digest[16], u64 offset } sorted by digest
 *   u64 data length, data: at each offset u16 count, then count times
 *       { u16 length, RRSIG RDATA }
 *   32-octet SHA-256 of everything before it
 * An RRset's digest is the first 16 octets of SHA-256 over its owner sort
 * key, type, TTL and the canonical RDATA of its records in canonical order
 * (each with its length): everything an RRSIG covers except the RRSIG's
 * own fields, which reuse.c checks from the stored RDATA (key, labels,
 * original TTL, signer, validity).
 *
 * The cache is used only when its own checksum holds and the zone file's
 * size and SHA-256 equal the recorded ones; otherwise the caller parses
 * the zone text as before.  Whether a signature may be reused is decided
 * in reuse.c, not here.  Written with the same atomic steps as the zone
 * (temporary file, fsync, rename, directory fsync).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "signer/internal.h"

#define MAGIC "ZGSC"
#define VERSION 1
#define IDX_SIZE 24

struct cache_ent {
    uint8_t dg[CACHE_DIGEST];
    uint64_t off;
};

struct cache_w {
    struct cache_ent *ent;
    size_t n, cap;
    arena_t data;
    uint64_t cur; /* offset of the current entry's count */
};

struct cache {
    uint8_t *map;
    size_t size;
    const uint8_t *idx, *data;
    uint64_t n, dlen;
    uint32_t serial;
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

int cache_md_new(EVP_MD_CTX **out)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || !EVP_DigestInit_ex(m, EVP_sha256(), NULL)) {
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
    if (!EVP_DigestInit_ex(m, EVP_sha256(), NULL))
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

static int ent_cmp(const void *a, const void *b)
{
    return memcmp(a, b, CACHE_DIGEST);
}

/* Writes N bytes to F and into the running checksum. */
static int put_all(FILE *f, EVP_MD_CTX *m, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (!EVP_DigestUpdate(m, p, n) || fwrite(p, 1, n, f) != n)
        return -EIO;
    return 0;
}

static int write_body(FILE *f, EVP_MD_CTX *m, struct cache_w *w,
                      const zone_t *z, uint64_t zsize,
                      const uint8_t zsha[32], uint32_t serial)
{
    uint8_t h[64];
    int r;
    memcpy(h, MAGIC, 4);
    put32(h + 4, VERSION);
    put64(h + 8, zsize);
    if ((r = put_all(f, m, h, 16)) || (r = put_all(f, m, zsha, 32)))
        return r;
    put32(h, serial);
    put32(h + 4, (uint32_t)z->origin_len);
    if ((r = put_all(f, m, h, 8)) ||
        (r = put_all(f, m, z->origin, z->origin_len)))
        return r;
    qsort(w->ent, w->n, sizeof(w->ent[0]), ent_cmp);
    put64(h, w->n);
    if ((r = put_all(f, m, h, 8)))
        return r;
    for (size_t i = 0; i < w->n; i++) {
        memcpy(h, w->ent[i].dg, CACHE_DIGEST);
        put64(h + CACHE_DIGEST, w->ent[i].off);
        if ((r = put_all(f, m, h, IDX_SIZE)))
            return r;
    }
    put64(h, w->data.len);
    if ((r = put_all(f, m, h, 8)) ||
        (r = put_all(f, m, w->data.buf, w->data.len)))
        return r;
    unsigned l = 0;
    if (!EVP_DigestFinal_ex(m, h, &l) || fwrite(h, 1, 32, f) != 32)
        return -EIO;
    return 0;
}

int cache_w_write(struct cache_w *w, const char *path, const zone_t *z,
                  uint64_t zsize, const uint8_t zsha[32], uint32_t serial,
                  signer_diag_t *diag)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    EVP_MD_CTX *m = NULL;
    FILE *f = NULL;
    int fd = -1, r;
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    if ((r = cache_md_new(&m)))
        goto out;
    if ((fd = mkstemp(tmp)) < 0) {
        r = -errno;
        goto out;
    }
    if (!(f = fdopen(fd, "w"))) {
        r = -errno;
        close(fd);
        unlink(tmp);
        goto out;
    }
    fchmod(fd, 0644);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if ((r = write_body(f, m, w, z, zsize, zsha, serial)) == 0 &&
        (fflush(f) != 0 || fsync(fileno(f)) != 0))
        r = -errno;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
    if (r == 0)
        r = writer_dir_fsync(path);
    else
        unlink(tmp);
out:
    if (r)
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
                 strerror(r < 0 && r > -4096 ? -r : EIO));
    EVP_MD_CTX_free(m);
    free(tmp);
    return r;
}

/* ---------------------------------------------------------------- */
/* Reading                                                            */

/* Size and SHA-256 of the file at PATH. */
static int file_sha256(const char *path, uint64_t *size, uint8_t sha[32])
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    EVP_MD_CTX *m = NULL;
    size_t bs = 4 << 20;
    uint8_t *buf = malloc(bs);
    uint64_t total = 0;
    int r = 0;
    if (!buf || (r = cache_md_new(&m)))
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, bs);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(m, buf, (size_t)n)) {
            r = SIGNER_EIO;
            goto out;
        }
        total += (uint64_t)n;
    }
    unsigned l = 0;
    if (!EVP_DigestFinal_ex(m, sha, &l))
        r = SIGNER_EIO;
    *size = total;
out:
    if (!buf && !r)
        r = -ENOMEM;
    EVP_MD_CTX_free(m);
    free(buf);
    close(fd);
    return r;
}

/* Structure and checksum of the mapped cache; 0 if usable. */
static int cache_parse(struct cache *c, const zone_t *z, uint64_t *zsize,
                       const uint8_t **zsha)
{
    const uint8_t *p = c->map, *end = c->map + c->size;
    uint8_t sha[32];
    if (c->size < 16 + 32 + 8 + 8 + 8 + 32 || memcmp(p, MAGIC, 4) != 0 ||
        get32(p + 4) != VERSION)
        return -1;
    SHA256(c->map, c->size - 32, sha);
    if (memcmp(sha, end - 32, 32) != 0)
        return -1;
    end -= 32;
    *zsize = get64(p + 8);
    *zsha = p + 16;
    p += 48;
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
    if (c->dlen != (uint64_t)(end - p))
        return -1;
    c->data = p;
    return 0;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    if (c->map)
        munmap(c->map, c->size);
    free(c);
}

int cache_open(struct cache **out, const char *cache_path,
               const char *zone_path, const zone_t *z)
{
    struct cache *c = calloc(1, sizeof(*c));
    struct stat st;
    uint64_t zsize = 0, fsize = 0;
    const uint8_t *zsha;
    uint8_t fsha[32];
    int r = -1;
    if (!c)
        return -ENOMEM;
    int fd = open(cache_path, O_RDONLY);
    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        goto fail;
    }
    c->size = (size_t)st.st_size;
    c->map = mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        goto fail;
    }
    if (cache_parse(c, z, &zsize, &zsha) != 0 ||
        stat(zone_path, &st) != 0 || (uint64_t)st.st_size != zsize ||
        file_sha256(zone_path, &fsize, fsha) != 0 || fsize != zsize ||
        memcmp(fsha, zsha, 32) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    cache_free(c);
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

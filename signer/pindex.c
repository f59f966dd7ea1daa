/*
 * signer/pindex.c - the patch index OUT.zsp: what a later run needs to
 * make its output by editing OUT instead of reading the whole zone again
 * (patch.c).  Written beside OUT and OUT.zsc by every run that writes a
 * cache, when the zone is fit (see patch.c for which zones are).
 *
 * The input is cut into chunks: runs of whole records, cut before an
 * owner line (a line that starts with a relative owner name) whose last
 * label (its group: a delegation and its glue share it) hashes to 0
 * modulo CHUNK_EVERY and differs from the group of the owner line before
 * it.  The cuts depend on the text alone, so an edit
 * changes the chunk it falls in and the same chunks come back run after
 * run.  No cut falls inside parentheses (found with a small lexer that
 * knows comments, quotes and escapes), after a line ending in a
 * backslash, or inside a quoted string spanning lines (such a file is not
 * fit); every directive ($ORIGIN, $TTL) must lie in the first chunk,
 * which every run parses, so each later chunk is read in the state the
 * first leaves the scanner in.
 *
 * Layout (host byte order: the index never leaves the machine that wrote
 * it; the magic and the endianness word say so):
 *   struct pidx_hdr
 *   chunks[nchunks] (input order), names[nnames] (canonical order),
 *   chain[nchain] (hash order), keys[keys_len], bitmaps[bm_len], each
 *   padded to 8 octets
 *   u64 XXH3-64 of everything between the header and it (also in the
 *   header, whose own XXH3-64 it holds too)
 * A name's entry has its offset in OUT (its text runs to the next name's
 * offset, the last to OUT's size), its sort key, its flags (PN_*), the
 * input chunk its records came from (id) and how many chunks hold them,
 * and its numbers of RRsets and signed RRsets.  The chain has every NSEC3
 * record's hash and type bitmap.  OUT and OUT.zsc are known by size and
 * XXH3-128 digest: the index is used only while both are the files it was
 * written with (the cache is checked when it is read, OUT as it is copied
 * from), so the three files may be copied or moved together.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"

#define PIDX_MAGIC "ZGPIDX01"
#define PIDX_VERSION 3
#define PIDX_ENDIAN 0x01020304u

/* One owner line in CHUNK_EVERY (of those that change the owner) may
 * start a chunk: about 8 names, a few hundred octets of a TLD's text. */
#define CHUNK_EVERY 2

/* ---------------------------------------------------------------- */
/* Chunks                                                             */

static bool owner_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '*' || ch == '_' || ch == '-' ||
           ch == '@' || ch == '\\';
}

/* Where the '(' at X (on the line from LS) ends: the offset after its
 * matching ')'; X itself if the '(' is in a comment, a quoted string or
 * escaped (no group); SIZE_MAX if it never closes or a string is open at
 * the end of the file. */
static size_t paren_end(const char *b, size_t len, size_t ls, size_t x)
{
    bool q = false;
    for (size_t i = ls; i < x; i++) {
        if (b[i] == '\\') {
            i++;
        } else if (b[i] == '"') {
            q = !q;
        } else if (b[i] == ';' && !q) {
            return x; /* in a comment */
        }
    }
    if (q || (x > ls && b[x - 1] == '\\'))
        return x;
    int depth = 0;
    for (size_t i = x; i < len; i++) {
        char ch = b[i];
        if (ch == '\\') {
            i++;
        } else if (ch == '"') {
            const char *e = b + i + 1;
            for (;;) {
                e = memchr(e, '"', len - (size_t)(e - b));
                if (!e)
                    return SIZE_MAX;
                size_t bs = 0;
                while (e - bs - 1 > b + i && e[-(ptrdiff_t)bs - 1] == '\\')
                    bs++;
                if (bs % 2 == 0)
                    break;
                e++;
            }
            i = (size_t)(e - b);
        } else if (ch == ';') {
            const char *e = memchr(b + i, '\n', len - i);
            if (!e)
                return SIZE_MAX;
            i = (size_t)(e - b);
        } else if (ch == '(') {
            depth++;
        } else if (ch == ')') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return SIZE_MAX;
}

/* Is there a quoted string on the line [LS, LE) left open at its end? */
static bool quote_open(const char *b, size_t ls, size_t le)
{
    bool q = false;
    for (size_t i = ls; i < le; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            q = !q;
        else if (b[i] == ';' && !q)
            return false;
    }
    return q;
}

/* A scan of the lines that start in [from, to) of the text B (LEN
 * octets): its cuts, and the digests of the chunks between them. */
struct cscan {
    const char *b;
    size_t len, from, to;
    /* state at a line start */
    size_t pfree;        /* no cut before offset pfree (parentheses) */
    size_t nextp;        /* next '(' not yet looked at */
    uint64_t line;
    const char *prev_owner, *prev_tok; /* group, text of the last owner */
    size_t prev_olen, prev_tl;
    bool prev_bs, any_cut, dollar;
    bool lean;           /* give the pages behind back */
    /* cuts: off[0..n), lines[0..n); dg[k] is the chunk off[k]..off[k+1]
     * (nd of them: the last chunk's end is not known here) */
    uint64_t *off, *lines;
    uint8_t (*dg)[PIDX_DIGEST];
    size_t n, nd, cap, dcap, given;
    int ret; /* 0, -1 unfit, -ENOMEM */
};

static int cs_cut(struct cscan *cs, size_t at, bool hash_before)
{
    if (cs->n == cs->cap) {
        size_t c = cs->cap ? 2 * cs->cap : 4096;
        uint64_t *o = realloc(cs->off, c * sizeof(*o));
        if (!o)
            return -ENOMEM;
        cs->off = o;
        uint64_t *l = realloc(cs->lines, c * sizeof(*l));
        if (!l)
            return -ENOMEM;
        cs->lines = l;
        cs->cap = c;
    }
    if (hash_before && cs->n > 0) {
        if (cs->nd == cs->dcap) {
            size_t c = cs->dcap ? 2 * cs->dcap : 4096;
            void *d = realloc(cs->dg, c * sizeof(*cs->dg));
            if (!d)
                return -ENOMEM;
            cs->dg = d;
            cs->dcap = c;
        }
        uint64_t s = cs->off[cs->n - 1];
        XXH128_hash_t h = XXH3_128bits(cs->b + s, at - s);
        XXH128_canonicalFromHash((XXH128_canonical_t *)cs->dg[cs->nd++], h);
    }
    cs->off[cs->n] = at;
    cs->lines[cs->n++] = cs->line;
    return 0;
}

static void cs_scan(struct cscan *cs);

/* The scan works on a copy of its state on its own stack: the two halves'
 * states lie side by side in the caller's frame, and their updates at
 * every line would fight over the same cache lines. */
static void *cs_run(void *arg)
{
    struct cscan *out = arg, l = *out;
    cs_scan(&l);
    *out = l;
    return NULL;
}

static void cs_scan(struct cscan *cs)
{
    const char *b = cs->b;
    size_t len = cs->len;
    /* quotes and parentheses are looked for up to the scan's end only */
    size_t lim = cs->to;
    const char *nq = cs->from < lim ? memchr(b + cs->from, '"',
                                             lim - cs->from)
                                    : NULL;
    for (size_t ls = cs->from; ls < cs->to; cs->line++) {
        const char *nl = memchr(b + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - b) : len;
        /* parentheses opened on this line */
        while (cs->nextp <= le) {
            const char *p = cs->nextp < lim
                                ? memchr(b + cs->nextp, '(', lim - cs->nextp)
                                : NULL;
            if (!p || (size_t)(p - b) > le) {
                cs->nextp = p ? (size_t)(p - b) : lim + 1;
                break;
            }
            size_t x = (size_t)(p - b), e = paren_end(b, len, ls, x);
            if (e == SIZE_MAX) {
                cs->ret = -1;
                return;
            }
            if (e > cs->pfree)
                cs->pfree = e;
            cs->nextp = (e > x ? e : x + 1);
        }
        /* a quoted string left open at the end of a line */
        if (nq && (size_t)(nq - b) < le) {
            if (quote_open(b, ls, le) && ls >= cs->pfree) {
                cs->ret = -1;
                return;
            }
            nq = le < lim ? memchr(b + le, '"', lim - le) : NULL;
        }
        char c0 = b[ls];
        if (c0 == '$') {
            cs->dollar = true;
            if (cs->any_cut) { /* directives only in the first chunk */
                cs->ret = -1;
                return;
            }
        } else if (cs->prev_tok && ls + cs->prev_tl < le &&
                   (b[ls + cs->prev_tl] == ' ' ||
                    b[ls + cs->prev_tl] == '\t') &&
                   memcmp(b + ls, cs->prev_tok, cs->prev_tl) == 0) {
            /* the owner of the owner line before: the same group (most
             * lines of a zone; no cut) */
        } else if (owner_char(c0) && ls >= cs->pfree && !cs->prev_bs) {
            /* the owner's group: its last label, which a delegation and
             * its glue share (a relative name); absolute names are never
             * cut before */
            size_t ol = 0, g = 0;
            while (ls + ol < le && (unsigned char)b[ls + ol] > ' ')
                ol++;
            if (memchr(b + ls, '\\', ol)) { /* escapes: the careful way */
                ol = 0;
                while (ls + ol < le && b[ls + ol] != ' ' &&
                       b[ls + ol] != '\t' && b[ls + ol] != '\r') {
                    if (b[ls + ol] == '\\')
                        ol++;
                    else if (b[ls + ol] == '.')
                        g = ol + 1;
                    ol++;
                }
                if (ol > le - ls)
                    ol = le - ls;
            } else {
                const char *d = memrchr(b + ls, '.', ol);
                g = d ? (size_t)(d - (b + ls)) + 1 : 0;
            }
            bool absolute = ol > 0 && b[ls + ol - 1] == '.';
            const char *grp = b + ls + g;
            size_t gl = ol - (g < ol ? g : ol);
            bool same = cs->prev_owner && gl == cs->prev_olen &&
                        memcmp(cs->prev_owner, grp, gl) == 0;
            if (!same && !absolute && ls > 0 &&
                XXH3_64bits(grp, gl) % CHUNK_EVERY == 0) {
                if (cs_cut(cs, ls, true) != 0) {
                    cs->ret = -ENOMEM;
                    return;
                }
                cs->any_cut = true;
                /* the pages behind: given back (the input is mapped) */
                if (cs->lean && ls >= cs->given + (8u << 20)) {
                    size_t to = ls & ~(size_t)4095;
                    madvise((void *)(b + cs->given), to - cs->given,
                            MADV_DONTNEED);
                    cs->given = to;
                }
            }
            cs->prev_owner = grp;
            cs->prev_olen = gl;
            cs->prev_tok = b + ls;
            cs->prev_tl = ol;
        }
        cs->prev_bs = le > ls && b[le - 1] == '\\';
        ls = le + 1;
    }
    return;
}

static void cs_free(struct cscan *cs)
{
    free(cs->off);
    free(cs->lines);
    free(cs->dg);
}

/* PC from one scan, or two joined (the chunk across the join and the
 * last chunk are digested here). */
static int cs_into(struct pchunks *pc, struct cscan *a, struct cscan *b2,
                   uint64_t lines_a)
{
    size_t n = a->n + (b2 ? b2->n : 0);
    pc->n = n;
    pc->off = malloc((n + 1) * sizeof(*pc->off));
    pc->line = malloc((n + 1) * sizeof(*pc->line));
    pc->dg = malloc((n + 1) * sizeof(*pc->dg));
    if (!pc->off || !pc->line || !pc->dg)
        return -ENOMEM;
    memcpy(pc->off, a->off, a->n * sizeof(*pc->off));
    memcpy(pc->line, a->lines, a->n * sizeof(*pc->line));
    if (a->nd)
        memcpy(pc->dg, a->dg, a->nd * sizeof(*pc->dg));
    if (b2) {
        size_t k = a->n;
        if (b2->n) {
            memcpy(pc->off + k, b2->off, b2->n * sizeof(*pc->off));
            for (size_t i = 0; i < b2->n; i++)
                pc->line[k + i] = b2->lines[i] + lines_a;
            /* the chunk across the join, then the second scan's */
            XXH128_hash_t h = XXH3_128bits(a->b + a->off[k - 1],
                                           b2->off[0] - a->off[k - 1]);
            XXH128_canonicalFromHash((XXH128_canonical_t *)pc->dg[k - 1], h);
            if (b2->nd)
                memcpy(pc->dg + k, b2->dg, b2->nd * sizeof(*pc->dg));
        }
    }
    pc->off[n] = a->len;
    uint64_t s = pc->off[n - 1];
    XXH128_hash_t h = XXH3_128bits(a->b + s, a->len - s);
    XXH128_canonicalFromHash((XXH128_canonical_t *)pc->dg[n - 1], h);
    return 0;
}

/* The second half's scan, from the line start M: it starts in the state
 * the first half's scan is expected to end in (checked when both ran). */
static void cs_second(struct cscan *s2, const char *b, size_t len, size_t m)
{
    memset(s2, 0, sizeof(*s2));
    s2->b = b;
    s2->len = len;
    s2->from = s2->given = m;
    s2->to = len;
    s2->nextp = m;
    s2->line = 1;
    s2->prev_bs = m >= 2 && b[m - 2] == '\\';
    /* the last owner line before M: its group and text */
    size_t le = m - 1; /* the newline ending the line before M */
    while (le > 0) {
        size_t q = le;
        while (q > 0 && b[q - 1] != '\n')
            q--;
        if (owner_char(b[q]) && !memchr(b + q, '\\', le - q)) {
            size_t ol = 0;
            while (q + ol < le && (unsigned char)b[q + ol] > ' ')
                ol++;
            const char *d = memrchr(b + q, '.', ol);
            size_t g = d ? (size_t)(d - (b + q)) + 1 : 0;
            s2->prev_tok = b + q;
            s2->prev_tl = ol;
            s2->prev_owner = b + q + g;
            s2->prev_olen = ol - g;
            return;
        }
        if (q == 0)
            return;
        le = q - 1;
    }
}

int pchunks_make(const char *b, size_t len, bool lean, struct pchunks *pc)
{
    struct cscan a = {.b = b, .len = len, .to = len, .line = 1,
                      .lean = lean},
                 s2, s0;
    memset(pc, 0, sizeof(*pc));
    int r = cs_cut(&a, 0, false);
    if (r)
        return r;
    /* a large text in two halves, on two threads; the second half
     * assumes the state the first ends in, and that is checked: if it
     * is not so, the text is scanned again in one piece */
    const char *nl = !lean && len > (16u << 20)
                         ? memchr(b + len / 2, '\n', len - len / 2)
                         : NULL;
    size_t m = nl ? (size_t)(nl - b) + 1 : len;
    pthread_t th;
    bool two = false;
    if (m < len && owner_char(b[m])) {
        cs_second(&s2, b, len, m);
        s0 = s2; /* what the second half assumes */
        two = s2.prev_tok && !s2.prev_bs &&
              pthread_create(&th, NULL, cs_run, &s2) == 0;
        if (two)
            a.to = m;
        else
            cs_free(&s2);
    }
    cs_run(&a);
    if (two) {
        pthread_join(th, NULL);
        bool ok = a.ret == 0 && s2.ret == 0 && a.pfree <= m && !s2.dollar &&
                  !a.prev_bs && a.prev_tok && a.prev_tl == s0.prev_tl &&
                  memcmp(a.prev_tok, s0.prev_tok, a.prev_tl) == 0 &&
                  a.prev_olen == s0.prev_olen &&
                  memcmp(a.prev_owner, s0.prev_owner, a.prev_olen) == 0;
        int err = a.ret == -ENOMEM || s2.ret == -ENOMEM ? -ENOMEM : 0;
        if (ok)
            err = cs_into(pc, &a, &s2, a.line - 1);
        cs_free(&a);
        cs_free(&s2);
        if (ok || err) {
            if (err)
                pchunks_free(pc);
            return err;
        }
        /* again, in one piece */
        memset(&a, 0, sizeof(a));
        a.lean = lean;
        a.b = b;
        a.len = a.to = len;
        a.line = 1;
        if ((r = cs_cut(&a, 0, false)))
            return r;
        cs_run(&a);
    }
    r = a.ret ? a.ret : cs_into(pc, &a, NULL, 0);
    cs_free(&a);
    if (r)
        pchunks_free(pc);
    return r;
}

void pchunks_free(struct pchunks *pc)
{
    free(pc->off);
    free(pc->line);
    free(pc->dg);
    memset(pc, 0, sizeof(*pc));
}

size_t pchunks_of_line(const struct pchunks *pc, uint64_t line)
{
    size_t lo = 0, hi = pc->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (pc->line[mid] <= line)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---------------------------------------------------------------- */
/* The file                                                           */

int pidx_file_get(const char *path, struct pidx_file *f)
{
    int fd = open(path, O_RDONLY);
    uint8_t *buf = malloc(1u << 20);
    XXH3_state_t st;
    int r = fd >= 0 && buf ? 0 : -1;
    XXH3_128bits_reset(&st);
    f->size = 0;
    while (!r) {
        ssize_t n = read(fd, buf, 1u << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = -1;
        if (n <= 0)
            break;
        XXH3_128bits_update(&st, buf, (size_t)n);
        f->size += (uint64_t)n;
    }
    if (!r)
        XXH128_canonicalFromHash((XXH128_canonical_t *)f->dg,
                                 XXH3_128bits_digest(&st));
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

void pidx_free(struct pidx *x)
{
    if (!x)
        return;
    if (x->buf) {
        free(x->buf);
    } else {
        free(x->chunks);
        free(x->names);
        free(x->chain);
        free(x->keys);
        free(x->bm);
        free(x->multi);
    }
    memset(x, 0, sizeof(*x));
}

/* The header's own digest (its hsum field taken as 0). */
static uint64_t hdr_sum(const struct pidx_hdr *h)
{
    struct pidx_hdr t = *h;
    t.hsum = 0;
    return XXH3_64bits(&t, sizeof(t));
}

int pidx_write_body(const struct pidx *x, const char *path, int *fdp,
                    char **tmpp, uint64_t *sum)
{
    const struct pidx_hdr *h = &x->h;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    static const uint8_t zero[8];
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return -errno;
    }
    fchmod(fd, 0644);
    struct {
        const void *p;
        size_t n;
    } part[] = {
        {h, sizeof(*h)}, /* written again at the end */
        {x->chunks, h->nchunks * sizeof(*x->chunks)},
        {x->names, h->nnames * sizeof(*x->names)},
        {x->chain, h->nchain * sizeof(*x->chain)},
        {x->keys, h->keys_len},
        {x->bm, h->bm_len},
        {x->multi, h->nmulti * sizeof(*x->multi)},
    };
    XXH3_state_t *st = XXH3_createState();
    int r = st ? 0 : -ENOMEM;
    if (st)
        XXH3_64bits_reset(st);
    for (size_t i = 0; i < sizeof(part) / sizeof(part[0]) && !r; i++) {
        size_t pad = pad8(part[i].n) - part[i].n;
        if (i > 0) {
            XXH3_64bits_update(st, part[i].p, part[i].n);
            XXH3_64bits_update(st, zero, pad);
        }
        size_t want = part[i].n + pad, done = 0;
        while (done < want) {
            /* writev may write part: go on from where it stopped */
            struct iovec w[2];
            int nv = 0;
            if (done < part[i].n)
                w[nv++] = (struct iovec){(char *)part[i].p + done,
                                         part[i].n - done};
            size_t pd = done > part[i].n ? done - part[i].n : 0;
            if (pad > pd)
                w[nv++] = (struct iovec){(char *)zero + pd, pad - pd};
            ssize_t n = writev(fd, w, nv);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r = -EIO;
                break;
            }
            done += (size_t)n;
        }
    }
    if (!r) {
        *sum = XXH3_64bits_digest(st);
        if (write(fd, sum, 8) != 8)
            r = -EIO;
    }
    XXH3_freeState(st);
    if (r) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return r;
    }
    *fdp = fd;
    *tmpp = tmp;
    return 0;
}

int pidx_write_end(struct pidx *x, int fd, char *tmp, const char *path,
                   uint64_t sum)
{
    x->h.body_sum = sum;
    x->h.hsum = hdr_sum(&x->h);
    int r = 0;
    if (pwrite(fd, &x->h, sizeof(x->h), 0) != (ssize_t)sizeof(x->h))
        r = -EIO;
    if (close(fd) != 0 && !r)
        r = -EIO;
    if (!r && rename(tmp, path) != 0)
        r = -errno;
    if (r)
        unlink(tmp);
    free(tmp);
    return r;
}

int pidx_write(struct pidx *x, const char *path)
{
    int fd;
    char *tmp;
    uint64_t sum;
    int r = pidx_write_body(x, path, &fd, &tmp, &sum);
    return r ? r : pidx_write_end(x, fd, tmp, path, sum);
}

int pidx_read(struct pidx *x, const char *path)
{
    memset(x, 0, sizeof(*x));
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)(sizeof(x->h) + 8)) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size);
    size_t got = 0;
    while (buf && got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != size) {
        free(buf);
        return -1;
    }
    x->buf = buf;
    uint64_t sum;
    memcpy(&sum, buf + size - 8, 8);
    memcpy(&x->h, buf, sizeof(x->h));
    const struct pidx_hdr *h = &x->h;
    size_t o = pad8(sizeof(*h));
    if (memcmp(h->magic, PIDX_MAGIC, 8) != 0 || h->version != PIDX_VERSION ||
        h->endian != PIDX_ENDIAN || h->hsum != hdr_sum(h) ||
        h->body_sum != sum || XXH3_64bits(buf + o, size - 8 - o) != sum)
        goto bad;
    size_t lens[6] = {h->nchunks * sizeof(*x->chunks),
                      h->nnames * sizeof(*x->names),
                      h->nchain * sizeof(*x->chain), h->keys_len, h->bm_len,
                      h->nmulti * sizeof(*x->multi)};
    if (h->nchunks > size || h->nnames > size || h->nchain > size ||
        h->nmulti > size)
        goto bad;
    uint8_t *at[6];
    for (int i = 0; i < 6; i++) {
        if (lens[i] > size || o + pad8(lens[i]) > size - 8)
            goto bad;
        at[i] = buf + o;
        o += pad8(lens[i]);
    }
    if (o != size - 8)
        goto bad;
    x->chunks = (struct pidx_chunk *)at[0];
    x->names = (struct pidx_name *)at[1];
    x->chain = (struct pidx_link *)at[2];
    x->keys = at[3];
    x->bm = at[4];
    x->multi = (struct pidx_multi *)at[5];
    for (uint64_t i = 0; i < h->nmulti; i++)
        if (x->multi[i].name >= h->nnames)
            goto bad;
    /* every key and bitmap inside its blob */
    for (uint64_t i = 0; i < h->nnames; i++)
        if ((uint64_t)x->names[i].koff + x->names[i].klen > h->keys_len)
            goto bad;
    for (uint64_t i = 0; i < h->nchain; i++)
        if (x->chain[i].bmoff + x->chain[i].bmlen > h->bm_len)
            goto bad;
    return 0;
bad:
    free(buf);
    memset(x, 0, sizeof(*x));
    return -1;
}

/* ---------------------------------------------------------------- */
/* Built from a whole run                                              */

/* Decodes the 32-character base32hex first label of an NSEC3 owner key
 * (after the origin's key) into HASH; false if it is not one. */
static bool b32_label(const uint8_t *key, size_t klen, size_t skip,
                      uint8_t hash[20])
{
    if (klen != skip + 33 || key[klen - 1] != 0)
        return false;
    uint64_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = skip; i < skip + 32; i++) {
        int ch = key[i], v;
        if (ch >= '0' && ch <= '9')
            v = ch - '0';
        else if (ch >= 'a' && ch <= 'v')
            v = ch - 'a' + 10;
        else
            return false;
        acc = acc << 5 | (uint64_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            hash[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == 20;
}

uint64_t pidx_content(const zone_t *z, size_t i, size_t e)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    for (size_t j = i; j < e; j++) {
        rec_t r;
        rec_at(z, j, &r);
        if (r.flags & RF_GEN)
            continue;
        uint8_t h[8];
        put16(h, r.type);
        put32(h + 2, r.ttl);
        put16(h + 6, r.rdlen);
        XXH3_64bits_update(&st, h, 8);
        XXH3_64bits_update(&st, r.rdata, r.rdlen);
    }
    return XXH3_64bits_digest(&st);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* The owner text of the line at P (to the first blank). */
static size_t owner_len(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && *q != ' ' && *q != '\t' && *q != '\n')
        q++;
    return (size_t)(q - p);
}

int pidx_build(struct pidx *x, const zone_t *z, const signer_opts_t *o,
               const struct pchunks *pc, const char *out_text,
               size_t out_len)
{
    size_t ncap = 0, kcap = 0, ccap = 0, bcap = 0, mcap = 0;
    size_t skip = z->okey_len;
    int r = 0;
    struct pidx_hdr *h = &x->h;
    memcpy(h->magic, PIDX_MAGIC, 8);
    h->version = PIDX_VERSION;
    h->endian = PIDX_ENDIAN;
    h->nchunks = pc->n;
    h->next_id = (uint32_t)pc->n;
    if (!(x->chunks = calloc(pc->n ? pc->n : 1, sizeof(*x->chunks))))
        return -ENOMEM;
    for (size_t k = 0; k < pc->n; k++) {
        memcpy(x->chunks[k].dg, pc->dg[k], PIDX_DIGEST);
        x->chunks[k].id = (uint32_t)k;
    }
    const uint8_t *cutkey = NULL;
    size_t cutlen = 0;
    const char *tp = out_text, *tend = out_text + out_len;
    size_t given = 0;
    XXH3_state_t ost;
    XXH3_128bits_reset(&ost);
    for (size_t i = 0; i < z->n && !r;) {
        size_t e = zone_run_end(z, i, false);
        rec_t a;
        rec_at(z, i, &a);
        struct pidx_name nm = {0};
        bool ns = false, ds = false, dname = false, nsec3 = false;
        uint32_t ch0 = UINT32_MAX;
        unsigned nch = 0, rrsets = 0, nsigned = 0;
        for (size_t j = i; j < e; j++) {
            rec_t r2;
            rec_at(z, j, &r2);
            ns |= r2.type == T_NS;
            ds |= r2.type == T_DS;
            dname |= r2.type == T_DNAME;
            nsec3 |= r2.type == T_NSEC3;
            if (!(r2.flags & RF_GEN)) {
                size_t k = pchunks_of_line(pc, r2.line);
                x->chunks[k].nrec++;
                if (ch0 == UINT32_MAX) {
                    ch0 = (uint32_t)k;
                    nch = 1;
                } else if (k != ch0) {
                    nch = 2; /* more than one: never patched */
                }
                nm.flags |= PN_INPUT;
            }
        }
        for (size_t j = i; j < e;) {
            rec_t r2;
            rec_at(z, j, &r2);
            rrsets++;
            if (r2.flags & RF_SIGN)
                nsigned++;
            j = zone_run_end_in(z, j, e, true);
        }
        bool apex = a.klen == skip;
        if (cutkey && key_under(cutkey, cutlen, a.key, a.klen)) {
            nm.flags |= PN_OCCL;
        } else {
            bool deleg = !apex && ns;
            if (deleg || dname) {
                cutkey = a.key;
                cutlen = a.klen;
            } else {
                cutkey = NULL;
            }
            if (!nsec3 || (nm.flags & PN_INPUT))
                if (!(o->opt_out && deleg && !ds))
                    nm.flags |= PN_CHAIN;
        }
        nm.flags |= (apex ? PN_APEX : 0) | (!apex && ns ? PN_DELEG : 0) |
                    (ds ? PN_DS : 0) | (nsec3 ? PN_NSEC3 : 0) |
                    (dname ? PN_DNAME : 0);
        nm.chunk = ch0;
        nm.nchunk = (uint8_t)nch;
        nm.content = pidx_content(z, i, e);
        if (nch > 1) /* every chunk of the name, once each */
            for (size_t j = i; j < e && !r; j++) {
                rec_t r2;
                rec_at(z, j, &r2);
                if (r2.flags & RF_GEN)
                    continue;
                uint32_t k = (uint32_t)pchunks_of_line(pc, r2.line);
                bool seen = false;
                for (uint64_t m = h->nmulti; m-- > 0 &&
                                             x->multi[m].name == h->nnames;)
                    seen |= x->multi[m].chunk == k;
                if (seen)
                    continue;
                if ((r = grow((void **)&x->multi, &mcap, h->nmulti + 1,
                              sizeof(*x->multi))))
                    break;
                x->multi[h->nmulti++] =
                    (struct pidx_multi){(uint32_t)h->nnames, k};
            }
        nm.rrsets = (uint8_t)(rrsets > 255 ? 255 : rrsets);
        nm.nsigned = (uint8_t)(nsigned > 255 ? 255 : nsigned);
        nm.klen = a.klen;
        nm.koff = (uint32_t)h->keys_len;
        /* its text: the lines from here on with the same owner text */
        if (tp >= tend) {
            r = -EINVAL;
            break;
        }
        nm.off = (uint64_t)(tp - out_text);
        size_t ol = owner_len(tp, tend);
        const char *first = tp;
        while (tp < tend && (size_t)(tend - tp) > ol && tp[ol] == ' ' &&
               memcmp(tp, first, ol) == 0) {
            const char *nl = memchr(tp, '\n', (size_t)(tend - tp));
            tp = nl ? nl + 1 : tend;
        }
        if (tp == first) {
            r = -EINVAL;
            break;
        }
        /* the text's pages behind: digested, then given back (OUT is
         * mapped whole) */
        if ((size_t)(tp - out_text) >= given + (8u << 20)) {
            size_t to = (size_t)(tp - out_text) & ~(size_t)4095;
            XXH3_128bits_update(&ost, out_text + given, to - given);
            madvise((void *)(out_text + given), to - given, MADV_DONTNEED);
            given = to;
        }
        if ((r = grow((void **)&x->names, &ncap, h->nnames + 1,
                      sizeof(*x->names))) ||
            (r = grow((void **)&x->keys, &kcap, h->keys_len + a.klen, 1)))
            break;
        x->names[h->nnames++] = nm;
        memcpy(x->keys + h->keys_len, a.key, a.klen);
        h->keys_len += a.klen;
        if (nsec3) {
            struct pidx_link l = {0};
            rec_t n3 = {0};
            for (size_t j = i; j < e; j++) {
                rec_at(z, j, &n3);
                if (n3.type == T_NSEC3)
                    break;
            }
            size_t hl = 5 + (n3.rdlen > 4 ? n3.rdata[4] : 0);
            if (!b32_label(a.key, a.klen, skip, l.hash) || n3.rdlen < hl + 1 ||
                n3.rdlen < hl + 1 + n3.rdata[hl]) {
                r = -EINVAL;
                break;
            }
            size_t bo = hl + 1 + n3.rdata[hl];
            l.bmoff = h->bm_len;
            l.bmlen = (uint32_t)(n3.rdlen - bo);
            if ((r = grow((void **)&x->chain, &ccap, h->nchain + 1,
                          sizeof(*x->chain))) ||
                (r = grow((void **)&x->bm, &bcap, h->bm_len + l.bmlen, 1)))
                break;
            memcpy(x->bm + h->bm_len, n3.rdata + bo, l.bmlen);
            h->bm_len += l.bmlen;
            x->chain[h->nchain++] = l;
        }
        i = e;
    }
    if (!r && tp != tend)
        r = -EINVAL; /* the text and the zone do not match */
    XXH3_128bits_update(&ost, out_text + given, out_len - given);
    XXH128_canonicalFromHash((XXH128_canonical_t *)h->out.dg,
                             XXH3_128bits_digest(&ost));
    h->out.size = out_len;
    return r;
}

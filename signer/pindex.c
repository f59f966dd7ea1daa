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
 * knows comments, quotes and escapes), before a line that opens a group,
 * after a line ending in a backslash, or inside a quoted string spanning
 * lines outside parentheses (such a file is not fit); every directive ($ORIGIN, $TTL) must lie in the first chunk,
 * which every run parses, so each later chunk is read in the state the
 * first leaves the scanner in.
 *
 * Layout (host byte order: the index never leaves the machine that wrote
 * it; the magic and the endianness word say so):
 *   struct pidx_hdr
 *   names[nnames] (canonical order), chain[nchain] (hash order),
 *   keys[keys_len], bitmaps[bm_len], multi[nmulti], chunks[nchunks]
 *   (input order), each padded to 8 octets (in the order they are made:
 *   the index is streamed to its file, never held whole in memory)
 *   u64 XXH3-64 of everything between the header and it (also in the
 *   header, whose own XXH3-64 it holds too)
 * A name's entry has its offset in OUT (its text runs to the next name's
 * offset, the last to OUT's size), its sort key, its flags (PN_*), the
 * input chunk its records came from (id) and how many chunks hold them,
 * and its numbers of RRsets and signed RRsets.  The chain has every NSEC3
 * record's hash and type bitmap.  OUT and OUT.zsc are known by size and
 * XXH3-128 digest (OUT's over its blocks' digests, fdig_*): the index is used only while both are the files it was
 * written with (the cache is checked when it is read, OUT as it is copied
 * from), so the three files may be copied or moved together.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"

#define PIDX_MAGIC "ZGPIDX01"
#define PIDX_VERSION 6
#define PIDX_ENDIAN 0x01020304u

/* One owner line in CHUNK_EVERY (of those that change the owner) may
 * start a chunk: about 8 names, a few hundred octets of a TLD's text. */
#define CHUNK_EVERY 2

/* ---------------------------------------------------------------- */
/* Chunks                                                             */

/* A bit per octet below 128 that may start an owner name: letters,
 * digits, '*', '_', '-', '@' and '\\' (a table, not a chain of tests: it
 * is asked at every line). */
#define OC_BIT(c) ((uint64_t)1 << ((c)&63))
#define OC_RANGE(lo, hi) ((OC_BIT(hi) << 1) - OC_BIT(lo))
static const uint64_t owner_chars[2] = {
    OC_RANGE('0', '9') | OC_BIT('*') | OC_BIT('-'),
    OC_RANGE('A', 'Z') | OC_RANGE('a', 'z') | OC_BIT('@') | OC_BIT('_') |
        OC_BIT('\\')};
#undef OC_BIT
#undef OC_RANGE

static inline bool owner_char(char ch)
{
    unsigned char c = (unsigned char)ch;
    return c < 128 && (owner_chars[c >> 6] >> (c & 63) & 1);
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
    const uint8_t *key; /* the digests' secret (PIDX_KEY octets) */
    size_t len, from, to;
    /* state at a line start */
    size_t pfree;        /* no cut before offset pfree (parentheses) */
    size_t nextp;        /* the '(' before it are looked at */
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
    size_t want; /* the arrays' first size, in cuts */
    int ret; /* 0, -1 unfit, -ENOMEM */
};

/* off[] and lines[] grown to room for C cuts. */
static int cs_grow(struct cscan *cs, size_t c)
{
    uint64_t *o = realloc(cs->off, c * sizeof(*o));
    if (!o)
        return -ENOMEM;
    cs->off = o;
    uint64_t *l = realloc(cs->lines, c * sizeof(*l));
    if (!l)
        return -ENOMEM;
    cs->lines = l;
    cs->cap = c;
    return 0;
}

/* Room in off[] and lines[] for the cuts of a block of 64 lines more. */
static int cs_room(struct cscan *cs)
{
    if (cs->cap - cs->n > 64)
        return 0;
    return cs_grow(cs, cs->cap ? 2 * cs->cap
                       : cs->want > 4096 ? cs->want
                                         : 4096);
}

static int cs_cut(struct cscan *cs, size_t at)
{
    if (cs_room(cs) != 0)
        return -ENOMEM;
    cs->off[cs->n] = at;
    cs->lines[cs->n++] = cs->line;
    return 0;
}

/* dg[] grown to room for C digests. */
static int cs_dgrow(struct cscan *cs, size_t c)
{
    void *d = realloc(cs->dg, c * sizeof(*cs->dg));
    if (!d)
        return -ENOMEM;
    cs->dg = d;
    cs->dcap = c;
    return 0;
}

/* The digest of CS's text [FROM, TO) under its secret. */
static inline void chunk_dg(const struct cscan *cs, uint64_t from,
                            uint64_t to, uint8_t dg[PIDX_DIGEST])
{
    XXH128_hash_t h =
        XXH3_128bits_withSecret(cs->b + from, to - from, cs->key, PIDX_KEY);
    XXH128_canonicalFromHash((XXH128_canonical_t *)dg, h);
}

/* The digests of the chunks whose ends are known: all but the last cut's.
 * The scan leaves them to be made a few at a time, not at every cut (a
 * cut is a coin toss; see cs_scan); their text is still in the caches. */
static int cs_digest(struct cscan *cs)
{
    size_t nd = cs->n ? cs->n - 1 : 0;
    if (nd <= cs->nd)
        return 0;
    if (nd > cs->dcap) {
        size_t c = cs->dcap ? 2 * cs->dcap : cs->cap;
        while (c < nd)
            c *= 2;
        if (cs_dgrow(cs, c) != 0)
            return -ENOMEM;
    }
    for (size_t k = cs->nd; k < nd; k++)
        chunk_dg(cs, cs->off[k], cs->off[k + 1], cs->dg[k]);
    cs->nd = nd;
    /* the pages behind the last cut: given back (the input is mapped;
     * every chunk before it is digested) */
    size_t at = cs->off[nd];
    if (cs->lean && at >= cs->given + (8u << 20)) {
        size_t end = at & ~(size_t)4095;
        madvise((void *)(cs->b + cs->given), end - cs->given, MADV_DONTNEED);
        cs->given = end;
    }
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

/* The 64 octets at P as masks, a bit per octet: *NL the newlines, *SP the
 * octets that may open a group or a string ('(' and '"'). */
static inline void nl_masks(const char *p, uint64_t *nlp, uint64_t *spp)
{
#if defined(__SSE2__)
    /* (written out: the compiler keeps a loop of four) */
    const __m128i nl = _mm_set1_epi8('\n'), op = _mm_set1_epi8('('),
                  qu = _mm_set1_epi8('"');
    const __m128i *q = (const __m128i *)(const void *)p;
    __m128i v0 = _mm_loadu_si128(q), v1 = _mm_loadu_si128(q + 1),
            v2 = _mm_loadu_si128(q + 2), v3 = _mm_loadu_si128(q + 3);
#define NL_MASK(v)                                                             \
    ((uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)))
#define SP_MASK(v)                                                             \
    ((uint64_t)(uint32_t)_mm_movemask_epi8(                                    \
        _mm_or_si128(_mm_cmpeq_epi8(v, op), _mm_cmpeq_epi8(v, qu))))
#define SP_EQ(v) _mm_or_si128(_mm_cmpeq_epi8(v, op), _mm_cmpeq_epi8(v, qu))
    *nlp =
        NL_MASK(v0) | NL_MASK(v1) << 16 | NL_MASK(v2) << 32 | NL_MASK(v3) << 48;
    /* (most blocks have neither: one mask says so) */
    *spp = 0;
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(SP_EQ(v0), SP_EQ(v1)),
                                       _mm_or_si128(SP_EQ(v2), SP_EQ(v3)))))
        *spp = SP_MASK(v0) | SP_MASK(v1) << 16 | SP_MASK(v2) << 32 |
               SP_MASK(v3) << 48;
#undef NL_MASK
#undef SP_MASK
#undef SP_EQ
#else
    uint64_t mn = 0, ms = 0;
    for (int k = 0; k < 64; k++) {
        mn |= (uint64_t)(p[k] == '\n') << k;
        ms |= (uint64_t)(p[k] == '(' || p[k] == '"') << k;
    }
    *nlp = mn;
    *spp = ms;
#endif
}

/* Are the N octets at P those at Q?  Loads of 16, 8 or 4 octets, the last
 * one ending at the N-th (overlapping the one before): nothing read past
 * either's N octets, and no call to memcmp for the short names nearly
 * every line compares. */
static inline bool same_octets(const char *p, const char *q, size_t n)
{
#if defined(__SSE2__)
    if (n >= 16) {
        for (size_t k = 0; k + 16 < n; k += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + k)),
                    y = _mm_loadu_si128((const __m128i *)(const void *)(q + k));
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) != 0xffff)
                return false;
        }
        __m128i x = _mm_loadu_si128(
                    (const __m128i *)(const void *)(p + n - 16)),
                y = _mm_loadu_si128(
                    (const __m128i *)(const void *)(q + n - 16));
        return _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) == 0xffff;
    }
#endif
    if (n >= 8) {
        uint64_t x, y;
        for (size_t k = 0; k + 8 < n; k += 8) {
            memcpy(&x, p + k, 8);
            memcpy(&y, q + k, 8);
            if (x != y)
                return false;
        }
        memcpy(&x, p + n - 8, 8);
        memcpy(&y, q + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t x, y, u, v;
        memcpy(&x, p, 4);
        memcpy(&y, q, 4);
        memcpy(&u, p + n - 4, 4);
        memcpy(&v, q + n - 4, 4);
        return ((x ^ y) | (u ^ v)) == 0;
    }
    return n == 0 ||
           (p[0] == q[0] && p[n / 2] == q[n / 2] && p[n - 1] == q[n - 1]);
}

/* The owner token at P (the line has N octets, the text AVAIL from P):
 * *OL its length (up to the first octet <= ' '), *DOT the place of its
 * last '.', if any, *ESC whether it holds a '\\'.  Sixteen octets at a
 * time where the text allows. */
static inline void owner_scan(const char *p, size_t n, size_t avail,
                              size_t *olp, size_t *dotp, bool *escp)
{
    size_t ol = 0;
#if defined(__SSE2__)
    const __m128i sp = _mm_set1_epi8(' '), dt = _mm_set1_epi8('.'),
                  bsl = _mm_set1_epi8('\\');
    while (ol + 16 <= avail) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + ol));
        unsigned ws = (unsigned)_mm_movemask_epi8(
                     _mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp)),
                 ds = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, dt)),
                 bs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bsl));
        unsigned lim = ws ? (unsigned)__builtin_ctz(ws) : 16,
                 keep = lim == 16 ? 0xffffu : (1u << lim) - 1;
        if (ds & keep)
            *dotp = ol + (size_t)(31 - __builtin_clz(ds & keep));
        if (bs & keep)
            *escp = true;
        if (ws) {
            *olp = ol + lim < n ? ol + lim : n;
            return;
        }
        ol += 16;
    }
#endif
    for (; ol < n; ol++) {
        unsigned char ch = (unsigned char)p[ol];
        if (ch <= ' ')
            break;
        if (ch == '.')
            *dotp = ol;
        else if (ch == '\\')
            *escp = true;
    }
    *olp = ol;
}

/* The owner token of the line [LS, LE) (the text has LEN octets): its
 * length, and where its group (its last label) starts.  (Returned, not
 * written through pointers: the scan's variables stay in registers.) */
struct otok {
    size_t ol, g;
};

static inline struct otok owner_token(const char *b, size_t ls, size_t le,
                                      size_t len)
{
    size_t ol = 0, g = 0, dot = SIZE_MAX;
    bool esc = false;
    owner_scan(b + ls, le - ls, len - ls, &ol, &dot, &esc);
    if (esc) { /* escapes: the careful way */
        ol = 0;
        while (ls + ol < le && b[ls + ol] != ' ' && b[ls + ol] != '\t' &&
               b[ls + ol] != '\r') {
            if (b[ls + ol] == '\\')
                ol++;
            else if (b[ls + ol] == '.')
                g = ol + 1;
            ol++;
        }
        if (ol > le - ls)
            ol = le - ls;
    } else {
        g = dot != SIZE_MAX ? dot + 1 : 0;
    }
    return (struct otok){ol, g};
}

/* Where no cut may fall before (pfree), and from where a '(' is looked
 * for (nextp); ret -1 if the text is unfit. */
struct pstate {
    size_t pfree, nextp;
    int ret;
};

/* The groups opened on the line [LS, LE), whose '(' or '"' the masks saw:
 * pfree and nextp moved past them; ret -1 if the text is unfit (a group
 * never closed, or a quoted string left open at the line's end). */
static struct pstate cs_parens(const char *b, size_t len, size_t ls, size_t le,
                               struct pstate ps)
{
    for (;;) {
        /* parentheses opened on this line (from where the groups before
         * ended) */
        size_t from = ps.nextp > ls ? ps.nextp : ls;
        const char *p = from < le ? memchr(b + from, '(', le - from) : NULL;
        if (!p)
            break;
        /* (looked at from where a group before ended on this line: a
         * string it closed is behind) */
        size_t x = (size_t)(p - b),
               e = paren_end(b, len, ps.pfree > ls ? ps.pfree : ls, x);
        if (e == SIZE_MAX) {
            ps.ret = -1;
            return ps;
        }
        if (e > x && e > ps.pfree) /* (a group, not a quoted '(') */
            ps.pfree = e;
        ps.nextp = (e > x ? e : x + 1);
    }
    /* a quoted string left open at the end of a line */
    if (ps.pfree <= le && memchr(b + ls, '"', le - ls) &&
        quote_open(b, ps.pfree > ls ? ps.pfree : ls, le))
        ps.ret = -1;
    return ps;
}

/* The hash a group is cut by (XXH3-64), written into the scan: the file
 * calls XXH3_64bits at other places too, so the compiler keeps it out of
 * line, and for a group of twenty octets the call cost about as much as
 * the hash.  (flatten: XXH3_64bits is inlined here, and this, called at
 * one place, into the scan.) */
__attribute__((flatten)) static uint64_t group_hash(const char *p, size_t n)
{
    return XXH3_64bits(p, n);
}

/* The scan: the text's newlines 64 octets at a time, its lines taken from
 * the set bits of the mask (no call, no mask made again per line); its
 * state in local variables, written back at the end (they stay in
 * registers: the loop calls out only for a '(' or '"', and for the
 * digests, made a few chunks at a time). */
static void cs_scan(struct cscan *cs)
{
    const char *b = cs->b;
    size_t len = cs->len, to = cs->to, ls = cs->from;
    uint64_t line = cs->line;
    size_t pfree = cs->pfree, nextp = cs->nextp;
    const char *prev_owner = cs->prev_owner, *prev_tok = cs->prev_tok;
    size_t prev_olen = cs->prev_olen, prev_tl = cs->prev_tl;
    bool prev_bs = cs->prev_bs, any_cut = cs->any_cut, dollar = cs->dollar;
    bool spl = false; /* a '(' or '"' on the line so far */
    uint64_t *off = cs->off, *lines = cs->lines;
    size_t n = cs->n;
    for (size_t base = ls & ~(size_t)63; ls < to; base += 64) {
        uint64_t nl, sp;
        /* room for a cut at each line of the block; the digests now and
         * then */
        if (cs->cap - n <= 64 || n > cs->nd + 16) {
            cs->n = n;
            if (cs_room(cs) != 0 || cs_digest(cs) != 0) {
                cs->ret = -ENOMEM;
                goto out;
            }
            off = cs->off;
            lines = cs->lines;
        }
        if (base + 64 <= len) {
            nl_masks(b + base, &nl, &sp);
        } else {
            /* the tail: a padded copy (nothing read past the text), and
             * a newline where the text ends, for a last line without */
            char t[64] = {0};
            memcpy(t, b + base, len - base);
            nl_masks(t, &nl, &sp);
            nl |= (uint64_t)1 << (len - base);
        }
        if (ls > base) { /* the first block: the octets before the scan */
            nl &= ~(uint64_t)0 << (ls - base);
            sp &= ~(uint64_t)0 << (ls - base);
        }
        for (; nl; nl &= nl - 1, line++) {
            size_t le = base + (size_t)__builtin_ctzll(nl);
            uint64_t before = (nl & -nl) - 1;
            spl |= (sp & before) != 0;
            sp &= ~before;
            if (spl) {
                spl = false;
                struct pstate ps =
                    cs_parens(b, len, ls, le, (struct pstate){pfree, nextp, 0});
                pfree = ps.pfree;
                nextp = ps.nextp;
                if (ps.ret != 0) {
                    cs->ret = -1;
                    goto out;
                }
            }
            char c0 = b[ls];
            bool owner = false;   /* an owner line, its group looked at */
            size_t ol = 0, g = 0; /* its owner's length, group's start */
            if (c0 == '$') {
                dollar = true;
                if (any_cut) { /* directives only in the first chunk */
                    cs->ret = -1;
                    goto out;
                }
            } else if (!owner_char(c0)) {
                /* neither an owner line nor the owner of the owner line
                 * before (whose first octet is an owner character) */
#if defined(__SSE2__)
            } else if (prev_tok && prev_tl < 32 && ls + 32 <= len) {
                /* the line's first 32 octets, loaded once: compared with
                 * the owner before (it lies before LS, so its 32 octets
                 * are in the text too), and this owner's end, dots and
                 * escapes */
                const __m128i *p = (const __m128i *)(const void *)(b + ls),
                              *q = (const __m128i *)(const void *)prev_tok;
                __m128i x0 = _mm_loadu_si128(p), x1 = _mm_loadu_si128(p + 1);
                uint32_t eq = (uint32_t)_mm_movemask_epi8(
                                  _mm_cmpeq_epi8(x0, _mm_loadu_si128(q))) |
                              (uint32_t)_mm_movemask_epi8(
                                  _mm_cmpeq_epi8(x1, _mm_loadu_si128(q + 1)))
                                  << 16;
                if ((~eq & (((uint32_t)1 << prev_tl) - 1)) == 0 &&
                    (b[ls + prev_tl] == ' ' || b[ls + prev_tl] == '\t') &&
                    ls + prev_tl < le) {
                    /* the owner of the owner line before: the same group
                     * (most lines of a zone; no cut) */
                } else if (ls >= pfree && !prev_bs) {
                    const __m128i bl = _mm_set1_epi8(' '),
                                  dt = _mm_set1_epi8('.'),
                                  bsl = _mm_set1_epi8('\\');
#define OCT_MASK(e0, e1)                                                       \
    ((uint32_t)_mm_movemask_epi8(e0) | (uint32_t)_mm_movemask_epi8(e1) << 16)
                    uint32_t ws = OCT_MASK(
                                 _mm_cmpeq_epi8(_mm_max_epu8(x0, bl), bl),
                                 _mm_cmpeq_epi8(_mm_max_epu8(x1, bl), bl)),
                             ds = OCT_MASK(_mm_cmpeq_epi8(x0, dt),
                                           _mm_cmpeq_epi8(x1, dt)),
                             bs = OCT_MASK(_mm_cmpeq_epi8(x0, bsl),
                                           _mm_cmpeq_epi8(x1, bsl));
#undef OCT_MASK
                    /* (the octets before the owner's end) */
                    uint32_t in = (ws & -ws) - 1;
                    owner = true;
                    if (ws && !(bs & in)) {
                        /* (a newline is <= ' ': the owner ends on its
                         * line) */
                        ol = (size_t)__builtin_ctz(ws);
                        g = ds & in ? (size_t)(32 - __builtin_clz(ds & in)) : 0;
                    } else {
                        struct otok t = owner_token(b, ls, le, len);
                        ol = t.ol;
                        g = t.g;
                    }
                }
#endif
            } else if (prev_tok && ls + prev_tl < le &&
                       (b[ls + prev_tl] == ' ' || b[ls + prev_tl] == '\t') &&
                       same_octets(b + ls, prev_tok, prev_tl)) {
                /* the owner of the owner line before, again */
            } else if (ls >= pfree && !prev_bs) {
                owner = true;
                struct otok t = owner_token(b, ls, le, len);
                ol = t.ol;
                g = t.g;
            }
            if (owner) {
                /* the owner's group: its last label, which a delegation
                 * and its glue share (a relative name); absolute names
                 * are never cut before */
                bool absolute = ol > 0 && b[ls + ol - 1] == '.';
                const char *grp = b + ls + g;
                size_t gl = ol - (g < ol ? g : ol);
                bool same = prev_owner && gl == prev_olen &&
                            same_octets(prev_owner, grp, gl);
                if (!same) {
                    /* whether a new group cuts is a coin toss (its hash):
                     * a branch on it would be guessed wrong every other
                     * time, so the cut is written in any case and counted
                     * only if it is one (cs_room made the room) */
                    size_t cut =
                        (size_t)(!absolute & (ls > 0) &
                                 (group_hash(grp, gl) % CHUNK_EVERY == 0));
                    off[n] = ls;
                    lines[n] = line;
                    n += cut;
                    any_cut |= cut != 0;
                }
                prev_owner = grp;
                prev_olen = gl;
                prev_tok = b + ls;
                prev_tl = ol;
            }
            prev_bs = le > ls && b[le - 1] == '\\';
            ls = le + 1;
            if (ls >= to) {
                line++;
                goto out;
            }
        }
        spl |= sp != 0; /* the line goes on in the next block */
    }
out:
    cs->n = n;
    if (cs->ret == 0 && cs_digest(cs) != 0)
        cs->ret = -ENOMEM;
    cs->line = line;
    cs->pfree = pfree;
    cs->nextp = nextp;
    cs->prev_owner = prev_owner;
    cs->prev_olen = prev_olen;
    cs->prev_tok = prev_tok;
    cs->prev_tl = prev_tl;
    cs->prev_bs = prev_bs;
    cs->any_cut = any_cut;
    cs->dollar = dollar;
}

static void cs_free(struct cscan *cs)
{
    free(cs->off);
    free(cs->lines);
    free(cs->dg);
}

static int pc_coarse(struct pchunks *pc);

/* Room for SLOTS offsets and lines in CS, and DSLOTS digests (mostly
 * there: a scan keeps room ahead). */
static int cs_slots(struct cscan *cs, size_t slots, size_t dslots)
{
    if ((cs->cap < slots && cs_grow(cs, slots) != 0) ||
        (cs->dcap < dslots && cs_dgrow(cs, dslots) != 0))
        return -ENOMEM;
    return 0;
}

/* PC from one scan, or two joined (the chunk across the join and the
 * last chunk are digested here): the scans' arrays taken over as they
 * are, the second's as PC's second part (struct pchunks). */
static int cs_into(struct pchunks *pc, struct cscan *a, struct cscan *b2,
                   uint64_t lines_a)
{
    if (b2 && b2->n == 0)
        b2 = NULL; /* no cut in it: the first's last chunk runs on to the end */
    size_t n = a->n + (b2 ? b2->n : 0);
    int r = cs_slots(a, a->n + 1, a->n);
    if (!r && b2)
        r = cs_slots(b2, b2->n + 1, b2->n);
    if (r)
        return r;
    pc->n = n;
    pc->n1 = SIZE_MAX;
    pc->off = a->off;
    pc->line = a->lines;
    pc->dg = a->dg;
    a->off = a->lines = NULL;
    a->dg = NULL;
    if (b2) {
        pc->n1 = a->n;
        pc->off2 = b2->off;
        pc->line2 = b2->lines;
        pc->dg2 = b2->dg;
        pc->line2_add = lines_a;
        b2->off = b2->lines = NULL;
        b2->dg = NULL;
        pc->off2[n - pc->n1] = a->len;
        /* the chunk across the join, and the last */
        size_t k = a->n - 1;
        chunk_dg(a, pc->off[k], pc->off2[0], pc->dg[k]);
        chunk_dg(a, pc->off2[n - 1 - pc->n1], a->len, pc->dg2[n - 1 - pc->n1]);
    } else {
        pc->off[n] = a->len;
        chunk_dg(a, pc->off[n - 1], a->len, pc->dg[n - 1]);
    }
    return pc_coarse(pc);
}

/* The second half's scan, from the line start M: it starts in the state
 * the first half's scan is expected to end in (checked when both ran). */
static void cs_second(struct cscan *s2, const char *b, size_t len, size_t m,
                      const uint8_t *key)
{
    memset(s2, 0, sizeof(*s2));
    s2->b = b;
    s2->key = key;
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

int pchunks_make(const char *b, size_t len, bool lean,
                 const uint8_t key[PIDX_KEY], struct pchunks *pc)
{
    /* room for a cut every 64 octets (a TLD has one every ~200): taken
     * from the address space at once, its pages used only as needed, and
     * never copied as they grow */
    memset(pc, 0, sizeof(*pc));
    memcpy(pc->key, key, PIDX_KEY);
    struct cscan a = {.b = b, .key = pc->key, .len = len, .to = len,
                      .line = 1, .lean = lean, .want = len / 64 + 1},
                 s2, s0;
    int r = cs_cut(&a, 0);
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
        cs_second(&s2, b, len, m, pc->key);
        s2.want = (len - m) / 64 + 1;
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
        a.key = pc->key;
        a.len = a.to = len;
        a.line = 1;
        a.want = len / 64 + 1;
        if ((r = cs_cut(&a, 0)))
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
    free(pc->coarse);
    free(pc->off);
    free(pc->line);
    free(pc->dg);
    free(pc->off2);
    free(pc->line2);
    free(pc->dg2);
    memset(pc, 0, sizeof(*pc));
}

#define COARSE_SHIFT 8

/* The coarse table of pchunks_of_line: for every 256 lines, the chunk of
 * the first (records come in canonical order, not in the file's: a
 * search over all chunks per record would miss the caches every time). */
static int pc_coarse(struct pchunks *pc)
{
    uint64_t lines = pc->n ? pc_line(pc, pc->n - 1) : 1;
    size_t n = (size_t)(lines >> COARSE_SHIFT) + 2;
    if (!(pc->coarse = malloc(n * sizeof(*pc->coarse))))
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = (uint64_t)i << COARSE_SHIFT;
        while (k + 1 < pc->n && pc_line(pc, k + 1) <= l)
            k++;
        pc->coarse[i] = (uint32_t)k;
    }
    pc->ncoarse = n;
    return 0;
}

size_t pchunks_of_line(const struct pchunks *pc, uint64_t line)
{
    size_t lo = 0, hi = pc->n;
    size_t c = (size_t)(line >> COARSE_SHIFT);
    if (pc->coarse && c + 1 < pc->ncoarse) {
        lo = pc->coarse[c];
        hi = (size_t)pc->coarse[c + 1] + 1;
        if (hi > pc->n)
            hi = pc->n;
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (pc_line(pc, mid) <= line)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---------------------------------------------------------------- */
/* The file                                                           */

static int fdig_push(struct fdig *f, uint64_t d)
{
    int r = vec_grow((void **)&f->bd, &f->cap, f->nb + 1, sizeof(*f->bd));
    if (!r)
        f->bd[f->nb++] = d;
    return r;
}

int fdig_reserve(struct fdig *f, uint64_t size)
{
    size_t cap = (size_t)(size / FDIG_BLOCK) + 2;
    if (cap <= f->cap)
        return 0;
    uint64_t *v = realloc(f->bd, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    f->bd = v;
    f->cap = cap;
    return 0;
}

int fdig_feed(struct fdig *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    int r = 0;
    f->size += n;
    if (f->plen > 0) { /* a block begun: filled first */
        size_t k = FDIG_BLOCK - f->plen < n ? FDIG_BLOCK - f->plen : n;
        memcpy(f->part + f->plen, b, k);
        f->plen += k;
        b += k;
        n -= k;
        if (f->plen < FDIG_BLOCK)
            return 0;
        f->plen = 0;
        if ((r = fdig_push(f, xxl_64(f->part, FDIG_BLOCK))))
            return r;
    }
    for (; n >= FDIG_BLOCK && !r; b += FDIG_BLOCK, n -= FDIG_BLOCK)
        r = fdig_push(f, xxl_64(b, FDIG_BLOCK));
    memcpy(f->part, b, n);
    f->plen = n;
    return r;
}

int fdig_end(struct fdig *f)
{
    int r = f->plen ? fdig_push(f, xxl_64(f->part, f->plen)) : 0;
    f->plen = 0;
    return r;
}

void fdig_redo(struct fdig *f, size_t b, const void *p, size_t n)
{
    if (b < f->nb)
        f->bd[b] = xxl_64(p, n);
    else if (b == f->nb && n == f->plen) /* the block being fed */
        memcpy(f->part, p, n);
}

void fdig_digest(const struct fdig *f, uint8_t dg[16])
{
    xxl_128(f->bd, f->nb * sizeof(*f->bd), dg);
}

void fdig_free(struct fdig *f)
{
    free(f->bd);
    f->bd = NULL;
    f->nb = f->cap = f->plen = 0;
    f->size = 0;
}

int pidx_file_get(const char *path, struct pidx_file *f)
{
    int fd = open(path, O_RDONLY);
    uint8_t *buf = malloc(1u << 20);
    void *st = xxl_new(true);
    int r = fd >= 0 && buf && st ? 0 : -1;
    f->size = 0;
    while (!r) {
        ssize_t n = read(fd, buf, 1u << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = -1;
        if (n <= 0)
            break;
        xxl_update(st, true, buf, (size_t)n);
        f->size += (uint64_t)n;
    }
    if (!r)
        xxl_digest128(st, f->dg);
    if (st)
        xxl_free(st);
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

uint8_t *file_map(int fd, size_t len)
{
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    return m == MAP_FAILED ? NULL : m;
}

void pidx_drop_body(struct pidx *x)
{
    if (x->buflen)
        munmap(x->buf, x->buflen);
    else
        free(x->buf);
    x->buf = NULL;
    x->buflen = 0;
    x->names = NULL;
    x->chain = NULL;
    x->keys = x->bm = NULL;
    x->multi = NULL;
    x->chunks = NULL;
}

void pidx_free(struct pidx *x)
{
    if (!x)
        return;
    if (x->buflen)
        munmap(x->buf, x->buflen);
    else
        free(x->buf);
    memset(x, 0, sizeof(*x));
}

/* The header's own digest (its hsum field taken as 0). */
static uint64_t hdr_sum(const struct pidx_hdr *h)
{
    struct pidx_hdr t = *h;
    t.hsum = 0;
    return XXH3_64bits(&t, sizeof(t));
}

/* H is a header this build wrote, whole (its own digest holds). */
static bool hdr_ok(const struct pidx_hdr *h)
{
    return memcmp(h->magic, PIDX_MAGIC, 8) == 0 &&
           h->version == PIDX_VERSION && h->endian == PIDX_ENDIAN &&
           h->hsum == hdr_sum(h);
}

int pidx_key_new(uint8_t key[PIDX_KEY])
{
    size_t got = 0;
    while (got < PIDX_KEY) {
        ssize_t n = getrandom(key + got, PIDX_KEY - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

int pidx_key_read(const char *path, uint8_t key[PIDX_KEY])
{
    struct pidx_hdr h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = pread(fd, &h, sizeof(h), 0);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n != (ssize_t)sizeof(h) || !hdr_ok(&h))
        return -1;
    memcpy(key, h.key, PIDX_KEY);
    return 0;
}

/* The index is written in PW_BUF pieces through the page cache, and not
 * synced: it is read by the next run (from memory, then), and a file torn
 * by a crash fails its digests and is not used.  (It was written past the
 * page cache, O_DIRECT, until 2026-12-06: each piece then waited for the
 * disk, behind OUT's writeback, and the run's end waited for the last; a
 * patched run of the 1M zone took 0.284 s against 0.308 s through the
 * page cache, 20 of 28 alternating rounds faster.)  The pieces are
 * written (and digested, in order) by a thread of their own while the
 * next ones are filled: PW_NBUF buffers go round between the two. */
#define PW_BUF (1u << 20)
#define PW_NBUF 3

struct pw_piece {
    uint8_t *buf;
    size_t len, hfrom;
    uint64_t foff;
    bool full; /* handed to the thread, not written yet */
};

struct pw_io {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pw_piece pc[PW_NBUF];
    unsigned fill, next; /* the piece being filled; the next to write */
    bool stop;
};

/* One piece: digested from HFROM, written at FOFF. */
static void pw_write(struct pwriter *w, const uint8_t *buf, size_t len,
                     size_t hfrom, uint64_t foff)
{
    /* the body's digest over whole buffers, not piece by piece */
    xxl_update(w->st, false, buf + hfrom, len - hfrom);
    for (size_t o = 0; !w->err && o < len;) {
        ssize_t n = pwrite(w->fd, buf + o, len - o, (off_t)(foff + o));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->err = -EIO;
        else
            o += (size_t)n;
    }
}

static void *pw_run(void *arg)
{
    struct pwriter *w = arg;
    struct pw_io *io = w->io;
    pthread_mutex_lock(&io->mu);
    for (;;) {
        struct pw_piece *pc = &io->pc[io->next];
        while (!pc->full && !io->stop)
            pthread_cond_wait(&io->cv, &io->mu);
        if (!pc->full)
            break;
        pthread_mutex_unlock(&io->mu);
        pw_write(w, pc->buf, pc->len, pc->hfrom, pc->foff);
        pthread_mutex_lock(&io->mu);
        pc->full = false;
        io->next = (io->next + 1) % PW_NBUF;
        pthread_cond_broadcast(&io->cv);
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

/* Every piece handed over, written. */
static void pw_drain(struct pwriter *w)
{
    struct pw_io *io = w->io;
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    for (unsigned k = 0; k < PW_NBUF; k++)
        while (io->pc[k].full)
            pthread_cond_wait(&io->cv, &io->mu);
    pthread_mutex_unlock(&io->mu);
}

static void pw_io_free(struct pwriter *w)
{
    struct pw_io *io = w->io;
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stop = true;
    pthread_cond_broadcast(&io->cv);
    pthread_mutex_unlock(&io->mu);
    pthread_join(io->th, NULL);
    pthread_mutex_destroy(&io->mu);
    pthread_cond_destroy(&io->cv);
    for (unsigned k = 0; k < PW_NBUF; k++)
        if (io->pc[k].buf != w->buf)
            free(io->pc[k].buf);
    free(io);
    w->io = NULL;
}

/* The thread and its buffers (w->buf is the first); without them, the
 * pieces are written by the caller, one at a time. */
static void pw_io_start(struct pwriter *w)
{
    struct pw_io *io = calloc(1, sizeof(*io));
    if (!io)
        return;
    io->pc[0].buf = w->buf;
    bool ok = true;
    for (unsigned k = 1; k < PW_NBUF && ok; k++)
        ok = (io->pc[k].buf = malloc(PW_BUF)) != NULL;
    if (ok && pthread_mutex_init(&io->mu, NULL) == 0) {
        if (pthread_cond_init(&io->cv, NULL) == 0) {
            w->io = io;
            if (pthread_create(&io->th, NULL, pw_run, w) == 0)
                return;
            w->io = NULL;
            pthread_cond_destroy(&io->cv);
        }
        pthread_mutex_destroy(&io->mu);
    }
    for (unsigned k = 1; k < PW_NBUF; k++)
        free(io->pc[k].buf);
    free(io);
}

int pw_open(struct pwriter *w, const char *path, bool no_spare)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->buf = malloc(PW_BUF);
    w->st = xxl_new(false);
    if (!w->buf || !w->st) {
        pw_abort(w);
        return -ENOMEM;
    }
    /* PATH's spare written over (reap.c), mode 0600: it holds the
     * digests' secret */
    w->fd = side_open(path, no_spare, 0600, NULL, &w->tmp);
    if (w->fd < 0) {
        pw_abort(w);
        return -EIO;
    }
    pw_io_start(w);
    /* the header's place: written last (pidx_write_end), outside the
     * body's digest */
    uint8_t zero[(sizeof(struct pidx_hdr) + 7) / 8 * 8] = {0};
    w->len = w->hfrom = sizeof(zero);
    memcpy(w->buf, zero, sizeof(zero));
    return 0;
}

/* The buffer filled so far: to the thread (filling goes on in the next
 * free one), or written now. */
static void pw_flush(struct pwriter *w)
{
    struct pw_io *io = w->io;
    if (!io) {
        pw_write(w, w->buf, w->len, w->hfrom, w->foff);
    } else {
        pthread_mutex_lock(&io->mu);
        struct pw_piece *pc = &io->pc[io->fill];
        pc->len = w->len;
        pc->hfrom = w->hfrom;
        pc->foff = w->foff;
        pc->full = true;
        io->fill = (io->fill + 1) % PW_NBUF;
        pthread_cond_broadcast(&io->cv);
        while (io->pc[io->fill].full)
            pthread_cond_wait(&io->cv, &io->mu);
        w->buf = io->pc[io->fill].buf;
        pthread_mutex_unlock(&io->mu);
    }
    w->foff += w->len;
    w->len = w->hfrom = 0;
}

void *pw_room(struct pwriter *w, size_t size, size_t want, size_t *got)
{
    if (w->len == PW_BUF)
        pw_flush(w);
    size_t k = (PW_BUF - w->len) / size;
    *got = k < want ? k : want;
    return w->buf + w->len;
}

void pw_took(struct pwriter *w, size_t n)
{
    w->len += n;
    w->sect += n;
}

void pw_put(struct pwriter *w, const void *p, size_t n)
{
    w->sect += n;
    while (n > 0) {
        if (w->len == PW_BUF)
            pw_flush(w);
        size_t k = PW_BUF - w->len < n ? PW_BUF - w->len : n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p = (const uint8_t *)p + k;
        n -= k;
    }
}

void pw_end(struct pwriter *w)
{
    static const uint8_t zero[8];
    size_t pad = (8 - w->sect % 8) % 8;
    if (pad)
        pw_put(w, zero, pad);
    w->sect = 0;
}

int pw_finish(struct pwriter *w, uint64_t *sum)
{
    pw_flush(w);
    pw_drain(w); /* (the digest is the thread's until then) */
    *sum = xxl_digest64(w->st);
    uint8_t t[8];
    memcpy(t, sum, 8); /* the trailer: not in the digest */
    for (size_t o = 0; !w->err && o < 8;) {
        ssize_t n = pwrite(w->fd, t + o, 8 - o, (off_t)(w->foff + o));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->err = -EIO;
        else
            o += (size_t)n;
    }
    w->foff += 8;
    return w->err;
}

void pw_abort(struct pwriter *w)
{
    pw_io_free(w);
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    free(w->tmp);
    free(w->buf);
    if (w->st)
        xxl_free(w->st);
    memset(w, 0, sizeof(*w));
    w->fd = -1;
}

int pidx_write_end(struct pidx_hdr *h, struct pwriter *w, const char *path,
                   uint64_t sum)
{
    h->body_sum = sum;
    h->hsum = hdr_sum(h);
    int r = 0;
    if (pwrite(w->fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h))
        r = -EIO;
    /* (a spare written over may have been longer) */
    if (!r && ftruncate(w->fd, (off_t)w->foff) != 0)
        r = -EIO;
    if (close(w->fd) != 0 && !r)
        r = -EIO;
    w->fd = -1;
    if (!r && rename(w->tmp, path) != 0)
        r = -errno;
    pw_abort(w); /* unlinks the temporary name if it is still there */
    return r;
}

bool pidx_body_ok(const struct pidx *x)
{
    size_t o = pad8(sizeof(x->h));
    return xxl_64(x->buf + o, x->buflen - 8 - o) == x->h.body_sum;
}

int pidx_read(struct pidx *x, const char *path, bool later)
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
    /* tens of megabytes: mapped, not copied */
    uint8_t *buf = file_map(fd, size);
    close(fd);
    if (!buf)
        return -1;
    x->buf = buf;
    x->buflen = size;
    uint64_t sum;
    memcpy(&sum, buf + size - 8, 8);
    memcpy(&x->h, buf, sizeof(x->h));
    const struct pidx_hdr *h = &x->h;
    size_t o = pad8(sizeof(*h));
    if (!hdr_ok(h) || h->body_sum != sum || (!later && !pidx_body_ok(x)))
        goto bad;
    size_t lens[6] = {h->nnames * sizeof(*x->names),
                      h->nchain * sizeof(*x->chain), h->keys_len, h->bm_len,
                      h->nmulti * sizeof(*x->multi),
                      h->nchunks * sizeof(*x->chunks)};
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
    x->names = (struct pidx_name *)at[0];
    x->chain = (struct pidx_link *)at[1];
    x->keys = at[2];
    x->bm = at[3];
    x->multi = (struct pidx_multi *)at[4];
    x->chunks = (struct pidx_chunk *)at[5];
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
    pidx_free(x);
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

uint64_t pidx_content(const zone_t *z, size_t i, size_t e,
                      const uint8_t key[PIDX_KEY])
{
    /* the records one after the other, digested at once (a name's
     * records are a few hundred octets; larger ones are streamed, which
     * gives the same digest) */
    uint8_t buf[2048];
    size_t n = 0;
    XXH3_state_t st;
    bool streamed = false;
    for (size_t j = i; j < e; j++) {
        rec_t r;
        rec_at(z, j, &r);
        if (r.flags & RF_GEN)
            continue;
        uint8_t h[8];
        put16(h, r.type);
        put32(h + 2, r.ttl);
        put16(h + 6, r.rdlen);
        if (!streamed && n + 8 + r.rdlen > sizeof(buf)) {
            XXH3_64bits_reset_withSecret(&st, key, PIDX_KEY);
            XXH3_64bits_update(&st, buf, n);
            streamed = true;
        }
        if (streamed) {
            XXH3_64bits_update(&st, h, 8);
            XXH3_64bits_update(&st, r.rdata, r.rdlen);
        } else {
            memcpy(buf + n, h, 8);
            memcpy(buf + n + 8, r.rdata, r.rdlen);
            n += 8 + r.rdlen;
        }
    }
    return streamed ? XXH3_64bits_digest(&st)
                    : XXH3_64bits_withSecret(buf, n, key, PIDX_KEY);
}

int vec_grow(void **p, size_t *cap, size_t need, size_t size)
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

/* Sorts V[0..n) by their high 32 bits (a line number), LSD radix. */
static int sort_by_line(uint64_t *v, size_t n)
{
    uint64_t *t = malloc((n + 1) * sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (int shift = 32; shift < 64; shift += 8) {
        size_t cnt[257] = {0};
        for (size_t i = 0; i < n; i++)
            cnt[((v[i] >> shift) & 0xff) + 1]++;
        for (int k = 0; k < 256; k++)
            cnt[k + 1] += cnt[k];
        for (size_t i = 0; i < n; i++)
            t[cnt[(v[i] >> shift) & 0xff]++] = v[i];
        memcpy(v, t, n * sizeof(*v));
    }
    free(t);
    return 0;
}

/* The chunk of each name's first input record (UINT32_MAX: none): the
 * first records sorted by line and matched against the chunks in one
 * sweep (a search per record in canonical order would miss the caches
 * at every step). */
static int name_chunks(const zone_t *z, const struct pchunks *pc,
                       size_t nnames, uint32_t **out)
{
    uint32_t *nc = malloc((nnames + 1) * sizeof(*nc));
    uint64_t *v = malloc((nnames + 1) * sizeof(*v));
    size_t n = 0, k = 0, idx = 0;
    int r = nc && v ? 0 : -ENOMEM;
    for (size_t i = 0; !r && i < z->n; idx++) {
        size_t e = zone_run_end(z, i, false);
        nc[idx] = UINT32_MAX;
        for (size_t j = i; j < e; j++) {
            rec_t a;
            rec_at(z, j, &a);
            if (!(a.flags & RF_GEN)) {
                v[n++] = (uint64_t)a.line << 32 | idx;
                break;
            }
        }
        i = e;
    }
    if (!r)
        r = sort_by_line(v, n);
    for (size_t i = 0; !r && i < n; i++) {
        uint64_t line = v[i] >> 32;
        while (k + 1 < pc->n && pc_line(pc, k + 1) <= line)
            k++;
        nc[(uint32_t)v[i]] = (uint32_t)k;
    }
    free(v);
    if (r) {
        free(nc);
        return r;
    }
    *out = nc;
    return 0;
}

int pidx_build(struct pidx_hdr *h, struct pwriter *w, const zone_t *z,
               const signer_opts_t *o, const struct pchunks *pc,
               const char *out_text, size_t out_len)
{
    size_t ccap = 0, bcap = 0, mcap = 0, skip = z->okey_len, nnames = 0;
    struct pidx_link *chain = NULL;
    uint8_t *bm = NULL;
    struct pidx_multi *multi = NULL;
    uint32_t *nrec = calloc(pc->n + 1, sizeof(*nrec)), *nchunk = NULL;
    int r = nrec ? 0 : -ENOMEM;
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, PIDX_MAGIC, 8);
    h->version = PIDX_VERSION;
    h->endian = PIDX_ENDIAN;
    memcpy(h->key, pc->key, PIDX_KEY);
    h->nchunks = pc->n;
    h->next_id = (uint32_t)pc->n;
    for (size_t i = 0; i < z->n; i = zone_run_end(z, i, false))
        nnames++;
    if (!r)
        r = name_chunks(z, pc, nnames, &nchunk);
    const uint8_t *cutkey = NULL;
    size_t cutlen = 0, given = 0, idx = 0;
    const char *tp = out_text, *tend = out_text + out_len;
    struct fdig ost = {0};
    /* names */
    for (size_t i = 0; i < z->n && !r; idx++) {
        size_t e = zone_run_end(z, i, false);
        rec_t a;
        rec_at(z, i, &a);
        struct pidx_name nm = {0};
        bool ns = false, ds = false, dname = false, nsec3 = false;
        /* names come in canonical order, their chunks in any: the chunk
         * of a name further on is fetched ahead */
        if (idx + 16 < nnames && nchunk[idx + 16] != UINT32_MAX)
            __builtin_prefetch(pc_linep(pc, nchunk[idx + 16]));
        uint32_t ch0 = nchunk[idx];
        unsigned nch = ch0 == UINT32_MAX ? 0 : 1, rrsets = 0, nsigned = 0;
        uint64_t lo = nch ? pc_line(pc, ch0) : 0,
                 hi = nch && ch0 + 1 < pc->n ? pc_line(pc, ch0 + 1) : UINT64_MAX;
        for (size_t j = i; j < e; j++) {
            rec_t r2;
            rec_at(z, j, &r2);
            ns |= r2.type == T_NS;
            ds |= r2.type == T_DS;
            dname |= r2.type == T_DNAME;
            nsec3 |= r2.type == T_NSEC3;
            if (r2.flags & RF_GEN)
                continue;
            nm.flags |= PN_INPUT;
            if (r2.line >= lo && r2.line < hi) {
                nrec[ch0]++;
                continue;
            }
            /* in another chunk: every chunk of the name, once each */
            uint32_t k = (uint32_t)pchunks_of_line(pc, r2.line);
            nrec[k]++;
            bool seen = false;
            for (uint64_t m = h->nmulti; m-- > 0 && multi[m].name == idx;)
                seen |= multi[m].chunk == k;
            if (seen)
                continue;
            if ((r = vec_grow((void **)&multi, &mcap, h->nmulti + 2,
                          sizeof(*multi))))
                break;
            if (nch == 1)
                multi[h->nmulti++] = (struct pidx_multi){(uint32_t)idx, ch0};
            multi[h->nmulti++] = (struct pidx_multi){(uint32_t)idx, k};
            nch++;
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
        if (dname || rrsets >= 255) {
            r = 1; /* no index: DNAME, or a name with 255 RRsets */
            break;
        }
        nm.flags |= (apex ? PN_APEX : 0) | (!apex && ns ? PN_DELEG : 0) |
                    (ds ? PN_DS : 0) | (nsec3 ? PN_NSEC3 : 0);
        nm.chunk = ch0;
        nm.nchunk = (uint8_t)(nch > 255 ? 255 : nch);
        nm.content = pidx_content(z, i, e, pc->key);
        nm.rrsets = (uint8_t)rrsets;
        nm.nsigned = (uint8_t)nsigned;
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
            if (!r)
                r = fdig_feed(&ost, out_text + given, to - given);
            madvise((void *)(out_text + given), to - given, MADV_DONTNEED);
            given = to;
        }
        pw_put(w, &nm, sizeof(nm));
        h->nnames++;
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
            if ((r = vec_grow((void **)&chain, &ccap, h->nchain + 1,
                          sizeof(*chain))) ||
                (r = vec_grow((void **)&bm, &bcap, h->bm_len + l.bmlen, 1)))
                break;
            memcpy(bm + h->bm_len, n3.rdata + bo, l.bmlen);
            h->bm_len += l.bmlen;
            chain[h->nchain++] = l;
        }
        i = e;
    }
    if (!r && tp != tend)
        r = -EINVAL; /* the text and the zone do not match */
    if (!r) {
        pw_end(w);
        if (h->nchain)
            pw_put(w, chain, h->nchain * sizeof(*chain));
        pw_end(w);
        for (size_t i = 0; i < z->n; i = zone_run_end(z, i, false)) {
            rec_t a;
            rec_at(z, i, &a);
            pw_put(w, a.key, a.klen);
        }
        pw_end(w);
        if (h->bm_len)
            pw_put(w, bm, h->bm_len);
        pw_end(w);
        if (h->nmulti)
            pw_put(w, multi, h->nmulti * sizeof(*multi));
        pw_end(w);
        for (size_t k = 0; k < pc->n; k++) {
            struct pidx_chunk ck = {0};
            memcpy(ck.dg, pc_dg(pc, k), PIDX_DIGEST);
            ck.id = (uint32_t)k;
            ck.nrec = nrec[k];
            pw_put(w, &ck, sizeof(ck));
        }
        pw_end(w);
        if (!r && !(r = fdig_feed(&ost, out_text + given, out_len - given)) &&
            !(r = fdig_end(&ost)))
            fdig_digest(&ost, h->out.dg);
        h->out.size = out_len;
        if (w->err)
            r = w->err;
    }
    fdig_free(&ost);
    free(chain);
    free(bm);
    free(multi);
    free(nrec);
    free(nchunk);
    return r;
}

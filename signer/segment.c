/*
 * signer/segment.c - the output in segments, and copying unchanged ones
 * from the previous output instead of printing them again.
 *
 * A segment is a run of whole owner names in canonical order, cut after
 * every name whose owner key hashes to 0 modulo SEGMENT_EVERY: the cuts
 * depend on the names alone, so a name added or removed changes only the
 * segment it falls in, and the same runs of names come back run after
 * run.  Chunks of the pipeline end at cuts (pipeline.c).
 *
 * Each segment has two digests of 16 octets:
 *  - its content digest (the first octets of SHA-256: what it covers is
 *    shaped by registrants' data), over everything its text is printed
 *    from: per name the owner sort key, then every record's type, TTL and
 *    canonical RDATA, then the RDATA of every RRSIG printed there (an
 *    RRSIG line's TTL is the original TTL inside its RDATA), all with
 *    their lengths and counts;
 *  - its text digest (XXH3-128: it only has to find a file changed since
 *    it was written), over the bytes printed.
 * The signature cache (cache.c) records both for every segment of OUT, in
 * file order.  With --previous and its cache, a segment whose content
 * digest is recorded there is read from the previous zone file instead of
 * printed (writer.c prints the same content to the same bytes, as long as
 * WRITER_FORMAT_VERSION is the same).  The bytes read are hashed where
 * they land, in the output, and must give the recorded text digest: a
 * previous file changed since its cache was written stops the attempt
 * with -ESTALE, and the caller starts again from the previous zone's text
 * (sign.c), as if the cache had not matched.  So no byte is copied that
 * was not checked, and the output is the one printing would give.
 *
 * What this does not do: decide which signatures are reused (reuse.c,
 * pipeline.c), or check the previous file's other segments (cache.c,
 * cache_verify, as the output is written and before it is committed).
 */
#include <errno.h>
#include <stdlib.h>

#include "signer/internal.h"

/* One name in SEGMENT_EVERY ends a segment: about 8 names, 1 KB of text
 * in a TLD.  Smaller segments copy more of an output where changes are
 * spread thinly, at the cost of more digests and cache entries (1M
 * delegations, 1% changed: 16 names print 13% of the segments, 8 names
 * 7%, 4 names 4%; 8 was as fast as 4 with a smaller cache). */
#define SEGMENT_EVERY 8

bool segment_cut_after(const uint8_t *key, size_t klen)
{
    /* a multiply-xorshift hash of the key, eight octets at a time (any
     * fixed function of the name would do; it must never change without
     * SEGMENT_RULE) */
    uint64_t h = 0x9e3779b97f4a7c15u ^ klen, t = 0;
    size_t i = 0;
    for (; i + 8 <= klen; i += 8) {
        h ^= (uint64_t)get32(key + i) << 32 | get32(key + i + 4);
        h *= 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    for (; i < klen; i++)
        t = t << 8 | key[i];
    h ^= t;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdu;
    return (h >> 40) % SEGMENT_EVERY == 0;
}

/* The segment from record I (< END) into CH->scratch: *E gets its end and
 * *IE the end of its items (from IT).  Returns 0 or -ENOMEM. */
static int segment_content(const zone_t *z, struct chunk *ch, size_t i,
                           size_t end, size_t it, size_t *e, size_t *ie)
{
    arena_t *s = &ch->scratch;
    int ret;
    s->len = 0;
    for (;;) {
        /* one name: its records' extent first, then one reservation */
        const uint8_t *p = z->a.buf + z->idx[i];
        const uint8_t *key = p + 2;
        size_t klen = get16(p), ne = i, need = 2 + klen + 8;
        do {
            const uint8_t *q = z->a.buf + z->idx[ne];
            need += 8 + get16(q + 2 + klen + 12);
            ne++;
        } while (ne < z->n && get16(z->a.buf + z->idx[ne]) == klen &&
                 memcmp(z->a.buf + z->idx[ne] + 2, key, klen) == 0);
        if ((ret = arena_reserve(s, need)))
            return ret;
        uint8_t *o = s->buf + s->len;
        put16(o, (uint16_t)klen);
        memcpy(o + 2, key, klen);
        put32(o + 2 + klen, (uint32_t)(ne - i));
        o += 2 + klen + 4;
        for (size_t j = i; j < ne; j++) {
            /* type, TTL (6 octets), then RDATA length and RDATA: the
             * blob's own bytes minus the line, file and flags fields */
            const uint8_t *q = z->a.buf + z->idx[j] + 2 + klen;
            size_t rdlen = get16(q + 12);
            memcpy(o, q, 6);
            memcpy(o + 6, q + 12, 2 + rdlen);
            o += 8 + rdlen;
        }
        size_t is = it;
        while (it < ch->nitems && ch->items[it].pos < ne)
            it++;
        put32(o, (uint32_t)(it - is));
        s->len = (size_t)(o + 4 - s->buf);
        for (size_t k = is; k < it; k++) {
            uint16_t len;
            const uint8_t *rd =
                chunk_item_rdata(ch, &ch->items[k], ch->rd, &len);
            if ((ret = arena_reserve(s, 2 + (size_t)len)))
                return ret;
            put16(s->buf + s->len, len);
            memcpy(s->buf + s->len + 2, rd, len);
            s->len += 2 + (size_t)len;
        }
        i = ne;
        if (i >= end || segment_cut_after(key, klen))
            break;
    }
    *e = i;
    *ie = it;
    return 0;
}

static int seg_add(struct chunk *ch, const uint8_t *cd, const uint8_t *td,
                   uint32_t len)
{
    if (ch->nsegs == ch->segcap) {
        size_t cap = ch->segcap ? ch->segcap * 2 : 256;
        struct segrec *p = realloc(ch->segs, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        ch->segs = p;
        ch->segcap = cap;
    }
    struct segrec *g = &ch->segs[ch->nsegs++];
    memcpy(g->cd, cd, CACHE_DIGEST);
    if (td)
        memcpy(g->td, td, CACHE_DIGEST);
    g->len = len;
    return 0;
}

/* Segments to copy that lie back to back in the previous file, read in
 * one pread when the run ends. */
#define RUN_MAX 256
struct run {
    uint64_t off;
    size_t len, n;
    size_t index[RUN_MAX]; /* in the previous file */
    size_t seg[RUN_MAX];   /* in ch->segs */
};

static int stale(struct sctx *c)
{
    __atomic_store_n(&c->stale_found, 1, __ATOMIC_RELAXED);
    return -ESTALE;
}

static int run_flush(struct sctx *c, struct chunk *ch, struct run *run)
{
    int ret;
    if (run->n == 0)
        return 0;
    if ((ret = arena_reserve(&ch->text, run->len)))
        return ret;
    uint8_t *p = ch->text.buf + ch->text.len;
    if (cache_zone_read(c->pcache, run->off, run->len, p) != 0)
        return stale(c);
    for (size_t k = 0; k < run->n; k++) {
        struct segrec *g = &ch->segs[run->seg[k]];
        uint8_t td[CACHE_DIGEST];
        cache_text_digest(p, g->len, td);
        if (memcmp(td, g->td, CACHE_DIGEST) != 0)
            return stale(c);
        cache_seg_verified(c->pcache, run->index[k]);
        p += g->len;
    }
    ch->text.len += run->len;
    run->n = run->len = 0;
    return 0;
}

/* The formatter's signature stream for one segment: items [next, end). */
struct bounded {
    struct chunk *ch;
    size_t next, end;
};

static int bounded_next_sig(void *arg, size_t *pos, const uint8_t **rd,
                            uint16_t *len)
{
    struct bounded *b = arg;
    if (b->next >= b->end)
        return 1;
    const struct item *it = &b->ch->items[b->next++];
    *pos = it->pos;
    *rd = chunk_item_rdata(b->ch, it, b->ch->rd, len);
    return 0;
}

static int all_sigs(void *arg, size_t *pos, const uint8_t **rd, uint16_t *len)
{
    struct bounded *b = arg;
    b->end = b->ch->nitems;
    return bounded_next_sig(arg, pos, rd, len);
}

int segment_format(struct sctx *c, struct chunk *ch, EVP_MD_CTX *md)
{
    const zone_t *z = c->z;
    bool copy = c->pcache && cache_can_copy(c->pcache);
    struct bounded b = {ch, 0, 0};
    if (!c->cw && !copy) /* no cache either way: print only */
        return writer_format(z, ch->start, ch->end, all_sigs, &b, &ch->text);
    struct run *run = calloc(1, sizeof(*run));
    int ret = run ? 0 : -ENOMEM;
    size_t it = 0, hint = SIZE_MAX;
    for (size_t i = ch->start; i < ch->end && !ret;) {
        size_t e, ie;
        uint8_t cd[CACHE_DIGEST];
        cache_seg_t ps;
        if ((ret = segment_content(z, ch, i, ch->end, it, &e, &ie)) ||
            (ret = cache_content_digest(md, ch->scratch.buf, ch->scratch.len,
                                         cd)))
            break;
        if (copy && cache_seg_find(c->pcache, cd, hint, &ps) == 0) {
            hint = ps.index + 1;
            if (run->n == RUN_MAX || (run->n && run->off + run->len != ps.off))
                if ((ret = run_flush(c, ch, run)))
                    break;
            if (run->n == 0)
                run->off = ps.off;
            run->index[run->n] = ps.index;
            run->seg[run->n++] = ch->nsegs;
            run->len += ps.len;
            if (ps.index + 1 > ch->copied_end)
                ch->copied_end = ps.index + 1;
            __atomic_fetch_add(&c->seg_copied, 1, __ATOMIC_RELAXED);
            ret = seg_add(ch, cd, ps.td, ps.len);
        } else {
            uint8_t td[CACHE_DIGEST];
            if ((ret = run_flush(c, ch, run)))
                break;
            size_t t0 = ch->text.len;
            b.next = it;
            b.end = ie;
            if ((ret =
                     writer_format(z, i, e, bounded_next_sig, &b, &ch->text)))
                break;
            cache_text_digest(ch->text.buf + t0, ch->text.len - t0, td);
            if (ch->text.len - t0 > UINT32_MAX) {
                ret = -EOVERFLOW;
                break;
            }
            __atomic_fetch_add(&c->seg_printed, 1, __ATOMIC_RELAXED);
            ret = seg_add(ch, cd, td, (uint32_t)(ch->text.len - t0));
        }
        i = e;
        it = ie;
    }
    if (!ret)
        ret = run_flush(c, ch, run);
    free(run);
    return ret;
}

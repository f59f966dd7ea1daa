/*
 * signer/denial.c - which RRsets are authoritative and signed, and the
 * authenticated denial chain: NSEC3 (RFC 5155 7.1, opt-out 6, RFC 9276
 * parameters) or NSEC (RFC 4034 4, RFC 4035 2.3).
 *
 * One pass over the zone in canonical order.  Below a delegation (NS not at
 * the apex) or a DNAME everything is occluded: not signed, not in the chain.
 * At a delegation only DS is signed (RFC 4035 2.2); the bitmap there holds
 * NS, DS and RRSIG (if DS).  Empty non-terminals get NSEC3 records (RFC 5155
 * 7.1) found with a stack of the names seen: ancestors sort before their
 * descendants, so an ancestor not yet seen never exists.  With opt-out,
 * insecure delegations and the ENTs only they need stay out of the chain.
 * NSEC3/NSEC TTL: min(SOA TTL, SOA MINIMUM) (RFC 9077).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "signer/internal.h"

struct chainent {
    uint8_t hash[20];
    uint32_t pad;
    uint64_t aux; /* offset in aux arena: u16 klen, key, u16 bmlen, bm */
};

struct dctx {
    zone_t *z;
    const signer_opts_t *o;
    arena_t aux;
    struct chainent *ent;
    size_t nent, cap;
    uint8_t stack[130][KEY_MAX];
    size_t stlen[130];
    size_t depth;
};

static int add_ent(struct dctx *c, const uint8_t *key, size_t klen,
                   uint16_t *types, size_t nt)
{
    if (c->nent == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        struct chainent *e = realloc(c->ent, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        c->ent = e;
        c->cap = cap;
    }
    uint8_t bm[8704], hdr[2];
    size_t bl = type_bitmap_of(types, nt, bm);
    struct chainent *e = &c->ent[c->nent++];
    memset(e, 0, sizeof(*e));
    e->aux = c->aux.len;
    put16(hdr, (uint16_t)klen);
    if (arena_put(&c->aux, hdr, 2) || arena_put(&c->aux, key, klen))
        return -ENOMEM;
    put16(hdr, (uint16_t)bl);
    if (arena_put(&c->aux, hdr, 2) || arena_put(&c->aux, bm, bl))
        return -ENOMEM;
    if (c->o->denial == SIGNER_DENIAL_NSEC3) {
        uint8_t wire[256];
        size_t wl = key_to_wire(key, klen, wire);
        nsec3_hash(wire, wl, c->o->salt, c->o->salt_len, c->o->iterations,
                   e->hash);
    }
    return 0;
}

/* NSEC3: the ENTs between the deepest name seen above KEY and KEY. */
static int push_name(struct dctx *c, const uint8_t *key, size_t klen)
{
    while (c->depth > 0 &&
           !key_under(c->stack[c->depth - 1], c->stlen[c->depth - 1], key,
                      klen))
        c->depth--;
    size_t base = c->depth ? c->stlen[c->depth - 1] : 0;
    /* label ends strictly between base and klen */
    size_t ends[130], n = 0;
    for (size_t i = base; i + 1 < klen; i++) {
        if (key[i] == 1)
            i++;
        else if (key[i] == 0)
            ends[n++] = i + 1;
    }
    for (size_t j = 0; j < n; j++) {
        if (c->depth > 0 || ends[j] >= c->z->okey_len) {
            if (ends[j] > c->z->okey_len || c->depth > 0) {
                int r = add_ent(c, key, ends[j], NULL, 0);
                if (r)
                    return r;
            }
        }
        if (c->depth < 129) {
            memcpy(c->stack[c->depth], key, ends[j]);
            c->stlen[c->depth++] = ends[j];
        }
    }
    if (c->depth < 129) {
        memcpy(c->stack[c->depth], key, klen);
        c->stlen[c->depth++] = klen;
    }
    return 0;
}

/* One name [i, e): flags and chain entry.  Returns 1 if it opens a cut. */
static int do_name(struct dctx *c, size_t i, size_t e, bool *cut)
{
    zone_t *z = c->z;
    rec_t r;
    rec_at(z, i, &r);
    const uint8_t *key = r.key;
    size_t klen = r.klen;
    bool apex = klen == z->okey_len;
    bool has_ns = false, has_ds = false, has_dname = false;
    for (size_t j = i; j < e; j++) {
        rec_at(z, j, &r);
        has_ns |= r.type == T_NS;
        has_ds |= r.type == T_DS;
        has_dname |= r.type == T_DNAME;
    }
    bool deleg = !apex && has_ns;
    uint16_t types[512];
    size_t nt = 0;
    bool any_signed = false;
    for (size_t j = i; j < e;) {
        rec_at(z, j, &r);
        size_t te = zone_run_end(z, j, true);
        bool sign = !deleg || r.type == T_DS;
        bool listed = !deleg || r.type == T_DS || r.type == T_NS;
        if (sign) {
            *rec_flags_ptr(z, r.off) |= RF_SIGN;
            any_signed = true;
        }
        if (listed && nt < 500)
            types[nt++] = r.type;
        j = te;
    }
    if (c->o->denial == SIGNER_DENIAL_NSEC) {
        types[nt++] = T_NSEC;
        any_signed = true; /* the NSEC RRset itself is signed here */
    }
    if (any_signed)
        types[nt++] = T_RRSIG;
    *cut = deleg || has_dname;
    bool insecure = deleg && !has_ds;
    if (c->o->denial == SIGNER_DENIAL_NSEC3) {
        if (c->o->opt_out && insecure)
            return 0;
        int ret = push_name(c, key, klen);
        if (ret)
            return ret;
    }
    return add_ent(c, key, klen, types, nt);
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, 20);
}

static void aux_get(const struct dctx *c, const struct chainent *e,
                    const uint8_t **key, size_t *klen, const uint8_t **bm,
                    size_t *bl)
{
    const uint8_t *p = c->aux.buf + e->aux;
    *klen = get16(p);
    *key = p + 2;
    p += 2 + *klen;
    *bl = get16(p);
    *bm = p + 2;
}

static int emit_nsec3(struct dctx *c, uint32_t ttl, signer_diag_t *diag)
{
    zone_t *z = c->z;
    qsort(c->ent, c->nent, sizeof(c->ent[0]), cmp_hash);
    size_t i = nsec3_find_collision((const uint8_t *)c->ent,
                                    sizeof(c->ent[0]), c->nent);
    if (i) {
        const uint8_t *k1, *k2, *bm;
        size_t l1, l2, bl;
        uint8_t w1[256], w2[256];
        char t1[1100], t2[1100];
        aux_get(c, &c->ent[i - 1], &k1, &l1, &bm, &bl);
        aux_get(c, &c->ent[i], &k2, &l2, &bm, &bl);
        key_to_wire(k1, l1, w1);
        key_to_wire(k2, l2, w2);
        name_to_text(w1, t1);
        name_to_text(w2, t2);
        snprintf(diag->msg, sizeof(diag->msg),
                 "NSEC3 hash collision between %.400s and %.400s; choose "
                 "another salt",
                 t1, t2);
        return SIGNER_ECOLLISION;
    }
    for (i = 0; i < c->nent; i++) {
        const struct chainent *e = &c->ent[i];
        const struct chainent *nx = &c->ent[(i + 1) % c->nent];
        uint8_t rd[8704 + 300], key[KEY_MAX];
        const uint8_t *k, *bm;
        size_t kl, bl, o = 0;
        aux_get(c, e, &k, &kl, &bm, &bl);
        rd[o++] = 1; /* SHA-1 */
        rd[o++] = c->o->opt_out ? 1 : 0;
        put16(rd + o, c->o->iterations);
        o += 2;
        rd[o++] = (uint8_t)c->o->salt_len;
        memcpy(rd + o, c->o->salt, c->o->salt_len);
        o += c->o->salt_len;
        rd[o++] = 20;
        memcpy(rd + o, nx->hash, 20);
        o += 20;
        memcpy(rd + o, bm, bl);
        o += bl;
        memcpy(key, z->okey, z->okey_len);
        size_t n = base32hex_encode(e->hash, 20, (char *)key + z->okey_len);
        key[z->okey_len + n] = 0;
        int r = zone_add_key(z, key, z->okey_len + n + 1, T_NSEC3, ttl, rd,
                             (uint16_t)o, RF_SIGN | RF_GEN);
        if (r)
            return r;
    }
    return 0;
}

static int emit_nsec(struct dctx *c, uint32_t ttl)
{
    zone_t *z = c->z;
    for (size_t i = 0; i < c->nent; i++) {
        const uint8_t *k, *bm, *nk, *nbm;
        size_t kl, bl, nkl, nbl;
        uint8_t rd[8704 + 300];
        aux_get(c, &c->ent[i], &k, &kl, &bm, &bl);
        aux_get(c, &c->ent[(i + 1) % c->nent], &nk, &nkl, &nbm, &nbl);
        size_t o = key_to_wire(nk, nkl, rd);
        memcpy(rd + o, bm, bl);
        o += bl;
        uint8_t key[KEY_MAX];
        memcpy(key, k, kl);
        int r = zone_add_key(z, key, kl, T_NSEC, ttl, rd, (uint16_t)o,
                             RF_SIGN | RF_GEN);
        if (r)
            return r;
    }
    return 0;
}

/* The names [FROM, TO): flags and chain entries; names below a cut are
 * occluded (glue, data below a DNAME). */
static int walk(struct dctx *c, size_t from, size_t to)
{
    const zone_t *z = c->z;
    const uint8_t *cutkey = NULL;
    size_t cutlen = 0;
    for (size_t i = from; i < to;) {
        size_t e = zone_run_end_in(z, i, to, false);
        rec_t r;
        rec_at(z, i, &r);
        if (cutkey && key_under(cutkey, cutlen, r.key, r.klen)) {
            i = e; /* occluded: glue or data below a DNAME */
            continue;
        }
        bool cut = false;
        /* the key pointer stays valid: nothing is added during the pass */
        int ret = do_name(c, i, e, &cut);
        if (ret)
            return ret;
        if (cut) {
            cutkey = r.key;
            cutlen = r.klen;
        } else {
            cutkey = NULL;
        }
        i = e;
    }
    return 0;
}

struct walker {
    struct dctx *c;
    size_t from, to;
    int ret;
};

static void *walk_run(void *arg)
{
    struct walker *w = arg;
    w->ret = walk(w->c, w->from, w->to);
    return NULL;
}

/* Where a large zone's walk may be cut in two: about the middle, at a
 * record whose owner key's first octet below the origin differs from the
 * record's before it, so that no name before it is an ancestor of a name
 * from it on, the apex aside, and no cut before it occludes one after
 * it.  0 if none (walk it whole). */
static size_t walk_split(const zone_t *z)
{
    size_t skip = z->okey_len;
    if (z->n < 65536)
        return 0;
    for (size_t i = z->n / 2; i < z->n; i++) {
        rec_t a, b;
        rec_at(z, i - 1, &a);
        rec_at(z, i, &b);
        if (a.klen > skip && b.klen > skip && a.key[skip] != b.key[skip])
            return i;
    }
    return 0;
}

/* C2's chain entries after C's, their aux data too. */
static int ents_append(struct dctx *c, const struct dctx *c2)
{
    uint64_t base = c->aux.len;
    if (c2->nent == 0)
        return 0;
    if (arena_put(&c->aux, c2->aux.buf, c2->aux.len) != 0)
        return -ENOMEM;
    if (c->nent + c2->nent > c->cap) {
        size_t cap = c->nent + c2->nent;
        struct chainent *e = realloc(c->ent, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        c->ent = e;
        c->cap = cap;
    }
    for (size_t i = 0; i < c2->nent; i++) {
        c->ent[c->nent] = c2->ent[i];
        c->ent[c->nent++].aux += base;
    }
    return 0;
}

/* The names of Z, walked on two threads where the zone allows it: the
 * second walk starts with the apex on its stack, as the one walk would
 * have it there, and its entries follow the first's. */
static int walk_zone(struct dctx *c)
{
    zone_t *z = c->z;
    size_t m = walk_split(z);
    struct dctx *c2 = m ? calloc(1, sizeof(*c2)) : NULL;
    pthread_t th;
    if (!c2)
        return walk(c, 0, z->n);
    c2->z = z;
    c2->o = c->o;
    memcpy(c2->stack[0], z->okey, z->okey_len);
    c2->stlen[0] = z->okey_len;
    c2->depth = 1;
    struct walker w = {c2, m, z->n, 0};
    bool threaded = pthread_create(&th, NULL, walk_run, &w) == 0;
    if (!threaded)
        walk_run(&w);
    int ret = walk(c, 0, m);
    if (threaded)
        pthread_join(th, NULL);
    if (!ret)
        ret = w.ret;
    if (!ret)
        ret = ents_append(c, c2);
    free(c2->ent);
    arena_free(&c2->aux);
    free(c2);
    return ret;
}

int denial_build(zone_t *z, const signer_opts_t *o, uint32_t ttl,
                 uint64_t *made, signer_diag_t *diag)
{
    struct dctx *c = calloc(1, sizeof(*c));
    uint64_t *gen = NULL;
    int ret = 0;
    if (!c)
        return -ENOMEM;
    c->z = z;
    c->o = o;
    if ((ret = walk_zone(c)))
        goto out;
    size_t n0 = z->n;
    trace_mark("denial walk");
    ret = o->denial == SIGNER_DENIAL_NSEC3 ? emit_nsec3(c, ttl, diag)
                                           : emit_nsec(c, ttl);
    if (ret)
        goto out;
    size_t ng = z->n - n0;
    gen = malloc((ng ? ng : 1) * sizeof(*gen));
    if (!gen) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(gen, z->idx + n0, ng * sizeof(*gen));
    z->n = n0;
    trace_mark("denial emitted");
    ret = zone_merge(z, gen, ng);
    trace_mark("denial merged");
    *made = ng;
out:
    free(gen);
    free(c->ent);
    arena_free(&c->aux);
    free(c);
    return ret;
}

/*
 * signer/patch.c - the third road of --previous P: OUT made by editing P.
 *
 * A registry re-signs its zone many times a day, and between two runs a
 * percent or so of its delegations change.  The cache road (segment.c)
 * still reads, sorts and checks the whole input, and walks the whole
 * chain; this road touches only what changed:
 *  1. P.zsp (pindex.c), written by the run that made P, cuts P's input in
 *     chunks and knows every name of P with its place in P's text, its
 *     kind and a digest of its records.  It is used only while P and
 *     P.zsc are the files it was written with (size and digest: P.zsc is
 *     checked as it is read, P as it is streamed across, before anything
 *     is committed), the options and keys are the same (patch_config) and
 *     no signature of P is inside the refresh window (so every RRSIG of
 *     an unchanged RRset would be reused as it is).  The consistency
 *     proof and the HSM pool start meanwhile, on a thread of their own.
 *  2. The new input is cut the same way (on two threads); chunks whose
 *     digest P.zsp knows are unchanged.  The first chunk (directives and
 *     SOA) and the changed ones are parsed and checked as the reader
 *     checks a whole zone; the names they hold, and the names of P's
 *     chunks that are gone, are the names that may have changed; those
 *     whose records and kind are the same are dropped.
 *  3. Each remaining name's old and new state (delegation, secure, glue,
 *     authoritative) decides the NSEC3 records to add, remove or change
 *     (with their chain neighbours); then the names and NSEC3 records are
 *     signed (signatures of unchanged RRsets from P.zsc) and printed.
 *     The changed DS RRsets are known first: they go to the HSMs in a
 *     batch of their own as soon as the names are, while the chain is
 *     worked out on the other core; the rest goes in a second batch, and
 *     what an HSM caught signing wrongly signed in either is signed again.
 *     The text lengths are known before the HSMs sign (stand-in
 *     signatures of the keys' lengths), so the new index and OUT are made
 *     while they sign.  OUT is P with those names' text replaced,
 *     inserted or removed, streamed across in large reads and writes; what
 *     was written with stand-ins is written again when the signatures are
 *     in (its blocks digested again: OUT's digest is over its blocks'),
 *     and OUT's disk writes start only then, so no page goes to disk
 *     twice.  Then OUT is synced.
 *  4. OUT.zsc (P.zsc's entries but those of RRsets gone, and the new
 *     ones; the edited segments get a content digest that never matches,
 *     so a later cache road prints them) and OUT.zsp are written for the
 *     next run, while OUT is synced.
 * Anything else declines, and the caller takes the cache road, which
 * gives the same output: a delegation removed while names below it stay
 * or added above names, authoritative names added or removed, names
 * below the apex's children that are not glue, a warning or error in a
 * changed part (the reader then reports it as usual), DNAME, NSEC, more
 * than half of the input changed.  With ZONESIGN_TRACE set, one
 * line says what was done or why not.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"

static bool tracing(void)
{
    return getenv("ZONESIGN_TRACE") != NULL;
}

static int decline(const char *why)
{
    if (tracing())
        fprintf(stderr, "zonesign: trace: patch: declined: %s\n", why);
    return 1;
}

static char *path_ext(const char *p, const char *ext)
{
    size_t l = strlen(p) + strlen(ext) + 1;
    char *s = malloc(l);
    if (s)
        snprintf(s, l, "%s%s", p, ext);
    return s;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int d = memcmp(a, b, al < bl ? al : bl);
    if (d)
        return d;
    return al < bl ? -1 : al > bl;
}

/* ---------------------------------------------------------------- */
/* What must not change between the run that wrote the index and this  */

static int patch_config(const struct sctx *c, uint8_t out[32])
{
    const signer_opts_t *o = c->o;
    const zone_t *z = c->z;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    uint8_t h[64];
    unsigned l = 0;
    int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL);
#define UPD(p, n) (ok = ok && EVP_DigestUpdate(m, (p), (n)))
    UPD("zonegate patch config 1", 23);
    put32(h, (uint32_t)z->origin_len);
    UPD(h, 4);
    UPD(z->origin, z->origin_len);
    put32(h, (uint32_t)o->denial);
    put32(h + 4, (uint32_t)o->opt_out);
    put32(h + 8, o->iterations);
    put32(h + 12, (uint32_t)o->salt_len);
    /* the refresh threshold is not here: load() checks P's signatures
     * against this run's */
    put32(h + 16, 0);
    put32(h + 20, 0);
    put32(h + 24, WRITER_FORMAT_VERSION);
    put32(h + 28, SEGMENT_RULE);
    UPD(h, 32);
    UPD(o->salt, o->salt_len);
    const hsm_keyset_t *ks = c->ks;
    put32(h, (uint32_t)ks->count);
    UPD(h, 4);
    for (size_t i = 0; i < ks->count; i++) {
        const hsm_key_t *k = &ks->keys[i];
        put32(h, (uint32_t)k->id_len);
        put32(h + 4, (uint32_t)k->role);
        put32(h + 8, (uint32_t)k->state);
        put32(h + 12, (uint32_t)k->alg << 16 | k->flags);
        put32(h + 16, k->keytag);
        put32(h + 20, (uint32_t)k->pubkey_len);
        UPD(h, 24);
        UPD(k->id, k->id_len);
        UPD(k->pubkey, k->pubkey_len);
    }
    const struct keyuse *lists[2] = {c->ksk, c->zsk};
    size_t counts[2] = {c->nksk, c->nzsk};
    for (int t = 0; t < 2; t++) {
        put32(h, (uint32_t)counts[t]);
        UPD(h, 4);
        for (size_t i = 0; i < counts[t]; i++) {
            put32(h, (uint32_t)lists[t][i].idx);
            put32(h + 4, (uint32_t)lists[t][i].alg << 16 | lists[t][i].tag);
            UPD(h, 8);
        }
    }
#undef UPD
    ok = ok && EVP_DigestFinal_ex(m, out, &l) && l == 32;
    EVP_MD_CTX_free(m);
    return ok ? 0 : -ENOMEM;
}

/* The scanner-state digest after the first chunk of BUF (a zone Z with
 * its origin). */
static int first_ctx(const zone_t *z, const char *path, const char *buf,
                     const struct pchunks *pc, uint8_t ctx[16])
{
    zone_t t;
    uint64_t soa = 0, off = 0, len = pc_off(pc, 1), line = 1;
    int r = zone_init(&t, z->origin, z->origin_len);
    if (r)
        return r;
    r = reader_pieces(&t, path, buf, &off, &len, &line, 1, ctx, &soa);
    zone_free(&t);
    return r;
}

/* ---------------------------------------------------------------- */
/* After a whole run: OUT.zsp                                          */

static void *map_file(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    void *p = MAP_FAILED;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        *len = (size_t)st.st_size;
        p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

void patch_index_write(struct sctx *c, const signer_stats_t *stats,
                       bool cached)
{
    const signer_opts_t *o = c->o;
    char *zsp = path_ext(o->output, ".zsp"), *zsc = path_ext(o->output, ".zsc");
    struct pchunks pc = {0};
    struct pidx_hdr h;
    struct pwriter w = {.fd = -1};
    char *in = NULL, *out = NULL;
    size_t inlen = 0, outlen = 0;
    const char *why = NULL;
    uint64_t sum = 0;
    reaper_t rp = {0};
    memset(&h, 0, sizeof(h));
    if (!zsp || !zsc)
        goto done;
    if (!cached)
        why = "no signature cache written";
    else if (o->denial != SIGNER_DENIAL_NSEC3)
        why = "NSEC";
    else if (stats->warnings)
        why = "warnings";
    else if (c->z->nfiles != 1)
        why = "$INCLUDE";
    else if (stats->sigs_made + stats->sigs_reused !=
             (stats->signed_rrsets - 1) * c->nzsk + c->nksk)
        why = "signature count";
    /* an index beside OUT describes OUT, or is not there: the old one is
     * kept as the spare the new one is written over, or freed on a thread
     * while the new one is made (none is, or --no-spare) */
    side_retire(zsp, !why && !o->no_spare, &rp);
    reap_start(&rp);
    if (why)
        goto done;
    if (!(in = map_file(o->input, &inlen)) ||
        !(out = map_file(o->output, &outlen))) {
        why = "cannot map the files";
        goto done;
    }
    uint8_t key[PIDX_KEY];
    if (pidx_key_new(key) != 0) {
        why = "no random secret";
        goto done;
    }
    if (pchunks_make(in, inlen, true, key, &pc) != 0) {
        why = "input not fit for chunks";
        goto done;
    }
    trace_mark("index: input chunked");
    uint8_t ctx[16];
    if (first_ctx(c->z, o->input, in, &pc, ctx) != 0) {
        why = "first chunk";
        goto done;
    }
    if (pw_open(&w, zsp, o->no_spare) != 0) {
        why = "cannot write";
        goto done;
    }
    trace_mark("index: started");
    int r = pidx_build(&h, &w, c->z, o, &pc, out, outlen);
    trace_mark("index: names");
    if (r) {
        why = r == 1 ? "DNAME, or a name with 255 RRsets"
                     : "output and zone do not match, or no memory";
        goto done;
    }
    if (pidx_file_get(zsc, &h.zsc) != 0) {
        why = "cannot read the cache";
        goto done;
    }
    if (patch_config(c, h.config) != 0 || pw_finish(&w, &sum) != 0) {
        why = "cannot write";
        goto done;
    }
    memcpy(h.ctx, ctx, 16);
    h.min_exp = c->sig_min_exp;
    h.max_inc = c->sig_max_inc;
    h.serial = c->serial;
    h.soa_ttl = c->soa_ttl;
    h.soa_min = c->soa_min;
    h.records_in = stats->records_in;
    h.rrsets = stats->rrsets;
    h.signed_rrsets = stats->signed_rrsets;
    h.nsec3 = stats->nsec3;
    h.sigs = stats->sigs_made + stats->sigs_reused;
    if (pidx_write_end(&h, &w, zsp, sum) != 0)
        why = "cannot write";
done:
    pw_abort(&w);
    if (tracing())
        fprintf(stderr, "zonesign: trace: patch index %s%s (%llu chunks, "
                "%llu names in several)\n",
                why ? "not written: " : "written", why ? why : "",
                (unsigned long long)h.nchunks,
                (unsigned long long)h.nmulti);
    trace_mark("patch index");
    if (in)
        munmap(in, inlen);
    if (out)
        munmap(out, outlen);
    pchunks_free(&pc);
    reap_join(&rp);
    free(zsp);
    free(zsc);
}

/* ---------------------------------------------------------------- */
/* The road                                                           */

/* A name that may have changed. */
struct tname {
    const uint8_t *key;
    uint16_t klen;
    int64_t oi;     /* in the old index, -1: none */
    size_t ni, ne;  /* its records in the new zone (ni == ne: none) */
    uint8_t raw;    /* PN_APEX/DELEG/DS/INPUT from its new records */
    uint8_t nflags; /* new flags, 0: gone */
};

/* An NSEC3 entry of the new chain. */
struct nlink {
    uint8_t hash[20];
    const uint8_t *bm;
    uint32_t bml;
    int64_t oi;   /* in the old chain, -1: new */
    bool changed; /* content differs: signed and printed anew */
};

struct cedit {
    uint8_t hash[20];
    int kind; /* 0 insert, 1 delete, 2 bitmap changed */
    uint64_t bmoff;
    uint32_t bml;
};

/* A change of OUT against P: the name with KEY replaced by TEXT (or
 * removed, TEXT NULL), or inserted before the old name at S. */
struct pedit {
    const uint8_t *key;
    uint16_t klen;
    int64_t oi;
    int64_t zi;    /* name index in the new zone's text, -1: removal */
    uint64_t lb;   /* the old names before it: [0, lb) */
    uint64_t s, e; /* range in P */
    size_t seg;    /* P's segment it falls in */
};

/* A name read again whose records and kind did not change: not edited,
 * only its chunk (index in the new input) changes in the index. */
struct kept {
    uint64_t oi;
    uint32_t ck;
};

/* A run of P's segments in OUT: unchanged ones copied as they lie, or
 * edited ones assembled into one new segment, whose octets are kept (in
 * p->dtext) if they were written before the signatures were in. */
struct orun {
    size_t k, k2;      /* P's segments [k, k2) */
    bool edited;
    bool pending;      /* its text digest to be made (stand-ins) */
    uint64_t at;       /* its offset in OUT */
    size_t doff, dlen; /* edited and pending: its octets in p->dtext */
    uint64_t segi;     /* edited: its segment in p->w */
};

/* Where a name's text went: in p->dtext, in run RUN. */
struct oname {
    size_t zi, doff, run;
};

enum { FIN_NONE, FIN_READY, FIN_STOP };

struct patch {
    uint8_t key[PIDX_KEY]; /* P.zsp's secret: the new input's chunks under it */
    uint8_t *tkeys;   /* the new zone's keys of T (its arena moves) */
    struct kept *kept;
    size_t nkept;
    uint32_t *nrec;   /* records read per new chunk */
    uint32_t *piece;  /* new chunk index of each piece read */
    /* signatures of P's edited text (dead) and reused here (live), as
     * digests: P.zsc's entries whose RRSIG is dead and not live are not
     * carried into OUT.zsc, which holds OUT's RRsets only */
    uint64_t *dead, *live;
    size_t ndead, deadcap, nlive, livecap;
    arena_t oldtext;
    uint64_t nread;
    struct sctx *c;
    const signer_opts_t *o;
    struct pidx x, nx;
    struct pchunks pc;
    char *in;
    size_t inlen;
    uint32_t *match;  /* per new chunk: old chunk index, UINT32_MAX */
    uint8_t *gone;    /* per old chunk id */
    struct tname *t;
    size_t nt;
    struct cedit *ce;
    size_t nce, cecap;
    arena_t bms;      /* new bitmaps */
    struct nlink *nc;
    size_t nnc;
    arena_t keys;     /* NSEC3 owner keys of removals */
    struct pedit *ed;
    size_t ned;
    size_t *ztext;    /* per new-zone name: offset of its text, +1 end */
    size_t nzn;
    arena_t text;
    struct orun *runs;
    size_t nruns, runcap;
    struct oname *onm;
    size_t nonm, onmcap;
    arena_t dtext;
    size_t dpop;      /* p->dtext's octets made present */
    arena_t seg;      /* an edited run written with the signed text */
    struct fdig odig; /* OUT's digest */
    size_t fixed;     /* p->onm[0, fixed) have their signatures */
    size_t pend;      /* p->runs[0, pend) have their digests */
    size_t mended[2]; /* runs mended while OUT was written, after */
    bool wdone;       /* OUT written */
    uint64_t wpos;    /* OUT's octets written */
    /* the signed text, for the writer: FIN_READY once FIN and FZT are set,
     * FIN_STOP if there will be none */
    _Atomic int fin_state;
    const arena_t *fin;
    const size_t *fzt;
    struct chunk *ch;
    EVP_MD_CTX *md;
    struct cache_w *w;
    struct cache_pw *cpw; /* OUT.zsc begun (all but its segments) */
    uint64_t cdropped;    /* P.zsc's entries it leaves out */
    int pfd, ofd;
    struct pwriter pw; /* the new index */
    char *otmp, *ctmp, *zsc_out, *zsp_out;
    char *spare; /* OUT's spare (reap.c) */
    reaper_t rp; /* the files OUT replaces, freed on threads */
    uint64_t made, out_size;
    struct pidx_file out_file; /* OUT as written */
    uint64_t changed_chunks;
    /* the old names of gone chunks, found on a thread while the changed
     * parts are parsed */
    struct {
        size_t *v;
        size_t n;
        int ret;
        pthread_t th;
        bool threaded;
    } goneold;
    /* batches signed early (early_start): the DS RRsets read again, then
     * the NSEC3 records made; per job of P->ch, the early job it takes
     * its signature from (PRE_BATCH: of the second batch), +1 (0: none) */
    struct early {
        struct patch *p;
        struct chunk *ch;
        uint32_t *slot; /* its jobs by hash of key and signed data */
        size_t nslot;
        hsm_diag_t hd;
        int ret;
        pthread_t th;
        bool threaded;
        const char *what;
    } early[2];
    uint32_t *pre;
    /* the old index's body digest, checked on a thread of its own while
     * the changed parts are read (before anything is committed) */
    struct {
        pthread_t th;
        bool threaded, ok;
        _Atomic bool done;
    } ixv;
    /* the input's mapping, given back on a thread once it is parsed */
    struct {
        pthread_t th;
        bool threaded;
    } unmap;
};

static int64_t old_find(const struct pidx *x, const uint8_t *key, size_t kl,
                        size_t *lb)
{
    size_t lo = 0, hi = (size_t)x->h.nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct pidx_name *n = &x->names[mid];
        int d = key_cmp(x->keys + n->koff, n->klen, key, kl);
        if (d == 0) {
            if (lb)
                *lb = mid;
            return (int64_t)mid;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lb)
        *lb = lo;
    return -1;
}

/* The same for keys in increasing order: from *CUR on (the lower bound
 * of the key before), galloping; *CUR gets this key's lower bound. */
static int64_t old_find_from(const struct pidx *x, const uint8_t *key,
                             size_t kl, size_t *cur)
{
    size_t n = (size_t)x->h.nnames, lo = *cur, step = 1, hi = lo;
#define KCMP(i) key_cmp(x->keys + x->names[i].koff, x->names[i].klen, key, kl)
    while (hi < n && KCMP(hi) < 0) {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    if (hi > n)
        hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (KCMP(mid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *cur = lo;
    return lo < n && KCMP(lo) == 0 ? (int64_t)lo : -1;
#undef KCMP
}

static struct tname *t_find(const struct patch *p, const uint8_t *key,
                            size_t kl)
{
    size_t lo = 0, hi = p->nt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = key_cmp(p->t[mid].key, p->t[mid].klen, key, kl);
        if (d == 0)
            return &p->t[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Old flags of KEY (0: no such name). */
static uint8_t old_flags(const struct patch *p, const uint8_t *key, size_t kl)
{
    int64_t i = old_find(&p->x, key, kl, NULL);
    return i < 0 ? 0 : p->x.names[i].flags;
}

/* New raw flags of KEY: from the new records if it may have changed. */
static uint8_t new_raw(const struct patch *p, const uint8_t *key, size_t kl)
{
    const struct tname *t = t_find(p, key, kl);
    if (t)
        return t->raw;
    return old_flags(p, key, kl) &
           (PN_APEX | PN_DELEG | PN_DS | PN_INPUT | PN_DNAME);
}

/* Length of the key of the apex's child KEY is at or below. */
static size_t child_len(const uint8_t *key, size_t kl, size_t skip)
{
    for (size_t i = skip; i < kl; i++) {
        if (key[i] == 1)
            i++;
        else if (key[i] == 0)
            return i + 1;
    }
    return kl;
}

static int ce_add(struct patch *p, const uint8_t hash[20], int kind,
                  const uint8_t *bm, size_t bml)
{
    if (p->nce == p->cecap) {
        size_t cap = p->cecap ? 2 * p->cecap : 256;
        struct cedit *e = realloc(p->ce, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        p->ce = e;
        p->cecap = cap;
    }
    struct cedit *e = &p->ce[p->nce++];
    memcpy(e->hash, hash, 20);
    e->kind = kind;
    e->bmoff = p->bms.len;
    e->bml = (uint32_t)bml;
    return bml ? arena_put(&p->bms, bm, bml) : 0;
}

/* The type bitmap of the new records [i, e) of a name with flags F. */
static size_t new_bitmap(const zone_t *z, size_t i, size_t e, uint8_t f,
                         uint8_t *bm)
{
    uint16_t types[512];
    size_t nt = 0;
    bool deleg = f & PN_DELEG;
    for (size_t j = i; j < e;) {
        rec_t r;
        rec_at(z, j, &r);
        if ((!deleg || r.type == T_DS || r.type == T_NS) && nt < 500)
            types[nt++] = r.type;
        j = zone_run_end_in(z, j, e, true);
    }
    if (!deleg || (f & PN_DS))
        types[nt++] = T_RRSIG;
    return type_bitmap_of(types, nt, bm);
}

static int hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 20);
}

static int64_t chain_find(const struct pidx *x, const uint8_t h[20])
{
    size_t lo = 0, hi = (size_t)x->h.nchain;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = memcmp(x->chain[mid].hash, h, 20);
        if (d == 0)
            return (int64_t)mid;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void nsec3_owner(const zone_t *z, const uint8_t h[20], uint8_t *key,
                        size_t *kl)
{
    memcpy(key, z->okey, z->okey_len);
    size_t n = base32hex_encode(h, 20, (char *)key + z->okey_len);
    key[z->okey_len + n] = 0;
    *kl = z->okey_len + n + 1;
}

/* The input mapped and cut into chunks (on a thread of its own while
 * the index and the cache are read). */
struct chunker {
    struct patch *p;
    int ret; /* 0, 1: not fit, <0 */
};

static void *chunk_input(void *arg)
{
    struct chunker *k = arg;
    struct patch *p = k->p;
    if (!(p->in = map_file(p->o->input, &p->inlen))) {
        k->ret = 1;
        return NULL;
    }
    int r = pchunks_make(p->in, p->inlen, false, p->key, &p->pc);
    k->ret = r == -1 ? 1 : r;
    trace_mark("patch: input chunked");
    return NULL;
}

/* Steps 1 and 2: the index, the chunks, the changed parts parsed. */
/* The old names whose records came from chunks that are gone (in
 * canonical order): p->goneold. */
static void *gone_scan(void *arg)
{
    struct patch *p = arg;
    const struct pidx *x = &p->x;
    size_t n = 0, cap = 1024;
    size_t *v = malloc(cap * sizeof(*v));
    p->goneold.ret = v ? 0 : -ENOMEM;
    for (uint64_t i = 0; v && i < x->h.nnames; i++) {
        const struct pidx_name *nm = &x->names[i];
        if (!((nm->flags & PN_INPUT) && nm->chunk <= x->h.next_id &&
              p->gone[nm->chunk]))
            continue;
        if (n == cap) {
            size_t *q = realloc(v, 2 * cap * sizeof(*q));
            if (!q) {
                free(v);
                v = NULL;
                p->goneold.ret = -ENOMEM;
                break;
            }
            v = q;
            cap *= 2;
        }
        v[n++] = (size_t)i;
    }
    p->goneold.v = v;
    p->goneold.n = v ? n : 0;
    return NULL;
}

static void gone_join(struct patch *p)
{
    if (p->goneold.threaded)
        pthread_join(p->goneold.th, NULL);
    p->goneold.threaded = false;
}

static void *ixv_run(void *arg)
{
    struct patch *p = arg;
    p->ixv.ok = pidx_body_ok(&p->x);
    atomic_store_explicit(&p->ixv.done, true, memory_order_release);
    trace_mark("patch: index checked");
    return NULL;
}

/* The input's pages given back (a hundred megabytes of mappings cost
 * milliseconds to undo: on the core the names leave idle, not at the
 * end). */
static void *unmap_run(void *arg)
{
    struct patch *p = arg;
    munmap(p->in, p->inlen);
    return NULL;
}

static void unmap_join(struct patch *p)
{
    if (p->unmap.threaded) {
        pthread_join(p->unmap.th, NULL);
        p->unmap.threaded = false;
        p->in = NULL;
    }
}

/* Is the old index's body the one its digest says?  (The thread joined.) */
static bool ixv_join(struct patch *p)
{
    if (p->ixv.threaded)
        pthread_join(p->ixv.th, NULL);
    p->ixv.threaded = false;
    return p->ixv.ok;
}

/* With --no-spare: OUT's own index, when OUT is another file than P and
 * its index another than P's: commit() would remove it before OUT is
 * replaced; it goes now, and is freed on a reaper thread while the run
 * goes on.  (If the run fails, OUT is left as it was, without an index: a
 * later run from it takes the cache road.)  Without: commit() keeps it as
 * the index's spare, for the next run to write over. */
static int old_index_drop(struct patch *p, const struct stat *ps,
                          const char *pzsp)
{
    struct stat so, si, pi;
    if (!p->o->no_spare)
        return 0; /* kept as the index's spare by commit() */
    if (!p->zsp_out && !(p->zsp_out = path_ext(p->o->output, ".zsp")))
        return -ENOMEM;
    if (stat(p->o->output, &so) == 0 && so.st_dev == ps->st_dev &&
        so.st_ino == ps->st_ino)
        return 0; /* OUT is P */
    if (lstat(p->zsp_out, &si) != 0 || !S_ISREG(si.st_mode) ||
        (stat(pzsp, &pi) == 0 && pi.st_dev == si.st_dev &&
         pi.st_ino == si.st_ino))
        return 0;
    reap_unlink(&p->rp, p->zsp_out);
    reap_start(&p->rp);
    return 0;
}

/* Two chunk digests the same?  (Half a million of them are matched: two
 * loads each instead of a call to memcmp.) */
static inline bool dg_eq(const uint8_t *a, const uint8_t *b)
{
    _Static_assert(PIDX_DIGEST == 16, "a chunk digest is 16 octets");
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

static int load(struct patch *p)
{
    struct sctx *c = p->c;
    const signer_opts_t *o = p->o;
    char *zsp = path_ext(o->previous, ".zsp");
    char *zsc = path_ext(o->previous, ".zsc");
    struct stat sp;
    uint8_t cfg[32];
    struct chunker ck = {p, 0};
    pthread_t th;
    int r;
    if (!zsp || !zsc) {
        free(zsp);
        free(zsc);
        return -ENOMEM;
    }
    /* the chunks are digested under P.zsp's secret: its header first */
    if (pidx_key_read(zsp, p->key) != 0) {
        free(zsp);
        free(zsc);
        return decline("no usable patch index beside the previous zone");
    }
    bool threaded = pthread_create(&th, NULL, chunk_input, &ck) == 0;
    r = pidx_read(&p->x, zsp, true);
    trace_mark("patch: index read");
    const struct pidx_hdr *h = &p->x.h;
    bool same = false;
    if (r == 0 && (r = patch_config(c, cfg)) == 0) {
        /* P: its size now, its content as it is copied (write_out);
         * P.zsc: its content now */
        p->pfd = open(o->previous, O_RDONLY);
        same = p->pfd >= 0 && fstat(p->pfd, &sp) == 0 &&
               (uint64_t)sp.st_size == h->out.size &&
               cache_open_known(&c->pcache, zsc, c->z, &h->zsc) == 0;
        trace_mark("patch: cache read");
    }
    if (same && old_index_drop(p, &sp, zsp) == -ENOMEM)
        r = -ENOMEM;
    free(zsp);
    free(zsc);
    if (threaded)
        pthread_join(th, NULL);
    else
        chunk_input(&ck);
    if (r < -1)
        return r;
    if (r != 0)
        return decline("no usable patch index beside the previous zone");
    if (memcmp(cfg, h->config, 32) != 0)
        return decline("options or keys differ from the previous run's");
    if (memcmp(p->key, h->key, PIDX_KEY) != 0)
        return decline("previous zone's index replaced while it was read");
    if (!same)
        return decline("previous zone or its cache changed since its index");
    if (o->now < h->max_inc || h->min_exp - o->now <= o->refresh)
        return decline("signatures of the previous zone to refresh");
    if (ck.ret < 0)
        return ck.ret;
    if (ck.ret)
        return decline("input not a regular file, or not fit for chunks");
    trace_mark("patch: chunked");
    /* the index's body digest: on the core the parse leaves idle */
    p->ixv.threaded = pthread_create(&p->ixv.th, NULL, ixv_run, p) == 0;
    if (!p->ixv.threaded)
        ixv_run(p);
    /* step 2: chunks matched by digest (the first never: it is read).
     * The input mostly keeps P's order: a chunk is looked for just after
     * the last one matched (a few ahead: chunks changed or removed
     * between); those not found there, among the old chunks not matched
     * yet (a small table: moved chunks are found too) */
    size_t nold = (size_t)h->nchunks;
    p->match = malloc(p->pc.n * sizeof(*p->match));
    p->gone = calloc(h->next_id + 1, 1);
    uint8_t *used = calloc(nold + 1, 1);
    if (!p->match || !p->gone || !used) {
        free(used);
        return -ENOMEM;
    }
    const size_t ahead = 8;
    size_t next = 1, missed = 0;
    for (size_t j = 0; j < p->pc.n; j++) {
        p->match[j] = UINT32_MAX;
        for (size_t k = next; j > 0 && k < nold && k < next + ahead; k++)
            if (!used[k] &&
                dg_eq(p->x.chunks[k].dg, pc_dg(&p->pc, j))) {
                used[k] = 1;
                p->match[j] = (uint32_t)k;
                next = k + 1;
                break;
            }
        missed += j > 0 && p->match[j] == UINT32_MAX;
    }
    if (missed > 0) {
        size_t nfree = 0, slots = 16;
        for (size_t k = 1; k < nold; k++)
            nfree += !used[k];
        while (slots < 2 * nfree)
            slots *= 2;
        uint32_t *slot = malloc(slots * sizeof(*slot));
        if (!slot) {
            free(used);
            return -ENOMEM;
        }
        memset(slot, 0xff, slots * sizeof(*slot));
        for (size_t k = 1; k < nold; k++) {
            if (used[k])
                continue;
            size_t s = (size_t)get32(p->x.chunks[k].dg) & (slots - 1);
            while (slot[s] != UINT32_MAX)
                s = (s + 1) & (slots - 1);
            slot[s] = (uint32_t)k;
        }
        for (size_t j = 1; j < p->pc.n; j++) {
            if (p->match[j] != UINT32_MAX)
                continue;
            for (size_t s = (size_t)get32(pc_dg(&p->pc, j)) & (slots - 1);
                 slot[s] != UINT32_MAX; s = (s + 1) & (slots - 1)) {
                uint32_t k = slot[s];
                if (!used[k] && dg_eq(p->x.chunks[k].dg, pc_dg(&p->pc, j))) {
                    used[k] = 1;
                    p->match[j] = k;
                    break;
                }
            }
        }
        free(slot);
    }
    uint64_t changed = 0;
    for (size_t j = 0; j < p->pc.n; j++)
        if (p->match[j] == UINT32_MAX) {
            changed += pc_off(&p->pc, j + 1) - pc_off(&p->pc, j);
            p->changed_chunks++;
        }
    for (size_t k = 0; k < nold; k++)
        if (!used[k] && p->x.chunks[k].id <= h->next_id)
            p->gone[p->x.chunks[k].id] = 1;
    free(used);
    /* a name with records in several chunks, one of them gone: all of
     * them are read again (until no more such names) */
    if (h->nmulti) {
        uint32_t *at = malloc(((size_t)h->next_id + 1) * sizeof(*at));
        if (!at)
            return -ENOMEM;
        memset(at, 0xff, ((size_t)h->next_id + 1) * sizeof(*at));
        for (size_t j = 0; j < p->pc.n; j++)
            if (p->match[j] != UINT32_MAX)
                at[p->x.chunks[p->match[j]].id] = (uint32_t)j;
        for (bool more = true; more;) {
            more = false;
            for (uint64_t m = 0; m < h->nmulti;) {
                uint64_t e = m;
                bool hit = false;
                while (e < h->nmulti && p->x.multi[e].name == p->x.multi[m].name)
                    hit |= p->gone[p->x.multi[e++].chunk];
                for (uint64_t q = m; hit && q < e; q++) {
                    uint32_t id = p->x.multi[q].chunk, j = at[id];
                    if (p->gone[id] || j == UINT32_MAX)
                        continue;
                    p->gone[id] = 1;
                    p->match[j] = UINT32_MAX;
                    p->changed_chunks++;
                    changed += pc_off(&p->pc, j + 1) - pc_off(&p->pc, j);
                    more = true;
                }
                m = e;
            }
        }
        free(at);
    }
    if (changed > p->inlen / 2)
        return decline("more than half of the input changed");
    trace_mark("patch: chunks matched");
    p->goneold.threaded = pthread_create(&p->goneold.th, NULL, gone_scan,
                                         p) == 0;
    if (!p->goneold.threaded)
        gone_scan(p);
    /* the first chunk and the changed ones, parsed in one scanner */
    uint64_t *off = malloc(3 * p->changed_chunks * sizeof(*off));
    if (!off)
        return -ENOMEM;
    uint64_t *len = off + p->changed_chunks, *line = len + p->changed_chunks;
    size_t n = 0;
    if (!(p->piece = malloc((p->changed_chunks + 1) * sizeof(*p->piece)))) {
        free(off);
        return -ENOMEM;
    }
    for (size_t j = 0; j < p->pc.n; j++)
        if (p->match[j] == UINT32_MAX) {
            p->piece[n] = (uint32_t)j;
            off[n] = pc_off(&p->pc, j);
            len[n] = pc_off(&p->pc, j + 1) - pc_off(&p->pc, j);
            line[n++] = pc_line(&p->pc, j);
        }
    uint8_t ctx[16];
    uint64_t soa = 0;
    r = reader_pieces(c->z, o->input, p->in, off, len, line, n, ctx, &soa);
    free(off);
    if (r)
        return r < 0 ? r : decline("a changed part is not clean (error, "
                                   "warning or state)");
    if (soa != 1 || memcmp(ctx, h->ctx, 16) != 0)
        return decline("the first chunk's directives or SOA changed");
    trace_mark("patch: changed parts parsed");
    p->unmap.threaded = pthread_create(&p->unmap.th, NULL, unmap_run, p) == 0;
    uint64_t w = 0;
    signer_diag_t d = {{0}};
    if (reader_check(c->z, &w, &d) != 0 || w) {
        if (tracing())
            fprintf(stderr, "zonesign: trace: patch: %s\n", d.msg);
        return decline("the changed parts do not pass the checks");
    }
    trace_mark("patch: changed parts checked");
    return 0;
}

static void relocate(struct patch *p);

/* Step 3a: the names that may have changed, and their new flags. */
static int touched(struct patch *p)
{
    zone_t *z = p->c->z;
    const struct pidx *x = &p->x;
    size_t skip = z->okey_len;
    /* names of chunks that are gone (the multi-chunk names: all of theirs
     * must be gone, they are checked below with the others) */
    gone_join(p);
    if (p->goneold.ret)
        return p->goneold.ret;
    size_t nold = p->goneold.n, *old = p->goneold.v;
    p->goneold.v = NULL;
    /* merged with the new zone's names, in canonical order */
    size_t nz = 0;
    for (size_t i = 0; i < z->n; i = zone_run_end(z, i, false))
        nz++;
    p->t = calloc(nz + nold + 1, sizeof(*p->t));
    if (!p->t) {
        free(old);
        return -ENOMEM;
    }
    size_t i = 0, k = 0, cursor = 0;
    while (i < z->n || k < nold) {
        struct tname *t = &p->t[p->nt];
        rec_t r;
        int d;
        /* the old names ahead are far apart in a large index: their
         * entries and keys asked for before they are compared */
        if (k + 8 < nold)
            __builtin_prefetch(&x->names[old[k + 8]]);
        if (k + 4 < nold)
            __builtin_prefetch(x->keys + x->names[old[k + 4]].koff);
        if (i < z->n) {
            rec_at(z, i, &r);
            d = k < nold ? key_cmp(r.key, r.klen,
                                   x->keys + x->names[old[k]].koff,
                                   x->names[old[k]].klen)
                         : -1;
        } else {
            d = 1;
        }
        t->oi = -1;
        if (d <= 0) {
            size_t e = zone_run_end(z, i, false);
            t->key = r.key;
            t->klen = r.klen;
            t->ni = i;
            t->ne = e;
            t->raw = PN_INPUT | (r.klen == skip ? PN_APEX : 0);
            for (size_t j = i; j < e; j++) {
                rec_t q;
                rec_at(z, j, &q);
                if (q.type == T_NS && r.klen != skip)
                    t->raw |= PN_DELEG;
                if (q.type == T_DS)
                    t->raw |= PN_DS;
                if (q.type == T_DNAME)
                    t->raw |= PN_DNAME;
            }
            if (!(t->raw & PN_DELEG))
                t->raw &= (uint8_t)~PN_DS;
            /* a name of a gone chunk is where the merge found it; the
             * others (new, or moved from a chunk still there) searched */
            if (d == 0) {
                t->oi = (int64_t)old[k++];
                cursor = old[k - 1];
            } else {
                t->oi = old_find_from(x, r.key, r.klen, &cursor);
            }
            i = e;
        } else {
            const struct pidx_name *nm = &x->names[old[k]];
            t->key = x->keys + nm->koff;
            t->klen = nm->klen;
            t->oi = (int64_t)old[k++];
        }
        p->nt++;
    }
    free(old);
    /* the new zone's arena moves as records are added: T keeps copies */
    size_t tk = 0;
    for (size_t j = 0; j < p->nt; j++)
        if (p->t[j].ni < p->t[j].ne)
            tk += p->t[j].klen;
    if (!(p->tkeys = malloc(tk + 1)))
        return -ENOMEM;
    tk = 0;
    for (size_t j = 0; j < p->nt; j++)
        if (p->t[j].ni < p->t[j].ne) {
            memcpy(p->tkeys + tk, p->t[j].key, p->t[j].klen);
            p->t[j].key = p->tkeys + tk;
            tk += p->t[j].klen;
        }
    /* the records read, per chunk, for the index */
    if (!(p->nrec = calloc(p->pc.n + 1, sizeof(*p->nrec))))
        return -ENOMEM;
    for (size_t q = 0; q < z->n; q++) {
        rec_t r;
        rec_at(z, q, &r);
        p->nrec[p->piece[r.line]]++;
        p->nread++;
    }
    /* every name's old records must all be read again; names read again
     * but unchanged (same records, same kind) are no edits: most names of
     * a changed chunk are such (one pass: the old entries are far apart
     * in a large index, each is brought in once) */
    if (!(p->kept = malloc((p->nt + 1) * sizeof(*p->kept))))
        return -ENOMEM;
    size_t w = 0;
    for (size_t j = 0; j < p->nt; j++) {
        struct tname *t = &p->t[j];
        const struct pidx_name *nm = t->oi >= 0 ? &x->names[t->oi] : NULL;
        if (j + 8 < p->nt && p->t[j + 8].oi >= 0)
            __builtin_prefetch(&x->names[p->t[j + 8].oi]);
        if (t->raw & PN_DNAME)
            return decline("DNAME");
        if (nm && !(nm->flags & PN_INPUT))
            return decline("a name of the input is an NSEC3 owner name");
        /* (a name in several chunks has all of them read: load) */
        if (nm && !(nm->chunk <= x->h.next_id && p->gone[nm->chunk]))
            return decline("a changed name also has records in an "
                           "unchanged chunk");
        if (nm && (nm->flags & PN_DNAME))
            return decline("DNAME");
        bool same = nm && t->ni < t->ne && !(t->raw & PN_APEX) &&
                    (t->raw & (PN_DELEG | PN_DS)) ==
                        (nm->flags & (PN_DELEG | PN_DS)) &&
                    pidx_content(z, t->ni, t->ne, x->h.key) == nm->content;
        uint32_t ck = UINT32_MAX;
        for (size_t q = t->ni; same && q < t->ne; q++) {
            rec_t r;
            rec_at(z, q, &r);
            uint32_t k2 = (uint32_t)p->piece[r.line];
            if (ck != UINT32_MAX && k2 != ck)
                same = false; /* now in two chunks: an edit */
            ck = k2;
        }
        if (same) {
            p->kept[p->nkept++] = (struct kept){(uint64_t)t->oi, ck};
            /* its records leave the new zone: nothing of it is signed or
             * printed (idx entries are marked, then compacted) */
            for (size_t q = t->ni; q < t->ne; q++)
                z->idx[q] = UINT64_MAX;
        } else {
            p->t[w++] = *t;
        }
    }
    p->nt = w;
    size_t zw = 0;
    for (size_t q = 0; q < z->n; q++)
        if (z->idx[q] != UINT64_MAX)
            z->idx[zw++] = z->idx[q];
    z->n = zw;
    relocate(p);
    /* new flags; what may change */
    for (size_t j = 0; j < p->nt; j++) {
        struct tname *t = &p->t[j];
        uint8_t of = t->oi >= 0 ? x->names[t->oi].flags : 0;
        bool present = t->ni < t->ne;
        if (t->klen == skip) {
            if (!present)
                return decline("apex gone");
            t->nflags = PN_APEX | PN_INPUT | PN_CHAIN;
            continue;
        }
        size_t a1 = child_len(t->key, t->klen, skip);
        if (a1 == t->klen) { /* a child of the apex */
            bool od = of & PN_DELEG, nd = present && (t->raw & PN_DELEG);
            bool oa = of && !od, na = present && !nd;
            /* delegations come, go and change; authoritative names only
             * change */
            if (oa != na || (oa && nd) || (na && od))
                return decline("an authoritative name added, removed "
                               "or made a delegation");
            if (od && !present) {
                /* delegation removed: nothing may stay below it */
                size_t lb;
                old_find(x, t->key, t->klen, &lb);
                for (size_t q = lb + 1; q < x->h.nnames; q++) {
                    const struct pidx_name *nm = &x->names[q];
                    if (!key_under(t->key, t->klen, x->keys + nm->koff,
                                   nm->klen))
                        break;
                    const struct tname *u =
                        t_find(p, x->keys + nm->koff, nm->klen);
                    if (!u || u->ni < u->ne)
                        return decline("a delegation removed while names "
                                       "below it stay");
                }
            }
            if (!of && present) {
                size_t lb;
                old_find(x, t->key, t->klen, &lb);
                if (lb < x->h.nnames &&
                    key_under(t->key, t->klen,
                              x->keys + x->names[lb].koff, x->names[lb].klen))
                    return decline("a delegation added above existing "
                                   "names");
            }
            if (present) {
                t->nflags = t->raw;
                if (!((t->raw & PN_DELEG) && p->o->opt_out &&
                      !(t->raw & PN_DS)))
                    t->nflags |= PN_CHAIN;
            }
            continue;
        }
        /* deeper: glue below a delegation, or an authoritative name that
         * stays one */
        uint8_t a_old = old_flags(p, t->key, a1);
        uint8_t a_new = new_raw(p, t->key, a1);
        bool dold = a_old & PN_DELEG, dnew = a_new & PN_DELEG;
        if (dold || dnew) {
            if ((!dold && of) || (!dnew && present))
                return decline("names below a delegation that came or "
                               "went");
            if (present)
                t->nflags = PN_OCCL | PN_INPUT | (t->raw & (PN_DS));
            continue;
        }
        if (!of || !present || (of & (PN_OCCL | PN_DELEG)) ||
            (t->raw & PN_DELEG))
            return decline("a name below the apex's children that is not "
                           "glue was added, removed or made a delegation");
        t->nflags = (t->raw & ~PN_DELEG) | (of & PN_CHAIN);
    }
    return 0;
}

/* Step 3b: the chain edits, the new chain, the NSEC3 records to make. */
static int chain(struct patch *p, uint32_t ttl)
{
    struct sctx *c = p->c;
    zone_t *z = c->z;
    const struct pidx *x = &p->x;
    const signer_opts_t *o = p->o;
    int r;
    for (size_t j = 0; j < p->nt; j++) {
        const struct tname *t = &p->t[j];
        uint8_t of = t->oi >= 0 ? x->names[t->oi].flags : 0;
        bool om = of & PN_CHAIN, nm = t->nflags & PN_CHAIN;
        if (!om && !nm)
            continue;
        uint8_t wire[256], h[20], bm[8704];
        size_t wl = key_to_wire(t->key, t->klen, wire), bl = 0;
        nsec3_hash(wire, wl, o->salt, o->salt_len, o->iterations, h);
        if (nm)
            bl = new_bitmap(z, t->ni, t->ne, t->nflags, bm);
        if (om && nm) {
            int64_t ci = chain_find(x, h);
            if (ci < 0)
                return decline("index chain lacks a name");
            const struct pidx_link *l = &x->chain[ci];
            if (l->bmlen == bl && memcmp(x->bm + l->bmoff, bm, bl) == 0)
                continue;
            r = ce_add(p, h, 2, bm, bl);
        } else {
            r = ce_add(p, h, om ? 1 : 0, bm, bl);
        }
        if (r)
            return r;
    }
    if (p->nce > 1) /* (qsort wants an array, even of none) */
        qsort(p->ce, p->nce, sizeof(*p->ce), hash_cmp);
    for (size_t j = 1; j < p->nce; j++)
        if (memcmp(p->ce[j - 1].hash, p->ce[j].hash, 20) == 0)
            return decline("NSEC3 hash collision among the changes");
    size_t n = (size_t)x->h.nchain;
    p->nc = malloc((n + p->nce + 1) * sizeof(*p->nc));
    if (!p->nc)
        return -ENOMEM;
    size_t i = 0, k = 0;
    while (i < n || k < p->nce) {
        int d = i >= n ? 1 : k >= p->nce ? -1
                           : memcmp(x->chain[i].hash, p->ce[k].hash, 20);
        struct nlink *l = &p->nc[p->nnc];
        if (d < 0) {
            memcpy(l->hash, x->chain[i].hash, 20);
            l->bm = x->bm + x->chain[i].bmoff;
            l->bml = x->chain[i].bmlen;
            l->oi = (int64_t)i++;
            l->changed = false;
            p->nnc++;
            continue;
        }
        const struct cedit *e = &p->ce[k++];
        if (d == 0 && e->kind == 0)
            return decline("NSEC3 hash collision");
        if (d > 0 && e->kind != 0)
            return decline("index chain lacks a hash");
        if (e->kind == 1) {
            i++;
            continue;
        }
        memcpy(l->hash, e->hash, 20);
        l->bm = p->bms.buf + e->bmoff; /* every bitmap is in by now */
        l->bml = e->bml;
        l->oi = d == 0 ? (int64_t)i++ : -1;
        l->changed = true;
        p->nnc++;
    }
    if (p->nnc == 0)
        return decline("empty chain");
    for (size_t j = 0; j < p->nnc; j++) {
        struct nlink *l = &p->nc[j];
        if (l->changed || l->oi < 0)
            continue;
        const uint8_t *nx = p->nc[(j + 1) % p->nnc].hash;
        const uint8_t *ox = x->chain[((size_t)l->oi + 1) % n].hash;
        if (memcmp(nx, ox, 20) != 0)
            l->changed = true;
    }
    /* the NSEC3 records to make; their owners must be no input names */
    for (size_t j = 0; j < p->nnc; j++) {
        const struct nlink *l = &p->nc[j];
        if (!l->changed)
            continue;
        uint8_t key[KEY_MAX], rd[8704 + 300];
        size_t kl, ol = 0;
        nsec3_owner(z, l->hash, key, &kl);
        if (t_find(p, key, kl) || (old_flags(p, key, kl) & PN_INPUT))
            return decline("an NSEC3 owner name is an input name");
        rd[ol++] = 1;
        rd[ol++] = o->opt_out ? 1 : 0;
        put16(rd + ol, o->iterations);
        ol += 2;
        rd[ol++] = (uint8_t)o->salt_len;
        memcpy(rd + ol, o->salt, o->salt_len);
        ol += o->salt_len;
        rd[ol++] = 20;
        memcpy(rd + ol, p->nc[(j + 1) % p->nnc].hash, 20);
        ol += 20;
        memcpy(rd + ol, l->bm, l->bml);
        ol += l->bml;
        if ((r = zone_add_key(z, key, kl, T_NSEC3, ttl, rd, (uint16_t)ol,
                              RF_SIGN | RF_GEN)))
            return r;
    }
    /* removed chain entries: their owners leave the text */
    for (size_t j = 0; j < p->nce; j++) {
        if (p->ce[j].kind != 1)
            continue;
        uint8_t key[KEY_MAX];
        size_t kl;
        nsec3_owner(z, p->ce[j].hash, key, &kl);
        uint8_t hk[2];
        put16(hk, (uint16_t)kl);
        if ((r = arena_put(&p->keys, hk, 2)) ||
            (r = arena_put(&p->keys, key, kl)))
            return r;
    }
    return 0;
}

/* Which records are signed (as denial.c marks them). */
static void mark_signed(struct patch *p)
{
    zone_t *z = p->c->z;
    for (size_t i = 0; i < z->n;) {
        size_t e = zone_run_end(z, i, false);
        rec_t r;
        rec_at(z, i, &r);
        const struct tname *t = t_find(p, r.key, r.klen);
        uint8_t f = t ? t->nflags : 0;
        for (size_t j = i; j < e;) {
            rec_t q;
            rec_at(z, j, &q);
            size_t te = zone_run_end_in(z, j, e, true);
            bool sign = q.type == T_NSEC3 && (q.flags & RF_GEN)
                            ? true
                        : (f & PN_OCCL) ? false
                        : (f & PN_DELEG) ? q.type == T_DS
                                         : true;
            uint8_t *fp = rec_flags_ptr(z, q.off);
            *fp = (uint8_t)(sign ? (*fp | RF_SIGN) : (*fp & ~RF_SIGN));
            j = te;
        }
        i = e;
    }
}

static int u64_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        uint64_t *q = realloc(*v, c * sizeof(*q));
        if (!q)
            return -ENOMEM;
        *v = q;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool u64_has(const uint64_t *v, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

/* The digest of the signature field of RRSIG RDATA RD. */
static uint64_t sig_digest(const uint8_t *rd, size_t len)
{
    if (len < 19)
        return 0;
    size_t nl = name_wire_len(rd + 18, len - 18);
    if (nl == 0 || 18 + nl > len)
        return 0;
    return XXH3_64bits(rd + 18 + nl, len - 18 - nl);
}

/* The RRSIGs in P's text T of edited names: their signatures are dead. */
static int collect_dead(struct patch *p, const uint8_t *t, size_t n)
{
    const char *q = (const char *)t, *end = q + n;
    while (q < end) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *le = nl ? nl : end;
        /* "owner TTL IN RRSIG ... signature" */
        const char *f = q;
        for (int k = 0; k < 3 && f < le; k++) {
            f = memchr(f, ' ', (size_t)(le - f));
            f = f ? f + 1 : le;
        }
        if ((size_t)(le - f) > 6 && memcmp(f, "RRSIG ", 6) == 0) {
            const char *b = le;
            while (b > f && b[-1] != ' ')
                b--;
            size_t bl = (size_t)(le - b);
            uint8_t sig[1024];
            if (bl > 0 && bl % 4 == 0 && bl / 4 * 3 <= sizeof(sig)) {
                int dl = EVP_DecodeBlock(sig, (const unsigned char *)b,
                                         (int)bl);
                if (dl > 0) {
                    dl -= (b[bl - 1] == '=') + (b[bl - 2] == '=');
                    int r = u64_push(&p->dead, &p->ndead, &p->deadcap,
                                     XXH3_64bits(sig, (size_t)dl));
                    if (r)
                        return r;
                }
            }
        }
        q = le + 1;
    }
    return 0;
}

/* The signatures of P's text that the edits replace or remove: dead.
 * Read here, apart from the writer's stream, while OUT is written (P's
 * digest, checked by the writer, still decides whether any of it is
 * used); runs of edits that touch are read at once. */
static int dead_scan(struct patch *p)
{
    for (size_t j = 0; j < p->ned;) {
        uint64_t s0 = p->ed[j].s, e0 = p->ed[j].e;
        size_t j2 = j + 1;
        while (j2 < p->ned && p->ed[j2].s <= e0) {
            if (p->ed[j2].e > e0)
                e0 = p->ed[j2].e;
            j2++;
        }
        j = j2;
        if (e0 <= s0)
            continue;
        p->oldtext.len = 0;
        int r = arena_reserve(&p->oldtext, (size_t)(e0 - s0));
        if (r)
            return r;
        ssize_t got;
        do
            got = pread(p->pfd, p->oldtext.buf, (size_t)(e0 - s0), (off_t)s0);
        while (got < 0 && errno == EINTR);
        if (got != (ssize_t)(e0 - s0))
            return -ESTALE;
        if ((r = collect_dead(p, p->oldtext.buf, (size_t)got)))
            return r;
    }
    if (p->ndead > 1)
        qsort(p->dead, p->ndead, sizeof(*p->dead), u64_cmp);
    return 0;
}

static bool entry_dead(void *arg, const uint8_t *rd, uint16_t len)
{
    const struct patch *p = arg;
    uint64_t d = sig_digest(rd, len);
    return u64_has(p->dead, p->ndead, d) && !u64_has(p->live, p->nlive, d);
}

struct sigit {
    struct chunk *ch;
    size_t next;
};

static int sig_next(void *arg, size_t *pos, const uint8_t **rd, uint16_t *len)
{
    struct sigit *s = arg;
    if (s->next >= s->ch->nitems)
        return 1;
    const struct item *it = &s->ch->items[s->next++];
    *pos = it->pos;
    *rd = chunk_item_rdata(s->ch, it, s->ch->rd, len);
    return 0;
}

/* The new zone printed into TEXT, and each name's text (ZT[k] to
 * ZT[k + 1]): the lines with its owner. */
static int print_names(struct patch *p, arena_t *text, size_t *zt)
{
    const zone_t *z = p->c->z;
    struct sigit si = {p->ch, 0};
    int r;
    text->len = 0;
    if ((r = writer_format(z, 0, z->n, sig_next, &si, text)))
        return r;
    const char *b = (const char *)text->buf, *q = b, *end = b + text->len;
    for (size_t k = 0; k < p->nzn; k++) {
        zt[k] = (size_t)(q - b);
        const char *first = q;
        size_t ol = 0;
        while (first + ol < end && first[ol] != ' ')
            ol++;
        while (q < end && (size_t)(end - q) > ol && q[ol] == ' ' &&
               memcmp(q, first, ol) == 0) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            q = nl ? nl + 1 : end;
        }
        if (q == first)
            return -EINVAL;
    }
    if (q != end)
        return -EINVAL;
    zt[p->nzn] = text->len;
    return 0;
}

/* Step 3b (early): the DS RRsets of the parts read again, and then the
 * NSEC3 records made, are signed on threads of their own while the names,
 * the chain, the jobs and the edits are worked out (one core has nothing
 * else to do then).  Their jobs are made as sign_prepare makes them (chunk_build on the zone
 * with only those RRsets to sign: reused signatures are found the same
 * way); sign_prepare's jobs with the same key and the same signed data
 * take these signatures instead of being signed again. */
static uint64_t job_hash(const uint8_t *d, uint32_t len, uint32_t key)
{
    return XXH3_64bits_withSeed(d, len, key);
}

#define PRE_BATCH 0x80000000u

static void *early_run(void *arg)
{
    struct early *ea = arg;
    struct chunk *ch = ea->ch;
    ea->ret = hsm_pool_sign(ea->p->c->pool, ch->jobs, ch->njobs, &ea->hd);
    trace_mark(ea->what);
    return NULL;
}

static void early_join(struct patch *p)
{
    for (int b = 0; b < 2; b++)
        if (p->early[b].threaded) {
            pthread_join(p->early[b].th, NULL);
            p->early[b].threaded = false;
        }
}

/* Early batch B: the records [FROM, TO) of the zone marked RF_SIGN, their
 * jobs made (as sign_prepare makes them: reused signatures are found the
 * same way) and signed on a thread of their own. */
static int early_batch(struct patch *p, int b, size_t from, size_t to,
                       const char *what)
{
    struct sctx *c = p->c;
    struct early *ea = &p->early[b];
    int r;
    struct chunk *ch = calloc(1, sizeof(*ch));
    if (!ch || (!p->md && cache_md_new(&p->md) != 0)) {
        free(ch);
        return -ENOMEM;
    }
    ea->p = p;
    ea->ch = ch;
    ea->what = what;
    ch->start = from;
    ch->end = to;
    if ((r = chunk_build(c, ch, p->md)))
        return r;
    if (ch->njobs == 0)
        return 0;
    size_t ns = 16;
    while (ns < 2 * ch->njobs)
        ns *= 2;
    if ((r = chunk_jobs_point(c, ch)))
        return r;
    if (!(ea->slot = malloc(ns * sizeof(*ea->slot))))
        return -ENOMEM;
    memset(ea->slot, 0xff, ns * sizeof(*ea->slot));
    ea->nslot = ns;
    for (size_t j = 0; j < ch->njobs; j++) {
        const hsm_job_t *jb = &ch->jobs[j];
        size_t s0 = (size_t)job_hash(jb->data, jb->len, jb->key) & (ns - 1);
        while (ea->slot[s0] != UINT32_MAX)
            s0 = (s0 + 1) & (ns - 1);
        ea->slot[s0] = (uint32_t)j;
    }
    ea->threaded = pthread_create(&ea->th, NULL, early_run, ea) == 0;
    if (!ea->threaded)
        early_run(ea);
    return 0;
}

static int early_start(struct patch *p)
{
    zone_t *z = p->c->z;
    size_t nds = 0;
    /* only the DS RRsets of delegations to sign: of the apex's children
     * with NS records (mark_signed sets every record's flag again later;
     * a DS signed here that is not signed in the end is only wasted) */
    for (size_t i = 0; i < z->n;) {
        size_t e = zone_run_end(z, i, false);
        rec_t r0;
        rec_at(z, i, &r0);
        bool deleg = false;
        if (r0.klen > z->okey_len &&
            child_len(r0.key, r0.klen, z->okey_len) == r0.klen)
            for (size_t j = i; j < e && !deleg; j++) {
                rec_t q;
                rec_at(z, j, &q);
                deleg = q.type == T_NS;
            }
        for (size_t j = i; j < e; j++) {
            rec_t q;
            rec_at(z, j, &q);
            uint8_t *fp = rec_flags_ptr(z, q.off);
            bool sign = deleg && q.type == T_DS;
            *fp = (uint8_t)(sign ? (*fp | RF_SIGN) : (*fp & ~RF_SIGN));
            nds += sign;
        }
        i = e;
    }
    return nds ? early_batch(p, 0, 0, z->n, "patch: early DS signed") : 0;
}

/* P->ch's jobs that an early job signs: P->pre. */
static int early_match(struct patch *p)
{
    struct chunk *ch = p->ch;
    if ((!p->early[0].slot && !p->early[1].slot) || ch->njobs == 0)
        return 0;
    if (!(p->pre = calloc(ch->njobs, sizeof(*p->pre))))
        return -ENOMEM;
    for (size_t j = 0; j < ch->njobs; j++) {
        const hsm_job_t *jb = &ch->jobs[j];
        const uint8_t *d = ch->data.buf + (uintptr_t)jb->data;
        uint64_t h = job_hash(d, jb->len, jb->key);
        for (int b = 0; b < 2 && !p->pre[j]; b++) {
            const struct early *ea = &p->early[b];
            size_t ns = ea->nslot;
            for (size_t s0 = (size_t)h & (ns - 1);
                 ea->slot && ea->slot[s0] != UINT32_MAX;
                 s0 = (s0 + 1) & (ns - 1)) {
                const hsm_job_t *e = &ea->ch->jobs[ea->slot[s0]];
                if (e->key == jb->key && e->len == jb->len &&
                    memcmp(e->data, d, jb->len) == 0) {
                    p->pre[j] = (ea->slot[s0] + 1) | (b ? PRE_BATCH : 0);
                    break;
                }
            }
        }
    }
    return 0;
}

/* P->ch signed: the jobs no early job signs in one batch, the others
 * from the early ones; then every job an HSM signed before it was caught
 * signing wrongly (in any batch) signed again. */
static int patch_sign(struct patch *p, hsm_diag_t *hd)
{
    struct sctx *c = p->c;
    struct chunk *ch = p->ch;
    if (!p->pre) {
        early_join(p);
        return chunk_sign(c, ch, hd);
    }
    size_t nr = 0;
    hsm_job_t *rest = malloc(ch->njobs * sizeof(*rest));
    int r = rest ? chunk_jobs_point(c, ch) : -ENOMEM;
    for (size_t j = 0; !r && j < ch->njobs; j++)
        if (!p->pre[j])
            rest[nr++] = ch->jobs[j];
    if (!r)
        r = hsm_pool_sign(c->pool, rest, nr, hd);
    for (size_t j = 0, k = 0; !r && j < ch->njobs; j++)
        if (!p->pre[j]) {
            ch->jobs[j].sig_len = rest[k].sig_len;
            ch->jobs[j].hsm = rest[k++].hsm;
        }
    free(rest);
    early_join(p);
    for (int b = 0; b < 2 && !r; b++)
        if (p->early[b].ret) {
            r = p->early[b].ret;
            *hd = p->early[b].hd;
        }
    for (size_t j = 0; !r && j < ch->njobs; j++)
        if (p->pre[j]) {
            const struct early *ea = &p->early[p->pre[j] & PRE_BATCH ? 1 : 0];
            const hsm_job_t *e = &ea->ch->jobs[(p->pre[j] & ~PRE_BATCH) - 1];
            memcpy(ch->jobs[j].sig, e->sig, e->sig_len);
            ch->jobs[j].sig_len = e->sig_len;
            ch->jobs[j].hsm = e->hsm;
        }
    return r ? r : hsm_pool_redo_tainted(c->pool, ch->jobs, ch->njobs, hd);
}

/* Step 3c: the signing jobs, and the names printed with stand-in
 * signatures of the lengths the keys give (ECDSA, EdDSA and RSA
 * signatures have one length per key): the edits and the new index need
 * only the lengths of the names' text, so they are made while the HSMs
 * sign. */
static int sign_prepare(struct patch *p)
{
    struct sctx *c = p->c;
    zone_t *z = c->z;
    struct chunk *ch;
    int r;
    if (!(p->ch = ch = calloc(1, sizeof(*ch))) ||
        (!p->md && cache_md_new(&p->md) != 0) ||
        cache_w_new(&p->w) != 0)
        return -ENOMEM;
    ch->start = 0;
    ch->end = z->n;
    if ((r = chunk_build(c, ch, p->md)))
        return r;
    if (ch->njobs) {
        ch->sigcap = ch->njobs * c->sigmax;
        if (!(ch->sigs = calloc(ch->njobs, c->sigmax)))
            return -ENOMEM;
        for (size_t j = 0; j < ch->njobs; j++) {
            ch->jobs[j].sig = ch->sigs + j * c->sigmax;
            ch->jobs[j].sig_len = hsm_pool_sig_max(c->pool, ch->jobs[j].key);
        }
        if ((r = early_match(p)))
            return r;
    }
    for (size_t i = 0; i < z->n; i = zone_run_end(z, i, false))
        p->nzn++;
    if (!(p->ztext = malloc((p->nzn + 1) * sizeof(*p->ztext))))
        return -ENOMEM;
    return print_names(p, &p->text, p->ztext);
}

/* Signed, and printed again into FIN (names at *ZF): 0 if every name's
 * text kept its length, 2 if not (OUT and the new index are made again),
 * or an error.  p->text stays as it is: OUT is being written from it. */
static int sign_finish(struct patch *p, hsm_diag_t *hd, arena_t *fin,
                       size_t **zf)
{
    size_t *zt = malloc((p->nzn + 1) * sizeof(*zt));
    int r = zt ? patch_sign(p, hd) : -ENOMEM;
    trace_mark("patch: HSMs done");
    if (!r)
        r = print_names(p, fin, zt);
    if (!r)
        r = memcmp(zt, p->ztext, (p->nzn + 1) * sizeof(*zt)) == 0 ? 0 : 2;
    *zf = zt;
    return r;
}

/* OUT.zsc's new entries: RRsets with a fresh signature whose digest the
 * previous cache does not have; the signatures' times; the reused ones
 * (live: their entries stay). */
static int cache_entries(struct patch *p)
{
    struct sctx *c = p->c;
    size_t last = SIZE_MAX;
    bool fresh = false;
    int r;
    for (size_t i = 0; i < p->ch->nitems; i++) {
        const struct item *it = &p->ch->items[i];
        uint16_t len;
        const uint8_t *rd = chunk_item_rdata(p->ch, it, p->ch->rd, &len);
        sig_times(c, rd, len);
        if (it->job != UINT32_MAX)
            p->made++;
        else if ((r = u64_push(&p->live, &p->nlive, &p->livecap,
                               sig_digest(rd, len))))
            return r;
        if (it->pos != last) {
            last = it->pos;
            cache_sigs_t cs;
            fresh = cache_find(c->pcache, it->dg, &cs) != 0;
            if (fresh && (r = cache_w_begin(p->w, it->dg)))
                return r;
        }
        if (fresh && (r = cache_w_add(p->w, rd, len)))
            return r;
    }
    return 0;
}

static int ed_cmp(const void *a, const void *b)
{
    const struct pedit *x = a, *y = b;
    return key_cmp(x->key, x->klen, y->key, y->klen);
}

/* Step 3d: the edits of P, in P's order. */
static int edits(struct patch *p)
{
    const zone_t *z = p->c->z;
    const struct pidx *x = &p->x;
    size_t nrm = 0;
    for (size_t j = 0; j < p->nt; j++)
        nrm += p->t[j].oi >= 0 && !p->t[j].nflags;
    for (size_t j = 0; j < p->nce; j++)
        nrm += p->ce[j].kind == 1;
    if (!(p->ed = calloc(p->nzn + nrm + 1, sizeof(*p->ed))))
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < z->n; i = zone_run_end(z, i, false)) {
        rec_t r;
        rec_at(z, i, &r);
        struct pedit *e = &p->ed[p->ned++];
        e->key = r.key;
        e->klen = r.klen;
        e->zi = (int64_t)k++;
    }
    for (size_t j = 0; j < p->nt; j++)
        if (p->t[j].oi >= 0 && !p->t[j].nflags) {
            struct pedit *e = &p->ed[p->ned++];
            e->key = p->t[j].key;
            e->klen = p->t[j].klen;
            e->zi = -1;
        }
    for (size_t o = 0; o < p->keys.len;) {
        struct pedit *e = &p->ed[p->ned++];
        e->klen = get16(p->keys.buf + o);
        e->key = p->keys.buf + o + 2;
        e->zi = -1;
        o += 2 + e->klen;
    }
    if (p->ned > 1)
        qsort(p->ed, p->ned, sizeof(*p->ed), ed_cmp);
    size_t nsegs = cache_nsegs(p->c->pcache);
    uint64_t size = x->h.out.size;
    if (nsegs == 0)
        return decline("previous cache without segments");
    size_t lb = 0; /* the edits are in order: each search starts there */
    size_t tj = 0; /* the names that may have changed know their old place */
    for (size_t j = 0; j < p->ned; j++) {
        struct pedit *e = &p->ed[j];
        if (j > 0 && ed_cmp(&p->ed[j - 1], e) == 0)
            return decline("one name edited twice");
        int d = 1;
        while (tj < p->nt && (d = key_cmp(p->t[tj].key, p->t[tj].klen,
                                          e->key, e->klen)) < 0)
            tj++;
        if (d == 0 && p->t[tj].oi >= 0) {
            e->oi = p->t[tj].oi;
            lb = (size_t)e->oi;
        } else {
            e->oi = old_find_from(x, e->key, e->klen, &lb);
        }
        e->lb = lb;
        if (e->oi >= 0) {
            e->s = x->names[e->oi].off;
            e->e = (uint64_t)e->oi + 1 < x->h.nnames
                       ? x->names[e->oi + 1].off
                       : size;
        } else {
            if (e->zi < 0)
                return decline("a name to remove is not in the index");
            e->s = e->e = lb < x->h.nnames ? x->names[lb].off : size;
        }
        /* the segment holding S (the last one for the end of P) */
        size_t lo = 0, hi = nsegs;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (cache_seg_off(p->c->pcache, mid) <= e->s)
                lo = mid;
            else
                hi = mid;
        }
        e->seg = lo;
        if (e->e > (lo + 1 < nsegs ? cache_seg_off(p->c->pcache, lo + 1)
                                   : size))
            return decline("index and segments disagree");
    }
    return 0;
}

/* P read and OUT written through two batches, each with a buffer of P
 * (ib) and one of assembled text (ob), STREAM_BUF octets each: P is read
 * in order, once, in large reads (a P cut short meanwhile is a short
 * read, not a SIGBUS), and OUT written in large writes, the unchanged
 * runs straight from where P was read into, the edited ones kept for
 * mending from where they were assembled (p->dtext), the others copied
 * into ob (their assembly buffer is reused at once).  A
 * batch filled is written (and digested) by a thread of its own while
 * the other is filled; the disk writes of OUT start as it is written
 * once its text is final, so the sync at the end waits for less.  OUT is
 * written while the HSMs sign, with the stand-in signatures
 * (sign_prepare); fix_runs puts the signatures in. */
#define STREAM_BUF (1u << 20)

#define STREAM_IOV 4096

#ifndef IOV_MAX
#define IOV_MAX 1024 /* (writev's limit of pieces per call) */
#endif

struct sbatch {
    uint8_t *ib;
    uint64_t ioff; /* P's offset of ib[0] */
    size_t ilen;
    size_t olen; /* octets of its pieces not in ib */
    uint8_t *ob; /* assembled octets copied here (obl of them) */
    size_t obl;
    size_t fresh; /* ib[0, fresh) read from P into this batch: digested
                   * when the batch is written */
    /* OUT's pieces: runs of P in ib, assembled runs in p->dtext or ob */
    struct iovec iov[STREAM_IOV];
    int niov;
};

struct stream {
    int in, out;
    struct sbatch b[2], *c; /* c: the batch being filled */
    uint64_t icons;         /* P consumed up to here */
    uint64_t written, synced, opos;
    bool kick; /* start OUT's disk writes as it goes (its text is final) */
    /* P as read (in order, every octet once: it must be the file the
     * index was written with), and OUT as written (by the writing
     * thread; with the stand-ins: their blocks are digested again when
     * the signatures are in) */
    struct fdig ist, *ost;
    uint64_t iread;
    /* the writing thread: the batch handed to it (NULL: none, it is
     * idle), its first error */
    pthread_t th;
    bool threaded, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sbatch *handed;
    int err;
    /* OUT's disk writes are started by a thread of their own (starting
     * them may wait for the disk's queue): up to kto, started to kdone */
    pthread_t kth;
    bool kthreaded, kstop;
    pthread_cond_t kcv;
    uint64_t kto, kdone;
};

static void *kick_run(void *arg)
{
    struct stream *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (st->kto == st->kdone && !st->kstop)
            pthread_cond_wait(&st->kcv, &st->mu);
        if (st->kto == st->kdone)
            break;
        uint64_t from = st->kdone, to = st->kto;
        pthread_mutex_unlock(&st->mu);
        sync_file_range(st->out, (off_t)from, (off_t)(to - from),
                        SYNC_FILE_RANGE_WRITE);
        pthread_mutex_lock(&st->mu);
        st->kdone = to;
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* Batch B digested (what it read of P, what it holds of OUT: both in the
 * order the batches were filled, which is the order they come here in)
 * and written to OUT, its disk writes started.  On the writing thread:
 * the filling thread has the larger share of the work. */
static int batch_write(struct stream *st, struct sbatch *b)
{
    int r = 0;
    if (b->fresh > 0) {
        r = fdig_feed(&st->ist, b->ib, b->fresh);
        b->fresh = 0;
    }
    for (int i = 0; i < b->niov && !r; i++)
        r = fdig_feed(st->ost, b->iov[i].iov_base, b->iov[i].iov_len);
    struct iovec *v = b->iov;
    int n = b->niov;
    while (n > 0 && !r) {
        ssize_t w = writev(st->out, v, n < IOV_MAX ? n : IOV_MAX);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = -EIO;
            break;
        }
        st->written += (uint64_t)w;
        /* past what was written (writev may write part) */
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (uint8_t *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    /* (whole pages only: a page half written and sent to disk would be
     * locked for that write when the next batch comes to finish it) */
    uint64_t whole = st->written & ~(uint64_t)4095;
    if (!r && st->kick && whole >= st->synced + (32u << 20)) {
        if (st->kthreaded) {
            pthread_mutex_lock(&st->mu);
            st->kto = whole;
            pthread_cond_signal(&st->kcv);
            pthread_mutex_unlock(&st->mu);
        } else {
            sync_file_range(st->out, (off_t)st->synced,
                            (off_t)(whole - st->synced),
                            SYNC_FILE_RANGE_WRITE);
        }
        st->synced = whole;
    }
    return r;
}

static void *batch_run(void *arg)
{
    struct stream *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->handed && !st->stop)
            pthread_cond_wait(&st->cv, &st->mu);
        if (!st->handed)
            break;
        struct sbatch *b = st->handed;
        pthread_mutex_unlock(&st->mu);
        int r = batch_write(st, b);
        pthread_mutex_lock(&st->mu);
        if (r && !st->err)
            st->err = r;
        st->handed = NULL;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* Waits until the writing thread is idle: its error, or 0. */
static int st_idle(struct stream *st)
{
    if (!st->threaded)
        return st->err;
    pthread_mutex_lock(&st->mu);
    while (st->handed)
        pthread_cond_wait(&st->cv, &st->mu);
    int r = st->err;
    pthread_mutex_unlock(&st->mu);
    return r;
}

/* The batch being filled handed to the writing thread (or written here);
 * the other is filled from now on, with what is left of P in the first
 * one's ib (not consumed yet) carried over. */
static int st_flush(struct stream *st)
{
    struct sbatch *b = st->c, *nb = b == &st->b[0] ? &st->b[1] : &st->b[0];
    int r = st_idle(st); /* the other batch written: free */
    if (r)
        return r;
    if (b->niov > 0 || b->fresh > 0) {
        if (st->threaded) {
            pthread_mutex_lock(&st->mu);
            st->handed = b;
            pthread_cond_broadcast(&st->cv);
            pthread_mutex_unlock(&st->mu);
        } else if ((r = st->err = batch_write(st, b))) {
            return r;
        }
    }
    /* (the handed batch's ib is only read meanwhile) */
    nb->niov = 0;
    nb->olen = nb->obl = 0;
    nb->ioff = st->icons;
    nb->ilen = 0;
    if (st->icons >= b->ioff && st->icons < b->ioff + b->ilen) {
        nb->ilen = (size_t)(b->ioff + b->ilen - st->icons);
        memcpy(nb->ib, b->ib + (st->icons - b->ioff), nb->ilen);
    }
    st->c = nb;
    if (!st->threaded)
        b->niov = 0, b->olen = b->obl = 0;
    return 0;
}

/* Everything handed written: OUT is all there. */
static int st_drain(struct stream *st)
{
    int r = st_flush(st);
    return r ? r : st_idle(st);
}

/* A piece of OUT at P (in the batch's ib or ob, or p->dtext, N octets),
 * after the ones before; the caller made room for it. */
static void st_piece(struct stream *st, const uint8_t *p, size_t n)
{
    struct sbatch *b = st->c;
    st->opos += n;
    if (b->niov > 0) {
        struct iovec *l = &b->iov[b->niov - 1];
        if ((const uint8_t *)l->iov_base + l->iov_len == p) {
            l->iov_len += n; /* the run goes on */
            return;
        }
    }
    b->iov[b->niov++] = (struct iovec){(void *)p, n};
}

/* Assembled octets to OUT, up to STREAM_BUF of them in a batch: written
 * from where they lie (P: p->dtext, which holds still until the batches
 * are written: st_drain comes before any mending), or if COPY, copied
 * into the batch's own buffer first (P is used again at once). */
static int st_put(struct stream *st, const uint8_t *p, size_t n, bool copy)
{
    while (n > 0) {
        /* room for the octets and their piece first: a flush changes
         * the batch */
        if (st->c->olen == STREAM_BUF || st->c->niov == STREAM_IOV) {
            int r = st_flush(st);
            if (r)
                return r;
        }
        struct sbatch *b = st->c;
        size_t k = STREAM_BUF - b->olen < n ? STREAM_BUF - b->olen : n;
        if (copy) { /* (obl <= olen: there is room) */
            memcpy(b->ob + b->obl, p, k);
            st_piece(st, b->ob + b->obl, k);
            b->obl += k;
        } else {
            st_piece(st, p, k);
        }
        b->olen += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* P's octets [OFF, OFF + N) to OUT as they lie (ARENA: appended there
 * instead; SKIP: neither, only read and digested); P is consumed in
 * order. */
static int st_take(struct stream *st, uint64_t off, uint64_t n, arena_t *a,
                   bool skip)
{
    if (off != st->icons)
        return -ESTALE; /* not in order: never so */
    while (n > 0) {
        struct sbatch *b = st->c;
        if (off < b->ioff || off >= b->ioff + b->ilen ||
            (!a && !skip && b->niov == STREAM_IOV)) {
            /* another batch (what points into this one's ib goes out
             * first), and P read further into its ib */
            int r = st_flush(st);
            if (r)
                return r;
            b = st->c;
            if (off >= b->ioff + b->ilen) {
                ssize_t got;
                do
                    got = pread(st->in, b->ib, STREAM_BUF, (off_t)off);
                while (got < 0 && errno == EINTR);
                if (got <= 0 || off != st->iread)
                    return -ESTALE; /* cut short, or not read in order */
                b->ioff = off;
                b->ilen = b->fresh = (size_t)got;
                st->iread += b->ilen;
            }
        }
        size_t at = (size_t)(off - b->ioff), k = b->ilen - at;
        if (k > n)
            k = (size_t)n;
        if (a) {
            int r = arena_put(a, b->ib + at, k);
            if (r)
                return r;
        } else if (!skip) {
            st_piece(st, b->ib + at, k);
        }
        off += k;
        n -= k;
        st->icons = off;
    }
    return 0;
}

static int st_copy(struct stream *st, uint64_t off, uint64_t n, arena_t *a)
{
    return st_take(st, off, n, a, false);
}

static int st_open(struct stream *st)
{
    for (int i = 0; i < 2; i++)
        if (!(st->b[i].ib = malloc(STREAM_BUF)) ||
            !(st->b[i].ob = malloc(STREAM_BUF)))
            return -ENOMEM;
    st->c = &st->b[0];
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_cond_init(&st->kcv, NULL);
    st->threaded = pthread_create(&st->th, NULL, batch_run, st) == 0;
    st->kthreaded = pthread_create(&st->kth, NULL, kick_run, st) == 0;
    return 0;
}

/* One of the stream's threads stopped: *STOP set under the lock, CV
 * signalled, TH joined. */
static void st_stop(struct stream *st, bool *stop, pthread_cond_t *cv,
                    pthread_t th)
{
    pthread_mutex_lock(&st->mu);
    *stop = true;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(th, NULL);
}

static void st_close(struct stream *st)
{
    if (st->threaded) {
        st_stop(st, &st->stop, &st->cv, st->th);
        st->threaded = false;
    }
    if (st->kthreaded) {
        st_stop(st, &st->kstop, &st->kcv, st->kth);
        st->kthreaded = false;
    }
    if (st->c) {
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        pthread_cond_destroy(&st->kcv);
    }
    for (int i = 0; i < 2; i++) {
        free(st->b[i].ib);
        free(st->b[i].ob);
    }
    fdig_free(&st->ist);
}

static int orun_push(struct patch *p, struct orun ru)
{
    int r = vec_grow((void **)&p->runs, &p->runcap, p->nruns + 1, sizeof(ru));
    if (!r)
        p->runs[p->nruns++] = ru;
    return r;
}

static int oname_push(struct patch *p, struct oname on)
{
    int r = vec_grow((void **)&p->onm, &p->onmcap, p->nonm + 1, sizeof(on));
    if (!r)
        p->onm[p->nonm++] = on;
    return r;
}

static int fix_runs(struct patch *p, const arena_t *fin, const size_t *zf);

/* An edited segment's digests: its text digest TD, and a content digest
 * CD no content gives (so a later cache road prints it if ever needed). */
static void seg_digests(const uint8_t *t, size_t n, uint8_t cd[CACHE_DIGEST],
                        uint8_t td[CACHE_DIGEST])
{
    cache_text_digest(t, n, td);
    for (int b = 0; b < CACHE_DIGEST; b++)
        cd[b] = td[b] ^ 0x5a;
}

/* p->dtext's pages made present for N octets more, 4 MiB at a time at
 * least: not one by one as they are written (fresh memory costs more than
 * its size), and no more of them than the runs kept need. */
static void dtext_room(struct patch *p, size_t n)
{
    size_t need = p->dtext.len + n;
    if (need <= p->dpop)
        return;
    size_t to = need - p->dpop < (4u << 20) ? p->dpop + (4u << 20) : need;
    if (to > p->dtext.cap)
        to = p->dtext.cap;
    mem_populate(p->dtext.buf + p->dpop, to - p->dpop);
    p->dpop = to;
}

/* Step 3e: OUT written beside itself from P and the names' text (which
 * may hold stand-in signatures): its runs into p->runs, the octets of the
 * edited ones written with stand-ins kept in p->dtext, and where each
 * name's text went in those (p->onm).  Runs on a thread of its own while
 * the HSMs sign. */
static int write_out(struct patch *p)
{
    const struct cache *pc = p->c->pcache;
    size_t nsegs = cache_nsegs(pc);
    uint64_t size = p->x.h.out.size;
    uint8_t *dirty = calloc(nsegs, 1);
    struct stream st = {.in = p->pfd, .ost = &p->odig, .err = 0};
    /* the names' text: with stand-ins until the signed text is there */
    uint8_t *const *text = &p->text.buf;
    const size_t *zt = p->ztext;
    /* for the tests, the two orders forced: "mid" takes the signed text
     * only after half the edited runs, waiting for it there (mended as
     * OUT is written), "end" never takes it (mended after OUT is
     * written) */
    const char *order = getenv("ZONESIGN_TEST_WRITER");
    bool wait_mid = order && strcmp(order, "mid") == 0,
         at_end = order && strcmp(order, "end") == 0;
    size_t nedited = 0;
    int r = 0;
    p->nruns = p->nonm = p->fixed = p->pend = 0;
    cache_w_segs_reset(p->w);
    p->mended[0] = p->mended[1] = 0;
    p->wdone = false;
    p->dtext.len = 0;
    fdig_free(&p->odig);
    if (!dirty) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < p->ned; j++)
        dirty[p->ed[j].seg] = 1;
    /* the memory it all needs, taken at once (fresh memory costs more
     * than its size, the more so when it grows by copies; p->dtext's made
     * present as it is used, dtext_room); the edited runs counted
     * (ZONESIGN_TEST_WRITER=mid waits after half of them) */
    uint64_t dbytes = p->text.len;
    size_t half = 0;
    for (size_t k = 0; k < nsegs; k++)
        if (dirty[k]) {
            half += k == 0 || !dirty[k - 1];
            dbytes += (k + 1 < nsegs ? cache_seg_off(pc, k + 1) : size) -
                      cache_seg_off(pc, k);
        }
    size_t nedruns = half;
    half = (half + 1) / 2;
    p->dpop = 0;
    r = arena_reserve(&p->dtext, (size_t)dbytes);
    /* (runs: the edited ones and those between; names: one per edit) */
    if (!r && !(r = vec_grow((void **)&p->runs, &p->runcap, 2 * nedruns + 1,
                             sizeof(*p->runs))))
        mem_populate(p->runs, p->runcap * sizeof(*p->runs));
    if (!r && !(r = vec_grow((void **)&p->onm, &p->onmcap, p->ned + 1,
                             sizeof(*p->onm))))
        mem_populate(p->onm, p->onmcap * sizeof(*p->onm));
    if (r ||
        (r = cache_w_segs_reserve(p->w, nsegs + p->ned)) ||
        (r = fdig_reserve(&st.ist, size)) ||
        (r = fdig_reserve(&p->odig, size + dbytes)))
        goto out;
    /* OUT's spare written over, or a new file */
    if (!p->spare && !(p->spare = spare_path(p->o->output))) {
        r = -ENOMEM;
        goto out;
    }
    if ((p->ofd = spare_open(p->o->output, p->spare, p->o->no_spare,
                             &p->rp, &p->otmp)) < 0) {
        r = -EIO;
        goto out;
    }
    st.out = p->ofd;
    if ((r = st_open(&st)))
        goto out;
    size_t j = 0;
    for (size_t k = 0; k < nsegs && !r;) {
        size_t k2 = k;
        while (k2 < nsegs && dirty[k2] == dirty[k])
            k2++;
        uint64_t rs = cache_seg_off(pc, k),
                 re = k2 < nsegs ? cache_seg_off(pc, k2) : size;
        struct orun ru = {k, k2, dirty[k] != 0, false, st.opos, 0, 0, 0};
        if (!ru.edited) {
            if (!(r = st_copy(&st, rs, re - rs, NULL)) &&
                !(r = orun_push(p, ru)))
                r = cache_w_segs_from(p->w, pc, k, k2);
            k = k2;
            continue;
        }
        /* the signed text, once it is there: what was written with
         * stand-ins is mended, and OUT's disk writes start */
        if (!st.kick && !at_end && (!wait_mid || nedited >= half)) {
            int fs = atomic_load_explicit(&p->fin_state, memory_order_acquire);
            while (wait_mid && nedited >= half && fs == FIN_NONE) {
                nanosleep(&(struct timespec){0, 1000000}, NULL);
                fs = atomic_load_explicit(&p->fin_state, memory_order_acquire);
            }
            if (fs == FIN_STOP) {
                r = -ECANCELED;
                break;
            }
            if (fs == FIN_READY && !(r = st_drain(&st))) {
                p->wpos = st.written;
                if ((r = fix_runs(p, p->fin, p->fzt)))
                    break;
                st.kick = true;
                text = &p->fin->buf;
                zt = p->fzt;
            }
        }
        /* edited segments: one new segment, assembled in p->dtext if it
         * has stand-ins (kept there to be mended), else in p->seg (which
         * the next one reuses: it is copied into the batch) */
        bool keep = !st.kick;
        arena_t *a = keep ? &p->dtext : &p->seg;
        if (keep) {
            uint64_t most = re - rs;
            for (size_t q = j; q < p->ned && p->ed[q].seg < k2; q++)
                if (p->ed[q].zi >= 0)
                    most += zt[p->ed[q].zi + 1] - zt[p->ed[q].zi];
            dtext_room(p, (size_t)most);
        } else {
            p->seg.len = 0;
        }
        ru.doff = a->len;
        uint64_t cur = rs;
        for (; j < p->ned && p->ed[j].seg < k2 && !r; j++) {
            const struct pedit *e = &p->ed[j];
            if ((r = st_copy(&st, cur, e->s - cur, a)))
                break;
            /* the old text (its signatures: dead_scan) */
            if (e->e > e->s && (r = st_take(&st, e->s, e->e - e->s, NULL, true)))
                break;
            if (e->zi >= 0) {
                struct oname on = {(size_t)e->zi, a->len, p->nruns};
                if (!keep || !(r = oname_push(p, on)))
                    r = arena_put(a, *text + zt[e->zi],
                                  zt[e->zi + 1] - zt[e->zi]);
            }
            cur = e->e;
        }
        if (!r)
            r = st_copy(&st, cur, re - cur, a);
        ru.dlen = a->len - ru.doff;
        if (!r && ru.dlen > UINT32_MAX)
            r = -EOVERFLOW;
        if (!r && ru.dlen > 0) {
            /* its segment: its digests now, or once the stand-ins are
             * mended */
            ru.segi = cache_w_nsegs(p->w);
            ru.pending = keep;
            uint8_t cd[CACHE_DIGEST] = {0}, td[CACHE_DIGEST] = {0};
            if (!ru.pending)
                seg_digests(a->buf + ru.doff, ru.dlen, cd, td);
            if (!(r = cache_w_seg(p->w, cd, td, (uint32_t)ru.dlen)) &&
                !(r = orun_push(p, ru)) &&
                !(r = st_put(&st, a->buf + ru.doff, ru.dlen, !keep)))
                nedited++;
        }
        k = k2;
    }
    if (!r)
        r = st_drain(&st);
    if (!r && !(r = fdig_end(&st.ist)) && !(r = fdig_end(&p->odig))) {
        /* P as the index knows it? */
        uint8_t dg[16];
        fdig_digest(&st.ist, dg);
        if (st.iread != size || memcmp(dg, p->x.h.out.dg, 16) != 0)
            r = -ESTALE;
        p->out_file.size = p->wpos = st.written;
        p->wdone = true;
    }
out:
    st_close(&st);
    free(dirty);
    if (r == -ESTALE)
        return decline("the previous zone is not the one its index was "
                       "written with");
    if (r)
        return r;
    trace_mark("patch: written");
    return 0;
}

static int pwrite_all(int fd, const uint8_t *b, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* The signatures into what OUT has of the names' text from p->onm[p->fixed]
 * on: FIN's (names at ZF, of the lengths written) over the stand-ins, in
 * p->dtext and in OUT, and OUT's blocks that changed digested again. */
static int fix_runs(struct patch *p, const arena_t *fin, const size_t *zf)
{
    uint8_t blk[FDIG_BLOCK];
    size_t run = SIZE_MAX;
    int r = 0;
    for (size_t i = p->fixed; i <= p->nonm && !r; i++) {
        if (run != SIZE_MAX && (i == p->nonm || p->onm[i].run != run)) {
            /* run RUN changed: written again, its blocks digested (a
             * block it shares with the runs beside it read back) */
            const struct orun *ru = &p->runs[run];
            r = pwrite_all(p->ofd, p->dtext.buf + ru->doff, ru->dlen, ru->at);
            for (uint64_t b = ru->at / FDIG_BLOCK;
                 !r && b * FDIG_BLOCK < ru->at + ru->dlen; b++) {
                uint64_t off = b * FDIG_BLOCK, end = p->wpos;
                size_t n = end - off < FDIG_BLOCK ? (size_t)(end - off)
                                                  : FDIG_BLOCK;
                if (off >= ru->at && off + n <= ru->at + ru->dlen) {
                    /* wholly inside the run: what was just written */
                    fdig_redo(&p->odig, (size_t)b,
                              p->dtext.buf + ru->doff + (off - ru->at), n);
                    continue;
                }
                ssize_t got;
                do
                    got = pread(p->ofd, blk, n, (off_t)off);
                while (got < 0 && errno == EINTR);
                if (got != (ssize_t)n)
                    r = -EIO;
                else
                    fdig_redo(&p->odig, (size_t)b, blk, n);
            }
            run = SIZE_MAX;
            p->mended[p->wdone]++;
        }
        if (i == p->nonm || r)
            break;
        const struct oname *on = &p->onm[i];
        size_t n = zf[on->zi + 1] - zf[on->zi];
        uint8_t *a = p->dtext.buf + on->doff;
        const uint8_t *b = fin->buf + zf[on->zi];
        if (memcmp(a, b, n) != 0) {
            memcpy(a, b, n);
            run = on->run;
        }
    }
    p->fixed = p->nonm;
    /* the segments written with stand-ins: their digests */
    for (; p->pend < p->nruns && !r; p->pend++) {
        struct orun *ru = &p->runs[p->pend];
        uint8_t cd[CACHE_DIGEST], td[CACHE_DIGEST];
        if (!ru->pending)
            continue;
        seg_digests(p->dtext.buf + ru->doff, ru->dlen, cd, td);
        cache_w_seg_set(p->w, ru->segi, cd, td);
        ru->pending = false;
    }
    return r;
}

/* After the writer: the signatures into OUT if it was done first (FIN,
 * ZF: the signed text), and OUT's digest. */
static int write_finish(struct patch *p, const arena_t *fin, const size_t *zf)
{
    int r = fix_runs(p, fin, zf);
    if (r)
        return r;
    fdig_digest(&p->odig, p->out_file.dg);
    p->out_size = cache_w_size(p->w);
    return p->out_size == p->out_file.size
               ? 0
               : decline("OUT's segments and OUT disagree");
}

/* The new index, streamed to a temporary file beside OUT.zsp (its header
 * is written after OUT's rename, pidx_write_end): P's index with the
 * edits and the new chunks.  Names are written as they are merged; the
 * keys of unchanged runs of names are written from P's index as they
 * lie (a list of pieces). */
struct piece {
    const uint8_t *p;
    size_t n;
};

static int pieces_add(struct piece **v, size_t *n, size_t *cap,
                      const uint8_t *p, size_t len)
{
    if (*n && (*v)[*n - 1].p + (*v)[*n - 1].n == p) {
        (*v)[*n - 1].n += len; /* the run goes on */
        return 0;
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        struct piece *q = realloc(*v, c * sizeof(*q));
        if (!q)
            return -ENOMEM;
        *v = q;
        *cap = c;
    }
    (*v)[(*n)++] = (struct piece){p, len};
    return 0;
}

/* Appends (NAME, CHUNK) to the new index's list of names in several
 * chunks (*N entries, *CAP room). */
static int multi_push(struct pidx *nx, size_t *n, size_t *cap, uint64_t name,
                      uint32_t chunk)
{
    if (*n == *cap) {
        size_t c = 2 * *cap + 16;
        void *v = realloc(nx->multi, c * sizeof(*nx->multi));
        if (!v)
            return -ENOMEM;
        nx->multi = v;
        *cap = c;
    }
    nx->multi[(*n)++] = (struct pidx_multi){(uint32_t)name, chunk};
    return 0;
}

/* The old names [I, END) unchanged, to the new index: each moved by
 * DELTA in OUT, its key after the keys before it (*KL), a kept name's
 * chunk its new id, a name in several chunks listed again (*NN: the new
 * index of name I).  In batches, not name by name: most of a large
 * zone's names are such. */
struct span_out {
    struct patch *p;
    const uint32_t *ids;
    struct piece **kp;
    size_t *nkp, *kpcap, *nm, *mcap, *ki, *mi;
    uint64_t *nn, *kl, *rrsets, *nsigned;
};

static int names_span(struct span_out *so, uint64_t i, uint64_t end,
                      int64_t delta)
{
    struct patch *p = so->p;
    const struct pidx *x = &p->x;
    size_t ki = *so->ki, mi = *so->mi;
    const uint64_t none = UINT64_MAX;
    int r = 0;
    while (i < end && !r) {
        /* straight into the index's buffer (its items are 8-aligned), or
         * one through ONE where the buffer ends */
        size_t k;
        struct pidx_name one, *b = pw_room(&p->pw, sizeof(*b),
                                           (size_t)(end - i), &k);
        if (k == 0) {
            b = &one;
            k = 1;
        }
        memcpy(b, &x->names[i], k * sizeof(*b));
        uint64_t kl0 = *so->kl, kl = kl0, rs = 0, sg = 0;
        uint64_t nk = ki < p->nkept ? p->kept[ki].oi : none;
        uint64_t nmu = mi < x->h.nmulti ? x->multi[mi].name : none;
        for (size_t q = 0; q < k; q++) {
            struct pidx_name *n = &b[q];
            uint64_t oi = i + q;
            n->off = (uint64_t)((int64_t)n->off + delta);
            n->koff = (uint32_t)kl;
            kl += n->klen;
            rs += n->rrsets;
            sg += n->nsigned;
            if (nk <= oi) { /* (kept names are sorted, and all old) */
                while (nk < oi)
                    nk = ++ki < p->nkept ? p->kept[ki].oi : none;
                if (nk == oi)
                    n->chunk = so->ids[p->kept[ki].ck];
            }
            if (nmu <= oi) {
                while (nmu < oi)
                    nmu = ++mi < x->h.nmulti ? x->multi[mi].name : none;
                for (; nmu == oi && !r;
                     nmu = ++mi < x->h.nmulti ? x->multi[mi].name : none)
                    r = multi_push(&p->nx, so->nm, so->mcap, *so->nn + q,
                                   x->multi[mi].chunk);
            }
        }
        if (b == &one)
            pw_put(&p->pw, &one, sizeof(one));
        else
            pw_took(&p->pw, k * sizeof(*b));
        if (r)
            break;
        /* their keys: one piece where the old keys lie end to end */
        const struct pidx_name *f = &x->names[i], *l = &x->names[i + k - 1];
        if ((uint64_t)l->koff + l->klen - f->koff == kl - kl0) {
            r = pieces_add(so->kp, so->nkp, so->kpcap, x->keys + f->koff,
                           (size_t)(kl - kl0));
        } else {
            for (size_t q = 0; q < k && !r; q++)
                r = pieces_add(so->kp, so->nkp, so->kpcap,
                               x->keys + x->names[i + q].koff,
                               x->names[i + q].klen);
        }
        *so->kl = kl;
        *so->rrsets += rs;
        *so->nsigned += sg;
        *so->nn += k;
        i += k;
    }
    *so->ki = ki;
    *so->mi = mi;
    return r;
}

/* OPENED: pw_open's outcome for p->pw, opened by the caller. */
static int new_index(struct patch *p, uint64_t *sum, int opened)
{
    const struct pidx *x = &p->x;
    struct pidx *nx = &p->nx;
    const zone_t *z = p->c->z;
    struct pwriter *w = &p->pw;
    struct piece *kp = NULL;
    size_t nkp = 0, kpcap = 0, mcap = 0;
    uint32_t *ids = malloc((p->pc.n + 1) * sizeof(*ids));
    int r = ids ? opened : -ENOMEM;
    nx->h = x->h;
    nx->h.nchunks = p->pc.n;
    if (r)
        goto out;
    uint32_t next = x->h.next_id;
    uint64_t records = x->h.records_in;
    for (size_t k = 0; k < x->h.nchunks; k++)
        if (x->chunks[k].id <= x->h.next_id && p->gone[x->chunks[k].id])
            records -= x->chunks[k].nrec;
    records += p->nread;
    for (size_t j = 0; j < p->pc.n; j++) /* read again: a new id */
        ids[j] = p->match[j] != UINT32_MAX ? x->chunks[p->match[j]].id
                                           : next++;
    nx->h.next_id = next;
    /* names, and the pieces of the keys */
    uint64_t nn = 0, kl = 0, nm = 0, rrsets = 0, nsigned = 0;
    int64_t delta = 0;
    size_t j = 0, mi = 0, ki = 0;
    size_t zi = 0, zrec = 0; /* the new zone's zi-th name starts at zrec */
    struct span_out so = {p, ids, &kp, &nkp, &kpcap, &nm, &mcap, &ki, &mi,
                          &nn, &kl, &rrsets, &nsigned};
    for (uint64_t i = 0; i <= x->h.nnames && !r;) {
        /* the old names before the next edit: unchanged */
        uint64_t stop = j < p->ned && p->ed[j].lb < x->h.nnames
                            ? p->ed[j].lb
                            : x->h.nnames;
        if (stop > i && (r = names_span(&so, i, stop, delta)))
            break;
        if (stop > i)
            i = stop;
        /* the edits before old name i (or at it) */
        bool last = i == x->h.nnames, replaced = false;
        while (j < p->ned && !r && (last || p->ed[j].lb <= i)) {
            const struct pedit *e = &p->ed[j++];
            replaced |= !last && e->oi == (int64_t)i;
            if (e->zi < 0) {
                delta -= (int64_t)(e->e - e->s);
                continue;
            }
            size_t tl = p->ztext[e->zi + 1] - p->ztext[e->zi];
            struct pidx_name n = {0};
            n.off = (uint64_t)((int64_t)e->s + delta);
            n.koff = (uint32_t)kl;
            n.klen = e->klen;
            while (zi < (size_t)e->zi) {
                zrec = zone_run_end(z, zrec, false);
                zi++;
            }
            size_t ze = zone_run_end(z, zrec, false);
            const struct tname *t = t_find(p, e->key, e->klen);
            n.flags = t ? t->nflags : PN_NSEC3;
            uint32_t c0 = UINT32_MAX;
            unsigned nch = 0, rs = 0, sg = 0;
            for (size_t q = zrec; q < ze;) {
                rec_t rr;
                rec_at(z, q, &rr);
                rs++;
                sg += (rr.flags & RF_SIGN) != 0;
                q = zone_run_end_in(z, q, ze, true);
            }
            size_t m0 = nm;
            for (size_t q = zrec; q < ze && !r; q++) {
                rec_t rr;
                rec_at(z, q, &rr);
                if (rr.flags & RF_GEN)
                    continue;
                uint32_t id = ids[p->piece[rr.line]];
                bool seen = id == c0;
                for (size_t q2 = m0; q2 < nm && !seen; q2++)
                    seen = nx->multi[q2].chunk == id;
                if (c0 == UINT32_MAX) {
                    c0 = id;
                    nch = 1;
                } else if (!seen) {
                    /* every chunk of a name in several, once each */
                    if ((nm == m0 && (r = multi_push(nx, &nm, &mcap, nn, c0))) ||
                        (r = multi_push(nx, &nm, &mcap, nn, id)))
                        break;
                    nch++;
                }
            }
            if (rs >= 255) {
                r = decline("a new name with 255 RRsets");
                break;
            }
            n.chunk = c0;
            n.nchunk = (uint8_t)(nch > 255 ? 255 : nch);
            n.content = pidx_content(z, zrec, ze, x->h.key);
            n.rrsets = (uint8_t)rs;
            n.nsigned = (uint8_t)sg;
            rrsets += rs;
            nsigned += sg;
            if (!r)
                r = pieces_add(&kp, &nkp, &kpcap, e->key, e->klen);
            kl += e->klen;
            pw_put(w, &n, sizeof(n));
            nn++;
            delta += (int64_t)tl - (int64_t)(e->e - e->s);
        }
        if (last || r)
            break;
        /* old name i itself, unless an edit took its place */
        if (!replaced && (r = names_span(&so, i, i + 1, delta)))
            break;
        i++;
    }
    if (r)
        goto out;
    pw_end(w);
    nx->h.nnames = nn;
    nx->h.keys_len = kl;
    nx->h.nmulti = nm;
    nx->h.records_in = records;
    nx->h.rrsets = rrsets;
    nx->h.signed_rrsets = nsigned;
    /* chain, keys, bitmaps, multi, chunks */
    uint64_t bl = 0;
    for (size_t q = 0; q < p->nnc; q++) {
        struct pidx_link l = {0};
        memcpy(l.hash, p->nc[q].hash, 20);
        l.bmoff = bl;
        l.bmlen = p->nc[q].bml;
        bl += p->nc[q].bml;
        pw_put(w, &l, sizeof(l));
    }
    pw_end(w);
    for (size_t q = 0; q < nkp; q++)
        pw_put(w, kp[q].p, kp[q].n);
    pw_end(w);
    for (size_t q = 0; q < p->nnc; q++)
        pw_put(w, p->nc[q].bm, p->nc[q].bml);
    pw_end(w);
    if (nm)
        pw_put(w, nx->multi, nm * sizeof(*nx->multi));
    pw_end(w);
    for (size_t q = 0; q < p->pc.n;) {
        struct pidx_chunk ck[256];
        size_t k = p->pc.n - q < 256 ? p->pc.n - q : 256;
        for (size_t a = 0; a < k; a++, q++) {
            memcpy(ck[a].dg, pc_dg(&p->pc, q), PIDX_DIGEST);
            ck[a].id = ids[q];
            ck[a].nrec = p->match[q] != UINT32_MAX
                             ? x->chunks[p->match[q]].nrec
                             : p->nrec[q];
        }
        pw_put(w, ck, k * sizeof(*ck));
    }
    pw_end(w);
    nx->h.nchain = p->nnc;
    nx->h.bm_len = bl;
    nx->h.nsec3 = p->nnc;
    r = pw_finish(w, sum);
out:
    free(kp);
    free(ids);
    return r;
}

struct indexer {
    struct patch *p;
    int opened; /* pw_open's outcome (index_open) */
    int ret;
    uint64_t sum;
    pthread_t th;
    bool threaded; /* and not joined yet */
};

static void index_join(struct indexer *ix)
{
    if (ix->threaded)
        pthread_join(ix->th, NULL);
    ix->threaded = false;
}

/* The new index's file opened before its thread starts, on the thread
 * that will commit: its spare is then taken before commit() may give the
 * spare's name to the index it replaces (otherwise, on a loaded machine,
 * the spare is found held and a new file written). */
static void index_open(struct indexer *ix)
{
    struct patch *p = ix->p;
    ix->opened = pw_open(&p->pw, p->zsp_out, p->o->no_spare);
}

static void *index_run(void *arg)
{
    struct indexer *ix = arg;
    struct patch *p = ix->p;
    ix->ret = new_index(p, &ix->sum, ix->opened);
    trace_mark("patch: index body written");
    /* the old index's body given back here, not at the end, once nothing
     * will read it: its digest checked, and no second index to make (the
     * signed text has the stand-ins' lengths) */
    if (atomic_load_explicit(&p->ixv.done, memory_order_acquire) &&
        atomic_load_explicit(&p->fin_state, memory_order_acquire) ==
            FIN_READY)
        pidx_drop_body(&p->x);
    return NULL;
}

/* OUT synced on a thread of its own while OUT's cache is written. */
struct outer {
    struct patch *p;
    int ret;
};

static void *sync_run(void *arg)
{
    struct outer *w = arg;
    int fd = w->p->ofd;
    w->p->ofd = -1;
    /* (a spare written over may have been longer) */
    w->ret = ftruncate(fd, (off_t)w->p->out_file.size) != 0 ||
                     fsync(fd) != 0 || close(fd) != 0
                 ? errno ? errno : EIO
                 : 0;
    trace_mark("patch: OUT synced");
    return NULL;
}

/* Steps 3e and 4: OUT, OUT.zsc, OUT.zsp in place.  OUT is synced on a
 * thread while its cache is written (and synced); OUT and OUT.zsc are
 * renamed into place as soon as both are, while the new index may still
 * be written, and the index follows.  The files replaced are freed on the
 * reaper's threads meanwhile. */
static int commit(struct patch *p, struct indexer *ix, signer_diag_t *diag)
{
    struct sctx *c = p->c;
    const signer_opts_t *o = p->o;
    struct outer sy = {p, 0};
    pthread_t th;
    reaper_t *rp = &p->rp;
    bool threaded = pthread_create(&th, NULL, sync_run, &sy) == 0;
    if (!threaded)
        sync_run(&sy);
    int r = 0;
    struct pidx_file zsc; /* (into the new index's header once it is joined) */
    trace_mark("patch: sync started");
    /* OUT.zsc: begun while OUT was written (go), or now */
    if (!p->cpw)
        r = cache_patch_begin(c->pcache, p->w, entry_dead, p, p->zsc_out,
                              o->no_spare, c->z, c->serial, p->out_size,
                              &p->cpw, &p->cdropped);
    if (!r)
        r = cache_patch_end(p->cpw, p->w, &p->ctmp, &zsc.size, zsc.dg);
    p->cpw = NULL;
    if (tracing())
        fprintf(stderr, "zonesign: trace: patch: %llu cache entries of "
                        "RRsets gone\n", (unsigned long long)p->cdropped);
    trace_mark("patch: cache written");
    /* while OUT syncs: the old cache held, its page cache dropped, unless
     * it is to be kept as the spare (as the old OUT is, or held when it is
     * replaced) */
    if (o->no_spare)
        reap_hold(rp, p->zsc_out);
    reap_uncache(rp);
    trace_mark("patch: old cache uncached");
    if (threaded)
        pthread_join(th, NULL);
    trace_mark("patch: synced");
    if (sy.ret) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", o->output,
                 strerror(sy.ret));
        return SIGNER_EIO;
    }
    if (r == -ENOMEM)
        return -ENOMEM;
    /* an index beside OUT describes OUT, or is not there: the old one goes
     * first (kept as the index's spare), and the new one comes after OUT */
    side_retire(p->zsp_out, !o->no_spare, rp);
    int rc = spare_commit(p->otmp, o->output, p->spare, !o->no_spare, rp);
    if (rc) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", o->output,
                 strerror(-rc));
        return SIGNER_EIO;
    }
    free(p->otmp);
    p->otmp = NULL;
    /* the old cache's name gone first (kept as the cache's spare, or
     * unlinked: its file is held, above): renamed over, it would make ext4
     * start writing the new cache at once (auto_da_alloc), ahead of the
     * directory's fsync below, which then waits behind it; the cache is
     * not synced (cache_patch_end) */
    if (r == 0) {
        side_retire(p->zsc_out, !o->no_spare, rp);
        if (rename(p->ctmp, p->zsc_out) != 0)
            r = -errno;
    }
    if (r) {
        unlink(p->zsc_out);
        if (c->warn)
            c->warn(c->warg, "signature cache not written");
    } else {
        free(p->ctmp);
        p->ctmp = NULL;
    }
    /* P is read no more: if OUT replaced it, it is freed with the rest */
    if (p->pfd >= 0 && rp->n < REAP_MAX) {
        rp->fd[rp->n++] = p->pfd;
        p->pfd = -1;
    }
    writer_dir_fsync(o->output);
    reap_start(rp);
    trace_mark("patch: renamed");
    /* the new index: in place once its body is written (ri > 0, or no
     * memory for it: OUT is right, but no index describes it) */
    index_join(ix);
    int ri = ix->ret;
    if (r == 0 && ri == 0 && p->pw.fd >= 0) {
        p->nx.h.zsc = zsc;
        p->nx.h.out = p->out_file;
        p->nx.h.serial = c->serial;
        p->nx.h.min_exp = c->sig_min_exp < p->x.h.min_exp ? c->sig_min_exp
                                                          : p->x.h.min_exp;
        p->nx.h.max_inc = c->sig_max_inc > p->x.h.max_inc ? c->sig_max_inc
                                                          : p->x.h.max_inc;
        p->nx.h.sigs = (p->nx.h.signed_rrsets - 1) * c->nzsk + c->nksk;
        int wr = pidx_write_end(&p->nx.h, &p->pw, p->zsp_out, ix->sum);
        if (wr != 0 && tracing())
            fprintf(stderr, "zonesign: trace: patch index not written\n");
        trace_mark("patch: index in place");
    }
    return 0;
}

/* T's ranges in the new zone, after records were added or it was laid
 * out again. */
static void relocate(struct patch *p)
{
    const zone_t *z = p->c->z;
    size_t j = 0;
    for (size_t a = 0; a < z->n; a = zone_run_end(z, a, false)) {
        rec_t ar;
        rec_at(z, a, &ar);
        while (j < p->nt &&
               key_cmp(p->t[j].key, p->t[j].klen, ar.key, ar.klen) < 0)
            j++;
        if (j < p->nt && p->t[j].klen == ar.klen &&
            memcmp(p->t[j].key, ar.key, ar.klen) == 0) {
            p->t[j].ni = a;
            p->t[j].ne = zone_run_end(z, a, false);
        }
    }
}

static double secs(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}


struct writer {
    struct patch *p;
    int ret;
};

/* The signing (sign_finish), whose signed text goes to the writer as
 * soon as it is there (FIN_STOP if there is none). */
struct signing {
    struct patch *p;
    hsm_diag_t hd;
    arena_t fin;
    size_t *zf;
    int ret;
};

static void *sign_run(void *arg)
{
    struct signing *sg = arg;
    struct patch *p = sg->p;
    sg->ret = sign_finish(p, &sg->hd, &sg->fin, &sg->zf);
    trace_mark("patch: signed");
    if (sg->ret == 0) {
        p->fin = &sg->fin;
        p->fzt = sg->zf;
        atomic_store_explicit(&p->fin_state, FIN_READY, memory_order_release);
    } else {
        atomic_store_explicit(&p->fin_state, FIN_STOP, memory_order_release);
    }
    return NULL;
}

static void *write_run(void *arg)
{
    struct writer *wr = arg;
    wr->ret = write_out(wr->p);
    return NULL;
}

/* The consistency proof and the pool start on a thread of their own
 * while the index and the input are read (they need only the keys). */
struct poolstart {
    struct sctx *c;
    struct hsm_set *set;
    const signer_hooks_t *hooks;
    int ret;
    signer_diag_t diag;
    pthread_t th;
    bool started, joined;
};

static void *pool_run(void *arg)
{
    struct poolstart *ps = arg;
    ps->ret = sign_start_pool(ps->c, ps->set, false, ps->hooks, &ps->diag);
    trace_mark("patch: pool started");
    return NULL;
}

static int pool_join(struct poolstart *ps, signer_diag_t *diag)
{
    if (ps->started && !ps->joined) {
        pthread_join(ps->th, NULL);
        ps->joined = true;
    }
    if (ps->ret)
        *diag = ps->diag;
    return ps->ret;
}

static int go(struct patch *p, struct poolstart *ps, signer_stats_t *stats,
              signer_diag_t *diag)
{
    struct sctx *c = p->c;
    zone_t *z = c->z;
    int r;
    double t0 = secs(), t1, t2, t3;
    if ((r = load(p)))
        return r;
    /* the DS RRsets read again to the HSMs now (the pool is up by now):
     * those unchanged find their signatures in P.zsc */
    if ((r = pool_join(ps, diag)) || (r = early_start(p)))
        return r;
    trace_mark("patch: early DS jobs");
    if ((r = touched(p)))
        return r;
    t1 = secs();
    trace_mark("patch: names");
    /* the apex: serial, DNSKEY and NSEC3PARAM (as prepare() makes them) */
    size_t i = zone_lower_bound(z, z->okey, z->okey_len, T_SOA);
    rec_t soa;
    if (i >= z->n)
        return decline("no SOA");
    rec_at(z, i, &soa);
    if (soa.type != T_SOA || soa.rdlen < 22)
        return decline("no SOA");
    uint32_t minimum = get32(soa.rdata + soa.rdlen - 4);
    if (soa.ttl != p->x.h.soa_ttl || minimum != p->x.h.soa_min)
        return decline("SOA TTL or MINIMUM changed");
    c->serial_in = get32(soa.rdata + soa.rdlen - 20);
    c->serial = signer_serial_next(p->o->serial, c->serial_in, 1,
                                   p->x.h.serial, p->o->now);
    put32(z->a.buf + soa.off + 2 + soa.klen + 14 + soa.rdlen - 20, c->serial);
    c->soa_ttl = soa.ttl;
    c->soa_min = minimum;
    uint32_t min_ttl = soa.ttl < minimum ? soa.ttl : minimum;
    if ((r = keys_add_apex(c, soa.ttl, min_ttl)))
        return r;
    relocate(p); /* the apex has more records: every range moved */
    size_t n0 = z->n;
    if ((r = chain(p, min_ttl)))
        return r;
    /* the NSEC3 records made (at the end, each its own RRset) to the HSMs
     * now, in a second early batch */
    if (z->n > n0 &&
        (r = early_batch(p, 1, n0, z->n, "patch: early NSEC3 signed")))
        return r;
    if ((r = zone_merge_tail(z, n0)))
        return r;
    relocate(p);
    mark_signed(p);
    trace_mark("patch: chain");
    t2 = secs();
    if ((r = pool_join(ps, diag)))
        return r;
    t3 = secs();
    /* the jobs and the text lengths; the edits; the new index made while
     * the HSMs sign */
    hsm_diag_t hd = {{0}};
    p->zsc_out = path_ext(p->o->output, ".zsc");
    if (!p->zsp_out)
        p->zsp_out = path_ext(p->o->output, ".zsp");
    if (!p->zsc_out || !p->zsp_out)
        return -ENOMEM;
    if ((r = sign_prepare(p)))
        return r;
    trace_mark("patch: jobs and stand-ins");
    /* the HSMs sign from now on (on a thread of their own, which hands the
     * signed text to the writer); meanwhile the edits, then the new index
     * and OUT (with stand-ins) */
    struct signing sg = {p, {{0}}, {0}, NULL, 0};
    pthread_t sth;
    bool sthreaded = pthread_create(&sth, NULL, sign_run, &sg) == 0;
    if (!sthreaded)
        sign_run(&sg);
    if ((r = edits(p))) {
        if (sthreaded)
            pthread_join(sth, NULL);
        arena_free(&sg.fin);
        free(sg.zf);
        return r;
    }
    trace_mark("patch: edits");
    struct indexer ix = {p, 0, 0, 0, 0, false};
    struct writer wr = {p, 0};
    pthread_t wth;
    index_open(&ix);
    ix.threaded = pthread_create(&ix.th, NULL, index_run, &ix) == 0;
    if (!ix.threaded)
        index_run(&ix);
    bool wthreaded = pthread_create(&wth, NULL, write_run, &wr) == 0;
    if (!wthreaded)
        write_run(&wr);
    /* the signatures the edits kill, for OUT.zsc */
    int dr = dead_scan(p);
    trace_mark("patch: dead signatures read");
    if (dr == -ESTALE)
        dr = decline("the previous zone is not the one its index was "
                     "written with");
    if (sthreaded)
        pthread_join(sth, NULL);
    r = sg.ret;
    hd = sg.hd;
    arena_t fin = sg.fin;
    size_t *zf = sg.zf;
    /* while OUT is still being written: OUT.zsc's new entries, and the
     * reused signatures in order (the segments, the writer's, are apart);
     * then OUT.zsc itself but for its segments (OUT's size is known if
     * the signatures had their stand-ins' lengths) */
    int ce = dr ? dr : r == 0 || r == 2 ? cache_entries(p) : 0;
    if (ce == 0 && p->nlive > 1)
        qsort(p->live, p->nlive, sizeof(*p->live), u64_cmp);
    if (ce == 0 && r == 0) {
        uint64_t zsize = p->x.h.out.size;
        for (size_t j = 0; j < p->ned; j++) {
            const struct pedit *e = &p->ed[j];
            zsize -= e->e - e->s;
            if (e->zi >= 0)
                zsize += p->ztext[e->zi + 1] - p->ztext[e->zi];
        }
        ce = cache_patch_begin(c->pcache, p->w, entry_dead, p, p->zsc_out,
                               p->o->no_spare, c->z, c->serial, zsize,
                               &p->cpw, &p->cdropped);
        trace_mark("patch: cache begun");
    }
    if (wthreaded)
        pthread_join(wth, NULL);
    /* the index is joined when it is needed (commit), or now if it is not
     * (it reads the lengths in p->ztext: the same in the signed text if
     * r is 0) */
    if (r != 0)
        index_join(&ix);
    if (r == 0 || r == 2) { /* the signed text from now on */
        arena_free(&p->text);
        p->text = fin;
        fin.buf = NULL;
        if (r == 2)
            memcpy(p->ztext, zf, (p->nzn + 1) * sizeof(*zf));
    }
    if (r == 2 && wr.ret <= 0) {
        /* a signature of another length: the index and OUT again */
        pw_abort(&p->pw);
        if (p->ofd >= 0) {
            close(p->ofd);
            p->ofd = -1;
        }
        if (p->otmp) {
            unlink(p->otmp);
            free(p->otmp);
            p->otmp = NULL;
        }
        index_open(&ix);
        index_run(&ix);
        atomic_store(&p->fin_state, FIN_NONE);
        wr.ret = write_out(p);
    }
    if (r == 2)
        r = 0;
    arena_free(&fin);
    free(zf);
    if (r) {
        if (hd.msg[0])
            snprintf(diag->msg, sizeof(diag->msg), "signing: %.900s", hd.msg);
        return r >= HSM_ERROR_BASE && r < HSM_ERROR_MAX ? SIGNER_EHSM : r;
    }
    if (!wr.ret && !(r = ce) && !(r = write_finish(p, &p->text, p->ztext))) {
        trace_mark("patch: OUT finished");
        r = ixv_join(p) ? commit(p, &ix, diag)
                        : decline("the previous zone's index is damaged");
    }
    index_join(&ix);
    if (wr.ret)
        return wr.ret;
    if (r)
        return r;
    stats->records_in = p->nx.h.records_in;
    stats->rrsets = p->nx.h.rrsets;
    stats->signed_rrsets = p->nx.h.signed_rrsets;
    stats->nsec3 = p->nx.h.nsec3;
    stats->sigs_made = p->made;
    stats->sigs_reused = p->nx.h.sigs - p->made;
    stats->serial = c->serial;
    stats->previous_from = 3;
    /* read: the index, the chunks, the changed parts, the names;
     * prepare: the chain; proof: the pool; the rest: sign and write */
    stats->t_read = t1 - t0;
    stats->t_prepare = t2 - t1;
    stats->t_proof = t3 - t2;
    stats->t_sign_write = secs() - t3;
    c->made = p->made;
    if (tracing()) {
        size_t n3 = 0;
        for (size_t j = 0; j < p->nnc; j++)
            n3 += p->nc[j].changed;
        fprintf(stderr,
                "zonesign: trace: patch: %llu of %zu chunks parsed, %zu "
                "names changed, %zu NSEC3 changed\n",
                (unsigned long long)p->changed_chunks, p->pc.n,
                p->nt - 1 /* the apex, always printed */, n3);
        fprintf(stderr,
                "zonesign: trace: patch: runs of OUT with stand-ins mended "
                "while it was written %zu, after %zu\n",
                p->mended[0], p->mended[1]);
    }
    return 0;
}

int patch_run(struct sctx *c, struct hsm_set *set,
              const signer_hooks_t *hooks, signer_stats_t *stats,
              signer_diag_t *diag)
{
    const signer_opts_t *o = c->o;
    struct patch *p = calloc(1, sizeof(*p));
    int r;
    if (!p)
        return -ENOMEM;
    p->c = c;
    p->o = o;
    p->pfd = p->ofd = p->pw.fd = -1;
    if (!o->previous || o->no_cache || o->previous_cache)
        r = 1;
    else if (o->no_patch)
        r = decline("--no-patch");
    else if (o->denial != SIGNER_DENIAL_NSEC3)
        r = decline("NSEC");
    else {
        struct poolstart ps = {c, set, hooks, 0, {{0}}, 0, false, false};
        keys_pick(c);
        if (c->pool)
            ps.joined = true;
        else if (pthread_create(&ps.th, NULL, pool_run, &ps) == 0)
            ps.started = true;
        else
            pool_run(&ps), ps.joined = true;
        r = go(p, &ps, stats, diag);
        /* a failed proof ends the run on every road: reported once, here */
        int pr = pool_join(&ps, diag);
        if (r == 1 && pr)
            r = pr;
    }
    if (r != 0) { /* back to where the other roads start */
        zone_free(c->z);
        memset(c->z, 0, sizeof(*c->z));
        cache_free(c->pcache);
        c->pcache = NULL;
        c->nksk = c->nzsk = 0;
        c->made = 0;
        c->sig_min_exp = INT64_MAX;
        c->sig_max_inc = INT64_MIN;
        if (p->ofd >= 0)
            close(p->ofd);
        if (p->otmp)
            unlink(p->otmp);
        if (p->ctmp)
            unlink(p->ctmp);
    }
    gone_join(p);
    early_join(p);
    ixv_join(p);
    unmap_join(p);
    cache_patch_abort(p->cpw);
    for (int b = 0; b < 2; b++) {
        chunk_free(p->early[b].ch);
        free(p->early[b].slot);
    }
    free(p->pre);
    free(p->goneold.v);
    if (p->pfd >= 0)
        close(p->pfd);
    pw_abort(&p->pw);
    if (p->in)
        munmap(p->in, p->inlen);
    pidx_free(&p->x);
    pidx_free(&p->nx);
    pchunks_free(&p->pc);
    free(p->match);
    free(p->gone);
    free(p->t);
    free(p->tkeys);
    free(p->kept);
    free(p->nrec);
    free(p->piece);
    free(p->dead);
    free(p->live);
    arena_free(&p->oldtext);
    free(p->ce);
    arena_free(&p->bms);
    free(p->nc);
    arena_free(&p->keys);
    free(p->ed);
    free(p->ztext);
    arena_free(&p->text);
    free(p->runs);
    free(p->onm);
    arena_free(&p->dtext);
    arena_free(&p->seg);
    fdig_free(&p->odig);
    chunk_free(p->ch);
    EVP_MD_CTX_free(p->md);
    cache_w_free(p->w);
    free(p->otmp);
    free(p->ctmp);
    free(p->zsc_out);
    free(p->zsp_out);
    free(p->spare);
    reap_join(&p->rp); /* the files replaced, freed meanwhile */
    free(p);
    trace_mark("patch: freed");
    return r;
}

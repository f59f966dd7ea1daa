/*
 * signer/reader.c - RFC 1035 zone text into the zone arena, with Knot's
 * libzscanner (which hands over owner and RDATA in wire form; $ORIGIN,
 * $TTL, $INCLUDE, relative names, @, multi-line records and RFC 3597
 * generic RDATA are its job), then the content checks that need the whole
 * zone in canonical order.  The content policy (TTL disagreements,
 * duplicates, DNSSEC records in the input, the errors) is documented at
 * the top of signer/zone.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <fcntl.h>
#include <pthread.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libzscanner/scanner.h>

#include "signer/internal.h"

#define WARN_SHOWN 200

/* Warnings held back while a zone is read in two parts (split reading
 * below), shown in file order once both parts have succeeded. */
struct held {
    char **lines;
    size_t n;
};

struct rctx {
    zone_t *z;
    enum read_mode mode;
    warn_fn warn;
    void *warg;
    uint64_t *warnings;
    signer_diag_t *diag;
    int err;
    unsigned soa;
    const char *lastfile;
    uint8_t lastidx;
    const char *path;   /* file name when reading from memory */
    int64_t line_off;   /* added to the scanner's line numbers */
    struct held *held;  /* non-NULL: hold warnings back */
    zone_bins_t *bins;  /* non-NULL: records go there, not into z */
    struct binchecks *checks; /* split reading: the checks' outcome */
    bool by_piece;      /* each record's line field holds PIECE */
    uint32_t piece;
};

static void rwarn(struct rctx *c, const char *fmt, ...)
{
    (*c->warnings)++;
    if (*c->warnings > WARN_SHOWN || !c->warn)
        return;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (c->held) {
        char **l = realloc(c->held->lines, (c->held->n + 1) * sizeof(*l));
        if (l) {
            c->held->lines = l;
            if ((l[c->held->n] = strdup(line)))
                c->held->n++;
        }
        return;
    }
    c->warn(c->warg, line);
}

static void fail(struct rctx *c, const char *file, uint64_t line,
                 const char *fmt, ...)
{
    if (c->err)
        return;
    c->err = SIGNER_EINPUT;
    int o = snprintf(c->diag->msg, sizeof(c->diag->msg), "%s:%llu: ", file,
                     (unsigned long long)line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->diag->msg + o, sizeof(c->diag->msg) - (size_t)o, fmt, ap);
    va_end(ap);
}

static const char *fname(const struct rctx *c, const zs_scanner_t *s)
{
    return s->file.name ? s->file.name : c->path ? c->path : "-";
}

static int file_index(struct rctx *c, const char *name)
{
    zone_t *z = c->z;
    if (name == c->lastfile)
        return c->lastidx;
    for (size_t i = 0; i < z->nfiles; i++) {
        if (strcmp(z->files[i], name) == 0) {
            c->lastfile = name;
            c->lastidx = (uint8_t)i;
            return (int)i;
        }
    }
    if (z->nfiles == 255)
        return -1;
    char **f = realloc(z->files, (z->nfiles + 1) * sizeof(*f));
    if (!f)
        return -1;
    z->files = f;
    if (!(f[z->nfiles] = strdup(name)))
        return -1;
    c->lastfile = name;
    c->lastidx = (uint8_t)z->nfiles;
    return (int)z->nfiles++;
}

static void on_error(zs_scanner_t *s)
{
    struct rctx *c = s->process.data;
    fail(c, fname(c, s), (uint64_t)((int64_t)s->line_counter + c->line_off),
         "%s",
         zs_strerror(s->error.code));
    s->state = ZS_STATE_STOP;
}

static bool is_dnssec(uint16_t t)
{
    return t == T_RRSIG || t == T_NSEC || t == T_NSEC3 ||
           t == T_NSEC3PARAM || t == T_DNSKEY;
}

static void on_record(zs_scanner_t *s)
{
    struct rctx *c = s->process.data;
    zone_t *z = c->z;
    const char *file = fname(c, s);
    uint64_t line = (uint64_t)((int64_t)s->line_counter + c->line_off);
    char tb[16];

    if (c->err) {
        s->state = ZS_STATE_STOP;
        return;
    }
    if (s->r_class != 1) {
        fail(c, file, line, "class %u is not IN", s->r_class);
        goto stop;
    }
    /* the owner's sort key (lowercased) decides inside or outside: the
     * origin's key is a prefix of the keys of the names at or below it */
    uint8_t key[KEY_MAX];
    size_t klen = name_to_key(s->r_owner, s->r_owner_length, key);
    bool apex;
    if (klen == KEY_BAD) { /* too long: an error below unless outside */
        uint8_t owner[256];
        size_t ol = s->r_owner_length;
        memcpy(owner, s->r_owner, ol);
        name_lower(owner);
        if (ol < z->origin_len ||
            memcmp(owner + ol - z->origin_len, z->origin, z->origin_len) != 0 ||
            name_labels(owner) < z->origin_labels) {
            fail(c, file, line, "record outside the origin");
            goto stop;
        }
        apex = false;
    } else if (!key_under(z->okey, z->okey_len, key, klen)) {
        fail(c, file, line, "record outside the origin");
        goto stop;
    } else {
        apex = klen == z->okey_len;
    }
    if (c->mode == READ_UNSIGNED && is_dnssec(s->r_type)) {
        rwarn(c, "%s:%llu: %s record in the input dropped (the signer "
                 "makes its own)",
              file, (unsigned long long)line, type_name(s->r_type, tb));
        return;
    }
    if (s->r_type == T_SOA) {
        if (!apex) {
            fail(c, file, line, "SOA not at the origin");
            goto stop;
        }
        if (++c->soa > 1 && c->mode == READ_UNSIGNED) {
            fail(c, file, line, "more than one SOA record");
            goto stop;
        }
    }
    uint8_t rd[65536];
    memcpy(rd, s->r_data, s->r_data_length);
    if (rdata_canonicalize(s->r_type, rd, s->r_data_length) != 0) {
        fail(c, file, line, "malformed %s RDATA", type_name(s->r_type, tb));
        goto stop;
    }
    int fi = file_index(c, file);
    if (fi < 0) {
        fail(c, file, line, "too many included files");
        goto stop;
    }
    if (klen == KEY_BAD) {
        fail(c, file, line, "name too long");
        goto stop;
    }
    uint32_t l32 = c->by_piece          ? c->piece
                   : line > UINT32_MAX ? UINT32_MAX
                                       : (uint32_t)line;
    int r = c->bins ? zone_bins_add(c->bins, z->okey_len, key, klen,
                                    s->r_type, s->r_ttl, rd,
                                    (uint16_t)s->r_data_length, l32,
                                    (uint8_t)fi, 0)
                    : zone_add_rec(z, key, klen, s->r_type, s->r_ttl, rd,
                                   (uint16_t)s->r_data_length, l32,
                                   (uint8_t)fi, 0);
    if (r) {
        fail(c, file, line, "out of memory");
        goto stop;
    }
    return;
stop:
    s->state = ZS_STATE_STOP;
}

static const char *rfile(const zone_t *z, const rec_t *r)
{
    return r->file < z->nfiles ? z->files[r->file] : "-";
}

/* Duplicates and TTLs inside one RRset [i, e): returns the new end after
 * dropping duplicates in place. */
static size_t fix_rrset(struct rctx *c, size_t i, size_t e)
{
    zone_t *z = c->z;
    rec_t a, b;
    char tb[16];
    uint32_t minttl = UINT32_MAX;
    size_t w = i;
    for (size_t j = i; j < e; j++) {
        rec_at(z, j, &b);
        if (j > i) {
            rec_at(z, w - 1, &a);
            if (a.rdlen == b.rdlen && memcmp(a.rdata, b.rdata, a.rdlen) == 0) {
                rwarn(c, "%s:%u: duplicate %s record dropped", rfile(z, &b),
                      b.line, type_name(b.type, tb));
                continue;
            }
        }
        if (b.ttl < minttl)
            minttl = b.ttl;
        z->idx[w++] = z->idx[j];
    }
    for (size_t j = i; j < w; j++) {
        rec_at(z, j, &b);
        if (b.ttl != minttl) {
            rwarn(c, "%s:%u: TTL %u of %s record set to %u, the smallest "
                     "TTL of its RRset (RFC 2181 5.2)",
                  rfile(z, &b), b.line, b.ttl, type_name(b.type, tb), minttl);
            put32(z->a.buf + b.off + 2 + b.klen + 2, minttl);
        }
    }
    return w;
}

/* Checks of one owner name [i, e) after duplicates were dropped. */
static void check_name(struct rctx *c, size_t i, size_t e, bool apex)
{
    zone_t *z = c->z;
    rec_t r, cn = {0};
    bool has_cname = false, has_other = false, has_ns = false, has_ds = false;
    size_t ds_at = i;
    for (size_t j = i; j < e; j++) {
        rec_at(z, j, &r);
        if (r.type == T_CNAME) {
            if (has_cname) {
                fail(c, rfile(z, &r), r.line, "more than one CNAME record");
                return;
            }
            has_cname = true;
            cn = r;
        } else {
            has_other = true;
        }
        has_ns |= r.type == T_NS;
        if (r.type == T_DS) {
            has_ds = true;
            ds_at = j;
        }
    }
    if (has_cname && has_other) {
        fail(c, rfile(z, &cn), cn.line, "CNAME beside other data");
        return;
    }
    if (has_ds && (apex || !has_ns)) {
        rec_at(z, ds_at, &r);
        fail(c, rfile(z, &r), r.line, "DS record at a name that is not a "
                                      "delegation");
    }
}

/* Checks of the names in [FROM, TO) (whole names; DNAME: the owner key
 * of a DNAME at the name just before FROM, or NULL): duplicates dropped
 * by compacting the index in place; returns the new end. */
static size_t check_range(struct rctx *c, size_t from, size_t to,
                          const uint8_t *dname, size_t dlen)
{
    zone_t *z = c->z;
    size_t w = from;
    for (size_t i = from; i < to && !c->err;) {
        size_t ne = zone_run_end_in(z, i, to, false);
        size_t start = w;
        for (size_t j = i; j < ne;) {
            size_t te = zone_run_end_in(z, j, ne, true);
            size_t k = c->mode == READ_UNSIGNED ? fix_rrset(c, j, te) : te;
            for (size_t m = j; m < k; m++)
                z->idx[w++] = z->idx[m];
            j = te;
        }
        if (c->mode == READ_UNSIGNED) {
            rec_t r;
            rec_at(z, start, &r);
            bool apex = r.klen == z->okey_len;
            /* check_name reads the compacted run */
            check_name(c, start, w, apex);
            if (dname && key_under(dname, dlen, r.key, r.klen)) {
                fail(c, rfile(z, &r), r.line,
                     "data below a DNAME (RFC 6672 2.3)");
                break;
            }
            dname = NULL;
            for (size_t m = start; m < w; m++) {
                rec_t d;
                rec_at(z, m, &d);
                if (d.type == T_DNAME) {
                    dname = d.key;
                    dlen = d.klen;
                }
            }
        }
        i = ne;
    }
    return w;
}

static int check_zone(struct rctx *c)
{
    c->z->n = check_range(c, 0, c->z->n, NULL, 0);
    return c->err;
}

/* ------------------------------------------------------------------ */
/* Split reading: a large zone file is read in two halves on two threads.
 * The file is cut at a line that starts a record with an owner name (not
 * a blank, comment, directive or continuation line); the second half's
 * scanner first reads the $ORIGIN and $TTL directives of the first half,
 * so it starts in the state the first half ends in.  Nothing is trusted:
 * any $INCLUDE, any error or SOA trouble in either half, or a first half
 * that ends in another state than the second started in (an open
 * parenthesis across the cut, a directive the copy missed), and the file
 * is read again in one piece, which gives the exact diagnostics.  Each
 * half puts its records into its own bins (zone.c); the bins are then
 * sorted, laid out and checked one by one on two threads. */

#define SPLIT_MIN (16u << 20)
#define SPLIT_SLICE (4u << 20)
/* A slice read by another thread first reads every directive before it:
 * a file with more of them is read whole (as a zone with $ORIGIN at every
 * name is). */
#define SPLIT_DIRS 4096

/* The scanner state a slice starts or ends in. */
struct sstate {
    uint8_t origin[ZS_MAX_DNAME_LENGTH + ZS_MAX_LABEL_LENGTH];
    uint32_t origin_len, ttl;
};

/* A slice of the file: whole records from an owner line on. */
struct slice {
    const char *p;
    size_t len;
    uint64_t nlines;      /* its newlines */
    uint64_t line;        /* its first line's number */
    struct sstate in, out;
    bool parsed;
};

/* Who parses what: one part per half for the slices its thread takes
 * from the front of its half, and one part for each slice the other
 * thread takes from the back of it (work stealing: a thread done with
 * its half helps with the other's).  A part has its own scanner, bins,
 * held warnings and outcome. */
struct part {
    struct rctx c;
    zone_t z;            /* origin and file names (records go to bins) */
    zs_scanner_t *s;
    zone_bins_t bins;
    struct held held;
    uint64_t warnings;
    int zerr;
    signer_diag_t diag;
    size_t first;        /* its first slice (file order of the parts) */
};

struct split {
    struct rctx *c;
    const char *origin;  /* presentation form, for the scanners */
    const char *buf;
    struct slice *sl;
    size_t nsl, cut;     /* slices [0, cut) are the first half's */
    const char **dir;    /* directive lines, in file order */
    size_t *dirlen, ndir, dircap;
    pthread_mutex_t mu;
    size_t front[2], back[2]; /* unclaimed slices of each half */
    pthread_barrier_t lines;
    struct part *own[2];
    struct part **stolen;     /* one per slice, NULL if not stolen */
    int err;                  /* out of memory: give up */
};

static void held_free(struct held *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->lines[i]);
    free(h->lines);
    memset(h, 0, sizeof(*h));
}

static bool is_owner_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '*' || ch == '_' || ch == '-' ||
           ch == '@';
}

static bool word_at(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(end - p) <= n || strncasecmp(p, w, n) != 0)
        return false;
    return p[n] == ' ' || p[n] == '\t';
}

/* The directive lines of the file (only $ORIGIN and $TTL, at most
 * SPLIT_DIRS); false if the file is not fit for split reading. */
static bool find_dirs(struct split *sp, const char *b, size_t len)
{
    const char *end = b + len;
    sp->ndir = 0;
    for (const char *q = b; (q = memchr(q, '$', (size_t)(end - q))); q++) {
        if (q != b && q[-1] != '\n')
            continue;
        bool org = word_at(q, end, "$ORIGIN"), ttl = word_at(q, end, "$TTL");
        if (!org && !ttl)
            return false; /* $INCLUDE or something unknown */
        const char *e = memchr(q, '\n', (size_t)(end - q));
        if (!e || sp->ndir == SPLIT_DIRS)
            return false;
        if (sp->ndir == sp->dircap) {
            size_t cap = sp->dircap ? 2 * sp->dircap : 16;
            const char **d = realloc(sp->dir, cap * sizeof(*d));
            if (d)
                sp->dir = d;
            size_t *l = d ? realloc(sp->dirlen, cap * sizeof(*l)) : NULL;
            if (!l)
                return false;
            sp->dirlen = l;
            sp->dircap = cap;
        }
        sp->dir[sp->ndir] = q;
        sp->dirlen[sp->ndir++] = (size_t)(e - q) + 1;
    }
    return true;
}

/* End of a slice of about N bytes from P: the start of the first owner
 * line after P + N, or END. */
static const char *slice_end(const char *p, const char *end, size_t n)
{
    if ((size_t)(end - p) <= n)
        return end;
    for (const char *q = p + n; q < end; q++) {
        q = memchr(q, '\n', (size_t)(end - q));
        if (!q || end - q < 2)
            return end;
        if (is_owner_start(q[1]))
            return q + 1;
    }
    return end;
}

/* The slices: the file cut in the middle at an owner line, each half in
 * slices of about N bytes; false if there is no owner line to cut at. */
static bool make_slices(struct split *sp, const char *b, size_t len,
                        size_t n)
{
    const char *end = b + len, *p = b + len / 2;
    int tries = 0;
    for (;;) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (!p || ++tries > 1000 || end - p < 2)
            return false;
        p++;
        if (is_owner_start(*p))
            break;
    }
    size_t cap = 2 * (len / (n ? n : 1) + 2);
    if (!(sp->sl = calloc(cap, sizeof(*sp->sl))))
        return false;
    const char *halves[3] = {b, p, end};
    for (int h = 0; h < 2; h++) {
        if (h == 1)
            sp->cut = sp->nsl;
        for (const char *q = halves[h]; q < halves[h + 1];) {
            const char *e = slice_end(q, halves[h + 1], n);
            if (sp->nsl == cap)
                return false;
            sp->sl[sp->nsl].p = q;
            sp->sl[sp->nsl++].len = (size_t)(e - q);
            q = e;
        }
    }
    return sp->cut > 0 && sp->nsl > sp->cut;
}

static size_t count_lines(const char *b, size_t len)
{
    size_t n = 0;
    for (const char *p = b, *end = b + len;
         (p = memchr(p, '\n', (size_t)(end - p))); p++)
        n++;
    return n;
}

static void state_get(const zs_scanner_t *s, struct sstate *st)
{
    st->origin_len = s->zone_origin_length;
    memcpy(st->origin, s->zone_origin, sizeof(st->origin));
    st->ttl = s->default_ttl;
}

static bool state_eq(const struct sstate *a, const struct sstate *b)
{
    return a->origin_len == b->origin_len && a->ttl == b->ttl &&
           memcmp(a->origin, b->origin, a->origin_len) == 0;
}

static int part_new(struct part **out, struct split *sp, size_t first)
{
    struct part *t = calloc(1, sizeof(*t));
    int r;
    if (!t)
        return -ENOMEM;
    t->first = first;
    if ((r = zone_init(&t->z, sp->c->z->origin, sp->c->z->origin_len))) {
        free(t);
        return r;
    }
    t->c = *sp->c;
    t->c.z = &t->z;
    t->c.bins = &t->bins;
    t->c.held = &t->held;
    t->c.warnings = &t->warnings;
    t->c.diag = &t->diag;
    t->c.lastfile = NULL;
    t->c.soa = 0;
    t->c.err = 0;
    /* every part names the file by index 0, as the zone will */
    if (!(t->s = calloc(1, sizeof(*t->s))) ||
        zs_init(t->s, sp->origin, 1, 3600) != 0 ||
        file_index(&t->c, sp->c->path) != 0) {
        if (t->s)
            zs_deinit(t->s);
        free(t->s);
        zone_free(&t->z);
        free(t);
        return -ENOMEM;
    }
    zs_set_processing(t->s, on_record, on_error, &t->c);
    *out = t;
    return 0;
}

static void part_free(struct part *t)
{
    if (!t)
        return;
    if (t->s) {
        zs_deinit(t->s);
        free(t->s);
    }
    held_free(&t->held);
    zone_bins_free(&t->bins);
    zone_free(&t->z);
    free(t);
}

/* The directives before offset X, read by T's scanner. */
static int part_directives(struct part *t, const struct split *sp,
                           const char *x)
{
    for (size_t i = 0; i < sp->ndir && sp->dir[i] < x; i++)
        if (zs_set_input_string(t->s, sp->dir[i], sp->dirlen[i]) != 0 ||
            zs_parse_all(t->s) != 0)
            return -1;
    return 0;
}

/* Slice K by part T, whose scanner is in the state the slice starts in;
 * its mapped pages are given back once parsed, so the mapping does not
 * add the file's size to the peak. */
static void slice_parse(struct part *t, struct slice *sl)
{
    zs_scanner_t *s = t->s;
    state_get(s, &sl->in);
    t->c.line_off = (int64_t)sl->line - (int64_t)s->line_counter;

    if (zs_set_input_string(s, sl->p, sl->len) != 0 || zs_parse_all(s) != 0 ||
        t->c.err) {
        t->zerr = 1;
        return;
    }
    state_get(s, &sl->out);
    sl->parsed = true;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)sl->p + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
    uintptr_t hi = (uintptr_t)(sl->p + sl->len) & ~(uintptr_t)(pg - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Takes the next slice of half H from the front (own) or the back
 * (stolen); SIZE_MAX if none is left. */
static size_t claim(struct split *sp, int h, bool own)
{
    size_t k = SIZE_MAX;
    pthread_mutex_lock(&sp->mu);
    if (!sp->err && sp->front[h] < sp->back[h])
        k = own ? sp->front[h]++ : --sp->back[h];
    pthread_mutex_unlock(&sp->mu);
    return k;
}

struct worker {
    struct split *sp;
    int h;
};

static void *split_run(void *arg)
{
    struct worker *w = arg;
    struct split *sp = w->sp;
    int h = w->h;
    size_t lo = h ? sp->cut : 0, hi = h ? sp->nsl : sp->cut;
    /* line numbers: each thread counts its half's lines, then both know
     * where every slice starts */
    for (size_t k = lo; k < hi; k++)
        sp->sl[k].nlines = count_lines(sp->sl[k].p, sp->sl[k].len);
    pthread_barrier_wait(&sp->lines);
    uint64_t line = 1;
    for (size_t k = 0; k < hi; k++) {
        if (k >= lo)
            sp->sl[k].line = line;
        line += sp->sl[k].nlines;
    }
    /* and both have set them before either may take a slice of the other
     * half */
    pthread_barrier_wait(&sp->lines);
    /* tests: the second half's thread starts late, so that the first
     * takes slices from the back of the second half */
    const char *delay = h == 1 ? getenv("ZONESIGN_SPLIT_DELAY") : NULL;
    if (delay)
        usleep((useconds_t)strtoul(delay, NULL, 10));
    struct part *t = sp->own[h];
    if (h == 1 && part_directives(t, sp, sp->sl[lo].p) != 0)
        t->zerr = 1;
    size_t k;
    while (!t->zerr && (k = claim(sp, h, true)) != SIZE_MAX)
        slice_parse(t, &sp->sl[k]);
    if (t->zerr) { /* the whole file is read again: stop the other too */
        pthread_mutex_lock(&sp->mu);
        sp->front[0] = sp->back[0];
        sp->front[1] = sp->back[1];
        pthread_mutex_unlock(&sp->mu);
        return NULL;
    }
    /* done with its half: slices from the back of the other's */
    while ((k = claim(sp, !h, false)) != SIZE_MAX) {
        struct part *v = NULL;
        if (part_new(&v, sp, k) != 0) {
            pthread_mutex_lock(&sp->mu);
            sp->err = -ENOMEM;
            pthread_mutex_unlock(&sp->mu);
            break;
        }
        sp->stolen[k] = v;
        if (part_directives(v, sp, sp->sl[k].p) != 0)
            v->zerr = 1;
        else
            slice_parse(v, &sp->sl[k]);
        if (v->zerr)
            break;
    }
    return NULL;
}

static void replay(struct rctx *c, const struct held *h, uint64_t warnings)
{
    for (size_t i = 0; i < h->n; i++)
        if (++*c->warnings <= WARN_SHOWN && c->warn)
            c->warn(c->warg, h->lines[i]);
    *c->warnings += warnings - h->n;
}

/* Split reading checks each bin of the zone (zone_bins_lay_out) as soon
 * as it is laid out, on the thread that laid it out, while its records
 * are in the cache.  No name spans two bins; the only name before a bin
 * that can own its names is the apex, whose DNAME (if any) is handed to
 * the first bin after it.  Warnings are held per bin and shown in bin
 * order, and the first error in canonical order wins: the same as
 * check_zone in one pass. */
struct bincheck {
    struct rctx c;
    struct held held;
    uint64_t warnings;
    signer_diag_t diag;
    size_t first, end, n;
};

struct binchecks {
    const struct rctx *base;
    size_t dname_bin; /* the first bin after the apex's if it has a DNAME */
    struct bincheck b[ZONE_BINS];
};

static void check_bin(void *arg, size_t k, size_t first, size_t n)
{
    struct binchecks *bc = arg;
    struct bincheck *b = &bc->b[k];
    const zone_t *z = bc->base->z;
    b->c = *bc->base;
    b->c.held = &b->held;
    b->c.warnings = &b->warnings;
    b->c.diag = &b->diag;
    b->c.lastfile = NULL;
    b->first = first;
    b->n = n;
    b->end = check_range(&b->c, first, first + n,
                         k == bc->dname_bin ? z->okey : NULL, z->okey_len);
}

/* The bins' outcome into C, in canonical order: warnings, the first
 * error, the index without the dropped duplicates. */
static void checks_finish(struct rctx *c, struct binchecks *bc)
{
    size_t w = 0;
    for (size_t k = 0; k < ZONE_BINS; k++) {
        struct bincheck *b = &bc->b[k];
        if (b->n == 0)
            continue;
        replay(c, &b->held, b->warnings);
        if (b->c.err) {
            c->err = b->c.err;
            *c->diag = b->diag;
            break;
        }
        memmove(c->z->idx + w, c->z->idx + b->first,
                (b->end - b->first) * sizeof(*c->z->idx));
        w += b->end - b->first;
    }
    if (!c->err)
        c->z->n = w;
}

static void checks_free(struct binchecks *bc)
{
    if (!bc)
        return;
    for (size_t k = 0; k < ZONE_BINS; k++)
        held_free(&bc->b[k].held);
    free(bc);
}

/* The first bin after the apex's if the apex (bin 0) has a DNAME. */
static size_t apex_dname_bin(zone_bins_t *const *parts, size_t np)
{
    bool dname = false;
    for (size_t q = 0; q < np; q++)
        for (size_t o = 0; o < parts[q]->bin[0].len;) {
            const uint8_t *p = parts[q]->bin[0].buf + o;
            size_t klen = get16(p);
            dname |= get16(p + 2 + klen) == T_DNAME;
            o += 2 + klen + 14 + get16(p + 2 + klen + 12);
        }
    for (size_t k = 1; dname && k < ZONE_BINS; k++)
        for (size_t q = 0; q < np; q++)
            if (parts[q]->count[k])
                return k;
    return SIZE_MAX;
}

/* The parts in file order: each half's own, then the slices stolen from
 * its back; NULL-free, *N of them. */
static struct part **parts_in_order(struct split *sp, size_t *n)
{
    struct part **v = calloc(sp->nsl + 2, sizeof(*v));
    size_t m = 0;
    if (!v)
        return NULL;
    for (int h = 0; h < 2; h++) {
        v[m++] = sp->own[h];
        for (size_t k = h ? sp->cut : 0; k < (h ? sp->nsl : sp->cut); k++)
            if (sp->stolen[k])
                v[m++] = sp->stolen[k];
    }
    *n = m;
    return v;
}

/* Did every slice parse, without errors, each starting in the state the
 * one before it ended in (no record or directive the cut missed), with
 * at most the one SOA an unsigned zone may have? */
static bool split_ok(const struct split *sp, struct part *const *v, size_t n,
                     unsigned *soa)
{
    *soa = 0;
    if (sp->err)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->zerr || v[i]->c.err)
            return false;
        *soa += v[i]->c.soa;
    }
    for (size_t k = 0; k < sp->nsl; k++)
        if (!sp->sl[k].parsed ||
            (k > 0 && !state_eq(&sp->sl[k - 1].out, &sp->sl[k].in)))
            return false;
    return !(sp->c->mode == READ_UNSIGNED && *soa > 1);
}

static void split_free(struct split *sp)
{
    for (int h = 0; h < 2; h++)
        part_free(sp->own[h]);
    for (size_t k = 0; sp->stolen && k < sp->nsl; k++)
        part_free(sp->stolen[k]);
    free(sp->stolen);
    free(sp->sl);
    free(sp->dir);
    free(sp->dirlen);
}

/* Sorts, lays out and checks the parts' records into the zone. */
static int split_finish(struct rctx *c, struct part **v, size_t n)
{
    zone_bins_t **bins = calloc(n, sizeof(*bins));
    struct binchecks *checks = NULL;
    int ret = bins ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && bins; i++)
        bins[i] = &v[i]->bins;
    /* without an SOA the checks wait (the missing SOA is the error) */
    if (!ret && c->soa) {
        if (!(checks = calloc(1, sizeof(*checks))))
            ret = -ENOMEM;
        else {
            checks->base = c;
            checks->dname_bin = apex_dname_bin(bins, n);
        }
    }
    if (!ret)
        ret = zone_bins_lay_out(c->z, bins, n, checks ? check_bin : NULL,
                                checks);
    trace_mark("sorted, laid out and checked");
    free(bins);
    if (ret) {
        checks_free(checks);
        return ret;
    }
    c->lastfile = NULL;
    for (size_t i = 0; i < n; i++)
        replay(c, &v[i]->held, v[i]->warnings);
    c->checks = checks; /* the caller takes their outcome in turn */
    return 0;
}

/* 0: Z holds every record of the file; 1: not done (read it whole);
 * <0: out of memory. */
static int read_split(struct rctx *c, const char *path)
{
    struct stat st;
    const char *env = getenv("ZONESIGN_SPLIT_MIN");
    size_t min = env ? (size_t)strtoull(env, NULL, 10) : SPLIT_MIN;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size < (min ? min : 1)) {
        close(fd);
        return 1;
    }
    size_t len = (size_t)st.st_size;
    char *b = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (b == MAP_FAILED)
        return 1;
    char origin[1100];
    struct split *sp = calloc(1, sizeof(*sp));
    struct part **v = NULL;
    size_t nparts = 0;
    pthread_t th;
    bool started = false, sync = false;
    int ret = 1;
    env = getenv("ZONESIGN_SPLIT_SLICE");
    size_t slice = env && strtoull(env, NULL, 10) > 0
                       ? (size_t)strtoull(env, NULL, 10)
                       : SPLIT_SLICE;
    name_to_text(c->z->origin, origin);
    c->path = path;
    if (!sp)
        goto out;
    sp->c = c;
    sp->origin = origin;
    sp->buf = b;
    if (!find_dirs(sp, b, len) || !make_slices(sp, b, len, slice))
        goto out;
    /* the scan for directives touched every page: give them back, the
     * slices map them in again as they go (and drop them behind them) */
    madvise(b, len, MADV_DONTNEED);
    if (!(sp->stolen = calloc(sp->nsl, sizeof(*sp->stolen))) ||
        file_index(c, path) < 0 || part_new(&sp->own[0], sp, 0) != 0 ||
        part_new(&sp->own[1], sp, sp->cut) != 0) {
        ret = -ENOMEM;
        goto out;
    }
    sp->front[0] = 0;
    sp->back[0] = sp->front[1] = sp->cut;
    sp->back[1] = sp->nsl;
    if (pthread_mutex_init(&sp->mu, NULL) != 0)
        goto out;
    if (pthread_barrier_init(&sp->lines, NULL, 2) != 0) {
        pthread_mutex_destroy(&sp->mu);
        goto out;
    }
    sync = true;
    struct worker w0 = {sp, 0}, w1 = {sp, 1};
    started = pthread_create(&th, NULL, split_run, &w1) == 0;
    if (!started)
        goto out;
    split_run(&w0);
    pthread_join(th, NULL);
    trace_mark("halves parsed");
    if (!(v = parts_in_order(sp, &nparts))) {
        ret = -ENOMEM;
        goto out;
    }
    if (getenv("ZONESIGN_TRACE"))
        fprintf(stderr, "zonesign: trace: %zu slices, %zu taken from the "
                        "other half's back\n",
                sp->nsl, nparts - 2);
    if (!split_ok(sp, v, nparts, &c->soa))
        goto out;
    ret = split_finish(c, v, nparts);
out:
    if (ret) { /* undo: the file is read whole */
        c->z->n = 0;
        c->z->a.len = 0;
        c->soa = 0;
    }
    if (sync) {
        pthread_barrier_destroy(&sp->lines);
        pthread_mutex_destroy(&sp->mu);
    }
    free(v);
    if (sp)
        split_free(sp);
    free(sp);
    munmap(b, len);
    c->path = NULL;
    return ret < 0 ? ret : ret ? 1 : 0;
}

int reader_load(zone_t *z, const char *path, enum read_mode mode,
                warn_fn warn, void *warg, uint64_t *warnings,
                signer_diag_t *diag)
{
    struct rctx c = {.z = z, .mode = mode, .warn = warn, .warg = warg,
                     .warnings = warnings, .diag = diag};
    zs_scanner_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    char origin[1100];
    name_to_text(z->origin, origin);
    int ret = 0;
    if (zs_init(s, origin, 1, 3600) != 0) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
                 zs_strerror(s->error.code));
        ret = SIGNER_EINPUT;
        goto out;
    }
    if (zs_set_input_file(s, path) != 0) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: cannot read: %s", path,
                 s->error.code == ZS_FILE_OPEN || s->error.code == ZS_FILE_ACCESS
                     ? strerror(errno ? errno : ENOENT)
                     : zs_strerror(s->error.code));
        ret = SIGNER_EINPUT;
        goto deinit;
    }
    zs_set_processing(s, on_record, on_error, &c);
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int split = read_split(&c, path);
    if (split < 0) {
        ret = split;
        goto deinit;
    }
    if (split && zs_parse_all(s) != 0 && !c.err)
        fail(&c, path, s->line_counter, "%s", zs_strerror(s->error.code));
    if (!c.err && c.soa == 0) {
        c.err = SIGNER_EINPUT;
        snprintf(diag->msg, sizeof(diag->msg),
                 "%s: no SOA record at the origin", path);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!c.err) {
        /* the split road has sorted and laid out the zone already */
        ret = split ? zone_sort(z) : 0;
        clock_gettime(CLOCK_MONOTONIC, &t2);
        if (getenv("ZONESIGN_TRACE"))
            fprintf(stderr, "zonesign: trace: parse %.2f s (%s), sort %.2f s\n",
                    (double)(t1.tv_sec - t0.tv_sec) +
                        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                    split ? "whole" : "split in two",
                    (double)(t2.tv_sec - t1.tv_sec) +
                        (double)(t2.tv_nsec - t1.tv_nsec) / 1e9);
        /* the few duplicates the checks drop stay in the arena unused */
        if (ret == 0 && c.checks)
            checks_finish(&c, c.checks);
        else if (ret == 0)
            check_zone(&c);
        trace_mark("checked");
    }
    checks_free(c.checks);
    if (!ret)
        ret = c.err;
    if (*warnings > WARN_SHOWN && warn) {
        char line[128];
        snprintf(line, sizeof(line), "%s: %llu further warnings not shown",
                 path, (unsigned long long)(*warnings - WARN_SHOWN));
        warn(warg, line);
    }
deinit:
    zs_deinit(s);
out:
    free(s);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Pieces of a file, for patch.c                                        */

/* One scanner over pieces [FROM, TO) into bins of their own (after the
 * first piece, read only for the state it leaves the scanner in, if FROM
 * is not 0). */
struct prange {
    zone_t *z;
    const char *path, *buf;
    const uint64_t *off, *len, *line;
    size_t from, to;
    zone_bins_t bins;
    struct sstate st0;
    uint64_t warnings;
    unsigned soa;
    int ret; /* 0, 1 (not fit) or -ENOMEM */
    pthread_t th;
    bool threaded;
};

static void *prange_run(void *arg)
{
    struct prange *pr = arg;
    signer_diag_t diag = {{0}};
    struct held held = {0};
    struct rctx c = {.z = pr->z, .mode = READ_UNSIGNED,
                     .warnings = &pr->warnings, .diag = &diag,
                     .held = &held, .path = pr->path, .bins = &pr->bins,
                     .by_piece = true};
    zs_scanner_t *s = calloc(1, sizeof(*s));
    char origin[1100];
    struct sstate st;
    pr->ret = 1;
    if (!s) {
        pr->ret = -ENOMEM;
        return NULL;
    }
    name_to_text(pr->z->origin, origin);
    if (zs_init(s, origin, 1, 3600) != 0) {
        free(s);
        return NULL;
    }
    zs_set_processing(s, on_record, on_error, &c);
    if (file_index(&c, pr->path) != 0)
        goto out;
    size_t k = pr->from == 0 ? 0 : SIZE_MAX; /* SIZE_MAX: the first piece */
    for (;; k = k == SIZE_MAX ? pr->from : k + 1) {
        size_t q = k == SIZE_MAX ? 0 : k;
        if (k != SIZE_MAX && k >= pr->to)
            break;
        c.piece = (uint32_t)q;
        c.line_off = (int64_t)pr->line[q] - (int64_t)s->line_counter;
        if (zs_set_input_string(s, pr->buf + pr->off[q], pr->len[q]) != 0 ||
            zs_parse_all(s) != 0 || c.err || s->multiline)
            goto out;
        if (q == 0) {
            state_get(s, &pr->st0);
            if (k == SIZE_MAX) { /* its records are the other range's */
                zone_bins_free(&pr->bins);
                c.soa = 0;
            }
        } else {
            state_get(s, &st);
            if (!state_eq(&pr->st0, &st))
                goto out;
        }
    }
    pr->soa = c.soa;
    pr->ret = pr->warnings > 0 ? 1 : 0;
out:
    held_free(&held);
    zs_deinit(s);
    free(s);
    return NULL;
}

int reader_pieces(zone_t *z, const char *path, const char *buf,
                  const uint64_t *off, const uint64_t *len,
                  const uint64_t *line, size_t n, uint8_t ctx[16],
                  uint64_t *soa)
{
    /* two scanners on two threads when there is enough to read: the
     * second reads the first piece too, for its state, then the pieces
     * after the first half; the records go into bins, laid out in order */
    struct prange r[2];
    size_t h = n >= 64 ? 1 + (n - 1) / 2 : n, np = h < n ? 2 : 1;
    memset(r, 0, sizeof(r));
    for (size_t q = 0; q < np; q++) {
        r[q] = (struct prange){.z = z, .path = path, .buf = buf, .off = off,
                               .len = len, .line = line,
                               .from = q ? h : 0, .to = q ? n : h};
    }
    /* (the file's name registered before the second scanner starts) */
    struct rctx c0 = {.z = z, .path = path};
    if (file_index(&c0, path) != 0)
        return 1;
    if (np == 2)
        r[1].threaded = pthread_create(&r[1].th, NULL, prange_run, &r[1]) == 0;
    prange_run(&r[0]);
    if (np == 2) {
        if (r[1].threaded)
            pthread_join(r[1].th, NULL);
        else
            prange_run(&r[1]);
    }
    int ret = r[0].ret;
    if (!ret && np == 2) {
        ret = r[1].ret;
        if (!ret && !state_eq(&r[0].st0, &r[1].st0))
            ret = 1;
    }
    if (!ret) {
        zone_bins_t *parts[2] = {&r[0].bins, &r[1].bins};
        ret = zone_bins_lay_out(z, parts, np, NULL, NULL);
    }
    if (!ret) {
        const struct sstate *st0 = &r[0].st0;
        uint8_t hb[sizeof(st0->origin) + 8];
        memcpy(hb, st0->origin, st0->origin_len);
        put32(hb + st0->origin_len, st0->origin_len);
        put32(hb + st0->origin_len + 4, st0->ttl);
        /* a digest of the state the first piece leaves the scanner in */
        EVP_MD_CTX *m = NULL;
        uint8_t dg[CACHE_DIGEST];
        if (cache_md_new(&m) != 0)
            ret = -ENOMEM;
        else if (cache_content_digest(m, hb, st0->origin_len + 8, dg) != 0)
            ret = 1;
        EVP_MD_CTX_free(m);
        if (!ret) {
            memcpy(ctx, dg, 16);
            *soa = r[0].soa + (np == 2 ? r[1].soa : 0);
        }
    }
    for (size_t q = 0; q < np; q++)
        zone_bins_free(&r[q].bins);
    return ret;
}

int reader_check(zone_t *z, uint64_t *warnings, signer_diag_t *diag)
{
    struct held held = {0};
    struct rctx c = {.z = z, .mode = READ_UNSIGNED, .warnings = warnings,
                     .diag = diag, .held = &held};
    int r = check_zone(&c);
    held_free(&held);
    return r;
}

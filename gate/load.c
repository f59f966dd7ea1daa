/*
 * gate/load.c - read a zone file with libldns into compact records.
 *
 * Each RR is parsed by libldns: a simple one-line record (no parentheses,
 * comment, quote, escape, CR/FF/VT, not a directive) by
 * ldns_rr_new_frm_str on the line itself, anything else by
 * ldns_rr_new_frm_fp_l, the same text libldns's file reader would pass on,
 * with the same line counting (tests/gate/test_fastpath.sh compares both).
 * A simple line whose text after the owner field was already parsed so,
 * under the same $ORIGIN and default TTL, reuses that result and has only
 * its owner parsed, by libldns's name functions ("The remainder memo"
 * below; tests/gate/test_memo.sh).
 * It is put in canonical form by ldns_rr2canonical (RFC 4034 6.2) when a
 * name holds an upper-case letter and copied as owner + rdata wire bytes
 * into one arena; the ldns_rr is freed at once.  Does not check DNSSEC;
 * rejects what is not a zone: syntax errors, classes other than IN,
 * records outside the origin, names over 255 octets.  Errors name
 * FILE:LINE (invariant 5), the included file's when the fault is in one.
 *
 * $INCLUDE (RFC 1035 5.1; libldns reports it but does not read it): the
 * file name (relative to the including file's directory) and an optional
 * origin for it; nesting is limited to INCLUDE_DEPTH_MAX files, which also
 * stops include loops.
 *
 * Parallel reading: the file is mapped; a scanner cuts it into pieces of
 * 1-64 MiB at record boundaries (a line that starts with an owner name,
 * outside parentheses and quotes) and queues each as soon as it is cut;
 * every reader thread (the scanner too, once done) takes the next piece,
 * parses it preceded by the $ORIGIN and $TTL in force at its start, and
 * sorts it; the pieces are joined in file order (no global sort when they
 * join in order).  After a relative $ORIGIN or a $INCLUDE the rest of the
 * file is one piece.  Pages of text already read are dropped from the
 * process (MADV_DONTNEED), so peak RSS does not hold the whole file.
 */
#include "gate/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio_ext.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 1 if a name (wire) holds an upper-case letter. */

/*
 * The checks every record passes, whichever road parsed it; owner is in
 * canonical form.  Returns 0, or GATE_ERR_SYNTAX with *why set.
 */
static int rec_check(const struct gate_zone *z, uint16_t klass,
                     const ldns_rdf *owner, const char **why)
{
    if (klass != LDNS_RR_CLASS_IN) {
        *why = "class is not IN";
        return GATE_ERR_SYNTAX;
    }
    /* ldns_dname_cat does not bound what a relative owner and a long
     * $ORIGIN make (RFC 1035 3.1: 255 octets at most) */
    if (ldns_rdf_size(owner) > 255) {
        *why = "owner name is longer than 255 octets";
        return GATE_ERR_SYNTAX;
    }
    /* both are canonical (lower case) wire names: the origin or below */
    if (!name_is_sub(ldns_rdf_data(owner), ldns_rdf_data(z->origin))) {
        *why = "owner is outside the zone's origin";
        return GATE_ERR_SYNTAX;
    }
    return 0;
}

/* Append one checked record (canonical owner and rdata) to the zone. */
static int rec_add(struct gate_zone *z, const ldns_rdf *owner, uint16_t type,
                   uint32_t ttl, const uint8_t *rdata, size_t rdlen, int line)
{
    gate_rec_t r = {0};
    r.type = type;
    r.ttl = ttl;
    r.line = (uint32_t)line;
    r.namelen = (uint8_t)ldns_rdf_size(owner);
    r.labels = (uint8_t)ldns_dname_label_count(owner);
    r.rdlen = (uint16_t)rdlen;
    int err;
    if (z->nrecs > 0) {
        const gate_rec_t *p = &z->recs[z->nrecs - 1];
        if (p->namelen == r.namelen &&
            memcmp(z->arena + p->name, ldns_rdf_data(owner), r.namelen) == 0)
            r.name = p->name;
        else if ((err = zone_arena_put(z, ldns_rdf_data(owner), r.namelen,
                                  &r.name)) < 0)
            return err;
    } else if ((err = zone_arena_put(z, ldns_rdf_data(owner), r.namelen,
                                &r.name)) < 0) {
        return err;
    }
    if ((err = zone_arena_put(z, rdata, r.rdlen, &r.rdata)) < 0)
        return err;
    return zone_rec_push(z, &r);
}

/* Check and copy one ldns_rr into the zone; *why set on bad input.  The
 * rr is put in canonical form; its rdata wire form is left in buf. */
static int rr_store(struct gate_zone *z, ldns_rr *rr, ldns_buffer *buf,
                    int line, const char **why)
{
    zone_rr_canonical(rr);
    int err = rec_check(z, (uint16_t)ldns_rr_get_class(rr), ldns_rr_owner(rr),
                        why);
    if (err)
        return err;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        const ldns_rdf *d = ldns_rr_rdf(rr, i);
        /* as for the owner: a relative name completed with $ORIGIN */
        if (ldns_rdf_get_type(d) == LDNS_RDF_TYPE_DNAME &&
            ldns_rdf_size(d) > 255) {
            *why = "name in rdata is longer than 255 octets";
            return GATE_ERR_SYNTAX;
        }
    }
    ldns_buffer_clear(buf);
    if (ldns_rr_rdata2buffer_wire(buf, rr) != LDNS_STATUS_OK ||
        ldns_buffer_position(buf) > 65535) {
        *why = "rdata cannot be encoded";
        return GATE_ERR_SYNTAX;
    }
    return rec_add(z, ldns_rr_owner(rr), (uint16_t)ldns_rr_get_type(rr),
                   ldns_rr_ttl(rr), ldns_buffer_begin(buf),
                   ldns_buffer_position(buf), line);
}

/* Where a stream is read from: its name for messages, its directive state. */
typedef struct {
    const char *path;  /* file named in errors */
    int depth;         /* $INCLUDE nesting, 0 for the zone file itself */
} src_t;

enum { INCLUDE_DEPTH_MAX = 8 };

/*
 * A piece of the zone file in memory, read through a FILE (fopencookie)
 * by libldns or line by line by the fast path: pre ("$ORIGIN ..\n$TTL ..\n"
 * in force at the piece's start) then p[0..len).
 */
typedef struct {
    const char *pre;
    size_t prelen, prepos;
    const char *p;
    size_t len, pos;
    int last;  /* the piece ends where the file ends */
} cookie_t;

/* A reader thread's memo of parsed remainders (see "The remainder memo"). */
typedef struct memo memo_t;

static int read_stream(struct gate_zone *z, FILE *fp, const src_t *src,
                       int line0, ldns_rdf *origin0, uint32_t ttl0,
                       const cookie_t *mem, memo_t *memo, gate_diag_t *diag);

/*
 * The text of the directive just consumed (between offsets a and b of fp),
 * read again; the stream is left at b.
 */
static int directive_text(FILE *fp, long a, long b, char *out, size_t n)
{
    if (a < 0 || b <= a || fseek(fp, a, SEEK_SET) != 0)
        return -1;
    size_t want = (size_t)(b - a) < n - 1 ? (size_t)(b - a) : n - 1;
    size_t got = fread(out, 1, want, fp);
    out[got] = 0;
    if (fseek(fp, b, SEEK_SET) != 0)
        return -1;
    return 0;
}

/* Next blank-separated word of s (quotes allowed); "" at end or comment. */
static const char *word(const char *s, char *out, size_t n)
{
    size_t k = 0;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '"') {
        for (s++; *s && *s != '"' && *s != '\n' && k + 1 < n; s++)
            out[k++] = *s;
        if (*s == '"')
            s++;
    } else {
        while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' &&
               *s != ';' && k + 1 < n)
            out[k++] = *s++;
    }
    out[k] = 0;
    return s;
}

/*
 * RFC 1035 5.1: "$INCLUDE <file-name> [<domain-name>]".  The file is
 * read with the given origin (relative to the current one) or the current
 * origin; the including file's origin and $TTL are not changed by it.
 * A relative file name is taken from the including file's directory.
 */
static int include_run(struct gate_zone *z, const src_t *src, const char *txt,
                       int line, ldns_rdf *origin, uint32_t ttl,
                       gate_diag_t *diag)
{
    char file[2048], org[1100], extra[16], path[4096];
    const char *p = strstr(txt, "$INCLUDE");
    if (!p)
        p = strstr(txt, "$include");
    p = word(p ? p + 8 : txt, file, sizeof(file));
    p = word(p, org, sizeof(org));
    word(p, extra, sizeof(extra));
#define FAIL(...) do { \
        snprintf(diag->msg, sizeof(diag->msg), __VA_ARGS__); \
        return GATE_ERR_SYNTAX; } while (0)
    if (!file[0])
        FAIL("%s:%d: $INCLUDE needs a file name", src->path, line);
    if (extra[0])
        FAIL("%s:%d: $INCLUDE takes a file name and an optional origin",
             src->path, line);
    if (src->depth + 1 > INCLUDE_DEPTH_MAX)
        FAIL("%s:%d: $INCLUDE nested deeper than %d files", src->path, line,
             INCLUDE_DEPTH_MAX);
    if (file[0] == '/') {
        snprintf(path, sizeof(path), "%s", file);
    } else {
        const char *slash = strrchr(src->path, '/');
        int dl = slash ? (int)(slash - src->path) : 0;
        if (slash)
            snprintf(path, sizeof(path), "%.*s/%s", dl, src->path, file);
        else
            snprintf(path, sizeof(path), "%s", file);
    }
    ldns_rdf *o = NULL;
    if (org[0]) {
        size_t ol = strlen(org);
        int abs = ol > 0 && org[ol - 1] == '.' &&
                  (ol < 2 || org[ol - 2] != '\\');
        if (ldns_str2rdf_dname(&o, org) != LDNS_STATUS_OK)
            FAIL("%s:%d: $INCLUDE origin '%s' is not a domain name", src->path,
                 line, org);
        if (!abs) {
            ldns_rdf *full = ldns_dname_cat_clone(o, origin);
            ldns_rdf_deep_free(o);
            if (!(o = full))
                return -ENOMEM;
        }
    } else if (!(o = ldns_rdf_clone(origin))) {
        return -ENOMEM;
    }
    FILE *in = fopen(path, "r");
    if (!in) {
        int e = errno;
        ldns_rdf_deep_free(o);
        FAIL("%s:%d: $INCLUDE %.300s: %s", src->path, line, path,
             strerror(e));
    }
    src_t sub = {path, src->depth + 1};
    int err = read_stream(z, in, &sub, 0, o, ttl, NULL, NULL, diag);
    fclose(in);
    ldns_rdf_deep_free(o);
    return err;
#undef FAIL
}

/* Characters that make a line "not simple" (left to ldns's own reader). */
static const unsigned char special[256] = {
    ['('] = 1, [')'] = 1, [';'] = 1, ['"'] = 1, ['\\'] = 1,
    ['\r'] = 1, ['\f'] = 1, ['\v'] = 1, [0] = 1,
};

/* ldns_fskipcs_l(fp, "\f\n\r\v"), as ldns does after each line it reads. */
static size_t skip_seps(const char *b, size_t at, size_t n, int *line)
{
    while (at < n && (b[at] == '\n' || b[at] == '\f' || b[at] == '\r' ||
                      b[at] == '\v')) {
        if (b[at] == '\n')
            ++*line;
        at++;
    }
    return at;
}

/*
 * The remainder memo.  Most lines of a TLD zone are delegations whose text
 * after the owner field ("\t86400\tIN\tNS\tns1.dns42.example.net.")
 * repeats: a few thousand name servers serve a million delegations.
 * libldns's parse of that text (TTL, class, type, rdata) depends only on
 * the text itself, the $ORIGIN and the default TTL in force (see
 * ldns_rr_new_frm_str_internal: after the owner token and the blanks that
 * end it, the owner plays no part when an origin is given), so each
 * reader thread remembers, for recent remainders, what libldns made of
 * them: TTL, class, type and canonical rdata wire form.  A line whose
 * remainder is remembered has only its owner parsed, by the same libldns
 * calls ldns_rr_new_frm_str makes (ldns_dname_new_frm_str, then
 * ldns_dname_cat with the origin for a relative name; "@" is the origin),
 * and passes the same rec_check as any other record.  Anything unusual
 * (an owner libldns would refuse or that starts with '@', a line without
 * an owner field, a long remainder) goes through libldns whole, which
 * also reports the fault at its FILE:LINE.
 *
 * Entries are keyed by the exact remainder bytes (the hash picks a set
 * and a way, the bytes decide) and are valid only under the $ORIGIN and
 * default TTL they were parsed with: when either differs the memo's
 * epoch moves on and every entry is dead.  Only types that repeat at
 * delegations are stored (NS, glue, and a few more); RRSIG, NSEC3, DS and
 * the like are unique and would only push out useful entries.  The table
 * is bounded (MEMO_SETS x MEMO_WAYS entries per thread).
 */
enum {
    MEMO_WAYS = 4,        /* entries per set */
    MEMO_SETS = 1 << 13,  /* 8192 sets: 512 KB of tags + 4 MB of entries
                             per reader thread, touched as used */
    MEMO_ENT = 128,       /* bytes per entry: two cache lines */
    MEMO_DATA = MEMO_ENT - 10, /* remainder + rdata bytes an entry holds */
};

/* What libldns made of one remainder: key[0..keylen) is the remainder,
 * then rdata[0..rdlen) follows it in data. */
typedef struct {
    uint32_t ttl;
    uint16_t type, klass;
    uint8_t keylen, rdlen;
    uint8_t data[MEMO_DATA];
} memo_ent_t;

/* A set's tags, one cache line, kept apart from the entries so that the
 * tags of all sets (512 KB) can stay in the core's cache.  A way is live
 * when its epoch is the memo's; the least recently used live way (or a
 * dead one) is replaced, so a stream of unique remainders does not push
 * out the ones that keep coming back. */
typedef struct {
    uint64_t hash[MEMO_WAYS];
    uint32_t epoch[MEMO_WAYS];
    uint32_t used[MEMO_WAYS]; /* memo's clock at the last hit or insert */
} memo_tags_t;

struct memo {
    memo_tags_t *tags;   /* MEMO_SETS, allocated at first use */
    memo_ent_t *ent;     /* MEMO_SETS * MEMO_WAYS */
    uint32_t epoch;      /* never 0 once bound: zeroed ways are dead */
    uint32_t clock;      /* counts lookups, for the replacement order */
    int bound;           /* ttl and origin below are those in force */
    uint32_t ttl;        /* the default TTL the live entries assume */
    size_t originlen;    /* and the $ORIGIN (wire, as given) */
    uint8_t origin[LDNS_MAX_DOMAINLEN + 1];
};

/* Make the memo's live entries those parsed under origin and ttl. */
static void memo_bind(memo_t *m, const ldns_rdf *origin, uint32_t ttl)
{
    size_t n = ldns_rdf_size(origin);
    if (m->bound && ttl == m->ttl && n == m->originlen &&
        memcmp(m->origin, ldns_rdf_data(origin), n) == 0)
        return;
    /* a new epoch: every entry made so far is dead */
    if (++m->epoch == 0) { /* wrapped: old epochs could come back to life */
        if (m->tags)
            memset(m->tags, 0, MEMO_SETS * sizeof(*m->tags));
        m->epoch = 1;
    }
    /* an origin too long to record (ldns_dname_cat does not bound it):
     * remember nothing under it */
    m->bound = n <= sizeof(m->origin);
    if (!m->bound)
        return;
    m->ttl = ttl;
    m->originlen = n;
    memcpy(m->origin, ldns_rdf_data(origin), n);
}

static uint64_t memo_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

/* The live entry for the remainder key[0..n), or NULL. */
static const memo_ent_t *memo_find(memo_t *m, const char *key, size_t n,
                                   uint64_t hash)
{
    if (!m->tags || !m->bound)
        return NULL;
    size_t set = hash & (MEMO_SETS - 1);
    memo_tags_t *t = &m->tags[set];
    m->clock++;
    for (int w = 0; w < MEMO_WAYS; w++) {
        const memo_ent_t *e = &m->ent[set * MEMO_WAYS + w];
        if (t->hash[w] == hash && t->epoch[w] == m->epoch &&
            e->keylen == n && memcmp(e->data, key, n) == 0) {
            t->used[w] = m->clock;
            return e;
        }
    }
    return NULL;
}

/* Types worth remembering: those repeated from delegation to delegation. */
static int memo_type(ldns_rr_type t)
{
    return t == LDNS_RR_TYPE_NS || t == LDNS_RR_TYPE_A ||
           t == LDNS_RR_TYPE_AAAA || t == LDNS_RR_TYPE_CNAME ||
           t == LDNS_RR_TYPE_MX || t == LDNS_RR_TYPE_PTR ||
           t == LDNS_RR_TYPE_TXT;
}

/* Remember what libldns made of the remainder key[0..n) of a stored
 * record rr whose canonical rdata is rdata[0..rdlen).  Best effort: out
 * of memory only means nothing is remembered. */
static void memo_put(memo_t *m, const char *key, size_t n, uint64_t hash,
                     const ldns_rr *rr, const uint8_t *rdata, size_t rdlen)
{
    if (!m->bound || n + rdlen > MEMO_DATA ||
        !memo_type(ldns_rr_get_type(rr)))
        return;
    if (!m->tags) {
        m->tags = calloc(MEMO_SETS, sizeof(*m->tags));
        m->ent = calloc((size_t)MEMO_SETS * MEMO_WAYS, sizeof(*m->ent));
        if (!m->tags || !m->ent) {
            free(m->tags);
            free(m->ent);
            m->tags = NULL;
            m->ent = NULL;
            return;
        }
    }
    size_t set = hash & (MEMO_SETS - 1);
    memo_tags_t *t = &m->tags[set];
    int v = 0; /* a dead way, else the least recently used */
    for (int w = 0; w < MEMO_WAYS; w++) {
        if (t->epoch[w] != m->epoch) {
            v = w;
            break;
        }
        if (m->clock - t->used[w] > m->clock - t->used[v])
            v = w;
    }
    memo_ent_t *e = &m->ent[set * MEMO_WAYS + (size_t)v];
    t->hash[v] = hash;
    t->epoch[v] = m->epoch;
    t->used[v] = m->clock;
    e->ttl = ldns_rr_ttl(rr);
    e->type = (uint16_t)ldns_rr_get_type(rr);
    e->klass = (uint16_t)ldns_rr_get_class(rr);
    e->keylen = (uint8_t)n;
    e->rdlen = (uint8_t)rdlen;
    memcpy(e->data, key, n);
    memcpy(e->data + n, rdata, rdlen);
}

/* A line looked at ahead: where its remainder is, and its hash. */
typedef struct {
    const char *line; /* NULL: none */
    size_t o, e;
    uint64_t hash;
} ahead_t;

/* The simple-line road's state within one stream. */
typedef struct {
    memo_t *memo;            /* the thread's memo; NULL: none */
    const memo_ent_t *hit;   /* this line's remainder was remembered */
    const char *key;         /* else its remainder, if one to remember */
    size_t keylen;
    uint64_t hash;
    /* the owner field prev was parsed from under the current origin
     * (0: prev came another way), so a repeated owner is not parsed
     * again */
    size_t toklen;
    char tok[LDNS_MAX_DOMAINLEN];
    ahead_t next, cur;       /* the next line and this one (memo_ahead) */
} fast_t;

/*
 * Look at the line at p (up to end) before its turn: when it may be a
 * memo hit, hash its remainder and prefetch its set (and make what was
 * the next line the current one).  A lookup otherwise
 * waits on two cache misses (the tags, then the entry), which cost more
 * than the rest of a hit; the current line's work hides them.  Mirrors
 * simple_line's owner field and trailing blanks; a line that turns out
 * not to be simple only wasted the prefetch.
 */
static void memo_ahead(fast_t *f, const char *p, const char *end)
{
    const memo_t *m = f->memo;
    f->cur = f->next;
    f->next.line = NULL;
    if (!m->tags || p >= end || *p == ' ' || *p == '\t' || *p == '$' ||
        *p == '\n')
        return;
    size_t o = 0, lim = (size_t)(end - p);
    while (o < lim && p[o] != ' ' && p[o] != '\t' && p[o] != '\n')
        o++;
    const char *nl = o < lim ? memchr(p + o, '\n', lim - o) : NULL;
    if (!nl)
        return;
    size_t e = (size_t)(nl - p);
    while (e > 2 && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    if (e <= o || e - o >= MEMO_DATA)
        return;
    f->next = (ahead_t){p, o, e, memo_hash(p + o, e - o)};
    size_t set = f->next.hash & (MEMO_SETS - 1);
    __builtin_prefetch(&m->tags[set]);
    for (size_t w = 0; w < MEMO_WAYS; w++)
        __builtin_prefetch(&m->ent[set * MEMO_WAYS + w]);
}

/* An owner field the memo road parses itself (else libldns does all). */
static int owner_field_ok(const char *tok, size_t n)
{
    /* libldns takes any field starting with '@' for the origin and
     * refuses fields of LDNS_MAX_DOMAINLEN characters or more */
    return n > 0 && n < LDNS_MAX_DOMAINLEN - 1 && (tok[0] != '@' || n == 1);
}

/*
 * The owner field tok[0..n) as ldns_rr_new_frm_str makes it under origin;
 * NULL when libldns would refuse it (or out of memory): then the whole
 * line goes to libldns, which says why.
 */
static ldns_rdf *owner_parse(const char *tok, size_t n, const ldns_rdf *origin)
{
    char s[LDNS_MAX_DOMAINLEN];
    if (n == 1 && tok[0] == '@')
        return ldns_rdf_clone(origin);
    memcpy(s, tok, n);
    s[n] = 0;
    ldns_rdf *d = ldns_dname_new_frm_str(s);
    if (d && !ldns_dname_str_absolute(s) &&
        ldns_dname_cat(d, origin) != LDNS_STATUS_OK) {
        ldns_rdf_deep_free(d);
        d = NULL;
    }
    return d;
}

/*
 * A simple line whose owner field is b[0..o) and remainder b[o..e): look
 * the remainder up; on a hit parse the owner (or reuse prev when the
 * field is the previous line's) and set f->hit; else note the remainder
 * in f->key so that libldns's result can be remembered.  Returns 1 on a
 * hit.
 */
static int memo_line(fast_t *f, const char *b, size_t o, size_t e,
                     const ldns_rdf *origin, uint32_t ttl, ldns_rdf **prev)
{
    size_t n = e - o;
    if (n == 0 || n >= MEMO_DATA || !owner_field_ok(b, o))
        return 0;
    memo_bind(f->memo, origin, ttl);
    uint64_t hash = f->cur.line == b && f->cur.o == o && f->cur.e == e
                        ? f->cur.hash
                        : memo_hash(b + o, n);
    const memo_ent_t *hit = memo_find(f->memo, b + o, n, hash);
    if (!hit) {
        f->key = b + o;
        f->keylen = n;
        f->hash = hash;
        return 0;
    }
    if (!(f->toklen == o && memcmp(f->tok, b, o) == 0)) {
        ldns_rdf *own = owner_parse(b, o, origin);
        if (!own)
            return 0;
        /* ldns_rr_new_frm_str leaves a copy of the owner in *prev */
        ldns_rdf_deep_free(*prev);
        *prev = own;
        memcpy(f->tok, b, o);
        f->toklen = o;
    }
    f->hit = hit;
    return 1;
}

/* Store a record whose remainder was remembered; the owner is prev. */
static int hit_store(struct gate_zone *z, const memo_ent_t *hit,
                     const ldns_rdf *prev, int line, const char **why)
{
    ldns_rdf *lower = NULL;
    const ldns_rdf *owner = prev;
    if (zone_dname_has_upper(prev)) { /* RFC 4034 6.2, as ldns_rr2canonical */
        if (!(lower = ldns_rdf_clone(prev)))
            return -ENOMEM;
        ldns_dname2canonical(lower);
        owner = lower;
    }
    int err = rec_check(z, hit->klass, owner, why);
    if (!err)
        err = rec_add(z, owner, hit->type, hit->ttl, hit->data + hit->keylen,
                      hit->rdlen, line);
    ldns_rdf_deep_free(lower);
    return err;
}

/*
 * The fast path for one "simple" line at b[0..n) (n: up to its newline):
 * no parentheses, comment, quote, escape or odd white space, not a
 * directive.  libldns's file reader would hand exactly this text, with
 * trailing blanks stripped (ldns_strip_ws), to ldns_rr_new_frm_str, so we
 * do that directly and skip its character-by-character FILE reading, or
 * skip libldns altogether when the memo knows the remainder (f->hit set,
 * *rr left NULL).  Returns 0 and *simple = 0 when the line is not simple.
 */
static ldns_status simple_line(const char *b, size_t n, char *linebuf,
                               uint32_t ttl, ldns_rdf *origin, ldns_rdf **prev,
                               ldns_rr **rr, int *simple, fast_t *f)
{
    *simple = 0;
    if (n == 0 || n > LDNS_MAX_LINELEN || b[0] == '$')
        return LDNS_STATUS_OK;
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (special[(unsigned char)b[i]])
            return LDNS_STATUS_OK;
    while (s < n && (b[s] == ' ' || b[s] == '\t'))
        s++;
    *simple = 1;
    if (s == n)
        return LDNS_STATUS_SYNTAX_EMPTY;
    size_t e = n;
    while (e > s + 2 && (b[e - 1] == ' ' || b[e - 1] == '\t'))
        e--;
    /* the owner field: up to the first blank (ldns_bget_token) */
    size_t o = 0;
    if (s == 0)
        while (o < e && b[o] != ' ' && b[o] != '\t')
            o++;
    if (f->memo && s == 0 && memo_line(f, b, o, e, origin, ttl, prev))
        return LDNS_STATUS_OK;
    memcpy(linebuf, b, e);
    linebuf[e] = 0;
    ldns_status st = ldns_rr_new_frm_str(rr, linebuf, ttl, origin, prev);
    /* on success *prev holds this line's owner field, parsed under origin */
    f->toklen = 0;
    if (st == LDNS_STATUS_OK && s == 0 && owner_field_ok(b, o)) {
        memcpy(f->tok, b, o);
        f->toklen = o;
    }
    return st;
}

static int read_stream(struct gate_zone *z, FILE *fp, const src_t *src,
                       int line0, ldns_rdf *origin0, uint32_t ttl0,
                       const cookie_t *mem, memo_t *memo, gate_diag_t *diag)
{
    uint32_t ttl = ttl0;
    ldns_rdf *origin = ldns_rdf_clone(origin0);
    ldns_rdf *prev = ldns_rdf_clone(origin0);
    ldns_buffer *buf = ldns_buffer_new(4096);
    char *linebuf = mem ? malloc(LDNS_MAX_LINELEN + 1) : NULL;
    int line = line0, err = 0;
    /* fast: reading mem->p at offset at (else: fp, through libldns) */
    int fast = 0;
    size_t at = 0;
    fast_t f = {.memo = memo};
    if (!origin || !prev || !buf || (mem && !linebuf)) {
        err = -ENOMEM;
        goto out;
    }
    for (;;) {
        ldns_rr *rr = NULL;
        const char *why = NULL;
        ldns_status s;
        f.hit = NULL;
        f.key = NULL;
        if (fast) {
            if (at >= mem->len)
                break;
            const char *b = mem->p + at;
            const char *nl = memchr(b, '\n', mem->len - at);
            int simple = 0;
            if (nl == b) { /* empty line */
                line++;
                at++;
                continue;
            }
            if (nl && f.memo)
                memo_ahead(&f, nl + 1, mem->p + mem->len);
            if (nl)
                s = simple_line(b, (size_t)(nl - b), linebuf, ttl, origin,
                                &prev, &rr, &simple, &f);
            if (!simple) { /* libldns's reader from here */
                if (fseek(fp, (long)(mem->prelen + at), SEEK_SET) != 0) {
                    err = -EIO;
                    goto out;
                }
                fast = 0;
                continue;
            }
            line++;
            at = skip_seps(mem->p, (size_t)(nl - mem->p) + 1, mem->len,
                           &line);
        } else {
            if (feof(fp))
                break;
            f.toklen = 0; /* prev and origin may change here */
            long before = ftell(fp);
            s = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev, &line);
            if (s == LDNS_STATUS_SYNTAX_INCLUDE) {
                char txt[4096];
                if (directive_text(fp, before, ftell(fp), txt,
                                   sizeof(txt)) < 0) {
                    snprintf(diag->msg, sizeof(diag->msg),
                             "%s:%d: $INCLUDE cannot be read here",
                             src->path, line);
                    err = GATE_ERR_SYNTAX;
                    goto out;
                }
                if ((err = include_run(z, src, txt, line, origin, ttl,
                                       diag)) < 0)
                    goto out;
            }
            if (mem && !feof(fp)) {
                long pos = ftell(fp);
                if (pos >= (long)mem->prelen) {
                    fast = 1;
                    at = (size_t)pos - mem->prelen;
                }
            }
        }
        switch (s) {
        case LDNS_STATUS_OK:
            if (f.hit) {
                err = hit_store(z, f.hit, prev, line, &why);
            } else {
                err = rr_store(z, rr, buf, line, &why);
                if (!err && f.key)
                    memo_put(f.memo, f.key, f.keylen, f.hash, rr,
                             ldns_buffer_begin(buf), ldns_buffer_position(buf));
                ldns_rr_free(rr);
            }
            if (err == GATE_ERR_SYNTAX) {
                snprintf(diag->msg, sizeof(diag->msg), "%s:%d: %s", src->path,
                         line, why);
                goto out;
            }
            if (err < 0)
                goto out;
            break;
        case LDNS_STATUS_SYNTAX_EMPTY:
        case LDNS_STATUS_SYNTAX_TTL:
        case LDNS_STATUS_SYNTAX_ORIGIN:
        case LDNS_STATUS_SYNTAX_INCLUDE:
            break;
        default:
            /* trailing blank at the end of the file (not of a piece: a
             * piece's end is no end of file, and a record there is read) */
            if (!fast && feof(fp) && s == LDNS_STATUS_SYNTAX_ERR &&
                (!mem || mem->last))
                break;
            snprintf(diag->msg, sizeof(diag->msg), "%s:%d: %s", src->path,
                     line, ldns_get_errorstr_by_id(s));
            err = GATE_ERR_SYNTAX;
            goto out;
        }
    }
    if (ferror(fp)) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: read error", src->path);
        err = -EIO;
    }
out:
    if (err == -ENOMEM && !diag->msg[0])
        snprintf(diag->msg, sizeof(diag->msg), "%s: out of memory", src->path);
    ldns_rdf_deep_free(origin);
    ldns_rdf_deep_free(prev);
    ldns_buffer_free(buf);
    free(linebuf);
    return err;
}

/* Copy a directive's argument (up to blank, comment or end of line). */
static int directive_arg(const char *p, const char *end, char *out, size_t n)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    size_t k = 0;
    while (p < end && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' &&
           *p != ';' && k + 1 < n)
        out[k++] = *p++;
    out[k] = 0;
    return k > 0 ? 0 : -1;
}

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
    cookie_t *k = c;
    size_t done = 0;
    if (k->prepos < k->prelen) {
        done = k->prelen - k->prepos < n ? k->prelen - k->prepos : n;
        memcpy(buf, k->pre + k->prepos, done);
        k->prepos += done;
    }
    if (done < n && k->pos < k->len) {
        size_t m = k->len - k->pos < n - done ? k->len - k->pos : n - done;
        memcpy(buf + done, k->p + k->pos, m);
        k->pos += m;
        done += m;
    }
    return (ssize_t)done;
}

/* Seeking within the piece (offsets count the prefix too). */
static int cookie_seek(void *c, off64_t *off, int whence)
{
    cookie_t *k = c;
    off64_t cur = (off64_t)(k->prepos + k->pos), end = (off64_t)(k->prelen + k->len);
    off64_t to = whence == SEEK_SET ? *off : whence == SEEK_CUR ? cur + *off
                                                                 : end + *off;
    if (to < 0 || to > end)
        return -1;
    if ((size_t)to <= k->prelen) {
        k->prepos = (size_t)to;
        k->pos = 0;
    } else {
        k->prepos = k->prelen;
        k->pos = (size_t)to - k->prelen;
    }
    *off = to;
    return 0;
}

/* One piece of the file: where it starts, what it held once read. */
typedef struct {
    size_t off, len;  /* bytes of the file */
    int line;         /* newlines before it */
    char pre[2300];   /* "$ORIGIN ..\n$TTL ..\n" in force there */
    int prelines;
    int last;         /* the last piece of the file */
    struct gate_zone part;
    int err;
    gate_diag_t diag;
} piece_t;

/* Pieces published by the scanner, taken by the readers in any order. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    piece_t *pc;
    size_t cap, ready, next;
    int done;
    const char *map;
    size_t maplen;
} queue_t;

static int rec_less(const struct gate_zone *z, const gate_rec_t *a,
                    const gate_rec_t *b)
{
    return zone_rec_cmp(a, b, (void *)z) < 0;
}

/* Parse one piece into its own records; sort them (RFC 4034 6.1). */
static void piece_read(piece_t *pc, const char *map, const char *path,
                       const ldns_rdf *origin, memo_t *memo)
{
    cookie_t ck = {pc->pre, strlen(pc->pre), 0, map + pc->off, pc->len, 0,
                   pc->last};
    cookie_io_functions_t io = {.read = cookie_read, .seek = cookie_seek};
    pc->part.path = (char *)path;
    pc->part.origin = (ldns_rdf *)origin;
    FILE *fp = fopencookie(&ck, "r", io);
    if (!fp) {
        pc->err = -ENOMEM;
        return;
    }
    __fsetlocking(fp, FSETLOCKING_BYCALLER); /* one thread per FILE */
    src_t src = {path, 0};
    pc->err = read_stream(&pc->part, fp, &src, pc->line - pc->prelines,
                          pc->part.origin, 3600, &ck, memo, &pc->diag);
    fclose(fp);
    /* the text is read: drop its pages from this process (page cache
     * keeps them), so peak RSS does not hold the whole file */
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)(map + pc->off) + pg - 1) & ~(uintptr_t)(pg - 1);
    uintptr_t e = ((uintptr_t)(map + pc->off + pc->len)) & ~(uintptr_t)(pg - 1);
    if (e > a)
        madvise((void *)a, e - a, MADV_DONTNEED);
    struct gate_zone *p = &pc->part;
    int sorted = 1;
    for (size_t i = 1; i < p->nrecs && sorted; i++)
        sorted = rec_less(p, &p->recs[i - 1], &p->recs[i]);
    if (!sorted && !pc->err)
        zone_recs_sort(p);
}

/* One reader thread: pieces in turn, with one memo for all of them. */
static void *reader_loop(void *arg)
{
    queue_t *q = arg;
    memo_t memo = {0};
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->next >= q->ready && !q->done)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->next >= q->ready) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        piece_t *pc = &q->pc[q->next++];
        pthread_mutex_unlock(&q->mu);
        piece_read(pc, q->map, pc->part.path, pc->part.origin, &memo);
    }
    free(memo.tags);
    free(memo.ent);
    return NULL;
}

static void publish(queue_t *q, size_t end)
{
    pthread_mutex_lock(&q->mu);
    q->pc[q->ready].len = end - q->pc[q->ready].off;
    q->pc[q->ready].last = end == q->maplen;
    q->ready++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/*
 * The scanner: walk the text once, tracking parentheses, quotes, comments
 * and $ORIGIN/$TTL, and cut a piece about every chunk bytes at a line that
 * starts a record.  Each piece is handed to the readers as soon as it is
 * cut.  After a $INCLUDE, an unknown directive or a relative $ORIGIN the
 * rest of the file is one piece.
 */
static void scan(queue_t *q, size_t chunk, const char *path,
                 const ldns_rdf *zorigin)
{
    const char *b = q->map;
    size_t len = q->maplen;
    char origin[1100] = "", ttl[64] = "";
    int depth = 0, quote = 0, comment = 0, line = 0, stop = 0;
    piece_t *cur = &q->pc[0];
    memset(cur, 0, sizeof(*cur));
    cur->part.path = (char *)path;
    cur->part.origin = (ldns_rdf *)zorigin;
    /* bytes the state machine must look at; the rest is skipped fast */
    static const unsigned char hot[256] = {
        ['\n'] = 1, [';'] = 1, ['"'] = 1, ['\\'] = 1, ['('] = 1, [')'] = 1,
    };
    size_t i = 0;
    while (i < len && !stop) {
        int bol = i == 0 || b[i - 1] == '\n';
        char c = b[i];
        if (bol && !depth && !quote) {
            if (c == '$') {
                const char *e = b + len;
                if (len - i > 7 && !strncasecmp(b + i, "$ORIGIN", 7)) {
                    if (directive_arg(b + i + 7, e, origin, sizeof(origin)) ||
                        origin[strlen(origin) - 1] != '.')
                        stop = 1;
                } else if (len - i > 4 && !strncasecmp(b + i, "$TTL", 4)) {
                    if (directive_arg(b + i + 4, e, ttl, sizeof(ttl)))
                        stop = 1;
                } else {
                    stop = 1; /* $INCLUDE or unknown: one reader */
                }
            } else if (c != ' ' && c != '\t' && c != ';' && c != '\n' &&
                       c != '\r' && i >= cur->off + chunk &&
                       q->ready + 2 < q->cap) {
                publish(q, i);
                cur = &q->pc[q->ready];
                memset(cur, 0, sizeof(*cur));
                cur->part.path = (char *)path;
                cur->part.origin = (ldns_rdf *)zorigin;
                cur->off = i;
                cur->line = line;
                cur->prelines = !!origin[0] + !!ttl[0];
                snprintf(cur->pre, sizeof(cur->pre), "%s%s%s%s%s%s",
                         origin[0] ? "$ORIGIN " : "", origin,
                         origin[0] ? "\n" : "", ttl[0] ? "$TTL " : "", ttl,
                         ttl[0] ? "\n" : "");
            }
        }
        if (comment && c != '\n') {
            const char *nl = memchr(b + i, '\n', len - i);
            i = nl ? (size_t)(nl - b) : len;
            continue;
        }
        if (!hot[(unsigned char)c]) {
            i++;
            while (i < len && !hot[(unsigned char)b[i]])
                i++;
            continue;
        }
        if (c == '\n') {
            line++;
            comment = 0;
        } else if (quote) {
            if (c == '\\' && i + 1 < len && b[i + 1] != '\n')
                i++;
            else if (c == '"')
                quote = 0;
        } else if (c == '\\' && i + 1 < len && b[i + 1] != '\n') {
            i++;
        } else if (c == '"') {
            quote = 1;
        } else if (c == ';') {
            comment = 1;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && depth > 0) {
            depth--;
        }
        i++;
    }
    publish(q, len);
    pthread_mutex_lock(&q->mu);
    q->done = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* The pieces copied into the zone's arena and record array, each at an
 * offset fixed beforehand, by several threads; a piece's memory is freed
 * as soon as it is copied, so peak RSS is the zone plus a piece or two. */
typedef struct {
    struct gate_zone *z;
    piece_t *pc;
    size_t n, next;
    size_t *abase, *rbase;
} join_t;

static void *join_run(void *arg)
{
    join_t *j = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (i >= j->n)
            return NULL;
        struct gate_zone *p = &j->pc[i].part;
        size_t base = j->abase[i];
        gate_rec_t *out = j->z->recs + j->rbase[i];
        if (p->arena_len)
            memcpy(j->z->arena + base, p->arena, p->arena_len);
        for (size_t k = 0; k < p->nrecs; k++) {
            out[k] = p->recs[k];
            out[k].name += base;
            out[k].rdata += base;
        }
        free(p->arena);
        free(p->recs);
        p->arena = NULL;
        p->recs = NULL;
    }
}

/* Join the pieces' records into z, in file order, on nt threads. */
static int join_parts(struct gate_zone *z, piece_t *pc, size_t n, int nt)
{
    size_t alen = 0, nrec = 0;
    size_t *abase = malloc((n ? n : 1) * sizeof(*abase));
    size_t *rbase = malloc((n ? n : 1) * sizeof(*rbase));
    if (!abase || !rbase) {
        free(abase);
        free(rbase);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        abase[i] = alen;
        rbase[i] = nrec;
        alen += pc[i].part.arena_len;
        nrec += pc[i].part.nrecs;
    }
    z->arena = malloc(alen ? alen : 1);
    z->recs = malloc((nrec ? nrec : 1) * sizeof(*z->recs));
    if (!z->arena || !z->recs) {
        free(abase);
        free(rbase);
        return -ENOMEM;
    }
    z->arena_cap = alen ? alen : 1;
    z->recs_cap = nrec ? nrec : 1;
    join_t j = {z, pc, n, 0, abase, rbase};
    pthread_t tid[64];
    int running[64] = {0};
    for (int t = 0; t < nt - 1 && t < 64 && n > 1; t++)
        running[t] = pthread_create(&tid[t], NULL, join_run, &j) == 0;
    join_run(&j);
    for (int t = 0; t < 64; t++)
        if (running[t])
            pthread_join(tid[t], NULL);
    z->arena_len = alen;
    z->nrecs = nrec;
    z->sorted = 1;
    for (size_t i = 1; i < n && z->sorted; i++) {
        size_t first = rbase[i];
        if (first > 0 && first < nrec &&
            !rec_less(z, &z->recs[first - 1], &z->recs[first]))
            z->sorted = 0;
    }
    free(abase);
    free(rbase);
    return 0;
}

static int read_file(struct gate_zone *z, const char *path, int threads,
                     gate_diag_t *diag)
{
    int fd = open(path, O_RDONLY), err = 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        err = -errno;
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return err;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
                 S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
        return GATE_ERR_SYNTAX;
    }
    size_t len = (size_t)st.st_size;
    char *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        err = -errno;
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path, strerror(errno));
        return err;
    }
    madvise(map, len, MADV_SEQUENTIAL);
    int nt = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    /* pieces of 1-64 MiB, about 64 per reader, so a reader slowed by
     * other load leaves no long tail */
    size_t chunk = len / ((size_t)nt * 64);
    if (chunk < (1u << 20))
        chunk = 1u << 20;
    if (chunk > (64u << 20))
        chunk = 64u << 20;
    queue_t q = {.map = map, .maplen = len};
    q.cap = len / chunk + 4;
    q.pc = calloc(q.cap, sizeof(*q.pc));
    pthread_t tid[64];
    int running[64] = {0};
    if (!q.pc) {
        munmap(map, len);
        return -ENOMEM;
    }
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.cv, NULL);
    for (int i = 0; i < nt && len >= (1u << 20); i++)
        running[i] = pthread_create(&tid[i], NULL, reader_loop, &q) == 0;
    scan(&q, chunk, z->path, z->origin);
    reader_loop(&q); /* the scanner reads too once it is done */
    for (int i = 0; i < nt; i++)
        if (running[i])
            pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&q.mu);
    pthread_cond_destroy(&q.cv);
    size_t n = q.ready;
    for (size_t i = 0; i < n && !err; i++)
        if (q.pc[i].err < 0) {
            err = q.pc[i].err;
            *diag = q.pc[i].diag;
        }
    if (!err)
        err = join_parts(z, q.pc, n, nt);
    for (size_t i = 0; i < n; i++) {
        free(q.pc[i].part.arena);
        free(q.pc[i].part.recs);
    }
    free(q.pc);
    munmap(map, len);
    return err;
}

int gate_zone_load(struct gate_zone **out, const char *path,
                   const char *origin, int threads, gate_diag_t *diag)
{
    struct gate_zone *z = NULL;
    int err = 0;

    z = calloc(1, sizeof(*z));
    if (!z || !(z->path = strdup(path))) {
        err = -ENOMEM;
        goto out;
    }
    z->soa_rrset = z->dnskey_rrset = -1;
    if (ldns_str2rdf_dname(&z->origin, origin) != LDNS_STATUS_OK ||
        !ldns_dname_str_absolute(origin)) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "origin '%s' is not an absolute domain name", origin);
        err = GATE_ERR_USAGE;
        goto out;
    }
    ldns_dname2canonical(z->origin);
    gate_clock_t c;
    timing_start(&c);
    if ((err = read_file(z, path, threads, diag)) < 0)
        goto out;
    timing_stop(&z->timings, &c, "parse", z->nrecs);
    if ((err = zone_index(z, threads)) < 0) {
        if (err == GATE_ERR_ZONE)
            snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
                     z->nrecs ? "no SOA record at the origin"
                              : "no records");
        goto out;
    }
    *out = z;
    z = NULL;
out:
    if (err == -ENOMEM)
        snprintf(diag->msg, sizeof(diag->msg), "%s: out of memory", path);
    gate_zone_free(z);
    return err;
}

void gate_zone_free(struct gate_zone *z)
{
    if (!z)
        return;
    free(z->path);
    ldns_rdf_deep_free(z->origin);
    free(z->arena);
    free(z->recs);
    free(z->names);
    free(z->rrsets);
    free(z);
}

uint32_t gate_zone_serial(const struct gate_zone *z)
{
    return z->serial;
}

size_t gate_zone_records(const struct gate_zone *z)
{
    return z->nrecs;
}

/*
 * gate/load.c - read a zone file with libldns into compact records.
 *
 * Each RR is parsed by libldns: a simple one-line record (no parentheses,
 * comment, quote, escape, CR/FF/VT, not a directive) by
 * ldns_rr_new_frm_str on the line itself, anything else by
 * ldns_rr_new_frm_fp_l, the same text libldns's file reader would pass on,
 * with the same line counting (tests/gate/test_fastpath.sh compares both).
 * It is put in canonical form by ldns_rr2canonical (RFC 4034 6.2) when a
 * name holds an upper-case letter and copied as owner + rdata wire bytes
 * into one arena; the ldns_rr is freed at once.  Does not check DNSSEC;
 * rejects what is not a zone: syntax errors, classes other than IN,
 * records outside the origin.  Errors name FILE:LINE (invariant 5), the
 * included file's when the fault is in one.
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

static int arena_put(struct gate_zone *z, const void *p, size_t n,
                     uint64_t *off)
{
    if (z->arena_len + n > z->arena_cap) {
        size_t cap = z->arena_cap ? z->arena_cap : 1 << 20;
        while (cap < z->arena_len + n)
            cap *= 2;
        uint8_t *a = realloc(z->arena, cap);
        if (!a)
            return -ENOMEM;
        z->arena = a;
        z->arena_cap = cap;
    }
    memcpy(z->arena + z->arena_len, p, n);
    *off = z->arena_len;
    z->arena_len += n;
    return 0;
}

static int rec_push(struct gate_zone *z, const gate_rec_t *r)
{
    if (z->nrecs == z->recs_cap) {
        size_t cap = z->recs_cap ? z->recs_cap * 2 : 4096;
        gate_rec_t *n = realloc(z->recs, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        z->recs = n;
        z->recs_cap = cap;
    }
    z->recs[z->nrecs++] = *r;
    return 0;
}

/* Copy one canonicalised ldns_rr into the zone; *why set on bad input. */
/* 1 if a name (wire) holds an upper-case letter. */
static int dname_has_upper(const ldns_rdf *d)
{
    if (!d || ldns_rdf_get_type(d) != LDNS_RDF_TYPE_DNAME)
        return 0;
    const uint8_t *p = ldns_rdf_data(d);
    for (size_t i = 0; i < ldns_rdf_size(d); i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            return 1;
    return 0;
}

static int rr_store(struct gate_zone *z, ldns_rr *rr, ldns_buffer *buf,
                    int line, const char **why)
{
    /* ldns_rr2canonical only lower-cases names (RFC 4034 6.2 item 3): when
     * no name of the record holds an upper-case letter it changes nothing */
    int upper = dname_has_upper(ldns_rr_owner(rr));
    for (size_t i = 0; i < ldns_rr_rd_count(rr) && !upper; i++)
        upper = dname_has_upper(ldns_rr_rdf(rr, i));
    if (upper)
        ldns_rr2canonical(rr);
    const ldns_rdf *owner = ldns_rr_owner(rr);
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
        *why = "class is not IN";
        return GATE_ERR_SYNTAX;
    }
    /* both are canonical (lower case) wire names: the origin or below */
    if (!name_is_sub(ldns_rdf_data(owner), ldns_rdf_data(z->origin))) {
        *why = "owner is outside the zone's origin";
        return GATE_ERR_SYNTAX;
    }
    ldns_buffer_clear(buf);
    if (ldns_rr_rdata2buffer_wire(buf, rr) != LDNS_STATUS_OK ||
        ldns_buffer_position(buf) > 65535) {
        *why = "rdata cannot be encoded";
        return GATE_ERR_SYNTAX;
    }
    gate_rec_t r = {0};
    r.type = (uint16_t)ldns_rr_get_type(rr);
    r.ttl = ldns_rr_ttl(rr);
    r.line = (uint32_t)line;
    r.namelen = (uint8_t)ldns_rdf_size(owner);
    r.labels = (uint8_t)ldns_dname_label_count(owner);
    r.rdlen = (uint16_t)ldns_buffer_position(buf);
    int err;
    if (z->nrecs > 0) {
        const gate_rec_t *p = &z->recs[z->nrecs - 1];
        if (p->namelen == r.namelen &&
            memcmp(z->arena + p->name, ldns_rdf_data(owner), r.namelen) == 0)
            r.name = p->name;
        else if ((err = arena_put(z, ldns_rdf_data(owner), r.namelen,
                                  &r.name)) < 0)
            return err;
    } else if ((err = arena_put(z, ldns_rdf_data(owner), r.namelen,
                                &r.name)) < 0) {
        return err;
    }
    if ((err = arena_put(z, ldns_buffer_begin(buf), r.rdlen, &r.rdata)) < 0)
        return err;
    return rec_push(z, &r);
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

static int read_stream(struct gate_zone *z, FILE *fp, const src_t *src,
                       int line0, ldns_rdf *origin0, uint32_t ttl0,
                       const cookie_t *mem, gate_diag_t *diag);

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
    int err = read_stream(z, in, &sub, 0, o, ttl, NULL, diag);
    fclose(in);
    ldns_rdf_deep_free(o);
    return err;
#undef FAIL
}

/* Characters that make a line "not simple" (left to ldns's own reader). */
static int special(unsigned char c)
{
    return c == '(' || c == ')' || c == ';' || c == '"' || c == '\\' ||
           c == '\r' || c == '\f' || c == '\v' || c == 0;
}

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
 * The fast path for one "simple" line at b[0..n) (n: up to its newline):
 * no parentheses, comment, quote, escape or odd white space, not a
 * directive.  libldns's file reader would hand exactly this text, with
 * trailing blanks stripped (ldns_strip_ws), to ldns_rr_new_frm_str, so we
 * do that directly and skip its character-by-character FILE reading.
 * Returns 0 and *simple = 0 when the line is not simple.
 */
static ldns_status simple_line(const char *b, size_t n, char *linebuf,
                               uint32_t ttl, ldns_rdf *origin, ldns_rdf **prev,
                               ldns_rr **rr, int *simple)
{
    *simple = 0;
    if (n == 0 || n > LDNS_MAX_LINELEN || b[0] == '$')
        return LDNS_STATUS_OK;
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (special((unsigned char)b[i]))
            return LDNS_STATUS_OK;
    while (s < n && (b[s] == ' ' || b[s] == '\t'))
        s++;
    *simple = 1;
    if (s == n)
        return LDNS_STATUS_SYNTAX_EMPTY;
    size_t e = n;
    while (e > s + 2 && (b[e - 1] == ' ' || b[e - 1] == '\t'))
        e--;
    memcpy(linebuf, b, e);
    linebuf[e] = 0;
    return ldns_rr_new_frm_str(rr, linebuf, ttl, origin, prev);
}

static int read_stream(struct gate_zone *z, FILE *fp, const src_t *src,
                       int line0, ldns_rdf *origin0, uint32_t ttl0,
                       const cookie_t *mem, gate_diag_t *diag)
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
    if (!origin || !prev || !buf || (mem && !linebuf)) {
        err = -ENOMEM;
        goto out;
    }
    for (;;) {
        ldns_rr *rr = NULL;
        const char *why = NULL;
        ldns_status s;
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
            if (nl)
                s = simple_line(b, (size_t)(nl - b), linebuf, ttl, origin,
                                &prev, &rr, &simple);
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
            err = rr_store(z, rr, buf, line, &why);
            ldns_rr_free(rr);
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
                       const ldns_rdf *origin)
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
                          pc->part.origin, 3600, &ck, &pc->diag);
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

static void *reader_loop(void *arg)
{
    queue_t *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->next >= q->ready && !q->done)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->next >= q->ready) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        piece_t *pc = &q->pc[q->next++];
        pthread_mutex_unlock(&q->mu);
        piece_read(pc, q->map, pc->part.path, pc->part.origin);
    }
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

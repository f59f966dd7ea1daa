/*
 * gate/load.c - read a zone file with libldns into compact records.
 *
 * Each RR is parsed by ldns_rr_new_frm_fp_l, put in canonical form by
 * ldns_rr2canonical (RFC 4034 6.2) and copied as owner + rdata wire bytes
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
 * Parallel reading: the file is mapped and split at record boundaries (a
 * line that starts with an owner name, outside parentheses and quotes);
 * each piece is parsed by its own thread, preceded by the $ORIGIN and $TTL
 * in force at its start, and the pieces are joined in file order.  Files
 * with relative $ORIGIN or $INCLUDE are read by one thread.
 */
#include "gate/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
static int rr_store(struct gate_zone *z, ldns_rr *rr, ldns_buffer *buf,
                    int line, const char **why)
{
    ldns_rr2canonical(rr);
    const ldns_rdf *owner = ldns_rr_owner(rr);
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
        *why = "class is not IN";
        return GATE_ERR_SYNTAX;
    }
    if (!ldns_dname_is_subdomain(owner, z->origin) &&
        ldns_dname_compare(owner, z->origin) != 0) {
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

static int read_stream(struct gate_zone *z, FILE *fp, const src_t *src,
                       int line0, ldns_rdf *origin0, uint32_t ttl0,
                       gate_diag_t *diag);

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
    int err = read_stream(z, in, &sub, 0, o, ttl, diag);
    fclose(in);
    ldns_rdf_deep_free(o);
    return err;
#undef FAIL
}

static int read_stream(struct gate_zone *z, FILE *fp, const src_t *src,
                       int line0, ldns_rdf *origin0, uint32_t ttl0,
                       gate_diag_t *diag)
{
    uint32_t ttl = ttl0;
    ldns_rdf *origin = ldns_rdf_clone(origin0);
    ldns_rdf *prev = ldns_rdf_clone(origin0);
    ldns_buffer *buf = ldns_buffer_new(4096);
    int line = line0, err = 0;
    if (!origin || !prev || !buf) {
        err = -ENOMEM;
        goto out;
    }
    while (!feof(fp)) {
        ldns_rr *rr = NULL;
        const char *why = NULL;
        long at = ftell(fp);
        ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev,
                                             &line);
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
            break;
        case LDNS_STATUS_SYNTAX_INCLUDE: {
            char txt[4096];
            if (directive_text(fp, at, ftell(fp), txt, sizeof(txt)) < 0) {
                snprintf(diag->msg, sizeof(diag->msg),
                         "%s:%d: $INCLUDE cannot be read here", src->path,
                         line);
                err = GATE_ERR_SYNTAX;
                goto out;
            }
            if ((err = include_run(z, src, txt, line, origin, ttl, diag)) < 0)
                goto out;
            break;
        }
        default:
            if (feof(fp) && s == LDNS_STATUS_SYNTAX_ERR) /* trailing blank */
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
    return err;
}

static int read_all(struct gate_zone *z, FILE *fp, int line0,
                    gate_diag_t *diag)
{
    src_t src = {z->path, 0};
    return read_stream(z, fp, &src, line0, z->origin, 3600, diag);
}

typedef struct {
    size_t off;   /* byte offset of the piece */
    int line;     /* newlines before it */
    char pre[2300]; /* "$ORIGIN ..\n$TTL ..\n" in force there */
    int prelines;
} piece_t;

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

/*
 * Find up to n-1 split points near len*k/n.  Returns the number of pieces
 * (1 when the file must be read by one thread).
 */
static int split_points(const char *b, size_t len, int n, piece_t *pc)
{
    char origin[1100] = "", ttl[64] = "";
    int depth = 0, quote = 0, comment = 0, line = 0, np = 1;
    pc[0].off = 0;
    pc[0].line = 0;
    pc[0].pre[0] = 0;
    pc[0].prelines = 0;
    for (size_t i = 0; i < len && np < n; i++) {
        char c = b[i];
        int bol = i == 0 || b[i - 1] == '\n';
        if (bol && !depth && !quote) {
            if (c == '$') {
                const char *e = b + len;
                if (len - i > 7 && !strncasecmp(b + i, "$ORIGIN", 7)) {
                    if (directive_arg(b + i + 7, e, origin, sizeof(origin)) ||
                        origin[strlen(origin) - 1] != '.')
                        return 1;
                } else if (len - i > 4 && !strncasecmp(b + i, "$TTL", 4)) {
                    if (directive_arg(b + i + 4, e, ttl, sizeof(ttl)))
                        return 1;
                } else {
                    return 1; /* $INCLUDE or unknown: one reader */
                }
            } else if (c != ' ' && c != '\t' && c != ';' && c != '\n' &&
                       c != '\r' && i >= len / (size_t)n * (size_t)np) {
                piece_t *p = &pc[np++];
                p->off = i;
                p->line = line;
                p->prelines = !!origin[0] + !!ttl[0];
                snprintf(p->pre, sizeof(p->pre), "%s%s%s%s%s%s",
                         origin[0] ? "$ORIGIN " : "", origin,
                         origin[0] ? "\n" : "", ttl[0] ? "$TTL " : "", ttl,
                         ttl[0] ? "\n" : "");
            }
        }
        if (c == '\n') {
            line++;
            comment = 0;
        } else if (comment) {
            continue;
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
    }
    return np;
}

typedef struct {
    const char *pre;
    size_t prelen, prepos;
    const char *p;
    size_t len, pos;
} cookie_t;

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

typedef struct {
    struct gate_zone part;
    cookie_t ck;
    int line0;
    int err;
    gate_diag_t diag;
} reader_t;

static void *reader_run(void *arg)
{
    reader_t *r = arg;
    cookie_io_functions_t io = {.read = cookie_read, .seek = cookie_seek};
    FILE *fp = fopencookie(&r->ck, "r", io);
    if (!fp) {
        r->err = -ENOMEM;
        return NULL;
    }
    r->err = read_all(&r->part, fp, r->line0, &r->diag);
    fclose(fp);
    return NULL;
}

/* Join the pieces' records into z, in file order. */
static int join_parts(struct gate_zone *z, reader_t *rd, int n)
{
    size_t alen = 0, nrec = 0;
    for (int i = 0; i < n; i++) {
        alen += rd[i].part.arena_len;
        nrec += rd[i].part.nrecs;
    }
    z->arena = malloc(alen ? alen : 1);
    z->recs = malloc((nrec ? nrec : 1) * sizeof(*z->recs));
    if (!z->arena || !z->recs)
        return -ENOMEM;
    z->arena_cap = alen ? alen : 1;
    z->recs_cap = nrec ? nrec : 1;
    for (int i = 0; i < n; i++) {
        struct gate_zone *p = &rd[i].part;
        size_t base = z->arena_len;
        if (p->arena_len)
            memcpy(z->arena + base, p->arena, p->arena_len);
        z->arena_len += p->arena_len;
        for (size_t k = 0; k < p->nrecs; k++) {
            gate_rec_t r = p->recs[k];
            r.name += base;
            r.rdata += base;
            z->recs[z->nrecs++] = r;
        }
        free(p->arena);
        free(p->recs);
        p->arena = NULL;
        p->recs = NULL;
    }
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
    int n = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    if (len < (1u << 20))
        n = 1; /* small files: one reader */
    piece_t pc[16];
    n = split_points(map, len, n, pc);
    reader_t *rd = calloc((size_t)n, sizeof(*rd));
    pthread_t tid[16];
    int running[16] = {0};
    if (!rd) {
        munmap(map, len);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        rd[i].part.path = z->path;
        rd[i].part.origin = z->origin;
        rd[i].ck.pre = pc[i].pre;
        rd[i].ck.prelen = strlen(pc[i].pre);
        rd[i].ck.p = map + pc[i].off;
        rd[i].ck.len = (i + 1 < n ? pc[i + 1].off : len) - pc[i].off;
        rd[i].line0 = pc[i].line - pc[i].prelines;
        if (i > 0 && pthread_create(&tid[i], NULL, reader_run, &rd[i]) == 0)
            running[i] = 1;
        else if (i > 0)
            reader_run(&rd[i]);
    }
    reader_run(&rd[0]);
    for (int i = 0; i < n; i++)
        if (running[i])
            pthread_join(tid[i], NULL);
    for (int i = 0; i < n && !err; i++)
        if (rd[i].err < 0) {
            err = rd[i].err;
            *diag = rd[i].diag;
        }
    if (!err)
        err = join_parts(z, rd, n);
    for (int i = 0; i < n; i++) {
        free(rd[i].part.arena);
        free(rd[i].part.recs);
    }
    free(rd);
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

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

#include <libzscanner/scanner.h>

#include "signer/internal.h"

#define WARN_SHOWN 200

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

static const char *fname(const zs_scanner_t *s)
{
    return s->file.name ? s->file.name : "-";
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
    fail(c, fname(s), s->line_counter, "%s", zs_strerror(s->error.code));
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
    const char *file = fname(s);
    uint64_t line = s->line_counter;
    char tb[16];
    if (c->err) {
        s->state = ZS_STATE_STOP;
        return;
    }
    if (s->r_class != 1) {
        fail(c, file, line, "class %u is not IN", s->r_class);
        goto stop;
    }
    uint8_t owner[256];
    memcpy(owner, s->r_owner, s->r_owner_length);
    name_lower(owner);
    size_t ol = s->r_owner_length;
    if (ol < z->origin_len ||
        memcmp(owner + ol - z->origin_len, z->origin, z->origin_len) != 0 ||
        name_labels(owner) < z->origin_labels) {
        fail(c, file, line, "record outside the origin");
        goto stop;
    }
    if (c->mode == READ_UNSIGNED && is_dnssec(s->r_type)) {
        rwarn(c, "%s:%llu: %s record in the input dropped (the signer "
                 "makes its own)",
              file, (unsigned long long)line, type_name(s->r_type, tb));
        return;
    }
    if (s->r_type == T_SOA) {
        if (ol != z->origin_len) {
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
    int r = zone_add(z, owner, ol, s->r_type, s->r_ttl, rd,
                     (uint16_t)s->r_data_length,
                     line > UINT32_MAX ? UINT32_MAX : (uint32_t)line,
                     (uint8_t)fi, 0);
    if (r) {
        fail(c, file, line, "%s",
             r == -ENOMEM ? "out of memory" : "name too long");
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

static int check_zone(struct rctx *c)
{
    zone_t *z = c->z;
    size_t w = 0;
    const uint8_t *dname = NULL; /* owner key of the last DNAME seen */
    size_t dlen = 0;
    for (size_t i = 0; i < z->n && !c->err;) {
        size_t ne = zone_run_end(z, i, false);
        size_t start = w;
        for (size_t j = i; j < ne;) {
            size_t te = zone_run_end(z, j, true);
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
    z->n = w;
    return c->err;
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
    if (zs_parse_all(s) != 0 && !c.err)
        fail(&c, path, s->line_counter, "%s", zs_strerror(s->error.code));
    if (!c.err && c.soa == 0) {
        c.err = SIGNER_EINPUT;
        snprintf(diag->msg, sizeof(diag->msg),
                 "%s: no SOA record at the origin", path);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!c.err) {
        ret = zone_sort_index(z);
        clock_gettime(CLOCK_MONOTONIC, &t2);
        if (getenv("ZONESIGN_TRACE"))
            fprintf(stderr, "zonesign: trace: parse %.2f s, sort %.2f s\n",
                    (double)(t1.tv_sec - t0.tv_sec) +
                        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                    (double)(t2.tv_sec - t1.tv_sec) +
                        (double)(t2.tv_nsec - t1.tv_nsec) / 1e9);
        /* sequential arena for the checks and everything after them; the
         * few duplicates the checks drop stay in the arena unused */
        if (ret == 0)
            ret = zone_compact(z);
        if (ret == 0)
            check_zone(&c);
    }
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

/*
 * gate/history.c - the release history (DIR/history.jsonl, one JSON object
 * per released version) as the transition check reads it, and the line a
 * release appends.  A line holds: time, zone, serial, file, the DNSKEY
 * RRset (tag, algorithm, flags, TTL, rdata), the keys that signed the
 * DNSKEY RRset and the keys that signed the rest (with the number of
 * RRsets each signed), the largest TTLs, and the parent's DS set with its
 * TTL when --ds was given.  Lines of the first format (only "signed_by")
 * are read too: their signers count for both classes.
 *
 * Also gathers the keys a resolver may know without their being in the
 * candidate's DNSKEY RRset (history, --previous, --incoming-keys), for
 * RFC 6781 4.1.4 algorithm rollovers (rrsig.c prepub_verify).
 * A small JSON reader of its own: the gate links only ldns and libcrypto.
 */
#include "gate/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal JSON reader (objects, arrays, strings, integers) ---- */

typedef struct jv {
    enum { J_NULL, J_NUM, J_STR, J_ARR, J_OBJ, J_BOOL } t;
    long long num;
    char *str;
    struct jv *items; /* array items or object values */
    char **keys;      /* object keys */
    size_t n;
} jv_t;

static void jv_free(jv_t *v)
{
    if (!v)
        return;
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof(*v));
}

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *j_parse(const char *p, jv_t *v, int depth);

static const char *j_str(const char *p, char **out)
{
    size_t cap = 32, n = 0;
    char *s = malloc(cap);
    if (!s || *p != '"') {
        free(s);
        return NULL;
    }
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            if (*p == 'u') { /* only what the writer makes: \u00XX */
                if (!isxdigit((unsigned char)p[1]) || !p[2] || !p[3] ||
                    !p[4]) {
                    free(s);
                    return NULL;
                }
                char h[5] = {p[1], p[2], p[3], p[4], 0};
                c = (char)strtol(h, NULL, 16);
                p += 4;
            } else if (*p == 'n') {
                c = '\n';
            } else if (*p == 't') {
                c = '\t';
            } else if (*p) {
                c = *p;
            } else {
                break;
            }
        }
        if (n + 2 > cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        s[n++] = c;
    }
    if (*p != '"') {
        free(s);
        return NULL;
    }
    s[n] = 0;
    *out = s;
    return p + 1;
}

static int j_push(jv_t *v, char *key, const jv_t *item)
{
    jv_t *it = realloc(v->items, (v->n + 1) * sizeof(*it));
    if (!it)
        return -1;
    v->items = it;
    if (v->t == J_OBJ) {
        char **k = realloc(v->keys, (v->n + 1) * sizeof(*k));
        if (!k)
            return -1;
        v->keys = k;
        v->keys[v->n] = key;
    }
    v->items[v->n++] = *item;
    return 0;
}

static const char *j_list(const char *p, jv_t *v, int depth, int obj)
{
    char close = obj ? '}' : ']';
    v->t = obj ? J_OBJ : J_ARR;
    p = ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        char *key = NULL;
        jv_t item = {0};
        if (obj) {
            if (!(p = j_str(ws(p), &key)))
                return NULL;
            p = ws(p);
            if (*p != ':') {
                free(key);
                return NULL;
            }
            p++;
        }
        if (!(p = j_parse(p, &item, depth + 1)) || j_push(v, key, &item) < 0) {
            free(key);
            jv_free(&item);
            return NULL;
        }
        p = ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == close ? p + 1 : NULL;
    }
}

static const char *j_parse(const char *p, jv_t *v, int depth)
{
    memset(v, 0, sizeof(*v));
    if (depth > 16)
        return NULL;
    p = ws(p);
    if (*p == '{' || *p == '[')
        return j_list(p, v, depth, *p == '{');
    if (*p == '"') {
        v->t = J_STR;
        return j_str(p, &v->str);
    }
    if (*p == '-' || isdigit((unsigned char)*p)) {
        char *end;
        v->t = J_NUM;
        v->num = strtoll(p, &end, 10);
        while (*end == '.' || *end == 'e' || *end == 'E' || *end == '+' ||
               *end == '-' || isdigit((unsigned char)*end))
            end++;
        return end;
    }
    if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4)) {
        v->t = *p == 't' ? J_BOOL : J_NULL;
        v->num = *p == 't';
        return p + 4;
    }
    if (!strncmp(p, "false", 5)) {
        v->t = J_BOOL;
        return p + 5;
    }
    return NULL;
}

static const jv_t *j_get(const jv_t *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    return NULL;
}

static long long j_num(const jv_t *o, const char *key, long long dflt)
{
    const jv_t *v = j_get(o, key);
    return v && v->t == J_NUM ? v->num : dflt;
}

/* ---- history entries ---- */

void hist_entry_clear(hist_entry_t *e)
{
    for (size_t i = 0; i < e->nkeys; i++)
        free(e->keys[i].rdata);
    for (size_t i = 0; i < e->nds; i++)
        free(e->ds[i]);
    free(e->keys);
    free(e->dnskey_by);
    free(e->data_by);
    free(e->ds);
    free(e->dslen);
    memset(e, 0, sizeof(*e));
}

static int hex_decode(const char *h, uint8_t **out, uint16_t *len)
{
    size_t n = strlen(h);
    if (n % 2 || n / 2 > 65535)
        return -1;
    uint8_t *b = malloc(n / 2 ? n / 2 : 1);
    if (!b)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        char x[3] = {h[2 * i], h[2 * i + 1], 0};
        if (!isxdigit((unsigned char)x[0]) || !isxdigit((unsigned char)x[1])) {
            free(b);
            return -1;
        }
        b[i] = (uint8_t)strtol(x, NULL, 16);
    }
    *out = b;
    *len = (uint16_t)(n / 2);
    return 0;
}

static int signers_from(const jv_t *a, hist_signer_t **out, size_t *n)
{
    if (!a || a->t != J_ARR)
        return 0;
    *out = calloc(a->n ? a->n : 1, sizeof(**out));
    if (!*out)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        (*out)[i].tag = (uint16_t)j_num(&a->items[i], "keytag", 0);
        (*out)[i].alg = (uint8_t)j_num(&a->items[i], "algorithm", 0);
        (*out)[i].rrsets = (uint32_t)j_num(&a->items[i], "rrsets", 0);
    }
    *n = a->n;
    return 0;
}

/* One parsed line into e; -1 when the line is not a usable entry. */
static int entry_from(const jv_t *o, hist_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    const jv_t *keys = j_get(o, "dnskey"), *mt = j_get(o, "max_ttl");
    if (!j_get(o, "time") || !keys || keys->t != J_ARR)
        return -1;
    e->time = j_num(o, "time", 0);
    e->serial = (uint32_t)j_num(o, "serial", 0);
    e->keys = calloc(keys->n ? keys->n : 1, sizeof(*e->keys));
    if (!e->keys)
        return -1;
    for (size_t i = 0; i < keys->n; i++) {
        const jv_t *k = &keys->items[i], *h = j_get(k, "rdata_hex");
        hist_key_t *hk = &e->keys[e->nkeys];
        hk->tag = (uint16_t)j_num(k, "keytag", 0);
        hk->alg = (uint8_t)j_num(k, "algorithm", 0);
        hk->flags = (uint16_t)j_num(k, "flags", 0);
        hk->ttl = (uint32_t)j_num(k, "ttl", 0);
        if (h && h->t == J_STR && hex_decode(h->str, &hk->rdata, &hk->rdlen) < 0)
            return -1;
        e->nkeys++;
    }
    if (j_get(o, "signed_data_by")) {
        if (signers_from(j_get(o, "signed_data_by"), &e->data_by,
                         &e->ndata_by) < 0 ||
            signers_from(j_get(o, "signed_dnskey_by"), &e->dnskey_by,
                         &e->ndnskey_by) < 0)
            return -1;
    } else if (signers_from(j_get(o, "signed_by"), &e->data_by,
                            &e->ndata_by) < 0 ||
               signers_from(j_get(o, "signed_by"), &e->dnskey_by,
                            &e->ndnskey_by) < 0) {
        return -1;
    }
    e->data_rrsets = (uint32_t)j_num(o, "data_rrsets", 0);
    e->ttl_dnskey = (uint32_t)j_num(mt, "dnskey", 0);
    long long sg = j_num(mt, "signed", -1);
    if (sg < 0) { /* first format: the largest of what it recorded */
        sg = j_num(mt, "data", 0);
        if (j_num(mt, "rrsig", 0) > sg)
            sg = j_num(mt, "rrsig", 0);
        if (e->ttl_dnskey > sg)
            sg = e->ttl_dnskey;
    }
    e->ttl_signed = (uint32_t)sg;
    const jv_t *ds = j_get(o, "parent_ds"), *set = j_get(ds, "rdata_hex");
    if (set && set->t == J_ARR) {
        e->has_ds = 1;
        e->ds_ttl = (uint32_t)j_num(ds, "ttl", GATE_DS_TTL_DEFAULT);
        e->ds = calloc(set->n ? set->n : 1, sizeof(*e->ds));
        e->dslen = calloc(set->n ? set->n : 1, sizeof(*e->dslen));
        if (!e->ds || !e->dslen)
            return -1;
        for (size_t i = 0; i < set->n; i++) {
            if (set->items[i].t != J_STR ||
                hex_decode(set->items[i].str, &e->ds[e->nds],
                           &e->dslen[e->nds]) < 0)
                return -1;
            e->nds++;
        }
    }
    return 0;
}

static int hist_push(struct gate_result *r, hist_entry_t *e)
{
    hist_entry_t *n = realloc(r->hist, (r->nhist + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    r->hist = n;
    r->hist[r->nhist++] = *e;
    return 0;
}

/* What the last history line for the zone says was released. */
typedef struct {
    int lineno;      /* 0: no line for the zone */
    uint32_t serial;
    char file[1100]; /* "" when the line names none */
    char sha256[65]; /* "" when the line has none (before the digest) */
} last_release_t;

/* Records line lineno (object o) as the last release; GATE_ERR_SYNTAX with
 * diag when its "sha256" is not 64 hex digits. */
static int last_note(last_release_t *last, const jv_t *o, int lineno,
                     const char *path, gate_diag_t *diag)
{
    const jv_t *file = j_get(o, "file"), *sha = j_get(o, "sha256");
    memset(last, 0, sizeof(*last));
    last->lineno = lineno;
    last->serial = (uint32_t)j_num(o, "serial", 0);
    if (file && file->t == J_STR)
        snprintf(last->file, sizeof(last->file), "%s", file->str);
    if (!sha)
        return 0;
    /* The release places a file in DIR itself: a name with a slash, or a
     * dot name, was not written by a release and must not be opened. */
    if (!last->file[0] || strchr(last->file, '/') ||
        strcmp(last->file, ".") == 0 || strcmp(last->file, "..") == 0) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "%.400s:%d: file is not a plain file name in the release "
                 "directory", path, lineno);
        return GATE_ERR_SYNTAX;
    }
    size_t n = sha->t == J_STR ? strlen(sha->str) : 0;
    for (size_t i = 0; i < n && n == 64; i++)
        if (!isxdigit((unsigned char)sha->str[i]))
            n = 0;
    if (n != 64) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "%.400s:%d: sha256 is not 64 hex digits", path, lineno);
        return GATE_ERR_SYNTAX;
    }
    for (size_t i = 0; i < 64; i++)
        last->sha256[i] = (char)tolower((unsigned char)sha->str[i]);
    return 0;
}

/*
 * The file the last release of the zone placed in dir must still be the
 * one its history line recorded: the transition check judges the
 * candidate against that line and the drift check compares the server
 * with that file, so a file replaced or edited by hand would make both
 * judge against a zone nobody released.  Lines without a digest (written
 * before it was recorded) and histories without a line for the zone are
 * not checked.  GATE_ERR_ZONE with diag when the file differs or is gone.
 */
static int last_verify(const last_release_t *last, const char *dir,
                       const char *hist, gate_diag_t *diag)
{
    char path[4200], hex[65];
    if (!last->lineno || !last->sha256[0] || !last->file[0])
        return 0;
    snprintf(path, sizeof(path), "%s/%s", dir, last->file);
    int err = release_file_sha256(path, hex);
    if (err == 0 && strcmp(hex, last->sha256) == 0)
        return 0;
    const char *why = err == 0 ? "its SHA-256 differs, changed outside the gate"
                      : err < 0 && err > -4096 ? strerror(-err)
                                               : gate_strerror(err);
    snprintf(diag->msg, sizeof(diag->msg),
             "%.1200s is not the release recorded in %.1200s:%d (serial %u): "
             "%s; nothing released",
             path, hist, last->lineno, last->serial, why);
    return err == 0 || err == -ENOENT ? GATE_ERR_ZONE : err;
}

static int read_history(struct gate_result *r, const char *dir,
                        gate_diag_t *diag)
{
    char path[4200];
    last_release_t last = {0};
    snprintf(path, sizeof(path), "%s/history.jsonl", dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, err = 0;
    while (!err && (n = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        jv_t o;
        hist_entry_t e;
        if (n <= 1)
            continue;
        const char *end = j_parse(line, &o, 0);
        if (!end || o.t != J_OBJ) {
            snprintf(diag->msg, sizeof(diag->msg),
                     "%.400s:%d: not a history line (JSON object)", path,
                     lineno);
            err = GATE_ERR_SYNTAX;
        } else {
            const jv_t *zone = j_get(&o, "zone");
            /* one directory may hold several zones' releases */
            if (zone && zone->t == J_STR && strcmp(zone->str, r->zone_name)) {
                jv_free(&o);
                continue;
            }
            if (entry_from(&o, &e) < 0) {
                hist_entry_clear(&e);
                snprintf(diag->msg, sizeof(diag->msg),
                         "%.400s:%d: history line lacks time or DNSKEY RRset",
                         path, lineno);
                err = GATE_ERR_SYNTAX;
            } else if ((err = hist_push(r, &e)) < 0) {
                hist_entry_clear(&e);
            } else {
                err = last_note(&last, &o, lineno, path, diag);
            }
        }
        jv_free(&o);
    }
    free(line);
    fclose(fp);
    if (!err)
        err = last_verify(&last, dir, path, diag);
    return err;
}

/* ---- signers of a zone, from its RRSIGs ---- */

static int signers_push(hist_signer_t **v, size_t *n, uint16_t tag, uint8_t alg,
                      uint32_t rrset, uint32_t **last)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i].tag == tag && (*v)[i].alg == alg) {
            if ((*last)[i] != rrset) {
                (*v)[i].rrsets++;
                (*last)[i] = rrset;
            }
            return 0;
        }
    hist_signer_t *nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    uint32_t *nl = realloc(*last, (*n + 1) * sizeof(*nl));
    if (!nl)
        return -ENOMEM;
    *last = nl;
    nv[*n] = (hist_signer_t){tag, alg, 1};
    nl[*n] = rrset;
    (*n)++;
    return 0;
}

/*
 * Keys, signers and TTLs of zone z into e.  verified: per RRSIG of r
 * (status bits), or NULL to take every RRSIG over an authoritative RRset
 * as made (a zone released before).
 */
static int entry_of_zone(const struct gate_zone *z, const struct gate_result *r,
                         hist_entry_t *e)
{
    uint32_t *l1 = NULL, *l2 = NULL;
    int err = 0;
    if (z->dnskey_rrset >= 0) {
        const gate_rrset_t *s = &z->rrsets[z->dnskey_rrset];
        e->keys = calloc(s->count, sizeof(*e->keys));
        if (!e->keys)
            return -ENOMEM;
        for (uint32_t i = 0; i < s->count; i++) {
            const gate_rec_t *rec = &z->recs[s->first + i];
            const uint8_t *rd = rec_rdata(z, rec);
            if (rec->rdlen < 4)
                continue;
            hist_key_t *k = &e->keys[e->nkeys];
            k->flags = (uint16_t)(rd[0] << 8 | rd[1]);
            k->alg = rd[3];
            k->tag = ldns_calc_keytag_raw(rd, rec->rdlen);
            k->ttl = rec->ttl;
            if (!(k->rdata = malloc(rec->rdlen)))
                return -ENOMEM;
            memcpy(k->rdata, rd, rec->rdlen);
            k->rdlen = rec->rdlen;
            e->nkeys++;
            e->ttl_dnskey = rec->ttl;
        }
    }
    for (size_t s = 0; s < z->nrrsets; s++) {
        const gate_rrset_t *set = &z->rrsets[s];
        if (!set->auth)
            continue;
        if (set->type != LDNS_RR_TYPE_DNSKEY)
            e->data_rrsets++;
        if (z->recs[set->first].ttl > e->ttl_signed)
            e->ttl_signed = z->recs[set->first].ttl;
    }
    for (size_t s = 0; s < z->nrrsets && !err; s++) {
        const gate_rrset_t *set = &z->rrsets[s];
        if (set->type != LDNS_RR_TYPE_RRSIG)
            continue;
        for (uint32_t k = 0; k < set->count && !err; k++) {
            uint32_t ri = set->first + k;
            const gate_rec_t *rec = &z->recs[ri];
            const uint8_t *rd = rec_rdata(z, rec);
            if (rec->rdlen < 18)
                continue;
            uint16_t cov = (uint16_t)(rd[0] << 8 | rd[1]);
            int64_t t = zone_find_rrset(z, set->name, cov);
            if (t < 0 || !z->rrsets[t].auth)
                continue;
            if (r) { /* only what verified (sigs are in rrset order) */
                size_t lo = 0, hi = r->nsigs;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (r->sigs[mid] < ri)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (lo == r->nsigs || r->sigs[lo] != ri ||
                    !(r->sig_status[lo] & SIG_VERIFIED))
                    continue;
            }
            uint16_t tag = (uint16_t)(rd[16] << 8 | rd[17]);
            err = cov == LDNS_RR_TYPE_DNSKEY
                      ? signers_push(&e->dnskey_by, &e->ndnskey_by, tag, rd[2],
                                   (uint32_t)t, &l1)
                      : signers_push(&e->data_by, &e->ndata_by, tag, rd[2],
                                   (uint32_t)t, &l2);
        }
    }
    free(l1);
    free(l2);
    return err;
}

static int xkey_add(struct gate_result *r, const uint8_t *rd, size_t len)
{
    if (len < 4)
        return 0;
    uint16_t tag = ldns_calc_keytag_raw(rd, len);
    for (size_t i = 0; i < r->nxkeys; i++)
        if (r->xkeys[i].tag == tag && r->xkeys[i].alg == rd[3])
            return 0; /* tags collide rarely; one is enough here */
    gate_xkey_t *n = realloc(r->xkeys, (r->nxkeys + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    r->xkeys = n;
    gate_xkey_t *x = &r->xkeys[r->nxkeys];
    memset(x, 0, sizeof(*x));
    x->tag = tag;
    x->alg = rd[3];
    x->flags = (uint16_t)(rd[0] << 8 | rd[1]);
    if (crypto_alg_supported(x->alg))
        crypto_pkey_from_dnskey(&x->pkey, rd, len);
    r->nxkeys++;
    return 0;
}

static int incoming_load(struct gate_result *r, gate_diag_t *diag)
{
    ldns_rr_list *list = NULL;
    const char *path = r->opts->incoming_keys;
    int err = rrs_read_file(&list, path, r->zone->origin, diag);
    if (err < 0)
        return err;
    ldns_buffer *buf = ldns_buffer_new(1024);
    if (!buf) {
        ldns_rr_list_deep_free(list);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ldns_rr_list_rr_count(list) && !err; i++) {
        ldns_rr *rr = ldns_rr_list_rr(list, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DNSKEY ||
            ldns_dname_compare(ldns_rr_owner(rr), r->zone->origin) != 0) {
            snprintf(diag->msg, sizeof(diag->msg),
                     "%s: record %zu is not a DNSKEY of the zone", path, i + 1);
            err = GATE_ERR_SYNTAX;
            break;
        }
        ldns_buffer_clear(buf);
        if (ldns_rr_rdata2buffer_wire(buf, rr) == LDNS_STATUS_OK)
            err = xkey_add(r, ldns_buffer_begin(buf), ldns_buffer_position(buf));
    }
    ldns_buffer_free(buf);
    ldns_rr_list_deep_free(list);
    return err;
}

int history_release_check(struct gate_result *r, gate_diag_t *diag)
{
    const gate_opts_t *o = r->opts;
    int err = o->release_dir ? read_history(r, o->release_dir, diag) : 0;
    if (err < 0 && !diag->msg[0])
        snprintf(diag->msg, sizeof(diag->msg), "%s/history.jsonl: %s",
                 o->release_dir, gate_strerror(err));
    return err;
}

int history_load(struct gate_result *r, gate_diag_t *diag)
{
    const gate_opts_t *o = r->opts;
    int err = history_release_check(r, diag);
    if (err < 0)
        return err;
    if (o->previous_file) {
        struct gate_zone *p = NULL;
        hist_entry_t e = {0};
        if ((err = gate_zone_load(&p, o->previous_file, r->zone_name,
                                  o->threads, diag)) < 0)
            return err;
        e.time = o->previous_time;
        e.serial = p->serial;
        err = entry_of_zone(p, NULL, &e);
        gate_zone_free(p);
        if (err < 0 || (err = hist_push(r, &e)) < 0) {
            hist_entry_clear(&e);
            snprintf(diag->msg, sizeof(diag->msg), "out of memory");
            return err;
        }
    }
    for (size_t i = 0; i < r->nhist && !err; i++)
        for (size_t k = 0; k < r->hist[i].nkeys && !err; k++)
            err = xkey_add(r, r->hist[i].keys[k].rdata, r->hist[i].keys[k].rdlen);
    if (!err && o->incoming_keys)
        err = incoming_load(r, diag);
    if (err == -ENOMEM)
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
    return err;
}

/* The parent's DS set (--ds) and its TTL into e. */
static int entry_ds(struct gate_result *r, hist_entry_t *e, gate_diag_t *diag)
{
    ldns_rr_list *list = r->ds_list; /* as trust.c read it */
    int err = list ? 0
                   : rrs_read_file_ttl(&list, r->opts->ds_file,
                                       r->zone->origin, GATE_DS_TTL_DEFAULT,
                                       diag);
    if (err < 0)
        return err;
    size_t n = ldns_rr_list_rr_count(list);
    ldns_buffer *buf = ldns_buffer_new(256);
    e->ds = calloc(n ? n : 1, sizeof(*e->ds));
    e->dslen = calloc(n ? n : 1, sizeof(*e->dslen));
    if (!buf || !e->ds || !e->dslen)
        err = -ENOMEM;
    e->has_ds = 1;
    for (size_t i = 0; i < n && !err; i++) {
        ldns_rr *rr = ldns_rr_list_rr(list, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DS)
            continue;
        if (ldns_rr_ttl(rr) > e->ds_ttl)
            e->ds_ttl = ldns_rr_ttl(rr);
        ldns_buffer_clear(buf);
        if (ldns_rr_rdata2buffer_wire(buf, rr) != LDNS_STATUS_OK)
            continue;
        size_t len = ldns_buffer_position(buf);
        if (!(e->ds[e->nds] = malloc(len))) {
            err = -ENOMEM;
            break;
        }
        memcpy(e->ds[e->nds], ldns_buffer_begin(buf), len);
        e->dslen[e->nds++] = (uint16_t)len;
    }
    if (r->opts->ds_ttl >= 0)
        e->ds_ttl = (uint32_t)r->opts->ds_ttl;
    ldns_buffer_free(buf);
    if (list != r->ds_list)
        ldns_rr_list_deep_free(list);
    return err;
}

int hist_current(struct gate_result *r, gate_diag_t *diag)
{
    hist_entry_t *e = &r->cur;
    hist_entry_clear(e);
    e->time = r->opts->now;
    e->serial = r->zone->serial;
    int err = entry_of_zone(r->zone, r, e);
    if (!err && r->opts->ds_file)
        err = entry_ds(r, e, diag);
    if (err == -ENOMEM)
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
    r->have_cur = err == 0;
    return err;
}

void history_free(struct gate_result *r)
{
    for (size_t i = 0; i < r->nhist; i++)
        hist_entry_clear(&r->hist[i]);
    free(r->hist);
    r->hist = NULL;
    r->nhist = 0;
    hist_entry_clear(&r->cur);
    for (size_t i = 0; i < r->nxkeys; i++)
        EVP_PKEY_free(r->xkeys[i].pkey);
    free(r->xkeys);
    r->xkeys = NULL;
    r->nxkeys = 0;
}

/* ---- the line a release appends ---- */

static void signers_json(FILE *fp, const hist_signer_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%s{\"keytag\": %u, \"algorithm\": %u, \"rrsets\": %u}",
                i ? ", " : "", v[i].tag, v[i].alg, v[i].rrsets);
}

char *hist_line(const struct gate_result *r, int64_t now, const char *file,
                const char *sha256)
{
    const struct gate_zone *z = r->zone;
    const hist_entry_t *e = &r->cur;
    char *buf = NULL;
    size_t len = 0;
    if (!r->have_cur)
        return NULL;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp)
        return NULL;
    uint32_t max_rrsig = 0, max_data = 0, max_ds = 0;
    for (size_t i = 0; i < z->nrecs; i++) {
        const gate_rec_t *rec = &z->recs[i];
        uint32_t *m = rec->type == LDNS_RR_TYPE_RRSIG ? &max_rrsig
                      : rec->type == LDNS_RR_TYPE_DS  ? &max_ds
                      : rec->type == LDNS_RR_TYPE_DNSKEY ? NULL
                                                      : &max_data;
        if (m && rec->ttl > *m)
            *m = rec->ttl;
    }
    /* "sha256" is new in version 2 lines; readers take lines without it */
    fprintf(fp, "{\"time\": %lld, \"zone\": \"%s\", \"serial\": %u, "
                "\"file\": \"%s\", \"sha256\": \"%s\", \"version\": 2, "
                "\"dnskey\": [",
            (long long)now, r->zone_name, z->serial, file, sha256);
    for (size_t k = 0; k < e->nkeys; k++) {
        const hist_key_t *hk = &e->keys[k];
        fprintf(fp, "%s{\"keytag\": %u, \"algorithm\": %u, \"flags\": %u, "
                    "\"ttl\": %u, \"rdata_hex\": \"",
                k ? ", " : "", hk->tag, hk->alg, hk->flags, hk->ttl);
        for (uint16_t b = 0; b < hk->rdlen; b++)
            fprintf(fp, "%02x", hk->rdata[b]);
        fprintf(fp, "\"}");
    }
    /* "signed_by": every key that signed anything (first format) */
    fprintf(fp, "], \"signed_by\": [");
    int first = 1;
    for (size_t k = 0; k < r->nkstats; k++)
        if (r->kstats[k].ok) {
            fprintf(fp, "%s{\"keytag\": %u, \"algorithm\": %u}",
                    first ? "" : ", ", r->kstats[k].tag, r->kstats[k].alg);
            first = 0;
        }
    fprintf(fp, "], \"signed_dnskey_by\": [");
    signers_json(fp, e->dnskey_by, e->ndnskey_by);
    fprintf(fp, "], \"signed_data_by\": [");
    signers_json(fp, e->data_by, e->ndata_by);
    fprintf(fp, "], \"data_rrsets\": %u, \"max_ttl\": {\"dnskey\": %u, "
                "\"rrsig\": %u, \"ds\": %u, \"data\": %u, \"signed\": %u}",
            e->data_rrsets, e->ttl_dnskey, max_rrsig, max_ds, max_data,
            e->ttl_signed);
    if (e->has_ds) {
        fprintf(fp, ", \"parent_ds\": {\"ttl\": %u, \"rdata_hex\": [",
                e->ds_ttl);
        for (size_t i = 0; i < e->nds; i++) {
            fprintf(fp, "%s\"", i ? ", " : "");
            for (uint16_t b = 0; b < e->dslen[i]; b++)
                fprintf(fp, "%02x", e->ds[i][b]);
            fputc('"', fp);
        }
        fprintf(fp, "]}");
    }
    fprintf(fp, "}\n");
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

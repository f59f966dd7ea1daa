/*
 * gate/load.c - read a zone file with libldns into compact records.
 *
 * Each RR is parsed by ldns_rr_new_frm_fp_l, put in canonical form by
 * ldns_rr2canonical (RFC 4034 6.2) and copied as owner + rdata wire bytes
 * into one arena; the ldns_rr is freed at once.  Does not check DNSSEC;
 * rejects what is not a zone: syntax errors, $INCLUDE, classes other than
 * IN, records outside the origin.  Errors name FILE:LINE (invariant 5).
 */
#include "gate/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static int read_all(struct gate_zone *z, FILE *fp, gate_diag_t *diag)
{
    uint32_t ttl = 3600;
    ldns_rdf *origin = ldns_rdf_clone(z->origin);
    ldns_rdf *prev = ldns_rdf_clone(z->origin);
    ldns_buffer *buf = ldns_buffer_new(4096);
    int line = 0, err = 0;
    if (!origin || !prev || !buf) {
        err = -ENOMEM;
        goto out;
    }
    while (!feof(fp)) {
        ldns_rr *rr = NULL;
        const char *why = NULL;
        ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev,
                                             &line);
        switch (s) {
        case LDNS_STATUS_OK:
            err = rr_store(z, rr, buf, line, &why);
            ldns_rr_free(rr);
            if (err == GATE_ERR_SYNTAX) {
                snprintf(diag->msg, sizeof(diag->msg), "%s:%d: %s", z->path,
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
        case LDNS_STATUS_SYNTAX_INCLUDE:
            snprintf(diag->msg, sizeof(diag->msg),
                     "%s:%d: $INCLUDE is not supported", z->path, line);
            err = GATE_ERR_SYNTAX;
            goto out;
        default:
            if (feof(fp) && s == LDNS_STATUS_SYNTAX_ERR) /* trailing blank */
                break;
            snprintf(diag->msg, sizeof(diag->msg), "%s:%d: %s", z->path,
                     line, ldns_get_errorstr_by_id(s));
            err = GATE_ERR_SYNTAX;
            goto out;
        }
    }
    if (ferror(fp)) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: read error", z->path);
        err = -EIO;
    }
out:
    ldns_rdf_deep_free(origin);
    ldns_rdf_deep_free(prev);
    ldns_buffer_free(buf);
    return err;
}

int gate_zone_load(struct gate_zone **out, const char *path,
                   const char *origin, int threads, gate_diag_t *diag)
{
    struct gate_zone *z = NULL;
    FILE *fp = NULL;
    int err = 0;
    (void)threads;

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
    fp = fopen(path, "r");
    if (!fp) {
        err = -errno;
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
                 strerror(errno));
        goto out;
    }
    if ((err = read_all(z, fp, diag)) < 0)
        goto out;
    if ((err = zone_index(z)) < 0) {
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
    if (fp)
        fclose(fp);
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

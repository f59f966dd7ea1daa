/*
 * gate/zone.c - index a loaded zone: sort records in canonical order
 * (RFC 4034 6.1 names, 6.3 rdata), drop duplicate RRs (RFC 2181 5),
 * group RRsets and names, and mark the apex, delegation points and
 * occluded names (RFC 4035 2.2, RFC 6672 2.3 for DNAME).
 * Does not judge DNSSEC data.
 */
#include "gate/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t name_len(const uint8_t *n)
{
    size_t l = 0;
    while (n[l])
        l += n[l] + 1;
    return l + 1;
}

int name_labels(const uint8_t *n)
{
    int c = 0;
    for (size_t l = 0; n[l]; l += n[l] + 1)
        c++;
    return c;
}

static int label_offsets(const uint8_t *n, uint8_t *off)
{
    int c = 0;
    for (size_t l = 0; n[l] && c < 128; l += n[l] + 1)
        off[c++] = (uint8_t)l;
    return c;
}

int name_cmp(const uint8_t *a, const uint8_t *b)
{
    uint8_t oa[128], ob[128];
    int na = label_offsets(a, oa), nb = label_offsets(b, ob);
    while (na > 0 && nb > 0) {
        const uint8_t *la = a + oa[--na], *lb = b + ob[--nb];
        size_t m = la[0] < lb[0] ? la[0] : lb[0];
        int c = memcmp(la + 1, lb + 1, m);
        if (c)
            return c;
        if (la[0] != lb[0])
            return la[0] < lb[0] ? -1 : 1;
    }
    return na - nb;
}

int name_is_sub(const uint8_t *a, const uint8_t *b)
{
    size_t la = name_len(a), lb = name_len(b);
    if (la < lb)
        return 0;
    /* walk a's labels until the remaining suffix has b's length */
    size_t p = 0;
    while (la - p > lb)
        p += a[p] + 1;
    return la - p == lb && memcmp(a + p, b, lb) == 0;
}

int zone_rec_cmp(const void *pa, const void *pb, void *arg)
{
    const struct gate_zone *z = arg;
    const gate_rec_t *a = pa, *b = pb;
    int c;
    if (a->name != b->name) {
        c = name_cmp(z->arena + a->name, z->arena + b->name);
        if (c)
            return c;
    }
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    size_t m = a->rdlen < b->rdlen ? a->rdlen : b->rdlen;
    c = memcmp(z->arena + a->rdata, z->arena + b->rdata, m);
    if (c)
        return c;
    if (a->rdlen != b->rdlen)
        return a->rdlen < b->rdlen ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

void zone_recs_sort(struct gate_zone *z)
{
    qsort_r(z->recs, z->nrecs, sizeof(*z->recs), zone_rec_cmp, z);
}

static int same_name(const struct gate_zone *z, const gate_rec_t *a,
                     const gate_rec_t *b)
{
    return a->name == b->name ||
           (a->namelen == b->namelen &&
            memcmp(z->arena + a->name, z->arena + b->name, a->namelen) == 0);
}

static int same_rr(const struct gate_zone *z, const gate_rec_t *a,
                   const gate_rec_t *b)
{
    return a->type == b->type && a->rdlen == b->rdlen && same_name(z, a, b) &&
           memcmp(z->arena + a->rdata, z->arena + b->rdata, a->rdlen) == 0;
}

static int build_sets(struct gate_zone *z)
{
    size_t nn = 0, ns = 0;
    for (size_t i = 0; i < z->nrecs; i++) {
        if (i == 0 || !same_name(z, &z->recs[i], &z->recs[i - 1]))
            nn++;
        if (i == 0 || z->recs[i].type != z->recs[i - 1].type ||
            !same_name(z, &z->recs[i], &z->recs[i - 1]))
            ns++;
    }
    z->names = calloc(nn ? nn : 1, sizeof(*z->names));
    z->rrsets = calloc(ns ? ns : 1, sizeof(*z->rrsets));
    if (!z->names || !z->rrsets)
        return -ENOMEM;
    for (size_t i = 0; i < z->nrecs; i++) {
        int newname = i == 0 || !same_name(z, &z->recs[i], &z->recs[i - 1]);
        if (newname) {
            gate_name_t *n = &z->names[z->nnames++];
            n->first_rrset = (uint32_t)z->nrrsets;
            n->rec = (uint32_t)i;
        }
        if (newname || z->recs[i].type != z->recs[i - 1].type) {
            gate_rrset_t *s = &z->rrsets[z->nrrsets++];
            s->first = (uint32_t)i;
            s->name = (uint32_t)(z->nnames - 1);
            s->type = z->recs[i].type;
            z->names[z->nnames - 1].nrrsets++;
        }
        z->rrsets[z->nrrsets - 1].count++;
    }
    return 0;
}

/* Apex, cuts, occluded names; which RRsets must be signed. */
static void classify(struct gate_zone *z)
{
    const uint8_t *origin = ldns_rdf_data(z->origin);
    const uint8_t *cut = NULL;
    for (size_t i = 0; i < z->nnames; i++) {
        gate_name_t *n = &z->names[i];
        const uint8_t *w = rec_name(z, &z->recs[n->rec]);
        int has_ns = zone_find_rrset(z, i, LDNS_RR_TYPE_NS) >= 0;
        int has_dname = zone_find_rrset(z, i, LDNS_RR_TYPE_DNAME) >= 0;
        if (cut && name_is_sub(w, cut)) {
            n->flags |= GATE_N_OCCLUDED;
        } else {
            cut = NULL;
            if (name_cmp(w, origin) == 0)
                n->flags |= GATE_N_APEX;
            else if (has_ns)
                n->flags |= GATE_N_CUT;
            if (n->flags & GATE_N_CUT)
                cut = w;
            else if (has_dname)
                cut = w; /* below a DNAME is occluded, the owner is not */
        }
        int hashed = 1;
        for (uint32_t k = 0; k < n->nrrsets; k++) {
            gate_rrset_t *s = &z->rrsets[n->first_rrset + k];
            if (s->type != LDNS_RR_TYPE_NSEC3 && s->type != LDNS_RR_TYPE_RRSIG)
                hashed = 0;
            if (s->type == LDNS_RR_TYPE_RRSIG || (n->flags & GATE_N_OCCLUDED))
                s->auth = 0;
            else if (n->flags & GATE_N_CUT)
                s->auth = s->type == LDNS_RR_TYPE_DS ||
                          s->type == LDNS_RR_TYPE_NSEC;
            else
                s->auth = 1;
            if ((n->flags & GATE_N_APEX) && s->type == LDNS_RR_TYPE_SOA)
                z->soa_rrset = n->first_rrset + k;
            if ((n->flags & GATE_N_APEX) && s->type == LDNS_RR_TYPE_DNSKEY)
                z->dnskey_rrset = n->first_rrset + k;
        }
        if (hashed && !(n->flags & GATE_N_APEX))
            n->flags |= GATE_N_HASHED;
    }
}

int zone_index(struct gate_zone *z, int threads)
{
    gate_clock_t c;
    (void)threads;
    if (z->nrecs == 0)
        return GATE_ERR_ZONE;
    timing_start(&c);
    if (!z->sorted)
        zone_recs_sort(z);
    timing_stop(&z->timings, &c, "sort", z->nrecs);
    timing_start(&c);
    size_t w = 0;
    for (size_t i = 0; i < z->nrecs; i++) {
        if (w > 0 && same_rr(z, &z->recs[i], &z->recs[w - 1])) {
            z->duplicates++;
            continue;
        }
        z->recs[w++] = z->recs[i];
    }
    z->nrecs = w;
    int err = build_sets(z);
    if (err < 0)
        return err;
    classify(z);
    timing_stop(&z->timings, &c, "index", z->nrrsets);
    if (z->soa_rrset < 0)
        return GATE_ERR_ZONE;
    const gate_rrset_t *soa = &z->rrsets[z->soa_rrset];
    const gate_rec_t *r = &z->recs[soa->first];
    const uint8_t *rd = rec_rdata(z, r);
    size_t off = name_len(rd);
    off += name_len(rd + off);
    if (soa->count != 1 || off + 20 > r->rdlen)
        return GATE_ERR_ZONE;
    z->serial = (uint32_t)rd[off] << 24 | (uint32_t)rd[off + 1] << 16 |
                (uint32_t)rd[off + 2] << 8 | rd[off + 3];
    return 0;
}

int64_t zone_find_rrset(const struct gate_zone *z, size_t name, uint16_t type)
{
    const gate_name_t *n = &z->names[name];
    for (uint32_t k = 0; k < n->nrrsets; k++)
        if (z->rrsets[n->first_rrset + k].type == type)
            return n->first_rrset + k;
    return -1;
}

int64_t zone_find_name(const struct gate_zone *z, const uint8_t *wire)
{
    size_t lo = 0, hi = z->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(rec_name(z, &z->recs[z->names[mid].rec]), wire);
        if (c == 0)
            return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void zone_name_str(const uint8_t *wire, char *buf, size_t len)
{
    ldns_rdf *r = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, name_len(wire),
                                        wire);
    char *s = r ? ldns_rdf2str(r) : NULL;
    snprintf(buf, len, "%s", s ? s : "?");
    free(s);
    ldns_rdf_deep_free(r);
}

void zone_type_str(uint16_t type, char *buf, size_t len)
{
    char *s = ldns_rr_type2str((ldns_rr_type)type);
    snprintf(buf, len, "%s", s ? s : "?");
    free(s);
}

/* Growing the zone while it is read (load.c, drift.c). */
int zone_arena_put(struct gate_zone *z, const void *p, size_t n,
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

int zone_rec_push(struct gate_zone *z, const gate_rec_t *r)
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

/* 1 if a name (wire) holds an upper-case letter. */
int zone_dname_has_upper(const ldns_rdf *d)
{
    if (!d || ldns_rdf_get_type(d) != LDNS_RDF_TYPE_DNAME)
        return 0;
    const uint8_t *p = ldns_rdf_data(d);
    size_t n = ldns_rdf_size(d);
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            return 1;
    return 0;
}

/* RFC 4034 6.2 canonical form: ldns_rr2canonical only lower-cases names
 * (item 3), so it is skipped when no name of the record holds an
 * upper-case letter (most records of a zone or a transfer). */
void zone_rr_canonical(ldns_rr *rr)
{
    int upper = zone_dname_has_upper(ldns_rr_owner(rr));
    for (size_t i = 0; i < ldns_rr_rd_count(rr) && !upper; i++)
        upper = zone_dname_has_upper(ldns_rr_rdf(rr, i));
    if (upper)
        ldns_rr2canonical(rr);
}

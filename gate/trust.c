/*
 * gate/trust.c - chain of trust from the parent (RFC 4035 5.2, RFC 4509,
 * RFC 6605 for SHA-384): some DS (or DNSKEY trust anchor) must match a
 * published DNSKEY, and the apex DNSKEY RRset must carry a verifying,
 * currently valid RRSIG made by such a key.  Reads the DS/anchor file with
 * libldns; DS digests are computed with OpenSSL EVP.  A verifying RRSIG
 * outside its validity window still links the chain here: rrsig.c reports
 * the window under its own class, so one fault gives one class.  A DS for a key not
 * (yet) published is no fault (double-DS rollovers, RFC 6781 4.1.2).
 */
#include "gate/internal.h"

#include <errno.h>
#include <string.h>

int rrs_read_file(ldns_rr_list **out, const char *path, const ldns_rdf *origin,
                  gate_diag_t *diag)
{
    return rrs_read_file_ttl(out, path, origin, 3600, diag);
}

int rrs_read_file_ttl(ldns_rr_list **out, const char *path,
                      const ldns_rdf *origin, uint32_t dttl, gate_diag_t *diag)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        int e = errno;
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path, strerror(e));
        return -e;
    }
    uint32_t ttl = dttl;
    int line = 0, err = 0;
    ldns_rdf *org = ldns_rdf_clone(origin), *prev = ldns_rdf_clone(origin);
    ldns_rr_list *list = ldns_rr_list_new();
    while (!feof(fp) && err == 0) {
        ldns_rr *rr = NULL;
        ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &org, &prev, &line);
        if (s == LDNS_STATUS_OK) {
            ldns_rr2canonical(rr);
            ldns_rr_list_push_rr(list, rr);
        } else if (s != LDNS_STATUS_SYNTAX_EMPTY && s != LDNS_STATUS_SYNTAX_TTL &&
                   s != LDNS_STATUS_SYNTAX_ORIGIN &&
                   !(feof(fp) && s == LDNS_STATUS_SYNTAX_ERR)) {
            snprintf(diag->msg, sizeof(diag->msg), "%s:%d: %s", path, line,
                     ldns_get_errorstr_by_id(s));
            err = GATE_ERR_SYNTAX;
        }
    }
    fclose(fp);
    ldns_rdf_deep_free(org);
    ldns_rdf_deep_free(prev);
    if (err) {
        ldns_rr_list_deep_free(list);
        return err;
    }
    *out = list;
    return 0;
}

/* RFC 4034 5.1.4: digest = H(owner | DNSKEY rdata), for a key given by
 * its tag, algorithm and RDATA (a published key or one from the release
 * history). */
int trust_ds_matches_key(const ldns_rdf *origin, uint16_t tag, uint8_t alg,
                         const uint8_t *rdata, size_t rdlen,
                         const uint8_t *ds, size_t dslen, int *supported)
{
    const EVP_MD *md = NULL;
    if (dslen < 4)
        return 0;
    switch (ds[3]) {
    case 1: md = EVP_sha1(); break;
    case 2: md = EVP_sha256(); break;
    case 4: md = EVP_sha384(); break;
    default: return 0;
    }
    *supported = 1;
    if ((uint16_t)(ds[0] << 8 | ds[1]) != tag || ds[2] != alg)
        return 0;
    uint8_t dig[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
             EVP_DigestUpdate(ctx, ldns_rdf_data(origin),
                              ldns_rdf_size(origin)) == 1 &&
             EVP_DigestUpdate(ctx, rdata, rdlen) == 1 &&
             EVP_DigestFinal_ex(ctx, dig, &dlen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok && dslen - 4 == dlen && memcmp(ds + 4, dig, dlen) == 0;
}

int trust_ds_matches(const struct gate_zone *z, const gate_key_t *k,
                     const uint8_t *ds, size_t dslen, int *supported)
{
    const gate_rec_t *rec = &z->recs[k->rec];
    return trust_ds_matches_key(z->origin, k->tag, k->alg, rec_rdata(z, rec),
                                rec->rdlen, ds, dslen, supported);
}

/* Mark keys matching the DS set or anchor; returns number of usable RRs. */
static int mark_trusted(struct gate_result *r, ldns_rr_list *list,
                        gate_diag_t *diag)
{
    const struct gate_zone *z = r->zone;
    ldns_buffer *buf = ldns_buffer_new(1024);
    int usable = 0;
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < ldns_rr_list_rr_count(list); i++) {
        ldns_rr *rr = ldns_rr_list_rr(list, i);
        ldns_rr_type t = ldns_rr_get_type(rr);
        if (ldns_dname_compare(ldns_rr_owner(rr), z->origin) != 0 ||
            (t != LDNS_RR_TYPE_DS &&
             (t != LDNS_RR_TYPE_DNSKEY || !r->opts->anchor_file))) {
            char *o = ldns_rdf2str(ldns_rr_owner(rr));
            snprintf(diag->msg, sizeof(diag->msg),
                     "%s: record for %s is not a %s of the zone",
                     r->opts->ds_file ? r->opts->ds_file : r->opts->anchor_file,
                     o ? o : "?", r->opts->ds_file ? "DS" : "DS or DNSKEY");
            free(o);
            ldns_buffer_free(buf);
            return GATE_ERR_SYNTAX;
        }
        ldns_buffer_clear(buf);
        if (ldns_rr_rdata2buffer_wire(buf, rr) != LDNS_STATUS_OK)
            continue;
        const uint8_t *rd = ldns_buffer_begin(buf);
        size_t len = ldns_buffer_position(buf);
        for (size_t k = 0; k < r->nkeys; k++) {
            int sup = t == LDNS_RR_TYPE_DNSKEY;
            const gate_rec_t *kr = &z->recs[r->keys[k].rec];
            if (t == LDNS_RR_TYPE_DNSKEY
                    ? kr->rdlen == len && memcmp(rec_rdata(z, kr), rd, len) == 0
                    : trust_ds_matches(z, &r->keys[k], rd, len, &sup))
                r->keys[k].trusted = 1;
            usable |= sup;
        }
        if (t == LDNS_RR_TYPE_DNSKEY || (len >= 4 && (rd[3] == 1 ||
                                                      rd[3] == 2 || rd[3] == 4)))
            usable = 1;
    }
    ldns_buffer_free(buf);
    return usable;
}

int trust_check(struct gate_result *r, gate_diag_t *diag)
{
    const struct gate_zone *z = r->zone;
    const char *path = r->opts->ds_file ? r->opts->ds_file
                                        : r->opts->anchor_file;
    ldns_rr_list *list = NULL;
    /* --ds is kept for the transition check (history.c), read with the
     * DS TTL it assumes where a record has none */
    int err = r->opts->ds_file
                  ? rrs_read_file_ttl(&list, path, z->origin,
                                      GATE_DS_TTL_DEFAULT, diag)
                  : rrs_read_file(&list, path, z->origin, diag);
    if (err < 0)
        return err;
    if (ldns_rr_list_rr_count(list) == 0) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: no DS or DNSKEY records",
                 path);
        ldns_rr_list_deep_free(list);
        return GATE_ERR_SYNTAX;
    }
    int usable = mark_trusted(r, list, diag);
    if (r->opts->ds_file && !r->ds_list)
        r->ds_list = list;
    else
        ldns_rr_list_deep_free(list);
    if (usable < 0)
        return usable;
    const uint8_t *apex = ldns_rdf_data(z->origin);
    if (z->dnskey_rrset < 0) {
        result_add_owner(r, GATE_C_TRUST_ANCHOR, apex, LDNS_RR_TYPE_DNSKEY,
                         "no DNSKEY RRset at the apex");
        return 0;
    }
    if (!usable) {
        result_add(r, GATE_C_TRUST_ANCHOR, GATE_UNCHECKED,
                   z->rrsets[z->dnskey_rrset].first, LDNS_RR_TYPE_DNSKEY, 0,
                   0, "no DS with a supported digest type");
        return 0;
    }
    int trusted = 0;
    for (size_t k = 0; k < r->nkeys; k++)
        trusted |= r->keys[k].trusted;
    if (!trusted) {
        result_add(r, GATE_C_TRUST_ANCHOR, GATE_FAIL,
                   z->rrsets[z->dnskey_rrset].first, LDNS_RR_TYPE_DNSKEY, 0, 0,
                   "no published DNSKEY matches the DS set or trust anchor");
        return 0;
    }
    for (size_t i = 0; i < r->nsigs; i++) {
        uint16_t st = r->sig_status[i];
        if (r->sig_rrset[i] == (uint32_t)z->dnskey_rrset &&
            (st & SIG_VERIFIED) && r->sig_key[i] >= 0 && r->keys[r->sig_key[i]].trusted)
            return 0;
    }
    result_add(r, GATE_C_TRUST_ANCHOR, GATE_FAIL,
               z->rrsets[z->dnskey_rrset].first, LDNS_RR_TYPE_DNSKEY, 0, 0,
               "DNSKEY RRset has no verifying RRSIG by a key matching the DS set");
    return 0;
}

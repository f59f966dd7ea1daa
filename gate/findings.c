/*
 * gate/findings.c - problem classes, their RFC 8914 EDE codes, and the
 * list of findings of one run.  Does not decide anything itself.
 */
#include "gate/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int ede;
} classes[GATE_C_COUNT] = {
    [GATE_C_BOGUS_SIGNATURE] = {"bogus-signature", 6},       /* DNSSEC Bogus */
    [GATE_C_UNKNOWN_KEY] = {"unknown-key", 9},               /* DNSKEY Missing */
    [GATE_C_MISSING_SIGNATURE] = {"missing-signature", 10},  /* RRSIGs Missing */
    [GATE_C_EXPIRED_SIGNATURE] = {"expired-signature", 7},   /* Sig Expired */
    [GATE_C_NOT_YET_VALID_SIGNATURE] = {"not-yet-valid-signature", 8},
    [GATE_C_LOW_VALIDITY] = {"low-validity", 0},             /* Other: policy */
    [GATE_C_RRSIG_FIELD] = {"rrsig-field", 6},
    [GATE_C_TRUST_ANCHOR] = {"trust-anchor", 9},
    [GATE_C_ALGORITHM_COVERAGE] = {"algorithm-coverage", 10},
    [GATE_C_SIGNED_NON_AUTHORITATIVE] = {"signed-non-authoritative", 0},
    [GATE_C_NSEC3_CHAIN] = {"nsec3-chain", 12},              /* NSEC Missing */
    [GATE_C_NSEC3_BITMAP] = {"nsec3-bitmap", 6},
    [GATE_C_NSEC3_PARAM] = {"nsec3-param", 27},  /* Unsupp. NSEC3 Iterations */
    [GATE_C_NSEC_CHAIN] = {"nsec-chain", 12},
    [GATE_C_CONTENT_MISMATCH] = {"content-mismatch", 0},
    [GATE_C_UNSAFE_TRANSITION] = {"unsafe-transition", 6},
    [GATE_C_ZONEMD] = {"zonemd", 0},
    [GATE_C_DRIFT] = {"drift", 0},
    [GATE_C_UNSUPPORTED_ALGORITHM] = {"unsupported-algorithm", 1},
};

const char *gate_class_name(gate_class_t c)
{
    return c < GATE_C_COUNT ? classes[c].name : "?";
}

int gate_class_ede(gate_class_t c)
{
    return c < GATE_C_COUNT ? classes[c].ede : 0;
}

const char *gate_strerror(int err)
{
    switch (err) {
    case GATE_OK: return "success";
    case GATE_ERR_SYNTAX: return "malformed input";
    case GATE_ERR_ZONE: return "not a usable zone";
    case GATE_ERR_USAGE: return "bad option value";
    case GATE_ERR_CRYPTO: return "cryptographic library failure";
    case GATE_ERR_HOOK: return "--on-fail command could not be run";
    case GATE_ERR_NETWORK: return "cannot connect to the server";
    default: return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
    }
}

static gate_finding_t *slot(struct gate_result *r)
{
    if (r->nf == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        gate_finding_t *n = realloc(r->f, cap * sizeof(*n));
        if (!n) {
            r->oom = 1;
            return NULL;
        }
        r->f = n;
        r->cap = cap;
    }
    gate_finding_t *f = &r->f[r->nf++];
    memset(f, 0, sizeof(*f));
    return f;
}

void result_add(struct gate_result *r, gate_class_t cls, gate_verdict_t v,
                int64_t rec, uint16_t type, uint16_t tag, uint8_t alg,
                const char *reason)
{
    r->class_count[cls]++;
    gate_finding_t *f = slot(r);
    if (!f)
        return;
    f->cls = (uint8_t)cls;
    f->verdict = (uint8_t)v;
    f->rec = rec;
    f->type = type;
    f->keytag = tag;
    f->alg = alg;
    f->reason = reason;
}

void result_add_owner(struct gate_result *r, gate_class_t cls,
                      const uint8_t *owner, uint16_t type, const char *reason)
{
    result_add(r, cls, GATE_FAIL, -1, type, 0, 0, reason);
    if (r->nf == 0 || r->f[r->nf - 1].cls != cls || !owner)
        return;
    char buf[1100];
    zone_name_str(owner, buf, sizeof(buf));
    r->f[r->nf - 1].owner = strdup(buf);
}

void result_add_msg(struct gate_result *r, gate_class_t cls, uint16_t type,
                    uint16_t tag, uint8_t alg, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    result_add(r, cls, GATE_FAIL, -1, type, tag, alg, "see message");
    if (r->nf == 0 || r->f[r->nf - 1].cls != cls)
        return;
    r->f[r->nf - 1].msg = strdup(buf);
    if (!r->f[r->nf - 1].msg)
        r->oom = 1;
}

void result_add_owner_msg(struct gate_result *r, gate_class_t cls,
                          const uint8_t *owner, uint16_t type,
                          const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    size_t nf = r->nf;
    result_add_msg(r, cls, type, 0, 0, "%s", buf);
    if (r->nf == nf || !owner) /* not stored (out of memory) */
        return;
    char name[1100];
    zone_name_str(owner, name, sizeof(name));
    if (!(r->f[r->nf - 1].owner = strdup(name)))
        r->oom = 1;
}

gate_verdict_t gate_result_verdict(const struct gate_result *r)
{
    if (r->oom)
        return GATE_UNCHECKED;
    gate_verdict_t v = GATE_PASS;
    for (size_t i = 0; i < r->nf; i++) {
        if (r->f[i].verdict == GATE_FAIL)
            return GATE_FAIL;
        if (r->f[i].verdict == GATE_UNCHECKED)
            v = GATE_UNCHECKED;
    }
    for (int c = 0; c < GATE_C_COUNT; c++)
        if (r->class_count[c] && v == GATE_PASS)
            v = GATE_FAIL; /* a finding we could not store */
    return v;
}

void gate_result_free(struct gate_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nf; i++) {
        free(r->f[i].owner);
        free(r->f[i].msg);
    }
    history_free(r);
    drift_free(r);
    ldns_rr_list_deep_free(r->ds_list);
    free(r->f);
    keys_free(r);
    free(r->kstats);
    free(r->sigs);
    free(r->sig_rrset);
    free(r->sig_status);
    free(r->sig_key);
    free(r->zone_name);
    free(r);
}

/*
 * gate/report.c - what an operator reads first: the verdict line with
 * counts, one line per problem class with its RFC 8914 EDE code, the
 * signatures grouped by key tag and algorithm, then examples; and the
 * same as one JSON object (CLI.md), written atomically.  With --served,
 * a line (and a "drift" object) says what the drift check compared.
 */
#include "gate/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void owner_of(const struct gate_result *r, const gate_finding_t *f,
                     char *buf, size_t len)
{
    if (f->rec >= 0)
        zone_name_str(rec_name(r->zone, &r->zone->recs[f->rec]), buf, len);
    else
        snprintf(buf, len, "%s", f->owner ? f->owner : r->zone_name);
}

static size_t problems(const struct gate_result *r)
{
    size_t n = 0;
    for (int c = 0; c < GATE_C_COUNT; c++)
        n += r->class_count[c];
    return n;
}

/* The first line of the drift check alone: no signatures were checked. */
static void first_line_drift(const struct gate_result *r, FILE *fp,
                             gate_verdict_t v)
{
    const struct gate_zone *z = r->zone;
    fprintf(fp,
            "zonegate: %s %s serial %u: %zu records, %zu RRsets, served by "
            "%s: %s the last release, %zu problems%s\n",
            v == GATE_PASS ? "PASS" : "FAIL", r->zone_name, z->serial,
            z->nrecs, z->nrrsets, r->drift->server,
            v == GATE_PASS ? "same as" : "drift from", problems(r),
            v == GATE_UNCHECKED ? " (some checks could not be decided)" : "");
}

/* What the drift check compared (or why it did not). */
static void drift_line(const gate_drift_t *d, FILE *fp)
{
    if (d->note[0]) {
        fprintf(fp, "served by %s: drift %s\n", d->server, d->note);
        return;
    }
    if (!d->compared) {
        fprintf(fp, "served by %s: zone transfer failed; last release %s: "
                    "serial %u, %zu records\n",
                d->server, d->release, d->released_serial, d->released_recs);
        return;
    }
    fprintf(fp, "served by %s: serial %u, %zu records; last release %s: "
                "serial %u, %zu records; %zu differences",
            d->server, d->served_serial, d->served_recs, d->release,
            d->released_serial, d->released_recs, d->differences);
    if (d->unlisted)
        fprintf(fp, " (%zu counted, not listed)", d->unlisted);
    fputc('\n', fp);
}

int gate_report_text(const struct gate_result *r, FILE *fp, int examples)
{
    const struct gate_zone *z = r->zone;
    gate_verdict_t v = gate_result_verdict(r);
    if (r->drift && r->drift->alone)
        first_line_drift(r, fp, v);
    else
        fprintf(fp,
                "zonegate: %s %s serial %u: %zu records, %zu RRsets, "
                "%llu signatures checked, %llu verify, %zu problems%s\n",
                v == GATE_PASS ? "PASS" : "FAIL", r->zone_name, z->serial,
                z->nrecs, z->nrrsets, (unsigned long long)r->sigs_checked,
                (unsigned long long)r->sigs_verified, problems(r),
                v == GATE_UNCHECKED ? " (some checks could not be decided)"
                                    : "");
    for (int c = 0; c < GATE_C_COUNT; c++)
        if (r->class_count[c])
            fprintf(fp, "problem %s: %zu (EDE %d)\n",
                    gate_class_name((gate_class_t)c), r->class_count[c],
                    gate_class_ede((gate_class_t)c));
    if (r->drift)
        drift_line(r->drift, fp);
    /* keys with the most failing signatures first */
    size_t *order = malloc((r->nkstats ? r->nkstats : 1) * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (size_t k = 0; k < r->nkstats; k++) {
        size_t j = k;
        while (j > 0 && r->kstats[order[j - 1]].bad < r->kstats[k].bad) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    for (size_t k = 0; k < r->nkstats; k++) {
        const gate_keystat_t *s = &r->kstats[order[k]];
        uint64_t all = s->ok + s->bad;
        fprintf(fp,
                "key %u alg %u%s: %llu signatures verify, %llu do not "
                "(%llu%% of this key's signatures)\n",
                s->tag, s->alg, s->published ? "" : " (not published)",
                (unsigned long long)s->ok, (unsigned long long)s->bad,
                (unsigned long long)(all ? (s->bad * 100 + all / 2) / all : 0));
    }
    free(order);
    for (int c = 0; c < GATE_C_COUNT; c++) {
        int shown = 0;
        for (size_t i = 0; i < r->nf && shown < examples; i++) {
            const gate_finding_t *f = &r->f[i];
            if (f->cls != c)
                continue;
            char owner[1100], type[32];
            owner_of(r, f, owner, sizeof(owner));
            zone_type_str(f->type, type, sizeof(type));
            fprintf(fp, "  %s: %s %s key %u alg %u: %s\n",
                    gate_class_name((gate_class_t)c), owner, type, f->keytag,
                    f->alg, f->msg ? f->msg : f->reason);
            shown++;
        }
    }
    return ferror(fp) ? -EIO : 0;
}

static void json_str(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(fp, "\\u%04x", c);
        else
            fputc(c, fp);
    }
    fputc('"', fp);
}

/* "drift": what was compared; served_* null when nothing was received. */
static void json_drift(const gate_drift_t *d, FILE *fp)
{
    fprintf(fp, "\"drift\": {\"server\": ");
    json_str(fp, d->server);
    fprintf(fp, ", \"release\": ");
    json_str(fp, d->release);
    fprintf(fp, ", \"checked\": %s, \"note\": ", d->note[0] ? "false" : "true");
    json_str(fp, d->note);
    if (d->compared)
        fprintf(fp, ", \"served_serial\": %u, \"served_records\": %zu",
                d->served_serial, d->served_recs);
    else
        fprintf(fp, ", \"served_serial\": null, \"served_records\": null");
    if (d->note[0])
        fprintf(fp, ", \"released_serial\": null, \"released_records\": null");
    else
        fprintf(fp, ", \"released_serial\": %u, \"released_records\": %zu",
                d->released_serial, d->released_recs);
    fprintf(fp, ", \"differences\": %zu, \"unlisted\": %zu}, ",
            d->differences, d->unlisted);
}

static void json_body(const struct gate_result *r, FILE *fp)
{
    const struct gate_zone *z = r->zone;
    gate_verdict_t v = gate_result_verdict(r);
    fprintf(fp, "{\"verdict\": \"%s\", \"unchecked\": %s, \"zone\": ",
            v == GATE_PASS ? "pass" : "fail",
            v == GATE_UNCHECKED ? "true" : "false");
    json_str(fp, r->zone_name);
    fprintf(fp,
            ", \"serial\": %u, \"counts\": {\"records\": %zu, \"rrsets\": "
            "%zu, \"signatures\": %llu, \"signatures_verified\": %llu, "
            "\"rrsets_checked\": %llu, \"problems\": %zu, \"classes\": {",
            z->serial, z->nrecs, z->nrrsets,
            (unsigned long long)r->sigs_checked,
            (unsigned long long)r->sigs_verified,
            (unsigned long long)r->rrsets_checked, problems(r));
    int first = 1;
    for (int c = 0; c < GATE_C_COUNT; c++)
        if (r->class_count[c]) {
            fprintf(fp, "%s\"%s\": %zu", first ? "" : ", ",
                    gate_class_name((gate_class_t)c), r->class_count[c]);
            first = 0;
        }
    fprintf(fp, "}}, \"keys\": [");
    for (size_t k = 0; k < r->nkstats; k++)
        fprintf(fp,
                "%s{\"keytag\": %u, \"algorithm\": %u, \"published\": %s, "
                "\"verify\": %llu, \"fail\": %llu}",
                k ? ", " : "", r->kstats[k].tag, r->kstats[k].alg,
                r->kstats[k].published ? "true" : "false",
                (unsigned long long)r->kstats[k].ok,
                (unsigned long long)r->kstats[k].bad);
    fprintf(fp, "], ");
    if (r->drift)
        json_drift(r->drift, fp);
    fprintf(fp, "\"problems\": [");
    for (size_t i = 0; i < r->nf; i++) {
        const gate_finding_t *f = &r->f[i];
        char owner[1100], type[32];
        owner_of(r, f, owner, sizeof(owner));
        zone_type_str(f->type, type, sizeof(type));
        fprintf(fp, "%s\n  {\"class\": \"%s\", \"ede\": %d, \"verdict\": \"%s\", "
                    "\"owner\": ",
                i ? "," : "", gate_class_name((gate_class_t)f->cls),
                gate_class_ede((gate_class_t)f->cls),
                f->verdict == GATE_UNCHECKED ? "unchecked" : "fail");
        json_str(fp, owner);
        fprintf(fp, ", \"type\": ");
        json_str(fp, type);
        fprintf(fp, ", \"keytag\": %u, \"algorithm\": %u, \"message\": ",
                f->keytag, f->alg);
        json_str(fp, f->msg ? f->msg : f->reason);
        fputc('}', fp);
    }
    fprintf(fp, "]}\n");
}

int gate_report_json(const struct gate_result *r, const char *path,
                     gate_diag_t *diag)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp)
        return -ENOMEM;
    json_body(r, fp);
    if (fclose(fp) != 0) {
        free(buf);
        return -ENOMEM;
    }
    int err = atomic_write(path, buf, len, diag);
    free(buf);
    return err;
}

/*
 * gate/check.c - one gate run: the checks in order (earlier releases,
 * keys, every RRSIG, chain of trust, coverage, denial, ZONEMD, content,
 * transition, then drift: what a server serves against the last release,
 * which the transition check took as what resolvers hold).  Each
 * check lives in its own file; this one only sequences them.
 */
#include "gate/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gate_check_run(struct gate_result **out, const struct gate_zone *z,
                   const gate_opts_t *o, gate_diag_t *diag)
{
    struct gate_result *r = calloc(1, sizeof(*r));
    int err;
    char name[1100];
    if (!r)
        return -ENOMEM;
    r->zone = z;
    r->opts = o;
    zone_name_str(ldns_rdf_data(z->origin), name, sizeof(name));
    if (!(r->zone_name = strdup(name))) {
        err = -ENOMEM;
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
        goto fail;
    }
    gate_clock_t c;
    timing_start(&c);
    /* earlier releases first: their keys may verify RFC 6781 4.1.4 RRSIGs */
    if ((err = history_load(r, diag)) < 0)
        goto fail;
    timing_stop(&r->timings, &c, "history", 0);
    if ((err = keys_load(r)) < 0 || (err = rrsig_check_all(r)) < 0) {
        err = -ENOMEM;
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
        goto fail;
    }
    timing_start(&c);
    if ((o->ds_file || o->anchor_file) && (err = trust_check(r, diag)) < 0)
        goto fail;
    timing_stop(&r->timings, &c, "trust", 0);
    timing_start(&c);
    coverage_check(r);
    timing_stop(&r->timings, &c, "coverage", r->rrsets_checked);
    timing_start(&c);
    denial_check(r);
    timing_stop(&r->timings, &c, "denial", 0);
    timing_start(&c);
    zonemd_check(r);
    if (o->unsigned_file && (err = content_check(r, diag)) < 0)
        goto fail;
    if ((err = hist_current(r, diag)) < 0)
        goto fail;
    if ((o->previous_file || o->release_dir) &&
        (err = transition_check(r, diag)) < 0)
        goto fail;
    timing_stop(&r->timings, &c, "rest", 0);
    if (o->served && (err = drift_check(r, diag)) < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    gate_result_free(r);
    return err;
}

/*
 * gate/drift.c - the drift check (CLI.md class `drift`): does the zone a
 * name server serves equal the last release, DIR/<zone>.zone (release.c)?
 *
 * The served zone is transferred by AXFR over TCP (RFC 5936 2.2, 4.1)
 * with libldns (ldns_tcp_connect2, ldns_tcp_send_query, ldns_wire2pkt for
 * each message).  Each wait (for the connection, for more data) is bounded
 * by --served-timeout, so a dead or mute server cannot hang the gate, and
 * the whole transfer by --served-limit, so neither can one that keeps
 * sending a byte now and then.  Messages are read here with poll(2)
 * against both bounds: ldns_tcp_read_wire_timeout restarts its timeout at
 * every read, so a slow server could stretch one message for hours.  The
 * records are put in canonical form (ldns_rr2canonical, RFC 4034 6.2) and
 * indexed like a loaded zone (zone.c: sorted, duplicates dropped), the
 * closing copy of the SOA left out.  Both sides are then sets of records
 * (owner, type, canonical RDATA) merged in canonical order (RFC 4034 6.3):
 * a record on one side only, or on both with different TTLs, is one
 * finding; so is a served SOA serial other than the release's.  A transfer
 * that does not complete (no answer in time, refused, malformed) is drift
 * too; only "no connection at all" is an error (GATE_ERR_NETWORK), so an
 * operator can tell an outage from a server serving something else.
 *
 * Only loopback addresses are accepted (127.0.0.0/8, ::1): the gate asks
 * its own host's server, unauthenticated (no TSIG), never a remote one.
 * Releases nothing; does not judge DNSSEC data.
 */
#include "gate/internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Findings stored (listed in the report and JSON); further differences
 * are counted only, so a server serving a wholly different zone of
 * millions of records cannot exhaust memory with findings. */
enum { DRIFT_LIST_MAX = 100000 };

/* ---- --served ADDR[#PORT] ---- */

typedef struct {
    ldns_rdf *addr; /* A or AAAA rdf */
    uint16_t port;
    char text[64];  /* "ADDR#PORT" for messages */
} served_t;

static int is_loopback(const ldns_rdf *a)
{
    static const uint8_t v6[16] = {[15] = 1};
    const uint8_t *p = ldns_rdf_data(a);
    if (ldns_rdf_get_type(a) == LDNS_RDF_TYPE_A)
        return p[0] == 127;
    return ldns_rdf_size(a) == 16 && memcmp(p, v6, 16) == 0;
}

static int served_parse(const char *spec, served_t *out, gate_diag_t *diag)
{
    char host[48];
    const char *hash = strchr(spec, '#');
    size_t hlen = hash ? (size_t)(hash - spec) : strlen(spec);
    long port = 53;
    ldns_rdf *a = NULL;
    if (hash) {
        char *end;
        port = strtol(hash + 1, &end, 10);
        if (!hash[1] || *end || port < 1 || port > 65535) {
            snprintf(diag->msg, sizeof(diag->msg),
                     "--served %s: PORT must be a number from 1 to 65535",
                     spec);
            return GATE_ERR_USAGE;
        }
    }
    if (hlen > 0 && hlen < sizeof(host)) {
        memcpy(host, spec, hlen);
        host[hlen] = '\0';
        if (ldns_str2rdf_a(&a, host) != LDNS_STATUS_OK &&
            ldns_str2rdf_aaaa(&a, host) != LDNS_STATUS_OK)
            a = NULL;
    }
    if (!a) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "--served %s: not an IP address (ADDR[#PORT])", spec);
        return GATE_ERR_USAGE;
    }
    if (!is_loopback(a)) {
        ldns_rdf_deep_free(a);
        snprintf(diag->msg, sizeof(diag->msg),
                 "--served %s: only a loopback address (127.0.0.0/8 or ::1) "
                 "is accepted",
                 spec);
        return GATE_ERR_USAGE;
    }
    out->addr = a;
    out->port = (uint16_t)port;
    snprintf(out->text, sizeof(out->text), "%s#%ld", host, port);
    return 0;
}

int gate_served_check(const char *spec, gate_diag_t *diag)
{
    served_t sv = {0};
    int err = served_parse(spec, &sv, diag);
    ldns_rdf_deep_free(sv.addr);
    return err;
}

/* ---- the transfer ---- */

typedef struct {
    const served_t *sv;
    int64_t timeout;
    int64_t limit;          /* --served-limit, seconds */
    double deadline;        /* mono() by which the transfer must be done */
    const ldns_rdf *origin; /* canonical */
    struct gate_zone *s;    /* the records received */
    ldns_buffer *buf;
    ldns_rr *soa;           /* the opening SOA, canonical */
    size_t nrr;             /* records received, both SOAs included */
    int done;               /* the closing SOA arrived */
    char why[300];          /* why the transfer failed; "" while it works */
} xfr_t;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One received record (already canonical) into the served zone. */
static int xfr_store(xfr_t *x, const ldns_rr *rr)
{
    struct gate_zone *z = x->s;
    const ldns_rdf *owner = ldns_rr_owner(rr);
    ldns_buffer_clear(x->buf);
    if (ldns_rr_rdata2buffer_wire(x->buf, rr) != LDNS_STATUS_OK ||
        ldns_buffer_position(x->buf) > 65535) {
        snprintf(x->why, sizeof(x->why), "record %zu cannot be encoded",
                 x->nrr + 1);
        return 0;
    }
    gate_rec_t r = {0};
    r.type = (uint16_t)ldns_rr_get_type(rr);
    r.ttl = ldns_rr_ttl(rr);
    r.line = (uint32_t)(x->nrr + 1); /* position in the transfer */
    r.namelen = (uint8_t)ldns_rdf_size(owner);
    r.labels = (uint8_t)ldns_dname_label_count(owner);
    r.rdlen = (uint16_t)ldns_buffer_position(x->buf);
    const gate_rec_t *p = z->nrecs ? &z->recs[z->nrecs - 1] : NULL;
    int err = 0;
    /* a name's records usually arrive together: store the owner once */
    if (p && p->namelen == r.namelen &&
        memcmp(z->arena + p->name, ldns_rdf_data(owner), r.namelen) == 0)
        r.name = p->name;
    else
        err = zone_arena_put(z, ldns_rdf_data(owner), r.namelen, &r.name);
    if (!err)
        err = zone_arena_put(z, ldns_buffer_begin(x->buf), r.rdlen, &r.rdata);
    if (!err)
        err = zone_rec_push(z, &r);
    return err;
}

/* One answer record of the transfer; sets x->why when it is wrong. */
static int xfr_record(xfr_t *x, ldns_rr *rr)
{
    if (x->done) {
        snprintf(x->why, sizeof(x->why), "records after the closing SOA");
        return 0;
    }
    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
        snprintf(x->why, sizeof(x->why),
                 "record %zu of the transfer is not of class IN", x->nrr + 1);
        return 0;
    }
    zone_rr_canonical(rr);
    int soa = ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA;
    if (x->nrr == 0) {
        /* RFC 5936 2.2: the transfer begins with the zone's SOA */
        if (!soa || ldns_dname_compare(ldns_rr_owner(rr), x->origin) != 0) {
            snprintf(x->why, sizeof(x->why),
                     "the transfer does not begin with the zone's SOA");
            return 0;
        }
        if (!(x->soa = ldns_rr_clone(rr)))
            return -ENOMEM;
    } else if (soa) {
        /* RFC 5936 2.2: ... and ends with the same SOA, not part of the
         * zone's data a second time */
        x->nrr++;
        x->done = 1;
        if (ldns_rr_compare(rr, x->soa) != 0 ||
            ldns_rr_ttl(rr) != ldns_rr_ttl(x->soa))
            snprintf(x->why, sizeof(x->why),
                     "the closing SOA differs from the opening SOA");
        return 0;
    }
    int err = xfr_store(x, rr);
    x->nrr++;
    return err;
}

static int xfr_message(xfr_t *x, const ldns_pkt *pkt, uint16_t id)
{
    if (ldns_pkt_id(pkt) != id || !ldns_pkt_qr(pkt)) {
        snprintf(x->why, sizeof(x->why),
                 "a message that is not the answer to the query");
        return 0;
    }
    if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR) {
        char *rc = ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt));
        snprintf(x->why, sizeof(x->why), "the server answered %s",
                 rc ? rc : "an error");
        free(rc);
        return 0;
    }
    if (ldns_pkt_tc(pkt)) {
        snprintf(x->why, sizeof(x->why), "a truncated message");
        return 0;
    }
    ldns_rr_list *an = ldns_pkt_answer(pkt);
    int err = 0;
    for (size_t i = 0; i < ldns_rr_list_rr_count(an) && !err && !x->why[0];
         i++)
        err = xfr_record(x, ldns_rr_list_rr(an, i));
    return err;
}

/* Sends the AXFR query on fd; *id: its message ID. */
static int xfr_query(xfr_t *x, int fd, const struct sockaddr_storage *ns,
                     size_t nslen, uint16_t *id)
{
    ldns_rdf *qname = ldns_rdf_clone(x->origin);
    ldns_pkt *q = qname ? ldns_pkt_query_new(qname, LDNS_RR_TYPE_AXFR,
                                             LDNS_RR_CLASS_IN, 0)
                        : NULL;
    ldns_buffer *qb = ldns_buffer_new(LDNS_MAX_PACKETLEN);
    int err = 0;
    if (!q || !qb) {
        if (!q)
            ldns_rdf_deep_free(qname);
        err = -ENOMEM;
        goto out;
    }
    ldns_pkt_set_random_id(q);
    *id = ldns_pkt_id(q);
    if (ldns_pkt2buffer_wire(qb, q) != LDNS_STATUS_OK) {
        err = -ENOMEM;
        goto out;
    }
    /* a server closing the connection must not kill the gate (SIGPIPE) */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    if (ldns_tcp_send_query(qb, fd, ns, (socklen_t)nslen) == 0)
        snprintf(x->why, sizeof(x->why), "the query could not be sent");
    signal(SIGPIPE, old);
out:
    ldns_pkt_free(q);
    ldns_buffer_free(qb);
    return err;
}

/* Reads exactly n bytes within both bounds; 0, or -1 with x->why set. */
static int xfr_recv(xfr_t *x, int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        double left = x->deadline - mono();
        double wait = left < (double)x->timeout ? left : (double)x->timeout;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = wait > 0 ? poll(&p, 1, (int)(wait * 1000) + 1) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && left <= (double)x->timeout) {
            snprintf(x->why, sizeof(x->why),
                     "the transfer did not finish within %lld s "
                     "(--served-limit) after %zu records",
                     (long long)x->limit, x->nrr);
            return -1;
        }
        if (r == 0) {
            snprintf(x->why, sizeof(x->why),
                     "no data for %lld s after %zu records",
                     (long long)x->timeout, x->nrr);
            return -1;
        }
        ssize_t k = r > 0 ? recv(fd, buf + got, n - got, 0) : -1;
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            snprintf(x->why, sizeof(x->why),
                     "the connection closed after %zu records", x->nrr);
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

/* One DNS message over TCP (RFC 1035 4.2.2: two-octet length first);
 * malloc'd, or NULL with x->why set. */
static uint8_t *xfr_message_read(xfr_t *x, int fd, size_t *size)
{
    uint8_t len[2], *wire;
    if (xfr_recv(x, fd, len, 2) < 0)
        return NULL;
    *size = (size_t)len[0] << 8 | len[1];
    if (*size == 0) {
        snprintf(x->why, sizeof(x->why), "a malformed message (length 0)");
        return NULL;
    }
    if (!(wire = malloc(*size))) {
        snprintf(x->why, sizeof(x->why), "out of memory");
        return NULL;
    }
    if (xfr_recv(x, fd, wire, *size) < 0) {
        free(wire);
        return NULL;
    }
    return wire;
}

/* Reads messages until the closing SOA, a fault (x->why) or an error. */
static int xfr_read(xfr_t *x, int fd, uint16_t id)
{
    int err = 0;
    while (!err && !x->done && !x->why[0]) {
        size_t size = 0;
        uint8_t *wire = xfr_message_read(x, fd, &size);
        if (!wire)
            break;
        ldns_pkt *pkt = NULL;
        ldns_status st = ldns_wire2pkt(&pkt, wire, size);
        free(wire);
        if (st != LDNS_STATUS_OK) {
            snprintf(x->why, sizeof(x->why), "a malformed message (%s)",
                     ldns_get_errorstr_by_id(st));
            break;
        }
        err = xfr_message(x, pkt, id);
        ldns_pkt_free(pkt);
    }
    return err;
}

/*
 * The whole transfer into x->s.  Returns GATE_ERR_NETWORK (diag set) when
 * no connection could be made, -ENOMEM; otherwise 0, with x->why set when
 * the transfer did not complete or x->s could not be indexed.
 */
static int xfr_run(xfr_t *x, gate_diag_t *diag)
{
    size_t nslen = 0;
    struct sockaddr_storage *ns =
        ldns_rdf2native_sockaddr_storage(x->sv->addr, x->sv->port, &nslen);
    struct timeval tv = {.tv_sec = (time_t)x->timeout};
    int fd = -1, err = 0;
    uint16_t id = 0;
    if (!ns || !(x->buf = ldns_buffer_new(1024))) {
        err = -ENOMEM;
        goto out;
    }
    errno = 0;
    x->deadline = mono() + (double)x->limit;
    fd = ldns_tcp_connect2(ns, (socklen_t)nslen, tv);
    if (fd < 0) {
        snprintf(diag->msg, sizeof(diag->msg), "--served: cannot connect to "
                 "%s: %s", x->sv->text,
                 errno ? strerror(errno) : "no connection within the timeout");
        err = GATE_ERR_NETWORK;
        goto out;
    }
    if ((err = xfr_query(x, fd, ns, nslen, &id)) < 0 || x->why[0])
        goto out;
    if ((err = xfr_read(x, fd, id)) < 0 || x->why[0])
        goto out;
    err = zone_index(x->s, 1);
    if (err == GATE_ERR_ZONE) {
        snprintf(x->why, sizeof(x->why), "the served zone has no single SOA");
        err = 0;
    }
out:
    if (fd >= 0)
        close(fd);
    free(ns);
    return err;
}

/* ---- the comparison ---- */

/* Record order across two zones: as zone_rec_cmp without the line. */
static int rec_cmp2(const struct gate_zone *za, const gate_rec_t *a,
                    const struct gate_zone *zb, const gate_rec_t *b)
{
    int c = name_cmp(rec_name(za, a), rec_name(zb, b));
    if (c)
        return c;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    size_t m = a->rdlen < b->rdlen ? a->rdlen : b->rdlen;
    c = memcmp(rec_rdata(za, a), rec_rdata(zb, b), m);
    if (c)
        return c;
    return a->rdlen < b->rdlen ? -1 : a->rdlen > b->rdlen;
}

/* RDATA in presentation format (ldns), for a finding's message. */
static void rdata_str(const struct gate_zone *z, const gate_rec_t *rec,
                      char *buf, size_t len)
{
    ldns_rr *rr = ldns_rr_new();
    uint8_t *w = malloc((size_t)rec->rdlen + 2);
    size_t pos = 0, at = 0;
    buf[0] = '\0';
    if (rr && w) {
        w[0] = (uint8_t)(rec->rdlen >> 8);
        w[1] = (uint8_t)rec->rdlen;
        memcpy(w + 2, rec_rdata(z, rec), rec->rdlen);
        ldns_rr_set_type(rr, (ldns_rr_type)rec->type);
        if (ldns_wire2rdf(rr, w, (size_t)rec->rdlen + 2, &pos) ==
            LDNS_STATUS_OK)
            for (size_t i = 0; i < ldns_rr_rd_count(rr) && at < len; i++) {
                char *s = ldns_rdf2str(ldns_rr_rdf(rr, i));
                int n = snprintf(buf + at, len - at, "%s%s", i ? " " : "",
                                 s ? s : "?");
                at += n > 0 ? (size_t)n : 0;
                free(s);
            }
    }
    if (!buf[0])
        snprintf(buf, len, "(%u octets)", rec->rdlen);
    free(w);
    ldns_rr_free(rr);
}

/* Counts one difference; 1 if it is to be listed as a finding too. */
static int listed(struct gate_result *r)
{
    r->drift->differences++;
    if (r->class_count[GATE_C_DRIFT] < DRIFT_LIST_MAX)
        return 1;
    r->class_count[GATE_C_DRIFT]++;
    r->drift->unlisted++;
    return 0;
}

/* A record of z that the other side lacks. */
static void one_side(struct gate_result *r, const struct gate_zone *z,
                     const gate_rec_t *rec, const char *what)
{
    char rd[400];
    if (!listed(r))
        return;
    rdata_str(z, rec, rd, sizeof(rd));
    result_add_owner_msg(r, GATE_C_DRIFT, rec_name(z, rec), rec->type,
                         "%s: %u %s", what, rec->ttl, rd);
}

/* A record on both sides, with another TTL on the server. */
static void ttl_differs(struct gate_result *r, const struct gate_zone *rel,
                        const gate_rec_t *rec, uint32_t served_ttl)
{
    char rd[400];
    if (!listed(r))
        return;
    rdata_str(rel, rec, rd, sizeof(rd));
    result_add_owner_msg(r, GATE_C_DRIFT, rec_name(rel, rec), rec->type,
                         "TTL differs: served %u, released %u: %s",
                         served_ttl, rec->ttl, rd);
}

static void diff_records(struct gate_result *r, const struct gate_zone *rel,
                         const struct gate_zone *srv)
{
    size_t i = 0, j = 0;
    while (i < rel->nrecs || j < srv->nrecs) {
        const gate_rec_t *a = i < rel->nrecs ? &rel->recs[i] : NULL;
        const gate_rec_t *b = j < srv->nrecs ? &srv->recs[j] : NULL;
        int c = !a ? 1 : !b ? -1 : rec_cmp2(rel, a, srv, b);
        if (c < 0) {
            one_side(r, rel, a, "released but not served");
            i++;
        } else if (c > 0) {
            one_side(r, srv, b, "served but not released");
            j++;
        } else {
            if (a->ttl != b->ttl)
                ttl_differs(r, rel, a, b->ttl);
            i++;
            j++;
        }
    }
}

/* Transfer from the server and compare with the release rel. */
static int drift_compare(struct gate_result *r, const struct gate_zone *rel,
                         gate_diag_t *diag)
{
    gate_drift_t *d = r->drift;
    const gate_opts_t *o = r->opts;
    served_t sv = {0};
    xfr_t x = {0};
    gate_clock_t c;
    int err = served_parse(o->served, &sv, diag);
    if (err < 0)
        return err;
    x.sv = &sv;
    x.timeout = o->served_timeout > 0 ? o->served_timeout
                                      : GATE_SERVED_TIMEOUT_DEFAULT;
    x.limit = o->served_limit > 0 ? o->served_limit
                                  : GATE_SERVED_LIMIT_DEFAULT;
    x.origin = rel->origin;
    x.s = calloc(1, sizeof(*x.s));
    if (!x.s || !(x.s->origin = ldns_rdf_clone(rel->origin))) {
        err = -ENOMEM;
        goto out;
    }
    x.s->soa_rrset = x.s->dnskey_rrset = -1;
    d->released_serial = rel->serial;
    d->released_recs = rel->nrecs;
    timing_start(&c);
    err = xfr_run(&x, diag);
    timing_stop(&r->timings, &c, "axfr", x.nrr);
    if (err < 0)
        goto out;
    if (x.why[0]) {
        result_add_owner_msg(r, GATE_C_DRIFT, ldns_rdf_data(rel->origin),
                             LDNS_RR_TYPE_AXFR,
                             "zone transfer from %s failed: %s", sv.text,
                             x.why);
        goto out;
    }
    d->compared = 1;
    d->served_serial = x.s->serial;
    d->served_recs = x.s->nrecs;
    timing_start(&c);
    if (x.s->serial != rel->serial)
        result_add_owner_msg(r, GATE_C_DRIFT, ldns_rdf_data(rel->origin),
                             LDNS_RR_TYPE_SOA,
                             "served serial %u, last release serial %u",
                             x.s->serial, rel->serial);
    diff_records(r, rel, x.s);
    timing_stop(&r->timings, &c, "drift-diff", rel->nrecs + x.s->nrecs);
out:
    if (err == -ENOMEM)
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
    ldns_rdf_deep_free(sv.addr);
    ldns_buffer_free(x.buf);
    ldns_rr_free(x.soa);
    gate_zone_free(x.s);
    return err;
}

/* ---- the two ways to run it ---- */

/* r->drift for a run; DIR must be a directory; d->release its zone file. */
static int drift_new(struct gate_result *r, int alone, gate_diag_t *diag)
{
    const gate_opts_t *o = r->opts;
    struct stat st;
    gate_drift_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
        return -ENOMEM;
    }
    r->drift = d;
    d->alone = alone;
    served_t sv = {0};
    int err = served_parse(o->served, &sv, diag);
    if (err < 0)
        return err;
    snprintf(d->server, sizeof(d->server), "%s", sv.text);
    ldns_rdf_deep_free(sv.addr);
    if (!o->release_dir || stat(o->release_dir, &st) < 0 ||
        !S_ISDIR(st.st_mode)) {
        snprintf(diag->msg, sizeof(diag->msg), "--release %s: not a directory",
                 o->release_dir ? o->release_dir : "(none)");
        return GATE_ERR_USAGE;
    }
    /* the name release.c gives it: "tld." -> tld.zone, "." -> root.zone */
    if (strchr(r->zone_name, '/') || strchr(r->zone_name, '\\')) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "zone name %s cannot name a file", r->zone_name);
        return GATE_ERR_USAGE;
    }
    int n = snprintf(d->release, sizeof(d->release), "%s/%szone",
                     o->release_dir,
                     strcmp(r->zone_name, ".") == 0 ? "root." : r->zone_name);
    if (n < 0 || (size_t)n >= sizeof(d->release)) {
        snprintf(diag->msg, sizeof(diag->msg), "--release: path too long");
        return GATE_ERR_USAGE;
    }
    return 0;
}

/* Loads the last release into d->owned; -ENOENT (diag unset) if none. */
static int release_load(struct gate_result *r, gate_diag_t *diag)
{
    gate_drift_t *d = r->drift;
    struct stat st;
    gate_clock_t c;
    if (stat(d->release, &st) < 0) {
        int err = -errno;
        if (err != -ENOENT)
            snprintf(diag->msg, sizeof(diag->msg), "%s: %s", d->release,
                     strerror(-err));
        return err;
    }
    timing_start(&c);
    int err = gate_zone_load(&d->owned, d->release, r->zone_name,
                             r->opts->threads, diag);
    timing_stop(&r->timings, &c, "drift-load", d->owned ? d->owned->nrecs : 0);
    return err;
}

int drift_check(struct gate_result *r, gate_diag_t *diag)
{
    int err = drift_new(r, 0, diag);
    if (err < 0)
        return err;
    gate_drift_t *d = r->drift;
    if ((err = release_load(r, diag)) == -ENOENT && !diag->msg[0]) {
        /* the first release: nothing a server could drift from yet */
        snprintf(d->note, sizeof(d->note),
                 "not checked: no release of %s in %s yet", r->zone_name,
                 r->opts->release_dir);
        return 0;
    }
    if (err < 0)
        return err;
    err = drift_compare(r, d->owned, diag);
    /* the findings hold their own text: the release is not needed again */
    gate_zone_free(d->owned);
    d->owned = NULL;
    return err;
}

int gate_drift_run(struct gate_result **out, const gate_opts_t *o,
                   gate_diag_t *diag)
{
    struct gate_result *r = calloc(1, sizeof(*r));
    ldns_rdf *origin = NULL;
    char name[1100];
    int err;
    if (!r) {
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
        return -ENOMEM;
    }
    r->opts = o;
    if (ldns_str2rdf_dname(&origin, o->origin) != LDNS_STATUS_OK ||
        !ldns_dname_str_absolute(o->origin)) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "origin '%s' is not an absolute domain name", o->origin);
        err = GATE_ERR_USAGE;
        goto fail;
    }
    ldns_dname2canonical(origin);
    zone_name_str(ldns_rdf_data(origin), name, sizeof(name));
    if (!(r->zone_name = strdup(name))) {
        snprintf(diag->msg, sizeof(diag->msg), "out of memory");
        err = -ENOMEM;
        goto fail;
    }
    if ((err = drift_new(r, 1, diag)) < 0)
        goto fail;
    /* the release must be the one its history recorded (history.c) */
    if ((err = history_release_check(r, diag)) < 0)
        goto fail;
    if ((err = release_load(r, diag)) == -ENOENT && !diag->msg[0])
        snprintf(diag->msg, sizeof(diag->msg),
                 "no release of %s in %s yet (no %s)", r->zone_name,
                 o->release_dir, r->drift->release);
    if (err < 0)
        goto fail;
    r->zone = r->drift->owned; /* the report names the release */
    if ((err = drift_compare(r, r->zone, diag)) < 0)
        goto fail;
    ldns_rdf_deep_free(origin);
    *out = r;
    return 0;
fail:
    ldns_rdf_deep_free(origin);
    gate_result_free(r);
    return err;
}

void drift_free(struct gate_result *r)
{
    if (!r->drift)
        return;
    gate_zone_free(r->drift->owned);
    free(r->drift);
    r->drift = NULL;
}

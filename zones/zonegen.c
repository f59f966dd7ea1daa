/*
 * zones/zonegen.c - deterministic generator of TLD-like zones.
 *
 * Writes an unsigned zone shaped like a registry's: an apex with SOA, NS,
 * and the registry's own service names, then N delegations, in a pseudo-
 * random (but seed-determined) order of names.  Each delegation has two
 * NS records; a fraction of them point into the zone itself and carry A
 * and AAAA glue; a fraction carry DS records.  With --extras the zone also
 * holds the harder cases for a signer: empty non-terminals, wildcards,
 * multi-line records, CNAME, MX, SRV, TXT, CAA, TLSA, an unknown type in
 * RFC 3597 form, a secure delegation below an empty non-terminal, and glue
 * two labels below its delegation.
 *
 * It streams: memory use does not depend on N, so an 18-million-delegation
 * zone is as cheap to make as a small one.  The same arguments always give
 * the same bytes.  --mutate F changes a fraction F of the delegations
 * (chosen by --mutate-seed) for incremental-signing tests: new NS targets
 * and DS digests, some deleted, added, secured or unsecured (see
 * write_delegation).
 *
 * It does not sign, and does not check what it writes: the signer's and
 * the gate's readers do that.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
    const char *origin;
    unsigned long long delegations;
    double ds_fraction;
    double glue_fraction;
    double mutate;
    uint64_t seed;
    uint64_t mutate_seed;
    uint32_t serial;
    int extras;
    const char *out;
    const char *split;
};

/* SplitMix64: small, fast, and fully determined by its input. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double unit_interval(uint64_t x)
{
    return (double)(x >> 11) / (double)(1ULL << 53);
}

/* A delegation's label: an invertible scramble of its index in base 36,
 * so names are unique and their canonical order differs from the order in
 * which they are written. */
static void delegation_label(char *buf, size_t len, uint64_t i, uint64_t seed)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    static const char *const stems[] = {"shop",  "mail", "web",  "cloud",
                                        "haus",  "bau",  "net",  "info",
                                        "data",  "auto", "reise", "bank",
                                        "media", "kunst", "sport", "praxis"};
    uint64_t h = mix64(i ^ seed);
    char tmp[32];
    size_t n = 0;
    /* Multiplication by an odd constant is a bijection on 64-bit words, so
     * distinct indexes give distinct labels. */
    uint64_t w = (i + 1) * 0x2545f4914f6cdd1dULL;
    do {
        tmp[n++] = digits[w % 36];
        w /= 36;
    } while (w != 0 && n < 13);
    snprintf(buf, len, "%s-%.*s", stems[h & 15], (int)n, tmp);
}

static void hex(char *out, uint64_t seed, size_t bytes)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < bytes; i++) {
        if (i % 8 == 0)
            seed = mix64(seed + i);
        unsigned b = (unsigned)(seed >> ((i % 8) * 8)) & 0xff;
        out[2 * i] = digits[b >> 4];
        out[2 * i + 1] = digits[b & 15];
    }
    out[2 * bytes] = '\0';
}

static void write_apex(FILE *f, const struct opts *o)
{
    fprintf(f, "; TLD-like zone made by zonegen: %llu delegations, "
               "DS fraction %.4f, glue fraction %.4f, seed %" PRIu64 "\n",
            o->delegations, o->ds_fraction, o->glue_fraction, o->seed);
    fprintf(f, "$ORIGIN %s\n$TTL 86400\n", o->origin);
    fprintf(f, "@\t86400\tIN\tSOA\tns1.nic ( hostmaster.nic %" PRIu32
               " 10800 3600 2419200 3600 )\n",
            o->serial);
    fprintf(f, "@\t86400\tIN\tNS\tns1.nic\n");
    fprintf(f, "@\t86400\tIN\tNS\tns2.nic\n");
    fprintf(f, "ns1.nic\t86400\tIN\tA\t192.0.2.53\n");
    fprintf(f, "ns1.nic\t86400\tIN\tAAAA\t2001:db8::53\n");
    fprintf(f, "ns2.nic\t86400\tIN\tA\t198.51.100.53\n");
    fprintf(f, "ns2.nic\t86400\tIN\tAAAA\t2001:db8:1::53\n");
    fprintf(f, "nic\t3600\tIN\tA\t192.0.2.80\n");
    fprintf(f, "nic\t3600\tIN\tAAAA\t2001:db8::80\n");
    if (!o->extras)
        return;
    fprintf(f, "@\t3600\tIN\tTXT\t\"registry zone made by zonegen\"\n");
    fprintf(f, "@\t3600\tIN\tMX\t10 mail.nic\n");
    fprintf(f, "@\t3600\tIN\tCAA\t0 issue \"ca.example\"\n");
    fprintf(f, "mail.nic\t3600\tIN\tA\t192.0.2.25\n");
    fprintf(f, "www.nic\t3600\tIN\tCNAME\tnic\n");
    fprintf(f, "_443._tcp.www.nic\t3600\tIN\tTLSA\t3 1 1 ( "
               "0C72AC70B745AC19998811B131D662C9\n"
               "\t\t\t\tAC69DBDBE7CB23E5B514B56664C5D3D6 )\n");
    fprintf(f, "_sip._udp.nic\t3600\tIN\tSRV\t10 60 5060 sip.nic\n");
    fprintf(f, "sip.nic\t3600\tIN\tA\t192.0.2.60\n");
    /* a.b.c.nic makes b.c.nic and c.nic empty non-terminals. */
    fprintf(f, "a.b.c.nic\t3600\tIN\tTXT\t\"below two empty non-terminals\"\n");
    fprintf(f, "*.wild\t3600\tIN\tA\t192.0.2.99\n");
    fprintf(f, "*.wild\t3600\tIN\tTXT\t( \"wildcard \" \"spanning\"\n"
               "\t\t\t\t\"lines\" )\n");
    fprintf(f, "host.wild\t3600\tIN\tA\t192.0.2.98\n");
    fprintf(f, "unknown.nic\t3600\tIN\tTYPE65400\t\\# 4 0A000001\n");
    fprintf(f, "svc.nic\t3600\tIN\tHTTPS\t1 . alpn=h2\n");
    /* A delegation whose glue sits below it, with data occluded by it. */
    fprintf(f, "deleg-glue\t86400\tIN\tNS\tns.deep.deleg-glue\n");
    fprintf(f, "ns.deep.deleg-glue\t86400\tIN\tA\t192.0.2.7\n");
    fprintf(f, "deleg-glue\t86400\tIN\tDS\t12345 13 2 %s\n",
            "49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE1F8DDE3FB5A2F7A4C6A5B7E1");
    /* A secure delegation below an empty non-terminal. */
    fprintf(f, "sub.ent-deleg\t86400\tIN\tNS\tns1.example.net.\n");
    fprintf(f, "sub.ent-deleg\t86400\tIN\tDS\t23456 8 2 %s\n",
            "3C5D1EA4B1F0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D4");
}

static void write_delegation(FILE *f, const struct opts *o, uint64_t i)
{
    char label[64], digest[80];
    uint64_t h = mix64(i * 3 + o->seed);
    int mutated = o->mutate > 0 &&
                  unit_interval(mix64(i ^ o->mutate_seed ^ 0x5a5a)) < o->mutate;
    /* what a registry's day does to a changed delegation: mostly new name
     * servers (and a new DS when it is secure: the child rolled its KSK);
     * 1 in 20 is deleted, 1 in 20 has a new delegation registered beside
     * it, 1 in 20 is secured or unsecured (DS added or removed) */
    unsigned kind = mutated ? (unsigned)(mix64(i ^ o->mutate_seed ^ 0xa5a5) % 20)
                            : 99;
    if (kind == 0)
        return;
    delegation_label(label, sizeof label, i, o->seed);
    int glue = unit_interval(mix64(h + 1)) < o->glue_fraction;
    int ds = unit_interval(mix64(h + 2)) < o->ds_fraction;
    if (kind == 2)
        ds = !ds;
    if (kind == 1)
        fprintf(f, "new-%s\tNS\tns1.dns%u.example.net.\n"
                   "new-%s\tNS\tns2.dns%u.example.org.\n",
                label, (unsigned)(h % 5000), label, (unsigned)(h % 5000));

    if (glue && !mutated) {
        fprintf(f, "%s\tNS\tns1.%s\n%s\tNS\tns2.%s\n", label, label, label,
                label);
        fprintf(f, "ns1.%s\tA\t198.18.%u.%u\n", label,
                (unsigned)(h >> 8) & 0xff, (unsigned)(h >> 16) & 0xff);
        fprintf(f, "ns2.%s\tAAAA\t2001:db8:%x::%x\n", label,
                (unsigned)(h >> 24) & 0xffff, (unsigned)(h >> 40) & 0xffff);
    } else {
        unsigned host = (unsigned)(h % 5000) + (mutated ? 7919 : 0);
        fprintf(f, "%s\tNS\tns1.dns%u.example.net.\n", label, host);
        fprintf(f, "%s\tNS\tns2.dns%u.example.org.\n", label, host);
    }
    if (ds) {
        hex(digest, h + 3 + (mutated ? 0x9e37 : 0), 32);
        fprintf(f, "%s\tDS\t%u 13 2 %s\n", label,
                (unsigned)(h >> 32) & 0xffff, digest);
        if (((h >> 50) & 7) == 0) {
            hex(digest, h + 4, 32);
            fprintf(f, "%s\tDS\t%u 8 2 %s\n", label,
                    (unsigned)(h >> 20) & 0xffff, digest);
        }
    }
}

static void usage(FILE *f)
{
    fputs("usage: zonegen [--origin NAME] [--delegations N] [--ds-fraction F]\n"
          "               [--glue-fraction G] [--seed S] [--serial N] "
          "[--extras]\n"
          "               [--mutate F [--mutate-seed S]] [-o FILE "
          "[--split FILE2]]\n"
          "Writes a deterministic TLD-like unsigned zone (stdout by "
          "default).\n"
          "  --split FILE2  write the delegations to FILE2 and $INCLUDE it\n",
          f);
}

static int parse_args(struct opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--extras")) {
            o->extras = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "zonegen: %s needs a value (or is unknown)\n", a);
            return -1;
        }
        i++;
        errno = 0;
        if (!strcmp(a, "--origin"))
            o->origin = v;
        else if (!strcmp(a, "-o"))
            o->out = v;
        else if (!strcmp(a, "--split"))
            o->split = v;
        else if (!strcmp(a, "--delegations"))
            o->delegations = strtoull(v, &end, 10);
        else if (!strcmp(a, "--ds-fraction"))
            o->ds_fraction = strtod(v, &end);
        else if (!strcmp(a, "--glue-fraction"))
            o->glue_fraction = strtod(v, &end);
        else if (!strcmp(a, "--mutate"))
            o->mutate = strtod(v, &end);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--mutate-seed"))
            o->mutate_seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--serial"))
            o->serial = (uint32_t)strtoul(v, &end, 10);
        else {
            fprintf(stderr, "zonegen: unknown option %s\n", a);
            return -1;
        }
        if (end != NULL && (*end != '\0' || errno != 0)) {
            fprintf(stderr, "zonegen: bad value for %s: %s\n", a, v);
            return -1;
        }
    }
    size_t len = strlen(o->origin);
    if (len == 0 || o->origin[len - 1] != '.') {
        fprintf(stderr, "zonegen: origin must be absolute (end in '.')\n");
        return -1;
    }
    if (o->split != NULL && o->out == NULL) {
        fprintf(stderr, "zonegen: --split needs -o\n");
        return -1;
    }
    return 0;
}

static FILE *open_out(const char *path)
{
    if (path == NULL)
        return stdout;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fprintf(stderr, "zonegen: %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        fprintf(stderr, "zonegen: %s: write failed\n", path ? path : "stdout");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.origin = "tld.",
                     .delegations = 1000,
                     .ds_fraction = 0.036,
                     .glue_fraction = 0.05,
                     .seed = 1,
                     .mutate_seed = 2,
                     .serial = 2026112201};
    if (parse_args(&o, argc, argv) != 0)
        return 2;

    static char buf[1 << 20];
    FILE *f = open_out(o.out);
    if (f == NULL)
        return 2;
    setvbuf(f, buf, _IOFBF, sizeof buf);
    write_apex(f, &o);

    FILE *d = f;
    if (o.split != NULL) {
        d = open_out(o.split);
        if (d == NULL)
            return 2;
        char *abs = realpath(o.split, NULL);
        fprintf(f, "$INCLUDE %s\n", abs ? abs : o.split);
        free(abs);
        fprintf(d, "$ORIGIN %s\n", o.origin);
    }
    for (uint64_t i = 0; i < o.delegations; i++)
        write_delegation(d, &o, i);
    if (d != f && close_out(d, o.split) != 0)
        return 2;
    return close_out(f, o.out) != 0 ? 2 : 0;
}

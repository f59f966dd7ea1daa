/*
 * hsm/zonehsm.c - command-line front of hsm/: keygen, check, list, state,
 * kek-init (CLI.md "zonehsm").  Parses arguments, calls the library,
 * prints, maps results to exit codes: 0 ok, 1 consistency proof failed,
 * 2 usage, input or operational error (one line on stderr starting
 * "zonehsm: ").  PINs come only inside URIs (pin-source=file: or, for
 * tests, pin-value=) and are never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "hsm/hsm.h"
#include "hsm/internal.h"

static const char usage_text[] =
"usage: zonehsm [--hsm URI]... [--hsm-list FILE] --keyset FILE COMMAND [ARGS]\n"
"\n"
"HSMs are RFC 7512 PKCS#11 URIs, numbered 1..N in the order given, e.g.\n"
"  pkcs11:token=hsm1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/zonegate/hsm1.pin\n"
"Tokens are selected by token= (label) and/or serial=, never by slot;\n"
"pin-source=file:PATH or pin-value=PIN (tests) give the user PIN.\n"
"\n"
"Options:\n"
"  --hsm URI          an HSM (repeatable)\n"
"  --hsm-list FILE    one URI per line, '#' comments\n"
"  --keyset FILE      the zone's key set file\n"
"  --help             this text\n"
"\n"
"Commands:\n"
"  keygen --zone ORIGIN --label LABEL --alg ALG [--bits N]\n"
"         [--role ksk|zsk|csk] [--state published|active|signing]\n"
"         [--replicate wrap|import]\n"
"      Make ONE key pair, place it on every HSM under one fresh CKA_ID\n"
"      and LABEL, add it to the key set (created for ORIGIN if missing),\n"
"      print its DNSKEY RR.  ALG: 8|RSASHA256, 10|RSASHA512 (--bits\n"
"      1024-4096, default 2048), 13|ECDSAP256SHA256, 14|ECDSAP384SHA384,\n"
"      15|ED25519 (signed through the raw PKCS#11 path, CKM_EDDSA).\n"
"      --role defaults to zsk (flags 256; ksk and csk get 257), --state to\n"
"      active.  --replicate wrap (default): generate on HSM 1, wrap under\n"
"      an AES-256 key-encryption key on every token (made automatically if\n"
"      no token has one), unwrap into the others; import: generate in host\n"
"      memory, create on every token, wipe the host copy.\n"
"  check\n"
"      Consistency proof: every key not removed is on every HSM, its public\n"
"      key equals the DNSKEY, and a fresh probe signature by that HSM\n"
"      verifies against the DNSKEY.  Exit 1 with one line per mismatch.\n"
"  list\n"
"      Keys per HSM: HSM number, token, label, algorithm, key tag.\n"
"  state --label LABEL --set published|active|retired|removed|signing\n"
"      Change a key's state in the key set (no HSM needed).  signing: the\n"
"      key signs the zone's data but is not in the DNSKEY RRset (RFC 6781\n"
"      4.1.4 algorithm rollover: new signatures before the new DNSKEYs,\n"
"      old signatures kept after the old DNSKEYs are gone).\n"
"  keygen and state hold FILE.lock (flock) while they update the key set.\n"
"  kek-init\n"
"      Create the wrap key-encryption key on every HSM.\n"
"\n"
"Exit: 0 ok, 1 consistency proof failed, 2 usage/input/operational error.\n";

struct args {
    char **uris;
    size_t nuris;
    const char *keyset, *cmd;
    const char *zone, *label, *alg, *bits, *role, *state, *set, *replicate;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("zonehsm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int exit_for(int rc, const hsm_diag_t *d)
{
    if (rc == HSM_EMISMATCH)
        return 1;
    return fail("%s", d->msg[0] != '\0' ? d->msg : hsm_strerror(rc));
}

/* --name VALUE or --name=VALUE at argv[*i]; NULL if not this option. */
static const char *optval(int argc, char **argv, int *i, const char *name,
                          int *err)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *err = fail("%s needs a value (see --help)", name);
        return NULL;
    }
    return argv[++*i];
}

static int add_uri(struct args *a, const char *u)
{
    char **g = realloc(a->uris, (a->nuris + 1) * sizeof(*g));
    if (g == NULL || (g[a->nuris] = strdup(u)) == NULL)
        return fail("out of memory");
    a->uris = g;
    a->nuris++;
    return 0;
}

static int parse(struct args *a, int argc, char **argv)
{
    struct { const char *name; const char **dst; } opts[] = {
        {"--keyset", &a->keyset}, {"--zone", &a->zone},
        {"--label", &a->label}, {"--alg", &a->alg}, {"--bits", &a->bits},
        {"--role", &a->role}, {"--state", &a->state}, {"--set", &a->set},
        {"--replicate", &a->replicate},
    };
    for (int i = 1; i < argc; i++) {
        const char *v;
        int err = 0;
        bool done = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if ((v = optval(argc, argv, &i, "--hsm-list", &err)) != NULL) {
            hsm_diag_t d = {""};
            if (hsm_urilist_load(&a->uris, &a->nuris, v, &d) != 0)
                return fail("%s", d.msg);
            continue;
        }
        if (err == 0 && (v = optval(argc, argv, &i, "--hsm", &err)) != NULL) {
            if ((err = add_uri(a, v)) != 0)
                return err;
            continue;
        }
        for (size_t o = 0; err == 0 && !done && o < sizeof(opts) / sizeof(opts[0]); o++)
            if ((v = optval(argc, argv, &i, opts[o].name, &err)) != NULL) {
                if (*opts[o].dst != NULL)
                    return fail("%s given twice", opts[o].name);
                *opts[o].dst = v;
                done = true;
            }
        if (err != 0)
            return err;
        if (done)
            continue;
        if (argv[i][0] == '-')
            return fail("unknown option %s (see --help)", argv[i]);
        if (a->cmd != NULL)
            return fail("unexpected argument %s (see --help)", argv[i]);
        a->cmd = argv[i];
    }
    if (a->cmd == NULL)
        return fail("no command (keygen, check, list, state, kek-init; "
                    "see --help)");
    if (a->keyset == NULL && strcmp(a->cmd, "kek-init") != 0)
        return fail("--keyset FILE is required");
    return 0;
}

static int open_set(struct args *a, struct hsm_set **set)
{
    hsm_diag_t d = {""};
    int rc;
    if (a->nuris == 0)
        return fail("no HSM given (--hsm URI or --hsm-list FILE)");
    rc = hsm_set_open(set, (const char *const *)a->uris, a->nuris, &d);
    return rc != 0 ? exit_for(rc, &d) : 0;
}

/* Serialises read-modify-write of the key set between zonehsm processes
 * (FILE.lock beside it; readers need no lock, saves are atomic renames).
 * Returns the lock's descriptor, or -1 after printing an error. */
static int keyset_lock(const char *keyset)
{
    char *path = NULL;
    int fd;
    if (asprintf(&path, "%s.lock", keyset) < 0)
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        fail("%s: cannot lock: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    free(path);
    return fd;
}

static int parse_enum(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static const char *const roles[] = {"ksk", "zsk", "csk"};
static const char *const states[] = {"published", "active", "retired",
                                     "removed", "signing"};

static int keygen_key(struct args *a, hsm_key_t *k, unsigned *bits,
                      hsm_replicate_t *how)
{
    int alg, role = HSM_ROLE_ZSK, state = HSM_STATE_ACTIVE;
    char *end;
    memset(k, 0, sizeof(*k));
    if (a->label == NULL || a->alg == NULL)
        return fail("keygen needs --label and --alg (see --help)");
    if ((alg = hsm_alg_parse(a->alg)) < 0)
        return fail("unknown algorithm %s", a->alg);
    if (a->role != NULL && (role = parse_enum(a->role, roles, 3)) < 0)
        return fail("--role must be ksk, zsk or csk");
    if (a->state != NULL && ((state = parse_enum(a->state, states, 5)) < 0 ||
                             (state > HSM_STATE_ACTIVE &&
                              state != HSM_STATE_SIGNING)))
        return fail("--state must be published, active or signing");
    *bits = 0;
    if (a->bits != NULL) {
        unsigned long b = strtoul(a->bits, &end, 10);
        if (*a->bits == '\0' || *end != '\0' || b > 65536)
            return fail("--bits must be a number");
        *bits = (unsigned)b;
    }
    *how = HSM_REPLICATE_WRAP;
    if (a->replicate != NULL) {
        if (strcmp(a->replicate, "import") == 0)
            *how = HSM_REPLICATE_IMPORT;
        else if (strcmp(a->replicate, "wrap") != 0)
            return fail("--replicate must be wrap or import");
    }
    if (strlen(a->label) >= HSM_LABEL_MAX)
        return fail("label longer than %d characters", HSM_LABEL_MAX - 1);
    snprintf(k->label, sizeof(k->label), "%s", a->label);
    k->alg = (uint8_t)alg;
    k->role = (hsm_role_t)role;
    k->state = (hsm_state_t)state;
    k->flags = role == HSM_ROLE_ZSK ? 256 : 257;
    return 0;
}

static int keyset_for_keygen(struct args *a, hsm_keyset_t **ks)
{
    hsm_diag_t d = {""};
    int rc;
    if (access(a->keyset, F_OK) != 0) {
        if (a->zone == NULL)
            return fail("%s does not exist: give --zone ORIGIN to create it",
                        a->keyset);
        rc = hsm_keyset_new(ks, a->zone, &d);
        return rc != 0 ? exit_for(rc, &d) : 0;
    }
    if ((rc = hsm_keyset_load(ks, a->keyset, &d)) != 0)
        return exit_for(rc, &d);
    if (a->zone != NULL) {
        hsm_keyset_t *z = NULL;
        if ((rc = hsm_keyset_new(&z, a->zone, &d)) != 0)
            return exit_for(rc, &d);
        rc = strcasecmp(z->zone, (*ks)->zone) != 0;
        hsm_keyset_free(z);
        if (rc != 0)
            return fail("%s is the key set of zone %s, not %s", a->keyset,
                        (*ks)->zone, a->zone);
    }
    return 0;
}

static int cmd_keygen(struct args *a)
{
    hsm_keyset_t *ks = NULL;
    struct hsm_set *set = NULL;
    hsm_key_t k, *grown;
    hsm_diag_t d = {""};
    hsm_replicate_t how = HSM_REPLICATE_WRAP;
    unsigned bits = 0;
    char b64[4 * HSM_PUBKEY_MAX / 3 + 8];
    int rc, lock = -1;

    if ((rc = keygen_key(a, &k, &bits, &how)) != 0)
        return rc;
    if ((lock = keyset_lock(a->keyset)) < 0)
        return 2;
    if ((rc = keyset_for_keygen(a, &ks)) != 0 ||
        (rc = open_set(a, &set)) != 0)
        goto out;
    if ((rc = hsm_key_generate(set, ks, &k, bits, how, &d)) != 0) {
        rc = exit_for(rc, &d);
        goto out;
    }
    grown = realloc(ks->keys, (ks->count + 1) * sizeof(*grown));
    if (grown != NULL) {
        ks->keys = grown;
        ks->keys[ks->count++] = k;
    }
    if (grown == NULL || hsm_keyset_save(ks, a->keyset, &d) != 0) {
        /* Not recorded: not kept on the HSMs either. */
        hsm_key_destroy(set, &k, NULL);
        rc = fail("%s", grown == NULL ? "out of memory" : d.msg);
        goto out;
    }
    b64_encode(k.pubkey, k.pubkey_len, b64, sizeof(b64));
    printf("%s IN DNSKEY %u 3 %u %s ; %s key tag %u\n", ks->zone, k.flags,
           k.alg, b64, k.label, k.keytag);
out:
    hsm_set_free(set);
    hsm_keyset_free(ks);
    close(lock);
    return rc;
}

static void print_mismatch(const hsm_mismatch_t *m, void *arg)
{
    (*(unsigned *)arg)++;
    if (m->found_tag >= 0)
        fprintf(stderr, "zonehsm: HSM %zu (token %s): key %s: expected key "
                        "tag %u, found %d: %s\n", m->hsm, m->token, m->label,
                m->expected_tag, m->found_tag, m->reason);
    else
        fprintf(stderr, "zonehsm: HSM %zu (token %s): key %s: expected key "
                        "tag %u, found %s: %s\n", m->hsm, m->token,
                m->label, m->expected_tag,
                strncmp(m->reason, "no ", 3) == 0 ? "none" : "unknown",
                m->reason);
}

static int cmd_check(struct args *a)
{
    hsm_keyset_t *ks = NULL;
    struct hsm_set *set = NULL;
    hsm_diag_t d = {""};
    unsigned bad = 0;
    size_t keys = 0;
    int rc;

    if ((rc = hsm_keyset_load(&ks, a->keyset, &d)) != 0) {
        rc = exit_for(rc, &d);
        goto out;
    }
    if ((rc = open_set(a, &set)) != 0)
        goto out;
    rc = hsm_set_check(set, ks, print_mismatch, &bad, &d);
    if (rc == HSM_EMISMATCH) {
        fprintf(stderr, "zonehsm: check FAILED: %u mismatches\n", bad);
        rc = 1;
    } else if (rc != 0) {
        rc = exit_for(rc, &d);
    } else {
        for (size_t i = 0; i < ks->count; i++)
            keys += ks->keys[i].state != HSM_STATE_REMOVED;
        printf("zonehsm: check passed: %zu keys on %zu HSMs, %zu probe "
               "signatures verified against the DNSKEYs\n", keys,
               hsm_set_count(set), keys * hsm_set_count(set));
    }
out:
    hsm_set_free(set);
    hsm_keyset_free(ks);
    return rc;
}

static void print_listed(const hsm_listed_t *l, void *arg)
{
    const char *name = hsm_alg_name(l->alg);
    (void)arg;
    printf("%zu\t%s\t%s\t%u\t%s\t", l->hsm, l->token, l->label, l->alg,
           name != NULL ? name : "-");
    if (l->keytag >= 0)
        printf("%d\n", l->keytag);
    else
        printf("-\n");
}

static int cmd_list(struct args *a)
{
    hsm_keyset_t *ks = NULL;
    struct hsm_set *set = NULL;
    hsm_diag_t d = {""};
    int rc;
    if ((rc = hsm_keyset_load(&ks, a->keyset, &d)) != 0) {
        rc = exit_for(rc, &d);
        goto out;
    }
    if ((rc = open_set(a, &set)) != 0)
        goto out;
    printf("# hsm\ttoken\tlabel\talg\tname\tkeytag\n");
    if ((rc = hsm_set_list(set, ks, print_listed, NULL, &d)) != 0)
        rc = exit_for(rc, &d);
out:
    hsm_set_free(set);
    hsm_keyset_free(ks);
    return rc;
}

static int cmd_state(struct args *a)
{
    hsm_keyset_t *ks = NULL;
    hsm_diag_t d = {""};
    int rc, i, st, lock;
    if (a->label == NULL || a->set == NULL)
        return fail("state needs --label LABEL --set STATE");
    if ((st = parse_enum(a->set, states, 5)) < 0)
        return fail("--set must be published, active, retired, removed or "
                    "signing");
    if ((lock = keyset_lock(a->keyset)) < 0)
        return 2;
    if ((rc = hsm_keyset_load(&ks, a->keyset, &d)) != 0) {
        close(lock);
        return exit_for(rc, &d);
    }
    if ((i = hsm_keyset_find(ks, a->label)) < 0) {
        rc = fail("%s: no key labelled %s", a->keyset, a->label);
    } else {
        ks->keys[i].state = (hsm_state_t)st;
        ks->keys[i].state_since = (int64_t)time(NULL);
        rc = hsm_keyset_save(ks, a->keyset, &d);
        rc = rc != 0 ? exit_for(rc, &d) : 0;
        if (rc == 0)
            printf("zonehsm: key %s is now %s\n", a->label, a->set);
    }
    hsm_keyset_free(ks);
    close(lock);
    return rc;
}

static int cmd_kek_init(struct args *a)
{
    struct hsm_set *set = NULL;
    hsm_diag_t d = {""};
    int rc = open_set(a, &set);
    if (rc == 0 && (rc = hsm_kek_init(set, &d)) != 0)
        rc = exit_for(rc, &d);
    else if (rc == 0)
        printf("zonehsm: key-encryption key created on %zu HSMs\n",
               hsm_set_count(set));
    hsm_set_free(set);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a;
    int rc;
    memset(&a, 0, sizeof(a));
    rc = parse(&a, argc, argv);
    if (rc == 0) {
        if (strcmp(a.cmd, "keygen") == 0)
            rc = cmd_keygen(&a);
        else if (strcmp(a.cmd, "check") == 0)
            rc = cmd_check(&a);
        else if (strcmp(a.cmd, "list") == 0)
            rc = cmd_list(&a);
        else if (strcmp(a.cmd, "state") == 0)
            rc = cmd_state(&a);
        else if (strcmp(a.cmd, "kek-init") == 0)
            rc = cmd_kek_init(&a);
        else
            rc = fail("unknown command %s (see --help)", a.cmd);
    }
    for (size_t i = 0; i < a.nuris; i++)
        free(a.uris[i]);
    free(a.uris);
    return rc;
}

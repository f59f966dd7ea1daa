/*
 * hsm/keyset.c - the zone's key set file: load, check, save atomically.
 *
 * Format (text, one record per line, '#' starts a comment, blank lines
 * are ignored, fields are separated by blanks):
 *
 *   zone <origin>
 *   key <label> id=<hex> role=ksk|zsk|csk alg=<n> flags=<n> tag=<n>
 *       state=published|active|retired|removed|signing created=<unix>
 *       since=<unix> pubkey=<base64>
 *
 * (each key is ONE line; it is wrapped here only for reading.)
 *
 * - The first non-comment line is `zone <origin>`; the origin is stored
 *   with a trailing dot.
 * - <label> is the PKCS#11 CKA_LABEL of the key on every HSM (1-63
 *   printable characters, no blanks, no '#'), unique in the file.
 * - id is the CKA_ID (1-32 bytes in hex), unique in the file.
 * - alg is the DNSSEC algorithm number (8, 10, 13, 14); flags the DNSKEY
 *   flags (257 for ksk and csk, 256 for zsk); pubkey the DNSKEY public key
 *   field in base64 (RFC 4034 section 2.2); tag the RFC 4034 Appendix B
 *   key tag, which must match flags, alg and pubkey.
 * - created is when the key was made, since when its state last changed
 *   (UNIX seconds).
 * - All key fields are required, in any order, each once.
 * - No two keys share a label, an id or a key tag (RFC 4034 Appendix B
 *   tags identify keys to validators; zonehsm keygen never makes a key
 *   whose tag is taken, it throws it away and makes another).
 *
 * Errors name the place: "FILE:LINE: reason".  Saving writes a temporary
 * file in the same directory, fsyncs it, renames it over the old file and
 * fsyncs the directory, so a reader sees the old or the new file, never a
 * part.  This module does no PKCS#11.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "hsm/internal.h"

static const char *const role_names[] = {"ksk", "zsk", "csk"};
static const char *const state_names[] = {"published", "active", "retired",
                                          "removed", "signing"};

int b64_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    if (out_size < 4 * ((len + 2) / 3) + 1)
        return -ENOSPC;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return 0;
}

int b64_decode(const char *in, uint8_t *out, size_t out_size, size_t *len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), body = strspn(in, alphabet), pad = 0;
    int got;
    while (body + pad < n && in[body + pad] == '=')
        pad++;
    if (n == 0 || n % 4 != 0 || body + pad != n || pad > 2)
        return HSM_EKEYSET;
    if (n / 4 * 3 > out_size)
        return HSM_EKEYSET;
    got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad)
        return HSM_EKEYSET;
    *len = (size_t)got - pad;
    return 0;
}

static int hex_decode(const char *s, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 != 0 || n / 2 > max)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) ||
            !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int hsm_keyset_new(hsm_keyset_t **out, const char *zone, hsm_diag_t *diag)
{
    hsm_keyset_t *ks;
    size_t len = zone != NULL ? strlen(zone) : 0;
    if (len == 0 || len > 253 || strcspn(zone, " \t#;\"\\") != len ||
        (zone[0] == '.' && len > 1) || strstr(zone, "..") != NULL) {
        diag_set(diag, "bad zone name \"%s\"", zone != NULL ? zone : "");
        return HSM_EKEYSET;
    }
    ks = calloc(1, sizeof(*ks));
    if (ks == NULL)
        return -ENOMEM;
    snprintf(ks->zone, sizeof(ks->zone), "%s%s", zone,
             zone[len - 1] == '.' ? "" : ".");
    *out = ks;
    return 0;
}

void hsm_keyset_free(hsm_keyset_t *ks)
{
    if (ks == NULL)
        return;
    free(ks->keys);
    free(ks);
}

bool keyset_tag_taken(const hsm_keyset_t *ks, uint16_t tag)
{
    for (size_t i = 0; ks != NULL && i < ks->count; i++)
        if (ks->keys[i].keytag == tag)
            return true;
    return false;
}

int hsm_keyset_find(const hsm_keyset_t *ks, const char *label)
{
    for (size_t i = 0; i < ks->count; i++)
        if (strcmp(ks->keys[i].label, label) == 0)
            return (int)i;
    return -1;
}

enum { F_ID, F_ROLE, F_ALG, F_FLAGS, F_TAG, F_STATE, F_CREATED, F_SINCE,
       F_PUBKEY, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "id", "role", "alg", "flags", "tag", "state", "created", "since", "pubkey",
};

/* One field=value of a key line into K; returns a reason or NULL. */
static const char *key_field(hsm_key_t *k, int f, const char *v,
                             int64_t *tag)
{
    int64_t n;
    int i;
    switch (f) {
    case F_ID:
        return hex_decode(v, k->id, HSM_ID_MAX, &k->id_len) != 0
                   ? "id is not 1-32 bytes of hex" : NULL;
    case F_ROLE:
        if ((i = name_index(v, role_names, 3)) < 0)
            return "role is not ksk, zsk or csk";
        k->role = (hsm_role_t)i;
        return NULL;
    case F_ALG:
        if (parse_int(v, 0, 255, &n) != 0)
            return "alg is not a number";
        if (n != 8 && n != 10 && n != 13 && n != 14 && n != 15)
            return "unsupported algorithm";
        k->alg = (uint8_t)n;
        return NULL;
    case F_FLAGS:
        if (parse_int(v, 0, 65535, &n) != 0 || (n != 256 && n != 257))
            return "flags is not 256 or 257";
        k->flags = (uint16_t)n;
        return NULL;
    case F_TAG:
        return parse_int(v, 0, 65535, tag) != 0 ? "tag is not 0-65535" : NULL;
    case F_STATE:
        if ((i = name_index(v, state_names, 5)) < 0)
            return "state is not published, active, retired, removed or "
                   "signing";
        k->state = (hsm_state_t)i;
        return NULL;
    case F_CREATED:
        return parse_int(v, 0, INT64_MAX, &k->created) != 0
                   ? "created is not UNIX seconds" : NULL;
    case F_SINCE:
        return parse_int(v, 0, INT64_MAX, &k->state_since) != 0
                   ? "since is not UNIX seconds" : NULL;
    case F_PUBKEY:
        return b64_decode(v, k->pubkey, HSM_PUBKEY_MAX, &k->pubkey_len) != 0
                   ? "pubkey is not base64" : NULL;
    }
    return "unknown field";
}

static bool label_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= HSM_LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)s[i]) || s[i] == '#')
            return false;
    return true;
}

static const char *key_check(const hsm_keyset_t *ks, const hsm_key_t *k,
                             int64_t tag)
{
    uint8_t rd[4 + HSM_PUBKEY_MAX];
    EVP_PKEY *pk = NULL;
    if ((k->role == HSM_ROLE_ZSK) != (k->flags == 256))
        return "flags do not fit the role (257 ksk/csk, 256 zsk)";
    if (alg_pkey_from_dnskey(k->alg, k->pubkey, k->pubkey_len, &pk) != 0)
        return "pubkey is not a valid key for the algorithm";
    EVP_PKEY_free(pk);
    if (hsm_keytag(rd, hsm_key_dnskey_rdata(k, rd)) != tag)
        return "tag does not match flags, alg and pubkey";
    for (size_t i = 0; i < ks->count; i++) {
        if (strcmp(ks->keys[i].label, k->label) == 0)
            return "duplicate label";
        if (ks->keys[i].id_len == k->id_len &&
            memcmp(ks->keys[i].id, k->id, k->id_len) == 0)
            return "duplicate id";
    }
    if (keyset_tag_taken(ks, (uint16_t)tag))
        return "key tag collides with another key of the zone";
    return NULL;
}

/* A "key" line split into words W[0..nw). */
static const char *key_line(hsm_keyset_t *ks, char **w, int nw)
{
    hsm_key_t k;
    bool seen[F_COUNT] = {false};
    int64_t tag = -1;
    const char *why;
    hsm_key_t *grown;

    memset(&k, 0, sizeof(k));
    if (nw < 2 || !label_ok(w[1]))
        return "key line needs a label (1-63 printable characters)";
    memcpy(k.label, w[1], strlen(w[1]) + 1);
    for (int i = 2; i < nw; i++) {
        char *eq = strchr(w[i], '=');
        int f;
        if (eq == NULL)
            return "field is not name=value";
        *eq = '\0';
        f = name_index(w[i], field_names, F_COUNT);
        if (f < 0)
            return "unknown field";
        if (seen[f])
            return "field given twice";
        seen[f] = true;
        if ((why = key_field(&k, f, eq + 1, &tag)) != NULL)
            return why;
    }
    for (int f = 0; f < F_COUNT; f++)
        if (!seen[f])
            return "missing field";
    if ((why = key_check(ks, &k, tag)) != NULL)
        return why;
    k.keytag = (uint16_t)tag;
    grown = realloc(ks->keys, (ks->count + 1) * sizeof(*grown));
    if (grown == NULL)
        return "out of memory";
    ks->keys = grown;
    ks->keys[ks->count++] = k;
    return NULL;
}

static int split(char *s, char **w, int max)
{
    int n = 0;
    for (char *t = strtok(s, " \t"); t != NULL; t = strtok(NULL, " \t")) {
        if (n == max)
            return -1;
        w[n++] = t;
    }
    return n;
}

int hsm_keyset_load(hsm_keyset_t **out, const char *path, hsm_diag_t *diag)
{
    FILE *f = fopen(path, "r");
    hsm_keyset_t *ks = NULL;
    char *line = NULL, *w[16];
    size_t cap = 0;
    unsigned lineno = 0;
    const char *why = NULL;
    int rc = 0, nw;

    if (f == NULL) {
        diag_set(diag, "%s: %s", path, strerror(errno));
        return HSM_EKEYSET;
    }
    while (why == NULL && getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "#\r\n")] = '\0';
        nw = split(line, w, 16);
        if (nw == 0)
            continue;
        if (nw < 0) {
            why = "too many fields";
        } else if (ks == NULL) {
            if (strcmp(w[0], "zone") != 0 || nw != 2)
                why = "first line must be \"zone <origin>\"";
            else if (hsm_keyset_new(&ks, w[1], NULL) != 0)
                why = "bad zone name";
        } else if (strcmp(w[0], "key") == 0) {
            why = key_line(ks, w, nw);
        } else {
            why = strcmp(w[0], "zone") == 0 ? "second zone line"
                                            : "unknown record type";
        }
    }
    if (why == NULL && ferror(f))
        why = "read error";
    if (why == NULL && ks == NULL) {
        why = "no \"zone <origin>\" line";
        lineno = lineno == 0 ? 1 : lineno;
    }
    free(line);
    fclose(f);
    if (why != NULL) {
        diag_set(diag, "%s:%u: %s", path, lineno, why);
        hsm_keyset_free(ks);
        return HSM_EKEYSET;
    }
    *out = ks;
    return rc;
}

static int write_all(int fd, const hsm_keyset_t *ks)
{
    FILE *f = fdopen(fd, "w");
    char b64[4 * HSM_PUBKEY_MAX / 3 + 8];
    if (f == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    fprintf(f, "# zonegate key set (hsm/keyset.c documents the format)\n"
               "zone %s\n", ks->zone);
    for (size_t i = 0; i < ks->count; i++) {
        const hsm_key_t *k = &ks->keys[i];
        fprintf(f, "key %s id=", k->label);
        for (size_t j = 0; j < k->id_len; j++)
            fprintf(f, "%02x", k->id[j]);
        b64_encode(k->pubkey, k->pubkey_len, b64, sizeof(b64));
        fprintf(f, " role=%s alg=%u flags=%u tag=%u state=%s created=%" PRId64
                   " since=%" PRId64 " pubkey=%s\n",
                role_names[k->role], k->alg, k->flags, k->keytag,
                state_names[k->state], k->created, k->state_since, b64);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        int e = errno;
        fclose(f);
        return -e;
    }
    return fclose(f) != 0 ? -errno : 0;
}

int hsm_keyset_save(const hsm_keyset_t *ks, const char *path,
                    hsm_diag_t *diag)
{
    char *tmp = NULL, *dcopy = NULL;
    int fd = -1, dfd, rc;

    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
        return -ENOMEM;
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        diag_set(diag, "%s: cannot create temporary file: %s", path,
                 strerror(errno));
        free(tmp);
        return rc;
    }
    if (fchmod(fd, 0644) != 0) {
        rc = -errno;
        close(fd);
        goto fail;
    }
    if ((rc = write_all(fd, ks)) != 0)
        goto fail;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto fail;
    }
    dcopy = strdup(path);
    if (dcopy != NULL && (dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY))
                             >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dcopy);
    free(tmp);
    return 0;
fail:
    diag_set(diag, "%s: cannot write: %s", path, strerror(-rc));
    unlink(tmp);
    free(tmp);
    return rc;
}

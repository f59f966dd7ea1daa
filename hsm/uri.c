/*
 * hsm/uri.c - RFC 7512 PKCS#11 URIs naming one token, and --hsm-list files.
 *
 * Accepts the path attributes token, serial, manufacturer, model (and
 * ignores library-*, slot-description, slot-manufacturer, object, id, type,
 * x-*) and the query attributes module-path, module-name (refused: give a
 * path), pin-source (file:PATH or an absolute PATH) and pin-value, with
 * percent-decoding (RFC 7512 section 2.3, RFC 3986 section 2.1).
 * slot-id is refused: tokens are selected by label or serial, never by a
 * slot number, which SoftHSM derives from serials in no fixed order.
 * Does not open anything; token.c does.  A PIN never enters a diagnostic.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "hsm/internal.h"

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void hsm_uri_free(hsm_uri_t *uri)
{
    if (uri == NULL)
        return;
    free(uri->module_path);
    free(uri->token);
    free(uri->serial);
    free(uri->manufacturer);
    free(uri->model);
    wipe_free(uri->pin);
    free(uri->pin_source);
    free(uri);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into a new string; NULL on a bad escape or
 * an embedded NUL. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= len) {
                OPENSSL_cleanse(out, o);
                free(out);
                return NULL;
            }
            h = hexval((unsigned char)s[i + 1]);
            l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                OPENSSL_cleanse(out, o);
                free(out);
                return NULL;
            }
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Reads the first line of a PIN file. */
static int read_pin(const char *path, char **pin, hsm_diag_t *diag)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL) {
        diag_set(diag, "cannot read PIN file %s: %s", path, strerror(errno));
        return HSM_EPIN;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        OPENSSL_cleanse(buf, sizeof(buf));
        diag_set(diag, "PIN file %s is empty", path);
        return HSM_EPIN;
    }
    *pin = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return *pin == NULL ? -ENOMEM : 0;
}

static const char *const ignored_path_attrs[] = {
    "library-manufacturer", "library-description", "library-version",
    "slot-description", "slot-manufacturer", "object", "id", "type", NULL,
};

static int set_once(char **slot, char *val, const char *name,
                    hsm_diag_t *diag)
{
    if (*slot != NULL) {
        free(val);
        diag_set(diag, "malformed PKCS#11 URI: attribute %s given twice",
                 name);
        return HSM_EURI;
    }
    *slot = val;
    return 0;
}

/* One "name=value" attribute; QUERY tells path from query part. */
static int attr(hsm_uri_t *u, const char *a, size_t len, bool query,
                char **pin_value, hsm_diag_t *diag)
{
    const char *eq = memchr(a, '=', len);
    char name[64];
    char *val;
    size_t nlen;
    if (eq == NULL || eq == a) {
        diag_set(diag, "malformed PKCS#11 URI: attribute without name=value");
        return HSM_EURI;
    }
    nlen = (size_t)(eq - a);
    if (nlen >= sizeof(name)) {
        diag_set(diag, "malformed PKCS#11 URI: attribute name too long");
        return HSM_EURI;
    }
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    val = pct_decode(eq + 1, len - nlen - 1);
    if (val == NULL) {
        diag_set(diag, "malformed PKCS#11 URI: bad percent-encoding in %s",
                 name);
        return HSM_EURI;
    }
    if (!query) {
        if (strcmp(name, "token") == 0)
            return set_once(&u->token, val, name, diag);
        if (strcmp(name, "serial") == 0)
            return set_once(&u->serial, val, name, diag);
        if (strcmp(name, "manufacturer") == 0)
            return set_once(&u->manufacturer, val, name, diag);
        if (strcmp(name, "model") == 0)
            return set_once(&u->model, val, name, diag);
        free(val);
        if (strcmp(name, "slot-id") == 0) {
            diag_set(diag, "malformed PKCS#11 URI: slot-id is not accepted, "
                           "name the token by token= or serial=");
            return HSM_EURI;
        }
        for (size_t i = 0; ignored_path_attrs[i] != NULL; i++)
            if (strcmp(name, ignored_path_attrs[i]) == 0)
                return 0;
        if (strncmp(name, "x-", 2) == 0)
            return 0;
        diag_set(diag, "malformed PKCS#11 URI: unknown attribute %s", name);
        return HSM_EURI;
    }
    if (strcmp(name, "module-path") == 0)
        return set_once(&u->module_path, val, name, diag);
    if (strcmp(name, "pin-source") == 0)
        return set_once(&u->pin_source, val, name, diag);
    if (strcmp(name, "pin-value") == 0) {
        if (*pin_value != NULL) {
            wipe_free(val);
            diag_set(diag, "malformed PKCS#11 URI: pin-value given twice");
            return HSM_EURI;
        }
        *pin_value = val;
        return 0;
    }
    free(val);
    if (strcmp(name, "module-name") == 0) {
        diag_set(diag, "malformed PKCS#11 URI: module-name is not supported, "
                       "use module-path");
        return HSM_EURI;
    }
    if (strncmp(name, "x-", 2) == 0)
        return 0;
    diag_set(diag, "malformed PKCS#11 URI: unknown query attribute %s", name);
    return HSM_EURI;
}

static int parse_part(hsm_uri_t *u, const char *s, size_t len, char sep,
                      bool query, char **pin_value, hsm_diag_t *diag)
{
    while (len > 0) {
        const char *end = memchr(s, sep, len);
        size_t alen = end != NULL ? (size_t)(end - s) : len;
        int rc;
        if (alen > 0) {
            rc = attr(u, s, alen, query, pin_value, diag);
            if (rc != 0)
                return rc;
        }
        if (end == NULL)
            break;
        len -= alen + 1;
        s = end + 1;
    }
    return 0;
}

static int finish(hsm_uri_t *u, char **pin_value, hsm_diag_t *diag)
{
    if (u->token == NULL && u->serial == NULL) {
        diag_set(diag, "malformed PKCS#11 URI: neither token= nor serial= "
                       "names the token");
        return HSM_EURI;
    }
    if (u->module_path == NULL || u->module_path[0] == '\0') {
        diag_set(diag, "malformed PKCS#11 URI: no module-path");
        return HSM_EURI;
    }
    if (u->pin_source != NULL && *pin_value != NULL) {
        diag_set(diag, "malformed PKCS#11 URI: both pin-source and pin-value");
        return HSM_EURI;
    }
    if (*pin_value != NULL) {
        u->pin = *pin_value;
        *pin_value = NULL;
        return 0;
    }
    if (u->pin_source != NULL) {
        const char *p = u->pin_source;
        if (strncmp(p, "file:", 5) == 0)
            p += 5;
        if (p[0] != '/') {
            diag_set(diag, "malformed PKCS#11 URI: pin-source must be "
                           "file:/absolute/path");
            return HSM_EURI;
        }
        return read_pin(p, &u->pin, diag);
    }
    diag_set(diag, "no PIN for token %s: give pin-source=file:PATH",
             u->token != NULL ? u->token : u->serial);
    return HSM_EPIN;
}

int hsm_uri_parse(hsm_uri_t **out, const char *text, hsm_diag_t *diag)
{
    hsm_uri_t *u = NULL;
    char *pin_value = NULL;
    const char *path, *q;
    int rc;

    if (text == NULL || strncmp(text, "pkcs11:", 7) != 0) {
        diag_set(diag, "malformed PKCS#11 URI: does not start with pkcs11:");
        return HSM_EURI;
    }
    for (const char *c = text; *c != '\0'; c++)
        if (!isgraph((unsigned char)*c) || *c == '#') {
            diag_set(diag, "malformed PKCS#11 URI: character 0x%02x not "
                           "allowed", (unsigned char)*c);
            return HSM_EURI;
        }
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    path = text + 7;
    q = strchr(path, '?');
    rc = parse_part(u, path, q != NULL ? (size_t)(q - path) : strlen(path),
                    ';', false, &pin_value, diag);
    if (rc == 0 && q != NULL)
        rc = parse_part(u, q + 1, strlen(q + 1), '&', true, &pin_value,
                        diag);
    if (rc == 0)
        rc = finish(u, &pin_value, diag);
    wipe_free(pin_value);
    if (rc != 0) {
        hsm_uri_free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int hsm_urilist_load(char ***uris, size_t *n, const char *path,
                     hsm_diag_t *diag)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;
    if (f == NULL) {
        diag_set(diag, "%s: %s", path, strerror(errno));
        return -errno;
    }
    while (getline(&line, &cap, f) >= 0) {
        char *s = line, *e, **grown;
        lineno++;
        s[strcspn(s, "#\r\n")] = '\0';
        while (isspace((unsigned char)*s))
            s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (*s == '\0')
            continue;
        if (strchr(s, ' ') != NULL || strchr(s, '\t') != NULL) {
            diag_set(diag, "%s:%u: more than one URI on the line", path,
                     lineno);
            rc = HSM_EURI;
            break;
        }
        grown = realloc(*uris, (*n + 1) * sizeof(**uris));
        if (grown == NULL) {
            rc = -ENOMEM;
            break;
        }
        *uris = grown;
        if (((*uris)[*n] = strdup(s)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        (*n)++;
    }
    if (line != NULL)
        OPENSSL_cleanse(line, cap);
    free(line);
    fclose(f);
    return rc;
}

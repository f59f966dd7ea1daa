/*
 * tests/hsm/test_uri.c - RFC 7512 URI parsing (hsm/uri.c) and --hsm-list.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm/internal.h"
#include "tests/lib/tap.h"

#define MOD "module-path=/usr/lib/softhsm/libsofthsm2.so"

static void good(const char *text, const char *token, const char *serial,
                 const char *module, const char *pin)
{
    hsm_uri_t *u = NULL;
    hsm_diag_t d = {""};
    int rc = hsm_uri_parse(&u, text, &d);
    ok(rc == 0, "parses %s", text);
    if (rc != 0) {
        printf("#   %s\n", d.msg);
        return;
    }
    ok((token == NULL ? u->token == NULL
                      : u->token != NULL && strcmp(u->token, token) == 0) &&
           (serial == NULL ? u->serial == NULL
                           : u->serial != NULL &&
                                 strcmp(u->serial, serial) == 0) &&
           strcmp(u->module_path, module) == 0 && strcmp(u->pin, pin) == 0,
       "  token, serial, module and PIN as expected");
    hsm_uri_free(u);
}

static void bad(const char *text, int want, const char *needle)
{
    hsm_uri_t *u = NULL;
    hsm_diag_t d = {""};
    int rc = hsm_uri_parse(&u, text, &d);
    ok(rc == want && u == NULL && strstr(d.msg, needle) != NULL &&
           strstr(d.msg, "s3cret") == NULL && strchr(d.msg, '\n') == NULL,
       "refuses %s (%s)", text, d.msg);
}

int main(void)
{
    char pinfile[] = "/tmp/zg-test-uri-XXXXXX", text[512], *t;
    char **uris = NULL;
    size_t n = 0;
    hsm_diag_t d = {""};
    int fd;
    FILE *f;

    good("pkcs11:token=hsm1?" MOD "&pin-value=1234", "hsm1", NULL,
         "/usr/lib/softhsm/libsofthsm2.so", "1234");
    good("pkcs11:token=my%20token;serial=0a1b?" MOD "&pin-value=12%2534",
         "my token", "0a1b", "/usr/lib/softhsm/libsofthsm2.so", "12%34");
    good("pkcs11:serial=abc;object=k;type=private;x-vendor=1?"
         "module-path=%2Fopt%2Fp11.so&pin-value=p",
         NULL, "abc", "/opt/p11.so", "p");
    good("pkcs11:model=SoftHSM%20v2;token=a;manufacturer=SoftHSM%20project?"
         MOD "&pin-value=x", "a", NULL, "/usr/lib/softhsm/libsofthsm2.so",
         "x");

    fd = mkstemp(pinfile);
    f = fdopen(fd, "w");
    fputs("s3cret\n", f);
    fclose(f);
    snprintf(text, sizeof(text), "pkcs11:token=t?" MOD "&pin-source=file:%s",
             pinfile);
    good(text, "t", NULL, "/usr/lib/softhsm/libsofthsm2.so", "s3cret");
    snprintf(text, sizeof(text), "pkcs11:token=t?" MOD "&pin-source=%s",
             pinfile);
    good(text, "t", NULL, "/usr/lib/softhsm/libsofthsm2.so", "s3cret");

    bad("pkcs12:token=a?" MOD, HSM_EURI, "pkcs11:");
    bad("token=a", HSM_EURI, "pkcs11:");
    bad("pkcs11:token=a?pin-value=s3cret", HSM_EURI, "module-path");
    bad("pkcs11:object=a?" MOD "&pin-value=s3cret", HSM_EURI, "token=");
    bad("pkcs11:token=a;slot-id=2?" MOD "&pin-value=s3cret", HSM_EURI,
        "slot-id");
    bad("pkcs11:token=a;token=b?" MOD "&pin-value=s3cret", HSM_EURI, "twice");
    bad("pkcs11:token=a%2?" MOD "&pin-value=s3cret", HSM_EURI,
        "percent-encoding");
    bad("pkcs11:token=a%zz?" MOD "&pin-value=s3cret", HSM_EURI,
        "percent-encoding");
    bad("pkcs11:token=a%00b?" MOD "&pin-value=s3cret", HSM_EURI,
        "percent-encoding");
    bad("pkcs11:token=a?" MOD "&pin-value=s3cret%", HSM_EURI,
        "percent-encoding");
    bad("pkcs11:token=a;colour=red?" MOD "&pin-value=s3cret", HSM_EURI,
        "unknown attribute colour");
    bad("pkcs11:token=a?" MOD "&pin-value=s3cret&flavour=x", HSM_EURI,
        "unknown query attribute");
    bad("pkcs11:token=a?module-name=softhsm2&pin-value=s3cret", HSM_EURI,
        "module-name");
    bad("pkcs11:token=a b?" MOD "&pin-value=s3cret", HSM_EURI, "character");
    bad("pkcs11:token=a?" MOD "&pin-value=s3cret&pin-source=file:/x",
        HSM_EURI, "both");
    bad("pkcs11:token=a?" MOD, HSM_EPIN, "no PIN");
    bad("pkcs11:token=a?" MOD "&pin-source=file:/nonexistent/pin", HSM_EPIN,
        "/nonexistent/pin");
    bad("pkcs11:token=a?" MOD "&pin-source=relative/pin", HSM_EURI,
        "absolute");
    bad("pkcs11:tok%65n=a?" MOD "&pin-value=s3cret", HSM_EURI, "unknown");
    bad("pkcs11:=a?" MOD "&pin-value=s3cret", HSM_EURI, "name=value");

    /* --hsm-list: comments, blanks, order kept. */
    f = fopen(pinfile, "w");
    fputs("# HSMs\n\n  pkcs11:token=a?" MOD "&pin-value=1  # first\n"
          "pkcs11:token=b?" MOD "&pin-value=2\n", f);
    fclose(f);
    ok(hsm_urilist_load(&uris, &n, pinfile, &d) == 0 && n == 2 &&
           strcmp(uris[0], "pkcs11:token=a?" MOD "&pin-value=1") == 0 &&
           strncmp(uris[1], "pkcs11:token=b", 14) == 0,
       "--hsm-list reads two URIs, comments and blanks dropped");
    for (size_t i = 0; i < n; i++)
        free(uris[i]);
    free(uris);
    uris = NULL;
    n = 0;
    f = fopen(pinfile, "w");
    fputs("pkcs11:token=a pkcs11:token=b\n", f);
    fclose(f);
    ok(hsm_urilist_load(&uris, &n, pinfile, &d) == HSM_EURI &&
           (t = strstr(d.msg, ":1:")) != NULL,
       "--hsm-list: two URIs on a line refused with FILE:LINE (%s)", d.msg);
    for (size_t i = 0; i < n; i++)
        free(uris[i]);
    free(uris);
    ok(hsm_urilist_load(&uris, &n, "/nonexistent/list", &d) != 0,
       "--hsm-list: missing file refused");
    unlink(pinfile);
    return done_testing();
}

/*
 * tests/hsm/test_keyset.c - key set file (hsm/keyset.c): round trip,
 * atomic save, and one malformed line per reason with FILE:LINE.
 * Keys and tags below were made with dnssec-keygen (BIND 9.18).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hsm/internal.h"
#include "tests/lib/tap.h"

#define EC_PUB "aSPLaKLwSOaWpecfSmVfQwAZyzAnChCPm6DXUcPl+/iCPntt3G8W9L6x" \
               "lm8vRz6x5a4o7yfY4HKhXAg2yKmRNQ=="
#define RSA_PUB "AwEAAdkazpjORGTcSrxAHBeRJZj83UIOfaLJTYHeiO55vbvAwgKVV44w" \
                "x2icwzn0OT1q/Fw/4N5QfWJNwPt3iR9mfYCkCe7l94phqD9d/LT9o6UZ" \
                "uIoEkbEg6Bqbnbj2XSXLoA2IIEJNK1dLhdlgIeVrrmH4YgqlaOcnwjie" \
                "o0RHDhoP"
#define KSK "key ksk1 id=0a0b role=ksk alg=13 flags=257 tag=20504 " \
            "state=active created=1700000000 since=1700000001 pubkey=" EC_PUB
#define ZSK "key zsk1 id=0c0d role=zsk alg=8 flags=256 tag=6306 " \
            "state=published created=1700000002 since=1700000003 pubkey=" \
            RSA_PUB

static char dir[] = "/tmp/zg-test-keyset-XXXXXX";

static char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void bad(const char *text, const char *line_reason)
{
    hsm_keyset_t *ks = NULL;
    hsm_diag_t d = {""};
    char *path = write_file("bad", text), want[600];
    int rc = hsm_keyset_load(&ks, path, &d);
    snprintf(want, sizeof(want), "%s:%s", path, line_reason);
    ok(rc == HSM_EKEYSET && ks == NULL && strcmp(d.msg, want) == 0,
       "malformed: \"%s\" (%s)", line_reason, d.msg);
    hsm_keyset_free(ks);
}

/* Replaces the first FROM in a valid KSK line by TO. */
static char *ksk_with(const char *from, const char *to)
{
    static char buf[2048];
    const char *p = strstr(KSK, from);
    snprintf(buf, sizeof(buf), "zone example.\n%.*s%s%s\n", (int)(p - KSK),
             KSK, to, p + strlen(from));
    return buf;
}

int main(void)
{
    hsm_keyset_t *ks = NULL, *ks2 = NULL;
    hsm_diag_t d = {""};
    char *path, *path2, cmd[1200];
    struct stat st;

    if (mkdtemp(dir) == NULL)
        return 99;
    path = strdup(write_file("ks", "# comment\n\nzone Example\n" KSK
                             "   # trailing comment\n" ZSK "\n"));
    ok(hsm_keyset_load(&ks, path, &d) == 0, "loads a valid key set (%s)",
       d.msg);
    if (ks == NULL)
        return done_testing();
    ok(strcmp(ks->zone, "Example.") == 0 && ks->count == 2,
       "zone gets its trailing dot, two keys");
    ok(ks->keys[0].alg == 13 && ks->keys[0].flags == 257 &&
           ks->keys[0].keytag == 20504 && ks->keys[0].role == HSM_ROLE_KSK &&
           ks->keys[0].state == HSM_STATE_ACTIVE &&
           ks->keys[0].id_len == 2 && ks->keys[0].id[1] == 0x0b &&
           ks->keys[0].pubkey_len == 64 &&
           ks->keys[0].created == 1700000000 &&
           ks->keys[0].state_since == 1700000001,
       "KSK fields");
    ok(ks->keys[1].alg == 8 && ks->keys[1].role == HSM_ROLE_ZSK &&
           ks->keys[1].state == HSM_STATE_PUBLISHED &&
           ks->keys[1].pubkey_len == 132,
       "ZSK fields");
    ok(hsm_keyset_find(ks, "zsk1") == 1 && hsm_keyset_find(ks, "x") == -1,
       "find by label");

    path2 = strdup(write_file("ks2", ""));
    ok(hsm_keyset_save(ks, path2, &d) == 0, "saves");
    ok(hsm_keyset_load(&ks2, path2, &d) == 0 && ks2->count == 2 &&
           strcmp(ks2->zone, ks->zone) == 0 &&
           memcmp(ks2->keys, ks->keys, 2 * sizeof(hsm_key_t)) == 0,
       "round trip gives the same keys");
    ok(stat(path2, &st) == 0 && (st.st_mode & 0777) == 0644,
       "saved file is mode 0644");
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 2", dir);
    ok(system(cmd) == 0, "no temporary file left behind");
    hsm_keyset_free(ks2);
    ks2 = NULL;
    ok(hsm_keyset_save(ks, "/nonexistent/dir/ks", &d) != 0 &&
           strstr(d.msg, "/nonexistent/dir/ks") != NULL,
       "save into a missing directory fails with a message");
    hsm_keyset_free(ks);

    ok(hsm_keyset_new(&ks, "zone.example", &d) == 0 &&
           strcmp(ks->zone, "zone.example.") == 0 && ks->count == 0,
       "new empty key set");
    ok(hsm_keyset_save(ks, path2, &d) == 0 &&
           hsm_keyset_load(&ks2, path2, &d) == 0 && ks2->count == 0,
       "empty key set round trip");
    hsm_keyset_free(ks);
    hsm_keyset_free(ks2);
    ks = NULL;
    ok(hsm_keyset_new(&ks, "a..b", &d) == HSM_EKEYSET && ks == NULL,
       "bad zone name refused");
    ok(hsm_keyset_load(&ks, "/nonexistent/ks", &d) == HSM_EKEYSET &&
           strstr(d.msg, "/nonexistent/ks") != NULL,
       "missing file refused");

    bad("", "1: no \"zone <origin>\" line");
    bad("# only a comment\n", "1: no \"zone <origin>\" line");
    bad(KSK "\n", "1: first line must be \"zone <origin>\"");
    bad("zone a b\n", "1: first line must be \"zone <origin>\"");
    bad("zone a.\nzone b.\n", "2: second zone line");
    bad("zone a.\nkye x\n", "2: unknown record type");
    bad("zone a.\nkey\n", "2: key line needs a label (1-63 printable "
                          "characters)");
    bad(ksk_with("id=0a0b", "id=0a0"), "2: id is not 1-32 bytes of hex");
    bad(ksk_with("id=0a0b", "id=zz"), "2: id is not 1-32 bytes of hex");
    bad(ksk_with("role=ksk", "role=kzk"), "2: role is not ksk, zsk or csk");
    bad(ksk_with("alg=13", "alg=5"), "2: unsupported algorithm");
    bad(ksk_with("alg=13", "alg=x"), "2: alg is not a number");
    bad(ksk_with("flags=257", "flags=258"), "2: flags is not 256 or 257");
    bad(ksk_with("flags=257", "flags=256"),
        "2: flags do not fit the role (257 ksk/csk, 256 zsk)");
    bad(ksk_with("tag=20504", "tag=20505"),
        "2: tag does not match flags, alg and pubkey");
    bad(ksk_with("tag=20504", "tag=-1"), "2: tag is not 0-65535");
    bad(ksk_with("state=active", "state=on"),
        "2: state is not published, active, retired, removed or signing");
    {
        hsm_keyset_t *sk = NULL;
        hsm_diag_t sd = {""};
        char *sp = write_file("signing",
                              ksk_with("state=active", "state=signing"));
        ok(hsm_keyset_load(&sk, sp, &sd) == 0 && sk->count == 1 &&
               sk->keys[0].state == HSM_STATE_SIGNING,
           "state=signing read (%s)", sd.msg);
        hsm_keyset_free(sk);
    }
    bad(ksk_with("created=1700000000", "created=17x"),
        "2: created is not UNIX seconds");
    bad(ksk_with("since=1700000001", "since="), "2: since is not UNIX seconds");
    bad(ksk_with("pubkey=", "pubkey=!"), "2: pubkey is not base64");
    bad(ksk_with("pubkey=aSPL", "pubkey=aSP"), "2: pubkey is not base64");
    bad(ksk_with("pubkey=aSPL", "pubkey=AAAA"),
        "2: pubkey is not a valid key for the algorithm");
    bad(ksk_with(" role=ksk", ""), "2: missing field");
    bad(ksk_with(" role=ksk", " role=ksk role=ksk"), "2: field given twice");
    bad(ksk_with(" role=ksk", " role=ksk colour=red"), "2: unknown field");
    bad(ksk_with(" role=ksk", " role=ksk junk"), "2: field is not name=value");
    bad("zone a.\n" KSK "\n" KSK "\n", "3: duplicate label");
    {
        char twice[2048];
        snprintf(twice, sizeof(twice), "zone a.\n%s\n%s", KSK,
                 ksk_with("ksk1", "ksk2") + strlen("zone example.\n"));
        bad(twice, "3: duplicate id");
    }
    {
        /* Same key, other label and id: same tag. */
        char twice[2048], *l2 = ksk_with("ksk1 id=0a0b", "ksk2 id=0e0f") +
                                strlen("zone example.\n");
        snprintf(twice, sizeof(twice), "zone a.\n%s\n%s", KSK, l2);
        bad(twice, "3: key tag collides with another key of the zone");
    }
    ks = NULL;
    ok(hsm_keyset_load(&ks, path, &d) == 0 && keyset_tag_taken(ks, 20504) &&
           keyset_tag_taken(ks, 6306) && !keyset_tag_taken(ks, 20505) &&
           !keyset_tag_taken(NULL, 1),
       "keyset_tag_taken (what keygen refuses)");
    hsm_keyset_free(ks);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ok(system(cmd) == 0, "clean up");
    free(path);
    free(path2);
    return done_testing();
}

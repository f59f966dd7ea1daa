/* tests/signer/test_nsec3.c - NSEC3 hash against RFC 5155 Appendix A,
 * base32hex against RFC 4648 10, type bitmap against RFC 4034 4.3. */
#include "signer/internal.h"
#include "tests/lib/tap.h"
#include "tests/signer/wire.h"

int main(void)
{
    static const struct {
        const char *name, *hash;
    } v[] = {
        {"example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"},
        {"a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"},
        {"ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"},
        {"ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"},
        {"ns2.example.", "q04jkcevqvmu85r014c7dkba38o0ji5r"},
        {"w.example.", "k8udemvp1j2f7eg6jebps17vp3n8i58h"},
        {"*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"},
        {"x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"},
        {"y.w.example.", "ji6neoaepv8b5o6k4ev33abha8ht9fgc"},
        {"xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"},
    };
    const uint8_t salt[] = {0xaa, 0xbb, 0xcc, 0xdd};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t w[256], h[20];
        char b[40];
        size_t l = wire(v[i].name, w);
        nsec3_hash(w, l, salt, sizeof(salt), 12, h);
        base32hex_encode(h, 20, b);
        ok(strcmp(b, v[i].hash) == 0, "H(%s) = %s (got %s)", v[i].name,
           v[i].hash, b);
    }
    static const struct {
        const char *in, *out;
    } b32[] = {{"", ""},         {"f", "co"},         {"fo", "cpng"},
               {"foo", "cpnmu"}, {"foob", "cpnmuog"}, {"fooba", "cpnmuoj1"},
               {"foobar", "cpnmuoj1e8"}};
    for (size_t i = 0; i < sizeof(b32) / sizeof(b32[0]); i++) {
        char out[32];
        base32hex_encode((const uint8_t *)b32[i].in, strlen(b32[i].in), out);
        ok(strcmp(out, b32[i].out) == 0, "base32hex(\"%s\") = \"%s\"",
           b32[i].in, b32[i].out);
    }
    /* base32hex keeps hash order: the chain can sort by raw hash */
    uint8_t lo[20] = {0}, hi[20];
    memset(hi, 0xff, 20);
    lo[19] = 1;
    char sl[40], sh[40];
    base32hex_encode(lo, 20, sl);
    base32hex_encode(hi, 20, sh);
    ok(strcmp(sl, sh) < 0, "base32hex preserves order");

    /* RFC 4034 4.3: A MX RRSIG NSEC TYPE1234 */
    uint16_t types[] = {1, 15, 46, 47, 1234};
    uint8_t bm[64];
    size_t n = type_bitmap(types, 5, bm);
    static const uint8_t want[] = {
        0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x20};
    ok(n == sizeof(want) && memcmp(bm, want, n) == 0,
       "type bitmap of RFC 4034 4.3");
    ok(type_bitmap(NULL, 0, bm) == 0, "empty bitmap (ENT)");
    /* collision detection over sorted hash entries */
    struct {
        uint8_t h[20];
        uint32_t pad;
    } e[4];
    memset(e, 0, sizeof(e));
    for (int i = 0; i < 4; i++)
        e[i].h[0] = (uint8_t)(i * 10);
    ok(nsec3_find_collision((const uint8_t *)e, sizeof(e[0]), 4) == 0,
       "no collision in distinct hashes");
    e[3].h[0] = 20;
    ok(nsec3_find_collision((const uint8_t *)e, sizeof(e[0]), 4) == 3,
       "collision found at entry 3");
    ok(nsec3_find_collision((const uint8_t *)e, sizeof(e[0]), 1) == 0,
       "one entry cannot collide");
    return done_testing();
}

/* tests/signer/test_rrsig.c - RRSIG RDATA header and signed data (RFC 4034
 * 3.1, 3.1.8.1, 6.2), canonical RDATA, jitter bounds, and the printer. */
#include <stdlib.h>

#include "signer/internal.h"
#include "tests/lib/tap.h"

int main(void)
{
    static const uint8_t signer[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
    rrsig_hdr_t h = {.covered = T_MX, .alg = 13, .labels = 2,
                     .orig_ttl = 3600, .expiration = 0x5f5e1000,
                     .inception = 0x5f000000, .keytag = 12345,
                     .signer = signer, .signer_len = sizeof(signer)};
    uint8_t hdr[300];
    size_t hl = rrsig_rdata_hdr(&h, hdr);
    static const uint8_t want_hdr[] = {
        0x00, 0x0f, 13, 2, 0x00, 0x00, 0x0e, 0x10, 0x5f, 0x5e, 0x10, 0x00,
        0x5f, 0x00, 0x00, 0x00, 0x30, 0x39, 7, 'e', 'x', 'a', 'm', 'p',
        'l', 'e', 0};
    ok(hl == sizeof(want_hdr) && memcmp(hdr, want_hdr, hl) == 0,
       "RRSIG RDATA header layout");

    /* MX RDATA with an uppercase name is lowercased (RFC 4034 6.2) */
    uint8_t mx[] = {0, 10, 4, 'M', 'a', 'I', 'L', 7, 'E', 'x', 'a', 'm', 'p',
                    'l', 'e', 0};
    ok(rdata_canonicalize(T_MX, mx, sizeof(mx)) == 0 &&
           memcmp(mx + 3, "mail", 4) == 0 && memcmp(mx + 8, "example", 7) == 0,
       "MX exchange lowercased");
    uint8_t txt[] = {3, 'A', 'b', 'C'};
    rdata_canonicalize(T_TXT, txt, sizeof(txt));
    ok(memcmp(txt + 1, "AbC", 3) == 0, "TXT left as is");
    uint8_t bad[] = {0, 10, 9, 'x'};
    ok(rdata_canonicalize(T_MX, bad, sizeof(bad)) != 0, "truncated MX refused");

    /* signed data = header || RR(1) || RR(2) with owner, type, class,
     * original TTL, rdlength, RDATA */
    arena_t a = {0};
    arena_put(&a, hdr, hl);
    static const uint8_t owner[] = {1, 'a', 7, 'e', 'x', 'a', 'm', 'p',
                                    'l', 'e', 0};
    uint8_t rd1[] = {0, 5, 0};
    uint8_t rd2[] = {0, 10, 0};
    rrsig_signed_rr(&a, owner, sizeof(owner), T_MX, 3600, rd1, 3);
    rrsig_signed_rr(&a, owner, sizeof(owner), T_MX, 3600, rd2, 3);
    size_t rr = sizeof(owner) + 10 + 3;
    ok(a.len == hl + 2 * rr, "signed data length");
    const uint8_t *p = a.buf + hl;
    ok(memcmp(p, owner, sizeof(owner)) == 0 && get16(p + 11) == T_MX &&
           get16(p + 13) == 1 && get32(p + 15) == 3600 && get16(p + 19) == 3 &&
           memcmp(p + 21, rd1, 3) == 0,
       "first RR in canonical wire form");
    ok(memcmp(a.buf + hl + rr + 21, rd2, 3) == 0, "second RR follows");
    arena_free(&a);

    /* jitter: deterministic, within [0, max] */
    uint8_t key[] = {'e', 'x', 0};
    int64_t j1 = rrsig_jitter(key, 3, T_A, 86400);
    ok(j1 == rrsig_jitter(key, 3, T_A, 86400), "jitter deterministic");
    int spread = 0, inrange = 1;
    for (uint16_t t = 1; t < 200; t++) {
        int64_t j = rrsig_jitter(key, 3, t, 1000);
        inrange &= j >= 0 && j <= 1000;
        spread |= j != j1 % 1001;
    }
    ok(inrange, "jitter within bounds");
    ok(spread, "jitter spreads");
    ok(rrsig_jitter(key, 3, T_A, 0) == 0, "no jitter when max is 0");

    /* printer: a known type and RFC 3597 generic form */
    char buf[70000];
    uint8_t a4[] = {192, 0, 2, 1};
    rr_to_text(owner, sizeof(owner), T_A, 300, a4, 4, buf);
    ok(strcmp(buf, "a.example. 300 IN A 192.0.2.1\n") == 0, "A printed: %s",
       buf);
    rr_to_text(owner, sizeof(owner), 65400, 300, a4, 4, buf);
    ok(strcmp(buf, "a.example. 300 IN TYPE65400 \\# 4 C0000201\n") == 0,
       "generic printed");
    uint8_t badlen[] = {1, 2, 3};
    rr_to_text(owner, sizeof(owner), T_A, 300, badlen, 3, buf);
    ok(strncmp(buf, "a.example. 300 IN TYPE1 \\# 3 010203", 35) == 0,
       "malformed A falls back to generic form");
    uint8_t t2[] = {2, 'h', '"', 1, 'x'};
    rr_to_text(owner, sizeof(owner), T_TXT, 1, t2, 5, buf);
    ok(strcmp(buf, "a.example. 1 IN TXT \"h\\\"\" \"x\"\n") == 0,
       "TXT quoting: %s", buf);
    return done_testing();
}

/*
 * tests/hsm/test_alg.c - algorithms, key tags (RFC 4034 Appendix B) and
 * ECDSA signature encodings (RFC 6605) in hsm/alg.c.
 * Key tag vectors: RFC 4034 section 5.4 (dskey.example.com, 60485) and
 * two keys made with dnssec-keygen (BIND 9.18), tags from their names.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>

#include "hsm/internal.h"
#include "tests/lib/tap.h"

static uint16_t tag_of(uint16_t flags, uint8_t alg, const char *b64)
{
    hsm_key_t k;
    uint8_t rd[4 + HSM_PUBKEY_MAX];
    memset(&k, 0, sizeof(k));
    k.flags = flags;
    k.alg = alg;
    if (b64_decode(b64, k.pubkey, sizeof(k.pubkey), &k.pubkey_len) != 0)
        return 0;
    return hsm_keytag(rd, hsm_key_dnskey_rdata(&k, rd));
}

static void der_cases(void)
{
    uint8_t rs[64], rs2[64], *der = NULL;
    size_t der_len = 0;
    /* r with a high bit (DER adds 00), s short (DER drops leading 00s). */
    for (size_t i = 0; i < 32; i++) {
        rs[i] = (uint8_t)(0x80 + i);
        rs[32 + i] = i < 3 ? 0 : (uint8_t)i;
    }
    ok(hsm_ecdsa_rs_to_der(rs, 64, &der, &der_len) == 0 && der[0] == 0x30 &&
           der[2] == 0x02 && der[3] == 33 && der[4] == 0x00 &&
           der[4 + 33] == 0x02 && der[5 + 33] == 29,
       "r||s to DER: r gets a 00 pad, s loses its leading zeros");
    ok(hsm_ecdsa_der_to_rs(der, der_len, 32, rs2) == 0 &&
           memcmp(rs, rs2, 64) == 0,
       "DER back to fixed-width r||s restores leading zeros");
    ok(hsm_ecdsa_der_to_rs(der, der_len, 16, rs2) != 0,
       "DER to r||s refuses integers wider than the curve");
    ok(hsm_ecdsa_der_to_rs(der, der_len - 1, 32, rs2) != 0,
       "DER to r||s refuses a truncated signature");
    {
        uint8_t longer[128];
        memcpy(longer, der, der_len);
        longer[der_len] = 0;
        ok(hsm_ecdsa_der_to_rs(longer, der_len + 1, 32, rs2) != 0,
           "DER to r||s refuses trailing bytes");
    }
    OPENSSL_free(der);
}

/* Real signatures: OpenSSL signs (DER), convert, verify via DNSKEY. */
static void sign_verify(uint8_t alg)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                      alg == 13 ? "P-256" : "P-384");
    EVP_PKEY *pub = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t point[97], der[128], rs[96], data[100];
    size_t plen = 0, dlen = sizeof(der), w = alg == 13 ? 32 : 48;
    int good;

    memset(data, 0x5a, sizeof(data));
    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point,
                                    sizeof(point), &plen);
    EVP_DigestSignInit(md, NULL, alg == 13 ? EVP_sha256() : EVP_sha384(),
                       NULL, key);
    EVP_DigestSign(md, der, &dlen, data, sizeof(data));
    ok(hsm_ecdsa_der_to_rs(der, dlen, w, rs) == 0 &&
           alg_pkey_from_dnskey(alg, point + 1, plen - 1, &pub) == 0,
       "alg %u: OpenSSL DER signature converts; key from DNSKEY field", alg);
    good = pub != NULL && alg_verify(pub, alg, data, sizeof(data), rs,
                                     2 * w) == 0;
    ok(good, "alg %u: r||s verifies against the DNSKEY key", alg);
    rs[5] ^= 1;
    ok(pub != NULL && alg_verify(pub, alg, data, sizeof(data), rs, 2 * w) ==
                          HSM_EMISMATCH,
       "alg %u: a flipped bit does not verify", alg);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
    EVP_MD_CTX_free(md);
}

int main(void)
{
    uint8_t out[HSM_PUBKEY_MAX], e3[3] = {1, 0, 1}, n[4] = {0, 0xc1, 2, 3};
    uint8_t ebig[300];
    size_t len = 0;

    ok(tag_of(256, 5,
              "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9B"
              "MzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6D"
              "hweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==") == 60485,
       "key tag of RFC 4034 5.4 dskey.example.com is 60485");
    ok(tag_of(256, 8,
              "AwEAAdkazpjORGTcSrxAHBeRJZj83UIOfaLJTYHeiO55vbvAwgKVV44wx2icwzn0"
              "OT1q/Fw/4N5QfWJNwPt3iR9mfYCkCe7l94phqD9d/LT9o6UZuIoEkbEg6Bqbnbj2"
              "XSXLoA2IIEJNK1dLhdlgIeVrrmH4YgqlaOcnwjieo0RHDhoP") == 6306,
       "key tag of a dnssec-keygen RSASHA256 ZSK is 6306");
    ok(tag_of(257, 13,
              "aSPLaKLwSOaWpecfSmVfQwAZyzAnChCPm6DXUcPl+/iCPntt3G8W9L6xlm8vRz6x"
              "5a4o7yfY4HKhXAg2yKmRNQ==") == 20504,
       "key tag of a dnssec-keygen ECDSAP256SHA256 KSK is 20504");
    ok(tag_of(256, 13,
              "aSPLaKLwSOaWpecfSmVfQwAZyzAnChCPm6DXUcPl+/iCPntt3G8W9L6xlm8vRz6x"
              "5a4o7yfY4HKhXAg2yKmRNQ==") == 20503,
       "the flags are part of the key tag");

    ok(hsm_alg_parse("8") == 8 && hsm_alg_parse("RSASHA256") == 8 &&
           hsm_alg_parse("rsasha512") == 10 &&
           hsm_alg_parse("ECDSAP256SHA256") == 13 &&
           hsm_alg_parse("14") == 14 && hsm_alg_parse("ED25519") == 15,
       "algorithm names and numbers");
    ok(hsm_alg_parse("7") == HSM_EALG && hsm_alg_parse("") == HSM_EALG &&
           hsm_alg_parse("13x") == HSM_EALG && hsm_alg_parse("DSA") == HSM_EALG,
       "unknown algorithms refused");
    ok(strcmp(hsm_alg_name(14), "ECDSAP384SHA384") == 0 &&
           hsm_alg_name(3) == NULL, "algorithm mnemonics");

    ok(alg_rsa_pub(e3, 3, n, 4, out, &len) == 0 && len == 7 && out[0] == 3 &&
           out[4] == 0xc1, "RFC 3110: short exponent, leading zero dropped");
    memset(ebig, 1, sizeof(ebig));
    ok(alg_rsa_pub(ebig, 300, n, 4, out, &len) == 0 && out[0] == 0 &&
           out[1] == 1 && out[2] == 44 && len == 3 + 300 + 3,
       "RFC 3110: exponent over 255 bytes gets 0 and a 2-byte length");

    der_cases();
    sign_verify(13);
    sign_verify(14);
    return done_testing();
}

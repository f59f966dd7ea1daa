/*
 * signer/rdata.c - RDATA layouts of the types zonesign prints by name, type
 * mnemonics, and the RFC 4034 6.2 lowercasing of names inside RDATA.
 *
 * A layout is a string of field codes:
 *   N domain name      C u8      S u16      L u32      4 IPv4   6 IPv6
 *   s character-string            M character-strings to the end
 *   B base64 to the end           X hex to the end (at least one octet)
 *   T type (u16 mnemonic)         b type bitmap to the end
 *   H u8-length hex ("-" if empty) Z u8-length base32hex
 *   E RRSIG time (u32, YYYYMMDDHHMMSS)
 *   a CAA tag (u8-length, unquoted) q the rest as one quoted string
 * Types without a layout are printed in RFC 3597 generic form.
 */
#include <stdio.h>

#include "signer/internal.h"

struct layout {
    uint16_t type;
    const char *name;
    const char *layout;
    bool lower; /* names lowercased in canonical form (RFC 4034 6.2) */
};

static const struct layout layouts[] = {
    {1, "A", "4", false},
    {2, "NS", "N", true},
    {3, "MD", "N", true},
    {4, "MF", "N", true},
    {5, "CNAME", "N", true},
    {6, "SOA", "NNLLLLL", true},
    {7, "MB", "N", true},
    {8, "MG", "N", true},
    {9, "MR", "N", true},
    {12, "PTR", "N", true},
    {13, "HINFO", "ss", false},
    {14, "MINFO", "NN", true},
    {15, "MX", "SN", true},
    {16, "TXT", "M", false},
    {17, "RP", "NN", true},
    {18, "AFSDB", "SN", true},
    {21, "RT", "SN", true},
    {26, "PX", "SNN", true},
    {28, "AAAA", "6", false},
    {33, "SRV", "SSSN", true},
    {35, "NAPTR", "SSsssN", true},
    {36, "KX", "SN", true},
    {39, "DNAME", "N", true},
    {43, "DS", "SCCX", false},
    {44, "SSHFP", "CCX", false},
    {46, "RRSIG", "TCCLEESNB", true},
    {47, "NSEC", "Nb", true},
    {48, "DNSKEY", "SCCB", false},
    {50, "NSEC3", "CCSHZb", false},
    {51, "NSEC3PARAM", "CCSH", false},
    {52, "TLSA", "CCCX", false},
    {53, "SMIMEA", "CCCX", false},
    {59, "CDS", "SCCX", false},
    {60, "CDNSKEY", "SCCB", false},
    {61, "OPENPGPKEY", "B", false},
    {63, "ZONEMD", "LCCX", false},
    {99, "SPF", "M", false},
    {256, "URI", "SSq", false},
    {257, "CAA", "Caq", false},
};

/* Mnemonics of types printed generically (RFC 3597 form for the RDATA). */
static const struct {
    uint16_t type;
    const char *name;
} names[] = {
    {10, "NULL"},  {11, "WKS"},      {19, "X25"},  {20, "ISDN"},
    {24, "SIG"},   {25, "KEY"},      {29, "LOC"},  {30, "NXT"},
    {37, "CERT"},  {38, "A6"},       {42, "APL"},  {45, "IPSECKEY"},
    {49, "DHCID"}, {55, "HIP"},      {62, "CSYNC"}, {64, "SVCB"},
    {65, "HTTPS"}, {104, "NID"},     {105, "L32"}, {106, "L64"},
    {107, "LP"},   {108, "EUI48"},   {109, "EUI64"},
};

static const struct layout *find(uint16_t type)
{
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
        if (layouts[i].type == type)
            return &layouts[i];
    return NULL;
}

const char *rdata_layout(uint16_t type)
{
    const struct layout *l = find(type);
    return l ? l->layout : NULL;
}

const char *type_name(uint16_t type, char *buf)
{
    const struct layout *l = find(type);
    if (l)
        return l->name;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].type == type)
            return names[i].name;
    snprintf(buf, 16, "TYPE%u", type);
    return buf;
}

int rdata_canonicalize(uint16_t type, uint8_t *rd, size_t len)
{
    const struct layout *l = find(type);
    if (!l || !l->lower)
        return 0;
    size_t o = 0;
    for (const char *c = l->layout; *c; c++) {
        size_t n;
        switch (*c) {
        case 'N':
            n = name_wire_len(rd + o, len - o);
            if (n == 0)
                return -1;
            name_lower(rd + o);
            o += n;
            break;
        case 'C': o += 1; break;
        case 'S': case 'T': o += 2; break;
        case 'L': case 'E': o += 4; break;
        case 's':
            if (o >= len)
                return -1;
            o += 1 + (size_t)rd[o];
            break;
        default: /* to the end: no name after it in these layouts */
            return 0;
        }
        if (o > len)
            return -1;
    }
    return 0;
}

/* tests/signer/test_chunks.c - the zone-text chunker pchunks_make
 * (signer/pindex.c) against a plain reference lexer and a reimplementation
 * of its cut rule: cuts only at line starts outside parentheses, the right
 * line numbers and digests (XXH3-128 under the index's secret), unfit
 * texts refused, one thread and two cutting a text of more than 16 MiB the
 * same way, and the secret changing every digest but no cut. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"
#include "tests/lib/splitmix.h"
#include "tests/lib/tap.h"

/* Must match CHUNK_EVERY in signer/pindex.c. */
#define CHUNK_EVERY 2

static uint64_t rng = 0x243f6a8885a308d3u; /* fixed seed */
static uint64_t rnd(void)
{
    return splitmix64(&rng);
}
static unsigned rn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* The index's secret the texts are cut under (fixed: the same run on
 * every machine). */
static uint8_t tkey[PIDX_KEY];
static void key_fill(uint8_t *k, uint64_t seed)
{
    for (size_t i = 0; i < PIDX_KEY; i += 8) {
        uint64_t v = splitmix64(&seed);
        memcpy(k + i, &v, 8);
    }
}

/* A growing text. */
struct tb {
    char *p;
    size_t n, cap;
};
static void tb_put(struct tb *t, const char *s, size_t l)
{
    if (t->n + l > t->cap) {
        t->cap = (t->n + l) * 2 + 256;
        if (!(t->p = realloc(t->p, t->cap)))
            abort();
    }
    memcpy(t->p + t->n, s, l);
    t->n += l;
}
static void tb_str(struct tb *t, const char *s)
{
    tb_put(t, s, strlen(s));
}
static void tb_ch(struct tb *t, char c)
{
    tb_put(t, &c, 1);
}
static void tb_rand(struct tb *t, const char *set, unsigned l)
{
    for (unsigned i = 0; i < l; i++)
        tb_ch(t, set[rnd() % strlen(set)]);
}

/* Records of a TLD-like zone, whole lines, the first 8 plain ones; in
 * them \1 is this record's owner label, \2 another, \3 the inside of a
 * quoted string, \4 hex, \5 a comment, \6 the middle lines of an SOA. */
static const char *const recs[] = {
    "\1 NS ns1.example.net.\n",
    "\1 NS ns1.example.net.\n\tNS ns2.example.net.\n",
    "ns1.\1 A 192.0.2.1\n",
    " DS 12345 8 2 \4\n",
    ";\5\n",
    "\n",
    "   \n",
    "\1 TXT \"\3\"\n",
    "\1 SOA ns1.example.net. hostmaster.example.net. (\6\n)\n",
    "\1 SOA ns1.example.net. hostmaster.example.net. (\6\n 3600 )\n",
    "\1 TXT ( \"\3\n\3\" \"\3\" )\n",
    "\1 TXT ( \"\3\n\3\" \"\3\" ) ; ( a comment\n",
    "\1 TXT ( \"\3\n\3\" \"\3\" ) \"(\"\n",
    "\1 TXT ( \"\3\n\3\" \"\3\" ) ( x\nzz y )\n",
    "\1 NS ns1.example.net. ; ( not a group\n",
    "\1 TXT \"(\" \")\" \"a;(b\" \"(\"\n",
    "\1 TXT a\\\"b \"c\\\"(d\\\\\"\n",
    "\1 TXT \"x\" \\\n\2 A 192.0.2.2\n",
    "\1.example. NS ns1.example.net.\n",
    "ns1.\1.example. A 192.0.2.1\n",
    "\1 TXT a\\(b c\\)\n",
    "\1 TXT (\n\"a)\" ; ) in a comment\nzz ( \"b\" )\n\2 )\n",
    "a\\.b.\1 A 192.0.2.3\n",
    "\1\\.x A 192.0.2.3\n",
    "\1 TXT ( \"a\nb\" \"c\" )\n",
    "\1 TXT \"\3\" \"\3\" \"\3\"\n",
    "@ NS ns1.example.net.\n",
    "*.\1 A 192.0.2.4\n",
    "\tTXT \"x\" ( \"y\"\n \"z\" )\n",
};
static void record(struct tb *t, bool hard)
{
    static const char *const q[] = {"\\\"", "\\\\", "(", ")", ";"};
    unsigned d = rn(300), r;
    char num[24];
    for (const char *p = recs[rn(hard ? sizeof(recs) / sizeof(recs[0]) : 8)];
         *p; p++) {
        switch (*p) {
        case 1:
        case 2:
            snprintf(num, sizeof(num), "name-%u", *p == 1 ? d : rn(300));
            tb_str(t, num);
            break;
        case 3:
            for (unsigned i = rn(70); i-- > 0;)
                (r = rn(16)) < 5 ? tb_str(t, q[r])
                                 : tb_rand(t, "abcxyz019 .", 1);
            break;
        case 4:
            tb_rand(t, "0123456789ABCDEF", rn(130));
            break;
        case 5:
            tb_rand(t, "abc XYZ ()\"\\;.", rn(200));
            break;
        case 6:
            for (unsigned i = rn(5); i-- > 0;) {
                snprintf(num, sizeof(num), "\n%s%u", rn(2) ? " " : "",
                         (unsigned)rnd());
                tb_str(t, num);
                if (rn(2)) /* a comment with parentheses and a quote */
                    tb_str(t, " ; ( \" )) "), tb_rand(t, "abc ()", rn(70));
            }
            break;
        default:
            tb_ch(t, *p);
        }
    }
}

/* A text of TARGET octets, MODE 0: ending in a newline, 1: not; 2: about
 * TARGET, the last record's newline dropped. */
static void gen(struct tb *t, size_t target, bool hard, int mode)
{
    t->n = 0;
    if (target > 40 && rn(4) == 0)
        tb_str(t, "$ORIGIN example.\n$TTL 3600\n");
    for (;;) {
        size_t s = t->n;
        record(t, hard);
        if (t->n + (mode == 1) > target) {
            t->n = s;
            break;
        }
    }
    if (mode == 2) {
        t->n -= t->n > 0 && t->p[t->n - 1] == '\n';
    } else if (target - t->n == 1 && mode == 0) {
        tb_ch(t, '\n');
    } else if (target > t->n) { /* a comment or a bare owner to fill */
        tb_ch(t, rn(2) ? ';' : 'z');
        while (t->n < target - (mode == 0))
            tb_ch(t, 'x');
        if (mode == 0)
            tb_ch(t, '\n');
    }
}

/* The reference lexer, one octet at a time.  AT[ls] for each line start
 * LS (and len): LEX_OK if a cut may fall there (outside parentheses,
 * quotes and escapes, not after a line ending in a backslash), LEX_OPENS
 * if a group opens on the line.  Returns whether the text is fit: no
 * quoted string open at a line end outside parentheses, every '('
 * closed, no string open at the end. */
enum { LEX_OK = 1, LEX_OPENS = 2 };
static bool ref_lex(const char *t, size_t len, uint8_t *at)
{
    int depth = 0;
    bool q = false, com = false, esc = false, fit = true;
    for (size_t i = 0, ls = 0;; i++) {
        if (i == 0 || t[i - 1] == '\n')
            at[ls = i] =
                depth == 0 && !q && !esc && !(i >= 2 && t[i - 2] == '\\')
                    ? LEX_OK
                    : 0;
        if (i == len)
            break;
        char c = t[i];
        if (esc)
            esc = false;
        else if (com)
            com = c != '\n';
        else if (c == '\\')
            esc = true;
        else if (q)
            q = c != '"';
        else if (c == '"')
            q = true;
        else if (c == ';')
            com = true;
        else if (c == '(' && depth++ == 0)
            at[ls] |= LEX_OPENS;
        else if (c == ')' && depth > 0)
            depth--;
        if (c == '\n' && q && depth == 0)
            fit = false;
    }
    return fit && depth == 0 && !q;
}

static bool owner_ch(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '*' || c == '_' || c == '-' ||
           c == '@' || c == '\\';
}

/* The documented cut rule: before an owner line (owner character first,
 * a cut allowed there by the lexer) whose group (last label) hashes to 0
 * modulo CHUNK_EVERY and differs from the previous owner line's; never
 * before the first line or an absolute owner.  Not in the comment of
 * pindex.c but in its code: a line on which a group opens counts as
 * inside the group (no cut before it, not an owner line). */
static size_t ref_cuts(const char *t, size_t len, const uint8_t *at,
                       uint64_t *out)
{
    size_t n = 0, pgl = 0;
    const char *pg = NULL;
    for (size_t ls = 0, le; ls < len; ls = le + 1) {
        for (le = ls; le < len && t[le] != '\n';)
            le++;
        if (!owner_ch(t[ls]) || at[ls] != LEX_OK)
            continue;
        size_t i = ls, g = ls;
        for (; i < le && t[i] != ' ' && t[i] != '\t'; i++)
            if (t[i] == '\\')
                i++;
            else if (t[i] == '.')
                g = i + 1;
        i = i > le ? le : i;
        size_t gl = i > g ? i - g : 0;
        if (t[i - 1] != '.' && ls > 0 &&
            !(pg && pgl == gl && memcmp(pg, t + g, gl) == 0) &&
            XXH3_64bits(t + g, gl) % CHUNK_EVERY == 0)
            out[n++] = ls;
        pg = t + g;
        pgl = gl;
    }
    return n;
}

enum { P_FIT, P_OFF, P_LS, P_GROUP, P_BS, P_LINE, P_DG, P_RULE, NP };
static const char *const pname[NP] = {
    "fit exactly when the reference lexer says so",
    "off[0] == 0, off strictly increasing, off[n] == len",
    "every cut at a line start",
    "no cut inside a parenthesised group, quote or escape (reference lexer)",
    "no cut after a line ending in a backslash",
    "line[k] == 1 + newlines before off[k]",
    "dg[k] == XXH3-128 of [off[k], off[k+1]) under the secret",
    "cuts exactly where the reimplemented rule puts them"};
static unsigned bad[NP], nchecked, ncuts;

static void diag_text(const char *t, size_t len)
{
    printf("#   text (%zu octets): \"", len); /* escaped, cut at 800 */
    for (size_t i = 0; i < len && i < 800; i++)
        printf(t[i] == '\n'   ? "\\n"
               : t[i] == '"'  ? "\\\""
               : t[i] == '\\' ? "\\\\"
                              : "%c",
               t[i]);
    printf(len > 800 ? "\"...\n" : "\"\n");
}
static void fail(int p, const char *t, size_t len, size_t at)
{
    if (bad[p]++ == 0) {
        printf("# first break of '%s' at offset %zu\n", pname[p], at);
        diag_text(t, len);
    }
}

/* Checks pchunks_make's answer R, PC on the text T against the reference. */
static void check(const char *t, size_t len, int r, const struct pchunks *pc)
{
    size_t nl = 1, n = pc->n;
    for (size_t i = 0; i < len; i++)
        nl += t[i] == '\n';
    uint8_t *at = malloc(len + 1);
    uint64_t *want = malloc(nl * sizeof(*want));
    if (!at || !want)
        abort();
    bool fit = ref_lex(t, len, at), offs = r == 0 && n >= 1;
    nchecked++;
    if ((r == 0) != fit)
        fail(P_FIT, t, len, 0);
    if (r != 0 || !fit)
        goto out;
    offs = offs && pc_off(pc, 0) == 0 && pc_off(pc, n) == len;
    for (size_t k = 0; offs && k < n; k++)
        offs = pc_off(pc, k) < pc_off(pc, k + 1);
    if (!offs) {
        fail(P_OFF, t, len, 0);
        goto out;
    }
    ncuts += (unsigned)(n - 1);
    size_t lines = 1, i = 0;
    for (size_t k = 0; k < n; k++) {
        size_t o = pc_off(pc, k);
        for (; i < o; i++)
            lines += t[i] == '\n';
        if (k > 0 && t[o - 1] != '\n')
            fail(P_LS, t, len, o);
        else if (k > 0 && !(at[o] & LEX_OK))
            fail(P_GROUP, t, len, o);
        if (k > 0 && o >= 2 && t[o - 2] == '\\')
            fail(P_BS, t, len, o);
        if (pc_line(pc, k) != lines)
            fail(P_LINE, t, len, o);
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_withSecret(
                                         t + o, pc_off(pc, k + 1) - o, tkey,
                                         PIDX_KEY));
        if (memcmp(c.digest, pc_dg(pc, k), PIDX_DIGEST) != 0)
            fail(P_DG, t, len, o);
    }
    size_t nw = ref_cuts(t, len, at, want);
    bool same = nw == n - 1;
    for (size_t k = 0; same && k < nw; k++)
        same = want[k] == pc_off(pc, k + 1);
    if (!same)
        fail(P_RULE, t, len, 0);
out:
    free(at);
    free(want);
}

/* pchunks_make on a private copy of exactly LEN octets (ASan sees any
 * read past its end) */
static int make(const char *t, size_t len, struct pchunks *pc)
{
    char *c = malloc(len);
    if (!c)
        abort();
    int r = pchunks_make(memcpy(c, t, len), len, false, tkey, pc);
    free(c);
    return r;
}

/* OUT: S with %0 .. %3 replaced by labels whose group hash modulo
 * CHUNK_EVERY is 0 (%0, %2, %3: three different ones) or not (%1). */
static void subst(char *out, const char *s)
{
    static char l[4][16];
    for (unsigned i = 0, k = 0; k < 4 && !l[3][0]; i++) {
        int n = snprintf(l[k], 16, "g%u", i);
        if ((XXH3_64bits(l[k], (size_t)n) % CHUNK_EVERY == 0) == (k != 1))
            k++;
    }
    for (; *s; s++)
        out += *s == '%' ? sprintf(out, "%s", l[*++s - '0']) : (*out = *s, 1);
    *out = 0;
}

int main(void)
{
    struct tb t = {0};
    key_fill(tkey, 0x13198a2e03707344u);
    /* 1. properties over generated texts: lengths around the 64-octet
     * blocks, with and without a final newline, plain and hard records */
    static const size_t exact[] = {1,   2,   5,   63,  64,  65,  127,
                                   128, 129, 191, 192, 193, 255, 256};
    for (unsigned i = 0; i < 6000; i++) {
        int mode = (int)rn(3);
        size_t target =
            i % 3 == 0 ? exact[i / 3 % 14] : 1 + rn(i % 3 == 1 ? 300 : 6000);
        gen(&t, target, i % 4 != 0, i % 3 == 0 ? mode % 2 : mode);
        if (t.n == 0)
            continue;
        struct pchunks pc;
        int r = make(t.p, t.n, &pc);
        check(t.p, t.n, r, &pc);
        pchunks_free(&pc);
    }

    /* 2. unfit texts, and fit ones that look close (the one cut before
     * their last line), after every length 0..140 of a line before */
    static const struct {
        const char *text, *what;
        bool fit;
    } u[] = {
        {"%1 NS a.\n%1 TXT \"open\n%1 NS b.\n", "quote open at a line end", 0},
        {"%1 NS a.\n%1 TXT \"open", "quote open at the end", 0},
        {"%1 NS a.\n%1 SOA ns h ( 1 2\n 3 4\n%1 NS b.\n", "'(' never closed",
         0},
        {"%1 NS a.\n%1 TXT ( \"x)\" ; )\n%1 NS b.\n",
         "')' only in a quote and a comment", 0},
        {"%1 NS a.\n%1 TXT ( \"never closed\n )\n",
         "quote in a group never closed", 0},
        {"%1 NS a.\n%0 NS b.\n$TTL 300\n%1 NS c.\n", "$TTL after the first cut",
         0},
        {"%1 NS a.\n%1 TXT ( \"open\nstill\" )\n%0 NS b.\n",
         "quote open in a group that closes", 1},
        {"%1 NS a. ; ( not a group\n%0 NS b.\n", "'(' in a comment", 1},
        {"%1 TXT \"(\" \"((\"\n%0 NS b.\n", "'(' in a quoted string", 1},
        {"%1 TXT \\( \"\\\"(\"\n%0 NS b.\n", "escaped '(' and '\"'", 1},
        {"$TTL 300\n%1 NS a.\n%0 NS b.\n", "$TTL before the first cut", 1},
        /* the same, with a '(' or a string before on the line */
        {"%1 NS a.\n%1 TXT \"(\" \"open\n%1 NS b.\n",
         "quote open at a line end after \"(\"", 0},
        {"%1 NS a.\n%1 TXT \\( \"open\n%1 NS b.\n",
         "quote open at a line end after \\(", 0},
        {"%1 NS a.\n%1 TXT ( x ) \"open\n%1 NS b.\n",
         "quote open at a line end after ( x )", 0},
        {"%1 NS a.\n%0 TXT \"(\"\n", "'(' in a quoted string on the cut line",
         1},
        {"%1 NS a.\n%0 TXT \\(\n", "escaped '(' on the cut line", 1},
        {"%1 TXT ( \"a\nb\" ) ( x\n%0 y )\n%0 NS b.\n",
         "a group opened where a string over lines closed", 1},
        {"%1 TXT ( \"a\nb\" ) \"(\"\n%0 NS b.\n",
         "'(' in a string after a string over lines", 1},
    };
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        char s[512];
        subst(s, u[i].text);
        size_t sl = strlen(s), cut = (size_t)(strrchr(s, '\n') - s);
        while (cut > 0 && s[cut - 1] != '\n')
            cut--;
        unsigned nbad = 0;
        for (unsigned pad = 0; pad <= 140; pad++) {
            t.n = 0;
            if (pad > 0) {
                tb_ch(&t, ';');
                tb_rand(&t, "x", pad - 1);
                tb_ch(&t, '\n');
            }
            size_t base = t.n;
            tb_put(&t, s, sl);
            struct pchunks pc;
            int r = make(t.p, t.n, &pc);
            bool good = !u[i].fit
                            ? r == -1
                            : r == 0 && pc.n == 2 && pc_off(&pc, 1) == base + cut;
            if (!good && nbad++ == 0)
                diag_text(t.p, t.n);
            pchunks_free(&pc);
        }
        ok(nbad == 0, "%s: %s (141 alignments, %u wrong)",
           u[i].fit ? "fit" : "unfit", u[i].what, nbad);
    }

    /* 3. one thread and two: texts of 17 MiB (two halves above 16 MiB),
     * the second half from F2; lean (one piece) on a private mapping, whose
     * pages behind the scan pchunks_make may give back */
    struct tb a = {0};
    size_t bn = 0; /* B: A's first BN octets (whole records) */
    while (a.n < (17u << 19))
        if (record(&a, false), a.n < (17u << 19) - 8192)
            bn = a.n;
    static const struct {
        const char *f1, *f2, *what;
    } v[] = {
        {"name-a1 TXT ( \"x\n y\" )\n"
         "name-a2 SOA ns1 h (\n1\n2 )\n"
         "; ( c\n"
         "name-a3 NS ns1.example.net.\n",
         "name-a4 NS ns1.example.net.\n"
         "\tNS ns2.example.net.\n"
         "name-a5 TXT ( \"(\"\n 3 )\n",
         "groups just before the middle"},
        {"name-c1 TXT ( \"first\n",
         "2nd ( half\nthird\" \"(\" )\nname-c2 NS ns1.example.net.\n",
         "a quoted string in a group across the middle"},
        {"name-d1 TXT (\n\"a\"\nzz \"b\" )\n\t; blank-led\n",
         "name-d2 NS ns1.example.net.\n",
         "an owner-like line in a group before the middle"},
        {"name-e1 TXT \"x\" \\\n", "name-e2 A 192.0.2.1\n",
         "a backslash line end before the middle"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        /* A, F1, F2, B, then comment lines to make it 2 * (|A| + |F1| - 1)
         * octets: its middle is the newline ending F1 */
        size_t f1 = strlen(v[i].f1), f2 = strlen(v[i].f2);
        size_t len = 2 * (a.n + f1 - 1), pad = len - a.n - f1 - f2 - bn;
        char *x = malloc(len);
        if (!x)
            abort();
        memcpy(x, a.p, a.n);
        memcpy(x + a.n, v[i].f1, f1);
        memcpy(x + a.n + f1, v[i].f2, f2);
        memcpy(x + a.n + f1 + f2, a.p, bn);
        for (size_t k = 0; k < pad; k++)
            x[len - pad + k] = k % 80 == 79 || k == pad - 1 ? '\n'
                               : k % 80 == 0                ? ';'
                                                            : 'x';
        char *y = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (y == MAP_FAILED)
            abort();
        memcpy(y, x, len);
        struct pchunks p1, p2;
        int r2 = pchunks_make(x, len, false, tkey, &p2),
            r1 = pchunks_make(y, len, true, tkey, &p1);
        munmap(y, len);
        bool same = r1 == 0 && r2 == 0 && p1.n == p2.n && p1.n > 1000 &&
                    pc_off(&p1, p1.n) == pc_off(&p2, p2.n);
        for (size_t k = 0; same && k < p1.n; k++)
            same = pc_off(&p1, k) == pc_off(&p2, k) &&
                   pc_line(&p1, k) == pc_line(&p2, k) &&
                   memcmp(pc_dg(&p1, k), pc_dg(&p2, k), PIDX_DIGEST) == 0;
        ok(same, "one thread == two threads, %s (%zu octets, %zu chunks)",
           v[i].what, len, p2.n);
        if (i == 0) /* two halves joined: checked like the texts of 1 */
            check(x, len, r2, &p2);
        pchunks_free(&p1);
        pchunks_free(&p2);
        free(x);
    }
    {
        /* the second half without a cut: one owner's records from before
         * the middle to the end (the two halves are one part) */
        struct tb z = {0};
        tb_put(&z, a.p, a.n);
        while (z.n < 2 * a.n + 4096)
            tb_str(&z, "name-z1 TXT \"y\"\n");
        char *y = malloc(z.n);
        if (!y)
            abort();
        memcpy(y, z.p, z.n);
        struct pchunks p1, p2;
        int r2 = pchunks_make(z.p, z.n, false, tkey, &p2),
            r1 = pchunks_make(y, z.n, true, tkey, &p1);
        bool same = r1 == 0 && r2 == 0 && p1.n == p2.n && p1.n > 1000 &&
                    pc_off(&p2, p2.n) == z.n &&
                    pc_off(&p2, p2.n - 1) < z.n / 2;
        for (size_t k = 0; same && k < p1.n; k++)
            same = pc_off(&p1, k) == pc_off(&p2, k) &&
                   pc_line(&p1, k) == pc_line(&p2, k) &&
                   memcmp(pc_dg(&p1, k), pc_dg(&p2, k), PIDX_DIGEST) == 0;
        ok(same, "one thread == two threads, no cut in the second half "
                 "(%zu octets, %zu chunks)", z.n, p2.n);
        check(z.p, z.n, r2, &p2);
        pchunks_free(&p1);
        pchunks_free(&p2);
        free(y);
        free(z.p);
    }
    free(a.p);
    ok(nchecked > 5000 && ncuts > 5000, "%u texts checked, %u cuts", nchecked,
       ncuts);
    for (int p = 0; p < NP; p++)
        ok(bad[p] == 0,
           "generated texts and the first 17 MiB one: %s (%u broken)", pname[p],
           bad[p]);

    /* 4. the cut rule on a small text, the cuts known by hand */
    static const struct {
        const char *line;
        bool cut;
    } rl[] = {
        {"%0 NS a.", 0},           /* the first line */
        {"%1 NS b.", 0},           /* its group does not hash to 0 */
        {"%0 NS c.", 1},           /* it does, and differs from the last */
        {"ns1.%0 A 192.0.2.1", 0}, /* glue: the same group */
        {" NS d.", 0},             /* a blank first: no owner */
        {"; %2 comment", 0},
        {"%2 NS e.", 1},
        {"%3.example. NS f.", 0}, /* absolute (its group: "") */
        {"%0 NS g.", 1},          /* differs from "" */
        {"%1 TXT ( \"x\"", 0},
        {"%3 y )", 0}, /* inside the group */
        {"%1 TXT \"z\" \\", 0},
        {"%3 A 192.0.2.2", 0},       /* after a backslash */
        {"%3 A 192.0.2.3", 1},       /* the last owner line's group: %1 */
        {"a\\.b.%0 A 192.0.2.4", 1}, /* an escaped dot: the group is %0 */
        {"%0 NS h.", 0},
        {"*.%2 A 192.0.2.5", 1},
        {"%3 SOA ns h ( 1", 0}, /* opens a group: not an owner line */
        {" 2 )", 0},
        {"*.%2 A 192.0.2.6", 0},     /* the group of the owner line before */
        {"%3 NS i. ; ( comment", 1}, /* '(' in a comment opens no group */
        {"%1 TXT \"x\"", 0},
        {"%0 TXT \"(\" \\(", 1}, /* nor in a string or escaped */
    };
    uint64_t hand[32], rule[32];
    size_t nh = 0;
    t.n = 0;
    for (size_t i = 0; i < sizeof(rl) / sizeof(rl[0]); i++) {
        char s[512];
        subst(s, rl[i].line);
        if (rl[i].cut)
            hand[nh++] = t.n;
        tb_str(&t, s);
        tb_ch(&t, '\n');
    }
    uint8_t *at = malloc(t.n + 1);
    if (!at)
        abort();
    ref_lex(t.p, t.n, at);
    size_t nr = ref_cuts(t.p, t.n, at, rule);
    free(at);
    ok(nr == nh && memcmp(rule, hand, nh * 8) == 0,
       "rule: the reimplementation gives the cuts known by hand (%zu)", nh);
    struct pchunks pc;
    int r = make(t.p, t.n, &pc);
    bool same = r == 0 && pc.n == nh + 1;
    for (size_t k = 0; same && k < nh; k++)
        same = pc_off(&pc, k + 1) == hand[k];
    if (!same)
        diag_text(t.p, t.n);
    ok(same, "rule: pchunks_make cuts where the rule says (%zu cuts, got %zu)",
       nh, r == 0 ? pc.n - 1 : 0);
    pchunks_free(&pc);

    /* 5. the secret: another one gives the same cuts and other digests
     * (every chunk's), none the plain XXH3-128 one; pidx_key_new gives a
     * fresh secret every time */
    t.n = 0;
    for (unsigned i = 0; i < 4000; i++) {
        char s[64];
        snprintf(s, sizeof(s), "d%u NS ns%u.example.\n", i, i % 7);
        tb_str(&t, s);
    }
    uint8_t k2[PIDX_KEY];
    key_fill(k2, 0xa4093822299f31d0u);
    struct pchunks pa, pb, pa2;
    int ra = make(t.p, t.n, &pa), ra2 = make(t.p, t.n, &pa2);
    char *cp = malloc(t.n);
    if (!cp)
        abort();
    int rb = pchunks_make(memcpy(cp, t.p, t.n), t.n, false, k2, &pb);
    free(cp);
    bool cuts = ra == 0 && rb == 0 && ra2 == 0 && pa.n == pb.n && pa.n > 100;
    for (size_t k = 0; cuts && k <= pa.n; k++)
        cuts = pc_off(&pa, k) == pc_off(&pb, k);
    size_t differ = 0, plain = 0;
    for (size_t k = 0; cuts && k < pa.n; k++) {
        differ += memcmp(pc_dg(&pa, k), pc_dg(&pb, k), PIDX_DIGEST) != 0;
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(
            &c, XXH3_128bits(t.p + pc_off(&pa, k),
                             pc_off(&pa, k + 1) - pc_off(&pa, k)));
        plain += memcmp(c.digest, pc_dg(&pa, k), PIDX_DIGEST) == 0 ||
                 memcmp(c.digest, pc_dg(&pb, k), PIDX_DIGEST) == 0;
    }
    ok(cuts, "secret: another secret, the same cuts (%zu chunks)", pa.n);
    ok(cuts && differ == pa.n,
       "secret: another secret, every chunk's digest other (%zu of %zu)",
       differ, pa.n);
    ok(cuts && plain == 0, "secret: no digest is the plain XXH3-128 (%zu are)",
       plain);
    bool kept = ra2 == 0 && pa2.n == pa.n;
    for (size_t k = 0; kept && k < pa.n; k++)
        kept = memcmp(pc_dg(&pa, k), pc_dg(&pa2, k), PIDX_DIGEST) == 0;
    ok(kept && memcmp(pa2.key, tkey, PIDX_KEY) == 0,
       "secret: the same secret, the same digests, and the secret kept");
    uint8_t n1[PIDX_KEY], n2[PIDX_KEY], zero[PIDX_KEY] = {0};
    ok(pidx_key_new(n1) == 0 && pidx_key_new(n2) == 0 &&
           memcmp(n1, n2, PIDX_KEY) != 0 && memcmp(n1, zero, PIDX_KEY) != 0,
       "secret: pidx_key_new gives a fresh secret every time");
    pchunks_free(&pa);
    pchunks_free(&pa2);
    pchunks_free(&pb);
    free(t.p);
    return done_testing();
}

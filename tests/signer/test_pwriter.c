/* tests/signer/test_pwriter.c - the patch index's writer (signer/pindex.c,
 * pw_*): a stream of about 12 MiB put in pieces of every size, in place
 * and by copy, with section padding, is in the file byte for byte after
 * the header's place, its XXH3-64 is the body digest returned and written
 * as the trailer and into the header, the pieces went through the writing
 * thread, and a writer given up half way leaves no file behind; an index
 * written over its spare (a longer file) is cut to its length, mode 0600,
 * and no_spare leaves a spare alone. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "signer/internal.h"
#include "tests/lib/splitmix.h"
#include "tests/lib/tap.h"

static uint64_t rng = 0x9e3779b97f4a7c15u; /* fixed seed */
static uint64_t rnd(void)
{
    return splitmix64(&rng);
}

struct ref {
    uint8_t *p;
    size_t n, sect;
};

static void ref_put(struct ref *r, const uint8_t *p, size_t n)
{
    memcpy(r->p + r->n, p, n);
    r->n += n;
    r->sect += n;
}

static void ref_end(struct ref *r)
{
    static const uint8_t zero[8];
    size_t pad = (8 - r->sect % 8) % 8;
    ref_put(r, zero, pad);
    r->sect = 0;
}

/* Puts about TOTAL octets into W and R alike. */
static void feed(struct pwriter *w, struct ref *r, size_t total)
{
    uint8_t *src = malloc(1u << 20);
    for (size_t i = 0; i < (1u << 20); i++)
        src[i] = (uint8_t)rnd();
    while (r->n < total) {
        uint64_t k = rnd();
        switch (k % 4) {
        case 0: { /* a small copy, of any length */
            size_t n = (size_t)(k >> 8) % 97;
            const uint8_t *p = src + (k >> 32) % ((1u << 20) - 97);
            pw_put(w, p, n);
            ref_put(r, p, n);
            break;
        }
        case 1: { /* a large copy, across buffers */
            size_t n = (size_t)(k >> 8) % (700u << 10);
            const uint8_t *p = src + (k >> 32) % ((1u << 20) - n);
            pw_put(w, p, n);
            ref_put(r, p, n);
            break;
        }
        case 2: { /* items of 40 octets written in place */
            size_t want = (size_t)(k >> 8) % 5000, got;
            while (want > 0) {
                uint8_t *b = pw_room(w, 40, want, &got);
                if (got == 0) {
                    uint8_t one[40];
                    memcpy(one, src + want * 40 % 4000, 40);
                    pw_put(w, one, 40);
                    ref_put(r, one, 40);
                    want--;
                    continue;
                }
                for (size_t q = 0; q < got; q++)
                    memcpy(b + 40 * q, src + (want - q) * 40 % 4000, 40);
                ref_put(r, b, got * 40);
                pw_took(w, got * 40);
                want -= got;
            }
            break;
        }
        default: /* a section ends: padded to 8 octets */
            pw_end(w);
            ref_end(r);
        }
    }
    free(src);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    uint8_t *b = malloc((size_t)st.st_size + 1);
    size_t o = 0;
    while (b && o < (size_t)st.st_size) {
        ssize_t n = read(fd, b + o, (size_t)st.st_size - o);
        if (n <= 0)
            break;
        o += (size_t)n;
    }
    close(fd);
    *len = o;
    return b;
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/zg-pwriter.XXXXXX";
    const char *tmpdir = getenv("TMPDIR");
    char dbuf[4096];
    if (tmpdir && strlen(tmpdir) < 4000) {
        snprintf(dbuf, sizeof(dbuf), "%s/zg-pwriter.XXXXXX", tmpdir);
    } else {
        snprintf(dbuf, sizeof(dbuf), "%s", dir);
    }
    ok(mkdtemp(dbuf) != NULL, "a directory of its own");
    char path[4200];
    snprintf(path, sizeof(path), "%s/x.zsp", dbuf);
    const size_t hdr = (sizeof(struct pidx_hdr) + 7) / 8 * 8;

    struct ref r = {malloc(16u << 20), 0, 0};
    struct pwriter w;
    ok(pw_open(&w, path, false) == 0, "opened");
    ok(w.io != NULL, "its pieces go to a writing thread");
    feed(&w, &r, 12u << 20);
    uint64_t sum = 0;
    ok(pw_finish(&w, &sum) == 0, "finished: %zu octets of body", r.n);
    ok(sum == XXH3_64bits(r.p, r.n), "the body digest is the stream's");
    struct pidx_hdr h;
    memset(&h, 0, sizeof(h));
    h.nnames = 12345;
    ok(pidx_write_end(&h, &w, path, sum) == 0, "header written, in place");
    size_t len = 0;
    uint8_t *f = slurp(path, &len);
    ok(f && len == hdr + r.n + 8, "file size: header, body, trailer (%zu)",
       len);
    if (f && len == hdr + r.n + 8) {
        struct pidx_hdr fh;
        memcpy(&fh, f, sizeof(fh));
        ok(fh.nnames == 12345 && fh.body_sum == sum,
           "the header is the one written, with the body digest");
        ok(memcmp(f + hdr, r.p, r.n) == 0, "the body, byte for byte");
        uint64_t t;
        memcpy(&t, f + hdr + r.n, 8);
        ok(t == sum, "the trailer is the body digest");
    } else {
        ok(0, "the header is the one written, with the body digest");
        ok(0, "the body, byte for byte");
        ok(0, "the trailer is the body digest");
    }
    free(f);
    ok(entries(dbuf) == 1, "no temporary file left");

    /* given up half way: nothing left */
    unlink(path);
    struct ref r2 = {malloc(16u << 20), 0, 0};
    ok(pw_open(&w, path, false) == 0, "opened again");
    feed(&w, &r2, 5u << 20);
    pw_abort(&w);
    ok(entries(dbuf) == 0, "given up after %zu octets: no file left", r2.n);
    ok(w.fd == -1 && w.io == NULL, "and nothing held");

    /* written over its spare (reap.c, side_open): a longer file of mode
     * 0644 at DIR/.x.zsp.spare becomes the index, cut to its length, mode
     * 0600, and its name is free again; with no_spare it is left alone */
    char spare[4300];
    snprintf(spare, sizeof(spare), "%s/.x.zsp.spare", dbuf);
    int sfd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok(sfd >= 0 && ftruncate(sfd, 20 << 20) == 0 && close(sfd) == 0,
       "a spare of 20 MiB");
    struct stat ss, ps;
    ok(stat(spare, &ss) == 0, "its inode");
    struct ref r3 = {malloc(16u << 20), 0, 0};
    ok(pw_open(&w, path, false) == 0, "opened over the spare");
    struct stat fs, ts;
    ok(fstat(w.fd, &fs) == 0 && stat(w.tmp, &ts) == 0 &&
           fs.st_ino == ts.st_ino && fs.st_ino == ss.st_ino &&
           access(spare, F_OK) != 0,
       "the spare moved to the temporary name, and opened there");
    feed(&w, &r3, 3u << 20);
    ok(pw_finish(&w, &sum) == 0 && pidx_write_end(&h, &w, path, sum) == 0,
       "written, in place");
    ok(stat(path, &ps) == 0 && ps.st_ino == ss.st_ino,
       "the index is the spare's inode");
    ok((size_t)ps.st_size == hdr + r3.n + 8,
       "cut to its own length (%zu, not 20 MiB)", (size_t)ps.st_size);
    ok((ps.st_mode & 0777) == 0600, "mode 0600 (it was 0644)");
    ok(access(spare, F_OK) != 0, "no spare left by that name");
    f = slurp(path, &len);
    ok(f && len == hdr + r3.n + 8 && memcmp(f + hdr, r3.p, r3.n) == 0,
       "the body, byte for byte");
    free(f);
    ok(entries(dbuf) == 1, "no temporary file left");
    sfd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok(sfd >= 0 && write(sfd, "spare", 5) == 5 && close(sfd) == 0 &&
           stat(spare, &ss) == 0,
       "another spare");
    ok(pw_open(&w, path, true) == 0, "opened with no_spare");
    feed(&w, &r2, r2.n + (1u << 20));
    ok(pw_finish(&w, &sum) == 0 && pidx_write_end(&h, &w, path, sum) == 0,
       "written, in place");
    ok(stat(path, &ps) == 0 && ps.st_ino != ss.st_ino,
       "a new file, not the spare");
    f = slurp(spare, &len);
    ok(f && len == 5 && memcmp(f, "spare", 5) == 0, "the spare untouched");
    free(f);
    unlink(spare);
    unlink(path);
    rmdir(dbuf);
    free(r.p);
    free(r2.p);
    free(r3.p);
    return done_testing();
}

/*
 * signer/writer.c - the signed zone in presentation form, one RR per line,
 * in canonical order (RFC 4034 6.1-6.3; at each name the RRSIG RRset sits
 * at its type number, 46), written atomically: temporary file in the
 * output's directory, fsync, rename, fsync of the directory (DESIGN.md
 * invariant 4).  The printer is our own: the types of rdata.c by name and
 * everything else in RFC 3597 generic form (TYPEnnn \# len hex).
 * Formatting (writer_format) works on a range of names, so the pipeline
 * formats chunks on several threads; writer_write only writes the blocks
 * in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "signer/internal.h"

static const char *ptype(uint16_t type, char *buf)
{
    const char *l = rdata_layout(type);
    if (l)
        return type_name(type, buf);
    snprintf(buf, 16, "TYPE%u", type);
    return buf;
}

static size_t put_u32(uint32_t v, char *out)
{
    char t[10];
    size_t n = 0, o = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        out[o++] = t[--n];
    return o;
}

static size_t put_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    return 2 * n;
}

static size_t put_str(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c < 0x20 || c >= 0x7f) {
            o += (size_t)sprintf(out + o, "\\%03u", c);
        } else {
            if (c == '"' || c == '\\')
                out[o++] = '\\';
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

#define BAD ((size_t)-1)

/* Fixed-size fields and names: N C S T L E 4 6. */
static size_t field_fixed(char code, const uint8_t *rd, size_t len,
                          size_t *pp, char *out)
{
    static const size_t width[128] = {['C'] = 1, ['S'] = 2, ['T'] = 2,
                                      ['L'] = 4, ['E'] = 4, ['4'] = 4,
                                      ['6'] = 16};
    size_t p = *pp, o = 0;
    char tb[16];
    if (code == 'N') {
        size_t n = name_wire_len(rd + p, len - p);
        if (n == 0)
            return BAD;
        *pp = p + n;
        return name_to_text(rd + p, out);
    }
    if (p + width[(int)code] > len)
        return BAD;
    switch (code) {
    case 'C': o = put_u32(rd[p], out); break;
    case 'S': o = put_u32(get16(rd + p), out); break;
    case 'T': {
        const char *t = ptype(get16(rd + p), tb);
        o = strlen(t);
        memcpy(out, t, o);
        break;
    }
    case 'L': o = put_u32(get32(rd + p), out); break;
    case 'E':
        signer_time_format(get32(rd + p), out);
        o = 14;
        break;
    case '4':
        for (int i = 0; i < 4; i++) {
            if (i)
                out[o++] = '.';
            o += put_u32(rd[p + i], out + o);
        }
        break;
    case '6':
        for (int i = 0; i < 8; i++)
            o += (size_t)sprintf(out + o, i ? ":%x" : "%x",
                                 get16(rd + p + 2 * i));
        break;
    default: return BAD;
    }
    *pp = p + width[(int)code];
    return o;
}

/* Fields with a one-octet length: s a H Z. */
static size_t field_counted(char code, const uint8_t *rd, size_t len,
                            size_t *pp, char *out)
{
    size_t p = *pp, o = 0;
    if (p >= len || p + 1 + rd[p] > len)
        return BAD;
    size_t n = rd[p];
    const uint8_t *d = rd + p + 1;
    switch (code) {
    case 's': o = put_str(d, n, out); break;
    case 'a': /* CAA tag: letters and digits only (RFC 8659 4.1) */
        if (n == 0)
            return BAD;
        for (size_t i = 0; i < n; i++) {
            uint8_t ch = d[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z')))
                return BAD;
            out[o++] = (char)ch;
        }
        break;
    case 'H':
        if (n == 0)
            out[o++] = '-';
        else
            o = put_hex(d, n, out);
        break;
    case 'Z':
        if (n == 0)
            return BAD;
        o = base32hex_encode(d, n, out);
        break;
    default: return BAD;
    }
    *pp = p + 1 + n;
    return o;
}

/* Type bitmap (RFC 4034 4.1.2) as mnemonics, each preceded by a blank. */
static size_t field_bitmap(const uint8_t *rd, size_t len, size_t p, char *out)
{
    size_t o = 0;
    char tb[16];
    while (p < len) {
        if (p + 2 > len)
            return BAD;
        uint8_t win = rd[p], bl = rd[p + 1];
        if (bl == 0 || bl > 32 || p + 2 + bl > len)
            return BAD;
        for (unsigned i = 0; i < bl * 8u; i++)
            if (rd[p + 2 + i / 8] & (0x80 >> (i % 8))) {
                const char *t = ptype((uint16_t)(win << 8 | i), tb);
                out[o++] = ' ';
                memcpy(out + o, t, strlen(t));
                o += strlen(t);
            }
        p += 2 + bl;
    }
    return o;
}

/* Fields that run to the end of the RDATA: M q B X (b is separate). */
static size_t field_rest(char code, const uint8_t *rd, size_t len, size_t p,
                         char *out)
{
    size_t o = 0;
    switch (code) {
    case 'M':
        if (p == len)
            return BAD;
        while (p < len) {
            if (p + 1 + rd[p] > len)
                return BAD;
            if (o)
                out[o++] = ' ';
            o += put_str(rd + p + 1, rd[p], out + o);
            p += 1 + rd[p];
        }
        return o;
    case 'q': return put_str(rd + p, len - p, out);
    case 'B':
        if (p == len)
            return BAD;
        return (size_t)EVP_EncodeBlock((unsigned char *)out, rd + p,
                                       (int)(len - p));
    case 'X':
        if (p == len)
            return BAD;
        return put_hex(rd + p, len - p, out);
    default: return BAD;
    }
}

/* Presentation form of RDATA by layout; returns length or 0 on a layout
 * mismatch (the caller then prints the generic form). */
static size_t rdata_text(uint16_t type, const uint8_t *rd, size_t len,
                         char *out)
{
    const char *lay = rdata_layout(type);
    size_t o = 0, p = 0, n;
    if (!lay)
        return 0;
    for (const char *c = lay; *c; c++) {
        if (*c == 'b') { /* no blank before it: each type brings its own */
            if ((n = field_bitmap(rd, len, p, out + o)) == BAD)
                return 0;
            o += n;
            p = len;
            continue;
        }
        if (c != lay)
            out[o++] = ' ';
        if (strchr("MqBX", *c)) {
            n = field_rest(*c, rd, len, p, out + o);
            p = len;
        } else if (strchr("saHZ", *c)) {
            n = field_counted(*c, rd, len, &p, out + o);
        } else {
            n = field_fixed(*c, rd, len, &p, out + o);
        }
        if (n == BAD)
            return 0;
        o += n;
    }
    if (p != len)
        return 0;
    out[o] = 0;
    return o;
}

/* One RR with the owner already in presentation form (OTEXT, OTLEN). */
static size_t rr_text(const char *otext, size_t otlen, uint16_t type,
                      uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                      char *buf)
{
    char tb[16];
    memcpy(buf, otext, otlen);
    size_t o = otlen;
    size_t head = o;
    buf[o++] = ' ';
    o += put_u32(ttl, buf + o);
    memcpy(buf + o, " IN ", 4);
    o += 4;
    const char *tn = ptype(type, tb);
    size_t tl = strlen(tn);
    memcpy(buf + o, tn, tl);
    o += tl;
    buf[o++] = ' ';
    size_t n = rdata_text(type, rdata, rdlen, buf + o);
    if (n == 0) {
        o = head;
        o += (size_t)sprintf(buf + o, " %u IN TYPE%u \\# %u", ttl, type,
                             rdlen);
        if (rdlen) {
            buf[o++] = ' ';
            o += put_hex(rdata, rdlen, buf + o);
        }
    } else {
        o += n;
    }
    buf[o++] = '\n';
    buf[o] = 0;
    return o;
}

size_t rr_to_text(const uint8_t *owner, size_t olen, uint16_t type,
                  uint32_t ttl, const uint8_t *rdata, uint16_t rdlen,
                  char *buf)
{
    char otext[1100];
    (void)olen;
    size_t otlen = name_to_text(owner, otext);
    return rr_text(otext, otlen, type, ttl, rdata, rdlen, buf);
}

/* Room for one more line (at most 70000 bytes) at the end of A. */
static inline int line_room(arena_t *a)
{
    return arena_reserve(a, 70000);
}

/* One name [i, e) with its RRSIGs (taken from NEXT_SIG while they belong
 * to it) at type 46's place. */
static int format_name(const zone_t *z, size_t i, size_t e,
                       int (*next_sig)(void *arg, size_t *pos,
                                       const uint8_t **rd, uint16_t *len),
                       void *sarg, size_t *spos, const uint8_t **srd,
                       uint16_t *slen, bool *have, arena_t *a)
{
    uint8_t owner[256];
    char otext[1100];
    rec_t r;
    rec_at(z, i, &r);
    key_to_wire(r.key, r.klen, owner);
    size_t otlen = name_to_text(owner, otext);
    bool sigs_done = false;
    int ret;
    for (size_t j = i; j <= e; j++) {
        if (j < e)
            rec_at(z, j, &r);
        if (!sigs_done && (j == e || r.type > T_RRSIG)) {
            sigs_done = true;
            for (;;) {
                if (!*have) {
                    if ((ret = next_sig(sarg, spos, srd, slen)) < 0)
                        return ret;
                    *have = ret == 0;
                }
                if (!*have || *spos >= e)
                    break;
                uint32_t ttl = get32(*srd + 4); /* original TTL */
                if ((ret = line_room(a)))
                    return ret;
                a->len += rr_text(otext, otlen, T_RRSIG, ttl, *srd, *slen,
                                  (char *)a->buf + a->len);
                *have = false;
            }
        }
        if (j == e)
            break;
        if ((ret = line_room(a)))
            return ret;
        a->len += rr_text(otext, otlen, r.type, r.ttl, r.rdata, r.rdlen,
                          (char *)a->buf + a->len);
    }
    return 0;
}

int writer_format(const zone_t *z, size_t start, size_t end,
                  int (*next_sig)(void *arg, size_t *pos, const uint8_t **rd,
                                  uint16_t *len),
                  void *sarg, arena_t *out)
{
    size_t spos = 0;
    const uint8_t *srd = NULL;
    uint16_t slen = 0;
    bool have = false;
    int ret;
    for (size_t i = start; i < end;) {
        size_t e = zone_run_end(z, i, false);
        if ((ret = format_name(z, i, e, next_sig, sarg, &spos, &srd, &slen,
                               &have, out)))
            return ret;
        i = e;
    }
    /* every signature belongs to a name of the range */
    if (have || (ret = next_sig(sarg, &spos, &srd, &slen)) == 0)
        return -EINVAL;
    return ret < 0 ? ret : 0;
}

/* Writes P fully to FD. */
static int put_block(int fd, const uint8_t *p, size_t n)
{
    for (size_t o = 0; o < n;) {
        ssize_t k = write(fd, p + o, n - o);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        o += (size_t)k;
    }
    return 0;
}

int writer_dir_fsync(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

/* Writes the blocks to FD; the writeback of each block's whole pages is
 * started at once (sync_file_range, advice only), so that the fsync at the
 * end waits for little more than the last block.  (Not the page a block
 * ends inside: sent to disk half written, it would be locked for that
 * write when the next block comes to finish it, and written twice.) */
static int write_all(int fd, const writer_hooks_t *h, uint64_t *total)
{
    uint64_t kicked = *total & ~(uint64_t)4095;
    for (;;) {
        const uint8_t *p;
        size_t n;
        int ret = h->next_block(h->arg, &p, &n);
        if (ret < 0)
            return -ECANCELED;
        if (ret > 0)
            return 0;
        if ((ret = put_block(fd, p, n)))
            return ret;
        *total += n;
        uint64_t whole = *total & ~(uint64_t)4095;
        if (whole > kicked) {
            sync_file_range(fd, (off_t)kicked, (off_t)(whole - kicked),
                            SYNC_FILE_RANGE_WRITE);
            kicked = whole;
        }
    }
}

int writer_write(const char *path, const writer_hooks_t *h, uint64_t *size,
                 signer_diag_t *diag)
{
    char *tmp = NULL, *spare = spare_path(path);
    uint64_t total = 0;
    int fd = -1, ret = 0;
    reaper_t rp = {0};
    if (!spare)
        return -ENOMEM;
    /* the spare written over, or a new file */
    if ((fd = spare_open(path, spare, h->no_spare, &rp, &tmp)) < 0) {
        ret = -errno;
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path, strerror(-ret));
        goto out;
    }
    if ((ret = write_all(fd, h, &total)))
        goto fail;
    trace_mark("written");
    if (h->before_sync && h->before_sync(h->arg, total) != 0) {
        ret = -ECANCELED;
        goto fail;
    }
    /* (a spare written over may have been longer) */
    if (ftruncate(fd, (off_t)total) != 0 || fsync(fd) != 0 ||
        close(fd) != 0) {
        fd = -1;
        ret = -errno;
        goto fail;
    }
    fd = -1;
    if ((ret = spare_commit(tmp, path, spare, !h->no_spare, &rp)))
        goto fail;
    *size = total;
    trace_mark("fsynced+renamed");
    if (h->after_rename)
        h->after_rename(h->arg, 0);
    ret = writer_dir_fsync(path);
    if (ret)
        snprintf(diag->msg, sizeof(diag->msg), "%s: directory fsync: %s",
                 path, strerror(-ret));
    goto out;
fail:
    snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path,
             strerror(ret < 0 ? -ret : EIO));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    if (h->after_rename)
        h->after_rename(h->arg, ret);
out:
    reap_join(&rp);
    free(tmp);
    free(spare);
    return ret < 0 && ret > -4096 ? SIGNER_EIO : ret;
}

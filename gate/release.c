/*
 * gate/release.c - putting a passed zone in service (DESIGN.md invariants
 * 3 and 4): unnamed temporary file (O_TMPFILE) in the target directory,
 * fsync, a name only at the last instant, rename, fsync
 * of the directory; the release history (one JSON object per line,
 * history.jsonl) is rewritten the same way; its line records the SHA-256
 * of the zone file placed, which history.c checks before the next run.
 * On fail nothing here runs except the --on-fail hook.  Written for the
 * gate; the signer has its own.
 */
#include "gate/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int dir_of(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    char *d = dirname(buf);
    if (d != buf)
        memmove(buf, d, strlen(d) + 1);
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -errno;
    int err = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return err;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Temporary file next to path; *fd open for writing.  Where the file
 * system allows it the file is unnamed (O_TMPFILE): a process killed while
 * writing leaves nothing behind, and the file gets a name only for the
 * instant between linkat and rename in tmp_commit.  tmp is then "". */
static int tmp_open(const char *path, char *tmp, size_t len, int *fd)
{
    char dir[4096];
    dir_of(path, dir, sizeof(dir));
    *fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (*fd >= 0) {
        tmp[0] = '\0';
        fchmod(*fd, 0644);
        return 0;
    }
    snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    *fd = mkstemp(tmp);
    if (*fd < 0)
        return -errno;
    fchmod(*fd, 0644);
    return 0;
}

/* Gives an unnamed temporary file a temporary name beside path. */
static int tmp_name(int fd, const char *path, char *tmp, size_t len)
{
    static unsigned seq;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), seq++);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0) {
        int err = -errno;
        tmp[0] = '\0';
        return err;
    }
    return 0;
}

static int tmp_commit(int fd, const char *tmp_in, const char *path)
{
    char tmp[4200];
    int err = 0;
    snprintf(tmp, sizeof(tmp), "%s", tmp_in);
    if (fsync(fd) < 0)
        err = -errno;
    if (!err && tmp[0] == '\0')
        err = tmp_name(fd, path, tmp, sizeof(tmp));
    if (close(fd) < 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) < 0)
        err = -errno;
    if (err) {
        if (tmp[0] != '\0')
            unlink(tmp);
        return err;
    }
    char dir[4096];
    dir_of(path, dir, sizeof(dir));
    return fsync_dir(dir);
}

int atomic_write(const char *path, const void *data, size_t len,
                 gate_diag_t *diag)
{
    char tmp[4200];
    int fd, err = tmp_open(path, tmp, sizeof(tmp), &fd);
    if (!err) {
        err = write_all(fd, data, len);
        if (err) {
            close(fd);
            unlink(tmp);
        } else {
            err = tmp_commit(fd, tmp, path);
        }
    }
    if (err)
        snprintf(diag->msg, sizeof(diag->msg), "%s: %s", path, strerror(-err));
    return err;
}

/* "tld." -> "tld.zone", "." -> "root.zone"; refuses names with '/'. */
static int zone_file_name(const char *zone, char *buf, size_t len)
{
    if (strcmp(zone, ".") == 0) {
        snprintf(buf, len, "root.zone");
        return 0;
    }
    if (strchr(zone, '/') || zone[0] == '.' || strchr(zone, '\\'))
        return GATE_ERR_USAGE;
    snprintf(buf, len, "%szone", zone);
    return 0;
}

/* Reads src once: copies it to fd (fd < 0: no copy) and, when md is not
 * NULL, feeds it to md, so a release is hashed in the pass that copies it
 * (a 150 MB zone is not read twice). */
static int copy_to_tmp(const char *src, int fd, EVP_MD_CTX *md)
{
    int in = open(src, O_RDONLY);
    if (in < 0)
        return -errno;
    char buf[1 << 16];
    int err = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            break;
        }
        if (n == 0)
            break;
        if (md && !EVP_DigestUpdate(md, buf, (size_t)n)) {
            err = GATE_ERR_CRYPTO;
            break;
        }
        if (fd >= 0 && (err = write_all(fd, buf, (size_t)n)) < 0)
            break;
    }
    close(in);
    return err;
}

/* SHA-256 of src's bytes (copied to fd unless fd < 0) as 64 lower-case hex
 * digits and a NUL in hex. */
static int copy_hashed(const char *src, int fd, char hex[65])
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return -ENOMEM;
    int err = EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : GATE_ERR_CRYPTO;
    if (!err)
        err = copy_to_tmp(src, fd, md);
    if (!err && (!EVP_DigestFinal_ex(md, d, &dlen) || dlen != 32))
        err = GATE_ERR_CRYPTO;
    EVP_MD_CTX_free(md);
    if (err)
        return err;
    for (unsigned i = 0; i < dlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return 0;
}

int release_file_sha256(const char *path, char hex[65])
{
    return copy_hashed(path, -1, hex);
}

static int history_write(const char *path, const char *line, int *fd_out,
                         char *tmp, size_t tlen)
{
    int fd, err = tmp_open(path, tmp, tlen, &fd);
    if (err)
        return err;
    int old = open(path, O_RDONLY);
    if (old >= 0) {
        close(old);
        err = copy_to_tmp(path, fd, NULL);
    } else if (errno != ENOENT) {
        err = -errno;
    }
    if (!err)
        err = write_all(fd, line, strlen(line));
    if (err) {
        close(fd);
        unlink(tmp);
        return err;
    }
    *fd_out = fd;
    return 0;
}

int gate_release(const struct gate_result *r, const char *path,
                 const char *dir, int64_t now, gate_diag_t *diag)
{
    char fname[1200], dst[4200], hist[4200], ztmp[4300], htmp[4300];
    char sha[65];
    char *line = NULL;
    int zfd = -1, hfd = -1, err;
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(diag->msg, sizeof(diag->msg), "%s: not a directory", dir);
        return -ENOTDIR;
    }
    if ((err = zone_file_name(r->zone_name, fname, sizeof(fname))) < 0) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "zone name %s cannot name a file", r->zone_name);
        return err;
    }
    snprintf(dst, sizeof(dst), "%s/%s", dir, fname);
    snprintf(hist, sizeof(hist), "%s/history.jsonl", dir);
    /* the line records the digest of exactly the bytes placed at dst,
     * so it is made after the copy (history_load checks it next time) */
    if ((err = tmp_open(dst, ztmp, sizeof(ztmp), &zfd)) < 0 ||
        (err = copy_hashed(path, zfd, sha)) < 0)
        goto fail;
    if (!(line = hist_line(r, now, fname, sha))) {
        err = -ENOMEM;
        goto fail;
    }
    if ((err = history_write(hist, line, &hfd, htmp, sizeof(htmp))) < 0)
        goto fail;
    if (fsync(zfd) < 0 || fsync(hfd) < 0) {
        err = -errno;
        goto fail;
    }
    /* the zone first: a history line never names a zone not in place */
    if ((err = tmp_commit(zfd, ztmp, dst)) < 0) {
        zfd = -1;
        goto fail;
    }
    zfd = -1;
    err = tmp_commit(hfd, htmp, hist);
    hfd = -1;
    if (err < 0)
        goto fail;
    free(line);
    return 0;
fail:
    snprintf(diag->msg, sizeof(diag->msg), "release into %s failed: %s", dir,
             strerror(err < 0 && err > -4096 ? -err : EIO));
    if (zfd >= 0) {
        close(zfd);
        unlink(ztmp);
    }
    if (hfd >= 0) {
        close(hfd);
        unlink(htmp);
    }
    free(line);
    return err;
}

int gate_hook_run(const char *cmd, const char *report, gate_diag_t *diag)
{
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    FILE *fp = popen(cmd, "w");
    if (!fp) {
        signal(SIGPIPE, old);
        snprintf(diag->msg, sizeof(diag->msg), "--on-fail: %s",
                 strerror(errno));
        return GATE_ERR_HOOK;
    }
    fputs(report, fp);
    int st = pclose(fp);
    signal(SIGPIPE, old);
    if (st != 0) {
        snprintf(diag->msg, sizeof(diag->msg),
                 "--on-fail command exited with status %d",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return GATE_ERR_HOOK;
    }
    return 0;
}

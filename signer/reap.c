/*
 * signer/reap.c - the files a run replaces: the old OUT kept as a spare
 * that the next run writes over, or let go of on threads.
 *
 * Writing a new 150 MB file (a TLD's signed zone at 1M delegations) costs
 * more than writing over an old one: every block is allocated, every
 * page of the page cache is fresh memory, and replacing the old file
 * frees it in the rename itself (its page cache dropped, its blocks
 * freed and, on a file system mounted with online discard, discarded
 * while the call waits: tens of milliseconds on the virtual disk this
 * project is measured on, at the run's end).  So the OUT a run replaces
 * is kept beside it as a hidden spare, DIR/.NAME.spare, and the next run
 * writes its OUT into the spare and exchanges the two names at once
 * (renameat2 RENAME_EXCHANGE): OUT is the old or the new file at every
 * instant, as with a plain rename.  A spare is written over only when
 * nothing else can see it: a regular file, its only link, ours, and open
 * nowhere, not even by this run (a write lease is granted and given back
 * at once); otherwise it is removed and the new OUT goes to a new file.
 * An old OUT with other links (a release made by a hard link) is never
 * kept as a spare.  --no-spare keeps none (and removes one left before).
 *
 * The files beside OUT, OUT.zsc and OUT.zsp, have spares too
 * (side_open, side_retire): the one a run writes is the spare moved to a
 * temporary name (the spare's own name is then free for the file it
 * replaces, which leaves its name before OUT is replaced: an index beside
 * OUT describes OUT, or is not there), and a run in steady state frees
 * nothing.
 *
 * Files that are freed after all (an old index, an old cache, an old OUT
 * not kept) are held first by a reaper (an O_PATH descriptor, or one for
 * reading for regular files: no data is read, and the file's name may
 * go), so that the rename or unlink is only a directory change; the
 * reaper's threads then close the descriptors, and the freeing runs
 * beside what the run still has to do.  Nothing is removed that the run
 * would not have removed: a reaper only delays the moment an unlinked
 * inode is freed, and joining it waits for that.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signer/internal.h"

void reap_hold(reaper_t *r, const char *path)
{
    if (!r || r->n >= REAP_MAX)
        return;
    /* O_NOFOLLOW: a symbolic link is what rename replaces, not its target;
     * a regular file is opened for reading (so that reap_uncache can drop
     * its page cache), anything else, or a file we may not read, only
     * held */
    struct stat st;
    int fd = -1;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) /* (not a device's) */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                            O_CLOEXEC);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        r->fd[r->n++] = fd;
}

void reap_unlink(reaper_t *r, const char *path)
{
    reap_hold(r, path);
    unlink(path);
}

void reap_uncache(reaper_t *r)
{
    /* the files are as they were on disk; only their cached pages go
     * (EBADF for those only held: left to the close) */
    for (int i = r->started; i < r->n; i++)
        posix_fadvise(r->fd[i], 0, 0, POSIX_FADV_DONTNEED);
}

static void *let_go(void *arg)
{
    close((int)(intptr_t)arg);
    return NULL;
}

void reap_start(reaper_t *r)
{
    for (int i = r->started; i < r->n; i++) {
        if (pthread_create(&r->th[i], NULL, let_go,
                           (void *)(intptr_t)r->fd[i]) != 0) {
            close(r->fd[i]); /* no thread: freed here, as without one */
            r->th_ok[i] = false;
        } else {
            r->th_ok[i] = true;
        }
    }
    r->started = r->n;
}

void reap_join(reaper_t *r)
{
    reap_start(r); /* what is still held is let go of too */
    for (int i = 0; i < r->n; i++)
        if (r->th_ok[i])
            pthread_join(r->th[i], NULL);
    r->n = r->started = 0;
}

char *spare_path(const char *out)
{
    size_t l = strlen(out);
    char *d = strdup(out), *b = strdup(out), *s = malloc(l + 16);
    if (d && b && s) {
        const char *dn = dirname(d), *bn = basename(b);
        snprintf(s, l + 16, "%s/.%s.spare", dn, bn);
    } else {
        free(s);
        s = NULL;
    }
    free(d);
    free(b);
    return s;
}

/* Nothing else sees FD's file: a regular file, its only link, ours, and
 * no other descriptor or mapping open on it anywhere (a write lease is
 * granted only then; it is given back at once, so no lease-break signal
 * can come). */
static bool alone(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        st.st_uid != geteuid())
        return false;
    if (fcntl(fd, F_SETLEASE, F_WRLCK) != 0)
        return false;
    fcntl(fd, F_SETLEASE, F_UNLCK);
    return true;
}

int spare_take(const char *spare, mode_t mode, reaper_t *r)
{
    int fd = open(spare, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                             O_CLOEXEC);
    if (fd >= 0 && alone(fd)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl != -1 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0 &&
            fchmod(fd, mode) == 0)
            return fd;
    }
    if (fd >= 0)
        close(fd);
    /* not to be written over (or none): whatever is there goes */
    reap_unlink(r, spare);
    if (r)
        reap_start(r);
    return -1;
}

/* A new empty file PATH.tmp.XXXXXX of mode MODE (*TMP its name,
 * malloc'd; NULL, and -1 with errno set, if there is none). */
static int tmp_make(const char *path, mode_t mode, char **tmp)
{
    size_t l = strlen(path) + 16;
    char *t = malloc(l);
    int fd = -1;
    if (t) {
        snprintf(t, l, "%s.tmp.XXXXXX", path);
        if ((fd = mkstemp(t)) >= 0)
            fchmod(fd, mode);
    }
    if (fd < 0) {
        int e = t ? errno : ENOMEM;
        free(t);
        t = NULL;
        errno = e;
    }
    *tmp = t;
    return fd;
}

int spare_open(const char *out, const char *spare, bool no_spare,
               reaper_t *r, char **tmp)
{
    int fd = no_spare ? -1 : spare_take(spare, 0644, r);
    if (fd < 0)
        return tmp_make(out, 0644, tmp);
    if (!(*tmp = strdup(spare))) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    return fd;
}

int spare_commit(const char *tmp, const char *out, const char *spare,
                 bool keep, reaper_t *r)
{
    struct stat st;
    keep = keep && spare && lstat(out, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_nlink == 1;
    if (keep) {
        /* OUT and TMP swap names: OUT is the new file, TMP the old one,
         * which becomes the spare (TMP may be the spare's own name) */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) == 0) {
            if (strcmp(tmp, spare) != 0) {
                reap_hold(r, spare); /* (a spare not taken: replaced) */
                if (rename(tmp, spare) != 0)
                    reap_unlink(r, tmp);
            }
            return 0;
        }
        if (errno != EINVAL && errno != ENOSYS && errno != ENOENT)
            return -errno;
        /* no exchange on this file system: replaced as below */
    }
    reap_hold(r, out); /* the file replaced: freed on a thread */
    if (rename(tmp, out) != 0)
        return -errno;
    if (spare && strcmp(tmp, spare) != 0) {
        reap_unlink(r, spare); /* none kept (--no-spare, or OUT linked) */
    }
    return 0;
}

int side_open(const char *path, bool no_spare, mode_t mode, reaper_t *r,
              char **tmp)
{
    int fd = tmp_make(path, mode, tmp);
    char *spare = fd < 0 || no_spare ? NULL : spare_path(path);
    /* the spare moves to the temporary name (over the empty file just
     * made there), so that its own name is free for the file this one
     * will replace; it is opened there, once moved: what is written over
     * is the file that has the temporary name, even if another file took
     * the spare's name meanwhile (side_retire on another thread) */
    if (spare && rename(spare, *tmp) == 0) {
        close(fd);
        fd = spare_take(*tmp, mode, r);
        if (fd < 0 && (fd = open(*tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                                 0600)) >= 0)
            fchmod(fd, mode);
        if (fd < 0) {
            int e = errno;
            free(*tmp);
            *tmp = NULL;
            errno = e;
        }
    }
    free(spare);
    return fd;
}

void side_retire(const char *path, bool keep, reaper_t *r)
{
    struct stat st;
    char *spare = spare_path(path);
    if (keep && spare && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_nlink == 1) {
        reap_hold(r, spare); /* (a spare not taken: replaced) */
        if (rename(path, spare) == 0) {
            free(spare);
            return;
        }
    }
    reap_unlink(r, path);
    if (spare && !keep)
        reap_unlink(r, spare); /* --no-spare: none kept */
    free(spare);
}

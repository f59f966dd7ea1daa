/*
 * signer/reap.c - the files a run replaces, let go of on threads.
 *
 * Renaming a new OUT over the old one, or unlinking an old index, frees
 * the old file in that very call when it was the last reference: its page
 * cache is dropped and its blocks freed, and on a file system mounted
 * with online discard the call waits for the disk to discard them (tens
 * of milliseconds for a TLD's 150 MB zone on the virtual disk this
 * project is measured on, the run's last serial step).  A reaper holds
 * the old file first (an O_PATH descriptor: no data is read, and the
 * file's name may go), so the rename or unlink is only a directory
 * change; the reaper's threads then close the descriptors, and the
 * freeing runs beside what the run still has to do.  Nothing is removed
 * that the run would not have removed: a reaper only delays the moment
 * an unlinked inode is freed, and joining it waits for that.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signer/internal.h"

void reap_hold(reaper_t *r, const char *path)
{
    if (r->n >= REAP_MAX)
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

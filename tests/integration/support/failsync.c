/* failsync: an LD_PRELOAD shim for tests. While the file named by $FAILSYNC_TRIGGER exists,
 * fdatasync and fsync fail with ENOSPC, as on a disk that filled up or broke mid-commit: LMDB
 * then aborts the write transaction, and the server sees a failed commit exactly as it would in
 * production. Without the file, both pass through to libc. Used by it_stan_commit_fail. */

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void)
{
    const char *t = getenv("FAILSYNC_TRIGGER");
    return t && access(t, F_OK) == 0;
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (failing()) {
        errno = ENOSPC;
        return -1;
    }
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (failing()) {
        errno = ENOSPC;
        return -1;
    }
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

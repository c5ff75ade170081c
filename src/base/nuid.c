/* nuid: see include/nuid.h. */
#include "nuid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "xalloc.h"

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define ALPHABET_LEN 62
/* A byte below this maps to a character without bias (248 = 4 * 62); others are skipped. */
#define UNBIASED_LIMIT (256 - 256 % ALPHABET_LEN)

/* Random bytes are fetched in blocks, so a name costs one system call per ~10 names. The pid
 * they were fetched in is kept: a child of a fork must not reuse its parent's bytes. */
static uint8_t pool[256];
static size_t pool_pos = sizeof pool;
static pid_t pool_pid;

static void no_randomness(const char *what, int err)
{
    /* Not through log: this is as fatal as running out of memory, and handled the same way. */
    fprintf(stderr, "stanza: no source of random bytes (%s: %s)\n", what, strerror(err));
    abort();
}

static void read_urandom(uint8_t *p, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) no_randomness("/dev/urandom", errno);
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) no_randomness("/dev/urandom", r < 0 ? errno : EIO);
        p += r;
        n -= (size_t)r;
    }
    close(fd);
}

static void refill(void)
{
    size_t got = 0;
    while (got < sizeof pool) {
        ssize_t r = getrandom(pool + got, sizeof pool - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == ENOSYS) { /* a kernel older than 3.17 */
            read_urandom(pool + got, sizeof pool - got);
            break;
        }
        if (r < 0) no_randomness("getrandom", errno);
        got += (size_t)r;
    }
    pool_pos = 0;
    pool_pid = getpid();
}

static uint8_t next_byte(void)
{
    if (pool_pos == sizeof pool) refill();
    uint8_t b = pool[pool_pos];
    pool[pool_pos++] = 0; /* a used byte does not stay in memory to be read later */
    return b;
}

void nuid_next(char out[NUID_LEN + 1])
{
    if (pool_pid != getpid()) refill();
    for (int i = 0; i < NUID_LEN;) {
        uint8_t b = next_byte();
        if (b < UNBIASED_LIMIT) out[i++] = alphabet[b % ALPHABET_LEN];
    }
    out[NUID_LEN] = '\0';
}

char *nuid_subject(const char *prefix, const char *tag, const char *tail)
{
    size_t pl = strlen(prefix), gl = strlen(tag), tl = tail ? strlen(tail) + 1 : 0;
    char *s = xmalloc(pl + gl + NUID_LEN + tl + 1);
    memcpy(s, prefix, pl);
    memcpy(s + pl, tag, gl);
    nuid_next(s + pl + gl);
    if (tail) {
        s[pl + gl + NUID_LEN] = '.';
        memcpy(s + pl + gl + NUID_LEN + 1, tail, tl);
    }
    return s;
}

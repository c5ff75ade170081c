/* store_fixture.h: what the store's unit tests share: a loop and a store on a temp directory,
 * a commit that waits for its batch, string puts and gets, big-endian keys, counting a db.
 * Header-only (static inline), one copy per test program. */
#ifndef STANZA_TEST_STORE_FIXTURE_H
#define STANZA_TEST_STORE_FIXTURE_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "test.h"

/* ---- fixtures ---- */

typedef struct {
    uv_loop_t loop;
    store_t *s;
    char dir[64];
} fx_t;

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static inline store_t *open_at(fx_t *f, const char *dir, bool sync, uint64_t map)
{
    store_options_t opt = {.dir = dir, .sync = sync, .initial_map_size = map};
    char err[512] = "";
    store_t *s = NULL;
    int rc = store_open(&s, &f->loop, &opt, err, sizeof err);
    if (rc != STZ_OK) fprintf(stderr, "store_open: %s\n", err);
    CHECK_EQ_INT(rc, STZ_OK);
    CHECK(s);
    return s;
}

static inline void fx_init(fx_t *f, bool sync, uint64_t map)
{
    CHECK_EQ_INT(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/stanza-store-test-XXXXXX");
    CHECK(mkdtemp(f->dir));
    f->s = open_at(f, f->dir, sync, map);
}

static inline void loop_done(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
    CHECK_EQ_INT(uv_loop_close(loop), 0);
}

static inline void fx_done(fx_t *f)
{
    store_close(f->s);
    f->s = NULL;
    loop_done(&f->loop);
    rm_rf(f->dir);
}

typedef struct {
    int calls, status, seq;
} done_t;

static int done_seq;

static inline void on_done(void *arg, int status)
{
    done_t *d = arg;
    d->calls++;
    d->status = status;
    d->seq = ++done_seq;
}

/* Submits the current batch and runs the loop until its done callback fired. */
static inline int commit(fx_t *f)
{
    done_t d = {0};
    CHECK_EQ_INT(store_submit(f->s, on_done, &d), STZ_OK);
    while (!d.calls)
        uv_run(&f->loop, UV_RUN_ONCE);
    CHECK_EQ_INT(d.calls, 1);
    return d.status;
}

static inline void put_str(store_t *s, store_db_t db, const char *k, const char *v)
{
    store_put(s, db, k, strlen(k), v, strlen(v));
}

/* The value of k as a string (static buffer), or NULL when absent. Opens its own read view. */
static inline const char *get_str(store_t *s, store_db_t db, const char *k)
{
    static char out[256];
    store_val_t v;
    CHECK_EQ_INT(store_read_begin(s), STZ_OK);
    int rc = store_get(s, db, k, strlen(k), &v);
    if (rc == STZ_OK) {
        CHECK(v.len < sizeof out);
        memcpy(out, v.p, v.len);
        out[v.len] = '\0';
    }
    store_read_end(s);
    if (rc == STZ_ENOENT) return NULL;
    CHECK_EQ_INT(rc, STZ_OK);
    return out;
}

static inline void be32(uint32_t x, unsigned char out[4])
{
    out[0] = (unsigned char)(x >> 24);
    out[1] = (unsigned char)(x >> 16);
    out[2] = (unsigned char)(x >> 8);
    out[3] = (unsigned char)x;
}

static inline uint32_t from_be32(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline size_t count_db(store_t *s, store_db_t db)
{
    size_t n = 0;
    CHECK_EQ_INT(store_read_begin(s), STZ_OK);
    store_cursor_t *c = store_cursor_open(s, db);
    CHECK(c);
    for (int rc = store_cursor_seek(c, NULL, 0, NULL, NULL); rc == STZ_OK;
         rc = store_cursor_next(c, NULL, NULL))
        n++;
    store_cursor_close(c);
    store_read_end(s);
    return n;
}

/* ---- tests ---- */

#endif

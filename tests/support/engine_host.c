/* engine_host: see engine_host.h. */
#include "engine_host.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* The loop must close: anything left on it is a handle the code under test leaked. */
static void close_loop(uv_loop_t *loop, const char *when)
{
    int rc = uv_loop_close(loop);
    if (rc == 0) return;
    fprintf(stderr, "engine_host: handles left on the loop %s: %s\n", when, uv_strerror(rc));
    uv_print_all_handles(loop, stderr);
    abort();
}

int engine_host_start(uv_loop_t *loop, const config_t *cfg, server_t **srv, stan_t **st,
                      monitor_t **mon, char *err, size_t errlen)
{
    if (uv_loop_init(loop) != 0) abort();
    *srv = server_new(loop, cfg);
    bus_t bus;
    server_bus(*srv, &bus);
    *st = stan_new(loop, &bus, cfg);
    err[0] = '\0';
    if (stan_start(*st, err, errlen) != 0) {
        /* Refusing a store it cannot read is right, if it says why; then all must be freed. */
        if (!err[0]) {
            fprintf(stderr, "engine_host: stan_start failed without a message\n");
            abort();
        }
        stan_free(*st);
        uv_run(loop, UV_RUN_DEFAULT);
        server_free(*srv);
        uv_run(loop, UV_RUN_DEFAULT);
        close_loop(loop, "after a failed start");
        *st = NULL;
        *srv = NULL;
        return -1;
    }
    if (server_start(*srv, err, errlen) != 0) {
        fprintf(stderr, "engine_host: cannot start the server: %s\n", err);
        abort();
    }
    if (mon) {
        *mon = monitor_new(loop, cfg, &bus, *st);
        if (monitor_start(*mon, err, errlen) != 0) {
            fprintf(stderr, "engine_host: cannot start the monitor: %s\n", err);
            abort();
        }
    }
    return 0;
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

void engine_host_stop(uv_loop_t *loop, server_t *srv, stan_t *st, monitor_t *mon)
{
    bool stan_down = false, mon_down = false, srv_down = false;
    stan_shutdown(st, set_flag, &stan_down);
    while (!stan_down)
        uv_run(loop, UV_RUN_ONCE);
    if (mon) {
        monitor_close(mon, set_flag, &mon_down);
        while (!mon_down)
            uv_run(loop, UV_RUN_ONCE);
    }
    server_shutdown(srv, set_flag, &srv_down);
    while (!srv_down)
        uv_run(loop, UV_RUN_ONCE);
    stan_free(st);
    uv_run(loop, UV_RUN_DEFAULT);
    if (mon) monitor_free(mon);
    server_free(srv);
    uv_run(loop, UV_RUN_DEFAULT);
    close_loop(loop, "after shutdown");
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void engine_host_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* fuzz_replog: what a Raft peer hands the store in clustered mode: log entries (store_apply,
 * src/store/store_repl.c) and snapshots (store_restore, src/store/store_snap.c), on one store
 * with a log attached, in a temporary directory.
 *
 * Input: byte 0 selects: even, the rest is a log entry at the next index (a decodable one is
 * then committed, and the loop runs until it is); odd, the rest is a snapshot to install. Either
 * may be refused; neither may crash, leak, or leave the store unusable (after each input a small
 * entry of our own must still apply). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine_host.h"
#include "store.h"

static uv_loop_t loop;
static store_t *store;
static uint64_t next_index;
static char dir[64];

static int no_propose(void *arg, void *data, size_t len, uint64_t *index)
{
    (void)arg, (void)data, (void)len, (void)index;
    return -1; /* a follower: nothing of its own to propose */
}

static void cleanup(void)
{
    store_close(store);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    engine_host_rmtree(dir);
}

static void setup(void)
{
    uv_loop_init(&loop);
    snprintf(dir, sizeof dir, "/tmp/stanza-fuzz-replog-XXXXXX");
    if (!mkdtemp(dir)) abort();
    store_options_t opt = {.dir = dir, .sync = false};
    char err[256];
    if (store_open(&store, &loop, &opt, err, sizeof err) != STZ_OK) abort();
    store_log_t log = {.propose = no_propose};
    if (store_set_log(store, &log) != STZ_OK) abort();
    next_index = store_applied_index(store) + 1;
    atexit(cleanup);
}

static void run_until_idle(void)
{
    while (!store_apply_idle(store))
        uv_run(&loop, UV_RUN_ONCE);
}

/* An entry of ours: the header (version 1, ops' length 8) and one put in meta, padded. */
static void apply_own(void)
{
    static const unsigned char own[16] = {1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 1, 1, 'k', 'v'};
    if (store_apply(store, own, sizeof own, next_index++) != STZ_OK) abort();
    run_until_idle();
    if (store_applied_index(store) != next_index - 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store) setup();
    if (size < 1) return 0;
    /* An allocation of exactly the input's size: reads past its end are caught. */
    size_t n = size - 1;
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, data + 1, n);
    if (data[0] % 2 == 0) {
        if (store_apply(store, copy, n, next_index) == STZ_OK) {
            next_index++;
            run_until_idle();
        }
    } else {
        bool replaced;
        if (store_restore(store, copy, n, &replaced) == STZ_OK && replaced)
            next_index = store_applied_index(store) + 1;
    }
    free(copy);
    apply_own();
    return 0;
}

/* stan_commit: see stan_commit.h. */
#include "stan_commit.h"

#include <stdlib.h>

#include "err.h"
#include "log.h"
#include "xalloc.h"

struct stan_commit_cb {
    stan_commit_fn fn;
    void *arg;
    stan_commit_cb_t *next;
};

void stan_commit_init(stan_commit_t *c, store_t *store, stan_commit_fn before, stan_commit_fn after,
                      void *hook_arg)
{
    c->store = store;
    c->head = c->tail = c->inflight = NULL;
    c->before = before;
    c->after = after;
    c->hook_arg = hook_arg;
}

static void free_list(stan_commit_cb_t *cb)
{
    while (cb) {
        stan_commit_cb_t *next = cb->next;
        free(cb);
        cb = next;
    }
}

void stan_commit_free(stan_commit_t *c)
{
    free_list(c->head);
    free_list(c->inflight);
    c->head = c->tail = c->inflight = NULL;
}

void stan_commit_on(stan_commit_t *c, stan_commit_fn fn, void *arg)
{
    stan_commit_cb_t *cb = xmalloc(sizeof *cb);
    cb->fn = fn;
    cb->arg = arg;
    cb->next = NULL;
    if (c->tail)
        c->tail->next = cb;
    else
        c->head = cb;
    c->tail = cb;
}

bool stan_commit_in_flight(const stan_commit_t *c)
{
    return store_in_flight(c->store);
}

static void finish(stan_commit_t *c, stan_commit_cb_t *cb, int status)
{
    if (c->before) c->before(c->hook_arg, status);
    while (cb) {
        stan_commit_cb_t *next = cb->next;
        cb->fn(cb->arg, status);
        free(cb);
        cb = next;
    }
    if (c->after) c->after(c->hook_arg, status);
}

static void on_done(void *arg, int status)
{
    stan_commit_t *c = arg;
    stan_commit_cb_t *cb = c->inflight;
    c->inflight = NULL;
    if (status != STZ_OK)
        LOG_E("store commit failed: %s; the batch's completions get the error",
              stz_strerror(status));
    finish(c, cb, status);
}

void stan_commit_submit(stan_commit_t *c)
{
    if (store_in_flight(c->store)) return;
    stan_commit_cb_t *cb = c->head;
    c->head = c->tail = NULL;
    if (store_batch_empty(c->store)) {
        /* Nothing to write: whatever waits on this batch is done already. */
        if (cb) finish(c, cb, STZ_OK);
        return;
    }
    c->inflight = cb;
    int rc = store_submit(c->store, on_done, c);
    if (rc != STZ_OK) {
        LOG_E("store submit failed: %s", stz_strerror(rc));
        c->inflight = NULL;
        finish(c, cb, rc);
    }
}

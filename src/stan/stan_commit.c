/* stan_commit: see stan_commit.h. */
#include "stan_commit.h"

#include <stdlib.h>

#include "err.h"
#include "log.h"
#include "xalloc.h"

typedef struct completion {
    list_node_t link;
    stan_commit_fn fn;
    void *arg;
} completion_t;

void stan_commit_init(stan_commit_t *c, store_t *store, stan_commit_fn before, stan_commit_fn after,
                      void *hook_arg)
{
    c->store = store;
    list_init(&c->building);
    list_init(&c->inflight);
    c->before = before;
    c->after = after;
    c->hook_arg = hook_arg;
}

static void free_list(list_node_t *head)
{
    list_node_t *n;
    while ((n = list_pop_front(head)))
        free(LIST_ITEM(n, completion_t, link));
}

void stan_commit_free(stan_commit_t *c)
{
    if (!c->store) return;
    free_list(&c->building);
    free_list(&c->inflight);
}

static void add_completion(list_node_t *batch, stan_commit_fn fn, void *arg)
{
    completion_t *cb = xmalloc(sizeof *cb);
    cb->fn = fn;
    cb->arg = arg;
    list_push_back(batch, &cb->link);
}

void stan_commit_on(stan_commit_t *c, stan_commit_fn fn, void *arg)
{
    add_completion(&c->building, fn, arg);
}

void stan_commit_after_current(stan_commit_t *c, stan_commit_fn fn, void *arg)
{
    add_completion(store_in_flight(c->store) ? &c->inflight : &c->building, fn, arg);
}

bool stan_commit_in_flight(const stan_commit_t *c)
{
    return store_in_flight(c->store);
}

/* Runs and frees the completions on `batch` (a list of their own: the next batch may be
 * submitted from inside one of them). */
static void finish(stan_commit_t *c, list_node_t *batch, int status)
{
    if (c->before) c->before(c->hook_arg, status);
    list_node_t *n;
    while ((n = list_pop_front(batch))) {
        completion_t *cb = LIST_ITEM(n, completion_t, link);
        cb->fn(cb->arg, status);
        free(cb);
    }
    if (c->after) c->after(c->hook_arg, status);
}

/* Moves every node of from to the (empty) list to. */
static void take_all(list_node_t *to, list_node_t *from)
{
    list_init(to);
    if (list_empty(from)) return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

static void on_done(void *arg, int status)
{
    stan_commit_t *c = arg;
    list_node_t batch;
    take_all(&batch, &c->inflight);
    if (status != STZ_OK)
        LOG_E("store commit failed: %s; the batch's completions get the error",
              stz_strerror(status));
    finish(c, &batch, status);
}

void stan_commit_fail_all(stan_commit_t *c, int status)
{
    if (!c->store) return;
    list_node_t batch;
    take_all(&batch, &c->inflight);
    finish(c, &batch, status);
    take_all(&batch, &c->building);
    finish(c, &batch, status);
}

void stan_commit_submit(stan_commit_t *c)
{
    if (store_in_flight(c->store)) return;
    if (store_batch_empty(c->store)) {
        /* Nothing to write: whatever waits on this batch is done already. */
        if (!list_empty(&c->building)) {
            list_node_t batch;
            take_all(&batch, &c->building);
            finish(c, &batch, STZ_OK);
        }
        return;
    }
    take_all(&c->inflight, &c->building);
    int rc = store_submit(c->store, on_done, c);
    if (rc != STZ_OK) {
        LOG_E("store submit failed: %s", stz_strerror(rc));
        list_node_t batch;
        take_all(&batch, &c->inflight);
        finish(c, &batch, rc);
    }
}

/* stan_commit: the group commit. Everything the engine writes during one loop iteration goes
 * into the store's batch being built (store.h); callers that must follow the batch's outcome
 * register a completion fn(arg, status) with it. stan_commit_submit hands the batch to the store
 * (one LMDB transaction on the thread pool); when it is done, every completion of that batch
 * runs in the order registered, with status 0 or a negative STZ_E* code. At most one batch is
 * in flight; whatever is registered meanwhile belongs to the next one.
 *
 * It knows nothing of what the batches hold: this is the seam where replication hooks in. */
#ifndef STANZA_STAN_COMMIT_H
#define STANZA_STAN_COMMIT_H
#include <stdbool.h>

#include "list.h"
#include "store.h"

typedef void (*stan_commit_fn)(void *arg, int status);

typedef struct stan_commit {
    store_t *store;
    list_node_t building; /* completions of the batch being built */
    list_node_t inflight; /* completions of the batch in flight */
    /* Runs first for every batch that ends (before its completions), and last (after them). */
    stan_commit_fn before, after;
    void *hook_arg;
} stan_commit_t;

void stan_commit_init(stan_commit_t *c, store_t *store, stan_commit_fn before, stan_commit_fn after,
                      void *hook_arg);
/* Drops the completions that never ran (at exit); harmless on a zeroed, never initialised one. */
void stan_commit_free(stan_commit_t *c);
/* fn(arg, status) once the batch being built has committed (0) or failed. */
void stan_commit_on(stan_commit_t *c, stan_commit_fn fn, void *arg);
/* fn(arg, status) once the batch in flight has ended (after its own completions), or with none
 * in flight once the batch being built has: for work that must be staged while no batch is in
 * flight (the admin commands, stan_admin.c). */
void stan_commit_after_current(stan_commit_t *c, stan_commit_fn fn, void *arg);
/* Submits the batch being built unless one is in flight (then it waits for the next call). A
 * batch with no store operation completes at once with 0. */
void stan_commit_submit(stan_commit_t *c);
bool stan_commit_in_flight(const stan_commit_t *c);
/* For batches the store will never finish (clustered: the node lost the lead and its proposal
 * was dropped): runs the in-flight batch's completions, then those of the batch being built, with
 * status, hooks included, so that every owner learns the outcome and frees what it holds. */
void stan_commit_fail_all(stan_commit_t *c, int status);
/* Whether completions wait for the batch being built. */
static inline bool stan_commit_waiting(const stan_commit_t *c)
{
    return c->store && !list_empty(&c->building);
}

#endif

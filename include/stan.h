/* stan: the NATS Streaming engine. It is an in-process client of the NATS core server (server.h):
 * it subscribes the _STAN.* request subjects, keeps clients, channels and subscriptions, stores
 * everything in the LMDB store (store.h) with one group commit per loop iteration, and delivers
 * stored messages to subscription inboxes. See docs/architecture.md and docs/storage.md. */
#ifndef STANZA_STAN_H
#define STANZA_STAN_H
#include <signal.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "server.h"

typedef struct stan stan_t;

/* cfg and srv must outlive the engine. */
stan_t *stan_new(uv_loop_t *loop, server_t *srv, const config_t *cfg);
/* Opens the store, recovers clients/channels/subscriptions, subscribes the request subjects.
 * Returns 0, or -1 with a message in err (e.g. the store cannot be opened, or it belongs to
 * another cluster id). */
int stan_start(stan_t *st, char *err, size_t errlen);
/* Stops taking requests and waits for the commit in flight; then done(arg) on the loop. */
void stan_shutdown(stan_t *st, void (*done)(void *arg), void *arg);
void stan_free(stan_t *st);
/* Once *flag is non-zero (set by a signal handler), requests are dropped unanswered. */
void stan_set_stop_flag(stan_t *st, volatile sig_atomic_t *flag);

#endif

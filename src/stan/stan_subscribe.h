/* stan_subscribe: the subscription requests (subscribe with its start positions, durables and
 * queue groups; unsubscribe; close) and the recovery of subscription records at start-up. */
#ifndef STANZA_STAN_SUBSCRIBE_H
#define STANZA_STAN_SUBSCRIBE_H
#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "stan_ctx.h"

void stan_subscribe_on_request(stan_t *st, const bus_msg_t *m);
/* Unsubscribe, or (close_only) close: a durable then stays, offline. */
void stan_subscribe_on_unsubscribe(stan_t *st, const bus_msg_t *m, bool close_only);
/* A SubRecord from the store (within a read view); 0, STZ_EIO if it is damaged (skipped), or
 * STZ_ENOENT if its channel or (not durable) its client is gone (dropped from the store). */
int stan_subscribe_restore(stan_t *st, const void *rec, size_t len);

#endif

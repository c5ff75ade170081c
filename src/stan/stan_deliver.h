/* stan_deliver: getting stored messages to subscriptions: the per-iteration delivery pass over
 * the ready list (within a budget), queue member choice, the MaxInflight window, AckWait
 * redelivery, acks, and the tick that retries deliveries held back for an absent inbox. */
#ifndef STANZA_STAN_DELIVER_H
#define STANZA_STAN_DELIVER_H
#include "bus.h"
#include "stan_ctx.h"

/* One delivery pass over the ready subscriptions (the flush hook's first step). */
void stan_deliver_ready(stan_t *st);
/* An Ack on a subscription's ack inbox (arg: the engine). */
void stan_deliver_on_ack(void *arg, const bus_msg_t *m);
/* Once a second: retry deliveries held back because an inbox had nobody behind it. */
void stan_deliver_tick(stan_t *st);
/* Closes the handle that keeps the loop awake while deliveries wait (at shutdown). */
void stan_deliver_close(stan_t *st);

#endif

/* stan_pub: PubMsg -> staged -> (next batch) stored with a sequence -> PubAck after commit. */
#ifndef STANZA_STAN_PUB_H
#define STANZA_STAN_PUB_H
#include "bus.h"
#include "stan_ctx.h"

void stan_pub_on_msg(stan_t *st, const bus_msg_t *m);
/* The engine's own publish of data (and reply) onto ch (a dead letter, a requeued message): it
 * waits for its batch with the clients' publishes and is stored as they are (sequence, limits,
 * discard: new counting it), without a PubAck; hooks (stan_ctx.h) follow it. The caller checked
 * that ch has room (stan_channel_full) and sequences left. */
void stan_pub_internal(stan_t *st, stan_channel_t *ch, const char *reply, size_t reply_len,
                       const uint8_t *data, size_t len, const stan_pub_hooks_t *hooks, void *arg);
/* At exit: the hooks of messages that never reached a batch end with STZ_ECANCELED. */
void stan_pub_free(stan_t *st);
/* Moves staged messages into the store batch being built (assigning sequences, applying
 * limits); one batch's share at most, the rest waits for the next. */
void stan_pub_stage_batch(stan_t *st);
/* The batch of the staged messages ended: channels move forward and PubAcks go out, or the
 * channels roll back and the PubAcks carry the error. Once per batch, before its other
 * completions, so that channel state is current before anyone reads it. */
void stan_pub_batch_done(stan_t *st, int status);

#endif

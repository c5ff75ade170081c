/* stan_pub: PubMsg -> staged -> (next batch) stored with a sequence -> PubAck after commit. */
#ifndef STANZA_STAN_PUB_H
#define STANZA_STAN_PUB_H
#include "server.h"
#include "stan_ctx.h"

void stan_pub_on_msg(stan_t *st, const server_msg_t *m);
/* Moves staged messages into the store batch being built (assigning sequences, applying
 * limits); one batch's share at most, the rest waits for the next. */
void stan_pub_stage_batch(stan_t *st);
/* The batch of the staged messages ended: channels move forward and PubAcks go out, or the
 * channels roll back and the PubAcks carry the error. Once per batch, before its other
 * completions, so that channel state is current before anyone reads it. */
void stan_pub_batch_done(stan_t *st, int status);

#endif

/* stan_dead: max_deliveries and dead letters (issue 9).
 *
 * A message delivered max_deliveries times to a subscription (or queue member) without an ack
 * is not redelivered when it comes due again: it is published to the channel's dead-letter
 * channel (limits.dead_letter, "{channel}" replaced by the origin's name) through the publish
 * staging (stan_pub_internal), and in the same batch a DeadRecord (proto/store.proto) is put in
 * STORE_DB_DEAD under the dead letter's message key, the unacked row is deleted and the
 * subscription's record (dead_total) is rewritten. A failed batch puts everything back as the
 * disk has it: the message unacked again (due at once), dead_total as it was.
 *
 * Layers: above stan_pub (it publishes through its staging), below stan_deliver (which hands it
 * the messages that reached max_deliveries) and the admin commands (stan_admin.c and the
 * dead-letter reads and requeue in stan_dead_admin.c). The records' removal together with the
 * messages they describe is the channel's (stan_channel_stage_dead_removed). */
#ifndef STANZA_STAN_DEAD_H
#define STANZA_STAN_DEAD_H
#include <stdbool.h>
#include <stdint.h>

#include "stan.h"
#include "stan_ctx.h"

typedef struct stan_pending stan_pending_t; /* stan_pending.h */

/* The record of dead letter seq of dead-letter channel ch, within a read view: 0, STZ_ENOENT
 * (none: not a dead letter, or ch never held any) or STZ_EIO (damaged). The strings stay valid
 * until the next stan_dead_lookup (or the engine is freed). */
int stan_dead_lookup(stan_t *st, stan_channel_t *ch, uint64_t seq, stan_dead_info_t *out);
/* The same from the stored value v of that record (a cursor's). */
int stan_dead_decode(stan_t *st, stan_channel_t *ch, uint64_t seq, const store_val_t *v,
                     stan_dead_info_t *out);

/* The name of ch's dead-letter channel (its dead_letter limit, "{channel}" replaced) in out;
 * false (out undefined) if it does not fit. */
bool stan_dead_channel_name(const stan_channel_t *ch, char *out, size_t outlen);

/* Delivery found p (delivered p->count times to s, unacked) due again, and p->count reached the
 * channel's max_deliveries: true if it is being dead-lettered (it waits for the next batch and
 * must not be redelivered), false if it cannot be (logged once per channel): redeliver it. */
bool stan_dead_take(stan_t *st, stan_sub_t *s, stan_pending_t *p);
/* At start-up, within the recovery's read view: which channels hold dead letters. */
void stan_dead_restore(stan_t *st);
void stan_dead_free(stan_t *st);

#endif

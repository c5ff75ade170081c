/* stan_handover: fast hand-over of a gone queue member's unacked messages.
 *
 * Slow jobs come with a long AckWait, so a worker that dies would hold its jobs that long. When
 * the connection behind a queue member's inbox closes (the NATS layer's sub-gone hook, fired
 * for each subscription of a closed connection), or its client's heartbeat goes unanswered,
 * the member's grace starts (handover_grace). If it has not come back when the grace ends
 * (someone listens on its inbox again; its client answered a heartbeat again), its unacked
 * messages go to another online member of its group, due at once (flagged redelivered, counted
 * as the heir's redeliveries). With no other member online nothing moves: AckWait and the
 * delivery pass's own hand-over stay in charge. Plain subscriptions are never affected.
 *
 * Members in their grace wait on one engine-wide list with one timer: every grace is as long,
 * so the order they start in is the order they end in. Everything is O(members concerned). */
#ifndef STANZA_STAN_HANDOVER_H
#define STANZA_STAN_HANDOVER_H
#include <stdbool.h>
#include <stddef.h>

#include "list.h"
#include "stan_ctx.h"

/* Why a member's grace runs (stan_sub_t.grace_why): ended by interest on its inbox, or by an
 * answered heartbeat. */
enum { STAN_GRACE_CLOSED = 1, STAN_GRACE_HB = 2 };

/* Where s's unacked messages go: another member of its group that is online, listened to, not
 * in its own grace, with the fewest unacked messages. NULL: none. */
stan_sub_t *stan_handover_heir(stan_t *st, const stan_sub_t *s);
/* Moves s's unacked messages to heir, due at once (stan_sub_transfer). If the batch fails, the
 * heir's rows are rewritten and s's row deletes replayed (redo deletes), so the disk cannot end
 * up giving the messages to both. */
void stan_handover_move(stan_t *st, stan_sub_t *s, stan_sub_t *heir);
/* The bus's sub-gone hook (bus.h; arg: the engine): a closed connection listened on
 * subject. A queue member with that inbox and unacked messages starts its grace. */
void stan_handover_on_sub_gone(void *arg, const char *subject, size_t len);
/* A client's heartbeat went unanswered: its queue members with unacked messages start their
 * grace. unheard: nobody listened on its heartbeat inbox (its connection is gone), so the
 * grace ends as for a closed connection. */
void stan_handover_client_missed(stan_t *st, list_node_t *cl_subs, bool unheard);
/* The client answered a heartbeat again: the graces its misses started end, nothing moves. */
void stan_handover_client_alive(stan_t *st, list_node_t *cl_subs);
/* Hands over for every grace that has ended (its timer, and stan_run_due). */
void stan_handover_run_due(stan_t *st);
/* Closes the timer (shutdown; idempotent). */
void stan_handover_close(stan_t *st);

#endif

/* stan_admin: operator commands on the engine (issue 9), behind the monitoring port's /admin/
 * endpoints and the `stanza` admin commands.
 *
 * Every command that changes state is staged into the batch being built, exactly as a publish
 * is, and answers only once that batch has committed: the result callback fn(arg, result) runs
 * later, from the loop, with result->status 0 or the batch's error (memory then still says what
 * the disk says: a failed command changed nothing). This is also the commit path that
 * replication hooks into, so a replicated engine replicates these commands with no extra work.
 *
 * Calling convention for the changing commands: the function returns 0 when the command was
 * accepted (fn will run exactly once, never from inside the call), or a negative STZ_E* code
 * with a one-line reason in err (fn will never run):
 *   STZ_ENOENT  no such channel / durable / client / sequence / dead letter
 *   STZ_EINVAL  arguments the command cannot take (a name too long, seq 0 where one is needed)
 *   STZ_EBUSY   refused in this state (delete-channel with subscriptions and no force)
 *   STZ_ECANCELED the engine is shutting down
 * The reads (message, dead letters) answer at once through their callback, inside the call,
 * with pointers valid only during it (they point into the store's map). */
#ifndef STANZA_STAN_ADMIN_H
#define STANZA_STAN_ADMIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stan.h"

typedef struct stan_admin_result {
    int status;     /* 0, or the commit's STZ_E* error */
    uint64_t count; /* what the command did: messages purged or requeued, subscriptions
                     * removed or paused, ... (per command below) */
    uint64_t msgs;  /* the channel's stored messages after the command (purge, requeue: the
                     * origin channel; delete-channel: the messages it had) */
    uint64_t first_seq, last_seq; /* the channel's after the command (as msgs) */
} stan_admin_result_t;
typedef void (*stan_admin_fn)(void *arg, const stan_admin_result_t *r);

/* Removes the messages of channel from its first one up to upto (0: all of them), as limits
 * evict: subscriptions skip them, unacked ones among them count as acked. count = removed.
 * The channel, its sequence numbering and its subscriptions stay. */
int stan_admin_purge(stan_t *st, const char *channel, uint64_t upto, stan_admin_fn fn, void *arg,
                     char *err, size_t errlen);
/* Removes channel: its messages, its record, its subscriptions (their clients are not told:
 * STAN has no message for it). Refused with STZ_EBUSY while it has subscriptions (offline
 * durables included) unless force. count = subscriptions removed; msgs = messages removed. */
int stan_admin_delete_channel(stan_t *st, const char *channel, bool force, stan_admin_fn fn,
                              void *arg, char *err, size_t errlen);
/* Removes a durable subscription (online or offline): the plain durable of that name (of
 * client_id only, when given; else of every client that has one: a durable is a client's), or
 * with queue set the durable queue group of that name (every member; client_id must be NULL:
 * STZ_EINVAL). Its position and unacked messages are forgotten. count = subscriptions
 * removed. */
int stan_admin_delete_durable(stan_t *st, const char *channel, const char *durable,
                              const char *queue, const char *client_id, stan_admin_fn fn, void *arg,
                              char *err, size_t errlen);
/* Closes a client as its own close request would: plain subscriptions removed, durables kept
 * offline, the ID free for a new connect. count = subscriptions it had. */
int stan_admin_close_client(stan_t *st, const char *client_id, stan_admin_fn fn, void *arg,
                            char *err, size_t errlen);
/* Holds (pause) or releases (resume) every delivery and redelivery of one queue group (queue,
 * the name clients give; with durable as well: the durable group) or one plain durable
 * (durable only; client_id as for delete-durable). Persisted: a paused subscription stays paused
 * across restarts and members joining a paused group are paused. Unacked messages stay unacked;
 * when resumed, those past their AckWait go out at once. count = subscriptions affected. */
int stan_admin_pause(stan_t *st, const char *channel, const char *queue, const char *durable,
                     const char *client_id, bool pause, stan_admin_fn fn, void *arg, char *err,
                     size_t errlen);
/* Publishes dead letters of origin channel `channel` again onto it (new sequences, same
 * payload and reply): the one at dead-letter sequence dead_seq, or (dead_seq 0) every one not
 * requeued yet. Each stays in the dead-letter channel, its record marked with the sequence it
 * got back on the origin. count = messages requeued; first_seq/last_seq/msgs: the origin's. */
int stan_admin_requeue(stan_t *st, const char *channel, uint64_t dead_seq, stan_admin_fn fn,
                       void *arg, char *err, size_t errlen);

typedef struct stan_admin_msg {
    const char *channel;
    uint64_t seq;
    int64_t ts; /* ns since the epoch */
    const uint8_t *data;
    size_t len;
    const char *reply;
    size_t reply_len;
    const stan_dead_info_t *dead; /* NULL unless channel is a dead-letter channel holding it
                                   * (stan.h) */
} stan_admin_msg_t;

/* Message seq of channel, handed to fn during the call. 0, STZ_ENOENT (no such channel, or the
 * message is not stored: never was, or removed), or STZ_EIO, with err set. */
int stan_admin_msg_read(stan_t *st, const char *channel, uint64_t seq,
                        void (*fn)(void *arg, const stan_admin_msg_t *m), void *arg, char *err,
                        size_t errlen);
/* The dead letters that came from origin channel `channel` (in dead-letter sequence order),
 * skipping the first `offset` and handing at most `limit` (0: no limit) to fn; *total gets how
 * many there are. *dead_channel (may be NULL) gets the name of its dead-letter channel. 0 or
 * STZ_ENOENT (no such channel) with err set. A channel that never dead-lettered has none. */
int stan_admin_foreach_dead(stan_t *st, const char *channel, size_t offset, size_t limit,
                            void (*fn)(void *arg, const stan_dead_info_t *d), void *arg,
                            uint64_t *total, const char **dead_channel, char *err, size_t errlen);

#endif

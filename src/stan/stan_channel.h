/* stan_channel: the channel registry, channel records, a channel's committed and assigned
 * sequences, and its limits (max_msgs, max_bytes, max_age, max_inactivity). The struct is shared
 * read-only: publishing, subscriptions, delivery and the snapshots read its sequences and
 * totals; only this file and stan_pub.c (sequences it assigns to a batch) write them. */
#ifndef STANZA_STAN_CHANNEL_H
#define STANZA_STAN_CHANNEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "list.h"
#include "stan_ctx.h"
#include "strmap.h"

struct stan_channel {
    uint32_t id;
    char *name;
    size_t name_len;
    config_limits_t limits;
    /* Its ChannelRecord: not written (or lost with a failed batch), staged in a batch not
     * committed yet, or committed. Anything staged that refers to the channel (a message, a
     * subscription record) first makes sure the record goes with it or before it. */
    enum { STAN_REC_NONE, STAN_REC_STAGED, STAN_REC_STORED } rec;
    /* committed state */
    uint64_t first_seq, last_seq; /* first_seq = last_seq + 1 when empty */
    uint64_t msgs, bytes;
    uint64_t cum_last; /* running payload total at last_seq */
    /* assigned state (messages in the batch in flight) */
    uint64_t next_seq;
    uint64_t cum_next;
    int64_t last_ts;
    uint64_t evict_to;        /* evictions staged up to this seq (inclusive) */
    uint64_t base_cum;        /* running payload total before first_seq (committed) */
    uint64_t staged_base_cum; /* the same after the staged evictions */
    bool warned_limit;        /* logged once that limits drop messages */
    bool warned_dead;         /* logged once that a dead letter could not be written */
    bool limits_due;          /* has messages in the batch being built, limits not applied yet */
    list_node_t subs;         /* stan_sub_t.ch_link (stan_sub.c) */
    size_t nsubs;
    strmap_t qgroups;          /* key -> stan_qgroup_t (stan_sub.c) */
    strmap_t durables;         /* "client|durable" (non-queue) -> stan_sub_t (stan_sub.c) */
    uint64_t last_activity_ms; /* clock_mono_ms of its last publish or unsubscribe */
    /* Publishes accepted and not committed yet (staged, or in the batch in flight), so that
     * discard: new counts them against max_msgs and max_bytes (stan_pub.c). */
    uint64_t pend_msgs, pend_bytes;
    /* It holds dead letters (a DeadRecord per message, stan_dead.c): removing its messages
     * removes their records in the same batch. Known from the store at start-up. */
    bool holds_dead;
    /* An admin delete-channel is on its way (stan_admin.c): publishes and subscriptions are
     * refused, limits and max_inactivity leave it alone, until its batch ends. */
    bool deleting;
};

/* Finds or creates (if create) a channel; *err gets an NSS error text on failure. */
stan_channel_t *stan_channel_get(stan_t *st, const char *name, size_t len, bool create,
                                 const char **err);
stan_channel_t *stan_channel_by_id(stan_t *st, uint32_t id);
int stan_channel_restore(stan_t *st, const void *rec, size_t len);
/* Stages the channel's record unless it is committed or on its way. */
void stan_channel_ensure_record(stan_t *st, stan_channel_t *ch);
void stan_channel_free_all(stan_t *st);
bool stan_channel_name_valid(const char *name, size_t len);
/* With discard: new, whether a message of len bytes would take the channel past max_msgs or
 * max_bytes (counting what is pending): NULL if it fits, else "max_msgs" or "max_bytes" and the
 * limit in *limit. */
const char *stan_channel_full(const stan_channel_t *ch, size_t len, int64_t *limit);
/* Stages the evictions the channel's limits need once its staged messages are in (none with
 * discard: new, whose publishes are refused instead). */
void stan_channel_stage_limits(stan_t *st, stan_channel_t *ch);
/* Message seq (running total cum) is durable, with the evictions staged in the same batch.
 * Returns true if the channel moved forward (its subscriptions have something new). */
bool stan_channel_committed(stan_channel_t *ch, uint64_t seq, uint64_t cum);
/* After a failed batch: forget assigned-but-uncommitted sequences. */
void stan_channel_rollback(stan_channel_t *ch);
/* The channel's running payload total at seq (committed messages): what byte counts of
 * sequence ranges are computed from. */
uint64_t stan_channel_cum_at(stan_t *st, stan_channel_t *ch, uint64_t seq);
/* The first sequence stored at or after wall time ts (last_seq + 1 if none). */
uint64_t stan_channel_seq_at_time(stan_t *st, stan_channel_t *ch, int64_t ts);
/* Stages the removal of the channel's committed messages up to upto (0, or past the last: all
 * of them) as limits evict them; the channel's first sequence moves when the batch commits.
 * Returns how many are removed (*from..*to; 0: none, nothing staged). */
uint64_t stan_channel_stage_purge(stan_t *st, stan_channel_t *ch, uint64_t upto, uint64_t *from,
                                  uint64_t *to);
/* Stages the removal of the channel from the store: its messages and its record (the admin
 * delete-channel, which forgets it once the batch committed: plain deletes, not replayed;
 * max_inactivity's own removal uses redo deletes). Its subscriptions are the caller's. */
void stan_channel_stage_delete(stan_t *st, stan_channel_t *ch);
/* Forgets the channel (no subscription may be left on it; nothing of it staged or in flight). */
void stan_channel_free(stan_t *st, stan_channel_t *ch);
/* Stages the removal of the DeadRecords of messages from..to (being removed in the same batch);
 * nothing unless the channel holds dead letters. */
void stan_channel_stage_dead_removed(stan_t *st, stan_channel_t *ch, uint64_t from, uint64_t to);
/* Once a second: max_age expiry and max_inactivity removal. */
void stan_channel_tick(stan_t *st);

#endif

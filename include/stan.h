/* stan: the NATS Streaming engine. It is a client of NATS through its bus (bus.h: the embedded
 * server in-process, or an upstream NATS connection): it subscribes the _STAN.* request subjects,
 * keeps clients, channels and subscriptions, stores everything in the LMDB store (store.h) with one
 * group commit per loop iteration, and delivers stored messages to subscription inboxes. See
 * docs/architecture.md and docs/storage.md. */
#ifndef STANZA_STAN_H
#define STANZA_STAN_H
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "bus.h"
#include "store.h"

typedef struct stan stan_t;

/* The engine runs over bus (bus.h: the embedded server, or an upstream NATS connection); it
 * keeps a copy of the table. cfg and what bus points to must outlive the engine. */
stan_t *stan_new(uv_loop_t *loop, const bus_t *bus, const config_t *cfg);
/* Opens the store, recovers clients/channels/subscriptions, subscribes the request subjects.
 * Returns 0, or a negative STZ_E* code with a message in err (e.g. the store cannot be opened,
 * or it belongs to another cluster id). */
int stan_start(stan_t *st, char *err, size_t errlen);
/* Before stan_start: the engine works on this store (already open, owned by the caller, which
 * closes it after stan_free) instead of opening its own. Clustered mode: the store outlives the
 * engines the node runs while it leads. */
void stan_use_store(stan_t *st, store_t *store);
/* Instead of stan_start (after stan_use_store), for a follower's monitoring: loads the store's
 * clients, channels and subscriptions as a restart would, and then does nothing: no request
 * subjects, no timers, no heartbeats or redeliveries, and what loading would have written is
 * dropped. The monitoring endpoints read it like a serving engine. */
int stan_load_view(stan_t *st, char *err, size_t errlen);
/* The start time monitoring shows (wall clock; stan_new's time by default): clustered mode
 * keeps the daemon's across the engines it runs. */
void stan_set_start_time(stan_t *st, int64_t wall_ns);
/* Clustered mode, the node no longer leads: stops taking requests at once, drops the batch
 * proposed (it fails, or commits under the next leader) and the one being built, and answers
 * what waited on them with errors; nothing more is written. stan_free follows. */
void stan_abandon(stan_t *st);
/* Stops taking requests and waits for the commit in flight; then done(arg) on the loop. */
void stan_shutdown(stan_t *st, void (*done)(void *arg), void *arg);
void stan_free(stan_t *st);
/* Once *flag is non-zero (set by a signal handler), requests are dropped unanswered. */
void stan_set_stop_flag(stan_t *st, volatile sig_atomic_t *flag);
/* Runs now what the engine's timers run when due: redeliveries past their AckWait, max_age
 * expiry, inactive channels (max_inactivity), deliveries held back for an absent inbox, and
 * heartbeats (those due are sent; a client past hb_fail_count missed answers is closed), and
 * queue members' hand-overs whose handover_grace ended. The delivery pass and the commit follow on
 * the loop. For tests that move the fake clock (clock.h) instead of waiting. */
void stan_run_due(stan_t *st);

/* ---- monitoring snapshots (strings valid until the engine next runs on the loop) ---- */

typedef struct stan_server_info {
    const char *cluster_id, *server_id;
    int64_t start_ns; /* wall clock */
    size_t clients, subscriptions, channels;
    uint64_t total_msgs, total_bytes; /* stored now, all channels */
} stan_server_info_t;

typedef struct stan_channel_info {
    const char *name;
    uint64_t msgs, bytes, first_seq, last_seq;
    size_t subs;
} stan_channel_info_t;

/* One subscription. For a queue member the backlog is the group's (shared) and the in-flight
 * set its own. Bytes are payload bytes. */
typedef struct stan_sub_info {
    const char *channel, *client_id, *inbox, *ack_inbox;
    const char *durable_name; /* NULL if not durable */
    const char *queue_name;   /* NULL if not in a group; "durable:group" for a durable group */
    bool is_durable, is_offline, is_stalled;
    int32_t max_inflight, ack_wait;
    uint64_t last_sent;
    uint64_t inflight_msgs, inflight_bytes; /* delivered, not acked (NSS's pending_count) */
    uint64_t backlog_msgs, backlog_bytes;   /* stored after last_sent, not delivered yet */
    uint64_t pending_msgs, pending_bytes;   /* backlog + inflight: all it still has to ack */
    double oldest_pending_age;              /* seconds since the oldest of those was stored */
    uint64_t redelivered_total;
    uint64_t dead_total; /* messages it sent to the dead-letter channel (max_deliveries) */
    bool is_paused;      /* deliveries held by an operator (stan_admin_pause) */
} stan_sub_info_t;

typedef struct stan_client_info {
    const char *id, *hb_inbox;
    size_t subs;
} stan_client_info_t;

/* Callbacks return non-zero to stop the walk. */
typedef int (*stan_channel_fn)(void *arg, const stan_channel_info_t *ci);
typedef int (*stan_sub_fn)(void *arg, const stan_sub_info_t *si);
typedef int (*stan_client_fn)(void *arg, const stan_client_info_t *ci);

void stan_get_server_info(stan_t *st, stan_server_info_t *out);

typedef struct stan_store_info {
    const char *type;  /* "FILE" (LMDB on disk) or "MEMORY", as NSS names them */
    bool writable;     /* the last commit succeeded */
    const char *error; /* why not, when !writable */
    uint64_t redeliveries_total;
    uint64_t dead_letters_total; /* dead letters written since start (max_deliveries) */
    store_stats_t stats;
} stan_store_info_t;
void stan_get_store_info(stan_t *st, stan_store_info_t *out);
/* Channels in name order. */
void stan_foreach_channel(stan_t *st, stan_channel_fn fn, void *arg);
/* 0, or STZ_ENOENT when there is no such channel. */
int stan_get_channel_info(stan_t *st, const char *name, stan_channel_info_t *out);
/* Subscriptions of one channel and/or one client (NULL: any), offline durables included. */
void stan_foreach_sub(stan_t *st, const char *channel, const char *client_id, stan_sub_fn fn,
                      void *arg);
/* Clients in id order. */
void stan_foreach_client(stan_t *st, stan_client_fn fn, void *arg);
/* 0, or STZ_ENOENT when there is no such client. */
int stan_get_client_info(stan_t *st, const char *id, stan_client_info_t *out);

/* What is kept about a dead letter: message dead_seq of dead_channel came from origin_seq of
 * origin after `deliveries` deliveries without an ack to the subscription (or queue group)
 * named by subscription, the last one to last_client. */
typedef struct stan_dead_info {
    const char *dead_channel;
    uint64_t dead_seq;
    const char *origin;
    uint64_t origin_seq;
    uint32_t deliveries;
    const char *last_client;
    const char *subscription; /* "queue:NAME", "durable:NAME", "durable-queue:NAME" or "inbox" */
    int64_t dead_ns;          /* when it was dead-lettered (wall clock) */
    uint64_t requeued_seq;    /* its sequence on origin once requeued; 0 = not requeued */
} stan_dead_info_t;

/* What a consumer still has to acknowledge: the one computation behind /metrics,
 * /streaming/pendingz and `stanza pending`. A row is a plain or durable subscription, or a whole
 * queue group: its members share the group's backlog, so a group row has that backlog once, the
 * sum of its members' in-flight sets and redeliveries, and the oldest of their ages; it is
 * stalled when every member is, offline when no member is online. */
typedef struct stan_pending_row {
    const char *channel;
    const char *queue_name;            /* NULL for a subscription; "durable:group" if durable */
    const char *queue_group;           /* the group as its clients name it (no "durable:") */
    const char *durable_name;          /* NULL if not durable */
    const char *client_id, *ack_inbox; /* the subscription's; NULL for a group */
    const char *const *member_ids;     /* client IDs: the subscription's, or every member's */
    size_t members, online;
    uint64_t inflight_msgs, inflight_bytes, backlog_msgs, backlog_bytes;
    uint64_t pending_msgs, pending_bytes; /* backlog + in flight */
    uint64_t redelivered_total;
    uint64_t dead_total; /* a group's: its members' sum */
    double oldest_pending_age;
    bool is_stalled, is_offline;
    bool is_paused; /* a group's: every member is */
} stan_pending_row_t;

/* Which rows (NULL fields: any). */
typedef struct stan_pending_filter {
    const char *channel;
    const char *client_id; /* a subscription of this client, or a group with it as a member */
    const char *queue;     /* groups with this queue_name or queue_group */
    const char *durable;   /* rows with this durable_name */
} stan_pending_filter_t;

typedef int (*stan_pending_fn)(void *arg, const stan_pending_row_t *row);
/* Rows in channel-name order (f may be NULL). 0, or STZ_ENOENT when f->channel names no
 * channel. */
int stan_foreach_pending_row(stan_t *st, const stan_pending_filter_t *f, stan_pending_fn fn,
                             void *arg);

#endif

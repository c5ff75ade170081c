/* stan_ctx: the engine's shared context (struct stan) and the replies every request handler
 * sends. The context holds what the engine's files share: the loop, the NATS server, the
 * config, the store and its group commit, the registries (clients, channels, subscriptions by
 * ack inbox and by id), the request subjects, and the work queued for the next loop iteration.
 * Each field is written by the file named beside it; the others only read it. */
#ifndef STANZA_STAN_CTX_H
#define STANZA_STAN_CTX_H
#include <protobuf-c/protobuf-c.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "list.h"
#include "bus.h"
#include "stan.h"
#include "stan_commit.h"
#include "store.h"
#include "strmap.h"

typedef struct stan_client stan_client_t;   /* stan_client.h */
typedef struct stan_channel stan_channel_t; /* stan_channel.h */
typedef struct stan_sub stan_sub_t;         /* stan_sub.h */

/* What the engine publishes itself (stan_pub_internal: a dead letter, a requeued message) is
 * told: staged(st, arg, seq) in the batch being built, just before the message goes in with
 * sequence seq, to stage in that same batch what goes with it (false: what it was published for
 * is gone: the message is dropped, the sequence not used, and done is not called); then
 * done(st, arg, status) once that batch ended. Either way the hook's arg is its to free. */
typedef struct stan_pub_hooks {
    bool (*staged)(stan_t *st, void *arg, uint64_t seq);
    void (*done)(stan_t *st, void *arg, int status);
} stan_pub_hooks_t;

/* A publish waiting for its batch (stan_pub.c). Shared: stan_channel.c reads the running totals
 * of the staged messages when it applies limits to a batch. */
typedef struct stan_staged {
    list_node_t link; /* on stan.staged, then on stan.batch_msgs */
    stan_channel_t *ch;
    char *guid;
    char *ack_reply; /* where the PubAck goes */
    char *reply;     /* PubMsg.reply, stored with the message */
    uint8_t *data;
    size_t len;
    uint64_t seq; /* assigned when it joins a batch */
    uint64_t cum; /* the channel's running payload total including this one */
    /* The engine's own publish (stan_pub_internal) is followed by hooks; NULL for a client's. */
    const stan_pub_hooks_t *hooks;
    void *hook_arg;
} stan_staged_t;

struct stan {
    uv_loop_t *loop;
    bus_t bus; /* the NATS side: the embedded server or an upstream connection */
    const config_t *cfg;
    store_t *store;
    bool store_borrowed; /* given by stan_use_store: closed by its owner */
    bool view;           /* stan_load_view: shows the store, runs nothing, logs no recovery */
    stan_commit_t commit;
    char *server_id;
    int64_t start_ns;
    int last_commit_status;      /* 0 or the error of the last commit (stan.c) */
    int last_failure;            /* the error of the last failed commit (stan.c) */
    uint64_t last_failure_ms;    /* clock_mono_ms of it; 0 = never (stan.c) */
    uint64_t redeliveries_total; /* every redelivery sent since start (stan_deliver.c) */
    uint64_t dead_letters_total; /* dead letters committed since start (stan_dead.c) */
    /* stan_dead.c: the DeadRecord stan_dead_lookup handed out last, and the dead-letter channel
     * name stan_admin_foreach_dead hands out */
    void *dead_last;
    char dead_name[STORE_MAX_KEY + 1];
    /* subjects (stan.c) */
    char *discover, *pings, *pub_prefix, *sub_subj, *unsub_subj, *close_subj, *subclose_subj;
    /* _INBOX.<random, new at each start>. : replies to heartbeats and duplicate checks, each
     * followed by a random part of its own (nuid.h), so no client can answer for another */
    char *inbox_prefix;
    /* _STAN.ack.<server id>. + a random part = a subscription's ack inbox (persisted with it) */
    char *ack_prefix;
    bus_sub_t *isubs[10];
    int nisubs;

    strmap_t clients;         /* id -> client (stan_client.c) */
    strmap_t clients_by_conn; /* connID -> client (stan_client.c) */
    list_node_t dupchecks;    /* connects waiting on a duplicate-ID check (stan_client.c) */
    strmap_t channels;        /* name -> channel (stan_channel.c) */
    strmap_t subs_by_ack;     /* ack inbox -> sub (stan_sub.c) */
    strmap_t subs_by_id;      /* id (8 bytes, big-endian) -> sub (stan_sub.c) */
    hmap_t members_by_inbox;  /* queue members by delivery inbox (stan_sub.c; inbox_node) */
    uint32_t next_channel_id;
    uint64_t next_sub_id;
    bool meta_dirty; /* the server record must be written with the next batch */

    /* stan_pub.c: publishes waiting for a batch, and those in the batch being committed */
    list_node_t staged;
    size_t nstaged;
    list_node_t batch_msgs;
    /* stan_sub.c: subscriptions whose records or unacked rows go with the next batch */
    stan_sub_t **dirty_subs;
    size_t ndirty, cap_dirty;
    list_node_t ready; /* stan_sub.c: subscriptions with something to deliver, served in turn */
    uv_idle_t *kick;   /* stan_deliver.c: active while deliveries wait: the loop must not sleep
                        * (own allocation: libuv frees it in its close callback, whenever) */
    /* stan_handover.c: queue members in their hand-over grace, in expiry order (grace_link;
     * stan_sub.c unlinks one that leaves its group), and the timer for the first (own
     * allocation, as kick) */
    list_node_t grace;
    uv_timer_t *grace_timer;

    buf_t scratch; /* packing buffer */
    bool shutting_down;
    volatile sig_atomic_t *stop_flag;
    void (*shutdown_done)(void *);
    void *shutdown_arg;
    uv_timer_t tick;
    bool tick_started;
    bool busy_since_trim, busy_this_tick; /* publishes since the last trim, since the last tick */
};

/* Publishes a packed reply to `to` (nothing if to is NULL or empty). */
void stan_reply(stan_t *st, const char *to, const buf_t *packed);
/* Packs a protobuf message into out (replacing its content). */
void stan_pack(const ProtobufCMessage *msg, buf_t *out);

/* A reply that waits for the batch being built: ok is sent if it commits, lost if the node lost
 * the Raft lead before it did (STZ_ENOTLEADER: the change may still be made by the next leader),
 * fail otherwise; then then(arg, status) runs, if given. The caller packs ok into the returned
 * buffer, and the two failures with stan_later_fail. */
typedef struct stan_later_reply {
    stan_t *st;
    char *to;
    buf_t ok, fail, lost;
    stan_commit_fn then;
    void *arg;
} stan_later_reply_t;
stan_later_reply_t *stan_reply_on_commit(stan_t *st, const char *to, stan_commit_fn then,
                                         void *arg);
/* Packs msg, a response whose error field is *error, twice: with store_error as r's fail and
 * with lost_error as r's lost. */
void stan_later_fail(stan_later_reply_t *r, ProtobufCMessage *msg, char **error,
                     const char *store_error, const char *lost_error);

#endif

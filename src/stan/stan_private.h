/* Private to the stan_*.c files: the streaming engine's state. */
#ifndef STANZA_STAN_PRIVATE_H
#define STANZA_STAN_PRIVATE_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "server.h"
#include "stan.h"
#include "store.h"
#include "strmap.h"

typedef struct stan_client stan_client_t;
typedef struct stan_channel stan_channel_t;
typedef struct stan_sub stan_sub_t;
typedef struct stan_qgroup stan_qgroup_t;

/* A message delivered and not acked yet. Kept per subscription in a list ordered by expiry
 * (delivery order; a redelivery moves it to the tail) and in a hash by sequence. */
typedef struct stan_pending {
    uint64_t seq;
    uint32_t count;                     /* deliveries so far (1 = delivered once); persisted */
    uint32_t size;                      /* payload bytes, for the inflight_bytes counter */
    uint64_t expire_ms;                 /* loop time when it is due for redelivery */
    bool on_disk;                       /* its row is committed, or in a batch on its way */
    bool dirty;                         /* its row must be (re)written with the next batch */
    struct stan_pending *prev, *next;   /* expiry list */
    struct stan_pending *sprev, *snext; /* sequence order: the head is the oldest unacked */
    struct stan_pending *hnext;         /* hash chain */
} stan_pending_t;

struct stan_sub {
    stan_t *st;
    uint64_t id;
    stan_channel_t *ch;
    stan_client_t *client; /* NULL while offline (a durable whose client left) */
    char *client_id;
    char *inbox;
    char *ack_inbox;
    char *durable; /* NULL if not durable */
    char *qgroup;  /* as the client sent it; NULL if not in a group */
    stan_qgroup_t *qg;
    int32_t max_inflight;
    int32_t ack_wait_s;
    uint64_t last_sent;         /* for a queue member, the group's last_sent is what counts */
    uint64_t last_sent_cum;     /* the channel's running payload total at last_sent */
    uint64_t inflight_bytes;    /* payload bytes of the pending set */
    uint64_t redelivered_total; /* redeliveries sent (since start; plus those recovered) */
    bool is_durable;
    bool is_offline;
    bool ready;   /* the subscription response went out: deliveries may flow */
    bool dirty;   /* record to rewrite in the next batch */
    bool deleted; /* removed; freed once no batch action refers to it */
    bool in_ready_list;
    stan_sub_t *ready_next;

    /* pending set */
    stan_pending_t *phead, *ptail;
    stan_pending_t *shead, *stail; /* the same entries in sequence order */
    stan_pending_t **phash;
    size_t pbuckets, npending;
    /* Sequences whose pending row must be written with the next batch. Written lazily: a
     * message acked before the batch is built never touches the disk. */
    uint64_t *pdirty;
    size_t npdirty, cap_pdirty;

    server_sub_t *ack_sub;
    uv_timer_t ack_timer;
    bool timer_armed;
    int refs; /* batch actions and the timer handle holding it */

    stan_sub_t *ch_prev, *ch_next; /* channel's subscriptions */
    stan_sub_t *cl_next;           /* client's subscriptions */
    stan_sub_t *qg_next;           /* group members */
};

struct stan_qgroup {
    char *key; /* "name" or "durable:name" */
    stan_channel_t *ch;
    uint64_t last_sent;
    uint64_t last_sent_cum;
    stan_sub_t *members;
    size_t nmembers;
    bool durable;
    uint32_t rr;
};

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
    bool limits_due;          /* has messages in the batch being built, limits not applied yet */
    stan_sub_t *subs;
    size_t nsubs;
    strmap_t qgroups;  /* key -> stan_qgroup_t */
    strmap_t durables; /* "client|durable" (non-queue) -> stan_sub_t */
    bool has_new;      /* committed new messages since the last delivery pass */
    uint64_t last_activity_ms;
};

struct stan_client {
    stan_t *st;
    char *id;
    char *hb_inbox;
    char *hb_reply; /* <inbox_prefix>hb.<random>.<id>: where its heartbeats are answered */
    char *conn_id;
    size_t conn_id_len;
    int32_t protocol;
    int32_t ping_interval, ping_max_out;
    stan_sub_t *subs;
    uv_timer_t hb_timer;
    uint64_t hb_sent_ms; /* loop time the last heartbeat went out */
    bool hb_waiting;
    int hb_fails;
    bool closed;     /* removed from the registry; freed when the timer handle closes */
    bool registered; /* its ClientRecord is committed */
};

/* A connect waiting to learn whether the client ID's current owner is still alive. */
typedef struct stan_dupcheck {
    stan_t *st;
    char *reply; /* <inbox_prefix>dup.<random>: where the current owner answers */
    char *client_id;
    char *reply_to;
    void *request; /* Pb__ConnectRequest */
    uv_timer_t timer;
    struct stan_dupcheck *next;
} stan_dupcheck_t;

/* A publish waiting for its batch. */
typedef struct stan_staged {
    stan_channel_t *ch;
    char *guid;
    char *ack_reply; /* where the PubAck goes */
    char *reply;     /* PubMsg.reply, stored with the message */
    uint8_t *data;
    size_t len;
    uint64_t seq; /* assigned at submit */
    uint64_t cum; /* the channel's running payload total including this one */
    struct stan_staged *next;
} stan_staged_t;

/* What to do once a batch commits (or fails). */
typedef enum {
    ACT_PUBACK,    /* staged message */
    ACT_REPLY,     /* send a prepared protobuf reply; on failure send the error variant */
    ACT_SUB_READY, /* subscription becomes deliverable (after its response) */
    ACT_EVICT,     /* age-based eviction of ch committed */
    ACT_CALL,      /* done(st, arg, ok): in-memory state that follows the commit's outcome */
} stan_act_type_t;

typedef void (*stan_commit_fn)(stan_t *st, void *arg, bool ok);

typedef struct stan_action {
    stan_act_type_t type;
    stan_staged_t *msg;
    char *reply_to;
    buf_t ok, fail; /* ACT_REPLY: the two possible answers, packed */
    stan_sub_t *sub;
    stan_channel_t *ch;
    stan_commit_fn done; /* ACT_CALL */
    void *arg;
    struct stan_action *next;
} stan_action_t;

typedef struct stan_batch_ctx {
    stan_action_t *head, *tail;
    stan_staged_t *msgs;
} stan_batch_ctx_t;

struct stan {
    uv_loop_t *loop;
    server_t *srv;
    const config_t *cfg;
    store_t *store;
    char *server_id;
    int64_t start_ns;
    int last_commit_status;      /* STZ_OK or the error of the last commit */
    int last_failure;            /* the error of the last failed commit */
    uint64_t last_failure_ms;    /* loop time of it; 0 = never */
    uint64_t redeliveries_total; /* every redelivery sent since start */
    /* subjects */
    char *discover, *pings, *pub_prefix, *sub_subj, *unsub_subj, *close_subj, *subclose_subj;
    /* _INBOX.<random, new at each start>. : replies to heartbeats and duplicate checks, each
     * followed by a random part of its own (nuid.h), so no client can answer for another */
    char *inbox_prefix;
    /* _STAN.ack.<server id>. + a random part = a subscription's ack inbox (persisted with it) */
    char *ack_prefix;
    server_sub_t *isubs[10];
    int nisubs;

    strmap_t clients;         /* id -> client */
    strmap_t clients_by_conn; /* connID -> client */
    struct stan_dupcheck *dupchecks;
    strmap_t channels;    /* name -> channel */
    strmap_t subs_by_ack; /* ack inbox -> sub */
    strmap_t subs_by_id;  /* id (8 bytes, big-endian) -> sub */
    uint32_t next_channel_id;
    uint64_t next_sub_id;
    bool meta_dirty;

    /* staged work for the next batch */
    stan_staged_t *staged_head, *staged_tail;
    size_t nstaged;
    stan_batch_ctx_t building; /* actions for the batch being built */
    stan_batch_ctx_t inflight; /* actions for the batch in flight */
    stan_sub_t **dirty_subs;
    size_t ndirty, cap_dirty;
    stan_sub_t *ready, *ready_tail; /* subs with something to deliver, served in turn */
    uv_idle_t *kick; /* active while deliveries wait: the loop must not sleep (own allocation:
                      * libuv frees it in its close callback, whenever that runs) */

    buf_t scratch; /* packing buffer */
    bool shutting_down;
    volatile sig_atomic_t *stop_flag;
    void (*shutdown_done)(void *);
    void *shutdown_arg;
    int closing_handles;
    uv_timer_t tick;
    bool tick_started;
    bool busy_since_trim;
};

/* Time arithmetic on values a request or the config can push to the extremes (a startTimeDelta
 * of INT64_MIN, a max_age of centuries) saturates instead of overflowing. */
static inline int64_t stan_ns_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}
static inline int64_t stan_ms_to_ns(int64_t ms)
{
    int64_t r;
    if (__builtin_mul_overflow(ms, (int64_t)1000000, &r)) return ms < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

/* ---- stan.c ---- */
void stan_reply(stan_t *st, const char *to, const buf_t *packed);
stan_action_t *stan_action_add(stan_t *st, stan_act_type_t type);
/* Calls done once the batch being built has committed (ok) or failed: how memory is made to
 * follow what the disk holds rather than run ahead of it. */
void stan_on_commit(stan_t *st, stan_commit_fn done, void *arg);
int64_t stan_now_ns(void);
void stan_meta_put(stan_t *st);

/* ---- stan_client.c ---- */
void stan_client_on_connect(stan_t *st, const server_msg_t *m);
void stan_client_on_close(stan_t *st, const server_msg_t *m);
void stan_client_on_ping(stan_t *st, const server_msg_t *m);
void stan_client_on_inbox_reply(stan_t *st, const server_msg_t *m);
stan_client_t *stan_client_find(stan_t *st, const char *id, size_t len);
stan_client_t *stan_client_restore(stan_t *st, const void *rec, size_t len);
void stan_client_free_all(stan_t *st);

/* ---- stan_channel.c ---- */
/* Finds or creates (if create) a channel; *err gets an NSS error text on failure. */
stan_channel_t *stan_channel_get(stan_t *st, const char *name, size_t len, bool create,
                                 const char **err);
stan_channel_t *stan_channel_by_id(stan_t *st, uint32_t id);
int stan_channel_restore(stan_t *st, const void *rec, size_t len);
void stan_channel_put_record(stan_t *st, stan_channel_t *ch);
/* Stages the channel's record unless it is committed or on its way. */
void stan_channel_ensure_record(stan_t *st, stan_channel_t *ch);
void stan_channel_free_all(stan_t *st);
bool stan_channel_name_valid(const char *name, size_t len);
/* Stages evictions needed after last_seq moves to `upto`, per the channel's limits. */
void stan_channel_stage_limits(stan_t *st, stan_channel_t *ch);
void stan_channel_committed(stan_t *st, stan_channel_t *ch, uint64_t seq, uint64_t cum,
                            size_t size);
/* After a failed batch: forget assigned-but-uncommitted sequences. */
void stan_channel_rollback(stan_t *st, stan_channel_t *ch);
/* The channel's running payload total at seq (committed messages; within a read view): what
 * byte counts of sequence ranges are computed from. */
uint64_t stan_channel_cum_at(stan_t *st, stan_channel_t *ch, uint64_t seq);
/* Once a second: max_age expiry and max_inactivity removal. */
void stan_channel_tick(stan_t *st);

/* ---- stan_pub.c ---- */
void stan_pub_on_msg(stan_t *st, const server_msg_t *m);
/* Moves staged messages into the store batch (assigning sequences). */
void stan_pub_stage_batch(stan_t *st);

/* ---- stan_sub.c ---- */
void stan_sub_on_subscribe(stan_t *st, const server_msg_t *m);
void stan_sub_on_unsubscribe(stan_t *st, const server_msg_t *m, bool close_only);
void stan_sub_on_ack(void *arg, const server_msg_t *m);
void stan_sub_mark_ready(stan_t *st, stan_sub_t *sub);
void stan_sub_deliver_ready(stan_t *st);
/* Closes the handle that keeps the loop awake while deliveries wait (at shutdown). */
void stan_sub_kick_close(stan_t *st);
void stan_sub_channel_has_new(stan_t *st, stan_channel_t *ch);
void stan_sub_write_dirty(stan_t *st);
void stan_sub_mark_dirty(stan_t *st, stan_sub_t *sub);
/* A client went away: non-durable subs are removed, durables go offline. */
void stan_sub_client_gone(stan_t *st, stan_client_t *cl, bool unsubscribe);
int stan_sub_restore(stan_t *st, const void *rec, size_t len);
int stan_sub_restore_pending(stan_t *st, uint64_t sub_id, uint64_t seq, uint32_t count);
void stan_sub_unref(stan_t *st, stan_sub_t *sub);
/* Its subscribe request failed to commit: undo it. */
void stan_sub_abort(stan_t *st, stan_sub_t *sub);
void stan_sub_free_all(stan_t *st);
/* Once a second: retry deliveries held back because an inbox had nobody behind it. */
void stan_sub_tick(stan_t *st);
/* A batch failed: rows believed on their way to disk are not; write them all again. */
void stan_sub_store_failed(stan_t *st);

/* ---- stan_pending.c ---- */
stan_pending_t *stan_pend_find(stan_sub_t *s, uint64_t seq);
stan_pending_t *stan_pend_add(stan_sub_t *s, uint64_t seq, uint32_t count, uint32_t size,
                              uint64_t expire);
void stan_pend_remove(stan_sub_t *s, stan_pending_t *p);
/* Its row must be (re)written with the next batch (the sub is marked dirty). */
void stan_pend_touch(stan_t *st, stan_sub_t *s, stan_pending_t *p);
/* Forgets p, deleting its row if it reached the disk. */
void stan_pend_drop(stan_t *st, stan_sub_t *s, stan_pending_t *p);
void stan_pend_write_dirty(stan_t *st, stan_sub_t *s);
void stan_pend_to_tail(stan_sub_t *s, stan_pending_t *p);
/* Moves from's unacked messages to to, due at once (they go out flagged redelivered). */
void stan_pend_transfer(stan_t *st, stan_sub_t *from, stan_sub_t *to);

/* Names the engine stores or routes (channel, client ID, durable, queue group, inboxes) are
 * limited to what the store can use as a key, checked before anything is staged, so a request
 * can never make a commit fail for the others in its batch. */
#define STAN_MAX_NAME STORE_MAX_KEY
#define STAN_MAX_NAME_TEXT "511"

/* A subscription's MaxInflight is taken up to this (a larger request is clamped, not refused,
 * so clients asking for "unlimited" keep working): it bounds one subscription's unacked set. */
#define STAN_MAX_INFLIGHT 65536
/* Deliveries and redeliveries per loop iteration, all subscriptions together, and the loop time
 * they may take: the rest waits for the next iteration, so other clients' requests are served
 * in between however large a backlog is being drained. */
#define STAN_DELIVER_BUDGET 2048
/* One batch takes at most this many staged messages / payload bytes; the rest go in the next. */
#define STAN_BATCH_MAX_MSGS 65536
#define STAN_BATCH_MAX_BYTES (32u << 20)
#define STAN_DELIVER_SLICE_NS (2 * 1000 * 1000)

/* ---- keys and message values (stan_keys.c; layout in docs/storage.md) ---- */
/* 8-byte keys let 25 messages of 128 bytes share a 4 KiB page (24 with 10-byte keys). */
#define STAN_MSG_KEY 8                  /* channel id (3) + sequence (5) */
#define STAN_MAX_SEQ ((1ull << 40) - 1) /* sequences are 40-bit on disk */
#define STAN_MAX_CHANNEL_ID ((1u << 24) - 1)
#define STAN_MSG_HDR_MAX (8 + 6 + 10) /* timestamp, running total, reply length (varint) */
typedef struct stan_msgval {
    int64_t ts;
    uint64_t cum; /* running payload total of the channel including this message */
    const char *reply;
    size_t reply_len;
    const uint8_t *data;
    size_t len;
} stan_msgval_t;
void stan_key_msg(uint8_t out[STAN_MSG_KEY], uint32_t chan, uint64_t seq);
uint64_t stan_key_msg_seq(const uint8_t *key);
uint32_t stan_key_msg_chan(const uint8_t *key);
/* Writes a value header; returns its length (<= STAN_MSG_HDR_MAX). */
size_t stan_msg_hdr(uint8_t *out, int64_t ts, uint64_t cum, size_t reply_len);
/* Parses a stored value (slices into it); false if it is malformed. */
bool stan_msg_decode(const void *p, size_t len, stan_msgval_t *out);
void stan_key_u64(uint8_t out[8], uint64_t v);
uint64_t stan_get_u64(const uint8_t *p);
uint32_t stan_get_u32(const uint8_t *p);
void stan_key_pending(uint8_t out[16], uint64_t sub, uint64_t seq);

#endif

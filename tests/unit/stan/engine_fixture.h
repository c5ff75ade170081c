/* engine_fixture: the streaming engine in-process, for its unit tests.
 *
 * A real libuv loop, a real server_t (listening on 127.0.0.1:0, so that its flush hook runs) and
 * the engine (stan_new/stan_start) on a store directory of the test's own (mkdtemp under /tmp,
 * removed by ef_done or at exit). The test talks STAN to it exactly as a client does, through
 * the NATS layer: requests are protobuf messages published on the subjects the ConnectResponse
 * names, replies and deliveries arrive on in-process subscriptions. Outcomes are read from what
 * arrives and from the engine's public snapshots (stan_foreach_sub, stan_get_channel_info...).
 *
 * Time is the fake clock (clock.h): ef_advance moves it and runs what became due
 * (stan_run_due), so AckWait, max_age, max_inactivity and heartbeats are driven without waiting.
 * Every wait runs the loop until a condition holds, with a deadline; a missed deadline fails the
 * test. */
#ifndef STANZA_TEST_ENGINE_FIXTURE_H
#define STANZA_TEST_ENGINE_FIXTURE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "server.h"
#include "stan.h"
#include "stan_admin.h"

/* The wall-clock time the fake clock starts at (2024-01-01T00:00:00Z). */
#define EF_EPOCH_NS INT64_C(1704067200000000000)
#define EF_SEC INT64_C(1000000000)

typedef struct ef ef_t;

/* A delivery as it arrived on a subscription's inbox (a MsgProto, decoded). */
typedef struct ef_msg {
    uint64_t seq;
    char *payload; /* NUL-terminated copy of MsgProto.data */
    int64_t timestamp;
    bool redelivered;
    uint32_t redelivery_count;
} ef_msg_t;

/* A subscription's inbox: an in-process subscription on its subject. It survives ef_restart
 * (subscribed again on the new server, as a reconnecting client would). */
typedef struct ef_inbox {
    ef_t *f;
    char *subject;
    server_sub_t *sub; /* NULL while not listening */
    bool closed;       /* ef_inbox_close: not listened to again, even after a restart */
    ef_msg_t *msgs;
    size_t n, cap;
    struct ef_inbox *next;
} ef_inbox_t;

/* A client's heartbeat inbox ("_EF.hb.<client ID>", as ef_connect names it), listened to:
 * heartbeats are counted, and answered while answer is set. It survives ef_restart. */
typedef struct ef_hb {
    ef_t *f;
    char *subject;
    server_sub_t *sub; /* NULL while not listening */
    bool answer;
    size_t received;
    struct ef_hb *next;
} ef_hb_t;

/* A subscription as its client holds it. */
typedef struct ef_sub {
    ef_inbox_t *inbox;
    char *ack_inbox;
    char *client_id, *channel;
} ef_sub_t;

struct ef {
    uv_loop_t loop;
    config_t cfg; /* defaults for the tests, see ef_init; change before ef_start */
    server_t *srv;
    stan_t *st;
    char dir[64];
    bool running;
    uv_timer_t wake; /* bounds each blocking loop turn during waits */
    /* request subjects, from the first ConnectResponse (they survive restarts) */
    char *discover, *pub_prefix, *sub_subj, *unsub_subj, *close_subj, *subclose_subj;
    char *reply; /* the last request's reply (packed), as received */
    size_t reply_len;
    char error[256]; /* the last reply's error text; "" when none */
    uint64_t nreq;
    ef_inbox_t *inboxes;
    ef_hb_t *hbs;
    ef_sub_t **subs;
    size_t nsubs;
};

/* Fills f: fake clock started at EF_EPOCH_NS (+1 s), a fresh store directory, and a config for
 * in-process tests: LMDB store without fsync, default limits, heartbeats far away (1 h). */
void ef_init(ef_t *f);
/* A new store_limits.channels entry for pattern, every limit inherited until the test sets it
 * (before ef_start; the config owns it and its strings). */
config_limits_t *ef_channel_limits(ef_t *f, const char *pattern);
/* Starts server and engine on the store directory (CHECKs that they start). */
void ef_start(ef_t *f);
/* Shuts engine and server down cleanly (the loop must close with no handle left). */
void ef_stop(ef_t *f);
/* ef_stop then ef_start on the same store: a restarted server. Inboxes are subscribed again. */
void ef_restart(ef_t *f);
/* Stops if running, frees everything, removes the store directory, stops the fake clock. */
void ef_done(ef_t *f);

/* Runs the loop until the engine has nothing left to do: no commit in flight, and a few loop
 * turns (each with a delivery pass and a commit) that started none. Before asserting that
 * something did NOT happen. */
void ef_settle(ef_t *f);
/* Moves the fake clock by ns, runs what became due (stan_run_due), then settles. */
void ef_advance(ef_t *f, int64_t ns);
/* Runs the loop until cond(arg) holds; CHECKs that it does within the fixture's deadline (real
 * time). For events from outside the engine, e.g. a test's own socket reaching the server. */
void ef_run_until(ef_t *f, bool (*cond)(void *arg), void *arg);

/* ---- requests: each waits for its reply and returns its error text ("" = success) ---- */

const char *ef_connect(ef_t *f, const char *client_id);
const char *ef_close(ef_t *f, const char *client_id);
/* Publishes data (a string) and waits for the PubAck. */
const char *ef_publish(ef_t *f, const char *client_id, const char *channel, const char *data);
/* Publishes n messages (data each) with no loop turn between them, so that the engine gets
 * them all in one iteration, then waits for the n PubAcks: errors[i] gets the i-th one's error
 * text ("" = stored). */
#define EF_ERR_LEN 256
void ef_publish_burst(ef_t *f, const char *client_id, const char *channel, const char *data,
                      size_t n, char (*errors)[EF_ERR_LEN]);

typedef struct ef_sub_opts {
    const char *qgroup, *durable; /* NULL: none */
    int32_t max_inflight;         /* 0: 1024 */
    int32_t ack_wait_s;           /* 0: 30 */
    int start;                    /* Pb__StartPosition; 0: NewOnly */
    uint64_t start_seq;
    int64_t start_delta_ns;
} ef_sub_opts_t;

/* Subscribes with a new inbox "_EF.in.<n>". Returns the subscription, or NULL with the error
 * in f->error. */
ef_sub_t *ef_subscribe(ef_t *f, const char *client_id, const char *channel, const ef_sub_opts_t *o);
/* Unsubscribe (close_only: the subscription-close request, which keeps a durable). */
const char *ef_unsubscribe(ef_t *f, ef_sub_t *s, bool close_only);
/* Acks seq on the subscription's ack inbox (handled at once: no reply). */
void ef_ack(ef_t *f, const ef_sub_t *s, uint64_t seq);

/* ---- what arrives ---- */

/* Waits until the inbox holds n messages; returns the n-th (1-based). */
const ef_msg_t *ef_wait_msgs(ef_inbox_t *in, size_t n);
/* The subscription's i-th delivery (0-based, in arrival order); NULL beyond the last. */
static inline const ef_msg_t *ef_msg(const ef_sub_t *s, size_t i)
{
    return i < s->inbox->n ? &s->inbox->msgs[i] : NULL;
}
/* How many deliveries of seq the subscription received. */
size_t ef_count_seq(const ef_sub_t *s, uint64_t seq);
/* Stops listening on the inbox (its client's connection is gone). */
void ef_inbox_close(ef_inbox_t *in);

/* Listens on the client's heartbeat inbox (answering them if answer). */
ef_hb_t *ef_hb_listen(ef_t *f, const char *client_id, bool answer);

/* ---- the engine's snapshots ---- */

/* The subscription's row of stan_foreach_sub (found by its inbox); CHECKs that it exists.
 * Strings in it are only valid until the loop runs again. */
stan_sub_info_t ef_sub_info(ef_t *f, const ef_sub_t *s);
/* Whether the engine lists a subscription with this inbox on the channel. */
bool ef_sub_listed(ef_t *f, const char *channel, const char *inbox);
stan_channel_info_t ef_channel(ef_t *f, const char *name);
/* Whether the engine has such a channel / such a client. */
bool ef_channel_exists(ef_t *f, const char *name);
bool ef_client_exists(ef_t *f, const char *client_id);

/* ---- admin commands (stan_admin.h) ---- */

/* A changing command's answer, as its callback (ef_on_answer, arg: the ef_answer_t) got it. */
typedef struct ef_answer {
    int calls;
    stan_admin_result_t r;
} ef_answer_t;
void ef_on_answer(void *arg, const stan_admin_result_t *r);
/* rc is what the command returned: CHECKs that it was accepted (0) without answering inside the
 * call, settles (its batch ends), CHECKs that it answered once, and returns the answer. */
stan_admin_result_t ef_answered(ef_t *f, int rc, ef_answer_t *a);

#endif

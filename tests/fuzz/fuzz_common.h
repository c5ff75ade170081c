/* fuzz_common: a real server_t + stan_t on a libuv loop for the fuzz targets that drive the
 * engine (fuzz_stan) or a whole daemon over loopback (fuzz_daemon, fuzz_httpd).
 *
 * The engine is reached exactly as a client reaches it: messages published on its request
 * subjects through the NATS layer (server_publish), replies taken from an in-process
 * subscription on _INBOX.>. The request subjects and the ack inboxes are random per start, so
 * they are read from the engine's state (stan_ctx.h) and from its SubscriptionResponses. */
#ifndef STANZA_FUZZ_COMMON_H
#define STANZA_FUZZ_COMMON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "engine_host.h" /* the server, engine and monitor in-process; engine_host_rmtree */
#include "monitor.h"
#include "server.h"
#include "stan.h"

/* The engine's request subjects, as a client learns them from the ConnectResponse. */
typedef enum {
    FZ_CONNECT, /* _STAN.discover.<cluster> */
    FZ_PUB,     /* <pubPrefix>.<anything> */
    FZ_SUB,
    FZ_UNSUB,
    FZ_SUBCLOSE,
    FZ_CLOSE,
    FZ_PING,
    FZ_NKINDS
} fz_kind_t;

#define FZ_MAX_ACK_INBOXES 16

typedef struct fz_engine {
    uv_loop_t loop;
    config_t cfg;
    server_t *srv;
    stan_t *st;
    monitor_t *mon;
    server_sub_t *tap; /* _INBOX.> : replies, deliveries, heartbeats */
    char *ack_inboxes[FZ_MAX_ACK_INBOXES];
    int nack;
    char *hb_reply; /* reply subject of the last heartbeat seen */
    uint64_t seq;   /* for reply subjects */
    uint64_t replies;
    bool running;
    /* Check the replies to our requests (fuzz_stan). Not where fuzzed clients can publish to
     * our reply subjects themselves (fuzz_daemon). */
    bool check_replies;
    /* What the PubAcks promised: per channel, how many publishes were acked without an error
     * (fz_engine_check holds the engine to it). */
    struct fz_acked {
        char *channel;
        uint64_t acked;
        uint64_t last_seq; /* as seen by the last check, for "no sequence is used twice" */
    } * acked;
    size_t nacked;
    char *pub_channel; /* channel of the publish whose PubAck is awaited */
    uint64_t pub_seq;
} fz_engine_t;

/* Silences the daemon's log (set STANZA_FUZZ_LOG=1 to see it) and ignores SIGPIPE. */
void fz_init_process(void);

/* Sets cfg to defaults for an in-process engine: 127.0.0.1 on a free port, LMDB in dir (NULL:
 * MEMORY), no fsync, small limits so that eviction and limit paths are reachable. Call before
 * fz_engine_start; the caller may change cfg in between. */
void fz_engine_config(fz_engine_t *e, const char *dir);
/* Starts server, engine and (when with_http) the monitor on 127.0.0.1:0. Returns 0, or -1
 * when the engine refuses the store (a damaged server record: the message is in err), with
 * everything freed again. Aborts on any other failure. */
int fz_engine_start(fz_engine_t *e, bool with_http, char *err, size_t errlen);
/* Publishes data on a request subject, with a reply inbox unless no_reply. Then settles. */
void fz_engine_request(fz_engine_t *e, fz_kind_t kind, const void *data, size_t len, bool no_reply);
/* Publishes data to an arbitrary subject (ack inboxes, heartbeat replies); settles. */
void fz_engine_publish(fz_engine_t *e, const char *subject, const char *reply, const void *data,
                       size_t len);
/* Runs the loop until what the last messages started is done: the group commit in flight, the
 * replies after it, and the delivery slices that follow. */
void fz_engine_settle(fz_engine_t *e);
/* Runs the loop for ms milliseconds of timers (heartbeats, redeliveries), then settles. */
void fz_engine_wait(fz_engine_t *e, unsigned ms);
/* Checks the engine against its PubAcks: every channel that acked a publish exists and has
 * handed out at least that many sequences, never fewer than at the last check (a restart must
 * not reuse one); with exact (no limits, nothing expires or is deleted), it also still holds
 * at least that many messages. Aborts with a message otherwise. */
void fz_engine_check(fz_engine_t *e, bool exact);
/* Shuts everything down and frees it; the loop must close cleanly (no handle left). cfg is
 * kept for a restart unless free_cfg. */
void fz_engine_stop(fz_engine_t *e, bool free_cfg);

/* This process's store directory for target `name`: RAM-backed (/dev/shm) when possible, so no
 * disk I/O per input; emptied now and removed at exit. The string is static. */
const char *fz_store_dir(const char *name);

#endif

/* Gives the engine something to show: a client "fz-client", messages on "foo" and "bar", a
 * durable and a queue subscription. Call after fz_engine_start, before fz_engine_run_thread. */
void fz_engine_populate(fz_engine_t *e);
/* Runs the loop on a thread of its own from now on (fuzz_daemon, fuzz_httpd): the caller then
 * only talks to it over loopback sockets. The engine is never stopped; the process exits. */
void fz_engine_run_thread(fz_engine_t *e);

/* Loopback client helpers for the thread-mode targets. All abort() on a failure that means the
 * daemon is broken (the fuzzer then reports a crash with the input that did it). */
int fz_connect(int port);
/* Writes all of data (the daemon reads concurrently, so no deadlock on large writes). */
void fz_write_all(int fd, const void *data, size_t len);
/* Half-closes fd and reads until the daemon closes it; aborts after timeout_ms without EOF.
 * Returns the bytes read. */
size_t fz_drain(int fd, unsigned timeout_ms);
/* Reads until the accumulated input contains needle; aborts after timeout_ms. */
void fz_expect(int fd, const char *needle, unsigned timeout_ms, const char *what);

/* harness_stan: NATS Streaming (STAN) helpers for the it_stan_* tests, on top of harness.h.
 *
 * Clients are the real libnats STAN API (stanConnection_*). Received messages are recorded by a
 * collector (struct hstan_rx) whose count tests wait on with deadlines. A small hand-coded
 * protobuf client (hstan_raw_*) sends requests libnats refuses to build (MaxInflight 0, a client
 * whose heartbeat inbox never answers), to check the server's own answers.
 *
 * Nothing here sleeps a fixed time. Errors print the libnats status and last error text. */
#ifndef STANZA_HARNESS_STAN_H
#define STANZA_HARNESS_STAN_H
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define HSTAN_CLUSTER "test-cluster"
#define HSTAN_CONNECT_WAIT_MS 2000 /* stanConnOptions_SetConnectionWait for every test client */

/* For running part of a suite by hand: false when $IT_ONLY is set and no comma-separated word of it
 * occurs in name, or when a word of $IT_SKIP does. HSTAN_RUN(fn) is TEST_RUN(fn) if selected. */
bool hstan_selected(const char *name);
#define HSTAN_RUN(fn)                                                                              \
    do {                                                                                           \
        if (hstan_selected(#fn)) TEST_RUN(fn);                                                     \
    } while (0)

/* ---- Connections ---- */

/* Connects client_id to cluster with a 2 s connect wait, a 10 s publish-ack wait and a 100 ms NATS
 * reconnect wait (STAN connections always reconnect; libnats forces it). lost (may be NULL)
 * counts calls of the connection-lost handler. Returns the libnats status; on failure the error
 * text is left for hstan_last_error_contains (nothing is printed). */
natsStatus hstan_connect(const struct hserver *s, const char *cluster, const char *client_id,
                         struct hcounter *lost, stanConnection **sc);
/* hstan_connect to HSTAN_CLUSTER, or print why and exit (a CHECK failure). */
stanConnection *hstan_connect_or_die(const struct hserver *s, const char *client_id);
/* Like hstan_connect_or_die, also counting NATS reconnections in reconnected (may be NULL) and
 * connection-lost callbacks in lost (may be NULL). With reconnected set, the client pings the
 * server every second (10 may go unanswered), so a server that has forgotten it shows quickly. */
stanConnection *hstan_connect_watched(const struct hserver *s, const char *client_id,
                                      struct hcounter *reconnected, struct hcounter *lost);

/* hstan_connect_or_die with at most max_pub_acks_inflight unacked publishes (libnats blocks the
 * publisher beyond that), so a stream can be caught in the middle. */
stanConnection *hstan_connect_window(const struct hserver *s, const char *client_id,
                                     int max_pub_acks_inflight);

/* True if nats_GetLastError contains needle; otherwise prints what it holds. */
bool hstan_last_error_contains(const char *needle);

/* Synchronous publish of a NUL-terminated payload; prints the error on failure. */
natsStatus hstan_pub(stanConnection *sc, const char *channel, const char *payload);
/* Publishes fmt-formatted payloads i = first..last (e.g. "m%d"), each synchronously; CHECKs. */
void hstan_pub_range(stanConnection *sc, const char *channel, const char *fmt, int first, int last);

/* A synchronous publish to a channel of its own ("barrier"): when it returns, the server has
 * processed (and, for a persistent store, committed) everything the test observed before it. Used
 * before a kill -9 so that what the test saw happen is what must survive. */
void hstan_commit_barrier(stanConnection *sc);

/* The underlying NATS connection's round trip: everything this client published (acks
 * included) has reached the server when it returns. */
void hstan_flush(stanConnection *sc);

/* A new stanSubOptions or exit. */
stanSubOptions *hstan_subopts(void);

/* ---- Received messages ---- */

struct hstan_rec {
    uint64_t seq;
    int64_t ts;
    bool redelivered;
    int64_t acks_before; /* acks the test had made on this collector when the message arrived */
    int len;
    char data[64]; /* payload, truncated and NUL-terminated */
};

enum hstan_ack_mode {
    HSTAN_ACK_AUTO,    /* the subscription is in auto-ack mode: libnats acks after the handler */
    HSTAN_ACK_HANDLER, /* manual mode; the handler acks each message before recording it */
    HSTAN_ACK_TEST,    /* manual mode; the test acks with hstan_rx_ack (messages are kept) */
};

struct hstan_rx {
    struct hcounter count; /* messages received; its mutex also guards the fields below */
    enum hstan_ack_mode mode;
    int cap;
    struct hstan_rec *recs;
    stanMsg **msgs;          /* HSTAN_ACK_TEST: the messages, for hstan_rx_ack */
    stanSubscription **subs; /* the subscription each message came on */
    int64_t acks;            /* acks made so far */
    int ack_errors;          /* AckMsg calls that failed */
    int overflow;            /* messages beyond cap (counted, not recorded) */
};

void hstan_rx_init(struct hstan_rx *rx, int cap, enum hstan_ack_mode mode);
/* Destroys kept messages and frees; the subscription must be closed or destroyed first. */
void hstan_rx_destroy(struct hstan_rx *rx);
/* The stanMsgHandler; its closure is a struct hstan_rx. */
void hstan_rx_handler(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                      void *closure);
int64_t hstan_rx_count(struct hstan_rx *rx);
/* Waits until at least n messages were received; on timeout prints what did arrive. */
bool hstan_rx_wait(struct hstan_rx *rx, int64_t n, int timeout_ms);
/* A copy of record i (CHECKs that it exists). */
struct hstan_rec hstan_rx_get(struct hstan_rx *rx, int i);
/* HSTAN_ACK_TEST: acks message i on the subscription it came on. Returns the libnats status. */
natsStatus hstan_rx_ack(struct hstan_rx *rx, int i);
/* Prints every record (for failure reports). */
void hstan_rx_dump(struct hstan_rx *rx, const char *label);

/* Subscribes rx's handler (queue NULL = plain). Returns the status; errors left for
 * hstan_last_error_contains. */
natsStatus hstan_sub(stanSubscription **sub, stanConnection *sc, const char *channel,
                     const char *queue, struct hstan_rx *rx, stanSubOptions *opts);

/* Reads a channel from its first stored message with a fresh client (client_id) and a
 * DeliverAllAvailable subscription: waits for at least `expect` messages, then a round trip, and
 * returns how many arrived, with up to cap of them copied to out (may be NULL). CHECKs. */
int hstan_read_all(const struct hserver *s, const char *client_id, const char *channel, int expect,
                   struct hstan_rec *out, int cap);

/* On a connected client: subscribes to channel (DeliverAllAvailable), publishes payload, waits
 * for it to come back, and closes the subscription; CHECKs. Proves that a streaming engine
 * answers through the NATS sc is connected to (the -ns tests). */
void hstan_round_trip(stanConnection *sc, const char *channel, const char *payload);

/* ---- A hand-made STAN client on a plain NATS connection ---- */

struct hstan_raw {
    natsConnection *nc;
    natsSubscription *hb_sub; /* NULL when the heartbeat inbox is left unanswered */
    char client_id[64];
    char hb_inbox[64];
    char pub_prefix[256];
    char sub_requests[256];
    char unsub_requests[256];
    char close_requests[256];
    char sub_close_requests[256];
    char ping_requests[256]; /* ConnectResponse.pingRequests */
    char conn_id[64];        /* the ConnectRequest.connID sent (for Ping) */
};

/* Sends a ConnectRequest for client_id. answer_hb: subscribe the heartbeat inbox and answer
 * server heartbeats; false leaves it unanswered (a client that died without closing). err gets
 * the ConnectResponse error ("" if none). Returns the request's status (NATS_OK when a response
 * arrived, whatever it says). */
natsStatus hstan_raw_connect(struct hstan_raw *r, const struct hserver *s, const char *client_id,
                             bool answer_hb, char *err, size_t errlen);
/* Sends a SubscriptionRequest (start position NewOnly) and returns the request's status; err gets
 * the response's error, ack_inbox (may be NULL) its ackInbox. */
natsStatus hstan_raw_subscribe(struct hstan_raw *r, const char *channel, const char *qgroup,
                               const char *durable, int max_inflight, int ack_wait_s,
                               char *ack_inbox, size_t ack_inbox_len, char *err, size_t errlen);
/* Sends a CloseRequest (if connected) and closes the NATS connection. */
void hstan_raw_close(struct hstan_raw *r);

/* ---- Hand-made protobuf for raw requests (proto3: zero values and "" are left out) ---- */

struct hstan_pb {
    uint8_t b[4096];
    size_t n;
};
/* Appends a length-delimited field (string or bytes) / a varint field; CHECKs for room. */
void hstan_pb_str(struct hstan_pb *p, int field, const char *s);
void hstan_pb_int(struct hstan_pb *p, int field, int64_t v);
/* Decodes a message and copies string field `field` into buf ("" when absent) / stores varint
 * field `field` in *v (0 when absent). False when the message does not decode. */
bool hstan_pb_get_str(const void *data, size_t n, int field, char *buf, size_t len);
bool hstan_pb_get_varint(const void *data, size_t n, int field, uint64_t *v);
/* A NATS request on the raw client's connection; the reply (if NATS_OK) is the caller's to
 * destroy. */
natsStatus hstan_raw_request(struct hstan_raw *r, const char *subject, const void *data, size_t len,
                             int timeout_ms, natsMsg **reply);

/* ---- A data dir that outlives server restarts ---- */

/* Makes a fresh temp dir; data is "<dir>/data" for --dir. */
struct hstan_dir {
    char dir[PATH_MAX / 2];
    char data[PATH_MAX / 2 + 16];
};
void hstan_dir_make(struct hstan_dir *d);
void hstan_dir_remove(struct hstan_dir *d);

#endif

/* upstream: the streaming engine's bus over an external NATS server or cluster (`-ns`), through
 * libnats on the daemon's own loop (libnats' libuv adapter: socket reads and writes happen on
 * the loop thread).
 *
 * libnats hands subscription messages to a thread of its own; upstream queues them and drains
 * the queue on the loop, so the engine stays single-threaded and sees every message in the
 * order NATS delivered it. The queue is bounded: past its limit libnats' thread waits, and
 * libnats' own pending limits (a slow-consumer error, logged) take over, so memory stays bounded
 * whatever the publishers do.
 *
 * The connection reconnects forever, to the configured URLs and to those the cluster announces.
 * While disconnected, publishes go to libnats' reconnect buffer (8 MB) and leave on reconnect;
 * past it they fail (a PubAck then never comes and the client times out, as with NSS). Nothing
 * acked is lost: a PubAck is only sent after its commit. */
#ifndef STANZA_UPSTREAM_H
#define STANZA_UPSTREAM_H
#include <uv.h>

#include "bus.h"
#include "config.h"

typedef struct upstream upstream_t;

/* cfg must outlive it; cfg->nats_server_url is set. */
upstream_t *upstream_new(uv_loop_t *loop, const config_t *cfg);
/* Connects (blocking, at start-up only). Returns 0, or a negative STZ_E* code with libnats'
 * reason in err. Must be called on the loop's thread. */
int upstream_start(upstream_t *u, char *err, size_t errlen);
/* Runs the loop until NATS has processed everything sent so far (a PING/PONG round trip, at
 * most timeout_ms): at start-up, so that the engine's subscriptions are in place at the server
 * before the daemon says it is ready. Returns 0, or a negative STZ_E* code with a message in err.
 */
int upstream_sync(upstream_t *u, int timeout_ms, char *err, size_t errlen);
/* The URL connected to now ("" when disconnected), for the log. */
const char *upstream_url(upstream_t *u);
void upstream_bus(upstream_t *u, bus_t *out);
/* Flushes what was published and closes the connection; then done(arg) on the loop.
 * Subscriptions still open are closed. Idempotent. */
void upstream_shutdown(upstream_t *u, void (*done)(void *arg), void *arg);
/* After the shutdown callback ran (or when upstream_start failed): frees everything and closes
 * libnats (its threads are joined). Run the loop afterwards for the handles' close callbacks. */
void upstream_free(upstream_t *u);

#endif

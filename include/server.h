/* server: the embedded NATS core protocol server on one libuv loop.
 *
 * It accepts TCP clients, parses their protocol (parser), routes each published message through
 * the subject trie (sublist) to the matching subscriptions and writes MSG/HMSG frames into each
 * subscriber's outbound buffer. Outbound buffers are flushed once per loop iteration, just before
 * the loop polls (a uv_prepare hook), so one iteration's traffic to a client leaves in one write.
 *
 * In-process subscribers (the streaming engine) use server_subscribe/server_publish: the same
 * routing, without a socket. */
#ifndef STANZA_SERVER_H
#define STANZA_SERVER_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bus.h"
#include "config.h"

typedef struct server server_t;
typedef struct nsub server_sub_t;

/* Messages, callbacks and stats are the bus's types (bus.h): the server is one implementation
 * of the engine's bus. */
/* cfg must outlive the server. */
server_t *server_new(uv_loop_t *loop, const config_t *cfg);
/* Binds and listens on cfg->host:cfg->port. Returns 0, or a negative STZ_E* code (libuv's errors
 * are -errno, so they are codes of err.h's space as they are) with a message in err. */
int server_start(server_t *s, char *err, size_t errlen);
/* Stops accepting, flushes what each client has pending (bounded by a short deadline), closes
 * every client, then calls done (from the loop). Idempotent. */
void server_shutdown(server_t *s, void (*done)(void *arg), void *arg);
/* Frees the server; call only after the shutdown callback ran. */
void server_free(server_t *s);

/* The port actually bound (useful when cfg->port is 0). */
int server_port(const server_t *s);
const char *server_id(const server_t *s);
void server_get_stats(const server_t *s, bus_stats_t *out);

/* In-process subscription; queue may be NULL. Returns NULL for an invalid subject or queue.
 * The subscription lives until server_unsubscribe or server_free. fn may publish, subscribe or
 * unsubscribe (including itself). */
server_sub_t *server_subscribe(server_t *s, const char *subject, const char *queue, bus_msg_fn fn,
                               void *arg);
void server_unsubscribe(server_t *s, server_sub_t *sub);
/* Publishes as the server itself. reply and hdr may be NULL. Returns 0, or STZ_EINVAL when the
 * subject is not a valid literal subject. */
int server_publish(server_t *s, const bus_msg_t *msg);

/* Number of subscriptions (in-process or client) a message on this literal subject would reach;
 * 0 for an invalid subject. Lets the streaming engine tell at once that a client's inbox has
 * nobody behind it. */
size_t server_interest(server_t *s, const char *subject, size_t len);

/* A hook run once per loop iteration after all input was handled and before outbound buffers
 * are flushed: where the streaming engine commits its batch. One hook; NULL clears it. */
void server_set_flush_hook(server_t *s, void (*fn)(void *arg), void *arg);

/* A hook run when a client connection closes, once for each of its subscriptions, with that
 * subscription's subject, right after it left routing: how the streaming engine learns at once
 * that a subscriber's inbox lost its listener (the TCP drop of a killed client), without polling
 * and without a scan (the cost is that connection's subscriptions). Not run while the server
 * shuts down. One hook; NULL clears it. */
void server_set_sub_gone_hook(server_t *s, bus_sub_gone_fn fn, void *arg);

/* The server as the streaming engine's bus (bus.h): in-process subscriptions, publishes and
 * interest, the flush and sub-gone hooks, the stats. Valid while the server is. */
void server_bus(server_t *s, bus_t *out);

#endif

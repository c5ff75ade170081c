/* stream: one accepted TCP connection on the loop, the transport under both the NATS client port
 * (src/net/conn.c) and the HTTP monitoring port (src/mon/httpd.c).
 *
 * A stream owns its uv_tcp_t and one uv_timer_t, reads into a buffer its owner lends (both ports
 * lend one buffer shared by all their connections: libuv pairs each allocation with its read
 * callback, and the owner keeps what it needs before returning, so an idle connection costs no
 * read buffer), and writes what collects in `out`: stream_flush hands it to uv_try_write, and
 * whatever the socket did not take goes to uv_write as `wbuf` while new output collects in a
 * fresh `out`. Close is libuv's two-phase close: on_closed runs once both handles are closed,
 * and only then may the owner free the memory that holds the stream.
 *
 * The owner keeps its protocol (parsing, limits, what to do on a slow reader); the stream calls
 * it back through the ops given at accept, one call per read, per finished write, per timer. */
#ifndef STANZA_STREAM_H
#define STANZA_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "buf.h"

typedef struct stream stream_t;

typedef struct stream_ops {
    /* nread bytes at p (the lent read buffer, valid during the call), or nread < 0: UV_EOF or
     * a read error. Never called with 0, nor once the stream is closing. */
    void (*on_read)(stream_t *st, ssize_t nread, const char *p);
    /* The write handed to uv_write finished (status 0: all of it was taken) or failed, or a
     * stream_shutdown failed (status < 0). Not called once the stream is closing. */
    void (*on_written)(stream_t *st, int status);
    /* The timer (stream_timer_start) fired. Not called once the stream is closing. */
    void (*on_timer)(stream_t *st);
    /* Both handles are closed: the owner may free the stream's memory now. */
    void (*on_closed)(stream_t *st);
    /* stream_connect's outcome: 0 connected, or a libuv error (the owner closes). */
    void (*on_connected)(stream_t *st, int status);
} stream_ops_t;

struct stream {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    uv_connect_t creq;
    const stream_ops_t *ops;
    void *owner;
    char *rbuf; /* lent by the owner */
    size_t rbuf_len;
    buf_t out;                 /* output collecting; the owner appends to it */
    buf_t wbuf;                /* handed to uv_write, in flight */
    size_t wbuf_off;           /* bytes of wbuf the socket took before uv_write */
    size_t keep;               /* larger buffers are released once drained */
    uint64_t write_started_ms; /* clock_mono_ms when the write in flight began */
    int open_handles;
    bool writing; /* a uv_write is in flight */
    bool closing;
};

/* Accepts a connection from listener into st (zeroed or fresh memory owned by the caller).
 * keep: the size of output buffers kept once drained. Returns 0, or a libuv error: the stream is
 * then already closing and on_closed will run (the owner frees there, as after any close). */
int stream_accept(stream_t *st, uv_stream_t *listener, const stream_ops_t *ops, void *owner,
                  char *rbuf, size_t rbuf_len, size_t keep);
/* Connects st to addr (an outgoing connection, e.g. a route), as stream_accept takes an
 * incoming one; ops->on_connected reports the outcome. Returns 0, or a libuv error: the stream
 * is then already closing and on_closed will run. */
int stream_connect(stream_t *st, uv_loop_t *loop, const struct sockaddr *addr,
                   const stream_ops_t *ops, void *owner, char *rbuf, size_t rbuf_len, size_t keep);
int stream_read_start(stream_t *st);
void stream_read_stop(stream_t *st);
/* Reads, without waiting, what the peer already sent (one read buffer's worth) and hands it to
 * on_read now, as libuv would later (EOF included). Errors are left for libuv's own read. */
void stream_read_now(stream_t *st);

/* Writes `out`: first directly, then, for what the socket did not take, one uv_write (unless
 * one is in flight: then nothing happens until on_written). Returns 1 when `out` was all taken
 * now, 0 when there was nothing to write or the rest is in flight, or a negative libuv error
 * (the owner closes). */
int stream_flush(stream_t *st);
/* Best effort before a close: `out` leaves now if the socket has room; nothing is queued. */
void stream_try_write(stream_t *st);
/* Closes the sending side once the writes in flight are done; a failure comes to on_written. */
void stream_shutdown(stream_t *st);
/* Output not yet taken by the socket: collecting plus in flight. */
static inline size_t stream_unsent(const stream_t *st)
{
    return st->out.len + (st->wbuf.len - st->wbuf_off);
}
/* True while a write has made no progress for longer than deadline_ms. */
bool stream_write_stalled(const stream_t *st, uint64_t now_ms, uint64_t deadline_ms);

/* (Re)arms the one timer: on_timer after timeout_ms, then every repeat_ms (0: once). */
void stream_timer_start(stream_t *st, uint64_t timeout_ms, uint64_t repeat_ms);
void stream_timer_stop(stream_t *st);

/* The peer's address as text and its port. Returns 0, or a libuv error (ip and port untouched). */
int stream_peer(stream_t *st, char *ip, size_t iplen, int *port);

/* Closes both handles (what is unsent is dropped); on_closed follows from the loop. Idempotent. */
void stream_close(stream_t *st);

#endif

/* parser: the NATS client protocol (client -> server direction) as an incremental state machine.
 *
 * parser_feed consumes whatever bytes arrived, split at any point, and calls the handler once per
 * complete operation. Arguments and payloads are slices into the caller's buffer when the whole
 * frame is in it (the common case: nothing is copied); only a frame split across feeds is
 * gathered into the parser's own storage. Slices are valid only during the handler call.
 *
 * Operations are case-insensitive, as nats-server accepts them. Errors are sticky: after one,
 * the connection is to be closed and parser_feed must not be called again. */
#ifndef STANZA_PARSER_H
#define STANZA_PARSER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "err.h"

typedef struct slice {
    const char *p;
    size_t len;
} slice_t;

typedef enum {
    PARSER_OP_CONNECT, /* arg = the JSON text */
    PARSER_OP_PUB,     /* subject, reply (len 0 if none), payload */
    PARSER_OP_HPUB,    /* subject, reply, hdr (the header block incl. its CRLFCRLF), payload */
    PARSER_OP_SUB,     /* subject, queue (len 0 if none), sid */
    PARSER_OP_UNSUB,   /* sid, max (0 = none) */
    PARSER_OP_PING,
    PARSER_OP_PONG,
    /* Route connections only (parser_set_route): nats-server's route protocol. */
    PARSER_OP_INFO,   /* arg = the JSON text */
    PARSER_OP_RSUB,   /* RS+ account subject [queue weight]: account, subject, queue, weight */
    PARSER_OP_RUNSUB, /* RS- account subject [queue]: account, subject, queue */
    PARSER_OP_RMSG,   /* RMSG account subject [reply] size, or with queue names:
                         RMSG account subject (+ reply | "|") q1 ... size: account, subject,
                         reply, queues (the names, space-separated), payload */
    PARSER_OP_RHMSG,  /* HMSG: as RMSG with a header size before the size; hdr, payload */
    PARSER_OP_OK,     /* +OK */
    PARSER_OP_ERR,    /* -ERR 'text': arg = the rest of the line */
} parser_op_type_t;

typedef struct parser_op {
    parser_op_type_t type;
    slice_t arg; /* CONNECT JSON */
    slice_t subject, reply, queue, sid;
    slice_t hdr;     /* HPUB: header bytes (hdr.len = header size given on the line) */
    slice_t payload; /* PUB: the message; HPUB: the bytes after the header */
    uint64_t max;    /* UNSUB */
    slice_t account; /* RS+, RS-, RMSG, HMSG */
    slice_t queues;  /* RMSG, HMSG: queue names separated by spaces (len 0 if none) */
    uint64_t weight; /* RS+ with a queue: the remote group's member count */
} parser_op_t;

/* Errors are err.h's: STZ_EUNKNOWNOP (not a known operation), STZ_ECTRLLINE (control line longer
 * than the limit), STZ_EMAXPAYLOAD (PUB/HPUB size over max_payload), STZ_EBADARGS (wrong number
 * or form of arguments), STZ_EBADPAYLOAD (payload not followed by CRLF), STZ_ESTOPPED (the
 * handler asked to stop), STZ_ENOMEM (no memory to gather a split frame: drop the client). */

/* Handler: return 0 to continue, non-zero to stop parsing (parser_feed then returns
 * STZ_ESTOPPED). */
typedef int (*parser_handler_fn)(void *arg, const parser_op_t *op);

typedef struct parser {
    int state;
    size_t max_control_line;
    size_t max_payload;
    /* Gathering storage, used only for frames split across feeds. */
    buf_t line;     /* a partial control line */
    buf_t payload;  /* a partial payload (+CRLF) */
    parser_op_t op; /* the pending PUB/HPUB while its payload arrives */
    size_t need;    /* payload bytes (incl. CRLF) still expected */
    size_t hdr_len;
    int err;
    bool route; /* parser_set_route: the route protocol, not the client one */
} parser_t;

void parser_init(parser_t *p, size_t max_control_line, size_t max_payload);
void parser_free(parser_t *p);
/* Switches p to nats-server's route protocol (a route connection, either side): INFO, CONNECT,
 * RS+, RS-, RMSG, HMSG, PING, PONG, +OK, -ERR; the client operations (PUB, HPUB, SUB, UNSUB)
 * are then unknown. The limits are the same (a RMSG over max_payload is STZ_EMAXPAYLOAD). */
void parser_set_route(parser_t *p);
/* Returns 0 or a negative STZ_E* code. *consumed is not reported: all bytes are taken on
 * success. On STZ_ESTOPPED the operation that stopped is complete and the rest of buf is
 * unparsed. */
int parser_feed(parser_t *p, const char *buf, size_t len, parser_handler_fn fn, void *arg);

#endif

/* conn_log: how a connection describes itself in the log: close reasons and the -V trace of
 * client operations. Split from conn.c, which is about moving bytes. */
#include <string.h>

#include "log.h"
#include "server_private.h"

const char *conn_reason_text(close_reason_t r)
{
    switch (r) {
    case CLOSE_CLIENT:
        return "Client Closed";
    case CLOSE_PROTOCOL:
        return "Protocol Violation";
    case CLOSE_MAX_PAYLOAD:
        return "Maximum Payload Exceeded";
    case CLOSE_CONTROL_LINE:
        return "Maximum Control Line Exceeded";
    case CLOSE_SLOW_CONSUMER:
        return "Slow Consumer";
    case CLOSE_STALE:
        return "Stale Connection";
    case CLOSE_AUTH:
        return "Authentication Failure";
    case CLOSE_MAX_CONNS:
        return "Maximum Connections Exceeded";
    case CLOSE_WRITE_ERROR:
        return "Write Error";
    case CLOSE_SHUTDOWN:
        return "Server Shutdown";
    case CLOSE_NO_MEMORY:
        return "Out of Memory";
    case CLOSE_TLS:
        return "TLS Handshake Error";
    case CLOSE_TLS_REQUIRED:
        return "Secure Connection - TLS Required";
    case CLOSE_ROUTE_CONNECT:
        return "Route Connect Failed";
    case CLOSE_ROUTE_REFUSED:
        return "Route Refused";
    }
    return "Unknown";
}

/* -V: one line per client operation, as nats-server traces them. */
void conn_trace_op(conn_t *c, const parser_op_t *op)
{
    unsigned long long cid = (unsigned long long)c->cid;
    switch (op->type) {
    case PARSER_OP_CONNECT:
        /* Never write credentials to the log. */
        if (memmem(op->arg.p, op->arg.len, "\"pass\"", 6) ||
            memmem(op->arg.p, op->arg.len, "\"auth_token\"", 12))
            LOG_T("cid:%llu - <<- [CONNECT (with credentials, not shown)]", cid);
        else
            LOG_T("cid:%llu - <<- [CONNECT %.*s]", cid, (int)op->arg.len, op->arg.p);
        break;
    case PARSER_OP_PUB:
    case PARSER_OP_HPUB:
        LOG_T("cid:%llu - <<- [%s %.*s%s%.*s %zu] %zu header bytes", cid,
              op->type == PARSER_OP_PUB ? "PUB" : "HPUB", (int)op->subject.len, op->subject.p,
              op->reply.len ? " " : "", (int)op->reply.len, op->reply.p,
              op->payload.len + op->hdr.len, op->hdr.len);
        break;
    case PARSER_OP_SUB:
        LOG_T("cid:%llu - <<- [SUB %.*s%s%.*s %.*s]", cid, (int)op->subject.len, op->subject.p,
              op->queue.len ? " " : "", (int)op->queue.len, op->queue.p, (int)op->sid.len,
              op->sid.p);
        break;
    case PARSER_OP_UNSUB:
        LOG_T("cid:%llu - <<- [UNSUB %.*s %llu]", cid, (int)op->sid.len, op->sid.p,
              (unsigned long long)op->max);
        break;
    case PARSER_OP_PING:
        LOG_T("cid:%llu - <<- [PING]", cid);
        break;
    case PARSER_OP_PONG:
        LOG_T("cid:%llu - <<- [PONG]", cid);
        break;
    case PARSER_OP_INFO:
    case PARSER_OP_OK:
    case PARSER_OP_ERR:
        LOG_T("rid:%llu - <<- [%s %.*s]", cid,
              op->type == PARSER_OP_INFO ? "INFO"
              : op->type == PARSER_OP_OK ? "+OK"
                                         : "-ERR",
              (int)op->arg.len, op->arg.p);
        break;
    case PARSER_OP_RSUB:
    case PARSER_OP_RUNSUB:
        LOG_T("rid:%llu - <<- [%s %.*s %.*s%s%.*s]", cid,
              op->type == PARSER_OP_RSUB ? "RS+" : "RS-", (int)op->account.len, op->account.p,
              (int)op->subject.len, op->subject.p, op->queue.len ? " " : "", (int)op->queue.len,
              op->queue.p);
        break;
    case PARSER_OP_RMSG:
    case PARSER_OP_RHMSG:
        LOG_T("rid:%llu - <<- [%s %.*s %.*s%s%.*s%s%.*s %zu]", cid,
              op->type == PARSER_OP_RMSG ? "RMSG" : "HMSG", (int)op->account.len, op->account.p,
              (int)op->subject.len, op->subject.p, op->reply.len ? " " : "", (int)op->reply.len,
              op->reply.p, op->queues.len ? " " : "", (int)op->queues.len, op->queues.p,
              op->payload.len + op->hdr.len);
        break;
    }
}

/* parser: NATS client protocol state machine. See parser.h for the contract.
 *
 * Two states: reading a control line (up to LF) and reading a payload of known size. The common
 * case (a whole frame inside one read) never copies: the op's slices point into the caller's
 * buffer. Only frames split across reads are gathered, the line into p->line and the payload
 * into p->payload, which is what nats-server's parser does with its scratch buffers. */
#include "parser.h"

#include <stdbool.h>
#include <string.h>

enum { ST_LINE = 0, ST_PAYLOAD = 1 };

/* Larger gather buffers are released after use, so one big split frame does not pin memory. */
#define KEEP_GATHER 65536

#define MAX_ARGS 5
/* RMSG's arguments: account, subject, indicator, reply, the queue names, two sizes: room for
 * 250 queue groups of one subject behind one route. */
#define ROUTE_MAX_ARGS 256

void parser_init(parser_t *p, size_t max_control_line, size_t max_payload)
{
    memset(p, 0, sizeof *p);
    p->state = ST_LINE;
    p->max_control_line = max_control_line;
    p->max_payload = max_payload;
    buf_init(&p->line);
    buf_init(&p->payload);
}

void parser_free(parser_t *p)
{
    buf_free(&p->line);
    buf_free(&p->payload);
}

void parser_set_route(parser_t *p)
{
    p->route = true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static bool op_is(slice_t tok, const char *name)
{
    size_t n = strlen(name);
    if (tok.len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = tok.p[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (c != name[i]) return false;
    }
    return true;
}

/* Decimal digits only, at most 18 of them (fits in size_t comfortably). */
static bool parse_u64(slice_t s, uint64_t *out)
{
    if (s.len == 0 || s.len > 18) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return true;
}

static size_t split_args(const char *line, size_t len, slice_t *args, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && is_ws(line[i]))
            i++;
        if (i >= len) break;
        size_t start = i;
        while (i < len && !is_ws(line[i]))
            i++;
        if (n == max) return max + 1; /* too many */
        args[n].p = line + start;
        args[n].len = i - start;
        n++;
    }
    return n;
}

/* The text after the operation's name, without the blanks around it. */
static slice_t rest_of_line(const char *line, size_t len, size_t oplen)
{
    size_t i = oplen;
    while (i < len && is_ws(line[i]))
        i++;
    size_t end = len;
    while (end > i && is_ws(line[end - 1]))
        end--;
    return (slice_t){line + i, end - i};
}

/* RMSG/HMSG's arguments after the operation: account subject, then [reply] or
 * (+ reply | "|") q1 ..., then [header size] and the size. nhdr: 1 for HMSG. */
static int parse_rmsg(parser_t *p, slice_t *a, size_t n, size_t nhdr, size_t *payload_size)
{
    parser_op_t *op = &p->op;
    if (n < 3 + nhdr) return STZ_EBADARGS;
    op->account = a[0];
    op->subject = a[1];
    size_t sizes = n - 1 - nhdr; /* index of the first size */
    if (n == 4 + nhdr) {
        op->reply = a[2];
    } else if (n > 4 + nhdr) {
        /* a[2] is the reply indicator: '+' reply follows, '|' none; then the queue names. */
        if (a[2].len != 1 || (a[2].p[0] != '+' && a[2].p[0] != '|')) return STZ_EBADARGS;
        size_t q = 3;
        if (a[2].p[0] == '+') op->reply = a[q++];
        if (q >= sizes) return STZ_EBADARGS;
        op->queues.p = a[q].p;
        op->queues.len = (size_t)(a[sizes - 1].p + a[sizes - 1].len - a[q].p);
    }
    uint64_t size, hdr = 0;
    if (!parse_u64(a[n - 1], &size)) return STZ_EBADARGS;
    if (nhdr && (!parse_u64(a[n - 2], &hdr) || hdr > size)) return STZ_EBADARGS;
    if (size > p->max_payload) return STZ_EMAXPAYLOAD;
    op->type = nhdr ? PARSER_OP_RHMSG : PARSER_OP_RMSG;
    *payload_size = (size_t)size;
    p->hdr_len = (size_t)hdr;
    return STZ_OK;
}

/* A route connection's control line (parser_set_route). */
static int parse_route_line(parser_t *p, const char *line, size_t len, slice_t opname,
                            size_t *payload_size)
{
    parser_op_t *op = &p->op;
    if (op_is(opname, "INFO") || op_is(opname, "CONNECT") || op_is(opname, "-ERR")) {
        op->type = op_is(opname, "INFO")      ? PARSER_OP_INFO
                   : op_is(opname, "CONNECT") ? PARSER_OP_CONNECT
                                              : PARSER_OP_ERR;
        op->arg = rest_of_line(line, len, opname.len);
        return STZ_OK;
    }
    /* Queue names make RMSG's argument count open-ended: up to a bound, past which the line is
     * refused. */
    slice_t a[ROUTE_MAX_ARGS + 1];
    size_t n = split_args(line + opname.len, len - opname.len, a, ROUTE_MAX_ARGS);
    if (n > ROUTE_MAX_ARGS) return STZ_EBADARGS;
    uint64_t w = 0;
    if (op_is(opname, "RMSG") || op_is(opname, "HMSG"))
        return parse_rmsg(p, a, n, op_is(opname, "HMSG") ? 1 : 0, payload_size);
    if (op_is(opname, "RS+")) {
        if ((n != 2 && n != 4) || (n == 4 && !parse_u64(a[3], &w))) return STZ_EBADARGS;
        op->type = PARSER_OP_RSUB;
    } else if (op_is(opname, "RS-")) {
        if (n != 2 && n != 3) return STZ_EBADARGS;
        op->type = PARSER_OP_RUNSUB;
    } else if (op_is(opname, "PING") || op_is(opname, "PONG") || op_is(opname, "+OK")) {
        if (n != 0) return STZ_EBADARGS;
        op->type = op_is(opname, "PING")   ? PARSER_OP_PING
                   : op_is(opname, "PONG") ? PARSER_OP_PONG
                                           : PARSER_OP_OK;
        return STZ_OK;
    } else {
        return STZ_EUNKNOWNOP;
    }
    op->account = a[0];
    op->subject = a[1];
    if (n > 2) op->queue = a[2];
    op->weight = w;
    return STZ_OK;
}

/* Parses one control line into p->op. Returns STZ_OK with *payload_size set to the bytes of
 * payload that follow (PUB/HPUB) or SIZE_MAX when the op is complete as it is. */
static int parse_line(parser_t *p, const char *line, size_t len, size_t *payload_size)
{
    parser_op_t *op = &p->op;
    memset(op, 0, sizeof *op);
    *payload_size = SIZE_MAX;

    slice_t a[MAX_ARGS + 1];
    /* CONNECT's argument is JSON with spaces in it: take the rest of the line as is. */
    size_t oplen = 0;
    while (oplen < len && !is_ws(line[oplen]))
        oplen++;
    slice_t opname = {line, oplen};
    if (p->route) return parse_route_line(p, line, len, opname, payload_size);
    if (op_is(opname, "CONNECT")) {
        op->type = PARSER_OP_CONNECT;
        op->arg = rest_of_line(line, len, oplen);
        return STZ_OK;
    }

    size_t n = split_args(line, len, a, MAX_ARGS);
    if (n == 0) return STZ_EUNKNOWNOP;
    slice_t *args = a + 1;
    size_t nargs = n - 1;
    uint64_t v1, v2;

    if (op_is(a[0], "PUB")) {
        if (nargs != 2 && nargs != 3) return STZ_EBADARGS;
        op->type = PARSER_OP_PUB;
        op->subject = args[0];
        if (nargs == 3) op->reply = args[1];
        if (!parse_u64(args[nargs - 1], &v1)) return STZ_EBADARGS;
        if (v1 > p->max_payload) return STZ_EMAXPAYLOAD;
        *payload_size = (size_t)v1;
        p->hdr_len = 0;
        return STZ_OK;
    }
    if (op_is(a[0], "HPUB")) {
        if (nargs != 3 && nargs != 4) return STZ_EBADARGS;
        op->type = PARSER_OP_HPUB;
        op->subject = args[0];
        if (nargs == 4) op->reply = args[1];
        if (!parse_u64(args[nargs - 2], &v1) || !parse_u64(args[nargs - 1], &v2))
            return STZ_EBADARGS;
        if (v1 > v2) return STZ_EBADARGS;
        if (v2 > p->max_payload) return STZ_EMAXPAYLOAD;
        *payload_size = (size_t)v2;
        p->hdr_len = (size_t)v1;
        return STZ_OK;
    }
    if (op_is(a[0], "SUB")) {
        if (nargs != 2 && nargs != 3) return STZ_EBADARGS;
        op->type = PARSER_OP_SUB;
        op->subject = args[0];
        if (nargs == 3) op->queue = args[1];
        op->sid = args[nargs - 1];
        return STZ_OK;
    }
    if (op_is(a[0], "UNSUB")) {
        if (nargs != 1 && nargs != 2) return STZ_EBADARGS;
        op->type = PARSER_OP_UNSUB;
        op->sid = args[0];
        if (nargs == 2 && !parse_u64(args[1], &op->max)) return STZ_EBADARGS;
        return STZ_OK;
    }
    if (op_is(a[0], "PING") || op_is(a[0], "PONG")) {
        if (nargs != 0) return STZ_EBADARGS;
        op->type = op_is(a[0], "PING") ? PARSER_OP_PING : PARSER_OP_PONG;
        return STZ_OK;
    }
    return STZ_EUNKNOWNOP;
}

static int fail(parser_t *p, int err)
{
    p->err = err;
    return err;
}

/* Completes a PUB/HPUB whose payload (with its trailing CRLF) is at data[0..size+2). */
static int deliver_payload(parser_t *p, const char *data, size_t size, parser_handler_fn fn,
                           void *arg)
{
    if (data[size] != '\r' || data[size + 1] != '\n') return fail(p, STZ_EBADPAYLOAD);
    parser_op_t *op = &p->op;
    if (op->type == PARSER_OP_HPUB || op->type == PARSER_OP_RHMSG) {
        op->hdr.p = data;
        op->hdr.len = p->hdr_len;
        op->payload.p = data + p->hdr_len;
        op->payload.len = size - p->hdr_len;
    } else {
        op->payload.p = data;
        op->payload.len = size;
    }
    if (fn(arg, op) != 0) return fail(p, STZ_ESTOPPED);
    return STZ_OK;
}

static void gathered_done(parser_t *p)
{
    buf_reset(&p->line);
    buf_shrink(&p->line, KEEP_GATHER);
}

int parser_feed(parser_t *p, const char *buf, size_t len, parser_handler_fn fn, void *arg)
{
    if (p->err) return p->err;
    size_t i = 0;
    while (i < len) {
        if (p->state == ST_PAYLOAD) {
            size_t take = len - i < p->need ? len - i : p->need;
            buf_append(&p->payload, buf + i, take);
            i += take;
            p->need -= take;
            if (p->need > 0) return STZ_OK;
            p->state = ST_LINE;
            int rc = deliver_payload(p, p->payload.data, p->payload.len - 2, fn, arg);
            buf_reset(&p->payload);
            buf_shrink(&p->payload, KEEP_GATHER);
            gathered_done(p);
            if (rc) return rc;
            continue;
        }

        const char *start = buf + i;
        size_t avail = len - i;
        const char *nl = memchr(start, '\n', avail);
        /* +1 leaves room for the CR before the LF. */
        size_t limit = p->max_control_line + 1;
        if (!nl) {
            if (p->line.len + avail > limit) return fail(p, STZ_ECTRLLINE);
            if (buf_try_reserve(&p->line, avail) != 0) return fail(p, STZ_ENOMEM);
            buf_append(&p->line, start, avail);
            return STZ_OK;
        }
        size_t seg = (size_t)(nl - start);
        if (p->line.len + seg > limit) return fail(p, STZ_ECTRLLINE);
        const char *line = start;
        size_t ll = seg;
        bool gathered = p->line.len > 0;
        if (gathered) {
            if (buf_try_reserve(&p->line, seg) != 0) return fail(p, STZ_ENOMEM);
            buf_append(&p->line, start, seg);
            line = p->line.data;
            ll = p->line.len;
        }
        i += seg + 1;
        if (ll > 0 && line[ll - 1] == '\r') ll--;
        if (ll > p->max_control_line) return fail(p, STZ_ECTRLLINE);

        size_t psize;
        int rc = parse_line(p, line, ll, &psize);
        if (rc) return fail(p, rc);
        if (psize == SIZE_MAX) {
            rc = fn(arg, &p->op) != 0 ? fail(p, STZ_ESTOPPED) : STZ_OK;
            gathered_done(p);
            if (rc) return rc;
            continue;
        }

        size_t need = psize + 2;
        if (len - i >= need) {
            rc = deliver_payload(p, buf + i, psize, fn, arg);
            i += need;
            gathered_done(p);
            if (rc) return rc;
            continue;
        }
        /* The payload is split: keep the line in our own storage (the op's slices must outlive
         * this call) and gather the payload. */
        if (!gathered) {
            if (buf_try_reserve(&p->line, ll) != 0) return fail(p, STZ_ENOMEM);
            buf_append(&p->line, line, ll);
            rc = parse_line(p, p->line.data, p->line.len, &psize);
            if (rc) return fail(p, rc); /* cannot happen: same bytes parsed above */
        }
        /* Reserved whole here (so the appends above never grow it): a client-sized allocation
         * that may fail, which drops this client, not the process. */
        if (buf_try_reserve(&p->payload, need) != 0) return fail(p, STZ_ENOMEM);
        p->need = need;
        p->state = ST_PAYLOAD;
    }
    return STZ_OK;
}

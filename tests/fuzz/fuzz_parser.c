/* fuzz_parser: the NATS protocol parser (src/net/parser.c) on arbitrary bytes.
 *
 * Input: byte 0 picks the protocol (its high bit: a route connection's, parser_set_route; else a
 * client's) and a chunk size pattern (the other bits); the rest is the byte stream. The stream is
 * parsed twice: whole, and in chunks of varying size (so every frame is split at every point and
 * the gathering paths run). Both must yield the same operations and the same outcome: where a
 * read happens to end must never change what a client's bytes mean. Every slice handed out is
 * read in full (ASan checks it lies in live memory: each chunk is its own allocation, freed
 * after its feed) and checked against the limits. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

#define MAX_CONTROL_LINE 512
#define MAX_PAYLOAD 4096

static volatile uint8_t sink;

static void touch(slice_t s)
{
    if (s.len && !s.p) abort();
    uint8_t x = 0;
    for (size_t i = 0; i < s.len; i++)
        x ^= (uint8_t)s.p[i];
    sink ^= x;
}

/* FNV-1a over everything an operation carries. */
typedef struct digest {
    uint64_t h;
    unsigned nops;
} digest_t;

static void mix(digest_t *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 1099511628211ULL;
}

static void mix_slice(digest_t *d, slice_t s)
{
    mix(d, &s.len, sizeof s.len);
    mix(d, s.p, s.len);
}

static int on_op(void *arg, const parser_op_t *op)
{
    digest_t *d = arg;
    int type = op->type;
    mix(d, &type, sizeof type);
    mix_slice(d, op->arg);
    mix_slice(d, op->subject);
    mix_slice(d, op->reply);
    mix_slice(d, op->queue);
    mix_slice(d, op->sid);
    mix_slice(d, op->hdr);
    mix_slice(d, op->payload);
    mix(d, &op->max, sizeof op->max);
    mix_slice(d, op->account);
    mix_slice(d, op->queues);
    mix(d, &op->weight, sizeof op->weight);
    touch(op->account);
    touch(op->queues);
    touch(op->arg);
    touch(op->subject);
    touch(op->reply);
    touch(op->queue);
    touch(op->sid);
    touch(op->hdr);
    touch(op->payload);
    if (op->payload.len > MAX_PAYLOAD || op->hdr.len > MAX_PAYLOAD) abort();
    if (op->type == PARSER_OP_PUB || op->type == PARSER_OP_HPUB || op->type == PARSER_OP_SUB) {
        if (op->subject.len == 0) abort();
    }
    if (op->type == PARSER_OP_SUB && op->sid.len == 0) abort();
    if ((op->type == PARSER_OP_RSUB || op->type == PARSER_OP_RMSG || op->type == PARSER_OP_RHMSG) &&
        (op->subject.len == 0 || op->account.len == 0))
        abort();
    /* Stop now and then, as a connection that is being closed does. */
    return ++d->nops == 200;
}

/* Parses data[0..size) in chunks (pattern 0: all at once; otherwise 1..pattern bytes, varying),
 * each chunk a separate allocation. Returns the first non-OK result, or STZ_OK. */
static int run(const uint8_t *data, size_t size, bool route, unsigned pattern, digest_t *d)
{
    parser_t p;
    parser_init(&p, MAX_CONTROL_LINE, MAX_PAYLOAD);
    if (route) parser_set_route(&p);
    d->h = 14695981039346656037ULL;
    d->nops = 0;
    int rc = STZ_OK;
    size_t off = 0, i = 0;
    while (off < size && rc == STZ_OK) {
        size_t n = pattern == 0 ? size - off : 1 + (i * 7 + pattern) % pattern;
        if (n > size - off) n = size - off;
        char *chunk = malloc(n);
        memcpy(chunk, data + off, n);
        rc = parser_feed(&p, chunk, n, on_op, d);
        free(chunk);
        off += n;
        i++;
    }
    parser_free(&p);
    if (!stz_strerror(rc)) abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool route = data[0] & 0x80;
    unsigned pattern = data[0] & 0x7f;
    digest_t whole, split;
    int rc1 = run(data + 1, size - 1, route, 0, &whole);
    int rc2 = run(data + 1, size - 1, route, pattern, &split);
    if (rc1 != rc2 || whole.nops != split.nops || whole.h != split.h) {
        fprintf(stderr,
                "parser: whole input gave rc %d after %u ops, split (pattern %u) rc %d after %u "
                "ops%s\n",
                rc1, whole.nops, pattern, rc2, split.nops,
                whole.h != split.h ? ", and different operations" : "");
        abort();
    }
    return 0;
}

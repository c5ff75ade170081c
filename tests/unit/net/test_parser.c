/* Parser tests: every operation, every error path, and every input fed split at every byte. */
#include <stdint.h>

#include "buf.h"
#include "parser.h"
#include "test.h"

/* Serializes each op the parser reports so runs over differently split input can be compared. */
typedef struct recorder {
    buf_t out;
    int stop_after; /* >0: ask the parser to stop after this many ops */
    int ops;
} recorder_t;

static void put_slice(buf_t *b, const char *name, slice_t s)
{
    buf_printf(b, " %s=[", name);
    buf_append(b, s.p, s.len);
    buf_append_str(b, "]");
}

static int record(void *arg, const parser_op_t *op)
{
    recorder_t *r = arg;
    static const char *const names[] = {"CONNECT", "PUB", "HPUB", "SUB", "UNSUB", "PING", "PONG"};
    buf_append_str(&r->out, names[op->type]);
    switch (op->type) {
    case PARSER_OP_CONNECT:
        put_slice(&r->out, "arg", op->arg);
        break;
    case PARSER_OP_PUB:
    case PARSER_OP_HPUB:
        put_slice(&r->out, "subj", op->subject);
        put_slice(&r->out, "reply", op->reply);
        if (op->type == PARSER_OP_HPUB) put_slice(&r->out, "hdr", op->hdr);
        put_slice(&r->out, "data", op->payload);
        break;
    case PARSER_OP_SUB:
        put_slice(&r->out, "subj", op->subject);
        put_slice(&r->out, "queue", op->queue);
        put_slice(&r->out, "sid", op->sid);
        break;
    case PARSER_OP_UNSUB:
        put_slice(&r->out, "sid", op->sid);
        buf_printf(&r->out, " max=%llu", (unsigned long long)op->max);
        break;
    default:
        break;
    }
    buf_append_str(&r->out, "\n");
    r->ops++;
    return r->stop_after > 0 && r->ops >= r->stop_after;
}

/* Feeds input in pieces of the given cut points; returns the parser result, and the record. */
static int run_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t mcl,
                    size_t maxp, char **rec)
{
    parser_t p;
    parser_init(&p, mcl, maxp);
    recorder_t r = {0};
    buf_init(&r.out);
    size_t pos = 0;
    int rc = STZ_OK;
    for (size_t k = 0; k <= ncuts && rc == STZ_OK; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        rc = parser_feed(&p, in + pos, end - pos, record, &r);
        pos = end;
    }
    buf_append(&r.out, "", 1);
    *rec = r.out.data;
    parser_free(&p);
    return rc;
}

/* Checks that input parses to `expect` with result `want_rc` whole, split once at every byte,
 * and fed one byte at a time. */
static void check_all_splits(const char *in, size_t len, int want_rc, const char *expect)
{
    char *rec;
    int rc = run_cuts(in, len, NULL, 0, 4096, 1 << 20, &rec);
    if (rc != want_rc || strcmp(rec, expect) != 0)
        fprintf(stderr, "whole: rc=%d want %d\n got:\n%s\n want:\n%s\n", rc, want_rc, rec, expect);
    CHECK_EQ_INT(rc, want_rc);
    CHECK_EQ_STR(rec, expect);
    free(rec);
    for (size_t cut = 1; cut < len; cut++) {
        rc = run_cuts(in, len, &cut, 1, 4096, 1 << 20, &rec);
        if (rc != want_rc || strcmp(rec, expect) != 0)
            fprintf(stderr, "cut at %zu: rc=%d\n%s\n", cut, rc, rec);
        CHECK_EQ_INT(rc, want_rc);
        CHECK_EQ_STR(rec, expect);
        free(rec);
    }
    size_t *cuts = malloc(sizeof(size_t) * (len ? len : 1));
    for (size_t k = 0; k + 1 < len; k++)
        cuts[k] = k + 1;
    rc = run_cuts(in, len, cuts, len ? len - 1 : 0, 4096, 1 << 20, &rec);
    CHECK_EQ_INT(rc, want_rc);
    CHECK_EQ_STR(rec, expect);
    free(rec);
    free(cuts);
}

#define CHECK_SPLITS(in, rc, expect) check_all_splits(in, sizeof(in) - 1, rc, expect)

static void test_connect(void)
{
    CHECK_SPLITS("CONNECT {\"verbose\":true, \"name\":\"a b\"}\r\n", STZ_OK,
                 "CONNECT arg=[{\"verbose\":true, \"name\":\"a b\"}]\n");
    CHECK_SPLITS("connect   {}  \r\n", STZ_OK, "CONNECT arg=[{}]\n");
}

static void test_pub(void)
{
    CHECK_SPLITS("PUB foo 5\r\nhello\r\n", STZ_OK, "PUB subj=[foo] reply=[] data=[hello]\n");
    CHECK_SPLITS("PUB foo.bar _INBOX.1 3\r\nabc\r\n", STZ_OK,
                 "PUB subj=[foo.bar] reply=[_INBOX.1] data=[abc]\n");
    CHECK_SPLITS("pub foo 0\r\n\r\n", STZ_OK, "PUB subj=[foo] reply=[] data=[]\n");
    /* Payload bytes that look like protocol are data. */
    CHECK_SPLITS("PUB a 11\r\nPING\r\nPONG\r\r\n", STZ_OK,
                 "PUB subj=[a] reply=[] data=[PING\r\nPONG\r]\n");
    /* Tabs separate arguments too; LF alone ends a line. */
    CHECK_SPLITS("PUB\tfoo\t2\nhi\r\n", STZ_OK, "PUB subj=[foo] reply=[] data=[hi]\n");
}

static void test_hpub(void)
{
    CHECK_SPLITS("HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", STZ_OK,
                 "HPUB subj=[foo] reply=[] hdr=[NATS/1.0\r\n\r\n] data=[hi]\n");
    CHECK_SPLITS("HPUB foo rep 12 12\r\nNATS/1.0\r\n\r\n\r\n", STZ_OK,
                 "HPUB subj=[foo] reply=[rep] hdr=[NATS/1.0\r\n\r\n] data=[]\n");
}

static void test_sub_unsub_ping(void)
{
    CHECK_SPLITS("SUB foo 1\r\nSUB foo.* q 22\r\nUNSUB 1\r\nUNSUB 22 5\r\nPING\r\nPONG\r\n", STZ_OK,
                 "SUB subj=[foo] queue=[] sid=[1]\n"
                 "SUB subj=[foo.*] queue=[q] sid=[22]\n"
                 "UNSUB sid=[1] max=0\n"
                 "UNSUB sid=[22] max=5\n"
                 "PING\nPONG\n");
    CHECK_SPLITS("ping\r\nPiNg\r\n", STZ_OK, "PING\nPING\n");
}

static void test_pipeline(void)
{
    CHECK_SPLITS("SUB a 1\r\nPUB a 1\r\nx\r\nPUB a 2\r\nyz\r\nPING\r\n", STZ_OK,
                 "SUB subj=[a] queue=[] sid=[1]\n"
                 "PUB subj=[a] reply=[] data=[x]\n"
                 "PUB subj=[a] reply=[] data=[yz]\n"
                 "PING\n");
}

static void test_errors(void)
{
    /* Ops before the error are reported; the error is sticky. */
    CHECK_SPLITS("PING\r\nFOO bar\r\n", STZ_EUNKNOWNOP, "PING\n");
    CHECK_SPLITS("\r\n", STZ_EUNKNOWNOP, "");
    CHECK_SPLITS("PUB foo\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PUB foo a b 3\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PUB foo x1\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PUB foo -1\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PUB foo 99999999999999999999\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PUB foo 3\r\nabcd\r\n", STZ_EBADPAYLOAD, "");
    CHECK_SPLITS("PUB foo 3\r\nab\r\n\r\n", STZ_EBADPAYLOAD, "");
    CHECK_SPLITS("HPUB foo 5 3\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("HPUB foo 3\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("SUB foo\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("SUB a b c d\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("UNSUB\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("UNSUB 1 x\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PING x\r\n", STZ_EBADARGS, "");
    CHECK_SPLITS("PUB foo 2000000\r\n", STZ_EMAXPAYLOAD, "");
    CHECK_SPLITS("HPUB foo 10 2000000\r\n", STZ_EMAXPAYLOAD, "");
    /* The codes' names are the -ERR texts clients get (conn.c sends the unknown-op one for
     * every other parse error: test_protocol pins that). */
    CHECK_EQ_STR(stz_strerror(STZ_EMAXPAYLOAD), "Maximum Payload Violation");
    CHECK_EQ_STR(stz_strerror(STZ_EUNKNOWNOP), "Unknown Protocol Operation");
}

static void test_control_line_limit(void)
{
    /* A line of exactly the limit is fine; one byte over fails, with or without its LF yet. */
    size_t mcl = 64;
    char line[200];
    char *rec;
    memset(line, 'a', sizeof line);
    memcpy(line, "SUB ", 4);
    memcpy(line + mcl - 2, " 1\r\n", 4); /* line content = mcl bytes */
    CHECK_EQ_INT(run_cuts(line, mcl + 2, NULL, 0, mcl, 1024, &rec), STZ_OK);
    free(rec);
    size_t cut = 10;
    CHECK_EQ_INT(run_cuts(line, mcl + 2, &cut, 1, mcl, 1024, &rec), STZ_OK);
    free(rec);

    memset(line, 'a', sizeof line);
    memcpy(line, "SUB ", 4);
    memcpy(line + mcl - 1, " 1\r\n", 4); /* mcl + 1 bytes */
    CHECK_EQ_INT(run_cuts(line, mcl + 3, NULL, 0, mcl, 1024, &rec), STZ_ECTRLLINE);
    free(rec);
    /* No LF at all: fails as soon as more than the limit has arrived, never buffering more. */
    memset(line, 'a', sizeof line);
    size_t cuts[3] = {30, 60, 90};
    CHECK_EQ_INT(run_cuts(line, sizeof line, cuts, 3, mcl, 1024, &rec), STZ_ECTRLLINE);
    free(rec);
    CHECK_EQ_STR(stz_strerror(STZ_ECTRLLINE), "Maximum Control Line Exceeded");
}

static void test_handler_stop(void)
{
    parser_t p;
    parser_init(&p, 4096, 1024);
    recorder_t r = {0};
    buf_init(&r.out);
    r.stop_after = 1;
    const char *in = "PING\r\nPING\r\n";
    CHECK_EQ_INT(parser_feed(&p, in, strlen(in), record, &r), STZ_ESTOPPED);
    CHECK_EQ_INT(r.ops, 1);
    /* Sticky: no more ops once stopped. */
    CHECK_EQ_INT(parser_feed(&p, in, strlen(in), record, &r), STZ_ESTOPPED);
    CHECK_EQ_INT(r.ops, 1);
    buf_free(&r.out);
    parser_free(&p);
}

static void test_large_payload_split(void)
{
    /* A 512 KiB payload arriving in 1000-byte reads is gathered once and delivered intact. */
    size_t n = 512 * 1024;
    buf_t in;
    buf_init(&in);
    buf_printf(&in, "PUB big %zu\r\n", n);
    size_t off = in.len;
    buf_reserve(&in, n + 2);
    for (size_t i = 0; i < n; i++)
        in.data[off + i] = (char)('a' + i % 26);
    in.len += n;
    buf_append(&in, "\r\n", 2);
    parser_t p;
    parser_init(&p, 4096, 1 << 20);
    recorder_t r = {0};
    buf_init(&r.out);
    for (size_t pos = 0; pos < in.len; pos += 1000) {
        size_t take = in.len - pos < 1000 ? in.len - pos : 1000;
        CHECK_EQ_INT(parser_feed(&p, in.data + pos, take, record, &r), STZ_OK);
    }
    CHECK_EQ_INT(r.ops, 1);
    const char *d = strstr(r.out.data, "data=[");
    CHECK(d != NULL);
    CHECK(memcmp(d + 6, in.data + off, n) == 0);
    buf_free(&r.out);
    buf_free(&in);
    parser_free(&p);
}

static void test_garbage_never_crashes(void)
{
    /* Random bytes, with protocol fragments mixed in, end in OK or an error, never a crash. */
    uint32_t seed = 12345;
    const char *frags[] = {"PUB a 3\r\n", "abc\r\n", "SUB x 1\r\n", "\r\n", "HPUB b 2 4\r\n",
                           "PING\r\n",    " ",       "9999\r\n",    "\n",   "CONNECT {}\r\n"};
    for (int round = 0; round < 2000; round++) {
        buf_t in;
        buf_init(&in);
        int parts = 1 + round % 12;
        for (int k = 0; k < parts; k++) {
            seed = seed * 1103515245u + 12345u;
            if (seed % 3 == 0) {
                char c = (char)(seed >> 16);
                buf_append(&in, &c, 1);
            } else {
                buf_append_str(&in, frags[(seed >> 8) % 10]);
            }
        }
        char *rec;
        size_t cut = in.len / 2;
        int rc = run_cuts(in.data ? in.data : "", in.len, &cut, in.len ? 1 : 0, 4096, 1024, &rec);
        CHECK(rc <= 0);
        free(rec);
        buf_free(&in);
    }
}

int main(void)
{
    TEST_RUN(test_connect);
    TEST_RUN(test_pub);
    TEST_RUN(test_hpub);
    TEST_RUN(test_sub_unsub_ping);
    TEST_RUN(test_pipeline);
    TEST_RUN(test_errors);
    TEST_RUN(test_control_line_limit);
    TEST_RUN(test_handler_stop);
    TEST_RUN(test_large_payload_split);
    TEST_RUN(test_garbage_never_crashes);
    return test_summary();
}

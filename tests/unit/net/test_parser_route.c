/* Parser tests for the route protocol (parser_set_route): nats-server 2.9's INFO, CONNECT, RS+,
 * RS-, RMSG and HMSG (with and without queue names), +OK/-ERR, every input fed split at every
 * byte, and the errors that close a route (unknown verb, bad sizes, max_payload). */
#include <string.h>

#include "buf.h"
#include "parser.h"
#include "test.h"

static void put(buf_t *b, const char *name, slice_t s)
{
    if (!s.len) return;
    buf_printf(b, " %s=[", name);
    buf_append(b, s.p, s.len);
    buf_append_str(b, "]");
}

static int record(void *arg, const parser_op_t *op)
{
    buf_t *b = arg;
    static const char *const names[] = {"CONNECT", "PUB", "HPUB", "SUB",  "UNSUB", "PING", "PONG",
                                        "INFO",    "RS+", "RS-",  "RMSG", "HMSG",  "+OK",  "-ERR"};
    buf_append_str(b, names[op->type]);
    put(b, "arg", op->arg);
    put(b, "acc", op->account);
    put(b, "subj", op->subject);
    put(b, "reply", op->reply);
    put(b, "queue", op->queue);
    put(b, "queues", op->queues);
    put(b, "hdr", op->hdr);
    put(b, "data", op->payload);
    if (op->weight) buf_printf(b, " w=%llu", (unsigned long long)op->weight);
    buf_append_str(b, "\n");
    return 0;
}

/* Parses in as a route, whole and split at every byte (all must agree); returns the result and
 * leaves the record of the whole run in out. */
static int parse_route(const char *in, size_t maxp, buf_t *out)
{
    size_t len = strlen(in);
    int whole_rc = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        parser_t p;
        parser_init(&p, 4096, maxp);
        parser_set_route(&p);
        buf_t rec;
        buf_init(&rec);
        int rc = cut == 0 ? parser_feed(&p, in, len, record, &rec)
                          : parser_feed(&p, in, cut, record, &rec);
        if (cut > 0 && rc == 0) rc = parser_feed(&p, in + cut, len - cut, record, &rec);
        if (cut == 0) {
            whole_rc = rc;
            buf_reset(out);
            buf_append(out, rec.data, rec.len);
        } else if (rc != whole_rc || rec.len != out->len ||
                   (rec.len && memcmp(rec.data, out->data, rec.len) != 0)) {
            fprintf(stderr, "split at %zu differs: rc %d vs %d\n", cut, rc, whole_rc);
            CHECK(0);
        }
        buf_free(&rec);
        parser_free(&p);
    }
    buf_append(out, "", 1); /* NUL for comparisons */
    return whole_rc;
}

static void expect(const char *in, const char *want)
{
    buf_t out;
    buf_init(&out);
    CHECK_EQ_INT(parse_route(in, 1024, &out), 0);
    CHECK_EQ_STR(out.data, want);
    buf_free(&out);
}

static void expect_err(const char *in, size_t maxp, int want)
{
    buf_t out;
    buf_init(&out);
    CHECK_EQ_INT(parse_route(in, maxp, &out), want);
    buf_free(&out);
}

static void test_handshake(void)
{
    expect("INFO {\"server_id\":\"N1\", \"port\":6222}\r\n",
           "INFO arg=[{\"server_id\":\"N1\", \"port\":6222}]\n");
    expect("CONNECT {\"echo\":true,\"name\":\"N1\"}\r\nPING\r\nPONG\r\n+OK\r\n",
           "CONNECT arg=[{\"echo\":true,\"name\":\"N1\"}]\nPING\nPONG\n+OK\n");
    expect("-ERR 'Unknown Protocol Operation'\r\n", "-ERR arg=['Unknown Protocol Operation']\n");
}

static void test_interest(void)
{
    expect("RS+ $G foo.bar\r\nRS+ $G foo q1 3\r\nRS- $G foo.bar\r\nRS- $G foo q1\r\n",
           "RS+ acc=[$G] subj=[foo.bar]\n"
           "RS+ acc=[$G] subj=[foo] queue=[q1] w=3\n"
           "RS- acc=[$G] subj=[foo.bar]\n"
           "RS- acc=[$G] subj=[foo] queue=[q1]\n");
}

static void test_rmsg(void)
{
    expect("RMSG $G foo 5\r\nhello\r\n", "RMSG acc=[$G] subj=[foo] data=[hello]\n");
    expect("RMSG $G foo r.1 2\r\nhi\r\n", "RMSG acc=[$G] subj=[foo] reply=[r.1] data=[hi]\n");
    expect("RMSG $G foo | q1 2\r\nhi\r\n", "RMSG acc=[$G] subj=[foo] queues=[q1] data=[hi]\n");
    expect("RMSG $G foo + r.1 q1 q2 2\r\nhi\r\n",
           "RMSG acc=[$G] subj=[foo] reply=[r.1] queues=[q1 q2] data=[hi]\n");
    expect("RMSG $G foo 0\r\n\r\n", "RMSG acc=[$G] subj=[foo]\n");
    expect("HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nyo\r\n",
           "HMSG acc=[$G] subj=[foo] hdr=[NATS/1.0\r\n\r\n] data=[yo]\n");
    expect("HMSG $G foo + r q1 12 14\r\nNATS/1.0\r\n\r\nyo\r\n",
           "HMSG acc=[$G] subj=[foo] reply=[r] queues=[q1] hdr=[NATS/1.0\r\n\r\n] data=[yo]\n");
    expect("HMSG $G foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n",
           "HMSG acc=[$G] subj=[foo] reply=[r] hdr=[NATS/1.0\r\n\r\n]\n");
}

static void test_errors(void)
{
    expect_err("BOGUS foo\r\n", 1024, STZ_EUNKNOWNOP);
    expect_err("PUB foo 1\r\na\r\n", 1024, STZ_EUNKNOWNOP); /* client verbs are not route verbs */
    expect_err("SUB foo 1\r\n", 1024, STZ_EUNKNOWNOP);
    expect_err("RMSG $G foo 2000\r\n", 1024, STZ_EMAXPAYLOAD);
    expect_err("HMSG $G foo 12 2000\r\n", 1024, STZ_EMAXPAYLOAD);
    expect_err("RMSG $G foo -1\r\n", 1024, STZ_EBADARGS);
    expect_err("RMSG $G foo x1\r\n", 1024, STZ_EBADARGS);
    expect_err("RMSG $G 5\r\n", 1024, STZ_EBADARGS);
    expect_err("RMSG $G foo * q1 2\r\nhi\r\n", 1024, STZ_EBADARGS); /* bad indicator */
    expect_err("RMSG $G foo + r 2\r\nhi\r\n", 1024, STZ_EBADARGS);  /* '+' and no queue */
    expect_err("HMSG $G foo 14 12\r\n", 1024, STZ_EBADARGS);        /* header > total */
    expect_err("RMSG $G foo 2\r\nhiXX", 1024, STZ_EBADPAYLOAD);
    expect_err("RS+ $G\r\n", 1024, STZ_EBADARGS);
    expect_err("RS+ $G foo q1\r\n", 1024, STZ_EBADARGS);
    expect_err("RS+ $G foo q1 many\r\n", 1024, STZ_EBADARGS);
    expect_err("RS- $G foo q1 3\r\n", 1024, STZ_EBADARGS);
    expect_err("PING x\r\n", 1024, STZ_EBADARGS);
}

/* A client parser still refuses the route verbs. */
static void test_client_refuses_route_verbs(void)
{
    const char *in[] = {"INFO {}\r\n", "RS+ $G foo\r\n", "RMSG $G foo 1\r\na\r\n", "+OK\r\n"};
    for (size_t i = 0; i < 4; i++) {
        parser_t p;
        parser_init(&p, 4096, 1024);
        buf_t rec;
        buf_init(&rec);
        CHECK_EQ_INT(parser_feed(&p, in[i], strlen(in[i]), record, &rec), STZ_EUNKNOWNOP);
        buf_free(&rec);
        parser_free(&p);
    }
}

int main(void)
{
    TEST_RUN(test_handshake);
    TEST_RUN(test_interest);
    TEST_RUN(test_rmsg);
    TEST_RUN(test_errors);
    TEST_RUN(test_client_refuses_route_verbs);
    return test_summary();
}

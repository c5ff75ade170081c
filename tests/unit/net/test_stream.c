/* stream: the libuv connection layer under both ports, on a real loopback socket pair. The
 * accepted side is a stream on a uv loop driven by this thread; the other side is a plain
 * non-blocking socket. Every wait runs the loop with a deadline, never a fixed sleep. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "clock.h"
#include "stream.h"
#include "test.h"

#define WAIT_MS 5000
#define BIG (4 * 1024 * 1024)

typedef struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    stream_t *st; /* the accepted stream, NULL until then */
    int accept_rc;
    char rbuf[65536];
    /* what the callbacks saw */
    buf_t in;
    int eof, reads, written, written_status, timers, closed;
} fx_t;

static fx_t fx;

static void on_read(stream_t *st, ssize_t nread, const char *p)
{
    fx_t *f = st->owner;
    f->reads++;
    if (nread < 0)
        f->eof = (int)nread;
    else
        buf_append(&f->in, p, (size_t)nread);
}

static void on_written(stream_t *st, int status)
{
    fx_t *f = st->owner;
    f->written++;
    f->written_status = status;
}

static void on_timer(stream_t *st)
{
    ((fx_t *)st->owner)->timers++;
}

static void on_closed(stream_t *st)
{
    fx_t *f = st->owner;
    f->closed++;
    free(st);
}

static const stream_ops_t ops = {on_read, on_written, on_timer, on_closed, NULL};

static void on_connection(uv_stream_t *l, int status)
{
    CHECK(status == 0);
    stream_t *st = calloc(1, sizeof *st);
    fx.accept_rc = stream_accept(st, l, &ops, &fx, fx.rbuf, sizeof fx.rbuf, 16 * 1024);
    if (fx.accept_rc == 0) fx.st = st;
}

/* Runs the loop until *flag is true (checked between iterations) or the deadline. */
static bool run_until(const int *flag, bool (*cond)(void))
{
    uint64_t end = clock_mono_ms() + WAIT_MS;
    while (clock_mono_ms() < end) {
        if ((flag && *flag) || (cond && cond())) return true;
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        if ((flag && *flag) || (cond && cond())) return true;
        usleep(1000); /* a poll interval, not a wait for an outcome */
    }
    return false;
}

static bool accepted(void)
{
    return fx.st != NULL;
}

/* A connected client socket (non-blocking) with the accepted stream in fx.st. */
static int setup(int client_rcvbuf)
{
    memset(&fx, 0, sizeof fx);
    buf_init(&fx.in);
    CHECK(uv_loop_init(&fx.loop) == 0);
    CHECK(uv_tcp_init(&fx.loop, &fx.listener) == 0);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    CHECK(uv_tcp_bind(&fx.listener, (const struct sockaddr *)&addr, 0) == 0);
    CHECK(uv_listen((uv_stream_t *)&fx.listener, 16, on_connection) == 0);
    int len = sizeof addr;
    uv_tcp_getsockname(&fx.listener, (struct sockaddr *)&addr, &len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    if (client_rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    CHECK(run_until(NULL, accepted));
    CHECK_EQ_INT(fx.accept_rc, 0);
    return fd;
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void teardown(int fd)
{
    if (fd >= 0) close(fd);
    if (fx.st) stream_close(fx.st);
    CHECK(run_until(&fx.closed, NULL));
    uv_close((uv_handle_t *)&fx.listener, on_listener_closed);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&fx.loop) == 0);
    buf_free(&fx.in);
}

static void fill(buf_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = (char)('a' + i % 26);
        buf_append(b, &ch, 1);
    }
}

/* Reads what the socket has now into *got (bytes), checking the pattern. */
static bool drain_client(int fd, size_t *got)
{
    char tmp[65536];
    ssize_t n;
    while ((n = recv(fd, tmp, sizeof tmp, 0)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            CHECK(tmp[i] == (char)('a' + (*got + (size_t)i) % 26));
        *got += (size_t)n;
    }
    return n == 0; /* EOF */
}

static void test_small_write_needs_no_request(void)
{
    int fd = setup(0);
    buf_append(&fx.st->out, "hello", 5);
    CHECK_EQ_INT(stream_unsent(fx.st), 5);
    CHECK_EQ_INT(stream_flush(fx.st), 1); /* taken at once: no uv_write */
    CHECK(!fx.st->writing);
    CHECK_EQ_INT(stream_unsent(fx.st), 0);
    CHECK_EQ_INT(stream_flush(fx.st), 0); /* nothing to write */
    char got[8];
    uint64_t end = clock_mono_ms() + WAIT_MS;
    ssize_t n;
    while ((n = recv(fd, got, sizeof got, 0)) < 0 && clock_mono_ms() < end)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    CHECK_MEM(got, (size_t)n, "hello");
    teardown(fd);
}

/* A reader slower than the writer: the socket takes part, the rest goes to uv_write while new
 * output collects, unsent bytes are accounted for, and everything arrives once, in order. */
static void test_partial_write_and_drain(void)
{
    int fd = setup(4096);
    fill(&fx.st->out, BIG);
    CHECK_EQ_INT(stream_flush(fx.st), 0);
    CHECK(fx.st->writing);
    size_t unsent = stream_unsent(fx.st);
    CHECK(unsent > 0 && unsent <= BIG);
    CHECK_EQ_INT(fx.st->out.len, 0); /* handed over; out is fresh */
    /* More output collects while the write is in flight, and is not written yet. */
    buf_t more;
    buf_init(&more);
    fill(&more, BIG + 7);
    buf_append(&fx.st->out, more.data + BIG, 7);
    buf_free(&more);
    CHECK_EQ_INT(stream_unsent(fx.st), unsent + 7);
    CHECK_EQ_INT(stream_flush(fx.st), 0); /* a write is in flight: nothing happens */
    size_t got = 0;
    uint64_t end = clock_mono_ms() + WAIT_MS;
    while (!fx.written && clock_mono_ms() < end) {
        drain_client(fd, &got);
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    }
    CHECK_EQ_INT(fx.written, 1);
    CHECK_EQ_INT(fx.written_status, 0);
    CHECK(!fx.st->writing);
    CHECK_EQ_INT(stream_unsent(fx.st), 7);
    CHECK(stream_flush(fx.st) >= 0);
    end = clock_mono_ms() + WAIT_MS;
    while (got < BIG + 7 && clock_mono_ms() < end) {
        drain_client(fd, &got);
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    }
    CHECK_EQ_INT(got, BIG + 7);
    teardown(fd);
}

/* The write deadline counts from the start of a write that makes no progress. */
static void test_write_deadline(void)
{
    int fd = setup(4096);
    CHECK(!stream_write_stalled(fx.st, clock_mono_ms() + 60000, 10000)); /* not writing */
    clock_fake_start(0);
    fill(&fx.st->out, BIG);
    CHECK_EQ_INT(stream_flush(fx.st), 0);
    CHECK(fx.st->writing);
    CHECK(!stream_write_stalled(fx.st, clock_mono_ms(), 10000));
    clock_fake_advance(10000 * CLOCK_NS_PER_MS);
    CHECK(!stream_write_stalled(fx.st, clock_mono_ms(), 10000));
    clock_fake_advance(1 * CLOCK_NS_PER_MS);
    CHECK(stream_write_stalled(fx.st, clock_mono_ms(), 10000));
    clock_fake_stop();
    teardown(fd);
}

/* Closing with a write in flight cancels it without a callback to the owner; the memory goes
 * in on_closed, once (ASan checks the rest). */
static void test_close_while_writing(void)
{
    int fd = setup(4096);
    fill(&fx.st->out, BIG);
    CHECK_EQ_INT(stream_flush(fx.st), 0);
    CHECK(fx.st->writing);
    buf_append(&fx.st->out, "x", 1);
    stream_close(fx.st);
    stream_close(fx.st); /* idempotent */
    fx.st = NULL;
    CHECK(run_until(&fx.closed, NULL));
    CHECK_EQ_INT(fx.closed, 1);
    CHECK_EQ_INT(fx.written, 0);
    teardown(fd);
}

static bool got_input(void)
{
    return fx.in.len > 0;
}

/* Paused, the stream reads nothing; resumed, it gets what waited in the socket. */
static void test_pause_resume(void)
{
    int fd = setup(0);
    CHECK(stream_read_start(fx.st) == 0);
    CHECK(send(fd, "one", 3, 0) == 3);
    CHECK(run_until(NULL, got_input));
    CHECK_MEM(fx.in.data, fx.in.len, "one");
    stream_read_stop(fx.st);
    int reads = fx.reads;
    CHECK(send(fd, "two", 3, 0) == 3);
    for (int i = 0; i < 50; i++) { /* the loop runs; nothing may be read */
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK_EQ_INT(fx.reads, reads);
    CHECK_EQ_INT(fx.in.len, 3);
    CHECK(stream_read_start(fx.st) == 0);
    buf_reset(&fx.in);
    CHECK(run_until(NULL, got_input));
    CHECK_MEM(fx.in.data, fx.in.len, "two");
    /* The peer's EOF comes as a negative read. */
    shutdown(fd, SHUT_WR);
    CHECK(run_until(&fx.eof, NULL));
    CHECK_EQ_INT(fx.eof, UV_EOF);
    teardown(fd);
}

/* stream_read_now hands over what already arrived, within the call. */
static void test_read_now(void)
{
    int fd = setup(0);
    stream_read_now(fx.st); /* nothing yet: no callback */
    CHECK_EQ_INT(fx.reads, 0);
    CHECK(send(fd, "early", 5, 0) == 5);
    uint64_t end = clock_mono_ms() + WAIT_MS;
    while (fx.reads == 0 && clock_mono_ms() < end)
        stream_read_now(fx.st);
    CHECK_MEM(fx.in.data, fx.in.len, "early");
    teardown(fd);
}

static void test_timer_peer_shutdown(void)
{
    int fd = setup(0);
    stream_timer_start(fx.st, 1, 1);
    CHECK(run_until(&fx.timers, NULL));
    stream_timer_stop(fx.st);
    char ip[64];
    int port = 0;
    CHECK(stream_peer(fx.st, ip, sizeof ip, &port) == 0);
    CHECK_EQ_STR(ip, "127.0.0.1");
    CHECK(port > 0);
    buf_append(&fx.st->out, "bye", 3);
    CHECK_EQ_INT(stream_flush(fx.st), 1);
    stream_shutdown(fx.st); /* the client reads "bye", then EOF */
    size_t got = 0;
    char tmp[16];
    uint64_t end = clock_mono_ms() + WAIT_MS;
    bool eof = false;
    while (!eof && clock_mono_ms() < end) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, tmp + got, sizeof tmp - got, 0);
        if (n > 0) got += (size_t)n;
        eof = n == 0;
    }
    CHECK(eof);
    CHECK_MEM(tmp, got, "bye");
    CHECK_EQ_INT(fx.written, 0); /* a shutdown that worked calls nobody */
    teardown(fd);
}

int main(void)
{
    TEST_RUN(test_small_write_needs_no_request);
    TEST_RUN(test_partial_write_and_drain);
    TEST_RUN(test_write_deadline);
    TEST_RUN(test_close_while_writing);
    TEST_RUN(test_pause_resume);
    TEST_RUN(test_read_now);
    TEST_RUN(test_timer_peer_shutdown);
    return test_summary();
}

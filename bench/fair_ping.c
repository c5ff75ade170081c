/* bench/fair_ping.c: another client's PING round trips while one subscriber drains a backlog,
 * for bench/fair.sh.
 *
 * usage: fair_ping PORT CHANNEL MSGS MAX_INFLIGHT
 *
 * Expects CHANNEL on the NATS Streaming server at 127.0.0.1:PORT to hold MSGS messages with
 * sequences 1..MSGS (a fresh store after `stanza bench stan --phase pub`). A raw TCP client
 * connects first (reads INFO, sends `CONNECT {}`, one PING/PONG to settle). Then one libnats
 * STAN subscriber ("fair-drain", DeliverAllAvailable, MaxInflight MAX_INFLIGHT, auto-ack) drains
 * the channel while the raw client sends PING and reads up to its PONG, back to back, timing each
 * round trip with CLOCK_MONOTONIC, until every sequence 1..MSGS has arrived (or the connection is
 * lost, or nothing new arrives for IDLE_S seconds). Prints one line on stdout:
 *   RESULT fair msgs=N delivered=D complete=0|1 drain_secs=S drain_msgs_per_sec=R pings=P
 *          ping_p50_ms=X ping_p99_ms=X ping_max_ms=X pings_over_20ms=K redelivered=R
 *          slow_consumer=E
 * delivered counts distinct sequences; pings_over_20ms, the round trips above 20 ms (one stall
 * is one sample however long it lasts, so a p99 of back-to-back PINGs can hide it: see max);
 * redelivered, messages that came again; slow_consumer, libnats' slow-consumer reports (it
 * dropped messages on the client side). Exits 0 once that line is printed (complete=0 too: the
 * PINGs up to then are still a measurement), 1 if nothing could be measured, 2 on bad arguments.
 *
 * Built by bench/fair.sh: cc -O2 -DNATS_HAS_STREAMING fair_ping.c -lnats -lpthread. */
#include <nats/nats.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Give up on the drain when no new sequence has arrived for this long (longer than the default
 * AckWait of 30 s, so a message dropped on the client side gets its redelivery first). */
#define IDLE_S 60.0
/* A PONG slower than this means the server is stuck, not slow: the measurement stops. */
#define PONG_TIMEOUT_S 30
/* libnats bounds each subscription's pending bytes at 1 KiB per allowed pending message: more
 * than this would overflow its int. */
#define MAX_PENDING_MSGS 2000000
/* The bound on another client's round trip: the PINGs slower than this are counted. */
#define SLOW_PING_MS 20.0

static int64_t nmsgs;
static uint8_t *seen; /* bit per sequence 1..nmsgs; written by the one delivery thread only */
static _Atomic int64_t delivered, redelivered, slow_consumer;
static _Atomic int stop_pinging;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double last_at; /* when the newest distinct sequence arrived */
    bool lost;
    char lost_text[256];
} drain = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_msg(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                   void *closure)
{
    (void)sc, (void)sub, (void)channel, (void)closure;
    uint64_t seq = stanMsg_GetSequence(msg);
    stanMsg_Destroy(msg); /* libnats acks it after we return (auto-ack) */
    if (seq < 1 || seq > (uint64_t)nmsgs) return;
    uint8_t bit = (uint8_t)(1u << ((seq - 1) & 7));
    if (seen[(seq - 1) >> 3] & bit) {
        atomic_fetch_add(&redelivered, 1);
        return;
    }
    seen[(seq - 1) >> 3] |= bit;
    int64_t n = atomic_fetch_add(&delivered, 1) + 1;
    double t = now_s();
    pthread_mutex_lock(&drain.mu);
    drain.last_at = t;
    if (n == nmsgs) pthread_cond_signal(&drain.cv);
    pthread_mutex_unlock(&drain.mu);
}

static void on_lost(stanConnection *sc, const char *text, void *closure)
{
    (void)sc, (void)closure;
    pthread_mutex_lock(&drain.mu);
    if (!drain.lost) snprintf(drain.lost_text, sizeof drain.lost_text, "%s", text ? text : "");
    drain.lost = true;
    pthread_cond_signal(&drain.cv);
    pthread_mutex_unlock(&drain.mu);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    if (err == NATS_SLOW_CONSUMER) atomic_fetch_add(&slow_consumer, 1);
}

/* ---- the raw client ---- */

static struct raw {
    int fd;
    char buf[4096];
    size_t len;
    double *rtt_ms; /* samples, grown as needed */
    size_t n, cap;
    const char *error; /* why pinging stopped early, or NULL */
} raw = {.fd = -1};

static bool raw_send(const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t w = send(raw.fd, s, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s += w;
        len -= (size_t)w;
    }
    return true;
}

/* The next protocol line (without CRLF) into line; false on EOF, error or timeout. */
static bool raw_line(char *line, size_t size)
{
    for (;;) {
        char *crlf = memchr(raw.buf, '\n', raw.len);
        if (crlf) {
            size_t n = (size_t)(crlf - raw.buf) + 1, keep = n - 1;
            if (keep > 0 && raw.buf[keep - 1] == '\r') keep--;
            if (keep >= size) keep = size - 1;
            memcpy(line, raw.buf, keep);
            line[keep] = '\0';
            memmove(raw.buf, raw.buf + n, raw.len - n);
            raw.len -= n;
            return true;
        }
        if (raw.len == sizeof raw.buf) raw.len = 0; /* an over-long line (INFO): skip it */
        ssize_t r = recv(raw.fd, raw.buf + raw.len, sizeof raw.buf - raw.len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        raw.len += (size_t)r;
    }
}

/* Reads up to the PONG that answers our PING, answering the server's own PINGs on the way. */
static bool raw_await_pong(void)
{
    char line[256];
    while (raw_line(line, sizeof line)) {
        if (strcmp(line, "PONG") == 0) return true;
        if (strcmp(line, "PING") == 0 && !raw_send("PONG\r\n")) return false;
        if (strncmp(line, "-ERR", 4) == 0) {
            fprintf(stderr, "fair_ping: raw client: %s\n", line);
            return false;
        }
    }
    return false;
}

static bool raw_connect(int port)
{
    raw.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (raw.fd < 0) return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    struct timeval tv = {.tv_sec = PONG_TIMEOUT_S};
    setsockopt(raw.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(raw.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char line[256];
    return connect(raw.fd, (struct sockaddr *)&a, sizeof a) == 0 && raw_line(line, sizeof line) &&
           strncmp(line, "INFO ", 5) == 0 && raw_send("CONNECT {}\r\nPING\r\n") && raw_await_pong();
}

static void *pinger(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_pinging)) {
        double t0 = now_s();
        if (!raw_send("PING\r\n") || !raw_await_pong()) {
            raw.error = "no PONG (connection closed, or none within the timeout)";
            break;
        }
        double ms = (now_s() - t0) * 1e3;
        if (raw.n == raw.cap) {
            size_t cap = raw.cap ? raw.cap * 2 : 65536;
            double *p = realloc(raw.rtt_ms, cap * sizeof *p);
            if (!p) {
                raw.error = "out of memory";
                break;
            }
            raw.rtt_ms = p;
            raw.cap = cap;
        }
        raw.rtt_ms[raw.n++] = ms;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of n > 0 sorted samples. */
static double percentile(const double *v, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

/* ---- main ---- */

static void fail(natsStatus s, const char *what)
{
    fprintf(stderr, "fair_ping: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

/* The libnats side: the STAN connection and the draining subscription's options. */
struct stan_side {
    natsOptions *nopts;
    stanConnOptions *copts;
    stanSubOptions *sopts;
    stanConnection *sc;
    stanSubscription *sub;
};

/* Connects "fair-drain" and prepares its subscription options; exits on failure. */
static void stan_open(struct stan_side *st, int port, long long inflight)
{
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    /* Room for the whole window in libnats, so that it drops nothing on the client side. */
    int max_pending = inflight < 65536 ? 65536 : (int)inflight;
    if (max_pending > MAX_PENDING_MSGS) max_pending = MAX_PENDING_MSGS;
    natsStatus s = natsOptions_Create(&st->nopts);
    if (s == NATS_OK) s = natsOptions_SetURL(st->nopts, url);
    if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(st->nopts, max_pending);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(st->nopts, on_async_error, NULL);
    if (s == NATS_OK) s = stanConnOptions_Create(&st->copts);
    if (s == NATS_OK) s = stanConnOptions_SetNATSOptions(st->copts, st->nopts);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionWait(st->copts, 30000);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionLostHandler(st->copts, on_lost, NULL);
    if (s == NATS_OK) s = stanConnection_Connect(&st->sc, "test-cluster", "fair-drain", st->copts);
    if (s != NATS_OK) fail(s, "connect");
    s = stanSubOptions_Create(&st->sopts);
    if (s == NATS_OK) s = stanSubOptions_DeliverAllAvailable(st->sopts);
    if (s == NATS_OK) s = stanSubOptions_SetMaxInflight(st->sopts, (int)inflight);
    if (s != NATS_OK) fail(s, "subscription options");
}

static void stan_close(struct stan_side *st)
{
    stanSubscription_Unsubscribe(st->sub);
    stanSubscription_Destroy(st->sub);
    stanConnection_Close(st->sc);
    stanConnection_Destroy(st->sc);
    stanSubOptions_Destroy(st->sopts);
    stanConnOptions_Destroy(st->copts);
    natsOptions_Destroy(st->nopts);
}

/* Waits until every sequence has arrived, the connection is lost or the drain stalls for IDLE_S,
 * printing progress every second. Returns why it stopped early (NULL when complete); *secs is
 * the drain's length, from t0 to the newest distinct sequence. */
static const char *wait_drain(double t0, double *secs)
{
    const char *why = NULL;
    double next_progress = t0 + 1;
    pthread_mutex_lock(&drain.mu);
    while (atomic_load(&delivered) < nmsgs) {
        if (drain.lost) {
            why = drain.lost_text;
            break;
        }
        double now = now_s();
        if (now - drain.last_at >= IDLE_S) {
            why = "nothing new arrived for 60 s";
            break;
        }
        if (now >= next_progress) {
            fprintf(stderr, "fair_ping: %5.1fs  delivered %lld/%lld\n", now - t0,
                    (long long)atomic_load(&delivered), (long long)nmsgs);
            next_progress = now + 1;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 200 * 1000 * 1000;
        if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&drain.cv, &drain.mu, &dl);
    }
    *secs = drain.last_at - t0;
    pthread_mutex_unlock(&drain.mu);
    return why;
}

/* Prints the RESULT line; returns false (and prints nothing on stdout) if no PING round trip
 * was measured. */
static bool print_result(const char *why, double secs)
{
    int64_t got = atomic_load(&delivered);
    if (why)
        fprintf(stderr, "fair_ping: drain incomplete (%lld of %lld): %s\n", (long long)got,
                (long long)nmsgs, why);
    if (raw.error) fprintf(stderr, "fair_ping: pinging stopped early: %s\n", raw.error);
    if (raw.n == 0) {
        fprintf(stderr, "fair_ping: no PING round trip measured\n");
        return false;
    }
    qsort(raw.rtt_ms, raw.n, sizeof *raw.rtt_ms, cmp_double);
    size_t over = 0;
    while (over < raw.n && raw.rtt_ms[raw.n - 1 - over] > SLOW_PING_MS)
        over++;
    printf("RESULT fair msgs=%lld delivered=%lld complete=%d drain_secs=%.3f "
           "drain_msgs_per_sec=%.0f pings=%zu ping_p50_ms=%.3f ping_p99_ms=%.3f ping_max_ms=%.3f "
           "pings_over_20ms=%zu redelivered=%lld slow_consumer=%lld\n",
           (long long)nmsgs, (long long)got, got == nmsgs && !raw.error, secs,
           secs > 0 ? (double)got / secs : 0.0, raw.n, percentile(raw.rtt_ms, raw.n, 50),
           percentile(raw.rtt_ms, raw.n, 99), raw.rtt_ms[raw.n - 1], over,
           (long long)atomic_load(&redelivered), (long long)atomic_load(&slow_consumer));
    fflush(stdout);
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT CHANNEL MSGS MAX_INFLIGHT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    const char *channel = argv[2];
    nmsgs = atoll(argv[3]);
    long long inflight = atoll(argv[4]);
    if (port < 1 || port > 65535 || nmsgs < 1 || inflight < 1 || inflight > INT32_MAX) {
        fprintf(stderr, "fair_ping: bad arguments\n");
        return 2;
    }
    seen = calloc((size_t)(nmsgs + 7) / 8, 1);
    if (!seen) {
        fprintf(stderr, "fair_ping: out of memory\n");
        return 1;
    }
    if (!raw_connect(port)) {
        fprintf(stderr, "fair_ping: raw client: cannot connect to 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        return 1;
    }

    struct stan_side st = {0};
    stan_open(&st, port, inflight);
    pthread_t th;
    if (pthread_create(&th, NULL, pinger, NULL) != 0) {
        fprintf(stderr, "fair_ping: cannot start the pinger\n");
        return 1;
    }
    double t0 = now_s();
    drain.last_at = t0;
    natsStatus s = stanConnection_Subscribe(&st.sub, st.sc, channel, on_msg, NULL, st.sopts);
    if (s != NATS_OK) fail(s, "subscribe");

    double secs;
    const char *why = wait_drain(t0, &secs);
    atomic_store(&stop_pinging, 1);
    pthread_join(th, NULL);
    if (!print_result(why, secs)) return 1;

    stan_close(&st);
    close(raw.fd);
    free(raw.rtt_ms);
    free(seen);
    nats_CloseAndWait(5000);
    return 0;
}

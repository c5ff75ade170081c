/* fuzz_common: see fuzz_common.h. */
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_host.h"
#include "log.h"
#include "pbwire.h"
#include "protocol.pb-c.h"
#include "stan_ctx.h"
#include "xalloc.h"

#define REPLY_PREFIX "_INBOX.fz."

void fz_init_process(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *v = getenv("STANZA_FUZZ_LOG");
    if (!v || !*v || strcmp(v, "0") == 0) {
        if (log_open("/dev/null") != 0) abort();
    }
}

void fz_engine_config(fz_engine_t *e, const char *dir)
{
    config_t *c = &e->cfg;
    config_init(c);
    free(c->host);
    c->host = xstrdup("127.0.0.1");
    c->port = 0;
    if (dir) {
        c->store = CONFIG_STORE_LMDB;
        free(c->dir);
        c->dir = xstrdup(dir);
    } else {
        c->store = CONFIG_STORE_MEMORY;
    }
    c->store_set = true;
    c->file_sync = false;
    c->max_channels = 8;
    c->limits.max_msgs = 16;
    c->limits.max_bytes = 4096;
    c->limits.max_subs = 8;
    c->hb_interval_ms = 40;
    c->hb_timeout_ms = 20;
    c->hb_fail_count = 2;
}

static struct fz_acked *acked_find(fz_engine_t *e, const char *channel)
{
    for (size_t i = 0; i < e->nacked; i++)
        if (strcmp(e->acked[i].channel, channel) == 0) return &e->acked[i];
    return NULL;
}

static void note_acked(fz_engine_t *e, const char *channel)
{
    struct fz_acked *a = acked_find(e, channel);
    if (!a) {
        e->acked = xrealloc(e->acked, (e->nacked + 1) * sizeof *e->acked);
        a = &e->acked[e->nacked++];
        a->channel = xstrdup(channel);
        a->acked = 0;
        a->last_seq = 0;
    }
    a->acked++;
}

static void acked_free(fz_engine_t *e)
{
    for (size_t i = 0; i < e->nacked; i++)
        free(e->acked[i].channel);
    free(e->acked);
    e->acked = NULL;
    e->nacked = 0;
}

void fz_engine_check(fz_engine_t *e, bool exact)
{
    for (size_t i = 0; i < e->nacked; i++) {
        struct fz_acked *a = &e->acked[i];
        stan_channel_info_t ci;
        if (stan_get_channel_info(e->st, a->channel, &ci) != 0) {
            fprintf(stderr, "fuzz: channel \"%s\" acked %llu publishes and is gone\n", a->channel,
                    (unsigned long long)a->acked);
            abort();
        }
        if (ci.last_seq < a->acked || ci.last_seq < a->last_seq || (exact && ci.msgs < a->acked)) {
            fprintf(stderr,
                    "fuzz: channel \"%s\" acked %llu publishes, had last sequence %llu before; "
                    "now holds %llu messages, last sequence %llu\n",
                    a->channel, (unsigned long long)a->acked, (unsigned long long)a->last_seq,
                    (unsigned long long)ci.msgs, (unsigned long long)ci.last_seq);
            abort();
        }
        a->last_seq = ci.last_seq;
    }
}

/* Replies to our own requests are checked: the engine must answer with a well-formed message of
 * the right type. Everything else on _INBOX.> (deliveries, heartbeats) is only remembered. */
static void on_tap(void *arg, const bus_msg_t *m)
{
    fz_engine_t *e = arg;
    e->replies++;
    size_t pl = strlen(REPLY_PREFIX);
    if (e->check_replies && m->subject_len > pl + 2 && memcmp(m->subject, REPLY_PREFIX, pl) == 0) {
        const uint8_t *d = (const uint8_t *)m->data;
        size_t n = m->data_len;
        int kind = m->subject[pl] - 'a';
        bool ok = true;
        switch (kind) {
        case FZ_CONNECT: {
            Pb__ConnectResponse *r = pb__connect_response__unpack(NULL, n, d);
            ok = r != NULL;
            if (r) pb__connect_response__free_unpacked(r, NULL);
            break;
        }
        case FZ_PUB: {
            Pb__PubAck *r = pb__pub_ack__unpack(NULL, n, d);
            ok = r != NULL;
            if (r && !*r->error && e->pub_channel &&
                strtoull(m->subject + pl + 2, NULL, 10) == e->pub_seq)
                note_acked(e, e->pub_channel);
            if (r) pb__pub_ack__free_unpacked(r, NULL);
            break;
        }
        case FZ_SUB: {
            Pb__SubscriptionResponse *r = pb__subscription_response__unpack(NULL, n, d);
            ok = r != NULL;
            if (r && r->ackinbox && *r->ackinbox && !*r->error) {
                int i = e->nack < FZ_MAX_ACK_INBOXES ? e->nack++ : (int)(e->seq % e->nack);
                free(e->ack_inboxes[i]);
                e->ack_inboxes[i] = xstrdup(r->ackinbox);
            }
            if (r) pb__subscription_response__free_unpacked(r, NULL);
            break;
        }
        case FZ_UNSUB:
        case FZ_SUBCLOSE: {
            Pb__SubscriptionResponse *r = pb__subscription_response__unpack(NULL, n, d);
            ok = r != NULL;
            if (r) pb__subscription_response__free_unpacked(r, NULL);
            break;
        }
        case FZ_CLOSE: {
            Pb__CloseResponse *r = pb__close_response__unpack(NULL, n, d);
            ok = r != NULL;
            if (r) pb__close_response__free_unpacked(r, NULL);
            break;
        }
        case FZ_PING: {
            Pb__PingResponse *r = pb__ping_response__unpack(NULL, n, d);
            ok = r != NULL;
            if (r) pb__ping_response__free_unpacked(r, NULL);
            break;
        }
        default:
            break;
        }
        if (!ok) {
            fprintf(stderr,
                    "fuzz: the engine answered a request of kind %d with %zu bytes that "
                    "do not unpack as its response type\n",
                    kind, n);
            abort();
        }
        return;
    }
    if (e->st && m->reply && e->st->inbox_prefix &&
        strncmp(m->reply, e->st->inbox_prefix, strlen(e->st->inbox_prefix)) == 0) {
        free(e->hb_reply);
        e->hb_reply = xstrndup(m->reply, m->reply_len);
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        abort();
    close(fd);
    return ntohs(a.sin_port);
}

int fz_engine_start(fz_engine_t *e, bool with_http, char *err, size_t errlen)
{
    if (with_http) {
        free(e->cfg.http_host);
        e->cfg.http_host = xstrdup("127.0.0.1");
        /* monitor_start takes port 0 as "off": ask the kernel for a free one first. */
        e->cfg.http_port = free_port();
    }
    if (engine_host_start(&e->loop, &e->cfg, &e->srv, &e->st, with_http ? &e->mon : NULL, err,
                          errlen) != 0)
        return -1;
    e->tap = server_subscribe(e->srv, "_INBOX.>", NULL, on_tap, e);
    if (!e->tap) abort();
    e->running = true;
    return 0;
}

static const char *kind_subject(fz_engine_t *e, fz_kind_t kind, char *buf, size_t len)
{
    stan_t *st = e->st;
    switch (kind) {
    case FZ_CONNECT:
        return st->discover;
    case FZ_PUB:
        snprintf(buf, len, "%s.foo", st->pub_prefix);
        return buf;
    case FZ_SUB:
        return st->sub_subj;
    case FZ_UNSUB:
        return st->unsub_subj;
    case FZ_SUBCLOSE:
        return st->subclose_subj;
    case FZ_CLOSE:
        return st->close_subj;
    case FZ_PING:
        return st->pings;
    default:
        abort();
    }
}

void fz_engine_publish(fz_engine_t *e, const char *subject, const char *reply, const void *data,
                       size_t len)
{
    bus_msg_t m = {.subject = subject,
                   .subject_len = strlen(subject),
                   .reply = reply,
                   .reply_len = reply ? strlen(reply) : 0,
                   .data = len ? data : "",
                   .data_len = len};
    server_publish(e->srv, &m);
    fz_engine_settle(e);
}

void fz_engine_request(fz_engine_t *e, fz_kind_t kind, const void *data, size_t len, bool no_reply)
{
    char subj[256], reply[64];
    const char *s = kind_subject(e, kind, subj, sizeof subj);
    snprintf(reply, sizeof reply, REPLY_PREFIX "%c.%llu", 'a' + kind, (unsigned long long)++e->seq);
    pbw_pubmsg_t pm;
    if (kind == FZ_PUB && !no_reply && pbw_decode_pubmsg(data, len, &pm) == 0) {
        e->pub_channel = xstrndup((const char *)pm.subject.p, pm.subject.len);
        e->pub_seq = e->seq;
    }
    fz_engine_publish(e, s, no_reply ? NULL : reply, data, len);
    free(e->pub_channel);
    e->pub_channel = NULL;
}

void fz_engine_settle(fz_engine_t *e)
{
    /* Each pass: one iteration (the flush hook stages and submits the batch), then wait for the
     * commit (on the thread pool) and the replies it sends. Deliveries go in slices, one per
     * iteration, so a few passes. */
    for (int i = 0; i < 16; i++) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        bool busy = false;
        while (e->st->store && store_in_flight(e->st->store)) {
            busy = true;
            uv_run(&e->loop, UV_RUN_ONCE);
        }
        if (!busy && list_empty(&e->st->staged) && list_empty(&e->st->ready) && i >= 1) break;
    }
}

static void on_wait_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

void fz_engine_wait(fz_engine_t *e, unsigned ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&e->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_wait_timer, ms, 0);
    while (!fired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    fz_engine_settle(e);
}

void fz_engine_stop(fz_engine_t *e, bool free_cfg)
{
    if (!e->running) {
        if (free_cfg) {
            config_free(&e->cfg);
            acked_free(e);
        }
        return;
    }
    if (e->tap) server_unsubscribe(e->srv, e->tap);
    e->tap = NULL;
    engine_host_stop(&e->loop, e->srv, e->st, e->mon);
    e->st = NULL;
    e->srv = NULL;
    e->mon = NULL;
    for (int i = 0; i < e->nack; i++) {
        free(e->ack_inboxes[i]);
        e->ack_inboxes[i] = NULL;
    }
    e->nack = 0;
    free(e->hb_reply);
    e->hb_reply = NULL;
    e->running = false;
    if (free_cfg) {
        config_free(&e->cfg);
        acked_free(e);
    }
}

static char store_dir[96];

static void remove_store_dir(void)
{
    engine_host_rmtree(store_dir);
}

const char *fz_store_dir(const char *name)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(store_dir, sizeof store_dir, "%s/stanza-fuzz-%s.%d", base, name, (int)getpid());
    engine_host_rmtree(store_dir);
    atexit(remove_store_dir);
    return store_dir;
}

static void request_packed(fz_engine_t *e, fz_kind_t kind, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = xmalloc(n ? n : 1);
    protobuf_c_message_pack(msg, b);
    fz_engine_request(e, kind, b, n, false);
    free(b);
}

void fz_engine_populate(fz_engine_t *e)
{
    Pb__ConnectRequest cr = PB__CONNECT_REQUEST__INIT;
    cr.clientid = "fz-client";
    cr.heartbeatinbox = "_INBOX.hb.fz-client";
    cr.protocol = 1;
    cr.connid.data = (uint8_t *)"fzconn";
    cr.connid.len = 6;
    request_packed(e, FZ_CONNECT, &cr.base);
    static const char *chans[] = {"foo", "bar", "foo"};
    for (int i = 0; i < 3; i++) {
        Pb__PubMsg pm = PB__PUB_MSG__INIT;
        char guid[16];
        snprintf(guid, sizeof guid, "g%d", i);
        pm.clientid = "fz-client";
        pm.guid = guid;
        pm.subject = (char *)chans[i];
        pm.data.data = (uint8_t *)"hello";
        pm.data.len = 5;
        pm.connid = cr.connid;
        request_packed(e, FZ_PUB, &pm.base);
    }
    Pb__SubscriptionRequest sr = PB__SUBSCRIPTION_REQUEST__INIT;
    sr.clientid = "fz-client";
    sr.subject = "foo";
    sr.inbox = "_INBOX.sub.1";
    sr.maxinflight = 1;
    sr.ackwaitinsecs = 30;
    sr.durablename = "dur";
    sr.startposition = PB__START_POSITION__First;
    request_packed(e, FZ_SUB, &sr.base);
    sr.inbox = "_INBOX.sub.2";
    sr.durablename = "";
    sr.qgroup = "q";
    sr.subject = "bar";
    request_packed(e, FZ_SUB, &sr.base);
}

static void *loop_main(void *arg)
{
    fz_engine_t *e = arg;
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return NULL;
}

void fz_engine_run_thread(fz_engine_t *e)
{
    pthread_t t;
    if (pthread_create(&t, NULL, loop_main, e) != 0) abort();
    pthread_detach(t);
}

int fz_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc != 0 && errno == EINTR) {
        /* libFuzzer's timer signal: the connect goes on; wait for its outcome. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        while ((rc = poll(&pfd, 1, 5000)) < 0 && errno == EINTR)
            ;
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
            rc = 0;
        } else {
            errno = rc == 1 ? soerr : ETIMEDOUT;
            rc = -1;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "fuzz: cannot connect to the daemon on port %d: %s\n", port,
                strerror(errno));
        abort();
    }
    return fd;
}

void fz_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        /* The daemon may close a connection that sent garbage before it has read everything. */
        if (n <= 0) return;
        p += n;
        len -= (size_t)n;
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

size_t fz_drain(int fd, unsigned timeout_ms)
{
    shutdown(fd, SHUT_WR);
    uint64_t deadline = now_ms() + timeout_ms;
    size_t total = 0;
    char buf[65536];
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            fprintf(stderr, "fuzz: the daemon kept a half-closed connection open for %u ms\n",
                    timeout_ms);
            abort();
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF, or a reset after unread input: closed either way */
        total += (size_t)n;
    }
    close(fd);
    return total;
}

void fz_expect(int fd, const char *needle, unsigned timeout_ms, const char *what)
{
    uint64_t deadline = now_ms() + timeout_ms;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        buf[have] = '\0';
        if (strstr(buf, needle)) return;
        uint64_t now = now_ms();
        if (now >= deadline) {
            fprintf(stderr, "fuzz: %s: no \"%s\" within %u ms (got %zu bytes)\n", what, needle,
                    timeout_ms, have);
            abort();
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc <= 0) continue;
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "fuzz: %s: the daemon closed the connection\n", what);
            abort();
        }
        have += (size_t)n;
        if (have == sizeof buf - 1) {
            /* Keep the tail, where the needle may be starting. */
            memmove(buf, buf + have - 64, 64);
            have = 64;
        }
    }
}

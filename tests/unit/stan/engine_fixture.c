/* engine_fixture: see engine_fixture.h. */
#include "engine_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "engine_host.h"
#include "log.h"
#include "protocol.pb-c.h"
#include "test.h"
#include "xalloc.h"

#define EF_WAIT_MS 10000 /* deadline for anything the engine should do promptly */

/* Deadlines are real time: the engine's clock is fake. */
static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the store directory: removed at the end, also when a CHECK exits early ---- */

static char live_dir[64];

static void remove_live_dir(void)
{
    if (live_dir[0]) engine_host_rmtree(live_dir);
    live_dir[0] = '\0';
}

/* ---- waiting ---- */

static void on_wake(uv_timer_t *t)
{
    (void)t; /* only makes a blocking loop turn return, so deadlines are checked */
}

typedef bool (*cond_fn)(void *arg);

static bool run_until(ef_t *f, cond_fn cond, void *arg)
{
    uint64_t deadline = real_ms() + EF_WAIT_MS;
    uv_timer_start(&f->wake, on_wake, 5, 5);
    bool ok;
    while (!(ok = cond(arg)) && real_ms() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->wake);
    return ok;
}

void ef_settle(ef_t *f)
{
    /* A commit runs on the thread pool as a libuv request; each loop turn's flush hook delivers
     * what is ready and submits what changed. Quiet = three turns in a row that left no commit
     * in flight: nothing was delivered (a delivery writes its unacked row), nothing staged. */
    uint64_t deadline = real_ms() + EF_WAIT_MS;
    uv_timer_start(&f->wake, on_wake, 5, 5);
    for (int quiet = 0; quiet < 3;) {
        CHECK(real_ms() < deadline);
        if (f->loop.active_reqs.count > 0) {
            quiet = 0;
            uv_run(&f->loop, UV_RUN_ONCE);
            continue;
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        quiet = f->loop.active_reqs.count == 0 ? quiet + 1 : 0;
    }
    uv_timer_stop(&f->wake);
}

void ef_run_until(ef_t *f, bool (*cond)(void *arg), void *arg)
{
    CHECK(run_until(f, cond, arg));
}

void ef_advance(ef_t *f, int64_t ns)
{
    clock_fake_advance(ns);
    stan_run_due(f->st);
    ef_settle(f);
}

/* ---- inboxes ---- */

static void on_inbox_msg(void *arg, const bus_msg_t *m)
{
    ef_inbox_t *in = arg;
    if (in->n == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 16;
        in->msgs = xrealloc(in->msgs, in->cap * sizeof *in->msgs);
    }
    ef_msg_t *e = &in->msgs[in->n++];
    memset(e, 0, sizeof *e);
    Pb__MsgProto *p = pb__msg_proto__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    CHECK(p != NULL); /* whatever arrives on a subscription's inbox is a MsgProto */
    e->seq = p->sequence;
    e->payload = xmemdup0(p->data.data, p->data.len);
    e->timestamp = p->timestamp;
    e->redelivered = p->redelivered;
    e->redelivery_count = p->redeliverycount;
    pb__msg_proto__free_unpacked(p, NULL);
}

static void inbox_listen(ef_inbox_t *in)
{
    in->sub = server_subscribe(in->f->srv, in->subject, NULL, on_inbox_msg, in);
    CHECK(in->sub != NULL);
}

static ef_inbox_t *inbox_open(ef_t *f, const char *subject)
{
    ef_inbox_t *in = xcalloc(1, sizeof *in);
    in->f = f;
    in->subject = xstrdup(subject);
    in->next = f->inboxes;
    f->inboxes = in;
    inbox_listen(in);
    return in;
}

void ef_inbox_close(ef_inbox_t *in)
{
    in->closed = true;
    if (!in->sub) return;
    server_unsubscribe(in->f->srv, in->sub);
    in->sub = NULL;
}

static void inbox_free(ef_inbox_t *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->msgs[i].payload);
    free(in->msgs);
    free(in->subject);
    free(in);
}

typedef struct {
    ef_inbox_t *in;
    size_t n;
} count_arg_t;

static bool has_msgs(void *arg)
{
    count_arg_t *c = arg;
    return c->in->n >= c->n;
}

const ef_msg_t *ef_wait_msgs(ef_inbox_t *in, size_t n)
{
    count_arg_t c = {in, n};
    if (!run_until(in->f, has_msgs, &c)) {
        fprintf(stderr, "engine_fixture: %s: %zu messages after %d ms, expected %zu\n", in->subject,
                in->n, EF_WAIT_MS, n);
        CHECK(in->n >= n);
    }
    return &in->msgs[n - 1];
}

size_t ef_count_seq(const ef_sub_t *s, uint64_t seq)
{
    size_t k = 0;
    for (size_t i = 0; i < s->inbox->n; i++)
        k += s->inbox->msgs[i].seq == seq;
    return k;
}

/* ---- heartbeat inboxes ---- */

static void on_hb(void *arg, const bus_msg_t *m)
{
    ef_hb_t *h = arg;
    h->received++;
    if (!h->answer || !m->reply) return;
    bus_msg_t r = {.subject = m->reply, .subject_len = m->reply_len, .data = "", .data_len = 0};
    CHECK(server_publish(h->f->srv, &r) == 0);
}

static void hb_subscribe(ef_hb_t *h)
{
    h->sub = server_subscribe(h->f->srv, h->subject, NULL, on_hb, h);
    CHECK(h->sub != NULL);
}

ef_hb_t *ef_hb_listen(ef_t *f, const char *client_id, bool answer)
{
    ef_hb_t *h = xcalloc(1, sizeof *h);
    char subject[128];
    snprintf(subject, sizeof subject, "_EF.hb.%s", client_id);
    h->f = f;
    h->subject = xstrdup(subject);
    h->answer = answer;
    h->next = f->hbs;
    f->hbs = h;
    hb_subscribe(h);
    return h;
}

/* ---- lifecycle ---- */

void ef_init(ef_t *f)
{
    memset(f, 0, sizeof *f);
    static bool log_set;
    if (!log_set) {
        const char *v = getenv("STANZA_TEST_LOG");
        if (!v || !*v || strcmp(v, "0") == 0) CHECK(log_open("/dev/null") == 0);
        log_set = true;
        atexit(remove_live_dir);
    }
    CHECK(live_dir[0] == '\0'); /* one engine at a time */
    snprintf(f->dir, sizeof f->dir, "/tmp/stanza_unit_engine.XXXXXX");
    CHECK(mkdtemp(f->dir) != NULL);
    snprintf(live_dir, sizeof live_dir, "%s", f->dir);
    /* Not at 0: a monotonic time of 0 must not look like "never" to anything. */
    clock_fake_start(EF_EPOCH_NS);
    clock_fake_advance(EF_SEC);

    config_t *c = &f->cfg;
    config_init(c);
    free(c->host);
    c->host = xstrdup("127.0.0.1");
    c->port = 0;
    c->store = CONFIG_STORE_LMDB;
    c->store_set = true;
    free(c->dir);
    c->dir = xstrdup(f->dir);
    c->file_sync = false;
    /* Heartbeats far away, so none is due unless a test sets them (and ef_hb_listen answers
     * them or not). */
    c->hb_interval_ms = 3600 * 1000;
    c->hb_timeout_ms = 1800 * 1000;
}

config_limits_t *ef_channel_limits(ef_t *f, const char *pattern)
{
    config_t *c = &f->cfg;
    c->channel_limits =
        xrealloc(c->channel_limits, (c->nchannel_limits + 1) * sizeof(*c->channel_limits));
    config_channel_limits_t *e = &c->channel_limits[c->nchannel_limits++];
    memset(e, 0, sizeof *e);
    e->pattern = xstrdup(pattern);
    return &e->limits;
}

void ef_start(ef_t *f)
{
    CHECK(!f->running);
    char err[256];
    if (engine_host_start(&f->loop, &f->cfg, &f->srv, &f->st, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "engine_fixture: stan_start: %s\n", err);
        CHECK(!"the engine starts");
    }
    uv_timer_init(&f->loop, &f->wake);
    f->running = true;
    /* Clients back on the (restarted) server: their inboxes have someone behind them again. */
    for (ef_inbox_t *in = f->inboxes; in; in = in->next)
        if (!in->closed) inbox_listen(in);
    for (ef_hb_t *h = f->hbs; h; h = h->next)
        hb_subscribe(h);
}

void ef_stop(ef_t *f)
{
    if (!f->running) return;
    for (ef_inbox_t *in = f->inboxes; in; in = in->next)
        if (in->sub) {
            server_unsubscribe(f->srv, in->sub);
            in->sub = NULL;
        }
    for (ef_hb_t *h = f->hbs; h; h = h->next)
        if (h->sub) {
            server_unsubscribe(f->srv, h->sub);
            h->sub = NULL;
        }
    uv_close((uv_handle_t *)&f->wake, NULL);
    engine_host_stop(&f->loop, f->srv, f->st, NULL);
    f->st = NULL;
    f->srv = NULL;
    f->running = false;
}

void ef_restart(ef_t *f)
{
    ef_stop(f);
    ef_start(f);
}

void ef_done(ef_t *f)
{
    ef_stop(f);
    while (f->inboxes) {
        ef_inbox_t *in = f->inboxes;
        f->inboxes = in->next;
        inbox_free(in);
    }
    while (f->hbs) {
        ef_hb_t *h = f->hbs;
        f->hbs = h->next;
        free(h->subject);
        free(h);
    }
    for (size_t i = 0; i < f->nsubs; i++) {
        free(f->subs[i]->ack_inbox);
        free(f->subs[i]->client_id);
        free(f->subs[i]->channel);
        free(f->subs[i]);
    }
    free(f->subs);
    free(f->discover);
    free(f->pub_prefix);
    free(f->sub_subj);
    free(f->unsub_subj);
    free(f->close_subj);
    free(f->subclose_subj);
    free(f->reply);
    config_free(&f->cfg);
    remove_live_dir();
    clock_fake_stop();
}

/* ---- requests ---- */

static void on_reply(void *arg, const bus_msg_t *m)
{
    ef_t *f = arg;
    free(f->reply);
    f->reply = xmemdup0(m->data, m->data_len);
    f->reply_len = m->data_len;
}

static bool has_reply(void *arg)
{
    return ((ef_t *)arg)->reply != NULL;
}

/* Packs msg and publishes it on subject (reply may be NULL), as a client's request. */
static void publish_msg(ef_t *f, const char *subject, const char *reply,
                        const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = xmalloc(n ? n : 1);
    protobuf_c_message_pack(msg, b);
    bus_msg_t m = {.subject = subject,
                   .subject_len = strlen(subject),
                   .reply = reply,
                   .reply_len = reply ? strlen(reply) : 0,
                   .data = (const char *)b,
                   .data_len = n};
    CHECK(server_publish(f->srv, &m) == 0);
    free(b);
}

/* A PubMsg as a client sends it; the strings are borrowed. */
static void pub_msg_init(Pb__PubMsg *r, const char *client_id, const char *channel,
                         const char *guid, const char *data)
{
    pb__pub_msg__init(r);
    r->clientid = (char *)client_id;
    r->guid = (char *)guid;
    r->subject = (char *)channel;
    r->data.data = (uint8_t *)data;
    r->data.len = strlen(data);
    r->connid.data = (uint8_t *)client_id;
    r->connid.len = strlen(client_id);
}

/* Publishes msg on subject with a reply inbox of its own and waits for the one reply. */
static void request(ef_t *f, const char *subject, const ProtobufCMessage *msg)
{
    CHECK(f->running && subject);
    char reply[64];
    snprintf(reply, sizeof reply, "_EF.r.%llu", (unsigned long long)++f->nreq);
    free(f->reply);
    f->reply = NULL;
    server_sub_t *rs = server_subscribe(f->srv, reply, NULL, on_reply, f);
    CHECK(rs != NULL);
    publish_msg(f, subject, reply, msg);
    bool ok = run_until(f, has_reply, f);
    server_unsubscribe(f->srv, rs);
    if (!ok) fprintf(stderr, "engine_fixture: no reply on %s within %d ms\n", subject, EF_WAIT_MS);
    CHECK(ok);
}

static const char *set_error(ef_t *f, const char *error)
{
    snprintf(f->error, sizeof f->error, "%s", error ? error : "");
    return f->error;
}

static char *dup_or_keep(char *old, const char *s)
{
    if (old) return old; /* the subjects outlive restarts: the first ones stay valid */
    return xstrdup(s);
}

const char *ef_connect(ef_t *f, const char *client_id)
{
    char hb[128];
    snprintf(hb, sizeof hb, "_EF.hb.%s", client_id);
    char discover[256];
    snprintf(discover, sizeof discover, "_STAN.discover.%s", f->cfg.cluster_id);
    Pb__ConnectRequest r = PB__CONNECT_REQUEST__INIT;
    r.clientid = (char *)client_id;
    r.heartbeatinbox = hb;
    r.protocol = 1;
    r.connid.data = (uint8_t *)client_id;
    r.connid.len = strlen(client_id);
    request(f, discover, &r.base);
    Pb__ConnectResponse *cr =
        pb__connect_response__unpack(NULL, f->reply_len, (const uint8_t *)f->reply);
    CHECK(cr != NULL);
    if (!cr->error[0]) {
        f->discover = dup_or_keep(f->discover, discover);
        f->pub_prefix = dup_or_keep(f->pub_prefix, cr->pubprefix);
        f->sub_subj = dup_or_keep(f->sub_subj, cr->subrequests);
        f->unsub_subj = dup_or_keep(f->unsub_subj, cr->unsubrequests);
        f->close_subj = dup_or_keep(f->close_subj, cr->closerequests);
        f->subclose_subj = dup_or_keep(f->subclose_subj, cr->subcloserequests);
    }
    set_error(f, cr->error);
    pb__connect_response__free_unpacked(cr, NULL);
    return f->error;
}

const char *ef_close(ef_t *f, const char *client_id)
{
    Pb__CloseRequest r = PB__CLOSE_REQUEST__INIT;
    r.clientid = (char *)client_id;
    request(f, f->close_subj, &r.base);
    Pb__CloseResponse *cr =
        pb__close_response__unpack(NULL, f->reply_len, (const uint8_t *)f->reply);
    CHECK(cr != NULL);
    set_error(f, cr->error);
    pb__close_response__free_unpacked(cr, NULL);
    return f->error;
}

const char *ef_publish(ef_t *f, const char *client_id, const char *channel, const char *data)
{
    char guid[32], subject[512];
    snprintf(guid, sizeof guid, "guid-%llu", (unsigned long long)f->nreq + 1);
    CHECK(f->pub_prefix != NULL);
    snprintf(subject, sizeof subject, "%s.%s", f->pub_prefix, channel);
    Pb__PubMsg r;
    pub_msg_init(&r, client_id, channel, guid, data);
    request(f, subject, &r.base);
    Pb__PubAck *a = pb__pub_ack__unpack(NULL, f->reply_len, (const uint8_t *)f->reply);
    CHECK(a != NULL);
    CHECK_EQ_STR(a->guid, guid);
    set_error(f, a->error);
    pb__pub_ack__free_unpacked(a, NULL);
    return f->error;
}

/* The PubAcks of a burst, by the index in their guid ("burst-<i>"). */
struct burst {
    char (*errors)[EF_ERR_LEN];
    size_t n, got;
};

static void on_burst_ack(void *arg, const bus_msg_t *m)
{
    struct burst *b = arg;
    Pb__PubAck *a = pb__pub_ack__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    CHECK(a != NULL);
    unsigned i;
    CHECK(sscanf(a->guid, "burst-%u", &i) == 1 && i < b->n);
    snprintf(b->errors[i], EF_ERR_LEN, "%s", a->error ? a->error : "");
    b->got++;
    pb__pub_ack__free_unpacked(a, NULL);
}

static bool burst_done(void *arg)
{
    const struct burst *b = arg;
    return b->got == b->n;
}

void ef_publish_burst(ef_t *f, const char *client_id, const char *channel, const char *data,
                      size_t n, char (*errors)[EF_ERR_LEN])
{
    char subject[512], reply[64], guid[32];
    CHECK(f->running && f->pub_prefix != NULL);
    snprintf(subject, sizeof subject, "%s.%s", f->pub_prefix, channel);
    snprintf(reply, sizeof reply, "_EF.burst.%llu", (unsigned long long)++f->nreq);
    struct burst b = {errors, n, 0};
    server_sub_t *rs = server_subscribe(f->srv, reply, NULL, on_burst_ack, &b);
    CHECK(rs != NULL);
    /* No loop turn between the publishes: the engine stages them all in one iteration. */
    for (size_t i = 0; i < n; i++) {
        snprintf(guid, sizeof guid, "burst-%zu", i);
        Pb__PubMsg r;
        pub_msg_init(&r, client_id, channel, guid, data);
        publish_msg(f, subject, reply, &r.base);
    }
    bool ok = run_until(f, burst_done, &b);
    server_unsubscribe(f->srv, rs);
    CHECK(ok);
}

static const char *sub_response(ef_t *f, char **ack_inbox)
{
    Pb__SubscriptionResponse *r =
        pb__subscription_response__unpack(NULL, f->reply_len, (const uint8_t *)f->reply);
    CHECK(r != NULL);
    if (ack_inbox) *ack_inbox = r->error[0] ? NULL : xstrdup(r->ackinbox);
    set_error(f, r->error);
    pb__subscription_response__free_unpacked(r, NULL);
    return f->error;
}

ef_sub_t *ef_subscribe(ef_t *f, const char *client_id, const char *channel, const ef_sub_opts_t *o)
{
    static const ef_sub_opts_t defaults = {0};
    if (!o) o = &defaults;
    char inbox[64];
    snprintf(inbox, sizeof inbox, "_EF.in.%llu", (unsigned long long)f->nreq + 1);
    ef_inbox_t *in = inbox_open(f, inbox);
    Pb__SubscriptionRequest r = PB__SUBSCRIPTION_REQUEST__INIT;
    r.clientid = (char *)client_id;
    r.subject = (char *)channel;
    r.qgroup = (char *)(o->qgroup ? o->qgroup : "");
    r.durablename = (char *)(o->durable ? o->durable : "");
    r.inbox = inbox;
    r.maxinflight = o->max_inflight ? o->max_inflight : 1024;
    r.ackwaitinsecs = o->ack_wait_s ? o->ack_wait_s : 30;
    r.startposition = (Pb__StartPosition)o->start;
    r.startsequence = o->start_seq;
    r.starttimedelta = o->start_delta_ns;
    request(f, f->sub_subj, &r.base);
    char *ack = NULL;
    if (*sub_response(f, &ack)) {
        ef_inbox_close(in); /* kept in the list (freed by ef_done), never listened to again */
        return NULL;
    }
    ef_sub_t *s = xcalloc(1, sizeof *s);
    s->inbox = in;
    s->ack_inbox = ack;
    s->client_id = xstrdup(client_id);
    s->channel = xstrdup(channel);
    f->subs = xrealloc(f->subs, (f->nsubs + 1) * sizeof *f->subs);
    f->subs[f->nsubs++] = s;
    return s;
}

const char *ef_unsubscribe(ef_t *f, ef_sub_t *s, bool close_only)
{
    Pb__UnsubscribeRequest r = PB__UNSUBSCRIBE_REQUEST__INIT;
    r.clientid = s->client_id;
    r.subject = s->channel;
    r.inbox = s->ack_inbox;
    request(f, close_only ? f->subclose_subj : f->unsub_subj, &r.base);
    return sub_response(f, NULL);
}

void ef_ack(ef_t *f, const ef_sub_t *s, uint64_t seq)
{
    Pb__Ack a = PB__ACK__INIT;
    a.subject = s->channel;
    a.sequence = seq;
    publish_msg(f, s->ack_inbox, NULL, &a.base);
}

/* ---- snapshots ---- */

typedef struct {
    const char *inbox;
    stan_sub_info_t si;
    bool found;
} find_sub_t;

static int find_sub(void *arg, const stan_sub_info_t *si)
{
    find_sub_t *fs = arg;
    if (strcmp(si->inbox, fs->inbox) != 0) return 0;
    fs->si = *si;
    fs->found = true;
    return 1;
}

stan_sub_info_t ef_sub_info(ef_t *f, const ef_sub_t *s)
{
    find_sub_t fs = {.inbox = s->inbox->subject};
    stan_foreach_sub(f->st, s->channel, NULL, find_sub, &fs);
    if (!fs.found) fprintf(stderr, "engine_fixture: no subscription with inbox %s\n", fs.inbox);
    CHECK(fs.found);
    return fs.si;
}

bool ef_sub_listed(ef_t *f, const char *channel, const char *inbox)
{
    find_sub_t fs = {.inbox = inbox};
    stan_foreach_sub(f->st, channel, NULL, find_sub, &fs);
    return fs.found;
}

stan_channel_info_t ef_channel(ef_t *f, const char *name)
{
    stan_channel_info_t ci;
    if (stan_get_channel_info(f->st, name, &ci) != 0)
        fprintf(stderr, "engine_fixture: no channel \"%s\"\n", name);
    CHECK(stan_get_channel_info(f->st, name, &ci) == 0);
    return ci;
}

bool ef_channel_exists(ef_t *f, const char *name)
{
    stan_channel_info_t ci;
    return stan_get_channel_info(f->st, name, &ci) == 0;
}

bool ef_client_exists(ef_t *f, const char *client_id)
{
    stan_client_info_t ci;
    return stan_get_client_info(f->st, client_id, &ci) == 0;
}

/* ---- admin commands ---- */

void ef_on_answer(void *arg, const stan_admin_result_t *r)
{
    ef_answer_t *a = arg;
    a->calls++;
    a->r = *r;
}

stan_admin_result_t ef_answered(ef_t *f, int rc, ef_answer_t *a)
{
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(a->calls, 0); /* never from inside the call */
    ef_settle(f);
    CHECK_EQ_INT(a->calls, 1);
    return a->r;
}

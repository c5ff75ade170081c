/* harness_stan: see harness_stan.h. */
#include "harness_stan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static bool any_word_in(const char *words, const char *name)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", words);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
        if (*w && strstr(name, w)) return true;
    return false;
}

bool hstan_selected(const char *name)
{
    const char *only = getenv("IT_ONLY"), *skip = getenv("IT_SKIP");
    if (only && *only && !any_word_in(only, name)) return false;
    if (skip && *skip && any_word_in(skip, name)) return false;
    return true;
}

/* ---- Connections ---- */

static void reconnected_cb(natsConnection *nc, void *closure)
{
    hcounter_add(closure, 1);
}

static void lost_cb(stanConnection *sc, const char *err, void *closure)
{
    fprintf(stderr, "   (STAN connection lost: %s)\n", err ? err : "?");
    hcounter_add(closure, 1);
}

static natsStatus connect_full(const struct hserver *s, const char *cluster, const char *client_id,
                               struct hcounter *reconnected, struct hcounter *lost,
                               int max_pub_acks_inflight, stanConnection **sc)
{
    natsOptions *no = NULL;
    stanConnOptions *so = NULL;
    natsStatus st = natsOptions_Create(&no);
    if (st == NATS_OK) st = natsOptions_SetReconnectWait(no, 100);
    if (st == NATS_OK) st = natsOptions_SetTimeout(no, 2000);
    if (st == NATS_OK && reconnected)
        st = natsOptions_SetReconnectedCB(no, reconnected_cb, reconnected);
    if (st == NATS_OK) st = stanConnOptions_Create(&so);
    if (st == NATS_OK) st = stanConnOptions_SetNATSOptions(so, no);
    if (st == NATS_OK) st = stanConnOptions_SetURL(so, harness_url(s));
    if (st == NATS_OK) st = stanConnOptions_SetConnectionWait(so, HSTAN_CONNECT_WAIT_MS);
    /* A broken server fails a synchronous publish in 10 s rather than libnats' 30 s. */
    if (st == NATS_OK) st = stanConnOptions_SetPubAckWait(so, 10000);
    if (st == NATS_OK && lost) st = stanConnOptions_SetConnectionLostHandler(so, lost_cb, lost);
    if (st == NATS_OK && max_pub_acks_inflight > 0)
        st = stanConnOptions_SetMaxPubAcksInflight(so, max_pub_acks_inflight, 0.5f);
    /* Watched clients ping every second, so a server that no longer knows them (a ping answered
     * with an error) shows within the test; ten missed pings are allowed for a restart. */
    if (st == NATS_OK && reconnected) st = stanConnOptions_SetPings(so, 1, 10);
    if (st == NATS_OK) st = stanConnection_Connect(sc, cluster, client_id, so);
    stanConnOptions_Destroy(so);
    natsOptions_Destroy(no);
    return st;
}

natsStatus hstan_connect(const struct hserver *s, const char *cluster, const char *client_id,
                         struct hcounter *lost, stanConnection **sc)
{
    return connect_full(s, cluster, client_id, NULL, lost, 0, sc);
}

static stanConnection *connect_or_die(const struct hserver *s, const char *client_id,
                                      struct hcounter *reconnected, struct hcounter *lost,
                                      int max_pub_acks_inflight)
{
    stanConnection *sc = NULL;
    natsStatus st =
        connect_full(s, HSTAN_CLUSTER, client_id, reconnected, lost, max_pub_acks_inflight, &sc);
    if (st != NATS_OK) {
        fprintf(stderr, "STAN connect %s to %s: %s (%s)\n", client_id, harness_url(s),
                natsStatus_GetText(st), nats_GetLastError(NULL));
        CHECK(st == NATS_OK);
    }
    return sc;
}

stanConnection *hstan_connect_watched(const struct hserver *s, const char *client_id,
                                      struct hcounter *reconnected, struct hcounter *lost)
{
    return connect_or_die(s, client_id, reconnected, lost, 0);
}

stanConnection *hstan_connect_or_die(const struct hserver *s, const char *client_id)
{
    return connect_or_die(s, client_id, NULL, NULL, 0);
}

stanConnection *hstan_connect_window(const struct hserver *s, const char *client_id,
                                     int max_pub_acks_inflight)
{
    return connect_or_die(s, client_id, NULL, NULL, max_pub_acks_inflight);
}

bool hstan_last_error_contains(const char *needle)
{
    const char *e = nats_GetLastError(NULL);
    if (e && strstr(e, needle)) return true;
    fprintf(stderr, "expected an error containing \"%s\"; last error: \"%s\"\n", needle,
            e ? e : "(none)");
    return false;
}

natsStatus hstan_pub(stanConnection *sc, const char *channel, const char *payload)
{
    natsStatus st = stanConnection_Publish(sc, channel, payload, (int)strlen(payload));
    if (st != NATS_OK)
        fprintf(stderr, "publish to %s: %s (%s)\n", channel, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    return st;
}

void hstan_pub_range(stanConnection *sc, const char *channel, const char *fmt, int first, int last)
{
    for (int i = first; i <= last; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), fmt, i);
        CHECK(hstan_pub(sc, channel, buf) == NATS_OK);
    }
}

void hstan_commit_barrier(stanConnection *sc)
{
    CHECK(hstan_pub(sc, "barrier", "barrier") == NATS_OK);
}

void hstan_flush(stanConnection *sc)
{
    natsConnection *nc = NULL;
    CHECK(stanConnection_GetNATSConnection(sc, &nc) == NATS_OK);
    natsStatus st = natsConnection_FlushTimeout(nc, 5000);
    stanConnection_ReleaseNATSConnection(sc);
    CHECK(st == NATS_OK);
}

stanSubOptions *hstan_subopts(void)
{
    stanSubOptions *o = NULL;
    CHECK(stanSubOptions_Create(&o) == NATS_OK);
    return o;
}

/* ---- Received messages ---- */

void hstan_rx_init(struct hstan_rx *rx, int cap, enum hstan_ack_mode mode)
{
    memset(rx, 0, sizeof(*rx));
    hcounter_init(&rx->count);
    rx->mode = mode;
    rx->cap = cap;
    rx->recs = calloc((size_t)cap, sizeof(*rx->recs));
    rx->msgs = calloc((size_t)cap, sizeof(*rx->msgs));
    rx->subs = calloc((size_t)cap, sizeof(*rx->subs));
    CHECK(rx->recs && rx->msgs && rx->subs);
}

void hstan_rx_destroy(struct hstan_rx *rx)
{
    for (int i = 0; i < rx->cap; i++)
        if (rx->msgs[i]) stanMsg_Destroy(rx->msgs[i]);
    free(rx->recs);
    free(rx->msgs);
    free(rx->subs);
    hcounter_destroy(&rx->count);
}

void hstan_rx_handler(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                      void *closure)
{
    struct hstan_rx *rx = closure;
    pthread_mutex_lock(&rx->count.mu);
    int64_t acks_before = rx->acks;
    pthread_mutex_unlock(&rx->count.mu);

    natsStatus ack_st = NATS_OK;
    if (rx->mode == HSTAN_ACK_HANDLER) ack_st = stanSubscription_AckMsg(sub, msg);

    pthread_mutex_lock(&rx->count.mu);
    if (rx->mode == HSTAN_ACK_HANDLER) {
        if (ack_st == NATS_OK)
            rx->acks++;
        else
            rx->ack_errors++;
    }
    int64_t i = rx->count.n;
    if (i < rx->cap) {
        struct hstan_rec *r = &rx->recs[i];
        r->seq = stanMsg_GetSequence(msg);
        r->ts = stanMsg_GetTimestamp(msg);
        r->redelivered = stanMsg_IsRedelivered(msg);
        r->acks_before = acks_before;
        r->len = stanMsg_GetDataLength(msg);
        snprintf(r->data, sizeof(r->data), "%.*s", r->len, stanMsg_GetData(msg));
        rx->subs[i] = sub;
        if (rx->mode == HSTAN_ACK_TEST) {
            rx->msgs[i] = msg;
            msg = NULL;
        }
    } else {
        rx->overflow++;
    }
    rx->count.n++;
    pthread_cond_broadcast(&rx->count.cv);
    pthread_mutex_unlock(&rx->count.mu);
    if (msg) stanMsg_Destroy(msg);
}

int64_t hstan_rx_count(struct hstan_rx *rx)
{
    return hcounter_get(&rx->count);
}

void hstan_rx_dump(struct hstan_rx *rx, const char *label)
{
    pthread_mutex_lock(&rx->count.mu);
    fprintf(stderr, "   %s: %lld received (%d beyond capacity), %lld acks\n", label,
            (long long)rx->count.n, rx->overflow, (long long)rx->acks);
    for (int64_t i = 0; i < rx->count.n && i < rx->cap && i < 60; i++)
        fprintf(stderr, "     [%lld] seq %llu%s \"%s\"\n", (long long)i,
                (unsigned long long)rx->recs[i].seq,
                rx->recs[i].redelivered ? " (redelivered)" : "", rx->recs[i].data);
    pthread_mutex_unlock(&rx->count.mu);
}

bool hstan_rx_wait(struct hstan_rx *rx, int64_t n, int timeout_ms)
{
    if (hcounter_wait(&rx->count, n, timeout_ms)) return true;
    fprintf(stderr, "   timed out after %d ms waiting for %lld messages\n", timeout_ms,
            (long long)n);
    hstan_rx_dump(rx, "collector");
    return false;
}

struct hstan_rec hstan_rx_get(struct hstan_rx *rx, int i)
{
    pthread_mutex_lock(&rx->count.mu);
    bool ok = i >= 0 && i < rx->count.n && i < rx->cap;
    struct hstan_rec r = ok ? rx->recs[i] : (struct hstan_rec){0};
    pthread_mutex_unlock(&rx->count.mu);
    CHECK(ok);
    return r;
}

natsStatus hstan_rx_ack(struct hstan_rx *rx, int i)
{
    pthread_mutex_lock(&rx->count.mu);
    bool ok = rx->mode == HSTAN_ACK_TEST && i >= 0 && i < rx->count.n && i < rx->cap &&
              rx->msgs[i] != NULL;
    stanMsg *msg = ok ? rx->msgs[i] : NULL;
    stanSubscription *sub = ok ? rx->subs[i] : NULL;
    /* Counted before it is sent: a message the ack lets through must see it. */
    if (ok) rx->acks++;
    pthread_mutex_unlock(&rx->count.mu);
    CHECK(ok);
    natsStatus st = stanSubscription_AckMsg(sub, msg);
    if (st != NATS_OK) {
        fprintf(stderr, "ack of message %d: %s (%s)\n", i, natsStatus_GetText(st),
                nats_GetLastError(NULL));
        pthread_mutex_lock(&rx->count.mu);
        rx->acks--;
        rx->ack_errors++;
        pthread_mutex_unlock(&rx->count.mu);
    }
    return st;
}

natsStatus hstan_sub(stanSubscription **sub, stanConnection *sc, const char *channel,
                     const char *queue, struct hstan_rx *rx, stanSubOptions *opts)
{
    stanSubOptions *own = NULL;
    if (!opts && rx->mode != HSTAN_ACK_AUTO) opts = own = hstan_subopts();
    if (rx->mode != HSTAN_ACK_AUTO) CHECK(stanSubOptions_SetManualAckMode(opts, true) == NATS_OK);
    natsStatus st =
        queue ? stanConnection_QueueSubscribe(sub, sc, channel, queue, hstan_rx_handler, rx, opts)
              : stanConnection_Subscribe(sub, sc, channel, hstan_rx_handler, rx, opts);
    stanSubOptions_Destroy(own);
    return st;
}

/* ---- Hand-coded protobuf (proto3: zero values are simply left out) ---- */

static void pb_varint(struct hstan_pb *p, uint64_t v)
{
    while (v >= 0x80) {
        CHECK(p->n < sizeof(p->b));
        p->b[p->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    CHECK(p->n < sizeof(p->b));
    p->b[p->n++] = (uint8_t)v;
}

static void pb_str(struct hstan_pb *p, int field, const char *s)
{
    if (!s || !*s) return;
    size_t len = strlen(s);
    pb_varint(p, ((uint64_t)field << 3) | 2);
    pb_varint(p, len);
    CHECK(p->n + len <= sizeof(p->b));
    memcpy(p->b + p->n, s, len);
    p->n += len;
}

static void pb_int(struct hstan_pb *p, int field, int64_t v)
{
    if (v == 0) return;
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, (uint64_t)v);
}

static bool pb_read_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*off >= n) return false;
        uint8_t c = p[(*off)++];
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return true;
    }
    return false;
}

struct pb_want {
    int field;
    char *buf;
    size_t len;
};

/* Copies the wanted string fields of a message into their buffers (others are skipped). */
static bool pb_strings(const void *data, size_t n, struct pb_want *want, int nwant)
{
    const uint8_t *p = data;
    for (int i = 0; i < nwant; i++)
        want[i].buf[0] = '\0';
    size_t off = 0;
    while (off < n) {
        uint64_t key, len;
        if (!pb_read_varint(p, n, &off, &key)) return false;
        int field = (int)(key >> 3), type = (int)(key & 7);
        if (type == 0) {
            if (!pb_read_varint(p, n, &off, &len)) return false;
        } else if (type == 1 || type == 5) {
            off += type == 1 ? 8 : 4;
        } else if (type == 2) {
            if (!pb_read_varint(p, n, &off, &len) || len > n - off) return false;
            for (int i = 0; i < nwant; i++)
                if (want[i].field == field)
                    snprintf(want[i].buf, want[i].len, "%.*s", (int)len, (const char *)p + off);
            off += len;
        } else {
            return false;
        }
    }
    return off == n;
}

static void hb_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    if (natsMsg_GetReply(msg)) natsConnection_Publish(nc, natsMsg_GetReply(msg), NULL, 0);
    natsMsg_Destroy(msg);
}

static void new_inbox(char *buf, size_t len)
{
    natsInbox *inbox = NULL;
    CHECK(natsInbox_Create(&inbox) == NATS_OK);
    snprintf(buf, len, "%s", (const char *)inbox);
    natsInbox_Destroy(inbox);
}

/* A request whose reply's string fields go to want. */
static natsStatus raw_request(struct hstan_raw *r, const char *subject, const struct hstan_pb *req,
                              struct pb_want *want, int nwant)
{
    natsMsg *reply = NULL;
    natsStatus st = natsConnection_Request(&reply, r->nc, subject, req->b, (int)req->n, 2000);
    if (st != NATS_OK) {
        fprintf(stderr, "raw STAN request on %s: %s\n", subject, natsStatus_GetText(st));
        return st;
    }
    bool ok = pb_strings(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), want, nwant);
    natsMsg_Destroy(reply);
    if (!ok) fprintf(stderr, "raw STAN request on %s: undecodable reply\n", subject);
    return ok ? NATS_OK : NATS_PROTOCOL_ERROR;
}

natsStatus hstan_raw_connect(struct hstan_raw *r, const struct hserver *s, const char *client_id,
                             bool answer_hb, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    CHECK(hnats_connect(s, &r->nc) == NATS_OK);
    snprintf(r->client_id, sizeof(r->client_id), "%s", client_id);
    new_inbox(r->hb_inbox, sizeof(r->hb_inbox));
    if (answer_hb) {
        CHECK(natsConnection_Subscribe(&r->hb_sub, r->nc, r->hb_inbox, hb_answer, NULL) == NATS_OK);
        CHECK(natsConnection_Flush(r->nc) == NATS_OK);
    }
    char conn_id[64];
    new_inbox(conn_id, sizeof(conn_id));
    snprintf(r->conn_id, sizeof(r->conn_id), "%s", conn_id + strlen("_INBOX."));
    struct hstan_pb req = {.n = 0};
    pb_str(&req, 1, client_id);
    pb_str(&req, 2, r->hb_inbox);
    pb_int(&req, 3, 1); /* protocol */
    pb_str(&req, 4, conn_id + strlen("_INBOX."));
    pb_int(&req, 5, 5); /* ping interval, s */
    pb_int(&req, 6, 3); /* ping max out */
    char subject[128];
    snprintf(subject, sizeof(subject), "_STAN.discover.%s", HSTAN_CLUSTER);
    struct pb_want want[] = {
        {1, r->pub_prefix, sizeof(r->pub_prefix)},
        {2, r->sub_requests, sizeof(r->sub_requests)},
        {3, r->unsub_requests, sizeof(r->unsub_requests)},
        {4, r->close_requests, sizeof(r->close_requests)},
        {5, err, errlen},
        {6, r->sub_close_requests, sizeof(r->sub_close_requests)},
        {7, r->ping_requests, sizeof(r->ping_requests)},
    };
    return raw_request(r, subject, &req, want, 7);
}

natsStatus hstan_raw_subscribe(struct hstan_raw *r, const char *channel, const char *qgroup,
                               const char *durable, int max_inflight, int ack_wait_s,
                               char *ack_inbox, size_t ack_inbox_len, char *err, size_t errlen)
{
    char inbox[64], ack_buf[256];
    new_inbox(inbox, sizeof(inbox));
    struct hstan_pb req = {.n = 0};
    pb_str(&req, 1, r->client_id);
    pb_str(&req, 2, channel);
    pb_str(&req, 3, qgroup);
    pb_str(&req, 4, inbox);
    pb_int(&req, 5, max_inflight);
    pb_int(&req, 6, ack_wait_s);
    pb_str(&req, 7, durable);
    struct pb_want want[] = {
        {2, ack_inbox ? ack_inbox : ack_buf, ack_inbox ? ack_inbox_len : sizeof(ack_buf)},
        {3, err, errlen},
    };
    CHECK(r->sub_requests[0] != '\0');
    return raw_request(r, r->sub_requests, &req, want, 2);
}

void hstan_raw_close(struct hstan_raw *r)
{
    if (r->close_requests[0]) {
        struct hstan_pb req = {.n = 0};
        pb_str(&req, 1, r->client_id);
        char err[256];
        struct pb_want want[] = {{1, err, sizeof(err)}};
        raw_request(r, r->close_requests, &req, want, 1);
    }
    natsSubscription_Destroy(r->hb_sub);
    r->hb_sub = NULL;
    natsConnection_Close(r->nc);
    natsConnection_Destroy(r->nc);
    r->nc = NULL;
}

/* ---- Hand-made protobuf, exported ---- */

void hstan_pb_str(struct hstan_pb *p, int field, const char *s)
{
    pb_str(p, field, s);
}

void hstan_pb_int(struct hstan_pb *p, int field, int64_t v)
{
    pb_int(p, field, v);
}

/* Walks the fields of a message and points at field want_field (the last occurrence wins). */
static bool pb_find(const void *data, size_t n, int want_field, uint64_t *varint,
                    const uint8_t **str, size_t *str_len)
{
    const uint8_t *p = data;
    size_t off = 0;
    while (off < n) {
        uint64_t key, v;
        if (!pb_read_varint(p, n, &off, &key)) return false;
        int field = (int)(key >> 3), type = (int)(key & 7);
        if (type == 0) {
            if (!pb_read_varint(p, n, &off, &v)) return false;
            if (field == want_field && varint) *varint = v;
        } else if (type == 1 || type == 5) {
            size_t w = type == 1 ? 8 : 4;
            if (w > n - off) return false;
            off += w;
        } else if (type == 2) {
            if (!pb_read_varint(p, n, &off, &v) || v > n - off) return false;
            if (field == want_field && str) {
                *str = p + off;
                *str_len = (size_t)v;
            }
            off += (size_t)v;
        } else {
            return false;
        }
    }
    return true;
}

bool hstan_pb_get_str(const void *data, size_t n, int field, char *buf, size_t len)
{
    const uint8_t *s = NULL;
    size_t sl = 0;
    buf[0] = '\0';
    if (!pb_find(data, n, field, NULL, &s, &sl)) return false;
    if (s) snprintf(buf, len, "%.*s", (int)sl, (const char *)s);
    return true;
}

bool hstan_pb_get_varint(const void *data, size_t n, int field, uint64_t *v)
{
    *v = 0;
    return pb_find(data, n, field, v, NULL, NULL);
}

natsStatus hstan_raw_request(struct hstan_raw *r, const char *subject, const void *data, size_t len,
                             int timeout_ms, natsMsg **reply)
{
    *reply = NULL;
    return natsConnection_Request(reply, r->nc, subject, data, (int)len, timeout_ms);
}

/* ---- Data dirs ---- */

void hstan_dir_make(struct hstan_dir *d)
{
    CHECK(hmkdtemp(d->dir, sizeof(d->dir)) == 0);
    snprintf(d->data, sizeof(d->data), "%s/data", d->dir);
}

void hstan_dir_remove(struct hstan_dir *d)
{
    if (!getenv("HARNESS_KEEP")) hremove_tree(d->dir);
}

int hstan_read_all(const struct hserver *s, const char *client_id, const char *channel, int expect,
                   struct hstan_rec *out, int cap)
{
    stanConnection *sc = hstan_connect_or_die(s, client_id);
    struct hstan_rx rx;
    hstan_rx_init(&rx, cap > 16 ? cap : 16, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, channel, NULL, &rx, o) == NATS_OK);
    if (expect > 0 && !hstan_rx_wait(&rx, expect, 10000)) hstan_rx_dump(&rx, channel);
    /* Anything beyond what was expected has arrived by the time a round trip is done. */
    hstan_commit_barrier(sc);
    hstan_flush(sc);
    int n = (int)hstan_rx_count(&rx);
    for (int i = 0; out && i < n && i < cap; i++)
        out[i] = hstan_rx_get(&rx, i);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    stanConnection_Destroy(sc);
    hstan_rx_destroy(&rx);
    return n;
}

void hstan_round_trip(stanConnection *sc, const char *channel, const char *payload)
{
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_AUTO);
    stanSubOptions *so = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(so) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, channel, NULL, &rx, so) == NATS_OK);
    CHECK(hstan_pub(sc, channel, payload) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, 10000));
    CHECK_EQ_STR(hstan_rx_get(&rx, 0).data, payload);
    CHECK(stanSubscription_Close(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(so);
    hstan_rx_destroy(&rx);
}

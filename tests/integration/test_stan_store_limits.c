/* it_stan_store_limits: no input can make a PubAck lie. Names longer than the store can hold
 * are refused with a clear error before anything is staged, without touching the requests that
 * share their batch; long queue names are never cut short; a huge PubMsg reply is stored whole;
 * and a restarted channel never hands out a sequence that was used before, even when all of its
 * messages are gone; a channel with discard: new refuses publishes when full and evicts nothing;
 * a channel with a redelivery_backoff waits that long before a redelivery.
 * Each through a real stanzad (LMDB store) and real or hand-made clients. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define LONG_NAME 600 /* over LMDB's 511-byte key limit, well inside a 4 KiB control line */

enum { F_PUBACK_GUID = 1, F_PUBACK_ERR = 2, F_CONNRESP_ERR = 5 };

static void fill_name(char *buf, size_t len, char c)
{
    memset(buf, c, len);
    buf[len] = '\0';
}

/* ---- a growable protobuf writer (PubMsg with a reply of megabytes) ---- */

struct pbw {
    uint8_t *b;
    size_t n, cap;
};

static void pbw_put(struct pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2;
        w->b = realloc(w->b, w->cap);
        CHECK(w->b != NULL);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void pbw_varint(struct pbw *w, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pbw_put(w, t, n);
}

static void pbw_bytes(struct pbw *w, int field, const void *p, size_t n)
{
    pbw_varint(w, ((uint64_t)field << 3) | 2);
    pbw_varint(w, n);
    pbw_put(w, p, n);
}

static void pbw_str(struct pbw *w, int field, const char *s)
{
    pbw_bytes(w, field, s, strlen(s));
}

/* A PubMsg from raw client r. */
static void pubmsg(struct pbw *w, struct hstan_raw *r, const char *guid, const char *channel,
                   const char *reply, size_t reply_len, const char *data)
{
    w->n = 0;
    pbw_str(w, 1, r->client_id);
    pbw_str(w, 2, guid);
    pbw_str(w, 3, channel);
    if (reply_len) pbw_bytes(w, 4, reply, reply_len);
    pbw_str(w, 5, data);
    pbw_str(w, 6, r->conn_id);
}

/* ---- PubAcks collected on one inbox ---- */

struct acks {
    struct hcounter n;
    pthread_mutex_t mu;
    char guid[8][64];
    char err[8][256];
};

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    struct acks *a = closure;
    pthread_mutex_lock(&a->mu);
    int64_t i = hcounter_get(&a->n);
    if (i < 8) {
        const char *d = natsMsg_GetData(m);
        size_t len = (size_t)natsMsg_GetDataLength(m);
        CHECK(hstan_pb_get_str(d, len, F_PUBACK_GUID, a->guid[i], sizeof a->guid[i]));
        CHECK(hstan_pb_get_str(d, len, F_PUBACK_ERR, a->err[i], sizeof a->err[i]));
    }
    pthread_mutex_unlock(&a->mu);
    natsMsg_Destroy(m);
    hcounter_add(&a->n, 1);
}

static const char *ack_err(struct acks *a, const char *guid)
{
    for (int i = 0; i < 8 && i < hcounter_get(&a->n); i++)
        if (strcmp(a->guid[i], guid) == 0) return a->err[i];
    fprintf(stderr, "no PubAck for %s\n", guid);
    CHECK(0);
    return NULL;
}

/* A subscription to the long channel long_chan is refused as its publishes are; so are long
 * queue group and durable names. */
static void check_long_sub_names_refused(struct hstan_raw *r, const char *long_chan)
{
    char err[512];
    CHECK(hstan_raw_subscribe(r, long_chan, NULL, NULL, 10, 30, NULL, 0, err, sizeof err) ==
          NATS_OK);
    CHECK_EQ_STR(err, "stan: channel name too long (max 511 bytes)");
    char long_q[LONG_NAME + 1];
    fill_name(long_q, LONG_NAME, 'q');
    CHECK(hstan_raw_subscribe(r, "fine", long_q, NULL, 10, 30, NULL, 0, err, sizeof err) ==
          NATS_OK);
    CHECK_EQ_STR(err, "stan: queue group name too long (max 511 bytes)");
    CHECK(hstan_raw_subscribe(r, "fine", NULL, long_q, 10, 30, NULL, 0, err, sizeof err) ==
          NATS_OK);
    CHECK_EQ_STR(err, "stan: durable name too long (max 511 bytes)");
}

/* A publish to a channel name over the store's key limit, sent in the same batch as two good
 * publishes and a connect with an over-long client ID: the bad ones are refused by name, the
 * good ones are acked and survive a restart, and nothing of the bad ones is left behind. */
static void test_long_names_refused_alone(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);

    struct hstan_raw r;
    char err[512];
    CHECK(hstan_raw_connect(&r, &s, "raw-pub", true, err, sizeof err) == NATS_OK);
    CHECK_EQ_STR(err, "");

    struct acks a = {0};
    hcounter_init(&a.n);
    pthread_mutex_init(&a.mu, NULL);
    natsSubscription *acksub = NULL;
    CHECK(natsConnection_Subscribe(&acksub, r.nc, "acks.>", on_ack, &a) == NATS_OK);
    CHECK(natsConnection_Flush(r.nc) == NATS_OK);

    char long_chan[LONG_NAME + 1], long_id[LONG_NAME + 1], subj[LONG_NAME + 300];
    fill_name(long_chan, LONG_NAME, 'c');
    fill_name(long_id, LONG_NAME, 'i');
    struct pbw w = {0};
    /* One write: the three publishes and the connect reach the server together. */
    pubmsg(&w, &r, "good-1", "fine", NULL, 0, "one");
    snprintf(subj, sizeof subj, "%s.fine", r.pub_prefix);
    CHECK(natsConnection_PublishRequest(r.nc, subj, "acks.1", w.b, (int)w.n) == NATS_OK);
    pubmsg(&w, &r, "bad-1", long_chan, NULL, 0, "lost?");
    snprintf(subj, sizeof subj, "%s.%s", r.pub_prefix, long_chan);
    CHECK(natsConnection_PublishRequest(r.nc, subj, "acks.2", w.b, (int)w.n) == NATS_OK);
    struct hstan_pb creq = {0};
    hstan_pb_str(&creq, 1, long_id);
    hstan_pb_str(&creq, 2, "hb.long");
    hstan_pb_int(&creq, 3, 1);
    CHECK(natsConnection_PublishRequest(r.nc, "_STAN.discover." HSTAN_CLUSTER, "conn.long", creq.b,
                                        (int)creq.n) == NATS_OK);
    pubmsg(&w, &r, "good-2", "fine", NULL, 0, "two");
    snprintf(subj, sizeof subj, "%s.fine", r.pub_prefix);
    CHECK(natsConnection_PublishRequest(r.nc, subj, "acks.3", w.b, (int)w.n) == NATS_OK);
    CHECK(natsConnection_Flush(r.nc) == NATS_OK);
    CHECK(hcounter_wait(&a.n, 3, T_MS));
    CHECK_EQ_STR(ack_err(&a, "good-1"), "");
    CHECK_EQ_STR(ack_err(&a, "good-2"), "");
    CHECK_EQ_STR(ack_err(&a, "bad-1"), "stan: channel name too long (max 511 bytes)");

    /* The long client ID: refused by name, and not left registered (a second try gets the same
     * answer, not "already registered"). */
    for (int i = 0; i < 2; i++) {
        natsMsg *reply = NULL;
        CHECK(natsConnection_Request(&reply, r.nc, "_STAN.discover." HSTAN_CLUSTER, creq.b,
                                     (int)creq.n, T_MS) == NATS_OK);
        CHECK(hstan_pb_get_str(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply),
                               F_CONNRESP_ERR, err, sizeof err));
        CHECK_EQ_STR(err, "stan: invalid clientID: longer than 511 bytes");
        natsMsg_Destroy(reply);
    }

    check_long_sub_names_refused(&r, long_chan);

    /* What was acked is on disk. */
    natsSubscription_Destroy(acksub);
    hstan_raw_close(&r);
    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    CHECK(harness_server_restart(&s, args) == 0);
    struct hstan_rec recs[8];
    CHECK_EQ_INT(hstan_read_all(&s, "reader", "fine", 2, recs, 8), 2);
    CHECK_EQ_INT(recs[0].seq, 1);
    CHECK_EQ_INT(recs[1].seq, 2);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    free(w.b);
    hcounter_destroy(&a.n);
    hstan_dir_remove(&d);
}

/* Two durable queue groups whose "durable:group" keys differ only after 511 bytes are two
 * groups: each gets every message. */
static void test_long_group_names_not_merged(void)
{
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, NULL) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "groups");
    char durable[301], g1[301], g2[301];
    fill_name(durable, 300, 'd');
    fill_name(g1, 300, 'g');
    fill_name(g2, 300, 'g');
    g2[299] = 'h';
    struct hstan_rx rx1, rx2;
    hstan_rx_init(&rx1, 32, HSTAN_ACK_AUTO);
    hstan_rx_init(&rx2, 32, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, durable) == NATS_OK);
    stanSubscription *s1 = NULL, *s2 = NULL;
    CHECK(hstan_sub(&s1, sc, "jobs", g1, &rx1, o) == NATS_OK);
    CHECK(hstan_sub(&s2, sc, "jobs", g2, &rx2, o) == NATS_OK);
    hstan_pub_range(sc, "jobs", "job-%d", 1, 10);
    CHECK(hstan_rx_wait(&rx1, 10, T_MS));
    CHECK(hstan_rx_wait(&rx2, 10, T_MS));
    stanSubscription_Destroy(s1);
    stanSubscription_Destroy(s2);
    stanSubOptions_Destroy(o);
    stanConnection_Destroy(sc);
    hstan_rx_destroy(&rx1);
    hstan_rx_destroy(&rx2);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

/* A PubMsg reply of 3 MiB (max_payload 8 MiB): acked, stored whole, delivered with its reply,
 * and after a restart the next message is sequence 2, not a reuse of 1. */
static void test_huge_reply_stored_whole(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, "--max_payload", "8MB", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    struct hstan_raw r;
    char err[512];
    CHECK(hstan_raw_connect(&r, &s, "raw-reply", true, err, sizeof err) == NATS_OK);
    size_t rlen = 3u << 20;
    char *reply = malloc(rlen);
    CHECK(reply != NULL);
    for (size_t i = 0; i < rlen; i++)
        reply[i] = (char)('a' + i % 26);
    struct pbw w = {0};
    pubmsg(&w, &r, "huge-1", "replies", reply, rlen, "payload-1");
    char subj[512];
    snprintf(subj, sizeof subj, "%s.replies", r.pub_prefix);
    natsMsg *ack = NULL;
    CHECK(hstan_raw_request(&r, subj, w.b, w.n, T_MS, &ack) == NATS_OK);
    CHECK(hstan_pb_get_str(natsMsg_GetData(ack), (size_t)natsMsg_GetDataLength(ack), F_PUBACK_ERR,
                           err, sizeof err));
    CHECK_EQ_STR(err, "");
    natsMsg_Destroy(ack);
    hstan_raw_close(&r);

    /* Delivered with the reply intact (MsgProto.reply is field 3). */
    natsConnection *nc = NULL;
    CHECK(hnats_connect(&s, &nc) == NATS_OK);
    natsSubscription *in = NULL;
    CHECK(natsConnection_SubscribeSync(&in, nc, "deliver.replies") == NATS_OK);
    struct hstan_raw r2;
    CHECK(hstan_raw_connect(&r2, &s, "raw-reader", true, err, sizeof err) == NATS_OK);
    struct hstan_pb sreq = {0};
    hstan_pb_str(&sreq, 1, "raw-reader");
    hstan_pb_str(&sreq, 2, "replies");
    hstan_pb_str(&sreq, 4, "deliver.replies");
    hstan_pb_int(&sreq, 5, 10);
    hstan_pb_int(&sreq, 6, 30);
    hstan_pb_int(&sreq, 10, 4); /* StartPosition First */
    natsMsg *sresp = NULL;
    CHECK(hstan_raw_request(&r2, r2.sub_requests, sreq.b, sreq.n, T_MS, &sresp) == NATS_OK);
    natsMsg_Destroy(sresp);
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, in, T_MS) == NATS_OK);
    char *got = malloc(rlen + 1);
    CHECK(got != NULL);
    CHECK(hstan_pb_get_str(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 3, got, rlen + 1));
    CHECK_EQ_INT(strlen(got), rlen);
    CHECK(memcmp(got, reply, rlen) == 0);
    uint64_t seq = 0;
    CHECK(hstan_pb_get_varint(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 1, &seq));
    CHECK_EQ_INT(seq, 1);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(in);
    hstan_raw_close(&r2);
    natsConnection_Destroy(nc);

    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    CHECK(harness_server_restart(&s, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "after");
    CHECK(hstan_pub(sc, "replies", "payload-2") == NATS_OK);
    stanConnection_Destroy(sc);
    struct hstan_rec recs[8];
    CHECK_EQ_INT(hstan_read_all(&s, "reader2", "replies", 2, recs, 8), 2);
    CHECK_EQ_INT(recs[0].seq, 1);
    CHECK_EQ_INT(recs[1].seq, 2);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    free(reply);
    free(got);
    free(w.b);
    hstan_dir_remove(&d);
}

/* The channel's message count as the server reports it (-1 if it cannot be read). */
static int channel_msgs(int mport, const char *channel)
{
    char path[256], *body = NULL;
    snprintf(path, sizeof path, "/streaming/channelsz?channel=%s", channel);
    int status = hhttp_get(mport, path, &body);
    const char *m = status == 200 ? strstr(body, "\"msgs\"") : NULL;
    int n = -1;
    if (m) {
        m += 6;
        while (*m == ' ' || *m == ':')
            m++;
        n = atoi(m);
    }
    free(body);
    return n;
}

/* All of a channel's messages expire (max_age); after a restart its next message still gets the
 * next sequence, not 1 again. */
static void test_expired_channel_keeps_its_sequence(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    int mport = harness_free_port();
    char mport_s[16];
    snprintf(mport_s, sizeof mport_s, "%d", mport);
    const char *args[] = {"--store", "FILE", "--dir", d.data, "--max_age",
                          "1s",      "-m",   mport_s, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "ager");
    hstan_pub_range(sc, "aging", "old-%d", 1, 3);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(channel_msgs(mport, "aging"), 3);
    /* The server's count drops to 0 once the eviction of all three has committed. */
    int64_t deadline = harness_now_ms() + T_MS;
    int n = 3;
    while ((n = channel_msgs(mport, "aging")) != 0 && harness_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000}; /* polling the server's state, not waiting */
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(n, 0);
    struct hstan_rec recs[8];
    CHECK_EQ_INT(hstan_read_all(&s, "probe", "aging", 0, recs, 8), 0);
    CHECK_EQ_INT(harness_server_halt(&s, SIGTERM), 0);
    CHECK(harness_server_restart(&s, args) == 0);
    sc = hstan_connect_or_die(&s, "ager2");
    CHECK(hstan_pub(sc, "aging", "new") == NATS_OK);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(hstan_read_all(&s, "reader3", "aging", 1, recs, 8), 1);
    CHECK_EQ_INT(recs[0].seq, 4);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    hstan_dir_remove(&d);
}

/* ---- discard: new ---- */

/* The error of each async publish, by its index. */
struct full_acks {
    struct hcounter n;
    char err[5][256];
};

struct full_slot {
    struct full_acks *a;
    int i;
};

static void on_full_ack(const char *guid, const char *error, void *closure)
{
    (void)guid;
    struct full_slot *slot = closure;
    snprintf(slot->a->err[slot->i], sizeof slot->a->err[0], "%s", error ? error : "");
    hcounter_add(&slot->a->n, 1);
}

/* A channel configured with discard: new and max_msgs 3: of five async publishes from a libnats
 * client, three are acked and two get the "is full" error in their ack handler; a synchronous
 * publish then fails with it; and nothing was evicted (a reader from the first gets 1-3). */
static void test_discard_new_refuses_publishers(void)
{
    const char *conf = "store_limits:\n"
                       "  channels:\n"
                       "    'jobs.*': {max_msgs: 3, discard: new}\n";
    struct hserver s;
    CHECK(harness_server_start(&s, conf, NULL) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "jobber");
    struct full_acks a;
    memset(&a, 0, sizeof a);
    hcounter_init(&a.n);
    struct full_slot slots[5];
    for (int i = 0; i < 5; i++) {
        char payload[16];
        int n = snprintf(payload, sizeof payload, "job-%d", i + 1);
        slots[i] = (struct full_slot){&a, i};
        CHECK(stanConnection_PublishAsync(sc, "jobs.a", payload, n, on_full_ack, &slots[i]) ==
              NATS_OK);
    }
    CHECK(hcounter_wait(&a.n, 5, T_MS));
    const char *full = "channel \"jobs.a\" is full (max_msgs 3)";
    for (int i = 0; i < 5; i++)
        CHECK_EQ_STR(a.err[i], i < 3 ? "" : full);
    CHECK(hstan_pub(sc, "jobs.a", "job-6") != NATS_OK);
    CHECK(hstan_last_error_contains(full));
    stanConnection_Destroy(sc);
    struct hstan_rec recs[8];
    CHECK_EQ_INT(hstan_read_all(&s, "reader", "jobs.a", 3, recs, 8), 3);
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "job-%d", i + 1);
        CHECK_EQ_INT(recs[i].seq, (uint64_t)i + 1);
        CHECK_EQ_STR(recs[i].data, want);
    }
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    hcounter_destroy(&a.n);
}

/* ---- redelivery_backoff ---- */

/* When each delivery arrived (monotonic ms), never acked. */
struct arrivals {
    struct hcounter n;
    int64_t at[8];
};

static void on_unacked(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                       void *closure)
{
    (void)sc, (void)sub, (void)channel;
    struct arrivals *a = closure;
    int64_t now = harness_now_ms();
    pthread_mutex_lock(&a->n.mu);
    if (a->n.n < 8) a->at[a->n.n] = now;
    pthread_mutex_unlock(&a->n.mu);
    hcounter_add(&a->n, 1);
    stanMsg_Destroy(msg);
}

/* AckWait 1 s, never acked: on a channel with redelivery_backoff [2s] the first redelivery
 * comes no earlier than 2 s after the delivery; on one without, after about 1 s. */
static void test_redelivery_backoff(void)
{
    const char *conf = "store_limits:\n"
                       "  channels:\n"
                       "    'jobs.*': {redelivery_backoff: [2s]}\n";
    struct hserver s;
    CHECK(harness_server_start(&s, conf, NULL) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "backoff");
    struct arrivals slow, plain;
    memset(&slow, 0, sizeof slow);
    memset(&plain, 0, sizeof plain);
    hcounter_init(&slow.n);
    hcounter_init(&plain.n);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 1000) == NATS_OK);
    stanSubscription *s1 = NULL, *s2 = NULL;
    CHECK(stanConnection_Subscribe(&s1, sc, "jobs.a", on_unacked, &slow, o) == NATS_OK);
    CHECK(stanConnection_Subscribe(&s2, sc, "plain", on_unacked, &plain, o) == NATS_OK);
    CHECK(hstan_pub(sc, "jobs.a", "job") == NATS_OK);
    CHECK(hstan_pub(sc, "plain", "job") == NATS_OK);
    CHECK(hcounter_wait(&slow.n, 2, T_MS));
    CHECK(hcounter_wait(&plain.n, 2, T_MS));
    pthread_mutex_lock(&slow.n.mu);
    int64_t slow_gap = slow.at[1] - slow.at[0];
    pthread_mutex_unlock(&slow.n.mu);
    pthread_mutex_lock(&plain.n.mu);
    int64_t plain_gap = plain.at[1] - plain.at[0];
    pthread_mutex_unlock(&plain.n.mu);
    printf("    first redelivery after %lld ms with backoff [2s], %lld ms without\n",
           (long long)slow_gap, (long long)plain_gap);
    CHECK(slow_gap >= 1900);
    CHECK(plain_gap >= 900 && plain_gap < 1800);
    stanSubscription_Destroy(s1);
    stanSubscription_Destroy(s2);
    stanSubOptions_Destroy(o);
    stanConnection_Destroy(sc);
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    hcounter_destroy(&slow.n);
    hcounter_destroy(&plain.n);
}

int main(void)
{
    HSTAN_RUN(test_long_names_refused_alone);
    HSTAN_RUN(test_long_group_names_not_merged);
    HSTAN_RUN(test_huge_reply_stored_whole);
    HSTAN_RUN(test_expired_channel_keeps_its_sequence);
    HSTAN_RUN(test_discard_new_refuses_publishers);
    HSTAN_RUN(test_redelivery_backoff);
    nats_CloseAndWait(5000);
    return test_summary();
}

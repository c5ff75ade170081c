/* seedgen: writes the seed inputs of tests/fuzz/corpus that hold packed protobufs (and the NATS
 * frames that carry them), so that the seeds are real messages, as clients and the engine write
 * them. Run once by hand; its output is committed:
 *   build-fuzz/fuzz_seedgen tests/fuzz/corpus */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "protocol.pb-c.h"
#include "stan_keys.h"
#include "store.pb-c.h"

/* fuzz_stan's request ops (fz_kind_t in fuzz_common.h). */
enum { FZ_OP_CONNECT, FZ_OP_PUB, FZ_OP_SUB, FZ_OP_UNSUB, FZ_OP_SUBCLOSE, FZ_OP_CLOSE, FZ_OP_PING };

static const char *root;

static void put(const char *target, const char *name, const buf_t *b)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void pack(buf_t *b, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    buf_reserve(b, n);
    protobuf_c_message_pack(m, (uint8_t *)b->data + b->len);
    b->len += n;
}

/* fuzz_stan record: op, length (2 bytes LE), payload. */
static void rec(buf_t *b, uint8_t op, const ProtobufCMessage *m)
{
    buf_t t;
    buf_init(&t);
    if (m) pack(&t, m);
    uint8_t h[3] = {op, (uint8_t)(t.len & 0xff), (uint8_t)(t.len >> 8)};
    buf_append(b, h, 3);
    if (t.len) buf_append(b, t.data, t.len);
    buf_free(&t);
}

static void rec_raw(buf_t *b, uint8_t op, const void *p, size_t n)
{
    uint8_t h[3] = {op, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    buf_append(b, h, 3);
    if (n) buf_append(b, p, n);
}

static Pb__ConnectRequest conn(const char *id)
{
    Pb__ConnectRequest c = PB__CONNECT_REQUEST__INIT;
    c.clientid = (char *)id;
    c.heartbeatinbox = "_INBOX.hb.1";
    c.protocol = 1;
    c.connid.data = (uint8_t *)"conn-1";
    c.connid.len = 6;
    c.pingmaxout = 3;
    c.pinginterval = 5;
    return c;
}

static Pb__PubMsg pub(const char *subject, const char *guid, const char *data)
{
    Pb__PubMsg p = PB__PUB_MSG__INIT;
    p.clientid = "c1";
    p.guid = (char *)guid;
    p.subject = (char *)subject;
    p.data.data = (uint8_t *)data;
    p.data.len = strlen(data);
    p.connid.data = (uint8_t *)"conn-1";
    p.connid.len = 6;
    return p;
}

static Pb__SubscriptionRequest sub(const char *subject, const char *inbox)
{
    Pb__SubscriptionRequest s = PB__SUBSCRIPTION_REQUEST__INIT;
    s.clientid = "c1";
    s.subject = (char *)subject;
    s.inbox = (char *)inbox;
    s.maxinflight = 2;
    s.ackwaitinsecs = 1;
    s.startposition = PB__START_POSITION__First;
    return s;
}

/* The messages the fuzz_stan seeds are made of. The seeds below run in order on one set, each
 * starting from what the one before left (a.sequence stays 2 after "session", u.inbox stays
 * "_INBOX.s2" after "queue"), exactly as the committed corpus was written. */
struct stan_msgs {
    Pb__ConnectRequest c;
    Pb__PubMsg p1, p2, p3;
    Pb__SubscriptionRequest s;
    Pb__Ack a;
    Pb__UnsubscribeRequest u;
    Pb__CloseRequest cl;
    Pb__Ping ping;
};

static void stan_msgs_init(struct stan_msgs *m)
{
    Pb__Ack a = PB__ACK__INIT;
    Pb__UnsubscribeRequest u = PB__UNSUBSCRIBE_REQUEST__INIT;
    Pb__CloseRequest cl = PB__CLOSE_REQUEST__INIT;
    Pb__Ping ping = PB__PING__INIT;
    m->c = conn("c1");
    m->p1 = pub("foo", "g1", "one");
    m->p2 = pub("foo", "g2", "two");
    m->p3 = pub("bar.baz", "g3", "three");
    m->s = sub("foo", "_INBOX.s1");
    m->a = a;
    m->a.subject = "foo";
    m->a.sequence = 1;
    m->u = u;
    m->u.clientid = "c1";
    m->u.subject = "foo";
    m->u.inbox = "_INBOX.s1";
    m->cl = cl;
    m->cl.clientid = "c1";
    m->ping = ping;
    m->ping.connid = m->c.connid;
}

/* connect, publish, subscribe, ack, unsubscribe, close */
static void seed_session(struct stan_msgs *m)
{
    buf_t b;
    buf_init(&b);
    buf_append(&b, "\0", 1);
    rec(&b, FZ_OP_CONNECT, &m->c.base);
    rec(&b, FZ_OP_PUB, &m->p1.base);
    rec(&b, FZ_OP_PUB, &m->p2.base);
    rec(&b, FZ_OP_SUB, &m->s.base);
    rec(&b, 7, &m->a.base);
    m->a.sequence = 2;
    rec(&b, 7, &m->a.base);
    rec(&b, FZ_OP_PING, &m->ping.base);
    rec(&b, FZ_OP_UNSUB, &m->u.base);
    rec(&b, FZ_OP_CLOSE, &m->cl.base);
    put("stan", "session", &b);
    buf_free(&b);
}

/* a durable: subscribe, restart, the durable comes back offline, resume, close-sub */
static void seed_durable_restart(struct stan_msgs *m)
{
    buf_t b;
    buf_init(&b);
    buf_append(&b, "\0", 1);
    rec(&b, FZ_OP_CONNECT, &m->c.base);
    rec(&b, FZ_OP_PUB, &m->p1.base);
    m->s.durablename = "dur";
    rec(&b, FZ_OP_SUB, &m->s.base);
    rec(&b, 10, NULL);
    rec(&b, FZ_OP_PUB, &m->p2.base);
    rec(&b, FZ_OP_SUBCLOSE, &m->u.base);
    m->u.durablename = "dur";
    rec(&b, FZ_OP_SUBCLOSE, &m->u.base);
    rec(&b, FZ_OP_SUB, &m->s.base);
    rec(&b, 7, &m->a.base);
    rec(&b, 10, NULL);
    rec(&b, FZ_OP_UNSUB, &m->u.base);
    put("stan", "durable-restart", &b);
    buf_free(&b);
    m->s.durablename = "";
    m->u.durablename = "";
}

/* queue group, two members, one leaves; a redelivery after waiting */
static void seed_queue(struct stan_msgs *m)
{
    buf_t b;
    buf_init(&b);
    buf_append(&b, "\x01", 1);
    rec(&b, FZ_OP_CONNECT, &m->c.base);
    m->s.qgroup = "workers";
    m->s.maxinflight = 1;
    rec(&b, FZ_OP_SUB, &m->s.base);
    m->s.inbox = "_INBOX.s2";
    rec(&b, FZ_OP_SUB, &m->s.base);
    rec(&b, FZ_OP_PUB, &m->p1.base);
    rec(&b, FZ_OP_PUB, &m->p2.base);
    rec(&b, FZ_OP_PUB, &m->p3.base);
    rec_raw(&b, 9, "\x3f", 1);
    rec(&b, 0x17, &m->a.base);
    m->u.inbox = "_INBOX.s2";
    rec(&b, FZ_OP_UNSUB, &m->u.base);
    rec(&b, FZ_OP_CLOSE, &m->cl.base);
    put("stan", "queue", &b);
    buf_free(&b);
    m->s.qgroup = "";
    m->s.inbox = "_INBOX.s1";
    m->s.maxinflight = 2;
}

/* start positions; heartbeats answered and not; limits and expiry */
static void seed_positions_heartbeats(struct stan_msgs *m)
{
    buf_t b;
    buf_init(&b);
    buf_append(&b, "\x0c", 1);
    rec(&b, FZ_OP_CONNECT, &m->c.base);
    for (int i = 0; i < 20; i++)
        rec(&b, FZ_OP_PUB, i & 1 ? &m->p1.base : &m->p3.base);
    m->s.startposition = PB__START_POSITION__SequenceStart;
    m->s.startsequence = 5;
    rec(&b, FZ_OP_SUB, &m->s.base);
    m->s.startposition = PB__START_POSITION__TimeDeltaStart;
    m->s.starttimedelta = 1000000000;
    m->s.inbox = "_INBOX.s3";
    rec(&b, FZ_OP_SUB, &m->s.base);
    m->s.startposition = PB__START_POSITION__LastReceived;
    m->s.subject = "bar.baz";
    rec(&b, FZ_OP_SUB, &m->s.base);
    rec_raw(&b, 9, "\x30", 1);
    rec_raw(&b, 8, "", 0);
    rec_raw(&b, 9, "\x30", 1);
    rec(&b, FZ_OP_PING, &m->ping.base);
    put("stan", "positions-heartbeats", &b);
    buf_free(&b);
}

/* a second client taking over the same id; a publish with the old connID; no replies */
static void seed_takeover(struct stan_msgs *m)
{
    buf_t b;
    buf_init(&b);
    buf_append(&b, "\x10", 1);
    rec(&b, FZ_OP_CONNECT, &m->c.base);
    Pb__ConnectRequest c2 = conn("c1");
    c2.connid.data = (uint8_t *)"conn-2";
    rec(&b, FZ_OP_CONNECT, &c2.base);
    rec(&b, FZ_OP_PUB | 0x80, &m->p1.base);
    rec(&b, FZ_OP_CONNECT, &c2.base);
    Pb__ConnectRequest c0 = conn("old-proto");
    c0.protocol = 0;
    c0.connid.len = 0;
    rec(&b, FZ_OP_CONNECT, &c0.base);
    put("stan", "takeover", &b);
    buf_free(&b);
}

static void stan_seeds(void)
{
    struct stan_msgs m;
    stan_msgs_init(&m);
    seed_session(&m);
    seed_durable_restart(&m);
    seed_queue(&m);
    seed_positions_heartbeats(&m);
    seed_takeover(&m);
}

/* fuzz_stan op 11: a raw record written into the store. */
static void rec_damage(buf_t *b, uint8_t db, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    buf_t t;
    buf_init(&t);
    uint8_t h[2] = {db, (uint8_t)klen};
    buf_append(&t, h, 2);
    buf_append(&t, key, klen);
    if (vlen) buf_append(&t, val, vlen);
    rec_raw(b, 11, t.data, t.len);
    buf_free(&t);
}

/* A store damaged under a running engine and then recovered. */
static void damage_seeds(void)
{
    buf_t b;
    Pb__ConnectRequest c = conn("c1");
    Pb__PubMsg p1 = pub("foo", "g1", "one");
    Pb__SubscriptionRequest s = sub("foo", "_INBOX.s1");
    s.durablename = "dur";
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, 1, 2);
    buf_init(&b);
    buf_append(&b, "\0", 1);
    rec(&b, FZ_OP_CONNECT, &c.base);
    rec(&b, FZ_OP_PUB, &p1.base);
    /* message 2 of channel 1, with a reply length running past its end */
    rec_damage(&b, STORE_DB_MSGS, key, sizeof key, "\0\0\0\0\0\0\0\1\0\0\0\0\0\3\x7f", 15);
    rec(&b, FZ_OP_PUB, &p1.base);
    rec(&b, FZ_OP_SUB, &s.base);
    /* a client record that is not a protobuf, a subscription of a channel that is not there */
    rec_damage(&b, STORE_DB_CLIENTS, "c2", 2, "\xff\xff", 2);
    Spb__SubRecord sr = SPB__SUB_RECORD__INIT;
    sr.id = 99;
    sr.channel_id = 77;
    sr.client_id = "c1";
    sr.inbox = "_INBOX.x";
    sr.ack_inbox = "_STAN.ack.x";
    sr.is_durable = 1;
    sr.durable_name = "d2";
    buf_t v;
    buf_init(&v);
    pack(&v, &sr.base);
    uint8_t sk[8];
    stan_key_u64(sk, 99);
    rec_damage(&b, STORE_DB_SUBS, sk, 8, v.data, v.len);
    buf_free(&v);
    uint8_t pk[16];
    stan_key_pending(pk, 99, 5);
    rec_damage(&b, STORE_DB_PENDING, pk, 16, "\0\0\0\1", 4);
    rec_raw(&b, 10, NULL, 0);
    rec(&b, FZ_OP_SUB, &s.base);
    rec_raw(&b, 9, "\x10", 1);
    put("stan", "damaged-store", &b);
    buf_free(&b);

    /* a server record of another cluster: the restart must refuse the store */
    buf_init(&b);
    buf_append(&b, "\0", 1);
    Spb__ServerRecord srv = SPB__SERVER_RECORD__INIT;
    srv.version = 1;
    srv.cluster_id = "other";
    buf_init(&v);
    pack(&v, &srv.base);
    rec_damage(&b, STORE_DB_META, "server", 6, v.data, v.len);
    buf_free(&v);
    rec_raw(&b, 10, NULL, 0);
    put("stan", "foreign-store", &b);
    buf_free(&b);

    /* a full disk under publishes, a subscription and a close: then room again */
    buf_init(&b);
    buf_append(&b, "\0", 1);
    rec(&b, FZ_OP_CONNECT, &c.base);
    rec(&b, FZ_OP_PUB, &p1.base);
    rec_raw(&b, 12, "\x01", 1);
    rec(&b, FZ_OP_PUB, &p1.base);
    rec(&b, FZ_OP_SUB, &s.base);
    Pb__CloseRequest cl = PB__CLOSE_REQUEST__INIT;
    cl.clientid = "c1";
    rec(&b, FZ_OP_CLOSE, &cl.base);
    rec(&b, FZ_OP_PUB, &p1.base);
    rec(&b, FZ_OP_SUB, &s.base);
    rec_raw(&b, 10, NULL, 0);
    rec(&b, FZ_OP_SUB, &s.base);
    put("stan", "disk-full", &b);
    buf_free(&b);
}

static void record_seeds(void)
{
    buf_t b;
    uint8_t v[64];
    buf_init(&b);
    buf_append(&b, "\0", 1);
    size_t h = stan_msg_hdr(v, 1700000000000000000LL, 12345, 5);
    buf_append(&b, v, h);
    buf_append(&b, "reply", 5);
    buf_append(&b, "payload", 7);
    put("records", "msgval", &b);
    buf_free(&b);

    Spb__ServerRecord sr = SPB__SERVER_RECORD__INIT;
    sr.version = 1;
    sr.cluster_id = "test-cluster";
    sr.server_id = "NUIDNUIDNUIDNUIDNUID";
    sr.discover_prefix = "_STAN.discover.test-cluster";
    sr.pub_prefix = "_STAN.pub.X";
    sr.sub_requests = "_STAN.sub.X";
    sr.unsub_requests = "_STAN.unsub.X";
    sr.close_requests = "_STAN.close.X";
    sr.sub_close_requests = "_STAN.subclose.X";
    sr.ping_requests = "_STAN.discover.test-cluster.pings";
    sr.next_channel_id = 3;
    sr.next_sub_id = 7;
    Spb__ClientRecord cr = SPB__CLIENT_RECORD__INIT;
    cr.id = "c1";
    cr.hb_inbox = "_INBOX.hb";
    cr.conn_id.data = (uint8_t *)"conn";
    cr.conn_id.len = 4;
    cr.protocol = 1;
    Spb__ChannelRecord ch = SPB__CHANNEL_RECORD__INIT;
    ch.id = 2;
    ch.name = "foo.bar";
    ch.created = 1700000000000000000LL;
    ch.last_seq = 99;
    ch.last_cum = 4096;
    ch.last_ts = 1700000000000000001LL;
    Spb__SubRecord sb = SPB__SUB_RECORD__INIT;
    sb.id = 6;
    sb.channel_id = 2;
    sb.client_id = "c1";
    sb.queue_group = "q";
    sb.inbox = "_INBOX.s";
    sb.ack_inbox = "_STAN.ack.X.Y";
    sb.max_inflight = 1024;
    sb.ack_wait_secs = 30;
    sb.durable_name = "d";
    sb.last_sent = 42;
    sb.is_durable = 1;
    sb.is_closed = 1;
    const ProtobufCMessage *msgs[] = {&sr.base, &cr.base, &ch.base, &sb.base};
    const char *names[] = {"server", "client", "channel", "sub"};
    for (int i = 0; i < 4; i++) {
        buf_init(&b);
        uint8_t sel = (uint8_t)(i + 1);
        buf_append(&b, &sel, 1);
        pack(&b, msgs[i]);
        put("records", names[i], &b);
        buf_free(&b);
    }
    Pb__PubMsg pm = pub("foo", "guid-1", "data");
    pm.reply = "r";
    buf_init(&b);
    buf_append(&b, "\x05", 1);
    pack(&b, &pm.base);
    put("records", "pubmsg", &b);
    buf_free(&b);
    Pb__Ack a = PB__ACK__INIT;
    a.subject = "foo";
    a.sequence = 300;
    buf_init(&b);
    buf_append(&b, "\x06", 1);
    pack(&b, &a.base);
    put("records", "ack", &b);
    buf_free(&b);
}

/* fuzz_daemon: a STAN session written as raw NATS frames. */
static void nats_pub(buf_t *b, const char *subject, const char *reply, const ProtobufCMessage *m)
{
    buf_t t;
    buf_init(&t);
    pack(&t, m);
    char line[256];
    snprintf(line, sizeof line, "PUB %s %s %zu\r\n", subject, reply, t.len);
    buf_append(b, line, strlen(line));
    buf_append(b, t.data, t.len);
    buf_append(b, "\r\n", 2);
    buf_free(&t);
}

static void daemon_seeds(void)
{
    buf_t b;
    buf_init(&b);
    const char *hello =
        "CONNECT {\"verbose\":true,\"pedantic\":true,\"protocol\":1,\"headers\":true}"
        "\r\nSUB _INBOX.r.> 1\r\nSUB _INBOX.hb.1 2\r\n";
    buf_append(&b, hello, strlen(hello));
    Pb__ConnectRequest c = conn("raw-client");
    nats_pub(&b, "_STAN.discover.test-cluster", "_INBOX.r.1", &c.base);
    buf_append(&b, "PING\r\n", 6);
    put("daemon", "stan-connect", &b);
    /* the same, then a request to the client's ping subject */
    Pb__Ping p = PB__PING__INIT;
    p.connid = c.connid;
    nats_pub(&b, "_STAN.discover.test-cluster.pings", "_INBOX.r.2", &p.base);
    put("daemon", "stan-ping", &b);
    buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    stan_seeds();
    damage_seeds();
    record_seeds();
    daemon_seeds();
    return 0;
}

/* it_stan_errors: every error a STAN client can be told (stan-reference.md §1c), each on the bad
 * request that provokes it, sent as a hand-made protobuf over a plain NATS request to the subjects
 * the server announced in its ConnectResponse; then malformed payloads on every request subject,
 * after which the server must still serve a normal client.
 *
 * The error checks do not stop at the first difference: each case prints what it got, every
 * mismatch is listed, and the test fails at the end if there was any. The expected answers are
 * NSS's (v0.25.6), with one deliberate difference, commented where it is checked. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 5000
#define REQ_MS 2000

#define E_SUBJECT "stan: invalid subject"
#define E_START "stan: invalid start position"
#define E_SUB "stan: invalid subscription"
#define E_REGISTERED "stan: clientID already registered"
#define E_MISSING "stan: clientID missing"
#define E_CLIENTID "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed"
#define E_ACKWAIT "stan: invalid ack wait time, should be >= 1s"
#define E_INFLIGHT "stan: invalid MaxInflight, should be >= 1"
#define E_CONNREQ "stan: invalid connection request"
#define E_PUBREQ "stan: invalid publish request"
#define E_SUBREQ "stan: invalid subscription request"
#define E_UNSUBREQ "stan: invalid unsubscribe request"
#define E_CLOSEREQ "stan: invalid close request"
#define E_DUPDUR "stan: duplicate durable registration"
#define E_DURNAME "stan: durable name of a durable queue subscriber can't contain the character ':'"
#define E_UNKCLIENT "stan: unknown clientID"
#define E_UNKCHAN "stan: unknown channel"
#define E_MAXCHAN "too many channels"
#define E_MAXSUBS "too many subscriptions per channel"

/* The error field of each response type. */
enum { F_CONNECT = 5, F_PUBACK = 2, F_SUBRESP = 3, F_CLOSE = 1, F_PING = 1 };

static struct hserver srv; /* MEMORY store, default limits */
static int mismatches;

/* ---- requests ---- */

/* Sends payload on subject and copies the response's error field into err. Returns false (err
 * says why) when no decodable response came. */
static bool request_err(struct hstan_raw *r, const char *subject, const void *data, size_t len,
                        int field, char *err, size_t errlen)
{
    natsMsg *reply = NULL;
    natsStatus st = hstan_raw_request(r, subject, data, len, REQ_MS, &reply);
    if (st != NATS_OK) {
        snprintf(err, errlen, "<no response: %s>", natsStatus_GetText(st));
        return false;
    }
    bool ok = hstan_pb_get_str(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), field,
                               err, errlen);
    natsMsg_Destroy(reply);
    if (!ok) snprintf(err, errlen, "<undecodable response>");
    return ok;
}

static void expect(const char *what, const char *got, const char *want)
{
    if (strcmp(got, want) == 0) {
        fprintf(stderr, "   ok   %-48s \"%s\"\n", what, got);
        return;
    }
    fprintf(stderr, "   MISMATCH %s:\n        want \"%s\"\n        got  \"%s\"\n", what, want, got);
    mismatches++;
}

static void connect_req(struct hstan_pb *p, const char *client_id, const char *hb_inbox)
{
    p->n = 0;
    hstan_pb_str(p, 1, client_id);
    hstan_pb_str(p, 2, hb_inbox);
    hstan_pb_int(p, 3, 1);
    hstan_pb_str(p, 4, "conn-id-of-a-raw-request");
    hstan_pb_int(p, 5, 5);
    hstan_pb_int(p, 6, 3);
}

static void connect_err(struct hstan_raw *r, const char *client_id, const char *hb_inbox, char *err,
                        size_t errlen)
{
    struct hstan_pb p;
    connect_req(&p, client_id, hb_inbox);
    char subject[128];
    snprintf(subject, sizeof(subject), "_STAN.discover.%s", HSTAN_CLUSTER);
    request_err(r, subject, p.b, p.n, F_CONNECT, err, errlen);
}

struct subreq {
    const char *client_id, *subject, *qgroup, *inbox, *durable;
    int max_inflight, ack_wait, start;
};

static void sub_req(struct hstan_pb *p, const struct subreq *s)
{
    p->n = 0;
    hstan_pb_str(p, 1, s->client_id);
    hstan_pb_str(p, 2, s->subject);
    hstan_pb_str(p, 3, s->qgroup);
    hstan_pb_str(p, 4, s->inbox);
    hstan_pb_int(p, 5, s->max_inflight);
    hstan_pb_int(p, 6, s->ack_wait);
    hstan_pb_str(p, 7, s->durable);
    hstan_pb_int(p, 10, s->start);
}

/* A valid subscription request of r on channel, to be spoiled by the caller. */
static struct subreq good_sub(struct hstan_raw *r, const char *channel)
{
    return (struct subreq){.client_id = r->client_id,
                           .subject = channel,
                           .inbox = "_INBOX.errs.delivery",
                           .max_inflight = 16,
                           .ack_wait = 30,
                           .start = 0};
}

/* Subscribes; ack_inbox (may be NULL) gets the response's ackInbox; returns the error field. */
static void subscribe_err(struct hstan_raw *r, const struct subreq *s, char *ack_inbox,
                          size_t ack_len, char *err, size_t errlen)
{
    struct hstan_pb p;
    sub_req(&p, s);
    natsMsg *reply = NULL;
    natsStatus st = hstan_raw_request(r, r->sub_requests, p.b, p.n, REQ_MS, &reply);
    if (ack_inbox) ack_inbox[0] = '\0';
    if (st != NATS_OK) {
        snprintf(err, errlen, "<no response: %s>", natsStatus_GetText(st));
        return;
    }
    const void *d = natsMsg_GetData(reply);
    size_t n = (size_t)natsMsg_GetDataLength(reply);
    if (!hstan_pb_get_str(d, n, F_SUBRESP, err, errlen)) snprintf(err, errlen, "<undecodable>");
    if (ack_inbox) hstan_pb_get_str(d, n, 2, ack_inbox, ack_len);
    natsMsg_Destroy(reply);
}

static void unsub_err(struct hstan_raw *r, const char *subject, const char *client_id,
                      const char *channel, const char *inbox, const char *durable, char *err,
                      size_t errlen)
{
    struct hstan_pb p = {.n = 0};
    hstan_pb_str(&p, 1, client_id);
    hstan_pb_str(&p, 2, channel);
    hstan_pb_str(&p, 3, inbox);
    hstan_pb_str(&p, 4, durable);
    request_err(r, subject, p.b, p.n, F_SUBRESP, err, errlen);
}

static void close_err(struct hstan_raw *r, const char *client_id, char *err, size_t errlen)
{
    struct hstan_pb p = {.n = 0};
    hstan_pb_str(&p, 1, client_id);
    request_err(r, r->close_requests, p.b, p.n, F_CLOSE, err, errlen);
}

static void pub_req(struct hstan_pb *p, const char *client_id, const char *guid,
                    const char *channel, const char *data)
{
    p->n = 0;
    hstan_pb_str(p, 1, client_id);
    hstan_pb_str(p, 2, guid);
    hstan_pb_str(p, 3, channel);
    hstan_pb_str(p, 5, data);
}

/* Publishes on <pubPrefix>.<subject_channel> a PubMsg for channel; the PubAck's error. */
static void publish_err(struct hstan_raw *r, const char *client_id, const char *guid,
                        const char *subject_channel, const char *channel, char *err, size_t errlen)
{
    struct hstan_pb p;
    pub_req(&p, client_id, guid, channel, "payload");
    char subject[512];
    snprintf(subject, sizeof(subject), "%s.%s", r->pub_prefix, subject_channel);
    request_err(r, subject, p.b, p.n, F_PUBACK, err, errlen);
}

static void raw_connect_or_die(struct hstan_raw *r, const struct hserver *s, const char *id)
{
    char err[256];
    CHECK(hstan_raw_connect(r, s, id, true, err, sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    CHECK(r->pub_prefix[0] && r->sub_requests[0] && r->unsub_requests[0]);
    CHECK(r->close_requests[0] && r->sub_close_requests[0] && r->ping_requests[0]);
}

/* ---- 1. every error string on its request ---- */

static void test_connect_errors(void)
{
    struct hstan_raw r;
    raw_connect_or_die(&r, &srv, "errs-conn");
    char err[512];

    connect_err(&r, "errs-nohb", "", err, sizeof(err));
    expect("connect, empty heartbeat inbox", err, E_CONNREQ);
    const char *bad[] = {"a.b", "a b", "a*b", "a>", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "connect, client ID \"%s\"", bad[i]);
        connect_err(&r, bad[i], "_INBOX.errs.hb", err, sizeof(err));
        expect(what, err, E_CLIENTID);
    }
    /* NSS validates the ID with ^[a-zA-Z0-9_-]+$ and has no separate check for an empty one
     * ("clientID missing" is its answer to a SubscriptionRequest without one). */
    connect_err(&r, "", "_INBOX.errs.hb", err, sizeof(err));
    expect("connect, empty client ID", err, E_CLIENTID);

    /* r answers heartbeats: alive, so a second connect with its ID is refused. */
    connect_err(&r, "errs-conn", "_INBOX.errs.hb2", err, sizeof(err));
    expect("connect, client ID of a live client", err, E_REGISTERED);
    hstan_raw_close(&r);
}

static void test_publish_errors(void)
{
    struct hstan_raw r;
    raw_connect_or_die(&r, &srv, "errs-pub");
    char err[512];

    publish_err(&r, r.client_id, "g1", "errs", "errs", err, sizeof(err));
    expect("publish, valid", err, "");
    publish_err(&r, r.client_id, "", "errs", "errs", err, sizeof(err));
    expect("publish, no guid", err, E_PUBREQ);
    publish_err(&r, "errs-never-connected", "g2", "errs", "errs", err, sizeof(err));
    /* NSS: clients.isValid() fails -> ErrInvalidPubReq, the same answer as a missing guid. */
    expect("publish, client ID never connected", err, E_PUBREQ);

    /* A connection whose client ID was taken over (its connID is no longer the client's)
     * cannot publish; the client's own connID can. */
    struct hstan_pb pb;
    char psubj[512];
    snprintf(psubj, sizeof psubj, "%s.errs", r.pub_prefix);
    pub_req(&pb, r.client_id, "g8", "errs", "payload");
    hstan_pb_str(&pb, 6, "a-replaced-connection");
    request_err(&r, psubj, pb.b, pb.n, F_PUBACK, err, sizeof(err));
    expect("publish, connID of a replaced connection", err, E_PUBREQ);
    pub_req(&pb, r.client_id, "g9", "errs", "payload");
    hstan_pb_str(&pb, 6, r.conn_id);
    request_err(&r, psubj, pb.b, pb.n, F_PUBACK, err, sizeof(err));
    expect("publish, the client's own connID", err, "");

    const char *bad[] = {"foo.*", "foo..bar", "", ">", ".foo", "foo.", "a/b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "publish, channel \"%s\"", bad[i]);
        publish_err(&r, r.client_id, "g3", "errs", bad[i], err, sizeof(err));
        /* NSS refuses it as an invalid publish request, not "invalid subject". */
        expect(what, err, E_PUBREQ);
    }
    hstan_raw_close(&r);
}

static void test_subscribe_errors(void)
{
    struct hstan_raw r;
    raw_connect_or_die(&r, &srv, "errs-sub");
    char err[512], what[96];
    struct subreq s;

    s = good_sub(&r, "errs-sub");
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, valid", err, "");

    const char *bad[] = {"foo.*", "foo..bar", "", ">", ".foo", "foo.", "a/b", "*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(what, sizeof(what), "subscribe, channel \"%s\"", bad[i]);
        s = good_sub(&r, bad[i]);
        subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
        expect(what, err, E_SUBJECT);
    }
    s = good_sub(&r, "errs-sub");
    s.start = 99;
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, start position 99", err, E_START);
    s.start = -1;
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, start position -1", err, E_START);

    int waits[] = {0, -1};
    for (int i = 0; i < 2; i++) {
        s = good_sub(&r, "errs-sub");
        s.ack_wait = waits[i];
        snprintf(what, sizeof(what), "subscribe, ack wait %d", waits[i]);
        subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
        expect(what, err, E_ACKWAIT);
        s = good_sub(&r, "errs-sub");
        s.max_inflight = waits[i];
        snprintf(what, sizeof(what), "subscribe, MaxInflight %d", waits[i]);
        subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
        expect(what, err, E_INFLIGHT);
    }

    s = good_sub(&r, "errs-sub");
    s.client_id = "";
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, no client ID", err, E_MISSING);

    s = good_sub(&r, "errs-sub");
    s.inbox = "";
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    /* A deliberate difference: NSS has no inbox check and accepts the subscription (then
     * delivers to ""), which is useless; Stanza refuses it with one of NSS's own strings. */
    expect("subscribe, no inbox", err, E_SUBREQ);

    s = good_sub(&r, "errs-sub");
    s.client_id = "errs-never-connected";
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, client ID never connected", err, E_UNKCLIENT);

    s = good_sub(&r, "errs-sub");
    s.durable = "dur";
    s.inbox = "_INBOX.errs.dur1";
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, durable", err, "");
    s.inbox = "_INBOX.errs.dur2";
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, same durable while active", err, E_DUPDUR);

    s = good_sub(&r, "errs-sub");
    s.durable = "du:r";
    s.qgroup = "grp";
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, durable queue name with ':'", err, E_DURNAME);
    s.qgroup = NULL; /* a plain durable may contain ':' */
    subscribe_err(&r, &s, NULL, 0, err, sizeof(err));
    expect("subscribe, plain durable name with ':'", err, "");
    hstan_raw_close(&r);
}

static void test_unsubscribe_and_close_errors(void)
{
    struct hstan_raw r, other;
    raw_connect_or_die(&r, &srv, "errs-unsub");
    raw_connect_or_die(&other, &srv, "errs-unsub-2");
    char err[512], what[128], ack[256];
    struct subreq s = good_sub(&r, "errs-unsub");
    subscribe_err(&r, &s, ack, sizeof(ack), err, sizeof(err));
    expect("subscribe, valid", err, "");
    CHECK(ack[0] != '\0');

    const char *subj[2] = {r.unsub_requests, r.sub_close_requests};
    const char *name[2] = {"unsubscribe", "sub close"};
    for (int i = 0; i < 2; i++) {
        snprintf(what, sizeof(what), "%s, unknown inbox", name[i]);
        unsub_err(&r, subj[i], r.client_id, "errs-unsub", "_INBOX.errs.nobody", NULL, err,
                  sizeof(err));
        expect(what, err, E_SUB);

        snprintf(what, sizeof(what), "%s, no inbox", name[i]);
        unsub_err(&r, subj[i], r.client_id, "errs-unsub", "", NULL, err, sizeof(err));
        /* NSS looks the empty inbox up like any other: not found. */
        expect(what, err, E_SUB);

        snprintf(what, sizeof(what), "%s, client ID never connected", name[i]);
        unsub_err(&r, subj[i], "errs-never-connected", "errs-unsub", ack, NULL, err, sizeof(err));
        expect(what, err, E_UNKCLIENT);

        /* NSS finds the channel first (from UnsubscribeRequest.subject); none: unknown channel. */
        snprintf(what, sizeof(what), "%s, channel that does not exist", name[i]);
        unsub_err(&r, subj[i], r.client_id, "errs-no-such-channel", "_INBOX.errs.nobody", NULL, err,
                  sizeof(err));
        expect(what, err, E_UNKCHAN);

        /* Someone else's subscription. */
        snprintf(what, sizeof(what), "%s, another client's subscription", name[i]);
        unsub_err(&other, subj[i], other.client_id, "errs-unsub", ack, NULL, err, sizeof(err));
        if (strcmp(err, E_SUB) != 0 && strcmp(err, E_UNKCLIENT) != 0)
            expect(what, err, E_SUB " (or " E_UNKCLIENT ")");
        else
            expect(what, err, err);
    }
    /* The subscription survived all that; now a real unsubscribe, then it is unknown. */
    unsub_err(&r, r.unsub_requests, r.client_id, "errs-unsub", ack, NULL, err, sizeof(err));
    expect("unsubscribe, valid", err, "");
    unsub_err(&r, r.unsub_requests, r.client_id, "errs-unsub", ack, NULL, err, sizeof(err));
    expect("unsubscribe, the same again", err, E_SUB);

    close_err(&r, "", err, sizeof(err));
    /* NSS: closeClient("") -> not found. */
    expect("close, no client ID", err, E_UNKCLIENT);
    close_err(&r, "errs-never-connected", err, sizeof(err));
    expect("close, client ID never connected", err, E_UNKCLIENT);
    hstan_raw_close(&other);
    hstan_raw_close(&r);
}

/* -mc 1 -msu 1: the limits' errors. */
static void test_limit_errors(void)
{
    struct hserver s;
    const char *args[] = {"--store", "MEMORY", "-mc", "1", "-msu", "1", NULL};
    CHECK(harness_server_start(&s, NULL, args) == 0);
    struct hstan_raw r;
    raw_connect_or_die(&r, &s, "errs-lim");
    char err[512];
    struct subreq sr = good_sub(&r, "only");
    subscribe_err(&r, &sr, NULL, 0, err, sizeof(err));
    expect("subscribe, first channel", err, "");
    publish_err(&r, r.client_id, "g1", "only", "only", err, sizeof(err));
    expect("publish, first channel", err, "");
    publish_err(&r, r.client_id, "g2", "second", "second", err, sizeof(err));
    expect("publish, second channel with -mc 1", err, E_MAXCHAN);
    sr = good_sub(&r, "third");
    subscribe_err(&r, &sr, NULL, 0, err, sizeof(err));
    expect("subscribe, second channel with -mc 1", err, E_MAXCHAN);
    sr = good_sub(&r, "only");
    sr.inbox = "_INBOX.errs.lim2";
    subscribe_err(&r, &sr, NULL, 0, err, sizeof(err));
    expect("subscribe, second subscription with -msu 1", err, E_MAXSUBS);
    hstan_raw_close(&r);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

static void test_error_summary(void)
{
    fprintf(stderr, "   %d mismatch(es) with the expected error strings\n", mismatches);
    CHECK_EQ_INT(mismatches, 0);
}

/* ---- 2. malformed payloads on every subject ---- */

struct payload {
    const char *name;
    unsigned char *data;
    size_t len;
    bool malformed; /* not a decodable protobuf (the empty payload is: all defaults) */
};

/* Garbage that cannot decode: random bytes whose first tag has wire type 7. */
static void make_garbage(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (unsigned char)(seed >> 16);
    }
    b[0] = (1 << 3) | 7;
}

static void check_server_serves(const char *label)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "errs-after");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_AUTO);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "errs-after", NULL, &rx, NULL) == NATS_OK);
    CHECK(hstan_pub(sc, "errs-after", label) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx, 0).data, label);
    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    CHECK(stanConnection_Close(sc) == NATS_OK);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
}

/* Valid requests of each type, to be truncated (each ends with a string field of 20+ bytes, so
 * cutting 3 bytes leaves a length that runs past the end). */
struct valid_reqs {
    struct hstan_pb conn, pub, sub, unsub, close, ping, ackm;
};

static void make_valid_reqs(struct valid_reqs *v, struct hstan_raw *r, const char *ack)
{
    connect_req(&v->conn, "errs-truncated", "_INBOX.errs.truncated.hb");
    pub_req(&v->pub, r->client_id, "guid-truncated", "errs-garbage", "a payload of 20+ bytes");
    struct subreq ts = good_sub(r, "errs-garbage");
    ts.inbox = "_INBOX.errs.truncated.delivery";
    v->sub.n = 0;
    hstan_pb_int(&v->sub, 5, 16);
    hstan_pb_int(&v->sub, 6, 30);
    hstan_pb_str(&v->sub, 1, r->client_id);
    hstan_pb_str(&v->sub, 2, ts.subject);
    hstan_pb_str(&v->sub, 4, ts.inbox);
    v->unsub.n = 0;
    hstan_pb_str(&v->unsub, 1, r->client_id);
    hstan_pb_str(&v->unsub, 2, "errs-garbage");
    hstan_pb_str(&v->unsub, 3, ack);
    v->close.n = 0;
    hstan_pb_str(&v->close, 1, "errs-garbage-client-id");
    v->ping.n = 0;
    hstan_pb_str(&v->ping, 1, r->conn_id);
    v->ackm.n = 0;
    hstan_pb_int(&v->ackm, 2, 1);
    hstan_pb_str(&v->ackm, 1, "errs-garbage-channel");
}

struct target {
    const char *name, *subject;
    struct hstan_pb *valid;
    int err_field;       /* the response's error field; 0: no response expected */
    const char *err_nss; /* NSS's answer to an undecodable request (NULL: ignored) */
};

/* Sends one payload to one target and checks the answer against NSS's (expect counts the
 * mismatches). */
static void send_payload(struct hstan_raw *r, const struct target *tg, const struct payload *pl)
{
    char what[128], err[512];
    snprintf(what, sizeof(what), "%s, %s", tg->name, pl->name);
    if (tg->err_field == 0) {
        CHECK(natsConnection_Publish(r->nc, tg->subject, pl->data, (int)pl->len) == NATS_OK);
        CHECK(natsConnection_FlushTimeout(r->nc, T_MS) == NATS_OK);
        fprintf(stderr, "   ok   %-48s (no response expected)\n", what);
        return;
    }
    natsMsg *reply = NULL;
    natsStatus st = hstan_raw_request(r, tg->subject, pl->data, pl->len, REQ_MS, &reply);
    if (st != NATS_OK) {
        /* Ignoring it is allowed only where NSS ignores it too (pings). */
        if (tg->err_nss) {
            snprintf(err, sizeof(err), "<no response: %s>", natsStatus_GetText(st));
            expect(what, err, tg->err_nss);
        } else {
            fprintf(stderr, "   ok   %-48s (ignored)\n", what);
        }
        return;
    }
    bool dec = hstan_pb_get_str(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply),
                                tg->err_field, err, sizeof(err));
    natsMsg_Destroy(reply);
    if (!dec) snprintf(err, sizeof(err), "<undecodable response>");
    if (pl->malformed && tg->err_nss)
        expect(what, err, tg->err_nss);
    else if (err[0] == '\0' && tg->err_field != F_PING)
        expect(what, err, "<an error>");
    else
        fprintf(stderr, "   ok   %-48s \"%s\"\n", what, err);
}

static void test_malformed_payloads(void)
{
    struct hstan_raw r;
    raw_connect_or_die(&r, &srv, "errs-garbage");
    char err[512], ack[256];
    struct subreq sr = good_sub(&r, "errs-garbage");
    sr.inbox = "_INBOX.errs.garbage";
    sr.max_inflight = 1;
    natsSubscription *dsub = NULL;
    CHECK(natsConnection_SubscribeSync(&dsub, r.nc, sr.inbox) == NATS_OK);
    subscribe_err(&r, &sr, ack, sizeof(ack), err, sizeof(err));
    CHECK_EQ_STR(err, "");
    CHECK(ack[0] != '\0');

    struct valid_reqs v;
    make_valid_reqs(&v, &r, ack);
    char pub_subject[512], discover[128];
    snprintf(pub_subject, sizeof(pub_subject), "%s.foo", r.pub_prefix);
    snprintf(discover, sizeof(discover), "_STAN.discover.%s", HSTAN_CLUSTER);
    struct target targets[] = {
        {"discover", discover, &v.conn, F_CONNECT, E_CONNREQ},
        {"publish", pub_subject, &v.pub, F_PUBACK, E_PUBREQ},
        {"subscribe", r.sub_requests, &v.sub, F_SUBRESP, E_SUBREQ},
        {"unsubscribe", r.unsub_requests, &v.unsub, F_SUBRESP, E_UNSUBREQ},
        {"sub close", r.sub_close_requests, &v.unsub, F_SUBRESP, E_UNSUBREQ},
        {"close", r.close_requests, &v.close, F_CLOSE, E_CLOSEREQ},
        {"pings", r.ping_requests, &v.ping, F_PING, NULL},
        {"ack inbox", ack, &v.ackm, 0, NULL},
    };

    static unsigned char big[100 * 1024];
    memset(big, 0xff, sizeof(big));
    unsigned char garbage[200];
    for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        struct target *tg = &targets[t];
        make_garbage(garbage, sizeof(garbage), (unsigned)t + 1);
        CHECK(tg->valid->n > 3);
        struct payload pl[] = {
            {"random garbage", garbage, sizeof(garbage), true},
            {"truncated", tg->valid->b, tg->valid->n - 3, true},
            {"empty", NULL, 0, false},
            {"100 KB of 0xff", big, sizeof(big), true},
        };
        for (size_t k = 0; k < sizeof(pl) / sizeof(pl[0]); k++)
            send_payload(&r, tg, &pl[k]);
        CHECK(harness_port_accepts(srv.port));
    }
    /* The live subscription still works after garbage on its ack inbox: a message arrives. */
    char perr[256];
    publish_err(&r, r.client_id, "after-garbage", "errs-garbage", "errs-garbage", perr,
                sizeof(perr));
    CHECK_EQ_STR(perr, "");
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, dsub, T_MS) == NATS_OK);
    uint64_t seq = 0;
    CHECK(hstan_pb_get_varint(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 1, &seq));
    CHECK(seq >= 1);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(dsub);
    hstan_raw_close(&r);

    check_server_serves("still serving");
}

/* ---- 3. absent and extreme fields (the sanitized build died on these) ---- */

/* A protocol-0 client (as the first STAN clients): no connID, no ping settings. It is registered
 * and served (its absent connID was copied with memcpy from NULL). */
static void test_connect_without_conn_id(void)
{
    struct hstan_raw r;
    raw_connect_or_die(&r, &srv, "errs-proto0-helper");
    struct hstan_pb p = {.n = 0};
    hstan_pb_str(&p, 1, "errs-proto0");
    hstan_pb_str(&p, 2, "_INBOX.errs.proto0.hb");
    char subject[128], err[512];
    snprintf(subject, sizeof(subject), "_STAN.discover.%s", HSTAN_CLUSTER);
    request_err(&r, subject, p.b, p.n, F_CONNECT, err, sizeof(err));
    expect("connect, protocol 0 (no connID)", err, "");
    publish_err(&r, "errs-proto0", "g-proto0", "errs-proto0", "errs-proto0", err, sizeof(err));
    expect("publish of a protocol-0 client", err, "");
    close_err(&r, "errs-proto0", err, sizeof(err));
    expect("close of a protocol-0 client", err, "");
    CHECK(harness_port_accepts(srv.port));
    hstan_raw_close(&r);
    check_server_serves("after protocol 0");
}

/* startTimeDelta at the ends of int64 (now - delta overflowed): the largest reaches back before
 * the first message, the most negative lies in the future (new messages only). */
static void test_extreme_start_time_delta(void)
{
    struct hstan_raw r;
    raw_connect_or_die(&r, &srv, "errs-delta");
    char err[512];
    publish_err(&r, r.client_id, "g-delta", "errs-delta", "errs-delta", err, sizeof(err));
    expect("publish before the time-delta subscriptions", err, "");
    const int64_t deltas[] = {INT64_MAX, INT64_MIN, INT64_MIN + 1, -1};
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        char inbox[64], what[96];
        snprintf(inbox, sizeof(inbox), "_INBOX.errs.delta.%zu", i);
        natsSubscription *dsub = NULL;
        CHECK(natsConnection_SubscribeSync(&dsub, r.nc, inbox) == NATS_OK);
        CHECK(natsConnection_Flush(r.nc) == NATS_OK);
        struct hstan_pb p = {.n = 0};
        hstan_pb_str(&p, 1, r.client_id);
        hstan_pb_str(&p, 2, "errs-delta");
        hstan_pb_str(&p, 4, inbox);
        hstan_pb_int(&p, 5, 16);
        hstan_pb_int(&p, 6, 30);
        hstan_pb_int(&p, 10, 2); /* TimeDeltaStart */
        hstan_pb_int(&p, 12, deltas[i]);
        request_err(&r, r.sub_requests, p.b, p.n, F_SUBRESP, err, sizeof(err));
        snprintf(what, sizeof(what), "subscribe, startTimeDelta %lld", (long long)deltas[i]);
        expect(what, err, "");
        if (deltas[i] == INT64_MAX) { /* from the start: the message is delivered */
            natsMsg *m = NULL;
            CHECK(natsSubscription_NextMsg(&m, dsub, T_MS) == NATS_OK);
            uint64_t seq = 0;
            CHECK(
                hstan_pb_get_varint(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 1, &seq));
            CHECK_EQ_INT(seq, 1);
            natsMsg_Destroy(m);
        }
        natsSubscription_Destroy(dsub);
    }
    CHECK(harness_port_accepts(srv.port));
    hstan_raw_close(&r);
    check_server_serves("after extreme time deltas");
}

/* A max_age of centuries (its nanoseconds overflowed int64 in the once-a-second expiry): the
 * message stays, the server lives. Nothing is observable of a tick that expires nothing, so the
 * test lets two of them pass. */
static void test_extreme_max_age(void)
{
    /* 1e11 seconds (a plain number is seconds): 1e14 ms, 1e20 ns. */
    const char *args[] = {"--store", "MEMORY", "-ma", "100000000000", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "errs-max-age");
    CHECK(hstan_pub(sc, "errs-max-age", "kept") == NATS_OK);
    int64_t until = harness_now_ms() + 2200;
    while (harness_now_ms() < until && harness_port_accepts(s.port))
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    CHECK(harness_port_accepts(s.port));
    struct hstan_rx rx;
    hstan_rx_init(&rx, 4, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "errs-max-age", NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx, 0).data, "kept");
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

int main(void)
{
    const char *args[] = {"--store", "MEMORY", NULL};
    CHECK(harness_server_start(&srv, NULL, args) == 0);
    HSTAN_RUN(test_connect_errors);
    HSTAN_RUN(test_publish_errors);
    HSTAN_RUN(test_subscribe_errors);
    HSTAN_RUN(test_unsubscribe_and_close_errors);
    HSTAN_RUN(test_limit_errors);
    HSTAN_RUN(test_malformed_payloads);
    HSTAN_RUN(test_connect_without_conn_id);
    HSTAN_RUN(test_extreme_start_time_delta);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGINT), 0);
    HSTAN_RUN(test_error_summary);
    HSTAN_RUN(test_extreme_max_age);
    nats_CloseAndWait(5000);
    return test_summary();
}

/* Fast hand-over, in-process (fake clock): a queue member whose NATS connection closes, or whose
 * client stops answering heartbeats, keeps its unacked messages for handover_grace; then, unless
 * it came back, they go to another member at once, flagged redelivered, long before AckWait
 * (10 minutes here). The member's inbox is listened to by a real TCP client of the fixture's
 * server (a raw socket speaking NATS), so closing it is the TCP drop the server sees. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "engine_fixture.h"
#include "protocol.pb-c.h"
#include "stan_ctx.h" /* the engine's store, to make its next commit fail */
#include "test.h"

#define MS INT64_C(1000000)
#define ACK_WAIT_S 600

/* ---- a NATS client on a socket, listening on one subject ---- */

typedef struct interest_arg {
    ef_t *f;
    const char *subject;
    size_t n;
} interest_arg_t;

static bool interest_is(void *arg)
{
    interest_arg_t *a = arg;
    return server_interest(a->f->srv, a->subject, strlen(a->subject)) == a->n;
}

/* Waits until n subscriptions listen on subject. */
static void wait_interest(ef_t *f, const char *subject, size_t n)
{
    interest_arg_t a = {f, subject, n};
    ef_run_until(f, interest_is, &a);
}

/* Connects to the fixture's server and subscribes subject; returns once the server has it. */
static int tcp_listen(ef_t *f, const char *subject)
{
    size_t before = server_interest(f->srv, subject, strlen(subject));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(server_port(f->srv))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    char ops[512];
    int n = snprintf(ops, sizeof ops, "CONNECT {\"verbose\":false}\r\nSUB %s 1\r\n", subject);
    CHECK(send(fd, ops, (size_t)n, MSG_NOSIGNAL) == n);
    wait_interest(f, subject, before + 1);
    return fd;
}

/* The client's process dies: the server sees the TCP connection close. */
static void tcp_drop(ef_t *f, int fd, const char *subject)
{
    size_t before = server_interest(f->srv, subject, strlen(subject));
    CHECK(close(fd) == 0);
    wait_interest(f, subject, before - 1);
}

/* ---- the scene: members a (client c1) and b (client c2); a holds two unacked messages ---- */

typedef struct scene {
    ef_t f;
    ef_sub_t *a, *b;
    uint64_t held[2];
    int fd; /* the TCP client behind a's inbox */
} scene_t;

/* grace_ms: handover_grace; durable: a durable queue group; plain: plain subscriptions. */
static void scene_start(scene_t *sc, int64_t grace_ms, const char *durable, bool plain)
{
    ef_t *f = &sc->f;
    ef_init(f);
    f->cfg.handover_grace_ms = grace_ms;
    f->cfg.hb_interval_ms = 10 * 1000;
    f->cfg.hb_timeout_ms = 2 * 1000;
    ef_start(f);
    CHECK_EQ_STR(ef_connect(f, "c1"), "");
    CHECK_EQ_STR(ef_connect(f, "c2"), "");
    ef_hb_listen(f, "c2", true);
    ef_sub_opts_t o = {.qgroup = plain ? NULL : "q", .durable = durable, .ack_wait_s = ACK_WAIT_S};
    sc->a = ef_subscribe(f, "c1", "jobs", &o);
    sc->b = ef_subscribe(f, "c2", "jobs", &o);
    CHECK(sc->a && sc->b);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_STR(ef_publish(f, "c1", "jobs", "job"), "");
    ef_settle(f);
    size_t mine = plain ? 4 : 2;
    CHECK_EQ_INT(sc->a->inbox->n, mine);
    CHECK_EQ_INT(sc->b->inbox->n, mine);
    for (size_t i = 0; i < mine; i++)
        ef_ack(f, sc->b, ef_msg(sc->b, i)->seq);
    for (size_t i = 2; i < mine; i++) /* a keeps two unacked */
        ef_ack(f, sc->a, ef_msg(sc->a, i)->seq);
    sc->held[0] = ef_msg(sc->a, 0)->seq;
    sc->held[1] = ef_msg(sc->a, 1)->seq;
    /* a's inbox moves to a TCP client: the fixture's in-process listener goes. */
    sc->fd = tcp_listen(f, sc->a->inbox->subject);
    ef_inbox_close(sc->a->inbox);
    wait_interest(f, sc->a->inbox->subject, 1);
}

/* a still holds both messages; b got nothing more. */
static void check_nothing_moved(scene_t *sc, size_t b_had)
{
    CHECK_EQ_INT(ef_sub_info(&sc->f, sc->a).inflight_msgs, 2);
    CHECK_EQ_INT(sc->b->inbox->n, b_had);
    CHECK_EQ_INT(ef_sub_info(&sc->f, sc->b).redelivered_total, 0);
}

/* Both of a's messages reached b, flagged redelivered, counted as b's redeliveries. */
static void check_handed_over(scene_t *sc)
{
    ef_wait_msgs(sc->b->inbox, 4);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(ef_count_seq(sc->b, sc->held[i]), 1);
        const ef_msg_t *m = ef_msg(sc->b, 2 + (size_t)i);
        CHECK(m->seq == sc->held[0] || m->seq == sc->held[1]);
        CHECK(m->redelivered);
    }
    CHECK_EQ_INT(sc->b->inbox->n, 4);
    CHECK_EQ_INT(ef_sub_info(&sc->f, sc->a).inflight_msgs, 0);
    stan_sub_info_t ib = ef_sub_info(&sc->f, sc->b);
    CHECK_EQ_INT(ib.inflight_msgs, 2);
    CHECK_EQ_INT(ib.redelivered_total, 2);
    /* b's acks for them are honoured. */
    ef_ack(&sc->f, sc->b, sc->held[0]);
    ef_ack(&sc->f, sc->b, sc->held[1]);
    CHECK_EQ_INT(ef_sub_info(&sc->f, sc->b).pending_msgs, 0);
}

/* ---- connection closed ---- */

static void connection_closed(const char *durable)
{
    scene_t sc;
    scene_start(&sc, 2000, durable, false);
    tcp_drop(&sc.f, sc.fd, sc.a->inbox->subject);
    /* Nothing moves before the grace ends... */
    ef_advance(&sc.f, 2000 * MS - 1 * MS);
    check_nothing_moved(&sc, 2);
    /* ...and everything right after, 10 minutes before AckWait. */
    ef_advance(&sc.f, 2 * MS);
    check_handed_over(&sc);
    /* The gone member is still subscribed (its client may reconnect): it just holds nothing. */
    CHECK(ef_sub_listed(&sc.f, "jobs", sc.a->inbox->subject));
    ef_done(&sc.f);
}

static void test_connection_closed(void)
{
    connection_closed(NULL);
}

static void test_connection_closed_durable_group(void)
{
    connection_closed("dur");
}

static void test_grace_zero_hands_over_at_once(void)
{
    scene_t sc;
    scene_start(&sc, 0, NULL, false);
    tcp_drop(&sc.f, sc.fd, sc.a->inbox->subject);
    /* No clock move: the engine's own timer does it on the next loop turn. */
    ef_settle(&sc.f);
    check_handed_over(&sc);
    ef_done(&sc.f);
}

static void test_reconnect_within_grace_keeps_messages(void)
{
    scene_t sc;
    scene_start(&sc, 2000, NULL, false);
    tcp_drop(&sc.f, sc.fd, sc.a->inbox->subject);
    ef_advance(&sc.f, 1000 * MS);
    /* Its client reconnects and subscribes its inbox again (as libnats does) within the grace. */
    int fd = tcp_listen(&sc.f, sc.a->inbox->subject);
    ef_advance(&sc.f, 5000 * MS);
    check_nothing_moved(&sc, 2);
    /* Gone again for good: a new grace, then the hand-over. */
    tcp_drop(&sc.f, fd, sc.a->inbox->subject);
    ef_advance(&sc.f, 1999 * MS);
    check_nothing_moved(&sc, 2);
    ef_advance(&sc.f, 2 * MS);
    check_handed_over(&sc);
    ef_done(&sc.f);
}

static void test_no_other_member_online(void)
{
    scene_t sc;
    scene_start(&sc, 2000, NULL, false);
    ef_inbox_close(sc.b->inbox); /* b's client is gone too */
    tcp_drop(&sc.f, sc.fd, sc.a->inbox->subject);
    ef_advance(&sc.f, 5000 * MS);
    check_nothing_moved(&sc, 2);
    ef_done(&sc.f);
}

static void test_plain_subscriptions_unaffected(void)
{
    scene_t sc;
    scene_start(&sc, 2000, NULL, true);
    tcp_drop(&sc.f, sc.fd, sc.a->inbox->subject);
    ef_advance(&sc.f, 60 * 1000 * MS);
    check_nothing_moved(&sc, 4);
    ef_done(&sc.f);
}

/* ---- a failed commit ---- */

static bool commit_failed(void *arg)
{
    stan_store_info_t si;
    stan_get_store_info(arg, &si);
    return !si.writable;
}

/* The batch with the hand-over fails: memory says b holds the messages, and so must the disk
 * once a batch commits (a restart shows what the disk says; nobody listens on b's inbox then,
 * so nothing could move them again). After the grace, or (a grace longer than AckWait) by the
 * delivery pass's own hand-over once AckWait is over. */
static void failed_commit(int64_t grace_ms, int64_t hand_over_at_ms)
{
    scene_t sc;
    scene_start(&sc, grace_ms, NULL, false);
    tcp_drop(&sc.f, sc.fd, sc.a->inbox->subject);
    store_inject_enospc(sc.f.st->store, 1);
    clock_fake_advance(hand_over_at_ms * MS);
    stan_run_due(sc.f.st);
    ef_run_until(&sc.f, commit_failed, sc.f.st);
    ef_settle(&sc.f);
    check_handed_over(&sc);
    ef_inbox_close(sc.b->inbox);
    ef_restart(&sc.f);
    CHECK_EQ_INT(ef_sub_info(&sc.f, sc.a).inflight_msgs, 0);
    CHECK_EQ_INT(ef_sub_info(&sc.f, sc.b).inflight_msgs, 0); /* b acked them */
    ef_done(&sc.f);
}

static void test_failed_commit(void)
{
    failed_commit(2000, 2001);
}

static void test_failed_commit_ack_wait_hand_over(void)
{
    failed_commit(3600 * 1000, ACK_WAIT_S * 1000 + 1);
}

/* ---- heartbeats: a client whose connection stays up but which no longer answers ---- */

/* c1 listens on its heartbeat inbox without answering (its process hangs); the first heartbeat
 * (at 10 s) goes unanswered at 12 s: the grace starts. */
static ef_hb_t *hang_c1(scene_t *sc)
{
    ef_hb_t *hb = ef_hb_listen(&sc->f, "c1", false);
    ef_advance(&sc->f, 10 * 1000 * MS);
    CHECK_EQ_INT(hb->received, 1);
    ef_advance(&sc->f, 2 * 1000 * MS);
    return hb;
}

static void test_heartbeat_unanswered(void)
{
    scene_t sc;
    scene_start(&sc, 2000, NULL, false);
    hang_c1(&sc);
    ef_advance(&sc.f, 1999 * MS);
    check_nothing_moved(&sc, 2);
    ef_advance(&sc.f, 2 * MS);
    check_handed_over(&sc);
    CHECK(ef_client_exists(&sc.f, "c1")); /* far from hb_fail_count: still registered */
    /* While c1 leaves heartbeats unanswered, new jobs go to b only, though a holds nothing. */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_STR(ef_publish(&sc.f, "c2", "jobs", "job"), "");
    ef_wait_msgs(sc.b->inbox, 7);
    ef_settle(&sc.f);
    CHECK_EQ_INT(sc.b->inbox->n, 7);
    CHECK_EQ_INT(ef_sub_info(&sc.f, sc.a).inflight_msgs, 0);
    CHECK_EQ_INT(ef_sub_info(&sc.f, sc.a).backlog_msgs, 0);
    CHECK_EQ_INT(close(sc.fd), 0);
    ef_done(&sc.f);
}

static void test_heartbeat_answered_again_within_grace(void)
{
    scene_t sc;
    scene_start(&sc, 15 * 1000, NULL, false);
    ef_hb_t *hb = hang_c1(&sc);
    /* It answers the next heartbeat (at 20 s), within the grace (until 27 s). */
    hb->answer = true;
    ef_advance(&sc.f, 8 * 1000 * MS);
    CHECK_EQ_INT(hb->received, 2);
    ef_advance(&sc.f, 20 * 1000 * MS);
    check_nothing_moved(&sc, 2);
    CHECK_EQ_INT(close(sc.fd), 0);
    ef_done(&sc.f);
}

int main(void)
{
    TEST_RUN(test_connection_closed);
    TEST_RUN(test_connection_closed_durable_group);
    TEST_RUN(test_grace_zero_hands_over_at_once);
    TEST_RUN(test_reconnect_within_grace_keeps_messages);
    TEST_RUN(test_no_other_member_online);
    TEST_RUN(test_plain_subscriptions_unaffected);
    TEST_RUN(test_failed_commit);
    TEST_RUN(test_failed_commit_ack_wait_hand_over);
    TEST_RUN(test_heartbeat_unanswered);
    TEST_RUN(test_heartbeat_answered_again_within_grace);
    return test_summary();
}

/* it_stan_restart: state that must outlive a crash or a full disk, and channels that go away.
 *
 * - The redelivery count (MsgProto.redeliveryCount, field 7) is persisted: after a kill -9 and a
 *   restart, an unacked message comes back with the count it had reached plus one (NSS resets it,
 *   stan-reference.md §3 item 2; this project keeps it). Seen through a raw NATS subscription on
 *   the delivery inbox, since libnats has no getter for the count.
 * - A full disk (a 4 MiB tmpfs, when this process may mount one): a publish is refused with an
 *   error, the server keeps serving, publishing works again once space is freed, and every acked
 *   message is there after a restart.
 * - max_inactivity: a channel with no subscription and no new message disappears with its
 *   messages; one with a subscription stays. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 5000
#define T_LONG_MS 10000

/* ---- raw MsgProto deliveries ---- */

struct delivery {
    uint64_t seq, count;
    bool redelivered;
    char data[64];
};

/* The next MsgProto on a raw NATS subscription, decoded. */
static bool next_delivery(natsSubscription *sub, int timeout_ms, struct delivery *d)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, sub, timeout_ms) != NATS_OK) return false;
    const void *p = natsMsg_GetData(m);
    size_t n = (size_t)natsMsg_GetDataLength(m);
    uint64_t redelivered = 0;
    bool ok = hstan_pb_get_varint(p, n, 1, &d->seq) && hstan_pb_get_varint(p, n, 6, &redelivered) &&
              hstan_pb_get_varint(p, n, 7, &d->count) &&
              hstan_pb_get_str(p, n, 4, d->data, sizeof(d->data));
    d->redelivered = redelivered != 0;
    natsMsg_Destroy(m);
    CHECK(ok);
    fprintf(stderr, "   delivery: seq %llu \"%s\" redelivered=%d redeliveryCount=%llu\n",
            (unsigned long long)d->seq, d->data, d->redelivered, (unsigned long long)d->count);
    return true;
}

/* A synchronous raw publish; CHECKs that the PubAck has no error. */
static void raw_publish(struct hstan_raw *r, const char *channel, const char *guid,
                        const char *data)
{
    struct hstan_pb p = {.n = 0};
    hstan_pb_str(&p, 1, r->client_id);
    hstan_pb_str(&p, 2, guid);
    hstan_pb_str(&p, 3, channel);
    hstan_pb_str(&p, 5, data);
    char subject[512], err[256];
    snprintf(subject, sizeof(subject), "%s.%s", r->pub_prefix, channel);
    natsMsg *reply = NULL;
    CHECK(hstan_raw_request(r, subject, p.b, p.n, T_MS, &reply) == NATS_OK);
    CHECK(hstan_pb_get_str(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 2, err,
                           sizeof(err)));
    natsMsg_Destroy(reply);
    CHECK_EQ_STR(err, "");
}

static void answer_hb(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    if (natsMsg_GetReply(msg)) natsConnection_Publish(nc, natsMsg_GetReply(msg), NULL, 0);
    natsMsg_Destroy(msg);
}

/* Subscribes r as the durable "dur" on channel "redeliv", delivering to inbox: manual ack (this
 * client never acks), AckWait 1 s, from the first message. The ack inbox goes to ack. */
static void subscribe_durable(struct hstan_raw *r, const char *inbox, char *ack, size_t ack_len)
{
    char err[256];
    struct hstan_pb p = {.n = 0};
    hstan_pb_str(&p, 1, r->client_id);
    hstan_pb_str(&p, 2, "redeliv");
    hstan_pb_str(&p, 4, inbox);
    hstan_pb_int(&p, 5, 10);
    hstan_pb_int(&p, 6, 1);
    hstan_pb_str(&p, 7, "dur");
    hstan_pb_int(&p, 10, 4); /* First */
    natsMsg *reply = NULL;
    CHECK(hstan_raw_request(r, r->sub_requests, p.b, p.n, T_MS, &reply) == NATS_OK);
    const void *rd = natsMsg_GetData(reply);
    size_t rn = (size_t)natsMsg_GetDataLength(reply);
    CHECK(hstan_pb_get_str(rd, rn, 3, err, sizeof(err)));
    CHECK(hstan_pb_get_str(rd, rn, 2, ack, ack_len));
    natsMsg_Destroy(reply);
    CHECK_EQ_STR(err, "");
    CHECK(ack[0] != '\0');
}

/* After a restart: the client is still registered (clients are persisted), so the same inboxes
 * on a new NATS connection get its heartbeats and the durable's redeliveries (on *dsub). */
static void reattach(struct hstan_raw *r, struct hserver *s, const char *inbox,
                     natsSubscription **dsub)
{
    CHECK(hnats_connect(s, &r->nc) == NATS_OK);
    CHECK(natsConnection_Subscribe(&r->hb_sub, r->nc, r->hb_inbox, answer_hb, NULL) == NATS_OK);
    CHECK(natsConnection_SubscribeSync(dsub, r->nc, inbox) == NATS_OK);
    CHECK(natsConnection_Flush(r->nc) == NATS_OK);
}

static void test_redelivery_count_survives_kill9(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    const char *args[] = {"--store", "FILE", "--dir", d.data, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);

    struct hstan_raw r;
    char err[256], ack[256];
    CHECK(hstan_raw_connect(&r, &s, "redeliv", true, err, sizeof(err)) == NATS_OK);
    CHECK_EQ_STR(err, "");
    const char *inbox = "_INBOX.redeliv.delivery";
    natsSubscription *dsub = NULL;
    CHECK(natsConnection_SubscribeSync(&dsub, r.nc, inbox) == NATS_OK);
    CHECK(natsConnection_Flush(r.nc) == NATS_OK);

    subscribe_durable(&r, inbox, ack, sizeof(ack));

    raw_publish(&r, "redeliv", "g-1", "poison");
    /* First delivery, then two redeliveries (one per AckWait). */
    struct delivery dv;
    CHECK(next_delivery(dsub, T_MS, &dv));
    CHECK(dv.seq == 1 && !dv.redelivered && dv.count == 0);
    CHECK_EQ_STR(dv.data, "poison");
    uint64_t want = 1;
    int64_t deadline = harness_now_ms() + T_LONG_MS;
    while (want <= 2) {
        CHECK(next_delivery(dsub, (int)(deadline - harness_now_ms()), &dv));
        CHECK(dv.seq == 1 && dv.redelivered);
        CHECK_EQ_INT(dv.count, want);
        want++;
    }
    /* Everything seen so far is committed once a later publish is acknowledged. */
    raw_publish(&r, "barrier", "g-barrier", "barrier");
    CHECK(harness_server_halt(&s, SIGKILL) == 128 + SIGKILL);
    /* A redelivery that raced with the kill would show here: then the count to expect is one
     * more (it may or may not have been committed, so only the first case is told apart). */
    natsMsg *late = NULL;
    while (natsSubscription_NextMsg(&late, dsub, 0) == NATS_OK) {
        fprintf(stderr, "   (a delivery arrived just before the kill)\n");
        natsMsg_Destroy(late);
        want++;
    }
    natsSubscription_Destroy(dsub);
    natsSubscription_Destroy(r.hb_sub);
    r.hb_sub = NULL;
    natsConnection_Close(r.nc);
    natsConnection_Destroy(r.nc);

    CHECK(harness_server_restart(&s, args) == 0);
    reattach(&r, &s, inbox, &dsub);
    CHECK(next_delivery(dsub, T_LONG_MS, &dv));
    CHECK(dv.seq == 1 && dv.redelivered);
    CHECK_EQ_STR(dv.data, "poison");
    if (dv.count != want)
        fprintf(stderr, "   redeliveryCount after restart: %llu, want %llu (NSS would say 1)\n",
                (unsigned long long)dv.count, (unsigned long long)want);
    CHECK_EQ_INT(dv.count, want);
    /* And it keeps counting. */
    CHECK(next_delivery(dsub, T_LONG_MS, &dv));
    CHECK(dv.seq == 1 && dv.redelivered);
    CHECK_EQ_INT(dv.count, want + 1);

    natsSubscription_Destroy(dsub);
    hstan_raw_close(&r);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    hstan_dir_remove(&d);
}

/* ---- full disk ---- */

static char mnt_dir[PATH_MAX / 2];
static bool mounted;

static void unmount_tmpfs(void)
{
    if (!mounted) return;
    if (umount2(mnt_dir, 0) != 0 && umount2(mnt_dir, MNT_DETACH) != 0)
        fprintf(stderr, "umount %s: %s\n", mnt_dir, strerror(errno));
    mounted = false;
    rmdir(mnt_dir);
}

/* Writes a file of `size` bytes (or as many as fit). Returns the bytes written. */
static long long write_filler(const char *path, long long size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    static char chunk[64 * 1024];
    memset(chunk, 'f', sizeof(chunk));
    long long done = 0;
    while (done < size) {
        size_t n = size - done < (long long)sizeof(chunk) ? (size_t)(size - done) : sizeof(chunk);
        ssize_t w = write(fd, chunk, n);
        if (w <= 0) break;
        done += w;
    }
    close(fd);
    return done;
}

static long long free_bytes(const char *path)
{
    struct statvfs v;
    CHECK(statvfs(path, &v) == 0);
    return (long long)v.f_bavail * (long long)v.f_frsize;
}

enum { BIG = 64 * 1024 };

static natsStatus publish_big(stanConnection *sc, int i)
{
    static char buf[BIG];
    memset(buf, 'a' + i % 26, sizeof(buf));
    snprintf(buf, 32, "big-%06d", i);
    buf[strlen(buf)] = ' ';
    return stanConnection_Publish(sc, "full", buf, (int)sizeof(buf));
}

/* The status of GET path on the monitoring port. */
static int http_status(int port, const char *path)
{
    char *body = NULL;
    int status = hhttp_get(port, path, &body);
    free(body);
    return status;
}

/* Publishes 64 KiB messages on "full" until one fails; CHECKs that the failure came before 100
 * messages, as an error (not a timeout). Returns the count acked. */
static int publish_until_full(stanConnection *sc)
{
    int acked = 0;
    natsStatus st = NATS_OK;
    while (acked < 100 && (st = publish_big(sc, acked + 1)) == NATS_OK)
        acked++;
    const char *e = nats_GetLastError(NULL);
    fprintf(stderr, "   %d messages of 64 KiB acked, then: %s (%s)\n", acked,
            natsStatus_GetText(st), e ? e : "");
    CHECK(st != NATS_OK);      /* the disk filled up before 100 */
    CHECK(st != NATS_TIMEOUT); /* refused with an error, not left unanswered */
    CHECK(e != NULL && e[0] != '\0');
    CHECK(acked > 0);
    return acked;
}

/* Still up and serving on a full disk: connect, subscribe and receive what is stored. Returns
 * the reader's connection (the test closes it once there is space again). */
static stanConnection *check_serving_when_full(struct hserver *s)
{
    CHECK(harness_port_accepts(s->port));
    stanConnection *sc2 = hstan_connect_or_die(s, "full-reader");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    natsStatus st = hstan_sub(&sub, sc2, "full-other", NULL, &rx, o);
    stanSubOptions_Destroy(o);
    if (st != NATS_OK)
        fprintf(stderr, "   subscribe on a full disk: %s\n", nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx, 0).data, "before");
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    return sc2;
}

/* Space again (the filler removed): publishing resumes, /healthz says 200 again once commits
 * have succeeded for a few seconds, and 3 more publishes go through. Returns the count acked. */
static int resume_after_space(stanConnection *sc, const char *filler, int mport, int acked)
{
    CHECK(unlink(filler) == 0);
    int64_t t0 = harness_now_ms(), deadline = t0 + T_LONG_MS;
    while (publish_big(sc, acked + 1) != NATS_OK) {
        CHECK(harness_now_ms() < deadline);
        poll(NULL, 0, 100);
    }
    acked++;
    fprintf(stderr, "   publishing again %lld ms after the space came back\n",
            (long long)(harness_now_ms() - t0));
    while (http_status(mport, "/healthz") != 200) {
        CHECK(harness_now_ms() < deadline + T_LONG_MS);
        poll(NULL, 0, 100);
    }
    for (int k = 0; k < 3; k++, acked++)
        CHECK(publish_big(sc, acked + 1) == NATS_OK);
    return acked;
}

/* After a clean restart: every acked message is there, in order, nothing else. */
static void check_full_after_restart(struct hserver *s, int acked)
{
    stanConnection *sc = hstan_connect_or_die(s, "full-after");
    struct hstan_rx rx;
    hstan_rx_init(&rx, acked + 8, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "full", NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_pub(sc, "full", "marker") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, acked + 1, T_LONG_MS));
    for (int i = 0; i < acked; i++) {
        struct hstan_rec rec = hstan_rx_get(&rx, i);
        char want[32];
        snprintf(want, sizeof(want), "big-%06d", i + 1);
        CHECK_EQ_INT(rec.seq, i + 1);
        CHECK_EQ_INT(rec.len, BIG);
        CHECK(strncmp(rec.data, want, strlen(want)) == 0);
    }
    struct hstan_rec last = hstan_rx_get(&rx, acked);
    CHECK_EQ_STR(last.data, "marker");
    CHECK_EQ_INT(last.seq, acked + 1);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
}

static void test_full_disk(void)
{
    CHECK(hmkdtemp(mnt_dir, sizeof(mnt_dir)) == 0);
    if (mount("tmpfs", mnt_dir, "tmpfs", 0, "size=4m") != 0) {
        fprintf(stderr, "   SKIPPED: cannot mount tmpfs here (%s)\n", strerror(errno));
        rmdir(mnt_dir);
        return;
    }
    mounted = true;
    char data[PATH_MAX], filler[PATH_MAX];
    snprintf(data, sizeof(data), "%s/data", mnt_dir);
    snprintf(filler, sizeof(filler), "%s/filler", mnt_dir);
    char mport_s[16];
    int mport = harness_free_port();
    snprintf(mport_s, sizeof mport_s, "%d", mport);
    const char *args[] = {"--store", "FILE", "--dir", data, "-m", mport_s, NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "full");
    CHECK(hstan_pub(sc, "full-other", "before") == NATS_OK);

    /* Leave about 1 MiB free. */
    long long avail = free_bytes(mnt_dir);
    long long fill = avail - 1024 * 1024;
    CHECK(fill > 0);
    CHECK(write_filler(filler, fill) == fill);
    fprintf(stderr, "   tmpfs: %lld bytes free, filler %lld bytes\n", avail, fill);

    int acked = publish_until_full(sc);
    /* Kubernetes' readiness probe sees it: the last commit failed. The liveness probe does not
     * (a restart would not free the disk). */
    CHECK_EQ_INT(http_status(mport, "/healthz"), 503);
    CHECK_EQ_INT(http_status(mport, "/livez"), 200);
    stanConnection *sc2 = check_serving_when_full(&s);
    acked = resume_after_space(sc, filler, mport, acked);
    CHECK(stanConnection_Destroy(sc2) == NATS_OK);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);

    CHECK_EQ_INT(harness_server_halt(&s, SIGINT), 0);
    CHECK(harness_server_restart(&s, args) == 0);
    check_full_after_restart(&s, acked);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
    unmount_tmpfs();
}

/* ---- max_inactivity ---- */

static void test_max_inactivity(void)
{
    const char *args[] = {"--store", "MEMORY", "-mi", "1s", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    stanConnection *sc = hstan_connect_or_die(&s, "mi");
    struct hstan_rx kept;
    hstan_rx_init(&kept, 8, HSTAN_ACK_AUTO);
    stanSubscription *ksub = NULL;
    CHECK(hstan_sub(&ksub, sc, "mi-kept", NULL, &kept, NULL) == NATS_OK);
    hstan_pub_range(sc, "mi-gone", "old%d", 1, 3);
    CHECK(hstan_pub(sc, "mi-kept", "k1") == NATS_OK);
    int64_t t0 = harness_now_ms();
    CHECK(hstan_rx_wait(&kept, 1, T_MS));

    /* The server logs the removal; that is the event waited for, the protocol checks follow. */
    CHECK(hfile_wait_contains(s.log, "\"mi-gone\" removed", T_LONG_MS));
    int64_t took = harness_now_ms() - t0;
    fprintf(stderr, "   \"mi-gone\" removed after %lld ms\n", (long long)took);
    CHECK(took >= 900);

    /* Its messages are gone: a subscriber from the start sees only what comes next, at 1. */
    struct hstan_rx rx;
    hstan_rx_init(&rx, 8, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "mi-gone", NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_pub(sc, "mi-gone", "new") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 1, T_MS));
    struct hstan_rec rec = hstan_rx_get(&rx, 0);
    if (strcmp(rec.data, "new") != 0) hstan_rx_dump(&rx, "mi-gone after removal");
    CHECK_EQ_STR(rec.data, "new");
    CHECK_EQ_INT(rec.seq, 1);

    /* The channel with a subscription stayed (it was as idle as "mi-gone"), messages and all. */
    CHECK(hfile_count(s.log, "\"mi-kept\" removed") == 0);
    struct hstan_rx rx2;
    hstan_rx_init(&rx2, 8, HSTAN_ACK_AUTO);
    o = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    stanSubscription *sub2 = NULL;
    CHECK(hstan_sub(&sub2, sc, "mi-kept", NULL, &rx2, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    CHECK(hstan_rx_wait(&rx2, 1, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx2, 0).data, "k1");
    CHECK_EQ_INT(hstan_rx_get(&rx2, 0).seq, 1);
    CHECK(stanSubscription_Unsubscribe(sub2) == NATS_OK);
    stanSubscription_Destroy(sub2);
    hstan_rx_destroy(&rx2);

    /* Once its last subscription leaves, it has max_inactivity again before it goes: NSS starts
     * the delete timer when the last subscription leaves, although its last message is older. */
    CHECK(stanSubscription_Unsubscribe(ksub) == NATS_OK);
    int64_t t1 = harness_now_ms();
    CHECK(hfile_wait_contains(s.log, "\"mi-kept\" removed", T_LONG_MS));
    took = harness_now_ms() - t1;
    fprintf(stderr, "   \"mi-kept\" removed %lld ms after its subscription left\n",
            (long long)took);
    CHECK(took >= 900);

    stanSubscription_Destroy(ksub);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    hstan_rx_destroy(&kept);
    CHECK(stanConnection_Destroy(sc) == NATS_OK);
    CHECK_EQ_INT(harness_server_stop(&s, SIGINT), 0);
}

int main(void)
{
    /* Registered before any server starts, so it runs after the harness has killed them. */
    atexit(unmount_tmpfs);
    HSTAN_RUN(test_redelivery_count_survives_kill9);
    HSTAN_RUN(test_full_disk);
    HSTAN_RUN(test_max_inactivity);
    nats_CloseAndWait(5000);
    return test_summary();
}

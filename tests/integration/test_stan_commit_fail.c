/* it_stan_commit_fail: a failed commit never leaves memory claiming what the disk does not hold.
 * The store's syncs are made to fail on demand (tests/integration/support/failsync.c, preloaded
 * into a real stanzad), as a disk that fills up or breaks would: while they fail, a connect, a
 * subscription that creates a channel, and a publish are all refused; once the disk is back, the
 * refused client is not registered, and the channel that the refused subscription created is
 * written with the next message on it, so that message survives a kill -9. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define E_STORE_CONN "stan: store error, connection not registered"
#define E_STORE_SUB "stan: store error, subscription not created"
#define E_PUBREQ "stan: invalid publish request"

enum { F_PUBACK_ERR = 2 };

static char trigger[PATH_MAX];

static void disk_fails(bool on)
{
    if (on)
        CHECK(hfile_write(trigger, "fail") == 0);
    else
        CHECK(unlink(trigger) == 0);
}

/* The server inherits this environment: the shim preloaded, and (for the sanitizer build) ASan
 * told that a library ahead of its runtime is expected. */
static void preload_shim(const char *dir)
{
    const char *so = getenv("FAILSYNC_SO");
    CHECK(so != NULL && so[0] != '\0');
    snprintf(trigger, sizeof trigger, "%s/fail-syncs", dir);
    CHECK(setenv("FAILSYNC_TRIGGER", trigger, 1) == 0);
    CHECK(setenv("LD_PRELOAD", so, 1) == 0);
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && asan[0] ? ":" : "");
    CHECK(setenv("ASAN_OPTIONS", opts, 1) == 0);
}

static void preload_off(void)
{
    unsetenv("LD_PRELOAD");
}

/* A publish from raw client r (its client ID and connID) to channel; returns the PubAck's error
 * ("" when stored) in err. */
static void raw_publish(struct hstan_raw *r, const char *channel, const char *data, char *err,
                        size_t errlen)
{
    struct hstan_pb p = {0};
    hstan_pb_str(&p, 1, r->client_id);
    hstan_pb_str(&p, 2, "guid-raw");
    hstan_pb_str(&p, 3, channel);
    hstan_pb_str(&p, 5, data);
    hstan_pb_str(&p, 6, r->conn_id);
    char subj[512];
    snprintf(subj, sizeof subj, "%s.%s", r->pub_prefix, channel);
    natsMsg *ack = NULL;
    CHECK(hstan_raw_request(r, subj, p.b, p.n, T_MS, &ack) == NATS_OK);
    CHECK(hstan_pb_get_str(natsMsg_GetData(ack), (size_t)natsMsg_GetDataLength(ack), F_PUBACK_ERR,
                           err, errlen));
    natsMsg_Destroy(ack);
}

static void test_failed_commit_leaves_nothing_claimed(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    preload_shim(d.dir);
    const char *args[] = {"--store", "FILE", "--dir", d.data, "--file_sync=true", NULL};
    struct hserver s;
    CHECK(harness_server_start(&s, NULL, args) == 0);
    preload_off();

    struct hstan_raw pub;
    char err[512];
    CHECK(hstan_raw_connect(&pub, &s, "pub", true, err, sizeof err) == NATS_OK);
    CHECK_EQ_STR(err, "");
    raw_publish(&pub, "old", "kept", err, sizeof err);
    CHECK_EQ_STR(err, "");

    disk_fails(true);
    /* A connect, a subscription on a new channel and a publish: all refused, with reasons. */
    struct hstan_raw late;
    CHECK(hstan_raw_connect(&late, &s, "late", true, err, sizeof err) == NATS_OK);
    CHECK_EQ_STR(err, E_STORE_CONN);
    CHECK(hstan_raw_subscribe(&pub, "fresh", NULL, NULL, 10, 30, NULL, 0, err, sizeof err) ==
          NATS_OK);
    CHECK_EQ_STR(err, E_STORE_SUB);
    raw_publish(&pub, "old", "lost", err, sizeof err);
    CHECK(strstr(err, "store error") != NULL);
    disk_fails(false);

    /* The refused client is not registered: its publishes are refused as any unknown client's.
     * (It got no subjects in its refused ConnectResponse: it uses the ones pub got.) */
    snprintf(late.pub_prefix, sizeof late.pub_prefix, "%s", pub.pub_prefix);
    raw_publish(&late, "old", "from a client told it was not registered", err, sizeof err);
    CHECK_EQ_STR(err, E_PUBREQ);
    /* The channel the refused subscription created gets its record with its first message. */
    raw_publish(&pub, "fresh", "first on fresh", err, sizeof err);
    CHECK_EQ_STR(err, "");
    hstan_raw_close(&late);
    hstan_raw_close(&pub);

    CHECK_EQ_INT(harness_server_halt(&s, SIGKILL), 128 + SIGKILL);
    CHECK(harness_server_restart(&s, args) == 0);
    struct hstan_rec first;
    CHECK_EQ_INT(hstan_read_all(&s, "reader1", "fresh", 1, &first, 1), 1);
    CHECK_EQ_STR(first.data, "first on fresh");
    CHECK_EQ_INT(hstan_read_all(&s, "reader2", "old", 1, &first, 1), 1);
    CHECK_EQ_STR(first.data, "kept");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    hstan_dir_remove(&d);
}

int main(void)
{
    HSTAN_RUN(test_failed_commit_leaves_nothing_claimed);
    nats_CloseAndWait(5000);
    return test_summary();
}

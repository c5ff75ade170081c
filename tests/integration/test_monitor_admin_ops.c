/* it_monitor_admin_ops: the /admin/ commands with the right token against a real stanzad
 * (FILE store) with real libnats STAN clients connected: a message read back (base64 payload),
 * purge while a subscriber is live (it goes on receiving), delete-channel refused (409) while
 * subscribed and forced, delete-durable (plain and queue), close-client, pause/resume of a
 * queue group (a witness subscription shows deliveries happen meanwhile), dead letters listed,
 * read and requeued; and every bad parameter or unknown name answered 400/404/409 as the
 * contract says. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_http.h"
#include "harness.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000

struct env {
    struct hstan_dir d;
    struct hserver s;
    int mport;
};

static void env_start(struct env *e, const char *conf)
{
    hstan_dir_make(&e->d);
    static char port_s[16];
    e->mport = harness_free_port();
    snprintf(port_s, sizeof port_s, "%d", e->mport);
    const char *args[] = {"-m",      port_s,          "--store",   "FILE", "--dir",
                          e->d.data, "--admin_token", ADMIN_TOKEN, NULL};
    CHECK(harness_server_start(&e->s, conf, args) == 0);
}

static void env_stop(struct env *e)
{
    CHECK_EQ_INT(harness_server_stop(&e->s, SIGINT), 0);
    hstan_dir_remove(&e->d);
}

/* The right token, status want (and the error containing error when not NULL). */
static struct ares ok(struct env *e, const char *method, const char *path, int want,
                      const char *error)
{
    return aexpect(e->mport, method, path, BEARER, want, error);
}

static void bad(struct env *e, const char *method, const char *path, int want, const char *error)
{
    acheck(e->mport, method, path, BEARER, want, error);
}

static int64_t channel_int(struct env *e, const char *channel, const char *key)
{
    char path[256];
    snprintf(path, sizeof path, "/streaming/channelsz?channel=%s", channel);
    struct ares r = aexpect(e->mport, "GET", path, NULL, 200, NULL);
    int64_t v = ares_int(&r, key);
    ares_free(&r);
    return v;
}

static void test_msg_and_purge_live(void)
{
    struct env e;
    env_start(&e, NULL);
    stanConnection *sc = hstan_connect_or_die(&e.s, "worker");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 64, HSTAN_ACK_AUTO);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "jobs", NULL, &rx, NULL) == NATS_OK);
    hstan_pub_range(sc, "jobs", "m%d", 1, 10);
    CHECK(hstan_rx_wait(&rx, 10, T_MS));

    struct ares r = ok(&e, "GET", "/admin/msg?channel=jobs&seq=3", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "channel"), "jobs");
    CHECK_EQ_INT(ares_int(&r, "sequence"), 3);
    CHECK_EQ_INT(ares_int(&r, "size"), 2);
    CHECK_EQ_STR(ares_str(&r, "data"), "bTM="); /* base64 of "m3" */
    CHECK_EQ_STR(ares_str(&r, "reply"), "");
    CHECK(ares_int(&r, "timestamp") > 1700000000LL * 1000000000LL);
    CHECK(json_object_get(r.json, "dead") == NULL);
    ares_free(&r);
    r = areq(e.mport, "HEAD", "/admin/msg?channel=jobs&seq=3", BEARER);
    CHECK_EQ_INT(r.status, 200);
    ares_free(&r);
    bad(&e, "GET", "/admin/msg?channel=jobs&seq=0", 400, "invalid seq");
    bad(&e, "GET", "/admin/msg?channel=jobs&seq=3x", 400, "invalid seq");
    bad(&e, "GET", "/admin/msg?channel=jobs&seq=-1", 400, "invalid seq");
    bad(&e, "GET", "/admin/msg?channel=jobs&seq=18446744073709551616", 400, "invalid seq");
    bad(&e, "GET", "/admin/msg?channel=jobs", 400, "missing parameter seq");
    bad(&e, "GET", "/admin/msg?seq=1", 400, "missing parameter channel");
    bad(&e, "GET", "/admin/msg?channel=&seq=1", 400, "invalid channel");
    bad(&e, "GET", "/admin/msg?channel=jobs%00x&seq=1", 400, "invalid channel");
    bad(&e, "GET", "/admin/msg?channel=jobs&seq=99", 404, NULL);
    bad(&e, "GET", "/admin/msg?channel=nope&seq=1", 404, NULL);
    char longp[2200];
    int n = snprintf(longp, sizeof longp, "/admin/purge?channel=");
    memset(longp + n, 'c', 1100);
    longp[n + 1100] = '\0';
    bad(&e, "POST", longp, 400, "invalid channel");

    r = ok(&e, "POST", "/admin/purge?channel=jobs&upto=4", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "channel"), "jobs");
    CHECK_EQ_INT(ares_int(&r, "purged"), 4);
    CHECK_EQ_INT(ares_int(&r, "msgs"), 6);
    CHECK_EQ_INT(ares_int(&r, "first_seq"), 5);
    CHECK_EQ_INT(ares_int(&r, "last_seq"), 10);
    ares_free(&r);
    CHECK_EQ_INT(channel_int(&e, "jobs", "first_seq"), 5);
    bad(&e, "GET", "/admin/msg?channel=jobs&seq=3", 404, NULL);
    /* The live subscriber goes on. */
    CHECK(hstan_pub(sc, "jobs", "m11") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 11, T_MS));
    r = ok(&e, "POST", "/admin/purge?channel=jobs", 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "purged"), 7);
    CHECK_EQ_INT(ares_int(&r, "msgs"), 0);
    ares_free(&r);
    CHECK_EQ_INT(channel_int(&e, "jobs", "msgs"), 0);
    CHECK(hstan_pub(sc, "jobs", "m12") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 12, T_MS));
    bad(&e, "POST", "/admin/purge?channel=nope", 404, NULL);
    bad(&e, "POST", "/admin/purge?channel=jobs&upto=0", 400, "invalid upto");
    bad(&e, "POST", "/admin/purge", 400, "missing parameter channel");

    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
    env_stop(&e);
}

static void test_delete_channel(void)
{
    struct env e;
    env_start(&e, NULL);
    stanConnection *sc = hstan_connect_or_die(&e.s, "c");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_AUTO);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "del", NULL, &rx, NULL) == NATS_OK);
    hstan_pub_range(sc, "del", "d%d", 1, 3);
    hstan_pub_range(sc, "idle", "i%d", 1, 2);
    CHECK(hstan_rx_wait(&rx, 3, T_MS));
    bad(&e, "DELETE", "/admin/channel?channel=del", 409, NULL);
    bad(&e, "DELETE", "/admin/channel?channel=del&force=maybe", 400, "invalid force");
    bad(&e, "DELETE", "/admin/channel?channel=del&force=false", 409, NULL);
    CHECK_EQ_INT(channel_int(&e, "del", "msgs"), 3);
    struct ares r = ok(&e, "DELETE", "/admin/channel?channel=del&force=true", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "channel"), "del");
    CHECK(json_is_true(json_object_get(r.json, "deleted")));
    CHECK_EQ_INT(ares_int(&r, "msgs"), 3);
    CHECK_EQ_INT(ares_int(&r, "subscriptions"), 1);
    ares_free(&r);
    acheck(e.mport, "GET", "/streaming/channelsz?channel=del", NULL, 404, NULL);
    bad(&e, "DELETE", "/admin/channel?channel=del&force=1", 404, NULL);
    /* Without subscriptions no force is needed. */
    r = ok(&e, "DELETE", "/admin/channel?channel=idle", 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "msgs"), 2);
    CHECK_EQ_INT(ares_int(&r, "subscriptions"), 0);
    ares_free(&r);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
    env_stop(&e);
}

static void test_durable_and_client(void)
{
    struct env e;
    env_start(&e, NULL);
    stanConnection *sc = hstan_connect_or_die(&e.s, "dc");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_AUTO);
    stanSubOptions *o = hstan_subopts(), *o0 = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "dur1") == NATS_OK);
    CHECK(stanSubOptions_SetDurableName(o0, "dur1") == NATS_OK);
    stanSubscription *d1 = NULL, *dq = NULL, *plain = NULL;
    CHECK(hstan_sub(&d1, sc, "dch", NULL, &rx, o) == NATS_OK);
    CHECK(stanSubOptions_SetDurableName(o, "dd") == NATS_OK);
    CHECK(hstan_sub(&dq, sc, "dch", "dq", &rx, o) == NATS_OK);
    CHECK(hstan_sub(&plain, sc, "dch", NULL, &rx, NULL) == NATS_OK);
    CHECK(stanSubscription_Close(d1) == NATS_OK); /* offline, kept */
    /* A durable is a client's: another client's name finds nothing; a group takes no client. */
    bad(&e, "DELETE", "/admin/durable?channel=dch&durable=dur1&client=other", 404,
        "of client \"other\"");
    bad(&e, "DELETE", "/admin/durable?channel=dch&durable=dd&queue=dq&client=dc", 400, NULL);
    struct ares r =
        ok(&e, "DELETE", "/admin/durable?channel=dch&durable=dur1&client=dc", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "client"), "dc");
    CHECK_EQ_INT(ares_int(&r, "deleted"), 1);
    ares_free(&r);
    stanSubscription_Destroy(d1);
    d1 = NULL;
    CHECK(hstan_sub(&d1, sc, "dch", NULL, &rx, o0) == NATS_OK);
    CHECK(stanSubscription_Close(d1) == NATS_OK);
    r = ok(&e, "DELETE", "/admin/durable?channel=dch&durable=dur1", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "channel"), "dch");
    CHECK_EQ_STR(ares_str(&r, "durable"), "dur1");
    CHECK(json_is_null(json_object_get(r.json, "queue")));
    CHECK_EQ_INT(ares_int(&r, "deleted"), 1);
    ares_free(&r);
    bad(&e, "DELETE", "/admin/durable?channel=dch&durable=dur1", 404, NULL);
    bad(&e, "DELETE", "/admin/durable?channel=dch", 400, "missing parameter durable");
    bad(&e, "DELETE", "/admin/durable?channel=dch&durable=dd&queue=", 400, "invalid queue");
    /* The durable queue group, online. */
    r = ok(&e, "DELETE", "/admin/durable?channel=dch&durable=dd&queue=dq", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "queue"), "dq");
    CHECK_EQ_INT(ares_int(&r, "deleted"), 1);
    ares_free(&r);
    CHECK_EQ_INT(channel_int(&e, "dch", "subs_count"), 1);

    bad(&e, "DELETE", "/admin/client", 400, "missing parameter id");
    bad(&e, "DELETE", "/admin/client?id=nobody", 404, NULL);
    r = ok(&e, "DELETE", "/admin/client?id=dc", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "client_id"), "dc");
    CHECK(json_is_true(json_object_get(r.json, "closed")));
    CHECK_EQ_INT(ares_int(&r, "subscriptions"), 1);
    ares_free(&r);
    acheck(e.mport, "GET", "/streaming/clientsz?client=dc", NULL, 404, NULL);
    bad(&e, "DELETE", "/admin/client?id=dc", 404, NULL);
    CHECK_EQ_INT(channel_int(&e, "dch", "subs_count"), 0);
    /* The ID is free again. */
    stanConnection *again = hstan_connect_or_die(&e.s, "dc");
    stanConnection_Destroy(again);

    stanSubscription_Destroy(d1);
    stanSubscription_Destroy(dq);
    stanSubscription_Destroy(plain);
    stanSubOptions_Destroy(o);
    stanSubOptions_Destroy(o0);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
    env_stop(&e);
}

static void test_pause_resume(void)
{
    struct env e;
    env_start(&e, NULL);
    stanConnection *a = hstan_connect_or_die(&e.s, "a");
    stanConnection *w = hstan_connect_or_die(&e.s, "witness");
    struct hstan_rx ra, rw;
    hstan_rx_init(&ra, 16, HSTAN_ACK_AUTO);
    hstan_rx_init(&rw, 16, HSTAN_ACK_AUTO);
    stanSubscription *sa = NULL, *sw = NULL;
    CHECK(hstan_sub(&sa, a, "tasks", "workers", &ra, NULL) == NATS_OK);
    CHECK(hstan_sub(&sw, w, "tasks", NULL, &rw, NULL) == NATS_OK);
    bad(&e, "POST", "/admin/pause?channel=tasks", 400, "missing parameter queue or durable");
    bad(&e, "POST", "/admin/pause?channel=tasks&queue=nobody", 404, NULL);
    bad(&e, "POST", "/admin/pause?channel=nope&queue=workers", 404, NULL);
    bad(&e, "GET", "/admin/pause?channel=tasks&queue=workers", 405, NULL);
    struct ares r = ok(&e, "POST", "/admin/pause?channel=tasks&queue=workers", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "channel"), "tasks");
    CHECK_EQ_STR(ares_str(&r, "queue"), "workers");
    CHECK(json_is_null(json_object_get(r.json, "durable")));
    CHECK(json_is_true(json_object_get(r.json, "paused")));
    CHECK_EQ_INT(ares_int(&r, "subscriptions"), 1);
    ares_free(&r);
    CHECK(hstan_pub(w, "tasks", "t1") == NATS_OK);
    CHECK(hstan_rx_wait(&rw, 1, T_MS)); /* delivered to the witness in the same pass */
    hstan_flush(a);
    CHECK_EQ_INT(hstan_rx_count(&ra), 0);
    r = ok(&e, "POST", "/admin/resume?channel=tasks&queue=workers", 200, NULL);
    CHECK(json_is_false(json_object_get(r.json, "paused")));
    CHECK_EQ_INT(ares_int(&r, "subscriptions"), 1);
    ares_free(&r);
    CHECK(hstan_rx_wait(&ra, 1, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&ra, 0).data, "t1");
    stanSubscription_Destroy(sa);
    stanSubscription_Destroy(sw);
    hstan_rx_destroy(&ra);
    hstan_rx_destroy(&rw);
    stanConnection_Destroy(a);
    stanConnection_Destroy(w);
    env_stop(&e);
}

/* The dead letters of "poison" once there is n (polled with a deadline). */
static struct ares wait_dead(struct env *e, int64_t n)
{
    int64_t deadline = harness_now_ms() + 3 * T_MS;
    for (;;) {
        struct ares r = ok(e, "GET", "/admin/dead?channel=poison", 200, NULL);
        if (ares_int(&r, "total") >= n || harness_now_ms() > deadline) return r;
        ares_free(&r);
        usleep(50 * 1000);
    }
}

static void test_dead_and_requeue(void)
{
    struct env e;
    env_start(&e, "store_limits:\n  channels:\n    poison: {max_deliveries: 2}\n");
    stanConnection *sc = hstan_connect_or_die(&e.s, "w");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_TEST); /* acks nothing unless told */
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, 1000) == NATS_OK);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "poison", NULL, &rx, o) == NATS_OK);
    CHECK(hstan_pub(sc, "poison", "bad job") == NATS_OK);
    struct ares r = wait_dead(&e, 1);
    CHECK_EQ_STR(ares_str(&r, "channel"), "poison");
    CHECK_EQ_STR(ares_str(&r, "dead_letter"), "poison.dead");
    CHECK_EQ_INT(ares_int(&r, "total"), 1);
    CHECK_EQ_INT(ares_int(&r, "offset"), 0);
    CHECK_EQ_INT(ares_int(&r, "count"), 1);
    json_t *d = json_array_get(json_object_get(r.json, "dead"), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(d, "sequence")), 1);
    CHECK_EQ_STR(json_string_value(json_object_get(d, "origin_channel")), "poison");
    CHECK_EQ_INT(json_integer_value(json_object_get(d, "origin_sequence")), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(d, "deliveries")), 2);
    CHECK_EQ_STR(json_string_value(json_object_get(d, "last_client")), "w");
    CHECK_EQ_INT(json_integer_value(json_object_get(d, "requeued_sequence")), 0);
    ares_free(&r);
    r = ok(&e, "GET", "/admin/msg?channel=poison.dead&seq=1", 200, NULL);
    CHECK_EQ_STR(ares_str(&r, "data"), "YmFkIGpvYg=="); /* "bad job" */
    json_t *dead = json_object_get(r.json, "dead");
    CHECK_EQ_INT(json_integer_value(json_object_get(dead, "origin_sequence")), 1);
    ares_free(&r);
    r = ok(&e, "GET", "/admin/dead?channel=poison&offset=1&limit=0", 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "count"), 0);
    CHECK_EQ_INT(ares_int(&r, "total"), 1);
    ares_free(&r);
    bad(&e, "GET", "/admin/dead?channel=poison&limit=100001", 400, "invalid limit");
    bad(&e, "GET", "/admin/dead?channel=nope", 404, NULL);
    bad(&e, "POST", "/admin/requeue?channel=poison", 400, "exactly one");
    bad(&e, "POST", "/admin/requeue?channel=poison&seq=1&all=true", 400, "exactly one");
    bad(&e, "POST", "/admin/requeue?channel=poison&seq=7", 404, NULL);
    bad(&e, "POST", "/admin/requeue?channel=poison&all=yes", 400, "invalid all");
    int64_t before = hstan_rx_count(&rx);
    r = ok(&e, "POST", "/admin/requeue?channel=poison&seq=1", 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "requeued"), 1);
    CHECK_EQ_INT(ares_int(&r, "last_seq"), 2);
    ares_free(&r);
    CHECK(hstan_rx_wait(&rx, before + 1, T_MS)); /* delivered again, as sequence 2 */
    CHECK_EQ_INT((int64_t)hstan_rx_get(&rx, (int)before).seq, 2);
    CHECK(hstan_rx_ack(&rx, (int)before) == NATS_OK);
    r = ok(&e, "GET", "/admin/dead?channel=poison", 200, NULL);
    d = json_array_get(json_object_get(r.json, "dead"), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(d, "requeued_sequence")), 2);
    ares_free(&r);
    r = ok(&e, "POST", "/admin/requeue?channel=poison&all=true", 200, NULL);
    CHECK_EQ_INT(ares_int(&r, "requeued"), 0); /* every one is requeued already */
    ares_free(&r);
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(o);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
    env_stop(&e);
}

int main(void)
{
    HSTAN_RUN(test_msg_and_purge_live);
    HSTAN_RUN(test_delete_channel);
    HSTAN_RUN(test_durable_and_client);
    HSTAN_RUN(test_pause_resume);
    HSTAN_RUN(test_dead_and_requeue);
    return test_summary();
}

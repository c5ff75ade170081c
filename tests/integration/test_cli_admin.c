/* it_cli_admin: the `stanza` job-control commands (issue 9) against a real
 * stanzad (LMDB store) with an admin_token and channel limits in its config
 * file, and real libnats clients: what each command does to the server is
 * checked through the clients (what they receive, whether an id is free again)
 * and through `stanza pending` / `stanza channels` / `stanza dead`; every
 * command without the token, or with a wrong one, is refused and changes
 * nothing.
 *
 * Every wait is on an event with a deadline: messages arriving at a collector,
 * a command's exit. Where a test must show that something did NOT arrive, it
 * waits for a message published after it to arrive elsewhere first (same
 * delivery path, later sequence). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_cli.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define TOKEN "it-cli-admin-token-0123456789"
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* jobs.* messages go to "<channel>.dead" after 2 deliveries without an ack. */
static const char conf[] = "admin_token: \"" TOKEN "\"\n"
                           "store_limits:\n"
                           "  channels:\n"
                           "    'jobs.*': {max_deliveries: 2}\n";

static struct hserver srv;
static const char *const *srv_args; /* its extra arguments, for a restart */
static struct hstan_dir dir;
static char murl[64];

/* Runs `stanza -m MONITOR [--token TOKEN] args...` (token NULL: none). */
static void run_as(struct hcli_res *r, const char *token, const char *const *args)
{
    const char *argv[32] = {"-m", murl};
    size_t n = 2;
    if (token) {
        argv[n++] = "--token";
        argv[n++] = token;
    }
    for (size_t i = 0; args[i]; i++) {
        CHECK(n < 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    hcli_run(r, argv, T_MS);
}

/* With the token: exit 0 and stdout exactly want. */
static void expect_line(const char *const *args, const char *want)
{
    struct hcli_res r;
    run_as(&r, TOKEN, args);
    if (r.status != 0 || strcmp(r.out, want) != 0) {
        fprintf(stderr, "wanted status 0 and stdout: %s", want);
        hcli_dump(&r, args);
    }
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_STR(r.out, want);
    hcli_free(&r);
}

/* With the token and --json: exit 0 and the printed JSON (to decref). */
static json_t *expect_json(const char *const *args)
{
    const char *argv[32];
    size_t n = 0;
    for (; args[n]; n++)
        argv[n] = args[n];
    argv[n++] = "--json";
    argv[n] = NULL;
    struct hcli_res r;
    run_as(&r, TOKEN, argv);
    json_error_t e;
    json_t *doc = r.status == 0 ? json_loads(r.out, JSON_DECODE_ANY, &e) : NULL;
    if (!doc) hcli_dump(&r, argv);
    CHECK(doc != NULL);
    hcli_free(&r);
    return doc;
}

/* As token (NULL: none): exit 1 and want on stderr. */
static void expect_failure(const char *token, const char *const *args, const char *want)
{
    struct hcli_res r;
    run_as(&r, token, args);
    if (r.status != 1 || !strstr(r.err, want)) {
        fprintf(stderr, "wanted status 1 and on stderr: %s\n", want);
        hcli_dump(&r, args);
    }
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, want) != NULL);
    hcli_free(&r);
}

static int64_t iget(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fprintf(stderr, "no integer \"%s\"\n", key);
    CHECK(json_is_integer(v));
    return (int64_t)json_integer_value(v);
}

/* `stanza channels --json`: channel's stored messages, or -1 if it is not
 * listed. */
static int64_t channel_msgs(const char *channel)
{
    json_t *doc = expect_json(ARGS("channels"));
    int64_t msgs = -1;
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(doc, "channels"), i, ch)
    {
        const char *name = json_string_value(json_object_get(ch, "name"));
        if (name && strcmp(name, channel) == 0) msgs = iget(ch, "msgs");
    }
    json_decref(doc);
    return msgs;
}

/* `stanza pending CHANNEL --json`: the pending messages of its only row. */
static int64_t pending_msgs(const char *channel)
{
    json_t *rows = expect_json(ARGS("pending", channel));
    CHECK(json_is_array(rows));
    if (json_array_size(rows) != 1) fprintf(stderr, "%zu pending rows\n", json_array_size(rows));
    CHECK_EQ_INT(json_array_size(rows), 1);
    int64_t n = iget(json_array_get(rows, 0), "pending_msgs");
    json_decref(rows);
    return n;
}

/* The row of queue group `queue` in `stanza pending CHANNEL --json` (to decref). */
static json_t *group_row(const char *channel, const char *queue)
{
    json_t *rows = expect_json(ARGS("pending", channel));
    json_t *found = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *q = json_string_value(json_object_get(row, "queue_name"));
        if (q && strcmp(q, queue) == 0) found = json_incref(row);
    }
    json_decref(rows);
    if (!found) fprintf(stderr, "no row for queue %s on %s\n", queue, channel);
    CHECK(found != NULL);
    return found;
}

/* Whether `stanza clients --json` lists client id. */
static bool client_listed(const char *id)
{
    json_t *doc = expect_json(ARGS("clients"));
    bool found = false;
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(doc, "clients"), i, cl)
    {
        const char *cid = json_string_value(json_object_get(cl, "id"));
        if (cid && strcmp(cid, id) == 0) found = true;
    }
    json_decref(doc);
    return found;
}

/* Manual acks, AckWait ack_wait_s, optionally durable. */
static stanSubOptions *manual_opts(int ack_wait_s, const char *durable, bool all)
{
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetManualAckMode(o, true) == NATS_OK);
    CHECK(stanSubOptions_SetAckWait(o, ack_wait_s * 1000) == NATS_OK);
    if (durable) CHECK(stanSubOptions_SetDurableName(o, durable) == NATS_OK);
    if (all) CHECK(stanSubOptions_DeliverAllAvailable(o) == NATS_OK);
    return o;
}

/* ---- tests ---- */

/* Purge with a subscriber holding every message unacked: they count as acked,
 * the channel keeps its numbering, the subscriber gets what comes next. */
static void test_purge_live_subscriber(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "purge-client");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_TEST);
    stanSubscription *sub = NULL;
    stanSubOptions *o = manual_opts(60, NULL, false);
    CHECK(hstan_sub(&sub, sc, "p.live", NULL, &rx, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    hstan_pub_range(sc, "p.live", "m%d", 1, 5);
    CHECK(hstan_rx_wait(&rx, 5, T_MS));
    CHECK_EQ_INT(pending_msgs("p.live"), 5);

    expect_line(ARGS("purge", "p.live", "--upto", "3"),
                "purged 3 messages from p.live (now 2 stored, first 4, last 5)\n");
    CHECK_EQ_INT(channel_msgs("p.live"), 2);
    CHECK_EQ_INT(pending_msgs("p.live"), 2);
    json_t *doc = expect_json(ARGS("purge", "p.live"));
    CHECK_EQ_INT(iget(doc, "purged"), 2);
    CHECK_EQ_INT(iget(doc, "msgs"), 0);
    CHECK_EQ_INT(iget(doc, "last_seq"), 5);
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "channel")), "p.live");
    json_decref(doc);
    CHECK_EQ_INT(channel_msgs("p.live"), 0);
    CHECK_EQ_INT(pending_msgs("p.live"), 0);

    /* The subscription lives on: the next message is #6, delivered once. */
    CHECK(hstan_pub(sc, "p.live", "after") == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 6, T_MS));
    struct hstan_rec rec = hstan_rx_get(&rx, 5);
    CHECK_EQ_INT(rec.seq, 6);
    CHECK_EQ_STR(rec.data, "after");
    CHECK_EQ_INT(channel_msgs("p.live"), 1);
    expect_failure(TOKEN, ARGS("purge", "no.such.channel"), "(HTTP 404)");

    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
}

/* Refused (409) while it has a subscription, done with --force; then gone. */
static void test_delete_channel(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "delch-client");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_HANDLER);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, sc, "d.ch", NULL, &rx, NULL) == NATS_OK);
    hstan_pub_range(sc, "d.ch", "m%d", 1, 3);
    CHECK(hstan_rx_wait(&rx, 3, T_MS));

    struct hcli_res r;
    run_as(&r, TOKEN, ARGS("delete-channel", "d.ch"));
    if (r.status != 1 || !strstr(r.err, "(HTTP 409)") || !strstr(r.err, "--force"))
        hcli_dump(&r, ARGS("delete-channel", "d.ch"));
    CHECK_EQ_INT(r.status, 1);
    CHECK(strstr(r.err, "(HTTP 409)") != NULL);
    CHECK(strstr(r.err, "hint: --force deletes it with its subscriptions") != NULL);
    hcli_free(&r);
    CHECK_EQ_INT(channel_msgs("d.ch"), 3);

    expect_line(ARGS("delete-channel", "d.ch", "--force"),
                "deleted channel d.ch (3 messages, 1 subscription)\n");
    CHECK_EQ_INT(channel_msgs("d.ch"), -1);
    expect_failure(TOKEN, ARGS("msg", "d.ch", "1"), "(HTTP 404)");
    expect_failure(TOKEN, ARGS("delete-channel", "d.ch", "--force"), "(HTTP 404)");

    /* A channel without subscriptions goes without --force; --json says what
     * went. */
    hstan_pub_range(sc, "d.empty", "e%d", 1, 2);
    json_t *doc = expect_json(ARGS("delete-channel", "d.empty"));
    CHECK(json_is_true(json_object_get(doc, "deleted")));
    CHECK_EQ_INT(iget(doc, "msgs"), 2);
    CHECK_EQ_INT(iget(doc, "subscriptions"), 0);
    json_decref(doc);
    CHECK_EQ_INT(channel_msgs("d.empty"), -1);

    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
}

/* An offline durable that acked everything is deleted: resuming its name starts
 * afresh (all three again) instead of after #3. */
static void test_delete_durable(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "deldur-client");
    hstan_pub_range(sc, "dd.ch", "m%d", 1, 3);
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_HANDLER);
    stanSubscription *sub = NULL;
    stanSubOptions *o = manual_opts(60, "dur", true);
    CHECK(hstan_sub(&sub, sc, "dd.ch", NULL, &rx, o) == NATS_OK);
    CHECK(hstan_rx_wait(&rx, 3, T_MS));
    hstan_flush(sc);                               /* the acks reached the server */
    CHECK(stanSubscription_Close(sub) == NATS_OK); /* offline, kept */
    stanSubscription_Destroy(sub);

    expect_line(ARGS("delete-durable", "dd.ch", "dur"),
                "deleted durable dur on dd.ch (1 subscription)\n");
    expect_failure(TOKEN, ARGS("delete-durable", "dd.ch", "dur"), "(HTTP 404)");

    struct hstan_rx again;
    hstan_rx_init(&again, 16, HSTAN_ACK_HANDLER);
    CHECK(hstan_sub(&sub, sc, "dd.ch", NULL, &again, o) == NATS_OK);
    CHECK(hstan_rx_wait(&again, 3, T_MS));
    CHECK_EQ_INT(hstan_rx_get(&again, 0).seq, 1);
    stanSubOptions_Destroy(o);

    /* A durable queue group: two members, one call. */
    struct hstan_rx m1, m2;
    hstan_rx_init(&m1, 16, HSTAN_ACK_AUTO);
    hstan_rx_init(&m2, 16, HSTAN_ACK_AUTO);
    stanSubscription *s1 = NULL, *s2 = NULL;
    stanSubOptions *qo = manual_opts(60, "dur2", false);
    CHECK(hstan_sub(&s1, sc, "dd.ch", "dq", &m1, qo) == NATS_OK);
    CHECK(hstan_sub(&s2, sc, "dd.ch", "dq", &m2, qo) == NATS_OK);
    stanSubOptions_Destroy(qo);
    json_t *doc = expect_json(ARGS("delete-durable", "dd.ch", "dur2", "--queue", "dq"));
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "queue")), "dq");
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "durable")), "dur2");
    CHECK_EQ_INT(iget(doc, "deleted"), 2);
    json_decref(doc);
    expect_failure(TOKEN, ARGS("delete-durable", "dd.ch", "dur2", "--queue", "dq"), "(HTTP 404)");
    stanSubscription_Destroy(s1);
    stanSubscription_Destroy(s2);
    hstan_rx_destroy(&m1);
    hstan_rx_destroy(&m2);

    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    hstan_rx_destroy(&again);
    stanConnection_Destroy(sc);
}

/* `stanza clients` no longer lists it, and its id connects again at once. */
static void test_close_client(void)
{
    stanConnection *victim = hstan_connect_or_die(&srv, "victim");
    struct hstan_rx rx;
    hstan_rx_init(&rx, 4, HSTAN_ACK_AUTO);
    stanSubscription *sub = NULL;
    CHECK(hstan_sub(&sub, victim, "cc.ch", NULL, &rx, NULL) == NATS_OK);

    CHECK(client_listed("victim"));
    expect_line(ARGS("close-client", "victim"), "closed client victim (1 subscription)\n");
    CHECK(!client_listed("victim"));
    /* The old connection is still open, yet the id is free at once. */
    stanConnection *again = hstan_connect_or_die(&srv, "victim");
    expect_failure(TOKEN, ARGS("close-client", "nobody-here"), "(HTTP 404)");
    json_t *doc = expect_json(ARGS("close-client", "victim"));
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "client_id")), "victim");
    CHECK(json_is_true(json_object_get(doc, "closed")));
    CHECK_EQ_INT(iget(doc, "subscriptions"), 0);
    json_decref(doc);
    CHECK(!client_listed("victim"));

    stanSubscription_Destroy(sub);
    stanConnection_Destroy(victim);
    stanConnection_Destroy(again);
    hstan_rx_destroy(&rx);
}

/* A paused queue group gets nothing while a plain subscriber of the same
 * channel gets every message; resumed, it gets them all. */
static void test_pause_resume(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "pause-worker");
    struct hstan_rx group, plain;
    hstan_rx_init(&group, 16, HSTAN_ACK_AUTO);
    hstan_rx_init(&plain, 16, HSTAN_ACK_AUTO);
    stanSubscription *gsub = NULL, *psub = NULL;
    CHECK(hstan_sub(&gsub, sc, "pz.q", "workers", &group, NULL) == NATS_OK);
    CHECK(hstan_sub(&psub, sc, "pz.q", NULL, &plain, NULL) == NATS_OK);

    expect_line(ARGS("pause", "pz.q", "--queue", "workers"),
                "paused queue workers on pz.q (1 subscription)\n");
    hstan_pub_range(sc, "pz.q", "job%d", 1, 3);
    CHECK(hstan_rx_wait(&plain, 3, T_MS));
    hstan_flush(sc);
    CHECK_EQ_INT(hstan_rx_count(&group), 0);
    /* The server's view: nothing sent to the group, all three held for it. */
    json_t *row = group_row("pz.q", "workers");
    CHECK_EQ_INT(iget(row, "inflight_msgs"), 0);
    CHECK_EQ_INT(iget(row, "backlog_msgs"), 3);
    CHECK(json_is_true(json_object_get(row, "is_paused")));
    json_decref(row);
    struct hcli_res r;
    run_as(&r, TOKEN, ARGS("pending", "pz.q", "--queue", "workers"));
    if (r.status != 0 || !strstr(r.out, "  paused\n")) hcli_dump(&r, ARGS("pending", "pz.q"));
    CHECK(r.status == 0 && strstr(r.out, "  paused\n"));
    hcli_free(&r);

    json_t *doc = expect_json(ARGS("resume", "pz.q", "--queue", "workers"));
    CHECK(json_is_false(json_object_get(doc, "paused")));
    CHECK_EQ_INT(iget(doc, "subscriptions"), 1);
    json_decref(doc);
    CHECK(hstan_rx_wait(&group, 3, T_MS));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(hstan_rx_get(&group, i).seq, i + 1);
    expect_failure(TOKEN, ARGS("pause", "pz.q", "--queue", "nobody"), "(HTTP 404)");

    CHECK(stanSubscription_Unsubscribe(gsub) == NATS_OK);
    CHECK(stanSubscription_Unsubscribe(psub) == NATS_OK);
    stanSubscription_Destroy(gsub);
    stanSubscription_Destroy(psub);
    hstan_rx_destroy(&group);
    hstan_rx_destroy(&plain);
    stanConnection_Destroy(sc);
}

/* A text payload and a binary one: the line, the escapes, --raw's exact bytes,
 * --json. */
static void test_msg(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "msg-client");
    int64_t t0 = (int64_t)time(NULL);
    CHECK(hstan_pub(sc, "m.ch", "hello world") == NATS_OK);
    static const char bin[] = {'a', 0, (char)0xff, '\n', 'z'};
    CHECK(stanConnection_Publish(sc, "m.ch", bin, sizeof bin) == NATS_OK);

    struct hcli_res r;
    run_as(&r, TOKEN, ARGS("msg", "m.ch", "1"));
    CHECK_EQ_INT(r.status, 0);
    const char *nl = strchr(r.out, '\n');
    if (!nl || strncmp(r.out, "m.ch #1  ", 9) != 0 || !strstr(r.out, "  11 bytes  reply=-\n") ||
        strcmp(nl + 1, "hello world\n") != 0)
        hcli_dump(&r, ARGS("msg", "m.ch", "1"));
    CHECK(nl && strncmp(r.out, "m.ch #1  ", 9) == 0);
    CHECK(strstr(r.out, "  11 bytes  reply=-\n") == nl - 19);
    CHECK_EQ_STR(nl + 1, "hello world\n");
    hcli_free(&r);

    run_as(&r, TOKEN, ARGS("msg", "m.ch", "2"));
    CHECK_EQ_INT(r.status, 0);
    nl = strchr(r.out, '\n');
    CHECK(nl && strstr(r.out, "  5 bytes  reply=-\n") == nl - 18);
    CHECK_EQ_STR(nl + 1, "a\\x00\\xff\\nz\n");
    hcli_free(&r);
    run_as(&r, TOKEN, ARGS("msg", "m.ch", "2", "--raw"));
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.out_len, sizeof bin);
    CHECK(memcmp(r.out, bin, sizeof bin) == 0);
    hcli_free(&r);

    json_t *doc = expect_json(ARGS("msg", "m.ch", "2"));
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "data")), "YQD/Cno=");
    CHECK_EQ_INT(iget(doc, "sequence"), 2);
    CHECK_EQ_INT(iget(doc, "size"), 5);
    int64_t ts_s = iget(doc, "timestamp") / 1000000000;
    CHECK(ts_s >= t0 && ts_s <= (int64_t)time(NULL));
    CHECK(json_object_get(doc, "dead") == NULL);
    json_decref(doc);
    expect_failure(TOKEN, ARGS("msg", "m.ch", "3"), "(HTTP 404)");
    stanConnection_Destroy(sc);
}

/* A worker that never acks: after 2 deliveries the job is a dead letter (jobs.*
 * config), seen by a subscriber of jobs.a.dead, `stanza dead`, `stanza msg`;
 * requeued, it reaches the worker again as a new message. */
static void test_dead_and_requeue(void)
{
    stanConnection *wc = hstan_connect_or_die(&srv, "w-dead");
    stanConnection *pc = hstan_connect_or_die(&srv, "dead-watcher");
    struct hstan_rx work, dead;
    hstan_rx_init(&work, 16, HSTAN_ACK_TEST);
    hstan_rx_init(&dead, 16, HSTAN_ACK_AUTO);
    stanSubscription *wsub = NULL, *dsub = NULL;
    stanSubOptions *o = manual_opts(1, NULL, false);
    CHECK(hstan_sub(&wsub, wc, "jobs.a", "workers", &work, o) == NATS_OK);
    stanSubOptions_Destroy(o);
    stanSubOptions *all = hstan_subopts();
    CHECK(stanSubOptions_DeliverAllAvailable(all) == NATS_OK);
    CHECK(hstan_sub(&dsub, pc, "jobs.a.dead", NULL, &dead, all) == NATS_OK);
    stanSubOptions_Destroy(all);

    CHECK(hstan_pub(pc, "jobs.a", "poison") == NATS_OK);
    CHECK(hstan_rx_wait(&dead, 1, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&dead, 0).data, "poison");
    CHECK_EQ_INT(hstan_rx_count(&work), 2);

    struct hcli_res r;
    run_as(&r, TOKEN, ARGS("dead", "jobs.a"));
    CHECK_EQ_INT(r.status, 0);
    const char *rows = strstr(r.out, "\nSEQ  ORIGIN-SEQ  DELIVERIES  LAST-CLIENT  SUBSCRIPTION");
    if (strncmp(r.out, "1 dead letter of jobs.a in jobs.a.dead\n", 39) != 0 || !rows ||
        !strstr(r.out, "  w-dead  ") || !strstr(r.out, "  queue:workers  "))
        hcli_dump(&r, ARGS("dead", "jobs.a"));
    CHECK(strncmp(r.out, "1 dead letter of jobs.a in jobs.a.dead\n", 39) == 0 && rows);
    CHECK(strstr(r.out, "  w-dead  ") && strstr(r.out, "  queue:workers  "));
    hcli_free(&r);
    json_t *doc = expect_json(ARGS("dead", "jobs.a"));
    CHECK_EQ_INT(iget(doc, "total"), 1);
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "dead_letter")), "jobs.a.dead");
    json_t *d = json_array_get(json_object_get(doc, "dead"), 0);
    CHECK_EQ_INT(iget(d, "sequence"), 1);
    CHECK_EQ_INT(iget(d, "origin_sequence"), 1);
    CHECK_EQ_INT(iget(d, "deliveries"), 2);
    CHECK_EQ_INT(iget(d, "requeued_sequence"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(d, "last_client")), "w-dead");
    CHECK_EQ_STR(json_string_value(json_object_get(d, "subscription")), "queue:workers");
    json_decref(doc);
    run_as(&r, TOKEN, ARGS("msg", "jobs.a.dead", "1"));
    const char *want =
        "\ndead letter of jobs.a #1 after 2 deliveries (last client w-dead)\npoison\n";
    if (r.status != 0 || !strstr(r.out, want)) hcli_dump(&r, ARGS("msg", "jobs.a.dead", "1"));
    CHECK_EQ_INT(r.status, 0);
    CHECK(strstr(r.out, want) != NULL);
    hcli_free(&r);

    expect_line(ARGS("requeue", "jobs.a", "--seq", "1"), "requeued 1 message onto jobs.a\n");
    CHECK(hstan_rx_wait(&work, 3, T_MS));
    struct hstan_rec rec = hstan_rx_get(&work, 2);
    CHECK_EQ_INT(rec.seq, 2);
    CHECK(!rec.redelivered);
    CHECK_EQ_STR(rec.data, "poison");
    CHECK(hstan_rx_ack(&work, 2) == NATS_OK); /* done with it: no second dead letter */
    run_as(&r, TOKEN, ARGS("msg", "jobs.a.dead", "1"));
    CHECK(r.status == 0 && strstr(r.out, "(last client w-dead), requeued as #2\n"));
    hcli_free(&r);
    doc = expect_json(ARGS("requeue", "jobs.a", "--all"));
    CHECK_EQ_INT(iget(doc, "requeued"), 0);
    CHECK_EQ_INT(iget(doc, "msgs"), 2);
    CHECK_EQ_INT(iget(doc, "last_seq"), 2);
    json_decref(doc);
    expect_failure(TOKEN, ARGS("requeue", "jobs.a", "--seq", "9"), "(HTTP 404)");
    CHECK_EQ_INT(channel_msgs("jobs.a"), 2);
    CHECK_EQ_INT(channel_msgs("jobs.a.dead"), 1);
    json_t *row = group_row("jobs.a", "workers");
    CHECK_EQ_INT(iget(row, "dead_total"), 1);
    json_decref(row);

    CHECK(stanSubscription_Unsubscribe(wsub) == NATS_OK);
    CHECK(stanSubscription_Unsubscribe(dsub) == NATS_OK);
    stanSubscription_Destroy(wsub);
    stanSubscription_Destroy(dsub);
    hstan_rx_destroy(&work);
    hstan_rx_destroy(&dead);
    stanConnection_Destroy(wc);
    stanConnection_Destroy(pc);
}

/* Every command, valid but for the token: refused with 401 (none) or 403
 * (wrong), the hint printed, nothing changed. */
static void test_auth_refused(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "auth-client");
    hstan_pub_range(sc, "auth.ch", "m%d", 1, 2);
    const char *const *cmds[] = {
        ARGS("msg", "auth.ch", "1"),
        ARGS("purge", "auth.ch"),
        ARGS("delete-channel", "auth.ch", "--force"),
        ARGS("delete-durable", "auth.ch", "d"),
        ARGS("close-client", "auth-client"),
        ARGS("dead", "auth.ch"),
        ARGS("requeue", "auth.ch", "--all"),
        ARGS("pause", "auth.ch", "--queue", "q"),
        ARGS("resume", "auth.ch", "--durable", "d"),
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        expect_failure(NULL, cmds[i], "stanza: missing bearer token (HTTP 401)\n");
        expect_failure(NULL, cmds[i], "hint: this needs the server's admin_token");
        expect_failure("wrong-token-0123456789", cmds[i], "stanza: invalid token (HTTP 403)\n");
        expect_failure("wrong-token-0123456789", cmds[i], "hint: the token of --token");
    }
    CHECK_EQ_INT(channel_msgs("auth.ch"), 2);
    CHECK(hstan_pub(sc, "auth.ch", "still connected") == NATS_OK);
    stanConnection_Destroy(sc);
}

static void start_server(struct hserver *s, const char *config, char *url, size_t len)
{
    int port = harness_free_port();
    CHECK(port > 0);
    static char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(url, len, "http://127.0.0.1:%d", port);
    const char *args[] = {"-m", port_s, "--store", "MEMORY", NULL};
    CHECK(harness_server_start(s, config, args) == 0);
}

/* No admin_token: 403 for everyone. monitor_require_token: the read-only
 * commands need it too, from --token or $STANZA_ADMIN_TOKEN (the flag winning).
 */
static void test_other_servers(void)
{
    char saved[64];
    snprintf(saved, sizeof saved, "%s", murl);
    struct hserver plain;
    start_server(&plain, NULL, murl, sizeof murl);
    expect_failure(TOKEN, ARGS("purge", "x"),
                   "stanza: admin operations are disabled (no admin_token "
                   "configured) (HTTP 403)");
    expect_failure(NULL, ARGS("dead", "x"), "hint: this needs admin_token set");
    CHECK_EQ_INT(harness_server_stop(&plain, SIGTERM), 0);

    struct hserver locked;
    start_server(&locked, "admin_token: \"" TOKEN "\"\nmonitor_require_token: true\n", murl,
                 sizeof murl);
    expect_failure(NULL, ARGS("channels"), "stanza: missing bearer token (HTTP 401)\n");
    expect_failure(NULL, ARGS("pending"), "hint: this needs the server's admin_token");
    expect_failure("wrong-token-0123456789", ARGS("server"), "(HTTP 403)");
    json_t *doc = expect_json(ARGS("server"));
    json_decref(doc);
    CHECK(setenv("STANZA_ADMIN_TOKEN", "wrong-token-0123456789", 1) == 0);
    doc = expect_json(ARGS("clients")); /* --token TOKEN wins */
    json_decref(doc);
    expect_failure(NULL, ARGS("clients"), "(HTTP 403)");
    CHECK(setenv("STANZA_ADMIN_TOKEN", TOKEN, 1) == 0);
    struct hcli_res r;
    run_as(&r, NULL, ARGS("channels"));
    if (r.status != 0) hcli_dump(&r, ARGS("channels"));
    CHECK_EQ_INT(r.status, 0);
    hcli_free(&r);
    CHECK(unsetenv("STANZA_ADMIN_TOKEN") == 0);
    CHECK_EQ_INT(harness_server_stop(&locked, SIGTERM), 0);
    snprintf(murl, sizeof murl, "%s", saved);
}

/* What the commands did is on disk: after a kill -9 and a restart a purge and a deletion stay
 * done, and a paused durable is still paused (resuming it releases what was held). */
static void test_after_restart(void)
{
    stanConnection *sc = hstan_connect_or_die(&srv, "restart-client");
    hstan_pub_range(sc, "rs.purge", "m%d", 1, 3);
    hstan_pub_range(sc, "rs.del", "m%d", 1, 2);
    struct hstan_rx rx;
    hstan_rx_init(&rx, 16, HSTAN_ACK_AUTO);
    stanSubscription *sub = NULL;
    stanSubOptions *o = hstan_subopts();
    CHECK(stanSubOptions_SetDurableName(o, "pdur") == NATS_OK);
    CHECK(hstan_sub(&sub, sc, "rs.ch", NULL, &rx, o) == NATS_OK);
    expect_line(ARGS("purge", "rs.purge", "--upto", "2"),
                "purged 2 messages from rs.purge (now 1 stored, first 3, last 3)\n");
    expect_line(ARGS("delete-channel", "rs.del"),
                "deleted channel rs.del (2 messages, 0 subscriptions)\n");
    expect_line(ARGS("pause", "rs.ch", "--durable", "pdur"),
                "paused durable pdur on rs.ch (1 subscription)\n");
    CHECK(stanSubscription_Close(sub) == NATS_OK); /* offline, kept */
    stanSubscription_Destroy(sub);
    stanConnection_Destroy(sc);

    CHECK_EQ_INT(harness_server_halt(&srv, SIGKILL), 128 + SIGKILL);
    CHECK(harness_server_restart(&srv, srv_args) == 0);
    CHECK_EQ_INT(channel_msgs("rs.purge"), 1);
    CHECK_EQ_INT(channel_msgs("rs.del"), -1);
    sc = hstan_connect_or_die(&srv, "restart-client");
    CHECK(hstan_sub(&sub, sc, "rs.ch", NULL, &rx, o) == NATS_OK); /* resumes, still paused */
    stanSubOptions_Destroy(o);
    hstan_pub_range(sc, "rs.ch", "job%d", 1, 2);
    json_t *rows = expect_json(ARGS("pending", "rs.ch", "--durable", "pdur"));
    json_t *row = json_array_get(rows, 0);
    CHECK(json_is_true(json_object_get(row, "is_paused")));
    CHECK_EQ_INT(iget(row, "inflight_msgs"), 0);
    json_decref(rows);
    CHECK_EQ_INT(hstan_rx_count(&rx), 0);
    expect_line(ARGS("resume", "rs.ch", "--durable", "pdur"),
                "resumed durable pdur on rs.ch (1 subscription)\n");
    CHECK(hstan_rx_wait(&rx, 2, T_MS));
    CHECK_EQ_STR(hstan_rx_get(&rx, 0).data, "job1");

    CHECK(stanSubscription_Unsubscribe(sub) == NATS_OK);
    stanSubscription_Destroy(sub);
    hstan_rx_destroy(&rx);
    stanConnection_Destroy(sc);
}

int main(void)
{
    hstan_dir_make(&dir);
    int mport = harness_free_port();
    CHECK(mport > 0);
    char mport_s[16];
    snprintf(mport_s, sizeof mport_s, "%d", mport);
    snprintf(murl, sizeof murl, "http://127.0.0.1:%d", mport);
    const char *args[] = {"-m", mport_s, "--store", "FILE", "--dir", dir.data, NULL};
    srv_args = args;
    CHECK(harness_server_start(&srv, conf, args) == 0);
    CHECK(unsetenv("STANZA_ADMIN_TOKEN") == 0);
    HSTAN_RUN(test_purge_live_subscriber);
    HSTAN_RUN(test_delete_channel);
    HSTAN_RUN(test_delete_durable);
    HSTAN_RUN(test_close_client);
    HSTAN_RUN(test_pause_resume);
    HSTAN_RUN(test_msg);
    HSTAN_RUN(test_dead_and_requeue);
    HSTAN_RUN(test_auth_refused);
    HSTAN_RUN(test_other_servers);
    HSTAN_RUN(test_after_restart);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGTERM), 0);
    hstan_dir_remove(&dir);
    return test_summary();
}

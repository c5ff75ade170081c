/* it_cli: the `stanza` command ($STANZA_CLI) as a process against a real stanzad (memory store):
 * `core pub`/`core sub` (NATS core), `pub`/`sub` (streaming), `bench core`/`bench stan`, and the
 * failure paths of the admin commands (`pending`, `channels`, `clients`, `server`).
 *
 * Every wait is for an event with a deadline: a subscriber's "Listening on" line before
 * publishing, a count of received lines in its output file, a process's exit. */
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_cluster.h"
#include "test.h"

#define T_MS 10000       /* deadline for a command that should finish at once */
#define T_BENCH_MS 40000 /* deadline for the benchmark (ASan builds are slow) */
#define MAX_ARGS 32

static struct hserver srv;
static char tmpdir[PATH_MAX - 64]; /* outputs of the commands; removed on success */

static void report_tmpdir(void)
{
    if (tmpdir[0] && access(tmpdir, F_OK) == 0) fprintf(stderr, "it_cli: kept %s\n", tmpdir);
}

static const char *cli_bin(void)
{
    const char *b = getenv("STANZA_CLI");
    if (!b || !*b) {
        fprintf(stderr, "STANZA_CLI is not set (path of the stanza binary)\n");
        exit(1);
    }
    return b;
}

/* A CLI process with its stdout and stderr in <tmpdir>/<name>.out and .err. */
struct cmd {
    struct hproc proc;
    char out[PATH_MAX];
    char err[PATH_MAX];
};

static void cmd_paths(struct cmd *c, const char *name)
{
    snprintf(c->out, sizeof(c->out), "%s/%s.out", tmpdir, name);
    snprintf(c->err, sizeof(c->err), "%s/%s.err", tmpdir, name);
    unlink(c->out);
    unlink(c->err);
}

static void build_argv(const char **argv, const char *const *args)
{
    size_t n = 0;
    argv[n++] = cli_bin();
    for (size_t i = 0; args[i]; i++) {
        CHECK(n < MAX_ARGS);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
}

static void cmd_dump(const struct cmd *c)
{
    hfile_dump("stdout", c->out);
    hfile_dump("stderr", c->err);
}

/* Starts `stanza args...` in the background. */
static void cmd_start(struct cmd *c, const char *name, const char *const *args)
{
    const char *argv[MAX_ARGS + 2];
    build_argv(argv, args);
    cmd_paths(c, name);
    CHECK(hproc_spawn(&c->proc, argv, tmpdir, c->out, c->err) == 0);
}

/* Runs `stanza args...` to completion and returns its exit status (-1: it had to be killed). */
static int cmd_run(struct cmd *c, const char *name, const char *const *args, int timeout_ms)
{
    const char *argv[MAX_ARGS + 2];
    build_argv(argv, args);
    cmd_paths(c, name);
    int st = hproc_run(argv, tmpdir, c->out, c->err, timeout_ms);
    if (st != 0) {
        fprintf(stderr, "stanza %s... exited with %d\n", args[0], st);
        cmd_dump(c);
    }
    return st;
}

/* Starts a subscriber and waits until it says it listens (so nothing published later is lost). */
static void start_sub(struct cmd *c, const char *name, const char *const *args)
{
    cmd_start(c, name, args);
    if (!hfile_wait_contains(c->err, "Listening on", T_MS)) {
        fprintf(stderr, "subscriber %s never said it was listening (exited: %s)\n", name,
                hproc_exited(&c->proc) ? "yes" : "no");
        cmd_dump(c);
        CHECK(false);
    }
    CHECK(!hproc_exited(&c->proc));
}

static void test_core_pub_then_sub_count(void)
{
    struct cmd sub, pub;
    const char *sub_args[] = {"-s", srv.url, "core", "sub", "foo", "--count", "3", NULL};
    start_sub(&sub, "sub", sub_args);

    const char *pub_args[] = {"-s", srv.url, "core", "pub", "foo", "hello", "--count", "3", NULL};
    CHECK_EQ_INT(cmd_run(&pub, "pub", pub_args, T_MS), 0);

    int st = hproc_wait(&sub.proc, T_MS);
    if (st != 0) cmd_dump(&sub);
    CHECK_EQ_INT(st, 0);
    char *text = hfile_read(sub.out);
    CHECK(text != NULL);
    int lines = 0, hellos = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        if (strstr(line, "hello")) hellos++;
    }
    if (lines != 3 || hellos != 3) cmd_dump(&sub);
    CHECK_EQ_INT(lines, 3);
    CHECK_EQ_INT(hellos, 3);
    free(text);
    CHECK_EQ_INT(hfile_count(sub.out, "[#3] Received on \"foo\": 'hello'"), 1);
}

static void test_core_queue_group_splits_messages(void)
{
    enum { N = 10 };
    struct cmd a, b, pub;
    const char *sub_args[] = {"-s", srv.url, "core", "sub", "qfoo", "--queue", "q", NULL};
    start_sub(&a, "qa", sub_args);
    start_sub(&b, "qb", sub_args);

    const char *pub_args[] = {"-s", srv.url, "core", "pub", "qfoo", "work", "--count", "10", NULL};
    CHECK_EQ_INT(cmd_run(&pub, "qpub", pub_args, T_MS), 0);

    /* Poll both outputs until all N arrived between them. */
    const char *rx = "Received on \"qfoo\"";
    int64_t deadline = harness_now_ms() + T_MS;
    int total;
    while ((total = hfile_count(a.out, rx) + hfile_count(b.out, rx)) < N &&
           harness_now_ms() < deadline)
        poll(NULL, 0, 5);
    if (total < N) {
        cmd_dump(&a);
        cmd_dump(&b);
    }
    CHECK(total >= N);

    CHECK_EQ_INT(hproc_stop(&a.proc, SIGTERM, T_MS), 0);
    CHECK_EQ_INT(hproc_stop(&b.proc, SIGTERM, T_MS), 0);
    /* Final counts, after both exited: exactly N, none delivered twice. */
    int na = hfile_count(a.out, rx), nb = hfile_count(b.out, rx);
    fprintf(stderr, "   queue members got %d and %d\n", na, nb);
    CHECK_EQ_INT(na + nb, N);
    CHECK_EQ_INT(hfile_count(a.out, "'work'") + hfile_count(b.out, "'work'"), N);
}

static void test_unreachable_server(void)
{
    int port = harness_free_port();
    CHECK(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    const char *cases[][8] = {
        {"-s", url, "core", "pub", "foo", "x", NULL},
        {"-s", url, "core", "sub", "foo", NULL},
        {"-s", url, "pub", "foo", "x", NULL},
        {"-s", url, "sub", "foo", NULL},
        {"-s", url, "bench", "core", "--msgs", "10", NULL},
        {"-s", url, "bench", "stan", "--msgs", "10", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmd c;
        const char *argv[MAX_ARGS + 2];
        build_argv(argv, cases[i]);
        cmd_paths(&c, "unreachable");
        int st = hproc_run(argv, tmpdir, c.out, c.err, T_MS);
        if (st != 1 || hfile_count(c.err, "cannot connect") == 0) {
            fprintf(stderr, "stanza %s %s to a closed port: status %d\n", cases[i][2], cases[i][3],
                    st);
            cmd_dump(&c);
        }
        CHECK_EQ_INT(st, 1);
        CHECK(hfile_count(c.err, "cannot connect") > 0);
    }
}

/* The admin commands read the HTTP monitoring; a closed port is a runtime failure (1) with the
 * monitor URL in the message, whether it comes from -m or from $STANZA_MONITOR. */
static void test_admin_unreachable_monitor(void)
{
    int port = harness_free_port();
    CHECK(port > 0);
    char url[64], want[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(want, sizeof(want), "stanza: cannot reach monitoring at %s: ", url);
    const char *cases[][8] = {
        {"-m", url, "pending", NULL},
        {"pending", "foo", "--monitor", url, NULL},
        {"pending", "--json", "-m", url, NULL},
        {"pending", "--watch", "1", "-m", url, NULL},
        {"-m", url, "channels", NULL},
        {"-m", url, "clients", "--json", NULL},
        {"-m", url, "server", NULL},
        {"server", NULL}, /* $STANZA_MONITOR */
    };
    CHECK(setenv("STANZA_MONITOR", url, 1) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmd c;
        const char *argv[MAX_ARGS + 2];
        build_argv(argv, cases[i]);
        cmd_paths(&c, "unreachable-monitor");
        int st = hproc_run(argv, tmpdir, c.out, c.err, T_MS);
        if (st != 1 || hfile_count(c.err, want) != 1) {
            fprintf(stderr, "case %zu: status %d, wanted 1 and '%s' on stderr\n", i, st, want);
            cmd_dump(&c);
        }
        CHECK_EQ_INT(st, 1);
        CHECK_EQ_INT(hfile_count(c.err, want), 1);
    }
    CHECK(unsetenv("STANZA_MONITOR") == 0);
}

static void test_usage_errors(void)
{
    const char *cases[][9] = {
        {NULL},
        {"frob", NULL},
        {"-s", srv.url, "frob", NULL},
        {"-s", srv.url, "core", NULL},
        {"-s", srv.url, "core", "frob", NULL},
        {"-s", srv.url, "core", "pub", "foo", NULL},
        {"-s", srv.url, "core", "pub", NULL},
        {"-s", srv.url, "core", "pub", "foo", "x", "--count", "abc", NULL},
        {"-s", srv.url, "core", "pub", "foo", "x", "--count", "0", NULL},
        {"-s", srv.url, "core", "sub", NULL},
        {"-s", srv.url, "core", "sub", "foo", "--count", NULL},
        {"-s", srv.url, "core", "sub", "foo", "--bogus", NULL},
        {"-s", srv.url, "pub", "foo", NULL},
        {"-s", srv.url, "pub", NULL},
        {"-s", srv.url, "pub", "foo", "x", "--count", "0", NULL},
        {"-s", srv.url, "pub", "foo", "x", "--async=yes", NULL},
        {"-s", srv.url, "sub", NULL},
        {"-s", srv.url, "sub", "foo", "bar", NULL},
        {"-s", srv.url, "sub", "foo", "--all", "--last", NULL},
        {"-s", srv.url, "sub", "foo", "--seq", "3", "--since", "1m", NULL},
        {"-s", srv.url, "sub", "foo", "--since", "5x", NULL},
        {"-s", srv.url, "sub", "foo", "--ack-wait", "0", NULL},
        {"-s", srv.url, "sub", "foo", "--max-inflight", "-1", NULL},
        {"-s", srv.url, "sub", "foo", "--durable", NULL},
        {"-s", srv.url, "sub", "foo", "--client-id", NULL},
        {"-s", srv.url, "sub", "foo", "--bogus", NULL},
        {"-s", srv.url, "bench", "frob", NULL},
        {"-s", srv.url, "bench", "core", "--msgs", "many", NULL},
        {"-s", srv.url, "bench", "stan", "--phase", "everything", NULL},
        {"-s", srv.url, "bench", "--subs", "0", NULL},
        {"pending", "foo", "bar", NULL},
        {"pending", "", NULL},
        {"pending", "--watch", "0", NULL},
        {"pending", "--watch", "soon", NULL},
        {"pending", "--queue", NULL},
        {"pending", "--durable", NULL},
        {"pending", "--json=yes", NULL},
        {"pending", "--bogus", NULL},
        {"pending", "-m", NULL},
        {"-m", "", "server", NULL},
        {"channels", "foo", NULL},
        {"channels", "--watch", "1", NULL},
        {"clients", "foo", NULL},
        {"server", "--json=1", NULL},
        {"server", "foo", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmd c;
        const char *argv[MAX_ARGS + 2];
        build_argv(argv, cases[i]);
        cmd_paths(&c, "usage");
        int st = hproc_run(argv, tmpdir, c.out, c.err, T_MS);
        char *err = hfile_read(c.err);
        CHECK(err != NULL);
        if (st != 2 || !*err) {
            fprintf(stderr, "case %zu:", i);
            for (size_t k = 0; cases[i][k]; k++)
                fprintf(stderr, " %s", cases[i][k]);
            fprintf(stderr, "\nstatus %d, wanted 2 and a message on stderr\n", st);
            cmd_dump(&c);
        }
        CHECK_EQ_INT(st, 2);
        CHECK(*err != '\0');
        free(err);
    }
}

static void test_help_and_version(void)
{
    struct cmd c;
    const char *help[] = {"help", NULL};
    CHECK_EQ_INT(cmd_run(&c, "help", help, T_MS), 0);
    CHECK(hfile_count(c.out, "pub") > 0 && hfile_count(c.out, "sub") > 0);
    CHECK(hfile_count(c.out, "core pub") > 0 && hfile_count(c.out, "--cluster") > 0);
    const char *version[] = {"version", NULL};
    CHECK_EQ_INT(cmd_run(&c, "version", version, T_MS), 0);
    CHECK(hfile_count(c.out, "stanza") > 0);
}

/* The bench's output has a "RESULT core" line holding want. */
static void check_core_result(const struct cmd *c, const char *want)
{
    char *text = hfile_read(c->out);
    CHECK(text != NULL);
    const char *line = strncmp(text, "RESULT core", 11) == 0 ? text : strstr(text, "\nRESULT core");
    if (!line) cmd_dump(c);
    CHECK(line != NULL);
    if (*line == '\n') line++;
    fprintf(stderr, "   %.*s\n", (int)strcspn(line, "\n"), line);
    CHECK(strstr(line, want) != NULL);
    free(text);
}

static void test_bench_core(void)
{
    struct cmd c;
    const char *args[] = {"bench", "core", "--msgs", "20000", "-s", srv.url, NULL};
    CHECK_EQ_INT(cmd_run(&c, "bench", args, T_BENCH_MS), 0);
    check_core_result(&c, "msgs=20000");
}

/* --sub-url: the subscriber on node B of two routed nats-servers, the publisher on A; the
 * bench's warm-up waits for B's interest to reach A, so no message is published into a route
 * that has not heard of the subscriber (the run would then miss messages and exit 1). A
 * --sub-url nobody listens on fails naming that URL. */
static void test_bench_core_sub_url(void)
{
    struct hnatsd a, b;
    CHECK(hnatsd_start(&a, "A", -1, NULL, "bench") == 0);
    CHECK(hnatsd_start(&b, "B", -1, a.curl, "bench") == 0);
    struct cmd c;
    const char *args[] = {"bench", "core",      "--msgs", "20000", "-s",
                          a.url,   "--sub-url", b.url,    NULL};
    CHECK_EQ_INT(cmd_run(&c, "bench_routed", args, T_BENCH_MS), 0);
    check_core_result(&c, "msgs=20000");

    char dead[64];
    snprintf(dead, sizeof dead, "nats://127.0.0.1:%d", harness_free_port());
    const char *bad[] = {"bench", "core", "--msgs", "10", "-s", a.url, "--sub-url", dead, NULL};
    const char *argv[MAX_ARGS + 2];
    build_argv(argv, bad);
    cmd_paths(&c, "bench_dead_sub");
    CHECK_EQ_INT(hproc_run(argv, tmpdir, c.out, c.err, T_MS), 1);
    if (hfile_count(c.err, dead) == 0) cmd_dump(&c);
    CHECK(hfile_count(c.err, dead) > 0);
    hnatsd_cleanup(&b);
    hnatsd_cleanup(&a);
}

/* ---- streaming ---- */

/* Runs `stanza args...` expecting exit 0; returns its stdout (to free). */
static char *run_ok(struct cmd *c, const char *name, const char *const *args)
{
    CHECK_EQ_INT(cmd_run(c, name, args, T_MS), 0);
    char *text = hfile_read(c->out);
    CHECK(text != NULL);
    return text;
}

/* Counts lines of a sub's output, and checks it printed exactly the sequences first..last in
 * order, numbered from 1, none redelivered, each with payload data. */
static void check_seqs(const struct cmd *c, uint64_t first, uint64_t last, const char *data)
{
    char *text = hfile_read(c->out);
    CHECK(text != NULL);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        lines++;
    free(text);
    bool ok = lines == (int)(last - first + 1);
    for (uint64_t seq = first; ok && seq <= last; seq++) {
        char want[128];
        snprintf(want, sizeof want, "[#%d] seq=%llu redelivered=false: '%s'\n",
                 (int)(seq - first + 1), (unsigned long long)seq, data);
        ok = hfile_count(c->out, want) == 1;
        if (!ok) fprintf(stderr, "missing line: %s", want);
    }
    if (!ok) {
        fprintf(stderr, "wanted seq %llu..%llu with '%s', got %d lines\n",
                (unsigned long long)first, (unsigned long long)last, data, lines);
        cmd_dump(c);
    }
    CHECK(ok);
}

static void test_stan_pub_then_sub_all(void)
{
    struct cmd pub, sub;
    const char *pub_args[] = {"-s", srv.url, "pub", "s.all", "m", "--count", "3", NULL};
    char *out = run_ok(&pub, "spub", pub_args);
    CHECK(strstr(out, "Published 3 messages to channel s.all") != NULL);
    free(out);

    /* Stored: a subscriber that starts afterwards gets them all. */
    const char *sub_args[] = {"-s", srv.url, "sub", "s.all", "--all", "--count", "3", NULL};
    CHECK_EQ_INT(cmd_run(&sub, "ssub", sub_args, T_MS), 0);
    check_seqs(&sub, 1, 3, "m");
    CHECK(hfile_count(sub.err, "Listening on channel \"s.all\"") == 1);

    /* --async, then --seq/--last start positions over the 5 now stored. */
    const char *apub_args[] = {"-s", srv.url, "pub", "s.all", "a", "--count", "2", "--async", NULL};
    out = run_ok(&pub, "sapub", apub_args);
    CHECK(strstr(out, "Published 2 messages to channel s.all") != NULL);
    free(out);
    const char *seq_args[] = {"-s", srv.url, "sub", "s.all", "--seq", "4", "--count", "2", NULL};
    CHECK_EQ_INT(cmd_run(&sub, "sseq", seq_args, T_MS), 0);
    check_seqs(&sub, 4, 5, "a");
    const char *last_args[] = {"sub", "s.all", "--last", "--count", "1", "-s", srv.url, NULL};
    CHECK_EQ_INT(cmd_run(&sub, "slast", last_args, T_MS), 0);
    check_seqs(&sub, 5, 5, "a");
}

static void test_stan_durable_resumes(void)
{
    struct cmd pub, sub;
    const char *pub1[] = {"-s", srv.url, "pub", "s.dur", "one", "--count", "2", NULL};
    free(run_ok(&pub, "dpub1", pub1));
    /* The same client id both times: a durable belongs to client id + name. */
    const char *sub_args[] = {"-s",        srv.url, "--client-id", "it-cli-durable", "sub", "s.dur",
                              "--durable", "d",     "--all",       "--count",        "2",   NULL};
    CHECK_EQ_INT(cmd_run(&sub, "dsub1", sub_args, T_MS), 0);
    check_seqs(&sub, 1, 2, "one");

    const char *pub2[] = {"-s", srv.url, "pub", "s.dur", "two", "--count", "2", NULL};
    free(run_ok(&pub, "dpub2", pub2));
    /* No --all this time: a resuming durable ignores the start position anyway. */
    const char *resume[] = {"-s",      srv.url, "sub",         "s.dur",          "--durable", "d",
                            "--count", "2",     "--client-id", "it-cli-durable", NULL};
    CHECK_EQ_INT(cmd_run(&sub, "dsub2", resume, T_MS), 0);
    check_seqs(&sub, 3, 4, "two");
}

static void test_stan_queue_group_splits_messages(void)
{
    enum { N = 10 };
    struct cmd a, b, pub;
    const char *sub_args[] = {"-s", srv.url, "sub", "s.q", "--queue", "q", NULL};
    start_sub(&a, "sqa", sub_args);
    start_sub(&b, "sqb", sub_args);

    const char *pub_args[] = {"-s", srv.url, "pub", "s.q", "job", "--count", "10", NULL};
    free(run_ok(&pub, "sqpub", pub_args));

    const char *rx = "redelivered=false: 'job'";
    int64_t deadline = harness_now_ms() + T_MS;
    int total;
    while ((total = hfile_count(a.out, rx) + hfile_count(b.out, rx)) < N &&
           harness_now_ms() < deadline)
        poll(NULL, 0, 5);
    if (total < N) {
        cmd_dump(&a);
        cmd_dump(&b);
    }
    CHECK(total >= N);
    CHECK_EQ_INT(hproc_stop(&a.proc, SIGTERM, T_MS), 0);
    CHECK_EQ_INT(hproc_stop(&b.proc, SIGTERM, T_MS), 0);

    int na = hfile_count(a.out, "seq="), nb = hfile_count(b.out, "seq=");
    fprintf(stderr, "   queue members got %d and %d\n", na, nb);
    CHECK_EQ_INT(na + nb, N);
    /* Each sequence exactly once between the two. */
    for (int seq = 1; seq <= N; seq++) {
        char want[64];
        snprintf(want, sizeof want, " seq=%d ", seq);
        int n = hfile_count(a.out, want) + hfile_count(b.out, want);
        if (n != 1) fprintf(stderr, "seq %d delivered %d times\n", seq, n);
        CHECK_EQ_INT(n, 1);
    }
}

static void test_stan_connect_refused(void)
{
    struct cmd holder, c;
    /* A live client holds the id; the server pings it, it answers, the newcomer is refused. */
    const char *hold[] = {"-s", srv.url, "--client-id", "it-cli-dup", "sub", "s.dup", NULL};
    start_sub(&holder, "dupsub", hold);
    const char *dup[] = {"-s", srv.url, "--client-id", "it-cli-dup", "pub", "s.dup", "x", NULL};
    const char *argv[MAX_ARGS + 2];
    build_argv(argv, dup);
    cmd_paths(&c, "duppub");
    int st = hproc_run(argv, tmpdir, c.out, c.err, T_MS);
    if (st != 1 || hfile_count(c.err, "clientID already registered") != 1) cmd_dump(&c);
    CHECK_EQ_INT(st, 1);
    CHECK_EQ_INT(hfile_count(c.err, "clientID already registered"), 1);
    CHECK_EQ_INT(hproc_stop(&holder.proc, SIGTERM, T_MS), 0);

    /* A cluster id nobody serves: the NATS connection works, nobody answers the connect. */
    const char *wrong[] = {"-s", srv.url, "-c", "no-such-cluster", "pub", "s.dup", "x", NULL};
    build_argv(argv, wrong);
    cmd_paths(&c, "wrongcluster");
    st = hproc_run(argv, tmpdir, c.out, c.err, T_MS);
    if (st != 1 || hfile_count(c.err, "no-such-cluster") == 0) cmd_dump(&c);
    CHECK_EQ_INT(st, 1);
    CHECK(hfile_count(c.err, "no-such-cluster") > 0);
}

static void test_bench_stan(void)
{
    struct cmd c;
    const char *args[] = {"bench", "stan", "--msgs", "2000", "--subs", "2", "-s", srv.url, NULL};
    CHECK_EQ_INT(cmd_run(&c, "bench_stan", args, T_BENCH_MS), 0);
    char *text = hfile_read(c.out);
    CHECK(text != NULL);
    const char *line = strncmp(text, "RESULT stan", 11) == 0 ? text : strstr(text, "\nRESULT stan");
    if (!line) cmd_dump(&c);
    CHECK(line != NULL);
    if (*line == '\n') line++;
    fprintf(stderr, "   %.*s\n", (int)strcspn(line, "\n"), line);
    const char *fields[] = {
        "msgs=2000",    "subs=2",       "pub_msgs_per_sec=", "drain_msgs_per_sec=",
        "sync_p50_us=", "sync_p90_us=", "sync_p99_us="};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!strstr(line, fields[i])) fprintf(stderr, "no %s in the RESULT line\n", fields[i]);
        CHECK(strstr(line, fields[i]) != NULL);
    }
    free(text);
}

int main(void)
{
    int64_t t0 = harness_now_ms();
    CHECK(hmkdtemp(tmpdir, sizeof(tmpdir)) == 0);
    atexit(report_tmpdir);
    const char *store_args[] = {"--store", "MEMORY", NULL};
    CHECK(harness_server_start(&srv, NULL, store_args) == 0);
    TEST_RUN(test_core_pub_then_sub_count);
    TEST_RUN(test_core_queue_group_splits_messages);
    TEST_RUN(test_stan_pub_then_sub_all);
    TEST_RUN(test_stan_durable_resumes);
    TEST_RUN(test_stan_queue_group_splits_messages);
    TEST_RUN(test_stan_connect_refused);
    TEST_RUN(test_unreachable_server);
    TEST_RUN(test_admin_unreachable_monitor);
    TEST_RUN(test_usage_errors);
    TEST_RUN(test_help_and_version);
    TEST_RUN(test_bench_core);
    TEST_RUN(test_bench_core_sub_url);
    TEST_RUN(test_bench_stan);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGTERM), 0);
    if (!getenv("HARNESS_KEEP")) {
        hremove_tree(tmpdir);
        tmpdir[0] = '\0';
    }
    fprintf(stderr, "it_cli: %lld ms\n", (long long)(harness_now_ms() - t0));
    return test_summary();
}

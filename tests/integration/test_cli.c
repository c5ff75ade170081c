/* it_cli: the `stanza` command ($STANZA_CLI) as a process against a real stanzad.
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

static void test_pub_then_sub_count(void)
{
    struct cmd sub, pub;
    const char *sub_args[] = {"-s", srv.url, "sub", "foo", "--count", "3", NULL};
    start_sub(&sub, "sub", sub_args);

    const char *pub_args[] = {"-s", srv.url, "pub", "foo", "hello", "--count", "3", NULL};
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

static void test_queue_group_splits_messages(void)
{
    enum { N = 10 };
    struct cmd a, b, pub;
    const char *sub_args[] = {"-s", srv.url, "sub", "qfoo", "--queue", "q", NULL};
    start_sub(&a, "qa", sub_args);
    start_sub(&b, "qb", sub_args);

    const char *pub_args[] = {"-s", srv.url, "pub", "qfoo", "work", "--count", "10", NULL};
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
        {"-s", url, "pub", "foo", "x", NULL},
        {"-s", url, "sub", "foo", NULL},
        {"-s", url, "bench", "core", "--msgs", "10", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cmd c;
        const char *argv[MAX_ARGS + 2];
        build_argv(argv, cases[i]);
        cmd_paths(&c, "unreachable");
        int st = hproc_run(argv, tmpdir, c.out, c.err, T_MS);
        if (st != 1 || hfile_count(c.err, "cannot connect") == 0) {
            fprintf(stderr, "stanza %s to a closed port: status %d\n", cases[i][2], st);
            cmd_dump(&c);
        }
        CHECK_EQ_INT(st, 1);
        CHECK(hfile_count(c.err, "cannot connect") > 0);
    }
}

static void test_usage_errors(void)
{
    const char *cases[][8] = {
        {NULL},
        {"frob", NULL},
        {"-s", srv.url, "frob", NULL},
        {"-s", srv.url, "pub", "foo", NULL},
        {"-s", srv.url, "pub", NULL},
        {"-s", srv.url, "pub", "foo", "x", "--count", "abc", NULL},
        {"-s", srv.url, "pub", "foo", "x", "--count", "0", NULL},
        {"-s", srv.url, "sub", NULL},
        {"-s", srv.url, "sub", "foo", "--count", NULL},
        {"-s", srv.url, "sub", "foo", "--bogus", NULL},
        {"-s", srv.url, "bench", NULL},
        {"-s", srv.url, "bench", "core", "--msgs", "many", NULL},
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
    const char *version[] = {"version", NULL};
    CHECK_EQ_INT(cmd_run(&c, "version", version, T_MS), 0);
    CHECK(hfile_count(c.out, "stanza") > 0);
}

static void test_bench_core(void)
{
    struct cmd c;
    const char *args[] = {"bench", "core", "--msgs", "20000", "-s", srv.url, NULL};
    CHECK_EQ_INT(cmd_run(&c, "bench", args, T_BENCH_MS), 0);
    char *text = hfile_read(c.out);
    CHECK(text != NULL);
    const char *line = strncmp(text, "RESULT core", 11) == 0 ? text : strstr(text, "\nRESULT core");
    if (!line) cmd_dump(&c);
    CHECK(line != NULL);
    if (*line == '\n') line++;
    fprintf(stderr, "   %.*s\n", (int)strcspn(line, "\n"), line);
    CHECK(strstr(line, "msgs=20000") != NULL);
    free(text);
}

int main(void)
{
    int64_t t0 = harness_now_ms();
    CHECK(hmkdtemp(tmpdir, sizeof(tmpdir)) == 0);
    atexit(report_tmpdir);
    CHECK(harness_server_start(&srv, NULL, NULL) == 0);
    TEST_RUN(test_pub_then_sub_count);
    TEST_RUN(test_queue_group_splits_messages);
    TEST_RUN(test_unreachable_server);
    TEST_RUN(test_usage_errors);
    TEST_RUN(test_help_and_version);
    TEST_RUN(test_bench_core);
    CHECK_EQ_INT(harness_server_stop(&srv, SIGTERM), 0);
    if (!getenv("HARNESS_KEEP")) {
        hremove_tree(tmpdir);
        tmpdir[0] = '\0';
    }
    fprintf(stderr, "it_cli: %lld ms\n", (long long)(harness_now_ms() - t0));
    return test_summary();
}

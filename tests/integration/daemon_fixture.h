/* daemon_fixture.h: what the it_daemon programs share: starting stanzad by hand with the flags
 * and config file a test is about (struct daemon), expecting a start-up error, NATS clients.
 * Header-only (static inline), one copy per test program. */
#ifndef STANZA_IT_DAEMON_FIXTURE_H
#define STANZA_IT_DAEMON_FIXTURE_H
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "harness_sched.h"
#include "test.h"

#define T_MS 5000        /* deadline for anything that should be immediate */
#define T_START_MS 10000 /* deadline for a start-up (generous: ASan, loaded machines) */
#define T_STOP_MS 10000
#define START_ATTEMPTS 5    /* port races with other tests: retry on "address in use" */
#define READY_LIMIT_MS 1000 /* the readiness assertion; the target is 200 ms */
#define READY_TARGET_MS 200

static inline const char *stanzad_bin(void)
{
    const char *b = getenv("STANZAD");
    if (!b || !*b) {
        fprintf(stderr, "STANZAD is not set (path of the stanzad binary)\n");
        exit(1);
    }
    return b;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- A stanzad started by hand ----
 * Arguments are templates: "{port}" and "{port2}" become two free ports, "{dir}" the daemon's
 * temp dir, "{log}" <dir>/stanzad.log, "{conf}" <dir>/stanza.yaml (written from the config
 * template, which is expanded the same way). The process runs in its temp dir with stdout and
 * stderr going to <dir>/stanzad.out. */

#define MAX_ARGS 32

struct daemon {
    struct hproc proc;
    int port, port2;
    char dir[PATH_MAX - 64];
    char out[PATH_MAX];
    char log[PATH_MAX];
    char conf[PATH_MAX];
    int64_t ready_us;        /* from just before the fork until the port accepted */
    int64_t ready_server_ms; /* the same less the machine's run-queue waits (harness_sched.h) */
    struct daemon *next;
};

static struct daemon *daemons; /* not yet cleaned up: reported if the test fails */

static inline void report_daemons(void)
{
    for (struct daemon *d = daemons; d; d = d->next) {
        fprintf(stderr, "it_daemon: kept %s\n", d->dir);
        hfile_dump("output", d->out);
        hfile_dump("log", d->log);
    }
}

static inline void daemon_init(struct daemon *d)
{
    static bool hooked;
    if (!hooked) {
        atexit(report_daemons);
        hooked = true;
    }
    memset(d, 0, sizeof(*d));
    CHECK(hmkdtemp(d->dir, sizeof(d->dir)) == 0);
    snprintf(d->out, sizeof(d->out), "%s/stanzad.out", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/stanzad.log", d->dir);
    snprintf(d->conf, sizeof(d->conf), "%s/stanza.yaml", d->dir);
    d->next = daemons;
    daemons = d;
}

/* Removes the temp dir; only on success, so a failure leaves everything to look at. */
static inline void daemon_done(struct daemon *d)
{
    CHECK(d->proc.pid == 0);
    for (struct daemon **pp = &daemons; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    if (!getenv("HARNESS_KEEP")) hremove_tree(d->dir);
}

static inline void append(char *buf, size_t cap, size_t *n, const char *s)
{
    size_t len = strlen(s);
    CHECK(*n + len < cap);
    memcpy(buf + *n, s, len);
    *n += len;
    buf[*n] = '\0';
}

/* Expands a template into a malloc'ed string. */
static inline char *expand(const struct daemon *d, const char *t)
{
    static const char *const names[] = {"{port}", "{port2}", "{dir}", "{log}", "{conf}"};
    char buf[4 * PATH_MAX];
    size_t n = 0;
    buf[0] = '\0';
    while (*t) {
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && strncmp(t, names[k], strlen(names[k])) != 0)
            k++;
        if (k == sizeof(names) / sizeof(names[0])) {
            char c[2] = {*t++, '\0'};
            append(buf, sizeof(buf), &n, c);
            continue;
        }
        char num[16];
        const char *rep = num;
        switch (k) {
        case 0:
            snprintf(num, sizeof(num), "%d", d->port);
            break;
        case 1:
            snprintf(num, sizeof(num), "%d", d->port2);
            break;
        case 2:
            rep = d->dir;
            break;
        case 3:
            rep = d->log;
            break;
        default:
            rep = d->conf;
            break;
        }
        append(buf, sizeof(buf), &n, rep);
        t += strlen(names[k]);
    }
    char *r = strdup(buf);
    CHECK(r != NULL);
    return r;
}

/* Spawns stanzad with the expanded args (ports already chosen). */
static inline void daemon_spawn(struct daemon *d, const char *const *args)
{
    char *argv[MAX_ARGS + 2] = {0};
    size_t n = 0;
    argv[n++] = (char *)stanzad_bin();
    for (size_t i = 0; args && args[i]; i++) {
        CHECK(n < MAX_ARGS);
        argv[n++] = expand(d, args[i]);
    }
    unlink(d->out);
    CHECK(hproc_spawn(&d->proc, (const char *const *)argv, d->dir, d->out, d->out) == 0);
    for (size_t i = 1; i < n; i++)
        free(argv[i]);
}

static inline bool says_in_use(const struct daemon *d)
{
    return hfile_count(d->out, "in use") > 0 || hfile_count(d->log, "in use") > 0;
}

/* The start-up's wall time less what the machine added: the run-queue waits of the daemon's
 * threads (all since its fork) and ours since self_waited, read before the last poll (the
 * earlier polls ran alongside the daemon's start-up, not after it; only the last one's wake-up
 * delays seeing it ready). */
static int64_t ready_less_waits(const struct daemon *d, int64_t self_waited)
{
    int64_t daemon_ns = hsched_runq_wait_ns(d->proc.pid), self_ns = hsched_runq_wait_ns(getpid());
    CHECK(daemon_ns >= 0 && self_ns >= 0 && self_waited >= 0);
    int64_t wall_ms = d->ready_us / 1000, waited_ms = (daemon_ns + self_ns - self_waited) / 1000000;
    return wall_ms > waited_ms ? wall_ms - waited_ms : 0;
}

/* Picks ports, writes the config (if conf_tmpl), spawns, and waits until {port} accepts,
 * polling every millisecond so that ready_us is precise. Returns 0, or -1 after printing why. */
static inline int daemon_start(struct daemon *d, const char *conf_tmpl, const char *const *args)
{
    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        d->port = harness_free_port();
        do
            d->port2 = harness_free_port();
        while (d->port2 == d->port);
        CHECK(d->port > 0 && d->port2 > 0);
        unlink(d->log);
        if (conf_tmpl) {
            char *text = expand(d, conf_tmpl);
            CHECK(hfile_write(d->conf, text) == 0);
            free(text);
        }
        int64_t t0 = now_us();
        daemon_spawn(d, args);
        int64_t deadline = t0 + (int64_t)T_START_MS * 1000;
        int64_t self_waited = hsched_runq_wait_ns(getpid());
        for (;;) {
            if (harness_port_accepts(d->port)) {
                d->ready_us = now_us() - t0;
                d->ready_server_ms = ready_less_waits(d, self_waited);
                return 0;
            }
            self_waited = hsched_runq_wait_ns(getpid());
            if (hproc_exited(&d->proc)) break;
            if (now_us() >= deadline) {
                fprintf(stderr, "stanzad did not listen on port %d within %d ms\n", d->port,
                        T_START_MS);
                hproc_stop(&d->proc, SIGKILL, T_STOP_MS);
                return -1;
            }
            poll(NULL, 0, 1);
        }
        if (attempt < START_ATTEMPTS && says_in_use(d)) continue;
        fprintf(stderr, "stanzad exited during start-up with status %d\n", d->proc.exit_status);
        return -1;
    }
    return -1;
}

static inline int daemon_stop(struct daemon *d, int sig)
{
    return hproc_stop(&d->proc, sig, T_STOP_MS);
}

/* ---- Short-lived runs ---- */

struct run {
    char dir[PATH_MAX - 64];
    char out[PATH_MAX];
    char err[PATH_MAX];
    int status;
    char *out_text, *err_text;
};

/* Runs stanzad with args (not templates) to completion; keeps stdout and stderr apart. */
static inline void run_stanzad(struct run *r, const char *const *args)
{
    memset(r, 0, sizeof(*r));
    CHECK(hmkdtemp(r->dir, sizeof(r->dir)) == 0);
    snprintf(r->out, sizeof(r->out), "%s/stdout", r->dir);
    snprintf(r->err, sizeof(r->err), "%s/stderr", r->dir);
    const char *argv[MAX_ARGS + 2] = {stanzad_bin()};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++) {
        CHECK(n < MAX_ARGS);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    r->status = hproc_run(argv, r->dir, r->out, r->err, T_MS);
    r->out_text = hfile_read(r->out);
    r->err_text = hfile_read(r->err);
    CHECK(r->out_text && r->err_text);
}

static inline void run_free(struct run *r)
{
    free(r->out_text);
    free(r->err_text);
    hremove_tree(r->dir);
}

/* A failed start must say why on stderr and exit 1 (not crash, not hang, not start). The
 * message must contain needle, and needle2 unless it is NULL. */
static inline void expect_start_error2(const char *const *args, const char *needle,
                                       const char *needle2)
{
    struct run r;
    run_stanzad(&r, args);
    bool ok = r.status == 1 && strstr(r.err_text, needle) &&
              (!needle2 || strstr(r.err_text, needle2)) && !strstr(r.err_text, "Server is ready");
    if (!ok) {
        fprintf(stderr, "args:");
        for (size_t i = 0; args[i]; i++)
            fprintf(stderr, " %s", args[i]);
        fprintf(stderr,
                "\nstatus %d, wanted 1 and stderr containing \"%s\" and \"%s\"; stderr:\n%s\n",
                r.status, needle, needle2 ? needle2 : "", r.err_text);
    }
    CHECK(ok);
    run_free(&r);
}

static inline void expect_start_error(const char *const *args, const char *needle)
{
    expect_start_error2(args, needle, NULL);
}

/* ---- libnats ---- */

struct copts {
    const char *url;
    const char *token;
    bool no_echo, verbose, pedantic;
    struct hcounter *disconnected; /* bumped by the disconnected callback */
};

static inline void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    hcounter_add(closure, 1);
}

/* Connects without reconnection. Returns the status (quietly: failures are expected by some
 * tests). */
static inline natsStatus nats_connect(const struct copts *o, natsConnection **nc)
{
    natsOptions *opts = NULL;
    *nc = NULL;
    natsStatus st = natsOptions_Create(&opts);
    if (st == NATS_OK) st = natsOptions_SetURL(opts, o->url);
    if (st == NATS_OK) st = natsOptions_SetAllowReconnect(opts, false);
    if (st == NATS_OK) st = natsOptions_SetTimeout(opts, T_MS);
    if (st == NATS_OK && o->token) st = natsOptions_SetToken(opts, o->token);
    if (st == NATS_OK && o->no_echo) st = natsOptions_SetNoEcho(opts, true);
    if (st == NATS_OK && o->verbose) st = natsOptions_SetVerbose(opts, true);
    if (st == NATS_OK && o->pedantic) st = natsOptions_SetPedantic(opts, true);
    if (st == NATS_OK && o->disconnected)
        st = natsOptions_SetDisconnectedCB(opts, on_disconnected, o->disconnected);
    if (st == NATS_OK) st = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return st;
}

static inline natsConnection *connect_or_die(const struct copts *o)
{
    natsConnection *nc = NULL;
    natsStatus st = nats_connect(o, &nc);
    if (st != NATS_OK)
        fprintf(stderr, "connect to %s: %s (%s)\n", o->url, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    return nc;
}

static inline natsConnection *connect_url(const char *url)
{
    struct copts o = {.url = url};
    return connect_or_die(&o);
}

static inline void close_conn(natsConnection *nc)
{
    CHECK_EQ_INT(natsConnection_Status(nc), NATS_CONN_STATUS_CONNECTED);
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
}

/* A message published on one connection arrives on a subscription of the other. */
static inline void round_trip(natsConnection *pub, natsConnection *sub_nc, const char *subject)
{
    natsSubscription *sub = NULL;
    CHECK(natsConnection_SubscribeSync(&sub, sub_nc, subject) == NATS_OK);
    CHECK(natsConnection_Flush(sub_nc) == NATS_OK);
    CHECK(natsConnection_PublishString(pub, subject, "round trip") == NATS_OK);
    CHECK(natsConnection_Flush(pub) == NATS_OK);
    natsMsg *m = NULL;
    CHECK(natsSubscription_NextMsg(&m, sub, T_MS) == NATS_OK);
    CHECK_EQ_STR(natsMsg_GetSubject(m), subject);
    CHECK_MEM(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), "round trip");
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
}

static inline void url_of(char *buf, size_t n, int port)
{
    snprintf(buf, n, "nats://127.0.0.1:%d", port);
}

/* ---- Start-up ---- */

#endif

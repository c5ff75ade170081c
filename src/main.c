/* stanzad: argv and config, logging, the pid file, signals, and the loop. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "monitor.h"
#include "repl.h"
#include "server.h"
#include "stan.h"
#include "upstream.h"

typedef struct daemon {
    uv_loop_t *loop;
    config_t cfg;
    server_t *server;     /* the embedded NATS server, or */
    upstream_t *upstream; /* the connection to an external one (-ns) */
    bus_t bus;            /* whichever of the two the engine runs over */
    stan_t *stan; /* clustered: serving only while this node leads (else a view, or empty) */
    monitor_t *monitor;
    store_t *store; /* clustered: opened here, replicated by repl, lent to each engine */
    repl_t *repl;
    bool leading;
    bool viewing;          /* d->stan is a view of the store (stan_load_view) */
    uint64_t view_index;   /* the applied index it was loaded at */
    uint64_t view_ms;      /* and when (clock_mono_ms) */
    uint64_t view_cost_ms; /* how long that load took */
    int64_t start_ns;      /* wall clock, for every engine's start_time */
    uv_signal_t sigusr1, sighup;
    uv_async_t stop_async; /* SIGINT/SIGTERM, from the signal handler into the loop */
    int exit_code;
    bool stopping;
} daemon_t;

static void on_server_down(void *arg)
{
    daemon_t *d = arg;
    uv_close((uv_handle_t *)&d->stop_async, NULL);
    uv_close((uv_handle_t *)&d->sigusr1, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void stop_bus(void *arg)
{
    daemon_t *d = arg;
    if (d->upstream)
        upstream_shutdown(d->upstream, on_server_down, d);
    else
        server_shutdown(d->server, on_server_down, d);
}

/* Raft before NATS: the node announces its address over NATS until it stops. */
static void on_monitor_down(void *arg)
{
    daemon_t *d = arg;
    if (d->repl)
        repl_stop(d->repl, stop_bus, d);
    else
        stop_bus(d);
}

static void on_stan_down(void *arg)
{
    daemon_t *d = arg;
    monitor_close(d->monitor, on_monitor_down, d);
}

/* SIGINT and SIGTERM are caught by a plain handler, not uv_signal: libuv would report the signal
 * in the same poll as socket reads, in any order, so a request sent after the signal could still
 * be answered. The flag is set the moment the signal lands; the engine drops every request it
 * reads afterwards (NSS does not answer them either), and the loop shuts down. */
static volatile sig_atomic_t stop_signal;
static uv_async_t *stop_async;

static void on_stop_signal(int signum)
{
    if (stop_signal) {
        /* A second Ctrl-C means "now"; a repeated SIGTERM (supervisors resend it) changes
         * nothing: the clean shutdown is already under way. */
        if (signum == SIGINT) _exit(1);
        return;
    }
    stop_signal = signum;
    uv_async_send(stop_async); /* async-signal-safe */
}

/* Tells the service manager (systemd's Type=notify, through $NOTIFY_SOCKET) where the daemon
 * stands; without that variable sd_notify does nothing. */
static void notify_manager(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0) LOG_W("cannot notify the service manager: %s", strerror(-rc));
}

static void on_stop_async(uv_async_t *h)
{
    daemon_t *d = h->data;
    if (d->stopping) return;
    d->stopping = true;
    notify_manager("STOPPING=1");
    if (stop_signal)
        LOG_I("%s received: shutting down", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    /* The engine commits what it accepted first; then the clients are closed. An engine that
     * does not lead (clustered: an empty one, or a view of the store) holds nothing to commit. */
    if (d->store && !d->leading)
        on_stan_down(d);
    else
        stan_shutdown(d->stan, on_stan_down, d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (signum == SIGUSR1) {
        int rc = log_reopen();
        if (rc)
            LOG_E("cannot reopen log file: %s", strerror(-rc));
        else
            LOG_I("log file reopened");
        return;
    }
    LOG_I("SIGHUP ignored: configuration reload is not supported; restart to apply changes");
}

static void catch_stop_signals(daemon_t *d)
{
    uv_async_init(d->loop, &d->stop_async, on_stop_async);
    d->stop_async.data = d;
    stop_async = &d->stop_async;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0) return -errno;
    return 0;
}

static void apply_log_level(const config_t *cfg)
{
    /* Until the streaming engine has its own lines, -SD/-SV widen the same two switches. */
    log_set_verbosity(cfg->debug || cfg->stan_debug, cfg->trace || cfg->stan_trace);
}

static void start_signal(daemon_t *d, uv_signal_t *h, int signum)
{
    uv_signal_init(d->loop, h);
    h->data = d;
    uv_signal_start(h, on_signal, signum);
}

/* The NATS side: the embedded server, or with -ns a connection to an external NATS. */
static int start_bus(daemon_t *d, char *err, size_t errlen)
{
    if (!d->cfg.nats_server_url) {
        d->server = server_new(d->loop, &d->cfg);
        LOG_I("Server ID: %s", server_id(d->server));
        server_bus(d->server, &d->bus);
        return 0;
    }
    d->upstream = upstream_new(d->loop, &d->cfg);
    int rc = upstream_start(d->upstream, err, errlen);
    if (rc == 0) {
        LOG_I("Connected to NATS at %s", upstream_url(d->upstream));
        upstream_bus(d->upstream, &d->bus);
    }
    return rc;
}

static void free_bus(daemon_t *d)
{
    if (d->upstream) {
        upstream_free(d->upstream);
        uv_run(d->loop, UV_RUN_DEFAULT); /* close callbacks of its handles */
    }
    server_free(d->server);
}

/* ---- clustered mode ---- */

static void stop_now(daemon_t *d, int exit_code)
{
    if (!d->exit_code) d->exit_code = exit_code;
    on_stop_async(&d->stop_async);
}

/* A fresh engine on the replicated store, for the monitor too (the old one is freed). */
static stan_t *replace_engine(daemon_t *d)
{
    stan_t *old = d->stan;
    stan_t *st = stan_new(d->loop, &d->bus, &d->cfg);
    stan_use_store(st, d->store);
    stan_set_stop_flag(st, &stop_signal);
    monitor_set_stan(d->monitor, st);
    d->stan = st;
    d->viewing = false;
    stan_set_start_time(st, d->start_ns);
    stan_free(old);
    return st;
}

/* A follower's monitoring shows its replicated store: before answering, the monitor asks for a
 * view loaded again when entries were applied since the last one. The load runs on the loop
 * (which also carries Raft), so at most once a VIEW_MIN_MS and at most a tenth of the loop's
 * time: a store that takes 300 ms to load is loaded every 3 s; nothing is loaded while nobody
 * looks. */
#define VIEW_MIN_MS 1000
static void refresh_view(void *arg)
{
    daemon_t *d = arg;
    if (!d->repl || d->leading || d->stopping) return;
    uint64_t applied = store_applied_index(d->store), now = clock_mono_ms();
    uint64_t gap = d->view_cost_ms * 10 > VIEW_MIN_MS ? d->view_cost_ms * 10 : VIEW_MIN_MS;
    if (d->viewing && (applied == d->view_index || now - d->view_ms < gap)) return;
    stan_t *st = replace_engine(d);
    char err[256] = "";
    if (stan_load_view(st, err, sizeof err) != 0) {
        LOG_W("monitoring: cannot load the replicated store's state: %s", err);
        replace_engine(d); /* an empty one rather than a half-loaded one */
        return;
    }
    d->viewing = true;
    d->view_index = applied;
    d->view_ms = now;
    d->view_cost_ms = clock_mono_ms() - now;
}

/* The engine serves only on the leader: a fresh one, loaded from the replicated store, each time
 * this node takes the lead; otherwise an empty one, which the monitor replaces with a view of
 * the store when asked (refresh_view). */
static void on_lead(void *arg, bool leading)
{
    daemon_t *d = arg;
    if (d->stopping) return;
    if (d->leading) stan_abandon(d->stan);
    d->leading = false;
    stan_t *st = replace_engine(d);
    if (!leading) return;
    char err[512] = "";
    if (stan_start(st, err, sizeof err) != 0) {
        LOG_E("streaming: cannot serve as the cluster's leader: %s", err);
        stop_now(d, 1);
        return;
    }
    d->leading = true;
}

static void on_repl_fatal(void *arg, const char *why)
{
    daemon_t *d = arg;
    LOG_F("raft: stopping: %s", why);
    stop_now(d, 1);
}

/* The store (shared by every engine this node runs) and the Raft node. */
static int start_cluster(daemon_t *d, char *err, size_t errlen)
{
    store_options_t opt = {
        .dir = d->cfg.dir, .sync = d->cfg.file_sync, .log_is_durable = true, .lock_wait_ms = 5000};
    int rc = store_open(&d->store, d->loop, &opt, err, errlen);
    if (rc < 0) return rc;
    stan_use_store(d->stan, d->store);
    repl_options_t ro = {.loop = d->loop,
                         .cfg = &d->cfg,
                         .store = d->store,
                         .bus = &d->bus,
                         .on_lead = on_lead,
                         .on_fatal = on_repl_fatal,
                         .arg = d};
    rc = repl_start(&d->repl, &ro, err, errlen);
    if (rc == 0) monitor_set_repl(d->monitor, d->repl, refresh_view, d);
    return rc;
}

static void free_cluster(daemon_t *d)
{
    if (d->repl) {
        repl_stop(d->repl, NULL, NULL);
        uv_run(d->loop, UV_RUN_DEFAULT);
    }
    repl_free(d->repl);
    d->repl = NULL;
    store_close(d->store);
    d->store = NULL;
}

/* The bus, the engine, monitoring, then clients. On failure, logs why and undoes it all. */
static int start_all(daemon_t *d)
{
    char err[512] = "";
    int rc = start_bus(d, err, sizeof err);
    if (rc == 0) {
        d->start_ns = clock_wall_ns();
        d->stan = stan_new(d->loop, &d->bus, &d->cfg);
        d->monitor = monitor_new(d->loop, &d->cfg, &d->bus, d->stan);
        /* Clustered: the engine starts when this node takes the lead (on_lead). */
        rc = d->cfg.clustered ? start_cluster(d, err, sizeof err)
                              : stan_start(d->stan, err, sizeof err);
    }
    /* Over an external NATS, ready means its server holds the engine's subscriptions. */
    if (rc == 0 && d->upstream) rc = upstream_sync(d->upstream, 5000, err, sizeof err);
    /* The monitoring port first: once the client port accepts, everything answers (scripts and
     * tests take the client port as the sign that the server is up). */
    if (rc == 0) rc = monitor_start(d->monitor, err, sizeof err);
    if (rc == 0 && d->server) rc = server_start(d->server, err, sizeof err);
    if (rc == 0) return 0;
    LOG_F("%s", err);
    if (d->monitor) monitor_close(d->monitor, NULL, NULL);
    stan_free(d->stan);
    free_cluster(d);
    /* An upstream connection goes first: its socket handle would keep the loop running. */
    if (d->upstream) free_bus(d);
    uv_run(d->loop, UV_RUN_DEFAULT);
    monitor_free(d->monitor);
    if (!d->upstream) free_bus(d);
    config_free(&d->cfg);
    log_close();
    return rc;
}

/* Batches of megabytes are allocated and freed many times a second (clustered: a Raft entry,
 * the store's copy of it, the buffers libraft reads messages into). By default glibc maps each
 * one afresh (above its mmap threshold) or gives the heap's top back after the free, and every
 * page faults in again on first touch: a fifth of a clustered node's CPU in perf, on this VM.
 * Kept in the heap instead, up to these sizes. */
static void tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

int main(int argc, char **argv)
{
    tune_malloc();
    daemon_t d = {0};
    char err[512] = "";
    config_init(&d.cfg);
    int rc = config_from_args(&d.cfg, argc, argv, err, sizeof err);
    if (rc == CONFIG_SHOW_HELP) {
        config_usage(stdout, "stanzad");
        config_free(&d.cfg);
        return 0;
    }
    if (rc == CONFIG_SHOW_VERSION) {
        printf("stanzad version %s\n", STANZA_VERSION);
        config_free(&d.cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "stanzad: %s\n", err);
        fprintf(stderr, "Run 'stanzad --help' for the list of flags.\n");
        config_free(&d.cfg);
        return 1;
    }
    rc = log_open(d.cfg.log_file);
    if (rc) {
        fprintf(stderr, "stanzad: cannot open log file %s: %s\n", d.cfg.log_file, strerror(-rc));
        config_free(&d.cfg);
        return 1;
    }
    apply_log_level(&d.cfg);
    log_set_timestamps(d.cfg.logtime);
    signal(SIGPIPE, SIG_IGN);

    d.loop = uv_default_loop();
    LOG_I("Starting stanzad version %s", STANZA_VERSION);
    if (d.cfg.config_file) LOG_I("Using configuration file: %s", d.cfg.config_file);
    if (start_all(&d) != 0) return 1;
    if (d.cfg.pid_file) {
        rc = write_pid_file(d.cfg.pid_file);
        if (rc) LOG_E("cannot write pid file %s: %s", d.cfg.pid_file, strerror(-rc));
    }
    catch_stop_signals(&d);
    stan_set_stop_flag(d.stan, &stop_signal);
    start_signal(&d, &d.sigusr1, SIGUSR1);
    start_signal(&d, &d.sighup, SIGHUP);
    if (d.server)
        LOG_I("Listening for client connections on %s:%d", d.cfg.host, server_port(d.server));
    LOG_I("Streaming Server is ready");
    notify_manager("READY=1\nSTATUS=Streaming Server is ready");

    uv_run(d.loop, UV_RUN_DEFAULT);

    stan_free(d.stan);
    uv_run(d.loop, UV_RUN_DEFAULT); /* close callbacks of the engine's timers */
    store_close(d.store);
    repl_free(d.repl);
    monitor_free(d.monitor);
    free_bus(&d);
    if (d.cfg.pid_file) unlink(d.cfg.pid_file);
    LOG_I("Server stopped");
    rc = uv_loop_close(d.loop);
    if (rc) LOG_W("loop closed with handles still open: %s", uv_strerror(rc));
    config_free(&d.cfg);
    log_close();
    return d.exit_code;
}

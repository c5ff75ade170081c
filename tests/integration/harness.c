/* harness: the server process (start, stop, restart) and the clock; see harness.h. The rest of
 * harness.h is in harness_net.c (ports, raw sockets, HTTP), harness_nats.c (libnats),
 * harness_proc.c (other child processes) and harness_files.c. */
#include "harness.h"
#include "harness_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_STEP_MS 5
#define START_ATTEMPTS 5

/* Servers still running, killed by the atexit hook if the test dies mid-way. */
static struct hserver *live_servers;
static bool atexit_registered;

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_short_wait(void)
{
    poll(NULL, 0, POLL_STEP_MS);
}

void harness_dump_log(const struct hserver *s)
{
    hfile_dump("log", s->log);
    hfile_dump("output", s->out);
}

/* True if the server's log or output says its port was taken (the race between picking a free
 * port and the server binding it), so starting again on another port is worth it. */
static bool log_says_port_in_use(const struct hserver *s)
{
    const char *paths[] = {s->log, s->out};
    bool found = false;
    for (size_t i = 0; i < 2 && !found; i++) {
        char *text = hfile_read(paths[i]);
        if (text) found = strcasestr(text, "in use") != NULL;
        free(text);
    }
    return found;
}

/* ---- Process bookkeeping ---- */

int harness_wait_status(int wstatus)
{
    if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
    return -1;
}

static void live_remove(struct hserver *s)
{
    for (struct hserver **pp = &live_servers; *pp; pp = &(*pp)->next_live) {
        if (*pp == s) {
            *pp = s->next_live;
            s->next_live = NULL;
            return;
        }
    }
}

/* The test is exiting with servers still up: most likely a CHECK failed. Kill them so nothing
 * outlives the test, and keep their dirs for the post-mortem. */
static void kill_live_servers(void)
{
    while (live_servers) {
        struct hserver *s = live_servers;
        live_servers = s->next_live;
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        fprintf(stderr,
                "harness: server on port %d was still running at exit; killed it, kept %s\n",
                s->port, s->dir);
        harness_dump_log(s);
    }
}

static pid_t spawn(const struct hserver *s, const char *bin, const char *const *extra_args)
{
    size_t nextra = 0;
    while (extra_args && extra_args[nextra])
        nextra++;
    const char **argv = calloc(nextra + 12, sizeof(*argv));
    if (!argv) return -1;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", s->port);
    size_t i = 0;
    argv[i++] = bin;
    argv[i++] = "-a";
    argv[i++] = "127.0.0.1";
    /* With -ns stanzad has no client port: the port is the monitoring port, which opens once
     * the engine runs. */
    argv[i++] = s->ns_mode ? "-m" : "-p";
    argv[i++] = portstr;
    argv[i++] = "-l";
    argv[i++] = s->log;
    if (s->conf[0]) {
        argv[i++] = "-c";
        argv[i++] = s->conf;
    }
    for (size_t k = 0; k < nextra; k++)
        argv[i++] = extra_args[k];
    argv[i] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* If the test process dies (e.g. a CTest timeout SIGKILLs it), take the server along. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        int out = open(s->out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (devnull < 0 || out < 0) _exit(127);
        dup2(devnull, 0);
        dup2(out, 1);
        dup2(out, 2);
        if (chdir(s->dir) != 0) _exit(127);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    free(argv);
    return pid;
}

enum { READY, EXITED, TIMED_OUT };

/* The line stanzad logs once everything listens and its signal handlers are in place. */
#define READY_LINE "Streaming Server is ready"

/* Waits until the child listens on its port, or exits, or the start deadline passes. In -ns
 * mode the port is opened late (after NATS confirmed the engine's subscriptions), so a port
 * picked free may meanwhile be another test's: the child's own ready line must be there too
 * (ready_before: how many its log held before this start). */
static int wait_ready(struct hserver *s, int ready_before)
{
    int64_t deadline = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    for (;;) {
        int wstatus;
        if (waitpid(s->pid, &wstatus, WNOHANG) == s->pid) {
            s->exit_status = harness_wait_status(wstatus);
            s->pid = 0;
            return EXITED;
        }
        if (harness_port_accepts(s->port) &&
            (!s->ns_mode || hfile_count(s->log, READY_LINE) > ready_before))
            return READY;
        if (harness_now_ms() >= deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
            return TIMED_OUT;
        }
        harness_short_wait();
    }
}

static int start_server(struct hserver *s, const char *config_text, const char *const *extra_args);

int harness_server_start(struct hserver *s, const char *config_text, const char *const *extra_args)
{
    memset(s, 0, sizeof(*s));
    return start_server(s, config_text, extra_args);
}

int harness_server_start_ns(struct hserver *s, const char *config_text,
                            const char *const *extra_args)
{
    memset(s, 0, sizeof(*s));
    s->ns_mode = true;
    return start_server(s, config_text, extra_args);
}

static int start_server(struct hserver *s, const char *config_text, const char *const *extra_args)
{
    s->exit_status = -1;
    const char *bin = getenv("STANZAD");
    if (!bin || !*bin) {
        fprintf(stderr, "harness: STANZAD is not set (path of the server binary to test)\n");
        return -1;
    }
    /* Raw-socket tests write to connections the server may have closed. */
    signal(SIGPIPE, SIG_IGN);
    if (!atexit_registered) {
        atexit(kill_live_servers);
        atexit_registered = true;
    }

    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/stanza-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
    snprintf(s->out, sizeof(s->out), "%s/server.out", s->dir);
    if (config_text) {
        snprintf(s->conf, sizeof(s->conf), "%s/server.conf", s->dir);
        if (hfile_write(s->conf, config_text) != 0) {
            fprintf(stderr, "harness: cannot write %s: %s\n", s->conf, strerror(errno));
            return -1;
        }
    }

    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        unlink(s->log);
        unlink(s->out);
        s->port = harness_free_port();
        if (s->port <= 0) {
            fprintf(stderr, "harness: no free port: %s\n", strerror(errno));
            return -1;
        }
        snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
        int ready_before = hfile_count(s->log, READY_LINE);
        s->pid = spawn(s, bin, extra_args);
        if (s->pid < 0) {
            fprintf(stderr, "harness: fork: %s\n", strerror(errno));
            s->pid = 0;
            return -1;
        }
        int r = wait_ready(s, ready_before);
        if (r == READY) {
            s->next_live = live_servers;
            live_servers = s;
            return 0;
        }
        if (r == EXITED && attempt < START_ATTEMPTS && log_says_port_in_use(s)) continue;
        if (r == EXITED)
            fprintf(stderr, "harness: %s exited during start-up with status %d (dir %s)\n", bin,
                    s->exit_status, s->dir);
        else
            fprintf(stderr, "harness: %s did not listen on port %d within %d ms (dir %s)\n", bin,
                    s->port, HARNESS_START_TIMEOUT_MS, s->dir);
        harness_dump_log(s);
        return -1;
    }
    return -1;
}

/* Stops the server; keep = true never removes the temp dir (for harness_server_restart). */
static int stop_server(struct hserver *s, int sig, bool keep)
{
    if (s->pid <= 0) {
        fprintf(stderr, "harness: stop: server on port %d is not running\n", s->port);
        return -1;
    }
    live_remove(s);
    kill(s->pid, sig);
    int64_t deadline = harness_now_ms() + HARNESS_STOP_TIMEOUT_MS;
    int wstatus;
    pid_t r;
    while ((r = waitpid(s->pid, &wstatus, WNOHANG)) == 0 && harness_now_ms() < deadline)
        harness_short_wait();
    if (r != s->pid) {
        fprintf(stderr, "harness: server pid %d did not exit within %d ms of signal %d; killing\n",
                (int)s->pid, HARNESS_STOP_TIMEOUT_MS, sig);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        s->exit_status = -1;
        fprintf(stderr, "harness: kept %s\n", s->dir);
        harness_dump_log(s);
        return -1;
    }
    s->pid = 0;
    s->exit_status = harness_wait_status(wstatus);
    int expected = (sig == SIGINT || sig == SIGTERM) ? 0 : 128 + sig;
    if (s->exit_status == expected && keep) {
        /* The dir stays for the restart; nothing to report. */
    } else if (s->exit_status == expected && !getenv("HARNESS_KEEP")) {
        hremove_tree(s->dir);
    } else {
        fprintf(stderr, "harness: server exited with status %d after signal %d; kept %s\n",
                s->exit_status, sig, s->dir);
        harness_dump_log(s);
    }
    return s->exit_status;
}

int harness_server_stop(struct hserver *s, int sig)
{
    return stop_server(s, sig, false);
}

int harness_server_halt(struct hserver *s, int sig)
{
    return stop_server(s, sig, true);
}

int harness_server_restart(struct hserver *s, const char *const *extra_args)
{
    if (s->pid > 0) {
        fprintf(stderr, "harness: restart: server on port %d is still running\n", s->port);
        return -1;
    }
    const char *bin = getenv("STANZAD");
    if (!bin || !*bin || !s->dir[0]) {
        fprintf(stderr, "harness: restart: STANZAD unset or the server was never started\n");
        return -1;
    }
    /* The same port: a client whose NATS connection reconnects finds the server again. The old
     * sockets are gone with the process; a port still held elsewhere is retried until the start
     * deadline (the log and output files are appended to, so both runs stay readable). */
    int64_t deadline = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    for (;;) {
        s->exit_status = -1;
        int ready_before = hfile_count(s->log, READY_LINE);
        s->pid = spawn(s, bin, extra_args);
        if (s->pid < 0) {
            fprintf(stderr, "harness: fork: %s\n", strerror(errno));
            s->pid = 0;
            return -1;
        }
        int r = wait_ready(s, ready_before);
        if (r == READY) {
            s->next_live = live_servers;
            live_servers = s;
            return 0;
        }
        if (r == EXITED && log_says_port_in_use(s) && harness_now_ms() < deadline) {
            harness_short_wait();
            continue;
        }
        if (r == EXITED)
            fprintf(stderr, "harness: %s exited during restart with status %d (dir %s)\n", bin,
                    s->exit_status, s->dir);
        else
            fprintf(stderr, "harness: %s did not listen again on port %d within %d ms (dir %s)\n",
                    bin, s->port, HARNESS_START_TIMEOUT_MS, s->dir);
        harness_dump_log(s);
        return -1;
    }
}

const char *harness_url(const struct hserver *s)
{
    return s->url;
}

/* harness: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_STEP_MS 5
#define START_ATTEMPTS 5
#define LOG_TAIL_LINES 40

/* Servers and other children still running, killed by the atexit hooks if the test dies
 * mid-way. */
static struct hserver *live_servers;
static bool atexit_registered;
static struct hproc *live_procs;
static bool proc_atexit_registered;

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits a short step between polls of something with no event to wait on (a child's exit, a port
 * starting to listen). */
static void short_wait(void)
{
    poll(NULL, 0, POLL_STEP_MS);
}

/* ---- Files and the temp dir ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    if (dir[0]) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

/* Reads a whole (small) file into a malloc'ed NUL-terminated string, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

static void print_tail(const char *label, const char *path)
{
    char *text = slurp(path);
    if (!text) {
        fprintf(stderr, "harness: %s %s: (unreadable)\n", label, path);
        return;
    }
    const char *start = text;
    int lines = 0;
    for (const char *p = text + strlen(text); p > text; p--) {
        if (p[-1] == '\n' && p[0] != '\0' && ++lines >= LOG_TAIL_LINES) {
            start = p;
            break;
        }
    }
    fprintf(stderr, "harness: ---- tail of %s %s ----\n%s", label, path, start);
    if (*start && start[strlen(start) - 1] != '\n') fputc('\n', stderr);
    fprintf(stderr, "harness: ---- end of %s ----\n", label);
    free(text);
}

void harness_dump_log(const struct hserver *s)
{
    print_tail("log", s->log);
    print_tail("output", s->out);
}

/* True if the server's log or output says its port was taken (the race between picking a free
 * port and the server binding it), so starting again on another port is worth it. */
static bool log_says_port_in_use(const struct hserver *s)
{
    const char *paths[] = {s->log, s->out};
    bool found = false;
    for (size_t i = 0; i < 2 && !found; i++) {
        char *text = slurp(paths[i]);
        if (text) found = strcasestr(text, "in use") != NULL;
        free(text);
    }
    return found;
}

/* ---- Process bookkeeping ---- */

static int status_code(int wstatus)
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

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* True if something accepts TCP connections on 127.0.0.1:port. */
static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
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
    argv[i++] = "-p";
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

/* Waits until the child listens on its port, or exits, or the start deadline passes. */
static int wait_ready(struct hserver *s)
{
    int64_t deadline = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    for (;;) {
        int wstatus;
        if (waitpid(s->pid, &wstatus, WNOHANG) == s->pid) {
            s->exit_status = status_code(wstatus);
            s->pid = 0;
            return EXITED;
        }
        if (port_accepts(s->port)) return READY;
        if (harness_now_ms() >= deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
            return TIMED_OUT;
        }
        short_wait();
    }
}

int harness_server_start(struct hserver *s, const char *config_text, const char *const *extra_args)
{
    memset(s, 0, sizeof(*s));
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
        if (write_file(s->conf, config_text) != 0) {
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
        s->pid = spawn(s, bin, extra_args);
        if (s->pid < 0) {
            fprintf(stderr, "harness: fork: %s\n", strerror(errno));
            s->pid = 0;
            return -1;
        }
        int r = wait_ready(s);
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
        short_wait();
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
    s->exit_status = status_code(wstatus);
    int expected = (sig == SIGINT || sig == SIGTERM) ? 0 : 128 + sig;
    if (s->exit_status == expected && keep) {
        /* The dir stays for the restart; nothing to report. */
    } else if (s->exit_status == expected && !getenv("HARNESS_KEEP")) {
        remove_tree(s->dir);
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
        s->pid = spawn(s, bin, extra_args);
        if (s->pid < 0) {
            fprintf(stderr, "harness: fork: %s\n", strerror(errno));
            s->pid = 0;
            return -1;
        }
        int r = wait_ready(s);
        if (r == READY) {
            s->next_live = live_servers;
            live_servers = s;
            return 0;
        }
        if (r == EXITED && log_says_port_in_use(s) && harness_now_ms() < deadline) {
            short_wait();
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

/* ---- Raw sockets ---- */

int hraw_connect_rcvbuf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Before connect, so the advertised window is small from the start. */
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    /* A backstop only: reads wait with poll and their own deadline. */
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "harness: connect to port %d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int hraw_connect(int port)
{
    return hraw_connect_rcvbuf(port, 0);
}

int hraw_client(int port, const char *connect_json)
{
    int fd = hraw_connect(port);
    if (fd < 0) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "CONNECT %s\r\nPING\r\n", connect_json);
    if (!hraw_expect_line(fd, "INFO {", 5000) || !hraw_send(fd, cmd) ||
        !hraw_expect_line(fd, "PONG", 5000)) {
        fprintf(stderr, "harness: raw handshake with port %d failed\n", port);
        close(fd);
        return -1;
    }
    return fd;
}

bool hraw_send_buf(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

bool hraw_send(int fd, const char *str)
{
    return hraw_send_buf(fd, str, strlen(str));
}

/* Waits until fd is readable or the deadline passes. */
static bool wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

/* One byte: 1 read, 0 EOF, -1 timeout or error. Byte-at-a-time keeps the socket the only buffer,
 * so line reads and exact reads can be mixed freely. */
static int read_byte(int fd, char *c, int64_t deadline)
{
    for (;;) {
        if (!wait_readable(fd, deadline)) return -1;
        ssize_t r = recv(fd, c, 1, 0);
        if (r == 1) return 1;
        if (r == 0) return 0;
        if (errno != EINTR && errno != EAGAIN) return -1;
    }
}

int hraw_read_line(int fd, char *buf, size_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t len = 0;
    bool cr = false;
    for (;;) {
        char c;
        if (read_byte(fd, &c, deadline) != 1) {
            buf[len < n ? len : n - 1] = '\0';
            return -1;
        }
        if (c == '\n') {
            if (!cr) {
                fprintf(stderr, "harness: line without CR: \"%.*s\"\n", (int)len, buf);
                return -1;
            }
            buf[len - 1] = '\0'; /* drop the CR */
            return (int)len - 1;
        }
        if (len + 1 >= n) {
            buf[len] = '\0';
            fprintf(stderr, "harness: line longer than %zu bytes: \"%.60s...\"\n", n - 1, buf);
            return -1;
        }
        buf[len++] = c;
        cr = c == '\r';
    }
}

bool hraw_read_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    char *p = buf;
    while (n > 0) {
        if (!wait_readable(fd, deadline)) return false;
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0) return false;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

bool hraw_expect_line(int fd, const char *prefix, int timeout_ms)
{
    char line[8192];
    int n = hraw_read_line(fd, line, sizeof(line), timeout_ms);
    if (n < 0) {
        fprintf(stderr,
                "harness: expected a line starting \"%s\", got timeout/EOF (partial \"%s\")\n",
                prefix, line);
        return false;
    }
    if (strncmp(line, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "harness: expected a line starting \"%s\", got \"%s\"\n", prefix, line);
        return false;
    }
    return true;
}

bool hraw_expect_bytes(int fd, const char *bytes, int timeout_ms)
{
    size_t n = strlen(bytes);
    char *got = calloc(1, n + 1);
    if (!got) return false;
    bool ok = hraw_read_exact(fd, got, n, timeout_ms);
    if (!ok)
        fprintf(stderr, "harness: expected \"%s\", got timeout/EOF\n", bytes);
    else if (memcmp(got, bytes, n) != 0) {
        fprintf(stderr, "harness: expected \"%s\", got \"%s\"\n", bytes, got);
        ok = false;
    }
    free(got);
    return ok;
}

bool hraw_wait_closed_capture(int fd, int timeout_ms, char *seen, size_t seen_len)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t kept = 0;
    if (seen && seen_len) seen[0] = '\0';
    char buf[65536];
    for (;;) {
        if (!wait_readable(fd, deadline)) return false;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0) return true;
        if (r < 0) {
            if (errno == ECONNRESET) return true;
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        if (seen && kept + 1 < seen_len) {
            size_t k = seen_len - 1 - kept < (size_t)r ? seen_len - 1 - kept : (size_t)r;
            memcpy(seen + kept, buf, k);
            kept += k;
            seen[kept] = '\0';
        }
    }
}

bool hraw_wait_closed(int fd, int timeout_ms)
{
    return hraw_wait_closed_capture(fd, timeout_ms, NULL, 0);
}

/* ---- libnats ---- */

natsStatus hnats_connect(const struct hserver *s, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus st = natsOptions_Create(&opts);
    if (st == NATS_OK) st = natsOptions_SetURL(opts, s->url);
    if (st == NATS_OK) st = natsOptions_SetAllowReconnect(opts, false);
    if (st == NATS_OK) st = natsOptions_SetTimeout(opts, 5000);
    if (st == NATS_OK) st = natsConnection_Connect(nc, opts);
    if (st != NATS_OK)
        fprintf(stderr, "harness: libnats connect to %s: %s (%s)\n", s->url, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    natsOptions_Destroy(opts);
    return st;
}

void hcounter_init(struct hcounter *c)
{
    /* Deadlines on the monotonic clock, so a wall-clock step cannot stretch or cut a wait. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    c->n = 0;
}

void hcounter_destroy(struct hcounter *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

void hcounter_add(struct hcounter *c, int64_t k)
{
    pthread_mutex_lock(&c->mu);
    c->n += k;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int64_t hcounter_get(struct hcounter *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool hcounter_wait(struct hcounter *c, int64_t n, int timeout_ms)
{
    /* One absolute deadline, and the count re-checked after every (possibly spurious) wake-up. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->n < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    bool ok = c->n >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void hcounter_msg_handler(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    natsMsg_Destroy(msg);
    hcounter_add(closure, 1);
}

/* ---- Other child processes ---- */

static void proc_live_remove(struct hproc *p)
{
    for (struct hproc **pp = &live_procs; *pp; pp = &(*pp)->next_live) {
        if (*pp == p) {
            *pp = p->next_live;
            p->next_live = NULL;
            return;
        }
    }
}

static void kill_live_procs(void)
{
    while (live_procs) {
        struct hproc *p = live_procs;
        live_procs = p->next_live;
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        fprintf(stderr, "harness: child pid %d was still running at exit; killed it\n",
                (int)p->pid);
        p->pid = 0;
    }
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void child_fail(const char *what)
{
    const char *msg = "harness: child set-up failed: ";
    ssize_t r = write(2, msg, strlen(msg));
    r += write(2, what, strlen(what));
    r += write(2, "\n", 1);
    (void)r;
    _exit(127);
}

static int open_out(const char *path)
{
    return open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
}

int hproc_spawn(struct hproc *p, const char *const *argv, const char *dir, const char *out_path,
                const char *err_path)
{
    memset(p, 0, sizeof(*p));
    p->exit_status = -1;
    signal(SIGPIPE, SIG_IGN);
    if (!proc_atexit_registered) {
        atexit(kill_live_procs);
        proc_atexit_registered = true;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open_out(out_path);
        int err =
            err_path && out_path && strcmp(err_path, out_path) == 0 ? dup(out) : open_out(err_path);
        if (in < 0 || out < 0 || err < 0) child_fail("open");
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        if (dir && chdir(dir) != 0) child_fail("chdir");
        /* The test ignores SIGPIPE; the child starts with the default. */
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        child_fail(argv[0]);
    }
    p->pid = pid;
    p->next_live = live_procs;
    live_procs = p;
    return 0;
}

bool hproc_exited(struct hproc *p)
{
    if (p->pid <= 0) return true;
    int wstatus;
    if (waitpid(p->pid, &wstatus, WNOHANG) != p->pid) return false;
    p->exit_status = status_code(wstatus);
    proc_live_remove(p);
    p->pid = 0;
    return true;
}

int hproc_wait(struct hproc *p, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (!hproc_exited(p)) {
        if (harness_now_ms() >= deadline) return -1;
        short_wait();
    }
    return p->exit_status;
}

int hproc_stop(struct hproc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0) return p->exit_status;
    kill(p->pid, sig);
    int st = hproc_wait(p, timeout_ms);
    if (st < 0 && p->pid > 0) {
        fprintf(stderr, "harness: pid %d did not exit within %d ms of signal %d; killing\n",
                (int)p->pid, timeout_ms, sig);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        proc_live_remove(p);
        p->pid = 0;
        p->exit_status = -1;
        return -1;
    }
    return st;
}

int hproc_run(const char *const *argv, const char *dir, const char *out_path, const char *err_path,
              int timeout_ms)
{
    struct hproc p;
    if (hproc_spawn(&p, argv, dir, out_path, err_path) != 0) return -1;
    int st = hproc_wait(&p, timeout_ms);
    if (st < 0 && p.pid > 0) {
        fprintf(stderr, "harness: %s did not exit within %d ms; killing\n", argv[0], timeout_ms);
        hproc_stop(&p, SIGKILL, timeout_ms);
        return -1;
    }
    return st;
}

bool harness_port_accepts(int port)
{
    return port_accepts(port);
}

int hproc_wait_port(struct hproc *p, int port, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (p && hproc_exited(p)) return -1;
        if (port_accepts(port)) return 0;
        if (harness_now_ms() >= deadline) return -1;
        short_wait();
    }
}

/* ---- Files ---- */

int hmkdtemp(char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/stanza-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(buf)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", buf, strerror(errno));
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

void hremove_tree(const char *path)
{
    remove_tree(path);
}

int hfile_write(const char *path, const char *text)
{
    return write_file(path, text);
}

char *hfile_read(const char *path)
{
    return slurp(path);
}

int hfile_count(const char *path, const char *needle)
{
    char *text = slurp(path);
    if (!text) return 0;
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = text; nl && (p = strstr(p, needle)) != NULL; p += nl)
        n++;
    free(text);
    return n;
}

bool hfile_wait_count(const char *path, const char *needle, int n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (hfile_count(path, needle) >= n) return true;
        if (harness_now_ms() >= deadline) return false;
        short_wait();
    }
}

bool hfile_wait_contains(const char *path, const char *needle, int timeout_ms)
{
    return hfile_wait_count(path, needle, 1, timeout_ms);
}

void hfile_dump(const char *label, const char *path)
{
    print_tail(label, path);
}

/* ---- HTTP ---- */

char *hhttp_raw(int port, const char *request, size_t reqlen)
{
    int fd = hraw_connect(port);
    if (fd < 0) return NULL;
    if (reqlen && !hraw_send_buf(fd, request, reqlen)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (!out) {
        close(fd);
        return NULL;
    }
    int64_t deadline = harness_now_ms() + 10000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - harness_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        if (len + 4096 > cap) {
            char *bigger = realloc(out, cap * 2);
            if (!bigger) break;
            out = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, out + len, cap - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    out[len] = '\0';
    return out;
}

int hhttp_get(int port, const char *path, char **body)
{
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    char *all = hhttp_raw(port, req, (size_t)n);
    int status = 0;
    if (!all) {
        *body = strdup("");
        return 0;
    }
    sscanf(all, "HTTP/1.%*d %d", &status);
    char *b = strstr(all, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(all);
    return status;
}

json_t *hhttp_json(int port, const char *path)
{
    char *body;
    int status = hhttp_get(port, path, &body);
    json_t *j = NULL;
    if (status != 200) {
        fprintf(stderr, "GET %s -> %d: %s\n", path, status, body);
    } else {
        json_error_t e;
        j = json_loads(body, 0, &e);
        if (!j) fprintf(stderr, "GET %s: bad JSON (%s): %s\n", path, e.text, body);
    }
    free(body);
    return j;
}

long long harness_rss_anon(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

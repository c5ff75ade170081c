/* harness: runs a real server process for integration tests, and talks to it.
 *
 * The server is whatever binary $STANZAD names (stanzad, or nats-server for checking the tests
 * themselves), started as `$STANZAD -a 127.0.0.1 -p PORT -l LOG [-c CONF] [extra args...]` in a
 * fresh temp dir. Nothing here sleeps a fixed time: every wait is on an event with a deadline.
 *
 * Failures: the start/stop functions print what went wrong (with the tail of the server's log)
 * and return an error, so tests wrap them in CHECK. If the test process exits while servers are
 * still running (a CHECK failed), an atexit hook kills them and keeps their temp dirs, printing
 * the paths, so the logs are there to read. */
#ifndef STANZA_HARNESS_H
#define STANZA_HARNESS_H
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <nats/nats.h>

#define HARNESS_START_TIMEOUT_MS 10000
#define HARNESS_STOP_TIMEOUT_MS 10000

struct hserver {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[PATH_MAX - 64]; /* temp dir with the config and logs (room left for their names) */
    char log[PATH_MAX];      /* the server's -l log file */
    char out[PATH_MAX];      /* the server's stdout+stderr */
    char conf[PATH_MAX];     /* the -c file, "" if none */
    char url[64];            /* nats://127.0.0.1:PORT */
    int exit_status;         /* after a failed start or a stop: exit code, or 128+signal; else -1 */
    bool ns_mode;            /* started with harness_server_start_ns: port is the -m port */
    struct hserver *next_live; /* the atexit hook's list of running servers */
};

/* Starts the server and waits until it accepts TCP connections. config_text (NULL = none) is
 * written to <dir>/server.conf and passed with -c; extra_args is a NULL-terminated list (or
 * NULL) appended after the standard flags. Returns 0, or -1 after printing the reason; if the
 * process exited, s->exit_status has its status. */
int harness_server_start(struct hserver *s, const char *config_text, const char *const *extra_args);

/* The same for a stanzad running over an external NATS (extra_args carry "-ns URL"): it has no
 * client port, so port is its monitoring port (-m), which opens once the engine runs; url is
 * then not a NATS URL (clients connect to the NATS servers). */
int harness_server_start_ns(struct hserver *s, const char *config_text,
                            const char *const *extra_args);

/* Sends sig and waits (up to HARNESS_STOP_TIMEOUT_MS, then SIGKILL) for the process to exit.
 * Returns the exit status: the exit code, or 128+signal if a signal killed it; -1 if it had to be
 * SIGKILLed. The temp dir is removed when the status is the expected result of sig (0 after
 * SIGINT/SIGTERM, 128+sig otherwise); anything else keeps it and prints the log's tail. */
int harness_server_stop(struct hserver *s, int sig);

/* Like harness_server_stop, but the temp dir (config, logs, and whatever the test keeps there) is
 * never removed, so harness_server_restart can start the server again on it. The status is
 * reported as harness_server_stop does; an unexpected one prints the log's tail. */
int harness_server_halt(struct hserver *s, int sig);

/* Starts a halted server again: same temp dir, config file, port and log (appended to), with
 * extra_args as for harness_server_start (pass the same --dir to find the same store). Waits until
 * it accepts connections. Returns 0, or -1 after printing the reason. */
int harness_server_restart(struct hserver *s, const char *const *extra_args);

/* "nats://127.0.0.1:PORT" */
const char *harness_url(const struct hserver *s);

/* Prints the path and the last lines of the server's log and output to stderr. */
void harness_dump_log(const struct hserver *s);

/* A loopback TCP port that was free a moment ago (bound with port 0, then closed). */
int harness_free_port(void);

/* RssAnon (anonymous resident memory) of pid in bytes, from /proc/PID/status; -1 if unreadable. */
long long harness_rss_anon(pid_t pid);
/* Milliseconds on the monotonic clock. */
int64_t harness_now_ms(void);

/* ---- Raw-socket helpers for exact wire-protocol tests ----
 * All are blocking with explicit timeouts; none skip or reorder what the server sends. */

/* A connected socket to 127.0.0.1:port, with TCP_NODELAY (so each hraw_send is its own segment).
 * rcvbuf > 0 sets SO_RCVBUF before connecting (to make a client that the server can fill up).
 * Returns the fd, or -1. */
int hraw_connect(int port);
int hraw_connect_rcvbuf(int port, int rcvbuf);

/* Connects, reads the INFO line, sends "CONNECT <connect_json>" then PING, and waits for the PONG
 * (so the server has processed the CONNECT). connect_json must not ask for verbose. Returns the
 * fd, or -1 after printing what went wrong. */
int hraw_client(int port, const char *connect_json);

/* Sends everything (no SIGPIPE). Returns true when all bytes were written. */
bool hraw_send(int fd, const char *str);
bool hraw_send_buf(int fd, const void *p, size_t n);

/* Reads one line ending in CRLF; stores it without the CRLF, NUL-terminated. Returns its length,
 * or -1 on timeout, EOF, error, a bare LF, or a line that does not fit in n-1 bytes. */
int hraw_read_line(int fd, char *buf, size_t n, int timeout_ms);

/* Reads exactly n bytes. Returns true if all arrived before the timeout. */
bool hraw_read_exact(int fd, void *buf, size_t n, int timeout_ms);

/* Reads exactly one line and checks that it starts with prefix (PINGs are not skipped).
 * On mismatch prints the expected prefix and the line received. */
bool hraw_expect_line(int fd, const char *prefix, int timeout_ms);

/* Reads strlen(bytes) bytes and checks that they equal bytes: for exact frames such as
 * "MSG foo 1 5\r\nhello\r\n". On mismatch prints both. */
bool hraw_expect_bytes(int fd, const char *bytes, int timeout_ms);

/* Waits for the server to close the connection, discarding any data meanwhile. True when
 * recv returned 0 or ECONNRESET before the timeout. The _capture variant keeps the first
 * seen_len-1 bytes drained in seen, NUL-terminated (to look for an -ERR in them). */
bool hraw_wait_closed(int fd, int timeout_ms);
bool hraw_wait_closed_capture(int fd, int timeout_ms, char *seen, size_t seen_len);

/* ---- HTTP (the monitoring port) ---- */
/* Sends request as is and returns everything the server sent until it closed the connection (or
 * 10 s passed), NUL-terminated and malloc'ed; NULL if it could not connect or send. */
char *hhttp_raw(int port, const char *request, size_t reqlen);
/* GET path over HTTP/1.0; returns the status (0 when none came) and the body in *body
 * (malloc'ed). */
int hhttp_get(int port, const char *path, char **body);
/* GET path and parse the 200 answer's JSON body; NULL (after printing why) otherwise. */
json_t *hhttp_json(int port, const char *path);
/* The value of one /metrics sample (the line that starts with series, then a space); -1 if
 * there is none or the GET failed (printed). */
double hhttp_metric(int port, const char *series);
/* ---- libnats helpers ---- */

/* Connects with reconnection off and short timeouts: a test must see a server failure, not have
 * it papered over. Returns the libnats status. */
natsStatus hnats_connect(const struct hserver *s, natsConnection **nc);

/* A count that message callbacks bump and test threads wait on. */
struct hcounter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t n;
};

void hcounter_init(struct hcounter *c);
void hcounter_destroy(struct hcounter *c);
void hcounter_add(struct hcounter *c, int64_t k);
int64_t hcounter_get(struct hcounter *c);
/* Waits until the count is >= n. Returns true if it got there before timeout_ms. */
bool hcounter_wait(struct hcounter *c, int64_t n, int timeout_ms);

/* A msg handler for natsConnection_Subscribe whose closure is a struct hcounter: counts, and
 * destroys the message. */
void hcounter_msg_handler(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

/* ---- Other child processes (the CLI, stanzad with hand-made flags) ----
 * Like the server, a child gets /dev/null as stdin and dies with the test process; one still
 * running when the test process exits is SIGKILLed by the atexit hook. */

struct hproc {
    pid_t pid;       /* 0 when not running */
    int exit_status; /* once reaped: exit code, or 128+signal; -1 before that */
    struct hproc *next_live;
};

/* Starts argv[0] (a path) with argv (NULL-terminated) in dir (NULL = the current dir), stdout
 * appended to out_path and stderr to err_path (NULL = /dev/null; the same path for both merges
 * them in order). Returns 0, or -1 after printing why. */
int hproc_spawn(struct hproc *p, const char *const *argv, const char *dir, const char *out_path,
                const char *err_path);

/* Reaps without blocking. True (with p->exit_status set) once the process has exited. */
bool hproc_exited(struct hproc *p);

/* Waits up to timeout_ms for the process to exit. Returns its status, or -1 if it is still
 * running (it is left running). */
int hproc_wait(struct hproc *p, int timeout_ms);

/* Sends sig and waits up to timeout_ms; then SIGKILLs it and returns -1. Otherwise returns the
 * status. */
int hproc_stop(struct hproc *p, int sig, int timeout_ms);

/* Runs a command to completion: spawn, then wait up to timeout_ms (then SIGKILL). Returns the
 * exit status, or -1 if it could not start or had to be killed. */
int hproc_run(const char *const *argv, const char *dir, const char *out_path, const char *err_path,
              int timeout_ms);

/* Waits until 127.0.0.1:port accepts TCP connections. Returns 0; -1 if the process exited first
 * (p->exit_status set) or the deadline passed (it is left running). p may be NULL. */
int hproc_wait_port(struct hproc *p, int port, int timeout_ms);

/* True if something accepts TCP connections on 127.0.0.1:port right now. */
bool harness_port_accepts(int port);

/* ---- Files ---- */

/* Makes a fresh $TMPDIR/stanza-it-XXXXXX (default /tmp) into buf. Returns 0 or -1. */
int hmkdtemp(char *buf, size_t len);
/* Removes a directory tree (or a file). */
void hremove_tree(const char *path);
/* Writes text to path (truncating). Returns 0 or -1. */
int hfile_write(const char *path, const char *text);
/* The whole (small) file as a malloc'ed NUL-terminated string; NULL if it cannot be read. */
char *hfile_read(const char *path);
/* Non-overlapping occurrences of needle in the file; 0 if it cannot be read. */
int hfile_count(const char *path, const char *needle);
/* Waits until the file contains needle at least n times (re-reading it every few ms). Returns
 * true if it did before timeout_ms. hfile_wait_contains is n = 1. */
bool hfile_wait_count(const char *path, const char *needle, int n, int timeout_ms);
bool hfile_wait_contains(const char *path, const char *needle, int timeout_ms);
/* Prints the path and the last lines of a file to stderr (for failure reports). */
void hfile_dump(const char *label, const char *path);

#endif

/* harness: other child processes (the CLI, stanzad with hand-made flags); see harness.h. */
#include "harness.h"
#include "harness_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Children still running, killed by the atexit hook if the test dies mid-way. */
static struct hproc *live_procs;
static bool proc_atexit_registered;

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
    p->exit_status = harness_wait_status(wstatus);
    proc_live_remove(p);
    p->pid = 0;
    return true;
}

int hproc_wait(struct hproc *p, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (!hproc_exited(p)) {
        if (harness_now_ms() >= deadline) return -1;
        harness_short_wait();
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

int hproc_wait_port(struct hproc *p, int port, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (p && hproc_exited(p)) return -1;
        if (harness_port_accepts(port)) return 0;
        if (harness_now_ms() >= deadline) return -1;
        harness_short_wait();
    }
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

/* harness_sched: see harness_sched.h. */
#include "harness_sched.h"

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

int64_t hsched_runq_wait_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int64_t total = 0;
    int threads = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char stat[128];
        snprintf(stat, sizeof stat, "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(stat, "r");
        if (!f) continue; /* the thread has just exited */
        unsigned long long run_ns, wait_ns;
        if (fscanf(f, "%llu %llu", &run_ns, &wait_ns) == 2) {
            total += (int64_t)wait_ns;
            threads++;
        }
        fclose(f);
    }
    closedir(d);
    return threads ? total : -1;
}

/* The run-queue wait of the server's threads and of this process's threads. */
static int64_t both_waits(pid_t server)
{
    int64_t a = hsched_runq_wait_ns(server), b = hsched_runq_wait_ns(getpid());
    return a < 0 || b < 0 ? -1 : a + b;
}

int hsched_begin(struct hsched_span *sp, pid_t server)
{
    sp->server = server;
    sp->waited_ns = both_waits(server);
    if (sp->waited_ns < 0) {
        fprintf(stderr, "harness: cannot read /proc/%d/task/*/schedstat or ours\n", (int)server);
        return -1;
    }
    sp->start_ms = harness_now_ms();
    return 0;
}

int64_t hsched_end(const struct hsched_span *sp, int64_t *wall_ms)
{
    int64_t wall = harness_now_ms() - sp->start_ms;
    int64_t now = both_waits(sp->server);
    /* A server that died has no waits left to read (and a thread that exited takes its own
     * along): then more of the wall time counts, never less. */
    int64_t waited_ms = now < sp->waited_ns ? 0 : (now - sp->waited_ns) / 1000000;
    if (wall_ms) *wall_ms = wall;
    return wall > waited_ms ? wall - waited_ms : 0;
}

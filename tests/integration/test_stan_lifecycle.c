/* it_stan_lifecycle: how stanzad starts and stops around the store and signals, as supervisors
 * and the client test suites drive it: a store directory still locked by the daemon being
 * replaced is waited for, and nothing is answered once SIGTERM has landed. */
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "harness_stan.h"
#include "test.h"

/* The lock of a store directory is held (as by a daemon that was just told to stop): the new
 * daemon waits, says so, does not listen yet, and starts as soon as the lock is released. */
static void test_waits_for_store_lock(void)
{
    struct hstan_dir d;
    hstan_dir_make(&d);
    CHECK(mkdir(d.data, 0755) == 0);
    char lock[PATH_MAX], log[PATH_MAX], port_s[16];
    snprintf(lock, sizeof lock, "%s/stanza.lock", d.data);
    snprintf(log, sizeof log, "%s/server.log", d.dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644); /* not inherited by the daemon */
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    CHECK(write(fd, "424242\n", 7) == 7);

    int port = harness_free_port();
    snprintf(port_s, sizeof port_s, "%d", port);
    const char *argv[] = {getenv("STANZAD"), "-a",   "127.0.0.1", "-p", port_s, "--store", "FILE",
                          "--dir",           d.data, "-l",        log,  NULL};
    CHECK(argv[0] != NULL);
    struct hproc p;
    CHECK(hproc_spawn(&p, argv, d.dir, NULL, NULL) == 0);
    CHECK(hfile_wait_contains(log, "waiting up to", 5000));
    CHECK(hfile_count(log, "held by pid 424242") == 1);
    CHECK(!harness_port_accepts(port)); /* the port opens only once the store is ours */
    CHECK(!hproc_exited(&p));

    close(fd); /* the old daemon is gone */
    CHECK(hproc_wait_port(&p, port, 5000) == 0);
    CHECK(hfile_wait_contains(log, "Streaming Server is ready", 5000));
    CHECK_EQ_INT(hproc_stop(&p, SIGTERM, 10000), 0);
    hstan_dir_remove(&d);
}

/* After SIGTERM, a request is not answered (as NSS): clients see a timeout, never a success
 * from a server that is going away. The signal lands before the request is read, whatever the
 * order in which the loop would have seen them. */
static void test_no_answer_after_sigterm(void)
{
    for (int round = 0; round < 10; round++) {
        struct hserver s;
        const char *args[] = {"--store", "MEMORY", NULL};
        CHECK(harness_server_start(&s, NULL, args) == 0);
        struct hstan_raw r;
        char err[256], ack[256];
        CHECK(hstan_raw_connect(&r, &s, "lifecycle", true, err, sizeof err) == NATS_OK);
        CHECK_EQ_STR(err, "");
        CHECK(kill(s.pid, SIGTERM) == 0);
        natsStatus st = hstan_raw_subscribe(&r, "after-term", NULL, NULL, 10, 30, ack, sizeof ack,
                                            err, sizeof err);
        if (st == NATS_OK)
            fprintf(stderr, "round %d: answered after SIGTERM: ack inbox \"%s\"\n", round, ack);
        CHECK(st != NATS_OK);
        natsSubscription_Destroy(r.hb_sub);
        natsConnection_Destroy(r.nc);
        r.nc = NULL;
        /* A repeated SIGTERM is ignored; the shutdown under way ends cleanly. */
        CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
    }
}

int main(void)
{
    TEST_RUN(test_waits_for_store_lock);
    TEST_RUN(test_no_answer_after_sigterm);
    nats_CloseAndWait(5000);
    return test_summary();
}

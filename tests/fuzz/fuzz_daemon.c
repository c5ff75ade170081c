/* fuzz_daemon: a whole in-process daemon (NATS server + streaming engine, LMDB store in a
 * temporary directory) on its own loop thread, fed over loopback as any client would feed it.
 *
 * Each input is written on a fresh TCP connection, which is then half-closed; everything the
 * daemon sends back is read until it closes the connection (it must, within 5 s). Then a
 * long-lived, well-behaved client checks the daemon still answers PING with PONG within 5 s.
 * State accumulates across inputs (clients, channels, subscriptions made through raw NATS
 * requests to _STAN.*), as in a long-running server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

static fz_engine_t e;
static int health = -1;
static int port;
static const char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_process();
    dir = fz_store_dir("daemon");
    fz_engine_config(&e, dir);
    /* The discover subject a client would use: _STAN.discover.test-cluster. Timers stay slow
     * enough that a PING answered late is the daemon's fault, not the fuzzer's. */
    e.cfg.hb_interval_ms = 2000;
    /* The health client only ever reads PONGs: the server's own PINGs (every 2 min by default)
     * would close it as stale on a long run. */
    e.cfg.ping_interval_ms = 24LL * 3600 * 1000;
    e.cfg.hb_timeout_ms = 1000;
    e.cfg.max_channels = 32;
    e.cfg.limits.max_msgs = 64;
    e.cfg.limits.max_bytes = 1 << 20;
    char err[512];
    if (fz_engine_start(&e, false, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: cannot start the daemon: %s\n", err);
        abort();
    }
    fz_engine_populate(&e);
    port = server_port(e.srv);
    fz_engine_run_thread(&e);
    health = fz_connect(port);
    static const char hello[] = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";
    fz_write_all(health, hello, sizeof hello - 1);
    fz_expect(health, "PONG\r\n", 5000, "daemon start");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fz_connect(port);
    fz_write_all(fd, data, size);
    fz_drain(fd, 5000);
    fz_write_all(health, "PING\r\n", 6);
    fz_expect(health, "PONG\r\n", 5000, "health PING after the input");
    return 0;
}

/* fuzz_httpd: the HTTP request path of the monitoring port (src/mon/httpd.c, then
 * src/mon/monitor.c's endpoints and their query parameters) over loopback, against a daemon that
 * has a client, channels, messages and subscriptions to report on.
 *
 * Each input is the byte stream of one connection: written, half-closed, and everything the
 * daemon answers read until it closes (within 5 s). Then /healthz must answer 200 on a new
 * connection. The bytes reach httpd exactly as a client's do (its read callback), so no test-only
 * entry point is needed in httpd.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

static fz_engine_t e;
static int port;
static const char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_process();
    /* A store directory of our own, removed at exit: the engine is never stopped, so a MEMORY
     * store would leave its directory behind. */
    dir = fz_store_dir("httpd");
    fz_engine_config(&e, dir);
    e.cfg.hb_interval_ms = 2000;
    e.cfg.hb_timeout_ms = 1000;
    char err[512];
    if (fz_engine_start(&e, true, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: cannot start the daemon: %s\n", err);
        abort();
    }
    fz_engine_populate(&e);
    port = monitor_port(e.mon);
    fz_engine_run_thread(&e);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fz_connect(port);
    fz_write_all(fd, data, size);
    fz_drain(fd, 5000);
    fd = fz_connect(port);
    static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    fz_write_all(fd, probe, sizeof probe - 1);
    fz_expect(fd, "HTTP/1.1 200", 5000, "/healthz after the input");
    close(fd);
    return 0;
}

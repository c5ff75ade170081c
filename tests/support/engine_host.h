/* engine_host: the daemon's core in this process, on a libuv loop of the caller's: the NATS
 * server (server.h), the streaming engine (stan.h) and, when asked, the monitoring port
 * (monitor.h), started and stopped in the daemon's order. Shared by the engine's unit tests
 * (tests/unit/stan/engine_fixture) and the fuzz targets (tests/fuzz/fuzz_common). */
#ifndef STANZA_TEST_ENGINE_HOST_H
#define STANZA_TEST_ENGINE_HOST_H
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "monitor.h"
#include "server.h"
#include "stan.h"

/* Initialises loop, starts the engine on cfg's store, then the server on cfg->host:cfg->port
 * and, when mon is not NULL, the monitor on cfg->http_host:cfg->http_port. Returns 0; or -1
 * when the engine refuses the store (why is in err), with everything freed and the loop closed.
 * Aborts on any other failure (a refusal without a message, a server or monitor that cannot
 * listen, handles left behind). cfg must outlive them. */
int engine_host_start(uv_loop_t *loop, const config_t *cfg, server_t **srv, stan_t **st,
                      monitor_t **mon, char *err, size_t errlen);
/* Shuts engine, monitor (may be NULL) and server down as the daemon does, frees them and closes
 * the loop; aborts if a handle is left on it. */
void engine_host_stop(uv_loop_t *loop, server_t *srv, stan_t *st, monitor_t *mon);

/* Removes a directory tree (a test's store directory). */
void engine_host_rmtree(const char *dir);

#endif

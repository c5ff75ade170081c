/* monitor: the HTTP monitoring endpoints on -m/--http_port, served by httpd on the same loop.
 *
 * NSS-compatible JSON (/streaming/serverz, storez, clientsz, channelsz, with NSS's keys and
 * meanings, plus per-subscription backlog keys of our own), Prometheus text on /metrics, and
 * /healthz for probes. Everything is built from snapshots of the engine (stan.h) and the NATS
 * layer's counters (server.h); nothing here changes state. */
#ifndef STANZA_MONITOR_H
#define STANZA_MONITOR_H
#include <uv.h>

#include "config.h"
#include "bus.h"
#include "repl.h"
#include "stan.h"

typedef struct monitor monitor_t;

/* All must outlive the monitor. */
monitor_t *monitor_new(uv_loop_t *loop, const config_t *cfg, const bus_t *bus, stan_t *st);
/* Listens on cfg->http_host (or host) : cfg->http_port. Returns 0 (also when http_port is 0:
 * nothing to do), or a negative STZ_E* code with a message in err. */
int monitor_start(monitor_t *m, char *err, size_t errlen);
/* Clustered mode: the engine changes as the node takes and loses the lead. */
void monitor_set_stan(monitor_t *m, stan_t *st);
/* Clustered mode: the Raft node (serverz's state CLUSTERED, role, node_id; clusterz; the raft
 * metrics), and a function run before any endpoint that reads the engine is answered (a
 * follower loads a view of its store there and calls monitor_set_stan). A follower refuses the
 * admin commands that change something (503): only the leader's engine writes. */
void monitor_set_repl(monitor_t *m, const repl_t *r, void (*refresh)(void *arg), void *arg);
int monitor_port(const monitor_t *m);
/* Stops listening and closes its connections; done(arg) when finished (at once if idle). */
void monitor_close(monitor_t *m, void (*done)(void *arg), void *arg);
void monitor_free(monitor_t *m);

#endif

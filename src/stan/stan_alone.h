/* stan_alone: the start-up check that no other streaming server answers for this cluster id on
 * the same NATS (NSS's ensureRunningStandAlone): possible over an external NATS (-ns) or a
 * routed mesh, where two servers with one cluster id would both answer every request. */
#ifndef STANZA_STAN_ALONE_H
#define STANZA_STAN_ALONE_H
#include <stddef.h>

#include "stan_ctx.h"

/* Run before the engine subscribes its own request subjects. Sends a ConnectRequest (client
 * id = the cluster id, a fresh heartbeat inbox) to the discover subject and runs the loop for up
 * to STAN_ALONE_WAIT_MS for an answer. Returns 0 when none came (or nobody listens), else
 * STZ_EEXIST with "discovered another streaming server with cluster ID ..." in err; a valid
 * answer registered a client there, which a CloseRequest removes again, as NSS does. */
#define STAN_ALONE_WAIT_MS 250
int stan_alone_check(stan_t *st, char *err, size_t errlen);

#endif

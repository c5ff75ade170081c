/* stan_client: the client registry: connect (with the duplicate-ID liveness check), close,
 * client pings and the server's heartbeats. Clients are persisted, so a restarted server knows
 * them again. The struct is shared read-only (its ID, its subscription list, its connID). */
#ifndef STANZA_STAN_CLIENT_H
#define STANZA_STAN_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "list.h"
#include "bus.h"
#include "stan_ctx.h"

struct stan_client {
    stan_t *st;
    char *id;
    char *hb_inbox;
    char *hb_reply; /* <inbox_prefix>hb.<random>.<id>: where its heartbeats are answered */
    char *conn_id;
    size_t conn_id_len;
    int32_t protocol;
    int32_t ping_interval, ping_max_out;
    list_node_t subs; /* stan_sub_t.cl_link (stan_sub.c links and unlinks them) */
    uv_timer_t hb_timer;
    uint64_t hb_sent_ms; /* clock_mono_ms when the last heartbeat went out */
    uint64_t hb_due_ms;  /* clock_mono_ms when its next heartbeat step is due (hb_timer) */
    bool hb_waiting;
    int hb_fails;
    bool closed;     /* removed from the registry; freed when the timer handle closes */
    bool registered; /* its ClientRecord is committed */
};

void stan_client_on_connect(stan_t *st, const bus_msg_t *m);
void stan_client_on_close(stan_t *st, const bus_msg_t *m);
void stan_client_on_ping(stan_t *st, const bus_msg_t *m);
/* Replies to the server's own requests: heartbeats and duplicate-ID checks. */
void stan_client_on_inbox_reply(stan_t *st, const bus_msg_t *m);
stan_client_t *stan_client_find(stan_t *st, const char *id, size_t len);
/* Closes the client as its close request does: its plain subscriptions removed, its durables
 * kept offline, its ID free, its record deleted with the next batch. */
void stan_client_close(stan_t *st, stan_client_t *cl);
/* Stages only the deletion of its record (an admin close: memory follows once it committed). */
void stan_client_stage_close(stan_t *st, const stan_client_t *cl);
/* A ClientRecord from the store; NULL if it is damaged. */
stan_client_t *stan_client_restore(stan_t *st, const void *rec, size_t len);
/* Stops every client's heartbeat timer (an engine that only shows what the store holds). */
void stan_client_quiet_all(stan_t *st);
void stan_client_free_all(stan_t *st);
/* Runs the heartbeat steps that are due, even if their timers have not fired (stan_run_due):
 * sends the heartbeats due and closes the clients past hb_fail_count missed answers. */
void stan_client_run_due(stan_t *st);

#endif

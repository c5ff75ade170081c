/* Private to monitor.c, monitor_json.c, monitor_metrics.c and monitor_admin.c. */
#ifndef STANZA_MONITOR_PRIVATE_H
#define STANZA_MONITOR_PRIVATE_H
#include <jansson.h>

#include "buf.h"
#include "httpd.h"
#include "monitor.h"

struct monitor {
    uv_loop_t *loop;
    const config_t *cfg;
    bus_t bus; /* NATS stats: the embedded server's or the upstream connection's */
    stan_t *st;
    const repl_t *repl;         /* clustered mode; NULL otherwise */
    void (*refresh)(void *arg); /* monitor_set_repl */
    void *refresh_arg;
    httpd_t *httpd;
    void (*done)(void *arg);
    void *done_arg;
    bool admin_on;                  /* an admin_token is configured */
    unsigned char admin_digest[32]; /* its SHA-256 (monitor_admin.c) */
};

/* ---- admin (monitor_admin.c) ---- */

/* From monitor_new: takes in cfg->admin_token. */
void monitor_admin_init(monitor_t *m);
/* Whether the request carries the admin token as a bearer token; otherwise answers 403 (no
 * token configured, or a wrong one) or 401 (none presented, or not as "Bearer TOKEN"). */
bool monitor_admin_authorized(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp);
/* Whether the request is for /admin or under /admin/ (as sent, nothing decoded). */
bool monitor_admin_path(const httpd_req_t *req);
/* Answers an /admin/ request: the token first, then the endpoint. */
void monitor_admin(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp);

/* Prometheus text exposition of everything (monitor_metrics.c). */
void monitor_metrics(monitor_t *m, buf_t *out);

/* ---- clustered mode (monitor_cluster.c) ---- */

/* serverz's role, node_id and raft object (m->repl set). */
void monitor_cluster_serverz(monitor_t *m, json_t *o);
/* /streaming/clusterz: 404 when not clustered. */
void monitor_clusterz(monitor_t *m, httpd_resp_t *resp);

/* ---- JSON (monitor_json.c) ---- */

json_t *monitor_json_time(int64_t ns);   /* RFC 3339 in UTC with nanoseconds, as NSS */
json_t *monitor_json_uptime(int64_t ns); /* "1d2h3m4s", as NSS */
void monitor_json_int(json_t *o, const char *k, uint64_t v);
/* NSS's common head: cluster_id, server_id, now. */
json_t *monitor_json_head(monitor_t *m);
/* A whole answer, indented (o is consumed). */
void monitor_reply_json(httpd_resp_t *resp, json_t *o);
void monitor_reply_error(httpd_resp_t *resp, int status, const char *msg);

/* The one way a list is written: `{<head's keys>,"key":[item,item,...]<, tail's keys>}`, each
 * item turned into compact text as it is added. Every json_t passed in is consumed. */
typedef struct monitor_list {
    buf_t *b;
    size_t n; /* items written */
} monitor_list_t;
void monitor_list_open(monitor_list_t *l, buf_t *b, json_t *head, const char *key);
void monitor_list_add(monitor_list_t *l, json_t *item);
/* tail: keys after the list (NULL: none). */
void monitor_list_close(monitor_list_t *l, json_t *tail);

#endif

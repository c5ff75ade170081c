/* monitor: routing and the NSS-compatible JSON endpoints. See monitor.h. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "monitor_private.h"
#include "sort.h"
#include "xalloc.h"

#define DEFAULT_LIMIT 1024
#define PAGING_MAX 2147483647 /* NSS's int: the largest offset or limit taken */

/* ---- query parameters -------------------------------------------------------------------- */

/* One paging parameter. Absent leaves *out as it is; present, it must be plain decimal digits
 * (leading zeros allowed: no sign, space, exponent or hex) worth at most PAGING_MAX. Anything
 * else is refused with the reason in err: strtol's clamping, a value too long to read, or a
 * default in its place would answer a page the client did not ask for. */
static bool paging_param(const httpd_req_t *req, const char *key, long *out, char *err,
                         size_t errlen)
{
    if (!httpd_query_has(req, key)) return true;
    char v[32];
    bool ok = httpd_query_get(req, key, v, sizeof v) && *v;
    uint64_t n = 0;
    for (const char *p = v; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        n = n * 10 + (uint64_t)(*p - '0'); /* at most 31 digits of 10^10 each: checked per digit */
        if (n > PAGING_MAX) ok = false;
    }
    if (!ok) {
        snprintf(err, errlen, "invalid %s: must be an integer from 0 to %d", key, PAGING_MAX);
        return false;
    }
    *out = (long)n;
    return true;
}

/* offset (default 0) and limit (default 1024; 0 also means the default, as with NSS) of the
 * list endpoints. Returns false, with the reason in err, on a bad value. */
static bool paging(const httpd_req_t *req, long *offset, long *limit, char *err, size_t errlen)
{
    *offset = 0;
    *limit = DEFAULT_LIMIT;
    if (!paging_param(req, "offset", offset, err, errlen) ||
        !paging_param(req, "limit", limit, err, errlen))
        return false;
    if (*limit == 0) *limit = DEFAULT_LIMIT;
    return true;
}

/* The decoded value of key (malloc'ed), or NULL when it is absent. The buffer is as long as the
 * whole query, so a long client ID or channel name always fits and is looked up as given. */
static char *query_value(const httpd_req_t *req, const char *key)
{
    size_t cap = req->query_len + 1;
    char *v = xmalloc(cap);
    if (!httpd_query_get(req, key, v, cap)) {
        free(v);
        return NULL;
    }
    return v;
}

static bool flag(const httpd_req_t *req, const char *key)
{
    char v[16];
    return httpd_query_get(req, key, v, sizeof v) && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

/* ---- subscriptions ----------------------------------------------------------------------- */

/* What a subscription or a pending row still has to do: the same keys in both. */
typedef struct counts {
    uint64_t inflight_msgs, inflight_bytes, backlog_msgs, backlog_bytes, pending_msgs,
        pending_bytes, redelivered;
    double oldest_age;
    uint64_t dead;
} counts_t;

static void counts_json(json_t *o, counts_t c)
{
    const struct {
        const char *key;
        uint64_t v;
    } ints[] = {{"inflight_msgs", c.inflight_msgs}, {"inflight_bytes", c.inflight_bytes},
                {"backlog_msgs", c.backlog_msgs},   {"backlog_bytes", c.backlog_bytes},
                {"pending_msgs", c.pending_msgs},   {"pending_bytes", c.pending_bytes}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        monitor_json_int(o, ints[i].key, ints[i].v);
    json_object_set_new(o, "oldest_pending_age", json_real(c.oldest_age));
    monitor_json_int(o, "redelivered_total", c.redelivered);
    monitor_json_int(o, "dead_total", c.dead);
}

static json_t *sub_json(const stan_sub_info_t *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "client_id", json_string(s->client_id));
    json_object_set_new(o, "inbox", json_string(s->inbox));
    json_object_set_new(o, "ack_inbox", json_string(s->ack_inbox));
    if (s->durable_name) json_object_set_new(o, "durable_name", json_string(s->durable_name));
    if (s->queue_name) json_object_set_new(o, "queue_name", json_string(s->queue_name));
    json_object_set_new(o, "is_durable", json_boolean(s->is_durable));
    json_object_set_new(o, "is_offline", json_boolean(s->is_offline));
    monitor_json_int(o, "max_inflight", (uint64_t)s->max_inflight);
    monitor_json_int(o, "ack_wait", (uint64_t)s->ack_wait);
    monitor_json_int(o, "last_sent", s->last_sent);
    monitor_json_int(o, "pending_count", s->inflight_msgs);
    json_object_set_new(o, "is_stalled", json_boolean(s->is_stalled));
    json_object_set_new(o, "is_paused", json_boolean(s->is_paused));
    /* Ours: everything the subscription still has to do. */
    counts_json(o, (counts_t){s->inflight_msgs, s->inflight_bytes, s->backlog_msgs,
                              s->backlog_bytes, s->pending_msgs, s->pending_bytes,
                              s->redelivered_total, s->oldest_pending_age, s->dead_total});
    return o;
}

static int add_sub_to_array(void *arg, const stan_sub_info_t *s)
{
    json_array_append_new(arg, sub_json(s));
    return 0;
}

static int add_sub_by_channel(void *arg, const stan_sub_info_t *s)
{
    json_t *subs = arg;
    json_t *list = json_object_get(subs, s->channel);
    if (!list) {
        list = json_array();
        json_object_set_new(subs, s->channel, list);
    }
    json_array_append_new(list, sub_json(s));
    return 0;
}

/* Every subscription, sorted by client (then channel, then ack inbox): clientsz?subs=1 takes
 * each client's run of them instead of walking all subscriptions once per client. The
 * snapshots' strings stay valid during the request. */
typedef struct sub_vec {
    stan_sub_info_t *v;
    size_t n, cap;
} sub_vec_t;

static int collect_sub(void *arg, const stan_sub_info_t *s)
{
    sub_vec_t *sv = arg;
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 256;
        sv->v = xrealloc(sv->v, sv->cap * sizeof *sv->v);
    }
    sv->v[sv->n++] = *s;
    return 0;
}

static int cmp_sub_client(const void *a, const void *b)
{
    const stan_sub_info_t *x = a, *y = b;
    int c = strcmp(x->client_id, y->client_id);
    if (!c) c = strcmp(x->channel, y->channel);
    return c ? c : strcmp(x->ack_inbox, y->ack_inbox);
}

/* The client's subscriptions by channel, or NULL if it has none. */
static json_t *client_subs(const sub_vec_t *sv, const char *id)
{
    size_t lo = 0, hi = sv->n; /* lower bound of id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sv->v[mid].client_id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    json_t *by_channel = NULL;
    for (size_t i = lo; i < sv->n && strcmp(sv->v[i].client_id, id) == 0; i++) {
        if (!by_channel) by_channel = json_object();
        add_sub_by_channel(by_channel, &sv->v[i]);
    }
    return by_channel;
}

/* ---- single answers ---------------------------------------------------------------------- */

static void serverz(monitor_t *m, httpd_resp_t *resp)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    bus_stats_t ns;
    bus_stats(&m->bus, &ns);
    int64_t now = clock_wall_ns();
    json_t *o = json_object();
    json_object_set_new(o, "cluster_id", json_string(si.cluster_id));
    json_object_set_new(o, "server_id", json_string(si.server_id ? si.server_id : ""));
    json_object_set_new(o, "version", json_string(STANZA_VERSION));
    json_object_set_new(o, "go", json_string("stanza (C)"));
    json_object_set_new(o, "state", json_string(m->repl ? "CLUSTERED" : "STANDALONE"));
    if (m->repl) monitor_cluster_serverz(m, o);
    json_object_set_new(o, "now", monitor_json_time(now));
    json_object_set_new(o, "start_time", monitor_json_time(si.start_ns));
    json_object_set_new(o, "uptime", monitor_json_uptime(now - si.start_ns));
    const struct {
        const char *key;
        uint64_t v;
    } ints[] = {{"clients", si.clients},         {"subscriptions", si.subscriptions},
                {"channels", si.channels},       {"total_msgs", si.total_msgs},
                {"total_bytes", si.total_bytes}, {"in_msgs", ns.in_msgs},
                {"in_bytes", ns.in_bytes},       {"out_msgs", ns.out_msgs},
                {"out_bytes", ns.out_bytes}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        monitor_json_int(o, ints[i].key, ints[i].v);
    monitor_reply_json(resp, o);
}

static json_t *limits_json(const config_limits_t *l, int64_t max_channels, bool top)
{
    json_t *o = json_object();
    if (top) monitor_json_int(o, "max_channels", (uint64_t)max_channels);
    monitor_json_int(o, "max_msgs", (uint64_t)l->max_msgs);
    monitor_json_int(o, "max_bytes", (uint64_t)l->max_bytes);
    monitor_json_int(o, "max_age", (uint64_t)l->max_age_ms * 1000000); /* nanoseconds, as NSS */
    monitor_json_int(o, "max_subscriptions", (uint64_t)l->max_subs);
    monitor_json_int(o, "max_inactivity", (uint64_t)l->max_inactivity_ms * 1000000);
    return o;
}

static void storez(monitor_t *m, httpd_resp_t *resp)
{
    json_t *o = monitor_json_head(m);
    stan_store_info_t sti;
    stan_get_store_info(m->st, &sti);
    json_object_set_new(o, "type", json_string(sti.type));
    json_t *lim = limits_json(&m->cfg->limits, m->cfg->max_channels, true);
    if (m->cfg->nchannel_limits) {
        json_t *chans = json_object();
        for (size_t i = 0; i < m->cfg->nchannel_limits; i++) {
            const config_channel_limits_t *c = &m->cfg->channel_limits[i];
            json_object_set_new(chans, c->pattern, limits_json(&c->limits, 0, false));
        }
        json_object_set_new(lim, "channels", chans);
    }
    json_object_set_new(o, "limits", lim);
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    monitor_json_int(o, "total_msgs", si.total_msgs);
    monitor_json_int(o, "total_bytes", si.total_bytes);
    monitor_reply_json(resp, o);
}

/* subs: its subscriptions by channel (consumed), or NULL. */
static json_t *client_json(const stan_client_info_t *c, json_t *subs)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "hb_inbox", json_string(c->hb_inbox));
    monitor_json_int(o, "subs_count", c->subs);
    if (subs) json_object_set_new(o, "subscriptions", subs);
    return o;
}

static json_t *channel_json(monitor_t *m, const stan_channel_info_t *c, bool subs)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(c->name));
    monitor_json_int(o, "msgs", c->msgs);
    monitor_json_int(o, "bytes", c->bytes);
    monitor_json_int(o, "first_seq", c->first_seq);
    monitor_json_int(o, "last_seq", c->last_seq);
    monitor_json_int(o, "subs_count", c->subs);
    if (subs && c->subs) {
        json_t *arr = json_array();
        stan_foreach_sub(m->st, c->name, NULL, add_sub_to_array, arr);
        json_object_set_new(o, "subscriptions", arr);
    }
    return o;
}

/* ---- lists: paged, every item written as it is made (monitor_list_*) --------------------- */

typedef struct list_walk {
    monitor_t *m;
    monitor_list_t list;
    long offset, limit, index;
    bool subs;
    sub_vec_t sv; /* clientsz?subs=1 */
} list_walk_t;

/* Whether the next item is on the page. */
static bool on_page(list_walk_t *x)
{
    return x->index++ >= x->offset && (long)x->list.n < x->limit;
}

static bool page_full(const list_walk_t *x)
{
    return (long)x->list.n >= x->limit;
}

/* A list endpoint: paging from the query, NSS's head with its counts (the total is known before
 * the walk, so the count follows from it), then walk adds the page's items under key. */
static void list_reply(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp, bool subs,
                       const char *key, size_t total, void (*walk)(list_walk_t *x))
{
    list_walk_t x = {.m = m, .subs = subs};
    char err[128];
    if (!paging(req, &x.offset, &x.limit, err, sizeof err)) {
        monitor_reply_error(resp, 400, err);
        return;
    }
    long count = (long)total > x.offset ? (long)total - x.offset : 0;
    if (count > x.limit) count = x.limit;
    json_t *head = monitor_json_head(m);
    monitor_json_int(head, "offset", (uint64_t)x.offset);
    monitor_json_int(head, "limit", (uint64_t)x.limit);
    monitor_json_int(head, "count", (uint64_t)count);
    monitor_json_int(head, "total", total);
    monitor_list_open(&x.list, &resp->body, head, key);
    walk(&x);
    monitor_list_close(&x.list, NULL);
}

static int client_item(void *arg, const stan_client_info_t *c)
{
    list_walk_t *x = arg;
    if (on_page(x))
        monitor_list_add(&x->list, client_json(c, x->subs ? client_subs(&x->sv, c->id) : NULL));
    return page_full(x);
}

static void walk_clients(list_walk_t *x)
{
    if (x->subs) {
        stan_foreach_sub(x->m->st, NULL, NULL, collect_sub, &x->sv);
        sort_array(x->sv.v, x->sv.n, sizeof *x->sv.v, cmp_sub_client);
    }
    stan_foreach_client(x->m->st, client_item, x);
    free(x->sv.v);
}

static int get_client(monitor_t *m, const char *id, void *out)
{
    return stan_get_client_info(m->st, id, out);
}

static int get_channel(monitor_t *m, const char *name, void *out)
{
    return stan_get_channel_info(m->st, name, out);
}

/* The item that query parameter key names, through get (0: found). Otherwise answers 404
 * "<key> not found" and returns false. */
static bool named(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp, const char *key,
                  int (*get)(monitor_t *m, const char *name, void *out), void *out)
{
    /* NULL only for a value with an encoded NUL, which no name holds. */
    char *v = query_value(req, key);
    int rc = v ? get(m, v, out) : STZ_ENOENT;
    free(v);
    if (rc == 0) return true;
    char msg[64];
    snprintf(msg, sizeof msg, "%s not found", key);
    monitor_reply_error(resp, 404, msg);
    return false;
}

static void clientsz(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    bool subs = flag(req, "subs");
    if (!httpd_query_has(req, "client")) {
        stan_server_info_t si;
        stan_get_server_info(m->st, &si);
        list_reply(m, req, resp, subs, "clients", si.clients, walk_clients);
        return;
    }
    stan_client_info_t c;
    if (!named(m, req, resp, "client", get_client, &c)) return;
    json_t *by_channel = NULL;
    if (subs && c.subs) {
        by_channel = json_object();
        stan_foreach_sub(m->st, NULL, c.id, add_sub_by_channel, by_channel);
    }
    monitor_reply_json(resp, client_json(&c, by_channel));
}

static int channel_item(void *arg, const stan_channel_info_t *c)
{
    list_walk_t *x = arg;
    if (on_page(x))
        monitor_list_add(&x->list, x->subs ? channel_json(x->m, c, true) : json_string(c->name));
    return page_full(x);
}

static void walk_channels(list_walk_t *x)
{
    stan_foreach_channel(x->m->st, channel_item, x);
}

static void channelsz(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    bool subs = flag(req, "subs");
    if (!httpd_query_has(req, "channel")) {
        stan_server_info_t si;
        stan_get_server_info(m->st, &si);
        list_reply(m, req, resp, subs, subs ? "channels" : "names", si.channels, walk_channels);
        return;
    }
    stan_channel_info_t c;
    if (named(m, req, resp, "channel", get_channel, &c))
        monitor_reply_json(resp, channel_json(m, &c, subs));
}

/* ---- pending rows: the engine's, as they are (stan_foreach_pending_row) ------------------ */

static json_t *pending_row_json(const stan_pending_row_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "channel", json_string(r->channel));
    if (r->queue_name) {
        json_object_set_new(o, "queue_name", json_string(r->queue_name));
        json_object_set_new(o, "queue_group", json_string(r->queue_group));
    }
    if (r->durable_name) json_object_set_new(o, "durable_name", json_string(r->durable_name));
    if (r->client_id) {
        json_object_set_new(o, "client_id", json_string(r->client_id));
        json_object_set_new(o, "ack_inbox", json_string(r->ack_inbox));
    }
    json_t *ids = json_array();
    for (size_t i = 0; i < r->members; i++)
        json_array_append_new(ids, json_string(r->member_ids[i]));
    json_object_set_new(o, "members", ids);
    monitor_json_int(o, "online_members", r->online);
    counts_json(o, (counts_t){r->inflight_msgs, r->inflight_bytes, r->backlog_msgs,
                              r->backlog_bytes, r->pending_msgs, r->pending_bytes,
                              r->redelivered_total, r->oldest_pending_age, r->dead_total});
    json_object_set_new(o, "is_stalled", json_boolean(r->is_stalled));
    json_object_set_new(o, "is_offline", json_boolean(r->is_offline));
    json_object_set_new(o, "is_paused", json_boolean(r->is_paused));
    return o;
}

static int pending_item(void *arg, const stan_pending_row_t *r)
{
    monitor_list_add(arg, pending_row_json(r));
    return 0;
}

/* /streaming/pendingz: every row (no paging, like /metrics), filtered by channel, client,
 * queue and durable; an unknown channel is a 404. */
static void pendingz(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    stan_channel_info_t ci;
    if (httpd_query_has(req, "channel") && !named(m, req, resp, "channel", get_channel, &ci))
        return;
    static const char *const keys[] = {"channel", "client", "queue", "durable"};
    char *v[4];
    for (size_t i = 0; i < 4; i++)
        v[i] = query_value(req, keys[i]);
    /* A name with an encoded NUL (NULL here though present) matches nothing. */
    bool none = false;
    for (size_t i = 1; i < 4; i++)
        none = none || (!v[i] && httpd_query_has(req, keys[i]));
    stan_pending_filter_t f = {.channel = v[0], .client_id = v[1], .queue = v[2], .durable = v[3]};
    monitor_list_t l;
    monitor_list_open(&l, &resp->body, monitor_json_head(m), "pending");
    if (!none) stan_foreach_pending_row(m->st, &f, pending_item, &l);
    json_t *tail = json_object();
    monitor_json_int(tail, "count", l.n);
    monitor_list_close(&l, tail);
    for (size_t i = 0; i < 4; i++)
        free(v[i]);
}

/* For Kubernetes probes: 200 while the loop answers (it does, or nothing would) and the last
 * commit succeeded; 503 with the reason otherwise. */
static void healthz(monitor_t *m, httpd_resp_t *resp)
{
    stan_store_info_t sti;
    stan_get_store_info(m->st, &sti);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(sti.writable ? "ok" : "unavailable"));
    if (!sti.writable) {
        resp->status = 503;
        json_object_set_new(o, "error", json_string(sti.error));
    }
    monitor_reply_json(resp, o);
}

/* For liveness probes: 200 for as long as the event loop answers. Unlike /healthz it does not
 * fail on a full disk (a restart would not empty it), and unlike "/" it needs no token. */
static void livez(httpd_resp_t *resp)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    monitor_reply_json(resp, o);
}

static void index_page(httpd_resp_t *resp)
{
    resp->content_type = "text/plain; charset=utf-8";
    buf_append_str(
        &resp->body,
        "stanzad monitoring\n\n"
        "/streaming/serverz\n/streaming/storez\n/streaming/clusterz\n/streaming/clientsz\n"
        "/streaming/channelsz\n/streaming/pendingz\n/metrics\n/healthz\n/livez\n");
}

static bool is(const httpd_req_t *req, const char *path)
{
    return strcmp(req->path, path) == 0;
}

/* The read-only endpoints: nothing but GET and HEAD. */
static bool read_only_method(const httpd_req_t *req, httpd_resp_t *resp)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) return true;
    monitor_reply_error(resp, 405, "method not allowed");
    httpd_resp_header(resp, "Allow", "GET, HEAD");
    return false;
}

static void handle(void *arg, const httpd_req_t *req, httpd_resp_t *resp)
{
    monitor_t *m = arg;
    if (monitor_admin_path(req)) {
        monitor_admin(m, req, resp);
        return;
    }
    /* Probes stay open: they say nothing but "ok" (or why not). */
    bool probe = is(req, "/healthz") || is(req, "/livez");
    if (m->cfg->monitor_require_token && !probe && !monitor_admin_authorized(m, req, resp)) return;
    if (!read_only_method(req, resp)) return;
    if (m->refresh && !probe) m->refresh(m->refresh_arg);
    if (is(req, "/streaming/serverz"))
        serverz(m, resp);
    else if (is(req, "/streaming/storez"))
        storez(m, resp);
    else if (is(req, "/streaming/clusterz"))
        monitor_clusterz(m, resp);
    else if (is(req, "/streaming/clientsz"))
        clientsz(m, req, resp);
    else if (is(req, "/streaming/channelsz"))
        channelsz(m, req, resp);
    else if (is(req, "/streaming/pendingz"))
        pendingz(m, req, resp);
    else if (is(req, "/healthz"))
        healthz(m, resp);
    else if (is(req, "/livez"))
        livez(resp);
    else if (is(req, "/metrics")) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        monitor_metrics(m, &resp->body);
    } else if (is(req, "/") || is(req, "/streaming") || is(req, "/streaming/"))
        index_page(resp);
    else
        monitor_reply_error(resp, 404, "not found");
}

/* ---- lifecycle --------------------------------------------------------------------------- */

void monitor_set_stan(monitor_t *m, stan_t *st)
{
    m->st = st;
}

void monitor_set_repl(monitor_t *m, const repl_t *r, void (*refresh)(void *arg), void *arg)
{
    m->repl = r;
    m->refresh = refresh;
    m->refresh_arg = arg;
}

monitor_t *monitor_new(uv_loop_t *loop, const config_t *cfg, const bus_t *bus, stan_t *st)
{
    monitor_t *m = xcalloc(1, sizeof *m);
    m->loop = loop;
    m->cfg = cfg;
    m->bus = *bus;
    m->st = st;
    monitor_admin_init(m);
    return m;
}

int monitor_start(monitor_t *m, char *err, size_t errlen)
{
    if (m->cfg->http_port <= 0) return 0;
    m->httpd = httpd_new(m->loop, handle, m);
    const char *host = m->cfg->http_host ? m->cfg->http_host : m->cfg->host;
    int rc = httpd_listen(m->httpd, host, m->cfg->http_port, err, errlen);
    if (rc < 0) return rc;
    LOG_I("Listening for HTTP monitoring on %s:%d", host, httpd_port(m->httpd));
    return 0;
}

int monitor_port(const monitor_t *m)
{
    return m->httpd ? httpd_port(m->httpd) : 0;
}

static void on_httpd_closed(void *arg)
{
    monitor_t *m = arg;
    if (m->done) m->done(m->done_arg);
}

void monitor_close(monitor_t *m, void (*done)(void *arg), void *arg)
{
    m->done = done;
    m->done_arg = arg;
    if (!m->httpd) {
        if (done) done(arg);
        return;
    }
    httpd_close(m->httpd, on_httpd_closed, m);
}

void monitor_free(monitor_t *m)
{
    if (!m) return;
    if (m->httpd) httpd_free(m->httpd);
    free(m);
}

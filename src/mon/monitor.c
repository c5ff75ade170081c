/* monitor: routing and the NSS-compatible JSON endpoints. See monitor.h. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "monitor_private.h"
#include "sort.h"
#include "xalloc.h"

#define DEFAULT_LIMIT 1024
#define PAGING_MAX 2147483647 /* NSS's int: the largest offset or limit taken */

/* ---- formatting helpers ------------------------------------------------------------------ */

/* RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano marshals. */
static json_t *json_time(int64_t ns)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09lldZ", (long long)(ns % 1000000000));
    return json_string(buf);
}

/* "1d2h3m4s", as NSS prints uptime. */
static json_t *json_uptime(int64_t ns)
{
    int64_t s = ns / 1000000000;
    int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
    char buf[64];
    if (d)
        snprintf(buf, sizeof buf, "%lldd%lldh%lldm%llds", (long long)d, (long long)h, (long long)m,
                 (long long)sec);
    else if (h)
        snprintf(buf, sizeof buf, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)sec);
    else if (m)
        snprintf(buf, sizeof buf, "%lldm%llds", (long long)m, (long long)sec);
    else
        snprintf(buf, sizeof buf, "%llds", (long long)sec);
    return json_string(buf);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_int(json_t *o, const char *k, uint64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

static void reply_json(httpd_resp_t *resp, json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    buf_append_str(&resp->body, text);
    buf_append(&resp->body, "\n", 1);
    free(text);
    json_decref(o);
}

static void reply_error(httpd_resp_t *resp, int status, const char *msg)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    buf_append_str(&resp->body, msg);
    buf_append(&resp->body, "\n", 1);
}

static void append_dump(buf_t *b, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    buf_append_str(b, text);
    free(text);
    json_decref(v);
}

/* Writes the head object, left open, then `"key":[`: the list is appended item by item. */
static void open_list(buf_t *b, json_t *head_obj, const char *key)
{
    char *text = json_dumps(head_obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(head_obj);
    buf_append(b, text, strlen(text) - 1);
    free(text);
    buf_printf(b, ",\"%s\":[", key);
}

/* The common head of the NSS list endpoints. */
static json_t *head(monitor_t *m)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    json_t *o = json_object();
    json_object_set_new(o, "cluster_id", json_string(si.cluster_id));
    json_object_set_new(o, "server_id", json_string(si.server_id));
    json_object_set_new(o, "now", json_time(now_ns()));
    return o;
}

/* The head of a list answer: NSS's common keys plus the paging counts. */
static json_t *list_head(monitor_t *m, long offset, long limit, uint64_t count, uint64_t total)
{
    json_t *o = head(m);
    set_int(o, "offset", (uint64_t)offset);
    set_int(o, "limit", (uint64_t)limit);
    set_int(o, "count", count);
    set_int(o, "total", total);
    return o;
}

/* The head of a list written item by item: count is known from the total before the walk. */
static json_t *streamed_head(monitor_t *m, long offset, long limit, size_t total)
{
    long count = (long)total > offset ? (long)total - offset : 0;
    if (count > limit) count = limit;
    return list_head(m, offset, limit, (uint64_t)count, total);
}

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
    set_int(o, "max_inflight", (uint64_t)s->max_inflight);
    set_int(o, "ack_wait", (uint64_t)s->ack_wait);
    set_int(o, "last_sent", s->last_sent);
    set_int(o, "pending_count", s->inflight_msgs);
    json_object_set_new(o, "is_stalled", json_boolean(s->is_stalled));
    /* Ours: everything the subscription still has to do. */
    set_int(o, "inflight_msgs", s->inflight_msgs);
    set_int(o, "inflight_bytes", s->inflight_bytes);
    set_int(o, "backlog_msgs", s->backlog_msgs);
    set_int(o, "backlog_bytes", s->backlog_bytes);
    set_int(o, "pending_msgs", s->pending_msgs);
    set_int(o, "pending_bytes", s->pending_bytes);
    json_object_set_new(o, "oldest_pending_age", json_real(s->oldest_pending_age));
    set_int(o, "redelivered_total", s->redelivered_total);
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

/* ---- endpoints --------------------------------------------------------------------------- */

static void serverz(monitor_t *m, httpd_resp_t *resp)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    server_stats_t ns;
    server_get_stats(m->srv, &ns);
    int64_t now = now_ns();
    json_t *o = json_object();
    json_object_set_new(o, "cluster_id", json_string(si.cluster_id));
    json_object_set_new(o, "server_id", json_string(si.server_id));
    json_object_set_new(o, "version", json_string(STANZA_VERSION));
    json_object_set_new(o, "go", json_string("stanza (C)"));
    json_object_set_new(o, "state", json_string("STANDALONE"));
    json_object_set_new(o, "now", json_time(now));
    json_object_set_new(o, "start_time", json_time(si.start_ns));
    json_object_set_new(o, "uptime", json_uptime(now - si.start_ns));
    set_int(o, "clients", si.clients);
    set_int(o, "subscriptions", si.subscriptions);
    set_int(o, "channels", si.channels);
    set_int(o, "total_msgs", si.total_msgs);
    set_int(o, "total_bytes", si.total_bytes);
    set_int(o, "in_msgs", ns.in_msgs);
    set_int(o, "in_bytes", ns.in_bytes);
    set_int(o, "out_msgs", ns.out_msgs);
    set_int(o, "out_bytes", ns.out_bytes);
    reply_json(resp, o);
}

static json_t *limits_json(const config_limits_t *l, int64_t max_channels, bool top)
{
    json_t *o = json_object();
    if (top) set_int(o, "max_channels", (uint64_t)max_channels);
    set_int(o, "max_msgs", (uint64_t)l->max_msgs);
    set_int(o, "max_bytes", (uint64_t)l->max_bytes);
    set_int(o, "max_age", (uint64_t)l->max_age_ms * 1000000); /* nanoseconds, as NSS */
    set_int(o, "max_subscriptions", (uint64_t)l->max_subs);
    set_int(o, "max_inactivity", (uint64_t)l->max_inactivity_ms * 1000000);
    return o;
}

static void storez(monitor_t *m, httpd_resp_t *resp)
{
    json_t *o = head(m);
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
    set_int(o, "total_msgs", si.total_msgs);
    set_int(o, "total_bytes", si.total_bytes);
    reply_json(resp, o);
}

static json_t *client_json(const stan_client_info_t *c, json_t *by_client)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "hb_inbox", json_string(c->hb_inbox));
    set_int(o, "subs_count", c->subs);
    json_t *subs = by_client ? json_object_get(by_client, c->id) : NULL;
    if (subs) json_object_set(o, "subscriptions", subs);
    return o;
}

typedef struct list_ctx {
    monitor_t *m;
    json_t *arr;
    long offset, limit, index;
    bool subs;
    json_t *by_client;
} list_ctx_t;

static int add_client(void *arg, const stan_client_info_t *c)
{
    list_ctx_t *x = arg;
    if (x->index++ >= x->offset && (long)json_array_size(x->arr) < x->limit)
        json_array_append_new(x->arr, client_json(c, x->by_client));
    return 0;
}

/* clientsz?subs=1 is written client by client, like channelsz: the subscriptions are gathered
 * once (snapshots whose strings stay valid during this request), sorted by client, and each
 * client's object is built from its run of them and turned into text at once. */
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

typedef struct client_stream {
    buf_t *body;
    const sub_vec_t *subs;
    long offset, limit, index, written;
} client_stream_t;

static int stream_client(void *arg, const stan_client_info_t *c)
{
    client_stream_t *x = arg;
    if (x->index++ < x->offset || x->written >= x->limit) return 0;
    if (x->written++) buf_append(x->body, ",", 1);
    /* Its run in the sorted subscriptions: lower bound by client ID. */
    size_t lo = 0, hi = x->subs->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(x->subs->v[mid].client_id, c->id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    json_t *by_channel = NULL;
    for (size_t i = lo; i < x->subs->n && strcmp(x->subs->v[i].client_id, c->id) == 0; i++) {
        if (!by_channel) by_channel = json_object();
        add_sub_by_channel(by_channel, &x->subs->v[i]);
    }
    json_t *by_client = NULL;
    if (by_channel) {
        by_client = json_object();
        json_object_set_new(by_client, c->id, by_channel);
    }
    append_dump(x->body, client_json(c, by_client));
    json_decref(by_client);
    return 0;
}

static void clients_streamed(monitor_t *m, const list_ctx_t *lx, httpd_resp_t *resp)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    open_list(&resp->body, streamed_head(m, lx->offset, lx->limit, si.clients), "clients");
    sub_vec_t sv = {0};
    stan_foreach_sub(m->st, NULL, NULL, collect_sub, &sv);
    sort_array(sv.v, sv.n, sizeof *sv.v, cmp_sub_client);
    client_stream_t x = {
        .body = &resp->body, .subs = &sv, .offset = lx->offset, .limit = lx->limit};
    stan_foreach_client(m->st, stream_client, &x);
    free(sv.v);
    buf_append_str(&resp->body, "]}\n");
}

static void clientsz(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    bool subs = flag(req, "subs");
    if (httpd_query_has(req, "client")) {
        /* NULL only for a value with an encoded NUL, which no client ID holds. */
        char *id = query_value(req, "client");
        stan_client_info_t c;
        int rc = id ? stan_get_client_info(m->st, id, &c) : -1;
        free(id);
        if (rc != 0) {
            reply_error(resp, 404, "client not found");
            return;
        }
        json_t *by_client = NULL;
        if (subs && c.subs) {
            by_client = json_object();
            json_t *by_channel = json_object();
            stan_foreach_sub(m->st, NULL, c.id, add_sub_by_channel, by_channel);
            json_object_set_new(by_client, c.id, by_channel);
        }
        reply_json(resp, client_json(&c, by_client));
        json_decref(by_client);
        return;
    }
    list_ctx_t x = {.m = m, .subs = subs};
    char err[128];
    if (!paging(req, &x.offset, &x.limit, err, sizeof err)) {
        reply_error(resp, 400, err);
        return;
    }
    if (subs) {
        clients_streamed(m, &x, resp);
        return;
    }
    x.arr = json_array();
    stan_foreach_client(m->st, add_client, &x);
    json_t *o = list_head(m, x.offset, x.limit, json_array_size(x.arr), (uint64_t)x.index);
    json_object_set_new(o, "clients", x.arr);
    reply_json(resp, o);
}

static json_t *channel_json(monitor_t *m, const stan_channel_info_t *c, bool subs)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(c->name));
    set_int(o, "msgs", c->msgs);
    set_int(o, "bytes", c->bytes);
    set_int(o, "first_seq", c->first_seq);
    set_int(o, "last_seq", c->last_seq);
    set_int(o, "subs_count", c->subs);
    if (subs && c->subs) {
        json_t *arr = json_array();
        stan_foreach_sub(m->st, c->name, NULL, add_sub_to_array, arr);
        json_object_set_new(o, "subscriptions", arr);
    }
    return o;
}

static int add_channel(void *arg, const stan_channel_info_t *c)
{
    list_ctx_t *x = arg;
    if (x->index++ >= x->offset && (long)json_array_size(x->arr) < x->limit)
        json_array_append_new(x->arr, x->subs ? channel_json(x->m, c, true) : json_string(c->name));
    return 0;
}

/* Channel objects with their subscriptions can be megabytes for a big server: each is turned
 * into text as soon as it is made, so the whole answer never exists as one jansson tree (its
 * allocation and freeing dominated the time). The answer is the same JSON, unindented. */
typedef struct stream_ctx {
    monitor_t *m;
    buf_t *body;
    long offset, limit, index, written;
} stream_ctx_t;

static int stream_channel(void *arg, const stan_channel_info_t *c)
{
    stream_ctx_t *x = arg;
    if (x->index++ < x->offset || x->written >= x->limit) return 0;
    if (x->written++) buf_append(x->body, ",", 1);
    append_dump(x->body, channel_json(x->m, c, true));
    return 0;
}

static void channels_streamed(monitor_t *m, const list_ctx_t *lx, httpd_resp_t *resp)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    open_list(&resp->body, streamed_head(m, lx->offset, lx->limit, si.channels), "channels");
    stream_ctx_t x = {.m = m, .body = &resp->body, .offset = lx->offset, .limit = lx->limit};
    stan_foreach_channel(m->st, stream_channel, &x);
    buf_append_str(&resp->body, "]}\n");
}

static void channelsz(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    bool subs = flag(req, "subs");
    if (httpd_query_has(req, "channel")) {
        char *name = query_value(req, "channel");
        stan_channel_info_t c;
        int rc = name ? stan_get_channel_info(m->st, name, &c) : -1;
        free(name);
        if (rc != 0) {
            reply_error(resp, 404, "channel not found");
            return;
        }
        reply_json(resp, channel_json(m, &c, subs));
        return;
    }
    list_ctx_t x = {.m = m, .subs = subs};
    char err[128];
    if (!paging(req, &x.offset, &x.limit, err, sizeof err)) {
        reply_error(resp, 400, err);
        return;
    }
    if (subs) {
        channels_streamed(m, &x, resp);
        return;
    }
    x.arr = json_array();
    stan_foreach_channel(m->st, add_channel, &x);
    json_t *o = list_head(m, x.offset, x.limit, json_array_size(x.arr), (uint64_t)x.index);
    json_object_set_new(o, "names", x.arr);
    reply_json(resp, o);
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
    reply_json(resp, o);
}

static void index_page(httpd_resp_t *resp)
{
    resp->content_type = "text/plain; charset=utf-8";
    buf_append_str(&resp->body, "stanzad monitoring\n\n"
                                "/streaming/serverz\n/streaming/storez\n/streaming/clientsz\n"
                                "/streaming/channelsz\n/metrics\n/healthz\n");
}

static bool is(const httpd_req_t *req, const char *path)
{
    return strcmp(req->path, path) == 0;
}

static void handle(void *arg, const httpd_req_t *req, httpd_resp_t *resp)
{
    monitor_t *m = arg;
    if (is(req, "/streaming/serverz"))
        serverz(m, resp);
    else if (is(req, "/streaming/storez"))
        storez(m, resp);
    else if (is(req, "/streaming/clientsz"))
        clientsz(m, req, resp);
    else if (is(req, "/streaming/channelsz"))
        channelsz(m, req, resp);
    else if (is(req, "/healthz"))
        healthz(m, resp);
    else if (is(req, "/metrics")) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        monitor_metrics(m, &resp->body);
    } else if (is(req, "/") || is(req, "/streaming") || is(req, "/streaming/"))
        index_page(resp);
    else
        reply_error(resp, 404, "not found");
}

/* ---- lifecycle --------------------------------------------------------------------------- */

monitor_t *monitor_new(uv_loop_t *loop, const config_t *cfg, server_t *srv, stan_t *st)
{
    monitor_t *m = xcalloc(1, sizeof *m);
    m->loop = loop;
    m->cfg = cfg;
    m->srv = srv;
    m->st = st;
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

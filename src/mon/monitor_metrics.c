/* monitor_metrics: /metrics in the Prometheus text format (version 0.0.4).
 *
 * Subscription series carry the labels channel, queue, durable, client_id and sub (the
 * subscription's id, so two plain subscriptions of one client on one channel stay distinct).
 * A queue group is one series set with client_id="" and sub="": members share the backlog, so
 * per-member series would count it once per member. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "monitor_private.h"
#include "strmap.h"
#include "xalloc.h"

static void esc(buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            buf_append_str(b, "\\n");
        else
            buf_append(b, s, 1);
    }
}

static void family(buf_t *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(buf_t *b, const char *name, uint64_t v)
{
    buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* ---- subscriptions, gathered first so that each family is printed in one block ---- */

typedef struct row {
    char *channel, *queue, *durable, *client_id, *sub;
    buf_t labels; /* the escaped label set, built once per row */
    uint64_t pending_msgs, pending_bytes, inflight_msgs, inflight_bytes, backlog_msgs,
        backlog_bytes, redelivered;
    double oldest_age;
    int stalled, offline, members, online;
} row_t;

typedef struct rows {
    row_t *v;
    size_t n, cap;
    strmap_t groups; /* "channel\0queue" -> row index + 1 */
} rows_t;

/* "channel\0queue" (malloc'ed; its length in *len). Whole names, however long: a key cut to a
 * buffer would merge two groups, or leave one group as many rows with the same labels. */
static char *group_key(const char *channel, const char *queue, size_t *len)
{
    size_t a = strlen(channel), b = strlen(queue);
    char *out = xmalloc(a + b + 1);
    memcpy(out, channel, a);
    out[a] = '\0';
    memcpy(out + a + 1, queue, b);
    *len = a + 1 + b;
    return out;
}

static row_t *find_group(rows_t *r, const char *channel, const char *queue)
{
    size_t n;
    char *key = group_key(channel, queue, &n);
    uintptr_t idx = (uintptr_t)strmap_get(&r->groups, key, n);
    free(key);
    return idx ? &r->v[idx - 1] : NULL;
}

static int gather(void *arg, const stan_sub_info_t *s)
{
    rows_t *r = arg;
    row_t *w = s->queue_name ? find_group(r, s->channel, s->queue_name) : NULL;
    if (!w) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->v = xrealloc(r->v, r->cap * sizeof *r->v);
        }
        w = &r->v[r->n++];
        memset(w, 0, sizeof *w);
        w->channel = xstrdup(s->channel);
        w->queue = xstrdup(s->queue_name ? s->queue_name : "");
        w->durable = xstrdup(s->durable_name ? s->durable_name : "");
        w->client_id = xstrdup(s->queue_name ? "" : s->client_id);
        const char *dot = strrchr(s->ack_inbox, '.');
        w->sub = xstrdup(s->queue_name ? "" : (dot ? dot + 1 : s->ack_inbox));
        if (s->queue_name) {
            size_t n;
            char *key = group_key(s->channel, s->queue_name, &n);
            strmap_put(&r->groups, key, n, (void *)(uintptr_t)r->n);
            free(key);
        }
        w->backlog_msgs = s->backlog_msgs; /* a group's backlog is shared: taken once */
        w->backlog_bytes = s->backlog_bytes;
        w->stalled = 1;
    }
    w->inflight_msgs += s->inflight_msgs;
    w->inflight_bytes += s->inflight_bytes;
    w->pending_msgs = w->backlog_msgs + w->inflight_msgs;
    w->pending_bytes = w->backlog_bytes + w->inflight_bytes;
    w->redelivered += s->redelivered_total;
    if (s->oldest_pending_age > w->oldest_age) w->oldest_age = s->oldest_pending_age;
    w->stalled = w->stalled && s->is_stalled;
    w->members++;
    if (!s->is_offline) w->online++;
    w->offline = w->online == 0;
    return 0;
}

static void build_labels(row_t *w)
{
    buf_t *b = &w->labels;
    buf_init(b);
    buf_append_str(b, "{channel=\"");
    esc(b, w->channel);
    buf_append_str(b, "\",queue=\"");
    esc(b, w->queue);
    buf_append_str(b, "\",durable=\"");
    esc(b, w->durable);
    buf_append_str(b, "\",client_id=\"");
    esc(b, w->client_id);
    buf_append_str(b, "\",sub=\"");
    esc(b, w->sub);
    buf_append_str(b, "\"} ");
}

/* name{labels} value\n, without printf: a big scrape prints tens of thousands of these. */
static void line_u(buf_t *b, const char *name, size_t nlen, const row_t *w, uint64_t v)
{
    buf_append(b, name, nlen);
    buf_append(b, w->labels.data, w->labels.len);
    buf_append_u64(b, v);
    buf_append(b, "\n", 1);
}

typedef struct sub_metric {
    const char *name, *type, *help;
    size_t off; /* of a uint64_t in row_t, or SIZE_MAX for the age */
} sub_metric_t;

#define U(field) offsetof(row_t, field)

static const sub_metric_t sub_metrics[] = {
    {"stanza_subscription_pending_messages", "gauge",
     "Messages the subscription (or queue group) still has to ack: backlog plus in flight.",
     U(pending_msgs)},
    {"stanza_subscription_pending_bytes", "gauge", "Payload bytes of the pending messages.",
     U(pending_bytes)},
    {"stanza_subscription_inflight_messages", "gauge", "Delivered and not acked yet.",
     U(inflight_msgs)},
    {"stanza_subscription_inflight_bytes", "gauge", "Payload bytes delivered and not acked.",
     U(inflight_bytes)},
    {"stanza_subscription_backlog_messages", "gauge", "Stored messages not delivered yet.",
     U(backlog_msgs)},
    {"stanza_subscription_backlog_bytes", "gauge", "Payload bytes not delivered yet.",
     U(backlog_bytes)},
    {"stanza_subscription_redelivered_total", "counter", "Redeliveries sent.", U(redelivered)},
    {"stanza_subscription_oldest_pending_age_seconds", "gauge",
     "Seconds since the oldest unacked or undelivered message was stored.", SIZE_MAX},
};

static void print_subs(monitor_t *m, buf_t *b)
{
    rows_t r = {0};
    strmap_init(&r.groups);
    stan_foreach_sub(m->st, NULL, NULL, gather, &r);
    size_t per_row = 0;
    for (size_t i = 0; i < r.n; i++) {
        build_labels(&r.v[i]);
        per_row += r.v[i].labels.len;
    }
    /* One reservation for the whole block: ten series per row, names up to ~50 bytes. */
    buf_reserve(b, (per_row + 80 * r.n) * 10 + 4096);
    for (size_t k = 0; k < sizeof sub_metrics / sizeof sub_metrics[0]; k++) {
        const sub_metric_t *sm = &sub_metrics[k];
        size_t nlen = strlen(sm->name);
        family(b, sm->name, sm->type, sm->help);
        for (size_t i = 0; i < r.n; i++) {
            if (sm->off == SIZE_MAX) {
                /* Seconds with millisecond precision, as integer arithmetic. Clamped first: the
                 * conversion is undefined for a value out of range (negative, NaN, huge). */
                double age = r.v[i].oldest_age;
                uint64_t ms = age > 0 && age < 1e15 ? (uint64_t)(age * 1000.0) : 0;
                buf_append(b, sm->name, nlen);
                buf_append(b, r.v[i].labels.data, r.v[i].labels.len);
                buf_append_u64(b, ms / 1000);
                char frac[5] = {'.', (char)('0' + ms % 1000 / 100), (char)('0' + ms % 100 / 10),
                                (char)('0' + ms % 10), '\n'};
                buf_append(b, frac, sizeof frac);
            } else {
                line_u(b, sm->name, nlen, &r.v[i], *(uint64_t *)((char *)&r.v[i] + sm->off));
            }
        }
    }
    family(b, "stanza_subscription_stalled", "gauge",
           "1 when the subscription (every member of a group) has MaxInflight unacked.");
    for (size_t i = 0; i < r.n; i++)
        line_u(b, "stanza_subscription_stalled", 27, &r.v[i], (uint64_t)r.v[i].stalled);
    family(b, "stanza_subscription_offline", "gauge",
           "1 for a durable (or durable group) with no client connected.");
    for (size_t i = 0; i < r.n; i++)
        line_u(b, "stanza_subscription_offline", 27, &r.v[i], (uint64_t)r.v[i].offline);
    for (size_t i = 0; i < r.n; i++) {
        free(r.v[i].channel);
        free(r.v[i].queue);
        free(r.v[i].durable);
        free(r.v[i].client_id);
        free(r.v[i].sub);
        buf_free(&r.v[i].labels);
    }
    free(r.v);
    strmap_free(&r.groups);
}

/* ---- channels ---- */

typedef struct chan_field {
    const char *name, *help;
    size_t off;
} chan_field_t;

static const chan_field_t chan_fields[] = {
    {"stanza_channel_messages", "Messages stored in the channel.",
     offsetof(stan_channel_info_t, msgs)},
    {"stanza_channel_bytes", "Payload bytes stored in the channel.",
     offsetof(stan_channel_info_t, bytes)},
    {"stanza_channel_first_sequence", "Sequence of the oldest stored message.",
     offsetof(stan_channel_info_t, first_seq)},
    {"stanza_channel_last_sequence", "Sequence of the newest stored message.",
     offsetof(stan_channel_info_t, last_seq)},
};

typedef struct chan_ctx {
    buf_t *b;
    const chan_field_t *f;
} chan_ctx_t;

static int print_channel(void *arg, const stan_channel_info_t *c)
{
    chan_ctx_t *x = arg;
    buf_printf(x->b, "%s{channel=\"", x->f ? x->f->name : "stanza_channel_subscriptions");
    esc(x->b, c->name);
    if (x->f)
        buf_printf(x->b, "\"} %" PRIu64 "\n", *(const uint64_t *)((const char *)c + x->f->off));
    else
        buf_printf(x->b, "\"} %zu\n", c->subs);
    return 0;
}

static void print_channels(monitor_t *m, buf_t *b)
{
    for (size_t k = 0; k < sizeof chan_fields / sizeof chan_fields[0]; k++) {
        family(b, chan_fields[k].name, "gauge", chan_fields[k].help);
        chan_ctx_t x = {b, &chan_fields[k]};
        stan_foreach_channel(m->st, print_channel, &x);
    }
    family(b, "stanza_channel_subscriptions", "gauge", "Subscriptions on the channel.");
    chan_ctx_t x = {b, NULL};
    stan_foreach_channel(m->st, print_channel, &x);
}

/* ---- server and store ---- */

static void print_server(monitor_t *m, buf_t *b)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    server_stats_t ns;
    server_get_stats(m->srv, &ns);
    stan_store_info_t sti;
    stan_get_store_info(m->st, &sti);

    family(b, "stanza_info", "gauge", "Constant 1, labelled with the server's identity.");
    buf_printf(b, "stanza_info{version=\"%s\",cluster_id=\"", STANZA_VERSION);
    esc(b, si.cluster_id);
    buf_printf(b, "\",server_id=\"%s\",store=\"%s\"} 1\n", si.server_id, sti.type);
    family(b, "stanza_start_time_seconds", "gauge", "Start time of the process (Unix time).");
    buf_printf(b, "stanza_start_time_seconds %.3f\n", (double)si.start_ns / 1e9);
    family(b, "stanza_clients", "gauge", "Streaming clients registered.");
    sample_u(b, "stanza_clients", si.clients);
    family(b, "stanza_subscriptions", "gauge", "Subscriptions, offline durables included.");
    sample_u(b, "stanza_subscriptions", si.subscriptions);
    family(b, "stanza_channels", "gauge", "Channels.");
    sample_u(b, "stanza_channels", si.channels);
    family(b, "stanza_connections", "gauge", "NATS connections open.");
    sample_u(b, "stanza_connections", ns.conns);
    family(b, "stanza_messages_in_total", "counter", "NATS messages received (all subjects).");
    sample_u(b, "stanza_messages_in_total", ns.in_msgs);
    family(b, "stanza_messages_out_total", "counter", "NATS messages delivered (all subjects).");
    sample_u(b, "stanza_messages_out_total", ns.out_msgs);
    family(b, "stanza_bytes_in_total", "counter", "Payload bytes received.");
    sample_u(b, "stanza_bytes_in_total", ns.in_bytes);
    family(b, "stanza_bytes_out_total", "counter", "Payload bytes delivered.");
    sample_u(b, "stanza_bytes_out_total", ns.out_bytes);
    family(b, "stanza_http_connections", "gauge", "Monitoring HTTP connections open.");
    sample_u(b, "stanza_http_connections", httpd_conns(m->httpd));
    family(b, "stanza_http_evictions_total", "counter",
           "Monitoring HTTP connections closed to make room: a full connection table, or "
           "unsent output of all connections over its bound.");
    sample_u(b, "stanza_http_evictions_total", httpd_evicted(m->httpd));
    family(b, "stanza_slow_consumers_total", "counter", "Clients closed as slow consumers.");
    sample_u(b, "stanza_slow_consumers_total", ns.slow_consumers);
    family(b, "stanza_redeliveries_total", "counter", "Messages redelivered (AckWait expired).");
    sample_u(b, "stanza_redeliveries_total", sti.redeliveries_total);
    family(b, "stanza_stored_messages", "gauge", "Messages stored, all channels.");
    sample_u(b, "stanza_stored_messages", si.total_msgs);
    family(b, "stanza_stored_bytes", "gauge", "Payload bytes stored, all channels.");
    sample_u(b, "stanza_stored_bytes", si.total_bytes);
    family(b, "stanza_store_bytes", "gauge", "Bytes of the store's data file in use.");
    sample_u(b, "stanza_store_bytes", sti.stats.used_bytes);
    family(b, "stanza_store_map_bytes", "gauge", "Bytes reserved for the store's memory map.");
    sample_u(b, "stanza_store_map_bytes", sti.stats.map_size);
    family(b, "stanza_store_writable", "gauge", "1 when the last commit succeeded.");
    sample_u(b, "stanza_store_writable", sti.writable ? 1 : 0);

    family(b, "stanza_store_commit_duration_seconds", "histogram",
           "Time of each group commit: one LMDB write transaction with its fsync.");
    uint64_t cum = 0;
    for (int i = 0; i < STORE_HIST_BUCKETS; i++) {
        cum += sti.stats.commit_hist[i];
        buf_printf(b, "stanza_store_commit_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                   (double)store_hist_bounds_us[i] / 1e6, cum);
    }
    cum += sti.stats.commit_hist[STORE_HIST_BUCKETS];
    buf_printf(b, "stanza_store_commit_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    buf_printf(b, "stanza_store_commit_duration_seconds_sum %.6f\n",
               (double)sti.stats.commit_ns_total / 1e9);
    buf_printf(b, "stanza_store_commit_duration_seconds_count %" PRIu64 "\n", cum);
}

void monitor_metrics(monitor_t *m, buf_t *out)
{
    print_server(m, out);
    print_channels(m, out);
    print_subs(m, out);
}

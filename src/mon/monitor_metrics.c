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

/* A duration histogram from counts per store_hist_bounds_us bucket (+ the last, slower). */
static void histogram(buf_t *b, const char *name, const char *help,
                      const uint64_t hist[STORE_HIST_BUCKETS + 1], uint64_t ns_total)
{
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < STORE_HIST_BUCKETS; i++) {
        cum += hist[i];
        buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                   (double)store_hist_bounds_us[i] / 1e6, cum);
    }
    cum += hist[STORE_HIST_BUCKETS];
    buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
    buf_printf(b, "%s_sum %.6f\n", name, (double)ns_total / 1e9);
    buf_printf(b, "%s_count %" PRIu64 "\n", name, cum);
}

/* ---- subscriptions: the engine's pending rows, gathered first so that each family is printed
 * in one block ---- */

typedef struct row {
    buf_t labels; /* the escaped label set, built once per row */
    uint64_t pending_msgs, pending_bytes, inflight_msgs, inflight_bytes, backlog_msgs,
        backlog_bytes, redelivered, stalled, offline, dead, paused;
    double oldest_age;
} row_t;

typedef struct rows {
    row_t *v;
    size_t n, cap, label_bytes;
} rows_t;

static void label(buf_t *b, const char *sep_name, const char *value)
{
    buf_append_str(b, sep_name);
    esc(b, value);
}

static int gather(void *arg, const stan_pending_row_t *p)
{
    rows_t *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = xrealloc(r->v, r->cap * sizeof *r->v);
    }
    row_t *w = &r->v[r->n++];
    /* A group's series have client_id="" and sub="": they are the whole group's. */
    const char *dot = p->ack_inbox ? strrchr(p->ack_inbox, '.') : NULL;
    buf_init(&w->labels);
    label(&w->labels, "{channel=\"", p->channel);
    label(&w->labels, "\",queue=\"", p->queue_name);
    label(&w->labels, "\",durable=\"", p->durable_name);
    label(&w->labels, "\",client_id=\"", p->client_id);
    label(&w->labels, "\",sub=\"", dot ? dot + 1 : p->ack_inbox);
    buf_append_str(&w->labels, "\"} ");
    r->label_bytes += w->labels.len;
    w->pending_msgs = p->pending_msgs;
    w->pending_bytes = p->pending_bytes;
    w->inflight_msgs = p->inflight_msgs;
    w->inflight_bytes = p->inflight_bytes;
    w->backlog_msgs = p->backlog_msgs;
    w->backlog_bytes = p->backlog_bytes;
    w->redelivered = p->redelivered_total;
    w->dead = p->dead_total;
    w->oldest_age = p->oldest_pending_age;
    w->stalled = p->is_stalled;
    w->offline = p->is_offline;
    w->paused = p->is_paused;
    return 0;
}

/* name{labels} value\n, without printf: a big scrape prints tens of thousands of these. */
static void line_u(buf_t *b, const char *name, size_t nlen, const row_t *w, uint64_t v)
{
    buf_append(b, name, nlen);
    buf_append(b, w->labels.data, w->labels.len);
    buf_append_u64(b, v);
    buf_append(b, "\n", 1);
}

/* The same with seconds to the millisecond, in integer arithmetic. Clamped first: the
 * conversion is undefined for a value out of range (negative, NaN, huge). */
static void line_secs(buf_t *b, const char *name, size_t nlen, const row_t *w, double secs)
{
    uint64_t ms = secs > 0 && secs < 1e15 ? (uint64_t)(secs * 1000.0) : 0;
    buf_append(b, name, nlen);
    buf_append(b, w->labels.data, w->labels.len);
    buf_append_u64(b, ms / 1000);
    char frac[5] = {'.', (char)('0' + ms % 1000 / 100), (char)('0' + ms % 100 / 10),
                    (char)('0' + ms % 10), '\n'};
    buf_append(b, frac, sizeof frac);
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
    {"stanza_subscription_dead_total", "counter",
     "Messages sent to the dead-letter channel after max_deliveries deliveries.", U(dead)},
    {"stanza_subscription_oldest_pending_age_seconds", "gauge",
     "Seconds since the oldest unacked or undelivered message was stored.", SIZE_MAX},
    {"stanza_subscription_stalled", "gauge",
     "1 when the subscription (every member of a group) has MaxInflight unacked.", U(stalled)},
    {"stanza_subscription_offline", "gauge",
     "1 for a durable (or durable group) with no client connected.", U(offline)},
    {"stanza_subscription_paused", "gauge",
     "1 while an operator holds its deliveries (stanza pause; a group: every member).", U(paused)},
};

static void print_subs(monitor_t *m, buf_t *b)
{
    rows_t r = {0};
    stan_foreach_pending_row(m->st, NULL, gather, &r);
    /* One reservation for the whole block: a series per metric per row, names up to ~50 bytes. */
    buf_reserve(b,
                (r.label_bytes + 80 * r.n) * (sizeof sub_metrics / sizeof sub_metrics[0]) + 4096);
    for (size_t k = 0; k < sizeof sub_metrics / sizeof sub_metrics[0]; k++) {
        const sub_metric_t *sm = &sub_metrics[k];
        size_t nlen = strlen(sm->name);
        family(b, sm->name, sm->type, sm->help);
        for (size_t i = 0; i < r.n; i++) {
            if (sm->off == SIZE_MAX)
                line_secs(b, sm->name, nlen, &r.v[i], r.v[i].oldest_age);
            else
                line_u(b, sm->name, nlen, &r.v[i], *(uint64_t *)((char *)&r.v[i] + sm->off));
        }
    }
    for (size_t i = 0; i < r.n; i++)
        buf_free(&r.v[i].labels);
    free(r.v);
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

typedef struct scalar {
    const char *name, *type, *help;
    uint64_t v;
} scalar_t;

static void print_scalars(buf_t *b, const scalar_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        family(b, s[i].name, s[i].type, s[i].help);
        sample_u(b, s[i].name, s[i].v);
    }
}

static void print_counts(monitor_t *m, buf_t *b, const stan_server_info_t *si)
{
    bus_stats_t ns;
    bus_stats(&m->bus, &ns);
    const scalar_t s[] = {
        {"stanza_clients", "gauge", "Streaming clients registered.", si->clients},
        {"stanza_subscriptions", "gauge", "Subscriptions, offline durables included.",
         si->subscriptions},
        {"stanza_channels", "gauge", "Channels.", si->channels},
        {"stanza_connections", "gauge", "NATS connections open.", ns.conns},
        {"stanza_messages_in_total", "counter", "NATS messages received (all subjects).",
         ns.in_msgs},
        {"stanza_messages_out_total", "counter", "NATS messages delivered (all subjects).",
         ns.out_msgs},
        {"stanza_bytes_in_total", "counter", "Payload bytes received.", ns.in_bytes},
        {"stanza_bytes_out_total", "counter", "Payload bytes delivered.", ns.out_bytes},
        {"stanza_http_connections", "gauge", "Monitoring HTTP connections open.",
         httpd_conns(m->httpd)},
        {"stanza_http_evictions_total", "counter",
         "Monitoring HTTP connections closed to make room: a full connection table, or "
         "unsent output of all connections over its bound.",
         httpd_evicted(m->httpd)},
        {"stanza_slow_consumers_total", "counter", "Clients closed as slow consumers.",
         ns.slow_consumers},
    };
    print_scalars(b, s, sizeof s / sizeof *s);
}

static void print_store(buf_t *b, const stan_server_info_t *si, const stan_store_info_t *sti)
{
    const scalar_t s[] = {
        {"stanza_redeliveries_total", "counter", "Messages redelivered (AckWait expired).",
         sti->redeliveries_total},
        {"stanza_dead_letters_total", "counter",
         "Messages dead-lettered (max_deliveries) since the server started.",
         sti->dead_letters_total},
        {"stanza_stored_messages", "gauge", "Messages stored, all channels.", si->total_msgs},
        {"stanza_stored_bytes", "gauge", "Payload bytes stored, all channels.", si->total_bytes},
        {"stanza_store_bytes", "gauge", "Bytes of the store's data file in use.",
         sti->stats.used_bytes},
        {"stanza_store_map_bytes", "gauge", "Bytes reserved for the store's memory map.",
         sti->stats.map_size},
        {"stanza_store_writable", "gauge", "1 when the last commit succeeded.",
         sti->writable ? 1 : 0},
    };
    print_scalars(b, s, sizeof s / sizeof *s);

    histogram(b, "stanza_store_commit_duration_seconds",
              "Time of each group commit: one LMDB write transaction with its fsync.",
              sti->stats.commit_hist, sti->stats.commit_ns_total);
}

/* Clustered mode: this node's Raft state. */
static void print_raft(monitor_t *m, buf_t *b)
{
    repl_status_t rs;
    repl_status(m->repl, &rs);
    const scalar_t s[] = {
        {"stanza_raft_leader", "gauge", "1 while this node leads and serves.", rs.leading},
        {"stanza_raft_term", "gauge", "Raft term.", rs.term},
        {"stanza_raft_commit_index", "gauge", "Last log entry known committed.", rs.commit_index},
        {"stanza_raft_applied_index", "gauge", "Last log entry applied to this node's store.",
         rs.applied_index},
        {"stanza_raft_last_index", "gauge", "Last entry of this node's log.", rs.last_index},
        {"stanza_raft_voters", "gauge", "Voting servers in the configuration.", rs.npeers},
        {"stanza_raft_leader_changes_total", "counter",
         "New leaders this node has seen (itself included).", rs.leader_changes},
        {"stanza_raft_snapshot_index", "gauge",
         "Log entry the last snapshot this node wrote stands for (0: none since it started).",
         rs.snapshot_index},
        {"stanza_raft_log_bytes", "gauge",
         "Bytes of the log entries applied since the last snapshot began (held in memory).",
         rs.log_bytes},
    };
    print_scalars(b, s, sizeof s / sizeof *s);
    histogram(b, "stanza_raft_entry_commit_duration_seconds",
              "From this node proposing an entry (a batch) until it was in this node's store: a "
              "quorum's logs, then the LMDB commit.",
              rs.commit_hist, rs.commit_ns_total);
}

static void print_server(monitor_t *m, buf_t *b)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    stan_store_info_t sti;
    stan_get_store_info(m->st, &sti);

    family(b, "stanza_info", "gauge", "Constant 1, labelled with the server's identity.");
    buf_printf(b, "stanza_info{version=\"%s\",cluster_id=\"", STANZA_VERSION);
    esc(b, si.cluster_id);
    buf_printf(b, "\",server_id=\"%s\",store=\"%s\"} 1\n", si.server_id ? si.server_id : "",
               sti.type);
    family(b, "stanza_start_time_seconds", "gauge", "Start time of the process (Unix time).");
    buf_printf(b, "stanza_start_time_seconds %.3f\n", (double)si.start_ns / 1e9);
    print_counts(m, b, &si);
    print_store(b, &si, &sti);
}

void monitor_metrics(monitor_t *m, buf_t *out)
{
    print_server(m, out);
    if (m->repl) print_raft(m, out);
    print_channels(m, out);
    print_subs(m, out);
}

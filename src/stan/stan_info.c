/* stan_info: read-only snapshots of the engine for the monitoring endpoints. Everything is
 * computed from counters kept as events happen (O(1) per subscription), except the age of the
 * oldest pending message, which looks at most two stored timestamps and the in-flight set. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "sort.h"
#include "stan_channel.h"
#include "stan_client.h"
#include "stan_ctx.h"
#include "stan_keys.h"
#include "stan_sub.h"
#include "xalloc.h"

#define STAN_UNHEALTHY_AFTER_FAILURE_MS 5000

void stan_get_server_info(stan_t *st, stan_server_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->cluster_id = st->cfg->cluster_id;
    out->server_id = st->server_id;
    out->start_ns = st->start_ns;
    out->clients = strmap_count(&st->clients);
    out->channels = strmap_count(&st->channels);
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        out->subscriptions += ch->nsubs;
        out->total_msgs += ch->msgs;
        out->total_bytes += ch->bytes;
    }
}

static void fill_channel(const stan_channel_t *ch, stan_channel_info_t *out)
{
    out->name = ch->name;
    out->msgs = ch->msgs;
    out->bytes = ch->bytes;
    out->first_seq = ch->last_seq ? ch->first_seq : 0;
    out->last_seq = ch->last_seq;
    out->subs = ch->nsubs;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The map's keys in byte order (NSS lists names sorted). Caller frees the array. */
static char **sorted_keys(const strmap_t *m)
{
    char **keys = xmalloc((strmap_count(m) + 1) * sizeof *keys);
    size_t n = 0, it;
    for (strmap_entry_t *e = strmap_first(m, &it); e; e = strmap_next(m, &it, e))
        keys[n++] = e->key;
    sort_array(keys, n, sizeof *keys, cmp_names);
    keys[n] = NULL;
    return keys;
}

void stan_foreach_channel(stan_t *st, stan_channel_fn fn, void *arg)
{
    char **keys = sorted_keys(&st->channels);
    for (char **k = keys; *k; k++) {
        stan_channel_info_t ci;
        fill_channel(strmap_get(&st->channels, *k, strlen(*k)), &ci);
        if (fn(arg, &ci)) break;
    }
    free(keys);
}

int stan_get_channel_info(stan_t *st, const char *name, stan_channel_info_t *out)
{
    stan_channel_t *ch = strmap_get(&st->channels, name, strlen(name));
    if (!ch) return STZ_ENOENT;
    fill_channel(ch, out);
    return 0;
}

/* The stored timestamp of seq (within a read view); 0 if it is gone. */
static int64_t msg_ts(stan_t *st, stan_channel_t *ch, uint64_t seq)
{
    stan_msgval_t m;
    return stan_msg_get(st->store, ch->id, seq, &m) ? m.ts : 0;
}

static void fill_sub(stan_t *st, stan_sub_t *s, int64_t now_ns, stan_sub_info_t *out)
{
    stan_channel_t *ch = s->ch;
    memset(out, 0, sizeof *out);
    out->channel = ch->name;
    out->client_id = s->client_id;
    out->inbox = s->inbox;
    out->ack_inbox = s->ack_inbox;
    out->durable_name = s->durable;
    out->queue_name = s->qg ? s->qg->key : NULL;
    out->is_durable = s->is_durable;
    out->is_offline = s->client == NULL;
    out->max_inflight = s->max_inflight;
    out->ack_wait = s->ack_wait_s;
    out->is_stalled = s->pend.count >= (size_t)s->max_inflight;
    uint64_t sent = s->qg ? s->qg->last_sent : s->last_sent;
    uint64_t sent_cum = s->qg ? s->qg->last_sent_cum : s->last_sent_cum;
    out->last_sent = sent;
    out->inflight_msgs = s->pend.count;
    out->inflight_bytes = s->pend.bytes;
    /* Messages dropped by limits are not owed any more: the backlog starts at first_seq. */
    uint64_t from = sent >= ch->first_seq ? sent : ch->first_seq - 1;
    uint64_t from_cum = sent_cum > ch->base_cum ? sent_cum : ch->base_cum;
    out->backlog_msgs = ch->last_seq > from ? ch->last_seq - from : 0;
    out->backlog_bytes = out->backlog_msgs && ch->cum_last > from_cum ? ch->cum_last - from_cum : 0;
    out->pending_msgs = out->backlog_msgs + out->inflight_msgs;
    out->pending_bytes = out->backlog_bytes + out->inflight_bytes;
    out->redelivered_total = s->redelivered_total;
    out->dead_total = s->dead_total;
    out->is_paused = s->is_paused;
    /* The oldest owed message: the lowest unacked sequence, or the first of the backlog. */
    uint64_t oldest = out->backlog_msgs ? from + 1 : 0;
    stan_pending_t *unacked = stan_pset_oldest(&s->pend);
    if (unacked && (!oldest || unacked->seq < oldest)) oldest = unacked->seq;
    if (oldest && store_read_begin(st->store) == STZ_OK) {
        int64_t ts = msg_ts(st, ch, oldest);
        store_read_end(st->store);
        if (ts && now_ns > ts) out->oldest_pending_age = (double)(now_ns - ts) / 1e9;
    }
}

typedef int (*visit_fn)(void *arg, stan_channel_t *ch);

/* fn for the named channel (STZ_ENOENT if there is none), or for all in name order; stops at fn's
 * non-zero. */
static int visit_channels(stan_t *st, const char *channel, visit_fn fn, void *arg)
{
    if (channel) {
        /* One channel: no need to sort them all. */
        stan_channel_t *ch = strmap_get(&st->channels, channel, strlen(channel));
        if (!ch) return STZ_ENOENT;
        fn(arg, ch);
        return 0;
    }
    char **keys = sorted_keys(&st->channels);
    for (char **k = keys; *k; k++)
        if (fn(arg, strmap_get(&st->channels, *k, strlen(*k)))) break;
    free(keys);
    return 0;
}

typedef struct sub_walk {
    stan_t *st;
    const char *client_id;
    int64_t now;
    stan_sub_fn fn;
    void *arg;
} sub_walk_t;

static int visit_subs(void *arg, stan_channel_t *ch)
{
    sub_walk_t *w = arg;
    list_node_t *n;
    list_foreach (n, &ch->subs) {
        stan_sub_t *s = STAN_SUB_OF(n, ch_link);
        if (s->deleted || (w->client_id && strcmp(w->client_id, s->client_id) != 0)) continue;
        stan_sub_info_t si;
        fill_sub(w->st, s, w->now, &si);
        if (w->fn(w->arg, &si)) return 1;
    }
    return 0;
}

void stan_foreach_sub(stan_t *st, const char *channel, const char *client_id, stan_sub_fn fn,
                      void *arg)
{
    sub_walk_t w = {st, client_id, clock_wall_ns(), fn, arg};
    visit_channels(st, channel, visit_subs, &w);
}

/* ---- pending rows: a subscription, or a queue group folded into one row ---- */

typedef struct row_walk {
    sub_walk_t sw;
    const stan_pending_filter_t *f;
    stan_pending_fn fn;
    const char **ids; /* member_ids of the row being built */
    size_t cap;
} row_walk_t;

static void row_add(row_walk_t *w, stan_pending_row_t *r, const stan_sub_info_t *si)
{
    if (r->members == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->ids = xrealloc(w->ids, w->cap * sizeof *w->ids);
    }
    w->ids[r->members] = si->client_id;
    if (!r->members) {
        r->channel = si->channel;
        r->queue_name = si->queue_name;
        r->backlog_msgs = si->backlog_msgs; /* a group's backlog is shared: taken once */
        r->backlog_bytes = si->backlog_bytes;
        r->is_stalled = true;
        r->is_paused = true; /* a group is paused when every member is */
    }
    if (!r->durable_name) r->durable_name = si->durable_name;
    r->inflight_msgs += si->inflight_msgs;
    r->inflight_bytes += si->inflight_bytes;
    r->redelivered_total += si->redelivered_total;
    r->dead_total += si->dead_total;
    if (si->oldest_pending_age > r->oldest_pending_age)
        r->oldest_pending_age = si->oldest_pending_age;
    r->is_stalled = r->is_stalled && si->is_stalled;
    r->is_paused = r->is_paused && si->is_paused;
    if (!si->is_offline) r->online++;
    r->members++;
}

static bool row_wanted(const stan_pending_filter_t *f, const stan_pending_row_t *r)
{
    if (f->queue && !(r->queue_name && (strcmp(r->queue_name, f->queue) == 0 ||
                                        strcmp(r->queue_group, f->queue) == 0)))
        return false;
    if (f->durable && !(r->durable_name && strcmp(r->durable_name, f->durable) == 0)) return false;
    if (!f->client_id) return true;
    for (size_t i = 0; i < r->members; i++)
        if (strcmp(r->member_ids[i], f->client_id) == 0) return true;
    return false;
}

/* s's row: s alone, or its whole group where s heads the members (so each group once). */
static int visit_row(row_walk_t *w, stan_sub_t *s)
{
    if (s->qg && list_first(&s->qg->members) != &s->qg_link) return 0;
    stan_pending_row_t r;
    memset(&r, 0, sizeof r);
    for (stan_sub_t *m = s; m; m = s->qg ? stan_sub_next_member(m) : NULL) {
        stan_sub_info_t si;
        fill_sub(w->sw.st, m, w->sw.now, &si);
        row_add(w, &r, &si);
    }
    r.queue_group = s->qg ? s->qgroup : NULL;
    r.client_id = s->qg ? NULL : s->client_id;
    r.ack_inbox = s->qg ? NULL : s->ack_inbox;
    r.member_ids = w->ids;
    r.pending_msgs = r.backlog_msgs + r.inflight_msgs;
    r.pending_bytes = r.backlog_bytes + r.inflight_bytes;
    r.is_offline = r.online == 0;
    return row_wanted(w->f, &r) ? w->fn(w->sw.arg, &r) : 0;
}

static int visit_rows(void *arg, stan_channel_t *ch)
{
    list_node_t *n;
    list_foreach (n, &ch->subs) {
        stan_sub_t *s = STAN_SUB_OF(n, ch_link);
        if (!s->deleted && visit_row(arg, s)) return 1;
    }
    return 0;
}

int stan_foreach_pending_row(stan_t *st, const stan_pending_filter_t *f, stan_pending_fn fn,
                             void *arg)
{
    static const stan_pending_filter_t any = {0};
    row_walk_t w = {.sw = {st, NULL, clock_wall_ns(), NULL, arg}, .f = f ? f : &any, .fn = fn};
    int rc = visit_channels(st, w.f->channel, visit_rows, &w);
    free(w.ids);
    return rc;
}

static void fill_client(const stan_client_t *cl, stan_client_info_t *out)
{
    out->id = cl->id;
    out->hb_inbox = cl->hb_inbox;
    out->subs = 0;
    const list_node_t *n;
    list_foreach (n, &cl->subs)
        out->subs++;
}

void stan_foreach_client(stan_t *st, stan_client_fn fn, void *arg)
{
    char **keys = sorted_keys(&st->clients);
    for (char **k = keys; *k; k++) {
        stan_client_info_t ci;
        fill_client(strmap_get(&st->clients, *k, strlen(*k)), &ci);
        if (fn(arg, &ci)) break;
    }
    free(keys);
}

int stan_get_client_info(stan_t *st, const char *id, stan_client_info_t *out)
{
    stan_client_t *cl = strmap_get(&st->clients, id, strlen(id));
    if (!cl) return STZ_ENOENT;
    fill_client(cl, out);
    return 0;
}

/* What /healthz says of a failed commit: an I/O error here is the store's, so say so. */
static const char *store_error_text(int status)
{
    return status == STZ_EIO ? "storage I/O error" : stz_strerror(status);
}

void stan_get_store_info(stan_t *st, stan_store_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = st->cfg->store == CONFIG_STORE_MEMORY ? "MEMORY" : "FILE";
    /* A full disk can fail big batches while small ones still fit: any failure in the last few
     * seconds counts, so probes do not flap between the two. */
    bool recent = st->last_failure_ms &&
                  clock_mono_ms() - st->last_failure_ms < STAN_UNHEALTHY_AFTER_FAILURE_MS;
    out->writable = st->last_commit_status == STZ_OK && !recent;
    out->error = out->writable
                     ? NULL
                     : store_error_text(st->last_commit_status != STZ_OK ? st->last_commit_status
                                                                         : st->last_failure);
    out->redeliveries_total = st->redeliveries_total;
    out->dead_letters_total = st->dead_letters_total;
    store_get_stats(st->store, &out->stats);
}

/* stan: the engine's lifecycle, its request subjects, recovery from the store, and the group
 * commit (one LMDB transaction per loop iteration, run on the thread pool). */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "nuid.h"
#include "protocol.pb-c.h"
#include "stan_alone.h"
#include "stan_channel.h"
#include "stan_client.h"
#include "stan_commit.h"
#include "stan_ctx.h"
#include "stan_dead.h"
#include "stan_deliver.h"
#include "stan_handover.h"
#include "stan_keys.h"
#include "stan_pub.h"
#include "stan_sub.h"
#include "stan_subscribe.h"
#include "store.pb-c.h"
#include "xalloc.h"

#define STORE_LAYOUT_VERSION 1

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = xmalloc(la + lb + 2);
    memcpy(s, a, la);
    s[la] = '.';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static void make_server_id(stan_t *st)
{
    char id[NUID_LEN + 1];
    nuid_next(id);
    st->server_id = xstrdup(id);
}

static void meta_put(stan_t *st)
{
    Spb__ServerRecord r = SPB__SERVER_RECORD__INIT;
    r.version = STORE_LAYOUT_VERSION;
    r.cluster_id = st->cfg->cluster_id;
    r.server_id = st->server_id;
    r.discover_prefix = st->discover;
    r.pub_prefix = st->pub_prefix;
    r.sub_requests = st->sub_subj;
    r.unsub_requests = st->unsub_subj;
    r.close_requests = st->close_subj;
    r.sub_close_requests = st->subclose_subj;
    r.ping_requests = st->pings;
    r.next_channel_id = st->next_channel_id;
    r.next_sub_id = st->next_sub_id;
    size_t n = spb__server_record__get_packed_size(&r);
    void *p = store_put_reserve(st->store, STORE_DB_META, "server", 6, n);
    spb__server_record__pack(&r, p);
    st->meta_dirty = false;
}

/* ---- the group commit ------------------------------------------------------------------ */

/* Every batch's outcome, before its completions: the engine's health, and the publishes. */
static void on_batch_done(void *arg, int status)
{
    stan_t *st = arg;
    st->last_commit_status = status;
    if (status != STZ_OK) {
        st->last_failure = status;
        st->last_failure_ms = clock_mono_ms();
        /* Nothing of the batch is on disk: the server record and every subscription's record
         * and unacked rows that may have been in it are written again with the next one. */
        st->meta_dirty = true;
        stan_sub_store_failed(st);
    }
    /* Publishes first: channel state moves forward (or back) before anyone reads it. */
    stan_pub_batch_done(st, status);
}

/* After every batch's completions: a shutdown waiting for the last commit ends. */
static void after_batch(void *arg, int status)
{
    (void)status;
    stan_t *st = arg;
    if (st->shutting_down && !store_in_flight(st->store) && st->shutdown_done) {
        void (*done)(void *) = st->shutdown_done;
        st->shutdown_done = NULL;
        done(st->shutdown_arg);
    }
}

/* Builds the batch (staged messages, dirty subscriptions, the server record) and submits it,
 * unless one is in flight: what arrives meanwhile goes in the next. */
static void submit(stan_t *st)
{
    if (store_in_flight(st->store)) return;
    if (!list_empty(&st->staged)) st->busy_since_trim = st->busy_this_tick = true;
    stan_pub_stage_batch(st);
    stan_sub_write_dirty(st);
    if (st->meta_dirty) meta_put(st);
    stan_commit_submit(&st->commit);
}

/* The server's per-iteration hook: deliver what became deliverable, then commit. */
static void on_flush(void *arg)
{
    stan_t *st = arg;
    stan_deliver_ready(st);
    submit(st);
}

/* ---- request subjects ------------------------------------------------------------------- */

void stan_set_stop_flag(stan_t *st, volatile sig_atomic_t *flag)
{
    st->stop_flag = flag;
}

/* After SIGINT/SIGTERM nothing new is taken on. */
static bool stopping(const stan_t *st)
{
    return st->shutting_down || (st->stop_flag && *st->stop_flag);
}

static void on_discover(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_client_on_connect(arg, m);
}
static void on_pings(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_client_on_ping(arg, m);
}
static void on_close(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_client_on_close(arg, m);
}
static void on_pub(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_pub_on_msg(arg, m);
}
static void on_sub(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_subscribe_on_request(arg, m);
}
static void on_unsub(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_subscribe_on_unsubscribe(arg, m, false);
}
static void on_subclose(void *arg, const bus_msg_t *m)
{
    if (!stopping(arg)) stan_subscribe_on_unsubscribe(arg, m, true);
}
static void on_inbox(void *arg, const bus_msg_t *m)
{
    stan_client_on_inbox_reply(arg, m);
}
static void on_ack(void *arg, const bus_msg_t *m)
{
    stan_deliver_on_ack(arg, m);
}

static void on_tick_closed(uv_handle_t *h)
{
    free(h->data);
}

/* What the once-a-second tick runs. */
static void run_tick(stan_t *st)
{
    stan_channel_tick(st);
    stan_deliver_tick(st);
}

void stan_run_due(stan_t *st)
{
    run_tick(st);
    /* Heartbeats have timers of their own: the tick does not walk the clients. */
    stan_client_run_due(st);
    stan_handover_run_due(st);
}

static void on_tick(uv_timer_t *t)
{
    stan_t *st = t->data;
    run_tick(st);
    /* After a burst, hand the freed heap back to the system once things are quiet, so the
     * resident size reflects what is in use, not the peak. Quiet means a whole tick without a
     * publish: between two batches of a steady stream, a trim would hand back the memory the
     * next batches take again, each page faulting in afresh. */
    bool quiet = !st->busy_this_tick && list_empty(&st->staged) && !store_in_flight(st->store);
    st->busy_this_tick = false;
    if (st->busy_since_trim && quiet) {
        malloc_trim(0);
        st->busy_since_trim = false;
    }
}

static int subscribe_all(stan_t *st, char *err, size_t errlen)
{
    char *pub_wc = join(st->pub_prefix, ">");
    char *inbox_wc = xmalloc(strlen(st->inbox_prefix) + 2);
    sprintf(inbox_wc, "%s>", st->inbox_prefix);
    char *ack_wc = xmalloc(strlen(st->ack_prefix) + 2);
    sprintf(ack_wc, "%s>", st->ack_prefix);
    /* In the order a client's requests that arrive together must be handled (bus.h): its
     * publishes and acks before its subscription changes, those before its close, a close
     * before a new connect. Replies to the engine's own requests need no order. */
    struct {
        const char *subj;
        bus_msg_fn fn;
        unsigned flags;
    } t[] = {{pub_wc, on_pub, 0},
             {ack_wc, on_ack, 0},
             {st->sub_subj, on_sub, 0},
             {st->unsub_subj, on_unsub, 0},
             {st->subclose_subj, on_subclose, 0},
             {st->close_subj, on_close, 0},
             {st->discover, on_discover, 0},
             {st->pings, on_pings, 0},
             {inbox_wc, on_inbox, BUS_SUB_REPLIES}};
    int rc = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bus_sub_t *s = bus_subscribe(&st->bus, t[i].subj, NULL, t[i].flags, t[i].fn, st);
        if (!s) {
            snprintf(err, errlen, "invalid streaming subject \"%s\"", t[i].subj);
            rc = STZ_EINVAL;
            break;
        }
        st->isubs[st->nisubs++] = s;
    }
    free(pub_wc);
    free(inbox_wc);
    free(ack_wc);
    return rc;
}

/* ---- start-up ---------------------------------------------------------------------------- */

/* As a standalone NSS: the request subjects end in one random part (clients learn them from the
 * ConnectResponse), kept in the server record so that they survive restarts. */
static void set_default_subjects(stan_t *st)
{
    const char *cid = st->cfg->cluster_id;
    st->discover =
        join(st->cfg->discover_prefix ? st->cfg->discover_prefix : "_STAN.discover", cid);
    st->pings = join(st->discover, "pings");
    char rnd[NUID_LEN + 1];
    nuid_next(rnd);
    st->pub_prefix = join("_STAN.pub", rnd);
    st->sub_subj = join("_STAN.sub", rnd);
    st->unsub_subj = join("_STAN.unsub", rnd);
    st->close_subj = join("_STAN.close", rnd);
    st->subclose_subj = join("_STAN.subclose", rnd);
}

static int load_meta(stan_t *st, char *err, size_t errlen)
{
    store_val_t v;
    int rc = store_get(st->store, STORE_DB_META, "server", 6, &v);
    if (rc == STZ_ENOENT) {
        make_server_id(st);
        set_default_subjects(st);
        st->next_channel_id = 1;
        st->next_sub_id = 1;
        st->meta_dirty = true;
        return 0;
    }
    Spb__ServerRecord *r = spb__server_record__unpack(NULL, v.len, v.p);
    if (!r) {
        snprintf(err, errlen, "store: the server record is damaged");
        return STZ_EIO;
    }
    if (strcmp(r->cluster_id, st->cfg->cluster_id) != 0) {
        snprintf(err, errlen, "cluster ID \"%s\" does not match recovered value of \"%s\"",
                 st->cfg->cluster_id, r->cluster_id);
        spb__server_record__free_unpacked(r, NULL);
        return STZ_ECONFIG;
    }
    st->server_id = xstrdup(r->server_id);
    st->discover = xstrdup(r->discover_prefix);
    st->pub_prefix = xstrdup(r->pub_prefix);
    st->sub_subj = xstrdup(r->sub_requests);
    st->unsub_subj = xstrdup(r->unsub_requests);
    st->close_subj = xstrdup(r->close_requests);
    st->subclose_subj = xstrdup(r->sub_close_requests);
    st->pings = xstrdup(r->ping_requests);
    st->next_channel_id = r->next_channel_id ? r->next_channel_id : 1;
    st->next_sub_id = r->next_sub_id ? r->next_sub_id : 1;
    spb__server_record__free_unpacked(r, NULL);
    return 0;
}

typedef int (*restore_fn)(stan_t *st, const store_val_t *k, const store_val_t *v);

static int walk(stan_t *st, store_db_t db, restore_fn fn)
{
    store_cursor_t *c = store_cursor_open(st->store, db);
    if (!c) return STZ_EIO;
    store_val_t k, v;
    int rc = store_cursor_seek(c, NULL, 0, &k, &v);
    int n = 0;
    while (rc == STZ_OK) {
        if (fn(st, &k, &v) == 0) n++;
        rc = store_cursor_next(c, &k, &v);
    }
    store_cursor_close(c);
    return n;
}

static int restore_client(stan_t *st, const store_val_t *k, const store_val_t *v)
{
    (void)k;
    return stan_client_restore(st, v->p, v->len) ? 0 : STZ_EIO;
}
static int restore_channel(stan_t *st, const store_val_t *k, const store_val_t *v)
{
    (void)k;
    return stan_channel_restore(st, v->p, v->len);
}
static int restore_sub(stan_t *st, const store_val_t *k, const store_val_t *v)
{
    (void)k;
    return stan_subscribe_restore(st, v->p, v->len);
}
static int restore_pending(stan_t *st, const store_val_t *k, const store_val_t *v)
{
    if (k->len != 16 || v->len < 4) return STZ_EIO;
    const uint8_t *kp = k->p;
    return stan_sub_restore_pending(st, stan_get_u64(kp), stan_get_u64(kp + 8), stan_get_u32(v->p));
}

static int recover(stan_t *st, char *err, size_t errlen)
{
    if (store_read_begin(st->store) != STZ_OK) {
        snprintf(err, errlen, "store: cannot begin a read");
        return STZ_EIO;
    }
    int rc = load_meta(st, err, errlen);
    if (rc == 0) {
        /* Replies to the server's own requests never outlive the process: a new random prefix
         * each start. Ack inboxes are persisted with their subscriptions: the server's. */
        st->inbox_prefix = nuid_subject("_INBOX.", "", ""); /* "_INBOX.<random>." */
        char *ack = join("_STAN.ack", st->server_id);
        st->ack_prefix = join(ack, ""); /* with the trailing dot */
        free(ack);
        int nc = walk(st, STORE_DB_CLIENTS, restore_client);
        int nch = walk(st, STORE_DB_CHANNELS, restore_channel);
        int ns = walk(st, STORE_DB_SUBS, restore_sub);
        int np = walk(st, STORE_DB_PENDING, restore_pending);
        stan_dead_restore(st);
        if ((nc || nch || ns) && !st->view)
            LOG_I("Recovered %d clients, %d channels, %d subscriptions, %d unacked messages", nc,
                  nch, ns, np);
    }
    store_read_end(st->store);
    return rc;
}

stan_t *stan_new(uv_loop_t *loop, const bus_t *bus, const config_t *cfg)
{
    stan_t *st = xcalloc(1, sizeof *st);
    st->loop = loop;
    st->bus = *bus;
    st->cfg = cfg;
    st->start_ns = clock_wall_ns();
    list_init(&st->dupchecks);
    list_init(&st->staged);
    list_init(&st->batch_msgs);
    list_init(&st->ready);
    list_init(&st->grace);
    strmap_init(&st->clients);
    strmap_init(&st->clients_by_conn);
    strmap_init(&st->channels);
    strmap_init(&st->subs_by_ack);
    strmap_init(&st->subs_by_id);
    buf_init(&st->scratch);
    return st;
}

static void on_startup_commit(void *arg, int status)
{
    int *out = arg;
    *out = status;
}

/* Serving: the request subjects, the tick, the bus hooks. */
static int serve(stan_t *st, char *err, size_t errlen)
{
    const config_t *cfg = st->cfg;
    int rc = subscribe_all(st, err, errlen);
    if (rc < 0) return rc;
    uv_timer_init(st->loop, &st->tick);
    st->tick.data = st;
    uv_timer_start(&st->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&st->tick);
    st->tick_started = true;
    bus_set_flush_hook(&st->bus, on_flush, st);
    bus_set_sub_gone_hook(&st->bus, stan_handover_on_sub_gone, st);
    LOG_I("Streaming cluster ID: %s, server ID: %s, store: %s%s", cfg->cluster_id, st->server_id,
          cfg->store == CONFIG_STORE_MEMORY ? "MEMORY" : "LMDB in ",
          cfg->store == CONFIG_STORE_MEMORY ? "" : cfg->dir);
    return 0;
}

/* Clustered: the server record of a new cluster went through the log; serving starts now. */
static void on_clustered_record(void *arg, int status)
{
    stan_t *st = arg;
    char err[256] = "";
    if (status == STZ_OK && serve(st, err, sizeof err) == 0) return;
    /* The node lost the lead meanwhile (repl then drops this engine), or cannot subscribe. */
    LOG_E("streaming: cannot start serving: %s", status ? stz_strerror(status) : err);
}

void stan_use_store(stan_t *st, store_t *store)
{
    st->store = store;
    st->store_borrowed = true;
}

int stan_start(stan_t *st, char *err, size_t errlen)
{
    const config_t *cfg = st->cfg;
    store_options_t opt = {.dir = cfg->store == CONFIG_STORE_MEMORY ? NULL : cfg->dir,
                           .sync = cfg->file_sync,
                           .lock_wait_ms = 5000};
    int rc = st->store ? 0 : store_open(&st->store, st->loop, &opt, err, errlen);
    if (rc < 0) return rc;
    stan_commit_init(&st->commit, st->store, on_batch_done, after_batch, st);
    rc = recover(st, err, errlen);
    if (rc < 0) return rc;
    if (st->meta_dirty && cfg->clustered) {
        /* Inside a loop callback (the node just took the lead): no nested run; serving starts
         * once the record is committed, so clients never get subjects the cluster may lose. */
        meta_put(st);
        rc = store_submit(st->store, on_clustered_record, st);
        if (rc < 0) snprintf(err, errlen, "store: cannot propose the server record");
        return rc;
    }
    if (st->meta_dirty) {
        /* The identity is on disk before the first client is served. */
        meta_put(st);
        int status = 1;
        rc = store_submit(st->store, on_startup_commit, &status);
        if (rc < 0) {
            snprintf(err, errlen, "store: cannot write the server record");
            return rc;
        }
        while (status == 1)
            uv_run(st->loop, UV_RUN_ONCE);
        if (status != STZ_OK) {
            snprintf(err, errlen, "store: cannot write the server record: %s",
                     stz_strerror(status));
            return status;
        }
    }
    /* In a cluster the other nodes share the cluster ID by design. */
    if (!cfg->clustered) rc = stan_alone_check(st, err, errlen);
    if (rc < 0) return rc;
    return serve(st, err, errlen);
}

void stan_set_start_time(stan_t *st, int64_t wall_ns)
{
    st->start_ns = wall_ns;
}

int stan_load_view(stan_t *st, char *err, size_t errlen)
{
    st->view = true; /* loaded again on requests: a log line each time would be noise */
    int rc = recover(st, err, errlen);
    stan_client_quiet_all(st);
    stan_sub_quiet_all(st);
    store_batch_discard(st->store);
    return rc;
}

void stan_abandon(stan_t *st)
{
    for (int i = 0; i < st->nisubs; i++)
        bus_unsubscribe(&st->bus, st->isubs[i]);
    st->nisubs = 0;
    bus_set_flush_hook(&st->bus, NULL, NULL);
    bus_set_sub_gone_hook(&st->bus, NULL, NULL);
    if (st->store) {
        /* The replies waiting on those batches go out now, as errors (a publish's says it may
         * be stored); what they stage is void with the rest. */
        store_drop_proposal(st->store);
        stan_commit_fail_all(&st->commit, STZ_ENOTLEADER);
        store_batch_discard(st->store);
    }
}

void stan_shutdown(stan_t *st, void (*done)(void *arg), void *arg)
{
    st->shutting_down = true;
    for (int i = 0; i < st->nisubs; i++)
        bus_unsubscribe(&st->bus, st->isubs[i]);
    st->nisubs = 0;
    bus_set_flush_hook(&st->bus, NULL, NULL);
    bus_set_sub_gone_hook(&st->bus, NULL, NULL);
    stan_deliver_close(st);
    stan_handover_close(st);
    /* Whatever was accepted but not committed yet is committed now (acks, positions). */
    submit(st);
    if (st->store && store_in_flight(st->store)) {
        st->shutdown_done = done;
        st->shutdown_arg = arg;
        return;
    }
    done(arg);
}

void stan_free(stan_t *st)
{
    if (!st) return;

    bus_set_sub_gone_hook(&st->bus, NULL, NULL);
    stan_deliver_close(st);
    stan_handover_close(st);
    stan_pub_free(st); /* before the subscriptions its hooks refer to */
    stan_dead_free(st);
    stan_sub_free_all(st);
    stan_client_free_all(st);
    stan_channel_free_all(st);
    stan_commit_free(&st->commit);
    if (st->store && !st->store_borrowed) store_close(st->store);
    strmap_free(&st->clients);
    strmap_free(&st->channels);
    strmap_free(&st->subs_by_ack);
    strmap_free(&st->subs_by_id);
    hmap_free(&st->members_by_inbox);
    buf_free(&st->scratch);
    free(st->server_id);
    free(st->discover);
    free(st->pings);
    free(st->pub_prefix);
    free(st->sub_subj);
    free(st->unsub_subj);
    free(st->close_subj);
    free(st->subclose_subj);
    free(st->inbox_prefix);
    free(st->ack_prefix);
    free(st->dirty_subs);
    /* The struct holds the tick timer: it is freed when libuv is done with the handle. */
    if (st->tick_started)
        uv_close((uv_handle_t *)&st->tick, on_tick_closed);
    else
        free(st);
}

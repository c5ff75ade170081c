/* stan_client: see stan_client.h. */
#include "stan_client.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "nuid.h"
#include "protocol.pb-c.h"
#include "stan_handover.h"
#include "stan_keys.h"
#include "stan_sub.h"
#include "store.pb-c.h"
#include "xalloc.h"

#define DUP_CHECK_MS 500

/* A connect waiting to learn whether the client ID's current owner is still alive. */
typedef struct dupcheck {
    stan_t *st;
    char *reply; /* <inbox_prefix>dup.<random>: where the current owner answers */
    char *client_id;
    char *reply_to;
    void *request; /* Pb__ConnectRequest */
    uv_timer_t timer;
    list_node_t link; /* stan.dupchecks */
} dupcheck_t;

static void connect_error(stan_t *st, const char *reply, const char *error)
{
    Pb__ConnectResponse r = PB__CONNECT_RESPONSE__INIT;
    r.error = (char *)error;
    stan_pack(&r.base, &st->scratch);
    stan_reply(st, reply, &st->scratch);
}

static bool id_valid(const char *id)
{
    if (!*id) return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

stan_client_t *stan_client_find(stan_t *st, const char *id, size_t len)
{
    return strmap_get(&st->clients, id, len);
}

/* ---- heartbeats ---- */

/* Where a client answers its heartbeats: "<inbox prefix>hb.<random>.<client ID>", built whole
 * (an ID may be as long as the store allows). The random part is the client's own, so a client
 * that sees its heartbeats cannot answer for another one that has gone away. */
static char *hb_reply_subject(stan_t *st, const char *id)
{
    return nuid_subject(st->inbox_prefix, "hb.", id);
}

static void hb_send(stan_t *st, stan_client_t *cl)
{
    bus_msg_t m = {.subject = cl->hb_inbox,
                   .subject_len = strlen(cl->hb_inbox),
                   .reply = cl->hb_reply,
                   .reply_len = strlen(cl->hb_reply),
                   .data = "",
                   .data_len = 0};
    bus_publish(&st->bus, &m);
}

static void client_remove(stan_t *st, stan_client_t *cl, bool write_store);
static void on_hb_timer(uv_timer_t *t);

/* The client's next heartbeat step is due at due_ms (clock_mono_ms). */
static void hb_arm(stan_client_t *cl, uint64_t now, uint64_t due_ms)
{
    cl->hb_due_ms = due_ms;
    uv_timer_start(&cl->hb_timer, on_hb_timer, due_ms > now ? due_ms - now : 0, 0);
}

/* One heartbeat every hb_interval: the next goes out hb_interval after the previous one was
 * sent, whether that one was answered or missed (config refuses hb_timeout >= hb_interval, so
 * the wait for an answer always ends before the next is due). */
static void hb_schedule_next(stan_t *st, stan_client_t *cl, uint64_t now)
{
    hb_arm(cl, now, cl->hb_sent_ms + (uint64_t)st->cfg->hb_interval_ms);
}

/* The step that is due: count a missed answer (closing the client past hb_fail_count), or send
 * the next heartbeat and wait hb_timeout for its answer. */
static void hb_step(stan_t *st, stan_client_t *cl, uint64_t now)
{
    const config_t *cfg = st->cfg;
    if (cl->hb_waiting) {
        /* The last heartbeat went unanswered within hb_timeout. */
        cl->hb_waiting = false;
        cl->hb_fails++;
        LOG_D("client %s missed heartbeat %d of %d", cl->id, cl->hb_fails, cfg->hb_fail_count);
        if (cl->hb_fails > cfg->hb_fail_count) {
            LOG_I("client %s: %d heartbeats missed, closing it", cl->id, cl->hb_fails);
            client_remove(st, cl, true);
            return;
        }
        /* Its queue members' jobs go to other members if it stays silent (stan_handover.h):
         * a dead worker whose connection the server cannot see closing. */
        stan_handover_client_missed(
            st, &cl->subs, bus_interest(&st->bus, cl->hb_inbox, strlen(cl->hb_inbox)) == 0);
        hb_schedule_next(st, cl, now);
        return;
    }
    cl->hb_waiting = true;
    cl->hb_sent_ms = now;
    /* Armed first: an in-process client may answer within hb_send, and its answer reschedules. */
    hb_arm(cl, now, now + (uint64_t)cfg->hb_timeout_ms);
    /* Nobody behind the inbox (e.g. its NATS connection is gone): nothing to send, and no
     * answer can come; it counts as a miss when the timeout fires. */
    if (bus_interest(&st->bus, cl->hb_inbox, strlen(cl->hb_inbox)) > 0) hb_send(st, cl);
}

static void on_hb_timer(uv_timer_t *t)
{
    stan_client_t *cl = t->data;
    uint64_t now = clock_mono_ms();
    /* Libuv's timers run on its cached loop time, which lags the clock a little: early, wait
     * the rest. */
    if (cl->hb_due_ms > now) {
        hb_arm(cl, now, cl->hb_due_ms);
        return;
    }
    hb_step(cl->st, cl, now);
}

void stan_client_run_due(stan_t *st)
{
    uint64_t now = clock_mono_ms();
    size_t it;
    strmap_entry_t *e = strmap_first(&st->clients, &it);
    while (e) {
        strmap_entry_t *next = strmap_next(&st->clients, &it, e); /* e may be removed */
        stan_client_t *cl = e->val;
        e = next;
        if (cl->hb_due_ms <= now) hb_step(st, cl, now);
    }
}

static void hb_answered(stan_t *st, stan_client_t *cl)
{
    if (cl->hb_fails > 0) stan_handover_client_alive(st, &cl->subs);
    cl->hb_fails = 0;
    if (!cl->hb_waiting) return;
    cl->hb_waiting = false;
    hb_schedule_next(st, cl, clock_mono_ms());
}

/* ---- registry ---- */

static void on_dupcheck_closed(uv_handle_t *h)
{
    free(h->data); /* the dupcheck_t that holds the timer */
}

static stan_client_t *client_new(stan_t *st, const char *id, const char *hb_inbox,
                                 const void *conn_id, size_t conn_len, int32_t proto,
                                 int32_t ping_interval, int32_t ping_max_out)
{
    stan_client_t *cl = xcalloc(1, sizeof *cl);
    cl->st = st;
    cl->id = xstrdup(id);
    cl->hb_inbox = xstrdup(hb_inbox);
    cl->hb_reply = hb_reply_subject(st, id);
    cl->conn_id = xmemdup0(conn_id, conn_len); /* absent (protocol 0): NULL, 0 */
    cl->conn_id_len = conn_len;
    cl->protocol = proto;
    cl->ping_interval = ping_interval;
    cl->ping_max_out = ping_max_out;
    list_init(&cl->subs);
    uv_timer_init(st->loop, &cl->hb_timer);
    cl->hb_timer.data = cl;
    uv_unref((uv_handle_t *)&cl->hb_timer); /* engine timers never keep the loop alive */
    uint64_t now = clock_mono_ms();
    hb_arm(cl, now, now + (uint64_t)st->cfg->hb_interval_ms);
    strmap_put(&st->clients, cl->id, strlen(cl->id), cl);
    if (conn_len) strmap_put(&st->clients_by_conn, cl->conn_id, conn_len, cl);
    return cl;
}

static void put_record(stan_t *st, stan_client_t *cl)
{
    Spb__ClientRecord r = SPB__CLIENT_RECORD__INIT;
    r.id = cl->id;
    r.hb_inbox = cl->hb_inbox;
    r.conn_id.data = (uint8_t *)cl->conn_id;
    r.conn_id.len = cl->conn_id_len;
    r.protocol = cl->protocol;
    r.ping_interval = cl->ping_interval;
    r.ping_max_out = cl->ping_max_out;
    size_t n = spb__client_record__get_packed_size(&r);
    void *p = store_put_reserve(st->store, STORE_DB_CLIENTS, cl->id, strlen(cl->id), n);
    if (!p) { /* IDs are checked against the store's key limit on connect: cannot happen */
        LOG_E("client %s: ID too long for the store", cl->id);
        return;
    }
    spb__client_record__pack(&r, p);
}

static void on_client_freed(uv_handle_t *h)
{
    stan_client_t *cl = h->data;
    free(cl->id);
    free(cl->hb_inbox);
    free(cl->hb_reply);
    free(cl->conn_id);
    free(cl);
}

/* Removes the client: its subscriptions go (durables stay, offline), its record is deleted.
 * Memory forgets it now, so the deletion is a redo delete: staged again after a failed batch
 * until one commits, in front of a later registration of the same ID (store_del_redo). */
static void client_remove(stan_t *st, stan_client_t *cl, bool write_store)
{
    if (cl->closed) return;
    cl->closed = true;
    stan_sub_client_gone(st, &cl->subs, false);
    strmap_del(&st->clients, cl->id, strlen(cl->id));
    if (cl->conn_id_len && strmap_get(&st->clients_by_conn, cl->conn_id, cl->conn_id_len) == cl)
        strmap_del(&st->clients_by_conn, cl->conn_id, cl->conn_id_len);
    if (write_store) store_del_redo(st->store, STORE_DB_CLIENTS, cl->id, strlen(cl->id));
    uv_timer_stop(&cl->hb_timer);
    uv_close((uv_handle_t *)&cl->hb_timer, on_client_freed);
}

void stan_client_stage_close(stan_t *st, const stan_client_t *cl)
{
    store_del(st->store, STORE_DB_CLIENTS, cl->id, strlen(cl->id));
}

void stan_client_close(stan_t *st, stan_client_t *cl)
{
    LOG_D("client %s closed", cl->id);
    client_remove(st, cl, true);
}

stan_client_t *stan_client_restore(stan_t *st, const void *rec, size_t len)
{
    Spb__ClientRecord *r = spb__client_record__unpack(NULL, len, rec);
    if (!r) {
        LOG_W("store: skipping a damaged client record");
        return NULL;
    }
    stan_client_t *cl = client_new(st, r->id, r->hb_inbox, r->conn_id.data, r->conn_id.len,
                                   r->protocol, r->ping_interval, r->ping_max_out);
    cl->registered = true;
    spb__client_record__free_unpacked(r, NULL);
    return cl;
}

void stan_client_quiet_all(stan_t *st)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->clients, &it); e;
         e = strmap_next(&st->clients, &it, e)) {
        stan_client_t *cl = e->val;
        uv_timer_stop(&cl->hb_timer);
    }
}

void stan_client_free_all(stan_t *st)
{
    list_node_t *n;
    while ((n = list_pop_front(&st->dupchecks))) {
        dupcheck_t *d = LIST_ITEM(n, dupcheck_t, link);
        uv_timer_stop(&d->timer);
        pb__connect_request__free_unpacked(d->request, NULL);
        free(d->client_id);
        free(d->reply_to);
        free(d->reply);
        d->request = NULL;
        uv_close((uv_handle_t *)&d->timer, on_dupcheck_closed);
    }
    size_t it;
    strmap_entry_t *e = strmap_first(&st->clients, &it);
    while (e) {
        strmap_entry_t *next = strmap_next(&st->clients, &it, e);
        stan_client_t *cl = e->val;
        cl->closed = true;
        uv_timer_stop(&cl->hb_timer);
        uv_close((uv_handle_t *)&cl->hb_timer, on_client_freed);
        e = next;
    }
    strmap_free(&st->clients);
    strmap_free(&st->clients_by_conn);
}

/* ---- connect ---- */

/* A registration on its way to disk: if its batch fails, the client was told so and must not
 * stay registered in memory. Identified by ID and connID, because by then the client may have
 * been closed or replaced (and freed). */
typedef struct pending_reg {
    stan_t *st;
    char *id;
    char *conn_id;
    size_t conn_id_len;
} pending_reg_t;

static void on_register_commit(void *arg, int status)
{
    pending_reg_t *pr = arg;
    stan_t *st = pr->st;
    bool ok = status == 0;
    stan_client_t *cl = stan_client_find(st, pr->id, strlen(pr->id));
    if (cl && cl->conn_id_len == pr->conn_id_len &&
        (pr->conn_id_len == 0 || memcmp(cl->conn_id, pr->conn_id, pr->conn_id_len) == 0)) {
        if (ok) {
            cl->registered = true;
        } else {
            LOG_D("client %s not registered: its record did not reach the disk", cl->id);
            client_remove(st, cl, false);
        }
    }
    free(pr->id);
    free(pr->conn_id);
    free(pr);
}

static void register_client(stan_t *st, const Pb__ConnectRequest *req, const char *reply_to)
{
    stan_client_t *cl =
        client_new(st, req->clientid, req->heartbeatinbox, req->connid.data, req->connid.len,
                   req->protocol, req->pinginterval, req->pingmaxout);
    put_record(st, cl);
    pending_reg_t *pr = xcalloc(1, sizeof *pr);
    pr->st = st;
    pr->id = xstrdup(cl->id);
    pr->conn_id = xmemdup0(cl->conn_id, cl->conn_id_len);
    pr->conn_id_len = cl->conn_id_len;
    Pb__ConnectResponse r = PB__CONNECT_RESPONSE__INIT;
    r.pubprefix = st->pub_prefix;
    r.subrequests = st->sub_subj;
    r.unsubrequests = st->unsub_subj;
    r.closerequests = st->close_subj;
    r.subcloserequests = st->subclose_subj;
    r.protocol = 1;
    if (req->protocol >= 1) {
        r.pingrequests = st->pings;
        r.pinginterval = req->pinginterval;
        r.pingmaxout = req->pingmaxout;
    }
    stan_later_reply_t *a = stan_reply_on_commit(st, reply_to, NULL, NULL);
    stan_pack(&r.base, &a->ok);
    Pb__ConnectResponse f = PB__CONNECT_RESPONSE__INIT;
    stan_later_fail(a, &f.base, &f.error, "stan: store error, connection not registered",
                    "stan: leadership lost while registering the connection: connect again");
    /* After the reply, so the client has its answer before any cleanup runs. */
    stan_commit_on(&st->commit, on_register_commit, pr);
    LOG_D("client %s connected (hb inbox %s)", cl->id, cl->hb_inbox);
}

static void replace_and_register(stan_t *st, const Pb__ConnectRequest *req, const char *reply_to)
{
    stan_client_t *old = stan_client_find(st, req->clientid, strlen(req->clientid));
    if (old) {
        LOG_D("client %s replaced by a new connection", old->id);
        /* The new record overwrites it in the same batch; should that batch fail, the new one
         * is forgotten too, and the old record must not outlive it on disk. */
        client_remove(st, old, true);
    }
    register_client(st, req, reply_to);
}

static void dupcheck_finish(dupcheck_t *d, bool alive)
{
    stan_t *st = d->st;
    list_remove(&d->link);
    uv_timer_stop(&d->timer);
    if (alive)
        connect_error(st, d->reply_to, "stan: clientID already registered");
    else
        replace_and_register(st, d->request, d->reply_to);
    pb__connect_request__free_unpacked(d->request, NULL);
    free(d->client_id);
    free(d->reply_to);
    free(d->reply);
    uv_close((uv_handle_t *)&d->timer, on_dupcheck_closed);
}

static void on_dupcheck_timeout(uv_timer_t *t)
{
    dupcheck_finish(t->data, false);
}

void stan_client_on_connect(stan_t *st, const bus_msg_t *m)
{
    if (!m->reply) return;
    char *reply_to = xstrndup(m->reply, m->reply_len);
    Pb__ConnectRequest *req =
        pb__connect_request__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    if (!req || !req->heartbeatinbox[0]) {
        connect_error(st, reply_to, "stan: invalid connection request");
    } else if (!id_valid(req->clientid)) { /* an empty ID too, as NSS */
        connect_error(
            st, reply_to,
            "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed");
    } else if (strlen(req->clientid) > STAN_MAX_NAME) {
        connect_error(st, reply_to,
                      "stan: invalid clientID: longer than " STAN_MAX_NAME_TEXT " bytes");
    } else if (strlen(req->heartbeatinbox) > STAN_MAX_NAME) {
        connect_error(st, reply_to, "stan: invalid connection request");
    } else {
        stan_client_t *old = stan_client_find(st, req->clientid, strlen(req->clientid));
        if (old && bus_interest(&st->bus, old->hb_inbox, strlen(old->hb_inbox)) > 0) {
            /* Someone holds the ID and may be alive: ask it, as NSS does. */
            dupcheck_t *d = xcalloc(1, sizeof *d);
            d->st = st;
            d->reply = nuid_subject(st->inbox_prefix, "dup.", NULL);
            d->client_id = xstrdup(req->clientid);
            d->reply_to = reply_to;
            d->request = req;
            uv_timer_init(st->loop, &d->timer);
            d->timer.data = d;
            uv_unref((uv_handle_t *)&d->timer);
            uv_timer_start(&d->timer, on_dupcheck_timeout, DUP_CHECK_MS, 0);
            list_push_front(&st->dupchecks, &d->link);
            bus_msg_t hb = {.subject = old->hb_inbox,
                            .subject_len = strlen(old->hb_inbox),
                            .reply = d->reply,
                            .reply_len = strlen(d->reply),
                            .data = "",
                            .data_len = 0};
            bus_publish(&st->bus, &hb);
            return;
        }
        /* Unknown, or its previous owner has nobody behind its inbox: take it at once. */
        replace_and_register(st, req, reply_to);
    }
    if (req) pb__connect_request__free_unpacked(req, NULL);
    free(reply_to);
}

static bool subject_is(const bus_msg_t *m, const char *s)
{
    return strlen(s) == m->subject_len && memcmp(m->subject, s, m->subject_len) == 0;
}

/* Replies to the server's own requests: heartbeats ("hb.<random>.<client ID>") and dup checks
 * ("dup.<random>"). Only the exact subject handed out counts, random part included. */
void stan_client_on_inbox_reply(stan_t *st, const bus_msg_t *m)
{
    size_t plen = strlen(st->inbox_prefix);
    if (m->subject_len <= plen) return;
    const char *rest = m->subject + plen;
    size_t rlen = m->subject_len - plen;
    if (rlen > 3 + NUID_LEN + 1 && memcmp(rest, "hb.", 3) == 0) {
        if (m->no_responders) return; /* a miss, counted when its timeout fires */
        size_t skip = 3 + NUID_LEN + 1;
        stan_client_t *cl = stan_client_find(st, rest + skip, rlen - skip);
        if (cl && subject_is(m, cl->hb_reply)) hb_answered(st, cl);
    } else if (rlen > 4 && memcmp(rest, "dup.", 4) == 0) {
        list_node_t *n;
        list_foreach (n, &st->dupchecks) {
            dupcheck_t *d = LIST_ITEM(n, dupcheck_t, link);
            if (subject_is(m, d->reply)) {
                /* NATS says nobody listens on the old owner's heartbeat inbox: it is gone, and
                 * its successor takes the ID now rather than after DUP_CHECK_MS. */
                if (m->no_responders)
                    LOG_D("client %s: no responders on its heartbeat inbox; replacing it",
                          d->client_id);
                dupcheck_finish(d, !m->no_responders);
                return;
            }
        }
    }
}

/* ---- close and ping ---- */

void stan_client_on_close(stan_t *st, const bus_msg_t *m)
{
    Pb__CloseRequest *req = pb__close_request__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    Pb__CloseResponse r = PB__CLOSE_RESPONSE__INIT;
    char *reply_to = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    stan_client_t *cl = NULL;
    const char *err = NULL;
    if (!req) {
        err = "stan: invalid close request";
    } else if (!(cl = stan_client_find(st, req->clientid, strlen(req->clientid)))) {
        err = "stan: unknown clientID";
    }
    if (err) {
        r.error = (char *)err;
        stan_pack(&r.base, &st->scratch);
        stan_reply(st, reply_to, &st->scratch);
    } else {
        stan_client_close(st, cl);
        /* The answer waits for the commit, so a close is durable when acknowledged. */
        stan_later_reply_t *a = stan_reply_on_commit(st, reply_to, NULL, NULL);
        stan_pack(&r.base, &a->ok);
        Pb__CloseResponse f = PB__CLOSE_RESPONSE__INIT;
        stan_later_fail(a, &f.base, &f.error, "stan: store error",
                        "stan: leadership lost while closing the connection: close it again");
    }
    free(reply_to);
    if (req) pb__close_request__free_unpacked(req, NULL);
}

void stan_client_on_ping(stan_t *st, const bus_msg_t *m)
{
    Pb__Ping *req = pb__ping__unpack(NULL, m->data_len, (const uint8_t *)m->data);
    Pb__PingResponse r = PB__PING_RESPONSE__INIT;
    stan_client_t *cl = NULL;
    if (req && req->connid.len)
        cl = strmap_get(&st->clients_by_conn, (const char *)req->connid.data, req->connid.len);
    if (!cl) {
        r.error = "client has been replaced or is no longer registered";
    } else if (cl->hb_fails > 0) {
        /* It is alive after all: check again now rather than at the next interval. */
        uint64_t now = clock_mono_ms();
        hb_arm(cl, now, now + 1);
        cl->hb_waiting = false;
    }
    if (m->reply) {
        stan_pack(&r.base, &st->scratch);
        bus_msg_t out = {.subject = m->reply,
                         .subject_len = m->reply_len,
                         .data = st->scratch.data ? st->scratch.data : "",
                         .data_len = st->scratch.len};
        bus_publish(&st->bus, &out);
    }
    if (req) pb__ping__free_unpacked(req, NULL);
}

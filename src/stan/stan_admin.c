/* stan_admin: see include/stan_admin.h (the changing commands and the message read; the
 * dead-letter reads and requeue are stan_dead_admin.c's).
 *
 * Above the request handlers: each command is the mechanism the engine already has for the same
 * change (limits' eviction for purge, max_inactivity's removal for delete-channel, the client's
 * close request, the durable's unsubscribe), staged into the batch being built and applied to
 * memory when that batch commits, so that a failed batch leaves memory as the disk has it.
 *
 * A command is staged only while no batch is in flight: a batch in flight may hold the channel's
 * messages or evictions, whose completion moves the same state (first_seq, evict_to). Accepted
 * while one is, it waits for that batch's end (stan_commit_after_current), then is staged. Names
 * are kept, not pointers, where the thing may go meanwhile (subscriptions by id, the client by
 * ID and connID); a channel cannot go while a command on it waits (max_inactivity waits for
 * quiet batches, and a delete-channel refuses commands on it). */
#include "stan_admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "stan_channel.h"
#include "stan_client.h"
#include "stan_ctx.h"
#include "stan_dead.h"
#include "stan_keys.h"
#include "stan_sub.h"
#include "xalloc.h"

typedef enum {
    OP_PURGE,
    OP_DELETE_CHANNEL,
    OP_DELETE_DURABLE,
    OP_CLOSE_CLIENT,
    OP_PAUSE
} op_kind_t;

typedef struct admin_op {
    stan_t *st;
    op_kind_t kind;
    stan_admin_fn fn;
    void *arg;
    stan_admin_result_t res;
    stan_channel_t *ch; /* purge, delete-channel, delete-durable, pause */
    uint64_t upto;      /* purge */
    bool pause;         /* pause (true) or resume */
    uint64_t *ids;      /* delete-durable, pause: the subscriptions, by id */
    bool *was_paused;   /* pause: each one's flag before, for a failed batch */
    size_t nids;
    char *client_id, *conn_id; /* close-client: the client as it was when accepted */
    size_t conn_id_len;
} admin_op_t;

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The channel a command names; NULL (err set) if there is none or it is being deleted. */
static stan_channel_t *find_channel(stan_t *st, const char *name, char *err, size_t errlen)
{
    stan_channel_t *ch = name ? strmap_get(&st->channels, name, strlen(name)) : NULL;
    if (!ch || ch->deleting) fail(0, err, errlen, "no such channel \"%s\"", name ? name : "");
    return ch && !ch->deleting ? ch : NULL;
}

static void fill_channel(admin_op_t *op)
{
    const stan_channel_t *ch = op->ch;
    op->res.msgs = ch->msgs;
    op->res.first_seq = ch->last_seq ? ch->first_seq : 0;
    op->res.last_seq = ch->last_seq;
}

/* ---- staging and answering ------------------------------------------------------------ */

static void op_free(admin_op_t *op)
{
    free(op->ids);
    free(op->was_paused);
    free(op->client_id);
    free(op->conn_id);
    free(op);
}

static void stage_purge(admin_op_t *op);
static void stage_delete_channel(admin_op_t *op);
static void stage_subs(admin_op_t *op);
static void stage_close_client(admin_op_t *op);
static void done_purge(admin_op_t *op, int status);
static void done_delete_channel(admin_op_t *op, int status);
static void done_delete_durable(admin_op_t *op, int status);
static void done_close_client(admin_op_t *op, int status);
static void done_pause(admin_op_t *op, int status);

static const struct {
    void (*stage)(admin_op_t *op);
    void (*done)(admin_op_t *op, int status);
} ops[] = {
    [OP_PURGE] = {stage_purge, done_purge},
    [OP_DELETE_CHANNEL] = {stage_delete_channel, done_delete_channel},
    [OP_DELETE_DURABLE] = {stage_subs, done_delete_durable},
    [OP_CLOSE_CLIENT] = {stage_close_client, done_close_client},
    [OP_PAUSE] = {stage_subs, done_pause},
};

static void on_committed(void *arg, int status)
{
    admin_op_t *op = arg;
    ops[op->kind].done(op, status);
    op->res.status = status;
    op->fn(op->arg, &op->res);
    op_free(op);
}

static void op_try(admin_op_t *op);

static void on_waited(void *arg, int status)
{
    (void)status; /* whatever that batch did, this command is staged now */
    op_try(arg);
}

/* Stages op into the batch being built, or waits for the batch in flight (a channel being
 * deleted also for its publishes still staged: they must not follow its removal). */
static void op_try(admin_op_t *op)
{
    stan_t *st = op->st;
    if (st->shutting_down) {
        if (op->kind == OP_DELETE_CHANNEL) op->ch->deleting = false; /* as it was */
        op->res.status = STZ_ECANCELED;
        op->fn(op->arg, &op->res);
        op_free(op);
        return;
    }
    if (store_in_flight(st->store) || (op->kind == OP_DELETE_CHANNEL && op->ch->pend_msgs > 0)) {
        stan_commit_after_current(&st->commit, on_waited, op);
        return;
    }
    ops[op->kind].stage(op);
    stan_commit_on(&st->commit, on_committed, op);
}

static admin_op_t *op_new(stan_t *st, op_kind_t kind, stan_admin_fn fn, void *arg)
{
    admin_op_t *op = xcalloc(1, sizeof *op);
    op->st = st;
    op->kind = kind;
    op->fn = fn;
    op->arg = arg;
    return op;
}

/* ---- purge ---------------------------------------------------------------------------- */

static void stage_purge(admin_op_t *op)
{
    uint64_t from, to;
    op->res.count = stan_channel_stage_purge(op->st, op->ch, op->upto, &from, &to);
}

/* The purged messages are gone: unacked ones count as acked (limits leave them to be dropped
 * when they come due; a purge frees the subscriptions' windows at once). */
static void drop_purged(stan_t *st, stan_sub_t *s)
{
    stan_pending_t *p;
    bool dropped = false;
    while ((p = stan_pset_oldest(&s->pend)) && p->seq < s->ch->first_seq) {
        stan_pset_drop(&s->pend, st->store, p);
        dropped = true;
    }
    if (!dropped) return;
    stan_sub_arm_timer(s);
    if (s->client && s->ready) stan_sub_mark_ready(st, s);
}

static void done_purge(admin_op_t *op, int status)
{
    /* The channel's own completion (stan_channel_stage_purge) ran first: first_seq has moved,
     * or (failed) it was rolled back. */
    if (status == 0 && op->res.count) {
        list_node_t *n;
        list_foreach (n, &op->ch->subs)
            drop_purged(op->st, STAN_SUB_OF(n, ch_link));
    }
    if (status != 0) op->res.count = 0;
    fill_channel(op);
}

int stan_admin_purge(stan_t *st, const char *channel, uint64_t upto, stan_admin_fn fn, void *arg,
                     char *err, size_t errlen)
{
    if (st->shutting_down) return fail(STZ_ECANCELED, err, errlen, "the server is shutting down");
    stan_channel_t *ch = find_channel(st, channel, err, errlen);
    if (!ch) return STZ_ENOENT;
    admin_op_t *op = op_new(st, OP_PURGE, fn, arg);
    op->ch = ch;
    op->upto = upto;
    op_try(op);
    return 0;
}

/* ---- delete-channel ------------------------------------------------------------------- */

static void stage_delete_channel(admin_op_t *op)
{
    stan_t *st = op->st;
    stan_channel_t *ch = op->ch;
    op->res.msgs = ch->msgs;
    list_node_t *n;
    list_foreach (n, &ch->subs)
        stan_sub_stage_delete(st, STAN_SUB_OF(n, ch_link)->id);
    stan_channel_stage_delete(st, ch);
    /* Nothing may write its record again behind the removal (a subscription record written
     * with the same batch asks for it): it counts as staged until the batch ends. */
    ch->rec = STAN_REC_STAGED;
}

static void done_delete_channel(admin_op_t *op, int status)
{
    stan_t *st = op->st;
    stan_channel_t *ch = op->ch;
    if (status != 0) {
        ch->deleting = false;
        ch->rec = STAN_REC_NONE; /* written again by whatever needs it next */
        op->res.msgs = 0;
        return;
    }
    op->res.count = ch->nsubs;
    list_node_t *n, *next;
    list_foreach_safe (n, next, &ch->subs)
        stan_sub_delete(st, STAN_SUB_OF(n, ch_link));
    LOG_I("channel \"%s\" deleted by an operator (%llu messages, %llu subscriptions)", ch->name,
          (unsigned long long)op->res.msgs, (unsigned long long)op->res.count);
    stan_channel_free(st, ch);
}

int stan_admin_delete_channel(stan_t *st, const char *channel, bool force, stan_admin_fn fn,
                              void *arg, char *err, size_t errlen)
{
    if (st->shutting_down) return fail(STZ_ECANCELED, err, errlen, "the server is shutting down");
    stan_channel_t *ch = find_channel(st, channel, err, errlen);
    if (!ch) return STZ_ENOENT;
    if (ch->nsubs && !force)
        return fail(STZ_EBUSY, err, errlen, "channel \"%s\" has %zu subscriptions", channel,
                    ch->nsubs);
    ch->deleting = true; /* from now on, publishes and subscriptions to it are refused */
    admin_op_t *op = op_new(st, OP_DELETE_CHANNEL, fn, arg);
    op->ch = ch;
    op_try(op);
    return 0;
}

/* ---- commands on subscriptions (delete-durable, pause) -------------------------------- */

/* The subscriptions a command names on ch: with queue, the members of the group (durable: the
 * durable group); without, the plain durables of that name (one per client, or client_id's). */
static void collect_subs(admin_op_t *op, const char *queue, const char *durable,
                         const char *client_id)
{
    size_t cap = 0;
    list_node_t *n;
    if (queue) {
        char *key = stan_sub_qgroup_key(durable, queue);
        stan_qgroup_t *g = strmap_get(&op->ch->qgroups, key, strlen(key));
        free(key);
        if (!g) return;
        cap = g->nmembers;
        op->ids = xmalloc((cap ? cap : 1) * sizeof *op->ids);
        list_foreach (n, &g->members)
            op->ids[op->nids++] = STAN_SUB_OF(n, qg_link)->id;
        return;
    }
    list_foreach (n, &op->ch->subs) {
        stan_sub_t *s = STAN_SUB_OF(n, ch_link);
        if (s->qgroup || !s->durable || strcmp(s->durable, durable) != 0) continue;
        if (client_id && strcmp(s->client_id, client_id) != 0) continue;
        if (op->nids == cap) {
            cap = cap ? cap * 2 : 4;
            op->ids = xrealloc(op->ids, cap * sizeof *op->ids);
        }
        op->ids[op->nids++] = s->id;
    }
}

/* The subscriptions still there when the command is staged (others may have left meanwhile):
 * removals are staged, pauses set (the record goes with the same batch). */
static void stage_subs(admin_op_t *op)
{
    stan_t *st = op->st;
    if (op->kind == OP_PAUSE) op->was_paused = xcalloc(op->nids ? op->nids : 1, sizeof(bool));
    for (size_t i = 0; i < op->nids; i++) {
        stan_sub_t *s = stan_sub_by_id(st, op->ids[i]);
        if (!s) {
            op->ids[i] = 0; /* ids start at 1 */
            continue;
        }
        op->res.count++;
        if (op->kind == OP_DELETE_DURABLE) {
            stan_sub_stage_delete(st, s->id);
            continue;
        }
        op->was_paused[i] = s->is_paused;
        s->is_paused = op->pause;
        stan_sub_mark_dirty(st, s);
    }
}

static void done_delete_durable(admin_op_t *op, int status)
{
    if (status != 0) {
        op->res.count = 0;
        return;
    }
    for (size_t i = 0; i < op->nids; i++) {
        stan_sub_t *s = op->ids[i] ? stan_sub_by_id(op->st, op->ids[i]) : NULL;
        if (s) stan_sub_delete(op->st, s); /* its position and unacked set are forgotten */
    }
}

static void done_pause(admin_op_t *op, int status)
{
    stan_t *st = op->st;
    for (size_t i = 0; i < op->nids; i++) {
        stan_sub_t *s = op->ids[i] ? stan_sub_by_id(st, op->ids[i]) : NULL;
        if (!s) continue;
        /* Failed: as the disk has it (the failed batch marked every record to be written
         * again, so the flag put back goes with the next one). */
        if (status != 0) s->is_paused = op->was_paused[i];
        /* Released: what is due goes out with the next delivery pass. */
        if (!s->is_paused && s->client && s->ready) stan_sub_mark_ready(st, s);
    }
    if (status != 0) op->res.count = 0;
}

static int subs_command(stan_t *st, op_kind_t kind, const char *channel, const char *queue,
                        const char *durable, const char *client_id, bool pause, stan_admin_fn fn,
                        void *arg, char *err, size_t errlen)
{
    if (st->shutting_down) return fail(STZ_ECANCELED, err, errlen, "the server is shutting down");
    if (!queue && !durable) return fail(STZ_EINVAL, err, errlen, "a queue or a durable is needed");
    if (queue && client_id)
        return fail(STZ_EINVAL, err, errlen,
                    "a client names a plain durable, not a queue group (its members are clients)");
    stan_channel_t *ch = find_channel(st, channel, err, errlen);
    if (!ch) return STZ_ENOENT;
    admin_op_t *op = op_new(st, kind, fn, arg);
    op->ch = ch;
    op->pause = pause;
    collect_subs(op, queue, durable, client_id);
    if (!op->nids) {
        op_free(op);
        if (queue)
            return fail(STZ_ENOENT, err, errlen, "no %squeue group \"%s\" on channel \"%s\"",
                        durable ? "durable " : "", queue, channel);
        if (client_id)
            return fail(STZ_ENOENT, err, errlen,
                        "no durable \"%s\" of client \"%s\" on channel \"%s\"", durable, client_id,
                        channel);
        return fail(STZ_ENOENT, err, errlen, "no durable \"%s\" on channel \"%s\"", durable,
                    channel);
    }
    op_try(op);
    return 0;
}

int stan_admin_delete_durable(stan_t *st, const char *channel, const char *durable,
                              const char *queue, const char *client_id, stan_admin_fn fn, void *arg,
                              char *err, size_t errlen)
{
    if (!durable) return fail(STZ_EINVAL, err, errlen, "a durable name is needed");
    return subs_command(st, OP_DELETE_DURABLE, channel, queue, durable, client_id, false, fn, arg,
                        err, errlen);
}

int stan_admin_pause(stan_t *st, const char *channel, const char *queue, const char *durable,
                     const char *client_id, bool pause, stan_admin_fn fn, void *arg, char *err,
                     size_t errlen)
{
    return subs_command(st, OP_PAUSE, channel, queue, durable, client_id, pause, fn, arg, err,
                        errlen);
}

/* ---- close-client --------------------------------------------------------------------- */

/* The client the command was accepted for, if it is still the one holding the ID (not closed
 * or replaced by a new connection meanwhile). */
static stan_client_t *same_client(const admin_op_t *op)
{
    stan_client_t *cl = stan_client_find(op->st, op->client_id, strlen(op->client_id));
    if (!cl || cl->conn_id_len != op->conn_id_len ||
        (cl->conn_id_len && memcmp(cl->conn_id, op->conn_id, cl->conn_id_len) != 0))
        return NULL;
    return cl;
}

static void stage_close_client(admin_op_t *op)
{
    stan_client_t *cl = same_client(op);
    if (!cl) return; /* gone already: nothing left to close */
    const list_node_t *n;
    list_foreach (n, &cl->subs)
        op->res.count++;
    stan_client_stage_close(op->st, cl);
}

static void done_close_client(admin_op_t *op, int status)
{
    stan_client_t *cl = same_client(op);
    if (status != 0) {
        op->res.count = 0;
        return;
    }
    if (cl) stan_client_close(op->st, cl);
}

int stan_admin_close_client(stan_t *st, const char *client_id, stan_admin_fn fn, void *arg,
                            char *err, size_t errlen)
{
    if (st->shutting_down) return fail(STZ_ECANCELED, err, errlen, "the server is shutting down");
    stan_client_t *cl = client_id ? stan_client_find(st, client_id, strlen(client_id)) : NULL;
    if (!cl)
        return fail(STZ_ENOENT, err, errlen, "no such client \"%s\"", client_id ? client_id : "");
    admin_op_t *op = op_new(st, OP_CLOSE_CLIENT, fn, arg);
    op->client_id = xstrdup(cl->id);
    op->conn_id = xmemdup0(cl->conn_id, cl->conn_id_len);
    op->conn_id_len = cl->conn_id_len;
    op_try(op);
    return 0;
}

/* ---- reading a message ---------------------------------------------------------------- */

int stan_admin_msg_read(stan_t *st, const char *channel, uint64_t seq,
                        void (*fn)(void *arg, const stan_admin_msg_t *m), void *arg, char *err,
                        size_t errlen)
{
    stan_channel_t *ch = find_channel(st, channel, err, errlen);
    if (!ch) return STZ_ENOENT;
    if (seq == 0) return fail(STZ_EINVAL, err, errlen, "sequences start at 1");
    if (store_read_begin(st->store) != STZ_OK)
        return fail(STZ_EIO, err, errlen, "cannot read the store");
    int rc = STZ_OK;
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, ch->id, seq);
    store_val_t v;
    stan_msgval_t mv;
    int got =
        seq <= STAN_MAX_SEQ ? store_get(st->store, STORE_DB_MSGS, key, sizeof key, &v) : STZ_ENOENT;
    if (got == STZ_ENOENT) {
        rc = fail(STZ_ENOENT, err, errlen, "message %llu of channel \"%s\" is not stored",
                  (unsigned long long)seq, channel);
    } else if (got != STZ_OK || !stan_msg_decode(v.p, v.len, &mv)) {
        rc = fail(STZ_EIO, err, errlen, "message %llu of channel \"%s\" is damaged",
                  (unsigned long long)seq, channel);
    } else {
        stan_dead_info_t dead;
        bool is_dead = stan_dead_lookup(st, ch, seq, &dead) == 0;
        stan_admin_msg_t m = {.channel = ch->name,
                              .seq = seq,
                              .ts = mv.ts,
                              .data = mv.data,
                              .len = mv.len,
                              .reply = mv.reply,
                              .reply_len = mv.reply_len,
                              .dead = is_dead ? &dead : NULL};
        fn(arg, &m);
    }
    store_read_end(st->store);
    return rc;
}

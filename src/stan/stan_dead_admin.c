/* stan_dead_admin: the admin commands on dead letters (stan_admin.h): listing a channel's dead
 * letters, and requeueing them onto their origin channel through the publish staging, each
 * record marked with the sequence its message got back, in the same batch. Above stan_dead and
 * stan_pub. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "stan_admin.h"
#include "stan_channel.h"
#include "stan_dead.h"
#include "stan_keys.h"
#include "stan_pub.h"
#include "store.pb-c.h"
#include "xalloc.h"

/* The origin channel and its dead-letter channel (NULL if there is none yet). */
static int find_channels(stan_t *st, const char *channel, stan_channel_t **ch, stan_channel_t **dch,
                         char *err, size_t errlen)
{
    const char *why = NULL;
    *ch = stan_channel_get(st, channel, strlen(channel), false, &why);
    if (!*ch) {
        snprintf(err, errlen, "no such channel \"%s\"", channel);
        return STZ_ENOENT;
    }
    if (!stan_dead_channel_name(*ch, st->dead_name, sizeof st->dead_name)) {
        snprintf(err, errlen, "the dead-letter channel's name of \"%s\" is too long", channel);
        return STZ_EINVAL;
    }
    *dch = stan_channel_get(st, st->dead_name, strlen(st->dead_name), false, &why);
    if (*dch && !(*dch)->holds_dead) *dch = NULL;
    return 0;
}

/* fn for each dead letter of dch that came from origin, in sequence order (within a read
 * view); stops when fn returns false. */
static void walk(stan_t *st, stan_channel_t *dch, const char *origin,
                 bool (*fn)(void *arg, const stan_dead_info_t *d), void *arg)
{
    store_cursor_t *c = store_cursor_open(st->store, STORE_DB_DEAD);
    if (!c) return;
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, dch->id, 0);
    store_val_t k, v;
    int rc = store_cursor_seek(c, key, sizeof key, &k, &v);
    for (; rc == STZ_OK && k.len == STAN_MSG_KEY && stan_key_msg_chan(k.p) == dch->id;
         rc = store_cursor_next(c, &k, &v)) {
        stan_dead_info_t d;
        if (stan_dead_decode(st, dch, stan_key_msg_seq(k.p), &v, &d) != 0) continue;
        if (strcmp(d.origin, origin) == 0 && !fn(arg, &d)) break;
    }
    store_cursor_close(c);
}

/* ---- listing -------------------------------------------------------------------------- */

typedef struct list_walk {
    size_t offset, limit, seen, handed;
    void (*fn)(void *arg, const stan_dead_info_t *d);
    void *arg;
} list_walk_t;

static bool list_one(void *arg, const stan_dead_info_t *d)
{
    list_walk_t *w = arg;
    if (w->seen++ >= w->offset && (!w->limit || w->handed < w->limit)) {
        w->handed++;
        w->fn(w->arg, d);
    }
    return true; /* on to the end: the total counts them all */
}

int stan_admin_foreach_dead(stan_t *st, const char *channel, size_t offset, size_t limit,
                            void (*fn)(void *arg, const stan_dead_info_t *d), void *arg,
                            uint64_t *total, const char **dead_channel, char *err, size_t errlen)
{
    stan_channel_t *ch, *dch;
    *total = 0;
    int rc = find_channels(st, channel, &ch, &dch, err, errlen);
    if (rc != 0) return rc;
    if (dead_channel) *dead_channel = st->dead_name;
    if (!dch) return 0;
    if (store_read_begin(st->store) != STZ_OK) {
        snprintf(err, errlen, "store: cannot begin a read");
        return STZ_EIO;
    }
    list_walk_t w = {.offset = offset, .limit = limit, .fn = fn, .arg = arg};
    walk(st, dch, ch->name, list_one, &w);
    store_read_end(st->store);
    *total = w.seen;
    return 0;
}

/* ---- requeue -------------------------------------------------------------------------- */

/* One requeue command: answered when the last of its messages' batches ended. */
typedef struct requeue {
    stan_t *st;
    stan_channel_t *ch;
    size_t waiting;
    stan_admin_result_t r;
    stan_admin_fn fn;
    void *arg;
} requeue_t;

/* One message of it: dead letter seq of dch. */
typedef struct requeue_item {
    requeue_t *rq;
    stan_channel_t *dch;
    uint64_t dead_seq;
} requeue_item_t;

static void requeue_item_done(requeue_item_t *it, int status, bool stored)
{
    requeue_t *rq = it->rq;
    free(it);
    if (stored) rq->r.count++;
    if (status != 0 && rq->r.status == 0) rq->r.status = status;
    if (--rq->waiting) return;
    rq->r.msgs = rq->ch->msgs;
    rq->r.first_seq = rq->ch->last_seq ? rq->ch->first_seq : 0;
    rq->r.last_seq = rq->ch->last_seq;
    rq->fn(rq->arg, &rq->r);
    free(rq);
}

static void on_dropped(void *arg, int status)
{
    requeue_item_done(arg, status, false);
}

/* Rewrites the record with the sequence the message gets on its origin. */
static bool on_requeue_staged(stan_t *st, void *arg, uint64_t seq)
{
    requeue_item_t *it = arg;
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, it->dch->id, it->dead_seq);
    store_val_t v;
    Spb__DeadRecord *r = NULL;
    if (store_read_begin(st->store) == STZ_OK) {
        if (store_get(st->store, STORE_DB_DEAD, key, sizeof key, &v) == STZ_OK)
            r = spb__dead_record__unpack(NULL, v.len, v.p);
        store_read_end(st->store);
    }
    if (!r) { /* removed meanwhile (its dead letter evicted): nothing to requeue */
        stan_commit_on(&st->commit, on_dropped, it);
        return false;
    }
    r->requeued_seq = seq;
    size_t n = spb__dead_record__get_packed_size(r);
    spb__dead_record__pack(r, store_put_reserve(st->store, STORE_DB_DEAD, key, sizeof key, n));
    spb__dead_record__free_unpacked(r, NULL);
    return true;
}

static void on_requeue_done(stan_t *st, void *arg, int status)
{
    (void)st;
    requeue_item_done(arg, status, status == 0);
}

static const stan_pub_hooks_t requeue_hooks = {on_requeue_staged, on_requeue_done};

/* Collecting what to requeue. */
typedef struct requeue_walk {
    stan_t *st;
    requeue_t *rq;
    stan_channel_t *dch;
    uint64_t only; /* a dead_seq, or 0: every one not requeued yet */
    const char *refused;
} requeue_walk_t;

static bool requeue_one(void *arg, const stan_dead_info_t *d)
{
    requeue_walk_t *w = arg;
    if (w->only ? d->dead_seq != w->only : d->requeued_seq != 0) return true;
    stan_channel_t *ch = w->rq->ch;
    stan_msgval_t mv;
    int64_t limit;
    if (!stan_msg_get(w->st->store, w->dch->id, d->dead_seq, &mv)) return !w->only;
    if (ch->next_seq + w->st->nstaged > STAN_MAX_SEQ) {
        w->refused = "sequence limit reached";
        return false;
    }
    if (stan_channel_full(ch, mv.len, &limit)) {
        w->refused = "the channel is full";
        return false;
    }
    requeue_item_t *it = xcalloc(1, sizeof *it);
    *it = (requeue_item_t){w->rq, w->dch, d->dead_seq};
    w->rq->waiting++;
    stan_pub_internal(w->st, ch, mv.reply, mv.reply_len, mv.data, mv.len, &requeue_hooks, it);
    return !w->only;
}

/* Nothing to requeue was found, or only part of it: the answer still waits for a batch. */
static void on_nothing(void *arg, int status)
{
    requeue_item_t *it = arg;
    requeue_item_done(it, status, false);
}

int stan_admin_requeue(stan_t *st, const char *channel, uint64_t dead_seq, stan_admin_fn fn,
                       void *arg, char *err, size_t errlen)
{
    if (st->shutting_down) {
        snprintf(err, errlen, "the server is shutting down");
        return STZ_ECANCELED;
    }
    stan_channel_t *ch, *dch;
    int rc = find_channels(st, channel, &ch, &dch, err, errlen);
    if (rc != 0) return rc;
    if (store_read_begin(st->store) != STZ_OK) {
        snprintf(err, errlen, "store: cannot begin a read");
        return STZ_EIO;
    }
    requeue_t *rq = xcalloc(1, sizeof *rq);
    *rq = (requeue_t){.st = st, .ch = ch, .fn = fn, .arg = arg, .waiting = 1};
    requeue_walk_t w = {st, rq, dch, dead_seq, NULL};
    if (dch) walk(st, dch, ch->name, requeue_one, &w);
    store_read_end(st->store);
    if (rq->waiting == 1 && (dead_seq || w.refused)) {
        free(rq);
        if (w.refused) {
            snprintf(err, errlen, "cannot requeue onto \"%s\": %s", channel, w.refused);
            return STZ_EBUSY;
        }
        snprintf(err, errlen, "no dead letter #%llu of \"%s\"", (unsigned long long)dead_seq,
                 channel);
        return STZ_ENOENT;
    }
    /* The command's own share of waiting: ends with the batch being built. */
    requeue_item_t *self = xcalloc(1, sizeof *self);
    self->rq = rq;
    stan_commit_on(&st->commit, on_nothing, self);
    return 0;
}

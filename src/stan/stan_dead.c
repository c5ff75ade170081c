/* stan_dead: see stan_dead.h. */
#include "stan_dead.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "stan_channel.h"
#include "stan_keys.h"
#include "stan_pending.h"
#include "stan_pub.h"
#include "stan_sub.h"
#include "store.pb-c.h"
#include "xalloc.h"

/* ---- records -------------------------------------------------------------------------- */

int stan_dead_lookup(stan_t *st, stan_channel_t *ch, uint64_t seq, stan_dead_info_t *out)
{
    if (!ch->holds_dead) return STZ_ENOENT;
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, ch->id, seq);
    store_val_t v;
    int rc = store_get(st->store, STORE_DB_DEAD, key, sizeof key, &v);
    return rc == STZ_OK ? stan_dead_decode(st, ch, seq, &v, out) : rc;
}

int stan_dead_decode(stan_t *st, stan_channel_t *ch, uint64_t seq, const store_val_t *v,
                     stan_dead_info_t *out)
{
    Spb__DeadRecord *r = spb__dead_record__unpack(NULL, v->len, v->p);
    if (!r) return STZ_EIO;
    /* Kept until the next lookup: the strings the caller gets point into it. */
    if (st->dead_last) spb__dead_record__free_unpacked(st->dead_last, NULL);
    st->dead_last = r;
    *out = (stan_dead_info_t){.dead_channel = ch->name,
                              .dead_seq = seq,
                              .origin = r->origin,
                              .origin_seq = r->origin_seq,
                              .deliveries = r->deliveries,
                              .last_client = r->last_client,
                              .subscription = r->subscription,
                              .dead_ns = r->dead_ns,
                              .requeued_seq = r->requeued_seq};
    return 0;
}

bool stan_dead_channel_name(const stan_channel_t *ch, char *out, size_t outlen)
{
    const char *tmpl = ch->limits.dead_letter ? ch->limits.dead_letter : CONFIG_DEAD_LETTER_DEFAULT;
    size_t tlen = strlen(CONFIG_DEAD_LETTER_TOKEN), n = 0;
    for (const char *p = tmpl; *p;) {
        bool token = strncmp(p, CONFIG_DEAD_LETTER_TOKEN, tlen) == 0;
        const char *part = token ? ch->name : p;
        size_t len = token ? ch->name_len : 1;
        if (n + len >= outlen) return false;
        memcpy(out + n, part, len);
        n += len;
        p += token ? tlen : 1;
    }
    out[n] = '\0';
    return true;
}

void stan_dead_restore(stan_t *st)
{
    store_cursor_t *c = store_cursor_open(st->store, STORE_DB_DEAD);
    if (!c) return;
    size_t it;
    /* One seek per channel, whatever the number of dead letters. */
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        uint8_t key[STAN_MSG_KEY];
        stan_key_msg(key, ch->id, 0);
        store_val_t k, v;
        ch->holds_dead = store_cursor_seek(c, key, sizeof key, &k, &v) == STZ_OK &&
                         k.len == STAN_MSG_KEY && stan_key_msg_chan(k.p) == ch->id;
    }
    store_cursor_close(c);
}

void stan_dead_free(stan_t *st)
{
    if (st->dead_last) spb__dead_record__free_unpacked(st->dead_last, NULL);
    st->dead_last = NULL;
}

/* ---- dead-lettering ------------------------------------------------------------------- */

/* A message on its way to the dead-letter channel: what its record says, and what a failed
 * batch must put back. */
typedef struct dead_job {
    stan_sub_t *s; /* holds a reference */
    uint64_t seq;  /* on the origin */
    uint32_t count, size;
    stan_channel_t *dead_ch;
    char subscription[STAN_MAX_NAME + 32];
} dead_job_t;

static void job_free(stan_t *st, dead_job_t *j)
{
    stan_sub_unref(st, j->s);
    free(j);
}

static void describe(const stan_sub_t *s, char *out, size_t outlen)
{
    if (s->qgroup)
        snprintf(out, outlen, "%s:%s", s->durable ? "durable-queue" : "queue", s->qgroup);
    else if (s->durable)
        snprintf(out, outlen, "durable:%s", s->durable);
    else
        snprintf(out, outlen, "inbox");
}

static void put_record(stan_t *st, const dead_job_t *j, uint64_t dead_seq)
{
    Spb__DeadRecord r = SPB__DEAD_RECORD__INIT;
    r.origin = j->s->ch->name;
    r.origin_seq = j->seq;
    r.deliveries = j->count;
    r.last_client = j->s->client_id;
    r.subscription = (char *)j->subscription;
    r.dead_ns = clock_wall_ns();
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, j->dead_ch->id, dead_seq);
    size_t n = spb__dead_record__get_packed_size(&r);
    spb__dead_record__pack(&r, store_put_reserve(st->store, STORE_DB_DEAD, key, sizeof key, n));
}

/* In the batch being built: the record, the unacked row gone, the subscription's count. */
static bool on_staged(stan_t *st, void *arg, uint64_t dead_seq)
{
    dead_job_t *j = arg;
    stan_sub_t *s = j->s;
    stan_pending_t *p = s->deleted ? NULL : stan_pset_find(&s->pend, j->seq);
    if (!p || !p->dead) { /* acked, handed over or removed meanwhile */
        job_free(st, j);
        return false;
    }
    j->count = p->count;
    j->size = p->size;
    put_record(st, j, dead_seq);
    j->dead_ch->holds_dead = true;
    stan_pset_drop(&s->pend, st->store, p);
    s->dead_total++;
    stan_sub_mark_dirty(st, s);
    stan_sub_arm_timer(s);
    stan_sub_mark_ready(st, s); /* room for one more */
    return true;
}

/* The batch ended. Failed: the message is unacked again (due at once) and the count as on
 * disk; the dead-letter channel's sequences were rolled back by stan_pub. */
static void on_done(stan_t *st, void *arg, int status)
{
    dead_job_t *j = arg;
    stan_sub_t *s = j->s;
    if (status == 0) {
        st->dead_letters_total++;
        LOG_D("channel \"%s\": message %llu dead-lettered to \"%s\" after %u deliveries",
              s->ch->name, (unsigned long long)j->seq, j->dead_ch->name, j->count);
    } else if (status != STZ_ECANCELED && !s->deleted) {
        s->dead_total--;
        stan_sub_mark_dirty(st, s);
        if (!stan_pset_find(&s->pend, j->seq)) {
            /* Its row's deletion is replayed in front of the next batch (a redo delete), and
             * the row written again after it, as a new entry's is. */
            stan_pending_t *p = stan_pset_add(&s->pend, j->seq, j->count, j->size, UINT64_MAX, 0);
            stan_pset_due_now(&s->pend, p); /* first: it was due before the others */
            stan_sub_pset_changed(st, s, stan_pset_touch(&s->pend, p) | STAN_PSET_READY);
            stan_sub_arm_timer(s);
        }
    }
    job_free(st, j);
}

static const stan_pub_hooks_t dead_hooks = {on_staged, on_done};

static void warn_once(stan_channel_t *ch, const char *why)
{
    if (ch->warned_dead) return;
    ch->warned_dead = true;
    LOG_W("channel \"%s\": cannot write dead letters (%s): messages past max_deliveries are "
          "redelivered",
          ch->name, why);
}

/* The dead-letter channel of ch (created if needed), or NULL with the reason in *why. */
static stan_channel_t *dead_channel(stan_t *st, stan_channel_t *ch, const char **why)
{
    char name[STAN_MAX_NAME + 1];
    if (!stan_dead_channel_name(ch, name, sizeof name)) {
        *why = "dead-letter channel name too long";
        return NULL;
    }
    stan_channel_t *d = stan_channel_get(st, name, strlen(name), true, why);
    if (d == ch) {
        *why = "the dead-letter channel is the channel itself";
        return NULL;
    }
    return d;
}

bool stan_dead_take(stan_t *st, stan_sub_t *s, stan_pending_t *p)
{
    if (!p->dead) {
        const char *why = NULL;
        stan_channel_t *d = dead_channel(st, s->ch, &why);
        stan_msgval_t mv;
        int64_t limit;
        if (d && d->next_seq + st->nstaged > STAN_MAX_SEQ) {
            why = "sequence limit reached";
            d = NULL;
        }
        /* Gone (evicted): delivery drops it as it does for any message gone. */
        if (d && !stan_msg_get(st->store, s->ch->id, p->seq, &mv)) return false;
        if (d && stan_channel_full(d, mv.len, &limit)) {
            why = "the dead-letter channel is full";
            d = NULL;
        }
        if (!d) {
            warn_once(s->ch, why ? why : "unknown");
            return false;
        }
        dead_job_t *j = xcalloc(1, sizeof *j);
        j->s = s;
        s->refs++;
        j->seq = p->seq;
        j->dead_ch = d;
        describe(s, j->subscription, sizeof j->subscription);
        stan_pub_internal(st, d, mv.reply, mv.reply_len, mv.data, mv.len, &dead_hooks, j);
        p->dead = true;
    }
    /* Not due again: its batch decides. */
    stan_pset_park(&s->pend, p);
    return true;
}

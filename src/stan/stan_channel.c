/* stan_channel: see stan_channel.h. */
#include "stan_channel.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "stan_keys.h"
#include "store.pb-c.h"
#include "subject.h"
#include "xalloc.h"

bool stan_channel_name_valid(const char *name, size_t len)
{
    return subject_valid_channel(name, len);
}

static stan_channel_t *channel_new(stan_t *st, uint32_t id, const char *name, size_t len)
{
    stan_channel_t *ch = xcalloc(1, sizeof *ch);
    ch->id = id;
    ch->name = xstrndup(name, len);
    ch->name_len = len;
    ch->first_seq = 1;
    ch->last_seq = 0;
    ch->next_seq = 1;
    ch->last_activity_ms = clock_mono_ms();
    list_init(&ch->subs);
    strmap_init(&ch->qgroups);
    strmap_init(&ch->durables);
    config_channel_limits(st->cfg, ch->name, &ch->limits);
    strmap_put(&st->channels, name, len, ch);
    return ch;
}

static void on_record_commit(void *arg, int status)
{
    stan_channel_t *ch = arg;
    if (status != 0)
        ch->rec = STAN_REC_NONE;
    else if (ch->rec == STAN_REC_STAGED)
        ch->rec = STAN_REC_STORED;
}

static void put_record(stan_t *st, stan_channel_t *ch)
{
    Spb__ChannelRecord r = SPB__CHANNEL_RECORD__INIT;
    r.id = ch->id;
    r.name = ch->name;
    r.created = clock_wall_ns();
    r.last_seq = ch->last_seq;
    r.last_cum = ch->cum_last;
    r.last_ts = ch->last_ts;
    size_t n = spb__channel_record__get_packed_size(&r);
    void *p = store_put_reserve(st->store, STORE_DB_CHANNELS, ch->name, ch->name_len, n);
    if (!p) { /* names are checked when the channel is created: cannot happen */
        LOG_E("channel \"%s\": name too long for the store", ch->name);
        return;
    }
    spb__channel_record__pack(&r, p);
    ch->rec = STAN_REC_STAGED;
    stan_commit_on(&st->commit, on_record_commit, ch);
}

void stan_channel_ensure_record(stan_t *st, stan_channel_t *ch)
{
    if (ch->rec == STAN_REC_NONE) put_record(st, ch);
}

stan_channel_t *stan_channel_get(stan_t *st, const char *name, size_t len, bool create,
                                 const char **err)
{
    stan_channel_t *ch = strmap_get(&st->channels, name, len);
    if (ch && ch->deleting) {
        if (err) *err = "stan: channel is being deleted";
        return NULL;
    }
    if (ch || !create) {
        if (!ch && err) *err = "stan: unknown channel";
        return ch;
    }
    if (len > STAN_MAX_NAME) {
        if (err) *err = "stan: channel name too long (max " STAN_MAX_NAME_TEXT " bytes)";
        return NULL;
    }
    if (!stan_channel_name_valid(name, len)) {
        if (err) *err = "stan: invalid subject";
        return NULL;
    }
    if ((st->cfg->max_channels > 0 &&
         (int64_t)strmap_count(&st->channels) >= st->cfg->max_channels) ||
        st->next_channel_id > STAN_MAX_CHANNEL_ID) {
        if (err) *err = "too many channels";
        return NULL;
    }
    ch = channel_new(st, st->next_channel_id++, name, len);
    st->meta_dirty = true;
    put_record(st, ch);
    LOG_D("Channel \"%s\" created", ch->name);
    return ch;
}

stan_channel_t *stan_channel_by_id(stan_t *st, uint32_t id)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&st->channels, &it); e;
         e = strmap_next(&st->channels, &it, e)) {
        stan_channel_t *ch = e->val;
        if (ch->id == id) return ch;
    }
    return NULL;
}

/* Reads the first and last stored message of the channel: two cursor seeks, whatever the
 * number of messages (start-up time must not grow with the store). Sequences come from the keys,
 * so a damaged value never makes a used sequence look free; `rec_*` is what the channel record
 * says its end was, which is all there is once every message has expired. */
static void load_bounds(stan_t *st, stan_channel_t *ch, uint64_t rec_last, uint64_t rec_cum,
                        int64_t rec_ts)
{
    uint8_t lo[STAN_MSG_KEY], hi[STAN_MSG_KEY];
    stan_key_msg(lo, ch->id, 0);
    stan_key_msg(hi, ch->id, STAN_MAX_SEQ);
    store_cursor_t *c = store_cursor_open(st->store, STORE_DB_MSGS);
    store_val_t k, v;
    stan_msgval_t first, last;
    bool have = false;
    if (c && store_cursor_seek(c, lo, sizeof lo, &k, &v) == STZ_OK && k.len == STAN_MSG_KEY &&
        stan_key_msg_chan(k.p) == ch->id) {
        ch->first_seq = stan_key_msg_seq(k.p);
        if (stan_msg_decode(v.p, v.len, &first)) ch->base_cum = first.cum - first.len;
        if (store_cursor_seek_le(c, hi, sizeof hi, &k, &v) == STZ_OK && k.len == STAN_MSG_KEY &&
            stan_key_msg_chan(k.p) == ch->id) {
            have = true;
            ch->last_seq = stan_key_msg_seq(k.p);
            if (stan_msg_decode(v.p, v.len, &last)) {
                ch->cum_last = last.cum;
                ch->last_ts = last.ts;
            } else {
                LOG_W("channel \"%s\": message %llu is damaged", ch->name,
                      (unsigned long long)ch->last_seq);
                ch->cum_last = ch->base_cum;
            }
        }
    }
    if (c) store_cursor_close(c);
    if (!have) {
        ch->first_seq = rec_last + 1;
        ch->last_seq = rec_last;
        ch->base_cum = ch->cum_last = rec_cum;
        ch->last_ts = rec_ts;
    } else if (rec_last > ch->last_seq) {
        /* Cannot happen with this server's writes; if it does, never reuse what was used. */
        ch->last_seq = rec_last;
        ch->cum_last = rec_cum > ch->cum_last ? rec_cum : ch->cum_last;
    }
    ch->staged_base_cum = ch->base_cum;
    ch->msgs = have ? ch->last_seq - ch->first_seq + 1 : 0;
    ch->bytes = ch->cum_last - ch->base_cum;
    ch->next_seq = ch->last_seq + 1;
    ch->cum_next = ch->cum_last;
    ch->evict_to = ch->first_seq - 1;
}

int stan_channel_restore(stan_t *st, const void *rec, size_t len)
{
    Spb__ChannelRecord *r = spb__channel_record__unpack(NULL, len, rec);
    if (!r) {
        LOG_W("store: skipping a damaged channel record");
        return STZ_EIO;
    }
    stan_channel_t *ch = channel_new(st, r->id, r->name, strlen(r->name));
    ch->rec = STAN_REC_STORED;
    if (r->id >= st->next_channel_id) st->next_channel_id = r->id + 1;
    uint64_t rec_last = r->last_seq > STAN_MAX_SEQ ? STAN_MAX_SEQ : r->last_seq;
    uint64_t rec_cum = r->last_cum;
    int64_t rec_ts = r->last_ts;
    spb__channel_record__free_unpacked(r, NULL);
    load_bounds(st, ch, rec_last, rec_cum, rec_ts);
    return 0;
}

bool stan_channel_committed(stan_channel_t *ch, uint64_t seq, uint64_t cum)
{
    if (seq <= ch->last_seq) return false;
    ch->last_seq = seq;
    ch->cum_last = cum;
    if (ch->evict_to >= ch->first_seq) {
        ch->first_seq = ch->evict_to + 1;
        ch->base_cum = ch->staged_base_cum;
    }
    ch->msgs = ch->last_seq >= ch->first_seq ? ch->last_seq - ch->first_seq + 1 : 0;
    ch->bytes = ch->cum_last - ch->base_cum;
    return true;
}

void stan_channel_rollback(stan_channel_t *ch)
{
    ch->next_seq = ch->last_seq + 1;
    ch->cum_next = ch->cum_last;
    ch->evict_to = ch->first_seq - 1;
    ch->staged_base_cum = ch->base_cum;
    /* Its record, if it was in the failed batch, is staged again by the next message or
     * subscription record that needs it (see on_record_commit). */
}

/* The running total before seq: from the store for committed messages, from the staged list
 * for messages of the batch being built. */
static uint64_t cum_before(stan_t *st, stan_channel_t *ch, uint64_t seq)
{
    /* The current first message (the common case): its running total before it is known. */
    uint64_t first = ch->evict_to + 1 > ch->first_seq ? ch->evict_to + 1 : ch->first_seq;
    if (seq == first) return ch->staged_base_cum;
    if (seq > ch->last_seq) {
        /* In the batch being built: stan_pub.c moved them to batch_msgs. */
        list_node_t *n;
        list_foreach (n, &st->batch_msgs) {
            stan_staged_t *s = LIST_ITEM(n, stan_staged_t, link);
            if (s->ch == ch && s->seq == seq) return s->cum - s->len;
        }
        return ch->cum_next;
    }
    stan_msgval_t m;
    uint64_t r = ch->staged_base_cum;
    if (store_read_begin(st->store) != STZ_OK) return r;
    if (stan_msg_get(st->store, ch->id, seq, &m)) r = m.cum - m.len;
    store_read_end(st->store);
    return r;
}

void stan_channel_stage_dead_removed(stan_t *st, stan_channel_t *ch, uint64_t from, uint64_t to)
{
    if (!ch->holds_dead || from > to) return;
    uint8_t lo[STAN_MSG_KEY], hi[STAN_MSG_KEY];
    stan_key_msg(lo, ch->id, from);
    stan_key_msg(hi, ch->id, to);
    store_del_range(st->store, STORE_DB_DEAD, lo, sizeof lo, hi, sizeof hi);
}

/* Stages the removal of messages [first, new_first) of the channel (by its limits, or purged). */
static void evict(stan_t *st, stan_channel_t *ch, uint64_t new_first, bool by_limits)
{
    uint64_t first = ch->evict_to + 1 > ch->first_seq ? ch->evict_to + 1 : ch->first_seq;
    if (new_first <= first) return;
    uint8_t lo[STAN_MSG_KEY], hi[STAN_MSG_KEY];
    stan_key_msg(lo, ch->id, first);
    stan_key_msg(hi, ch->id, new_first - 1);
    store_del_range(st->store, STORE_DB_MSGS, lo, sizeof lo, hi, sizeof hi);
    stan_channel_stage_dead_removed(st, ch, first, new_first - 1);
    ch->staged_base_cum = cum_before(st, ch, new_first);
    ch->evict_to = new_first - 1;
    /* Every message goes: the record keeps the channel's end (written with the same batch),
     * so that a restart does not hand out these sequences again. */
    if (new_first > ch->last_seq && ch->next_seq == ch->last_seq + 1) put_record(st, ch);
    if (by_limits && !ch->warned_limit) {
        ch->warned_limit = true;
        LOG_W("channel \"%s\": limits reached, the oldest messages are being dropped", ch->name);
    }
}

const char *stan_channel_full(const stan_channel_t *ch, size_t len, int64_t *limit)
{
    const config_limits_t *l = &ch->limits;
    if (l->discard != CONFIG_DISCARD_NEW) return NULL;
    /* Committed counts still include evictions not committed yet: never too generous. */
    if (l->max_msgs > 0 && ch->msgs + ch->pend_msgs >= (uint64_t)l->max_msgs) {
        *limit = l->max_msgs;
        return "max_msgs";
    }
    if (l->max_bytes > 0 && ch->bytes + ch->pend_bytes + len > (uint64_t)l->max_bytes) {
        *limit = l->max_bytes;
        return "max_bytes";
    }
    return NULL;
}

/* After messages were staged: drop the oldest ones beyond max_msgs or max_bytes, keeping at
 * least the newest message, as NSS does. */
void stan_channel_stage_limits(stan_t *st, stan_channel_t *ch)
{
    if (ch->limits.discard == CONFIG_DISCARD_NEW) return;
    uint64_t last = ch->next_seq - 1;
    uint64_t first = ch->evict_to + 1 > ch->first_seq ? ch->evict_to + 1 : ch->first_seq;
    if (last < first) return;
    const config_limits_t *l = &ch->limits;
    uint64_t new_first = first;
    if (l->max_msgs > 0 && last - first + 1 > (uint64_t)l->max_msgs)
        new_first = last - (uint64_t)l->max_msgs + 1;
    if (l->max_bytes > 0 && ch->cum_next - cum_before(st, ch, new_first) > (uint64_t)l->max_bytes) {
        /* The smallest first sequence that fits, by binary search on running totals. */
        uint64_t lo = new_first, hi = last;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (ch->cum_next - cum_before(st, ch, mid) <= (uint64_t)l->max_bytes)
                hi = mid;
            else
                lo = mid + 1;
        }
        new_first = lo;
    }
    evict(st, ch, new_first, true);
}

/* redo: memory forgets the channel at once (max_inactivity), so the deletes are staged again
 * after a failed batch until one commits (store_del_redo); the admin delete-channel keeps the
 * channel in memory until its batch committed (plain deletes). */
static void stage_delete(stan_t *st, stan_channel_t *ch, bool redo)
{
    int (*del_range)(store_t *, store_db_t, const void *, size_t, const void *, size_t) =
        redo ? store_del_range_redo : store_del_range;
    uint8_t lo[STAN_MSG_KEY], hi[STAN_MSG_KEY];
    stan_key_msg(lo, ch->id, 0);
    stan_key_msg(hi, ch->id, STAN_MAX_SEQ);
    del_range(st->store, STORE_DB_MSGS, lo, sizeof lo, hi, sizeof hi);
    if (ch->holds_dead) del_range(st->store, STORE_DB_DEAD, lo, sizeof lo, hi, sizeof hi);
    (redo ? store_del_redo : store_del)(st->store, STORE_DB_CHANNELS, ch->name, ch->name_len);
}

void stan_channel_stage_delete(stan_t *st, stan_channel_t *ch)
{
    stage_delete(st, ch, false);
}

/* Its queue groups and durables went with its subscriptions. */
static void channel_release(stan_channel_t *ch)
{
    strmap_free(&ch->qgroups);
    strmap_free(&ch->durables);
    free(ch->name);
    free(ch);
}

void stan_channel_free(stan_t *st, stan_channel_t *ch)
{
    strmap_del(&st->channels, ch->name, ch->name_len);
    channel_release(ch);
}

static void on_evict_commit(void *arg, int status)
{
    stan_channel_t *ch = arg;
    if (status != 0) {
        stan_channel_rollback(ch);
        return;
    }
    ch->first_seq = ch->evict_to + 1;
    ch->base_cum = ch->staged_base_cum;
    ch->msgs = ch->last_seq >= ch->first_seq ? ch->last_seq - ch->first_seq + 1 : 0;
    ch->bytes = ch->cum_last - ch->base_cum;
}

uint64_t stan_channel_seq_at_time(stan_t *st, stan_channel_t *ch, int64_t ts)
{
    if (store_read_begin(st->store) != STZ_OK) return ch->first_seq;
    uint64_t seq = stan_msg_seq_at_time(st->store, ch->id, ch->first_seq, ch->last_seq, ts);
    store_read_end(st->store);
    return seq;
}

/* Stages the removal of the messages older than max_age. */
static void expire_old(stan_t *st, stan_channel_t *ch, int64_t now_ns)
{
    int64_t cutoff = stan_ns_sub(now_ns, stan_ms_to_ns(ch->limits.max_age_ms));
    /* The first message young enough to stay. */
    uint64_t keep = stan_channel_seq_at_time(st, ch, cutoff);
    if (keep > ch->first_seq) {
        evict(st, ch, keep, true);
        /* No new message carries it this time: apply it when this batch commits. */
        stan_commit_on(&st->commit, on_evict_commit, ch);
    }
}

uint64_t stan_channel_stage_purge(stan_t *st, stan_channel_t *ch, uint64_t upto, uint64_t *from,
                                  uint64_t *to)
{
    uint64_t first = ch->evict_to + 1 > ch->first_seq ? ch->evict_to + 1 : ch->first_seq;
    uint64_t last = upto && upto < ch->last_seq ? upto : ch->last_seq;
    if (last < first) return 0;
    evict(st, ch, last + 1, false);
    stan_commit_on(&st->commit, on_evict_commit, ch);
    *from = first;
    *to = last;
    return last - first + 1;
}

void stan_channel_tick(stan_t *st)
{
    uint64_t now_ms = clock_mono_ms();
    int64_t now_ns = clock_wall_ns();
    size_t it;
    strmap_entry_t *e = strmap_first(&st->channels, &it);
    while (e) {
        strmap_entry_t *next = strmap_next(&st->channels, &it, e);
        stan_channel_t *ch = e->val;
        e = next;
        if (ch->deleting) continue;
        const config_limits_t *l = &ch->limits;
        bool settled = ch->next_seq == ch->last_seq + 1; /* nothing of it in a batch */
        if (l->max_inactivity_ms > 0 && ch->nsubs == 0 && settled && !store_in_flight(st->store) &&
            !stan_commit_waiting(&st->commit) && list_empty(&st->staged) &&
            now_ms - ch->last_activity_ms >= (uint64_t)l->max_inactivity_ms) {
            LOG_I("channel \"%s\" removed after %lld ms of inactivity", ch->name,
                  (long long)l->max_inactivity_ms);
            stage_delete(st, ch, true);
            stan_channel_free(st, ch);
            continue;
        }
        if (l->max_age_ms > 0 && ch->last_seq >= ch->first_seq && settled &&
            ch->evict_to < ch->first_seq)
            expire_old(st, ch, now_ns);
    }
}

void stan_channel_free_all(stan_t *st)
{
    size_t it;
    strmap_entry_t *e = strmap_first(&st->channels, &it);
    while (e) {
        strmap_entry_t *next = strmap_next(&st->channels, &it, e);
        /* Its queue groups went with their members (stan_sub_free_all). */
        channel_release(e->val);
        e = next;
    }
}

uint64_t stan_channel_cum_at(stan_t *st, stan_channel_t *ch, uint64_t seq)
{
    if (seq >= ch->last_seq) return ch->cum_last;
    if (seq < ch->first_seq) return ch->base_cum;
    stan_msgval_t m;
    uint64_t r = ch->base_cum;
    if (store_read_begin(st->store) != STZ_OK) return r;
    if (stan_msg_get(st->store, ch->id, seq, &m)) r = m.cum;
    store_read_end(st->store);
    return r;
}

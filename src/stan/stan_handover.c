/* stan_handover: see stan_handover.h. */
#include "stan_handover.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "stan_channel.h"
#include "stan_sub.h"
#include "xalloc.h"

stan_sub_t *stan_handover_heir(stan_t *st, const stan_sub_t *s)
{
    stan_sub_t *heir = NULL;
    if (!s->qg) return NULL;
    list_node_t *n;
    list_foreach (n, &s->qg->members) {
        stan_sub_t *o = STAN_SUB_OF(n, qg_link);
        if (o != s && o->client && o->ready && !list_linked(&o->grace_link) &&
            stan_sub_inbox_alive(st, o) && (!heir || o->pend.count < heir->pend.count))
            heir = o;
    }
    return heir;
}

/* ---- the list and its timer ---------------------------------------------------------- */

static void on_grace_timer(uv_timer_t *t)
{
    stan_handover_run_due(t->data);
}

/* Arms the timer for the first grace to end (stops it when none is left). */
static void arm_timer(stan_t *st)
{
    list_node_t *n = list_first(&st->grace);
    if (!n || st->shutting_down) {
        if (st->grace_timer) uv_timer_stop(st->grace_timer);
        return;
    }
    if (!st->grace_timer) {
        st->grace_timer = xmalloc(sizeof *st->grace_timer);
        uv_timer_init(st->loop, st->grace_timer);
        st->grace_timer->data = st;
        uv_unref((uv_handle_t *)st->grace_timer); /* engine timers never keep the loop alive */
    }
    uint64_t due = STAN_SUB_OF(n, grace_link)->grace_due_ms, now = clock_mono_ms();
    uv_timer_start(st->grace_timer, on_grace_timer, due > now ? due - now : 0, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void stan_handover_close(stan_t *st)
{
    if (!st->grace_timer) return;
    uv_close((uv_handle_t *)st->grace_timer, on_timer_closed);
    st->grace_timer = NULL;
}

/* s's grace starts now (a grace already running keeps its end, and adds the reason). A member
 * holding nothing has nothing to hand over. */
static void start_grace(stan_t *st, stan_sub_t *s, unsigned why)
{
    if (st->shutting_down || !s->qg || !s->client || s->deleted || s->pend.count == 0) return;
    s->grace_why |= why;
    if (list_linked(&s->grace_link)) return;
    s->grace_due_ms = clock_mono_ms() + (uint64_t)st->cfg->handover_grace_ms;
    list_push_back(&st->grace, &s->grace_link);
    LOG_D("client %s, queue \"%s\" on \"%s\": %s, its %zu unacked messages go to another member "
          "in %lld ms unless it comes back",
          s->client_id, s->qgroup, s->ch->name,
          why == STAN_GRACE_HB ? "heartbeat unanswered" : "connection closed", s->pend.count,
          (long long)st->cfg->handover_grace_ms);
    if (list_first(&st->grace) == &s->grace_link) arm_timer(st);
}

/* ---- starting and ending graces ------------------------------------------------------ */

void stan_handover_on_sub_gone(void *arg, const char *subject, size_t len)
{
    stan_t *st = arg;
    uint64_t h = hmap_hash_bytes(subject, len);
    hmap_node_t *n = hmap_first_with_hash(&st->members_by_inbox, h);
    for (; n; n = hmap_next_with_hash(n, h)) {
        stan_sub_t *s = HMAP_ITEM(n, stan_sub_t, inbox_node);
        if (strncmp(s->inbox, subject, len) == 0 && s->inbox[len] == '\0')
            start_grace(st, s, STAN_GRACE_CLOSED);
    }
}

void stan_handover_client_missed(stan_t *st, list_node_t *cl_subs, bool unheard)
{
    list_node_t *n;
    list_foreach (n, cl_subs)
        start_grace(st, STAN_SUB_OF(n, cl_link), unheard ? STAN_GRACE_CLOSED : STAN_GRACE_HB);
}

void stan_handover_client_alive(stan_t *st, list_node_t *cl_subs)
{
    list_node_t *n;
    list_foreach (n, cl_subs) {
        stan_sub_t *s = STAN_SUB_OF(n, cl_link);
        s->grace_why &= ~(unsigned)STAN_GRACE_HB;
        if (s->qg) stan_sub_mark_ready(st, s); /* new messages may go to it again */
        if (!s->grace_why && list_linked(&s->grace_link)) {
            list_remove(&s->grace_link);
            LOG_D("client %s answers heartbeats again: queue \"%s\" on \"%s\" keeps its messages",
                  s->client_id, s->qgroup, s->ch->name);
        }
    }
    arm_timer(st);
}

/* ---- the move -------------------------------------------------------------------------- */

/* A failed batch cannot leave the messages on both members' rows: the heir's rows are written
 * again (stan_sub_store_failed), and s's row deletes are redo deletes (stan_pset_drop), staged
 * again by the store until a batch carrying them commits, in front of any later put of the same
 * row (the message handed back to s, say). */
void stan_handover_move(stan_t *st, stan_sub_t *s, stan_sub_t *heir)
{
    stan_sub_transfer(st, s, heir);
    stan_sub_arm_timer(s); /* nothing left to expire */
}

/* s's grace is over: it came back, or its messages go to the heir (if there is one). */
static void grace_over(stan_t *st, stan_sub_t *s, unsigned why)
{
    if (!s->client || s->pend.count == 0) return;
    if (!(why & STAN_GRACE_HB) && stan_sub_inbox_alive(st, s)) {
        LOG_D("client %s is back on queue \"%s\" on \"%s\": its messages stay", s->client_id,
              s->qgroup, s->ch->name);
        return;
    }
    stan_sub_t *heir = stan_handover_heir(st, s);
    if (!heir) {
        LOG_D("client %s, queue \"%s\" on \"%s\": no other member online, its %zu unacked "
              "messages wait for AckWait",
              s->client_id, s->qgroup, s->ch->name, s->pend.count);
        return;
    }
    LOG_D("client %s, queue \"%s\" on \"%s\": %zu unacked messages handed over to client %s",
          s->client_id, s->qgroup, s->ch->name, s->pend.count, heir->client_id);
    stan_handover_move(st, s, heir);
}

void stan_handover_run_due(stan_t *st)
{
    uint64_t now = clock_mono_ms();
    list_node_t *n;
    while ((n = list_first(&st->grace))) {
        stan_sub_t *s = STAN_SUB_OF(n, grace_link);
        if (s->grace_due_ms > now) break; /* libuv's cached loop time lags: early, wait */
        list_remove(n);
        unsigned why = s->grace_why;
        s->grace_why = 0;
        grace_over(st, s, why);
    }
    arm_timer(st);
}

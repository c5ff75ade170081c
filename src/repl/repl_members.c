/* repl_members: joining a running cluster, changing who is in it, handing the lead over
 * (repl_transfer), node IDs as libraft numbers them (repl_raft_id), and the nodes' subjects
 * (repl_subject).
 *
 * Requests travel over NATS, as NSS's do, and only the leader subscribes to them (so that a
 * request with no leader to take it gets NATS's "no responders" at once). Each is a node ID,
 * answered "+OK" or "-ERR reason" once the change is committed:
 *   _STZ.raft.<cluster id>.join            a node started on an empty log without --cluster_peers
 *                                          or --cluster_bootstrap asks to be added, every second,
 *                                          until it sees itself a voter (always taken, as NSS)
 *   _STAN.raft.<cluster id>.node.add       NSS's subjects, taken only with
 *   _STAN.raft.<cluster id>.node.remove    --cluster_allow_add_remove_node (NATS publishers are
 *                                          not authenticated as operators)
 *   _STZ.raft.<cluster id>.node.transfer   hand the lead to that node ("" for any voter)
 *
 * A node is added as a spare, then made a voter once libraft has caught it up (so a slow new
 * node never counts toward the quorum before it holds the log); libraft gives the promotion up
 * when the node does not answer, and the node stays a spare until it asks to join. libraft
 * takes one membership change at a time: another request meanwhile is refused, to be retried. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hmap.h"
#include "log.h"
#include "nuid.h"
#include "repl_private.h"
#include "xalloc.h"

#define JOIN_MS 1000
#define JOIN_WARN_EVERY 10 /* unanswered join requests between two warnings */

enum { M_JOIN, M_ADD, M_REMOVE, M_TRANSFER, M_KINDS };

raft_id repl_raft_id(const char *node_id, size_t len)
{
    uint64_t h = hmap_hash_bytes(node_id, len);
    return h ? h : 1;
}

char *repl_subject(const repl_t *r, const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(r->cfg->cluster_id) + strlen(suffix) + 3;
    char *s = xmalloc(n);
    snprintf(s, n, "%s.%s.%s", prefix, r->cfg->cluster_id, suffix);
    return s;
}

__attribute__((format(printf, 3, 4))) static void answer(repl_t *r, const char *to, const char *fmt,
                                                         ...)
{
    if (!to || r->stopping) return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    bus_msg_t m = {.subject = to,
                   .subject_len = strlen(to),
                   .data = text,
                   .data_len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1};
    bus_publish(&r->bus, &m);
}

static const struct raft_server *member(const repl_t *r, const char *id)
{
    raft_id rid = repl_raft_id(id, strlen(id));
    const struct raft_configuration *c = &r->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == rid) return &c->servers[i];
    return NULL;
}

/* The request's node ID into id; false (answered) when it is not one. */
static bool request_id(repl_t *r, const bus_msg_t *m, bool empty_ok, char id[REPL_ID_MAX + 1])
{
    char *reply = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    bool ok = (empty_ok && m->data_len == 0) || config_node_id_valid(m->data, m->data_len);
    if (ok) {
        memcpy(id, m->data, m->data_len);
        id[m->data_len] = '\0';
    } else {
        answer(r, reply, "-ERR invalid node ID (letters, digits, '-' and '_', at most %d)",
               CONFIG_NODE_ID_MAX);
    }
    free(reply);
    return ok;
}

/* ---- one membership change at a time ---- */

static void change_done(repl_t *r, int status)
{
    const char *id = r->change_node;
    bool removing = r->change_kind == M_REMOVE;
    if (status == 0) {
        LOG_I("raft: node %s %s", id, removing ? "removed" : "is a voter");
        answer(r, r->change_reply, "+OK");
    } else if (status == RAFT_NOCONNECTION && !removing) {
        LOG_W("raft: node %s added as a spare but did not catch up", id);
        answer(r, r->change_reply,
               "-ERR node %s was added as a spare but did not catch up (is it running and "
               "reachable?); it becomes a voter once it asks to join",
               id);
    } else {
        LOG_W("raft: %s node %s failed: %s", removing ? "removing" : "adding", id,
              raft_strerror(status));
        answer(r, r->change_reply, "-ERR %s node %s: %s", removing ? "removing" : "adding", id,
               raft_strerror(status));
    }
    free(r->change_reply);
    r->change_reply = NULL;
    r->changing = false;
}

static void on_changed(struct raft_change *req, int status)
{
    change_done(req->data, status);
}

static void on_added(struct raft_change *req, int status)
{
    repl_t *r = req->data;
    if (status == 0) {
        raft_id rid = repl_raft_id(r->change_node, strlen(r->change_node));
        status = raft_assign(&r->raft, &r->change, rid, RAFT_VOTER, on_changed);
        if (status == 0) return;
    }
    change_done(r, status);
}

/* Starts adding or removing node id, or answers why not. */
static void change_start(repl_t *r, int kind, const char *id, const char *reply)
{
    const struct raft_server *sv = member(r, id);
    const char *verb = kind == M_REMOVE ? "removing" : "adding";
    if (sv && strcmp(sv->address, id) != 0) {
        answer(r, reply, "-ERR node ID %s hashes like member %s's: choose another ID", id,
               sv->address);
        return;
    }
    if (kind != M_REMOVE && sv && sv->role == RAFT_VOTER) {
        answer(r, reply, "+OK");
        return;
    }
    if (kind == M_REMOVE && !sv) {
        answer(r, reply, "-ERR no node %s in the cluster", id);
        return;
    }
    if (r->changing) {
        answer(r, reply, "-ERR another membership change is under way: try again");
        return;
    }
    r->change.data = r;
    raft_id rid = repl_raft_id(id, strlen(id));
    int rc = kind == M_REMOVE ? raft_remove(&r->raft, &r->change, rid, on_changed)
             : sv             ? raft_assign(&r->raft, &r->change, rid, RAFT_VOTER, on_changed)
                              : raft_add(&r->raft, &r->change, rid, id, on_added);
    if (rc != 0) {
        answer(r, reply, "-ERR %s node %s: %s", verb, id, raft_strerror(rc));
        return;
    }
    LOG_I("raft: %s node %s", verb, id);
    r->changing = true;
    r->change_kind = kind;
    snprintf(r->change_node, sizeof r->change_node, "%s", id);
    r->change_reply = reply ? xstrdup(reply) : NULL;
}

static void on_change_request(repl_t *r, const bus_msg_t *m, int kind)
{
    char id[REPL_ID_MAX + 1];
    if (!r->leading || !request_id(r, m, false, id)) return;
    char *reply = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    if (kind == M_REMOVE && r->raft.configuration.n == 1)
        answer(r, reply, "-ERR node %s is the cluster's only member", id);
    else
        change_start(r, kind, id, reply);
    free(reply);
}

static void on_join(void *arg, const bus_msg_t *m)
{
    on_change_request(arg, m, M_JOIN);
}

static void on_add(void *arg, const bus_msg_t *m)
{
    on_change_request(arg, m, M_ADD);
}

static void on_remove(void *arg, const bus_msg_t *m)
{
    on_change_request(arg, m, M_REMOVE);
}

/* ---- leadership transfer ---- */

static void on_transfer(struct raft_transfer *req)
{
    repl_t *r = req->data;
    r->transferring = false;
    raft_id id;
    const char *addr;
    raft_leader(&r->raft, &id, &addr);
    bool moved = id != 0 && id != r->raft.id;
    LOG_I("raft: lead %s%s", moved ? "handed to " : "not handed over", moved ? addr : "");
    if (r->transfer_done) r->transfer_done(r->transfer_arg, moved);
}

int repl_transfer(repl_t *r, const char *node_id, void (*done)(void *arg, bool moved), void *arg)
{
    if (r->transferring) return STZ_EBUSY;
    if (!r->raft_inited || raft_state(&r->raft) != RAFT_LEADER) return STZ_EINVAL;
    raft_id to = node_id ? repl_raft_id(node_id, strlen(node_id)) : 0;
    r->transfer.data = r;
    int rc = raft_transfer(&r->raft, &r->transfer, to, on_transfer);
    if (rc != 0) {
        LOG_W("raft: cannot hand the lead to %s: %s", node_id ? node_id : "another voter",
              raft_strerror(rc));
        return STZ_EINVAL;
    }
    r->transferring = true;
    r->transfer_done = done;
    r->transfer_arg = arg;
    return 0;
}

static void on_transferred(void *arg, bool moved)
{
    repl_t *r = arg;
    if (moved)
        answer(r, r->transfer_reply, "+OK");
    else
        answer(r, r->transfer_reply, "-ERR the lead did not move within an election timeout");
    free(r->transfer_reply);
    r->transfer_reply = NULL;
}

static void on_transfer_request(void *arg, const bus_msg_t *m)
{
    repl_t *r = arg;
    char id[REPL_ID_MAX + 1];
    if (!r->leading || !request_id(r, m, true, id)) return;
    char *reply = m->reply ? xstrndup(m->reply, m->reply_len) : NULL;
    const struct raft_server *sv = id[0] ? member(r, id) : NULL;
    int rc = STZ_EINVAL;
    if (id[0] && (!sv || sv->role != RAFT_VOTER || strcmp(sv->address, id) != 0))
        answer(r, reply, "-ERR node %s is not a voter of the cluster", id);
    else if (id[0] && sv->id == r->raft.id)
        answer(r, reply, "+OK"); /* it leads already */
    else if ((rc = repl_transfer(r, id[0] ? id : NULL, on_transferred, r)) == STZ_EBUSY)
        answer(r, reply, "-ERR a transfer is under way");
    else if (rc != 0)
        answer(r, reply, "-ERR no other voter can take the lead");
    if (rc == 0)
        r->transfer_reply = reply;
    else
        free(reply);
}

/* ---- the leader's subscriptions ---- */

void repl_members_lead(repl_t *r, bool leading)
{
    static const bus_msg_fn fns[M_KINDS] = {on_join, on_add, on_remove, on_transfer_request};
    for (int k = 0; k < M_KINDS; k++) {
        if (!leading && r->member_subs[k]) {
            bus_unsubscribe(&r->bus, r->member_subs[k]);
            r->member_subs[k] = NULL;
        }
        bool allowed = (k != M_ADD && k != M_REMOVE) || r->cfg->cluster_allow_add_remove_node;
        if (!leading || !allowed || r->member_subs[k]) continue;
        r->member_subs[k] = bus_subscribe(&r->bus, r->member_subjects[k], NULL, 0, fns[k], r);
        if (!r->member_subs[k]) LOG_W("raft: cannot subscribe to %s", r->member_subjects[k]);
    }
}

/* ---- a node joining ---- */

static void on_join_reply(void *arg, const bus_msg_t *m)
{
    repl_t *r = arg;
    if (m->no_responders || !r->joining) return;
    if (m->data_len >= 3 && memcmp(m->data, "+OK", 3) == 0) {
        LOG_I("raft: the leader added this node to the cluster");
        return;
    }
    LOG_W("raft: the leader refused to add this node: %.*s", (int)m->data_len,
          (const char *)m->data);
}

static void on_join_timer(uv_timer_t *t)
{
    repl_t *r = t->data;
    if (!r->joining) return;
    if (r->join_asks && r->join_asks % JOIN_WARN_EVERY == 0)
        LOG_W("raft: still not a member after %llu requests on %s: is the cluster up and "
              "reachable over NATS?",
              (unsigned long long)r->join_asks, r->member_subjects[M_JOIN]);
    r->join_asks++;
    bus_msg_t m = {.subject = r->member_subjects[M_JOIN],
                   .subject_len = strlen(r->member_subjects[M_JOIN]),
                   .reply = r->join_inbox,
                   .reply_len = strlen(r->join_inbox),
                   .data = r->node_id,
                   .data_len = strlen(r->node_id)};
    bus_publish(&r->bus, &m);
}

/* Called on every poll: notices this node becoming a voter (joined) or leaving the
 * configuration (removed). */
void repl_members_poll(repl_t *r)
{
    const struct raft_server *self = member(r, r->node_id);
    bool voter = self && self->role == RAFT_VOTER;
    if (r->joining && voter) {
        r->joining = false;
        uv_timer_stop(&r->join_timer);
        LOG_I("raft: this node is a voter of the cluster");
    }
    if (voter) r->was_voter = true;
    if (r->was_voter && !self && r->raft.configuration_uncommitted_index == 0) {
        r->was_voter = false;
        LOG_W("raft: this node was removed from the cluster: it no longer votes or serves; stop "
              "it, and clear its --cluster_log_path and --dir before it joins again");
    }
}

void repl_members_init(repl_t *r)
{
    r->member_subjects[M_JOIN] = repl_subject(r, "_STZ.raft", "join");
    r->member_subjects[M_ADD] = repl_subject(r, "_STAN.raft", "node.add");
    r->member_subjects[M_REMOVE] = repl_subject(r, "_STAN.raft", "node.remove");
    r->member_subjects[M_TRANSFER] = repl_subject(r, "_STZ.raft", "node.transfer");
}

int repl_members_start(repl_t *r, char *err, size_t errlen)
{
    if (!r->joining) return 0;
    char nuid[NUID_LEN + 1];
    nuid_next(nuid);
    size_t n = sizeof "_INBOX." + NUID_LEN;
    r->join_inbox = xmalloc(n);
    snprintf(r->join_inbox, n, "_INBOX.%s", nuid);
    r->join_sub = bus_subscribe(&r->bus, r->join_inbox, NULL, BUS_SUB_REPLIES, on_join_reply, r);
    if (!r->join_sub) {
        snprintf(err, errlen, "raft: cannot subscribe to %s", r->join_inbox);
        return STZ_EIO;
    }
    uv_timer_init(r->loop, &r->join_timer);
    r->join_timer.data = r;
    uv_timer_start(&r->join_timer, on_join_timer, 0, JOIN_MS);
    r->join_started = true;
    LOG_I("raft: asking to join the cluster on %s", r->member_subjects[M_JOIN]);
    return 0;
}

void repl_members_stop(repl_t *r)
{
    repl_members_lead(r, false);
    if (r->join_sub) bus_unsubscribe(&r->bus, r->join_sub);
    r->join_sub = NULL;
    if (r->join_started) {
        uv_timer_stop(&r->join_timer);
        uv_close((uv_handle_t *)&r->join_timer, NULL);
        r->join_started = false;
    }
}

void repl_members_free(repl_t *r)
{
    for (int k = 0; k < M_KINDS; k++)
        free(r->member_subjects[k]);
    free(r->join_inbox);
    free(r->change_reply);
    free(r->transfer_reply);
}

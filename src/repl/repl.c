/* repl: this node's libraft server (repl.h).
 *
 * The state machine is the store: libraft hands each committed command to fsm_apply on the loop,
 * in log order, and the store queues it for LMDB (store_apply). The entry's index is the one
 * after libraft's last_applied (libraft raises it right after apply returns). Every
 * --cluster_snapshot_threshold entries libraft takes a snapshot (a copy of the store, made on the
 * pool: store_snap.c) and drops the log before it but --cluster_trailing_logs entries.
 *
 * Leadership: libraft 0.15 reports no state change, so a timer looks every POLL_MS. On becoming
 * leader the node appends a barrier; once libraft has applied everything before it and the store
 * has written it, the node leads (on_lead(true)) and its store accepts proposals. Only a barrier
 * of the current term counts: a new leader may hold entries its predecessor committed (and
 * acknowledged) without knowing them committed, and only an entry of its own term commits them.
 * Serving before that, on an apply that happened to finish first, would number new messages over
 * them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "nuid.h"
#include "repl_private.h"
#include "xalloc.h"

#define POLL_MS 20
#define CONNECT_RETRY_MS 200

const char *repl_role_name(repl_role_t role)
{
    switch (role) {
    case REPL_FOLLOWER:
        return "Follower";
    case REPL_CANDIDATE:
        return "Candidate";
    case REPL_LEADER:
        return "Leader";
    default:
        return "Unavailable";
    }
}

static void fatal(repl_t *r, const char *why)
{
    if (r->fatal) return;
    r->fatal = true;
    LOG_E("raft: %s", why);
    if (r->on_fatal) r->on_fatal(r->arg, why);
}

/* ---- the node's ID, kept in the log directory ---- */

static int node_id(repl_t *r, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/node_id", r->log_path);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[REPL_ID_MAX + 2] = "";
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            n--;
        buf[n] = '\0';
        if (!config_node_id_valid(buf, n)) {
            snprintf(err, errlen, "raft: %s does not hold a node ID", path);
            return STZ_EIO;
        }
        const char *given = r->cfg->cluster_node_id;
        if (given && strcmp(given, buf) != 0)
            LOG_W("raft: keeping the stored node ID %s (--cluster_node_id %s is ignored)", buf,
                  given);
        memcpy(r->node_id, buf, n + 1); /* n <= REPL_ID_MAX: checked above */
        return 0;
    }
    if (r->cfg->cluster_node_id) {
        snprintf(r->node_id, sizeof r->node_id, "%s", r->cfg->cluster_node_id);
    } else {
        char nuid[NUID_LEN + 1];
        nuid_next(nuid);
        snprintf(r->node_id, sizeof r->node_id, "%s", nuid);
    }
    int e = fs_write_file(path, r->node_id, strlen(r->node_id));
    if (e) {
        snprintf(err, errlen, "raft: cannot write %s: %s", path, strerror(e));
        return STZ_EIO;
    }
    return 0;
}

/* ---- the state machine ---- */

/* libraft keeps its log in memory from the last snapshot on, and snapshots by entry counts only,
 * while an entry's size follows the load (a batch): under a steady stream, thousands of entries of
 * megabytes each. So a snapshot is also due once the entries since the last one hold half of
 * --cluster_log_max_memory, or a quarter of the store's size if that is more (a snapshot copies
 * the whole store, which holds each message in more bytes than its entry does: this way taking
 * one costs at most about four times the log written since), and fsm_snapshot keeps at most the
 * other half behind it. libraft checks its threshold right after applying: lowering it to 1
 * makes it snapshot then. */
static void note_applied(repl_t *r, size_t len)
{
    r->log_entries++;
    r->log_bytes += len;
    uint64_t half = (uint64_t)r->cfg->cluster_log_max_memory / 2;
    if (!half || r->log_bytes < half) return;
    store_stats_t st;
    store_get_stats(r->store, &st);
    if (r->log_bytes >= st.used_bytes / 4) raft_set_snapshot_threshold(&r->raft, 1);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    repl_t *r = fsm->data;
    *result = NULL;
    uint64_t index = r->raft.last_applied + 1;
    if (store_apply(r->store, buf->base, buf->len, index) != STZ_OK) {
        char why[160];
        snprintf(why, sizeof why,
                 "log entry %llu cannot be applied (written by a newer version, or damaged)",
                 (unsigned long long)index);
        fatal(r, why);
        return RAFT_MALFORMED;
    }
    note_applied(r, buf->len);
    return 0;
}

/* Snapshots: libraft asks on the loop (the index it will stand for is its last_applied), then
 * on a pool thread the store is copied once that entry is in LMDB. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    repl_t *r = fsm->data;
    r->snap_index = r->raft.last_applied;
    /* The entries kept behind it: as configured, and no more than half the memory budget's
     * worth at their average size. */
    uint64_t trailing = (uint64_t)r->cfg->cluster_trailing_logs;
    uint64_t half = (uint64_t)r->cfg->cluster_log_max_memory / 2;
    if (half && r->log_bytes) {
        uint64_t fit = half / (r->log_bytes / r->log_entries + 1);
        if (fit < trailing) trailing = fit;
    }
    raft_set_snapshot_trailing(&r->raft, (unsigned)trailing);
    raft_set_snapshot_threshold(&r->raft, (unsigned)r->cfg->cluster_snapshot_threshold);
    r->log_entries = r->log_bytes = 0;
    *bufs = NULL;
    *n = 0;
    return 0;
}

static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    repl_t *r = fsm->data;
    void *data;
    size_t len;
    if (store_snapshot(r->store, r->snap_index, raft_malloc, &data, &len) != STZ_OK)
        return RAFT_IOERR; /* libraft tries again after the next threshold's worth */
    struct raft_buffer *b = raft_malloc(sizeof *b);
    if (!b) {
        raft_free(data);
        return RAFT_NOMEM;
    }
    b->base = data;
    b->len = len;
    *bufs = b;
    *n = 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    repl_t *r = fsm->data;
    if (*bufs) r->last_snap_index = r->snap_index; /* else the copy failed: none written */
    for (unsigned i = 0; *bufs && i < *n; i++)
        raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n = 0;
    return 0;
}

/* A snapshot to install (at start, or sent by the leader to a node too far behind). On success
 * the buffer is ours to free; on failure libraft keeps it. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    repl_t *r = fsm->data;
    bool replaced;
    int rc = store_restore(r->store, buf->base, buf->len, &replaced);
    if (rc == STZ_OK) {
        raft_free(buf->base);
        return 0;
    }
    if (rc == STZ_EBUSY) return RAFT_BUSY;
    if (rc == STZ_EINVAL) fatal(r, "a snapshot this version cannot read");
    return RAFT_IOERR;
}

/* ---- proposals (the store's log) ---- */

static void on_proposal_done(struct raft_apply *req, int status, void *result)
{
    repl_t *r = req->data;
    (void)result;
    if (status != 0) store_log_failed(r->store, req->index);
    free(req);
}

static int propose(void *arg, void *data, size_t len, uint64_t *index)
{
    repl_t *r = arg;
    /* Only in the term this node's barrier was applied in: had it lost the lead and won it back
     * between two polls, its engine would stand on a store missing the other leader's entries. */
    if (!r->leading || r->raft.current_term != r->barrier_term) return -1;
    struct raft_apply *req = xmalloc(sizeof *req);
    req->data = r;
    struct raft_buffer buf = {.base = data, .len = len};
    int rc = raft_apply(&r->raft, req, &buf, 1, on_proposal_done);
    if (rc != 0) {
        LOG_W("raft: cannot propose an entry: %s", raft_strerror(rc));
        free(req);
        return -1;
    }
    *index = req->index;
    r->proposed_index = req->index;
    r->proposed_ns = clock_mono_ns();
    return 0;
}

/* ---- leadership ---- */

static void lead_if_ready(repl_t *r)
{
    if (r->leading || r->barrier_pending || r->stopping || r->fatal) return;
    if (raft_state(&r->raft) != RAFT_LEADER || r->barrier_term != r->raft.current_term ||
        !store_apply_idle(r->store))
        return;
    r->leading = true;
    LOG_I("raft: this node leads (term %llu, %llu entries applied)",
          (unsigned long long)r->raft.current_term,
          (unsigned long long)store_applied_index(r->store));
    repl_members_lead(r, true);
    r->on_lead(r->arg, true);
}

static void on_store_applied(void *arg, uint64_t index)
{
    repl_t *r = arg;
    if (r->proposed_index && index >= r->proposed_index) {
        uint64_t ns = clock_mono_ns() - r->proposed_ns;
        r->proposed_index = 0;
        r->commits++;
        r->commit_ns_total += ns;
        r->commit_hist[store_hist_bucket(ns)]++;
    }
    lead_if_ready(r);
}

static void on_barrier(struct raft_barrier *req, int status)
{
    repl_t *r = req->data;
    r->barrier_pending = false;
    if (status != 0) return;
    r->barrier_term = r->barrier_issued_term;
    lead_if_ready(r);
}

static void note_leader(repl_t *r)
{
    raft_id id;
    const char *addr;
    raft_leader(&r->raft, &id, &addr);
    if (id == r->leader_id) return;
    r->leader_id = id;
    snprintf(r->leader, sizeof r->leader, "%s", id && addr ? addr : "");
    if (!id) return;
    r->leader_changes++;
    LOG_I("raft: leader is %s (term %llu)", r->leader, (unsigned long long)r->raft.current_term);
}

static void on_poll(uv_timer_t *t)
{
    repl_t *r = t->data;
    int st = raft_state(&r->raft);
    note_leader(r);
    if (r->leading && (st != RAFT_LEADER || r->raft.current_term != r->barrier_term)) {
        r->leading = false;
        LOG_I("raft: this node no longer leads");
        repl_members_lead(r, false);
        r->on_lead(r->arg, false);
    }
    repl_members_poll(r);
    /* Leading without serving: first a barrier of this term, tried again each poll while
     * libraft refuses it (it does during a leadership transfer, which may fail). */
    if (st == RAFT_LEADER && !r->leading && !r->barrier_pending &&
        r->barrier_term != r->raft.current_term) {
        r->barrier.data = r;
        r->barrier_issued_term = r->raft.current_term;
        int rc = raft_barrier(&r->raft, &r->barrier, on_barrier);
        if (rc == 0)
            r->barrier_pending = true;
        else if (rc == RAFT_NOTLEADER) /* a transfer away from this node: the next poll retries */
            LOG_D("raft: the leader's barrier waits for a leadership transfer to end");
        else
            LOG_W("raft: cannot append the leader's barrier: %s", raft_strerror(rc));
    }
}

/* ---- start and stop ---- */

static bool has_state(const char *dir)
{
    char p[PATH_MAX];
    struct stat sb;
    snprintf(p, sizeof p, "%s/metadata1", dir);
    if (stat(p, &sb) == 0) return true;
    snprintf(p, sizeof p, "%s/metadata2", dir);
    return stat(p, &sb) == 0;
}

/* A fresh log: --cluster_peers (with this node) or --cluster_bootstrap (this node alone), else
 * the node joins (repl_members.c). */
static int bootstrap(repl_t *r, char *err, size_t errlen)
{
    const config_t *cfg = r->cfg;
    if (has_state(r->log_path)) return 0;
    if (!cfg->cluster_peers && !cfg->cluster_bootstrap) {
        LOG_I("raft: %s holds no cluster state and neither --cluster_peers nor "
              "--cluster_bootstrap is given: this node joins a running cluster",
              r->log_path);
        r->joining = true;
        return 0;
    }
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    /* In the peers' order, this node where it is listed (else last): nodes given the same list
     * write the same first entry. */
    repl_peer_t peers[CONFIG_PEERS_MAX];
    size_t n = repl_peers(r, peers);
    bool self_listed = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        self_listed |= strcmp(peers[i].id, r->node_id) == 0;
        rc = raft_configuration_add(&conf, repl_raft_id(peers[i].id, strlen(peers[i].id)),
                                    peers[i].id, RAFT_VOTER);
    }
    if (rc == 0 && !self_listed)
        rc = raft_configuration_add(&conf, repl_raft_id(r->node_id, strlen(r->node_id)), r->node_id,
                                    RAFT_VOTER);
    if (rc == 0) rc = raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
        snprintf(err, errlen, "raft: cannot bootstrap the cluster in %s: %s%s", r->log_path,
                 raft_strerror(rc), rc == RAFT_DUPLICATEID ? " (two node IDs hash alike)" : "");
        return STZ_EIO;
    }
    LOG_I("raft: bootstrapped a cluster of %u in %s", conf.n, r->log_path);
    return 0;
}

static int init_raft(repl_t *r, char *err, size_t errlen)
{
    const config_t *cfg = r->cfg;
    if (cfg->cluster_raft_logging) setenv("LIBRAFT_TRACE", "1", 0);
    int rc = raft_uv_init(&r->io, r->loop, r->log_path, &r->outer);
    if (rc != 0) {
        snprintf(err, errlen, "raft: cannot open the log in %s: %s", r->log_path,
                 raft_strerror(rc));
        return STZ_EIO;
    }
    r->io_inited = true;
    /* libraft 0.15's raft_uv implements async_work (version 2 of raft_io) but still says version
     * 1, and raft_init refuses asynchronous snapshots on a version-1 io: say what it is. */
    if (r->io.async_work) r->io.version = 2;
    raft_uv_set_connect_retry_delay(&r->io, CONNECT_RETRY_MS);
    r->fsm = (struct raft_fsm){.version = 3,
                               .data = r,
                               .apply = fsm_apply,
                               .snapshot = fsm_snapshot,
                               .restore = fsm_restore,
                               .snapshot_finalize = fsm_snapshot_finalize,
                               .snapshot_async = fsm_snapshot_async};
    rc = raft_init(&r->raft, &r->io, &r->fsm, repl_raft_id(r->node_id, strlen(r->node_id)),
                   r->node_id);
    if (rc != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&r->raft));
        return STZ_EIO;
    }
    r->raft_inited = true;
    raft_set_election_timeout(&r->raft, (unsigned)cfg->cluster_raft_election_timeout_ms);
    raft_set_heartbeat_timeout(&r->raft, (unsigned)cfg->cluster_raft_heartbeat_timeout_ms);
    raft_set_pre_vote(&r->raft, true);
    raft_set_snapshot_threshold(&r->raft, (unsigned)cfg->cluster_snapshot_threshold);
    raft_set_snapshot_trailing(&r->raft, (unsigned)cfg->cluster_trailing_logs);
    return 0;
}

int repl_start(repl_t **out, const repl_options_t *opt, char *err, size_t errlen)
{
    repl_t *r = xcalloc(1, sizeof *r);
    *out = r;
    r->loop = opt->loop;
    r->cfg = opt->cfg;
    r->store = opt->store;
    r->bus = *opt->bus;
    r->on_lead = opt->on_lead;
    r->on_fatal = opt->on_fatal;
    r->arg = opt->arg;
    const config_t *cfg = r->cfg;
    if (cfg->cluster_log_path) {
        r->log_path = xstrdup(cfg->cluster_log_path);
    } else {
        size_t n = strlen(cfg->dir) + 8;
        r->log_path = xmalloc(n);
        snprintf(r->log_path, n, "%s/raft", cfg->dir);
    }
    int e = fs_mkdirs(r->log_path);
    if (e) {
        snprintf(err, errlen, "raft: cannot create %s: %s", r->log_path, strerror(e));
        return STZ_EIO;
    }
    int rc = node_id(r, err, errlen);
    if (rc == 0) rc = repl_net_init(r, err, errlen);
    if (rc == 0) rc = init_raft(r, err, errlen);
    repl_members_init(r);
    if (rc == 0) rc = bootstrap(r, err, errlen);
    store_log_t log = {.propose = propose, .applied = on_store_applied, .arg = r};
    if (rc == 0) rc = store_set_log(r->store, &log);
    if (rc == 0 && (e = raft_start(&r->raft)) != 0) {
        snprintf(err, errlen, "raft: cannot start: %s", raft_errmsg(&r->raft));
        rc = STZ_EIO;
    }
    if (rc == 0) rc = repl_net_start(r, err, errlen);
    if (rc == 0) rc = repl_members_start(r, err, errlen);
    if (rc != 0) return rc;
    uv_timer_init(r->loop, &r->poll);
    r->poll.data = r;
    uv_timer_start(&r->poll, on_poll, POLL_MS, POLL_MS);
    r->poll_started = true;
    LOG_I("raft: node %s, transport on %s, log in %s, election timeout %lld ms", r->node_id,
          r->raft_addr, r->log_path, (long long)cfg->cluster_raft_election_timeout_ms);
    return 0;
}

static void on_raft_closed(struct raft *raft);

static void close_raft(repl_t *r)
{
    r->raft.data = r;
    raft_close(&r->raft, on_raft_closed);
}

static void close_after_transfer(void *arg, bool moved)
{
    (void)moved;
    close_raft(arg);
}

static void on_raft_closed(struct raft *raft)
{
    repl_t *r = raft->data;
    r->raft_inited = false;
    if (r->stop_done) r->stop_done(r->stop_arg);
}

void repl_stop(repl_t *r, void (*done)(void *arg), void *arg)
{
    r->stopping = true;
    r->leading = false;
    if (r->poll_started) {
        uv_timer_stop(&r->poll);
        uv_close((uv_handle_t *)&r->poll, NULL);
        r->poll_started = false;
    }
    repl_members_stop(r);
    repl_net_stop(r);
    r->stop_done = done;
    r->stop_arg = arg;
    if (!r->raft_inited) {
        if (done) done(arg);
        return;
    }
    if (r->transferring) {
        r->transfer_done = close_after_transfer;
        r->transfer_arg = r;
        return;
    }
    if (r->raft.configuration.n > 1 && repl_transfer(r, NULL, close_after_transfer, r) == 0) return;
    close_raft(r);
}

void repl_free(repl_t *r)
{
    if (!r) return;
    if (r->io_inited) raft_uv_close(&r->io);
    repl_members_free(r);
    repl_net_free(r);
    free(r->log_path);
    free(r);
}

void repl_status(const repl_t *r, repl_status_t *out)
{
    memset(out, 0, sizeof *out);
    struct raft *raft = (struct raft *)&r->raft;
    int st = r->raft_inited ? raft_state(raft) : RAFT_UNAVAILABLE;
    out->role = st == RAFT_LEADER      ? REPL_LEADER
                : st == RAFT_CANDIDATE ? REPL_CANDIDATE
                : st == RAFT_FOLLOWER  ? REPL_FOLLOWER
                                       : REPL_UNAVAILABLE;
    out->leading = r->leading;
    out->node_id = r->node_id;
    out->leader = r->leader;
    out->raft_addr = r->raft_addr;
    out->term = raft->current_term;
    out->commit_index = raft->commit_index;
    out->applied_index = store_applied_index(r->store);
    out->last_index = r->raft_inited ? raft_last_index(raft) : 0;
    out->leader_changes = r->leader_changes;
    out->leader_commit_index = st == RAFT_LEADER                     ? raft->commit_index
                               : r->heard_term == raft->current_term ? r->heard_commit
                                                                     : 0;
    out->snapshot_index = r->last_snap_index;
    out->log_bytes = r->log_bytes;
    out->npeers = raft->configuration.n;
    out->commits = r->commits;
    out->commit_ns_total = r->commit_ns_total;
    memcpy(out->commit_hist, r->commit_hist, sizeof out->commit_hist);
}

size_t repl_peer_status(const repl_t *r, repl_peer_status_t *out, size_t max)
{
    const struct raft *raft = &r->raft;
    const struct raft_configuration *c = &raft->configuration;
    bool leader = r->raft_inited && raft->state == RAFT_LEADER;
    size_t n = 0;
    for (unsigned i = 0; i < c->n && n < max; i++, n++) {
        const struct raft_server *sv = &c->servers[i];
        repl_peer_status_t *p = &out[n];
        memset(p, 0, sizeof *p);
        p->node_id = sv->address; /* libraft's address is the node ID (repl_net.c) */
        p->self = sv->id == raft->id;
        p->voter = sv->role == RAFT_VOTER;
        p->address = p->self ? r->raft_addr : repl_net_address(r, sv->address);
        if (leader && raft->leader_state.progress) {
            p->next_index = raft->leader_state.progress[i].next_index;
            p->match_index = raft->leader_state.progress[i].match_index;
        }
    }
    return n;
}

/* monitor_cluster: clustered mode's state for the monitoring endpoints: the Raft part of
 * /streaming/serverz and /streaming/clusterz (every server of the configuration as this node
 * sees it). The metrics are in monitor_metrics.c. */
#include <jansson.h>
#include <string.h>

#include "monitor_private.h"
#include "repl.h"

#define CLUSTERZ_MAX_PEERS 64

void monitor_cluster_serverz(monitor_t *m, json_t *o)
{
    repl_status_t rs;
    repl_status(m->repl, &rs);
    json_object_set_new(o, "role", json_string(repl_role_name(rs.role)));
    json_object_set_new(o, "node_id", json_string(rs.node_id));
    json_t *r = json_object();
    json_object_set_new(r, "leader", json_string(rs.leader));
    json_object_set_new(r, "address", json_string(rs.raft_addr));
    monitor_json_int(r, "term", rs.term);
    monitor_json_int(r, "commit_index", rs.commit_index);
    monitor_json_int(r, "applied_index", rs.applied_index);
    monitor_json_int(r, "leader_commit_index", rs.leader_commit_index);
    monitor_json_int(r, "last_index", rs.last_index);
    monitor_json_int(r, "leader_changes", rs.leader_changes);
    monitor_json_int(r, "snapshot_index", rs.snapshot_index);
    monitor_json_int(r, "log_bytes", rs.log_bytes);
    monitor_json_int(r, "voters", rs.npeers);
    json_object_set_new(o, "raft", r);
}

void monitor_clusterz(monitor_t *m, httpd_resp_t *resp)
{
    if (!m->repl) {
        monitor_reply_error(resp, 404, "not clustered (start with --clustered)");
        return;
    }
    json_t *o = monitor_json_head(m);
    monitor_cluster_serverz(m, o);
    repl_status_t rs;
    repl_status(m->repl, &rs);
    json_object_set_new(o, "leading", json_boolean(rs.leading));
    repl_peer_status_t peers[CLUSTERZ_MAX_PEERS];
    size_t n = repl_peer_status(m->repl, peers, CLUSTERZ_MAX_PEERS);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object();
        json_object_set_new(p, "node_id", json_string(peers[i].node_id));
        json_object_set_new(p, "address", json_string(peers[i].address));
        json_object_set_new(p, "voter", json_boolean(peers[i].voter));
        json_object_set_new(p, "self", json_boolean(peers[i].self));
        json_object_set_new(p, "leader", json_boolean(strcmp(peers[i].node_id, rs.leader) == 0));
        if (rs.role == REPL_LEADER) {
            monitor_json_int(p, "next_index", peers[i].next_index);
            monitor_json_int(p, "match_index", peers[i].match_index);
        }
        json_array_append_new(arr, p);
    }
    json_object_set_new(o, "peers", arr);
    monitor_reply_json(resp, o);
}

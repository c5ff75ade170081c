/* config_clustering: clustered mode (Raft) in the config file, and how its settings must fit
 * together. Each setting is also a flat key (cluster_node_id, ...: config_settings.c); this file
 * reads the two forms the flat table cannot:
 *
 *   clustering:                       # NSS's names, from its streaming cluster block; being
 *     node_id: a                      # here sets clustered: true (unless clustered: false)
 *     bootstrap: true
 *     peers: [a, b, c]                # a list, or one "a,b,c" string
 *     raft_listen: 10.0.0.1:7000      # ours: where this node's Raft transport listens
 *
 *   cluster_peers:                    # the flat key, as a list too
 *     - a
 *     - b@10.0.0.2:7000
 *
 * Values are checked where they are read (config_peers.c), so errors name the file and line. */
#include "config.h"
#include "config_private.h"

#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The section's keys (NSS's) and the settings they set. */
static const struct {
    const char *name;
    const char *setting;
} clustering_keys[] = {
    {"clustered", "clustered"},
    {"node_id", "cluster_node_id"},
    {"bootstrap", "cluster_bootstrap"},
    {"peers", "cluster_peers"},
    {"log_path", "cluster_log_path"},
    {"sync", "cluster_sync"},
    {"raft_logging", "cluster_raft_logging"},
    {"allow_add_remove_node", "cluster_allow_add_remove_node"},
    {"raft_heartbeat_timeout", "cluster_raft_heartbeat_timeout"},
    {"raft_election_timeout", "cluster_raft_election_timeout"},
    {"raft_listen", "cluster_raft_listen"},
    {"trailing_logs", "cluster_trailing_logs"},
    {"snapshot_threshold", "cluster_snapshot_threshold"},
    {"log_max_memory", "cluster_log_max_memory"},
};
#define NKEYS (sizeof clustering_keys / sizeof clustering_keys[0])

static bool key_is(const yaml_event_t *kev, const char *name)
{
    return kev->type == YAML_SCALAR_EVENT && !config_has_nul(kev) &&
           strcasecmp((const char *)kev->data.scalar.value, name) == 0;
}

bool config_is_clustering_key(const yaml_event_t *kev)
{
    return key_is(kev, "clustering") || key_is(kev, "cluster_peers");
}

/* A peer list, a list or one string; what names it in messages. Each entry is checked with the
 * ones before it (duplicates are found at their line): config_check_peers bounds the list. */
static int load_peers(struct config_loader *l, config_t *cfg, const char *what)
{
    const struct config_list_spec spec = {what, "a node ID or ID@HOST:PORT",
                                          "a list of node IDs or one string", config_check_peers,
                                          true};
    char *peers, why[512];
    int line, rc = config_load_list(l, &spec, &peers, &line);
    if (rc < 0) return rc;
    if (config_set(cfg, "cluster_peers", peers, why, sizeof why) != 0)
        rc = config_loader_fail(l, line, "%s: %s", what, why);
    free(peers);
    return rc;
}

/* "unknown setting" names the known ones. */
static int unknown_key(struct config_loader *l, int line, const char *kname)
{
    buf_t known;
    buf_init(&known);
    for (size_t i = 0; i < NKEYS; i++)
        buf_printf(&known, "%s%s", i ? ", " : "", clustering_keys[i].name);
    int rc = config_loader_fail(l, line, "unknown setting \"%s\" in clustering (known: %.*s)",
                                kname, (int)known.len, known.data);
    buf_free(&known);
    return rc;
}

/* One "node_id: a" of the section; the key event is read. */
static int load_clustering_pair(struct config_loader *l, void *ctx, const yaml_event_t *kev)
{
    config_t *cfg = ctx;
    char kname[64], vtext[64], why[512];
    int kline = config_line_of(&kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT || config_has_nul(kev))
        return config_loader_fail(l, kline, "clustering setting names must be plain words");
    config_printable(kname, sizeof kname, (const char *)kev->data.scalar.value);
    size_t i = 0;
    while (i < NKEYS && !key_is(kev, clustering_keys[i].name))
        i++;
    if (i == NKEYS) return unknown_key(l, kline, kname);
    const char *setting = clustering_keys[i].setting;
    if (strcmp(setting, "cluster_peers") == 0) return load_peers(l, cfg, "clustering peers");

    yaml_event_t vev;
    const char *v;
    int rc = config_load_present(l, "clustering ", kname, &vev, &v);
    if (rc < 0) return rc;
    int vline = config_line_of(&vev.start_mark);
    if (config_set(cfg, setting, v, why, sizeof why) == 0)
        config_note_origin(cfg, setting, l->path, vline);
    else
        rc = config_loader_fail(l, vline, "clustering %s: invalid value \"%s\": %s", kname,
                                config_printable(vtext, sizeof vtext, v), why);
    yaml_event_delete(&vev);
    return rc;
}

/* The section: null or a mapping. Being there means clustered, which a clustered: false in it
 * (read after this) turns off again. */
static int load_section(struct config_loader *l, config_t *cfg)
{
    bool empty;
    int rc = config_begin_section(l, "clustering", "node_id, bootstrap, peers, ...", &empty);
    if (rc < 0) return rc;
    cfg->clustered = true;
    return empty ? 0 : config_each_pair(l, load_clustering_pair, cfg);
}

int config_load_clustering(struct config_loader *l, config_t *cfg, const yaml_event_t *kev)
{
    if (key_is(kev, "cluster_peers")) return load_peers(l, cfg, "cluster_peers");
    return load_section(l, cfg);
}

/* ---- how the settings fit together ---------------------------------------------------------- */

int config_validate_clustering(const config_t *cfg, char *err, size_t errlen)
{
    /* Not clustered, NSS ignores the cluster_* settings; so does this (each value was still
     * checked as it was set). */
    if (!cfg->clustered) return 0;
    /* Every node must recover what the cluster committed: the log is applied to the store. */
    if (cfg->store == CONFIG_STORE_MEMORY && cfg->store_set)
        return config_failf(err, errlen,
                            "clustered mode needs a persistent store (--store MEMORY is not "
                            "allowed)");
    if (cfg->store == CONFIG_STORE_MEMORY)
        return config_failf(err, errlen,
                            "clustered mode needs a persistent store: give --dir (or --store "
                            "LMDB); MEMORY, the default without them, is not allowed");
    return config_check_raft_timeouts(cfg, err, errlen);
}

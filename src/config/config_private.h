/* config_private.h: how the files of the config module use each other. They form layers, each
 * calling only those below it: config_yaml.c (error sentences, the YAML primitives: its own
 * header), config_url.c, config_peers.c < config_hb.c < config_settings.c < config_limits.c,
 * config_tls.c, config_cluster.c, config_clustering.c < config_file.c < config_flags.c. Not a
 * public API. */
#ifndef STANZA_CONFIG_PRIVATE_H
#define STANZA_CONFIG_PRIVATE_H
#include "config.h"
#include "config_yaml.h"

/* Where a setting may appear in the file: the top-level mapping or store_limits. Flags (and
 * config_set) reach both. */
enum config_section { CONFIG_SEC_TOP, CONFIG_SEC_STORE_LIMITS };

/* ---- settings (config_settings.c) ---- */

/* Every setting within its range (as config_set would accept it); STZ_ECONFIG with
 * "key: reason" in err. */
int config_validate_settings(const config_t *cfg, char *err, size_t errlen);

/* A size as it is written: 1GB, 64MB, 4KB or plain bytes. */
void config_fmt_size(char *buf, size_t len, int64_t v);

/* One "key: value" setting of a flat section; the key event is already read. */
int config_load_pair(struct config_loader *l, config_t *cfg, const yaml_event_t *kev,
                     enum config_section sec);

/* Sets one field of a store_limits.channels entry by its key (the global limit's name or alias,
 * e.g. "max_msgs", "max_subscriptions"). Unlike the global setting, a negative value (of any
 * form: -1, -1MB, -1s) is accepted and kept negative, meaning unlimited. Returns 0; STZ_ENOENT
 * if the key is not a per-channel limit; STZ_EINVAL with the reason in err if the value is bad. */
bool config_is_channel_limit(const char *key);
int config_set_channel_limit(config_limits_t *lim, const char *key, const char *value, char *err,
                             size_t errlen);

/* ---- store_limits (config_limits.c) ---- */

/* The value of a store_limits (alias limits) key, not yet read: a mapping, or null for none. */
int config_load_store_limits(struct config_loader *l, config_t *cfg, const yaml_event_t *kev);

/* After a file is loaded: no more literal channels than max_channels. */
int config_check_channel_count(struct config_loader *l, const config_t *cfg);

/* For config_validate: entries well-formed and within max_channels; STZ_ECONFIG with
 * "key: reason". */
int config_validate_channel_limits(const config_t *cfg, char *err, size_t errlen);

/* ---- settings checked against each other (config_hb.c) ---- */

/* For config_validate: hb_timeout shorter than hb_interval; STZ_ECONFIG with "WHERE: reason" in
 * err, WHERE being what config_note_origin recorded for the offending value. */
int config_check_heartbeats(const config_t *cfg, char *err, size_t errlen);
/* For config_validate: monitor_require_token only with an admin_token; STZ_ECONFIG with
 * "WHERE: reason". */
int config_check_admin(const config_t *cfg, char *err, size_t errlen);
/* The Raft heartbeat timeout shorter than the election timeout; as config_check_heartbeats. */
int config_check_raft_timeouts(const config_t *cfg, char *err, size_t errlen);
/* A duration as it is written: 2s, 150ms. */
void config_fmt_ms(char *buf, size_t len, int64_t ms);

/* ---- the tls section (config_tls.c) ---- */

/* True for the key "tls", whose value may be a section (nats-server's tls block) or a boolean. */
bool config_is_tls_section(const yaml_event_t *kev);
/* The value of "tls", not yet read: a boolean, or a mapping of cert_file, key_file, ca_file,
 * verify. The files must be readable; errors name the file and line. */
int config_load_tls(struct config_loader *l, config_t *cfg, const yaml_event_t *kev);
/* For config_validate: with TLS on, a certificate and a key that can be read; STZ_ECONFIG with
 * the reason in err. */
int config_validate_tls(const config_t *cfg, char *err, size_t errlen);
/* For config_validate: -ns URLs well-formed; the client certificate and key given together and
 * readable; TLS options only with -ns. STZ_ECONFIG with the reason in err. */
int config_validate_upstream(const config_t *cfg, char *err, size_t errlen);
/* config_url.c: a comma-separated list of URLs, each config_parse_route_url's form (and with
 * tls_ok, also tls://...: -ns); 0, or STZ_ECONFIG with the first bad one quoted in why. */
int config_check_url_list(const char *list, bool tls_ok, char *why, size_t len);

/* ---- clustered mode's values (config_peers.c) ---- */

/* 0, or STZ_ECONFIG with the reason in why: a node ID (config_node_id_valid); a Raft listen
 * address (config_parse_host_port, port 0 allowed); a peer list (config_parse_peer entries,
 * comma-separated, blanks around them allowed, no ID twice, at most CONFIG_PEERS_MAX). */
int config_check_node_id(const char *s, char *why, size_t len);
int config_check_raft_listen(const char *s, char *why, size_t len);
int config_check_peers(const char *list, char *why, size_t len);
/* config_check_peers, and on success the list as stored: entries without blanks, joined with
 * commas, in *out (malloc'd). */
int config_peers_normalize(const char *list, char **out, char *why, size_t len);

/* ---- the cluster section (config_cluster.c) ---- */

/* True for the key "cluster": a section of listen, routes (a list or "url,url"), name. */
bool config_is_cluster_section(const yaml_event_t *kev);
/* The value of "cluster", not yet read; each URL is checked where it is read (file:line). */
int config_load_cluster(struct config_loader *l, config_t *cfg, const yaml_event_t *kev);
/* For config_validate: route URLs well-formed (flags too), routes only with a listen URL, a
 * cluster name without spaces; STZ_ECONFIG with the reason in err. */
int config_validate_cluster(const config_t *cfg, char *err, size_t errlen);

/* ---- clustered mode (config_clustering.c) ---- */

/* True for the keys "clustering" (a section of NSS's names: node_id, bootstrap, peers, ...;
 * its presence sets clustered) and "cluster_peers" (a list, or one "a,b" string). */
bool config_is_clustering_key(const yaml_event_t *kev);
/* The value of such a key, not yet read; errors name the file and the line. */
int config_load_clustering(struct config_loader *l, config_t *cfg, const yaml_event_t *kev);
/* For config_validate, when clustered: a persistent store, the Raft heartbeat timeout shorter
 * than the election timeout; STZ_ECONFIG with the reason in err. */
int config_validate_clustering(const config_t *cfg, char *err, size_t errlen);

#endif

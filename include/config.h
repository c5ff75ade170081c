/* config: the daemon's settings, from defaults, a YAML file and command-line flags (in that order
 * of precedence, lowest first).
 *
 * Flags are parsed Go-style, as nats-streaming-server does, because scripts and client test
 * suites start the server with NSS's flags: one or two dashes, "-flag value" or "-flag=value",
 * booleans as "-flag" or "-flag=true|false". Errors name the flag, or file:line for the YAML file.
 *
 * Ownership: a config_t owns all its strings; config_free releases them. */
#ifndef STANZA_CONFIG_H
#define STANZA_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef enum { CONFIG_STORE_LMDB, CONFIG_STORE_MEMORY } config_store_t;

/* Channel limits (NSS semantics). In the global set, 0 means unlimited. In a per-channel entry,
 * 0 (or omitted) means "inherit from the wider entry or the global value" and a negative value
 * means unlimited; config_channel_limits resolves that. */
#define CONFIG_BACKOFF_MAX 16 /* entries of redelivery_backoff */
typedef struct config_limits {
    int64_t max_msgs;          /* -mm/--max_msgs; default 1000000 */
    int64_t max_bytes;         /* -mb/--max_bytes (size); default 1000000 KB (1024000000) */
    int64_t max_age_ms;        /* -ma/--max_age (duration); default 0 */
    int64_t max_subs;          /* -msu/--max_subs; default 1000 */
    int64_t max_inactivity_ms; /* -mi/--max_inactivity (duration); default 0 */
    /* key "discard": what a channel at max_msgs or max_bytes does with a publish. OLD (the
     * default, NSS's behaviour) evicts the oldest messages; NEW refuses the publish with a
     * PubAck error. INHERIT (0) only in a per-channel entry. */
    int discard;
    /* key "redelivery_backoff", a list of durations: the wait before the n-th redelivery of a
     * message to a subscription is the larger of its AckWait and entry n (the last repeats).
     * nbackoff 0 = none. backoff_set: given (an empty list included), for a per-channel entry
     * to override the wider ones; unset = inherit. */
    bool backoff_set;
    int nbackoff;
    int64_t backoff_ms[CONFIG_BACKOFF_MAX];
    /* key "max_deliveries": deliveries of a message to a subscription (or queue group) without
     * an ack after which it goes to the dead-letter channel instead of out again; 0 = no limit
     * (per channel: 0 inherits, negative = no limit). */
    int64_t max_deliveries;
    /* key "dead_letter": the dead-letter channel's name, "{channel}" replaced by the origin's;
     * NULL = inherit (global NULL: CONFIG_DEAD_LETTER_DEFAULT). In cfg->limits and in
     * cfg->channel_limits the config owns it (config_free frees it); a resolved copy
     * (config_channel_limits) points to the config's string, valid while the config is. */
    char *dead_letter;
} config_limits_t;
#define CONFIG_DEAD_LETTER_DEFAULT "{channel}.dead"
#define CONFIG_DEAD_LETTER_TOKEN "{channel}"

enum { CONFIG_DISCARD_INHERIT = 0, CONFIG_DISCARD_OLD = 1, CONFIG_DISCARD_NEW = 2 };

/* One entry of store_limits.channels: a channel name or a pattern with * and > wildcards. */
typedef struct config_channel_limits {
    char *pattern;
    config_limits_t limits;
    int line; /* where it was defined, for messages */
} config_channel_limits_t;

typedef struct config {
    char *config_file; /* -c/--config; NULL if none */

    /* Client listener */
    char *host; /* -a/--addr, key "host" (alias "addr", "listen" as host only); default 0.0.0.0 */
    int port;   /* -p/--port, key "port"; default 4222 */
    /* Monitoring listener (served from the monitoring issue on) */
    char *http_host; /* key "http_host"; default: same as host */
    int http_port;   /* -m/--http_port, key "http_port"; default 0 = off */
    /* Admin operations under /admin/ on the monitoring port (issue 9): the bearer token they
     * require; NULL (unset or "") = they are all refused. At least 16 characters. */
    char *admin_token; /* --admin_token, key "admin_token" */
    /* Every monitoring endpoint but /healthz requires the token too; needs admin_token. */
    bool monitor_require_token;       /* --monitor_require_token, key "monitor_require_token" */
    char *monitor_require_token_from; /* where it was last set (config_note_origin) */

    /* Streaming identity and store (used from the streaming issue on) */
    char *cluster_id; /* -cid/--cluster_id, keys "cluster_id", "cid", "id"; "test-cluster" */
    /* -st/--store FILE|LMDB (persistent) or MEMORY; key "store". When neither the store nor
     * the directory is given, MEMORY, as NSS (client test suites start the server with bare
     * flags and expect an empty server each time); giving --dir alone means LMDB there. */
    config_store_t store;
    bool store_set; /* store given by a flag or the file */
    char *dir;      /* --dir, key "dir"; default "./data" */
    bool dir_set;

    /* Streaming engine */
    char *discover_prefix;  /* key "discover_prefix"; default "_STAN.discover" */
    int64_t hb_interval_ms; /* -hbi/--hb_interval, key "hb_interval"; default 30s */
    int64_t hb_timeout_ms;  /* -hbt/--hb_timeout, key "hb_timeout"; default 10s */
    int hb_fail_count;      /* -hbf/--hb_fail_count, key "hb_fail_count"; default 10 */
    /* --handover_grace, key "handover_grace"; default 2s, 0 = at once: how long a queue member
     * whose connection closed (or whose heartbeat went unanswered) keeps its unacked messages
     * before they go to the other members of its group */
    int64_t handover_grace_ms;
    /* Where hb_interval and hb_timeout were last set, "FILE:LINE" or "flag -NAME" (NULL: the
     * default): hb_timeout must be shorter than hb_interval, and the message says where. */
    char *hb_interval_from, *hb_timeout_from;
    bool file_sync;         /* --file_sync, key "file_sync"; default true: fsync each commit */
    bool replace_durable;   /* --replace_durable, key "replace_durable"; default false */
    int64_t max_channels;   /* -mc/--max_channels, key store_limits.max_channels; 100; 0 = none */
    config_limits_t limits; /* -mm -mb -ma -msu -mi; keys under store_limits */
    /* store_limits.channels, in file order; owned. */
    config_channel_limits_t *channel_limits;
    size_t nchannel_limits;

    /* NATS core limits */
    int64_t max_payload; /* key "max_payload", --max_payload; default 1 MiB; sizes take KB/MB/GB */
    int64_t max_pending; /* key "max_pending", --max_pending; outbound bytes per client; 64 MiB */
    int64_t max_control_line;  /* key "max_control_line"; default 4096 */
    int max_connections;       /* key "max_connections", --max_connections; default 65536 */
    int64_t ping_interval_ms;  /* key "ping_interval" (duration, or integer seconds); 2m */
    int max_pings_out;         /* key "ping_max" (alias "max_pings_out"); default 2 */
    int64_t write_deadline_ms; /* key "write_deadline"; default 10s: a client whose socket accepts
                                  nothing for this long is closed as a slow consumer */

    /* Routes (nats-server's cluster): the embedded server joins a full mesh of stanzads and
     * nats-servers. All NULL = no cluster listener, no routes. */
    char *cluster_listen; /* --cluster URL, key cluster.listen: where routes are accepted */
    char *cluster_routes; /* --routes URL[,URL...], key cluster.routes: comma-separated */
    char *cluster_name;   /* --cluster_name NAME, key cluster.name; NULL: adopt the peers' */

    /* Clustered mode (issue 11, being built): the streaming state replicated over Raft between
     * stanzads, with NSS's flags. Each key is also read flat at the top of the file or, by NSS's
     * own names (node_id, bootstrap, peers, ...), in a clustering: section, whose presence sets
     * clustered (unless it says clustered: false). Every value is checked as it is set; how
     * they fit together (a persistent store, heartbeat vs election) only when clustered: NSS
     * ignores the cluster_* settings otherwise. */
    bool clustered;         /* --clustered, key "clustered"; default false */
    char *cluster_node_id;  /* --cluster_node_id, key "cluster_node_id"; NULL: generated and kept;
                               config_node_id_valid's form (names NATS subjects and files) */
    bool cluster_bootstrap; /* --cluster_bootstrap, key "cluster_bootstrap"; default false */
    /* --cluster_peers ID[,ID...], key "cluster_peers" (a list or "a,b"): the members, this node
     * among them or not; each entry an ID or ID@HOST:PORT (that peer's Raft address; see
     * config_parse_peer). Stored without blanks, joined with commas, no ID twice; NULL: none. */
    char *cluster_peers;
    char *cluster_log_path;             /* --cluster_log_path DIR, key "cluster_log_path"; NULL */
    bool cluster_sync;                  /* --cluster_sync, key "cluster_sync"; default false */
    bool cluster_raft_logging;          /* --cluster_raft_logging, key "cluster_raft_logging" */
    bool cluster_allow_add_remove_node; /* --cluster_allow_add_remove_node, same key */
    /* --cluster_raft_listen HOST:PORT, key "cluster_raft_listen" (ours): where this node's Raft
     * transport listens; NULL: the client host, a free port; PORT 0 is a free port too. */
    char *cluster_raft_listen;
    /* --cluster_trailing_logs N, key "cluster_trailing_logs" (NSS's): log entries kept behind a
     * snapshot, so a follower a little behind catches up from the log; default 10240.
     * --cluster_snapshot_threshold N, key "cluster_snapshot_threshold" (ours): entries between
     * snapshots (each copies the whole store); default 8192. */
    int cluster_trailing_logs;
    int cluster_snapshot_threshold;
    /* --cluster_log_max_memory SIZE, key "cluster_log_max_memory" (ours): about how many bytes of
     * log entries libraft holds in memory (it keeps every entry since its last snapshot, and the
     * trailing ones); a snapshot is also taken when the entries since the last one reach half of
     * it, or a quarter of the store's size if that is more; 0: entry counts only. Default
     * 256MB. */
    int64_t cluster_log_max_memory;
    /* --cluster_raft_heartbeat_timeout, key "cluster_raft_heartbeat_timeout"; default 100ms;
     * --cluster_raft_election_timeout, key "cluster_raft_election_timeout"; default 800ms. Each
     * 10ms..60s, heartbeat shorter than election (checked when clustered). */
    int64_t cluster_raft_heartbeat_timeout_ms;
    int64_t cluster_raft_election_timeout_ms;
    char *cluster_raft_heartbeat_timeout_from, *cluster_raft_election_timeout_from; /* as hb_ */

    /* Upstream NATS (-ns): the streaming engine runs over an external NATS server or cluster
     * instead of the embedded listener (which is then not started). user/pass/token below are
     * then the credentials to reach it, as in NSS. */
    char *nats_server_url;   /* -ns/--nats_server URL[,URL...], key "nats_server_url"; NULL = off */
    char *nats_creds;        /* --nats_creds FILE, key "credentials" (alias "nats_creds") */
    bool nats_secure;        /* -secure, key "secure": require TLS to NATS */
    char *tls_client_cert;   /* -tls_client_cert, key "tls_client_cert" */
    char *tls_client_key;    /* -tls_client_key, key "tls_client_key" */
    char *tls_client_cacert; /* -tls_client_cacert, key "tls_client_cacert" (alias tls_client_ca) */

    /* Authentication for core clients; all NULL = open */
    char *user;  /* --user, key "user" */
    char *pass;  /* --pass, key "password" (alias "pass") */
    char *token; /* --auth, key "token" (alias "auth_token") */

    /* TLS on the client port (NSS's flags; nats-server's tls section in the file). On when tls,
     * tls_verify or a certificate is given; cert and key are then required. */
    bool tls;          /* --tls, key "tls" (or a tls: section) */
    char *tls_cert;    /* --tlscert, key "tls_cert"; tls.cert_file */
    char *tls_key;     /* --tlskey, key "tls_key"; tls.key_file */
    char *tls_ca_cert; /* --tlscacert, key "tls_ca_cert"; tls.ca_file: CA for client certs */
    bool tls_verify;   /* --tlsverify, key "tls_verify"; tls.verify: require client certs */

    /* Logging */
    char *log_file;  /* -l/--log, key "log_file" (alias "logfile", "log"); NULL = stderr */
    char *pid_file;  /* -P/--pid, key "pid_file"; NULL = none */
    bool debug;      /* -D, -DV; key "debug" */
    bool trace;      /* -V, -DV; key "trace" */
    bool stan_debug; /* -SD, -SDV; key "stan_debug" */
    bool stan_trace; /* -SV, -SDV; key "stan_trace" */
    bool logtime;    /* -T/--logtime; key "logtime"; default true */
} config_t;

/* Outcomes of config_from_args besides its errors (negative err.h codes): results, not errors. */
enum { CONFIG_OK = 0, CONFIG_SHOW_HELP = 1, CONFIG_SHOW_VERSION = 2 };

void config_init(config_t *cfg); /* defaults */
void config_free(config_t *cfg);

/* Loads a YAML file over cfg. Returns 0, or with a message in err: STZ_ECONFIG for what the file
 * says ("path:line: ..."), -errno when it cannot be read, STZ_E2BIG for one too large to be a
 * config file ("path: ..."). */
int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen);

/* The whole start-up sequence: defaults, then the file named by -c (if any), then every other
 * flag on top, then validation. argv[0] is the program name. Returns CONFIG_OK,
 * CONFIG_SHOW_HELP (-h/--help), CONFIG_SHOW_VERSION (-v/--version), or a negative code with a
 * message in err (STZ_ECONFIG, or config_load_file's). cfg must be config_init'ed. */
int config_from_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* The effective limits for a channel (a literal name): the global limits, overridden by every
 * matching entry of store_limits.channels from the widest pattern to the narrowest (a literal
 * match last; '>' patterns before others, shorter ones first, then more wildcards first; equals
 * in file order); each non-zero field of an entry overrides, a negative one becoming 0
 * (unlimited). */
void config_channel_limits(const config_t *cfg, const char *channel, config_limits_t *out);

/* Prints every flag with a one-line description. */
void config_usage(FILE *out, const char *prog);

/* Sets one setting by its file key or an alias ("port", "addr", "max_payload", ...) from its text
 * form, exactly as the file and the flags do; value NULL means YAML null, which unsets optional
 * strings (http_host, user, pass, token, log_file, pid_file; "" unsets them too) and is an error
 * for everything else. The settings of the file's store_limits section go by their name in it
 * ("max_msgs", "max_subscriptions"; they reject negative values, 0 being unlimited); its
 * "channels" come only from the file. Returns 0; STZ_ENOENT if the key is unknown; STZ_EINVAL if
 * the value is bad, with the reason (no key, no value, e.g. "must be between 0 and 65535") in
 * err. */
int config_set(config_t *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Checks every setting's range, and that settings which depend on each other agree (hb_timeout
 * shorter than hb_interval), as config_from_args does last (useful after editing a config_t in
 * code). Returns 0, or STZ_ECONFIG with "key: reason" in err ("WHERE: reason" for two settings
 * that disagree, WHERE being what config_note_origin recorded). */
int config_validate(const config_t *cfg, char *err, size_t errlen);

/* Records where a setting was set: where is a file (with line > 0) or e.g. "flag -hbi" (line 0).
 * Kept only for settings checked against each other (hb_interval, hb_timeout,
 * monitor_require_token, cluster_raft_heartbeat_timeout, cluster_raft_election_timeout). */
void config_note_origin(config_t *cfg, const char *key, const char *where, int line);

/* Parsers shared by the file and flags (exposed for tests). Return 0 or STZ_EINVAL.
 * Sizes: plain bytes or a number with K/KB/M/MB/G/GB (1024-based, case-insensitive).
 * Durations: Go-style "1h2m3s", "500ms", "1.5s", "10us" (units ns, us, ms, s, m, h); a plain
 * integer means seconds. Rounded to the nearest millisecond, but a non-zero duration is at least
 * 1 ms so that it never turns into 0. Negative durations are rejected.
 * Booleans: true/false, yes/no, on/off, 1/0, t/f, y/n (case-insensitive). */
int config_parse_size(const char *s, int64_t *out);
int config_parse_duration_ms(const char *s, int64_t *out);
int config_parse_bool(const char *s, bool *out);
/* A route URL as nats-server takes it: [nats://|nats-route://][user[:pass]@]host:port, an IPv6
 * host in brackets. Copies the host (brackets removed) into host and sets *port (1..65535; with
 * the port missing, 6222 as nats-server's default). Returns 0 or STZ_EINVAL. */
int config_parse_route_url(const char *url, size_t len, char *host, size_t hostlen, int *port);

/* Clustered mode's forms. A node ID: 1..CONFIG_NODE_ID_MAX characters of [A-Za-z0-9_-]. */
#define CONFIG_NODE_ID_MAX 64
#define CONFIG_PEERS_MAX 64 /* entries of cluster_peers */
bool config_node_id_valid(const char *s, size_t len);
/* A Raft address HOST:PORT: HOST a name or IPv4 address, or an IPv6 address in brackets; PORT
 * 0..65535 (0: any free port, where the caller allows it). Copies the host (brackets removed)
 * into host and sets *port. Returns 0 or STZ_EINVAL. */
int config_parse_host_port(const char *s, size_t len, char *host, size_t hostlen, int *port);
/* One entry of cluster_peers: "ID" or "ID@HOST:PORT" (PORT 1..65535). Copies the ID into id, the
 * host into host ("" without an address) and sets *port (0 without an address). Returns 0 or
 * STZ_EINVAL. */
int config_parse_peer(const char *s, size_t len, char id[CONFIG_NODE_ID_MAX + 1], char *host,
                      size_t hostlen, int *port);

#endif

/* config_settings: what each setting is (its default, and the table of names, aliases, types and
 * ranges), the value parsers, and setting one from its text: config_set, a store_limits.channels
 * field, one "key: value" of the file. The file's sections (config_limits.c, config_tls.c) and the
 * flags (config_flags.c) all set values through here, so that a setting means the same thing, and
 * is checked the same way, wherever it comes from. */
#include "config.h"
#include "config_private.h"

#include "err.h"
#include "subject.h"
#include "xalloc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)

/* ---- defaults ---- */

void config_init(config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = xstrdup("0.0.0.0");
    cfg->port = 4222;
    cfg->http_port = 0;
    cfg->cluster_id = xstrdup("test-cluster");
    cfg->store = CONFIG_STORE_MEMORY; /* see config.h: --dir alone turns LMDB on */
    cfg->dir = xstrdup("./data");
    /* Streaming defaults are NSS's, so that clients tuned for NSS behave the same here. */
    cfg->discover_prefix = xstrdup("_STAN.discover");
    cfg->hb_interval_ms = 30 * 1000;
    cfg->hb_timeout_ms = 10 * 1000;
    cfg->hb_fail_count = 10;
    cfg->handover_grace_ms = 2 * 1000;
    cfg->file_sync = true;
    cfg->replace_durable = false;
    cfg->max_channels = 100;
    cfg->limits = (config_limits_t){
        .max_msgs = 1000000,
        .max_bytes = 1000000 * KIB,
        .max_age_ms = 0,
        .max_subs = 1000,
        .max_inactivity_ms = 0,
        .discard = CONFIG_DISCARD_OLD,
    };
    cfg->max_payload = 1 * MIB;
    cfg->max_pending = 64 * MIB;
    cfg->max_control_line = 4096;
    cfg->max_connections = 65536;
    cfg->ping_interval_ms = 2 * 60 * 1000;
    cfg->max_pings_out = 2;
    cfg->write_deadline_ms = 10 * 1000;
    cfg->logtime = true;
    /* Raft's: an election within about 1-2 s of a leader's loss (NSS's defaults take ~6 s). */
    cfg->cluster_raft_heartbeat_timeout_ms = 100;
    cfg->cluster_raft_election_timeout_ms = 800;
    cfg->cluster_trailing_logs = 10240;
    cfg->cluster_snapshot_threshold = 8192;
    cfg->cluster_log_max_memory = 256 * MIB;
}

void config_free(config_t *cfg)
{
    free(cfg->config_file);
    free(cfg->host);
    free(cfg->cluster_listen);
    free(cfg->cluster_routes);
    free(cfg->cluster_name);
    free(cfg->cluster_node_id);
    free(cfg->cluster_peers);
    free(cfg->cluster_log_path);
    free(cfg->cluster_raft_listen);
    free(cfg->cluster_raft_heartbeat_timeout_from);
    free(cfg->cluster_raft_election_timeout_from);
    free(cfg->http_host);
    free(cfg->admin_token);
    free(cfg->monitor_require_token_from);
    free(cfg->cluster_id);
    free(cfg->dir);
    free(cfg->discover_prefix);
    free(cfg->limits.dead_letter);
    for (size_t i = 0; i < cfg->nchannel_limits; i++) {
        free(cfg->channel_limits[i].pattern);
        free(cfg->channel_limits[i].limits.dead_letter);
    }
    free(cfg->channel_limits);
    free(cfg->user);
    free(cfg->pass);
    free(cfg->token);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->tls_ca_cert);
    free(cfg->nats_server_url);
    free(cfg->nats_creds);
    free(cfg->tls_client_cert);
    free(cfg->tls_client_key);
    free(cfg->tls_client_cacert);
    free(cfg->log_file);
    free(cfg->pid_file);
    free(cfg->hb_interval_from);
    free(cfg->hb_timeout_from);
    /* Leaves only NULLs behind, so a second config_free is harmless. */
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- value parsers ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Unsigned decimal digits, at least one, no sign; stops at the first non-digit. */
static int parse_digits(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    if (!is_digit(*s)) return STZ_EINVAL;
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) return STZ_EINVAL;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

/* A whole string that is a decimal integer with an optional sign. */
static int parse_int64(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t v;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    if (parse_digits(&s, &v) < 0 || *s) return STZ_EINVAL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int config_parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *suffix;
        int64_t mult;
    } units[] = {{"", 1},     {"b", 1},     {"k", KIB}, {"kb", KIB}, {"kib", KIB}, {"m", MIB},
                 {"mb", MIB}, {"mib", MIB}, {"g", GIB}, {"gb", GIB}, {"gib", GIB}};
    uint64_t v;
    if (!s || parse_digits(&s, &v) < 0) return STZ_EINVAL;
    const char *num_end = s;
    while (*s == ' ') /* "1 MB" reads as well as "1MB", but "1 " is not a size */
        s++;
    if (s != num_end && !*s) return STZ_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(s, units[i].suffix) != 0) continue;
        if (v > (uint64_t)(INT64_MAX / units[i].mult)) return STZ_EINVAL;
        *out = (int64_t)v * units[i].mult;
        return 0;
    }
    return STZ_EINVAL;
}

/* Go's time.ParseDuration units, in nanoseconds. */
static int64_t duration_unit(const char *u, size_t n)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {{"ns", 1},
                 {"us", 1000},
                 {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
                 {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
                 {"ms", 1000000},
                 {"s", 1000000000LL},
                 {"m", 60 * 1000000000LL},
                 {"h", 3600 * 1000000000LL}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) return units[i].ns;
    return 0;
}

int config_parse_duration_ms(const char *s, int64_t *out)
{
    uint64_t v;
    if (!s || !*s) return STZ_EINVAL;
    if (*s == '+' && !*++s) return STZ_EINVAL;

    /* A plain integer is seconds, as in nats-server's config files. */
    const char *p = s;
    if (parse_digits(&p, &v) == 0 && *p == '\0') {
        if (v > (uint64_t)(INT64_MAX / 1000)) return STZ_EINVAL;
        *out = (int64_t)v * 1000;
        return 0;
    }

    /* Otherwise a sequence of <number><unit>, as Go's time.ParseDuration. */
    uint64_t total_ns = 0;
    while (*s) {
        uint64_t whole = 0, frac = 0;
        double scale = 1;
        bool have_whole = parse_digits(&s, &whole) == 0, have_frac = false;
        if (!have_whole && is_digit(*s)) return STZ_EINVAL; /* digits, but too many */
        if (*s == '.') {
            s++;
            for (; is_digit(*s); s++) {
                have_frac = true;
                /* Digits past ~18 add nothing at nanosecond precision; drop them as Go does. */
                if (frac < UINT64_MAX / 100) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                }
            }
        }
        if (!have_whole && !have_frac) return STZ_EINVAL;
        const char *u = s;
        while (*s && *s != '.' && !is_digit(*s))
            s++;
        int64_t unit = duration_unit(u, (size_t)(s - u));
        if (!unit) return STZ_EINVAL; /* missing or unknown unit */
        if (whole > (uint64_t)(INT64_MAX / unit)) return STZ_EINVAL;
        uint64_t ns = whole * (uint64_t)unit;
        if (have_frac) ns += (uint64_t)((double)frac * ((double)unit / scale));
        if (ns > (uint64_t)INT64_MAX - total_ns) return STZ_EINVAL;
        total_ns += ns;
    }
    int64_t ms = (int64_t)((total_ns + 500000) / 1000000);
    /* A non-zero duration never becomes 0, which settings read as "off" or reject. */
    if (ms == 0 && total_ns > 0) ms = 1;
    *out = ms;
    return 0;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", "t", "y"};
    static const char *const no[] = {"false", "no", "off", "0", "f", "n"};
    if (!s) return STZ_EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return STZ_EINVAL;
}

static int parse_discard(const char *s, int *out)
{
    if (strcasecmp(s, "old") == 0) return *out = CONFIG_DISCARD_OLD, 0;
    if (strcasecmp(s, "new") == 0) return *out = CONFIG_DISCARD_NEW, 0;
    return STZ_EINVAL;
}

static int parse_store(const char *s, config_store_t *out)
{
    if (strcasecmp(s, "lmdb") == 0 || strcasecmp(s, "file") == 0) {
        *out = CONFIG_STORE_LMDB; /* FILE is NSS's name for its persistent store */
        return 0;
    }
    if (strcasecmp(s, "memory") == 0) {
        *out = CONFIG_STORE_MEMORY;
        return 0;
    }
    return STZ_EINVAL;
}

/* ---- the settings table ---- */

enum ktype {
    K_STR,    /* required string */
    K_OPTSTR, /* optional string: NULL or "" unsets */
    K_SECRET, /* optional string as K_OPTSTR, at least SECRET_MIN long when set, never echoed */
    K_ID,     /* a literal subject: cluster ID, discover prefix */
    K_INT,    /* int, decimal */
    K_INT64,  /* int64, decimal */
    K_SIZE,   /* int64 bytes */
    K_DUR,    /* int64 milliseconds */
    K_BOOL,
    K_STORE,
    K_DISCARD,  /* int: old or new (config.h's CONFIG_DISCARD_*) */
    K_DEAD,     /* char *: a dead-letter channel name, "{channel}" standing for the origin */
    K_URLS,     /* optional string: comma-separated NATS URLs (config_check_url_list) */
    K_NODEID,   /* optional string: a node ID; "" is not one */
    K_PEERS,    /* optional string: cluster peers, stored normalized (config_peers_normalize) */
    K_RAFTADDR, /* optional string: a Raft listen address HOST:PORT */
};

struct key {
    const char *name;
    const char *alias[3];
    enum ktype type;
    size_t off;
    int64_t min, max; /* K_INT, K_INT64, K_SIZE, K_DUR */
};

#define OFF(field) offsetof(config_t, field)
#define SECRET_MIN 16 /* a guessable admin token would be no protection */
#define DISCARD_FORM "must be old or new"
#define DEAD_FORM                                                                                  \
    "must be a channel name (no wildcards), where {channel} stands for the origin channel's"
/* A store_limits setting: 0 means unlimited, and there is no upper bound. */
#define LIMIT(type, field) type, OFF(field), 0, INT64_MAX
/* A Raft timeout, 10ms to 60s: shorter fires on scheduling noise, longer is no failover. */
#define RAFT_TIMEOUT(field) K_DUR, OFF(field), 10, 60 * 1000
static const struct key keys[] = {
    {"host", {"addr", "listen"}, K_STR, OFF(host), 0, 0},
    {"port", {0}, K_INT, OFF(port), 0, 65535},
    {"http_host", {0}, K_OPTSTR, OFF(http_host), 0, 0},
    {"http_port", {0}, K_INT, OFF(http_port), 0, 65535},
    {"admin_token", {0}, K_SECRET, OFF(admin_token), 0, 0},
    {"monitor_require_token", {0}, K_BOOL, OFF(monitor_require_token), 0, 0},
    {"cluster_id", {"cid", "id"}, K_ID, OFF(cluster_id), 0, 0},
    {"store", {0}, K_STORE, OFF(store), 0, 0},
    {"dir", {0}, K_STR, OFF(dir), 0, 0},
    {"discover_prefix", {0}, K_ID, OFF(discover_prefix), 0, 0},
    {"hb_interval", {0}, K_DUR, OFF(hb_interval_ms), 1, INT64_MAX},
    {"hb_timeout", {0}, K_DUR, OFF(hb_timeout_ms), 1, INT64_MAX},
    {"hb_fail_count", {0}, K_INT, OFF(hb_fail_count), 1, INT_MAX},
    {"handover_grace", {0}, K_DUR, OFF(handover_grace_ms), 0, INT64_MAX},
    {"file_sync", {0}, K_BOOL, OFF(file_sync), 0, 0},
    {"replace_durable", {0}, K_BOOL, OFF(replace_durable), 0, 0},
    {"max_payload", {0}, K_SIZE, OFF(max_payload), 1, 64 * MIB},
    /* Below 64 KiB even the INFO line and a few replies could close every client at once. */
    {"max_pending", {0}, K_SIZE, OFF(max_pending), 64 * KIB, INT64_MAX},
    {"max_control_line", {0}, K_SIZE, OFF(max_control_line), 1, INT32_MAX},
    {"max_connections", {0}, K_INT, OFF(max_connections), 1, INT_MAX},
    {"ping_interval", {0}, K_DUR, OFF(ping_interval_ms), 1, INT64_MAX},
    {"ping_max", {"max_pings_out"}, K_INT, OFF(max_pings_out), 1, INT_MAX},
    {"write_deadline", {0}, K_DUR, OFF(write_deadline_ms), 1, INT64_MAX},
    {"user", {0}, K_OPTSTR, OFF(user), 0, 0},
    {"password", {"pass"}, K_OPTSTR, OFF(pass), 0, 0},
    {"token", {"auth_token"}, K_OPTSTR, OFF(token), 0, 0},
    {"tls", {0}, K_BOOL, OFF(tls), 0, 0},
    {"tls_cert", {"tlscert"}, K_OPTSTR, OFF(tls_cert), 0, 0},
    {"tls_key", {"tlskey"}, K_OPTSTR, OFF(tls_key), 0, 0},
    {"tls_ca_cert", {"tlscacert"}, K_OPTSTR, OFF(tls_ca_cert), 0, 0},
    {"tls_verify", {"tlsverify"}, K_BOOL, OFF(tls_verify), 0, 0},
    /* The cluster section's keys (config_cluster.c), also reachable flat, as the flags set them. */
    {"cluster_listen", {0}, K_OPTSTR, OFF(cluster_listen), 0, 0},
    {"cluster_routes", {0}, K_OPTSTR, OFF(cluster_routes), 0, 0},
    {"cluster_name", {0}, K_OPTSTR, OFF(cluster_name), 0, 0},
    /* Clustered mode (Raft); also NSS's names in the clustering section (config_clustering.c). */
    {"clustered", {0}, K_BOOL, OFF(clustered), 0, 0},
    {"cluster_node_id", {0}, K_NODEID, OFF(cluster_node_id), 0, 0},
    {"cluster_bootstrap", {0}, K_BOOL, OFF(cluster_bootstrap), 0, 0},
    {"cluster_peers", {0}, K_PEERS, OFF(cluster_peers), 0, 0},
    {"cluster_log_path", {0}, K_OPTSTR, OFF(cluster_log_path), 0, 0},
    {"cluster_sync", {0}, K_BOOL, OFF(cluster_sync), 0, 0},
    {"cluster_raft_logging", {0}, K_BOOL, OFF(cluster_raft_logging), 0, 0},
    {"cluster_allow_add_remove_node", {0}, K_BOOL, OFF(cluster_allow_add_remove_node), 0, 0},
    {"cluster_raft_listen", {0}, K_RAFTADDR, OFF(cluster_raft_listen), 0, 0},
    {"cluster_trailing_logs", {0}, K_INT, OFF(cluster_trailing_logs), 0, INT_MAX},
    {"cluster_snapshot_threshold", {0}, K_INT, OFF(cluster_snapshot_threshold), 1, INT_MAX},
    {"cluster_log_max_memory", {0}, K_SIZE, OFF(cluster_log_max_memory), 0, INT64_MAX},
    {"cluster_raft_heartbeat_timeout", {0}, RAFT_TIMEOUT(cluster_raft_heartbeat_timeout_ms)},
    {"cluster_raft_election_timeout", {0}, RAFT_TIMEOUT(cluster_raft_election_timeout_ms)},
    {"nats_server_url", {"nats_server"}, K_URLS, OFF(nats_server_url), 0, 0},
    {"credentials", {"nats_creds"}, K_OPTSTR, OFF(nats_creds), 0, 0},
    {"secure", {0}, K_BOOL, OFF(nats_secure), 0, 0},
    {"tls_client_cert", {0}, K_OPTSTR, OFF(tls_client_cert), 0, 0},
    {"tls_client_key", {0}, K_OPTSTR, OFF(tls_client_key), 0, 0},
    {"tls_client_cacert", {"tls_client_ca"}, K_OPTSTR, OFF(tls_client_cacert), 0, 0},
    {"log_file", {"logfile", "log"}, K_OPTSTR, OFF(log_file), 0, 0},
    {"pid_file", {0}, K_OPTSTR, OFF(pid_file), 0, 0},
    {"debug", {0}, K_BOOL, OFF(debug), 0, 0},
    {"trace", {0}, K_BOOL, OFF(trace), 0, 0},
    {"stan_debug", {0}, K_BOOL, OFF(stan_debug), 0, 0},
    {"stan_trace", {0}, K_BOOL, OFF(stan_trace), 0, 0},
    {"logtime", {0}, K_BOOL, OFF(logtime), 0, 0},
    /* store_limits (is_store_limit); the short aliases are NSS's config-file names. Every key
     * whose field lies in cfg->limits is also a per-channel limit (config_set_channel_limit). */
    {"max_channels", {"mc"}, LIMIT(K_INT64, max_channels)},
    {"max_msgs", {"mm"}, LIMIT(K_INT64, limits.max_msgs)},
    {"max_bytes", {"mb"}, LIMIT(K_SIZE, limits.max_bytes)},
    {"max_age", {"ma"}, LIMIT(K_DUR, limits.max_age_ms)},
    {"max_subs", {"msu", "max_subscriptions"}, LIMIT(K_INT64, limits.max_subs)},
    {"max_inactivity", {"mi"}, LIMIT(K_DUR, limits.max_inactivity_ms)},
    {"discard", {0}, K_DISCARD, OFF(limits.discard), 0, 0},
    {"max_deliveries", {0}, LIMIT(K_INT64, limits.max_deliveries)},
    {"dead_letter", {0}, K_DEAD, OFF(limits.dead_letter), 0, 0},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static bool in_limits(size_t off)
{
    return off >= OFF(limits) && off < OFF(limits) + sizeof(config_limits_t);
}

/* The settings of the store_limits section; in all of them 0 means unlimited. */
static bool is_store_limit(const struct key *k)
{
    return k->off == OFF(max_channels) || in_limits(k->off);
}

static enum config_section key_section(const struct key *k)
{
    return is_store_limit(k) ? CONFIG_SEC_STORE_LIMITS : CONFIG_SEC_TOP;
}

/* Keys are case-insensitive, as in nats-server's config files. */
static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcasecmp(name, keys[i].name) == 0) return &keys[i];
        for (size_t j = 0; j < 3 && keys[i].alias[j]; j++)
            if (strcasecmp(name, keys[i].alias[j]) == 0) return &keys[i];
    }
    return NULL;
}

void config_fmt_size(char *buf, size_t len, int64_t v)
{
    if (v >= GIB && v % GIB == 0)
        snprintf(buf, len, "%lldGB", (long long)(v / GIB));
    else if (v >= MIB && v % MIB == 0)
        snprintf(buf, len, "%lldMB", (long long)(v / MIB));
    else if (v >= KIB && v % KIB == 0)
        snprintf(buf, len, "%lldKB", (long long)(v / KIB));
    else
        snprintf(buf, len, "%lld", (long long)v);
}

/* Why a number is out of range, in the unit the user writes it in. */
static int range_fail(const struct key *k, char *err, size_t errlen)
{
    char lo[32], hi[32];
    if (is_store_limit(k))
        return config_failf(err, errlen, "must not be negative (0 means unlimited)");
    if (k->type == K_DUR) {
        config_fmt_ms(lo, sizeof(lo), k->min);
        config_fmt_ms(hi, sizeof(hi), k->max);
    } else if (k->type == K_SIZE) {
        config_fmt_size(lo, sizeof(lo), k->min);
        config_fmt_size(hi, sizeof(hi), k->max);
    } else {
        snprintf(lo, sizeof(lo), "%lld", (long long)k->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)k->max);
    }
    if (k->max == INT64_MAX || k->max == INT_MAX || k->max == INT32_MAX)
        return config_failf(err, errlen, "must be at least %s", lo);
    return config_failf(err, errlen, "must be between %s and %s", lo, hi);
}

/* What a value of a number-like type must look like, for messages. */
static const char *number_form(const struct key *k)
{
    switch (k->type) {
    case K_SIZE:
        return "not a size (bytes, or a number with KB, MB or GB)";
    case K_DUR:
        return "not a duration (e.g. 2m, 10s, 500ms, or seconds)";
    default:
        return "not an integer";
    }
}

/* Parses a K_INT, K_INT64, K_SIZE or K_DUR value, without range checks. A negative integer is
 * returned as such for sizes too, so that the range check, not "not a size", reports it. */
static int parse_number(const struct key *k, const char *s, int64_t *n, char *err, size_t errlen)
{
    int rc;
    switch (k->type) {
    case K_SIZE:
        rc = config_parse_size(s, n);
        if (rc < 0 && parse_int64(s, n) == 0 && *n < 0) rc = 0;
        break;
    case K_DUR:
        rc = config_parse_duration_ms(s, n);
        break;
    default:
        rc = parse_int64(s, n);
        break;
    }
    return rc < 0 ? config_failf(err, errlen, "%s", number_form(k)) : 0;
}

static int set_number(char *base, const struct key *k, const char *value, char *err, size_t errlen)
{
    int64_t n;
    /* "-1s" is not a duration at all; say what is wrong with it rather than that. */
    if (is_store_limit(k) && *value == '-') return range_fail(k, err, errlen);
    int rc = parse_number(k, value, &n, err, errlen);
    if (rc < 0) return rc;
    if (n < k->min || n > k->max) return range_fail(k, err, errlen);
    if (k->type == K_INT)
        *(int *)base = (int)n;
    else
        *(int64_t *)base = n;
    return 0;
}

/* Whether name, with "{channel}" standing for any channel, is a channel name: checked with a
 * one-token stand-in (a longer origin may still make it too long: the engine checks that). */
static bool dead_letter_valid(const char *name)
{
    char buf[1024];
    size_t n = 0, tlen = strlen(CONFIG_DEAD_LETTER_TOKEN);
    for (const char *p = name; *p; n++) {
        if (n + 1 >= sizeof(buf)) return false;
        bool token = strncmp(p, CONFIG_DEAD_LETTER_TOKEN, tlen) == 0;
        buf[n] = token ? 'x' : *p;
        p += token ? tlen : 1;
    }
    return n > 0 && subject_valid_channel(buf, n);
}

static int set_dead_letter(char **field, const char *value, char *err, size_t errlen)
{
    if (!dead_letter_valid(value)) return config_failf(err, errlen, "%s", DEAD_FORM);
    free(*field);
    *field = xstrdup(value);
    return 0;
}

/* Optional strings, which YAML null unsets. */
static bool is_optional(enum ktype t)
{
    return t == K_OPTSTR || t == K_SECRET || t == K_URLS || t == K_NODEID || t == K_PEERS ||
           t == K_RAFTADDR;
}

/* The checks of clustered mode's strings (config_peers.c); a peer list also comes back in the
 * form it is stored in (*norm, malloc'd; NULL for the others). */
static int check_cluster_text(enum ktype t, const char *value, char **norm, char *why, size_t len)
{
    *norm = NULL;
    if (t == K_NODEID) return config_check_node_id(value, why, len);
    if (t == K_RAFTADDR) return config_check_raft_listen(value, why, len);
    return config_peers_normalize(value, norm, why, len);
}

static int set_cluster_text(char **field, const struct key *k, const char *value, char *err,
                            size_t errlen)
{
    char *norm = NULL;
    /* "" unsets, as for other optional strings, but is no node ID */
    if ((*value || k->type == K_NODEID) &&
        check_cluster_text(k->type, value, &norm, err, errlen) != 0)
        return STZ_ECONFIG;
    free(*field);
    *field = norm ? norm : *value ? xstrdup(value) : NULL;
    return 0;
}

/* A store or a directory given by a flag or the file (config.h): either alone means LMDB. */
static void note_given(config_t *cfg, const struct key *k)
{
    if (k->off == OFF(store)) cfg->store_set = true;
    if (k->off == OFF(dir)) cfg->dir_set = true;
}

static int set_value(config_t *cfg, const struct key *k, const char *value, char *err,
                     size_t errlen)
{
    char *base = (char *)cfg + k->off;
    if (!value) {
        if (!is_optional(k->type)) return config_failf(err, errlen, "missing value");
        free(*(char **)base);
        *(char **)base = NULL;
        return 0;
    }
    switch (k->type) {
    case K_STR:
    case K_ID:
    case K_OPTSTR:
    case K_SECRET:
        if (k->type == K_SECRET && *value && strlen(value) < SECRET_MIN)
            return config_failf(err, errlen, "must be at least %d characters", SECRET_MIN);
        if ((k->type == K_STR || k->type == K_ID) && !*value)
            return config_failf(err, errlen, "must not be empty");
        if (k->type == K_ID && !subject_valid_name(value, strlen(value)))
            return config_failf(err, errlen,
                                "must be a valid subject (no spaces, wildcards or empty tokens)");
        free(*(char **)base);
        *(char **)base = *value ? xstrdup(value) : NULL;
        return 0;
    case K_INT:
    case K_INT64:
    case K_SIZE:
    case K_DUR:
        return set_number(base, k, value, err, errlen);
    case K_BOOL:
        if (config_parse_bool(value, (bool *)base) < 0)
            return config_failf(err, errlen, "not a boolean (true or false)");
        return 0;
    case K_STORE:
        if (parse_store(value, (config_store_t *)base) < 0)
            return config_failf(err, errlen, "unknown store type (want LMDB, FILE or MEMORY)");
        return 0;
    case K_DISCARD:
        if (parse_discard(value, (int *)base) < 0)
            return config_failf(err, errlen, "%s", DISCARD_FORM);
        return 0;
    case K_DEAD:
        return set_dead_letter((char **)base, value, err, errlen);
    case K_URLS:
        if (*value && config_check_url_list(value, true, err, errlen) != 0) return STZ_ECONFIG;
        free(*(char **)base);
        *(char **)base = *value ? xstrdup(value) : NULL;
        return 0;
    case K_NODEID:
    case K_PEERS:
    case K_RAFTADDR:
        return set_cluster_text((char **)base, k, value, err, errlen);
    }
    return config_failf(err, errlen, "internal error: bad setting type");
}

int config_set(config_t *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    const struct key *k = find_key(key);
    if (!k) {
        config_failf(err, errlen, "unknown setting");
        return STZ_ENOENT;
    }
    if (set_value(cfg, k, value, err, errlen) < 0) return STZ_EINVAL;
    note_given(cfg, k);
    return 0;
}

bool config_is_channel_limit(const char *key)
{
    const struct key *k = find_key(key);
    return k && in_limits(k->off);
}

int config_set_channel_limit(config_limits_t *lim, const char *key, const char *value, char *err,
                             size_t errlen)
{
    const struct key *k = find_key(key);
    if (!config_is_channel_limit(key)) {
        config_failf(err, errlen, "unknown limit");
        return STZ_ENOENT;
    }
    if (k->type == K_DISCARD) {
        if (parse_discard(value, &lim->discard) == 0) return 0;
        config_failf(err, errlen, "%s", DISCARD_FORM);
        return STZ_EINVAL;
    }
    if (k->type == K_DEAD)
        return set_dead_letter(&lim->dead_letter, value, err, errlen) < 0 ? STZ_EINVAL : 0;
    /* The sign is taken off first so that every form of a negative value ("-1", "-1MB", "-1s")
     * reads as unlimited; a second sign is not a number. */
    bool neg = *value == '-';
    const char *s = value + neg;
    int64_t n;
    if ((neg && (*s == '-' || *s == '+')) || parse_number(k, s, &n, err, errlen) < 0 || n < 0) {
        config_failf(err, errlen, "%s", number_form(k));
        return STZ_EINVAL;
    }
    *(int64_t *)((char *)lim + (k->off - OFF(limits))) = neg ? -n : n;
    return 0;
}

int config_validate_settings(const config_t *cfg, char *err, size_t errlen)
{
    char why[256], *norm;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        const char *base = (const char *)cfg + k->off;
        int64_t n = 0;
        const char *s;
        switch (k->type) {
        case K_STR:
        case K_ID:
            s = *(char *const *)base;
            if (!s || !*s) return config_failf(err, errlen, "%s: must not be empty", k->name);
            if (k->type == K_ID && !subject_valid_name(s, strlen(s)))
                return config_failf(err, errlen, "%s: must be a valid subject", k->name);
            continue;
        case K_SECRET:
            s = *(char *const *)base;
            if (s && *s && strlen(s) < SECRET_MIN)
                return config_failf(err, errlen, "%s: must be at least %d characters", k->name,
                                    SECRET_MIN);
            continue;
        case K_OPTSTR:
        case K_URLS:
        case K_BOOL:
            continue;
        case K_NODEID:
        case K_PEERS:
        case K_RAFTADDR:
            s = *(char *const *)base;
            if (!s || (!*s && k->type != K_NODEID)) continue; /* as set_value: "" is unset */
            if (check_cluster_text(k->type, s, &norm, why, sizeof why) != 0)
                return config_failf(err, errlen, "%s: %s", k->name, why);
            free(norm);
            continue;
        case K_STORE:
            if (cfg->store != CONFIG_STORE_LMDB && cfg->store != CONFIG_STORE_MEMORY)
                return config_failf(err, errlen, "%s: unknown store type", k->name);
            continue;
        case K_DISCARD:
            if (cfg->limits.discard != CONFIG_DISCARD_OLD &&
                cfg->limits.discard != CONFIG_DISCARD_NEW)
                return config_failf(err, errlen, "%s: %s", k->name, DISCARD_FORM);
            continue;
        case K_DEAD:
            s = cfg->limits.dead_letter;
            if (s && !dead_letter_valid(s))
                return config_failf(err, errlen, "%s: %s", k->name, DEAD_FORM);
            continue;
        case K_INT:
            n = *(const int *)base;
            break;
        case K_INT64:
        case K_SIZE:
        case K_DUR:
            n = *(const int64_t *)base;
            break;
        }
        if (n < k->min || n > k->max) {
            range_fail(k, why, sizeof(why));
            return config_failf(err, errlen, "%s: %s", k->name, why);
        }
    }
    return 0;
}

/* The key of a setting in section sec, or NULL with l->err set. */
static const struct key *section_key(struct config_loader *l, const yaml_event_t *kev,
                                     enum config_section sec)
{
    char kname[64];
    int line = config_line_of(&kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT) {
        config_loader_fail(l, line, "setting names must be plain words, not %s",
                           config_node_kind(kev->type));
        return NULL;
    }
    config_printable(kname, sizeof(kname), (const char *)kev->data.scalar.value);
    const struct key *k =
        config_has_nul(kev) ? NULL : find_key((const char *)kev->data.scalar.value);
    if (k && key_section(k) == sec) return k;
    if (sec == CONFIG_SEC_STORE_LIMITS)
        config_loader_fail(l, line, "unknown setting \"%s\" in store_limits", kname);
    else if (k) /* a limit written at the top level, as a flag would be: say where it goes */
        config_loader_fail(l, line, "unknown setting \"%s\" (it belongs under store_limits)",
                           kname);
    else
        config_loader_fail(l, line, "unknown setting \"%s\"", kname);
    return NULL;
}

int config_load_pair(struct config_loader *l, config_t *cfg, const yaml_event_t *kev,
                     enum config_section sec)
{
    char kname[64], vtext[64], why[128];
    const struct key *k = section_key(l, kev, sec);
    if (!k) return STZ_ECONFIG;
    config_printable(kname, sizeof(kname), (const char *)kev->data.scalar.value);

    yaml_event_t vev;
    const char *v;
    int rc = config_load_value(l, kname, &vev, &v);
    if (rc < 0) return rc;
    int vline = config_line_of(&vev.start_mark);
    if (set_value(cfg, k, v, why, sizeof(why)) == 0) {
        note_given(cfg, k);
        config_note_origin(cfg, k->name, l->path, vline);
    } else {
        if (!v)
            rc = config_loader_fail(l, vline, "\"%s\" needs a value", kname);
        else if (k->type == K_SECRET) /* the message must not show a secret, even a bad one */
            rc = config_loader_fail(l, vline, "invalid value for \"%s\": %s", kname, why);
        else
            rc = config_loader_fail(l, vline, "invalid value \"%s\" for \"%s\": %s",
                                    config_printable(vtext, sizeof(vtext), v), kname, why);
    }
    yaml_event_delete(&vev);
    return rc;
}

/* config_flags: command-line flags, parsed as Go's flag package does for nats-streaming-server,
 * so that scripts and client test suites written for NSS start stanzad unchanged:
 * "-flag" and "--flag" are the same, a value follows as the next argument or after '=',
 * and a boolean flag never takes the next argument (only "-flag=false"). */
#include "config.h"
#include "config_private.h"

#include "err.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

enum fkind {
    FL_VALUE,   /* takes a value, applied with config_set(key) */
    FL_BOOL,    /* boolean, applied with config_set(key) */
    FL_CONFIG,  /* -c: loaded before every other flag */
    FL_HELP,    /* -h */
    FL_VERSION, /* -v */
    FL_DV,      /* -DV: debug and trace */
    FL_SDV,     /* -SDV: stan_debug and stan_trace */
};

struct flag {
    const char *names[3]; /* case-sensitive, as in Go: -V is trace, -v is version */
    enum fkind kind;
    const char *key; /* config_set key for FL_VALUE, FL_BOOL */
};

static const struct flag flags[] = {
    {{"a", "addr", "net"}, FL_VALUE, "host"},
    {{"p", "port"}, FL_VALUE, "port"},
    {{"m", "http_port"}, FL_VALUE, "http_port"},
    {{"admin_token"}, FL_VALUE, "admin_token"},
    {{"monitor_require_token"}, FL_BOOL, "monitor_require_token"},
    {{"c", "config"}, FL_CONFIG, NULL},
    {{"cid", "cluster_id"}, FL_VALUE, "cluster_id"},
    {{"st", "store"}, FL_VALUE, "store"},
    {{"dir"}, FL_VALUE, "dir"},
    {{"hbi", "hb_interval"}, FL_VALUE, "hb_interval"},
    {{"hbt", "hb_timeout"}, FL_VALUE, "hb_timeout"},
    {{"hbf", "hb_fail_count"}, FL_VALUE, "hb_fail_count"},
    {{"handover_grace"}, FL_VALUE, "handover_grace"},
    {{"file_sync"}, FL_BOOL, "file_sync"},
    {{"replace_durable"}, FL_BOOL, "replace_durable"},
    {{"mc", "max_channels"}, FL_VALUE, "max_channels"},
    {{"msu", "max_subs"}, FL_VALUE, "max_subs"},
    {{"mm", "max_msgs"}, FL_VALUE, "max_msgs"},
    {{"mb", "max_bytes"}, FL_VALUE, "max_bytes"},
    {{"ma", "max_age"}, FL_VALUE, "max_age"},
    {{"mi", "max_inactivity"}, FL_VALUE, "max_inactivity"},
    {{"D", "debug"}, FL_BOOL, "debug"},
    {{"V", "trace"}, FL_BOOL, "trace"},
    {{"DV"}, FL_DV, NULL},
    {{"SD", "stan_debug"}, FL_BOOL, "stan_debug"},
    {{"SV", "stan_trace"}, FL_BOOL, "stan_trace"},
    {{"SDV"}, FL_SDV, NULL},
    {{"T", "logtime"}, FL_BOOL, "logtime"},
    {{"l", "log"}, FL_VALUE, "log_file"},
    {{"P", "pid"}, FL_VALUE, "pid_file"},
    {{"v", "version"}, FL_VERSION, NULL},
    {{"h", "help"}, FL_HELP, NULL},
    {{"user"}, FL_VALUE, "user"},
    {{"pass"}, FL_VALUE, "password"},
    {{"auth"}, FL_VALUE, "token"},
    {{"max_payload"}, FL_VALUE, "max_payload"},
    {{"max_pending"}, FL_VALUE, "max_pending"},
    {{"max_control_line"}, FL_VALUE, "max_control_line"},
    {{"max_connections"}, FL_VALUE, "max_connections"},
    {{"ping_interval"}, FL_VALUE, "ping_interval"},
    {{"ping_max"}, FL_VALUE, "ping_max"},
    {{"write_deadline"}, FL_VALUE, "write_deadline"},
    {{"tls"}, FL_BOOL, "tls"},
    {{"tlscert"}, FL_VALUE, "tls_cert"},
    {{"tlskey"}, FL_VALUE, "tls_key"},
    {{"tlscacert"}, FL_VALUE, "tls_ca_cert"},
    {{"tlsverify"}, FL_BOOL, "tls_verify"},
    {{"cluster"}, FL_VALUE, "cluster_listen"},
    {{"routes"}, FL_VALUE, "cluster_routes"},
    {{"cluster_name"}, FL_VALUE, "cluster_name"},
    {{"clustered"}, FL_BOOL, "clustered"},
    {{"cluster_node_id"}, FL_VALUE, "cluster_node_id"},
    {{"cluster_bootstrap"}, FL_BOOL, "cluster_bootstrap"},
    {{"cluster_peers"}, FL_VALUE, "cluster_peers"},
    {{"cluster_log_path"}, FL_VALUE, "cluster_log_path"},
    {{"cluster_sync"}, FL_BOOL, "cluster_sync"},
    {{"cluster_raft_logging"}, FL_BOOL, "cluster_raft_logging"},
    {{"cluster_allow_add_remove_node"}, FL_BOOL, "cluster_allow_add_remove_node"},
    {{"cluster_raft_listen"}, FL_VALUE, "cluster_raft_listen"},
    {{"cluster_trailing_logs"}, FL_VALUE, "cluster_trailing_logs"},
    {{"cluster_snapshot_threshold"}, FL_VALUE, "cluster_snapshot_threshold"},
    {{"cluster_log_max_memory"}, FL_VALUE, "cluster_log_max_memory"},
    {{"cluster_raft_heartbeat_timeout"}, FL_VALUE, "cluster_raft_heartbeat_timeout"},
    {{"cluster_raft_election_timeout"}, FL_VALUE, "cluster_raft_election_timeout"},
    {{"ns", "nats_server"}, FL_VALUE, "nats_server_url"},
    {{"nats_creds", "credentials"}, FL_VALUE, "credentials"},
    {{"secure"}, FL_BOOL, "secure"},
    {{"tls_client_cert"}, FL_VALUE, "tls_client_cert"},
    {{"tls_client_key"}, FL_VALUE, "tls_client_key"},
    {{"tls_client_cacert"}, FL_VALUE, "tls_client_cacert"},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* One flag as found in argv; name and value point into argv. */
struct arg {
    const struct flag *flag;
    const char *name; /* without dashes, name_len long (it may be followed by "=value") */
    int name_len;
    const char *value; /* NULL for a boolean given without "=value" */
};

static const struct flag *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++)
        for (size_t j = 0; j < 3 && flags[i].names[j]; j++)
            if (strlen(flags[i].names[j]) == len && memcmp(flags[i].names[j], name, len) == 0)
                return &flags[i];
    return NULL;
}

static bool takes_value(const struct flag *f)
{
    return f->kind == FL_VALUE || f->kind == FL_CONFIG;
}

/* Splits argv into flags, as Go's FlagSet.parseOne, storing *np of them in out. Returns
 * CONFIG_OK, STZ_ECONFIG, or CONFIG_SHOW_HELP/CONFIG_SHOW_VERSION as soon as -h/-v is met
 * (errors before it win, later ones are not looked at: Go stops there too). */
static int scan(int argc, char **argv, struct arg *out, int *np, char *err, size_t errlen)
{
    int n = 0;
    *np = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-' || s[1] == '\0')
            return config_failf(err, errlen, "unexpected argument \"%s\" (flags start with -)", s);
        const char *name = s + 1;
        if (*name == '-') {
            name++;
            if (!*name) { /* "--" ends the flags; stanzad takes no other arguments */
                if (i + 1 < argc)
                    return config_failf(err, errlen, "unexpected argument \"%s\"", argv[i + 1]);
                break;
            }
        }
        if (*name == '-' || *name == '=')
            return config_failf(err, errlen, "bad flag syntax: %s", s);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = find_flag(name, len);
        if (!f) return config_failf(err, errlen, "unknown flag: -%.*s", (int)len, name);

        const char *value = eq ? eq + 1 : NULL;
        if (!value && takes_value(f)) {
            if (i + 1 >= argc)
                return config_failf(err, errlen, "flag needs an argument: -%.*s", (int)len, name);
            value = argv[++i]; /* taken whatever it looks like, as Go does ("-p -1") */
        }
        if (f->kind == FL_HELP || f->kind == FL_VERSION) {
            bool on = true;
            if (value && config_parse_bool(value, &on) < 0)
                return config_failf(err, errlen,
                                    "invalid value \"%s\" for flag -%.*s: not a boolean", value,
                                    (int)len, name);
            if (on) return f->kind == FL_HELP ? CONFIG_SHOW_HELP : CONFIG_SHOW_VERSION;
            continue;
        }
        out[n++] = (struct arg){f, name, (int)len, value};
        *np = n;
    }
    return CONFIG_OK;
}

static int apply(config_t *cfg, const struct arg *a, char *err, size_t errlen)
{
    char why[256];
    const char *value = a->value ? a->value : "true";
    bool on;
    switch (a->flag->kind) {
    case FL_VALUE:
    case FL_BOOL:
        if (config_set(cfg, a->flag->key, value, why, sizeof(why)) == 0) {
            snprintf(why, sizeof(why), "flag -%.*s", a->name_len, a->name);
            config_note_origin(cfg, a->flag->key, why, 0);
            return 0;
        }
        break;
    case FL_DV:
    case FL_SDV:
        snprintf(why, sizeof(why), "not a boolean (true or false)");
        if (config_parse_bool(value, &on) < 0) break;
        if (a->flag->kind == FL_DV)
            cfg->debug = cfg->trace = on;
        else
            cfg->stan_debug = cfg->stan_trace = on;
        return 0;
    default: /* handled by the caller */
        return 0;
    }
    return config_failf(err, errlen, "invalid value \"%.100s\" for flag -%.*s: %s", value,
                        a->name_len, a->name, why);
}

int config_from_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    char why[256];
    struct arg *args = xcalloc(argc > 0 ? (size_t)argc : 1, sizeof(*args));
    int n, rc = scan(argc, argv, args, &n, err, errlen);
    if (rc != CONFIG_OK) {
        free(args);
        return rc;
    }

    /* The file first, wherever -c is, so that every other flag overrides it; the last -c wins,
     * and an empty one means none, as in NSS. */
    const char *file = NULL;
    for (int i = 0; i < n; i++)
        if (args[i].flag->kind == FL_CONFIG) file = args[i].value;
    if (file && *file) {
        rc = config_load_file(cfg, file, err, errlen);
        if (rc < 0) {
            free(args);
            return rc;
        }
        free(cfg->config_file);
        cfg->config_file = xstrdup(file);
    }

    for (int i = 0; i < n && rc == CONFIG_OK; i++)
        rc = apply(cfg, &args[i], err, errlen);
    free(args);
    if (rc != CONFIG_OK) return rc;
    if (!cfg->store_set && cfg->dir_set) cfg->store = CONFIG_STORE_LMDB;
    if (config_validate(cfg, why, sizeof(why)) < 0)
        return config_failf(err, errlen, "invalid configuration: %s", why);
    return CONFIG_OK;
}

/* ---- usage ---- */

/* Go-like, without the zero parts: "2m", "1h30m", "10s", "1s500ms". */
static void fmt_duration(char *buf, size_t len, int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } parts[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t off = 0;
    buf[0] = '\0';
    if (ms == 0) snprintf(buf, len, "0s");
    for (size_t i = 0; i < 4 && ms > 0 && off < len; i++) {
        if (ms < parts[i].ms) continue;
        int w =
            snprintf(buf + off, len - off, "%lld%s", (long long)(ms / parts[i].ms), parts[i].unit);
        if (w < 0) break;
        off += (size_t)w;
        ms %= parts[i].ms;
    }
}

/* The defaults the usage shows, by slot. */
enum shown {
    D_NONE,
    D_HOST,
    D_PORT,
    D_HTTP_PORT,
    D_CID,
    D_STORE,
    D_DIR,
    D_HBI,
    D_HBT,
    D_HBF,
    D_GRACE,
    D_SYNC,
    D_REPLACE,
    D_MC,
    D_MSU,
    D_MM,
    D_MB,
    D_MA,
    D_MI,
    D_LOG,
    D_LOGTIME,
    D_PAYLOAD,
    D_PENDING,
    D_MCL,
    D_CONNS,
    D_PING,
    D_PINGMAX,
    D_WDEADLINE,
    D_TLS,
    D_RAFT_HB,
    D_RAFT_ELECTION,
    NSHOWN
};

/* The real defaults: those of a config_init'ed config. */
static void fill_defaults(char v[NSHOWN][48])
{
    config_t d;
    config_init(&d);
    const size_t n = 48;
    snprintf(v[D_HOST], n, "%s", d.host);
    snprintf(v[D_PORT], n, "%d", d.port);
    snprintf(v[D_HTTP_PORT], n, "%d = off", d.http_port);
    snprintf(v[D_CID], n, "%s", d.cluster_id);
    snprintf(v[D_STORE], n, "MEMORY, or LMDB when --dir is given");
    snprintf(v[D_DIR], n, "%s", d.dir);
    fmt_duration(v[D_HBI], n, d.hb_interval_ms);
    fmt_duration(v[D_HBT], n, d.hb_timeout_ms);
    snprintf(v[D_HBF], n, "%d", d.hb_fail_count);
    fmt_duration(v[D_GRACE], n, d.handover_grace_ms);
    snprintf(v[D_SYNC], n, "%s", d.file_sync ? "true" : "false");
    snprintf(v[D_REPLACE], n, "%s", d.replace_durable ? "true" : "false");
    snprintf(v[D_MC], n, "%lld", (long long)d.max_channels);
    snprintf(v[D_MSU], n, "%lld", (long long)d.limits.max_subs);
    snprintf(v[D_MM], n, "%lld", (long long)d.limits.max_msgs);
    config_fmt_size(v[D_MB], n, d.limits.max_bytes);
    fmt_duration(v[D_MA], n, d.limits.max_age_ms);
    fmt_duration(v[D_MI], n, d.limits.max_inactivity_ms);
    snprintf(v[D_LOG], n, "stderr");
    snprintf(v[D_LOGTIME], n, "%s", d.logtime ? "true" : "false");
    config_fmt_size(v[D_PAYLOAD], n, d.max_payload);
    config_fmt_size(v[D_PENDING], n, d.max_pending);
    config_fmt_size(v[D_MCL], n, d.max_control_line);
    snprintf(v[D_CONNS], n, "%d", d.max_connections);
    fmt_duration(v[D_PING], n, d.ping_interval_ms);
    snprintf(v[D_PINGMAX], n, "%d", d.max_pings_out);
    fmt_duration(v[D_WDEADLINE], n, d.write_deadline_ms);
    snprintf(v[D_TLS], n, "false");
    fmt_duration(v[D_RAFT_HB], n, d.cluster_raft_heartbeat_timeout_ms);
    fmt_duration(v[D_RAFT_ELECTION], n, d.cluster_raft_election_timeout_ms);
    config_free(&d);
}

/* One line of the usage: "    FLAG  HELP (default: ...)"; a row without a flag is a heading. */
static const struct {
    const char *flag;
    const char *help;
    enum shown def;
} usage[] = {
    {NULL, "Server Options", D_NONE},
    {"-a, --addr <host>", "Bind to host address", D_HOST},
    {"-p, --port <port>", "Use port for clients", D_PORT},
    {"-m, --http_port <port>", "Use port for HTTP monitoring", D_HTTP_PORT},
    {"    --admin_token <token>", "Bearer token of /admin/ (at least 16 characters)", D_NONE},
    {"    --monitor_require_token[=<bool>]", "Require the admin token on all but /healthz", D_NONE},
    {"-c, --config <file>", "Configuration file (YAML); other flags override it", D_NONE},
    {"-P, --pid <file>", "File to store the process ID in", D_NONE},
    {"    --user <user>", "User required for connections", D_NONE},
    {"    --pass <password>", "Password required for connections", D_NONE},
    {"    --auth <token>", "Authorization token required for connections", D_NONE},
    {"-h, --help", "Show this message", D_NONE},
    {"-v, --version", "Show version", D_NONE},
    {NULL, "Streaming Options", D_NONE},
    {"-cid, --cluster_id <string>", "Cluster ID", D_CID},
    {"-st, --store <string>", "Store type: LMDB (or FILE), MEMORY", D_STORE},
    {"    --dir <string>", "Directory of the persistent store", D_DIR},
    {"-hbi, --hb_interval <duration>", "Interval between heartbeats to clients", D_HBI},
    {"-hbt, --hb_timeout <duration>", "How long to wait for a heartbeat reply", D_HBT},
    {"-hbf, --hb_fail_count <n>", "Missed heartbeats before a client is closed", D_HBF},
    {"    --handover_grace <duration>",
     "A gone queue member's unacked messages go to the others after this", D_GRACE},
    {"    --file_sync[=<bool>]", "Sync the store to disk on each commit", D_SYNC},
    {"    --replace_durable[=<bool>]", "Let a new durable subscription replace an active one",
     D_REPLACE},
    {NULL, "Streaming Limits (0 means unlimited)", D_NONE},
    {"-mc, --max_channels <n>", "Maximum number of channels", D_MC},
    {"-msu, --max_subs <n>", "Maximum subscriptions per channel", D_MSU},
    {"-mm, --max_msgs <n>", "Maximum messages per channel", D_MM},
    {"-mb, --max_bytes <size>", "Maximum bytes of messages per channel", D_MB},
    {"-ma, --max_age <duration>", "Maximum age of messages in a channel", D_MA},
    {"-mi, --max_inactivity <duration>", "Delete a channel unused this long, with no subscription",
     D_MI},
    {NULL, "Logging Options", D_NONE},
    {"-l, --log <file>", "File to redirect log output to", D_LOG},
    {"-T, --logtime[=<bool>]", "Timestamp log entries", D_LOGTIME},
    {"-D, --debug[=<bool>]", "Enable debugging output", D_NONE},
    {"-V, --trace[=<bool>]", "Trace the raw protocol", D_NONE},
    {"-DV", "Debug and trace", D_NONE},
    {"-SD, --stan_debug[=<bool>]", "Enable STAN debugging output", D_NONE},
    {"-SV, --stan_trace[=<bool>]", "Trace the raw STAN protocol", D_NONE},
    {"-SDV", "STAN debug and trace", D_NONE},
    {NULL, "Limits", D_NONE},
    {"    --max_payload <size>", "Maximum message payload, at most 64MB", D_PAYLOAD},
    {"    --max_pending <size>", "Maximum bytes queued for a client", D_PENDING},
    {"    --max_control_line <size>", "Maximum protocol line length", D_MCL},
    {"    --max_connections <n>", "Maximum client connections", D_CONNS},
    {"    --ping_interval <duration>", "Interval between pings to clients", D_PING},
    {"    --ping_max <n>", "Unanswered pings before a client is closed", D_PINGMAX},
    {"    --write_deadline <duration>", "Close a client whose socket takes nothing this long",
     D_WDEADLINE},
    {NULL, "TLS Options (client port)", D_NONE},
    {"    --tls[=<bool>]", "Enable TLS, do not verify clients", D_TLS},
    {"    --tlscert <file>", "Server certificate file (PEM; enables TLS)", D_NONE},
    {"    --tlskey <file>", "Private key for the server certificate (PEM)", D_NONE},
    {"    --tlscacert <file>", "Client certificate CA for verification", D_NONE},
    {"    --tlsverify[=<bool>]", "Enable TLS, verify client certificates", D_NONE},
    {NULL, "Cluster (routes, as nats-server's)", D_NONE},
    {"    --cluster <url>", "Accept routes on this URL (nats://host:port)", D_NONE},
    {"    --routes <url,...>", "Routes to solicit and connect", D_NONE},
    {"    --cluster_name <name>", "Cluster name (default: adopted from the routes)", D_NONE},
    {NULL, "Clustered mode (streaming replicated over Raft, as NSS's; being built: issue 11)",
     D_NONE},
    {"    --clustered[=<bool>]", "Run in clustered mode (needs a persistent store)", D_NONE},
    {"    --cluster_node_id <id>", "This node's ID (default: generated and kept)", D_NONE},
    {"    --cluster_bootstrap[=<bool>]", "Bootstrap the cluster with this node", D_NONE},
    {"    --cluster_peers <id[@host:port],...>", "The cluster's nodes", D_NONE},
    {"    --cluster_log_path <dir>", "Directory of the Raft log (default: <dir>/raft)", D_NONE},
    {"    --cluster_sync[=<bool>]", "Sync the Raft log on each append", D_NONE},
    {"    --cluster_raft_logging[=<bool>]", "Log Raft's own messages", D_NONE},
    {"    --cluster_allow_add_remove_node[=<bool>]", "Allow adding and removing nodes", D_NONE},
    {"    --cluster_raft_listen <host:port>",
     "Raft transport address (default: client host, a free port)", D_NONE},
    {"    --cluster_raft_heartbeat_timeout <duration>", "Raft heartbeat timeout", D_RAFT_HB},
    {"    --cluster_raft_election_timeout <duration>", "Raft election timeout", D_RAFT_ELECTION},
    {"    --cluster_trailing_logs <n>", "Log entries kept after a snapshot (default: 10240)",
     D_NONE},
    {"    --cluster_snapshot_threshold <n>", "Log entries between snapshots (default: 8192)",
     D_NONE},
    {"    --cluster_log_max_memory <size>",
     "Log entries held in memory, about (default: 256MB; 0: no limit)", D_NONE},
    {NULL, "External NATS (the engine runs over it; no client listener of its own)", D_NONE},
    {"-ns, --nats_server <url,...>", "NATS server or cluster URLs to connect to", D_NONE},
    {"    --user, --pass, --auth", "With -ns: credentials to reach NATS", D_NONE},
    {"    --nats_creds <file>", "With -ns: NATS credentials file (JWT and NKey seed)", D_NONE},
    {"    --secure[=<bool>]", "With -ns: require TLS to NATS", D_NONE},
    {"    --tls_client_cert <file>", "With -ns: client certificate for NATS (PEM)", D_NONE},
    {"    --tls_client_key <file>", "With -ns: private key of that certificate (PEM)", D_NONE},
    {"    --tls_client_cacert <file>", "With -ns: CA to verify the NATS servers", D_NONE},
};

void config_usage(FILE *out, const char *prog)
{
    char def[NSHOWN][48];
    fill_defaults(def);
    fprintf(out, "Usage: %s [options]\n", prog ? prog : "stanzad");
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        if (!usage[i].flag) {
            fprintf(out, "\n%s:\n", usage[i].help);
            continue;
        }
        fprintf(out, "    %-31s %s", usage[i].flag, usage[i].help);
        if (usage[i].def != D_NONE) fprintf(out, " (default: %s)", def[usage[i].def]);
        fputc('\n', out);
    }
    fprintf(out, "\nEvery flag takes one or two dashes: -flag value, -flag=value; booleans\n"
                 "-flag or -flag=false. Sizes take KB, MB, GB; durations look like 1h2m3s,\n"
                 "500ms, or a number of seconds.\n");
}

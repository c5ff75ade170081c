/* cli_common.h: what every `stanza` subcommand shares.
 *
 * A command is one entry of a table (struct cli_command); main() in stanza.c looks the first
 * word up in the top-level table, and a command with sub-kinds (`bench core`) does the same with
 * its own table. Each command declares its options as a struct cli_opt array and hands it to
 * cli_parse(), which accepts options before, between and after positional arguments, so
 * `stanza pub foo hi --count 3` and `stanza pub --count 3 foo hi` mean the same.
 *
 * Exit codes are uniform: 0 success, 1 runtime failure (server unreachable, lost messages),
 * 2 usage error (unknown command or option, missing argument, bad number). */
#ifndef STANZA_CLI_COMMON_H
#define STANZA_CLI_COMMON_H

#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#ifndef STANZA_VERSION
#define STANZA_VERSION "unknown"
#endif

#define CLI_PROG "stanza"
#define CLI_DEFAULT_SERVER "nats://127.0.0.1:4222"
#define CLI_SERVER_ENV "STANZA_SERVER"
#define CLI_DEFAULT_CLUSTER "test-cluster"
#define CLI_CLUSTER_ENV "STANZA_CLUSTER"
#define CLI_DEFAULT_MONITOR "http://127.0.0.1:8222"
#define CLI_MONITOR_ENV "STANZA_MONITOR"
#define CLI_TOKEN_ENV "STANZA_ADMIN_TOKEN"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 2,
};

/* cli_parse() returns this when the command should go on running; any other value is the exit
 * code to return at once (0 after --help, 2 after a usage error). */
#define CLI_CONTINUE (-1)

/* Settings that apply to every command; the global options (-s/--server, -c/--cluster,
 * --client-id, -m/--monitor, --token) land here wherever they appear on the command line. */
struct cli_ctx {
    const char *server;
    const char *cluster;   /* STAN cluster id */
    const char *client_id; /* STAN client id; main() defaults it to "stanza-<pid>" */
    const char *monitor;   /* base URL of the server's HTTP monitoring (admin commands) */
    const char *token;     /* the server's admin_token, sent as a bearer token; NULL: none */
    bool client_id_given;  /* --client-id was on the command line (delete-durable and
                            * pause/resume then name that client's durable only) */
};

struct cli_command {
    const char *name;    /* the word typed on the command line */
    const char *usage;   /* synopsis after "stanza ", e.g. "pub SUBJECT MESSAGE [--count N]" */
    const char *summary; /* one line for the command list */
    const char *help;    /* option descriptions for `stanza help CMD`, or NULL */
    /* argv[0] is the command's own name, as for main(). */
    int (*run)(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv);
};

enum cli_opt_type {
    CLI_OPT_FLAG, /* dest is bool *, set to true; takes no value */
    CLI_OPT_STR,  /* dest is const char **, points into argv */
    CLI_OPT_INT,  /* dest is int64_t *, decimal, checked against [min, max] */
};

struct cli_opt {
    char short_name;       /* 0 if none */
    const char *long_name; /* without the leading "--"; NULL ends the table */
    enum cli_opt_type type;
    void *dest;
    int64_t min, max; /* CLI_OPT_INT only */
};

/* Parses argv[1..argc) against opts (plus the global options, and -h/--help, which print the
 * command's help). Positional arguments are stored in pos[0..*npos); fewer than min_pos or more
 * than max_pos is a usage error. "--" ends option parsing, so a message may start with '-'. */
int cli_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
              const struct cli_opt *opts, char **pos, int min_pos, int max_pos, int *npos);

/* The arguments of both pub commands: TARGET MESSAGE [--count N] (default 1), and --async when
 * async is not NULL. Returns CLI_CONTINUE or an exit code, as cli_parse. */
int cli_parse_pub(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                  int64_t *count, bool *async, const char **target, const char **message);

/* Tries to set a global option from argv[*i] (advancing *i past a separate value). Returns 1 if
 * it was one, 0 if not, or CLI_EXIT_USAGE after printing an error with cmd's usage (cmd may be
 * NULL before a command is known). Because globals are matched first, command options must not
 * use the short names 's', 'c', 'm' or 'h', nor the long names server, cluster, client-id, monitor,
 * token, help. */
int cli_parse_global(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                     int *i);

/* Parses a decimal integer in [min, max]; false if s is not one. */
bool cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Looks a command up by name in a table of n entries; NULL if absent. */
const struct cli_command *cli_find_command(const struct cli_command *const *table, int n,
                                           const char *name);

/* Runs a command made of sub-kinds (`core pub`, `bench stan`): global options may precede the
 * kind word; the kind's run() gets argv from the kind word on. With default_kind (may be NULL),
 * a missing kind, or an option where the kind would be, runs that kind with all of argv[1..). */
int cli_run_kind(struct cli_ctx *ctx, const struct cli_command *cmd,
                 const struct cli_command *const *kinds, int n,
                 const struct cli_command *default_kind, int argc, char **argv);

/* "stanza: <message>" then the command's usage line, on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The global options' lines of the help; printf arguments: CLI_GLOBAL_OPTIONS_ARGS. */
#define CLI_GLOBAL_OPTIONS_HELP                                                                    \
    "  -s, --server URL   server to connect to (default $%s or %s)\n"                              \
    "  -c, --cluster ID   streaming cluster id (default $%s or %s)\n"                              \
    "      --client-id ID streaming client id (default stanza-<pid>)\n"                            \
    "  -m, --monitor URL  HTTP monitoring of the server, for the admin commands\n"                 \
    "                     (default $%s or %s)\n"                                                   \
    "      --token T      the server's admin_token, sent with every monitoring request\n"          \
    "                     (default $%s, which keeps it out of the process list)\n"
#define CLI_GLOBAL_OPTIONS_ARGS                                                                    \
    CLI_SERVER_ENV, CLI_DEFAULT_SERVER, CLI_CLUSTER_ENV, CLI_DEFAULT_CLUSTER, CLI_MONITOR_ENV,     \
        CLI_DEFAULT_MONITOR, CLI_TOKEN_ENV

/* The full help of one command, on stdout. */
void cli_print_command_help(const struct cli_command *cmd);

/* "stanza: <what>: <libnats error>" on stderr; returns CLI_EXIT_FAIL. Call it on the thread
 * that saw the failure: libnats keeps the detailed error text per thread. */
int cli_nats_error(natsStatus s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Options for a connection to ctx->server, with a client name and a short connect timeout.
 * The caller may adjust them and passes them to cli_connect_opts(), which destroys them. */
natsStatus cli_options_new(const struct cli_ctx *ctx, natsOptions **out);

/* Connects with opts (destroyed either way). On failure prints
 * "stanza: cannot connect to URL: <why>" and returns CLI_EXIT_FAIL; else CLI_EXIT_OK. */
int cli_connect_opts(const struct cli_ctx *ctx, natsOptions *opts, natsConnection **nc);

/* cli_options_new() + cli_connect_opts(). reconnect=false makes a lost connection surface as an
 * error at once instead of being retried in the background. */
int cli_connect(const struct cli_ctx *ctx, bool reconnect, natsConnection **nc);

/* Options for a STAN connection over a NATS connection made as cli_options_new() makes it:
 * connect wait 2 s. The caller may adjust them and passes them to cli_stan_connect_opts(). */
natsStatus cli_stan_options_new(const struct cli_ctx *ctx, stanConnOptions **out);

/* Connects to the streaming server of ctx->cluster as client_id with opts (destroyed either
 * way). On failure prints why and returns CLI_EXIT_FAIL:
 *   "stanza: cannot connect to URL: <why>"                   (no NATS connection)
 *   "stanza: no streaming server for cluster \"C\" at URL: <why>" (nobody answered)
 *   "stanza: connect as \"ID\" to cluster \"C\" refused: <server's error>"
 * else returns CLI_EXIT_OK. */
int cli_stan_connect_opts(const struct cli_ctx *ctx, const char *client_id, stanConnOptions *opts,
                          stanConnection **sc);

/* cli_stan_options_new() + cli_stan_connect_opts() as ctx->client_id. */
int cli_stan_connect(const struct cli_ctx *ctx, stanConnection **sc);

/* The libnats thread-local error text for s, without the "(file.c:123): " prefix. */
const char *cli_nats_error_text(natsStatus s);

/* Set to 1 by SIGINT/SIGTERM once cli_install_stop_handlers() ran; long-running commands poll
 * it to stop cleanly. */
extern volatile sig_atomic_t cli_stop;
void cli_install_stop_handlers(void);

/* Seconds on the monotonic clock (clock.h's clock_mono_ns), for durations and rates. */
double cli_now(void);
/* The wall-clock time secs from now, as pthread_cond_timedwait takes its deadline
 * (CLOCK_REALTIME): the CLI's one deadline helper. */
struct timespec cli_deadline(double secs);

#endif

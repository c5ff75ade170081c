#include "cli_common.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* How long a connect attempt may take. libnats' default is 2 s too; spelled out because a CLI
 * pointed at a blackholed address should fail promptly rather than hang. */
#define CLI_CONNECT_TIMEOUT_MS 2000

bool cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s) return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

const struct cli_command *cli_find_command(const struct cli_command *const *table, int n,
                                           const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(table[i]->name, name) == 0) return table[i];
    return NULL;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", CLI_PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd)
        fprintf(stderr, "usage: %s %s\n", CLI_PROG, cmd->usage);
    else
        fprintf(stderr, "usage: %s [-s URL] COMMAND [ARGS...]  (try '%s help')\n", CLI_PROG,
                CLI_PROG);
    return CLI_EXIT_USAGE;
}

void cli_print_command_help(const struct cli_command *cmd)
{
    printf("usage: %s %s\n\n%s\n", CLI_PROG, cmd->usage, cmd->summary);
    if (cmd->help) printf("\n%s", cmd->help);
    printf("\nGlobal options:\n" CLI_GLOBAL_OPTIONS_HELP "  -h, --help         show this help\n",
           CLI_GLOBAL_OPTIONS_ARGS);
}

/* Splits "--name=value" / "-xvalue" forms: returns the value part, or NULL if the argument
 * carries none (the value is then the next argument). */
static const char *inline_value(const char *arg, size_t name_len)
{
    const char *rest = arg + name_len;
    if (arg[1] == '-') return *rest == '=' ? rest + 1 : NULL;
    return *rest ? rest : NULL;
}

/* Does arg name this option? For "--long" the name must end at '=' or the end of the string;
 * for "-x" any trailing characters are the inline value. Sets *name_len to the matched length
 * including the dashes. */
static bool option_matches(const char *arg, char short_name, const char *long_name,
                           size_t *name_len)
{
    if (arg[0] != '-') return false;
    if (arg[1] == '-') {
        size_t n = strlen(long_name);
        if (strncmp(arg + 2, long_name, n) != 0) return false;
        if (arg[2 + n] != '\0' && arg[2 + n] != '=') return false;
        *name_len = 2 + n;
        return true;
    }
    if (short_name && arg[1] == short_name) {
        *name_len = 2;
        return true;
    }
    return false;
}

/* Fetches the value of an option that takes one: inline, or the next argument. */
static const char *take_value(int argc, char **argv, int *i, size_t name_len)
{
    const char *v = inline_value(argv[*i], name_len);
    if (v) return v;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

int cli_parse_global(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                     int *i)
{
    static const struct {
        char short_name;
        const char *long_name;
        const char *what;
        size_t offset;
    } globals[] = {
        {'s', "server", "a URL", offsetof(struct cli_ctx, server)},
        {'c', "cluster", "a cluster id", offsetof(struct cli_ctx, cluster)},
        {0, "client-id", "a client id", offsetof(struct cli_ctx, client_id)},
        {'m', "monitor", "a URL", offsetof(struct cli_ctx, monitor)},
        {0, "token", "a token", offsetof(struct cli_ctx, token)},
    };
    for (size_t g = 0; g < sizeof(globals) / sizeof(globals[0]); g++) {
        size_t name_len = 0;
        if (!option_matches(argv[*i], globals[g].short_name, globals[g].long_name, &name_len))
            continue;
        const char *v = take_value(argc, argv, i, name_len);
        if (!v || !*v)
            return cli_usage_error(cmd, "option '--%s' needs %s", globals[g].long_name,
                                   globals[g].what);
        *(const char **)((char *)ctx + globals[g].offset) = v;
        if (globals[g].offset == offsetof(struct cli_ctx, client_id)) ctx->client_id_given = true;
        return 1;
    }
    return 0;
}

static int apply_option(const struct cli_command *cmd, const struct cli_opt *o, int argc,
                        char **argv, int *i, size_t name_len)
{
    const char *opt = argv[*i];
    if (o->type == CLI_OPT_FLAG) {
        if (inline_value(opt, name_len))
            return cli_usage_error(cmd, "option '--%s' takes no value", o->long_name);
        *(bool *)o->dest = true;
        return CLI_CONTINUE;
    }
    const char *v = take_value(argc, argv, i, name_len);
    if (!v) return cli_usage_error(cmd, "option '--%s' needs a value", o->long_name);
    if (o->type == CLI_OPT_STR) {
        if (!*v) return cli_usage_error(cmd, "option '--%s' needs a non-empty value", o->long_name);
        *(const char **)o->dest = v;
        return CLI_CONTINUE;
    }
    if (cli_parse_int(v, o->min, o->max, (int64_t *)o->dest)) return CLI_CONTINUE;
    /* Limits near INT64_MAX only guard against overflow; do not recite them. */
    if (o->max >= INT64_MAX / 4)
        return cli_usage_error(cmd, "invalid value '%s' for '--%s': expected an integer >= %lld", v,
                               o->long_name, (long long)o->min);
    return cli_usage_error(cmd,
                           "invalid value '%s' for '--%s': expected an integer from %lld to %lld",
                           v, o->long_name, (long long)o->min, (long long)o->max);
}

int cli_parse(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
              const struct cli_opt *opts, char **pos, int min_pos, int max_pos, int *npos)
{
    int n = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        /* A lone "-" is a positional argument by convention; "--" ends the options. */
        bool is_option = !options_done && arg[0] == '-' && arg[1] != '\0';
        if (is_option && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!is_option) {
            if (n >= max_pos) return cli_usage_error(cmd, "unexpected argument '%s'", arg);
            pos[n++] = arg;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_command_help(cmd);
            return CLI_EXIT_OK;
        }
        int g = cli_parse_global(ctx, cmd, argc, argv, &i);
        if (g == CLI_EXIT_USAGE) return g;
        if (g == 1) continue;

        const struct cli_opt *o = opts;
        size_t name_len = 0;
        while (o && o->long_name && !option_matches(arg, o->short_name, o->long_name, &name_len))
            o++;
        if (!o || !o->long_name) return cli_usage_error(cmd, "unknown option '%s'", arg);
        int rc = apply_option(cmd, o, argc, argv, &i, name_len);
        if (rc != CLI_CONTINUE) return rc;
    }
    if (n < min_pos) return cli_usage_error(cmd, "missing arguments");
    *npos = n;
    return CLI_CONTINUE;
}

int cli_parse_pub(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                  int64_t *count, bool *async, const char **target, const char **message)
{
    *count = 1;
    struct cli_opt opts[3] = {{0, "count", CLI_OPT_INT, count, 1, INT64_MAX}};
    if (async) opts[1] = (struct cli_opt){0, "async", CLI_OPT_FLAG, async, 0, 0};
    char *pos[2];
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, pos, 2, 2, &npos);
    if (rc != CLI_CONTINUE) return rc;
    *target = pos[0];
    *message = pos[1];
    return CLI_CONTINUE;
}

const char *cli_nats_error_text(natsStatus s)
{
    /* The thread-local last error carries detail (e.g. the server's -ERR text) that the bare
     * status name lacks; fall back to the status text when it is empty. */
    const char *detail = nats_GetLastError(NULL);
    if (!detail || !*detail) detail = natsStatus_GetText(s);
    /* Drop libnats' "(conn.c:2088): " source-location prefix; users want the reason. */
    if (detail[0] == '(') {
        const char *end = strstr(detail, "): ");
        if (end) detail = end + 3;
    }
    return detail;
}

int cli_nats_error(natsStatus s, const char *fmt, ...)
{
    const char *detail = cli_nats_error_text(s);
    va_list ap;
    fprintf(stderr, "%s: ", CLI_PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", detail);
    return CLI_EXIT_FAIL;
}

natsStatus cli_options_new(const struct cli_ctx *ctx, natsOptions **out)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, ctx->server);
    if (s == NATS_OK) s = natsOptions_SetName(opts, CLI_PROG " " STANZA_VERSION);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, CLI_CONNECT_TIMEOUT_MS);
    if (s != NATS_OK) {
        natsOptions_Destroy(opts);
        return s;
    }
    *out = opts;
    return NATS_OK;
}

int cli_connect_opts(const struct cli_ctx *ctx, natsOptions *opts, natsConnection **nc)
{
    natsStatus s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) return cli_nats_error(s, "cannot connect to %s", ctx->server);
    return CLI_EXIT_OK;
}

int cli_connect(const struct cli_ctx *ctx, bool reconnect, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus s = cli_options_new(ctx, &opts);
    if (s == NATS_OK && !reconnect) s = natsOptions_SetAllowReconnect(opts, false);
    if (s != NATS_OK) {
        natsOptions_Destroy(opts);
        /* SetURL is where a malformed URL is caught. */
        return cli_nats_error(s, "cannot connect to %s", ctx->server);
    }
    return cli_connect_opts(ctx, opts, nc);
}

natsStatus cli_stan_options_new(const struct cli_ctx *ctx, stanConnOptions **out)
{
    natsOptions *nopts = NULL;
    stanConnOptions *sopts = NULL;
    natsStatus s = cli_options_new(ctx, &nopts);
    if (s == NATS_OK) s = stanConnOptions_Create(&sopts);
    /* libnats copies the NATS options, and our URL with them (it forces reconnection on). */
    if (s == NATS_OK) s = stanConnOptions_SetNATSOptions(sopts, nopts);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionWait(sopts, CLI_CONNECT_TIMEOUT_MS);
    natsOptions_Destroy(nopts);
    if (s != NATS_OK) {
        stanConnOptions_Destroy(sopts);
        return s;
    }
    *out = sopts;
    return NATS_OK;
}

int cli_stan_connect_opts(const struct cli_ctx *ctx, const char *client_id, stanConnOptions *opts,
                          stanConnection **sc)
{
    natsStatus s = stanConnection_Connect(sc, ctx->cluster, client_id, opts);
    stanConnOptions_Destroy(opts);
    if (s == NATS_OK) return CLI_EXIT_OK;
    const char *detail = cli_nats_error_text(s);
    /* libnats returns NATS_ERR with the ConnectResponse's error text when the server answered
     * and said no; a timeout or "no responders" on the discover request (its text starts with
     * "stan:") means the NATS connection worked but no streaming server serves this cluster. */
    if (s == NATS_ERR && strncmp(detail, "stan:", 5) == 0)
        fprintf(stderr, "%s: connect as \"%s\" to cluster \"%s\" refused: %s\n", CLI_PROG,
                client_id, ctx->cluster, detail);
    else if (s == NATS_NO_RESPONDERS || (s == NATS_TIMEOUT && strstr(detail, "stan:")))
        fprintf(stderr, "%s: no streaming server for cluster \"%s\" at %s: %s\n", CLI_PROG,
                ctx->cluster, ctx->server, detail);
    else
        fprintf(stderr, "%s: cannot connect to %s: %s\n", CLI_PROG, ctx->server, detail);
    return CLI_EXIT_FAIL;
}

int cli_stan_connect(const struct cli_ctx *ctx, stanConnection **sc)
{
    stanConnOptions *opts = NULL;
    natsStatus s = cli_stan_options_new(ctx, &opts);
    if (s != NATS_OK) return cli_nats_error(s, "cannot connect to %s", ctx->server);
    return cli_stan_connect_opts(ctx, ctx->client_id, opts, sc);
}

int cli_run_kind(struct cli_ctx *ctx, const struct cli_command *cmd,
                 const struct cli_command *const *kinds, int n,
                 const struct cli_command *default_kind, int argc, char **argv)
{
    /* Global options may precede the kind: `stanza bench -s URL core`. */
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cli_print_command_help(cmd);
            for (int k = 0; k < n; k++) {
                printf("\n");
                cli_print_command_help(kinds[k]);
            }
            return CLI_EXIT_OK;
        }
        int g = cli_parse_global(ctx, cmd, argc, argv, &i);
        if (g == CLI_EXIT_USAGE) return g;
        if (g == 0) {
            /* A command option where the kind would be: the default kind's option. */
            if (default_kind) return default_kind->run(ctx, default_kind, argc, argv);
            return cli_usage_error(cmd, "options go after the %s kind", cmd->name);
        }
        i++;
    }
    if (i >= argc) {
        if (default_kind) return default_kind->run(ctx, default_kind, argc, argv);
        return cli_usage_error(cmd, "missing %s kind", cmd->name);
    }
    const struct cli_command *kind = cli_find_command(kinds, n, argv[i]);
    if (!kind) return cli_usage_error(cmd, "unknown %s kind '%s'", cmd->name, argv[i]);
    return kind->run(ctx, kind, argc - i, argv + i);
}

volatile sig_atomic_t cli_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

double cli_now(void)
{
    return (double)clock_mono_ns() / (double)CLOCK_NS_PER_SEC;
}

struct timespec cli_deadline(double secs)
{
    int64_t ns = clock_add_sat(clock_wall_ns(), (int64_t)(secs * (double)CLOCK_NS_PER_SEC));
    return (struct timespec){.tv_sec = (time_t)(ns / CLOCK_NS_PER_SEC),
                             .tv_nsec = (long)(ns % CLOCK_NS_PER_SEC)};
}

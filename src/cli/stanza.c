/* stanza.c: the `stanza` command-line client. main() resolves the global options, looks the
 * command word up in a table and hands the rest of argv to that command. */
#include "cli_commands.h"
#include "cli_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run_help(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv);
static int run_version(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv);

static const struct cli_command help_command = {
    .name = "help",
    .usage = "help [COMMAND]",
    .summary = "Show the list of commands, or the help of one command.",
    .run = run_help,
};

static const struct cli_command version_command = {
    .name = "version",
    .usage = "version",
    .summary = "Print the version of stanza and of the NATS client library.",
    .run = run_version,
};

/* The dispatch table, in the order `stanza help` lists them. */
static const struct cli_command *const commands[] = {
    &cli_pub_command,
    &cli_sub_command,
    &cli_core_command,
    &cli_bench_command,
    &cli_pending_command,
    &cli_channels_command,
    &cli_clients_command,
    &cli_server_command,
    &cli_cluster_command,
    &cli_msg_command,
    &cli_dead_command,
    &cli_requeue_command,
    &cli_purge_command,
    &cli_delete_channel_command,
    &cli_delete_durable_command,
    &cli_close_client_command,
    &cli_pause_command,
    &cli_resume_command,
    &version_command,
    &help_command,
};
#define N_COMMANDS ((int)(sizeof(commands) / sizeof(commands[0])))

static const struct cli_command *find_command(const char *name)
{
    return cli_find_command(commands, N_COMMANDS, name);
}

static void print_general_help(void)
{
    printf("usage: %s [-s URL] [-c CLUSTER] [--client-id ID] [-m URL] [--token T] COMMAND "
           "[ARGS...]\n\n"
           "Client for the stanza message-queue daemon: NATS Streaming (persistent channels)\n"
           "with pub/sub, plain NATS core with core pub/sub.\n\n"
           "Commands:\n",
           CLI_PROG);
    for (int i = 0; i < N_COMMANDS; i++) {
        /* The synopsis's first line; a long one gets the summary on a line of its own. */
        int len = (int)strcspn(commands[i]->usage, "\n");
        if (len <= 40)
            printf("  %-40.*s %s\n", len, commands[i]->usage, commands[i]->summary);
        else
            printf("  %.*s\n  %-40s %s\n", len, commands[i]->usage, "", commands[i]->summary);
    }
    printf("\nGlobal options (accepted before or after the command):\n" CLI_GLOBAL_OPTIONS_HELP
           "  -h, --help         show help (after a command: that command's help)\n"
           "      --version      same as the version command\n\n"
           "Exit status: 0 success, 1 runtime failure, 2 usage error.\n",
           CLI_GLOBAL_OPTIONS_ARGS);
}

static int run_help(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, NULL, pos, 0, 1, &npos);
    if (rc != CLI_CONTINUE) return rc;
    if (npos == 0) {
        print_general_help();
        return CLI_EXIT_OK;
    }
    const struct cli_command *target = find_command(pos[0]);
    if (!target) return cli_usage_error(cmd, "unknown command '%s'", pos[0]);
    cli_print_command_help(target);
    return CLI_EXIT_OK;
}

static void print_version(void)
{
    printf("%s %s (libnats %s)\n", CLI_PROG, STANZA_VERSION, nats_GetVersion());
}

static int run_version(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, NULL, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    print_version();
    return CLI_EXIT_OK;
}

/* Handles the options that precede the command word. Returns CLI_CONTINUE with *i at the command
 * word, or an exit code. */
static int parse_leading_options(struct cli_ctx *ctx, int argc, char **argv, int *i)
{
    for (; *i < argc && argv[*i][0] == '-'; ++*i) {
        const char *arg = argv[*i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_general_help();
            return CLI_EXIT_OK;
        }
        if (strcmp(arg, "--version") == 0) {
            print_version();
            return CLI_EXIT_OK;
        }
        int g = cli_parse_global(ctx, NULL, argc, argv, i);
        if (g == CLI_EXIT_USAGE) return g;
        if (g == 0) return cli_usage_error(NULL, "unknown option '%s'", arg);
    }
    return CLI_CONTINUE;
}

int main(int argc, char **argv)
{
    char client_id[32];
    snprintf(client_id, sizeof client_id, "stanza-%ld", (long)getpid());
    struct cli_ctx ctx = {
        .server = CLI_DEFAULT_SERVER,
        .cluster = CLI_DEFAULT_CLUSTER,
        .client_id = client_id,
        .monitor = CLI_DEFAULT_MONITOR,
    };
    const char *env = getenv(CLI_SERVER_ENV);
    if (env && *env) ctx.server = env;
    env = getenv(CLI_CLUSTER_ENV);
    if (env && *env) ctx.cluster = env;
    env = getenv(CLI_MONITOR_ENV);
    if (env && *env) ctx.monitor = env;
    env = getenv(CLI_TOKEN_ENV);
    if (env && *env) ctx.token = env;

    int i = 1;
    int rc = parse_leading_options(&ctx, argc, argv, &i);
    if (rc != CLI_CONTINUE) return rc;
    if (i >= argc) return cli_usage_error(NULL, "missing command");

    const struct cli_command *cmd = find_command(argv[i]);
    if (!cmd) return cli_usage_error(NULL, "unknown command '%s'", argv[i]);
    rc = cmd->run(&ctx, cmd, argc - i, argv + i);

    /* Wait (bounded) until libnats' threads have ended and freed what they held: nats_Close
     * alone returns while they may still run, and a process exiting then leaves their memory
     * unreleased, which LeakSanitizer reports (seen once: a PubAck's natsMsg). */
    nats_CloseAndWait(5000);
    return rc;
}

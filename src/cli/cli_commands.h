/* cli_commands.h: the command objects that stanza.c lists in its dispatch table. Each is defined
 * next to its implementation; adding a command means defining one here and adding one line to
 * the table in stanza.c. */
#ifndef STANZA_CLI_COMMANDS_H
#define STANZA_CLI_COMMANDS_H

#include "cli_common.h"

extern const struct cli_command cli_pub_command;   /* cli_stan.c: streaming publish */
extern const struct cli_command cli_sub_command;   /* cli_stan.c: streaming subscribe */
extern const struct cli_command cli_core_command;  /* cli_core.c: `core pub`, `core sub` */
extern const struct cli_command cli_bench_command; /* cli_bench.c: `bench core|stan|js|ready` */

/* cli_admin.c: read-only admin commands over the server's HTTP monitoring (cli_monitor.c). */
extern const struct cli_command cli_pending_command;
extern const struct cli_command cli_channels_command;
extern const struct cli_command cli_clients_command;
extern const struct cli_command cli_server_command;

/* cli_cluster.c: `cluster status|add|remove|transfer` for clustered mode. */
extern const struct cli_command cli_cluster_command;

/* cli_jobs.c: job-control admin commands over the server's /admin/ endpoints (cli_monitor.c). */
extern const struct cli_command cli_msg_command;
extern const struct cli_command cli_purge_command;
extern const struct cli_command cli_delete_channel_command;
extern const struct cli_command cli_delete_durable_command;
extern const struct cli_command cli_close_client_command;
extern const struct cli_command cli_dead_command;
extern const struct cli_command cli_requeue_command;
extern const struct cli_command cli_pause_command;
extern const struct cli_command cli_resume_command;

/* Kinds of cli_bench_command: `bench stan` (cli_bench_stan.c), `bench js` (cli_bench_js.c),
 * `bench ready` (cli_bench_ready.c). */
extern const struct cli_command cli_bench_stan_kind;
extern const struct cli_command cli_bench_js_kind;
extern const struct cli_command cli_bench_ready_kind;

#endif

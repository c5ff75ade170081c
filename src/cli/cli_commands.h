/* cli_commands.h: the command objects that stanza.c lists in its dispatch table. Each is defined
 * next to its implementation; adding a command means defining one here and adding one line to
 * the table in stanza.c. */
#ifndef STANZA_CLI_COMMANDS_H
#define STANZA_CLI_COMMANDS_H

#include "cli_common.h"

extern const struct cli_command cli_pub_command;   /* cli_stan.c: streaming publish */
extern const struct cli_command cli_sub_command;   /* cli_stan.c: streaming subscribe */
extern const struct cli_command cli_core_command;  /* cli_core.c: `core pub`, `core sub` */
extern const struct cli_command cli_bench_command; /* cli_bench.c: `bench core`, `bench stan` */

/* `bench stan`, a kind of cli_bench_command (cli_bench_stan.c). */
extern const struct cli_command cli_bench_stan_kind;

#endif

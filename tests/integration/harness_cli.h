/* harness_cli: runs the `stanza` command ($STANZA_CLI) to completion and hands back its exit
 * status, stdout (bytes and length: `stanza msg --raw` writes binary) and stderr.
 *
 * The child inherits the test process's environment, so STANZA_ADMIN_TOKEN / STANZA_MONITOR
 * are set or unset with setenv()/unsetenv() around a call. */
#ifndef STANZA_HARNESS_CLI_H
#define STANZA_HARNESS_CLI_H
#include <limits.h>
#include <stddef.h>

#include "harness.h"

struct hcli_res {
    int status; /* exit code, 128+signal, or -1 (could not start, or killed at the deadline) */
    char *out;  /* stdout, NUL-terminated (may hold NULs before out_len) */
    size_t out_len;
    char *err; /* stderr, NUL-terminated */
};

/* A command started with hcli_start, its outputs going to files in a temp dir of its own. */
struct hcli_proc {
    struct hproc proc;
    char dir[PATH_MAX - 16];
};

/* Starts `$STANZA_CLI args...` (args NULL-terminated, at most 30) in the background. Exits the
 * test (after printing why) if it cannot be started. */
void hcli_start(struct hcli_proc *p, const char *const *args);
/* Waits up to timeout_ms for it to exit (then SIGKILLs it: status -1), reads its outputs into r
 * and removes its temp dir. */
void hcli_finish(struct hcli_proc *p, struct hcli_res *r, int timeout_ms);

/* hcli_start + hcli_finish: runs `$STANZA_CLI args...` (args NULL-terminated, at most 30) with a
 * deadline of timeout_ms (then SIGKILL). Exits the test (after printing why) if it cannot be
 * started or its output cannot be read. */
void hcli_run(struct hcli_res *r, const char *const *args, int timeout_ms);

/* hcli_run, then checks the exit status; on a mismatch prints the command, its status and
 * both outputs, and fails the test. */
void hcli_expect(struct hcli_res *r, int status, const char *const *args, int timeout_ms);

/* Prints the command line, status and both outputs to stderr (for failure reports). */
void hcli_dump(const struct hcli_res *r, const char *const *args);

void hcli_free(struct hcli_res *r);

#endif

/* harness: the `stanza` command as a child process, outputs captured; see harness_cli.h. */
#include "harness_cli.h"
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HCLI_MAX_ARGS 30

static void die(const char *what)
{
    fprintf(stderr, "harness_cli: %s\n", what);
    exit(1);
}

/* The whole file, NUL-terminated, with its length (it may hold NULs). */
static char *read_all(const char *path, size_t *len)
{
    struct stat st;
    char *text = hfile_read(path);
    if (!text || stat(path, &st) != 0) die("cannot read the command's output");
    *len = (size_t)st.st_size;
    return text;
}

void hcli_start(struct hcli_proc *p, const char *const *args)
{
    const char *cli = getenv("STANZA_CLI");
    if (!cli || !*cli) die("STANZA_CLI is not set (path of the stanza binary)");
    const char *argv[HCLI_MAX_ARGS + 2];
    size_t n = 0;
    argv[n++] = cli;
    for (; args[n - 1]; n++) {
        if (n > HCLI_MAX_ARGS) die("too many arguments");
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    char out[PATH_MAX], err[PATH_MAX];
    if (hmkdtemp(p->dir, sizeof p->dir) != 0) die("cannot make a temp dir");
    snprintf(out, sizeof out, "%s/out", p->dir);
    snprintf(err, sizeof err, "%s/err", p->dir);
    /* libnats' rare exit-time leak (lsan-cli.supp says which), for the CLI only. */
    const char *src = getenv("STANZA_SRC_DIR");
    const char *prev = getenv("LSAN_OPTIONS");
    char *saved = prev ? strdup(prev) : NULL;
    char lsan[PATH_MAX + 64];
    if (src && *src) {
        snprintf(lsan, sizeof lsan, "suppressions=%s/tests/integration/lsan-cli.supp", src);
        setenv("LSAN_OPTIONS", lsan, 1);
    }
    int rc = hproc_spawn(&p->proc, argv, p->dir, out, err);
    if (saved)
        setenv("LSAN_OPTIONS", saved, 1);
    else
        unsetenv("LSAN_OPTIONS");
    free(saved);
    if (rc != 0) die("cannot start the command");
}

void hcli_finish(struct hcli_proc *p, struct hcli_res *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    r->status = hproc_wait(&p->proc, timeout_ms);
    if (r->status == -1) hproc_stop(&p->proc, SIGKILL, timeout_ms);
    char out[PATH_MAX], err[PATH_MAX];
    snprintf(out, sizeof out, "%s/out", p->dir);
    snprintf(err, sizeof err, "%s/err", p->dir);
    size_t elen;
    r->out = read_all(out, &r->out_len);
    r->err = read_all(err, &elen);
    hremove_tree(p->dir);
}

void hcli_run(struct hcli_res *r, const char *const *args, int timeout_ms)
{
    struct hcli_proc p;
    hcli_start(&p, args);
    hcli_finish(&p, r, timeout_ms);
}

void hcli_dump(const struct hcli_res *r, const char *const *args)
{
    fprintf(stderr, "command: stanza");
    for (size_t i = 0; args[i]; i++)
        fprintf(stderr, " %s", args[i]);
    fprintf(stderr, "\nstatus: %d\nstdout:\n%s\nstderr:\n%s\n", r->status, r->out ? r->out : "",
            r->err ? r->err : "");
}

void hcli_expect(struct hcli_res *r, int status, const char *const *args, int timeout_ms)
{
    hcli_run(r, args, timeout_ms);
    if (r->status == status) return;
    fprintf(stderr, "wanted exit status %d\n", status);
    hcli_dump(r, args);
    exit(1);
}

void hcli_free(struct hcli_res *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

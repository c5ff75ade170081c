/* config_test_util.h: helpers shared by the config unit tests (test_config.c and
 * test_config_limits.c): config files written to a temp dir, loading them, and running flags.
 * Header-only: each test program gets its own copy (static inline, so unused ones cost nothing). */
#ifndef STANZA_CONFIG_TEST_UTIL_H
#define STANZA_CONFIG_TEST_UTIL_H
#include "config.h"
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

/* Makes tmpdir from a mkdtemp template such as "/tmp/stanza_test_x.XXXXXX". */
static inline void config_test_mkdtemp(const char *template_)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s", template_);
    CHECK(mkdtemp(tmpdir));
}

/* Removes the named files from tmpdir, then tmpdir itself. */
static inline void config_test_rmdir(const char *const *names, size_t n)
{
    char path[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

/* Writes text to a fresh file in tmpdir and returns its path (static buffer per slot). */
static inline const char *write_file(const char *name, const char *text, size_t len)
{
    static char paths[8][256];
    static int slot;
    char *path = paths[slot++ % 8];
    snprintf(path, 256, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    CHECK(fp);
    CHECK(fwrite(text, 1, len, fp) == len);
    CHECK(fclose(fp) == 0);
    return path;
}

static inline const char *yaml(const char *name, const char *text)
{
    return write_file(name, text, strlen(text));
}

/* Loads text as a config file into fresh defaults; returns config_load_file's result. */
static inline int load_text(config_t *cfg, const char *text, char *err, size_t errlen)
{
    config_init(cfg);
    err[0] = '\0';
    return config_load_file(cfg, yaml("t.yaml", text), err, errlen);
}

/* The file must be rejected with "PATH:LINE: " and a message containing want. */
static inline void check_bad_file(const char *text, int line, const char *want)
{
    config_t cfg;
    char err[512], prefix[300];
    int rc = load_text(&cfg, text, err, sizeof(err));
    snprintf(prefix, sizeof(prefix), "%s/t.yaml:%d: ", tmpdir, line);
    if (rc != STZ_ECONFIG || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want)) {
        fprintf(stderr, "input:\n%s\nrc=%d err=\"%s\"\nwant prefix \"%s\" and \"%s\"\n", text, rc,
                err, prefix, want);
        CHECK(0);
    }
    config_free(&cfg);
}

/* config_from_args on "stanzad" followed by the NULL-terminated arguments in ap. */
static inline int vrun_args(config_t *cfg, char *err, size_t errlen, va_list ap)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "stanzad";
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;)
        argv[argc++] = a;
    argv[argc] = NULL;
    config_init(cfg);
    err[0] = '\0';
    return config_from_args(cfg, argc, argv, err, errlen);
}

static inline int run_args(config_t *cfg, char *err, size_t errlen, ...)
{
    va_list ap;
    va_start(ap, errlen);
    int rc = vrun_args(cfg, err, errlen, ap);
    va_end(ap);
    return rc;
}

/* The flags must be rejected with an err containing want. */
static inline void args_fail(const char *want, ...)
{
    config_t cfg;
    char err[512];
    va_list ap;
    va_start(ap, want);
    int rc = vrun_args(&cfg, err, sizeof(err), ap);
    va_end(ap);
    if (rc != STZ_ECONFIG || !strstr(err, want)) {
        fprintf(stderr, "rc=%d err=\"%s\", want \"%s\"\n", rc, err, want);
        CHECK(0);
    }
    config_free(&cfg);
}
/* config_usage's text must contain each of the n strings in want. */
static inline void check_usage_lists(const char *const *want, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK(mem);
    config_usage(mem, "stanzad");
    CHECK(fclose(mem) == 0);
    for (size_t i = 0; i < n; i++) {
        if (!strstr(text, want[i])) {
            fprintf(stderr, "usage lacks \"%s\":\n%s", want[i], text);
            CHECK(0);
        }
    }
    free(text);
}

#define ARGS(cfg, err, ...) run_args(cfg, err, sizeof(err), __VA_ARGS__, (char *)NULL)
#define ARGS_FAIL(want, ...) args_fail(want, __VA_ARGS__, (char *)NULL)

#endif

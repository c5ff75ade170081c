/* fuzz_config: the YAML config loader (src/config/config.c, config_limits.c) and the flag parser.
 *
 * Input: byte 0 selects the mode. Even: the rest is a YAML file, loaded with config_load_file
 * from a temporary file, then validated and every channel-limit pattern resolved. Odd: the rest
 * is a command line (arguments separated by NUL bytes) for config_from_args; arguments naming a
 * config file are dropped, since the fuzzer must not make the loader read arbitrary paths. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

static void use(const config_t *cfg)
{
    config_limits_t lim;
    static const char *names[] = {"foo", "foo.bar", "a.b.c.d", "_STAN.x", ">"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        config_channel_limits(cfg, names[i], &lim);
    for (size_t i = 0; i < cfg->nchannel_limits; i++)
        config_channel_limits(cfg, cfg->channel_limits[i].pattern, &lim);
}

static void from_file(const uint8_t *d, size_t n)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/stanza-fuzz-config.%d.yaml", (int)getpid());
        atexit(remove_file);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    if (n && write(fd, d, n) != (ssize_t)n) abort();
    close(fd);
    config_t cfg;
    config_init(&cfg);
    char err[512];
    if (config_load_file(&cfg, path, err, sizeof err) == 0) {
        if (config_validate(&cfg, err, sizeof err) == 0) use(&cfg);
    } else if (!err[0]) {
        fprintf(stderr, "config_load_file failed without a message\n");
        abort();
    }
    config_free(&cfg);
}

static int names_config_file(const char *a)
{
    while (*a == '-')
        a++;
    size_t n = strcspn(a, "=");
    return (n == 1 && a[0] == 'c') || (n == 6 && strncmp(a, "config", 6) == 0);
}

static void from_args(const uint8_t *d, size_t n)
{
    char *buf = malloc(n + 1);
    memcpy(buf, d, n);
    buf[n] = '\0';
    char *argv[66];
    int argc = 0;
    argv[argc++] = "stanzad";
    char *p = buf;
    while (p < buf + n && argc < 65) {
        char *a = p;
        p += strlen(p) + 1;
        int skip = names_config_file(a);
        if (skip) {
            /* "-c FILE": its value goes too. */
            if (!strchr(a, '=') && p < buf + n) p += strlen(p) + 1;
            continue;
        }
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    config_t cfg;
    config_init(&cfg);
    char err[512];
    err[0] = '\0';
    int rc = config_from_args(&cfg, argc, argv, err, sizeof err);
    if (rc == CONFIG_OK) use(&cfg);
    if (rc < 0 && !err[0]) {
        fprintf(stderr, "config_from_args failed without a message\n");
        abort();
    }
    config_free(&cfg);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1)
        from_args(data + 1, size - 1);
    else
        from_file(data + 1, size - 1);
    return 0;
}

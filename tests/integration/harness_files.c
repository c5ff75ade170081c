/* harness: files and temp dirs; see harness.h. */
#include "harness.h"
#include "harness_internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LOG_TAIL_LINES 40

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void hremove_tree(const char *dir)
{
    if (dir[0]) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int hfile_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

char *hfile_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

void hfile_dump(const char *label, const char *path)
{
    char *text = hfile_read(path);
    if (!text) {
        fprintf(stderr, "harness: %s %s: (unreadable)\n", label, path);
        return;
    }
    const char *start = text;
    int lines = 0;
    for (const char *p = text + strlen(text); p > text; p--) {
        if (p[-1] == '\n' && p[0] != '\0' && ++lines >= LOG_TAIL_LINES) {
            start = p;
            break;
        }
    }
    fprintf(stderr, "harness: ---- tail of %s %s ----\n%s", label, path, start);
    if (*start && start[strlen(start) - 1] != '\n') fputc('\n', stderr);
    fprintf(stderr, "harness: ---- end of %s ----\n", label);
    free(text);
}

int hmkdtemp(char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/stanza-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(buf)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", buf, strerror(errno));
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

int hfile_count(const char *path, const char *needle)
{
    char *text = hfile_read(path);
    if (!text) return 0;
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = text; nl && (p = strstr(p, needle)) != NULL; p += nl)
        n++;
    free(text);
    return n;
}

bool hfile_wait_count(const char *path, const char *needle, int n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (hfile_count(path, needle) >= n) return true;
        if (harness_now_ms() >= deadline) return false;
        harness_short_wait();
    }
}

bool hfile_wait_contains(const char *path, const char *needle, int timeout_ms)
{
    return hfile_wait_count(path, needle, 1, timeout_ms);
}

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static FILE *log_fp;   /* NULL = stderr */
static char *log_path; /* owned; NULL = stderr */
static bool log_debug, log_trace;
static bool log_time = true;

static const char *const level_tag[] = {"FTL", "ERR", "WRN", "INF", "DBG", "TRC"};

static FILE *out(void)
{
    return log_fp ? log_fp : stderr;
}

int log_open(const char *path)
{
    log_close();
    if (!path || !*path) return 0;
    FILE *fp = fopen(path, "a");
    if (!fp) return -errno;
    setvbuf(fp, NULL, _IOLBF, 0);
    log_fp = fp;
    log_path = strdup(path);
    return 0;
}

int log_reopen(void)
{
    if (!log_path) return 0;
    FILE *fp = fopen(log_path, "a");
    if (!fp) return -errno;
    setvbuf(fp, NULL, _IOLBF, 0);
    fclose(log_fp);
    log_fp = fp;
    return 0;
}

void log_close(void)
{
    if (log_fp) fclose(log_fp);
    log_fp = NULL;
    free(log_path);
    log_path = NULL;
}

void log_set_verbosity(bool debug, bool trace)
{
    log_debug = debug;
    log_trace = trace;
}

void log_set_timestamps(bool on)
{
    log_time = on;
}

bool log_enabled(enum log_level level)
{
    if (level == LOG_LVL_DEBUG) return log_debug;
    if (level == LOG_LVL_TRACE) return log_trace;
    return true;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level)) return;
    int64_t now = clock_wall_ns();
    time_t sec = (time_t)(now / CLOCK_NS_PER_SEC);
    long usec = (long)(now % CLOCK_NS_PER_SEC / 1000);
    struct tm tm;
    localtime_r(&sec, &tm);
    char line[2048];
    int n;
    if (log_time)
        n = snprintf(line, sizeof line, "[%d] %04d/%02d/%02d %02d:%02d:%02d.%06ld [%s] ",
                     (int)getpid(), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, usec, level_tag[level]);
    else
        n = snprintf(line, sizeof line, "[%d] [%s] ", (int)getpid(), level_tag[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2; /* truncated long line */
    line[len++] = '\n';
    /* One fwrite per line so lines from a signal-time reopen never interleave. */
    fwrite(line, 1, len, out());
    if (level == LOG_LVL_FATAL) fflush(out());
}

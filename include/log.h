/* log: timestamped, leveled log lines to stderr or a file.
 * Lines look like "[pid] 2026/11/26 03:51:28.123456 [INF] text", as nats-server's do.
 * Formatting is skipped for disabled levels (use the LOG_* macros). */
#ifndef STANZA_LOG_H
#define STANZA_LOG_H
#include <stdbool.h>

enum log_level {
    LOG_LVL_FATAL,
    LOG_LVL_ERROR,
    LOG_LVL_WARN,
    LOG_LVL_INFO,
    LOG_LVL_DEBUG,
    LOG_LVL_TRACE
};

/* Opens path for appending (NULL or "" = stderr). Returns 0 or -errno. */
int log_open(const char *path);
/* Reopens the same file (after rotation, on SIGUSR1). Returns 0 or -errno; on error the old
 * file stays in use. */
int log_reopen(void);
void log_close(void);
/* Debug and trace lines are switched on independently (-D, -V), as in nats-server; the other
 * levels are always written. */
void log_set_verbosity(bool debug, bool trace);
/* Whether lines carry the date and time (default true; -T=false turns them off, e.g. when a
 * supervisor such as journald adds its own). */
void log_set_timestamps(bool on);
bool log_enabled(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_F(...) log_write(LOG_LVL_FATAL, __VA_ARGS__)
#define LOG_E(...) log_write(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_W(...) log_write(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_I(...) log_write(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_D(...)                                                                                 \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG)) log_write(LOG_LVL_DEBUG, __VA_ARGS__);                     \
    } while (0)
#define LOG_T(...)                                                                                 \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_TRACE)) log_write(LOG_LVL_TRACE, __VA_ARGS__);                     \
    } while (0)

#endif

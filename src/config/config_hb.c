/* config_hb: settings checked against each other rather than each on its own range: the
 * heartbeat timeout must be shorter than the interval (an answer is awaited before the next
 * heartbeat is due), Raft's heartbeat shorter than its election timeout. Where each value came from
 * (FILE:LINE or the flag) is recorded as it is set, so the message can say what to change. */
#include "config.h"
#include "config_private.h"

#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The settings whose origin is kept, and where. */
static char **origin_slot(config_t *cfg, const char *key)
{
    const struct {
        const char *key;
        char **slot;
    } slots[] = {
        {"hb_interval", &cfg->hb_interval_from},
        {"hb_timeout", &cfg->hb_timeout_from},
        {"monitor_require_token", &cfg->monitor_require_token_from},
        {"cluster_raft_heartbeat_timeout", &cfg->cluster_raft_heartbeat_timeout_from},
        {"cluster_raft_election_timeout", &cfg->cluster_raft_election_timeout_from},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (strcmp(key, slots[i].key) == 0) return slots[i].slot;
    return NULL;
}

void config_note_origin(config_t *cfg, const char *key, const char *where, int line)
{
    char **slot = origin_slot(cfg, key);
    if (!slot) return;
    size_t n = strlen(where) + 24;
    char *s = xmalloc(n);
    if (line > 0)
        snprintf(s, n, "%s:%d", where, line);
    else
        snprintf(s, n, "%s", where);
    free(*slot);
    *slot = s;
}

void config_fmt_ms(char *buf, size_t len, int64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
}

/* monitor_require_token needs the token it requires; the message says where it was set. */
int config_check_admin(const config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->monitor_require_token || (cfg->admin_token && *cfg->admin_token)) return 0;
    const char *where = cfg->monitor_require_token_from;
    return config_failf(err, errlen, "%s%smonitor_require_token needs an admin_token",
                        where ? where : "", where ? ": " : "");
}

/* One duration that must be shorter than another (sname's value sms, set at sfrom, NULL for
 * its default, against lname's). The message starts with where the offending value was set:
 * the shorter one's place if it was. */
struct shorter {
    const char *sname, *sfrom, *lname, *lfrom;
    int64_t sms, lms;
};

static int check_shorter(const struct shorter *c, char *err, size_t errlen)
{
    if (c->sms < c->lms) return 0;
    char t[32], i[32];
    config_fmt_ms(t, sizeof(t), c->sms);
    config_fmt_ms(i, sizeof(i), c->lms);
    if (c->sfrom)
        return config_failf(err, errlen, "%s: %s %s must be shorter than %s %s (%s%s)", c->sfrom,
                            c->sname, t, c->lname, i, c->lfrom ? "set at " : "the default",
                            c->lfrom ? c->lfrom : "");
    if (c->lfrom)
        return config_failf(err, errlen,
                            "%s: %s %s must be longer than %s %s (its default; set it lower)",
                            c->lfrom, c->lname, i, c->sname, t);
    return config_failf(err, errlen, "%s %s must be shorter than %s %s", c->sname, t, c->lname, i);
}

int config_check_heartbeats(const config_t *cfg, char *err, size_t errlen)
{
    const struct shorter c = {.sname = "hb_timeout",
                              .sfrom = cfg->hb_timeout_from,
                              .sms = cfg->hb_timeout_ms,
                              .lname = "hb_interval",
                              .lfrom = cfg->hb_interval_from,
                              .lms = cfg->hb_interval_ms};
    return check_shorter(&c, err, errlen);
}

/* Raft's heartbeat must come well within the election timeout, or followers start elections
 * while the leader is alive. */
int config_check_raft_timeouts(const config_t *cfg, char *err, size_t errlen)
{
    const struct shorter c = {.sname = "cluster_raft_heartbeat_timeout",
                              .sfrom = cfg->cluster_raft_heartbeat_timeout_from,
                              .sms = cfg->cluster_raft_heartbeat_timeout_ms,
                              .lname = "cluster_raft_election_timeout",
                              .lfrom = cfg->cluster_raft_election_timeout_from,
                              .lms = cfg->cluster_raft_election_timeout_ms};
    return check_shorter(&c, err, errlen);
}

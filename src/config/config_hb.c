/* config_hb: settings checked against each other rather than each on its own range: the
 * heartbeat timeout must be shorter than the interval (an answer is awaited before the next
 * heartbeat is due). Where each value came from (FILE:LINE or the flag) is recorded as it is set,
 * so the message can say what to change. */
#include "config.h"
#include "config_private.h"

#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_note_origin(config_t *cfg, const char *key, const char *where, int line)
{
    char **slot = strcmp(key, "hb_interval") == 0             ? &cfg->hb_interval_from
                  : strcmp(key, "hb_timeout") == 0            ? &cfg->hb_timeout_from
                  : strcmp(key, "monitor_require_token") == 0 ? &cfg->monitor_require_token_from
                                                              : NULL;
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

static void fmt_ms(char *buf, size_t len, int64_t ms)
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

/* The message starts with where the offending value was set (hb_timeout's place if it was). */
int config_check_heartbeats(const config_t *cfg, char *err, size_t errlen)
{
    if (cfg->hb_timeout_ms < cfg->hb_interval_ms) return 0;
    char t[32], i[32];
    fmt_ms(t, sizeof(t), cfg->hb_timeout_ms);
    fmt_ms(i, sizeof(i), cfg->hb_interval_ms);
    const char *tf = cfg->hb_timeout_from, *itf = cfg->hb_interval_from;
    if (tf)
        return config_failf(err, errlen,
                            "%s: hb_timeout %s must be shorter than hb_interval %s (%s%s)", tf, t,
                            i, itf ? "set at " : "the default", itf ? itf : "");
    if (itf)
        return config_failf(
            err, errlen,
            "%s: hb_interval %s must be longer than hb_timeout %s (its default; set it lower)", itf,
            i, t);
    return config_failf(err, errlen, "hb_timeout %s must be shorter than hb_interval %s", t, i);
}

/* config_cluster: the cluster section of the config file, written as nats-server's cluster block:
 *
 *   cluster:
 *     listen: nats://0.0.0.0:6222    # where routes are accepted (--cluster)
 *     routes:                         # routes to solicit (--routes), a list or "url,url"
 *       - nats://10.0.0.2:6222
 *     name: my-cluster                # --cluster_name
 *
 * and the checks of the route URLs, shared by the file and the flags (config_validate_cluster).
 * A URL is checked where it is read, so a bad one in the file is reported with its line. */
#include "config.h"
#include "config_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xalloc.h"

#define ROUTE_DEFAULT_PORT 6222

/* Skips a scheme nats-server accepts for a route. */
static size_t scheme_len(const char *u, size_t n)
{
    static const char *const schemes[] = {"nats://", "nats-route://", "route://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t l = strlen(schemes[i]);
        if (n >= l && strncasecmp(u, schemes[i], l) == 0) return l;
    }
    return 0;
}

static int parse_port(const char *p, const char *end, int *port)
{
    long v = 0;
    if (p == end) return STZ_EINVAL;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return STZ_EINVAL;
        v = v * 10 + (*p - '0');
        if (v > 65535) return STZ_EINVAL;
    }
    if (v == 0) return STZ_EINVAL;
    *port = (int)v;
    return 0;
}

/* Bytes from a to b; 0 when b is not past a. */
static size_t span(const char *a, const char *b)
{
    return b > a ? (size_t)(b - a) : 0;
}

int config_parse_route_url(const char *url, size_t len, char *host, size_t hostlen, int *port)
{
    const char *u = url, *end = url + len;
    while (u < end && (*u == ' ' || *u == '\t'))
        u++;
    while (end > u && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '/'))
        end--;
    u += scheme_len(u, span(u, end));
    const char *at = memchr(u, '@', span(u, end));
    if (at) u = at + 1;
    const char *hs = u, *he, *colon;
    if (u < end && *u == '[') { /* [v6]:port */
        hs = u + 1;
        he = memchr(hs, ']', span(hs, end));
        if (!he) return STZ_EINVAL;
        colon = he + 1 < end ? he + 1 : NULL;
        if (colon && *colon != ':') return STZ_EINVAL;
    } else {
        colon = memchr(u, ':', span(u, end));
        he = colon ? colon : end;
    }
    if (he == hs || (size_t)(he - hs) >= hostlen) return STZ_EINVAL;
    for (const char *p = hs; p < he; p++)
        if (*p == '/' || *p == ' ' || *p == '\t' || *p == '@' || *p == ',') return STZ_EINVAL;
    *port = ROUTE_DEFAULT_PORT;
    if (colon && parse_port(colon + 1, end, port) != 0) return STZ_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    return 0;
}

/* Every URL of a comma-separated list parses; the first bad one is quoted in why. */
static int check_url_list(const char *list, char *why, size_t len)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char host[256], shown[128];
        int port;
        if (config_parse_route_url(p, n, host, sizeof host, &port) != 0) {
            snprintf(shown, sizeof shown, "%.*s", (int)(n < 100 ? n : 100), p);
            char printable[128];
            return config_failf(why, len,
                                "\"%s\" is not a route URL (nats://host:port, comma-separated)",
                                config_printable(printable, sizeof printable, shown));
        }
        if (!comma) return 0;
        p = comma + 1;
    }
}

static bool name_valid(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || (unsigned char)*s < 0x20) return false;
    return true;
}

int config_validate_cluster(const config_t *cfg, char *err, size_t errlen)
{
    char why[512];
    if (cfg->cluster_listen && check_url_list(cfg->cluster_listen, why, sizeof why) != 0)
        return config_failf(err, errlen, "cluster listen (--cluster): %s", why);
    if (cfg->cluster_listen && strchr(cfg->cluster_listen, ','))
        return config_failf(err, errlen, "cluster listen (--cluster): one URL only");
    if (cfg->cluster_routes && check_url_list(cfg->cluster_routes, why, sizeof why) != 0)
        return config_failf(err, errlen, "cluster routes (--routes): %s", why);
    if (cfg->cluster_routes && !cfg->cluster_listen)
        return config_failf(err, errlen,
                            "cluster routes (--routes) need a cluster listen URL (--cluster): "
                            "the peers connect back to it");
    if (cfg->cluster_name && !name_valid(cfg->cluster_name))
        return config_failf(err, errlen,
                            "cluster name (--cluster_name) must be one word without spaces");
    return 0;
}

/* ---- the section ------------------------------------------------------------------------ */

bool config_is_cluster_section(const yaml_event_t *kev)
{
    return kev->type == YAML_SCALAR_EVENT &&
           strcasecmp((const char *)kev->data.scalar.value, "cluster") == 0;
}

/* A routes list: each entry a URL, joined with commas into cfg->cluster_routes. */
static int load_route_list(struct config_loader *l, config_t *cfg)
{
    buf_t all;
    buf_init(&all);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        rc = config_next_event(l, &ev);
        if (rc < 0) break;
        int line = config_line_of(&ev.start_mark);
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        char why[256];
        if (ev.type != YAML_SCALAR_EVENT || config_has_nul(&ev))
            rc = config_loader_fail(l, line, "cluster routes: each entry must be a URL, not %s",
                                    config_node_kind(ev.type));
        else if (check_url_list((const char *)ev.data.scalar.value, why, sizeof why) != 0)
            rc = config_loader_fail(l, line, "cluster routes: %s", why);
        else {
            if (all.len) buf_append(&all, ",", 1);
            buf_append(&all, ev.data.scalar.value, ev.data.scalar.length);
        }
        yaml_event_delete(&ev);
        if (rc < 0) break;
    }
    if (rc == 0) {
        free(cfg->cluster_routes);
        cfg->cluster_routes = all.len ? xstrndup(all.data, all.len) : NULL;
    }
    buf_free(&all);
    return rc;
}

/* The value of "routes": a list, or one comma-separated string (null: none). */
static int load_routes_value(struct config_loader *l, config_t *cfg)
{
    yaml_event_t ev;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    if (ev.type == YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(&ev);
        return load_route_list(l, cfg);
    }
    int line = config_line_of(&ev.start_mark);
    const char *v = (const char *)ev.data.scalar.value;
    char why[512];
    if (ev.type != YAML_SCALAR_EVENT || config_has_nul(&ev))
        rc = config_loader_fail(l, line, "cluster routes: a list of URLs or one string, not %s",
                                config_node_kind(ev.type));
    else if (!config_is_null(&ev) && check_url_list(v, why, sizeof why) != 0)
        rc = config_loader_fail(l, line, "cluster routes: %s", why);
    else {
        free(cfg->cluster_routes);
        cfg->cluster_routes = config_is_null(&ev) ? NULL : xstrdup(v);
    }
    yaml_event_delete(&ev);
    return rc;
}

/* The section's keys and the settings they set. */
static const struct {
    const char *name;
    const char *setting;
    bool urls;
} cluster_keys[] = {
    {"listen", "cluster_listen", true},
    {"routes", "cluster_routes", true},
    {"name", "cluster_name", false},
};
#define NKEYS (sizeof cluster_keys / sizeof cluster_keys[0])

/* One "listen: nats://..." of the section; the key event is read. */
static int load_cluster_pair(struct config_loader *l, config_t *cfg, const yaml_event_t *kev)
{
    char kname[64], why[512];
    int kline = config_line_of(&kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT || config_has_nul(kev))
        return config_loader_fail(l, kline, "cluster setting names must be plain words");
    config_printable(kname, sizeof kname, (const char *)kev->data.scalar.value);
    size_t i = 0;
    while (i < NKEYS && strcasecmp(cluster_keys[i].name, (const char *)kev->data.scalar.value))
        i++;
    if (i == NKEYS)
        return config_loader_fail(
            l, kline, "unknown setting \"%s\" in cluster (known: listen, routes, name)", kname);
    if (strcmp(cluster_keys[i].name, "routes") == 0) return load_routes_value(l, cfg);
    yaml_event_t vev;
    const char *v;
    int rc = config_load_present(l, "cluster ", kname, &vev, &v);
    if (rc < 0) return rc;
    int vline = config_line_of(&vev.start_mark);
    if (cluster_keys[i].urls && check_url_list(v, why, sizeof why) != 0)
        rc = config_loader_fail(l, vline, "cluster %s: %s", kname, why);
    else if (!cluster_keys[i].urls && !name_valid(v))
        rc = config_loader_fail(l, vline, "cluster name must be one word without spaces");
    else if (config_set(cfg, cluster_keys[i].setting, v, why, sizeof why) != 0)
        rc = config_loader_fail(l, vline, "cluster %s: %s", kname, why);
    yaml_event_delete(&vev);
    return rc;
}

int config_load_cluster(struct config_loader *l, config_t *cfg, const yaml_event_t *kev)
{
    (void)kev;
    yaml_event_t ev;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    int line = config_line_of(&ev.start_mark);
    bool empty = ev.type == YAML_SCALAR_EVENT && config_is_null(&ev);
    bool mapping = ev.type == YAML_MAPPING_START_EVENT;
    if (!empty && !mapping)
        rc = config_loader_fail(l, line,
                                "\"cluster\" takes a section (listen, routes, name), not %s",
                                config_node_kind(ev.type));
    yaml_event_delete(&ev);
    if (rc < 0 || empty) return rc;
    for (;;) {
        rc = config_next_event(l, &ev);
        if (rc < 0) return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        rc = load_cluster_pair(l, cfg, &ev);
        yaml_event_delete(&ev);
        if (rc < 0) return rc;
    }
}

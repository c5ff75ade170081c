/* config_cluster: the cluster section of the config file, written as nats-server's cluster block:
 *
 *   cluster:
 *     listen: nats://0.0.0.0:6222    # where routes are accepted (--cluster)
 *     routes:                         # routes to solicit (--routes), a list or "url,url"
 *       - nats://10.0.0.2:6222
 *     name: my-cluster                # --cluster_name
 *
 * and the cluster settings' checks, shared by the file and the flags (config_validate_cluster).
 * A URL is checked where it is read (config_url.c), so a bad one in the file is reported with
 * its line. */
#include "config.h"
#include "config_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    if (cfg->cluster_listen &&
        config_check_url_list(cfg->cluster_listen, false, why, sizeof why) != 0)
        return config_failf(err, errlen, "cluster listen (--cluster): %s", why);
    if (cfg->cluster_listen && strchr(cfg->cluster_listen, ','))
        return config_failf(err, errlen, "cluster listen (--cluster): one URL only");
    if (cfg->cluster_routes &&
        config_check_url_list(cfg->cluster_routes, false, why, sizeof why) != 0)
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

static int check_routes(const char *s, char *why, size_t len)
{
    return config_check_url_list(s, false, why, len);
}

/* The value of "routes": a list, or one comma-separated string (null: none). */
static int load_routes_value(struct config_loader *l, config_t *cfg)
{
    static const struct config_list_spec spec = {
        "cluster routes", "a URL", "a list of URLs or one string", check_routes, false};
    char *routes;
    int line, rc = config_load_list(l, &spec, &routes, &line);
    if (rc < 0) return rc;
    free(cfg->cluster_routes);
    cfg->cluster_routes = routes;
    return 0;
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
static int load_cluster_pair(struct config_loader *l, void *ctx, const yaml_event_t *kev)
{
    config_t *cfg = ctx;
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
    if (cluster_keys[i].urls && config_check_url_list(v, false, why, sizeof why) != 0)
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
    bool empty;
    int rc = config_begin_section(l, "cluster", "listen, routes, name", &empty);
    if (rc < 0 || empty) return rc;
    return config_each_pair(l, load_cluster_pair, cfg);
}

/* config_file: a whole configuration: the YAML file's top level, which hands each section to its
 * own loader (the settings in config_settings.c, store_limits in config_limits.c, tls in
 * config_tls.c, cluster in config_cluster.c, clustering in config_clustering.c), and
 * config_validate, every check in one order. Flags (config_flags.c) stand on this. */
#include "config.h"
#include "config_private.h"

#include "err.h"

#include <strings.h>
#include <yaml.h>

int config_validate(const config_t *cfg, char *err, size_t errlen)
{
    int rc = config_validate_settings(cfg, err, errlen);
    if (rc == 0) rc = config_check_heartbeats(cfg, err, errlen);
    if (rc == 0) rc = config_check_admin(cfg, err, errlen);
    if (rc == 0) rc = config_validate_tls(cfg, err, errlen);
    if (rc == 0) rc = config_validate_cluster(cfg, err, errlen);
    if (rc == 0) rc = config_validate_clustering(cfg, err, errlen);
    if (rc == 0) rc = config_validate_upstream(cfg, err, errlen);
    if (rc == 0) rc = config_validate_channel_limits(cfg, err, errlen);
    return rc;
}

/* ---- the YAML file ---- */

static bool is_store_limits(const yaml_event_t *kev)
{
    if (kev->type != YAML_SCALAR_EVENT) return false;
    const char *name = (const char *)kev->data.scalar.value;
    return strcasecmp(name, "store_limits") == 0 || strcasecmp(name, "limits") == 0;
}

/* The top-level node; its first event is already read. Values that are mappings or lists are
 * rejected on their first event, except store_limits, whose own loader bounds its nesting. */
static int load_root(struct config_loader *l, config_t *cfg, const yaml_event_t *root)
{
    int line = config_line_of(&root->start_mark);
    if (root->type == YAML_SCALAR_EVENT && config_is_null(root)) return 0; /* "---" alone */
    if (root->type != YAML_MAPPING_START_EVENT)
        return config_loader_fail(
            l, line, "the top level must be a mapping of settings (key: value), not %s",
            config_node_kind(root->type));
    for (;;) {
        yaml_event_t kev;
        int rc = config_next_event(l, &kev);
        if (rc < 0) return rc;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        rc = is_store_limits(&kev)             ? config_load_store_limits(l, cfg, &kev)
             : config_is_tls_section(&kev)     ? config_load_tls(l, cfg, &kev)
             : config_is_cluster_section(&kev) ? config_load_cluster(l, cfg, &kev)
             : config_is_clustering_key(&kev)  ? config_load_clustering(l, cfg, &kev)
                                               : config_load_pair(l, cfg, &kev, CONFIG_SEC_TOP);
        yaml_event_delete(&kev);
        if (rc < 0) return rc;
    }
}

/* Walks the event stream: at most one document whose root is a mapping. */
static int load_stream(struct config_loader *l, config_t *cfg)
{
    yaml_event_t ev;
    int rc = 0;
    bool seen_doc = false;
    for (;;) {
        rc = config_next_event(l, &ev);
        if (rc < 0) return rc;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return 0;
        case YAML_DOCUMENT_START_EVENT:
            if (seen_doc)
                rc = config_loader_fail(l, config_line_of(&ev.start_mark),
                                        "only one YAML document is allowed");
            seen_doc = true;
            yaml_event_delete(&ev);
            if (rc == 0) rc = config_next_event(l, &ev);
            if (rc < 0) return rc;
            rc = load_root(l, cfg, &ev);
            break;
        default: /* STREAM_START, DOCUMENT_END */
            break;
        }
        yaml_event_delete(&ev);
        if (rc < 0) return rc;
    }
}

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
    struct config_loader l;
    int rc = config_loader_open(&l, path, err, errlen);
    if (rc < 0) return rc;
    rc = load_stream(&l, cfg);
    if (rc == 0) rc = config_check_channel_count(&l, cfg);
    config_loader_close(&l);
    return rc;
}

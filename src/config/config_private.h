/* config_private.h: what config.c shares with config_limits.c, which loads the one nested
 * section of the file (store_limits) and resolves per-channel limits. Not a public API. */
#ifndef STANZA_CONFIG_PRIVATE_H
#define STANZA_CONFIG_PRIVATE_H
#include "config.h"

#include <yaml.h>

/* The state of one config_load_file. */
struct config_loader {
    yaml_parser_t parser;
    const char *path;
    const char *buf;
    size_t len;
    char *err;
    size_t errlen;
};

/* Where a setting may appear in the file: the top-level mapping or store_limits. Flags (and
 * config_set) reach both. */
enum config_section { CONFIG_SEC_TOP, CONFIG_SEC_STORE_LIMITS };

/* ---- YAML helpers (config.c) ---- */

/* Formats "path:line: ..." into l->err; returns -1. */
int config_loader_fail(struct config_loader *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int config_next_event(struct config_loader *l, yaml_event_t *ev); /* -1: syntax error, l->err set */
int config_line_of(const yaml_mark_t *m);
const char *config_printable(char *out, size_t outlen, const char *s); /* for quoting in errors */
const char *config_node_kind(yaml_event_type_t t);                     /* "a list", ... */
bool config_is_null(const yaml_event_t *ev);                           /* a plain ~, null or "" */
bool config_has_nul(const yaml_event_t *ev);

/* Reads the value of key kname, which must be one scalar. On success *value is its text, or NULL
 * for YAML null, and the caller deletes *vev; on failure l->err is set and nothing is owned. */
int config_load_value(struct config_loader *l, const char *kname, yaml_event_t *vev,
                      const char **value);

/* One "key: value" setting of a flat section; the key event is already read. */
int config_load_pair(struct config_loader *l, config_t *cfg, const yaml_event_t *kev,
                     enum config_section sec);

/* Sets one field of a store_limits.channels entry by its key (the global limit's name or alias,
 * e.g. "max_msgs", "max_subscriptions"). Unlike the global setting, a negative value (of any
 * form: -1, -1MB, -1s) is accepted and kept negative, meaning unlimited. Returns 0; -1 if the
 * key is not a per-channel limit; -2 with the reason in err if the value is bad. */
bool config_is_channel_limit(const char *key);
int config_set_channel_limit(config_limits_t *lim, const char *key, const char *value, char *err,
                             size_t errlen);

/* ---- store_limits (config_limits.c) ---- */

/* The value of a store_limits (alias limits) key, not yet read: a mapping, or null for none. */
int config_load_store_limits(struct config_loader *l, config_t *cfg, const yaml_event_t *kev);

/* After a file is loaded: no more literal channels than max_channels. */
int config_check_channel_count(struct config_loader *l, const config_t *cfg);

/* For config_validate: entries well-formed and within max_channels; -1 with "key: reason". */
int config_validate_channel_limits(const config_t *cfg, char *err, size_t errlen);

void config_free_channel_limits(config_t *cfg);

/* ---- settings checked against each other (config_hb.c) ---- */

/* For config_validate: hb_timeout shorter than hb_interval; -1 with "WHERE: reason" in err,
 * WHERE being what config_note_origin recorded for the offending value. */
int config_check_heartbeats(const config_t *cfg, char *err, size_t errlen);

/* ---- the tls section (config_tls.c) ---- */

/* True for the key "tls", whose value may be a section (nats-server's tls block) or a boolean. */
bool config_is_tls_section(const yaml_event_t *kev);
/* The value of "tls", not yet read: a boolean, or a mapping of cert_file, key_file, ca_file,
 * verify. The files must be readable; errors name the file and line. */
int config_load_tls(struct config_loader *l, config_t *cfg, const yaml_event_t *kev);
/* For config_validate: with TLS on, a certificate and a key that can be read; -1 with the reason
 * in err. */
int config_validate_tls(const config_t *cfg, char *err, size_t errlen);

#endif

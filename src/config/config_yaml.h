/* config_yaml.h: the bottom layer of the config module, which every other file of it stands on
 * and which calls none of them: the error sentence in a caller's buffer, and the YAML loader's
 * primitives (the file, its events, their lines, one scalar value). Not a public API.
 *
 * Errors are err.h's codes; what went wrong, for a person, is in the loader's (or the caller's)
 * buffer: "path:line: ..." for anything found in the file. */
#ifndef STANZA_CONFIG_YAML_H
#define STANZA_CONFIG_YAML_H
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Formats the message into err (when err is not NULL); returns STZ_ECONFIG. */
int config_failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The state of one config_load_file. */
struct config_loader {
    yaml_parser_t parser;
    const char *path;
    char *buf; /* the whole file */
    size_t len;
    char *err;
    size_t errlen;
};

/* Reads path and sets up the parser over it. Returns 0, or with "path: ..." in err: -errno when
 * the file cannot be read, STZ_E2BIG for one too large to be a config file, STZ_ENOMEM. */
int config_loader_open(struct config_loader *l, const char *path, char *err, size_t errlen);
void config_loader_close(struct config_loader *l);

/* Formats "path:line: ..." into l->err; returns STZ_ECONFIG. */
int config_loader_fail(struct config_loader *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The next event; STZ_ECONFIG on a syntax error (or no memory), with l->err set. */
int config_next_event(struct config_loader *l, yaml_event_t *ev);
/* The pairs of a mapping whose start was read, through its end: fn gets each key (and reads its
 * value). Returns 0 or fn's error. */
typedef int (*config_pair_fn)(struct config_loader *l, void *ctx, const yaml_event_t *kev);
int config_each_pair(struct config_loader *l, config_pair_fn fn, void *ctx);
int config_line_of(const yaml_mark_t *m);
const char *config_printable(char *out, size_t outlen, const char *s); /* for quoting in errors */
const char *config_node_kind(yaml_event_type_t t);                     /* "a list", ... */
bool config_is_null(const yaml_event_t *ev);                           /* a plain ~, null or "" */
bool config_has_nul(const yaml_event_t *ev);

/* Reads the value of key kname, which must be one scalar. On success *value is its text, or NULL
 * for YAML null, and the caller deletes *vev; on failure (STZ_ECONFIG) l->err is set and nothing
 * is owned. */
int config_load_value(struct config_loader *l, const char *kname, yaml_event_t *vev,
                      const char **value);
/* The same for a value that may not be null: "WHAT"KNAME" needs a value" otherwise (what is ""
 * or a section's name and a space, e.g. "tls "). */
int config_load_present(struct config_loader *l, const char *what, const char *kname,
                        yaml_event_t *vev, const char **value);

/* The value of a section's key, not yet read: null (*empty: nothing follows) or a mapping (its
 * pairs follow: config_each_pair). Anything else is an error "\"NAME\" takes a section (KEYS),
 * not ..." at its line. */
int config_begin_section(struct config_loader *l, const char *name, const char *keys, bool *empty);

/* A key whose value is a list of strings or one string of comma-separated ones (cluster routes,
 * peers). check gets each list entry alone, or with joined set the entries so far joined with
 * commas (to find duplicates at the entry's line: only for lists bounded by check itself), or
 * the whole string; 0, or STZ_ECONFIG with the reason in why. */
struct config_list_spec {
    const char *what;  /* how messages name the key: "cluster routes" */
    const char *entry; /* what a list entry must be: "a URL" */
    const char *form;  /* what the value must be: "a list of URLs or one string" */
    int (*check)(const char *s, char *why, size_t len);
    bool joined;
};
/* Reads the value of such a key: *out is the string, or the list's entries joined with commas
 * (malloc'd; NULL for null or an empty list), *line the value's line. Errors (STZ_ECONFIG)
 * "path:line: WHAT: ..." at the offending entry. */
int config_load_list(struct config_loader *l, const struct config_list_spec *spec, char **out,
                     int *line);

#endif

/* config_yaml: error sentences and the YAML loader's primitives; see config_yaml.h. */
#include "config_yaml.h"

#include "buf.h"
#include "err.h"
#include "xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A config file is a handful of lines; anything this big is a mistake (or not a config file). */
#define MAX_FILE_SIZE (16 * 1024 * 1024)

int config_failf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return STZ_ECONFIG;
}

/* ---- the file ---- */

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        config_failf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_SIZE) {
                free(buf);
                fclose(fp);
                config_failf(err, errlen, "%s: too large for a config file", path);
                return STZ_E2BIG;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) break;
    }
    if (ferror(fp)) {
        int e = errno;
        free(buf);
        fclose(fp);
        config_failf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        return -e;
    }
    fclose(fp);
    *out = buf;
    *outlen = len;
    return 0;
}

int config_loader_open(struct config_loader *l, const char *path, char *err, size_t errlen)
{
    *l = (struct config_loader){.path = path, .err = err, .errlen = errlen};
    int rc = read_file(path, &l->buf, &l->len, err, errlen);
    if (rc < 0) return rc;
    if (!yaml_parser_initialize(&l->parser)) {
        free(l->buf);
        l->buf = NULL;
        config_failf(err, errlen, "%s: out of memory", path);
        return STZ_ENOMEM;
    }
    yaml_parser_set_input_string(&l->parser, (const unsigned char *)l->buf, l->len);
    return 0;
}

void config_loader_close(struct config_loader *l)
{
    yaml_parser_delete(&l->parser);
    free(l->buf);
    l->buf = NULL;
}

/* ---- events ---- */

/* Keys and values are quoted back in messages; keep them short and printable. */
const char *config_printable(char *out, size_t outlen, const char *s)
{
    size_t n = 0, max = outlen - 4; /* room for "..." and the NUL */
    for (; *s && n < max; s++)
        out[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    if (*s)
        memcpy(out + n, "...", 4);
    else
        out[n] = '\0';
    return out;
}

int config_line_of(const yaml_mark_t *m)
{
    return (int)m->line + 1;
}

static int syntax_error(struct config_loader *l)
{
    yaml_parser_t *p = &l->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return config_failf(l->err, l->errlen, "%s: out of memory", l->path);
    int line = config_line_of(&p->problem_mark);
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors (bad encoding, control characters) carry a byte offset, no mark. */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < l->len; i++)
            line += l->buf[i] == '\n';
    } else if (p->context && p->context_mark.line < p->problem_mark.line &&
               (strstr(p->context, "simple key") || strstr(p->context, "quoted scalar"))) {
        /* A key missing its ':', or a quote never closed, is only noticed on a later line; the
         * line where the key or the quote starts is the one to fix. */
        line = config_line_of(&p->context_mark);
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->context)
        return config_failf(l->err, l->errlen, "%s:%d: YAML syntax error: %s (%s)", l->path, line,
                            problem, p->context);
    return config_failf(l->err, l->errlen, "%s:%d: YAML syntax error: %s", l->path, line, problem);
}

int config_next_event(struct config_loader *l, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&l->parser, ev)) return syntax_error(l);
    return 0;
}

bool config_is_null(const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp((const char *)ev->data.scalar.value, nulls[i]) == 0) return true;
    return false;
}

bool config_has_nul(const yaml_event_t *ev)
{
    return strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length;
}

const char *config_node_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_ALIAS_EVENT:
        return "an alias (aliases are not supported)";
    default:
        return "a single value";
    }
}

int config_each_pair(struct config_loader *l, config_pair_fn fn, void *ctx)
{
    for (;;) {
        yaml_event_t kev;
        int rc = config_next_event(l, &kev);
        if (rc < 0) return rc;
        rc = kev.type == YAML_MAPPING_END_EVENT ? 1 : fn(l, ctx, &kev);
        yaml_event_delete(&kev);
        if (rc != 0) return rc > 0 ? 0 : rc;
    }
}

int config_loader_fail(struct config_loader *l, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return config_failf(l->err, l->errlen, "%s:%d: %s", l->path, line, msg);
}

int config_load_value(struct config_loader *l, const char *kname, yaml_event_t *vev,
                      const char **value)
{
    int rc = config_next_event(l, vev);
    if (rc < 0) return rc;
    int line = config_line_of(&vev->start_mark);
    if (vev->type != YAML_SCALAR_EVENT) {
        rc = config_loader_fail(l, line, "\"%s\" takes a single value, not %s", kname,
                                config_node_kind(vev->type));
    } else if (config_has_nul(vev)) {
        rc = config_loader_fail(l, line, "value of \"%s\" contains a NUL byte", kname);
    } else {
        *value = config_is_null(vev) ? NULL : (const char *)vev->data.scalar.value;
        return 0;
    }
    yaml_event_delete(vev);
    return rc;
}

int config_load_present(struct config_loader *l, const char *what, const char *kname,
                        yaml_event_t *vev, const char **value)
{
    int rc = config_load_value(l, kname, vev, value);
    if (rc < 0 || *value) return rc;
    rc = config_loader_fail(l, config_line_of(&vev->start_mark), "%s\"%s\" needs a value", what,
                            kname);
    yaml_event_delete(vev);
    return rc;
}

int config_begin_section(struct config_loader *l, const char *name, const char *keys, bool *empty)
{
    yaml_event_t ev;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    *empty = ev.type == YAML_SCALAR_EVENT && config_is_null(&ev);
    if (!*empty && ev.type != YAML_MAPPING_START_EVENT)
        rc = config_loader_fail(l, config_line_of(&ev.start_mark),
                                "\"%s\" takes a section (%s), not %s", name, keys,
                                config_node_kind(ev.type));
    yaml_event_delete(&ev);
    return rc;
}

/* ---- lists ---- */

/* The entries of a list whose start was read, through its end, joined into all. */
static int load_entries(struct config_loader *l, const struct config_list_spec *spec, buf_t *all)
{
    for (;;) {
        yaml_event_t ev;
        int rc = config_next_event(l, &ev);
        if (rc < 0) return rc;
        int line = config_line_of(&ev.start_mark);
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        char why[512];
        bool scalar = ev.type == YAML_SCALAR_EVENT && !config_has_nul(&ev);
        if (scalar) {
            if (all->len) buf_append(all, ",", 1);
            buf_append(all, ev.data.scalar.value, ev.data.scalar.length);
            buf_append(all, "", 1); /* a NUL, to check the entries so far as a string */
            all->len--;
        }
        if (!scalar)
            rc = config_loader_fail(l, line, "%s: each entry must be %s, not %s", spec->what,
                                    spec->entry, config_node_kind(ev.type));
        else if (spec->check(spec->joined ? all->data : (const char *)ev.data.scalar.value, why,
                             sizeof why) != 0)
            rc = config_loader_fail(l, line, "%s: %s", spec->what, why);
        yaml_event_delete(&ev);
        if (rc < 0) return rc;
    }
}

int config_load_list(struct config_loader *l, const struct config_list_spec *spec, char **out,
                     int *line)
{
    yaml_event_t ev;
    *out = NULL;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    *line = config_line_of(&ev.start_mark);
    if (ev.type == YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(&ev);
        buf_t all;
        buf_init(&all);
        rc = load_entries(l, spec, &all);
        if (rc == 0 && all.len) *out = xstrndup(all.data, all.len);
        buf_free(&all);
        return rc;
    }
    const char *v = (const char *)ev.data.scalar.value;
    char why[512];
    if (ev.type != YAML_SCALAR_EVENT || config_has_nul(&ev))
        rc = config_loader_fail(l, *line, "%s: %s, not %s", spec->what, spec->form,
                                config_node_kind(ev.type));
    else if (!config_is_null(&ev) && spec->check(v, why, sizeof why) != 0)
        rc = config_loader_fail(l, *line, "%s: %s", spec->what, why);
    else if (!config_is_null(&ev))
        *out = xstrdup(v);
    yaml_event_delete(&ev);
    return rc;
}

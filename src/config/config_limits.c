/* config_limits: the store_limits section of the config file, and the limits that apply to one
 * channel.
 *
 * store_limits holds the global limits (max_channels, max_msgs, ...) and "channels", a mapping
 * from a channel name, or a pattern with * and > wildcards, to limits that override the global
 * ones for the channels it matches. As in NSS, 0 (or omitted) in an entry inherits and a
 * negative value means unlimited. This is the only nested section of the file; each level has
 * its own function, so the nesting accepted is bounded by the code, not by the input. */
#include "config.h"
#include "config_private.h"

#include "subject.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- patterns ---- */

/* A token is a wildcard only when it is the whole token ("a*" is a literal token). */
static bool is_wildcard_token(const char *t, size_t len, char which)
{
    return len == 1 && *t == which;
}

/* How wide a pattern is, to apply the widest first: see wider(). */
struct width {
    bool tail; /* ends with '>' */
    int wild;  /* '*' and '>' tokens */
    int len;   /* tokens */
};

static struct width pattern_width(const char *p)
{
    struct width w = {0};
    for (;;) {
        size_t len = strcspn(p, ".");
        if (is_wildcard_token(p, len, '>')) w.tail = true;
        if (is_wildcard_token(p, len, '>') || is_wildcard_token(p, len, '*')) w.wild++;
        w.len++;
        if (!p[len]) return w;
        p += len + 1;
    }
}

static bool is_literal(const char *pattern)
{
    return pattern_width(pattern).wild == 0;
}

/* Whether a is wider than b, for two patterns that match one channel. Patterns often match
 * sets that are not nested ("a.>" and "*.*.*"), so this is a convention, chosen so that whenever
 * one set does contain the other the larger comes first: a '>' pattern is wider than any without
 * one; among '>' patterns the shorter is wider (">" before "*.>"), then (as among patterns
 * without '>', which all have the channel's length) the one with more wildcards. A literal equal
 * to the channel has no wildcard, so it comes last. Equal widths keep file order. */
static bool wider(const char *a, const char *b)
{
    struct width wa = pattern_width(a), wb = pattern_width(b);
    if (wa.tail != wb.tail) return wa.tail;
    if (wa.len != wb.len) return wa.len < wb.len;
    return wa.wild > wb.wild;
}

/* A literal channel name against a pattern: '*' is one token, '>' one or more to the end. */
static bool pattern_matches(const char *pat, const char *chan)
{
    for (;;) {
        size_t pl = strcspn(pat, "."), cl = strcspn(chan, ".");
        if (cl == 0) return false; /* an empty token matches nothing */
        if (is_wildcard_token(pat, pl, '>')) return true;
        if (!is_wildcard_token(pat, pl, '*') && (pl != cl || memcmp(pat, chan, pl) != 0))
            return false;
        pat += pl;
        chan += cl;
        if (!*pat || !*chan) return !*pat && !*chan;
        pat++;
        chan++;
    }
}

/* ---- resolution ---- */

static void override(int64_t *field, int64_t v)
{
    if (v) *field = v < 0 ? 0 : v;
}

static void apply(config_limits_t *out, const config_limits_t *e)
{
    override(&out->max_msgs, e->max_msgs);
    override(&out->max_bytes, e->max_bytes);
    override(&out->max_age_ms, e->max_age_ms);
    override(&out->max_subs, e->max_subs);
    override(&out->max_inactivity_ms, e->max_inactivity_ms);
    override(&out->max_deliveries, e->max_deliveries);
    if (e->discard != CONFIG_DISCARD_INHERIT) out->discard = e->discard;
    if (e->dead_letter) out->dead_letter = e->dead_letter; /* the config's string: see config.h */
    if (e->backoff_set) {
        out->backoff_set = true;
        out->nbackoff = e->nbackoff;
        memcpy(out->backoff_ms, e->backoff_ms, sizeof out->backoff_ms);
    }
}

void config_channel_limits(const config_t *cfg, const char *channel, config_limits_t *out)
{
    *out = cfg->limits;
    if (!cfg->nchannel_limits) return;
    const config_channel_limits_t **m = xcalloc(cfg->nchannel_limits, sizeof(*m));
    size_t n = 0;
    for (size_t i = 0; i < cfg->nchannel_limits; i++) {
        const config_channel_limits_t *e = &cfg->channel_limits[i];
        if (!pattern_matches(e->pattern, channel)) continue;
        /* Insertion sort, widest first; stable, so equals stay in file order. */
        size_t j = n++;
        for (; j > 0 && wider(e->pattern, m[j - 1]->pattern); j--)
            m[j] = m[j - 1];
        m[j] = e;
    }
    for (size_t i = 0; i < n; i++)
        apply(out, &m[i]->limits);
    free(m);
}

/* ---- checks ---- */

static size_t count_literals(const config_t *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nchannel_limits; i++)
        n += is_literal(cfg->channel_limits[i].pattern);
    return n;
}

/* The first literal entry beyond max_channels, or NULL if within it (NSS counts only literal
 * names: a pattern creates no channel). */
static const config_channel_limits_t *excess_literal(const config_t *cfg)
{
    if (cfg->max_channels <= 0) return NULL;
    int64_t seen = 0;
    for (size_t i = 0; i < cfg->nchannel_limits; i++)
        if (is_literal(cfg->channel_limits[i].pattern) && ++seen > cfg->max_channels)
            return &cfg->channel_limits[i];
    return NULL;
}

int config_check_channel_count(struct config_loader *l, const config_t *cfg)
{
    const config_channel_limits_t *e = excess_literal(cfg);
    if (!e) return 0;
    return config_loader_fail(
        l, e->line, "store_limits.channels: too many channels defined (%zu), the max is %lld",
        count_literals(cfg), (long long)cfg->max_channels);
}

int config_validate_channel_limits(const config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->nchannel_limits; i++) {
        const char *p = cfg->channel_limits[i].pattern;
        if (!p || !subject_valid(p, strlen(p))) {
            return config_failf(err, errlen,
                                "store_limits.channels: invalid channel name or pattern");
        }
    }
    if (excess_literal(cfg))
        return config_failf(
            err, errlen,
            "max_channels: %zu channels are defined in store_limits.channels, more than %lld",
            count_literals(cfg), (long long)cfg->max_channels);
    return 0;
}

/* ---- the file ---- */

/* Called for each key of a mapping, with the key event read; it reads the value. */

/* Reads the value of "what", which must be a mapping (or null, if allow_null: *empty is then
 * set), up to its first key. */
static int open_mapping(struct config_loader *l, const char *what, bool allow_null, bool *empty)
{
    yaml_event_t ev;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    *empty = allow_null && ev.type == YAML_SCALAR_EVENT && config_is_null(&ev);
    if (ev.type != YAML_MAPPING_START_EVENT && !*empty)
        rc = config_loader_fail(l, config_line_of(&ev.start_mark), "%s must be a mapping, not %s",
                                what, config_node_kind(ev.type));
    yaml_event_delete(&ev);
    return rc;
}

static bool is_key(const yaml_event_t *kev, const char *name)
{
    return kev->type == YAML_SCALAR_EVENT &&
           strcasecmp((const char *)kev->data.scalar.value, name) == 0;
}

/* One duration of a redelivery_backoff list. */
static int load_backoff_item(struct config_loader *l, config_limits_t *lim, const yaml_event_t *ev,
                             const char *where)
{
    char vtext[64];
    int line = config_line_of(&ev->start_mark);
    if (ev->type != YAML_SCALAR_EVENT)
        return config_loader_fail(l, line,
                                  "redelivery_backoff%s: entries must be durations, not %s", where,
                                  config_node_kind(ev->type));
    const char *v = (const char *)ev->data.scalar.value;
    config_printable(vtext, sizeof(vtext), v);
    int64_t ms;
    if (lim->nbackoff == CONFIG_BACKOFF_MAX)
        return config_loader_fail(l, line, "redelivery_backoff%s: more than %d entries", where,
                                  CONFIG_BACKOFF_MAX);
    if (config_has_nul(ev) || *v == '-' || config_parse_duration_ms(v, &ms) < 0 || ms <= 0)
        return config_loader_fail(l, line,
                                  "invalid value \"%s\" in redelivery_backoff%s: must be a "
                                  "duration greater than 0 (e.g. 500ms, 10s, 1m)",
                                  vtext, where);
    lim->backoff_ms[lim->nbackoff++] = ms;
    return 0;
}

/* "redelivery_backoff: [1s, 10s, 1m]" of store_limits (where "") or of a channel entry (where
 * ' of channel "X"'); null or [] is an empty list. Done into a copy, so that a bad list leaves
 * nothing behind. */
static int load_backoff(struct config_loader *l, config_limits_t *out, const char *where)
{
    config_limits_t lim = {.backoff_set = true};
    yaml_event_t ev;
    int rc = config_next_event(l, &ev);
    if (rc < 0) return rc;
    bool null = ev.type == YAML_SCALAR_EVENT && config_is_null(&ev);
    if (ev.type != YAML_SEQUENCE_START_EVENT && !null)
        rc = config_loader_fail(l, config_line_of(&ev.start_mark),
                                "redelivery_backoff%s must be a list of durations, not %s", where,
                                config_node_kind(ev.type));
    yaml_event_delete(&ev);
    while (rc == 0 && !null) {
        if ((rc = config_next_event(l, &ev)) < 0) return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT)
            null = true; /* done */
        else
            rc = load_backoff_item(l, &lim, &ev, where);
        yaml_event_delete(&ev);
    }
    if (rc < 0) return rc;
    out->backoff_set = true;
    out->nbackoff = lim.nbackoff;
    memcpy(out->backoff_ms, lim.backoff_ms, sizeof out->backoff_ms);
    return 0;
}

/* One entry being read, and the channel it is for (quoted in messages). */
struct entry {
    config_channel_limits_t *e;
    const char *quoted;
};

/* One "max_msgs: 5000" of a channel entry. */
static int load_channel_limit(struct config_loader *l, void *ctx, const yaml_event_t *kev)
{
    struct entry *en = ctx;
    char kname[64], vtext[64], why[128];
    int kline = config_line_of(&kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT)
        return config_loader_fail(l, kline, "limit names must be plain words, not %s",
                                  config_node_kind(kev->type));
    const char *key = (const char *)kev->data.scalar.value;
    config_printable(kname, sizeof(kname), key);
    if (is_key(kev, "redelivery_backoff") && !config_has_nul(kev)) {
        char where[96];
        snprintf(where, sizeof(where), " of channel \"%s\"", en->quoted);
        return load_backoff(l, &en->e->limits, where);
    }
    if (config_has_nul(kev) || !config_is_channel_limit(key))
        return config_loader_fail(l, kline, "unknown limit \"%s\" for channel \"%s\"", kname,
                                  en->quoted);

    yaml_event_t vev;
    const char *v;
    int rc = config_load_present(l, "", kname, &vev, &v);
    if (rc < 0) return rc;
    if (config_set_channel_limit(&en->e->limits, key, v, why, sizeof(why)) < 0)
        rc = config_loader_fail(l, config_line_of(&vev.start_mark),
                                "invalid value \"%s\" for \"%s\" of channel \"%s\": %s",
                                config_printable(vtext, sizeof(vtext), v), kname, en->quoted, why);
    yaml_event_delete(&vev);
    return rc;
}

/* The pattern of a channel entry: a valid subject, not seen before. */
static int check_pattern(struct config_loader *l, const config_t *cfg, const yaml_event_t *kev,
                         const char *quoted)
{
    int line = config_line_of(&kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT)
        return config_loader_fail(l, line, "channel names must be plain strings, not %s",
                                  config_node_kind(kev->type));
    const char *p = (const char *)kev->data.scalar.value;
    if (config_has_nul(kev) || !subject_valid(p, strlen(p)))
        return config_loader_fail(l, line,
                                  "invalid channel name or pattern \"%s\" (tokens separated by "
                                  "'.', no spaces; * and > wildcards, > only last)",
                                  quoted);
    for (size_t i = 0; i < cfg->nchannel_limits; i++)
        if (strcmp(cfg->channel_limits[i].pattern, p) == 0)
            return config_loader_fail(l, line, "duplicate channel \"%s\" (first at line %d)",
                                      quoted, cfg->channel_limits[i].line);
    return 0;
}

/* One "orders.>: {max_msgs: 5000}" of store_limits.channels. */
static int load_channel(struct config_loader *l, void *ctx, const yaml_event_t *kev)
{
    config_t *cfg = ctx;
    char quoted[64] = "", what[96];
    bool empty;
    if (kev->type == YAML_SCALAR_EVENT)
        config_printable(quoted, sizeof(quoted), (const char *)kev->data.scalar.value);
    int rc = check_pattern(l, cfg, kev, quoted);
    snprintf(what, sizeof(what), "channel \"%s\"", quoted);
    if (rc == 0) rc = open_mapping(l, what, false, &empty);
    config_channel_limits_t e = {.line = config_line_of(&kev->start_mark)};
    struct entry en = {&e, quoted};
    if (rc == 0) rc = config_each_pair(l, load_channel_limit, &en);
    if (rc < 0) return rc;
    /* Added only once complete, so that a failed entry leaves nothing behind. */
    e.pattern = xstrdup((const char *)kev->data.scalar.value);
    cfg->channel_limits =
        xrealloc(cfg->channel_limits, (cfg->nchannel_limits + 1) * sizeof(*cfg->channel_limits));
    cfg->channel_limits[cfg->nchannel_limits++] = e;
    return 0;
}

/* One pair of store_limits: "channels", or a global limit. */
static int load_store_limit(struct config_loader *l, void *ctx, const yaml_event_t *kev)
{
    config_t *cfg = ctx;
    bool empty;
    if (is_key(kev, "redelivery_backoff") && !config_has_nul(kev))
        return load_backoff(l, &cfg->limits, "");
    if (!is_key(kev, "channels")) return config_load_pair(l, cfg, kev, CONFIG_SEC_STORE_LIMITS);
    int rc = open_mapping(l, "\"channels\"", true, &empty);
    return rc < 0 || empty ? rc : config_each_pair(l, load_channel, cfg);
}

int config_load_store_limits(struct config_loader *l, config_t *cfg, const yaml_event_t *kev)
{
    bool empty;
    /* Null is allowed, so that commenting out every line under it leaves a valid file. */
    int rc = open_mapping(l, "\"store_limits\"", true, &empty);
    return rc < 0 || empty ? rc : config_each_pair(l, load_store_limit, cfg);
}

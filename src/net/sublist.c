/* sublist: a subject trie in the manner of nats-server's sublist.go.
 *
 * Each level maps literal tokens to nodes and has at most one '*' node (pwc) and one '>' node
 * (fwc). A node holds its plain subscribers, its queue subscribers grouped by queue name, and the
 * level below it. Matching walks the levels once per token, branching into pwc and collecting
 * fwc, exactly like sublist.go's matchLevel.
 *
 * Results are immutable snapshots in one allocation, refcounted: the cache owns one reference,
 * every caller of sublist_match one more. A cache hit is therefore a hash lookup and an
 * increment. Insert and remove drop only the cached results whose subject the changed
 * subscription matches, so unrelated subjects stay hot. */
#include "sublist.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hmap.h"
#include "list.h"
#include "subject.h"
#include "xalloc.h"

/* Bounds memory for servers publishing on many distinct subjects; beyond it the oldest entry is
 * evicted per new entry, so the cache never has to be rebuilt from empty. */
#define CACHE_MAX 4096

/* ---- keyed entries: the trie's levels, queue groups and the cache are hmaps of these -------- */

/* An entry keyed by a byte string that lives in the entry's own memory (a node's token, a queue
 * group's name, a cached result's subject), so keys are never copied. */
typedef struct kentry {
    hmap_node_t node;
    const char *key;
    size_t klen;
} kentry_t;

static kentry_t *kfind_h(const hmap_t *m, const char *key, size_t klen, uint64_t h)
{
    for (hmap_node_t *n = hmap_first_with_hash(m, h); n; n = hmap_next_with_hash(n, h)) {
        kentry_t *e = HMAP_ITEM(n, kentry_t, node);
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
    }
    return NULL;
}

static kentry_t *kfind(const hmap_t *m, const char *key, size_t klen)
{
    return kfind_h(m, key, klen, hmap_hash_bytes(key, klen));
}

/* The key must not be present. */
static void kput_h(hmap_t *m, kentry_t *e, const char *key, size_t klen, uint64_t h)
{
    e->key = key;
    e->klen = klen;
    hmap_insert(m, &e->node, h);
}

static void kput(hmap_t *m, kentry_t *e, const char *key, size_t klen)
{
    kput_h(m, e, key, klen, hmap_hash_bytes(key, klen));
}

/* ---- member sets: the subscribers of a node or a queue group -------------------------------- */

/* Sets can be large (thousands of clients on one subject), so duplicate checks and removal must
 * not be linear scans. Items are opaque to the sublist: each member is a small entry. */
typedef struct member {
    hmap_node_t node;
    void *item;
} member_t;

static uint64_t hash_item(const void *p)
{
    return hmap_hash_u64((uint64_t)(uintptr_t)p);
}

static member_t *mset_find(const hmap_t *m, const void *item)
{
    uint64_t h = hash_item(item);
    for (hmap_node_t *n = hmap_first_with_hash(m, h); n; n = hmap_next_with_hash(n, h)) {
        member_t *e = HMAP_ITEM(n, member_t, node);
        if (e->item == item) return e;
    }
    return NULL;
}

static bool mset_add(hmap_t *m, void *item)
{
    if (mset_find(m, item)) return false;
    member_t *e = xmalloc(sizeof *e);
    e->item = item;
    hmap_insert(m, &e->node, hash_item(item));
    return true;
}

static bool mset_remove(hmap_t *m, const void *item)
{
    member_t *e = mset_find(m, item);
    if (!e) return false;
    hmap_remove(m, &e->node);
    free(e);
    return true;
}

/* Appends the members to out; returns the new end. */
static void **mset_copy(const hmap_t *m, void **out)
{
    size_t it;
    for (hmap_node_t *n = hmap_first(m, &it); n; n = hmap_next(m, &it, n))
        *out++ = HMAP_ITEM(n, member_t, node)->item;
    return out;
}

static void mset_free(hmap_t *m)
{
    size_t it;
    hmap_node_t *n = hmap_first(m, &it);
    while (n) {
        hmap_node_t *next = hmap_next(m, &it, n);
        free(HMAP_ITEM(n, member_t, node));
        n = next;
    }
    hmap_free(m);
}

/* ---- trie --------------------------------------------------------------------------------- */

typedef struct level level_t;

typedef struct qgroup {
    kentry_t k; /* in its node's qgroups, by name */
    hmap_t items;
    char name[];
} qgroup_t;

typedef struct node {
    kentry_t k;    /* in its level's nodes, by token (unused for '*' and '>') */
    level_t *next; /* NULL when nothing is subscribed below this token */
    hmap_t plain;
    hmap_t qgroups; /* qgroup_t by name */
    size_t tlen;
    char token[];
} node_t;

struct level {
    hmap_t nodes; /* literal token -> node_t */
    node_t *pwc;  /* '*' */
    node_t *fwc;  /* '>' */
};

typedef struct token {
    const char *s;
    size_t len;
} token_t;

/* Scratch for building one result; reused across misses so a miss allocates only the result. */
typedef struct scratch_group {
    kentry_t k; /* in sl->group_index, by queue name */
    size_t n;   /* members */
    size_t off; /* index of the first member in the result's member array */
} scratch_group_t;

/* A cached result: one allocation holding the cache's bookkeeping, the result, and after it the
 * arrays and strings the result points to (build_result). */
typedef struct centry {
    kentry_t k;      /* in sl->cache, by subject */
    list_node_t age; /* sl->cache_age: oldest first, the next to evict */
    sublist_result_t r;
} centry_t;

struct sublist {
    level_t root;
    hmap_t cache;          /* literal subject -> centry_t (the cache holds one reference) */
    list_node_t cache_age; /* the same entries, oldest first */
    sublist_stats_t stats;

    /* Scratch vectors, grown on demand and kept. */
    token_t *toks;
    size_t toks_cap;
    level_t **path_levels;
    node_t **path_nodes;
    size_t path_cap;
    node_t **matched;
    size_t nmatched, matched_cap;
    scratch_group_t *groups;
    size_t ngroups, groups_cap;
    hmap_t group_index; /* queue name -> scratch_group_t, during one build */
};

static bool is_pwc(const token_t *t)
{
    return t->len == 1 && t->s[0] == '*';
}

static bool is_fwc(const token_t *t)
{
    return t->len == 1 && t->s[0] == '>';
}

/* Splits a validated subject into sl->toks without copying. Returns the token count. */
static size_t tokenize(sublist_t *sl, const char *s, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '.';
    if (n > sl->toks_cap) {
        sl->toks_cap = n < 16 ? 16 : n;
        sl->toks = xrealloc(sl->toks, sl->toks_cap * sizeof *sl->toks);
    }
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') continue;
        sl->toks[k++] = (token_t){s + start, i - start};
        start = i + 1;
    }
    return n;
}

static node_t *node_new(const char *tok, size_t tlen)
{
    node_t *n = xcalloc(1, sizeof *n + tlen + 1);
    memcpy(n->token, tok, tlen);
    n->tlen = tlen;
    return n;
}

static node_t *level_find(const level_t *l, const char *tok, size_t len)
{
    kentry_t *e = kfind(&l->nodes, tok, len);
    return e ? HMAP_ITEM(e, node_t, k) : NULL;
}

static qgroup_t *qgroup_find(const node_t *n, const char *name, size_t len)
{
    kentry_t *e = kfind(&n->qgroups, name, len);
    return e ? HMAP_ITEM(e, qgroup_t, k) : NULL;
}

static void level_free(level_t *l);

static void node_free(node_t *n)
{
    if (!n) return;
    if (n->next) {
        level_free(n->next);
        free(n->next);
    }
    mset_free(&n->plain);
    size_t it;
    hmap_node_t *e = hmap_first(&n->qgroups, &it);
    while (e) {
        hmap_node_t *next = hmap_next(&n->qgroups, &it, e);
        qgroup_t *g = HMAP_ITEM(e, qgroup_t, k.node);
        mset_free(&g->items);
        free(g);
        e = next;
    }
    hmap_free(&n->qgroups);
    free(n);
}

/* Frees what the level owns, not the level itself (the root is embedded). */
static void level_free(level_t *l)
{
    size_t it;
    hmap_node_t *e = hmap_first(&l->nodes, &it);
    while (e) {
        hmap_node_t *next = hmap_next(&l->nodes, &it, e);
        node_free(HMAP_ITEM(e, node_t, k.node));
        e = next;
    }
    hmap_free(&l->nodes);
    node_free(l->pwc);
    node_free(l->fwc);
    l->pwc = l->fwc = NULL;
}

static bool node_empty(const node_t *n)
{
    return hmap_count(&n->plain) == 0 && hmap_count(&n->qgroups) == 0 && !n->next;
}

static bool level_empty(const level_t *l)
{
    return hmap_count(&l->nodes) == 0 && !l->pwc && !l->fwc;
}

/* ---- results ------------------------------------------------------------------------------ */

/* A result is one allocation: the header, the queue-group array, the plain items, all queue
 * members, then the NUL-terminated queue names and the subject (the cache key). So dropping the
 * last reference is a single free, and the cache key lives exactly as long as the entry. */
static void result_unref(sublist_result_t *r)
{
    if (r && --r->refs_ == 0) free(HMAP_ITEM(r, centry_t, r));
}

void sublist_result_release(sublist_result_t *r)
{
    result_unref(r);
}

static void add_node(sublist_t *sl, node_t *n)
{
    if (hmap_count(&n->plain) == 0 && hmap_count(&n->qgroups) == 0) return;
    if (sl->nmatched == sl->matched_cap) {
        sl->matched_cap = sl->matched_cap ? sl->matched_cap * 2 : 16;
        sl->matched = xrealloc(sl->matched, sl->matched_cap * sizeof *sl->matched);
    }
    sl->matched[sl->nmatched++] = n;
}

/* sublist.go's matchLevel: at each level the '>' node matches the rest, the '*' node branches
 * into a recursive match of the remaining tokens, and the literal node continues the loop. */
static void match_level(sublist_t *sl, level_t *l, const token_t *toks, size_t ntoks)
{
    node_t *n = NULL, *pwc = NULL;
    for (size_t i = 0; i < ntoks; i++) {
        if (!l) return;
        if (l->fwc) add_node(sl, l->fwc);
        pwc = l->pwc;
        if (pwc && pwc->next) match_level(sl, pwc->next, toks + i + 1, ntoks - i - 1);
        n = level_find(l, toks[i].s, toks[i].len);
        l = n ? n->next : NULL;
    }
    /* Only the nodes of the last level consumed hold subscriptions for the full subject. */
    if (n) add_node(sl, n);
    if (pwc) add_node(sl, pwc);
}

/* The scratch group for a queue name, made on first sight (gather gave groups the room). */
static scratch_group_t *group_for(sublist_t *sl, const char *name, size_t nlen)
{
    kentry_t *e = kfind(&sl->group_index, name, nlen);
    if (e) return HMAP_ITEM(e, scratch_group_t, k);
    scratch_group_t *g = &sl->groups[sl->ngroups++];
    *g = (scratch_group_t){.n = 0};
    kput(&sl->group_index, &g->k, name, nlen);
    return g;
}

/* Counts what the nodes in sl->matched hold, merging queue groups of the same name in different
 * nodes into one scratch group each, and places each group's members in the member array. */
static void gather(sublist_t *sl, size_t *nplain, size_t *nmembers, size_t *names)
{
    size_t most = 0; /* groups never move while indexed: room for all of them first */
    for (size_t i = 0; i < sl->nmatched; i++)
        most += hmap_count(&sl->matched[i]->qgroups);
    if (most > sl->groups_cap) {
        sl->groups_cap = most < 8 ? 8 : most;
        sl->groups = xrealloc(sl->groups, sl->groups_cap * sizeof *sl->groups);
    }
    sl->ngroups = 0;
    *nplain = *nmembers = *names = 0;
    for (size_t i = 0; i < sl->nmatched; i++) {
        node_t *n = sl->matched[i];
        *nplain += hmap_count(&n->plain);
        size_t it;
        for (hmap_node_t *e = hmap_first(&n->qgroups, &it); e; e = hmap_next(&n->qgroups, &it, e)) {
            qgroup_t *q = HMAP_ITEM(e, qgroup_t, k.node);
            scratch_group_t *g = group_for(sl, q->k.key, q->k.klen);
            if (g->n == 0) *names += q->k.klen + 1;
            g->n += hmap_count(&q->items);
            *nmembers += hmap_count(&q->items);
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < sl->ngroups; i++) {
        sl->groups[i].off = off;
        off += sl->groups[i].n;
    }
}

/* Copies the members of the matched nodes into the result's arrays. */
static void fill(sublist_t *sl, void **plain, sublist_qgroup_t *queues)
{
    for (size_t i = 0; i < sl->nmatched; i++) {
        node_t *n = sl->matched[i];
        plain = mset_copy(&n->plain, plain);
        size_t it;
        for (hmap_node_t *e = hmap_first(&n->qgroups, &it); e; e = hmap_next(&n->qgroups, &it, e)) {
            qgroup_t *q = HMAP_ITEM(e, qgroup_t, k.node);
            sublist_qgroup_t *g = &queues[group_for(sl, q->k.key, q->k.klen) - sl->groups];
            mset_copy(&q->items, g->items + g->n);
            g->n += hmap_count(&q->items);
        }
    }
}

/* Builds the snapshot for the nodes collected in sl->matched, keyed by subject. */
static centry_t *build_result(sublist_t *sl, const char *subject, size_t len)
{
    size_t nplain, nmembers, names;
    gather(sl, &nplain, &nmembers, &names);
    size_t size = sizeof(centry_t) + sl->ngroups * sizeof(sublist_qgroup_t) +
                  (nplain + nmembers) * sizeof(void *) + names + len + 1;
    centry_t *ce = xmalloc(size);
    sublist_qgroup_t *queues = (sublist_qgroup_t *)(ce + 1);
    void **plain = (void **)(queues + sl->ngroups);
    void **members = plain + nplain;
    char *strings = (char *)(members + nmembers);
    ce->r = (sublist_result_t){.nplain = nplain,
                               .plain = nplain ? plain : NULL,
                               .nqueues = sl->ngroups,
                               .queues = sl->ngroups ? queues : NULL,
                               .refs_ = 1};
    for (size_t i = 0; i < sl->ngroups; i++) {
        scratch_group_t *g = &sl->groups[i];
        memcpy(strings, g->k.key, g->k.klen);
        strings[g->k.klen] = '\0';
        queues[i] = (sublist_qgroup_t){.name = strings, .n = 0, .items = members + g->off};
        strings += g->k.klen + 1;
    }
    fill(sl, plain, queues);
    for (size_t i = 0; i < sl->ngroups; i++)
        hmap_remove(&sl->group_index, &sl->groups[i].k.node);
    memcpy(strings, subject, len);
    strings[len] = '\0';
    ce->k.key = strings;
    ce->k.klen = len;
    return ce;
}

/* ---- cache -------------------------------------------------------------------------------- */

static void cache_drop(sublist_t *sl, centry_t *e)
{
    hmap_remove(&sl->cache, &e->k.node);
    list_remove(&e->age);
    result_unref(&e->r);
}

/* Does the (tokenized) subscription subject match the literal subject s? */
static bool toks_match_literal(const token_t *pt, size_t np, const char *s, size_t len)
{
    size_t pos = 0;
    for (size_t i = 0; i < np; i++) {
        if (pos > len) return false; /* the literal ran out of tokens */
        if (is_fwc(&pt[i])) return true;
        const char *dot = memchr(s + pos, '.', len - pos);
        size_t end = dot ? (size_t)(dot - s) : len;
        if (!is_pwc(&pt[i]) && (pt[i].len != end - pos || memcmp(pt[i].s, s + pos, pt[i].len) != 0))
            return false;
        pos = end + 1;
    }
    return pos == len + 1;
}

/* Drops the cached results the changed subscription (tokens in sl->toks) could appear in. */
static void cache_invalidate(sublist_t *sl, const char *subject, size_t len, size_t ntoks)
{
    if (hmap_count(&sl->cache) == 0) return;
    bool literal = true;
    for (size_t i = 0; i < ntoks && literal; i++)
        literal = !is_pwc(&sl->toks[i]) && !is_fwc(&sl->toks[i]);
    if (literal) {
        kentry_t *e = kfind(&sl->cache, subject, len);
        if (e) cache_drop(sl, HMAP_ITEM(e, centry_t, k));
        return;
    }
    list_node_t *n, *next;
    list_foreach_safe (n, next, &sl->cache_age) {
        centry_t *e = LIST_ITEM(n, centry_t, age);
        if (toks_match_literal(sl->toks, ntoks, e->k.key, e->k.klen)) cache_drop(sl, e);
    }
}

/* ---- public API --------------------------------------------------------------------------- */

sublist_t *sublist_new(void)
{
    sublist_t *sl = xcalloc(1, sizeof(sublist_t));
    list_init(&sl->cache_age);
    return sl;
}

void sublist_free(sublist_t *sl)
{
    if (!sl) return;
    level_free(&sl->root);
    while (!list_empty(&sl->cache_age))
        cache_drop(sl, LIST_ITEM(list_first(&sl->cache_age), centry_t, age));
    hmap_free(&sl->cache);
    hmap_free(&sl->group_index);
    free(sl->toks);
    free(sl->path_levels);
    free(sl->path_nodes);
    free(sl->matched);
    free(sl->groups);
    free(sl);
}

static bool args_valid(const char *subject, size_t len, const char *queue, size_t qlen,
                       const void *item)
{
    if (!item || !subject_valid(subject, len)) return false;
    return !queue || subject_valid_queue(queue, qlen);
}

int sublist_insert(sublist_t *sl, const char *subject, size_t len, const char *queue, size_t qlen,
                   void *item)
{
    if (!args_valid(subject, len, queue, qlen, item)) return STZ_EINVAL;
    size_t ntoks = tokenize(sl, subject, len);
    level_t *l = &sl->root;
    node_t *n = NULL;
    for (size_t i = 0; i < ntoks; i++) {
        const token_t *t = &sl->toks[i];
        node_t **wc = is_pwc(t) ? &l->pwc : is_fwc(t) ? &l->fwc : NULL;
        n = wc ? *wc : level_find(l, t->s, t->len);
        if (!n) {
            n = node_new(t->s, t->len);
            if (wc)
                *wc = n;
            else
                kput(&l->nodes, &n->k, n->token, n->tlen);
        }
        if (i + 1 < ntoks) {
            if (!n->next) n->next = xcalloc(1, sizeof(level_t));
            l = n->next;
        }
    }
    /* A duplicate can only exist when every node on the path already existed, so failing here
     * leaves nothing to prune. */
    if (queue) {
        qgroup_t *g = qgroup_find(n, queue, qlen);
        if (!g) {
            g = xcalloc(1, sizeof *g + qlen + 1);
            memcpy(g->name, queue, qlen);
            kput(&n->qgroups, &g->k, g->name, qlen);
        }
        if (!mset_add(&g->items, item)) return STZ_EEXIST;
    } else if (!mset_add(&n->plain, item)) {
        return STZ_EEXIST;
    }
    sl->stats.subs++;
    cache_invalidate(sl, subject, len, ntoks);
    return STZ_OK;
}

/* Unlinks empty nodes bottom-up along the path of the last lookup. */
static void prune(sublist_t *sl, size_t ntoks)
{
    for (size_t i = ntoks; i-- > 0;) {
        level_t *l = sl->path_levels[i];
        node_t *n = sl->path_nodes[i];
        if (!node_empty(n)) return;
        if (l->pwc == n)
            l->pwc = NULL;
        else if (l->fwc == n)
            l->fwc = NULL;
        else
            hmap_remove(&l->nodes, &n->k.node);
        node_free(n);
        if (i == 0 || !level_empty(l)) return;
        /* Free the level's tables directly: node_free would recurse into it otherwise. */
        hmap_free(&l->nodes);
        free(l);
        sl->path_nodes[i - 1]->next = NULL;
    }
}

int sublist_remove(sublist_t *sl, const char *subject, size_t len, const char *queue, size_t qlen,
                   void *item)
{
    if (!args_valid(subject, len, queue, qlen, item)) return STZ_EINVAL;
    size_t ntoks = tokenize(sl, subject, len);
    if (ntoks > sl->path_cap) {
        sl->path_cap = ntoks < 16 ? 16 : ntoks;
        sl->path_levels = xrealloc(sl->path_levels, sl->path_cap * sizeof *sl->path_levels);
        sl->path_nodes = xrealloc(sl->path_nodes, sl->path_cap * sizeof *sl->path_nodes);
    }
    level_t *l = &sl->root;
    node_t *n = NULL;
    for (size_t i = 0; i < ntoks; i++) {
        const token_t *t = &sl->toks[i];
        if (!l) return STZ_ENOENT;
        n = is_pwc(t) ? l->pwc : is_fwc(t) ? l->fwc : level_find(l, t->s, t->len);
        if (!n) return STZ_ENOENT;
        sl->path_levels[i] = l;
        sl->path_nodes[i] = n;
        l = n->next;
    }
    if (queue) {
        qgroup_t *g = qgroup_find(n, queue, qlen);
        if (!g || !mset_remove(&g->items, item)) return STZ_ENOENT;
        if (hmap_count(&g->items) == 0) {
            hmap_remove(&n->qgroups, &g->k.node);
            hmap_free(&g->items);
            free(g);
        }
    } else if (!mset_remove(&n->plain, item)) {
        return STZ_ENOENT;
    }
    sl->stats.subs--;
    prune(sl, ntoks);
    cache_invalidate(sl, subject, len, ntoks);
    return STZ_OK;
}

sublist_result_t *sublist_match(sublist_t *sl, const char *subject, size_t len)
{
    sl->stats.matches++;
    if (!subject) return NULL;
    /* Only validated subjects are ever cached, so a hit needs no validation. */
    uint64_t h = hmap_hash_bytes(subject, len);
    kentry_t *hit = kfind_h(&sl->cache, subject, len, h);
    if (hit) {
        sublist_result_t *r = &HMAP_ITEM(hit, centry_t, k)->r;
        sl->stats.cache_hits++;
        r->refs_++;
        return r;
    }
    /* '*' or '>' tokens in a published subject match only wildcard subscriptions, as in
     * nats-server without pedantic mode (a literal lookup of "*" finds no node). */
    if (!subject_valid(subject, len)) return NULL;
    size_t ntoks = tokenize(sl, subject, len);
    sl->nmatched = 0;
    match_level(sl, &sl->root, sl->toks, ntoks);
    centry_t *ce = build_result(sl, subject, len);
    if (hmap_count(&sl->cache) >= CACHE_MAX)
        cache_drop(sl, LIST_ITEM(list_first(&sl->cache_age), centry_t, age));
    kput_h(&sl->cache, &ce->k, ce->k.key, len, h);
    list_push_back(&sl->cache_age, &ce->age);
    ce->r.refs_++; /* one for the cache, one for the caller */
    return &ce->r;
}

void sublist_get_stats(const sublist_t *sl, sublist_stats_t *out)
{
    *out = sl->stats;
    out->cache_size = hmap_count(&sl->cache);
}

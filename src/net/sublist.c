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

#include "subject.h"
#include "xalloc.h"

/* Bounds memory for servers publishing on many distinct subjects; beyond it one entry is evicted
 * per new entry, so the cache never has to be rebuilt from empty. */
#define CACHE_MAX 4096

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t len)
{
    /* FNV-1a: subjects are short, so a simple byte loop is as fast as anything fancier. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t hash_ptr(const void *p)
{
    /* Pointers share low zero bits and high prefixes; a 64-bit finalizer spreads them. */
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* ---- smap: open-addressing map from byte slices to non-NULL values ------------------------ */

/* Keys are not copied: each key points into the memory of its value (a node's token, a queue
 * group's name, a result's subject), which lives exactly as long as the entry. Linear probing
 * with backward-shift deletion keeps lookups tombstone-free. */
typedef struct smap_slot {
    uint64_t hash;
    const char *key;
    size_t klen;
    void *val; /* NULL marks an empty slot */
} smap_slot_t;

typedef struct smap {
    smap_slot_t *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
} smap_t;

static void smap_free(smap_t *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static size_t smap_find(const smap_t *m, const char *key, size_t klen, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const smap_slot_t *s = &m->slots[i];
        if (!s->val) return i;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) return i;
    }
}

static void *smap_get_h(const smap_t *m, const char *key, size_t klen, uint64_t h)
{
    if (m->count == 0) return NULL;
    return m->slots[smap_find(m, key, klen, h)].val;
}

static void *smap_get(const smap_t *m, const char *key, size_t klen)
{
    return smap_get_h(m, key, klen, hash_bytes(key, klen));
}

static void smap_grow(smap_t *m)
{
    smap_t old = *m;
    m->cap = old.cap ? old.cap * 2 : 4;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old.cap; i++) {
        smap_slot_t *s = &old.slots[i];
        if (s->val) m->slots[smap_find(m, s->key, s->klen, s->hash)] = *s;
    }
    free(old.slots);
}

/* The key must not be present. */
static void smap_put_h(smap_t *m, const char *key, size_t klen, uint64_t h, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3) smap_grow(m);
    smap_slot_t *s = &m->slots[smap_find(m, key, klen, h)];
    *s = (smap_slot_t){.hash = h, .key = key, .klen = klen, .val = val};
    m->count++;
}

static void smap_put(smap_t *m, const char *key, size_t klen, void *val)
{
    smap_put_h(m, key, klen, hash_bytes(key, klen), val);
}

/* Backward-shift deletion: later entries of the probe run move into the hole when their home
 * slot does not lie cyclically in (hole, their slot]. */
static void smap_remove_at(smap_t *m, size_t i)
{
    size_t mask = m->cap - 1;
    size_t j = i;
    m->count--;
    for (;;) {
        m->slots[i].val = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!m->slots[j].val) return;
            size_t k = m->slots[j].hash & mask;
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        m->slots[i] = m->slots[j];
        i = j;
    }
}

static bool smap_remove(smap_t *m, const char *key, size_t klen)
{
    if (m->count == 0) return false;
    size_t i = smap_find(m, key, klen, hash_bytes(key, klen));
    if (!m->slots[i].val) return false;
    smap_remove_at(m, i);
    return true;
}

/* ---- pset: open-addressing set of non-NULL pointers --------------------------------------- */

/* Subscriber sets can be large (thousands of clients on one subject), so duplicate checks and
 * removal must not be linear scans. */
typedef struct pset {
    void **slots;
    size_t cap;
    size_t count;
} pset_t;

static size_t pset_find(const pset_t *s, const void *p)
{
    size_t mask = s->cap - 1;
    for (size_t i = hash_ptr(p) & mask;; i = (i + 1) & mask)
        if (!s->slots[i] || s->slots[i] == p) return i;
}

static void pset_grow(pset_t *s)
{
    pset_t old = *s;
    s->cap = old.cap ? old.cap * 2 : 4;
    s->slots = xcalloc(s->cap, sizeof *s->slots);
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i]) s->slots[pset_find(s, old.slots[i])] = old.slots[i];
    free(old.slots);
}

static bool pset_add(pset_t *s, void *p)
{
    if (s->count && s->slots[pset_find(s, p)]) return false;
    if ((s->count + 1) * 4 > s->cap * 3) pset_grow(s);
    s->slots[pset_find(s, p)] = p;
    s->count++;
    return true;
}

static bool pset_remove(pset_t *s, const void *p)
{
    if (s->count == 0) return false;
    size_t i = pset_find(s, p);
    if (!s->slots[i]) return false;
    size_t mask = s->cap - 1, j = i;
    s->count--;
    for (;;) {
        s->slots[i] = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!s->slots[j]) return true;
            size_t k = hash_ptr(s->slots[j]) & mask;
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        s->slots[i] = s->slots[j];
        i = j;
    }
}

/* Appends the members to out; returns the new end. */
static void **pset_copy(const pset_t *s, void **out)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i]) *out++ = s->slots[i];
    return out;
}

/* ---- trie --------------------------------------------------------------------------------- */

typedef struct level level_t;

typedef struct qgroup {
    pset_t items;
    size_t nlen;
    char name[]; /* the key of the node's qgroups map */
} qgroup_t;

typedef struct node {
    level_t *next; /* NULL when nothing is subscribed below this token */
    pset_t plain;
    smap_t qgroups; /* queue name -> qgroup_t */
    size_t tlen;
    char token[]; /* the key of the parent level's map */
} node_t;

struct level {
    smap_t nodes; /* literal token -> node_t */
    node_t *pwc;  /* '*' */
    node_t *fwc;  /* '>' */
};

typedef struct token {
    const char *s;
    size_t len;
} token_t;

/* Scratch for building one result; reused across misses so a miss allocates only the result. */
typedef struct scratch_group {
    const char *name;
    size_t nlen;
    size_t n;   /* members */
    size_t off; /* index of the first member in the result's member array */
} scratch_group_t;

struct sublist {
    level_t root;
    smap_t cache; /* literal subject -> sublist_result_t (the cache holds one reference) */
    size_t evict_cursor;
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
    smap_t group_index; /* queue name -> index + 1 into groups */
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

static void level_free(level_t *l);

static void node_free(node_t *n)
{
    if (!n) return;
    if (n->next) {
        level_free(n->next);
        free(n->next);
    }
    free(n->plain.slots);
    for (size_t i = 0; i < n->qgroups.cap; i++) {
        qgroup_t *g = n->qgroups.slots[i].val;
        if (!g) continue;
        free(g->items.slots);
        free(g);
    }
    smap_free(&n->qgroups);
    free(n);
}

/* Frees what the level owns, not the level itself (the root is embedded). */
static void level_free(level_t *l)
{
    for (size_t i = 0; i < l->nodes.cap; i++)
        node_free(l->nodes.slots[i].val);
    smap_free(&l->nodes);
    node_free(l->pwc);
    node_free(l->fwc);
    l->pwc = l->fwc = NULL;
}

static bool node_empty(const node_t *n)
{
    return n->plain.count == 0 && n->qgroups.count == 0 && !n->next;
}

static bool level_empty(const level_t *l)
{
    return l->nodes.count == 0 && !l->pwc && !l->fwc;
}

/* ---- results ------------------------------------------------------------------------------ */

/* A result is one allocation: the header, the queue-group array, the plain items, all queue
 * members, then the NUL-terminated queue names and the subject (the cache key). So dropping the
 * last reference is a single free, and the cache key lives exactly as long as the entry. */
static void result_unref(sublist_result_t *r)
{
    if (r && --r->refs_ == 0) free(r);
}

void sublist_result_release(sublist_result_t *r)
{
    result_unref(r);
}

static void add_node(sublist_t *sl, node_t *n)
{
    if (n->plain.count == 0 && n->qgroups.count == 0) return;
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
        n = smap_get(&l->nodes, toks[i].s, toks[i].len);
        l = n ? n->next : NULL;
    }
    /* Only the nodes of the last level consumed hold subscriptions for the full subject. */
    if (n) add_node(sl, n);
    if (pwc) add_node(sl, pwc);
}

static scratch_group_t *group_for(sublist_t *sl, const char *name, size_t nlen)
{
    uintptr_t idx = (uintptr_t)smap_get(&sl->group_index, name, nlen);
    if (idx) return &sl->groups[idx - 1];
    if (sl->ngroups == sl->groups_cap) {
        sl->groups_cap = sl->groups_cap ? sl->groups_cap * 2 : 8;
        sl->groups = xrealloc(sl->groups, sl->groups_cap * sizeof *sl->groups);
    }
    scratch_group_t *g = &sl->groups[sl->ngroups++];
    *g = (scratch_group_t){.name = name, .nlen = nlen};
    smap_put(&sl->group_index, name, nlen, (void *)(uintptr_t)sl->ngroups);
    return g;
}

/* Builds the snapshot for the nodes collected in sl->matched. Queue groups of the same name in
 * different nodes are merged into one group. */
static sublist_result_t *build_result(sublist_t *sl, const char *subject, size_t len,
                                      const char **key)
{
    size_t nplain = 0, nmembers = 0, names = 0;
    sl->ngroups = 0;
    if (sl->group_index.count) {
        memset(sl->group_index.slots, 0, sl->group_index.cap * sizeof *sl->group_index.slots);
        sl->group_index.count = 0;
    }
    for (size_t i = 0; i < sl->nmatched; i++) {
        node_t *n = sl->matched[i];
        nplain += n->plain.count;
        for (size_t j = 0; j < n->qgroups.cap; j++) {
            qgroup_t *q = n->qgroups.slots[j].val;
            if (!q) continue;
            scratch_group_t *g = group_for(sl, q->name, q->nlen);
            if (g->n == 0) names += q->nlen + 1;
            g->n += q->items.count;
            nmembers += q->items.count;
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < sl->ngroups; i++) {
        sl->groups[i].off = off;
        off += sl->groups[i].n;
    }

    size_t size = sizeof(sublist_result_t) + sl->ngroups * sizeof(sublist_qgroup_t) +
                  (nplain + nmembers) * sizeof(void *) + names + len + 1;
    sublist_result_t *r = xmalloc(size);
    sublist_qgroup_t *queues = (sublist_qgroup_t *)(r + 1);
    void **plain = (void **)(queues + sl->ngroups);
    void **members = plain + nplain;
    char *strings = (char *)(members + nmembers);
    *r = (sublist_result_t){.nplain = nplain,
                            .plain = nplain ? plain : NULL,
                            .nqueues = sl->ngroups,
                            .queues = sl->ngroups ? queues : NULL,
                            .refs_ = 1};
    for (size_t i = 0; i < sl->ngroups; i++) {
        scratch_group_t *g = &sl->groups[i];
        memcpy(strings, g->name, g->nlen);
        strings[g->nlen] = '\0';
        queues[i] = (sublist_qgroup_t){.name = strings, .n = 0, .items = members + g->off};
        strings += g->nlen + 1;
    }
    void **p = plain;
    for (size_t i = 0; i < sl->nmatched; i++) {
        node_t *n = sl->matched[i];
        p = pset_copy(&n->plain, p);
        for (size_t j = 0; j < n->qgroups.cap; j++) {
            qgroup_t *q = n->qgroups.slots[j].val;
            if (!q) continue;
            uintptr_t idx = (uintptr_t)smap_get(&sl->group_index, q->name, q->nlen);
            sublist_qgroup_t *g = &queues[idx - 1];
            pset_copy(&q->items, g->items + g->n);
            g->n += q->items.count;
        }
    }
    memcpy(strings, subject, len);
    strings[len] = '\0';
    *key = strings;
    return r;
}

/* ---- cache -------------------------------------------------------------------------------- */

static void cache_evict_one(sublist_t *sl)
{
    smap_t *c = &sl->cache;
    size_t mask = c->cap - 1;
    size_t i = sl->evict_cursor & mask;
    while (!c->slots[i].val)
        i = (i + 1) & mask;
    sublist_result_t *r = c->slots[i].val;
    smap_remove_at(c, i);
    result_unref(r);
    sl->evict_cursor = i + 1;
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
    smap_t *c = &sl->cache;
    if (c->count == 0) return;
    bool literal = true;
    for (size_t i = 0; i < ntoks && literal; i++)
        literal = !is_pwc(&sl->toks[i]) && !is_fwc(&sl->toks[i]);
    if (literal) {
        size_t i = smap_find(c, subject, len, hash_bytes(subject, len));
        if (!c->slots[i].val) return;
        sublist_result_t *r = c->slots[i].val;
        smap_remove_at(c, i);
        result_unref(r);
        return;
    }
    /* After a removal the slot is re-examined: backward shift may have moved an unvisited entry
     * into it. Entries moved across the wrap-around were already visited and kept. */
    for (size_t i = 0; i < c->cap;) {
        smap_slot_t *s = &c->slots[i];
        if (s->val && toks_match_literal(sl->toks, ntoks, s->key, s->klen)) {
            sublist_result_t *r = s->val;
            smap_remove_at(c, i);
            result_unref(r);
            continue;
        }
        i++;
    }
}

/* ---- public API --------------------------------------------------------------------------- */

sublist_t *sublist_new(void)
{
    return xcalloc(1, sizeof(sublist_t));
}

void sublist_free(sublist_t *sl)
{
    if (!sl) return;
    level_free(&sl->root);
    for (size_t i = 0; i < sl->cache.cap; i++)
        result_unref(sl->cache.slots[i].val);
    smap_free(&sl->cache);
    smap_free(&sl->group_index);
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
        n = wc ? *wc : smap_get(&l->nodes, t->s, t->len);
        if (!n) {
            n = node_new(t->s, t->len);
            if (wc)
                *wc = n;
            else
                smap_put(&l->nodes, n->token, n->tlen, n);
        }
        if (i + 1 < ntoks) {
            if (!n->next) n->next = xcalloc(1, sizeof(level_t));
            l = n->next;
        }
    }
    /* A duplicate can only exist when every node on the path already existed, so failing here
     * leaves nothing to prune. */
    if (queue) {
        qgroup_t *g = smap_get(&n->qgroups, queue, qlen);
        if (!g) {
            g = xcalloc(1, sizeof *g + qlen + 1);
            memcpy(g->name, queue, qlen);
            g->nlen = qlen;
            smap_put(&n->qgroups, g->name, g->nlen, g);
        }
        if (!pset_add(&g->items, item)) return STZ_EEXIST;
    } else if (!pset_add(&n->plain, item)) {
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
            smap_remove(&l->nodes, n->token, n->tlen);
        node_free(n);
        if (i == 0 || !level_empty(l)) return;
        /* Free the level's tables directly: node_free would recurse into it otherwise. */
        smap_free(&l->nodes);
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
        n = is_pwc(t) ? l->pwc : is_fwc(t) ? l->fwc : smap_get(&l->nodes, t->s, t->len);
        if (!n) return STZ_ENOENT;
        sl->path_levels[i] = l;
        sl->path_nodes[i] = n;
        l = n->next;
    }
    if (queue) {
        qgroup_t *g = smap_get(&n->qgroups, queue, qlen);
        if (!g || !pset_remove(&g->items, item)) return STZ_ENOENT;
        if (g->items.count == 0) {
            smap_remove(&n->qgroups, g->name, g->nlen);
            free(g->items.slots);
            free(g);
        }
    } else if (!pset_remove(&n->plain, item)) {
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
    uint64_t h = hash_bytes(subject, len);
    sublist_result_t *r = smap_get_h(&sl->cache, subject, len, h);
    if (r) {
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
    const char *key;
    r = build_result(sl, subject, len, &key);
    if (sl->cache.count >= CACHE_MAX) cache_evict_one(sl);
    smap_put_h(&sl->cache, key, len, h, r);
    r->refs_++; /* one for the cache, one for the caller */
    return r;
}

void sublist_get_stats(const sublist_t *sl, sublist_stats_t *out)
{
    *out = sl->stats;
    out->cache_size = sl->cache.count;
}

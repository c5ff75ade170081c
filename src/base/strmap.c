/* strmap: see strmap.h. A thin typed layer over hmap: the entries are the map's own. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void strmap_init(strmap_t *m)
{
    hmap_init(&m->map);
}

void strmap_free(strmap_t *m)
{
    size_t it;
    hmap_node_t *n = hmap_first(&m->map, &it);
    while (n) {
        hmap_node_t *next = hmap_next(&m->map, &it, n);
        strmap_entry_t *e = HMAP_ITEM(n, strmap_entry_t, node);
        free(e->key);
        free(e);
        n = next;
    }
    hmap_free(&m->map);
}

static strmap_entry_t *find(const strmap_t *m, const char *key, size_t klen, uint64_t h)
{
    for (hmap_node_t *n = hmap_first_with_hash(&m->map, h); n; n = hmap_next_with_hash(n, h)) {
        strmap_entry_t *e = HMAP_ITEM(n, strmap_entry_t, node);
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
    }
    return NULL;
}

void *strmap_get(const strmap_t *m, const char *key, size_t klen)
{
    strmap_entry_t *e = find(m, key, klen, hmap_hash_bytes(key, klen));
    return e ? e->val : NULL;
}

void *strmap_put(strmap_t *m, const char *key, size_t klen, void *val)
{
    uint64_t h = hmap_hash_bytes(key, klen);
    strmap_entry_t *e = find(m, key, klen, h);
    if (e) {
        void *old = e->val;
        e->val = val;
        return old;
    }
    e = xmalloc(sizeof *e);
    e->key = xstrndup(key, klen);
    e->klen = klen;
    e->val = val;
    hmap_insert(&m->map, &e->node, h);
    return NULL;
}

void *strmap_del(strmap_t *m, const char *key, size_t klen)
{
    strmap_entry_t *e = find(m, key, klen, hmap_hash_bytes(key, klen));
    if (!e) return NULL;
    hmap_remove(&m->map, &e->node);
    void *val = e->val;
    free(e->key);
    free(e);
    return val;
}

strmap_entry_t *strmap_first(const strmap_t *m, size_t *it)
{
    hmap_node_t *n = hmap_first(&m->map, it);
    return n ? HMAP_ITEM(n, strmap_entry_t, node) : NULL;
}

strmap_entry_t *strmap_next(const strmap_t *m, size_t *it, strmap_entry_t *e)
{
    hmap_node_t *n = hmap_next(&m->map, it, &e->node);
    return n ? HMAP_ITEM(n, strmap_entry_t, node) : NULL;
}

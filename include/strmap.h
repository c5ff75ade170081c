/* strmap: a string-keyed map of opaque pointers, built on the one hash table (hmap.h). Keys are
 * copied and owned by the map; values are not touched. Not thread-safe. For items that can embed
 * their own node (no allocation per entry), use hmap directly. */
#ifndef STANZA_STRMAP_H
#define STANZA_STRMAP_H
#include <stddef.h>

#include "hmap.h"

typedef struct strmap_entry {
    char *key;
    size_t klen;
    void *val;
    hmap_node_t node;
} strmap_entry_t;

typedef struct strmap {
    hmap_t map;
} strmap_t;

static inline size_t strmap_count(const strmap_t *m)
{
    return m->map.count;
}

void strmap_init(strmap_t *m);
void strmap_free(strmap_t *m); /* frees keys and entries, not values */
void *strmap_get(const strmap_t *m, const char *key, size_t klen);
/* Inserts or replaces; returns the previous value (or NULL). */
void *strmap_put(strmap_t *m, const char *key, size_t klen, void *val);
/* Removes; returns the value that was there (or NULL). */
void *strmap_del(strmap_t *m, const char *key, size_t klen);

/* Iteration: for (e = strmap_first(m, &i); e; e = strmap_next(m, &i, e)). Do not modify the map
 * while iterating, except deleting the current entry after having fetched the next one. */
strmap_entry_t *strmap_first(const strmap_t *m, size_t *it);
strmap_entry_t *strmap_next(const strmap_t *m, size_t *it, strmap_entry_t *e);

#endif

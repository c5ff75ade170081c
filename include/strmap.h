/* strmap: a string-keyed hash map of opaque pointers (chained, power-of-two buckets).
 * Keys are copied and owned by the map; values are not touched. Not thread-safe. */
#ifndef STANZA_STRMAP_H
#define STANZA_STRMAP_H
#include <stddef.h>

typedef struct strmap_entry {
    char *key;
    size_t klen;
    void *val;
    struct strmap_entry *next;
} strmap_entry_t;

typedef struct strmap {
    strmap_entry_t **buckets;
    size_t nbuckets;
    size_t count;
} strmap_t;

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

/* hmap: the one hash table. Intrusive and chained: a struct that lives in a map embeds an
 * hmap_node_t and the caller supplies the hash; the map never allocates or compares items, it
 * only owns its bucket array (power-of-two sized, doubled when it holds as many items as buckets).
 * A lookup walks the items of one hash and compares keys itself:
 *
 *     uint64_t h = hmap_hash_bytes(name, len);
 *     for (hmap_node_t *n = hmap_first_with_hash(&m, h); n; n = hmap_next_with_hash(n, h)) {
 *         item_t *it = HMAP_ITEM(n, item_t, node);
 *         if (it->len == len && memcmp(it->name, name, len) == 0) return it;
 *     }
 *
 * Not thread-safe. strmap.h is the string-keyed convenience map built on it. */
#ifndef STANZA_HMAP_H
#define STANZA_HMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct hmap_node {
    struct hmap_node *next;
    uint64_t hash;
} hmap_node_t;

typedef struct hmap {
    hmap_node_t **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
} hmap_t;

/* The item that embeds node n as its field `member`. */
#define HMAP_ITEM(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))

void hmap_init(hmap_t *m);
/* Frees the bucket array only: the items belong to the caller. */
void hmap_free(hmap_t *m);
/* Links n under hash h. Several items may share a hash (or a key: the caller decides). */
void hmap_insert(hmap_t *m, hmap_node_t *n, uint64_t h);
/* Unlinks n, which must be in m. */
void hmap_remove(hmap_t *m, hmap_node_t *n);
/* Inline, as hmap_hash_bytes: a lookup is on the path of every routed message (the sublist's
 * cache), where a call each would cost more than the walk. */
static inline hmap_node_t *hmap_first_with_hash(const hmap_t *m, uint64_t h)
{
    if (!m->nbuckets) return NULL;
    hmap_node_t *n = m->buckets[h & (m->nbuckets - 1)];
    while (n && n->hash != h)
        n = n->next;
    return n;
}

static inline hmap_node_t *hmap_next_with_hash(const hmap_node_t *n, uint64_t h)
{
    hmap_node_t *e = n->next;
    while (e && e->hash != h)
        e = e->next;
    return e;
}

/* Every item, in no particular order:
 *     for (n = hmap_first(m, &it); n; n = hmap_next(m, &it, n))
 * The current item may be removed after its successor has been fetched; nothing may be inserted
 * during the walk. */
hmap_node_t *hmap_first(const hmap_t *m, size_t *it);
hmap_node_t *hmap_next(const hmap_t *m, size_t *it, const hmap_node_t *n);

static inline size_t hmap_count(const hmap_t *m)
{
    return m->count;
}

/* FNV-1a: keys here are short (subjects, names, sids), where a byte loop is as fast as anything. */
static inline uint64_t hmap_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}
/* A 64-bit mix (sequences, ids), so that consecutive keys spread over the buckets. */
uint64_t hmap_hash_u64(uint64_t x);

#endif

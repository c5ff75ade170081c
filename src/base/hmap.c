/* hmap: see hmap.h. */
#include "hmap.h"

#include <stdlib.h>

#include "xalloc.h"

void hmap_init(hmap_t *m)
{
    *m = (hmap_t){.buckets = NULL}; /* zeroed memory is an empty map too */
}

void hmap_free(hmap_t *m)
{
    free(m->buckets);
    hmap_init(m);
}

static void grow(hmap_t *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 8;
    hmap_node_t **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        hmap_node_t *e = m->buckets[i];
        while (e) {
            hmap_node_t *next = e->next;
            size_t k = e->hash & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void hmap_insert(hmap_t *m, hmap_node_t *n, uint64_t h)
{
    if (m->count + 1 > m->nbuckets) grow(m);
    hmap_node_t **b = &m->buckets[h & (m->nbuckets - 1)];
    n->hash = h;
    n->next = *b;
    *b = n;
    m->count++;
}

void hmap_remove(hmap_t *m, hmap_node_t *n)
{
    hmap_node_t **pp = &m->buckets[n->hash & (m->nbuckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    if (!*pp) return;
    *pp = n->next;
    n->next = NULL;
    m->count--;
}

hmap_node_t *hmap_first(const hmap_t *m, size_t *it)
{
    for (*it = 0; *it < m->nbuckets; (*it)++)
        if (m->buckets[*it]) return m->buckets[*it];
    return NULL;
}

hmap_node_t *hmap_next(const hmap_t *m, size_t *it, const hmap_node_t *n)
{
    if (n->next) return n->next;
    for ((*it)++; *it < m->nbuckets; (*it)++)
        if (m->buckets[*it]) return m->buckets[*it];
    return NULL;
}

uint64_t hmap_hash_u64(uint64_t x)
{
    /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

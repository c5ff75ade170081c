#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static uint64_t hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

void strmap_init(strmap_t *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void strmap_free(strmap_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    strmap_init(m);
}

static strmap_entry_t **slot(const strmap_t *m, const char *key, size_t klen)
{
    strmap_entry_t **pp = &m->buckets[hash(key, klen) & (m->nbuckets - 1)];
    while (*pp && !((*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0))
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const strmap_t *m, const char *key, size_t klen)
{
    if (!m->nbuckets) return NULL;
    strmap_entry_t *e = *slot(m, key, klen);
    return e ? e->val : NULL;
}

static void grow(strmap_t *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    strmap_entry_t **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            size_t k = hash(e->key, e->klen) & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *strmap_put(strmap_t *m, const char *key, size_t klen, void *val)
{
    if (m->count + 1 > m->nbuckets) grow(m);
    strmap_entry_t **pp = slot(m, key, klen);
    if (*pp) {
        void *old = (*pp)->val;
        (*pp)->val = val;
        return old;
    }
    strmap_entry_t *e = xmalloc(sizeof *e);
    e->key = xstrndup(key, klen);
    e->klen = klen;
    e->val = val;
    e->next = NULL;
    *pp = e;
    m->count++;
    return NULL;
}

void *strmap_del(strmap_t *m, const char *key, size_t klen)
{
    if (!m->nbuckets) return NULL;
    strmap_entry_t **pp = slot(m, key, klen);
    strmap_entry_t *e = *pp;
    if (!e) return NULL;
    *pp = e->next;
    void *val = e->val;
    free(e->key);
    free(e);
    m->count--;
    return val;
}

strmap_entry_t *strmap_first(const strmap_t *m, size_t *it)
{
    for (*it = 0; *it < m->nbuckets; (*it)++)
        if (m->buckets[*it]) return m->buckets[*it];
    return NULL;
}

strmap_entry_t *strmap_next(const strmap_t *m, size_t *it, strmap_entry_t *e)
{
    if (e->next) return e->next;
    for ((*it)++; *it < m->nbuckets; (*it)++)
        if (m->buckets[*it]) return m->buckets[*it];
    return NULL;
}

/* conn_sid: a connection's subscriptions by sid, a chained hash that doubles as it fills.
 * Split from conn.c, which is about moving bytes. */
#include <stdlib.h>
#include <string.h>

#include "server_private.h"
#include "xalloc.h"

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static struct nsub **sid_slot(conn_t *c, const char *sid, size_t len)
{
    struct nsub **pp = &c->subs[hash_bytes(sid, len) & (c->nbuckets - 1)];
    while (*pp && !((*pp)->sid_len == len && memcmp((*pp)->sid, sid, len) == 0))
        pp = &(*pp)->map_next;
    return pp;
}

static void sid_grow(conn_t *c)
{
    size_t n = c->nbuckets ? c->nbuckets * 2 : 8;
    struct nsub **b = xcalloc(n, sizeof *b);
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct nsub *sub = c->subs[i];
        while (sub) {
            struct nsub *next = sub->map_next;
            size_t k = hash_bytes(sub->sid, sub->sid_len) & (n - 1);
            sub->map_next = b[k];
            b[k] = sub;
            sub = next;
        }
    }
    free(c->subs);
    c->subs = b;
    c->nbuckets = n;
}

struct nsub *conn_sid_find(conn_t *c, const char *sid, size_t len)
{
    if (!c->nbuckets) return NULL;
    return *sid_slot(c, sid, len);
}

void conn_sid_remove(conn_t *c, struct nsub *sub)
{
    struct nsub **pp = sid_slot(c, sub->sid, sub->sid_len);
    if (*pp == sub) {
        *pp = sub->map_next;
        sub->map_next = NULL;
        c->nsubs--;
    }
}

void conn_sid_insert(conn_t *c, struct nsub *sub)
{
    if (c->nsubs + 1 > c->nbuckets) sid_grow(c);
    struct nsub **slot = sid_slot(c, sub->sid, sub->sid_len);
    *slot = sub;
    c->nsubs++;
}

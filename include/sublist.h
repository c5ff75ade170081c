/* sublist: the subject trie that routes a published subject to its subscriptions.
 *
 * Items are opaque pointers owned by the caller; the sublist never frees or dereferences them.
 * An item may be inserted once per (subject, queue) pair. Matching a literal subject returns the
 * plain subscribers and, per queue group, the group's members (the caller picks one member).
 * Results are cached per subject; any insert or remove invalidates the cache.
 *
 * Lifetime: sublist_match returns a result holding a reference. It stays valid (and unchanged)
 * after later inserts/removes until the caller calls sublist_result_release. The item pointers in
 * it may have been removed meanwhile: callers that free items during a delivery must defer the
 * free (the server does: see server.c's graveyard). Not thread-safe: one loop owns it. */
#ifndef STANZA_SUBLIST_H
#define STANZA_SUBLIST_H
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct sublist sublist_t;

typedef struct sublist_qgroup {
    const char *name; /* queue name, NUL-terminated, owned by the result */
    size_t n;         /* members; >= 1 */
    void **items;
} sublist_qgroup_t;

typedef struct sublist_result {
    size_t nplain;
    void **plain;
    size_t nqueues;
    sublist_qgroup_t *queues;
    unsigned refs_; /* private */
} sublist_result_t;

typedef struct sublist_stats {
    size_t subs;       /* items inserted */
    size_t cache_size; /* cached results */
    uint64_t matches;  /* sublist_match calls */
    uint64_t cache_hits;
} sublist_stats_t;

sublist_t *sublist_new(void);
void sublist_free(sublist_t *sl); /* items are not touched; outstanding results stay valid */

/* queue may be NULL (qlen ignored) for a plain subscription. Returns 0, STZ_EINVAL for an
 * invalid subject or queue, STZ_EEXIST if already present; sublist_remove STZ_ENOENT if absent. */
int sublist_insert(sublist_t *sl, const char *subject, size_t len, const char *queue, size_t qlen,
                   void *item);
int sublist_remove(sublist_t *sl, const char *subject, size_t len, const char *queue, size_t qlen,
                   void *item);

/* Returns NULL when subject is not a valid subject (empty tokens, whitespace). A subject with
 * '*' or '>' tokens is matched as nats-server does without pedantic mode: those tokens match
 * only wildcard subscriptions. Never returns NULL for a valid subject (an empty result when
 * nothing matches). Callers wanting pedantic checks validate with subject_valid_literal. */
sublist_result_t *sublist_match(sublist_t *sl, const char *subject, size_t len);
void sublist_result_release(sublist_result_t *r);

void sublist_get_stats(const sublist_t *sl, sublist_stats_t *out);

#endif

/* sort: qsort for arrays that may be empty.
 *
 * An empty growable array is usually NULL, and qsort's base is declared nonnull even for a count
 * of 0: passing it is undefined behaviour (the sanitized build aborts on it). Every sort of a
 * list built at run time goes through sort_array, which skips what needs no sorting. Header only,
 * so that the daemon and the CLI (which does not link the core) share it. */
#ifndef STANZA_SORT_H
#define STANZA_SORT_H
#include <stddef.h>
#include <stdlib.h>

/* qsort(base, n, size, cmp), except that base may be NULL when n is 0 (or 1). */
static inline void sort_array(void *base, size_t n, size_t size,
                              int (*cmp)(const void *, const void *))
{
    if (n < 2 || !base) return;
    qsort(base, n, size, cmp);
}

#endif

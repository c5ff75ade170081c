#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* Not through log: logging may itself allocate. */
    fprintf(stderr, "stanza: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xmemdup0(const void *src, size_t n)
{
    char *p = xmalloc(n + 1);
    if (n) memcpy(p, src, n); /* src may be NULL when n is 0: memcpy from NULL is undefined */
    p[n] = '\0';
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    return xmemdup0(s, n);
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

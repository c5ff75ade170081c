/* xalloc: allocation that never returns NULL.
 * Policy (as redis and h2o): running out of memory on a small allocation is fatal; the process
 * logs and aborts rather than carrying half-built state. Callers therefore never check for NULL. */
#ifndef STANZA_XALLOC_H
#define STANZA_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A NUL-terminated copy of n bytes. src may be NULL when n is 0, as protobuf-c leaves an absent
 * bytes field: every field a request carries is copied through this. */
char *xmemdup0(const void *src, size_t n);

#endif

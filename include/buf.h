/* buf: a growable byte buffer. The struct is public so it can be embedded; fields are read-only
 * outside buf.c except through the functions below. */
#ifndef STANZA_BUF_H
#define STANZA_BUF_H
#include <stddef.h>
#include <stdarg.h>

typedef struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);                  /* releases data; b may be reused after buf_init */
void buf_reserve(buf_t *b, size_t extra); /* ensures cap >= len + extra */
/* Like buf_reserve, but returns STZ_ENOMEM (b unchanged) when memory runs out instead of
 * aborting: for buffers whose growth a peer drives, where dropping that peer is the answer. 0 on
 * success. */
int buf_try_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf_t *b); /* len = 0, keeps the allocation */
/* Releases the allocation if it grew beyond keep bytes, so one burst does not pin memory. */
void buf_shrink(buf_t *b, size_t keep);
/* Appends the decimal form of v; the fast path for protocol lines. */
void buf_append_u64(buf_t *b, unsigned long long v);

#endif

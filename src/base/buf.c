#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

void buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b);
}

/* The capacity to grow to for want bytes: doubling, or exactly want where doubling overflows. */
static size_t grown_cap(size_t cap, size_t want)
{
    if (cap == 0) cap = 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2) return want;
        cap *= 2;
    }
    return cap;
}

void buf_reserve(buf_t *b, size_t extra)
{
    size_t want = b->len + extra;
    if (want <= b->cap) return;
    size_t cap = grown_cap(b->cap, want);
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

int buf_try_reserve(buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len) return STZ_ENOMEM;
    size_t want = b->len + extra;
    if (want <= b->cap) return 0;
    size_t cap = grown_cap(b->cap, want);
    char *p = realloc(b->data, cap);
    if (!p) return STZ_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0) return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_append_str(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        buf_append(b, tmp, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
}

void buf_shrink(buf_t *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) buf_free(b);
}

void buf_append_u64(buf_t *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof tmp - i);
}

/* httpd_query: query strings of requests (httpd_query_get, httpd_query_has). See httpd.h.
 * Keys and values are percent-decoded ('+' is a space); nothing here allocates. */
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "httpd.h"

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out (at most outlen bytes, no terminator). Returns the decoded length,
 * STZ_E2BIG when it does not fit, or STZ_EINVAL when it holds a NUL. A '%' not followed by two
 * hex digits stays as is. */
static long decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (ch == '\0') return STZ_EINVAL;
        if (o >= outlen) return STZ_E2BIG;
        out[o++] = ch;
    }
    return (long)o;
}

/* Finds the first key=value pair whose decoded key is key. Returns false when there is none;
 * else *val is the raw value (NULL for a key without '=') and *vlen its length. */
static bool query_find(const httpd_req_t *req, const char *key, const char **val, size_t *vlen)
{
    if (!req->query) return false;
    size_t klen = strlen(key);
    const char *q = req->query, *end = req->query + req->query_len;
    char kbuf[256];
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pend - q));
        const char *kend = eq ? eq : pend;
        long kl = decode(q, (size_t)(kend - q), kbuf, sizeof kbuf);
        if (kl >= 0 && (size_t)kl == klen && memcmp(kbuf, key, klen) == 0) {
            *val = eq ? eq + 1 : NULL;
            *vlen = eq ? (size_t)(pend - eq - 1) : 0;
            return true;
        }
        if (!amp) break;
        q = amp + 1;
    }
    return false;
}

bool httpd_query_has(const httpd_req_t *req, const char *key)
{
    const char *val;
    size_t vlen;
    return query_find(req, key, &val, &vlen);
}

bool httpd_query_get(const httpd_req_t *req, const char *key, char *out, size_t outlen)
{
    const char *val;
    size_t vlen;
    if (outlen == 0 || !query_find(req, key, &val, &vlen)) return false;
    long n = val ? decode(val, vlen, out, outlen - 1) : 0;
    if (n < 0) return false;
    out[n] = '\0';
    return true;
}

/* http_head: reading an HTTP response head in tests (the unit tests of httpd and the integration
 * tests of the monitoring port share it). */
#ifndef STANZA_TEST_HTTP_HEAD_H
#define STANZA_TEST_HTTP_HEAD_H
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The value of header name in head (the status line and header lines, "\r\n"-separated), into
 * out: "" when the header is absent. false when the value does not fit in outlen. */
static inline bool http_head_value(const char *head, const char *name, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strcasestr(head, pat);
    size_t n = 0;
    if (p) {
        p += strlen(pat);
        n = strcspn(p, "\r");
    }
    if (n >= outlen) return false;
    if (n) memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

#endif

/* config_url: the NATS URLs the settings take (routes, --cluster, -ns), parsed and checked
 * where they are read. At the bottom of the config layer: it calls nothing of it but the error
 * formatting. */
#include "config.h"
#include "config_private.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ROUTE_DEFAULT_PORT 6222

/* Skips a scheme nats-server accepts for a route. */
static size_t scheme_len(const char *u, size_t n)
{
    static const char *const schemes[] = {"nats://", "nats-route://", "route://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t l = strlen(schemes[i]);
        if (n >= l && strncasecmp(u, schemes[i], l) == 0) return l;
    }
    return 0;
}

static int parse_port(const char *p, const char *end, int *port)
{
    long v = 0;
    if (p == end) return STZ_EINVAL;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return STZ_EINVAL;
        v = v * 10 + (*p - '0');
        if (v > 65535) return STZ_EINVAL;
    }
    if (v == 0) return STZ_EINVAL;
    *port = (int)v;
    return 0;
}

/* Bytes from a to b; 0 when b is not past a. */
static size_t span(const char *a, const char *b)
{
    return b > a ? (size_t)(b - a) : 0;
}

int config_parse_route_url(const char *url, size_t len, char *host, size_t hostlen, int *port)
{
    const char *u = url, *end = url + len;
    while (u < end && (*u == ' ' || *u == '\t'))
        u++;
    while (end > u && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '/'))
        end--;
    u += scheme_len(u, span(u, end));
    const char *at = memchr(u, '@', span(u, end));
    if (at) u = at + 1;
    const char *hs = u, *he, *colon;
    if (u < end && *u == '[') { /* [v6]:port */
        hs = u + 1;
        he = memchr(hs, ']', span(hs, end));
        if (!he) return STZ_EINVAL;
        colon = he + 1 < end ? he + 1 : NULL;
        if (colon && *colon != ':') return STZ_EINVAL;
    } else {
        colon = memchr(u, ':', span(u, end));
        he = colon ? colon : end;
    }
    if (he == hs || (size_t)(he - hs) >= hostlen) return STZ_EINVAL;
    for (const char *p = hs; p < he; p++)
        if (*p == '/' || *p == ' ' || *p == '\t' || *p == '@' || *p == ',') return STZ_EINVAL;
    *port = ROUTE_DEFAULT_PORT;
    if (colon && parse_port(colon + 1, end, port) != 0) return STZ_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    return 0;
}

int config_check_url_list(const char *list, bool tls_ok, char *why, size_t len)
{
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        /* tls:// (-ns only) asks for TLS; the rest of the form is a route URL's. */
        size_t skip = tls_ok && n >= 6 && strncasecmp(p, "tls://", 6) == 0 ? 6 : 0;
        char host[256], shown[128], printable[128];
        int port;
        if (config_parse_route_url(p + skip, n - skip, host, sizeof host, &port) != 0) {
            snprintf(shown, sizeof shown, "%.*s", (int)(n < 100 ? n : 100), p);
            return config_failf(why, len, "\"%s\" is not a %s",
                                config_printable(printable, sizeof printable, shown),
                                tls_ok ? "NATS URL (nats://HOST:PORT, tls://HOST:PORT)"
                                       : "route URL (nats://host:port, comma-separated)");
        }
        if (!comma) return 0;
        p = comma + 1;
    }
}

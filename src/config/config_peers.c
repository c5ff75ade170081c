/* config_peers: the values of clustered mode's settings that have a form of their own: a node ID
 * (it becomes part of NATS subjects and file names, so it is kept to a safe alphabet), a Raft
 * address HOST:PORT, and the peer list "ID[@HOST:PORT],...". At the bottom of the config layer
 * with config_url.c: it calls nothing of it but the error formatting. */
#include "config.h"
#include "config_private.h"

#include "buf.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_NAME_MAX_LEN 253 /* a DNS name's longest text form */
#define NODE_ID_FORM "1 to 64 characters of A-Z, a-z, 0-9, _ and -"
#define ADDR_FORM "HOST:PORT (a host name, an IPv4 address or [IPv6])"

bool config_node_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > CONFIG_NODE_ID_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* A host name or IPv4 address as written: letters, digits, '.', '-', '_'. All digits and dots
 * must be a real IPv4 address (999.1.1.1 would otherwise be looked up as a name). */
static bool host_name_valid(const char *s, size_t len)
{
    bool numeric = true;
    if (len == 0 || len > HOST_NAME_MAX_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool digit = c >= '0' && c <= '9';
        if (!digit && c != '.' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '-' &&
            c != '_')
            return false;
        numeric = numeric && (digit || c == '.');
    }
    if (!numeric) return true;
    char text[HOST_NAME_MAX_LEN + 1];
    struct in_addr a;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET, text, &a) == 1;
}

static bool ipv6_valid(const char *s, size_t len)
{
    char text[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (len == 0 || len >= sizeof text) return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET6, text, &a) == 1;
}

/* Decimal 0..65535, at least one digit, nothing else. */
static int parse_port(const char *p, const char *end, int *port)
{
    long v = 0;
    if (p == end || end - p > 5) return STZ_EINVAL;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return STZ_EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) return STZ_EINVAL;
    *port = (int)v;
    return 0;
}

int config_parse_host_port(const char *s, size_t len, char *host, size_t hostlen, int *port)
{
    const char *end = s + len, *hs = s, *he, *colon;
    if (len > 0 && *s == '[') { /* [v6]:port */
        hs = s + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he || !ipv6_valid(hs, (size_t)(he - hs))) return STZ_EINVAL;
        colon = he + 1;
        if (colon >= end || *colon != ':') return STZ_EINVAL;
    } else {
        colon = memchr(s, ':', len);
        if (!colon) return STZ_EINVAL;
        he = colon;
        if (!host_name_valid(hs, (size_t)(he - hs))) return STZ_EINVAL;
    }
    if ((size_t)(he - hs) >= hostlen || parse_port(colon + 1, end, port) != 0) return STZ_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    return 0;
}

int config_parse_peer(const char *s, size_t len, char id[CONFIG_NODE_ID_MAX + 1], char *host,
                      size_t hostlen, int *port)
{
    const char *at = memchr(s, '@', len);
    size_t idlen = at ? (size_t)(at - s) : len;
    if (!config_node_id_valid(s, idlen)) return STZ_EINVAL;
    int p = 0;
    if (at) {
        size_t alen = len - idlen - 1;
        if (config_parse_host_port(at + 1, alen, host, hostlen, &p) != 0 || p == 0)
            return STZ_EINVAL;
    } else if (hostlen > 0) {
        host[0] = '\0';
    }
    memcpy(id, s, idlen);
    id[idlen] = '\0';
    *port = p;
    return 0;
}

/* ---- the settings' checks (config_set, config_validate) ---- */

/* Quotes the first bytes of s[0..len) for a message. */
static const char *quote(char *out, size_t outlen, const char *s, size_t len)
{
    char cut[128];
    snprintf(cut, sizeof cut, "%.*s", (int)(len < 100 ? len : 100), s);
    return config_printable(out, outlen, cut);
}

int config_check_node_id(const char *s, char *why, size_t len)
{
    if (config_node_id_valid(s, strlen(s))) return 0;
    return config_failf(why, len, "a node ID must be %s (it names NATS subjects and files)",
                        NODE_ID_FORM);
}

int config_check_raft_listen(const char *s, char *why, size_t len)
{
    char host[HOST_NAME_MAX_LEN + 1];
    int port;
    if (config_parse_host_port(s, strlen(s), host, sizeof host, &port) == 0) return 0;
    return config_failf(why, len, "must be %s with PORT 0 to 65535 (0: any free port)", ADDR_FORM);
}

/* Why one peer entry is bad (it is: config_parse_peer refused it). */
static int peer_fail(const char *e, size_t n, char *why, size_t len)
{
    char shown[128];
    const char *at = memchr(e, '@', n);
    quote(shown, sizeof shown, e, n);
    if (n == 0) return config_failf(why, len, "empty entry (IDs are separated by one comma)");
    if (!at || !config_node_id_valid(e, (size_t)(at - e)))
        return config_failf(why, len, "\"%s\": a node ID must be %s, optionally followed by @%s",
                            shown, NODE_ID_FORM, ADDR_FORM);
    return config_failf(why, len, "\"%s\": the address must be %s with PORT 1 to 65535", shown,
                        ADDR_FORM);
}

static size_t trimmed(const char **s, size_t n)
{
    while (n > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, n--;
    while (n > 0 && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
        n--;
    return n;
}

/* Each entry checked, at most CONFIG_PEERS_MAX, no ID twice; the entries without blanks around
 * them, joined with commas, into out. */
static int peers_check(const char *list, buf_t *out, char *why, size_t len)
{
    char ids[CONFIG_PEERS_MAX][CONFIG_NODE_ID_MAX + 1], host[HOST_NAME_MAX_LEN + 1];
    size_t n = 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        const char *e = p;
        size_t elen = trimmed(&e, comma ? (size_t)(comma - p) : strlen(p));
        int port;
        if (n == CONFIG_PEERS_MAX)
            return config_failf(why, len, "at most %d peers", CONFIG_PEERS_MAX);
        if (config_parse_peer(e, elen, ids[n], host, sizeof host, &port) != 0)
            return peer_fail(e, elen, why, len);
        for (size_t i = 0; i < n; i++)
            if (strcmp(ids[i], ids[n]) == 0)
                return config_failf(why, len, "node ID \"%s\" is listed twice", ids[n]);
        n++;
        if (out->len) buf_append(out, ",", 1);
        buf_append(out, e, elen);
        if (!comma) return 0;
        p = comma + 1;
    }
}

int config_peers_normalize(const char *list, char **out, char *why, size_t len)
{
    buf_t b;
    buf_init(&b);
    int rc = peers_check(list, &b, why, len);
    *out = rc == 0 && b.len ? xstrndup(b.data, b.len) : NULL;
    buf_free(&b);
    return rc;
}

int config_check_peers(const char *list, char *why, size_t len)
{
    char *norm;
    int rc = config_peers_normalize(list, &norm, why, len);
    free(norm);
    return rc;
}

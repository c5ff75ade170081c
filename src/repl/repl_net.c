/* repl_net: how Raft servers find each other.
 *
 * libraft's configuration names each server by its node ID (the "address" libraft stores is the
 * ID itself), so the configuration never changes when a node comes back on another port. The
 * transport libraft holds (outer) maps an ID to "a.b.c.d:port" when it connects, and hands the
 * connection to libraft's own TCP transport (inner). Addresses come from --cluster_peers
 * (ID@HOST:PORT, fixed) or from the nodes' announcements on _STZ.raft.<cluster id>.nodes, which
 * every node publishes each second: "ID a.b.c.d:port". A connect to an ID with no address yet
 * fails at once, and libraft tries again a moment later.
 *
 * The leader also publishes its commit index each second on _STZ.raft.<cluster id>.commit, "ID
 * TERM INDEX": a follower's own commit index only reaches what it has received, so a follower
 * catching up learns here how far it has to go (repl_status, for readiness probes). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "repl_private.h"
#include "xalloc.h"

#define ANNOUNCE_MS 1000

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return STZ_ECONFIG;
}

/* An IPv4 address for host ("localhost" is 127.0.0.1): libraft's transport dials IPv4 only. */
static bool ipv4_of(const char *host, char ip[INET_ADDRSTRLEN])
{
    struct in_addr a;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a) != 1) return false;
    inet_ntop(AF_INET, &a, ip, INET_ADDRSTRLEN);
    return true;
}

/* "IPV4:PORT" (PORT 1..65535, or 0 when port0_ok) into ip and port. */
static bool parse_hostport(const char *s, size_t len, bool port0_ok, char ip[INET_ADDRSTRLEN],
                           int *port)
{
    char host[256];
    if (config_parse_host_port(s, len, host, sizeof host, port) != 0) return false;
    return (port0_ok || *port > 0) && ipv4_of(host, ip);
}

size_t repl_peers(const repl_t *r, repl_peer_t out[CONFIG_PEERS_MAX])
{
    size_t n = 0;
    const char *p = r->cfg->cluster_peers;
    while (p && *p && n < CONFIG_PEERS_MAX) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        repl_peer_t *e = &out[n];
        if (config_parse_peer(p, len, e->id, e->host, sizeof e->host, &e->port) == 0) n++;
        p = end ? end + 1 : NULL;
    }
    return n;
}

/* A port nobody uses now on ip (the transport binds it right after). */
static int free_port(const char *ip)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void set_addr(repl_t *r, const char *id, size_t idlen, const char *addr)
{
    char *old = strmap_put(&r->addrs, id, idlen, xstrdup(addr));
    free(old);
}

/* ---- the transport libraft holds ---- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    repl_t *r = t->impl;
    return r->inner.init(&r->inner, id, address);
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    repl_t *r = t->impl;
    r->inner.data = t->data; /* libraft's accept callback finds its state there */
    return r->inner.listen(&r->inner, cb);
}

/* A connect libraft asked for, passed to the inner transport under our own request. */
struct connecting {
    struct raft_uv_connect req; /* ours, to the inner transport */
    struct raft_uv_connect *outer_req;
    raft_uv_connect_cb outer_cb;
};

/* Log entries go out on the connections this node makes: a send buffer that holds a whole batch
 * lets the kernel take an entry in one write, instead of a part per loop iteration while the
 * loop is busy with clients (TCP's autotuning starts small and grows slowly). */
#define SEND_BUFFER (4 << 20)

static void on_connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    struct connecting *c = req->data;
    if (status == 0 && stream) {
        int size = SEND_BUFFER;
        uv_send_buffer_size((uv_handle_t *)stream, &size); /* best effort: the kernel caps it */
    }
    c->outer_cb(c->outer_req, stream, status);
    free(c);
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    repl_t *r = t->impl;
    const char *to = strmap_get(&r->addrs, address, strlen(address));
    if (!to) return RAFT_NOCONNECTION; /* not announced yet: libraft retries */
    r->inner.data = t->data;
    struct connecting *c = xmalloc(sizeof *c);
    c->req.data = c;
    c->outer_req = req;
    c->outer_cb = cb;
    int rc = r->inner.connect(&r->inner, &c->req, id, to, on_connected);
    if (rc != 0) free(c);
    return rc;
}

static void inner_closed(struct raft_uv_transport *inner)
{
    repl_t *r = (repl_t *)(void *)((char *)inner - offsetof(repl_t, inner));
    r->outer_close_cb(&r->outer); /* its memory is released by repl_net_free */
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    repl_t *r = t->impl;
    r->outer_close_cb = cb;
    r->inner.close(&r->inner, inner_closed);
}

/* ---- announcements ---- */

static void announce(repl_t *r)
{
    char text[REPL_ID_MAX + REPL_ADDR_MAX + 2];
    int n = snprintf(text, sizeof text, "%s %s", r->node_id, r->raft_addr);
    bus_msg_t m = {.subject = r->nodes_subject,
                   .subject_len = strlen(r->nodes_subject),
                   .data = text,
                   .data_len = (size_t)n};
    if (bus_publish(&r->bus, &m) == 0) r->announces++;
}

static void announce_commit(repl_t *r)
{
    if (raft_state(&r->raft) != RAFT_LEADER) return;
    char text[REPL_ID_MAX + 48];
    int n = snprintf(text, sizeof text, "%s %llu %llu", r->node_id,
                     (unsigned long long)r->raft.current_term,
                     (unsigned long long)r->raft.commit_index);
    bus_msg_t m = {.subject = r->commit_subject,
                   .subject_len = strlen(r->commit_subject),
                   .data = text,
                   .data_len = (size_t)n};
    bus_publish(&r->bus, &m);
}

static void on_announce_timer(uv_timer_t *t)
{
    announce(t->data);
    announce_commit(t->data);
}

/* "ID TERM INDEX" from the node this one knows as the leader; anything else is ignored. */
static void on_commit(void *arg, const bus_msg_t *m)
{
    repl_t *r = arg;
    char text[REPL_ID_MAX + 48], id[REPL_ID_MAX + 1];
    if (m->data_len >= sizeof text) return;
    memcpy(text, m->data, m->data_len);
    text[m->data_len] = '\0';
    unsigned long long term, index;
    char tail;
    _Static_assert(REPL_ID_MAX == 64, "the %64s below reads an ID of REPL_ID_MAX bytes");
    if (sscanf(text, "%64s %llu %llu%c", id, &term, &index, &tail) != 3) return;
    if (strcmp(id, r->leader) != 0) return;
    r->heard_term = term;
    r->heard_commit = index;
}

/* "ID a.b.c.d:port" from another node. Anything else is ignored (logged once per kind at debug:
 * the subject is ours, but any NATS client may publish on it). */
static void on_nodes(void *arg, const bus_msg_t *m)
{
    repl_t *r = arg;
    const char *sp = memchr(m->data, ' ', m->data_len);
    if (!sp) return;
    size_t idlen = (size_t)(sp - (const char *)m->data);
    const char *a = sp + 1;
    size_t alen = m->data_len - idlen - 1;
    char ip[INET_ADDRSTRLEN];
    int port;
    if (!config_node_id_valid(m->data, idlen) || !parse_hostport(a, alen, false, ip, &port)) {
        LOG_D("raft: ignored a malformed announcement on %s", r->nodes_subject);
        return;
    }
    if (idlen == strlen(r->node_id) && memcmp(m->data, r->node_id, idlen) == 0) return;
    if (strmap_get(&r->fixed, m->data, idlen)) return;
    char addr[REPL_ADDR_MAX];
    snprintf(addr, sizeof addr, "%s:%d", ip, port);
    const char *known = strmap_get(&r->addrs, m->data, idlen);
    if (known && strcmp(known, addr) == 0) return;
    LOG_I("raft: node %.*s is at %s", (int)idlen, (const char *)m->data, addr);
    set_addr(r, m->data, idlen, addr);
    /* A node we had not heard from (or that moved) may not know us either. */
    announce(r);
}

/* ---- set-up ---- */

/* The address other machines reach this one at when the client host is a wildcard: the first
 * IPv4 address of a non-loopback interface (as the NATS side's connect_urls), else 127.0.0.1. */
static void wildcard_ipv4(char ip[INET_ADDRSTRLEN])
{
    snprintf(ip, INET_ADDRSTRLEN, "127.0.0.1");
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    if (uv_interface_addresses(&ifs, &n) != 0) return;
    for (int i = 0; i < n; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
        inet_ntop(AF_INET, &ifs[i].address.address4.sin_addr, ip, INET_ADDRSTRLEN);
        break;
    }
    uv_free_interface_addresses(ifs, n);
}

static int own_address(repl_t *r, char *err, size_t errlen)
{
    const char *listen = r->cfg->cluster_raft_listen;
    char ip[INET_ADDRSTRLEN];
    int port = 0;
    if (listen) {
        if (!parse_hostport(listen, strlen(listen), true, ip, &port))
            return fail(err, errlen,
                        "cluster raft listen (--cluster_raft_listen) %s: need IPV4:PORT "
                        "(libraft's transport speaks IPv4 only)",
                        listen);
    } else {
        const char *host = r->cfg->host;
        if (!host || !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            wildcard_ipv4(ip);
        else if (!ipv4_of(host, ip))
            return fail(err, errlen,
                        "raft: cannot listen on %s (not an IPv4 address): give "
                        "--cluster_raft_listen",
                        host);
    }
    if (port == 0) port = free_port(ip);
    if (port <= 0) return fail(err, errlen, "raft: no free port on %s", ip);
    snprintf(r->raft_addr, sizeof r->raft_addr, "%s:%d", ip, port);
    return 0;
}

/* --cluster_peers entries ID@HOST:PORT: fixed addresses. */
static int fixed_peers(repl_t *r, char *err, size_t errlen)
{
    repl_peer_t peers[CONFIG_PEERS_MAX];
    size_t n = repl_peers(r, peers);
    for (size_t i = 0; i < n; i++) {
        if (!peers[i].host[0]) continue;
        char ip[INET_ADDRSTRLEN], addr[REPL_ADDR_MAX];
        if (!ipv4_of(peers[i].host, ip))
            return fail(err, errlen,
                        "cluster peer %s: %s is not an IPv4 address (libraft's "
                        "transport dials IPv4 only; leave the address out to learn it over NATS)",
                        peers[i].id, peers[i].host);
        snprintf(addr, sizeof addr, "%s:%d", ip, peers[i].port);
        set_addr(r, peers[i].id, strlen(peers[i].id), addr);
        strmap_put(&r->fixed, peers[i].id, strlen(peers[i].id), r);
    }
    return 0;
}

int repl_net_init(repl_t *r, char *err, size_t errlen)
{
    strmap_init(&r->addrs);
    strmap_init(&r->fixed);
    int rc = own_address(r, err, errlen);
    if (rc == 0) rc = fixed_peers(r, err, errlen);
    if (rc) return rc;
    if (raft_uv_tcp_init(&r->inner, r->loop) != 0)
        return fail(err, errlen, "raft: cannot set up the TCP transport");
    r->inner_inited = true;
    if (raft_uv_tcp_set_bind_address(&r->inner, r->raft_addr) != 0)
        return fail(err, errlen, "raft: cannot bind the transport to %s", r->raft_addr);
    memset(&r->outer, 0, sizeof r->outer);
    r->outer.impl = r;
    r->outer.init = t_init;
    r->outer.listen = t_listen;
    r->outer.connect = t_connect;
    r->outer.close = t_close;
    r->nodes_subject = repl_subject(r, "_STZ.raft", "nodes");
    r->commit_subject = repl_subject(r, "_STZ.raft", "commit");
    return 0;
}

int repl_net_start(repl_t *r, char *err, size_t errlen)
{
    r->nodes_sub = bus_subscribe(&r->bus, r->nodes_subject, NULL, 0, on_nodes, r);
    if (!r->nodes_sub) return fail(err, errlen, "raft: cannot subscribe to %s", r->nodes_subject);
    r->commit_sub = bus_subscribe(&r->bus, r->commit_subject, NULL, 0, on_commit, r);
    if (!r->commit_sub) return fail(err, errlen, "raft: cannot subscribe to %s", r->commit_subject);
    uv_timer_init(r->loop, &r->announce);
    r->announce.data = r;
    uv_timer_start(&r->announce, on_announce_timer, 0, ANNOUNCE_MS);
    r->announce_started = true;
    return 0;
}

void repl_net_stop(repl_t *r)
{
    if (r->nodes_sub) bus_unsubscribe(&r->bus, r->nodes_sub);
    r->nodes_sub = NULL;
    if (r->commit_sub) bus_unsubscribe(&r->bus, r->commit_sub);
    r->commit_sub = NULL;
    if (r->announce_started) {
        uv_timer_stop(&r->announce);
        uv_close((uv_handle_t *)&r->announce, NULL);
        r->announce_started = false;
    }
}

const char *repl_net_address(const repl_t *r, const char *node_id)
{
    const char *a = strmap_get(&r->addrs, node_id, strlen(node_id));
    return a ? a : "";
}

void repl_net_free(repl_t *r)
{
    size_t it;
    for (strmap_entry_t *e = strmap_first(&r->addrs, &it); e; e = strmap_next(&r->addrs, &it, e))
        free(e->val);
    strmap_free(&r->addrs);
    strmap_free(&r->fixed);
    if (r->inner_inited) raft_uv_tcp_close(&r->inner);
    r->inner_inited = false;
    free(r->nodes_subject);
    free(r->commit_subject);
}

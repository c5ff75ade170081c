/* cluster: the routes' life on the loop: the cluster listener (--cluster), the routes this
 * server connects to (solicitors), and their reconnection. Above conn.c, which runs each route
 * connection (cluster_route.c speaks its protocol); a closing route comes back here through
 * cluster->route_closed, a server learned by gossip through cluster->route_learned.
 *
 * A configured route (--routes) is retried forever, 100 ms after a failure doubling up to a
 * second (plus jitter, so two servers soliciting each other do not collide in step), except
 * when it led to ourselves (dropped for good, as nats-server does) or to a server we already
 * have a route to (it waits until that route closes). A route learned by gossip gets a few
 * attempts; after that the server it names has to come to us, which its own configuration
 * makes it do. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_private.h"
#include "xalloc.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000
#define RETRY_JITTER_MS 100
#define IMPLICIT_ATTEMPTS 3

enum sol_state {
    SOL_WAITING,    /* its timer runs: connect when it fires */
    SOL_CONNECTING, /* its name is being resolved, or a connection is open or opening */
    SOL_PARKED,     /* it led to a server we have a route to: waits for that route to close */
    SOL_DONE,       /* it led to ourselves, or a learned route ran out of attempts */
};

struct solicit {
    list_node_t link; /* cluster->solicits */
    server_t *srv;
    char url[256];
    char host[256];
    int port;
    bool implicit; /* learned by gossip */
    int failures;  /* in a row */
    enum sol_state state;
    char remote_id[64]; /* the server it led to, once known */
    uv_timer_t timer;
    uv_getaddrinfo_t gai; /* its name's lookup, on the thread pool */
    bool resolving;       /* gai in flight: cancelled at shutdown, the loop waits for it */
};

static void on_route_closed(server_t *s, route_t *r);
static void on_route_learned(server_t *s, const char *id, const char *url);

cluster_t *cluster_new(server_t *s)
{
    cluster_t *cl = xcalloc(1, sizeof *cl);
    list_init(&cl->routes);
    list_init(&cl->solicits);
    hmap_init(&cl->local);
    const char *name = s->cfg->cluster_name;
    /* Without a configured name, a made-up one that a peer's replaces (nats-server's way). */
    snprintf(cl->name, sizeof cl->name, "%s", name ? name : s->id);
    cl->name_dynamic = name == NULL;
    cl->route_closed = on_route_closed;
    cl->route_learned = on_route_learned;
    return cl;
}

/* ---- soliciting ------------------------------------------------------------------------- */

/* An address, from an IP literal or a name resolved now (libuv's synchronous form: only for the
 * listen address, at start-up; routes' names are looked up on the thread pool, connect_now). */
static int resolve(uv_loop_t *loop, const char *host, int port_no, struct sockaddr_storage *out)
{
    if (uv_ip4_addr(host, port_no, (struct sockaddr_in *)out) == 0) return 0;
    if (uv_ip6_addr(host, port_no, (struct sockaddr_in6 *)out) == 0) return 0;
    uv_getaddrinfo_t req;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[16];
    snprintf(port, sizeof port, "%d", port_no);
    int rc = uv_getaddrinfo(loop, &req, NULL, host, port, &hints);
    if (rc != 0) return rc;
    memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

static void connect_now(struct solicit *sol);

static void on_sol_timer(uv_timer_t *t)
{
    connect_now(t->data);
}

static void schedule(struct solicit *sol, uint64_t delay_ms)
{
    sol->state = SOL_WAITING;
    uv_timer_start(&sol->timer, on_sol_timer, delay_ms, 0);
}

/* After failures in a row: 100 ms doubling up to 1 s, plus up to 100 ms of jitter. */
static uint64_t backoff_ms(struct solicit *sol)
{
    uint64_t d = RETRY_MIN_MS;
    for (int i = 1; i < sol->failures && d < RETRY_MAX_MS; i++)
        d *= 2;
    if (d > RETRY_MAX_MS) d = RETRY_MAX_MS;
    return d + server_rng_next(sol->srv) % RETRY_JITTER_MS;
}

static void retry(struct solicit *sol, int rc)
{
    LOG_D("route %s: %s", sol->url, uv_strerror(rc));
    sol->failures++;
    schedule(sol, backoff_ms(sol));
}

static void connect_to(struct solicit *sol, const struct sockaddr *addr)
{
    LOG_D("connecting to route %s", sol->url);
    sol->state = SOL_CONNECTING;
    int rc = conn_connect_route(sol->srv, addr, sol);
    if (rc != 0) retry(sol, rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct solicit *sol = req->data;
    sol->resolving = false;
    if (!sol->srv->shutting_down) {
        if (status == 0)
            connect_to(sol, res->ai_addr);
        else
            retry(sol, status);
    }
    uv_freeaddrinfo(res);
}

/* A name is looked up on the thread pool (a slow resolver never stalls the loop); an IP literal
 * connects at once. */
static void connect_now(struct solicit *sol)
{
    server_t *s = sol->srv;
    if (s->shutting_down) return;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(sol->host, sol->port, (struct sockaddr_in *)&addr) == 0 ||
        uv_ip6_addr(sol->host, sol->port, (struct sockaddr_in6 *)&addr) == 0) {
        connect_to(sol, (const struct sockaddr *)&addr);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[16];
    snprintf(port, sizeof port, "%d", sol->port);
    sol->gai.data = sol;
    sol->state = SOL_CONNECTING;
    int rc = uv_getaddrinfo(s->loop, &sol->gai, on_resolved, sol->host, port, &hints);
    if (rc != 0)
        retry(sol, rc);
    else
        sol->resolving = true;
}

static struct solicit *solicit_new(server_t *s, const char *url, size_t len, bool implicit)
{
    struct solicit *sol = xcalloc(1, sizeof *sol);
    sol->srv = s;
    sol->implicit = implicit;
    snprintf(sol->url, sizeof sol->url, "%.*s", (int)len, url);
    if (config_parse_route_url(url, len, sol->host, sizeof sol->host, &sol->port) != 0) {
        free(sol); /* cannot happen for a configured one: config_validate checked them */
        return NULL;
    }
    uv_timer_init(s->loop, &sol->timer);
    sol->timer.data = sol;
    uv_unref((uv_handle_t *)&sol->timer);
    list_push_back(&s->cluster->solicits, &sol->link);
    return sol;
}

/* A registered route to id closed: the solicitors that waited on it try again. */
static void wake_parked(cluster_t *cl, const char *id)
{
    list_node_t *n;
    list_foreach (n, &cl->solicits) {
        struct solicit *sol = LIST_ITEM(n, struct solicit, link);
        if (sol->state == SOL_PARKED && strcmp(sol->remote_id, id) == 0)
            schedule(sol, server_rng_next(sol->srv) % RETRY_JITTER_MS);
    }
}

static bool registered_to(cluster_t *cl, const char *id)
{
    list_node_t *n;
    list_foreach (n, &cl->routes)
        if (strcmp(LIST_ITEM(n, route_t, link)->remote_id, id) == 0) return true;
    return false;
}

static void on_route_closed(server_t *s, route_t *r)
{
    cluster_t *cl = s->cluster;
    if (r->registered) wake_parked(cl, r->remote_id);
    struct solicit *sol = r->sol;
    if (!sol || s->shutting_down) return;
    if (r->remote_id[0]) snprintf(sol->remote_id, sizeof sol->remote_id, "%s", r->remote_id);
    if (r->refused_self) {
        sol->state = SOL_DONE;
        return;
    }
    if (!r->registered && r->remote_id[0] && registered_to(cl, r->remote_id)) {
        sol->state = SOL_PARKED; /* a duplicate: the other connection carries the route */
        return;
    }
    sol->failures = r->registered ? 1 : sol->failures + 1;
    if (sol->implicit && (r->registered || sol->failures >= IMPLICIT_ATTEMPTS)) {
        sol->state = SOL_DONE;
        return;
    }
    if (r->registered) LOG_I("reconnecting to route %s", sol->url);
    schedule(sol, backoff_ms(sol));
}

/* Gossip named a server we have no route to: connect to it (a few attempts). */
static void on_route_learned(server_t *s, const char *id, const char *url)
{
    cluster_t *cl = s->cluster;
    list_node_t *n;
    list_foreach (n, &cl->solicits) {
        struct solicit *sol = LIST_ITEM(n, struct solicit, link);
        bool same = strcmp(sol->url, url) == 0 || strcmp(sol->remote_id, id) == 0;
        if (!same) continue;
        if (sol->state == SOL_DONE && sol->implicit) { /* learned again: a few more tries */
            sol->failures = 0;
            schedule(sol, 0);
        }
        return;
    }
    struct solicit *sol = solicit_new(s, url, strlen(url), true);
    if (!sol) return;
    LOG_D("route to %s learned from gossip: %s", id, url);
    schedule(sol, 0);
}

/* ---- the listener ----------------------------------------------------------------------- */

static void on_route_connection(uv_stream_t *listener, int status)
{
    server_t *s = listener->data;
    if (status < 0) {
        LOG_E("route accept failed: %s", uv_strerror(status));
        return;
    }
    conn_accept_route(s, listener);
}

/* Our client URLs for connect_urls: the client listener's address, or with a wildcard host
 * every non-loopback IPv4 address (loopback when there is none), as nats-server lists them. */
static void own_urls(server_t *s)
{
    cluster_t *cl = s->cluster;
    const char *host = s->cfg->host;
    char url[300];
    bool any = !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    uv_interface_address_t *ifs = NULL;
    int nifs = 0;
    if (any && uv_interface_addresses(&ifs, &nifs) != 0) nifs = 0;
    cl->own_urls = xcalloc((size_t)nifs + 1, sizeof *cl->own_urls);
    for (int i = 0; i < nifs; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
        char ip[64];
        uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
        snprintf(url, sizeof url, "%s:%d", ip, s->port);
        cl->own_urls[cl->nown++] = xstrdup(url);
    }
    uv_free_interface_addresses(ifs, nifs);
    if (cl->nown == 0) {
        snprintf(url, sizeof url, "%s:%d", any ? "127.0.0.1" : host, s->port);
        cl->own_urls[cl->nown++] = xstrdup(url);
    }
}

static int listen_routes(server_t *s, char *err, size_t errlen)
{
    cluster_t *cl = s->cluster;
    const char *u = s->cfg->cluster_listen;
    int port;
    struct sockaddr_storage addr;
    if (config_parse_route_url(u, strlen(u), cl->host, sizeof cl->host, &port) != 0) {
        snprintf(err, errlen, "invalid cluster listen URL \"%s\"", u);
        return STZ_EINVAL;
    }
    /* A name ("localhost", as nats-server takes it) is resolved once, at start. */
    int rc = resolve(s->loop, cl->host, port, &addr);
    if (rc) {
        snprintf(err, errlen, "invalid cluster listen address \"%s\": %s", cl->host,
                 uv_strerror(rc));
        return rc;
    }
    uv_tcp_init(s->loop, &cl->listener);
    cl->listener.data = s;
    cl->listening = true;
    rc = uv_tcp_bind(&cl->listener, (const struct sockaddr *)&addr, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&cl->listener, 128, on_route_connection);
    if (rc) {
        snprintf(err, errlen, "cannot listen for routes on %s:%d: %s", cl->host, port,
                 uv_strerror(rc));
        return rc;
    }
    cl->port = server_bound_port(&cl->listener);
    LOG_I("Listening for route connections on %s:%d (cluster %s)", cl->host, cl->port, cl->name);
    return 0;
}

int cluster_listen(server_t *s, char *err, size_t errlen)
{
    return listen_routes(s, err, errlen);
}

void cluster_connect(server_t *s)
{
    own_urls(s);
    const char *p = s->cfg->cluster_routes;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        struct solicit *sol = solicit_new(s, p, n, false);
        if (sol) schedule(sol, 0);
        p = comma ? comma + 1 : NULL;
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    s->closing_handles--;
    s->conn_gone(s); /* the shutdown waits for the server's handles too */
}

void cluster_shutdown(server_t *s)
{
    cluster_t *cl = s->cluster;
    if (cl->listening) {
        cl->listening = false;
        s->closing_handles++;
        uv_close((uv_handle_t *)&cl->listener, on_handle_closed);
    }
    list_node_t *n;
    list_foreach (n, &cl->solicits) {
        struct solicit *sol = LIST_ITEM(n, struct solicit, link);
        if (sol->resolving) uv_cancel((uv_req_t *)&sol->gai); /* its callback still runs */
        sol->timer.data = s;
        s->closing_handles++;
        uv_close((uv_handle_t *)&sol->timer, on_handle_closed);
    }
}

void cluster_free(server_t *s)
{
    cluster_t *cl = s->cluster;
    if (!cl) return;
    list_node_t *n;
    while ((n = list_pop_front(&cl->solicits)))
        free(LIST_ITEM(n, struct solicit, link));
    for (size_t i = 0; i < cl->nown; i++)
        free(cl->own_urls[i]);
    free(cl->own_urls);
    interest_free(cl);
    free(cl);
    s->cluster = NULL;
}

/* cluster_route: one route connection's protocol, nats-server 2.9's (either side of it).
 *
 * Opening: the soliciting side sends CONNECT then its INFO; the accepting side sends its INFO
 * at once and wants the peer's CONNECT before anything else. A route is registered when the
 * peer's first INFO arrives and passes: not ourselves (a configured route that leads back here
 * is dropped for good), the same cluster name (a configured name refuses another; a made-up one
 * gives way, as nats-server's dynamic names do), no route to that server yet (a duplicate,
 * e.g. both sides soliciting at once, is closed and the existing one kept). Then the whole local
 * interest goes to it, its INFO (with where it accepts routes) to every other route, which
 * connect to it if they have no route to it yet (gossip: the mesh completes), and the clients
 * get the cluster's new connect_urls.
 *
 * Registered, it speaks RS+/RS- (its interest, kept as subscriptions of this connection in the
 * sublist, sid "subject[ queue]"), RMSG/HMSG (delivered locally only: full mesh, one hop), and
 * PING/PONG. Anything else, or a bad argument, closes this route only. Other accounts than the
 * global one ($G; nats-server's $SYS) are ignored: stanzad has no accounts. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_private.h"
#include "subject.h"
#include "xalloc.h"

#define ROUTE_ACCOUNT "$G"

void cluster_route_new(conn_t *c, struct solicit *sol)
{
    route_t *r = xcalloc(1, sizeof *r);
    r->conn = c;
    r->sol = sol;
    list_node_init(&r->link);
    c->route = r;
    c->connected = true; /* no client CONNECT or auth timer: the route has its own handshake */
    parser_set_route(&c->parser);
}

void cluster_route_free(route_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nurls; i++)
        free(r->urls[i]);
    free(r->urls);
    free(r->info);
    free(r);
}

static void send_line(conn_t *c, const char *verb, char *text)
{
    conn_send(c, verb, strlen(verb));
    conn_send(c, text, strlen(text));
    conn_send(c, "\r\n", 2);
    free(text);
}

void cluster_route_start(conn_t *c)
{
    server_t *s = c->srv;
    cluster_t *cl = s->cluster;
    if (c->route->sol) {
        json_t *o = json_object();
        json_object_set_new(o, "echo", json_true());
        json_object_set_new(o, "verbose", json_false());
        json_object_set_new(o, "pedantic", json_false());
        json_object_set_new(o, "tls_required", json_false());
        json_object_set_new(o, "headers", json_true());
        json_object_set_new(o, "name", json_string(s->id));
        json_object_set_new(o, "cluster", json_string(cl->name));
        if (cl->name_dynamic) json_object_set_new(o, "dynamic", json_true());
        json_object_set_new(o, "lnoc", json_true());
        char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        send_line(c, "CONNECT ", text);
    }
    send_line(c, "INFO ", info_route_json(s));
}

/* ---- closing a route, and telling why ------------------------------------------------- */

/* Logs why, sends -ERR, and closes once that is written (or at once if it cannot be). */
static int refuse(conn_t *c, close_reason_t reason, const char *why)
{
    LOG_W("%s:%d - rid:%llu - route refused: %s", c->ip, c->rport, (unsigned long long)c->cid, why);
    conn_send_err(c, why);
    c->srv->close_conn(c, reason); /* which writes the -ERR first if the socket has room */
    return STZ_ESTOPPED;
}

/* The client INFO with the cluster's connect_urls, to every client that takes async INFO
 * (CONNECT with protocol >= 1), as nats-server sends it when the set changes. */
static void tell_clients(server_t *s)
{
    char *text = info_client_json(s, NULL);
    size_t len = strlen(text);
    list_node_t *n, *next; /* a send may close that connection (slow consumer) */
    list_foreach_safe (n, next, &s->conns) {
        conn_t *c = LIST_ITEM(n, conn_t, link);
        if (c->route || !c->connected || c->protocol < 1 || c->closing) continue;
        conn_send(c, "INFO ", 5);
        conn_send(c, text, len);
        conn_send(c, "\r\n", 2);
    }
    free(text);
}

void cluster_route_unlink(conn_t *c)
{
    server_t *s = c->srv;
    route_t *r = c->route;
    if (r->registered) {
        list_remove(&r->link);
        s->cluster->nroutes--;
        LOG_I("%s:%d - rid:%llu - route to %s closed", c->ip, c->rport, (unsigned long long)c->cid,
              r->remote_id);
        if (r->nurls && !s->shutting_down) tell_clients(s);
    }
    if (!s->shutting_down) s->cluster->route_closed(s, r);
}

/* ---- the handshake ---------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The peer's cluster name against ours; 0, or the route is refused. A made-up name of ours
 * gives way to a configured one, or to a made-up one that sorts higher (nats-server's rule, so
 * both sides settle on one name). */
static int check_cluster_name(conn_t *c, const char *theirs, bool their_dynamic)
{
    cluster_t *cl = c->srv->cluster;
    if (!theirs || strcmp(theirs, cl->name) == 0) return 0;
    if (cl->name_dynamic && (!their_dynamic || strcmp(cl->name, theirs) < 0) &&
        strlen(theirs) < sizeof cl->name) {
        LOG_I("cluster name is now %s (from a route)", theirs);
        strcpy(cl->name, theirs);
        cl->name_dynamic = their_dynamic;
        return 0;
    }
    char why[256];
    snprintf(why, sizeof why, "cluster name \"%.64s\" does not match \"%s\"", theirs, cl->name);
    return refuse(c, CLOSE_ROUTE_REFUSED, why);
}

static int on_connect(conn_t *c, const parser_op_t *op)
{
    json_t *o = json_loadb(op->arg.p, op->arg.len, 0, NULL);
    int rc = 0;
    if (!json_is_object(o))
        rc = refuse(c, CLOSE_PROTOCOL, "invalid route CONNECT");
    else
        rc = check_cluster_name(c, jstr(o, "cluster"), json_is_true(json_object_get(o, "dynamic")));
    if (rc == 0) {
        c->route->connect_seen = true;
        c->headers = json_is_true(json_object_get(o, "headers"));
    }
    json_decref(o);
    return rc;
}

static route_t *route_to(cluster_t *cl, const char *id)
{
    list_node_t *n;
    list_foreach (n, &cl->routes) {
        route_t *r = LIST_ITEM(n, route_t, link);
        if (strcmp(r->remote_id, id) == 0) return r;
    }
    return NULL;
}

/* Replaces r's client URLs with the INFO's connect_urls; true if they changed. */
static bool take_urls(route_t *r, json_t *info)
{
    json_t *arr = json_object_get(info, "connect_urls");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    bool same = n == r->nurls;
    for (size_t i = 0; i < n && same; i++) {
        const char *u = json_string_value(json_array_get(arr, i));
        same = u && strcmp(u, r->urls[i]) == 0;
    }
    if (same) return false;
    for (size_t i = 0; i < r->nurls; i++)
        free(r->urls[i]);
    free(r->urls);
    r->urls = n ? xcalloc(n, sizeof *r->urls) : NULL;
    r->nurls = 0;
    for (size_t i = 0; i < n; i++) {
        const char *u = json_string_value(json_array_get(arr, i));
        if (u) r->urls[r->nurls++] = xstrdup(u);
    }
    return true;
}

/* The INFO to forward to the other routes: the peer's own, with "ip" (where it accepts routes)
 * filled in from the connection's address and its INFO's port when it gave none. */
static char *gossip_info(conn_t *c, json_t *info)
{
    if (!jstr(info, "ip")) {
        json_t *port = json_object_get(info, "port");
        char ip[160];
        bool v6 = strchr(c->ip, ':') != NULL;
        snprintf(ip, sizeof ip, "nats-route://%s%s%s:%lld/", v6 ? "[" : "", c->ip, v6 ? "]" : "",
                 json_is_integer(port) ? (long long)json_integer_value(port) : 0LL);
        json_object_set_new(info, "ip", json_string(ip));
    }
    return json_dumps(info, JSON_COMPACT);
}

/* The first INFO passed: the route is one of ours now. */
static void register_route(conn_t *c, json_t *info, const char *id)
{
    server_t *s = c->srv;
    cluster_t *cl = s->cluster;
    route_t *r = c->route;
    snprintf(r->remote_id, sizeof r->remote_id, "%s", id);
    const char *name = jstr(info, "server_name");
    snprintf(r->remote_name, sizeof r->remote_name, "%s", name ? name : id);
    if (r->sol) c->headers = json_is_true(json_object_get(info, "headers"));
    take_urls(r, info);
    r->info = gossip_info(c, info);
    /* Gossip first, to the routes we had: each of them connects to this server if it must. */
    list_node_t *n, *next; /* a send may close that connection (slow consumer) */
    list_foreach_safe (n, next, &cl->routes) {
        route_t *other = LIST_ITEM(n, route_t, link);
        conn_send(other->conn, "INFO ", 5);
        conn_send(other->conn, r->info, strlen(r->info));
        conn_send(other->conn, "\r\n", 2);
    }
    list_push_back(&cl->routes, &r->link);
    cl->nroutes++;
    r->registered = true;
    LOG_I("%s:%d - rid:%llu - route to %s (%s) registered, %s", c->ip, c->rport,
          (unsigned long long)c->cid, r->remote_id, r->remote_name,
          r->sol ? "solicited" : "accepted");
    interest_send_all(s, c);
    if (r->nurls) tell_clients(s);
}

/* A later INFO: an update of the peer's client URLs, or gossip about another server. */
static void on_async_info(conn_t *c, json_t *info, const char *id)
{
    server_t *s = c->srv;
    route_t *r = c->route;
    if (strcmp(id, r->remote_id) == 0) {
        if (take_urls(r, info)) tell_clients(s);
        return;
    }
    const char *url = jstr(info, "ip");
    if (strcmp(id, s->id) != 0 && url && !route_to(s->cluster, id))
        s->cluster->route_learned(s, id, url);
}

static int on_info(conn_t *c, const parser_op_t *op)
{
    server_t *s = c->srv;
    route_t *r = c->route;
    json_t *info = json_loadb(op->arg.p, op->arg.len, 0, NULL);
    const char *id = json_is_object(info) ? jstr(info, "server_id") : NULL;
    int rc = 0;
    if (!id || !*id || strlen(id) >= sizeof r->remote_id) {
        rc = refuse(c, CLOSE_PROTOCOL, "invalid route INFO");
    } else if (r->registered) {
        on_async_info(c, info, id);
    } else if (!r->sol && !r->connect_seen) {
        rc = refuse(c, CLOSE_PROTOCOL, "route INFO before CONNECT");
    } else if (strcmp(id, s->id) == 0) {
        LOG_I("%s:%d - rid:%llu - detected route to self, ignoring", c->ip, c->rport,
              (unsigned long long)c->cid);
        r->refused_self = true;
        c->srv->close_conn(c, CLOSE_ROUTE_REFUSED);
        rc = STZ_ESTOPPED;
    } else if ((rc = check_cluster_name(c, jstr(info, "cluster"),
                                        json_is_true(json_object_get(info, "cluster_dynamic")))) !=
               0) {
        /* refused */
    } else if (route_to(s->cluster, id)) {
        LOG_D("%s:%d - rid:%llu - duplicate route to %s, closing this one", c->ip, c->rport,
              (unsigned long long)c->cid, id);
        snprintf(r->remote_id, sizeof r->remote_id, "%s", id); /* its solicitor waits on it */
        c->srv->close_conn(c, CLOSE_ROUTE_REFUSED);
        rc = STZ_ESTOPPED;
    } else {
        register_route(c, info, id);
    }
    json_decref(info);
    return rc;
}

/* ---- interest and messages -------------------------------------------------------------- */

/* "subject" or "subject queue": a remote subscription's key among its route's sids. */
static char *rsub_key(const parser_op_t *op, size_t *len)
{
    *len = op->subject.len + (op->queue.len ? 1 + op->queue.len : 0);
    char *key = xmalloc(*len + 1);
    memcpy(key, op->subject.p, op->subject.len);
    if (op->queue.len) {
        key[op->subject.len] = ' ';
        memcpy(key + op->subject.len + 1, op->queue.p, op->queue.len);
    }
    key[*len] = '\0';
    return key;
}

static int on_rsub(conn_t *c, const parser_op_t *op)
{
    if (!subject_valid(op->subject.p, op->subject.len) ||
        (op->queue.len && !subject_valid_queue(op->queue.p, op->queue.len)))
        return refuse(c, CLOSE_PROTOCOL, "invalid subject or queue in RS+");
    size_t klen;
    char *key = rsub_key(op, &klen);
    struct nsub *sub = route_sid_find(c, key, klen);
    uint32_t weight = op->weight > UINT32_MAX ? UINT32_MAX : (uint32_t)op->weight;
    if (sub) { /* a queue group's new weight; a plain one again is nothing new */
        sub->weight = weight;
        free(key);
        return 0;
    }
    sub = xcalloc(1, sizeof *sub);
    sub->conn = c;
    sub->subject = xstrndup(op->subject.p, op->subject.len);
    sub->subject_len = op->subject.len;
    if (op->queue.len) {
        sub->queue = xstrndup(op->queue.p, op->queue.len);
        sub->queue_len = op->queue.len;
    }
    sub->sid = key;
    sub->sid_len = klen;
    sub->weight = weight;
    if (route_add(c->srv, sub) != 0) {
        nsub_free(sub);
        return refuse(c, CLOSE_PROTOCOL, "invalid subject or queue in RS+");
    }
    hmap_insert(&c->sids, &sub->sid_node, hmap_hash_bytes(sub->sid, sub->sid_len));
    return 0;
}

static int on_runsub(conn_t *c, const parser_op_t *op)
{
    server_t *s = c->srv;
    size_t klen;
    char *key = rsub_key(op, &klen);
    struct nsub *sub = route_sid_find(c, key, klen);
    free(key);
    if (!sub) return 0;
    route_retire(s, sub);
    /* As when a client's connection closes: the engine learns at once that this subject's
     * listener (a client on another node) is gone. */
    if (s->sub_gone_hook && !s->shutting_down)
        s->sub_gone_hook(s->sub_gone_arg, sub->subject, sub->subject_len);
    return 0;
}

static int on_rmsg(conn_t *c, const parser_op_t *op)
{
    bus_msg_t m = msg_from_op(op);
    c->in_msgs++;
    c->in_bytes += op->payload.len + op->hdr.len;
    route_msg_routed(c->srv, &m, op->queues);
    return 0;
}

static bool global_account(const parser_op_t *op)
{
    return op->account.len == 2 && memcmp(op->account.p, ROUTE_ACCOUNT, 2) == 0;
}

int cluster_route_op(conn_t *c, const parser_op_t *op)
{
    route_t *r = c->route;
    switch (op->type) {
    case PARSER_OP_CONNECT:
        return r->sol ? refuse(c, CLOSE_PROTOCOL, "CONNECT from the route we solicited")
                      : on_connect(c, op);
    case PARSER_OP_INFO:
        return on_info(c, op);
    case PARSER_OP_PING:
        conn_send(c, "PONG\r\n", 6);
        return 0;
    case PARSER_OP_PONG:
        c->pings_out = 0;
        return 0;
    case PARSER_OP_OK:
        return 0;
    case PARSER_OP_ERR:
        LOG_W("%s:%d - rid:%llu - route error from %s: %.*s", c->ip, c->rport,
              (unsigned long long)c->cid, r->remote_id[0] ? r->remote_id : "the peer",
              (int)op->arg.len, op->arg.p);
        c->srv->close_conn(c, CLOSE_PROTOCOL);
        return STZ_ESTOPPED;
    default:
        break;
    }
    /* Interest and messages: only once the route is registered. */
    if (!r->registered) return refuse(c, CLOSE_PROTOCOL, "route protocol before INFO");
    if (!global_account(op)) return 0;
    switch (op->type) {
    case PARSER_OP_RSUB:
        return on_rsub(c, op);
    case PARSER_OP_RUNSUB:
        return on_runsub(c, op);
    case PARSER_OP_RMSG:
    case PARSER_OP_RHMSG:
        return on_rmsg(c, op);
    default: /* the client operations: the route parser never yields them */
        return refuse(c, CLOSE_PROTOCOL, "Unknown Protocol Operation");
    }
}

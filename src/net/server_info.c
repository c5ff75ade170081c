/* server_info: the INFO lines, built from the server's state: the one a client gets (at
 * connect, and again when the cluster's client URLs change), and the one a route gets. With a
 * cluster, a client's INFO carries connect_urls, every node's client URLs (ours first, then
 * each route's), as nats-server's does: that is how clients learn the other nodes. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server_private.h"

static bool has_url(json_t *arr, const char *url)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), url) == 0) return true;
    return false;
}

static void add_urls(json_t *arr, char *const *urls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!has_url(arr, urls[i])) json_array_append_new(arr, json_string(urls[i]));
}

/* The cluster's client URLs: ours, then every registered route's, without repeats. */
static json_t *connect_urls(const cluster_t *cl)
{
    json_t *arr = json_array();
    add_urls(arr, cl->own_urls, cl->nown);
    const list_node_t *n;
    list_foreach (n, &cl->routes) {
        const route_t *r = LIST_ITEM(n, route_t, link);
        add_urls(arr, r->urls, r->nurls);
    }
    return arr;
}

/* What both INFOs start with. */
static json_t *info_common(server_t *s, const char *host, int port, int proto)
{
    json_t *o = json_object();
    json_object_set_new(o, "server_id", json_string(s->id));
    json_object_set_new(o, "server_name", json_string(s->id));
    json_object_set_new(o, "version", json_string(STANZA_VERSION));
    json_object_set_new(o, "proto", json_integer(proto));
    json_object_set_new(o, "go", json_string("stanza"));
    json_object_set_new(o, "host", json_string(host));
    json_object_set_new(o, "port", json_integer(port));
    json_object_set_new(o, "headers", json_true());
    json_object_set_new(o, "max_payload", json_integer(s->cfg->max_payload));
    return o;
}

static char *dump(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

char *info_client_json(server_t *s, const conn_t *c)
{
    const config_t *cfg = s->cfg;
    json_t *o = info_common(s, cfg->host, s->port, 1);
    if (c) {
        json_object_set_new(o, "client_id", json_integer((json_int_t)c->cid));
        json_object_set_new(o, "client_ip", json_string(c->ip));
    }
    if (cfg->user || cfg->token) json_object_set_new(o, "auth_required", json_true());
    if (c && c->tls) json_object_set_new(o, "tls_required", json_true());
    if (c && c->tls && cfg->tls_verify) json_object_set_new(o, "tls_verify", json_true());
    if (s->cluster) {
        json_object_set_new(o, "cluster", json_string(s->cluster->name));
        json_object_set_new(o, "connect_urls", connect_urls(s->cluster));
    }
    return dump(o);
}

char *info_route_json(server_t *s)
{
    cluster_t *cl = s->cluster;
    /* proto 2: nats-server's route protocol with accounts (RS+ $G ..., RMSG $G ...). */
    json_t *o = info_common(s, cl->host, cl->port, 2);
    json_object_set_new(o, "cluster", json_string(cl->name));
    if (cl->name_dynamic) json_object_set_new(o, "cluster_dynamic", json_true());
    json_t *urls = json_array();
    add_urls(urls, cl->own_urls, cl->nown);
    json_object_set_new(o, "connect_urls", urls);
    json_object_set_new(o, "lnoc", json_true());
    return dump(o);
}

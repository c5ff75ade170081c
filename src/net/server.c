/* server: the server's state (server_private.h) and its accessors. The bottom of the server
 * module: its files use this state; its life on the loop is server_loop.c's. See server.h. */
#include "server_private.h"

int server_port(const server_t *s)
{
    return s->port;
}

int server_bound_port(uv_tcp_t *listener)
{
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (uv_tcp_getsockname(listener, (struct sockaddr *)&bound, &blen) != 0) return 0;
    return ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                             : ((struct sockaddr_in *)&bound)->sin_port);
}

const char *server_id(const server_t *s)
{
    return s->id;
}

void server_get_stats(const server_t *s, bus_stats_t *out)
{
    *out = s->stats;
    sublist_stats_t st;
    sublist_get_stats(s->sublist, &st);
    out->subs = st.subs;
}

void server_set_flush_hook(server_t *s, void (*fn)(void *arg), void *arg)
{
    s->flush_hook = fn;
    s->flush_hook_arg = arg;
}

void server_set_sub_gone_hook(server_t *s, bus_sub_gone_fn fn, void *arg)
{
    s->sub_gone_hook = fn;
    s->sub_gone_arg = arg;
}

/* route: subscriptions and routing. A published message is matched against the subject trie
 * (sublist) and delivered to every plain subscription and to one member per queue group;
 * client subscriptions get a frame in their connection's output (conn_out.c), in-process ones
 * (the streaming engine) a callback. A subscription removed while a routing result is being
 * walked is only marked closed and parked on the graveyard, freed at the end of the iteration.
 * Also the in-process half of server.h: server_subscribe, server_publish, server_interest.
 *
 * With routes (cluster_route.c), a route's interest is subscriptions of its connection in the
 * same sublist: a message matching them goes out as one RMSG per route, naming the queue groups
 * picked there; a local queue member is preferred to a remote one, as in nats-server. A message
 * that came from a route goes to local subscriptions only (full mesh: one hop). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "server_private.h"
#include "subject.h"
#include "xalloc.h"

void nsub_free(struct nsub *sub)
{
    free(sub->subject);
    free(sub->queue);
    free(sub->sid);
    free(sub);
}

struct nsub *route_sid_find(conn_t *c, const char *sid, size_t len)
{
    uint64_t h = hmap_hash_bytes(sid, len);
    for (hmap_node_t *n = hmap_first_with_hash(&c->sids, h); n; n = hmap_next_with_hash(n, h)) {
        struct nsub *sub = HMAP_ITEM(n, struct nsub, sid_node);
        if (sub->sid_len == len && memcmp(sub->sid, sid, len) == 0) return sub;
    }
    return NULL;
}

void route_bury(server_t *s)
{
    list_node_t *n;
    while ((n = list_pop_front(&s->graveyard)))
        nsub_free(LIST_ITEM(n, struct nsub, link));
}

/* A route's subscription (remote interest), as opposed to a client's or an in-process one. */
static bool is_remote(const struct nsub *sub)
{
    return sub->conn && sub->conn->route;
}

int route_add(server_t *s, struct nsub *sub)
{
    int rc =
        sublist_insert(s->sublist, sub->subject, sub->subject_len, sub->queue, sub->queue_len, sub);
    if (rc == 0 && s->cluster && !is_remote(sub)) interest_local_add(s, sub);
    return rc;
}

void route_retire(server_t *s, struct nsub *sub)
{
    if (sub->closed) return;
    sub->closed = true;
    if (sub->conn) hmap_remove(&sub->conn->sids, &sub->sid_node);
    list_remove(&sub->link); /* from s->isubs, for an in-process one */
    sublist_remove(s->sublist, sub->subject, sub->subject_len, sub->queue, sub->queue_len, sub);
    if (s->cluster && !is_remote(sub)) interest_local_remove(s, sub);
    list_push_back(&s->graveyard, &sub->link);
}

/* Delivers to one subscription; returns 1 if delivered. */
static int deliver_one(server_t *s, conn_t *from, struct nsub *sub, const bus_msg_t *msg)
{
    if (sub->closed) return 0;
    if (sub->conn) {
        if (sub->conn == from && !from->echo) return 0;
        if (sub->conn->closing) return 0;
        conn_deliver(sub->conn, sub, msg);
    } else {
        sub->fn(sub->fn_arg, msg);
    }
    s->stats.out_msgs++;
    s->stats.out_bytes += msg->data_len + msg->hdr_len;
    sub->delivered++;
    if (sub->max && sub->delivered >= sub->max) route_retire(s, sub);
    return 1;
}

static bool member_usable(conn_t *from, struct nsub *sub)
{
    if (sub->closed) return false;
    if (!sub->conn) return true;
    return !sub->conn->closing && !(sub->conn == from && !from->echo);
}

/* One member of a queue group, picked at random among the local ones that can take it
 * (closing, or no echo, cannot); NULL when none can. With *remote set, a remote member (a route
 * carrying the group) is the fallback, as nats-server prefers local members. */
static struct nsub *pick_member(server_t *s, conn_t *from, const sublist_qgroup_t *g,
                                struct nsub **remote)
{
    size_t start = g->n > 1 ? server_rng_next(s) % g->n : 0;
    for (size_t k = 0; k < g->n; k++) {
        struct nsub *sub = g->items[(start + k) % g->n];
        if (!member_usable(from, sub)) continue;
        if (!is_remote(sub)) return sub;
        if (remote && !*remote) *remote = sub;
    }
    return NULL;
}

static void count_in(server_t *s, const bus_msg_t *msg)
{
    s->stats.in_msgs++;
    s->stats.in_bytes += msg->data_len + msg->hdr_len;
}

int route_msg(server_t *s, conn_t *from, const bus_msg_t *msg)
{
    sublist_result_t *r = sublist_match(s->sublist, msg->subject, msg->subject_len);
    if (!r) return STZ_EINVAL;
    count_in(s, msg);
    size_t mark = s->cluster ? rtargets_mark(s) : 0;
    int delivered = 0;
    for (size_t i = 0; i < r->nplain; i++) {
        struct nsub *sub = r->plain[i];
        if (!is_remote(sub))
            delivered += deliver_one(s, from, sub, msg);
        else if (member_usable(from, sub))
            rtargets_add(s, mark, sub->conn, NULL, 0); /* one RMSG per route, whatever matched */
    }
    for (size_t q = 0; q < r->nqueues; q++) {
        const sublist_qgroup_t *g = &r->queues[q];
        struct nsub *remote = NULL, *sub = pick_member(s, from, g, &remote);
        if (sub)
            delivered += deliver_one(s, from, sub, msg);
        else if (remote)
            rtargets_add(s, mark, remote->conn, g->name, strlen(g->name));
    }
    sublist_result_release(r);
    if (s->cluster) delivered += rtargets_send(s, mark, msg);
    return delivered;
}

/* True if name is one of the space-separated names in list. */
static bool name_listed(slice_t list, const char *name)
{
    size_t n = strlen(name), i = 0;
    while (i < list.len) {
        size_t start = i;
        while (i < list.len && list.p[i] != ' ')
            i++;
        if (i - start == n && memcmp(list.p + start, name, n) == 0) return true;
        i++;
    }
    return false;
}

int route_msg_routed(server_t *s, const bus_msg_t *msg, slice_t queues)
{
    sublist_result_t *r = sublist_match(s->sublist, msg->subject, msg->subject_len);
    if (!r) return 0;
    count_in(s, msg);
    int delivered = 0;
    for (size_t i = 0; i < r->nplain; i++)
        if (!is_remote(r->plain[i])) delivered += deliver_one(s, NULL, r->plain[i], msg);
    for (size_t q = 0; q < r->nqueues && queues.len; q++) {
        if (!name_listed(queues, r->queues[q].name)) continue;
        struct nsub *sub = pick_member(s, NULL, &r->queues[q], NULL);
        if (sub) delivered += deliver_one(s, NULL, sub, msg);
    }
    sublist_result_release(r);
    return delivered;
}

server_sub_t *server_subscribe(server_t *s, const char *subject, const char *queue, bus_msg_fn fn,
                               void *arg)
{
    size_t slen = strlen(subject);
    if (!subject_valid(subject, slen)) return NULL;
    if (queue && !subject_valid_queue(queue, strlen(queue))) return NULL;
    struct nsub *sub = xcalloc(1, sizeof *sub);
    sub->fn = fn;
    sub->fn_arg = arg;
    sub->subject = xstrndup(subject, slen);
    sub->subject_len = slen;
    if (queue) {
        sub->queue = xstrdup(queue);
        sub->queue_len = strlen(queue);
    }
    sub->sid = xstrdup("");
    if (route_add(s, sub) != 0) {
        nsub_free(sub);
        return NULL;
    }
    list_push_back(&s->isubs, &sub->link);
    return sub;
}

void server_unsubscribe(server_t *s, server_sub_t *sub)
{
    route_retire(s, sub);
}

int server_publish(server_t *s, const bus_msg_t *msg)
{
    int rc = route_msg(s, NULL, msg);
    return rc < 0 ? rc : 0;
}

size_t server_interest(server_t *s, const char *subject, size_t len)
{
    sublist_result_t *r = sublist_match(s->sublist, subject, len);
    if (!r) return 0;
    size_t n = 0;
    for (size_t i = 0; i < r->nplain; i++)
        n += !((struct nsub *)r->plain[i])->closed;
    for (size_t q = 0; q < r->nqueues; q++)
        for (size_t i = 0; i < r->queues[q].n; i++)
            n += !((struct nsub *)r->queues[q].items[i])->closed;
    sublist_result_release(r);
    return n;
}

/* cluster_interest: this server's interest as its routes see it, and where a message goes.
 *
 * Every local subscription (a client's, or an in-process one such as the streaming engine's
 * _STAN.* subjects) is advertised to every route, as nats-server 2.9 does in the global
 * account: "RS+ $G subject" once for the first plain subscription of a subject and "RS- $G
 * subject" when its last one goes; for a queue group "RS+ $G subject queue weight" each time
 * its local member count (the weight) changes, and "RS- $G subject queue" when it is empty.
 * A route that registers gets the whole set. Remote interest is the routes' own business
 * (cluster_route.c puts it in the sublist); this file only collects, while a message is
 * routed, the routes it goes to (one RMSG per route, naming the queue groups picked there). */
#include <stdlib.h>
#include <string.h>

#include "server_private.h"
#include "xalloc.h"

/* One advertised (subject, queue): its local subscriptions. The key is "subject" or
 * "subject queue" (a space never occurs in either). */
struct lentry {
    hmap_node_t node;
    uint32_t count;
    size_t subject_len, queue_len;
    size_t key_len;
    char key[];
};

struct rtarget {
    conn_t *c;
    buf_t queues; /* the queue groups picked on that route, space-separated */
};

/* "subject" or "subject queue" into b. */
static void make_key(buf_t *b, const struct nsub *sub)
{
    buf_reset(b);
    buf_append(b, sub->subject, sub->subject_len);
    if (sub->queue) {
        buf_append(b, " ", 1);
        buf_append(b, sub->queue, sub->queue_len);
    }
}

static struct lentry *lfind(cluster_t *cl, const char *key, size_t len, uint64_t h)
{
    for (hmap_node_t *n = hmap_first_with_hash(&cl->local, h); n; n = hmap_next_with_hash(n, h)) {
        struct lentry *e = HMAP_ITEM(n, struct lentry, node);
        if (e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    }
    return NULL;
}

/* "RS+ $G subject[ queue weight]\r\n" or "RS- $G subject[ queue]\r\n" into b. */
static void interest_line(buf_t *b, const struct lentry *e, bool add)
{
    buf_reset(b);
    buf_append_str(b, add ? "RS+ $G " : "RS- $G ");
    buf_append(b, e->key, e->key_len); /* the subject, and the queue after a space */
    if (add && e->queue_len) {
        buf_append(b, " ", 1);
        buf_append_u64(b, e->count);
    }
    buf_append(b, "\r\n", 2);
}

static void send_to_routes(cluster_t *cl, const buf_t *line)
{
    list_node_t *n, *next; /* a send may close that connection (slow consumer) */
    list_foreach_safe (n, next, &cl->routes) {
        route_t *r = LIST_ITEM(n, route_t, link);
        conn_send(r->conn, line->data, line->len);
    }
}

void interest_local_add(server_t *s, const struct nsub *sub)
{
    cluster_t *cl = s->cluster;
    buf_t b;
    buf_init(&b);
    make_key(&b, sub);
    uint64_t h = hmap_hash_bytes(b.data, b.len);
    struct lentry *e = lfind(cl, b.data, b.len, h);
    if (!e) {
        e = xcalloc(1, sizeof *e + b.len);
        memcpy(e->key, b.data, b.len);
        e->key_len = b.len;
        e->subject_len = sub->subject_len;
        e->queue_len = sub->queue ? sub->queue_len : 0;
        hmap_insert(&cl->local, &e->node, h);
    }
    e->count++;
    /* A plain subject is news only once; a queue group's weight each time. */
    if (e->queue_len || e->count == 1) {
        interest_line(&b, e, true);
        send_to_routes(cl, &b);
    }
    buf_free(&b);
}

void interest_local_remove(server_t *s, const struct nsub *sub)
{
    cluster_t *cl = s->cluster;
    buf_t b;
    buf_init(&b);
    make_key(&b, sub);
    struct lentry *e = lfind(cl, b.data, b.len, hmap_hash_bytes(b.data, b.len));
    if (e) {
        e->count--;
        if (e->count == 0 || e->queue_len) {
            interest_line(&b, e, e->count > 0);
            send_to_routes(cl, &b);
        }
        if (e->count == 0) {
            hmap_remove(&cl->local, &e->node);
            free(e);
        }
    }
    buf_free(&b);
}

void interest_send_all(server_t *s, conn_t *rc)
{
    cluster_t *cl = s->cluster;
    buf_t b;
    buf_init(&b);
    size_t it;
    for (hmap_node_t *n = hmap_first(&cl->local, &it); n; n = hmap_next(&cl->local, &it, n)) {
        interest_line(&b, HMAP_ITEM(n, struct lentry, node), true);
        conn_send(rc, b.data, b.len);
    }
    buf_free(&b);
}

/* ---- a message's routes ----------------------------------------------------------------- */

size_t rtargets_mark(server_t *s)
{
    return s->cluster->ntargets;
}

void rtargets_add(server_t *s, size_t mark, conn_t *rc, const char *queue, size_t qlen)
{
    cluster_t *cl = s->cluster;
    struct rtarget *t = NULL;
    for (size_t i = mark; i < cl->ntargets && !t; i++)
        if (cl->targets[i].c == rc) t = &cl->targets[i];
    if (!t) {
        if (cl->ntargets == cl->cap_targets) {
            size_t cap = cl->cap_targets ? cl->cap_targets * 2 : 8;
            cl->targets = xrealloc(cl->targets, cap * sizeof *cl->targets);
            for (size_t i = cl->cap_targets; i < cap; i++)
                buf_init(&cl->targets[i].queues);
            cl->cap_targets = cap;
        }
        t = &cl->targets[cl->ntargets++];
        t->c = rc;
        buf_reset(&t->queues);
    }
    if (queue) {
        if (t->queues.len) buf_append(&t->queues, " ", 1);
        buf_append(&t->queues, queue, qlen);
    }
}

int rtargets_send(server_t *s, size_t mark, const bus_msg_t *msg)
{
    cluster_t *cl = s->cluster;
    int sent = 0;
    /* By index: a send never routes again, but the array is only ours above the mark. */
    for (size_t i = mark; i < cl->ntargets; i++) {
        struct rtarget *t = &cl->targets[i];
        conn_send_rmsg(t->c, msg, t->queues.data, t->queues.len);
        s->stats.out_msgs++;
        s->stats.out_bytes += msg->data_len + msg->hdr_len;
        sent++;
    }
    cl->ntargets = mark;
    return sent;
}

void interest_free(cluster_t *cl)
{
    size_t it;
    hmap_node_t *n = hmap_first(&cl->local, &it);
    while (n) {
        hmap_node_t *next = hmap_next(&cl->local, &it, n);
        hmap_remove(&cl->local, n);
        free(HMAP_ITEM(n, struct lentry, node));
        n = next;
    }
    hmap_free(&cl->local);
    for (size_t i = 0; i < cl->cap_targets; i++)
        buf_free(&cl->targets[i].queues);
    free(cl->targets);
}

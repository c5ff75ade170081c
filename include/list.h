/* list: the one list idiom. An intrusive, circular, doubly-linked list with a sentinel head (as
 * libuv's and the Linux kernel's): a struct on a list embeds a list_node_t, so linking and
 * unlinking never allocate, and removal is O(1) from the item alone. A node that is on no list
 * has NULL links (list_node_init, or zeroed memory), so list_linked() answers "is it queued?".
 *
 *     list_node_t *n, *next;
 *     list_foreach_safe(n, next, &head) {
 *         item_t *it = LIST_ITEM(n, item_t, link);
 *         ...may list_remove(n)...
 *     }
 */
#ifndef STANZA_LIST_H
#define STANZA_LIST_H
#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *next, *prev;
} list_node_t;

/* The item that embeds node n as its field `member`. */
#define LIST_ITEM(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))

static inline void list_init(list_node_t *head)
{
    head->next = head->prev = head;
}
static inline void list_node_init(list_node_t *n)
{
    n->next = n->prev = NULL;
}
static inline bool list_empty(const list_node_t *head)
{
    return head->next == head;
}
static inline bool list_linked(const list_node_t *n)
{
    return n->next != NULL;
}

static inline void list_insert_before(list_node_t *at, list_node_t *n)
{
    n->next = at;
    n->prev = at->prev;
    at->prev->next = n;
    at->prev = n;
}
static inline void list_push_back(list_node_t *head, list_node_t *n)
{
    list_insert_before(head, n);
}
static inline void list_push_front(list_node_t *head, list_node_t *n)
{
    list_insert_before(head->next, n);
}
/* Unlinks n; harmless when n is on no list. */
static inline void list_remove(list_node_t *n)
{
    if (!n->next) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}
/* The first and last items, or NULL when empty. */
static inline list_node_t *list_first(const list_node_t *head)
{
    return head->next == head ? NULL : head->next;
}
static inline list_node_t *list_last(const list_node_t *head)
{
    return head->prev == head ? NULL : head->prev;
}
/* The item after (before) n, or NULL at the end. */
static inline list_node_t *list_next(const list_node_t *head, const list_node_t *n)
{
    return n->next == head ? NULL : n->next;
}
static inline list_node_t *list_prev(const list_node_t *head, const list_node_t *n)
{
    return n->prev == head ? NULL : n->prev;
}
static inline list_node_t *list_pop_front(list_node_t *head)
{
    list_node_t *n = list_first(head);
    if (n) list_remove(n);
    return n;
}

#define list_foreach(n, head) for ((n) = (head)->next; (n) != (head); (n) = (n)->next)
/* The current node may be removed (or moved to another list) inside the body. */
#define list_foreach_safe(n, nx, head)                                                             \
    for ((n) = (head)->next, (nx) = (n)->next; (n) != (head); (n) = (nx), (nx) = (n)->next)

#endif

/* The shared mechanisms of src/base: the hash table, the list, the error space, the clock. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "clock.h"
#include "err.h"
#include "hmap.h"
#include "list.h"
#include "strmap.h"
#include "subject.h"
#include "test.h"

typedef struct item {
    unsigned key;
    hmap_node_t node;
    list_node_t link;
} item_t;

static item_t *find(hmap_t *m, unsigned key)
{
    uint64_t h = hmap_hash_u64(key);
    for (hmap_node_t *n = hmap_first_with_hash(m, h); n; n = hmap_next_with_hash(n, h)) {
        item_t *it = HMAP_ITEM(n, item_t, node);
        if (it->key == key) return it;
    }
    return NULL;
}

static void test_hmap(void)
{
    static item_t items[5000];
    hmap_t m;
    hmap_init(&m);
    CHECK(find(&m, 1) == NULL);
    for (unsigned i = 0; i < 5000; i++) {
        items[i].key = i;
        hmap_insert(&m, &items[i].node, hmap_hash_u64(i));
    }
    CHECK_EQ_INT((int)hmap_count(&m), 5000);
    for (unsigned i = 0; i < 5000; i++)
        CHECK(find(&m, i) == &items[i]);
    CHECK(find(&m, 5000) == NULL);
    /* remove the odd ones while walking */
    size_t it, seen = 0;
    hmap_node_t *n = hmap_first(&m, &it);
    while (n) {
        hmap_node_t *next = hmap_next(&m, &it, n);
        item_t *x = HMAP_ITEM(n, item_t, node);
        if (x->key & 1) hmap_remove(&m, n);
        seen++;
        n = next;
    }
    CHECK_EQ_INT((int)seen, 5000);
    CHECK_EQ_INT((int)hmap_count(&m), 2500);
    CHECK(find(&m, 3) == NULL && find(&m, 4) == &items[4]);
    hmap_free(&m);
    CHECK(hmap_hash_bytes("abc", 3) != hmap_hash_bytes("abd", 3));
}

static void test_strmap(void)
{
    strmap_t m;
    strmap_init(&m);
    int a = 1, b = 2;
    CHECK(strmap_put(&m, "foo", 3, &a) == NULL);
    CHECK(strmap_put(&m, "foo", 3, &b) == &a);
    CHECK(strmap_get(&m, "foo", 3) == &b);
    CHECK(strmap_get(&m, "fo", 2) == NULL);
    CHECK_EQ_INT((int)strmap_count(&m), 1);
    CHECK(strmap_del(&m, "foo", 3) == &b);
    CHECK_EQ_INT((int)strmap_count(&m), 0);
    strmap_free(&m);
}

static void test_list(void)
{
    item_t items[4];
    list_node_t head, *n, *nx;
    list_init(&head);
    CHECK(list_empty(&head) && list_first(&head) == NULL);
    for (unsigned i = 0; i < 4; i++) {
        items[i].key = i;
        list_node_init(&items[i].link);
        CHECK(!list_linked(&items[i].link));
    }
    list_push_back(&head, &items[1].link);
    list_push_back(&head, &items[2].link);
    list_push_front(&head, &items[0].link);
    list_push_back(&head, &items[3].link);
    unsigned want = 0;
    list_foreach (n, &head)
        CHECK_EQ_INT((int)LIST_ITEM(n, item_t, link)->key, (int)want++);
    CHECK_EQ_INT((int)want, 4);
    list_foreach_safe (n, nx, &head)
        if (LIST_ITEM(n, item_t, link)->key % 2) list_remove(n);
    CHECK(!list_linked(&items[1].link) && list_linked(&items[2].link));
    list_remove(&items[1].link); /* harmless */
    CHECK(list_first(&head) == &items[0].link && list_last(&head) == &items[2].link);
    CHECK(list_next(&head, &items[0].link) == &items[2].link);
    CHECK(list_next(&head, &items[2].link) == NULL);
    CHECK(list_pop_front(&head) == &items[0].link);
    CHECK(list_pop_front(&head) == &items[2].link);
    CHECK(list_pop_front(&head) == NULL && list_empty(&head));
}

static void test_err(void)
{
    CHECK_EQ_STR(stz_strerror(STZ_OK), "success");
    CHECK_EQ_STR(stz_strerror(STZ_ENOSPC), "no space left on device");
    CHECK_EQ_STR(stz_strerror(STZ_ECTRLLINE), "Maximum Control Line Exceeded");
    CHECK(STZ_ENOENT < 0 && STZ_ECONFIG < 0 && STZ_ENOSPC != STZ_EIO);
    CHECK(strlen(stz_strerror(-EPIPE)) > 0);
    CHECK_EQ_STR(stz_strerror(-99999), "unknown error");
}

static void test_clock(void)
{
    int64_t w = clock_wall_ns();
    CHECK(w > INT64_C(1600000000) * CLOCK_NS_PER_SEC);
    uint64_t m0 = clock_mono_ns(), m1 = clock_mono_ns();
    CHECK(m1 >= m0);
    clock_fake_start(INT64_C(1000) * CLOCK_NS_PER_SEC);
    CHECK(clock_is_fake());
    CHECK(clock_wall_ns() == INT64_C(1000) * CLOCK_NS_PER_SEC && clock_mono_ns() == 0);
    clock_fake_advance(30 * CLOCK_NS_PER_MS);
    CHECK(clock_mono_ms() == 30);
    CHECK(clock_wall_ns() == INT64_C(1000) * CLOCK_NS_PER_SEC + 30 * CLOCK_NS_PER_MS);
    clock_fake_stop();
    CHECK(clock_wall_ns() >= w);
    CHECK(clock_add_sat(INT64_MAX - 1, 5) == INT64_MAX);
    CHECK(clock_add_sat(INT64_MIN + 1, -5) == INT64_MIN);
    CHECK(clock_add_sat(2, 3) == 5);
}

/* server_start and httpd_listen hand libuv's codes on as err.h's: on Unix they are -errno. */
static void test_err_libuv(void)
{
    CHECK_EQ_INT(UV_EINVAL, STZ_EINVAL);
    CHECK_EQ_INT(UV_ENOMEM, STZ_ENOMEM);
    CHECK_EQ_INT(UV_EBUSY, STZ_EBUSY);
    CHECK(UV_EADDRINUSE == -EADDRINUSE);
    CHECK_EQ_STR(stz_strerror(UV_EADDRINUSE), strerror(EADDRINUSE));
}

/* The two names the streaming engine checks (subject.h): a channel, and the names subjects are
 * built from. Each is a literal subject with one more rule, as NSS has it. */
static void test_subject_names(void)
{
#define CH(s) subject_valid_channel(s, strlen(s))
#define NM(s) subject_valid_name(s, strlen(s))
    CHECK(CH("foo") && CH("foo.bar") && CH("a*") && CH("a>b"));
    CHECK(!CH("") && !CH("foo.*") && !CH("foo.>") && !CH("a..b") && !CH(".a") && !CH("a."));
    CHECK(!CH("a/b") && !CH("a b") && !CH("a\tb"));
    CHECK(!subject_valid_channel(NULL, 0));
    CHECK(NM("test-cluster") && NM("_STAN.discover") && NM("a/b"));
    CHECK(!NM("") && !NM("a*") && !NM("a>b") && !NM("a.*") && !NM("a..b") && !NM("a.") &&
          !NM("a b") && !NM("a\x01"));
#undef CH
#undef NM
}

int main(void)
{
    TEST_RUN(test_hmap);
    TEST_RUN(test_strmap);
    TEST_RUN(test_list);
    TEST_RUN(test_err);
    TEST_RUN(test_clock);
    TEST_RUN(test_err_libuv);
    TEST_RUN(test_subject_names);
    return test_summary();
}

/* Unit tests for subject validation and the sublist trie, including a randomized comparison
 * against a brute-force matcher. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subject.h"
#include "sublist.h"
#include "test.h"

/* Item pointers are addresses in this array, so a pointer maps back to an index. */
static char items[4096];
#define IT(i) ((void *)&items[(i)])

static int ins(sublist_t *sl, const char *subj, const char *q, int item)
{
    return sublist_insert(sl, subj, strlen(subj), q, q ? strlen(q) : 0, IT(item));
}

static int rem(sublist_t *sl, const char *subj, const char *q, int item)
{
    return sublist_remove(sl, subj, strlen(subj), q, q ? strlen(q) : 0, IT(item));
}

static sublist_result_t *match(sublist_t *sl, const char *subj)
{
    return sublist_match(sl, subj, strlen(subj));
}

static bool has(void **v, size_t n, int item)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == IT(item)) return true;
    return false;
}

static const sublist_qgroup_t *group(const sublist_result_t *r, const char *name)
{
    for (size_t i = 0; i < r->nqueues; i++)
        if (strcmp(r->queues[i].name, name) == 0) return &r->queues[i];
    return NULL;
}

static sublist_stats_t stats(const sublist_t *sl)
{
    sublist_stats_t st;
    sublist_get_stats(sl, &st);
    return st;
}

/* Number of plain matches of subj (releases the result). */
static size_t nplain(sublist_t *sl, const char *subj)
{
    sublist_result_t *r = match(sl, subj);
    CHECK(r);
    size_t n = r->nplain;
    sublist_result_release(r);
    return n;
}

static bool sv(const char *s)
{
    return subject_valid(s, strlen(s));
}

static bool slit(const char *s)
{
    return subject_valid_literal(s, strlen(s));
}

static void test_subject_valid(void)
{
    const char *good[] = {"foo",
                          "foo.bar",
                          "*",
                          ">",
                          "foo.*",
                          "foo.>",
                          "*.*",
                          "*.>",
                          "foo.*.bar",
                          "foo.*.>",
                          "a*",
                          "foo>",
                          "a*.b>",
                          "*a.>b",
                          "f\xc3\xb6\xc3\xb6.bar",
                          "$SYS.REQ",
                          "_INBOX.abc-def_123",
                          "a.b.c.d.e.f.g"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(sv(good[i]));
    const char *bad[] = {"",        ".",         "..",      "foo.",    ".foo",      "foo..bar",
                         "foo bar", "foo\tbar",  "foo\r",   "foo\n",   " foo",      "foo.>.bar",
                         ">.foo",   "foo.>.>",   "foo\x01", "foo\x7f", "foo. .bar", "foo.*.",
                         "*..>",    "foo.\tbar", ">.",      "a.b.c.d."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (sv(bad[i])) fprintf(stderr, "accepted bad subject [%s]\n", bad[i]);
        CHECK(!sv(bad[i]));
    }
    CHECK(!subject_valid(NULL, 3));
    CHECK(!subject_valid("foo\0bar", 7)); /* embedded NUL is a control byte */
    CHECK(subject_valid("foo.bar", 3));   /* only len bytes count */
    CHECK(!subject_valid("foo.bar", 4));  /* "foo." */

    CHECK(slit("foo.bar"));
    CHECK(slit("a*.b>"));
    CHECK(slit("foo>"));
    CHECK(!slit("foo.*"));
    CHECK(!slit("*"));
    CHECK(!slit(">"));
    CHECK(!slit("foo.>"));
    CHECK(!slit("*.bar"));
    CHECK(!slit("foo..bar"));
    CHECK(!slit(""));

    CHECK(subject_valid_queue("q", 1));
    CHECK(subject_valid_queue("q.1", 3));
    CHECK(subject_valid_queue("*", 1));
    CHECK(!subject_valid_queue("", 0));
    CHECK(!subject_valid_queue(NULL, 0));
    CHECK(!subject_valid_queue("q 1", 3));
    CHECK(!subject_valid_queue("q\n", 2));
    CHECK(!subject_valid_queue("q\t", 2));

    /* Long subjects: 8000 tokens of "ab" is fine; a doubled dot anywhere is not. */
    size_t n = 8000 * 3 - 1;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 3 == 2 ? '.' : 'a' + (char)(i % 3);
    s[n] = '\0';
    CHECK(subject_valid(s, n));
    CHECK(subject_valid_literal(s, n));
    s[n - 2] = '*';                  /* the last token becomes "*" (subject is n - 1 long) */
    CHECK(!subject_valid(s, n - 2)); /* trailing '.' */
    CHECK(subject_valid(s, n - 1));
    CHECK(!subject_valid_literal(s, n - 1));
    CHECK(subject_valid_literal(s, n)); /* "*b" is a literal token */
    s[3] = '.';
    CHECK(!subject_valid(s, n)); /* "ab.." */
    free(s);
}

static void test_literal(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo", NULL, 2), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar.baz", NULL, 3), STZ_OK);
    CHECK_EQ_INT(stats(sl).subs, 3);

    sublist_result_t *r = match(sl, "foo.bar");
    CHECK(r);
    CHECK_EQ_INT(r->nplain, 1);
    CHECK(r->plain[0] == IT(1));
    CHECK_EQ_INT(r->nqueues, 0);
    sublist_result_release(r);

    r = match(sl, "foo");
    CHECK_EQ_INT(r->nplain, 1);
    CHECK(r->plain[0] == IT(2));
    sublist_result_release(r);

    r = match(sl, "foo.baz");
    CHECK(r); /* never NULL for a valid subject */
    CHECK_EQ_INT(r->nplain, 0);
    CHECK_EQ_INT(r->nqueues, 0);
    sublist_result_release(r);

    CHECK_EQ_INT(nplain(sl, "foo.bar.baz"), 1);
    CHECK_EQ_INT(nplain(sl, "foo.bar.baz.qux"), 0);
    CHECK_EQ_INT(nplain(sl, "bar"), 0);

    /* A published subject with wildcard tokens matches only wildcard subscriptions, as in
     * nats-server without pedantic mode: here there are none. */
    CHECK_EQ_INT(nplain(sl, "foo.*"), 0);
    CHECK_EQ_INT(nplain(sl, "foo.>"), 0);
    int wc = 0, wc2 = 0;
    CHECK_EQ_INT(sublist_insert(sl, "foo.*", 5, NULL, 0, &wc), STZ_OK);
    CHECK_EQ_INT(sublist_insert(sl, "foo.>", 5, NULL, 0, &wc2), STZ_OK);
    CHECK_EQ_INT(nplain(sl, "foo.*"), 2);   /* foo.* and foo.>, not foo.bar */
    CHECK_EQ_INT(nplain(sl, "foo.>"), 2);   /* the '>' token is one token here */
    CHECK_EQ_INT(nplain(sl, "foo.*.x"), 1); /* only foo.> */
    CHECK_EQ_INT(sublist_remove(sl, "foo.*", 5, NULL, 0, &wc), STZ_OK);
    CHECK_EQ_INT(sublist_remove(sl, "foo.>", 5, NULL, 0, &wc2), STZ_OK);
    /* Invalid subjects cannot be matched. */
    CHECK(match(sl, "foo..bar") == NULL);
    CHECK(match(sl, "") == NULL);
    CHECK(sublist_match(sl, NULL, 0) == NULL);
    sublist_free(sl);
}

static void test_wildcards(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "foo.*", NULL, 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.>", NULL, 2), STZ_OK);
    CHECK_EQ_INT(ins(sl, "*.*", NULL, 3), STZ_OK);
    CHECK_EQ_INT(ins(sl, ">", NULL, 4), STZ_OK);
    CHECK_EQ_INT(ins(sl, "*", NULL, 5), STZ_OK);
    CHECK_EQ_INT(ins(sl, "*.bar.>", NULL, 6), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.*.baz", NULL, 7), STZ_OK);
    CHECK_EQ_INT(ins(sl, "a*.b", NULL, 8), STZ_OK); /* literal token "a*" */

    sublist_result_t *r = match(sl, "foo");
    /* "foo.>" and "foo.*" need a second token; "*" and ">" match. */
    CHECK_EQ_INT(r->nplain, 2);
    CHECK(has(r->plain, r->nplain, 4));
    CHECK(has(r->plain, r->nplain, 5));
    sublist_result_release(r);

    r = match(sl, "foo.bar");
    CHECK_EQ_INT(r->nplain, 4); /* foo.*, foo.>, *.*, > */
    CHECK(has(r->plain, r->nplain, 1));
    CHECK(has(r->plain, r->nplain, 2));
    CHECK(has(r->plain, r->nplain, 3));
    CHECK(has(r->plain, r->nplain, 4));
    sublist_result_release(r);

    r = match(sl, "foo.bar.baz");
    CHECK_EQ_INT(r->nplain, 4); /* foo.>, >, *.bar.>, foo.*.baz */
    CHECK(has(r->plain, r->nplain, 2));
    CHECK(has(r->plain, r->nplain, 4));
    CHECK(has(r->plain, r->nplain, 6));
    CHECK(has(r->plain, r->nplain, 7));
    sublist_result_release(r);

    r = match(sl, "foo.bar.baz.qux.quux");
    CHECK_EQ_INT(r->nplain, 3); /* foo.>, >, *.bar.> : '>' spans several tokens */
    CHECK(has(r->plain, r->nplain, 2));
    CHECK(has(r->plain, r->nplain, 4));
    CHECK(has(r->plain, r->nplain, 6));
    sublist_result_release(r);

    r = match(sl, "x.bar");
    CHECK_EQ_INT(r->nplain, 2); /* *.*, > ("*.bar.>" needs a third token) */
    sublist_result_release(r);

    r = match(sl, "a*.b");
    CHECK_EQ_INT(r->nplain, 3); /* a*.b, *.*, > */
    CHECK(has(r->plain, r->nplain, 8));
    sublist_result_release(r);
    CHECK_EQ_INT(nplain(sl, "ab.b"), 2); /* "a*" is not a wildcard */

    sublist_free(sl);
}

static void test_multiple_subs(void)
{
    sublist_t *sl = sublist_new();
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(ins(sl, "foo.bar", NULL, i), STZ_OK);
    sublist_result_t *r = match(sl, "foo.bar");
    CHECK_EQ_INT(r->nplain, 100);
    for (int i = 0; i < 100; i++)
        CHECK(has(r->plain, r->nplain, i));
    sublist_result_release(r);
    for (int i = 0; i < 100; i += 2)
        CHECK_EQ_INT(rem(sl, "foo.bar", NULL, i), STZ_OK);
    r = match(sl, "foo.bar");
    CHECK_EQ_INT(r->nplain, 50);
    for (int i = 0; i < 100; i++)
        CHECK(has(r->plain, r->nplain, i) == (i % 2 == 1));
    sublist_result_release(r);
    sublist_free(sl);
}

static void test_queues(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "foo.bar", "q1", 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", "q1", 2), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", "q2", 3), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.*", "q1", 4), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.>", "q3", 5), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 6), STZ_OK);
    /* The same item may be in several groups and as a plain subscriber. */
    CHECK_EQ_INT(ins(sl, "foo.bar", "q2", 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 1), STZ_OK);

    sublist_result_t *r = match(sl, "foo.bar");
    CHECK_EQ_INT(r->nplain, 2);
    CHECK(has(r->plain, r->nplain, 6));
    CHECK(has(r->plain, r->nplain, 1));
    CHECK_EQ_INT(r->nqueues, 3);
    const sublist_qgroup_t *g = group(r, "q1");
    CHECK(g);
    CHECK_EQ_INT(g->n, 3); /* merged across "foo.bar" and "foo.*" */
    CHECK(has(g->items, g->n, 1) && has(g->items, g->n, 2) && has(g->items, g->n, 4));
    g = group(r, "q2");
    CHECK(g);
    CHECK_EQ_INT(g->n, 2);
    CHECK(has(g->items, g->n, 3) && has(g->items, g->n, 1));
    g = group(r, "q3");
    CHECK(g);
    CHECK_EQ_INT(g->n, 1);
    CHECK(g->items[0] == IT(5));
    sublist_result_release(r);

    r = match(sl, "foo.baz");
    CHECK_EQ_INT(r->nplain, 0);
    CHECK_EQ_INT(r->nqueues, 2);
    CHECK_EQ_INT(group(r, "q1")->n, 1);
    CHECK_EQ_INT(group(r, "q3")->n, 1);
    CHECK(group(r, "q2") == NULL);
    sublist_result_release(r);

    /* Removing the last member of a group removes the group from results. */
    CHECK_EQ_INT(rem(sl, "foo.>", "q3", 5), STZ_OK);
    CHECK_EQ_INT(rem(sl, "foo.bar", "q2", 3), STZ_OK);
    CHECK_EQ_INT(rem(sl, "foo.bar", "q2", 1), STZ_OK);
    r = match(sl, "foo.bar");
    CHECK_EQ_INT(r->nqueues, 1);
    CHECK_EQ_INT(r->queues[0].n, 3);
    CHECK_EQ_STR(r->queues[0].name, "q1");
    sublist_result_release(r);
    sublist_free(sl);
}

static void test_remove_prune(void)
{
    sublist_t *sl = sublist_new();
    const char *subs[] = {"a", "a.b", "a.b.c", "a.*.c", "a.>", "*", ">", "*.b.>", "x.y.z.w"};
    size_t n = sizeof subs / sizeof *subs;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(ins(sl, subs[i], NULL, (int)i), STZ_OK);
        CHECK_EQ_INT(ins(sl, subs[i], "q", (int)i), STZ_OK);
    }
    CHECK_EQ_INT(stats(sl).subs, 2 * n);
    /* Remove in an order that empties leaves first for some and inner nodes first for others. */
    for (size_t k = 0; k < n; k++) {
        size_t i = (k * 4) % n;
        CHECK_EQ_INT(rem(sl, subs[i], NULL, (int)i), STZ_OK);
        CHECK_EQ_INT(rem(sl, subs[i], NULL, (int)i), STZ_ENOENT);
        CHECK_EQ_INT(rem(sl, subs[i], "q", (int)i), STZ_OK);
        CHECK_EQ_INT(rem(sl, subs[i], "q", (int)i), STZ_ENOENT);
    }
    CHECK_EQ_INT(stats(sl).subs, 0);
    sublist_result_t *r = match(sl, "a.b.c");
    CHECK_EQ_INT(r->nplain, 0);
    CHECK_EQ_INT(r->nqueues, 0);
    sublist_result_release(r);
    /* The trie is usable again after being emptied. */
    CHECK_EQ_INT(ins(sl, "a.b.c", NULL, 1), STZ_OK);
    CHECK_EQ_INT(nplain(sl, "a.b.c"), 1);
    CHECK_EQ_INT(rem(sl, "a.b.c", NULL, 1), STZ_OK);
    CHECK_EQ_INT(stats(sl).subs, 0);
    sublist_free(sl);
}

static void test_errors(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 1), STZ_EEXIST);
    CHECK_EQ_INT(ins(sl, "foo.bar", "q", 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", "q", 1), STZ_EEXIST);
    CHECK_EQ_INT(ins(sl, "foo.*", NULL, 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.*", NULL, 1), STZ_EEXIST);
    CHECK_EQ_INT(stats(sl).subs, 3);

    CHECK_EQ_INT(ins(sl, "foo..bar", NULL, 1), STZ_EINVAL);
    CHECK_EQ_INT(ins(sl, "foo.>.bar", NULL, 1), STZ_EINVAL);
    CHECK_EQ_INT(ins(sl, "", NULL, 1), STZ_EINVAL);
    CHECK_EQ_INT(ins(sl, "foo bar", NULL, 1), STZ_EINVAL);
    CHECK_EQ_INT(ins(sl, "foo", "bad q", 1), STZ_EINVAL);
    CHECK_EQ_INT(sublist_insert(sl, "foo", 3, "", 0, IT(1)), STZ_EINVAL);
    CHECK_EQ_INT(sublist_insert(sl, "foo", 3, NULL, 0, NULL), STZ_EINVAL);
    CHECK_EQ_INT(rem(sl, "foo..bar", NULL, 1), STZ_EINVAL);
    CHECK_EQ_INT(rem(sl, "foo", "bad q", 1), STZ_EINVAL);

    CHECK_EQ_INT(rem(sl, "foo.baz", NULL, 1), STZ_ENOENT);     /* no such node */
    CHECK_EQ_INT(rem(sl, "foo", NULL, 1), STZ_ENOENT);         /* inner node only */
    CHECK_EQ_INT(rem(sl, "foo.bar.baz", NULL, 1), STZ_ENOENT); /* below a leaf */
    CHECK_EQ_INT(rem(sl, "foo.bar", NULL, 2), STZ_ENOENT);     /* other item */
    CHECK_EQ_INT(rem(sl, "foo.bar", "r", 1), STZ_ENOENT);      /* other queue */
    CHECK_EQ_INT(rem(sl, "foo.>", NULL, 1), STZ_ENOENT);
    CHECK_EQ_INT(stats(sl).subs, 3);
    /* A failed remove left the trie intact. */
    CHECK_EQ_INT(nplain(sl, "foo.bar"), 2);
    sublist_free(sl);
}

static void test_cache(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "other.x", NULL, 9), STZ_OK);

    sublist_result_t *r1 = match(sl, "foo.bar");
    CHECK_EQ_INT(stats(sl).cache_hits, 0);
    CHECK_EQ_INT(stats(sl).cache_size, 1);
    sublist_result_t *r2 = match(sl, "foo.bar");
    CHECK_EQ_INT(stats(sl).cache_hits, 1);
    CHECK_EQ_INT(stats(sl).matches, 2);
    CHECK(r1 == r2); /* a hit hands out the same snapshot */
    sublist_result_release(r2);
    sublist_result_release(match(sl, "other.x"));
    CHECK_EQ_INT(stats(sl).cache_size, 2);

    /* Insert invalidates: a new matching sub appears; r1 is an unchanged snapshot. */
    CHECK_EQ_INT(ins(sl, "foo.*", NULL, 2), STZ_OK);
    CHECK_EQ_INT(stats(sl).cache_size, 1); /* only "foo.bar" was dropped */
    r2 = match(sl, "foo.bar");
    CHECK(r2 != r1);
    CHECK_EQ_INT(r2->nplain, 2);
    CHECK(has(r2->plain, r2->nplain, 2));
    CHECK_EQ_INT(r1->nplain, 1);
    CHECK(r1->plain[0] == IT(1));
    sublist_result_release(r1);

    /* "other.x" stayed cached: unrelated inserts do not evict it. */
    uint64_t hits = stats(sl).cache_hits;
    sublist_result_release(match(sl, "other.x"));
    CHECK_EQ_INT(stats(sl).cache_hits, hits + 1);

    /* A literal insert invalidates that subject only. */
    CHECK_EQ_INT(ins(sl, "other.x", "q", 8), STZ_OK);
    sublist_result_t *r3 = match(sl, "other.x");
    CHECK_EQ_INT(r3->nqueues, 1);
    sublist_result_release(r3);

    /* Remove invalidates: the sub disappears; the earlier result is untouched until released. */
    CHECK_EQ_INT(rem(sl, "foo.*", NULL, 2), STZ_OK);
    CHECK_EQ_INT(rem(sl, "foo.bar", NULL, 1), STZ_OK);
    r1 = match(sl, "foo.bar");
    CHECK_EQ_INT(r1->nplain, 0);
    CHECK_EQ_INT(r2->nplain, 2);
    CHECK(has(r2->plain, r2->nplain, 1) && has(r2->plain, r2->nplain, 2));
    sublist_result_release(r2);
    sublist_result_release(r1);

    /* A wildcard insert drops every cached subject it matches, and only those. */
    const char *subjects[] = {"a.b", "a.c", "a.b.c", "b.b", "a"};
    for (int i = 0; i < 5; i++)
        sublist_result_release(match(sl, subjects[i]));
    size_t before = stats(sl).cache_size;
    CHECK_EQ_INT(ins(sl, "a.*", NULL, 3), STZ_OK);
    CHECK_EQ_INT(stats(sl).cache_size, before - 2);
    CHECK_EQ_INT(ins(sl, "*.b.>", NULL, 4), STZ_OK);
    CHECK_EQ_INT(stats(sl).cache_size, before - 3);
    CHECK_EQ_INT(ins(sl, ">", NULL, 5), STZ_OK);
    CHECK_EQ_INT(stats(sl).cache_size, 0);
    CHECK_EQ_INT(nplain(sl, "a.b.c"), 2);
    CHECK_EQ_INT(nplain(sl, "a.b"), 2);
    CHECK_EQ_INT(nplain(sl, "a"), 1);
    sublist_free(sl);
}

static void test_cache_cap(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "s.*", NULL, 1), STZ_OK);
    sublist_result_t *held[3];
    char subj[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(subj, sizeof subj, "s.%d", i);
        sublist_result_t *r = match(sl, subj);
        CHECK_EQ_INT(r->nplain, 1);
        if (i < 3)
            held[i] = r; /* held across evictions */
        else
            sublist_result_release(r);
        CHECK(stats(sl).cache_size <= 4096);
    }
    CHECK(stats(sl).cache_size > 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(held[i]->nplain, 1);
        CHECK(held[i]->plain[0] == IT(1));
        sublist_result_release(held[i]);
    }
    /* Recent subjects still hit after eviction churn. */
    uint64_t hits = stats(sl).cache_hits;
    sublist_result_release(match(sl, "s.9999"));
    CHECK_EQ_INT(stats(sl).cache_hits, hits + 1);
    sublist_free(sl);
}

static void test_free_outstanding(void)
{
    sublist_t *sl = sublist_new();
    CHECK_EQ_INT(ins(sl, "foo.>", "workers", 1), STZ_OK);
    CHECK_EQ_INT(ins(sl, "foo.bar", NULL, 2), STZ_OK);
    sublist_result_t *r = match(sl, "foo.bar");
    sublist_result_t *r2 = match(sl, "foo.bar"); /* two references to the cached result */
    CHECK(r == r2);
    sublist_free(sl);
    CHECK_EQ_INT(r->nplain, 1);
    CHECK(r->plain[0] == IT(2));
    CHECK_EQ_INT(r->nqueues, 1);
    CHECK_EQ_STR(r->queues[0].name, "workers");
    CHECK(r->queues[0].items[0] == IT(1));
    sublist_result_release(r);
    sublist_result_release(r2);
    sublist_result_release(NULL);
}

static void test_long_subjects(void)
{
    sublist_t *sl = sublist_new();
    /* 1000 tokens: deeper than any fixed scratch size. */
    size_t n = 1000 * 2 - 1;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = i % 2 ? '.' : 'a';
    s[n] = '\0';
    CHECK_EQ_INT(sublist_insert(sl, s, n, NULL, 0, IT(1)), STZ_OK);
    char *w = strdup(s);
    w[500 * 2] = '*';
    CHECK_EQ_INT(sublist_insert(sl, w, n, "q", 1, IT(2)), STZ_OK);
    w[n - 1] = '>';
    CHECK_EQ_INT(sublist_insert(sl, w, n, NULL, 0, IT(3)), STZ_OK);
    sublist_result_t *r = sublist_match(sl, s, n);
    CHECK(r);
    CHECK_EQ_INT(r->nplain, 2);
    CHECK_EQ_INT(r->nqueues, 1);
    sublist_result_release(r);
    CHECK_EQ_INT(sublist_remove(sl, w, n, NULL, 0, IT(3)), STZ_OK);
    w[n - 1] = 'a';
    CHECK_EQ_INT(sublist_remove(sl, w, n, "q", 1, IT(2)), STZ_OK);
    CHECK_EQ_INT(sublist_remove(sl, s, n, NULL, 0, IT(1)), STZ_OK);
    CHECK_EQ_INT(stats(sl).subs, 0);
    free(w);
    free(s);
    sublist_free(sl);
}

/* ---- randomized comparison with a brute-force matcher ---------------------------------- */

#define NSUBS 2000

typedef struct ref_sub {
    char subject[48];
    const char *queue; /* NULL, "q1" or "q2" */
    bool live;
} ref_sub_t;

static ref_sub_t refs[NSUBS];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Reference: does the pattern match the literal subject? Token by token, written plainly. */
static bool ref_match(const char *pat, const char *lit)
{
    for (;;) {
        const char *pe = strchr(pat, '.'), *le = strchr(lit, '.');
        size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
        size_t ll = le ? (size_t)(le - lit) : strlen(lit);
        if (pl == 1 && pat[0] == '>') return true;
        if (!(pl == 1 && pat[0] == '*') && (pl != ll || memcmp(pat, lit, pl) != 0)) return false;
        if (!pe || !le) return !pe && !le;
        pat = pe + 1;
        lit = le + 1;
    }
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Compares the sorted members against the expected items of one category. */
static void check_set(void **got, size_t n, const char *lit, const char *queue)
{
    void **exp = malloc(sizeof(void *) * NSUBS);
    size_t ne = 0;
    for (int i = 0; i < NSUBS; i++) {
        if (!refs[i].live || !ref_match(refs[i].subject, lit)) continue;
        bool same = queue ? refs[i].queue && strcmp(refs[i].queue, queue) == 0 : !refs[i].queue;
        if (same) exp[ne++] = IT(i);
    }
    void **sorted = malloc(sizeof(void *) * (n + 1));
    if (n) memcpy(sorted, got, n * sizeof(void *));
    qsort(sorted, n, sizeof(void *), cmp_ptr);
    if (ne != n) fprintf(stderr, "subject %s queue %s: got %zu want %zu\n", lit, queue, n, ne);
    CHECK_EQ_INT(n, ne);
    for (size_t i = 0; i < n; i++)
        CHECK(sorted[i] == exp[i]);
    free(sorted);
    free(exp);
}

static void random_literal(char *out)
{
    static const char *alpha[] = {"a", "b", "c", "d", "e"};
    int ntok = 1 + (int)rnd(5);
    out[0] = '\0';
    for (int t = 0; t < ntok; t++) {
        if (t) strcat(out, ".");
        strcat(out, alpha[rnd(5)]);
    }
}

static void compare_some(sublist_t *sl, int count)
{
    char lit[48];
    for (int k = 0; k < count; k++) {
        random_literal(lit);
        sublist_result_t *r = match(sl, lit);
        CHECK(r);
        check_set(r->plain, r->nplain, lit, NULL);
        size_t want_groups = 0;
        const char *qs[] = {"q1", "q2"};
        for (int q = 0; q < 2; q++) {
            const sublist_qgroup_t *g = group(r, qs[q]);
            if (g) {
                CHECK(g->n >= 1);
                want_groups++;
                check_set(g->items, g->n, lit, qs[q]);
            } else {
                check_set(NULL, 0, lit, qs[q]);
            }
        }
        CHECK_EQ_INT(r->nqueues, want_groups);
        sublist_result_release(r);
    }
}

static void test_random(void)
{
    static const char *alpha[] = {"a", "b", "c", "d", "*"};
    sublist_t *sl = sublist_new();
    for (int i = 0; i < NSUBS; i++) {
        ref_sub_t *s = &refs[i];
        int ntok = 1 + (int)rnd(4);
        s->subject[0] = '\0';
        for (int t = 0; t < ntok; t++) {
            if (t) strcat(s->subject, ".");
            strcat(s->subject, t == ntok - 1 && rnd(6) == 0 ? ">" : alpha[rnd(5)]);
        }
        unsigned q = rnd(5);
        s->queue = q == 0 ? "q1" : q == 1 ? "q2" : NULL;
        CHECK_EQ_INT(ins(sl, s->subject, s->queue, i), STZ_OK);
        s->live = true;
        if (i % 100 == 99) compare_some(sl, 30); /* exercises selective invalidation */
    }
    CHECK_EQ_INT(stats(sl).subs, NSUBS);
    compare_some(sl, 500);
    compare_some(sl, 500); /* mostly cache hits now */
    CHECK(stats(sl).cache_hits > 0);

    /* Remove a random half, interleaved with matching. */
    int removed = 0;
    while (removed < NSUBS / 2) {
        int i = (int)rnd(NSUBS);
        if (!refs[i].live) {
            CHECK_EQ_INT(rem(sl, refs[i].subject, refs[i].queue, i), STZ_ENOENT);
            continue;
        }
        CHECK_EQ_INT(rem(sl, refs[i].subject, refs[i].queue, i), STZ_OK);
        refs[i].live = false;
        if (++removed % 50 == 0) compare_some(sl, 20);
    }
    CHECK_EQ_INT(stats(sl).subs, NSUBS - NSUBS / 2);
    compare_some(sl, 500);

    /* Remove the rest: the trie empties completely. */
    for (int i = 0; i < NSUBS; i++) {
        if (!refs[i].live) continue;
        CHECK_EQ_INT(rem(sl, refs[i].subject, refs[i].queue, i), STZ_OK);
        refs[i].live = false;
    }
    CHECK_EQ_INT(stats(sl).subs, 0);
    compare_some(sl, 100);
    sublist_free(sl);
}

int main(void)
{
    TEST_RUN(test_subject_valid);
    TEST_RUN(test_literal);
    TEST_RUN(test_wildcards);
    TEST_RUN(test_multiple_subs);
    TEST_RUN(test_queues);
    TEST_RUN(test_remove_prune);
    TEST_RUN(test_errors);
    TEST_RUN(test_cache);
    TEST_RUN(test_cache_cap);
    TEST_RUN(test_free_outstanding);
    TEST_RUN(test_long_subjects);
    TEST_RUN(test_random);
    return test_summary();
}

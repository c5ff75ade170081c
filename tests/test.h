/* test.h: the minimal assertion kit shared by unit and integration tests.
 * A failed CHECK prints file:line and the expression, and the test program exits 1.
 * TEST_RUN runs one test function and reports it; main returns test_summary(). */
#ifndef STANZA_TEST_H
#define STANZA_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_;
static int test_count_;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, a_, b_);                                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(p, len, s)                                                                       \
    do {                                                                                           \
        size_t l_ = (len);                                                                         \
        if (l_ != strlen(s) || (l_ && memcmp((p), (s), l_) != 0)) {                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == \"%s\" (got \"%.*s\")\n", __FILE__,        \
                    __LINE__, #p, (s), (int)l_, (const char *)(p));                                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define TEST_RUN(fn)                                                                               \
    do {                                                                                           \
        test_count_++;                                                                             \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

static inline int test_summary(void)
{
    fprintf(stderr, "%d tests passed\n", test_count_);
    return test_failures_ ? 1 : 0;
}

#endif

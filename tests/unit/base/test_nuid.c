/* Unit tests for nuid: the form of the names, no repeats, and no visible bias or sequence. */
#include "nuid.h"
#include "test.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 20000

static int index_of(char c)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const char *p = strchr(alphabet, c);
    return c && p ? (int)(p - alphabet) : -1;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_form_and_uniqueness(void)
{
    static char names[N][NUID_LEN + 1];
    for (int i = 0; i < N; i++) {
        nuid_next(names[i]);
        CHECK_EQ_INT(strlen(names[i]), NUID_LEN);
        for (int k = 0; k < NUID_LEN; k++)
            CHECK(index_of(names[i][k]) >= 0);
    }
    qsort(names, N, sizeof names[0], cmp);
    for (int i = 1; i < N; i++)
        CHECK(strcmp(names[i - 1], names[i]) != 0);
}

/* Consecutive names share no more characters (position by position) than chance gives:
 * 22/62 = 0.35 on average; a counter-like tail (NATS's nuid) would share ~20. */
static void test_consecutive_names_unrelated(void)
{
    char a[NUID_LEN + 1], b[NUID_LEN + 1];
    nuid_next(a);
    long same = 0;
    for (int i = 0; i < N; i++) {
        nuid_next(b);
        for (int k = 0; k < NUID_LEN; k++)
            same += a[k] == b[k];
        memcpy(a, b, sizeof a);
    }
    double mean = (double)same / N;
    fprintf(stderr, "   %.3f equal positions between consecutive names (chance: %.3f)\n", mean,
            (double)NUID_LEN / 62);
    CHECK(mean < 0.5);
}

/* Every character about equally often: 20000 * 22 / 62 = 7097 each; a biased mapping (bytes
 * modulo 62 without rejection) makes the first 8 characters 25% more frequent. */
static void test_no_bias(void)
{
    long count[62] = {0};
    char s[NUID_LEN + 1];
    for (int i = 0; i < N; i++) {
        nuid_next(s);
        for (int k = 0; k < NUID_LEN; k++)
            count[index_of(s[k])]++;
    }
    double expect = (double)N * NUID_LEN / 62;
    for (int c = 0; c < 62; c++)
        CHECK(count[c] > expect * 0.9 && count[c] < expect * 1.1);
}

/* A forked child does not hand out the names its parent will. */
static void test_fork(void)
{
    char parent[NUID_LEN + 1], first[NUID_LEN + 1];
    nuid_next(first); /* the pool is filled */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char child[NUID_LEN + 1];
        nuid_next(child);
        _exit(write(fds[1], child, NUID_LEN) == NUID_LEN ? 0 : 1);
    }
    char child[NUID_LEN + 1] = {0};
    CHECK(read(fds[0], child, NUID_LEN) == NUID_LEN);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    nuid_next(parent);
    CHECK(strcmp(parent, child) != 0);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    TEST_RUN(test_form_and_uniqueness);
    TEST_RUN(test_consecutive_names_unrelated);
    TEST_RUN(test_no_bias);
    TEST_RUN(test_fork);
    return test_summary();
}

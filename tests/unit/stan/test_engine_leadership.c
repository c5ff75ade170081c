/* A clustered node that loses the Raft lead with a batch staged: the log refuses the entry
 * (STZ_ENOTLEADER), and every request in the batch is answered with what happened (the lead was
 * lost, the change may still be made by the next leader: send it again), not with a store error,
 * which would send an operator to look at a disk that is fine. The log here is a stand-in that
 * refuses every entry, as libraft does once the node no longer leads. */
#include "engine_fixture.h"
#include "stan_ctx.h" /* the engine's store, to attach the log to */
#include "test.h"

static int refuse(void *arg, void *data, size_t len, uint64_t *index)
{
    (void)arg, (void)data, (void)len, (void)index; /* the store keeps (and frees) the entry */
    return -1;
}

static bool says_lead_lost(const char *error)
{
    bool ok = error && strstr(error, "stan: leadership lost while ") != NULL;
    if (!ok) fprintf(stderr, "error: \"%s\"\n", error ? error : "(none)");
    return ok;
}

static void test_replies_say_the_lead_was_lost(void)
{
    ef_t f;
    ef_init(&f);
    ef_start(&f);
    CHECK_EQ_STR(ef_connect(&f, "c1"), "");
    CHECK_EQ_STR(ef_connect(&f, "c2"), "");
    ef_sub_t *s = ef_subscribe(&f, "c1", "jobs", NULL);
    CHECK(s != NULL);
    ef_settle(&f);
    store_log_t log = {.propose = refuse};
    CHECK_EQ_INT(store_set_log(f.st->store, &log), STZ_OK);

    CHECK(says_lead_lost(ef_publish(&f, "c1", "jobs", "one")));
    CHECK(says_lead_lost(ef_connect(&f, "c3")));
    CHECK(ef_subscribe(&f, "c1", "other", NULL) == NULL);
    CHECK(says_lead_lost(f.error));
    CHECK(says_lead_lost(ef_unsubscribe(&f, s, false)));
    CHECK(says_lead_lost(ef_close(&f, "c2")));
    ef_done(&f);
}

int main(void)
{
    TEST_RUN(test_replies_say_the_lead_was_lost);
    return test_summary();
}

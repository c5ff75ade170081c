/* it_stan_ns_creds: `-ns URL --nats_creds FILE` (YAML `credentials`) against Debian's nats-server
 * in operator (JWT) mode, with a standard NATS .creds file: the operator, account and user JWTs
 * and nkeys are made here (harness_jwt.h), nats-server trusts the operator and knows the account
 * from its config (resolver MEMORY, preloaded). A user of that account carries stanzad's engine
 * and a STAN client's round trip through it; a user signed by an account nats-server does not
 * know stops stanzad at start with NATS's reason, quickly; a missing file is refused by the
 * configuration check with its name. The fixtures are first proven with libnats alone, so a
 * failure below them is stanzad's, not the test's. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_cluster.h"
#include "harness_jwt.h"
#include "harness_stan.h"
#include "test.h"

#define T_MS 10000
#define REFUSED_WITHIN_MS 5000 /* a refused start is an answer from NATS, not a timeout */

/* One operator, its account (known to nats-server) with two users, and a second account it does
 * not know with a user of its own; a nats-server trusting the operator. */
static struct realm {
    char dir[PATH_MAX - 64];
    char conf[PATH_MAX];
    char stanzad_creds[PATH_MAX], client_creds[PATH_MAX], foreign_creds[PATH_MAX];
    char missing_creds[PATH_MAX];
    const char *natsd_flags[3]; /* -c conf */
    struct hnatsd natsd;
} rl;

static void write_user_creds(const struct hnkey *acct, const char *name, const char *path)
{
    struct hnkey user;
    hnkey_make(&user, 'U');
    char *jwt = hjwt_make(acct, &user, name);
    hjwt_write_creds(path, jwt, &user);
    free(jwt);
    hnkey_free(&user);
}

/* nats-server's operator-mode configuration: the operator JWT in a file, the account's JWT
 * preloaded into its in-memory resolver. */
static void write_natsd_conf(const struct hnkey *op, const struct hnkey *acct)
{
    char path[PATH_MAX];
    char *op_jwt = hjwt_make(op, op, "stanza-test-operator");
    snprintf(path, sizeof path, "%s/operator.jwt", rl.dir);
    CHECK(hfile_write(path, op_jwt) == 0);
    char *acct_jwt = hjwt_make(op, acct, "stanza-test-account");
    size_t len = strlen(acct_jwt) + 2 * PATH_MAX;
    char *text = malloc(len);
    CHECK(text != NULL);
    snprintf(text, len,
             "operator: \"%s\"\nresolver: MEMORY\nresolver_preload: {\n  %s: \"%s\"\n}\n", path,
             acct->pub, acct_jwt);
    snprintf(rl.conf, sizeof rl.conf, "%s/nats-server.conf", rl.dir);
    CHECK(hfile_write(rl.conf, text) == 0);
    free(text);
    free(acct_jwt);
    free(op_jwt);
}

static void realm_make(void)
{
    CHECK(hmkdtemp(rl.dir, sizeof rl.dir) == 0);
    struct hnkey op, acct, stranger;
    hnkey_make(&op, 'O');
    hnkey_make(&acct, 'A');
    hnkey_make(&stranger, 'A');
    write_natsd_conf(&op, &acct);
    snprintf(rl.stanzad_creds, sizeof rl.stanzad_creds, "%s/stanzad.creds", rl.dir);
    snprintf(rl.client_creds, sizeof rl.client_creds, "%s/client.creds", rl.dir);
    snprintf(rl.foreign_creds, sizeof rl.foreign_creds, "%s/foreign.creds", rl.dir);
    snprintf(rl.missing_creds, sizeof rl.missing_creds, "%s/absent.creds", rl.dir);
    write_user_creds(&acct, "stanzad", rl.stanzad_creds);
    write_user_creds(&acct, "client", rl.client_creds);
    write_user_creds(&stranger, "foreign", rl.foreign_creds);
    hnkey_free(&stranger);
    hnkey_free(&acct);
    hnkey_free(&op);

    rl.natsd_flags[0] = "-c";
    rl.natsd_flags[1] = rl.conf;
    rl.natsd_flags[2] = NULL;
    CHECK(hnatsd_start_args(&rl.natsd, "jwt", rl.natsd_flags) == 0);
}

static void realm_remove(void)
{
    /* nats-server 2.9 exits 1 on SIGTERM; what matters is that it exited (no SIGKILL: -1). */
    CHECK(hnatsd_stop(&rl.natsd, SIGTERM) >= 0);
    hnatsd_cleanup(&rl.natsd);
    hremove_tree(rl.dir);
}

static natsOptions *creds_options(const char *creds)
{
    natsOptions *no = NULL;
    CHECK(natsOptions_Create(&no) == NATS_OK);
    CHECK(natsOptions_SetURL(no, rl.natsd.url) == NATS_OK);
    CHECK(natsOptions_SetTimeout(no, T_MS) == NATS_OK);
    CHECK(natsOptions_SetUserCredentialsFromFiles(no, creds, NULL) == NATS_OK);
    return no;
}

/* The fixtures themselves, with libnats alone: nats-server takes the account's users (a core
 * round trip: subscribe, publish, receive) and refuses the stranger's. */
static void test_fixtures_accepted_by_nats_server(void)
{
    natsOptions *no = creds_options(rl.client_creds);
    natsConnection *nc = NULL;
    natsStatus st = natsConnection_Connect(&nc, no);
    if (st != NATS_OK) {
        fprintf(stderr, "connect: %s (%s)\n", natsStatus_GetText(st), nats_GetLastError(NULL));
        hfile_dump("nats-server", rl.natsd.log);
    }
    CHECK(st == NATS_OK);
    struct hcounter rx;
    hcounter_init(&rx);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_Subscribe(&sub, nc, "creds.core", hcounter_msg_handler, &rx) == NATS_OK);
    CHECK(natsConnection_PublishString(nc, "creds.core", "hello") == NATS_OK);
    CHECK(natsConnection_Flush(nc) == NATS_OK);
    CHECK(hcounter_wait(&rx, 1, T_MS));
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(no);
    hcounter_destroy(&rx);

    no = creds_options(rl.foreign_creds);
    nc = NULL;
    CHECK(natsConnection_Connect(&nc, no) != NATS_OK);
    CHECK(hstan_last_error_contains("Authorization Violation"));
    natsOptions_Destroy(no);
}

/* A STAN client of the account's second user publishes and receives one message through the
 * stanzad that runs on the first. */
static void stan_round_trip(const char *client_id)
{
    natsOptions *no = creds_options(rl.client_creds);
    stanConnOptions *co = NULL;
    CHECK(stanConnOptions_Create(&co) == NATS_OK);
    CHECK(stanConnOptions_SetNATSOptions(co, no) == NATS_OK);
    CHECK(stanConnOptions_SetConnectionWait(co, HSTAN_CONNECT_WAIT_MS) == NATS_OK);
    stanConnection *sc = NULL;
    natsStatus st = stanConnection_Connect(&sc, HSTAN_CLUSTER, client_id, co);
    if (st != NATS_OK)
        fprintf(stderr, "STAN connect: %s (%s)\n", natsStatus_GetText(st), nats_GetLastError(NULL));
    CHECK(st == NATS_OK);
    hstan_round_trip(sc, "creds.ch", client_id);
    CHECK(stanConnection_Close(sc) == NATS_OK);
    stanConnection_Destroy(sc);
    stanConnOptions_Destroy(co);
    natsOptions_Destroy(no);
}

static void test_creds_flag(void)
{
    struct hserver s;
    CHECK(harness_server_start_ns(&s, NULL,
                                  (const char *const[]){"-ns", rl.natsd.url, "--nats_creds",
                                                        rl.stanzad_creds, NULL}) == 0);
    stan_round_trip("creds-flag");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

static void test_creds_yaml_key(void)
{
    char conf[PATH_MAX + 32];
    snprintf(conf, sizeof conf, "credentials: \"%s\"\n", rl.stanzad_creds);
    struct hserver s;
    CHECK(harness_server_start_ns(&s, conf, (const char *const[]){"-ns", rl.natsd.url, NULL}) == 0);
    stan_round_trip("creds-yaml");
    CHECK_EQ_INT(harness_server_stop(&s, SIGTERM), 0);
}

/* stanzad with creds (NULL: none) must not start, and must say so soon; its log (in_log) or
 * its standard error names the reason (want). */
static void expect_refused(const char *creds, const char *want, bool in_log)
{
    struct hserver s;
    fprintf(stderr, "(a start-up failure with its log is expected next)\n");
    int64_t t0 = harness_now_ms();
    const char *args[] = {"-ns", rl.natsd.url, creds ? "--nats_creds" : NULL, creds, NULL};
    CHECK(harness_server_start_ns(&s, NULL, args) != 0);
    int64_t took = harness_now_ms() - t0;
    fprintf(stderr, "refused after %lld ms\n", (long long)took);
    CHECK_EQ_INT(s.exit_status, 1);
    CHECK(took < REFUSED_WITHIN_MS);
    if (hfile_count(in_log ? s.log : s.out, want) == 0) {
        harness_dump_log(&s);
        fprintf(stderr, "%s lacks \"%s\"\n", in_log ? "log" : "output", want);
        CHECK(0);
    }
    hremove_tree(s.dir);
}

static void test_user_of_unknown_account_refused(void)
{
    expect_refused(rl.foreign_creds, "Authorization Violation", true);
    /* Nor does it take anyone without credentials: the starts above used theirs. */
    expect_refused(NULL, "Authorization Violation", true);
}

static void test_missing_creds_file_refused(void)
{
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "credentials: cannot read \"%s\"", rl.missing_creds);
    expect_refused(rl.missing_creds, want, false);
}

int main(void)
{
    realm_make();
    HSTAN_RUN(test_fixtures_accepted_by_nats_server);
    HSTAN_RUN(test_creds_flag);
    HSTAN_RUN(test_creds_yaml_key);
    HSTAN_RUN(test_user_of_unknown_account_refused);
    HSTAN_RUN(test_missing_creds_file_refused);
    realm_remove();
    nats_CloseAndWait(5000);
    return test_summary();
}

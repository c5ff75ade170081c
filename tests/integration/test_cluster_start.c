/* it_cluster_start: the routed embedded server's start-up as the official clients' suites and
 * operators write it: a cluster URL and routes naming a host ("localhost", as nats-server
 * takes them) form a route; a cluster port that cannot be bound stops stanzad at once with the
 * reason, instead of a server that keeps running with its client port open but no routes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_cluster.h"
#include "test.h"

#define T_MS 10000

static void test_host_names_in_cluster_urls(void)
{
    int ca = harness_free_port(), cb = harness_free_port();
    char listen_a[64], listen_b[64], route_a[64];
    snprintf(listen_a, sizeof listen_a, "nats://localhost:%d", ca);
    snprintf(listen_b, sizeof listen_b, "nats://localhost:%d", cb);
    snprintf(route_a, sizeof route_a, "nats://localhost:%d", ca);
    struct hserver a, b;
    CHECK(harness_server_start(
              &a, NULL, (const char *const[]){"--cluster", listen_a, "-cid", "a", NULL}) == 0);
    CHECK(harness_server_start(&b, NULL,
                               (const char *const[]){"--cluster", listen_b, "--routes", route_a,
                                                     "-cid", "b", NULL}) == 0);
    natsConnection *na = NULL, *nb = NULL;
    CHECK(hcluster_connect(a.url, &na) == NATS_OK);
    CHECK(hcluster_connect(b.url, &nb) == NATS_OK);
    /* A subscriber on b hears a publisher on a: the route by names carries interest. */
    CHECK(hcluster_wait_propagated(na, nb, T_MS));
    natsConnection_Destroy(na);
    natsConnection_Destroy(nb);
    CHECK_EQ_INT(harness_server_stop(&b, SIGTERM), 0);
    CHECK_EQ_INT(harness_server_stop(&a, SIGTERM), 0);
}

static void test_cluster_port_taken(void)
{
    struct hnatsd taken; /* a nats-server holds the cluster port */
    CHECK(hnatsd_start(&taken, "holder", -1, NULL, NULL) == 0);
    char listen[64];
    snprintf(listen, sizeof listen, "nats://127.0.0.1:%d", taken.cport);
    struct hserver s;
    fprintf(stderr, "(a start-up failure with its log is expected next)\n");
    CHECK(harness_server_start(&s, NULL, (const char *const[]){"--cluster", listen, NULL}) != 0);
    CHECK_EQ_INT(s.exit_status, 1); /* it exits at once, not killed at the deadline */
    CHECK(hfile_count(s.log, "cannot listen for routes") > 0);
    hremove_tree(s.dir);
    hnatsd_cleanup(&taken);
}

int main(void)
{
    TEST_RUN(test_host_names_in_cluster_urls);
    TEST_RUN(test_cluster_port_taken);
    nats_CloseAndWait(5000);
    return test_summary();
}

/* harness_cluster: nats-server processes, routed stanzad nodes, and the waits for interest to
 * cross a route; see harness_cluster.h. */
#include "harness_cluster.h"
#include "harness_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *hnatsd_bin(void)
{
    const char *bin = getenv("NATS_SERVER");
    return bin && *bin ? bin : "/usr/sbin/nats-server";
}

void hcluster_routes_add(char *buf, size_t len, int cport)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%snats://127.0.0.1:%d", used ? "," : "", cport);
}

/* ---- nats-server ------------------------------------------------------------------------ */

static int hnatsd_spawn(struct hnatsd *n)
{
    char port[16], cluster[80];
    snprintf(port, sizeof port, "%d", n->port);
    const char *argv[40];
    size_t i = 0;
    argv[i++] = hnatsd_bin();
    argv[i++] = "-a";
    argv[i++] = "127.0.0.1";
    argv[i++] = "-p";
    argv[i++] = port;
    argv[i++] = "-n";
    argv[i++] = n->name;
    argv[i++] = "-l";
    argv[i++] = n->log;
    if (n->cport) {
        snprintf(cluster, sizeof cluster, "nats://127.0.0.1:%d", n->cport);
        argv[i++] = "--cluster";
        argv[i++] = cluster;
    }
    if (n->routes[0]) {
        argv[i++] = "--routes";
        argv[i++] = n->routes;
    }
    if (n->cluster_name[0]) {
        argv[i++] = "--cluster_name";
        argv[i++] = n->cluster_name;
    }
    for (size_t k = 0; n->extra && n->extra[k] && i < 39; k++)
        argv[i++] = n->extra[k];
    argv[i] = NULL;
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s/server.out", n->dir);
    return hproc_spawn(&n->proc, argv, n->dir, out, out);
}

/* True once its log says a port it wanted was taken. */
static bool hnatsd_port_taken(const struct hnatsd *n)
{
    char *text = hfile_read(n->log);
    bool taken = text && strcasestr(text, "in use");
    free(text);
    return taken;
}

/* Spawns and waits for the client port; retries a start that lost a port race while the
 * deadline allows. */
static int hnatsd_run(struct hnatsd *n)
{
    int64_t deadline = harness_now_ms() + HARNESS_START_TIMEOUT_MS;
    for (;;) {
        if (hnatsd_spawn(n) != 0) return -1;
        if (hproc_wait_port(&n->proc, n->port, HARNESS_START_TIMEOUT_MS) == 0) return 0;
        bool exited = n->proc.pid == 0;
        if (!exited) hproc_stop(&n->proc, SIGKILL, HARNESS_STOP_TIMEOUT_MS);
        if (exited && hnatsd_port_taken(n) && harness_now_ms() < deadline) {
            harness_short_wait();
            continue;
        }
        fprintf(stderr, "harness: %s (%s) did not start on port %d (status %d)\n", hnatsd_bin(),
                n->name, n->port, n->proc.exit_status);
        hnatsd_dump_log(n);
        return -1;
    }
}

/* hnatsd_start without clearing n (its extra flags stay). */
static int hnatsd_start_keep(struct hnatsd *n, const char *name, int cport, const char *routes,
                             const char *cluster_name)
{
    if (access(hnatsd_bin(), X_OK) != 0) {
        fprintf(stderr, "harness: %s is not executable (set NATS_SERVER)\n", hnatsd_bin());
        return -1;
    }
    if (hmkdtemp(n->dir, sizeof n->dir) != 0) return -1;
    snprintf(n->log, sizeof n->log, "%s/server.log", n->dir);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->routes, sizeof n->routes, "%s", routes ? routes : "");
    snprintf(n->cluster_name, sizeof n->cluster_name, "%s", cluster_name ? cluster_name : "");
    n->port = harness_free_port();
    n->cport = cport < 0 ? harness_free_port() : cport;
    if (n->port <= 0 || n->cport < 0) return -1;
    snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    if (n->cport) snprintf(n->curl, sizeof n->curl, "nats://127.0.0.1:%d", n->cport);
    return hnatsd_run(n);
}

int hnatsd_start(struct hnatsd *n, const char *name, int cport, const char *routes,
                 const char *cluster_name)
{
    memset(n, 0, sizeof *n);
    return hnatsd_start_keep(n, name, cport, routes, cluster_name);
}

int hnatsd_start_args(struct hnatsd *n, const char *name, const char *const *extra)
{
    memset(n, 0, sizeof *n);
    n->extra = extra;
    return hnatsd_start_keep(n, name, 0, NULL, NULL);
}

int hnatsd_stop(struct hnatsd *n, int sig)
{
    if (n->proc.pid <= 0) return n->proc.exit_status;
    return hproc_stop(&n->proc, sig, HARNESS_STOP_TIMEOUT_MS);
}

int hnatsd_restart(struct hnatsd *n)
{
    if (n->proc.pid > 0) {
        fprintf(stderr, "harness: restart: %s is still running\n", n->name);
        return -1;
    }
    return hnatsd_run(n);
}

void hnatsd_cleanup(struct hnatsd *n)
{
    hnatsd_stop(n, SIGTERM);
    if (n->dir[0] && !getenv("HARNESS_KEEP")) hremove_tree(n->dir);
    n->dir[0] = '\0';
}

void hnatsd_dump_log(const struct hnatsd *n)
{
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s/server.out", n->dir);
    hfile_dump("nats-server log", n->log);
    hfile_dump("nats-server output", out);
}

/* ---- stanzad nodes ---------------------------------------------------------------------- */

int hnode_start(struct hnode *n, int cport, const char *routes, const char *cluster_name,
                const char *cid, const char *const *extra)
{
    memset(n, 0, sizeof *n);
    n->cport = cport < 0 ? harness_free_port() : cport;
    if (n->cport <= 0) return -1;
    snprintf(n->curl, sizeof n->curl, "nats://127.0.0.1:%d", n->cport);
    snprintf(n->routes, sizeof n->routes, "%s", routes ? routes : "");
    snprintf(n->cluster_name, sizeof n->cluster_name, "%s", cluster_name ? cluster_name : "");
    snprintf(n->cid, sizeof n->cid, "%s", cid);
    size_t i = 0, max = sizeof n->args / sizeof n->args[0] - 1;
    n->args[i++] = "--cluster";
    n->args[i++] = n->curl;
    if (n->routes[0]) {
        n->args[i++] = "--routes";
        n->args[i++] = n->routes;
    }
    if (n->cluster_name[0]) {
        n->args[i++] = "--cluster_name";
        n->args[i++] = n->cluster_name;
    }
    n->args[i++] = "-cid";
    n->args[i++] = n->cid;
    for (size_t k = 0; extra && extra[k]; k++) {
        if (i == max) {
            fprintf(stderr, "harness: hnode_start: too many extra args\n");
            return -1;
        }
        n->args[i++] = extra[k];
    }
    n->args[i] = NULL;
    return harness_server_start(&n->s, NULL, n->args);
}

int hnode_restart(struct hnode *n)
{
    return harness_server_restart(&n->s, n->args);
}

int hnode_kill(struct hnode *n)
{
    return harness_server_halt(&n->s, SIGKILL) == 128 + SIGKILL ? 0 : -1;
}

int hnode_stop(struct hnode *n)
{
    if (n->s.pid <= 0) {
        if (n->s.dir[0] && !getenv("HARNESS_KEEP")) hremove_tree(n->s.dir);
        return n->s.exit_status;
    }
    return harness_server_stop(&n->s, SIGTERM);
}

int hcluster_start(struct hnode *nodes, int count, const char *cluster_name,
                   const char *const *extra)
{
    if (count < 1 || count > HCLUSTER_MAX) return -1;
    int cports[HCLUSTER_MAX];
    for (int i = 0; i < count; i++) {
        cports[i] = harness_free_port();
        if (cports[i] <= 0) return -1;
    }
    for (int i = 0; i < count; i++) {
        char routes[HCLUSTER_ROUTES_LEN] = "", cid[32];
        for (int k = 0; k < count; k++)
            if (k != i) hcluster_routes_add(routes, sizeof routes, cports[k]);
        if (i == 0)
            snprintf(cid, sizeof cid, "test-cluster");
        else
            snprintf(cid, sizeof cid, "test-cluster-%d", i);
        if (hnode_start(&nodes[i], cports[i], routes, cluster_name, cid, extra) != 0) {
            fprintf(stderr, "harness: cluster node %d did not start\n", i);
            hcluster_stop(nodes, i);
            return -1;
        }
    }
    return 0;
}

int hcluster_stop(struct hnode *nodes, int count)
{
    int rc = 0;
    for (int i = 0; i < count; i++)
        if (hnode_stop(&nodes[i]) != 0) rc = -1;
    return rc;
}

/* ---- clients and waits ------------------------------------------------------------------ */

natsStatus hcluster_connect(const char *url, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus st = natsOptions_Create(&opts);
    if (st == NATS_OK) st = natsOptions_SetURL(opts, url);
    if (st == NATS_OK) st = natsOptions_SetAllowReconnect(opts, false);
    if (st == NATS_OK) st = natsOptions_SetTimeout(opts, 5000);
    if (st == NATS_OK) st = natsConnection_Connect(nc, opts);
    if (st != NATS_OK)
        fprintf(stderr, "harness: libnats connect to %s: %s (%s)\n", url, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    natsOptions_Destroy(opts);
    return st;
}

#define PROBE_STEP_MS 20

bool hcluster_wait_propagated(natsConnection *pub, natsConnection *sub, int timeout_ms)
{
    static int probes;
    char subject[96];
    snprintf(subject, sizeof subject, "_HCLUSTER.probe.%d.%d", (int)getpid(), ++probes);
    natsSubscription *s = NULL;
    if (natsConnection_SubscribeSync(&s, sub, subject) != NATS_OK ||
        natsConnection_Flush(sub) != NATS_OK) {
        fprintf(stderr, "harness: probe subscription failed: %s\n", nats_GetLastError(NULL));
        natsSubscription_Destroy(s);
        return false;
    }
    int64_t deadline = harness_now_ms() + timeout_ms;
    bool got = false;
    while (!got && harness_now_ms() < deadline) {
        if (natsConnection_PublishString(pub, subject, "probe") != NATS_OK ||
            natsConnection_Flush(pub) != NATS_OK)
            break;
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, s, PROBE_STEP_MS) == NATS_OK) {
            natsMsg_Destroy(m);
            got = true;
        }
    }
    natsSubscription_Unsubscribe(s);
    natsSubscription_Destroy(s);
    if (!got) fprintf(stderr, "harness: interest on %s did not propagate in time\n", subject);
    return got;
}

bool hcluster_publish_until(natsConnection *pub, const char *subject, const char *payload,
                            struct hcounter *rx, int64_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (hcounter_get(rx) < n) {
        if (harness_now_ms() >= deadline) return false;
        if (natsConnection_PublishString(pub, subject, payload) != NATS_OK ||
            natsConnection_Flush(pub) != NATS_OK)
            return false;
        hcounter_wait(rx, n, PROBE_STEP_MS);
    }
    return true;
}

int hcluster_count_until(natsSubscription *sub, const char *fence, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    int n = 0;
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        natsMsg *m = NULL;
        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK) {
            fprintf(stderr, "harness: fence \"%s\" not received (%d messages before)\n", fence, n);
            return -1;
        }
        bool is_fence = natsMsg_GetDataLength(m) == (int)strlen(fence) &&
                        memcmp(natsMsg_GetData(m), fence, strlen(fence)) == 0;
        natsMsg_Destroy(m);
        if (is_fence) return n;
        n++;
    }
}

json_t *hcluster_info(int port)
{
    int fd = hraw_connect(port);
    if (fd < 0) return NULL;
    char line[8192];
    int n = hraw_read_line(fd, line, sizeof line, 5000);
    close(fd);
    if (n < 5 || strncmp(line, "INFO ", 5) != 0) {
        fprintf(stderr, "harness: no INFO from port %d\n", port);
        return NULL;
    }
    json_t *o = json_loads(line + 5, 0, NULL);
    if (!o) fprintf(stderr, "harness: bad INFO from port %d: %s\n", port, line);
    return o;
}

bool hcluster_info_lists(json_t *info, int port)
{
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    json_t *urls = json_object_get(info, "connect_urls"), *v;
    size_t i;
    json_array_foreach(urls, i, v) if (json_is_string(v) &&
                                       strcmp(json_string_value(v), want) == 0) return true;
    char *text = json_dumps(info, JSON_COMPACT);
    fprintf(stderr, "harness: INFO does not list %s: %s\n", want, text);
    free(text);
    return false;
}

/* A libnats failure in a helper that has no way to report it but to end the test. */
static void die_on(natsStatus st, const char *what, const char *subject)
{
    if (st == NATS_OK) return;
    fprintf(stderr, "harness: %s %s: %s (%s)\n", what, subject, natsStatus_GetText(st),
            nats_GetLastError(NULL));
    exit(1);
}

natsSubscription *hcluster_sub_or_die(natsConnection *c, const char *subject, const char *queue)
{
    natsSubscription *s = NULL;
    natsStatus st = queue ? natsConnection_QueueSubscribeSync(&s, c, subject, queue)
                          : natsConnection_SubscribeSync(&s, c, subject);
    if (st == NATS_OK) st = natsConnection_Flush(c);
    die_on(st, "subscribe", subject);
    return s;
}

void hcluster_pub_or_die(natsConnection *c, const char *subject, int n, bool fence)
{
    char payload[32];
    natsStatus st = NATS_OK;
    for (int i = 0; i < n && st == NATS_OK; i++) {
        snprintf(payload, sizeof payload, "m%d", i);
        st = natsConnection_PublishString(c, subject, payload);
    }
    if (st == NATS_OK && fence) st = natsConnection_PublishString(c, subject, "fence");
    if (st == NATS_OK) st = natsConnection_Flush(c);
    die_on(st, "publish to", subject);
}

/* bench/failover_pub.c: a client publishing synchronously in a loop against a streaming cluster,
 * for bench/failover.sh (issue 11: leader killed -> first PubAck from the new leader).
 *
 * usage: failover_pub URLS CLUSTER_ID CHANNEL ACK_WAIT_MS
 *
 * URLS: the nodes' client URLs, comma-separated, tried in that order (the script puts the
 * leader's first, so the kill also costs the client its connection, the case users meet).
 * Connects a libnats STAN client (reconnecting forever, 20 ms between rounds of the list;
 * PubAckWait ACK_WAIT_MS, which is the resolution of the measurement: a publish sent before the
 * new leader listens is lost and retried after that long), then publishes 64-byte messages
 * one at a time until SIGTERM. On stdout, flushed line by line:
 *   READY                          the first PubAck arrived
 *   GAP PREV_NS NOW_NS             a PubAck at CLOCK_REALTIME NOW_NS more than 20 ms after the
 *                                  previous one (PREV_NS): the service was interrupted
 *   ERR NOW_NS TEXT                the first of consecutive failed publishes
 *   RECONNECT NOW_NS               the streaming session was lost and a new one was made
 * The script compares NOW_NS with the time it sent SIGKILL. Exits 0 on SIGTERM, 1 if it never
 * connects, 2 on bad arguments.
 *
 * Built by bench/failover.sh: cc -O2 -DNATS_HAS_STREAMING failover_pub.c -lnats -lpthread. */
#include <nats/nats.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_URLS 8
#define GAP_NS (20 * 1000000LL)

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Splits URLS in place at the commas into URL; returns the count, 0 if there are too many. */
static int split_urls(char *urls, const char **url)
{
    int n = 0;
    for (char *tok = strtok(urls, ","); tok != NULL; tok = strtok(NULL, ",")) {
        if (n == MAX_URLS) return 0;
        url[n++] = tok;
    }
    return n;
}

/* A STAN connection with the options of the header; NULL after 20 s of failures or on SIGTERM. */
static stanConnection *connect_stan(const char **url, int n, const char *cluster, long ack_wait)
{
    natsOptions *nopts = NULL;
    stanConnOptions *sopts = NULL;
    stanConnection *sc = NULL;
    char client_id[64];
    natsStatus s = natsOptions_Create(&nopts);
    if (s == NATS_OK) s = natsOptions_SetServers(nopts, url, n);
    if (s == NATS_OK) s = natsOptions_SetNoRandomize(nopts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(nopts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(nopts, 20);
    if (s == NATS_OK) s = stanConnOptions_Create(&sopts);
    if (s == NATS_OK) s = stanConnOptions_SetNATSOptions(sopts, nopts);
    if (s == NATS_OK) s = stanConnOptions_SetPubAckWait(sopts, ack_wait);
    if (s == NATS_OK) s = stanConnOptions_SetConnectionWait(sopts, 1000);
    snprintf(client_id, sizeof client_id, "failover-%ld-%lld", (long)getpid(),
             (long long)(now_ns() / 1000000));
    for (int i = 0; s == NATS_OK && !stop && i < 200; i++) {
        if (stanConnection_Connect(&sc, cluster, client_id, sopts) == NATS_OK) break;
        sc = NULL;
        usleep(100 * 1000);
    }
    if (s != NATS_OK) fprintf(stderr, "failover_pub: options: %s\n", natsStatus_GetText(s));
    stanConnOptions_Destroy(sopts);
    natsOptions_Destroy(nopts);
    return sc;
}

/* Publishes until SIGTERM, printing the lines of the header. */
static int publish_loop(stanConnection *sc, const char **url, int n, const char *cluster,
                        const char *channel, long ack_wait)
{
    char payload[64];
    int64_t prev = 0;
    int failing = 0;
    memset(payload, 'x', sizeof payload);
    while (!stop) {
        natsStatus s = stanConnection_Publish(sc, channel, payload, (int)sizeof payload);
        int64_t now = now_ns();
        if (s == NATS_OK) {
            if (prev == 0)
                printf("READY\n");
            else if (now - prev > GAP_NS)
                printf("GAP %lld %lld\n", (long long)prev, (long long)now);
            prev = now;
            failing = 0;
        } else if (s == NATS_CONNECTION_CLOSED) {
            /* The session is gone (the cluster forgot the client, or libnats gave up). */
            stanConnection_Destroy(sc);
            sc = connect_stan(url, n, cluster, ack_wait);
            if (sc == NULL) return stop ? 0 : 1;
            printf("RECONNECT %lld\n", (long long)now_ns());
        } else {
            if (!failing) printf("ERR %lld %s\n", (long long)now, natsStatus_GetText(s));
            failing = 1;
            if (s != NATS_TIMEOUT)
                usleep(1000); /* failed at once (e.g. while reconnecting): do not spin */
        }
        fflush(stdout);
    }
    stanConnection_Close(sc);
    stanConnection_Destroy(sc);
    return 0;
}

int main(int argc, char **argv)
{
    const char *url[MAX_URLS];
    char *end = NULL;
    if (argc != 5) {
        fprintf(stderr, "usage: failover_pub URLS CLUSTER_ID CHANNEL ACK_WAIT_MS\n");
        return 2;
    }
    int n = split_urls(argv[1], url);
    long ack_wait = strtol(argv[4], &end, 10);
    if (n == 0 || *end != '\0' || ack_wait < 1) {
        fprintf(stderr, "failover_pub: bad URLS or ACK_WAIT_MS\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (nats_Open(-1) != NATS_OK) return 1;
    stanConnection *sc = connect_stan(url, n, argv[2], ack_wait);
    if (sc == NULL) {
        fprintf(stderr, "failover_pub: cannot connect to %s\n", argv[1]);
        return 1;
    }
    int rc = publish_loop(sc, url, n, argv[2], argv[3], ack_wait);
    nats_Close();
    return rc;
}

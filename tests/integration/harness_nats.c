/* harness: libnats connections and the message counter; see harness.h. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

natsStatus hnats_connect(const struct hserver *s, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus st = natsOptions_Create(&opts);
    if (st == NATS_OK) st = natsOptions_SetURL(opts, s->url);
    if (st == NATS_OK) st = natsOptions_SetAllowReconnect(opts, false);
    if (st == NATS_OK) st = natsOptions_SetTimeout(opts, 5000);
    if (st == NATS_OK) st = natsConnection_Connect(nc, opts);
    if (st != NATS_OK)
        fprintf(stderr, "harness: libnats connect to %s: %s (%s)\n", s->url, natsStatus_GetText(st),
                nats_GetLastError(NULL));
    natsOptions_Destroy(opts);
    return st;
}

void hcounter_init(struct hcounter *c)
{
    /* Deadlines on the monotonic clock, so a wall-clock step cannot stretch or cut a wait. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    c->n = 0;
}

void hcounter_destroy(struct hcounter *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

void hcounter_add(struct hcounter *c, int64_t k)
{
    pthread_mutex_lock(&c->mu);
    c->n += k;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int64_t hcounter_get(struct hcounter *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool hcounter_wait(struct hcounter *c, int64_t n, int timeout_ms)
{
    /* One absolute deadline, and the count re-checked after every (possibly spurious) wake-up. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->n < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    bool ok = c->n >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void hcounter_msg_handler(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    natsMsg_Destroy(msg);
    hcounter_add(closure, 1);
}

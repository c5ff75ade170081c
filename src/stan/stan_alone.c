/* stan_alone: see stan_alone.h. */
#include "stan_alone.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "nuid.h"
#include "protocol.pb-c.h"

struct alone {
    bool answered, timed_out, nobody;
    buf_t answer;
};

static void on_answer(void *arg, const bus_msg_t *m)
{
    struct alone *a = arg;
    if (a->answered) return;
    if (m->no_responders) { /* NATS says nobody listens: no need to wait the timeout out */
        a->nobody = true;
        return;
    }
    a->answered = true;
    buf_append(&a->answer, m->data, m->data_len);
}

static void on_timeout(uv_timer_t *t)
{
    struct alone *a = t->data;
    a->timed_out = true;
}

static void wait_answer(stan_t *st, struct alone *a)
{
    uv_timer_t timer;
    uv_timer_init(st->loop, &timer);
    timer.data = a;
    uv_timer_start(&timer, on_timeout, STAN_ALONE_WAIT_MS, 0);
    while (!a->answered && !a->timed_out && !a->nobody)
        uv_run(st->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(st->loop, UV_RUN_NOWAIT); /* the timer's close callback: it lives on this stack */
}

/* The packed request in st->scratch, answers to reply. */
static void request(stan_t *st, const char *to, const char *reply)
{
    bus_msg_t m = {.subject = to,
                   .subject_len = strlen(to),
                   .reply = reply,
                   .reply_len = strlen(reply),
                   .data = st->scratch.data ? st->scratch.data : "",
                   .data_len = st->scratch.len};
    bus_publish(&st->bus, &m);
}

/* The other server registered our probe as a client: remove it again. */
static void close_probe(stan_t *st, const char *close_subj)
{
    if (!close_subj || !*close_subj) return;
    Pb__CloseRequest req = PB__CLOSE_REQUEST__INIT;
    req.clientid = st->cfg->cluster_id;
    stan_pack(&req.base, &st->scratch);
    stan_reply(st, close_subj, &st->scratch);
}

int stan_alone_check(stan_t *st, char *err, size_t errlen)
{
    /* The embedded server without a route: nobody else can be listening. */
    if (bus_interest(&st->bus, st->discover, strlen(st->discover)) == 0) return 0;
    struct alone a = {0};
    buf_init(&a.answer);
    char *inbox = nuid_subject(st->inbox_prefix, "alone.", NULL);
    char *hb = nuid_subject(st->inbox_prefix, "alonehb.", NULL);
    bus_sub_t *sub = bus_subscribe(&st->bus, inbox, NULL, BUS_SUB_REPLIES, on_answer, &a);
    int rc = 0;
    if (sub) {
        Pb__ConnectRequest req = PB__CONNECT_REQUEST__INIT;
        req.clientid = st->cfg->cluster_id;
        req.heartbeatinbox = hb;
        stan_pack(&req.base, &st->scratch);
        request(st, st->discover, inbox);
        wait_answer(st, &a);
        bus_unsubscribe(&st->bus, sub);
    }
    if (a.answered) {
        Pb__ConnectResponse *r = pb__connect_response__unpack(
            NULL, a.answer.len, (const uint8_t *)(a.answer.data ? a.answer.data : ""));
        if (!r) {
            snprintf(err, errlen,
                     "something other than a streaming server answers on %s: cannot start "
                     "(its answer is not a ConnectResponse)",
                     st->discover);
        } else {
            close_probe(st, r->closerequests);
            pb__connect_response__free_unpacked(r, NULL);
            snprintf(err, errlen, "discovered another streaming server with cluster ID \"%s\"",
                     st->cfg->cluster_id);
        }
        rc = STZ_EEXIST;
    } else {
        LOG_D("no other streaming server answers for cluster ID %s", st->cfg->cluster_id);
    }
    buf_free(&a.answer);
    free(inbox);
    free(hb);
    return rc;
}

/* stan_ctx: see stan_ctx.h. */
#include "stan_ctx.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

void stan_reply(stan_t *st, const char *to, const buf_t *packed)
{
    if (!to || !*to) return;
    bus_msg_t m = {.subject = to,
                   .subject_len = strlen(to),
                   .data = packed->data ? packed->data : "",
                   .data_len = packed->len};
    bus_publish(&st->bus, &m);
}

void stan_pack(const ProtobufCMessage *msg, buf_t *out)
{
    buf_reset(out);
    buf_reserve(out, protobuf_c_message_get_packed_size(msg));
    out->len = protobuf_c_message_pack(msg, (uint8_t *)out->data);
}

static void on_reply_commit(void *arg, int status)
{
    stan_later_reply_t *r = arg;
    stan_reply(r->st, r->to, status == 0 ? &r->ok : status == STZ_ENOTLEADER ? &r->lost : &r->fail);
    if (r->then) r->then(r->arg, status);
    free(r->to);
    buf_free(&r->ok);
    buf_free(&r->fail);
    buf_free(&r->lost);
    free(r);
}

void stan_later_fail(stan_later_reply_t *r, ProtobufCMessage *msg, char **error,
                     const char *store_error, const char *lost_error)
{
    *error = (char *)store_error;
    stan_pack(msg, &r->fail);
    *error = (char *)lost_error;
    stan_pack(msg, &r->lost);
}

stan_later_reply_t *stan_reply_on_commit(stan_t *st, const char *to, stan_commit_fn then, void *arg)
{
    stan_later_reply_t *r = xcalloc(1, sizeof *r);
    r->st = st;
    r->to = to ? xstrdup(to) : NULL;
    buf_init(&r->ok);
    buf_init(&r->fail);
    buf_init(&r->lost);
    r->then = then;
    r->arg = arg;
    stan_commit_on(&st->commit, on_reply_commit, r);
    return r;
}

/* server_bus: the embedded server as the streaming engine's bus (bus.h). The table forwards to
 * the server's own in-process calls; a bus_sub_t is the server's subscription (struct nsub). At
 * the top of the module's call order: it only calls into the rest. */
#include "server_private.h"

static bus_sub_t *bus_subscribe_impl(void *impl, const char *subject, const char *queue,
                                     unsigned flags, bus_msg_fn fn, void *arg)
{
    (void)flags; /* routing hands every message over as it comes */
    return (bus_sub_t *)server_subscribe(impl, subject, queue, fn, arg);
}

static void bus_unsubscribe_impl(void *impl, bus_sub_t *sub)
{
    server_unsubscribe(impl, (server_sub_t *)sub);
}

static int bus_publish_impl(void *impl, const bus_msg_t *msg)
{
    return server_publish(impl, msg);
}

static size_t bus_interest_impl(void *impl, const char *subject, size_t len)
{
    return server_interest(impl, subject, len);
}

static void bus_flush_hook_impl(void *impl, void (*fn)(void *arg), void *arg)
{
    server_set_flush_hook(impl, fn, arg);
}

static void bus_sub_gone_impl(void *impl, bus_sub_gone_fn fn, void *arg)
{
    server_set_sub_gone_hook(impl, fn, arg);
}

static void bus_stats_impl(const void *impl, bus_stats_t *out)
{
    server_get_stats(impl, out);
}

static const bus_ops_t server_bus_ops = {
    .subscribe = bus_subscribe_impl,
    .unsubscribe = bus_unsubscribe_impl,
    .publish = bus_publish_impl,
    .interest = bus_interest_impl,
    .set_flush_hook = bus_flush_hook_impl,
    .set_sub_gone_hook = bus_sub_gone_impl,
    .stats = bus_stats_impl,
};

void server_bus(server_t *s, bus_t *out)
{
    out->ops = &server_bus_ops;
    out->impl = s;
}

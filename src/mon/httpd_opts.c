/* httpd_opts: the HTTP server's settings and counters (see httpd.h). */
#include "httpd_private.h"

int httpd_port(const httpd_t *h)
{
    return h->port;
}

void httpd_set_timeouts(httpd_t *h, unsigned idle_ms, unsigned request_ms)
{
    h->idle_ms = idle_ms;
    h->request_ms = request_ms;
}

void httpd_set_defer_accept(httpd_t *h, bool on)
{
    h->no_defer_accept = !on;
}

size_t httpd_conns(const httpd_t *h)
{
    return h->nconns;
}

void httpd_set_max_conns(httpd_t *h, size_t n)
{
    h->max_conns = n > 0 ? n : 1;
}

size_t httpd_max_conns(const httpd_t *h)
{
    return h->max_conns;
}

uint64_t httpd_evicted(const httpd_t *h)
{
    return h->evicted;
}

void httpd_set_max_output(httpd_t *h, size_t bytes)
{
    h->max_output = bytes;
}

/* Private to monitor.c and monitor_metrics.c. */
#ifndef STANZA_MONITOR_PRIVATE_H
#define STANZA_MONITOR_PRIVATE_H
#include "buf.h"
#include "httpd.h"
#include "monitor.h"

struct monitor {
    uv_loop_t *loop;
    const config_t *cfg;
    server_t *srv;
    stan_t *st;
    httpd_t *httpd;
    void (*done)(void *arg);
    void *done_arg;
};

/* Prometheus text exposition of everything (monitor_metrics.c). */
void monitor_metrics(monitor_t *m, buf_t *out);

#endif

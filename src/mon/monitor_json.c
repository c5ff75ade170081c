/* monitor_json: the JSON pieces of the monitoring endpoints: NSS's time formats, the common
 * head, whole answers, and the one writer of lists.
 *
 * A list (channels with their subscriptions, clients, pending rows) can be megabytes for a big
 * server. Each item is built as a small jansson object and turned into text at once, so the
 * whole answer never exists as one jansson tree (its allocation and freeing dominated the time);
 * the answer is the same JSON, unindented. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "monitor_private.h"

/* RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano marshals. */
json_t *monitor_json_time(int64_t ns)
{
    time_t secs = (time_t)(ns / CLOCK_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09lldZ", (long long)(ns % CLOCK_NS_PER_SEC));
    return json_string(buf);
}

/* "1d2h3m4s", as NSS prints uptime. */
json_t *monitor_json_uptime(int64_t ns)
{
    int64_t s = ns / CLOCK_NS_PER_SEC;
    int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
    char buf[64];
    if (d)
        snprintf(buf, sizeof buf, "%lldd%lldh%lldm%llds", (long long)d, (long long)h, (long long)m,
                 (long long)sec);
    else if (h)
        snprintf(buf, sizeof buf, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)sec);
    else if (m)
        snprintf(buf, sizeof buf, "%lldm%llds", (long long)m, (long long)sec);
    else
        snprintf(buf, sizeof buf, "%llds", (long long)sec);
    return json_string(buf);
}

void monitor_json_int(json_t *o, const char *k, uint64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

json_t *monitor_json_head(monitor_t *m)
{
    stan_server_info_t si;
    stan_get_server_info(m->st, &si);
    json_t *o = json_object();
    json_object_set_new(o, "cluster_id", json_string(si.cluster_id));
    json_object_set_new(o, "server_id", json_string(si.server_id));
    json_object_set_new(o, "now", monitor_json_time(clock_wall_ns()));
    return o;
}

void monitor_reply_json(httpd_resp_t *resp, json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    buf_append_str(&resp->body, text);
    buf_append(&resp->body, "\n", 1);
    free(text);
    json_decref(o);
}

void monitor_reply_error(httpd_resp_t *resp, int status, const char *msg)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    buf_append_str(&resp->body, msg);
    buf_append(&resp->body, "\n", 1);
}

/* v's compact text, without the closing brace when open (an object to be continued). */
static void append_dump(buf_t *b, json_t *v, bool open)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    size_t n = strlen(text);
    buf_append(b, text, open ? n - 1 : n);
    free(text);
    json_decref(v);
}

void monitor_list_open(monitor_list_t *l, buf_t *b, json_t *head, const char *key)
{
    l->b = b;
    l->n = 0;
    bool empty = json_object_size(head) == 0;
    append_dump(b, head, true);
    buf_append_str(b, empty ? "\"" : ",\"");
    buf_append_str(b, key); /* ours: plain ASCII, nothing to escape */
    buf_append_str(b, "\":[");
}

void monitor_list_add(monitor_list_t *l, json_t *item)
{
    if (l->n++) buf_append(l->b, ",", 1);
    append_dump(l->b, item, false);
}

void monitor_list_close(monitor_list_t *l, json_t *tail)
{
    buf_append(l->b, "]", 1);
    if (tail && json_object_size(tail)) {
        char *text = json_dumps(tail, JSON_COMPACT | JSON_PRESERVE_ORDER);
        buf_append(l->b, ",", 1);
        buf_append(l->b, text + 1, strlen(text) - 1); /* its keys and its closing brace */
        free(text);
    } else {
        buf_append(l->b, "}", 1);
    }
    json_decref(tail);
    buf_append(l->b, "\n", 1);
}

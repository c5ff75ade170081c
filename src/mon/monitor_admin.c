/* monitor_admin: the operator commands under /admin/ on the monitoring port (issue 9), and the
 * bearer token check they share with monitor_require_token. The contract (paths, parameters,
 * JSON, status codes) is docs/operations.md's "Admin operations"; the engine side is
 * stan_admin.h.
 *
 * The token is checked before anything else of the request is looked at, whatever its method
 * and path, so that nothing about the endpoints (which exist, which methods they take, what
 * their parameters must be) is told to a client without it. Paths are compared as sent: no
 * decoding or dot-segment removal happens anywhere in the monitor, so "/admin/../x" is an admin
 * path (refused without the token, then unknown) and no spelling reaches an admin command from
 * outside /admin/.
 *
 * The comparison hashes the presented token (SHA-256) and compares the digest with the
 * configured token's in constant time (CRYPTO_memcmp): the time taken depends on the presented
 * token's length only, never on how much of it matches or on the real token's length.
 *
 * Changing commands answer after the engine's commit: the request is deferred (httpd_defer)
 * and the engine's callback, later on the loop, writes the answer. The call's state (call_t)
 * holds copies of what the answer names and nothing of the monitor's, so it may outlive the
 * connection and the monitor alike. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "monitor_private.h"
#include "stan_admin.h"
#include "xalloc.h"

#define VALUE_MAX 1024 /* a query value longer than this is refused: no name is that long */
#define DEAD_LIMIT 1024
#define DEAD_LIMIT_MAX 100000 /* one answer's dead letters, so that its size stays bounded */

/* ---- answers ----------------------------------------------------------------------------- */

/* A string for the JSON answer: as is when it is UTF-8, else with every byte over 0x7f as '?'
 * (jansson refuses invalid UTF-8, and a name from a query string may be anything). */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *c = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] > 0x7f ? '?' : s[i];
    j = json_stringn(c, n);
    free(c);
    return j;
}

static json_t *jstr0(const char *s)
{
    return s ? jstr(s, strlen(s)) : json_null();
}

static void reply_error(httpd_resp_t *resp, int status, const char *msg)
{
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    json_t *o = json_object();
    json_object_set_new(o, "error", jstr0(msg));
    monitor_reply_json(resp, o);
}

/* The status of an engine error (stan_admin.h's codes; anything else is a failed commit). */
static int status_of(int rc)
{
    switch (rc) {
    case STZ_ENOENT:
        return 404;
    case STZ_EINVAL:
        return 400;
    case STZ_EBUSY:
        return 409;
    case STZ_ECANCELED:
        return 503;
    default:
        return 500;
    }
}

/* ---- the token --------------------------------------------------------------------------- */

static void digest(const char *s, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        memset(out, 0, 32); /* never equal to a real token's: admin_on needs a good digest */
}

void monitor_admin_init(monitor_t *m)
{
    const char *t = m->cfg->admin_token;
    m->admin_on = false;
    if (!t || !*t) return;
    digest(t, strlen(t), m->admin_digest);
    static const unsigned char zero[32];
    m->admin_on = CRYPTO_memcmp(m->admin_digest, zero, sizeof zero) != 0;
}

/* The token of an Authorization value "Bearer TOKEN" (the scheme in any case, RFC 7235),
 * surrounding blanks dropped; false when the value is not of that form. */
static bool bearer(const char *v, const char **tok, size_t *len)
{
    if (!v || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t')) return false;
    const char *p = v + 6, *e = v + strlen(v);
    while (*p == ' ' || *p == '\t')
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (e == p) return false;
    for (const char *q = p; q < e; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f) return false;
    *tok = p;
    *len = (size_t)(e - p);
    return true;
}

bool monitor_admin_authorized(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    if (!m->admin_on) {
        reply_error(resp, 403, "admin operations are disabled (no admin_token configured)");
        return false;
    }
    const char *tok;
    size_t len;
    if (!bearer(req->authorization, &tok, &len)) {
        reply_error(resp, 401, "missing bearer token");
        httpd_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"stanza\"");
        return false;
    }
    unsigned char d[32];
    digest(tok, len, d);
    if (CRYPTO_memcmp(d, m->admin_digest, sizeof d) != 0) {
        reply_error(resp, 403, "invalid token");
        return false;
    }
    return true;
}

/* ---- parameters -------------------------------------------------------------------------- */

/* A name parameter into out (VALUE_MAX). Absent: *present false, fine unless required. Present
 * but empty, too long or holding a NUL: 400. Returns false once it has answered. */
static bool str_param(const httpd_req_t *req, httpd_resp_t *resp, const char *key, bool required,
                      char *out, bool *present)
{
    char msg[128];
    *present = httpd_query_has(req, key);
    out[0] = '\0';
    if (!*present) {
        if (!required) return true;
        snprintf(msg, sizeof msg, "missing parameter %s", key);
    } else if (!httpd_query_get(req, key, out, VALUE_MAX)) {
        snprintf(msg, sizeof msg, "invalid %s: longer than %d bytes or holds a NUL", key,
                 VALUE_MAX - 1);
    } else if (!*out) {
        snprintf(msg, sizeof msg, "invalid %s: empty", key);
    } else {
        return true;
    }
    reply_error(resp, 400, msg);
    return false;
}

/* A decimal u64 parameter (digits only, at least min); absent leaves *out and *present false. */
static bool u64_param(const httpd_req_t *req, httpd_resp_t *resp, const char *key, uint64_t min,
                      uint64_t *out, bool *present)
{
    *present = httpd_query_has(req, key);
    if (!*present) return true;
    char v[32];
    bool ok = httpd_query_get(req, key, v, sizeof v) && *v;
    uint64_t n = 0;
    for (const char *p = v; ok && *p; p++) {
        unsigned dgt = (unsigned)(*p - '0');
        ok = *p >= '0' && *p <= '9' && n <= (UINT64_MAX - dgt) / 10;
        n = n * 10 + dgt;
    }
    if (ok && n >= min) {
        *out = n;
        return true;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "invalid %s: must be a decimal integer of at least %llu", key,
             (unsigned long long)min);
    reply_error(resp, 400, msg);
    return false;
}

/* true/false/1/0; absent is false. */
static bool bool_param(const httpd_req_t *req, httpd_resp_t *resp, const char *key, bool *out)
{
    *out = false;
    if (!httpd_query_has(req, key)) return true;
    char v[8];
    if (httpd_query_get(req, key, v, sizeof v)) {
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) *out = true;
        if (*out || strcmp(v, "false") == 0 || strcmp(v, "0") == 0) return true;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "invalid %s: must be true, false, 1 or 0", key);
    reply_error(resp, 400, msg);
    return false;
}

/* ---- changing commands: deferred until the engine's commit ------------------------------- */

typedef enum { C_PURGE, C_CHANNEL, C_DURABLE, C_CLIENT, C_REQUEUE, C_PAUSE, C_RESUME } kind_t;

typedef struct call {
    httpd_defer_t *d;
    kind_t kind;
    char *channel, *name, *queue; /* name: the durable or the client ID */
    char *client;                 /* a plain durable's client, when the request named one */
} call_t;

static call_t *call_new(const httpd_req_t *req, kind_t kind, const char *channel, const char *name,
                        const char *queue)
{
    call_t *c = xcalloc(1, sizeof *c);
    c->d = httpd_defer(req);
    c->kind = kind;
    c->channel = channel ? xstrdup(channel) : NULL;
    c->name = name ? xstrdup(name) : NULL;
    c->queue = queue ? xstrdup(queue) : NULL;
    return c;
}

/* The answer of a command that did what r says. */
static json_t *call_json(const call_t *c, const stan_admin_result_t *r)
{
    json_t *o = json_object();
    if (c->kind == C_CLIENT) {
        json_object_set_new(o, "client_id", jstr0(c->name));
        json_object_set_new(o, "closed", json_true());
        monitor_json_int(o, "subscriptions", r->count);
        return o;
    }
    json_object_set_new(o, "channel", jstr0(c->channel));
    switch (c->kind) {
    case C_PURGE:
    case C_REQUEUE:
        monitor_json_int(o, c->kind == C_PURGE ? "purged" : "requeued", r->count);
        monitor_json_int(o, "msgs", r->msgs);
        monitor_json_int(o, "first_seq", r->first_seq);
        monitor_json_int(o, "last_seq", r->last_seq);
        break;
    case C_CHANNEL:
        json_object_set_new(o, "deleted", json_true());
        monitor_json_int(o, "msgs", r->msgs);
        monitor_json_int(o, "subscriptions", r->count);
        break;
    case C_DURABLE:
        json_object_set_new(o, "durable", jstr0(c->name));
        json_object_set_new(o, "queue", jstr0(c->queue));
        json_object_set_new(o, "client", jstr0(c->client));
        monitor_json_int(o, "deleted", r->count);
        break;
    default: /* C_PAUSE, C_RESUME */
        json_object_set_new(o, "queue", jstr0(c->queue));
        json_object_set_new(o, "durable", jstr0(c->name));
        json_object_set_new(o, "client", jstr0(c->client));
        json_object_set_new(o, "paused", json_boolean(c->kind == C_PAUSE));
        monitor_json_int(o, "subscriptions", r->count);
        break;
    }
    return o;
}

static void call_free(call_t *c)
{
    free(c->channel);
    free(c->name);
    free(c->queue);
    free(c->client);
    free(c);
}

/* The engine's answer, from the loop after the commit (or at once with an error: call_start). */
static void on_result(void *arg, const stan_admin_result_t *r)
{
    call_t *c = arg;
    httpd_resp_t *resp = httpd_defer_resp(c->d);
    if (r->status)
        reply_error(resp, status_of(r->status), stz_strerror(r->status));
    else
        monitor_reply_json(resp, call_json(c, r));
    httpd_defer_finish(c->d);
    call_free(c);
}

/* After the engine call: rc < 0 means it was refused and fn will not run, so the refusal is
 * the answer now (httpd sends a deferred answer finished within the handler at once). */
static void call_started(call_t *c, int rc, const char *err)
{
    if (rc >= 0) return;
    reply_error(httpd_defer_resp(c->d), status_of(rc), err);
    httpd_defer_finish(c->d);
    call_free(c);
}

static void purge(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char ch[VALUE_MAX], err[256] = "";
    bool has_ch, has_upto;
    uint64_t upto = 0;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !u64_param(req, resp, "upto", 1, &upto, &has_upto))
        return;
    call_t *c = call_new(req, C_PURGE, ch, NULL, NULL);
    call_started(c, stan_admin_purge(m->st, ch, upto, on_result, c, err, sizeof err), err);
}

static void delete_channel(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char ch[VALUE_MAX], err[256] = "";
    bool has_ch, force;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !bool_param(req, resp, "force", &force))
        return;
    call_t *c = call_new(req, C_CHANNEL, ch, NULL, NULL);
    call_started(c, stan_admin_delete_channel(m->st, ch, force, on_result, c, err, sizeof err),
                 err);
}

static void delete_durable(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char ch[VALUE_MAX], dur[VALUE_MAX], q[VALUE_MAX], cl[VALUE_MAX], err[256] = "";
    bool has_ch, has_dur, has_q, has_cl;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !str_param(req, resp, "durable", true, dur, &has_dur) ||
        !str_param(req, resp, "queue", false, q, &has_q) ||
        !str_param(req, resp, "client", false, cl, &has_cl))
        return;
    const char *queue = has_q ? q : NULL, *client = has_cl ? cl : NULL;
    call_t *c = call_new(req, C_DURABLE, ch, dur, queue);
    c->client = client ? xstrdup(client) : NULL;
    call_started(
        c, stan_admin_delete_durable(m->st, ch, dur, queue, client, on_result, c, err, sizeof err),
        err);
}

static void close_client(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char id[VALUE_MAX], err[256] = "";
    bool has_id;
    if (!str_param(req, resp, "id", true, id, &has_id)) return;
    call_t *c = call_new(req, C_CLIENT, NULL, id, NULL);
    call_started(c, stan_admin_close_client(m->st, id, on_result, c, err, sizeof err), err);
}

static void requeue(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char ch[VALUE_MAX], err[256] = "";
    bool has_ch, has_seq, all;
    uint64_t seq = 0;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !u64_param(req, resp, "seq", 1, &seq, &has_seq) || !bool_param(req, resp, "all", &all))
        return;
    if (has_seq == all) {
        reply_error(resp, 400, "give exactly one of seq=S and all=true");
        return;
    }
    call_t *c = call_new(req, C_REQUEUE, ch, NULL, NULL);
    call_started(c, stan_admin_requeue(m->st, ch, all ? 0 : seq, on_result, c, err, sizeof err),
                 err);
}

static void pause_or_resume(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp, bool pause)
{
    char ch[VALUE_MAX], dur[VALUE_MAX], q[VALUE_MAX], cl[VALUE_MAX], err[256] = "";
    bool has_ch, has_dur, has_q, has_cl;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !str_param(req, resp, "queue", false, q, &has_q) ||
        !str_param(req, resp, "durable", false, dur, &has_dur) ||
        !str_param(req, resp, "client", false, cl, &has_cl))
        return;
    if (!has_q && !has_dur) {
        reply_error(resp, 400, "missing parameter queue or durable");
        return;
    }
    const char *queue = has_q ? q : NULL, *durable = has_dur ? dur : NULL;
    const char *client = has_cl ? cl : NULL;
    call_t *c = call_new(req, pause ? C_PAUSE : C_RESUME, ch, durable, queue);
    c->client = client ? xstrdup(client) : NULL;
    call_started(
        c,
        stan_admin_pause(m->st, ch, queue, durable, client, pause, on_result, c, err, sizeof err),
        err);
}

static void pause_group(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    pause_or_resume(m, req, resp, true);
}

static void resume_group(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    pause_or_resume(m, req, resp, false);
}

/* ---- reads: answered at once ------------------------------------------------------------- */

static json_t *dead_json(const stan_dead_info_t *d)
{
    json_t *o = json_object();
    monitor_json_int(o, "sequence", d->dead_seq);
    json_object_set_new(o, "dead_letter", jstr0(d->dead_channel));
    json_object_set_new(o, "origin_channel", jstr0(d->origin));
    monitor_json_int(o, "origin_sequence", d->origin_seq);
    monitor_json_int(o, "deliveries", d->deliveries);
    json_object_set_new(o, "last_client", jstr0(d->last_client));
    json_object_set_new(o, "subscription", jstr0(d->subscription));
    json_object_set_new(o, "timestamp", json_integer((json_int_t)d->dead_ns));
    monitor_json_int(o, "requeued_sequence", d->requeued_seq);
    return o;
}

static void on_msg(void *arg, const stan_admin_msg_t *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "channel", jstr0(msg->channel));
    monitor_json_int(o, "sequence", msg->seq);
    json_object_set_new(o, "timestamp", json_integer((json_int_t)msg->ts));
    monitor_json_int(o, "size", msg->len);
    json_object_set_new(o, "reply", jstr(msg->reply ? msg->reply : "", msg->reply_len));
    /* EVP_EncodeBlock takes an int: payloads are at most max_payload (64 MiB). */
    unsigned char *b64 = xmalloc(4 * ((msg->len + 2) / 3) + 1);
    int n = EVP_EncodeBlock(b64, msg->data, (int)msg->len);
    json_object_set_new(o, "data", json_stringn((const char *)b64, n > 0 ? (size_t)n : 0));
    free(b64);
    if (msg->dead) json_object_set_new(o, "dead", dead_json(msg->dead));
    *(json_t **)arg = o;
}

static void msg_get(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char ch[VALUE_MAX], err[256] = "";
    bool has_ch, has_seq;
    uint64_t seq = 0;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !u64_param(req, resp, "seq", 1, &seq, &has_seq))
        return;
    if (!has_seq) {
        reply_error(resp, 400, "missing parameter seq");
        return;
    }
    json_t *o = NULL;
    int rc = stan_admin_msg_read(m->st, ch, seq, on_msg, &o, err, sizeof err);
    if (rc < 0 || !o) {
        json_decref(o);
        reply_error(resp, status_of(rc < 0 ? rc : STZ_EIO), err);
        return;
    }
    monitor_reply_json(resp, o);
}

static void on_dead(void *arg, const stan_dead_info_t *d)
{
    json_array_append_new(arg, dead_json(d));
}

static void dead_list(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    char ch[VALUE_MAX], err[256] = "";
    bool has_ch, has_off, has_lim;
    uint64_t offset = 0, limit = DEAD_LIMIT;
    if (!str_param(req, resp, "channel", true, ch, &has_ch) ||
        !u64_param(req, resp, "offset", 0, &offset, &has_off) ||
        !u64_param(req, resp, "limit", 0, &limit, &has_lim))
        return;
    if (limit == 0) limit = DEAD_LIMIT; /* as the other list endpoints */
    if (limit > DEAD_LIMIT_MAX) {
        reply_error(resp, 400, "invalid limit: at most 100000");
        return;
    }
    json_t *arr = json_array();
    uint64_t total = 0;
    const char *dead_ch = NULL;
    int rc = stan_admin_foreach_dead(m->st, ch, (size_t)offset, (size_t)limit, on_dead, arr, &total,
                                     &dead_ch, err, sizeof err);
    if (rc < 0) {
        json_decref(arr);
        reply_error(resp, status_of(rc), err);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "channel", jstr0(ch));
    json_object_set_new(o, "dead_letter", jstr0(dead_ch));
    monitor_json_int(o, "total", total);
    monitor_json_int(o, "offset", offset);
    monitor_json_int(o, "count", json_array_size(arr));
    json_object_set_new(o, "dead", arr);
    monitor_reply_json(resp, o);
}

/* ---- routing ----------------------------------------------------------------------------- */

typedef void (*admin_fn)(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp);

static const struct route {
    const char *path;
    const char *method; /* GET routes take HEAD too */
    admin_fn fn;
} routes[] = {
    {"/admin/msg", "GET", msg_get},
    {"/admin/purge", "POST", purge},
    {"/admin/channel", "DELETE", delete_channel},
    {"/admin/durable", "DELETE", delete_durable},
    {"/admin/client", "DELETE", close_client},
    {"/admin/dead", "GET", dead_list},
    {"/admin/requeue", "POST", requeue},
    {"/admin/pause", "POST", pause_group},
    {"/admin/resume", "POST", resume_group},
};

bool monitor_admin_path(const httpd_req_t *req)
{
    return strncmp(req->path, "/admin/", 7) == 0 || strcmp(req->path, "/admin") == 0;
}

/* Clustered mode: a follower reads its view of the store, and changes nothing (its engine does
 * not write: the leader's does). */
static bool follower_refuses(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    if (!m->repl) return false;
    repl_status_t rs;
    repl_status(m->repl, &rs);
    if (rs.leading) return false;
    bool read = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (read) {
        if (m->refresh) m->refresh(m->refresh_arg);
        return false;
    }
    char msg[160];
    snprintf(msg, sizeof msg,
             "this node does not lead the cluster (leader: %s): send changes to the leader's "
             "monitoring port",
             rs.leader[0] ? rs.leader : "none now");
    reply_error(resp, 503, msg);
    return true;
}

void monitor_admin(monitor_t *m, const httpd_req_t *req, httpd_resp_t *resp)
{
    if (!monitor_admin_authorized(m, req, resp)) return;
    if (follower_refuses(m, req, resp)) return;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const struct route *r = &routes[i];
        if (strcmp(req->path, r->path) != 0) continue;
        bool get = strcmp(r->method, "GET") == 0;
        if (strcmp(req->method, r->method) == 0 || (get && strcmp(req->method, "HEAD") == 0)) {
            r->fn(m, req, resp);
            return;
        }
        reply_error(resp, 405, "method not allowed");
        httpd_resp_header(resp, "Allow", get ? "GET, HEAD" : r->method);
        return;
    }
    reply_error(resp, 404, "no such admin endpoint");
}

/* admin_http: the HTTP side of the /admin/ integration tests (it_monitor_admin,
 * it_monitor_admin_ops): one request over a fresh connection to a real stanzad's monitoring
 * port, with or without an Authorization header, its status, head and JSON body. Header-only:
 * static inline, each test program its own copy. */
#ifndef STANZA_IT_ADMIN_HTTP_H
#define STANZA_IT_ADMIN_HTTP_H
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"
#include "support/http_head.h"
#include "test.h"

#define ADMIN_TOKEN "it-admin-token-0123456789abcdef"
#define BEARER "Bearer " ADMIN_TOKEN

struct ares {
    int status;
    char head[2048];
    json_t *json; /* the body parsed, NULL when it is not JSON (or HEAD) */
};

/* method path with Authorization: auth (NULL: no header) and extra header lines (NULL: none).
 * CHECKs that an answer came. */
static inline struct ares areq_hdr(int mport, const char *method, const char *path,
                                   const char *auth, const char *extra)
{
    char req[4096];
    int n =
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: it\r\nConnection: close\r\n%s%s%s%s\r\n",
                 method, path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "",
                 extra ? extra : "");
    CHECK(n > 0 && (size_t)n < sizeof req);
    char *ans = hhttp_raw(mport, req, (size_t)n);
    CHECK(ans != NULL);
    struct ares r = {0};
    if (sscanf(ans, "HTTP/1.1 %d", &r.status) != 1) fprintf(stderr, "no answer: \"%s\"\n", ans);
    CHECK(r.status > 0);
    char *end = strstr(ans, "\r\n\r\n");
    CHECK(end != NULL);
    size_t hl = (size_t)(end - ans);
    snprintf(r.head, sizeof r.head, "%.*s", (int)hl, ans);
    r.json = json_loads(end + 4, 0, NULL);
    free(ans);
    return r;
}

static inline struct ares areq(int mport, const char *method, const char *path, const char *auth)
{
    return areq_hdr(mport, method, path, auth, NULL);
}

static inline void ares_free(struct ares *r)
{
    json_decref(r->json);
    r->json = NULL;
}

/* The value of header name in r's head ("" when absent), in a static buffer. */
static inline const char *ares_header(const struct ares *r, const char *name)
{
    static char v[256];
    CHECK(http_head_value(r->head, name, v, sizeof v));
    return v;
}

/* The answer's "error" text ("" when there is none). */
static inline const char *ares_error(const struct ares *r)
{
    const char *e = json_string_value(json_object_get(r->json, "error"));
    return e ? e : "";
}

static inline int64_t ares_int(const struct ares *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    if (!json_is_integer(v)) fprintf(stderr, "key %s is not an integer in %s\n", key, r->head);
    CHECK(json_is_integer(v));
    return json_integer_value(v);
}

static inline const char *ares_str(const struct ares *r, const char *key)
{
    const char *s = json_string_value(json_object_get(r->json, key));
    return s ? s : "(not a string)";
}

/* One request whose status must be want (and, when error is not NULL, whose "error" contains
 * it). Returns the answer for more checks (the caller frees it). */
static inline struct ares aexpect(int mport, const char *method, const char *path, const char *auth,
                                  int want, const char *error)
{
    struct ares r = areq(mport, method, path, auth);
    if (r.status != want || (error && !strstr(ares_error(&r), error))) {
        char *body = r.json ? json_dumps(r.json, 0) : NULL;
        fprintf(stderr, "%s %s (auth %s): got %d %s, want %d \"%s\"\n", method, path,
                auth ? auth : "none", r.status, body ? body : "(no JSON)", want,
                error ? error : "");
        free(body);
    }
    CHECK_EQ_INT(r.status, want);
    if (error) CHECK(strstr(ares_error(&r), error) != NULL);
    return r;
}

/* aexpect, the answer dropped. */
static inline void acheck(int mport, const char *method, const char *path, const char *auth,
                          int want, const char *error)
{
    struct ares r = aexpect(mport, method, path, auth, want, error);
    ares_free(&r);
}

#endif

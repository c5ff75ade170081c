/* cli_monitor.c: HTTP requests to the monitoring port (libcurl): GETs of the monitoring
 * endpoints and the admin requests under /admin/, with the bearer token when one is given;
 * their JSON (jansson), list paging, units and tables for the admin commands. */
#include "cli_monitor.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A monitoring document is a few KB per channel; refuse to buffer something absurd. */
#define MAX_BODY_BYTES (256u << 20)

static CURL *curl;

static void out_of_memory(void)
{
    fprintf(stderr, "%s: out of memory\n", CLI_PROG);
    exit(CLI_EXIT_FAIL);
}

struct body {
    char *data;
    size_t len, cap;
    bool too_large;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > MAX_BODY_BYTES) {
        b->too_large = true;
        return 0; /* makes curl fail with a write error */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* ctx->monitor without trailing slashes, so that base + "/streaming/..." has one. */
static size_t base_len(const char *base)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return n;
}

/* Sets up the shared handle for one request; headers gets the list to free after it. */
static void setup_request(const struct cli_ctx *ctx, const char *method, const char *url,
                          struct body *body, char *errbuf, struct curl_slist **headers)
{
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    /* A changing admin request answers only after the server's commit, which for a large purge
     * takes longer than any GET. */
    long timeout = strcmp(method, "GET") == 0 ? CLI_MONITOR_TIMEOUT_S : CLI_MONITOR_ADMIN_TIMEOUT_S;
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CLI_MONITOR_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, CLI_PROG "/" STANZA_VERSION);
    /* The body may be compressed if the server likes; curl decodes whatever it offers. */
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    if (strcmp(method, "POST") == 0) {
        /* Parameters are in the query; an empty body, with its Content-Length: 0. */
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    *headers = NULL;
    if (ctx->token) {
        size_t len = strlen(ctx->token) + 32;
        char *h = malloc(len);
        if (!h) out_of_memory();
        snprintf(h, len, "Authorization: Bearer %s", ctx->token);
        *headers = curl_slist_append(NULL, h);
        free(h);
        if (!*headers) out_of_memory();
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
}

/* An error status: the server's {"error": ...} text when it sent one, and for 401/403 what to
 * do about the token. */
static void print_http_error(const struct cli_ctx *ctx, const char *method, const char *path_query,
                             long status, const struct body *body)
{
    json_t *doc = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    const char *text = cli_json_str(doc, "error");
    if (text)
        fprintf(stderr, "%s: %s (HTTP %ld)\n", CLI_PROG, text, status);
    else
        fprintf(stderr, "%s: monitoring at %s: %s %s: HTTP %ld\n", CLI_PROG, ctx->monitor, method,
                path_query, status);
    json_decref(doc);
    if (status == 401 && !ctx->token)
        fprintf(stderr,
                "%s: hint: this needs the server's admin_token: pass it with --token T or "
                "set $" CLI_TOKEN_ENV "\n",
                CLI_PROG);
    else if (status == 401)
        fprintf(stderr,
                "%s: hint: the server did not take the token of --token or $" CLI_TOKEN_ENV
                " as a bearer token\n",
                CLI_PROG);
    else if (status == 403 && ctx->token)
        fprintf(stderr,
                "%s: hint: the token of --token or $" CLI_TOKEN_ENV " must be the server's "
                "admin_token (and the server must have one configured)\n",
                CLI_PROG);
    else if (status == 403)
        fprintf(stderr,
                "%s: hint: this needs admin_token set in the server's config, passed here "
                "with --token T or $" CLI_TOKEN_ENV "\n",
                CLI_PROG);
}

/* A token goes into a header line: a control character would end or corrupt it. */
static bool token_ok(const char *token)
{
    for (const unsigned char *p = (const unsigned char *)token; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

static int perform(const struct cli_ctx *ctx, const char *method, const char *path_query,
                   bool quiet_404, json_t **out, long *status_out)
{
    *out = NULL;
    *status_out = 0;
    if (!token_ok(ctx->token)) {
        fprintf(stderr, "%s: the admin token contains control characters\n", CLI_PROG);
        return CLI_EXIT_USAGE;
    }
    if (!curl) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(curl = curl_easy_init())) {
            fprintf(stderr, "%s: cannot initialise libcurl\n", CLI_PROG);
            return CLI_EXIT_FAIL;
        }
    }
    size_t blen = base_len(ctx->monitor);
    size_t ulen = blen + strlen(path_query) + 1;
    char *url = malloc(ulen);
    if (!url) out_of_memory();
    snprintf(url, ulen, "%.*s%s", (int)blen, ctx->monitor, path_query);

    struct body body = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers;
    setup_request(ctx, method, url, &body, errbuf, &headers);

    int rc = CLI_EXIT_OK;
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    *status_out = status;
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (body.too_large) why = "response too large";
        fprintf(stderr, "%s: cannot reach monitoring at %s: %s\n", CLI_PROG, ctx->monitor, why);
        /* The request may have reached the server, which then carries it out regardless. */
        if (cc == CURLE_OPERATION_TIMEDOUT && strcmp(method, "GET") != 0)
            fprintf(stderr, "%s: the server may still carry out the %s\n", CLI_PROG, method);
        rc = CLI_EXIT_FAIL;
    } else if (status == 404 && quiet_404) {
        rc = CLI_MONITOR_NOT_FOUND;
    } else if (status < 200 || status > 299) {
        print_http_error(ctx, method, path_query, status, &body);
        rc = CLI_EXIT_FAIL;
    } else {
        json_error_t jerr;
        *out = json_loadb(body.data ? body.data : "", body.len, JSON_DECODE_ANY, &jerr);
        if (!*out) {
            fprintf(stderr, "%s: monitoring at %s: %s %s: invalid JSON: %s (offset %d)\n", CLI_PROG,
                    ctx->monitor, method, path_query, jerr.text, jerr.position);
            rc = CLI_EXIT_FAIL;
        }
    }
    curl_slist_free_all(headers);
    free(body.data);
    free(url);
    return rc;
}

int cli_monitor_get(const struct cli_ctx *ctx, const char *path_query, json_t **out)
{
    long status;
    return perform(ctx, "GET", path_query, true, out, &status);
}

int cli_monitor_request(const struct cli_ctx *ctx, const char *method, const char *path_query,
                        json_t **out, long *status)
{
    long ignored;
    return perform(ctx, method, path_query, false, out, status ? status : &ignored);
}

int cli_monitor_get_list(const struct cli_ctx *ctx, const char *path, const char *query,
                         const char *array_key, json_t **out)
{
    *out = NULL;
    json_t *all = NULL;
    size_t offset = 0;
    for (;;) {
        char pq[1024];
        const char *sep = *query ? "&" : "";
        if (offset == 0)
            snprintf(pq, sizeof pq, "%s%s%s", path, *query ? "?" : "", query);
        else
            snprintf(pq, sizeof pq, "%s?%s%soffset=%zu", path, query, sep, offset);
        json_t *page = NULL;
        int rc = cli_monitor_get(ctx, pq, &page);
        if (rc != CLI_EXIT_OK) {
            json_decref(all);
            return rc;
        }
        if (!json_is_object(page)) {
            fprintf(stderr, "%s: monitoring at %s: GET %s: not a JSON object\n", CLI_PROG,
                    ctx->monitor, pq);
            json_decref(page);
            json_decref(all);
            return CLI_EXIT_FAIL;
        }
        json_t *items = json_object_get(page, array_key);
        size_t n = json_is_array(items) ? json_array_size(items) : 0;
        uint64_t total = cli_json_u64(page, "total");
        if (!all) {
            all = page;
            if (!json_is_array(items)) json_object_set_new(all, array_key, json_array());
        } else {
            if (n > 0) json_array_extend(json_object_get(all, array_key), items);
            json_decref(page);
        }
        offset += n;
        /* An empty page ends it too: the list may have shrunk between two pages. */
        if (n == 0 || offset >= total) break;
    }
    json_object_set_new(all, "count",
                        json_integer((json_int_t)json_array_size(json_object_get(all, array_key))));
    *out = all;
    return CLI_EXIT_OK;
}

char *cli_monitor_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e) return NULL;
    char *copy = strdup(e);
    curl_free(e);
    return copy;
}

bool cli_monitor_add_param(char **pq, const char *key, const char *value)
{
    if (!value) return true;
    char *esc = cli_monitor_escape(value);
    if (!esc) return false;
    size_t old = strlen(*pq), len = old + strlen(key) + strlen(esc) + 3;
    char *grown = realloc(*pq, len);
    if (!grown) out_of_memory();
    *pq = grown;
    snprintf(*pq + old, len - old, "%c%s=%s", strchr(*pq, '?') ? '&' : '?', key, esc);
    free(esc);
    return true;
}

void cli_monitor_cleanup(void)
{
    if (!curl) return;
    curl_easy_cleanup(curl);
    curl = NULL;
    curl_global_cleanup();
}

/* ---- JSON accessors ---- */

uint64_t cli_json_u64(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        return i > 0 ? (uint64_t)i : 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
    }
    return 0;
}

double cli_json_double(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

const char *cli_json_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : NULL;
}

bool cli_json_bool(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

void cli_json_print(FILE *f, const json_t *v)
{
    /* 15 significant digits: enough for any age or rate, without 0.10000000000000001. */
    json_dumpf(v, f, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    fputc('\n', f);
}

/* ---- units ---- */

void cli_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    /* Switch unit before "1024.0 KiB" would be printed. */
    while (v >= 1023.95 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

void cli_fmt_age(char *buf, size_t len, double seconds)
{
    uint64_t s = seconds > 0 && seconds < 1e15 ? (uint64_t)seconds : 0;
    if (s < 60)
        snprintf(buf, len, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

/* ---- tables ---- */

void cli_table_init(struct cli_table *t, int ncols, const char *const *headers, const bool *right)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->headers = headers;
    t->right = right;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof *c);
        if (!c) out_of_memory();
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++) {
        char *c = strdup(cells[i] ? cells[i] : "-");
        if (!c) out_of_memory();
        t->cells[t->rows * (size_t)t->ncols + (size_t)i] = c;
    }
    t->rows++;
}

static void print_row(const struct cli_table *t, FILE *f, const char *const *cells,
                      const int *width)
{
    for (int i = 0; i < t->ncols; i++) {
        bool last = i == t->ncols - 1;
        bool right = t->right && t->right[i];
        if (i > 0) fputs("  ", f);
        if (right)
            fprintf(f, "%*s", width[i], cells[i]);
        else if (last)
            fputs(cells[i], f);
        else
            fprintf(f, "%-*s", width[i], cells[i]);
    }
    fputc('\n', f);
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
    int *width = calloc((size_t)t->ncols, sizeof *width);
    if (!width) out_of_memory();
    for (int i = 0; i < t->ncols; i++)
        width[i] = (int)strlen(t->headers[i]);
    for (size_t r = 0; r < t->rows; r++)
        for (int i = 0; i < t->ncols; i++) {
            int w = (int)strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (w > width[i]) width[i] = w;
        }
    print_row(t, f, t->headers, width);
    for (size_t r = 0; r < t->rows; r++)
        print_row(t, f, (const char *const *)&t->cells[r * (size_t)t->ncols], width);
    free(width);
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

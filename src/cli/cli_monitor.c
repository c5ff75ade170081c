/* cli_monitor.c: HTTP GETs of the monitoring endpoints (libcurl), their JSON (jansson), list
 * paging, units and tables for the admin commands. */
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

int cli_monitor_get(const struct cli_ctx *ctx, const char *path_query, json_t **out)
{
    *out = NULL;
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
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)CLI_MONITOR_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CLI_MONITOR_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, CLI_PROG "/" STANZA_VERSION);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    /* The body may be compressed if the server likes; curl decodes whatever it offers. */
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");

    int rc = CLI_EXIT_OK;
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (body.too_large) why = "response too large";
        fprintf(stderr, "%s: cannot reach monitoring at %s: %s\n", CLI_PROG, ctx->monitor, why);
        rc = CLI_EXIT_FAIL;
    } else if (status == 404) {
        rc = CLI_MONITOR_NOT_FOUND;
    } else if (status < 200 || status > 299) {
        fprintf(stderr, "%s: monitoring at %s: GET %s: HTTP %ld\n", CLI_PROG, ctx->monitor,
                path_query, status);
        rc = CLI_EXIT_FAIL;
    } else {
        json_error_t jerr;
        *out = json_loadb(body.data ? body.data : "", body.len, JSON_DECODE_ANY, &jerr);
        if (!*out) {
            fprintf(stderr, "%s: monitoring at %s: GET %s: invalid JSON: %s (offset %d)\n",
                    CLI_PROG, ctx->monitor, path_query, jerr.text, jerr.position);
            rc = CLI_EXIT_FAIL;
        }
    }
    free(body.data);
    free(url);
    return rc;
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

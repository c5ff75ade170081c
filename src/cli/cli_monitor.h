/* cli_monitor.h: what the admin commands share: requests to the server's HTTP monitoring port
 * (NSS-compatible /streaming/...z JSON and the /admin/ endpoints, over libcurl, parsed with
 * jansson), list paging, and the human-readable units and text tables they print. */
#ifndef STANZA_CLI_MONITOR_H
#define STANZA_CLI_MONITOR_H

#include "cli_common.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* Whole-request limit (connect included) for one GET. */
#define CLI_MONITOR_TIMEOUT_S 5
/* Whole-request limit for a POST or DELETE: the server answers those after its commit. */
#define CLI_MONITOR_ADMIN_TIMEOUT_S 60

/* cli_monitor_get() returns this (and prints nothing) on HTTP 404, so that the caller can name
 * what was not found. */
#define CLI_MONITOR_NOT_FOUND (-2)

/* GETs ctx->monitor + path_query (which starts with '/') and parses the body as JSON into *out
 * (the caller decrefs it). Every request carries "Authorization: Bearer <ctx->token>" when a
 * token is set (servers with monitor_require_token want it on the read-only endpoints too).
 * Returns CLI_EXIT_OK, CLI_MONITOR_NOT_FOUND, or CLI_EXIT_FAIL after printing why on stderr:
 *   "stanza: cannot reach monitoring at URL: <curl error>"  (no HTTP answer)
 *   "stanza: <server's error text> (HTTP <code>)"           (an error status with a JSON
 *                                                            {"error": ...} body)
 *   "stanza: monitoring at URL: GET PATH: HTTP <code>"       (any other error status)
 *   "stanza: monitoring at URL: GET PATH: invalid JSON: ..."
 * 401 and 403 add a "stanza: hint: ..." line about --token / $STANZA_ADMIN_TOKEN. A token with
 * control characters is refused before any request (CLI_EXIT_USAGE). */
int cli_monitor_get(const struct cli_ctx *ctx, const char *path_query, json_t **out);

/* The same with any method ("GET", "POST", "DELETE"; a POST sends an empty body), for the
 * /admin/ endpoints: a 404 is an error like any other (printed, CLI_EXIT_FAIL), since the
 * server names what it did not find. *status (may be NULL) gets the HTTP status, 0 if none. */
int cli_monitor_request(const struct cli_ctx *ctx, const char *method, const char *path_query,
                        json_t **out, long *status);

/* GETs a paged list endpoint (clientsz, channelsz): path plus query (may be "" or start with
 * no '?' or '&'), then &offset=N for each further page until "total" items were read (or a page
 * came back empty). *out is the first page's object with the other pages' array_key items
 * appended and "count" set to the number of items. Same return values as cli_monitor_get(). */
int cli_monitor_get_list(const struct cli_ctx *ctx, const char *path, const char *query,
                         const char *array_key, json_t **out);

/* URL-escapes s for a query value; free() the result. NULL on allocation failure. */
char *cli_monitor_escape(const char *s);

/* Appends "?key=value" or "&key=value" (value escaped) to the malloc'ed *pq when value is not
 * NULL; false if escaping failed. */
bool cli_monitor_add_param(char **pq, const char *key, const char *value);

/* Releases the HTTP handle (kept between calls so that --watch reuses its connection). */
void cli_monitor_cleanup(void);

/* Reads o[key] as a non-negative integer (reals truncated; missing, null, negative: 0). */
uint64_t cli_json_u64(const json_t *o, const char *key);
/* o[key] as a number; 0 if missing or not a number. */
double cli_json_double(const json_t *o, const char *key);
/* o[key] if it is a non-empty string, else NULL. */
const char *cli_json_str(const json_t *o, const char *key);
/* o[key] as a boolean; false if missing. */
bool cli_json_bool(const json_t *o, const char *key);

/* Pretty-prints v (2-space indent) and a newline to f. */
void cli_json_print(FILE *f, const json_t *v);

/* "512 B", "1.2 KiB", "3.4 MiB", ... (binary units, one decimal above bytes). */
void cli_fmt_bytes(char *buf, size_t len, uint64_t bytes);
/* "0s", "12s", "3m4s", "2h5m", "3d4h" (seconds truncated). */
void cli_fmt_age(char *buf, size_t len, double seconds);

/* A text table: a header row, then rows of cells; columns are padded to their widest cell and
 * separated by two spaces; right-aligned columns (numbers) pad on the left. No trailing blanks. */
struct cli_table {
    int ncols;
    const char *const *headers;
    const bool *right; /* per column; NULL: all left-aligned */
    char **cells;      /* rows * ncols strdup'ed cells */
    size_t rows, cap;
};

void cli_table_init(struct cli_table *t, int ncols, const char *const *headers, const bool *right);
/* Appends a row of t->ncols cells (copied; NULL prints as "-"). */
void cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

#endif

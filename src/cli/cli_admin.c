/* cli_admin.c: `stanza pending`, `stanza channels`, `stanza clients` and `stanza server`,
 * read-only views of a running server through its HTTP monitoring endpoints (-m/--monitor):
 * /streaming/pendingz, /streaming/channelsz, /streaming/clientsz and /streaming/serverz
 * (cli_monitor.c does the HTTP and the JSON).
 *
 * `pending` shows what each consumer still has to acknowledge, as the server computes it
 * (/streaming/pendingz): a plain or durable subscription is one row, a queue group is one row
 * (its shared backlog once, plus every member's in-flight messages). Nothing is recomputed
 * here. A server without that endpoint (NSS) gets its subscriptions shown one by one, as it
 * reports them. */
#include "cli_commands.h"
#include "cli_common.h"
#include "cli_monitor.h"
#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A queue row lists its members' client ids while they fit in this many characters, else it
 * says "N members" (the JSON always has the full list). */
#define MAX_CLIENT_CELL 40
/* How often --watch wakes while sleeping to notice SIGINT/SIGTERM. */
#define WATCH_POLL_NS 100000000L

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", CLI_PROG);
        exit(CLI_EXIT_FAIL);
    }
    return p;
}

/* A 404 from a list endpoint: the URL is not a stanzad (or NSS) monitoring port. */
static int endpoint_missing(const struct cli_ctx *ctx, const char *path)
{
    fprintf(stderr, "%s: monitoring at %s: GET %s: HTTP 404 (not a streaming monitoring port?)\n",
            CLI_PROG, ctx->monitor, path);
    return CLI_EXIT_FAIL;
}

/* ---- pending ---- */

struct pending_args {
    const char *channel; /* NULL: all channels */
    const char *queue, *durable;
    bool json;
};

/* One output row: a subscription or a whole queue group, as the server computed it. Strings
 * point into the JSON document, which outlives the rows. */
struct prow {
    const char *channel;
    const char *queue_name; /* as the server spells it ("durable:group" for durable groups) */
    const char *group;      /* the group as its clients name it */
    const char *durable;
    char *clients; /* comma-joined member client ids */
    size_t members;
    uint64_t inflight_msgs, inflight_bytes, backlog_msgs, backlog_bytes;
    uint64_t pending_msgs, pending_bytes, redelivered, dead;
    double oldest;
    bool stalled, offline, paused;
};

struct prows {
    struct prow *v;
    size_t n, cap;
};

static void append_client(struct prow *r, const char *id)
{
    if (!id) id = "?";
    size_t old = r->clients ? strlen(r->clients) : 0;
    r->clients = xrealloc(r->clients, old + strlen(id) + 2);
    if (old) r->clients[old++] = ',';
    strcpy(r->clients + old, id);
    r->members++;
}

static struct prow *new_row(struct prows *rows)
{
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 32;
        rows->v = xrealloc(rows->v, rows->cap * sizeof *rows->v);
    }
    struct prow *r = &rows->v[rows->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static void free_rows(struct prows *rows)
{
    for (size_t i = 0; i < rows->n; i++)
        free(rows->v[i].clients);
    free(rows->v);
    memset(rows, 0, sizeof *rows);
}

/* The counts of a row (a pendingz row, or a subscription: the keys are the same). A server
 * without the backlog keys (NSS) has only pending_count: the in-flight count. */
static void row_counts(struct prow *r, const json_t *o)
{
    bool extended = json_object_get(o, "inflight_msgs") != NULL;
    r->inflight_msgs = cli_json_u64(o, extended ? "inflight_msgs" : "pending_count");
    r->inflight_bytes = cli_json_u64(o, "inflight_bytes");
    r->backlog_msgs = cli_json_u64(o, "backlog_msgs");
    r->backlog_bytes = cli_json_u64(o, "backlog_bytes");
    r->pending_msgs = extended ? cli_json_u64(o, "pending_msgs") : r->inflight_msgs;
    r->pending_bytes = cli_json_u64(o, "pending_bytes");
    r->redelivered = cli_json_u64(o, "redelivered_total");
    r->dead = cli_json_u64(o, "dead_total");
    r->oldest = cli_json_double(o, "oldest_pending_age");
    r->stalled = cli_json_bool(o, "is_stalled");
    r->offline = cli_json_bool(o, "is_offline");
    r->paused = cli_json_bool(o, "is_paused");
}

/* A row of /streaming/pendingz, as it is. */
static void add_server_row(struct prows *rows, const json_t *o)
{
    struct prow *r = new_row(rows);
    r->channel = cli_json_str(o, "channel");
    r->queue_name = cli_json_str(o, "queue_name");
    r->group = cli_json_str(o, "queue_group");
    r->durable = cli_json_str(o, "durable_name");
    size_t i;
    const json_t *id;
    json_array_foreach(json_object_get(o, "members"), i, id)
        append_client(r, json_string_value(id));
    row_counts(r, o);
}

/* The filters of a server without pendingz, on its subscription rows. */
static bool row_selected(const struct pending_args *a, const struct prow *r)
{
    if (a->queue && !(r->queue_name &&
                      (strcmp(r->queue_name, a->queue) == 0 || strcmp(r->group, a->queue) == 0)))
        return false;
    if (a->durable) {
        const char *d = r->durable;
        /* A durable group's name is in its queue name even if durable_name is missing. */
        size_t dlen = d ? strlen(d) : 0;
        if (!d && r->queue_name && r->group != r->queue_name) {
            d = r->queue_name;
            dlen = (size_t)(r->group - 1 - r->queue_name);
        }
        if (!d || dlen != strlen(a->durable) || strncmp(d, a->durable, dlen) != 0) return false;
    }
    return true;
}

/* A subscription of a server without pendingz (NSS): one row as the server reports it, not
 * folded into its queue group. */
static void add_sub_row(struct prows *rows, const struct pending_args *a, const char *channel,
                        const json_t *sub)
{
    struct prow *r = new_row(rows);
    r->channel = channel;
    r->queue_name = r->group = cli_json_str(sub, "queue_name");
    r->durable = cli_json_str(sub, "durable_name");
    /* A durable queue group is reported as "durable:group" (a durable name has no ':'). */
    if (r->queue_name && cli_json_bool(sub, "is_durable")) {
        const char *colon = strchr(r->queue_name, ':');
        if (colon) r->group = colon + 1;
    }
    append_client(r, cli_json_str(sub, "client_id"));
    row_counts(r, sub);
    if (!row_selected(a, r)) free(rows->v[--rows->n].clients);
}

static void add_channel(struct prows *rows, const struct pending_args *a, const json_t *ch)
{
    const char *name = cli_json_str(ch, "name");
    size_t i;
    const json_t *sub;
    json_array_foreach(json_object_get(ch, "subscriptions"), i, sub)
        add_sub_row(rows, a, name, sub);
}

/* The per-subscription rows of a server without /streaming/pendingz, from channelsz. */
static int fetch_sub_rows(const struct cli_ctx *ctx, const struct pending_args *a, json_t **doc,
                          struct prows *rows)
{
    int rc;
    if (a->channel) {
        char *esc = cli_monitor_escape(a->channel);
        if (!esc) return CLI_EXIT_FAIL;
        size_t len = strlen(esc) + 64;
        char *pq = xrealloc(NULL, len);
        snprintf(pq, len, "/streaming/channelsz?channel=%s&subs=1", esc);
        rc = cli_monitor_get(ctx, pq, doc);
        free(pq);
        free(esc);
        if (rc == CLI_MONITOR_NOT_FOUND) {
            fprintf(stderr, "%s: unknown channel \"%s\"\n", CLI_PROG, a->channel);
            return CLI_EXIT_FAIL;
        }
        if (rc != CLI_EXIT_OK) return rc;
        add_channel(rows, a, *doc);
    } else {
        rc = cli_monitor_get_list(ctx, "/streaming/channelsz", "subs=1", "channels", doc);
        if (rc == CLI_MONITOR_NOT_FOUND) return endpoint_missing(ctx, "/streaming/channelsz");
        if (rc != CLI_EXIT_OK) return rc;
        size_t i;
        const json_t *ch;
        json_array_foreach(json_object_get(*doc, "channels"), i, ch) add_channel(rows, a, ch);
    }
    return CLI_EXIT_OK;
}

/* The server's rows from /streaming/pendingz (filtered there); a server without it (404) gets
 * its subscriptions shown one by one instead. Returns an exit code. */
static int fetch_rows(const struct cli_ctx *ctx, const struct pending_args *a, json_t **doc,
                      struct prows *rows)
{
    char *pq = xrealloc(NULL, 32);
    strcpy(pq, "/streaming/pendingz");
    int rc = cli_monitor_add_param(&pq, "channel", a->channel) &&
                     cli_monitor_add_param(&pq, "queue", a->queue) &&
                     cli_monitor_add_param(&pq, "durable", a->durable)
                 ? cli_monitor_get(ctx, pq, doc)
                 : CLI_EXIT_FAIL;
    free(pq);
    /* Not there (NSS), or no such channel: channelsz tells which. */
    if (rc == CLI_MONITOR_NOT_FOUND) return fetch_sub_rows(ctx, a, doc, rows);
    if (rc != CLI_EXIT_OK) return rc;
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(*doc, "pending"), i, row) add_server_row(rows, row);
    return CLI_EXIT_OK;
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void print_pending_json(FILE *f, const struct prows *rows)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < rows->n; i++) {
        const struct prow *r = &rows->v[i];
        json_t *o = json_object();
        json_object_set_new(o, "inflight_msgs", json_integer((json_int_t)r->inflight_msgs));
        json_object_set_new(o, "inflight_bytes", json_integer((json_int_t)r->inflight_bytes));
        json_object_set_new(o, "backlog_msgs", json_integer((json_int_t)r->backlog_msgs));
        json_object_set_new(o, "backlog_bytes", json_integer((json_int_t)r->backlog_bytes));
        json_object_set_new(o, "pending_msgs", json_integer((json_int_t)r->pending_msgs));
        json_object_set_new(o, "pending_bytes", json_integer((json_int_t)r->pending_bytes));
        json_object_set_new(o, "oldest_pending_age", json_real(r->oldest));
        json_object_set_new(o, "redelivered_total", json_integer((json_int_t)r->redelivered));
        json_object_set_new(o, "is_stalled", json_boolean(r->stalled));
        json_object_set_new(o, "is_offline", json_boolean(r->offline));
        json_object_set_new(o, "dead_total", json_integer((json_int_t)r->dead));
        json_object_set_new(o, "is_paused", json_boolean(r->paused));
        json_object_set_new(o, "channel", json_str_or_null(r->channel));
        json_object_set_new(o, "queue_name", json_str_or_null(r->queue_name));
        json_object_set_new(o, "durable_name", json_str_or_null(r->durable));
        json_object_set_new(o, "client_id", json_str_or_null(r->clients));
        json_array_append_new(arr, o);
    }
    cli_json_print(f, arr);
    json_decref(arr);
}

static const char *const pending_headers[] = {
    "CHANNEL",       "QUEUE",    "DURABLE", "CLIENT", "PENDING",
    "PENDING_BYTES", "INFLIGHT", "BACKLOG", "OLDEST", "STATE",
};
static const bool pending_right[] = {false, false, false, false, true,
                                     true,  true,  true,  true,  false};

static void print_pending_table(FILE *f, const struct prows *rows)
{
    struct cli_table t;
    cli_table_init(&t, 10, pending_headers, pending_right);
    for (size_t i = 0; i < rows->n; i++) {
        const struct prow *r = &rows->v[i];
        char members[32], pending[24], pbytes[24], inflight[24], backlog[24], oldest[24];
        /* A single long client id is shown whole; only lists are abbreviated. */
        const char *client = r->clients;
        if (r->members > 1 && strlen(r->clients) > MAX_CLIENT_CELL) {
            snprintf(members, sizeof members, "%zu members", r->members);
            client = members;
        }
        snprintf(pending, sizeof pending, "%" PRIu64, r->pending_msgs);
        cli_fmt_bytes(pbytes, sizeof pbytes, r->pending_bytes);
        snprintf(inflight, sizeof inflight, "%" PRIu64, r->inflight_msgs);
        snprintf(backlog, sizeof backlog, "%" PRIu64, r->backlog_msgs);
        if (r->pending_msgs > 0)
            cli_fmt_age(oldest, sizeof oldest, r->oldest);
        else
            snprintf(oldest, sizeof oldest, "-");
        /* An operator's pause explains the rest; then no consumer; then no room. */
        const char *state = r->paused    ? "paused"
                            : r->offline ? "offline"
                            : r->stalled ? "stalled"
                                         : "ok";
        const char *cells[] = {r->channel, r->group, r->durable, client, pending,
                               pbytes,     inflight, backlog,    oldest, state};
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, f);
    cli_table_free(&t);
}

/* One fetch and print into f. */
static int pending_once(const struct cli_ctx *ctx, const struct pending_args *a, FILE *f)
{
    json_t *doc = NULL;
    struct prows rows = {0};
    int rc = fetch_rows(ctx, a, &doc, &rows);
    if (rc == CLI_EXIT_OK) {
        if (a->json)
            print_pending_json(f, &rows);
        else
            print_pending_table(f, &rows);
    }
    free_rows(&rows);
    json_decref(doc);
    return rc;
}

/* Sleeps up to seconds; false if SIGINT/SIGTERM came first. */
static bool watch_sleep(int64_t seconds)
{
    double until = cli_now() + (double)seconds;
    while (!cli_stop) {
        double left = until - cli_now();
        if (left <= 0) return true;
        struct timespec ts = {0, left < 0.1 ? (long)(left * 1e9) : WATCH_POLL_NS};
        nanosleep(&ts, NULL);
    }
    return false;
}

static int run_pending(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct pending_args a = {0};
    int64_t watch = 0;
    const struct cli_opt opts[] = {
        {'q', "queue", CLI_OPT_STR, &a.queue, 0, 0},
        {'d', "durable", CLI_OPT_STR, &a.durable, 0, 0},
        {0, "json", CLI_OPT_FLAG, &a.json, 0, 0},
        {'w', "watch", CLI_OPT_INT, &watch, 1, 86400},
        {0},
    };
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, pos, 0, 1, &npos);
    if (rc != CLI_CONTINUE) return rc;
    if (npos == 1) {
        if (!*pos[0]) return cli_usage_error(cmd, "empty channel name");
        a.channel = pos[0];
    }

    if (watch == 0) {
        rc = pending_once(ctx, &a, stdout);
        cli_monitor_cleanup();
        return rc;
    }

    /* --watch: render each round into memory first, so the screen is cleared and redrawn in
     * one write, and an error never leaves half a table. The first round failing is fatal
     * (a wrong URL or channel should not loop); later failures are shown and retried. */
    cli_install_stop_handlers();
    bool tty = isatty(STDOUT_FILENO);
    for (int round = 0; !cli_stop; round++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem) {
            perror(CLI_PROG ": open_memstream");
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (tty) {
            time_t now = (time_t)(clock_wall_ns() / CLOCK_NS_PER_SEC);
            char stamp[32];
            strftime(stamp, sizeof stamp, "%H:%M:%S", localtime(&now));
            fprintf(mem, "\033[H\033[2J");
            fprintf(mem, "every %" PRId64 "s  %s  %s\n\n", watch, ctx->monitor, stamp);
        }
        rc = pending_once(ctx, &a, mem);
        fclose(mem);
        if (rc != CLI_EXIT_OK && round == 0) {
            free(buf);
            break;
        }
        fwrite(buf, 1, len, stdout);
        if (!tty && rc == CLI_EXIT_OK && !a.json) fputc('\n', stdout); /* rounds apart */
        fflush(stdout);
        free(buf);
        rc = CLI_EXIT_OK;
        if (!watch_sleep(watch)) break;
    }
    cli_monitor_cleanup();
    return rc;
}

const struct cli_command cli_pending_command = {
    .name = "pending",
    .usage = "pending [CHANNEL] [--queue Q] [--durable D] [--json] [--watch SECS]",
    .summary = "Messages each subscription or queue group still has to acknowledge.",
    .help =
        "One row per subscription; the members of a queue group share its backlog, so a group\n"
        "is one row: PENDING = the group's BACKLOG (stored, not yet sent) + every member's\n"
        "INFLIGHT (sent, not acknowledged). OLDEST is the age of the oldest pending message;\n"
        "STATE is paused (`stanza pause`), offline (no member connected), stalled (every\n"
        "member at its max in flight) or ok. A queue row's CLIENT lists the members\n"
        "(\"N members\" when that is too long).\n"
        "Reads http://MONITOR/streaming/pendingz (see -m/--monitor), where the server computes\n"
        "the rows. A server without it (nats-streaming-server) is read through\n"
        "/streaming/channelsz instead: one row per subscription as it reports it (queue groups\n"
        "not folded; PENDING is its pending_count, the in-flight messages only).\n\n"
        "Options:\n"
        "  -q, --queue Q      only queue group Q (\"group\" or \"durable:group\")\n"
        "  -d, --durable D    only durable D (durable subscriptions and durable groups)\n"
        "      --json         an array of objects with exact numbers instead of the table\n"
        "  -w, --watch SECS   print again every SECS seconds until interrupted\n",
    .run = run_pending,
};

/* ---- channels, clients, server ---- */

/* The part channels, clients and server share: the --json option, the GET (all pages of
 * list_key when it is not NULL), and --json's output. Returns CLI_CONTINUE with *doc set when a
 * table is to be printed from it; anything else is the exit status. */
static int fetch_for_table(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                           char **argv, const char *path, const char *query, const char *list_key,
                           json_t **doc)
{
    bool json = false;
    const struct cli_opt opts[] = {
        {0, "json", CLI_OPT_FLAG, &json, 0, 0},
        {0},
    };
    int npos = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, opts, NULL, 0, 0, &npos);
    if (rc != CLI_CONTINUE) return rc;
    *doc = NULL;
    rc = list_key ? cli_monitor_get_list(ctx, path, query, list_key, doc)
                  : cli_monitor_get(ctx, path, doc);
    cli_monitor_cleanup();
    if (rc == CLI_MONITOR_NOT_FOUND) return endpoint_missing(ctx, path);
    if (rc != CLI_EXIT_OK) return rc;
    if (json) {
        cli_json_print(stdout, *doc);
        json_decref(*doc);
        return CLI_EXIT_OK;
    }
    return CLI_CONTINUE;
}

static int run_channels(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    json_t *doc;
    int rc =
        fetch_for_table(ctx, cmd, argc, argv, "/streaming/channelsz", "subs=1", "channels", &doc);
    if (rc != CLI_CONTINUE) return rc;
    static const char *const headers[] = {"NAME", "MSGS", "BYTES", "FIRST", "LAST", "SUBS"};
    static const bool right[] = {false, true, true, true, true, true};
    struct cli_table t;
    cli_table_init(&t, 6, headers, right);
    size_t i;
    const json_t *ch;
    json_array_foreach(json_object_get(doc, "channels"), i, ch)
    {
        char msgs[24], bytes[24], first[24], last[24], subs[24];
        snprintf(msgs, sizeof msgs, "%" PRIu64, cli_json_u64(ch, "msgs"));
        cli_fmt_bytes(bytes, sizeof bytes, cli_json_u64(ch, "bytes"));
        snprintf(first, sizeof first, "%" PRIu64, cli_json_u64(ch, "first_seq"));
        snprintf(last, sizeof last, "%" PRIu64, cli_json_u64(ch, "last_seq"));
        const json_t *sa = json_object_get(ch, "subscriptions");
        uint64_t nsubs = json_object_get(ch, "subs_count") ? cli_json_u64(ch, "subs_count")
                                                           : (uint64_t)json_array_size(sa);
        snprintf(subs, sizeof subs, "%" PRIu64, nsubs);
        const char *cells[] = {cli_json_str(ch, "name"), msgs, bytes, first, last, subs};
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(doc);
    return CLI_EXIT_OK;
}

const struct cli_command cli_channels_command = {
    .name = "channels",
    .usage = "channels [--json]",
    .summary = "List the channels: messages, bytes, first and last sequence, subscriptions.",
    .help = "Reads http://MONITOR/streaming/channelsz?subs=1 (all pages).\n\n"
            "Options:\n"
            "      --json         print the server's JSON instead (pages merged into one)\n",
    .run = run_channels,
};

static int run_clients(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    json_t *doc;
    int rc = fetch_for_table(ctx, cmd, argc, argv, "/streaming/clientsz", "", "clients", &doc);
    if (rc != CLI_CONTINUE) return rc;
    static const char *const headers[] = {"ID", "SUBS", "HB_INBOX"};
    static const bool right[] = {false, true, false};
    struct cli_table t;
    cli_table_init(&t, 3, headers, right);
    size_t i;
    const json_t *cl;
    json_array_foreach(json_object_get(doc, "clients"), i, cl)
    {
        char subs[24];
        snprintf(subs, sizeof subs, "%" PRIu64, cli_json_u64(cl, "subs_count"));
        const char *cells[] = {cli_json_str(cl, "id"), subs, cli_json_str(cl, "hb_inbox")};
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(doc);
    return CLI_EXIT_OK;
}

const struct cli_command cli_clients_command = {
    .name = "clients",
    .usage = "clients [--json]",
    .summary = "List the connected streaming clients: id, subscriptions, heartbeat inbox.",
    .help = "Reads http://MONITOR/streaming/clientsz (all pages).\n\n"
            "Options:\n"
            "      --json         print the server's JSON instead (pages merged into one)\n",
    .run = run_clients,
};

static int run_server(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    json_t *doc;
    int rc = fetch_for_table(ctx, cmd, argc, argv, "/streaming/serverz", NULL, NULL, &doc);
    if (rc != CLI_CONTINUE) return rc;
    /* The server's key order (jansson keeps insertion order). */
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (json_is_string(v)) {
            printf("%s: %s\n", key, json_string_value(v));
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            printf("%s: %s\n", key, text ? text : "?");
            free(text);
        }
    }
    json_decref(doc);
    return CLI_EXIT_OK;
}

const struct cli_command cli_server_command = {
    .name = "server",
    .usage = "server [--json]",
    .summary = "Show the streaming server's state and totals, one \"key: value\" per line.",
    .help = "Reads http://MONITOR/streaming/serverz.\n\n"
            "Options:\n"
            "      --json         print the server's JSON instead\n",
    .run = run_server,
};

/* cli_jobs.c: the job-control admin commands (issue 9): `stanza msg`, `purge`, `delete-channel`,
 * `delete-durable`, `close-client`, `dead`, `requeue`, `pause` and `resume`, each one request
 * to the server's /admin/ endpoints on the monitoring port (cli_monitor.c sends it, with the
 * bearer token of --token / $STANZA_ADMIN_TOKEN).
 *
 * Arguments are checked here before anything is sent: a usage error (exit 2) never reaches the
 * network. The server answers a changing command only after its commit, so the one line printed
 * here ("purged 3 messages from ...") is what the store now says; --json prints the server's
 * object instead. */
#include "cli_commands.h"
#include "cli_common.h"
#include "cli_monitor.h"
#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sequences are u64 on the wire; the CLI takes them up to INT64_MAX (cli_parse_int's range),
 * far beyond any channel's. */
#define SEQ_MAX INT64_MAX

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

#define MAX_PARAMS 4

struct req;
/* Prints a command's line from the server's answer; returns an exit code. */
typedef int (*print_fn)(const json_t *doc, const struct req *r);

/* One admin request and how its answer is shown. */
struct req {
    const char *method, *path;
    const char *keys[MAX_PARAMS], *values[MAX_PARAMS]; /* query parameters (escaped when sent) */
    char nums[MAX_PARAMS][24];                         /* storage for numeric values */
    int n;
    bool json;       /* --json: print the server's object instead of calling print */
    print_fn print;  /* the one-line result */
    const void *arg; /* for print */
    long status;     /* after send_req(): the HTTP status, 0 if none */
};

/* Adds a query parameter; a NULL value leaves it out. */
static void req_str(struct req *r, const char *key, const char *value)
{
    if (!value) return;
    r->keys[r->n] = key;
    r->values[r->n++] = value;
}

/* Adds a decimal parameter (v >= 0); 0 (an option not given) leaves it out. */
static void req_num(struct req *r, const char *key, int64_t v)
{
    if (v == 0) return;
    snprintf(r->nums[r->n], sizeof r->nums[r->n], "%" PRId64, v);
    req_str(r, key, r->nums[r->n]);
}

/* A parameter's value, NULL if not given. */
static const char *req_get(const struct req *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->keys[i], key) == 0) return r->values[i];
    return NULL;
}

/* Sends r, then prints the server's object (--json) or r's line. Returns an exit code. */
static int send_req(const struct cli_ctx *ctx, struct req *r)
{
    char *pq = strdup(r->path);
    bool ok = pq != NULL;
    for (int i = 0; ok && i < r->n; i++)
        ok = cli_monitor_add_param(&pq, r->keys[i], r->values[i]);
    if (!ok) {
        free(pq);
        fprintf(stderr, "%s: out of memory\n", CLI_PROG);
        return CLI_EXIT_FAIL;
    }
    json_t *doc = NULL;
    int rc = cli_monitor_request(ctx, r->method, pq, &doc, &r->status);
    cli_monitor_cleanup();
    if (rc == CLI_EXIT_OK && !json_is_object(doc)) {
        fprintf(stderr, "%s: monitoring at %s: %s %s: not a JSON object\n", CLI_PROG, ctx->monitor,
                r->method, pq);
        rc = CLI_EXIT_FAIL;
    }
    free(pq);
    if (rc == CLI_EXIT_OK && r->json)
        cli_json_print(stdout, doc);
    else if (rc == CLI_EXIT_OK)
        rc = r->print(doc, r);
    json_decref(doc);
    return rc;
}

/* What every command here parses: exactly npos positional arguments, none empty, the command's
 * options (opts, at most 6) and --json. Returns CLI_CONTINUE or an exit code. */
static int parse_args(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv,
                      const struct cli_opt *opts, int npos, char **pos, bool *json)
{
    struct cli_opt all[8];
    int n = 0;
    for (; opts && opts[n].long_name && n < 6; n++)
        all[n] = opts[n];
    all[n++] = (struct cli_opt){0, "json", CLI_OPT_FLAG, json, 0, 0};
    all[n] = (struct cli_opt){0};
    int got = 0;
    int rc = cli_parse(ctx, cmd, argc, argv, all, pos, npos, npos, &got);
    if (rc != CLI_CONTINUE) return rc;
    for (int i = 0; i < npos; i++)
        if (!*pos[i]) return cli_usage_error(cmd, "argument %d is empty", i + 1);
    return CLI_CONTINUE;
}

/* ---- msg ---- */

/* The length of the well-formed UTF-8 sequence of 2 to 4 bytes at p (not overlong, not a
 * surrogate, not a C1 control), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || len > n || p[0] > 0xf4) return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    uint32_t cp = len == 2 ? (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f)
                  : len == 3
                      ? (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f)
                      : (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
                            (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (cp >= 0x80 && cp <= 0x9f) return 0; /* C1 controls */
    return len;
}

/* Prints p[0..n) as one line of text: printable ASCII and well-formed UTF-8 as is, everything
 * that could move the cursor or confuse a terminal (C0, DEL, C1, broken UTF-8) escaped, and
 * the backslash doubled so that the escapes are unambiguous. */
static void print_escaped(FILE *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t u = c >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (u > 0) {
            fwrite(p + i, 1, u, f);
            i += u;
            continue;
        }
        if (c == '\\')
            fputs("\\\\", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
        i++;
    }
    fputc('\n', f);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (padding optional) into a malloc'ed buffer; NULL if s is not base64. */
static unsigned char *b64_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    unsigned char *out = malloc(n * 3 / 4 + 1);
    if (!out) return NULL;
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    *out_len = len;
    return out;
}

/* "2026-12-04T17:35:20.123Z" for ns since the epoch. */
static void fmt_time(char *buf, size_t len, int64_t ns)
{
    time_t secs = (time_t)(ns / CLOCK_NS_PER_SEC);
    struct tm tm;
    char day[32] = "?";
    if (gmtime_r(&secs, &tm)) strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ns % CLOCK_NS_PER_SEC / 1000000));
}

static void print_dead_line(const json_t *dead)
{
    const char *client = cli_json_str(dead, "last_client");
    printf("dead letter of %s #%" PRIu64 " after %" PRIu64 " deliveries (last client %s)",
           cli_json_str(dead, "origin_channel") ? cli_json_str(dead, "origin_channel") : "?",
           cli_json_u64(dead, "origin_sequence"), cli_json_u64(dead, "deliveries"),
           client ? client : "-");
    uint64_t requeued = cli_json_u64(dead, "requeued_sequence");
    if (requeued) printf(", requeued as #%" PRIu64, requeued);
    printf("\n");
}

static int print_msg(const json_t *doc, const struct req *r)
{
    bool raw = *(const bool *)r->arg;
    size_t len = 0;
    const char *b64 = json_string_value(json_object_get(doc, "data"));
    unsigned char *data = b64 ? b64_decode(b64, &len) : NULL;
    if (!data) {
        fprintf(stderr, "%s: the server's answer has no valid base64 \"data\"\n", CLI_PROG);
        return CLI_EXIT_FAIL;
    }
    if (raw) {
        size_t put = fwrite(data, 1, len, stdout);
        free(data);
        if (put != len || fflush(stdout) != 0) {
            perror(CLI_PROG ": writing the payload");
            return CLI_EXIT_FAIL;
        }
        return CLI_EXIT_OK;
    }
    char when[48];
    fmt_time(when, sizeof when, (int64_t)cli_json_u64(doc, "timestamp"));
    const char *reply = cli_json_str(doc, "reply");
    printf("%s #%" PRIu64 "  %s  %zu byte%s  reply=%s\n", cli_json_str(doc, "channel"),
           cli_json_u64(doc, "sequence"), when, len, plural(len), reply ? reply : "-");
    const json_t *dead = json_object_get(doc, "dead");
    if (json_is_object(dead)) print_dead_line(dead);
    print_escaped(stdout, data, len);
    free(data);
    return CLI_EXIT_OK;
}

static int run_msg(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    bool raw = false;
    struct req r = {.method = "GET", .path = "/admin/msg", .print = print_msg, .arg = &raw};
    const struct cli_opt opts[] = {{0, "raw", CLI_OPT_FLAG, &raw, 0, 0}, {0}};
    char *pos[2];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 2, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    int64_t seq;
    if (!cli_parse_int(pos[1], 1, SEQ_MAX, &seq))
        return cli_usage_error(cmd, "invalid sequence '%s': expected an integer >= 1", pos[1]);
    if (raw && r.json) return cli_usage_error(cmd, "--raw and --json exclude each other");
    req_str(&r, "channel", pos[0]);
    req_num(&r, "seq", seq);
    return send_req(ctx, &r);
}

const struct cli_command cli_msg_command = {
    .name = "msg",
    .usage = "msg CHANNEL SEQ [--raw] [--json]",
    .summary = "Show one stored message: time, size, reply subject, payload.",
    .help = "Prints \"CHANNEL #SEQ  TIME  SIZE  reply=R\", then the payload as one line of text\n"
            "(control characters and invalid UTF-8 escaped as \\n, \\t, \\xHH; a backslash as\n"
            "\\\\). A message of a dead-letter channel adds a line naming its origin, its\n"
            "deliveries, the last client, and the sequence it was requeued as.\n"
            "GET http://MONITOR/admin/msg (needs the token).\n\n"
            "Options:\n"
            "      --raw          write only the payload's bytes, exactly, to stdout\n"
            "      --json         print the server's JSON (payload base64 in \"data\")\n",
    .run = run_msg,
};

/* ---- purge, delete-channel, delete-durable, close-client ---- */

static int print_purge(const json_t *doc, const struct req *r)
{
    uint64_t n = cli_json_u64(doc, "purged");
    printf("purged %" PRIu64 " message%s from %s (now %" PRIu64 " stored, first %" PRIu64
           ", last %" PRIu64 ")\n",
           n, plural(n), req_get(r, "channel"), cli_json_u64(doc, "msgs"),
           cli_json_u64(doc, "first_seq"), cli_json_u64(doc, "last_seq"));
    return CLI_EXIT_OK;
}

static int run_purge(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct req r = {.method = "POST", .path = "/admin/purge", .print = print_purge};
    int64_t upto = 0;
    const struct cli_opt opts[] = {{0, "upto", CLI_OPT_INT, &upto, 1, SEQ_MAX}, {0}};
    char *pos[1];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 1, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    req_str(&r, "channel", pos[0]);
    req_num(&r, "upto", upto);
    return send_req(ctx, &r);
}

const struct cli_command cli_purge_command = {
    .name = "purge",
    .usage = "purge CHANNEL [--upto SEQ] [--json]",
    .summary = "Remove a channel's messages (all, or up to a sequence); it stays.",
    .help = "The messages go as limits evict them: subscriptions skip them, unacknowledged ones\n"
            "among them count as acknowledged. The channel, its sequence numbers and its\n"
            "subscriptions stay. POST http://MONITOR/admin/purge (needs the token).\n\n"
            "Options:\n"
            "      --upto SEQ     only the messages up to sequence SEQ (default: all)\n"
            "      --json         print the server's JSON instead\n",
    .run = run_purge,
};

static int print_delete_channel(const json_t *doc, const struct req *r)
{
    uint64_t msgs = cli_json_u64(doc, "msgs"), subs = cli_json_u64(doc, "subscriptions");
    printf("deleted channel %s (%" PRIu64 " message%s, %" PRIu64 " subscription%s)\n",
           req_get(r, "channel"), msgs, plural(msgs), subs, plural(subs));
    return CLI_EXIT_OK;
}

static int run_delete_channel(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                              char **argv)
{
    struct req r = {.method = "DELETE", .path = "/admin/channel", .print = print_delete_channel};
    bool force = false;
    const struct cli_opt opts[] = {{'f', "force", CLI_OPT_FLAG, &force, 0, 0}, {0}};
    char *pos[1];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 1, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    req_str(&r, "channel", pos[0]);
    req_str(&r, "force", force ? "true" : NULL);
    rc = send_req(ctx, &r);
    /* 409: it has subscriptions (STZ_EBUSY), the one refusal --force overrides. */
    if (r.status == 409 && !force)
        fprintf(stderr, "%s: hint: --force deletes it with its subscriptions\n", CLI_PROG);
    return rc;
}

const struct cli_command cli_delete_channel_command = {
    .name = "delete-channel",
    .usage = "delete-channel CHANNEL [--force] [--json]",
    .summary = "Delete a channel with its messages.",
    .help = "Refused while the channel has subscriptions (offline durables included) unless\n"
            "--force, which removes them too (their clients are not told: STAN has no message\n"
            "for it). DELETE http://MONITOR/admin/channel (needs the token).\n\n"
            "Options:\n"
            "  -f, --force        delete it even with subscriptions\n"
            "      --json         print the server's JSON instead\n",
    .run = run_delete_channel,
};

static int print_delete_durable(const json_t *doc, const struct req *r)
{
    uint64_t subs = cli_json_u64(doc, "deleted");
    const char *queue = req_get(r, "queue"), *client = req_get(r, "client");
    printf("deleted durable %s%s%s%s%s%s on %s (%" PRIu64 " subscription%s)\n",
           queue ? "queue " : "", req_get(r, "durable"), queue ? ":" : "", queue ? queue : "",
           client ? " of client " : "", client ? client : "", req_get(r, "channel"), subs,
           plural(subs));
    return CLI_EXIT_OK;
}

static int run_delete_durable(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                              char **argv)
{
    struct req r = {.method = "DELETE", .path = "/admin/durable", .print = print_delete_durable};
    const char *queue = NULL;
    const struct cli_opt opts[] = {{'q', "queue", CLI_OPT_STR, &queue, 0, 0}, {0}};
    char *pos[2];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 2, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    req_str(&r, "channel", pos[0]);
    req_str(&r, "durable", pos[1]);
    req_str(&r, "queue", queue);
    if (ctx->client_id_given) req_str(&r, "client", ctx->client_id);
    return send_req(ctx, &r);
}

const struct cli_command cli_delete_durable_command = {
    .name = "delete-durable",
    .usage = "delete-durable CHANNEL DURABLE [--queue Q] [--json]",
    .summary = "Delete a durable subscription or durable queue group, online or not.",
    .help = "Its position and unacknowledged messages are forgotten; a client that resumes it\n"
            "later starts afresh. A durable belongs to a client: without --queue, every client's\n"
            "durable of that name goes, or with the global --client-id ID that client's only.\n"
            "DELETE http://MONITOR/admin/durable (needs the token).\n\n"
            "Options:\n"
            "  -q, --queue Q      the durable queue group Q of that durable name (every member)\n"
            "      --json         print the server's JSON instead\n",
    .run = run_delete_durable,
};

static int print_close_client(const json_t *doc, const struct req *r)
{
    uint64_t subs = cli_json_u64(doc, "subscriptions");
    printf("closed client %s (%" PRIu64 " subscription%s)\n", req_get(r, "id"), subs, plural(subs));
    return CLI_EXIT_OK;
}

static int run_close_client(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                            char **argv)
{
    struct req r = {.method = "DELETE", .path = "/admin/client", .print = print_close_client};
    char *pos[1];
    int rc = parse_args(ctx, cmd, argc, argv, NULL, 1, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    req_str(&r, "id", pos[0]);
    return send_req(ctx, &r);
}

const struct cli_command cli_close_client_command = {
    .name = "close-client",
    .usage = "close-client CLIENT_ID [--json]",
    .summary = "Close a streaming client as its own close request would.",
    .help = "Its plain subscriptions are removed, its durables stay (offline), and the id is\n"
            "free for a new connect. DELETE http://MONITOR/admin/client (needs the token).\n\n"
            "Options:\n"
            "      --json         print the server's JSON instead\n",
    .run = run_close_client,
};

/* ---- dead, requeue ---- */

static void print_dead_table(const json_t *doc)
{
    static const char *const headers[] = {"SEQ",          "ORIGIN-SEQ", "DELIVERIES", "LAST-CLIENT",
                                          "SUBSCRIPTION", "AGE",        "REQUEUED"};
    static const bool right[] = {true, true, true, false, false, true, true};
    struct cli_table t;
    cli_table_init(&t, 7, headers, right);
    double now = (double)clock_wall_ns() / (double)CLOCK_NS_PER_SEC;
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(doc, "dead"), i, d)
    {
        char seq[24], oseq[24], deliveries[24], age[24], requeued[24] = "-";
        snprintf(seq, sizeof seq, "%" PRIu64, cli_json_u64(d, "sequence"));
        snprintf(oseq, sizeof oseq, "%" PRIu64, cli_json_u64(d, "origin_sequence"));
        snprintf(deliveries, sizeof deliveries, "%" PRIu64, cli_json_u64(d, "deliveries"));
        double when = (double)cli_json_u64(d, "timestamp") / (double)CLOCK_NS_PER_SEC;
        cli_fmt_age(age, sizeof age, now - when);
        uint64_t r = cli_json_u64(d, "requeued_sequence");
        if (r) snprintf(requeued, sizeof requeued, "#%" PRIu64, r);
        const char *cells[] = {seq,
                               oseq,
                               deliveries,
                               cli_json_str(d, "last_client"),
                               cli_json_str(d, "subscription"),
                               age,
                               requeued};
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static int print_dead(const json_t *doc, const struct req *r)
{
    uint64_t total = cli_json_u64(doc, "total");
    size_t count = json_array_size(json_object_get(doc, "dead"));
    const char *dead_channel = cli_json_str(doc, "dead_letter");
    printf("%" PRIu64 " dead letter%s of %s in %s", total, plural(total), req_get(r, "channel"),
           dead_channel ? dead_channel : "-");
    /* The server pages (1024 by default): say when this is not all of them. */
    if ((uint64_t)count < total)
        printf(" (%zu shown from offset %" PRIu64 "; see --offset, --limit)", count,
               cli_json_u64(doc, "offset"));
    printf("\n");
    if (count > 0) print_dead_table(doc);
    return CLI_EXIT_OK;
}

static int run_dead(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct req r = {.method = "GET", .path = "/admin/dead", .print = print_dead};
    int64_t limit = 0, offset = 0;
    const struct cli_opt opts[] = {
        {'n', "limit", CLI_OPT_INT, &limit, 1, INT64_MAX},
        {0, "offset", CLI_OPT_INT, &offset, 0, INT64_MAX},
        {0},
    };
    char *pos[1];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 1, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    req_str(&r, "channel", pos[0]);
    req_num(&r, "offset", offset);
    req_num(&r, "limit", limit);
    return send_req(ctx, &r);
}

const struct cli_command cli_dead_command = {
    .name = "dead",
    .usage = "dead CHANNEL [--limit N] [--offset N] [--json]",
    .summary = "List the dead letters that came from a channel.",
    .help = "A message delivered max_deliveries times without an ack leaves its subscription\n"
            "and is appended to the channel's dead-letter channel. One row per dead letter: its\n"
            "sequence there (SEQ, for `stanza msg DEADCH SEQ` and `stanza requeue --seq`), its\n"
            "sequence on CHANNEL, its deliveries, the last client it went to, the subscription\n"
            "(\"queue:NAME\", \"durable:NAME\", ...), its age, and the sequence it was requeued\n"
            "as. GET http://MONITOR/admin/dead (needs the token).\n\n"
            "Options:\n"
            "  -n, --limit N      at most N rows (the server's default: 1024)\n"
            "      --offset N     skip the first N dead letters\n"
            "      --json         print the server's JSON instead\n",
    .run = run_dead,
};

static int print_requeue(const json_t *doc, const struct req *r)
{
    uint64_t n = cli_json_u64(doc, "requeued");
    printf("requeued %" PRIu64 " message%s onto %s\n", n, plural(n), req_get(r, "channel"));
    return CLI_EXIT_OK;
}

static int run_requeue(struct cli_ctx *ctx, const struct cli_command *cmd, int argc, char **argv)
{
    struct req r = {.method = "POST", .path = "/admin/requeue", .print = print_requeue};
    bool all = false;
    int64_t seq = 0;
    const struct cli_opt opts[] = {
        {0, "seq", CLI_OPT_INT, &seq, 1, SEQ_MAX},
        {'a', "all", CLI_OPT_FLAG, &all, 0, 0},
        {0},
    };
    char *pos[1];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 1, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    if (all == (seq != 0))
        return cli_usage_error(cmd, all ? "--seq and --all exclude each other"
                                        : "missing --seq S (one dead letter) or --all");
    req_str(&r, "channel", pos[0]);
    req_num(&r, "seq", seq);
    req_str(&r, "all", all ? "true" : NULL);
    return send_req(ctx, &r);
}

const struct cli_command cli_requeue_command = {
    .name = "requeue",
    .usage = "requeue CHANNEL (--seq S | --all) [--json]",
    .summary = "Publish dead letters of a channel onto it again.",
    .help = "CHANNEL is the origin channel (as for `stanza dead`). Each requeued message gets a\n"
            "new sequence on CHANNEL (same payload and reply); it stays in the dead-letter\n"
            "channel, marked with that sequence. POST http://MONITOR/admin/requeue (needs the\n"
            "token).\n\n"
            "Options:\n"
            "      --seq S        the dead letter with sequence S in the dead-letter channel\n"
            "                     (the SEQ column of `stanza dead`)\n"
            "  -a, --all          every dead letter of CHANNEL not requeued yet\n"
            "      --json         print the server's JSON instead\n",
    .run = run_requeue,
};

/* ---- pause, resume ---- */

static int print_pause(const json_t *doc, const struct req *r)
{
    uint64_t subs = cli_json_u64(doc, "subscriptions");
    const char *queue = req_get(r, "queue"), *durable = req_get(r, "durable");
    printf("%s", strcmp(r->path, "/admin/pause") == 0 ? "paused" : "resumed");
    /* A durable queue group is "durable:group", as the monitoring endpoints name it. */
    if (queue && durable)
        printf(" queue %s:%s", durable, queue);
    else if (queue)
        printf(" queue %s", queue);
    else
        printf(" durable %s", durable);
    if (req_get(r, "client")) printf(" of client %s", req_get(r, "client"));
    printf(" on %s (%" PRIu64 " subscription%s)\n", req_get(r, "channel"), subs, plural(subs));
    return CLI_EXIT_OK;
}

static int run_pause_resume(struct cli_ctx *ctx, const struct cli_command *cmd, int argc,
                            char **argv)
{
    bool pause = strcmp(cmd->name, "pause") == 0;
    struct req r = {
        .method = "POST", .path = pause ? "/admin/pause" : "/admin/resume", .print = print_pause};
    const char *queue = NULL, *durable = NULL;
    const struct cli_opt opts[] = {
        {'q', "queue", CLI_OPT_STR, &queue, 0, 0},
        {'d', "durable", CLI_OPT_STR, &durable, 0, 0},
        {0},
    };
    char *pos[1];
    int rc = parse_args(ctx, cmd, argc, argv, opts, 1, pos, &r.json);
    if (rc != CLI_CONTINUE) return rc;
    if (!queue && !durable)
        return cli_usage_error(cmd, "missing --queue Q (a queue group) or --durable D (a durable)");
    req_str(&r, "channel", pos[0]);
    req_str(&r, "queue", queue);
    req_str(&r, "durable", durable);
    if (ctx->client_id_given) req_str(&r, "client", ctx->client_id);
    return send_req(ctx, &r);
}

#define PAUSE_RESUME_OPTIONS                                                                       \
    "Options:\n"                                                                                   \
    "  -q, --queue Q      the queue group Q (with --durable: the durable group D:Q)\n"             \
    "  -d, --durable D    the durable subscription D (every client's of that name, or with\n"      \
    "                     the global --client-id ID, that client's only)\n"                        \
    "      --json         print the server's JSON instead\n"

const struct cli_command cli_pause_command = {
    .name = "pause",
    .usage = "pause CHANNEL (--queue Q | --durable D) [--json]",
    .summary = "Hold every delivery to a queue group or durable (kept across restarts).",
    .help = "Nothing is sent to it (new messages, redeliveries) until `stanza resume`; its\n"
            "unacknowledged messages stay unacknowledged, and members joining a paused group\n"
            "are paused too. POST http://MONITOR/admin/pause (needs the "
            "token).\n\n" PAUSE_RESUME_OPTIONS,
    .run = run_pause_resume,
};

const struct cli_command cli_resume_command = {
    .name = "resume",
    .usage = "resume CHANNEL (--queue Q | --durable D) [--json]",
    .summary = "Release the deliveries held by `stanza pause`.",
    .help = "Messages held meanwhile go out, and unacknowledged ones past their AckWait are\n"
            "redelivered at once. POST http://MONITOR/admin/resume (needs the "
            "token).\n\n" PAUSE_RESUME_OPTIONS,
    .run = run_pause_resume,
};

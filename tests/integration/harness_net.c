/* harness: loopback ports, raw-socket clients and HTTP requests; see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

bool harness_port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int hraw_connect_rcvbuf(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Before connect, so the advertised window is small from the start. */
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    /* A backstop only: reads wait with poll and their own deadline. */
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "harness: connect to port %d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int hraw_connect(int port)
{
    return hraw_connect_rcvbuf(port, 0);
}

int hraw_client(int port, const char *connect_json)
{
    int fd = hraw_connect(port);
    if (fd < 0) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "CONNECT %s\r\nPING\r\n", connect_json);
    if (!hraw_expect_line(fd, "INFO {", 5000) || !hraw_send(fd, cmd) ||
        !hraw_expect_line(fd, "PONG", 5000)) {
        fprintf(stderr, "harness: raw handshake with port %d failed\n", port);
        close(fd);
        return -1;
    }
    return fd;
}

bool hraw_send_buf(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

bool hraw_send(int fd, const char *str)
{
    return hraw_send_buf(fd, str, strlen(str));
}

/* Waits until fd is readable or the deadline passes. */
static bool wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

/* One byte: 1 read, 0 EOF, -1 timeout or error. Byte-at-a-time keeps the socket the only buffer,
 * so line reads and exact reads can be mixed freely. */
static int read_byte(int fd, char *c, int64_t deadline)
{
    for (;;) {
        if (!wait_readable(fd, deadline)) return -1;
        ssize_t r = recv(fd, c, 1, 0);
        if (r == 1) return 1;
        if (r == 0) return 0;
        if (errno != EINTR && errno != EAGAIN) return -1;
    }
}

int hraw_read_line(int fd, char *buf, size_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t len = 0;
    bool cr = false;
    for (;;) {
        char c;
        if (read_byte(fd, &c, deadline) != 1) {
            buf[len < n ? len : n - 1] = '\0';
            return -1;
        }
        if (c == '\n') {
            if (!cr) {
                fprintf(stderr, "harness: line without CR: \"%.*s\"\n", (int)len, buf);
                return -1;
            }
            buf[len - 1] = '\0'; /* drop the CR */
            return (int)len - 1;
        }
        if (len + 1 >= n) {
            buf[len] = '\0';
            fprintf(stderr, "harness: line longer than %zu bytes: \"%.60s...\"\n", n - 1, buf);
            return -1;
        }
        buf[len++] = c;
        cr = c == '\r';
    }
}

bool hraw_read_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    char *p = buf;
    while (n > 0) {
        if (!wait_readable(fd, deadline)) return false;
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0) return false;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

bool hraw_expect_line(int fd, const char *prefix, int timeout_ms)
{
    char line[8192];
    int n = hraw_read_line(fd, line, sizeof(line), timeout_ms);
    if (n < 0) {
        fprintf(stderr,
                "harness: expected a line starting \"%s\", got timeout/EOF (partial \"%s\")\n",
                prefix, line);
        return false;
    }
    if (strncmp(line, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "harness: expected a line starting \"%s\", got \"%s\"\n", prefix, line);
        return false;
    }
    return true;
}

bool hraw_expect_bytes(int fd, const char *bytes, int timeout_ms)
{
    size_t n = strlen(bytes);
    char *got = calloc(1, n + 1);
    if (!got) return false;
    bool ok = hraw_read_exact(fd, got, n, timeout_ms);
    if (!ok)
        fprintf(stderr, "harness: expected \"%s\", got timeout/EOF\n", bytes);
    else if (memcmp(got, bytes, n) != 0) {
        fprintf(stderr, "harness: expected \"%s\", got \"%s\"\n", bytes, got);
        ok = false;
    }
    free(got);
    return ok;
}

bool hraw_wait_closed_capture(int fd, int timeout_ms, char *seen, size_t seen_len)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t kept = 0;
    if (seen && seen_len) seen[0] = '\0';
    char buf[65536];
    for (;;) {
        if (!wait_readable(fd, deadline)) return false;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0) return true;
        if (r < 0) {
            if (errno == ECONNRESET) return true;
            if (errno == EINTR || errno == EAGAIN) continue;
            return false;
        }
        if (seen && kept + 1 < seen_len) {
            size_t k = seen_len - 1 - kept < (size_t)r ? seen_len - 1 - kept : (size_t)r;
            memcpy(seen + kept, buf, k);
            kept += k;
            seen[kept] = '\0';
        }
    }
}

bool hraw_wait_closed(int fd, int timeout_ms)
{
    return hraw_wait_closed_capture(fd, timeout_ms, NULL, 0);
}

char *hhttp_raw(int port, const char *request, size_t reqlen)
{
    int fd = hraw_connect(port);
    if (fd < 0) return NULL;
    if (reqlen && !hraw_send_buf(fd, request, reqlen)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (!out) {
        close(fd);
        return NULL;
    }
    int64_t deadline = harness_now_ms() + 10000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - harness_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        if (len + 4096 > cap) {
            char *bigger = realloc(out, cap * 2);
            if (!bigger) break;
            out = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, out + len, cap - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    out[len] = '\0';
    return out;
}

int hhttp_get(int port, const char *path, char **body)
{
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    char *all = hhttp_raw(port, req, (size_t)n);
    int status = 0;
    if (!all) {
        *body = strdup("");
        return 0;
    }
    sscanf(all, "HTTP/1.%*d %d", &status);
    char *b = strstr(all, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(all);
    return status;
}

double hhttp_metric(int port, const char *series)
{
    char *body, *save = NULL;
    int status = hhttp_get(port, "/metrics", &body);
    double v = -1;
    if (status != 200) fprintf(stderr, "GET /metrics -> %d\n", status);
    for (char *line = status == 200 ? strtok_r(body, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, series, strlen(series)) == 0 && line[strlen(series)] == ' ')
            v = atof(line + strlen(series) + 1);
    free(body);
    return v;
}

json_t *hhttp_json(int port, const char *path)
{
    char *body;
    int status = hhttp_get(port, path, &body);
    json_t *j = NULL;
    if (status != 200) {
        fprintf(stderr, "GET %s -> %d: %s\n", path, status, body);
    } else {
        json_error_t e;
        j = json_loads(body, 0, &e);
        if (!j) fprintf(stderr, "GET %s: bad JSON (%s): %s\n", path, e.text, body);
    }
    free(body);
    return j;
}

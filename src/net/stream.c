/* stream: one accepted TCP connection on the loop. See stream.h. */
#include "stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clock.h"

static void on_handle_closed(uv_handle_t *h)
{
    stream_t *st = h->data;
    if (--st->open_handles > 0) return;
    buf_free(&st->out);
    buf_free(&st->wbuf);
    st->ops->on_closed(st); /* may free st */
}

int stream_accept(stream_t *st, uv_stream_t *listener, const stream_ops_t *ops, void *owner,
                  char *rbuf, size_t rbuf_len, size_t keep)
{
    *st = (stream_t){.ops = ops, .owner = owner, .rbuf = rbuf, .rbuf_len = rbuf_len, .keep = keep};
    uv_tcp_init(listener->loop, &st->tcp);
    st->tcp.data = st;
    st->open_handles = 1;
    int rc = uv_accept(listener, (uv_stream_t *)&st->tcp);
    if (rc != 0) {
        st->closing = true;
        uv_close((uv_handle_t *)&st->tcp, on_handle_closed);
        return rc;
    }
    uv_timer_init(listener->loop, &st->timer);
    st->timer.data = st;
    st->open_handles = 2;
    uv_tcp_nodelay(&st->tcp, 1);
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    stream_t *st = req->data;
    if (st->closing) return; /* canceled by the close */
    if (status == 0) uv_tcp_nodelay(&st->tcp, 1);
    st->ops->on_connected(st, status);
}

int stream_connect(stream_t *st, uv_loop_t *loop, const struct sockaddr *addr,
                   const stream_ops_t *ops, void *owner, char *rbuf, size_t rbuf_len, size_t keep)
{
    *st = (stream_t){.ops = ops, .owner = owner, .rbuf = rbuf, .rbuf_len = rbuf_len, .keep = keep};
    uv_tcp_init(loop, &st->tcp);
    st->tcp.data = st;
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
    st->open_handles = 2;
    st->creq.data = st;
    int rc = uv_tcp_connect(&st->creq, &st->tcp, addr, on_connect);
    if (rc != 0) stream_close(st);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    stream_t *st = h->data;
    (void)suggested;
    b->base = st->rbuf;
    b->len = st->rbuf_len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    stream_t *st = s->data;
    if (nread == 0 || st->closing) return;
    st->ops->on_read(st, nread, b->base);
}

int stream_read_start(stream_t *st)
{
    return uv_read_start((uv_stream_t *)&st->tcp, on_alloc, on_read);
}

void stream_read_stop(stream_t *st)
{
    uv_read_stop((uv_stream_t *)&st->tcp);
}

void stream_read_now(stream_t *st)
{
    uv_os_fd_t fd;
    if (st->closing || uv_fileno((uv_handle_t *)&st->tcp, &fd) != 0) return;
    ssize_t n;
    do
        n = recv(fd, st->rbuf, st->rbuf_len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    /* Nothing yet (EAGAIN), or an error libuv's own read will report. */
    if (n < 0) return;
    st->ops->on_read(st, n > 0 ? n : UV_EOF, st->rbuf);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    stream_t *st = req->data;
    st->writing = false;
    buf_reset(&st->wbuf);
    buf_shrink(&st->wbuf, st->keep);
    st->wbuf_off = 0;
    if (st->closing) return; /* canceled by the close */
    st->ops->on_written(st, status);
}

int stream_flush(stream_t *st)
{
    if (st->writing || st->closing || st->out.len == 0) return 0;
    /* Usually the socket takes it all and no write request is needed. */
    uv_buf_t b = uv_buf_init(st->out.data, (unsigned)st->out.len);
    int n = uv_try_write((uv_stream_t *)&st->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) return n;
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == st->out.len) {
        buf_reset(&st->out);
        buf_shrink(&st->out, st->keep);
        return 1;
    }
    /* The rest goes to libuv; new output collects in a fresh `out` meanwhile. */
    buf_t tmp = st->wbuf;
    st->wbuf = st->out;
    st->out = tmp;
    buf_reset(&st->out);
    st->wbuf_off = done;
    uv_buf_t rest = uv_buf_init(st->wbuf.data + done, (unsigned)(st->wbuf.len - done));
    st->wreq.data = st;
    int rc = uv_write(&st->wreq, (uv_stream_t *)&st->tcp, &rest, 1, on_write);
    if (rc != 0) return rc;
    st->writing = true;
    st->write_started_ms = clock_mono_ms();
    return 0;
}

void stream_try_write(stream_t *st)
{
    if (st->writing || st->closing || st->out.len == 0) return;
    uv_buf_t b = uv_buf_init(st->out.data, (unsigned)st->out.len);
    uv_try_write((uv_stream_t *)&st->tcp, &b, 1);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    stream_t *st = req->data;
    if (st->closing || status >= 0) return;
    st->ops->on_written(st, status);
}

void stream_shutdown(stream_t *st)
{
    st->sreq.data = st;
    int rc = uv_shutdown(&st->sreq, (uv_stream_t *)&st->tcp, on_shutdown);
    if (rc != 0) st->ops->on_written(st, rc);
}

bool stream_write_stalled(const stream_t *st, uint64_t now_ms, uint64_t deadline_ms)
{
    return st->writing && !st->closing && now_ms - st->write_started_ms > deadline_ms;
}

/* ---- timer, peer, close ----------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    stream_t *st = t->data;
    if (!st->closing) st->ops->on_timer(st);
}

void stream_timer_start(stream_t *st, uint64_t timeout_ms, uint64_t repeat_ms)
{
    uv_timer_start(&st->timer, on_timer, timeout_ms, repeat_ms);
}

void stream_timer_stop(stream_t *st)
{
    uv_timer_stop(&st->timer);
}

int stream_peer(stream_t *st, char *ip, size_t iplen, int *port)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = uv_tcp_getpeername(&st->tcp, (struct sockaddr *)&ss, &len);
    if (rc != 0) return rc;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, iplen);
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, iplen);
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

void stream_close(stream_t *st)
{
    if (st->closing) return;
    st->closing = true;
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, on_handle_closed);
    uv_close((uv_handle_t *)&st->tcp, on_handle_closed);
}

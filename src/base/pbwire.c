/* pbwire: see pbwire.h. */
#include "pbwire.h"

#include <string.h>

#include "err.h"

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pp >= end) return STZ_EPROTO;
        uint8_t b = *(*pp)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return STZ_EPROTO;
}

/* Walks the fields; fn sees each (number, wire type, varint value or slice). */
typedef void (*field_fn)(void *arg, uint32_t num, int wt, uint64_t v, pbw_slice_t s);

static int walk(const void *buf, size_t len, field_fn fn, void *arg)
{
    const uint8_t *p = buf, *end = p + len;
    while (p < end) {
        uint64_t key, v = 0;
        if (get_varint(&p, end, &key) != 0) return STZ_EPROTO;
        uint32_t num = (uint32_t)(key >> 3);
        int wt = (int)(key & 7);
        pbw_slice_t s = {NULL, 0};
        if (num == 0) return STZ_EPROTO;
        switch (wt) {
        case WT_VARINT:
            if (get_varint(&p, end, &v) != 0) return STZ_EPROTO;
            break;
        case WT_FIXED64:
            if (end - p < 8) return STZ_EPROTO;
            p += 8;
            break;
        case WT_FIXED32:
            if (end - p < 4) return STZ_EPROTO;
            p += 4;
            break;
        case WT_LEN:
            if (get_varint(&p, end, &v) != 0 || v > (uint64_t)(end - p)) return STZ_EPROTO;
            s.p = p;
            s.len = (size_t)v;
            p += v;
            break;
        default:
            return STZ_EPROTO;
        }
        fn(arg, num, wt, v, s);
    }
    return 0;
}

static void on_pubmsg_field(void *arg, uint32_t num, int wt, uint64_t v, pbw_slice_t s)
{
    (void)v;
    pbw_pubmsg_t *m = arg;
    if (wt != WT_LEN) return;
    switch (num) {
    case 1:
        m->client_id = s;
        break;
    case 2:
        m->guid = s;
        break;
    case 3:
        m->subject = s;
        break;
    case 4:
        m->reply = s;
        break;
    case 5:
        m->data = s;
        break;
    case 6:
        m->conn_id = s;
        break;
    default:
        break;
    }
}

int pbw_decode_pubmsg(const void *buf, size_t len, pbw_pubmsg_t *out)
{
    memset(out, 0, sizeof *out);
    return walk(buf, len, on_pubmsg_field, out);
}

typedef struct {
    pbw_slice_t subject;
    uint64_t seq;
} ack_t;

static void on_ack_field(void *arg, uint32_t num, int wt, uint64_t v, pbw_slice_t s)
{
    ack_t *a = arg;
    if (num == 1 && wt == WT_LEN) a->subject = s;
    if (num == 2 && wt == WT_VARINT) a->seq = v;
}

int pbw_decode_ack(const void *buf, size_t len, pbw_slice_t *subject, uint64_t *seq)
{
    ack_t a = {{NULL, 0}, 0};
    if (walk(buf, len, on_ack_field, &a) != 0) return STZ_EPROTO;
    *subject = a.subject;
    *seq = a.seq;
    return 0;
}

/* ---- encoding ---- */

static uint8_t *put_varint(uint8_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

static uint8_t *put_len(uint8_t *w, uint32_t num, const void *p, size_t n)
{
    if (n == 0) return w; /* proto3: empty means absent */
    w = put_varint(w, (uint64_t)num << 3 | WT_LEN);
    w = put_varint(w, n);
    memcpy(w, p, n);
    return w + n;
}

static uint8_t *put_uint(uint8_t *w, uint32_t num, uint64_t v)
{
    if (v == 0) return w;
    w = put_varint(w, (uint64_t)num << 3 | WT_VARINT);
    return put_varint(w, v);
}

void pbw_encode_puback(buf_t *out, const char *guid, size_t guid_len, const char *error,
                       size_t error_len)
{
    buf_reserve(out, guid_len + error_len + 24);
    uint8_t *w = (uint8_t *)out->data + out->len;
    uint8_t *start = w;
    w = put_len(w, 1, guid, guid_len);
    w = put_len(w, 2, error, error_len);
    out->len += (size_t)(w - start);
}

void pbw_encode_msgproto(buf_t *out, const pbw_msgproto_t *m)
{
    buf_reserve(out, m->subject_len + m->reply_len + m->data_len + 64);
    uint8_t *w = (uint8_t *)out->data + out->len;
    uint8_t *start = w;
    w = put_uint(w, 1, m->sequence);
    w = put_len(w, 2, m->subject, m->subject_len);
    w = put_len(w, 3, m->reply, m->reply_len);
    w = put_len(w, 4, m->data, m->data_len);
    w = put_uint(w, 5, (uint64_t)m->timestamp); /* int64: two's complement varint */
    w = put_uint(w, 6, m->redelivered ? 1 : 0);
    w = put_uint(w, 7, m->redelivery_count);
    out->len += (size_t)(w - start);
}

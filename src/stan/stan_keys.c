/* Key encodings: big-endian, so LMDB's memcmp order is numeric order and a cursor walk over one
 * channel's messages (or one subscription's pending set) is a sequential read. */
#include "stan_keys.h"

#include "err.h"

static void put_be(uint8_t *out, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

void stan_key_msg(uint8_t out[STAN_MSG_KEY], uint32_t chan, uint64_t seq)
{
    put_be(out, chan, 3);
    put_be(out + 3, seq > STAN_MAX_SEQ ? STAN_MAX_SEQ : seq, 5);
}

uint64_t stan_key_msg_seq(const uint8_t *key)
{
    uint64_t v = 0;
    for (int i = 3; i < 8; i++)
        v = (v << 8) | key[i];
    return v;
}

/* Value: timestamp ns (8, big-endian), running payload total (6), reply length (varint: 1 byte
 * when there is no reply, up to 10), reply, payload. 15 bytes of header for the usual message. */
size_t stan_msg_hdr(uint8_t *out, int64_t ts, uint64_t cum, size_t reply_len)
{
    put_be(out, (uint64_t)ts, 8);
    put_be(out + 8, cum, 6);
    size_t n = 14;
    /* A full 64-bit varint (at most 10 bytes): any reply length is written whole. */
    uint64_t v = reply_len;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

bool stan_msg_decode(const void *p, size_t len, stan_msgval_t *out)
{
    const uint8_t *b = p;
    if (len < 15) return false;
    out->ts = (int64_t)stan_get_u64(b);
    uint64_t cum = 0;
    for (int i = 8; i < 14; i++)
        cum = (cum << 8) | b[i];
    out->cum = cum;
    size_t n = 14;
    uint64_t rlen = 0;
    for (int shift = 0;; shift += 7) {
        if (n >= len || shift > 63) return false;
        uint8_t c = b[n++];
        rlen |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
    }
    if (rlen > len - n) return false;
    out->reply = (const char *)b + n;
    out->reply_len = (size_t)rlen;
    out->data = b + n + rlen;
    out->len = len - n - (size_t)rlen;
    return true;
}

void stan_key_u64(uint8_t out[8], uint64_t v)
{
    put_be(out, v, 8);
}

void stan_key_pending(uint8_t out[16], uint64_t sub, uint64_t seq)
{
    put_be(out, sub, 8);
    put_be(out + 8, seq, 8);
}

uint64_t stan_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint32_t stan_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint32_t stan_key_msg_chan(const uint8_t *key)
{
    return ((uint32_t)key[0] << 16) | ((uint32_t)key[1] << 8) | key[2];
}

bool stan_msg_get(store_t *store, uint32_t chan, uint64_t seq, stan_msgval_t *out)
{
    uint8_t key[STAN_MSG_KEY];
    stan_key_msg(key, chan, seq);
    store_val_t v;
    return store_get(store, STORE_DB_MSGS, key, sizeof key, &v) == STZ_OK &&
           stan_msg_decode(v.p, v.len, out);
}

uint64_t stan_msg_seq_at_time(store_t *store, uint32_t chan, uint64_t first, uint64_t last,
                              int64_t ts)
{
    uint64_t lo = first, hi = last + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        stan_msgval_t m;
        if (stan_msg_get(store, chan, mid, &m) && m.ts >= ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

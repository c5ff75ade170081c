/* fuzz_records: the decoders of what comes off the disk and the wire without a socket:
 *  - stan_msg_decode (src/stan/stan_keys.c), a stored message value, with an encode/decode round
 * trip;
 *  - the protobuf-c unpackers of the store's records (proto/store.proto), as recovery uses them,
 *    each unpacked record packed again and unpacked again to the same bytes;
 *  - the allocation-free decoders of src/base/pbwire.c, checked against protobuf-c (see pubmsg).
 *
 * Input: byte 0 selects the decoder, the rest is the record (copied into an allocation of exactly
 * its size, so any read past its end is caught). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"
#include "protocol.pb-c.h"
#include "stan_keys.h"
#include "store.pb-c.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static volatile uint8_t sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    sink ^= x;
}

static void msgval(const uint8_t *d, size_t n)
{
    stan_msgval_t m;
    if (!stan_msg_decode(d, n, &m)) return;
    CHECK((const uint8_t *)m.reply >= d && m.reply_len <= n);
    CHECK(m.data + m.len == d + n);
    touch(m.reply, m.reply_len);
    touch(m.data, m.len);
    /* The header the engine would write for these values decodes to the same values. */
    uint8_t hdr[STAN_MSG_HDR_MAX];
    uint64_t cum = m.cum & ((1ull << 48) - 1);
    size_t h = stan_msg_hdr(hdr, m.ts, cum, m.reply_len);
    CHECK(h <= sizeof hdr);
    size_t total = h + m.reply_len + m.len;
    uint8_t *buf = malloc(total ? total : 1);
    memcpy(buf, hdr, h);
    memcpy(buf + h, m.reply, m.reply_len);
    memcpy(buf + h + m.reply_len, m.data, m.len);
    stan_msgval_t m2;
    CHECK(stan_msg_decode(buf, total, &m2));
    CHECK(m2.ts == m.ts && m2.cum == cum && m2.reply_len == m.reply_len && m2.len == m.len);
    CHECK(memcmp(m2.reply, m.reply, m.reply_len) == 0 && memcmp(m2.data, m.data, m.len) == 0);
    free(buf);
}

/* Unpack, pack, unpack again, pack again: both packings must be equal. */
#define ROUND_TRIP(type, prefix)                                                                   \
    static void rt_##prefix(const uint8_t *d, size_t n)                                            \
    {                                                                                              \
        type *r = prefix##__unpack(NULL, n, d);                                                    \
        if (!r) return;                                                                            \
        /* Unknown fields aside: protobuf-c takes a two-byte field number 0 and writes it back     \
         * in one byte, which it then refuses. Ours are never written with unknown fields. */      \
        unsigned nunknown = r->base.n_unknown_fields;                                              \
        r->base.n_unknown_fields = 0;                                                              \
        size_t len = prefix##__get_packed_size(r);                                                 \
        uint8_t *p = malloc(len ? len : 1);                                                        \
        CHECK(prefix##__pack(r, p) == len);                                                        \
        r->base.n_unknown_fields = nunknown;                                                       \
        type *r2 = prefix##__unpack(NULL, len, p);                                                 \
        CHECK(r2);                                                                                 \
        size_t len2 = prefix##__get_packed_size(r2);                                               \
        uint8_t *p2 = malloc(len2 ? len2 : 1);                                                     \
        CHECK(prefix##__pack(r2, p2) == len2);                                                     \
        CHECK(len2 == len && memcmp(p, p2, len) == 0);                                             \
        free(p);                                                                                   \
        free(p2);                                                                                  \
        prefix##__free_unpacked(r2, NULL);                                                         \
        prefix##__free_unpacked(r, NULL);                                                          \
    }
ROUND_TRIP(Spb__ServerRecord, spb__server_record)
ROUND_TRIP(Spb__ClientRecord, spb__client_record)
ROUND_TRIP(Spb__ChannelRecord, spb__channel_record)
ROUND_TRIP(Spb__SubRecord, spb__sub_record)

/* s (a protobuf-c string, NUL-terminated) read the same as the slice, unless it holds a NUL. */
static void same_str(const char *s, pbw_slice_t sl)
{
    if (sl.len && memchr(sl.p, 0, sl.len)) return;
    CHECK(strlen(s) == sl.len && (sl.len == 0 || memcmp(s, sl.p, sl.len) == 0));
}

static void same_bytes(ProtobufCBinaryData b, pbw_slice_t sl)
{
    CHECK(b.len == sl.len && (b.len == 0 || memcmp(b.data, sl.p, b.len) == 0));
}

/* pbwire against protobuf-c. Where both accept the bytes they must read the same fields; and
 * what protobuf-c accepts, packed again canonically, pbwire must accept. (The other way round
 * proves nothing: protobuf-c takes some malformed input, e.g. a field number 0 written in two
 * bytes, that pbwire rightly refuses.) */
static void pubmsg_same(const Pb__PubMsg *r, const pbw_pubmsg_t *m)
{
    same_str(r->clientid, m->client_id);
    same_str(r->guid, m->guid);
    same_str(r->subject, m->subject);
    same_str(r->reply, m->reply);
    same_bytes(r->data, m->data);
    same_bytes(r->connid, m->conn_id);
}

static void pubmsg(const uint8_t *d, size_t n)
{
    pbw_pubmsg_t m;
    int rc = pbw_decode_pubmsg(d, n, &m);
    if (rc == 0) {
        touch(m.client_id.p, m.client_id.len);
        touch(m.guid.p, m.guid.len);
        touch(m.subject.p, m.subject.len);
        touch(m.reply.p, m.reply.len);
        touch(m.data.p, m.data.len);
        touch(m.conn_id.p, m.conn_id.len);
    }
    Pb__PubMsg *r = pb__pub_msg__unpack(NULL, n, d);
    if (!r) return;
    if (rc == 0) pubmsg_same(r, &m);
    /* Canonically: protobuf-c keeps and re-packs the unknown fields it took. */
    unsigned nunknown = r->base.n_unknown_fields;
    r->base.n_unknown_fields = 0;
    size_t len = pb__pub_msg__get_packed_size(r);
    uint8_t *c = malloc(len ? len : 1);
    pb__pub_msg__pack(r, c);
    r->base.n_unknown_fields = nunknown;
    CHECK(pbw_decode_pubmsg(c, len, &m) == 0);
    pubmsg_same(r, &m);
    free(c);
    pb__pub_msg__free_unpacked(r, NULL);
}

static void ack(const uint8_t *d, size_t n)
{
    pbw_slice_t subject;
    uint64_t seq;
    int rc = pbw_decode_ack(d, n, &subject, &seq);
    if (rc == 0) touch(subject.p, subject.len);
    Pb__Ack *r = pb__ack__unpack(NULL, n, d);
    if (!r) return;
    if (rc == 0) {
        same_str(r->subject, subject);
        CHECK(r->sequence == seq);
    }
    /* Canonically: protobuf-c keeps and re-packs the unknown fields it took. */
    unsigned nunknown = r->base.n_unknown_fields;
    r->base.n_unknown_fields = 0;
    size_t len = pb__ack__get_packed_size(r);
    uint8_t *c = malloc(len ? len : 1);
    pb__ack__pack(r, c);
    r->base.n_unknown_fields = nunknown;
    CHECK(pbw_decode_ack(c, len, &subject, &seq) == 0);
    same_str(r->subject, subject);
    CHECK(r->sequence == seq);
    free(c);
    pb__ack__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t which = data[0];
    size_t n = size - 1;
    uint8_t *d = malloc(n ? n : 1);
    memcpy(d, data + 1, n);
    switch (which % 7) {
    case 0:
        msgval(d, n);
        break;
    case 1:
        rt_spb__server_record(d, n);
        break;
    case 2:
        rt_spb__client_record(d, n);
        break;
    case 3:
        rt_spb__channel_record(d, n);
        break;
    case 4:
        rt_spb__sub_record(d, n);
        break;
    case 5:
        pubmsg(d, n);
        break;
    case 6:
        ack(d, n);
        break;
    }
    free(d);
    return 0;
}

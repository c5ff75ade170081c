/* pbwire against protobuf-c: what one encodes the other decodes, field for field. */
#include <stdint.h>

#include "err.h"
#include "pbwire.h"
#include "protocol.pb-c.h"
#include "test.h"

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void fill(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + next_rand() % 26);
    p[n] = '\0';
}

static void test_pubmsg_decode_matches_protobuf_c(void)
{
    for (int round = 0; round < 500; round++) {
        char cid[40], guid[40], subj[80], reply[60], data[300];
        fill(cid, next_rand() % 30);
        fill(guid, next_rand() % 30);
        fill(subj, next_rand() % 70);
        fill(reply, next_rand() % 50);
        size_t dlen = next_rand() % 290;
        fill(data, dlen);
        Pb__PubMsg m = PB__PUB_MSG__INIT;
        m.clientid = cid;
        m.guid = guid;
        m.subject = subj;
        m.reply = reply;
        m.data.data = (uint8_t *)data;
        m.data.len = dlen;
        m.connid.data = (uint8_t *)"conn";
        m.connid.len = round % 2 ? 4 : 0;
        uint8_t buf[1024];
        size_t n = pb__pub_msg__pack(&m, buf);
        pbw_pubmsg_t d;
        CHECK_EQ_INT(pbw_decode_pubmsg(buf, n, &d), 0);
        CHECK_MEM(d.client_id.p, d.client_id.len, cid);
        CHECK_MEM(d.guid.p, d.guid.len, guid);
        CHECK_MEM(d.subject.p, d.subject.len, subj);
        CHECK_MEM(d.reply.p, d.reply.len, reply);
        CHECK_MEM(d.data.p, d.data.len, data);
        CHECK_EQ_INT(d.conn_id.len, m.connid.len);
    }
}

static void test_ack_decode(void)
{
    Pb__Ack a = PB__ACK__INIT;
    a.subject = "orders";
    a.sequence = 1234567890123ull;
    uint8_t buf[64];
    size_t n = pb__ack__pack(&a, buf);
    pbw_slice_t subj;
    uint64_t seq;
    CHECK_EQ_INT(pbw_decode_ack(buf, n, &subj, &seq), 0);
    CHECK_MEM(subj.p, subj.len, "orders");
    CHECK(seq == 1234567890123ull);
}

static void test_encoders_match_protobuf_c(void)
{
    buf_t b;
    buf_init(&b);
    pbw_encode_puback(&b, "guid-1", 6, "stan: some error", 16);
    Pb__PubAck *pa = pb__pub_ack__unpack(NULL, b.len, (uint8_t *)b.data);
    CHECK(pa != NULL);
    CHECK_EQ_STR(pa->guid, "guid-1");
    CHECK_EQ_STR(pa->error, "stan: some error");
    pb__pub_ack__free_unpacked(pa, NULL);

    for (int round = 0; round < 300; round++) {
        buf_reset(&b);
        char subj[40], reply[40], data[2000];
        fill(subj, 1 + next_rand() % 30);
        fill(reply, next_rand() % 30);
        size_t dlen = next_rand() % 1500;
        fill(data, dlen);
        pbw_msgproto_t m = {.sequence = (uint64_t)next_rand() << (round % 32),
                            .subject = subj,
                            .subject_len = strlen(subj),
                            .reply = reply,
                            .reply_len = strlen(reply),
                            .data = data,
                            .data_len = dlen,
                            .timestamp = (int64_t)next_rand() * 1000000000ll,
                            .redelivered = round % 3 == 0,
                            .redelivery_count = round % 3 == 0 ? (uint32_t)round : 0};
        pbw_encode_msgproto(&b, &m);
        Pb__MsgProto *u = pb__msg_proto__unpack(NULL, b.len, (uint8_t *)b.data);
        CHECK(u != NULL);
        CHECK(u->sequence == m.sequence);
        CHECK_EQ_STR(u->subject, subj);
        CHECK_EQ_STR(u->reply, reply);
        CHECK_MEM(u->data.data, u->data.len, data);
        CHECK(u->timestamp == m.timestamp);
        CHECK_EQ_INT(u->redelivered, m.redelivered);
        CHECK_EQ_INT(u->redeliverycount, m.redelivery_count);
        pb__msg_proto__free_unpacked(u, NULL);
    }
    /* A negative timestamp (before 1970) survives too: int64 is a 10-byte varint. */
    buf_reset(&b);
    pbw_msgproto_t neg = {.sequence = 1, .subject = "a", .subject_len = 1, .timestamp = -5};
    pbw_encode_msgproto(&b, &neg);
    Pb__MsgProto *u = pb__msg_proto__unpack(NULL, b.len, (uint8_t *)b.data);
    CHECK(u != NULL && u->timestamp == -5);
    pb__msg_proto__free_unpacked(u, NULL);
    buf_free(&b);
}

static void test_malformed_never_crashes(void)
{
    uint8_t buf[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = next_rand() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)next_rand();
        pbw_pubmsg_t d;
        int rc = pbw_decode_pubmsg(buf, n, &d);
        if (rc == 0) {
            /* Any slice it returns lies inside the input. */
            const pbw_slice_t *s[] = {&d.client_id, &d.guid, &d.subject, &d.reply, &d.data};
            for (int k = 0; k < 5; k++)
                if (s[k]->len) CHECK(s[k]->p >= buf && s[k]->p + s[k]->len <= buf + n);
        }
        pbw_slice_t subj;
        uint64_t seq;
        (void)pbw_decode_ack(buf, n, &subj, &seq);
    }
    /* Truncated length prefix and a bad wire type are errors. */
    const uint8_t trunc[] = {0x12, 0x05, 'a', 'b'};
    pbw_pubmsg_t d;
    CHECK_EQ_INT(pbw_decode_pubmsg(trunc, sizeof trunc, &d), STZ_EPROTO);
    const uint8_t badwt[] = {0x0b};
    CHECK_EQ_INT(pbw_decode_pubmsg(badwt, sizeof badwt, &d), STZ_EPROTO);
}

int main(void)
{
    TEST_RUN(test_pubmsg_decode_matches_protobuf_c);
    TEST_RUN(test_ack_decode);
    TEST_RUN(test_encoders_match_protobuf_c);
    TEST_RUN(test_malformed_never_crashes);
    return test_summary();
}

/* pbwire: the protobuf wire format for the four STAN messages on the hot path (PubMsg and Ack
 * in, PubAck and MsgProto out), without allocation: decoded fields are slices of the input,
 * encoders append to a buffer. Everything else goes through protobuf-c. Field numbers are the
 * ones in proto/protocol.proto; unit tests check both directions against protobuf-c. */
#ifndef STANZA_PBWIRE_H
#define STANZA_PBWIRE_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct pbw_slice {
    const uint8_t *p;
    size_t len;
} pbw_slice_t;

typedef struct pbw_pubmsg {
    pbw_slice_t client_id, guid, subject, reply, data, conn_id;
} pbw_pubmsg_t;

/* Returns 0, or STZ_EPROTO when buf is not a well-formed message. Absent fields are empty
 * slices. */
int pbw_decode_pubmsg(const void *buf, size_t len, pbw_pubmsg_t *out);
int pbw_decode_ack(const void *buf, size_t len, pbw_slice_t *subject, uint64_t *seq);

void pbw_encode_puback(buf_t *out, const char *guid, size_t guid_len, const char *error,
                       size_t error_len);

typedef struct pbw_msgproto {
    uint64_t sequence;
    const char *subject;
    size_t subject_len;
    const char *reply;
    size_t reply_len;
    const void *data;
    size_t data_len;
    int64_t timestamp;
    int redelivered;
    uint32_t redelivery_count;
} pbw_msgproto_t;

void pbw_encode_msgproto(buf_t *out, const pbw_msgproto_t *m);

#endif

/* stan_keys: the engine's vocabulary at the bottom of its layers: its limits, the store's key
 * encodings and stored message values (layout in docs/storage.md), the reads of one stored
 * message, and saturating time arithmetic. Knows the store, nothing of the engine's state. */
#ifndef STANZA_STAN_KEYS_H
#define STANZA_STAN_KEYS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Time arithmetic on values a request or the config can push to the extremes (a startTimeDelta
 * of INT64_MIN, a max_age of centuries) saturates instead of overflowing. */
static inline int64_t stan_ns_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}
static inline int64_t stan_ms_to_ns(int64_t ms)
{
    int64_t r;
    if (__builtin_mul_overflow(ms, (int64_t)1000000, &r)) return ms < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

/* Names the engine stores or routes (channel, client ID, durable, queue group, inboxes) are
 * limited to what the store can use as a key, checked before anything is staged, so a request
 * can never make a commit fail for the others in its batch. */
#define STAN_MAX_NAME STORE_MAX_KEY
#define STAN_MAX_NAME_TEXT "511"

/* A subscription's MaxInflight is taken up to this (a larger request is clamped, not refused,
 * so clients asking for "unlimited" keep working): it bounds one subscription's unacked set. */
#define STAN_MAX_INFLIGHT 65536
/* Deliveries and redeliveries per loop iteration, all subscriptions together, and the loop time
 * they may take: the rest waits for the next iteration, so other clients' requests are served
 * in between however large a backlog is being drained. */
#define STAN_DELIVER_BUDGET 2048
/* One batch takes at most this many staged messages / payload bytes; the rest go in the next. */
#define STAN_BATCH_MAX_MSGS 65536
#define STAN_BATCH_MAX_BYTES (32u << 20)
#define STAN_DELIVER_SLICE_NS (2 * 1000 * 1000)

/* ---- keys and message values (stan_keys.c; layout in docs/storage.md) ---- */
/* 8-byte keys let 25 messages of 128 bytes share a 4 KiB page (24 with 10-byte keys). */
#define STAN_MSG_KEY 8                  /* channel id (3) + sequence (5) */
#define STAN_MAX_SEQ ((1ull << 40) - 1) /* sequences are 40-bit on disk */
#define STAN_MAX_CHANNEL_ID ((1u << 24) - 1)
#define STAN_MSG_HDR_MAX (8 + 6 + 10) /* timestamp, running total, reply length (varint) */
typedef struct stan_msgval {
    int64_t ts;
    uint64_t cum; /* running payload total of the channel including this message */
    const char *reply;
    size_t reply_len;
    const uint8_t *data;
    size_t len;
} stan_msgval_t;
void stan_key_msg(uint8_t out[STAN_MSG_KEY], uint32_t chan, uint64_t seq);
uint64_t stan_key_msg_seq(const uint8_t *key);
uint32_t stan_key_msg_chan(const uint8_t *key);
/* Writes a value header; returns its length (<= STAN_MSG_HDR_MAX). */
size_t stan_msg_hdr(uint8_t *out, int64_t ts, uint64_t cum, size_t reply_len);
/* Parses a stored value (slices into it); false if it is malformed. */
bool stan_msg_decode(const void *p, size_t len, stan_msgval_t *out);
void stan_key_u64(uint8_t out[8], uint64_t v);
uint64_t stan_get_u64(const uint8_t *p);
uint32_t stan_get_u32(const uint8_t *p);
void stan_key_pending(uint8_t out[16], uint64_t sub, uint64_t seq);

/* The stored message seq of channel chan (within a read view); false if it is gone or damaged. */
bool stan_msg_get(store_t *store, uint32_t chan, uint64_t seq, stan_msgval_t *out);
/* The first sequence in [first, last] whose timestamp is >= ts (last + 1 if none): a binary
 * search over the stored messages (within a read view; a message gone meanwhile counts as
 * older). */
uint64_t stan_msg_seq_at_time(store_t *store, uint32_t chan, uint64_t first, uint64_t last,
                              int64_t ts);

#endif

/* Key encodings: big-endian, so LMDB's memcmp order is numeric order and a cursor walk over one
 * channel's messages (or one subscription's pending set) is a sequential read. */
#include "stan_private.h"

static void put_be(uint8_t *out, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

void stan_key_msg(uint8_t out[12], uint32_t chan, uint64_t seq)
{
    put_be(out, chan, 4);
    put_be(out + 4, seq, 8);
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

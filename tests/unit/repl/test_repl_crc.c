/* Unit tests for repl_crc: the checksum libraft writes into its log segments must come out the
 * same as libraft's own byteCrc32 (reached, under the linker's --wrap, as __real_byteCrc32), for
 * every length, alignment, starting value and split of the input; otherwise a node could not read
 * back its own log after a restart, nor a log written before this change. */
#include "repl_crc.h"
#include "test.h"

#include <stdint.h>

unsigned __real_byteCrc32(const void *buf, size_t size, unsigned init);

#define LEN_MAX 1100

static uint8_t data[LEN_MAX + 16];

static uint32_t next_random(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

static void test_known_value(void)
{
    /* CRC-32/POSIX (cksum's polynomial, MSB first) of "123456789" is 0x765E7680 after its final
     * inversion; libraft does not invert. */
    CHECK_EQ_INT(repl_crc32("123456789", 9, 0), 0x765E7680u ^ 0xFFFFFFFFu);
    CHECK_EQ_INT(repl_crc32("", 0, 0), 0);
    CHECK_EQ_INT(repl_crc32("", 0, 0xDEADBEEFu), 0xDEADBEEFu);
}

static void test_same_as_libraft(void)
{
    uint32_t rnd = 0x9E3779B9u;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)next_random(&rnd);
    for (size_t len = 0; len <= LEN_MAX; len++)
        for (size_t off = 0; off < 8; off++) {
            unsigned init = (len % 3 == 0) ? 0 : next_random(&rnd);
            CHECK_EQ_INT(repl_crc32(data + off, len, init),
                         __real_byteCrc32(data + off, len, init));
        }
}

static void test_split_input(void)
{
    /* libraft checksums a batch's entries one after another, each call continuing the last. */
    uint32_t rnd = 12345;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)next_random(&rnd);
    unsigned whole = repl_crc32(data, LEN_MAX, 0);
    for (size_t cut = 0; cut <= LEN_MAX; cut += 7) {
        unsigned first = repl_crc32(data, cut, 0);
        CHECK_EQ_INT(repl_crc32(data + cut, LEN_MAX - cut, first), whole);
    }
    CHECK_EQ_INT(whole, __real_byteCrc32(data, LEN_MAX, 0));
}

static void test_large_buffer(void)
{
    /* An entry of several megabytes, as a batch of publishes makes. */
    size_t len = 4u << 20;
    uint8_t *big = malloc(len + 3);
    CHECK(big);
    uint32_t rnd = 777;
    for (size_t i = 0; i < len + 3; i++)
        big[i] = (uint8_t)next_random(&rnd);
    CHECK_EQ_INT(repl_crc32(big + 3, len, 0), __real_byteCrc32(big + 3, len, 0));
    free(big);
}

int main(void)
{
    TEST_RUN(test_known_value);
    TEST_RUN(test_same_as_libraft);
    TEST_RUN(test_split_input);
    TEST_RUN(test_large_buffer);
    return test_summary();
}

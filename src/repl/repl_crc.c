/* Slicing-by-8 for libraft's MSB-first CRC-32 (see repl_crc.h): table k holds the checksum of
 * a byte followed by k zero bytes, so eight bytes fold into the running value with eight
 * independent table reads instead of a chain of eight dependent ones. */
#include "repl_crc.h"

#include <pthread.h>
#include <stdint.h>

#define POLY 0x04C11DB7u

static uint32_t tables[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b << 24;
        for (int bit = 0; bit < 8; bit++)
            c = (c & 0x80000000u) ? (c << 1) ^ POLY : c << 1;
        tables[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++) {
            uint32_t prev = tables[k - 1][b];
            tables[k][b] = (prev << 8) ^ tables[0][prev >> 24];
        }
}

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

unsigned repl_crc32(const void *buf, size_t len, unsigned crc)
{
    const uint8_t *p = buf;
    uint32_t c = crc;

    pthread_once(&tables_once, tables_build);
    for (; len >= 8; len -= 8, p += 8) {
        c ^= load_be32(p);
        c = tables[7][c >> 24] ^ tables[6][(c >> 16) & 0xff] ^ tables[5][(c >> 8) & 0xff] ^
            tables[4][c & 0xff] ^ tables[3][p[4]] ^ tables[2][p[5]] ^ tables[1][p[6]] ^
            tables[0][p[7]];
    }
    while (len--)
        c = (c << 8) ^ tables[0][(c >> 24) ^ *p++];
    return c;
}

/* libraft's calls to byteCrc32, redirected here by the linker (--wrap=byteCrc32). */
unsigned __wrap_byteCrc32(const void *buf, size_t size, unsigned init);
unsigned __wrap_byteCrc32(const void *buf, size_t size, unsigned init)
{
    return repl_crc32(buf, size, init);
}

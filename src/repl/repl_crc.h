/* The checksum libraft puts on every batch of entries it writes to its log segments, and checks
 * when it reads them back: CRC-32 with the polynomial 0x04C11DB7, most significant bit first,
 * no reflection and no final inversion.
 *
 * libraft 0.15 computes it a byte at a time (byteCrc32), which was the largest single cost of a
 * node under publish load. stanzad links libraft statically with `--wrap=byteCrc32`, so its calls
 * land in __wrap_byteCrc32 (repl_crc.c), which computes the same value eight bytes at a time:
 * the segments on disk are unchanged, and readable by either. */
#ifndef STANZA_REPL_CRC_H
#define STANZA_REPL_CRC_H
#include <stddef.h>

/* The checksum of `len` bytes at `buf`, continuing from `crc` (0 to start). */
unsigned repl_crc32(const void *buf, size_t len, unsigned crc);

#endif

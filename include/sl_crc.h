/* sl_crc.h - CRC32C for every wire and disk format, from DPDK's rte_hash_crc (SSE4.2
 * when the CPU has it). Needs no EAL initialisation. rte_hash_crc reads 8/4/2-byte words
 * through casts, so an unaligned head is fed byte by byte first (CRC chaining over the
 * raw register is exact): any buffer, at any offset, is safe under UBSan. */
#ifndef SL_CRC_H
#define SL_CRC_H

#include <stddef.h>
#include <stdint.h>
#include <rte_hash_crc.h>

static inline uint32_t sl_crc32c(const void *data, size_t len, uint32_t seed)
{
	const uint8_t *p = data;
	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		seed = rte_hash_crc_1byte(*p, seed);
		p++;
		len--;
	}
	return len > 0 ? rte_hash_crc(p, (uint32_t)len, seed) : seed;
}

#endif

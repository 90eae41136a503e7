/* sl_crc.h - CRC32C for every wire and disk format, from DPDK's rte_hash_crc (SSE4.2
 * when the CPU has it). Needs no EAL initialisation. */
#ifndef SL_CRC_H
#define SL_CRC_H

#include <stddef.h>
#include <stdint.h>
#include <rte_hash_crc.h>

static inline uint32_t sl_crc32c(const void *data, size_t len, uint32_t seed)
{
	return rte_hash_crc(data, (uint32_t)len, seed);
}

#endif

/* store_test_util.h - the point builders and the reproducible random source that
 * test_store.c and test_store_versioned.c share (static inline: each test binary is one
 * source file, so a header keeps tests/meson.build as it is). */
#ifndef SL_STORE_TEST_UTIL_H
#define SL_STORE_TEST_UTIL_H

#include <stdint.h>
#include <string.h>

#include "batch.h"

/* A point of key (its series id derived the way the parsers derive it); key is borrowed. */
static inline struct sl_point mkpt(const char *key, int64_t ts, uint8_t type, uint64_t value)
{
	size_t len = strlen(key);
	return (struct sl_point){.series_id = sl_series_id(key, len),
				 .ts = ts,
				 .type = type,
				 .value = value,
				 .key_len = (uint16_t)len,
				 .key = key};
}

/* A string point; str is borrowed. */
static inline struct sl_point mkstr(const char *key, int64_t ts, const char *str,
				    uint32_t str_len)
{
	struct sl_point p = mkpt(key, ts, SL_VAL_STR, 0);
	p.str = str;
	p.str_len = str_len;
	return p;
}

static inline uint64_t rng_next(uint64_t *state) /* splitmix64: reproducible choices */
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif

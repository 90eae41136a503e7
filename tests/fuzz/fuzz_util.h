/* fuzz_util.h - the prologue every libFuzzer target in tests/fuzz/ shares: CHECK, the entry
 * point's prototype, the "mode byte, then body" split of an input and the consensus targets'
 * three-voter config. Header-only (static inline), so run.sh's one clang command per target
 * and meson.build's replay executables need no new source file. */
#ifndef SL_FUZZ_UTIL_H
#define SL_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* abort(), not assert(): it must fire under NDEBUG too, and both libFuzzer and driver.c's
 * corpus replay report an abort as a failed input */
#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* For the targets whose first input byte picks a mode: copies the rest (size - 1 bytes) into
 * buf and sets *len. False when there is no mode byte or the rest is over cap: the target
 * skips such an input (returns 0). */
static inline bool fuzz_take_body(const uint8_t *data, size_t size, uint8_t *buf, size_t cap,
				  size_t *len)
{
	if (size == 0 || size - 1 > cap)
		return false;
	*len = size - 1;
	memcpy(buf, data + 1, *len);
	return true;
}

/* Only where consensus.h came first (fuzz_raft.c, fuzz_multileader.c), so the other targets
 * do not depend on the consensus headers. */
#ifdef SL_CONSENSUS_H
/* The consensus targets run replica 1 of voters {1, 2, 3} (peers 2 and 3 are the fuzzer):
 * a zeroed config with that membership; the caller adds its log, options and timing. */
static inline void fuzz_cons_config_3(struct sl_cons_config *cfg, uint64_t group_id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->group_id = group_id;
	cfg->self = 1;
	cfg->n_voters = 3;
	cfg->voters[0] = 1;
	cfg->voters[1] = 2;
	cfg->voters[2] = 3;
}
#endif

#endif

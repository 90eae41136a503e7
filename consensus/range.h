/* range.h - a region's hash range and its cut at a split, shared by the node (its split
 * images, dataplane/node_ckpt.c) and sluice-sim's reconfiguration mode, so both cut at the
 * same place and one deliberate bug (mutation split_boundary) breaks both alike. Pure. */
#ifndef SL_RANGE_H
#define SL_RANGE_H

#include <stdint.h>

/* An inclusive range [lo, hi] of the 64-bit series-hash space. */
struct sl_hash_range {
	uint64_t lo, hi;
};

/* Cut [lo, hi] at `at`, the first hash of the new (upper) region: the parent keeps
 * [lo, at - 1], the child takes [at, hi]. -ERANGE unless lo < at <= hi (both halves must
 * hold at least one hash); 0 and both halves otherwise. */
int sl_range_split(uint64_t lo, uint64_t hi, uint64_t at, struct sl_hash_range *lo_half,
		   struct sl_hash_range *hi_half);

#endif

/* range.c - the cut of a region's hash range at a split (range.h). */
#include <errno.h>

#include "range.h"

int sl_range_split(uint64_t lo, uint64_t hi, uint64_t at, struct sl_hash_range *lo_half,
		   struct sl_hash_range *hi_half)
{
	if (at <= lo || at > hi)
		return -ERANGE;
#ifdef SL_MUTATION_SPLIT_BOUNDARY
	at++; /* a deliberate bug (mutation check): the series at the cut stays with the parent */
#endif
	*lo_half = (struct sl_hash_range){lo, at - 1};
	*hi_half = (struct sl_hash_range){at, hi};
	return 0;
}

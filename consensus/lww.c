/* lww.c - see lww.h. Kept out of line so the test-only mutation (lww_arrival: a tie goes
 * to whichever write arrives later) changes every user at once. */
#include "lww.h"

bool sl_lww_wins(uint64_t hlc_a, uint32_t origin_a, uint64_t hlc_b, uint32_t origin_b)
{
	if (hlc_a != hlc_b)
		return hlc_a > hlc_b;
#ifdef SL_MUTATION_LWW_ARRIVAL
	(void)origin_a;
	(void)origin_b;
	return true; /* the newcomer (a) wins a tie: replicas that see them in another order diverge */
#else
	return origin_a > origin_b;
#endif
}

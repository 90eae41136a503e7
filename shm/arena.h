/* arena.h - one jemalloc arena per worker lcore whose extents come from 2 MiB hugepages
 * when the host has them, else transparent huge pages, else normal pages. Start-up never
 * fails for lack of hugepages: the best available mode is probed at create time. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* Ordered best first: a preferred mode is the highest one sl_arena_create() tries. */
enum sl_arena_mode {
	SL_ARENA_HUGETLB = 0, /* MAP_HUGETLB 2 MiB pages from the reserved pool */
	SL_ARENA_THP = 1,     /* 2 MiB-aligned anonymous memory + MADV_HUGEPAGE */
	SL_ARENA_NORMAL = 2,  /* plain anonymous memory */
};
#define SL_ARENA_N_MODES 3

/* Most arenas one process may create (one per worker lcore, plus tests). */
#define SL_ARENA_MAX 256

struct sl_arena_stats {
	uint64_t mapped_bytes[SL_ARENA_N_MODES]; /* mapped now, by page kind */
	uint64_t chunks_mapped;			 /* successful chunk mmaps so far */
	uint64_t hugetlb_fallbacks;		 /* hugetlb chunk maps refused at run time */
	uint64_t abandoned_bytes;		 /* chunk tails left unused (still mapped) */
};

/* Creates an arena trying `preferred`, then each lower mode the host supports. Writes the
 * jemalloc arena index and the mode obtained. -EINVAL on a bad mode, -ENOSPC past
 * SL_ARENA_MAX, -ENOMEM or another negative errno if jemalloc refuses. Start-up only:
 * it takes a lock and maps probe pages. */
int sl_arena_create(enum sl_arena_mode preferred, unsigned *arena_index, enum sl_arena_mode *got);
const char *sl_arena_mode_name(enum sl_arena_mode mode);

/* Thread cache bypassed on purpose: a tcache would hand out objects of whatever arena
 * filled it, breaking the per-lcore memory ownership. NULL when out of memory. */
void *sl_arena_alloc(unsigned arena, size_t size);
void sl_arena_free(unsigned arena, void *p);

/* -ENOENT if `arena` was not created by sl_arena_create(). */
int sl_arena_stats(unsigned arena, struct sl_arena_stats *out);

#endif

/* sl_jemalloc.h - jemalloc's extended API (mallocx, dallocx, sallocx, rallocx) as the
 * store and the per-lcore arenas use it. A debugging build (-DSL_DEBUG_LIBC_ALLOC, set by
 * hand) sends every such allocation through libc instead, where ASan sees each one: the
 * arena flags are ignored then. */
#ifndef SL_JEMALLOC_H
#define SL_JEMALLOC_H

#include <jemalloc/jemalloc.h>

#ifdef SL_DEBUG_LIBC_ALLOC
#include <malloc.h>
#include <stdlib.h>
static inline void *sl_dbg_mallocx(size_t n, int f)
{
	return (f & MALLOCX_ZERO) ? calloc(1, n) : malloc(n);
}
#define mallocx(n, f) sl_dbg_mallocx((n), (f))
#define sallocx(p, f) ((void)(f), malloc_usable_size(p))
#define dallocx(p, f) ((void)(f), free(p))
#define rallocx(p, n, f) realloc((p), (n))
#endif

#endif

/* arena.c - per-lcore jemalloc arenas backed by custom extent hooks. Memory is mapped in
 * 2 MiB-aligned chunks (hugetlb, THP or normal pages) and carved out by a bump pointer,
 * so jemalloc's page-class sized requests do not each waste the rest of a hugepage. */
#include "arena.h"

#include <errno.h>
#include "sl_jemalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "sl_assert.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26) /* log2(2 MiB) << MAP_HUGE_SHIFT */
#endif

#define HUGE_SZ ((size_t)2 << 20)
/* Bounded registry of hugetlb chunks: hooks must know which ranges are hugetlb so they
 * never purge or unmap them. Past the bound the arena maps its fallback mode instead. */
#define HUGETLB_CHUNKS_MAX 256

struct range {
	uintptr_t start, end;
};

struct arena_state {
	extent_hooks_t hooks;	     /* first member: jemalloc hands this pointer back to hooks */
	enum sl_arena_mode mode;     /* mode obtained at create */
	enum sl_arena_mode fallback; /* THP or NORMAL: what non-hugetlb chunks are */
	unsigned index;
	/* Hooks run on jemalloc's slow path (extent growth), never per allocation, and
	 * may run concurrently for one arena: this lock guards the fields below it. */
	pthread_mutex_t lock;
	uintptr_t cur, end; /* unused tail of the current chunk */
	uint32_t n_huge;
	struct range huge[HUGETLB_CHUNKS_MAX];
	_Atomic uint64_t mapped_bytes[SL_ARENA_N_MODES];
	_Atomic uint64_t chunks_mapped, hugetlb_fallbacks, abandoned_bytes;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct arena_state *g_arenas[SL_ARENA_MAX];
static uint32_t g_n_arenas;

static size_t round_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

static struct arena_state *state_of(extent_hooks_t *h) { return (struct arena_state *)h; }

static void stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void stat_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}

/* Maps `len` (a multiple of 2 MiB) aligned to 2 MiB; NULL on failure. */
static void *map_chunk(enum sl_arena_mode mode, size_t len)
{
	if (mode == SL_ARENA_HUGETLB) {
		/* No MAP_NORESERVE: the kernel reserves the hugepages now, so a shortage is an
		 * mmap failure we can fall back from, never a SIGBUS on first touch. */
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	uint8_t *raw =
	    mmap(NULL, len + HUGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *p = (uint8_t *)round_up((uintptr_t)raw, HUGE_SZ);
	size_t head = (size_t)(p - raw);
	if (head > 0)
		munmap(raw, head);
	if (HUGE_SZ - head > 0)
		munmap(p + len, HUGE_SZ - head);
	if (mode == SL_ARENA_THP)
		(void)madvise(p, len, MADV_HUGEPAGE); /* advisory: still usable without it */
	return p;
}

static bool probe_hugetlb(void)
{
	void *p = map_chunk(SL_ARENA_HUGETLB, HUGE_SZ);
	if (p == NULL)
		return false;
	munmap(p, HUGE_SZ);
	return true;
}

static bool probe_thp(void)
{
	char buf[128] = {0};
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n == 0 || strstr(buf, "[never]") != NULL)
		return false;
	void *p = map_chunk(SL_ARENA_NORMAL, HUGE_SZ);
	if (p == NULL)
		return false;
	bool ok = madvise(p, HUGE_SZ, MADV_HUGEPAGE) == 0; /* EINVAL: kernel without THP */
	munmap(p, HUGE_SZ);
	return ok;
}

/* Caller holds st->lock. */
static bool overlaps_hugetlb(const struct arena_state *st, uintptr_t a, size_t size)
{
	for (uint32_t i = 0; i < st->n_huge; i++)
		if (a < st->huge[i].end && st->huge[i].start < a + size)
			return true;
	return false;
}

static bool is_hugetlb(struct arena_state *st, void *addr, size_t size)
{
	if (st->mode != SL_ARENA_HUGETLB)
		return false;
	pthread_mutex_lock(&st->lock);
	bool r = overlaps_hugetlb(st, (uintptr_t)addr, size);
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* Takes [aligned cur, +size) from the current chunk; new_addr pins the address. */
static void *carve(struct arena_state *st, void *new_addr, size_t size, size_t alignment)
{
	uintptr_t a = round_up(st->cur, alignment);
	if (st->cur == 0 || (new_addr != NULL && a != (uintptr_t)new_addr) || a + size > st->end ||
	    a + size < a)
		return NULL;
	st->cur = a + size;
	return (void *)a;
}

/* Maps a chunk able to hold `size` at `alignment` and makes it current if it leaves a
 * longer tail than the current one. Caller holds st->lock. */
static void *refill(struct arena_state *st, size_t size, size_t alignment)
{
	size_t len = round_up(size + (alignment > HUGE_SZ ? alignment : 0), HUGE_SZ);
	if (len < size)
		return NULL;
	enum sl_arena_mode mode = st->fallback;
	uint8_t *chunk = NULL;
	if (st->mode == SL_ARENA_HUGETLB && st->n_huge < HUGETLB_CHUNKS_MAX) {
		chunk = map_chunk(SL_ARENA_HUGETLB, len);
		if (chunk != NULL) {
			mode = SL_ARENA_HUGETLB;
			st->huge[st->n_huge++] =
			    (struct range){(uintptr_t)chunk, (uintptr_t)chunk + len};
		} else {
			stat_add(&st->hugetlb_fallbacks, 1);
		}
	} else if (st->mode == SL_ARENA_HUGETLB) {
		stat_add(&st->hugetlb_fallbacks, 1);
	}
	if (chunk == NULL)
		chunk = map_chunk(mode, len);
	if (chunk == NULL)
		return NULL;
	stat_add(&st->mapped_bytes[mode], len);
	stat_add(&st->chunks_mapped, 1);

	uintptr_t p = round_up((uintptr_t)chunk, alignment);
	SL_ASSERT(p + size <= (uintptr_t)chunk + len);
	uintptr_t new_tail = (uintptr_t)chunk + len - (p + size);
	if (new_tail > st->end - st->cur) {
		stat_add(&st->abandoned_bytes, st->end - st->cur);
		st->cur = p + size;
		st->end = (uintptr_t)chunk + len;
	} else {
		stat_add(&st->abandoned_bytes, new_tail);
	}
	return (void *)p;
}

static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment,
			bool *zero, bool *commit, unsigned arena_ind)
{
	(void)arena_ind;
	struct arena_state *st = state_of(h);
	if (size == 0 || alignment == 0 || (alignment & (alignment - 1)) != 0)
		return NULL;
	pthread_mutex_lock(&st->lock);
	void *p = carve(st, new_addr, size, alignment);
	if (p == NULL && new_addr == NULL)
		p = refill(st, size, alignment);
	pthread_mutex_unlock(&st->lock);
	if (p != NULL) {
		/* Never handed out before (bump pointer only moves forward): fresh anonymous
		 * memory is zeroed and, as we never decommit, always committed. */
		*zero = true;
		*commit = true;
	}
	return p;
}

/* Releases a non-hugetlb range to the kernel; the bump pointer never returns it. */
static bool unmap_range(struct arena_state *st, void *addr, size_t size)
{
	if (munmap(addr, size) != 0)
		return true;
	stat_sub(&st->mapped_bytes[st->fallback], size);
	return false;
}

static bool hook_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
			unsigned arena_ind)
{
	(void)committed;
	(void)arena_ind;
	struct arena_state *st = state_of(h);
	/* Opt out for hugetlb: jemalloc keeps the extent as retained and reuses it, so the
	 * reserved pages stay ours instead of going back to the pool. */
	if (is_hugetlb(st, addr, size))
		return true;
	return unmap_range(st, addr, size);
}

static void hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
			 unsigned arena_ind)
{
	(void)committed;
	(void)arena_ind;
	struct arena_state *st = state_of(h);
	if (!is_hugetlb(st, addr, size)) {
		(void)unmap_range(st, addr, size);
		return;
	}
	/* The kernel rounds a hugetlb munmap to whole pages: unaligned pieces would take a
	 * neighbour's memory with them, so only whole hugepages go back. */
	if (((uintptr_t)addr & (HUGE_SZ - 1)) == 0 && (size & (HUGE_SZ - 1)) == 0 &&
	    munmap(addr, size) == 0)
		stat_sub(&st->mapped_bytes[SL_ARENA_HUGETLB], size);
}

/* Memory is always committed: decommit is refused, so commit has nothing to do. */
static bool hook_commit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
			unsigned arena_ind)
{
	(void)h, (void)addr, (void)size, (void)offset, (void)length, (void)arena_ind;
	return false;
}

/* Refused (as jemalloc itself does on overcommitting Linux): purging releases the pages
 * just as well and keeps the address range mapped for reuse. */
static bool hook_decommit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
			  unsigned arena_ind)
{
	(void)h, (void)addr, (void)size, (void)offset, (void)length, (void)arena_ind;
	return true;
}

static bool purge(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
		  int advice)
{
	struct arena_state *st = state_of(h);
	/* A purged hugetlb page goes back to the pool; another process could take it and
	 * our next touch would SIGBUS. Refusing keeps the pages resident and ours. */
	if (is_hugetlb(st, addr, size))
		return true;
	return madvise((uint8_t *)addr + offset, length, advice) != 0;
}

static bool hook_purge_lazy(extent_hooks_t *h, void *addr, size_t size, size_t offset,
			    size_t length, unsigned arena_ind)
{
	(void)arena_ind;
	return purge(h, addr, size, offset, length, MADV_FREE);
}

static bool hook_purge_forced(extent_hooks_t *h, void *addr, size_t size, size_t offset,
			      size_t length, unsigned arena_ind)
{
	(void)arena_ind;
	/* MADV_DONTNEED: anonymous pages read back as zero, the contract of a forced purge. */
	return purge(h, addr, size, offset, length, MADV_DONTNEED);
}

/* Any range can be split: nothing per extent is tracked, the registry is by address. */
static bool hook_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a, size_t size_b,
		       bool committed, unsigned arena_ind)
{
	(void)h, (void)addr, (void)size, (void)size_a, (void)size_b, (void)committed;
	(void)arena_ind;
	return false;
}

/* Adjacent ranges may merge (munmap spans mappings) unless that mixes hugetlb with other
 * pages: the merged extent could then be purged or unmapped as a whole. */
static bool hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b,
		       bool committed, unsigned arena_ind)
{
	(void)committed;
	(void)arena_ind;
	struct arena_state *st = state_of(h);
	return is_hugetlb(st, addr_a, size_a) != is_hugetlb(st, addr_b, size_b);
}

static const extent_hooks_t hooks_template = {
    .alloc = hook_alloc,
    .dalloc = hook_dalloc,
    .destroy = hook_destroy,
    .commit = hook_commit,
    .decommit = hook_decommit,
    .purge_lazy = hook_purge_lazy,
    .purge_forced = hook_purge_forced,
    .split = hook_split,
    .merge = hook_merge,
};

const char *sl_arena_mode_name(enum sl_arena_mode mode)
{
	switch (mode) {
	case SL_ARENA_HUGETLB:
		return "hugetlb-2MiB";
	case SL_ARENA_THP:
		return "thp";
	case SL_ARENA_NORMAL:
		return "normal";
	}
	return "unknown";
}

int sl_arena_create(enum sl_arena_mode preferred, unsigned *arena_index, enum sl_arena_mode *got)
{
	if ((unsigned)preferred >= SL_ARENA_N_MODES || arena_index == NULL || got == NULL)
		return -EINVAL;
	pthread_mutex_lock(&g_lock);
	int rc = -ENOSPC;
	if (g_n_arenas == SL_ARENA_MAX)
		goto out;
	/* Its own mapping, never freed: jemalloc keeps calling the hooks for the life of
	 * the process, and the arena itself is never destroyed. */
	struct arena_state *st =
	    mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rc = -ENOMEM;
	if (st == MAP_FAILED)
		goto out;
	st->hooks = hooks_template;
	pthread_mutex_init(&st->lock, NULL);
	st->fallback = SL_ARENA_NORMAL;
	if (preferred <= SL_ARENA_THP && probe_thp())
		st->fallback = SL_ARENA_THP;
	st->mode = st->fallback;
	if (preferred == SL_ARENA_HUGETLB && probe_hugetlb())
		st->mode = SL_ARENA_HUGETLB;

	extent_hooks_t *hp = &st->hooks;
	size_t sz = sizeof(unsigned);
	int err = mallctl("arenas.create", &st->index, &sz, &hp, sizeof(hp));
	if (err != 0) {
		/* jemalloc may already have mapped base memory through the hooks: the
		 * state must stay valid, so it is leaked rather than unmapped. */
		rc = -err;
		goto out;
	}
	g_arenas[g_n_arenas++] = st;
	*arena_index = st->index;
	*got = st->mode;
	rc = 0;
out:
	pthread_mutex_unlock(&g_lock);
	return rc;
}

void *sl_arena_alloc(unsigned arena, size_t size)
{
	if (size == 0)
		size = 1; /* mallocx(0) is undefined */
	return mallocx(size, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE);
}

void sl_arena_free(unsigned arena, void *p)
{
	(void)arena; /* jemalloc finds the owning arena from the extent */
	if (p != NULL)
		dallocx(p, MALLOCX_TCACHE_NONE);
}

int sl_arena_stats(unsigned arena, struct sl_arena_stats *out)
{
	struct arena_state *st = NULL;
	pthread_mutex_lock(&g_lock);
	for (uint32_t i = 0; i < g_n_arenas; i++)
		if (g_arenas[i]->index == arena)
			st = g_arenas[i];
	pthread_mutex_unlock(&g_lock);
	if (st == NULL)
		return -ENOENT;
	for (int m = 0; m < SL_ARENA_N_MODES; m++)
		out->mapped_bytes[m] =
		    atomic_load_explicit(&st->mapped_bytes[m], memory_order_relaxed);
	out->chunks_mapped = atomic_load_explicit(&st->chunks_mapped, memory_order_relaxed);
	out->hugetlb_fallbacks = atomic_load_explicit(&st->hugetlb_fallbacks, memory_order_relaxed);
	out->abandoned_bytes = atomic_load_explicit(&st->abandoned_bytes, memory_order_relaxed);
	return 0;
}

/* test_arena.c - per-lcore jemalloc arenas: each mode allocates, frees and purges real
 * memory from the right arena, and asking for hugetlb on a host without free hugepages
 * falls back instead of failing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jemalloc/jemalloc.h>

#include "arena.h"
#include "sl_assert.h"

static const size_t sizes[] = {
    1, 8, 24, 64, 100, 512, 4096, 10000, 65536, 300000, 1 << 20, (3 << 20) + 17, 8 << 20};

static long meminfo_value(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	assert_non_null(f);
	char line[256];
	long v = -1;
	size_t klen = strlen(key);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			v = strtol(line + klen + 1, NULL, 10);
	fclose(f);
	return v;
}

static bool thp_enabled(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f == NULL)
		return false;
	char buf[128] = {0};
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	return n > 0 && strstr(buf, "[never]") == NULL;
}

/* Whether the mapping holding p carries VmFlag `flag` (e.g. "hg" for MADV_HUGEPAGE). */
static bool vmflag(const void *p, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	assert_non_null(f);
	char line[512];
	bool inside = false, found = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		} else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			char pat[8];
			snprintf(pat, sizeof(pat), " %s", flag);
			found = strstr(line, pat) != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

static unsigned arena_of(void *p)
{
	unsigned idx = ~0u;
	size_t sz = sizeof(idx);
	assert_int_equal(mallctl("arenas.lookup", &idx, &sz, &p, sizeof(p)), 0);
	return idx;
}

static void purge_arena(unsigned arena)
{
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.purge", arena);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
}

/* Allocates every size several times, writes and checks a pattern, checks ownership,
 * frees half, purges, allocates again over purged memory. */
static void exercise(unsigned arena)
{
	enum { REPS = 4 };
	void *ptrs[SL_ARRAY_LEN(sizes)][REPS];
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
			for (int r = 0; r < REPS; r++) {
				if (round == 1 && r % 2 == 1)
					continue; /* still allocated from round 0 */
				uint8_t *p = sl_arena_alloc(arena, sizes[i]);
				assert_non_null(p);
				assert_int_equal(arena_of(p), arena);
				memset(p, (int)(i * 7 + (size_t)r), sizes[i]);
				ptrs[i][r] = p;
			}
		}
		for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
			for (int r = 0; r < REPS; r++) {
				uint8_t *p = ptrs[i][r];
				uint8_t want = (uint8_t)(i * 7 + (size_t)r);
				assert_int_equal(p[0], want);
				assert_int_equal(p[sizes[i] / 2], want);
				assert_int_equal(p[sizes[i] - 1], want);
				if (round == 1 || r % 2 == 0)
					sl_arena_free(arena, p);
			}
		}
		purge_arena(arena);
	}
}

static void check_stats(unsigned arena, enum sl_arena_mode got)
{
	struct sl_arena_stats st;
	assert_int_equal(sl_arena_stats(arena, &st), 0);
	assert_true(st.chunks_mapped > 0);
	assert_true(st.mapped_bytes[got] >= ((uint64_t)8 << 20));
	for (int m = 0; m < SL_ARENA_N_MODES; m++)
		if (m != (int)got && !(got == SL_ARENA_HUGETLB && st.hugetlb_fallbacks > 0))
			assert_int_equal(st.mapped_bytes[m], 0);
}

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(sl_arena_mode_name(SL_ARENA_HUGETLB), "hugetlb-2MiB");
	assert_string_equal(sl_arena_mode_name(SL_ARENA_THP), "thp");
	assert_string_equal(sl_arena_mode_name(SL_ARENA_NORMAL), "normal");
}

static void test_bad_args(void **state)
{
	(void)state;
	unsigned idx;
	enum sl_arena_mode got;
	assert_int_equal(sl_arena_create((enum sl_arena_mode)7, &idx, &got), -EINVAL);
	assert_int_equal(sl_arena_create(SL_ARENA_NORMAL, NULL, &got), -EINVAL);
	struct sl_arena_stats st;
	assert_int_equal(sl_arena_stats(0, &st), -ENOENT); /* jemalloc's own arena 0 */
}

static void test_normal(void **state)
{
	(void)state;
	unsigned idx;
	enum sl_arena_mode got;
	assert_int_equal(sl_arena_create(SL_ARENA_NORMAL, &idx, &got), 0);
	assert_int_equal(got, SL_ARENA_NORMAL);
	exercise(idx);
	check_stats(idx, got);
	void *big = sl_arena_alloc(idx, 4 << 20);
	assert_non_null(big);
	assert_false(vmflag(big, "hg"));
	sl_arena_free(idx, big);
}

static void test_thp(void **state)
{
	(void)state;
	unsigned idx;
	enum sl_arena_mode got;
	assert_int_equal(sl_arena_create(SL_ARENA_THP, &idx, &got), 0);
	assert_int_equal(got, thp_enabled() ? SL_ARENA_THP : SL_ARENA_NORMAL);
	exercise(idx);
	check_stats(idx, got);
	void *big = sl_arena_alloc(idx, 4 << 20);
	assert_non_null(big);
	assert_int_equal(vmflag(big, "hg"), got == SL_ARENA_THP);
	sl_arena_free(idx, big);
}

static void test_hugetlb_or_fallback(void **state)
{
	(void)state;
	bool have_free =
	    meminfo_value("HugePages_Free") > 0 && meminfo_value("Hugepagesize") == 2048;
	unsigned idx;
	enum sl_arena_mode got;
	assert_int_equal(sl_arena_create(SL_ARENA_HUGETLB, &idx, &got), 0);
	if (have_free)
		assert_int_equal(got, SL_ARENA_HUGETLB);
	else
		assert_int_not_equal(got, SL_ARENA_HUGETLB);
	print_message("hugetlb requested: got %s\n", sl_arena_mode_name(got));
	exercise(idx);
	struct sl_arena_stats st;
	assert_int_equal(sl_arena_stats(idx, &st), 0);
	if (got == SL_ARENA_HUGETLB)
		assert_true(st.mapped_bytes[SL_ARENA_HUGETLB] > 0);
	else
		check_stats(idx, got);
}

/* Arenas are independent: memory of one never comes from another. */
static void test_two_arenas(void **state)
{
	(void)state;
	unsigned a, b;
	enum sl_arena_mode ga, gb;
	assert_int_equal(sl_arena_create(SL_ARENA_THP, &a, &ga), 0);
	assert_int_equal(sl_arena_create(SL_ARENA_NORMAL, &b, &gb), 0);
	assert_int_not_equal(a, b);
	void *pa[64], *pb[64];
	for (int i = 0; i < 64; i++) {
		pa[i] = sl_arena_alloc(a, 256 + (size_t)i * 100);
		pb[i] = sl_arena_alloc(b, 256 + (size_t)i * 100);
		assert_int_equal(arena_of(pa[i]), a);
		assert_int_equal(arena_of(pb[i]), b);
	}
	for (int i = 0; i < 64; i++) {
		sl_arena_free(a, pa[i]);
		sl_arena_free(b, pb[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mode_names),
	    cmocka_unit_test(test_bad_args),
	    cmocka_unit_test(test_normal),
	    cmocka_unit_test(test_thp),
	    cmocka_unit_test(test_hugetlb_or_fallback),
	    cmocka_unit_test(test_two_arenas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

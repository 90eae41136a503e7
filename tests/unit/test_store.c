/* test_store.c - cmocka tests of the batch codec (round trip and every malformed input the
 * decoder must refuse) and of the per-region store (ordering, last-writer-wins, range
 * queries, type conflicts, map growth, snapshots, jemalloc arena placement). */
/* cmocka needs these before it, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "batch.h"
#include "sl_assert.h"
#include "sl_le.h"
#include "store.h"

#define KEY_A "cpu,host=a usage"
#define KEY_B "mem,host=b used"

static struct sl_point mkpt(const char *key, int64_t ts, uint8_t type, uint64_t value)
{
	size_t len = strlen(key);
	return (struct sl_point){.series_id = sl_series_id(key, len),
				 .ts = ts,
				 .type = type,
				 .value = value,
				 .key_len = (uint16_t)len,
				 .key = key};
}

static uint64_t rng_next(uint64_t *state) /* splitmix64: reproducible shuffles */
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct sl_store *mkstore(uint32_t region_id, uint32_t chunk_points)
{
	struct sl_store_config cfg = {.region_id = region_id, .chunk_points = chunk_points};
	struct sl_store *st = NULL;
	assert_int_equal(sl_store_create(&cfg, &st), 0);
	assert_non_null(st);
	return st;
}

static struct sl_store_stats stats_of(const struct sl_store *st)
{
	struct sl_store_stats s;
	sl_store_stats(st, &s);
	return s;
}

static void recrc(uint8_t *buf, size_t len)
{
	sl_put_u32(buf + len - 4, sl_batch_crc32c(buf, len - 4, SL_BATCH_CRC_SEED));
}

static void assert_points_equal(const struct sl_point *a, const struct sl_point *b)
{
	assert_int_equal(a->series_id, b->series_id);
	assert_int_equal(a->ts, b->ts);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->value, b->value);
	assert_int_equal(a->key_len, b->key_len);
	assert_memory_equal(a->key, b->key, a->key_len);
}

/* A 3-point batch of region 7 used by the malformed-input tests. */
static size_t build_three(uint8_t *buf, size_t cap)
{
	struct sl_batch b;
	size_t len = 0;
	struct sl_point p[3] = {mkpt(KEY_A, 1, SL_VAL_F64, 11), mkpt(KEY_B, 2, SL_VAL_BOOL, 1),
				mkpt(KEY_A, 3, SL_VAL_F64, 33)};
	assert_int_equal(sl_batch_init(&b, buf, cap, 7), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(sl_batch_add(&b, &p[i]), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	return len;
}

/* ---- batch codec ---- */

static void test_batch_roundtrip(void **state)
{
	(void)state;
	_Alignas(8) uint8_t buf[4096];
	char key_max[SL_KEY_MAX + 1];
	memset(key_max, 'k', SL_KEY_MAX);
	key_max[SL_KEY_MAX] = '\0';
	double d = -3.25;
	uint64_t dbits;
	memcpy(&dbits, &d, 8);
	struct sl_point in[] = {
	    mkpt(KEY_A, 1700000000000000000ll, SL_VAL_F64, dbits),
	    mkpt(KEY_B, -5, SL_VAL_I64, (uint64_t)-7ll),
	    mkpt("disk,dev=sda free", INT64_MAX, SL_VAL_U64, UINT64_MAX),
	    mkpt("up,host=a ok", INT64_MIN, SL_VAL_BOOL, 1),
	    mkpt(key_max, 0, SL_VAL_I64, 42),
	};
	struct sl_batch b;
	size_t len = 0, want = SL_BATCH_EMPTY_BYTES;
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 7), 0);
	for (size_t i = 0; i < SL_ARRAY_LEN(in); i++) {
		assert_int_equal(sl_batch_add(&b, &in[i]), 0);
		want += sl_batch_point_bytes(in[i].key_len);
	}
	assert_int_equal(sl_batch_count(&b), SL_ARRAY_LEN(in));
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_int_equal(len, want);
	size_t len2 = 0;
	assert_int_equal(sl_batch_finish(&b, &len2), 0);
	assert_int_equal(len2, len);

	struct sl_batch_iter it;
	struct sl_point out;
	assert_int_equal(sl_batch_iter_init(&it, buf, len), 0);
	assert_int_equal(sl_batch_iter_region(&it), 7);
	assert_int_equal(sl_batch_iter_count(&it), SL_ARRAY_LEN(in));
	for (size_t i = 0; i < SL_ARRAY_LEN(in); i++) {
		assert_int_equal(sl_batch_next(&it, &out), 1);
		assert_points_equal(&out, &in[i]);
		assert_true((const uint8_t *)out.key > buf && (const uint8_t *)out.key < buf + len);
	}
	assert_int_equal(sl_batch_next(&it, &out), 0);
	assert_int_equal(sl_batch_next(&it, &out), 0);
	uint32_t count = 0, region = 0;
	assert_int_equal(sl_batch_check(buf, len, &count, &region), 0);
	assert_int_equal(count, SL_ARRAY_LEN(in));
	assert_int_equal(region, 7);

	/* Empty batch. */
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 9), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_int_equal(len, SL_BATCH_EMPTY_BYTES);
	assert_int_equal(sl_batch_iter_init(&it, buf, len), 0);
	assert_int_equal(sl_batch_iter_region(&it), 9);
	assert_int_equal(sl_batch_next(&it, &out), 0);
}

static void test_batch_enospc(void **state)
{
	(void)state;
	_Alignas(8) uint8_t buf[256];
	struct sl_batch b;
	struct sl_point p1 = mkpt(KEY_A, 1, SL_VAL_F64, 1), p2 = mkpt(KEY_B, 2, SL_VAL_F64, 2);
	size_t cap = SL_BATCH_EMPTY_BYTES + sl_batch_point_bytes(p1.key_len) + 3;
	size_t len = 0;

	assert_int_equal(sl_batch_init(&b, buf, SL_BATCH_EMPTY_BYTES - 1, 1), -ENOSPC);
	assert_int_equal(sl_batch_init(&b, buf, cap, 1), 0);
	assert_int_equal(sl_batch_add(&b, &p1), 0);
	assert_int_equal(sl_batch_add(&b, &p2), -ENOSPC);
	assert_int_equal(sl_batch_add(&b, &p1), -ENOSPC);
	assert_int_equal(sl_batch_count(&b), 1);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_true(len <= cap);

	struct sl_batch_iter it;
	struct sl_point out;
	assert_int_equal(sl_batch_iter_init(&it, buf, len), 0);
	assert_int_equal(sl_batch_next(&it, &out), 1);
	assert_points_equal(&out, &p1);
	assert_int_equal(sl_batch_next(&it, &out), 0);
	/* Finished batches take no more points. */
	assert_int_equal(sl_batch_add(&b, &p1), -EINVAL);
}

static void test_batch_add_rejects_bad_points(void **state)
{
	(void)state;
	_Alignas(8) uint8_t buf[1024];
	char key_long[SL_KEY_MAX + 2];
	memset(key_long, 'x', SL_KEY_MAX + 1);
	key_long[SL_KEY_MAX + 1] = '\0';
	struct sl_batch b;
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 1), 0);

	struct sl_point p = mkpt(KEY_A, 1, 0, 0);
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	p.type = SL_VAL_BOOL + 1;
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	p = mkpt(KEY_A, 1, SL_VAL_BOOL, 2);
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	p = mkpt(key_long, 1, SL_VAL_F64, 0);
	assert_int_equal(p.key_len, SL_KEY_MAX + 1);
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	p = mkpt("", 1, SL_VAL_F64, 0);
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	p = mkpt(KEY_A, 1, SL_VAL_F64, 0);
	p.series_id ^= 1;
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	assert_int_equal(sl_batch_count(&b), 0);
}

static void test_batch_malformed(void **state)
{
	(void)state;
	_Alignas(8) uint8_t good[512];
	_Alignas(8) uint8_t w[512];
	size_t len = build_three(good, sizeof(good));
	const size_t p0 = SL_BATCH_HDR_BYTES; /* first point */
	const size_t p1 = p0 + sl_batch_point_bytes(strlen(KEY_A));
	const size_t p2 = p1 + sl_batch_point_bytes(strlen(KEY_B));
	assert_int_equal(sl_batch_check(good, len, NULL, NULL), 0);

	/* Truncated anywhere, with the original trailer lost. */
	for (size_t l = 0; l < len; l++)
		assert_int_equal(sl_batch_check(good, l, NULL, NULL), -EBADMSG);
	/* Truncated inside a point but re-checksummed: only the length checks can see it. */
	for (size_t l = p1 + 1; l < len - 4; l++) {
		memcpy(w, good, l);
		recrc(w, l + 4);
		assert_int_equal(sl_batch_check(w, l + 4, NULL, NULL), -EBADMSG);
	}
	/* Any flipped byte breaks the CRC. */
	for (size_t i = 0; i < len; i++) {
		memcpy(w, good, len);
		w[i] ^= 0x5a;
		assert_int_equal(sl_batch_check(w, len, NULL, NULL), -EBADMSG);
	}

	struct {
		size_t off;
		int width; /* 1, 2 or 4 bytes */
		uint32_t value;
	} cases[] = {
	    {0, 1, 2},				       /* unknown version */
	    {1, 1, 1},				       /* unknown flags */
	    {6, 4, 4},				       /* count larger than the points present */
	    {6, 4, 2},				       /* count smaller: trailing bytes */
	    {6, 4, UINT32_MAX},			       /* absurd count */
	    {p0 + 16, 1, 0},			       /* type 0 */
	    {p2 + 16, 1, 9},			       /* unknown type in the last point */
	    {p1 + 17, 1, 2},			       /* bool value 2 */
	    {p0 + 25, 2, SL_KEY_MAX + 1},	       /* key too long */
	    {p2 + 25, 2, 200},			       /* key runs past the end */
	    {p0 + 25, 2, 0},			       /* empty key */
	    {p0 + SL_BATCH_POINT_FIXED_BYTES, 1, 'X'}, /* key no longer matches its id */
	    {p1, 1, 0xee},			       /* id no longer matches the key */
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		memcpy(w, good, len);
		if (cases[c].width == 1)
			w[cases[c].off] = (uint8_t)cases[c].value;
		else if (cases[c].width == 2)
			sl_put_u16(w + cases[c].off, (uint16_t)cases[c].value);
		else
			sl_put_u32(w + cases[c].off, cases[c].value);
		recrc(w, len);
		assert_int_equal(sl_batch_check(w, len, NULL, NULL), -EBADMSG);
	}

	/* A point with a 257-byte key and a matching id is still refused by the decoder. */
	char key_long[SL_KEY_MAX + 1];
	memset(key_long, 'y', sizeof(key_long));
	size_t l = SL_BATCH_HDR_BYTES + sl_batch_point_bytes(sizeof(key_long)) + 4;
	memset(w, 0, sizeof(w));
	w[0] = SL_BATCH_VERSION;
	sl_put_u32(w + 6, 1);
	sl_put_u64(w + p0, sl_series_id(key_long, sizeof(key_long)));
	w[p0 + 16] = SL_VAL_F64;
	sl_put_u16(w + p0 + 25, (uint16_t)sizeof(key_long));
	memcpy(w + p0 + SL_BATCH_POINT_FIXED_BYTES, key_long, sizeof(key_long));
	recrc(w, l);
	assert_int_equal(sl_batch_check(w, l, NULL, NULL), -EBADMSG);

	/* The iterator yields good points, then the error, and the error sticks. */
	memcpy(w, good, len);
	w[p1 + 16] = 0;
	recrc(w, len);
	struct sl_batch_iter it;
	struct sl_point out;
	assert_int_equal(sl_batch_iter_init(&it, w, len), 0);
	assert_int_equal(sl_batch_next(&it, &out), 1);
	assert_int_equal(sl_batch_next(&it, &out), -EBADMSG);
	assert_int_equal(sl_batch_next(&it, &out), -EBADMSG);
	assert_int_equal(sl_batch_iter_init(&it, NULL, 100), -EBADMSG);
}

/* ---- store ---- */

static void query_all(const struct sl_store *st, uint64_t id, struct sl_sample *out, size_t max,
		      size_t *n)
{
	assert_int_equal(sl_store_query(st, id, INT64_MIN, INT64_MAX, out, max, n, NULL), 0);
}

static void test_store_config(void **state)
{
	(void)state;
	struct sl_store *st = NULL;
	struct sl_store_config cfg = {.chunk_points = 1};
	assert_int_equal(sl_store_create(&cfg, &st), -EINVAL);
	cfg.chunk_points = SL_STORE_CHUNK_POINTS_MAX + 1;
	assert_int_equal(sl_store_create(&cfg, &st), -EINVAL);
	cfg.chunk_points = 0;
	cfg.region_id = 5;
	assert_int_equal(sl_store_create(&cfg, &st), 0);
	assert_int_equal(sl_store_region(st), 5);
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.series, 0);
	assert_int_equal(s.points, 0);
	assert_true(s.bytes > 0);
	sl_store_destroy(st);
	sl_store_destroy(NULL);
}

static void test_store_in_order(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(1, 0);
	const size_t n = 10000;
	for (size_t i = 0; i < n; i++) {
		struct sl_point p = mkpt(KEY_A, (int64_t)i * 10, SL_VAL_F64, i);
		assert_int_equal(sl_store_apply(st, &p), 0);
	}
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.series, 1);
	assert_int_equal(s.points, n);
	assert_int_equal(s.chunks, (n + 511) / 512); /* appends fill chunks completely */

	struct sl_series_info info;
	uint64_t id = sl_series_id(KEY_A, strlen(KEY_A));
	assert_int_equal(sl_store_series_info(st, id, &info), 0);
	assert_string_equal(info.key, KEY_A);
	assert_int_equal(info.key_len, strlen(KEY_A));
	assert_int_equal(info.type, SL_VAL_F64);
	assert_int_equal(info.n_points, n);
	assert_int_equal(info.first_ts, 0);
	assert_int_equal(info.last_ts, (int64_t)(n - 1) * 10);

	struct sl_sample *out = calloc(n, sizeof(*out));
	size_t got = 0;
	uint8_t type = 0;
	assert_int_equal(sl_store_query(st, id, INT64_MIN, INT64_MAX, out, n, &got, &type), 0);
	assert_int_equal(type, SL_VAL_F64);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].ts, (int64_t)i * 10);
		assert_int_equal(out[i].value, i);
	}
	/* Paging with from = last + 1 visits every sample once. */
	size_t total = 0;
	int64_t from = INT64_MIN;
	struct sl_sample page[333];
	for (;;) {
		assert_int_equal(sl_store_query(st, id, from, INT64_MAX, page, 333, &got, NULL), 0);
		if (got == 0)
			break;
		for (size_t i = 0; i < got; i++)
			assert_int_equal(page[i].ts, (int64_t)(total + i) * 10);
		total += got;
		from = page[got - 1].ts + 1;
	}
	assert_int_equal(total, n);
	free(out);
	sl_store_destroy(st);
}

/* Writes `n_writes` points with timestamps from a shuffled permutation plus random repeats
 * and checks the store holds exactly the sorted unique timestamps with the last value. */
static void shuffled_case(uint32_t chunk_points, size_t n_unique, size_t n_writes, uint64_t seed)
{
	struct sl_store *st = mkstore(1, chunk_points);
	int64_t *ts = malloc(n_writes * sizeof(*ts));
	uint64_t *last = malloc(n_unique * sizeof(*last));
	assert_non_null(ts);
	assert_non_null(last);
	for (size_t i = 0; i < n_unique; i++)
		ts[i] = (int64_t)i;
	for (size_t i = n_unique; i < n_writes; i++)
		ts[i] = (int64_t)(rng_next(&seed) % n_unique);
	for (size_t i = n_writes - 1; i > 0; i--) {
		size_t j = rng_next(&seed) % (i + 1);
		int64_t t = ts[i];
		ts[i] = ts[j];
		ts[j] = t;
	}
	for (size_t i = 0; i < n_writes; i++) {
		int64_t t = ts[i] * 3 - 100000; /* negative timestamps too */
		struct sl_point p = mkpt(KEY_B, t, SL_VAL_I64, i);
		assert_int_equal(sl_store_apply(st, &p), 0);
		last[ts[i]] = i;
	}
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.points, n_unique);
	assert_true(s.chunks * chunk_points >= n_unique);

	uint64_t id = sl_series_id(KEY_B, strlen(KEY_B));
	struct sl_sample *out = malloc((n_unique + 1) * sizeof(*out));
	size_t got = 0;
	query_all(st, id, out, n_unique + 1, &got);
	assert_int_equal(got, n_unique);
	for (size_t i = 0; i < n_unique; i++) {
		assert_int_equal(out[i].ts, (int64_t)i * 3 - 100000);
		assert_int_equal(out[i].value, last[i]);
	}
	struct sl_series_info info;
	assert_int_equal(sl_store_series_info(st, id, &info), 0);
	assert_int_equal(info.n_points, n_unique);
	assert_int_equal(info.n_chunks, s.chunks);
	assert_int_equal(info.first_ts, -100000);
	assert_int_equal(info.last_ts, (int64_t)(n_unique - 1) * 3 - 100000);
	free(out);
	free(last);
	free(ts);
	sl_store_destroy(st);
}

static void test_store_shuffled(void **state)
{
	(void)state;
	shuffled_case(512, 80000, 100000, 1);
	shuffled_case(64, 20000, 30000, 2);
	shuffled_case(SL_STORE_CHUNK_POINTS_MIN, 2000, 3000, 3); /* split on every insert */
}

static void test_store_duplicates_overwrite(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(3, 16);
	_Alignas(8) uint8_t buf[8192];
	struct sl_batch b;
	size_t len = 0;
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 3), 0);
	for (int i = 0; i < 100; i++) {
		struct sl_point p = mkpt(i % 2 ? KEY_A : KEY_B, 1000 - i, SL_VAL_U64, (uint64_t)i);
		assert_int_equal(sl_batch_add(&b, &p), 0);
	}
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	uint32_t applied = 0, rejected = 0;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(sl_store_apply_batch(st, buf, len, &applied, &rejected), 0);
		assert_int_equal(applied, 100);
		assert_int_equal(rejected, 0);
		struct sl_store_stats s = stats_of(st);
		assert_int_equal(s.series, 2);
		assert_int_equal(s.points, 100);
	}
	uint64_t id = sl_series_id(KEY_A, strlen(KEY_A));
	struct sl_sample out[64];
	size_t got = 0;
	query_all(st, id, out, 64, &got);
	assert_int_equal(got, 50);
	for (size_t i = 1; i < got; i++)
		assert_true(out[i - 1].ts < out[i].ts);

	/* Overwrite in the middle, at the newest and at the oldest timestamp. */
	int64_t where[] = {951, 999, 901};
	for (size_t k = 0; k < 3; k++) {
		struct sl_point p = mkpt(KEY_A, where[k], SL_VAL_U64, 7000 + k);
		assert_int_equal(sl_store_apply(st, &p), 0);
		assert_int_equal(sl_store_query(st, id, where[k], where[k], out, 64, &got, NULL),
				 0);
		assert_int_equal(got, 1);
		assert_int_equal(out[0].value, 7000 + k);
	}
	assert_int_equal(stats_of(st).points, 100);
	query_all(st, id, out, 64, &got);
	assert_int_equal(got, 50);
	sl_store_destroy(st);
}

static void test_store_range_edges(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(1, 4);
	for (int64_t t = 100; t >= 10; t -= 10) {
		struct sl_point p = mkpt(KEY_A, t, SL_VAL_I64, (uint64_t)t);
		assert_int_equal(sl_store_apply(st, &p), 0);
	}
	uint64_t id = sl_series_id(KEY_A, strlen(KEY_A));
	struct sl_sample out[16];
	size_t got = 99;
	struct {
		int64_t from, to;
		size_t max, n;
		int64_t first;
	} q[] = {
	    {10, 10, 16, 1, 10},
	    {100, 100, 16, 1, 100},
	    {11, 19, 16, 0, 0},
	    {15, 55, 16, 4, 20},
	    {101, 200, 16, 0, 0},
	    {INT64_MIN, 9, 16, 0, 0},
	    {50, 40, 16, 0, 0},
	    {10, 100, 3, 3, 10},
	    {35, 100, 2, 2, 40},
	    {10, 100, 0, 0, 0},
	    {INT64_MIN, INT64_MAX, 16, 10, 10},
	};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		assert_int_equal(
		    sl_store_query(st, id, q[i].from, q[i].to, out, q[i].max, &got, NULL), 0);
		assert_int_equal(got, q[i].n);
		for (size_t k = 0; k < got; k++) {
			assert_int_equal(out[k].ts, q[i].first + (int64_t)k * 10);
			assert_int_equal(out[k].value, (uint64_t)out[k].ts);
		}
	}
	/* Extreme timestamps are ordinary keys. */
	struct sl_point lo = mkpt(KEY_A, INT64_MIN, SL_VAL_I64, 1);
	struct sl_point hi = mkpt(KEY_A, INT64_MAX, SL_VAL_I64, 2);
	assert_int_equal(sl_store_apply(st, &hi), 0);
	assert_int_equal(sl_store_apply(st, &lo), 0);
	query_all(st, id, out, 16, &got);
	assert_int_equal(got, 12);
	assert_int_equal(out[0].ts, INT64_MIN);
	assert_int_equal(out[11].ts, INT64_MAX);
	assert_int_equal(sl_store_query(st, id, INT64_MAX, INT64_MAX, out, 16, &got, NULL), 0);
	assert_int_equal(got, 1);
	assert_int_equal(out[0].value, 2);

	assert_int_equal(sl_store_query(st, id ^ 1, 0, 1, out, 16, &got, NULL), -ENOENT);
	assert_int_equal(got, 0);
	sl_store_destroy(st);
}

static void test_store_type_conflict(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(2, 0);
	struct sl_point f = mkpt(KEY_A, 1, SL_VAL_F64, 5);
	struct sl_point i = mkpt(KEY_A, 2, SL_VAL_I64, 6);
	assert_int_equal(sl_store_apply(st, &f), 0);
	assert_int_equal(sl_store_apply(st, &i), -EINVAL);
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.type_conflicts, 1);
	assert_int_equal(s.points, 1);

	/* A malformed point is refused but is not a type conflict. */
	struct sl_point bad = f;
	bad.series_id ^= 1;
	assert_int_equal(sl_store_apply(st, &bad), -EINVAL);
	assert_int_equal(stats_of(st).type_conflicts, 1);

	_Alignas(8) uint8_t buf[1024];
	struct sl_batch b;
	size_t len = 0;
	struct sl_point pts[] = {mkpt(KEY_A, 3, SL_VAL_F64, 7), mkpt(KEY_A, 4, SL_VAL_BOOL, 1),
				 mkpt(KEY_B, 4, SL_VAL_BOOL, 1)};
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 2), 0);
	for (size_t k = 0; k < 3; k++)
		assert_int_equal(sl_batch_add(&b, &pts[k]), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	uint32_t applied = 0, rejected = 0;
	assert_int_equal(sl_store_apply_batch(st, buf, len, &applied, &rejected), 0);
	assert_int_equal(applied, 2);
	assert_int_equal(rejected, 1);
	s = stats_of(st);
	assert_int_equal(s.type_conflicts, 2);
	assert_int_equal(s.points, 3);
	assert_int_equal(s.series, 2);

	struct sl_sample out[4];
	size_t got = 0;
	uint8_t type = 0;
	assert_int_equal(sl_store_query(st, f.series_id, 0, 10, out, 4, &got, &type), 0);
	assert_int_equal(type, SL_VAL_F64);
	assert_int_equal(got, 2);
	sl_store_destroy(st);
}

static void test_store_batch_all_or_nothing(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(7, 0);
	_Alignas(8) uint8_t buf[512];
	size_t len = build_three(buf, sizeof(buf));
	uint32_t applied = 99, rejected = 99;

	/* The last point is bad: the good ones before it must not be applied either. */
	size_t p2 = SL_BATCH_HDR_BYTES + sl_batch_point_bytes(strlen(KEY_A)) +
		    sl_batch_point_bytes(strlen(KEY_B));
	buf[p2 + 16] = 0;
	recrc(buf, len);
	assert_int_equal(sl_store_apply_batch(st, buf, len, &applied, &rejected), -EBADMSG);
	assert_int_equal(applied, 0);
	assert_int_equal(rejected, 0);
	assert_int_equal(sl_store_apply_batch(st, buf, len - 1, NULL, NULL), -EBADMSG);
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.points, 0);
	assert_int_equal(s.series, 0);

	/* A well-formed batch of another region is refused as a whole. */
	len = build_three(buf, sizeof(buf));
	struct sl_store *other = mkstore(8, 0);
	assert_int_equal(sl_store_apply_batch(other, buf, len, &applied, NULL), -EXDEV);
	assert_int_equal(stats_of(other).points, 0);
	assert_int_equal(sl_store_apply_batch(st, buf, len, &applied, &rejected), 0);
	assert_int_equal(applied, 3);
	assert_int_equal(stats_of(st).points, 3);
	sl_store_destroy(other);
	sl_store_destroy(st);
}

struct walk {
	size_t calls;
	size_t stop_after;
	uint64_t points;
};

static int walk_cb(const struct sl_series_info *info, void *arg)
{
	struct walk *w = arg;
	assert_int_equal(info->series_id, sl_series_id(info->key, info->key_len));
	assert_int_equal(strlen(info->key), info->key_len);
	w->calls++;
	w->points += info->n_points;
	return w->stop_after != 0 && w->calls == w->stop_after ? 42 : 0;
}

static void test_store_many_series(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(1, 0);
	const int n = 20000;
	char key[64];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "m,host=h%d v", i);
		for (int t = 0; t < 3; t++) {
			struct sl_point p = mkpt(key, t, SL_VAL_I64, (uint64_t)(i * 10 + t));
			assert_int_equal(sl_store_apply(st, &p), 0);
		}
	}
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.series, n);
	assert_int_equal(s.points, 3 * n);
	assert_int_equal(s.chunks, n);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "m,host=h%d v", i);
		uint64_t id = sl_series_id(key, strlen(key));
		struct sl_series_info info;
		assert_int_equal(sl_store_series_info(st, id, &info), 0);
		assert_string_equal(info.key, key);
		assert_int_equal(info.n_points, 3);
		struct sl_sample out[4];
		size_t got = 0;
		query_all(st, id, out, 4, &got);
		assert_int_equal(got, 3);
		assert_int_equal(out[2].value, (uint64_t)(i * 10 + 2));
	}
	struct sl_series_info info;
	uint64_t unknown = sl_series_id("nope", 4);
	assert_int_equal(sl_store_series_info(st, unknown, &info), -ENOENT);

	struct walk w = {0};
	assert_int_equal(sl_store_foreach_series(st, walk_cb, &w), 0);
	assert_int_equal(w.calls, n);
	assert_int_equal(w.points, 3 * n);
	w = (struct walk){.stop_after = 10};
	assert_int_equal(sl_store_foreach_series(st, walk_cb, &w), 42);
	assert_int_equal(w.calls, 10);
	sl_store_destroy(st);
}

/* ---- snapshots ---- */

static int snap_fd(void)
{
	int fd = memfd_create("sl_store_test", 0);
	assert_true(fd >= 0);
	return fd;
}

static void fill_store(struct sl_store *st, uint64_t seed)
{
	char key[64];
	for (int s = 0; s < 300; s++) {
		snprintf(key, sizeof(key), "disk,host=h%d,dev=d%d io", s % 17, s);
		uint8_t type = (uint8_t)(SL_VAL_F64 + s % 4);
		int n = 1 + (int)(rng_next(&seed) % 700);
		for (int i = 0; i < n; i++) {
			int64_t ts = (int64_t)(rng_next(&seed) % 5000) - 2500;
			uint64_t v = type == SL_VAL_BOOL ? rng_next(&seed) & 1 : rng_next(&seed);
			struct sl_point p = mkpt(key, ts, type, v);
			assert_int_equal(sl_store_apply(st, &p), 0);
		}
	}
}

struct cmp {
	const struct sl_store *self, *other;
	struct sl_sample *a, *b;
	size_t max;
};

static int cmp_cb(const struct sl_series_info *info, void *arg)
{
	struct cmp *c = arg;
	struct sl_series_info o;
	assert_int_equal(sl_store_series_info(c->other, info->series_id, &o), 0);
	assert_int_equal(o.key_len, info->key_len);
	assert_string_equal(o.key, info->key);
	assert_int_equal(o.type, info->type);
	assert_int_equal(o.n_points, info->n_points);
	assert_int_equal(o.first_ts, info->first_ts);
	assert_int_equal(o.last_ts, info->last_ts);
	size_t na = 0, nb = 0;
	query_all(c->self, info->series_id, c->a, c->max, &na);
	query_all(c->other, info->series_id, c->b, c->max, &nb);
	assert_int_equal(na, info->n_points);
	assert_int_equal(nb, na);
	assert_memory_equal(c->a, c->b, na * sizeof(*c->a));
	return 0;
}

/* Every series of `a` exists in `b` with the same key, type and samples, and vice versa. */
static void assert_stores_equal(const struct sl_store *a, const struct sl_store *b)
{
	struct sl_store_stats sa = stats_of(a), sb = stats_of(b);
	assert_int_equal(sa.series, sb.series);
	assert_int_equal(sa.points, sb.points);
	struct cmp c = {.self = a, .other = b, .max = 8192};
	c.a = calloc(c.max, sizeof(*c.a));
	c.b = calloc(c.max, sizeof(*c.b));
	assert_int_equal(sl_store_foreach_series(a, cmp_cb, &c), 0);
	c.self = b;
	c.other = a;
	assert_int_equal(sl_store_foreach_series(b, cmp_cb, &c), 0);
	free(c.a);
	free(c.b);
}

static void assert_empty(const struct sl_store *st)
{
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.series, 0);
	assert_int_equal(s.points, 0);
	assert_int_equal(s.chunks, 0);
}

static void test_snapshot_roundtrip(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(4, 64);
	struct sl_store *b = mkstore(4, 0); /* different chunking reads the same image */
	fill_store(a, 11);
	int fd = snap_fd();
	assert_int_equal(sl_store_snapshot_write(a, fd, 123456789), 0);
	assert_int_equal(write(fd, "TAIL", 4), 4);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	uint64_t applied = 0;
	assert_int_equal(sl_store_snapshot_read(b, fd, &applied), 0);
	assert_int_equal(applied, 123456789);
	assert_stores_equal(a, b);
	/* The read hands back what it read ahead: the caller's next bytes follow. */
	char tail[4];
	assert_int_equal(read(fd, tail, 4), 4);
	assert_memory_equal(tail, "TAIL", 4);

	/* Only an empty store of the same region takes an image. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read(b, fd, &applied), -EINVAL);
	struct sl_store *c = mkstore(5, 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read(c, fd, &applied), -EINVAL);
	assert_empty(c);
	close(fd);

	/* An empty store round-trips too. */
	struct sl_store *e = mkstore(5, 0);
	fd = snap_fd();
	assert_int_equal(sl_store_snapshot_write(e, fd, 1), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read(c, fd, &applied), 0);
	assert_int_equal(applied, 1);
	assert_empty(c);
	close(fd);
	sl_store_destroy(e);
	sl_store_destroy(c);
	sl_store_destroy(b);
	sl_store_destroy(a);
}

/* Writes `len` bytes of `img` to a fresh memfd and tries to load it into st. */
static int load_image(struct sl_store *st, const uint8_t *img, size_t len)
{
	int fd = snap_fd();
	if (len > 0)
		assert_int_equal(write(fd, img, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	uint64_t applied = 0;
	int rc = sl_store_snapshot_read(st, fd, &applied);
	close(fd);
	return rc;
}

static size_t image_of(const struct sl_store *st, uint8_t **img)
{
	int fd = snap_fd();
	assert_int_equal(sl_store_snapshot_write(st, fd, 77), 0);
	off_t len = lseek(fd, 0, SEEK_END);
	assert_true(len > 0);
	*img = malloc((size_t)len);
	assert_int_equal(pread(fd, *img, (size_t)len, 0), len);
	close(fd);
	return (size_t)len;
}

static void test_snapshot_corrupt(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(1, 0);
	struct sl_point pts[] = {mkpt(KEY_A, 5, SL_VAL_F64, 1), mkpt(KEY_A, 3, SL_VAL_F64, 2),
				 mkpt(KEY_B, 9, SL_VAL_BOOL, 1), mkpt(KEY_B, 10, SL_VAL_BOOL, 0)};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(sl_store_apply(a, &pts[i]), 0);
	uint8_t *img = NULL;
	size_t len = image_of(a, &img);
	uint8_t *w = malloc(len);
	struct sl_store *b = mkstore(1, 0);
	assert_int_equal(load_image(b, img, len), 0);
	assert_stores_equal(a, b);
	sl_store_destroy(b);

	b = mkstore(1, 0);
	for (size_t l = 0; l < len; l++) {
		assert_int_equal(load_image(b, img, l), -EBADMSG);
		assert_empty(b);
	}
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(w, img, len);
			w[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(load_image(b, w, len), -EBADMSG);
			assert_empty(b);
		}
	}
	/* Garbage of any kind. */
	uint64_t seed = 5;
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rng_next(&seed);
	assert_int_equal(load_image(b, junk, sizeof(junk)), -EBADMSG);
	assert_empty(b);
	/* The store is still usable after failed loads. */
	assert_int_equal(load_image(b, img, len), 0);
	assert_stores_equal(a, b);
	sl_store_destroy(b);
	free(w);
	free(img);

	/* A large image damaged late: everything loaded before the damage is dropped. */
	struct sl_store *big = mkstore(1, 32);
	fill_store(big, 3);
	len = image_of(big, &img);
	b = mkstore(1, 0);
	img[len - 100] ^= 0x10;
	assert_int_equal(load_image(b, img, len), -EBADMSG);
	assert_empty(b);
	img[len - 100] ^= 0x10;
	assert_int_equal(load_image(b, img, len - 1), -EBADMSG);
	assert_empty(b);
	assert_int_equal(load_image(b, img, len), 0);
	assert_stores_equal(big, b);
	free(img);
	sl_store_destroy(b);
	sl_store_destroy(big);
	sl_store_destroy(a);
}

/* ---- jemalloc arenas ---- */

static unsigned arena_of(const void *p)
{
	unsigned arena = 0;
	size_t sz = sizeof(arena);
	assert_int_equal(mallctl("arenas.lookup", &arena, &sz, (void *)&p, sizeof(p)), 0);
	return arena;
}

/* Bytes allocated from `arena`, or SIZE_MAX when jemalloc was built without stats. */
static size_t arena_allocated(unsigned arena)
{
	bool stats = false;
	size_t sz = sizeof(stats);
	if (mallctl("config.stats", &stats, &sz, NULL, 0) != 0 || !stats)
		return SIZE_MAX;
	uint64_t epoch = 1;
	sz = sizeof(epoch);
	assert_int_equal(mallctl("epoch", &epoch, &sz, &epoch, sz), 0);
	size_t total = 0;
	const char *kinds[] = {"small", "large"};
	for (int k = 0; k < 2; k++) {
		char name[96];
		size_t v = 0;
		sz = sizeof(v);
		snprintf(name, sizeof(name), "stats.arenas.%u.%s.allocated", arena, kinds[k]);
		assert_int_equal(mallctl(name, &v, &sz, NULL, 0), 0);
		total += v;
	}
	return total;
}

static void fill_small(struct sl_store *st)
{
	char key[64];
	for (int s = 0; s < 50; s++) {
		snprintf(key, sizeof(key), "net,if=eth%d rx", s);
		for (int i = 0; i < 100; i++) {
			struct sl_point p = mkpt(key, 100 - i, SL_VAL_U64, (uint64_t)i);
			assert_int_equal(sl_store_apply(st, &p), 0);
		}
	}
}

static void test_store_arena(void **state)
{
	(void)state;
	unsigned arena = 0;
	size_t sz = sizeof(arena);
	assert_int_equal(mallctl("arenas.create", &arena, &sz, NULL, 0), 0);

	struct sl_store_config cfg = {.region_id = 1, .arena = arena, .use_arena = true};
	struct sl_store *st = NULL;
	assert_int_equal(sl_store_create(&cfg, &st), 0);
	fill_small(st);
	assert_int_equal(stats_of(st).points, 5000);
	const char *key = "net,if=eth3 rx";
	struct sl_series_info info;
	assert_int_equal(sl_store_series_info(st, sl_series_id(key, strlen(key)), &info), 0);
	assert_int_equal(arena_of(info.key), arena);
	size_t used = arena_allocated(arena);
	if (used != SIZE_MAX)
		assert_true(used >= stats_of(st).bytes / 2);

	/* Without an arena the store uses the thread's default, not ours. */
	struct sl_store *plain = mkstore(1, 0);
	fill_small(plain);
	assert_int_equal(sl_store_series_info(plain, sl_series_id(key, strlen(key)), &info), 0);
	assert_int_not_equal(arena_of(info.key), arena);
	assert_stores_equal(st, plain);

	/* The snapshot path allocates from the arena too and leaves nothing behind. */
	int fd = snap_fd();
	assert_int_equal(sl_store_snapshot_write(st, fd, 9), 0);
	close(fd);
	sl_store_destroy(plain);
	sl_store_destroy(st);
	if (used != SIZE_MAX)
		assert_int_equal(arena_allocated(arena), 0);

	unsigned narenas = 0;
	sz = sizeof(narenas);
	assert_int_equal(mallctl("arenas.narenas", &narenas, &sz, NULL, 0), 0);
	cfg.arena = narenas + 10;
	assert_int_equal(sl_store_create(&cfg, &st), -EINVAL);

	char name[64];
	snprintf(name, sizeof(name), "arena.%u.destroy", arena);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_roundtrip),
	    cmocka_unit_test(test_batch_enospc),
	    cmocka_unit_test(test_batch_add_rejects_bad_points),
	    cmocka_unit_test(test_batch_malformed),
	    cmocka_unit_test(test_store_config),
	    cmocka_unit_test(test_store_in_order),
	    cmocka_unit_test(test_store_shuffled),
	    cmocka_unit_test(test_store_duplicates_overwrite),
	    cmocka_unit_test(test_store_range_edges),
	    cmocka_unit_test(test_store_type_conflict),
	    cmocka_unit_test(test_store_batch_all_or_nothing),
	    cmocka_unit_test(test_store_many_series),
	    cmocka_unit_test(test_snapshot_roundtrip),
	    cmocka_unit_test(test_snapshot_corrupt),
	    cmocka_unit_test(test_store_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_store.c - cmocka tests of the batch codec (round trip and every malformed input the
 * decoder must refuse, v1 compatibility) and of the per-region store (ordering,
 * last-writer-wins, range queries, type conflicts, string values against a reference
 * model, map growth, snapshots old and new, jemalloc arena placement). */
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
#include "store_test_util.h"

#define KEY_A "cpu,host=a usage"
#define KEY_B "mem,host=b used"

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
	assert_int_equal(a->str_len, b->str_len);
	if (a->str_len > 0)
		assert_memory_equal(a->str, b->str, a->str_len);
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

/* Encodes pts as one batch of `region`, applies it to st and checks the counters. */
static void apply_as_batch(struct sl_store *st, uint32_t region, const struct sl_point *pts,
			   size_t n, uint32_t want_applied, uint32_t want_rejected)
{
	uint32_t applied = 0, rejected = 0;
	_Alignas(8) uint8_t buf[1024];
	struct sl_batch b;
	size_t len = 0;
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), region), 0);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(sl_batch_add(&b, &pts[k]), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_int_equal(sl_store_apply_batch(st, buf, len, &applied, &rejected), 0);
	assert_int_equal(applied, want_applied);
	assert_int_equal(rejected, want_rejected);
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
	p.type = SL_VAL_STR + 1;
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
	    {0, 1, 3},				       /* unknown version */
	    {0, 1, 0},				       /* unknown version */
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

	struct sl_point pts[] = {mkpt(KEY_A, 3, SL_VAL_F64, 7), mkpt(KEY_A, 4, SL_VAL_BOOL, 1),
				 mkpt(KEY_B, 4, SL_VAL_BOOL, 1)};
	apply_as_batch(st, 2, pts, SL_ARRAY_LEN(pts), 2, 1);
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
		uint8_t type = (uint8_t)(SL_VAL_F64 + s % 5);
		int n = 1 + (int)(rng_next(&seed) % 700);
		for (int i = 0; i < n; i++) {
			int64_t ts = (int64_t)(rng_next(&seed) % 5000) - 2500;
			uint64_t v = type == SL_VAL_BOOL ? rng_next(&seed) & 1 : rng_next(&seed);
			struct sl_point p = mkpt(key, ts, type, type == SL_VAL_STR ? 0 : v);
			char str[40];
			if (type == SL_VAL_STR) {
				p.str_len = (uint32_t)(v % sizeof(str)); /* 0 included */
				memset(str, 'a' + (int)(v % 26), sizeof(str));
				p.str = str;
			}
			assert_int_equal(sl_store_apply(st, &p), 0);
		}
	}
}

struct cmp {
	const struct sl_store *self, *other;
	struct sl_sample_ex *a, *b;
	char *sa, *sb;
	size_t max, str_cap;
};

/* Every sample of a series, strings included; the buffers must be large enough. */
static size_t query_all_ex(const struct sl_store *st, uint64_t id, struct sl_sample_ex *out,
			   size_t max, char *str_buf, size_t str_cap)
{
	size_t n = 0, used = 0;
	assert_int_equal(sl_store_query_ex(st, id, INT64_MIN, INT64_MAX, out, max, str_buf, str_cap,
					   &n, &used, NULL),
			 0);
	assert_true(n < max);
	return n;
}

static void assert_samples_equal(const struct sl_sample_ex *a, const char *sa,
				 const struct sl_sample_ex *b, const char *sb, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a[i].ts, b[i].ts);
		assert_int_equal(a[i].value, b[i].value);
		assert_int_equal(a[i].str_len, b[i].str_len);
		assert_memory_equal(sa + a[i].str_off, sb + b[i].str_off, a[i].str_len);
	}
}

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
	size_t na = query_all_ex(c->self, info->series_id, c->a, c->max, c->sa, c->str_cap);
	size_t nb = query_all_ex(c->other, info->series_id, c->b, c->max, c->sb, c->str_cap);
	assert_int_equal(na, info->n_points);
	assert_int_equal(nb, na);
	assert_samples_equal(c->a, c->sa, c->b, c->sb, na);
	return 0;
}

/* Every series of `a` exists in `b` with the same key, type and samples, and vice versa. */
static void assert_stores_equal(const struct sl_store *a, const struct sl_store *b)
{
	struct sl_store_stats sa = stats_of(a), sb = stats_of(b);
	assert_int_equal(sa.series, sb.series);
	assert_int_equal(sa.points, sb.points);
	struct cmp c = {.self = a, .other = b, .max = 8192, .str_cap = 1u << 20};
	c.a = calloc(c.max, sizeof(*c.a));
	c.b = calloc(c.max, sizeof(*c.b));
	c.sa = malloc(c.str_cap);
	c.sb = malloc(c.str_cap);
	assert_int_equal(sl_store_foreach_series(a, cmp_cb, &c), 0);
	c.self = b;
	c.other = a;
	assert_int_equal(sl_store_foreach_series(b, cmp_cb, &c), 0);
	free(c.a);
	free(c.b);
	free(c.sa);
	free(c.sb);
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

struct range_chk {
	const struct sl_store *whole;
	uint64_t lo, hi;
	uint64_t series, points;
	uint64_t first; /* the lowest id seen */
};

/* Every series of a half is in its range and is the whole store's series, point for
 * point (assert_stores_equal's comparison, one way). */
static int range_cb(const struct sl_series_info *info, void *arg)
{
	struct range_chk *c = arg;
	assert_true(info->series_id >= c->lo && info->series_id <= c->hi);
	struct sl_series_info o;
	assert_int_equal(sl_store_series_info(c->whole, info->series_id, &o), 0);
	assert_int_equal(o.n_points, info->n_points);
	assert_int_equal(o.first_ts, info->first_ts);
	assert_int_equal(o.last_ts, info->last_ts);
	assert_string_equal(o.key, info->key);
	if (c->series == 0 || info->series_id < c->first)
		c->first = info->series_id;
	c->series++;
	c->points += info->n_points;
	return 0;
}

/* A region split: the image of the whole region read twice, each time keeping one side of
 * the split point, gives two stores (of other region ids) that hold every series of the
 * whole exactly once, each on its own side. */
static void test_snapshot_read_range(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(4, 64);
	fill_store(a, 29);
	int fd = snap_fd();
	assert_int_equal(sl_store_snapshot_write(a, fd, 555), 0);
	struct sl_store_stats sa = stats_of(a);
	uint64_t at = 1ull << 63; /* the ids hash all over: both halves get some */
	struct sl_store *lo = mkstore(4, 0), *hi = mkstore(9, 0);
	uint64_t idx = 0;
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_range(lo, fd, 0, at - 1, &idx), 0);
	assert_int_equal(idx, 555);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_range(hi, fd, at, UINT64_MAX, &idx), 0);
	struct range_chk cl = {.whole = a, .lo = 0, .hi = at - 1};
	struct range_chk ch = {.whole = a, .lo = at, .hi = UINT64_MAX};
	assert_int_equal(sl_store_foreach_series(lo, range_cb, &cl), 0);
	assert_int_equal(sl_store_foreach_series(hi, range_cb, &ch), 0);
	assert_true(cl.series > 0 && ch.series > 0);
	assert_int_equal(cl.series + ch.series, sa.series);
	assert_int_equal(cl.points + ch.points, sa.points);
	/* a series whose id is the split point goes to the upper half, not the lower */
	struct sl_series_info on;
	assert_int_equal(sl_store_series_info(hi, ch.first, &on), 0);
	struct sl_store *lo2 = mkstore(4, 0), *hi2 = mkstore(9, 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_range(lo2, fd, 0, ch.first - 1, &idx), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_range(hi2, fd, ch.first, UINT64_MAX, &idx), 0);
	assert_int_equal(sl_store_series_info(lo2, ch.first, &on), -ENOENT);
	assert_int_equal(sl_store_series_info(hi2, ch.first, &on), 0);
	assert_int_equal(stats_of(lo2).series + stats_of(hi2).series, sa.series);
	/* a merge: the upper half's image read into the lower half's store gives the whole
	 * back (every series and point, the one at the cut too); read again, a series is
	 * there already: refused */
	int fd2 = snap_fd();
	assert_int_equal(sl_store_snapshot_write(hi2, fd2, 777), 0);
	assert_int_equal(lseek(fd2, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_more(lo2, fd2, ch.first, UINT64_MAX, &idx), 0);
	assert_int_equal(idx, 777);
	assert_int_equal(stats_of(lo2).series, sa.series);
	assert_int_equal(stats_of(lo2).points, sa.points);
	assert_int_equal(sl_store_series_info(lo2, ch.first, &on), 0);
	struct range_chk cw = {.whole = a, .lo = 0, .hi = UINT64_MAX};
	assert_int_equal(sl_store_foreach_series(lo2, range_cb, &cw), 0);
	assert_int_equal(cw.points, sa.points);
	assert_int_equal(lseek(fd2, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_more(lo2, fd2, 0, UINT64_MAX, &idx), -EBADMSG);
	assert_int_equal(sl_store_snapshot_read_more(lo2, fd2, 2, 1, &idx), -EINVAL);
	close(fd2);
	sl_store_destroy(hi2);
	/* only into an empty store, and a range must be one */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_range(lo, fd, 0, 1, &idx), -EINVAL);
	struct sl_store *e = mkstore(4, 0);
	assert_int_equal(sl_store_snapshot_read_range(e, fd, 2, 1, &idx), -EINVAL);
	/* a damaged record is refused even on the side that is read past */
	uint8_t b = 0;
	off_t mid = lseek(fd, 0, SEEK_END) / 2;
	assert_int_equal(pread(fd, &b, 1, mid), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, mid), 1);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_range(e, fd, 0, 0, &idx), -EBADMSG);
	assert_empty(e);
	close(fd);
	sl_store_destroy(e);
	sl_store_destroy(lo2);
	sl_store_destroy(lo);
	sl_store_destroy(hi);
	sl_store_destroy(a);
}

/* Writes `len` bytes of `img` to a fresh memfd and tries to load it into st. The reader
 * of images in memory (a peer's snapshot) must give the same answer on the same bytes. */
static int load_image(struct sl_store *st, const uint8_t *img, size_t len)
{
	struct sl_store *m = mkstore(sl_store_region(st), 0);
	uint64_t applied = 0;
	int rc_mem = sl_store_snapshot_read_mem(m, img, len, &applied);
	if (rc_mem != 0)
		assert_empty(m);
	sl_store_destroy(m);
	int fd = snap_fd();
	if (len > 0)
		assert_int_equal(write(fd, img, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	int rc = sl_store_snapshot_read(st, fd, &applied);
	close(fd);
	assert_int_equal(rc_mem, rc);
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

/* ---- fuzzy (stepped) snapshots ---- */

/* A whole image from a cursor, stepping `budget` bytes at a time; between two steps
 * `between` (may be NULL) changes the store, as the worker's applies do. */
static size_t fuzzy_image(struct sl_store_snap_cursor *cur, size_t budget,
			  void (*between)(void *arg, int step), void *arg, uint8_t **img)
{
	size_t cap = 1u << 20, len = SL_STORE_SNAP_HDR_BYTES;
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	int rc = 0;
	for (int step = 0; rc != 1; step++) {
		assert_true(step < 1000000);
		if (cap - len < sl_store_snap_next_bytes(cur)) {
			cap = 2 * (len + sl_store_snap_next_bytes(cur));
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		rc = sl_store_snap_step(cur, buf, cap, budget, &len);
		assert_true(rc == 0 || rc == 1);
		if (between != NULL)
			between(arg, step);
	}
	sl_store_snap_header(cur, buf);
	*img = buf;
	return len;
}

struct grow_arg {
	struct sl_store *st;
	int added;
};

/* After the first step: enough new series that the table rehashes several times. */
static void grow_between(void *arg, int step)
{
	struct grow_arg *g = arg;
	char key[64];
	for (int i = 0; step == 0 && i < 3000; i++, g->added++) {
		snprintf(key, sizeof(key), "late,n=%d v", i);
		struct sl_point p = mkpt(key, i, SL_VAL_I64, (uint64_t)i);
		assert_int_equal(sl_store_apply(g->st, &p), 0);
	}
}

/* The table grows between two steps of a walk: every series that existed when the walk
 * began is in the image, whole, and the image reads back. */
static void test_snapshot_fuzzy_growth(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(3, 16);
	struct sl_store *ref = mkstore(3, 0);
	char key[64];
	for (int s = 0; s < 40; s++) {
		snprintf(key, sizeof(key), "early,n=%d v", s);
		for (int i = 0; i < 50; i++) {
			struct sl_point p = mkpt(key, i * 3 - s, SL_VAL_F64, (uint64_t)(s * 1000 + i));
			assert_int_equal(sl_store_apply(a, &p), 0);
			assert_int_equal(sl_store_apply(ref, &p), 0);
		}
	}
	struct sl_store_snap_cursor cur;
	sl_store_snap_begin(a, 42, &cur);
	struct grow_arg g = {.st = a};
	uint8_t *img = NULL;
	size_t len = fuzzy_image(&cur, 1 /* one series per step */, grow_between, &g, &img);
	assert_int_equal(g.added, 3000);
	assert_int_equal(stats_of(a).series, 3040);
	assert_int_equal(cur.series, 40); /* the walk ended at the newest series of its start */
	struct sl_store *b = mkstore(3, 0);
	uint64_t applied = 0;
	assert_int_equal(sl_store_snapshot_read_mem(b, img, len, &applied), 0);
	assert_int_equal(applied, 42);
	assert_stores_equal(b, ref);
	/* a cut or a longer buffer is not an image */
	struct sl_store *c = mkstore(3, 0);
	assert_int_equal(sl_store_snapshot_read_mem(c, img, len - 1, &applied), -EBADMSG);
	assert_empty(c);
	img = realloc(img, len + 1);
	img[len] = 0;
	assert_int_equal(sl_store_snapshot_read_mem(c, img, len + 1, &applied), -EBADMSG);
	assert_empty(c);
	free(img);
	sl_store_destroy(c);
	sl_store_destroy(b);
	sl_store_destroy(ref);
	sl_store_destroy(a);
}

#define FZ_ENTRIES 400
#define FZ_POINTS 24

/* A reproducible log: entry e's points, overwrites, new series, strings and type
 * conflicts (a series keeps its first point's type) included. */
static struct sl_point fuzzy_point(int e, int k, char *key, size_t key_cap, char *str)
{
	uint64_t seed = (uint64_t)e * 7919u + (uint64_t)k;
	uint64_t r = rng_next(&seed);
	int series = (int)(r % (uint64_t)(20 + e)); /* new series keep appearing */
	snprintf(key, key_cap, "fz,s=%d v", series);
	uint8_t type = (uint8_t)(SL_VAL_F64 + (series + (r >> 20) % 7 == 0) % 5);
	int64_t ts = (int64_t)((r >> 8) % 300);
	struct sl_point p = mkpt(key, ts, type, type == SL_VAL_BOOL ? (r >> 40) & 1 : r >> 3);
	if (type == SL_VAL_STR) {
		p.value = 0;
		p.str_len = (uint32_t)((r >> 32) % 24);
		memset(str, 'a' + (int)(e % 26), 24);
		p.str = str;
	}
	return p;
}

static void fuzzy_apply(struct sl_store *st, int e)
{
	char key[64], str[24];
	for (int k = 0; k < FZ_POINTS; k++) {
		struct sl_point p = fuzzy_point(e, k, key, sizeof(key), str);
		int rc = sl_store_apply(st, &p);
		assert_true(rc == 0 || rc == -EINVAL); /* -EINVAL: a type conflict */
	}
}

struct replay_arg {
	struct sl_store *st;
	int next; /* next entry to apply */
};

static void apply_between(void *arg, int step)
{
	struct replay_arg *r = arg;
	(void)step;
	for (int i = 0; i < 3 && r->next < FZ_ENTRIES; i++)
		fuzzy_apply(r->st, r->next++);
}

/* Entries applied between the steps of a walk that began at applied index A: the image,
 * plus every entry after A applied again, is exactly the store the entries made. */
static void test_snapshot_fuzzy_replay(void **state)
{
	(void)state;
	const int A = 100;
	struct sl_store *a = mkstore(9, 8);
	for (int e = 0; e < A; e++)
		fuzzy_apply(a, e);
	struct sl_store_snap_cursor cur;
	sl_store_snap_begin(a, (uint64_t)A, &cur);
	struct replay_arg ra = {.st = a, .next = A};
	uint8_t *img = NULL;
	size_t len = fuzzy_image(&cur, 200, apply_between, &ra, &img);
	assert_true(ra.next > A + 10); /* the store did change during the walk */
	while (ra.next < FZ_ENTRIES)
		fuzzy_apply(a, ra.next++);
	struct sl_store *b = mkstore(9, 0);
	uint64_t applied = 0;
	assert_int_equal(sl_store_snapshot_read_mem(b, img, len, &applied), 0);
	assert_int_equal(applied, (uint64_t)A);
	for (int e = (int)applied; e < FZ_ENTRIES; e++)
		fuzzy_apply(b, e);
	assert_stores_equal(a, b);
	assert_true(stats_of(a).type_conflicts > 0 && stats_of(a).series > 100);
	free(img);
	sl_store_destroy(b);
	sl_store_destroy(a);
}

/* A few points of every kind: a small image whose every byte a test can damage. */
static void fill_few(struct sl_store *st)
{
	struct sl_point pts[] = {
	    mkpt(KEY_A, 5, SL_VAL_F64, 1),	mkpt(KEY_A, 3, SL_VAL_F64, 2),
	    mkpt(KEY_B, 9, SL_VAL_BOOL, 1),	mkpt(KEY_B, 10, SL_VAL_BOOL, 0),
	    mkstr("s v", 2, "h\xc3\xa9llo", 6), mkstr("s v", 1, "", 0)};
	for (size_t i = 0; i < SL_ARRAY_LEN(pts); i++)
		assert_int_equal(sl_store_apply(st, &pts[i]), 0);
}

static void test_snapshot_corrupt(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(1, 0);
	fill_few(a);
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

/* ---- delta (incremental) images ---- */

/* A walk since `since` (0: full) at applied index idx, stepping `budget` bytes at a time
 * with `between` run after every step; the cursor is left for its gen. */
static size_t since_image(struct sl_store *st, uint64_t idx, uint32_t since, size_t budget,
			  void (*between)(void *arg, int step), void *arg,
			  struct sl_store_snap_cursor *cur, uint8_t **img)
{
	sl_store_snap_begin_since(st, idx, since, cur);
	assert_int_equal(cur->since, since);
	assert_int_equal(cur->flags, since == 0 ? 0 : SL_STORE_SNAP_F_DELTA);
	return fuzzy_image(cur, budget, between, arg, img);
}

struct chain_arg {
	struct sl_store *st;
	int next; /* next entry to apply */
	int left; /* entries still to apply during this walk */
};

/* One entry after each of the walk's first steps: the store changes during the walk, and
 * a walk's length does not feed the number of series the next walk visits. */
static void apply_between_any(void *arg, int step)
{
	struct chain_arg *r = arg;
	(void)step;
	if (r->left > 0) {
		fuzzy_apply(r->st, r->next++);
		r->left--;
	}
}

#define DC_IMAGES 6

/* Loads the chain img[0] (full) + img[1..n) (deltas) into a new store of region 9. */
static struct sl_store *load_chain(uint8_t *const *img, const size_t *len, const uint64_t *idx,
				   int n)
{
	struct sl_store *b = mkstore(9, 0);
	uint64_t applied = 0;
	assert_int_equal(sl_store_snapshot_read_mem(b, img[0], len[0], &applied), 0);
	assert_int_equal(applied, idx[0]);
	for (int k = 1; k < n; k++) {
		/* every other one through a file, as recovery reads them */
		if (k % 2 == 0) {
			assert_int_equal(sl_store_snapshot_apply_delta_mem(b, img[k], len[k], &applied), 0);
		} else {
			int fd = snap_fd();
			assert_int_equal(write(fd, img[k], len[k]), (ssize_t)len[k]);
			assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
			assert_int_equal(sl_store_snapshot_apply_delta(b, fd, &applied), 0);
			close(fd);
		}
		assert_int_equal(applied, idx[k]);
	}
	return b;
}

/* A chain of fuzzy images (a base, then deltas each since the previous one's walk), with
 * entries applied between every two steps and between the walks, and a walk abandoned
 * half way: base + deltas + the entries after the last image's index re-applied is,
 * point by point, the store the entries made. Then the recovered store is marked clean
 * and a delta of it, on top of the same chain, is again that store. */
static void delta_chain_case(uint32_t chunk_points, size_t budget)
{
	struct sl_store *a = mkstore(9, chunk_points);
	int next = 0;
	while (next < 100)
		fuzzy_apply(a, next++);
	uint8_t *img[DC_IMAGES + 1];
	size_t len[DC_IMAGES + 1];
	uint64_t idx[DC_IMAGES + 1];
	uint32_t since = 0;
	for (int k = 0; k < DC_IMAGES; k++) {
		struct sl_store_snap_cursor cur;
		struct chain_arg ra = {.st = a, .next = next, .left = 60};
		idx[k] = (uint64_t)next; /* the applied index at the walk's beginning */
		len[k] = since_image(a, idx[k], since, budget, apply_between_any, &ra, &cur, &img[k]);
		assert_true(ra.next > next + 3); /* the store changed during the walk */
		next = ra.next;
		since = cur.gen + 1; /* the image is "durable" */
		for (int i = 0; i < 40; i++)
			fuzzy_apply(a, next++);
		if (k == 2) {
			/* a walk that fails half way: it moves the store's gen, not `since` */
			struct sl_store_snap_cursor lost;
			uint8_t buf[4096];
			size_t l = 0;
			sl_store_snap_begin_since(a, (uint64_t)next, since, &lost);
			assert_true(sl_store_snap_step(&lost, buf, sizeof(buf), 1, &l) >= 0);
			for (int i = 0; i < 40; i++)
				fuzzy_apply(a, next++);
		}
	}
	for (int i = 0; i < 100; i++)
		fuzzy_apply(a, next++);
	assert_true(stats_of(a).type_conflicts > 0 && stats_of(a).series > 300);

	struct sl_store *b = load_chain(img, len, idx, DC_IMAGES);
	uint32_t clean = sl_store_mark_clean(b);
	for (int e = (int)idx[DC_IMAGES - 1]; e < next; e++)
		fuzzy_apply(b, e);
	assert_stores_equal(a, b);

	/* recovery's store takes the next delta since its clean mark: the chain goes on */
	struct sl_store_snap_cursor cur;
	idx[DC_IMAGES] = (uint64_t)next;
	len[DC_IMAGES] = since_image(b, idx[DC_IMAGES], clean, 1 << 20, NULL, NULL, &cur,
				     &img[DC_IMAGES]);
	struct sl_store *c = load_chain(img, len, idx, DC_IMAGES + 1);
	assert_stores_equal(a, c);
	for (int k = 0; k <= DC_IMAGES; k++)
		free(img[k]);
	sl_store_destroy(c);
	sl_store_destroy(b);
	sl_store_destroy(a);
}

static void test_snapshot_delta_chain(void **state)
{
	(void)state;
	delta_chain_case(8, 200);
	delta_chain_case(64, 2000);
	delta_chain_case(2, 64);
}

/* A delta after a few writes holds only the chunks they changed; one since 0 is the full
 * image byte for byte; one with nothing changed is a header. */
static void test_snapshot_delta_small(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(9, 64);
	char key[64];
	for (int s = 0; s < 100; s++) {
		snprintf(key, sizeof(key), "big,n=%d v", s);
		for (int i = 0; i < 1000; i++) {
			struct sl_point p = mkpt(key, i, SL_VAL_I64, (uint64_t)(s * 7 + i));
			assert_int_equal(sl_store_apply(a, &p), 0);
		}
	}
	uint8_t *full = NULL, *base = NULL, *delta = NULL, *none = NULL;
	size_t full_len = image_of(a, &full); /* labelled 77 */
	struct sl_store_snap_cursor cur;
	size_t base_len = since_image(a, 77, 0, 1 << 16, NULL, NULL, &cur, &base);
	assert_int_equal(base_len, full_len);
	assert_memory_equal(base, full, full_len);
	uint32_t since = cur.gen + 1;

	/* an overwrite in the middle of one series, a point appended to another, a point
	 * inserted into a full chunk of a third (a split), and a new series */
	struct sl_point w[] = {mkpt("big,n=3 v", 500, SL_VAL_I64, 1),
			       mkpt("big,n=40 v", 5000, SL_VAL_I64, 2),
			       mkpt("big,n=41 v", -1, SL_VAL_I64, 3),
			       mkpt("new,n=1 v", 1, SL_VAL_I64, 4)};
	for (size_t i = 0; i < SL_ARRAY_LEN(w); i++)
		assert_int_equal(sl_store_apply(a, &w[i]), 0);
	size_t delta_len = since_image(a, 90, since, 1 << 16, NULL, NULL, &cur, &delta);
	assert_int_equal(cur.series, 4);
	/* at most 2 chunks of 64 points per changed series: far below the 100k points */
	assert_true(delta_len < full_len / 50);
	since = cur.gen + 1;
	size_t none_len = since_image(a, 91, since, 1 << 16, NULL, NULL, &cur, &none);
	assert_int_equal(cur.series, 0);
	assert_int_equal(none_len, SL_STORE_SNAP_HDR_BYTES);

	struct sl_store *b = mkstore(9, 0);
	uint64_t applied = 0;
	assert_int_equal(sl_store_snapshot_read_mem(b, base, base_len, &applied), 0);
	assert_int_equal(sl_store_snapshot_apply_delta_mem(b, delta, delta_len, &applied), 0);
	assert_int_equal(applied, 90);
	assert_int_equal(sl_store_snapshot_apply_delta_mem(b, none, none_len, &applied), 0);
	assert_int_equal(applied, 91);
	assert_stores_equal(a, b);
	free(full);
	free(base);
	free(delta);
	free(none);
	sl_store_destroy(b);
	sl_store_destroy(a);
}

/* The generation wraps: the walk that would pass 2^32 - 1 restarts the stamps and is a
 * full image (flags 0), the chain goes on from it, and a clean mark there works too. */
static void test_snapshot_delta_gen_wrap(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(9, 8);
	int next = 0;
	while (next < 60)
		fuzzy_apply(a, next++);
	sl_store_test_set_gen(a, UINT32_MAX - 1);
	uint8_t *img[3];
	size_t len[3];
	uint64_t idx[3];
	struct sl_store_snap_cursor cur;
	uint32_t since = 0;
	for (int k = 0; k < 3; k++) {
		struct chain_arg ra = {.st = a, .next = next, .left = 20};
		idx[k] = (uint64_t)next;
		sl_store_snap_begin_since(a, idx[k], since, &cur);
		/* k 0: full by request; k 1: since 2^32 - 1, at the wrap: full; k 2: a delta */
		assert_int_equal(cur.flags, k == 2 ? SL_STORE_SNAP_F_DELTA : 0);
		assert_int_equal(cur.since, k == 2 ? since : 0);
		len[k] = fuzzy_image(&cur, 100, apply_between_any, &ra, &img[k]);
		next = ra.next;
		since = cur.gen + 1;
		for (int i = 0; i < 30; i++)
			fuzzy_apply(a, next++);
	}
	/* the chain from the image at the wrap: it is a full one */
	struct sl_store *b = load_chain(img + 1, len + 1, idx + 1, 2);
	sl_store_test_set_gen(b, UINT32_MAX);
	assert_int_equal(sl_store_mark_clean(b), 1);
	for (int e = (int)idx[2]; e < next; e++)
		fuzzy_apply(b, e);
	assert_stores_equal(a, b);
	for (int k = 0; k < 3; k++)
		free(img[k]);
	sl_store_destroy(b);
	sl_store_destroy(a);
}

/* The base of test_snapshot_delta_corrupt, loaded into a new store. */
static struct sl_store *corrupt_base(const uint8_t *base, size_t base_len)
{
	struct sl_store *b = mkstore(1, 0);
	assert_int_equal(sl_store_snapshot_read_mem(b, base, base_len, NULL), 0);
	return b;
}

/* Applies a damaged delta on top of the base, through memory and through a file: both
 * give the same answer. */
static int apply_damaged(const uint8_t *base, size_t base_len, const uint8_t *d, size_t len)
{
	struct sl_store *b = corrupt_base(base, base_len);
	int rc_mem = sl_store_snapshot_apply_delta_mem(b, d, len, NULL);
	sl_store_destroy(b);
	b = corrupt_base(base, base_len);
	int fd = snap_fd();
	if (len > 0)
		assert_int_equal(write(fd, d, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	int rc = sl_store_snapshot_apply_delta(b, fd, NULL);
	close(fd);
	sl_store_destroy(b);
	assert_int_equal(rc_mem, rc);
	return rc_mem;
}

/* Every damage a delta file can have is refused: a cut, any flipped bit, a full image
 * where a delta belongs and the reverse, a delta of another region, a series whose type
 * or key differs from the one the store holds. */
static void test_snapshot_delta_corrupt(void **state)
{
	(void)state;
	struct sl_store *a = mkstore(1, 4);
	fill_few(a);
	struct sl_store_snap_cursor cur;
	uint8_t *base = NULL, *delta = NULL;
	size_t base_len = since_image(a, 10, 0, 1 << 16, NULL, NULL, &cur, &base);
	struct sl_point more[] = {mkpt(KEY_A, 4, SL_VAL_F64, 7), mkstr("s v", 3, "x", 1),
				  mkpt(KEY_B, 9, SL_VAL_BOOL, 0)};
	for (size_t i = 0; i < SL_ARRAY_LEN(more); i++)
		assert_int_equal(sl_store_apply(a, &more[i]), 0);
	size_t len = since_image(a, 11, cur.gen + 1, 1 << 16, NULL, NULL, &cur, &delta);
	assert_int_equal(cur.series, 3);
	assert_int_equal(apply_damaged(base, base_len, delta, len), 0);

	uint8_t *w = malloc(len);
	for (size_t l = 0; l < len; l++)
		assert_int_equal(apply_damaged(base, base_len, delta, l), -EBADMSG);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(w, delta, len);
			w[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(apply_damaged(base, base_len, w, len), -EBADMSG);
		}
	}
	/* a byte more is not this image */
	w = realloc(w, len + 1);
	memcpy(w, delta, len);
	w[len] = 0;
	struct sl_store *b = corrupt_base(base, base_len);
	assert_int_equal(sl_store_snapshot_apply_delta_mem(b, w, len + 1, NULL), -EBADMSG);
	sl_store_destroy(b);

	/* a full image is no delta, and a delta no full image */
	assert_int_equal(apply_damaged(base, base_len, base, base_len), -EBADMSG);
	b = mkstore(1, 0);
	assert_int_equal(load_image(b, delta, len), -EBADMSG);
	assert_empty(b);
	sl_store_destroy(b);

	/* a delta of region 2 */
	struct sl_store *r2 = mkstore(2, 0);
	uint32_t clean = sl_store_mark_clean(r2);
	struct sl_point p0 = mkpt(KEY_A, 5, SL_VAL_F64, 1);
	assert_int_equal(sl_store_apply(r2, &p0), 0);
	uint8_t *other = NULL;
	size_t other_len = since_image(r2, 5, clean, 1 << 16, NULL, NULL, &cur, &other);
	assert_int_equal(cur.series, 1);
	assert_int_equal(apply_damaged(base, base_len, other, other_len), -EINVAL);
	free(other);
	sl_store_destroy(r2);

	/* the same series with another type: KEY_A is f64 in the base */
	struct sl_store *t = mkstore(1, 0);
	assert_int_equal(sl_store_mark_clean(t), clean);
	struct sl_point as_int = mkpt(KEY_A, 100, SL_VAL_I64, 1);
	assert_int_equal(sl_store_apply(t, &as_int), 0);
	other_len = since_image(t, 12, 1, 1 << 16, NULL, NULL, &cur, &other);
	assert_int_equal(apply_damaged(base, base_len, other, other_len), -EBADMSG);
	/* another key under KEY_A's id, the record's crc made good again */
	struct sl_point as_f = mkpt(KEY_A, 100, SL_VAL_F64, 1);
	struct sl_store *k = mkstore(1, 0);
	assert_int_equal(sl_store_mark_clean(k), clean);
	assert_int_equal(sl_store_apply(k, &as_f), 0);
	free(other);
	other_len = since_image(k, 12, 1, 1 << 16, NULL, NULL, &cur, &other);
	assert_int_equal(apply_damaged(base, base_len, other, other_len), 0);
	other[SL_STORE_SNAP_HDR_BYTES + 19] ^= 0x01; /* the key's first byte */
	size_t rec = other_len - SL_STORE_SNAP_HDR_BYTES;
	sl_put_u32(other + other_len - 4,
		   sl_batch_crc32c(other + SL_STORE_SNAP_HDR_BYTES, rec - 4, 0xffffffffu));
	assert_int_equal(apply_damaged(base, base_len, other, other_len), -EBADMSG);
	free(other);
	sl_store_destroy(k);
	sl_store_destroy(t);
	free(w);
	free(base);
	free(delta);
	sl_store_destroy(a);
}

/* ---- strings ---- */

#define KEY_S "log,host=a msg"
#define KEY_T "log,host=b msg"

/* Made by the v1 encoder (before strings existed), kept byte for byte so old WAL records
 * and snapshots stay readable: region 42, points ("cpu,host=a usage", -7, f64 3.5),
 * ("up,host=a ok", 8, bool 1), ("n u", 9, i64 -3). */
/* clang-format off */
static const uint8_t batch_v1[126] = {
	0x01, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0xd7, 0xf7,
	0x80, 0x86, 0x6d, 0x9b, 0x58, 0x4c, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x40, 0x10,
	0x00, 0x63, 0x70, 0x75, 0x2c, 0x68, 0x6f, 0x73, 0x74, 0x3d, 0x61, 0x20,
	0x75, 0x73, 0x61, 0x67, 0x65, 0x6f, 0x5b, 0xd2, 0x38, 0x94, 0x27, 0x23,
	0x18, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x75, 0x70, 0x2c, 0x68,
	0x6f, 0x73, 0x74, 0x3d, 0x61, 0x20, 0x6f, 0x6b, 0x71, 0x69, 0x36, 0xc8,
	0xc6, 0xd0, 0xf5, 0x77, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 0x00, 0x6e,
	0x20, 0x75, 0x23, 0x3e, 0x05, 0xa4,
};
/* A v1 snapshot (same provenance) of region 6, applied index 1234: "cpu,host=a usage" f64
 * {-2: 7, 5: 1.0}, "n u" u64 {1: 99}, "up,host=a ok" bool {3: 1}. */
static const uint8_t snap_v1[196] = {
	0x53, 0x4c, 0x53, 0x4e, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
	0xd2, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x13, 0x5f, 0xdb, 0x30, 0xd7, 0xf7, 0x80, 0x86,
	0x6d, 0x9b, 0x58, 0x4c, 0x01, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x63, 0x70, 0x75, 0x2c, 0x68, 0x6f, 0x73, 0x74, 0x3d,
	0x61, 0x20, 0x75, 0x73, 0x61, 0x67, 0x65, 0xfe, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0xf0, 0x3f, 0xb2, 0xbb, 0xff, 0x65, 0x6f, 0x5b, 0xd2, 0x38, 0x94,
	0x27, 0x23, 0x18, 0x04, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x75, 0x70, 0x2c, 0x68, 0x6f, 0x73, 0x74, 0x3d, 0x61, 0x20,
	0x6f, 0x6b, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x52, 0x4f, 0x2b, 0x71, 0x69,
	0x36, 0xc8, 0xc6, 0xd0, 0xf5, 0x77, 0x03, 0x03, 0x00, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x6e, 0x20, 0x75, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x63, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x83, 0x13, 0x3c, 0xab,
};
/* clang-format on */

static void assert_v1_points(const struct sl_point *p, size_t i)
{
	struct sl_point want[] = {mkpt("cpu,host=a usage", -7, SL_VAL_F64, 0x400c000000000000ull),
				  mkpt("up,host=a ok", 8, SL_VAL_BOOL, 1),
				  mkpt("n u", 9, SL_VAL_I64, (uint64_t)-3ll)};
	assert_true(i < SL_ARRAY_LEN(want));
	assert_points_equal(p, &want[i]);
	assert_null(p->str);
}

static void test_batch_strings_roundtrip(void **state)
{
	(void)state;
	char *big = malloc(SL_STR_MAX + 1);
	for (size_t i = 0; i <= SL_STR_MAX; i++)
		big[i] = (char)(i * 7 + 1);
	/* Multibyte UTF-8 of 2, 3 and 4 bytes; the codec carries bytes, not characters. */
	static const char utf8[] = "temp \xc2\xb0"
				   "C \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5";
	struct sl_point in[] = {
	    mkstr(KEY_S, 1, "", 0),	      mkpt(KEY_A, 2, SL_VAL_F64, 0x4000000000000000ull),
	    mkstr(KEY_S, 3, big, SL_STR_MAX), mkstr(KEY_T, -4, utf8, (uint32_t)strlen(utf8)),
	    mkpt(KEY_B, 5, SL_VAL_BOOL, 1),   mkstr(KEY_T, 6, "a\0b\"\n", 5),
	    mkstr(KEY_T, 7, NULL, 0),
	};
	in[5].value = 99; /* ignored for strings: encoded (and decoded) as 0 */
	size_t cap = SL_BATCH_EMPTY_BYTES;
	for (size_t i = 0; i < SL_ARRAY_LEN(in); i++)
		cap += sl_batch_point_size(&in[i]);
	assert_int_equal(sl_batch_point_size(&in[0]), sl_batch_point_bytes(strlen(KEY_S)) + 4);
	assert_int_equal(sl_batch_point_size(&in[1]), sl_batch_point_bytes(strlen(KEY_A)));
	uint8_t *buf = malloc(cap);
	struct sl_batch b;
	size_t len = 0;
	assert_int_equal(sl_batch_init(&b, buf, cap, 3), 0);
	for (size_t i = 0; i < SL_ARRAY_LEN(in); i++)
		assert_int_equal(sl_batch_add(&b, &in[i]), 0);
	struct sl_point one = mkstr(KEY_S, 8, "x", 1);
	assert_int_equal(sl_batch_add(&b, &one), -ENOSPC); /* the buffer is exactly full */
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_int_equal(len, cap);
	assert_int_equal(buf[0], SL_BATCH_VERSION);

	struct sl_batch_iter it;
	struct sl_point out;
	assert_int_equal(sl_batch_iter_init(&it, buf, len), 0);
	for (size_t i = 0; i < SL_ARRAY_LEN(in); i++) {
		assert_int_equal(sl_batch_next(&it, &out), 1);
		struct sl_point want = in[i];
		if (want.type == SL_VAL_STR) {
			want.value = 0;
			assert_non_null(out.str);
			assert_true((const uint8_t *)out.str >= buf &&
				    (const uint8_t *)out.str + out.str_len <= buf + len);
		} else {
			assert_null(out.str);
		}
		assert_points_equal(&out, &want);
	}
	assert_int_equal(sl_batch_next(&it, &out), 0);

	/* The largest point fits a buffer of SL_BATCH_POINT_MAX_BYTES plus an empty batch. */
	char key_max[SL_KEY_MAX + 1];
	memset(key_max, 'k', SL_KEY_MAX);
	key_max[SL_KEY_MAX] = '\0';
	free(buf);
	cap = SL_BATCH_EMPTY_BYTES + SL_BATCH_POINT_MAX_BYTES;
	buf = malloc(cap + 1);
	struct sl_point max_pt = mkstr(key_max, 0, big, SL_STR_MAX);
	assert_int_equal(sl_batch_point_size(&max_pt), SL_BATCH_POINT_MAX_BYTES);
	assert_int_equal(sl_batch_init(&b, buf, cap - 1, 1), 0);
	assert_int_equal(sl_batch_add(&b, &max_pt), -ENOSPC);
	assert_int_equal(sl_batch_init(&b, buf, cap, 1), 0);
	assert_int_equal(sl_batch_add(&b, &max_pt), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_int_equal(sl_batch_check(buf, len, NULL, NULL), 0);

	/* Refused before encoding: too long, or bytes promised but absent. */
	assert_int_equal(sl_batch_init(&b, buf, cap, 1), 0);
	struct sl_point bad = mkstr(KEY_S, 1, big, SL_STR_MAX + 1);
	assert_int_equal(sl_batch_add(&b, &bad), -EINVAL);
	bad = mkstr(KEY_S, 1, NULL, 3);
	assert_int_equal(sl_batch_add(&b, &bad), -EINVAL);
	bad = mkstr(KEY_S, 1, "abc", UINT32_MAX);
	assert_int_equal(sl_batch_point_check(&bad), -EINVAL);
	assert_int_equal(sl_batch_count(&b), 0);
	free(buf);
	free(big);
}

static void test_batch_strings_malformed(void **state)
{
	(void)state;
	_Alignas(8) uint8_t good[512];
	_Alignas(8) uint8_t w[512];
	struct sl_point pts[] = {mkstr(KEY_S, 1, "hello", 5), mkpt(KEY_A, 2, SL_VAL_I64, 9),
				 mkstr(KEY_T, 3, "", 0)};
	struct sl_batch b;
	size_t len = 0;
	assert_int_equal(sl_batch_init(&b, good, sizeof(good), 7), 0);
	for (size_t i = 0; i < SL_ARRAY_LEN(pts); i++)
		assert_int_equal(sl_batch_add(&b, &pts[i]), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	const size_t p0 = SL_BATCH_HDR_BYTES;
	const size_t s0 = p0 + sl_batch_point_bytes(strlen(KEY_S)); /* str_len of point 0 */
	const size_t p2 = s0 + 4 + 5 + sl_batch_point_bytes(strlen(KEY_A));
	const size_t s2 = p2 + sl_batch_point_bytes(strlen(KEY_T));
	assert_int_equal(s2 + 4 + 4, len);
	assert_int_equal(sl_batch_check(good, len, NULL, NULL), 0);

	/* Truncated anywhere and re-checksummed. */
	for (size_t l = SL_BATCH_HDR_BYTES; l < len - 4; l++) {
		memcpy(w, good, l);
		recrc(w, l + 4);
		assert_int_equal(sl_batch_check(w, l + 4, NULL, NULL), -EBADMSG);
	}
	struct {
		size_t off;
		int width;
		uint32_t value;
	} cases[] = {
	    {s0, 4, SL_STR_MAX + 1}, /* over the limit */
	    {s0, 4, UINT32_MAX},     /* would wrap a 32-bit size */
	    {s0, 4, 6},		     /* eats the next point's first byte */
	    {s0, 4, 4},		     /* leaves a stray byte */
	    {s2, 4, 1},		     /* runs into the trailer */
	    {p0 + 17, 1, 1},	     /* a string's value slot is always 0 */
	    {p2 + 24, 1, 1},	     /* ditto, top byte */
	    {0, 1, 1},		     /* strings in a v1 batch */
	};
	for (size_t c = 0; c < SL_ARRAY_LEN(cases); c++) {
		memcpy(w, good, len);
		if (cases[c].width == 1)
			w[cases[c].off] = (uint8_t)cases[c].value;
		else
			sl_put_u32(w + cases[c].off, cases[c].value);
		recrc(w, len);
		assert_int_equal(sl_batch_check(w, len, NULL, NULL), -EBADMSG);
	}

	/* One byte over SL_STR_MAX with every byte present is still refused. */
	uint32_t n = SL_STR_MAX + 1;
	size_t l = SL_BATCH_HDR_BYTES + sl_batch_point_bytes(strlen(KEY_S)) + 4 + n + 4;
	uint8_t *v = calloc(1, l);
	v[0] = SL_BATCH_VERSION;
	sl_put_u32(v + 6, 1);
	sl_put_u64(v + p0, sl_series_id(KEY_S, strlen(KEY_S)));
	v[p0 + 16] = SL_VAL_STR;
	sl_put_u16(v + p0 + 25, (uint16_t)strlen(KEY_S));
	memcpy(v + p0 + SL_BATCH_POINT_FIXED_BYTES, KEY_S, strlen(KEY_S));
	sl_put_u32(v + s0, n);
	recrc(v, l);
	assert_int_equal(sl_batch_check(v, l, NULL, NULL), -EBADMSG);
	sl_put_u32(v + s0, n - 1); /* the same bytes at the limit decode, save the extra one */
	recrc(v, l);
	assert_int_equal(sl_batch_check(v, l, NULL, NULL), -EBADMSG);
	recrc(v, l - 1);
	assert_int_equal(sl_batch_check(v, l - 1, NULL, NULL), 0);
	free(v);
}

static void test_batch_v1_compat(void **state)
{
	(void)state;
	uint32_t count = 0, region = 0;
	assert_int_equal(batch_v1[0], SL_BATCH_VERSION_V1);
	assert_int_equal(sl_batch_check(batch_v1, sizeof(batch_v1), &count, &region), 0);
	assert_int_equal(count, 3);
	assert_int_equal(region, 42);
	struct sl_batch_iter it;
	struct sl_point out;
	assert_int_equal(sl_batch_iter_init(&it, batch_v1, sizeof(batch_v1)), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(sl_batch_next(&it, &out), 1);
		assert_v1_points(&out, i);
	}
	assert_int_equal(sl_batch_next(&it, &out), 0);

	/* The same points encode as v2, differing only in the version byte. */
	_Alignas(8) uint8_t buf[sizeof(batch_v1)];
	struct sl_batch b;
	size_t len = 0;
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 42), 0);
	assert_int_equal(sl_batch_iter_init(&it, batch_v1, sizeof(batch_v1)), 0);
	while (sl_batch_next(&it, &out) == 1)
		assert_int_equal(sl_batch_add(&b, &out), 0);
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	assert_int_equal(len, sizeof(batch_v1));
	assert_int_equal(buf[0], 2);
	assert_memory_equal(buf + 1, batch_v1 + 1, len - 5);

	struct sl_store *st = mkstore(42, 0);
	uint32_t applied = 0;
	assert_int_equal(sl_store_apply_batch(st, batch_v1, sizeof(batch_v1), &applied, NULL), 0);
	assert_int_equal(applied, 3);
	sl_store_destroy(st);
}

struct model_val {
	bool has;
	uint32_t len;
	char *str;
};

/* Random string of varied length: mostly short, some empty, some of several KiB. */
static uint32_t random_str(uint64_t *seed, char *buf, uint32_t cap)
{
	uint64_t r = rng_next(seed);
	uint32_t len = r % 8 == 0    ? 0
		       : r % 61 == 1 ? 2000 + (uint32_t)(r >> 40) % 5000
				     : 1 + (uint32_t)(r >> 32) % 100;
	SL_ASSERT(len <= cap);
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (char)rng_next(seed); /* any bytes: NUL and invalid UTF-8 too */
	return len;
}

/* Random inserts, overwrites and out-of-order writes of one string series, checked
 * sample by sample against a model; then stats.bytes against a store of the same shape
 * holding only empty strings. */
static void strings_case(uint32_t chunk_points, size_t n_ts, size_t n_writes, uint64_t seed)
{
	struct sl_store *st = mkstore(1, chunk_points);
	struct sl_store *shape = mkstore(1, chunk_points);
	struct model_val *m = calloc(n_ts, sizeof(*m));
	int64_t *seq = malloc(n_writes * sizeof(*seq));
	char *tmp = malloc(8192);
	uint64_t id = sl_series_id(KEY_S, strlen(KEY_S));
	size_t present = 0, str_total = 0;
	for (size_t i = 0; i < n_writes; i++) {
		size_t k = rng_next(&seed) % n_ts;
		seq[i] = (int64_t)k * 5 - 1000;
		uint32_t len = random_str(&seed, tmp, 8192);
		if (m[k].has)
			str_total -= m[k].len;
		else
			present++;
		free(m[k].str);
		m[k] = (struct model_val){.has = true, .len = len, .str = malloc(len + 1)};
		memcpy(m[k].str, tmp, len);
		str_total += len;
		struct sl_point p = mkstr(KEY_S, seq[i], len ? tmp : NULL, len);
		assert_int_equal(sl_store_apply(st, &p), 0);
		memset(tmp, 0xee, len); /* the store must have copied */
		p = mkstr(KEY_S, seq[i], "", 0);
		assert_int_equal(sl_store_apply(shape, &p), 0);
	}
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.points, present);
	assert_int_equal(s.chunks, stats_of(shape).chunks);
	assert_true(s.bytes >= stats_of(shape).bytes + str_total);

	struct sl_sample_ex *out = calloc(present + 1, sizeof(*out));
	char *sbuf = malloc(str_total + 1);
	size_t got = 0, used = 0;
	uint8_t type = 0;
	assert_int_equal(sl_store_query_ex(st, id, INT64_MIN, INT64_MAX, out, present + 1, sbuf,
					   str_total, &got, &used, &type),
			 0);
	assert_int_equal(type, SL_VAL_STR);
	assert_int_equal(got, present);
	assert_int_equal(used, str_total);
	size_t j = 0, off = 0;
	for (size_t k = 0; k < n_ts; k++) {
		if (!m[k].has)
			continue;
		assert_int_equal(out[j].ts, (int64_t)k * 5 - 1000);
		assert_int_equal(out[j].value, 0);
		assert_int_equal(out[j].str_len, m[k].len);
		assert_int_equal(out[j].str_off, off); /* packed in order */
		assert_memory_equal(sbuf + out[j].str_off, m[k].str, m[k].len);
		off += m[k].len;
		j++;
	}
	struct sl_series_info info;
	assert_int_equal(sl_store_series_info(st, id, &info), 0);
	assert_int_equal(info.type, SL_VAL_STR);
	assert_int_equal(info.n_points, present);

	/* Overwriting every string with "" frees exactly what the strings held. */
	for (size_t i = 0; i < n_writes; i++) {
		struct sl_point p = mkstr(KEY_S, seq[i], "", 0);
		assert_int_equal(sl_store_apply(st, &p), 0);
	}
	assert_int_equal(stats_of(st).bytes, stats_of(shape).bytes);
	assert_int_equal(sl_store_query_ex(st, id, INT64_MIN, INT64_MAX, out, present + 1, NULL, 0,
					   &got, &used, NULL),
			 0);
	assert_int_equal(got, present);
	assert_int_equal(used, 0);

	for (size_t k = 0; k < n_ts; k++)
		free(m[k].str);
	free(m);
	free(seq);
	free(tmp);
	free(out);
	free(sbuf);
	sl_store_destroy(shape);
	sl_store_destroy(st);
}

static void test_store_strings_model(void **state)
{
	(void)state;
	strings_case(SL_STORE_CHUNK_POINTS_MIN, 300, 1500, 21); /* split on every insert */
	strings_case(4, 1000, 4000, 22);
	strings_case(16, 3000, 6000, 23);
	strings_case(512, 2000, 5000, 24);
}

static void test_store_strings_type_conflict(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(2, 0);
	struct sl_point num = mkpt(KEY_A, 1, SL_VAL_F64, 5);
	struct sl_point str = mkstr(KEY_S, 1, "abc", 3);
	assert_int_equal(sl_store_apply(st, &num), 0);
	assert_int_equal(sl_store_apply(st, &str), 0);
	uint64_t bytes = stats_of(st).bytes;

	struct sl_point as_str = mkstr(KEY_A, 2, "xyz", 3);
	struct sl_point as_num = mkpt(KEY_S, 2, SL_VAL_I64, 7);
	assert_int_equal(sl_store_apply(st, &as_str), -EINVAL);
	assert_int_equal(sl_store_apply(st, &as_num), -EINVAL);
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.type_conflicts, 2);
	assert_int_equal(s.points, 2);
	assert_int_equal(s.bytes, bytes); /* nothing allocated for a refused string */

	/* Too long: malformed, not a conflict. */
	char *big = calloc(1, SL_STR_MAX + 1);
	struct sl_point too_long = mkstr(KEY_S, 3, big, SL_STR_MAX + 1);
	assert_int_equal(sl_store_apply(st, &too_long), -EINVAL);
	assert_int_equal(stats_of(st).type_conflicts, 2);
	free(big);

	struct sl_point pts[] = {mkstr(KEY_S, 4, "d", 1), mkstr(KEY_A, 4, "e", 1),
				 mkpt(KEY_S, 5, SL_VAL_BOOL, 1), mkstr(KEY_T, 4, "", 0)};
	apply_as_batch(st, 2, pts, SL_ARRAY_LEN(pts), 2, 2);
	s = stats_of(st);
	assert_int_equal(s.type_conflicts, 4);
	assert_int_equal(s.series, 3);
	assert_int_equal(s.points, 4);
	sl_store_destroy(st);
}

static void test_store_query_ex(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(1, 4);
	char src[64];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (char)('A' + i % 50);
	const int64_t n = 200;
	for (int64_t t = n - 1; t >= 0; t--) { /* backwards: splits all along */
		struct sl_point p = mkstr(KEY_S, t, src + t % 7, (uint32_t)(t % 37));
		assert_int_equal(sl_store_apply(st, &p), 0);
	}
	uint64_t id = sl_series_id(KEY_S, strlen(KEY_S));

	/* Paging with a small string buffer and a small max visits every sample once. */
	struct sl_sample_ex out[7];
	char sbuf[50];
	size_t got = 0, used = 0, n_enospc = 0, n_full = 0;
	int64_t from = INT64_MIN, next = 0;
	for (int calls = 0; calls < 1000; calls++) {
		int rc = sl_store_query_ex(st, id, from, INT64_MAX, out, SL_ARRAY_LEN(out), sbuf,
					   sizeof(sbuf), &got, &used, NULL);
		assert_true(rc == 0 || rc == -ENOSPC);
		n_enospc += rc == -ENOSPC;
		n_full += got == SL_ARRAY_LEN(out);
		assert_true(got > 0 || rc == 0); /* every string is shorter than sbuf */
		if (got == 0)
			break;
		size_t off = 0;
		for (size_t i = 0; i < got; i++, next++) {
			assert_int_equal(out[i].ts, next);
			assert_int_equal(out[i].str_len, next % 37);
			assert_int_equal(out[i].str_off, off);
			assert_memory_equal(sbuf + off, src + next % 7, out[i].str_len);
			off += out[i].str_len;
		}
		assert_int_equal(used, off);
		if (rc == -ENOSPC) /* the next one really did not fit */
			assert_true(sizeof(sbuf) - used < (size_t)((next % 37)));
		from = out[got - 1].ts + 1;
	}
	assert_int_equal(next, n);
	assert_true(n_enospc > 0);
	assert_true(n_full > 0);

	/* Exactly full is not short: ts 30 and 31 hold 30 + 31 bytes. */
	char exact[61];
	assert_int_equal(
	    sl_store_query_ex(st, id, 30, 31, out, 7, exact, sizeof(exact), &got, &used, NULL), 0);
	assert_int_equal(got, 2);
	assert_int_equal(used, sizeof(exact));
	assert_int_equal(
	    sl_store_query_ex(st, id, 30, 32, out, 7, exact, sizeof(exact), &got, &used, NULL),
	    -ENOSPC);
	assert_int_equal(got, 2);
	/* An empty string needs no room even with a full buffer. */
	assert_int_equal(sl_store_query_ex(st, id, 36, 37, out, 7, exact, 36, &got, &used, NULL),
			 0);
	assert_int_equal(got, 2);
	assert_int_equal(out[1].str_len, 0);
	/* A string larger than the whole buffer: no progress, caller must grow it. */
	assert_int_equal(sl_store_query_ex(st, id, 36, 37, out, 7, exact, 35, &got, &used, NULL),
			 -ENOSPC);
	assert_int_equal(got, 0);
	assert_int_equal(used, 0);
	/* Empty ranges, max 0 and unknown series. */
	assert_int_equal(sl_store_query_ex(st, id, 5, 4, out, 7, NULL, 0, &got, &used, NULL), 0);
	assert_int_equal(got, 0);
	assert_int_equal(sl_store_query_ex(st, id, 0, 9, out, 0, NULL, 0, &got, &used, NULL), 0);
	assert_int_equal(got, 0);
	assert_int_equal(sl_store_query_ex(st, id ^ 1, 0, 9, out, 7, NULL, 0, &got, &used, NULL),
			 -ENOENT);

	/* The numeric query refuses a string series, saying what it is. */
	struct sl_sample s_out[4];
	uint8_t type = 0;
	got = 9;
	assert_int_equal(sl_store_query(st, id, 0, 9, s_out, 4, &got, &type), -EMEDIUMTYPE);
	assert_int_equal(got, 0);
	assert_int_equal(type, SL_VAL_STR);

	/* query_ex over a numeric series matches sl_store_query and needs no str_buf. */
	for (int64_t t = 0; t < 20; t++) {
		struct sl_point p = mkpt(KEY_A, 20 - t, SL_VAL_I64, (uint64_t)(t * t));
		assert_int_equal(sl_store_apply(st, &p), 0);
	}
	uint64_t nid = sl_series_id(KEY_A, strlen(KEY_A));
	struct sl_sample num[32];
	struct sl_sample_ex ex[32];
	size_t got_num = 0;
	query_all(st, nid, num, 32, &got_num);
	assert_int_equal(
	    sl_store_query_ex(st, nid, INT64_MIN, INT64_MAX, ex, 32, NULL, 0, &got, &used, &type),
	    0);
	assert_int_equal(type, SL_VAL_I64);
	assert_int_equal(got, got_num);
	assert_int_equal(used, 0);
	for (size_t i = 0; i < got; i++) {
		assert_int_equal(ex[i].ts, num[i].ts);
		assert_int_equal(ex[i].value, num[i].value);
		assert_int_equal(ex[i].str_len, 0);
	}
	sl_store_destroy(st);
}

static void test_snapshot_strings(void **state)
{
	(void)state;
	/* Strings spanning the 64 KiB I/O blocks of the image, empties, and chunk splits. */
	struct sl_store *a = mkstore(4, 2);
	char *big = malloc(SL_STR_MAX);
	for (size_t i = 0; i < SL_STR_MAX; i++)
		big[i] = (char)(i % 251);
	for (int64_t t = 0; t < 5; t++) {
		struct sl_point p = mkstr(KEY_S, 10 - t, big + t, SL_STR_MAX - (uint32_t)t);
		assert_int_equal(sl_store_apply(a, &p), 0);
		p = mkstr(KEY_T, t, t % 2 ? "\xe2\x82\xac" : "", t % 2 ? 3 : 0);
		assert_int_equal(sl_store_apply(a, &p), 0);
	}
	struct sl_point p = mkpt(KEY_A, 1, SL_VAL_U64, 3);
	assert_int_equal(sl_store_apply(a, &p), 0);
	p = mkstr(KEY_S, 8, "overwritten", 11);
	assert_int_equal(sl_store_apply(a, &p), 0);
	uint8_t *img = NULL;
	size_t len = image_of(a, &img);
	assert_int_equal(sl_get_u16(img + 4), 2);
	assert_true(len > 4 * SL_STR_MAX);
	struct sl_store *b = mkstore(4, 0);
	assert_int_equal(load_image(b, img, len), 0);
	assert_stores_equal(a, b);
	assert_true(stats_of(b).bytes > 4ull * SL_STR_MAX);
	sl_store_destroy(b);

	/* Damage inside a big string, and a cut inside one. */
	b = mkstore(4, 0);
	img[len / 2] ^= 0x40;
	assert_int_equal(load_image(b, img, len), -EBADMSG);
	assert_empty(b);
	img[len / 2] ^= 0x40;
	assert_int_equal(load_image(b, img, len / 2), -EBADMSG);
	assert_empty(b);

	/* A v2 image relabelled v1 is refused: v1 had no string series. */
	struct sl_store *only = mkstore(4, 0);
	p = mkstr(KEY_T, 1, "x", 1);
	assert_int_equal(sl_store_apply(only, &p), 0);
	uint8_t *img2 = NULL;
	size_t len2 = image_of(only, &img2);
	sl_put_u16(img2 + 4, 1);
	sl_put_u32(img2 + 28, sl_batch_crc32c(img2, 28, 0xffffffffu));
	assert_int_equal(load_image(b, img2, len2), -EBADMSG);
	assert_empty(b);
	/* A string longer than SL_STR_MAX in an otherwise valid record is refused. */
	free(img2);
	len2 = image_of(only, &img2);
	size_t rec = 32, str_len_off = rec + 19 + strlen(KEY_T) + 8;
	assert_int_equal(sl_get_u32(img2 + str_len_off), 1);
	sl_put_u32(img2 + str_len_off, SL_STR_MAX + 1);
	sl_put_u32(img2 + len2 - 4, sl_batch_crc32c(img2 + rec, len2 - 4 - rec, 0xffffffffu));
	assert_int_equal(load_image(b, img2, len2), -EBADMSG);
	sl_put_u32(img2 + str_len_off, 1);
	sl_put_u32(img2 + len2 - 4, sl_batch_crc32c(img2 + rec, len2 - 4 - rec, 0xffffffffu));
	assert_int_equal(load_image(b, img2, len2), 0); /* the CRC recompute is right */
	assert_stores_equal(only, b);
	free(img2);
	free(img);
	free(big);
	sl_store_destroy(only);
	sl_store_destroy(b);
	sl_store_destroy(a);
}

static void test_snapshot_v1_compat(void **state)
{
	(void)state;
	struct sl_store *st = mkstore(6, 0);
	assert_int_equal(sl_get_u16(snap_v1 + 4), 1);
	assert_int_equal(load_image(st, snap_v1, sizeof(snap_v1)), 0);
	struct sl_store_stats s = stats_of(st);
	assert_int_equal(s.series, 3);
	assert_int_equal(s.points, 4);
	struct {
		const char *key;
		uint8_t type;
		int64_t ts;
		uint64_t value;
	} want[] = {
	    {"cpu,host=a usage", SL_VAL_F64, -2, 7},
	    {"cpu,host=a usage", SL_VAL_F64, 5, 0x3ff0000000000000ull},
	    {"n u", SL_VAL_U64, 1, 99},
	    {"up,host=a ok", SL_VAL_BOOL, 3, 1},
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
		struct sl_sample out[2];
		size_t got = 0;
		uint8_t type = 0;
		uint64_t id = sl_series_id(want[i].key, strlen(want[i].key));
		assert_int_equal(
		    sl_store_query(st, id, want[i].ts, want[i].ts, out, 2, &got, &type), 0);
		assert_int_equal(got, 1);
		assert_int_equal(type, want[i].type);
		assert_int_equal(out[0].value, want[i].value);
	}
	/* Its applied index survives too; and a v1 image reloads after a v2 rewrite. */
	int fd = snap_fd();
	assert_int_equal(write(fd, snap_v1, sizeof(snap_v1)), (ssize_t)sizeof(snap_v1));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	struct sl_store *b = mkstore(6, 0);
	uint64_t applied = 0;
	assert_int_equal(sl_store_snapshot_read(b, fd, &applied), 0);
	assert_int_equal(applied, 1234);
	close(fd);
	uint8_t *img = NULL;
	size_t len = image_of(b, &img);
	struct sl_store *c = mkstore(6, 0);
	assert_int_equal(load_image(c, img, len), 0);
	assert_stores_equal(st, c);
	free(img);
	sl_store_destroy(c);
	sl_store_destroy(b);
	sl_store_destroy(st);
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
	char str[300];
	memset(str, 's', sizeof(str));
	for (int i = 0; i < 100; i++) {
		struct sl_point p = mkstr("log,app=x msg", 100 - i, str, (uint32_t)(i * 3));
		assert_int_equal(sl_store_apply(st, &p), 0);
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
	assert_int_equal(stats_of(st).points, 5100);
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

/* Trusted paths skip the CRC and the series-id hash, nothing else. */
static void test_batch_trusted(void **state)
{
	(void)state;
	uint8_t buf[4096];
	struct sl_batch b;
	const char *key = "cpu,host=a usage";
	struct sl_point p = {.ts = 5, .type = SL_VAL_F64, .value = 7, .key_len = 16, .key = key};
	p.series_id = sl_series_id(key, 16) ^ 1; /* wrong id */
	assert_int_equal(sl_batch_init(&b, buf, sizeof(buf), 3), 0);
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL);
	sl_batch_trust(&b);
	assert_int_equal(sl_batch_add(&b, &p), 0); /* the caller vouches for ids */
	p.type = 9;
	assert_int_equal(sl_batch_add(&b, &p), -EINVAL); /* shape is still checked */
	size_t len;
	assert_int_equal(sl_batch_finish(&b, &len), 0);
	struct sl_batch_iter it;
	struct sl_point out;
	assert_int_equal(sl_batch_iter_init(&it, buf, len), 0);
	assert_int_equal(sl_batch_next(&it, &out), -EBADMSG); /* full check: wrong id */
	buf[len - 1] ^= 0xff; /* and a broken CRC */
	assert_int_equal(sl_batch_iter_init(&it, buf, len), -EBADMSG);
	assert_int_equal(sl_batch_iter_init_trusted(&it, buf, len), 0);
	assert_int_equal(sl_batch_next(&it, &out), 1);
	assert_int_equal(out.ts, 5);
	assert_int_equal(out.value, 7);
	assert_int_equal(sl_batch_next(&it, &out), 0);
	assert_int_equal(sl_batch_iter_init_trusted(&it, buf, 3), -EBADMSG); /* bounds stay */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_trusted),
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
	    cmocka_unit_test(test_snapshot_fuzzy_growth),
	    cmocka_unit_test(test_snapshot_fuzzy_replay),
	    cmocka_unit_test(test_snapshot_delta_chain),
	    cmocka_unit_test(test_snapshot_delta_small),
	    cmocka_unit_test(test_snapshot_delta_corrupt),
	    cmocka_unit_test(test_snapshot_delta_gen_wrap),
	    cmocka_unit_test(test_batch_strings_roundtrip),
	    cmocka_unit_test(test_batch_strings_malformed),
	    cmocka_unit_test(test_batch_v1_compat),
	    cmocka_unit_test(test_store_strings_model),
	    cmocka_unit_test(test_store_strings_type_conflict),
	    cmocka_unit_test(test_store_query_ex),
	    cmocka_unit_test(test_snapshot_strings),
	    cmocka_unit_test(test_snapshot_read_range),
	    cmocka_unit_test(test_snapshot_v1_compat),
	    cmocka_unit_test(test_store_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

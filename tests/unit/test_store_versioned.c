/* test_store_versioned.c - cmocka tests of versioned stores (multileader regions): each
 * point decided by its write's version (sl_lww_wins), not by arrival; versioned images
 * (full, delta, fuzzy walk) and their refusal by unversioned stores; snapshot merge
 * (commutative, idempotent, all-or-nothing on a damaged image). */
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
#include <unistd.h>

#include "batch.h"
#include "lww.h"
#include "sl_le.h"
#include "store.h"
#include "store_test_util.h"

#define REGION 7u
#define KEY_A "cpu,host=a usage"
#define KEY_S "log,host=a msg"
#define BATCH_CAP 65536u
#define IMG_CAP (4u << 20)
#define N_KEYS 5
#define N_TS 40

static const char *const keys[N_KEYS] = {"cpu,host=a usage", "cpu,host=b usage", "mem,host=a used",
					 "log,host=a msg", "up,host=c ok"};
/* the type each key is written with (one string series, one bool) */
static const uint8_t key_type[N_KEYS] = {SL_VAL_F64, SL_VAL_I64, SL_VAL_U64, SL_VAL_STR,
					 SL_VAL_BOOL};

static struct sl_store *mkstore_v(bool versioned, uint32_t chunk_points)
{
	struct sl_store_config cfg = {
	    .region_id = REGION, .chunk_points = chunk_points, .versioned = versioned};
	struct sl_store *st = NULL;
	assert_int_equal(sl_store_create(&cfg, &st), 0);
	assert_true(sl_store_versioned(st) == versioned);
	return st;
}

/* One write of the tests: a batch and its version. */
struct write {
	uint8_t buf[BATCH_CAP];
	size_t len;
	uint64_t hlc;
	uint32_t origin;
};

static void batch_of(struct write *w, const struct sl_point *pts, size_t n, uint64_t hlc,
		     uint32_t origin)
{
	struct sl_batch b;
	assert_int_equal(sl_batch_init(&b, w->buf, sizeof(w->buf), REGION), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sl_batch_add(&b, &pts[i]), 0);
	assert_int_equal(sl_batch_finish(&b, &w->len), 0);
	w->hlc = hlc;
	w->origin = origin;
}

static void apply_w(struct sl_store *st, const struct write *w)
{
	uint32_t applied = 0, rejected = 0;
	assert_int_equal(
	    sl_store_apply_batch_v(st, w->buf, w->len, w->hlc, w->origin, &applied, &rejected), 0);
}

/* A single-point write of a numeric value to KEY_A. */
static void put1(struct sl_store *st, int64_t ts, uint64_t value, uint64_t hlc, uint32_t origin)
{
	static struct write w;
	struct sl_point p = mkpt(KEY_A, ts, SL_VAL_F64, value);
	batch_of(&w, &p, 1, hlc, origin);
	apply_w(st, &w);
}

static uint64_t value_at(const struct sl_store *st, int64_t ts)
{
	struct sl_sample s;
	size_t n = 0;
	assert_int_equal(
	    sl_store_query(st, sl_series_id(KEY_A, strlen(KEY_A)), ts, ts, &s, 1, &n, NULL), 0);
	assert_int_equal(n, 1);
	return s.value;
}

static void assert_version(const struct sl_store *st, int64_t ts, uint64_t hlc, uint32_t origin)
{
	uint64_t h = 0;
	uint32_t o = 0;
	assert_int_equal(sl_store_version_at(st, sl_series_id(KEY_A, strlen(KEY_A)), ts, &h, &o),
			 0);
	assert_int_equal(h, hlc);
	assert_int_equal(o, origin);
}

static void test_lww_by_version(void **state)
{
	(void)state;
	struct sl_store *st = mkstore_v(true, 4);
	put1(st, 10, 1, 5, 1);
	assert_int_equal(value_at(st, 10), 1);
	assert_version(st, 10, 5, 1);
	put1(st, 10, 2, 4, 9); /* older clock: loses whatever its origin */
	assert_int_equal(value_at(st, 10), 1);
	assert_version(st, 10, 5, 1);
	put1(st, 10, 3, 5, 2); /* same clock, higher origin: wins */
	assert_int_equal(value_at(st, 10), 3);
	assert_version(st, 10, 5, 2);
	put1(st, 10, 4, 5, 1); /* same clock, lower origin: loses */
	assert_int_equal(value_at(st, 10), 3);
	put1(st, 10, 3, 5, 2); /* the same write again: nothing changes */
	assert_int_equal(value_at(st, 10), 3);
	assert_version(st, 10, 5, 2);
	put1(st, 10, 5, 5, 2); /* the same version, a later write of its batch: it stands */
	assert_int_equal(value_at(st, 10), 5);
	put1(st, 10, 6, 6, 0); /* newer clock wins even from the lowest origin */
	assert_int_equal(value_at(st, 10), 6);
	assert_version(st, 10, 6, 0);

	/* new timestamps around it, in and out of order, through chunk splits */
	for (int64_t ts = 20; ts >= 0; ts -= 2)
		if (ts != 10)
			put1(st, ts, (uint64_t)ts + 100, 1000 + (uint64_t)ts, 3);
	for (int64_t ts = 20; ts >= 0; ts -= 2) {
		if (ts == 10)
			continue;
		assert_int_equal(value_at(st, ts), (uint64_t)ts + 100);
		assert_version(st, ts, 1000 + (uint64_t)ts, 3);
	}
	assert_int_equal(value_at(st, 10), 6);
	assert_version(st, 10, 6, 0);
	struct sl_store_stats s;
	sl_store_stats(st, &s);
	assert_int_equal(s.points, 11);

	/* unversioned writes on a versioned store carry (0, 0): they lose to any real one */
	struct sl_point p = mkpt(KEY_A, 10, SL_VAL_F64, 77);
	assert_int_equal(sl_store_apply(st, &p), 0);
	assert_int_equal(value_at(st, 10), 6);
	p.ts = 11; /* a new ts takes it, with version (0, 0) */
	assert_int_equal(sl_store_apply(st, &p), 0);
	assert_int_equal(value_at(st, 11), 77);
	assert_version(st, 11, 0, 0);
	p.value = 78; /* (0, 0) against (0, 0): the same version, the later write stands */
	assert_int_equal(sl_store_apply(st, &p), 0);
	assert_int_equal(value_at(st, 11), 78);
	put1(st, 11, 79, 1, 0);
	assert_int_equal(value_at(st, 11), 79);
	sl_store_destroy(st);
}

static void test_unversioned_refuses_v(void **state)
{
	(void)state;
	struct sl_store *st = mkstore_v(false, 0);
	static struct write w;
	struct sl_point p = mkpt(KEY_A, 1, SL_VAL_F64, 1);
	batch_of(&w, &p, 1, 5, 1);
	uint32_t applied = 9, rejected = 9;
	assert_int_equal(sl_store_apply_batch_v(st, w.buf, w.len, 5, 1, &applied, &rejected),
			 -EINVAL);
	assert_int_equal(applied, 0);
	assert_int_equal(rejected, 0);
	uint64_t h;
	uint32_t o;
	assert_int_equal(sl_store_version_at(st, p.series_id, 1, &h, &o), -EINVAL);
	/* arrival order decides as before */
	assert_int_equal(sl_store_apply_batch(st, w.buf, w.len, &applied, &rejected), 0);
	p.value = 2;
	assert_int_equal(sl_store_apply(st, &p), 0);
	assert_int_equal(value_at(st, 1), 2);
	sl_store_destroy(st);

	/* a malformed batch and another region's, versioned: refused whole */
	st = mkstore_v(true, 0);
	w.buf[w.len - 1] ^= 1;
	assert_int_equal(sl_store_apply_batch_v(st, w.buf, w.len, 5, 1, &applied, &rejected),
			 -EBADMSG);
	struct sl_batch b;
	assert_int_equal(sl_batch_init(&b, w.buf, sizeof(w.buf), REGION + 1), 0);
	assert_int_equal(sl_batch_add(&b, &p), 0);
	assert_int_equal(sl_batch_finish(&b, &w.len), 0);
	assert_int_equal(sl_store_apply_batch_v(st, w.buf, w.len, 5, 1, &applied, &rejected),
			 -EXDEV);
	struct sl_store_stats s;
	sl_store_stats(st, &s);
	assert_int_equal(s.points, 0);
	sl_store_destroy(st);
}

/* One batch (one version) writing a point twice, as a proposal carrying two client
 * batches does: its later value stands, as in an unversioned store, and so after the
 * batch is applied again; a later version still replaces it. */
static void test_batch_rewrites_point(void **state)
{
	(void)state;
	static struct write w;
	struct sl_store *st = mkstore_v(true, 4);
	struct sl_point pts[3] = {mkpt(KEY_A, 10, SL_VAL_F64, 1), mkpt(KEY_A, 11, SL_VAL_F64, 7),
				  mkpt(KEY_A, 10, SL_VAL_F64, 2)};
	batch_of(&w, pts, 3, 40, 2);
	apply_w(st, &w);
	assert_int_equal(value_at(st, 10), 2);
	assert_int_equal(value_at(st, 11), 7);
	apply_w(st, &w);
	assert_int_equal(value_at(st, 10), 2);
	assert_version(st, 10, 40, 2);
	put1(st, 10, 3, 39, 9); /* an older version still loses */
	assert_int_equal(value_at(st, 10), 2);
	put1(st, 10, 4, 41, 0);
	assert_int_equal(value_at(st, 10), 4);
	sl_store_destroy(st);
}

/* A string point: the winner's bytes; a losing or repeated write leaves no allocation. */
static void test_lww_strings(void **state)
{
	(void)state;
	struct sl_store *st = mkstore_v(true, 2);
	static struct write w;
	uint64_t id = sl_series_id(KEY_S, strlen(KEY_S));
	struct sl_point p = mkpt(KEY_S, 5, SL_VAL_STR, 0);
	const char *vals[] = {"first", "older-loses", "same-version", "newer-wins-here"};
	const uint64_t hlc[] = {10, 9, 10, 11};
	struct sl_store_stats s0, s1;
	for (int i = 0; i < 4; i++) {
		p.str = vals[i];
		p.str_len = (uint32_t)strlen(vals[i]);
		batch_of(&w, &p, 1, hlc[i], 4);
		sl_store_stats(st, &s0);
		apply_w(st, &w);
		sl_store_stats(st, &s1);
		if (i == 1 || i == 2) /* lost: nothing kept */
			assert_int_equal(s1.bytes, s0.bytes);
	}
	struct sl_sample_ex out[2];
	char buf[64];
	size_t n = 0, used = 0;
	assert_int_equal(sl_store_query_ex(st, id, 5, 5, out, 2, buf, sizeof(buf), &n, &used, NULL),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].str_len, strlen(vals[3]));
	assert_memory_equal(buf + out[0].str_off, vals[3], out[0].str_len);
	uint64_t h = 0;
	uint32_t o = 0;
	assert_int_equal(sl_store_version_at(st, id, 5, &h, &o), 0);
	assert_int_equal(h, 11);
	assert_int_equal(o, 4);
	sl_store_destroy(st);
}

/* ---- a workload: writes of several origins, conflicting on purpose ---- */

#define N_WRITES 60
static struct write writes[N_WRITES];
static char strs[N_WRITES][8][24];

/* Write i: 8 points on random keys and timestamps of a small space (many collisions),
 * version (random hlc in a small range, origin 1..4) so clock ties are common. At most
 * 80 writes: that many versions exist. */
static void make_writes(uint64_t seed)
{
	for (int i = 0; i < N_WRITES; i++) {
		struct sl_point pts[8];
		for (int k = 0; k < 8; k++) {
			int key = (int)(rng_next(&seed) % N_KEYS);
			int64_t ts = (int64_t)(rng_next(&seed) % N_TS);
			uint64_t v = rng_next(&seed);
			pts[k] = mkpt(keys[key], ts, key_type[key],
				      key_type[key] == SL_VAL_BOOL ? v & 1 : v);
			/* a batch holds one (series, ts) once: a later duplicate moves on */
			for (int j = 0; j < k; j++)
				if (pts[j].series_id == pts[k].series_id && pts[j].ts == pts[k].ts)
					pts[k].ts = N_TS + k;
			if (key_type[key] == SL_VAL_STR) {
				int n = snprintf(strs[i][k], sizeof(strs[i][k]), "s%d.%d", i,
						 (int)(v % 1000));
				pts[k].value = 0;
				pts[k].str = strs[i][k];
				pts[k].str_len = (uint32_t)(v % 3 == 0 ? 0 : n);
			}
		}
		/* a version names one write (an origin's clock only moves on): unique here */
		uint64_t hlc = 0;
		uint32_t origin = 0;
		for (bool taken = true; taken;) {
			hlc = 1 + rng_next(&seed) % 20;
			origin = 1 + (uint32_t)(rng_next(&seed) % 4);
			taken = false;
			for (int j = 0; j < i; j++)
				taken |= writes[j].hlc == hlc && writes[j].origin == origin;
		}
		batch_of(&writes[i], pts, 8, hlc, origin);
	}
}

static void shuffle(int *order, int n, uint64_t seed)
{
	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(rng_next(&seed) % (uint64_t)(i + 1));
		int t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

/* ---- comparing two stores: every series, sample, string and version ---- */

#define MAX_SAMPLES 256
static void samples_of(const struct sl_store *st, uint64_t id, struct sl_sample_ex *out, char *str,
		       size_t *n, uint64_t *hlc, uint32_t *origin)
{
	size_t used = 0;
	assert_int_equal(sl_store_query_ex(st, id, INT64_MIN, INT64_MAX, out, MAX_SAMPLES, str,
					   MAX_SAMPLES * 32, n, &used, NULL),
			 0);
	assert_true(*n < MAX_SAMPLES);
	for (size_t i = 0; i < *n; i++)
		assert_int_equal(sl_store_version_at(st, id, out[i].ts, &hlc[i], &origin[i]), 0);
}

/* A store as text: each series (sorted by id) with every sample's ts, value or string
 * and version. Two stores are equal when their texts are. */
struct dump {
	char *buf;
	size_t len, cap;
	const struct sl_store *st;
	uint64_t ids[64];
	int n_ids;
};

static int collect_cb(const struct sl_series_info *info, void *arg)
{
	struct dump *d = arg;
	assert_true(d->n_ids < 64);
	d->ids[d->n_ids++] = info->series_id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void dump_put(struct dump *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		d->cap = (d->len + n + 1) * 2;
		d->buf = realloc(d->buf, d->cap);
		assert_non_null(d->buf);
	}
	memcpy(d->buf + d->len, s, n);
	d->len += n;
	d->buf[d->len] = '\0';
}

static char *dump_store(const struct sl_store *st)
{
	struct dump d = {.st = st};
	dump_put(&d, "", 0);
	assert_int_equal(sl_store_foreach_series(st, collect_cb, &d), 0);
	qsort(d.ids, (size_t)d.n_ids, sizeof(d.ids[0]), cmp_u64);
	static struct sl_sample_ex out[MAX_SAMPLES];
	static char str[MAX_SAMPLES * 32];
	static uint64_t hlc[MAX_SAMPLES];
	static uint32_t origin[MAX_SAMPLES];
	char line[256];
	for (int i = 0; i < d.n_ids; i++) {
		struct sl_series_info info;
		assert_int_equal(sl_store_series_info(st, d.ids[i], &info), 0);
		int n = snprintf(line, sizeof(line), "series %s type %u points %llu\n", info.key,
				 info.type, (unsigned long long)info.n_points);
		dump_put(&d, line, (size_t)n);
		size_t ns = 0;
		samples_of(st, d.ids[i], out, str, &ns, hlc, origin);
		assert_int_equal(ns, info.n_points);
		for (size_t k = 0; k < ns; k++) {
			n = snprintf(line, sizeof(line), " %lld %llu '%.*s' @%llu/%u\n",
				     (long long)out[k].ts, (unsigned long long)out[k].value,
				     (int)out[k].str_len, str + out[k].str_off,
				     (unsigned long long)hlc[k], origin[k]);
			dump_put(&d, line, (size_t)n);
		}
	}
	return d.buf;
}

static void assert_same(const struct sl_store *a, const struct sl_store *b)
{
	char *da = dump_store(a), *db = dump_store(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
}

/* The same writes in two different orders (and some applied twice): the same store. */
static void test_lww_order_independent(void **state)
{
	(void)state;
	make_writes(42);
	int order[N_WRITES];
	shuffle(order, N_WRITES, 7);
	struct sl_store *a = mkstore_v(true, 4), *b = mkstore_v(true, 3);
	for (int i = 0; i < N_WRITES; i++)
		apply_w(a, &writes[i]);
	for (int i = 0; i < N_WRITES; i++) {
		apply_w(b, &writes[order[i]]);
		if (i % 5 == 0)
			apply_w(b, &writes[order[i / 2]]); /* re-applied: nothing changes */
	}
	assert_same(a, b);
	struct sl_store_stats s;
	sl_store_stats(a, &s);
	assert_true(s.series == N_KEYS);
	sl_store_destroy(a);
	sl_store_destroy(b);
}

/* ---- images ---- */

typedef void (*between_fn)(void *arg, int step);

/* An image walked in steps of `budget` bytes (since_gen 0: full), between(arg, step)
 * called between steps. *gen (may be NULL) is the walk's generation. */
static uint8_t *walk_image(struct sl_store *st, uint64_t idx, uint32_t since, size_t budget,
			   between_fn between, void *arg, size_t *len, uint32_t *gen)
{
	uint8_t *img = malloc(IMG_CAP);
	assert_non_null(img);
	struct sl_store_snap_cursor cur;
	sl_store_snap_begin_since(st, idx, since, &cur);
	assert_true(((cur.flags & SL_STORE_SNAP_F_VERSIONED) != 0) == sl_store_versioned(st));
	size_t n = SL_STORE_SNAP_HDR_BYTES;
	int step = 0, rc = 0;
	for (; step < 100000 && rc != 1; step++) {
		rc = sl_store_snap_step(&cur, img, IMG_CAP, n + budget, &n);
		assert_true(rc == 0 || rc == 1);
		if (rc == 0 && between != NULL)
			between(arg, step);
	}
	assert_int_equal(rc, 1);
	sl_store_snap_header(&cur, img);
	*len = n;
	if (gen != NULL)
		*gen = cur.gen;
	return img;
}

static uint8_t *full_image(struct sl_store *st, uint64_t idx, size_t *len)
{
	return walk_image(st, idx, 0, IMG_CAP, NULL, NULL, len, NULL);
}

static struct sl_store *all_writes(uint32_t chunk_points, int from, int to)
{
	struct sl_store *st = mkstore_v(true, chunk_points);
	for (int i = from; i < to; i++)
		apply_w(st, &writes[i]);
	return st;
}

static void test_image_roundtrip(void **state)
{
	(void)state;
	make_writes(11);
	struct sl_store *a = all_writes(4, 0, N_WRITES);
	/* through a file */
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(sl_store_snapshot_write(a, fileno(f), 33), 0);
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	struct sl_store *b = mkstore_v(true, 8);
	uint64_t idx = 0;
	assert_int_equal(sl_store_snapshot_read(b, fileno(f), &idx), 0);
	assert_int_equal(idx, 33);
	assert_same(a, b);
	fclose(f);
	/* from memory, and the file's bytes are the walk's */
	size_t len = 0;
	uint8_t *img = full_image(a, 34, &len);
	assert_int_equal(sl_get_u16(img + 6), SL_STORE_SNAP_F_VERSIONED);
	struct sl_store *c = mkstore_v(true, 3);
	assert_int_equal(sl_store_snapshot_read_mem(c, img, len, &idx), 0);
	assert_int_equal(idx, 34);
	assert_same(a, c);
	free(img);
	sl_store_destroy(a);
	sl_store_destroy(b);
	sl_store_destroy(c);
}

/* Versioned images go only into versioned stores and the reverse: -EINVAL, not -EBADMSG. */
static void test_image_mixed_refused(void **state)
{
	(void)state;
	make_writes(12);
	struct sl_store *v = all_writes(4, 0, 10);
	struct sl_store *u = mkstore_v(false, 4);
	struct sl_point p = mkpt(KEY_A, 1, SL_VAL_F64, 1);
	assert_int_equal(sl_store_apply(u, &p), 0);
	size_t vlen = 0, ulen = 0;
	uint8_t *vimg = full_image(v, 1, &vlen), *uimg = full_image(u, 1, &ulen);
	assert_int_equal(sl_get_u16(uimg + 6), 0);

	struct sl_store *u2 = mkstore_v(false, 4), *v2 = mkstore_v(true, 4);
	assert_int_equal(sl_store_snapshot_read_mem(u2, vimg, vlen, NULL), -EINVAL);
	assert_int_equal(sl_store_snapshot_read_mem(v2, uimg, ulen, NULL), -EINVAL);
	struct sl_store_stats s;
	sl_store_stats(u2, &s);
	assert_int_equal(s.series, 0);
	sl_store_stats(v2, &s);
	assert_int_equal(s.series, 0);
	/* deltas and merges the same */
	size_t dlen = 0;
	uint8_t *vdelta = walk_image(v, 2, 1, IMG_CAP, NULL, NULL, &dlen, NULL);
	assert_int_equal(sl_store_snapshot_apply_delta_mem(u, vdelta, dlen, NULL), -EINVAL);
	assert_int_equal(sl_store_snapshot_merge_mem(v2, uimg, ulen, NULL), -EINVAL);
	assert_int_equal(sl_store_snapshot_merge_mem(u2, vimg, vlen, NULL), -EINVAL);
	sl_store_stats(v2, &s);
	assert_int_equal(s.series, 0);
	/* an unknown flag bit is corruption, whatever the store */
	sl_put_u16(vimg + 6, SL_STORE_SNAP_F_VERSIONED | 0x0004);
	sl_put_u32(vimg + 28, sl_batch_crc32c(vimg, 28, 0xffffffffu));
	assert_int_equal(sl_store_snapshot_read_mem(v2, vimg, vlen, NULL), -EBADMSG);
	free(vimg);
	free(uimg);
	free(vdelta);
	sl_store_destroy(v);
	sl_store_destroy(u);
	sl_store_destroy(u2);
	sl_store_destroy(v2);
}

/* A protocol switch converts a region's image to the kind of store the next protocol
 * keeps: every sample keeps its value; into a versioned store each gets version (0, 0),
 * which any real write beats. Back and forth gives the same points. */
static void strip_versions(char *s) /* each " @hlc/origin" to its line's end goes */
{
	char *out = s;
	for (char *p = s; *p != '\0'; p++) {
		if (*p == '@')
			while (p[1] != '\n' && p[1] != '\0')
				p++;
		else
			*out++ = *p;
	}
	*out = '\0';
}

static void test_image_convert(void **state)
{
	(void)state;
	make_writes(13);
	struct sl_store *a = all_writes(4, 0, N_WRITES);
	put1(a, 5, 10, 1ull << 62, 2); /* wins over any of the writes */
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(sl_store_snapshot_write(a, fileno(f), 77), 0);
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	struct sl_store *u = mkstore_v(false, 4);
	uint64_t idx = 0;
	assert_int_equal(sl_store_snapshot_read_convert(u, fileno(f), &idx), 0);
	assert_int_equal(idx, 77);
	assert_false(sl_store_versioned(u));
	assert_int_equal(value_at(u, 5), 10);
	/* and back into a versioned store: the same points, every version (0, 0) */
	assert_int_equal(ftruncate(fileno(f), 0), 0);
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_write(u, fileno(f), 78), 0);
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	struct sl_store *v = mkstore_v(true, 3);
	assert_int_equal(sl_store_snapshot_read_convert(v, fileno(f), &idx), 0);
	assert_int_equal(idx, 78);
	assert_true(sl_store_versioned(v));
	char *da = dump_store(a), *dv = dump_store(v);
	assert_string_not_equal(da, dv); /* the versions differ, nothing else */
	strip_versions(da);
	strip_versions(dv);
	assert_string_equal(da, dv);
	free(da);
	free(dv);
	/* a converted point loses to any real write */
	assert_version(v, 5, 0, 0);
	put1(v, 5, 11, 1, 1);
	assert_int_equal(value_at(v, 5), 11);
	/* only into an empty store */
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	assert_int_equal(sl_store_snapshot_read_convert(v, fileno(f), &idx), -EINVAL);
	fclose(f);
	sl_store_destroy(a);
	sl_store_destroy(u);
	sl_store_destroy(v);
}

/* A delta applied to a versioned store decides each sample by version. */
static void test_delta_by_version(void **state)
{
	(void)state;
	struct sl_store *y = mkstore_v(true, 4);
	put1(y, 1, 10, 1, 1);
	uint32_t gen = 0;
	size_t len = 0;
	free(walk_image(y, 1, 0, IMG_CAP, NULL, NULL, &len, &gen)); /* the base */
	put1(y, 5, 2, 3, 1); /* the delta: ts 5 older than x's, ts 6 new to x */
	put1(y, 6, 3, 3, 1);
	uint8_t *delta = walk_image(y, 2, gen + 1, IMG_CAP, NULL, NULL, &len, NULL);
	assert_int_equal(sl_get_u16(delta + 6), SL_STORE_SNAP_F_VERSIONED | SL_STORE_SNAP_F_DELTA);

	struct sl_store *x = mkstore_v(true, 4);
	put1(x, 5, 1, 10, 2);
	uint64_t idx = 0;
	assert_int_equal(sl_store_snapshot_apply_delta_mem(x, delta, len, &idx), 0);
	assert_int_equal(idx, 2);
	assert_int_equal(value_at(x, 5), 1);
	assert_version(x, 5, 10, 2);
	assert_int_equal(value_at(x, 6), 3);
	assert_version(x, 6, 3, 1);
	free(delta);
	sl_store_destroy(x);
	sl_store_destroy(y);
}

/* A fuzzy walk (writes between its steps) plus the writes after its label re-applied is
 * the live store; the same for a delta on top of it. */
struct live {
	struct sl_store *st;
	int next; /* the next write to apply */
	int stop;
};

static void apply_some(void *arg, int step)
{
	(void)step;
	struct live *l = arg;
	for (int k = 0; k < 3 && l->next < l->stop; k++)
		apply_w(l->st, &writes[l->next++]);
}

static void test_fuzzy_walk_replay(void **state)
{
	(void)state;
	make_writes(13);
	struct live l = {.st = all_writes(3, 0, 20), .next = 20, .stop = 40};
	/* base labelled 20: writes 20.. happen during its walk */
	size_t blen = 0;
	uint32_t gen = 0;
	uint8_t *base = walk_image(l.st, 20, 0, 64, apply_some, &l, &blen, &gen);
	assert_true(l.next > 20);
	int delta_label = l.next;
	l.stop = N_WRITES;
	size_t dlen = 0;
	uint8_t *delta =
	    walk_image(l.st, (uint64_t)delta_label, gen + 1, 64, apply_some, &l, &dlen, NULL);
	while (l.next < N_WRITES)
		apply_some(&l, 0);

	/* base + tail */
	struct sl_store *b = mkstore_v(true, 5);
	uint64_t idx = 0;
	assert_int_equal(sl_store_snapshot_read_mem(b, base, blen, &idx), 0);
	assert_int_equal(idx, 20);
	for (int i = (int)idx; i < N_WRITES; i++)
		apply_w(b, &writes[i]);
	assert_same(l.st, b);
	/* base + delta + tail, the tail in reverse order */
	struct sl_store *c = mkstore_v(true, 4);
	assert_int_equal(sl_store_snapshot_read_mem(c, base, blen, NULL), 0);
	assert_int_equal(sl_store_snapshot_apply_delta_mem(c, delta, dlen, &idx), 0);
	assert_int_equal(idx, (uint64_t)delta_label);
	for (int i = N_WRITES - 1; i >= (int)idx; i--)
		apply_w(c, &writes[i]);
	assert_same(l.st, c);
	free(base);
	free(delta);
	sl_store_destroy(l.st);
	sl_store_destroy(b);
	sl_store_destroy(c);
}

/* ---- merge ---- */

/* Replicas a and b took interleaved, conflicting writes of several origins (a: the even
 * ones, b: the odd ones, both some of the others'); merging each other's images gives
 * both the store all writes make, in any order, and merging again changes nothing. */
static void test_merge_commutative(void **state)
{
	(void)state;
	make_writes(14);
	struct sl_store *a = mkstore_v(true, 4), *b = mkstore_v(true, 3);
	for (int i = 0; i < N_WRITES; i++) {
		if (i % 2 == 0 || i % 7 == 0)
			apply_w(a, &writes[i]);
	}
	for (int i = N_WRITES - 1; i >= 0; i--) {
		if (i % 2 == 1 || i % 5 == 0)
			apply_w(b, &writes[i]);
	}
	size_t alen = 0, blen = 0;
	uint8_t *aimg = full_image(a, 100, &alen), *bimg = full_image(b, 200, &blen);
	uint64_t idx = 0;
	assert_int_equal(sl_store_snapshot_merge_mem(a, bimg, blen, &idx), 0);
	assert_int_equal(idx, 200);
	assert_int_equal(sl_store_snapshot_merge_mem(b, aimg, alen, &idx), 0);
	assert_int_equal(idx, 100);
	assert_same(a, b);

	int order[N_WRITES];
	shuffle(order, N_WRITES, 99);
	struct sl_store *all = mkstore_v(true, 5);
	for (int i = 0; i < N_WRITES; i++)
		apply_w(all, &writes[order[i]]);
	assert_same(a, all);

	/* idempotent: both images again, and a's own */
	char *before = dump_store(a);
	assert_int_equal(sl_store_snapshot_merge_mem(a, bimg, blen, NULL), 0);
	assert_int_equal(sl_store_snapshot_merge_mem(a, aimg, alen, NULL), 0);
	char *after = dump_store(a);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* into an empty store: the image's store */
	struct sl_store *e = mkstore_v(true, 4);
	free(aimg);
	aimg = full_image(a, 1, &alen);
	assert_int_equal(sl_store_snapshot_merge_mem(e, aimg, alen, NULL), 0);
	assert_same(a, e);
	free(aimg);
	free(bimg);
	sl_store_destroy(a);
	sl_store_destroy(b);
	sl_store_destroy(all);
	sl_store_destroy(e);
}

/* A delta image merges as well: the chunks it holds, by version. */
static void test_merge_delta(void **state)
{
	(void)state;
	make_writes(15);
	struct sl_store *a = all_writes(4, 0, 30);
	uint32_t gen = 0;
	size_t len = 0;
	free(walk_image(a, 1, 0, IMG_CAP, NULL, NULL, &len, &gen));
	for (int i = 30; i < N_WRITES; i++)
		apply_w(a, &writes[i]);
	uint8_t *delta = walk_image(a, 2, gen + 1, IMG_CAP, NULL, NULL, &len, NULL);
	assert_true((sl_get_u16(delta + 6) & SL_STORE_SNAP_F_DELTA) != 0);
	/* b has the first half already and some of the second, in another order */
	struct sl_store *b = mkstore_v(true, 3);
	for (int i = N_WRITES - 1; i >= 0; i -= (i >= 30 ? 3 : 1))
		apply_w(b, &writes[i]);
	assert_int_equal(sl_store_snapshot_merge_mem(b, delta, len, NULL), 0);
	assert_same(a, b);
	free(delta);
	sl_store_destroy(a);
	sl_store_destroy(b);
}

/* A series the store holds as another type keeps the store's type; the image's samples of
 * it are counted and skipped, the rest merges. */
static void test_merge_type_conflict(void **state)
{
	(void)state;
	struct sl_store *a = mkstore_v(true, 4), *b = mkstore_v(true, 4);
	put1(a, 1, 11, 5, 1);
	static struct write w;
	struct sl_point pts[3] = {mkpt(KEY_A, 1, SL_VAL_I64, 21), mkpt(KEY_A, 2, SL_VAL_I64, 22),
				  mkpt("other,host=z v", 3, SL_VAL_U64, 23)};
	batch_of(&w, pts, 3, 9, 2);
	apply_w(b, &w);
	size_t len = 0;
	uint8_t *img = full_image(b, 1, &len);
	struct sl_store_stats s0, s1;
	sl_store_stats(a, &s0);
	assert_int_equal(sl_store_snapshot_merge_mem(a, img, len, NULL), 0);
	sl_store_stats(a, &s1);
	assert_int_equal(s1.type_conflicts - s0.type_conflicts, 2);
	assert_int_equal(s1.series, 2);
	assert_int_equal(s1.points, 2);
	assert_int_equal(value_at(a, 1), 11);
	assert_version(a, 1, 5, 1);
	struct sl_series_info info;
	assert_int_equal(sl_store_series_info(a, pts[0].series_id, &info), 0);
	assert_int_equal(info.type, SL_VAL_F64);
	assert_int_equal(sl_store_series_info(a, pts[2].series_id, &info), 0);
	assert_int_equal(info.type, SL_VAL_U64);
	free(img);
	sl_store_destroy(a);
	sl_store_destroy(b);
}

/* A damaged image (any byte flipped, truncated, longer) leaves the store exactly as it
 * was: the whole image is checked before anything is applied. */
static void test_merge_damaged_unchanged(void **state)
{
	(void)state;
	make_writes(16);
	struct sl_store *src = all_writes(4, 0, N_WRITES);
	struct sl_store *dst = all_writes(3, N_WRITES / 2, N_WRITES - 5);
	size_t len = 0;
	uint8_t *img = full_image(src, 1, &len);
	uint8_t *bad = malloc(len + 1);
	assert_non_null(bad);
	char *before = dump_store(dst);
	struct sl_store_stats s0, s1;
	sl_store_stats(dst, &s0);
	int tried = 0;
	for (size_t off = 0; off < len; off += 1 + off % 7) {
		memcpy(bad, img, len);
		bad[off] ^= (uint8_t)(1u << (off % 8));
		assert_int_equal(sl_store_snapshot_merge_mem(dst, bad, len, NULL), -EBADMSG);
		tried++;
	}
	assert_true(tried > 100);
	for (size_t cut = 0; cut < len; cut += 1 + cut % 13)
		assert_int_equal(sl_store_snapshot_merge_mem(dst, img, cut, NULL), -EBADMSG);
	memcpy(bad, img, len);
	bad[len] = 0;
	assert_int_equal(sl_store_snapshot_merge_mem(dst, bad, len + 1, NULL), -EBADMSG);
	char *after = dump_store(dst);
	assert_string_equal(before, after);
	sl_store_stats(dst, &s1);
	assert_memory_equal(&s0, &s1, sizeof(s0));

	/* another region: -EINVAL, unchanged */
	struct sl_store_config cfg = {.region_id = REGION + 1, .versioned = true};
	struct sl_store *other = NULL;
	assert_int_equal(sl_store_create(&cfg, &other), 0);
	assert_int_equal(sl_store_snapshot_merge_mem(other, img, len, NULL), -EINVAL);
	sl_store_stats(other, &s1);
	assert_int_equal(s1.series, 0);
	/* and the undamaged image merges */
	assert_int_equal(sl_store_snapshot_merge_mem(dst, img, len, NULL), 0);
	assert_same(src, dst);
	free(before);
	free(after);
	free(img);
	free(bad);
	sl_store_destroy(src);
	sl_store_destroy(dst);
	sl_store_destroy(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lww_by_version),
	    cmocka_unit_test(test_batch_rewrites_point),
	    cmocka_unit_test(test_unversioned_refuses_v),
	    cmocka_unit_test(test_lww_strings),
	    cmocka_unit_test(test_lww_order_independent),
	    cmocka_unit_test(test_image_roundtrip),
	    cmocka_unit_test(test_image_mixed_refused),
	    cmocka_unit_test(test_image_convert),
	    cmocka_unit_test(test_delta_by_version),
	    cmocka_unit_test(test_fuzzy_walk_replay),
	    cmocka_unit_test(test_merge_commutative),
	    cmocka_unit_test(test_merge_delta),
	    cmocka_unit_test(test_merge_type_conflict),
	    cmocka_unit_test(test_merge_damaged_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

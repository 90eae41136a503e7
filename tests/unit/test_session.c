/* test_session.c - cmocka tests of the session protocol: round trip of every message type,
 * every malformed case refused with its own reason, the node's session table (verdicts,
 * eviction, recovery, snapshot) and the client helper, ending with a lossy end-to-end run
 * across a node restart that must apply every batch exactly once and in order. */
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

#include "batch.h"
#include "session.h"
#include "sl_le.h"

#define CLUSTER 0xc1u

/* ---- helpers ------------------------------------------------------------------------ */

/* Bitwise CRC-32C (Castagnoli, reflected 0x82f63b78), independent of the code under test:
 * a client in any language computes the same. */
static uint32_t crc32c_ref(const uint8_t *p, size_t n, uint32_t crc)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return crc;
}

static uint32_t msg_crc_ref(const uint8_t *buf, size_t len)
{
	uint32_t c = crc32c_ref(buf, 16, 0xffffffffu);
	return ~crc32c_ref(buf + 20, len - 20, c);
}

/* After mutating a message: fix its length field (to len) and CRC. */
static void reseal(uint8_t *buf, size_t len)
{
	sl_put_u32(buf + 8, (uint32_t)len);
	sl_put_u32(buf + 16, msg_crc_ref(buf, len));
}

static struct sl_point pt(const char *key, int64_t ts, uint8_t type, uint64_t value)
{
	struct sl_point p = {
	    .key = key, .key_len = (uint16_t)strlen(key), .ts = ts, .type = type, .value = value};
	return p;
}

static uint8_t buf[SL_SESS_MSG_MAX + 64];
static uint8_t buf2[SL_SESS_MSG_MAX + 64];

/* A 3-point batch in buf; returns its length. */
static size_t make_batch(uint64_t sid, uint64_t seq, uint8_t level)
{
	struct sl_sess_writer w;
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, sid, seq, level), 0);
	struct sl_point p[3] = {pt("cpu,host=a usage", -5, SL_VAL_F64, 0x3ff0000000000000ull),
				pt("mem free", 7, SL_VAL_U64, 123),
				pt("t\xc3\xa9st on", 8, SL_VAL_BOOL, 1)};
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl_sess_batch_add(&w, &p[i]), 0);
	return sl_sess_finish(&w);
}

static enum sl_sess_err dec(const uint8_t *b, size_t n, struct sl_sess_msg *m)
{
	return sl_sess_decode(b, n, CLUSTER, m);
}

static void expect_err(const uint8_t *b, size_t n, enum sl_sess_err want)
{
	struct sl_sess_msg m;
	enum sl_sess_err got = dec(b, n, &m);
	if (got != want)
		fail_msg("decode: %s, want %s", sl_sess_err_name(got), sl_sess_err_name(want));
}

/* Encodes m into buf, decodes it back into *out and re-encodes that: same bytes. */
static size_t round_trip(const struct sl_sess_msg *m, struct sl_sess_msg *out)
{
	int n = sl_sess_encode(buf, sizeof buf, m);
	assert_true(n >= (int)SL_SESS_HDR_BYTES);
	assert_int_equal(dec(buf, (size_t)n, out), SL_SESS_OK);
	assert_int_equal(out->type, m->type);
	assert_int_equal(out->cluster_id, CLUSTER);
	assert_int_equal(sl_sess_encode(buf2, sizeof buf2, out), n);
	assert_memory_equal(buf, buf2, (size_t)n);
	assert_int_equal(sl_get_u32(buf + 16), msg_crc_ref(buf, (size_t)n));
	return (size_t)n;
}

/* ---- codec -------------------------------------------------------------------------- */

static void test_crc_is_standard_crc32c(void **state)
{
	(void)state;
	/* the RFC 3720 check value, so the spec's "standard CRC-32C" is what we test against */
	assert_int_equal(~crc32c_ref((const uint8_t *)"123456789", 9, 0xffffffffu), 0xe3069283u);
	size_t n = make_batch(9, 1, 1);
	assert_int_equal(sl_get_u32(buf + 16), msg_crc_ref(buf, n));
	assert_int_equal(sl_get_u32(buf), SL_SESS_MAGIC);
	assert_memory_equal(buf, "SLSP", 4);
}

static void test_round_trip_fixed_messages(void **state)
{
	(void)state;
	struct sl_sess_msg m = {.cluster_id = CLUSTER}, o;

	m.type = SL_SESS_OPEN;
	m.u.open = (struct sl_sess_open){.session_id = 0x1122334455667788ull, .next_seq = 42};
	assert_int_equal(round_trip(&m, &o), 20 + 16);
	assert_true(o.u.open.session_id == m.u.open.session_id && o.u.open.next_seq == 42);

	m.type = SL_SESS_OPEN_OK;
	m.u.open_ok = (struct sl_sess_open_ok){.session_id = 5,
					       .next_seq = 10,
					       .durable_seq = 8,
					       .incarnation = 77,
					       .window = 1024,
					       .status = SL_SESS_ST_RESUMED};
	assert_int_equal(round_trip(&m, &o), 20 + 40);
	assert_memory_equal(&o.u.open_ok.next_seq, &m.u.open_ok.next_seq, 8);
	assert_int_equal(o.u.open_ok.durable_seq, 8);
	assert_int_equal(o.u.open_ok.incarnation, 77);
	assert_int_equal(o.u.open_ok.window, 1024);
	assert_int_equal(o.u.open_ok.status, SL_SESS_ST_RESUMED);

	m.type = SL_SESS_ACK;
	m.u.ack = (struct sl_sess_ack){.session_id = 5,
				       .seq = 9,
				       .expected_seq = 12,
				       .count_stored = 300,
				       .status = SL_SESS_ST_REJECTED_POINTS,
				       .level = 1};
	assert_int_equal(round_trip(&m, &o), 20 + 32);
	assert_int_equal(o.u.ack.seq, 9);
	assert_int_equal(o.u.ack.expected_seq, 12);
	assert_int_equal(o.u.ack.count_stored, 300);
	assert_int_equal(o.u.ack.status, SL_SESS_ST_REJECTED_POINTS);
	assert_int_equal(o.u.ack.level, 1);

	m.type = SL_SESS_CLOSE;
	m.u.close.session_id = 5;
	assert_int_equal(round_trip(&m, &o), 28);
	assert_int_equal(o.u.close.session_id, 5);

	m.type = SL_SESS_CLOSE_OK;
	m.u.close_ok = (struct sl_sess_close_ok){.session_id = 5, .status = SL_SESS_ST_BUSY};
	assert_int_equal(round_trip(&m, &o), 36);
	assert_int_equal(o.u.close_ok.status, SL_SESS_ST_BUSY);

	m.type = SL_SESS_ERROR;
	m.u.error = (struct sl_sess_error){.ref_id = 99,
					   .code = SL_SESS_ERR_BAD_UTF8,
					   .ref_type = SL_SESS_BATCH,
					   .text = "bad key \xe2\x82\xac",
					   .text_len = 11};
	assert_int_equal(round_trip(&m, &o), 20 + 14 + 11);
	assert_int_equal(o.u.error.code, SL_SESS_ERR_BAD_UTF8);
	assert_int_equal(o.u.error.ref_type, SL_SESS_BATCH);
	assert_int_equal(o.u.error.ref_id, 99);
	assert_int_equal(o.u.error.text_len, 11);
	assert_memory_equal(o.u.error.text, "bad key \xe2\x82\xac", 11);

	m.type = SL_SESS_READ;
	m.u.read = (struct sl_sess_read){.request_id = 3,
					 .from_ts = -100,
					 .to_ts = 100,
					 .cont_ts = 50,
					 .cont = true,
					 .max_points = 10,
					 .level = SL_SESS_READ_DURABLE,
					 .key = "cpu usage",
					 .key_len = 9};
	assert_int_equal(round_trip(&m, &o), 20 + 40 + 9);
	assert_true(o.u.read.cont && o.u.read.cont_ts == 50 && o.u.read.from_ts == -100);
	assert_int_equal(o.u.read.to_ts, 100);
	assert_int_equal(o.u.read.max_points, 10);
	assert_int_equal(o.u.read.level, SL_SESS_READ_DURABLE);
	assert_memory_equal(o.u.read.key, "cpu usage", 9);
	assert_int_equal(sl_get_u16(buf + 6), SL_SESS_F_CONTINUE);
}

static void test_round_trip_batch_and_points(void **state)
{
	(void)state;
	size_t n = make_batch(0xabcdef, 77, SL_SESS_LEVEL_MAJORITY);
	struct sl_sess_msg m;
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);
	assert_int_equal(m.type, SL_SESS_BATCH);
	assert_int_equal(m.u.batch.session_id, 0xabcdef);
	assert_int_equal(m.u.batch.seq, 77);
	assert_int_equal(m.u.batch.level, SL_SESS_LEVEL_MAJORITY);
	assert_int_equal(m.u.batch.count, 3);

	const char *keys[3] = {"cpu,host=a usage", "mem free", "t\xc3\xa9st on"};
	const int64_t ts[3] = {-5, 7, 8};
	const uint8_t types[3] = {SL_VAL_F64, SL_VAL_U64, SL_VAL_BOOL};
	const uint64_t vals[3] = {0x3ff0000000000000ull, 123, 1};
	struct sl_sess_point_iter it;
	struct sl_point p;
	sl_sess_points_init(&it, &m.u.batch);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sl_sess_points_next(&it, &p), 1);
		assert_int_equal(p.key_len, strlen(keys[i]));
		assert_memory_equal(p.key, keys[i], p.key_len);
		/* zero copy: the key is in the datagram */
		assert_true((const uint8_t *)p.key > buf && (const uint8_t *)p.key < buf + n);
		assert_int_equal(p.series_id, sl_series_id(keys[i], strlen(keys[i])));
		assert_int_equal(p.ts, ts[i]);
		assert_int_equal(p.type, types[i]);
		assert_int_equal(p.value, vals[i]);
		assert_null(p.str);
		assert_int_equal(sl_batch_point_check(&p), 0);
	}
	assert_int_equal(sl_sess_points_next(&it, &p), 0);

	/* re-encoding a decoded batch (e.g. to forward it) gives the same bytes */
	assert_int_equal(sl_sess_encode(buf2, sizeof buf2, &m), (int)n);
	assert_memory_equal(buf, buf2, n);

	/* an empty batch is valid (it only advances the sequence) */
	struct sl_sess_writer w;
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, 1, 1), 0);
	n = sl_sess_finish(&w);
	assert_int_equal(n, SL_SESS_HDR_BYTES + SL_SESS_BATCH_FIXED_BYTES);
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);
	assert_int_equal(m.u.batch.count, 0);
}

static void test_batch_limits(void **state)
{
	(void)state;
	struct sl_sess_writer w;
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, 1, 1), 0);
	struct sl_point p = pt("k", 0, SL_VAL_I64, (uint64_t)-1);
	for (uint32_t i = 0; i < SL_SESS_BATCH_POINTS_MAX; i++) {
		p.ts = i;
		assert_int_equal(sl_sess_batch_add(&w, &p), 0);
	}
	assert_int_equal(sl_sess_batch_add(&w, &p), -ENOSPC);
	size_t n = sl_sess_finish(&w);
	assert_true(n <= SL_SESS_MSG_MAX);
	struct sl_sess_msg m;
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);
	assert_int_equal(m.u.batch.count, SL_SESS_BATCH_POINTS_MAX);

	/* a big key runs out of bytes first: the writer stops, unchanged, at the limit */
	char key[SL_KEY_MAX];
	memset(key, 'x', sizeof key);
	struct sl_point big = {.key = key, .key_len = SL_KEY_MAX, .type = SL_VAL_F64};
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, 1, 1), 0);
	uint32_t k = 0;
	while (sl_sess_batch_add(&w, &big) == 0)
		k++;
	assert_int_equal(k, (SL_SESS_MSG_MAX - 44) / (19 + SL_KEY_MAX));
	n = sl_sess_finish(&w);
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);
	assert_int_equal(m.u.batch.count, k);

	/* a small caller buffer is respected */
	assert_int_equal(sl_sess_batch_begin(&w, buf, 50, CLUSTER, 1, 1, 1), 0);
	assert_int_equal(sl_sess_batch_add(&w, &big), -ENOSPC);
	assert_int_equal(sl_sess_batch_begin(&w, buf, 10, CLUSTER, 1, 1, 1), -ENOSPC);

	/* the writer refuses what the decoder would */
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 0, 1, 1), -EINVAL);
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, 0, 1), -EINVAL);
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, UINT64_MAX, 1),
			 -EINVAL);
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, 1, 3), -EINVAL);
	assert_int_equal(sl_sess_batch_begin(&w, buf, sizeof buf, CLUSTER, 1, 1, 1), 0);
	struct sl_point bad[] = {pt("", 0, SL_VAL_F64, 0), pt("k", 0, 0, 0),
				 pt("k", 0, SL_VAL_STR, 0), pt("k", 0, SL_VAL_BOOL, 2),
				 pt("\xc0\x80", 0, SL_VAL_F64, 0)};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sl_sess_batch_add(&w, &bad[i]), -EINVAL);
	big.key_len = SL_KEY_MAX + 1;
	assert_int_equal(sl_sess_batch_add(&w, &big), -EINVAL);
	assert_int_equal(w.count, 0);
}

static void test_read_result(void **state)
{
	(void)state;
	struct sl_sess_writer w;
	assert_int_equal(
	    sl_sess_result_begin(&w, buf, sizeof buf, CLUSTER, 7, SL_SESS_ST_OK, SL_VAL_I64), 0);
	for (int64_t t = 0; t < 10; t++)
		assert_int_equal(sl_sess_result_add(&w, t * 10, (uint64_t)(-t)), 0);
	assert_int_equal(sl_sess_result_add(&w, 90, 0), -EINVAL); /* not increasing */
	sl_sess_result_more(&w, 90);
	size_t n = sl_sess_finish(&w);
	struct sl_sess_msg m;
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);
	const struct sl_sess_result *r = &m.u.result;
	assert_int_equal(r->request_id, 7);
	assert_int_equal(r->count, 10);
	assert_true(r->more);
	assert_int_equal(r->cont_ts, 90);
	assert_int_equal(r->type, SL_VAL_I64);
	for (uint32_t i = 0; i < 10; i++) {
		int64_t ts;
		uint64_t v;
		sl_sess_result_pair(r, i, &ts, &v);
		assert_int_equal(ts, (int64_t)i * 10);
		assert_int_equal(v, (uint64_t) - (int64_t)i);
	}
	assert_int_equal(sl_sess_encode(buf2, sizeof buf2, &m), (int)n);
	assert_memory_equal(buf, buf2, n);

	/* the most a datagram holds */
	assert_int_equal(
	    sl_sess_result_begin(&w, buf, sizeof buf, CLUSTER, 7, SL_SESS_ST_OK, SL_VAL_BOOL), 0);
	assert_int_equal(sl_sess_result_add(&w, 0, 2), -EINVAL);
	int64_t t = 0;
	while (sl_sess_result_add(&w, t, 1) == 0)
		t++;
	assert_int_equal(t, SL_SESS_RESULT_POINTS_MAX);
	n = sl_sess_finish(&w);
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);

	/* a refusal carries no points */
	assert_int_equal(
	    sl_sess_result_begin(&w, buf, sizeof buf, CLUSTER, 8, SL_SESS_ST_NOT_FOUND, 0), 0);
	assert_int_equal(sl_sess_result_add(&w, 1, 1), -EINVAL);
	n = sl_sess_finish(&w);
	assert_int_equal(dec(buf, n, &m), SL_SESS_OK);
	assert_int_equal(m.u.result.status, SL_SESS_ST_NOT_FOUND);
	assert_int_equal(
	    sl_sess_result_begin(&w, buf, sizeof buf, CLUSTER, 8, SL_SESS_ST_DUPLICATE, 0),
	    -EINVAL);
}

/* Every message type, cut at every length, is TRUNCATED. */
static void test_truncated_every_length(void **state)
{
	(void)state;
	static uint8_t sample[SL_SESS_MSG_MAX];
	for (int type = SL_SESS_OPEN; type <= SL_SESS_ERROR; type++) {
		struct sl_sess_msg m = {.type = (uint8_t)type, .cluster_id = CLUSTER};
		int n;
		if (type == SL_SESS_BATCH) {
			n = (int)make_batch(1, 1, 1);
		} else if (type == SL_SESS_READ_RESULT) {
			struct sl_sess_writer w;
			sl_sess_result_begin(&w, buf, sizeof buf, CLUSTER, 1, 0, SL_VAL_F64);
			sl_sess_result_add(&w, 1, 2);
			n = (int)sl_sess_finish(&w);
		} else {
			if (type == SL_SESS_OPEN)
				m.u.open = (struct sl_sess_open){.session_id = 1, .next_seq = 1};
			if (type == SL_SESS_OPEN_OK)
				m.u.open_ok = (struct sl_sess_open_ok){
				    .session_id = 1, .next_seq = 1, .window = 1};
			if (type == SL_SESS_ACK)
				m.u.ack = (struct sl_sess_ack){.session_id = 1, .seq = 1};
			if (type == SL_SESS_READ)
				m.u.read = (struct sl_sess_read){.key = "k", .key_len = 1};
			if (type == SL_SESS_CLOSE)
				m.u.close = (struct sl_sess_close){.session_id = 1};
			if (type == SL_SESS_CLOSE_OK)
				m.u.close_ok = (struct sl_sess_close_ok){.session_id = 1};
			if (type == SL_SESS_ERROR)
				m.u.error =
				    (struct sl_sess_error){.code = 1, .text = "x", .text_len = 1};
			n = sl_sess_encode(buf, sizeof buf, &m);
		}
		assert_true(n > 20);
		memcpy(sample, buf, (size_t)n);
		expect_err(sample, (size_t)n, SL_SESS_OK);
		for (int k = 0; k < n; k++)
			expect_err(sample, (size_t)k, SL_SESS_ERR_TRUNCATED);
	}
}

/* ROUTES and ROUTES_OK: a request id; per region its range, protocol and home. The
 * ranges must ascend and cover the hash space; homes are node ids; reserved bytes 0. */
static void test_routes(void **state)
{
	(void)state;
	struct sl_sess_msg m = {.type = SL_SESS_ROUTES, .cluster_id = CLUSTER}, out;
	m.u.routes_req.request_id = 77;
	round_trip(&m, &out);
	assert_int_equal(out.u.routes_req.request_id, 77);

	uint8_t routes[3 * SL_SESS_ROUTE_BYTES];
	const struct sl_sess_route want[3] = {
	    {0, 1000, 2, SL_SESS_PROTO_RAFT},
	    {1001, UINT64_MAX / 2, 0, SL_SESS_PROTO_RAFT},
	    {UINT64_MAX / 2 + 1, UINT64_MAX, 3, SL_SESS_PROTO_MULTILEADER}};
	for (uint32_t i = 0; i < 3; i++)
		sl_sess_route_put(routes, i, &want[i]);
	m = (struct sl_sess_msg){.type = SL_SESS_ROUTES_OK, .cluster_id = CLUSTER};
	m.u.routes = (struct sl_sess_routes){78, 1, 3, routes};
	size_t n = round_trip(&m, &out);
	assert_int_equal(n, SL_SESS_HDR_BYTES + SL_SESS_ROUTES_FIXED_BYTES + 3 * SL_SESS_ROUTE_BYTES);
	assert_int_equal(out.u.routes.request_id, 78);
	assert_int_equal(out.u.routes.node, 1);
	assert_int_equal(out.u.routes.n_regions, 3);
	for (uint32_t i = 0; i < 3; i++) {
		struct sl_sess_route r;
		sl_sess_route(&out.u.routes, i, &r);
		assert_true(r.hash_lo == want[i].hash_lo && r.hash_hi == want[i].hash_hi);
		assert_int_equal(r.home, want[i].home);
		assert_int_equal(r.protocol, want[i].protocol);
	}
	/* refused: a gap, a last range short of 2^64-1, a home beyond node ids, an unknown
	 * protocol, a reserved byte set, a count that disagrees with the length, no region */
	const size_t body = SL_SESS_HDR_BYTES, r0 = body + SL_SESS_ROUTES_FIXED_BYTES;
	memcpy(buf2, buf, n);
	for (int k = 0; k < 7; k++) {
		memcpy(buf, buf2, n);
		size_t len = n;
		enum sl_sess_err e = SL_SESS_ERR_BAD_FIELD;
		if (k == 0)
			sl_put_u64(buf + r0 + SL_SESS_ROUTE_BYTES, 1002); /* region 1 starts late */
		else if (k == 1)
			sl_put_u64(buf + r0 + 2 * SL_SESS_ROUTE_BYTES + 8, UINT64_MAX - 1);
		else if (k == 2)
			sl_put_u32(buf + r0 + 16, 70000);
		else if (k == 3)
			buf[r0 + 20] = 9;
		else if (k == 4)
			buf[r0 + 23] = 1;
		else if (k == 5) {
			sl_put_u16(buf + body + 12, 2);
			e = SL_SESS_ERR_BAD_LENGTH;
		} else {
			sl_put_u16(buf + body + 12, 0);
			len = r0;
			sl_put_u32(buf + 8, (uint32_t)len);
		}
		reseal(buf, len);
		expect_err(buf, len, e);
	}
}

static void test_header_errors(void **state)
{
	(void)state;
	size_t n = make_batch(1, 1, 1);
	memcpy(buf2, buf, n);
#define RESTORE() memcpy(buf, buf2, n)

	buf[0] ^= 1;
	expect_err(buf, n, SL_SESS_ERR_BAD_MAGIC);
	RESTORE();
	buf[4] = 2;
	reseal(buf, n);
	expect_err(buf, n, SL_SESS_ERR_BAD_VERSION);
	RESTORE();

	/* any flipped bit anywhere, header or body or the CRC itself */
	for (size_t i = 8; i < n; i++) {
		if (i >= 8 && i < 12)
			continue; /* the length field has its own checks */
		buf[i] ^= 0x10;
		expect_err(buf, n, SL_SESS_ERR_BAD_CRC);
		RESTORE();
	}

	/* a valid frame of another cluster; a corrupt one is a CRC error first */
	struct sl_sess_msg m;
	assert_int_equal(sl_sess_decode(buf, n, CLUSTER + 1, &m), SL_SESS_ERR_WRONG_CLUSTER);
	sl_put_u32(buf + 12, CLUSTER + 1);
	expect_err(buf, n, SL_SESS_ERR_BAD_CRC);
	reseal(buf, n);
	expect_err(buf, n, SL_SESS_ERR_WRONG_CLUSTER);
	RESTORE();

	/* lengths: trailing bytes, a length field below the header, oversize */
	buf[n] = 0;
	expect_err(buf, n + 1, SL_SESS_ERR_BAD_LENGTH);
	sl_put_u32(buf + 8, 10);
	expect_err(buf, n, SL_SESS_ERR_BAD_LENGTH);
	RESTORE();
	sl_put_u32(buf + 8, SL_SESS_MSG_MAX + 1);
	expect_err(buf, n, SL_SESS_ERR_OVERSIZE);
	RESTORE();
	static uint8_t huge[SL_SESS_MSG_MAX + 1];
	memcpy(huge, buf, n);
	expect_err(huge, sizeof huge, SL_SESS_ERR_OVERSIZE);

	/* type and flags */
	for (int t = 0; t < 256; t++) {
		if (t >= SL_SESS_OPEN && t <= SL_SESS_TYPE_MAX)
			continue;
		buf[5] = (uint8_t)t;
		reseal(buf, n);
		expect_err(buf, n, SL_SESS_ERR_BAD_TYPE);
	}
	RESTORE();
	sl_put_u16(buf + 6, 1);
	reseal(buf, n);
	expect_err(buf, n, SL_SESS_ERR_BAD_FLAGS);
	RESTORE();
	expect_err(buf, n, SL_SESS_OK);
	expect_err(NULL, 0, SL_SESS_ERR_TRUNCATED);
#undef RESTORE
}

/* Offsets inside make_batch()'s message. */
#define B_BODY 20u
#define B_P0 (B_BODY + 24u) /* first point: key_len u16 | key (16 bytes) | ts | type | value */
#define B_P0_TYPE (B_P0 + 2u + 16u + 8u)
#define B_P2 (B_P0 + 19u + 16u + 19u + 8u) /* third point: key "t\xc3\xa9st on" (8 bytes) */
#define B_P2_VALUE (B_P2 + 2u + 8u + 8u + 1u)

static void expect_batch_err(size_t n, size_t off, const void *bytes, size_t len,
			     enum sl_sess_err want)
{
	size_t total = make_batch(1, 1, 1);
	assert_int_equal(total, n);
	memcpy(buf + off, bytes, len);
	reseal(buf, n);
	expect_err(buf, n, want);
}

static void test_batch_errors(void **state)
{
	(void)state;
	size_t n = make_batch(1, 1, 1);
	uint8_t b8[8] = {0};
	uint8_t b4[4];

	/* fields */
	expect_batch_err(n, B_BODY, b8, 8, SL_SESS_ERR_BAD_FIELD);     /* session 0 */
	expect_batch_err(n, B_BODY + 8, b8, 8, SL_SESS_ERR_BAD_FIELD); /* seq 0 */
	memset(b8, 0xff, 8);
	expect_batch_err(n, B_BODY + 8, b8, 8, SL_SESS_ERR_BAD_FIELD);	    /* seq max */
	expect_batch_err(n, B_BODY + 20, "\x03", 1, SL_SESS_ERR_BAD_FIELD); /* level 3 */
	expect_batch_err(n, B_BODY + 22, "\x01", 1, SL_SESS_ERR_BAD_FIELD); /* reserved */
	expect_batch_err(n, 6, "\x01", 1, SL_SESS_ERR_BAD_FLAGS);

	/* counts */
	sl_put_u32(b4, SL_SESS_BATCH_POINTS_MAX + 1);
	expect_batch_err(n, B_BODY + 16, b4, 4, SL_SESS_ERR_TOO_MANY_POINTS);
	sl_put_u32(b4, UINT32_MAX);
	expect_batch_err(n, B_BODY + 16, b4, 4, SL_SESS_ERR_TOO_MANY_POINTS);
	for (uint32_t c = 0; c < 10; c++) {
		if (c == 3)
			continue;
		sl_put_u32(b4, c);
		expect_batch_err(n, B_BODY + 16, b4, 4, SL_SESS_ERR_BAD_COUNT);
	}
	/* a body cut short of the fixed part */
	make_batch(1, 1, 1);
	reseal(buf, B_BODY + 23);
	expect_err(buf, B_BODY + 23, SL_SESS_ERR_BAD_LENGTH);
	/* a point cut in its middle, length fixed up: the count no longer matches */
	make_batch(1, 1, 1);
	reseal(buf, n - 3);
	expect_err(buf, n - 3, SL_SESS_ERR_BAD_COUNT);

	/* keys */
	expect_batch_err(n, B_P0, "\x00\x00", 2, SL_SESS_ERR_BAD_KEY);
	expect_batch_err(n, B_P0, "\x01\x01", 2, SL_SESS_ERR_BAD_KEY); /* 257 */
	expect_batch_err(n, B_P0, "\xff\xff", 2, SL_SESS_ERR_BAD_KEY);
	expect_batch_err(n, B_P0, "\x00\x01", 2, SL_SESS_ERR_BAD_COUNT); /* 256: past the end */

	/* UTF-8: overlong, surrogate, above U+10FFFF, lone continuation, cut sequence, 0xff */
	const char *bad_utf8[] = {
	    "\xc0\x80",		"\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	    "\xf5\x80\x80\x80", "\x80",	    "\xbf",	    "\xe2\x82",	    "\xff",
	    "\xf0\x9f\x98"};
	for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
		expect_batch_err(n, B_P0 + 2 + 4, bad_utf8[i], strlen(bad_utf8[i]),
				 SL_SESS_ERR_BAD_UTF8);
	/* the largest valid forms of each length pass */
	const char *good_utf8[] = {
	    "\x7f",	   "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xf0\x9f\x98\x80",
	    "\xed\x9f\xbf"};
	for (size_t i = 0; i < sizeof good_utf8 / sizeof good_utf8[0]; i++)
		expect_batch_err(n, B_P0 + 2 + 4, good_utf8[i], strlen(good_utf8[i]), SL_SESS_OK);

	/* point types and values */
	expect_batch_err(n, B_P0_TYPE, "\x00", 1, SL_SESS_ERR_BAD_POINT);
	expect_batch_err(n, B_P0_TYPE, "\x05", 1, SL_SESS_ERR_BAD_POINT); /* no strings here */
	expect_batch_err(n, B_P0_TYPE, "\xff", 1, SL_SESS_ERR_BAD_POINT);
	expect_batch_err(n, B_P2_VALUE, "\x02", 1, SL_SESS_ERR_BAD_POINT); /* bool 2 */
	expect_batch_err(n, B_P2_VALUE + 7, "\x01", 1, SL_SESS_ERR_BAD_POINT);
	expect_batch_err(n, B_P2_VALUE, "\x00", 1, SL_SESS_OK);
}

static void test_other_field_errors(void **state)
{
	(void)state;
	struct sl_sess_msg m = {.cluster_id = CLUSTER};

	/* the encoder refuses what the decoder would */
	m.type = SL_SESS_OPEN;
	m.u.open = (struct sl_sess_open){.session_id = 0, .next_seq = 1};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.open = (struct sl_sess_open){.session_id = 1, .next_seq = 0};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.open.next_seq = 1;
	assert_int_equal(sl_sess_encode(buf, 35, &m), -ENOSPC);
	assert_int_equal(sl_sess_encode(buf, 36, &m), 36);

	m.type = SL_SESS_ACK;
	m.u.ack = (struct sl_sess_ack){.session_id = 1, .seq = 1, .status = SL_SESS_ST_RESUMED};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.ack.status = SL_SESS_ST_COUNT;
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.ack.status = SL_SESS_ST_OK;
	m.u.ack.level = 3;
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);

	m.type = SL_SESS_OPEN_OK;
	m.u.open_ok =
	    (struct sl_sess_open_ok){.session_id = 1, .next_seq = 5, .durable_seq = 5, .window = 1};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL); /* durable >= next */
	m.u.open_ok.durable_seq = 4;
	m.u.open_ok.status = SL_SESS_ST_DUPLICATE;
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);

	m.type = SL_SESS_READ;
	m.u.read = (struct sl_sess_read){.from_ts = 5, .to_ts = 4, .key = "k", .key_len = 1};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.read.to_ts = 5;
	m.u.read.cont_ts = 5; /* without CONTINUE the field must be 0 */
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.read.cont = true;
	assert_true(sl_sess_encode(buf, sizeof buf, &m) > 0);
	m.u.read.cont_ts = 6;
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.read = (struct sl_sess_read){.key = "\xed\xa0\x80", .key_len = 3};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.read = (struct sl_sess_read){.key = "k", .key_len = 0};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.read = (struct sl_sess_read){.key = NULL, .key_len = 3}; /* missing, not a crash */
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.read = (struct sl_sess_read){.key = "k", .key_len = 1, .level = 4};
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	/* decoder side: key_len says more than the message holds */
	m.u.read.level = 0;
	int n = sl_sess_encode(buf, sizeof buf, &m);
	assert_true(n > 0);
	sl_put_u16(buf + 20 + 38, 2);
	reseal(buf, (size_t)n);
	expect_err(buf, (size_t)n, SL_SESS_ERR_BAD_LENGTH);

	static char text[SL_SESS_ERROR_TEXT_MAX + 1];
	memset(text, 'e', sizeof text);
	m.type = SL_SESS_ERROR;
	m.u.error = (struct sl_sess_error){
	    .code = SL_SESS_ERR_BAD_CRC, .text = text, .text_len = SL_SESS_ERROR_TEXT_MAX};
	assert_true(sl_sess_encode(buf, sizeof buf, &m) > 0);
	m.u.error.text_len++;
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);
	m.u.error.text_len = 1;
	m.u.error.code = SL_SESS_OK;
	assert_int_equal(sl_sess_encode(buf, sizeof buf, &m), -EINVAL);

	/* READ_RESULT: ts going backwards, points with a refusal, bad type */
	struct sl_sess_writer w;
	sl_sess_result_begin(&w, buf, sizeof buf, CLUSTER, 1, SL_SESS_ST_OK, SL_VAL_F64);
	sl_sess_result_add(&w, 1, 0);
	sl_sess_result_add(&w, 2, 0);
	size_t rn = sl_sess_finish(&w);
	memcpy(buf2, buf, rn);
	sl_put_u64(buf + 20 + 24 + 16, 1); /* second ts = first */
	reseal(buf, rn);
	expect_err(buf, rn, SL_SESS_ERR_BAD_POINT);
	memcpy(buf, buf2, rn);
	buf[20 + 20] = SL_SESS_ST_NOT_FOUND;
	reseal(buf, rn);
	expect_err(buf, rn, SL_SESS_ERR_BAD_FIELD);
	memcpy(buf, buf2, rn);
	buf[20 + 21] = 9;
	reseal(buf, rn);
	expect_err(buf, rn, SL_SESS_ERR_BAD_POINT);
	memcpy(buf, buf2, rn);
	sl_put_u32(buf + 20 + 16, 3);
	reseal(buf, rn);
	expect_err(buf, rn, SL_SESS_ERR_BAD_COUNT);
	memcpy(buf, buf2, rn);
	sl_put_u32(buf + 20 + 16, SL_SESS_RESULT_POINTS_MAX + 1);
	reseal(buf, rn);
	expect_err(buf, rn, SL_SESS_ERR_TOO_MANY_POINTS);
	memcpy(buf, buf2, rn);
	sl_put_u64(buf + 20 + 8, 1); /* cont_ts without MORE */
	reseal(buf, rn);
	expect_err(buf, rn, SL_SESS_ERR_BAD_FIELD);

	/* a fixed-size message with a byte too many */
	m.type = SL_SESS_CLOSE;
	m.u.close.session_id = 1;
	n = sl_sess_encode(buf, sizeof buf, &m);
	buf[n] = 0;
	reseal(buf, (size_t)n + 1);
	expect_err(buf, (size_t)n + 1, SL_SESS_ERR_BAD_LENGTH);

	uint8_t type;
	uint64_t ref;
	sl_sess_peek_ref(buf, (size_t)n, &type, &ref);
	assert_int_equal(type, SL_SESS_CLOSE);
	assert_int_equal(ref, 1);
	sl_sess_peek_ref(buf, 3, &type, &ref);
	assert_int_equal(type, 0);
	assert_int_equal(ref, 0);
}

static void test_names(void **state)
{
	(void)state;
	for (int i = 0; i < SL_SESS_ERR_COUNT; i++) {
		assert_string_not_equal(sl_sess_err_name(i), "unknown");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(sl_sess_err_name(i), sl_sess_err_name(j));
	}
	for (int i = 0; i < SL_SESS_ST_COUNT; i++)
		assert_string_not_equal(sl_sess_status_name(i), "unknown");
	for (int i = SL_SESS_OPEN; i <= SL_SESS_TYPE_MAX; i++)
		assert_string_not_equal(sl_sess_type_name(i), "unknown");
	assert_string_equal(sl_sess_err_name(-1), "unknown");
	assert_string_equal(sl_sess_err_name(SL_SESS_ERR_COUNT), "unknown");
	assert_string_equal(sl_sess_status_name(SL_SESS_ST_COUNT), "unknown");
	assert_string_equal(sl_sess_type_name(0), "unknown");
	assert_string_equal(sl_sess_err_name(SL_SESS_ERR_WRONG_CLUSTER), "wrong_cluster");
}

/* ---- session table ------------------------------------------------------------------ */

static uint64_t table_mem[1 << 16];
#define HOLD_MAX 64 /* cookies 0..63 */

static void table_init(struct sl_sess_table *t, uint32_t capacity, uint32_t window)
{
	struct sl_sess_config cfg = {.capacity = capacity,
				     .window = window,
				     .idle_timeout_ns = 1000,
				     .keep_min_ns = 100,
				     .incarnation = 5,
				     .hash_seed = 0x5eed,
				     .hold_max = HOLD_MAX};
	size_t need = sl_sess_table_mem_bytes(capacity, HOLD_MAX);
	assert_true(need > 0 && need <= sizeof table_mem);
	assert_int_equal(sl_sess_table_init(t, table_mem, need, &cfg), 0);
}

static void open_sess(struct sl_sess_table *t, uint64_t id, uint64_t next, int64_t now,
		      uint8_t want_status)
{
	struct sl_sess_open o = {.session_id = id, .next_seq = next};
	struct sl_sess_open_ok r;
	sl_sess_on_open(t, &o, now, &r);
	assert_int_equal(r.status, want_status);
	assert_int_equal(r.session_id, id);
}

static enum sl_sess_verdict batch(struct sl_sess_table *t, uint64_t id, uint64_t seq, uint8_t level,
				  struct sl_sess_decision *d)
{
	sl_sess_on_batch(t, id, seq, level, 0, d);
	return d->verdict;
}

/* Completion in order (logged at once), then its record durable. */
static void durable(struct sl_sess_table *t, uint64_t id, uint64_t seq)
{
	assert_int_equal(sl_sess_on_complete(t, id, seq, SL_SESS_LEVEL_MAJORITY, 0),
			 SL_SESS_DONE_RECORD);
	struct sl_sess_outcome o = {
	    .count_stored = 3, .status = SL_SESS_ST_OK, .level_req = 2, .level_reached = 1};
	struct sl_sess_ack a;
	assert_int_equal(sl_sess_on_durable(t, id, seq, &o, &a), 1);
}

static void test_table_init_errors(void **state)
{
	(void)state;
	struct sl_sess_table t;
	struct sl_sess_config cfg = {.capacity = 4, .window = 8};
	size_t need = sl_sess_table_mem_bytes(4, 0);
	assert_int_equal(sl_sess_table_mem_bytes(0, 0), 0);
	assert_true(sl_sess_table_mem_bytes(4, 10) > need); /* room for the holds */
	assert_int_equal(sl_sess_table_init(&t, table_mem, need - 1, &cfg), -EINVAL);
	assert_int_equal(sl_sess_table_init(&t, (uint8_t *)table_mem + 4, need, &cfg), -EINVAL);
	cfg.window = 0;
	assert_int_equal(sl_sess_table_init(&t, table_mem, need, &cfg), -EINVAL);
	cfg.window = 8;
	cfg.keep_min_ns = 1; /* longer than the idle timeout */
	assert_int_equal(sl_sess_table_init(&t, table_mem, need, &cfg), -EINVAL);
	cfg.keep_min_ns = 0;
	cfg.capacity = 0;
	assert_int_equal(sl_sess_table_init(&t, table_mem, need, &cfg), -EINVAL);
	cfg.capacity = 4;
	assert_int_equal(sl_sess_table_init(&t, table_mem, need, &cfg), 0);
}

static void test_table_verdicts(void **state)
{
	(void)state;
	struct sl_sess_table t;
	struct sl_sess_decision d;
	table_init(&t, 8, 4);

	/* unknown: replied even at level 0, so a fire-and-forget sender learns to OPEN */
	assert_int_equal(batch(&t, 1, 1, 1, &d), SL_SESS_UNKNOWN);
	assert_true(d.reply);
	assert_int_equal(d.ack.status, SL_SESS_ST_UNKNOWN_SESSION);
	assert_int_equal(batch(&t, 1, 1, 0, &d), SL_SESS_UNKNOWN);
	assert_true(d.reply);

	open_sess(&t, 1, 10, 0, SL_SESS_ST_OK);
	assert_int_equal(batch(&t, 1, 10, 1, &d), SL_SESS_ACCEPT);
	assert_false(d.reply);
	assert_int_equal(batch(&t, 1, 11, 1, &d), SL_SESS_ACCEPT);
	/* a retransmission of an in-flight batch is dropped without a reply */
	assert_int_equal(batch(&t, 1, 10, 1, &d), SL_SESS_IN_FLIGHT);
	assert_false(d.reply);
	/* ahead: resend from 12; beyond the window (4): counted apart */
	assert_int_equal(batch(&t, 1, 13, 1, &d), SL_SESS_OUT_OF_ORDER);
	assert_true(d.reply);
	assert_int_equal(d.ack.status, SL_SESS_ST_OUT_OF_ORDER);
	assert_int_equal(d.ack.expected_seq, 12);
	assert_int_equal(batch(&t, 1, 15, 1, &d), SL_SESS_OUT_OF_ORDER);
	assert_int_equal(batch(&t, 1, 16, 1, &d), SL_SESS_TOO_FAR_AHEAD);
	assert_int_equal(d.ack.status, SL_SESS_ST_TOO_FAR_AHEAD);
	assert_int_equal(d.ack.expected_seq, 12);
	assert_int_equal(batch(&t, 1, UINT64_MAX - 1, 1, &d), SL_SESS_TOO_FAR_AHEAD);

	/* durable in order: 10 then 11, each acked with what the caller says */
	struct sl_sess_outcome o = {.count_stored = 2,
				    .status = SL_SESS_ST_REJECTED_POINTS,
				    .level_req = SL_SESS_LEVEL_MAJORITY,
				    .level_reached = SL_SESS_LEVEL_LOCAL};
	struct sl_sess_ack a;
	assert_int_equal(sl_sess_on_durable(&t, 1, 10, &o, &a), -ERANGE); /* not recorded */
	assert_int_equal(sl_sess_on_complete(&t, 1, 10, 1, 0), SL_SESS_DONE_RECORD);
	assert_int_equal(sl_sess_on_durable(&t, 1, 10, &o, &a), 1);
	assert_int_equal(a.seq, 10);
	assert_int_equal(a.status, SL_SESS_ST_REJECTED_POINTS);
	assert_int_equal(a.count_stored, 2);
	assert_int_equal(a.level, SL_SESS_LEVEL_LOCAL); /* 2 asked, 1 reached: says so */
	assert_int_equal(a.expected_seq, 12);
	assert_int_equal(sl_sess_on_durable(&t, 1, 10, &o, &a), -ERANGE); /* not again */
	assert_int_equal(sl_sess_on_durable(&t, 1, 12, &o, &a), -ERANGE); /* never accepted */
	assert_int_equal(sl_sess_on_durable(&t, 2, 1, &o, &a), -ENOENT);
	o.status = SL_SESS_ST_OK;
	o.count_stored = 3;
	assert_int_equal(sl_sess_on_durable(&t, 1, 11, &o, &a), -ERANGE);
	assert_int_equal(sl_sess_on_complete(&t, 1, 11, 1, 0), SL_SESS_DONE_RECORD);
	assert_int_equal(sl_sess_on_complete(&t, 1, 11, 1, 0), SL_SESS_DONE_DROP); /* twice */
	assert_int_equal(sl_sess_on_durable(&t, 1, 11, &o, &a), 1);

	/* duplicates: re-acked, never re-applied; the last one with its count */
	assert_int_equal(batch(&t, 1, 11, 1, &d), SL_SESS_DUPLICATE);
	assert_true(d.reply);
	assert_int_equal(d.ack.status, SL_SESS_ST_DUPLICATE);
	assert_int_equal(d.ack.count_stored, 3);
	assert_int_equal(d.ack.level, 1);
	assert_int_equal(batch(&t, 1, 10, 1, &d), SL_SESS_DUPLICATE);
	assert_int_equal(d.ack.count_stored, 0);
	assert_int_equal(batch(&t, 1, 1, 1, &d), SL_SESS_DUPLICATE); /* before the OPEN's seq */
	assert_int_equal(batch(&t, 1, 10, 0, &d), SL_SESS_DUPLICATE);
	assert_false(d.reply); /* level 0: silent */

	/* OPEN again: resumed with the node's state, the client's seq ignored */
	struct sl_sess_open op = {.session_id = 1, .next_seq = 1};
	struct sl_sess_open_ok r;
	sl_sess_on_open(&t, &op, 0, &r);
	assert_int_equal(r.status, SL_SESS_ST_RESUMED);
	assert_int_equal(r.next_seq, 12);
	assert_int_equal(r.durable_seq, 11);
	assert_int_equal(r.incarnation, 5);
	assert_int_equal(r.window, 4);

	struct sl_sess_table_stats st;
	sl_sess_table_stats(&t, &st);
	assert_int_equal(st.verdicts[SL_SESS_ACCEPT], 2);
	assert_int_equal(st.verdicts[SL_SESS_IN_FLIGHT], 1);
	assert_int_equal(st.verdicts[SL_SESS_OUT_OF_ORDER], 2);
	assert_int_equal(st.verdicts[SL_SESS_TOO_FAR_AHEAD], 2);
	assert_int_equal(st.verdicts[SL_SESS_UNKNOWN], 2);
	assert_int_equal(st.verdicts[SL_SESS_DUPLICATE], 4);
	assert_int_equal(st.opened, 1);
	assert_int_equal(st.resumed, 1);
}

static void test_table_abort_level0_close(void **state)
{
	(void)state;
	struct sl_sess_table t;
	struct sl_sess_decision d;
	table_init(&t, 8, 4);
	open_sess(&t, 7, 1, 0, SL_SESS_ST_OK);

	/* BUSY after accept: the node un-accepts 2 and 3, which must come again */
	assert_int_equal(batch(&t, 7, 1, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(batch(&t, 7, 2, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(batch(&t, 7, 3, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(sl_sess_on_abort(&t, 7, 4), -ERANGE);
	assert_int_equal(sl_sess_on_abort(&t, 8, 2), -ENOENT);
	assert_int_equal(sl_sess_on_abort(&t, 7, 2), 0);
	assert_int_equal(batch(&t, 7, 3, 1, &d), SL_SESS_OUT_OF_ORDER);
	assert_int_equal(d.ack.expected_seq, 2);
	assert_int_equal(batch(&t, 7, 2, 1, &d), SL_SESS_ACCEPT);

	/* close refused while in flight */
	struct sl_sess_close c = {.session_id = 7};
	struct sl_sess_close_ok r;
	sl_sess_on_close(&t, &c, &r);
	assert_int_equal(r.status, SL_SESS_ST_BUSY);
	durable(&t, 7, 1);
	durable(&t, 7, 2);
	sl_sess_on_close(&t, &c, &r);
	assert_int_equal(r.status, SL_SESS_ST_OK);
	sl_sess_on_close(&t, &c, &r);
	assert_int_equal(r.status, SL_SESS_ST_UNKNOWN_SESSION);
	assert_int_equal(batch(&t, 7, 3, 1, &d), SL_SESS_UNKNOWN);

	/* level 0: a gap is abandoned, not waited for; no ack when durable */
	open_sess(&t, 9, 1, 0, SL_SESS_ST_OK);
	assert_int_equal(batch(&t, 9, 1, 0, &d), SL_SESS_ACCEPT);
	assert_int_equal(batch(&t, 9, 3, 0, &d), SL_SESS_ACCEPT); /* 2 was lost */
	assert_false(d.reply);
	assert_int_equal(batch(&t, 9, 2, 0, &d), SL_SESS_IN_FLIGHT);	 /* late: never applied */
	assert_int_equal(batch(&t, 9, 8, 0, &d), SL_SESS_TOO_FAR_AHEAD); /* window 4 */
	assert_false(d.reply);
	struct sl_sess_outcome o = {.status = SL_SESS_ST_OK, .level_req = 0, .level_reached = 1};
	struct sl_sess_ack a;
	/* level 0 never waits for an earlier seq: 3 is logged before 1, 1 is then dropped */
	assert_int_equal(sl_sess_on_complete(&t, 9, 3, 0, 5), SL_SESS_DONE_RECORD);
	assert_int_equal(sl_sess_on_complete(&t, 9, 1, 0, 6), SL_SESS_DONE_DROP);
	assert_int_equal(sl_sess_on_durable(&t, 9, 3, &o, &a), 0);
	assert_int_equal(batch(&t, 9, 2, 0, &d), SL_SESS_DUPLICATE);
}

/* A batch's points go to several cores, so seq s+1 can complete before s. Its record (and
 * so the durable mark, the cumulative ACK and DUPLICATE) must wait until s is done. */
static void test_table_out_of_order_completion(void **state)
{
	(void)state;
	struct sl_sess_table t;
	struct sl_sess_decision d;
	struct sl_sess_info info;
	struct sl_sess_outcome o = {
	    .count_stored = 1, .status = SL_SESS_ST_OK, .level_req = 1, .level_reached = 1};
	struct sl_sess_ack a;
	uint64_t seq;
	uint32_t ck;
	table_init(&t, 8, 16);
	open_sess(&t, 1, 1, 0, SL_SESS_ST_OK);
	for (uint64_t s = 1; s <= 6; s++)
		assert_int_equal(batch(&t, 1, s, 1, &d), SL_SESS_ACCEPT);

	/* 3, 2 and 5 complete while 1 is still on a slow core: all held, nothing due */
	assert_int_equal(sl_sess_on_complete(&t, 1, 3, 1, 13), SL_SESS_DONE_HOLD);
	assert_int_equal(sl_sess_on_complete(&t, 1, 5, 1, 15), SL_SESS_DONE_HOLD);
	assert_int_equal(sl_sess_on_complete(&t, 1, 2, 1, 12), SL_SESS_DONE_HOLD);
	assert_int_equal(sl_sess_on_complete(&t, 1, 4, 1, 12), -EINVAL); /* cookie in use */
	assert_int_equal(sl_sess_on_complete(&t, 1, 4, 1, HOLD_MAX), -ENOSPC);
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_NONE);
	assert_int_equal(sl_sess_on_durable(&t, 1, 2, &o, &a), -ERANGE); /* never logged */
	assert_int_equal(sl_sess_on_durable(&t, 1, 3, &o, &a), -ERANGE);
	assert_int_equal(sl_sess_lookup(&t, 1, &info), 0);
	assert_int_equal(info.durable_seq, 0);
	/* a retry of a held seq is in flight, not a duplicate: it is not durable */
	assert_int_equal(batch(&t, 1, 2, 1, &d), SL_SESS_IN_FLIGHT);
	assert_false(d.reply);
	/* the session cannot go while completions are held */
	struct sl_sess_close c = {.session_id = 1};
	struct sl_sess_close_ok cr;
	sl_sess_on_close(&t, &c, &cr);
	assert_int_equal(cr.status, SL_SESS_ST_BUSY);

	/* 1 completes: logged, then 2 and 3 come back in order; 5 waits for 4 */
	assert_int_equal(sl_sess_on_complete(&t, 1, 1, 1, 11), SL_SESS_DONE_RECORD);
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_RECORD);
	assert_int_equal(seq, 2);
	assert_int_equal(ck, 12);
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_RECORD);
	assert_int_equal(seq, 3);
	assert_int_equal(ck, 13);
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_NONE);
	assert_int_equal(sl_sess_on_durable(&t, 1, 4, &o, &a), -ERANGE);
	for (uint64_t s = 1; s <= 3; s++) {
		assert_int_equal(sl_sess_on_durable(&t, 1, s, &o, &a), 1);
		assert_int_equal(a.seq, s);
	}
	assert_int_equal(batch(&t, 1, 3, 1, &d), SL_SESS_DUPLICATE);
	assert_int_equal(batch(&t, 1, 4, 1, &d), SL_SESS_IN_FLIGHT);
	assert_int_equal(batch(&t, 1, 5, 1, &d), SL_SESS_IN_FLIGHT);

	/* the snapshot (and so a restart) knows 3, not the held 5 */
	static uint8_t img[256];
	int len = sl_sess_snapshot_write(&t, 1, img, sizeof img);
	assert_true(len > 0);
	assert_int_equal(sl_get_u64(img + 32 + 8), 3);

	/* 4 fails (a WAL error on its core): 4 and everything after it is expected again,
	 * and the held 5 comes back to be released without a record */
	assert_int_equal(sl_sess_on_abort(&t, 1, 4), 0);
	sl_sess_on_close(&t, &c, &cr);
	assert_int_equal(cr.status, SL_SESS_ST_BUSY); /* 5's cookie not handed back yet */
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_DROP);
	assert_int_equal(seq, 5);
	assert_int_equal(ck, 15);
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_NONE);
	/* 6 was in flight when 4 failed: its late completion is dropped too */
	assert_int_equal(sl_sess_on_complete(&t, 1, 6, 1, 16), SL_SESS_DONE_DROP);
	/* resent: 4, 5 again; the new 5 first, then 4 */
	assert_int_equal(batch(&t, 1, 4, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(batch(&t, 1, 5, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(sl_sess_on_complete(&t, 1, 5, 1, 25), SL_SESS_DONE_HOLD);
	assert_int_equal(sl_sess_on_complete(&t, 1, 4, 1, 24), SL_SESS_DONE_RECORD);
	assert_int_equal(sl_sess_next_done(&t, 1, &seq, &ck), SL_SESS_DONE_RECORD);
	assert_int_equal(ck, 25);
	assert_int_equal(sl_sess_on_durable(&t, 1, 4, &o, &a), 1);
	assert_int_equal(sl_sess_on_durable(&t, 1, 5, &o, &a), 1);
	sl_sess_on_close(&t, &c, &cr);
	assert_int_equal(cr.status, SL_SESS_ST_OK);

	/* a failed record (queue full) rolls the logged mark back with the abort */
	open_sess(&t, 2, 1, 0, SL_SESS_ST_OK);
	assert_int_equal(batch(&t, 2, 1, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(batch(&t, 2, 2, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(sl_sess_on_complete(&t, 2, 2, 1, 2), SL_SESS_DONE_HOLD);
	assert_int_equal(sl_sess_on_complete(&t, 2, 1, 1, 1), SL_SESS_DONE_RECORD);
	assert_int_equal(sl_sess_on_abort(&t, 2, 1), 0); /* 1's record could not be logged */
	assert_int_equal(sl_sess_next_done(&t, 2, &seq, &ck), SL_SESS_DONE_DROP);
	assert_int_equal(ck, 2);
	assert_int_equal(sl_sess_on_durable(&t, 2, 1, &o, &a), -ERANGE);
	assert_int_equal(batch(&t, 2, 1, 1, &d), SL_SESS_ACCEPT);

	struct sl_sess_table_stats st;
	sl_sess_table_stats(&t, &st);
	assert_int_equal(st.held, 5);
	assert_int_equal(st.dropped, 3);
}

/* Random completion orders (points on several cores) and random durability: a record is
 * logged only when every earlier seq has completed, each seq exactly once and in order, and
 * no ack or DUPLICATE ever covers a seq that has not completed. */
static void test_table_completion_model(void **state)
{
	(void)state;
	enum { N = 48 };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 300; round++) {
		struct sl_sess_table t;
		struct sl_sess_decision d;
		table_init(&t, 4, 64);
		open_sess(&t, 7, 1, 0, SL_SESS_ST_OK);
		bool completed[N + 1] = {false};
		uint64_t order[N], logged = 0, durable_upto = 0;
		for (uint64_t s = 1; s <= N; s++) {
			assert_int_equal(batch(&t, 7, s, 1, &d), SL_SESS_ACCEPT);
			order[s - 1] = s;
		}
		for (int i = N - 1; i > 0; i--) { /* shuffle */
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			int j = (int)((x >> 33) % (uint64_t)(i + 1));
			uint64_t tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		for (int i = 0; i < N; i++) {
			uint64_t s = order[i];
			completed[s] = true;
			uint64_t seq = s;
			uint32_t ck = (uint32_t)s;
			int v = sl_sess_on_complete(&t, 7, s, 1, ck);
			while (v == SL_SESS_DONE_RECORD) {
				assert_int_equal(seq, logged + 1);
				assert_int_equal(ck, (uint32_t)seq);
				for (uint64_t k = 1; k <= seq; k++)
					assert_true(completed[k]);
				logged = seq;
				v = sl_sess_next_done(&t, 7, &seq, &ck);
			}
			assert_true(v == SL_SESS_DONE_HOLD || v == SL_SESS_DONE_NONE);
			/* the WAL makes some of what is logged durable */
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t upto = durable_upto + (x >> 40) % (logged - durable_upto + 1);
			for (uint64_t k = durable_upto + 1; k <= upto; k++) {
				struct sl_sess_outcome o = {.status = SL_SESS_ST_OK, .level_req = 1,
							    .level_reached = 1};
				struct sl_sess_ack a;
				assert_int_equal(sl_sess_on_durable(&t, 7, k, &o, &a), 1);
				for (uint64_t m = 1; m <= a.seq; m++)
					assert_true(completed[m]); /* the ACK is cumulative */
			}
			durable_upto = upto;
			/* a retry is DUPLICATE only for what is durable */
			uint64_t probe = 1 + (x >> 20) % N;
			sl_sess_on_batch(&t, 7, probe, 1, 0, &d);
			assert_int_equal(d.verdict == SL_SESS_DUPLICATE, probe <= durable_upto);
		}
		assert_int_equal(logged, N);
	}
}

static void test_table_eviction(void **state)
{
	(void)state;
	struct sl_sess_table t;
	struct sl_sess_decision d;
	table_init(&t, 4, 16); /* keep_min 100 ns, idle timeout 1000 ns */
	for (uint64_t id = 1; id <= 4; id++)
		open_sess(&t, id, 1, (int64_t)id, SL_SESS_ST_OK);
	/* full, everyone active within keep_min: a newcomer waits */
	open_sess(&t, 5, 1, 50, SL_SESS_ST_BUSY);
	/* 1 gets traffic (moves to the front); 2 has a batch in flight */
	sl_sess_on_batch(&t, 1, 1, 1, 60, &d);
	durable(&t, 1, 1);
	sl_sess_on_batch(&t, 2, 1, 1, 2, &d);
	assert_int_equal(d.verdict, SL_SESS_ACCEPT);
	/* at 150: 2 is oldest but in flight, so 3 (next oldest, idle 147) goes */
	open_sess(&t, 5, 1, 150, SL_SESS_ST_OK);
	struct sl_sess_info info;
	assert_int_equal(sl_sess_lookup(&t, 3, &info), -ENOENT);
	assert_int_equal(sl_sess_lookup(&t, 2, &info), 0);
	assert_int_equal(sl_sess_lookup(&t, 1, &info), 0);
	assert_int_equal(info.durable_seq, 1);
	assert_int_equal(info.last_active_ns, 60);
	open_sess(&t, 6, 1, 155, SL_SESS_ST_OK); /* then 4 */
	assert_int_equal(sl_sess_lookup(&t, 4, &info), -ENOENT);
	assert_int_equal(sl_sess_count(&t), 4);

	/* idle expiry: only sessions idle >= 1000 and not in flight, oldest first, bounded */
	assert_int_equal(sl_sess_expire(&t, 1000, 10), 0);
	assert_int_equal(sl_sess_expire(&t, 1062, 10), 1); /* 1 (active at 60); 2 in flight */
	assert_int_equal(sl_sess_lookup(&t, 1, &info), -ENOENT);
	assert_int_equal(sl_sess_lookup(&t, 2, &info), 0);
	durable(&t, 2, 1);
	assert_int_equal(sl_sess_expire(&t, 5000, 1), 1); /* bounded to one */
	assert_int_equal(sl_sess_expire(&t, 5000, 10), 2);
	assert_int_equal(sl_sess_count(&t), 0);
	struct sl_sess_table_stats st;
	sl_sess_table_stats(&t, &st);
	assert_int_equal(st.evicted_lru, 2);
	assert_int_equal(st.evicted_idle, 4);
	assert_int_equal(st.open_busy, 1);
}

/* Random opens, closes and evictions against a reference list: the open-addressing map
 * (backward-shift deletion) must never lose or invent a session. */
static void test_table_random_model(void **state)
{
	(void)state;
	enum { CAP = 64, IDS = 200 };
	struct sl_sess_table t;
	table_init(&t, CAP, 8);
	static bool present[IDS + 1];
	memset(present, 0, sizeof present);
	uint64_t x = 12345;
	uint32_t count = 0;
	for (int step = 0; step < 20000; step++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t id = 1 + (x >> 33) % IDS;
		struct sl_sess_info info;
		if ((x >> 20) % 3 != 0) {
			if (present[id] || count < CAP) {
				/* keep_min is 100 and time stands at 0: nobody is evicted */
				open_sess(&t, id, id, 0,
					  present[id] ? SL_SESS_ST_RESUMED : SL_SESS_ST_OK);
				count += !present[id];
				present[id] = true;
			} else {
				open_sess(&t, id, id, 0, SL_SESS_ST_BUSY);
			}
		} else {
			struct sl_sess_close c = {.session_id = id};
			struct sl_sess_close_ok r;
			sl_sess_on_close(&t, &c, &r);
			assert_int_equal(r.status,
					 present[id] ? SL_SESS_ST_OK : SL_SESS_ST_UNKNOWN_SESSION);
			count -= present[id];
			present[id] = false;
		}
		assert_int_equal(sl_sess_count(&t), count);
		if (step % 97 == 0) {
			for (uint64_t k = 1; k <= IDS; k++) {
				int rc = sl_sess_lookup(&t, k, &info);
				assert_int_equal(rc, present[k] ? 0 : -ENOENT);
				if (rc == 0)
					assert_int_equal(info.next_seq, k);
			}
		}
	}
}

static void test_table_recovery_then_retry(void **state)
{
	(void)state;
	struct sl_sess_table t;
	struct sl_sess_decision d;
	table_init(&t, 2, 16);
	/* replayed WAL entries, in log order, of three sessions in a table of two */
	assert_int_equal(sl_sess_recover_durable(&t, 0xa, 1, 1), 0);
	assert_int_equal(sl_sess_recover_durable(&t, 0xb, 4, 2), 0);
	assert_int_equal(sl_sess_recover_durable(&t, 0xa, 2, 3), 0);
	assert_int_equal(sl_sess_recover_durable(&t, 0xa, 3, 4), 0);
	assert_int_equal(sl_sess_recover_durable(&t, 0xc, 9, 5), 0); /* evicts b (oldest) */
	assert_int_equal(sl_sess_recover_durable(&t, 0xa, 2, 6), 0); /* replayed twice: max */
	assert_int_equal(sl_sess_recover_durable(&t, 0, 2, 6), -EINVAL);
	assert_int_equal(sl_sess_recover_durable(&t, 0xa, 0, 6), -EINVAL);
	struct sl_sess_info info;
	assert_int_equal(sl_sess_lookup(&t, 0xa, &info), 0);
	assert_int_equal(info.durable_seq, 3);
	assert_int_equal(info.next_seq, 4);
	assert_int_equal(sl_sess_lookup(&t, 0xb, &info), -ENOENT);

	/* the client's retry of 3 (its ack was lost in the crash) is recognised */
	assert_int_equal(batch(&t, 0xa, 3, 1, &d), SL_SESS_DUPLICATE);
	assert_true(d.reply);
	assert_int_equal(d.ack.status, SL_SESS_ST_DUPLICATE);
	assert_int_equal(d.ack.expected_seq, 4);
	assert_int_equal(d.ack.level, SL_SESS_LEVEL_LOCAL);
	assert_int_equal(batch(&t, 0xa, 5, 1, &d), SL_SESS_OUT_OF_ORDER);
	assert_int_equal(batch(&t, 0xa, 4, 1, &d), SL_SESS_ACCEPT);
	assert_int_equal(batch(&t, 0xc, 9, 1, &d), SL_SESS_DUPLICATE);
	assert_int_equal(batch(&t, 0xc, 10, 1, &d), SL_SESS_ACCEPT);

	/* recovery can make room even when every session is recent, never from in-flight */
	assert_int_equal(sl_sess_recover_durable(&t, 0xd, 1, 7), -ENOSPC);
	durable(&t, 0xa, 4);
	assert_int_equal(sl_sess_recover_durable(&t, 0xd, 1, 7), 0);
	assert_int_equal(sl_sess_lookup(&t, 0xc, &info), 0);
	assert_int_equal(sl_sess_lookup(&t, 0xa, &info), -ENOENT);
}

/* A worker count change: a table that holds sessions takes another core's image; each
 * session's durable seq goes up, never down, and a retry of a batch the other core had
 * made durable is a duplicate here. A damaged image adds nothing. */
static void test_snapshot_merge(void **state)
{
	(void)state;
	struct sl_sess_table t, u;
	struct sl_sess_decision d;
	table_init(&t, 16, 8);
	open_sess(&t, 1000, 1, 1, SL_SESS_ST_OK);
	sl_sess_on_batch(&t, 1000, 1, 1, 10, &d);
	durable(&t, 1000, 1);
	sl_sess_on_batch(&t, 1000, 2, 1, 11, &d);
	durable(&t, 1000, 2);
	open_sess(&t, 3000, 5, 2, SL_SESS_ST_OK); /* durable 4 */
	open_sess(&t, 4000, 1, 3, SL_SESS_ST_OK); /* nothing durable: not merged */
	static uint8_t img[4096];
	int len = sl_sess_snapshot_write(&t, 0, img, sizeof img);
	assert_true(len > 0);

	struct sl_sess_config cfg = {.capacity = 16,
				     .window = 8,
				     .idle_timeout_ns = 1000,
				     .keep_min_ns = 100,
				     .hash_seed = 7};
	void *mem2 = table_mem + (sizeof table_mem / 16);
	size_t need = sl_sess_table_mem_bytes(16, 0);
	assert_int_equal(sl_sess_table_init(&u, mem2, need, &cfg), 0);
	/* u knows session 3000 further than the image, and one of its own */
	assert_int_equal(sl_sess_recover_durable(&u, 3000, 9, 0), 0);
	assert_int_equal(sl_sess_recover_durable(&u, 5000, 4, 0), 0);
	uint32_t merged = 0;
	img[40] ^= 1; /* a record flipped: refused, nothing added */
	assert_int_equal(sl_sess_snapshot_merge(&u, img, (size_t)len, 20, &merged), -EBADMSG);
	assert_int_equal(merged, 0);
	assert_int_equal(sl_sess_count(&u), 2);
	img[40] ^= 1;
	assert_int_equal(sl_sess_snapshot_merge(&u, img, (size_t)len - 1, 20, &merged), -EBADMSG);
	assert_int_equal(sl_sess_snapshot_merge(&u, img, (size_t)len, 20, &merged), 0);
	assert_int_equal(merged, 2); /* 1000 and 3000; 4000 had nothing durable */
	struct sl_sess_info info;
	assert_int_equal(sl_sess_lookup(&u, 1000, &info), 0);
	assert_int_equal(info.durable_seq, 2);
	assert_int_equal(sl_sess_lookup(&u, 3000, &info), 0);
	assert_int_equal(info.durable_seq, 9); /* never lowered */
	assert_int_equal(sl_sess_lookup(&u, 5000, &info), 0);
	assert_int_equal(sl_sess_lookup(&u, 4000, &info), -ENOENT);
	sl_sess_on_batch(&u, 1000, 2, 1, 30, &d); /* the retry of a batch durable there */
	assert_int_equal(d.verdict, SL_SESS_DUPLICATE);
	sl_sess_on_batch(&u, 1000, 3, 1, 30, &d);
	assert_int_equal(d.verdict, SL_SESS_ACCEPT);
}

static void test_snapshot(void **state)
{
	(void)state;
	struct sl_sess_table t, u;
	struct sl_sess_decision d;
	table_init(&t, 16, 8);
	for (uint64_t id = 1; id <= 5; id++)
		open_sess(&t, id * 1000, id, (int64_t)id, SL_SESS_ST_OK);
	sl_sess_on_batch(&t, 2000, 2, 1, 10, &d);
	durable(&t, 2000, 2);
	sl_sess_on_batch(&t, 2000, 3, 1, 10, &d); /* in flight: not in the snapshot */
	sl_sess_on_batch(&t, 4000, 4, 1, 11, &d);
	durable(&t, 4000, 4);

	static uint8_t img[4096], img2[4096];
	size_t len = sl_sess_snapshot_bytes(&t);
	assert_int_equal(len, 32 + 5 * 24 + 4);
	assert_int_equal(sl_sess_snapshot_write(&t, 777, img, len - 1), -ENOSPC);
	assert_int_equal(sl_sess_snapshot_write(&t, 777, img, sizeof img), (int)len);
	assert_memory_equal(img, "SLST", 4);

	/* the second table lives in the other half of table_mem */
	struct sl_sess_config cfg = {.capacity = 16,
				     .window = 8,
				     .idle_timeout_ns = 1000,
				     .keep_min_ns = 100,
				     .hash_seed = 99};
	void *mem2 = table_mem + (sizeof table_mem / 16);
	size_t need = sl_sess_table_mem_bytes(16, 0);
	assert_int_equal(sl_sess_table_init(&u, mem2, need, &cfg), 0);
	uint64_t idx = 0;
	assert_int_equal(sl_sess_snapshot_read(&u, img, len, 500, &idx), 0);
	assert_int_equal(idx, 777);
	assert_int_equal(sl_sess_count(&u), 5);
	struct sl_sess_info info;
	for (uint64_t id = 1; id <= 5; id++) {
		assert_int_equal(sl_sess_lookup(&u, id * 1000, &info), 0);
		uint64_t want = id == 2 ? 2 : id == 4 ? 4 : id - 1;
		assert_int_equal(info.durable_seq, want);
		assert_int_equal(info.next_seq, want + 1);
		assert_int_equal(info.last_active_ns, 500);
	}
	/* a duplicate after the restore is recognised with its count */
	sl_sess_on_batch(&u, 4000, 4, 1, 600, &d);
	assert_int_equal(d.verdict, SL_SESS_DUPLICATE);
	assert_int_equal(d.ack.count_stored, 3);
	/* the in-flight batch of 2000 is expected again (the WAL replay decides) */
	sl_sess_on_batch(&u, 2000, 3, 1, 600, &d);
	assert_int_equal(d.verdict, SL_SESS_ACCEPT);
	/* same activity order: rewriting the restored (unchanged) image gives the same bytes */
	assert_int_equal(sl_sess_snapshot_read(&u, img, len, 0, &idx), -EINVAL); /* not empty */

	struct sl_sess_table v;
	assert_int_equal(sl_sess_table_init(&v, mem2, need, &cfg), 0);
	assert_int_equal(sl_sess_snapshot_read(&v, img, len, 0, &idx), 0);
	assert_int_equal(sl_sess_snapshot_write(&v, 777, img2, sizeof img2), (int)len);
	assert_memory_equal(img, img2, len);

	/* corruption anywhere, or truncation at any length, is refused and leaves it empty */
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(sl_sess_table_init(&v, mem2, need, &cfg), 0);
		img[i] ^= 0x04;
		assert_int_equal(sl_sess_snapshot_read(&v, img, len, 0, &idx), -EBADMSG);
		assert_int_equal(sl_sess_count(&v), 0);
		img[i] ^= 0x04;
	}
	for (size_t k = 0; k < len; k++)
		assert_int_equal(sl_sess_snapshot_read(&v, img, k, 0, &idx), -EBADMSG);
	assert_int_equal(sl_sess_snapshot_read(&v, img, len + 1, 0, &idx), -EBADMSG);

	/* well-formed but impossible: the same session twice (CRCs fixed up) */
	memcpy(img2, img, len);
	memcpy(img2 + 32 + 24, img2 + 32, 24);
	sl_put_u32(img2 + len - 4, ~crc32c_ref(img2 + 32, 5 * 24, 0xffffffffu));
	assert_int_equal(sl_sess_snapshot_read(&v, img2, len, 0, &idx), -EBADMSG);
	assert_int_equal(sl_sess_count(&v), 0);
	/* a reserved header field that is not zero, sealed with a valid CRC: the image would
	 * not write back the same, so it is not one we wrote */
	memcpy(img2, img, len);
	img2[25] = 1;
	sl_put_u32(img2 + 28, ~crc32c_ref(img2, 28, 0xffffffffu));
	assert_int_equal(sl_sess_snapshot_read(&v, img2, len, 0, &idx), -EBADMSG);
	assert_int_equal(sl_sess_count(&v), 0);
	/* more sessions than the table holds */
	cfg.capacity = 4;
	assert_int_equal(sl_sess_table_init(&v, mem2, need, &cfg), 0);
	assert_int_equal(sl_sess_snapshot_read(&v, img, len, 0, &idx), -ENOSPC);
	assert_int_equal(sl_sess_count(&v), 0);
	/* an empty table's image */
	cfg.capacity = 16;
	assert_int_equal(sl_sess_table_init(&v, mem2, need, &cfg), 0);
	assert_int_equal(sl_sess_snapshot_write(&v, 1, img, sizeof img), 36);
	assert_int_equal(sl_sess_snapshot_read(&v, img, 36, 0, &idx), 0);
	assert_int_equal(idx, 1);
}

/* ---- client ------------------------------------------------------------------------- */

#define RTO 100
#define RTO_MAX 800
static uint64_t client_mem[(64 * (SL_SESS_MSG_MAX + 64)) / 8];

static struct sl_sess_client_config client_cfg(uint64_t sid, uint8_t level, uint32_t window)
{
	return (struct sl_sess_client_config){.cluster_id = CLUSTER,
					      .session_id = sid,
					      .first_seq = 1,
					      .level = level,
					      .window = window,
					      .slot_bytes = 1024,
					      .rto_ns = RTO,
					      .rto_max_ns = RTO_MAX};
}

static void client_init(struct sl_sess_client *c, uint64_t sid, uint8_t level, uint32_t window)
{
	struct sl_sess_client_config cfg = client_cfg(sid, level, window);
	size_t need = sl_sess_client_mem_bytes(window, 1024);
	assert_true(need > 0 && need <= sizeof client_mem);
	assert_int_equal(sl_sess_client_init(c, client_mem, need, &cfg), 0);
}

/* A level-1 client with a window of 4, and a node table for it to talk to. */
static void client_fixture(struct sl_sess_client *c, struct sl_sess_table *t, uint64_t sid)
{
	table_init(t, 4, 16);
	client_init(c, sid, SL_SESS_LEVEL_LOCAL, 4);
}

/* Polls once; returns the decoded datagram's type (0: nothing due). */
static int poll_msg(struct sl_sess_client *c, int64_t now, struct sl_sess_msg *m)
{
	const uint8_t *dg;
	size_t len;
	int rc = sl_sess_client_poll(c, now, &dg, &len);
	if (rc == 0)
		return 0;
	assert_int_equal(rc, 1);
	assert_int_equal(dec(dg, len, m), SL_SESS_OK);
	return m->type;
}

static void client_open(struct sl_sess_client *c, struct sl_sess_table *t, int64_t now)
{
	struct sl_sess_msg m, r = {.type = SL_SESS_OPEN_OK, .cluster_id = CLUSTER};
	assert_int_equal(poll_msg(c, now, &m), SL_SESS_OPEN);
	sl_sess_on_open(t, &m.u.open, now, &r.u.open_ok);
	struct sl_sess_client_event ev;
	assert_int_equal(sl_sess_client_on_msg(c, &r, now, &ev), 0);
	assert_true(ev.opened);
}

/* Sends a batch of n points; returns its seq. */
static uint64_t client_send(struct sl_sess_client *c, int64_t now, uint32_t n,
			    struct sl_sess_msg *sent)
{
	struct sl_sess_writer w;
	assert_int_equal(sl_sess_client_batch(c, &w), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct sl_point p = pt("s v", (int64_t)i, SL_VAL_I64, i);
		assert_int_equal(sl_sess_batch_add(&w, &p), 0);
	}
	const uint8_t *dg;
	size_t len;
	assert_int_equal(sl_sess_client_send(c, &w, now, &dg, &len), 0);
	assert_int_equal(dec(dg, len, sent), SL_SESS_OK);
	return sent->u.batch.seq;
}

static void ack(struct sl_sess_client *c, uint64_t seq, uint8_t status, uint64_t expected,
		int64_t now, struct sl_sess_client_event *ev)
{
	struct sl_sess_msg m = {.type = SL_SESS_ACK, .cluster_id = CLUSTER};
	m.u.ack = (struct sl_sess_ack){.session_id = c->cfg.session_id,
				       .seq = seq,
				       .expected_seq = expected,
				       .count_stored = 1,
				       .status = status,
				       .level = 1};
	assert_int_equal(sl_sess_client_on_msg(c, &m, now, ev), 0);
}

static void test_client_retransmit_and_ack(void **state)
{
	(void)state;
	struct sl_sess_client c;
	struct sl_sess_table t;
	struct sl_sess_msg m;
	struct sl_sess_client_event ev;
	struct sl_sess_writer w;
	client_fixture(&c, &t, 42);

	/* nothing but the OPEN until it is answered, resent with backoff */
	assert_int_equal(sl_sess_client_batch(&c, &w), -EAGAIN);
	assert_int_equal(poll_msg(&c, 0, &m), SL_SESS_OPEN);
	assert_int_equal(m.u.open.next_seq, 1);
	assert_int_equal(poll_msg(&c, 99, &m), 0);
	assert_int_equal(sl_sess_client_deadline(&c), RTO);
	assert_int_equal(poll_msg(&c, RTO, &m), SL_SESS_OPEN);
	assert_int_equal(sl_sess_client_deadline(&c), RTO + 2 * RTO);
	client_open(&c, &t, 1000);
	assert_int_equal(sl_sess_client_deadline(&c), INT64_MAX);

	for (int i = 1; i <= 3; i++)
		assert_int_equal(client_send(&c, 1000, (uint32_t)i, &m), (uint64_t)i);
	assert_int_equal(sl_sess_client_unacked(&c), 3);
	assert_int_equal(poll_msg(&c, 1000 + RTO - 1, &m), 0);
	/* timeout: oldest first, each once, then the doubled timeout */
	for (uint64_t s = 1; s <= 3; s++) {
		assert_int_equal(poll_msg(&c, 1000 + RTO, &m), SL_SESS_BATCH);
		assert_int_equal(m.u.batch.seq, s);
		assert_int_equal(m.u.batch.count, s);
	}
	assert_int_equal(poll_msg(&c, 1000 + RTO, &m), 0);
	assert_int_equal(sl_sess_client_deadline(&c), 1000 + RTO + 2 * RTO);
	/* backoff is capped */
	int64_t now = 1000 + RTO;
	for (int k = 0; k < 6; k++) {
		now = sl_sess_client_deadline(&c);
		while (poll_msg(&c, now, &m) != 0)
			;
	}
	assert_int_equal(sl_sess_client_deadline(&c) - now, RTO_MAX);

	/* an ack covers every earlier batch (durable in order) */
	ack(&c, 2, SL_SESS_ST_OK, 4, now, &ev);
	assert_int_equal(ev.acked_lo, 1);
	assert_int_equal(ev.acked_hi, 2);
	assert_int_equal(ev.points, 3);
	assert_int_equal(ev.first_sent_ns, 1000);
	assert_int_equal(sl_sess_client_unacked(&c), 1);
	ack(&c, 1, SL_SESS_ST_OK, 4, now, &ev); /* stale */
	assert_int_equal(ev.acked_hi, 0);
	now += RTO_MAX;
	assert_int_equal(poll_msg(&c, now, &m), SL_SESS_BATCH);
	assert_int_equal(m.u.batch.seq, 3);
	assert_int_equal(poll_msg(&c, now, &m), 0);
	ack(&c, 3, SL_SESS_ST_DUPLICATE, 4, now, &ev);
	assert_int_equal(ev.acked_lo, 3);
	assert_int_equal(ev.acked_hi, 3);
	assert_int_equal(sl_sess_client_unacked(&c), 0);
	/* acked: never sent again */
	assert_int_equal(poll_msg(&c, INT64_MAX, &m), 0);
	assert_int_equal(sl_sess_client_deadline(&c), INT64_MAX);
	/* an ack for a batch never sent is a protocol error */
	struct sl_sess_msg bad = {.type = SL_SESS_ACK, .cluster_id = CLUSTER};
	bad.u.ack = (struct sl_sess_ack){.session_id = 42, .seq = 9, .status = SL_SESS_ST_OK};
	assert_int_equal(sl_sess_client_on_msg(&c, &bad, now, &ev), -EPROTO);
	bad.u.ack.session_id = 43; /* someone else's: ignored */
	assert_int_equal(sl_sess_client_on_msg(&c, &bad, now, &ev), 0);

	assert_int_equal(c.stats.batches_sent, 3);
	assert_int_equal(c.stats.batches_acked, 3);
	assert_int_equal(c.stats.points_acked, 6);
	assert_int_equal(c.stats.opens_sent, 3);
}

static void test_client_window_go_back_busy_reopen(void **state)
{
	(void)state;
	struct sl_sess_client c;
	struct sl_sess_table t;
	struct sl_sess_msg m;
	struct sl_sess_client_event ev;
	struct sl_sess_writer w;
	client_fixture(&c, &t, 77);
	client_open(&c, &t, 0);
	for (int i = 1; i <= 4; i++)
		client_send(&c, 0, 1, &m);
	assert_int_equal(sl_sess_client_batch(&c, &w), -EAGAIN); /* window full */

	/* the node lost 2: everything from 2 is due now, once per burst of such replies */
	ack(&c, 3, SL_SESS_ST_OUT_OF_ORDER, 2, 10, &ev);
	ack(&c, 4, SL_SESS_ST_OUT_OF_ORDER, 2, 10, &ev);
	assert_int_equal(c.stats.go_back, 1);
	for (uint64_t s = 2; s <= 4; s++) {
		assert_int_equal(poll_msg(&c, 10, &m), SL_SESS_BATCH);
		assert_int_equal(m.u.batch.seq, s);
	}
	assert_int_equal(poll_msg(&c, 10, &m), 0);
	assert_int_equal(sl_sess_client_on_msg(
			     &c,
			     &(struct sl_sess_msg){.type = SL_SESS_ACK,
						   .u.ack = {.session_id = 77,
							     .seq = 3,
							     .expected_seq = 9,
							     .status = SL_SESS_ST_OUT_OF_ORDER}},
			     10, &ev),
			 -EPROTO);

	ack(&c, 1, SL_SESS_ST_OK, 5, 15, &ev);
	assert_int_equal(ev.acked_hi, 1);

	/* BUSY: that batch waits for its (doubled) timeout, later ones go first */
	ack(&c, 2, SL_SESS_ST_BUSY, 2, 20, &ev);
	assert_int_equal(c.stats.busy, 1);
	assert_int_equal(poll_msg(&c, 20 + 2 * RTO - 1, &m), SL_SESS_BATCH);
	assert_int_equal(m.u.batch.seq, 3);

	/* UNKNOWN_SESSION: OPEN again from the oldest unacked seq */
	ack(&c, 2, SL_SESS_ST_UNKNOWN_SESSION, 0, 500, &ev);
	assert_int_equal(c.stats.reopens, 1);
	assert_int_equal(sl_sess_client_batch(&c, &w), -EAGAIN);
	assert_int_equal(poll_msg(&c, 500, &m), SL_SESS_OPEN);
	assert_int_equal(m.u.open.session_id, 77);
	assert_int_equal(m.u.open.next_seq, 2);
	assert_int_equal(poll_msg(&c, 501, &m), 0); /* no batch while not open */
	/* the node knows 2 durable and 3 in flight: it answers RESUMED */
	struct sl_sess_msg r = {.type = SL_SESS_OPEN_OK, .cluster_id = CLUSTER};
	r.u.open_ok = (struct sl_sess_open_ok){.session_id = 77,
					       .next_seq = 4,
					       .durable_seq = 2,
					       .incarnation = 2,
					       .window = 16,
					       .status = SL_SESS_ST_RESUMED};
	assert_int_equal(sl_sess_client_on_msg(&c, &r, 600, &ev), 0);
	assert_true(ev.opened);
	assert_int_equal(ev.acked_lo, 2);
	assert_int_equal(ev.acked_hi, 2);
	assert_int_equal(c.incarnation, 2);
	/* 4 now; 3 is in flight on the node: its ack is awaited, resent only on timeout */
	assert_int_equal(poll_msg(&c, 600, &m), SL_SESS_BATCH);
	assert_int_equal(m.u.batch.seq, 4);
	assert_int_equal(poll_msg(&c, 600, &m), 0);
	assert_int_equal(poll_msg(&c, 600 + RTO, &m), SL_SESS_BATCH);
	assert_int_equal(m.u.batch.seq, 3);
	assert_int_equal(sl_sess_client_batch(&c, &w), 0); /* window has room again */
	/* an OPEN_OK claiming more than was ever sent is refused */
	ack(&c, 3, SL_SESS_ST_UNKNOWN_SESSION, 0, 700, &ev);
	r.u.open_ok.next_seq = 6;
	assert_int_equal(sl_sess_client_on_msg(&c, &r, 700, &ev), -EPROTO);

	/* bad configs */
	struct sl_sess_client_config cfg = client_cfg(0, 1, 4);
	size_t need = sl_sess_client_mem_bytes(4, 1024);
	assert_int_equal(sl_sess_client_init(&c, client_mem, need, &cfg), -EINVAL);
	cfg.session_id = 1;
	assert_int_equal(sl_sess_client_init(&c, client_mem, need - 1, &cfg), -EINVAL);
	cfg.slot_bytes = 10;
	assert_int_equal(sl_sess_client_init(&c, client_mem, need, &cfg), -EINVAL);
	cfg.slot_bytes = 1024;
	cfg.rto_max_ns = 0;
	assert_int_equal(sl_sess_client_init(&c, client_mem, need, &cfg), -EINVAL);
	cfg.rto_max_ns = RTO_MAX;
	assert_int_equal(sl_sess_client_init(&c, client_mem, need, &cfg), 0);
}

static void test_client_level0(void **state)
{
	(void)state;
	struct sl_sess_client c;
	struct sl_sess_table t;
	struct sl_sess_msg m;
	table_init(&t, 4, 16);
	client_init(&c, 5, 0, 1);
	client_open(&c, &t, 0);
	/* fire and forget: no window, nothing retransmitted */
	for (int i = 0; i < 10; i++)
		client_send(&c, 0, 2, &m);
	assert_int_equal(sl_sess_client_unacked(&c), 0);
	assert_int_equal(poll_msg(&c, INT64_MAX, &m), 0);
	assert_int_equal(m.u.batch.level, 0);
	assert_int_equal(m.u.batch.seq, 10);
}

/* A bounded datagram queue of the simulated link. */
struct link {
	uint8_t data[32][1100];
	size_t len[32];
	uint32_t n;
};

static uint64_t rng = 7;
static uint32_t rnd(uint32_t n)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33) % n;
}

/* Lost 1 time in 4, delivered twice 1 time in 8, dropped when the queue is full. */
static void link_send(struct link *l, const uint8_t *dg, size_t len)
{
	assert_true(len <= sizeof l->data[0]);
	if (rnd(4) == 0)
		return;
	for (int copies = rnd(8) == 0 ? 2 : 1; copies > 0 && l->n < 32; copies--) {
		memcpy(l->data[l->n], dg, len);
		l->len[l->n++] = len;
	}
}

/* Client and node over a lossy, duplicating link, with node crashes that lose every batch
 * not yet durable and every datagram in flight: the node must apply each batch exactly once
 * and in seq order, and the client must see every batch acknowledged. */
static void test_end_to_end_restarts(void **state)
{
	(void)state;
	enum { BATCHES = 300 };
	static struct link c2n, n2c;
	static uint64_t wal[BATCHES + 1]; /* the node's durable entries: seqs of one session */
	uint64_t pending[64];
	size_t n_wal = 0, n_pending = 0;
	uint64_t submitted = 0, acked = 0, applied = 0;
	int restarts = 0;
	struct sl_sess_client c;
	struct sl_sess_table t;
	table_init(&t, 8, 64);
	client_init(&c, 0xfeed, SL_SESS_LEVEL_MAJORITY, 8);
	c2n.n = n2c.n = 0;

	int64_t now = 0;
	for (int step = 0; step < 100000 && acked < BATCHES; step++) {
		now += 10;
		const uint8_t *dg;
		size_t len;
		struct sl_sess_writer w;
		if (submitted < BATCHES && sl_sess_client_batch(&c, &w) == 0) {
			struct sl_point p = pt("e2e v", (int64_t)submitted, SL_VAL_U64, submitted);
			assert_int_equal(sl_sess_batch_add(&w, &p), 0);
			assert_int_equal(sl_sess_client_send(&c, &w, now, &dg, &len), 0);
			link_send(&c2n, dg, len);
			submitted++;
		}
		for (int k = 0; k < 4 && sl_sess_client_poll(&c, now, &dg, &len) == 1; k++)
			link_send(&c2n, dg, len);

		/* node: every datagram that arrived */
		for (uint32_t i = 0; i < c2n.n; i++) {
			struct sl_sess_msg in, out = {.cluster_id = CLUSTER};
			uint8_t rb[128];
			assert_int_equal(dec(c2n.data[i], c2n.len[i], &in), SL_SESS_OK);
			if (in.type == SL_SESS_OPEN) {
				out.type = SL_SESS_OPEN_OK;
				sl_sess_on_open(&t, &in.u.open, now, &out.u.open_ok);
			} else {
				assert_int_equal(in.type, SL_SESS_BATCH);
				struct sl_sess_decision d;
				sl_sess_on_batch(&t, in.u.batch.session_id, in.u.batch.seq,
						 in.u.batch.level, now, &d);
				if (d.verdict == SL_SESS_ACCEPT) {
					assert_true(n_pending < 64);
					pending[n_pending++] = in.u.batch.seq;
				}
				if (!d.reply)
					continue;
				out.type = SL_SESS_ACK;
				out.u.ack = d.ack;
			}
			int n = sl_sess_encode(rb, sizeof rb, &out);
			assert_true(n > 0);
			link_send(&n2c, rb, (size_t)n);
		}
		c2n.n = 0;

		/* group commit every third step: durable, applied, acked */
		if (step % 3 == 0) {
			for (size_t i = 0; i < n_pending; i++) {
				struct sl_sess_outcome o = {.count_stored = 1,
							    .status = SL_SESS_ST_OK,
							    .level_req = 2,
							    .level_reached = 1};
				struct sl_sess_msg out = {.type = SL_SESS_ACK,
							  .cluster_id = CLUSTER};
				assert_int_equal(sl_sess_on_complete(&t, 0xfeed, pending[i],
								     SL_SESS_LEVEL_MAJORITY, 0),
						 SL_SESS_DONE_RECORD);
				assert_int_equal(
				    sl_sess_on_durable(&t, 0xfeed, pending[i], &o, &out.u.ack), 1);
				/* exactly once, in order */
				assert_int_equal(pending[i], applied + 1);
				applied = pending[i];
				wal[n_wal++] = pending[i];
				uint8_t rb[128];
				int n = sl_sess_encode(rb, sizeof rb, &out);
				assert_true(n > 0);
				link_send(&n2c, rb, (size_t)n);
			}
			n_pending = 0;
		}

		/* crash now and then: lose the undurable batches and the link's contents, then
		 * recover the table from the WAL */
		if (step % 97 == 96 && restarts < 4) {
			restarts++;
			n_pending = 0;
			c2n.n = n2c.n = 0;
			table_init(&t, 8, 64);
			for (size_t i = 0; i < n_wal; i++)
				assert_int_equal(sl_sess_recover_durable(&t, 0xfeed, wal[i], now),
						 0);
		}

		/* client: the replies that made it */
		for (uint32_t i = 0; i < n2c.n; i++) {
			struct sl_sess_msg in;
			struct sl_sess_client_event ev;
			assert_int_equal(dec(n2c.data[i], n2c.len[i], &in), SL_SESS_OK);
			assert_int_equal(sl_sess_client_on_msg(&c, &in, now, &ev), 0);
			if (ev.acked_hi != 0) {
				/* never acked before it was durable */
				assert_true(ev.acked_hi <= applied);
				assert_int_equal(ev.acked_lo, acked + 1);
				acked = ev.acked_hi;
			}
		}
		n2c.n = 0;
	}
	assert_int_equal(acked, BATCHES);
	assert_int_equal(applied, BATCHES);
	assert_int_equal(n_wal, BATCHES);
	assert_int_equal(restarts, 4);
	assert_true(c.stats.retransmits > 0);
	struct sl_sess_table_stats st;
	sl_sess_table_stats(&t, &st);
	assert_true(st.verdicts[SL_SESS_DUPLICATE] + st.verdicts[SL_SESS_IN_FLIGHT] > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc_is_standard_crc32c),
	    cmocka_unit_test(test_round_trip_fixed_messages),
	    cmocka_unit_test(test_round_trip_batch_and_points),
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_batch_limits),
	    cmocka_unit_test(test_read_result),
	    cmocka_unit_test(test_truncated_every_length),
	    cmocka_unit_test(test_header_errors),
	    cmocka_unit_test(test_batch_errors),
	    cmocka_unit_test(test_other_field_errors),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_table_init_errors),
	    cmocka_unit_test(test_table_verdicts),
	    cmocka_unit_test(test_table_abort_level0_close),
	    cmocka_unit_test(test_table_out_of_order_completion),
	    cmocka_unit_test(test_table_completion_model),
	    cmocka_unit_test(test_table_eviction),
	    cmocka_unit_test(test_table_random_model),
	    cmocka_unit_test(test_table_recovery_then_retry),
	    cmocka_unit_test(test_snapshot),
	    cmocka_unit_test(test_snapshot_merge),
	    cmocka_unit_test(test_client_retransmit_and_ack),
	    cmocka_unit_test(test_client_window_go_back_busy_reopen),
	    cmocka_unit_test(test_client_level0),
	    cmocka_unit_test(test_end_to_end_restarts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

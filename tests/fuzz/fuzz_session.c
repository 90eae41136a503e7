/* fuzz_session.c - libFuzzer target for the session protocol codec: any datagram must decode
 * without a crash or sanitizer report; an accepted one re-encodes to the same bytes, its
 * points are well-formed, and it can be fed to a session table and a client. The first byte
 * chooses whether the rest is taken as is or has its length and CRC fixed up first, so the
 * fuzzer also reaches the body checks behind the CRC. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "fuzz_util.h"
#include "session.h"
#include "sl_crc.h"
#include "sl_le.h"

static uint8_t msg[SL_SESS_MSG_MAX + 16];
static uint8_t again[SL_SESS_MSG_MAX + 16];
static uint64_t table_mem[512];
static uint64_t client_mem[1024];

static void check_points(const struct sl_sess_batch *b, const uint8_t *buf, size_t len)
{
	struct sl_sess_point_iter it;
	struct sl_point p;
	uint32_t n = 0;
	sl_sess_points_init(&it, b);
	while (sl_sess_points_next(&it, &p) == 1) {
		CHECK(sl_batch_point_check(&p) == 0);
		CHECK((const uint8_t *)p.key >= buf &&
		      (const uint8_t *)p.key + p.key_len <= buf + len);
		n++;
	}
	CHECK(n == b->count);
}

/* Feeds an accepted message to a fresh table and client: neither may crash or break an
 * invariant, whatever the message says. */
static void feed(const struct sl_sess_msg *m)
{
	struct sl_sess_table t;
	struct sl_sess_config cfg = {
	    .capacity = 4, .window = 8, .idle_timeout_ns = 10, .keep_min_ns = 10};
	CHECK(sl_sess_table_init(&t, table_mem, sizeof table_mem, &cfg) == 0);
	struct sl_sess_open_ok ok;
	struct sl_sess_decision d;
	switch (m->type) {
	case SL_SESS_OPEN:
		sl_sess_on_open(&t, &m->u.open, 0, &ok);
		CHECK(ok.status == SL_SESS_ST_OK && ok.next_seq == m->u.open.next_seq);
		break;
	case SL_SESS_BATCH: {
		struct sl_sess_open o = {.session_id = m->u.batch.session_id, .next_seq = 1};
		sl_sess_on_open(&t, &o, 0, &ok);
		sl_sess_on_batch(&t, m->u.batch.session_id, m->u.batch.seq, m->u.batch.level, 0,
				 &d);
		CHECK(d.verdict == (m->u.batch.seq == 1				   ? SL_SESS_ACCEPT
				    : m->u.batch.seq <= 8 && m->u.batch.level == 0 ? SL_SESS_ACCEPT
				    : m->u.batch.seq <= 8 ? SL_SESS_OUT_OF_ORDER
							  : SL_SESS_TOO_FAR_AHEAD));
		break;
	}
	default:
		break;
	}
	struct sl_sess_client c;
	struct sl_sess_client_config cc = {.cluster_id = m->cluster_id,
					   .session_id = 1,
					   .first_seq = 1,
					   .level = 1,
					   .window = 4,
					   .slot_bytes = 1024,
					   .rto_ns = 1,
					   .rto_max_ns = 8};
	CHECK(sl_sess_client_init(&c, client_mem, sizeof client_mem, &cc) == 0);
	struct sl_sess_client_event ev;
	int rc = sl_sess_client_on_msg(&c, m, 0, &ev);
	CHECK(rc == 0 || rc == -EPROTO);
	CHECK(sl_sess_client_unacked(&c) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	if (!fuzz_take_body(data, size, msg, SL_SESS_MSG_MAX + 8, &len))
		return 0;
	if ((data[0] & 1) != 0 && len >= SL_SESS_HDR_BYTES) {
		sl_put_u32(msg + 8, (uint32_t)len);
		uint32_t c = sl_crc32c(msg, 16, 0xffffffffu);
		c = sl_crc32c(msg + SL_SESS_HDR_BYTES, len - SL_SESS_HDR_BYTES, c);
		sl_put_u32(msg + 16, ~c);
	}
	/* decode with the frame's own cluster id too, so WRONG_CLUSTER does not stop it */
	uint32_t cluster = len >= 16 ? sl_get_u32(msg + 12) : 0;
	struct sl_sess_msg m;
	CHECK(sl_sess_decode(msg, len, cluster ^ 1u, &m) != SL_SESS_OK);
	enum sl_sess_err e = sl_sess_decode(msg, len, cluster, &m);
	CHECK(e >= SL_SESS_OK && e < SL_SESS_ERR_COUNT);
	CHECK(strcmp(sl_sess_err_name(e), "unknown") != 0);
	uint8_t type;
	uint64_t ref;
	sl_sess_peek_ref(msg, len, &type, &ref);
	if (e != SL_SESS_OK)
		return 0;

	CHECK(len <= SL_SESS_MSG_MAX && m.cluster_id == cluster);
	CHECK(m.type >= SL_SESS_OPEN && m.type <= SL_SESS_TYPE_MAX);
	if (m.type == SL_SESS_BATCH)
		check_points(&m.u.batch, msg, len);
	if (m.type == SL_SESS_ROUTES_OK) { /* accepted ranges ascend and cover 0..2^64-1 */
		uint64_t next = 0;
		for (uint32_t i = 0; i < m.u.routes.n_regions; i++) {
			struct sl_sess_route r;
			sl_sess_route(&m.u.routes, i, &r);
			CHECK(r.hash_lo == next && r.hash_hi >= r.hash_lo);
			next = r.hash_hi + 1;
		}
		CHECK(m.u.routes.n_regions > 0 && next == 0);
	}
	if (m.type == SL_SESS_READ_RESULT) {
		int64_t prev = INT64_MIN;
		for (uint32_t i = 0; i < m.u.result.count; i++) {
			int64_t ts;
			uint64_t v;
			sl_sess_result_pair(&m.u.result, i, &ts, &v);
			CHECK(i == 0 || ts > prev);
			prev = ts;
		}
	}
	/* the canonical form: re-encoding what was decoded gives the same bytes */
	int n = sl_sess_encode(again, sizeof again, &m);
	CHECK(n == (int)len && memcmp(again, msg, len) == 0);
	feed(&m);
	return 0;
}

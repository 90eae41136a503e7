/* test_fabric.c - the fabric frame codec: coalescing many groups' messages into frames of
 * one MTU, fragments of large messages and their reassembly (in order, with losses), and
 * every reason a receiver drops a frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric.h"
#include "sl_crc.h"
#include "sl_le.h"

#define MTU 1500u
#define MAX_FRAMES 512

static const struct sl_fab_self self2 = {.cluster_id = 7, .node = 2, .min_epoch = 3};

static struct sl_fab_hdr addr(void)
{
	return (struct sl_fab_hdr){.cluster_id = 7, .src_node = 1, .dst_node = 2, .src_core = 1,
				   .dst_core = 1, .epoch = 3};
}

struct frames {
	uint8_t buf[MAX_FRAMES][MTU];
	uint32_t len[MAX_FRAMES];
	unsigned n;
};

/* Encodes msgs in order into as many frames as it takes. */
static void encode(struct frames *fr, const struct sl_cons_msg *msgs, unsigned n_msgs)
{
	struct sl_fab_hdr h = addr();
	struct sl_fab_enc e;
	fr->n = 0;
	sl_fab_enc_begin(&e, fr->buf[0], MTU);
	for (unsigned i = 0; i < n_msgs; i++) {
		uint32_t off = 0;
		while (!sl_fab_enc_add(&e, (enum sl_fab_kind)(i % SL_FAB_KIND_COUNT), &msgs[i], &off)) {
			h.seq = fr->n;
			fr->len[fr->n] = sl_fab_enc_finish(&e, &h);
			assert_true(fr->len[fr->n] > 0 && fr->len[fr->n] <= MTU);
			fr->n++;
			assert_true(fr->n < MAX_FRAMES);
			sl_fab_enc_begin(&e, fr->buf[fr->n], MTU);
		}
	}
	h.seq = fr->n;
	fr->len[fr->n] = sl_fab_enc_finish(&e, &h);
	if (fr->len[fr->n] > 0)
		fr->n++;
}

/* Decodes frames (skipping those in `lost`) and returns the messages delivered. */
static uint16_t kinds[8];

static unsigned decode(struct frames *fr, const bool *lost, struct sl_cons_msg *out,
		       uint8_t (*copies)[200000], struct sl_fab_reasm *ra)
{
	unsigned n = 0;
	for (unsigned f = 0; f < fr->n; f++) {
		if (lost != NULL && lost[f])
			continue;
		struct sl_fab_hdr h;
		assert_int_equal(sl_fab_decode(fr->buf[f], fr->len[f], &self2, &h), SL_FAB_OK);
		assert_int_equal(h.src_node, 1);
		assert_int_equal(h.seq, f);
		struct sl_fab_rec_iter it;
		struct sl_fab_rec r;
		sl_fab_recs_init(&it, &h);
		while (sl_fab_recs_next(&it, &r) == 1) {
			struct sl_cons_msg m;
			uint16_t kind;
			if (sl_fab_reasm_add(ra, &r, &m, &kind) == 1) {
				kinds[n] = kind;
				memcpy(copies[n], m.buf, m.len); /* reasm's buffer is reused */
				out[n] = m;
				out[n].buf = copies[n];
				n++;
			}
		}
	}
	return n;
}

static uint8_t payload[8][200000];
static uint8_t copies[8][200000];
static uint8_t reasm_buf[SL_FAB_MSG_MAX];
static struct frames fr;

static void fill(unsigned k, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		payload[k][i] = (uint8_t)(k * 31 + i * 7 + (i >> 8));
}

/* Small messages of several groups share frames; a 150 KB one is split and rebuilt. */
static void test_coalesce_and_fragment(void **state)
{
	(void)state;
	uint32_t lens[8] = {40, 100, 7, 150000, 1, 1400, 3000, 60};
	struct sl_cons_msg msgs[8];
	for (unsigned k = 0; k < 8; k++) {
		fill(k, lens[k]);
		msgs[k] = (struct sl_cons_msg){.group_id = 100 + k, .from = 1, .to = 2,
					       .len = lens[k], .buf = payload[k]};
	}
	encode(&fr, msgs, 8);
	/* the three small ones share the first frame; the big one needs ~100 frames */
	struct sl_fab_hdr h;
	assert_int_equal(sl_fab_decode(fr.buf[0], fr.len[0], &self2, &h), SL_FAB_OK);
	assert_true(h.n_recs >= 3);
	assert_true(fr.n >= 150000 / MTU + 1 && fr.n < 150000 / (MTU - 100) + 8);
	struct sl_fab_reasm ra;
	sl_fab_reasm_init(&ra, reasm_buf, sizeof(reasm_buf));
	struct sl_cons_msg out[8];
	assert_int_equal(decode(&fr, NULL, out, copies, &ra), 8);
	for (unsigned k = 0; k < 8; k++) {
		assert_int_equal(out[k].group_id, 100 + k);
		assert_int_equal(kinds[k], k % SL_FAB_KIND_COUNT); /* the record kind survives */
		assert_int_equal(out[k].len, lens[k]);
		assert_memory_equal(out[k].buf, payload[k], lens[k]);
	}
	assert_int_equal(ra.gaps, 0);
}

/* A lost middle fragment loses that message only; the ones after it arrive whole. */
static void test_lost_fragment(void **state)
{
	(void)state;
	uint32_t lens[3] = {5000, 20, 9000};
	struct sl_cons_msg msgs[3];
	for (unsigned k = 0; k < 3; k++) {
		fill(k, lens[k]);
		msgs[k] = (struct sl_cons_msg){.group_id = k, .from = 1, .to = 2, .len = lens[k],
					       .buf = payload[k]};
	}
	encode(&fr, msgs, 3);
	bool lost[MAX_FRAMES] = {0};
	lost[1] = true; /* inside the first message */
	struct sl_fab_reasm ra;
	sl_fab_reasm_init(&ra, reasm_buf, sizeof(reasm_buf));
	struct sl_cons_msg out[3];
	unsigned n = decode(&fr, lost, out, copies, &ra);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].group_id, 1);
	assert_int_equal(out[1].group_id, 2);
	assert_memory_equal(out[1].buf, payload[2], lens[2]);
	assert_int_equal(ra.gaps, 1);
	/* a reassembler smaller than the message drops it and counts it */
	struct sl_fab_reasm small;
	sl_fab_reasm_init(&small, reasm_buf, 4096);
	n = decode(&fr, NULL, out, copies, &small);
	assert_int_equal(n, 1); /* only the 20-byte one */
	assert_int_equal(small.too_big, 2);
}

/* Recomputes a frame's CRC, so that a test reaches the checks behind it. */
static void fix_crc(uint8_t *f, uint32_t len)
{
	uint32_t crc = sl_crc32c(f, 36, 0xffffffffu);
	crc = sl_crc32c(f + SL_FAB_HDR_BYTES, len - SL_FAB_HDR_BYTES, crc);
	sl_put_u32(f + 36, crc);
}

static uint32_t one_frame(uint8_t *buf, uint32_t cap, const struct sl_fab_hdr *h)
{
	static const uint8_t data[32] = {1, 2, 3};
	struct sl_cons_msg m = {.group_id = 9, .from = 1, .to = 2, .len = 32, .buf = data};
	struct sl_fab_enc e;
	uint32_t off = 0;
	sl_fab_enc_begin(&e, buf, cap);
	assert_true(sl_fab_enc_add(&e, SL_FAB_MSG, &m, &off));
	return sl_fab_enc_finish(&e, h);
}

/* Each way a frame can be wrong is dropped with its own reason. */
static void test_drops(void **state)
{
	(void)state;
	uint8_t f[MTU], g[MTU];
	struct sl_fab_hdr h = addr(), out;
	uint32_t len = one_frame(f, MTU, &h);
	assert_int_equal(sl_fab_decode(f, len, &self2, &out), SL_FAB_OK);
	assert_int_equal(sl_fab_decode(f, 10, &self2, &out), SL_FAB_DROP_SHORT);
	assert_int_equal(sl_fab_decode(f, len - 1, &self2, &out), SL_FAB_DROP_LENGTH);
	memcpy(g, f, len);
	g[0] ^= 1;
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_MAGIC);
	memcpy(g, f, len);
	g[4] = SL_FAB_VERSION - 1; /* a node of the previous release */
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_VERSION);
	memcpy(g, f, len);
	g[len - 1] ^= 0x10; /* a flipped body bit */
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_CRC);
	struct sl_fab_hdr o = h;
	o.cluster_id = 8;
	len = one_frame(g, MTU, &o);
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_CLUSTER);
	o = h;
	o.dst_node = 3;
	len = one_frame(g, MTU, &o);
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_DEST);
	o = h;
	o.src_node = 2; /* from itself: a looped link */
	len = one_frame(g, MTU, &o);
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_DEST);
	o = h;
	o.epoch = 2;
	len = one_frame(g, MTU, &o);
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_EPOCH);
	o.epoch = 4; /* newer than ours: taken (we learn the epoch from the control plane) */
	len = one_frame(g, MTU, &o);
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_OK);
	/* a record whose length overruns the body, with a CRC that matches */
	len = one_frame(g, MTU, &h);
	sl_put_u16(g + SL_FAB_HDR_BYTES + 24, 33);
	fix_crc(g, len);
	assert_int_equal(sl_fab_decode(g, len, &self2, &out), SL_FAB_DROP_RECORDS);
	assert_string_equal(sl_fab_drop_name(SL_FAB_DROP_EPOCH), "epoch");
}

/* Nothing to send gives no frame; a frame holds no more than its MTU. */
static void test_empty_and_bounds(void **state)
{
	(void)state;
	uint8_t f[SL_FAB_MTU_MIN];
	struct sl_fab_enc e;
	struct sl_fab_hdr h = addr();
	sl_fab_enc_begin(&e, f, sizeof(f));
	assert_true(sl_fab_enc_empty(&e));
	assert_int_equal(sl_fab_enc_finish(&e, &h), 0);
	fill(0, 1000);
	struct sl_cons_msg m = {.group_id = 1, .from = 1, .to = 2, .len = 1000, .buf = payload[0]};
	uint32_t off = 0;
	assert_false(sl_fab_enc_add(&e, SL_FAB_FWD, &m, &off));
	assert_int_equal(off, SL_FAB_MTU_MIN - SL_FAB_HDR_BYTES - SL_FAB_REC_HDR_BYTES);
	assert_int_equal(sl_fab_enc_finish(&e, &h), SL_FAB_MTU_MIN);
	assert_false(sl_fab_msg_fits(0));
	assert_false(sl_fab_msg_fits(SL_FAB_MSG_MAX + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coalesce_and_fragment),
		cmocka_unit_test(test_lost_fragment),
		cmocka_unit_test(test_drops),
		cmocka_unit_test(test_empty_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_fabric.c - libFuzzer target for the fabric frame decoder (what a node takes from
 * its links): any bytes must decode without a crash or sanitizer report; an accepted frame
 * re-encodes to the same bytes, its records lie inside it, and reassembly never yields a
 * message longer than its buffer or different from what the fragments said. The first
 * byte chooses whether the rest is taken as is or has its length and CRC fixed up first,
 * so the fuzzer also reaches the checks behind the CRC. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"
#include "fuzz_util.h"
#include "sl_crc.h"
#include "sl_le.h"

static uint8_t frame[SL_FAB_MTU_MAX + 64];
static uint8_t again[SL_FAB_MTU_MAX + 64];
static uint8_t reasm_buf[16384];
static struct sl_fab_reasm ra; /* kept across inputs: fragments of earlier frames linger */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	if (!fuzz_take_body(data, size, frame, sizeof(frame), &len))
		return 0;
	bool fix = data[0] & 1;
	if (fix && len >= SL_FAB_HDR_BYTES) {
		sl_put_u32(frame, SL_FAB_MAGIC);
		sl_put_u32(frame + 8, 7); /* our cluster, */
		if (data[0] & 2) {	  /* and to us from node 1 */
			sl_put_u16(frame + 12, 1);
			sl_put_u16(frame + 14, 2);
		}
		sl_put_u32(frame + 32, (uint32_t)(len - SL_FAB_HDR_BYTES));
		uint32_t crc = sl_crc32c(frame, 36, 0xffffffffu);
		crc = sl_crc32c(frame + SL_FAB_HDR_BYTES, len - SL_FAB_HDR_BYTES, crc);
		sl_put_u32(frame + 36, crc);
	}
	if (ra.buf == NULL)
		sl_fab_reasm_init(&ra, reasm_buf, sizeof(reasm_buf));
	const struct sl_fab_self self = {.cluster_id = 7, .node = 2, .min_epoch = data[0] >> 4};
	struct sl_fab_hdr h;
	enum sl_fab_drop d = sl_fab_decode(frame, len, &self, &h);
	CHECK((unsigned)d < SL_FAB_DROP_COUNT);
	CHECK(sl_fab_drop_name(d) != NULL);
	if (d != SL_FAB_OK)
		return 0;
	CHECK(h.dst_node == 2 && h.src_node != 2 && h.epoch >= self.min_epoch);
	/* the same header and body encode to the same bytes */
	struct sl_fab_enc e;
	sl_fab_enc_begin(&e, again, sizeof(again));
	memcpy(again + SL_FAB_HDR_BYTES, h.body, h.body_len);
	e.used = SL_FAB_HDR_BYTES + h.body_len;
	e.n_recs = h.n_recs;
	CHECK(sl_fab_enc_finish(&e, &h) == len);
	CHECK(memcmp(again, frame, len) == 0);
	struct sl_fab_rec_iter it;
	struct sl_fab_rec r;
	unsigned n = 0;
	sl_fab_recs_init(&it, &h);
	while (sl_fab_recs_next(&it, &r) == 1) {
		n++;
		CHECK(r.data >= frame + SL_FAB_HDR_BYTES && r.data + r.len <= frame + len);
		CHECK(r.len > 0 && r.off < r.total && r.len <= r.total - r.off);
		struct sl_cons_msg m;
		uint16_t kind;
		CHECK(r.kind < SL_FAB_KIND_COUNT);
		if (sl_fab_reasm_add(&ra, &r, &m, &kind) == 1) {
			CHECK(m.len == r.total && m.group_id == r.group_id && kind == r.kind);
			CHECK(m.buf == r.data || (m.buf == reasm_buf && m.len <= sizeof(reasm_buf)));
		}
	}
	CHECK(n == h.n_recs);
	return 0;
}

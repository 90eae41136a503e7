/* fuzz_session_snap.c - libFuzzer target for the session snapshot reader (what recovery
 * loads from snap/sessions-core-NN.snap): any file content must load or be refused
 * (-EBADMSG, -ENOSPC) without a crash or sanitizer report; a refused image leaves the table
 * empty; an accepted one writes back to the same bytes and its sessions answer retries of
 * durable batches as DUPLICATE and take the next seq. Byte 0 chooses the table capacity and
 * whether the header count, length and CRCs are fixed up first, so the fuzzer also reaches
 * the record checks behind them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "session.h"
#include "sl_crc.h"
#include "sl_le.h"

#define CAP_MAX 16u
#define IMG_MAX (SL_SESS_SNAP_HDR_BYTES + 64u * SL_SESS_SNAP_REC_BYTES + 4u)

static uint64_t table_mem[4096];
static uint8_t img[IMG_MAX];
static uint8_t again[IMG_MAX];

static uint32_t crc(const uint8_t *p, size_t n) { return ~sl_crc32c(p, n, 0xffffffffu); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	if (!fuzz_take_body(data, size, img, IMG_MAX, &len))
		return 0;
	uint32_t capacity = 1 + (data[0] >> 4) % CAP_MAX;
	if ((data[0] & 1) && len >= SL_SESS_SNAP_HDR_BYTES + 4) {
		/* a well-sealed image of the records it holds */
		uint32_t count = (uint32_t)((len - SL_SESS_SNAP_HDR_BYTES - 4) / SL_SESS_SNAP_REC_BYTES);
		len = SL_SESS_SNAP_HDR_BYTES + (size_t)count * SL_SESS_SNAP_REC_BYTES + 4;
		sl_put_u32(img + 8, count);
		if (data[0] & 2) { /* also the magic, version and reserved fields */
			sl_put_u32(img, 0x54534c53u);
			sl_put_u16(img + 4, 1);
			sl_put_u16(img + 6, 0);
			sl_put_u32(img + 12, 0);
		}
		sl_put_u32(img + 28, crc(img, 28));
		size_t recs = (size_t)count * SL_SESS_SNAP_REC_BYTES;
		sl_put_u32(img + SL_SESS_SNAP_HDR_BYTES + recs,
			   crc(img + SL_SESS_SNAP_HDR_BYTES, recs));
	}
	struct sl_sess_table t;
	struct sl_sess_config cfg = {.capacity = capacity,
				     .window = 8,
				     .idle_timeout_ns = 1000,
				     .keep_min_ns = 10,
				     .hash_seed = 42};
	CHECK(sl_sess_table_mem_bytes(capacity, cfg.hold_max) <= sizeof table_mem);
	CHECK(sl_sess_table_init(&t, table_mem, sizeof table_mem, &cfg) == 0);
	uint64_t applied = 0;
	int rc = sl_sess_snapshot_read(&t, img, len, 100, &applied);
	CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOSPC);
	if (rc != 0) {
		CHECK(sl_sess_count(&t) == 0);
		return 0;
	}
	uint32_t count = sl_get_u32(img + 8);
	CHECK(sl_sess_count(&t) == count && count <= capacity);
	CHECK(applied == sl_get_u64(img + 16));
	/* canonical: what was read writes back to the same bytes, LRU order included */
	CHECK(sl_sess_snapshot_bytes(&t) == len);
	CHECK(sl_sess_snapshot_write(&t, applied, again, sizeof again) == (int)len);
	CHECK(memcmp(again, img, len) == 0);
	/* every session resumes where it was durable */
	for (uint32_t k = 0; k < count; k++) {
		const uint8_t *r = img + SL_SESS_SNAP_HDR_BYTES + (size_t)k * SL_SESS_SNAP_REC_BYTES;
		uint64_t id = sl_get_u64(r), durable = sl_get_u64(r + 8);
		struct sl_sess_info info;
		CHECK(sl_sess_lookup(&t, id, &info) == 0);
		CHECK(info.durable_seq == durable && info.next_seq == durable + 1);
		struct sl_sess_decision d;
		if (durable >= 1) {
			sl_sess_on_batch(&t, id, durable, 1, 200, &d);
			CHECK(d.verdict == SL_SESS_DUPLICATE && d.reply);
		}
		sl_sess_on_batch(&t, id, durable + 1, 1, 200, &d);
		CHECK(d.verdict == SL_SESS_ACCEPT);
	}
	return 0;
}

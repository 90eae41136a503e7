/* fuzz_wal.c - libFuzzer target "WAL recovery of a fuzzed segment": arbitrary bytes as the
 * only segment of a log, through recovery's validation and replay (sl_wal_check_segment, no
 * files, no io_uring). It must never crash, hang or read outside the segment; what it
 * replays must be a gap-free lsn sequence inside the buffer, and salvage never refuses.
 * The first byte picks the segment's name lsn and whether the rest is taken as is or has
 * every record's magic, version, length and checksums fixed up first (then one byte may
 * be flipped), so the fuzzer also reaches the lsn, flush and torn-write rules behind the
 * checksums. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "sl_crc.h"
#include "sl_le.h"
#include "wal.h"

#define SEG_MAX (64u << 10)

static uint8_t seg[SEG_MAX];

struct seen {
	const uint8_t *base;
	uint64_t size;
	uint64_t next_lsn;
	uint64_t n;
};

static int on_record(void *arg, uint64_t lsn, uint16_t type, const uint8_t *payload, uint32_t len)
{
	struct seen *s = arg;
	(void)type;
	CHECK(lsn == s->next_lsn);
	CHECK(payload >= s->base && (uint64_t)(payload - s->base) + len <= s->size);
	s->next_lsn++;
	s->n++;
	return 0;
}

/* Makes every record header found by walking the buffer well-formed, with a length that
 * fits and valid checksums, keeping the fuzzer's kind, type, lsn and flush lsn. */
static void fix_up(uint8_t *p, uint64_t n)
{
	uint64_t off = 0;
	while (off + SL_WAL_HDR_BYTES <= n) {
		uint64_t to_block = SL_WAL_BLOCK_BYTES - off % SL_WAL_BLOCK_BYTES;
		if (to_block < SL_WAL_HDR_BYTES) {
			off += to_block;
			continue;
		}
		uint8_t *h = p + off;
		if (h[0] == 0) /* leave zeros: end of log or a hole */
			break;
		sl_put_u32(h, 0x4c574c53u);
		h[4] = SL_WAL_FORMAT_VERSION;
		h[5] = (uint8_t)(h[5] % 4u) | (h[5] & 0x80u);
		uint32_t len = sl_get_u32(h + 8) % 1024u;
		if (len > n - off - SL_WAL_HDR_BYTES)
			len = (uint32_t)(n - off - SL_WAL_HDR_BYTES);
		sl_put_u32(h + 8, len);
		sl_put_u32(h + 12, sl_crc32c(h + SL_WAL_HDR_BYTES, len, 0xffffffffu));
		sl_put_u32(h + 32, 0);
		sl_put_u32(h + 36, sl_crc32c(h, 36, 0xffffffffu));
		off += SL_WAL_RECORD_BYTES(len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0] & 3u;
	uint64_t seg_lsn = 1 + (data[0] >> 2);
	uint64_t n = size - 1 > SEG_MAX ? SEG_MAX : size - 1;
	memcpy(seg, data + 1, n);
	if (mode >= 2) {
		fix_up(seg, n);
		if (mode == 3 && n >= 3) /* then one flipped byte, at the place the tail says */
			seg[(uint64_t)sl_get_u16(data + size - 2) % n] ^= 0x10;
	}
	for (int salvage = 0; salvage < 2; salvage++) {
		struct seen s = {.base = seg, .size = n, .next_lsn = seg_lsn};
		struct sl_wal_recovery rep;
		int rc = sl_wal_check_segment(seg, n, seg_lsn, salvage, on_record, &s, &rep);
		CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT);
		CHECK(!salvage || rc != -EBADMSG);
		if (rc != 0) {
			CHECK(s.n == 0); /* refused: nothing replayed */
			CHECK(rc != -EBADMSG || (rep.corruption && rep.evidence != SL_WAL_EV_NONE));
			continue;
		}
		CHECK(rep.records == s.n && rep.last_lsn == seg_lsn - 1 + s.n);
		CHECK(!(rep.torn_tail_cut && rep.corruption));
		if (rep.torn_tail_cut || rep.corruption) {
			CHECK(rep.bad_offset <= n && rep.risk_first_lsn == rep.last_lsn + 1);
			CHECK(rep.risk_last_lsn == 0 || rep.risk_last_lsn >= rep.risk_first_lsn);
		}
	}
	return 0;
}

/* fuzz_shm.c - libFuzzer target for the shm ingest record decoder/validator the node uses
 * (sl_ingest_decode, sl_ingest_framing_end): any record stream a client can write must
 * decode without a crash or sanitizer report, flag exactly the invalid fields, and keep a
 * batch framing the node can hold pending state on: starts only with a count the ring can
 * hold and a fresh seq, continuations in order, every batch either ended or abandoned. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ingest.h"
#include "sl_le.h"

/* What the node holds for the open batch (node.c: slot_cur and its pending handle). */
struct model {
	bool open;
	uint64_t seq, max_seq;
	uint32_t count, received;
	bool any_started;
};

static uint8_t key_src[SL_KEY_MAX];

/* The stream's head is reached, or a record broke the open batch: the decoder's open state
 * must agree with the model's, and an abandoned batch lacks exactly what it did not get. */
static void settle(struct model *m, const struct sl_ingest_framing *f)
{
	if (sl_ingest_framing_open(f))
		CHECK(m->open);
	else
		m->open = false; /* abandoned (or ended): the node releases its handle */
}

static void check_record(struct model *m, const struct sl_ingest_framing *f, uint32_t ring,
			 const struct sl_ingest_wire_rec *w, const struct sl_ingest_rec *r)
{
	/* the copy is faithful, the key clamped to the record */
	CHECK(r->batch_seq == w->batch_seq && r->index == w->index &&
	      r->batch_count == w->batch_count && r->ts == w->ts && r->value == w->value &&
	      r->key_len == w->key_len && r->type == w->type);
	CHECK(memcmp(r->key, key_src, w->key_len <= SL_KEY_MAX ? w->key_len : SL_KEY_MAX) == 0);
	/* exactly the invalid fields are flagged */
	CHECK((r->flags & ~0x0fu) == 0);
	CHECK(!!(r->flags & SL_INGEST_BAD_KEY) == !(w->key_len >= 1 && w->key_len <= SL_KEY_MAX));
	CHECK(!!(r->flags & SL_INGEST_BAD_TYPE) == !(w->type >= 1 && w->type <= 4));
	CHECK(!!(r->flags & SL_INGEST_BAD_VALUE) == (w->type == SL_TYPE_BOOL && w->value > 1));
	if (r->flags & SL_INGEST_BAD_FRAMING) {
		CHECK(!r->starts_batch && !r->ends_batch);
		settle(m, f);
		return;
	}
	if (r->starts_batch) {
		/* the node takes a handle and trusts count: bounded by the ring, seqs fresh */
		CHECK(r->index == 0 && r->batch_count >= 1 && r->batch_count <= ring);
		CHECK(r->batch_seq > 0 && (!m->any_started || r->batch_seq > m->max_seq));
		*m = (struct model){.open = true,
				    .seq = r->batch_seq,
				    .max_seq = r->batch_seq,
				    .count = r->batch_count,
				    .any_started = true};
	}
	CHECK(m->open && r->batch_seq == m->seq && r->batch_count == m->count &&
	      r->index == m->received);
	m->received++;
	CHECK(r->ends_batch == (m->received == m->count));
	if (r->ends_batch)
		m->open = false;
	CHECK(sl_ingest_framing_open(f) == m->open);
}

/* Input: byte 0 picks the ring size (1..128 entries); then records, each an op byte and
 * either 7 compact bytes (small seq, index, count, key_len, type, value: the fuzzer meets
 * valid framing often) or, with op bit 1, a raw 40-byte wire header (any values at all).
 * Op bit 0: the published head is reached after this record. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	for (size_t i = 0; i < sizeof key_src; i++)
		key_src[i] = (uint8_t)(i * 7 + 1);
	uint32_t ring = 1u << (data[0] % 8);
	struct sl_ingest_framing f = {0};
	struct model m = {0};
	size_t off = 1;
	while (off < size) {
		uint8_t op = data[off++];
		struct sl_ingest_wire_rec w;
		memset(&w, 0, sizeof w);
		if (op & 2) {
			if (size - off < 40)
				break;
			w.batch_seq = sl_get_u64(data + off);
			w.index = sl_get_u32(data + off + 8);
			w.batch_count = sl_get_u32(data + off + 12);
			w.ts = (int64_t)sl_get_u64(data + off + 16);
			w.value = sl_get_u64(data + off + 24);
			w.key_len = sl_get_u16(data + off + 32);
			w.type = data[off + 34];
			off += 40;
		} else {
			if (size - off < 7)
				break;
			w.batch_seq = data[off];
			w.index = data[off + 1];
			w.batch_count = data[off + 2];
			w.key_len = sl_get_u16(data + off + 3);
			w.type = data[off + 5];
			w.value = data[off + 6];
			off += 7;
		}
		struct sl_ingest_rec r;
		memset(&r, 0xa5, sizeof r);
		sl_ingest_decode(&f, ring, &w, key_src, &r);
		check_record(&m, &f, ring, &w, &r);
		if (op & 1) {
			uint32_t missing = sl_ingest_framing_end(&f);
			CHECK(missing == (m.open ? m.count - m.received : 0));
			CHECK(!sl_ingest_framing_open(&f));
			m.open = false;
		}
	}
	return 0;
}

/* fuzz_store_image.c - libFuzzer target for the store's snapshot images (what recovery
 * loads from snap/region-*.snap, what a multileader peer's snapshot merges): any bytes are
 * loaded, applied as a delta or merged, or refused (-EBADMSG, -EINVAL), without a crash or
 * sanitizer report. A refused load leaves the store empty, a refused merge leaves it
 * exactly as it was; an accepted v2 full image writes back to the same bytes; a merge that
 * succeeded changes nothing when repeated. Byte 0 chooses the store (versioned or not,
 * chunk size), the operation, and whether the header and record CRCs are fixed up first so
 * the fuzzer also reaches the checks behind them.
 * Seeds: built with -DSL_FUZZ_GEN_SEEDS this file is a program writing them (run.sh's
 * flags plus the store's sources, then `./gen tests/fuzz/corpus/store_image`). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "fuzz_util.h"
#include "sl_le.h"
#include "store.h"

#define REGION 3u
#define IMG_MAX (1u << 16)
#define ENC_MAX (1u << 20) /* an image of a store: what it loaded or merged, plus the prefill */
#define CRC_SEED 0xffffffffu

enum { OP_LOAD, OP_DELTA, OP_MERGE, OP_MERGE_EMPTY };

static uint8_t img[IMG_MAX];
static uint8_t enc_a[ENC_MAX], enc_b[ENC_MAX];
static const uint32_t chunk_sizes[4] = {2, 3, 5, 512};

static struct sl_store *mk(bool versioned, uint32_t chunk_points)
{
	struct sl_store_config cfg = {
	    .region_id = REGION, .chunk_points = chunk_points, .versioned = versioned};
	struct sl_store *st = NULL;
	CHECK(sl_store_create(&cfg, &st) == 0);
	return st;
}

/* A few points of a numeric and a string series, written as two versioned writes (or
 * plain ones on an unversioned store). */
static void prefill(struct sl_store *st, int variant)
{
	static const char *const keys[2] = {"cpu,host=a usage", "log,host=a msg"};
	uint8_t buf[1024];
	for (int w = 0; w < 2; w++) {
		struct sl_batch b;
		size_t len = 0;
		CHECK(sl_batch_init(&b, buf, sizeof(buf), REGION) == 0);
		for (int k = 0; k < 4; k++) {
			const char *key = keys[k & 1];
			struct sl_point p = {.series_id = sl_series_id(key, strlen(key)),
					     .ts = k + w + variant,
					     .type = (k & 1) ? SL_VAL_STR : SL_VAL_F64,
					     .value = (k & 1) ? 0 : (uint64_t)(k * 10 + w),
					     .key_len = (uint16_t)strlen(key),
					     .key = key,
					     .str = w ? "two" : "one",
					     .str_len = (k & 1) ? 3 : 0};
			CHECK(sl_batch_add(&b, &p) == 0);
		}
		CHECK(sl_batch_finish(&b, &len) == 0);
		uint32_t applied = 0, rejected = 0;
		if (sl_store_versioned(st))
			CHECK(sl_store_apply_batch_v(st, buf, len, 5 + (uint64_t)(w ^ variant),
						     (uint32_t)w + 1, &applied, &rejected) == 0);
		else
			CHECK(sl_store_apply_batch(st, buf, len, &applied, &rejected) == 0);
	}
}

/* The store's full image (applied index idx) into out; its length. */
static size_t encode(const struct sl_store *st, uint64_t idx, uint8_t *out)
{
	struct sl_store_snap_cursor cur;
	sl_store_snap_begin(st, idx, &cur);
	size_t len = SL_STORE_SNAP_HDR_BYTES;
	CHECK(sl_store_snap_step(&cur, out, ENC_MAX, ENC_MAX, &len) == 1);
	sl_store_snap_header(&cur, out);
	return len;
}

static uint32_t crc(const uint8_t *p, size_t n) { return sl_batch_crc32c(p, n, CRC_SEED); }

/* Seals the header and every record it can find with their right CRCs. */
static void fixup(uint8_t *p, size_t len)
{
	if (len < SL_STORE_SNAP_HDR_BYTES)
		return;
	sl_put_u32(p + 28, crc(p, 28));
	bool versioned = (sl_get_u16(p + 6) & SL_STORE_SNAP_F_VERSIONED) != 0;
	uint64_t n_series = sl_get_u64(p + 20);
	size_t pos = SL_STORE_SNAP_HDR_BYTES;
	for (uint64_t i = 0; i < n_series && i < 1024; i++) {
		size_t start = pos;
		if (len - pos < 19)
			return;
		uint8_t type = p[pos + 8];
		uint64_t n_points = sl_get_u64(p + pos + 11);
		pos += 19 + (size_t)sl_get_u16(p + pos + 9);
		/* bounded: every sample moves pos on by at least 12 bytes, up to len */
		for (uint64_t k = 0; k < n_points && pos <= len; k++) {
			if (type == SL_VAL_STR) {
				if (len - pos < 12)
					return;
				pos += 12 + (size_t)sl_get_u32(p + pos + 8);
			} else {
				pos += 16;
			}
			pos += versioned ? 12 : 0;
		}
		if (pos > len || len - pos < 4)
			return;
		sl_put_u32(p + pos, crc(p + start, pos - start));
		pos += 4;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	if (!fuzz_take_body(data, size, img, IMG_MAX, &len))
		return 0;
	bool versioned = (data[0] & 1) != 0;
	int op = (data[0] >> 1) & 3;
	if (data[0] & 8)
		fixup(img, len);
	struct sl_store *st = mk(versioned, chunk_sizes[(data[0] >> 4) & 3]);
	uint64_t idx = 0;
	int rc = 0;
	if (op == OP_LOAD) {
		rc = sl_store_snapshot_read_mem(st, img, len, &idx);
		CHECK(rc == 0 || rc == -EBADMSG || rc == -EINVAL);
		struct sl_store_stats s;
		sl_store_stats(st, &s);
		CHECK(rc == 0 || (s.series == 0 && s.points == 0));
		if (rc == 0 && sl_get_u16(img + 4) == 2) {
			/* canonical: the store writes the image back byte for byte */
			size_t n = encode(st, idx, enc_a);
			CHECK(n == len && memcmp(enc_a, img, len) == 0);
		}
	} else if (op == OP_DELTA) {
		prefill(st, data[0] >> 6);
		rc = sl_store_snapshot_apply_delta_mem(st, img, len, &idx);
		CHECK(rc == 0 || rc == -EBADMSG || rc == -EINVAL);
	} else {
		if (op == OP_MERGE)
			prefill(st, data[0] >> 6);
		size_t before = encode(st, 0, enc_a);
		rc = sl_store_snapshot_merge_mem(st, img, len, &idx);
		CHECK(rc == 0 || rc == -EBADMSG || rc == -EINVAL);
		CHECK(versioned || rc == -EINVAL);
		size_t after = encode(st, 0, enc_b);
		if (rc != 0) { /* refused: the store exactly as it was */
			CHECK(after == before && memcmp(enc_a, enc_b, before) == 0);
		} else { /* idempotent */
			CHECK(sl_store_snapshot_merge_mem(st, img, len, NULL) == 0);
			CHECK(encode(st, 0, enc_a) == after && memcmp(enc_a, enc_b, after) == 0);
		}
	}
	sl_store_destroy(st);
	return 0;
}

#ifdef SL_FUZZ_GEN_SEEDS
static void seed(const char *dir, const char *name, uint8_t op, const uint8_t *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(&op, 1, 1, f) == 1 && fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	struct sl_store *v = mk(true, 3), *u = mk(false, 3);
	prefill(v, 1);
	prefill(u, 1);
	size_t n = encode(v, 7, enc_a);
	seed(argv[1], "v_full", 0x01 | OP_LOAD << 1, enc_a, n);
	seed(argv[1], "v_merge", 0x01 | OP_MERGE << 1, enc_a, n);
	seed(argv[1], "v_merge_empty_fixup", 0x09 | OP_MERGE_EMPTY << 1, enc_a, n);
	seed(argv[1], "v_into_unversioned", OP_LOAD << 1, enc_a, n);
	n = encode(u, 7, enc_a);
	seed(argv[1], "u_full", OP_LOAD << 1, enc_a, n);
	seed(argv[1], "u_merge", 0x01 | OP_MERGE << 1, enc_a, n);
	/* a versioned delta: the chunks the second round of writes changed */
	struct sl_store_snap_cursor cur;
	sl_store_snap_begin_since(v, 8, 0, &cur);
	uint32_t gen = cur.gen;
	prefill(v, 2);
	sl_store_snap_begin_since(v, 9, gen + 1, &cur);
	n = SL_STORE_SNAP_HDR_BYTES;
	CHECK(sl_store_snap_step(&cur, enc_a, ENC_MAX, ENC_MAX, &n) == 1);
	sl_store_snap_header(&cur, enc_a);
	seed(argv[1], "v_delta", 0x01 | OP_DELTA << 1, enc_a, n);
	seed(argv[1], "v_delta_merge", 0x11 | OP_MERGE << 1, enc_a, n);
	sl_store_destroy(v);
	sl_store_destroy(u);
	return 0;
}
#endif

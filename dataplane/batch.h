/* batch.h - the point model and the batch codec: one batch is the payload of one consensus
 * log entry / WAL record, so its format is versioned little-endian and checksummed, and the
 * decoder trusts nothing (it is fed bytes from disk and from other nodes). */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value types. Numeric types live in sl_point.value; SL_VAL_STR is a byte string (the
 * line protocol's string field) carried by str/str_len. This enum is the canonical
 * numbering for every module. */
enum sl_value_type {
	SL_VAL_F64 = 1,
	SL_VAL_I64 = 2,
	SL_VAL_U64 = 3,
	SL_VAL_BOOL = 4,
	SL_VAL_STR = 5,
};

#define SL_KEY_MAX 256	  /* bytes of a series key: "measurement,tag=v,... field" */
#define SL_STR_MAX 65536u /* bytes of one string value (InfluxDB's limit); 0 is allowed */

/* One point. `value` holds the raw 64 bits: double bits, int64, uint64 or 0/1 for bool.
 * `key` is borrowed (not NUL-terminated); series_id must equal sl_series_id(key).
 * For SL_VAL_STR, str/str_len (borrowed, any bytes: UTF-8 validity is the producer's
 * business) hold the value and `value` is ignored (the decoder yields 0); for the other
 * types str/str_len are ignored (the decoder yields NULL/0). */
struct sl_point {
	uint64_t series_id;
	int64_t ts;
	uint8_t type;
	uint64_t value;
	uint16_t key_len;
	const char *key;
	const char *str;
	uint32_t str_len;
};

/* Series id of a series key (XXH3-64 of the key bytes). */
uint64_t sl_series_id(const char *key, size_t len);

/* 0 when the point is well-formed (known type, bool is 0/1, 1 <= key_len <= SL_KEY_MAX,
 * key present, series_id matches the key; a string has str_len <= SL_STR_MAX and str
 * present unless str_len is 0), else -EINVAL. */
int sl_batch_point_check(const struct sl_point *p);

/* CRC32C (sl_crc32c chaining) that accepts any alignment of `data`: rte_hash_crc loads
 * 8/4/2-byte words through casts, so unaligned starts are fed byte by byte first.
 * Identical result to sl_crc32c(data, len, crc). */
uint32_t sl_batch_crc32c(const void *data, size_t len, uint32_t crc);

/* Wire format v2 (all little-endian):
 *   header: version u8 | flags u8 (0) | region_id u32 | count u32
 *   count x point: series_id u64 | ts i64 | type u8 | value u64 | key_len u16 | key bytes
 *                  [type SL_VAL_STR only: str_len u32 | str bytes; value is then 0]
 *   trailer: crc32c u32 of every byte before it (seed SL_BATCH_CRC_SEED)
 * v1 is the same without strings (type 5 is refused in a v1 batch); the decoder still
 * reads it so WALs written before v2 replay. The encoder always writes v2. */
#define SL_BATCH_VERSION 2
#define SL_BATCH_VERSION_V1 1
#define SL_BATCH_HDR_BYTES 10u
#define SL_BATCH_POINT_FIXED_BYTES 27u
#define SL_BATCH_STR_LEN_BYTES 4u
#define SL_BATCH_CRC_BYTES 4u
#define SL_BATCH_CRC_SEED 0xffffffffu
#define SL_BATCH_EMPTY_BYTES (SL_BATCH_HDR_BYTES + SL_BATCH_CRC_BYTES)
/* Largest encoded point: a batch buffer of SL_BATCH_EMPTY_BYTES + this always takes one. */
#define SL_BATCH_POINT_MAX_BYTES                                                                   \
	(SL_BATCH_POINT_FIXED_BYTES + SL_KEY_MAX + SL_BATCH_STR_LEN_BYTES + SL_STR_MAX)

/* Encoded size of one numeric point with a key of key_len bytes. */
static inline size_t sl_batch_point_bytes(size_t key_len)
{
	return SL_BATCH_POINT_FIXED_BYTES + key_len;
}

/* Encoded size of any point (numeric or string). */
static inline size_t sl_batch_point_size(const struct sl_point *p)
{
	size_t n = sl_batch_point_bytes(p->key_len);
	if (p->type == SL_VAL_STR)
		n += SL_BATCH_STR_LEN_BYTES + (size_t)p->str_len;
	return n;
}

/* Builder over a caller buffer; never allocates. Fields are private. */
struct sl_batch {
	uint8_t *buf;
	size_t cap;
	size_t len; /* header + points so far (no trailer) */
	uint32_t count;
	bool finished;
	bool trusted; /* sl_batch_trust: series ids already checked by the caller */
};

/* -EINVAL on NULL buf, -ENOSPC when cap cannot hold even an empty batch. */
int sl_batch_init(struct sl_batch *b, uint8_t *buf, size_t cap, uint32_t region_id);
/* 0; -ENOSPC when the point (plus trailer) does not fit, batch unchanged; -EINVAL for a
 * malformed point (see sl_batch_point_check) or after finish. */
int sl_batch_add(struct sl_batch *b, const struct sl_point *p);
/* The caller computed every point's series id from its key itself: sl_batch_add skips
 * re-hashing (every other check stays). */
void sl_batch_trust(struct sl_batch *b);
/* Writes count and the trailer; *len = total payload bytes. Calling it again is harmless. */
int sl_batch_finish(struct sl_batch *b, size_t *len);
/* Undo finish: more points may be added, and finish writes the trailer again (a proposal
 * the protocol could not take yet keeps filling). */
void sl_batch_reopen(struct sl_batch *b);
uint32_t sl_batch_count(const struct sl_batch *b);

/* Decoder over a finished payload. Fields are private. */
struct sl_batch_iter {
	const uint8_t *buf;
	size_t end; /* offset of the trailer */
	size_t off;
	uint32_t region_id;
	uint32_t count;
	uint32_t seen;
	uint8_t version;
	bool trusted; /* sl_batch_iter_init_trusted */
	int err;
};

/* 0, or -EBADMSG on a short buffer, unknown version (1 and 2 are known) or flags, bad CRC
 * or impossible count. */
int sl_batch_iter_init(struct sl_batch_iter *it, const uint8_t *buf, size_t len);
/* For payloads this process encoded itself or read back through a checksummed log: skips
 * the CRC and the per-point series-id hash (every bound is still checked). The hot apply
 * path of the node; never for bytes from the network. */
int sl_batch_iter_init_trusted(struct sl_batch_iter *it, const uint8_t *buf, size_t len);
uint32_t sl_batch_iter_region(const struct sl_batch_iter *it);
uint32_t sl_batch_iter_count(const struct sl_batch_iter *it);
/* 1 with *out filled (out->key and, for strings, out->str point into the payload), 0 at
 * the end, -EBADMSG on a malformed point or trailing bytes; errors are sticky. */
int sl_batch_next(struct sl_batch_iter *it, struct sl_point *out);

/* Decodes the whole payload: 0 (with *count, *region_id when non-NULL) or -EBADMSG. */
int sl_batch_check(const uint8_t *buf, size_t len, uint32_t *count, uint32_t *region_id);

#endif

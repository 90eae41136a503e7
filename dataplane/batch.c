/* batch.c - encoder and validating decoder of point batches, the payload of consensus log
 * entries and WAL records. Encoding writes into a caller buffer (no allocation on the
 * ingest path); decoding checks every length, type and series id before handing a point on. */
#include "batch.h"

#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "sl_assert.h"
#include "sl_crc.h"
#include "sl_le.h"

uint64_t sl_series_id(const char *key, size_t len) { return XXH3_64bits(key, len); }

uint32_t sl_batch_crc32c(const void *data, size_t len, uint32_t crc)
{
	return sl_crc32c(data, len, crc); /* alignment-safe, see sl_crc.h */
}

static bool value_type_valid(uint8_t type) { return type >= SL_VAL_F64 && type <= SL_VAL_STR; }

/* Everything sl_batch_point_check checks except the series id. */
static int point_check_shape(const struct sl_point *p)
{
	if (p == NULL || !value_type_valid(p->type))
		return -EINVAL;
	if (p->type == SL_VAL_BOOL && p->value > 1)
		return -EINVAL;
	if (p->type == SL_VAL_STR &&
	    (p->str_len > SL_STR_MAX || (p->str == NULL && p->str_len != 0)))
		return -EINVAL;
	if (p->key_len == 0 || p->key_len > SL_KEY_MAX || p->key == NULL)
		return -EINVAL;
	return 0;
}

int sl_batch_point_check(const struct sl_point *p)
{
	int rc = point_check_shape(p);
	if (rc == 0 && p->series_id != sl_series_id(p->key, p->key_len))
		rc = -EINVAL;
	return rc;
}

void sl_batch_trust(struct sl_batch *b) { b->trusted = true; }

int sl_batch_init(struct sl_batch *b, uint8_t *buf, size_t cap, uint32_t region_id)
{
	if (b == NULL || buf == NULL)
		return -EINVAL;
	if (cap < SL_BATCH_EMPTY_BYTES)
		return -ENOSPC;
	b->buf = buf;
	b->cap = cap;
	b->len = SL_BATCH_HDR_BYTES;
	b->count = 0;
	b->finished = false;
	b->trusted = false;
	buf[0] = SL_BATCH_VERSION;
	buf[1] = 0;
	sl_put_u32(buf + 2, region_id);
	sl_put_u32(buf + 6, 0);
	return 0;
}

int sl_batch_add(struct sl_batch *b, const struct sl_point *p)
{
	if (b->finished || (b->trusted ? point_check_shape(p) : sl_batch_point_check(p)) != 0)
		return -EINVAL;
	size_t need = sl_batch_point_size(p);
	if (b->count == UINT32_MAX || b->cap - b->len < need + SL_BATCH_CRC_BYTES)
		return -ENOSPC;

	bool is_str = p->type == SL_VAL_STR;
	uint8_t *q = b->buf + b->len;
	sl_put_u64(q, p->series_id);
	sl_put_u64(q + 8, (uint64_t)p->ts);
	q[16] = p->type;
	sl_put_u64(q + 17, is_str ? 0 : p->value); /* one canonical encoding per point */
	sl_put_u16(q + 25, p->key_len);
	q += SL_BATCH_POINT_FIXED_BYTES;
	memcpy(q, p->key, p->key_len);
	if (is_str) {
		q += p->key_len;
		sl_put_u32(q, p->str_len);
		if (p->str_len > 0)
			memcpy(q + SL_BATCH_STR_LEN_BYTES, p->str, p->str_len);
	}
	b->len += need;
	b->count++;
	SL_ASSERT(b->len + SL_BATCH_CRC_BYTES <= b->cap);
	return 0;
}

int sl_batch_finish(struct sl_batch *b, size_t *len)
{
	SL_ASSERT(b->len >= SL_BATCH_HDR_BYTES && b->len + SL_BATCH_CRC_BYTES <= b->cap);
	if (!b->finished) {
		sl_put_u32(b->buf + 6, b->count);
		sl_put_u32(b->buf + b->len, sl_batch_crc32c(b->buf, b->len, SL_BATCH_CRC_SEED));
		b->finished = true;
	}
	if (len != NULL)
		*len = b->len + SL_BATCH_CRC_BYTES;
	return 0;
}

void sl_batch_reopen(struct sl_batch *b) { b->finished = false; }

uint32_t sl_batch_count(const struct sl_batch *b) { return b->count; }

static int iter_init(struct sl_batch_iter *it, const uint8_t *buf, size_t len, bool trusted)
{
	memset(it, 0, sizeof(*it));
	it->err = -EBADMSG;
	if (buf == NULL || len < SL_BATCH_EMPTY_BYTES)
		return -EBADMSG;
	size_t end = len - SL_BATCH_CRC_BYTES;
	if (!trusted && sl_get_u32(buf + end) != sl_batch_crc32c(buf, end, SL_BATCH_CRC_SEED))
		return -EBADMSG;
	it->trusted = trusted;
	if ((buf[0] != SL_BATCH_VERSION && buf[0] != SL_BATCH_VERSION_V1) || buf[1] != 0)
		return -EBADMSG;
	uint32_t count = sl_get_u32(buf + 6);
	/* Cheap plausibility bound before any point is looked at. */
	if (count > (end - SL_BATCH_HDR_BYTES) / SL_BATCH_POINT_FIXED_BYTES)
		return -EBADMSG;
	it->buf = buf;
	it->end = end;
	it->off = SL_BATCH_HDR_BYTES;
	it->region_id = sl_get_u32(buf + 2);
	it->count = count;
	it->version = buf[0];
	it->err = 0;
	return 0;
}

int sl_batch_iter_init(struct sl_batch_iter *it, const uint8_t *buf, size_t len)
{
	return iter_init(it, buf, len, false);
}

int sl_batch_iter_init_trusted(struct sl_batch_iter *it, const uint8_t *buf, size_t len)
{
	return iter_init(it, buf, len, true);
}

uint32_t sl_batch_iter_region(const struct sl_batch_iter *it) { return it->region_id; }

uint32_t sl_batch_iter_count(const struct sl_batch_iter *it) { return it->count; }

int sl_batch_next(struct sl_batch_iter *it, struct sl_point *out)
{
	if (it->err != 0)
		return it->err;
	if (it->seen == it->count) {
		if (it->off != it->end)
			it->err = -EBADMSG;
		return it->err;
	}
	size_t left = it->end - it->off;
	const uint8_t *q = it->buf + it->off;
	if (left < SL_BATCH_POINT_FIXED_BYTES)
		goto bad;
	struct sl_point p = {
	    .series_id = sl_get_u64(q),
	    .ts = (int64_t)sl_get_u64(q + 8),
	    .type = q[16],
	    .value = sl_get_u64(q + 17),
	    .key_len = sl_get_u16(q + 25),
	    .key = (const char *)(q + SL_BATCH_POINT_FIXED_BYTES),
	};
	size_t need = sl_batch_point_bytes(p.key_len);
	if (left < need)
		goto bad;
	if (p.type == SL_VAL_STR) {
		/* v1 had no strings; the value slot of a string is always written as 0. */
		if (it->version == SL_BATCH_VERSION_V1 || p.value != 0 ||
		    left - need < SL_BATCH_STR_LEN_BYTES)
			goto bad;
		p.str_len = sl_get_u32(q + need);
		p.str = (const char *)(q + need + SL_BATCH_STR_LEN_BYTES);
		/* Bound before adding: a huge str_len must not wrap `need`. */
		if (p.str_len > SL_STR_MAX || left - need - SL_BATCH_STR_LEN_BYTES < p.str_len)
			goto bad;
		need += SL_BATCH_STR_LEN_BYTES + p.str_len;
	}
	if ((it->trusted ? point_check_shape(&p) : sl_batch_point_check(&p)) != 0)
		goto bad;
	SL_ASSERT(need == sl_batch_point_size(&p));
	it->off += need;
	it->seen++;
	*out = p;
	return 1;
bad:
	it->err = -EBADMSG;
	return it->err;
}

int sl_batch_check(const uint8_t *buf, size_t len, uint32_t *count, uint32_t *region_id)
{
	struct sl_batch_iter it;
	struct sl_point p;
	int rc = sl_batch_iter_init(&it, buf, len);
	if (rc != 0)
		return rc;
	/* Bounded: init proved count <= len / SL_BATCH_POINT_FIXED_BYTES. */
	while ((rc = sl_batch_next(&it, &p)) == 1)
		;
	if (rc != 0)
		return rc;
	if (count != NULL)
		*count = it.count;
	if (region_id != NULL)
		*region_id = it.region_id;
	return 0;
}

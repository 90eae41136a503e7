/* session.c - the binary session protocol (docs/protocol.md): a validating codec for UDP
 * datagrams, the node's session table (exactly-once, in-order batches per session, made
 * durable through the WAL and a snapshot) and the client's retransmission window. Pure and
 * allocation-free: the caller owns all memory, sockets and clocks. */
#include "session.h"

#include <errno.h>
#include <string.h>

#include "sl_assert.h"
#include "sl_crc.h"
#include "sl_le.h"

#define NONE UINT32_MAX
#define CAPACITY_MAX (1u << 24)	 /* keeps every size and snapshot length within int */
#define EVICT_SCAN 8u		 /* LRU candidates examined to make room */
#define SEQ_MAX (UINT64_MAX - 1) /* next = seq + 1 never wraps */

/* ---- names ------------------------------------------------------------------------- */

static const char *const err_names[SL_SESS_ERR_COUNT] = {
    [SL_SESS_OK] = "ok",
    [SL_SESS_ERR_TRUNCATED] = "truncated",
    [SL_SESS_ERR_BAD_MAGIC] = "bad_magic",
    [SL_SESS_ERR_BAD_VERSION] = "bad_version",
    [SL_SESS_ERR_OVERSIZE] = "oversize",
    [SL_SESS_ERR_BAD_LENGTH] = "bad_length",
    [SL_SESS_ERR_BAD_CRC] = "bad_crc",
    [SL_SESS_ERR_WRONG_CLUSTER] = "wrong_cluster",
    [SL_SESS_ERR_BAD_TYPE] = "bad_type",
    [SL_SESS_ERR_BAD_FLAGS] = "bad_flags",
    [SL_SESS_ERR_BAD_FIELD] = "bad_field",
    [SL_SESS_ERR_TOO_MANY_POINTS] = "too_many_points",
    [SL_SESS_ERR_BAD_COUNT] = "bad_count",
    [SL_SESS_ERR_BAD_KEY] = "bad_key",
    [SL_SESS_ERR_BAD_UTF8] = "bad_utf8",
    [SL_SESS_ERR_BAD_POINT] = "bad_point",
};

static const char *const status_names[SL_SESS_ST_COUNT] = {
    [SL_SESS_ST_OK] = "ok",
    [SL_SESS_ST_DUPLICATE] = "duplicate_already_durable",
    [SL_SESS_ST_UNKNOWN_SESSION] = "unknown_session",
    [SL_SESS_ST_OUT_OF_ORDER] = "out_of_order",
    [SL_SESS_ST_TOO_FAR_AHEAD] = "too_far_ahead",
    [SL_SESS_ST_REJECTED_POINTS] = "rejected_points",
    [SL_SESS_ST_BUSY] = "busy",
    [SL_SESS_ST_STORAGE_ERROR] = "storage_error",
    [SL_SESS_ST_RESUMED] = "resumed",
    [SL_SESS_ST_NOT_FOUND] = "not_found",
    [SL_SESS_ST_UNAVAILABLE] = "unavailable",
    [SL_SESS_ST_BAD_REQUEST] = "bad_request",
};

static const char *const type_names[] = {
    [SL_SESS_OPEN] = "open",   [SL_SESS_OPEN_OK] = "open_ok",
    [SL_SESS_BATCH] = "batch", [SL_SESS_ACK] = "ack",
    [SL_SESS_READ] = "read",   [SL_SESS_READ_RESULT] = "read_result",
    [SL_SESS_CLOSE] = "close", [SL_SESS_CLOSE_OK] = "close_ok",
    [SL_SESS_ERROR] = "error", [SL_SESS_ROUTES] = "routes",
    [SL_SESS_ROUTES_OK] = "routes_ok",
};

static const char *name_of(const char *const *names, size_t n, int i)
{
	return i >= 0 && (size_t)i < n && names[i] != NULL ? names[i] : "unknown";
}

const char *sl_sess_err_name(int err) { return name_of(err_names, SL_ARRAY_LEN(err_names), err); }
const char *sl_sess_status_name(int st)
{
	return name_of(status_names, SL_ARRAY_LEN(status_names), st);
}
const char *sl_sess_type_name(int type)
{
	return name_of(type_names, SL_ARRAY_LEN(type_names), type);
}

/* ---- shared checks ------------------------------------------------------------------ */

/* Statuses each reply type may carry (bit per status). */
#define BIT(s) (1u << (s))
static const uint32_t status_allowed[] = {
    [SL_SESS_OPEN_OK] = BIT(SL_SESS_ST_OK) | BIT(SL_SESS_ST_RESUMED) | BIT(SL_SESS_ST_BUSY),
    [SL_SESS_ACK] = BIT(SL_SESS_ST_OK) | BIT(SL_SESS_ST_DUPLICATE) |
		    BIT(SL_SESS_ST_UNKNOWN_SESSION) | BIT(SL_SESS_ST_OUT_OF_ORDER) |
		    BIT(SL_SESS_ST_TOO_FAR_AHEAD) | BIT(SL_SESS_ST_REJECTED_POINTS) |
		    BIT(SL_SESS_ST_BUSY) | BIT(SL_SESS_ST_STORAGE_ERROR),
    [SL_SESS_READ_RESULT] = BIT(SL_SESS_ST_OK) | BIT(SL_SESS_ST_NOT_FOUND) |
			    BIT(SL_SESS_ST_UNAVAILABLE) | BIT(SL_SESS_ST_BAD_REQUEST) |
			    BIT(SL_SESS_ST_BUSY),
    [SL_SESS_CLOSE_OK] =
	BIT(SL_SESS_ST_OK) | BIT(SL_SESS_ST_UNKNOWN_SESSION) | BIT(SL_SESS_ST_BUSY),
};

static bool status_ok(uint8_t type, uint8_t st)
{
	return st < SL_SESS_ST_COUNT && (status_allowed[type] & BIT(st)) != 0;
}

static bool seq_ok(uint64_t seq) { return seq >= 1 && seq <= SEQ_MAX; }

static bool value_ok(uint8_t type, uint64_t value)
{
	if (type < SL_VAL_F64 || type > SL_VAL_BOOL)
		return false;
	return type != SL_VAL_BOOL || value <= 1;
}

/* Strict UTF-8 (RFC 3629) by decoding each code point: rejects overlong forms, surrogates
 * and anything above U+10FFFF. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint32_t cp = s[i];
		size_t extra;
		uint32_t least;
		if (cp < 0x80) {
			i++;
			continue;
		}
		if ((cp & 0xe0) == 0xc0) {
			extra = 1, cp &= 0x1f, least = 0x80;
		} else if ((cp & 0xf0) == 0xe0) {
			extra = 2, cp &= 0x0f, least = 0x800;
		} else if ((cp & 0xf8) == 0xf0) {
			extra = 3, cp &= 0x07, least = 0x10000;
		} else {
			return false;
		}
		if (n - i <= extra)
			return false;
		for (size_t k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += extra + 1;
	}
	return true;
}

static bool key_len_ok(size_t n) { return n >= 1 && n <= SL_KEY_MAX; }

/* Standard CRC-32C (RFC 3720: init and final XOR 0xffffffff) of the message with its CRC
 * field (bytes 16..19) skipped. */
static uint32_t msg_crc(const uint8_t *buf, size_t len)
{
	uint32_t c = sl_crc32c(buf, 16, 0xffffffffu);
	c = sl_crc32c(buf + SL_SESS_HDR_BYTES, len - SL_SESS_HDR_BYTES, c);
	return ~c;
}

static uint32_t crc32c_std(const uint8_t *buf, size_t len)
{
	return ~sl_crc32c(buf, len, 0xffffffffu);
}

/* ---- decode ------------------------------------------------------------------------ */

/* Fixed body bytes of each type (variable parts come after). */
static const size_t body_fixed[] = {
    [SL_SESS_OPEN] = 16,
    [SL_SESS_OPEN_OK] = 40,
    [SL_SESS_BATCH] = SL_SESS_BATCH_FIXED_BYTES,
    [SL_SESS_ACK] = 32,
    [SL_SESS_READ] = 40,
    [SL_SESS_READ_RESULT] = SL_SESS_RESULT_FIXED_BYTES,
    [SL_SESS_CLOSE] = 8,
    [SL_SESS_CLOSE_OK] = 16,
    [SL_SESS_ERROR] = 14,
    [SL_SESS_ROUTES] = 8,
    [SL_SESS_ROUTES_OK] = SL_SESS_ROUTES_FIXED_BYTES,
};

static bool zeros(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

/* Walks every point once: structure, key, UTF-8, type and value. */
static enum sl_sess_err check_points(const uint8_t *p, size_t len, uint32_t count)
{
	size_t off = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < 2)
			return SL_SESS_ERR_BAD_COUNT;
		size_t klen = sl_get_u16(p + off);
		if (!key_len_ok(klen))
			return SL_SESS_ERR_BAD_KEY;
		if (len - off < SL_SESS_POINT_FIXED_BYTES + klen)
			return SL_SESS_ERR_BAD_COUNT;
		if (!utf8_ok(p + off + 2, klen))
			return SL_SESS_ERR_BAD_UTF8;
		const uint8_t *rest = p + off + 2 + klen;
		if (!value_ok(rest[8], sl_get_u64(rest + 9)))
			return SL_SESS_ERR_BAD_POINT;
		off += SL_SESS_POINT_FIXED_BYTES + klen;
	}
	return off == len ? SL_SESS_OK : SL_SESS_ERR_BAD_COUNT;
}

static enum sl_sess_err decode_batch(const uint8_t *b, size_t n, uint16_t flags,
				     struct sl_sess_batch *o)
{
	if (flags != 0)
		return SL_SESS_ERR_BAD_FLAGS;
	o->session_id = sl_get_u64(b);
	o->seq = sl_get_u64(b + 8);
	o->count = sl_get_u32(b + 16);
	o->level = b[20];
	if (o->session_id == 0 || !seq_ok(o->seq) || o->level > SL_SESS_LEVEL_MAJORITY ||
	    !zeros(b + 21, 3))
		return SL_SESS_ERR_BAD_FIELD;
	if (o->count > SL_SESS_BATCH_POINTS_MAX)
		return SL_SESS_ERR_TOO_MANY_POINTS;
	o->points = b + SL_SESS_BATCH_FIXED_BYTES;
	o->points_len = n - SL_SESS_BATCH_FIXED_BYTES;
	return check_points(o->points, o->points_len, o->count);
}

static enum sl_sess_err decode_result(const uint8_t *b, size_t n, uint16_t flags,
				      struct sl_sess_result *o)
{
	if ((flags & ~SL_SESS_F_MORE) != 0)
		return SL_SESS_ERR_BAD_FLAGS;
	o->request_id = sl_get_u64(b);
	o->cont_ts = (int64_t)sl_get_u64(b + 8);
	o->count = sl_get_u32(b + 16);
	o->status = b[20];
	o->type = b[21];
	o->more = (flags & SL_SESS_F_MORE) != 0;
	o->pairs = b + SL_SESS_RESULT_FIXED_BYTES;
	if (!status_ok(SL_SESS_READ_RESULT, o->status) || !zeros(b + 22, 2) ||
	    (!o->more && o->cont_ts != 0) || (o->status != SL_SESS_ST_OK && o->count != 0))
		return SL_SESS_ERR_BAD_FIELD;
	if (o->count > SL_SESS_RESULT_POINTS_MAX)
		return SL_SESS_ERR_TOO_MANY_POINTS;
	if (n - SL_SESS_RESULT_FIXED_BYTES != (size_t)o->count * SL_SESS_PAIR_BYTES)
		return SL_SESS_ERR_BAD_COUNT;
	if (o->count == 0)
		return o->type <= SL_VAL_BOOL ? SL_SESS_OK : SL_SESS_ERR_BAD_POINT;
	int64_t prev = INT64_MIN;
	for (uint32_t i = 0; i < o->count; i++) {
		int64_t ts;
		uint64_t v;
		sl_sess_result_pair(o, i, &ts, &v);
		if (!value_ok(o->type, v) || (i > 0 && ts <= prev))
			return SL_SESS_ERR_BAD_POINT;
		prev = ts;
	}
	return SL_SESS_OK;
}

static enum sl_sess_err decode_read(const uint8_t *b, size_t n, uint16_t flags,
				    struct sl_sess_read *o)
{
	if ((flags & ~SL_SESS_F_CONTINUE) != 0)
		return SL_SESS_ERR_BAD_FLAGS;
	o->request_id = sl_get_u64(b);
	o->from_ts = (int64_t)sl_get_u64(b + 8);
	o->to_ts = (int64_t)sl_get_u64(b + 16);
	o->cont_ts = (int64_t)sl_get_u64(b + 24);
	o->max_points = sl_get_u32(b + 32);
	o->level = b[36];
	o->cont = (flags & SL_SESS_F_CONTINUE) != 0;
	o->key_len = sl_get_u16(b + 38);
	o->key = (const char *)(b + 40);
	if (o->level > SL_SESS_READ_SYNC || b[37] != 0 || o->from_ts > o->to_ts)
		return SL_SESS_ERR_BAD_FIELD;
	if (o->cont ? (o->cont_ts < o->from_ts || o->cont_ts > o->to_ts) : o->cont_ts != 0)
		return SL_SESS_ERR_BAD_FIELD;
	if (!key_len_ok(o->key_len))
		return SL_SESS_ERR_BAD_KEY;
	if (n - 40 != o->key_len)
		return SL_SESS_ERR_BAD_LENGTH;
	return utf8_ok(b + 40, o->key_len) ? SL_SESS_OK : SL_SESS_ERR_BAD_UTF8;
}

static enum sl_sess_err decode_error(const uint8_t *b, size_t n, struct sl_sess_error *o)
{
	o->ref_id = sl_get_u64(b);
	o->code = sl_get_u16(b + 8);
	o->ref_type = b[10];
	o->text_len = sl_get_u16(b + 12);
	o->text = (const char *)(b + 14);
	if (o->code == SL_SESS_OK || o->code >= SL_SESS_ERR_COUNT || b[11] != 0 ||
	    o->text_len > SL_SESS_ERROR_TEXT_MAX)
		return SL_SESS_ERR_BAD_FIELD;
	if (n - 14 != o->text_len)
		return SL_SESS_ERR_BAD_LENGTH;
	return utf8_ok(b + 14, o->text_len) ? SL_SESS_OK : SL_SESS_ERR_BAD_UTF8;
}

void sl_sess_route(const struct sl_sess_routes *r, uint32_t i, struct sl_sess_route *out)
{
	SL_ASSERT(i < r->n_regions);
	const uint8_t *p = r->routes + (size_t)i * SL_SESS_ROUTE_BYTES;
	out->hash_lo = sl_get_u64(p);
	out->hash_hi = sl_get_u64(p + 8);
	out->home = sl_get_u32(p + 16);
	out->protocol = p[20];
}

void sl_sess_route_put(uint8_t *routes, uint32_t i, const struct sl_sess_route *in)
{
	uint8_t *p = routes + (size_t)i * SL_SESS_ROUTE_BYTES;
	sl_put_u64(p, in->hash_lo);
	sl_put_u64(p + 8, in->hash_hi);
	sl_put_u32(p + 16, in->home);
	p[20] = in->protocol;
	p[21] = p[22] = p[23] = 0;
}

/* ROUTES_OK: the ranges ascend and cover the whole hash space, homes are node ids. */
static enum sl_sess_err decode_routes(const uint8_t *b, size_t n, struct sl_sess_routes *o)
{
	o->request_id = sl_get_u64(b);
	o->node = sl_get_u32(b + 8);
	o->n_regions = sl_get_u16(b + 12);
	o->routes = b + SL_SESS_ROUTES_FIXED_BYTES;
	if (o->node == 0 || o->node > 65535 || o->n_regions == 0 ||
	    o->n_regions > SL_SESS_ROUTES_MAX || !zeros(b + 14, 2))
		return SL_SESS_ERR_BAD_FIELD;
	if (n != SL_SESS_ROUTES_FIXED_BYTES + (size_t)o->n_regions * SL_SESS_ROUTE_BYTES)
		return SL_SESS_ERR_BAD_LENGTH;
	uint64_t next = 0;
	for (uint32_t i = 0; i < o->n_regions; i++) {
		struct sl_sess_route r;
		sl_sess_route(o, i, &r);
		const uint8_t *p = o->routes + (size_t)i * SL_SESS_ROUTE_BYTES;
		bool last = i + 1 == o->n_regions;
		if (r.hash_lo != next || r.hash_hi < r.hash_lo || (last != (r.hash_hi == UINT64_MAX)) ||
		    r.home > 65535 || r.protocol < SL_SESS_PROTO_STANDALONE ||
		    r.protocol > SL_SESS_PROTO_MULTILEADER || !zeros(p + 21, 3))
			return SL_SESS_ERR_BAD_FIELD;
		next = r.hash_hi + 1;
	}
	return SL_SESS_OK;
}

/* The fixed-size bodies: every field range-checked. */
static enum sl_sess_err decode_fixed(uint8_t type, const uint8_t *b, struct sl_sess_msg *m)
{
	switch (type) {
	case SL_SESS_OPEN:
		m->u.open.session_id = sl_get_u64(b);
		m->u.open.next_seq = sl_get_u64(b + 8);
		return m->u.open.session_id != 0 && seq_ok(m->u.open.next_seq)
			   ? SL_SESS_OK
			   : SL_SESS_ERR_BAD_FIELD;
	case SL_SESS_OPEN_OK: {
		struct sl_sess_open_ok *o = &m->u.open_ok;
		o->session_id = sl_get_u64(b);
		o->next_seq = sl_get_u64(b + 8);
		o->durable_seq = sl_get_u64(b + 16);
		o->incarnation = sl_get_u64(b + 24);
		o->window = sl_get_u32(b + 32);
		o->status = b[36];
		bool ok = o->session_id != 0 && seq_ok(o->next_seq) &&
			  o->durable_seq < o->next_seq && o->window >= 1 &&
			  status_ok(type, o->status) && zeros(b + 37, 3);
		return ok ? SL_SESS_OK : SL_SESS_ERR_BAD_FIELD;
	}
	case SL_SESS_ACK: {
		struct sl_sess_ack *a = &m->u.ack;
		a->session_id = sl_get_u64(b);
		a->seq = sl_get_u64(b + 8);
		a->expected_seq = sl_get_u64(b + 16);
		a->count_stored = sl_get_u32(b + 24);
		a->status = b[28];
		a->level = b[29];
		bool ok = a->session_id != 0 && seq_ok(a->seq) && a->expected_seq <= SEQ_MAX &&
			  status_ok(type, a->status) && a->level <= SL_SESS_LEVEL_MAJORITY &&
			  zeros(b + 30, 2);
		return ok ? SL_SESS_OK : SL_SESS_ERR_BAD_FIELD;
	}
	case SL_SESS_CLOSE:
		m->u.close.session_id = sl_get_u64(b);
		return m->u.close.session_id != 0 ? SL_SESS_OK : SL_SESS_ERR_BAD_FIELD;
	case SL_SESS_CLOSE_OK:
		m->u.close_ok.session_id = sl_get_u64(b);
		m->u.close_ok.status = b[8];
		return m->u.close_ok.session_id != 0 && status_ok(type, b[8]) && zeros(b + 9, 7)
			   ? SL_SESS_OK
			   : SL_SESS_ERR_BAD_FIELD;
	case SL_SESS_ROUTES:
		m->u.routes_req.request_id = sl_get_u64(b);
		return SL_SESS_OK;
	default:
		SL_ASSERT(0);
		return SL_SESS_ERR_BAD_TYPE;
	}
}

enum sl_sess_err sl_sess_decode(const uint8_t *buf, size_t len, uint32_t cluster_id,
				struct sl_sess_msg *out)
{
	if (buf == NULL || out == NULL)
		return SL_SESS_ERR_TRUNCATED;
	if (len > SL_SESS_MSG_MAX)
		return SL_SESS_ERR_OVERSIZE;
	if (len < SL_SESS_HDR_BYTES)
		return SL_SESS_ERR_TRUNCATED;
	if (sl_get_u32(buf) != SL_SESS_MAGIC)
		return SL_SESS_ERR_BAD_MAGIC;
	if (buf[4] != SL_SESS_VERSION)
		return SL_SESS_ERR_BAD_VERSION;
	uint32_t length = sl_get_u32(buf + 8);
	if (length > SL_SESS_MSG_MAX)
		return SL_SESS_ERR_OVERSIZE;
	if (length > len)
		return SL_SESS_ERR_TRUNCATED;
	if (length < len || length < SL_SESS_HDR_BYTES)
		return SL_SESS_ERR_BAD_LENGTH;
	if (sl_get_u32(buf + 16) != msg_crc(buf, len))
		return SL_SESS_ERR_BAD_CRC;
	out->cluster_id = sl_get_u32(buf + 12);
	if (out->cluster_id != cluster_id)
		return SL_SESS_ERR_WRONG_CLUSTER;
	uint8_t type = buf[5];
	uint16_t flags = sl_get_u16(buf + 6);
	out->type = type;
	if (type < SL_SESS_OPEN || type > SL_SESS_TYPE_MAX)
		return SL_SESS_ERR_BAD_TYPE;
	const uint8_t *b = buf + SL_SESS_HDR_BYTES;
	size_t n = len - SL_SESS_HDR_BYTES;
	if (n < body_fixed[type])
		return SL_SESS_ERR_BAD_LENGTH;
	switch (type) {
	case SL_SESS_BATCH:
		return decode_batch(b, n, flags, &out->u.batch);
	case SL_SESS_READ_RESULT:
		return decode_result(b, n, flags, &out->u.result);
	case SL_SESS_READ:
		return decode_read(b, n, flags, &out->u.read);
	default:
		break;
	}
	if (flags != 0)
		return SL_SESS_ERR_BAD_FLAGS;
	if (type == SL_SESS_ERROR)
		return decode_error(b, n, &out->u.error);
	if (type == SL_SESS_ROUTES_OK)
		return decode_routes(b, n, &out->u.routes);
	if (n != body_fixed[type])
		return SL_SESS_ERR_BAD_LENGTH;
	return decode_fixed(type, b, out);
}

void sl_sess_peek_ref(const uint8_t *buf, size_t len, uint8_t *type, uint64_t *ref_id)
{
	*type = buf != NULL && len > 5 ? buf[5] : 0;
	*ref_id =
	    buf != NULL && len >= SL_SESS_HDR_BYTES + 8 ? sl_get_u64(buf + SL_SESS_HDR_BYTES) : 0;
}

void sl_sess_points_init(struct sl_sess_point_iter *it, const struct sl_sess_batch *b)
{
	it->p = b->points;
	it->off = 0;
	it->len = b->points_len;
	it->left = b->count;
}

int sl_sess_points_next(struct sl_sess_point_iter *it, struct sl_point *out)
{
	if (it->left == 0)
		return 0;
	const uint8_t *p = it->p + it->off;
	uint16_t klen = sl_get_u16(p);
	/* the decoder walked these bytes already; a misuse still must not overrun */
	SL_ASSERT(it->len - it->off >= SL_SESS_POINT_FIXED_BYTES + (size_t)klen);
	out->key_len = klen;
	out->key = (const char *)(p + 2);
	out->series_id = sl_series_id(out->key, klen);
	out->ts = (int64_t)sl_get_u64(p + 2 + klen);
	out->type = p[10 + klen];
	out->value = sl_get_u64(p + 11 + klen);
	out->str = NULL;
	out->str_len = 0;
	it->off += SL_SESS_POINT_FIXED_BYTES + klen;
	it->left--;
	return 1;
}

void sl_sess_result_pair(const struct sl_sess_result *r, uint32_t i, int64_t *ts, uint64_t *value)
{
	SL_ASSERT(i < r->count);
	const uint8_t *p = r->pairs + (size_t)i * SL_SESS_PAIR_BYTES;
	*ts = (int64_t)sl_get_u64(p);
	*value = sl_get_u64(p + 8);
}

/* ---- encode ------------------------------------------------------------------------ */

static void put_header(uint8_t *buf, uint8_t type, uint32_t cluster_id)
{
	sl_put_u32(buf, SL_SESS_MAGIC);
	buf[4] = SL_SESS_VERSION;
	buf[5] = type;
	sl_put_u16(buf + 6, 0);
	sl_put_u32(buf + 8, 0);
	sl_put_u32(buf + 12, cluster_id);
	sl_put_u32(buf + 16, 0);
}

/* Length and CRC: the last step of every encoder. */
static size_t seal(uint8_t *buf, size_t len)
{
	sl_put_u32(buf + 8, (uint32_t)len);
	sl_put_u32(buf + 16, msg_crc(buf, len));
	return len;
}

/* Variable part of m: *ptr and its bytes. */
static size_t var_part(const struct sl_sess_msg *m, const void **ptr)
{
	switch (m->type) {
	case SL_SESS_BATCH:
		*ptr = m->u.batch.points;
		return m->u.batch.points_len;
	case SL_SESS_READ_RESULT:
		*ptr = m->u.result.pairs;
		return (size_t)m->u.result.count * SL_SESS_PAIR_BYTES;
	case SL_SESS_READ:
		*ptr = m->u.read.key;
		return m->u.read.key_len;
	case SL_SESS_ERROR:
		*ptr = m->u.error.text;
		return m->u.error.text_len;
	case SL_SESS_ROUTES_OK:
		*ptr = m->u.routes.routes;
		return (size_t)m->u.routes.n_regions * SL_SESS_ROUTE_BYTES;
	default:
		*ptr = NULL;
		return 0;
	}
}

/* Body bytes of m, or 0 when it cannot fit a message or its variable part is missing. */
static size_t body_len(const struct sl_sess_msg *m)
{
	const void *ptr;
	size_t var = var_part(m, &ptr);
	if (var > SL_SESS_MSG_MAX || (var > 0 && ptr == NULL))
		return 0;
	return body_fixed[m->type] + var;
}

static void put_body(uint8_t *b, const struct sl_sess_msg *m, uint16_t *flags)
{
	const size_t fixed = body_fixed[m->type];
	memset(b, 0, fixed);
	switch (m->type) {
	case SL_SESS_OPEN:
		sl_put_u64(b, m->u.open.session_id);
		sl_put_u64(b + 8, m->u.open.next_seq);
		break;
	case SL_SESS_OPEN_OK: {
		const struct sl_sess_open_ok *o = &m->u.open_ok;
		sl_put_u64(b, o->session_id);
		sl_put_u64(b + 8, o->next_seq);
		sl_put_u64(b + 16, o->durable_seq);
		sl_put_u64(b + 24, o->incarnation);
		sl_put_u32(b + 32, o->window);
		b[36] = o->status;
		break;
	}
	case SL_SESS_BATCH: {
		const struct sl_sess_batch *o = &m->u.batch;
		sl_put_u64(b, o->session_id);
		sl_put_u64(b + 8, o->seq);
		sl_put_u32(b + 16, o->count);
		b[20] = o->level;
		break;
	}
	case SL_SESS_ACK: {
		const struct sl_sess_ack *a = &m->u.ack;
		sl_put_u64(b, a->session_id);
		sl_put_u64(b + 8, a->seq);
		sl_put_u64(b + 16, a->expected_seq);
		sl_put_u32(b + 24, a->count_stored);
		b[28] = a->status;
		b[29] = a->level;
		break;
	}
	case SL_SESS_READ: {
		const struct sl_sess_read *r = &m->u.read;
		sl_put_u64(b, r->request_id);
		sl_put_u64(b + 8, (uint64_t)r->from_ts);
		sl_put_u64(b + 16, (uint64_t)r->to_ts);
		sl_put_u64(b + 24, (uint64_t)r->cont_ts);
		sl_put_u32(b + 32, r->max_points);
		b[36] = r->level;
		sl_put_u16(b + 38, r->key_len);
		*flags = r->cont ? SL_SESS_F_CONTINUE : 0;
		break;
	}
	case SL_SESS_READ_RESULT: {
		const struct sl_sess_result *r = &m->u.result;
		sl_put_u64(b, r->request_id);
		sl_put_u64(b + 8, (uint64_t)r->cont_ts);
		sl_put_u32(b + 16, r->count);
		b[20] = r->status;
		b[21] = r->type;
		*flags = r->more ? SL_SESS_F_MORE : 0;
		break;
	}
	case SL_SESS_CLOSE:
		sl_put_u64(b, m->u.close.session_id);
		break;
	case SL_SESS_CLOSE_OK:
		sl_put_u64(b, m->u.close_ok.session_id);
		b[8] = m->u.close_ok.status;
		break;
	case SL_SESS_ERROR: {
		const struct sl_sess_error *e = &m->u.error;
		sl_put_u64(b, e->ref_id);
		sl_put_u16(b + 8, e->code);
		b[10] = e->ref_type;
		sl_put_u16(b + 12, e->text_len);
		break;
	}
	case SL_SESS_ROUTES:
		sl_put_u64(b, m->u.routes_req.request_id);
		break;
	case SL_SESS_ROUTES_OK:
		sl_put_u64(b, m->u.routes.request_id);
		sl_put_u32(b + 8, m->u.routes.node);
		sl_put_u16(b + 12, m->u.routes.n_regions);
		break;
	default:
		SL_ASSERT(0);
	}
	const void *ptr;
	size_t var = var_part(m, &ptr);
	if (var > 0)
		memcpy(b + fixed, ptr, var);
}

int sl_sess_encode(uint8_t *buf, size_t cap, const struct sl_sess_msg *m)
{
	if (buf == NULL || m == NULL || m->type < SL_SESS_OPEN || m->type > SL_SESS_TYPE_MAX)
		return -EINVAL;
	size_t body = body_len(m);
	if (body == 0 || SL_SESS_HDR_BYTES + body > SL_SESS_MSG_MAX)
		return -EINVAL;
	size_t len = SL_SESS_HDR_BYTES + body;
	if (len > cap)
		return -ENOSPC;
	uint16_t flags = 0;
	put_header(buf, m->type, m->cluster_id);
	put_body(buf + SL_SESS_HDR_BYTES, m, &flags);
	sl_put_u16(buf + 6, flags);
	seal(buf, len);
	/* one definition of "valid": whatever the decoder refuses is never sent */
	struct sl_sess_msg check;
	if (sl_sess_decode(buf, len, m->cluster_id, &check) != SL_SESS_OK)
		return -EINVAL;
	return (int)len;
}

/* ---- writers ----------------------------------------------------------------------- */

static int writer_begin(struct sl_sess_writer *w, uint8_t *buf, size_t cap, uint8_t type,
			uint32_t cluster_id, uint32_t max_count)
{
	size_t fixed = SL_SESS_HDR_BYTES + body_fixed[type];
	if (buf == NULL)
		return -EINVAL;
	if (cap < fixed)
		return -ENOSPC;
	w->buf = buf;
	w->cap = cap < SL_SESS_MSG_MAX ? cap : SL_SESS_MSG_MAX;
	w->len = fixed;
	w->count = 0;
	w->max_count = max_count;
	w->type = type;
	w->value_type = 0;
	w->last_ts = INT64_MIN;
	put_header(buf, type, cluster_id);
	memset(buf + SL_SESS_HDR_BYTES, 0, body_fixed[type]);
	return 0;
}

int sl_sess_batch_begin(struct sl_sess_writer *w, uint8_t *buf, size_t cap, uint32_t cluster_id,
			uint64_t session_id, uint64_t seq, uint8_t level)
{
	if (session_id == 0 || !seq_ok(seq) || level > SL_SESS_LEVEL_MAJORITY)
		return -EINVAL;
	int rc = writer_begin(w, buf, cap, SL_SESS_BATCH, cluster_id, SL_SESS_BATCH_POINTS_MAX);
	if (rc != 0)
		return rc;
	uint8_t *b = buf + SL_SESS_HDR_BYTES;
	sl_put_u64(b, session_id);
	sl_put_u64(b + 8, seq);
	b[20] = level;
	return 0;
}

int sl_sess_batch_add(struct sl_sess_writer *w, const struct sl_point *p)
{
	if (w->type != SL_SESS_BATCH || p == NULL || p->key == NULL || !key_len_ok(p->key_len) ||
	    !value_ok(p->type, p->value) || !utf8_ok((const uint8_t *)p->key, p->key_len))
		return -EINVAL;
	size_t need = SL_SESS_POINT_FIXED_BYTES + p->key_len;
	if (w->count >= w->max_count || w->cap - w->len < need)
		return -ENOSPC;
	uint8_t *o = w->buf + w->len;
	sl_put_u16(o, p->key_len);
	memcpy(o + 2, p->key, p->key_len);
	o += 2 + p->key_len;
	sl_put_u64(o, (uint64_t)p->ts);
	o[8] = p->type;
	sl_put_u64(o + 9, p->value);
	w->len += need;
	w->count++;
	return 0;
}

int sl_sess_result_begin(struct sl_sess_writer *w, uint8_t *buf, size_t cap, uint32_t cluster_id,
			 uint64_t request_id, uint8_t status, uint8_t value_type)
{
	if (!status_ok(SL_SESS_READ_RESULT, status) || value_type > SL_VAL_BOOL)
		return -EINVAL;
	int rc = writer_begin(w, buf, cap, SL_SESS_READ_RESULT, cluster_id,
			      status == SL_SESS_ST_OK ? SL_SESS_RESULT_POINTS_MAX : 0);
	if (rc != 0)
		return rc;
	uint8_t *b = buf + SL_SESS_HDR_BYTES;
	sl_put_u64(b, request_id);
	b[20] = status;
	b[21] = value_type;
	w->value_type = value_type;
	return 0;
}

int sl_sess_result_add(struct sl_sess_writer *w, int64_t ts, uint64_t value)
{
	if (w->type != SL_SESS_READ_RESULT || !value_ok(w->value_type, value) ||
	    (w->count > 0 && ts <= w->last_ts))
		return -EINVAL;
	if (w->count >= w->max_count || w->cap - w->len < SL_SESS_PAIR_BYTES)
		return -ENOSPC;
	sl_put_u64(w->buf + w->len, (uint64_t)ts);
	sl_put_u64(w->buf + w->len + 8, value);
	w->len += SL_SESS_PAIR_BYTES;
	w->count++;
	w->last_ts = ts;
	return 0;
}

void sl_sess_result_more(struct sl_sess_writer *w, int64_t cont_ts)
{
	SL_ASSERT(w->type == SL_SESS_READ_RESULT);
	sl_put_u16(w->buf + 6, SL_SESS_F_MORE);
	sl_put_u64(w->buf + SL_SESS_HDR_BYTES + 8, (uint64_t)cont_ts);
}

size_t sl_sess_finish(struct sl_sess_writer *w)
{
	/* count sits at body offset 16 in both BATCH and READ_RESULT */
	sl_put_u32(w->buf + SL_SESS_HDR_BYTES + 16, w->count);
	return seal(w->buf, w->len);
}

/* ---- session table ------------------------------------------------------------------ */

/* Per session: durable_seq <= done_seq < next_seq. Seqs up to done_seq have their session
 * record logged (in seq order); those up to durable_seq have it durable. Completions above
 * done_seq + 1 wait in `held` (ascending seq) until the gap fills. */
struct sl_sess_entry {
	uint64_t session_id; /* 0 while on the free list */
	uint64_t next_seq;
	uint64_t durable_seq;
	uint64_t done_seq;
	int64_t last_active_ns;
	uint32_t last_count; /* of durable_seq, for a re-ack */
	uint32_t prev;	     /* LRU towards the head (more recent) */
	uint32_t next;	     /* LRU towards the tail; free list link */
	uint32_t held;	     /* first held completion (lowest seq), NONE */
	uint32_t held_tail;  /* last held (highest seq): in-order arrivals append in O(1) */
	uint32_t dropped;    /* completions un-accepted by an abort, to hand back as DROP */
	uint8_t last_status;
	uint8_t last_level;
};

/* A held completion, indexed by the caller's cookie; seq 0 while free. */
struct sl_sess_hold {
	uint64_t seq;
	uint32_t next;
	uint32_t pad;
};

static uint32_t slot_count(uint32_t capacity)
{
	uint32_t n = 2;
	while (n < 2 * capacity) /* load factor <= 1/2 keeps probe runs short */
		n *= 2;
	return n;
}

size_t sl_sess_table_mem_bytes(uint32_t capacity, uint32_t hold_max)
{
	if (capacity == 0 || capacity > CAPACITY_MAX || hold_max > CAPACITY_MAX)
		return 0;
	return (size_t)capacity * sizeof(struct sl_sess_entry) +
	       (size_t)hold_max * sizeof(struct sl_sess_hold) +
	       (size_t)slot_count(capacity) * sizeof(uint32_t);
}

static void table_reset(struct sl_sess_table *t)
{
	uint32_t cap = t->cfg.capacity;
	for (uint32_t i = 0; i <= t->slot_mask; i++)
		t->slots[i] = NONE;
	for (uint32_t i = 0; i < cap; i++) {
		t->entries[i] = (struct sl_sess_entry){.prev = NONE,
						       .next = i + 1 < cap ? i + 1 : NONE,
						       .held = NONE,
						       .held_tail = NONE,
						       .dropped = NONE};
	}
	for (uint32_t i = 0; i < t->cfg.hold_max; i++)
		t->holds[i] = (struct sl_sess_hold){.seq = 0, .next = NONE};
	t->free_head = 0;
	t->lru_head = t->lru_tail = NONE;
	t->count = 0;
}

int sl_sess_table_init(struct sl_sess_table *t, void *mem, size_t mem_bytes,
		       const struct sl_sess_config *cfg)
{
	if (t == NULL || mem == NULL || cfg == NULL || ((uintptr_t)mem & 7u) != 0)
		return -EINVAL;
	size_t need = sl_sess_table_mem_bytes(cfg->capacity, cfg->hold_max);
	if (need == 0 || mem_bytes < need || cfg->window == 0 || cfg->keep_min_ns < 0 ||
	    cfg->idle_timeout_ns < cfg->keep_min_ns)
		return -EINVAL;
	memset(t, 0, sizeof *t);
	t->cfg = *cfg;
	t->entries = mem;
	t->holds = (struct sl_sess_hold *)(t->entries + cfg->capacity);
	t->slots = (uint32_t *)(t->holds + cfg->hold_max);
	t->slot_mask = slot_count(cfg->capacity) - 1;
	table_reset(t);
	return 0;
}

/* splitmix64's finaliser: ids are client-chosen, the seed keeps their slots unpredictable */
static uint32_t home_slot(const struct sl_sess_table *t, uint64_t id)
{
	uint64_t x = id ^ t->cfg.hash_seed;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (uint32_t)x & t->slot_mask;
}

/* Slot holding id, or the empty slot ending its probe run (*found false). */
static uint32_t probe(const struct sl_sess_table *t, uint64_t id, bool *found)
{
	uint32_t i = home_slot(t, id);
	for (uint32_t n = 0; n <= t->slot_mask; n++, i = (i + 1) & t->slot_mask) {
		uint32_t e = t->slots[i];
		if (e == NONE || t->entries[e].session_id == id) {
			*found = e != NONE;
			return i;
		}
	}
	SL_ASSERT(0); /* at most half the slots are used, so a run always ends */
	return 0;
}

static struct sl_sess_entry *find(const struct sl_sess_table *t, uint64_t id)
{
	bool found;
	if (id == 0)
		return NULL;
	uint32_t i = probe(t, id, &found);
	return found ? &t->entries[t->slots[i]] : NULL;
}

static uint32_t index_of(const struct sl_sess_table *t, const struct sl_sess_entry *e)
{
	return (uint32_t)(e - t->entries);
}

static void lru_unlink(struct sl_sess_table *t, struct sl_sess_entry *e)
{
	if (e->prev != NONE)
		t->entries[e->prev].next = e->next;
	else
		t->lru_head = e->next;
	if (e->next != NONE)
		t->entries[e->next].prev = e->prev;
	else
		t->lru_tail = e->prev;
	e->prev = e->next = NONE;
}

static void lru_push_head(struct sl_sess_table *t, struct sl_sess_entry *e)
{
	uint32_t i = index_of(t, e);
	e->prev = NONE;
	e->next = t->lru_head;
	if (t->lru_head != NONE)
		t->entries[t->lru_head].prev = i;
	else
		t->lru_tail = i;
	t->lru_head = i;
}

static void touch(struct sl_sess_table *t, struct sl_sess_entry *e, int64_t now_ns)
{
	e->last_active_ns = now_ns;
	if (t->lru_head != index_of(t, e)) {
		lru_unlink(t, e);
		lru_push_head(t, e);
	}
}

/* Batches accepted and not durable, or completions the caller has yet to get back: such a
 * session is never evicted or closed (its cookies would be lost). */
static bool in_flight(const struct sl_sess_entry *e)
{
	return e->next_seq - e->durable_seq > 1 || e->held != NONE || e->dropped != NONE;
}

/* New entry expecting next_seq; the caller made room. */
static struct sl_sess_entry *insert(struct sl_sess_table *t, uint64_t id, uint64_t next_seq,
				    int64_t now_ns)
{
	bool found;
	uint32_t slot = probe(t, id, &found);
	SL_ASSERT(!found && t->free_head != NONE && t->count < t->cfg.capacity);
	uint32_t i = t->free_head;
	struct sl_sess_entry *e = &t->entries[i];
	t->free_head = e->next;
	*e = (struct sl_sess_entry){.session_id = id,
				    .next_seq = next_seq,
				    .durable_seq = next_seq - 1,
				    .done_seq = next_seq - 1,
				    .last_active_ns = now_ns,
				    .last_status = SL_SESS_ST_OK,
				    .prev = NONE,
				    .next = NONE,
				    .held = NONE,
				    .held_tail = NONE,
				    .dropped = NONE};
	t->slots[slot] = i;
	lru_push_head(t, e);
	t->count++;
	return e;
}

/* Backward-shift deletion: later members of the probe run move up, so no tombstones. */
static void remove_entry(struct sl_sess_table *t, struct sl_sess_entry *e)
{
	bool found;
	uint32_t hole = probe(t, e->session_id, &found);
	SL_ASSERT(found);
	uint32_t j = hole;
	for (;;) {
		j = (j + 1) & t->slot_mask;
		uint32_t x = t->slots[j];
		if (x == NONE)
			break;
		uint32_t home = home_slot(t, t->entries[x].session_id);
		/* x may fill the hole only if its home is not in (hole, j] (cyclically) */
		bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (!stays) {
			t->slots[hole] = x;
			hole = j;
		}
	}
	t->slots[hole] = NONE;
	lru_unlink(t, e);
	e->session_id = 0;
	e->next = t->free_head;
	t->free_head = index_of(t, e);
	t->count--;
}

/* Frees one entry when full: the least recently active one with nothing in flight that has
 * been idle keep_min_ns (any idle time when force). */
static bool make_room(struct sl_sess_table *t, int64_t now_ns, bool force)
{
	if (t->count < t->cfg.capacity)
		return true;
	uint32_t i = t->lru_tail;
	for (uint32_t n = 0; n < EVICT_SCAN && i != NONE; n++) {
		struct sl_sess_entry *e = &t->entries[i];
		i = e->prev;
		if (in_flight(e) || (!force && now_ns - e->last_active_ns < t->cfg.keep_min_ns))
			continue;
		remove_entry(t, e);
		t->stats.evicted_lru++;
		return true;
	}
	return false;
}

void sl_sess_on_open(struct sl_sess_table *t, const struct sl_sess_open *o, int64_t now_ns,
		     struct sl_sess_open_ok *reply)
{
	SL_ASSERT(o->session_id != 0 && seq_ok(o->next_seq));
	*reply = (struct sl_sess_open_ok){.session_id = o->session_id,
					  .next_seq = o->next_seq,
					  .durable_seq = o->next_seq - 1,
					  .incarnation = t->cfg.incarnation,
					  .window = t->cfg.window,
					  .status = SL_SESS_ST_OK};
	struct sl_sess_entry *e = find(t, o->session_id);
	if (e != NULL) {
		touch(t, e, now_ns);
		reply->next_seq = e->next_seq;
		reply->durable_seq = e->durable_seq;
		reply->status = SL_SESS_ST_RESUMED;
		t->stats.resumed++;
		return;
	}
	if (!make_room(t, now_ns, false)) {
		reply->status = SL_SESS_ST_BUSY;
		t->stats.open_busy++;
		return;
	}
	insert(t, o->session_id, o->next_seq, now_ns);
	t->stats.opened++;
}

static enum sl_sess_verdict judge(const struct sl_sess_table *t, const struct sl_sess_entry *e,
				  uint64_t seq, uint8_t level)
{
	if (seq <= e->durable_seq)
		return SL_SESS_DUPLICATE;
	if (seq < e->next_seq)
		return SL_SESS_IN_FLIGHT;
	uint64_t ahead = seq - e->next_seq;
	if (ahead >= t->cfg.window)
		return SL_SESS_TOO_FAR_AHEAD;
	/* a level-0 sender never resends, so a gap is abandoned rather than waited for */
	return ahead == 0 || level == SL_SESS_LEVEL_NONE ? SL_SESS_ACCEPT : SL_SESS_OUT_OF_ORDER;
}

static const uint8_t verdict_status[SL_SESS_VERDICT_COUNT] = {
    [SL_SESS_ACCEPT] = SL_SESS_ST_OK,
    [SL_SESS_DUPLICATE] = SL_SESS_ST_DUPLICATE,
    [SL_SESS_IN_FLIGHT] = SL_SESS_ST_OK,
    [SL_SESS_OUT_OF_ORDER] = SL_SESS_ST_OUT_OF_ORDER,
    [SL_SESS_TOO_FAR_AHEAD] = SL_SESS_ST_TOO_FAR_AHEAD,
    [SL_SESS_UNKNOWN] = SL_SESS_ST_UNKNOWN_SESSION,
};

void sl_sess_on_batch(struct sl_sess_table *t, uint64_t session_id, uint64_t seq, uint8_t level,
		      int64_t now_ns, struct sl_sess_decision *d)
{
	memset(d, 0, sizeof *d);
	d->ack.session_id = session_id;
	d->ack.seq = seq;
	struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL || !seq_ok(seq)) {
		d->verdict = SL_SESS_UNKNOWN;
	} else {
		touch(t, e, now_ns);
		d->verdict = judge(t, e, seq, level);
		if (d->verdict == SL_SESS_ACCEPT)
			e->next_seq = seq + 1;
		d->ack.expected_seq = e->next_seq;
		if (d->verdict == SL_SESS_DUPLICATE) {
			d->ack.count_stored = seq == e->durable_seq ? e->last_count : 0;
			d->ack.level = e->last_level;
		}
	}
	d->ack.status = verdict_status[d->verdict];
	/* UNKNOWN is told even to level 0 senders: it is the only way they learn to OPEN */
	d->reply = d->verdict == SL_SESS_UNKNOWN ||
		   (level != SL_SESS_LEVEL_NONE && d->verdict != SL_SESS_ACCEPT &&
		    d->verdict != SL_SESS_IN_FLIGHT);
	t->stats.verdicts[d->verdict]++;
}

int sl_sess_on_durable(struct sl_sess_table *t, uint64_t session_id, uint64_t seq,
		       const struct sl_sess_outcome *o, struct sl_sess_ack *ack)
{
	struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL)
		return -ENOENT;
	/* only a RECORDed seq: all below it are recorded, so all are durable now */
	if (seq <= e->durable_seq || seq > e->done_seq)
		return -ERANGE;
	SL_ASSERT(o->status == SL_SESS_ST_OK || o->status == SL_SESS_ST_REJECTED_POINTS);
	e->durable_seq = seq;
	e->last_count = o->count_stored;
	e->last_status = o->status;
	e->last_level = o->level_reached;
	*ack = (struct sl_sess_ack){.session_id = session_id,
				    .seq = seq,
				    .expected_seq = e->next_seq,
				    .count_stored = o->count_stored,
				    .status = o->status,
				    .level = o->level_reached};
	return o->level_req == SL_SESS_LEVEL_NONE ? 0 : 1;
}

int sl_sess_on_complete(struct sl_sess_table *t, uint64_t session_id, uint64_t seq, uint8_t level,
			uint32_t cookie)
{
	if (session_id == 0 || !seq_ok(seq))
		return -EINVAL;
	struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL)
		return -ENOENT;
	if (seq <= e->done_seq || seq >= e->next_seq) {
		t->stats.dropped++;
		return SL_SESS_DONE_DROP;
	}
	/* level 0 promises nothing about earlier seqs (their gaps are abandoned), so it never
	 * waits; held ones at or below the new mark come back as DROP */
	if (seq == e->done_seq + 1 || level == SL_SESS_LEVEL_NONE) {
		e->done_seq = seq;
		return SL_SESS_DONE_RECORD;
	}
	if (cookie >= t->cfg.hold_max)
		return -ENOSPC;
	struct sl_sess_hold *h = &t->holds[cookie];
	if (h->seq != 0)
		return -EINVAL;
	h->seq = seq;
	h->next = NONE;
	/* ascending: completions mostly come in order, so the tail is the usual place */
	if (e->held == NONE) {
		e->held = e->held_tail = cookie;
	} else if (t->holds[e->held_tail].seq <= seq) {
		t->holds[e->held_tail].next = cookie;
		e->held_tail = cookie;
	} else if (t->holds[e->held].seq > seq) {
		h->next = e->held;
		e->held = cookie;
	} else {
		uint32_t i = e->held;
		while (t->holds[t->holds[i].next].seq <= seq) /* the tail is > seq: ends */
			i = t->holds[i].next;
		h->next = t->holds[i].next;
		t->holds[i].next = cookie;
	}
	t->stats.held++;
	return SL_SESS_DONE_HOLD;
}

/* Takes the first of a list of holds: its cookie and seq, the slot freed. */
static uint32_t hold_pop(struct sl_sess_table *t, uint32_t *head, uint64_t *seq)
{
	uint32_t c = *head;
	struct sl_sess_hold *h = &t->holds[c];
	*head = h->next;
	*seq = h->seq;
	h->seq = 0;
	h->next = NONE;
	return c;
}

int sl_sess_next_done(struct sl_sess_table *t, uint64_t session_id, uint64_t *seq,
		      uint32_t *cookie)
{
	struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL)
		return -ENOENT;
	if (e->dropped != NONE) {
		*cookie = hold_pop(t, &e->dropped, seq);
		t->stats.dropped++;
		return SL_SESS_DONE_DROP;
	}
	if (e->held == NONE)
		return SL_SESS_DONE_NONE;
	uint64_t first = t->holds[e->held].seq;
	if (first > e->done_seq + 1)
		return SL_SESS_DONE_NONE; /* the gap is still open */
	*cookie = hold_pop(t, &e->held, seq);
	if (e->held == NONE)
		e->held_tail = NONE;
	if (first <= e->done_seq) { /* passed by a level-0 record, or the same seq twice */
		t->stats.dropped++;
		return SL_SESS_DONE_DROP;
	}
	e->done_seq = first;
	return SL_SESS_DONE_RECORD;
}

int sl_sess_on_abort(struct sl_sess_table *t, uint64_t session_id, uint64_t seq)
{
	struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL)
		return -ENOENT;
	if (seq <= e->durable_seq || seq >= e->next_seq)
		return -ERANGE;
	e->next_seq = seq;
	if (e->done_seq >= seq)
		e->done_seq = seq - 1; /* its record was not logged after all */
	/* held completions of un-accepted seqs must never be recorded: the retry of those
	 * seqs is accepted afresh. The list is ascending, so they are its tail. */
	uint32_t *link = &e->held, last = NONE;
	while (*link != NONE && t->holds[*link].seq < seq) {
		last = *link;
		link = &t->holds[*link].next;
	}
	if (*link != NONE) {
		/* the cut tail goes in front of what is already dropped */
		uint32_t cut = *link;
		t->holds[e->held_tail].next = e->dropped;
		e->dropped = cut;
		*link = NONE;
		e->held_tail = last;
	}
	return 0;
}

void sl_sess_on_close(struct sl_sess_table *t, const struct sl_sess_close *c,
		      struct sl_sess_close_ok *reply)
{
	reply->session_id = c->session_id;
	struct sl_sess_entry *e = find(t, c->session_id);
	if (e == NULL) {
		reply->status = SL_SESS_ST_UNKNOWN_SESSION;
	} else if (in_flight(e)) {
		reply->status = SL_SESS_ST_BUSY;
	} else {
		remove_entry(t, e);
		t->stats.closed++;
		reply->status = SL_SESS_ST_OK;
	}
}

int sl_sess_recover_durable(struct sl_sess_table *t, uint64_t session_id, uint64_t seq,
			    int64_t now_ns)
{
	if (session_id == 0 || !seq_ok(seq))
		return -EINVAL;
	struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL) {
		if (!make_room(t, now_ns, true))
			return -ENOSPC;
		e = insert(t, session_id, seq + 1, now_ns);
		t->stats.recovered++;
	}
	touch(t, e, now_ns);
	if (seq > e->done_seq)
		e->done_seq = seq;
	if (seq > e->durable_seq) {
		e->durable_seq = seq;
		e->last_count = 0; /* not in the WAL entry: a re-ack says 0 */
		e->last_status = SL_SESS_ST_OK;
		e->last_level = SL_SESS_LEVEL_LOCAL;
	}
	if (e->next_seq <= seq)
		e->next_seq = seq + 1;
	return 0;
}

uint32_t sl_sess_expire(struct sl_sess_table *t, int64_t now_ns, uint32_t max)
{
	uint32_t evicted = 0;
	uint32_t i = t->lru_tail;
	for (uint32_t n = 0; n < max && i != NONE; n++) {
		struct sl_sess_entry *e = &t->entries[i];
		i = e->prev;
		if (now_ns - e->last_active_ns < t->cfg.idle_timeout_ns)
			break; /* the rest of the list is more recent */
		if (in_flight(e))
			continue;
		remove_entry(t, e);
		evicted++;
	}
	t->stats.evicted_idle += evicted;
	return evicted;
}

int sl_sess_lookup(const struct sl_sess_table *t, uint64_t session_id, struct sl_sess_info *out)
{
	const struct sl_sess_entry *e = find(t, session_id);
	if (e == NULL)
		return -ENOENT;
	out->next_seq = e->next_seq;
	out->durable_seq = e->durable_seq;
	out->last_active_ns = e->last_active_ns;
	return 0;
}

uint32_t sl_sess_count(const struct sl_sess_table *t) { return t->count; }

void sl_sess_table_stats(const struct sl_sess_table *t, struct sl_sess_table_stats *out)
{
	*out = t->stats;
}

/* ---- snapshot ----------------------------------------------------------------------- */

#define SNAP_MAGIC 0x54534c53u /* bytes "SLST" */
#define SNAP_VERSION 1

size_t sl_sess_snapshot_bytes(const struct sl_sess_table *t)
{
	return SL_SESS_SNAP_HDR_BYTES + (size_t)t->count * SL_SESS_SNAP_REC_BYTES + 4;
}

int sl_sess_snapshot_write(const struct sl_sess_table *t, uint64_t applied_index, uint8_t *buf,
			   size_t cap)
{
	size_t len = sl_sess_snapshot_bytes(t);
	if (buf == NULL || cap < len)
		return -ENOSPC;
	memset(buf, 0, SL_SESS_SNAP_HDR_BYTES);
	sl_put_u32(buf, SNAP_MAGIC);
	sl_put_u16(buf + 4, SNAP_VERSION);
	sl_put_u32(buf + 8, t->count);
	sl_put_u64(buf + 16, applied_index);
	sl_put_u32(buf + 28, crc32c_std(buf, 28));
	uint8_t *r = buf + SL_SESS_SNAP_HDR_BYTES;
	/* oldest first, so reading back in order rebuilds the same LRU list */
	for (uint32_t i = t->lru_tail; i != NONE; i = t->entries[i].prev) {
		const struct sl_sess_entry *e = &t->entries[i];
		sl_put_u64(r, e->session_id);
		sl_put_u64(r + 8, e->durable_seq);
		sl_put_u32(r + 16, e->last_count);
		r[20] = e->last_status;
		r[21] = e->last_level;
		sl_put_u16(r + 22, 0);
		r += SL_SESS_SNAP_REC_BYTES;
	}
	SL_ASSERT((size_t)(r - buf) == len - 4);
	size_t recs = (size_t)t->count * SL_SESS_SNAP_REC_BYTES;
	sl_put_u32(r, crc32c_std(buf + SL_SESS_SNAP_HDR_BYTES, recs));
	return (int)len;
}

static bool snap_record_ok(const uint8_t *r)
{
	uint64_t id = sl_get_u64(r);
	uint64_t durable = sl_get_u64(r + 8);
	return id != 0 && durable <= SEQ_MAX - 1 &&
	       (r[20] == SL_SESS_ST_OK || r[20] == SL_SESS_ST_REJECTED_POINTS) &&
	       r[21] <= SL_SESS_LEVEL_MAJORITY && sl_get_u16(r + 22) == 0;
}

/* The image's header, length and checksums hold; *count: its records. */
static bool snap_image_ok(const uint8_t *buf, size_t len, uint32_t *count)
{
	if (buf == NULL || len < SL_SESS_SNAP_HDR_BYTES + 4 || sl_get_u32(buf) != SNAP_MAGIC ||
	    sl_get_u16(buf + 4) != SNAP_VERSION || sl_get_u16(buf + 6) != 0 ||
	    sl_get_u32(buf + 12) != 0 || sl_get_u32(buf + 24) != 0 ||
	    sl_get_u32(buf + 28) != crc32c_std(buf, 28))
		return false;
	*count = sl_get_u32(buf + 8);
	size_t recs = (size_t)*count * SL_SESS_SNAP_REC_BYTES;
	return len == SL_SESS_SNAP_HDR_BYTES + recs + 4 &&
	       sl_get_u32(buf + SL_SESS_SNAP_HDR_BYTES + recs) ==
		   crc32c_std(buf + SL_SESS_SNAP_HDR_BYTES, recs);
}

int sl_sess_snapshot_read(struct sl_sess_table *t, const uint8_t *buf, size_t len, int64_t now_ns,
			  uint64_t *applied_index)
{
	if (t->count != 0)
		return -EINVAL;
	uint32_t count = 0;
	if (!snap_image_ok(buf, len, &count))
		return -EBADMSG;
	if (count > t->cfg.capacity)
		return -ENOSPC;
	const uint8_t *r = buf + SL_SESS_SNAP_HDR_BYTES;
	for (uint32_t k = 0; k < count; k++, r += SL_SESS_SNAP_REC_BYTES) {
		uint64_t id = sl_get_u64(r);
		if (!snap_record_ok(r) || find(t, id) != NULL) {
			table_reset(t);
			return -EBADMSG;
		}
		struct sl_sess_entry *e = insert(t, id, sl_get_u64(r + 8) + 1, now_ns);
		e->last_count = sl_get_u32(r + 16);
		e->last_status = r[20];
		e->last_level = r[21];
	}
	t->stats.recovered += count;
	*applied_index = sl_get_u64(buf + 16);
	return 0;
}

int sl_sess_snapshot_merge(struct sl_sess_table *t, const uint8_t *buf, size_t len,
			   int64_t now_ns, uint32_t *merged)
{
	*merged = 0;
	uint32_t count = 0;
	if (!snap_image_ok(buf, len, &count))
		return -EBADMSG;
	const uint8_t *r = buf + SL_SESS_SNAP_HDR_BYTES;
	for (uint32_t k = 0; k < count; k++)
		if (!snap_record_ok(r + (size_t)k * SL_SESS_SNAP_REC_BYTES))
			return -EBADMSG;
	int rc = 0;
	for (uint32_t k = 0; k < count; k++, r += SL_SESS_SNAP_REC_BYTES) {
		uint64_t durable = sl_get_u64(r + 8);
		if (durable == 0)
			continue; /* nothing durable: nothing a retry could repeat */
		int e = sl_sess_recover_durable(t, sl_get_u64(r), durable, now_ns);
		if (e == 0)
			(*merged)++;
		else if (rc == 0)
			rc = e;
	}
	return rc;
}

/* ---- client ------------------------------------------------------------------------- */

struct sl_sess_client_slot {
	uint64_t seq;
	int64_t first_sent_ns;
	int64_t deadline_ns;
	int64_t rto_ns;
	uint32_t len;
	uint32_t points;
};

#define CLIENT_WINDOW_MAX (1u << 20)

size_t sl_sess_client_mem_bytes(uint32_t window, size_t slot_bytes)
{
	if (window == 0 || window > CLIENT_WINDOW_MAX || slot_bytes > SL_SESS_MSG_MAX)
		return 0;
	return (size_t)window * (sizeof(struct sl_sess_client_slot) + slot_bytes);
}

int sl_sess_client_init(struct sl_sess_client *c, void *mem, size_t mem_bytes,
			const struct sl_sess_client_config *cfg)
{
	if (c == NULL || mem == NULL || cfg == NULL || ((uintptr_t)mem & 7u) != 0)
		return -EINVAL;
	size_t need = sl_sess_client_mem_bytes(cfg->window, cfg->slot_bytes);
	if (need == 0 || mem_bytes < need || cfg->session_id == 0 || !seq_ok(cfg->first_seq) ||
	    cfg->level > SL_SESS_LEVEL_MAJORITY ||
	    cfg->slot_bytes < SL_SESS_HDR_BYTES + SL_SESS_BATCH_FIXED_BYTES || cfg->rto_ns <= 0 ||
	    cfg->rto_max_ns < cfg->rto_ns)
		return -EINVAL;
	memset(c, 0, sizeof *c);
	c->cfg = *cfg;
	c->slots = mem;
	c->bufs = (uint8_t *)(c->slots + cfg->window);
	c->base_seq = c->next_seq = cfg->first_seq;
	c->open_deadline_ns = INT64_MIN;
	c->open_rto_ns = cfg->rto_ns;
	return 0;
}

static struct sl_sess_client_slot *slot_of(const struct sl_sess_client *c, uint64_t seq)
{
	return &c->slots[seq % c->cfg.window];
}

static uint8_t *buf_of(const struct sl_sess_client *c, uint64_t seq)
{
	return c->bufs + (size_t)(seq % c->cfg.window) * c->cfg.slot_bytes;
}

static int64_t backoff(int64_t rto_ns, int64_t max_ns)
{
	return rto_ns > max_ns / 2 ? max_ns : 2 * rto_ns;
}

static int64_t after(int64_t now_ns, int64_t d_ns)
{
	return now_ns > INT64_MAX - d_ns ? INT64_MAX : now_ns + d_ns;
}

int sl_sess_client_poll(struct sl_sess_client *c, int64_t now_ns, const uint8_t **dgram,
			size_t *len)
{
	if (!c->open) {
		if (now_ns < c->open_deadline_ns)
			return 0;
		/* propose the oldest unacked seq: the node keeps its own state if it has one */
		struct sl_sess_msg m = {.type = SL_SESS_OPEN, .cluster_id = c->cfg.cluster_id};
		m.u.open = (struct sl_sess_open){c->cfg.session_id, c->base_seq};
		int n = sl_sess_encode(c->open_buf, sizeof c->open_buf, &m);
		SL_ASSERT(n > 0);
		c->open_deadline_ns = after(now_ns, c->open_rto_ns);
		c->open_rto_ns = backoff(c->open_rto_ns, c->cfg.rto_max_ns);
		c->stats.opens_sent++;
		*dgram = c->open_buf;
		*len = (size_t)n;
		return 1;
	}
	for (uint64_t s = c->base_seq; s < c->next_seq; s++) {
		struct sl_sess_client_slot *sl = slot_of(c, s);
		if (sl->deadline_ns > now_ns)
			continue;
		sl->rto_ns = backoff(sl->rto_ns, c->cfg.rto_max_ns);
		sl->deadline_ns = after(now_ns, sl->rto_ns);
		c->stats.retransmits++;
		*dgram = buf_of(c, s);
		*len = sl->len;
		return 1;
	}
	return 0;
}

int64_t sl_sess_client_deadline(const struct sl_sess_client *c)
{
	if (!c->open)
		return c->open_deadline_ns;
	int64_t d = INT64_MAX;
	for (uint64_t s = c->base_seq; s < c->next_seq; s++) {
		if (slot_of(c, s)->deadline_ns < d)
			d = slot_of(c, s)->deadline_ns;
	}
	return d;
}

int sl_sess_client_batch(struct sl_sess_client *c, struct sl_sess_writer *w)
{
	if (!c->open || c->next_seq - c->base_seq >= c->cfg.window || c->next_seq > SEQ_MAX)
		return -EAGAIN;
	return sl_sess_batch_begin(w, buf_of(c, c->next_seq), c->cfg.slot_bytes, c->cfg.cluster_id,
				   c->cfg.session_id, c->next_seq, c->cfg.level);
}

int sl_sess_client_send(struct sl_sess_client *c, struct sl_sess_writer *w, int64_t now_ns,
			const uint8_t **dgram, size_t *len)
{
	uint64_t seq = c->next_seq;
	if (w->buf != buf_of(c, seq) || w->type != SL_SESS_BATCH ||
	    sl_get_u64(w->buf + SL_SESS_HDR_BYTES + 8) != seq)
		return -EINVAL; /* not the batch sl_sess_client_batch began */
	struct sl_sess_client_slot *sl = slot_of(c, seq);
	sl->seq = seq;
	sl->len = (uint32_t)sl_sess_finish(w);
	sl->points = w->count;
	sl->first_sent_ns = now_ns;
	sl->rto_ns = c->cfg.rto_ns;
	sl->deadline_ns = after(now_ns, sl->rto_ns);
	c->next_seq++;
	if (c->cfg.level == SL_SESS_LEVEL_NONE)
		c->base_seq = c->next_seq; /* fire and forget: nothing to retransmit */
	c->stats.batches_sent++;
	*dgram = w->buf;
	*len = sl->len;
	return 0;
}

/* Batches base..hi are done. */
static void ack_through(struct sl_sess_client *c, uint64_t hi, struct sl_sess_client_event *ev)
{
	if (hi < c->base_seq)
		return;
	ev->acked_lo = c->base_seq;
	ev->acked_hi = hi;
	for (uint64_t s = c->base_seq; s <= hi; s++)
		ev->points += slot_of(c, s)->points;
	ev->first_sent_ns = slot_of(c, hi)->first_sent_ns;
	c->stats.batches_acked += hi - c->base_seq + 1;
	c->stats.points_acked += ev->points;
	c->base_seq = hi + 1;
}

/* Batches from..next-1 are due now (go-back-N), unless this was just done for from. */
static void resend_from(struct sl_sess_client *c, uint64_t from, int64_t now_ns)
{
	if (c->go_back_seq == from && now_ns - c->go_back_ns < c->cfg.rto_ns)
		return; /* one reply per batch past the gap: act once */
	for (uint64_t s = from; s < c->next_seq; s++)
		slot_of(c, s)->deadline_ns = now_ns;
	c->go_back_seq = from;
	c->go_back_ns = now_ns;
	c->stats.go_back++;
}

static int client_on_open_ok(struct sl_sess_client *c, const struct sl_sess_open_ok *o,
			     int64_t now_ns, struct sl_sess_client_event *ev)
{
	if (c->open)
		return 0; /* a duplicate of the OPEN_OK already taken */
	if (o->status == SL_SESS_ST_BUSY) {
		c->stats.busy++;
		return 0; /* poll resends the OPEN after its backoff */
	}
	bool windowed = c->cfg.level != SL_SESS_LEVEL_NONE;
	if (o->next_seq > c->next_seq || (windowed && o->next_seq < c->base_seq))
		return -EPROTO;
	c->open = true;
	c->incarnation = o->incarnation;
	c->open_rto_ns = c->cfg.rto_ns;
	ev->opened = true;
	if (windowed && o->durable_seq >= c->base_seq)
		ack_through(c, o->durable_seq, ev);
	for (uint64_t s = c->base_seq; s < c->next_seq; s++) {
		/* in flight on the node: its ack will come; the rest is resent now */
		slot_of(c, s)->deadline_ns =
		    s < o->next_seq ? after(now_ns, c->cfg.rto_ns) : now_ns;
	}
	return 0;
}

static int client_on_ack(struct sl_sess_client *c, const struct sl_sess_ack *a, int64_t now_ns,
			 struct sl_sess_client_event *ev)
{
	bool windowed = c->cfg.level != SL_SESS_LEVEL_NONE;
	switch (a->status) {
	case SL_SESS_ST_OK:
	case SL_SESS_ST_DUPLICATE:
	case SL_SESS_ST_REJECTED_POINTS:
		if (a->seq >= c->next_seq)
			return -EPROTO;
		/* durable in seq order: this ack covers every earlier batch too */
		if (windowed && a->seq >= c->base_seq) {
			ack_through(c, a->seq, ev);
			ev->count_stored = a->count_stored;
			ev->level = a->level;
		}
		return 0;
	case SL_SESS_ST_OUT_OF_ORDER:
	case SL_SESS_ST_TOO_FAR_AHEAD:
		if (a->expected_seq > c->next_seq || (windowed && a->expected_seq < c->base_seq))
			return -EPROTO;
		resend_from(c, a->expected_seq, now_ns);
		return 0;
	case SL_SESS_ST_BUSY:
	case SL_SESS_ST_STORAGE_ERROR:
		c->stats.busy++;
		if (a->seq >= c->base_seq && a->seq < c->next_seq) {
			struct sl_sess_client_slot *sl = slot_of(c, a->seq);
			sl->rto_ns = backoff(sl->rto_ns, c->cfg.rto_max_ns);
			sl->deadline_ns = after(now_ns, sl->rto_ns);
		}
		return 0;
	case SL_SESS_ST_UNKNOWN_SESSION:
		if (c->open) {
			c->open = false;
			c->open_deadline_ns = now_ns;
			c->open_rto_ns = c->cfg.rto_ns;
			c->stats.reopens++;
		}
		return 0;
	default:
		return 0;
	}
}

int sl_sess_client_on_msg(struct sl_sess_client *c, const struct sl_sess_msg *m, int64_t now_ns,
			  struct sl_sess_client_event *ev)
{
	memset(ev, 0, sizeof *ev);
	switch (m->type) {
	case SL_SESS_OPEN_OK:
		if (m->u.open_ok.session_id != c->cfg.session_id)
			return 0;
		ev->status = m->u.open_ok.status;
		return client_on_open_ok(c, &m->u.open_ok, now_ns, ev);
	case SL_SESS_ACK:
		if (m->u.ack.session_id != c->cfg.session_id)
			return 0;
		ev->status = m->u.ack.status;
		return client_on_ack(c, &m->u.ack, now_ns, ev);
	case SL_SESS_CLOSE_OK:
		if (m->u.close_ok.session_id == c->cfg.session_id)
			ev->status = m->u.close_ok.status;
		return 0;
	default:
		return 0;
	}
}

uint32_t sl_sess_client_unacked(const struct sl_sess_client *c)
{
	return (uint32_t)(c->next_seq - c->base_seq);
}

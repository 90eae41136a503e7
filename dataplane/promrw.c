/* promrw.c - Prometheus remote write 1.0 decoder (promrw.h): snappy block -> protobuf-c
 * WriteRequest -> one canonical series key per TimeSeries -> one callback per sample.
 * Every byte of the body is untrusted: snappy and protobuf-c check their own formats, and
 * this file checks every label before it becomes part of a key. */
#include "lineproto.h"
#include "promrw.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "prom_remote.pb-c.h"

#define NS_PER_MS 1000000
#define FIELD_SUFFIX " value" /* the one field of every series, after the tags */
#define FIELD_SUFFIX_LEN (sizeof(FIELD_SUFFIX) - 1)

const char *sl_prw_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case SL_PRW_E_INVAL:
		return "invalid argument";
	case SL_PRW_E_SNAPPY:
		return "bad snappy data";
	case SL_PRW_E_TOO_LARGE:
		return "request too large";
	case SL_PRW_E_PROTOBUF:
		return "bad protobuf";
	case SL_PRW_E_NOMEM:
		return "out of memory";
	default:
		return "unknown error";
	}
}

/* ---- labels ------------------------------------------------------------------------ */

/* A label name or value the line protocol can write: valid UTF-8, no NUL, and no backslash
 * at the end (it would escape the delimiter after it). Empty is fine here. */
static bool text_ok(const ProtobufCBinaryData *t)
{
	if (t->len == 0)
		return true;
	return memchr(t->data, '\0', t->len) == NULL && t->data[t->len - 1] != '\\' &&
	       sl_lp_utf8_valid(t->data, t->len);
}

/* The first byte of a measurement the line protocol reads as one: not '#' (a comment line),
 * nor a tab or '\r' (skipped as whitespace before the measurement; a space is escaped, so
 * it stays). NUL is refused before. */
static bool measurement_start_ok(uint8_t c) { return c != '#' && c != '\t' && c != '\r'; }

static bool is_name_label(const ProtobufCBinaryData *name)
{
	return name->len == 8 && memcmp(name->data, "__name__", 8) == 0;
}

/* A byte a tag name or value escapes with a backslash. */
static bool tag_special(uint8_t c) { return c == ',' || c == '=' || c == ' '; }

/* Reads a tag name as it is written (escaped), byte by byte: the sort order of the line
 * protocol parser, which compares written names. */
struct esc_reader {
	const uint8_t *p;
	size_t n, i;
	int pending; /* the special byte after a backslash just read, or -1 */
};

static int esc_next(struct esc_reader *r)
{
	if (r->pending >= 0) {
		int c = r->pending;
		r->pending = -1;
		return c;
	}
	if (r->i == r->n)
		return -1;
	uint8_t c = r->p[r->i++];
	if (tag_special(c)) {
		r->pending = c;
		return '\\';
	}
	return c;
}

/* qsort order of two labels: their written names in memcmp order, a prefix first. Equal
 * names compare equal (escaping is one-to-one). */
static int label_cmp(const void *a, const void *b)
{
	const Prometheus__Label *x = *(Prometheus__Label *const *)a;
	const Prometheus__Label *y = *(Prometheus__Label *const *)b;
	struct esc_reader rx = {x->name.data, x->name.len, 0, -1};
	struct esc_reader ry = {y->name.data, y->name.len, 0, -1};
	for (;;) {
		int cx = esc_next(&rx), cy = esc_next(&ry);
		if (cx != cy)
			return cx < cy ? -1 : 1; /* -1 (the end) sorts before any byte */
		if (cx < 0)
			return 0;
	}
}

static bool same_name(const Prometheus__Label *x, const Prometheus__Label *y)
{
	return x->name.len == y->name.len &&
	       (x->name.len == 0 || memcmp(x->name.data, y->name.data, x->name.len) == 0);
}

/* ---- the series key ---------------------------------------------------------------- */

struct key_buf {
	char b[SL_KEY_MAX + 1]; /* + the NUL */
	size_t len;
	bool over; /* more than SL_KEY_MAX bytes were written */
};

static void key_put(struct key_buf *k, char c)
{
	if (k->len == SL_KEY_MAX) {
		k->over = true;
		return;
	}
	k->b[k->len++] = c;
}

/* Appends t escaped: a backslash before ',' and ' ', and before '=' too when tag is set. */
static void key_put_text(struct key_buf *k, const ProtobufCBinaryData *t, bool tag)
{
	for (size_t i = 0; i < t->len && !k->over; i++) {
		char c = (char)t->data[i];
		if (c == ',' || c == ' ' || (tag && c == '='))
			key_put(k, '\\');
		key_put(k, c);
	}
}

enum series_verdict { SERIES_OK, SERIES_BAD_LABELS, SERIES_DUP, SERIES_NO_NAME, SERIES_TOO_LONG };

/* The canonical key of a series into *k; sorts ts->labels in place. */
static enum series_verdict series_key(Prometheus__TimeSeries *ts, struct key_buf *k)
{
	size_t n = ts->n_labels;
	for (size_t i = 0; i < n; i++) {
		const Prometheus__Label *l = ts->labels[i];
		if (l->name.len == 0 || !text_ok(&l->name) || !text_ok(&l->value))
			return SERIES_BAD_LABELS;
		if (is_name_label(&l->name) && l->value.len > 0 &&
		    !measurement_start_ok(l->value.data[0]))
			return SERIES_BAD_LABELS;
	}
	if (n > 1)
		qsort(ts->labels, n, sizeof(ts->labels[0]), label_cmp);
	const Prometheus__Label *name = NULL;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && same_name(ts->labels[i - 1], ts->labels[i]))
			return SERIES_DUP;
		if (is_name_label(&ts->labels[i]->name))
			name = ts->labels[i];
	}
	if (name == NULL || name->value.len == 0)
		return SERIES_NO_NAME;

	k->len = 0;
	k->over = false;
	key_put_text(k, &name->value, false);
	for (size_t i = 0; i < n && !k->over; i++) {
		const Prometheus__Label *l = ts->labels[i];
		if (l == name || l->value.len == 0)
			continue;
		key_put(k, ',');
		key_put_text(k, &l->name, true);
		key_put(k, '=');
		key_put_text(k, &l->value, true);
	}
	for (size_t i = 0; i < FIELD_SUFFIX_LEN; i++)
		key_put(k, FIELD_SUFFIX[i]);
	if (k->over)
		return SERIES_TOO_LONG;
	k->b[k->len] = '\0';
	return SERIES_OK;
}

/* ---- decoding ---------------------------------------------------------------------- */

/* protobuf-c reports any failure as a NULL message: the allocator says which were ours. */
struct unpack_mem {
	bool failed;
};

static void *mem_alloc(void *data, size_t size)
{
	void *p = malloc(size > 0 ? size : 1);
	if (p == NULL)
		((struct unpack_mem *)data)->failed = true;
	return p;
}

static void mem_free(void *data, void *p)
{
	(void)data;
	free(p);
}

/* Uncompresses and unpacks the body into *out. */
static int unpack(const uint8_t *body, size_t len, size_t max_uncompressed,
		  Prometheus__WriteRequest **out)
{
	size_t raw_len;
	if (len == 0 || snappy_uncompressed_length((const char *)body, len, &raw_len) != SNAPPY_OK)
		return SL_PRW_E_SNAPPY;
	if (raw_len > max_uncompressed)
		return SL_PRW_E_TOO_LARGE;
	char *raw = malloc(raw_len > 0 ? raw_len : 1);
	if (raw == NULL)
		return SL_PRW_E_NOMEM;
	size_t got = raw_len;
	if (snappy_uncompress((const char *)body, len, raw, &got) != SNAPPY_OK || got != raw_len) {
		free(raw);
		return SL_PRW_E_SNAPPY;
	}
	struct unpack_mem mem = {false};
	ProtobufCAllocator alloc = {mem_alloc, mem_free, &mem};
	*out = prometheus__write_request__unpack(&alloc, raw_len, (const uint8_t *)raw);
	free(raw); /* protobuf-c copies every bytes field: the message does not point into raw */
	if (*out == NULL)
		return mem.failed ? SL_PRW_E_NOMEM : SL_PRW_E_PROTOBUF;
	return 0;
}

/* Delivers the samples of one accepted series; the callback's non-zero value, else 0. */
static int deliver(const Prometheus__TimeSeries *ts, const struct key_buf *k, sl_prw_sample_cb cb,
		   void *arg, struct sl_prw_result *res)
{
	struct sl_prw_sample s = {
	    .series_id = sl_series_id(k->b, k->len), .key = k->b, .key_len = (uint16_t)k->len};
	for (size_t j = 0; j < ts->n_samples; j++) {
		const Prometheus__Sample *smp = ts->samples[j];
		int64_t ms = smp->timestamp;
		if (ms > INT64_MAX / NS_PER_MS || ms < INT64_MIN / NS_PER_MS) {
			res->bad_ts++;
			res->samples_refused++;
			continue;
		}
		s.ts = ms * NS_PER_MS;
		memcpy(&s.value, &smp->value, sizeof s.value); /* the bits, not the number */
		int rc = cb(arg, &s);
		if (rc != 0)
			return rc;
		res->samples++;
	}
	return 0;
}

int sl_prw_decode(const uint8_t *body, size_t len, size_t max_uncompressed, sl_prw_sample_cb cb,
		  void *arg, struct sl_prw_result *res)
{
	struct sl_prw_result scratch;
	if (res == NULL)
		res = &scratch;
	memset(res, 0, sizeof(*res));
	if ((body == NULL && len > 0) || cb == NULL) {
		res->err = SL_PRW_E_INVAL;
		return res->err;
	}

	Prometheus__WriteRequest *req = NULL;
	int rc = unpack(body, len, max_uncompressed, &req);
	if (rc != 0) {
		res->err = rc;
		return rc;
	}

	struct key_buf key;
	for (size_t i = 0; i < req->n_timeseries && rc == 0; i++) {
		Prometheus__TimeSeries *ts = req->timeseries[i];
		res->series++;
		switch (series_key(ts, &key)) {
		case SERIES_OK:
			res->series_ok++;
			rc = deliver(ts, &key, cb, arg, res);
			continue;
		case SERIES_BAD_LABELS:
			res->bad_labels++;
			break;
		case SERIES_DUP:
			res->dup_labels++;
			break;
		case SERIES_NO_NAME:
			res->no_name++;
			break;
		case SERIES_TOO_LONG:
			res->too_long_keys += ts->n_samples;
			break;
		}
		res->samples_refused += ts->n_samples;
	}

	ProtobufCAllocator alloc = {mem_alloc, mem_free, &(struct unpack_mem){false}};
	prometheus__write_request__free_unpacked(req, &alloc);
	res->err = rc;
	return rc;
}

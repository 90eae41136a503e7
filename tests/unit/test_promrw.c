/* test_promrw.c - cmocka tests of the Prometheus remote write decoder: requests built with the
 * generated protobuf-c code, packed and snappy-compressed as a sender does, then decoded.
 * Series keys (order, escaping, dropped empty labels, agreement with the line protocol's
 * canonical keys), timestamps, value bits, every refusal and its counter, whole-request
 * errors, and a seeded loop of random and mutated bodies that must all get an answer. */
/* cmocka needs these before it, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "batch.h"
#include "lineproto.h"
#include "prom_remote.pb-c.h"
#include "promrw.h"

#define MAX_RAW (1u << 20)
#define NO_LIMIT ((size_t)64 << 20)

/* ---- building requests ------------------------------------------------------------- */

#define B_SERIES 16
#define B_LABELS 80
#define B_SAMPLES 8

static struct {
	Prometheus__WriteRequest req;
	Prometheus__TimeSeries ts[B_SERIES];
	Prometheus__TimeSeries *tsp[B_SERIES];
	Prometheus__Label lab[B_SERIES][B_LABELS];
	Prometheus__Label *labp[B_SERIES][B_LABELS];
	Prometheus__Sample smp[B_SERIES][B_SAMPLES];
	Prometheus__Sample *smpp[B_SERIES][B_SAMPLES];
} B;

static uint8_t raw[MAX_RAW];
static uint8_t body[MAX_RAW + MAX_RAW / 6 + 64]; /* snappy_max_compressed_length bound */
static size_t body_len;

static void b_init(void)
{
	memset(&B, 0, sizeof B);
	prometheus__write_request__init(&B.req);
	B.req.timeseries = B.tsp;
}

/* A new series; its index. */
static size_t b_series(void)
{
	size_t i = B.req.n_timeseries++;
	assert_true(i < B_SERIES);
	prometheus__time_series__init(&B.ts[i]);
	B.ts[i].labels = B.labp[i];
	B.ts[i].samples = B.smpp[i];
	B.tsp[i] = &B.ts[i];
	return i;
}

static void b_label_n(size_t s, const char *name, size_t nlen, const char *value, size_t vlen)
{
	size_t j = B.ts[s].n_labels++;
	assert_true(j < B_LABELS);
	Prometheus__Label *l = &B.lab[s][j];
	prometheus__label__init(l);
	l->name = (ProtobufCBinaryData){nlen, (uint8_t *)(uintptr_t)name};
	l->value = (ProtobufCBinaryData){vlen, (uint8_t *)(uintptr_t)value};
	B.labp[s][j] = l;
}

static void b_label(size_t s, const char *name, const char *value)
{
	b_label_n(s, name, strlen(name), value, strlen(value));
}

static double f64_of(uint64_t bits)
{
	double d;
	memcpy(&d, &bits, sizeof d);
	return d;
}

static uint64_t bits_of(double d)
{
	uint64_t v;
	memcpy(&v, &d, sizeof v);
	return v;
}

/* A sample with the given value bits (copied as bits, never through a double register). */
static void b_sample_bits(size_t s, uint64_t bits, int64_t ms)
{
	size_t j = B.ts[s].n_samples++;
	assert_true(j < B_SAMPLES);
	Prometheus__Sample *p = &B.smp[s][j];
	prometheus__sample__init(p);
	memcpy(&p->value, &bits, sizeof bits);
	p->timestamp = ms;
	B.smpp[s][j] = p;
}

static void b_sample(size_t s, double v, int64_t ms) { b_sample_bits(s, bits_of(v), ms); }

/* One series: name, then (name, value) label pairs up to a NULL, and one sample 1.0 @ 1 ms. */
static size_t b_simple(const char *metric, ...)
{
	size_t s = b_series();
	if (metric != NULL)
		b_label(s, "__name__", metric);
	va_list ap;
	va_start(ap, metric);
	for (;;) {
		const char *n = va_arg(ap, const char *);
		if (n == NULL)
			break;
		b_label(s, n, va_arg(ap, const char *));
	}
	va_end(ap);
	b_sample(s, 1.0, 1);
	return s;
}

/* snappy-compresses raw[0..n) into body. */
static void compress_raw(size_t n)
{
	assert_true(snappy_max_compressed_length(n) <= sizeof body);
	body_len = sizeof body;
	assert_int_equal(snappy_compress((const char *)raw, n, (char *)body, &body_len), SNAPPY_OK);
}

/* Packs B.req into raw; its length. */
static size_t b_pack_raw(void)
{
	size_t n = prometheus__write_request__get_packed_size(&B.req);
	assert_true(n <= sizeof raw);
	assert_int_equal(prometheus__write_request__pack(&B.req, raw), n);
	return n;
}

static void b_pack(void) { compress_raw(b_pack_raw()); }

/* ---- collecting samples ------------------------------------------------------------ */

struct got {
	char key[SL_KEY_MAX + 1];
	uint16_t key_len;
	uint64_t series_id, value;
	int64_t ts;
};

#define G_MAX 64
static struct got G[G_MAX];
static size_t NG;
static size_t stop_after; /* 0: never stop; else return STOP_RC on sample number stop_after */
#define STOP_RC 7
static struct sl_prw_result R;

static int collect(void *arg, const struct sl_prw_sample *s)
{
	(void)arg;
	/* every delivered sample is well-formed, whatever the input */
	if (s->key == NULL || s->key_len == 0 || s->key_len > SL_KEY_MAX ||
	    s->key[s->key_len] != '\0' || s->series_id != sl_series_id(s->key, s->key_len))
		fail_msg("malformed sample");
	if (stop_after != 0 && NG + 1 == stop_after)
		return STOP_RC;
	if (NG < G_MAX) {
		struct got *g = &G[NG];
		memcpy(g->key, s->key, s->key_len);
		g->key[s->key_len] = '\0';
		g->key_len = s->key_len;
		g->series_id = s->series_id;
		g->value = s->value;
		g->ts = s->ts;
	}
	NG++;
	return 0;
}

static int decode_max(size_t max)
{
	NG = 0;
	memset(&R, 0xa5, sizeof R); /* sl_prw_decode zeroes it */
	int rc = sl_prw_decode(body, body_len, max, collect, NULL, &R);
	assert_int_equal(R.err, rc);
	return rc;
}

static int decode(void) { return decode_max(NO_LIMIT); }

/* Packs B, decodes, expects success. */
static void b_decode_ok(void)
{
	b_pack();
	int rc = decode();
	if (rc != 0)
		fail_msg("decode: %d (%s)", rc, sl_prw_strerror(rc));
}

static void expect_key(size_t i, const char *key)
{
	assert_true(i < NG);
	if (strcmp(G[i].key, key) != 0)
		fail_msg("key %zu is '%s', want '%s'", i, G[i].key, key);
	assert_int_equal(G[i].key_len, strlen(key));
	assert_int_equal(G[i].series_id, sl_series_id(key, strlen(key)));
}

/* The key of a one-series request built by b_simple(...). */
#define EXPECT_SIMPLE_KEY(want, ...)                                                               \
	do {                                                                                       \
		b_init();                                                                          \
		b_simple(__VA_ARGS__, NULL);                                                       \
		b_decode_ok();                                                                     \
		assert_int_equal(NG, 1);                                                           \
		expect_key(0, want);                                                               \
	} while (0)

/* Refusal of a one-series request built by b_simple(...): no sample, the counter named. */
#define EXPECT_REFUSED(counter, ...)                                                               \
	do {                                                                                       \
		b_init();                                                                          \
		b_simple(__VA_ARGS__, NULL);                                                       \
		b_decode_ok();                                                                     \
		assert_int_equal(NG, 0);                                                           \
		assert_int_equal(R.series, 1);                                                     \
		assert_int_equal(R.series_ok, 0);                                                  \
		assert_int_equal(R.samples_refused, 1);                                            \
		assert_int_equal(R.counter, 1);                                                    \
		assert_int_equal(R.bad_labels + R.dup_labels + R.no_name + R.too_long_keys, 1);    \
	} while (0)

/* The key is what the line protocol makes of it: parsed as a typed key it comes back as is. */
static void expect_lp_fixed_point(const char *key, size_t len)
{
	char out[SL_KEY_MAX + 1];
	int n = sl_lp_canonical_key(key, len, out, sizeof out);
	if (n != (int)len || memcmp(out, key, len) != 0)
		fail_msg("'%.*s': line protocol canonical form %d '%s'", (int)len, key, n,
			 n > 0 ? out : "");
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_basic(void **state)
{
	(void)state;
	b_init();
	size_t s = b_series();
	b_label(s, "__name__", "http_requests_total");
	b_label(s, "method", "post");
	b_label(s, "code", "200");
	b_sample(s, 1.5, 1700000000123);
	b_sample(s, -2.25, -5);
	b_decode_ok();

	assert_int_equal(NG, 2);
	expect_key(0, "http_requests_total,code=200,method=post value");
	expect_key(1, "http_requests_total,code=200,method=post value");
	assert_int_equal(G[0].ts, 1700000000123000000);
	assert_int_equal(G[1].ts, -5000000);
	assert_true(f64_of(G[0].value) == 1.5);
	assert_true(f64_of(G[1].value) == -2.25);
	assert_int_equal(R.series, 1);
	assert_int_equal(R.series_ok, 1);
	assert_int_equal(R.samples, 2);
	assert_int_equal(R.samples_refused, 0);
	assert_int_equal(R.bad_labels + R.dup_labels + R.no_name + R.too_long_keys + R.bad_ts, 0);
	assert_int_equal(R.err, 0);

	/* the same series written as a line reads back to the same key */
	const char *line = "http_requests_total,method=post,code=200 value=1.5 1";
	static char scratch[SL_LP_SCRATCH_BYTES(256)];
	static struct sl_lp_line l;
	struct sl_lp_opts o = {.precision = SL_LP_PREC_NS};
	sl_lp_line_init(&l, scratch, sizeof scratch);
	assert_int_equal(sl_lp_parse_line(line, strlen(line), &o, &l), 0);
	assert_int_equal(l.fields[0].key_len, G[0].key_len);
	assert_memory_equal(l.fields[0].key, G[0].key, G[0].key_len);
	assert_int_equal(l.fields[0].series_id, G[0].series_id);

	/* several series, in the request's order; a series without samples is no error */
	b_init();
	b_simple("b", "x", "1", NULL);
	b_series();
	b_label(1, "__name__", "empty");
	b_simple("a", NULL);
	b_decode_ok();
	assert_int_equal(NG, 2);
	expect_key(0, "b,x=1 value");
	expect_key(1, "a value");
	assert_int_equal(R.series, 3);
	assert_int_equal(R.series_ok, 3);
	assert_int_equal(R.samples, 2);
}

static void test_label_order(void **state)
{
	(void)state;
	/* __name__ is the measurement wherever it is; tags in memcmp order of their names */
	b_init();
	size_t s = b_series();
	b_label(s, "zone", "z");
	b_label(s, "b", "2");
	b_label(s, "__name__", "up");
	b_label(s, "B", "upper");
	b_label(s, "ab", "3");
	b_label(s, "a", "1");
	b_label(s, "_x", "u");
	b_label(s, "\xc3\xa9t\xc3\xa9", "summer"); /* "été": bytes above ASCII sort last */
	b_sample(s, 1, 1);
	b_decode_ok();
	expect_key(0, "up,B=upper,_x=u,a=1,ab=3,b=2,zone=z,\xc3\xa9t\xc3\xa9=summer value");

	/* empty values are no labels; other labels named like internal ones stay tags */
	EXPECT_SIMPLE_KEY("m,job=j value", "m", "instance", "", "job", "j", "x", "");
	EXPECT_SIMPLE_KEY("m,__meta=1,le=+Inf value", "m", "le", "+Inf", "__meta", "1");
	EXPECT_SIMPLE_KEY("m value", "m");
	EXPECT_SIMPLE_KEY("m value", "m", "a", "");
}

static void test_escaping(void **state)
{
	(void)state;
	/* measurement: ',' and ' ' escaped, '=' as is */
	EXPECT_SIMPLE_KEY("a\\,b\\ c=d value", "a,b c=d");
	/* tag names and values: ',', '=' and ' ' escaped */
	EXPECT_SIMPLE_KEY("m,k\\,e\\=y\\ =v\\,a\\=l\\ ue value", "m", "k,e=y ", "v,a=l ue");
	EXPECT_SIMPLE_KEY("m,path=/a\\ b/c value", "m", "path", "/a b/c");
	/* a backslash elsewhere is a byte of the name; quotes, tabs, newlines pass as they are */
	EXPECT_SIMPLE_KEY("m\\x,t=a\\b\\\\c value", "m\\x", "t", "a\\b\\\\c");
	EXPECT_SIMPLE_KEY("m,t=a\\\\\\,b value", "m", "t", "a\\\\,b");
	EXPECT_SIMPLE_KEY("m,q=\"x\"\ty\nz value", "m", "q", "\"x\"\ty\nz");
	EXPECT_SIMPLE_KEY("\\ lead,t=\\=x value", " lead", "t", "=x");
	/* the examples of docs/prometheus.md */
	EXPECT_SIMPLE_KEY("up,job=node value", "up", "job", "node", "instance", "");
	EXPECT_SIMPLE_KEY("fs_free,mount=/mnt/my\\ disk,opts=ro\\,noatime value", "fs_free",
			  "mount", "/mnt/my disk", "opts", "ro,noatime");
	EXPECT_SIMPLE_KEY("x,eq=a\\=b,path=C:\\tmp value", "x", "path", "C:\\tmp", "eq", "a=b");
	/* sorted as written: "a\ b" after "a!" (0x5c > 0x21) although ' ' < '!' */
	EXPECT_SIMPLE_KEY("m,a!=2,a\\ b=1 value", "m", "a b", "1", "a!", "2");

	/* every key above is a line protocol canonical key as it stands */
	static const char *const keys[] = {
	    "a\\,b\\ c=d value",      "m,k\\,e\\=y\\ =v\\,a\\=l\\ ue value",
	    "m\\x,t=a\\b\\\\c value", "m,t=a\\\\\\,b value",
	    "\\ lead,t=\\=x value",   "m,a!=2,a\\ b=1 value",
	    "m,q=\"x\"\ty\nz value"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		expect_lp_fixed_point(keys[i], strlen(keys[i]));
}

/* Writes the protobuf varint v at p; its length. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Hand-encodes a request of one series "v" with one sample (value bits, ms) into body:
 * protobuf-c's own encoder leaves out a -0.0 (it compares the double with 0, where Go's
 * compares the bits), so the bits a Go sender writes are written here by hand. */
static void hand_one_sample(uint64_t bits, int64_t ms)
{
	uint8_t ts[64], *q = ts;
	static const char label[] = "\x0a\x0d" /* labels = 1, 13 bytes */
				    "\x0a\x08__name__\x12\x01v";
	memcpy(q, label, sizeof label - 1);
	q += sizeof label - 1;
	uint8_t smp[32];
	size_t sn = 0;
	smp[sn++] = 0x09;
	for (int i = 0; i < 8; i++)
		smp[sn++] = (uint8_t)(bits >> (8 * i));
	smp[sn++] = 0x10;
	sn += put_varint(smp + sn, (uint64_t)ms);
	*q++ = 0x12;
	*q++ = (uint8_t)sn;
	memcpy(q, smp, sn);
	q += sn;
	size_t n = 0;
	raw[n++] = 0x0a;
	n += put_varint(raw + n, (uint64_t)(q - ts));
	memcpy(raw + n, ts, (size_t)(q - ts));
	n += (size_t)(q - ts);
	compress_raw(n);
}

static void test_values(void **state)
{
	(void)state;
	static const uint64_t bits[] = {
	    SL_PRW_STALE_NAN,	   /* Prometheus' staleness marker (a signalling NaN) */
	    0x7ff8000000000001ull, /* quiet NaN with a payload */
	    0xfff8000000000000ull, /* negative quiet NaN */
	    0x7ff0000000000000ull, /* +Inf */
	    0xfff0000000000000ull, /* -Inf */
	    0x0000000000000001ull, /* smallest subnormal */
	    0x7fefffffffffffffull, /* DBL_MAX */
	};
	b_init();
	size_t s = b_series();
	b_label(s, "__name__", "v");
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
		b_sample_bits(s, bits[i], (int64_t)i);
	b_decode_ok();
	assert_int_equal(NG, sizeof bits / sizeof bits[0]);
	uint8_t buf[4096];
	struct sl_batch b;
	assert_int_equal(sl_batch_init(&b, buf, sizeof buf, 1), 0);
	for (size_t i = 0; i < NG; i++) {
		if (G[i].value != bits[i])
			fail_msg("sample %zu: bits %#llx, want %#llx", i,
				 (unsigned long long)G[i].value, (unsigned long long)bits[i]);
		assert_int_equal(G[i].ts, (int64_t)i * 1000000);
		/* the store's codec takes every one of them, bits intact */
		struct sl_prw_sample smp = {G[i].series_id, G[i].ts, G[i].value, G[i].key,
					    G[i].key_len};
		struct sl_point p;
		sl_prw_sample_point(&smp, &p);
		assert_int_equal(p.type, SL_VAL_F64);
		assert_int_equal(sl_batch_point_check(&p), 0);
		assert_int_equal(sl_batch_add(&b, &p), 0);
	}
	size_t blen;
	assert_int_equal(sl_batch_finish(&b, &blen), 0);
	struct sl_batch_iter it;
	assert_int_equal(sl_batch_iter_init(&it, buf, blen), 0);
	struct sl_point p;
	for (size_t i = 0; i < NG; i++) {
		assert_int_equal(sl_batch_next(&it, &p), 1);
		assert_int_equal(p.value, bits[i]);
	}
	assert_int_equal(sl_batch_next(&it, &p), 0);
	assert_true(isnan(f64_of(SL_PRW_STALE_NAN)));

	/* the same bits and -0.0 from a hand-written request (as a Go sender writes them) */
	static const uint64_t more[] = {SL_PRW_STALE_NAN, 0x8000000000000000ull,
					0x7ff4000000000000ull, 0};
	for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
		hand_one_sample(more[i], -1);
		assert_int_equal(decode(), 0);
		assert_int_equal(NG, 1);
		expect_key(0, "v value");
		assert_int_equal(G[0].ts, -1000000);
		if (G[0].value != more[i])
			fail_msg("bits %#llx, want %#llx", (unsigned long long)G[0].value,
				 (unsigned long long)more[i]);
	}
}

static void test_timestamps(void **state)
{
	(void)state;
	const int64_t max_ms = INT64_MAX / 1000000, min_ms = INT64_MIN / 1000000;
	b_init();
	size_t s = b_series();
	b_label(s, "__name__", "t");
	b_sample(s, 1, 0);
	b_sample(s, 2, max_ms);
	b_sample(s, 3, max_ms + 1); /* refused */
	b_sample(s, 4, min_ms);
	b_sample(s, 5, min_ms - 1); /* refused */
	b_sample(s, 6, INT64_MAX);  /* refused */
	b_sample(s, 7, INT64_MIN);  /* refused */
	b_sample(s, 8, 1);
	b_decode_ok();
	assert_int_equal(NG, 4);
	assert_int_equal(G[0].ts, 0);
	assert_int_equal(G[1].ts, max_ms * 1000000);
	assert_int_equal(G[2].ts, min_ms * 1000000);
	assert_int_equal(G[3].ts, 1000000);
	assert_true(f64_of(G[1].value) == 2 && f64_of(G[2].value) == 4 && f64_of(G[3].value) == 8);
	assert_int_equal(R.bad_ts, 4);
	assert_int_equal(R.samples, 4);
	assert_int_equal(R.samples_refused, 4);
	assert_int_equal(R.series_ok, 1);
}

static void test_refusals(void **state)
{
	(void)state;
	/* no name, empty name */
	EXPECT_REFUSED(no_name, NULL, "job", "j");
	EXPECT_REFUSED(no_name, "");
	EXPECT_REFUSED(no_name, "", "job", "j");
	/* duplicates: a tag, __name__, and with an empty value among them */
	EXPECT_REFUSED(dup_labels, "m", "a", "1", "a", "2");
	EXPECT_REFUSED(dup_labels, "m", "a", "1", "b", "x", "a", "1");
	EXPECT_REFUSED(dup_labels, "m", "__name__", "n");
	EXPECT_REFUSED(dup_labels, "m", "a", "", "a", "1");
	EXPECT_REFUSED(dup_labels, NULL, "a", "1", "a", "2"); /* dup before no_name */
	/* bad labels: invalid UTF-8 in a value or name, overlong form, surrogate, cut short */
	EXPECT_REFUSED(bad_labels, "m", "a", "\xff");
	EXPECT_REFUSED(bad_labels, "m", "\xc3", "x");
	EXPECT_REFUSED(bad_labels, "m", "a", "\xc0\xaf");
	EXPECT_REFUSED(bad_labels, "m", "a", "\xed\xa0\x80");
	EXPECT_REFUSED(bad_labels, "m\xe2\x82", "a", "1");
	EXPECT_REFUSED(bad_labels, "m", "a", "", "b", "\x80"); /* even an empty-valued one */
	/* an empty label name; a name or value ending with a backslash */
	EXPECT_REFUSED(bad_labels, "m", "", "x");
	EXPECT_REFUSED(bad_labels, "m", "a", "x\\");
	EXPECT_REFUSED(bad_labels, "m", "a\\", "x");
	EXPECT_REFUSED(bad_labels, "m\\", "a", "x");
	/* a measurement the line protocol reads as a comment or skips as whitespace */
	EXPECT_REFUSED(bad_labels, "#m");
	EXPECT_REFUSED(bad_labels, "\tm");
	EXPECT_REFUSED(bad_labels, "\rm");
	EXPECT_REFUSED(bad_labels, NULL, "a", "\xff");		/* bad before no_name */
	EXPECT_REFUSED(bad_labels, "m", "a", "1", "a", "\xff"); /* bad before dup */

	/* a NUL byte in a value or a name */
	b_init();
	b_series();
	b_label(0, "__name__", "m");
	b_label_n(0, "a", 1, "x\0y", 3);
	b_sample(0, 1, 1);
	b_series();
	b_label(1, "__name__", "m");
	b_label_n(1, "a\0", 2, "x", 1);
	b_sample(1, 1, 1);
	b_sample(1, 1, 2);
	b_simple("ok", NULL);
	b_decode_ok();
	assert_int_equal(R.bad_labels, 2);
	assert_int_equal(R.samples_refused, 3);
	assert_int_equal(NG, 1);
	expect_key(0, "ok value");

	/* refused series among good ones: the good ones are delivered, the answer is 0 */
	b_init();
	b_simple("good1", NULL);
	b_simple(NULL, "a", "1", NULL);
	b_simple("m", "a", "1", "a", "1", NULL);
	b_simple("m", "a", "\xfe", NULL);
	b_simple("good2", "x", "y", NULL);
	b_decode_ok();
	assert_int_equal(NG, 2);
	expect_key(0, "good1 value");
	expect_key(1, "good2,x=y value");
	assert_int_equal(R.series, 5);
	assert_int_equal(R.series_ok, 2);
	assert_int_equal(R.no_name, 1);
	assert_int_equal(R.dup_labels, 1);
	assert_int_equal(R.bad_labels, 1);
	assert_int_equal(R.samples, 2);
	assert_int_equal(R.samples_refused, 3);
}

static void test_key_length(void **state)
{
	(void)state;
	/* "m,t=<v> value": 10 bytes around the value */
	static char v[SL_KEY_MAX + 8];
	memset(v, 'v', sizeof v - 1);
	char want[SL_KEY_MAX + 32];

	v[SL_KEY_MAX - 10] = '\0';
	snprintf(want, sizeof want, "m,t=%s value", v);
	assert_int_equal(strlen(want), SL_KEY_MAX);
	EXPECT_SIMPLE_KEY(want, "m", "t", v);

	v[SL_KEY_MAX - 10] = 'v';
	v[SL_KEY_MAX - 9] = '\0'; /* one byte over */
	b_init();
	size_t s = b_simple("m", "t", v, NULL);
	b_sample(s, 2, 2);
	b_sample(s, 3, 3);
	b_simple("short", NULL);
	b_decode_ok();
	assert_int_equal(R.too_long_keys, 3); /* samples, not series */
	assert_int_equal(R.samples_refused, 3);
	assert_int_equal(NG, 1);
	expect_key(0, "short value");

	/* escaping counts: 123 spaces make a 246-byte value; the key is 256 bytes... */
	memset(v, ' ', 123);
	v[123] = '\0';
	b_init();
	b_simple("m", "t", v, NULL);
	b_decode_ok();
	assert_int_equal(NG, 1);
	assert_int_equal(G[0].key_len, SL_KEY_MAX);
	/* ...and one more space is over */
	v[123] = ' ';
	v[124] = '\0';
	EXPECT_REFUSED(too_long_keys, "m", "t", v);

	/* a long measurement alone, and many labels (all too long together) */
	memset(v, 'm', SL_KEY_MAX);
	v[SL_KEY_MAX] = '\0';
	EXPECT_REFUSED(too_long_keys, v);
	b_init();
	s = b_series();
	b_label(s, "__name__", "m");
	static char names[B_LABELS - 1][8];
	for (size_t i = 0; i < B_LABELS - 1; i++) {
		snprintf(names[i], sizeof names[i], "l%02zu", i);
		b_label(s, names[i], "x");
	}
	b_sample(s, 1, 1);
	b_decode_ok();
	assert_int_equal(R.too_long_keys, 1);
	assert_int_equal(NG, 0);
}

static void test_empty_request(void **state)
{
	(void)state;
	b_init();
	b_decode_ok();
	assert_int_equal(body_len, 1); /* the snappy block of nothing: its length 0 */
	assert_int_equal(NG, 0);
	assert_int_equal(R.series, 0);
	assert_int_equal(R.samples, 0);
	assert_int_equal(R.err, 0);
	/* an empty body is not a snappy block */
	NG = 0;
	assert_int_equal(sl_prw_decode(NULL, 0, NO_LIMIT, collect, NULL, &R), SL_PRW_E_SNAPPY);
	assert_int_equal(sl_prw_decode(body, 0, NO_LIMIT, collect, NULL, &R), SL_PRW_E_SNAPPY);
}

static void test_unknown_fields(void **state)
{
	(void)state;
	/* a series with exemplars (3) and a histogram (4), then metadata (3) of the request:
	 * protobuf-c skips what prom_remote.proto does not declare */
	uint8_t ts[128], *q = ts;
	/* label {name: "__name__", value: "x"} */
	*q++ = 0x0a;
	*q++ = 2 + 8 + 2 + 1;
	*q++ = 0x0a;
	*q++ = 8;
	memcpy(q, "__name__", 8);
	q += 8;
	*q++ = 0x12;
	*q++ = 1;
	*q++ = 'x';
	/* exemplar (field 3, bytes of anything well-formed: a label inside) */
	static const uint8_t exemplar[] = {0x1a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 't', 0x12, 0x00};
	memcpy(q, exemplar, sizeof exemplar);
	q += sizeof exemplar;
	/* sample {value: 2.5, timestamp: 42} */
	double v = 2.5;
	*q++ = 0x12;
	*q++ = 9 + 2;
	*q++ = 0x09;
	memcpy(q, &v, 8); /* little-endian machine */
	q += 8;
	*q++ = 0x10;
	*q++ = 42;
	/* histogram (field 4): a varint field 1 inside */
	static const uint8_t hist[] = {0x22, 0x02, 0x08, 0x05};
	memcpy(q, hist, sizeof hist);
	q += sizeof hist;
	/* an unknown varint and fixed32 too */
	static const uint8_t more[] = {0x78, 0x01, 0x7d, 1, 2, 3, 4};
	memcpy(q, more, sizeof more);
	q += sizeof more;
	size_t ts_len = (size_t)(q - ts);

	size_t n = 0;
	raw[n++] = 0x0a;
	n += put_varint(raw + n, ts_len);
	memcpy(raw + n, ts, ts_len);
	n += ts_len;
	static const uint8_t metadata[] = {0x1a, 0x08, 0x08, 0x01, 0x12, 0x04, 'x', 'x', 'x', 'x'};
	memcpy(raw + n, metadata, sizeof metadata);
	n += sizeof metadata;
	compress_raw(n);
	assert_int_equal(decode(), 0);
	assert_int_equal(NG, 1);
	expect_key(0, "x value");
	assert_true(f64_of(G[0].value) == 2.5);
	assert_int_equal(G[0].ts, 42000000);
}

static void test_bad_snappy(void **state)
{
	(void)state;
	static const uint8_t junk[][8] = {
	    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* length varint never ends */
	    {0x05, 0x00},			  /* literal of 1 byte for 5 promised, cut */
	    {0x0a, 0x0d, 0x01},			  /* copy before any output */
	};
	static const size_t junk_len[] = {6, 2, 3};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		memcpy(body, junk[i], junk_len[i]);
		body_len = junk_len[i];
		assert_int_equal(decode(), SL_PRW_E_SNAPPY);
		assert_int_equal(NG, 0);
	}

	/* a good body cut short, or with a byte of junk after it */
	b_init();
	b_simple("m", "a", "b", NULL);
	b_simple("n", NULL);
	b_pack();
	size_t full = body_len;
	for (size_t cut = 1; cut < full; cut++) {
		body_len = cut;
		int rc = decode();
		assert_int_equal(rc, SL_PRW_E_SNAPPY);
	}
	body[full] = 0;
	body_len = full + 1;
	assert_int_equal(decode(), SL_PRW_E_SNAPPY);

	/* plain protobuf, never compressed */
	size_t n = b_pack_raw();
	memcpy(body, raw, n);
	body_len = n;
	assert_int_equal(decode(), SL_PRW_E_SNAPPY);
	assert_string_equal(sl_prw_strerror(SL_PRW_E_SNAPPY), "bad snappy data");
}

static void test_too_large(void **state)
{
	(void)state;
	b_init();
	b_simple("m", "a", "b", NULL);
	size_t n = b_pack_raw();
	compress_raw(n);
	assert_int_equal(decode_max(n), 0);
	assert_int_equal(NG, 1);
	assert_int_equal(decode_max(n - 1), SL_PRW_E_TOO_LARGE);
	assert_int_equal(NG, 0);
	assert_int_equal(decode_max(0), SL_PRW_E_TOO_LARGE);

	/* a body claiming 4 GiB - 1 in its header is refused before any allocation */
	static const uint8_t claim[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
	memcpy(body, claim, sizeof claim);
	body_len = sizeof claim;
	assert_int_equal(decode(), SL_PRW_E_TOO_LARGE);
	assert_string_equal(sl_prw_strerror(SL_PRW_E_TOO_LARGE), "request too large");

	/* within the limit, 1 MiB of zeros compresses to a few kB (and is bad protobuf) */
	memset(raw, 0, MAX_RAW);
	compress_raw(MAX_RAW);
	assert_true(body_len < MAX_RAW / 10);
	assert_int_equal(decode_max(MAX_RAW - 1), SL_PRW_E_TOO_LARGE);
	assert_int_equal(decode_max(MAX_RAW), SL_PRW_E_PROTOBUF);
}

static void test_bad_protobuf(void **state)
{
	(void)state;
	b_init();
	size_t s = b_simple("m", "a", "b", NULL);
	b_sample(s, 2, 2);
	size_t n = b_pack_raw();
	/* every truncation of the protobuf is refused whole; none delivers a sample. A cut
	 * right after a complete sample or label can still be a well-formed message: only
	 * the outer length makes these all bad */
	for (size_t cut = 1; cut < n; cut++) {
		compress_raw(cut);
		int rc = decode();
		assert_int_equal(rc, SL_PRW_E_PROTOBUF);
		assert_int_equal(NG, 0);
		assert_int_equal(R.series, 0);
	}
	/* a wrong wire type for a known field (timeseries as a varint) */
	raw[0] = 0x08;
	raw[1] = 0x01;
	compress_raw(2);
	assert_int_equal(decode(), SL_PRW_E_PROTOBUF);
	/* a group start (wire type 3) and field number 0 */
	raw[0] = 0x0b;
	compress_raw(1);
	assert_int_equal(decode(), SL_PRW_E_PROTOBUF);
	raw[0] = 0x00;
	raw[1] = 0x00;
	compress_raw(2);
	assert_int_equal(decode(), SL_PRW_E_PROTOBUF);
	/* a length past the end */
	raw[0] = 0x0a;
	raw[1] = 0x7f;
	raw[2] = 0x00;
	compress_raw(3);
	assert_int_equal(decode(), SL_PRW_E_PROTOBUF);
	assert_string_equal(sl_prw_strerror(SL_PRW_E_PROTOBUF), "bad protobuf");
}

static void test_callback_stop(void **state)
{
	(void)state;
	b_init();
	size_t s = b_simple("a", NULL);
	b_sample(s, 2, 2);
	b_simple("b", NULL);
	b_pack();
	stop_after = 2;
	int rc = decode();
	stop_after = 0;
	assert_int_equal(rc, STOP_RC);
	assert_int_equal(R.err, STOP_RC);
	assert_int_equal(NG, 1);
	assert_int_equal(R.samples, 1);
	assert_int_equal(R.series, 1); /* "b" was never looked at */
	/* a callback that stops on the first sample */
	stop_after = 1;
	assert_int_equal(decode(), STOP_RC);
	stop_after = 0;
	assert_int_equal(R.samples, 0);
}

static void test_arguments(void **state)
{
	(void)state;
	b_init();
	b_simple("m", NULL);
	b_pack();
	assert_int_equal(sl_prw_decode(body, body_len, NO_LIMIT, NULL, NULL, &R), SL_PRW_E_INVAL);
	assert_int_equal(R.err, SL_PRW_E_INVAL);
	assert_int_equal(sl_prw_decode(NULL, 3, NO_LIMIT, collect, NULL, &R), SL_PRW_E_INVAL);
	NG = 0;
	assert_int_equal(sl_prw_decode(body, body_len, NO_LIMIT, collect, NULL, NULL), 0);
	assert_int_equal(NG, 1);

	assert_string_equal(sl_prw_strerror(0), "ok");
	assert_string_equal(sl_prw_strerror(SL_PRW_E_INVAL), "invalid argument");
	assert_string_equal(sl_prw_strerror(SL_PRW_E_NOMEM), "out of memory");
	assert_string_equal(sl_prw_strerror(STOP_RC), "unknown error");
	assert_string_equal(sl_prw_strerror(-123456), "unknown error");
}

/* ---- random inputs ----------------------------------------------------------------- */

static uint64_t rng = 0x5eed1234abcd9876ull;

static uint64_t rnd(void) /* xorshift64* */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

/* Decodes body with a small limit and checks the answer is one of the allowed ones and the
 * counts add up; every delivered sample was checked by collect(). */
static void check_answer(size_t max)
{
	int rc = decode_max(max);
	if (rc != 0 && rc != SL_PRW_E_SNAPPY && rc != SL_PRW_E_TOO_LARGE && rc != SL_PRW_E_PROTOBUF)
		fail_msg("unexpected answer %d", rc);
	if (rc != 0) {
		assert_int_equal(NG, 0);
		return;
	}
	assert_int_equal(R.samples, NG);
	/* the rest of the series were refused for a long key (too_long_keys counts samples) */
	assert_true(R.series >= R.series_ok + R.bad_labels + R.dup_labels + R.no_name);
	if (R.too_long_keys == 0)
		assert_true(R.samples_refused == R.bad_ts || R.series > R.series_ok);
	assert_true(R.too_long_keys + R.bad_ts <= R.samples_refused);
	for (size_t i = 0; i < NG && i < G_MAX; i++)
		expect_lp_fixed_point(G[i].key, G[i].key_len);
}

static void test_random_bodies(void **state)
{
	(void)state;
	/* a valid request to mutate */
	b_init();
	size_t s = b_simple("http_requests_total", "method", "post", "code", "200", NULL);
	b_sample(s, 3, 1700000000000);
	b_simple("up", "job", "a b", "instance", "x,y=z", NULL);
	b_simple(NULL, "a", "1", NULL);
	size_t good_len = b_pack_raw();
	static uint8_t good[4096];
	assert_true(good_len <= sizeof good);
	memcpy(good, raw, good_len);
	compress_raw(good_len);
	static uint8_t good_body[4096];
	size_t good_body_len = body_len;
	assert_true(good_body_len <= sizeof good_body);
	memcpy(good_body, body, body_len);

	for (int iter = 0; iter < 6000; iter++) {
		switch (iter % 4) {
		case 0: /* random bytes as the body */
			body_len = rnd_below(64);
			for (size_t i = 0; i < body_len; i++)
				body[i] = (uint8_t)rnd();
			break;
		case 1: /* random bytes as the protobuf, properly compressed */
		{
			size_t n = rnd_below(128);
			for (size_t i = 0; i < n; i++)
				raw[i] = (uint8_t)rnd();
			if (n > 0 && rnd_below(2))
				raw[0] = 0x0a; /* start like a time series */
			compress_raw(n);
			break;
		}
		case 2: /* the good protobuf with a few bytes changed, compressed */
		{
			memcpy(raw, good, good_len);
			size_t flips = 1 + rnd_below(4);
			for (size_t k = 0; k < flips; k++)
				raw[rnd_below(good_len)] = (uint8_t)rnd();
			compress_raw(good_len - (rnd_below(4) == 0 ? rnd_below(good_len) : 0));
			break;
		}
		default: /* the good body with a few bytes changed */
		{
			memcpy(body, good_body, good_body_len);
			body_len = good_body_len;
			size_t flips = 1 + rnd_below(3);
			for (size_t k = 0; k < flips; k++)
				body[rnd_below(body_len)] = (uint8_t)rnd();
			break;
		}
		}
		check_answer(iter % 8 == 0 ? 16 : 4096);
	}
}

/* Random label sets over an alphabet of the bytes that matter: every accepted key is a line
 * protocol canonical key, and two different label sets never share a key. */
#define RL_SETS 3000
static const char *const rl_alpha[] = {
    "a", "b", ",", "=", " ", "\\", "#", "\t", "\n", "\r", "\"", "\xc3\xa9", "\xf0\x9f\x94\xa5",
    "_"};

static void rnd_text(char *out, size_t cap, size_t maxlen)
{
	size_t len = rnd_below(maxlen + 1), n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		const char *c = rl_alpha[rnd_below(sizeof rl_alpha / sizeof rl_alpha[0])];
		if (n + strlen(c) + 1 > cap)
			break;
		memcpy(out + n, c, strlen(c) + 1);
		n += strlen(c);
	}
}

struct rl_seen {
	char key[SL_KEY_MAX + 1];
	char labels[512]; /* the label set: name \1 value \2 ..., empty values left out, sorted */
};
static struct rl_seen rl[RL_SETS];

static int rl_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rl_seen *)a)->key, ((const struct rl_seen *)b)->key);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_random_labels(void **state)
{
	(void)state;
	size_t kept = 0, counted = 0;
	static char text[8][2][24];
	for (int iter = 0; iter < RL_SETS; iter++) {
		b_init();
		size_t s = b_series();
		b_label(s, "__name__", "");
		rnd_text(text[0][1], sizeof text[0][1], 4);
		B.lab[s][0].value =
		    (ProtobufCBinaryData){strlen(text[0][1]), (uint8_t *)text[0][1]};
		size_t nl = rnd_below(4);
		for (size_t i = 1; i <= nl; i++) {
			rnd_text(text[i][0], sizeof text[i][0], 3);
			rnd_text(text[i][1], sizeof text[i][1], 3);
			b_label(s, text[i][0], text[i][1]);
		}
		b_sample(s, 1, 1);
		b_decode_ok();
		counted +=
		    R.series_ok + R.bad_labels + R.dup_labels + R.no_name + (R.too_long_keys > 0);
		if (NG == 0)
			continue;
		assert_int_equal(NG, 1);
		expect_lp_fixed_point(G[0].key, G[0].key_len);
		/* the label set, normalized */
		const char *parts[8];
		size_t np = 0;
		static char pbuf[8][64];
		for (size_t i = 1; i <= nl; i++) {
			if (text[i][1][0] == '\0')
				continue;
			snprintf(pbuf[np], sizeof pbuf[np], "%s\1%s", text[i][0], text[i][1]);
			parts[np] = pbuf[np];
			np++;
		}
		qsort(parts, np, sizeof parts[0], str_cmp);
		struct rl_seen *e = &rl[kept++];
		snprintf(e->key, sizeof e->key, "%s", G[0].key);
		int w = snprintf(e->labels, sizeof e->labels, "%s\2", text[0][1]);
		for (size_t i = 0; i < np; i++)
			w +=
			    snprintf(e->labels + w, sizeof e->labels - (size_t)w, "%s\2", parts[i]);
	}
	assert_int_equal(counted, RL_SETS); /* every series has exactly one verdict */
	assert_true(kept > RL_SETS / 10);   /* the loop did exercise accepted keys */
	qsort(rl, kept, sizeof rl[0], rl_cmp);
	for (size_t i = 1; i < kept; i++) {
		if (strcmp(rl[i - 1].key, rl[i].key) == 0 &&
		    strcmp(rl[i - 1].labels, rl[i].labels) != 0)
			fail_msg("two label sets share the key '%s'", rl[i].key);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),	   cmocka_unit_test(test_label_order),
	    cmocka_unit_test(test_escaping),	   cmocka_unit_test(test_values),
	    cmocka_unit_test(test_timestamps),	   cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_key_length),	   cmocka_unit_test(test_empty_request),
	    cmocka_unit_test(test_unknown_fields), cmocka_unit_test(test_bad_snappy),
	    cmocka_unit_test(test_too_large),	   cmocka_unit_test(test_bad_protobuf),
	    cmocka_unit_test(test_callback_stop),  cmocka_unit_test(test_arguments),
	    cmocka_unit_test(test_random_bodies),  cmocka_unit_test(test_random_labels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* lineproto.c - InfluxDB line protocol as InfluxDB 1.x parses it: lines split outside
 * quoted strings, names kept as spans of the input (the series part of a canonical key is
 * the input itself), field keys re-escaped. Every loop is bounded by the line length;
 * nothing allocates, nothing reads a clock. */
#include "lineproto.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_assert.h"

static const char *const err_names[SL_LP_ERR_COUNT] = {
    [SL_LP_OK] = "ok",
    [SL_LP_ERR_SYNTAX_MEASUREMENT] = "syntax_measurement",
    [SL_LP_ERR_SYNTAX_TAG] = "syntax_tag",
    [SL_LP_ERR_SYNTAX_FIELD] = "syntax_field",
    [SL_LP_ERR_BAD_NUMBER] = "bad_number",
    [SL_LP_ERR_OUT_OF_RANGE] = "out_of_range",
    [SL_LP_ERR_BAD_BOOL] = "bad_bool",
    [SL_LP_ERR_BAD_STRING] = "bad_string",
    [SL_LP_ERR_STRING_TOO_LONG] = "string_too_long",
    [SL_LP_ERR_BAD_TIMESTAMP] = "bad_timestamp",
    [SL_LP_ERR_TS_OUT_OF_RANGE] = "ts_out_of_range",
    [SL_LP_ERR_TOO_MANY_FIELDS] = "too_many_fields",
    [SL_LP_ERR_KEY_TOO_LONG] = "key_too_long",
    [SL_LP_ERR_LINE_TOO_LONG] = "line_too_long",
    [SL_LP_ERR_INVALID_UTF8] = "invalid_utf8",
    [SL_LP_ERR_DUPLICATE_TAG] = "duplicate_tag",
    [SL_LP_ERR_KEY_NUL] = "key_nul",
    [SL_LP_ERR_NO_FIELDS] = "no_fields",
    [SL_LP_ERR_SCRATCH] = "scratch",
};

const char *sl_lp_err_name(int err)
{
	if (err < 0 || err >= SL_LP_ERR_COUNT)
		return "unknown";
	return err_names[err];
}

int sl_lp_precision_parse(const char *s, enum sl_lp_precision *out)
{
	static const struct {
		const char *name;
		enum sl_lp_precision p;
	} names[] = {{"ns", SL_LP_PREC_NS}, {"n", SL_LP_PREC_NS},  {"us", SL_LP_PREC_US},
		     {"u", SL_LP_PREC_US},  {"ms", SL_LP_PREC_MS}, {"s", SL_LP_PREC_S},
		     {"m", SL_LP_PREC_M},   {"h", SL_LP_PREC_H}};
	if (s == NULL || out == NULL)
		return -EINVAL;
	for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].p;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- names and escaping -------------------------------------------------------------- */

/* InfluxDB 1.x reads names with two rules, and sluice follows both:
 *  - measurement, tag keys and tag values: a character right after a backslash is never a
 *    delimiter, whatever precedes that backslash (so "\\ " is a backslash and an escaped
 *    space, and a name cannot end in a backslash). The bytes stay as written: the series
 *    part of the canonical key is the input itself, the form InfluxDB keeps as its series
 *    key, in which only "\," "\ " (and "\=" in tags) stand for the character after them
 *    and every other backslash is a byte of the name;
 *  - the field set: a backslash and the byte after it are one unit (InfluxDB's field
 *    scanner), and "\," "\"" "\ " "\=" in a field key stand for the second byte. */

/* Whitespace InfluxDB skips at the start of a line and of the field and timestamp
 * sections: blanks, tabs and NUL bytes. */
static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\0'; }

/* Characters a backslash stands for in a field key, and that its canonical form escapes. */
static bool field_key_special(char c) { return c == ',' || c == '"' || c == ' ' || c == '='; }

/* A name as it stands in the input. */
struct span {
	const char *p;
	size_t n;
};

/* memcmp order of two raw names, a prefix first (Go's bytes.Compare, as InfluxDB sorts). */
static int span_cmp(struct span a, struct span b)
{
	int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
	if (c != 0 || a.n == b.n)
		return c;
	return a.n < b.n ? -1 : 1;
}

static bool put_bytes(char *dst, size_t cap, size_t *len, const char *src, size_t n)
{
	if (cap - *len < n)
		return false;
	memcpy(dst + *len, src, n);
	*len += n;
	return true;
}

static bool put_byte(char *dst, size_t cap, size_t *len, char c)
{
	return put_bytes(dst, cap, len, &c, 1);
}

/* Appends the canonical form of a raw field key: unescaped ("\X" for X in , " space =
 * becomes X, any other backslash is a byte of the key), then re-escaped with a backslash
 * before each of those four, as InfluxDB writes field keys back. Two spellings of one
 * field key (f" and f\") thus give one series. False when it would pass cap. */
static bool put_field_key(char *dst, size_t cap, size_t *len, struct span s)
{
	if (memchr(s.p, '\\', s.n) == NULL && memchr(s.p, '"', s.n) == NULL)
		return put_bytes(dst, cap, len, s.p, s.n); /* the common case: nothing to do */
	for (size_t i = 0; i < s.n; i++) {
		char c = s.p[i];
		if (c == '\\' && i + 1 < s.n && field_key_special(s.p[i + 1]))
			c = s.p[++i];
		if (field_key_special(c) && !put_byte(dst, cap, len, '\\'))
			return false;
		if (!put_byte(dst, cap, len, c))
			return false;
	}
	return true;
}

/* ---- UTF-8 ------------------------------------------------------------------------- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool sl_lp_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t more;
		unsigned char lo = 0x80, hi = 0xbf; /* range of the first continuation byte */
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		}
		i += more + 1;
	}
	return true;
}

/* ---- numbers ----------------------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static size_t skip_digits(const char *s, size_t n, size_t i)
{
	while (i < n && is_digit(s[i]))
		i++;
	return i;
}

/* Magnitude of a run of decimal digits; false on uint64 overflow. */
static bool digits_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (__builtin_mul_overflow(v, 10u, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return false;
	}
	*out = v;
	return true;
}

/* "-?digits" into an int64. -1: not that shape, -2: out of range. */
static int parse_i64(const char *s, size_t n, int64_t *out)
{
	bool neg = n > 0 && s[0] == '-';
	size_t start = neg ? 1 : 0;
	if (start == n || skip_digits(s, n, start) != n)
		return -1;
	uint64_t mag;
	if (!digits_u64(s + start, n - start, &mag))
		return -2;
	if (neg) {
		if (mag > (uint64_t)INT64_MAX + 1)
			return -2;
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)INT64_MAX)
			return -2;
		*out = (int64_t)mag;
	}
	return 0;
}

/* The float grammar InfluxDB accepts: -?(d+(.d*)?|.d+)([eE][+-]?d+)? - strtod alone would
 * also take "inf", "nan", hex and leading blanks. */
static bool float_shape(const char *s, size_t n)
{
	size_t i = (n > 0 && s[0] == '-') ? 1 : 0;
	size_t int_end = skip_digits(s, n, i);
	bool digits = int_end > i;
	i = int_end;
	if (i < n && s[i] == '.') {
		size_t frac_end = skip_digits(s, n, i + 1);
		digits = digits || frac_end > i + 1;
		i = frac_end;
	}
	if (!digits)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t exp_end = skip_digits(s, n, i);
		if (exp_end == i)
			return false;
		i = exp_end;
	}
	return i == n;
}

/* Clinger's fast path for a token already known to have the float shape: with at most 15
 * digits the mantissa is an exact double, and so is 10^e for |e| <= 22, so one IEEE multiply
 * or divide rounds correctly - the same double strtod gives, at a fraction of the cost. */
static bool float_fast(const char *s, size_t n, double *out)
{
	static const double pow10[] = {1e0,  1e1,  1e2,	 1e3,  1e4,  1e5,  1e6,	 1e7,
				       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	bool neg = s[0] == '-';
	size_t i = neg ? 1 : 0;
	uint64_t m = 0;
	int digits = 0, exp10 = 0;
	bool frac = false;
	for (; i < n && (is_digit(s[i]) || s[i] == '.'); i++) {
		if (s[i] == '.') {
			frac = true;
			continue;
		}
		if (++digits > 15)
			return false;
		m = m * 10 + (uint64_t)(s[i] - '0');
		exp10 -= frac ? 1 : 0;
	}
	if (i < n) { /* exponent: [eE][+-]?digits */
		i++;
		bool eneg = s[i] == '-';
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (n - i > 3)
			return false;
		int e = 0;
		for (; i < n; i++)
			e = e * 10 + (s[i] - '0');
		exp10 += eneg ? -e : e;
	}
	if (exp10 < -22 || exp10 > 22)
		return false;
	double d = (double)m;
	d = exp10 < 0 ? d / pow10[-exp10] : d * pow10[exp10];
	*out = neg ? -d : d;
	return true;
}

static enum sl_lp_err parse_float(const char *s, size_t n, uint64_t *bits)
{
	if (!float_shape(s, n))
		return SL_LP_ERR_BAD_NUMBER;
	double fast;
	if (float_fast(s, n, &fast)) {
		memcpy(bits, &fast, sizeof fast);
		return SL_LP_OK;
	}
	if (n >= SL_LP_NUMBER_MAX)
		return SL_LP_ERR_BAD_NUMBER;
	char tmp[SL_LP_NUMBER_MAX];
	memcpy(tmp, s, n);
	tmp[n] = 0;
	errno = 0;
	char *end;
	double d = strtod(tmp, &end);
	SL_ASSERT(end == tmp + n);
	if (errno == ERANGE && isinf(d))
		return SL_LP_ERR_OUT_OF_RANGE; /* underflow to 0 or a subnormal is accepted */
	memcpy(bits, &d, sizeof d);
	return SL_LP_OK;
}

static bool token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* A non-string field value: the token up to the next ',' or ' '. */
static enum sl_lp_err parse_scalar(const char *s, size_t n, struct sl_lp_field *f)
{
	char c0 = s[0];
	if (c0 == 't' || c0 == 'T' || c0 == 'f' || c0 == 'F') {
		static const char *const trues[] = {"t", "T", "true", "True", "TRUE"};
		static const char *const falses[] = {"f", "F", "false", "False", "FALSE"};
		for (size_t i = 0; i < SL_ARRAY_LEN(trues); i++) {
			if (token_is(s, n, trues[i]) || token_is(s, n, falses[i])) {
				f->type = SL_VAL_BOOL;
				f->value = token_is(s, n, trues[i]) ? 1 : 0;
				return SL_LP_OK;
			}
		}
		return SL_LP_ERR_BAD_BOOL;
	}

	char last = s[n - 1];
	if (last == 'i') {
		int64_t v;
		int rc = parse_i64(s, n - 1, &v);
		if (rc == -1)
			return SL_LP_ERR_BAD_NUMBER;
		if (rc == -2)
			return SL_LP_ERR_OUT_OF_RANGE;
		f->type = SL_VAL_I64;
		f->value = (uint64_t)v;
		return SL_LP_OK;
	}
	if (last == 'u') {
		bool neg = s[0] == '-';
		size_t start = neg ? 1 : 0;
		if (n - 1 == start || skip_digits(s, n - 1, start) != n - 1)
			return SL_LP_ERR_BAD_NUMBER;
		uint64_t v;
		if (!digits_u64(s + start, n - 1 - start, &v))
			return SL_LP_ERR_OUT_OF_RANGE;
		if (neg && v != 0)
			return SL_LP_ERR_OUT_OF_RANGE;
		f->type = SL_VAL_U64;
		f->value = v;
		return SL_LP_OK;
	}
	f->type = SL_VAL_F64;
	return parse_float(s, n, &f->value);
}

/* ---- the line ---------------------------------------------------------------------- */

struct tag {
	struct span key;
	struct span val;
};

/* Parse state of one line; the output is built in `out`. */
struct lp_ctx {
	const char *s;
	size_t n;
	size_t pos;
	size_t used; /* scratch bytes taken */
	struct sl_lp_line *out;
};

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static void skip_ws(struct lp_ctx *c)
{
	while (c->pos < c->n && is_ws(c->s[c->pos]))
		c->pos++;
}

/* True when s[i] is a delimiter candidate not escaped by the byte before it (the rule of
 * measurement and tag names; the byte before a name's first one is never a backslash). */
static bool live(const char *s, size_t i, char want) { return s[i] == want && s[i - 1] != '\\'; }

static bool has_nul(struct span s) { return memchr(s.p, '\0', s.n) != NULL; }

/* The measurement from 0 to its first unescaped ',' or ' '. *stop is that byte, or 0 when
 * the line ends first. */
static size_t scan_measurement(const char *s, size_t n, char *stop)
{
	*stop = 0;
	for (size_t i = 1; i < n; i++) {
		if (live(s, i, ',') || live(s, i, ' ')) {
			*stop = s[i];
			return i;
		}
	}
	return n;
}

/* Tags after the measurement (pos just past a ','), into tags[]; InfluxDB's rules: a tag
 * key ends at an unescaped '=' (an unescaped ',' or ' ' first is an error), a tag value
 * may start with '=' but has no unescaped '=' after that, and ends at an unescaped ','
 * (next tag) or ' ' (the fields). */
static enum sl_lp_err parse_tags(struct lp_ctx *c, struct tag *tags, size_t *ntags)
{
	const char *s = c->s;
	size_t n = c->n;
	for (;;) {
		size_t k = c->pos, i = k;
		if (i >= n || s[i] == ' ' || s[i] == ',' || s[i] == '=')
			return SL_LP_ERR_SYNTAX_TAG; /* missing tag key */
		for (i++; i < n && !live(s, i, '='); i++) {
			if (live(s, i, ',') || live(s, i, ' '))
				return SL_LP_ERR_SYNTAX_TAG; /* missing tag value */
		}
		if (i >= n)
			return SL_LP_ERR_SYNTAX_TAG;
		size_t v = i + 1, j = v;
		if (j >= n || s[j] == ',' || s[j] == ' ')
			return SL_LP_ERR_SYNTAX_TAG; /* missing tag value */
		char stop = 0;
		for (j++; j < n; j++) {
			if (live(s, j, '='))
				return SL_LP_ERR_SYNTAX_TAG; /* invalid tag format */
			if (live(s, j, ',') || live(s, j, ' ')) {
				stop = s[j];
				break;
			}
		}
		if (stop == 0)
			return SL_LP_ERR_NO_FIELDS;
		if (*ntags == SL_LP_MAX_TAGS)
			return SL_LP_ERR_KEY_TOO_LONG; /* 65 tags need more than SL_KEY_MAX bytes */
		tags[(*ntags)++] = (struct tag){{s + k, i - k}, {s + v, j - v}};
		c->pos = j;
		if (stop == ' ')
			return SL_LP_OK;
		c->pos++;
	}
}

/* Sorts tags by raw key bytes (insertion sort: at most SL_LP_MAX_TAGS, usually a few).
 * Raw order is InfluxDB's, and raw bytes name a tag key uniquely: a special character can
 * only be written escaped, and a backslash before anything else is a byte of the key. */
static enum sl_lp_err sort_tags(struct tag *tags, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct tag t = tags[i];
		size_t j = i;
		while (j > 0 && span_cmp(tags[j - 1].key, t.key) > 0) {
			tags[j] = tags[j - 1];
			j--;
		}
		tags[j] = t;
	}
	for (size_t i = 1; i < n; i++) {
		if (span_cmp(tags[i - 1].key, tags[i].key) == 0)
			return SL_LP_ERR_DUPLICATE_TAG;
	}
	return SL_LP_OK;
}

/* A quoted string value (pos at the opening quote), unescaped into the scratch buffer:
 * "\"" and "\\" stand for the second byte, any other byte (a newline too) is itself. */
static enum sl_lp_err parse_string(struct lp_ctx *c, struct sl_lp_field *f)
{
	struct sl_lp_line *out = c->out;
	size_t i = c->pos + 1;
	size_t start = c->used, o = c->used;
	for (;;) {
		if (i >= c->n)
			return SL_LP_ERR_BAD_STRING;
		char ch = c->s[i];
		if (ch == '"')
			break;
		if (ch == '\\' && i + 1 < c->n && (c->s[i + 1] == '"' || c->s[i + 1] == '\\')) {
			ch = c->s[i + 1];
			i++;
		}
		i++;
		if (o - start >= SL_LP_STR_MAX)
			return SL_LP_ERR_STRING_TOO_LONG;
		if (o >= out->scratch_cap)
			return SL_LP_ERR_SCRATCH;
		out->scratch[o++] = ch;
	}
	i++; /* closing quote */
	if (i < c->n && c->s[i] != ',' && c->s[i] != ' ')
		return SL_LP_ERR_BAD_STRING;
	f->type = SL_VAL_STR;
	f->str = out->scratch + start;
	f->str_len = (uint32_t)(o - start);
	f->value = f->str_len;
	c->used = o;
	c->pos = i;
	return SL_LP_OK;
}

/* A field key from pos to its '=': a backslash and the byte after it are one unit (so
 * "\\=" ends the key after a backslash and "\=" does not). A key ending in a backslash is
 * refused: InfluxDB's field reader would not end it at that '='. So is a key starting with
 * a tab (InfluxDB takes it after a ','): as the first field of a line the tab would be
 * whitespace, so no line could write that series again. */
static enum sl_lp_err scan_field_key(const struct lp_ctx *c, struct span *key)
{
	size_t i = c->pos;
	if (i < c->n && c->s[i] == '\t')
		return SL_LP_ERR_SYNTAX_FIELD;
	while (i < c->n && c->s[i] != '=') {
		if (c->s[i] == ',' || c->s[i] == ' ')
			return SL_LP_ERR_SYNTAX_FIELD;
		i += c->s[i] == '\\' && i + 1 < c->n ? 2 : 1;
	}
	if (i >= c->n || i == c->pos || c->s[i - 1] == '\\')
		return SL_LP_ERR_SYNTAX_FIELD;
	*key = (struct span){c->s + c->pos, i - c->pos};
	return has_nul(*key) ? SL_LP_ERR_KEY_NUL : SL_LP_OK;
}

/* The value after a field key's '=' (pos at it) into f. */
static enum sl_lp_err parse_value(struct lp_ctx *c, struct sl_lp_field *f)
{
	if (c->pos < c->n && c->s[c->pos] == '"')
		return parse_string(c, f);
	size_t vend = c->pos;
	while (vend < c->n && c->s[vend] != ',' && c->s[vend] != ' ')
		vend++;
	if (vend == c->pos)
		return SL_LP_ERR_SYNTAX_FIELD;
	enum sl_lp_err e = parse_scalar(c->s + c->pos, vend - c->pos, f);
	c->pos = vend;
	return e;
}

/* One "key=value" of the field set; the key becomes prefix + ' ' + canonical field key. A
 * key already seen in this line takes the new value in place (the last one wins, as in
 * InfluxDB), so a line holds each series once whatever it repeats. */
static enum sl_lp_err parse_field(struct lp_ctx *c, const char *prefix, size_t prefix_len)
{
	struct sl_lp_line *out = c->out;
	struct span fkey;
	enum sl_lp_err e = scan_field_key(c, &fkey);
	if (e != SL_LP_OK)
		return e;

	/* key: bounded by SL_KEY_MAX first so a long key is KEY_TOO_LONG, not SCRATCH */
	char key[SL_KEY_MAX];
	size_t klen = prefix_len;
	memcpy(key, prefix, prefix_len);
	if (!put_byte(key, sizeof key, &klen, ' ') || !put_field_key(key, sizeof key, &klen, fkey))
		return SL_LP_ERR_KEY_TOO_LONG;
	c->pos += fkey.n + 1;

	struct sl_lp_field *f = NULL;
	for (uint32_t i = 0; i < out->n_fields && f == NULL; i++) {
		struct sl_lp_field *g = &out->fields[i];
		if (g->key_len == klen && memcmp(g->key, key, klen) == 0)
			f = g; /* canonical keys: equal bytes = equal names */
	}
	struct sl_lp_field v = {0};
	if (f == NULL) {
		if (out->n_fields == SL_LP_MAX_FIELDS)
			return SL_LP_ERR_TOO_MANY_FIELDS;
		if (out->scratch_cap - c->used < klen)
			return SL_LP_ERR_SCRATCH;
		memcpy(out->scratch + c->used, key, klen);
		v.key = out->scratch + c->used;
		v.key_len = (uint16_t)klen;
		c->used += klen;
	} else {
		v.key = f->key;
		v.key_len = f->key_len;
	}
	e = parse_value(c, &v);
	if (e != SL_LP_OK)
		return e;
	if (f == NULL)
		f = &out->fields[out->n_fields++];
	*f = v;
	return SL_LP_OK;
}

static enum sl_lp_err parse_timestamp(struct lp_ctx *c, const struct sl_lp_opts *opts,
				      int64_t *ts_ns)
{
	static const int64_t scale[] = {[SL_LP_PREC_NS] = 1,
					[SL_LP_PREC_US] = 1000,
					[SL_LP_PREC_MS] = 1000000,
					[SL_LP_PREC_S] = 1000000000,
					[SL_LP_PREC_M] = 60000000000,
					[SL_LP_PREC_H] = 3600000000000};
	size_t end = c->pos;
	while (end < c->n && c->s[end] != ' ')
		end++;
	int64_t v;
	int rc = parse_i64(c->s + c->pos, end - c->pos, &v);
	if (rc == -1)
		return SL_LP_ERR_BAD_TIMESTAMP;
	if (rc == -2)
		return SL_LP_ERR_TS_OUT_OF_RANGE;
	c->pos = end;
	while (c->pos < c->n && c->s[c->pos] == ' ')
		c->pos++;
	if (c->pos != c->n)
		return SL_LP_ERR_BAD_TIMESTAMP;
	unsigned p = (unsigned)opts->precision;
	if (p >= SL_ARRAY_LEN(scale))
		return SL_LP_ERR_BAD_TIMESTAMP;
	if (__builtin_mul_overflow(v, scale[p], ts_ns) || *ts_ns < SL_LP_TS_MIN ||
	    *ts_ns > SL_LP_TS_MAX)
		return SL_LP_ERR_TS_OUT_OF_RANGE;
	return SL_LP_OK;
}

/* Body of sl_lp_parse_line once the line is trimmed and known not to be blank/comment. */
static enum sl_lp_err parse_body(struct lp_ctx *c, const struct sl_lp_opts *opts)
{
	struct sl_lp_line *out = c->out;
	if (!sl_lp_utf8_valid((const unsigned char *)c->s, c->n))
		return SL_LP_ERR_INVALID_UTF8;
	if (c->s[0] == ',')
		return SL_LP_ERR_SYNTAX_MEASUREMENT;

	char stop;
	size_t mend = scan_measurement(c->s, c->n, &stop);
	struct span meas = {c->s, mend};
	c->pos = mend;

	struct tag tags[SL_LP_MAX_TAGS];
	size_t ntags = 0;
	if (stop == ',') {
		c->pos++;
		enum sl_lp_err e = parse_tags(c, tags, &ntags);
		if (e != SL_LP_OK)
			return e;
	}
	skip_ws(c);
	if (c->pos == c->n)
		return SL_LP_ERR_NO_FIELDS;
	enum sl_lp_err e = sort_tags(tags, ntags);
	if (e != SL_LP_OK)
		return e;

	/* the series key prefix, shared by every field: the names as written, tags sorted */
	char prefix[SL_KEY_MAX];
	size_t plen = 0;
	bool fits = put_bytes(prefix, sizeof prefix, &plen, meas.p, meas.n);
	bool nul = has_nul(meas);
	for (size_t i = 0; fits && i < ntags; i++) {
		fits = put_byte(prefix, sizeof prefix, &plen, ',') &&
		       put_bytes(prefix, sizeof prefix, &plen, tags[i].key.p, tags[i].key.n) &&
		       put_byte(prefix, sizeof prefix, &plen, '=') &&
		       put_bytes(prefix, sizeof prefix, &plen, tags[i].val.p, tags[i].val.n);
		nul = nul || has_nul(tags[i].key) || has_nul(tags[i].val);
	}
	if (nul)
		return SL_LP_ERR_KEY_NUL;
	if (!fits || plen + 2 > SL_KEY_MAX)
		return SL_LP_ERR_KEY_TOO_LONG;

	for (;;) {
		e = parse_field(c, prefix, plen);
		if (e != SL_LP_OK)
			return e;
		if (c->pos == c->n || c->s[c->pos] == ' ')
			break;
		c->pos++; /* ',' */
	}

	skip_ws(c);
	out->ts = opts->now_ns;
	if (c->pos < c->n) {
		e = parse_timestamp(c, opts, &out->ts);
		if (e != SL_LP_OK)
			return e;
	}
	for (uint32_t i = 0; i < out->n_fields; i++)
		out->fields[i].series_id = sl_series_id(out->fields[i].key, out->fields[i].key_len);
	return SL_LP_OK;
}

int sl_lp_parse_line(const char *line, size_t len, const struct sl_lp_opts *opts,
		     struct sl_lp_line *out)
{
	if (line == NULL || opts == NULL || out == NULL ||
	    (out->scratch == NULL && out->scratch_cap))
		return -EINVAL;
	out->n_fields = 0;
	out->err = SL_LP_OK;
	out->ts = opts->now_ns;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	size_t max = opts->max_line_bytes ? opts->max_line_bytes : SL_LP_LINE_MAX;
	if (len > max) {
		out->err = SL_LP_ERR_LINE_TOO_LONG;
		return -EBADMSG;
	}
	while (len > 0 && (is_ws(line[0]) || line[0] == '\r')) {
		line++;
		len--;
	}
	while (len > 0 && is_blank(line[len - 1]))
		len--;
	if (len == 0 || line[0] == '#')
		return SL_LP_SKIP;

	struct lp_ctx c = {.s = line, .n = len, .pos = 0, .used = 0, .out = out};
	enum sl_lp_err e = parse_body(&c, opts);
	if (e != SL_LP_OK) {
		out->err = e;
		out->n_fields = 0;
		return -EBADMSG;
	}
	SL_ASSERT(out->n_fields >= 1 && c.used <= out->scratch_cap);
	return 0;
}

size_t sl_lp_line_end(const char *buf, size_t len)
{
	/* the common line has neither quotes nor backslashes: its first newline ends it */
	const char *nl = memchr(buf, '\n', len);
	size_t first = nl ? (size_t)(nl - buf) : len;
	if (memchr(buf, '"', first) == NULL && memchr(buf, '\\', first) == NULL)
		return first;

	/* otherwise the parser's own grammar decides where a string is (InfluxDB's splitter
	 * counts '=' and ',' by another escape rule than its parser, and a tag value such as
	 * a\\ b\\, makes it split inside a string) */
	size_t i = 0;
	while (i < len && (is_ws(buf[i]) || buf[i] == '\r'))
		i++;
	if (i < len && buf[i] == '#')
		return first; /* a comment ends at its newline */
	/* measurement and tags: no byte right after a backslash is a delimiter */
	for (; i < len && !(buf[i] == ' ' && i > 0 && buf[i - 1] != '\\'); i++) {
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\\'))
			return i;
	}
	while (i < len && is_ws(buf[i]))
		i++;
	/* the field set: outside strings a backslash and the byte after it are one unit in
	 * keys; values never hold an escape; strings hold anything but an unescaped '"' */
	enum { KEY, VALUE_START, VALUE, STRING } st = KEY;
	for (; i < len; i++) {
		char ch = buf[i];
		if (st == STRING) {
			if (ch == '\\' && i + 1 < len && (buf[i + 1] == '"' || buf[i + 1] == '\\'))
				i++;
			else if (ch == '"')
				st = VALUE; /* junk up to the next ',' or ' ' is the parser's to
					       refuse */
			continue;
		}
		if (ch == '\n' || ch == ' ')
			break;
		if (st == KEY && ch == '\\')
			i++; /* the next byte, a newline too, is part of the key */
		else if (st == KEY && ch == '=')
			st = VALUE_START;
		else if (st == VALUE_START && ch == '"')
			st = STRING;
		else if (ch == ',')
			st = KEY;
		else if (st == VALUE_START)
			st = VALUE;
	}
	if (i >= len)
		return len;
	/* the timestamp (or junk): up to the next newline */
	nl = memchr(buf + i, '\n', len - i);
	return nl ? (size_t)(nl - buf) : len;
}

int sl_lp_parse_datagram_from(const char *buf, size_t len, size_t *off,
			      const struct sl_lp_opts *opts, struct sl_lp_line *work,
			      sl_lp_line_fn fn, void *arg, struct sl_lp_counts *counts)
{
	if ((buf == NULL && len) || off == NULL || opts == NULL || work == NULL || fn == NULL ||
	    counts == NULL)
		return -EINVAL;
	while (*off < len) { /* every pass consumes at least one byte */
		size_t end = *off + sl_lp_line_end(buf + *off, len - *off);
		int rc = sl_lp_parse_line(buf + *off, end - *off, opts, work);
		if (rc == SL_LP_SKIP) {
			counts->lines_skipped++;
		} else if (rc < 0) {
			SL_ASSERT(work->err > SL_LP_OK && work->err < SL_LP_ERR_COUNT);
			counts->lines_bad++;
			counts->bad[work->err]++;
		} else {
			rc = fn(arg, work);
			if (rc < 0)
				return rc; /* *off stays at this line: it is parsed again on resume */
			counts->lines_ok++;
			counts->points += work->n_fields;
		}
		*off = end < len ? end + 1 : len; /* past its '\n', if it has one */
	}
	return 0;
}

int sl_lp_parse_datagram(const char *buf, size_t len, const struct sl_lp_opts *opts,
			 struct sl_lp_line *work, sl_lp_line_fn fn, void *arg,
			 struct sl_lp_counts *counts)
{
	size_t off = 0;
	return sl_lp_parse_datagram_from(buf, len, &off, opts, work, fn, arg, counts);
}

int sl_lp_field_point(const struct sl_lp_line *line, uint32_t i, struct sl_point *out)
{
	if (line == NULL || out == NULL || i >= line->n_fields)
		return -EINVAL;
	const struct sl_lp_field *f = &line->fields[i];
	if (f->type == SL_VAL_STR)
		return -ENOTSUP;
	*out = (struct sl_point){.series_id = f->series_id,
				 .ts = line->ts,
				 .type = f->type,
				 .value = f->value,
				 .key_len = f->key_len,
				 .key = f->key};
	return 0;
}

/* ---- formatting -------------------------------------------------------------------- */

int sl_lp_format(char *buf, size_t cap, const char *key, size_t key_len, uint8_t type,
		 uint64_t value, const char *str, size_t str_len, int64_t ts_ns)
{
	if (buf == NULL || key == NULL || (str == NULL && str_len))
		return -EINVAL;
	/* in a canonical key the first ' ' not right after a backslash ends the series part */
	size_t sp = 0;
	while (sp < key_len && (key[sp] != ' ' || (sp > 0 && key[sp - 1] == '\\')))
		sp++;
	if (sp == 0 || sp + 1 >= key_len)
		return -EINVAL;

	char num[64];
	int nlen = 0;
	switch (type) {
	case SL_VAL_F64: {
		double d;
		memcpy(&d, &value, sizeof d);
		if (!isfinite(d))
			return -EINVAL;
		nlen = snprintf(num, sizeof num, "%.17g", d);
		break;
	}
	case SL_VAL_I64:
		nlen = snprintf(num, sizeof num, "%" PRId64 "i", (int64_t)value);
		break;
	case SL_VAL_U64:
		nlen = snprintf(num, sizeof num, "%" PRIu64 "u", value);
		break;
	case SL_VAL_BOOL:
		nlen = snprintf(num, sizeof num, "%s", value ? "true" : "false");
		break;
	case SL_VAL_STR:
		break;
	default:
		return -EINVAL;
	}
	SL_ASSERT(nlen >= 0 && (size_t)nlen < sizeof num);

	size_t o = 0;
	bool ok = true;
	for (size_t i = 0; ok && i < key_len; i++)
		ok = put_byte(buf, cap, &o, key[i]);
	ok = ok && put_byte(buf, cap, &o, '=');
	if (type == SL_VAL_STR) {
		ok = ok && put_byte(buf, cap, &o, '"');
		for (size_t i = 0; ok && i < str_len; i++) {
			if (str[i] == '"' || str[i] == '\\')
				ok = put_byte(buf, cap, &o, '\\');
			ok = ok && put_byte(buf, cap, &o, str[i]);
		}
		ok = ok && put_byte(buf, cap, &o, '"');
	}
	for (int i = 0; ok && i < nlen; i++)
		ok = put_byte(buf, cap, &o, num[i]);
	char ts[32];
	int tlen = snprintf(ts, sizeof ts, " %" PRId64 "\n", ts_ns);
	for (int i = 0; ok && i < tlen; i++)
		ok = put_byte(buf, cap, &o, ts[i]);
	if (!ok || o > INT32_MAX)
		return -ENOSPC;
	if (o < cap)
		buf[o] = 0;
	return (int)o;
}

int sl_lp_canonical_key(const char *key, size_t len, char *out, size_t cap)
{
	if (key == NULL || out == NULL || len == 0 || len > SL_KEY_MAX)
		return -EINVAL;
	/* "<key>=0" is a line with one field whose canonical key is the answer */
	char *line = malloc(len + 2);
	size_t scratch_cap = SL_LP_SCRATCH_BYTES(len + 2);
	char *scratch = malloc(scratch_cap);
	struct sl_lp_line *l = malloc(sizeof(*l));
	int rc = -ENOMEM;
	if (line != NULL && scratch != NULL && l != NULL) {
		memcpy(line, key, len);
		memcpy(line + len, "=0", 2);
		struct sl_lp_opts o = {.precision = SL_LP_PREC_NS, .now_ns = 0, .max_line_bytes = len + 2};
		sl_lp_line_init(l, scratch, scratch_cap);
		rc = sl_lp_parse_line(line, len + 2, &o, l);
		if (rc != 0 || l->n_fields != 1)
			rc = -EBADMSG;
		else if (l->fields[0].key_len >= cap)
			rc = -ENOSPC;
		else {
			memcpy(out, l->fields[0].key, l->fields[0].key_len);
			out[l->fields[0].key_len] = '\0';
			rc = l->fields[0].key_len;
		}
	}
	free(line);
	free(scratch);
	free(l);
	return rc;
}

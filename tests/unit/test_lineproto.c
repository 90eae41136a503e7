/* test_lineproto.c - cmocka tests of the line protocol parser: grammar edge cases (escapes,
 * quoting, canonical tag order), every numeric limit, booleans, precisions, datagrams with
 * bad lines in the middle, UTF-8, size limits, and the formatter's round trip. */
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

#include "batch.h"
#include "lineproto.h"

#define NOW_NS 4242

static char scratch[SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX)];
static struct sl_lp_line L;
static struct sl_lp_opts OPTS = {.precision = SL_LP_PREC_NS, .now_ns = NOW_NS};

/* Parses s (NUL-terminated) with opts; returns the parser's rc. */
static int parse_opts(const char *s, size_t len, const struct sl_lp_opts *o)
{
	sl_lp_line_init(&L, scratch, sizeof scratch);
	return sl_lp_parse_line(s, len, o, &L);
}

static int parse(const char *s) { return parse_opts(s, strlen(s), &OPTS); }

/* Expects s to fail with reason e. */
static void expect_err(const char *s, enum sl_lp_err e)
{
	int rc = parse(s);
	if (rc != -EBADMSG || L.err != e)
		fail_msg("'%s': rc %d err %s, want %s", s, rc, sl_lp_err_name(L.err),
			 sl_lp_err_name(e));
}

static void expect_key(uint32_t i, const char *key)
{
	assert_true(i < L.n_fields);
	const struct sl_lp_field *f = &L.fields[i];
	if (f->key_len != strlen(key) || memcmp(f->key, key, f->key_len) != 0)
		fail_msg("key %u is '%.*s', want '%s'", i, (int)f->key_len, f->key, key);
	assert_int_equal(f->series_id, sl_series_id(key, strlen(key)));
}

/* Parses line and expects success with key as the first field's series key. */
static void expect_key_of(const char *line, const char *key)
{
	int rc = parse(line);
	if (rc != 0)
		fail_msg("'%s': rc %d err %s", line, rc, sl_lp_err_name(L.err));
	expect_key(0, key);
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

/* Parses s and expects one field of the given type and raw value. */
static void expect_val(const char *s, uint8_t type, uint64_t value)
{
	int rc = parse(s);
	if (rc != 0)
		fail_msg("'%s': rc %d err %s", s, rc, sl_lp_err_name(L.err));
	assert_int_equal(L.n_fields, 1);
	assert_int_equal(L.fields[0].type, type);
	if (L.fields[0].value != value)
		fail_msg("'%s': value %#llx want %#llx", s, (unsigned long long)L.fields[0].value,
			 (unsigned long long)value);
}

static void test_basic(void **state)
{
	(void)state;
	assert_int_equal(parse("cpu,host=a usage=1.5 1000"), 0);
	assert_int_equal(L.n_fields, 1);
	expect_key(0, "cpu,host=a usage");
	assert_int_equal(L.fields[0].type, SL_VAL_F64);
	assert_true(f64_of(L.fields[0].value) == 1.5);
	assert_int_equal(L.ts, 1000);

	/* no tags, no timestamp: node time */
	expect_key_of("mem free=7i", "mem free");
	assert_int_equal(L.ts, NOW_NS);
	assert_int_equal(L.fields[0].type, SL_VAL_I64);
	assert_int_equal((int64_t)L.fields[0].value, 7);

	/* line endings, blanks around, several spaces between sections */
	assert_int_equal(parse("m f=1\n"), 0);
	assert_int_equal(parse("m f=1\r\n"), 0);
	expect_key_of("  m,t=1   f=1   9  ", "m,t=1 f");
	assert_int_equal(L.ts, 9);
	assert_int_equal(parse("\tm f=1\t"), 0);

	/* '=' in the measurement and '"' in a field key are plain characters; the canonical
	 * field key escapes '"' (as InfluxDB writes field keys) */
	expect_key_of("a=b q\"=1", "a=b q\\\"");
}

static void test_skip(void **state)
{
	(void)state;
	const char *skips[] = {"", "\n", "\r\n", "   ", "# comment", "  #x y=1", "#"};
	for (size_t i = 0; i < sizeof skips / sizeof skips[0]; i++) {
		assert_int_equal(parse(skips[i]), SL_LP_SKIP);
		assert_int_equal(L.n_fields, 0);
	}
	assert_int_equal(sl_lp_parse_line(NULL, 0, &OPTS, &L), -EINVAL);
	assert_int_equal(sl_lp_parse_line("m f=1", 5, NULL, &L), -EINVAL);
}

static void test_tag_sorting(void **state)
{
	(void)state;
	const char *orders[] = {"cpu,z=1,a=2,m=3 v=1i", "cpu,m=3,a=2,z=1 v=1i",
				"cpu,a=2,m=3,z=1 v=1i", "cpu,a=2,z=1,m=3 v=1i"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(parse(orders[i]), 0);
		expect_key(0, "cpu,a=2,m=3,z=1 v");
	}
	/* byte order: 'B' < '_' < 'b'; a prefix sorts first */
	expect_key_of("m,b=1,ab=0,B=2,_=3,a=4 v=1", "m,B=2,_=3,a=4,ab=0,b=1 v");
	/* compared as written, like InfluxDB: "a\ b" sorts after "a!" as '\' > '!' */
	expect_key_of("m,a\\ b=2,a!=1 v=1", "m,a!=1,a\\ b=2 v");
	/* multi-byte UTF-8 keys sort by bytes too */
	expect_key_of("m,\xc3\xa9=1,z=2 v=1", "m,z=2,\xc3\xa9=1 v");
}

static void test_escapes(void **state)
{
	(void)state;
	expect_key_of("my\\ meas\\,x,t\\=k=v\\ 1\\,2 f\\ k\\,\\==1",
		      "my\\ meas\\,x,t\\=k=v\\ 1\\,2 f\\ k\\,\\=");
	/* '=' needs no escape in a measurement; "\=" there is a backslash and '=' */
	expect_key_of("a\\=b f=1", "a\\=b f");
	/* "\ " before the fields escapes the separator away */
	expect_err("m\\ f=1", SL_LP_ERR_NO_FIELDS);
	expect_err("m,t=v\\ f=1", SL_LP_ERR_SYNTAX_TAG); /* the '=' lands in the tag value */
	/* duplicate tags are found on the names as written (one spelling per name) */
	expect_err("m,a\\ b=1,a\\ b=2 f=1", SL_LP_ERR_DUPLICATE_TAG);
	expect_err("m,a\\b=1,a\\b=2 f=1", SL_LP_ERR_DUPLICATE_TAG);
}

/* A backslash escapes only ',' ' ' (and '=' in tags) in names: anywhere else it is a byte
 * of the name, and the byte after it is never a delimiter (InfluxDB 1.x). */
static void test_backslash_names(void **state)
{
	(void)state;
	/* a lone backslash and a doubled one are two different series */
	expect_key_of("m,t=a\\b v=1", "m,t=a\\b v");
	uint64_t id = L.fields[0].series_id;
	expect_key_of("m,t=a\\\\b v=1", "m,t=a\\\\b v");
	assert_int_not_equal(L.fields[0].series_id, id);
	expect_key_of("a\\b,t=x v=1", "a\\b,t=x v");
	id = L.fields[0].series_id;
	expect_key_of("a\\\\b,t=x v=1", "a\\\\b,t=x v");
	assert_int_not_equal(L.fields[0].series_id, id);
	/* "\\=" in a tag key: a backslash, then an escaped '=' */
	expect_key_of("cpu,reg\\\\=ion=east value=1", "cpu,reg\\\\=ion=east value");
	/* "\\ " in a tag value: a backslash, then an escaped space (not the end of the tags) */
	expect_key_of("cpu,regions=east\\\\  value=1", "cpu,regions=east\\\\  value");
	expect_key_of("cpu,regions=\\\\ east value=1", "cpu,regions=\\\\ east value");
	expect_err("cpu,t=east\\\\ value=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m,t=a\\\\,u=b f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_key_of("cpu,regions=\\\\,\\,\\=east value=1", "cpu,regions=\\\\,\\,\\=east value");
	expect_err("m\\\\,t=v\\\\ f=1", SL_LP_ERR_NO_FIELDS);
	/* field keys: "\," "\"" "\ " "\=" unescape, any other backslash is a byte */
	expect_key_of("cpu \\a=1i", "cpu \\a");
	expect_key_of("cpu f\\\\x=1", "cpu f\\\\x");
	expect_key_of("cpu f\\\"=1", "cpu f\\\"");
	id = L.fields[0].series_id;
	expect_key_of("cpu f\"=1", "cpu f\\\"");
	assert_int_equal(L.fields[0].series_id, id);
	expect_key_of("cpu f\\\\\"=1", "cpu f\\\\\"");
	expect_err("cpu f\\\\=1", SL_LP_ERR_SYNTAX_FIELD);   /* ends in a backslash */
	expect_err("cpu f\\\\ g=1", SL_LP_ERR_SYNTAX_FIELD); /* the space is not escaped */
	expect_err("cpu f\\\\,g=1", SL_LP_ERR_SYNTAX_FIELD);
	/* a tag value may start with '=' (InfluxDB) */
	expect_key_of("m,t==x v=1", "m,t==x v");
}

/* A field key repeated in a line is one field: the last value wins (InfluxDB 1.x). */
static void test_duplicate_fields(void **state)
{
	(void)state;
	assert_int_equal(parse("m f=1,f=2"), 0);
	assert_int_equal(L.n_fields, 1);
	expect_key(0, "m f");
	assert_true(f64_of(L.fields[0].value) == 2);
	/* other fields keep their place; the type may change with the value */
	assert_int_equal(parse("m,t=1 f=1i,g=2,f=\"x\" 7"), 0);
	assert_int_equal(L.n_fields, 2);
	expect_key(0, "m,t=1 f");
	expect_key(1, "m,t=1 g");
	assert_int_equal(L.fields[0].type, SL_VAL_STR);
	assert_int_equal(L.fields[0].str_len, 1);
	assert_memory_equal(L.fields[0].str, "x", 1);
	assert_int_equal(L.ts, 7);
	/* two spellings of one field key */
	assert_int_equal(parse("m f\\,=1,f\\,=2i"), 0);
	assert_int_equal(L.n_fields, 1);
	assert_int_equal(L.fields[0].type, SL_VAL_I64);
	assert_int_equal(parse("m f\"=1,f\\\"=2i"), 0);
	assert_int_equal(L.n_fields, 1);
	assert_int_equal(L.fields[0].value, 2);
	/* a bad value anywhere still refuses the line */
	expect_err("m f=1,f=x", SL_LP_ERR_BAD_NUMBER);
	/* many repeats of a key near SL_KEY_MAX: the scratch of a line of that length holds
	 * them (a repeated key takes no scratch), and so do SL_LP_MAX_FIELDS distinct ones */
	static char line[SL_LP_LINE_MAX + 16];
	size_t o = SL_KEY_MAX - 3;
	memset(line, 'a', o);
	line[o++] = ' ';
	for (int i = 0; o + 16 < SL_LP_LINE_MAX; i++)
		o += (size_t)sprintf(line + o, "%sf=%d", i ? "," : "", i % 10);
	static char small[SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX)];
	sl_lp_line_init(&L, small, sizeof small);
	assert_int_equal(sl_lp_parse_line(line, o, &OPTS, &L), 0);
	assert_int_equal(L.n_fields, 1);
	assert_int_equal(L.fields[0].key_len, SL_KEY_MAX - 1);
}

/* NUL in a name is refused and counted (key_nul); in a string value it is a byte. Leading
 * NULs are whitespace, as in InfluxDB. */
static void test_nul(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
#define NUL_CASE(lit) {lit, sizeof lit - 1}
	    NUL_CASE("m\0x f=1"),    NUL_CASE("m,t\0=v f=1"), NUL_CASE("m,t=v\0 f=1"),
	    NUL_CASE("m,t=\0 f=1"),  NUL_CASE("m f\0=1"),     NUL_CASE("m g=2,\0=1"),
	    NUL_CASE("m\\\0 f=1 5"),
#undef NUL_CASE
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse_opts(bad[i].s, bad[i].n, &OPTS);
		if (rc != -EBADMSG || L.err != SL_LP_ERR_KEY_NUL)
			fail_msg("case %zu: rc %d err %s", i, rc, sl_lp_err_name(L.err));
	}
	static const char str[] = "m s=\"a\0b\" 5";
	assert_int_equal(parse_opts(str, sizeof str - 1, &OPTS), 0);
	assert_int_equal(L.fields[0].str_len, 3);
	assert_memory_equal(L.fields[0].str, "a\0b", 3);
	static const char lead[] = "\0\0 m f=1 \0 5";
	assert_int_equal(parse_opts(lead, sizeof lead - 1, &OPTS), 0);
	expect_key(0, "m f");
	assert_int_equal(L.ts, 5);
	static const char lead_comma[] = "\0,t=v f=1";
	assert_int_equal(parse_opts(lead_comma, sizeof lead_comma - 1, &OPTS), -EBADMSG);
	assert_int_equal(L.err, SL_LP_ERR_SYNTAX_MEASUREMENT);
	assert_string_equal(sl_lp_err_name(SL_LP_ERR_KEY_NUL), "key_nul");
}

/* Any key the parser produces parses back to itself (the canonical form is a fixed point). */
static void test_canonical_fixed_point(void **state)
{
	(void)state;
	const char *lines[] = {
	    "my\\ meas\\,x,t\\=k=v\\ 1\\,2 f\\ k=1", "a\\=b,z=\\\\x f=1",   "a\\b,t=x\\y f\\\\x=1",
	    "m,\xc3\xa9=\xe2\x82\xac f=1",	     "m f\\\\\\,\\\\\"q=1", "m,t==\\= \"f\\\"=1"};
	char key[SL_KEY_MAX + 1], line[SL_KEY_MAX + 8];
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (parse(lines[i]) != 0)
			fail_msg("'%s': %s", lines[i], sl_lp_err_name(L.err));
		memcpy(key, L.fields[0].key, L.fields[0].key_len);
		key[L.fields[0].key_len] = 0;
		snprintf(line, sizeof line, "%s=1", key);
		if (parse(line) != 0)
			fail_msg("'%s' from '%s': %s", line, lines[i], sl_lp_err_name(L.err));
		expect_key(0, key);
	}
}

/* Random names full of specials, random tag order: one key per series, none shared. A
 * backslash is a byte of a name, only the position's specials are escaped. */
static void put_escaped(char *dst, size_t *o, const char *name, const char *specials)
{
	for (const char *p = name; *p; p++) {
		if (strchr(specials, *p))
			dst[(*o)++] = '\\';
		dst[(*o)++] = *p;
	}
}

static void test_canonical_random(void **state)
{
	(void)state;
	const char alphabet[] = "ab,= \\\"x#";
	srand(7);
	for (int round = 0; round < 300; round++) {
		char names[4][5];
		for (int t = 0; t < 4; t++) {
			int n = 1 + rand() % 4;
			for (int k = 0; k < n; k++)
				names[t][k] = alphabet[rand() % (sizeof alphabet - 1)];
			names[t][n] = 0;
		}
		/* tags names[1]=names[3] and names[2]=names[3], written in both orders */
		if (names[0][0] == '#')
			names[0][0] = 'a'; /* would make the line a comment */
		if (strcmp(names[1], names[2]) == 0)
			continue;
		bool ends_in_backslash = false; /* its delimiter would be escaped: not writable */
		for (int t = 0; t < 4; t++)
			ends_in_backslash |= names[t][strlen(names[t]) - 1] == '\\';
		if (ends_in_backslash)
			continue;
		uint64_t ids[2];
		char keys[2][SL_KEY_MAX];
		size_t klen[2];
		for (int order = 0; order < 2; order++) {
			char line[256];
			size_t o = 0;
			put_escaped(line, &o, names[0], ", ");
			for (int t = 0; t < 2; t++) {
				line[o++] = ',';
				put_escaped(line, &o, names[1 + (t ^ order)], ",= ");
				line[o++] = '=';
				put_escaped(line, &o, names[3], ",= ");
			}
			memcpy(line + o, " v=1", 5);
			if (parse(line) != 0)
				fail_msg("'%s': %s", line, sl_lp_err_name(L.err));
			ids[order] = L.fields[0].series_id;
			klen[order] = L.fields[0].key_len;
			memcpy(keys[order], L.fields[0].key, klen[order]);
		}
		assert_int_equal(ids[0], ids[1]);
		assert_int_equal(klen[0], klen[1]);
		assert_memory_equal(keys[0], keys[1], klen[0]);
		/* change one byte of one tag value: a different series */
		char line[256];
		size_t o = 0;
		put_escaped(line, &o, names[0], ", ");
		line[o++] = ',';
		put_escaped(line, &o, names[1], ",= ");
		memcpy(line + o, "=Q,", 3);
		o += 3;
		put_escaped(line, &o, names[2], ",= ");
		line[o++] = '=';
		put_escaped(line, &o, names[3], ",= ");
		memcpy(line + o, " v=1", 5);
		assert_int_equal(parse(line), 0);
		if (strcmp(names[3], "Q") != 0)
			assert_int_not_equal(L.fields[0].series_id, ids[0]);
	}
}

static void test_strings(void **state)
{
	(void)state;
	assert_int_equal(
	    parse("m s=\"hello \\\"world\\\" \\\\ back\\slash\",t=\"a,b c=d\",e=\"\" 5"), 0);
	assert_int_equal(L.n_fields, 3);
	assert_int_equal(L.fields[0].type, SL_VAL_STR);
	const char *want = "hello \"world\" \\ back\\slash";
	assert_int_equal(L.fields[0].str_len, strlen(want));
	assert_memory_equal(L.fields[0].str, want, strlen(want));
	assert_int_equal(L.fields[1].str_len, 7);
	assert_memory_equal(L.fields[1].str, "a,b c=d", 7);
	assert_int_equal(L.fields[2].str_len, 0);
	expect_key(2, "m e");
	assert_int_equal(L.ts, 5);

	expect_err("m s=\"abc", SL_LP_ERR_BAD_STRING);
	expect_err("m s=\"abc\\\"", SL_LP_ERR_BAD_STRING);
	expect_err("m s=\"a\"x", SL_LP_ERR_BAD_STRING);
	expect_err("m s=\"a\"\"b\"", SL_LP_ERR_BAD_STRING);
	expect_err("m s=abc", SL_LP_ERR_BAD_NUMBER);

	/* 64 KiB is the limit, counted after unescaping */
	static char big[SL_LP_STR_MAX + 64];
	size_t o = 0;
	memcpy(big, "m s=\"", 5);
	o = 5;
	memset(big + o, 'x', SL_LP_STR_MAX);
	o += SL_LP_STR_MAX;
	memcpy(big + o, "\"", 2);
	assert_int_equal(parse(big), 0);
	assert_int_equal(L.fields[0].str_len, SL_LP_STR_MAX);
	memcpy(big + o, "y\"", 3);
	expect_err(big, SL_LP_ERR_STRING_TOO_LONG);
	/* escapes shrink: 65536 quotes written as \" still fit */
	o = 5;
	memset(big + o, 'x', SL_LP_STR_MAX - 1);
	o += SL_LP_STR_MAX - 1;
	memcpy(big + o, "\\\"\"", 4);
	assert_int_equal(parse(big), 0);
	assert_int_equal(L.fields[0].str_len, SL_LP_STR_MAX);
	assert_int_equal(L.fields[0].str[SL_LP_STR_MAX - 1], '"');
}

static void test_floats(void **state)
{
	(void)state;
	struct {
		const char *s;
		double v;
	} ok[] = {{"1", 1},	    {"1.5", 1.5},
		  {"-1e9", -1e9},   {"1E+3", 1e3},
		  {".5", 0.5},	    {"1.", 1},
		  {"-0.25", -0.25}, {"007", 7},
		  {"1e-3", 1e-3},   {"1.7976931348623157e308", 1.7976931348623157e308},
		  {"1e-400", 0}};
	char line[64];
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		snprintf(line, sizeof line, "m v=%s", ok[i].s);
		expect_val(line, SL_VAL_F64, bits_of(ok[i].v));
	}
	expect_val("m v=-0", SL_VAL_F64, bits_of(-0.0));
	expect_err("m v=1e400", SL_LP_ERR_OUT_OF_RANGE);
	expect_err("m v=-1e400", SL_LP_ERR_OUT_OF_RANGE);
	const char *bad[] = {"inf", "-inf", "nan",   "NaN",   "Infinity", "+1", "0x10",
			     "1e",  "1e+",  "1.2.3", "1_000", "--1",	  "-",	".",
			     "-.",  "1,5e", "e5",    "1ee5",  "1i5",	  "abc"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(line, sizeof line, "m v=%s", bad[i]);
		int rc = parse(line);
		assert_int_equal(rc, -EBADMSG);
		if (L.err != SL_LP_ERR_BAD_NUMBER && L.err != SL_LP_ERR_SYNTAX_FIELD)
			fail_msg("'%s': %s", line, sl_lp_err_name(L.err));
	}
	expect_err("m v=inf", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=nan", SL_LP_ERR_BAD_NUMBER);
	/* absurdly long (but well-formed) numbers are refused, not truncated */
	static char longnum[SL_LP_NUMBER_MAX + 16];
	memcpy(longnum, "m v=", 4);
	memset(longnum + 4, '1', SL_LP_NUMBER_MAX);
	longnum[4 + SL_LP_NUMBER_MAX] = 0;
	expect_err(longnum, SL_LP_ERR_BAD_NUMBER);
}

/* The parser's fast path must give exactly strtod's double: random decimal tokens. */
static void test_floats_match_strtod(void **state)
{
	(void)state;
	srand(11);
	int checked = 0;
	for (int it = 0; it < 100000; it++) {
		char num[64], line[80];
		int k = 0;
		if (rand() % 2)
			num[k++] = '-';
		int d1 = rand() % 12, d2 = rand() % 12;
		for (int j = 0; j < d1; j++)
			num[k++] = (char)('0' + rand() % 10);
		if (rand() % 3) {
			num[k++] = '.';
			for (int j = 0; j < d2; j++)
				num[k++] = (char)('0' + rand() % 10);
		}
		if (d1 == 0 && d2 == 0)
			num[k++] = '7';
		if (rand() % 3 == 0)
			k += sprintf(num + k, "e%d", rand() % 60 - 30);
		num[k] = 0;
		snprintf(line, sizeof line, "m f=%s", num);
		if (parse(line) != 0)
			continue; /* "-." and the like */
		double want = strtod(num, NULL);
		if (L.fields[0].value != bits_of(want))
			fail_msg("%s: %.17g, strtod %.17g", num, f64_of(L.fields[0].value), want);
		checked++;
	}
	assert_true(checked > 90000);
}

static void test_integers(void **state)
{
	(void)state;
	expect_val("m v=0i", SL_VAL_I64, 0);
	expect_val("m v=-0i", SL_VAL_I64, 0);
	expect_val("m v=9223372036854775807i", SL_VAL_I64, (uint64_t)INT64_MAX);
	expect_val("m v=-9223372036854775808i", SL_VAL_I64, (uint64_t)INT64_MIN);
	expect_val("m v=-42i", SL_VAL_I64, (uint64_t)(int64_t)-42);
	expect_err("m v=9223372036854775808i", SL_LP_ERR_OUT_OF_RANGE);
	expect_err("m v=-9223372036854775809i", SL_LP_ERR_OUT_OF_RANGE);
	expect_err("m v=99999999999999999999999i", SL_LP_ERR_OUT_OF_RANGE);
	expect_err("m v=1.5i", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=1e3i", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=i", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=-i", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=+1i", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=1ii", SL_LP_ERR_BAD_NUMBER);

	expect_val("m v=0u", SL_VAL_U64, 0);
	expect_val("m v=18446744073709551615u", SL_VAL_U64, UINT64_MAX);
	expect_err("m v=18446744073709551616u", SL_LP_ERR_OUT_OF_RANGE);
	expect_err("m v=-1u", SL_LP_ERR_OUT_OF_RANGE);
	expect_err("m v=1.0u", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=u", SL_LP_ERR_BAD_NUMBER);
	expect_err("m v=1iu", SL_LP_ERR_BAD_NUMBER);
}

static void test_bools(void **state)
{
	(void)state;
	const char *t[] = {"t", "T", "true", "True", "TRUE"};
	const char *f[] = {"f", "F", "false", "False", "FALSE"};
	char line[64];
	for (size_t i = 0; i < 5; i++) {
		snprintf(line, sizeof line, "m v=%s", t[i]);
		expect_val(line, SL_VAL_BOOL, 1);
		snprintf(line, sizeof line, "m v=%s", f[i]);
		expect_val(line, SL_VAL_BOOL, 0);
	}
	const char *bad[] = {"tRUE", "tru", "trueX", "falsey", "Fa", "FALSe", "ft"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(line, sizeof line, "m v=%s", bad[i]);
		expect_err(line, SL_LP_ERR_BAD_BOOL);
	}
	expect_err("m v=yes", SL_LP_ERR_BAD_NUMBER);
}

static void test_timestamps(void **state)
{
	(void)state;
	struct {
		enum sl_lp_precision p;
		const char *ts;
		int64_t want;
	} ok[] = {{SL_LP_PREC_NS, "5", 5},
		  {SL_LP_PREC_US, "5", 5000},
		  {SL_LP_PREC_MS, "5", 5000000},
		  {SL_LP_PREC_S, "5", 5000000000},
		  {SL_LP_PREC_S, "-5", -5000000000},
		  {SL_LP_PREC_S, "9223372036", 9223372036000000000},
		  {SL_LP_PREC_MS, "-9223372036854", -9223372036854000000},
		  {SL_LP_PREC_NS, "9223372036854775806", INT64_MAX - 1},
		  {SL_LP_PREC_NS, "-9223372036854775806", INT64_MIN + 2},
		  {SL_LP_PREC_NS, "0", 0}};
	char line[64];
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct sl_lp_opts o = {.precision = ok[i].p, .now_ns = NOW_NS};
		snprintf(line, sizeof line, "m v=1 %s", ok[i].ts);
		assert_int_equal(parse_opts(line, strlen(line), &o), 0);
		assert_int_equal(L.ts, ok[i].want);
	}
	struct {
		enum sl_lp_precision p;
		const char *ts;
		enum sl_lp_err e;
	} bad[] = {{SL_LP_PREC_S, "9223372037", SL_LP_ERR_TS_OUT_OF_RANGE},
		   {SL_LP_PREC_S, "-9223372037", SL_LP_ERR_TS_OUT_OF_RANGE},
		   {SL_LP_PREC_US, "9223372036854776", SL_LP_ERR_TS_OUT_OF_RANGE},
		   {SL_LP_PREC_NS, "9223372036854775808", SL_LP_ERR_TS_OUT_OF_RANGE},
		   /* InfluxDB's reserved instants */
		   {SL_LP_PREC_NS, "9223372036854775807", SL_LP_ERR_TS_OUT_OF_RANGE},
		   {SL_LP_PREC_NS, "-9223372036854775807", SL_LP_ERR_TS_OUT_OF_RANGE},
		   {SL_LP_PREC_NS, "-9223372036854775808", SL_LP_ERR_TS_OUT_OF_RANGE},
		   {SL_LP_PREC_NS, "12a", SL_LP_ERR_BAD_TIMESTAMP},
		   {SL_LP_PREC_NS, "1.5", SL_LP_ERR_BAD_TIMESTAMP},
		   {SL_LP_PREC_NS, "1 2", SL_LP_ERR_BAD_TIMESTAMP},
		   {SL_LP_PREC_NS, "-", SL_LP_ERR_BAD_TIMESTAMP},
		   {SL_LP_PREC_NS, "+5", SL_LP_ERR_BAD_TIMESTAMP},
		   {(enum sl_lp_precision)9, "5", SL_LP_ERR_BAD_TIMESTAMP}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sl_lp_opts o = {.precision = bad[i].p, .now_ns = NOW_NS};
		snprintf(line, sizeof line, "m v=1 %s", bad[i].ts);
		assert_int_equal(parse_opts(line, strlen(line), &o), -EBADMSG);
		if (L.err != bad[i].e)
			fail_msg("'%s': %s", line, sl_lp_err_name(L.err));
	}
	/* absent: now_ns, whatever the precision */
	struct sl_lp_opts o = {.precision = SL_LP_PREC_S, .now_ns = -77};
	assert_int_equal(parse_opts("m v=1", 5, &o), 0);
	assert_int_equal(L.ts, -77);

	enum sl_lp_precision p;
	assert_int_equal(sl_lp_precision_parse("ns", &p), 0);
	assert_int_equal(p, SL_LP_PREC_NS);
	assert_int_equal(sl_lp_precision_parse("u", &p), 0);
	assert_int_equal(p, SL_LP_PREC_US);
	assert_int_equal(sl_lp_precision_parse("ms", &p), 0);
	assert_int_equal(p, SL_LP_PREC_MS);
	assert_int_equal(sl_lp_precision_parse("s", &p), 0);
	assert_int_equal(p, SL_LP_PREC_S);
	assert_int_equal(sl_lp_precision_parse("m", &p), 0);
	assert_int_equal(p, SL_LP_PREC_M);
	assert_int_equal(sl_lp_precision_parse("h", &p), 0);
	assert_int_equal(p, SL_LP_PREC_H);
	assert_int_equal(sl_lp_precision_parse("d", &p), -EINVAL);
	assert_int_equal(sl_lp_precision_parse(NULL, &p), -EINVAL);
	/* hours scale like InfluxDB 1.x's precision=h: 2 h = 7.2e12 ns */
	struct sl_lp_line l;
	char scratch[SL_LP_SCRATCH_BYTES(64)];
	sl_lp_line_init(&l, scratch, sizeof(scratch));
	struct sl_lp_opts oh = {.precision = SL_LP_PREC_H};
	assert_int_equal(sl_lp_parse_line("m f=1 2", 7, &oh, &l), 0);
	assert_int_equal(l.ts, 7200000000000);
	oh.precision = SL_LP_PREC_M;
	assert_int_equal(sl_lp_parse_line("m f=1 3", 7, &oh, &l), 0);
	assert_int_equal(l.ts, 180000000000);
}

static void test_multiple_fields(void **state)
{
	(void)state;
	assert_int_equal(parse("m,t=1 a=1,b=2i,c=true,d=\"x y\",e=3u 7"), 0);
	assert_int_equal(L.n_fields, 5);
	const char *keys[] = {"m,t=1 a", "m,t=1 b", "m,t=1 c", "m,t=1 d", "m,t=1 e"};
	const uint8_t types[] = {SL_VAL_F64, SL_VAL_I64, SL_VAL_BOOL, SL_VAL_STR, SL_VAL_U64};
	for (uint32_t i = 0; i < 5; i++) {
		expect_key(i, keys[i]);
		assert_int_equal(L.fields[i].type, types[i]);
	}
	assert_int_equal(L.ts, 7);
	assert_int_equal(L.fields[1].value, 2);
	assert_int_equal(L.fields[4].value, 3);

	/* store points for the numeric ones, strings refused */
	struct sl_point p;
	assert_int_equal(sl_lp_field_point(&L, 1, &p), 0);
	assert_int_equal(sl_batch_point_check(&p), 0);
	assert_int_equal(p.ts, 7);
	assert_int_equal(sl_lp_field_point(&L, 3, &p), -ENOTSUP);
	assert_int_equal(sl_lp_field_point(&L, 5, &p), -EINVAL);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_err(",t=1 f=1", SL_LP_ERR_SYNTAX_MEASUREMENT);
	expect_err(" ,t=1 f=1", SL_LP_ERR_SYNTAX_MEASUREMENT);
	expect_err("m", SL_LP_ERR_NO_FIELDS);
	expect_err("m ", SL_LP_ERR_NO_FIELDS);
	expect_err("m,t=1", SL_LP_ERR_NO_FIELDS);
	expect_err("f=1", SL_LP_ERR_NO_FIELDS);
	expect_err("m,t f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m,t= f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m,=v f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m, f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m,t=1, f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m,t=a=b f=1", SL_LP_ERR_SYNTAX_TAG);
	expect_err("m,t=1,t=2 f=1", SL_LP_ERR_DUPLICATE_TAG);
	expect_err("m f", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m f=", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m f= 5", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m =1", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m f=1,", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m f=1,,g=2", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m f=1,g", SL_LP_ERR_SYNTAX_FIELD);
	expect_err("m f=1 1 2", SL_LP_ERR_BAD_TIMESTAMP);
	expect_err("m f=1 x", SL_LP_ERR_BAD_TIMESTAMP);
	for (int e = 1; e < SL_LP_ERR_COUNT; e++) {
		assert_string_not_equal(sl_lp_err_name(e), "unknown");
		for (int k = 1; k < e; k++)
			assert_string_not_equal(sl_lp_err_name(e), sl_lp_err_name(k));
	}
	assert_string_equal(sl_lp_err_name(SL_LP_ERR_COUNT), "unknown");
	assert_string_equal(sl_lp_err_name(-1), "unknown");
}

static void test_limits(void **state)
{
	(void)state;
	static char line[SL_LP_LINE_MAX + 16];
	/* SL_LP_MAX_FIELDS fields fit, one more does not */
	size_t o = 0;
	o += (size_t)sprintf(line, "m ");
	for (int i = 0; i < SL_LP_MAX_FIELDS; i++)
		o += (size_t)sprintf(line + o, "%sf%d=%d", i ? "," : "", i, i);
	assert_int_equal(parse(line), 0);
	assert_int_equal(L.n_fields, SL_LP_MAX_FIELDS);
	expect_key(SL_LP_MAX_FIELDS - 1, "m f63");
	sprintf(line + o, ",x=1");
	expect_err(line, SL_LP_ERR_TOO_MANY_FIELDS);

	/* a key of exactly SL_KEY_MAX bytes fits; one more byte does not */
	memset(line, 'a', SL_KEY_MAX - 2);
	strcpy(line + SL_KEY_MAX - 2, " f=1");
	assert_int_equal(parse(line), 0);
	assert_int_equal(L.fields[0].key_len, SL_KEY_MAX);
	memset(line, 'a', SL_KEY_MAX - 1);
	strcpy(line + SL_KEY_MAX - 1, " f=1");
	expect_err(line, SL_LP_ERR_KEY_TOO_LONG);
	/* escapes count in the canonical key: 127 escaped spaces + " f" = 256 */
	o = 0;
	for (int i = 0; i < 127; i++) {
		line[o++] = '\\';
		line[o++] = ' ';
	}
	strcpy(line + o, " f=1");
	assert_int_equal(parse(line), 0);
	strcpy(line + o, " fg=1");
	expect_err(line, SL_LP_ERR_KEY_TOO_LONG);
	/* too long through the field key, and through many tags */
	memset(line, 'k', 300);
	memcpy(line, "m ", 2);
	strcpy(line + 300, "=1");
	expect_err(line, SL_LP_ERR_KEY_TOO_LONG);
	o = (size_t)sprintf(line, "m");
	for (int i = 0; i < 100; i++)
		o += (size_t)sprintf(line + o, ",t%d=v", i);
	strcpy(line + o, " f=1");
	expect_err(line, SL_LP_ERR_KEY_TOO_LONG);

	/* line length: configurable, default SL_LP_LINE_MAX, line ending not counted */
	struct sl_lp_opts small = {.now_ns = 1, .max_line_bytes = 20};
	assert_int_equal(parse_opts("m f=1  1234567890123\r\n", 22, &small), 0);
	assert_int_equal(parse_opts("m f=1  12345678901234", 21, &small), -EBADMSG);
	assert_int_equal(L.err, SL_LP_ERR_LINE_TOO_LONG);
	memset(line, ' ', SL_LP_LINE_MAX + 1);
	memcpy(line, "m f=1", 5);
	assert_int_equal(parse_opts(line, SL_LP_LINE_MAX, &OPTS), 0);
	assert_int_equal(parse_opts(line, SL_LP_LINE_MAX + 1, &OPTS), -EBADMSG);
	assert_int_equal(L.err, SL_LP_ERR_LINE_TOO_LONG);

	/* scratch too small is the caller's problem, reported as such */
	char tiny[2];
	sl_lp_line_init(&L, tiny, sizeof tiny);
	assert_int_equal(sl_lp_parse_line("m f=1", 5, &OPTS, &L), -EBADMSG);
	assert_int_equal(L.err, SL_LP_ERR_SCRATCH);
	char small_scratch[8];
	sl_lp_line_init(&L, small_scratch, sizeof small_scratch);
	assert_int_equal(sl_lp_parse_line("m f=\"abcdefgh\"", 15, &OPTS, &L), -EBADMSG);
	assert_int_equal(L.err, SL_LP_ERR_SCRATCH);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_int_equal(
	    parse("m,host=h\xc3\xa9llo \xe6\xb8\xa9\xe5\xba\xa6=1,s=\"\xf0\x9f\x98\x80\""), 0);
	expect_key(0, "m,host=h\xc3\xa9llo \xe6\xb8\xa9\xe5\xba\xa6");
	assert_int_equal(L.fields[1].str_len, 4);
	const char *bad[] = {
	    "m,t=\xff f=1",		/* never valid */
	    "m,t=\xc0\xaf f=1",		/* overlong '/' */
	    "m,t=\xe0\x80\xaf f=1",	/* overlong, 3 bytes */
	    "m,t=\xed\xa0\x80 f=1",	/* surrogate */
	    "m,t=\xf4\x90\x80\x80 f=1", /* above U+10FFFF */
	    "m,t=\xe2\x82 f=1",		/* truncated */
	    "m f=\"\x80\"",		/* lone continuation, inside a string */
	    "m f=1 1\xc3",		/* truncated at the very end */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_err(bad[i], SL_LP_ERR_INVALID_UTF8);
}

struct collect {
	int calls;
	int stop_at;
	uint64_t points;
	char keys[8][64];
};

static int collect_fn(void *arg, const struct sl_lp_line *line)
{
	struct collect *c = arg;
	if (c->calls == c->stop_at)
		return -ENOBUFS;
	if (c->calls < 8)
		snprintf(c->keys[c->calls], 64, "%.*s", (int)line->fields[0].key_len,
			 line->fields[0].key);
	c->calls++;
	c->points += line->n_fields;
	return 0;
}

/* Parses a datagram with default options into fresh counters and a fresh collector. */
static int run_datagram(const char *dg, size_t len, struct collect *c, struct sl_lp_counts *counts)
{
	*counts = (struct sl_lp_counts){0};
	*c = (struct collect){.stop_at = -1};
	sl_lp_line_init(&L, scratch, sizeof scratch);
	return sl_lp_parse_datagram(dg, len, &OPTS, &L, collect_fn, c, counts);
}

static void test_datagram(void **state)
{
	(void)state;
	const char dg[] = "m f=1\n"
			  "bad line\n"
			  "# comment\n"
			  "\n"
			  "m,t=1 g=2i 5\r\n"
			  "m f=abc\n"
			  "m,t=\xff f=1\n"
			  "m2 a=1,b=2";
	struct sl_lp_counts counts;
	struct collect c;
	assert_int_equal(run_datagram(dg, sizeof dg - 1, &c, &counts), 0);
	assert_int_equal(c.calls, 3);
	assert_string_equal(c.keys[0], "m f");
	assert_string_equal(c.keys[1], "m,t=1 g");
	assert_string_equal(c.keys[2], "m2 a");
	assert_int_equal(counts.lines_ok, 3);
	assert_int_equal(counts.lines_bad, 3);
	assert_int_equal(counts.lines_skipped, 2);
	assert_int_equal(counts.points, 4);
	assert_int_equal(c.points, 4);
	assert_int_equal(counts.bad[SL_LP_ERR_SYNTAX_FIELD], 1);
	assert_int_equal(counts.bad[SL_LP_ERR_BAD_NUMBER], 1);
	assert_int_equal(counts.bad[SL_LP_ERR_INVALID_UTF8], 1);

	/* counters accumulate; an oversize line in the middle is skipped alone */
	struct sl_lp_opts small = {.now_ns = 1, .max_line_bytes = 16};
	const char dg2[] = "a f=1\nthis line is far too long=1\nb f=2\n";
	c = (struct collect){.stop_at = -1};
	assert_int_equal(
	    sl_lp_parse_datagram(dg2, sizeof dg2 - 1, &small, &L, collect_fn, &c, &counts), 0);
	assert_int_equal(c.calls, 2);
	assert_string_equal(c.keys[1], "b f");
	assert_int_equal(counts.lines_ok, 5);
	assert_int_equal(counts.bad[SL_LP_ERR_LINE_TOO_LONG], 1);
	assert_int_equal(counts.lines_bad, 4);

	/* the callback can stop the datagram (downstream full): later lines untouched */
	struct sl_lp_counts c2 = {0};
	c = (struct collect){.stop_at = 1};
	assert_int_equal(sl_lp_parse_datagram(dg, sizeof dg - 1, &OPTS, &L, collect_fn, &c, &c2),
			 -ENOBUFS);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c2.lines_bad, 1);

	/* resumable: stopped at a line, *off stays at it and the line is not counted; a
	 * later call from there takes the rest, and the totals are those of one pass */
	struct sl_lp_counts c3 = {0};
	size_t off = 0;
	c = (struct collect){.stop_at = 1};
	assert_int_equal(sl_lp_parse_datagram_from(dg, sizeof dg - 1, &off, &OPTS, &L, collect_fn,
						   &c, &c3),
			 -ENOBUFS);
	assert_true(off > 0 && off < sizeof dg - 1);
	assert_int_equal(memcmp(dg + off, "m,t=1 g=2i 5", 12), 0);
	assert_int_equal(c3.lines_ok, 1);
	c.stop_at = -1;
	assert_int_equal(sl_lp_parse_datagram_from(dg, sizeof dg - 1, &off, &OPTS, &L, collect_fn,
						   &c, &c3),
			 0);
	assert_int_equal(off, sizeof dg - 1);
	assert_int_equal(c.calls, 3);
	assert_string_equal(c.keys[1], "m,t=1 g");
	assert_int_equal(c3.lines_ok, 3);
	assert_int_equal(c3.lines_bad, 3);
	assert_int_equal(c3.lines_skipped, 2);
	assert_int_equal(c3.points, 4);

	/* empty datagram, and NULL arguments */
	c = (struct collect){.stop_at = -1};
	assert_int_equal(sl_lp_parse_datagram("", 0, &OPTS, &L, collect_fn, &c, &c2), 0);
	assert_int_equal(c.calls, 0);
	assert_int_equal(sl_lp_parse_datagram(dg, 4, &OPTS, &L, NULL, &c, &c2), -EINVAL);
}

/* Lines end where InfluxDB ends them: never inside a quoted string field, never at a
 * newline right after a backslash. */
static void test_line_splitting(void **state)
{
	(void)state;
	/* the forged point: one line, whose string holds the newlines */
	const char forged[] = "log msg=\"x\nfake,host=evil value=666 5\n\" 7\nm f=1\n";
	struct sl_lp_counts counts;
	struct collect c;
	assert_int_equal(run_datagram(forged, sizeof forged - 1, &c, &counts), 0);
	assert_int_equal(c.calls, 2);
	assert_int_equal(counts.lines_ok, 2);
	assert_int_equal(counts.lines_bad, 0);
	assert_string_equal(c.keys[0], "log msg");
	assert_string_equal(c.keys[1], "m f");
	assert_int_equal(parse_opts(forged, sl_lp_line_end(forged, sizeof forged - 1), &OPTS), 0);
	const char want[] = "x\nfake,host=evil value=666 5\n";
	assert_int_equal(L.fields[0].str_len, sizeof want - 1);
	assert_memory_equal(L.fields[0].str, want, sizeof want - 1);
	assert_int_equal(L.ts, 7);

	static const struct {
		const char *dg;
		size_t first; /* length of the first line */
	} cases[] = {
	    {"m f=1\nm g=2", 5},
	    {"m s=\"a\\\"\nb\" 5\nm g=2", 13},	    /* an escaped quote does not end it */
	    {"m s=\"a\\\\\"\nm g=2", 9},	    /* an escaped backslash before the quote */
	    {"m,t=a\\\nb f=1\nm g=2", 12},	    /* backslash-newline continues the line */
	    {"baz,t=\"a x=1 5\nbaz,t=a z=1 6", 14}, /* quotes in tags are not strings */
	    {"m \"a=1\nm v=2 1", 6},		    /* nor in a field key */
	    {"m a=1,b=\"x,y=\nz\",c=3\nm g=2", 20},
	    {"m f=1\r\nm g=2", 6},
	    {"m s=\"never closed\nm g=2\n", 24},
	    {"", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t end = sl_lp_line_end(cases[i].dg, strlen(cases[i].dg));
		if (end != cases[i].first)
			fail_msg("case %zu: line end %zu, want %zu", i, end, cases[i].first);
	}
	/* the same through escaped tags: "a\\ b\\," is what a client writes for the user text
	 * a\ b\, (InfluxDB's own splitter loses track of the quotes here and splits) */
	const char forged2[] = "m,t=a\\\\ b\\\\,c f=\"x\nevil,host=x v=1 5\n\" 7\nm f=1\n";
	assert_int_equal(run_datagram(forged2, sizeof forged2 - 1, &c, &counts), 0);
	assert_int_equal(counts.lines_ok, 2);
	assert_int_equal(counts.lines_bad, 0);
	assert_string_equal(c.keys[0], "m,t=a\\\\ b\\\\,c f");
	assert_string_equal(c.keys[1], "m f");
	/* a leading blank changes nothing; a comment ends at its newline whatever it quotes */
	const char lead[] = " m=x,t=\"a\nb\" f=\n# x=\"y\nm g=2\n";
	assert_int_equal(run_datagram(lead, sizeof lead - 1, &c, &counts), 0);
	assert_int_equal(counts.lines_ok, 1);
	assert_int_equal(counts.lines_bad, 2);
	assert_int_equal(counts.lines_skipped, 1);
	assert_string_equal(c.keys[0], "m g");

	/* a newline inside a string is a byte of it; a backslash escapes a newline only in a
	 * name (where it escapes anything), so a bad timestamp ending in one does not take
	 * the next line with it */
	const char dg2[] = "m s=\"a\nb\",t=\"\r\n\" 5\nm f=1 2\\\nm g=2\n";
	assert_int_equal(run_datagram(dg2, sizeof dg2 - 1, &c, &counts), 0);
	assert_int_equal(counts.lines_ok, 2);
	assert_int_equal(counts.lines_bad, 1);
	assert_int_equal(counts.bad[SL_LP_ERR_BAD_TIMESTAMP], 1);
	assert_string_equal(c.keys[0], "m s");
	assert_string_equal(c.keys[1], "m g");
}

/* Formats a parsed field back to a line and parses it again: same key, value, timestamp. */
static void roundtrip(const char *line)
{
	assert_int_equal(parse(line), 0);
	const struct sl_lp_field f = L.fields[0];
	int64_t ts = L.ts;
	char key[SL_KEY_MAX];
	memcpy(key, f.key, f.key_len);
	static char str[SL_LP_STR_MAX];
	memcpy(str, f.str ? f.str : "", f.str_len);
	static char out[SL_LP_LINE_MAX];
	int n = sl_lp_format(out, sizeof out, key, f.key_len, f.type, f.value, str, f.str_len, ts);
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_int_equal(parse_opts(out, (size_t)n, &OPTS), 0);
	assert_int_equal(L.fields[0].key_len, f.key_len);
	assert_memory_equal(L.fields[0].key, key, f.key_len);
	assert_int_equal(L.fields[0].type, f.type);
	assert_int_equal(L.fields[0].value, f.value);
	assert_int_equal(L.fields[0].str_len, f.str_len);
	if (f.str_len)
		assert_memory_equal(L.fields[0].str, str, f.str_len);
	assert_int_equal(L.ts, ts);
}

static void test_format(void **state)
{
	(void)state;
	const char *lines[] = {"m f=0.1",
			       "m f=1e300 5",
			       "m f=-0",
			       "m f=5e-324",
			       "m f=-1.7976931348623157e308",
			       "m f=-9223372036854775808i -9223372036854775806",
			       "m f=18446744073709551615u",
			       "m f=T",
			       "m f=false",
			       "a\\ b,c\\=d=e\\,f g\\ h=\"q\\\"uote \\\\ back\\slash\"",
			       "m f=\"\""};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		roundtrip(lines[i]);

	char buf[64];
	assert_int_equal(sl_lp_format(buf, sizeof buf, "m f", 3, SL_VAL_I64, 5, NULL, 0, 9), 9);
	assert_string_equal(buf, "m f=5i 9\n");
	assert_int_equal(sl_lp_format(buf, 8, "m f", 3, SL_VAL_I64, 5, NULL, 0, 9), -ENOSPC);
	assert_int_equal(sl_lp_format(buf, sizeof buf, "mf", 2, SL_VAL_I64, 5, NULL, 0, 9),
			 -EINVAL);
	assert_int_equal(sl_lp_format(buf, sizeof buf, "m\\ f", 4, SL_VAL_I64, 5, NULL, 0, 9),
			 -EINVAL);
	assert_int_equal(sl_lp_format(buf, sizeof buf, "m ", 2, SL_VAL_I64, 5, NULL, 0, 9),
			 -EINVAL);
	assert_int_equal(sl_lp_format(buf, sizeof buf, "m f", 3, 9, 5, NULL, 0, 9), -EINVAL);
	assert_int_equal(
	    sl_lp_format(buf, sizeof buf, "m f", 3, SL_VAL_F64, bits_of(INFINITY), NULL, 0, 9),
	    -EINVAL);
}

/* A key a person types (ctl query) finds the series the parser stored: tags sorted,
 * names re-escaped; what is not a line protocol key is refused. */
static void test_canonical_key(void **u)
{
	(void)u;
	char out[SL_KEY_MAX + 1];
	static const struct {
		const char *in, *want;
	} ok[] = {
		{"cpu,zone=b,host=a usage", "cpu,host=a,zone=b usage"},
		{"cpu,host=a,zone=b usage", "cpu,host=a,zone=b usage"},
		{"cpu usage", "cpu usage"},
		{"my\\ m,t\\=x=1 f", "my\\ m,t\\=x=1 f"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int n = sl_lp_canonical_key(ok[i].in, strlen(ok[i].in), out, sizeof(out));
		assert_int_equal(n, (int)strlen(ok[i].want));
		assert_string_equal(out, ok[i].want);
	}
	assert_int_equal(sl_lp_canonical_key("s0", 2, out, sizeof(out)), -EBADMSG);
	assert_int_equal(sl_lp_canonical_key("cpu,a=1 f g", 11, out, sizeof(out)), -EBADMSG);
	assert_int_equal(sl_lp_canonical_key("cpu usage", 9, out, 4), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_skip),
	    cmocka_unit_test(test_tag_sorting),
	    cmocka_unit_test(test_canonical_key),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_backslash_names),
	    cmocka_unit_test(test_duplicate_fields),
	    cmocka_unit_test(test_nul),
	    cmocka_unit_test(test_canonical_fixed_point),
	    cmocka_unit_test(test_canonical_random),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_floats),
	    cmocka_unit_test(test_floats_match_strtod),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_timestamps),
	    cmocka_unit_test(test_multiple_fields),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_datagram),
	    cmocka_unit_test(test_line_splitting),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

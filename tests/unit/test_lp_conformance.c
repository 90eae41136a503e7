/* test_lp_conformance.c - line protocol conformance table: each case is one line as InfluxDB
 * 1.x parses it (cases written from the behaviour its documentation and models tests
 * describe), with the series keys, types and values sluice must produce, or the reason
 * it must refuse the line. Every case goes through sl_lp_parse_datagram, the ingest path. */
/* cmocka needs these before it, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "lineproto.h"

#define NOW_NS 4242
#define MAX_WANT 6

/* An expected field: its canonical series key, type and value as text ("1"/"0" for
 * booleans, the exact bytes for strings). */
struct want {
	uint8_t type;
	const char *key;
	size_t key_len;
	const char *val;
	size_t val_len;
};

struct lp_case {
	const char *in;
	size_t len;
	enum sl_lp_err err; /* SL_LP_OK: accepted */
	int64_t ts;
	struct want f[MAX_WANT];
};

/* Literals carry their length: some cases hold NUL bytes. */
#define WANT(t, k, v)                                                                              \
	{                                                                                          \
		t, k, sizeof(k) - 1, v, sizeof(v) - 1                                              \
	}
#define F(k, v) WANT(SL_VAL_F64, k, v)
#define I(k, v) WANT(SL_VAL_I64, k, v)
#define U(k, v) WANT(SL_VAL_U64, k, v)
#define B(k, v) WANT(SL_VAL_BOOL, k, v)
#define S(k, v) WANT(SL_VAL_STR, k, v)
#define OK(in, ts, ...)                                                                            \
	{                                                                                          \
		in, sizeof(in) - 1, SL_LP_OK, ts, { __VA_ARGS__ }                                  \
	}
#define BAD(in, e)                                                                                 \
	{                                                                                          \
		in, sizeof(in) - 1, e, 0,                                                          \
		{                                                                                  \
			{                                                                          \
				0                                                                  \
			}                                                                          \
		}                                                                                  \
	}

/* clang-format off */
static const struct lp_case cases[] = {
    OK("cpu value=1", NOW_NS, F("cpu value", "1")),
    OK("cpu,host=serverA,region=us-west value=1.0 1000000000", 1000000000LL, F("cpu,host=serverA,region=us-west value", "1")),
    OK("cpu,region=us-west,host=serverA value=1i", NOW_NS, I("cpu,host=serverA,region=us-west value", "1")), /* tags sorted */
    OK("cpu,last=1,first=2 value=1i", NOW_NS, I("cpu,first=2,last=1 value", "1")),
    OK("cpu,b=1,B=2,_=3,a=4 v=1", NOW_NS, F("cpu,B=2,_=3,a=4,b=1 v", "1")), /* byte order */
    OK("cpu,ab=1,a=2 v=1", NOW_NS, F("cpu,a=2,ab=1 v", "1")), /* a prefix sorts first */
    OK("cpu    value=1.0 1257894000000000000", 1257894000000000000LL, F("cpu value", "1")),
    OK("cpu value=1.0     1257894000000000000", 1257894000000000000LL, F("cpu value", "1")),
    OK("cpu value=1.0 1257894000000000000   ", 1257894000000000000LL, F("cpu value", "1")),
    OK("   cpu value=1", NOW_NS, F("cpu value", "1")),
    OK("\tcpu value=1", NOW_NS, F("cpu value", "1")),
    OK("cpu \t value=1", NOW_NS, F("cpu value", "1")), /* blanks and tabs after the separator */
    OK("cpu value=1 \t 5", 5LL, F("cpu value", "1")),
    OK("cpu value=1 5\n", 5LL, F("cpu value", "1")),
    OK("cpu value=1 5\r\n", 5LL, F("cpu value", "1")), /* CRLF (sluice also takes it) */
    OK("m v=1,w=2i,x=true,y=\"s\",z=3u 9", 9LL, F("m v", "1"), I("m w", "2"), B("m x", "1"), S("m y", "s"), U("m z", "3")),
    OK("measurement=withEq,tag0=v0 value=1", NOW_NS, F("measurement=withEq,tag0=v0 value", "1")), /* '=' is plain in a measurement */
    OK("tag0=v0 value=1", NOW_NS, F("tag0=v0 value", "1")),
    OK("\"cpu\",host=serverA value=1", NOW_NS, F("\"cpu\",host=serverA value", "1")), /* quotes are plain in names */
    OK("cpu,\"host\"=\"serverA\" value=1", NOW_NS, F("cpu,\"host\"=\"serverA\" value", "1")),
    OK("baz,mytag=\"a x=1 1441103862125", 1441103862125LL, F("baz,mytag=\"a x", "1")),
    OK("t159,label=hey\\ \"ya a=1i,value=0i", NOW_NS, I("t159,label=hey\\ \"ya a", "1"), I("t159,label=hey\\ \"ya value", "0")),
    OK("m,t==x v=1", NOW_NS, F("m,t==x v", "1")), /* a tag value may start with '=' */
    OK("\000\000cpu value=1 \000", NOW_NS, F("cpu value", "1")), /* NUL is whitespace around sections */
    OK("foo\\,bar value=1i", NOW_NS, I("foo\\,bar value", "1")),
    OK("cpu\\,main,regions=east value=1.0", NOW_NS, F("cpu\\,main,regions=east value", "1")),
    OK("cpu\\ load,region=east value=1.0", NOW_NS, F("cpu\\ load,region=east value", "1")),
    OK("cpu\\=load,region=east value=1.0", NOW_NS, F("cpu\\=load,region=east value", "1")), /* '\=' in a measurement is two bytes */
    OK("cpu=load,region=east value=1.0", NOW_NS, F("cpu=load,region=east value", "1")),
    OK("a\\b,t=x v=1", NOW_NS, F("a\\b,t=x v", "1")),
    OK("a\\\\b,t=x v=1", NOW_NS, F("a\\\\b,t=x v", "1")), /* not the series of a\b */
    OK("m\\\\ q,k=v f=1", NOW_NS, F("m\\\\ q,k=v f", "1")), /* backslash, then an escaped space */
    OK("cpu,region\\,zone=east value=1.0", NOW_NS, F("cpu,region\\,zone=east value", "1")),
    OK("cpu,region\\ zone=east value=1.0", NOW_NS, F("cpu,region\\ zone=east value", "1")),
    OK("cpu,reg\\\\=ion=east value=1.0", NOW_NS, F("cpu,reg\\\\=ion=east value", "1")), /* tag key reg\=ion */
    OK("cpu,\\ =east value=1.0", NOW_NS, F("cpu,\\ =east value", "1")),
    OK("cpu,regions=east\\,west value=1.0", NOW_NS, F("cpu,regions=east\\,west value", "1")),
    OK("cpu,regions=\\\\ east value=1.0", NOW_NS, F("cpu,regions=\\\\ east value", "1")),
    OK("cpu,regions=eas\\\\ t value=1.0", NOW_NS, F("cpu,regions=eas\\\\ t value", "1")),
    OK("cpu,regions=east\\\\  value=1.0", NOW_NS, F("cpu,regions=east\\\\  value", "1")), /* value east\ + space */
    OK("cpu,regions=east\\ west value=1.0", NOW_NS, F("cpu,regions=east\\ west value", "1")),
    OK("cpu,regions=eas\\t value=1.0", NOW_NS, F("cpu,regions=eas\\t value", "1")), /* \t is two bytes */
    OK("cpu,regions=\\\\,\\,\\=east value=1.0", NOW_NS, F("cpu,regions=\\\\,\\,\\=east value", "1")),
    OK("cpu=load,equals\\=foo=tag\\=value value=1i", NOW_NS, I("cpu=load,equals\\=foo=tag\\=value value", "1")),
    OK("m,t=a\\b v=1", NOW_NS, F("m,t=a\\b v", "1")),
    OK("m,t=a\\\\b v=1", NOW_NS, F("m,t=a\\\\b v", "1")), /* not the series of a\b */
    OK("cpu,tag0=1\\\"\\\",t=k value=1", NOW_NS, F("cpu,t=k,tag0=1\\\"\\\" value", "1")),
    OK("m,a\\b=1,a\\\\b=2 f=1", NOW_NS, F("m,a\\\\b=2,a\\b=1 f", "1")), /* two tag keys */
    OK("m,a\\ b=2,a!=1 v=1", NOW_NS, F("m,a!=1,a\\ b=2 v", "1")), /* sorted as written */
    OK("cpu,regions=east value\\,ms=1.0", NOW_NS, F("cpu,regions=east value\\,ms", "1")),
    OK("cpu,regions=east value\\ ms=1.0", NOW_NS, F("cpu,regions=east value\\ ms", "1")),
    OK("cpu \\a=1i", NOW_NS, I("cpu \\a", "1")),
    OK("cpu a\\ =123i", NOW_NS, I("cpu a\\ ", "123")),
    OK("m f\\==1", NOW_NS, F("m f\\=", "1")),
    OK("m f\\\"=1", NOW_NS, F("m f\\\"", "1")),
    OK("m f\"=1", NOW_NS, F("m f\\\"", "1")), /* same field as f\" */
    OK("m \"f\"=1", NOW_NS, F("m \\\"f\\\"", "1")),
    OK("m f\\\\x=1", NOW_NS, F("m f\\\\x", "1")),
    OK("m f\\\\\"=1", NOW_NS, F("m f\\\\\"", "1")), /* key f\" */
    OK("cpu \"a=1", NOW_NS, F("cpu \\\"a", "1")), /* a quote in a field key is a byte */
    OK("m,t=a\\\nb f=1", NOW_NS, F("m,t=a\\\nb f", "1")), /* backslash-newline continues the line */
    OK("m f=1,f=2", NOW_NS, F("m f", "2")),
    OK("m f=1i,g=2,f=\"x\"", NOW_NS, S("m f", "x"), F("m g", "2")),
    OK("m f=1,f\\,=2,f=3", NOW_NS, F("m f", "3"), F("m f\\,", "2")),
    OK("m f\"=1,f\\\"=2i", NOW_NS, I("m f\\\"", "2")),
    OK("m a=t,a=false", NOW_NS, B("m a", "0")),
    OK("cpu,host=serverA,region=us-east value=1.0,str=\"foo\",str2=\"bar\" 1000000000", 1000000000LL, F("cpu,host=serverA,region=us-east value", "1"), S("cpu,host=serverA,region=us-east str", "foo"), S("cpu,host=serverA,region=us-east str2", "bar")),
    OK("cpu str=\"foo \\\" bar\" 1", 1LL, S("cpu str", "foo \" bar")),
    OK("cpu value=1.0,str=\"foo\nbar\" 1", 1LL, F("cpu value", "1"), S("cpu str", "foo\nbar")), /* newline in a string */
    OK("log msg=\"x\nfake,host=evil value=666 5\n\" 7", 7LL, S("log msg", "x\nfake,host=evil value=666 5\n")), /* no forged point */
    OK("m,t=a\\\\ b\\\\,c f=\"x\nevil,host=x v=1 5\n\" 7", 7LL, S("m,t=a\\\\ b\\\\,c f", "x\nevil,host=x v=1 5\n")), /* nor through escaped tags */
    OK("cpu str=\"foo\\,bar\"", NOW_NS, S("cpu str", "foo\\,bar")),
    OK("cpu str=\"foo,bar\"", NOW_NS, S("cpu str", "foo,bar")),
    OK("cpu str=\"foo\\\\\",str2=\"bar\" 1", 1LL, S("cpu str", "foo\\"), S("cpu str2", "bar")),
    OK("cpu value=\"{Hello\\\"{,}\\\" World}\" 1", 1LL, S("cpu value", "{Hello\"{,}\" World}")),
    OK("cpu value=\"{Hello\\\"{\\,}\\\" World}\" 1", 1LL, S("cpu value", "{Hello\"{\\,}\" World}")),
    OK("cpu str=\"foo=bar\",value=1.0", NOW_NS, S("cpu str", "foo=bar"), F("cpu value", "1")),
    OK("cpu value=\"test\\\\\\\"\" 1", 1LL, S("cpu value", "test\\\"")),
    OK("cpu value=\"test\\\\\" 1", 1LL, S("cpu value", "test\\")),
    OK("cpu value=\"test\\\"\" 1", 1LL, S("cpu value", "test\"")),
    OK("cpu value=\"w\303\250\"", NOW_NS, S("cpu value", "w\303\250")),
    OK("m s=\"\"", NOW_NS, S("m s", "")),
    OK("m s=\"a\\nb\"", NOW_NS, S("m s", "a\\nb")), /* \n is two bytes */
    OK("cpu value=-1i", NOW_NS, I("cpu value", "-1")),
    OK("cpu value=9223372036854775807i", NOW_NS, I("cpu value", "9223372036854775807")),
    OK("cpu value=-9223372036854775808i", NOW_NS, I("cpu value", "-9223372036854775808")),
    OK("cpu value=0009223372036854775807i", NOW_NS, I("cpu value", "9223372036854775807")),
    OK("cpu value=18446744073709551615u", NOW_NS, U("cpu value", "18446744073709551615")),
    OK("cpu value=00018446744073709551615u", NOW_NS, U("cpu value", "18446744073709551615")),
    OK("cpu value=0u", NOW_NS, U("cpu value", "0")),
    OK("cpu value=-1.0", NOW_NS, F("cpu value", "-1")),
    OK("cpu value=.1", NOW_NS, F("cpu value", "0.1")),
    OK("cpu value=1.0e4", NOW_NS, F("cpu value", "1e4")),
    OK("cpu value=1E4", NOW_NS, F("cpu value", "1e4")),
    OK("cpu value=-1.0e-4", NOW_NS, F("cpu value", "-1e-4")),
    OK("cpu value=6.632243e+06 1000000000", 1000000000LL, F("cpu value", "6632243")),
    OK("cpu value=1.", NOW_NS, F("cpu value", "1")),
    OK("cpu value=-0.64", NOW_NS, F("cpu value", "-0.64")),
    OK("cpu value=179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.0", NOW_NS, F("cpu value", "1.7976931348623157e308")),
    OK("cpu value=-179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.0", NOW_NS, F("cpu value", "-1.7976931348623157e308")),
    OK("cpu value=6632243i 1000000000", 1000000000LL, I("cpu value", "6632243")),
    OK("cpu true=true,t=t,T=T,TRUE=TRUE,True=True", NOW_NS, B("cpu true", "1"), B("cpu t", "1"), B("cpu T", "1"), B("cpu TRUE", "1"), B("cpu True", "1")),
    OK("cpu false=false,f=f,F=F,FALSE=FALSE,False=False", NOW_NS, B("cpu false", "0"), B("cpu f", "0"), B("cpu F", "0"), B("cpu FALSE", "0"), B("cpu False", "0")),
    OK("cpu value=1 -1", (-1LL), F("cpu value", "1")),
    OK("cpu value=1 9223372036854775806", 9223372036854775806LL, F("cpu value", "1")),
    OK("cpu value=1 -9223372036854775806", (INT64_MIN + 2), F("cpu value", "1")),
    BAD("cpu,host=serverA,region=us-west", SL_LP_ERR_NO_FIELDS),
    BAD("cpu", SL_LP_ERR_NO_FIELDS),
    BAD("cpu,host==", SL_LP_ERR_NO_FIELDS),
    BAD("=", SL_LP_ERR_NO_FIELDS),
    BAD("m\\ f=1", SL_LP_ERR_NO_FIELDS), /* the separator is escaped */
    BAD("cpu,host=serverA value=\"test", SL_LP_ERR_BAD_STRING),
    BAD("cpu,host=serverA value=\"test\"\"", SL_LP_ERR_BAD_STRING),
    BAD("m f=\"blah\"=123,r 1531703600000000000", SL_LP_ERR_BAD_STRING),
    BAD("cpu, value=1", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,,,", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=serverA,=us-east value=1i", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=serverAa\\,,=us-east value=1i", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu, =serverA value=1i", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host value=1i", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=serverA,region= value=1i", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=serverA,region=,zone=us-west value=1i", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=f=o,", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=f\\==o,", SL_LP_ERR_SYNTAX_TAG),
    BAD("m,t=east\\\\ value=1", SL_LP_ERR_SYNTAX_TAG), /* the space is escaped: '=' lands in the value */
    BAD("m,t=a\\\\,u=b f=1", SL_LP_ERR_SYNTAX_TAG),
    BAD("cpu,host=serverA,region=us-west =", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu,host=serverA,region=us-west =123i", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu value=123i,=456i", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu value=", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu value= 1000000000i", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu value=,value2=1i", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu,host=server01,region=us-west 1434055562000000000i", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu value=1i,b", SL_LP_ERR_SYNTAX_FIELD),
    BAD("cpu \"\\, '= \"\\ v=1.0", SL_LP_ERR_SYNTAX_FIELD),
    BAD("m f\\\\=1", SL_LP_ERR_SYNTAX_FIELD), /* a field key cannot end in a backslash */
    BAD("m f\\\\ g=1", SL_LP_ERR_SYNTAX_FIELD),
    BAD("m f=1,", SL_LP_ERR_SYNTAX_FIELD),
    BAD("m a=1,\tb=2", SL_LP_ERR_SYNTAX_FIELD), /* a field key cannot start with a tab */
    BAD("cpu v=-", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=-i", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=-.", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=.", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=1.0i", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=1ii", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=1a", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=-e-e-e", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=42+3", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=--1u", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=.1a", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=0.-1", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=1.1.1", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=a", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=9ie10", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=9e10i", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=NaN 1000000000", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=nAn", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=inf", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu value=+1", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu,tag0=v0 value=\000", SL_LP_ERR_BAD_NUMBER),
    BAD("cpu v=-123u", SL_LP_ERR_OUT_OF_RANGE),
    BAD("cpu value=9223372036854775808i", SL_LP_ERR_OUT_OF_RANGE),
    BAD("cpu value=-9223372036854775809i", SL_LP_ERR_OUT_OF_RANGE),
    BAD("cpu value=18446744073709551616u", SL_LP_ERR_OUT_OF_RANGE),
    BAD("cpu value=1179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368.0", SL_LP_ERR_OUT_OF_RANGE),
    BAD("cpu v=tru", SL_LP_ERR_BAD_BOOL),
    BAD("cpu v=tRUE", SL_LP_ERR_BAD_BOOL),
    BAD("cpu value=1 -", SL_LP_ERR_BAD_TIMESTAMP),
    BAD("cpu value=1 -/", SL_LP_ERR_BAD_TIMESTAMP),
    BAD("cpu value=1 -1?", SL_LP_ERR_BAD_TIMESTAMP),
    BAD("cpu value=1 1-", SL_LP_ERR_BAD_TIMESTAMP),
    BAD("cpu value=1 9223372036854775807 12", SL_LP_ERR_BAD_TIMESTAMP),
    BAD("a v=1 0\\", SL_LP_ERR_BAD_TIMESTAMP),
    BAD("cpu value=1 9223372036854775808", SL_LP_ERR_TS_OUT_OF_RANGE),
    BAD("cpu value=1 -92233720368547758078", SL_LP_ERR_TS_OUT_OF_RANGE),
    BAD("cpu value=1 9223372036854775807", SL_LP_ERR_TS_OUT_OF_RANGE), /* InfluxDB's reserved instants */
    BAD("cpu value=1 -9223372036854775807", SL_LP_ERR_TS_OUT_OF_RANGE),
    BAD("cpu value=1 -9223372036854775808", SL_LP_ERR_TS_OUT_OF_RANGE),
    BAD("cpu,host=serverA,host=serverB value=1i 1000000000", SL_LP_ERR_DUPLICATE_TAG),
    BAD("cpu,b=2,b=1,c=3 value=1i 1000000000", SL_LP_ERR_DUPLICATE_TAG),
    BAD("cpu,b=2,c=3,b=1 value=1i 1000000000", SL_LP_ERR_DUPLICATE_TAG),
    BAD("\000,tag0=v0,tag1=v0 value=1", SL_LP_ERR_SYNTAX_MEASUREMENT),
    BAD(",t=1 f=1", SL_LP_ERR_SYNTAX_MEASUREMENT),
    BAD("cpu,tag\0001=v0 value=1", SL_LP_ERR_KEY_NUL), /* sluice refuses NUL in names */
    BAD("cpu,tag0=\000,tag1=v0 value=1", SL_LP_ERR_KEY_NUL),
    BAD("cpu,tag0=v0 val\000ue=1", SL_LP_ERR_KEY_NUL),
    BAD("cp\000u value=1", SL_LP_ERR_KEY_NUL),
    BAD("m,t=\377 f=1", SL_LP_ERR_INVALID_UTF8),
    BAD("m s=\"\300\257\"", SL_LP_ERR_INVALID_UTF8),
};
/* clang-format on */

/* What the callback saw of the one good line: keys, strings copied out of the scratch. */
struct seen {
	int lines;
	int64_t ts;
	uint32_t n;
	struct sl_lp_field f[SL_LP_MAX_FIELDS];
	char keys[SL_LP_MAX_FIELDS][SL_KEY_MAX];
	char strs[MAX_WANT][64];
};

static int on_line(void *arg, const struct sl_lp_line *l)
{
	struct seen *s = arg;
	s->lines++;
	s->ts = l->ts;
	s->n = l->n_fields;
	for (uint32_t i = 0; i < l->n_fields; i++) {
		s->f[i] = l->fields[i];
		memcpy(s->keys[i], l->fields[i].key, l->fields[i].key_len);
		if (i < MAX_WANT && l->fields[i].type == SL_VAL_STR &&
		    l->fields[i].str_len <= sizeof s->strs[i])
			memcpy(s->strs[i], l->fields[i].str, l->fields[i].str_len);
	}
	return 0;
}

static uint64_t want_bits(const struct want *w)
{
	switch (w->type) {
	case SL_VAL_F64: {
		double d = strtod(w->val, NULL);
		uint64_t v;
		memcpy(&v, &d, sizeof v);
		return v;
	}
	case SL_VAL_I64:
		return (uint64_t)strtoll(w->val, NULL, 10);
	case SL_VAL_U64:
		return strtoull(w->val, NULL, 10);
	case SL_VAL_BOOL:
		return w->val[0] == '1';
	default:
		return w->val_len;
	}
}

static char scratch[SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX)];
static struct sl_lp_line work;
static struct seen seen;

/* One case; returns a description of the first mismatch, or NULL. */
static const char *check_case(const struct lp_case *c, char *why, size_t cap)
{
	const struct sl_lp_opts opts = {.precision = SL_LP_PREC_NS, .now_ns = NOW_NS};
	struct sl_lp_counts counts = {0};
	memset(&seen, 0, sizeof seen);
	sl_lp_line_init(&work, scratch, sizeof scratch);
	if (sl_lp_parse_datagram(c->in, c->len, &opts, &work, on_line, &seen, &counts) != 0)
		return "datagram parse failed";
	if (counts.lines_ok + counts.lines_bad != 1) {
		snprintf(why, cap, "%" PRIu64 " good + %" PRIu64 " bad lines, want one line",
			 counts.lines_ok, counts.lines_bad);
		return why;
	}
	if (c->err != SL_LP_OK) {
		if (counts.bad[c->err] == 1)
			return NULL;
		for (int e = 1; e < SL_LP_ERR_COUNT; e++) {
			if (counts.bad[e])
				snprintf(why, cap, "refused as %s, want %s", sl_lp_err_name(e),
					 sl_lp_err_name(c->err));
		}
		if (counts.lines_ok)
			snprintf(why, cap, "accepted, want %s", sl_lp_err_name(c->err));
		return why;
	}
	if (counts.lines_ok != 1) {
		for (int e = 1; e < SL_LP_ERR_COUNT; e++) {
			if (counts.bad[e])
				snprintf(why, cap, "refused as %s", sl_lp_err_name(e));
		}
		return why;
	}
	uint32_t nwant = 0;
	while (nwant < MAX_WANT && c->f[nwant].key != NULL)
		nwant++;
	if (seen.n != nwant) {
		snprintf(why, cap, "%u fields, want %u", seen.n, nwant);
		return why;
	}
	if (seen.ts != c->ts) {
		snprintf(why, cap, "ts %" PRId64 ", want %" PRId64, seen.ts, c->ts);
		return why;
	}
	for (uint32_t i = 0; i < nwant; i++) {
		const struct want *w = &c->f[i];
		const struct sl_lp_field *f = &seen.f[i];
		if (f->key_len != w->key_len || memcmp(seen.keys[i], w->key, w->key_len) != 0) {
			snprintf(why, cap, "field %u key '%.*s', want '%s'", i, (int)f->key_len,
				 seen.keys[i], w->key);
			return why;
		}
		if (f->series_id != sl_series_id(w->key, w->key_len))
			return "series id is not the hash of the key";
		if (f->type != w->type) {
			snprintf(why, cap, "field %u type %u, want %u", i, f->type, w->type);
			return why;
		}
		if (f->value != want_bits(w)) {
			snprintf(why, cap, "field %u value %#" PRIx64 ", want %s", i, f->value,
				 w->val);
			return why;
		}
		if (w->type == SL_VAL_STR && memcmp(seen.strs[i], w->val, w->val_len) != 0) {
			snprintf(why, cap, "field %u string '%.*s', want '%s'", i, (int)f->str_len,
				 seen.strs[i], w->val);
			return why;
		}
	}
	return NULL;
}

static void test_conformance_table(void **state)
{
	(void)state;
	size_t n = sizeof cases / sizeof cases[0], failed = 0, good = 0;
	for (size_t i = 0; i < n; i++) {
		char why[512];
		const char *msg = check_case(&cases[i], why, sizeof why);
		good += cases[i].err == SL_LP_OK;
		if (msg != NULL) {
			print_error("case %zu '%.*s': %s\n", i, (int)cases[i].len, cases[i].in,
				    msg);
			failed++;
		}
	}
	assert_true(n >= 100 && good >= 40 && n - good >= 40);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conformance_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* lineproto.h - InfluxDB line protocol parser for the UDP front door (and a formatter for
 * tools). Pure and allocation-free: it reads (buf, len), writes canonical series keys and
 * string values into a caller scratch buffer, and never touches an mbuf, a clock or the EAL. */
#ifndef SL_LINEPROTO_H
#define SL_LINEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* String values: not (yet) a store type, so it lives here next to batch.h's numbering. */

#define SL_LP_MAX_FIELDS 64    /* fields of one line (each its own series) */
#define SL_LP_MAX_TAGS 64      /* more cannot fit in SL_KEY_MAX anyway */
#define SL_LP_STR_MAX 65536u   /* bytes of one string value once unescaped, as InfluxDB */
#define SL_LP_LINE_MAX 131072u /* default longest line (without its line ending) */
#define SL_LP_NUMBER_MAX 400u  /* longest numeric token accepted (digits, sign, exponent) */
/* Timestamps a line may carry, in ns: InfluxDB 1.x keeps the two lowest and the highest
 * int64 for itself and refuses them, and so does sluice (ts_out_of_range). */
#define SL_LP_TS_MIN (INT64_MIN + 2)
#define SL_LP_TS_MAX (INT64_MAX - 1)
/* Scratch that always suffices for a line of max_line bytes: every key at its maximum plus
 * every string (unescaping never grows a string). */
#define SL_LP_SCRATCH_BYTES(max_line) ((size_t)SL_LP_MAX_FIELDS * SL_KEY_MAX + (size_t)(max_line))

/* Why a line was refused. 0 is "no error"; names by sl_lp_err_name() for counters. */
enum sl_lp_err {
	SL_LP_OK = 0,
	SL_LP_ERR_SYNTAX_MEASUREMENT, /* empty measurement */
	SL_LP_ERR_SYNTAX_TAG,	      /* empty key/value, missing '=', stray '=' */
	SL_LP_ERR_SYNTAX_FIELD,	      /* empty key/value, missing '=', trailing ',' */
	SL_LP_ERR_BAD_NUMBER,	      /* not a number (inf, nan, 0x1, 1.5i, +1, ...) */
	SL_LP_ERR_OUT_OF_RANGE,	      /* i64/u64 overflow, negative unsigned, float overflow */
	SL_LP_ERR_BAD_BOOL,	      /* starts like a boolean but is not one of the spellings */
	SL_LP_ERR_BAD_STRING,	      /* unterminated, or junk after the closing quote */
	SL_LP_ERR_STRING_TOO_LONG,    /* more than SL_LP_STR_MAX bytes */
	SL_LP_ERR_BAD_TIMESTAMP,      /* not an integer, or trailing junk after it */
	SL_LP_ERR_TS_OUT_OF_RANGE,    /* outside [SL_LP_TS_MIN, SL_LP_TS_MAX] ns once scaled */
	SL_LP_ERR_TOO_MANY_FIELDS,    /* more than SL_LP_MAX_FIELDS */
	SL_LP_ERR_KEY_TOO_LONG,	      /* a canonical series key over SL_KEY_MAX bytes */
	SL_LP_ERR_LINE_TOO_LONG,      /* over opts->max_line_bytes */
	SL_LP_ERR_INVALID_UTF8,	      /* anywhere in the line */
	SL_LP_ERR_DUPLICATE_TAG,      /* same tag key twice (after unescaping) */
	SL_LP_ERR_KEY_NUL,	      /* a NUL byte in a measurement, tag or field key */
	SL_LP_ERR_NO_FIELDS,	      /* measurement and tags but no field set */
	SL_LP_ERR_SCRATCH,	      /* the caller's scratch buffer is too small */
	SL_LP_ERR_COUNT
};

/* Stable lower-case name ("syntax_tag", "invalid_utf8"...); "unknown" out of range. */
const char *sl_lp_err_name(int err);

enum sl_lp_precision {
	SL_LP_PREC_NS = 0,
	SL_LP_PREC_US,
	SL_LP_PREC_MS,
	SL_LP_PREC_S,
	SL_LP_PREC_M, /* minutes and hours: InfluxDB 1.x's HTTP /write takes them */
	SL_LP_PREC_H,
};

/* "ns"/"n", "us"/"u", "ms", "s", "m", "h" -> *out; -EINVAL otherwise. */
int sl_lp_precision_parse(const char *s, enum sl_lp_precision *out);

struct sl_lp_opts {
	enum sl_lp_precision precision; /* unit of the timestamps in the text */
	int64_t now_ns;			/* timestamp of lines that carry none */
	size_t max_line_bytes;		/* 0 = SL_LP_LINE_MAX */
};

/* One field = one point. key is the canonical series key (see below) in the scratch buffer;
 * value holds the raw 64 bits like struct sl_point (double bits, int64, uint64, 0/1); for
 * SL_VAL_STR, str/str_len point at the unescaped string in the scratch buffer and value is
 * str_len. */
struct sl_lp_field {
	uint64_t series_id; /* sl_series_id(key, key_len): the store's hash */
	uint64_t value;
	const char *key;
	const char *str;
	uint32_t str_len;
	uint16_t key_len;
	uint8_t type; /* SL_VAL_F64/I64/U64/BOOL or SL_VAL_STR */
};

/* Result of one line. Set scratch/scratch_cap (sl_lp_line_init) before parsing; the parser
 * fills the rest. On error, err says why and the other fields are unspecified.
 *
 * Canonical series key of a field: "<series> <field key>". <series> is InfluxDB 1.x's
 * series key: the measurement and the "tag=value" pairs exactly as written (escapes and
 * all), the tags sorted by their key bytes (memcmp order, like Go's bytes.Compare). Those
 * bytes name a series uniquely: a ',' or ' ' (or '=' in a tag) can only be written
 * escaped, and a backslash before anything else is a byte of the name (a\b and a\\b
 * are two series). <field key> is the field's name re-escaped as InfluxDB writes it: a
 * backslash before each ',', '"', ' ' and '=' (f" and f\" are one field). A field
 * key repeated in one line is one field, with the last value (InfluxDB's rule). */
struct sl_lp_line {
	char *scratch;
	size_t scratch_cap;
	int64_t ts; /* ns */
	uint32_t n_fields;
	enum sl_lp_err err;
	struct sl_lp_field fields[SL_LP_MAX_FIELDS];
};

static inline void sl_lp_line_init(struct sl_lp_line *l, char *scratch, size_t scratch_cap)
{
	l->scratch = scratch;
	l->scratch_cap = scratch_cap;
	l->n_fields = 0;
	l->err = SL_LP_OK;
}

#define SL_LP_SKIP 1 /* sl_lp_parse_line: a blank or comment line, nothing to ingest */

/* Parses one line (a trailing "\n" or "\r\n" is allowed; a '\n' elsewhere is a byte of the
 * line). Returns 0 with out filled, SL_LP_SKIP for a blank or '#' comment line
 * (n_fields = 0), or -EBADMSG with out->err set. -EINVAL for NULL arguments. Leading
 * blanks, tabs and NULs and trailing blanks, tabs and '\r' are ignored; a space ends the
 * measurement-and-tags and the field sections, and blanks, tabs and NULs after it are
 * skipped (InfluxDB's whitespace). */
int sl_lp_parse_line(const char *line, size_t len, const struct sl_lp_opts *opts,
		     struct sl_lp_line *out);

/* Counters of sl_lp_parse_datagram; accumulated (never reset by the parser). */
struct sl_lp_counts {
	uint64_t lines_ok;
	uint64_t lines_skipped; /* blank and comment lines */
	uint64_t lines_bad;
	uint64_t points; /* fields of good lines */
	uint64_t bad[SL_LP_ERR_COUNT];
};

/* Called for each good line; a negative return stops the datagram and is passed back. */
typedef int (*sl_lp_line_fn)(void *arg, const struct sl_lp_line *line);

/* Length of the first line of buf, without its '\n' (len when there is none). A '\n' ends
 * the line unless it is inside a quoted string field value, or right after a backslash in
 * a measurement, tag or field key: the parser's own grammar decides, so no text inside a
 * string can ever start a line of its own. A comment line ends at its first '\n'. */
size_t sl_lp_line_end(const char *buf, size_t len);

/* Splits buf into lines (sl_lp_line_end; a '\r' before a line's '\n' is dropped), parses
 * every line into *work (its scratch set by the caller, reused per line) and calls fn for
 * the good ones. A bad line is counted by reason and skipped; the rest of the datagram is
 * still parsed. Returns 0, the callback's negative value, or -EINVAL for NULL arguments. */
int sl_lp_parse_datagram(const char *buf, size_t len, const struct sl_lp_opts *opts,
			 struct sl_lp_line *work, sl_lp_line_fn fn, void *arg,
			 struct sl_lp_counts *counts);
/* The same from byte *off on, resumable: when fn stops the datagram, *off is left at the
 * start of that line and the line is not counted (a later call from *off parses it again,
 * with the same opts, and counts it once it is taken); else *off ends at len. A caller
 * that took some of a line's fields before stopping remembers how many itself. */
int sl_lp_parse_datagram_from(const char *buf, size_t len, size_t *off,
			      const struct sl_lp_opts *opts, struct sl_lp_line *work,
			      sl_lp_line_fn fn, void *arg, struct sl_lp_counts *counts);

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool sl_lp_utf8_valid(const unsigned char *s, size_t n);

/* Field i of a good line as a point, strings included (key and string borrowed from the
 * line's scratch). */
static inline struct sl_point sl_lp_point_of(const struct sl_lp_line *line, uint32_t i)
{
	const struct sl_lp_field *f = &line->fields[i];
	bool str = f->type == SL_VAL_STR;
	return (struct sl_point){.series_id = f->series_id,
				 .ts = line->ts,
				 .type = f->type,
				 .value = str ? 0 : f->value,
				 .key_len = f->key_len,
				 .key = f->key,
				 .str = str ? f->str : NULL,
				 .str_len = str ? f->str_len : 0};
}

/* A field as a store point (key borrowed from the line's scratch). -ENOTSUP for strings,
 * which the store does not hold. */
int sl_lp_field_point(const struct sl_lp_line *line, uint32_t i, struct sl_point *out);

/* Writes one point as a line "<key>=<value> <ts>\n" (the key must be a canonical series key
 * as above, e.g. from the parser). Floats use %.17g so they round-trip exactly; str/str_len
 * are used for SL_VAL_STR. Returns the length written (a NUL follows when room allows), or
 * -ENOSPC, or -EINVAL for a key without a field part, a non-finite float or a bad type. */
int sl_lp_format(char *buf, size_t cap, const char *key, size_t key_len, uint8_t type,
		 uint64_t value, const char *str, size_t str_len, int64_t ts_ns);

/* The canonical form (as above) of a series key a person typed, "<measurement>[,<tag>=
 * <value>...] <field key>" with tags in any order, read as the parser reads a line.
 * Writes it NUL-terminated to out; returns its length, -EBADMSG when key is not of that
 * form, -ENOSPC, -EINVAL or -ENOMEM. Allocates: for ctl requests, not for a hot path. */
int sl_lp_canonical_key(const char *key, size_t len, char *out, size_t cap);

#endif

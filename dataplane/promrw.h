/* promrw.h - decoder of Prometheus remote write 1.0 requests (the body of a
 * POST /api/v1/write): a snappy block (not the framed format) holding a protobuf
 * prometheus.WriteRequest (dataplane/prom_remote.proto). Pure: bytes in, one callback per
 * sample out; no global state, no clock, no I/O, so any number of threads may decode at once.
 * docs/prometheus.md describes the mapping for users.
 *
 * Series key. A label set becomes the canonical series key the line protocol parser gives the
 * same series (lineproto.h, above struct sl_lp_line), with the field key "value":
 *
 *     <measurement>[,<name>=<value>...] value
 *
 * The measurement is the value of the label __name__. Every other label whose value is not
 * empty is a tag (Prometheus reads an empty value as "no such label"); tags are sorted by
 * their names as written (escaped), in memcmp order, as the line protocol parser sorts them,
 * which is the label names' own byte order unless a name holds ',', '=' or ' '. Escaping is
 * InfluxDB's: a backslash before ',' and ' ' in the measurement, before ',', '=' and ' ' in
 * tag names and values; nothing else is escaped (a backslash is a plain byte). Example:
 *     http_requests_total{method="post",code="200"}
 *         -> "http_requests_total,code=200,method=post value"
 *
 * Refused series (counted in struct sl_prw_result, never called back), in this order of
 * precedence:
 *   bad_labels     a label name or value with a NUL byte or invalid UTF-8, an empty label
 *                  name, or a name or value that ends with a backslash (the line protocol
 *                  cannot write one: its backslash would escape the delimiter after it, so
 *                  two label sets could share a key), or a measurement that the line
 *                  protocol would not read as one: starting with '#' (a comment line),
 *                  a tab or a '\r' (skipped as whitespace);
 *   dup_labels     the same label name twice (empty values included);
 *   no_name        no __name__ label, or an empty one;
 *   too_long_keys  a key over SL_KEY_MAX bytes (counts the series' samples, not the series).
 * Every sample of a refused series is also counted in samples_refused.
 *
 * Samples. The timestamp is scaled from ms to ns; a sample whose ns timestamp does not fit an
 * int64 is refused alone (bad_ts). The value is handed over as the IEEE 754 bits the sender
 * wrote, never through a floating-point register: Prometheus' staleness marker
 * (SL_PRW_STALE_NAN, a signalling NaN), other NaNs and the infinities are delivered as they
 * are, bit for bit. The store takes any f64 bits (sl_batch_point_check looks at no value of
 * type SL_VAL_F64), so a stale marker is stored as a sample like any other.
 *
 * Memory: the body is uncompressed into one buffer (at most max_uncompressed bytes), which
 * protobuf-c then unpacks whole before the first callback (a malformed request delivers
 * nothing). The unpacked message takes about 2 to 6 times the uncompressed size for real
 * requests, and up to about 32 times for a crafted one (a 2-byte empty Label is a 64-byte
 * struct and pointer): a caller sizes max_uncompressed and its number of concurrent
 * decodes with that in mind. */
#ifndef SL_PROMRW_H
#define SL_PROMRW_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* Prometheus' staleness marker: the value of a sample written when a series disappears. */
#define SL_PRW_STALE_NAN 0x7ff0000000000002ull

/* Return codes of sl_prw_decode besides 0 and a callback's own non-zero value. */
#define SL_PRW_E_INVAL (-EINVAL)       /* NULL body (with len > 0) or NULL cb */
#define SL_PRW_E_SNAPPY (-EILSEQ)      /* not a valid snappy block */
#define SL_PRW_E_TOO_LARGE (-EMSGSIZE) /* uncompressed length over max_uncompressed */
#define SL_PRW_E_PROTOBUF (-EBADMSG)   /* not a valid WriteRequest (truncated, bad wire type..) */
#define SL_PRW_E_NOMEM (-ENOMEM)       /* an allocation failed (a server error, not the client's) */

/* One sample of an accepted series. key is borrowed: it is valid during the callback only
 * (copy it to keep it); it is NUL-terminated, key_len not counting the NUL. */
struct sl_prw_sample {
	uint64_t series_id; /* sl_series_id(key, key_len) */
	int64_t ts;	    /* ns since the Unix epoch (the sender's ms * 1000000) */
	uint64_t value;	    /* IEEE 754 bits of the f64 value, as sent */
	const char *key;    /* canonical series key, see above */
	uint16_t key_len;   /* 1..SL_KEY_MAX */
};

/* Called for each sample of each accepted series, in the request's order. Returns 0 to go on;
 * any other value stops the decode, and sl_prw_decode returns that value. */
typedef int (*sl_prw_sample_cb)(void *arg, const struct sl_prw_sample *s);

/* What one sl_prw_decode call saw. Zeroed by sl_prw_decode first; when a callback stops the
 * decode, the counts are those up to that point. */
struct sl_prw_result {
	uint64_t series;	  /* TimeSeries looked at */
	uint64_t series_ok;	  /* series whose key was accepted */
	uint64_t samples;	  /* samples delivered (callbacks that returned 0) */
	uint64_t samples_refused; /* samples of refused series, plus bad_ts */
	uint64_t bad_labels;	  /* series refused (see above) */
	uint64_t dup_labels;	  /* series refused */
	uint64_t no_name;	  /* series refused */
	uint64_t too_long_keys;	  /* samples of series refused for a key over SL_KEY_MAX */
	uint64_t bad_ts;	  /* samples refused: ms * 1000000 overflows an int64 */
	int err;		  /* sl_prw_decode's return value */
};

/* Decodes one remote write body (len bytes; body may be NULL when len is 0) and calls cb for
 * every sample of every accepted series. Returns 0 when the request was read to its end, even
 * if series or samples were refused (res says which); an SL_PRW_E_* code when the request as
 * a whole is refused (always before the first callback); or the callback's non-zero value.
 * res may be NULL. */
int sl_prw_decode(const uint8_t *body, size_t len, size_t max_uncompressed, sl_prw_sample_cb cb,
		  void *arg, struct sl_prw_result *res);

/* Text of an SL_PRW_E_* code ("bad snappy data", "request too large", "bad protobuf"...),
 * "ok" for 0, "unknown error" for anything else. */
const char *sl_prw_strerror(int err);

/* A delivered sample as a store point (key borrowed, as in the sample). */
static inline void sl_prw_sample_point(const struct sl_prw_sample *s, struct sl_point *p)
{
	p->series_id = s->series_id;
	p->ts = s->ts;
	p->type = SL_VAL_F64;
	p->value = s->value;
	p->key_len = s->key_len;
	p->key = s->key;
	p->str = NULL;
	p->str_len = 0;
}

#endif

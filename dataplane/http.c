/* http.c - the HTTP APIs (http.h) on libmicrohttpd, one thread per connection: a write
 * waits for its points to be stored, so a connection's thread blocks in the handler while
 * others go on. docs/http.md says what each endpoint answers. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "http.h"
#include "lineproto.h"
#include "log.h"
#include "node.h"
#include "promrw.h"
#include "text_ingest.h"

#define INFLUX_VERSION "1.8.10-sluice-" SLUICE_VERSION
#define ERR_LINE_MAX 256 /* bytes of a bad line quoted in an error */
#define ERR_LINES 8	 /* bad lines named in an error */
/* Prometheus remote write: a request unpacks whole, up to ~32 times its uncompressed size
 * for a crafted one (promrw.h), so both the size and the decodes at once are bounded.
 * Prometheus sends requests of 500-2000 samples, some 100 KiB. */
#define PROM_MAX_BYTES (8u << 20)
#define PROM_DECODES 4

struct sl_http {
	struct MHD_Daemon *d;
	struct sl_node *node;
	struct sl_config cfg;
	int fd;
	char listening[64];
	_Atomic int active; /* requests between their first call and their end */
};

static struct {
	_Atomic uint64_t requests, writes_ok, writes_partial, writes_failed, status_2xx,
		status_4xx, status_5xx, body_bytes, too_large, bad_gzip, bad_requests, not_found,
		lines_ok, lines_bad, points, prom_requests, prom_samples, prom_refused, prom_bad,
		conns_open, conns_total, conns_refused, timeouts_idle, timeouts_write,
		metrics_scrapes;
} hc;

void sl_http_counters(struct sl_http_counters *o)
{
#define C(f) o->f = atomic_load(&hc.f)
	C(requests); C(writes_ok); C(writes_partial); C(writes_failed); C(status_2xx);
	C(status_4xx); C(status_5xx); C(body_bytes); C(too_large); C(bad_gzip);
	C(bad_requests); C(not_found); C(lines_ok); C(lines_bad); C(points);
	C(prom_requests); C(prom_samples); C(prom_refused); C(prom_bad); C(conns_open);
	C(conns_total); C(conns_refused); C(timeouts_idle); C(timeouts_write);
	C(metrics_scrapes);
#undef C
}

const char *sl_http_listening(const struct sl_http *h) { return h ? h->listening : ""; }

enum endpoint { EP_NONE, EP_WRITE1, EP_WRITE2, EP_PROM_WRITE };

struct req {
	enum endpoint ep;
	bool counted;
	bool too_large;
	char *body;
	size_t len, cap;
};

/* ---------------------------------------------------------------- responses */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype,
			       const char *body, size_t len)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "X-Influxdb-Version", INFLUX_VERSION);
	MHD_add_response_header(r, "X-Influxdb-Build", "OSS");
	if (ctype != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status >= 400 && ctype != NULL && strcmp(ctype, "application/json") == 0 && len > 0)
		MHD_add_response_header(r, "X-Influxdb-Error", body);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	if (status < 300)
		atomic_fetch_add(&hc.status_2xx, 1);
	else if (status < 500)
		atomic_fetch_add(&hc.status_4xx, 1);
	else
		atomic_fetch_add(&hc.status_5xx, 1);
	return rc;
}

/* Appends s JSON-escaped to b (cap bytes, NUL kept). */
static void json_esc(char *b, size_t cap, size_t *at, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *at + 7 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			b[(*at)++] = '\\';
			b[(*at)++] = (char)ch;
		} else if (ch == '\n' || ch == '\t' || ch == '\r') {
			b[(*at)++] = '\\';
			b[(*at)++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
		} else if (ch < 0x20) {
			*at += (size_t)snprintf(b + *at, cap - *at, "\\u%04x", ch);
		} else {
			b[(*at)++] = (char)ch;
		}
	}
	b[*at] = '\0';
}

/* InfluxDB 1.x: {"error":"..."}; 2.x: {"code":"...","message":"..."}. */
static enum MHD_Result respond_err(struct MHD_Connection *c, enum endpoint ep, unsigned status,
				   const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char b[8400];
	size_t at;
	if (ep == EP_WRITE2) {
		const char *code = status == 413   ? "request too large"
				   : status == 404 ? "not found"
				   : status == 405 ? "method not allowed"
				   : status >= 500 ? "internal error"
						   : "invalid";
		at = (size_t)snprintf(b, sizeof(b), "{\"code\":\"%s\",\"message\":\"", code);
	} else {
		at = (size_t)snprintf(b, sizeof(b), "{\"error\":\"");
	}
	json_esc(b, sizeof(b), &at, msg, strlen(msg));
	at += (size_t)snprintf(b + at, sizeof(b) - at, "\"}");
	return respond(c, status, "application/json", b, at);
}

/* ---------------------------------------------------------------- bodies */

/* Inflates a gzip body in place of r->body; bounded by max. 0, -EFBIG, -EBADMSG. */
static int gunzip(struct req *r, size_t max)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	size_t cap = r->len * 4 + 4096, len = 0;
	if (cap > max + 1)
		cap = max + 1;
	char *out = malloc(cap);
	int rc = out ? 0 : -ENOMEM;
	z.next_in = (Bytef *)r->body;
	z.avail_in = (uInt)r->len;
	while (rc == 0) {
		if (len == cap) {
			if (cap > max) {
				rc = -EFBIG;
				break;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *n = realloc(out, ncap);
			if (n == NULL) {
				rc = -ENOMEM;
				break;
			}
			out = n;
			cap = ncap;
		}
		z.next_out = (Bytef *)out + len;
		z.avail_out = (uInt)(cap - len);
		int zr = inflate(&z, Z_NO_FLUSH);
		len = cap - z.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && !(zr == Z_BUF_ERROR && z.avail_out == 0)) {
			rc = -EBADMSG;
			break;
		}
		if (z.avail_in == 0 && z.avail_out != 0) {
			rc = -EBADMSG; /* truncated */
			break;
		}
	}
	inflateEnd(&z);
	if (rc == 0 && len > max)
		rc = -EFBIG;
	if (rc != 0) {
		free(out);
		return rc;
	}
	free(r->body);
	r->body = out;
	r->len = len;
	r->cap = cap;
	return 0;
}

static bool header_is(struct MHD_Connection *c, const char *name, const char *value)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	return v != NULL && strcasecmp(v, value) == 0;
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ---------------------------------------------------------------- InfluxDB writes */

/* InfluxDB's precision names: 1.x takes n/ns, u/us, ms, s, m, h (anything else is ns),
 * 2.x only ns, us, ms, s (anything else is an error). */
static int precision_of(const char *s, enum endpoint ep, enum sl_lp_precision *p)
{
	*p = SL_LP_PREC_NS;
	if (s == NULL || *s == '\0')
		return 0;
	if (sl_lp_precision_parse(s, p) == 0 &&
	    (ep == EP_WRITE1 || (*p != SL_LP_PREC_M && *p != SL_LP_PREC_H)))
		return 0;
	*p = SL_LP_PREC_NS;
	return ep == EP_WRITE2 ? -EINVAL : 0;
}

static enum MHD_Result serve_write(struct sl_http *h, struct MHD_Connection *c, struct req *r)
{
	enum endpoint ep = r->ep;
	if (ep == EP_WRITE1) {
		const char *db = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "db");
		if (db == NULL || *db == '\0') {
			atomic_fetch_add(&hc.bad_requests, 1);
			return respond_err(c, ep, 400, "database is required");
		}
	} else {
		const char *bucket = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "bucket");
		const char *org = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "org");
		const char *org_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "orgID");
		if (bucket == NULL || *bucket == '\0') {
			atomic_fetch_add(&hc.bad_requests, 1);
			return respond_err(c, ep, 400, "bucket is required");
		}
		if ((org == NULL || *org == '\0') && (org_id == NULL || *org_id == '\0')) {
			atomic_fetch_add(&hc.bad_requests, 1);
			return respond_err(c, ep, 400, "organization is required (org or orgID)");
		}
	}
	enum sl_lp_precision prec;
	if (precision_of(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "precision"), ep,
			 &prec) != 0) {
		atomic_fetch_add(&hc.bad_requests, 1);
		return respond_err(c, ep, 400, "invalid precision: use ns, us, ms or s");
	}
	if (r->too_large) {
		atomic_fetch_add(&hc.too_large, 1);
		return respond_err(c, ep, 413, "Request Entity Too Large: the body is over %u bytes",
				   h->cfg.http_max_body);
	}
	if (header_is(c, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip")) {
		int rc = gunzip(r, h->cfg.http_max_body);
		if (rc == -EFBIG) {
			atomic_fetch_add(&hc.too_large, 1);
			return respond_err(c, ep, 413,
					   "Request Entity Too Large: the body is over %u bytes "
					   "once decompressed",
					   h->cfg.http_max_body);
		}
		if (rc != 0) {
			atomic_fetch_add(&hc.bad_gzip, 1);
			return respond_err(c, ep, 400, "unable to decode gzip body: %s",
					   rc == -ENOMEM ? "out of memory" : "invalid gzip data");
		}
	}
	static _Thread_local struct sl_lp_line line;
	struct sl_lp_opts o = {.precision = prec, .now_ns = wall_ns()};
	struct sl_ti_writer wr;
	sl_ti_begin(&wr, h->node, (uint64_t)h->cfg.http_write_timeout_ms * 1000000ull, true);
	uint64_t bad = 0, ok = 0;
	/* InfluxDB names every bad line, one "unable to parse" per line: so do we, for the
	 * first ERR_LINES of them */
	char why[ERR_LINES * (ERR_LINE_MAX + 64) + 64];
	size_t why_len = 0;
	why[0] = '\0';
	int rc = 0;
	for (size_t off = 0; off < r->len && rc >= 0;) {
		size_t n = sl_lp_line_end(r->body + off, r->len - off);
		const char *text = r->body + off;
		off += n + (off + n < r->len ? 1 : 0);
		rc = sl_ti_add_line(&wr, text, n, &o, &line);
		if (rc == -EBADMSG) {
			if (bad++ < ERR_LINES)
				why_len += (size_t)snprintf(why + why_len, sizeof(why) - why_len,
							    "%sunable to parse '%.*s%s': %s",
							    bad > 1 ? "\n" : "",
							    (int)(n < ERR_LINE_MAX ? n : ERR_LINE_MAX),
							    text, n > ERR_LINE_MAX ? "..." : "",
							    sl_ti_lp_reason(line.err));
			rc = 0;
		} else if (rc == 0) {
			ok++;
		} else if (rc == SL_LP_SKIP) {
			rc = 0;
		}
	}
	int werr = sl_ti_end(&wr);
	atomic_fetch_add(&hc.lines_ok, ok);
	atomic_fetch_add(&hc.lines_bad, bad);
	atomic_fetch_add(&hc.points, wr.points);
	if (werr != 0) {
		atomic_fetch_add(&hc.writes_failed, 1);
		if (werr == -ETIMEDOUT) {
			atomic_fetch_add(&hc.timeouts_write, 1);
			return respond_err(c, ep, 500, "timeout");
		}
		if (werr == -ESHUTDOWN)
			return respond_err(c, ep, 503, "the node is shutting down");
		return respond_err(c, ep, 500, "write failed: %s (%" PRIu64 " of %" PRIu64
					   " points stored)",
				   werr == -EIO ? "storage error" : strerror(-werr), wr.stored,
				   wr.points);
	}
	if (bad > ERR_LINES)
		snprintf(why + why_len, sizeof(why) - why_len, "\n(and %" PRIu64 " more bad lines)",
			 bad - ERR_LINES);
	if (bad > 0 && wr.points == 0) {
		atomic_fetch_add(&hc.writes_failed, 1);
		return respond_err(c, ep, 400, "%s", why);
	}
	if (wr.refused > 0 && bad == 0)
		snprintf(why, sizeof(why), "field type conflict");
	if (bad > 0 || wr.refused > 0) {
		atomic_fetch_add(&hc.writes_partial, 1);
		if (ep == EP_WRITE2)
			return respond_err(c, ep, 400,
					   "partial write error (%" PRIu64 " written): %s", wr.stored,
					   why);
		/* dropped: points the store refused (InfluxDB: 0 for lines not parsed) */
		return respond_err(c, ep, 400, "partial write: %s dropped=%" PRIu64, why,
				   wr.refused);
	}
	atomic_fetch_add(&hc.writes_ok, 1);
	return respond(c, 204, NULL, "", 0);
}

/* ---------------------------------------------------------------- Prometheus */

static int prom_sample(void *arg, const struct sl_prw_sample *s)
{
	struct sl_ti_writer *wr = arg;
	struct sl_point pt;
	sl_prw_sample_point(s, &pt);
	return sl_ti_add(wr, &pt) == 0 ? 0 : 1; /* the writer's error stops the decode */
}

static enum MHD_Result serve_prom_write(struct sl_http *h, struct MHD_Connection *c,
					struct req *r)
{
	atomic_fetch_add(&hc.prom_requests, 1);
	if (r->too_large) {
		atomic_fetch_add(&hc.too_large, 1);
		return respond_err(c, EP_PROM_WRITE, 413, "request body over %u bytes",
				   h->cfg.http_max_body);
	}
	static _Atomic unsigned decoding;
	for (unsigned waited_ms = 0;; waited_ms++) {
		unsigned d = atomic_load(&decoding);
		if (d < PROM_DECODES && atomic_compare_exchange_weak(&decoding, &d, d + 1))
			break;
		if (waited_ms >= h->cfg.http_write_timeout_ms)
			return respond_err(c, EP_PROM_WRITE, 503, "busy: try again");
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	struct sl_ti_writer wr;
	sl_ti_begin(&wr, h->node, (uint64_t)h->cfg.http_write_timeout_ms * 1000000ull, true);
	struct sl_prw_result res;
	size_t max = h->cfg.http_max_body < PROM_MAX_BYTES ? h->cfg.http_max_body : PROM_MAX_BYTES;
	int rc = sl_prw_decode((const uint8_t *)r->body, r->len, max, prom_sample, &wr, &res);
	atomic_fetch_sub(&decoding, 1);
	int werr = sl_ti_end(&wr);
	uint64_t refused = res.samples_refused;
	atomic_fetch_add(&hc.prom_samples, wr.stored);
	atomic_fetch_add(&hc.prom_refused, refused + wr.refused);
	if (rc == SL_PRW_E_NOMEM) /* 5xx: Prometheus sends it again */
		return respond_err(c, EP_PROM_WRITE, 500, "out of memory decoding the request");
	if (rc < 0) {
		atomic_fetch_add(&hc.prom_bad, 1);
		/* 4xx: Prometheus drops the request instead of retrying it forever */
		return respond_err(c, EP_PROM_WRITE, rc == SL_PRW_E_TOO_LARGE ? 413 : 400,
				   "remote write body: %s", sl_prw_strerror(rc));
	}
	if (werr == -ETIMEDOUT) {
		atomic_fetch_add(&hc.timeouts_write, 1);
		return respond_err(c, EP_PROM_WRITE, 503, "timeout");
	}
	if (werr != 0) /* 5xx: Prometheus sends it again */
		return respond_err(c, EP_PROM_WRITE, werr == -ESHUTDOWN ? 503 : 500,
				   "write failed: %s", werr == -EIO ? "storage error"
								    : strerror(-werr));
	if (refused > 0 || wr.refused > 0)
		return respond_err(c, EP_PROM_WRITE, 400,
				   "%" PRIu64 " samples stored, %" PRIu64
				   " refused (series without a name: %" PRIu64 ", invalid labels: %"
				   PRIu64 ", duplicate labels: %" PRIu64 ", samples of keys over %d "
				   "bytes: %" PRIu64 ", bad timestamps: %" PRIu64
				   ", type conflicts: %" PRIu64 ")",
				   wr.stored, refused + wr.refused, res.no_name, res.bad_labels,
				   res.dup_labels, SL_KEY_MAX, res.too_long_keys, res.bad_ts,
				   wr.refused);
	return respond(c, 204, NULL, "", 0);
}

/* ---------------------------------------------------------------- the rest */

static enum MHD_Result serve_metrics(struct sl_http *h, struct MHD_Connection *c)
{
	atomic_fetch_add(&hc.metrics_scrapes, 1);
	char *text;
	size_t len;
	if (sl_node_metrics(h->node, &text, &len) != 0)
		return respond_err(c, EP_NONE, 500, "out of memory");
	enum MHD_Result rc = respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
	return rc;
}

/* InfluxDB 1.x /query: sluice answers no InfluxQL; CREATE DATABASE (which clients and
 * Telegraf send before writing) is accepted and does nothing: sluice has one namespace. */
static enum MHD_Result serve_query(struct MHD_Connection *c)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
	while (q != NULL && isspace((unsigned char)*q))
		q++;
	if (q != NULL && strncasecmp(q, "CREATE DATABASE", 15) == 0) {
		static const char ok[] = "{\"results\":[{\"statement_id\":0}]}";
		return respond(c, 200, "application/json", ok, sizeof(ok) - 1);
	}
	atomic_fetch_add(&hc.bad_requests, 1);
	return respond_err(c, EP_WRITE1, 400,
			   "sluice answers no InfluxQL queries (CREATE DATABASE is accepted and "
			   "does nothing); read points with sluicectl query or the ctl socket");
}

static enum MHD_Result serve_health(struct sl_http *h, struct MHD_Connection *c)
{
	bool up = !sl_node_failed(h->node) && !sl_node_stopping(h->node);
	char b[256];
	int n = snprintf(b, sizeof(b),
			 "{\"name\":\"sluice\",\"message\":\"%s\",\"status\":\"%s\","
			 "\"checks\":[],\"version\":\"%s\"}",
			 up ? "ready for writes" : "not ready", up ? "pass" : "fail", SLUICE_VERSION);
	return respond(c, up ? 200 : 503, "application/json", b, (size_t)n);
}

static enum endpoint endpoint_of(const char *url)
{
	if (strcmp(url, "/write") == 0)
		return EP_WRITE1;
	if (strcmp(url, "/api/v2/write") == 0)
		return EP_WRITE2;
	if (strcmp(url, "/api/v1/write") == 0)
		return EP_PROM_WRITE;
	return EP_NONE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **req_cls)
{
	struct sl_http *h = cls;
	(void)version;
	struct req *r = *req_cls;
	if (r == NULL) { /* headers are in */
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		*req_cls = r;
		atomic_fetch_add(&h->active, 1);
		atomic_fetch_add(&hc.requests, 1);
		r->ep = endpoint_of(url);
		if (r->ep != EP_NONE) {
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (cl != NULL && strtoull(cl, NULL, 10) > h->cfg.http_max_body) {
				/* answered now: MHD closes the connection unread */
				atomic_fetch_add(&hc.too_large, 1);
				if (r->ep == EP_PROM_WRITE)
					atomic_fetch_add(&hc.prom_requests, 1);
				return respond_err(c, r->ep, 413,
						   "Request Entity Too Large: the body is over "
						   "%u bytes",
						   h->cfg.http_max_body);
			}
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		atomic_fetch_add(&hc.body_bytes, *upload_size);
		if (r->ep != EP_NONE && !r->too_large) {
			if (r->len + *upload_size > h->cfg.http_max_body) {
				r->too_large = true;
			} else {
				if (r->len + *upload_size > r->cap) {
					size_t ncap = r->cap ? r->cap : 65536;
					while (ncap < r->len + *upload_size)
						ncap *= 2;
					char *nb = realloc(r->body, ncap);
					if (nb == NULL)
						return MHD_NO;
					r->body = nb;
					r->cap = ncap;
				}
				memcpy(r->body + r->len, upload, *upload_size);
				r->len += *upload_size;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (r->ep != EP_NONE) {
		if (!post)
			return respond_err(c, r->ep, 405, "use POST");
		return r->ep == EP_PROM_WRITE ? serve_prom_write(h, c, r) : serve_write(h, c, r);
	}
	if (strcmp(url, "/ping") == 0) {
		const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "verbose");
		if (v != NULL && strcmp(v, "true") == 0) {
			static const char b[] = "{\"version\":\"" INFLUX_VERSION "\"}";
			return respond(c, 200, "application/json", b, sizeof(b) - 1);
		}
		return respond(c, 204, NULL, "", 0);
	}
	if (strcmp(url, "/health") == 0 && get)
		return serve_health(h, c);
	if (strcmp(url, "/metrics") == 0 && get)
		return serve_metrics(h, c);
	if (strcmp(url, "/query") == 0 && (get || post))
		return serve_query(c);
	atomic_fetch_add(&hc.not_found, 1);
	return respond_err(c, EP_NONE, 404, "not found: %s %s", method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct sl_http *h = cls;
	(void)c;
	struct req *r = *req_cls;
	if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
		atomic_fetch_add(&hc.timeouts_idle, 1);
	if (r == NULL)
		return;
	free(r->body);
	free(r);
	*req_cls = NULL;
	atomic_fetch_sub(&h->active, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)c;
	(void)socket_ctx;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		atomic_fetch_add(&hc.conns_open, 1);
		atomic_fetch_add(&hc.conns_total, 1);
	} else {
		atomic_fetch_sub(&hc.conns_open, 1);
	}
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct sl_http *h = cls;
	(void)addr;
	(void)len;
	if (atomic_load(&hc.conns_open) >= h->cfg.http_max_connections) {
		atomic_fetch_add(&hc.conns_refused, 1);
		return MHD_NO;
	}
	return MHD_YES;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char b[512];
	vsnprintf(b, sizeof(b), fmt, ap);
	size_t n = strlen(b);
	while (n > 0 && b[n - 1] == '\n')
		b[--n] = '\0';
	SL_LOG(WARNING, ingest, "http: %s\n", b);
}

int sl_http_start(struct sl_node *n, const struct sl_config *cfg, struct sl_http **out,
		  char *err, size_t err_len)
{
	struct in_addr a;
	uint32_t port;
	if (sl_cfg_parse_listen(cfg->http_listen, &a, &port) != 0) {
		snprintf(err, err_len, "[http] listen = '%s': give IPV4:PORT", cfg->http_listen);
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "http: socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr = a};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
		int e = errno;
		snprintf(err, err_len, "http: cannot listen on %s: %s", cfg->http_listen,
			 strerror(e));
		close(fd);
		return -e;
	}
	struct sl_http *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		close(fd);
		snprintf(err, err_len, "http: out of memory");
		return -ENOMEM;
	}
	h->node = n;
	h->cfg = *cfg;
	h->fd = fd;
	snprintf(h->listening, sizeof(h->listening), "%s", cfg->http_listen);
	h->d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			MHD_USE_ERROR_LOG | MHD_USE_ITC,
		0, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->http_max_connections + 1,
		/* reads of ~128 KiB instead of ~16 KiB: a third less CPU per line measured
		 * (docs/http_library.md) */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->http_idle_timeout_s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
		on_connection, h, MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(err, err_len, "http: libmicrohttpd did not start on %s", cfg->http_listen);
		close(fd);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void sl_http_stop(struct sl_http *h)
{
	if (h == NULL)
		return;
	MHD_quiesce_daemon(h->d); /* no new connections */
	/* requests in progress finish: their writes are answered by the node, which still
	 * runs; bounded by the write timeout */
	struct timespec ts = {0, 5000000};
	for (uint32_t waited = 0;
	     atomic_load(&h->active) > 0 && waited < h->cfg.http_write_timeout_ms + 1000; waited += 5)
		nanosleep(&ts, NULL);
	MHD_stop_daemon(h->d);
	close(h->fd);
	sl_ti_reap();
	free(h);
}

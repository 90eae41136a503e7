/* http.h - sluiced's HTTP APIs on a kernel socket (libmicrohttpd; docs/http.md):
 * InfluxDB 1.x /write, /ping, /query (CREATE DATABASE only), InfluxDB 2.x /api/v2/write,
 * /health, Prometheus remote write /api/v1/write and /metrics. Writes reach the worker
 * cores through in-process ingest (text_ingest.h) and are answered once stored at their
 * region's ack level. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct sl_node;
struct sl_http;

/* Counters of the HTTP server (all threads). */
struct sl_http_counters {
	uint64_t requests, writes_ok, writes_partial, writes_failed;
	uint64_t status_2xx, status_4xx, status_5xx;
	uint64_t body_bytes, too_large, bad_gzip, bad_requests, not_found;
	uint64_t lines_ok, lines_bad, points;
	uint64_t prom_requests, prom_samples, prom_refused, prom_bad;
	uint64_t conns_open, conns_total, conns_refused, timeouts_idle, timeouts_write;
	uint64_t metrics_scrapes;
};

/* Binds [http] listen and starts serving. 0; -EADDRINUSE (err says so) when the address
 * is taken: the caller decides whether that stops the node (an explicit listen) or only
 * HTTP (the default); another negative errno with err set. */
int sl_http_start(struct sl_node *n, const struct sl_config *c, struct sl_http **out,
		  char *err, size_t err_len);
/* Stops taking connections, lets requests in progress finish (bounded by the write
 * timeout), then stops. Call before the node stops: their writes need the workers. */
void sl_http_stop(struct sl_http *h);
void sl_http_counters(struct sl_http_counters *out);
/* The bound address, for status ("0.0.0.0:8086"); "" when not serving. */
const char *sl_http_listening(const struct sl_http *h);

/* node_metrics.c: every counter of the stats segment per core and the node's totals in
 * the Prometheus text format (version 0.0.4). 0 with *out malloc'd, or -ENOMEM. */
int sl_node_metrics(struct sl_node *n, char **out, size_t *len);

#endif

/* node_metrics.c - /metrics: the stats segment's counters per core, the ack-latency
 * histogram, the HTTP server's and in-process ingest's counters and a few node gauges, in
 * the Prometheus text format 0.0.4. Read like sluicectl reads them (the segment), so what
 * a scrape shows is what `sluicectl stats` shows. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "http.h"
#include "kernel_port.h"
#include "kernel_udp.h"
#include "node_internal.h"
#include "stats.h"
#include "text_ingest.h"

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP sluice_%s %s\n# TYPE sluice_%s counter\nsluice_%s %" PRIu64 "\n", name,
		help, name, name, v);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP sluice_%s %s\n# TYPE sluice_%s gauge\nsluice_%s %" PRIu64 "\n", name,
		help, name, name, v);
}

int sl_node_metrics(struct sl_node *n, char **out, size_t *len)
{
	char *buf = NULL;
	size_t sz = 0;
	FILE *f = open_memstream(&buf, &sz);
	if (f == NULL)
		return -ENOMEM;
	static struct sl_stats_snapshot snap[SL_CFG_MAX_WORKERS];
	static bool have[SL_CFG_MAX_WORKERS];
	/* one scrape at a time fills the snapshots (they are big for a stack) */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	struct sl_stats_reader *rd = NULL;
	if (sl_stats_open(n->cfg.stats_path, &rd) == 0) {
		for (unsigned c = 0; c < n->n_workers; c++)
			have[c] = sl_stats_read_core_sum(rd, c, &snap[c]) >= 0;
		sl_stats_close(rd);
	} else {
		for (unsigned c = 0; c < n->n_workers; c++)
			have[c] = false;
	}
	for (int k = 0; k < SL_STATS_N_COUNTERS; k++) {
		const char *name = sl_stats_counter_name((enum sl_stat)k);
		fprintf(f, "# HELP sluice_%s_total worker counter %s (docs/architecture.md)\n",
			name, name);
		fprintf(f, "# TYPE sluice_%s_total counter\n", name);
		for (unsigned c = 0; c < n->n_workers; c++)
			if (have[c])
				fprintf(f, "sluice_%s_total{core=\"%u\"} %" PRIu64 "\n", name, c,
					snap[c].counters[k]);
	}
	fprintf(f, "# HELP sluice_ack_latency_seconds time from a batch's arrival to its ack\n"
		   "# TYPE sluice_ack_latency_seconds histogram\n");
	for (unsigned c = 0; c < n->n_workers; c++) {
		if (!have[c])
			continue;
		uint64_t cum = 0;
		for (int b = 0; b < SL_STATS_HIST_BUCKETS; b++) {
			cum += snap[c].ack_latency_hist[b];
			/* bucket b holds [2^(b-1), 2^b) ns; the last one everything above */
			if (b >= 10 && b < 36 && b % 2 == 0)
				fprintf(f, "sluice_ack_latency_seconds_bucket{core=\"%u\",le=\"%.9g\"} %"
					   PRIu64 "\n",
					c, (double)(1ull << b) / 1e9, cum);
		}
		fprintf(f, "sluice_ack_latency_seconds_bucket{core=\"%u\",le=\"+Inf\"} %" PRIu64 "\n",
			c, cum);
		fprintf(f, "sluice_ack_latency_seconds_sum{core=\"%u\"} %.9f\n", c,
			(double)snap[c].ack_latency_sum_ns / 1e9);
		fprintf(f, "sluice_ack_latency_seconds_count{core=\"%u\"} %" PRIu64 "\n", c, cum);
	}
	pthread_mutex_unlock(&lock);

	struct sl_http_counters h;
	sl_http_counters(&h);
#define HC(name, help) counter(f, "http_" #name "_total", help, h.name)
	HC(requests, "HTTP requests");
	HC(writes_ok, "writes answered 204: every point stored");
	HC(writes_partial, "writes answered 400 with some lines or points refused");
	HC(writes_failed, "writes answered 4xx/5xx with nothing or not all stored");
	HC(status_2xx, "answers 2xx");
	HC(status_4xx, "answers 4xx");
	HC(status_5xx, "answers 5xx");
	HC(body_bytes, "request body bytes read");
	HC(too_large, "requests refused 413: body over [http] max_body_bytes");
	HC(bad_gzip, "requests refused 400: gzip body not decodable");
	HC(bad_requests, "requests refused 400: missing db or bucket, bad precision, queries");
	HC(not_found, "requests for an unknown path");
	HC(lines_ok, "line protocol lines stored or handed to the node");
	HC(lines_bad, "line protocol lines refused by the parser");
	HC(points, "points handed to the node by HTTP writes");
	HC(prom_requests, "Prometheus remote write requests");
	HC(prom_samples, "Prometheus samples stored");
	HC(prom_refused, "Prometheus samples refused (no name, bad labels, long keys, types)");
	HC(prom_bad, "Prometheus remote write bodies not decodable (snappy, protobuf)");
	counter(f, "http_connections_total", "HTTP connections accepted", h.conns_total);
	HC(conns_refused, "HTTP connections refused: [http] max_connections open");
	HC(timeouts_idle, "HTTP connections closed idle ([http] idle_timeout_s)");
	HC(timeouts_write, "writes answered timeout ([http] write_timeout_ms)");
	HC(metrics_scrapes, "scrapes of /metrics");
#undef HC
	gauge(f, "http_connections_open", "HTTP connections open now", h.conns_open);
	struct sl_ti_counters t;
	sl_ti_counters(&t);
#define TC(name, help) counter(f, "local_" #name "_total", help, t.name)
	TC(chunks, "in-process batches handed to worker cores (HTTP, kernel UDP)");
	TC(points, "points in them");
	TC(stored, "of them answered stored");
	TC(refused, "of them answered refused (type conflicts)");
	TC(storage_errors, "in-process batches answered with a storage error");
	TC(timeouts, "writers that stopped waiting for an answer");
	TC(queue_full_waits, "waits for room in a worker's in-process queue");
#undef TC
	struct sl_kudp_counters u;
	sl_kudp_counters(&u);
#define UC(name, help) counter(f, "kernel_udp_" #name "_total", help, u.name)
	UC(datagrams, "line protocol datagrams read from the kernel UDP socket");
	UC(bytes, "their bytes");
	UC(lines_ok, "their lines parsed");
	UC(lines_bad, "their lines refused by the parser");
	UC(points, "points handed to the node");
	UC(bursts_failed, "bursts whose points were not all handed over (node busy 1 s, stop)");
#undef UC
	struct sl_kport_counters k;
	sl_kport_counters(&k);
#define KC(name, help) counter(f, "kernel_session_" #name "_total", help, k.name)
	KC(datagrams_in, "session protocol datagrams read from the kernel UDP socket");
	KC(frames_in, "frames made of them for the dataplane (fragments counted apiece)");
	KC(rx_full, "datagrams dropped: a worker's queue was full (the client resends)");
	KC(datagrams_out, "replies sent from the socket");
	KC(tx_bad, "frames of the workers that were no whole UDP datagram (dropped)");
	KC(send_errors, "replies the socket refused");
#undef KC
	gauge(f, "workers", "worker cores", n->n_workers);
	gauge(f, "regions", "regions of the node", n->cfg.regions);
	gauge(f, "recovered_points", "points re-applied from the WAL at start",
	      __atomic_load_n(&n->recovered_points, __ATOMIC_RELAXED));
	gauge(f, "up", "1 while the node serves, 0 after a fatal error",
	      !atomic_load(&n->failed));
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = sz;
	return 0;
}

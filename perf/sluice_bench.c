/* sluice_bench.c - sluice-bench: load generator and measurement tool for perf labs.
 * This version drives the shm ingest path through libsluice: it keeps the client's ring
 * full with fixed-size batches (closed loop) and measures acknowledged points/s and the
 * ack latency of every batch (submit to acknowledgement) into a log-linear histogram,
 * reporting p50/p99/p999 (human text or --json). Bounded by --duration and --points. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice.h"

/* Log-linear histogram: 64 power-of-two ranges x 16 linear sub-buckets, ~6% precision. */
#define SUB 16
struct hist {
	uint64_t b[64 * SUB];
	uint64_t n, max;
};

static void hist_add(struct hist *h, uint64_t v)
{
	unsigned idx;
	if (v < SUB) {
		idx = (unsigned)v;
	} else {
		unsigned e = 63 - (unsigned)__builtin_clzll(v) - 4; /* v >> e in [16, 32) */
		idx = (e + 1) * SUB + (unsigned)((v >> e) - SUB);
	}
	if (idx >= 64 * SUB)
		idx = 64 * SUB - 1;
	h->b[idx]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static uint64_t bucket_value(unsigned idx)
{
	if (idx < SUB)
		return idx;
	unsigned e = idx / SUB - 1, s = idx % SUB;
	return ((uint64_t)(SUB + s) << e) + ((1ull << e) >> 1); /* bucket middle */
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	if (h->n == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n), acc = 0;
	for (unsigned i = 0; i < 64 * SUB; i++) {
		acc += h->b[i];
		if (acc >= want)
			return bucket_value(i) < h->max ? bucket_value(i) : h->max;
	}
	return h->max;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *o)
{
	fprintf(o,
		"usage: sluice-bench [options]\n"
		"Drives a local sluiced through the shm ingest ring and reports acknowledged\n"
		"points/s and ack latency (p50/p99/p999).\n\n"
		"  -p, --path PATH      shm ingest segment (default /dev/shm/sluice-node1.ingest)\n"
		"  -d, --duration SEC   run time in seconds (default 10)\n"
		"  -n, --points N       stop after N acknowledged points (default: no limit)\n"
		"  -b, --batch N        points per batch (default 1000)\n"
		"  -s, --series N       distinct series (default 1000)\n"
		"  -i, --inflight N     batches in flight at most (default: as the ring allows)\n"
		"  -q, --quiet          no progress lines\n"
		"  -j, --json           print the result as one JSON object\n"
		"  -h, --help           this help\n");
}

int main(int argc, char **argv)
{
	const char *path = "/dev/shm/sluice-node1.ingest";
	double duration_s = 10;
	uint64_t max_points = 0;
	uint32_t batch = 1000, series = 1000, max_inflight = 0;
	bool json = false, quiet = false;
	static const struct option opts[] = {
		{"path", required_argument, 0, 'p'},   {"duration", required_argument, 0, 'd'},
		{"points", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
		{"series", required_argument, 0, 's'}, {"inflight", required_argument, 0, 'i'},
		{"json", no_argument, 0, 'j'},         {"quiet", no_argument, 0, 'q'},
		{"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "p:d:n:b:s:i:jqh", opts, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'd': duration_s = strtod(optarg, NULL); break;
		case 'n': max_points = strtoull(optarg, NULL, 10); break;
		case 'b': batch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': series = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': max_inflight = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (batch == 0 || series == 0 || duration_s <= 0 || duration_s > 86400) {
		fprintf(stderr, "sluice-bench: --batch and --series must be > 0, --duration in (0, 86400]\n");
		return 2;
	}
	struct sluice_client *cl;
	int rc = sluice_connect(path, &cl);
	if (rc != 0) {
		fprintf(stderr, "sluice-bench: cannot connect to %s: %s (is sluiced running?)\n",
			path, strerror(-rc));
		return 1;
	}
	int cap = sluice_capacity(cl);
	if ((uint32_t)cap < batch) {
		fprintf(stderr, "sluice-bench: batch %u larger than the ring (%d points)\n", batch, cap);
		return 2;
	}
	uint32_t ring_batches = (uint32_t)cap / batch;
	if (max_inflight == 0 || max_inflight > ring_batches)
		max_inflight = ring_batches;
	char(*keys)[40] = calloc(series, 40);
	uint16_t *klen = calloc(series, sizeof(uint16_t));
	struct sluice_point *pts = calloc(batch, sizeof(*pts));
	/* submit time by batch seq, in a ring indexed by seq (seqs are dense per client) */
	uint32_t tq_size = 1;
	while (tq_size < max_inflight * 2)
		tq_size <<= 1;
	uint64_t *t_submit = calloc(tq_size, sizeof(uint64_t));
	struct hist *h = calloc(1, sizeof(*h));
	if (!keys || !klen || !pts || !t_submit || !h) {
		fprintf(stderr, "sluice-bench: out of memory\n");
		return 1;
	}
	for (uint32_t s = 0; s < series; s++)
		klen[s] = (uint16_t)snprintf(keys[s], 40, "bench,host=h%06u value", s);

	uint64_t t0 = now_ns(), t_end = t0 + (uint64_t)(duration_s * 1e9), t_progress = t0 + 1000000000ull;
	uint64_t sent_pts = 0, acked_pts = 0, failed = 0, inflight = 0, seq = 0, ts = 1;
	uint64_t last_acked = 0;
	uint32_t next_series = 0;
	int exit_rc = 0;
	for (;;) {
		uint64_t now = now_ns();
		bool stop_sending = now >= t_end || (max_points && sent_pts >= max_points);
		if (stop_sending && inflight == 0)
			break;
		if (now >= t_end + 10000000000ull) {
			fprintf(stderr, "sluice-bench: %" PRIu64 " batches unacknowledged 10 s after the end\n",
				inflight);
			exit_rc = 1;
			break;
		}
		while (!stop_sending && inflight < max_inflight) {
			for (uint32_t k = 0; k < batch; k++) {
				pts[k].key = keys[next_series];
				pts[k].key_len = klen[next_series];
				pts[k].ts = (int64_t)ts++;
				pts[k].type = 1;
				double v = (double)k;
				memcpy(&pts[k].value, &v, 8);
				if (++next_series == series)
					next_series = 0;
			}
			rc = sluice_write(cl, pts, batch, &seq);
			if (rc == -EAGAIN)
				break;
			if (rc != 0) {
				fprintf(stderr, "sluice-bench: write: %s\n", strerror(-rc));
				return 1;
			}
			t_submit[seq & (tq_size - 1)] = now_ns();
			inflight++;
			sent_pts += batch;
		}
		struct sluice_ack acks[256];
		int got = sluice_poll_acks(cl, acks, 256);
		if (got < 0) {
			fprintf(stderr, "sluice-bench: node connection lost: %s\n", strerror(-got));
			return 1;
		}
		uint64_t t_ack = now_ns();
		for (int k = 0; k < got; k++) {
			hist_add(h, t_ack - t_submit[acks[k].batch_seq & (tq_size - 1)]);
			inflight--;
			if (acks[k].status == 0)
				acked_pts += acks[k].count;
			else
				failed++;
		}
		if (!quiet && !json && t_ack >= t_progress) {
			fprintf(stderr, "  %5.1f s  %10.0f points/s acked\n", (double)(t_ack - t0) / 1e9,
				(double)(acked_pts - last_acked));
			last_acked = acked_pts;
			t_progress += 1000000000ull;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	double rate = (double)acked_pts / secs;
	if (json) {
		printf("{\"transport\":\"shm\",\"batch_points\":%u,\"series\":%u,\"inflight_batches\":%u,"
		       "\"seconds\":%.3f,\"points_acked\":%" PRIu64 ",\"batches_failed\":%" PRIu64
		       ",\"points_per_s\":%.0f,\"ack_latency_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
		       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}\n",
		       batch, series, max_inflight, secs, acked_pts, failed, rate, hist_pct(h, 50),
		       hist_pct(h, 99), hist_pct(h, 99.9), h->max);
	} else {
		printf("sluice-bench: shm ingest, %u points/batch, %u series, %u batches in flight\n",
		       batch, series, max_inflight);
		printf("  acknowledged  %" PRIu64 " points in %.2f s = %.0f points/s\n", acked_pts, secs,
		       rate);
		printf("  failed        %" PRIu64 " batches\n", failed);
		printf("  ack latency   p50 %.1f us  p99 %.1f us  p999 %.1f us  max %.1f us\n",
		       hist_pct(h, 50) / 1e3, hist_pct(h, 99) / 1e3, hist_pct(h, 99.9) / 1e3,
		       h->max / 1e3);
	}
	sluice_close(cl);
	return failed ? 1 : exit_rc;
}

/* shm_producer.c - integration-test producer: writes N deterministic points through the
 * shm ingest ring (libsluice) in fixed batches, logs every acknowledged batch to a file
 * (one line per batch, flushed), survives the node being killed (waits for it to come
 * back, then resubmits every batch not yet acknowledged) and exits 0 once all batches are
 * acknowledged. Point i: series "itest,host=hNNN value" (NNN = i % series), ts = T0 + i,
 * value = i * 0.5 (exact in binary). Bounded by --timeout seconds. --key-prefix P makes
 * the series "P,host=hNNN value"; --int writes value i as an i64 instead; --value-offset X
 * adds X to every float value (two producers writing the same points with different
 * values: a conflict the replicas must settle the same way). --ts-period M makes ts =
 * T0 + i % M: with M a multiple of the series count, point i + M rewrites point i's
 * (series, ts) with a larger value, and the last batch's values are the ones to stay. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice.h"

#define T0 1700000000000000000LL

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *log_path = NULL;
	uint64_t n_points = 1000000;
	uint32_t n_series = 100, batch = 1000;
	double timeout_s = 300;
	uint32_t pace_ms = 0; /* a pause after each batch submitted: load spread over time */
	double value_offset = 0;
	uint64_t ts_period = 0; /* 0: every point has a timestamp of its own */
	bool stop_on_nack = false, as_int = false;
	const char *prefix = "itest";
	static const struct option opts[] = {{"path", required_argument, 0, 'p'},
					     {"points", required_argument, 0, 'n'},
					     {"series", required_argument, 0, 's'},
					     {"batch", required_argument, 0, 'b'},
					     {"log", required_argument, 0, 'l'},
					     {"timeout", required_argument, 0, 't'},
					     {"stop-on-nack", no_argument, 0, 'x'},
					     {"key-prefix", required_argument, 0, 'k'},
					     {"int", no_argument, 0, 'i'},
					     {"pace-ms", required_argument, 0, 'P'},
					     {"value-offset", required_argument, 0, 'V'},
					     {"ts-period", required_argument, 0, 'T'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "p:n:s:b:l:t:xk:ih", opts, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'n': n_points = strtoull(optarg, NULL, 10); break;
		case 's': n_series = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'b': batch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'l': log_path = optarg; break;
		case 't': timeout_s = strtod(optarg, NULL); break;
		case 'x': stop_on_nack = true; break;
		case 'k': prefix = optarg; break;
		case 'i': as_int = true; break;
		case 'P': pace_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'V': value_offset = strtod(optarg, NULL); break;
		case 'T': ts_period = strtoull(optarg, NULL, 10); break;
		case 'h':
			printf("usage: shm_producer --path SHM --log FILE [--points N] [--series S] "
			       "[--batch B] [--timeout SEC] [--stop-on-nack] [--key-prefix P] "
			       "[--int] [--pace-ms MS] [--value-offset X] [--ts-period M]\n");
			return 0;
		default: return 2;
		}
	}
	if (path == NULL || log_path == NULL || batch == 0 || n_series == 0 || n_points == 0 ||
	    strlen(prefix) > 64) {
		fprintf(stderr, "shm_producer: --path and --log are required (see --help)\n");
		return 2;
	}
	FILE *log = fopen(log_path, "w");
	if (log == NULL) {
		perror(log_path);
		return 2;
	}
	uint64_t n_batches = (n_points + batch - 1) / batch;
	bool *acked = calloc(n_batches, 1);
	uint64_t *seq_of = calloc(n_batches, sizeof(uint64_t)); /* batch_seq of the last send */
	uint64_t *batch_of_seq_base = NULL;
	(void)batch_of_seq_base;
	struct sluice_point *pts = calloc(batch, sizeof(*pts));
	char (*keys)[128] = calloc(batch, 128);
	/* seq -> batch map of the current connection (seqs restart per connection) */
	uint64_t map_cap = n_batches * 4 + 16;
	uint64_t *seq_batch = calloc(map_cap, sizeof(uint64_t));
	if (!acked || !seq_of || !pts || !keys || !seq_batch)
		return 2;

	double deadline = now_s() + timeout_s;
	struct sluice_client *cl = NULL;
	uint64_t n_acked = 0, next = 0, reconnects = 0, resent = 0;
	uint32_t in_flight = 0;
	int cap = 0;
	while (n_acked < n_batches) {
		if (now_s() > deadline) {
			fprintf(stderr, "shm_producer: timeout with %llu/%llu batches acked\n",
				(unsigned long long)n_acked, (unsigned long long)n_batches);
			return 1;
		}
		if (cl == NULL) {
			int rc = sluice_connect(path, &cl);
			if (rc != 0) {
				cl = NULL;
				usleep(50000);
				continue;
			}
			cap = sluice_capacity(cl);
			if (reconnects++ > 0)
				fprintf(stderr, "shm_producer: reconnected (%llu acked so far)\n",
					(unsigned long long)n_acked);
			next = 0; /* rescan from the start for unacked batches */
			in_flight = 0;
			memset(seq_batch, 0xff, map_cap * sizeof(uint64_t));
		}
		bool lost = false;
		/* submit: keep at most cap points in flight */
		while (next < n_batches && (in_flight + 1) * batch <= (uint32_t)cap) {
			if (acked[next]) {
				next++;
				continue;
			}
			uint64_t first = next * batch;
			uint32_t n = (uint32_t)((first + batch <= n_points) ? batch : n_points - first);
			for (uint32_t k = 0; k < n; k++) {
				uint64_t i = first + k;
				int kl = snprintf(keys[k], 128, "%s,host=h%03u value", prefix,
						  (unsigned)(i % n_series));
				pts[k].key = keys[k];
				pts[k].key_len = (uint16_t)kl;
				pts[k].ts = T0 + (int64_t)(ts_period > 0 ? i % ts_period : i);
				pts[k].type = as_int ? SLUICE_I64 : SLUICE_F64;
				double v = (double)i * 0.5 + value_offset;
				if (as_int)
					pts[k].value = i;
				else
					memcpy(&pts[k].value, &v, 8);
			}
			uint64_t seq = 0;
			int rc = sluice_write(cl, pts, n, &seq);
			if (rc == -EAGAIN)
				break;
			if (rc == -ENOTCONN) {
				lost = true;
				break;
			}
			if (rc != 0) {
				fprintf(stderr, "shm_producer: write: %s\n", strerror(-rc));
				return 1;
			}
			if (seq_of[next] != 0)
				resent++;
			seq_of[next] = seq;
			if (seq < map_cap)
				seq_batch[seq] = next;
			in_flight++;
			next++;
			if (pace_ms > 0) {
				usleep(pace_ms * 1000u);
				break; /* one batch per pause */
			}
		}
		struct sluice_ack acks[256];
		int got = lost ? -ENOTCONN : sluice_poll_acks(cl, acks, 256);
		if (got == -ENOTCONN) {
			fprintf(stderr, "shm_producer: node gone, waiting for it (%llu acked)\n",
				(unsigned long long)n_acked);
			sluice_close(cl);
			cl = NULL;
			continue;
		}
		for (int k = 0; k < got; k++) {
			uint64_t s = acks[k].batch_seq;
			if (s >= map_cap || seq_batch[s] == UINT64_MAX) {
				fprintf(stderr, "shm_producer: ack for unknown seq %llu\n",
					(unsigned long long)s);
				return 1;
			}
			uint64_t b = seq_batch[s];
			in_flight--;
			if (acks[k].status != 0) {
				fprintf(stderr, "shm_producer: batch %llu nacked: %d (%u stored)\n",
					(unsigned long long)b, acks[k].status, acks[k].count);
				if (stop_on_nack) {
					fclose(log);
					printf("shm_producer: stopped at a nack after %llu acked batches\n",
					       (unsigned long long)n_acked);
					return 3;
				}
				if (next > b)
					next = b; /* retry it */
				continue;
			}
			if (!acked[b]) {
				acked[b] = true;
				n_acked++;
				fprintf(log, "%llu\n", (unsigned long long)b);
			}
		}
		if (got > 0)
			fflush(log);
		else if (got == 0)
			usleep(50);
		/* wrapped around: look again for batches whose acks failed */
		if (next >= n_batches && in_flight == 0 && n_acked < n_batches)
			next = 0;
	}
	fclose(log);
	if (cl)
		sluice_close(cl);
	printf("shm_producer: %llu points in %llu batches acknowledged, %llu reconnects, "
	       "%llu batches resent\n",
	       (unsigned long long)n_points, (unsigned long long)n_batches,
	       (unsigned long long)(reconnects - 1), (unsigned long long)resent);
	return 0;
}

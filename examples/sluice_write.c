/* sluice_write.c - the smallest libsluice program: connects to a node's shared-memory
 * ingest ring, writes N points of one series in batches, and waits until every batch is
 * acknowledged (stored at the node's ack level). Built against an installed sluice:
 *
 *   cc -o sluice_write sluice_write.c $(pkg-config --cflags --libs sluice)
 *   ./sluice_write /dev/shm/sluice-<node name>.ingest 10000
 *
 * Exit status 0 once all N points are acknowledged as stored, 1 otherwise. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c11 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice.h>

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: sluice_write INGEST_SEGMENT POINTS\n");
		return argc == 2 ? 0 : 2;
	}
	uint64_t n = strtoull(argv[2], NULL, 10);
	struct sluice_client *c = NULL;
	int rc = sluice_connect(argv[1], &c);
	if (rc != 0) {
		fprintf(stderr, "sluice_write: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	const char *key = "example,host=a value";
	uint32_t per_batch = (uint32_t)sluice_capacity(c);
	if (per_batch > 500)
		per_batch = 500;
	struct sluice_point pts[500];
	int64_t t0 = now_ns();
	uint64_t written = 0, stored = 0, batches = 0, acked = 0;
	time_t deadline = time(NULL) + 60; /* bounded */
	while ((written < n || acked < batches) && time(NULL) < deadline) {
		uint32_t k = 0;
		for (; k < per_batch && written + k < n; k++)
			pts[k] = (struct sluice_point){.key = key,
						       .key_len = (uint16_t)strlen(key),
						       .ts = t0 + (int64_t)(written + k),
						       .type = SLUICE_F64,
						       .value = sluice_f64((double)(written + k))};
		if (k > 0) {
			rc = sluice_write(c, pts, k, NULL);
			if (rc == 0) {
				written += k;
				batches++;
			} else if (rc != -EAGAIN) {
				fprintf(stderr, "sluice_write: write: %s\n", strerror(-rc));
				break;
			}
		}
		struct sluice_ack acks[64];
		int got = sluice_poll_acks(c, acks, 64);
		if (got < 0) {
			fprintf(stderr, "sluice_write: acks: %s\n", strerror(-got));
			break;
		}
		for (int i = 0; i < got; i++) {
			acked++;
			stored += acks[i].count;
			if (acks[i].status != 0)
				fprintf(stderr, "sluice_write: batch %" PRIu64 ": %s\n", acks[i].batch_seq,
					strerror(-acks[i].status));
		}
		if (got == 0 && (k == 0 || rc == -EAGAIN)) {
			struct timespec pause = {0, 100000}; /* 0.1 ms: nothing to do yet */
			nanosleep(&pause, NULL);
		}
	}
	sluice_close(c);
	printf("sluice_write: %" PRIu64 " points in %" PRIu64 " batches, %" PRIu64
	       " acknowledged as stored\n",
	       written, batches, stored);
	return stored == n ? 0 : 1;
}

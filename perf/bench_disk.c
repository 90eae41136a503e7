/* bench_disk.c - sluice-bench --transport disk: the disk's own write+fdatasync latency, in
 * the shape of one WAL group commit (an aligned O_DIRECT write of --disk-bytes, then
 * fdatasync), so ack-latency tails can be compared with what the disk alone gives in the
 * same run. Writes one preallocated file in --path (a directory), removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_net.h"

#define DISK_FILE_BYTES (64ull << 20) /* rewritten round-robin, like a WAL segment */

int sl_bench_disk(const char *dir, uint32_t write_bytes, double duration_s, uint64_t max_ops,
		  bool json)
{
	if (write_bytes == 0 || write_bytes % 4096 != 0 || write_bytes > (16u << 20)) {
		fprintf(stderr, "sluice-bench: --disk-bytes must be a multiple of 4096 up to 16 MiB\n");
		return 2;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/sluice-bench-disk.%ld", dir, (long)getpid());
	bool direct = true;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT, 0600);
	if (fd < 0 && errno == EINVAL) { /* tmpfs and some others refuse O_DIRECT */
		direct = false;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	}
	if (fd < 0) {
		fprintf(stderr, "sluice-bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc = 0;
	void *buf = NULL;
	struct sl_bench_hist *h = calloc(1, sizeof(*h));
	if (h == NULL || posix_memalign(&buf, 4096, write_bytes) != 0) {
		fprintf(stderr, "sluice-bench: out of memory\n");
		rc = 1;
		goto out;
	}
	memset(buf, 0xa5, write_bytes);
	(void)fallocate(fd, 0, 0, (off_t)DISK_FILE_BYTES);
	(void)fdatasync(fd);
	uint64_t t0 = sl_bench_now_ns(), end = t0 + (uint64_t)(duration_s * 1e9), ops = 0;
	off_t off = 0;
	while (sl_bench_now_ns() < end && (max_ops == 0 || ops < max_ops)) {
		uint64_t a = sl_bench_now_ns();
		if (pwrite(fd, buf, write_bytes, off) != (ssize_t)write_bytes || fdatasync(fd) != 0) {
			fprintf(stderr, "sluice-bench: %s: write+fdatasync: %s\n", path,
				strerror(errno));
			rc = 1;
			goto out;
		}
		sl_bench_hist_add(h, sl_bench_now_ns() - a);
		ops++;
		off += write_bytes;
		if ((uint64_t)off + write_bytes > DISK_FILE_BYTES)
			off = 0;
	}
	double secs = (double)(sl_bench_now_ns() - t0) / 1e9;
	if (json)
		printf("{\"transport\":\"disk\",\"write_bytes\":%u,\"direct\":%s,\"ops\":%" PRIu64
		       ",\"seconds\":%.3f,\"latency_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
		       ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}\n",
		       write_bytes, direct ? "true" : "false", ops, secs, sl_bench_hist_pct(h, 50),
		       sl_bench_hist_pct(h, 99), sl_bench_hist_pct(h, 99.9), h->max);
	else
		printf("sluice-bench: disk, %u-byte %swrite + fdatasync, %" PRIu64
		       " ops in %.2f s\n  latency       p50 %.1f us  p99 %.1f us  p999 %.1f us  "
		       "max %.1f us\n",
		       write_bytes, direct ? "O_DIRECT " : "", ops, secs,
		       sl_bench_hist_pct(h, 50) / 1e3, sl_bench_hist_pct(h, 99) / 1e3,
		       sl_bench_hist_pct(h, 99.9) / 1e3, h->max / 1e3);
out:
	close(fd);
	unlink(path);
	free(buf);
	free(h);
	return rc;
}

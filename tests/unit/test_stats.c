/* test_stats.c - stats segment: header and names round trip, validation of foreign or
 * mismatched files, and consistent snapshots read by another process while a writer
 * thread updates counters in lockstep. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "stats.h"

#define LATENCY_NS 1500u /* every simulated ack takes this long: bucket 11 */

static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/dev/shm/sluice-test-stats-%d.stats", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_names_and_buckets(void **state)
{
	(void)state;
	assert_string_equal(sl_stats_counter_name(SL_STAT_points_in), "points_in");
	assert_string_equal(sl_stats_counter_name(SL_STAT_bad_records), "bad_records");
	assert_string_equal(sl_stats_counter_name(SL_STATS_N_COUNTERS), "");
	assert_int_equal(sl_stats_hist_bucket(0), 0);
	assert_int_equal(sl_stats_hist_bucket(1), 1);
	assert_int_equal(sl_stats_hist_bucket(2), 2);
	assert_int_equal(sl_stats_hist_bucket(3), 2);
	assert_int_equal(sl_stats_hist_bucket(1023), 10);
	assert_int_equal(sl_stats_hist_bucket(1024), 11);
	assert_int_equal(sl_stats_hist_bucket(LATENCY_NS), 11);
	assert_int_equal(sl_stats_hist_bucket(UINT64_MAX), SL_STATS_HIST_BUCKETS - 1);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct sl_stats_writer *w;
	assert_int_equal(sl_stats_create(path, 4, &w), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	struct sl_stats_core *c2 = sl_stats_core(w, 2);
	sl_stats_begin(c2);
	sl_stats_add(c2, SL_STAT_points_in, 40);
	sl_stats_inc(c2, SL_STAT_batches_in);
	sl_stats_inc(c2, SL_STAT_bad_records);
	sl_stats_ack_latency(c2, LATENCY_NS);
	sl_stats_ack_latency(c2, 0);
	sl_stats_end(c2);

	struct sl_stats_reader *r;
	assert_int_equal(sl_stats_open(path, &r), 0);
	assert_int_equal(sl_stats_n_cores(r), 4);
	assert_int_equal(sl_stats_node_pid(r), getpid());
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	assert_true(sl_stats_start_time_ns(r) <= now_ns);
	assert_true(sl_stats_start_time_ns(r) > now_ns - 60ull * 1000000000u);
	for (uint32_t i = 0; i < SL_STATS_N_COUNTERS; i++)
		assert_string_equal(sl_stats_segment_counter_name(r, i),
				    sl_stats_counter_name((enum sl_stat)i));

	struct sl_stats_snapshot s;
	assert_int_equal(sl_stats_read_core(r, 2, &s), 0);
	assert_int_equal(s.seq, 2);
	assert_int_equal(s.counters[SL_STAT_points_in], 40);
	assert_int_equal(s.counters[SL_STAT_batches_in], 1);
	assert_int_equal(s.counters[SL_STAT_bad_records], 1);
	assert_int_equal(s.counters[SL_STAT_acks_sent], 0);
	assert_int_equal(s.ack_latency_hist[11], 1);
	assert_int_equal(s.ack_latency_hist[0], 1);
	assert_int_equal(s.ack_latency_sum_ns, LATENCY_NS);
	assert_int_equal(sl_stats_read_core(r, 0, &s), 0);
	assert_int_equal(s.counters[SL_STAT_points_in], 0);
	assert_int_equal(sl_stats_read_core(r, 4, &s), -EINVAL);

	/* A writer stuck mid-update: bounded retries, then -EAGAIN, never a torn read. */
	sl_stats_begin(c2);
	sl_stats_inc(c2, SL_STAT_points_in);
	assert_int_equal(sl_stats_read_core(r, 2, &s), -EAGAIN);
	/* for sums: each counter as it is, marked as no consistent snapshot */
	memset(&s, 0, sizeof(s));
	assert_int_equal(sl_stats_read_core_sum(r, 2, &s), 1);
	assert_int_equal(s.counters[SL_STAT_points_in], 41);
	assert_true(s.seq & 1);
	assert_int_equal(sl_stats_read_core_sum(r, 4, &s), -EINVAL);
	sl_stats_end(c2);
	assert_int_equal(sl_stats_read_core(r, 2, &s), 0);
	assert_int_equal(s.counters[SL_STAT_points_in], 41);

	sl_stats_close(r);
	sl_stats_destroy(w, true);
	assert_int_equal(access(path, F_OK), -1);
}

static void patch_u32(uint32_t off, uint32_t v)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, sizeof(v), off), sizeof(v));
	close(fd);
}

static void test_rejects_bad_files(void **state)
{
	(void)state;
	struct sl_stats_reader *r;
	assert_int_equal(sl_stats_open(path, &r), -ENOENT);

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a stats segment, clearly not one at all, just some text", f);
	fclose(f);
	assert_int_equal(sl_stats_open(path, &r), -EPROTO);

	struct sl_stats_writer *w;
	assert_int_equal(sl_stats_create(path, 2, &w), 0);
	patch_u32(8, 99); /* version */
	assert_int_equal(sl_stats_open(path, &r), -EPROTO);
	patch_u32(8, 1);
	assert_int_equal(sl_stats_open(path, &r), 0);
	sl_stats_close(r);
	patch_u32(20, SL_STATS_N_COUNTERS + 1); /* a writer built with other counters */
	assert_int_equal(sl_stats_open(path, &r), -EPROTO);
	patch_u32(20, SL_STATS_N_COUNTERS);
	assert_int_equal(truncate(path, 4096), 0); /* size no longer matches the header */
	assert_int_equal(sl_stats_open(path, &r), -EPROTO);
	sl_stats_destroy(w, true);
	assert_int_equal(sl_stats_create(path, 0, &w), -EINVAL);
}

/* A live node's file is never replaced: a second creator gets -EBUSY, the probe names the
 * holder, and the file and its counters stay as they were. */
static void test_live_not_replaced(void **state)
{
	(void)state;
	struct sl_stats_writer *w1, *w2 = NULL;
	struct sl_stats_reader *r;
	int32_t pid = -1;
	assert_int_equal(sl_shm_file_probe(path, &pid), 0); /* absent */
	assert_int_equal(sl_stats_create(path, 1, &w1), 0);
	sl_stats_inc(sl_stats_core(w1, 0), SL_STAT_wal_appends);
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(sl_shm_file_probe(path, &pid), -EBUSY);
	assert_int_equal(pid, (int32_t)getpid());
	assert_int_equal(sl_stats_create(path, 3, &w2), -EBUSY);
	assert_null(w2);
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino == after.st_ino);
	assert_int_equal(sl_stats_open(path, &r), 0);
	assert_int_equal(sl_stats_n_cores(r), 1);
	sl_stats_close(r);
	/* no temporary file is left next to it */
	char tmp[sizeof(path) + 32];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
	sl_stats_destroy(w1, true);
	assert_int_equal(access(path, F_OK), -1);
}

/* A crashed node's file (nobody holds it any more) is replaced, and a reader of the old
 * file keeps a valid mapping. */
static void test_replace(void **state)
{
	(void)state;
	struct sl_stats_writer *w2;
	struct sl_stats_reader *r1, *r2;
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct sl_stats_writer *wc;
		if (sl_stats_create(path, 1, &wc) != 0)
			_exit(1);
		sl_stats_inc(sl_stats_core(wc, 0), SL_STAT_wal_appends);
		_exit(0); /* no destroy: the file stays, its lock goes with the process */
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	int32_t pid = -1;
	assert_int_equal(sl_shm_file_probe(path, &pid), 0);
	assert_int_equal(sl_stats_open(path, &r1), 0);
	assert_int_equal(sl_stats_create(path, 3, &w2), 0);
	struct sl_stats_snapshot s;
	assert_int_equal(sl_stats_read_core(r1, 0, &s), 0);
	assert_int_equal(s.counters[SL_STAT_wal_appends], 1);
	assert_int_equal(sl_stats_open(path, &r2), 0);
	assert_int_equal(sl_stats_n_cores(r2), 3);
	sl_stats_close(r1);
	sl_stats_close(r2);
	sl_stats_destroy(w2, true);
	assert_int_equal(access(path, F_OK), -1);
}

struct writer_arg {
	struct sl_stats_core *core;
	_Atomic int stop;
};

/* Lockstep invariants a reader must never see broken: points_in == points_applied,
 * acks_sent == histogram total, sum == acks_sent * LATENCY_NS. */
static void *writer_main(void *p)
{
	struct writer_arg *a = p;
	for (uint64_t i = 0; i < 200000000u && !atomic_load(&a->stop); i++) {
		sl_stats_begin(a->core);
		sl_stats_inc(a->core, SL_STAT_points_in);
		sl_stats_add(a->core, SL_STAT_wal_bytes, 7);
		sl_stats_inc(a->core, SL_STAT_points_applied);
		sl_stats_inc(a->core, SL_STAT_acks_sent);
		sl_stats_ack_latency(a->core, LATENCY_NS);
		sl_stats_end(a->core);
	}
	return NULL;
}

/* Child process: returns an exit code, 0 when every snapshot was consistent. */
static int reader_main(void)
{
	struct sl_stats_reader *r;
	if (sl_stats_open(path, &r) != 0)
		return 10;
	struct sl_stats_snapshot s, prev = {0};
	uint32_t ok = 0, changes = 0;
	for (uint32_t i = 0; i < 200000 && (ok < 20000 || changes < 100); i++) {
		int rc = sl_stats_read_core(r, 1, &s);
		if (rc == -EAGAIN)
			continue;
		if (rc != 0)
			return 11;
		ok++;
		uint64_t a = s.counters[SL_STAT_points_in];
		uint64_t hist_total = 0;
		for (int b = 0; b < SL_STATS_HIST_BUCKETS; b++)
			hist_total += s.ack_latency_hist[b];
		if (s.counters[SL_STAT_points_applied] != a || s.counters[SL_STAT_acks_sent] != a ||
		    s.counters[SL_STAT_wal_bytes] != 7 * a)
			return 12;
		if (hist_total != a || s.ack_latency_hist[11] != a ||
		    s.ack_latency_sum_ns != a * LATENCY_NS)
			return 13;
		if ((s.seq & 1) != 0 || s.seq < prev.seq || a < prev.counters[SL_STAT_points_in])
			return 14;
		if (a != prev.counters[SL_STAT_points_in])
			changes++;
		prev = s;
	}
	if (sl_stats_read_core(r, 0, &s) != 0 || s.counters[SL_STAT_points_in] != 0)
		return 15;
	sl_stats_close(r);
	return ok > 0 && changes > 0 ? 0 : 16;
}

static void test_cross_process_snapshots(void **state)
{
	(void)state;
	struct sl_stats_writer *w;
	assert_int_equal(sl_stats_create(path, 2, &w), 0);
	struct writer_arg arg = {.core = sl_stats_core(w, 1)};
	/* Fork before starting the writer thread: the child is single-threaded. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(reader_main());
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, writer_main, &arg), 0);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	atomic_store(&arg.stop, 1);
	pthread_join(t, NULL);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	sl_stats_destroy(w, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_and_buckets),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejects_bad_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_not_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cross_process_snapshots, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_wal.c - cmocka tests of the io_uring write-ahead log on real files in a temporary
 * directory: round trips across segment rolls, group commit, torn last writes vs damage
 * to durable records (flips anywhere, clean stop or not; strict and salvage), the
 * clean-shutdown record, old formats, injected disk errors, retention and bad inputs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "wal.h"

#define MAX_LEN 700u

struct fx {
	char dir[64];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/sl-wal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- deterministic records: payload and type follow from the lsn ---- */

static uint32_t len_for(uint64_t lsn) { return (uint32_t)((lsn * 37u) % MAX_LEN); }

static uint16_t type_for(uint64_t lsn) { return (uint16_t)(lsn % 7u); }

static void fill(uint8_t *p, uint64_t lsn, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(lsn * 31u + i);
}

struct got {
	uint64_t n;
	uint64_t first;
	uint64_t last;
	bool bad; /* a record did not match what was appended */
};

static int collect(void *arg, uint64_t lsn, uint16_t type, const uint8_t *payload, uint32_t len)
{
	struct got *g = arg;
	uint8_t want[MAX_LEN];
	if (g->n == 0)
		g->first = lsn;
	else if (lsn != g->last + 1)
		g->bad = true;
	fill(want, lsn, len);
	if (len != len_for(lsn) || type != type_for(lsn) || memcmp(want, payload, len) != 0)
		g->bad = true;
	g->last = lsn;
	g->n++;
	return 0;
}

static void cfg_small(struct sl_wal_config *c, const char *dir)
{
	sl_wal_config_default(c);
	c->dir = dir;
	c->segment_bytes = 16384;
	c->buffer_bytes = 8192;
	c->ring_entries = 8;
}

/* One segment big enough for every test that corrupts a file. */
static void cfg_one_segment(struct sl_wal_config *c, const char *dir)
{
	cfg_small(c, dir);
	c->segment_bytes = 1 << 20;
}

/* Two blocks per segment: every synced small record fills a block. */
static void cfg_two_blocks(struct sl_wal_config *c, const char *dir)
{
	cfg_small(c, dir);
	c->segment_bytes = 8192;
	c->buffer_bytes = 4096;
}

/* Opens and recovers; the recovered records land in g. */
static struct sl_wal *open_recover(const struct sl_wal_config *c, struct got *g,
				   struct sl_wal_recovery *rep)
{
	struct sl_wal *w = NULL;
	assert_int_equal(sl_wal_open(c, &w), 0);
	memset(g, 0, sizeof(*g));
	assert_int_equal(sl_wal_recover(w, collect, g, rep), 0);
	assert_false(g->bad);
	return w;
}

/* Appends the records following the last lsn, polling through -ENOBUFS. */
static void append_n(struct sl_wal *w, uint32_t n)
{
	uint8_t buf[MAX_LEN];
	for (uint32_t i = 0; i < n; i++) {
		uint64_t lsn = sl_wal_last_lsn(w) + 1, got = 0;
		uint32_t len = len_for(lsn);
		fill(buf, lsn, len);
		int rc;
		for (int tries = 0;
		     (rc = sl_wal_append(w, type_for(lsn), buf, len, &got)) == -ENOBUFS; tries++) {
			assert_true(tries < 1000000);
			assert_int_equal(sl_wal_poll(w), 0);
			sched_yield();
		}
		assert_int_equal(rc, 0);
		assert_int_equal(got, lsn);
	}
}

/* Appends n records and waits for them; returns the bytes written so far. */
static uint64_t append_synced(struct sl_wal *w, uint32_t n)
{
	append_n(w, n);
	assert_int_equal(sl_wal_sync(w), 0);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	return s.bytes_written;
}

/* Reopens, checks the log holds exactly records 1..n and recovery cut nothing. */
static void expect_records(const struct sl_wal_config *c, uint64_t n)
{
	struct got g;
	struct sl_wal_recovery rep;
	struct sl_wal *w = open_recover(c, &g, &rep);
	assert_int_equal(g.n, n);
	assert_int_equal(g.last, n);
	assert_false(rep.torn_tail_cut);
	assert_false(rep.corruption);
	sl_wal_close(w);
}

/* Strict recovery refuses and replays nothing; returns the WAL for more checks. */
static struct sl_wal *refused(const struct sl_wal_config *c, struct sl_wal_recovery *rep)
{
	struct sl_wal *w = NULL;
	struct got g = {0};
	assert_int_equal(sl_wal_open(c, &w), 0);
	assert_int_equal(sl_wal_recover(w, collect, &g, rep), -EBADMSG);
	assert_int_equal(g.n, 0);
	assert_true(rep->corruption);
	assert_false(rep->salvaged);
	assert_false(rep->torn_tail_cut);
	return w;
}

static void seg_path(char *out, size_t n, const char *dir, uint64_t lsn)
{
	snprintf(out, n, "%s/wal-%016" PRIx64 ".log", dir, lsn);
}

static bool seg_exists(const char *dir, uint64_t lsn)
{
	char p[128];
	seg_path(p, sizeof(p), dir, lsn);
	return access(p, F_OK) == 0;
}

static int count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "wal-", 4) == 0;
	closedir(d);
	return n;
}

static void write_at(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* ---- tests ---- */

static void round_trip(const char *dir, bool no_direct)
{
	struct sl_wal_config c;
	cfg_small(&c, dir);
	c.no_direct = no_direct;
	struct got g;
	struct sl_wal_recovery rep;
	struct sl_wal *w = open_recover(&c, &g, &rep);
	assert_int_equal(g.n, 0);
	assert_int_equal(rep.first_lsn, 1);
	assert_int_equal(rep.last_lsn, 0);
	for (int i = 0; i < 60; i++) {
		append_n(w, 5);
		assert_true(sl_wal_pending_bytes(w) > 0 || sl_wal_last_lsn(w) > 0);
		assert_int_equal(sl_wal_flush(w), 0);
		assert_int_equal(sl_wal_poll(w), 0);
		assert_true(sl_wal_durable_lsn(w) <= sl_wal_last_lsn(w));
	}
	assert_int_equal(sl_wal_sync(w), 0);
	assert_int_equal(sl_wal_durable_lsn(w), 300);
	assert_int_equal(sl_wal_pending_bytes(w), 0);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.appends, 300);
	assert_int_equal(s.bytes_written % 4096, 0);
	assert_true(s.segments_created >= 4);
	if (no_direct)
		assert_false(s.direct_io);
	sl_wal_close(w);
	assert_true(count_segments(dir) >= 4);

	w = open_recover(&c, &g, &rep);
	assert_int_equal(g.n, 300);
	assert_int_equal(g.first, 1);
	assert_int_equal(g.last, 300);
	assert_false(rep.torn_tail_cut);
	assert_false(rep.corruption);
	assert_int_equal(rep.last_lsn, 300);
	assert_int_equal(sl_wal_first_lsn(w), 1);
	append_n(w, 7);
	assert_int_equal(sl_wal_sync(w), 0);
	sl_wal_close(w);

	w = open_recover(&c, &g, &rep);
	assert_int_equal(g.n, 307);
	assert_int_equal(g.last, 307);
	sl_wal_close(w);
}

static void test_round_trip_direct(void **state) { round_trip(((struct fx *)*state)->dir, false); }

static void test_round_trip_buffered(void **state) { round_trip(((struct fx *)*state)->dir, true); }

/* An empty WAL with record 1 flushed and not yet polled, so its flush stays in flight. */
static struct sl_wal *open_one_in_flight(struct sl_wal_config *c, const char *dir,
					 uint32_t buffer_bytes)
{
	cfg_one_segment(c, dir);
	c->buffer_bytes = buffer_bytes;
	struct got g;
	struct sl_wal *w = open_recover(c, &g, NULL);
	append_n(w, 1);
	assert_int_equal(sl_wal_flush(w), 0);
	return w;
}

static void test_group_commit(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	struct sl_wal *w = open_one_in_flight(&c, f->dir, 65536);
	/* Not polled: the first flush stays in flight, so these all wait for one write. */
	for (int i = 0; i < 50; i++) {
		append_n(w, 1);
		assert_int_equal(sl_wal_flush(w), 0);
	}
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.flush_calls, 51);
	assert_int_equal(s.flushes_submitted, 1);
	assert_int_equal(s.fsyncs, 0);
	assert_int_equal(s.durable_lsn, 0);
	assert_true(sl_wal_pending_bytes(w) > 0);
	/* Polling alone submits the waiting buffer when the first flush completes. */
	for (int i = 0; sl_wal_durable_lsn(w) < 51; i++) {
		assert_true(i < 10000000);
		assert_int_equal(sl_wal_poll(w), 0);
		sched_yield();
	}
	sl_wal_stats(w, &s);
	assert_int_equal(s.flushes_submitted, 2);
	assert_int_equal(s.flushes_durable, 2);
	assert_int_equal(s.fsyncs, 2);
	assert_true(s.fsyncs < s.flush_calls);
	assert_int_equal(s.durable_lsn, 51);
	sl_wal_close(w);
	expect_records(&c, 51);
}

/* sl_wal_room: records that fit it (each counted with its block gap) are taken without
 * -ENOBUFS while a flush is in flight, and it says so once they would not. */
static void test_room_predicts_enobufs(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	struct sl_wal *w = open_one_in_flight(&c, f->dir, 4096);
	uint8_t buf[MAX_LEN];
	int taken = 0;
	for (;;) {
		uint64_t lsn = sl_wal_last_lsn(w) + 1;
		uint32_t worst = (uint32_t)SL_WAL_RECORD_BYTES(len_for(lsn)) + SL_WAL_HDR_BYTES;
		if (sl_wal_room(w) < worst)
			break;
		assert_true(taken < 1000);
		fill(buf, lsn, len_for(lsn));
		assert_int_equal(sl_wal_append(w, type_for(lsn), buf, len_for(lsn), NULL), 0);
		taken++;
	}
	assert_true(taken > 0);
	assert_true(sl_wal_room(w) < 4096);
	assert_int_equal(sl_wal_sync(w), 0);
	assert_int_equal(sl_wal_room(w), 4096); /* nothing in flight: a whole buffer */
	uint64_t last = sl_wal_last_lsn(w);
	sl_wal_close(w);
	expect_records(&c, last);
}

static void test_enobufs_and_msgsize(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	struct sl_wal *w = open_one_in_flight(&c, f->dir, 4096);
	uint8_t big[4096] = {0};
	assert_int_equal(sl_wal_append(w, 1, big, 4096 - SL_WAL_HDR_BYTES + 1, NULL), -EMSGSIZE);
	assert_int_equal(sl_wal_append(w, 1, big, UINT32_MAX, NULL), -EMSGSIZE);
	/* The other buffer fills while the first is in flight (never polled here). */
	uint8_t buf[MAX_LEN];
	int rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++) {
		uint64_t lsn = sl_wal_last_lsn(w) + 1;
		fill(buf, lsn, len_for(lsn));
		rc = sl_wal_append(w, type_for(lsn), buf, len_for(lsn), NULL);
	}
	assert_int_equal(rc, -ENOBUFS);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.enobufs, 1);
	append_n(w, 20); /* polls through -ENOBUFS */
	assert_int_equal(sl_wal_sync(w), 0);
	uint64_t last = sl_wal_last_lsn(w);
	sl_wal_close(w);
	expect_records(&c, last);
}

/* Recovery after a torn tail of segment 1 at end_off keeps records 1..n, truncates the
 * file there, and appends continue. */
static void expect_torn_cut(const struct sl_wal_config *c, uint64_t n, uint64_t end_off,
			    enum sl_wal_bad reason)
{
	struct got g;
	struct sl_wal_recovery rep;
	struct sl_wal *w = open_recover(c, &g, &rep);
	assert_int_equal(g.n, n);
	assert_true(rep.torn_tail_cut);
	assert_false(rep.corruption);
	assert_int_equal(rep.reason, reason);
	assert_int_equal(rep.bad_segment_lsn, 1);
	assert_int_equal(rep.bad_offset, end_off);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.torn_tail_cuts, 1);
	assert_int_equal(sl_wal_last_lsn(w), n);
	char path[128];
	struct stat st;
	seg_path(path, sizeof(path), c->dir, 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, (off_t)end_off);
	append_synced(w, 4);
	sl_wal_close(w);
	expect_records(c, n + 4);
}

/* Two synced flushes in one segment: records 1-10, then 11-13 at the returned offset. */
static uint64_t ten_then_three(struct sl_wal_config *c, const char *dir, char *path, size_t n)
{
	cfg_one_segment(c, dir);
	struct got g;
	struct sl_wal *w = open_recover(c, &g, NULL);
	uint64_t end = append_synced(w, 10);
	append_synced(w, 3);
	sl_wal_close(w);
	seg_path(path, n, dir, 1);
	return end;
}

/* Ten synced records, then the last flush (records 11-13) is torn: the file ends inside
 * record 11 (a write extending it), or the sector with record 11's header never reached
 * the disk (zeros) while the rest of the flush did. Both are cut. */
static void test_torn_tails(void **state)
{
	struct fx *f = *state;
	for (int zeros = 0; zeros < 2; zeros++) {
		char dir[96];
		snprintf(dir, sizeof(dir), "%s/case%d", f->dir, zeros);
		struct sl_wal_config c;
		char path[128];
		uint64_t end = ten_then_three(&c, dir, path, sizeof(path));
		if (!zeros) {
			assert_int_equal(truncate(path, (off_t)(end + 100)), 0); /* in record 11 */
			expect_torn_cut(&c, 10, end, SL_WAL_BAD_LENGTH);
			continue;
		}
		static const uint8_t sector[SL_WAL_SECTOR_BYTES];
		write_at(path, end, sector, sizeof(sector));
		expect_torn_cut(&c, 10, end, SL_WAL_BAD_TAIL);
	}
}

/* Garbage over the last flush is not what a torn write leaves (each sector as written
 * or zeros): every sector of record 11 was written and is wrong, so it is damage. */
static void test_garbage_last_flush_is_damage(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	char path[128];
	uint64_t end = ten_then_three(&c, f->dir, path, sizeof(path));
	uint8_t junk[6000];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7u + 3u);
	write_at(path, end, junk, sizeof(junk));
	struct sl_wal_recovery rep;
	struct sl_wal *w = refused(&c, &rep);
	assert_int_equal(rep.reason, SL_WAL_BAD_MAGIC);
	assert_int_equal(rep.evidence, SL_WAL_EV_WRITTEN);
	assert_int_equal(rep.bad_offset, end);
	assert_int_equal(rep.risk_first_lsn, 11);
	sl_wal_close(w);
}

/* Three flushes of four small records: lsn 1-4 at offset 0, 5-8 at 4096, 9-12 at 8192;
 * then damages segment 1 by writing n bytes at off. */
static void three_blocks_damaged(const struct sl_wal_config *c, uint64_t off, const void *p,
				 size_t n)
{
	struct got g;
	struct sl_wal *w = open_recover(c, &g, NULL);
	for (int b = 0; b < 3; b++)
		assert_int_equal(append_synced(w, 4), 4096u * (b + 1));
	sl_wal_close(w);
	char path[128];
	seg_path(path, sizeof(path), c->dir, 1);
	write_at(path, off, p, n);
}

/* Strict recovery refuses, replays nothing, and says where. */
static void expect_badmsg(const struct sl_wal_config *c, enum sl_wal_bad reason)
{
	struct sl_wal_recovery rep;
	struct sl_wal *w = refused(c, &rep);
	assert_int_equal(rep.reason, reason);
	assert_int_equal(rep.bad_segment_lsn, 1);
	assert_int_equal(rep.bad_offset, 4096);
	assert_string_equal(rep.bad_segment, "wal-0000000000000001.log");
	assert_int_equal(sl_wal_append(w, 1, NULL, 0, NULL), -EINVAL);
	sl_wal_close(w);
}

static void test_corruption_strict_and_salvage(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_one_segment(&c, f->dir);
	uint8_t flip = 0xee;
	three_blocks_damaged(&c, 4096 + SL_WAL_HDR_BYTES + 10, &flip, 1); /* lsn 5's payload */
	expect_badmsg(&c, SL_WAL_BAD_CRC);

	c.salvage = true;
	struct got g;
	struct sl_wal_recovery rep;
	struct sl_wal *w = open_recover(&c, &g, &rep);
	assert_int_equal(g.n, 4);
	assert_true(rep.corruption);
	assert_true(rep.salvaged);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.salvage_cuts, 1);
	append_synced(w, 1);
	assert_int_equal(sl_wal_last_lsn(w), 5);
	sl_wal_close(w);
	c.salvage = false;
	expect_records(&c, 5);
}

/* A lost block in the middle (zeros, as after a lost write) is not preallocated space:
 * valid records follow it. */
static void test_zero_hole_is_corruption(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_one_segment(&c, f->dir);
	static const uint8_t zeros[4096];
	three_blocks_damaged(&c, 4096, zeros, sizeof(zeros));
	expect_badmsg(&c, SL_WAL_BAD_HOLE);
}

/* A valid record with the wrong lsn: block 0 (lsn 1-4) copied where lsn 5 belongs. */
static void test_lsn_gap_is_corruption(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_one_segment(&c, f->dir);
	uint8_t block[4096];
	three_blocks_damaged(&c, 0, block, 0);
	char path[128];
	seg_path(path, sizeof(path), f->dir, 1);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, block, sizeof(block), 0), (ssize_t)sizeof(block));
	close(fd);
	write_at(path, 4096, block, sizeof(block));
	expect_badmsg(&c, SL_WAL_BAD_LSN);
}

/* A failed flush: durable lsn stays, the error is sticky, a restart replays exactly
 * the durable records and appends continue after them. */
static void check_failed_flush(const struct sl_wal_config *c, enum sl_wal_op op, int err,
			       uint32_t after, uint32_t batch)
{
	struct got g;
	struct sl_wal *w = open_recover(c, &g, NULL);
	assert_int_equal(sl_wal_inject_fault(w, op, err, after), 0);
	for (uint32_t i = 0; i < after; i++)
		append_synced(w, batch);
	uint64_t durable = sl_wal_durable_lsn(w);
	assert_int_equal(durable, (uint64_t)after * batch);
	append_n(w, batch);
	assert_int_equal(sl_wal_sync(w), err);
	assert_int_equal(sl_wal_durable_lsn(w), durable);
	assert_int_equal(sl_wal_poll(w), err);
	assert_int_equal(sl_wal_append(w, 1, NULL, 0, NULL), -EIO);
	assert_int_equal(sl_wal_flush(w), -EIO);
	assert_int_equal(sl_wal_poll(w), err);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_true(s.failed);
	assert_int_equal(s.error, err);
	assert_int_equal(s.faults_injected, 1);
	assert_int_equal(op == SL_WAL_OP_WRITE ? s.write_errors : s.fsync_errors, 1);
	assert_int_equal(s.durable_lsn, durable);
	sl_wal_close(w);

	struct sl_wal_recovery rep;
	w = open_recover(c, &g, &rep);
	assert_int_equal(g.n, durable);
	assert_int_equal(rep.last_lsn, durable);
	append_synced(w, 2);
	assert_int_equal(sl_wal_last_lsn(w), durable + 2);
	sl_wal_close(w);
	expect_records(c, durable + 2);
}

/* -ENOSPC on the third write; -EIO on the third fdatasync, whose flush opened a new
 * segment (two blocks per segment, a block per flush); -EIO on the very first one. */
static void test_injected_faults(void **state)
{
	struct fx *f = *state;
	static const struct {
		enum sl_wal_op op;
		int err;
		uint32_t after, batch;
		bool two_blocks;
	} cases[] = {
	    {SL_WAL_OP_WRITE, -ENOSPC, 2, 5, false},
	    {SL_WAL_OP_FSYNC, -EIO, 2, 1, true},
	    {SL_WAL_OP_FSYNC, -EIO, 0, 3, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dir[96];
		snprintf(dir, sizeof(dir), "%s/case%zu", f->dir, i);
		struct sl_wal_config c;
		if (cases[i].two_blocks)
			cfg_two_blocks(&c, dir);
		else
			cfg_small(&c, dir);
		check_failed_flush(&c, cases[i].op, cases[i].err, cases[i].after, cases[i].batch);
		if (cases[i].two_blocks) { /* 1, and 3 recreated by the appends after reopen */
			assert_true(seg_exists(dir, 1));
			assert_true(seg_exists(dir, 3));
			assert_int_equal(count_segments(dir), 2);
		}
	}
}

/* Segment rolls: the next segment is prepared ahead (spare renamed at the roll, directory
 * fsync in the flush's chain); many small segments, records across the rolls, a spare
 * left by a crash: every record comes back, nothing else does. */
static void test_roll_prepared(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_two_blocks(&c, f->dir);
	struct got g;
	struct sl_wal *w = open_recover(&c, &g, NULL);
	for (int i = 0; i < 40; i++)
		append_synced(w, 1); /* a block each: a roll every second flush */
	append_synced(w, 9);         /* records spanning blocks across a roll */
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_true(s.segments_created >= 20);
	/* the first roll after open finds no spare yet; later ones take it */
	assert_true(s.segments_prepared >= s.segments_created / 2);
	assert_int_equal(s.spare_errors, 0);
	sl_wal_close(w);
	char spare[128];
	snprintf(spare, sizeof(spare), "%s/.wal-spare", f->dir);
	assert_int_equal(access(spare, F_OK), -1); /* close removes it */
	int segs = count_segments(f->dir);
	/* a crash between the spare's creation and its rename leaves it: never replayed */
	int fd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage!", 8), 8);
	close(fd);
	expect_records(&c, 49);
	assert_int_equal(count_segments(f->dir), segs);
}

/* A link of a roll's chain fails (the spare's rename, the directory's fsync): the flush is
 * not durable, the new segment is removed, a restart replays exactly the durable records. */
static void fault_at_roll(const char *dir, enum sl_wal_op op, uint32_t after)
{
	struct sl_wal_config c;
	cfg_two_blocks(&c, dir);
	struct got g;
	struct sl_wal *w = open_recover(&c, &g, NULL);
	assert_int_equal(sl_wal_inject_fault(w, op, -EIO, after), 0);
	int rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++) {
		append_n(w, 1);
		rc = sl_wal_sync(w);
	}
	assert_int_equal(rc, -EIO);
	uint64_t durable = sl_wal_durable_lsn(w);
	assert_int_equal(sl_wal_last_lsn(w), durable + 1);
	assert_true(durable >= 2);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.faults_injected, 1);
	assert_true(s.failed);
	assert_int_equal(sl_wal_append(w, 1, NULL, 0, NULL), -EIO);
	sl_wal_close(w);
	/* the failed record opened its segment, which holds nothing durable */
	assert_false(seg_exists(dir, durable + 1));
	w = open_recover(&c, &g, NULL);
	assert_int_equal(g.n, durable);
	append_synced(w, 2);
	sl_wal_close(w);
	expect_records(&c, durable + 2);
}

static void test_roll_chain_faults(void **state)
{
	struct fx *f = *state;
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/dirsync", f->dir);
	fault_at_roll(dir, SL_WAL_OP_DIRSYNC, 2);
	snprintf(dir, sizeof(dir), "%s/rename", f->dir);
	fault_at_roll(dir, SL_WAL_OP_RENAME, 1);
}

static void test_release(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_two_blocks(&c, f->dir);
	struct got g;
	struct sl_wal *w = open_recover(&c, &g, NULL);
	assert_int_equal(sl_wal_release(w, 100), 0); /* nothing yet */
	for (int i = 0; i < 10; i++)
		append_synced(w, 1);
	assert_int_equal(count_segments(f->dir), 5); /* 1, 3, 5, 7, 9 */
	assert_int_equal(sl_wal_release(w, 3), 0);   /* segment 3 holds 4 */
	assert_int_equal(count_segments(f->dir), 4);
	assert_false(seg_exists(f->dir, 1));
	assert_int_equal(sl_wal_first_lsn(w), 3);
	assert_int_equal(sl_wal_release(w, 4), 0);
	assert_int_equal(sl_wal_first_lsn(w), 5);
	assert_int_equal(sl_wal_release(w, 1000), 0); /* never the active segment */
	assert_int_equal(count_segments(f->dir), 1);
	assert_true(seg_exists(f->dir, 9));
	assert_int_equal(sl_wal_first_lsn(w), 9);
	struct sl_wal_stats s;
	sl_wal_stats(w, &s);
	assert_int_equal(s.segments_deleted, 4);
	sl_wal_close(w);

	struct sl_wal_recovery rep;
	w = open_recover(&c, &g, &rep);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.first, 9);
	assert_int_equal(rep.first_lsn, 9);
	assert_int_equal(sl_wal_first_lsn(w), 9);
	append_n(w, 1);
	assert_int_equal(sl_wal_last_lsn(w), 11);
	assert_int_equal(sl_wal_sync(w), 0);
	sl_wal_close(w);
}

static void test_bad_inputs(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	struct sl_wal *w = NULL, *w2 = NULL;
	char nested[128];
	snprintf(nested, sizeof(nested), "%s/a/b/wal", f->dir);
	cfg_small(&c, nested);
	c.segment_bytes = 4096; /* smaller than a buffer */
	assert_int_equal(sl_wal_open(&c, &w), -EINVAL);
	cfg_small(&c, NULL);
	assert_int_equal(sl_wal_open(&c, &w), -EINVAL);
	cfg_small(&c, nested);
	c.ring_entries = 2;
	assert_int_equal(sl_wal_open(&c, &w), -EINVAL);

	cfg_small(&c, nested);
	assert_int_equal(sl_wal_open(&c, &w), 0); /* mkdir -p */
	assert_int_equal(sl_wal_open(&c, &w2), -EBUSY);
	assert_int_equal(sl_wal_append(w, 1, NULL, 0, NULL), -EINVAL); /* before recovery */
	assert_int_equal(sl_wal_flush(w), -EINVAL);
	assert_int_equal(sl_wal_release(w, 1), -EINVAL);
	assert_int_equal(sl_wal_recover(w, NULL, NULL, NULL), 0);
	assert_int_equal(sl_wal_recover(w, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(sl_wal_append(w, 1, NULL, 5, NULL), -EINVAL);
	assert_int_equal(sl_wal_inject_fault(w, SL_WAL_OP_WRITE, 0, 0), -EINVAL);
	assert_int_equal(sl_wal_inject_fault(w, (enum sl_wal_op)7, -EIO, 0), -EINVAL);
	uint64_t lsn = 0;
	assert_int_equal(sl_wal_append(w, 9, NULL, 0, &lsn), 0); /* empty payload is fine */
	assert_int_equal(lsn, 1);
	static uint8_t max[8192 - SL_WAL_HDR_BYTES];
	assert_int_equal(sl_wal_append(w, 9, max, sizeof(max), &lsn), 0);
	assert_int_equal(sl_wal_append(w, 9, max, sizeof(max) + 1, &lsn), -EMSGSIZE);
	assert_int_equal(sl_wal_sync(w), 0);
	assert_int_equal(sl_wal_durable_lsn(w), 2);
	sl_wal_close(w);

	assert_int_equal(sl_wal_open(&c, &w), 0);
	struct sl_wal_recovery rep;
	assert_int_equal(sl_wal_recover(w, NULL, NULL, &rep), 0);
	assert_int_equal(rep.records, 2);
	sl_wal_close(w);
	sl_wal_close(NULL);
}

/* ---- a torn multi-block last flush vs. damage followed by a later flush ---- */

static int count_cb(void *arg, uint64_t lsn, uint16_t type, const uint8_t *payload, uint32_t len)
{
	(void)lsn;
	(void)type;
	(void)payload;
	(void)len;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Block-sized records: flush 1 = lsn 1 (block 0), flush 2 = lsn 2-4 (blocks 1-3), then
 * `extra` more synced flushes of one block each. Block 1 is then lost (zeros). */
static void block_flushes_lose_block1(const char *dir, int extra, uint64_t *recovered, int *rc,
				      struct sl_wal_recovery *rep)
{
	struct sl_wal_config c;
	cfg_small(&c, dir);
	c.segment_bytes = 1 << 20;
	c.buffer_bytes = 16384;
	static uint8_t payload[4096 - SL_WAL_HDR_BYTES];
	struct sl_wal *w = NULL;
	uint64_t n = 0;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	assert_int_equal(sl_wal_recover(w, count_cb, &n, NULL), 0);
	assert_int_equal(sl_wal_append(w, 1, payload, sizeof(payload), NULL), 0);
	assert_int_equal(sl_wal_sync(w), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl_wal_append(w, 1, payload, sizeof(payload), NULL), 0);
	assert_int_equal(sl_wal_sync(w), 0);
	for (int i = 0; i < extra; i++) {
		assert_int_equal(sl_wal_append(w, 1, payload, sizeof(payload), NULL), 0);
		assert_int_equal(sl_wal_sync(w), 0);
	}
	sl_wal_close(w);
	char path[128];
	seg_path(path, sizeof(path), dir, 1);
	static const uint8_t zeros[4096];
	write_at(path, 4096, zeros, sizeof(zeros));
	*recovered = 0;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	*rc = sl_wal_recover(w, count_cb, recovered, rep);
	sl_wal_close(w);
}

static void test_torn_multiblock_flush(void **state)
{
	struct fx *f = *state;
	uint64_t n;
	int rc;
	struct sl_wal_recovery rep;
	/* Only the last flush lost its first block: later blocks of the same flush survive,
	 * as after a crash mid-write. That is a torn tail: cut, keep flush 1. */
	block_flushes_lose_block1(f->dir, 0, &n, &rc, &rep);
	assert_int_equal(rc, 0);
	assert_true(rep.torn_tail_cut);
	assert_false(rep.corruption);
	assert_int_equal(n, 1);
	assert_int_equal(rep.last_lsn, 1);
}

static void test_damage_before_later_flush(void **state)
{
	struct fx *f = *state;
	uint64_t n;
	int rc;
	struct sl_wal_recovery rep;
	/* The same loss with a later flush after it: that flush was written only after the
	 * damaged one was durable, so this is corruption, never silently cut. */
	block_flushes_lose_block1(f->dir, 1, &n, &rc, &rep);
	assert_int_equal(rc, -EBADMSG);
	assert_true(rep.corruption);
	assert_int_equal(n, 0);
}

/* ---- damage to durable records vs. a torn last write (format v3) ---- */

static void read_file(const char *path, uint8_t **p, size_t *n)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	*n = (size_t)st.st_size;
	*p = malloc(*n ? *n : 1);
	assert_non_null(*p);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, *p, *n, 0), (ssize_t)*n);
	close(fd);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The offset of a record in segment 1, found by walking the headers the way a reader of
 * docs/wal.md would: kind 1 = data (bit 7 a flag), 3 = clean-shutdown record. */
static uint64_t record_offset(const char *dir, uint8_t kind, uint64_t lsn)
{
	char path[128];
	seg_path(path, sizeof(path), dir, 1);
	uint8_t *p;
	size_t n;
	read_file(path, &p, &n);
	uint64_t off = 0, found = UINT64_MAX;
	for (int i = 0; i < 100000 && off + SL_WAL_HDR_BYTES <= n; i++) {
		if (SL_WAL_BLOCK_BYTES - off % SL_WAL_BLOCK_BYTES < SL_WAL_HDR_BYTES)
			off += SL_WAL_BLOCK_BYTES - off % SL_WAL_BLOCK_BYTES;
		if (le32(p + off) != 0x4c574c53u)
			break;
		if ((p[off + 5] & 0x7f) == kind && le64(p + off + 16) == lsn) {
			found = off;
			break;
		}
		off += SL_WAL_RECORD_BYTES(le32(p + off + 8));
	}
	free(p);
	assert_true(found != UINT64_MAX);
	return found;
}

static void flip_byte(const char *dir, uint64_t off)
{
	char path[128];
	seg_path(path, sizeof(path), dir, 1);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* Three synced flushes: lsn 1-4, 5-8, 9-12, then a clean stop (clean-shutdown record)
 * or none (as a node killed after its last acknowledgement). */
static void twelve_records(const struct sl_wal_config *c, bool clean)
{
	struct got g;
	struct sl_wal *w = open_recover(c, &g, NULL);
	for (int b = 0; b < 3; b++)
		append_synced(w, 4);
	if (clean)
		assert_int_equal(sl_wal_shutdown(w), 0);
	sl_wal_close(w);
}

static void expect_damage(const struct sl_wal_config *c, uint64_t off, enum sl_wal_bad reason,
			  enum sl_wal_evidence ev, uint64_t risk_first, uint64_t risk_last)
{
	struct sl_wal_recovery rep;
	struct sl_wal *w = refused(c, &rep);
	assert_int_equal(rep.reason, reason);
	assert_int_equal(rep.evidence, ev);
	assert_int_equal(rep.bad_offset, off);
	assert_int_equal(rep.risk_first_lsn, risk_first);
	assert_int_equal(rep.risk_last_lsn, risk_last);
	char msg[512], want[64];
	sl_wal_explain(c->dir, -EBADMSG, &rep, msg, sizeof(msg));
	snprintf(want, sizeof(want), "wal-0000000000000001.log offset %" PRIu64 ":", off);
	assert_non_null(strstr(msg, want));
	if (risk_last)
		snprintf(want, sizeof(want), "lsn %" PRIu64 " to %" PRIu64 " at risk", risk_first,
			 risk_last);
	else
		snprintf(want, sizeof(want), "lsn %" PRIu64 " on at risk", risk_first);
	assert_non_null(strstr(msg, want));
	sl_wal_close(w);
}

/* One flipped byte in the first, a middle, the last record, and the first record of the
 * last flush; after a clean stop and without one (killed after the last acknowledgement).
 * Every one is damage to a durable record: refused, with the lsns at risk. Before format
 * 3, flips in the last flush were cut as a torn tail and acknowledged records lost. */
static void test_flip_matrix(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint64_t lsn;
		bool header; /* flip in the header's lsn field instead of the payload */
	} flips[] = {{1, false}, {6, false}, {12, false}, {9, false}, {12, true}, {9, true}};
	for (int clean = 0; clean < 2; clean++) {
		for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
			char dir[96];
			snprintf(dir, sizeof(dir), "%s/c%d-%zu", f->dir, clean, i);
			struct sl_wal_config c;
			cfg_one_segment(&c, dir);
			twelve_records(&c, clean);
			uint64_t lsn = flips[i].lsn, off = record_offset(dir, 1, lsn);
			flip_byte(dir, off + (flips[i].header ? 16 : SL_WAL_HDR_BYTES + 5));
			bool last_flush = lsn >= 9;
			enum sl_wal_evidence ev = clean || !last_flush ? SL_WAL_EV_LATER_FLUSH
								       : SL_WAL_EV_WRITTEN;
			/* A bad header hides the record's length: the rest of its block is
			 * unreadable, so with no later flush the end of the range is unknown. */
			uint64_t last = !clean && last_flush && flips[i].header ? 0 : 12;
			expect_damage(&c, off, SL_WAL_BAD_CRC, ev, lsn, last);
			/* salvage keeps what precedes the damage */
			c.salvage = true;
			struct got g;
			struct sl_wal_recovery rep;
			struct sl_wal *w = open_recover(&c, &g, &rep);
			assert_true(rep.salvaged);
			assert_int_equal(g.n, lsn - 1);
			sl_wal_close(w);
		}
	}
}

/* A last flush that never fully reached the disk: one sector inside record 5 (2000
 * bytes, flush 2) reads as zeros. Killed: a torn tail, cut, records 1-4 kept. After a
 * clean stop the shutdown record proves flush 2 was durable: damage. */
static void test_torn_sector_vs_clean_stop(void **state)
{
	struct fx *f = *state;
	for (int clean = 0; clean < 2; clean++) {
		char dir[96];
		snprintf(dir, sizeof(dir), "%s/c%d", f->dir, clean);
		struct sl_wal_config c;
		cfg_one_segment(&c, dir);
		struct got g;
		struct sl_wal *w = open_recover(&c, &g, NULL);
		append_synced(w, 4);
		uint8_t big[2000];
		memset(big, 0xa5, sizeof(big));
		assert_int_equal(sl_wal_append(w, 1, big, sizeof(big), NULL), 0);
		assert_int_equal(sl_wal_sync(w), 0);
		if (clean)
			assert_int_equal(sl_wal_shutdown(w), 0);
		sl_wal_close(w);
		char path[128];
		seg_path(path, sizeof(path), dir, 1);
		static const uint8_t sector[SL_WAL_SECTOR_BYTES];
		write_at(path, 4096 + 1024, sector, sizeof(sector));
		if (clean) {
			expect_damage(&c, 4096, SL_WAL_BAD_CRC, SL_WAL_EV_LATER_FLUSH, 5, 5);
			continue;
		}
		struct sl_wal_recovery rep;
		w = open_recover(&c, &g, &rep);
		assert_true(rep.torn_tail_cut);
		assert_false(rep.corruption);
		assert_int_equal(rep.reason, SL_WAL_BAD_CRC);
		assert_int_equal(rep.risk_first_lsn, 5);
		assert_int_equal(g.n, 4);
		append_synced(w, 1);
		sl_wal_close(w);
	}
}

/* A payload holding a whole sector of zeros is flagged when written: such a record's
 * damage cannot be told from a torn write by its sectors, so without a later flush it
 * is refused (ambiguous), never cut. Intact, it reads back normally. */
static void test_zero_sector_payload(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_one_segment(&c, f->dir);
	struct got g;
	struct sl_wal *w = open_recover(&c, &g, NULL);
	append_synced(w, 4);
	uint8_t big[2000];
	memset(big, 0x5a, sizeof(big));
	memset(big + 600, 0, 1100);
	assert_int_equal(sl_wal_append(w, 1, big, sizeof(big), NULL), 0);
	assert_int_equal(sl_wal_sync(w), 0);
	sl_wal_close(w);
	uint64_t n = 0;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	assert_int_equal(sl_wal_recover(w, count_cb, &n, NULL), 0);
	assert_int_equal(n, 5);
	sl_wal_close(w);
	char path[128];
	seg_path(path, sizeof(path), f->dir, 1);
	uint8_t kind = 0;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &kind, 1, 4096 + 5), 1);
	close(fd);
	assert_int_equal(kind, 0x81);
	flip_byte(f->dir, 4096 + SL_WAL_HDR_BYTES + 10);
	expect_damage(&c, 4096, SL_WAL_BAD_CRC, SL_WAL_EV_AMBIGUOUS, 5, 5);
}

/* The clean-shutdown record: reported, kept, and appends continue after it. */
static void test_clean_shutdown_record(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_small(&c, f->dir); /* small segments: the shutdown flush may roll one */
	for (int round = 0; round < 6; round++) {
		struct got g;
		struct sl_wal_recovery rep;
		struct sl_wal *w = open_recover(&c, &g, &rep);
		assert_int_equal(g.n, (uint64_t)round * 5);
		assert_int_equal(rep.clean_shutdown, round > 0 && round % 2 == 0);
		assert_false(rep.torn_tail_cut);
		append_synced(w, 5);
		if (round % 2 == 1)
			assert_int_equal(sl_wal_shutdown(w), 0);
		sl_wal_close(w);
	}
	struct sl_wal *w = NULL;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	assert_int_equal(sl_wal_recover(w, NULL, NULL, NULL), 0);
	assert_int_equal(sl_wal_shutdown(w), 0); /* nothing appended: still fine */
	assert_int_equal(sl_wal_last_lsn(w), 30);
	sl_wal_close(w);
	expect_records(&c, 30);
}

/* Bitwise CRC32C (no final xor, as the WAL uses it), to write an old-format record. */
static uint32_t crc32c_bits(const uint8_t *p, size_t n, uint32_t c)
{
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
	}
	return c;
}

/* A format-2 log (32-byte header) is refused by name, and left as it was. */
static void test_old_version_refused(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_small(&c, f->dir);
	uint8_t rec[40] = {0x53, 0x4c, 0x57, 0x4c, 2, 1, 1, 0, 5, 0, 0, 0};
	memcpy(rec + 32, "hello", 5);
	rec[16] = 1; /* lsn 1 */
	rec[24] = 1; /* flush lsn 1 */
	uint32_t crc = crc32c_bits(rec, 12, 0xffffffffu);
	crc = crc32c_bits(rec + 16, 16, crc);
	crc = crc32c_bits(rec + 32, 5, crc);
	for (int i = 0; i < 4; i++)
		rec[12 + i] = (uint8_t)(crc >> (8 * i));
	char path[128];
	seg_path(path, sizeof(path), f->dir, 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
	assert_int_equal(ftruncate(fd, 16384), 0);
	close(fd);
	for (int salvage = 0; salvage < 2; salvage++) {
		c.salvage = salvage;
		struct sl_wal *w = NULL;
		struct sl_wal_recovery rep;
		assert_int_equal(sl_wal_open(&c, &w), 0);
		assert_int_equal(sl_wal_recover(w, NULL, NULL, &rep), -EPROTONOSUPPORT);
		assert_int_equal(rep.old_version, 2);
		char msg[256];
		sl_wal_explain(f->dir, -EPROTONOSUPPORT, &rep, msg, sizeof(msg));
		assert_non_null(strstr(msg, "format version 2"));
		sl_wal_close(w);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 16384);
	}
	/* The same bytes with a damaged crc are not an old log: damage. */
	rec[33] ^= 1;
	write_at(path, 0, rec, sizeof(rec));
	struct sl_wal *w = NULL;
	struct sl_wal_recovery rep;
	c.salvage = false;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	assert_int_not_equal(sl_wal_recover(w, NULL, NULL, &rep), -EPROTONOSUPPORT);
	assert_int_equal(rep.old_version, 0);
	sl_wal_close(w);
}

/* The in-memory entry point (fuzz target) agrees with recovery from files. */
static void test_check_segment(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_one_segment(&c, f->dir);
	twelve_records(&c, true);
	char path[128];
	seg_path(path, sizeof(path), f->dir, 1);
	uint8_t *p;
	size_t n;
	read_file(path, &p, &n);
	struct got g = {0};
	struct sl_wal_recovery rep;
	assert_int_equal(sl_wal_check_segment(p, n, 1, false, collect, &g, &rep), 0);
	assert_false(g.bad);
	assert_int_equal(g.n, 12);
	assert_true(rep.clean_shutdown);
	assert_int_equal(rep.last_lsn, 12);
	uint64_t off = record_offset(f->dir, 1, 12);
	p[off + SL_WAL_HDR_BYTES + 1] ^= 4;
	memset(&g, 0, sizeof(g));
	assert_int_equal(sl_wal_check_segment(p, n, 1, false, collect, &g, &rep), -EBADMSG);
	assert_int_equal(g.n, 0);
	assert_int_equal(rep.bad_offset, off);
	assert_int_equal(sl_wal_check_segment(p, n, 1, true, collect, &g, &rep), 0);
	assert_int_equal(g.n, 11);
	assert_int_equal(sl_wal_check_segment(NULL, 0, 1, false, NULL, NULL, &rep), 0);
	assert_int_equal(sl_wal_check_segment(p, 5, 1, false, NULL, NULL, &rep), 0);
	assert_true(rep.torn_tail_cut); /* a header cut short by the end of the file */
	assert_int_equal(sl_wal_check_segment(p, n, 0, false, NULL, NULL, &rep), -EINVAL);
	free(p);
}

/* A record appended in two parts reads back as one payload, head first. */
static int two_part_cb(void *arg, uint64_t lsn, uint16_t type, const uint8_t *payload, uint32_t len)
{
	(void)lsn;
	int *ok = arg;
	*ok = type == 5 && len == 7 && memcmp(payload, "headpay", 7) == 0;
	return 0;
}

static void test_append_two_parts(void **state)
{
	struct fx *f = *state;
	struct sl_wal_config c;
	cfg_small(&c, f->dir);
	struct sl_wal *w = NULL;
	uint64_t n = 0, lsn = 0;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	assert_int_equal(sl_wal_recover(w, count_cb, &n, NULL), 0);
	assert_int_equal(sl_wal_append2(w, 5, (const uint8_t *)"head", 4, (const uint8_t *)"pay", 3, &lsn), 0);
	assert_int_equal(lsn, 1);
	assert_int_equal(sl_wal_append2(w, 5, NULL, 4, (const uint8_t *)"pay", 3, NULL), -EINVAL);
	assert_int_equal(sl_wal_sync(w), 0);
	sl_wal_close(w);
	int ok = 0;
	assert_int_equal(sl_wal_open(&c, &w), 0);
	assert_int_equal(sl_wal_recover(w, two_part_cb, &ok, NULL), 0);
	assert_true(ok);
	sl_wal_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_direct, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip_buffered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enobufs_and_msgsize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_room_predicts_enobufs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_last_flush_is_damage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corruption_strict_and_salvage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_hole_is_corruption, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lsn_gap_is_corruption, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_multiblock_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_two_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damage_before_later_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_injected_faults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roll_prepared, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roll_chain_faults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flip_matrix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_sector_vs_clean_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_sector_payload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clean_shutdown_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_old_version_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_segment, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

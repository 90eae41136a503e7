/* test_ctld_log.c - cmocka tests of sluice-ctld's log file: entries and hard state survive
 * a reopen, a replaced suffix is cut from the file, an unfinished tail is cut, and damage
 * (a record failing its CRC, a bad hard state) is refused with the place named. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctld.h"

struct fx {
	char dir[64];
	char log[96];
	char hs[96];
	struct sl_ctld_log l;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ctld_log_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->log, sizeof(f->log), "%s/ctld.log", f->dir);
	snprintf(f->hs, sizeof(f->hs), "%s/ctld.hs", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sl_ctld_log_close(&f->l);
	char path[128];
	const char *names[] = {"ctld.log", "ctld.hs", "ctld.hs.tmp"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void open_ok(struct fx *f)
{
	char err[256] = "";
	int rc = sl_ctld_log_open(&f->l, f->dir, err, sizeof(err));
	if (rc != 0)
		fail_msg("open: %s (%d)", err, rc);
}

static void append(struct fx *f, uint64_t term, uint64_t index, const char *text)
{
	struct sl_cons_entry e = {term, index, 0, SL_CONS_ENTRY_NORMAL, (uint32_t)strlen(text),
				  (const uint8_t *)text};
	assert_int_equal(sl_ctld_log_append(&f->l, &e), 0);
}

static void assert_entry(struct fx *f, uint64_t index, uint64_t term, const char *text)
{
	struct sl_cons_entry e;
	assert_int_equal(sl_rlog_entry(&f->l.rlog, index, &e), 0);
	assert_int_equal(e.term, term);
	assert_int_equal(e.len, strlen(text));
	assert_memory_equal(e.data, text, e.len);
}

static void write_five(struct fx *f)
{
	open_ok(f);
	for (uint64_t i = 1; i <= 5; i++) {
		char text[32];
		snprintf(text, sizeof(text), "{\"entry\":%llu}", (unsigned long long)i);
		append(f, i < 3 ? 1 : 2, i, text);
	}
	struct sl_cons_hard_state hs = {2, 3, 4};
	sl_ctld_log_set_hs(&f->l, &hs);
	assert_int_equal(sl_ctld_log_sync(&f->l), 0);
	sl_ctld_log_close(&f->l);
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_reopen(void **state)
{
	struct fx *f = *state;
	write_five(f);
	open_ok(f);
	assert_int_equal(f->l.last, 5);
	assert_int_equal(f->l.last_term, 2);
	assert_int_equal(f->l.hs.term, 2);
	assert_int_equal(f->l.hs.vote, 3);
	assert_int_equal(f->l.hs.commit, 4);
	assert_int_equal(f->l.torn_bytes, 0);
	assert_entry(f, 1, 1, "{\"entry\":1}");
	assert_entry(f, 5, 2, "{\"entry\":5}");
	/* appending goes on after the recovered end */
	append(f, 3, 6, "six");
	assert_int_equal(sl_ctld_log_sync(&f->l), 0);
	sl_ctld_log_close(&f->l);
	open_ok(f);
	assert_int_equal(f->l.last, 6);
	assert_entry(f, 6, 3, "six");
	/* an index past the end is refused */
	struct sl_cons_entry e = {3, 9, 0, 0, 1, (const uint8_t *)"x"};
	assert_int_equal(sl_ctld_log_append(&f->l, &e), -EINVAL);
}

static void test_replace_suffix(void **state)
{
	struct fx *f = *state;
	write_five(f);
	open_ok(f);
	off_t before = file_size(f->log);
	append(f, 3, 5, "new5"); /* a new leader's entry at 5 replaces the uncommitted 5 */
	assert_int_equal(sl_ctld_log_sync(&f->l), 0);
	assert_int_equal(f->l.last, 5);
	assert_true(file_size(f->log) < before);
	sl_ctld_log_close(&f->l);
	open_ok(f);
	assert_int_equal(f->l.last, 5);
	assert_int_equal(f->l.last_term, 3);
	assert_entry(f, 4, 2, "{\"entry\":4}");
	assert_entry(f, 5, 3, "new5");
	append(f, 3, 6, "six");
	assert_entry(f, 6, 3, "six");
}

static void test_torn_tail_cut(void **state)
{
	struct fx *f = *state;
	write_five(f);
	off_t full = file_size(f->log);
	/* a write that did not finish: the last record lost its last 3 bytes */
	assert_int_equal(truncate(f->log, full - 3), 0);
	open_ok(f);
	assert_int_equal(f->l.last, 4);
	assert_true(f->l.torn_bytes > 0);
	assert_true(file_size(f->log) < full - 3); /* cut in the file too */
	sl_ctld_log_close(&f->l);
	/* the file grew but nothing reached it: zeros after the records */
	off_t size = file_size(f->log);
	assert_int_equal(truncate(f->log, size + 100), 0);
	open_ok(f);
	assert_int_equal(f->l.last, 4);
	assert_int_equal(f->l.torn_bytes, 100);
	assert_int_equal(file_size(f->log), size);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_crc_damage_refused(void **state)
{
	struct fx *f = *state;
	write_five(f);
	/* record 2 starts after record 1 (32-byte header and 11 bytes of data) */
	flip_byte(f->log, 43 + 32 + 2);
	char err[256] = "";
	assert_int_equal(sl_ctld_log_open(&f->l, f->dir, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "offset 43"));
	assert_non_null(strstr(err, "CRC"));
	/* damage to the last complete record is refused as well: it is not a torn write */
	flip_byte(f->log, 43 + 32 + 2);
	open_ok(f);
	sl_ctld_log_close(&f->l);
	flip_byte(f->log, file_size(f->log) - 1);
	assert_int_equal(sl_ctld_log_open(&f->l, f->dir, err, sizeof(err)), -EBADMSG);
	/* a damaged header is refused, not taken for a torn tail */
	flip_byte(f->log, file_size(f->log) - 1);
	flip_byte(f->log, 0);
	assert_int_equal(sl_ctld_log_open(&f->l, f->dir, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "offset 0"));
}

static void test_hard_state_damage_refused(void **state)
{
	struct fx *f = *state;
	write_five(f);
	flip_byte(f->hs, 10);
	char err[256] = "";
	assert_int_equal(sl_ctld_log_open(&f->l, f->dir, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "hard state"));
	flip_byte(f->hs, 10);
	/* a hard state committing past the log's end (the log lost its tail) */
	assert_int_equal(truncate(f->log, 0), 0);
	assert_int_equal(sl_ctld_log_open(&f->l, f->dir, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "commit 4"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replace_suffix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crc_damage_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hard_state_damage_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

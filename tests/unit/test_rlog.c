/* test_rlog.c - the in-memory log window raft reads through: append, conflicting-suffix
 * replacement, release of applied payloads, compaction, ring growth and wrap-around. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rlog.h"

static struct sl_cons_entry ent(uint64_t term, uint64_t index, const char *s)
{
	return (struct sl_cons_entry){term, index, index * 10, SL_CONS_ENTRY_NORMAL,
				      (uint32_t)strlen(s), (const uint8_t *)s};
}

static void test_append_read(void **u)
{
	(void)u;
	struct sl_rlog l;
	sl_rlog_init(&l, 0, 0);
	struct sl_cons_entry e = ent(1, 1, "a"), out;
	assert_int_equal(sl_rlog_append(&l, &e), 0);
	e = ent(1, 2, "bb");
	assert_int_equal(sl_rlog_append(&l, &e), 0);
	assert_int_equal(sl_rlog_first(&l), 1);
	assert_int_equal(sl_rlog_last(&l), 2);
	assert_int_equal(sl_rlog_entry(&l, 2, &out), 0);
	assert_int_equal(out.len, 2);
	assert_memory_equal(out.data, "bb", 2);
	assert_int_equal(out.proposal_id, 20);
	e = ent(1, 4, "x"); /* a gap */
	assert_int_equal(sl_rlog_append(&l, &e), -EINVAL);
	assert_int_equal(sl_rlog_entry(&l, 3, &out), -ENOENT);
	uint64_t t;
	assert_int_equal(sl_rlog_term(&l, 0, &t), 0);
	assert_int_equal(t, 0);
	sl_rlog_free(&l);
}

static void test_conflicting_suffix(void **u)
{
	(void)u;
	struct sl_rlog l;
	sl_rlog_init(&l, 0, 0);
	for (uint64_t i = 1; i <= 5; i++) {
		struct sl_cons_entry e = ent(1, i, "old");
		assert_int_equal(sl_rlog_append(&l, &e), 0);
	}
	struct sl_cons_entry e = ent(2, 3, "new"), out;
	assert_int_equal(sl_rlog_append(&l, &e), 0);
	assert_int_equal(sl_rlog_last(&l), 3);
	uint64_t t;
	assert_int_equal(sl_rlog_term(&l, 3, &t), 0);
	assert_int_equal(t, 2);
	assert_int_equal(sl_rlog_entry(&l, 3, &out), 0);
	assert_memory_equal(out.data, "new", 3);
	assert_int_equal(l.bytes, 9);
	sl_rlog_free(&l);
}

static void test_release_compact_wrap(void **u)
{
	(void)u;
	struct sl_rlog l;
	sl_rlog_init(&l, 100, 7);
	struct sl_cons_entry out;
	uint64_t t;
	/* several ring growths and wrap-arounds through compaction */
	for (uint64_t i = 101; i <= 5100; i++) {
		struct sl_cons_entry e = ent(8 + i / 1000, i, "payload");
		assert_int_equal(sl_rlog_append(&l, &e), 0);
		if (i % 700 == 0) {
			sl_rlog_release(&l, i - 10);
			assert_int_equal(sl_rlog_entry(&l, i - 10, &out), -ENOENT);
			assert_int_equal(sl_rlog_entry(&l, i - 9, &out), 0);
			assert_int_equal(sl_rlog_term(&l, i - 10, &t), 0); /* terms stay */
			sl_rlog_compact(&l, i - 20, 8 + (i - 20) / 1000);
			assert_int_equal(sl_rlog_first(&l), i - 19);
			assert_int_equal(sl_rlog_term(&l, i - 20, &t), 0);
			assert_int_equal(t, 8 + (i - 20) / 1000);
			assert_int_equal(sl_rlog_term(&l, i - 21, &t), -ENOENT);
		}
	}
	assert_int_equal(sl_rlog_last(&l), 5100);
	for (uint64_t i = 4901; i <= 5100; i++) {
		assert_int_equal(sl_rlog_entry(&l, i, &out), 0);
		assert_int_equal(out.term, 8 + i / 1000);
		assert_int_equal(out.index, i);
	}
	sl_rlog_release(&l, 5100);
	assert_int_equal(l.bytes, 0);
	struct sl_cons_log v;
	sl_rlog_view(&l, &v);
	assert_int_equal(v.last_index(v.ctx), 5100);
	assert_int_equal(v.first_index(v.ctx), sl_rlog_first(&l));
	sl_rlog_free(&l);
}

/* The snapshot base record names the term of exactly the snapshot's index. A crash between
 * writing the record of a new snapshot and renaming the snapshot into place leaves the
 * previous snapshot with a record whose first pair is the NEWER index and term: that term
 * is not the older snapshot's (it was read as an upper bound before), the second pair is. */
static void test_base_record_exact_index(void **u)
{
	(void)u;
	char buf[96];
	uint64_t t = 0;
	int n = sl_rlog_base_format(buf, sizeof(buf), 120, 7, 80, 5);
	assert_true(n > 0 && (size_t)n == strlen(buf));
	assert_int_equal(sl_rlog_base_term(buf, 120, &t), 0); /* the new snapshot got in */
	assert_int_equal(t, 7);
	assert_int_equal(sl_rlog_base_term(buf, 80, &t), 0); /* the crash left the old one */
	assert_int_equal(t, 5);
	t = 99;
	assert_int_equal(sl_rlog_base_term(buf, 100, &t), -ENOENT); /* never a neighbour's */
	assert_int_equal(sl_rlog_base_term(buf, 121, &t), -ENOENT);
	assert_int_equal(t, 99);
	/* a one-pair record of an older version: exact index only */
	assert_int_equal(sl_rlog_base_term("120 7\n", 80, &t), -ENOENT);
	assert_int_equal(sl_rlog_base_term("120 7\n", 120, &t), 0);
	assert_int_equal(t, 7);
	/* unreadable records are reported as such */
	const char *bad[] = {"", "120\n", "120 7", "120 -7\n", "x 7\n", "120 7\n80 5\n1 1\n",
			     "120  7\n", "99999999999999999999 1\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sl_rlog_base_term(bad[i], 120, &t), -EBADMSG);
	assert_int_equal(sl_rlog_base_format(buf, 8, 120, 7, 80, 5), -ENOSPC);
}

/* Applied payloads stay while the window is within its byte budget; the oldest go first,
 * and never one that is not applied yet. */
static void test_release_keep_budget(void **u)
{
	(void)u;
	struct sl_rlog l;
	sl_rlog_init(&l, 0, 0);
	for (uint64_t i = 1; i <= 10; i++) {
		struct sl_cons_entry e = ent(1, i, "0123456789"); /* 10 bytes each */
		assert_int_equal(sl_rlog_append(&l, &e), 0);
	}
	struct sl_cons_entry out;
	assert_int_equal(sl_rlog_first_readable(&l), 1);
	sl_rlog_release_keep(&l, 6, 100); /* 100 bytes held: within budget, nothing goes */
	assert_int_equal(l.bytes, 100);
	assert_int_equal(sl_rlog_entry(&l, 1, &out), 0);
	sl_rlog_release_keep(&l, 6, 45); /* oldest first down to 40 bytes: 1..6 go */
	assert_int_equal(l.bytes, 40);
	assert_int_equal(sl_rlog_entry(&l, 6, &out), -ENOENT);
	assert_int_equal(sl_rlog_entry(&l, 7, &out), 0);
	/* the log still starts at 1 (terms kept), but a peer can be sent entries from 7 on
	 * only: an image offered to it must be at index 6 or later */
	assert_int_equal(sl_rlog_first(&l), 1);
	assert_int_equal(sl_rlog_first_readable(&l), 7);
	sl_rlog_release_keep(&l, 8, 0); /* only applied ones, even over budget */
	assert_int_equal(l.bytes, 20);
	assert_int_equal(sl_rlog_entry(&l, 8, &out), -ENOENT);
	assert_int_equal(sl_rlog_entry(&l, 9, &out), 0);
	sl_rlog_release_keep(&l, 9, 1000); /* a later, larger budget drops nothing more */
	assert_int_equal(sl_rlog_entry(&l, 9, &out), 0);
	uint64_t t;
	assert_int_equal(sl_rlog_term(&l, 3, &t), 0); /* terms stay */
	assert_int_equal(t, 1);
	sl_rlog_compact(&l, 9, 1); /* a snapshot past what was released */
	assert_int_equal(sl_rlog_first_readable(&l), 10);
	sl_rlog_free(&l);
}

/* A snapshot forgets only entries whose payloads are gone: kept ones stay readable. */
static void test_compact_kept(void **u)
{
	(void)u;
	struct sl_rlog l;
	sl_rlog_init(&l, 0, 0);
	for (uint64_t i = 1; i <= 10; i++) {
		struct sl_cons_entry e = ent(i <= 4 ? 1 : 2, i, "0123456789");
		assert_int_equal(sl_rlog_append(&l, &e), 0);
	}
	sl_rlog_release_keep(&l, 8, 40); /* 1..6 dropped, 7..8 applied but kept */
	sl_rlog_compact_kept(&l, 8);	 /* a snapshot at 8 */
	assert_int_equal(sl_rlog_first(&l), 7);
	assert_int_equal(l.base_index, 6);
	assert_int_equal(l.base_term, 2); /* entry 6's own term */
	struct sl_cons_entry out;
	assert_int_equal(sl_rlog_entry(&l, 7, &out), 0); /* still there for a peer */
	assert_int_equal(sl_rlog_entry(&l, 8, &out), 0);
	sl_rlog_compact_kept(&l, 5); /* older than the base: nothing */
	assert_int_equal(l.base_index, 6);
	sl_rlog_release_keep(&l, 10, 0);
	sl_rlog_compact_kept(&l, 9); /* everything released up to 10: compacts to 9 */
	assert_int_equal(l.base_index, 9);
	assert_int_equal(sl_rlog_last(&l), 10);
	sl_rlog_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_read),
		cmocka_unit_test(test_conflicting_suffix),
		cmocka_unit_test(test_release_compact_wrap),
		cmocka_unit_test(test_base_record_exact_index),
		cmocka_unit_test(test_release_keep_budget),
		cmocka_unit_test(test_compact_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

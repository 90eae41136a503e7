/* test_standalone.c - the single-copy protocol through the generic consensus interface:
 * nothing commits or is acknowledged before the log is durable up to it, a storage
 * failure fails everything in flight, and the queue bound is enforced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "consensus.h"

static void *make(const struct sl_cons_ops *ops)
{
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.self = 1;
	cfg.n_voters = 1;
	cfg.voters[0] = 1;
	void *st = NULL;
	assert_int_equal(ops->create(&cfg, &st), 0);
	return st;
}

static void test_registry(void **unused)
{
	(void)unused;
	assert_ptr_equal(sl_cons_find("standalone"), &sl_cons_standalone_ops);
	assert_null(sl_cons_find("nonesuch"));
}

static void test_commit_after_persist(void **unused)
{
	(void)unused;
	const struct sl_cons_ops *ops = &sl_cons_standalone_ops;
	void *st = make(ops);
	uint8_t a[3] = {1, 2, 3}, b[2] = {4, 5};
	assert_int_equal(ops->propose(st, 11, a, sizeof(a)), 0);
	assert_int_equal(ops->propose(st, 12, b, sizeof(b)), 0);
	assert_true(ops->has_ready(st));
	struct sl_cons_ready rd;
	ops->ready(st, &rd);
	assert_int_equal(rd.n_persist, 2);
	assert_int_equal(rd.persist[0].index, 1);
	assert_int_equal(rd.persist[1].index, 2);
	assert_memory_equal(rd.persist[1].data, b, 2);
	assert_int_equal(rd.n_committed, 0); /* not durable yet */
	assert_int_equal(rd.n_acks, 0);
	ops->advance(st, &rd);
	assert_false(ops->has_ready(st));

	ops->persisted(st, 1, 1); /* only the first is durable */
	ops->ready(st, &rd);
	assert_int_equal(rd.n_persist, 0);
	assert_int_equal(rd.n_committed, 1);
	assert_int_equal(rd.committed[0].proposal_id, 11);
	assert_int_equal(rd.n_acks, 1);
	assert_int_equal(rd.acks[0].status, SL_CONS_ACK_OK);
	ops->advance(st, &rd);

	ops->persisted(st, 1, 2);
	ops->ready(st, &rd);
	assert_int_equal(rd.n_committed, 1);
	assert_int_equal(rd.acks[0].proposal_id, 12);
	assert_int_equal(rd.acks[0].index, 2);
	ops->advance(st, &rd);
	struct sl_cons_status s;
	ops->status(st, &s);
	assert_int_equal(s.applied_index, 2);
	assert_int_equal(s.commit_index, 2);
	assert_int_equal(s.role, SL_CONS_ROLE_LEADER);
	assert_int_equal(ops->step(st, &(struct sl_cons_msg){0}), -EPROTO);
	ops->destroy(st);
}

static void test_storage_failure(void **unused)
{
	(void)unused;
	const struct sl_cons_ops *ops = &sl_cons_standalone_ops;
	void *st = make(ops);
	uint8_t a[1] = {9};
	assert_int_equal(ops->propose(st, 1, a, 1), 0);
	assert_int_equal(ops->propose(st, 2, a, 1), 0);
	struct sl_cons_ready rd;
	ops->ready(st, &rd);
	ops->advance(st, &rd);
	ops->storage_failed(st, 1, -EIO);
	ops->persisted(st, 1, 2); /* a late completion must not resurrect anything */
	assert_true(ops->has_ready(st));
	ops->ready(st, &rd);
	assert_int_equal(rd.n_committed, 0);
	assert_int_equal(rd.n_acks, 2);
	assert_int_equal(rd.acks[0].status, SL_CONS_ACK_STORAGE);
	assert_int_equal(rd.acks[1].status, SL_CONS_ACK_STORAGE);
	ops->advance(st, &rd);
	assert_int_equal(ops->propose(st, 3, a, 1), -EIO);
	ops->destroy(st);
}

static void test_queue_bound(void **unused)
{
	(void)unused;
	const struct sl_cons_ops *ops = &sl_cons_standalone_ops;
	void *st = make(ops);
	uint8_t a[1] = {0};
	int rc = 0;
	uint32_t n = 0;
	while ((rc = ops->propose(st, n + 1, a, 1)) == 0 && n < 100000)
		n++;
	assert_int_equal(rc, -ENOBUFS);
	assert_true(n > 0 && n < 100000);
	ops->destroy(st);
}

static uint64_t last_41(void *ctx)
{
	return *(uint64_t *)ctx;
}

static uint64_t first_42(void *ctx)
{
	(void)ctx;
	return 42; /* a snapshot covers 1..41, the log after it is empty */
}

static void test_recovered_log(void **unused)
{
	(void)unused;
	const struct sl_cons_ops *ops = &sl_cons_standalone_ops;
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_voters = 1;
	uint64_t last = 41;
	struct sl_cons_log lv;
	memset(&lv, 0, sizeof(lv));
	lv.ctx = &last;
	lv.last_index = last_41;
	lv.first_index = first_42;
	cfg.log = &lv;
	void *st = NULL;
	assert_int_equal(ops->create(&cfg, &st), 0);
	assert_false(ops->has_ready(st)); /* nothing to apply again */
	uint8_t a[1] = {0};
	assert_int_equal(ops->propose(st, 1, a, 1), 0);
	struct sl_cons_ready rd;
	ops->ready(st, &rd);
	assert_int_equal(rd.persist[0].index, 42); /* continues after the recovered log */
	ops->advance(st, &rd);
	ops->destroy(st);
}

/* A recovered log of three durable entries: 1..3 exist, first_index 1. */
static uint8_t rec_data[3] = {7, 8, 9};
static uint64_t rec_first(void *ctx) { (void)ctx; return 1; }
static uint64_t rec_last(void *ctx) { (void)ctx; return 3; }
static int rec_entry(void *ctx, uint64_t index, struct sl_cons_entry *out)
{
	(void)ctx;
	if (index < 1 || index > 3)
		return -ENOENT;
	*out = (struct sl_cons_entry){1, index, 0, SL_CONS_ENTRY_NORMAL, 1, &rec_data[index - 1]};
	return 0;
}

/* After a restart the recovered entries are handed out again as committed (the caller
 * applies them through the same path as new ones), unacknowledged, before any new entry. */
static void test_recovered_replay(void **unused)
{
	(void)unused;
	const struct sl_cons_ops *ops = &sl_cons_standalone_ops;
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_voters = 1;
	struct sl_cons_log lv = {NULL, rec_first, rec_last, NULL, rec_entry, NULL};
	cfg.log = &lv;
	void *st = NULL;
	assert_int_equal(ops->create(&cfg, &st), 0);
	uint8_t a[1] = {5};
	assert_int_equal(ops->propose(st, 77, a, 1), 0);
	assert_true(ops->has_ready(st));
	struct sl_cons_ready rd;
	ops->ready(st, &rd);
	assert_int_equal(rd.n_persist, 1);
	assert_int_equal(rd.persist[0].index, 4);
	assert_int_equal(rd.n_committed, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(rd.committed[i].index, i + 1);
		assert_int_equal(rd.committed[i].data[0], rec_data[i]);
	}
	assert_int_equal(rd.n_acks, 0);
	ops->advance(st, &rd);
	struct sl_cons_status stt;
	ops->status(st, &stt);
	assert_int_equal(stt.applied_index, 3);
	ops->persisted(st, 1, 4);
	ops->ready(st, &rd);
	assert_int_equal(rd.n_committed, 1);
	assert_int_equal(rd.committed[0].index, 4);
	assert_int_equal(rd.n_acks, 1);
	assert_int_equal(rd.acks[0].proposal_id, 77);
	ops->advance(st, &rd);
	assert_false(ops->has_ready(st));
	ops->destroy(st);
}

/* A recovered log that ends with a SEAL (and, defensively, a write after it). */
static uint8_t sealed_data[3] = {7, 'e', 9};
static int sealed_entry(void *ctx, uint64_t index, struct sl_cons_entry *out)
{
	(void)ctx;
	if (index < 1 || index > 3)
		return -ENOENT;
	uint32_t type = index == 2 ? SL_CONS_ENTRY_SEAL : SL_CONS_ENTRY_NORMAL;
	*out = (struct sl_cons_entry){1, index, 0, type, 1, &sealed_data[index - 1]};
	return 0;
}

/* The seal op appends a SEAL; no write is taken after it, also after a restart (the
 * recovered log holds it), and a write found past it is never applied. */
static void test_seal(void **unused)
{
	(void)unused;
	const struct sl_cons_ops *ops = &sl_cons_standalone_ops;
	void *st = make(ops);
	uint8_t a[1] = {1}, e[2] = {'e', '2'};
	assert_int_equal(ops->propose(st, 1, a, 1), 0);
	assert_int_equal(ops->seal(st, 2, e, 2), 0);
	assert_int_equal(ops->propose(st, 3, a, 1), -EROFS);
	assert_int_equal(ops->seal(st, 4, e, 2), -EALREADY);
	struct sl_cons_ready rd;
	ops->ready(st, &rd);
	assert_int_equal(rd.n_persist, 2);
	assert_int_equal(rd.persist[1].type, SL_CONS_ENTRY_SEAL);
	ops->advance(st, &rd);
	struct sl_cons_status s;
	ops->status(st, &s);
	assert_int_equal(s.sealed_index, 0); /* not applied yet */
	ops->persisted(st, 1, 2);
	ops->ready(st, &rd);
	assert_int_equal(rd.n_acks, 2);
	assert_int_equal(rd.acks[1].proposal_id, 2);
	assert_int_equal(rd.acks[1].status, SL_CONS_ACK_OK);
	ops->advance(st, &rd);
	ops->status(st, &s);
	assert_int_equal(s.sealed_index, 2);
	ops->destroy(st);

	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_voters = 1;
	struct sl_cons_log lv = {NULL, rec_first, rec_last, NULL, sealed_entry, NULL};
	cfg.log = &lv;
	assert_int_equal(ops->create(&cfg, &st), 0);
	assert_int_equal(ops->propose(st, 5, a, 1), -EROFS);
	ops->ready(st, &rd);
	assert_int_equal(rd.n_committed, 3);
	assert_int_equal(rd.committed[1].type, SL_CONS_ENTRY_SEAL);
	assert_int_equal(rd.committed[2].type, SL_CONS_ENTRY_NOOP);
	assert_int_equal(rd.committed[2].len, 0);
	ops->advance(st, &rd);
	ops->status(st, &s);
	assert_int_equal(s.sealed_index, 2);
	ops->destroy(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_commit_after_persist),
		cmocka_unit_test(test_storage_failure),
		cmocka_unit_test(test_queue_bound),
		cmocka_unit_test(test_recovered_log),
		cmocka_unit_test(test_recovered_replay),
		cmocka_unit_test(test_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

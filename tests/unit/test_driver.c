/* test_driver.c - the region driver over real protocols: three raft replicas wired by an
 * in-memory network whose storage becomes durable only when the test says so. Checks
 * persist-before-send (no vote leaves before the candidate's term and vote are durable),
 * ordered exactly-once apply with acks, held messages dropped on storage failure, and
 * standalone through the very same calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "driver.h"
#include "raft.h"
#include "rlog.h"

#define N 3
#define NET_MAX 4096
#define MS 1000000ull

struct host {
	uint32_t id;
	struct sl_drv *d;
	struct sl_rlog log;
	struct sl_cons_log view;
	uint64_t pos;            /* storage positions handed out */
	uint64_t last_term, last_index; /* last entry saved */
	uint64_t applied[64];
	uint32_t n_applied;
	uint64_t acked[64];
	uint32_t n_acked;
	int fail_saves; /* storage answers this error when non-zero */
	uint32_t sends;
};

struct netmsg {
	struct sl_cons_msg m;
	uint8_t buf[2048];
};

static struct host hosts[N];
static char saves[64]; /* order of storage calls: E entry, H hard state */
static size_t n_saves;

static void note_save(char kind)
{
	if (n_saves + 1 < sizeof(saves))
		saves[n_saves++] = kind;
	saves[n_saves] = '\0';
}
static struct netmsg *net;
static uint32_t net_len;
static uint32_t held_bytes, held_msgs; /* driver's hold FIFO for the next cluster_up */
static uint64_t durable_lag; /* storage reports durable this many positions behind */

static int h_install(void *ctx, const struct sl_cons_snapshot *s)
{
	(void)ctx;
	(void)s;
	return -ENOTSUP;
}

static int h_save_hs(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos)
{
	struct host *h = ctx;
	(void)hs;
	if (h->fail_saves)
		return h->fail_saves;
	note_save('H');
	*pos = ++h->pos;
	return 0;
}

static int h_save_entry(void *ctx, const struct sl_cons_entry *e, uint64_t *pos)
{
	struct host *h = ctx;
	if (h->fail_saves)
		return h->fail_saves;
	assert_int_equal(sl_rlog_append(&h->log, e), 0);
	note_save('E');
	h->last_term = e->term;
	h->last_index = e->index;
	*pos = ++h->pos;
	return 0;
}

static void h_send(void *ctx, const struct sl_cons_msg *m)
{
	struct host *h = ctx;
	h->sends++;
	if (net_len == NET_MAX || m->len > sizeof(net[0].buf))
		return; /* lost */
	struct netmsg *x = &net[net_len++];
	memcpy(x->buf, m->buf, m->len);
	x->m = *m;
	x->m.buf = x->buf;
}

static void h_apply(void *ctx, const struct sl_cons_entry *e)
{
	struct host *h = ctx;
	if (e->type == SL_CONS_ENTRY_NORMAL && h->n_applied < 64)
		h->applied[h->n_applied++] = e->index;
	sl_rlog_release(&h->log, e->index);
}

static void h_ack(void *ctx, const struct sl_cons_ack *a)
{
	struct host *h = ctx;
	if (a->status == SL_CONS_ACK_OK && h->n_acked < 64)
		h->acked[h->n_acked++] = a->proposal_id;
}

static const struct sl_drv_host host_ops = {
	.install_snapshot = h_install,
	.save_hard_state = h_save_hs,
	.save_entry = h_save_entry,
	.send = h_send,
	.apply = h_apply,
	.ack = h_ack,
};

static void cluster_up(const char *protocol, uint32_t n)
{
	net = calloc(NET_MAX, sizeof(*net));
	assert_non_null(net);
	net_len = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct host *h = &hosts[i];
		memset(h, 0, sizeof(*h));
		h->id = i + 1;
		sl_rlog_init(&h->log, 0, 0);
		sl_rlog_view(&h->log, &h->view);
		struct sl_drv_config dc;
		memset(&dc, 0, sizeof(dc));
		dc.protocol = protocol;
		dc.max_entry_bytes = 1024;
		dc.max_inflight = 8;
		dc.cons.group_id = 7;
		dc.cons.self = h->id;
		dc.cons.n_voters = n;
		for (uint32_t k = 0; k < n; k++)
			dc.cons.voters[k] = k + 1;
		dc.cons.seed = 1000 + i;
		dc.cons.election_timeout_ns = 100 * MS;
		dc.cons.heartbeat_interval_ns = 10 * MS;
		dc.cons.max_batch_entries = 16;
		dc.cons.max_inflight_bytes = 1 << 20;
		dc.cons.log = &h->view;
		dc.held_bytes = held_bytes;
		dc.held_msgs = held_msgs;
		struct sl_drv_host ho = host_ops;
		ho.ctx = h;
		assert_int_equal(sl_drv_create(&dc, &ho, &h->d), 0);
	}
}

static void cluster_down(uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		sl_drv_destroy(hosts[i].d);
		sl_rlog_free(&hosts[i].log);
	}
	free(net);
}

/* Storage of host i catches up: everything saved so far is durable. */
static void make_durable(struct host *h)
{
	if (h->last_index > 0)
		sl_drv_persisted(h->d, h->last_term, h->last_index);
	sl_drv_durable(h->d, h->pos > durable_lag ? h->pos - durable_lag : 0);
}

/* One millisecond: deliver what is in flight, tick, run readies, maybe sync storage. */
static void run_ms(uint32_t n, uint64_t *now, bool durable)
{
	*now += MS;
	uint32_t len = net_len;
	struct netmsg *batch = malloc(sizeof(*batch) * (len ? len : 1));
	assert_non_null(batch);
	memcpy(batch, net, sizeof(*batch) * len);
	for (uint32_t i = 0; i < len; i++)
		batch[i].m.buf = batch[i].buf;
	net_len = 0;
	for (uint32_t i = 0; i < len; i++)
		sl_drv_step(hosts[batch[i].m.to - 1].d, &batch[i].m);
	free(batch);
	for (uint32_t i = 0; i < n; i++) {
		sl_drv_tick(hosts[i].d, *now);
		sl_drv_process(hosts[i].d, 64);
		if (durable)
			make_durable(&hosts[i]);
		sl_drv_process(hosts[i].d, 64);
	}
}

static int leader_of(uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct sl_cons_status st;
		sl_drv_status(hosts[i].d, &st);
		if (st.role == SL_CONS_ROLE_LEADER)
			return (int)i;
	}
	return -1;
}

/* Three raft replicas with storage that syncs at once, run until one leads: its index. */
static int raft_elected(uint64_t *now)
{
	cluster_up("raft", N);
	for (int t = 0; t < 3000 && leader_of(N) < 0; t++)
		run_ms(N, now, true);
	int l = leader_of(N);
	assert_true(l >= 0);
	return l;
}

/* A candidate's vote requests wait for its durable term and vote: with storage that never
 * syncs nobody can be elected; once it syncs, a leader emerges. */
static void test_votes_wait_for_durable_state(void **u)
{
	(void)u;
	cluster_up("raft", N);
	uint64_t now = 0;
	for (int t = 0; t < 2000; t++)
		run_ms(N, &now, false);
	assert_int_equal(leader_of(N), -1);
	struct sl_drv_stats ds;
	sl_drv_stats(hosts[0].d, &ds);
	uint64_t held = ds.msgs_held;
	for (uint32_t i = 1; i < N; i++) {
		sl_drv_stats(hosts[i].d, &ds);
		held += ds.msgs_held;
	}
	assert_true(held > 0);
	for (int t = 0; t < 2000 && leader_of(N) < 0; t++)
		run_ms(N, &now, true);
	assert_true(leader_of(N) >= 0);
	cluster_down(N);
}

/* Proposals commit on every replica, applied in index order exactly once, acked once. */
static void test_apply_in_order_once(void **u)
{
	(void)u;
	uint64_t now = 0;
	int l = raft_elected(&now);
	static uint8_t payload[5][8];
	for (uint32_t k = 0; k < 5; k++) {
		payload[k][0] = (uint8_t)k;
		assert_int_equal(sl_drv_propose(hosts[l].d, 100 + k, payload[k], 8), 0);
		run_ms(N, &now, true);
	}
	for (int t = 0; t < 500; t++)
		run_ms(N, &now, true);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(hosts[i].n_applied, 5);
		for (uint32_t k = 1; k < 5; k++)
			assert_true(hosts[i].applied[k] == hosts[i].applied[k - 1] + 1);
		assert_int_equal(sl_drv_applied(hosts[i].d), hosts[i].applied[4]);
	}
	assert_int_equal(hosts[l].n_acked, 5);
	for (uint32_t k = 0; k < 5; k++)
		assert_int_equal(hosts[l].acked[k], 100 + k);
	cluster_down(N);
}

/* A storage failure drops what was held for it: those messages' premise never became
 * durable, so they never leave, even if a durable report arrives later. */
static void test_failure_drops_held(void **u)
{
	(void)u;
	cluster_up("raft", N);
	uint64_t now = 0;
	for (int t = 0; t < 2000; t++) {
		run_ms(N, &now, false);
		struct sl_drv_stats ds;
		sl_drv_stats(hosts[0].d, &ds);
		if (ds.msgs_held > 0)
			break;
	}
	struct sl_drv_stats before;
	sl_drv_stats(hosts[0].d, &before);
	assert_true(before.msgs_held > 0);
	uint32_t sends = hosts[0].sends;
	sl_drv_storage_failed(hosts[0].d, 1, -EIO);
	sl_drv_durable(hosts[0].d, hosts[0].pos);
	assert_int_equal(hosts[0].sends, sends);
	struct sl_drv_stats after;
	sl_drv_stats(hosts[0].d, &after);
	assert_true(after.msgs_dropped_held > before.msgs_dropped_held);
	assert_int_equal(after.storage_failures, 1);
	cluster_down(N);
}

/* A save that fails inside a ready stops the rest of it and reaches the protocol after
 * advance(): standalone then fails the proposal instead of acknowledging it. */
static void test_standalone_same_path(void **u)
{
	(void)u;
	cluster_up("standalone", 1);
	struct host *h = &hosts[0];
	uint8_t a[4] = {1, 2, 3, 4};
	assert_int_equal(sl_drv_propose(h->d, 9, a, 4), 0);
	assert_int_equal(sl_drv_process(h->d, 64), 1);
	assert_int_equal(h->n_applied, 0); /* not durable yet */
	make_durable(h);
	sl_drv_process(h->d, 64);
	assert_int_equal(h->n_applied, 1);
	assert_int_equal(h->applied[0], 1);
	assert_int_equal(h->n_acked, 1);
	h->fail_saves = -EIO;
	assert_int_equal(sl_drv_propose(h->d, 10, a, 4), 0);
	sl_drv_process(h->d, 64);
	assert_int_equal(sl_drv_propose(h->d, 11, a, 4), -EIO);
	assert_int_equal(h->n_acked, 1);
	struct sl_drv_stats ds;
	sl_drv_stats(h->d, &ds);
	assert_int_equal(ds.storage_failures, 1);
	cluster_down(1);
}

/* Entries go to storage before the hard state of the same ready: a crash keeps a prefix,
 * and a surviving commit index must not name entries lost behind it (found by sluice-sim
 * --driver, seed 607: a follower re-applied a replaced entry after a torn tail). */
static void test_entries_before_hard_state(void **u)
{
	(void)u;
	cluster_up("raft", 1); /* one voter: elects itself, term+vote and its first entry */
	n_saves = 0;
	saves[0] = '\0';
	uint64_t now = 0;
	for (int t = 0; t < 1000 && n_saves == 0; t++) {
		now += MS;
		sl_drv_tick(hosts[0].d, now);
		sl_drv_process(hosts[0].d, 1);
	}
	assert_string_equal(saves, "EH");
	cluster_down(1);
}

/* A hold FIFO far smaller than the traffic, and storage that reports durability two
 * writes behind, so the FIFO is released in parts: it wraps and overflows all the time.
 * Every message that leaves it must be byte-exact (raft checksums each one: msgs_bad
 * stays 0), overflow only loses messages (counted), and the group still commits all. */
/* Durability two writes behind most of the time, caught up every fourth millisecond. */
static void lagging_ms(uint64_t *now, int t)
{
	durable_lag = t % 4 ? 2 : 0;
	run_ms(N, now, true);
}

static void test_small_hold_fifo(void **u)
{
	(void)u;
	held_bytes = 100; /* a few 24-40 byte votes and heartbeats; appends barely fit */
	held_msgs = 12;
	cluster_up("raft", N);
	uint64_t now = 0;
	for (int t = 0; t < 5000 && leader_of(N) < 0; t++)
		lagging_ms(&now, t);
	int l = leader_of(N);
	assert_true(l >= 0);
	static uint8_t payload[20][40];
	uint32_t proposed = 0;
	for (int t = 0; t < 6000 && proposed < 20; t++) {
		l = leader_of(N);
		if (l >= 0) {
			memset(payload[proposed], (int)proposed, 40);
			if (sl_drv_propose(hosts[l].d, 500 + proposed, payload[proposed], 40) == 0)
				proposed++;
		}
		lagging_ms(&now, t);
	}
	assert_int_equal(proposed, 20);
	for (int t = 0; t < 3000; t++)
		lagging_ms(&now, t);
	uint64_t held = 0, dropped = 0;
	for (uint32_t i = 0; i < N; i++) {
		struct sl_raft_stats rs;
		sl_raft_stats(sl_drv_instance(hosts[i].d), &rs);
		assert_int_equal(rs.msgs_bad, 0);
		struct sl_drv_stats ds;
		sl_drv_stats(hosts[i].d, &ds);
		held += ds.msgs_held;
		dropped += ds.msgs_dropped_held;
		assert_int_equal(hosts[i].n_applied, 20);
	}
	assert_true(held > 50);
	assert_true(dropped > 0);
	held_bytes = held_msgs = 0;
	durable_lag = 0;
	cluster_down(N);
}

/* Sealing through the driver: the SEAL commits on every raft replica at one index, writes
 * after it are refused with the status the host holds them under (SEALED); a multileader
 * replica seals its own stream. */
static void test_seal(void **u)
{
	(void)u;
	uint64_t now = 0;
	int l = raft_elected(&now);
	static const uint8_t w[4] = {1, 2, 3, 4}, epoch[8] = {2};
	assert_int_equal(sl_drv_propose(hosts[l].d, 40, w, 4), 0);
	assert_int_equal(sl_drv_seal(hosts[(l + 1) % N].d, 41, epoch, 8), -EPERM);
	assert_int_equal(sl_drv_seal(hosts[l].d, 42, epoch, 8), 0);
	int rc = sl_drv_propose(hosts[l].d, 43, w, 4);
	assert_int_equal(rc, -EROFS);
	assert_int_equal(sl_drv_refusal(rc), SL_CONS_ACK_SEALED);
	assert_int_equal(sl_drv_refusal(-EPERM), SL_CONS_ACK_NOT_LEADER);
	for (int t = 0; t < 200; t++)
		run_ms(N, &now, true);
	assert_int_equal(hosts[l].n_acked, 2); /* the write and the SEAL */
	struct sl_cons_status st;
	sl_drv_status(hosts[l].d, &st);
	assert_true(st.sealed_index > hosts[l].applied[0]);
	for (uint32_t i = 0; i < N; i++) {
		struct sl_cons_status si;
		sl_drv_status(hosts[i].d, &si);
		assert_int_equal(si.sealed_index, st.sealed_index);
		assert_int_equal(hosts[i].n_applied, 1);
	}
	cluster_down(N);
	cluster_up("multileader", N); /* any replica seals its own stream */
	assert_int_equal(sl_drv_seal(hosts[0].d, 1, epoch, 8), 0);
	assert_int_equal(sl_drv_seal(hosts[0].d, 2, epoch, 8), -EALREADY);
	assert_int_equal(sl_drv_propose(hosts[0].d, 3, w, 4), -EROFS);
	cluster_down(N);
}

static void test_unknown_protocol(void **u)
{
	(void)u;
	struct sl_drv_config dc;
	memset(&dc, 0, sizeof(dc));
	dc.protocol = "paxos";
	struct sl_drv *d = NULL;
	assert_int_equal(sl_drv_create(&dc, &host_ops, &d), -ENOENT);
	assert_null(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_votes_wait_for_durable_state),
		cmocka_unit_test(test_apply_in_order_once),
		cmocka_unit_test(test_failure_drops_held),
		cmocka_unit_test(test_standalone_same_path),
		cmocka_unit_test(test_entries_before_hard_state),
		cmocka_unit_test(test_small_hold_fifo),
		cmocka_unit_test(test_unknown_protocol),
		cmocka_unit_test(test_seal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

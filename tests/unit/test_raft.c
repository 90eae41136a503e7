/* test_raft.c - Raft through the generic consensus interface and its raft.h extensions, on
 * a tiny in-process cluster with an in-memory log and a controllable lossless network:
 * election with pre-vote and check-quorum, replication and commit, the current-term commit
 * rule, leader transfer, ReadIndex and lease reads, learners and membership change,
 * snapshots for a lagging follower, storage failure and message validation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consensus.h"
#include "raft.h"
#include "sl_le.h"

#define MS 1000000ull
#define NMAX 6
#define LOGMAX 1024
#define QMAX 8192

struct ment {
	uint64_t term;
	uint32_t type, len;
	uint8_t data[64];
};

struct mlog {
	uint64_t snap_index, snap_term;
	struct sl_cons_conf snap_conf;
	uint8_t snap_data[4096];
	uint32_t snap_len;
	struct ment e[LOGMAX]; /* e[i] has index snap_index + 1 + i */
	uint64_t n;
	struct sl_cons_hard_state hs;
	struct sl_cons_log log;
};

struct tnode {
	void *st;
	struct mlog lg;
	bool up;
	uint64_t applied;
	uint8_t last_applied_byte;
	uint32_t n_applied_normal;
	struct sl_cons_ack acks[256];
	uint32_t n_acks;
	struct sl_cons_read reads[64];
	uint32_t n_reads;
	bool no_persist; /* disk stalls: persisted() is not called */
	bool rejoin;	 /* started after losing its state (cfg.rejoin) */
};

struct qmsg {
	uint32_t from, to, len;
	uint8_t buf[2048];
};

struct cluster {
	struct tnode n[NMAX + 1];
	uint32_t size;
	uint32_t voters;
	uint64_t now;
	bool cut[NMAX + 1][NMAX + 1];
	struct qmsg *q;
	uint32_t nq;
	struct sl_raft_opts opts;
	uint32_t max_batch;
	/* network filter for scripted scenarios: true drops the message */
	bool (*drop)(struct cluster *c, const struct sl_cons_msg *m);
	bool seen_x;
};

static const struct sl_cons_ops *R = &sl_cons_raft_ops;

/* ---- in-memory log (the caller's durable storage) ---- */

static uint64_t ml_first(void *c) { return ((struct mlog *)c)->snap_index + 1; }
static uint64_t ml_last(void *c) { return ((struct mlog *)c)->snap_index + ((struct mlog *)c)->n; }

static int ml_term(void *c, uint64_t i, uint64_t *t)
{
	struct mlog *l = c;
	if (i == l->snap_index) {
		*t = l->snap_term;
		return 0;
	}
	if (i < l->snap_index || i > ml_last(l))
		return -ENOENT;
	*t = l->e[i - l->snap_index - 1].term;
	return 0;
}

static int ml_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	struct mlog *l = c;
	if (i <= l->snap_index || i > ml_last(l))
		return -ENOENT;
	const struct ment *e = &l->e[i - l->snap_index - 1];
	*o = (struct sl_cons_entry){e->term, i, 0, e->type, e->len, e->data};
	return 0;
}

static int ml_snapshot(void *c, struct sl_cons_snapshot *o)
{
	struct mlog *l = c;
	if (l->snap_index == 0)
		return -ENOENT;
	*o = (struct sl_cons_snapshot){l->snap_index, l->snap_term, l->snap_conf, l->snap_len,
				       l->snap_data};
	return 0;
}

static void ml_init(struct mlog *l)
{
	memset(l, 0, sizeof(*l));
	l->log = (struct sl_cons_log){l, ml_first, ml_last, ml_term, ml_entry, ml_snapshot};
}

/* Compact up to `idx` (the caller's snapshot); keeps the entries after it. */
static void ml_compact(struct mlog *l, const struct sl_cons_snapshot *s)
{
	uint64_t drop = s->index - l->snap_index;
	if (drop >= l->n) {
		l->n = 0;
	} else {
		memmove(l->e, l->e + drop, (l->n - drop) * sizeof(l->e[0]));
		l->n -= drop;
	}
	l->snap_index = s->index;
	l->snap_term = s->term;
	l->snap_conf = s->conf;
	assert_true(s->len <= sizeof(l->snap_data));
	l->snap_len = s->len;
	memcpy(l->snap_data, s->data, s->len);
}

/* ---- cluster driver ---- */

static void node_start(struct cluster *c, uint32_t id)
{
	struct tnode *t = &c->n[id];
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.group_id = 7;
	cfg.self = id;
	cfg.n_voters = c->voters;
	for (uint32_t i = 0; i < c->voters; i++)
		cfg.voters[i] = i + 1;
	cfg.seed = 1234;
	cfg.election_timeout_ns = 100 * MS;
	cfg.heartbeat_interval_ns = 20 * MS;
	cfg.max_batch_entries = c->max_batch;
	cfg.max_inflight_bytes = 4096;
	cfg.initial = t->lg.hs;
	cfg.log = &t->lg.log;
	cfg.proto_opts = &c->opts;
	cfg.rejoin = t->rejoin;
	assert_int_equal(R->create(&cfg, &t->st), 0);
	t->up = true;
	t->applied = t->lg.snap_index;
	R->tick(t->st, c->now);
}

/* A cluster whose replicas run with `opts` (NULL: the defaults). */
static struct cluster *cluster_new_opts(uint32_t size, uint32_t voters,
					const struct sl_raft_opts *opts)
{
	struct cluster *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->q = calloc(QMAX, sizeof(*c->q));
	assert_non_null(c->q);
	c->size = size;
	c->voters = voters;
	c->now = 1000 * MS;
	c->max_batch = 64;
	if (opts != NULL)
		c->opts = *opts;
	for (uint32_t i = 1; i <= size; i++) {
		ml_init(&c->n[i].lg);
		node_start(c, i);
	}
	return c;
}

static struct cluster *cluster_new(uint32_t size, uint32_t voters)
{
	return cluster_new_opts(size, voters, NULL);
}

static void cluster_free(struct cluster *c)
{
	for (uint32_t i = 1; i <= c->size; i++)
		if (c->n[i].up)
			R->destroy(c->n[i].st);
	free(c->q);
	free(c);
}

static void crash(struct cluster *c, uint32_t id)
{
	R->destroy(c->n[id].st);
	c->n[id].up = false;
}

static void handle_ready(struct cluster *c, uint32_t id)
{
	struct tnode *t = &c->n[id];
	for (int guard = 0; R->has_ready(t->st); guard++) {
		assert_true(guard < 10000);
		struct sl_cons_ready rd;
		R->ready(t->st, &rd);
		struct mlog *l = &t->lg;
		if (rd.has_snapshot) {
			l->n = 0; /* an installed snapshot replaces the whole log */
			ml_compact(l, &rd.snapshot);
			t->applied = rd.snapshot.index;
			t->last_applied_byte = rd.snapshot.len ? rd.snapshot.data[0] : 0;
		}
		for (uint32_t i = 0; i < rd.n_persist; i++) {
			const struct sl_cons_entry *e = &rd.persist[i];
			assert_true(e->index > l->snap_index);
			l->n = e->index - l->snap_index - 1; /* truncate, then append */
			assert_true(l->n < LOGMAX);
			struct ment *m = &l->e[l->n++];
			m->term = e->term;
			m->type = e->type;
			m->len = e->len;
			memcpy(m->data, e->data, e->len);
		}
		if (rd.has_hard_state)
			l->hs = rd.hard_state;
		for (uint32_t i = 0; i < rd.n_msgs; i++) {
			const struct sl_cons_msg *m = &rd.msgs[i];
			assert_int_equal(m->from, id);
			if (c->cut[m->from][m->to] || m->to > c->size)
				continue;
			if (c->drop != NULL && c->drop(c, m))
				continue;
			assert_true(c->nq < QMAX && m->len <= sizeof(c->q[0].buf));
			struct qmsg *q = &c->q[c->nq++];
			q->from = m->from;
			q->to = m->to;
			q->len = m->len;
			memcpy(q->buf, m->buf, m->len);
		}
		for (uint32_t i = 0; i < rd.n_committed; i++) {
			const struct sl_cons_entry *e = &rd.committed[i];
			assert_int_equal(e->index, t->applied + 1);
			t->applied = e->index;
			if (e->type == SL_CONS_ENTRY_NORMAL && e->len > 0) {
				t->last_applied_byte = e->data[0];
				t->n_applied_normal++;
			}
		}
		for (uint32_t i = 0; i < rd.n_acks && t->n_acks < 256; i++)
			t->acks[t->n_acks++] = rd.acks[i];
		for (uint32_t i = 0; i < rd.n_reads && t->n_reads < 64; i++)
			t->reads[t->n_reads++] = rd.reads[i];
		uint64_t last_term = 0, last_idx = 0;
		if (rd.n_persist > 0) {
			last_term = rd.persist[rd.n_persist - 1].term;
			last_idx = rd.persist[rd.n_persist - 1].index;
		} else if (rd.has_snapshot) {
			last_term = rd.snapshot.term;
			last_idx = rd.snapshot.index;
		}
		R->advance(t->st, &rd);
		if (last_idx > 0 && !t->no_persist)
			R->persisted(t->st, last_term, last_idx);
	}
}

static void pump(struct cluster *c)
{
	for (int round = 0; round < 1000; round++) {
		for (uint32_t i = 1; i <= c->size; i++)
			if (c->n[i].up)
				handle_ready(c, i);
		if (c->nq == 0)
			return;
		uint32_t n = c->nq;
		struct qmsg *batch = malloc(n * sizeof(*batch));
		assert_non_null(batch);
		memcpy(batch, c->q, n * sizeof(*batch));
		c->nq = 0;
		for (uint32_t i = 0; i < n; i++) {
			struct tnode *t = &c->n[batch[i].to];
			if (!t->up)
				continue;
			struct sl_cons_msg m = {7, batch[i].from, batch[i].to, batch[i].len,
						batch[i].buf};
			assert_int_equal(R->step(t->st, &m), 0);
		}
		free(batch);
	}
	fail_msg("network did not quiesce");
}

static void run(struct cluster *c, uint64_t ms)
{
	for (uint64_t i = 0; i < ms; i++) {
		c->now += MS;
		for (uint32_t k = 1; k <= c->size; k++)
			if (c->n[k].up)
				R->tick(c->n[k].st, c->now);
		pump(c);
	}
}

static struct sl_cons_status status(struct cluster *c, uint32_t id)
{
	struct sl_cons_status s;
	R->status(c->n[id].st, &s);
	return s;
}

static uint32_t leader(struct cluster *c)
{
	uint32_t l = 0;
	for (uint32_t i = 1; i <= c->size; i++)
		if (c->n[i].up && status(c, i).role == SL_CONS_ROLE_LEADER) {
			assert_int_equal(l, 0); /* never two leaders at once in these scenarios */
			l = i;
		}
	return l;
}

static void isolate(struct cluster *c, uint32_t id, bool on)
{
	for (uint32_t i = 1; i <= NMAX; i++) {
		c->cut[id][i] = on;
		c->cut[i][id] = on;
	}
}

static int propose(struct cluster *c, uint32_t id, uint64_t pid, uint8_t byte)
{
	uint8_t d[4] = {byte, 1, 2, 3};
	int rc = R->propose(c->n[id].st, pid, d, sizeof(d));
	pump(c);
	return rc;
}

static bool acked_ok(struct tnode *t, uint64_t pid)
{
	for (uint32_t i = 0; i < t->n_acks; i++)
		if (t->acks[i].proposal_id == pid)
			return t->acks[i].status == SL_CONS_ACK_OK;
	return false;
}

/* The start of most scenarios: three voters, 400 ms for the first election; *l is the
 * leader (0 if none, which the caller asserts on where it matters). */
static struct cluster *cluster_elected(uint32_t *l)
{
	struct cluster *c = cluster_new(3, 3);
	run(c, 400);
	*l = leader(c);
	return c;
}

/* Re-creates replica id from its log, so it runs with what the test changed in c->opts or
 * c->max_batch since. */
static void restart(struct cluster *c, uint32_t id)
{
	R->destroy(c->n[id].st);
	node_start(c, id);
}

/* Follower f falls behind: cut off while leader l commits n entries (proposal ids
 * pid_base + k, first byte k, k = 1..n) over 20 ms. */
static void fall_behind(struct cluster *c, uint32_t l, uint32_t f, uint64_t pid_base, uint8_t n)
{
	isolate(c, f, true);
	for (uint8_t k = 1; k <= n; k++)
		propose(c, l, pid_base + k, k);
	run(c, 20);
}

/* Every replica but f snapshots at what it applied, with `len` bytes of img as the image,
 * and compacts its log: f can only catch up by a snapshot. */
static void compact_all_but(struct cluster *c, uint32_t f, const uint8_t *img, uint32_t len)
{
	for (uint32_t i = 1; i <= c->size; i++) {
		if (i == f)
			continue;
		struct sl_cons_snapshot meta;
		struct tnode *t = &c->n[i];
		assert_int_equal(sl_raft_snapshot_meta(t->st, t->applied, &meta), 0);
		meta.data = img;
		meta.len = len;
		ml_compact(&t->lg, &meta);
	}
}

/* Replica id loses its disk: it is down with an empty log and nothing applied, and starts
 * (node_start) in rejoin mode. */
static void lose_disk(struct cluster *c, uint32_t id)
{
	crash(c, id);
	ml_init(&c->n[id].lg);
	c->n[id].applied = 0;
	c->n[id].last_applied_byte = 0;
	c->n[id].rejoin = true;
}

/* ---- tests ---- */

static void test_registry(void **u)
{
	(void)u;
	assert_ptr_equal(sl_cons_find("raft"), &sl_cons_raft_ops);
	assert_ptr_equal(sl_cons_find("standalone"), &sl_cons_standalone_ops);
}

static void test_single_voter_commits_after_persist(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(1, 1);
	run(c, 300);
	assert_int_equal(leader(c), 1);
	c->n[1].no_persist = true;
	assert_int_equal(propose(c, 1, 42, 9), 0);
	run(c, 5);
	assert_false(acked_ok(&c->n[1], 42)); /* never acknowledged before durable */
	struct sl_cons_status s = status(c, 1);
	assert_true(s.commit_index < s.last_index);
	R->persisted(c->n[1].st, s.term, s.last_index);
	pump(c);
	assert_true(acked_ok(&c->n[1], 42));
	assert_int_equal(c->n[1].last_applied_byte, 9);
	cluster_free(c);
}

static void test_election_and_replication(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	assert_true(l != 0);
	for (uint32_t i = 1; i <= 3; i++)
		if (i != l) {
			assert_int_equal(propose(c, i, 1, 1), -EPERM);
			assert_int_equal(status(c, i).leader, l);
		}
	for (uint8_t k = 1; k <= 20; k++)
		assert_int_equal(propose(c, l, 100 + k, k), 0);
	run(c, 100);
	for (uint8_t k = 1; k <= 20; k++)
		assert_true(acked_ok(&c->n[l], 100 + k));
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(c->n[i].n_applied_normal, 20);
		assert_int_equal(c->n[i].last_applied_byte, 20);
		assert_int_equal(c->n[i].applied, status(c, l).commit_index);
	}
	cluster_free(c);
}

static void test_prevote_keeps_isolated_term(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	uint32_t f = l == 1 ? 2 : 1;
	uint64_t term = status(c, l).term;
	isolate(c, f, true);
	run(c, 2000);
	/* pre-vote: an isolated replica campaigns without raising its term */
	assert_int_equal(status(c, f).term, term);
	isolate(c, f, false);
	run(c, 300);
	assert_int_equal(leader(c), l); /* rejoining did not disrupt the leader */
	assert_int_equal(status(c, l).term, term);
	cluster_free(c);
}

static void test_check_quorum_steps_down(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	isolate(c, l, true);
	run(c, 400);
	assert_int_not_equal(status(c, l).role, SL_CONS_ROLE_LEADER);
	assert_int_equal(propose(c, l, 5, 5), -EPERM);
	uint32_t l2 = leader(c);
	assert_true(l2 != 0 && l2 != l);
	cluster_free(c);
}

/* Wire offsets of an append (white box): header 16, prev 8, prev term 8, commit 8, count 4,
 * then the first entry's term 8, type 1, length 4, data. */
#define APPEND_TYPE 5
#define APPEND_N_OFF 40
#define APPEND_E0_TYPE_OFF 52
#define APPEND_E0_DATA_OFF 57

static bool drop_appends(struct cluster *c, const struct sl_cons_msg *m)
{
	(void)c;
	return m->buf[1] == APPEND_TYPE;
}

/* Let entry X (first byte 0xEE) through, then lose every append carrying the no-op. */
static bool drop_noop_after_x(struct cluster *c, const struct sl_cons_msg *m)
{
	if (m->buf[1] != APPEND_TYPE || m->len < APPEND_E0_DATA_OFF ||
	    sl_get_u32(m->buf + APPEND_N_OFF) == 0)
		return false;
	uint8_t type = m->buf[APPEND_E0_TYPE_OFF];
	if (type == SL_CONS_ENTRY_NORMAL && m->len > APPEND_E0_DATA_OFF &&
	    m->buf[APPEND_E0_DATA_OFF] == 0xEE) {
		c->seen_x = true;
		return false;
	}
	return c->seen_x && type == SL_CONS_ENTRY_NOOP;
}

/* Raft's Figure 8: an entry of an earlier term stored on a majority is not committed by
 * counting replicas; it commits only with an entry of the leader's own term. */
static void test_no_commit_of_previous_term_by_counting(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(3, 3);
	c->max_batch = 1; /* X and the new leader's no-op travel in separate messages */
	for (uint32_t i = 1; i <= 3; i++)
		restart(c, i);
	run(c, 400);
	uint32_t a = leader(c);
	/* 1. leader a appends X in its term, alone, and dies */
	isolate(c, a, true);
	assert_int_equal(propose(c, a, 77, 0xEE), 0);
	uint64_t x_index = status(c, a).last_index;
	crash(c, a);
	isolate(c, a, false);
	/* 2. another replica wins a newer term; its no-op at X's index stays local; it dies */
	c->drop = drop_appends;
	run(c, 600);
	uint32_t b = leader(c);
	assert_true(b != 0 && b != a);
	assert_int_equal(status(c, b).last_index, x_index);
	crash(c, b);
	/* 3. a comes back and wins (its log ends with X); X reaches the third replica, so it
	 * is on a majority, but a's own no-op is lost on the way */
	c->drop = drop_noop_after_x;
	node_start(c, a);
	run(c, 600);
	assert_int_equal(leader(c), a);
	assert_true(c->seen_x);
	uint32_t third = 6 - a - b;
	assert_true(status(c, third).last_index >= x_index);
	assert_true(status(c, a).commit_index < x_index); /* not by counting */
	/* 4. once the no-op of a's term is replicated, X commits with it */
	c->drop = NULL;
	run(c, 200);
	assert_true(status(c, a).commit_index > x_index);
	assert_int_equal(c->n[third].last_applied_byte, 0xEE);
	cluster_free(c);
}

static void test_leader_transfer(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	uint32_t t = l % 3 + 1;
	assert_int_equal(sl_raft_transfer_leader(c->n[l].st, 9), -EINVAL);
	assert_int_equal(sl_raft_transfer_leader(c->n[t].st, l), -EPERM);
	assert_int_equal(sl_raft_transfer_leader(c->n[l].st, t), 0);
	assert_int_equal(propose(c, l, 1, 1), -EBUSY);
	run(c, 50);
	assert_int_equal(leader(c), t);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[l].st, &st);
	assert_int_equal(st.transfers, 1);
	cluster_free(c);
}

static void test_read_index_and_lease(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(3, 3);
	c->opts.lease_reads = true;
	for (uint32_t i = 1; i <= 3; i++)
		restart(c, i);
	run(c, 400);
	uint32_t l = leader(c);
	assert_int_equal(propose(c, l, 1, 3), 0);
	run(c, 10);
	uint64_t commit = status(c, l).commit_index;
	/* ReadIndex: answered only after a quorum round trip */
	isolate(c, l, true);
	assert_int_equal(sl_raft_read_index(c->n[l].st, 501, false), 0);
	pump(c);
	assert_int_equal(c->n[l].n_reads, 0);
	isolate(c, l, false);
	run(c, 30);
	assert_int_equal(c->n[l].n_reads, 1);
	assert_int_equal(c->n[l].reads[0].read_id, 501);
	assert_int_equal(c->n[l].reads[0].status, SL_CONS_ACK_OK);
	assert_int_equal(c->n[l].reads[0].index, commit);
	/* lease: answered locally while valid, even when the network is gone */
	assert_true(sl_raft_lease_valid(c->n[l].st));
	isolate(c, l, true);
	assert_int_equal(sl_raft_read_index(c->n[l].st, 502, true), 0);
	pump(c);
	assert_int_equal(c->n[l].n_reads, 2);
	assert_int_equal(c->n[l].reads[1].status, SL_CONS_ACK_OK);
	run(c, 150); /* past the lease: it must have expired */
	assert_false(sl_raft_lease_valid(c->n[l].st));
	/* followers cannot serve reads */
	uint32_t f = l % 3 + 1;
	assert_int_equal(sl_raft_read_index(c->n[f].st, 503, false), -EPERM);
	cluster_free(c);
}

/* Learners set outside the log (set_learners, what a data node does while ctld catches
 * a new replica up before a segment's seal): the leader replicates to them, they count
 * for no commit and never campaign; taken away, they get nothing more. */
static void test_set_learners(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(4, 3); /* node 4 starts outside the group */
	run(c, 400);
	uint32_t l = leader(c);
	for (uint8_t k = 0; k < 20; k++)
		propose(c, l, 10 + k, k);
	run(c, 50);
	assert_int_equal(c->n[4].n_applied_normal, 0);
	const uint32_t four = 4, one = 1;
	assert_int_equal(R->set_learners(c->n[l].st, &one, 1), -EINVAL); /* a voter */
	assert_int_equal(R->set_learners(c->n[4].st, &four, 1), 0);
	assert_int_equal(R->set_learners(c->n[l].st, &four, 1), 0);
	run(c, 100);
	assert_int_equal(c->n[4].n_applied_normal, 20);
	assert_int_equal(status(c, 4).role, SL_CONS_ROLE_LEARNER);
	struct sl_cons_conf conf;
	sl_raft_conf(c->n[l].st, &conf);
	assert_int_equal(conf.n_voters, 3);
	assert_int_equal(conf.n_learners, 1);
	/* it counts for no commit: with two voters cut off nothing commits */
	uint32_t f1 = l % 3 + 1, f2 = f1 % 3 + 1;
	isolate(c, f1, true);
	isolate(c, f2, true);
	assert_int_equal(propose(c, l, 100, 1), 0);
	run(c, 80);
	assert_false(acked_ok(&c->n[l], 100));
	isolate(c, f1, false);
	isolate(c, f2, false);
	run(c, 400);
	/* and it never leads */
	assert_int_not_equal(leader(c), 4);
	uint32_t l2 = leader(c);
	/* a new leader replicates to the learners it was told of: tell every voter, as
	 * each data node does from ctld's map */
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(R->set_learners(c->n[i].st, &four, 1), 0);
	for (uint8_t k = 0; k < 5; k++)
		propose(c, l2, 200 + k, k);
	run(c, 100);
	uint64_t had = c->n[4].n_applied_normal;
	assert_true(had >= 26);
	/* taken away: nothing more reaches it */
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(R->set_learners(c->n[i].st, NULL, 0), 0);
	for (uint8_t k = 0; k < 5; k++)
		propose(c, l2, 300 + k, k);
	run(c, 100);
	assert_int_equal(c->n[4].n_applied_normal, had);
	/* once a CONF entry rules the membership, learners go through the log */
	assert_int_equal(sl_raft_change(c->n[l2].st, 400, SL_RAFT_ADD_LEARNER, 4), 0);
	assert_int_equal(R->set_learners(c->n[l2].st, NULL, 0), -EBUSY);
	cluster_free(c);
}

/* A learner that drops its copy (sluiced does at a restart: its epochs line says 'n') and
 * opens an empty one: the leader's progress for it had matched far along, and it must go
 * back (the learner counts for no commit) or the leader probes it above its empty log
 * forever and it never catches up. */
static void test_learner_restarts_empty(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(4, 3);
	run(c, 400);
	uint32_t l = leader(c);
	const uint32_t four = 4;
	assert_int_equal(R->set_learners(c->n[4].st, &four, 1), 0);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(R->set_learners(c->n[i].st, &four, 1), 0);
	for (uint8_t k = 0; k < 20; k++)
		propose(c, l, 10 + k, k);
	run(c, 100);
	assert_int_equal(status(c, 4).applied_index, status(c, l).applied_index);
	/* its copy goes: an empty log, nothing applied, a learner again */
	crash(c, 4);
	ml_init(&c->n[4].lg);
	c->n[4].applied = 0;
	c->n[4].last_applied_byte = 0;
	node_start(c, 4);
	assert_int_equal(R->set_learners(c->n[4].st, &four, 1), 0);
	/* an idle group sends it heartbeats only: they say the leader's match is past its
	 * log, and it says so */
	run(c, 300);
	assert_int_equal(status(c, 4).applied_index, status(c, l).applied_index);
	for (uint8_t k = 0; k < 5; k++)
		propose(c, l, 100 + k, k);
	run(c, 300);
	assert_int_equal(status(c, 4).role, SL_CONS_ROLE_LEARNER);
	assert_int_equal(status(c, 4).applied_index, status(c, l).applied_index);
	cluster_free(c);
}

/* A leader whose outbox is nearly full: an append whose fixed part does not fit the room
 * left is dropped (counted), never written past the outbox (ASan sees a write there; the
 * CI runs this suite under it). Outbox sizes are swept so that the room left at some
 * append falls between a header and the append's fixed part. */
static void test_outbox_nearly_full(void **u)
{
	(void)u;
	uint32_t dropped = 0, committed = 0;
	for (uint32_t ob = 256; ob < 700; ob++) {
		struct sl_raft_opts o;
		memset(&o, 0, sizeof(o));
		o.max_msg_bytes = 256; /* the least: the outbox may be as small */
		o.max_outbox_bytes = ob;
		struct cluster *c = cluster_new_opts(3, 3, &o);
		c->max_batch = 1; /* one entry per append: the pipeline fills the outbox */
		for (uint32_t i = 1; i <= 3; i++)
			restart(c, i);
		run(c, 400);
		uint32_t l = leader(c);
		if (l != 0) {
			/* both followers fall behind, then are probed and caught up */
			isolate(c, l % 3 + 1, true);
			isolate(c, (l + 1) % 3 + 1, true);
			for (uint8_t k = 0; k < 40; k++)
				(void)propose(c, l, 1 + k, k);
			run(c, 50);
			isolate(c, l % 3 + 1, false);
			isolate(c, (l + 1) % 3 + 1, false);
			run(c, 300);
			struct sl_raft_stats st;
			sl_raft_stats(c->n[l].st, &st);
			dropped += st.msgs_dropped_outbox > 0;
			uint64_t commit = status(c, l).commit_index;
			committed += commit > 1;
			for (uint32_t i = 1; i <= 3; i++)
				assert_true(status(c, i).commit_index <= commit);
		}
		cluster_free(c);
	}
	assert_true(dropped > 0);   /* the sweep reached a full outbox */
	assert_true(committed > 0); /* and groups that still made progress */
}

static void test_learner_then_promote(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(4, 3); /* node 4 starts outside the group */
	run(c, 400);
	uint32_t l = leader(c);
	for (uint8_t k = 0; k < 30; k++)
		propose(c, l, 10 + k, k);
	run(c, 50);
	assert_int_equal(sl_raft_change(c->n[l].st, 900, SL_RAFT_PROMOTE, 4), -EINVAL);
	isolate(c, 4, true);
	assert_int_equal(sl_raft_change(c->n[l].st, 901, SL_RAFT_ADD_LEARNER, 4), 0);
	/* a second change waits for the first to commit */
	assert_int_equal(sl_raft_change(c->n[l].st, 902, SL_RAFT_REMOVE, 4), -EAGAIN);
	run(c, 50);
	assert_true(acked_ok(&c->n[l], 901));
	/* the learner is cut off: it has not caught up, so it may not vote yet */
	assert_int_equal(sl_raft_change(c->n[l].st, 903, SL_RAFT_PROMOTE, 4), -EAGAIN);
	isolate(c, 4, false);
	run(c, 100);
	assert_int_equal(status(c, 4).role, SL_CONS_ROLE_LEARNER);
	assert_int_equal(c->n[4].n_applied_normal, 30);
	assert_int_equal(sl_raft_change(c->n[l].st, 904, SL_RAFT_PROMOTE, 4), 0);
	run(c, 50);
	struct sl_cons_conf conf;
	sl_raft_conf(c->n[4].st, &conf);
	assert_int_equal(conf.n_voters, 4);
	assert_int_equal(conf.n_learners, 0);
	assert_int_equal(status(c, 4).role, SL_CONS_ROLE_FOLLOWER);
	/* now remove a follower: the group keeps committing with three voters */
	uint32_t victim = l == 1 ? 2 : 1;
	assert_int_equal(sl_raft_change(c->n[l].st, 905, SL_RAFT_REMOVE, victim), 0);
	assert_int_equal(sl_raft_change(c->n[l].st, 0, SL_RAFT_REMOVE, l), -EAGAIN);
	run(c, 50);
	assert_int_equal(sl_raft_change(c->n[l].st, 0, SL_RAFT_REMOVE, l), -EINVAL);
	crash(c, victim);
	assert_int_equal(propose(c, l, 906, 0x55), 0);
	run(c, 50);
	assert_true(acked_ok(&c->n[l], 906));
	cluster_free(c);
}

static void test_snapshot_for_lagging_follower(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	uint32_t f = l % 3 + 1;
	fall_behind(c, l, f, 0, 40);
	/* every live replica snapshots its state machine and compacts its log */
	for (uint32_t i = 1; i <= 3; i++) {
		if (i == f)
			continue;
		struct sl_cons_snapshot meta;
		struct tnode *t = &c->n[i];
		assert_int_equal(sl_raft_snapshot_meta(t->st, t->applied + 1, &meta), -EINVAL);
		assert_int_equal(sl_raft_snapshot_meta(t->st, t->applied, &meta), 0);
		assert_int_equal(meta.conf.n_voters, 3);
		uint8_t data[1] = {t->last_applied_byte};
		meta.data = data;
		meta.len = 1;
		ml_compact(&t->lg, &meta);
	}
	isolate(c, f, false);
	run(c, 100);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[f].st, &st);
	assert_int_equal(st.snapshots_installed, 1);
	assert_int_equal(c->n[f].last_applied_byte, 40);
	assert_int_equal(c->n[f].applied, status(c, l).commit_index);
	assert_int_equal(c->n[f].lg.snap_index, c->n[l].lg.snap_index);
	/* and it keeps replicating normally afterwards */
	assert_int_equal(propose(c, l, 99, 99), 0);
	run(c, 50);
	assert_int_equal(c->n[f].last_applied_byte, 99);
	cluster_free(c);
}

/* Lossy delivery for the chunked snapshot test: a quarter of the snapshot chunks and of
 * the follower's chunk acks are lost (a fixed pseudo-random sequence). */
static uint32_t snap_seen, snap_ack_seen, snap_lost, snap_rng;
static bool drop_some_snapshot_msgs(struct cluster *c, const struct sl_cons_msg *m)
{
	(void)c;
	bool chunk = m->len > 1 && m->buf[1] == 9 /* MsgSnap */;
	bool ack = m->len > 1 && m->buf[1] == 11 /* MsgSnapAck */;
	if (!chunk && !ack)
		return false;
	snap_seen += chunk;
	snap_ack_seen += ack;
	snap_rng = snap_rng * 1103515245u + 12345u;
	bool lose = (snap_rng >> 16) % 4 == 0;
	snap_lost += lose;
	return lose;
}

/* A snapshot far larger than one message (max_msg_bytes 256: about 200 image bytes per
 * chunk) reaches a lagging follower in chunks, through lost chunks and lost acks (the
 * leader goes back to what the follower acknowledged), and is installed byte for byte;
 * one larger than the follower's max_snapshot_bytes is refused and counted. */
static void test_snapshot_in_chunks(void **u)
{
	(void)u;
	const struct sl_raft_opts small = {.max_msg_bytes = 256, .max_snapshot_bytes = 3000};
	struct cluster *c = cluster_new_opts(3, 3, &small);
	run(c, 400);
	uint32_t l = leader(c);
	uint32_t f = l % 3 + 1;
	fall_behind(c, l, f, 0, 20);
	uint8_t img[4096];
	for (uint32_t b = 0; b < sizeof(img); b++)
		img[b] = (uint8_t)(b * 7 + b / 251);
	compact_all_but(c, f, img, 2900);
	snap_seen = snap_ack_seen = snap_lost = 0;
	snap_rng = 42;
	c->drop = drop_some_snapshot_msgs;
	isolate(c, f, false);
	run(c, 3000);
	struct sl_raft_stats st, ls;
	sl_raft_stats(c->n[f].st, &st);
	sl_raft_stats(c->n[l].st, &ls);
	assert_int_equal(st.snapshots_installed, 1);
	assert_true(st.snapshot_chunks_received >= 2900 / 256);
	assert_true(st.snapshot_chunks_refused > 0); /* chunks after a lost one */
	assert_true(snap_lost >= 4 && snap_ack_seen >= 4);
	assert_true(ls.snapshot_chunks_sent > st.snapshot_chunks_received);
	/* every image byte taken once, in order; the lost chunks were sent again */
	assert_int_equal(st.snapshot_bytes_received, 2900);
	assert_true(ls.snapshot_bytes_sent > 2900);
	assert_int_equal(c->n[f].lg.snap_len, 2900);
	assert_memory_equal(c->n[f].lg.snap_data, img, 2900);
	assert_int_equal(c->n[f].lg.snap_index, c->n[l].lg.snap_index);
	c->drop = NULL;
	assert_int_equal(propose(c, l, 99, 99), 0);
	run(c, 50);
	assert_int_equal(c->n[f].last_applied_byte, 99);

	/* an image over the follower's bound: refused, counted, never installed */
	fall_behind(c, l, f, 200, 20);
	compact_all_but(c, f, img, 3001);
	isolate(c, f, false);
	run(c, 300);
	sl_raft_stats(c->n[f].st, &st);
	assert_int_equal(st.snapshots_installed, 1);
	assert_true(st.snapshots_refused > 0);
	assert_true(c->n[f].lg.snap_index < c->n[l].lg.snap_index);
	cluster_free(c);
}

/* A replica that lost its disk comes back under its old id with cfg.rejoin: it never
 * votes or campaigns and its acks commit nothing until it holds the log up to a commit
 * index the leader reached without it; then it is an ordinary voter again, whose acks
 * count. */
static void test_rejoin_after_lost_state(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	uint32_t w = l % 3 + 1, o = w % 3 + 1; /* the wiped node and the other follower */
	if (o == l)
		o = o % 3 + 1;
	for (uint8_t k = 1; k <= 10; k++)
		propose(c, l, k, k);
	run(c, 20);
	assert_int_equal(c->n[w].last_applied_byte, 10);
	lose_disk(c, w);
	isolate(c, o, true); /* only the leader and the rejoining node can talk */
	node_start(c, w);
	assert_true(status(c, w).rejoining);
	uint64_t commit = status(c, l).commit_index;
	assert_int_equal(propose(c, l, 50, 50), 0);
	run(c, 300);
	/* its acks do not make a majority: nothing new commits */
	assert_int_equal(status(c, l).commit_index, commit);
	assert_true(status(c, w).rejoining);
	/* the leader goes: the rejoining node neither campaigns nor votes */
	isolate(c, l, true);
	isolate(c, o, false);
	run(c, 1500);
	assert_int_not_equal(status(c, w).role, SL_CONS_ROLE_LEADER);
	assert_int_not_equal(status(c, o).role, SL_CONS_ROLE_LEADER);
	assert_true(status(c, w).rejoining);
	/* all heal: it catches up, holds the new term's entries, and is a voter again */
	isolate(c, l, false);
	run(c, 1500);
	uint32_t nl = leader(c);
	assert_int_not_equal(nl, 0);
	assert_false(status(c, w).rejoining);
	assert_int_equal(c->n[w].applied, status(c, nl).commit_index);
	/* now it counts: with one other node down, it and the leader commit */
	uint32_t down = nl % 3 + 1 == w ? w % 3 + 1 : nl % 3 + 1;
	isolate(c, down, true);
	assert_int_equal(propose(c, nl, 60, 60), 0);
	run(c, 100);
	assert_int_equal(c->n[w].last_applied_byte, 60);
	cluster_free(c);
}

/* The same in an idle group: nothing is proposed after the wipe, so only heartbeats
 * flow; the leader learns of the rejoin from a heartbeat response, sends the log again
 * (its view of the follower's log is void) and the follower leaves rejoin mode. */
static void test_rejoin_idle_group(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	uint32_t w = l % 3 + 1;
	for (uint8_t k = 1; k <= 10; k++)
		propose(c, l, k, k);
	run(c, 50);
	lose_disk(c, w);
	node_start(c, w);
	run(c, 1000);
	assert_int_equal(leader(c), l);
	assert_false(status(c, w).rejoining);
	assert_int_equal(c->n[w].last_applied_byte, 10);
	assert_int_equal(c->n[w].applied, status(c, l).commit_index);
	cluster_free(c);
}

static void test_restart_recovers_durable_state(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	for (uint8_t k = 1; k <= 5; k++)
		propose(c, l, k, k);
	run(c, 50);
	uint64_t term = status(c, l).term;
	for (uint32_t i = 1; i <= 3; i++)
		crash(c, i);
	for (uint32_t i = 1; i <= 3; i++) {
		c->n[i].applied = 0;
		c->n[i].n_applied_normal = 0;
		node_start(c, i);
		assert_true(status(c, i).term >= term);
	}
	run(c, 600);
	assert_true(leader(c) != 0);
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(c->n[i].n_applied_normal, 5); /* replayed from the log */
		assert_int_equal(c->n[i].last_applied_byte, 5);
	}
	cluster_free(c);
}

static void test_storage_failure_fails_proposals(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(1, 1);
	run(c, 300);
	c->n[1].no_persist = true;
	assert_int_equal(propose(c, 1, 8, 8), 0);
	R->storage_failed(c->n[1].st, status(c, 1).last_index, -EIO);
	pump(c);
	assert_int_equal(c->n[1].n_acks, 1);
	assert_int_equal(c->n[1].acks[0].status, SL_CONS_ACK_STORAGE);
	assert_int_equal(R->propose(c->n[1].st, 9, (const uint8_t *)"x", 1), -EIO);
	cluster_free(c);
}

static void test_bad_messages(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(3, 3);
	uint8_t junk[32];
	memset(junk, 0, sizeof(junk));
	struct sl_cons_msg m = {7, 2, 1, sizeof(junk), junk};
	assert_int_equal(R->step(c->n[1].st, &m), -EBADMSG);
	junk[0] = 1;
	junk[1] = 5;
	assert_int_equal(R->step(c->n[1].st, &m), -EBADMSG); /* checksum */
	m.group_id = 8;
	assert_int_equal(R->step(c->n[1].st, &m), -EINVAL);
	m.group_id = 7;
	m.to = 3;
	assert_int_equal(R->step(c->n[1].st, &m), -EINVAL);
	m.len = 4;
	m.to = 1;
	assert_int_equal(R->step(c->n[1].st, &m), -EBADMSG);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[1].st, &st);
	assert_int_equal(st.msgs_bad, 3);
	cluster_free(c);
}

/* ---- size bounds: what a peer or the recovered log can make the replica copy ---- */

/* FNV-1a as raft.c checksums messages (white box, like the offsets above). */
static uint32_t wire_fnv(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Header (version 1, type, no flags, term) now; the checksum once the body is written. */
static void wire_header(uint8_t *b, uint8_t type, uint64_t term)
{
	memset(b, 0, 16);
	b[0] = 1;
	b[1] = type;
	sl_put_u64(b + 8, term);
}

static uint32_t wire_seal(uint8_t *b, uint32_t n)
{
	sl_put_u32(b + 4, wire_fnv(b + 8, n - 8));
	return n;
}

/* An append carrying one entry of `len` bytes, from a leader of `term`, committing it;
 * returns the message length. */
static uint32_t wire_append_one(uint8_t *b, uint64_t term, uint32_t len)
{
	memset(b, 0, APPEND_E0_DATA_OFF + len);
	wire_header(b, APPEND_TYPE, term);
	sl_put_u64(b + 32, 1); /* prev 0, prev term 0, commit 1 */
	sl_put_u32(b + APPEND_N_OFF, 1);
	sl_put_u64(b + 44, term);
	b[APPEND_E0_TYPE_OFF] = SL_CONS_ENTRY_NORMAL;
	sl_put_u32(b + 53, len);
	memset(b + APPEND_E0_DATA_OFF, 0xAB, len);
	return wire_seal(b, APPEND_E0_DATA_OFF + len);
}

/* A snapshot of `index` (term 1, voters 1-3, 4 bytes of data in one chunk) from a leader
 * of `term`. */
static uint32_t wire_snapshot(uint8_t *b, uint64_t term, uint64_t index)
{
	wire_header(b, 9, term);
	sl_put_u64(b + 16, index);
	sl_put_u64(b + 24, 1);
	b[32] = 3; /* voters 1, 2, 3; no learners */
	for (uint32_t i = 0; i < 3; i++)
		sl_put_u32(b + 33 + 4 * i, i + 1);
	b[45] = 0;
	sl_put_u32(b + 46, 4); /* the whole image in one chunk: 4 bytes at offset 0 */
	sl_put_u32(b + 50, 0);
	sl_put_u32(b + 54, 4);
	memcpy(b + 58, "snap", 4);
	return wire_seal(b, 62);
}

/* Terms and snapshot indexes a peer names are bounded: a snapshot at index 2^64-1 made the
 * first index after it wrap to 0 (found by fuzz_raft), and a term there wraps on the next
 * election. Both are refused and counted; sane values still go through. */
static void test_peer_values_bounded(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(3, 3);
	uint8_t b[64];
	struct sl_cons_msg m = {7, 2, 1, wire_snapshot(b, 1, UINT64_MAX), b};
	assert_int_equal(R->step(c->n[1].st, &m), 0);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[1].st, &st);
	assert_int_equal(st.msgs_bad, 1);
	assert_int_equal(st.snapshots_installed, 0);
	assert_int_equal(status(c, 1).last_index, 0);
	m.len = wire_snapshot(b, UINT64_MAX, 5);
	assert_int_equal(R->step(c->n[1].st, &m), -EBADMSG);
	assert_int_equal(status(c, 1).term, 1);
	m.len = wire_snapshot(b, 2, 5);
	assert_int_equal(R->step(c->n[1].st, &m), 0);
	sl_raft_stats(c->n[1].st, &st);
	assert_int_equal(st.msgs_bad, 2);
	assert_int_equal(st.snapshots_installed, 1);
	assert_int_equal(status(c, 1).last_index, 5);
	assert_int_equal(status(c, 1).term, 2);
	cluster_free(c);
}

/* An append from `from` (leader of `term`) to node 1: entries after `prev`, each of type
 * types[i] with the bytes of datas[i]; returns the message length. */
static uint32_t wire_append(uint8_t *b, uint64_t term, uint64_t prev, uint64_t prev_term,
			    uint64_t commit, uint32_t n, const uint8_t *types,
			    const uint8_t *const *datas, const uint32_t *lens)
{
	wire_header(b, APPEND_TYPE, term);
	sl_put_u64(b + 16, prev);
	sl_put_u64(b + 24, prev_term);
	sl_put_u64(b + 32, commit);
	sl_put_u32(b + APPEND_N_OFF, n);
	uint32_t pos = APPEND_N_OFF + 4;
	for (uint32_t i = 0; i < n; i++) {
		sl_put_u64(b + pos, term);
		b[pos + 8] = types[i];
		sl_put_u32(b + pos + 9, lens[i]);
		memcpy(b + pos + 13, datas[i], lens[i]);
		pos += 13 + lens[i];
	}
	return wire_seal(b, pos);
}

/* A follower whose log below a configuration entry was compacted (after create()) and
 * which then has that entry cut by a new leader falls back to the membership of its
 * snapshot. It went back to the initial membership (the base it was created with), which
 * lacked the learner added since: found by sluice-sim's membership checker. */
static void test_truncated_conf_after_compaction(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(3, 3);
	struct tnode *t = &c->n[1];
	/* membership version 1: voters 1 2 3, learner 4 / voters 1 2 3 */
	const uint8_t add4[] = {1, 3, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 4, 0, 0, 0};
	const uint8_t drop4[] = {1, 3, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0};
	const uint8_t x[] = {0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	const uint8_t *d[2] = {add4, x};
	uint32_t len[2] = {sizeof(add4), sizeof(x)};
	uint8_t ty[2] = {SL_CONS_ENTRY_CONF, SL_CONS_ENTRY_NORMAL};
	uint8_t b[256];
	struct sl_cons_msg m = {7, 2, 1, wire_append(b, 1, 0, 0, 2, 2, ty, d, len), b};
	assert_int_equal(R->step(t->st, &m), 0);
	handle_ready(c, 1);
	assert_int_equal(t->applied, 2);
	/* the caller snapshots at 2 (learner 4 in it) and compacts its log */
	struct sl_cons_snapshot meta;
	assert_int_equal(sl_raft_snapshot_meta(t->st, 2, &meta), 0);
	assert_int_equal(meta.conf.n_learners, 1);
	uint8_t sd[1] = {0x11};
	meta.data = sd;
	meta.len = 1;
	ml_compact(&t->lg, &meta);
	/* leader 2 appends a change at 3 that never commits ... */
	d[0] = drop4;
	len[0] = sizeof(drop4);
	m.len = wire_append(b, 1, 2, 1, 2, 1, ty, d, len);
	assert_int_equal(R->step(t->st, &m), 0);
	handle_ready(c, 1);
	struct sl_cons_conf conf;
	sl_raft_conf(t->st, &conf);
	assert_int_equal(conf.n_learners, 0);
	/* ... and leader 3 of term 2 replaces it: back to the snapshot's membership */
	ty[0] = SL_CONS_ENTRY_NORMAL;
	d[0] = x;
	len[0] = sizeof(x);
	m.from = 3;
	m.len = wire_append(b, 2, 2, 1, 2, 1, ty, d, len);
	assert_int_equal(R->step(t->st, &m), 0);
	handle_ready(c, 1);
	assert_int_equal(status(c, 1).last_index, 3);
	sl_raft_conf(t->st, &conf);
	assert_int_equal(conf.n_voters, 3);
	assert_int_equal(conf.n_learners, 1);
	assert_int_equal(conf.learners[0], 4);
	cluster_free(c);
}

/* A message longer than max_msg_bytes is refused before it is read: its entry would
 * otherwise be appended (it fits the unstable buffer) and then copied, committed, into an
 * apply buffer smaller than itself. One of exactly max_msg_bytes is still taken. */
static void test_oversized_message_refused(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(3, 3);
	c->opts.max_msg_bytes = 256;
	c->opts.max_apply_bytes = 256;
	restart(c, 1);
	static uint8_t buf[4096];
	struct sl_cons_msg m = {7, 2, 1, wire_append_one(buf, 1, 1000), buf};
	assert_int_equal(R->step(c->n[1].st, &m), -EMSGSIZE);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[1].st, &st);
	assert_int_equal(st.msgs_too_big, 1);
	assert_int_equal(status(c, 1).last_index, 0);
	assert_int_equal(status(c, 1).term, 0); /* not even its term was looked at */
	m.len = wire_append_one(buf, 1, 256 - APPEND_E0_DATA_OFF);
	assert_int_equal(m.len, 256);
	assert_int_equal(R->step(c->n[1].st, &m), 0);
	assert_int_equal(status(c, 1).last_index, 1);
	assert_int_equal(status(c, 1).commit_index, 1);
	cluster_free(c);
}

/* A caller's log of one entry whose length the test controls (the recovered WAL). */
static uint8_t big_data[4096];
static uint32_t big_len;
static uint64_t bl_first(void *c) { return (void)c, 1; }
static uint64_t bl_last(void *c) { return (void)c, 1; }
static int bl_term(void *c, uint64_t i, uint64_t *t)
{
	(void)c;
	if (i > 1)
		return -ENOENT;
	*t = i;
	return 0;
}
static int bl_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	(void)c;
	if (i != 1)
		return -ENOENT;
	*o = (struct sl_cons_entry){1, 1, 0, SL_CONS_ENTRY_NORMAL, big_len, big_data};
	return 0;
}

static int create_on_big_log(uint32_t len, void **st)
{
	static const struct sl_cons_log lg = {NULL, bl_first, bl_last, bl_term, bl_entry, NULL};
	static const struct sl_raft_opts o = {.max_msg_bytes = 256, .max_apply_bytes = 256};
	big_len = len;
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.group_id = 7;
	cfg.self = 1;
	cfg.n_voters = 1;
	cfg.voters[0] = 1;
	cfg.initial = (struct sl_cons_hard_state){1, 1, 1}; /* the entry is committed */
	cfg.log = &lg;
	cfg.proto_opts = &o;
	return R->create(&cfg, st);
}

/* The recovered log is held to the proposal limit: an entry that no append message could
 * carry (written under larger limits, or damaged) is refused at create(). */
static void test_recovered_oversized_entry_refused(void **u)
{
	(void)u;
	void *st = NULL;
	assert_int_equal(create_on_big_log(1000, &st), -EMSGSIZE);
	assert_int_equal(create_on_big_log(256 - APPEND_E0_DATA_OFF + 1, &st), -EMSGSIZE);
	assert_int_equal(create_on_big_log(256 - APPEND_E0_DATA_OFF, &st), 0);
	R->destroy(st);
}

/* The copy into the apply buffer is bounded by the buffer, even for the first entry of a
 * ready: a log that changes under the protocol stops the apply there (counted) instead of
 * overrunning the buffer. */
static void test_apply_copy_bounded(void **u)
{
	(void)u;
	void *st = NULL;
	assert_int_equal(create_on_big_log(10, &st), 0);
	big_len = sizeof(big_data);
	assert_true(R->has_ready(st));
	struct sl_cons_ready rd;
	R->ready(st, &rd);
	assert_int_equal(rd.n_committed, 0);
	R->advance(st, &rd);
	struct sl_raft_stats rs;
	sl_raft_stats(st, &rs);
	assert_int_equal(rs.apply_too_big, 1);
	struct sl_cons_status s;
	R->status(st, &s);
	assert_int_equal(s.applied_index, 0);
	/* once the entry is as recovered again, it is handed out */
	big_len = 10;
	R->ready(st, &rd);
	assert_int_equal(rd.n_committed, 1);
	assert_int_equal(rd.committed[0].len, 10);
	R->advance(st, &rd);
	R->destroy(st);
}

/* sl_raft_msg_describe (the interaction tests print every message with it): well-formed
 * messages decoded field by field, damaged or short ones said to be so, output truncated
 * to the buffer and always terminated. */
/* ---- seal: the end of this log (one segment of a region's virtual log) ---- */

static int seal_at(struct cluster *c, uint32_t id, uint64_t pid)
{
	int rc = R->seal(c->n[id].st, pid, (const uint8_t *)"epoch2", 6);
	pump(c);
	return rc;
}

static uint32_t ack_status(struct tnode *t, uint64_t pid)
{
	for (uint32_t i = 0; i < t->n_acks; i++)
		if (t->acks[i].proposal_id == pid)
			return t->acks[i].status;
	return UINT32_MAX;
}

/* Only the leader seals; once a SEAL is in its log it takes no write and no membership
 * change, and every replica that applied it reports the same end. */
static void test_seal_refuses_later_writes(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	assert_true(l != 0);
	uint32_t f = l % 3 + 1;
	assert_int_equal(propose(c, l, 1, 1), 0);
	assert_int_equal(seal_at(c, f, 2), -EPERM);
	assert_int_equal(status(c, l).sealed_index, 0);
	assert_int_equal(seal_at(c, l, 3), 0);
	uint64_t si = status(c, l).last_index;
	assert_int_equal(propose(c, l, 4, 4), -EROFS); /* even before the SEAL commits */
	assert_int_equal(seal_at(c, l, 5), -EALREADY);
	assert_int_equal(sl_raft_change(c->n[l].st, 6, SL_RAFT_ADD_LEARNER, 4), -EROFS);
	run(c, 50);
	assert_int_equal(ack_status(&c->n[l], 1), SL_CONS_ACK_OK);
	assert_int_equal(ack_status(&c->n[l], 3), SL_CONS_ACK_OK);
	for (uint32_t i = 1; i <= 3; i++) {
		assert_int_equal(status(c, i).sealed_index, si);
		assert_int_equal(c->n[i].n_applied_normal, 1);
		assert_int_equal(propose(c, i, 7, 7), -EROFS); /* a follower knows it too */
	}
	/* the SEAL stays in the log: no snapshot is cut at or past it */
	struct sl_cons_snapshot meta;
	assert_int_equal(sl_raft_snapshot_meta(c->n[l].st, c->n[l].applied, &meta), -EROFS);
	char out[64];
	sl_raft_entry_describe(SL_CONS_ENTRY_SEAL, (const uint8_t *)"epoch2", 6, out, sizeof(out));
	assert_string_equal(out, "EntrySeal \"epoch2\"");
	cluster_free(c);
}

static bool drop_resps_to_1(struct cluster *c, const struct sl_cons_msg *m)
{
	(void)c;
	return m->to == 1 && m->buf[1] == APPEND_TYPE + 1;
}

/* A SEAL on a majority but not committed when its leader dies: the next leader holds it,
 * commits it with its own no-op and refuses writes as well. */
static void test_seal_survives_leader_change(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	assert_true(l != 0);
	if (l != 1) { /* replica 1 leads, so the filter below applies to it */
		assert_int_equal(sl_raft_transfer_leader(c->n[l].st, 1), 0);
		run(c, 100);
		assert_int_equal(leader(c), 1);
	}
	c->drop = drop_resps_to_1;
	uint64_t commit = status(c, 1).commit_index;
	assert_int_equal(seal_at(c, 1, 9), 0);
	uint64_t si = status(c, 1).last_index;
	run(c, 5);
	assert_int_equal(status(c, 1).commit_index, commit); /* nobody's answer got through */
	assert_int_equal(propose(c, 1, 8, 8), -EROFS);	     /* not committed, still refused */
	assert_int_equal(status(c, 2).last_index, si);
	crash(c, 1);
	c->drop = NULL;
	run(c, 600);
	uint32_t l2 = leader(c);
	assert_true(l2 == 2 || l2 == 3);
	assert_int_equal(status(c, l2).sealed_index, si);
	assert_true(status(c, l2).commit_index > si); /* the no-op of its term */
	assert_int_equal(propose(c, l2, 10, 10), -EROFS);
	assert_int_equal(seal_at(c, l2, 11), -EALREADY);
	cluster_free(c);
}

/* Leader *l, cut off, seals alone (proposal pid); it steps down (check-quorum) and the
 * others elect *l2. l stays cut off. */
static struct cluster *cluster_seal_cut_off(uint32_t *l, uint32_t *l2, uint64_t pid)
{
	struct cluster *c = cluster_elected(l);
	assert_true(*l != 0);
	isolate(c, *l, true);
	assert_int_equal(seal_at(c, *l, pid), 0);
	run(c, 600);
	*l2 = 0;
	for (uint32_t i = 1; i <= 3; i++)
		if (i != *l && status(c, i).role == SL_CONS_ROLE_LEADER)
			*l2 = i;
	assert_true(*l2 != 0);
	return c;
}

/* A SEAL that never commits is cut when a leader without it takes over: its proposal is
 * DROPPED, the log is open again, and the new leader can be sealed. */
static void test_truncated_seal_dropped(void **u)
{
	(void)u;
	uint32_t l, l2;
	struct cluster *c = cluster_seal_cut_off(&l, &l2, 21);
	assert_int_equal(propose(c, l2, 22, 22), 0);
	run(c, 20);
	isolate(c, l, false);
	run(c, 300);
	assert_int_equal(ack_status(&c->n[l], 21), SL_CONS_ACK_DROPPED);
	assert_int_equal(status(c, l).sealed_index, 0);
	assert_int_equal(c->n[l].last_applied_byte, 22); /* it follows l2's log */
	assert_int_equal(seal_at(c, l2, 23), 0);
	run(c, 50);
	assert_int_equal(ack_status(&c->n[l2], 23), SL_CONS_ACK_OK);
	assert_true(status(c, l).sealed_index > 0);
	cluster_free(c);
}

/* An uncommitted SEAL replaced by a snapshot of a log without it: the log is open again
 * and the SEAL's proposal DROPPED. */
static void test_seal_gone_with_snapshot(void **u)
{
	(void)u;
	uint32_t l, l2;
	struct cluster *c = cluster_seal_cut_off(&l, &l2, 51);
	for (uint8_t k = 1; k <= 5; k++)
		assert_int_equal(propose(c, l2, 60 + k, k), 0);
	run(c, 20);
	compact_all_but(c, l, (const uint8_t *)"img", 3);
	isolate(c, l, false);
	run(c, 300);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[l].st, &st);
	assert_int_equal(st.snapshots_installed, 1);
	assert_int_equal(ack_status(&c->n[l], 51), SL_CONS_ACK_DROPPED);
	assert_true(c->n[l].applied > status(c, l2).last_index - 5);
	assert_int_equal(status(c, l).sealed_index, 0);
	/* it can lead an open log */
	assert_int_equal(sl_raft_transfer_leader(c->n[l2].st, l), 0);
	run(c, 100);
	assert_int_equal(leader(c), l);
	assert_int_equal(propose(c, l, 70, 70), 0);
	cluster_free(c);
}

/* Restarted from their logs, the replicas still know the log is sealed. */
static void test_seal_survives_restart(void **u)
{
	(void)u;
	uint32_t l;
	struct cluster *c = cluster_elected(&l);
	assert_int_equal(seal_at(c, l, 31), 0);
	uint64_t si = status(c, l).last_index;
	run(c, 50);
	for (uint32_t i = 1; i <= 3; i++)
		crash(c, i);
	for (uint32_t i = 1; i <= 3; i++) {
		c->n[i].applied = 0;
		node_start(c, i);
	}
	run(c, 600);
	uint32_t l2 = leader(c);
	assert_true(l2 != 0);
	assert_int_equal(propose(c, l2, 32, 32), -EROFS);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(status(c, i).sealed_index, si);
	cluster_free(c);
}

/* Defence in depth: a committed NORMAL entry past a SEAL (which the rule above makes
 * impossible) is handed out as a no-op and counted, never applied. */
static void test_entry_past_seal_not_applied(void **u)
{
	(void)u;
	struct cluster *c = cluster_new(1, 1);
	crash(c, 1);
	struct mlog *lg = &c->n[1].lg;
	lg->e[0] = (struct ment){1, SL_CONS_ENTRY_NOOP, 0, {0}};
	lg->e[1] = (struct ment){1, SL_CONS_ENTRY_SEAL, 1, {'e'}};
	lg->e[2] = (struct ment){1, SL_CONS_ENTRY_NORMAL, 4, {0x55, 1, 2, 3}};
	lg->n = 3;
	lg->hs = (struct sl_cons_hard_state){1, 1, 3};
	node_start(c, 1);
	pump(c);
	assert_int_equal(c->n[1].applied, 3);
	assert_int_equal(c->n[1].n_applied_normal, 0);
	struct sl_raft_stats st;
	sl_raft_stats(c->n[1].st, &st);
	assert_int_equal(st.past_seal, 1);
	assert_int_equal(status(c, 1).sealed_index, 2);
	cluster_free(c);
}

static void test_msg_describe(void **u)
{
	(void)u;
	uint8_t b[256];
	char out[256];
	uint32_t n = wire_append_one(b, 3, 5);
	assert_int_equal(sl_raft_msg_describe(b, n, out, sizeof(out)), 0);
	assert_string_equal(out, "MsgApp Term:3 Log:0/0 Commit:1 Entries:[3/1 EntryNormal <5 bytes>]");
	n = wire_snapshot(b, 2, 7);
	assert_int_equal(sl_raft_msg_describe(b, n, out, sizeof(out)), 0);
	assert_string_equal(out,
			    "MsgSnap Term:2 Snapshot:1/7 Voters:(1,2,3) Learners:() Data:\"snap\"");
	assert_int_equal(sl_raft_msg_describe(b, n, out, 10), 0);
	assert_string_equal(out, "MsgSnap T");
	b[20] ^= 1; /* checksum no longer matches */
	assert_int_equal(sl_raft_msg_describe(b, n, out, sizeof(out)), -EBADMSG);
	assert_string_equal(out, "<undecodable message, 62 bytes>");
	wire_header(b, 3, 4); /* a vote request without its body */
	n = wire_seal(b, 16);
	assert_int_equal(sl_raft_msg_describe(b, n, out, sizeof(out)), -EBADMSG);
	assert_string_equal(out, "MsgVote Term:4 <truncated>");
	sl_raft_entry_describe(SL_CONS_ENTRY_NORMAL, (const uint8_t *)"a\"b", 3, out, sizeof(out));
	assert_string_equal(out, "EntryNormal <3 bytes>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_single_voter_commits_after_persist),
	    cmocka_unit_test(test_election_and_replication),
	    cmocka_unit_test(test_prevote_keeps_isolated_term),
	    cmocka_unit_test(test_check_quorum_steps_down),
	    cmocka_unit_test(test_no_commit_of_previous_term_by_counting),
	    cmocka_unit_test(test_leader_transfer),
	    cmocka_unit_test(test_read_index_and_lease),
	    cmocka_unit_test(test_learner_then_promote),
	    cmocka_unit_test(test_set_learners),
	    cmocka_unit_test(test_learner_restarts_empty), cmocka_unit_test(test_outbox_nearly_full),
	    cmocka_unit_test(test_snapshot_for_lagging_follower),
	    cmocka_unit_test(test_snapshot_in_chunks),
	    cmocka_unit_test(test_rejoin_after_lost_state),
	    cmocka_unit_test(test_rejoin_idle_group),
	    cmocka_unit_test(test_restart_recovers_durable_state),
	    cmocka_unit_test(test_storage_failure_fails_proposals),
	    cmocka_unit_test(test_bad_messages),
	    cmocka_unit_test(test_oversized_message_refused),
	    cmocka_unit_test(test_recovered_oversized_entry_refused),
	    cmocka_unit_test(test_apply_copy_bounded),
	    cmocka_unit_test(test_peer_values_bounded),
	    cmocka_unit_test(test_truncated_conf_after_compaction),
	    cmocka_unit_test(test_msg_describe),
	    cmocka_unit_test(test_seal_refuses_later_writes),
	    cmocka_unit_test(test_seal_survives_leader_change),
	    cmocka_unit_test(test_truncated_seal_dropped),
	    cmocka_unit_test(test_seal_survives_restart),
	    cmocka_unit_test(test_seal_gone_with_snapshot),
	    cmocka_unit_test(test_entry_past_seal_not_applied),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_multileader.c - the multileader protocol on a three-replica harness (in-memory logs
 * with a durable prefix, a lossy network, an LWW key-value state machine that checks each
 * origin's stream arrives in order): convergence, faults, nack/rewind, restart recovery,
 * ack levels, retention with snapshot catch-up, CAD and read-your-writes, bad messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consensus.h"
#include "lww.h"
#include "multileader.h"
#include "sl_le.h"

#define N 3u
#define KEYS 8u
#define LOGCAP (1u << 15)
#define NETCAP 8192u
#define MS 1000000ull
#define MAXACK 4096u
#define SNAPCAP 16384u

struct kv {
	uint64_t value, hlc;
	uint32_t origin;
};

struct hnode {
	uint32_t id;
	void *st;
	bool down;
	/* the log: entries[i] for first <= i <= last; durable up to synced */
	uint8_t *ent[LOGCAP];
	uint32_t elen[LOGCAP];
	uint32_t etype[LOGCAP]; /* the log keeps each entry's type (a SEAL) */
	uint64_t first, last, synced;
	uint8_t snap[SNAPCAP];
	uint32_t snap_len;
	uint64_t snap_index;
	uint8_t rx_img[SNAPCAP]; /* the last image handed out for a merge, as it came */
	uint32_t rx_len;
	struct sl_cons_log view;
	/* state machine */
	struct kv kv[KEYS];
	uint64_t vec[N + 1]; /* applied origin index by node id */
	uint64_t floor, applied;
	uint64_t order_errs, applies, seals_applied;
	uint64_t own_pids; /* own entries applied with their proposal's id (the host's match) */
	uint64_t sess_last[4];
	/* outcomes */
	uint8_t ack_status[MAXACK]; /* by proposal id: 0 none, 1 ok, 2 other */
	uint64_t read_index[64];
	uint32_t read_status[64];
	bool read_done[64];
};

struct netmsg {
	uint32_t from, to, len;
	uint8_t *buf;
};

static struct hnode nodes[N];
static struct netmsg net[NETCAP];
static uint32_t n_net;
static uint64_t now_ns = 1000 * MS;
static uint64_t rng = 42;
static struct sl_ml_opts opts;
static uint32_t drop_ppm, dup_ppm;
static bool reorder;
static bool cut[N + 1][N + 1]; /* cut[a][b]: a -> b lost */
static uint32_t no_batches_from; /* that node's batches are lost, its other messages not */
static uint32_t snap_pad;	 /* filler bytes after the state in every snapshot taken */
static bool snap_lossy;		 /* a quarter of snapshot chunks and acks are lost */
static uint32_t snap_lost;
static uint64_t pid_seq = 1;
static bool start_rejoin; /* start() creates the replica in rejoin mode (a wiped disk) */

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- the log read side ---- */

static uint64_t l_first(void *c) { return ((struct hnode *)c)->first; }
static uint64_t l_last(void *c) { return ((struct hnode *)c)->last; }
static int l_term(void *c, uint64_t i, uint64_t *t)
{
	struct hnode *h = c;
	if (i < h->first || i > h->last)
		return -ENOENT;
	*t = 1;
	return 0;
}
static int l_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	struct hnode *h = c;
	if (i < h->first || i > h->last)
		return -ENOENT;
	memset(o, 0, sizeof(*o));
	o->term = 1;
	o->index = i;
	o->len = h->elen[i % LOGCAP];
	o->data = h->ent[i % LOGCAP];
	o->type = h->etype[i % LOGCAP];
	return 0;
}
static int l_snap(void *c, struct sl_cons_snapshot *o)
{
	struct hnode *h = c;
	if (h->snap_len == 0)
		return -EAGAIN;
	memset(o, 0, sizeof(*o));
	o->index = h->snap_index;
	o->term = 1;
	o->len = h->snap_len;
	o->data = h->snap;
	return 0;
}

static uint32_t state_encode(struct hnode *h, uint8_t *buf)
{
	uint32_t ids[N];
	uint64_t idx[N];
	for (uint32_t i = 0; i < N; i++) {
		ids[i] = i + 1;
		idx[i] = h->vec[i + 1];
	}
	uint32_t off = sl_ml_snap_vec_put(buf, SNAPCAP, ids, idx, N);
	assert_true(off > 0);
	memcpy(buf + off, h->kv, sizeof(h->kv));
	off += (uint32_t)sizeof(h->kv);
	assert_true(off + snap_pad <= SNAPCAP);
	for (uint32_t b = 0; b < snap_pad; b++)
		buf[off + b] = (uint8_t)(b * 7 + b / 251);
	return off + snap_pad;
}

static void state_decode(struct hnode *h, const uint8_t *d, uint32_t len)
{
	uint32_t ids[N], n;
	uint64_t idx[N];
	int off = sl_ml_snap_vec_get(d, len, ids, idx, N, &n);
	assert_true(off > 0);
	memset(h->vec, 0, sizeof(h->vec));
	for (uint32_t i = 0; i < n; i++)
		h->vec[ids[i]] = idx[i];
	assert_true(len - (uint32_t)off >= sizeof(h->kv));
	memcpy(h->kv, d + off, sizeof(h->kv));
	for (uint32_t b = (uint32_t)off + sizeof(h->kv), k = 0; b < len; b++, k++)
		assert_int_equal(d[b], (uint8_t)(k * 7 + k / 251)); /* the filler, intact */
}

/* ---- replica lifecycle ---- */

static void start(struct hnode *h)
{
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.group_id = 5;
	cfg.self = h->id;
	cfg.n_voters = N;
	for (uint32_t i = 0; i < N; i++)
		cfg.voters[i] = i + 1;
	cfg.proto_opts = &opts;
	cfg.rejoin = start_rejoin;
	h->view = (struct sl_cons_log){h, l_first, l_last, l_term, l_entry, l_snap};
	cfg.log = &h->view;
	/* the state machine comes back from the snapshot; the log is applied again on top */
	memset(h->kv, 0, sizeof(h->kv));
	memset(h->vec, 0, sizeof(h->vec));
	memset(h->sess_last, 0, sizeof(h->sess_last));
	h->floor = h->applied = 0;
	if (h->snap_len > 0) {
		state_decode(h, h->snap, h->snap_len);
		h->floor = h->applied = h->snap_index;
	}
	assert_int_equal(sl_cons_multileader_ops.create(&cfg, &h->st), 0);
	h->down = false;
}

static void setup_all(void)
{
	for (uint32_t i = 0; i < N; i++) {
		struct hnode *h = &nodes[i];
		for (uint32_t j = 0; j < LOGCAP; j++)
			free(h->ent[j]);
		memset(h, 0, sizeof(*h));
		h->id = i + 1;
		h->first = 1;
		start(h);
	}
	for (uint32_t i = 0; i < n_net; i++)
		free(net[i].buf);
	n_net = 0;
	drop_ppm = dup_ppm = 0;
	reorder = false;
	memset(cut, 0, sizeof(cut));
	no_batches_from = 0;
	pid_seq = 1;
	snap_pad = 0;
	snap_lossy = false;
	snap_lost = 0;
	start_rejoin = false;
}

static void teardown_all(void)
{
	for (uint32_t i = 0; i < N; i++) {
		if (nodes[i].st)
			sl_cons_multileader_ops.destroy(nodes[i].st);
		nodes[i].st = NULL;
		for (uint32_t j = 0; j < LOGCAP; j++) {
			free(nodes[i].ent[j]);
			nodes[i].ent[j] = NULL;
		}
	}
	for (uint32_t i = 0; i < n_net; i++)
		free(net[i].buf);
	n_net = 0;
}

/* crash: the unsynced tail is lost, the protocol instance is rebuilt from the log */
static void restart(struct hnode *h)
{
	sl_cons_multileader_ops.destroy(h->st);
	h->last = h->synced;
	start(h);
}

static void apply(struct hnode *h, const struct sl_cons_entry *e)
{
	if (e->index <= h->floor)
		return;
	assert_int_equal(e->index, h->applied + 1);
	h->applied = e->index;
	assert_true(e->origin >= 1 && e->origin <= N);
	if (e->origin_index != h->vec[e->origin] + 1)
		h->order_errs++; /* an origin's stream applied out of order, twice or with a gap */
	h->vec[e->origin] = e->origin_index;
	if (e->proposal_id != 0) { /* only an own entry proposed in this life has one */
		assert_int_equal(e->origin, h->id);
		assert_true(e->proposal_id < MAXACK);
		h->own_pids++;
	}
	if (e->session > 0 && e->session < 4) {
		if (e->session_seq != h->sess_last[e->session] + 1)
			h->order_errs++;
		h->sess_last[e->session] = e->session_seq;
	}
	h->applies++;
	if (e->type == SL_CONS_ENTRY_SEAL) {
		h->seals_applied++; /* the end of its origin's stream: no write */
		return;
	}
	assert_int_equal(e->len, 12);
	uint32_t key = sl_get_u32(e->data) % KEYS;
	struct kv *k = &h->kv[key];
	if (sl_lww_wins(e->hlc, e->origin, k->hlc, k->origin))
		*k = (struct kv){sl_get_u64(e->data + 4), e->hlc, e->origin};
}

static void process(struct hnode *h)
{
	const struct sl_cons_ops *ops = &sl_cons_multileader_ops;
	for (int round = 0; round < 100 && ops->has_ready(h->st); round++) {
		struct sl_cons_ready rd;
		ops->ready(h->st, &rd);
		if (rd.has_snapshot) {
			/* multileader snapshots merge (LWW join) and the log stays */
			assert_int_equal(rd.snapshot.index, h->last);
			assert_int_equal(h->applied, h->last);
			assert_true(rd.snapshot.len <= SNAPCAP);
			memcpy(h->rx_img, rd.snapshot.data, rd.snapshot.len);
			h->rx_len = rd.snapshot.len;
			struct kv mine[KEYS];
			uint64_t vec[N + 1];
			memcpy(mine, h->kv, sizeof(mine));
			memcpy(vec, h->vec, sizeof(vec));
			state_decode(h, rd.snapshot.data, rd.snapshot.len);
			for (uint32_t k = 0; k < KEYS; k++)
				if (sl_lww_wins(mine[k].hlc, mine[k].origin, h->kv[k].hlc,
						h->kv[k].origin))
					h->kv[k] = mine[k];
			for (uint32_t o = 1; o <= N; o++)
				if (vec[o] > h->vec[o])
					h->vec[o] = vec[o];
			h->snap_len = state_encode(h, h->snap);
			h->snap_index = rd.snapshot.index;
			h->floor = rd.snapshot.index;
		}
		for (uint32_t i = 0; i < rd.n_persist; i++) {
			const struct sl_cons_entry *e = &rd.persist[i];
			assert_int_equal(e->index, h->last + 1);
			assert_true(e->index - h->first < LOGCAP);
			free(h->ent[e->index % LOGCAP]);
			h->ent[e->index % LOGCAP] = malloc(e->len);
			memcpy(h->ent[e->index % LOGCAP], e->data, e->len);
			h->elen[e->index % LOGCAP] = e->len;
			h->etype[e->index % LOGCAP] = e->type;
			h->last = e->index;
		}
		for (uint32_t i = 0; i < rd.n_msgs; i++) {
			const struct sl_cons_msg *m = &rd.msgs[i];
			assert_true(n_net < NETCAP);
			net[n_net] = (struct netmsg){m->from, m->to, m->len, malloc(m->len)};
			memcpy(net[n_net].buf, m->buf, m->len);
			n_net++;
		}
		for (uint32_t i = 0; i < rd.n_committed; i++)
			apply(h, &rd.committed[i]);
		for (uint32_t i = 0; i < rd.n_acks; i++) {
			assert_true(rd.acks[i].proposal_id < MAXACK);
			assert_int_equal(h->ack_status[rd.acks[i].proposal_id], 0); /* once */
			h->ack_status[rd.acks[i].proposal_id] =
				rd.acks[i].status == SL_CONS_ACK_OK ? 1 : 2;
		}
		for (uint32_t i = 0; i < rd.n_reads; i++) {
			uint64_t id = rd.reads[i].read_id;
			assert_true(id < 64);
			h->read_done[id] = true;
			h->read_status[id] = rd.reads[i].status;
			h->read_index[id] = rd.reads[i].index;
		}
		ops->advance(h->st, &rd);
	}
}

static void sync_node(struct hnode *h)
{
	h->synced = h->last;
	sl_cons_multileader_ops.persisted(h->st, 1, h->last);
}

static void deliver_one(uint32_t i)
{
	struct netmsg m = net[i];
	net[i] = net[--n_net];
	struct hnode *h = &nodes[m.to - 1];
	bool lost = m.from == no_batches_from && m.len > 1 && m.buf[1] == 1;
	if (snap_lossy && m.len > 1 && (m.buf[1] == 3 || m.buf[1] == 4) && rnd() % 4 == 0) {
		lost = true;
		snap_lost++;
	}
	if (!h->down && !nodes[m.from - 1].down && !cut[m.from][m.to] && !lost) {
		struct sl_cons_msg cm = {5, m.from, m.to, m.len, m.buf};
		sl_cons_multileader_ops.step(h->st, &cm);
	}
	free(m.buf);
}

static void deliver(void)
{
	uint32_t budget = n_net;
	for (uint32_t k = 0; k < budget && n_net > 0; k++) {
		uint32_t i = reorder ? (uint32_t)(rnd() % n_net) : 0;
		if (!reorder) { /* in order: the oldest first */
			struct netmsg m = net[0];
			memmove(net, net + 1, (n_net - 1) * sizeof(net[0]));
			net[n_net - 1] = m;
			i = n_net - 1;
		}
		if (drop_ppm && rnd() % 1000000 < drop_ppm) {
			free(net[i].buf);
			net[i] = net[--n_net];
			continue;
		}
		if (dup_ppm && rnd() % 1000000 < dup_ppm && n_net < NETCAP) {
			net[n_net] = net[i];
			net[n_net].buf = malloc(net[i].len);
			memcpy(net[n_net].buf, net[i].buf, net[i].len);
			n_net++;
		}
		deliver_one(i);
	}
}

/* one millisecond of the cluster's life */
static void step_all(void)
{
	now_ns += MS;
	for (uint32_t i = 0; i < N; i++) {
		struct hnode *h = &nodes[i];
		if (h->down)
			continue;
		sl_cons_multileader_ops.tick(h->st, now_ns);
		process(h);
		sync_node(h);
		process(h);
	}
	deliver();
	for (uint32_t i = 0; i < N; i++)
		if (!nodes[i].down)
			process(&nodes[i]);
}

static void run(uint32_t ms)
{
	for (uint32_t i = 0; i < ms; i++)
		step_all();
}

static uint64_t write(struct hnode *h, uint32_t key, uint64_t value, uint32_t k, uint64_t session,
		      uint64_t seq)
{
	uint8_t p[12];
	sl_put_u32(p, key);
	sl_put_u64(p + 4, value);
	uint64_t pid = pid_seq++;
	assert_true(pid < MAXACK);
	struct sl_ml_prop pr = {session, seq, k};
	assert_int_equal(sl_ml_propose(h->st, pid, p, sizeof(p), &pr), 0);
	return pid;
}

static void assert_converged(void)
{
	for (uint32_t i = 1; i < N; i++) {
		assert_memory_equal(nodes[0].kv, nodes[i].kv, sizeof(nodes[0].kv));
		assert_memory_equal(nodes[0].vec, nodes[i].vec, sizeof(nodes[0].vec));
	}
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(nodes[i].order_errs, 0);
}

static struct sl_ml_stats stats_of(struct hnode *h)
{
	struct sl_ml_stats s;
	sl_ml_stats(h->st, &s);
	return s;
}

static void reset_opts(void)
{
	memset(&opts, 0, sizeof(opts));
	opts.batch_delay_ns = 2 * MS;
	opts.max_batch_entries = 8;
	opts.window_batches = 4;
	opts.rto_ns = 10 * MS;
	opts.rto_max_ns = 80 * MS;
	opts.heartbeat_ns = 5 * MS;
	opts.read_timeout_ns = 500 * MS;
	opts.max_entry_bytes = 64;
}

/* ---- tests ---- */

static void test_registry(void **u)
{
	(void)u;
	assert_ptr_equal(sl_cons_find("multileader"), &sl_cons_multileader_ops);
	assert_true(sl_cons_max_copies(&sl_cons_multileader_ops) > 1);
	/* LWW: higher clock wins; a tie goes to the higher origin, whichever came first */
	assert_true(sl_lww_wins(5, 1, 4, 3));
	assert_false(sl_lww_wins(4, 3, 5, 1));
	assert_true(sl_lww_wins(5, 3, 5, 2));
	assert_false(sl_lww_wins(5, 2, 5, 3));
}

static void concurrent_writes(uint32_t per_node)
{
	for (uint32_t w = 0; w < per_node; w++) {
		for (uint32_t i = 0; i < N; i++)
			write(&nodes[i], (uint32_t)(rnd() % KEYS), (i + 1) * 100000 + w, 1,
			      i == 0 ? 1 : 0, i == 0 ? w + 1 : 0);
		if (w % 3 == 0)
			step_all();
	}
}

static void test_converge(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	concurrent_writes(200);
	run(300);
	assert_converged();
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(nodes[i].vec[1], 200);
		assert_int_equal(nodes[i].vec[3], 200);
		assert_int_equal(nodes[i].sess_last[1], 200); /* session 1's seqs in order */
	}
	/* every replica wrote; each applied each of its own entries with its proposal id */
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(nodes[i].own_pids, 200);
	for (uint64_t p = 1; p < pid_seq; p++) {
		uint32_t ok = 0;
		for (uint32_t i = 0; i < N; i++)
			ok += nodes[i].ack_status[p] == 1;
		assert_int_equal(ok, 1); /* acked once, at its origin */
	}
	struct sl_ml_stats s = stats_of(&nodes[0]);
	assert_true(s.batches_sent > 0);
	assert_int_equal(s.msgs_bad, 0);
	teardown_all();
}

static void test_faulty_network(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	drop_ppm = 200000;
	dup_ppm = 100000;
	reorder = true;
	concurrent_writes(300);
	run(500);
	drop_ppm = dup_ppm = 0;
	reorder = false;
	run(2000);
	assert_converged();
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(nodes[i].vec[2], 300);
	uint64_t retr = 0, gaps = 0, stale = 0;
	for (uint32_t i = 0; i < N; i++) {
		struct sl_ml_stats s = stats_of(&nodes[i]);
		retr += s.retransmits + s.rewinds;
		gaps += s.gap_batches;
		stale += s.stale_batches + s.stale_entries;
	}
	assert_true(retr > 0);
	assert_true(gaps > 0);
	assert_true(stale > 0);
	teardown_all();
}

static void test_gap_nack_rewind(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1];
	run(20); /* positions known (probes answered) */
	for (uint32_t w = 0; w < 24; w++) /* three full batches of 8 */
		write(a, w, w, 1, 0, 0);
	process(a);
	sync_node(a);
	process(a);
	/* a's first batch to b is lost; the other two arrive */
	uint32_t lost = 0;
	for (uint32_t i = 0; i < n_net && !lost; i++) {
		if (net[i].from == 1 && net[i].to == 2 && net[i].buf[1] == 1) {
			free(net[i].buf);
			memmove(net + i, net + i + 1, (n_net - i - 1) * sizeof(net[0]));
			n_net--;
			lost = 1;
		}
	}
	assert_int_equal(lost, 1);
	deliver();
	process(b);
	struct sl_ml_stats sb = stats_of(b);
	assert_int_equal(sb.gap_batches, 2); /* neither later batch applied */
	assert_true(sb.nacks_sent >= 1);
	assert_int_equal(b->vec[1], 0);
	run(50);
	struct sl_ml_stats sa = stats_of(a);
	assert_true(sa.rewinds >= 1 || sa.retransmits >= 1);
	assert_int_equal(b->vec[1], 24);
	assert_int_equal(b->order_errs, 0);
	assert_converged();
	teardown_all();
}

static void test_restart_restores(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1];
	concurrent_writes(40);
	run(100);
	assert_converged();
	uint64_t applies_before = b->applies;
	/* old batches of a still in flight when b restarts */
	uint32_t saved_n = 0;
	struct netmsg saved[64];
	for (uint32_t w = 0; w < 8; w++)
		write(a, w, 7000 + w, 1, 0, 0);
	process(a);
	sync_node(a);
	process(a);
	for (uint32_t i = 0; i < n_net && saved_n < 64; i++)
		if (net[i].to == 2 && net[i].buf[1] == 1) {
			saved[saved_n] = net[i];
			saved[saved_n].buf = malloc(net[i].len);
			memcpy(saved[saved_n].buf, net[i].buf, net[i].len);
			saved_n++;
		}
	assert_true(saved_n > 0);
	run(50);
	assert_int_equal(b->vec[1], 48);
	restart(b);
	/* the positions come back from the log: nothing re-applied, nothing skipped */
	struct sl_ml_origin org[N];
	assert_int_equal(sl_ml_origins(b->st, org, N), N);
	assert_int_equal(org[0].received, 48);
	assert_int_equal(org[1].received, 40);
	assert_int_equal(sl_ml_last_own(b->st), 40);
	process(b); /* the recovered log is applied again into the fresh state machine */
	assert_int_equal(b->vec[1], 48);
	uint64_t applies_after = b->applies;
	for (uint32_t i = 0; i < saved_n; i++) { /* the old batches arrive again */
		struct sl_cons_msg cm = {5, saved[i].from, saved[i].to, saved[i].len, saved[i].buf};
		assert_int_equal(sl_cons_multileader_ops.step(b->st, &cm), 0);
		free(saved[i].buf);
	}
	process(b);
	assert_int_equal(b->applies, applies_after);
	assert_true(stats_of(b).stale_batches >= saved_n);
	/* its own search index continues after the recovered one */
	write(b, 1, 1, 1, 0, 0);
	assert_int_equal(sl_ml_last_own(b->st), 41);
	run(100);
	assert_converged();
	assert_int_equal(a->vec[2], 41);
	assert_true(applies_before > 0);
	teardown_all();
}

/* An own entry leaves only once durable here: a crash that loses it gives its origin index
 * to the next write, and a peer holding the lost one would skip that write as stale. */
static void test_ship_only_durable(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0];
	run(20);
	write(a, 0, 111, 1, 0, 0);
	process(a); /* in a's log, not synced */
	now_ns += 10 * MS;
	sl_cons_multileader_ops.tick(a->st, now_ns);
	process(a);
	for (uint32_t i = 0; i < n_net; i++)
		assert_false(net[i].from == 1 && net[i].buf[1] == 1); /* no batch yet */
	deliver();
	restart(a); /* the write is lost: never acknowledged */
	write(a, 0, 222, 1, 0, 0);
	assert_int_equal(sl_ml_last_own(a->st), 1);
	run(100);
	assert_converged();
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(nodes[i].kv[0].value, 222);
	teardown_all();
}

static void test_ack_levels(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0];
	run(20);
	cut[1][2] = cut[1][3] = true; /* a's batches reach no one */
	uint64_t p1 = write(a, 1, 1, 1, 0, 0);
	uint64_t p2 = write(a, 2, 2, 2, 0, 0);
	assert_int_equal(sl_ml_propose(a->st, 999, (uint8_t[12]){0}, 12,
				       &(struct sl_ml_prop){0, 0, 4}),
			 -EINVAL);
	run(50);
	assert_int_equal(a->ack_status[p1], 1); /* local WAL durable */
	assert_int_equal(a->ack_status[p2], 0); /* waits for a second durable copy */
	cut[1][2] = false;
	run(50);
	assert_int_equal(a->ack_status[p2], 1);
	struct sl_ml_peer pr[N];
	assert_int_equal(sl_ml_peers(a->st, pr, N), 2);
	assert_int_equal(pr[0].acked, 2);
	assert_int_equal(pr[1].acked, 0);
	teardown_all();
}

static void compact(struct hnode *h)
{
	/* snapshot the state machine as it is, then drop what no live peer needs */
	h->snap_len = state_encode(h, h->snap);
	h->snap_index = h->applied;
	uint64_t upto = sl_ml_safe_delete(h->st);
	if (upto > h->applied)
		upto = h->applied;
	for (uint64_t i = h->first; i <= upto; i++) {
		free(h->ent[i % LOGCAP]);
		h->ent[i % LOGCAP] = NULL;
	}
	if (upto + 1 > h->first)
		h->first = upto + 1;
}

/* Seal: the replica asked ends its stream with a SEAL and refuses writes; its peers learn
 * of it and end theirs (writes they took before are in the segment); every replica then
 * applies every stream up to its end and says so; a restart, also after compaction, keeps
 * refusing writes. */
static void test_seal(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	concurrent_writes(10);
	run(100);
	assert_converged();
	const struct sl_cons_ops *ops = &sl_cons_multileader_ops;
	uint64_t pid = pid_seq++;
	cut[1][2] = cut[1][3] = true; /* a's SEAL stays with a for now */
	assert_int_equal(ops->seal(a->st, pid, (const uint8_t *)"e2", 2), 0);
	assert_int_equal(ops->seal(a->st, pid_seq++, (const uint8_t *)"e2", 2), -EALREADY);
	uint8_t p[12] = {0};
	assert_int_equal(sl_ml_propose(a->st, pid_seq++, p, sizeof(p), NULL), -EROFS);
	write(b, 3, 333, 1, 0, 0); /* before b hears of the seal: part of the segment */
	run(50);
	assert_int_equal(a->ack_status[pid], 0); /* durable here only: a majority is needed */
	cut[1][2] = cut[1][3] = false;
	run(200);
	assert_int_equal(a->ack_status[pid], 1);
	assert_int_equal(sl_ml_propose(b->st, pid_seq++, p, sizeof(p), NULL), -EROFS);
	assert_converged();
	struct sl_ml_origin org[N];
	for (uint32_t i = 0; i < N; i++) {
		struct sl_cons_status st;
		ops->status(nodes[i].st, &st);
		assert_true(st.sealed_index > 0);
		assert_int_equal(nodes[i].seals_applied, N); /* one SEAL per stream */
		assert_int_equal(sl_ml_origins(nodes[i].st, org, N), N);
		for (uint32_t o = 0; o < N; o++)
			assert_int_equal(org[o].end, nodes[i].vec[o + 1]);
	}
	assert_int_equal(b->vec[2], 12); /* 10 writes, the one before the seal, its SEAL */
	assert_int_equal(stats_of(c).seals, 1);
	/* compaction keeps the SEAL entries; a restart finds them and still refuses */
	compact(b);
	restart(b);
	assert_int_equal(sl_ml_propose(b->st, pid_seq++, p, sizeof(p), NULL), -EROFS);
	process(b);
	struct sl_cons_status st;
	ops->status(b->st, &st);
	assert_true(st.sealed_index > 0);
	teardown_all();
}

/* `count` writes at a (and at b too, if both_write) while the third replica is down,
 * both compacting their logs every 50 writes: the third falls past retention. */
static void writes_past_retention(struct hnode *a, struct hnode *b, uint32_t count,
				  uint64_t base, bool both_write)
{
	for (uint32_t w = 0; w < count; w++) {
		write(a, w, base + w, 1, 0, 0);
		if (both_write)
			write(b, w + 1, base + w, 1, 0, 0);
		if (w % 4 == 0)
			step_all();
		if (w % 50 == 0) {
			compact(a);
			compact(b);
		}
	}
	run(50);
	compact(a);
	compact(b);
}

static void test_dead_peer_retention(void **u)
{
	(void)u;
	reset_opts();
	opts.retention_entries = 50;
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	run(20);
	c->down = true;
	uint64_t first_pid = pid_seq;
	writes_past_retention(a, b, 400, 0, true);
	/* writes never stopped: every one acknowledged */
	for (uint64_t p = first_pid; p < pid_seq; p++)
		assert_int_equal(a->ack_status[p] + b->ack_status[p], 1);
	struct sl_ml_stats sa = stats_of(a);
	assert_true(sa.retention_alarm);
	assert_true(sa.over_retention >= 1);
	/* the dead peer no longer pins the WAL */
	assert_true(sl_ml_safe_delete(a->st) + 60 >= a->applied);
	assert_true(a->first > 300);
	/* a restart of a does not take c for holding what a's log no longer has */
	struct sl_ml_origin co[N];
	sl_ml_origins(c->st, co, N);
	restart(a);
	process(a);
	struct sl_ml_peer ap[N];
	assert_int_equal(sl_ml_peers(a->st, ap, N), 2);
	assert_int_equal(ap[1].node, 3);
	assert_true(ap[1].acked <= co[0].durable);
	/* it comes back and catches up by a snapshot */
	c->down = false;
	run(400);
	assert_converged();
	assert_int_equal(c->vec[1], 400);
	assert_true(stats_of(c).snapshots_installed >= 1);
	sa = stats_of(a);
	struct sl_ml_stats sb = stats_of(b);
	assert_true(sa.snapshot_catchups + sb.snapshot_catchups >= 1);
	assert_false(sa.retention_alarm);
	/* and takes writes again */
	write(c, 3, 3, 2, 0, 0);
	run(50);
	assert_converged();
	teardown_all();
}

/* Two replicas cut off from each other past retention, both taking writes: each holds
 * writes the other's snapshot lacks. Snapshots merge, so both catch up (a replace would
 * have to refuse, and they would wait for each other forever). */
static void test_mutual_retention(void **u)
{
	(void)u;
	reset_opts();
	opts.retention_entries = 40;
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	run(20);
	cut[1][3] = cut[3][1] = true;
	cut[2][3] = cut[3][2] = true; /* c alone */
	for (uint32_t w = 0; w < 200; w++) {
		write(a, w, 1000 + w, 1, 0, 0);
		write(c, w + 3, 2000 + w, 1, 0, 0);
		if (w % 4 == 0)
			step_all();
		if (w % 20 == 0) {
			compact(a);
			compact(b);
			compact(c);
		}
	}
	run(50);
	compact(a);
	compact(b);
	compact(c);
	assert_true(stats_of(a).retention_alarm);
	assert_true(stats_of(c).retention_alarm);
	memset(cut, 0, sizeof(cut));
	run(500);
	assert_converged();
	assert_int_equal(b->vec[3], 200);
	assert_int_equal(c->vec[1], 200);
	assert_true(stats_of(a).snapshots_installed + stats_of(c).snapshots_installed >= 1);
	assert_false(stats_of(a).retention_alarm);
	assert_false(stats_of(c).retention_alarm);
	teardown_all();
}

/* A laggard catches up from an image many times one message, in chunks, with a quarter
 * of the chunks and of the acks lost: it merges the image byte for byte. An image over
 * its max_snapshot_bytes is refused and counted, never merged. */
static void test_snapshot_in_chunks(void **u)
{
	(void)u;
	reset_opts();
	opts.retention_entries = 50;
	opts.max_msg_bytes = 256; /* about 220 image bytes per chunk */
	opts.max_snapshot_bytes = 6000;
	setup_all();
	snap_pad = 4000;
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	run(20);
	c->down = true;
	writes_past_retention(a, b, 400, 0, true);
	assert_true(stats_of(a).retention_alarm);
	assert_true(a->snap_len > 4000);
	c->down = false;
	snap_lossy = true;
	reorder = true; /* acks overtake each other, late ones arrive after a resend */
	run(1500);
	struct sl_ml_stats sc = stats_of(c), sa = stats_of(a), sb = stats_of(b);
	assert_true(sc.snapshots_installed >= 1);
	assert_true(sc.snapshot_chunks_received >= a->snap_len / 256);
	assert_true(sc.snapshot_chunks_refused > 0); /* chunks after a lost one */
	assert_true(snap_lost >= 4);
	assert_true(sa.snapshot_chunks_sent + sb.snapshot_chunks_sent >
		    sc.snapshot_chunks_received);
	assert_true(sa.snapshot_gobacks + sb.snapshot_gobacks > 0); /* to the acked offset */
	assert_true(sa.snapshot_resends + sb.snapshot_resends > 0);	    /* after a timeout */
	assert_int_equal(sc.msgs_bad + sa.msgs_bad + sb.msgs_bad, 0);
	/* what it merged is one sender's image, byte for byte */
	assert_true((c->rx_len == a->snap_len && memcmp(c->rx_img, a->snap, a->snap_len) == 0) ||
		    (c->rx_len == b->snap_len && memcmp(c->rx_img, b->snap, b->snap_len) == 0));
	snap_lossy = reorder = false;
	run(300);
	assert_converged();
	assert_int_equal(c->vec[1], 400);
	assert_int_equal(c->vec[2], 400);
	assert_false(stats_of(a).retention_alarm);

	/* images over c's bound: refused at their first chunk, counted, never merged */
	uint64_t installed = stats_of(c).snapshots_installed;
	c->down = true;
	snap_pad = 7000;
	writes_past_retention(a, b, 400, 1000, false);
	assert_true(a->snap_len > 6000);
	c->down = false;
	run(500);
	sc = stats_of(c);
	assert_true(sc.snapshots_refused > 0);
	assert_int_equal(sc.snapshots_installed, installed);
	assert_true(c->vec[1] < 800);
	assert_true(stats_of(a).retention_alarm);
	teardown_all();
}

static void run_compacting(uint32_t ms)
{
	for (uint32_t i = 0; i < ms; i++) {
		step_all();
		if (i % 10 == 0)
			for (uint32_t j = 0; j < N; j++)
				if (!nodes[j].down)
					compact(&nodes[j]);
	}
}

static bool rejoining(struct hnode *h)
{
	struct sl_cons_status st;
	sl_cons_multileader_ops.status(h->st, &st);
	return st.rejoining;
}

static uint64_t peer_acked(struct hnode *h, uint32_t node)
{
	struct sl_ml_peer pr[N];
	uint32_t n = sl_ml_peers(h->st, pr, N);
	for (uint32_t i = 0; i < n; i++)
		if (pr[i].node == node)
			return pr[i].acked;
	fail();
	return 0;
}

/* One millisecond of h's life alone: time, its ready, its sync; nothing delivered. */
static void live_alone(struct hnode *h)
{
	now_ns += MS;
	sl_cons_multileader_ops.tick(h->st, now_ns);
	process(h);
	sync_node(h);
	process(h);
}

/* The replica's disk is gone: empty log, no snapshot; it starts again under its id. */
static void lose_disk(struct hnode *h, bool rejoin)
{
	sl_cons_multileader_ops.destroy(h->st);
	for (uint32_t j = 0; j < LOGCAP; j++) {
		free(h->ent[j]);
		h->ent[j] = NULL;
	}
	h->first = 1;
	h->last = h->synced = 0;
	h->snap_len = 0;
	h->snap_index = 0;
	h->order_errs = h->applies = h->own_pids = 0;
	start_rejoin = rejoin;
	start(h);
	start_rejoin = false;
}

/* A replica loses its disk after writes acknowledged at levels 1 and 2 reached its peers
 * (one of them only some), and restarts under its id with an empty log in rejoin mode: it
 * refuses writes until both peers (a majority of the group without itself) answered and
 * it holds its own stream again up to the most either holds (from a snapshot); its new
 * writes then take indexes after its old ones, and every replica ends with every
 * acknowledged write. Created without rejoin, its new writes reuse indexes 1.. that the
 * peers take for stale: the replicas diverge and the new writes are lost at the peers. */
static void test_rejoin_after_disk_loss(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	run(20);
	uint64_t first = pid_seq;
	for (uint32_t w = 0; w < 20; w++) {
		write(a, w % 4, 100 + w, 1, 0, 0);
		if (w < 5)
			write(b, 4 + w % 4, 200 + w, 2, 0, 0);
		step_all();
	}
	run_compacting(100);
	cut[1][3] = true; /* the last ones reach b only */
	for (uint32_t w = 0; w < 10; w++) {
		write(a, 4 + w % 4, 500 + w, 2, 0, 0);
		step_all();
	}
	run_compacting(100);
	for (uint64_t p = first; p < pid_seq; p++)
		assert_int_equal(a->ack_status[p] + b->ack_status[p], 1);
	assert_int_equal(b->vec[1], 30);
	assert_int_equal(c->vec[1], 20);
	assert_int_equal(peer_acked(b, 1), 5); /* b's stream was durable on a */
	struct kv want[KEYS];
	memcpy(want, b->kv, sizeof(want));
	/* one more write reaches no one before the disk goes (acked at level 1: lost with
	 * it); its batch to b is held back by the network, to arrive after a restarted */
	cut[1][2] = true;
	write(a, 0, 777, 1, 0, 0);
	struct netmsg old = {0};
	for (uint32_t t = 0; t < 10 && old.buf == NULL; t++) {
		live_alone(a);
		for (uint32_t i = 0; i < n_net && old.buf == NULL; i++)
			if (net[i].from == 1 && net[i].to == 2 && net[i].buf[1] == 1) {
				old = net[i];
				net[i] = net[--n_net];
			}
	}
	assert_non_null(old.buf);

	lose_disk(a, true); /* a new instance in rejoin mode */
	cut[1][3] = cut[1][2] = false;
	cut[2][1] = cut[3][1] = true; /* no answer reaches a */
	run_compacting(30);
	/* the batch of a's lost life arrives now: b knows a rejoins and drops it (taking it
	 * would give index 31 to a write that a's new stream numbers again) */
	struct sl_cons_msg om = {5, old.from, old.to, old.len, old.buf};
	assert_int_equal(sl_cons_multileader_ops.step(b->st, &om), 0);
	free(old.buf);
	process(b);
	assert_int_equal(stats_of(b).rejoin_batches_dropped, 1);
	assert_int_equal(b->vec[1], 30);
	uint8_t pl[12] = {0};
	assert_int_equal(sl_ml_propose(a->st, 999, pl, 12, NULL), -EBUSY);
	assert_true(rejoining(a));
	/* b heard that a rejoins: a's old copies of b's stream count for nothing now */
	assert_int_equal(peer_acked(b, 1), 0);
	cut[2][1] = false; /* b answers (and sends a snapshot), c does not: not a majority */
	run_compacting(200);
	assert_true(rejoining(a));
	assert_int_equal(sl_ml_last_own(a->st), 30); /* its own stream, back from b */
	assert_int_equal(sl_ml_propose(a->st, 999, pl, 12, NULL), -EBUSY);
	cut[3][1] = false;
	run_compacting(200);
	assert_false(rejoining(a));
	struct sl_ml_stats sa = stats_of(a);
	assert_true(sa.rejoin_refused >= 2);
	assert_int_equal(sa.msgs_bad, 0); /* peers holding more of its stream: expected */
	assert_true(stats_of(b).rejoin_snapshots + stats_of(c).rejoin_snapshots >= 1);
	/* new writes continue a's stream after its old ones, at both levels */
	uint64_t np[4];
	for (uint32_t w = 0; w < 4; w++) {
		np[w] = write(a, w, 900 + w, 1 + w % 2, 0, 0);
		want[w] = (struct kv){900 + w, 0, 1};
	}
	assert_int_equal(sl_ml_last_own(a->st), 34);
	run_compacting(300);
	for (uint32_t w = 0; w < 4; w++)
		assert_int_equal(a->ack_status[np[w]], 1);
	assert_converged();
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(nodes[i].vec[1], 34);
		assert_int_equal(nodes[i].vec[2], 5);
		for (uint32_t k = 0; k < KEYS; k++) /* every acknowledged write's value */
			assert_int_equal(nodes[i].kv[k].value, want[k].value);
	}
	teardown_all();
}

/* Every queued message from `from` to `to` is delivered now, the others stay queued. */
static void deliver_between(uint32_t from, uint32_t to)
{
	for (uint32_t i = 0; i < n_net;) {
		if (net[i].from == from && net[i].to == to)
			deliver_one(i); /* moves the last message to i */
		else
			i++;
	}
}

/* A peer answers a rejoining replica with an entry of its stream it has not synced yet,
 * then crashes and loses it: its next answer (to a newer round) holds less, and the
 * rejoin goes by that one rather than wait forever for an entry no one holds. */
static void test_rejoin_answer_lowered(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1];
	run(20);
	for (uint32_t w = 0; w < 5; w++)
		write(a, w, w, 1, 0, 0);
	run_compacting(100);
	cut[1][3] = true;
	write(a, 0, 66, 1, 0, 0); /* index 6: to b only, which does not sync it */
	for (uint32_t t = 0; t < 10 && b->last == b->synced; t++) {
		live_alone(a);
		deliver_between(1, 2);
		process(b);
	}
	assert_int_equal(b->last, b->synced + 1);
	for (uint32_t i = 0; i < n_net;) { /* what a still had in flight is lost */
		if (net[i].from == 1) {
			free(net[i].buf);
			net[i] = net[--n_net];
		} else {
			i++;
		}
	}
	cut[1][3] = false;
	lose_disk(a, true);
	now_ns += MS;
	sl_cons_multileader_ops.tick(a->st, now_ns);
	process(a);
	deliver_between(1, 2); /* the rejoin request */
	process(b);
	deliver_between(2, 1); /* b answers: a's stream up to 6 */
	process(a);
	restart(b); /* index 6 is lost: it was on a's lost disk and b's unsynced tail */
	run_compacting(300);
	assert_false(rejoining(a));
	write(a, 1, 77, 1, 0, 0);
	assert_int_equal(sl_ml_last_own(a->st), 6);
	run_compacting(100);
	assert_converged();
	assert_int_equal(b->vec[1], 6);
	teardown_all();
}

/* A replica move's joiner: a new node opens an empty replica of a segment whose old
 * replicas a and b hold its base image (their snapshot at the segment's start, naming no
 * position of any origin: the sealed store of the segment before), in rejoin mode. It asks
 * its peers for an image, merges the base image one of them sends, and only then counts
 * as caught up; it then holds every write: those taken while it joined (streams), the
 * base, and every later one, its own included. Before, a peer sent a snapshot only to a
 * rejoining replica lacking part of its own stream: the joiner caught up on the streams
 * alone and never held the base. */
static void test_join_gets_base_image(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	for (uint32_t i = 0; i < 2; i++) {
		struct hnode *h = &nodes[i];
		sl_cons_multileader_ops.destroy(h->st);
		for (uint32_t k = 0; k < KEYS; k++)
			h->kv[k] = (struct kv){5000 + k, 1 + k, 1 + k % 2};
		memset(h->vec, 0, sizeof(h->vec));
		h->snap_len = state_encode(h, h->snap);
		h->snap_index = 0;
		start(h);
	}
	lose_disk(c, true); /* the joiner: nothing, in rejoin mode */
	assert_true(rejoining(c));
	uint64_t first = pid_seq;
	for (uint32_t w = 0; w < 12; w++) {
		write(a, w % 4, 100 + w, 1 + w % 2, 0, 0);
		if (w % 3 == 0)
			write(b, w % 4, 200 + w, 1, 0, 0);
		step_all();
	}
	uint8_t pl[12] = {0};
	if (rejoining(c))
		assert_int_equal(sl_ml_propose(c->st, 999, pl, 12, NULL), -EBUSY);
	run(300);
	assert_false(rejoining(c));
	for (uint32_t k = 4; k < KEYS; k++) /* written by no one since: the base's */
		assert_int_equal(c->kv[k].value, 5000 + k);
	assert_converged();
	struct sl_ml_stats sa = stats_of(a), sb = stats_of(b), sc = stats_of(c);
	assert_true(sc.snapshots_installed >= 1);
	assert_true(sa.rejoin_images + sb.rejoin_images >= 1);
	assert_int_equal(sa.rejoin_noimage + sb.rejoin_noimage, 0); /* both hold an image */
	assert_int_equal(sa.msgs_bad + sb.msgs_bad + sc.msgs_bad, 0);
	assert_false(stats_of(a).retention_alarm || stats_of(b).retention_alarm);
	/* every write from then on, its own at every level */
	uint64_t mid = pid_seq;
	for (uint32_t w = 0; w < 9; w++) {
		write(c, 4 + w % 4, 300 + w, 1 + w % 3, 0, 0);
		write(a, w % 8, 400 + w, 1, 0, 0);
		write(b, (w + 3) % 8, 500 + w, 2, 0, 0);
		step_all();
	}
	run(300);
	assert_converged();
	for (uint64_t p = first; p < pid_seq; p++)
		assert_int_equal(a->ack_status[p] + b->ack_status[p] + c->ack_status[p], 1);
	for (uint64_t p = mid; p < pid_seq; p += 3)
		assert_int_equal(c->ack_status[p], 1);
	assert_int_equal(c->vec[3], 9);
	teardown_all();
}

/* A rejoining replica whose peers hold no snapshot and compacted nothing (their state is
 * all in their logs) hears that it needs no image, and catches up on the streams. */
static void test_join_no_image_needed(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	for (uint32_t w = 0; w < 10; w++) { /* c's own stream is empty: no snapshot for it */
		write(a, w % KEYS, 100 + w, 1, 0, 0);
		write(b, (w + 1) % KEYS, 200 + w, 1, 0, 0);
		step_all();
	}
	run(100);
	lose_disk(c, true);
	run(200);
	assert_false(rejoining(c));
	struct sl_ml_stats sa = stats_of(a), sb = stats_of(b);
	assert_true(sa.rejoin_noimage + sb.rejoin_noimage >= 1);
	assert_int_equal(sa.rejoin_images + sb.rejoin_images, 0);
	assert_int_equal(stats_of(c).snapshots_installed, 0);
	assert_converged();
	teardown_all();
}

/* A peer that lost its disk without saying so (no rejoin flag: in a larger group, a peer
 * outside the majority that answered) nacks from 1 below what it had acknowledged: the
 * sender lowers its acked position and ships from the log again, instead of resending
 * from past the old ack forever while the peer nacks every batch as a gap. */
static void test_nack_below_acked(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1];
	run(20);
	for (uint32_t w = 0; w < 10; w++)
		write(b, w, w, 1, 0, 0);
	run(100);
	assert_int_equal(peer_acked(b, 1), 10);
	lose_disk(a, false);
	for (uint32_t w = 0; w < 5; w++)
		write(b, w, 100 + w, 1, 0, 0);
	run(300);
	assert_true(stats_of(a).gap_batches > 0);
	assert_int_equal(a->vec[2], 15); /* b's whole stream again, from b's log */
	assert_int_equal(peer_acked(b, 1), 15);
	assert_int_equal(a->order_errs, 0);
	teardown_all();
}

static void test_reads(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1];
	run(20);
	/* read-your-writes on another replica: waits until the write is applied there */
	cut[1][2] = true;
	write(a, 1, 11, 1, 0, 0);
	run(10);
	assert_int_equal(sl_ml_read_after(b->st, 1, 1, sl_ml_last_own(a->st)), 0);
	run(30);
	assert_false(b->read_done[1]);
	cut[1][2] = false; /* a resends after its backoff (at most rto_max_ns) */
	run(200);
	assert_true(b->read_done[1]);
	assert_int_equal(b->read_status[1], SL_CONS_ACK_OK);
	assert_int_equal(b->vec[1], 1);
	/* CAD: a write durable only at its origin is not served, although a majority
	 * answers the read's round */
	no_batches_from = 1;
	write(a, 2, 22, 1, 0, 0);
	run(10);
	assert_int_equal(sl_cons_multileader_ops.read(a->st, 2), 0);
	run(40);
	assert_false(a->read_done[2]);
	cut[1][3] = true;
	no_batches_from = 0; /* now on a majority (a and b) */
	run(200);
	assert_true(a->read_done[2]);
	assert_int_equal(a->read_status[2], SL_CONS_ACK_OK);
	assert_true(a->read_index[2] > 0);
	/* monotonic: a later CAD read on the third replica shows at least as much */
	assert_int_equal(sl_cons_multileader_ops.read(nodes[2].st, 3), 0);
	cut[1][3] = false;
	run(200);
	assert_true(nodes[2].read_done[3]);
	assert_int_equal(nodes[2].read_status[3], SL_CONS_ACK_OK);
	assert_true(nodes[2].vec[1] >= 2);
	assert_int_equal(stats_of(a).reads_timed_out, 0);
	teardown_all();
}

/* Sync read: served once this replica applied what every origin had durable when asked,
 * so a write acknowledged at level 1 at another replica is seen (a CAD read may not show
 * it: it is durable on one replica); with a replica unreachable it fails DROPPED. */
static void test_sync_read(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *c = &nodes[2];
	run(20);
	no_batches_from = 1; /* a's write is durable (acked at level 1) on a only */
	write(a, 1, 11, 1, 0, 0);
	run(20);
	assert_int_equal(sl_ml_read_sync(c->st, 7), 0);
	run(100);
	assert_false(c->read_done[7]); /* every peer answered, a's write not applied here */
	no_batches_from = 0;
	run(400);
	assert_true(c->read_done[7]);
	assert_int_equal(c->read_status[7], SL_CONS_ACK_OK);
	assert_true(c->vec[1] >= 1);
	/* a unreachable: no answer from every replica, so no sync read is served */
	cut[1][3] = cut[3][1] = true;
	assert_int_equal(sl_ml_read_sync(c->st, 8), 0);
	run(700);
	assert_true(c->read_done[8]);
	assert_int_equal(c->read_status[8], SL_CONS_ACK_DROPPED);
	struct sl_ml_stats st = stats_of(c);
	assert_int_equal(st.reads_sync, 2);
	assert_int_equal(st.reads_timed_out, 1);
	teardown_all();
}

/* The clock's physical part follows the host's wall clock when given: of two concurrent
 * writes to one key, the one made later by wall time wins although its replica's tick
 * clock is behind; a write made after its replica saw the other wins whatever the clocks. */
static void test_wall_clock(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0], *b = &nodes[1];
	run(20);
	cut[1][2] = cut[2][1] = cut[1][3] = cut[3][1] = true; /* neither sees the other's */
	sl_ml_wall(a->st, 5000 * MS); /* a's wall clock 5 s ahead of b's */
	sl_ml_wall(b->st, 1000 * MS);
	write(b, 3, 100, 1, 0, 0);
	sl_ml_wall(b->st, 1001 * MS);
	sl_ml_wall(a->st, 5002 * MS);
	write(a, 3, 200, 1, 0, 0); /* later by wall time: wins */
	run(5);
	cut[1][2] = cut[2][1] = cut[1][3] = cut[3][1] = false;
	run(300);
	assert_converged();
	assert_int_equal(b->kv[3].value, 200);
	/* b saw a's write: its next write to the key wins although b's clock is 4 s behind */
	write(b, 3, 300, 1, 0, 0);
	run(300);
	assert_converged();
	assert_int_equal(a->kv[3].value, 300);
	teardown_all();
}

static void send_raw(struct hnode *h, uint32_t from, const uint8_t *b, uint32_t len)
{
	struct sl_cons_msg m = {5, from, h->id, len, b};
	sl_cons_multileader_ops.step(h->st, &m);
}

static uint32_t fnv(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* A snapshot chunk (type 3) with a good checksum; `len` may lie about the body. */
static uint32_t snap_chunk(uint8_t *b, uint64_t epoch, uint64_t index, uint32_t total,
			   uint32_t off, uint32_t dl, uint32_t len)
{
	memset(b, 0x5c, len);
	b[0] = 1;
	b[1] = 3;
	sl_put_u16(b + 2, 0);
	sl_put_u64(b + 8, epoch);
	sl_put_u64(b + 16, index);
	sl_put_u32(b + 24, total);
	sl_put_u32(b + 28, off);
	sl_put_u32(b + 32, dl);
	sl_put_u32(b + 4, fnv(b + 8, len - 8));
	return len;
}

/* max_msg_bytes bounds every message: batches of many small entries are cut to it, and
 * an entry that cannot fit one batch message is a configuration error. */
static void test_msg_bound(void **u)
{
	(void)u;
	reset_opts();
	opts.max_msg_bytes = 256;
	opts.max_entry_bytes = 256 - 52 + 1;
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.group_id = 5;
	cfg.self = 1;
	cfg.n_voters = 1;
	cfg.voters[0] = 1;
	cfg.proto_opts = &opts;
	struct hnode *h = &nodes[0];
	memset(h, 0, sizeof(*h));
	h->first = 1;
	h->view = (struct sl_cons_log){h, l_first, l_last, l_term, l_entry, l_snap};
	cfg.log = &h->view;
	void *st = NULL;
	assert_int_equal(sl_cons_multileader_ops.create(&cfg, &st), -EINVAL);
	reset_opts();
	opts.max_msg_bytes = 256;
	opts.max_batch_entries = 64; /* 64 entries of 12 bytes: 2584 bytes unbounded */
	opts.max_batch_bytes = 1u << 20;
	setup_all();
	run(20);
	for (uint32_t w = 0; w < 100; w++) /* one burst: full batches */
		write(&nodes[0], w, w, 1, 0, 0);
	run(300);
	assert_converged();
	assert_int_equal(nodes[1].vec[1], 100);
	for (uint32_t i = 0; i < N; i++) {
		struct sl_ml_stats s = stats_of(&nodes[i]);
		assert_int_equal(s.msgs_too_big, 0);
		assert_int_equal(s.msgs_bad, 0);
	}
	/* at most (256 - 24) / 40 entries of 12 bytes per batch, to each of two peers */
	assert_true(stats_of(&nodes[0]).batches_sent >= 2 * 100 / ((256 - 24) / 40));
	teardown_all();
}

static void test_malformed(void **u)
{
	(void)u;
	reset_opts();
	setup_all();
	struct hnode *a = &nodes[0];
	uint8_t b[256];
	uint64_t expect = 0;
	send_raw(a, 2, b, 0), expect++;			  /* empty */
	memset(b, 0xab, sizeof(b));
	send_raw(a, 2, b, sizeof(b)), expect++;		  /* garbage */
	send_raw(a, 9, b, 8), expect++;			  /* short */
	/* a batch with a valid checksum whose entry count lies */
	memset(b, 0, sizeof(b));
	b[0] = 1;
	b[1] = 1;
	sl_put_u64(b + 8, 1);
	sl_put_u32(b + 16, 1000);
	sl_put_u32(b + 20, 2);
	sl_put_u32(b + 4, fnv(b + 8, 40 - 8));
	send_raw(a, 2, b, 40), expect++;
	/* a batch claiming another origin's stream */
	sl_put_u32(b + 16, 1);
	sl_put_u32(b + 20, 3);
	sl_put_u32(b + 52, 0);
	sl_put_u32(b + 4, fnv(b + 8, 24 + 28 - 8));
	send_raw(a, 2, b, 24 + 28), expect++;
	/* a state claiming more of a's stream than exists */
	memset(b, 0, sizeof(b));
	b[0] = 1;
	b[1] = 2;
	sl_put_u64(b + 24, 100);
	b[32] = 0;
	sl_put_u32(b + 4, fnv(b + 8, 33 - 8));
	send_raw(a, 2, b, 33), expect++;
	/* from a non-member, and a checksum off by one */
	sl_put_u64(b + 24, 1);
	sl_put_u32(b + 4, fnv(b + 8, 33 - 8));
	send_raw(a, 7, b, 33), expect++;
	b[4] ^= 1;
	send_raw(a, 2, b, 33), expect++;
	/* image flags out of place: 'wants an image' from a replica that does not rejoin,
	 * 'no image needed' from one that does */
	sl_put_u32(b + 4, fnv(b + 8, 33 - 8));
	sl_put_u16(b + 2, 32);
	send_raw(a, 2, b, 33), expect++;
	sl_put_u16(b + 2, 64 | 8);
	send_raw(a, 2, b, 33), expect++;
	assert_false(stats_of(a).retention_alarm);
	sl_put_u16(b + 2, 0);
	/* random messages with a good checksum */
	for (uint32_t i = 0; i < 2000; i++) {
		uint32_t len = 8 + (uint32_t)(rnd() % 120);
		for (uint32_t j = 0; j < len; j++)
			b[j] = (uint8_t)rnd();
		b[0] = 1;
		b[1] = (uint8_t)(1 + rnd() % 4);
		sl_put_u32(b + 4, fnv(b + 8, len - 8));
		send_raw(a, 2, b, len);
	}
	/* snapshot chunks that lie: short, a length that is not the body's, empty, past
	 * the image's end, no image id; an ack of the wrong length */
	uint64_t bad0 = stats_of(a).msgs_bad;
	send_raw(a, 2, b, snap_chunk(b, 1, 1, 100, 0, 10, 20)), expect++;
	send_raw(a, 2, b, snap_chunk(b, 1, 1, 100, 0, 10, 36 + 5)), expect++;
	send_raw(a, 2, b, snap_chunk(b, 1, 1, 100, 0, 0, 36)), expect++;
	send_raw(a, 2, b, snap_chunk(b, 1, 1, 100, 95, 10, 36 + 10)), expect++;
	send_raw(a, 2, b, snap_chunk(b, 0, 1, 100, 0, 10, 36 + 10)), expect++;
	memset(b, 0, 27);
	b[0] = 1;
	b[1] = 4;
	sl_put_u32(b + 4, fnv(b + 8, 27 - 8));
	send_raw(a, 2, b, 27), expect++;
	assert_int_equal(stats_of(a).msgs_bad, bad0 + 6);
	/* well formed but of nothing here: an ack of an image a never sent (stale), a chunk
	 * in the middle of an image a never saw (refused: from 0 again), a first chunk of an
	 * image over max_snapshot_bytes (refused, counted) */
	struct sl_ml_stats s0 = stats_of(a);
	sl_put_u32(b + 4, fnv(b + 8, 28 - 8));
	send_raw(a, 2, b, 28);
	send_raw(a, 2, b, snap_chunk(b, 7, 7, 100, 50, 10, 36 + 10));
	send_raw(a, 2, b, snap_chunk(b, 7, 7, (1u << 30) + 1, 0, 10, 36 + 10));
	struct sl_ml_stats s = stats_of(a);
	assert_int_equal(s.snapshot_acks_stale, s0.snapshot_acks_stale + 1);
	assert_int_equal(s.snapshot_chunks_refused, s0.snapshot_chunks_refused + 1);
	assert_int_equal(s.snapshots_refused, s0.snapshots_refused + 1);
	assert_int_equal(s.msgs_bad, s0.msgs_bad);
	/* a message of max_msg_bytes is decoded (a bad batch); one byte more is refused as
	 * too big, before any decoding: no peer with these options sends it */
	uint32_t big_len = (64u << 10) + 1;
	uint8_t *big = calloc(1, big_len);
	big[0] = 1;
	big[1] = 1;
	sl_put_u32(big + 4, fnv(big + 8, big_len - 1 - 8));
	send_raw(a, 2, big, big_len - 1), expect++;
	sl_put_u32(big + 4, fnv(big + 8, big_len - 8));
	send_raw(a, 2, big, big_len);
	free(big);
	s = stats_of(a);
	assert_int_equal(s.msgs_too_big, 1);
	assert_true(s.msgs_bad >= expect + 1000);
	/* still works */
	concurrent_writes(20);
	run(100);
	assert_converged();
	teardown_all();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_seal),
		cmocka_unit_test(test_converge),
		cmocka_unit_test(test_faulty_network),
		cmocka_unit_test(test_gap_nack_rewind),
		cmocka_unit_test(test_restart_restores),
		cmocka_unit_test(test_ship_only_durable),
		cmocka_unit_test(test_ack_levels),
		cmocka_unit_test(test_dead_peer_retention),
		cmocka_unit_test(test_mutual_retention),
		cmocka_unit_test(test_snapshot_in_chunks),
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_sync_read),
		cmocka_unit_test(test_wall_clock),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_msg_bound),
		cmocka_unit_test(test_rejoin_after_disk_loss),
		cmocka_unit_test(test_nack_below_acked),
		cmocka_unit_test(test_rejoin_answer_lowered),
		cmocka_unit_test(test_join_gets_base_image),
		cmocka_unit_test(test_join_no_image_needed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

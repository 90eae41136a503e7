/* sim.c - sluice-sim, the deterministic simulator for consensus protocols (Raft here):
 * many groups of 3-5 replicas on a few simulated nodes, one discrete-event loop, a fake
 * network, disk and clock, seeded fault schedules, and checkers for Raft's promises
 * (election safety, log matching, leader completeness, state-machine safety, no lost
 * acknowledged write, no stale read, membership agreement, linearizable client
 * histories). A seed reproduces a whole run. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consensus.h"
#include "driver.h"
#include "raft.h"
#include "sim.h"
#include "sim_ml.h"
#include "sim_vlog.h"
#include "sl_assert.h"
#include "sl_le.h"

#define MAX_NODES 6u
#define MAX_GROUPS 4u
#define MAX_CLIENTS 3u
#define MAX_WAITS 16u
#define NS_MS UINT64_C(1000000)
#define NS_S UINT64_C(1000000000)
#define LIN_BUDGET 20000000ull

enum ev_type {
	EV_DELIVER,
	EV_TICK,
	EV_SYNC,
	EV_CLIENT,
	EV_FAULT,
	EV_RESTART,
	EV_HEAL,
	EV_CHECK,
	EV_ISOLATE,  /* second step of a lease attack: cut a leader's node off */
	EV_CHANGE,   /* a membership change tried right after an election */
	EV_WAL_DEAD, /* driver mode: a node whose WAL failed is restarted by its operator */
	EV_SEAL,     /* --seal: the harness (re)tries to seal a group until a SEAL commits */
};

enum fault {
	F_DROP,
	F_DUP,
	F_REORDER,
	F_DELAY,
	F_PART_SYM,
	F_PART_ONEWAY,
	F_CRASH,
	F_CRASH_LEADER,
	F_TORN,
	F_LOST_UNSYNCED,
	F_CLOCK_JUMP,
	F_SLOW_DISK,
	F_TRANSFER,
	F_CONF_CHANGE,
	F_LEASE_ATTACK,
	F_CHANGE_ATTACK,
	F_FSYNC_ERR, /* driver mode: the WAL's fsync fails, the node restarts */
	F_DISK_LOSS, /* --disk-loss: a crashed node's disk is gone; it restarts rejoining */
	F_COUNT,
};
static const char *const fault_names[F_COUNT] = {
    "msg drop",		 "msg duplicate", "msg reordered",   "msg delayed >5ms",  "partition sym",
    "partition one-way", "crash-restart", "crash mid-ready", "torn last write",	  "lost unsynced",
    "clock jump",	 "slow disk",	  "leader transfer", "membership change", "lease attack",
    "change cut off",	 "fsync error",	  "disk lost, rejoin",
};

/* --seal only (printed only then, so other modes' output stays as it was) */
enum seal_count {
	S_ATTEMPTS,
	S_COMMITTED,
	S_REFUSED,
	S_APPLIES,
	S_ACKED_BELOW,
	S_COUNT,
};
static const char *const seal_names[S_COUNT] = {
    "seal attempts accepted by a leader", "groups sealed (SEAL applied)",
    "writes refused: sealed (-EROFS)",     "seal: applies checked against the SEAL",
    "seal: acked writes below the SEAL",
};

enum check {
	C_ELECTION,
	C_LOG_MATCH_ENTRY,
	C_LOG_MATCH_PAIR,
	C_LEADER_COMPLETE,
	C_SM_SAFETY,
	C_SNAPSHOT_STATE,
	C_ACKED,
	C_READ_FRESH,
	C_CONF,
	C_LIN_OPS,
	C_LIN_KEYS,
	C_LIN_UNKNOWN,
	C_CONVERGED,
	C_COUNT,
};
static const char *const check_names[C_COUNT] = {
    "election safety: leaders checked",	      "log matching: entries checked",
    "log matching: replica pairs checked",    "leader completeness: entries checked",
    "state-machine safety: applies checked",  "snapshot state: installs checked",
    "acknowledged writes found committed",    "stale reads: read indexes checked",
    "membership: configurations checked",     "linearizability: operations checked",
    "linearizability: key histories checked", "linearizability: histories undecided (budget)",
    "convergence after heal: groups checked",
};

struct params {
	uint32_t n_nodes, n_groups, n_clients;
	uint64_t et_ns, hb_ns, tick_ns;
	uint32_t max_batch, max_infl;
	uint64_t lat_min_ns, lat_jitter_ns;
	uint32_t drop_ppm, dup_ppm;
	uint32_t kill_elected_ppm, kill_committed_ppm; /* leader crash mid-ready */
	uint64_t fault_every_ns;
	bool lease, jumps, membership;
	uint32_t snap_every;
	uint64_t run_ns, heal_ns;
	uint32_t fsync_err_ppm; /* per fsync, driver mode only */
	uint64_t seal_at_ns[MAX_GROUPS]; /* --seal only: when each group's sealing starts */
};

struct msgbuf {
	uint64_t group;
	uint32_t from, to, len;
	uint64_t send_seq;
	uint8_t buf[];
};

struct sync_job {
	uint32_t inc;
	size_t wal_mark;
	uint64_t pos_mark; /* driver mode: storage position this fsync makes durable */
	bool has_persist;
	uint64_t term, index;
	uint32_t n_msgs;
	struct msgbuf **msgs;
};


struct node {
	bool up;
	uint32_t inc;
	uint64_t clock_off_ns;
	int64_t drift_ppm;
	uint64_t disk_lat_ns, slow_until;
	uint64_t sync_cur, sync_next; /* end of the fsync running, end of the one planned */
	bool wal_failed; /* an fsync failed: nothing more becomes durable until restart */
};

struct hop {
	uint32_t key;
	bool void_op; /* a read that never answered: irrelevant to linearizability */
	struct lin_op op;
};

struct client {
	bool busy, is_read;
	bool after_seal; /* --seal: a write taken after a SEAL was known committed */
	uint64_t pid, token;
	uint64_t floor; /* a read: the highest index acknowledged before it was issued */
	uint32_t node, key, hint;
	uint32_t hist;
};

struct waitread {
	uint32_t client;
	uint64_t index, token;
};

struct world;

struct replica {
	void *raft; /* the protocol instance (inside drv in driver mode) */
	/* driver mode: the region driver the node links runs this replica */
	struct sl_drv *drv;
	struct world *w;
	uint32_t gi, n;
	uint64_t pos;            /* storage positions handed out (monotonic per start) */
	bool wrote, w_persist;   /* this ready wrote; and entries (w_term, w_index) */
	uint64_t w_term, w_index;
	uint64_t term_now;       /* protocol term when the ready began */
	struct sim_disk disk;
	uint64_t kv[SIM_KEYS];
	uint64_t applied;
	uint64_t leader_term_seen, first_commit_term;
	uint32_t syncs_pending;
	struct waitread waits[MAX_WAITS];
	uint32_t n_waits;
	bool rejoin; /* its disk was lost: it runs in raft's rejoin mode until it says done */
};

struct centry {
	bool set;
	uint64_t term, hash, phash, cterm, state; /* phash: payload only */
};

struct lm_slot {
	uint64_t index, term, hash; /* index 0: empty */
};

struct acked {
	uint64_t index, phash;
};

struct group {
	uint32_t id;
	struct sl_cons_conf init, conf_seen;
	struct replica r[MAX_NODES + 1];
	struct client c[MAX_CLIENTS];
	uint64_t pid_seq, value_seq;
	struct centry *com;
	size_t com_cap;
	uint32_t *leader_of;
	size_t leader_cap;
	struct lm_slot *lm;
	size_t lm_cap, lm_len;
	struct acked *acks;
	size_t n_acks, acks_cap;
	struct hop *hist;
	size_t n_hist, hist_cap;
	/* highest index a client has seen as done: an acknowledged write, a read answered */
	uint64_t known_idx;
	uint64_t max_com;  /* highest index some replica applied (known committed) */
	uint64_t ro_until; /* a read-only spell of the clients (lease attack) */
	bool change_next;  /* the next new leader is asked for a change at once */
	/* --seal: the SEAL's index once a replica applied it (then it is committed), the
	 * proposal id of the harness's latest attempt, and whether sealing has started */
	uint64_t seal_idx, seal_pid;
	bool sealing;
};

struct world {
	uint64_t seed;
	struct params p;
	struct sim_rng rng;
	uint64_t now, steps, digest;
	struct sim_queue q;
	struct node nodes[MAX_NODES + 1];
	bool blocked[MAX_NODES + 1][MAX_NODES + 1];
	uint64_t link_seq[MAX_NODES + 1][MAX_NODES + 1];
	uint64_t link_delivered[MAX_NODES + 1][MAX_NODES + 1];
	struct group g[MAX_GROUPS];
	struct sl_raft_opts opts;
	bool healed;
	uint64_t faults[F_COUNT];
	uint64_t checks[C_COUNT];
	uint64_t seals[S_COUNT];
	char fail[512];
};

/* ---- options and global run bookkeeping (the simulator, not the protocol) ---- */
static struct {
	const char *argv0;
	bool verbose, lease_jumps, keep_going;
	bool driver; /* replicas run through the region driver (consensus/driver.c) */
	bool disk_loss; /* crashes may lose the whole disk; the node rejoins (consensus.h) */
	bool seal;      /* every group is sealed at a seeded time (checker "seal") */
	uint64_t current_seed;
} g_opt;

static void replay_hint(FILE *f, uint64_t seed)
{
	fprintf(f, "replay: %s --seed %" PRIu64 "%s%s%s%s -v\n", g_opt.argv0, seed,
		g_opt.lease_jumps ? " --lease-jumps" : "", g_opt.driver ? " --driver" : "",
		g_opt.disk_loss ? " --disk-loss" : "", g_opt.seal ? " --seal" : "");
}

static void on_abort(int sig)
{
	/* an SL_ASSERT inside the protocol or the simulator: still say how to replay */
	char buf[160];
	int n =
	    snprintf(buf, sizeof(buf), "FAIL seed=%" PRIu64 " (assertion)\n", g_opt.current_seed);
	if (n > 0 && write(2, buf, (size_t)n) < 0)
		_exit(3);
	replay_hint(stderr, g_opt.current_seed);
	fflush(stderr);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void violation(struct world *w, const char *fmt, ...)
{
	if (w->fail[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(w->fail, sizeof(w->fail), "t=%" PRIu64 "ms: ", (uint64_t)(w->now / NS_MS));
	vsnprintf(w->fail + n, sizeof(w->fail) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void trace(struct world *w, const char *fmt, ...)
{
	if (!g_opt.verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%10.3fms ", (double)w->now / NS_MS);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	SL_ASSERT(p != NULL);
	return p;
}

#define GROW(arr, len, cap)                                                                        \
	do {                                                                                       \
		if ((len) >= (cap)) {                                                              \
			size_t nc_ = (cap) ? (cap)*2 : 64;                                         \
			while (nc_ <= (len))                                                       \
				nc_ *= 2;                                                          \
			(arr) = xrealloc((arr), nc_ * sizeof(*(arr)));                             \
			memset((arr) + (cap), 0, (nc_ - (cap)) * sizeof(*(arr)));                  \
			(cap) = nc_;                                                               \
		}                                                                                  \
	} while (0)

/* ---- events ---- */

static void ev_push(struct world *w, uint64_t t, uint8_t type, uint8_t node, uint8_t group,
		    uint8_t client, uint64_t a, void *p)
{
	sim_queue_push(&w->q, (struct sim_event){t, 0, type, node, group, client, a, p});
}

/* ---- clocks, network, disk timing ---- */

static uint64_t local_ns(const struct world *w, uint32_t n)
{
	const struct node *nd = &w->nodes[n];
	return sim_local_ns(w->now, nd->clock_off_ns, nd->drift_ppm);
}

static void net_send(struct world *w, uint32_t gi, const struct sl_cons_msg *m)
{
	struct sim_rng *r = &w->rng;
	uint32_t from = m->from, to = m->to;
	if (to == 0 || to > w->p.n_nodes)
		return;
	uint64_t send_seq = ++w->link_seq[from][to];
	if (w->blocked[from][to])
		return;
	if (sim_chance(r, w->p.drop_ppm)) {
		w->faults[F_DROP]++;
		return;
	}
	int copies = sim_chance(r, w->p.dup_ppm) ? 2 : 1;
	if (copies == 2)
		w->faults[F_DUP]++;
	for (int i = 0; i < copies; i++) {
		struct msgbuf *b = xrealloc(NULL, sizeof(*b) + m->len);
		*b = (struct msgbuf){m->group_id, from, to, m->len, send_seq};
		memcpy(b->buf, m->buf, m->len);
		uint64_t d = w->p.lat_min_ns + sim_below(r, w->p.lat_jitter_ns + 1);
		if (sim_chance(r, 20000)) /* a rare long delay: a message from the past */
			d += sim_range(r, 5 * NS_MS, 2 * w->p.et_ns);
		if (d > 5 * NS_MS)
			w->faults[F_DELAY]++;
		ev_push(w, w->now + d, EV_DELIVER, (uint8_t)to, (uint8_t)gi, 0, 0, b);
	}
}

static uint64_t disk_latency(struct world *w, uint32_t n)
{
	struct node *nd = &w->nodes[n];
	if (w->now < nd->slow_until)
		return sim_range(&w->rng, 5 * NS_MS, 60 * NS_MS);
	return nd->disk_lat_ns + sim_below(&w->rng, nd->disk_lat_ns);
}

/* ---- checkers' records ---- */

static uint64_t entry_hash(uint64_t term, uint32_t type, const uint8_t *d, uint32_t len)
{
	uint8_t h[12];
	sl_put_u64(h, term);
	sl_put_u32(h + 8, type);
	return sim_hash(d, len, sim_hash(h, sizeof(h), 0));
}

/* The payload of a client write: key u32, value u64 (values are unique per run). */
static void write_payload(uint8_t *p, uint32_t key, uint64_t value)
{
	sl_put_u32(p, key);
	sl_put_u64(p + 4, value);
}

static uint64_t write_hash(uint32_t key, uint64_t value)
{
	uint8_t p[12];
	write_payload(p, key, value);
	return sim_hash(p, sizeof(p), 0);
}

static uint64_t kv_hash(const uint64_t *kv) { return sim_hash(kv, 8 * SIM_KEYS, 1); }

static struct centry *com_at(struct group *g, uint64_t idx)
{
	GROW(g->com, idx, g->com_cap);
	return &g->com[idx];
}

/* Log matching, entry form: one (index, term) names one entry everywhere, forever. */
static void lm_record(struct world *w, struct group *g, uint64_t idx, uint64_t term, uint64_t h)
{
	if (2 * (g->lm_len + 1) > g->lm_cap) {
		size_t oc = g->lm_cap, nc = oc ? oc * 2 : 4096;
		struct lm_slot *old = g->lm;
		g->lm = calloc(nc, sizeof(*g->lm));
		SL_ASSERT(g->lm != NULL);
		g->lm_cap = nc;
		g->lm_len = 0;
		for (size_t i = 0; i < oc; i++)
			if (old[i].index)
				lm_record(w, g, old[i].index, old[i].term, old[i].hash);
		free(old);
	}
	size_t i = (size_t)(sim_hash(&idx, 8, term) & (g->lm_cap - 1));
	for (;; i = (i + 1) & (g->lm_cap - 1)) {
		struct lm_slot *s = &g->lm[i];
		if (s->index == 0) {
			*s = (struct lm_slot){idx, term, h};
			g->lm_len++;
			return;
		}
		if (s->index == idx && s->term == term) {
			w->checks[C_LOG_MATCH_ENTRY]++;
			if (s->hash != h)
				violation(w,
					  "log matching: group %u has two different entries at "
					  "index %" PRIu64 " term %" PRIu64,
					  g->id, idx, term);
			return;
		}
	}
}

static bool disk_entry(const struct sim_disk *d, uint64_t idx, uint64_t *term, uint64_t *h)
{
	if (idx <= d->snap_index || idx > sim_disk_last(d))
		return false;
	const struct sim_entry *e = &d->ents[idx - d->snap_index - 1];
	*term = e->term;
	*h = entry_hash(e->term, e->type, e->data, e->len);
	return true;
}

static void check_leader(struct world *w, struct group *g, uint32_t n, struct replica *rp,
			 uint64_t term)
{
	GROW(g->leader_of, term, g->leader_cap);
	w->checks[C_ELECTION]++;
	if (g->leader_of[term] != 0 && g->leader_of[term] != n) {
		violation(w, "election safety: group %u term %" PRIu64 " has leaders %u and %u",
			  g->id, term, g->leader_of[term], n);
		return;
	}
	g->leader_of[term] = n;
	trace(w, "g%u n%u leader term %" PRIu64, g->id, n, term);
	/* leader completeness: every entry committed in an earlier term is in this log */
	for (uint64_t i = rp->disk.snap_index + 1; i < g->com_cap; i++) {
		struct centry *c = &g->com[i];
		if (!c->set || c->cterm >= term)
			continue;
		uint64_t t, h;
		w->checks[C_LEADER_COMPLETE]++;
		if (!disk_entry(&rp->disk, i, &t, &h) || t != c->term || h != c->hash) {
			violation(w,
				  "leader completeness: g%u leader n%u term %" PRIu64
				  " lacks committed index %" PRIu64,
				  g->id, n, term, i);
			return;
		}
	}
}

/* Log matching, prefix form: if two logs agree at an index they agree on all before it. */
static void check_log_pairs(struct world *w, struct group *g)
{
	for (uint32_t a = 1; a <= w->p.n_nodes; a++)
		for (uint32_t b = a + 1; b <= w->p.n_nodes; b++) {
			struct replica *x = &g->r[a], *y = &g->r[b];
			if (!x->raft || !y->raft)
				continue;
			uint64_t lo = x->disk.snap_index > y->disk.snap_index ? x->disk.snap_index
									      : y->disk.snap_index;
			uint64_t hi = sim_disk_last(&x->disk) < sim_disk_last(&y->disk)
					  ? sim_disk_last(&x->disk)
					  : sim_disk_last(&y->disk);
			uint64_t tx, ty, hx, hy, agree = 0;
			for (uint64_t i = hi; i > lo; i--)
				if (disk_entry(&x->disk, i, &tx, &hx) &&
				    disk_entry(&y->disk, i, &ty, &hy) && tx == ty) {
					agree = i;
					break;
				}
			w->checks[C_LOG_MATCH_PAIR]++;
			for (uint64_t i = agree; i > lo; i--) {
				disk_entry(&x->disk, i, &tx, &hx);
				disk_entry(&y->disk, i, &ty, &hy);
				if (tx != ty || hx != hy) {
					violation(w,
						  "log matching: g%u n%u and n%u agree at %" PRIu64
						  " but differ at %" PRIu64,
						  g->id, a, b, agree, i);
					return;
				}
			}
		}
}

/* ---- clients ---- */

static void client_next(struct world *w, uint32_t gi, uint32_t ci, uint64_t delay)
{
	struct client *c = &w->g[gi].c[ci];
	c->busy = false;
	c->token++;
	ev_push(w, w->now + delay, EV_CLIENT, 0, (uint8_t)gi, (uint8_t)ci, c->token, NULL);
}

static struct client *client_by_pid(struct group *g, uint64_t pid, uint32_t *ci)
{
	for (uint32_t i = 0; i < MAX_CLIENTS; i++)
		if (g->c[i].busy && g->c[i].pid == pid) {
			*ci = i;
			return &g->c[i];
		}
	return NULL;
}

static void serve_waits(struct world *w, uint32_t gi, struct replica *rp)
{
	struct group *g = &w->g[gi];
	uint32_t k = 0;
	for (uint32_t i = 0; i < rp->n_waits; i++) {
		struct waitread *wr = &rp->waits[i];
		struct client *c = &g->c[wr->client];
		if (!c->busy || c->token != wr->token)
			continue; /* timed out meanwhile */
		if (rp->applied < wr->index) {
			rp->waits[k++] = *wr;
			continue;
		}
		struct hop *h = &g->hist[c->hist];
		h->op.ret = w->now;
		h->op.value = rp->kv[c->key];
		if (wr->index > g->known_idx)
			g->known_idx = wr->index;
		client_next(w, gi, wr->client, sim_range(&w->rng, 1 * NS_MS, 20 * NS_MS));
	}
	rp->n_waits = k;
}

/* No stale read: a read (ReadIndex or lease) answered at index I was issued after every
 * write acknowledged, and every read answered, at an index above I. Stricter than the
 * per-register linearizability check (any register counts, and the read's index is
 * judged, not the value it happened to see), so a leader that answers from a stale
 * commit index is caught even when no register it read has changed. */
static void check_read_fresh(struct world *w, struct group *g, uint32_t n,
			     const struct client *c, uint64_t index)
{
	w->checks[C_READ_FRESH]++;
	trace(w, "g%u n%u read answered at index %" PRIu64 " (floor %" PRIu64 ")", g->id, n, index,
	      c->floor);
	if (index < c->floor)
		violation(w,
			  "stale read: g%u n%u answered a read issued at %" PRIu64
			  "ms at index %" PRIu64 ", below index %" PRIu64
			  " that a client had seen done (write acknowledged or read answered) "
			  "before",
			  g->id, n, g->hist[c->hist].op.call / NS_MS, index, c->floor);
}

/* ---- membership agreement ---- */

static bool conf_equal(const struct sl_cons_conf *a, const struct sl_cons_conf *b)
{
	if (a->n_voters != b->n_voters || a->n_learners != b->n_learners)
		return false;
	for (uint32_t i = 0; i < a->n_voters; i++)
		if (a->voters[i] != b->voters[i])
			return false;
	for (uint32_t i = 0; i < a->n_learners; i++)
		if (a->learners[i] != b->learners[i])
			return false;
	return true;
}

static int conf_str(char *buf, size_t cap, const struct sl_cons_conf *c)
{
	int n = snprintf(buf, cap, "voters");
	for (uint32_t i = 0; i < c->n_voters && n > 0 && (size_t)n < cap; i++)
		n += snprintf(buf + n, cap - (size_t)n, " %u", c->voters[i]);
	for (uint32_t i = 0; i < c->n_learners && n > 0 && (size_t)n < cap; i++)
		n += snprintf(buf + n, cap - (size_t)n, "%s%u", i ? " " : " learners ",
			      c->learners[i]);
	return n;
}

/* The membership a replica's log puts in effect at `upto`: its latest configuration
 * entry there, else its snapshot's membership, else the group's initial one. */
static void log_conf(const struct group *g, const struct sim_disk *d, uint64_t upto,
		     struct sl_cons_conf *out)
{
	uint64_t last = sim_disk_last(d);
	for (uint64_t i = upto < last ? upto : last; i > d->snap_index; i--) {
		const struct sim_entry *e = &d->ents[i - d->snap_index - 1];
		if (e->type == SL_CONS_ENTRY_CONF && sl_raft_conf_decode(e->data, e->len, out) == 0)
			return;
	}
	*out = d->snap_index > 0 ? d->snap_conf : g->init;
}

/* Membership agreement: the configuration a replica acts on (counts votes and commits
 * with) is the one its log says. With log matching this makes every replica use the same
 * configuration at the same index, including one that arrived in a snapshot. */
static void check_conf(struct world *w, struct group *g, uint32_t n,
		       const struct sl_cons_conf *have, uint64_t upto, const char *what)
{
	struct sl_cons_conf want;
	log_conf(g, &g->r[n].disk, upto, &want);
	w->checks[C_CONF]++;
	if (conf_equal(have, &want))
		return;
	char a[128], b[128];
	conf_str(a, sizeof(a), have);
	conf_str(b, sizeof(b), &want);
	violation(w, "membership: g%u n%u %s (%s) but its log at index %" PRIu64 " says %s",
		  g->id, n, what, a, upto, b);
}

/* Can a majority of voters `a` and a majority of voters `b` be disjoint? Each majority
 * takes what it can from outside the other configuration; the rest must come from the
 * shared voters, and two such remainders fit side by side only if there are enough. */
static bool majorities_can_miss(const struct sl_cons_conf *a, const struct sl_cons_conf *b)
{
	uint32_t both = 0;
	for (uint32_t i = 0; i < a->n_voters; i++)
		for (uint32_t j = 0; j < b->n_voters; j++)
			both += a->voters[i] == b->voters[j];
	uint32_t qa = a->n_voters / 2 + 1, qb = b->n_voters / 2 + 1;
	uint32_t only_a = a->n_voters - both, only_b = b->n_voters - both;
	uint32_t need_a = qa > only_a ? qa - only_a : 0, need_b = qb > only_b ? qb - only_b : 0;
	return need_a + need_b <= both;
}

/* Membership quorum overlap: any two replicas that could still lead (their log holds
 * every entry known committed, and they vote in their own configuration) act on
 * configurations whose majorities intersect. Two leaders' single-server changes made
 * from the same committed configuration break it (the bug the leader's no-op guards
 * against: each may then commit with a majority the other never hears of). */
static void check_conf_quorums(struct world *w, struct group *g)
{
	struct sl_cons_conf confs[MAX_NODES + 1];
	uint32_t who[MAX_NODES + 1], k = 0;
	for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
		const struct sim_disk *d = &g->r[n].disk;
		if (g->max_com > d->snap_index) {
			uint64_t t, h;
			const struct centry *c = &g->com[g->max_com];
			if (!disk_entry(d, g->max_com, &t, &h) || t != c->term || h != c->hash)
				continue; /* lacks a committed entry: can never lead */
		}
		log_conf(g, d, sim_disk_last(d), &confs[k]);
		bool voter = false;
		for (uint32_t i = 0; i < confs[k].n_voters; i++)
			voter |= confs[k].voters[i] == n;
		if (voter)
			who[k++] = n;
	}
	w->checks[C_CONF]++;
	for (uint32_t i = 0; i < k; i++)
		for (uint32_t j = i + 1; j < k; j++)
			if (majorities_can_miss(&confs[i], &confs[j])) {
				char a[128], b[128];
				conf_str(a, sizeof(a), &confs[i]);
				conf_str(b, sizeof(b), &confs[j]);
				violation(w,
					  "membership: g%u n%u (%s) and n%u (%s) both hold the "
					  "committed log, and their majorities can be disjoint",
					  g->id, who[i], a, who[j], b);
				return;
			}
}

/* ---- seal (--seal) ---- */

/* Seal checker, at each apply: (a) every replica applies the SEAL at one index; (b) no
 * NORMAL entry is applied above it. */
static void check_seal_apply(struct world *w, struct group *g, uint32_t n,
			     const struct sl_cons_entry *e)
{
	w->seals[S_APPLIES]++;
	if (e->type == SL_CONS_ENTRY_SEAL) {
		if (g->seal_idx == 0) {
			g->seal_idx = e->index;
			w->seals[S_COMMITTED]++;
			trace(w, "g%u sealed at %" PRIu64 " (applied by n%u)", g->id, e->index, n);
		} else if (e->index != g->seal_idx) {
			violation(w,
				  "seal: g%u n%u applied a SEAL at index %" PRIu64
				  ", another replica at %" PRIu64,
				  g->id, n, e->index, g->seal_idx);
		}
	} else if (e->type == SL_CONS_ENTRY_NORMAL && g->seal_idx != 0 && e->index > g->seal_idx) {
		violation(w, "seal: g%u n%u applied a write at index %" PRIu64 ", past the SEAL at %" PRIu64,
			  g->id, n, e->index, g->seal_idx);
	}
}

/* (b), as raft saw it: a committed write past the SEAL is handed out as a no-op (so never
 * applied) and counted; the seal rule makes that impossible, so any count is a bug. */
static void check_seal_guard(struct world *w, struct group *g, uint32_t n, struct replica *rp)
{
	struct sl_raft_stats rs;
	sl_raft_stats(rp->raft, &rs);
	if (rs.past_seal > 0)
		violation(w,
			  "seal: g%u n%u found %" PRIu64
			  " committed write(s) past its SEAL at %" PRIu64
			  " (raft's apply guard turned them into no-ops): a leader took writes "
			  "after sealing",
			  g->id, n, rs.past_seal, g->seal_idx);
}

/* (c) a write acked OK lies below the SEAL; (d) a write taken after the SEAL was known
 * committed is never acked OK. */
static void check_seal_ack(struct world *w, struct group *g, const struct client *c,
			   uint64_t index)
{
	if (c->after_seal)
		violation(w,
			  "seal: g%u write acked OK at index %" PRIu64
			  " was proposed after the SEAL at %" PRIu64 " committed",
			  g->id, index, g->seal_idx);
	else if (g->seal_idx != 0 && index >= g->seal_idx)
		violation(w, "seal: g%u write acked OK at index %" PRIu64 ", not below the SEAL at %" PRIu64,
			  g->id, index, g->seal_idx);
}

/* ---- applying committed entries ---- */

static void apply_entry(struct world *w, struct group *g, uint32_t n, struct replica *rp,
			const struct sl_cons_entry *e, uint64_t term_now)
{
	if (e->index != rp->applied + 1) {
		violation(w, "apply order: g%u n%u applied %" PRIu64 " then %" PRIu64, g->id, n,
			  rp->applied, e->index);
		return;
	}
	if (g_opt.seal)
		check_seal_apply(w, g, n, e);
	if (e->type == SL_CONS_ENTRY_NORMAL && e->len >= 12) {
		uint32_t key = sl_get_u32(e->data) % SIM_KEYS;
		rp->kv[key] = sl_get_u64(e->data + 4);
	}
	rp->applied = e->index;
	uint64_t h = entry_hash(e->term, e->type, e->data, e->len);
	uint64_t st = kv_hash(rp->kv);
	struct centry *c = com_at(g, e->index);
	w->checks[C_SM_SAFETY]++;
	if (!c->set) {
		*c = (struct centry){true, e->term, h, sim_hash(e->data, e->len, 0), term_now, st};
		if (e->index > g->max_com)
			g->max_com = e->index;
	} else if (c->term != e->term || c->hash != h || c->state != st) {
		violation(w,
			  "state-machine safety: g%u n%u applied a different entry or state at "
			  "index %" PRIu64 " (term %" PRIu64 " vs %" PRIu64 ")",
			  g->id, n, e->index, e->term, c->term);
	}
}

/* The pad of a --disk-loss snapshot: bytes that depend on the registers and the offset,
 * so a chunk put at the wrong place, lost or taken from another image shows. */
static uint8_t snap_pad_byte(const uint64_t *kv, uint32_t i)
{
	uint64_t x[2] = {kv_hash(kv), i / 8};
	return (uint8_t)(sim_hash(x, sizeof(x), 11) >> (8 * (i % 8)));
}

static void snapshot_restore(struct replica *rp)
{
	memset(rp->kv, 0, sizeof(rp->kv));
	for (uint32_t k = 0; k < SIM_KEYS && 8 * (k + 1) <= rp->disk.snap_len; k++)
		rp->kv[k] = sl_get_u64(rp->disk.snap_data + 8 * k);
	rp->applied = rp->disk.snap_index;
	for (uint32_t i = SIM_SNAP_KV; i < rp->disk.snap_len; i++)
		if (rp->disk.snap_data[i] != snap_pad_byte(rp->kv, i - SIM_SNAP_KV)) {
			violation(rp->w, "snapshot: g%u n%u holds an image whose byte %u is wrong",
				  rp->gi + 1, rp->n, i);
			break;
		}
}

static void maybe_snapshot(struct world *w, struct group *g, uint32_t n, struct replica *rp)
{
	if (rp->applied < rp->disk.snap_index + w->p.snap_every)
		return;
	struct sl_cons_snapshot meta;
	if (sl_raft_snapshot_meta(rp->raft, rp->applied, &meta) != 0)
		return;
	check_conf(w, g, n, &meta.conf, rp->applied, "cuts a snapshot with membership");
	uint8_t data[SIM_SNAP_BYTES];
	for (uint32_t k = 0; k < SIM_KEYS; k++)
		sl_put_u64(data + 8 * k, rp->kv[k]);
	meta.len = SIM_SNAP_KV;
	if (g_opt.disk_loss) /* several raft messages: chunks */
		for (; meta.len < SIM_SNAP_BYTES; meta.len++)
			data[meta.len] = snap_pad_byte(rp->kv, meta.len - SIM_SNAP_KV);
	meta.data = data;
	sim_disk_write_snapshot(&rp->disk, &meta, false);
}

/* ---- driving one replica ---- */

static void sync_issue(struct world *w, uint32_t gi, uint32_t n, struct sync_job *job, bool wrote)
{
	/* group commit: one fsync runs at a time and covers every write issued before it
	 * started; later writes join the next one. A barrier waits for all issued writes. */
	struct node *nd = &w->nodes[n];
	uint64_t done;
	if (!wrote) {
		done = nd->sync_next > w->now ? nd->sync_next : w->now;
	} else if (w->now >= nd->sync_next) {
		done = nd->sync_cur = nd->sync_next = w->now + disk_latency(w, n);
	} else if (w->now < nd->sync_cur) {
		if (nd->sync_next == nd->sync_cur)
			nd->sync_next = nd->sync_cur + disk_latency(w, n);
		done = nd->sync_next;
	} else {
		nd->sync_cur = nd->sync_next;
		done = nd->sync_next = nd->sync_cur + disk_latency(w, n);
	}
	job->inc = nd->inc;
	job->wal_mark = w->g[gi].r[n].disk.wal_len;
	w->g[gi].r[n].syncs_pending++;
	ev_push(w, done, EV_SYNC, (uint8_t)n, (uint8_t)gi, 0, 0, job);
}

static void node_crash(struct world *w, uint32_t n, uint64_t down_min_ns);

/* Leader bookkeeping for the checkers, and the fault schedule's favourite moments to
 * kill a leader (they expose commit-rule bugs, Raft's Figure 8): right after its election
 * and right after its first commit. True when the node should die now. */
static bool leader_moment(struct world *w, struct group *g, uint32_t n, struct replica *rp,
			  const struct sl_cons_status *st, bool committing)
{
	if (st->role != SL_CONS_ROLE_LEADER)
		return false;
	uint32_t ppm = 0;
	if (rp->leader_term_seen != st->term) {
		rp->leader_term_seen = st->term;
		check_leader(w, g, n, rp, st->term);
		sl_raft_conf(rp->raft, &g->conf_seen);
		ppm = w->p.kill_elected_ppm;
		/* a new leader may not change the membership before its no-op commits: try
		 * at once, while an earlier leader's uncommitted change may still be around */
		bool now = g->change_next || sim_chance(&w->rng, 500000);
		g->change_next = false;
		if (w->p.membership && !w->healed && now)
			ev_push(w, w->now, EV_CHANGE, (uint8_t)n, (uint8_t)(g->id - 1), 0, 0, NULL);
	} else if (committing && rp->first_commit_term != st->term) {
		rp->first_commit_term = st->term;
		ppm = w->p.kill_committed_ppm;
	}
	return !w->healed && sim_chance(&w->rng, ppm);
}

/* ---- driver mode: the node's binding (consensus/driver.c), played by the simulator ----
 * The same object code sluiced links runs each replica: the simulator supplies only what
 * the node's WAL, store and fabric do, so persist-before-send, snapshot install, apply
 * order and recovery from the log are the driver's, checked by the same checkers. */

static int dh_install(void *ctx, const struct sl_cons_snapshot *snap)
{
	struct replica *rp = ctx;
	struct world *w = rp->w;
	struct group *g = &w->g[rp->gi];
	sim_disk_write_snapshot(&rp->disk, snap, true);
	rp->disk.synced = rp->disk.wal_len; /* installed durably, as the contract asks */
	snapshot_restore(rp);
	w->checks[C_SNAPSHOT_STATE]++;
	struct centry *c = com_at(g, snap->index);
	if (c->set && c->state != kv_hash(rp->kv))
		violation(w,
			  "snapshot: g%u n%u installed index %" PRIu64
			  " with a state no replica had there",
			  g->id, rp->n, snap->index);
	return 0;
}

static int dh_save_hs(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos)
{
	struct replica *rp = ctx;
	if (rp->w->nodes[rp->n].wal_failed)
		return -EIO; /* as sluiced: a failed WAL takes no more writes */
	sim_disk_write_hs(&rp->disk, hs);
	rp->wrote = true;
	*pos = ++rp->pos;
	return 0;
}

static int dh_save_entry(void *ctx, const struct sl_cons_entry *e, uint64_t *pos)
{
	struct replica *rp = ctx;
	if (rp->w->nodes[rp->n].wal_failed)
		return -EIO;
	lm_record(rp->w, &rp->w->g[rp->gi], e->index, e->term,
		  entry_hash(e->term, e->type, e->data, e->len));
	sim_disk_write_entries(&rp->disk, e, 1);
	rp->wrote = rp->w_persist = true;
	rp->w_term = e->term;
	rp->w_index = e->index;
	*pos = ++rp->pos;
	return 0;
}

static void dh_send(void *ctx, const struct sl_cons_msg *m)
{
	struct replica *rp = ctx;
	net_send(rp->w, rp->gi, m);
}

static void dh_apply(void *ctx, const struct sl_cons_entry *e)
{
	struct replica *rp = ctx;
	apply_entry(rp->w, &rp->w->g[rp->gi], rp->n, rp, e, rp->term_now);
}

static void on_ack(struct world *w, uint32_t gi, const struct sl_cons_ack *a)
{
	struct group *g = &w->g[gi];
	if (g->seal_pid != 0 && a->proposal_id == g->seal_pid) {
		/* the harness's SEAL: dropped, try again at once; else wait for its apply */
		trace(w, "g%u seal acked %u index %" PRIu64, g->id, a->status, a->index);
		g->seal_pid = 0;
		if (a->status != SL_CONS_ACK_OK && g->seal_idx == 0)
			ev_push(w, w->now, EV_SEAL, 0, (uint8_t)gi, 0, 0, NULL);
		return;
	}
	uint32_t ci;
	struct client *c = client_by_pid(g, a->proposal_id, &ci);
	if (c == NULL || c->is_read)
		return;
	if (a->status == SL_CONS_ACK_OK) {
		if (g_opt.seal)
			check_seal_ack(w, g, c, a->index);
		struct hop *h = &g->hist[c->hist];
		h->op.ret = w->now;
		GROW(g->acks, g->n_acks, g->acks_cap);
		g->acks[g->n_acks++] = (struct acked){a->index, write_hash(h->key, h->op.value)};
		if (a->index > g->known_idx)
			g->known_idx = a->index;
	}
	client_next(w, gi, ci, sim_range(&w->rng, 1 * NS_MS, 20 * NS_MS));
}

static void on_read(struct world *w, uint32_t gi, struct replica *rp, const struct sl_cons_read *r)
{
	struct group *g = &w->g[gi];
	uint32_t ci;
	struct client *c = client_by_pid(g, r->read_id, &ci);
	if (c == NULL || !c->is_read)
		return;
	if (r->status == SL_CONS_ACK_OK)
		check_read_fresh(w, g, rp->n, c, r->index);
	if (r->status != SL_CONS_ACK_OK || rp->n_waits == MAX_WAITS) {
		g->hist[c->hist].void_op = true;
		client_next(w, gi, ci, sim_range(&w->rng, 1 * NS_MS, 20 * NS_MS));
		return;
	}
	rp->waits[rp->n_waits++] = (struct waitread){ci, r->index, c->token};
}

static void dh_ack(void *ctx, const struct sl_cons_ack *a)
{
	struct replica *rp = ctx;
	on_ack(rp->w, rp->gi, a);
}

static void dh_read(void *ctx, const struct sl_cons_read *r)
{
	struct replica *rp = ctx;
	on_read(rp->w, rp->gi, rp, r);
}

static const struct sl_drv_host sim_drv_host = {
	.install_snapshot = dh_install,
	.save_hard_state = dh_save_hs,
	.save_entry = dh_save_entry,
	.send = dh_send,
	.apply = dh_apply,
	.ack = dh_ack,
	.read = dh_read,
};

/* One ready at a time, so the fault schedule keeps its moments: a leader may die right
 * after the ready of its election or of its first commit (messages the driver holds for
 * durability die with it, as do unsynced writes). */
static void process_drv(struct world *w, uint32_t gi, uint32_t n)
{
	struct group *g = &w->g[gi];
	struct replica *rp = &g->r[n];
	for (int guard = 0; rp->drv && sl_drv_has_ready(rp->drv); guard++) {
		SL_ASSERT(guard < 1000000);
		struct sl_cons_status stt;
		sl_drv_status(rp->drv, &stt);
		rp->term_now = stt.term;
		rp->wrote = rp->w_persist = false;
		uint64_t applied0 = rp->applied;
		sl_drv_process(rp->drv, 1);
		if (rp->wrote) {
			struct sync_job *job = calloc(1, sizeof(*job));
			SL_ASSERT(job != NULL);
			job->has_persist = rp->w_persist;
			job->term = rp->w_term;
			job->index = rp->w_index;
			job->pos_mark = rp->pos;
			sync_issue(w, gi, n, job, true);
		}
		if (leader_moment(w, g, n, rp, &stt, rp->applied > applied0)) {
			w->faults[F_CRASH_LEADER]++;
			node_crash(w, n, 50 * NS_MS);
			return;
		}
		serve_waits(w, gi, rp);
		maybe_snapshot(w, g, n, rp);
	}
}

/* The protocol's inputs, through the driver in driver mode. */
static int r_propose(struct replica *rp, uint64_t pid, const uint8_t *d, uint32_t len)
{
	return rp->drv ? sl_drv_propose(rp->drv, pid, d, len)
		       : sl_cons_raft_ops.propose(rp->raft, pid, d, len);
}

static int r_seal(struct replica *rp, uint64_t pid, const uint8_t *d, uint32_t len)
{
	return rp->drv ? sl_drv_seal(rp->drv, pid, d, len)
		       : sl_cons_raft_ops.seal(rp->raft, pid, d, len);
}

static int r_step(struct replica *rp, const struct sl_cons_msg *m)
{
	return rp->drv ? sl_drv_step(rp->drv, m) : sl_cons_raft_ops.step(rp->raft, m);
}

static void r_tick(struct replica *rp, uint64_t now)
{
	if (rp->drv)
		sl_drv_tick(rp->drv, now);
	else
		sl_cons_raft_ops.tick(rp->raft, now);
}

static void r_destroy(struct replica *rp)
{
	if (rp->drv)
		sl_drv_destroy(rp->drv);
	else if (rp->raft)
		sl_cons_raft_ops.destroy(rp->raft);
	rp->drv = NULL;
	rp->raft = NULL;
}

static void process_raft(struct world *w, uint32_t gi, uint32_t n);

/* Readies of one replica; a rejoining one that is whole again leaves rejoin mode for good
 * (as sluiced removes its REJOIN marker). */
static void process(struct world *w, uint32_t gi, uint32_t n)
{
	struct replica *rp = &w->g[gi].r[n];
	if (g_opt.driver)
		process_drv(w, gi, n);
	else
		process_raft(w, gi, n);
	if (g_opt.seal && rp->raft != NULL)
		check_seal_guard(w, &w->g[gi], n, rp);
	if (rp->rejoin && rp->raft != NULL) {
		struct sl_cons_status st;
		sl_cons_raft_ops.status(rp->raft, &st);
		if (!st.rejoining) {
			rp->rejoin = false;
			trace(w, "g%u n%u rejoined", gi + 1, n);
		}
	}
}

static void process_raft(struct world *w, uint32_t gi, uint32_t n)
{
	const struct sl_cons_ops *ops = &sl_cons_raft_ops;
	struct group *g = &w->g[gi];
	struct replica *rp = &g->r[n];
	for (int guard = 0; rp->raft && ops->has_ready(rp->raft); guard++) {
		SL_ASSERT(guard < 1000000);
		struct sl_cons_ready rd;
		ops->ready(rp->raft, &rd);
		struct sl_cons_status stt;
		ops->status(rp->raft, &stt);
		bool wrote = false, conf_written = false;
		struct sync_job *job = calloc(1, sizeof(*job));
		SL_ASSERT(job != NULL);
		if (rd.has_snapshot) {
			sim_disk_write_snapshot(&rp->disk, &rd.snapshot, true);
			snapshot_restore(rp);
			w->checks[C_SNAPSHOT_STATE]++;
			struct centry *c = com_at(g, rd.snapshot.index);
			if (c->set && c->state != kv_hash(rp->kv))
				violation(w,
					  "snapshot: g%u n%u installed index %" PRIu64
					  " with a state no replica had there",
					  g->id, n, rd.snapshot.index);
			job->has_persist = true;
			job->term = rd.snapshot.term;
			job->index = rd.snapshot.index;
			wrote = true;
		}
		if (rd.n_persist > 0) {
			for (uint32_t i = 0; i < rd.n_persist; i++) {
				const struct sl_cons_entry *e = &rd.persist[i];
				lm_record(w, g, e->index, e->term,
					  entry_hash(e->term, e->type, e->data, e->len));
				conf_written |= e->type == SL_CONS_ENTRY_CONF;
			}
			sim_disk_write_entries(&rp->disk, rd.persist, rd.n_persist);
			job->has_persist = true;
			job->term = rd.persist[rd.n_persist - 1].term;
			job->index = rd.persist[rd.n_persist - 1].index;
			wrote = true;
		}
		if (rd.has_hard_state) {
			sim_disk_write_hs(&rp->disk, &rd.hard_state);
			wrote = true;
		}
		bool crash = leader_moment(w, g, n, rp, &stt, rd.n_committed > 0);
		for (uint32_t i = 0; i < rd.n_committed; i++)
			apply_entry(w, g, n, rp, &rd.committed[i], stt.term);
		for (uint32_t i = 0; i < rd.n_acks; i++)
			on_ack(w, gi, &rd.acks[i]);
		for (uint32_t i = 0; i < rd.n_reads; i++)
			on_read(w, gi, rp, &rd.reads[i]);
		if (crash) {
			/* the node dies after applying and acknowledging but before this ready's
			 * messages leave (and before its writes are synced) */
			free(job);
			w->faults[F_CRASH_LEADER]++;
			node_crash(w, n, 50 * NS_MS);
			return;
		}
		if (rd.n_msgs > 0 && rd.msgs_after_persist) {
			job->msgs = xrealloc(NULL, rd.n_msgs * sizeof(*job->msgs));
			for (uint32_t i = 0; i < rd.n_msgs; i++) {
				const struct sl_cons_msg *m = &rd.msgs[i];
				struct msgbuf *b = xrealloc(NULL, sizeof(*b) + m->len);
				*b = (struct msgbuf){m->group_id, m->from, m->to, m->len, 0};
				memcpy(b->buf, m->buf, m->len);
				job->msgs[job->n_msgs++] = b;
			}
		} else {
			for (uint32_t i = 0; i < rd.n_msgs; i++)
				net_send(w, gi, &rd.msgs[i]);
		}
		if (wrote || job->n_msgs > 0)
			sync_issue(w, gi, n, job, wrote);
		else
			free(job);
		ops->advance(rp->raft, &rd);
		if (rd.has_snapshot || rd.n_persist > 0) {
			/* the log changed and is now all on the (simulated) disk */
			struct sl_cons_conf have;
			sl_raft_conf(rp->raft, &have);
			check_conf(w, g, n, &have, stt.last_index, "has membership in effect");
		}
		if (conf_written)
			check_conf_quorums(w, g);
		serve_waits(w, gi, rp);
		maybe_snapshot(w, g, n, rp);
	}
}

/* ---- replica life cycle ---- */

static void replica_start(struct world *w, uint32_t gi, uint32_t n)
{
	struct group *g = &w->g[gi];
	struct replica *rp = &g->r[n];
	struct sl_cons_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.group_id = gi + 1;
	cfg.self = n;
	cfg.n_voters = g->init.n_voters;
	memcpy(cfg.voters, g->init.voters, sizeof(cfg.voters));
	uint64_t salt[3] = {gi, n, w->nodes[n].inc};
	cfg.seed = sim_hash(salt, sizeof(salt), w->seed);
	cfg.election_timeout_ns = w->p.et_ns;
	cfg.heartbeat_interval_ns = w->p.hb_ns;
	cfg.max_batch_entries = w->p.max_batch;
	cfg.max_inflight_bytes = w->p.max_infl;
	cfg.initial = rp->disk.hs;
	cfg.log = &rp->disk.log;
	cfg.proto_opts = &w->opts;
	cfg.rejoin = rp->rejoin;
	rp->w = w; /* who this replica is, for the checkers (and the driver's callbacks) */
	rp->gi = gi;
	rp->n = n;
	if (g_opt.driver) {
		/* recovery as the node does it: the driver creates the protocol over the
		 * recovered log and hard state, then re-applies from the snapshot on */
		struct sl_drv_config dc;
		memset(&dc, 0, sizeof(dc));
		dc.protocol = "raft";
		dc.cons = cfg;
		dc.max_entry_bytes = SIM_MAX_PAYLOAD;
		dc.max_inflight = w->opts.max_pending_proposals;
		dc.applied_index = rp->disk.snap_index;
		dc.held_bytes = 512u << 10;
		struct sl_drv_host h = sim_drv_host;
		h.ctx = rp;
		rp->pos = 0;
		SL_ASSERT(sl_drv_create(&dc, &h, &rp->drv) == 0);
		rp->raft = sl_drv_instance(rp->drv);
	} else {
		SL_ASSERT(sl_cons_raft_ops.create(&cfg, &rp->raft) == 0);
	}
	snapshot_restore(rp);
	rp->n_waits = 0;
	rp->syncs_pending = 0;
}

/* A node other than n whose replicas have not all rejoined yet. */
static bool rejoining_elsewhere(const struct world *w, uint32_t n)
{
	for (uint32_t m = 1; m <= w->p.n_nodes; m++)
		for (uint32_t gi = 0; m != n && gi < w->p.n_groups; gi++)
			if (w->g[gi].r[m].rejoin)
				return true;
	return false;
}

static void node_crash(struct world *w, uint32_t n, uint64_t down_min_ns)
{
	struct node *nd = &w->nodes[n];
	if (!nd->up)
		return;
	nd->up = false;
	nd->wal_failed = false; /* the restart brings a fresh WAL writer up */
	nd->inc++;
	nd->sync_cur = nd->sync_next = w->now;
	w->faults[F_CRASH]++;
	trace(w, "crash n%u", n);
	for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
		struct group *g = &w->g[gi];
		struct replica *rp = &g->r[n];
		if (rp->raft == NULL)
			continue;
		r_destroy(rp);
		rp->n_waits = 0;
		rp->syncs_pending = 0;
		bool lost;
		if (sim_disk_crash_drawn(&rp->disk, &w->rng, &lost) > 0)
			w->faults[F_TORN]++;
		if (lost)
			w->faults[F_LOST_UNSYNCED]++;
		for (uint32_t ci = 0; ci < w->p.n_clients; ci++) {
			struct client *c = &g->c[ci];
			if (!c->busy || c->node != n)
				continue;
			if (c->is_read)
				g->hist[c->hist].void_op = true;
			client_next(w, gi, ci, sim_range(&w->rng, 5 * NS_MS, 50 * NS_MS));
		}
	}
	if (g_opt.disk_loss && !rejoining_elsewhere(w, n) && sim_chance(&w->rng, 250000)) {
		/* the disk is gone (one node at a time: two lost disks can lose what only
		 * they acknowledged, beyond what any replication survives) */
		for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
			struct replica *rp = &w->g[gi].r[n];
			sim_disk_free(&rp->disk);
			sim_disk_init(&rp->disk);
			rp->rejoin = true;
		}
		w->faults[F_DISK_LOSS]++;
		trace(w, "disk of n%u lost", n);
	}
	if (!w->healed)
		ev_push(w, w->now + sim_range(&w->rng, down_min_ns, 3 * NS_S), EV_RESTART,
			(uint8_t)n, 0, 0, 0, NULL);
}

static void node_restart(struct world *w, uint32_t n)
{
	struct node *nd = &w->nodes[n];
	if (nd->up)
		return;
	nd->up = true;
	trace(w, "restart n%u", n);
	for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
		replica_start(w, gi, n);
		process(w, gi, n);
	}
}

static uint32_t find_leader(struct world *w, struct group *g)
{
	uint32_t best = 0;
	uint64_t best_term = 0;
	for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
		if (g->r[n].raft == NULL)
			continue;
		struct sl_cons_status st;
		sl_cons_raft_ops.status(g->r[n].raft, &st);
		if (st.role == SL_CONS_ROLE_LEADER && st.term > best_term) {
			best = n;
			best_term = st.term;
		}
	}
	return best;
}

/* ---- clients ---- */

static uint32_t pick_member(struct world *w, struct group *g)
{
	const struct sl_cons_conf *c = &g->conf_seen;
	return c->voters[sim_below(&w->rng, c->n_voters)];
}

static void client_start(struct world *w, uint32_t gi, uint32_t ci)
{
	struct group *g = &w->g[gi];
	struct client *c = &g->c[ci];
	uint32_t n = c->hint ? c->hint : pick_member(w, g);
	c->hint = 0;
	struct replica *rp = &g->r[n];
	if (!w->nodes[n].up || rp->raft == NULL) {
		client_next(w, gi, ci, sim_range(&w->rng, 2 * NS_MS, 20 * NS_MS));
		return;
	}
	/* time as the replica sees it right now: a lease check must not use a stale tick */
	r_tick(rp, local_ns(w, n));
	c->is_read = sim_below(&w->rng, 10) < 4 || w->now < g->ro_until;
	c->key = (uint32_t)sim_below(&w->rng, SIM_KEYS);
	c->pid = ++g->pid_seq;
	uint64_t value = 0;
	int rc;
	if (c->is_read) {
		rc = sl_raft_read_index(rp->raft, c->pid, w->p.lease && sim_below(&w->rng, 2));
	} else {
		uint8_t pl[12];
		value = ((uint64_t)(gi + 1) << 48) | ++g->value_seq;
		write_payload(pl, c->key, value);
		c->after_seal = g->seal_idx != 0;
		rc = r_propose(rp, c->pid, pl, sizeof(pl));
		if (rc == -EROFS)
			w->seals[S_REFUSED]++;
	}
	trace(w, "g%u client %u %s at n%u: %d", g->id, ci, c->is_read ? "read" : "write", n, rc);
	if (rc == 0) {
		GROW(g->hist, g->n_hist, g->hist_cap);
		c->hist = (uint32_t)g->n_hist;
		g->hist[g->n_hist++] =
		    (struct hop){c->key, false, {w->now, SIM_NO_RET, !c->is_read, value}};
		c->busy = true;
		c->node = n;
		c->floor = g->known_idx;
		c->token++;
		/* a client gives up on a write after half an election timeout to 1.5 s, on a
		 * read (one heartbeat round when all is well) after a quarter to one election
		 * timeout: one stuck on a leader that was cut off must move on while that
		 * leader still believes it leads (the window in which a stale read happens) */
		uint64_t patience =
		    c->is_read ? sim_range(&w->rng, w->p.et_ns / 4, w->p.et_ns)
			       : sim_range(&w->rng, w->p.et_ns / 2, 1500 * NS_MS);
		ev_push(w, w->now + patience, EV_CLIENT, 0, (uint8_t)gi, (uint8_t)ci, c->token,
			NULL);
	} else {
		struct sl_cons_status st;
		sl_cons_raft_ops.status(rp->raft, &st);
		if (rc == -EPERM && st.leader != n && st.leader <= w->p.n_nodes)
			c->hint = st.leader;
		client_next(w, gi, ci, sim_range(&w->rng, 1 * NS_MS, 30 * NS_MS));
	}
	process(w, gi, n);
}

/* The harness seals group gi through its leader (the driver in driver mode), again and
 * again until a SEAL is applied somewhere: a leader that lost its SEAL (truncated: acked
 * DROPPED) or never had one gets a new attempt; one that holds it says -EALREADY. */
static void seal_event(struct world *w, uint32_t gi)
{
	struct group *g = &w->g[gi];
	if (g->seal_idx != 0)
		return;
	g->sealing = true;
	uint32_t l = find_leader(w, g);
	if (l != 0 && g->seal_pid == 0) {
		uint8_t pl[8];
		sl_put_u32(pl, 0x4c414553u); /* "SEAL" */
		sl_put_u32(pl + 4, g->id);
		uint64_t pid = ++g->pid_seq;
		int rc = r_seal(&g->r[l], pid, pl, sizeof(pl));
		trace(w, "g%u seal at n%u: %d", g->id, l, rc);
		if (rc == 0) {
			g->seal_pid = pid;
			w->seals[S_ATTEMPTS]++;
		}
		process(w, gi, l);
	}
	/* an attempt whose ack never comes (its leader crashed) is given up after a while */
	if (g->seal_pid != 0 && sim_chance(&w->rng, 100000))
		g->seal_pid = 0;
	ev_push(w, w->now + sim_range(&w->rng, 20 * NS_MS, 100 * NS_MS), EV_SEAL, 0, (uint8_t)gi,
		0, 0, NULL);
}

static void client_event(struct world *w, uint32_t gi, uint32_t ci, uint64_t token)
{
	struct group *g = &w->g[gi];
	struct client *c = &g->c[ci];
	if (token != c->token)
		return;
	if (c->busy) {
		/* timed out: a write's outcome stays unknown, a read is forgotten */
		if (c->is_read)
			g->hist[c->hist].void_op = true;
		client_next(w, gi, ci, sim_range(&w->rng, 1 * NS_MS, 20 * NS_MS));
		return;
	}
	if (w->now + NS_S >= w->p.run_ns + w->p.heal_ns)
		return; /* quiesce before the final checks */
	client_start(w, gi, ci);
}

/* ---- faults ---- */

static void random_split(struct world *w, bool *side)
{
	uint32_t a = 0;
	do {
		a = 0;
		for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
			side[n] = sim_below(&w->rng, 2);
			a += side[n];
		}
	} while (a == 0 || a == w->p.n_nodes);
}

static void admin_change(struct world *w, uint32_t gi, bool prefer_remove)
{
	struct group *g = &w->g[gi];
	uint32_t l = find_leader(w, g);
	if (l == 0)
		return;
	struct sl_cons_conf c;
	sl_raft_conf(g->r[l].raft, &c);
	int rc = -EINVAL;
	/* any change that applies, at random: two leaders' different changes from the same
	 * membership are what the change rules must keep apart */
	enum sl_raft_change_op ops[3];
	uint32_t n_ops = 0;
	if (c.n_learners > 0)
		ops[n_ops++] = SL_RAFT_PROMOTE;
	if (c.n_voters < 5 && c.n_voters + c.n_learners < w->p.n_nodes)
		ops[n_ops++] = SL_RAFT_ADD_LEARNER;
	if (c.n_voters > 3)
		ops[n_ops++] = SL_RAFT_REMOVE;
	enum sl_raft_change_op op = n_ops ? ops[sim_below(&w->rng, n_ops)] : SL_RAFT_REMOVE;
	if (prefer_remove && (c.n_voters > 3 || c.n_learners > 0)) /* a voter change */
		op = c.n_voters > 3 ? SL_RAFT_REMOVE : SL_RAFT_PROMOTE;
	if (n_ops > 0 && op == SL_RAFT_PROMOTE) {
		rc = sl_raft_change(g->r[l].raft, 0, SL_RAFT_PROMOTE, c.learners[0]);
	} else if (n_ops > 0 && op == SL_RAFT_ADD_LEARNER) {
		uint32_t cand[MAX_NODES], k = 0;
		for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
			bool in = false;
			for (uint32_t i = 0; i < c.n_voters; i++)
				in |= c.voters[i] == n;
			for (uint32_t i = 0; i < c.n_learners; i++)
				in |= c.learners[i] == n;
			if (!in)
				cand[k++] = n;
		}
		rc = sl_raft_change(g->r[l].raft, 0, SL_RAFT_ADD_LEARNER,
				    cand[sim_below(&w->rng, k)]);
	} else if (n_ops > 0) {
		uint32_t v = c.voters[sim_below(&w->rng, c.n_voters)];
		if (v != l)
			rc = sl_raft_change(g->r[l].raft, 0, SL_RAFT_REMOVE, v);
	}
	if (rc == 0) {
		w->faults[F_CONF_CHANGE]++;
		trace(w, "g%u conf change via n%u", g->id, l);
	}
	process(w, gi, l);
}

static void fault_event(struct world *w)
{
	struct sim_rng *r = &w->rng;
	if (w->healed)
		return;
	uint32_t n = (uint32_t)sim_range(r, 1, w->p.n_nodes);
	uint32_t gi = (uint32_t)sim_below(r, w->p.n_groups);
	switch (sim_below(r, 10)) {
	case 0: {
		bool side[MAX_NODES + 1];
		random_split(w, side);
		for (uint32_t a = 1; a <= w->p.n_nodes; a++)
			for (uint32_t b = 1; b <= w->p.n_nodes; b++)
				if (side[a] != side[b])
					w->blocked[a][b] = true;
		w->faults[F_PART_SYM]++;
		ev_push(w, w->now + sim_range(r, 200 * NS_MS, 3 * NS_S), EV_HEAL, 0, 0, 0, 0, NULL);
		break;
	}
	case 1: {
		bool side[MAX_NODES + 1];
		random_split(w, side);
		for (uint32_t a = 1; a <= w->p.n_nodes; a++)
			for (uint32_t b = 1; b <= w->p.n_nodes; b++)
				if (side[a] && !side[b])
					w->blocked[a][b] = true;
		w->faults[F_PART_ONEWAY]++;
		ev_push(w, w->now + sim_range(r, 200 * NS_MS, 3 * NS_S), EV_HEAL, 0, 0, 0, 0, NULL);
		break;
	}
	case 2:
		node_crash(w, n, 50 * NS_MS);
		break;
	case 3:
		if (w->p.jumps) {
			w->nodes[n].clock_off_ns += sim_range(r, w->p.et_ns / 2, 4 * w->p.et_ns);
			w->faults[F_CLOCK_JUMP]++;
		}
		break;
	case 4:
		w->nodes[n].slow_until = w->now + sim_range(r, 300 * NS_MS, 3 * NS_S);
		w->faults[F_SLOW_DISK]++;
		break;
	case 5: {
		uint32_t l = find_leader(w, &w->g[gi]);
		if (l != 0) {
			struct sl_cons_conf c;
			sl_raft_conf(w->g[gi].r[l].raft, &c);
			uint32_t t = c.voters[sim_below(r, c.n_voters)];
			if (t != l && sl_raft_transfer_leader(w->g[gi].r[l].raft, t) == 0)
				w->faults[F_TRANSFER]++;
			process(w, gi, l);
		}
		break;
	}
	case 6:
		if (w->p.membership)
			admin_change(w, gi, false);
		break;
	case 7: {
		/* lease attack, step 1: one follower stops hearing the leader and campaigns
		 * (the others, inside the leader's lease, must refuse it); step 2, about when
		 * its election timer fires: the leader's node is cut off, still believing it
		 * leads. A new leader must not take writes while the old one still answers
		 * reads (its lease must have ended; ReadIndex must not confirm it). */
		uint32_t l = find_leader(w, &w->g[gi]);
		if (l == 0)
			break;
		struct sl_cons_conf c;
		sl_raft_conf(w->g[gi].r[l].raft, &c);
		uint32_t v = c.voters[sim_below(r, c.n_voters)];
		if (v == l)
			break;
		w->blocked[l][v] = true;
		/* clients only read meanwhile: the follower's log stays as long as the
		 * others', so only their refusal (check-quorum) keeps it from winning */
		w->g[gi].ro_until = w->now + 4 * w->p.et_ns;
		w->faults[F_LEASE_ATTACK]++;
		trace(w, "lease attack: g%u n%u stops hearing leader n%u", gi + 1, v, l);
		ev_push(w, w->now + sim_range(r, w->p.et_ns, 2 * w->p.et_ns), EV_ISOLATE,
			(uint8_t)l, 0, 0, 0, NULL);
		break;
	}
	case 8: {
		/* a change cut off: the leader's messages stop reaching anyone, then it
		 * changes the membership (the change stays in its log alone, uncommitted);
		 * the others elect a leader without it, which is asked for a change of its
		 * own right away (EV_CHANGE, half the time) and must commit its no-op first */
		uint32_t l = find_leader(w, &w->g[gi]);
		if (l == 0 || !w->p.membership)
			break;
		for (uint32_t b = 1; b <= w->p.n_nodes; b++)
			w->blocked[l][b] = b != l;
		w->faults[F_CHANGE_ATTACK]++;
		trace(w, "change attack: g%u leader n%u cut off", gi + 1, l);
		w->g[gi].change_next = true;
		admin_change(w, gi, true);
		ev_push(w, w->now + sim_range(r, 2 * w->p.et_ns, 3 * NS_S), EV_HEAL, 0, 0, 0, 0,
			NULL);
		break;
	}
	default:
		break; /* a quiet spell */
	}
	/* ten kinds drawn where there were eight: 4/5 of the interval keeps the older
	 * kinds (crashes, partitions...) as frequent as before the two attacks came */
	uint64_t fe = w->p.fault_every_ns;
	ev_push(w, w->now + sim_range(r, 2 * fe / 5, 6 * fe / 5), EV_FAULT, 0, 0, 0, 0, NULL);
}

static void heal(struct world *w, bool final)
{
	memset(w->blocked, 0, sizeof(w->blocked));
	if (!final)
		return;
	w->healed = true;
	w->p.drop_ppm = w->p.dup_ppm = 0;
	for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
		w->nodes[n].slow_until = 0;
		if (w->nodes[n].wal_failed)
			node_crash(w, n, 0); /* its operator restarts it now */
		node_restart(w, n);
	}
}

/* ---- events ---- */

static void on_deliver(struct world *w, struct sim_event *e)
{
	struct msgbuf *b = e->p;
	struct replica *rp = &w->g[e->group].r[b->to];
	if (w->nodes[b->to].up && rp->raft != NULL) {
		if (b->send_seq < w->link_delivered[b->from][b->to])
			w->faults[F_REORDER]++;
		else
			w->link_delivered[b->from][b->to] = b->send_seq;
		struct sl_cons_msg m = {b->group, b->from, b->to, b->len, b->buf};
		trace(w, "g%u %u->%u type %u term %" PRIu64 " len %u", e->group + 1, b->from, b->to,
		      b->buf[1], sl_get_u64(b->buf + 8), b->len);
		int rc = r_step(rp, &m);
		/* a replica whose storage failed refuses everything until restarted */
		SL_ASSERT(rc == 0 || (rc == -EIO && w->nodes[b->to].wal_failed));
		process(w, e->group, b->to);
	}
	free(b);
}

static void on_sync(struct world *w, struct sim_event *e)
{
	struct sync_job *job = e->p;
	struct replica *rp = &w->g[e->group].r[e->node];
	struct node *nd = &w->nodes[e->node];
	if (job->inc == nd->inc && rp->drv != NULL && !nd->wal_failed && !w->healed &&
	    sim_chance(&w->rng, w->p.fsync_err_ppm)) {
		/* the fsync failed: nothing it covered is known durable, and the WAL is failed
		 * for good (no fsync retry). The driver tells each protocol, which fails what is
		 * in flight; the node keeps running without acknowledging anything until its
		 * operator restarts it (sluiced's behaviour), keeping what reached the disk */
		nd->wal_failed = true;
		w->faults[F_FSYNC_ERR]++;
		trace(w, "fsync error n%u", e->node);
		for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
			struct replica *x = &w->g[gi].r[e->node];
			if (x->drv == NULL)
				continue;
			struct sl_cons_status st;
			sl_drv_status(x->drv, &st);
			sl_drv_storage_failed(x->drv, st.durable_index + 1, -EIO);
			process(w, gi, e->node);
		}
		ev_push(w, w->now + sim_range(&w->rng, 20 * NS_MS, 500 * NS_MS), EV_WAL_DEAD,
			(uint8_t)e->node, 0, 0, nd->inc, NULL);
	} else if (job->inc == nd->inc && nd->wal_failed) {
		rp->syncs_pending--; /* failed with the WAL: nothing more becomes durable */
	} else if (job->inc == w->nodes[e->node].inc && rp->raft != NULL) {
		rp->syncs_pending--;
		if (job->wal_mark > rp->disk.synced)
			rp->disk.synced = job->wal_mark;
		if (rp->drv != NULL) {
			if (job->has_persist)
				sl_drv_persisted(rp->drv, job->term, job->index);
			sl_drv_durable(rp->drv, job->pos_mark);
		} else if (job->has_persist) {
			sl_cons_raft_ops.persisted(rp->raft, job->term, job->index);
		}
		for (uint32_t i = 0; i < job->n_msgs; i++) {
			struct msgbuf *b = job->msgs[i];
			struct sl_cons_msg m = {b->group, b->from, b->to, b->len, b->buf};
			net_send(w, e->group, &m);
		}
		process(w, e->group, e->node);
		if (rp->syncs_pending == 0 && rp->disk.synced == rp->disk.wal_len &&
		    rp->disk.wal_len > (256u << 10))
			sim_disk_rewrite(&rp->disk);
	}
	for (uint32_t i = 0; i < job->n_msgs; i++)
		free(job->msgs[i]);
	free(job->msgs);
	free(job);
}

static void on_tick(struct world *w, struct sim_event *e)
{
	uint32_t n = e->node;
	if (w->nodes[n].up)
		for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
			r_tick(&w->g[gi].r[n], local_ns(w, n));
			process(w, gi, n);
		}
	uint64_t t = w->p.tick_ns;
	ev_push(w, w->now + t - t / 5 + sim_below(&w->rng, 2 * t / 5), EV_TICK, (uint8_t)n, 0, 0, 0,
		NULL);
}

/* ---- final checks ---- */

/* Seal, after the heal: the group is sealed, every member reports the SEAL's index as its
 * end, and every acknowledged write lies below it (c). */
static bool check_seal_final(struct world *w, struct group *g, const uint32_t *members,
			     uint32_t nm)
{
	if (g->sealing && g->seal_idx == 0) {
		violation(w, "seal: g%u was never sealed (liveness after the heal)", g->id);
		return false;
	}
	for (uint32_t i = 0; i < nm && g->seal_idx != 0; i++) {
		struct sl_cons_status st;
		sl_cons_raft_ops.status(g->r[members[i]].raft, &st);
		if (st.sealed_index != g->seal_idx) {
			violation(w, "seal: g%u n%u reports sealed_index %" PRIu64 ", the SEAL is at %" PRIu64,
				  g->id, members[i], st.sealed_index, g->seal_idx);
			return false;
		}
	}
	for (size_t i = 0; i < g->n_acks && g->seal_idx != 0; i++) {
		w->seals[S_ACKED_BELOW]++;
		if (g->acks[i].index >= g->seal_idx) {
			violation(w, "seal: g%u write acked OK at index %" PRIu64 ", not below the SEAL at %" PRIu64,
				  g->id, g->acks[i].index, g->seal_idx);
			return false;
		}
	}
	return true;
}

static void check_final(struct world *w)
{
	for (uint32_t gi = 0; gi < w->p.n_groups && !w->fail[0]; gi++) {
		struct group *g = &w->g[gi];
		check_log_pairs(w, g);
		uint32_t l = find_leader(w, g);
		if (l == 0) {
			violation(w, "liveness: group %u has no leader after the faults healed",
				  g->id);
			return;
		}
		struct sl_cons_status ls;
		sl_cons_raft_ops.status(g->r[l].raft, &ls);
		struct sl_cons_conf c;
		sl_raft_conf(g->r[l].raft, &c);
		uint32_t members[2 * SL_CONS_MAX_PEERS], nm = 0;
		for (uint32_t i = 0; i < c.n_voters; i++)
			members[nm++] = c.voters[i];
		for (uint32_t i = 0; i < c.n_learners; i++)
			members[nm++] = c.learners[i];
		for (uint32_t i = 0; i < nm; i++) {
			struct replica *rp = &g->r[members[i]];
			if (rp->applied != ls.commit_index ||
			    memcmp(rp->kv, g->r[l].kv, sizeof(rp->kv)) != 0) {
				violation(w,
					  "convergence: g%u member n%u applied %" PRIu64
					  ", leader n%u committed %" PRIu64,
					  g->id, members[i], rp->applied, l, ls.commit_index);
				return;
			}
		}
		w->checks[C_CONVERGED]++;
		if (g_opt.seal && !check_seal_final(w, g, members, nm))
			return;
		for (size_t i = 0; i < g->n_acks; i++) {
			const struct acked *a = &g->acks[i];
			if (a->index >= g->com_cap || !g->com[a->index].set ||
			    g->com[a->index].phash != a->phash) {
				violation(w, "acknowledged write lost: g%u index %" PRIu64, g->id,
					  a->index);
				return;
			}
			w->checks[C_ACKED]++;
		}
		struct lin_op *ops = xrealloc(NULL, (g->n_hist + 1) * sizeof(*ops));
		for (uint32_t k = 0; k < SIM_KEYS; k++) {
			uint32_t n = 0;
			for (size_t i = 0; i < g->n_hist; i++)
				if (g->hist[i].key == k && !g->hist[i].void_op)
					ops[n++] = g->hist[i].op;
			uint64_t steps = 0;
			enum lin_result res = lin_check_register(ops, n, LIN_BUDGET, &steps);
			w->checks[C_LIN_KEYS]++;
			w->checks[C_LIN_OPS] += n;
			if (res == LIN_UNKNOWN)
				w->checks[C_LIN_UNKNOWN]++;
			if (res == LIN_VIOLATION) {
				violation(w,
					  "linearizability: g%u key %u history of %u operations "
					  "is not linearizable",
					  g->id, k, n);
				break;
			}
		}
		free(ops);
	}
}

/* ---- one run ---- */

static void dump_replicas(struct world *w)
{
	for (uint32_t gi = 0; gi < w->p.n_groups; gi++)
		for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
			struct replica *rp = &w->g[gi].r[n];
			if (rp->raft == NULL)
				continue;
			struct sl_cons_status st;
			struct sl_raft_stats rs;
			sl_cons_raft_ops.status(rp->raft, &st);
			sl_raft_stats(rp->raft, &rs);
			fprintf(stderr,
				"g%u n%u role %u leader %u term %" PRIu64 " commit %" PRIu64
				" applied %" PRIu64 " last %" PRIu64 " durable %" PRIu64
				" snap %" PRIu64 " | snaps sent %" PRIu64 " installed %" PRIu64
				" rejected %" PRIu64 " outbox drops %" PRIu64 "\n",
				gi + 1, n, st.role, st.leader, st.term, st.commit_index,
				st.applied_index, st.last_index, st.durable_index,
				rp->disk.snap_index, rs.snapshots_sent, rs.snapshots_installed,
				rs.appends_rejected, rs.msgs_dropped_outbox);
		}
}

static void make_params(struct world *w)
{
	struct sim_rng *r = &w->rng;
	struct params *p = &w->p;
	static const uint32_t batches[] = {1, 1, 2, 4, 16, 64};
	static const uint32_t windows[] = {200, 1000, 8000, 64000};
	p->n_nodes = (uint32_t)sim_range(r, 3, MAX_NODES);
	p->n_groups = (uint32_t)sim_range(r, 1, MAX_GROUPS);
	p->n_clients = (uint32_t)sim_range(r, 1, MAX_CLIENTS);
	p->et_ns = sim_range(r, 100, 300) * NS_MS;
	p->hb_ns = p->et_ns / sim_range(r, 4, 10);
	p->tick_ns = sim_range(r, 2, 10) * NS_MS;
	p->max_batch = batches[sim_below(r, SL_ARRAY_LEN(batches))];
	p->max_infl = windows[sim_below(r, SL_ARRAY_LEN(windows))];
	p->lat_min_ns = sim_range(r, 100, 2000) * 1000;
	p->lat_jitter_ns = sim_range(r, 0, 10) * NS_MS;
	p->drop_ppm = (uint32_t)sim_range(r, 0, 100000);
	p->dup_ppm = (uint32_t)sim_range(r, 0, 30000);
	p->fault_every_ns = sim_range(r, 200, 1500) * NS_MS;
	static const uint32_t kill_elected[] = {0, 150000, 400000, 700000};
	static const uint32_t kill_committed[] = {0, 300000, 900000};
	p->kill_elected_ppm = kill_elected[sim_below(r, SL_ARRAY_LEN(kill_elected))];
	p->kill_committed_ppm = kill_committed[sim_below(r, SL_ARRAY_LEN(kill_committed))];
	p->lease = sim_below(r, 2);
	p->jumps = !p->lease || g_opt.lease_jumps;
	p->membership = p->n_nodes >= 4 && sim_below(r, 10) < 6;
	p->snap_every = (uint32_t)sim_range(r, 5, 80);
	p->run_ns = 8 * NS_S;
	p->heal_ns = 4 * NS_S;
	/* drawn last and only in driver mode: pure-mode seeds replay as before */
	p->fsync_err_ppm = g_opt.driver ? (uint32_t)sim_range(r, 0, 600) : 0;
	/* --seal: drawn after everything else, so the rest of a seed is as without it */
	for (uint32_t gi = 0; g_opt.seal && gi < p->n_groups; gi++)
		p->seal_at_ns[gi] = sim_range(r, 500, 7500) * NS_MS;
	w->opts = (struct sl_raft_opts){
	    .lease_reads = p->lease,
	    .clock_drift_ppm_max = 1000,
	    .max_msg_bytes = 16u << 10,
	    .max_unstable_entries = 2048,
	    .max_unstable_bytes = 256u << 10,
	    .max_outbox_msgs = 512,
	    .max_outbox_bytes = 256u << 10,
	    .max_apply_entries = 256,
	    .max_apply_bytes = 64u << 10,
	    .max_pending_proposals = 1024,
	    .max_pending_reads = 64,
	};
	if (g_opt.disk_loss)
		w->opts.max_msg_bytes = 512; /* a padded snapshot is several chunks */
}

static void world_init(struct world *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->rng.s = seed;
	make_params(w);
	struct sim_rng *r = &w->rng;
	for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
		struct node *nd = &w->nodes[n];
		nd->up = true;
		nd->drift_ppm = (int64_t)sim_range(r, 0, 800) - 400; /* inside the 1000 ppm bound */
		nd->disk_lat_ns = sim_range(r, 20, 500) * 1000;
		nd->clock_off_ns = sim_range(r, 0, 1000) * NS_S;
	}
	for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
		struct group *g = &w->g[gi];
		g->id = gi + 1;
		uint32_t nv = w->p.n_nodes >= 5 && sim_below(r, 3) == 0 ? 5 : 3;
		bool used[MAX_NODES + 1] = {false};
		while (g->init.n_voters < nv) {
			uint32_t n = (uint32_t)sim_range(r, 1, w->p.n_nodes);
			if (!used[n]) {
				used[n] = true;
				g->init.voters[g->init.n_voters++] = n;
			}
		}
		g->conf_seen = g->init;
		for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
			sim_disk_init(&g->r[n].disk);
			replica_start(w, gi, n);
		}
		for (uint32_t ci = 0; ci < w->p.n_clients; ci++)
			client_next(w, gi, ci, sim_range(r, 50 * NS_MS, 300 * NS_MS));
	}
	for (uint32_t n = 1; n <= w->p.n_nodes; n++)
		ev_push(w, sim_below(r, w->p.tick_ns), EV_TICK, (uint8_t)n, 0, 0, 0, NULL);
	ev_push(w, w->p.fault_every_ns, EV_FAULT, 0, 0, 0, 0, NULL);
	ev_push(w, NS_S, EV_CHECK, 0, 0, 0, 0, NULL);
	ev_push(w, w->p.run_ns, EV_HEAL, 0, 0, 0, 1, NULL);
	for (uint32_t gi = 0; g_opt.seal && gi < w->p.n_groups; gi++)
		ev_push(w, w->p.seal_at_ns[gi], EV_SEAL, 0, (uint8_t)gi, 0, 0, NULL);
}

static void world_free(struct world *w)
{
	while (w->q.len > 0) {
		struct sim_event e = sim_queue_pop(&w->q);
		if (e.type == EV_DELIVER)
			free(e.p);
		if (e.type == EV_SYNC) {
			struct sync_job *job = e.p;
			for (uint32_t i = 0; i < job->n_msgs; i++)
				free(job->msgs[i]);
			free(job->msgs);
			free(job);
		}
	}
	free(w->q.v);
	for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
		struct group *g = &w->g[gi];
		for (uint32_t n = 1; n <= w->p.n_nodes; n++) {
			r_destroy(&g->r[n]);
			sim_disk_free(&g->r[n].disk);
		}
		free(g->com);
		free(g->leader_of);
		free(g->lm);
		free(g->acks);
		free(g->hist);
	}
}

static bool run_seed(struct world *w, uint64_t seed)
{
	g_opt.current_seed = seed;
	world_init(w, seed);
	uint64_t end = w->p.run_ns + w->p.heal_ns;
	while (w->q.len > 0 && !w->fail[0]) {
		struct sim_event e = sim_queue_pop(&w->q);
		if (e.t >= end) {
			ev_push(w, e.t, e.type, e.node, e.group, e.client, e.a, e.p);
			break;
		}
		w->now = e.t;
		w->steps++;
		uint64_t d[3] = {e.t, e.type, e.node};
		w->digest = sim_hash(d, sizeof(d), w->digest);
		switch (e.type) {
		case EV_DELIVER:
			on_deliver(w, &e);
			break;
		case EV_TICK:
			on_tick(w, &e);
			break;
		case EV_SYNC:
			on_sync(w, &e);
			break;
		case EV_CLIENT:
			client_event(w, e.group, e.client, e.a);
			break;
		case EV_FAULT:
			fault_event(w);
			break;
		case EV_RESTART:
			if (!w->healed)
				node_restart(w, e.node);
			break;
		case EV_HEAL:
			heal(w, e.a == 1);
			break;
		case EV_ISOLATE:
			if (!w->healed) {
				trace(w, "lease attack: n%u cut off", e.node);
				for (uint32_t b = 1; b <= w->p.n_nodes; b++)
					if (b != e.node)
						w->blocked[e.node][b] = w->blocked[b][e.node] = true;
				ev_push(w, w->now + sim_range(&w->rng, 2 * w->p.et_ns, 3 * NS_S),
					EV_HEAL, 0, 0, 0, 0, NULL);
			}
			break;
		case EV_CHANGE:
			if (!w->healed)
				admin_change(w, e.group, false);
			break;
		case EV_SEAL:
			seal_event(w, e.group);
			break;
		case EV_WAL_DEAD:
			if (!w->healed && w->nodes[e.node].inc == e.a)
				node_crash(w, e.node, 50 * NS_MS);
			break;
		case EV_CHECK:
			for (uint32_t gi = 0; gi < w->p.n_groups; gi++) {
				check_log_pairs(w, &w->g[gi]);
				check_conf_quorums(w, &w->g[gi]);
			}
			ev_push(w, w->now + NS_S, EV_CHECK, 0, 0, 0, 0, NULL);
			break;
		default:
			SL_ASSERT(0);
		}
	}
	if (!w->fail[0]) {
		w->now = end;
		check_final(w);
	}
	if (w->fail[0] && g_opt.verbose)
		dump_replicas(w);
	return w->fail[0] == 0;
}

/* ---- command line ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: sluice-sim [--seed N | --seeds COUNT [--first N]] [--seed-file FILE]\n"
		"                  [--driver] [--disk-loss] [--seal] [--lease-jumps] [--keep-going] [-v]\n"
		"                  [--version]\n"
		"                  [--protocol raft|multileader] [--reconfig [--all-steps]]\n"
		"  --seed N        run one seed (replays a failure exactly)\n"
		"  --seeds COUNT   run COUNT seeds from --first (default 1); SLUICE_SIM_SEEDS in\n"
		"                  the environment overrides COUNT\n"
		"  --seed-file F   also run the seeds listed in F (regressions; # comments)\n"
		"  --lease-jumps   allow clock jumps while lease reads are on (outside the\n"
		"                  documented bound: expected to fail)\n"
		"  --driver        run each replica through the region driver the node links\n"
		"                  (consensus/driver.c) instead of driving raft directly\n"
		"  --disk-loss     a crash may also lose the node's disk (one node at a time):\n"
		"                  it restarts empty in raft's rejoin mode; snapshots span\n"
		"                  several messages (chunked transfer)\n"
		"  --seal          seal every group at a seeded time (through the driver in\n"
		"                  driver mode), retrying until a SEAL commits; writes go on\n"
		"                  and must be refused; checker \"seal\"\n"
		"  --protocol P    raft (default) or multileader: one group of three replicas\n"
		"                  through the region driver, with its own checkers (sim_ml.c)\n"
		"  --reconfig      regions as virtual logs (chains of raft segments through the\n"
		"                  region driver): seal, switch, membership change, split and\n"
		"                  merge at seeded times, a crash at every step (sim_vlog.c);\n"
		"                  --all-steps fails unless each step saw its crash\n"
		"  --keep-going    run every seed even after a failure; exit 1 if any failed\n"
		"  -v              trace events of the run\n"
		"  --version       print the version\n");
}

struct totals {
	uint64_t seeds, failed, steps, sim_ns;
	uint64_t faults[F_COUNT], checks[C_COUNT], seals[S_COUNT];
};

static int run_one(struct totals *t, uint64_t seed)
{
	static struct world w; /* large: keep it off the stack */
	bool ok = run_seed(&w, seed);
	t->seeds++;
	t->failed += !ok;
	t->steps += w.steps;
	t->sim_ns += w.now;
	for (int i = 0; i < F_COUNT; i++)
		t->faults[i] += w.faults[i];
	for (int i = 0; i < C_COUNT; i++)
		t->checks[i] += w.checks[i];
	for (int i = 0; i < S_COUNT; i++)
		t->seals[i] += w.seals[i];
	if (g_opt.verbose)
		fprintf(stderr, "seed %" PRIu64 ": %" PRIu64 " steps, digest %016" PRIx64 "\n",
			seed, w.steps, w.digest);
	if (!ok) {
		fprintf(stderr, "FAIL seed=%" PRIu64 ": %s\n", seed, w.fail);
		replay_hint(stderr, seed);
	}
	world_free(&w);
	return ok ? 0 : 1;
}

static int run_listed(void *t, uint64_t seed) { return run_one(t, seed); }

int main(int argc, char **argv)
{
	g_opt.argv0 = argv[0];
	for (int i = 1; i < argc; i++) /* the virtual log has its own world (sim_vlog.c) */
		if (strcmp(argv[i], "--reconfig") == 0)
			return sim_vlog_main(argc, argv);
	struct sim_seed_args sa = {.first = 1, .count = 0};
	const char *seed_file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (sim_seed_arg(argc, argv, &i, &sa)) {
			continue;
		} else if (strcmp(a, "--seed-file") == 0 && i + 1 < argc) {
			seed_file = argv[++i];
		} else if (strcmp(a, "--lease-jumps") == 0) {
			g_opt.lease_jumps = true;
		} else if (strcmp(a, "--driver") == 0) {
			g_opt.driver = true;
		} else if (strcmp(a, "--disk-loss") == 0) {
			g_opt.disk_loss = true;
		} else if (strcmp(a, "--seal") == 0) {
			g_opt.seal = true;
		} else if (strcmp(a, "--protocol") == 0 && i + 1 < argc) {
			/* multileader has its own world and checkers (sim_ml.c) */
			if (strcmp(argv[i + 1], "multileader") == 0)
				return sim_ml_main(argc, argv);
			if (strcmp(argv[++i], "raft") != 0) {
				usage();
				return 2;
			}
		} else if (strcmp(a, "--keep-going") == 0) {
			g_opt.keep_going = true;
		} else if (strcmp(a, "-v") == 0) {
			g_opt.verbose = true;
		} else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("sluice-sim %s\n", SLUICE_VERSION);
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	sim_seed_count_env(&sa.count);
	if (!sa.have_single && sa.count == 0 && seed_file == NULL)
		sa.count = 20;
	signal(SIGABRT, on_abort);
	struct totals t;
	memset(&t, 0, sizeof(t));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = 0;
	if (seed_file != NULL)
		rc = sim_seed_file(seed_file, g_opt.keep_going, run_listed, &t);
	if (sa.have_single && rc == 0)
		rc = run_one(&t, sa.single);
	for (uint64_t s = sa.first;
	     !sa.have_single && (rc == 0 || g_opt.keep_going) && s < sa.first + sa.count; s++)
		rc |= run_one(&t, s);
	double wall = sim_wall_since(&t0);
	printf("sluice-sim (%s mode): %s, %" PRIu64 " seeds (%" PRIu64 " failed), %" PRIu64
	       " steps in %.1f s wall (%.0f steps/s), %.0f s simulated\n",
	       g_opt.driver ? "driver" : "pure", rc == 0 ? "PASS" : "FAIL", t.seeds, t.failed, t.steps, wall,
	       wall > 0 ? (double)t.steps / wall : 0.0, (double)t.sim_ns / 1e9);
	sim_print_counts("faults injected", fault_names, t.faults, F_COUNT, 20);
	sim_print_counts("checkers verified", check_names, t.checks, C_COUNT, 46);
	if (g_opt.seal)
		sim_print_counts("seal", seal_names, t.seals, S_COUNT, 46);
	return rc;
}

/* sim_vlog.c - sluice-sim's reconfiguration mode (--reconfig): the virtual log of a few
 * regions, each a chain of segments (docs/cluster.md, "Switching a region's protocol",
 * "Moving replicas", "Splitting a region"). Every segment is a group of three replicas
 * run through the region driver the node links, under raft or multileader, with its own
 * members, epoch, log base (epoch << 40, as the node) and hash range [lo, hi] of the
 * 64-bit series-hash space. A coordinator (ctld's part) reconfigures at seeded times: it
 * seals the active segment(s) and, once every replica reports its segment sealed,
 * commits a new map version whose new segment(s) continue the region:
 *   switch      the same region and replicas on a new segment whose protocol is drawn:
 *               raft -> raft, raft -> multileader, multileader -> raft or multileader;
 *   membership  one replica replaced by a node outside the segment (raft: in two
 *               phases, below; multileader only with --ml-moves, below);
 *   split       two regions at a seeded hash, often exactly a stored write's: the parent
 *               keeps [lo, at - 1], a new region takes [at, hi] (ctld's rule);
 *   merge       two adjacent regions on the same replicas become one.
 * Splits and merges are of raft regions only, and a multileader region is not moved
 * (ctld refuses both): one picked for them is switched instead.
 * Each data node ("agent") applies the map as sluiced does (node_switch.c): a replica of
 * the sealed segment writes its applied state at the seal (per replica: the multiset of
 * write ids with their hashes) as the new segment's base image, cut by sl_range_split
 * (range.h, the node's own cut) at a split, the child's half first and the parent's last
 * (the commit point), the union of both at a merge; then it opens the new segment over
 * it. A multileader segment opens over that image with a vector naming no position of
 * any origin (segment_reset); its replicas seal their own streams (any replica is asked,
 * its peers follow), report sealed once every stream is applied up to its end, and
 * their state then is what the next base image is made of (a write id is one point:
 * last-writer-wins between copies of it changes nothing, so the multiset stays exact).
 * Clients write points (unique write id, series hash) routed by their copy of the map to
 * the segment whose range holds the hash (raft: a member, redirected to the leader;
 * multileader: any member takes it) and retry, with the same id, on every refusal that
 * says the write was never taken (sealed, not leader, busy, no replica here, dropped); a
 * write whose outcome is unknown (timeout, crash) is given up, never sent twice.
 * Faults: message drop, duplicate, reorder, delay, symmetric and one-way partitions,
 * crashes (random node, a segment's leader, the coordinator) with torn and lost unsynced
 * WAL writes (one fsync in flight per WAL: group commit), clock jumps, slow disks; and a
 * crash at every step of a reconfiguration (enum step): each reconfiguration draws one
 * step from the seed and crashes the node (or the coordinator) that reaches it, right
 * there; everything resumes from durable state (images, the WAL, multileader merges,
 * the "sealed", "joined" and "learn" records, the coordinator's map and record).
 * Checkers: no acknowledged write lost (at the end in its region, and in every member's
 * base image of the segment after the one that acked it), none applied twice (states
 * are multisets), the ranges of every map version tile the hash space exactly once,
 * every stored write lies in its segment's range, images of one segment agree (a
 * learner's too: the one it installs and the one it writes at its promotion), the seal
 * rules (raft: one SEAL index, nothing applied past it, raft's past_seal guard, catches
 * mutation seal_leaky; multileader: one end per origin stream, no write applied or
 * acked past it, no write taken by a replica whose own stream is sealed, the protocol's
 * past_seal guard, catches ml_seal_late), and at a multileader seal, before any base
 * image is made of it, every replica's state the same and holding every write the
 * segment acknowledged.
 * A raft replica move (docs/cluster.md, "Moving replicas", steps 1-6) first makes the
 * joiner T a learner of the running segment S, nothing sealed: the coordinator records
 * the move naming T (durable), T's agent opens an empty raft replica of S with itself as
 * the group's learner (a durable "learn" record), S's replicas are told of it apart from
 * their log (sl_drv_set_learners, as the node's learner_sync) and send it the base image
 * and the log; it counts for no commit. The coordinator takes as target the highest
 * applied index S's replicas report when it first looks (volatile: taken again after its
 * crash); once T applied that far it records learner_ready and seals S as for any
 * switch, the seal also waiting for T's own "sealed" record unless T is down. At the
 * switch T writes the new segment's image from its own state at the SEAL, as a replica
 * that stays does: it is a voter of the new segment. T down before learner_ready ends
 * the move failed (the learner is dropped, S's replicas told none, the region runs on
 * unchanged); a restart drops T's learner copy (the node's "learn" epochs line), and T
 * learns again while the coordinator still names it; a T without its copy at the switch
 * (a restart, down at the seal) joins the new segment empty, caught up by snapshot.
 * A T that opens a copy again holds less than the leader's match for it: raft lowers a
 * learner's match then (before that, 7 of the 1000 CI seeds stuck: docs/simulator.md).
 * --ml-moves also moves replicas of multileader regions, the joiner opened empty in
 * multileader's rejoin mode (what node_switch.c's region_join did for a rejoining node):
 * holding no image, it asks its peers for one and merges the base image a peer sends
 * (docs/multileader.md, "Joining a segment") before it counts as caught up; on in CI
 * (sim-reconfig); no learner phase there (ctld refuses such moves).
 * Not modelled: standalone segments, nodes losing their disk, fsync errors,
 * multileader retention and snapshot catch-up between live replicas (--protocol
 * multileader covers them), ack levels beyond the per-seed default, reads, ctld's own
 * replication (the coordinator is one process with a durable record), the node's
 * session table and open-proposal rerouting (a client retry stands for them), leader
 * balance. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus.h"
#include "driver.h"
#include "multileader.h"
#include "raft.h"
#include "range.h"
#include "sim.h"
#include "sim_ml.h"
#include "sim_vlog.h"
#include "sl_assert.h"
#include "sl_le.h"

#define VN_MAX 5u     /* nodes 1..n_nodes */
#define VM 3u	      /* replicas of a segment */
#define MAX_REG 8u    /* regions in the map at once */
#define MAX_SEG 40u   /* segments of a run (index 0 unused) */
#define MAX_CL 4u     /* clients */
#define MAX_RECONF 7u /* reconfigurations asked per run */
#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define EPOCH_SHIFT 40 /* segment e of a region holds the indexes above e << 40 (the node's) */
#define WRITE_BYTES 16u

enum vev { V_DELIVER, V_TICK, V_SYNC, V_CLIENT, V_FAULT, V_RESTART, V_HEAL, V_COORD, V_COORD_UP, V_AGENT };

enum kind { K_SWITCH, K_MEMBER, K_SPLIT, K_MERGE, K_COUNT };

/* The switches done, by the protocols on both sides (index: from_ml * 2 + to_ml), and
 * multileader replica moves (--ml-moves). */
enum swk { SW_RR, SW_RM, SW_MR, SW_MM, SW_MOVE_ML, SW_COUNT };
static const char *const sw_names[SW_COUNT] = {
    "raft -> raft", "raft -> multileader", "multileader -> raft",
    "multileader -> multileader", "multileader replica moved"};
static const char *const kind_names[K_COUNT] = {"switch (new segment, same replicas)",
						"membership (one replica replaced)", "split",
						"merge"};

/* The steps of a reconfiguration, in order; the seed picks one per reconfiguration and
 * whoever reaches it first crashes right there (a node, or the coordinator). */
enum step {
	ST_ASKED,	      /* the coordinator recorded it (durable): coordinator */
	ST_LEARNER_OPENED,    /* raft move: the learner opened its empty replica of S: learner */
	ST_LEARNER_CAUGHT_UP, /* raft move: learner_ready recorded, the seal asked: learner */
	ST_SEAL_PROPOSED,     /* a leader took the SEAL into its log: that leader */
	ST_SEAL_APPLIED,      /* the SEAL applied on a first replica: that replica */
	ST_SEALED_REPORTED,   /* a replica recorded its segment sealed (durable): that replica */
	ST_ALL_SEALED,	      /* every replica reported sealed, map not moved yet: coordinator */
	ST_MAP_COMMITTED,     /* the new map version is durable: a member of a new segment */
	ST_IMAGE_FIRST,	      /* a member wrote its first image (split: the child's half) */
	ST_IMAGE_SECOND,      /* split: the parent's half (the commit point) */
	ST_LEARNER_PROMOTED,  /* raft move: the learner wrote its image from its own seal */
	ST_JOINER_OPENED,     /* membership: the joiner opened its empty replica */
	ST_SEG_STARTED,	      /* a member opened the new segment's replica over its image */
	ST_DONE,	      /* every member runs the new segment, not recorded yet: coordinator */
	ST_COUNT,
};
static const char *const step_names[ST_COUNT] = {
    "asked (coordinator)",
    "learner opened empty replica",
    "learner caught up (seal asked)",
    "seal proposed (leader, ml replica)",
    "seal applied on a first replica",
    "sealed reported (replica)",
    "all sealed (coordinator)",
    "map committed (new member)",
    "first image (split: child)",
    "second image (split: parent)",
    "learner promoted (own image)",
    "joiner opened empty replica",
    "new segment started",
    "done (coordinator)",
};

/* The learner phase of raft replica moves. */
enum learn {
	LN_STARTED,
	LN_OPENED,
	LN_CAUGHT_UP,
	LN_FAILED,
	LN_SWITCHED_WITHOUT,
	LN_PROMOTED,
	LN_JOINED_EMPTY,
	LN_RESTART_DROPS,
	LN_COUNT,
};
static const char *const learn_names[LN_COUNT] = {
    "learner phases started (move recorded)", "learner replicas opened (empty)",
    "learners caught up (seal asked)",	      "moves failed before the seal (learner down)",
    "switches without the learner (down)",    "learners promoted (own image at the seal)",
    "learners joined the new segment empty",  "learner copies dropped by a restart",
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
	F_CRASH_COORD,
	F_TORN,
	F_LOST_UNSYNCED,
	F_CLOCK_JUMP,
	F_SLOW_DISK,
	F_COUNT,
};
static const char *const fault_names[F_COUNT] = {
    "msg drop",	       "msg duplicate",	  "msg reordered",    "msg delayed >5ms", "partition sym",
    "partition one-way", "crash-restart", "crash leader", "crash coordinator", "torn last write",
    "lost unsynced",     "clock jump",	  "slow disk",
};

enum check {
	C_APPLIES,
	C_IMAGES,
	C_MAPS,
	C_ACKED,
	C_ONCE,
	C_STORED_RANGE,
	C_CONVERGED,
	C_SEAL_GUARD,
	C_ML_SEALED,
	C_BASE_ACKED,
	C_ML_PROPOSE,
	C_COUNT,
};
static const char *const check_names[C_COUNT] = {
    "applies checked (range, seal, known write)", "images checked (range, once, agreement)",
    "map versions tiling the hash space",	  "acknowledged writes found in their region",
    "writes found at most once",		  "stored writes in their region's range",
    "regions converged after the heal",	  "past-seal guard checks (raft, ml)",
    "ml replicas agreeing at the seal",	  "acked writes found in the next base",
    "ml proposals checked against own SEAL",
};

enum other {
	O_WRITES,
	O_ACKED,
	O_UNKNOWN,
	O_RETRIES,
	O_REFUSED_SEALED,
	O_SEALS,
	O_SNAP_INSTALLS,
	O_ML_WRITES,
	O_ML_MERGES,
	O_COUNT,
};
static const char *const other_names[O_COUNT] = {
    "writes issued",	  "writes acknowledged", "writes given up (outcome unknown)",
    "writes retried after a refusal", "proposals refused: sealed", "seal attempts taken",
    "joiners caught up by snapshot", "writes acked by multileader segments",
    "multileader snapshots merged",
};

struct wr {
	uint64_t wid, hash;
};

/* A replica's state machine: a multiset of writes (a write applied twice shows twice). */
struct wset {
	struct wr *v;
	size_t n, cap;
};

enum { W_PENDING = 0, W_ACKED, W_UNKNOWN };

struct wrec {
	uint64_t hash, index;
	uint32_t seg;
	uint8_t state;
};

/* One node's replica of one segment. Durable: disk (WAL), img, has_img, joined,
 * learner, sealed_at, gone. Volatile: the rest. */
struct vrep {
	struct sl_drv *drv; /* NULL: not running here */
	struct sim_disk disk;
	struct sl_cons_log view; /* the disk's read side, the base image as its snapshot */
	struct wset img;	 /* the base image (has_img) */
	struct wset st;		 /* applied: the image, then every applied write */
	bool has_img, joined, gone;
	/* a raft move's learner copy (the node's "learn" epochs line: a restart drops it);
	 * the learner its driver was last told of (UINT32_MAX: not told since its start);
	 * gen counts its copies dropped, so an fsync or a message of a dropped one is not
	 * taken */
	bool learner;
	uint32_t drv_learner, gen;
	/* multileader: a joiner opened in rejoin mode (until its status says caught up);
	 * the merged snapshot (durable: has_msnap; a joiner's first merge may come at index
	 * 0, its log still empty) with its per-origin vector */
	bool rejoin, has_msnap;
	struct wset msnap;
	uint64_t msnap_index, mvec[VN_MAX + 1];
	uint64_t sealed_at; /* the SEAL's index, once applied and durable here */
	uint64_t applied, pos;
	bool wrote, w_persist;
	bool sync_busy, sync_again; /* an fsync in flight; writes issued since it started */
	uint64_t w_term, w_index;
	uint8_t *snapbuf;
	size_t snapcap;
	uint32_t seg, n;
};

struct vseg {
	bool used;
	bool ml; /* a multileader segment (else raft) */
	/* multileader, omniscient: each origin's SEAL (its origin index) as first applied */
	uint64_t ml_end[VN_MAX + 1];
	uint32_t region, epoch;
	uint64_t base, lo, hi;
	uint32_t members[VM];
	uint32_t learner;	    /* the coordinator's map names it the learner (0: none) */
	uint32_t preds[2], n_preds; /* the sealed segment(s) it continues */
	uint32_t succ[2], n_succ;   /* set when the map moved past it */
	uint32_t commit_with;	    /* a split's child: the parent's new segment */
	uint64_t seal_idx;	    /* omniscient: the SEAL's index once applied somewhere */
	uint64_t seal_pid;	    /* the coordinator's seal attempt (volatile) */
	uint64_t img_digest;
	bool img_known;
	struct vrep r[VN_MAX + 1];
};

struct vmap_ent {
	uint32_t region, seg;
	uint64_t lo, hi;
};

struct vmap {
	uint32_t version, n;
	struct vmap_ent e[MAX_REG]; /* in hash order */
};

/* The coordinator's durable record of the reconfiguration running. */
struct reconf {
	bool active;
	uint8_t kind, stage; /* stage 0: sealing, 1: the map moved, members switch */
	uint32_t src[2], n_src, dst[2], n_dst;
	uint64_t at;	  /* split */
	uint32_t out, in; /* membership */
	bool learning;	  /* raft membership: learner_ready not recorded yet */
	uint64_t target;  /* the learner's target (volatile: the coordinator's memory) */
	bool to_ml;	  /* switch: the new segment runs multileader */
	int crash_step;	  /* -1: none */
	bool crashed;
};

struct vnode {
	bool up;
	uint32_t inc;
	uint64_t clock_off, slow_until, disk_lat, disk_busy;
	int64_t drift_ppm;
};

struct vclient {
	bool busy, has_write, stale;
	uint64_t wid, pid, token;
	uint64_t oidx; /* a multileader write: its index in its origin's stream */
	uint32_t seg, node, hint;
	struct vmap map;
};

struct vjob {
	uint32_t inc, seg, node, gen;
	size_t wal_mark;
	uint64_t pos_mark, term, index;
	bool has_persist;
};

struct vmsg {
	uint32_t seg, from, to, len, gen;
	uint64_t send_seq;
	uint8_t buf[];
};


static struct {
	uint64_t seed;
	struct sim_rng rng;
	uint64_t now, steps;
	struct sim_queue q;
	uint32_t n_nodes, n_cl;
	struct vnode nodes[VN_MAX + 1];
	bool blocked[VN_MAX + 1][VN_MAX + 1];
	uint64_t link_seq[VN_MAX + 1][VN_MAX + 1], link_done[VN_MAX + 1][VN_MAX + 1];
	struct vseg seg[MAX_SEG];
	uint32_t n_seg;
	struct vmap map;
	struct reconf rc;
	bool coord_up, healed;
	uint64_t times[MAX_RECONF];
	uint32_t n_times, next_time;
	struct vclient cl[MAX_CL];
	struct wrec *wr; /* by write id (1..n_wr) */
	size_t n_wr, cap_wr;
	uint64_t pid_seq;
	uint64_t et, hb, tick, lat_min, lat_jit, fault_every, run_ns, heal_ns;
	uint32_t drop_ppm, dup_ppm, max_batch, max_infl;
	struct sl_raft_opts opts;
	struct sl_ml_opts mlo;
	uint64_t sw[SW_COUNT];
	uint32_t crash_now; /* a step's crash, done at the next safe point */
	uint64_t faults[F_COUNT], checks[C_COUNT], other[O_COUNT];
	uint64_t reached[ST_COUNT], crashes[ST_COUNT], started[K_COUNT], done[K_COUNT];
	uint64_t crashes_ml[ST_COUNT]; /* of them, in a reconfiguration of a multileader segment */
	uint64_t learn[LN_COUNT];
	char fail[512];
} V;

static bool g_verbose, g_ml_moves;

static void fail(const char *fmt, ...)
{
	if (V.fail[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(V.fail, sizeof(V.fail), "t=%" PRIu64 "ms: ", V.now / MS);
	vsnprintf(V.fail + n, sizeof(V.fail) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void trace(const char *fmt, ...)
{
	if (!g_verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%10.3fms ", (double)V.now / MS);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- write sets ---- */

static void ws_add(struct wset *s, uint64_t wid, uint64_t hash)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		SL_ASSERT(s->v != NULL);
	}
	s->v[s->n++] = (struct wr){wid, hash};
}

static void ws_free(struct wset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void ws_copy(struct wset *d, const struct wset *s)
{
	d->n = 0;
	for (size_t i = 0; i < s->n; i++)
		ws_add(d, s->v[i].wid, s->v[i].hash);
}

/* Order-blind digest of a multiset: two sets agree when digest and size do. */
static uint64_t ws_digest(const struct wset *s)
{
	uint64_t d = s->n;
	for (size_t i = 0; i < s->n; i++)
		d += sim_hash(&s->v[i], sizeof(s->v[i]), 5);
	return d;
}

static int wr_cmp(const void *a, const void *b)
{
	const struct wr *x = a, *y = b;
	return x->wid != y->wid ? (x->wid < y->wid ? -1 : 1) : 0;
}

/* A write id held twice, or 0. Sorts the set. */
static uint64_t ws_twice(struct wset *s)
{
	qsort(s->v, s->n, sizeof(*s->v), wr_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i].wid == s->v[i - 1].wid)
			return s->v[i].wid;
	return 0;
}

/* ---- events ---- */

/* An event: a node (or client) in `node`, a token in `a`. */
static void push(uint64_t t, uint32_t type, uint32_t node, uint64_t a, void *p)
{
	sim_queue_push(&V.q, (struct sim_event){t, 0, type, node, 0, 0, a, p});
}

static uint64_t rnd(uint64_t lo, uint64_t hi) { return sim_range(&V.rng, lo, hi); }

/* ---- network, clocks, disks ---- */

static uint64_t local_ns(uint32_t n)
{
	const struct vnode *nd = &V.nodes[n];
	return sim_local_ns(V.now, nd->clock_off, nd->drift_ppm);
}

static void net_send(uint32_t si, const struct sl_cons_msg *m)
{
	uint32_t from = m->from, to = m->to;
	if (to == 0 || to > V.n_nodes)
		return;
	uint64_t sseq = ++V.link_seq[from][to];
	if (V.blocked[from][to])
		return;
	if (sim_chance(&V.rng, V.drop_ppm)) {
		V.faults[F_DROP]++;
		return;
	}
	int copies = sim_chance(&V.rng, V.dup_ppm) ? 2 : 1;
	V.faults[F_DUP] += copies == 2;
	for (int i = 0; i < copies; i++) {
		struct vmsg *b = malloc(sizeof(*b) + m->len);
		SL_ASSERT(b != NULL);
		*b = (struct vmsg){si, from, to, m->len, V.seg[si].r[from].gen, sseq};
		memcpy(b->buf, m->buf, m->len);
		uint64_t d = V.lat_min + sim_below(&V.rng, V.lat_jit + 1);
		if (sim_chance(&V.rng, 20000)) /* now and then a message from the past */
			d += rnd(5 * MS, 2 * V.et);
		V.faults[F_DELAY] += d > 5 * MS;
		push(V.now + d, V_DELIVER, 0, 0, b);
	}
}

static uint64_t disk_latency(uint32_t n)
{
	struct vnode *nd = &V.nodes[n];
	if (V.now < nd->slow_until)
		return rnd(5 * MS, 60 * MS);
	return nd->disk_lat + sim_below(&V.rng, nd->disk_lat);
}

static bool is_member(const struct vseg *s, uint32_t n)
{
	for (uint32_t i = 0; i < VM; i++)
		if (s->members[i] == n)
			return true;
	return false;
}

/* The segment's membership; the learner the map names with it (what the node's
 * snapshots say: a learner's installed image keeps it one). */
static void seg_conf(const struct vseg *s, struct sl_cons_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->n_voters = VM;
	memcpy(c->voters, s->members, sizeof(s->members));
	if (s->learner != 0 && !s->ml) {
		c->n_learners = 1;
		c->learners[0] = s->learner;
	}
}

/* ---- the replica's log and host callbacks (the node's binding, played here) ---- */

static uint64_t vl_first(void *c)
{
	struct sim_disk *d = &((struct vrep *)c)->disk;
	return d->log.first_index(d->log.ctx);
}

static uint64_t vl_last(void *c)
{
	struct sim_disk *d = &((struct vrep *)c)->disk;
	return d->log.last_index(d->log.ctx);
}

static int vl_term(void *c, uint64_t i, uint64_t *t)
{
	struct sim_disk *d = &((struct vrep *)c)->disk;
	return d->log.term(d->log.ctx, i, t);
}

static int vl_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	struct sim_disk *d = &((struct vrep *)c)->disk;
	return d->log.entry(d->log.ctx, i, o);
}

/* What a leader sends a replica behind the segment's base (a joiner): the base image,
 * serialized (wid, hash) pairs. The log is never compacted past it. */
/* A multileader segment's caller snapshot (multileader.h: the per-origin vector, then the
 * state): the latest merged one, else the base image, which stands at no position of any
 * origin (node_switch.c's segment_reset); a joiner has none until it merged one. */
static int vl_snap(void *c, struct sl_cons_snapshot *o)
{
	struct vrep *rp = c;
	struct vseg *s = &V.seg[rp->seg];
	const struct wset *w = rp->has_msnap ? &rp->msnap : &rp->img;
	if (!s->ml && (!rp->has_img || s->base == 0))
		return -ENOENT;
	if (s->ml && !rp->has_msnap && !rp->has_img)
		return -ENOENT;
	uint32_t hdr = 0, ids[VM];
	uint64_t idx[VM];
	for (uint32_t i = 0; i < VM && s->ml; i++) {
		ids[i] = s->members[i];
		idx[i] = rp->has_msnap ? rp->mvec[ids[i]] : 0;
	}
	size_t len = w->n * WRITE_BYTES + SL_ML_SNAP_VEC_BYTES(VM);
	if (len + 1 > rp->snapcap) {
		rp->snapcap = len + 1;
		rp->snapbuf = realloc(rp->snapbuf, rp->snapcap);
		SL_ASSERT(rp->snapbuf != NULL);
	}
	if (s->ml)
		hdr = sl_ml_snap_vec_put(rp->snapbuf, (uint32_t)rp->snapcap, ids, idx, VM);
	for (size_t i = 0; i < w->n; i++) {
		sl_put_u64(rp->snapbuf + hdr + WRITE_BYTES * i, w->v[i].wid);
		sl_put_u64(rp->snapbuf + hdr + WRITE_BYTES * i + 8, w->v[i].hash);
	}
	o->index = rp->has_msnap ? rp->msnap_index : s->base;
	o->term = 1;
	seg_conf(s, &o->conf);
	o->len = (uint32_t)(hdr + w->n * WRITE_BYTES);
	o->data = rp->snapbuf;
	return 0;
}

/* Image checker: every write of a segment's image lies in its range, none is there
 * twice, and every member's image of one segment is the same. */
static void check_image(uint32_t di, uint32_t n, struct wset *img, const char *how)
{
	struct vseg *d = &V.seg[di];
	V.checks[C_IMAGES]++;
	for (size_t i = 0; i < img->n; i++)
		if (img->v[i].hash < d->lo || img->v[i].hash > d->hi) {
			fail("range: n%u's image (%s) of segment %u (region %u, [0x%016" PRIx64
			     ", 0x%016" PRIx64 "]) holds write %" PRIu64 " of hash 0x%016" PRIx64,
			     n, how, di, d->region, d->lo, d->hi, img->v[i].wid, img->v[i].hash);
			return;
		}
	uint64_t dup = ws_twice(img);
	if (dup != 0) {
		fail("applied twice: n%u's image (%s) of segment %u holds write %" PRIu64 " twice",
		     n, how, di, dup);
		return;
	}
	/* every write a sealed predecessor acknowledged, in this segment's range, is in its
	 * base (img is sorted by write id now) */
	for (size_t w = 1; w <= V.n_wr; w++) {
		const struct wrec *r = &V.wr[w];
		if (r->state != W_ACKED || r->hash < d->lo || r->hash > d->hi ||
		    (r->seg != d->preds[0] && (d->n_preds < 2 || r->seg != d->preds[1])) ||
		    d->n_preds == 0)
			continue;
		V.checks[C_BASE_ACKED]++;
		struct wr key = {w, 0};
		if (bsearch(&key, img->v, img->n, sizeof(img->v[0]), wr_cmp) == NULL) {
			fail("acknowledged write lost: n%u's image (%s) of segment %u lacks write %" PRIu64
			     ", acked by its predecessor segment %u%s at %" PRIu64,
			     n, how, di, (uint64_t)w, r->seg, V.seg[r->seg].ml ? " (multileader)" : "",
			     r->index);
			return;
		}
	}
	uint64_t dg = ws_digest(img);
	if (!d->img_known) {
		d->img_known = true;
		d->img_digest = dg;
	} else if (d->img_digest != dg) {
		fail("image: n%u's image (%s) of segment %u differs from another member's", n, how,
		     di);
	}
}

/* The base image written durably (an image file renamed in): the log goes on from the
 * segment's base (a joiner's earlier votes stay in its WAL). Takes img. */
static void image_put(uint32_t di, uint32_t n, struct wset *img, const char *how)
{
	struct vseg *d = &V.seg[di];
	struct vrep *rp = &d->r[n];
	check_image(di, n, img, how);
	ws_free(&rp->img);
	rp->img = *img;
	memset(img, 0, sizeof(*img));
	rp->has_img = true;
	if (d->base > 0) {
		static const uint8_t none[1];
		struct sl_cons_snapshot m = {d->base, 1, {0}, 0, none};
		seg_conf(d, &m.conf);
		sim_disk_write_snapshot(&rp->disk, &m, true);
		rp->disk.synced = rp->disk.wal_len;
	}
}

/* A multileader snapshot merges (multileader.h): the writes the replica lacks join its
 * state (a write id names one point: LWW between two copies of it is a no-op), per origin
 * the higher position; the merged state is its snapshot at the log's end from now on
 * (durable at once: the node syncs the merge file before it reports the merge). */
static int ml_merge(struct vrep *rp, const struct sl_cons_snapshot *sn)
{
	uint32_t ids[VM], n = 0;
	uint64_t idx[VM];
	int hdr = sl_ml_snap_vec_get(sn->data, sn->len, ids, idx, VM, &n);
	if (hdr < 0 || (sn->len - (uint32_t)hdr) % WRITE_BYTES != 0) {
		fail("snapshot: seg%u n%u got a multileader image that does not decode", rp->seg, rp->n);
		return -EINVAL;
	}
	struct wset have = {0};
	ws_copy(&have, &rp->st);
	qsort(have.v, have.n, sizeof(have.v[0]), wr_cmp);
	for (uint32_t i = (uint32_t)hdr; i < sn->len; i += WRITE_BYTES) {
		struct wr w = {sl_get_u64(sn->data + i), sl_get_u64(sn->data + i + 8)};
		if (bsearch(&w, have.v, have.n, sizeof(have.v[0]), wr_cmp) == NULL)
			ws_add(&rp->st, w.wid, w.hash);
	}
	ws_free(&have);
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] <= VN_MAX && idx[i] > rp->mvec[ids[i]])
			rp->mvec[ids[i]] = idx[i];
	ws_copy(&rp->msnap, &rp->st);
	rp->msnap_index = sn->index;
	rp->has_msnap = true;
	rp->applied = sn->index;
	V.other[O_ML_MERGES]++;
	trace("seg%u n%u merged a snapshot at %" PRIu64 " (%zu writes now)", rp->seg, rp->n,
	      sn->index, rp->st.n);
	return 0;
}

static int dh_install(void *ctx, const struct sl_cons_snapshot *sn)
{
	struct vrep *rp = ctx;
	struct vseg *s = &V.seg[rp->seg];
	if (s->ml)
		return ml_merge(rp, sn);
	if (sn->index != s->base || sn->len % WRITE_BYTES != 0) {
		fail("snapshot: n%u of segment %u got an image at %" PRIu64 " (%u bytes), the base is %" PRIu64,
		     rp->n, rp->seg, sn->index, sn->len, s->base);
		return -EINVAL;
	}
	struct wset img = {0};
	for (uint32_t i = 0; i < sn->len; i += WRITE_BYTES)
		ws_add(&img, sl_get_u64(sn->data + i), sl_get_u64(sn->data + i + 8));
	image_put(rp->seg, rp->n, &img, "installed");
	ws_copy(&rp->st, &rp->img);
	rp->applied = sn->index;
	V.other[O_SNAP_INSTALLS]++;
	trace("seg%u n%u installed the base image (%zu writes)", rp->seg, rp->n, rp->img.n);
	return 0;
}

static int dh_save_hs(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos)
{
	struct vrep *rp = ctx;
	sim_disk_write_hs(&rp->disk, hs);
	rp->wrote = true;
	*pos = ++rp->pos;
	return 0;
}

static int dh_save_entry(void *ctx, const struct sl_cons_entry *e, uint64_t *pos)
{
	struct vrep *rp = ctx;
	sim_disk_write_entries(&rp->disk, e, 1);
	rp->wrote = rp->w_persist = true;
	rp->w_term = e->term;
	rp->w_index = e->index;
	*pos = ++rp->pos;
	return 0;
}

static void dh_send(void *ctx, const struct sl_cons_msg *m)
{
	struct vrep *rp = ctx;
	net_send(rp->seg, m);
}

static void step_reached(int st, uint32_t node);

/* Apply checker: in order, a known write, in the segment's range (a stale route applied
 * would land outside), and nothing past the segment's SEAL. */
static void ml_apply(struct vrep *rp, const struct sl_cons_entry *e);
static uint64_t apply_write(struct vrep *rp, const struct sl_cons_entry *e);

static void dh_apply(void *ctx, const struct sl_cons_entry *e)
{
	struct vrep *rp = ctx;
	struct vseg *s = &V.seg[rp->seg];
	if (s->ml) {
		ml_apply(rp, e);
		return;
	}
	if (e->index != rp->applied + 1) {
		fail("apply order: seg%u n%u applied %" PRIu64 " then %" PRIu64, rp->seg, rp->n,
		     rp->applied, e->index);
		return;
	}
	rp->applied = e->index;
	V.checks[C_APPLIES]++;
	if (e->type == SL_CONS_ENTRY_SEAL) {
		if (s->seal_idx == 0) {
			s->seal_idx = e->index;
			trace("seg%u sealed at %" PRIu64 " (applied first by n%u)", rp->seg, e->index, rp->n);
			step_reached(ST_SEAL_APPLIED, rp->n);
		} else if (s->seal_idx != e->index) {
			fail("seal: seg%u n%u applied a SEAL at %" PRIu64 ", another replica at %" PRIu64,
			     rp->seg, rp->n, e->index, s->seal_idx);
		}
		return;
	}
	if (e->type != SL_CONS_ENTRY_NORMAL)
		return;
	if (s->seal_idx != 0 && e->index > s->seal_idx)
		fail("seal: seg%u n%u applied a write at %" PRIu64 ", past the SEAL at %" PRIu64,
		     rp->seg, rp->n, e->index, s->seal_idx);
	apply_write(rp, e);
}

/* A write of a client, from its payload, checked: a known write, in the segment's range.
 * Returns its id (0: failed). */
static uint64_t apply_write(struct vrep *rp, const struct sl_cons_entry *e)
{
	struct vseg *s = &V.seg[rp->seg];
	uint64_t wid = e->len == WRITE_BYTES ? sl_get_u64(e->data) : 0;
	uint64_t hash = e->len == WRITE_BYTES ? sl_get_u64(e->data + 8) : 0;
	if (wid == 0 || wid > V.n_wr || V.wr[wid].hash != hash) {
		fail("apply: seg%u n%u applied an entry that is no client's write", rp->seg, rp->n);
		return 0;
	}
	if (hash < s->lo || hash > s->hi)
		fail("range: seg%u (region %u, [0x%016" PRIx64 ", 0x%016" PRIx64 "]) n%u applied "
		     "write %" PRIu64 " of hash 0x%016" PRIx64,
		     rp->seg, s->region, s->lo, s->hi, rp->n, wid, hash);
	ws_add(&rp->st, wid, hash);
	return wid;
}

/* Multileader apply checker: local indexes in order, each origin's stream with one end
 * (the origin index of its SEAL, the same on every replica) and no write past it. */
static void ml_apply(struct vrep *rp, const struct sl_cons_entry *e)
{
	struct vseg *s = &V.seg[rp->seg];
	if (e->index <= rp->applied) {
		fail("apply order: seg%u n%u applied %" PRIu64 " then %" PRIu64, rp->seg, rp->n,
		     rp->applied, e->index);
		return;
	}
	rp->applied = e->index;
	V.checks[C_APPLIES]++;
	if (e->origin == 0 || e->origin > VN_MAX || !is_member(s, e->origin)) {
		fail("apply: seg%u n%u applied an entry of origin n%u, not a member", rp->seg, rp->n,
		     e->origin);
		return;
	}
	uint64_t *end = &s->ml_end[e->origin];
	if (e->type == SL_CONS_ENTRY_SEAL) {
		if (*end == 0) {
			*end = e->origin_index;
			trace("seg%u n%u's stream ends at %" PRIu64 " (applied first by n%u)", rp->seg,
			      e->origin, e->origin_index, rp->n);
		} else if (*end != e->origin_index) {
			fail("seal: seg%u n%u applied n%u's SEAL at origin index %" PRIu64
			     ", another replica at %" PRIu64,
			     rp->seg, rp->n, e->origin, e->origin_index, *end);
		}
		if (s->seal_idx == 0) {
			s->seal_idx = e->index; /* sealed somewhere: a local index, only a marker */
			step_reached(ST_SEAL_APPLIED, rp->n);
		}
		return;
	}
	if (e->type != SL_CONS_ENTRY_NORMAL)
		return;
	if (*end != 0 && e->origin_index > *end)
		fail("seal: seg%u n%u applied write n%u/%" PRIu64 ", past that stream's SEAL at %" PRIu64,
		     rp->seg, rp->n, e->origin, e->origin_index, *end);
	apply_write(rp, e);
}

static void client_kick(uint32_t ci, uint64_t delay);

static void dh_ack(void *ctx, const struct sl_cons_ack *a)
{
	struct vrep *rp = ctx;
	struct vseg *s = &V.seg[rp->seg];
	if (s->seal_pid != 0 && a->proposal_id == s->seal_pid) {
		s->seal_pid = 0; /* the coordinator asks again unless the segment is sealed */
		return;
	}
	for (uint32_t ci = 0; ci < V.n_cl; ci++) {
		struct vclient *c = &V.cl[ci];
		if (!c->busy || c->pid != a->proposal_id)
			continue;
		if (a->status == SL_CONS_ACK_OK) {
			struct wrec *w = &V.wr[c->wid];
			if (s->ml && s->ml_end[rp->n] != 0 && c->oidx >= s->ml_end[rp->n])
				fail("seal: seg%u n%u acked write %" PRIu64 " at origin index %" PRIu64
				     ", not below its stream's SEAL at %" PRIu64,
				     rp->seg, rp->n, c->wid, c->oidx, s->ml_end[rp->n]);
			V.other[O_ML_WRITES] += s->ml;
			if (!s->ml && s->seal_idx != 0 && a->index >= s->seal_idx)
				fail("seal: seg%u acked write %" PRIu64 " at %" PRIu64
				     ", not below its SEAL at %" PRIu64,
				     rp->seg, c->wid, a->index, s->seal_idx);
			w->state = W_ACKED;
			w->seg = rp->seg;
			w->index = a->index;
			V.other[O_ACKED]++;
			c->has_write = false;
		} else {
			/* sealed, dropped (cut from the log) or not leader: never applied, so the
			 * same write goes again, by a fresh map (the node holds or redirects it) */
			c->stale = true;
			V.other[O_RETRIES]++;
			V.other[O_REFUSED_SEALED] += a->status == SL_CONS_ACK_SEALED;
		}
		client_kick(ci, rnd(1 * MS, 20 * MS));
		return;
	}
}

static const struct sl_drv_host vhost = {
	.install_snapshot = dh_install,
	.save_hard_state = dh_save_hs,
	.save_entry = dh_save_entry,
	.send = dh_send,
	.apply = dh_apply,
	.ack = dh_ack,
};

/* ---- replicas ---- */

static void node_crash(uint32_t n, uint64_t down_min);

/* Group commit: one fsync in flight per replica's WAL covers every write issued before
 * it started; writes issued meanwhile wait for the next one (the node's WAL batches its
 * syncs the same way). One fsync per ready would queue seconds of them on a slow disk. */
static void sync_issue(uint32_t si, uint32_t n)
{
	struct vnode *nd = &V.nodes[n];
	struct vrep *rp = &V.seg[si].r[n];
	if (rp->sync_busy) {
		rp->sync_again = true;
		return;
	}
	rp->sync_busy = true;
	uint64_t done = (nd->disk_busy > V.now ? nd->disk_busy : V.now) + disk_latency(n);
	nd->disk_busy = done; /* one fsync after the other */
	struct vjob *j = malloc(sizeof(*j));
	SL_ASSERT(j != NULL);
	*j = (struct vjob){nd->inc, si,		n,	     rp->gen,	   rp->disk.wal_len,
			   rp->pos, rp->w_term, rp->w_index, rp->w_persist};
	rp->w_persist = false; /* this fsync reports it */
	push(done, V_SYNC, 0, 0, j);
}

/* The step's crash, when one is due on node n now. */
static bool crash_due(uint32_t n)
{
	if (V.crash_now == 0 || V.crash_now != n)
		return false;
	V.crash_now = 0;
	node_crash(n, 50 * MS);
	return true;
}

/* Readies one at a time (a step's crash lands right after the ready that reached it);
 * then the seal guard, and the durable "sealed" record once the SEAL is applied and the
 * log durable up to it (the node's epochs line, written before it reports sealed). */
static void process_rep(uint32_t si, uint32_t n)
{
	struct vrep *rp = &V.seg[si].r[n];
	for (int guard = 0; rp->drv != NULL && sl_drv_has_ready(rp->drv); guard++) {
		SL_ASSERT(guard < 1000000);
		rp->wrote = false;
		sl_drv_process(rp->drv, 1);
		if (rp->wrote)
			sync_issue(si, n);
		if (crash_due(n))
			return;
	}
	if (rp->drv == NULL)
		return;
	struct sl_cons_status st;
	sl_drv_status(rp->drv, &st);
	V.checks[C_SEAL_GUARD]++;
	uint64_t past;
	if (V.seg[si].ml) {
		struct sl_ml_stats ms;
		sl_ml_stats(sl_drv_instance(rp->drv), &ms);
		past = ms.past_seal;
		if (rp->rejoin && !st.rejoining) {
			rp->rejoin = false; /* caught up: a restart opens it normally */
			trace("seg%u n%u rejoined", si, n);
		}
	} else {
		struct sl_raft_stats rs;
		sl_raft_stats(sl_drv_instance(rp->drv), &rs);
		past = rs.past_seal;
	}
	if (past > 0)
		fail("seal: seg%u n%u found %" PRIu64 " committed write(s) past %s", si, n, past,
		     V.seg[si].ml ? "their origin's SEAL (multileader's apply guard turned them "
				    "into no-ops): a replica took writes after its SEAL"
				  : "its SEAL (raft's apply guard turned them into no-ops): a leader "
				    "took writes after sealing");
	if (rp->sealed_at == 0 && st.sealed_index != 0 && st.durable_index >= st.sealed_index &&
	    rp->applied >= st.sealed_index) {
		rp->sealed_at = st.sealed_index;
		trace("seg%u n%u reports sealed at %" PRIu64, si, n, rp->sealed_at);
		step_reached(ST_SEALED_REPORTED, n);
		crash_due(n);
	}
}

static void rep_start(uint32_t si, uint32_t n)
{
	struct vseg *s = &V.seg[si];
	struct vrep *rp = &s->r[n];
	SL_ASSERT(rp->drv == NULL && !rp->gone);
	rp->seg = si;
	rp->n = n;
	rp->view = (struct sl_cons_log){rp, vl_first, vl_last, vl_term, vl_entry, vl_snap};
	struct sl_drv_config dc;
	memset(&dc, 0, sizeof(dc));
	dc.protocol = s->ml ? "multileader" : "raft";
	struct sl_cons_config *cfg = &dc.cons;
	cfg->rejoin = rp->rejoin;
	cfg->group_id = si;
	cfg->self = n;
	cfg->n_voters = VM;
	memcpy(cfg->voters, s->members, sizeof(s->members));
	/* the learner the map names (a learner's own copy: itself), kept after the map moved
	 * on: it must still get the SEAL */
	if (s->learner != 0 && !s->ml) {
		cfg->n_learners = 1;
		cfg->learners[0] = s->learner;
	}
	rp->drv_learner = UINT32_MAX;
	uint64_t salt[3] = {si, n, V.nodes[n].inc};
	cfg->seed = sim_hash(salt, sizeof(salt), V.seed);
	cfg->election_timeout_ns = V.et;
	cfg->heartbeat_interval_ns = V.hb;
	cfg->max_batch_entries = V.max_batch;
	cfg->max_inflight_bytes = V.max_infl;
	cfg->initial = rp->disk.hs;
	/* the image is committed; so is a sealed segment up to its SEAL, which the others
	 * may have left already (the node takes its epochs line's word for it) */
	if (cfg->initial.commit < rp->disk.snap_index)
		cfg->initial.commit = rp->disk.snap_index;
	if (cfg->initial.commit < rp->sealed_at)
		cfg->initial.commit = rp->sealed_at;
	cfg->log = &rp->view;
	cfg->proto_opts = s->ml ? (const void *)&V.mlo : (const void *)&V.opts;
	dc.max_entry_bytes = s->ml ? V.mlo.max_entry_bytes : SIM_MAX_PAYLOAD;
	dc.max_inflight = V.opts.max_pending_proposals;
	/* the state comes back from the image, or a multileader merge (its log is kept: the
	 * driver skips what the merge holds), and the log is applied on top */
	uint64_t from = rp->has_msnap ? rp->msnap_index : rp->disk.snap_index;
	dc.applied_index = from;
	dc.held_bytes = 512u << 10;
	struct sl_drv_host h = vhost;
	h.ctx = rp;
	ws_copy(&rp->st, rp->has_msnap ? &rp->msnap : &rp->img);
	rp->applied = from;
	rp->pos = 0;
	rp->sync_busy = rp->sync_again = rp->w_persist = false;
	SL_ASSERT(sl_drv_create(&dc, &h, &rp->drv) == 0);
	trace("seg%u n%u started (base %" PRIu64 ", image %zu writes, last %" PRIu64 ")", si, n,
	      s->base, rp->img.n, sim_disk_last(&rp->disk));
}

/* The replica stops and its files go. */
static void rep_wipe(uint32_t si, uint32_t n)
{
	struct vrep *rp = &V.seg[si].r[n];
	if (rp->drv != NULL)
		sl_drv_destroy(rp->drv);
	rp->drv = NULL;
	sim_disk_free(&rp->disk);
	ws_free(&rp->img);
	ws_free(&rp->st);
	ws_free(&rp->msnap);
	rp->msnap_index = 0;
	rp->has_msnap = false;
	free(rp->snapbuf);
	rp->snapbuf = NULL;
	rp->snapcap = 0;
	rp->has_img = false;
}

/* The node is done with this replica: its files go. */
static void rep_drop(uint32_t si, uint32_t n)
{
	rep_wipe(si, n);
	V.seg[si].r[n].learner = false;
	V.seg[si].r[n].gone = true;
	trace("seg%u n%u dropped", si, n);
}

/* A learner's copy goes (a restart, the move ended): nothing counted on it, and the
 * node may learn the segment again later, from an empty replica. */
static void learner_drop(uint32_t si, uint32_t n, const char *why)
{
	struct vrep *rp = &V.seg[si].r[n];
	rep_wipe(si, n);
	sim_disk_init(&rp->disk);
	rp->learner = false;
	rp->sealed_at = rp->applied = 0;
	rp->gen++;
	trace("seg%u n%u: learner copy dropped (%s)", si, n, why);
}

/* Node n's commit point for segment di passed: its image (a split's child: and the
 * parent's, renamed last), or its join record; an initial segment always. */
static bool opened_on(uint32_t di, uint32_t n)
{
	const struct vseg *d = &V.seg[di];
	if (d->n_preds == 0)
		return true;
	if (d->commit_with != 0) /* the parent's image renamed in (or used and gone since) */
		return d->r[n].has_img &&
		       (V.seg[d->commit_with].r[n].has_img || V.seg[d->commit_with].r[n].gone);
	return d->r[n].has_img || d->r[n].joined;
}

/* Node n needs nothing more of sealed segment si: the map moved past it and n opened
 * every successor it is a member of (or is a member of none: it left). */
static bool moved_on(uint32_t si, uint32_t n)
{
	const struct vseg *s = &V.seg[si];
	if (s->n_succ == 0)
		return false;
	for (uint32_t k = 0; k < s->n_succ; k++)
		if (is_member(&V.seg[s->succ[k]], n) && !opened_on(s->succ[k], n))
			return false;
	return true;
}

static void node_crash(uint32_t n, uint64_t down_min)
{
	struct vnode *nd = &V.nodes[n];
	if (!nd->up)
		return;
	nd->up = false;
	nd->inc++;
	nd->disk_busy = V.now;
	if (V.crash_now == n)
		V.crash_now = 0;
	V.faults[F_CRASH]++;
	trace("crash n%u", n);
	for (uint32_t si = 1; si < V.n_seg; si++) {
		struct vrep *rp = &V.seg[si].r[n];
		if (rp->drv == NULL)
			continue;
		sl_drv_destroy(rp->drv);
		rp->drv = NULL;
		ws_free(&rp->st);
		bool lost;
		V.faults[F_TORN] += sim_disk_crash_drawn(&rp->disk, &V.rng, &lost) > 0;
		V.faults[F_LOST_UNSYNCED] += lost;
	}
	for (uint32_t ci = 0; ci < V.n_cl; ci++) {
		struct vclient *c = &V.cl[ci];
		if (c->busy && c->node == n) {
			/* no answer will come: the write may or may not be in; never sent again */
			V.wr[c->wid].state = W_UNKNOWN;
			V.other[O_UNKNOWN]++;
			c->has_write = false;
			client_kick(ci, rnd(5 * MS, 50 * MS));
		}
	}
	if (!V.healed)
		push(V.now + rnd(down_min, 2 * SEC), V_RESTART, n, 0, NULL);
}

/* A restart from durable state only: a split child's image without the parent's (the
 * commit point) goes; a sealed segment the node moved past is dropped; a new segment
 * runs once its commit point passed here (else the agent builds it again); the rest runs
 * from its image and WAL. */
static void node_restart(uint32_t n)
{
	struct vnode *nd = &V.nodes[n];
	if (nd->up)
		return;
	nd->up = true;
	trace("restart n%u", n);
	for (uint32_t si = 1; si < V.n_seg; si++) {
		struct vseg *s = &V.seg[si];
		struct vrep *rp = &s->r[n];
		if (rp->learner && !rp->gone) {
			V.learn[LN_RESTART_DROPS]++;
			learner_drop(si, n, "restart");
			continue;
		}
		if (!is_member(s, n) || rp->gone)
			continue;
		if (s->commit_with != 0 && rp->has_img && !opened_on(si, n)) {
			ws_free(&rp->img);
			rp->has_img = false;
			sim_disk_free(&rp->disk);
			sim_disk_init(&rp->disk);
		}
		if (moved_on(si, n))
			rep_drop(si, n);
		else if (opened_on(si, n))
			rep_start(si, n);
	}
	for (uint32_t si = 1; si < V.n_seg && nd->up; si++)
		process_rep(si, n);
}

static uint32_t find_leader(uint32_t si)
{
	uint32_t best = 0;
	uint64_t best_term = 0;
	for (uint32_t i = 0; i < VM; i++) {
		uint32_t n = V.seg[si].members[i];
		struct vrep *rp = &V.seg[si].r[n];
		if (rp->drv == NULL)
			continue;
		struct sl_cons_status st;
		sl_drv_status(rp->drv, &st);
		if (st.role == SL_CONS_ROLE_LEADER && st.term > best_term) {
			best = n;
			best_term = st.term;
		}
	}
	return best;
}

/* ---- the coordinator (ctld's part): map and reconfiguration record, durable ---- */

static void coord_crash(void)
{
	if (!V.coord_up)
		return;
	V.coord_up = false;
	V.faults[F_CRASH_COORD]++;
	for (uint32_t si = 1; si < V.n_seg; si++)
		V.seg[si].seal_pid = 0; /* volatile: who was asked to seal */
	V.rc.target = 0;
	trace("crash coordinator");
	push(V.now + rnd(20 * MS, 800 * MS), V_COORD_UP, 0, 0, NULL);
}

static void step_reached(int st, uint32_t node)
{
	V.reached[st]++;
	struct reconf *c = &V.rc;
	if (!c->active || c->crashed || c->crash_step != st || V.healed)
		return;
	c->crashed = true;
	V.crashes[st]++;
	V.crashes_ml[st] += V.seg[c->src[0]].ml;
	trace("step %s: crash %s%u", step_names[st], node ? "n" : "coordinator", node);
	if (node == 0)
		coord_crash();
	else
		V.crash_now = node;
}

/* Coverage checker, at every map version: the regions' ranges tile [0, 2^64 - 1] exactly
 * once (no gap, no overlap), and each region's segment has its region's range. */
static void check_coverage(void)
{
	const struct vmap *m = &V.map;
	V.checks[C_MAPS]++;
	uint64_t next = 0;
	for (uint32_t i = 0; i < m->n; i++) {
		const struct vmap_ent *e = &m->e[i];
		const struct vseg *s = &V.seg[e->seg];
		if (e->lo != next || e->hi < e->lo || (i > 0 && m->e[i - 1].hi == UINT64_MAX)) {
			fail("coverage: map version %u: region %u starts at 0x%016" PRIx64 ", expected 0x%016" PRIx64,
			     m->version, e->region, e->lo, next);
			return;
		}
		if (s->lo != e->lo || s->hi != e->hi || s->region != e->region) {
			fail("coverage: map version %u: region %u's segment %u has another range", m->version,
			     e->region, e->seg);
			return;
		}
		next = e->hi + 1;
	}
	if (m->n == 0 || m->e[m->n - 1].hi != UINT64_MAX)
		fail("coverage: map version %u leaves the top of the hash space to no region", m->version);
}

static uint32_t new_seg(uint32_t region, uint32_t epoch, const uint32_t *members, uint64_t lo,
			uint64_t hi)
{
	SL_ASSERT(V.n_seg < MAX_SEG);
	uint32_t si = V.n_seg++;
	struct vseg *s = &V.seg[si];
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->region = region;
	s->epoch = epoch;
	s->base = (uint64_t)epoch << EPOCH_SHIFT;
	memcpy(s->members, members, sizeof(s->members));
	s->lo = lo;
	s->hi = hi;
	for (uint32_t n = 0; n <= VN_MAX; n++) {
		sim_disk_init(&s->r[n].disk);
		s->r[n].seg = si;
		s->r[n].n = n;
	}
	return si;
}

static int map_find(uint32_t region)
{
	for (uint32_t i = 0; i < V.map.n; i++)
		if (V.map.e[i].region == region)
			return (int)i;
	return -1;
}

/* The new map version: new segments continue the sealed ones (ranges as ctld cuts them:
 * a split's parent keeps [lo, at - 1], the child takes [at, hi]). */
static void commit_map(void)
{
	struct reconf *c = &V.rc;
	struct vseg *a = &V.seg[c->src[0]];
	int ia = map_find(a->region);
	SL_ASSERT(ia >= 0);
	uint32_t mem[VM];
	memcpy(mem, a->members, sizeof(mem));
	switch (c->kind) {
	case K_MEMBER:
		for (uint32_t i = 0; i < VM; i++)
			if (mem[i] == c->out)
				mem[i] = c->in;
		/* fall through */
	case K_SWITCH:
		c->dst[0] = new_seg(a->region, a->epoch + 1, mem, a->lo, a->hi);
		c->n_dst = 1;
		break;
	case K_SPLIT: {
		uint32_t child = 0; /* the lowest free region id (fewer than MAX_REG in use) */
		while (map_find(child) >= 0)
			child++;
		c->dst[0] = new_seg(a->region, a->epoch + 1, mem, a->lo, c->at - 1);
		c->dst[1] = new_seg(child, a->epoch + 1, mem, c->at, a->hi);
		V.seg[c->dst[1]].commit_with = c->dst[0];
		c->n_dst = 2;
		memmove(&V.map.e[ia + 2], &V.map.e[ia + 1], (V.map.n - (uint32_t)ia - 1) * sizeof(V.map.e[0]));
		V.map.n++;
		V.map.e[ia + 1] = (struct vmap_ent){child, c->dst[1], c->at, a->hi};
		break;
	}
	case K_MERGE: {
		struct vseg *b = &V.seg[c->src[1]];
		uint32_t e = a->epoch > b->epoch ? a->epoch : b->epoch;
		c->dst[0] = new_seg(a->region, e + 1, mem, a->lo, b->hi);
		c->n_dst = 1;
		memmove(&V.map.e[ia + 1], &V.map.e[ia + 2], (V.map.n - (uint32_t)ia - 2) * sizeof(V.map.e[0]));
		V.map.n--;
		break;
	}
	default:
		SL_ASSERT(0);
	}
	const struct vseg *d0 = &V.seg[c->dst[0]];
	V.map.e[ia] = (struct vmap_ent){d0->region, c->dst[0], d0->lo, d0->hi};
	for (uint32_t k = 0; k < c->n_dst; k++) {
		struct vseg *d = &V.seg[c->dst[k]];
		/* a switch names its protocol; the rest keep the region's (splits and merges
		 * only ever of raft regions, as ctld allows) */
		d->ml = c->kind == K_SWITCH ? c->to_ml : a->ml;
		d->n_preds = c->n_src;
		memcpy(d->preds, c->src, sizeof(d->preds));
	}
	for (uint32_t k = 0; k < c->n_src; k++) {
		struct vseg *s = &V.seg[c->src[k]];
		s->n_succ = c->n_dst;
		memcpy(s->succ, c->dst, sizeof(s->succ));
	}
	V.map.version++;
	c->stage = 1;
	trace("map version %u: %s done in the map (segments %u%s)", V.map.version, kind_names[c->kind],
	      c->dst[0], c->n_dst > 1 ? " and a child" : "");
	check_coverage();
}

/* A split's cut: half the time exactly at the hash of a write the region acknowledged
 * (an off-by-one cut then leaves that write in the wrong half), else the middle. */
static uint64_t split_at(const struct vseg *s)
{
	if (sim_below(&V.rng, 2)) {
		uint64_t cand = 0, k = 0;
		for (size_t w = 1; w <= V.n_wr; w++) {
			const struct wrec *r = &V.wr[w];
			if (r->state == W_ACKED && r->hash > s->lo && r->hash <= s->hi &&
			    sim_below(&V.rng, ++k) == 0)
				cand = r->hash; /* reservoir: one of them, uniformly */
		}
		if (cand != 0)
			return cand;
	}
	return s->lo + (s->hi - s->lo) / 2 + 1;
}

static bool same_members(const struct vseg *a, const struct vseg *b)
{
	for (uint32_t i = 0; i < VM; i++)
		if (!is_member(b, a->members[i]))
			return false;
	return true;
}

/* Which steps a kind goes through (a step's crash is drawn among them); ml: of a
 * multileader region. */
static bool step_applies(int st, int kind, bool ml)
{
	if (st == ST_IMAGE_SECOND)
		return kind == K_SPLIT;
	if (st == ST_JOINER_OPENED)
		return kind == K_MEMBER;
	if (st == ST_LEARNER_OPENED || st == ST_LEARNER_CAUGHT_UP || st == ST_LEARNER_PROMOTED)
		return kind == K_MEMBER && !ml;
	return true;
}

static void reconf_start(void)
{
	struct reconf *c = &V.rc;
	if (V.next_time >= V.n_times || V.now < V.times[V.next_time] || V.healed ||
	    V.n_seg + 2 > MAX_SEG)
		return;
	V.next_time++;
	memset(c, 0, sizeof(*c));
	uint32_t ia = (uint32_t)sim_below(&V.rng, V.map.n);
	uint64_t r = sim_below(&V.rng, 100);
	int kind = r < 30 ? K_SPLIT : r < 55 ? K_MERGE : r < 80 ? K_MEMBER : K_SWITCH;
	if (kind == K_MERGE) {
		/* adjacent regions on one replica set (a move would have to come first) */
		uint32_t cand[MAX_REG], k = 0;
		for (uint32_t i = 0; i + 1 < V.map.n; i++) {
			const struct vseg *pa = &V.seg[V.map.e[i].seg], *pb = &V.seg[V.map.e[i + 1].seg];
			if (same_members(pa, pb) && !pa->ml && !pb->ml)
				cand[k++] = i;
		}
		if (k == 0)
			kind = V.map.n < MAX_REG ? K_SPLIT : K_SWITCH;
		else
			ia = cand[sim_below(&V.rng, k)];
	}
	if (kind == K_SPLIT && (V.map.n >= MAX_REG || V.map.e[ia].lo == V.map.e[ia].hi))
		kind = K_SWITCH;
	if (kind == K_MEMBER && V.n_nodes <= VM)
		kind = K_SWITCH;
	struct vseg *a = &V.seg[V.map.e[ia].seg];
	/* ctld refuses splits, merges and (unless --ml-moves) replica moves of a multileader
	 * region: the operator switches it first, so a switch it is */
	if (a->ml && (kind == K_SPLIT || (kind == K_MEMBER && !g_ml_moves)))
		kind = K_SWITCH;
	if (kind == K_MEMBER) {
		c->out = a->members[sim_below(&V.rng, VM)];
		do
			c->in = (uint32_t)rnd(1, V.n_nodes);
		while (is_member(a, c->in));
		/* ctld refuses a raft move to a node that is down: a switch instead */
		if (!a->ml && !V.nodes[c->in].up) {
			kind = K_SWITCH;
			c->out = c->in = 0;
		}
	}
	if (kind == K_SWITCH)
		c->to_ml = sim_below(&V.rng, 2) != 0;
	c->active = true;
	c->kind = (uint8_t)kind;
	c->src[0] = V.map.e[ia].seg;
	c->n_src = 1;
	if (kind == K_MERGE) {
		c->src[1] = V.map.e[ia + 1].seg;
		c->n_src = 2;
	} else if (kind == K_SPLIT) {
		c->at = split_at(a);
	} else if (kind == K_MEMBER && !a->ml) {
		/* no seal yet: the map names the joiner learner of the running segment */
		c->learning = true;
		a->learner = c->in;
		V.learn[LN_STARTED]++;
	}
	c->crash_step = -1;
	if (sim_below(&V.rng, 5) != 0) {
		int cand[ST_COUNT], k = 0;
		for (int st = 0; st < ST_COUNT; st++)
			if (step_applies(st, kind, a->ml))
				cand[k++] = st;
		c->crash_step = cand[sim_below(&V.rng, (uint64_t)k)];
	}
	V.started[kind]++;
	trace("reconfiguration: %s of region %u (segment %u) at 0x%016" PRIx64 " out n%u in n%u; crash at %s",
	      kind_names[kind], a->region, c->src[0], c->at, c->out, c->in,
	      c->crash_step >= 0 ? step_names[c->crash_step] : "none");
	step_reached(ST_ASKED, 0);
}

/* The leader of a sealing segment is asked for a SEAL until one is in its log. */
static void seal_try(uint32_t si)
{
	struct vseg *s = &V.seg[si];
	/* multileader: any replica seals its own stream and its peers follow (the node asks
	 * each of its replicas until sealed: here one at a time, -EALREADY once its stream
	 * is sealed) */
	uint32_t l = s->ml ? s->members[sim_below(&V.rng, VM)] : find_leader(si);
	if (s->ml && (!V.nodes[l].up || s->r[l].drv == NULL))
		return;
	if (l == 0 || (!s->ml && s->seal_pid != 0 && !sim_chance(&V.rng, 100000)))
		return;
	uint8_t pl[8];
	sl_put_u32(pl, 0x4c414553u); /* "SEAL" */
	sl_put_u32(pl + 4, si);
	uint64_t pid = ++V.pid_seq;
	int rc = sl_drv_seal(s->r[l].drv, pid, pl, sizeof(pl));
	trace("seg%u seal at n%u: %d", si, l, rc);
	if (rc == 0) {
		s->seal_pid = pid;
		V.other[O_SEALS]++;
		step_reached(ST_SEAL_PROPOSED, l);
	}
	process_rep(si, l);
}

/* A multileader segment every replica reports sealed: before any base image is made of
 * it, each replica's state at its seal (every stream applied up to its end) is the same,
 * and holds every write the segment acknowledged. false: a replica is not running (or
 * has not applied up to its seal again since a restart): wait. */
static bool ml_sealed_agree(uint32_t si)
{
	struct vseg *s = &V.seg[si];
	uint64_t dg = 0;
	size_t nw = 0;
	for (uint32_t i = 0; i < VM; i++) {
		struct vrep *rp = &s->r[s->members[i]];
		if (rp->drv == NULL || rp->applied < rp->sealed_at)
			return false;
	}
	for (uint32_t i = 0; i < VM && !V.fail[0]; i++) {
		uint32_t m = s->members[i];
		struct wset *st = &s->r[m].st;
		V.checks[C_ML_SEALED]++;
		uint64_t dup = ws_twice(st); /* sorts st by write id */
		if (dup != 0) {
			fail("applied twice: seg%u n%u holds write %" PRIu64 " twice at its seal", si, m,
			     dup);
			break;
		}
		if (i == 0) {
			dg = ws_digest(st);
			nw = st->n;
		} else if (ws_digest(st) != dg || st->n != nw) {
			fail("convergence: multileader seg%u: n%u's state at its seal (%zu writes) "
			     "differs from n%u's (%zu writes)",
			     si, m, st->n, s->members[0], nw);
			break;
		}
		for (size_t w = 1; w <= V.n_wr; w++) {
			struct wr key = {w, 0};
			if (V.wr[w].state == W_ACKED && V.wr[w].seg == si &&
			    bsearch(&key, st->v, st->n, sizeof(st->v[0]), wr_cmp) == NULL) {
				fail("acknowledged write lost: multileader seg%u acked write %" PRIu64
				     ", missing on n%u at its seal",
				     si, (uint64_t)w, m);
				break;
			}
		}
	}
	return !V.fail[0];
}

/* A raft move's learner phase, nothing sealed: the move fails when the learner is down
 * (the learner goes from the map; S's replicas are told none by their agents, the
 * learner drops its copy), else the seal is asked once the learner applied the target
 * (learner_ready, durable). ctld's learner_duty and sl_ctld_replica_move_stuck. */
static void learner_duty(void)
{
	struct reconf *c = &V.rc;
	struct vseg *s = &V.seg[c->src[0]];
	if (!V.nodes[c->in].up) {
		s->learner = 0;
		c->active = false;
		V.learn[LN_FAILED]++;
		trace(
		    "reconfiguration failed: n%u went down while catching up as a learner of seg%u",
		    c->in, c->src[0]);
		return;
	}
	uint64_t best = 0;
	for (uint32_t i = 0; i < VM && c->target == 0; i++) {
		const struct vrep *rp = &s->r[s->members[i]];
		if (V.nodes[s->members[i]].up && rp->drv != NULL && rp->applied > best)
			best = rp->applied;
	}
	if (c->target == 0)
		c->target = best; /* the highest reported, when it first looks */
	const struct vrep *t = &s->r[c->in];
	if (c->target == 0 || t->drv == NULL || t->applied < c->target)
		return;
	c->learning = false;
	V.learn[LN_CAUGHT_UP]++;
	trace("n%u caught up as a learner of seg%u (applied %" PRIu64 " of %" PRIu64 "): sealing",
	      c->in, c->src[0], t->applied, c->target);
	step_reached(ST_LEARNER_CAUGHT_UP, c->in);
}

/* The seal also waits for a raft move's learner to report its copy sealed, unless its
 * node is down (it joins the new segment empty then). */
static bool learner_sealed(void)
{
	const struct reconf *c = &V.rc;
	const struct vseg *s = &V.seg[c->src[0]];
	if (c->kind != K_MEMBER || s->ml || s->learner == 0 || !V.nodes[s->learner].up)
		return true;
	const struct vrep *t = &s->r[s->learner];
	return t->drv != NULL && t->sealed_at != 0;
}

static void coord_step(void)
{
	struct reconf *c = &V.rc;
	if (!c->active) {
		reconf_start();
		return;
	}
	if (c->learning) {
		learner_duty();
		return;
	}
	if (c->stage == 0) {
		bool all = true;
		for (uint32_t k = 0; k < c->n_src; k++) {
			struct vseg *s = &V.seg[c->src[k]];
			bool sealed = true;
			for (uint32_t i = 0; i < VM; i++) {
				uint32_t m = s->members[i];
				sealed &= V.nodes[m].up && s->r[m].sealed_at != 0;
			}
			if (s->seal_idx == 0 || (s->ml && !sealed))
				seal_try(c->src[k]);
			all &= sealed;
			if (!V.coord_up)
				return;
		}
		if (!all)
			return;
		for (uint32_t k = 0; k < c->n_src; k++)
			if (V.seg[c->src[k]].ml && !ml_sealed_agree(c->src[k]))
				return;
		if (!learner_sealed())
			return;
		step_reached(ST_ALL_SEALED, 0);
		if (!V.coord_up)
			return;
		const struct vseg *a = &V.seg[c->src[0]];
		V.learn[LN_SWITCHED_WITHOUT] += a->learner != 0 && !V.nodes[a->learner].up;
		commit_map();
		uint32_t m = V.seg[c->dst[0]].members[sim_below(&V.rng, VM)];
		step_reached(ST_MAP_COMMITTED, m);
		return;
	}
	for (uint32_t k = 0; k < c->n_dst; k++) {
		struct vseg *d = &V.seg[c->dst[k]];
		for (uint32_t i = 0; i < VM; i++)
			if (!V.nodes[d->members[i]].up || d->r[d->members[i]].drv == NULL)
				return;
	}
	step_reached(ST_DONE, 0);
	if (!V.coord_up)
		return;
	V.done[c->kind]++;
	const struct vseg *from = &V.seg[c->src[0]], *to = &V.seg[c->dst[0]];
	if (c->kind == K_SWITCH)
		V.sw[(from->ml ? SW_MR : SW_RR) + to->ml]++;
	else if (c->kind == K_MEMBER && from->ml)
		V.sw[SW_MOVE_ML]++;
	trace("reconfiguration done: %s", kind_names[c->kind]);
	c->active = false;
}

/* ---- a data node applying the map (node_switch.c's part) ---- */

/* The state of node n's replica of sealed segment si at its SEAL, or false when it is not
 * there yet (not running, SEAL not applied here). Past the SEAL only new leaders' no-ops
 * are applied (the apply checker sees to it), so the state now is the state at the SEAL. */
static bool sealed_state(uint32_t si, uint32_t n, struct wset *out)
{
	struct vrep *rp = &V.seg[si].r[n];
	if (rp->drv == NULL || rp->sealed_at == 0 || rp->applied < rp->sealed_at)
		return false;
	for (size_t i = 0; i < rp->st.n; i++)
		ws_add(out, rp->st.v[i].wid, rp->st.v[i].hash);
	return true;
}

/* Node n opens the new segment(s) of the reconfiguration: a member of the sealed ones
 * writes its image(s) from its own state at the seal and runs the new segment over it;
 * a joiner records its join and opens an empty replica. */
static void agent_open(uint32_t n)
{
	struct reconf *c = &V.rc;
	struct vseg *d0 = &V.seg[c->dst[0]];
	if (!is_member(d0, n) || opened_on(c->dst[0], n))
		return;
	/* a raft move's learner switches from its own copy once sealed; a copy that missed
	 * the seal (no replica of it is left to send the SEAL) goes, and it joins empty */
	struct vrep *lc = &V.seg[c->src[0]].r[n];
	bool promote = lc->learner && !lc->gone && lc->sealed_at != 0;
	if (lc->learner && !lc->gone && !promote)
		rep_drop(c->src[0], n);
	if (!is_member(&V.seg[c->src[0]], n) && !promote) {
		V.learn[LN_JOINED_EMPTY] += V.seg[c->src[0]].learner == n;
		d0->r[n].joined = true; /* the node's "join" line, durable */
		/* a multileader joiner cannot tell its empty store from a caught-up one: it
		 * opens in rejoin mode, and stays in it across restarts until caught up */
		d0->r[n].rejoin = d0->ml;
		rep_start(c->dst[0], n);
		step_reached(ST_JOINER_OPENED, n);
		if (!crash_due(n))
			process_rep(c->dst[0], n);
		return;
	}
	struct wset st = {0};
	for (uint32_t k = 0; k < c->n_src; k++)
		if (!sealed_state(c->src[k], n, &st)) {
			ws_free(&st);
			return;
		}
	if (c->kind == K_SPLIT) {
		struct vseg *s = &V.seg[c->src[0]];
		struct sl_hash_range lo_h, hi_h;
		SL_ASSERT(sl_range_split(s->lo, s->hi, c->at, &lo_h, &hi_h) == 0);
		struct wset a = {0}, b = {0};
		for (size_t i = 0; i < st.n; i++) {
			uint64_t h = st.v[i].hash;
			if (h >= lo_h.lo && h <= lo_h.hi)
				ws_add(&a, st.v[i].wid, h);
			else if (h >= hi_h.lo && h <= hi_h.hi)
				ws_add(&b, st.v[i].wid, h);
		}
		if (a.n + b.n != st.n)
			fail("split: n%u cut segment %u at 0x%016" PRIx64 " and %zu write(s) fell in "
			     "neither half",
			     n, c->src[0], c->at, st.n - a.n - b.n);
		ws_free(&st);
		if (!V.seg[c->dst[1]].r[n].has_img) /* a restart may have kept the child's */
			image_put(c->dst[1], n, &b, "split: child half");
		ws_free(&b);
		step_reached(ST_IMAGE_FIRST, n);
		if (crash_due(n)) {
			ws_free(&a);
			return;
		}
		image_put(c->dst[0], n, &a, "split: parent half");
		step_reached(ST_IMAGE_SECOND, n);
		if (crash_due(n))
			return;
	} else if (promote) {
		/* the promotion: a voter of the new segment from what it learned */
		image_put(c->dst[0], n, &st, "learner: from its own seal");
		V.learn[LN_PROMOTED]++;
		step_reached(ST_LEARNER_PROMOTED, n);
		if (crash_due(n))
			return;
	} else {
		image_put(c->dst[0], n, &st, c->kind == K_MERGE ? "merge" : "from the seal");
		step_reached(ST_IMAGE_FIRST, n);
		if (crash_due(n))
			return;
	}
	for (uint32_t k = 0; k < c->n_src; k++)
		rep_drop(c->src[k], n);
	for (uint32_t k = 0; k < c->n_dst; k++)
		rep_start(c->dst[k], n);
	step_reached(ST_SEG_STARTED, n);
	if (crash_due(n))
		return;
	for (uint32_t k = 0; k < c->n_dst; k++)
		process_rep(c->dst[k], n);
}

/* The map's learners (node_switch.c's learner_join, learner_drop, learner_sync): node n
 * opens an empty learner replica of the running raft segment that names it; drops its
 * copy of one that no longer does; a replica of a segment the map runs tells its driver
 * the learner the map names (none: the move ended). */
static void learner_poll(uint32_t n)
{
	for (uint32_t si = 1; si < V.n_seg && V.nodes[n].up; si++) {
		struct vseg *s = &V.seg[si];
		struct vrep *rp = &s->r[n];
		if (s->ml || rp->gone)
			continue;
		if (rp->learner) {
			if (s->learner != n)
				learner_drop(si, n, "the move ended");
			continue;
		}
		if (s->learner == n && s->n_succ == 0 && rp->drv == NULL && !is_member(s, n)) {
			rp->learner = true; /* the node's "learn" line, durable */
			rep_start(si, n);
			V.learn[LN_OPENED]++;
			trace("seg%u n%u opened a learner replica", si, n);
			step_reached(ST_LEARNER_OPENED, n);
			if (!crash_due(n))
				process_rep(si, n);
			continue;
		}
		/* told only when the map names another learner, as the node's learner_sync: a
		 * learner that opened again (its copy dropped at a restart) answers the leader
		 * holding less than it matched, and raft lowers its match then (before that
		 * fix, 7 of the 1000 CI seeds left the leader probing above the empty log) */
		if (rp->drv == NULL || s->n_succ != 0 || rp->drv_learner == s->learner)
			continue;
		int rc = sl_drv_set_learners(rp->drv, s->learner != 0 ? &s->learner : NULL,
					     s->learner != 0 ? 1u : 0u);
		if (rc != 0)
			fail("learner: seg%u n%u's driver refused learner n%u: %d", si, n,
			     s->learner, rc);
		rp->drv_learner = s->learner;
		trace("seg%u n%u: its driver told learner n%u (0: none)", si, n, s->learner);
		process_rep(si, n);
	}
}

static void agent_step(uint32_t n)
{
	if (!V.nodes[n].up || !V.coord_up)
		return; /* the map comes from the coordinator */
	learner_poll(n);
	if (!V.nodes[n].up || !V.rc.active || V.rc.stage != 1)
		return;
	agent_open(n);
	/* a node that left drops what it moved past */
	for (uint32_t si = 1; si < V.n_seg && V.nodes[n].up; si++)
		if (is_member(&V.seg[si], n) && !V.seg[si].r[n].gone && moved_on(si, n))
			rep_drop(si, n);
}

/* ---- clients ---- */

static void client_kick(uint32_t ci, uint64_t delay)
{
	struct vclient *c = &V.cl[ci];
	c->busy = false;
	c->token++;
	push(V.now + delay, V_CLIENT, ci, c->token, NULL);
}

static uint64_t draw_hash(void)
{
	/* now and then right at a region's edge: the ranges' ends see writes too */
	if (sim_chance(&V.rng, 100000) && V.map.n > 0) {
		const struct vmap_ent *e = &V.map.e[sim_below(&V.rng, V.map.n)];
		return sim_below(&V.rng, 2) ? e->lo : e->hi;
	}
	return sim_rand(&V.rng);
}

static void client_refused(uint32_t ci)
{
	V.cl[ci].stale = true;
	V.other[O_RETRIES]++;
	client_kick(ci, rnd(1 * MS, 30 * MS));
}

static void client_event(uint32_t ci, uint64_t token)
{
	struct vclient *c = &V.cl[ci];
	if (token != c->token)
		return;
	if (c->busy) {
		/* no answer in time: the outcome stays unknown, the write is not sent again */
		V.wr[c->wid].state = W_UNKNOWN;
		V.other[O_UNKNOWN]++;
		c->has_write = false;
		client_kick(ci, rnd(1 * MS, 20 * MS));
		return;
	}
	if (V.now + 1500 * MS >= V.run_ns + V.heal_ns)
		return; /* quiet before the final checks */
	if (!c->has_write) {
		if (V.n_wr + 1 >= V.cap_wr) {
			V.cap_wr = V.cap_wr ? 2 * V.cap_wr : 4096;
			V.wr = realloc(V.wr, V.cap_wr * sizeof(*V.wr));
			SL_ASSERT(V.wr != NULL);
		}
		c->wid = ++V.n_wr;
		V.wr[c->wid] = (struct wrec){draw_hash(), 0, 0, W_PENDING};
		c->has_write = true;
		V.other[O_WRITES]++;
	}
	if ((c->stale || c->map.version == 0) && V.coord_up) {
		c->map = V.map; /* a fresh map from the coordinator */
		c->stale = false;
	}
	if (c->map.version == 0) {
		client_kick(ci, rnd(10 * MS, 50 * MS)); /* no map yet: wait for the coordinator */
		return;
	}
	uint64_t hash = V.wr[c->wid].hash;
	const struct vmap_ent *e = NULL;
	for (uint32_t i = 0; i < c->map.n && e == NULL; i++)
		if (hash >= c->map.e[i].lo && hash <= c->map.e[i].hi)
			e = &c->map.e[i];
	SL_ASSERT(e != NULL);
	uint32_t si = e->seg;
	struct vseg *s = &V.seg[si];
	uint32_t n = c->hint != 0 && is_member(s, c->hint) ? c->hint : s->members[sim_below(&V.rng, VM)];
	c->hint = 0;
	struct vrep *rp = &s->r[n];
	if (!V.nodes[n].up || rp->drv == NULL || hash < s->lo || hash > s->hi) {
		client_refused(ci); /* down, no replica here (left, not opened) or a stale route */
		return;
	}
	uint8_t pl[WRITE_BYTES];
	sl_put_u64(pl, c->wid);
	sl_put_u64(pl + 8, hash);
	uint64_t pid = ++V.pid_seq;
	uint64_t own_end = s->ml ? sim_ml_own_end(sl_drv_instance(rp->drv), n) : 0;
	int rc = sl_drv_propose(rp->drv, pid, pl, sizeof(pl));
	trace("client %u write %" PRIu64 " to seg%u at n%u: %d", ci, c->wid, si, n, rc);
	if (s->ml) {
		/* seal (d): a multileader replica takes no write once its own stream is sealed */
		V.checks[C_ML_PROPOSE]++;
		if (rc == 0 && own_end != 0)
			fail("seal: seg%u n%u took write %" PRIu64 " (origin index %" PRIu64
			     ") after its own SEAL at %" PRIu64,
			     si, n, c->wid, sl_ml_last_own(sl_drv_instance(rp->drv)), own_end);
		c->oidx = rc == 0 ? sl_ml_last_own(sl_drv_instance(rp->drv)) : 0;
	}
	if (rc == 0) {
		c->busy = true;
		c->pid = pid;
		c->seg = si;
		c->node = n;
		c->token++;
		push(V.now + rnd(V.et / 2, 1500 * MS), V_CLIENT, ci, c->token, NULL);
	} else {
		V.other[O_REFUSED_SEALED] += rc == -EROFS;
		struct sl_cons_status st;
		sl_drv_status(rp->drv, &st);
		if (rc == -EPERM && st.leader != n && st.leader <= V.n_nodes)
			c->hint = st.leader;
		client_refused(ci);
	}
	process_rep(si, n);
}

/* ---- faults ---- */

static void heal_event(bool final)
{
	memset(V.blocked, 0, sizeof(V.blocked));
	if (!final)
		return;
	V.healed = true;
	V.drop_ppm = V.dup_ppm = 0;
	V.crash_now = 0;
	if (!V.coord_up)
		V.coord_up = true;
	for (uint32_t n = 1; n <= V.n_nodes; n++) {
		V.nodes[n].slow_until = 0;
		node_restart(n);
	}
}

static void fault_event(void)
{
	if (V.healed)
		return;
	uint32_t n = (uint32_t)rnd(1, V.n_nodes);
	switch (sim_below(&V.rng, 9)) {
	case 0:
	case 1: {
		bool side[VN_MAX + 1], sym = sim_below(&V.rng, 2);
		uint32_t k;
		do {
			k = 0;
			for (uint32_t a = 1; a <= V.n_nodes; a++)
				k += side[a] = sim_below(&V.rng, 2);
		} while (k == 0 || k == V.n_nodes);
		for (uint32_t a = 1; a <= V.n_nodes; a++)
			for (uint32_t b = 1; b <= V.n_nodes; b++)
				if (side[a] != side[b] && (sym || side[a]))
					V.blocked[a][b] = true;
		V.faults[sym ? F_PART_SYM : F_PART_ONEWAY]++;
		push(V.now + rnd(200 * MS, 2 * SEC), V_HEAL, 0, 0, NULL);
		break;
	}
	case 2:
		node_crash(n, 50 * MS);
		break;
	case 3: {
		uint32_t l = find_leader(V.map.e[sim_below(&V.rng, V.map.n)].seg);
		if (l != 0) {
			V.faults[F_CRASH_LEADER]++;
			node_crash(l, 50 * MS);
		}
		break;
	}
	case 4:
		V.nodes[n].clock_off += rnd(V.et / 2, 4 * V.et); /* leases are off */
		V.faults[F_CLOCK_JUMP]++;
		break;
	case 5:
		V.nodes[n].slow_until = V.now + rnd(300 * MS, 3 * SEC);
		V.faults[F_SLOW_DISK]++;
		break;
	case 6:
		coord_crash();
		break;
	default:
		break; /* a quiet spell */
	}
	push(V.now + rnd(2 * V.fault_every / 5, 6 * V.fault_every / 5), V_FAULT, 0, 0, NULL);
}

/* ---- event handlers ---- */

static void on_deliver(struct vmsg *b)
{
	struct vrep *rp = &V.seg[b->seg].r[b->to];
	/* a dropped learner copy's messages die with it: one delayed past its successor's
	 * start (a "message from the past", up to two election timeouts here, far beyond a
	 * real restart) would ack its log to the leader, raising the match of an empty copy
	 * again, which raft never lowers */
	if (b->gen != V.seg[b->seg].r[b->from].gen) {
		free(b);
		return;
	}
	if (V.nodes[b->to].up && rp->drv != NULL) {
		if (b->send_seq < V.link_done[b->from][b->to])
			V.faults[F_REORDER]++;
		else
			V.link_done[b->from][b->to] = b->send_seq;
		struct sl_cons_msg m = {b->seg, b->from, b->to, b->len, b->buf};
		(void)sl_drv_step(rp->drv, &m);
		process_rep(b->seg, b->to);
	}
	free(b);
}

static void on_sync(struct vjob *j)
{
	struct vrep *rp = &V.seg[j->seg].r[j->node];
	if (j->inc == V.nodes[j->node].inc && j->gen == rp->gen && rp->drv != NULL) {
		if (j->wal_mark > rp->disk.synced)
			rp->disk.synced = j->wal_mark;
		if (j->has_persist)
			sl_drv_persisted(rp->drv, j->term, j->index);
		sl_drv_durable(rp->drv, j->pos_mark);
		rp->sync_busy = false;
		if (rp->sync_again) {
			rp->sync_again = false;
			sync_issue(j->seg, j->node);
		}
		process_rep(j->seg, j->node);
		if (rp->drv != NULL && rp->disk.synced == rp->disk.wal_len && rp->disk.wal_len > (256u << 10))
			sim_disk_rewrite(&rp->disk);
	}
	free(j);
}

static void on_tick(uint32_t n)
{
	for (uint32_t si = 1; si < V.n_seg && V.nodes[n].up; si++) {
		struct vrep *rp = &V.seg[si].r[n];
		if (rp->drv == NULL)
			continue;
		sl_drv_tick(rp->drv, local_ns(n));
		process_rep(si, n);
	}
	push(V.now + V.tick - V.tick / 5 + sim_below(&V.rng, 2 * V.tick / 5), V_TICK, n, 0, NULL);
}

/* ---- final checks ---- */

static void check_final(void)
{
	if (V.rc.active) {
		fail("liveness: the %s of segment %u is still running after the heal (stage %u)",
		     kind_names[V.rc.kind], V.rc.src[0], V.rc.stage);
		return;
	}
	check_coverage();
	uint8_t *count = calloc(V.n_wr + 1, 1);
	SL_ASSERT(count != NULL);
	for (uint32_t i = 0; i < V.map.n && !V.fail[0]; i++) {
		const struct vmap_ent *e = &V.map.e[i];
		struct vseg *s = &V.seg[e->seg];
		/* multileader: no leader; every member holds the same writes (its first as
		 * the reference) */
		uint32_t l = s->ml ? s->members[0] : find_leader(e->seg);
		if (l == 0 || s->r[l].drv == NULL) {
			fail("liveness: region %u (segment %u) has no leader after the heal", e->region, e->seg);
			break;
		}
		struct sl_cons_status ls;
		sl_drv_status(s->r[l].drv, &ls);
		struct wset *ref = &s->r[l].st;
		uint64_t dg = ws_digest(ref);
		for (uint32_t k = 0; k < VM; k++) {
			uint32_t m = s->members[k];
			struct vrep *rp = &s->r[m];
			if (rp->drv == NULL || (!s->ml && rp->applied != ls.commit_index) ||
			    rp->st.n != ref->n || ws_digest(&rp->st) != dg) {
				if (s->ml)
					fail("convergence: multileader region %u (segment %u) n%u holds %zu "
					     "writes, n%u %zu",
					     e->region, e->seg, m, rp->st.n, l, ref->n);
				else
					fail("convergence: region %u (segment %u) n%u applied %" PRIu64
					     " (%zu writes), leader n%u committed %" PRIu64 " (%zu writes)",
					     e->region, e->seg, m, rp->applied, rp->st.n, l, ls.commit_index,
					     ref->n);
				break;
			}
		}
		V.checks[C_CONVERGED]++;
		uint64_t dup = ws_twice(ref);
		if (dup != 0) {
			fail("applied twice: region %u (segment %u) holds write %" PRIu64 " twice", e->region,
			     e->seg, dup);
			break;
		}
		for (size_t k = 0; k < ref->n; k++) {
			const struct wr *w = &ref->v[k];
			V.checks[C_STORED_RANGE]++;
			if (w->hash < e->lo || w->hash > e->hi) {
				fail("range: region %u [0x%016" PRIx64 ", 0x%016" PRIx64 "] stores write %" PRIu64
				     " of hash 0x%016" PRIx64,
				     e->region, e->lo, e->hi, w->wid, w->hash);
				break;
			}
			if (count[w->wid]++ > 0) {
				fail("applied twice: write %" PRIu64 " is stored in two regions", w->wid);
				break;
			}
		}
	}
	for (size_t w = 1; w <= V.n_wr && !V.fail[0]; w++) {
		V.checks[C_ONCE]++;
		if (V.wr[w].state != W_ACKED)
			continue;
		V.checks[C_ACKED]++;
		if (count[w] == 0) {
			int owner = -1;
			for (uint32_t i = 0; i < V.map.n; i++)
				if (V.wr[w].hash >= V.map.e[i].lo && V.wr[w].hash <= V.map.e[i].hi)
					owner = (int)V.map.e[i].region;
			fail("acknowledged write lost: write %" PRIu64 " (hash 0x%016" PRIx64
			     ", acked by segment %u at %" PRIu64 ") is not in region %d, which owns its hash",
			     (uint64_t)w, V.wr[w].hash, V.wr[w].seg, V.wr[w].index, owner);
		}
	}
	free(count);
}

/* ---- one run ---- */

static void dump(void)
{
	for (uint32_t si = 1; si < V.n_seg; si++)
		for (uint32_t n = 1; n <= V.n_nodes; n++) {
			struct vrep *rp = &V.seg[si].r[n];
			if (!is_member(&V.seg[si], n) && !rp->learner)
				continue;
			struct sl_cons_status st = {0};
			if (rp->drv != NULL)
				sl_drv_status(rp->drv, &st);
			fprintf(stderr,
				"seg%u (region %u epoch %u) n%u%s%s%s role %u leader %u term %" PRIu64
				" commit %" PRIu64 " applied %" PRIu64 " last %" PRIu64 " sealed %" PRIu64
				" sealed_at %" PRIu64 " writes %zu\n",
				si, V.seg[si].region, V.seg[si].epoch, n,
				rp->learner ? " learner" : rp->drv ? "" : " (not running)",
				rp->gone ? " gone" : "", V.nodes[n].up ? "" : " down", st.role, st.leader,
				st.term, st.commit_index, st.applied_index, st.last_index, st.sealed_index,
				rp->sealed_at, rp->st.n);
			struct sl_raft_peer pr[SL_CONS_MAX_PEERS];
			uint32_t np = rp->drv != NULL && !V.seg[si].ml && st.role == SL_CONS_ROLE_LEADER
					  ? sl_raft_peers(sl_drv_instance(rp->drv), pr, SL_CONS_MAX_PEERS)
					  : 0;
			if (rp->drv != NULL) {
				struct sl_drv_stats ds;
				sl_drv_stats(rp->drv, &ds);
				fprintf(stderr, "  driver: readies %" PRIu64 " sent %" PRIu64 " held %" PRIu64
					" dropped held %" PRIu64 " pos %" PRIu64 " wal %zu synced %zu\n",
					ds.readies, ds.msgs_sent, ds.msgs_held, ds.msgs_dropped_held, rp->pos,
					rp->disk.wal_len, rp->disk.synced);
			}
			for (uint32_t k = 0; k < np; k++)
				fprintf(stderr, "  peer n%u: state %u match %" PRIu64 " next %" PRIu64
					" snapshot %" PRIu64 "\n",
					pr[k].id, pr[k].state, pr[k].match, pr[k].next, pr[k].pending_snapshot);
		}
}

static void world_free(void)
{
	while (V.q.len > 0)
		free(sim_queue_pop(&V.q).p);
	free(V.q.v);
	for (uint32_t si = 1; si < V.n_seg; si++)
		for (uint32_t n = 0; n <= VN_MAX; n++) {
			struct vrep *rp = &V.seg[si].r[n];
			if (rp->drv != NULL)
				sl_drv_destroy(rp->drv);
			sim_disk_free(&rp->disk);
			ws_free(&rp->img);
			ws_free(&rp->st);
			ws_free(&rp->msnap);
			free(rp->snapbuf);
		}
	free(V.wr);
}

static void world_init(uint64_t seed)
{
	/* the counters live across seeds; the rest starts over */
	uint64_t keep_f[F_COUNT], keep_c[C_COUNT], keep_o[O_COUNT], keep_r[ST_COUNT],
	    keep_x[ST_COUNT], keep_s[K_COUNT], keep_d[K_COUNT], keep_w[SW_COUNT], keep_m[ST_COUNT],
	    keep_l[LN_COUNT], steps = V.steps;
	memcpy(keep_f, V.faults, sizeof(keep_f));
	memcpy(keep_c, V.checks, sizeof(keep_c));
	memcpy(keep_o, V.other, sizeof(keep_o));
	memcpy(keep_r, V.reached, sizeof(keep_r));
	memcpy(keep_x, V.crashes, sizeof(keep_x));
	memcpy(keep_s, V.started, sizeof(keep_s));
	memcpy(keep_d, V.done, sizeof(keep_d));
	memcpy(keep_w, V.sw, sizeof(keep_w));
	memcpy(keep_m, V.crashes_ml, sizeof(keep_m));
	memcpy(keep_l, V.learn, sizeof(keep_l));
	memset(&V, 0, sizeof(V));
	memcpy(V.learn, keep_l, sizeof(keep_l));
	memcpy(V.sw, keep_w, sizeof(keep_w));
	memcpy(V.crashes_ml, keep_m, sizeof(keep_m));
	memcpy(V.faults, keep_f, sizeof(keep_f));
	memcpy(V.checks, keep_c, sizeof(keep_c));
	memcpy(V.other, keep_o, sizeof(keep_o));
	memcpy(V.reached, keep_r, sizeof(keep_r));
	memcpy(V.crashes, keep_x, sizeof(keep_x));
	memcpy(V.started, keep_s, sizeof(keep_s));
	memcpy(V.done, keep_d, sizeof(keep_d));
	V.steps = steps;
	V.seed = seed;
	V.rng.s = seed ^ 0x7265636f6e666967ull; /* "reconfig": its own stream */
	static const uint32_t batches[] = {1, 2, 4, 16, 64};
	static const uint32_t windows[] = {1000, 8000, 64000};
	V.n_nodes = (uint32_t)rnd(4, VN_MAX);
	V.n_cl = (uint32_t)rnd(2, MAX_CL);
	V.et = rnd(100, 300) * MS;
	V.hb = V.et / rnd(4, 10);
	V.tick = rnd(2, 10) * MS;
	V.max_batch = batches[sim_below(&V.rng, SL_ARRAY_LEN(batches))];
	V.max_infl = windows[sim_below(&V.rng, SL_ARRAY_LEN(windows))];
	V.lat_min = rnd(100, 2000) * 1000;
	V.lat_jit = rnd(0, 8) * MS;
	V.drop_ppm = (uint32_t)rnd(0, 80000);
	V.dup_ppm = (uint32_t)rnd(0, 30000);
	V.fault_every = rnd(300, 1500) * MS;
	V.run_ns = 8 * SEC;
	V.heal_ns = 6 * SEC;
	V.opts = (struct sl_raft_opts){
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
	/* multileader segments: the batches, windows and timers of the multileader mode
	 * (sim_ml.c), bounds of this mode's raft, messages of 4 KiB; no peer goes past
	 * retention (a segment takes far fewer writes); a write is acked once durable on 1
	 * or 2 replicas (per seed) */
	V.mlo = sim_ml_opts;
	V.mlo.ack_copies = (uint32_t)rnd(1, 2);
	V.mlo.retention_entries = 4096;
	V.mlo.max_undurable = V.mlo.max_pending = 1024;
	V.mlo.max_msg_bytes = 4096;
	V.mlo.max_snapshot_bytes = 0; /* the default: any image of a segment */
	V.mlo.read_timeout_ns = 0;
	for (uint32_t n = 1; n <= V.n_nodes; n++) {
		struct vnode *nd = &V.nodes[n];
		nd->up = true;
		nd->drift_ppm = (int64_t)rnd(0, 800) - 400;
		nd->disk_lat = rnd(20, 500) * 1000;
		nd->clock_off = rnd(0, 1000) * SEC;
	}
	/* the first map: 2-4 regions of equal shares, each on three nodes of its own pick */
	V.n_seg = 1;
	uint32_t nr = (uint32_t)rnd(2, 4);
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t mem[VM], k = 0;
		while (k < VM) {
			uint32_t n = (uint32_t)rnd(1, V.n_nodes);
			bool dup = false;
			for (uint32_t j = 0; j < k; j++)
				dup |= mem[j] == n;
			if (!dup)
				mem[k++] = n;
		}
		uint64_t share = UINT64_MAX / nr;
		uint64_t lo = share * i + (i > 0), hi = i + 1 == nr ? UINT64_MAX : share * (i + 1);
		uint32_t si = new_seg(i, 0, mem, lo, hi);
		V.map.e[V.map.n++] = (struct vmap_ent){i, si, lo, hi};
		for (uint32_t j = 0; j < VM; j++)
			V.seg[si].r[mem[j]].has_img = true; /* an empty image at index 0 */
	}
	V.map.version = 1;
	check_coverage();
	V.coord_up = true;
	/* reconfigurations asked at seeded times, one after the other */
	V.n_times = (uint32_t)rnd(3, MAX_RECONF);
	for (uint32_t i = 0; i < V.n_times; i++)
		V.times[i] = 300 * MS + i * (6 * SEC / V.n_times) + rnd(0, 300) * MS;
	for (uint32_t si = 1; si < V.n_seg; si++)
		for (uint32_t i = 0; i < VM; i++)
			rep_start(si, V.seg[si].members[i]);
	for (uint32_t ci = 0; ci < V.n_cl; ci++)
		client_kick(ci, rnd(50 * MS, 300 * MS));
	for (uint32_t n = 1; n <= V.n_nodes; n++) {
		push(sim_below(&V.rng, V.tick), V_TICK, n, 0, NULL);
		push(rnd(10, 40) * MS, V_AGENT, n, 0, NULL);
	}
	push(20 * MS, V_COORD, 0, 0, NULL);
	push(V.fault_every, V_FAULT, 0, 0, NULL);
	push(V.run_ns, V_HEAL, 1, 0, NULL);
}

static bool run_seed(uint64_t seed)
{
	world_init(seed);
	uint64_t end = V.run_ns + V.heal_ns;
	while (V.q.len > 0 && !V.fail[0]) {
		if (V.q.v[0].t >= end)
			break;
		struct sim_event e = sim_queue_pop(&V.q);
		V.now = e.t;
		V.steps++;
		switch (e.type) {
		case V_DELIVER:
			on_deliver(e.p);
			break;
		case V_TICK:
			if (V.nodes[e.node].up)
				on_tick(e.node);
			else
				push(V.now + V.tick, V_TICK, e.node, 0, NULL);
			break;
		case V_SYNC:
			on_sync(e.p);
			break;
		case V_CLIENT:
			client_event(e.node, e.a);
			break;
		case V_FAULT:
			fault_event();
			break;
		case V_RESTART:
			if (!V.healed)
				node_restart(e.node);
			break;
		case V_HEAL:
			heal_event(e.node == 1);
			break;
		case V_COORD:
			if (V.coord_up)
				coord_step();
			push(V.now + rnd(10, 40) * MS, V_COORD, 0, 0, NULL);
			break;
		case V_COORD_UP:
			V.coord_up = true;
			break;
		case V_AGENT:
			agent_step(e.node);
			push(V.now + rnd(10, 40) * MS, V_AGENT, e.node, 0, NULL);
			break;
		default:
			SL_ASSERT(0);
		}
		if (V.crash_now != 0)
			crash_due(V.crash_now);
	}
	if (!V.fail[0]) {
		V.now = end;
		check_final();
	}
	if (V.fail[0] && g_verbose)
		dump();
	return V.fail[0] == 0;
}

/* ---- command line ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: sluice-sim --reconfig [--seed N | --seeds COUNT [--first N]] [--seed-file F]\n"
		"                  [--all-steps] [--ml-moves] [--keep-going] [-v]\n"
		"  --all-steps  fail unless every step of a reconfiguration saw its crash\n"
		"  --ml-moves   also move replicas of multileader regions (the joiner opens in\n"
		"               multileader's rejoin mode; ctld refuses such moves today)\n");
}

static uint64_t n_seeds;

static int run_one(uint64_t seed, uint64_t *failed)
{
	bool ok = run_seed(seed);
	n_seeds++;
	if (!ok) {
		(*failed)++;
		fprintf(stderr, "FAIL seed=%" PRIu64 ": %s\n", seed, V.fail);
		fprintf(stderr, "replay: sluice-sim --reconfig%s --seed %" PRIu64 " -v\n",
			g_ml_moves ? " --ml-moves" : "", seed);
	}
	world_free();
	return ok ? 0 : 1;
}

static int run_listed(void *failed, uint64_t seed) { return run_one(seed, failed); }

int sim_vlog_main(int argc, char **argv)
{
	struct sim_seed_args sa = {.first = 1, .count = 0};
	const char *seed_file = NULL;
	bool keep_going = false, all_steps = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (sim_seed_arg(argc, argv, &i, &sa))
			continue;
		if (strcmp(a, "--reconfig") == 0)
			continue;
		if (strcmp(a, "--seed-file") == 0 && i + 1 < argc)
			seed_file = argv[++i];
		else if (strcmp(a, "--keep-going") == 0)
			keep_going = true;
		else if (strcmp(a, "--all-steps") == 0)
			all_steps = true;
		else if (strcmp(a, "--ml-moves") == 0)
			g_ml_moves = true;
		else if (strcmp(a, "-v") == 0)
			g_verbose = true;
		else {
			usage();
			return 2;
		}
	}
	sim_seed_count_env(&sa.count);
	if (!sa.have_single && sa.count == 0 && seed_file == NULL)
		sa.count = 20;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t failed = 0;
	int rc = 0;
	if (seed_file != NULL)
		rc = sim_seed_file(seed_file, keep_going, run_listed, &failed);
	if (sa.have_single && rc == 0)
		rc |= run_one(sa.single, &failed);
	for (uint64_t s = sa.first; !sa.have_single && (rc == 0 || keep_going) && s < sa.first + sa.count; s++)
		rc |= run_one(s, &failed);
	double wall = sim_wall_since(&t0);
	printf("sluice-sim (reconfig mode): %s, %" PRIu64 " seeds (%" PRIu64 " failed), %" PRIu64
	       " steps in %.1f s wall\n",
	       rc == 0 ? "PASS" : "FAIL", n_seeds, failed, V.steps, wall);
	sim_print_counts("reconfigurations asked", kind_names, V.started, K_COUNT, 36);
	sim_print_counts("reconfigurations done", kind_names, V.done, K_COUNT, 36);
	sim_print_counts("switches done, by protocol", sw_names, V.sw, g_ml_moves ? SW_COUNT : SW_MOVE_ML, 36);
	sim_print_counts("learner phases (raft replica moves)", learn_names, V.learn, LN_COUNT, 44);
	sim_print_counts("steps reached", step_names, V.reached, ST_COUNT, 36);
	sim_print_counts("crashes at a step", step_names, V.crashes, ST_COUNT, 36);
	sim_print_counts("of them, sealing a multileader segment", step_names, V.crashes_ml, ST_COUNT, 36);
	sim_print_counts("faults injected", fault_names, V.faults, F_COUNT, 36);
	sim_print_counts("checkers verified", check_names, V.checks, C_COUNT, 44);
	sim_print_counts("writes", other_names, V.other, O_COUNT, 36);
	if (all_steps && rc == 0)
		for (int st = 0; st < ST_COUNT; st++)
			if (V.crashes[st] == 0) {
				printf("FAIL: no crash at step \"%s\" in these seeds (--all-steps)\n",
				       step_names[st]);
				rc = 1;
			}
	return rc;
}

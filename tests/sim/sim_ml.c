/* sim_ml.c - sluice-sim's multileader mode (--protocol multileader): one group of three
 * replicas, each through the region driver, over a simulated WAL (lost unsynced tails),
 * a faulty network (drop, duplicate, reorder, delay, one-way and symmetric partitions),
 * crashes, a peer dead for long, snapshots and compaction, and with --disk-loss a crashed
 * replica that comes back with an empty disk in rejoin mode; an LWW key-value model and the
 * checkers of convergence, per-session order, durability per ack level, CAD monotonic
 * reads and retention. A seed reproduces a whole run. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus.h"
#include "driver.h"
#include "lww.h"
#include "multileader.h"
#include "sim.h"
#include "sim_ml.h"
#include "sl_assert.h"
#include "sl_le.h"

#define NR 3u	     /* replicas (node ids 1..3) */
#define KEYS 6u	     /* few keys: writes from different origins collide */
#define SESS 3u	     /* one client session per replica: session s writes at node s */
#define MS 1000000ull
#define FAULT_MS 4000u
#define DRAIN_MS 6000u
#define RETENTION 2000u
#define UNDURABLE 512u
/* Snapshots carry filler after the model (checked on decode) so that, in messages of
 * MSG_MAX, one spans several chunks, more than the sender's window: the chunked transfer
 * with its losses, go-backs and resends runs in every seed that has a laggard. */
#define SNAP_PAD 5000u
#define SNAP_MAX 8192u
#define MSG_MAX 1024u
#define NET_MAX 65536u

struct lent {
	uint8_t *data;
	uint32_t len;
	uint32_t type; /* the entry type is part of what the WAL keeps (a SEAL) */
	uint32_t origin;
	uint64_t oidx;
};

struct kv {
	uint64_t value, hlc;
	uint32_t origin;
};

/* the model state machine: what a snapshot holds after the protocol's vector */
struct model {
	struct kv kv[KEYS];
	uint64_t sess_last[SESS + 1];
};

struct rep {
	uint32_t id;
	struct sl_drv *drv;
	bool up;
	uint64_t down_until;
	/* the WAL: entries [first, last], durable up to synced; the snapshot is durable */
	struct lent *ent;
	uint64_t cap, first, last, synced;
	uint64_t sync_at, sync_to; /* a sync in flight (sync_at 0: none) */
	uint8_t snap[SNAP_MAX];
	uint32_t snap_len;
	uint64_t snap_index;
	uint64_t snap_vec[NR + 1];
	struct sl_cons_log view;
	/* state machine */
	struct model m;
	uint64_t vec[NR + 1]; /* applied origin index by node */
	uint64_t dvec[NR + 1]; /* durable here (what survives a crash), omniscient */
	/* durable here when its disk was lost: a peer that heard of that copy before the loss
	 * may still count it (it was a durable copy when reported) */
	uint64_t lost_dvec[NR + 1];
	uint64_t floor;
	bool rejoin; /* its disk was lost: it runs in rejoin mode until its status says done */
};

struct nmsg {
	uint64_t at;
	uint32_t from, to, len;
	uint8_t *buf;
};

struct write_rec {
	uint64_t pid;
	uint32_t origin, k;
	uint64_t oidx;
	bool acked;
	bool crashed; /* its origin crashed before the ack: it may be lost (never acked) */
	uint64_t proposed_ms;
	/* acked at level 1, its only copy on a disk that was lost: gone (docs/multileader.md) */
	bool lost;
	uint64_t ack_no; /* S.acks when it was acked (1, 2, ...; 0: not acked) */
};

struct read_rec {
	uint64_t id;
	uint32_t at;
	uint64_t floor[NR + 1]; /* what every CAD read returned before this one was asked */
	uint64_t acks_before;	/* sync read: writes acked before it was asked (ack_no <= it) */
	bool sync, done;
};

static struct {
	uint64_t seed;
	struct sim_rng rng;
	uint64_t now_ms;
	char fail[512];
	struct rep r[NR];
	struct nmsg *net;
	uint32_t n_net;
	bool block[NR + 1][NR + 1];
	uint64_t block_until[NR + 1][NR + 1];
	uint32_t drop_ppm, dup_ppm, delay_max_ms;
	bool healed;
	uint32_t dead_node;
	uint64_t dead_from, dead_to;
	/* clients */
	uint64_t next_seq[SESS + 1];
	uint64_t next_write[SESS + 1];
	struct write_rec *w;
	uint32_t n_w, cap_w;
	uint64_t pid;
	struct read_rec rd[256];
	uint32_t n_rd;
	uint64_t cad_max[NR + 1];
	/* counters */
	uint64_t faults[8], checks[8], acks, reads_ok, writes;
	uint64_t snaps, laggards; /* snapshots merged, peers marked 'needs snapshot' */
	uint64_t chunks, chunks_refused, gobacks; /* snapshot chunks taken, refused; go-backs */
	uint64_t rejoins, rejoin_refused; /* rejoins completed; proposals refused meanwhile */
	bool verbose;
	bool disk_loss; /* --disk-loss */
	/* --seal: when the harness starts sealing (a replica at a time, until all are), each
	 * origin's end as each replica applied its SEAL (forgotten with a lost disk: a SEAL
	 * only that disk held is gone like a level-1 write), and counters */
	bool seal;
	uint64_t seal_at;
	uint64_t end_by[NR][NR + 1];
	uint64_t seal_attempts, seal_refused, sealed_reps;
} S;

enum {
	FT_DROP,
	FT_DUP,
	FT_DELAY,
	FT_PART_ONEWAY,
	FT_PART_SYM,
	FT_CRASH,
	FT_DEAD_LONG,
	FT_DISK_LOSS,
	FT_N
};
static const char *const ft_names[FT_N] = {"drop", "duplicate", "delay/reorder",
					   "partition one-way", "partition symmetric",
					   "crash+restart", "peer dead for long", "disk lost, rejoin"};
enum { CK_CONV, CK_SESSION, CK_DURABLE, CK_CAD, CK_RETENTION, CK_SYNC, CK_SEAL, CK_N };
static const char *const ck_names[CK_N] = {
    "convergence (equal digests after heal)", "per-session order",
    "durability per ack level", "CAD reads monotonic and majority-durable",
    "retention (writes go on, WAL bounded)",
    "sync reads show every write acked before them", "seal (--seal): entries and acks checked"};

static void fail(const char *checker, const char *fmt, ...)
{
	if (S.fail[0])
		return;
	int n = snprintf(S.fail, sizeof(S.fail), "t=%" PRIu64 "ms: %s: ", S.now_ms, checker);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(S.fail + n, sizeof(S.fail) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void trace(const char *fmt, ...)
{
	if (!S.verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%8" PRIu64 "ms ", S.now_ms);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

const struct sl_ml_opts sim_ml_opts = {
    .max_entry_bytes = 32,
    .max_batch_entries = 16,
    .batch_delay_ns = 2 * MS,
    .window_batches = 4,
    .rto_ns = 20 * MS,
    .rto_max_ns = 320 * MS,
    .heartbeat_ns = 20 * MS,
    .retention_entries = RETENTION,
    .max_undurable = UNDURABLE,
    .max_pending = UNDURABLE,
    .read_timeout_ns = 1500 * MS,
    .max_msg_bytes = MSG_MAX,
    .max_snapshot_bytes = SNAP_MAX,
};

/* ---- the WAL ---- */

static uint64_t l_first(void *c) { return ((struct rep *)c)->first; }
static uint64_t l_last(void *c) { return ((struct rep *)c)->last; }
static int l_term(void *c, uint64_t i, uint64_t *t)
{
	struct rep *r = c;
	if (i < r->first || i > r->last)
		return -1;
	*t = 1;
	return 0;
}
static int l_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	struct rep *r = c;
	if (i < r->first || i > r->last)
		return -1;
	const struct lent *e = &r->ent[i - r->first];
	memset(o, 0, sizeof(*o));
	o->term = 1;
	o->index = i;
	o->len = e->len;
	o->data = e->data;
	o->type = e->type;
	return 0;
}
static int l_snap(void *c, struct sl_cons_snapshot *o)
{
	struct rep *r = c;
	if (r->snap_len == 0)
		return -1;
	memset(o, 0, sizeof(*o));
	o->index = r->snap_index;
	o->term = 1;
	o->len = r->snap_len;
	o->data = r->snap;
	return 0;
}

static void log_drop_front(struct rep *r, uint64_t upto)
{
	if (upto < r->first)
		return;
	uint64_t n = upto - r->first + 1;
	if (n > r->last - r->first + 1)
		n = r->last - r->first + 1;
	for (uint64_t i = 0; i < n; i++)
		free(r->ent[i].data);
	memmove(r->ent, r->ent + n, (r->last - r->first + 1 - n) * sizeof(r->ent[0]));
	r->first += n;
}

static void log_truncate(struct rep *r, uint64_t last)
{
	for (uint64_t i = last + 1; i <= r->last; i++)
		free(r->ent[i - r->first].data);
	r->last = last;
}

/* what survives a crash of r, per origin: the snapshot and the synced entries */
static void dvec_recompute(struct rep *r)
{
	memcpy(r->dvec, r->snap_vec, sizeof(r->dvec));
	for (uint64_t i = r->first; i <= r->synced && i <= r->last; i++) {
		const struct lent *e = &r->ent[i - r->first];
		if (e->oidx > r->dvec[e->origin])
			r->dvec[e->origin] = e->oidx;
	}
}

/* ---- the model state machine ---- */

static uint32_t model_encode(const struct rep *r, uint8_t *buf)
{
	uint32_t ids[NR];
	uint64_t idx[NR];
	for (uint32_t i = 0; i < NR; i++) {
		ids[i] = i + 1;
		idx[i] = r->vec[i + 1];
	}
	uint32_t off = sl_ml_snap_vec_put(buf, SNAP_MAX, ids, idx, NR);
	SL_ASSERT(off > 0 && off + sizeof(r->m) + SNAP_PAD <= SNAP_MAX);
	memcpy(buf + off, &r->m, sizeof(r->m));
	off += (uint32_t)sizeof(r->m);
	for (uint32_t i = 0; i < SNAP_PAD; i++)
		buf[off + i] = (uint8_t)(i * 13 + i / 241);
	return off + SNAP_PAD;
}

static void model_decode(struct model *m, const uint8_t *d, uint32_t len, uint64_t *vec)
{
	uint32_t ids[NR], n;
	uint64_t idx[NR];
	int off = sl_ml_snap_vec_get(d, len, ids, idx, NR, &n);
	SL_ASSERT(off > 0 && len - (uint32_t)off == sizeof(*m) + SNAP_PAD);
	memset(vec, 0, (NR + 1) * sizeof(*vec));
	for (uint32_t i = 0; i < n; i++)
		vec[ids[i]] = idx[i];
	memcpy(m, d + off, sizeof(*m));
	/* the image arrived whole and in order: a chunk misplaced shows here */
	const uint8_t *pad = d + off + sizeof(*m);
	for (uint32_t i = 0; i < SNAP_PAD; i++)
		SL_ASSERT(pad[i] == (uint8_t)(i * 13 + i / 241));
}

static uint64_t model_digest(const struct rep *r)
{
	uint64_t h = sim_hash(r->m.kv, sizeof(r->m.kv), 3);
	return sim_hash(r->vec, sizeof(r->vec), h);
}

/* ---- driver host ---- */

/* A multileader snapshot merges (multileader.h): per key the LWW winner, per origin
 * and per session the higher position; the merged state is what is kept durably. */
static int h_install(void *ctx, const struct sl_cons_snapshot *sn)
{
	struct rep *r = ctx;
	SL_ASSERT(sn->len <= SNAP_MAX);
	struct model in;
	uint64_t vec[NR + 1];
	model_decode(&in, sn->data, sn->len, vec);
	for (uint32_t k = 0; k < KEYS; k++)
		if (sl_lww_wins(in.kv[k].hlc, in.kv[k].origin, r->m.kv[k].hlc, r->m.kv[k].origin))
			r->m.kv[k] = in.kv[k];
	for (uint32_t i = 1; i <= SESS; i++)
		if (in.sess_last[i] > r->m.sess_last[i])
			r->m.sess_last[i] = in.sess_last[i];
	for (uint32_t o = 1; o <= NR; o++)
		if (vec[o] > r->vec[o])
			r->vec[o] = vec[o];
	SL_ASSERT(sn->index == r->last && r->synced == r->last); /* the log stays */
	r->snap_len = model_encode(r, r->snap);
	r->snap_index = sn->index;
	memcpy(r->snap_vec, r->vec, sizeof(r->vec));
	r->floor = sn->index;
	dvec_recompute(r);
	trace("n%u merges a snapshot (vector now %" PRIu64 "/%" PRIu64 "/%" PRIu64 ")", r->id,
	      r->vec[1], r->vec[2], r->vec[3]);
	return 0;
}

static int h_save_hs(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos)
{
	(void)hs;
	*pos = ((struct rep *)ctx)->last;
	return 0;
}

static int h_save_entry(void *ctx, const struct sl_cons_entry *e, uint64_t *pos)
{
	struct rep *r = ctx;
	SL_ASSERT(e->index == r->last + 1);
	uint64_t n = e->index - r->first + 1;
	if (n > r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		while (r->cap < n)
			r->cap *= 2;
		r->ent = realloc(r->ent, r->cap * sizeof(r->ent[0]));
		SL_ASSERT(r->ent != NULL);
	}
	struct lent *l = &r->ent[n - 1];
	l->data = malloc(e->len ? e->len : 1);
	SL_ASSERT(l->data != NULL);
	memcpy(l->data, e->data, e->len);
	l->len = e->len;
	l->type = e->type;
	l->origin = e->origin;
	l->oidx = e->origin_index;
	SL_ASSERT(e->origin >= 1 && e->origin <= NR);
	r->last = e->index;
	*pos = e->index;
	return 0;
}

static void h_send(void *ctx, const struct sl_cons_msg *m)
{
	(void)ctx;
	if (S.n_net + 2 > NET_MAX)
		return; /* the network's buffer is full: lost like any message */
	for (int copy = 0; copy < 2; copy++) {
		if (copy == 1 && !(S.dup_ppm && sim_chance(&S.rng, S.dup_ppm)))
			break;
		if (S.drop_ppm && sim_chance(&S.rng, S.drop_ppm)) {
			S.faults[FT_DROP]++;
			continue;
		}
		S.faults[FT_DUP] += copy;
		uint64_t delay = 1 + (S.delay_max_ms ? sim_below(&S.rng, S.delay_max_ms) : 0);
		S.faults[FT_DELAY] += delay > 1;
		struct nmsg *n = &S.net[S.n_net++];
		*n = (struct nmsg){S.now_ms + delay, m->from, m->to, m->len, malloc(m->len)};
		memcpy(n->buf, m->buf, m->len);
	}
}

/* Seal checker at apply: (a) one end per origin stream, the same on every replica; (b) no
 * write of a stream is applied past its end. */
static void check_seal_apply(const struct rep *r, const struct sl_cons_entry *e)
{
	S.checks[CK_SEAL]++;
	for (uint32_t i = 0; i < NR; i++) {
		uint64_t end = S.end_by[i][e->origin];
		if (end == 0)
			continue;
		if (e->type == SL_CONS_ENTRY_SEAL && end != e->origin_index)
			fail("seal", "n%u applied n%u's SEAL at %" PRIu64 ", n%u at %" PRIu64, r->id,
			     e->origin, e->origin_index, i + 1, end);
		if (e->type == SL_CONS_ENTRY_NORMAL && e->origin_index > end)
			fail("seal", "n%u applied write n%u/%" PRIu64 ", past n%u's SEAL at %" PRIu64
			     " (as n%u applied it)", r->id, e->origin, e->origin_index, e->origin, end,
			     i + 1);
	}
	if (e->type == SL_CONS_ENTRY_SEAL && e->origin_index <= r->vec[e->origin])
		fail("seal", "n%u applied n%u's SEAL at %" PRIu64 " again (its stream is applied up to "
		     "%" PRIu64 ")", r->id, e->origin, e->origin_index, r->vec[e->origin]);
	if (e->type == SL_CONS_ENTRY_SEAL)
		S.end_by[r->id - 1][e->origin] = e->origin_index;
}

/* The end of origin o's stream as some replica applied it (0: none did). */
static uint64_t end_applied(uint32_t o)
{
	for (uint32_t i = 0; i < NR; i++)
		if (S.end_by[i][o] != 0)
			return S.end_by[i][o];
	return 0;
}

uint64_t sim_ml_own_end(void *ml, uint32_t self)
{
	struct sl_ml_origin o[SL_CONS_MAX_PEERS];
	uint32_t n = sl_ml_origins(ml, o, SL_CONS_MAX_PEERS);
	for (uint32_t i = 0; i < n; i++)
		if (o[i].node == self)
			return o[i].end;
	return 0;
}

static void h_apply(void *ctx, const struct sl_cons_entry *e)
{
	struct rep *r = ctx;
	SL_ASSERT(e->origin >= 1 && e->origin <= NR);
	if (S.seal)
		check_seal_apply(r, e);
	r->vec[e->origin] = e->origin_index;
	if (e->session >= 1 && e->session <= SESS) {
		S.checks[CK_SESSION]++;
		uint64_t *last = &r->m.sess_last[e->session];
		if (e->session_seq != *last + 1)
			fail("session-order", "n%u applied session %" PRIu64 " seq %" PRIu64
			     " after seq %" PRIu64 " (origin n%u index %" PRIu64 ")",
			     r->id, e->session, e->session_seq, *last, e->origin, e->origin_index);
		*last = e->session_seq;
	}
	if (e->len != 12)
		return;
	uint32_t key = sl_get_u32(e->data) % KEYS;
	struct kv *k = &r->m.kv[key];
	if (sl_lww_wins(e->hlc, e->origin, k->hlc, k->origin))
		*k = (struct kv){sl_get_u64(e->data + 4), e->hlc, e->origin};
}

static struct write_rec *write_by_pid(uint64_t pid)
{
	/* pids are handed out in order: binary search */
	uint32_t lo = 0, hi = S.n_w;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (S.w[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < S.n_w && S.w[lo].pid == pid ? &S.w[lo] : NULL;
}

/* Replicas holding origin o's stream up to idx durably, or that did until their disk was
 * lost (the checkers judge what a replica could know: the reports it had). */
static uint32_t durable_copies(uint32_t o, uint64_t idx)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < NR; i++)
		n += S.r[i].dvec[o] >= idx || S.r[i].lost_dvec[o] >= idx;
	return n;
}

static void h_ack(void *ctx, const struct sl_cons_ack *a)
{
	struct rep *r = ctx;
	struct write_rec *w = write_by_pid(a->proposal_id);
	SL_ASSERT(w != NULL && w->origin == r->id);
	if (a->status != SL_CONS_ACK_OK)
		return;
	w->acked = true;
	S.acks++;
	w->ack_no = S.acks;
	if (S.seal && end_applied(w->origin) != 0 && w->oidx >= end_applied(w->origin))
		fail("seal", "write n%u/%" PRIu64 " acked OK, not below its origin's SEAL at %" PRIu64,
		     w->origin, w->oidx, end_applied(w->origin));
	/* durable on at least k replicas right now (each copy then survives any crash) */
	uint32_t copies = durable_copies(w->origin, w->oidx);
	S.checks[CK_DURABLE]++;
	if (copies < w->k)
		fail("durability", "write n%u/%" PRIu64 " acked at level %u is durable on %u replica(s)",
		     w->origin, w->oidx, w->k, copies);
}

static void h_read(void *ctx, const struct sl_cons_read *rd)
{
	struct rep *r = ctx;
	struct read_rec *q = NULL;
	for (uint32_t i = 0; i < S.n_rd; i++)
		if (S.rd[i].id == rd->read_id)
			q = &S.rd[i];
	SL_ASSERT(q != NULL && q->at == r->id);
	q->done = true;
	if (rd->status != SL_CONS_ACK_OK)
		return;
	S.reads_ok++;
	if (q->sync) {
		/* every write acknowledged before the read was asked and not lost since (level
		 * 1, its origin's disk lost) is applied here */
		S.checks[CK_SYNC]++;
		for (uint32_t i = 0; i < S.n_w; i++) {
			const struct write_rec *w = &S.w[i];
			if (w->acked && !w->lost && w->ack_no <= q->acks_before &&
			    r->vec[w->origin] < w->oidx)
				fail("sync-read", "n%u served a sync read without write n%u/%" PRIu64
				     " acked before it (applied n%u's stream up to %" PRIu64 ")",
				     r->id, w->origin, w->oidx, w->origin, r->vec[w->origin]);
		}
		return;
	}
	S.checks[CK_CAD]++;
	for (uint32_t o = 1; o <= NR; o++) {
		uint32_t have = durable_copies(o, r->vec[o]);
		if (have < NR / 2 + 1)
			fail("cad-read", "n%u served origin n%u up to %" PRIu64
			     ", durable on %u replica(s) only", r->id, o, r->vec[o], have);
		if (r->vec[o] < q->floor[o])
			fail("cad-read", "n%u served origin n%u up to %" PRIu64
			     " after a CAD read had shown %" PRIu64, r->id, o, r->vec[o], q->floor[o]);
	}
	for (uint32_t o = 1; o <= NR; o++)
		if (r->vec[o] > S.cad_max[o])
			S.cad_max[o] = r->vec[o];
}

static const struct sl_drv_host host = {
    .install_snapshot = h_install,
    .save_hard_state = h_save_hs,
    .save_entry = h_save_entry,
    .send = h_send,
    .apply = h_apply,
    .ack = h_ack,
    .read = h_read,
};

/* ---- replicas ---- */

static void rep_start(struct rep *r)
{
	struct sl_drv_config dc;
	memset(&dc, 0, sizeof(dc));
	dc.protocol = "multileader";
	dc.cons.group_id = 1;
	dc.cons.self = r->id;
	dc.cons.n_voters = NR;
	for (uint32_t i = 0; i < NR; i++)
		dc.cons.voters[i] = i + 1;
	dc.cons.proto_opts = &sim_ml_opts;
	dc.cons.rejoin = r->rejoin;
	r->view = (struct sl_cons_log){r, l_first, l_last, l_term, l_entry, l_snap};
	dc.cons.log = &r->view;
	dc.max_entry_bytes = 32;
	dc.max_inflight = UNDURABLE;
	/* the state machine comes back from the snapshot, the log is applied on top */
	memset(&r->m, 0, sizeof(r->m));
	memset(r->vec, 0, sizeof(r->vec));
	r->floor = 0;
	if (r->snap_len > 0) {
		model_decode(&r->m, r->snap, r->snap_len, r->vec);
		r->floor = r->snap_index;
	}
	dc.applied_index = r->floor;
	struct sl_drv_host h = host;
	h.ctx = r;
	int rc = sl_drv_create(&dc, &h, &r->drv);
	SL_ASSERT(rc == 0);
	r->up = true;
	r->sync_at = 0;
	sl_drv_tick(r->drv, S.now_ms * MS);
	sl_drv_process(r->drv, 1000);
}

static void add_stats(struct rep *r)
{
	struct sl_ml_stats x;
	sl_ml_stats(sl_drv_instance(r->drv), &x);
	S.snaps += x.snapshots_installed;
	S.laggards += x.over_retention;
	S.chunks += x.snapshot_chunks_received;
	S.chunks_refused += x.snapshot_chunks_refused;
	S.gobacks += x.snapshot_gobacks + x.snapshot_resends;
	S.rejoin_refused += x.rejoin_refused;
}

static void rep_crash(struct rep *r)
{
	add_stats(r);
	sl_drv_destroy(r->drv);
	r->drv = NULL;
	r->up = false;
	/* the unsynced tail survives only in part (a prefix of it) */
	uint64_t keep = r->synced;
	if (r->last > r->synced)
		keep += sim_below(&S.rng, r->last - r->synced + 1);
	log_truncate(r, keep);
	r->synced = r->last;
	dvec_recompute(r);
	for (uint32_t i = 0; i < S.n_w; i++)
		S.w[i].crashed |= S.w[i].origin == r->id && !S.w[i].acked;
}

/* Highest index of origin `o`'s stream that replica q holds in any form (log, snapshot,
 * applied state), durable or not yet. */
static uint64_t held_of(const struct rep *q, uint32_t o)
{
	uint64_t h = q->snap_vec[o] > q->vec[o] ? q->snap_vec[o] : q->vec[o];
	for (uint64_t i = q->first; i <= q->last; i++)
		if (q->ent[i - q->first].origin == o && q->ent[i - q->first].oidx > h)
			h = q->ent[i - q->first].oidx;
	return h;
}

/* --disk-loss: the crashed replica's disk is gone (one at a time: two lost disks can
 * lose what only they held at level 2); it restarts empty, in rejoin mode. Writes acked
 * at level 1 that no other replica holds are gone with it; one acked at a higher level
 * must be held elsewhere. */
static void rep_lose_disk(struct rep *r)
{
	for (uint32_t i = 0; i < NR; i++)
		if (S.r[i].rejoin)
			return;
	if (!sim_chance(&S.rng, 250000))
		return;
	uint64_t elsewhere = 0;
	for (uint32_t i = 0; i < NR; i++)
		if (&S.r[i] != r && held_of(&S.r[i], r->id) > elsewhere)
			elsewhere = held_of(&S.r[i], r->id);
	for (uint32_t i = 0; i < S.n_w; i++) {
		struct write_rec *w = &S.w[i];
		if (w->origin != r->id || !w->acked || w->oidx <= elsewhere)
			continue;
		if (w->k > 1)
			fail("durability", "write n%u/%" PRIu64 " acked at level %u was only on n%u's "
			     "lost disk", w->origin, w->oidx, w->k, r->id);
		w->lost = true;
	}
	for (uint32_t o = 1; o <= NR; o++)
		if (r->dvec[o] > r->lost_dvec[o])
			r->lost_dvec[o] = r->dvec[o];
	memset(S.end_by[r->id - 1], 0, sizeof(S.end_by[0])); /* what it applied is gone */
	log_truncate(r, r->first - 1);
	r->first = 1;
	r->last = r->synced = 0;
	r->snap_len = 0;
	r->snap_index = 0;
	memset(r->snap_vec, 0, sizeof(r->snap_vec));
	dvec_recompute(r);
	r->rejoin = true;
	S.faults[FT_DISK_LOSS]++;
	trace("n%u's disk is lost (its stream survives up to %" PRIu64 ")", r->id, elsewhere);
}

static void rep_restart(struct rep *r)
{
	rep_start(r);
	/* the session of this home replica resumes after what it holds (once it rejoined,
	 * when its disk was lost: it takes no write before) */
	S.next_seq[r->id] = r->m.sess_last[r->id] + 1;
	trace("n%u restarts: log %" PRIu64 "..%" PRIu64 ", session seq %" PRIu64, r->id, r->first,
	      r->last, S.next_seq[r->id]);
}

/* the caller's compaction: snapshot what is applied, drop what no live peer needs */
static void rep_compact(struct rep *r)
{
	void *st = sl_drv_instance(r->drv);
	uint64_t applied = sl_drv_applied(r->drv);
	if (applied < r->first || applied > r->synced)
		return;
	r->snap_len = model_encode(r, r->snap);
	r->snap_index = applied;
	memcpy(r->snap_vec, r->vec, sizeof(r->vec));
	uint64_t upto = sl_ml_safe_delete(st);
	if (upto > applied)
		upto = applied;
	log_drop_front(r, upto);
	dvec_recompute(r);
}

static void rep_step_inner(struct rep *r);

static void rep_step(struct rep *r)
{
	if (!r->up)
		return;
	struct sl_ml_stats a, b;
	void *st = sl_drv_instance(r->drv);
	sl_ml_stats(st, &a);
	rep_step_inner(r);
	sl_ml_stats(st, &b);
	struct sl_cons_status cs;
	sl_cons_multileader_ops.status(st, &cs);
	if (S.seal && b.past_seal > 0)
		fail("seal", "n%u found %" PRIu64 " committed write(s) past their origin's SEAL "
		     "(the apply guard turned them into no-ops)", r->id, b.past_seal);
	if (r->rejoin && !cs.rejoining) {
		r->rejoin = false;
		S.rejoins++;
		S.next_seq[r->id] = r->m.sess_last[r->id] + 1;
		trace("n%u rejoined: own stream from %" PRIu64 ", session seq %" PRIu64, r->id,
		      sl_ml_last_own(st) + 1, S.next_seq[r->id]);
	}
	if (b.over_retention > a.over_retention) {
		struct sl_ml_peer p[NR];
		uint32_t np = sl_ml_peers(st, p, NR);
		for (uint32_t j = 0; j < np; j++)
			if (p[j].needs_snapshot)
				trace("n%u: peer n%u past retention (acked %" PRIu64 ", cursor %" PRIu64
				      ", own last %" PRIu64 ", log %" PRIu64 "..%" PRIu64 ")",
				      r->id, p[j].node, p[j].acked, p[j].cursor, sl_ml_last_own(st),
				      r->first, r->last);
	}
}

static void rep_step_inner(struct rep *r)
{
	sl_drv_tick(r->drv, S.now_ms * MS);
	sl_drv_process(r->drv, 1000);
	if (r->sync_at != 0 && S.now_ms >= r->sync_at) {
		r->synced = r->sync_to > r->synced ? r->sync_to : r->synced;
		r->sync_at = 0;
		dvec_recompute(r);
		sl_drv_durable(r->drv, r->synced);
		sl_drv_persisted(r->drv, 1, r->synced);
		sl_drv_process(r->drv, 1000);
	}
	if (r->sync_at == 0 && r->last > r->synced) {
		r->sync_at = S.now_ms + sim_range(&S.rng, 1, 4);
		r->sync_to = r->last;
	}
}

/* ---- faults ---- */

static void fault_step(void)
{
	uint64_t t = S.now_ms;
	for (uint32_t a = 1; a <= NR; a++)
		for (uint32_t b = 1; b <= NR; b++)
			if (S.block[a][b] && t >= S.block_until[a][b])
				S.block[a][b] = false;
	if (sim_chance(&S.rng, 4000)) { /* a partition, one-way or both ways */
		uint32_t a = 1 + (uint32_t)sim_below(&S.rng, NR), b = 1 + (uint32_t)sim_below(&S.rng, NR);
		if (a != b) {
			bool sym = sim_chance(&S.rng, 500000);
			uint64_t until = t + sim_range(&S.rng, 50, 800);
			S.block[a][b] = true;
			S.block_until[a][b] = until;
			if (sym) {
				S.block[b][a] = true;
				S.block_until[b][a] = until;
			}
			S.faults[sym ? FT_PART_SYM : FT_PART_ONEWAY]++;
			trace("partition n%u%sn%u until %" PRIu64, a, sym ? "<->" : "->", b, until);
		}
	}
	bool any_down = false;
	for (uint32_t i = 0; i < NR; i++)
		any_down |= !S.r[i].up;
	if (!any_down && sim_chance(&S.rng, 2000)) { /* one crash at a time */
		struct rep *r = &S.r[sim_below(&S.rng, NR)];
		rep_crash(r);
		if (S.disk_loss)
			rep_lose_disk(r);
		r->down_until = t + sim_range(&S.rng, 20, 400);
		S.faults[FT_CRASH]++;
		trace("n%u crashes until %" PRIu64, r->id, r->down_until);
	}
	if (S.dead_node && t == S.dead_from && S.r[S.dead_node - 1].up) {
		struct rep *r = &S.r[S.dead_node - 1];
		rep_crash(r);
		if (S.disk_loss)
			rep_lose_disk(r);
		r->down_until = S.dead_to;
		S.faults[FT_DEAD_LONG]++;
		trace("n%u dead until %" PRIu64, r->id, r->down_until);
	}
}

/* ---- clients ---- */

static void client_step(void)
{
	for (uint32_t s = 1; s <= SESS; s++) {
		struct rep *r = &S.r[s - 1];
		if (!r->up || S.now_ms < S.next_write[s])
			continue;
		S.next_write[s] = S.now_ms + sim_range(&S.rng, 0, 3);
		uint8_t p[12];
		sl_put_u32(p, (uint32_t)sim_below(&S.rng, KEYS));
		sl_put_u64(p + 4, S.writes + 1);
		struct sl_ml_prop pr = {s, S.next_seq[s], 1 + (uint32_t)sim_below(&S.rng, 2)};
		void *st = sl_drv_instance(r->drv);
		uint64_t end = S.seal ? sim_ml_own_end(st, r->id) : 0;
		int rc = sl_ml_propose(st, S.pid + 1, p, sizeof(p), &pr);
		if (rc == -EROFS)
			S.seal_refused++;
		if (rc == 0 && end != 0)
			fail("seal", "n%u took a write (its index %" PRIu64 ") after its SEAL at %" PRIu64,
			     r->id, sl_ml_last_own(st), end);
		if (rc != 0)
			continue; /* a bound reached, or sealed: the client backs off */
		S.pid++;
		S.writes++;
		S.next_seq[s]++;
		if (S.n_w == S.cap_w) {
			S.cap_w = S.cap_w ? 2 * S.cap_w : 4096;
			S.w = realloc(S.w, S.cap_w * sizeof(S.w[0]));
			SL_ASSERT(S.w != NULL);
		}
		S.w[S.n_w++] = (struct write_rec){S.pid, r->id, pr.ack_copies, sl_ml_last_own(st), false,
						  false, S.now_ms};
	}
	/* CAD and sync reads at a random replica */
	if (sim_chance(&S.rng, 150000) && S.n_rd < 256) {
		struct rep *r = &S.r[sim_below(&S.rng, NR)];
		if (r->up) {
			struct read_rec *q = &S.rd[S.n_rd];
			q->id = 1000 + S.n_rd;
			q->at = r->id;
			q->done = false;
			q->sync = sim_chance(&S.rng, 333333);
			q->acks_before = S.acks;
			memcpy(q->floor, S.cad_max, sizeof(q->floor));
			if ((q->sync ? sl_ml_read_sync(sl_drv_instance(r->drv), q->id)
				     : sl_drv_read(r->drv, q->id)) == 0)
				S.n_rd++;
		}
	}
}

/* --seal: from seal_at on, every 20 ms the next replica in turn is asked to seal (it
 * says -EALREADY once its stream is sealed, by this or by a peer's SEAL), until every
 * replica reports the whole segment applied (status.sealed_index). */
static void seal_step(void)
{
	if (!S.seal || S.now_ms < S.seal_at || S.now_ms % 20 != 0)
		return;
	struct rep *r = &S.r[(S.now_ms / 20) % NR];
	if (!r->up)
		return;
	static const uint8_t epoch[8] = {'e', 'p', 'o', 'c', 'h', 0, 0, 2};
	int rc = sl_drv_seal(r->drv, 0, epoch, sizeof(epoch));
	S.seal_attempts += rc == 0;
	trace("n%u seal: %d", r->id, rc);
}

static void deliver_step(void)
{
	uint32_t i = 0;
	while (i < S.n_net) {
		struct nmsg *m = &S.net[i];
		if (m->at > S.now_ms) {
			i++;
			continue;
		}
		struct nmsg c = *m;
		*m = S.net[--S.n_net]; /* out of order: the network reorders */
		struct rep *to = &S.r[c.to - 1];
		if (to->up && !S.block[c.from][c.to]) {
			struct sl_cons_msg cm = {1, c.from, c.to, c.len, c.buf};
			sl_drv_step(to->drv, &cm);
		}
		free(c.buf);
	}
}

/* ---- checks ---- */

static void check_retention(void)
{
	for (uint32_t i = 0; i < NR; i++) {
		struct rep *r = &S.r[i];
		if (!r->up)
			continue;
		S.checks[CK_RETENTION]++;
		uint64_t sd = sl_ml_safe_delete(sl_drv_instance(r->drv));
		uint64_t pinned = r->last - (sd < r->last ? sd : r->last);
		if (pinned > RETENTION + UNDURABLE)
			fail("retention", "n%u keeps %" PRIu64 " log entries it may not delete (bound %u)",
			     r->id, pinned, RETENTION + UNDURABLE);
	}
	/* a write at a live origin is acknowledged in bounded time, dead peer or not */
	if (!S.healed && S.n_w > 0) {
		for (uint32_t i = S.n_w; i-- > 0;) {
			struct write_rec *w = &S.w[i];
			if (w->proposed_ms + 2000 > S.now_ms)
				continue;
			if (w->acked || w->crashed || w->k > 1)
				break;
			if (w->proposed_ms > 2000) /* level 1 needs no peer at all */
				fail("retention", "write n%u/%" PRIu64 " at level 1 not acked after 2000ms",
				     w->origin, w->oidx);
			break;
		}
	}
}

static void check_final(void)
{
	uint64_t d0 = model_digest(&S.r[0]);
	S.checks[CK_CONV]++;
	for (uint32_t i = 1; i < NR; i++) {
		uint64_t d = model_digest(&S.r[i]);
		if (d == d0)
			continue;
		uint32_t key = 0;
		while (key < KEYS && memcmp(&S.r[0].m.kv[key], &S.r[i].m.kv[key], sizeof(struct kv)) == 0)
			key++;
		fail("convergence", "n%u's digest differs from n1's (vectors %" PRIu64 "/%" PRIu64
		     "/%" PRIu64 " vs %" PRIu64 "/%" PRIu64 "/%" PRIu64 ", first key differing %u)",
		     i + 1, S.r[i].vec[1], S.r[i].vec[2], S.r[i].vec[3], S.r[0].vec[1],
		     S.r[0].vec[2], S.r[0].vec[3], key);
		return;
	}
	/* every acknowledged write is on every replica */
	for (uint32_t i = 0; i < S.n_w; i++) {
		const struct write_rec *w = &S.w[i];
		if (!w->acked || w->lost)
			continue;
		S.checks[CK_DURABLE]++;
		for (uint32_t j = 0; j < NR; j++)
			if (S.r[j].vec[w->origin] < w->oidx) {
				fail("durability", "write n%u/%" PRIu64 " acked at level %u missing on n%u",
				     w->origin, w->oidx, w->k, j + 1);
				return;
			}
	}
	for (uint32_t j = 0; j < NR; j++)
		for (uint32_t o = 1; o <= NR; o++)
			if (S.r[j].vec[o] != S.r[o - 1].vec[o])
				fail("convergence", "n%u holds n%u's stream up to %" PRIu64
				     ", its origin up to %" PRIu64, j + 1, o, S.r[j].vec[o],
				     S.r[o - 1].vec[o]);
}

/* Seal, at the end: every replica has applied every stream exactly up to its end (the
 * same ends everywhere, and the one any replica applied as a SEAL entry: a replica whose
 * stream came back in a snapshot learns an end without applying it) and says so
 * (status.sealed_index), and every acknowledged write lies below its origin's end. */
static void check_seal_final(void)
{
	uint64_t ends[NR + 1] = {0};
	for (uint32_t o = 1; o <= NR; o++)
		ends[o] = end_applied(o);
	for (uint32_t i = 0; i < NR && !S.fail[0]; i++) {
		struct rep *r = &S.r[i];
		void *st = sl_drv_instance(r->drv);
		struct sl_cons_status cs;
		sl_cons_multileader_ops.status(st, &cs);
		struct sl_ml_origin o[NR];
		uint32_t n = sl_ml_origins(st, o, NR);
		if (cs.sealed_index == 0) {
			fail("seal", "n%u never applied the whole segment (sealed_index 0; ends %" PRIu64
			     "/%" PRIu64 "/%" PRIu64 "%s)", r->id, o[0].end, o[1].end, o[2].end,
			     cs.rejoining ? ", still rejoining" : "");
			return;
		}
		S.sealed_reps++;
		for (uint32_t j = 0; j < n; j++) {
			uint32_t node = o[j].node;
			if (ends[node] == 0)
				ends[node] = o[j].end; /* the first replica's, for the others */
			if (o[j].end != ends[node] || r->vec[node] != o[j].end)
				fail("seal", "n%u: n%u's stream ends at %" PRIu64 " (elsewhere: %" PRIu64
				     "), applied up to %" PRIu64, r->id, node, o[j].end, ends[node],
				     r->vec[node]);
		}
	}
	for (uint32_t i = 0; i < S.n_w && !S.fail[0]; i++) {
		const struct write_rec *w = &S.w[i];
		S.checks[CK_SEAL]++;
		if (w->acked && !w->lost && w->oidx >= ends[w->origin])
			fail("seal", "write n%u/%" PRIu64 " acked OK, not below its origin's SEAL at %" PRIu64,
			     w->origin, w->oidx, ends[w->origin]);
	}
}

static void world_free(void)
{
	for (uint32_t i = 0; i < NR; i++) {
		struct rep *r = &S.r[i];
		if (r->drv)
			sl_drv_destroy(r->drv);
		r->drv = NULL;
		for (uint64_t j = r->first; j <= r->last; j++)
			free(r->ent[j - r->first].data);
		free(r->ent);
	}
	for (uint32_t i = 0; i < S.n_net; i++)
		free(S.net[i].buf);
	free(S.net);
	free(S.w);
}

/* each replica's view of its peers and origins, after a failure (-v) */
static void dump(void)
{
	for (uint32_t i = 0; i < NR; i++) {
		struct rep *r = &S.r[i];
		if (!r->up)
			continue;
		void *st = sl_drv_instance(r->drv);
		struct sl_ml_peer p[NR];
		struct sl_ml_origin o[NR];
		struct sl_ml_stats x;
		sl_ml_stats(st, &x);
		uint32_t np = sl_ml_peers(st, p, NR), no = sl_ml_origins(st, o, NR);
		fprintf(stderr, "n%u: log %" PRIu64 "..%" PRIu64 " synced %" PRIu64 "\n", r->id,
			r->first, r->last, r->synced);
		for (uint32_t j = 0; j < np; j++)
			fprintf(stderr, "  peer n%u acked %" PRIu64 " cursor %" PRIu64 "%s%s\n", p[j].node,
				p[j].acked, p[j].cursor, p[j].needs_snapshot ? " needs-snapshot" : "",
				p[j].probing ? " probing" : "");
		for (uint32_t j = 0; j < no; j++)
			fprintf(stderr, "  origin n%u received %" PRIu64 " durable %" PRIu64
				" applied %" PRIu64 "\n", o[j].node, o[j].received, o[j].durable,
				o[j].applied);
		fprintf(stderr, "  batches %" PRIu64 "/%" PRIu64 " gaps %" PRIu64 " stale %" PRIu64
			" bad %" PRIu64 " busy %" PRIu64 " outbox %" PRIu64 " snaps sent %" PRIu64
			" unavailable %" PRIu64 " refused %" PRIu64 " installed %" PRIu64 "\n",
			x.batches_sent, x.batches_received, x.gap_batches, x.stale_batches, x.msgs_bad,
			x.busy_dropped, x.outbox_dropped, x.snapshots_sent, x.snapshots_unavailable,
			x.snapshots_refused, x.snapshots_installed);
	}
}

static bool run_seed(uint64_t seed, bool verbose, bool disk_loss, bool seal)
{
	memset(&S, 0, sizeof(S));
	S.seed = seed;
	S.verbose = verbose;
	S.disk_loss = disk_loss;
	S.seal = seal;
	/* from the seed, not the run's random stream: a seed runs as without --seal until
	 * the first seal */
	S.seal_at = 1500 + sim_hash(&seed, sizeof(seed), 77) % 3500;
	S.rng.s = seed * 0x2545f4914f6cdd1dull + 7;
	S.net = calloc(NET_MAX, sizeof(*S.net));
	SL_ASSERT(S.net != NULL);
	S.now_ms = 1000;
	S.drop_ppm = (uint32_t)sim_below(&S.rng, 150000);
	S.dup_ppm = (uint32_t)sim_below(&S.rng, 100000);
	S.delay_max_ms = (uint32_t)sim_range(&S.rng, 1, 30);
	if (sim_chance(&S.rng, 500000)) {
		S.dead_node = 1 + (uint32_t)sim_below(&S.rng, NR);
		S.dead_from = S.now_ms + sim_range(&S.rng, 100, 800);
		S.dead_to = S.dead_from + 2500;
	}
	for (uint32_t i = 0; i < NR; i++) {
		S.r[i].id = i + 1;
		S.r[i].first = 1;
		rep_start(&S.r[i]);
	}
	for (uint32_t s = 1; s <= SESS; s++)
		S.next_seq[s] = 1;
	uint64_t heal_at = 1000 + FAULT_MS, end = heal_at + DRAIN_MS;
	for (; S.now_ms < end && !S.fail[0]; S.now_ms++) {
		if (S.now_ms < heal_at) {
			fault_step();
			client_step();
		} else if (!S.healed) {
			S.healed = true;
			S.drop_ppm = S.dup_ppm = 0;
			S.delay_max_ms = 1;
			memset(S.block, 0, sizeof(S.block));
			trace("heal");
		}
		for (uint32_t i = 0; i < NR; i++) {
			struct rep *r = &S.r[i];
			if (!r->up && S.now_ms >= r->down_until)
				rep_restart(r);
		}
		seal_step();
		deliver_step();
		for (uint32_t i = 0; i < NR; i++)
			rep_step(&S.r[i]);
		if (S.now_ms % 50 == 0)
			for (uint32_t i = 0; i < NR; i++)
				if (S.r[i].up)
					rep_compact(&S.r[i]);
		if (S.now_ms % 10 == 0)
			check_retention();
	}
	if (!S.fail[0])
		check_final();
	if (!S.fail[0] && S.seal)
		check_seal_final();
	for (uint32_t i = 0; i < NR; i++)
		if (S.r[i].up)
			add_stats(&S.r[i]);
	if (S.fail[0] && verbose)
		dump();
	return S.fail[0] == 0;
}

int sim_ml_main(int argc, char **argv)
{
	struct sim_seed_args sa = {.first = 1, .count = 20};
	bool keep_going = false, verbose = false, disk_loss = false, seal = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (sim_seed_arg(argc, argv, &i, &sa)) {
			continue;
		} else if (strcmp(a, "--protocol") == 0 && i + 1 < argc) {
			i++;
		} else if (strcmp(a, "--keep-going") == 0) {
			keep_going = true;
		} else if (strcmp(a, "-v") == 0) {
			verbose = true;
		} else if (strcmp(a, "--disk-loss") == 0) {
			disk_loss = true;
		} else if (strcmp(a, "--seal") == 0) {
			seal = true;
		} else {
			fprintf(stderr, "usage: sluice-sim --protocol multileader [--seed N | --seeds "
					"COUNT [--first N]] [--disk-loss] [--seal] [--keep-going] [-v]\n");
			return 2;
		}
	}
	sim_seed_count_env(&sa.count);
	if (sa.have_single) {
		sa.first = sa.single;
		sa.count = 1;
	}
	uint64_t faults[FT_N] = {0}, checks[CK_N] = {0}, failed = 0, seeds = 0, acks = 0, reads = 0;
	uint64_t snaps = 0, laggards = 0, chunks = 0, chunks_refused = 0, gobacks = 0;
	uint64_t rejoins = 0, rejoin_refused = 0, seal_attempts = 0, seal_refused = 0, sealed = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t s = sa.first; s < sa.first + sa.count && (failed == 0 || keep_going); s++) {
		bool ok = run_seed(s, verbose, disk_loss, seal);
		seeds++;
		for (int i = 0; i < FT_N; i++)
			faults[i] += S.faults[i];
		for (int i = 0; i < CK_N; i++)
			checks[i] += S.checks[i];
		acks += S.acks;
		reads += S.reads_ok;
		snaps += S.snaps;
		laggards += S.laggards;
		chunks += S.chunks;
		chunks_refused += S.chunks_refused;
		gobacks += S.gobacks;
		rejoins += S.rejoins;
		rejoin_refused += S.rejoin_refused;
		seal_attempts += S.seal_attempts;
		seal_refused += S.seal_refused;
		sealed += S.sealed_reps;
		if (!ok) {
			failed++;
			fprintf(stderr, "FAIL seed=%" PRIu64 ": %s\n", s, S.fail);
			fprintf(stderr, "replay: %s --protocol multileader%s%s --seed %" PRIu64 " -v\n",
				argv[0], disk_loss ? " --disk-loss" : "", seal ? " --seal" : "", s);
		}
		world_free();
	}
	double wall = sim_wall_since(&t0);
	printf("sluice-sim (multileader mode): %s, %" PRIu64 " seeds (%" PRIu64
	       " failed) in %.1f s wall, %" PRIu64 " writes acked, %" PRIu64 " reads served (CAD and sync)\n",
	       failed ? "FAIL" : "PASS", seeds, failed, wall, acks, reads);
	printf("peers past retention %" PRIu64 ", snapshots merged %" PRIu64 " (chunks taken %" PRIu64
	       ", refused %" PRIu64 ", go-backs and resends %" PRIu64 ")\n",
	       laggards, snaps, chunks, chunks_refused, gobacks);
	if (disk_loss)
		printf("disks lost %" PRIu64 ", rejoins completed %" PRIu64 " (writes refused meanwhile "
		       "%" PRIu64 ")\n", faults[FT_DISK_LOSS], rejoins, rejoin_refused);
	if (seal)
		printf("seals accepted %" PRIu64 ", replicas that applied the whole segment %" PRIu64
		       ", writes refused sealed %" PRIu64 "\n", seal_attempts, sealed, seal_refused);
	sim_print_counts("faults injected", ft_names, faults, FT_N, 22);
	/* the seal checker's line only with --seal: other runs print what they did before */
	sim_print_counts("checkers verified", ck_names, checks, seal ? CK_N : CK_SEAL, 44);
	return failed ? 1 : 0;
}

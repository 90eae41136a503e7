/* node.c - sluiced's node core. Each worker lcore owns a set of regions (its store and its
 * consensus group), one WAL and a share of the shm ingest slots. A point read from a client
 * slot is routed by series id to the region's owner through a per-core-pair rte_ring;
 * the owner batches points into one proposal per region per poll round, persists the
 * entries through its WAL (group commit), applies committed entries to the store and
 * sends per-batch acknowledgements back to the core that read the batch. Nothing is
 * acknowledged before the WAL says it is durable. Shared-nothing: only the owning core
 * touches a region; the main lcore talks to workers through request rings. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "arena.h"
#include "batch.h"
#include "consensus.h"
#include "ingest.h"
#include "lineproto.h"
#include "pkt.h"
#include "raft.h"
#include "rlog.h"
#include "session.h"
#include "port.h"
#include "node.h"
#include "sl_assert.h"
#include "sl_le.h"
#include "stats.h"
#include "store.h"
#include "wal.h"

#define XMSG_BYTES (72u << 10) /* encoded points per cross-core message: fits the largest */
#define XMSG_ACKS 64         /* acks per cross-core message */
#define XMSG_POOL 1024       /* messages in the pool */
#define XRING_SIZE 1024      /* per core pair */
#define PEND_MAX 16384       /* client batches in flight per worker */
#define PROP_SLOTS 8         /* proposals in flight per region */
#define PROP_RUNS 256        /* (core, batch) runs in one proposal */
#define PROP_BYTES (512u << 10)
#define LSNQ_SIZE 65536      /* WAL records not yet applied, per worker */
#define INGEST_BURST 256
#define CTLQ_SIZE 16
#define WAL_REC_ENTRY 1
#define WAL_REC_HARDSTATE 2 /* kind u8 (2), region u32, term u64, vote u32, commit u64 */
#define HARDSTATE_BYTES 25
#define WAL_REC_SESSION 3 /* kind u8 (3), session u64, seq u64, stored u32, count u32 */
#define SESSION_REC_BYTES 25
#define SESSQ_SIZE 16384      /* session batches waiting for their session record */
#define SESS_CAPACITY 4096    /* sessions per worker */
#define ACK_BACKLOG 65536     /* acks per destination core waiting for ring room */
#define OUTBOX_SIZE 256       /* read requests/results waiting for ring room */
#define RAFT_PROP_BYTES (240u << 10) /* raft copies proposals into messages of bounded size */
#define NO_ACK UINT32_MAX /* points that nobody waits for (line protocol) */
#define RX_BURST 32
#define NET_UDP_PAYLOAD_MAX 1472 /* UDP payload of a 1500-byte IPv4 frame */
#define ENTRY_HDR 25 /* kind u8, region u32, term u64, index u64, type u32 */

enum { XMSG_POINTS = 1, XMSG_ACK = 2, XMSG_READ = 3, XMSG_READ_RESULT = 4 };

/* Where a reply to a network request goes: the port it came in on, the peer's addresses. */
struct reply_addr {
	uint16_t port;
	uint16_t udp_port;
	uint32_t ip;
	uint8_t mac[6];
};

/* A session READ travelling to the region's core, and its result frame back. */
struct read_req {
	uint64_t request_id;
	int64_t from, to;
	uint32_t max;
	uint16_t key_len;
	uint8_t level;
	char key[SL_KEY_MAX];
	struct reply_addr ra;
};

/* A routed point inside a message: this header, then the key, then the string value;
 * 8-byte aligned. Host byte order: it never leaves the process. */
struct xpoint {
	uint64_t series_id;
	int64_t ts;
	uint64_t value;
	uint32_t handle; /* pending batch on the source core, or NO_ACK */
	uint32_t str_len;
	uint16_t region;
	uint16_t key_len;
	uint8_t type;
};

static size_t xpoint_size(const struct sl_point *p)
{
	size_t n = sizeof(struct xpoint) + p->key_len + (p->type == SL_VAL_STR ? p->str_len : 0);
	return (n + 7u) & ~(size_t)7u;
}

struct xack {
	uint32_t handle;
	uint32_t n_points;
	uint32_t n_stored;
	int32_t status;
};

struct xmsg {
	uint16_t kind;
	uint16_t src;
	uint32_t n;    /* points or acks */
	uint32_t pos;  /* points consumed so far (a region may have had no room) */
	uint32_t off;  /* byte offset of the next point to consume */
	uint32_t used; /* bytes of encoded points, or of a READ_RESULT frame */
	struct read_req rq; /* XMSG_READ, XMSG_READ_RESULT */
	union {
		_Alignas(8) uint8_t buf[XMSG_BYTES];
		struct xack acks[XMSG_ACKS];
	};
};

struct prop_run {
	uint16_t src;
	uint32_t handle;
	uint32_t n_points;
	uint32_t n_stored;
};

struct proposal {
	bool in_use;
	bool proposed;
	uint64_t ack_wait; /* committed at this index: ack once it is applied */
	uint8_t *buf;
	struct sl_batch b;
	uint32_t n_points;
	uint32_t n_runs;
	struct prop_run runs[PROP_RUNS];
};

struct region {
	uint32_t id;
	uint32_t worker;
	uint64_t hash_lo, hash_hi;
	struct sl_store *store;
	const struct sl_cons_ops *ops;
	void *cons;
	uint64_t last_index;    /* highest index in the log (recovered or appended) */
	uint64_t applied_index; /* applied to the store */
	uint64_t snapshot_index;
	struct proposal props[PROP_SLOTS];
	int open; /* proposal slot being filled, -1 none */
	uint32_t prop_cap; /* bytes of one proposal */
	uint64_t points_applied, points_rejected;
	/* protocols that read the log back (raft) */
	bool reads_log;
	struct sl_rlog rlog;
	struct sl_cons_log view; /* the protocol keeps a pointer to it */
	struct sl_raft_opts raft_opts;
	struct sl_cons_hard_state hs; /* latest persisted */
	uint64_t recover_target;      /* recovered log end: applied before serving reads */
	uint64_t snapshot_term;
};

enum pend_kind { PEND_SHM = 0, PEND_SESS = 1 };

struct pend {
	bool used;
	uint8_t kind;
	uint8_t level; /* session ack level */
	int32_t err;   /* a part failed (WAL error): nothing more is acknowledged as stored */
	uint32_t slot;
	uint64_t batch_seq; /* shm: the client's batch; session: the seq */
	uint64_t session_id;
	uint32_t count, remaining, stored;
	uint64_t t0_tsc;
	struct reply_addr ra;
};

struct sessq_ent {
	uint64_t lsn; /* of the session record */
	uint64_t session_id, seq, t0_tsc;
	uint32_t stored, count;
	uint8_t level;
	struct reply_addr ra;
};

struct lsn_rec {
	uint64_t lsn;
	uint32_t region;
	uint64_t term;
	uint64_t index;
};

enum ctl_kind { CTL_REGIONS = 1, CTL_QUERY = 2, CTL_WAL_FAULT = 3 };

struct ctl_req {
	enum ctl_kind kind;
	uint32_t region;
	uint64_t series_id;
	int64_t from, to;
	size_t limit;
	int fault_op, fault_err; /* CTL_WAL_FAULT */
	/* results */
	struct sl_sample_ex *samples;
	size_t n_samples;
	char *strbuf; /* string values are copied here by the worker */
	size_t str_cap, str_used;
	uint8_t type;
	int rc;
	struct json_object *json;
	atomic_int done;
};

struct worker {
	struct sl_node *node;
	unsigned idx;
	unsigned lcore;
	unsigned arena;
	struct sl_wal *wal;
	struct sl_stats_core *st;     /* this round's deltas (private) */
	struct sl_stats_core st_local;
	struct sl_stats_core *st_shm; /* the core's block in the stats segment */
	struct rte_ring *in[SL_CFG_MAX_WORKERS];  /* from core j to me */
	struct rte_ring *out[SL_CFG_MAX_WORKERS]; /* from me to core j */
	struct xmsg *fill_pts[SL_CFG_MAX_WORKERS];
	struct xmsg *fill_acks[SL_CFG_MAX_WORKERS];
	/* acks that found no message or ring room: sent first next time (never lost, and
	 * never waited for: two cores acking each other must not block each other) */
	struct xack *ack_backlog[SL_CFG_MAX_WORKERS];
	struct xmsg *outbox[OUTBOX_SIZE];
	uint16_t outbox_dst[OUTBOX_SIZE];
	uint32_t outbox_head, outbox_len;
	uint32_t ack_bl_head[SL_CFG_MAX_WORKERS], ack_bl_len[SL_CFG_MAX_WORKERS];
	struct xmsg *stalled; /* partly consumed points message */
	struct xmsg *local_q[XRING_SIZE];
	uint32_t local_head, local_len;
	struct rte_ring *ctlq;
	struct pend *pend;
	uint32_t *pend_free;
	uint32_t n_pend_free;
	uint32_t slot_cur[256];      /* pending handle of the batch being read per slot */
	uint32_t slot_inflight[256]; /* batches of the slot awaiting their ack */
	uint32_t slot_epoch[256];    /* the slot's client generation we are reading */
	uint64_t next_reap_tsc;
	struct lsn_rec *lsnq;
	uint32_t lsn_head, lsn_len, lsn_durable; /* durable = entries handed to persisted() */
	uint64_t wal_bytes_since_ckpt;
	bool ckpt_active; /* a checkpoint in progress, one region per round */
	uint32_t ckpt_next;
	uint64_t ckpt_upto;
	uint64_t ckpt_resume_ns; /* next region not before: the backlog drains in between */
	uint32_t idle_us;
	bool wal_failed;
	struct sl_ingest_rec *recs;
	uint64_t tsc_hz;
	/* network front door */
	struct sl_lp_line *lp;
	struct sl_lp_counts lpc, lpc_published;
	struct sl_pkt_arp_cache arp;
	struct sl_sess_table sess;
	void *sess_mem;
	struct sessq_ent *sessq;
	uint32_t sessq_head, sessq_len;
	int64_t next_expire_ns;
} __rte_cache_aligned;

struct sl_node {
	struct sl_config cfg;
	struct sl_node_env env;
	unsigned n_workers;
	struct worker *w;
	struct region *regions;
	struct rte_mempool *xpool;
	struct sl_stats_writer *stats;
	struct sl_ingest *ingest;
	enum sl_arena_mode arena_mode;
	atomic_bool stop;
	atomic_bool failed;
	uint64_t start_ns;
	uint64_t recovered_entries, recovered_points;
	struct sl_wal_recovery rec_report;
	struct sl_ports ports;
	struct sl_pkt_local local;
	enum sl_lp_precision precision;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- acks */

static void sess_finish(struct worker *w, struct pend *p);

static void pend_finish(struct worker *w, uint32_t h)
{
	struct pend *p = &w->pend[h];
	if (p->kind == PEND_SESS) {
		sess_finish(w, p);
		p->used = false;
		w->pend_free[w->n_pend_free++] = h;
		return;
	}
	int32_t status = p->err ? p->err : p->stored == p->count ? 0 : -EINVAL;
	if (sl_ingest_ack(w->node->ingest, p->slot, p->batch_seq, status, p->stored) != 0)
		sl_stats_add(w->st, SL_STAT_ack_errors, 1);
	else
		sl_stats_add(w->st, SL_STAT_acks_sent, 1);
	uint64_t lat_ns = (rte_rdtsc() - p->t0_tsc) * 1000000000ull / w->tsc_hz;
	sl_stats_ack_latency(w->st, lat_ns);
	p->used = false;
	SL_ASSERT(w->slot_inflight[p->slot] > 0);
	w->slot_inflight[p->slot]--;
	w->pend_free[w->n_pend_free++] = h;
}

static void pend_account(struct worker *w, uint32_t h, uint32_t n_points, uint32_t n_stored,
			 int32_t status)
{
	struct pend *p = &w->pend[h];
	SL_ASSERT(p->used && p->remaining >= n_points);
	if (status < 0 && status != -EINVAL)
		p->err = status;
	p->remaining -= n_points;
	p->stored += n_stored;
	if (p->remaining == 0)
		pend_finish(w, h);
}

static struct xmsg *xmsg_get(struct worker *w, uint16_t kind)
{
	void *m;
	if (rte_mempool_get(w->node->xpool, &m) != 0)
		return NULL;
	struct xmsg *x = m;
	x->kind = kind;
	x->src = (uint16_t)w->idx;
	x->n = 0;
	x->pos = 0;
	x->off = 0;
	x->used = 0;
	return x;
}

/* Hand a full or final message to core dst; false when its ring is full (kept). */
static bool xmsg_send(struct worker *w, unsigned dst, struct xmsg *x)
{
	if (dst == w->idx) {
		if (w->local_len == XRING_SIZE)
			return false;
		w->local_q[(w->local_head + w->local_len++) % XRING_SIZE] = x;
		return true;
	}
	if (rte_ring_sp_enqueue(w->out[dst], x) != 0) {
		sl_stats_add(w->st, SL_STAT_ring_full, 1);
		return false;
	}
	sl_stats_add(w->st, SL_STAT_cross_core_out, x->n);
	return true;
}

/* Messages that are not points or acks (reads): sent now, or parked and retried each
 * round; when even the outbox is full the read is dropped (the client retries). */
static void outbox_send(struct worker *w, unsigned dst, struct xmsg *x)
{
	if (w->outbox_len == 0 && xmsg_send(w, dst, x))
		return;
	if (w->outbox_len == OUTBOX_SIZE) {
		sl_stats_add(w->st, SL_STAT_sess_busy, 1);
		rte_mempool_put(w->node->xpool, x);
		return;
	}
	uint32_t i = (w->outbox_head + w->outbox_len++) % OUTBOX_SIZE;
	w->outbox[i] = x;
	w->outbox_dst[i] = (uint16_t)dst;
}

static int outbox_flush(struct worker *w)
{
	int n = 0;
	while (w->outbox_len > 0 &&
	       xmsg_send(w, w->outbox_dst[w->outbox_head], w->outbox[w->outbox_head])) {
		w->outbox_head = (w->outbox_head + 1) % OUTBOX_SIZE;
		w->outbox_len--;
		n++;
	}
	return n;
}

/* Add an ack to the message for core dst, sending it when full; false if no room. */
static bool ack_put(struct worker *w, unsigned dst, const struct xack *a)
{
	struct xmsg *x = w->fill_acks[dst];
	if (x != NULL && x->n == XMSG_ACKS) {
		if (!xmsg_send(w, dst, x))
			return false;
		x = w->fill_acks[dst] = NULL;
	}
	if (x == NULL && (x = w->fill_acks[dst] = xmsg_get(w, XMSG_ACK)) == NULL)
		return false;
	x->acks[x->n++] = *a;
	return true;
}

static void send_ack(struct worker *w, uint16_t src, uint32_t handle, uint32_t n_points,
		     uint32_t n_stored, int32_t status)
{
	if (handle == NO_ACK)
		return;
	if (src == w->idx) {
		pend_account(w, handle, n_points, n_stored, status);
		return;
	}
	struct xack a = {handle, n_points, n_stored, status};
	if (w->ack_bl_len[src] == 0 && ack_put(w, src, &a))
		return;
	/* Bounded: acks in flight to a core are bounded by its pending batches times the
	 * runs a batch can be split into. */
	SL_ASSERT(w->ack_bl_len[src] < ACK_BACKLOG);
	w->ack_backlog[src][(w->ack_bl_head[src] + w->ack_bl_len[src]++) % ACK_BACKLOG] = a;
}

static void flush_ack_msgs(struct worker *w)
{
	for (unsigned d = 0; d < w->node->n_workers; d++) {
		while (w->ack_bl_len[d] > 0 &&
		       ack_put(w, d, &w->ack_backlog[d][w->ack_bl_head[d]])) {
			w->ack_bl_head[d] = (w->ack_bl_head[d] + 1) % ACK_BACKLOG;
			w->ack_bl_len[d]--;
		}
		if (w->fill_acks[d] != NULL && w->fill_acks[d]->n > 0 &&
		    xmsg_send(w, d, w->fill_acks[d]))
			w->fill_acks[d] = NULL;
	}
}

/* ---------------------------------------------------------------- proposals */

/* Proposal ids: (region + 1) << 32 | slot, never 0 (0 = not proposed here). */
static uint64_t prop_id(const struct region *r, uint32_t slot)
{
	return ((uint64_t)(r->id + 1) << 32) | slot;
}

static int prop_of(const struct region *r, uint64_t pid)
{
	if ((pid >> 32) != (uint64_t)r->id + 1 || (pid & 0xffffffffu) >= PROP_SLOTS)
		return -1;
	return (int)(pid & 0xffffffffu);
}

static int prop_open(struct worker *w, struct region *r)
{
	(void)w;
	if (r->open >= 0)
		return r->open;
	for (int i = 0; i < PROP_SLOTS; i++) {
		struct proposal *p = &r->props[i];
		if (!p->in_use) {
			p->in_use = true;
			p->proposed = false;
			p->n_points = 0;
			p->n_runs = 0;
			sl_batch_init(&p->b, p->buf, r->prop_cap, r->id);
			sl_batch_trust(&p->b); /* every point's id was hashed where it came in */
			r->open = i;
			return i;
		}
	}
	return -1;
}

static void prop_close(struct worker *w, struct region *r)
{
	if (r->open < 0)
		return;
	struct proposal *p = &r->props[r->open];
	size_t len = 0;
	sl_batch_finish(&p->b, &len);
	uint64_t pid = prop_id(r, (uint32_t)r->open);
	int rc = r->ops->propose(r->cons, pid, p->buf, (uint32_t)len);
	if (rc == -EPERM || rc == -EBUSY || rc == -ENOBUFS) {
		/* not leader yet (raft electing itself after a start), a leader transfer, or
		 * the protocol's queue is full: keep the batch and propose it next round */
		sl_batch_reopen(&p->b);
		return;
	}
	if (rc != 0) {
		/* the protocol refused (storage failed, not leader): fail the runs now */
		for (uint32_t i = 0; i < p->n_runs; i++)
			send_ack(w, p->runs[i].src, p->runs[i].handle, p->runs[i].n_points, 0,
				 rc);
		p->in_use = false;
	} else {
		p->proposed = true;
		sl_stats_add(w->st, SL_STAT_batches_in, 1);
	}
	r->open = -1;
}

/* Add one routed point to its region's open proposal; false when the region has no room
 * (the caller retries later: backpressure). */
static bool region_take(struct worker *w, struct region *r, uint16_t src, uint32_t handle,
			const struct sl_point *pt)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int slot = prop_open(w, r);
		if (slot < 0)
			return false;
		struct proposal *p = &r->props[slot];
		bool run_ok = p->n_runs > 0 && p->runs[p->n_runs - 1].src == src &&
			      p->runs[p->n_runs - 1].handle == handle;
		if ((!run_ok && p->n_runs == PROP_RUNS) ||
		    p->n_points >= w->node->cfg.batch_points ||
		    sl_batch_add(&p->b, pt) != 0) {
			if (p->n_points == 0)
				return false; /* cannot happen: a point always fits an empty batch */
			prop_close(w, r);
			continue;
		}
		if (!run_ok)
			p->runs[p->n_runs++] = (struct prop_run){src, handle, 0, 0};
		p->runs[p->n_runs - 1].n_points++;
		p->n_points++;
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- apply */

/* Apply one committed entry to its region's store; count stored points per run. */
static void apply_entry(struct region *r, const uint8_t *data, uint32_t len,
			struct proposal *p)
{
	struct sl_batch_iter it;
	/* our own encoding (in memory, or read back through the WAL's CRC on recovery):
	 * trusted, no re-hash of every series id; a decode failure here is a bug */
	if (sl_batch_iter_init_trusted(&it, data, len) != 0) {
		SL_ASSERT(!"committed entry does not decode");
	}
	uint32_t run = 0, in_run = 0;
	struct sl_point pt;
	int rc;
	while ((rc = sl_batch_next(&it, &pt)) == 1) {
		bool ok = sl_store_apply(r->store, &pt) == 0;
		if (ok)
			r->points_applied++;
		else
			r->points_rejected++;
		if (p != NULL) {
			while (run < p->n_runs && in_run == p->runs[run].n_points) {
				run++;
				in_run = 0;
			}
			SL_ASSERT(run < p->n_runs);
			in_run++;
			if (ok)
				p->runs[run].n_stored++;
		}
	}
	SL_ASSERT(rc == 0);
}

/* sl_wal_append, waiting while both WAL buffers are busy (bounded by one write+fsync). */
static int wal_append_wait(struct worker *w, uint16_t type, const uint8_t *buf, uint32_t len,
			   uint64_t *lsn)
{
	for (;;) {
		int rc = sl_wal_append(w->wal, type, buf, len, lsn);
		if (rc != -ENOBUFS)
			return rc;
		/* both buffers full: push the filled one out and wait for room */
		int frc = sl_wal_flush(w->wal);
		if (frc != 0 && frc != -EBUSY && frc != -EAGAIN)
			return frc;
		int prc = sl_wal_poll(w->wal);
		if (prc < 0)
			return prc;
		rte_delay_us_sleep(10);
	}
}

static int wal_append_entry(struct worker *w, struct region *r, const struct sl_cons_entry *e)
{
	/* the WAL copies header and payload; build the header in front of the data */
	static _Thread_local uint8_t tmp[PROP_BYTES + ENTRY_HDR + 64];
	if (e->len > PROP_BYTES)
		return -EMSGSIZE;
	tmp[0] = 1;
	sl_put_u32(tmp + 1, r->id);
	sl_put_u64(tmp + 5, e->term);
	sl_put_u64(tmp + 13, e->index);
	sl_put_u32(tmp + 21, e->type);
	memcpy(tmp + ENTRY_HDR, e->data, e->len);
	uint64_t lsn = 0;
	int rc = wal_append_wait(w, WAL_REC_ENTRY, tmp, ENTRY_HDR + e->len, &lsn);
	if (rc != 0)
		return rc;
	SL_ASSERT(w->lsn_len < LSNQ_SIZE);
	w->lsnq[(w->lsn_head + w->lsn_len++) % LSNQ_SIZE] =
		(struct lsn_rec){lsn, r->id, e->term, e->index};
	w->wal_bytes_since_ckpt += ENTRY_HDR + e->len;
	sl_stats_add(w->st, SL_STAT_wal_appends, 1);
	sl_stats_add(w->st, SL_STAT_wal_bytes, ENTRY_HDR + e->len);
	return 0;
}

/* Term, vote and commit of a raft region. Not tracked for persisted(): a one-node group
 * sends no message that must wait for it; checkpoints write it again before releasing. */
static int wal_append_hardstate(struct worker *w, struct region *r,
				const struct sl_cons_hard_state *hs)
{
	uint8_t b[HARDSTATE_BYTES];
	b[0] = 2;
	sl_put_u32(b + 1, r->id);
	sl_put_u64(b + 5, hs->term);
	sl_put_u32(b + 13, hs->vote);
	sl_put_u64(b + 17, hs->commit);
	uint64_t lsn;
	int rc = wal_append_wait(w, WAL_REC_HARDSTATE, b, sizeof(b), &lsn);
	if (rc == 0)
		r->hs = *hs;
	return rc;
}

static void wal_fail(struct worker *w, int err)
{
	if (!w->wal_failed) {
		fprintf(stderr, "sluiced: worker %u: WAL failed (%s); nothing more is "
				"acknowledged on this core until restart\n",
			w->idx, strerror(-err));
		sl_stats_add(w->st, SL_STAT_wal_errors, 1);
	}
	w->wal_failed = true;
	atomic_store(&w->node->failed, true);
	for (uint32_t i = 0; i < w->node->cfg.regions; i++) {
		struct region *r = &w->node->regions[i];
		if (r->worker == w->idx)
			r->ops->storage_failed(r->cons, r->last_index + 1, err);
	}
}

static void prop_ack(struct worker *w, struct proposal *p, int32_t st)
{
	for (uint32_t k = 0; k < p->n_runs; k++)
		send_ack(w, p->runs[k].src, p->runs[k].handle, p->runs[k].n_points,
			 st == 0 ? p->runs[k].n_stored : 0, st);
	p->in_use = false;
	p->ack_wait = 0;
}

static void region_process_ready(struct worker *w, struct region *r)
{
	int guard = 0;
	while (r->ops->has_ready(r->cons) && guard++ < 64) {
		struct sl_cons_ready rd;
		r->ops->ready(r->cons, &rd);
		/* one-node groups: no snapshot arrives from a leader, no message has a peer
		 * until the fabric connects nodes */
		SL_ASSERT(!rd.has_snapshot);
		if (rd.has_hard_state && !w->wal_failed) {
			int rc = wal_append_hardstate(w, r, &rd.hard_state);
			if (rc != 0)
				wal_fail(w, rc);
		}
		for (uint32_t i = 0; i < rd.n_persist && !w->wal_failed; i++) {
			int rc = wal_append_entry(w, r, &rd.persist[i]);
			if (rc == 0 && r->reads_log)
				rc = sl_rlog_append(&r->rlog, &rd.persist[i]);
			if (rc != 0)
				wal_fail(w, rc);
			else
				r->last_index = rd.persist[i].index;
		}
		for (uint32_t i = 0; i < rd.n_committed; i++) {
			const struct sl_cons_entry *e = &rd.committed[i];
			struct proposal *p = NULL;
			if (prop_of(r, e->proposal_id) >= 0)
				p = &r->props[prop_of(r, e->proposal_id)];
			if (e->type == SL_CONS_ENTRY_NORMAL)
				apply_entry(r, e->data, e->len, p);
			r->applied_index = e->index;
			if (r->reads_log)
				sl_rlog_release(&r->rlog, e->index);
			sl_stats_add(w->st, SL_STAT_points_applied, p ? p->n_points : 0);
		}
		for (uint32_t i = 0; i < rd.n_acks; i++) {
			const struct sl_cons_ack *a = &rd.acks[i];
			if (prop_of(r, a->proposal_id) < 0)
				continue;
			struct proposal *p = &r->props[prop_of(r, a->proposal_id)];
			SL_ASSERT(p->in_use && p->proposed);
			if (a->status == SL_CONS_ACK_OK && a->index > r->applied_index) {
				p->ack_wait = a->index; /* stored counts are known once applied */
				continue;
			}
			prop_ack(w, p, a->status == SL_CONS_ACK_OK ? 0 : -EIO);
		}
		r->ops->advance(r->cons, &rd);
		for (int k = 0; k < PROP_SLOTS; k++)
			if (r->props[k].in_use && r->props[k].ack_wait != 0 &&
			    r->props[k].ack_wait <= r->applied_index)
				prop_ack(w, &r->props[k], 0);
	}
}

/* Durable LSN advanced: tell each region's protocol, in log order. */
static void sess_durable(struct worker *w, uint64_t durable);

static void wal_completions(struct worker *w)
{
	int rc = sl_wal_poll(w->wal);
	if (rc < 0) {
		wal_fail(w, rc);
		return;
	}
	uint64_t durable = sl_wal_durable_lsn(w->wal);
	sess_durable(w, durable);
	while (w->lsn_durable < w->lsn_len) {
		struct lsn_rec *lr = &w->lsnq[(w->lsn_head + w->lsn_durable) % LSNQ_SIZE];
		if (lr->lsn > durable)
			break;
		struct region *r = &w->node->regions[lr->region];
		r->ops->persisted(r->cons, lr->term, lr->index);
		w->lsn_durable++;
	}
}

/* Forget WAL records whose entries are applied; the oldest kept bounds retention. */
static uint64_t lsnq_trim(struct worker *w)
{
	while (w->lsn_durable > 0) {
		struct lsn_rec *lr = &w->lsnq[w->lsn_head % LSNQ_SIZE];
		if (w->node->regions[lr->region].applied_index < lr->index)
			break;
		w->lsn_head = (w->lsn_head + 1) % LSNQ_SIZE;
		w->lsn_len--;
		w->lsn_durable--;
	}
	if (w->lsn_len > 0)
		return w->lsnq[w->lsn_head % LSNQ_SIZE].lsn - 1;
	return sl_wal_durable_lsn(w->wal);
}

/* ---------------------------------------------------------------- snapshots */

static void snap_path(const struct sl_node *n, uint32_t region, char *buf, size_t len,
		      const char *suffix)
{
	snprintf(buf, len, "%s/snap/region-%04u.snap%s", n->cfg.data_dir, region, suffix);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/* path.tmp, fdatasync, rename over path, fsync the directory. */
static int write_file_atomic(const char *dir, const char *path, const uint8_t *buf, size_t len)
{
	char tmp[SL_CFG_PATH_MAX + 80];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	int rc = 0;
	while (off < len && rc == 0) {
		ssize_t k = write(fd, buf + off, len - off);
		if (k < 0 && errno != EINTR)
			rc = -errno;
		else if (k > 0)
			off += (size_t)k;
	}
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	return rc == 0 ? fsync_dir(dir) : rc;
}

static void sess_snap_path(const struct sl_node *n, unsigned core, char *buf, size_t len)
{
	snprintf(buf, len, "%s/snap/sessions-core-%02u.snap", n->cfg.data_dir, core);
}

/* Session table image of a core, so the session records in its WAL can be released. */
static int sessions_snapshot(struct worker *w)
{
	char path[SL_CFG_PATH_MAX + 64], dir[SL_CFG_PATH_MAX + 16];
	sess_snap_path(w->node, w->idx, path, sizeof(path));
	snprintf(dir, sizeof(dir), "%s/snap", w->node->cfg.data_dir);
	size_t cap = sl_sess_snapshot_bytes(&w->sess);
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	int len = sl_sess_snapshot_write(&w->sess, 0, buf, cap);
	int rc = len < 0 ? len : write_file_atomic(dir, path, buf, (size_t)len);
	free(buf);
	return rc;
}

static int sessions_load(struct worker *w, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	sess_snap_path(w->node, w->idx, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	uint8_t *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (rc == 0 && buf == NULL)
		rc = -ENOMEM;
	if (rc == 0 && read(fd, buf, (size_t)st.st_size) != st.st_size)
		rc = -EIO;
	close(fd);
	uint64_t idx;
	if (rc == 0)
		rc = sl_sess_snapshot_read(&w->sess, buf, (size_t)st.st_size, (int64_t)now_ns(), &idx);
	free(buf);
	if (rc != 0)
		snprintf(err, err_len, "%s: session snapshot unreadable (%s); refusing to start", path,
			 strerror(-rc));
	return rc;
}

static int write_term_file(struct sl_node *n, const struct region *r, uint64_t index,
			   uint64_t term)
{
	char tmp[SL_CFG_PATH_MAX + 64], fin[SL_CFG_PATH_MAX + 64];
	snap_path(n, r->id, tmp, sizeof(tmp), ".term.tmp");
	snap_path(n, r->id, fin, sizeof(fin), ".term");
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	fprintf(f, "%" PRIu64 " %" PRIu64 "\n", index, term);
	int rc = fflush(f) == 0 && fdatasync(fileno(f)) == 0 ? 0 : -errno;
	fclose(f);
	if (rc == 0 && rename(tmp, fin) != 0)
		rc = -errno;
	return rc;
}

static uint64_t read_term_file(struct sl_node *n, const struct region *r, uint64_t index)
{
	char fin[SL_CFG_PATH_MAX + 64];
	snap_path(n, r->id, fin, sizeof(fin), ".term");
	FILE *f = fopen(fin, "r");
	uint64_t i = 0, t = 0;
	if (f != NULL) {
		if (fscanf(f, "%" SCNu64 " %" SCNu64, &i, &t) != 2)
			t = 0;
		fclose(f);
	}
	/* a crash between the term file and the snapshot leaves a newer term file: its term
	 * bounds the snapshot's from above, which is all a one-node group needs */
	return i >= index ? t : 0;
}

static int region_snapshot(struct sl_node *n, struct region *r)
{
	char tmp[SL_CFG_PATH_MAX + 64], fin[SL_CFG_PATH_MAX + 64], dir[SL_CFG_PATH_MAX + 16];
	snap_path(n, r->id, tmp, sizeof(tmp), ".tmp");
	snap_path(n, r->id, fin, sizeof(fin), "");
	snprintf(dir, sizeof(dir), "%s/snap", n->cfg.data_dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -errno;
	int rc = sl_store_snapshot_write(r->store, fd, r->applied_index);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	uint64_t term = 0;
	if (rc == 0 && r->reads_log) {
		/* the log's base term, for the protocol after a restart: written first */
		if (sl_rlog_term(&r->rlog, r->applied_index, &term) != 0)
			term = r->hs.term;
		rc = write_term_file(n, r, r->applied_index, term);
	}
	if (rc == 0 && rename(tmp, fin) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc == 0) {
		r->snapshot_index = r->applied_index;
		r->snapshot_term = term;
		if (r->reads_log)
			sl_rlog_compact(&r->rlog, r->applied_index, term);
	}
	return rc;
}

/* Snapshot this core's regions and release the WAL they cover. Blocking, off the
 * per-point path: it runs once per checkpoint_mb of WAL. */
static void checkpoint_finish(struct worker *w, uint64_t upto);

/* One step of a checkpoint, one region per poll round, so the pause it costs the worker
 * is one region's snapshot, not all of them. WAL records <= upto were applied when the
 * checkpoint began: every later snapshot covers them. */
static void checkpoint_step(struct worker *w)
{
	struct sl_node *n = w->node;
	if (!w->ckpt_active) {
		w->ckpt_active = true;
		w->ckpt_upto = lsnq_trim(w);
		w->ckpt_next = 0;
		w->wal_bytes_since_ckpt = 0;
	}
	uint64_t t0 = now_ns();
	if (t0 < w->ckpt_resume_ns)
		return;
	while (w->ckpt_next < n->cfg.regions && n->regions[w->ckpt_next].worker != w->idx)
		w->ckpt_next++;
	if (w->ckpt_next == n->cfg.regions) {
		w->ckpt_active = false;
		checkpoint_finish(w, w->ckpt_upto);
		return;
	}
	struct region *r = &n->regions[w->ckpt_next++];
	int rc = region_snapshot(n, r);
	/* Space the pauses: twice as long as this one took, so batches delayed by it are
	 * acknowledged before the next one (one pause per batch, not one per region). */
	uint64_t took = now_ns() - t0;
	w->ckpt_resume_ns = now_ns() + (2 * took > 10000000 ? 2 * took : 10000000);
	if (rc != 0) {
		fprintf(stderr, "sluiced: region %u: snapshot failed (%s); WAL kept\n", r->id,
			strerror(-rc));
		sl_stats_add(w->st, SL_STAT_wal_errors, 1);
		w->ckpt_active = false;
	}
}

static void checkpoint_finish(struct worker *w, uint64_t upto)
{
	struct sl_node *n = w->node;
	int src = sessions_snapshot(w);
	if (src != 0) {
		fprintf(stderr, "sluiced: worker %u: session snapshot failed (%s); WAL kept\n",
			w->idx, strerror(-src));
		sl_stats_add(w->st, SL_STAT_wal_errors, 1);
		return;
	}
	/* raft term and vote live in WAL records: write them again, durably, before the
	 * segments holding older copies go */
	bool any_hs = false;
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker == w->idx && r->reads_log) {
			struct sl_cons_hard_state hs = r->hs;
			if (wal_append_hardstate(w, r, &hs) != 0)
				return;
			any_hs = true;
		}
	}
	if (any_hs && sl_wal_sync(w->wal) != 0) {
		wal_fail(w, -EIO);
		return;
	}
	int rc = sl_wal_release(w->wal, upto);
	if (rc != 0)
		fprintf(stderr, "sluiced: worker %u: WAL release failed: %s\n", w->idx,
			strerror(-rc));
}

/* ---------------------------------------------------------------- routing */

/* Consume points of a message (from a ring or the local queue); false if stalled. */
static bool consume_points(struct worker *w, struct xmsg *x)
{
	struct sl_node *n = w->node;
	while (x->pos < x->n) {
		struct xpoint xp;
		SL_ASSERT(x->off + sizeof(xp) <= x->used);
		memcpy(&xp, x->buf + x->off, sizeof(xp));
		const char *key = (const char *)x->buf + x->off + sizeof(xp);
		struct sl_point pt = {.series_id = xp.series_id,
				      .ts = xp.ts,
				      .type = xp.type,
				      .value = xp.value,
				      .key_len = xp.key_len,
				      .key = key,
				      .str = xp.type == SL_VAL_STR ? key + xp.key_len : NULL,
				      .str_len = xp.type == SL_VAL_STR ? xp.str_len : 0};
		struct region *r = &n->regions[xp.region];
		SL_ASSERT(r->worker == w->idx);
		if (w->wal_failed) {
			send_ack(w, x->src, xp.handle, 1, 0, -EIO);
		} else if (!region_take(w, r, x->src, xp.handle, &pt)) {
			return false;
		}
		x->pos++;
		x->off += (uint32_t)xpoint_size(&pt);
	}
	if (x->src != w->idx)
		sl_stats_add(w->st, SL_STAT_cross_core_in, x->n);
	return true;
}

static void read_serve(struct worker *w, struct xmsg *x);
static void net_send_udp(struct worker *w, const struct reply_addr *ra, const uint8_t *payload,
			 size_t len);

/* One message from another core (or this one): false when its points could not all be
 * taken (a region is full) and it must wait. */
static bool handle_msg(struct worker *w, struct xmsg *x)
{
	switch (x->kind) {
	case XMSG_ACK:
		for (uint32_t k = 0; k < x->n; k++)
			pend_account(w, x->acks[k].handle, x->acks[k].n_points, x->acks[k].n_stored,
				     x->acks[k].status);
		break;
	case XMSG_READ:
		read_serve(w, x); /* the message goes back as the result */
		return true;
	case XMSG_READ_RESULT:
		net_send_udp(w, &x->rq.ra, x->buf, x->used);
		break;
	default:
		if (!consume_points(w, x))
			return false;
		break;
	}
	rte_mempool_put(w->node->xpool, x);
	return true;
}

static int drain_inputs(struct worker *w)
{
	int work = 0;
	if (w->stalled != NULL) {
		if (!handle_msg(w, w->stalled))
			return 0; /* everything else waits behind it, in order */
		w->stalled = NULL;
		work++;
	}
	while (w->local_len > 0) {
		struct xmsg *x = w->local_q[w->local_head];
		w->local_head = (w->local_head + 1) % XRING_SIZE;
		w->local_len--;
		work++;
		if (!handle_msg(w, x)) {
			w->stalled = x;
			return work;
		}
	}
	for (unsigned s = 0; s < w->node->n_workers; s++) {
		if (s == w->idx)
			continue;
		void *objs[32];
		unsigned got = rte_ring_sc_dequeue_burst(w->in[s], objs, 32, NULL);
		for (unsigned i = 0; i < got; i++) {
			struct xmsg *x = objs[i];
			work++;
			if (w->stalled == NULL) {
				if (!handle_msg(w, x))
					w->stalled = x;
				continue;
			}
			/* already dequeued behind a stalled one: keep their order; no more
			 * are dequeued until the stall clears */
			SL_ASSERT(w->local_len < XRING_SIZE);
			w->local_q[(w->local_head + w->local_len++) % XRING_SIZE] = x;
		}
		if (w->stalled != NULL)
			break;
	}
	return work;
}

/* Copy a point into the message for its region's core; false when no message or ring
 * room is free (the caller drains and retries). */
static bool route_point(struct worker *w, uint32_t handle, const struct sl_point *pt)
{
	struct sl_node *n = w->node;
	uint32_t region = sl_node_region_of(pt->series_id, n->cfg.regions);
	unsigned dst = n->regions[region].worker;
	size_t need = xpoint_size(pt);
	SL_ASSERT(need <= XMSG_BYTES);
	struct xmsg *x = w->fill_pts[dst];
	if (x != NULL && x->used + need > XMSG_BYTES) {
		if (!xmsg_send(w, dst, x))
			return false;
		x = w->fill_pts[dst] = NULL;
	}
	if (x == NULL) {
		x = w->fill_pts[dst] = xmsg_get(w, XMSG_POINTS);
		if (x == NULL)
			return false;
	}
	struct xpoint xp = {.series_id = pt->series_id,
			    .ts = pt->ts,
			    .value = pt->type == SL_VAL_STR ? 0 : pt->value,
			    .handle = handle,
			    .str_len = pt->type == SL_VAL_STR ? pt->str_len : 0,
			    .region = (uint16_t)region,
			    .key_len = pt->key_len,
			    .type = pt->type};
	uint8_t *d = x->buf + x->used;
	memcpy(d, &xp, sizeof(xp));
	memcpy(d + sizeof(xp), pt->key, pt->key_len);
	if (xp.str_len > 0)
		memcpy(d + sizeof(xp) + pt->key_len, pt->str, xp.str_len);
	x->used += (uint32_t)need;
	x->n++;
	return true;
}

static int progress(struct worker *w);

/* route_point, waiting for room: consumers (this core too) catch up meanwhile. */
static void route_point_wait(struct worker *w, uint32_t handle, const struct sl_point *pt)
{
	while (!route_point(w, handle, pt)) {
		sl_stats_add(w->st, SL_STAT_ring_full, 1);
		progress(w);
		rte_pause();
	}
}

static bool flush_point_msgs(struct worker *w)
{
	bool all = true;
	for (unsigned d = 0; d < w->node->n_workers; d++) {
		struct xmsg *x = w->fill_pts[d];
		if (x == NULL || x->n == 0)
			continue;
		if (xmsg_send(w, d, x))
			w->fill_pts[d] = NULL;
		else
			all = false;
	}
	return all;
}

static int poll_ingest(struct worker *w)
{
	struct sl_node *n = w->node;
	int work = 0;
	uint32_t n_slots = sl_ingest_n_slots(n->ingest);
	uint64_t tsc = rte_rdtsc();
	bool reap = tsc >= w->next_reap_tsc;
	if (reap)
		w->next_reap_tsc = tsc + w->tsc_hz / 100; /* every 10 ms */
	for (uint32_t slot = w->idx; slot < n_slots; slot += n->n_workers) {
		/* A slot is recycled for a new client only once nothing of the old one awaits
		 * an ack, so no late ack can reach the next client. */
		if (reap && w->slot_inflight[slot] == 0)
			sl_ingest_reap_slot(n->ingest, slot);
		uint32_t epoch = sl_ingest_slot_epoch(n->ingest, slot);
		if (epoch != w->slot_epoch[slot]) {
			w->slot_epoch[slot] = epoch;
			w->slot_cur[slot] = UINT32_MAX; /* drop a half-read batch of the old client */
		}
		/* room for a whole burst: pending handles and outgoing messages */
		if (w->n_pend_free < INGEST_BURST || !flush_point_msgs(w))
			break;
		int got = sl_ingest_poll(n->ingest, slot, w->recs, INGEST_BURST);
		if (got <= 0)
			continue;
		work += got;
		sl_stats_add(w->st, SL_STAT_points_in, (uint64_t)got);
		for (int i = 0; i < got; i++) {
			const struct sl_ingest_rec *rec = &w->recs[i];
			uint32_t h;
			if (rec->index == 0) {
				h = w->pend_free[--w->n_pend_free];
				w->pend[h] = (struct pend){.used = true,
							   .kind = PEND_SHM,
							   .slot = slot,
							   .batch_seq = rec->batch_seq,
							   .count = rec->batch_count,
							   .remaining = rec->batch_count,
							   .t0_tsc = rte_rdtsc()};
				w->slot_cur[slot] = h;
				w->slot_inflight[slot]++;
			} else {
				h = w->slot_cur[slot];
				if (h == UINT32_MAX || !w->pend[h].used ||
				    w->pend[h].batch_seq != rec->batch_seq) {
					sl_stats_add(w->st, SL_STAT_bad_records, 1);
					continue;
				}
			}
			if (rec->flags != 0) {
				sl_stats_add(w->st, SL_STAT_bad_records, 1);
				sl_stats_add(w->st, SL_STAT_points_rejected, 1);
				pend_account(w, h, 1, 0, -EINVAL);
				continue;
			}
			struct sl_point pt = {
				.series_id = sl_series_id((const char *)rec->key, rec->key_len),
				.ts = rec->ts,
				.type = rec->type,
				.value = rec->value,
				.key_len = rec->key_len,
				.key = (const char *)rec->key};
			route_point_wait(w, h, &pt);
		}
	}
	flush_point_msgs(w);
	return work;
}

/* ---------------------------------------------------------------- network front door */

_Static_assert(SL_STAT_drop_unsupported_proto - SL_STAT_drop_truncated ==
		       SL_PKT_DROP_UNSUPPORTED_PROTO - SL_PKT_DROP_TRUNCATED,
	       "per-reason packet drop counters follow enum sl_pkt_drop");
_Static_assert(SL_STAT_lp_scratch - SL_STAT_lp_syntax_measurement ==
		       SL_LP_ERR_SCRATCH - SL_LP_ERR_SYNTAX_MEASUREMENT,
	       "per-reason line protocol counters follow enum sl_lp_err");

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void net_tx(struct worker *w, const struct sl_port *p, uint16_t q, struct rte_mbuf *m)
{
	if (rte_eth_tx_burst(p->port_id, q, &m, 1) == 1) {
		sl_stats_add(w->st, SL_STAT_pkts_tx, 1);
	} else {
		rte_pktmbuf_free(m);
		sl_stats_add(w->st, SL_STAT_pkts_tx_failed, 1);
	}
}

/* Builds a reply frame with `build` into a fresh mbuf and sends it. */
static void net_reply(struct worker *w, const struct sl_port *p, uint16_t q,
		      const struct sl_pkt_info *in, bool arp)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);
	if (m == NULL) {
		sl_stats_add(w->st, SL_STAT_pkts_tx_failed, 1);
		return;
	}
	uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
	size_t cap = rte_pktmbuf_tailroom(m);
	int len = arp ? sl_pkt_build_arp_reply(buf, cap, in, p->mac.addr_bytes)
		      : sl_pkt_build_icmp_echo_reply(buf, cap, in, p->mac.addr_bytes);
	if (len <= 0) {
		rte_pktmbuf_free(m);
		sl_stats_add(w->st, SL_STAT_pkts_tx_failed, 1);
		return;
	}
	m->data_len = m->pkt_len = (uint32_t)len;
	net_tx(w, p, q, m);
	sl_stats_add(w->st, arp ? SL_STAT_arp_replies : SL_STAT_icmp_replies, 1);
}

/* ---------------------------------------------------------------- session protocol */

_Static_assert(SL_STAT_sess_bad_point - SL_STAT_sess_truncated ==
		       SL_SESS_ERR_BAD_POINT - SL_SESS_ERR_TRUNCATED,
	       "per-reason session counters follow enum sl_sess_err");

/* A UDP reply to `ra`; `fill` writes the payload at the given place and returns its
 * length (or < 0: nothing is sent). */
static void net_send_udp(struct worker *w, const struct reply_addr *ra, const uint8_t *payload,
			 size_t len)
{
	const struct sl_port *p = &w->node->ports.p[ra->port];
	struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);
	if (m == NULL) {
		sl_stats_add(w->st, SL_STAT_pkts_tx_failed, 1);
		return;
	}
	struct sl_pkt_udp_addr a = {.src_ip = w->node->cfg.ipv4_addr,
				    .dst_ip = ra->ip,
				    .src_port = (uint16_t)w->node->cfg.session_port,
				    .dst_port = ra->udp_port};
	memcpy(a.src_mac, p->mac.addr_bytes, 6);
	memcpy(a.dst_mac, ra->mac, 6);
	int n = sl_pkt_build_udp(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m), &a,
				 payload, len);
	if (n <= 0) {
		rte_pktmbuf_free(m);
		sl_stats_add(w->st, SL_STAT_pkts_tx_failed, 1);
		return;
	}
	m->data_len = m->pkt_len = (uint32_t)n;
	net_tx(w, p, (uint16_t)w->idx, m);
}

static void sess_send(struct worker *w, const struct reply_addr *ra, const struct sl_sess_msg *m)
{
	uint8_t buf[SL_SESS_MSG_MAX];
	int n = sl_sess_encode(buf, sizeof(buf), m);
	if (n > 0)
		net_send_udp(w, ra, buf, (size_t)n);
}

static void sess_send_ack(struct worker *w, const struct reply_addr *ra,
			  const struct sl_sess_ack *ack)
{
	struct sl_sess_msg m = {.type = SL_SESS_ACK, .cluster_id = w->node->cfg.cluster_id};
	m.u.ack = *ack;
	sess_send(w, ra, &m);
	sl_stats_add(w->st, SL_STAT_sess_acks, 1);
	sl_stats_add(w->st, SL_STAT_acks_sent, 1);
}

/* The points of an accepted batch are all applied (or failed): log the session record;
 * its durability is the batch's acknowledgement (docs/protocol.md). */
static void sess_finish(struct worker *w, struct pend *p)
{
	struct sl_sess_ack ack = {.session_id = p->session_id, .seq = p->batch_seq};
	if (p->err || w->wal_failed || w->sessq_len == SESSQ_SIZE) {
		sl_sess_on_abort(&w->sess, p->session_id, p->batch_seq);
		ack.status = w->sessq_len == SESSQ_SIZE && !p->err && !w->wal_failed
				     ? SL_SESS_ST_BUSY
				     : SL_SESS_ST_STORAGE_ERROR;
		if (p->level != SL_SESS_LEVEL_NONE)
			sess_send_ack(w, &p->ra, &ack);
		return;
	}
	uint8_t b[SESSION_REC_BYTES];
	b[0] = 3;
	sl_put_u64(b + 1, p->session_id);
	sl_put_u64(b + 9, p->batch_seq);
	sl_put_u32(b + 17, p->stored);
	sl_put_u32(b + 21, p->count);
	uint64_t lsn = 0;
	int rc = wal_append_wait(w, WAL_REC_SESSION, b, sizeof(b), &lsn);
	if (rc != 0) {
		wal_fail(w, rc);
		sl_sess_on_abort(&w->sess, p->session_id, p->batch_seq);
		ack.status = SL_SESS_ST_STORAGE_ERROR;
		sess_send_ack(w, &p->ra, &ack);
		return;
	}
	w->sessq[(w->sessq_head + w->sessq_len++) % SESSQ_SIZE] =
		(struct sessq_ent){lsn,	     p->session_id, p->batch_seq, p->t0_tsc,
				   p->stored, p->count,	    p->level,	  p->ra};
}

/* Session records durable up to `durable`: acknowledge their batches. */
static void sess_durable(struct worker *w, uint64_t durable)
{
	while (w->sessq_len > 0) {
		struct sessq_ent *e = &w->sessq[w->sessq_head];
		if (e->lsn > durable)
			break;
		struct sl_sess_outcome o = {
			.count_stored = e->stored,
			.status = e->stored == e->count ? SL_SESS_ST_OK : SL_SESS_ST_REJECTED_POINTS,
			.level_req = e->level,
			.level_reached = SL_SESS_LEVEL_LOCAL};
		struct sl_sess_ack ack;
		if (sl_sess_on_durable(&w->sess, e->session_id, e->seq, &o, &ack) == 1)
			sess_send_ack(w, &e->ra, &ack);
		sl_stats_ack_latency(w->st, (rte_rdtsc() - e->t0_tsc) * 1000000000ull / w->tsc_hz);
		w->sessq_head = (w->sessq_head + 1) % SESSQ_SIZE;
		w->sessq_len--;
	}
}

static void sess_batch(struct worker *w, const struct sl_sess_batch *b, const struct reply_addr *ra)
{
	struct sl_sess_decision d;
	int64_t now = (int64_t)now_ns();
	sl_stats_add(w->st, SL_STAT_sess_batches, 1);
	if (w->n_pend_free == 0) {
		struct sl_sess_ack ack = {.session_id = b->session_id, .seq = b->seq,
					  .status = SL_SESS_ST_BUSY};
		sl_stats_add(w->st, SL_STAT_sess_busy, 1);
		sess_send_ack(w, ra, &ack);
		return;
	}
	sl_sess_on_batch(&w->sess, b->session_id, b->seq, b->level, now, &d);
	switch (d.verdict) {
	case SL_SESS_ACCEPT: break;
	case SL_SESS_DUPLICATE: sl_stats_add(w->st, SL_STAT_sess_duplicates, 1); break;
	case SL_SESS_IN_FLIGHT: sl_stats_add(w->st, SL_STAT_sess_in_flight, 1); break;
	case SL_SESS_OUT_OF_ORDER: sl_stats_add(w->st, SL_STAT_sess_out_of_order, 1); break;
	case SL_SESS_TOO_FAR_AHEAD: sl_stats_add(w->st, SL_STAT_sess_too_far_ahead, 1); break;
	default: sl_stats_add(w->st, SL_STAT_sess_unknown, 1); break;
	}
	if (d.verdict != SL_SESS_ACCEPT) {
		if (d.reply)
			sess_send_ack(w, ra, &d.ack);
		return;
	}
	uint32_t h = w->pend_free[--w->n_pend_free];
	w->pend[h] = (struct pend){.used = true,
				   .kind = PEND_SESS,
				   .level = b->level,
				   .batch_seq = b->seq,
				   .session_id = b->session_id,
				   .count = b->count,
				   .remaining = b->count,
				   .t0_tsc = rte_rdtsc(),
				   .ra = *ra};
	if (b->count == 0) {
		pend_finish(w, h);
		return;
	}
	struct sl_sess_point_iter it;
	struct sl_point pt;
	sl_sess_points_init(&it, b);
	while (sl_sess_points_next(&it, &pt) == 1) {
		route_point_wait(w, h, &pt);
		sl_stats_add(w->st, SL_STAT_points_in, 1);
	}
	sl_stats_add(w->st, SL_STAT_sess_points, b->count);
}

/* READ: the region's core answers (the store is its alone); the frame comes back here. */
static void sess_read(struct worker *w, const struct sl_sess_read *r, const struct reply_addr *ra)
{
	sl_stats_add(w->st, SL_STAT_sess_reads, 1);
	struct xmsg *x = xmsg_get(w, XMSG_READ);
	if (x == NULL) {
		sl_stats_add(w->st, SL_STAT_sess_busy, 1);
		return; /* the client retries its read */
	}
	x->rq = (struct read_req){.request_id = r->request_id,
				  .from = r->cont ? r->cont_ts + 1 : r->from_ts,
				  .to = r->to_ts,
				  .max = r->max_points,
				  .key_len = r->key_len,
				  .level = r->level,
				  .ra = *ra};
	memcpy(x->rq.key, r->key, r->key_len);
	uint64_t sid = sl_series_id(r->key, r->key_len);
	outbox_send(w, w->node->regions[sl_node_region_of(sid, w->node->cfg.regions)].worker, x);
}

/* On the region's core: run the query, turn the message into the result frame. */
static void read_serve(struct worker *w, struct xmsg *x)
{
	struct read_req *q = &x->rq;
	uint64_t sid = sl_series_id(q->key, q->key_len);
	struct region *r = &w->node->regions[sl_node_region_of(sid, w->node->cfg.regions)];
	struct sl_sample samples[SL_SESS_RESULT_POINTS_MAX];
	/* one result per datagram, and a datagram fits one 1500-byte frame (no IP fragments
	 * here either): the client continues from cont_ts */
	const size_t fit = (NET_UDP_PAYLOAD_MAX - SL_SESS_HDR_BYTES - SL_SESS_RESULT_FIXED_BYTES) /
			   SL_SESS_PAIR_BYTES;
	size_t max = q->max && q->max < fit ? q->max : fit;
	size_t n = 0;
	uint8_t type = 0, st = SL_SESS_ST_OK;
	int rc = q->from > q->to ? -ENOENT
				 : sl_store_query(r->store, sid, q->from, q->to, samples, max, &n, &type);
	if (rc == -ENOENT)
		st = SL_SESS_ST_NOT_FOUND;
	else if (rc != 0) /* a string series: version 1 of the protocol carries no strings */
		st = SL_SESS_ST_BAD_REQUEST;
	if (st != SL_SESS_ST_OK)
		n = 0, type = 0;
	struct sl_sess_writer wr;
	sl_sess_result_begin(&wr, x->buf, sizeof(x->buf), w->node->cfg.cluster_id, q->request_id,
			     st, n ? type : 0);
	for (size_t i = 0; i < n; i++)
		sl_sess_result_add(&wr, samples[i].ts, samples[i].value);
	if (n == max && n > 0 && samples[n - 1].ts < q->to)
		sl_sess_result_more(&wr, samples[n - 1].ts);
	x->used = (uint32_t)sl_sess_finish(&wr);
	x->kind = XMSG_READ_RESULT;
	unsigned back = x->src;
	x->src = (uint16_t)w->idx;
	outbox_send(w, back, x);
}

static void net_session(struct worker *w, const struct sl_pkt_info *in, uint16_t port)
{
	struct sl_sess_msg m;
	sl_stats_add(w->st, SL_STAT_sess_msgs, 1);
	enum sl_sess_err e = sl_sess_decode(in->payload, in->payload_len, w->node->cfg.cluster_id, &m);
	struct reply_addr ra = {.port = port, .udp_port = in->src_port, .ip = in->src_ip};
	memcpy(ra.mac, in->eth_src, 6);
	if (e != SL_SESS_OK) {
		sl_stats_add(w->st, SL_STAT_sess_bad, 1);
		if (e >= SL_SESS_ERR_TRUNCATED && e <= SL_SESS_ERR_BAD_POINT)
			sl_stats_add(w->st, (enum sl_stat)(SL_STAT_sess_truncated +
							   (e - SL_SESS_ERR_TRUNCATED)), 1);
		/* Answer only frames that passed the CRC and cluster checks: corrupt or
		 * foreign junk is counted, never answered (no replies to spoofed garbage). */
		if (e > SL_SESS_ERR_WRONG_CLUSTER) {
			struct sl_sess_msg err = {.type = SL_SESS_ERROR,
						  .cluster_id = w->node->cfg.cluster_id};
			uint8_t rtype;
			uint64_t ref;
			sl_sess_peek_ref(in->payload, in->payload_len, &rtype, &ref);
			const char *text = sl_sess_err_name(e);
			err.u.error = (struct sl_sess_error){.ref_id = ref,
							     .code = (uint16_t)e,
							     .ref_type = rtype,
							     .text_len = (uint16_t)strlen(text),
							     .text = text};
			sess_send(w, &ra, &err);
		}
		return;
	}
	struct sl_sess_msg out = {.cluster_id = w->node->cfg.cluster_id};
	switch (m.type) {
	case SL_SESS_OPEN:
		sl_stats_add(w->st, SL_STAT_sess_opens, 1);
		out.type = SL_SESS_OPEN_OK;
		sl_sess_on_open(&w->sess, &m.u.open, (int64_t)now_ns(), &out.u.open_ok);
		sess_send(w, &ra, &out);
		break;
	case SL_SESS_BATCH:
		sess_batch(w, &m.u.batch, &ra);
		break;
	case SL_SESS_READ:
		sess_read(w, &m.u.read, &ra);
		break;
	case SL_SESS_CLOSE:
		out.type = SL_SESS_CLOSE_OK;
		sl_sess_on_close(&w->sess, &m.u.close, &out.u.close_ok);
		sess_send(w, &ra, &out);
		break;
	default: /* node-to-client types sent to the node */
		sl_stats_add(w->st, SL_STAT_sess_bad, 1);
		break;
	}
}

/* One good line of line protocol: each field is its own series point. */
static int lp_line_cb(void *arg, const struct sl_lp_line *line)
{
	struct worker *w = arg;
	for (uint32_t i = 0; i < line->n_fields; i++) {
		const struct sl_lp_field *f = &line->fields[i];
		struct sl_point pt = {.series_id = f->series_id,
				      .ts = line->ts,
				      .type = f->type,
				      .value = f->type == SL_VAL_STR ? 0 : f->value,
				      .key_len = f->key_len,
				      .key = f->key,
				      .str = f->type == SL_VAL_STR ? f->str : NULL,
				      .str_len = f->type == SL_VAL_STR ? f->str_len : 0};
		route_point_wait(w, NO_ACK, &pt);
		sl_stats_add(w->st, SL_STAT_points_in, 1);
	}
	return 0;
}

static void net_udp(struct worker *w, const struct sl_pkt_info *in, uint16_t port)
{
	struct sl_node *n = w->node;
	if (in->dst_port == n->cfg.session_port) {
		net_session(w, in, port);
		return;
	}
	if (in->dst_port == n->cfg.line_port) {
		struct sl_lp_opts o = {.precision = n->precision, .now_ns = wall_ns()};
		sl_lp_parse_datagram((const char *)in->payload, in->payload_len, &o, w->lp,
				     lp_line_cb, w, &w->lpc);
		return;
	}
	sl_stats_add(w->st, SL_STAT_udp_no_listener, 1);
}

static int poll_net(struct worker *w)
{
	struct sl_node *n = w->node;
	int work = 0;
	for (uint16_t i = 0; i < n->ports.n; i++) {
		const struct sl_port *p = &n->ports.p[i];
		if (w->idx >= p->n_queues)
			continue;
		uint16_t q = (uint16_t)w->idx;
		struct rte_mbuf *pkts[RX_BURST];
		uint16_t got = rte_eth_rx_burst(p->port_id, q, pkts, RX_BURST);
		work += got;
		sl_stats_add(w->st, SL_STAT_pkts_rx, got);
		for (uint16_t k = 0; k < got; k++) {
			struct rte_mbuf *m = pkts[k];
			if (m->nb_segs != 1) {
				sl_stats_add(w->st, SL_STAT_pkts_multiseg, 1);
				sl_stats_add(w->st, SL_STAT_pkts_dropped, 1);
				rte_pktmbuf_free(m);
				continue;
			}
			struct sl_pkt_info in;
			enum sl_pkt_verdict v = sl_pkt_classify(rte_pktmbuf_mtod(m, const uint8_t *),
								rte_pktmbuf_data_len(m), &n->local, &in);
			switch (v) {
			case SL_PKT_UDP_FOR_US:
				net_udp(w, &in, i);
				break;
			case SL_PKT_ARP_REQUEST_FOR_US:
				sl_pkt_arp_insert(&w->arp, in.src_ip, in.src_mac, (int64_t)now_ns());
				net_reply(w, p, q, &in, true);
				break;
			case SL_PKT_ARP_REPLY:
				sl_pkt_arp_insert(&w->arp, in.src_ip, in.src_mac, (int64_t)now_ns());
				break;
			case SL_PKT_ICMP_ECHO_FOR_US:
				net_reply(w, p, q, &in, false);
				break;
			case SL_PKT_DROP:
			default:
				sl_stats_add(w->st, SL_STAT_pkts_dropped, 1);
				if (in.reason >= SL_PKT_DROP_TRUNCATED &&
				    in.reason <= SL_PKT_DROP_UNSUPPORTED_PROTO)
					sl_stats_add(w->st,
						     (enum sl_stat)(SL_STAT_drop_truncated +
								    (in.reason - SL_PKT_DROP_TRUNCATED)),
						     1);
				break;
			}
			rte_pktmbuf_free(m);
		}
	}
	return work;
}

/* Line protocol counters live in the parser's struct; publish their growth. */
static void lp_stats(struct worker *w)
{
	struct sl_lp_counts *c = &w->lpc, *o = &w->lpc_published;
	sl_stats_add(w->st, SL_STAT_lp_lines, c->lines_ok - o->lines_ok);
	sl_stats_add(w->st, SL_STAT_lp_lines_bad, c->lines_bad - o->lines_bad);
	sl_stats_add(w->st, SL_STAT_lp_points, c->points - o->points);
	for (int e = SL_LP_ERR_SYNTAX_MEASUREMENT; e <= SL_LP_ERR_SCRATCH; e++)
		if (c->bad[e] != o->bad[e])
			sl_stats_add(w->st,
				     (enum sl_stat)(SL_STAT_lp_syntax_measurement +
						    (e - SL_LP_ERR_SYNTAX_MEASUREMENT)),
				     c->bad[e] - o->bad[e]);
	*o = *c;
}

/* ---------------------------------------------------------------- ctl requests */

static void serve_ctl(struct worker *w)
{
	void *obj;
	while (rte_ring_sc_dequeue(w->ctlq, &obj) == 0) {
		struct ctl_req *q = obj;
		struct sl_node *n = w->node;
		struct region *r = &n->regions[q->region];
		if (q->kind == CTL_WAL_FAULT) {
			q->rc = w->wal_failed ? -EIO
					      : sl_wal_inject_fault(w->wal, (enum sl_wal_op)q->fault_op,
								    q->fault_err, (uint32_t)q->limit);
		} else if (q->kind == CTL_QUERY) {
			q->rc = sl_store_query_ex(r->store, q->series_id, q->from, q->to,
						  q->samples, q->limit, q->strbuf, q->str_cap,
						  &q->n_samples, &q->str_used, &q->type);
		} else if (q->kind == CTL_REGIONS) {
			struct sl_store_stats ss;
			struct sl_cons_status cs;
			sl_store_stats(r->store, &ss);
			r->ops->status(r->cons, &cs);
			struct json_object *o = json_object_new_object();
			char lo[24], hi[24];
			snprintf(lo, sizeof(lo), "0x%016" PRIx64, r->hash_lo);
			snprintf(hi, sizeof(hi), "0x%016" PRIx64, r->hash_hi);
			json_object_object_add(o, "id", json_object_new_int(r->id));
			json_object_object_add(o, "core", json_object_new_int(w->idx));
			json_object_object_add(o, "lcore", json_object_new_int(w->lcore));
			json_object_object_add(o, "protocol", json_object_new_string(r->ops->name));
			json_object_object_add(o, "hash_lo", json_object_new_string(lo));
			json_object_object_add(o, "hash_hi", json_object_new_string(hi));
			json_object_object_add(o, "series", json_object_new_int64((int64_t)ss.series));
			json_object_object_add(o, "points", json_object_new_int64((int64_t)ss.points));
			json_object_object_add(o, "bytes", json_object_new_int64((int64_t)ss.bytes));
			json_object_object_add(o, "commit_index",
					       json_object_new_int64((int64_t)cs.commit_index));
			json_object_object_add(o, "applied_index",
					       json_object_new_int64((int64_t)r->applied_index));
			json_object_object_add(o, "snapshot_index",
					       json_object_new_int64((int64_t)r->snapshot_index));
			json_object_object_add(o, "rejected",
					       json_object_new_int64((int64_t)r->points_rejected));
			q->json = o;
			q->rc = 0;
		}
		atomic_store_explicit(&q->done, 1, memory_order_release);
	}
}

static int worker_call(struct sl_node *n, unsigned worker, struct ctl_req *q)
{
	atomic_store(&q->done, 0);
	if (rte_ring_mp_enqueue(n->w[worker].ctlq, q) != 0)
		return -EBUSY;
	/* Workers answer every loop iteration; 5 s means a wedged core. */
	for (int i = 0; i < 50000; i++) {
		if (atomic_load_explicit(&q->done, memory_order_acquire))
			return 0;
		rte_delay_us_sleep(100);
	}
	/* The request stays owned by the ring: leak it rather than free memory a worker may
	 * still write. */
	return -ETIMEDOUT;
}

/* ---------------------------------------------------------------- the lcore loop */

/* Counters gather in a private block during a round and are published in one short
 * seqlock write, so readers in other processes never wait on a long round. */
static void stats_publish(struct worker *w)
{
	struct sl_stats_core *d = &w->st_local, *o = w->st_shm;
	sl_stats_begin(o);
	for (int k = 0; k < SL_STATS_N_COUNTERS; k++) {
		uint64_t v = atomic_load_explicit(&d->counters[k], memory_order_relaxed);
		if (v) {
			sl_stats_add(o, (enum sl_stat)k, v);
			atomic_store_explicit(&d->counters[k], 0, memory_order_relaxed);
		}
	}
	for (int b = 0; b < SL_STATS_HIST_BUCKETS; b++) {
		uint64_t v = atomic_load_explicit(&d->ack_latency_hist[b], memory_order_relaxed);
		if (v) {
			sl_stats_bump_(&o->ack_latency_hist[b], v);
			atomic_store_explicit(&d->ack_latency_hist[b], 0, memory_order_relaxed);
		}
	}
	sl_stats_bump_(&o->ack_latency_sum_ns,
		       atomic_load_explicit(&d->ack_latency_sum_ns, memory_order_relaxed));
	atomic_store_explicit(&d->ack_latency_sum_ns, 0, memory_order_relaxed);
	sl_stats_end(o);
}

static void worker_idle(struct worker *w, bool flush_in_flight)
{
	if (w->node->cfg.poll_mode == SL_POLL_PERF) {
		rte_pause();
		return;
	}
	sl_stats_add(w->st, SL_STAT_idle_sleeps, 1);
	/* A flush in flight will complete soon: stay responsive. */
	uint32_t cap = flush_in_flight ? 20 : w->node->cfg.idle_sleep_us_max;
	w->idle_us = w->idle_us == 0 ? 1 : w->idle_us * 2;
	if (w->idle_us > cap)
		w->idle_us = cap;
	rte_delay_us_sleep(w->idle_us);
}

/* Everything that moves taken work towards its acknowledgement: proposals, the WAL,
 * commits, acks, parked messages. Also what a core runs while it waits for ring room, so
 * waiting never stops its own regions from draining. */
static int progress(struct worker *w)
{
	struct sl_node *n = w->node;
	int work = drain_inputs(w);
	uint64_t now = now_ns();
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker != w->idx)
			continue;
		r->ops->tick(r->cons, now);
		prop_close(w, r);
		region_process_ready(w, r);
	}
	if (!w->wal_failed && sl_wal_pending_bytes(w->wal) > 0) {
		int rc = sl_wal_flush(w->wal);
		if (rc < 0 && rc != -EBUSY && rc != -EAGAIN)
			wal_fail(w, rc);
		else if (rc == 0)
			sl_stats_add(w->st, SL_STAT_wal_flushes, 1);
	}
	if (!w->wal_failed) {
		uint64_t before = sl_wal_durable_lsn(w->wal);
		wal_completions(w);
		if (sl_wal_durable_lsn(w->wal) != before) {
			sl_stats_add(w->st, SL_STAT_wal_fsyncs, 1);
			work++;
		}
	}
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker == w->idx)
			region_process_ready(w, r);
	}
	flush_ack_msgs(w);
	work += outbox_flush(w);
	return work;
}

static void worker_round(struct worker *w, bool take_new)
{
	struct sl_node *n = w->node;
	int work = 0;
	serve_ctl(w);
	if (take_new && w->stalled == NULL) { /* after a WAL failure: read and refuse (-EIO) */
		work += poll_ingest(w);
		work += poll_net(w);
	}
	work += progress(w);
	if (now_ns() >= (uint64_t)w->next_expire_ns) {
		sl_sess_expire(&w->sess, (int64_t)now_ns(), 64);
		w->next_expire_ns = (int64_t)now_ns() + 100000000; /* 100 ms */
	}
	lsnq_trim(w);
	if (w->ckpt_active || w->wal_bytes_since_ckpt >= (uint64_t)n->cfg.checkpoint_mb << 20)
		checkpoint_step(w);
	sl_stats_add(w->st, work ? SL_STAT_polls_busy : SL_STAT_polls_idle, 1);
	lp_stats(w);
	stats_publish(w);
	if (work == 0)
		worker_idle(w, sl_wal_durable_lsn(w->wal) < sl_wal_last_lsn(w->wal));
	else
		w->idle_us = 0;
}

static bool worker_quiet(struct worker *w)
{
	if (w->stalled != NULL || w->local_len > 0)
		return false;
	for (unsigned d = 0; d < w->node->n_workers; d++)
		if (w->fill_pts[d] != NULL || w->fill_acks[d] != NULL ||
		    (d != w->idx && rte_ring_count(w->in[d]) > 0))
			return false;
	if (w->wal_failed)
		return true;
	return sl_wal_durable_lsn(w->wal) == sl_wal_last_lsn(w->wal) && w->lsn_len == w->lsn_durable;
}

int sl_node_worker_main(void *arg)
{
	struct worker *w = arg;
	struct sl_node *n = w->node;
	while (!atomic_load_explicit(&n->stop, memory_order_relaxed))
		worker_round(w, true);
	/* Drain: finish what was taken, make it durable, acknowledge it. Bounded: 10 s. */
	uint64_t deadline = now_ns() + 10ull * 1000000000ull;
	while (now_ns() < deadline) {
		worker_round(w, false);
		if (worker_quiet(w))
			break;
	}
	return 0;
}

void *sl_node_worker_arg(struct sl_node *n, unsigned i) { return &n->w[i]; }

/* ---------------------------------------------------------------- recovery */

struct replay_ctx {
	struct sl_node *n;
	struct worker *w;
	uint64_t entries, points, skipped, bad, sessions;
};

static int replay_record(void *arg, uint64_t lsn, uint16_t type, const uint8_t *p, uint32_t len)
{
	struct replay_ctx *c = arg;
	(void)lsn;
	if (type == WAL_REC_SESSION && len == SESSION_REC_BYTES && p[0] == 3) {
		/* a session batch was durable: a retry of it is a duplicate */
		sl_sess_recover_durable(&c->w->sess, sl_get_u64(p + 1), sl_get_u64(p + 9),
					(int64_t)now_ns());
		c->sessions++;
		return 0;
	}
	bool hs = type == WAL_REC_HARDSTATE && len == HARDSTATE_BYTES && p[0] == 2;
	if (!hs && (type != WAL_REC_ENTRY || len < ENTRY_HDR || p[0] != 1)) {
		c->bad++;
		return 0;
	}
	uint32_t region = sl_get_u32(p + 1);
	if (region >= c->n->cfg.regions || c->n->regions[region].worker != c->w->idx) {
		c->bad++;
		return 0;
	}
	struct region *r = &c->n->regions[region];
	if (hs) {
		r->hs = (struct sl_cons_hard_state){sl_get_u64(p + 5), sl_get_u32(p + 13),
						    sl_get_u64(p + 17)};
		return 0;
	}
	uint64_t term = sl_get_u64(p + 5);
	uint64_t index = sl_get_u64(p + 13);
	uint32_t etype = sl_get_u32(p + 21);
	if (r->reads_log) {
		/* raft: rebuild the log; the protocol hands committed entries out again and
		 * the node applies them then (a later record at an index replaces the suffix) */
		if (index <= r->rlog.base_index) {
			c->skipped++;
			return 0;
		}
		struct sl_cons_entry e = {term, index, 0, etype, len - ENTRY_HDR, p + ENTRY_HDR};
		if (sl_rlog_append(&r->rlog, &e) != 0) {
			c->bad++;
			return 0;
		}
		r->last_index = index;
		c->entries++;
		return 0;
	}
	if (index > r->last_index)
		r->last_index = index;
	if (index <= r->applied_index) {
		c->skipped++;
		return 0;
	}
	if (etype == SL_CONS_ENTRY_NORMAL) {
		struct sl_batch_iter it;
		if (sl_batch_iter_init(&it, p + ENTRY_HDR, len - ENTRY_HDR) != 0) {
			c->bad++;
			return 0;
		}
		uint64_t before = r->points_applied;
		apply_entry(r, p + ENTRY_HDR, len - ENTRY_HDR, NULL);
		c->points += r->points_applied - before;
	}
	r->applied_index = index;
	c->entries++;
	return 0;
}

static uint64_t log_last_index(void *ctx) { return ((struct region *)ctx)->last_index; }
/* Standalone never reads its log back: the view only reports where it ends. */
static uint64_t log_first_index(void *ctx) { return ((struct region *)ctx)->snapshot_index + 1; }
static int log_term(void *ctx, uint64_t index, uint64_t *term)
{
	(void)ctx;
	(void)index;
	*term = 1;
	return 0;
}
static int log_entry(void *ctx, uint64_t index, struct sl_cons_entry *out)
{
	(void)ctx;
	(void)index;
	(void)out;
	return -ENOENT; /* entries live in the WAL only; standalone never reads back */
}

static int mkdir_p(const char *path)
{
	char tmp[SL_CFG_PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* node.meta pins the region layout: WAL records name regions by number. */
static int check_meta(const struct sl_node *n, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/node.meta", n->cfg.data_dir);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		f = fopen(path, "w");
		if (f == NULL) {
			snprintf(err, err_len, "%s: %s", path, strerror(errno));
			return -errno;
		}
		fprintf(f, "format=1\nnode_id=%u\nworkers=%u\nregions=%u\n", n->cfg.node_id,
			n->n_workers, n->cfg.regions);
		int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
		fclose(f);
		if (rc != 0)
			snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	unsigned fmt = 0, id = 0, workers = 0, regions = 0;
	int got = fscanf(f, "format=%u\nnode_id=%u\nworkers=%u\nregions=%u", &fmt, &id, &workers,
			 &regions);
	fclose(f);
	if (got != 4 || fmt != 1) {
		snprintf(err, err_len, "%s: unreadable node metadata (refusing to guess)", path);
		return -EBADMSG;
	}
	if (workers != n->n_workers || regions != n->cfg.regions) {
		snprintf(err, err_len,
			 "%s: this data dir was written with workers=%u regions=%u but the "
			 "config asks for workers=%u regions=%u; start with the original values",
			 path, workers, regions, n->n_workers, n->cfg.regions);
		return -EINVAL;
	}
	return 0;
}

static int region_load_snapshot(struct sl_node *n, struct region *r, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	snap_path(n, r->id, path, sizeof(path), "");
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	uint64_t idx = 0;
	int rc = sl_store_snapshot_read(r->store, fd, &idx);
	close(fd);
	if (rc != 0) {
		snprintf(err, err_len, "%s: snapshot is corrupt (%s); refusing to start", path,
			 strerror(-rc));
		return rc;
	}
	r->applied_index = r->snapshot_index = r->last_index = idx;
	if (r->reads_log) {
		r->snapshot_term = read_term_file(n, r, idx);
		sl_rlog_compact(&r->rlog, idx, r->snapshot_term);
	}
	return 0;
}

/* raft log copies come from the owning core's arena */
static void *rlog_alloc(void *ctx, size_t n) { return sl_arena_alloc(*(unsigned *)ctx, n); }
static void rlog_free(void *ctx, void *p) { sl_arena_free(*(unsigned *)ctx, p); }

static int worker_init(struct sl_node *n, struct worker *w, char *err, size_t err_len)
{
	char path[SL_CFG_PATH_MAX + 64];
	w->tsc_hz = rte_get_tsc_hz();
	w->st_shm = sl_stats_core(n->stats, w->idx);
	w->st = &w->st_local;
	enum sl_arena_mode got;
	/* the arena module probes and falls back by itself; the mode is reported once */
	int rc = sl_arena_create(SL_ARENA_HUGETLB, &w->arena, &got);
	if (rc != 0) {
		snprintf(err, err_len, "worker %u: arena: %s", w->idx, strerror(-rc));
		return rc;
	}
	n->arena_mode = got;
	w->pend = calloc(PEND_MAX, sizeof(*w->pend));
	w->pend_free = calloc(PEND_MAX, sizeof(*w->pend_free));
	w->lsnq = calloc(LSNQ_SIZE, sizeof(*w->lsnq));
	w->recs = calloc(INGEST_BURST, sizeof(*w->recs));
	w->lp = calloc(1, sizeof(*w->lp));
	size_t scratch = SL_LP_SCRATCH_BYTES(SL_LP_LINE_MAX);
	char *lp_scratch = malloc(scratch);
	if (w->lp) {
		w->lp->scratch = lp_scratch;
		w->lp->scratch_cap = scratch;
	}
	sl_pkt_arp_init(&w->arp, 300ll * 1000000000ll);
	w->sessq = calloc(SESSQ_SIZE, sizeof(*w->sessq));
	for (unsigned d = 0; d < n->n_workers; d++)
		if ((w->ack_backlog[d] = calloc(ACK_BACKLOG, sizeof(struct xack))) == NULL)
			w->sessq = NULL; /* reported below */
	w->sess_mem = malloc(sl_sess_table_mem_bytes(SESS_CAPACITY));
	struct sl_sess_config scfg = {.capacity = SESS_CAPACITY,
				      .window = 1024,
				      .idle_timeout_ns = 600ll * 1000000000ll,
				      .keep_min_ns = 60ll * 1000000000ll,
				      .incarnation = ((uint64_t)time(NULL) << 16) ^ w->idx,
				      .hash_seed = rte_rdtsc()};
	if (w->sess_mem == NULL || w->sessq == NULL ||
	    sl_sess_table_init(&w->sess, w->sess_mem, sl_sess_table_mem_bytes(SESS_CAPACITY),
			       &scfg) != 0) {
		snprintf(err, err_len, "out of memory for the session table");
		return -ENOMEM;
	}
	if (!w->pend || !w->pend_free || !w->lsnq || !w->recs || !w->lp || !lp_scratch) {
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < PEND_MAX; i++)
		w->pend_free[w->n_pend_free++] = PEND_MAX - 1 - i;
	for (size_t i = 0; i < SL_ARRAY_LEN(w->slot_cur); i++)
		w->slot_cur[i] = UINT32_MAX;
	snprintf(path, sizeof(path), "sl_ctl_%u", w->idx);
	w->ctlq = rte_ring_create(path, CTLQ_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (w->ctlq == NULL) {
		snprintf(err, err_len, "ring %s: %s", path, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* regions of this worker: stores, snapshots */
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker != w->idx)
			continue;
		r->reads_log = strcmp(n->cfg.protocol, "standalone") != 0;
		r->prop_cap = r->reads_log ? RAFT_PROP_BYTES : PROP_BYTES;
		sl_rlog_init(&r->rlog, 0, 0);
		sl_rlog_set_alloc(&r->rlog, rlog_alloc, rlog_free, &w->arena);
		struct sl_store_config sc = {.region_id = r->id, .arena = w->arena, .use_arena = true};
		rc = sl_store_create(&sc, &r->store);
		if (rc != 0) {
			snprintf(err, err_len, "region %u: store: %s", r->id, strerror(-rc));
			return rc;
		}
		for (int k = 0; k < PROP_SLOTS; k++) {
			r->props[k].buf = sl_arena_alloc(w->arena, PROP_BYTES);
			if (r->props[k].buf == NULL) {
				snprintf(err, err_len, "out of memory for proposal buffers");
				return -ENOMEM;
			}
		}
		r->open = -1;
		rc = region_load_snapshot(n, r, err, err_len);
		if (rc != 0)
			return rc;
	}
	rc = sessions_load(w, err, err_len);
	if (rc != 0)
		return rc;
	/* WAL: recover into the stores, then open the regions' protocols */
	struct sl_wal_config wc;
	sl_wal_config_default(&wc);
	snprintf(path, sizeof(path), "%s/wal/core-%02u", n->cfg.data_dir, w->idx);
	wc.dir = path;
	wc.segment_bytes = (uint64_t)n->cfg.wal_segment_mb << 20;
	wc.buffer_bytes = n->cfg.wal_buffer_kb << 10;
	wc.no_direct = !n->cfg.wal_direct_io;
	wc.salvage = n->cfg.wal_salvage;
	rc = sl_wal_open(&wc, &w->wal);
	if (rc != 0) {
		snprintf(err, err_len, "WAL %s: %s", path, strerror(-rc));
		return rc;
	}
	struct replay_ctx ctx = {.n = n, .w = w};
	struct sl_wal_recovery rep;
	memset(&rep, 0, sizeof(rep));
	rc = sl_wal_recover(w->wal, replay_record, &ctx, &rep);
	if (rc != 0) {
		snprintf(err, err_len,
			 "WAL %s: recovery failed (%s): %s. Set [wal] salvage = true to cut the "
			 "log at the damage (losing what follows it)",
			 path, strerror(-rc),
			 rc == -EBADMSG ? "corruption in the middle of the log" : "I/O error");
		return rc;
	}
	n->recovered_entries += ctx.entries;
	n->recovered_points += ctx.points;
	if (rep.torn_tail_cut || rep.salvaged)
		fprintf(stderr,
			"sluiced: WAL %s: %s at %s offset %" PRIu64 " (%s); log cut there\n", path,
			rep.salvaged ? "corruption salvaged" : "torn tail of an unfinished write",
			rep.bad_segment, rep.bad_offset,
			rep.salvaged ? "data after it is lost" : "nothing there was acknowledged");
	if (rep.records > 0)
		fprintf(stderr, "sluiced: WAL %s: %" PRIu64 " records replayed (%" PRIu64
				" entries, %" PRIu64 " points applied, %" PRIu64 " already in snapshots)\n",
			path, rep.records, ctx.entries, ctx.points, ctx.skipped);
	if (ctx.bad > 0)
		fprintf(stderr, "sluiced: WAL %s: %" PRIu64 " unreadable entries skipped\n", path,
			ctx.bad);
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker != w->idx)
			continue;
		r->ops = sl_cons_find(n->cfg.protocol);
		SL_ASSERT(r->ops != NULL);
		if (r->reads_log)
			sl_rlog_view(&r->rlog, &r->view);
		else
			r->view = (struct sl_cons_log){r, log_first_index, log_last_index, log_term,
						       log_entry};
		struct sl_cons_config cc;
		memset(&cc, 0, sizeof(cc));
		cc.group_id = r->id;
		cc.self = n->cfg.node_id;
		cc.n_voters = 1;
		cc.voters[0] = n->cfg.node_id;
		cc.seed = ((uint64_t)n->cfg.node_id << 32) ^ r->id;
		cc.election_timeout_ns = (uint64_t)n->cfg.election_timeout_ms * 1000000ull;
		cc.heartbeat_interval_ns = cc.election_timeout_ns / 10;
		cc.max_batch_entries = 64;
		cc.max_inflight_bytes = 4u << 20;
		if (r->reads_log) {
			cc.initial = r->hs; /* as recovered from the WAL */
			r->raft_opts = (struct sl_raft_opts){
				.max_msg_bytes = RAFT_PROP_BYTES + (16u << 10),
				.max_unstable_bytes = PROP_SLOTS * (RAFT_PROP_BYTES + (16u << 10)),
				.max_apply_bytes = 4u * (RAFT_PROP_BYTES + (16u << 10))};
			cc.proto_opts = &r->raft_opts;
			r->recover_target = sl_rlog_last(&r->rlog);
		} else {
			cc.initial.term = 1;
			cc.initial.commit = r->last_index;
		}
		cc.log = &r->view;
		rc = r->ops->create(&cc, &r->cons);
		if (rc != 0) {
			snprintf(err, err_len, "region %u: protocol %s: %s", r->id,
				 n->cfg.protocol, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int sl_node_create(const struct sl_config *cfg, const struct sl_node_env *env,
		   struct sl_node **out, char *err, size_t err_len)
{
	struct sl_node *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	n->cfg = *cfg;
	n->env = *env;
	n->n_workers = env->n_workers;
	n->start_ns = now_ns();
	int rc;
	char path[SL_CFG_PATH_MAX + 32];
	if (sl_cons_find(cfg->protocol) == NULL) {
		snprintf(err, err_len, "protocol '%s' is not built into this sluiced",
			 cfg->protocol);
		rc = -ENOTSUP;
		goto fail;
	}
	if ((rc = mkdir_p(cfg->data_dir)) != 0) {
		snprintf(err, err_len, "data dir %s: %s", cfg->data_dir, strerror(-rc));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/snap", cfg->data_dir);
	if ((rc = mkdir_p(path)) != 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		goto fail;
	}
	if ((rc = check_meta(n, err, err_len)) != 0)
		goto fail;
	n->regions = calloc(cfg->regions, sizeof(*n->regions));
	n->w = rte_zmalloc("sl_workers", sizeof(*n->w) * n->n_workers, RTE_CACHE_LINE_SIZE);
	if (n->regions == NULL || n->w == NULL) {
		snprintf(err, err_len, "out of memory at start-up");
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < cfg->regions; i++) {
		struct region *r = &n->regions[i];
		r->id = i;
		r->worker = i % n->n_workers;
		r->hash_lo = (uint64_t)((((unsigned __int128)i << 64) + cfg->regions - 1) /
					cfg->regions);
		r->hash_hi = i + 1 == cfg->regions
				     ? UINT64_MAX
				     : (uint64_t)((((unsigned __int128)(i + 1) << 64) +
						   cfg->regions - 1) / cfg->regions) - 1;
		r->open = -1;
	}
	n->xpool = rte_mempool_create("sl_xmsg", XMSG_POOL, sizeof(struct xmsg), 64, 0, NULL,
				      NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (n->xpool == NULL) {
		snprintf(err, err_len, "mempool for cross-core messages: %s (raise [eal] memory_mb)",
			 rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto fail;
	}
	rc = sl_stats_create(cfg->stats_path, n->n_workers, &n->stats);
	if (rc != 0) {
		snprintf(err, err_len, "stats segment %s: %s", cfg->stats_path, strerror(-rc));
		goto fail;
	}
	for (unsigned i = 0; i < n->n_workers; i++) {
		n->w[i].node = n;
		n->w[i].idx = i;
		n->w[i].lcore = env->worker_lcores[i];
	}
	for (unsigned s = 0; s < n->n_workers; s++)
		for (unsigned d = 0; d < n->n_workers; d++) {
			if (s == d)
				continue;
			char name[32];
			snprintf(name, sizeof(name), "sl_x_%u_%u", s, d);
			struct rte_ring *r = rte_ring_create(name, XRING_SIZE, SOCKET_ID_ANY,
							     RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (r == NULL) {
				snprintf(err, err_len, "ring %s: %s", name, rte_strerror(rte_errno));
				rc = -ENOMEM;
				goto fail;
			}
			n->w[s].out[d] = r;
			n->w[d].in[s] = r;
		}
	for (unsigned i = 0; i < n->n_workers; i++)
		if ((rc = worker_init(n, &n->w[i], err, err_len)) != 0)
			goto fail;
	/* said once: where the workers' store memory comes from */
	fprintf(stderr, "sluiced: worker memory arenas: %s%s\n", sl_arena_mode_name(n->arena_mode),
		n->arena_mode == SL_ARENA_HUGETLB ? ""
						  : " (no free 2 MiB hugepages: falling back, not failing)");
	rc = sl_lp_precision_parse(cfg->precision, &n->precision);
	if (rc != 0) {
		snprintf(err, err_len, "[net] precision '%s' not understood", cfg->precision);
		goto fail;
	}
	rc = sl_ports_init(&n->ports, (uint16_t)n->n_workers, cfg->mbufs, err, err_len);
	if (rc != 0)
		goto fail;
	if (n->ports.n > 0) {
		memcpy(n->local.mac, n->ports.p[0].mac.addr_bytes, 6);
		n->local.n_ips = 1;
		n->local.ips[0] = cfg->ipv4_addr;
	}
	rc = sl_ingest_create(cfg->shm_ingest_path, cfg->shm_slots, cfg->shm_ring_entries,
			      &n->ingest);
	if (rc != 0) {
		snprintf(err, err_len, "shm ingest ring %s: %s", cfg->shm_ingest_path,
			 strerror(-rc));
		goto fail;
	}
	*out = n;
	return 0;
fail:
	sl_node_destroy(n);
	return rc;
}

void sl_node_housekeeping(struct sl_node *n)
{
	sl_ingest_heartbeat(n->ingest);
}

void sl_node_stop(struct sl_node *n) { atomic_store(&n->stop, true); }

bool sl_node_failed(const struct sl_node *n) { return atomic_load(&n->failed); }

bool sl_node_stopping(const struct sl_node *n) { return atomic_load(&n->stop); }

bool sl_node_recovered(const struct sl_node *n)
{
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		const struct region *r = &n->regions[i];
		/* written by the owning worker; a stale read only delays serving */
		if (__atomic_load_n(&r->applied_index, __ATOMIC_RELAXED) < r->recover_target)
			return false;
	}
	return true;
}

void sl_node_destroy(struct sl_node *n)
{
	if (n == NULL)
		return;
	if (n->ingest)
		sl_ingest_destroy(n->ingest, true);
	sl_ports_close(&n->ports);
	for (unsigned i = 0; n->w && i < n->n_workers; i++) {
		struct worker *w = &n->w[i];
		if (w->wal)
			sl_wal_close(w->wal);
		free(w->pend);
		free(w->pend_free);
		free(w->lsnq);
		free(w->recs);
		if (w->lp)
			free(w->lp->scratch);
		free(w->lp);
		free(w->sessq);
		free(w->sess_mem);
		for (unsigned d = 0; d < n->n_workers; d++)
			free(w->ack_backlog[d]);
		rte_ring_free(w->ctlq);
		for (unsigned d = 0; d < n->n_workers; d++)
			rte_ring_free(w->out[d]);
	}
	for (uint32_t i = 0; n->regions && i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->cons)
			r->ops->destroy(r->cons);
		if (r->store)
			sl_store_destroy(r->store);
		sl_rlog_free(&r->rlog);
		for (int k = 0; k < PROP_SLOTS; k++)
			if (r->props[k].buf)
				sl_arena_free(n->w[r->worker].arena, r->props[k].buf);
	}
	if (n->stats)
		sl_stats_destroy(n->stats, true);
	rte_mempool_free(n->xpool);
	rte_free(n->w);
	free(n->regions);
	free(n);
}

/* ---------------------------------------------------------------- ctl commands */

static struct json_object *status_json(struct sl_node *n)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "node_id", json_object_new_int(n->cfg.node_id));
	json_object_object_add(o, "name", json_object_new_string(n->cfg.name));
	json_object_object_add(o, "version", json_object_new_string(SLUICE_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "uptime_s",
			       json_object_new_double((double)(now_ns() - n->start_ns) / 1e9));
	json_object_object_add(o, "state", json_object_new_string(
						   sl_node_failed(n) ? "failed (WAL error)" : "serving"));
	json_object_object_add(o, "workers", json_object_new_int((int)n->n_workers));
	json_object_object_add(o, "regions", json_object_new_int((int)n->cfg.regions));
	json_object_object_add(o, "protocol", json_object_new_string(n->cfg.protocol));
	json_object_object_add(o, "poll_mode", json_object_new_string(
						       n->cfg.poll_mode == SL_POLL_PERF ? "perf" : "adaptive"));
	json_object_object_add(o, "eal_memory", json_object_new_string(n->env.hugepage_mode));
	json_object_object_add(o, "arena_pages",
			       json_object_new_string(sl_arena_mode_name(n->arena_mode)));
	json_object_object_add(o, "data_dir", json_object_new_string(n->cfg.data_dir));
	json_object_object_add(o, "stats_path", json_object_new_string(n->cfg.stats_path));
	json_object_object_add(o, "shm_ingest_path",
			       json_object_new_string(n->cfg.shm_ingest_path));
	json_object_object_add(o, "recovered_entries",
			       json_object_new_int64((int64_t)n->recovered_entries));
	json_object_object_add(o, "recovered_points",
			       json_object_new_int64((int64_t)n->recovered_points));
	/* totals from the stats segment, read like any other process would */
	struct sl_stats_reader *rd = NULL;
	if (sl_stats_open(n->cfg.stats_path, &rd) == 0) {
		uint64_t tot[SL_STATS_N_COUNTERS] = {0};
		for (unsigned c = 0; c < n->n_workers; c++) {
			struct sl_stats_snapshot s;
			if (sl_stats_read_core(rd, c, &s) == 0)
				for (int k = 0; k < SL_STATS_N_COUNTERS; k++)
					tot[k] += s.counters[k];
		}
		json_object_object_add(o, "points_in", json_object_new_int64((int64_t)tot[SL_STAT_points_in]));
		json_object_object_add(o, "points_applied",
				       json_object_new_int64((int64_t)tot[SL_STAT_points_applied]));
		json_object_object_add(o, "acks_sent", json_object_new_int64((int64_t)tot[SL_STAT_acks_sent]));
		json_object_object_add(o, "wal_fsyncs", json_object_new_int64((int64_t)tot[SL_STAT_wal_fsyncs]));
		sl_stats_close(rd);
	}
	return o;
}

static struct json_object *stats_json(struct sl_node *n)
{
	struct json_object *o = json_object_new_object();
	struct json_object *cores = json_object_new_array();
	struct json_object *totals = json_object_new_object();
	uint64_t tot[SL_STATS_N_COUNTERS] = {0};
	struct sl_stats_reader *rd = NULL;
	if (sl_stats_open(n->cfg.stats_path, &rd) == 0) {
		for (unsigned c = 0; c < n->n_workers; c++) {
			struct sl_stats_snapshot s;
			struct json_object *co = json_object_new_object();
			if (sl_stats_read_core(rd, c, &s) == 0)
				for (int k = 0; k < SL_STATS_N_COUNTERS; k++) {
					tot[k] += s.counters[k];
					json_object_object_add(co, sl_stats_counter_name(k),
							       json_object_new_int64((int64_t)s.counters[k]));
				}
			json_object_array_add(cores, co);
		}
		sl_stats_close(rd);
	}
	for (int k = 0; k < SL_STATS_N_COUNTERS; k++)
		json_object_object_add(totals, sl_stats_counter_name(k),
				       json_object_new_int64((int64_t)tot[k]));
	json_object_object_add(o, "cores", cores);
	json_object_object_add(o, "totals", totals);
	return o;
}

static int parse_time(struct json_object *args, const char *key, int64_t dflt, int64_t *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(args, key, &v)) {
		*out = dflt;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	*out = json_object_get_int64(v);
	return 0;
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case SL_VAL_F64: return "f64";
	case SL_VAL_I64: return "i64";
	case SL_VAL_U64: return "u64";
	case SL_VAL_BOOL: return "bool";
	case SL_VAL_STR: return "str";
	}
	return "unknown";
}

static struct json_object *value_json(uint8_t t, uint64_t v, const char *str, uint32_t len)
{
	switch (t) {
	case SL_VAL_STR: return json_object_new_string_len(str, (int)len);
	case SL_VAL_F64: {
		double d;
		memcpy(&d, &v, 8);
		return json_object_new_double(d);
	}
	case SL_VAL_I64: return json_object_new_int64((int64_t)v);
	case SL_VAL_U64: return json_object_new_uint64(v);
	case SL_VAL_BOOL: return json_object_new_boolean(v != 0);
	}
	return NULL;
}

#define CTL_ERR(code, ...)                                                                 \
	do {                                                                               \
		*err_code = code;                                                          \
		snprintf(err_msg, err_len, __VA_ARGS__);                                   \
		return -EINVAL;                                                            \
	} while (0)

static int ctl_query(struct sl_node *n, struct json_object *args, struct json_object **result,
		     const char **err_code, char *err_msg, size_t err_len)
{
	struct json_object *sv;
	if (args == NULL || !json_object_object_get_ex(args, "series", &sv) ||
	    !json_object_is_type(sv, json_type_string))
		CTL_ERR("bad_request", "query needs args.series (a series key string)");
	const char *key = json_object_get_string(sv);
	size_t klen = strlen(key);
	if (klen == 0 || klen > SL_KEY_MAX)
		CTL_ERR("bad_request", "series key must be 1..%d bytes", SL_KEY_MAX);
	int64_t from, to, limit;
	if (parse_time(args, "from", INT64_MIN, &from) || parse_time(args, "to", INT64_MAX, &to) ||
	    parse_time(args, "limit", 100000, &limit))
		CTL_ERR("bad_request", "from, to and limit must be integers");
	if (limit <= 0 || limit > 10000000)
		CTL_ERR("bad_request", "limit must be in 1..10000000");
	struct ctl_req q;
	memset(&q, 0, sizeof(q));
	q.kind = CTL_QUERY;
	q.series_id = sl_series_id(key, klen);
	q.region = sl_node_region_of(q.series_id, n->cfg.regions);
	q.from = from;
	q.to = to;
	q.limit = (size_t)limit;
	q.samples = malloc(sizeof(*q.samples) * q.limit);
	q.str_cap = 8u << 20;
	q.strbuf = malloc(q.str_cap);
	if (q.samples == NULL || q.strbuf == NULL) {
		free(q.samples);
		free(q.strbuf);
		CTL_ERR("internal", "out of memory for %" PRId64 " samples", limit);
	}
	int rc = worker_call(n, n->regions[q.region].worker, &q);
	if (rc != 0) {
		if (rc != -ETIMEDOUT) {
			free(q.samples);
			free(q.strbuf);
		}
		CTL_ERR("busy", "worker did not answer: %s", strerror(-rc));
	}
	bool partial = q.rc == -ENOSPC; /* string buffer full: the caller continues */
	if (partial)
		q.rc = 0;
	struct json_object *o = json_object_new_object();
	char sid[24];
	snprintf(sid, sizeof(sid), "0x%016" PRIx64, q.series_id);
	json_object_object_add(o, "series", json_object_new_string(key));
	json_object_object_add(o, "series_id", json_object_new_string(sid));
	json_object_object_add(o, "region", json_object_new_int((int)q.region));
	struct json_object *pts = json_object_new_array_ext((int)q.n_samples);
	if (q.rc == 0) {
		json_object_object_add(o, "type", json_object_new_string(type_name(q.type)));
		for (size_t i = 0; i < q.n_samples; i++) {
			struct json_object *p = json_object_new_array_ext(2);
			json_object_array_add(p, json_object_new_int64(q.samples[i].ts));
			json_object_array_add(p, value_json(q.type, q.samples[i].value,
							    q.strbuf + q.samples[i].str_off,
							    q.samples[i].str_len));
			json_object_array_add(pts, p);
		}
	}
	json_object_object_add(o, "points", pts);
	json_object_object_add(o, "truncated",
			       json_object_new_boolean(q.rc == 0 && (partial || q.n_samples == q.limit)));
	if (q.rc == 0 && q.n_samples > 0 && (partial || q.n_samples == q.limit))
		json_object_object_add(o, "next_from",
				       json_object_new_int64(q.samples[q.n_samples - 1].ts + 1));
	free(q.samples);
	free(q.strbuf);
	*result = o;
	return 0;
}

static int ctl_regions(struct sl_node *n, struct json_object **result, const char **err_code,
		       char *err_msg, size_t err_len)
{
	struct json_object *arr = json_object_new_array();
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct ctl_req q;
		memset(&q, 0, sizeof(q));
		q.kind = CTL_REGIONS;
		q.region = i;
		int rc = worker_call(n, n->regions[i].worker, &q);
		if (rc != 0) {
			json_object_put(arr);
			CTL_ERR("busy", "worker did not answer: %s", strerror(-rc));
		}
		json_object_array_add(arr, q.json);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "regions", arr);
	*result = o;
	return 0;
}

/* Tests only ([debug] fault_injection): the next write or fdatasync completion of the
 * WAL of every worker (or args.core) reports an error although the I/O ran. */
static int ctl_wal_fault(struct sl_node *n, struct json_object *args,
			 struct json_object **result, const char **err_code, char *err_msg,
			 size_t err_len)
{
	if (!n->cfg.fault_injection)
		CTL_ERR("forbidden", "debug_wal_fault needs [debug] fault_injection = true");
	struct json_object *v;
	const char *op = "fsync", *e = "EIO";
	int64_t core = -1, after = 0;
	if (args && json_object_object_get_ex(args, "op", &v))
		op = json_object_get_string(v);
	if (args && json_object_object_get_ex(args, "errno", &v))
		e = json_object_get_string(v);
	if (parse_time(args, "core", -1, &core) || parse_time(args, "after", 0, &after) ||
	    after < 0 || after > 1000000 || core >= (int64_t)n->n_workers)
		CTL_ERR("bad_request", "core must be a worker index, after in 0..1000000");
	int fop, ferr;
	if (op && strcmp(op, "fsync") == 0)
		fop = SL_WAL_OP_FSYNC;
	else if (op && strcmp(op, "write") == 0)
		fop = SL_WAL_OP_WRITE;
	else
		CTL_ERR("bad_request", "op must be write or fsync");
	if (e && strcmp(e, "EIO") == 0)
		ferr = -EIO;
	else if (e && strcmp(e, "ENOSPC") == 0)
		ferr = -ENOSPC;
	else
		CTL_ERR("bad_request", "errno must be EIO or ENOSPC");
	for (unsigned c = 0; c < n->n_workers; c++) {
		if (core >= 0 && c != (unsigned)core)
			continue;
		struct ctl_req q;
		memset(&q, 0, sizeof(q));
		q.kind = CTL_WAL_FAULT;
		q.fault_op = fop;
		q.fault_err = ferr;
		q.limit = (size_t)after;
		int rc = worker_call(n, c, &q);
		if (rc != 0 || q.rc != 0)
			CTL_ERR("internal", "worker %u: %s", c, strerror(rc ? -rc : -q.rc));
	}
	*result = json_object_new_object();
	return 0;
}

int sl_node_ctl(void *node, const char *cmd, struct json_object *args,
		struct json_object **result, const char **err_code, char *err_msg, size_t err_len)
{
	struct sl_node *n = node;
	if (strcmp(cmd, "status") == 0) {
		*result = status_json(n);
		return 0;
	}
	if (strcmp(cmd, "stats") == 0) {
		*result = stats_json(n);
		return 0;
	}
	if (strcmp(cmd, "regions") == 0)
		return ctl_regions(n, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "query") == 0)
		return ctl_query(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "config") == 0) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		if (f == NULL)
			CTL_ERR("internal", "open_memstream: %s", strerror(errno));
		sl_config_dump(&n->cfg, f);
		fclose(f);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "config", json_object_new_string(buf));
		free(buf);
		*result = o;
		return 0;
	}
	if (strcmp(cmd, "debug_wal_fault") == 0)
		return ctl_wal_fault(n, args, result, err_code, err_msg, err_len);
	if (strcmp(cmd, "shutdown") == 0) {
		sl_node_stop(n);
		*result = json_object_new_object();
		return 0;
	}
	*err_code = "unknown_command";
	snprintf(err_msg, err_len,
		 "unknown command '%s' (try: status, regions, stats, query, config, shutdown)",
		 cmd);
	return -ENOENT;
}

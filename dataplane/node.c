/* node.c - sluiced's node core: the worker loop, cross-core routing and acknowledgements,
 * proposals, the WAL binding and apply. Each worker lcore owns a set of regions (store and
 * consensus group), one WAL and a share of the ingest sources; a point is routed by series
 * id to its region's core through a per-core-pair rte_ring, batched into one proposal per
 * region per poll round, persisted through the WAL (group commit), applied once committed
 * and acknowledged back to the core that read it. Nothing is acknowledged before the WAL
 * says it is durable. Shared-nothing: only the owning core touches a region. */
#include "node_internal.h"

/* ---------------------------------------------------------------- clock
 * The round's clock comes from the TSC: no system call per round. One anchor taken at
 * start maps it onto CLOCK_MONOTONIC (so times recovered or compared across the node stay
 * on one line); wall time is that plus an offset the main lcore refreshes. */
static struct {
	uint64_t tsc0, mono0;
	uint64_t mult; /* ns per TSC cycle, 32.32 fixed point */
	_Atomic int64_t wall_off;
} nd_clk;

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void nd_clock_init(void)
{
	nd_clk.mono0 = clock_ns(CLOCK_MONOTONIC);
	nd_clk.tsc0 = rte_rdtsc();
	nd_clk.mult = (1000000000ull << 32) / rte_get_tsc_hz();
	nd_clock_resync();
}

uint64_t nd_now_ns(void)
{
	SL_ASSERT(nd_clk.mult != 0); /* nd_clock_init ran (node create) */
	uint64_t d = rte_rdtsc() - nd_clk.tsc0;
	return nd_clk.mono0 + (uint64_t)(((unsigned __int128)d * nd_clk.mult) >> 32);
}

/* Main lcore only: the wall clock's offset, so NTP steps and TSC drift are followed. */
void nd_clock_resync(void)
{
	int64_t off = (int64_t)clock_ns(CLOCK_REALTIME) - (int64_t)nd_now_ns();
	atomic_store_explicit(&nd_clk.wall_off, off, memory_order_relaxed);
}

int64_t nd_wall_ns(void)
{
	return (int64_t)nd_now_ns() + atomic_load_explicit(&nd_clk.wall_off, memory_order_relaxed);
}

/* ---------------------------------------------------------------- acks */

void nd_pend_finish(struct worker *w, uint32_t h)
{
	struct pend *p = &w->pend[h];
	if (p->kind == PEND_SESS) {
		nd_sess_finish(w, h); /* releases h, now or once earlier seqs are done */
		return;
	}
	if (p->kind == PEND_LOCAL) {
		nd_local_finish(w, h);
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
		nd_pend_finish(w, h);
}

struct xmsg *nd_xmsg_get(struct worker *w, uint16_t kind)
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
void nd_outbox_send(struct worker *w, unsigned dst, struct xmsg *x)
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
	if (x == NULL && (x = w->fill_acks[dst] = nd_xmsg_get(w, XMSG_ACK)) == NULL)
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
	/* handles are the source core's own pending indexes, never client bytes */
	SL_ASSERT(handle < PEND_MAX);
	uint32_t *slot = &w->ack_bl_slot[src][handle];
	if (*slot != 0) {
		/* merge, as pend_account would: counts add up, an error other than a
		 * refused point (-EINVAL) is kept */
		struct xack *e = &w->ack_backlog[src][*slot - 1];
		e->n_points += n_points;
		e->n_stored += n_stored;
		if (status < 0 && status != -EINVAL)
			e->status = status;
		sl_stats_add(w->st, SL_STAT_acks_merged, 1);
		return;
	}
	/* one entry per pending batch of core src, so there is always room */
	SL_ASSERT(w->ack_bl_len[src] < ACK_BACKLOG);
	uint32_t at = (w->ack_bl_head[src] + w->ack_bl_len[src]++) % ACK_BACKLOG;
	w->ack_backlog[src][at] = a;
	*slot = at + 1;
}

static void flush_ack_msgs(struct worker *w)
{
	for (unsigned d = 0; d < w->node->n_workers; d++) {
		while (w->ack_bl_len[d] > 0 &&
		       ack_put(w, d, &w->ack_backlog[d][w->ack_bl_head[d]])) {
			w->ack_bl_slot[d][w->ack_backlog[d][w->ack_bl_head[d]].handle] = 0;
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

/* Propose a batch whose clients asked for ack level `level` at most: a multileader region
 * acknowledges it once durable on a majority when one asked for level 2 and
 * [regions] multileader_ack_copies is less (raft commits on a majority anyway). */
int nd_propose(struct worker *w, struct region *r, uint64_t pid, const uint8_t *buf,
	       uint32_t len, uint8_t level)
{
	if (r->ml && level >= SL_SESS_LEVEL_MAJORITY) {
		uint32_t reps[SL_CONS_MAX_PEERS];
		uint32_t majority = sl_cfg_region_replicas(&w->node->cfg, r->id, reps) / 2 + 1;
		if (majority > w->node->cfg.ml_ack_copies)
			return sl_ml_propose(sl_drv_instance(r->drv), pid, buf, len,
					     &(struct sl_ml_prop){0, 0, majority});
	}
	return sl_drv_propose(r->drv, pid, buf, len);
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
			p->level = 0;
			p->sealed_seen = false;
			sl_batch_init(&p->b, p->buf, r->prop_cap, r->id);
			sl_batch_trust(&p->b); /* every point's id was hashed where it came in */
			r->open = i;
			return i;
		}
	}
	return -1;
}

static void prop_ack(struct worker *w, struct region *r, struct proposal *p, int32_t st);

/* ---------------------------------------------------------------- forwarding
 * A batch for a region this node's replica does not lead (raft: not the leader;
 * multileader: not the region's home, nd_ml_home) goes to the leader's node (the same
 * core there) as a FWD record: id | life | fseq | low | runs | points per run | batch. The
 * leader proposes it as its own and answers, once it is applied, with a FWD_ACK: id |
 * status | leader | next | runs | stored points per run; the batch is then acked here as
 * if proposed here. No answer within the retry timeout (fwd_rto: the measured answer
 * time, 50 ms to 1 s, doubled per retry; a lost frame, a leader gone): sent again, the
 * same record, to whoever leads then; failed once FWD_GIVE_UP_NS passed since the first
 * send.
 *
 * Sent again, a batch must not be applied again: a later batch of the same client may
 * have rewritten its (series, ts) in between, and the old value would win again. So each
 * batch forwarded in a region gets once, at its first send, the next number of this
 * node's stream for the region (fseq, kept over retries and leader changes), in a stream
 * named by this process's life (random at start: a restarted node starts new streams).
 * `low` is the forwarder's lowest fseq still unanswered in the region: every batch below
 * it is settled (answered, or failed after FWD_GIVE_UP_NS). The leader keeps per
 * (region, forwarder node), in memory: the life, `next` (the fseq it takes next), the
 * highest low seen, and the answers of the last FWD_WINDOW fseqs. On a FWD:
 * - another life than the one it knows (or none yet): the stream starts at low;
 * - next is raised to low: a batch the forwarder gave up on is not waited for;
 * - fseq < next, a copy: answered from memory once applied, ignored while in progress
 *   (its answer comes, with the same id), FWD_ST_FORGOTTEN when out of memory;
 * - fseq > next: FWD_ST_RESEND carrying next, and the forwarder sends its batches from
 *   next again at once, in fseq order (a lost FWD never lets later batches pass it);
 * - fseq == next: proposed, next + 1; but -EBUSY (asked again after 10 ms) while fseq >=
 *   low + FWD_WINDOW. That bound keeps every batch the forwarder may still send in the
 *   memory: the memo of fseq f is reused by f + FWD_WINDOW, proposed only once a low above
 *   f came, and a batch the forwarder still waits for is never below a low it sent. So
 *   FWD_ST_FORGOTTEN only answers stale copies the forwarder no longer waits for; were one
 *   to meet a waiting batch, its outcome would be unknown (applied, or failed), and the
 *   forwarder fails it (-EIO, counted fwd_failed) rather than acknowledge it.
 * So one leader applies a node's forwarded batches of a region at most once and in the
 * order they were forwarded. What remains is a leader change: the memory is the leader's
 * and in RAM. A batch applied by the old leader whose answer was lost is sent to the new
 * one, which has not seen it, and applied again (and a batch the old leader had in its
 * log but not committed may be applied after later ones). A FWD of a previous life of the
 * forwarder, delayed past its successor's first ones, restarts the stream the same way. */

#define FWD_ST_RESEND (-ERESTART) /* out of order: send again from `next` */
#define FWD_ST_FORGOTTEN (-ESTALE) /* a copy of a batch older than the leader's memory */
/* a batch with points the region no longer owns (a split moved them to a new region):
 * not applied; the forwarder routes them again (nd_prop_reroute) */
#define FWD_ST_REROUTE (-EXDEV)

/* The home replica of a multileader region ([regions] multileader_home): its preferred
 * replica, or while that one's link is down the next of its replicas, in the map's order,
 * that is this node or reachable. Nodes that see the same links agree on it; while they
 * do not (a partition), two homes take writes and last-writer-wins reconciles them. */
uint32_t nd_ml_home(const struct sl_node *n, const struct region *r)
{
	uint32_t reps[SL_CONS_MAX_PEERS];
	uint32_t k = sl_cfg_region_replicas(&n->cfg, r->id, reps);
	uint32_t pref = sl_cfg_region_preferred(&n->cfg, r->id), at = 0;
	for (uint32_t i = 0; i < k; i++)
		if (reps[i] == pref)
			at = i;
	for (uint32_t j = 0; j < k; j++) {
		uint32_t c = reps[(at + j) % k];
		if (c == n->cfg.node_id || nd_fab_peer_up(n, c))
			return c;
	}
	return pref;
}

/* The leader this node knows for r (0: none). */
static uint32_t region_leader(struct region *r)
{
	if (r->drv == NULL)
		return r->leader_hint; /* no replica here: the one it was told of */
	struct sl_cons_status cs;
	sl_drv_status(r->drv, &cs);
	return cs.leader;
}

/* A batch's id and place in this node's stream for the region, for good (kept over
 * retries and leader changes). */
static void fwd_assign(struct worker *w, struct region *r, uint32_t slot, uint32_t len)
{
	struct proposal *p = &r->props[slot];
	p->fwd_out = true;
	p->fwd_give_up_ns = w->now_ns + FWD_GIVE_UP_NS;
	p->fwd_len = len;
	p->fwd_id = (++r->fwd_seq << 8) | slot;
	p->fwd_fseq = ++r->fwd_fseq;
	p->fwd_tries = 0;
	p->fwd_backoff = 0;
	p->fwd_rto_at_ns = 0;
	r->fwd_out++;
}

/* The retry timeout of a batch that timed out `backoff` times: RFC 6298's srtt + 4 rttvar
 * over the region's answers to batches sent once (Karn), FWD_TIMEOUT_NS before the
 * first, within [FWD_RTO_MIN_NS, FWD_TIMEOUT_NS], doubled per timeout up to
 * FWD_TIMEOUT_NS (an answer "ask again" or a rewind is no timeout). Before this,
 * a fixed second: one lost frame of the last batch in flight (or of its answer) held the
 * client's batch for a second, and under 5 % frame loss writes from non-leader nodes all
 * but stopped. */
static uint64_t fwd_rto(const struct region *r, uint32_t backoff)
{
	uint64_t rto = r->fwd_srtt_ns == 0 ? FWD_TIMEOUT_NS : r->fwd_srtt_ns + 4 * r->fwd_rttvar_ns;
	if (rto < FWD_RTO_MIN_NS)
		rto = FWD_RTO_MIN_NS;
	/* RFC 6298 5.5/5.7: the backed-off timeout holds for new batches too until an answer
	 * gives a sample. Per batch only, a link whose delay grew past the timeout (300 ms
	 * more on a link in cluster_read) had every new batch time out and be sent again,
	 * so Karn's rule never let a sample in: writes through that node crawled */
	if (backoff < r->fwd_backoff)
		backoff = r->fwd_backoff;
	for (uint32_t k = 0; k < backoff && rto < FWD_TIMEOUT_NS; k++)
		rto *= 2;
	return rto < FWD_TIMEOUT_NS ? rto : FWD_TIMEOUT_NS;
}

/* An answer to a batch sent once: a sample of the answer time (RFC 6298, gains 1/8 and
 * 1/4). */
static void fwd_rtt_sample(struct region *r, const struct proposal *p, uint64_t now_ns)
{
	if (p->fwd_tries != 1 || now_ns < p->fwd_sent_ns)
		return;
	r->fwd_backoff = 0;
	uint64_t m = now_ns - p->fwd_sent_ns;
	if (r->fwd_srtt_ns == 0) {
		r->fwd_srtt_ns = m;
		r->fwd_rttvar_ns = m / 2;
		return;
	}
	uint64_t d = m > r->fwd_srtt_ns ? m - r->fwd_srtt_ns : r->fwd_srtt_ns - m;
	r->fwd_rttvar_ns = r->fwd_rttvar_ns - r->fwd_rttvar_ns / 4 + d / 4;
	r->fwd_srtt_ns = r->fwd_srtt_ns - r->fwd_srtt_ns / 8 + m / 8;
}

static bool fwd_send(struct worker *w, struct region *r, uint32_t slot, uint32_t len)
{
	struct sl_node *n = w->node;
	uint32_t leader = r->ml ? nd_ml_home(n, r) : region_leader(r);
	if (n->fab == NULL || leader == SL_CONS_NODE_NONE || leader == n->cfg.node_id)
		return false;
	struct proposal *p = &r->props[slot];
	uint8_t *b = w->fab->scratch;
	if (!p->fwd_out) /* its first send */
		fwd_assign(w, r, slot, len);
	if (p->fwd_tries == 0)
		p->fwd_sent_ns = w->now_ns;
	else if (p->fwd_rto_at_ns != 0 && w->now_ns >= p->fwd_rto_at_ns && p->fwd_backoff < 32) {
		p->fwd_backoff++; /* sent again after a timeout */
		if (r->fwd_backoff < p->fwd_backoff)
			r->fwd_backoff = p->fwd_backoff;
	}
	if (p->fwd_tries < UINT32_MAX)
		p->fwd_tries++;
	uint64_t low = p->fwd_fseq;
	for (uint32_t k = 0; k < PROP_SLOTS; k++)
		if (r->props[k].in_use && r->props[k].fwd_out && r->props[k].fwd_fseq < low)
			low = r->props[k].fwd_fseq;
	p->fwd_deadline_ns = w->now_ns + fwd_rto(r, p->fwd_backoff);
	p->fwd_rto_at_ns = p->fwd_deadline_ns;
	sl_put_u64(b, p->fwd_id);
	sl_put_u64(b + 8, n->fwd_life);
	sl_put_u64(b + 16, p->fwd_fseq);
	sl_put_u64(b + 24, low);
	sl_put_u16(b + 32, (uint16_t)p->n_runs);
	b[34] = p->level; /* the home proposes it at this ack level (nd_propose) */
	uint32_t off = FWD_HDR_BASE;
	for (uint32_t k = 0; k < p->n_runs; k++, off += 4)
		sl_put_u32(b + off, p->runs[k].n_points);
	memcpy(b + off, p->buf, p->fwd_len);
	struct sl_cons_msg m = {.group_id = r->id, .from = n->cfg.node_id, .to = leader,
				.len = off + p->fwd_len, .buf = b};
	nd_fab_send_kind(w, SL_FAB_FWD, &m);
	sl_stats_add(w->st, SL_STAT_fwd_out, 1);
	return true;
}

/* The answer: id u64 | status i32 | leader u32 (whom this node knows to lead, 0: none;
 * where to send it next after -EAGAIN) | next u64 (FWD_ST_RESEND: the fseq to send
 * from) | runs u16 | stored points u32 per run. */
static void fwd_answer(struct worker *w, struct region *r, uint16_t node, uint64_t id,
		       int32_t status, uint64_t next, uint32_t runs, const uint32_t *stored)
{
	uint8_t *b = w->fab->scratch;
	sl_put_u64(b, id);
	sl_put_u32(b + 8, (uint32_t)status);
	sl_put_u32(b + 12, region_leader(r));
	sl_put_u64(b + 16, next);
	sl_put_u16(b + 24, (uint16_t)runs);
	for (uint32_t k = 0; k < runs; k++)
		sl_put_u32(b + FWD_ACK_HDR + 4 * k, status == 0 ? stored[k] : 0);
	struct sl_cons_msg m = {.group_id = r->id, .from = w->node->cfg.node_id, .to = node,
				.len = FWD_ACK_HDR + 4 * runs, .buf = b};
	nd_fab_send_kind(w, SL_FAB_FWD_ACK, &m);
}

static void fwd_refuse(struct worker *w, struct region *r, uint16_t node, uint64_t id,
		       int32_t status)
{
	fwd_answer(w, r, node, id, status, 0, 0, NULL);
}

/* The memo of a forwarded batch in its stream, if the leader still keeps it. */
static struct fwd_memo *fwd_memo_of(struct region *r, uint32_t node, uint64_t life,
				    uint64_t fseq)
{
	if (node == 0 || node > SL_CFG_MAX_NODES || fseq == 0)
		return NULL;
	struct fwd_stream *s = &r->fwd_streams[node - 1];
	struct fwd_memo *mm = &s->memo[fseq % FWD_WINDOW];
	return s->life == life && mm->fseq == fseq ? mm : NULL;
}

/* The leader's side of a stream: whether the batch (life, fseq) is the one to propose
 * now; if not, it was answered here (or is ignored: a copy in progress). */
static bool fwd_stream_take(struct worker *w, struct region *r, uint16_t node, uint64_t id,
			    uint64_t life, uint64_t fseq, uint64_t low)
{
	struct fwd_stream *s = &r->fwd_streams[node - 1];
	if (s->life != life) {
		s->life = life;
		s->next = low;
		s->low = low;
		for (uint32_t k = 0; k < FWD_WINDOW; k++)
			s->memo[k].fseq = 0;
		sl_stats_add(w->st, SL_STAT_fwd_streams_started, 1);
	}
	if (low > s->low)
		s->low = low;
	if (s->next < s->low)
		s->next = s->low;
	if (fseq < s->next) {
		struct fwd_memo *mm = fwd_memo_of(r, node, life, fseq);
		if (mm == NULL) {
			sl_stats_add(w->st, SL_STAT_fwd_dup_forgotten, 1);
			fwd_refuse(w, r, node, id, FWD_ST_FORGOTTEN);
		} else if (mm->done) {
			sl_stats_add(w->st, SL_STAT_fwd_dup_answered, 1);
			fwd_answer(w, r, node, id, mm->status, 0, mm->runs, mm->stored);
		} else {
			sl_stats_add(w->st, SL_STAT_fwd_dup_in_progress, 1);
		}
		return false;
	}
	if (!r->ml && region_leader(r) != w->node->cfg.node_id) {
		sl_stats_add(w->st, SL_STAT_fwd_not_leader, 1);
		fwd_refuse(w, r, node, id, -EAGAIN);
		return false;
	}
	if (fseq > s->next) {
		sl_stats_add(w->st, SL_STAT_fwd_out_of_order, 1);
		fwd_answer(w, r, node, id, FWD_ST_RESEND, s->next, 0, NULL);
		return false;
	}
	if (fseq >= s->low + FWD_WINDOW) { /* an older batch's answer is being fetched again */
		sl_stats_add(w->st, SL_STAT_fwd_busy, 1);
		fwd_refuse(w, r, node, id, -EBUSY);
		return false;
	}
	return true;
}

/* Every point of a (checked) batch is in the region's range now. */
static bool batch_in_range(const struct region *r, const uint8_t *buf, uint32_t len)
{
	struct sl_batch_iter it;
	struct sl_point pt;
	if (sl_batch_iter_init_trusted(&it, buf, len) != 0)
		return false;
	while (sl_batch_next(&it, &pt) == 1)
		if (pt.series_id < r->hash_lo || pt.series_id > r->hash_hi)
			return false;
	return true;
}

/* The leader's side: a forwarded batch, checked like anything from outside, proposed in a
 * free slot of its own if it is its stream's next. */
void nd_fwd_in(struct worker *w, struct region *r, const struct sl_cons_msg *m)
{
	if (m->len < FWD_HDR_BASE + 4 || m->from == 0 || m->from > SL_CFG_MAX_NODES) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		return;
	}
	uint16_t from = (uint16_t)m->from;
	uint64_t id = sl_get_u64(m->buf);
	uint64_t life = sl_get_u64(m->buf + 8), fseq = sl_get_u64(m->buf + 16);
	uint64_t low = sl_get_u64(m->buf + 24);
	uint32_t runs = sl_get_u16(m->buf + 32), hdr = FWD_HDR_BASE + 4 * runs;
	uint8_t level = m->buf[34];
	uint32_t count = 0, region = 0, sum = 0;
	if (runs == 0 || runs > PROP_RUNS || m->len <= hdr || m->len - hdr > r->prop_cap ||
	    life == 0 || low == 0 || low > fseq || level > SL_SESS_LEVEL_MAJORITY ||
	    sl_batch_check(m->buf + hdr, m->len - hdr, &count, &region) != 0 ||
	    region != r->id) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		fwd_refuse(w, r, from, id, -EBADMSG);
		return;
	}
	for (uint32_t k = 0; k < runs; k++)
		sum += sl_get_u32(m->buf + FWD_HDR_BASE + 4 * k);
	if (r->drv == NULL) { /* no replica here: the sender is told where one is */
		sl_stats_add(w->st, SL_STAT_fwd_not_leader, 1);
		fwd_refuse(w, r, from, id, -EAGAIN);
		return;
	}
	if (sum != count) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		fwd_refuse(w, r, from, id, -EBADMSG);
		return;
	}
	if (!fwd_stream_take(w, r, from, id, life, fseq, low))
		return;
	if (w->node->cfg.map_ranged && !batch_in_range(r, m->buf + hdr, m->len - hdr)) {
		/* routed before a split of the region: answered for good (the memo), so a
		 * copy is never applied; the forwarder routes the points again */
		struct fwd_stream *s = &r->fwd_streams[from - 1];
		s->next = fseq + 1;
		s->memo[fseq % FWD_WINDOW] = (struct fwd_memo){.fseq = fseq, .done = true,
							      .status = FWD_ST_REROUTE};
		sl_stats_add(w->st, SL_STAT_route_stale, 1);
		fwd_refuse(w, r, from, id, FWD_ST_REROUTE);
		return;
	}
	int slot = -1;
	for (int i = 0; i < PROP_SLOTS && slot < 0; i++)
		if (!r->props[i].in_use)
			slot = i;
	if (slot < 0) {
		sl_stats_add(w->st, SL_STAT_fwd_busy, 1);
		fwd_refuse(w, r, from, id, -EBUSY);
		return;
	}
	struct proposal *p = &r->props[slot];
	memcpy(p->buf, m->buf + hdr, m->len - hdr);
	int rc = nd_propose(w, r, prop_id(r, (uint32_t)slot), p->buf, m->len - hdr, level);
	if (rc != 0) {
		sl_stats_add(w->st, rc == -EPERM ? SL_STAT_fwd_not_leader : SL_STAT_fwd_busy, 1);
		/* -EROFS: a sealed segment; the forwarder asks again after the switch */
		fwd_refuse(w, r, from, id,
			   rc == -EPERM || rc == -EBUSY || rc == -ENOBUFS || rc == -EROFS ? -EAGAIN
											  : rc);
		return;
	}
	struct fwd_stream *s = &r->fwd_streams[from - 1];
	s->next = fseq + 1;
	s->memo[fseq % FWD_WINDOW] = (struct fwd_memo){.fseq = fseq};
	p->in_use = true;
	p->proposed = true;
	p->ack_wait = 0;
	p->n_points = count;
	p->n_runs = runs;
	p->level = level;
	for (uint32_t k = 0; k < runs; k++)
		p->runs[k] = (struct prop_run){(uint16_t)w->idx, NO_ACK,
					       sl_get_u32(m->buf + FWD_HDR_BASE + 4 * k), 0};
	p->fwd_in = true;
	p->fwd_out = false;
	p->fwd_node = from;
	p->fwd_id = id;
	p->fwd_life = life;
	p->fwd_fseq = fseq;
	sl_stats_add(w->st, SL_STAT_fwd_in, 1);
	sl_stats_add(w->st, SL_STAT_batches_in, 1);
}

/* The leader's answer to a batch forwarded here, remembered for its copies. */
static void fwd_in_done(struct worker *w, struct region *r, struct proposal *p, int32_t st)
{
	uint32_t tmp[PROP_RUNS];
	struct fwd_memo *mm = fwd_memo_of(r, p->fwd_node, p->fwd_life, p->fwd_fseq);
	uint32_t *stored = mm != NULL ? mm->stored : tmp;
	for (uint32_t k = 0; k < p->n_runs; k++)
		stored[k] = st == 0 ? p->runs[k].n_stored : 0;
	if (mm != NULL) {
		mm->done = true;
		mm->status = st;
		mm->runs = p->n_runs;
	}
	fwd_answer(w, r, p->fwd_node, p->fwd_id, st, 0, p->n_runs, stored);
}

static void fwd_done(struct region *r, struct proposal *p)
{
	p->fwd_out = false;
	r->fwd_out--;
}

/* Where a region with no replica here forwards next after `from` said it does not lead:
 * the leader it named if that is a replica, else the replica after `from`. */
static uint32_t leader_next(const struct sl_node *n, const struct region *r, uint32_t from,
			    uint32_t named)
{
	uint32_t reps[SL_CONS_MAX_PEERS];
	uint32_t k = sl_cfg_region_replicas(&n->cfg, r->id, reps);
	for (uint32_t i = 0; i < k; i++)
		if (reps[i] == named && named != from)
			return named;
	for (uint32_t i = 0; i < k; i++)
		if (reps[i] == from)
			return reps[(i + 1) % k];
	return reps[0];
}

/* The leader takes a stream only in order and asks for it again from `next`: every batch
 * still unanswered from there is due now (fwd_retry sends them in fseq order). Once per
 * gap and round trip: each batch after a lost one is refused, and one rewind answers them
 * all. A refusal naming no later `next` within a retry timeout of a rewind is one of those,
 * or of the copies the rewind sent (on a slow link they all come back refused while the
 * first copy is still on its way): acting on it again would send the same batches again
 * and again, and on a link that drops when it is full, lose `next` again (seen with
 * 300 ms of delay). Such a batch keeps its own retry (fwd_rto). */
static void fwd_rewind(struct worker *w, struct region *r, struct proposal *p, uint64_t next)
{
	if (next == 0 || next > p->fwd_fseq) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		return;
	}
	if (next <= r->fwd_rewind_next && w->now_ns < r->fwd_rewind_ns)
		return; /* rewound from there already: the copies are on their way */
	r->fwd_rewind_next = next;
	r->fwd_rewind_ns = w->now_ns + fwd_rto(r, 0);
	sl_stats_add(w->st, SL_STAT_fwd_resends, 1);
	for (uint32_t k = 0; k < PROP_SLOTS; k++) {
		struct proposal *q = &r->props[k];
		if (q->in_use && q->fwd_out && q->fwd_fseq >= next)
			q->fwd_deadline_ns = w->now_ns;
	}
}

static bool region_take(struct worker *w, struct region *r, uint16_t src, uint32_t handle,
			uint8_t level, const struct sl_point *pt);

/* A split moved the upper part of r's range to a new region on this core (node_switch.c):
 * the points of proposal `slot` (an encoded batch of len bytes in no log: one still open,
 * or one a leader refused with FWD_ST_REROUTE) that route elsewhere now go to their
 * region's open proposal, with their runs (each client's batch is acked per region
 * anyway); the rest stay in it, re-encoded (not finished). Points moved; 0 when none
 * route elsewhere, and nothing changed. A point no proposal has room for stays in it with
 * `keep` (a forwarded batch: routed again after FWD_BUSY_NS), else it is answered -EAGAIN
 * (not stored) and counted. */
uint32_t nd_prop_reroute(struct worker *w, struct region *r, uint32_t slot, uint32_t len,
			 bool keep)
{
	struct sl_node *n = w->node;
	struct proposal *p = &r->props[slot];
	struct sl_batch_iter it;
	struct sl_point pt;
	uint32_t away = 0;
	if (sl_batch_iter_init_trusted(&it, p->buf, len) != 0)
		return 0;
	while (sl_batch_next(&it, &pt) == 1) {
		const struct region *t = &n->regions[nd_route_of(n, pt.series_id)];
		away += t != r && t->worker == w->idx;
	}
	uint8_t *copy = away > 0 ? malloc(len) : NULL; /* rare: the edge of a split */
	if (copy == NULL)
		return 0;
	memcpy(copy, p->buf, len);
	struct prop_run runs[PROP_RUNS];
	uint32_t n_runs = p->n_runs;
	memcpy(runs, p->runs, sizeof(runs[0]) * n_runs);
	sl_batch_init(&p->b, p->buf, r->prop_cap, r->id);
	sl_batch_trust(&p->b);
	p->n_points = 0;
	p->n_runs = 0;
	(void)sl_batch_iter_init_trusted(&it, copy, len);
	for (uint32_t k = 0; k < n_runs; k++) {
		for (uint32_t j = 0; j < runs[k].n_points && sl_batch_next(&it, &pt) == 1; j++) {
			struct region *t = &n->regions[nd_route_of(n, pt.series_id)];
			bool stay = t == r || t->worker != w->idx;
			if (!stay && region_take(w, t, runs[k].src, runs[k].handle, p->level, &pt))
				continue;
			/* kept: no room in its region's proposals now (its slots all wait, e.g. for
			 * the new segment's leader); the forwarded batch is routed again later */
			stay = stay || keep;
			if (stay) {
				/* a subset of what it held, in order: it fits, in as many runs */
				if (sl_batch_add(&p->b, &pt) == 0) {
					struct prop_run *last = p->n_runs ? &p->runs[p->n_runs - 1] : NULL;
					if (last == NULL || last->src != runs[k].src ||
					    last->handle != runs[k].handle)
						p->runs[p->n_runs++] = (struct prop_run){
						    runs[k].src, runs[k].handle, 0, 0};
					p->runs[p->n_runs - 1].n_points++;
					p->n_points++;
					continue;
				}
			}
			send_ack(w, runs[k].src, runs[k].handle, 1, 0, -EAGAIN);
			sl_stats_add(w->st, SL_STAT_reroute_failed, 1);
		}
	}
	free(copy);
	sl_stats_add(w->st, SL_STAT_points_rerouted, away);
	return away;
}

/* The leader refused a forwarded batch as routed before a split (FWD_ST_REROUTE, for
 * good): its points go where this node routes them now, what stays is forwarded as a
 * new batch of the stream. While this node's map is behind the leader's (it still routes
 * them all here) the batch is asked again after FWD_BUSY_NS, and refused again. */
static void fwd_reroute(struct worker *w, struct region *r, uint32_t slot)
{
	struct proposal *p = &r->props[slot];
	if (nd_prop_reroute(w, r, slot, p->fwd_len, true) == 0) {
		p->fwd_deadline_ns = w->now_ns + FWD_BUSY_NS;
		p->fwd_rto_at_ns = 0; /* answered: no timeout */
		return;
	}
	sl_stats_add(w->st, SL_STAT_fwd_rerouted, 1);
	fwd_done(r, p);
	if (p->n_points == 0) {
		p->in_use = false;
		p->proposed = false;
		return;
	}
	size_t len = 0;
	sl_batch_finish(&p->b, &len);
	/* a point kept for want of room in its region's proposals is not r's: the batch
	 * waits FWD_BUSY_NS, then fwd_retry routes it again (never sent to r's leader or
	 * proposed in r with it) */
	bool mine = batch_in_range(r, p->buf, (uint32_t)len);
	if (mine && fwd_send(w, r, slot, (uint32_t)len))
		return;
	if (mine && r->drv != NULL &&
	    nd_propose(w, r, prop_id(r, slot), p->buf, (uint32_t)len, p->level) == 0)
		return;
	/* no leader known yet (the new segment is electing one): a forwarded batch of the
	 * stream that fwd_retry sends (or proposes here) once one is */
	fwd_assign(w, r, slot, (uint32_t)len);
	p->fwd_deadline_ns = w->now_ns + FWD_BUSY_NS;
}

/* The forwarding side: the leader's answer acks the batch here. */
void nd_fwd_ack_in(struct worker *w, struct region *r, const struct sl_cons_msg *m)
{
	if (m->len < FWD_ACK_HDR) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		return;
	}
	uint64_t id = sl_get_u64(m->buf);
	int32_t status = (int32_t)sl_get_u32(m->buf + 8);
	uint32_t leader = sl_get_u32(m->buf + 12);
	uint64_t next = sl_get_u64(m->buf + 16);
	uint32_t runs = sl_get_u16(m->buf + 24);
	if ((id & 0xff) >= PROP_SLOTS)
		return;
	struct proposal *p = &r->props[id & 0xff];
	if (!p->in_use || !p->fwd_out || p->fwd_id != id)
		return; /* an answer to a batch given up or already answered */
	if (status == FWD_ST_RESEND) {
		fwd_rewind(w, r, p, next);
		return;
	}
	if (status == FWD_ST_REROUTE) {
		fwd_reroute(w, r, (uint32_t)(id & 0xff));
		return;
	}
	if (status == -EAGAIN || status == -EBUSY) { /* no leader there, or no room: again */
		if (r->drv == NULL && status == -EAGAIN)
			r->leader_hint = leader_next(w->node, r, m->from, leader);
		p->fwd_deadline_ns = w->now_ns + FWD_BUSY_NS;
		p->fwd_rto_at_ns = 0; /* answered: no timeout */
		return;
	}
	if (status == 0 && (runs != p->n_runs || m->len != FWD_ACK_HDR + 4 * runs)) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		return;
	}
	for (uint32_t k = 0; status == 0 && k < runs; k++)
		p->runs[k].n_stored = sl_get_u32(m->buf + FWD_ACK_HDR + 4 * k);
	if (status == 0)
		fwd_rtt_sample(r, p, w->now_ns);
	fwd_done(r, p);
	if (status == FWD_ST_FORGOTTEN) { /* applied or failed there, nobody knows: not acked */
		sl_stats_add(w->st, SL_STAT_fwd_failed, 1);
		prop_ack(w, r, p, -EIO);
		return;
	}
	sl_stats_add(w->st, SL_STAT_fwd_answers, 1);
	prop_ack(w, r, p, status);
}

/* Forwarded batches nobody answered, in fseq order (the leader takes a stream only in
 * order): to the current leader again, or proposed here when this replica leads now, or
 * failed after FWD_GIVE_UP_NS. */
static void fwd_retry(struct worker *w, struct region *r)
{
	for (uint32_t n = 0; n < PROP_SLOTS && r->fwd_out > 0; n++) {
		struct proposal *p = NULL;
		uint32_t i = 0;
		for (uint32_t k = 0; k < PROP_SLOTS; k++) {
			struct proposal *q = &r->props[k];
			if (q->in_use && q->fwd_out && w->now_ns >= q->fwd_deadline_ns &&
			    (p == NULL || q->fwd_fseq < p->fwd_fseq)) {
				p = q;
				i = k;
			}
		}
		if (p == NULL)
			return;
		if (w->now_ns >= p->fwd_give_up_ns) {
			fwd_done(r, p);
			sl_stats_add(w->st, SL_STAT_fwd_failed, 1);
			prop_ack(w, r, p, -ETIMEDOUT);
			continue;
		}
		sl_stats_add(w->st, SL_STAT_fwd_retries, 1);
		if (w->node->cfg.map_ranged && !batch_in_range(r, p->buf, p->fwd_len)) {
			/* forwarded before a split of the region: whoever leads it now, and this
			 * replica if it does, must not take the new region's points */
			fwd_reroute(w, r, i);
			continue;
		}
		if (fwd_send(w, r, i, p->fwd_len))
			continue;
		if (r->drv != NULL && nd_propose(w, r, prop_id(r, i), p->buf, p->fwd_len, p->level) == 0)
			fwd_done(r, p); /* leading now: an ordinary proposal from here on */
		else
			p->fwd_deadline_ns = w->now_ns + FWD_BUSY_NS; /* no leader yet */
	}
}

static void prop_close(struct worker *w, struct region *r)
{
	if (r->open < 0)
		return;
	struct proposal *p = &r->props[r->open];
	size_t len = 0;
	sl_batch_finish(&p->b, &len);
	uint64_t pid = prop_id(r, (uint32_t)r->open);
	int rc = -EPERM; /* no replica here, or a multileader region whose home is elsewhere */
	if (r->drv != NULL &&
	    !(r->ml && w->node->cfg.ml_home && nd_ml_home(w->node, r) != w->node->cfg.node_id))
		rc = nd_propose(w, r, pid, p->buf, (uint32_t)len, p->level);
	if (rc == -EPERM && fwd_send(w, r, (uint32_t)r->open, (uint32_t)len)) {
		/* a replica that does not lead: the leader elsewhere proposes it */
		p->proposed = true;
		r->open = -1;
		return;
	}
	if (rc == -EPERM || rc == -EBUSY || rc == -ENOBUFS || rc == -EROFS) {
		/* not leader yet (raft electing itself after a start), a leader transfer, the
		 * protocol's queue is full, or the log segment is sealed (a protocol switch:
		 * the batch waits for the next segment, node_switch.c): keep the batch and
		 * propose it next round */
		if (rc == -EROFS && p->n_points > 0 && !p->sealed_seen) {
			p->sealed_seen = true;
			sl_stats_add(w->st, SL_STAT_proposals_sealed, 1);
		}
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
			uint8_t level, const struct sl_point *pt)
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
			if (r->drv != NULL && sl_drv_has_ready(r->drv))
				return false; /* its waiting ready first: READY_ENTRIES_MAX */
			prop_close(w, r);
			continue;
		}
		if (!run_ok)
			p->runs[p->n_runs++] = (struct prop_run){src, handle, 0, 0};
		p->runs[p->n_runs - 1].n_points++;
		p->n_points++;
		if (level > p->level)
			p->level = level;
		return true;
	}
	return false;
}

void nd_prop_fail(struct worker *w, struct region *r, struct proposal *p, int32_t err)
{
	prop_ack(w, r, p, err);
}

/* ---------------------------------------------------------------- apply */

/* Apply one committed entry to its region's store; count stored points per run. */
/* One point into the region's store: a multileader region's by the version of the entry
 * being applied (last writer wins by hybrid clock, then origin: any order of arrival
 * ends in the same store), any other in log order. */
static int store_apply(struct region *r, const struct sl_point *pt)
{
	if (r->ml)
		return sl_store_apply_v(r->store, pt, r->apply_hlc, r->apply_origin);
	return sl_store_apply(r->store, pt);
}

void nd_apply_entry(struct region *r, const uint8_t *data, uint32_t len,
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
		bool ok = store_apply(r, &pt) == 0;
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

/* Whether `bytes` of records (each counted as WAL_REC_WORST) can be appended now: the
 * stages that append ask first and answer "not taken" this round otherwise. */
bool nd_wal_room(const struct worker *w, uint64_t bytes)
{
	return sl_wal_room(w->wal) >= bytes;
}

/* sl_wal_append2 without waiting: -ENOBUFS (both buffers busy) goes back to the caller,
 * who asked nd_wal_room first; after that it is a failure like any other. */
int nd_wal_append(struct worker *w, uint16_t type, const uint8_t *head, uint32_t head_len,
		  const uint8_t *buf, uint32_t len, uint64_t *lsn)
{
	int rc = sl_wal_append2(w->wal, type, head, head_len, buf, len, lsn);
	if (rc == -ENOBUFS)
		sl_stats_add(w->st, SL_STAT_wal_gate_misses, 1);
	return rc;
}

static int wal_append_entry(struct worker *w, struct region *r, const struct sl_cons_entry *e,
			    uint64_t *lsn_out)
{
	/* the WAL copies our header and the entry's data straight into its buffer */
	uint8_t hdr[ENTRY_HDR];
	hdr[0] = 1;
	sl_put_u32(hdr + 1, nd_wal_region_tag(r));
	sl_put_u64(hdr + 5, e->term);
	sl_put_u64(hdr + 13, e->index);
	sl_put_u32(hdr + 21, e->type);
	uint64_t lsn = 0;
	int rc = nd_wal_append(w, WAL_REC_ENTRY, hdr, ENTRY_HDR, e->data, e->len, &lsn);
	if (rc != 0)
		return rc;
	SL_ASSERT(w->lsn_len < LSNQ_SIZE);
	w->lsnq[(w->lsn_head + w->lsn_len++) % LSNQ_SIZE] =
		(struct lsn_rec){lsn, r->id, e->term, e->index};
	w->wal_bytes_since_ckpt += ENTRY_HDR + e->len;
	sl_stats_add(w->st, SL_STAT_wal_appends, 1);
	sl_stats_add(w->st, SL_STAT_wal_bytes, ENTRY_HDR + e->len);
	*lsn_out = lsn;
	return 0;
}

/* Term, vote and commit of a region's protocol. Its LSN tells the driver when messages
 * that wait for it may go; checkpoints write it again before releasing older segments. */
int nd_wal_append_hardstate(struct worker *w, struct region *r,
			    const struct sl_cons_hard_state *hs, uint64_t *lsn_out)
{
	uint8_t b[HARDSTATE_BYTES];
	b[0] = 2;
	sl_put_u32(b + 1, nd_wal_region_tag(r));
	sl_put_u64(b + 5, hs->term);
	sl_put_u32(b + 13, hs->vote);
	sl_put_u64(b + 17, hs->commit);
	uint64_t lsn;
	int rc = nd_wal_append(w, WAL_REC_HARDSTATE, NULL, 0, b, sizeof(b), &lsn);
	if (rc == 0) {
		r->hs = *hs;
		r->has_hs = true;
		if (lsn_out != NULL)
			*lsn_out = lsn;
	}
	return rc;
}

void nd_wal_fail(struct worker *w, int err)
{
	if (!w->wal_failed) {
		SL_LOG(ERR, wal, "worker %u: WAL failed (%s); nothing more is "
				"acknowledged on this core until restart\n",
			w->idx, strerror(-err));
		sl_stats_add(w->st, SL_STAT_wal_errors, 1);
		atomic_store(&w->wal_errno, err < 0 ? -err : EIO);
	}
	w->wal_failed = true;
	atomic_store(&w->node->failed, true);
	for (uint32_t i = 0; i < w->node->cfg.regions; i++) {
		struct region *r = &w->node->regions[i];
		if (r->worker == w->idx && r->drv != NULL)
			sl_drv_storage_failed(r->drv, r->last_index + 1, err);
	}
}

static void prop_ack(struct worker *w, struct region *r, struct proposal *p, int32_t st)
{
	if (p->fwd_in) { /* forwarded from another node: the answer goes there */
		fwd_in_done(w, r, p, st);
		p->fwd_in = false;
		p->in_use = false;
		p->ack_wait = 0;
		return;
	}
	for (uint32_t k = 0; k < p->n_runs; k++)
		send_ack(w, p->runs[k].src, p->runs[k].handle, p->runs[k].n_points,
			 st == 0 ? p->runs[k].n_stored : 0, st);
	p->in_use = false;
	p->ack_wait = 0;
}

/* ---------------------------------------------------------------- driver host
 * The callbacks through which the region driver (consensus/driver.h) runs any protocol
 * on this core: storage is the core's WAL plus the region's log window, the state
 * machine is the region's store, acks go back to the clients' cores. */

/* A snapshot from another replica's leader replaces the region's store (node_ckpt.c). */
static int host_install_snapshot(void *ctx, const struct sl_cons_snapshot *snap)
{
	struct region *r = ctx;
	nd_off_fabric(r->wk, true); /* the image is written and synced here */
	int rc = nd_install_snapshot(r, snap);
	nd_off_fabric(r->wk, false);
	return rc;
}

static int host_save_hard_state(void *ctx, const struct sl_cons_hard_state *hs, uint64_t *pos)
{
	struct region *r = ctx;
	if (r->wk->wal_failed)
		return -EIO;
	int rc = nd_wal_append_hardstate(r->wk, r, hs, pos);
	if (rc != 0)
		nd_wal_fail(r->wk, rc);
	return rc;
}

static int host_save_entry(void *ctx, const struct sl_cons_entry *e, uint64_t *pos)
{
	struct region *r = ctx;
	if (r->wk->wal_failed)
		return -EIO;
	int rc = wal_append_entry(r->wk, r, e, pos);
	if (rc == 0)
		rc = sl_rlog_append(&r->rlog, e);
	if (rc != 0) {
		nd_wal_fail(r->wk, rc);
		return rc;
	}
	r->last_index = e->index;
	return 0;
}

/* The transport: the fabric's frame to the peer (a single node has no peer: what a
 * one-voter group would send is counted and dropped, as a lossy network would). */
static void host_send(void *ctx, const struct sl_cons_msg *m)
{
	struct region *r = ctx;
	nd_fab_send(r->wk, m);
}

static void host_apply(void *ctx, const struct sl_cons_entry *e)
{
	struct region *r = ctx;
	struct worker *w = r->wk;
	struct proposal *p = NULL;
	if (prop_of(r, e->proposal_id) >= 0)
		p = &r->props[prop_of(r, e->proposal_id)];
	uint64_t applied0 = r->points_applied, rejected0 = r->points_rejected;
	struct sl_store_stats ss0, ss1;
	sl_store_stats(r->store, &ss0);
	if (r->ml && e->type == SL_CONS_ENTRY_NORMAL && p == NULL) {
		/* a peer's write as its payload came over the fabric, or one back from the WAL
		 * (recovery keeps multileader entries unchecked): checked before it is applied,
		 * a malformed one counted and skipped, never asserted */
		uint32_t count = 0, region = 0;
		if (sl_batch_check(e->data, e->len, &count, &region) != 0 || region != r->id) {
			sl_stats_add(w->st, SL_STAT_ml_entries_refused, 1);
			SL_LOG(ERR, node,
			       "region %u: entry %" PRIu64 " of node %u (its index %" PRIu64
			       ") does not decode as a batch of this region: not applied\n",
			       r->id, e->index, e->origin, e->origin_index);
			r->applied_index = e->index;
			return;
		}
		if (e->origin != w->node->cfg.node_id)
			sl_stats_add(w->st, SL_STAT_ml_entries_remote, 1);
	}
	r->apply_hlc = e->hlc;
	r->apply_origin = e->origin;
	if (e->type == SL_CONS_ENTRY_NORMAL)
		nd_apply_entry(r, e->data, e->len, p);
	r->applied_index = e->index;
	uint32_t keep_mb = w->node->cfg.log_keep_mb;
	if (w->now_ns < r->peer_pin_until_ns && w->node->cfg.log_keep_peer_mb > keep_mb)
		keep_mb = w->node->cfg.log_keep_peer_mb; /* a replica waits for an image */
	sl_rlog_release_keep(&r->rlog, e->index, (uint64_t)keep_mb << 20);
	if (p == NULL && e->index <= r->recover_target) /* re-applied from the WAL at start */
		__atomic_fetch_add(&w->node->recovered_points, r->points_applied - applied0,
				   __ATOMIC_RELAXED);
	if (p != NULL) {
		/* a point the store refused (a series keeps its first type) was durable but
		 * is not stored: rejected, with its reason */
		sl_store_stats(r->store, &ss1);
		sl_stats_add(w->st, SL_STAT_points_applied, r->points_applied - applied0);
		sl_stats_add(w->st, SL_STAT_points_rejected, r->points_rejected - rejected0);
		sl_stats_add(w->st, SL_STAT_rejected_type_conflict,
			     ss1.type_conflicts - ss0.type_conflicts);
	}
}

static void host_ack(void *ctx, const struct sl_cons_ack *a)
{
	struct region *r = ctx;
	if (prop_of(r, a->proposal_id) < 0)
		return;
	struct proposal *p = &r->props[prop_of(r, a->proposal_id)];
	SL_ASSERT(p->in_use && p->proposed);
	if (a->status == SL_CONS_ACK_OK && a->index > r->applied_index) {
		p->ack_wait = a->index; /* stored counts are known once applied */
		return;
	}
	prop_ack(r->wk, r, p, a->status == SL_CONS_ACK_OK ? 0 : -EIO);
}

static void host_read(void *ctx, const struct sl_cons_read *rr)
{
	nd_read_index(ctx, rr);
}

const struct sl_drv_host nd_drv_host = {
	.install_snapshot = host_install_snapshot,
	.save_hard_state = host_save_hard_state,
	.save_entry = host_save_entry,
	.send = host_send,
	.apply = host_apply,
	.ack = host_ack,
	.read = host_read,
};

/* Room for the worst ready of r: its WAL records and its LSN queue entries. After a WAL
 * failure every ready runs (the storage callbacks refuse, the protocol fails what waits). */
static bool ready_room(const struct worker *w, const struct region *r)
{
	return w->wal_failed || (nd_wal_room(w, r->ready_wal_worst) &&
				 w->lsn_len + r->ready_entries <= LSNQ_SIZE);
}

/* Runs r's readies while the WAL has room for the worst one; "not taken" (counted) when
 * it has not: the ready waits for the next round, nothing waits inside this one. */
static int region_process_ready(struct worker *w, struct region *r)
{
	uint32_t ran = 0;
	while (ran < DRV_READIES_PER_ROUND && sl_drv_has_ready(r->drv)) {
		if (!ready_room(w, r)) {
			sl_stats_add(w->st, SL_STAT_wal_gate_waits, 1);
			break;
		}
		ran += sl_drv_process(r->drv, 1);
	}
	if (ran == 0)
		return 0;
	for (int k = 0; k < PROP_SLOTS; k++)
		if (r->props[k].in_use && r->props[k].ack_wait != 0 &&
		    r->props[k].ack_wait <= r->applied_index)
			prop_ack(r->wk, r, &r->props[k], 0);
	return (int)ran;
}

/* Durable LSN advanced: tell each region's protocol, in log order. */
static void wal_completions(struct worker *w)
{
	int rc = sl_wal_poll(w->wal);
	if (rc < 0) {
		nd_wal_fail(w, rc);
		return;
	}
	uint64_t durable = sl_wal_durable_lsn(w->wal);
	nd_sess_durable(w, durable);
	while (w->lsn_durable < w->lsn_len) {
		struct lsn_rec *lr = &w->lsnq[(w->lsn_head + w->lsn_durable) % LSNQ_SIZE];
		if (lr->lsn > durable)
			break;
		struct region *r = &w->node->regions[lr->region];
		/* an entry of a segment before a protocol switch: its protocol is gone */
		if (r->drv != NULL && lr->index > nd_epoch_base(r->epoch))
			sl_drv_persisted(r->drv, lr->term, lr->index);
		w->lsn_durable++;
	}
	if (durable != w->drv_durable) {
		/* messages held for persist-before-send wait on this LSN */
		w->drv_durable = durable;
		for (uint32_t i = 0; i < w->node->cfg.regions; i++)
			if (w->node->regions[i].worker == w->idx && w->node->regions[i].drv != NULL)
				sl_drv_durable(w->node->regions[i].drv, durable);
	}
}

/* Forget WAL records whose entries are applied; the oldest kept bounds retention. */
uint64_t nd_lsnq_trim(struct worker *w)
{
	while (w->lsn_durable > 0) {
		struct lsn_rec *lr = &w->lsnq[w->lsn_head % LSNQ_SIZE];
		const struct region *r = &w->node->regions[lr->region];
		/* a record of a segment before the region's current one is done with: the
		 * segment's image covers it, or this node no longer holds the region; so is one
		 * of a region another core runs now (a core move: its segment here was sealed,
		 * and the next one's image covers it) */
		if (r->worker == w->idx && lr->index > nd_epoch_base(r->epoch) &&
		    r->applied_index < lr->index)
			break;
		w->lsn_head = (w->lsn_head + 1) % LSNQ_SIZE;
		w->lsn_len--;
		w->lsn_durable--;
	}
	if (w->lsn_len > 0)
		return w->lsnq[w->lsn_head % LSNQ_SIZE].lsn - 1;
	return sl_wal_durable_lsn(w->wal);
}

/* ---------------------------------------------------------------- routing */

/* The points handed on to another core (redirect_point): sent, or kept for the next try
 * (false). */
static bool redirect_flush(struct worker *w)
{
	if (w->redir == NULL || !xmsg_send(w, w->redir_dst, w->redir))
		return w->redir == NULL;
	w->redir = NULL;
	return true;
}

/* A point of x (its record: `size` bytes at x->off) for region `region`, which another
 * core runs now (a core move since it was routed): into a message to that core with x's
 * origin, so its ack handle stays valid there. false: no room now (x stalls here). */
static bool redirect_point(struct worker *w, const struct xmsg *x, uint32_t region,
			   unsigned owner, size_t size)
{
	struct xmsg *y = w->redir;
	if (y != NULL && (w->redir_dst != owner || y->src != x->src || y->used + size > XMSG_BYTES)) {
		if (!redirect_flush(w))
			return false;
		y = NULL;
	}
	if (y == NULL) {
		y = nd_xmsg_get(w, XMSG_POINTS);
		if (y == NULL)
			return false;
		y->src = x->src;
		w->redir = y;
		w->redir_dst = (uint16_t)owner;
	}
	struct xpoint hdr;
	memcpy(&hdr, x->buf + x->off, sizeof(hdr));
	hdr.region = (uint16_t)region;
	memcpy(y->buf + y->used, &hdr, sizeof(hdr));
	memcpy(y->buf + y->used + sizeof(hdr), x->buf + x->off + sizeof(hdr), size - sizeof(hdr));
	y->used += (uint32_t)size;
	y->n++;
	sl_stats_add(w->st, SL_STAT_core_redirects, 1);
	return true;
}

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
		uint32_t owner = r->worker;
		if (owner == w->idx && (xp.series_id < r->hash_lo || xp.series_id > r->hash_hi)) {
			/* routed by a table a split has changed since (node_route.c): the
			 * region that owns it now is on this core too (a split's child stays on
			 * its parent's) unless a core move took it elsewhere since */
			struct region *to = &n->regions[nd_route_of(n, xp.series_id)];
			if (to->worker == w->idx) {
				r = to;
				sl_stats_add(w->st, SL_STAT_route_stale, 1);
			}
		}
		if (owner != w->idx) {
			/* its region moved to another core since it was routed (a core move) */
			if (!redirect_point(w, x, r->id, owner, xpoint_size(&pt))) {
				(void)redirect_flush(w);
				return false;
			}
			x->pos++;
			x->off += (uint32_t)xpoint_size(&pt);
			continue;
		}
		if (w->wal_failed) {
			send_ack(w, x->src, xp.handle, 1, 0, -EIO);
		} else if (!region_take(w, r, x->src, xp.handle, xp.level, &pt)) {
			return false;
		}
		x->pos++;
		x->off += (uint32_t)xpoint_size(&pt);
	}
	if (x->src != w->idx)
		sl_stats_add(w->st, SL_STAT_cross_core_in, x->n);
	(void)redirect_flush(w); /* else kept: the egress stage sends it */
	return true;
}

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
		nd_read_serve(w, x); /* the message goes back as the result */
		return true;
	case XMSG_READ_RESULT:
		nd_net_send_udp(w, &x->rq.ra, x->buf, x->used);
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

/* The message for dst with room for `need` more bytes: the full one is sent first, a new
 * one taken from the pool; NULL when the ring or the pool has no room (nothing changed). */
static struct xmsg *route_msg(struct worker *w, unsigned dst, size_t need)
{
	SL_ASSERT(need <= XMSG_BYTES);
	struct xmsg *x = w->fill_pts[dst];
	if (x != NULL && x->used + need > XMSG_BYTES) {
		if (!xmsg_send(w, dst, x))
			return NULL;
		x = w->fill_pts[dst] = NULL;
	}
	if (x == NULL)
		x = w->fill_pts[dst] = nd_xmsg_get(w, XMSG_POINTS);
	return x;
}

static unsigned route_dst(const struct worker *w, const struct sl_point *pt, uint32_t *region)
{
	*region = nd_route_of(w->node, pt->series_id);
	return w->node->regions[*region].worker;
}

/* Whether routing has room for pt now: true means nd_route_point of it succeeds (ingress
 * asks before it changes any state of its own for the point). */
bool nd_route_room(struct worker *w, const struct sl_point *pt)
{
	uint32_t region;
	if (route_msg(w, route_dst(w, pt, &region), xpoint_size(pt)) != NULL)
		return true;
	sl_stats_add(w->st, SL_STAT_route_no_room, 1);
	return false;
}

/* Copy a point into the message for its region's core; false when no message or ring
 * room is free: the ingress stage keeps the point and stops until next round. */
bool nd_route_point(struct worker *w, uint32_t handle, const struct sl_point *pt)
{
	uint32_t region;
	unsigned dst = route_dst(w, pt, &region);
	size_t need = xpoint_size(pt);
	struct xmsg *x = route_msg(w, dst, need);
	if (x == NULL) {
		sl_stats_add(w->st, SL_STAT_route_no_room, 1);
		return false;
	}
	struct xpoint xp = {.series_id = pt->series_id,
			    .ts = pt->ts,
			    .value = pt->type == SL_VAL_STR ? 0 : pt->value,
			    .handle = handle,
			    .str_len = pt->type == SL_VAL_STR ? pt->str_len : 0,
			    .region = (uint16_t)region,
			    .key_len = pt->key_len,
			    .type = pt->type,
			    .level = handle != NO_ACK && w->pend[handle].kind == PEND_SESS
					     ? w->pend[handle].level
					     : SL_SESS_LEVEL_LOCAL};
	uint8_t *d = x->buf + x->used;
	memcpy(d, &xp, sizeof(xp));
	memcpy(d + sizeof(xp), pt->key, pt->key_len);
	if (xp.str_len > 0)
		memcpy(d + sizeof(xp) + pt->key_len, pt->str, xp.str_len);
	x->used += (uint32_t)need;
	x->n++;
	return true;
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

/* Closes the slot's open batch short: the client will never send its missing points, so
 * they count as rejected (-EPROTO in the ack, with the points stored), and the handle is
 * released once the points already routed are accounted for. */
static void ingest_abandon(struct worker *w, uint32_t slot)
{
	uint32_t h = w->slot_cur[slot];
	w->slot_cur[slot] = UINT32_MAX;
	struct pend *p = &w->pend[h];
	sl_stats_add(w->st, SL_STAT_shm_batches_abandoned, 1);
	pend_account(w, h, p->count - p->received, 0, -EPROTO);
}

/* Counts a record's reasons; true when it has any. */
static bool ingest_count_bad(struct worker *w, uint8_t flags)
{
	if (flags == 0)
		return false;
	sl_stats_add(w->st, SL_STAT_bad_records, 1);
	if (flags & SL_INGEST_BAD_FRAMING)
		sl_stats_add(w->st, SL_STAT_shm_bad_framing, 1);
	if (flags & SL_INGEST_BAD_KEY)
		sl_stats_add(w->st, SL_STAT_shm_bad_key, 1);
	if (flags & SL_INGEST_BAD_TYPE)
		sl_stats_add(w->st, SL_STAT_shm_bad_type, 1);
	if (flags & SL_INGEST_BAD_VALUE)
		sl_stats_add(w->st, SL_STAT_shm_bad_value, 1);
	return true;
}

/* One decoded record. The decoder owns the framing: a pending handle is taken only for a
 * record that starts a well-framed batch (so its count is 1..ring_entries), points are
 * accounted only to the batch they continue, and records of no batch touch no handle.
 * False when it cannot be taken now (no routing room, no free handle): nothing of it was
 * counted or accounted, and it is offered again next round. */
static bool ingest_record(struct worker *w, uint32_t slot, const struct sl_ingest_rec *rec)
{
	if (rec->flags & SL_INGEST_BAD_FRAMING) {
		ingest_count_bad(w, rec->flags);
		return true; /* no batch to account it to, nobody waits for an ack of it */
	}
	struct sl_point pt = {.series_id = 0};
	if (rec->flags == 0) {
		pt = (struct sl_point){.series_id = sl_series_id((const char *)rec->key, rec->key_len),
				       .ts = rec->ts,
				       .type = rec->type,
				       .value = rec->value,
				       .key_len = rec->key_len,
				       .key = (const char *)rec->key};
		if (!nd_route_room(w, &pt))
			return false;
	}
	if (rec->starts_batch && w->n_pend_free == 0)
		return false; /* session batches took the handles meanwhile */
	bool bad = ingest_count_bad(w, rec->flags);
	if (rec->starts_batch) {
		if (w->slot_cur[slot] != UINT32_MAX)
			ingest_abandon(w, slot);
		uint32_t h = w->pend_free[--w->n_pend_free];
		w->pend[h] = (struct pend){.used = true,
					   .kind = PEND_SHM,
					   .slot = slot,
					   .batch_seq = rec->batch_seq,
					   .count = rec->batch_count,
					   .remaining = rec->batch_count,
					   .t0_tsc = rte_rdtsc()};
		w->slot_cur[slot] = h;
		w->slot_inflight[slot]++;
	}
	uint32_t h = w->slot_cur[slot];
	w->pend[h].received++;
	if (rec->ends_batch)
		w->slot_cur[slot] = UINT32_MAX; /* complete: its acks may free h from now on */
	if (bad) {
		sl_stats_add(w->st, SL_STAT_points_rejected, 1);
		pend_account(w, h, 1, 0, -EINVAL);
		return true;
	}
	bool routed = nd_route_point(w, h, &pt);
	SL_ASSERT(routed); /* nd_route_room said so, and nothing was routed since */
	return true;
}

/* The decoder abandoned the batch we hold (a stray record, the published head reached
 * mid-batch, a corrupt ring): release it now, not never. Once every decoded record of the
 * slot is taken: the decoder's state is then ours. */
static void ingest_slot_check(struct worker *w, uint32_t slot)
{
	if (w->slot_cur[slot] != UINT32_MAX && !sl_ingest_batch_open(w->node->ingest, slot))
		ingest_abandon(w, slot);
}

/* Takes the decoded records not yet taken; false when one had to stay (routing full). */
static bool ingest_take(struct worker *w)
{
	for (; w->rec_next < w->rec_n; w->rec_next++)
		if (!ingest_record(w, w->rec_slot, &w->recs[w->rec_next]))
			return false;
	ingest_slot_check(w, w->rec_slot);
	return true;
}

/* Ingress, shm: records decoded earlier and not yet taken first, then one burst per slot.
 * Answers "not taken" (stops, keeping the records) when routing has no room or pending
 * handles run short, and resumes there next round. No system call: the main lcore tells a
 * dead client's slot (kill(2)), this core only resets a draining slot it has drained. */
static int poll_ingest(struct worker *w, bool take_new)
{
	struct sl_node *n = w->node;
	int work = 0;
	if (w->rec_next < w->rec_n) {
		uint32_t before = w->rec_next;
		bool done = ingest_take(w);
		work += (int)(w->rec_next - before);
		if (!done)
			return work;
	}
	if (!take_new)
		return work;
	uint32_t n_slots = sl_ingest_n_slots(n->ingest);
	for (uint32_t slot = w->idx; slot < n_slots; slot += n->n_workers) {
		/* A slot is recycled for a new client only once nothing of the old one awaits
		 * an ack (its open batch included), so no late ack can reach the next client. */
		if (w->slot_inflight[slot] == 0)
			sl_ingest_reset_drained(n->ingest, slot);
		/* a handle for each record of a burst (any may start a batch) */
		if (w->n_pend_free < INGEST_BURST)
			break;
		int got = sl_ingest_poll(n->ingest, slot, w->recs, INGEST_BURST);
		if (got <= 0) {
			ingest_slot_check(w, slot);
			continue;
		}
		work += got;
		sl_stats_add(w->st, SL_STAT_points_in, (uint64_t)got);
		w->rec_slot = slot;
		w->rec_next = 0;
		w->rec_n = (uint32_t)got;
		if (!ingest_take(w))
			break;
	}
	return work;
}

/* ---------------------------------------------------------------- the lcore loop */

/* Counters gather in a private block during a round and are published in one short
 * seqlock write, so readers in other processes never wait on a long round. A round that
 * counted nothing publishes nothing: a worker polling in short rounds would otherwise
 * bump the seqlock every few microseconds, and readers' copies would keep failing. */
static void stats_publish(struct worker *w)
{
	struct sl_stats_core *d = &w->st_local, *o = w->st_shm;
	bool any = atomic_load_explicit(&d->ack_latency_sum_ns, memory_order_relaxed) != 0;
	for (int k = 0; k < SL_STATS_N_COUNTERS && !any; k++)
		any = atomic_load_explicit(&d->counters[k], memory_order_relaxed) != 0;
	for (int b = 0; b < SL_STATS_HIST_BUCKETS && !any; b++)
		any = atomic_load_explicit(&d->ack_latency_hist[b], memory_order_relaxed) != 0;
	if (!any)
		return;
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

/* ---- the pipeline stages, each run once per round, bounded, never waiting: a stage with
 * no room answers "not taken" (and counts it) and the work stays where it is. */

/* Ingress: shm slots and the network door. Stops taking input when routing has no room
 * (the rest is kept: records decoded, a frame parked) and resumes there next round. Not
 * while this core's own regions are full (a stalled message): backpressure. */
static int stage_ingress(struct worker *w, bool take_new)
{
	if (w->stalled != NULL)
		return 0;
	/* after a WAL failure the points are still read, routed and refused (-EIO) */
	return poll_ingest(w, take_new) + nd_poll_local(w, take_new) + nd_poll_net(w, take_new);
}

/* Durable LSN: the protocols hear of it (persisted), session records acknowledge. */
static int stage_wal_completions(struct worker *w)
{
	if (w->wal_failed)
		return 0;
	uint64_t before = sl_wal_durable_lsn(w->wal);
	wal_completions(w);
	if (sl_wal_durable_lsn(w->wal) == before)
		return 0;
	sl_stats_add(w->st, SL_STAT_wal_fsyncs, 1);
	return 1;
}

/* Leadership balance ([cluster] balance_leaders): a replica that has led region r for a
 * while hands it to r's preferred replica when that one's link is up (the protocol
 * moves it once the target caught up, or gives up after an election timeout). A preferred
 * leader that sluice-ctld moved (`transfer_leader`) is handed over at once, with or without
 * balance_leaders, and tried again for MOVE_TRY_NS. A multileader region has no leader: its
 * home follows the preferred replica by itself (nd_ml_home). */
static void leader_balance(struct worker *w, struct region *r)
{
	struct sl_node *n = w->node;
	if (n->fab == NULL || r->ml)
		return;
	uint32_t pref = sl_cfg_region_preferred(&n->cfg, r->id);
	if (pref != r->pref_seen) {
		if (r->pref_seen != 0) {
			r->move_until_ns = w->now_ns + MOVE_TRY_NS;
			r->balance_next_ns = w->now_ns;
		}
		r->pref_seen = pref;
	}
	bool moving = w->now_ns < r->move_until_ns;
	if ((!n->cfg.balance_leaders && !moving) || w->now_ns < r->balance_next_ns)
		return;
	r->balance_next_ns = w->now_ns + (moving ? MOVE_RETRY_NS : BALANCE_EVERY_NS);
	struct sl_cons_status cs;
	sl_drv_status(r->drv, &cs);
	if (cs.role != SL_CONS_ROLE_LEADER) {
		r->led_since_ns = 0;
		return;
	}
	if (r->led_since_ns == 0)
		r->led_since_ns = w->now_ns;
	if (pref == n->cfg.node_id || (!moving && w->now_ns - r->led_since_ns < BALANCE_SETTLE_NS) ||
	    !nd_fab_peer_up(n, pref))
		return;
	if (sl_drv_transfer(r->drv, pref) == 0) {
		sl_stats_add(w->st, SL_STAT_leader_transfers, 1);
		r->led_since_ns = 0;
	}
}

/* A rejoining replica (node_recover.c) that caught up: one fewer for the REJOIN marker. */
static void rejoin_check(struct worker *w, struct region *r)
{
	struct sl_cons_status cs;
	sl_drv_status(r->drv, &cs);
	if (cs.rejoining)
		return;
	if (r->ml_joining && !nd_ml_joined(w, r))
		return; /* recorded first: asked again next round */
	r->rejoining = false;
	atomic_fetch_sub(&w->node->rejoin_left, 1);
	SL_LOG(INFO, node, "region %u: rejoined at index %" PRIu64 " (term %" PRIu64 ")\n", r->id,
	       cs.applied_index, cs.term);
}

/* Each region's consensus: tick (the TSC clock), propose the open batch when the
 * protocol has no ready waiting, run readies the WAL has room for. */
static int stage_driver(struct worker *w)
{
	struct sl_node *n = w->node;
	int work = 0;
	for (uint32_t i = 0; i < n->cfg.regions; i++) {
		struct region *r = &n->regions[i];
		if (r->worker != w->idx)
			continue;
		if (atomic_load_explicit(&r->unborn, memory_order_relaxed)) {
			nd_split_poll_unborn(w, r); /* a split's child (node_switch.c) */
			continue;
		}
		if (r->drv == NULL) { /* no replica here: its batches go to one */
			if (r->fwd_out > 0)
				fwd_retry(w, r);
			if (r->n_reads > 0)
				nd_reads_progress(w, r);
			prop_close(w, r);
			nd_switch_poll(w, r); /* a replica may be added here */
			continue;
		}
		if (r->ml)
			sl_ml_wall(sl_drv_instance(r->drv), (uint64_t)nd_wall_ns());
		sl_drv_tick(r->drv, w->now_ns);
		if (r->rejoining)
			rejoin_check(w, r);
		if (r->fwd_out > 0)
			fwd_retry(w, r);
		if (!sl_drv_has_ready(r->drv))
			prop_close(w, r);
		int ran = region_process_ready(w, r);
		work += ran;
		if (ran > 0 && !r->ml) { /* for ROUTES, answered on any core (node_net.c) */
			struct sl_cons_status cs;
			sl_drv_status(r->drv, &cs);
			atomic_store_explicit(&r->leader_seen, cs.leader, memory_order_relaxed);
		}
		if (r->n_reads > 0)
			nd_reads_progress(w, r);
		leader_balance(w, r);
		nd_switch_poll(w, r);
	}
	return work;
}

/* WAL: queued session records (as room allows), then the buffer goes to the disk. */
static int stage_wal(struct worker *w)
{
	int work = nd_sess_log_records(w);
	if (!w->wal_failed && sl_wal_pending_bytes(w->wal) > 0) {
		int rc = sl_wal_flush(w->wal);
		if (rc < 0 && rc != -EBUSY && rc != -EAGAIN)
			nd_wal_fail(w, rc);
		else if (rc == 0)
			sl_stats_add(w->st, SL_STAT_wal_flushes, 1);
	}
	return work;
}

/* Acks and egress: acks to other cores (backlogged ones first), parked read messages,
 * the replies waiting in the TX buffers (before the worker may sleep). */
static int stage_egress(struct worker *w)
{
	flush_ack_msgs(w);
	(void)redirect_flush(w);
	int work = outbox_flush(w);
	nd_net_tx_flush(w);
	nd_exc_flush(w);
	work += nd_fab_flush(w);
	return work;
}

/* Counts this round in the stall histogram (cumulative: a 15 ms round is in the 1 ms and
 * the 10 ms counter); the idle sleep that may follow is not part of the round. */
/* The stages of a round, in order, for the stall attribution (stall_in_<stage>). */
enum { ST_CTL, ST_INGRESS, ST_ROUTE, ST_WALC, ST_DRIVER, ST_WAL, ST_EGRESS, ST_HOUSE, ST_N };

static uint64_t thread_nivcsw(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_THREAD, &ru) == 0 ? (uint64_t)ru.ru_nivcsw : 0;
}

/* The stall histogram, and for a round over the first bound: the stage that took longest,
 * and whether the scheduler took the CPU away meanwhile: this thread's involuntary context
 * switches went up since the sample housekeeping takes every STALL_SAMPLE_NS (so during
 * the round or just before it): the host, not the node. No system call on other rounds. */
static void stall_count(struct worker *w, const uint64_t end_tsc[ST_N])
{
	uint64_t d = end_tsc[ST_N - 1] - w->round_tsc;
	if (d < w->stall_tsc[0])
		return;
	sl_stats_add(w->st, SL_STAT_stall_1ms, 1);
	if (d >= w->stall_tsc[1])
		sl_stats_add(w->st, SL_STAT_stall_10ms, 1);
	if (d >= w->stall_tsc[2])
		sl_stats_add(w->st, SL_STAT_stall_100ms, 1);
	unsigned worst = 0;
	uint64_t worst_d = 0, t = w->round_tsc;
	for (unsigned i = 0; i < ST_N; i++) {
		if (end_tsc[i] - t > worst_d) {
			worst_d = end_tsc[i] - t;
			worst = i;
		}
		t = end_tsc[i];
	}
	sl_stats_add(w->st, (enum sl_stat)(SL_STAT_stall_in_ctl + worst), 1);
	uint64_t now = thread_nivcsw();
	if (w->nivcsw_valid && now != w->nivcsw)
		sl_stats_add(w->st, SL_STAT_stall_preempted, 1);
	w->nivcsw = now;
}

/* Housekeeping: idle sessions, the LSN queue, a checkpoint step, counters. */
static void stage_housekeeping(struct worker *w)
{
	struct sl_node *n = w->node;
	if (w->now_ns >= (uint64_t)w->next_expire_ns) {
		sl_sess_expire(&w->sess, (int64_t)w->now_ns, SESS_EXPIRE_BATCH);
		w->next_expire_ns = (int64_t)(w->now_ns + SESS_EXPIRE_PERIOD_NS);
	}
	if (w->now_ns >= w->nivcsw_next_ns) { /* the baseline of stall_preempted */
		w->nivcsw = thread_nivcsw();
		w->nivcsw_valid = true;
		w->nivcsw_next_ns = w->now_ns + STALL_SAMPLE_NS;
	}
	nd_lsnq_trim(w);
	if (w->ckpt_active || w->ckpt_wanted ||
	    w->wal_bytes_since_ckpt >= (uint64_t)n->cfg.checkpoint_mb << 20)
		nd_checkpoint_step(w);
	nd_lp_stats(w);
}

/* One round of the pipeline: ingress -> route -> inputs -> WAL completions -> driver ->
 * WAL -> acks/egress -> housekeeping, each stage once, in this order (what a stage
 * produces is taken by the next ones in the same round). */
static void worker_round(struct worker *w, bool take_new)
{
	struct sl_node *n = w->node;
	w->round_tsc = rte_rdtsc();
	w->now_ns = nd_now_ns();
	uint64_t end[ST_N];
	nd_serve_ctl(w);
	if (atomic_load_explicit(&w->debug_stall_us, memory_order_relaxed) != 0) /* tests only */
		rte_delay_us_sleep((unsigned)atomic_exchange(&w->debug_stall_us, 0)); /* a long round */
	if (atomic_load_explicit(&w->debug_hold, memory_order_relaxed) &&
	    !atomic_load_explicit(&n->stop, memory_order_relaxed)) {
		/* tests only: a core that falls behind (a long checkpoint, a slow disk) */
		rte_delay_us_sleep(1000);
		return;
	}
	end[ST_CTL] = rte_rdtsc();
	/* the fabric first: peers' messages reach the drivers whatever clients do */
	int work = nd_fab_poll(w) + stage_ingress(w, take_new);
	end[ST_INGRESS] = rte_rdtsc();
	flush_point_msgs(w);
	work += drain_inputs(w);
	end[ST_ROUTE] = rte_rdtsc();
	work += stage_wal_completions(w);
	end[ST_WALC] = rte_rdtsc();
	work += stage_driver(w);
	end[ST_DRIVER] = rte_rdtsc();
	work += stage_wal(w);
	end[ST_WAL] = rte_rdtsc();
	work += stage_egress(w);
	end[ST_EGRESS] = rte_rdtsc();
	stage_housekeeping(w);
	sl_stats_add(w->st, work ? SL_STAT_polls_busy : SL_STAT_polls_idle, 1);
	end[ST_HOUSE] = rte_rdtsc();
	stall_count(w, end);
	stats_publish(w);
	if (work == 0)
		worker_idle(w, sl_wal_durable_lsn(w->wal) < sl_wal_last_lsn(w->wal));
	else
		w->idle_us = 0;
}

static bool worker_quiet(struct worker *w)
{
	if (w->stalled != NULL || w->local_len > 0 || w->rec_next < w->rec_n || w->local_cur != NULL ||
	    nd_net_parked(w) || w->sessq_logged < w->sessq_len)
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
	static const uint32_t stall_us[3] = {STALL_US_1, STALL_US_2, STALL_US_3};
	for (int i = 0; i < 3; i++)
		w->stall_tsc[i] = w->tsc_hz / 1000000u * stall_us[i];
	while (!atomic_load_explicit(&n->stop, memory_order_relaxed))
		worker_round(w, true);
	/* Drain: finish what was taken, make it durable, acknowledge it. Bounded: 10 s. */
	uint64_t deadline = nd_now_ns() + 10ull * 1000000000ull;
	while (nd_now_ns() < deadline) {
		worker_round(w, false);
		if (worker_quiet(w))
			break;
	}
	/* A clean stop marks the log: recovery then tells damage in the last write from a
	 * torn one. Not after a timeout or a WAL failure: that stop was not clean. */
	if (worker_quiet(w) && !w->wal_failed) {
		int rc = sl_wal_shutdown(w->wal);
		if (rc < 0)
			SL_LOG(ERR, wal, "core %u: WAL clean-shutdown record: %s\n", w->idx,
				strerror(-rc));
	}
	return 0;
}

void *sl_node_worker_arg(struct sl_node *n, unsigned i) { return &n->w[i]; }

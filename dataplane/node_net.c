/* node_net.c - the node's network front door on its DPDK ports: ARP and ICMP echo, the
 * InfluxDB line protocol over UDP, and the binary session protocol (batches with
 * exactly-once acknowledgement through session records in the WAL, reads answered by the
 * region's core). */
#include "log.h"
#include "node_internal.h"

/* ---------------------------------------------------------------- network front door */

_Static_assert(SL_STAT_lp_scratch - SL_STAT_lp_syntax_measurement ==
		       SL_LP_ERR_SCRATCH - SL_LP_ERR_SYNTAX_MEASUREMENT,
	       "per-reason line protocol counters follow enum sl_lp_err");

/* Every reply leaves through the worker's TX buffer of the port (its queue w->idx): one
 * rte_eth_tx_burst per SL_PORT_TX_BURST frames or per round (nd_net_tx_flush), as l3fwd
 * does, not one per frame. */
int nd_net_tx_init(struct sl_node *n, char *err, size_t err_len)
{
	for (unsigned i = 0; i < n->n_workers; i++)
		for (uint16_t k = 0; k < n->ports.n; k++) {
			const struct sl_port *p = &n->ports.p[k];
			if (i >= p->n_queues)
				continue; /* no queue of this port: it never replies there */
			int rc = sl_port_txq_init(&n->w[i].txq[k], p->port_id, (uint16_t)i);
			if (rc != 0) {
				snprintf(err, err_len, "port %u: TX buffer of queue %u: %s",
					 p->port_id, i, strerror(-rc));
				return rc;
			}
		}
	for (uint16_t k = 0; k < n->ports.n; k++) {
		const struct sl_port *p = &n->ports.p[k];
		const uint8_t *a = p->mac.addr_bytes;
		SL_LOG(INFO, net,
		       "port %u (%s): %u RX/TX queue pair(s), RSS %s, MAC "
		       "%02x:%02x:%02x:%02x:%02x:%02x, replies in bursts of up to %u\n",
		       p->port_id, p->name, p->n_queues, p->rss ? "on" : "off", a[0], a[1], a[2],
		       a[3], a[4], a[5], SL_PORT_TX_BURST);
	}
	return 0;
}

void nd_net_tx_fini(struct worker *w)
{
	for (uint16_t k = 0; k < SL_PORT_MAX; k++)
		sl_port_txq_fini(&w->txq[k]);
}

/* End of a round: send what waits, publish what left and what the devices refused. */
void nd_net_tx_flush(struct worker *w)
{
	for (uint16_t k = 0; k < w->node->ports.n; k++) {
		struct sl_port_txq *t = &w->txq[k];
		if (t->buf == NULL)
			continue;
		sl_port_txq_flush(t);
		if (t->sent > 0)
			sl_stats_add(w->st, SL_STAT_pkts_tx, t->sent);
		if (t->dropped > 0) {
			sl_stats_add(w->st, SL_STAT_pkts_tx_failed, t->dropped);
			sl_stats_add(w->st, SL_STAT_tx_queue_full, t->dropped);
		}
		t->sent = t->dropped = 0;
	}
}

static void net_tx(struct worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct sl_port_txq *t = &w->txq[port];
	if (t->buf == NULL) { /* not reached: a worker replies only where it receives */
		rte_pktmbuf_free(m);
		sl_stats_add(w->st, SL_STAT_pkts_tx_failed, 1);
		return;
	}
	sl_port_txq_send(t, m);
}

/* Builds an ARP or ICMP echo reply into a fresh mbuf and sends it. */
static void net_reply(struct worker *w, uint16_t port, const struct sl_pkt_info *in, bool arp)
{
	const struct sl_port *p = &w->node->ports.p[port];
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
	net_tx(w, port, m);
	sl_stats_add(w->st, arp ? SL_STAT_arp_replies : SL_STAT_icmp_replies, 1);
}

/* ---------------------------------------------------------------- session protocol */

_Static_assert(SL_STAT_sess_bad_point - SL_STAT_sess_truncated ==
		       SL_SESS_ERR_BAD_POINT - SL_SESS_ERR_TRUNCATED,
	       "per-reason session counters follow enum sl_sess_err");

/* A UDP reply to `ra`; `fill` writes the payload at the given place and returns its
 * length (or < 0: nothing is sent). */
void nd_net_send_udp(struct worker *w, const struct reply_addr *ra, const uint8_t *payload,
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
	net_tx(w, ra->port, m);
}

static void sess_send(struct worker *w, const struct reply_addr *ra, const struct sl_sess_msg *m)
{
	uint8_t buf[SL_SESS_MSG_MAX];
	int n = sl_sess_encode(buf, sizeof(buf), m);
	if (n > 0)
		nd_net_send_udp(w, ra, buf, (size_t)n);
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

/* Seq will not be made durable now: the session expects it again (and drops completions
 * of later seqs); a client at level 1 or 2 is told why. */
static void sess_fail_seq(struct worker *w, uint64_t session_id, uint64_t seq, uint8_t level,
			  const struct reply_addr *ra, uint8_t status)
{
	sl_sess_on_abort(&w->sess, session_id, seq);
	struct sl_sess_ack ack = {.session_id = session_id, .seq = seq, .status = status};
	if (level != SL_SESS_LEVEL_NONE)
		sess_send_ack(w, ra, &ack);
}

static void sess_fail(struct worker *w, const struct pend *p, uint8_t status)
{
	sess_fail_seq(w, p->session_id, p->batch_seq, p->level, &p->ra, status);
}

/* Queues the session record of a batch whose points are all applied and whose earlier
 * seqs are all recorded; its durability is the batch's acknowledgement (docs/protocol.md).
 * The WAL stage logs queued records in order as the WAL has room (nd_sess_log_records):
 * this runs inside apply and ack handling, which must not wait for the WAL. */
static void sess_record(struct worker *w, const struct pend *p)
{
	if (w->wal_failed || w->sessq_len == SESSQ_SIZE) {
		sess_fail(w, p, w->wal_failed ? SL_SESS_ST_STORAGE_ERROR : SL_SESS_ST_BUSY);
		return;
	}
	w->sessq[(w->sessq_head + w->sessq_len++) % SESSQ_SIZE] =
		(struct sessq_ent){0,	      p->session_id, p->batch_seq, p->t0_tsc,
				   p->stored, p->count,	     p->level,	   p->ra};
}

/* WAL stage: logs queued session records, oldest first, while the WAL has room; the rest
 * wait for the next round ("not taken", counted). After a WAL failure they fail. */
int nd_sess_log_records(struct worker *w)
{
	int work = 0;
	while (w->sessq_logged < w->sessq_len) {
		struct sessq_ent *e = &w->sessq[(w->sessq_head + w->sessq_logged) % SESSQ_SIZE];
		int rc = -EIO;
		if (!w->wal_failed) {
			if (!nd_wal_room(w, WAL_REC_WORST(SESSION_REC_BYTES))) {
				sl_stats_add(w->st, SL_STAT_wal_gate_waits, 1);
				break;
			}
			uint8_t b[SESSION_REC_BYTES];
			b[0] = WAL_REC_SESSION;
			sl_put_u64(b + 1, e->session_id);
			sl_put_u64(b + 9, e->seq);
			sl_put_u32(b + 17, e->stored);
			sl_put_u32(b + 21, e->count);
			rc = nd_wal_append(w, WAL_REC_SESSION, NULL, 0, b, sizeof(b), &e->lsn);
			if (rc == 0) {
				w->sessq_logged++;
				work++;
				continue;
			}
			nd_wal_fail(w, rc);
		}
		/* not logged, never will be: every queued seq fails, newest last */
		for (uint32_t k = w->sessq_logged; k < w->sessq_len; k++) {
			struct sessq_ent *f = &w->sessq[(w->sessq_head + k) % SESSQ_SIZE];
			sess_fail_seq(w, f->session_id, f->seq, f->level, &f->ra,
				      SL_SESS_ST_STORAGE_ERROR);
		}
		w->sessq_len = w->sessq_logged;
		break;
	}
	return work;
}

static void sess_pend_release(struct worker *w, uint32_t h)
{
	w->pend[h].used = false;
	w->pend_free[w->n_pend_free++] = h;
}

/* The points of accepted batch h are all applied (or failed). Its points went to several
 * cores, so a later seq of the session can get here first: its record then waits (the
 * pending batch stays allocated) until every earlier seq is recorded, else the record and
 * the cumulative ACK would claim an earlier seq that a crash can still lose. */
void nd_sess_finish(struct worker *w, uint32_t h)
{
	struct pend *p = &w->pend[h];
	uint64_t sid = p->session_id;
	int v;
	if (p->err || w->wal_failed) {
		sess_fail(w, p, SL_SESS_ST_STORAGE_ERROR);
		v = SL_SESS_DONE_DROP;
	} else {
		v = sl_sess_on_complete(&w->sess, sid, p->batch_seq, p->level, h);
		if (v == SL_SESS_DONE_HOLD) {
			sl_stats_add(w->st, SL_STAT_sess_held, 1);
			return;
		}
		/* a handle is held at most once: it stays in use until it is handed back */
		SL_ASSERT(v != -EINVAL);
		if (v == -ENOSPC)
			sess_fail(w, p, SL_SESS_ST_BUSY); /* cannot wait: the client retries */
	}
	/* bounded: each held handle comes back once */
	for (uint32_t n = 0; n <= PEND_MAX; n++) {
		if (v == SL_SESS_DONE_RECORD)
			sess_record(w, &w->pend[h]);
		sess_pend_release(w, h);
		uint64_t seq;
		v = sl_sess_next_done(&w->sess, sid, &seq, &h);
		if (v != SL_SESS_DONE_RECORD && v != SL_SESS_DONE_DROP)
			break;
	}
}

/* Session records durable up to `durable`: acknowledge their batches. */
void nd_sess_durable(struct worker *w, uint64_t durable)
{
	while (w->sessq_logged > 0) {
		struct sessq_ent *e = &w->sessq[w->sessq_head];
		if (e->lsn > durable)
			break;
		struct sl_sess_outcome o = {
			.count_stored = e->stored,
			.status = e->stored == e->count ? SL_SESS_ST_OK : SL_SESS_ST_REJECTED_POINTS,
			.level_req = e->level,
			/* acks follow the region's commit: on a majority when every region
			 * replicates (a level-2 batch makes a multileader region wait for a
			 * majority too), else (a single copy somewhere) only the weaker claim */
			.level_reached = w->node->acks_majority ||
						 (e->level >= SL_SESS_LEVEL_MAJORITY &&
						  w->node->level2_majority)
					     ? SL_SESS_LEVEL_MAJORITY
					     : SL_SESS_LEVEL_LOCAL};
		struct sl_sess_ack ack;
		if (sl_sess_on_durable(&w->sess, e->session_id, e->seq, &o, &ack) == 1)
			sess_send_ack(w, &e->ra, &ack);
		sl_stats_ack_latency(w->st, (rte_rdtsc() - e->t0_tsc) * 1000000000ull / w->tsc_hz);
		w->sessq_head = (w->sessq_head + 1) % SESSQ_SIZE;
		w->sessq_len--;
		w->sessq_logged--;
	}
}

/* What became of a frame the door looked at: the caller frees it, someone else holds it
 * (handed over, in the reassembly table), or it is parked with points still to route. */
enum net_fate { NET_FREE = 0, NET_KEPT = 1, NET_PARKED = 2 };

/* Routes a session batch's points from `it` on; false when routing ran out of room (`it`
 * is then at the first point not routed). */
static bool sess_route(struct worker *w, uint32_t h, struct sl_sess_point_iter *it)
{
	struct sl_point pt;
	struct sl_sess_point_iter at = *it;
	while (sl_sess_points_next(it, &pt) == 1) {
		if (!nd_route_point(w, h, &pt)) {
			*it = at;
			return false;
		}
		sl_stats_add(w->st, SL_STAT_points_in, 1);
		at = *it;
	}
	return true;
}

static enum net_fate sess_batch(struct worker *w, const struct sl_sess_batch *b,
				const struct reply_addr *ra)
{
	struct sl_sess_decision d;
	sl_stats_add(w->st, SL_STAT_sess_batches, 1);
	if (w->n_pend_free == 0) {
		struct sl_sess_ack ack = {.session_id = b->session_id, .seq = b->seq,
					  .status = SL_SESS_ST_BUSY};
		sl_stats_add(w->st, SL_STAT_sess_busy, 1);
		sess_send_ack(w, ra, &ack);
		return NET_FREE;
	}
	sl_sess_on_batch(&w->sess, b->session_id, b->seq, b->level, (int64_t)w->now_ns, &d);
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
		return NET_FREE;
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
	sl_stats_add(w->st, SL_STAT_sess_points, b->count);
	if (b->count == 0) {
		nd_pend_finish(w, h);
		return NET_FREE;
	}
	/* accepted once: the rest of its points are routed from the park, never again */
	sl_sess_points_init(&w->park.sess_it, b);
	if (sess_route(w, h, &w->park.sess_it))
		return NET_FREE;
	w->park.kind = PARK_SESS;
	w->park.sess_h = h;
	return NET_PARKED;
}

/* READ: the region's core answers (the store is its alone); the frame comes back here. */
static void sess_read(struct worker *w, const struct sl_sess_read *r, const struct reply_addr *ra)
{
	sl_stats_add(w->st, SL_STAT_sess_reads, 1);
	struct xmsg *x = nd_xmsg_get(w, XMSG_READ);
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
	nd_outbox_send(w, w->node->regions[nd_route_of(w->node, sid)].worker, x);
}

/* The READ_RESULT datagram of request q from r's store (or with status `st` and no
 * points when st is not OK); its length. */
static uint32_t read_result(struct worker *w, struct region *r, const struct read_req *q,
			    uint8_t st, uint8_t *buf, size_t cap)
{
	uint64_t sid = sl_series_id(q->key, q->key_len);
	struct sl_sample samples[SL_SESS_RESULT_POINTS_MAX];
	/* one result per datagram, and a datagram fits one 1500-byte frame (no IP fragments
	 * here either): the client continues from cont_ts */
	const size_t fit = (NET_UDP_PAYLOAD_MAX - SL_SESS_HDR_BYTES - SL_SESS_RESULT_FIXED_BYTES) /
			   SL_SESS_PAIR_BYTES;
	size_t max = q->max && q->max < fit ? q->max : fit;
	size_t n = 0;
	uint8_t type = 0;
	if (st == SL_SESS_ST_OK) {
		int rc = q->from > q->to ? -ENOENT
					 : sl_store_query(r->store, sid, q->from, q->to, samples, max,
							  &n, &type);
		if (rc == -ENOENT)
			st = SL_SESS_ST_NOT_FOUND;
		else if (rc != 0) /* a string series: version 1 of the protocol carries no strings */
			st = SL_SESS_ST_BAD_REQUEST;
	}
	if (st != SL_SESS_ST_OK)
		n = 0, type = 0;
	struct sl_sess_writer wr;
	sl_sess_result_begin(&wr, buf, cap, w->node->cfg.cluster_id, q->request_id, st,
			     n ? type : 0);
	for (size_t i = 0; i < n; i++)
		sl_sess_result_add(&wr, samples[i].ts, samples[i].value);
	if (n == max && n > 0 && samples[n - 1].ts < q->to)
		sl_sess_result_more(&wr, samples[n - 1].ts);
	return (uint32_t)sl_sess_finish(&wr);
}

/* The request in x is answered: its result frame goes back to the core that received it. */
static void read_reply(struct worker *w, struct xmsg *x)
{
	x->kind = XMSG_READ_RESULT;
	unsigned back = x->src;
	x->src = (uint16_t)w->idx;
	nd_outbox_send(w, back, x);
}

static struct nd_read *read_slot(struct region *r)
{
	if (r->n_reads == NODE_READS)
		return NULL;
	for (uint32_t i = 0; i < NODE_READS; i++)
		if (r->reads[i].kind == RD_FREE) {
			struct nd_read *rd = &r->reads[i];
			memset(rd, 0, sizeof(*rd));
			rd->id = (++r->read_seq << 8) | i;
			r->n_reads++;
			return rd;
		}
	return NULL;
}

static void read_free(struct region *r, struct nd_read *rd)
{
	rd->kind = RD_FREE;
	r->n_reads--;
}

/* The leader this node knows for r, or SL_CONS_NODE_NONE. */
static uint32_t region_leader(const struct region *r)
{
	if (r->drv == NULL)
		return r->leader_hint;
	struct sl_cons_status cs;
	sl_drv_status(r->drv, &cs);
	return cs.leader;
}

/* A READ_ANS to node `to`: id u64 | the READ_RESULT datagram. */
static void read_answer(struct worker *w, struct region *r, uint16_t to, uint64_t id,
			const struct read_req *q, uint8_t st)
{
	uint8_t *b = w->fab->scratch;
	sl_put_u64(b, id);
	uint32_t len = read_result(w, r, q, st, b + 8, NET_UDP_PAYLOAD_MAX);
	struct sl_cons_msg m = {.group_id = r->id, .from = w->node->cfg.node_id, .to = to,
				.len = 8 + len, .buf = b};
	nd_fab_send_kind(w, SL_FAB_READ_ANS, &m);
}

/* On the region's core: a READ. Level local is answered from this replica's store; leader
 * and durable are linearizable: the protocol's read index (ReadIndex for raft: the leader
 * confirms it still leads), then the store once it applied that index. A replica that
 * does not lead sends the read to the leader's node and relays its answer. */
void nd_read_serve(struct worker *w, struct xmsg *x)
{
	struct read_req *q = &x->rq;
	uint64_t sid = sl_series_id(q->key, q->key_len);
	struct region *r = &w->node->regions[nd_route_of(w->node, sid)];
	uint32_t owner = r->worker;
	if (owner != w->idx) {
		/* the region moved to another core since this read was routed (a core move) */
		sl_stats_add(w->st, SL_STAT_core_redirects, 1);
		nd_outbox_send(w, owner, x);
		return;
	}
	uint8_t st = SL_SESS_ST_OK;
	if (q->level == SL_SESS_READ_LOCAL) {
		if (r->drv == NULL)
			st = SL_SESS_ST_UNAVAILABLE; /* no replica here */
		goto answer;
	}
	if (r->ml && (q->level == SL_SESS_READ_LEADER || r->drv == NULL)) {
		/* a multileader region has no leader to linearize at: durable (CAD) is its
		 * strongest level, served by a replica on its own (the protocol's read) */
		st = SL_SESS_ST_UNAVAILABLE;
		goto answer;
	}
	struct nd_read *rd = read_slot(r);
	if (rd == NULL) {
		st = SL_SESS_ST_BUSY;
		goto answer;
	}
	rd->x = x;
	rd->deadline_ns = w->now_ns + READ_WAIT_NS;
	if (r->ml && q->level == SL_SESS_READ_SYNC) {
		/* every origin's durable position, applied here: read-your-writes for any
		 * session, whichever node took its writes */
		if (sl_ml_read_sync(sl_drv_instance(r->drv), rd->id) == 0) {
			rd->kind = RD_LOCAL;
			sl_stats_add(w->st, SL_STAT_reads_sync, 1);
			return;
		}
		r->n_reads--; /* too many reads waiting: the slot was not used */
		rd->kind = RD_FREE;
		st = SL_SESS_ST_BUSY;
		goto answer;
	}
	if (r->drv != NULL && sl_drv_read(r->drv, rd->id) == 0) {
		/* raft: a read index (linearizable, so read-your-writes at level sync too) */
		rd->kind = RD_LOCAL;
		sl_stats_add(w->st, r->ml ? SL_STAT_reads_cad : SL_STAT_reads_linearizable, 1);
		return;
	}
	uint32_t leader = region_leader(r);
	if (w->node->fab != NULL && leader != SL_CONS_NODE_NONE && leader != w->node->cfg.node_id) {
		rd->kind = RD_FWD;
		uint8_t *b = w->fab->scratch;
		sl_put_u64(b, rd->id);
		sl_put_u64(b + 8, q->request_id);
		sl_put_u64(b + 16, (uint64_t)q->from);
		sl_put_u64(b + 24, (uint64_t)q->to);
		sl_put_u32(b + 32, q->max);
		b[36] = q->level;
		sl_put_u16(b + 37, q->key_len);
		memcpy(b + 39, q->key, q->key_len);
		struct sl_cons_msg m = {.group_id = r->id, .from = w->node->cfg.node_id,
					.to = leader, .len = 39u + q->key_len, .buf = b};
		nd_fab_send_kind(w, SL_FAB_READ, &m);
		sl_stats_add(w->st, SL_STAT_reads_forwarded, 1);
		return;
	}
	r->n_reads--; /* nobody to ask: the slot was not used */
	rd->kind = RD_FREE;
	st = SL_SESS_ST_UNAVAILABLE;
answer:
	if (st == SL_SESS_ST_UNAVAILABLE)
		sl_stats_add(w->st, SL_STAT_reads_unavailable, 1);
	x->used = read_result(w, r, q, st, x->buf, sizeof(x->buf));
	read_reply(w, x);
}

/* The protocol's answer to a read: the index to apply before reading, or a refusal. */
void nd_read_index(struct region *r, const struct sl_cons_read *rr)
{
	uint64_t slot = rr->read_id & 0xff;
	if (slot >= NODE_READS || r->reads[slot].id != rr->read_id ||
	    r->reads[slot].kind == RD_FREE || r->reads[slot].kind == RD_FWD)
		return;
	struct nd_read *rd = &r->reads[slot];
	if (rr->status == SL_CONS_ACK_OK) {
		rd->indexed = true;
		rd->index = rr->index;
	} else {
		rd->deadline_ns = 0; /* answered UNAVAILABLE by the next progress */
	}
}

/* Reads whose index is applied are answered; those past their deadline get UNAVAILABLE. */
void nd_reads_progress(struct worker *w, struct region *r)
{
	for (uint32_t i = 0; i < NODE_READS && r->n_reads > 0; i++) {
		struct nd_read *rd = &r->reads[i];
		if (rd->kind == RD_FREE)
			continue;
		bool ready = rd->kind != RD_FWD && rd->indexed && r->applied_index >= rd->index;
		if (!ready && w->now_ns < rd->deadline_ns)
			continue;
		uint8_t st = ready ? SL_SESS_ST_OK : SL_SESS_ST_UNAVAILABLE;
		if (!ready)
			sl_stats_add(w->st, SL_STAT_reads_unavailable, 1);
		if (rd->kind == RD_REMOTE) {
			read_answer(w, r, rd->origin, rd->origin_id, &rd->rq, st);
		} else {
			rd->x->used = read_result(w, r, &rd->x->rq, st, rd->x->buf,
						  sizeof(rd->x->buf));
			read_reply(w, rd->x);
		}
		read_free(r, rd);
	}
}

/* The leader's side: a read another node forwarded. */
void nd_read_fwd_in(struct worker *w, struct region *r, const struct sl_cons_msg *m)
{
	struct read_req q;
	memset(&q, 0, sizeof(q));
	if (m->len < 39 || sl_get_u16(m->buf + 37) == 0 || sl_get_u16(m->buf + 37) > SL_KEY_MAX ||
	    m->len != 39u + sl_get_u16(m->buf + 37)) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		return;
	}
	uint64_t origin_id = sl_get_u64(m->buf);
	q.request_id = sl_get_u64(m->buf + 8);
	q.from = (int64_t)sl_get_u64(m->buf + 16);
	q.to = (int64_t)sl_get_u64(m->buf + 24);
	q.max = sl_get_u32(m->buf + 32);
	q.level = m->buf[36];
	q.key_len = sl_get_u16(m->buf + 37);
	memcpy(q.key, m->buf + 39, q.key_len);
	struct nd_read *rd = r->drv != NULL ? read_slot(r) : NULL;
	if (rd == NULL) {
		read_answer(w, r, (uint16_t)m->from, origin_id, &q,
			    r->drv != NULL ? SL_SESS_ST_BUSY : SL_SESS_ST_UNAVAILABLE);
		return;
	}
	if (sl_drv_read(r->drv, rd->id) != 0) { /* not the leader (any more) */
		read_free(r, rd);
		read_answer(w, r, (uint16_t)m->from, origin_id, &q, SL_SESS_ST_UNAVAILABLE);
		return;
	}
	rd->kind = RD_REMOTE;
	rd->origin = (uint16_t)m->from;
	rd->origin_id = origin_id;
	rd->rq = q;
	rd->deadline_ns = w->now_ns + READ_WAIT_NS;
	sl_stats_add(w->st, SL_STAT_reads_linearizable, 1);
}

/* The forwarding side: the leader's result goes to the client as is. */
void nd_read_ans_in(struct worker *w, struct region *r, const struct sl_cons_msg *m)
{
	if (m->len < 8 + SL_SESS_HDR_BYTES || m->len - 8 > XMSG_BYTES) {
		sl_stats_add(w->st, SL_STAT_fwd_bad, 1);
		return;
	}
	uint64_t id = sl_get_u64(m->buf);
	uint64_t slot = id & 0xff;
	if (slot >= NODE_READS || r->reads[slot].kind != RD_FWD || r->reads[slot].id != id)
		return; /* answered already (timed out) */
	struct nd_read *rd = &r->reads[slot];
	memcpy(rd->x->buf, m->buf + 8, m->len - 8);
	rd->x->used = m->len - 8;
	read_reply(w, rd->x);
	read_free(r, rd);
}

/* ROUTES: per range of the routing table (in hash order: a region's id says nothing of
 * where its range lies once regions split or merged) its region's protocol and home
 * (client-side routing, docs/protocol.md): multileader its home replica, raft the leader
 * this node last knew (0 while none is known), standalone its one copy. Read from the
 * table, the config, link states and what each owner core published: no other core's
 * region is touched. */
static void sess_routes(struct worker *w, uint64_t request_id, const struct reply_addr *ra)
{
	struct sl_node *n = w->node;
	uint8_t *routes = w->sess_routes;
	const struct nd_route *t = atomic_load_explicit(&n->route, memory_order_acquire);
	for (uint32_t e = 0; e < t->n; e++) {
		uint32_t i = t->region[e];
		const struct region *r = &n->regions[i];
		uint32_t caps = sl_cons_caps(sl_cons_find(sl_cfg_region_protocol(&n->cfg, i)));
		struct sl_sess_route rt = {.hash_lo = t->lo[e],
					   .hash_hi = e + 1 < t->n ? t->lo[e + 1] - 1 : UINT64_MAX};
		uint32_t reps[SL_CONS_MAX_PEERS];
		uint32_t k = sl_cfg_region_replicas(&n->cfg, i, reps);
		if (r->ml) {
			rt.protocol = SL_SESS_PROTO_MULTILEADER;
			rt.home = nd_ml_home(n, r);
		} else if (caps & SL_CONS_CAP_LEADER) {
			rt.protocol = SL_SESS_PROTO_RAFT;
			rt.home = sl_cfg_region_here(&n->cfg, i)
					  ? atomic_load_explicit(&r->leader_seen, memory_order_relaxed)
					  : r->leader_hint;
		} else {
			rt.protocol = SL_SESS_PROTO_STANDALONE;
			rt.home = k > 0 ? reps[0] : n->cfg.node_id;
		}
		sl_sess_route_put(routes, e, &rt);
	}
	struct sl_sess_msg out = {.type = SL_SESS_ROUTES_OK, .cluster_id = n->cfg.cluster_id};
	out.u.routes = (struct sl_sess_routes){request_id, n->cfg.node_id, (uint16_t)t->n, routes};
	sess_send(w, ra, &out);
}

static enum net_fate net_session(struct worker *w, const struct sl_pkt_info *in, uint16_t port)
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
		return NET_FREE;
	}
	struct sl_sess_msg out = {.cluster_id = w->node->cfg.cluster_id};
	enum net_fate fate = NET_FREE;
	switch (m.type) {
	case SL_SESS_OPEN:
		sl_stats_add(w->st, SL_STAT_sess_opens, 1);
		out.type = SL_SESS_OPEN_OK;
		sl_sess_on_open(&w->sess, &m.u.open, (int64_t)w->now_ns, &out.u.open_ok);
		sess_send(w, &ra, &out);
		break;
	case SL_SESS_BATCH:
		fate = sess_batch(w, &m.u.batch, &ra);
		break;
	case SL_SESS_READ:
		sess_read(w, &m.u.read, &ra);
		break;
	case SL_SESS_CLOSE:
		out.type = SL_SESS_CLOSE_OK;
		sl_sess_on_close(&w->sess, &m.u.close, &out.u.close_ok);
		sess_send(w, &ra, &out);
		break;
	case SL_SESS_ROUTES:
		sl_stats_add(w->st, SL_STAT_sess_routes, 1);
		sess_routes(w, m.u.routes_req.request_id, &ra);
		break;
	default: /* node-to-client types sent to the node */
		sl_stats_add(w->st, SL_STAT_sess_bad, 1);
		break;
	}
	return fate;
}

/* One good line of line protocol: each field is its own series point. Stops (-EAGAIN)
 * when routing has no room, remembering the fields already routed. */
static int lp_line_cb(void *arg, const struct sl_lp_line *line)
{
	struct worker *w = arg;
	for (uint32_t i = w->park.lp_field; i < line->n_fields; i++) {
		struct sl_point pt = sl_lp_point_of(line, i);
		if (!nd_route_point(w, NO_ACK, &pt)) {
			w->park.lp_field = i;
			return -EAGAIN;
		}
		sl_stats_add(w->st, SL_STAT_points_in, 1);
	}
	w->park.lp_field = 0;
	return 0;
}

/* Parses (or resumes) a line protocol datagram from park.lp_off; NET_PARKED when it
 * stopped for routing room. */
static enum net_fate lp_run(struct worker *w, const struct sl_pkt_info *in, int64_t now)
{
	struct sl_lp_opts o = {.precision = w->node->precision, .now_ns = now};
	int rc = sl_lp_parse_datagram_from((const char *)in->payload, in->payload_len,
					   &w->park.lp_off, &o, w->lp, lp_line_cb, w, &w->lpc);
	if (rc != -EAGAIN)
		return NET_FREE;
	w->park.kind = PARK_LP;
	w->park.lp_now = now;
	return NET_PARKED;
}

static enum net_fate net_udp(struct worker *w, const struct sl_pkt_info *in, uint16_t port)
{
	struct sl_node *n = w->node;
	if (in->dst_port == n->cfg.session_port)
		return net_session(w, in, port);
	if (in->dst_port == n->cfg.line_port) {
		w->park.lp_off = 0;
		w->park.lp_field = 0;
		return lp_run(w, in, nd_wall_ns());
	}
	sl_stats_add(w->st, SL_STAT_udp_no_listener, 1);
	return NET_FREE;
}

/* A frame net_udp parked: the door holds it (and its classification) until resumed. */
static enum net_fate net_park(struct worker *w, enum net_fate fate, struct rte_mbuf *m,
			      const struct sl_pkt_info *in, uint16_t port)
{
	if (fate == NET_PARKED) {
		w->park.m = m;
		w->park.in = *in;
		w->park.port = port;
		sl_stats_add(w->st, SL_STAT_net_parked, 1);
	}
	return fate;
}

static void count_drop(struct worker *w, enum sl_pkt_drop reason)
{
	sl_stats_add(w->st, SL_STAT_pkts_dropped, 1);
	if (reason >= SL_PKT_DROP_TRUNCATED && reason <= SL_PKT_DROP_FRAGMENT_OVERSIZE)
		sl_stats_add(w->st,
			     (enum sl_stat)(SL_STAT_drop_truncated + (reason - SL_PKT_DROP_TRUNCATED)),
			     1);
}

/* ------------------------------------------- reassembly and hand-over between workers */

_Static_assert(SL_STAT_drop_fragment_oversize - SL_STAT_drop_truncated ==
		       SL_PKT_DROP_FRAGMENT_OVERSIZE - SL_PKT_DROP_TRUNCATED,
	       "per-reason packet drop counters follow enum sl_pkt_drop");

/* Fibonacci hashing of a key onto n workers: the high bits mix every key bit. */
static unsigned owner_of(uint64_t key, unsigned n)
{
	return (unsigned)(((key * 0x9e3779b97f4a7c15ull) >> 32) % n);
}

/* The worker that reassembles a datagram: a function of what every fragment carries
 * (addresses and IP id: the reassembly key), never of the UDP ports only the first
 * fragment has. */
static unsigned frag_owner(const struct sl_pkt_info *in, unsigned n)
{
	return owner_of(((uint64_t)in->src_ip << 32 | in->dst_ip) ^ in->ip_id, n);
}

/* The worker of a session's table: a function of the client's address and port, so the
 * whole datagrams and the reassembled ones of a client meet there, whichever queue the
 * device (which hashes fragments without their ports) put them on. */
static unsigned sess_owner(const struct sl_pkt_info *in, unsigned n)
{
	return owner_of((uint64_t)in->src_ip << 16 | in->src_port, n);
}

unsigned sl_node_sess_queue(uint32_t src_ip, uint16_t src_port, unsigned nq)
{
	return owner_of((uint64_t)src_ip << 16 | src_port, nq);
}

unsigned sl_node_frag_queue(uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, unsigned nq)
{
	return owner_of(((uint64_t)src_ip << 32 | dst_ip) ^ ip_id, nq);
}

/* Hands m (a frame, or a reassembled chained datagram) to worker `owner`. */
static void net_handoff(struct worker *w, unsigned owner, const struct sl_port *p,
			struct rte_mbuf *m, enum sl_stat what)
{
	m->port = p->port_id; /* the owner serves it as this port's */
	if (rte_ring_mp_enqueue(w->node->w[owner].netq, m) != 0) {
		sl_stats_add(w->st, SL_STAT_handoff_full, 1);
		sl_stats_add(w->st, SL_STAT_pkts_dropped, 1);
		rte_pktmbuf_free(m);
		return;
	}
	sl_stats_add(w->st, what, 1);
}

/* A UDP datagram for us (in: its classification; m holds it): served here, or handed to
 * its session's worker when the port has several queues (then m is not the caller's any
 * more: NET_KEPT), or parked with its points partly routed (NET_PARKED, m held). */
static enum net_fate net_udp_here_or_handoff(struct worker *w, uint16_t port, struct rte_mbuf *m,
					     const struct sl_pkt_info *in)
{
	const struct sl_port *p = &w->node->ports.p[port];
	if (in->dst_port == w->node->cfg.session_port && p->n_queues > 1) {
		unsigned owner = sess_owner(in, p->n_queues);
		if (owner != w->idx) {
			net_handoff(w, owner, p, m, SL_STAT_sess_handoffs);
			return NET_KEPT;
		}
	}
	return net_park(w, net_udp(w, in, port), m, in, port);
}

/* Classifies a chained datagram through the worker's flat buffer. */
static enum sl_pkt_verdict classify_chain(struct worker *w, const struct rte_mbuf *d,
					  struct sl_pkt_info *in)
{
	const uint8_t *buf = rte_pktmbuf_read(d, 0, d->pkt_len, w->flat);
	return sl_pkt_classify(buf, buf != NULL ? d->pkt_len : 0, &w->node->local, in);
}

/* A fragment on its owning worker: add it; a complete datagram (its UDP checksum covers
 * every fragment, checked here) is served like any datagram, on the line protocol and
 * session ports only. m is never the caller's afterwards (NET_KEPT, or NET_PARKED: the
 * datagram it completed is parked). */
static enum net_fate net_reassemble(struct worker *w, uint16_t port, struct rte_mbuf *m,
				    const struct sl_pkt_info *in)
{
	struct sl_node *n = w->node;
	struct rte_mbuf *d = sl_frag_add(&w->frag, m, in, rte_rdtsc());
	if (d == NULL)
		return NET_KEPT;
	struct sl_pkt_info dg;
	if (classify_chain(w, d, &dg) != SL_PKT_UDP_FOR_US) {
		count_drop(w, dg.reason);
	} else if (dg.dst_port != n->cfg.line_port && dg.dst_port != n->cfg.session_port) {
		count_drop(w, SL_PKT_DROP_FRAGMENT); /* other ports take no fragments */
	} else {
		enum net_fate f = net_udp_here_or_handoff(w, port, d, &dg);
		if (f != NET_FREE)
			return f;
	}
	rte_pktmbuf_free(d);
	return NET_KEPT;
}

/* A fragment off the wire: with several RX queues its siblings may come in on other
 * queues, so it goes to the datagram's owner. */
static enum net_fate net_fragment(struct worker *w, uint16_t port, struct rte_mbuf *m,
				  const struct sl_pkt_info *in)
{
	const struct sl_port *p = &w->node->ports.p[port];
	if (w->frag.tbl == NULL) { /* [net] frag_max_flows = 0 */
		count_drop(w, SL_PKT_DROP_FRAGMENT);
		return NET_FREE;
	}
	unsigned owner = p->n_queues > 1 ? frag_owner(in, p->n_queues) : w->idx;
	if (owner == w->idx)
		return net_reassemble(w, port, m, in);
	net_handoff(w, owner, p, m, SL_STAT_frag_handoffs);
	return NET_KEPT;
}

/* A frame another worker handed here (classified there: the same verdict again). */
static enum net_fate net_netq_frame(struct worker *w, struct rte_mbuf *m)
{
	struct sl_node *n = w->node;
	uint16_t port = 0;
	while (port + 1 < n->ports.n && n->ports.p[port].port_id != m->port)
		port++;
	struct sl_pkt_info in;
	enum sl_pkt_verdict v = classify_chain(w, m, &in);
	if (v == SL_PKT_UDP_FRAGMENT_FOR_US && m->nb_segs == 1 && w->frag.tbl)
		return net_reassemble(w, port, m, &in);
	if (v == SL_PKT_UDP_FOR_US)
		return net_park(w, net_udp(w, &in, port), m, &in, port);
	count_drop(w, in.reason);
	return NET_FREE;
}

/* A frame off port index `i`, queue = this worker. */
static enum net_fate net_rx_frame(struct worker *w, uint16_t i, struct rte_mbuf *m)
{
	struct sl_node *n = w->node;
	if (m->nb_segs != 1) {
		sl_stats_add(w->st, SL_STAT_pkts_multiseg, 1);
		sl_stats_add(w->st, SL_STAT_pkts_dropped, 1);
		return NET_FREE;
	}
	struct sl_pkt_info in;
	enum sl_pkt_verdict v = sl_pkt_classify(rte_pktmbuf_mtod(m, const uint8_t *),
						rte_pktmbuf_data_len(m), &n->local, &in);
	switch (v) {
	case SL_PKT_UDP_FOR_US:
		return net_udp_here_or_handoff(w, i, m, &in);
	case SL_PKT_ARP_REQUEST_FOR_US:
		sl_pkt_arp_insert(&w->arp, in.src_ip, in.src_mac, (int64_t)w->now_ns);
		net_reply(w, i, &in, true);
		break;
	case SL_PKT_ARP_REPLY: /* the kernel's too, when it asked (the exception path) */
		sl_pkt_arp_insert(&w->arp, in.src_ip, in.src_mac, (int64_t)w->now_ns);
		if (nd_exc_take(w, i, m, v, in.reason))
			return NET_KEPT;
		break;
	case SL_PKT_ICMP_ECHO_FOR_US:
		net_reply(w, i, &in, false);
		break;
	case SL_PKT_UDP_FRAGMENT_FOR_US:
		return net_fragment(w, i, m, &in);
	case SL_PKT_DROP:
	default:
		if (nd_exc_take(w, i, m, v, in.reason))
			return NET_KEPT; /* TCP and the rest for the host's kernel */
		count_drop(w, in.reason);
		break;
	}
	return NET_FREE;
}

/* Serves burst[k..n) (port index, or UINT16_MAX: the hand-over ring) until a frame is
 * parked; the frames after it wait in the park, in their order. */
static void net_serve(struct worker *w, uint16_t port, struct rte_mbuf **burst, unsigned k,
		      unsigned n)
{
	struct net_park *pk = &w->park;
	while (k < n) {
		struct rte_mbuf *m = burst[k++];
		enum net_fate f = port == UINT16_MAX ? net_netq_frame(w, m) : net_rx_frame(w, port, m);
		if (f == NET_FREE)
			rte_pktmbuf_free(m);
		else if (f == NET_PARKED)
			break;
	}
	if (burst == pk->rest) {
		pk->rest_head = (uint16_t)k;
	} else if (k < n) {
		memcpy(pk->rest, burst + k, (n - k) * sizeof(*burst));
		pk->rest_port = port;
		pk->rest_head = 0;
		pk->rest_n = (uint16_t)(n - k);
	}
}

bool nd_net_parked(const struct worker *w)
{
	return w->park.kind != PARK_NONE || w->park.rest_head < w->park.rest_n;
}

/* The parked frame first, then the rest of its burst; false while something still waits. */
static bool net_resume(struct worker *w)
{
	struct net_park *pk = &w->park;
	if (pk->kind != PARK_NONE) {
		enum net_fate f = pk->kind == PARK_LP ? lp_run(w, &pk->in, pk->lp_now)
			: sess_route(w, pk->sess_h, &pk->sess_it) ? NET_FREE : NET_PARKED;
		if (f == NET_PARKED)
			return false;
		rte_pktmbuf_free(pk->m);
		pk->m = NULL;
		pk->kind = PARK_NONE;
	}
	if (pk->rest_head < pk->rest_n)
		net_serve(w, pk->rest_port, pk->rest, pk->rest_head, pk->rest_n);
	return !nd_net_parked(w);
}

/* What other workers handed here (fragments of datagrams this worker reassembles,
 * datagrams of sessions it holds); timed-out datagrams; the table's counters. */
static int net_handoff_poll(struct worker *w)
{
	unsigned got = 0;
	if (w->netq != NULL && !nd_net_parked(w)) {
		struct rte_mbuf *ms[RX_BURST];
		got = rte_ring_dequeue_burst(w->netq, (void **)ms, RX_BURST, NULL);
		net_serve(w, UINT16_MAX, ms, 0, got);
	}
	if (w->frag.tbl == NULL)
		return (int)got;
	sl_frag_expire(&w->frag, rte_rdtsc());
	struct sl_frag_counts *c = &w->frag.c, *o = &w->frag_published;
	sl_stats_add(w->st, SL_STAT_frag_rx, c->fragments - o->fragments);
	sl_stats_add(w->st, SL_STAT_frag_reassembled, c->reassembled - o->reassembled);
	sl_stats_add(w->st, SL_STAT_frag_expired, c->expired - o->expired);
	sl_stats_add(w->st, SL_STAT_frag_table_full, c->table_full - o->table_full);
	sl_stats_add(w->st, SL_STAT_frag_bad, c->bad - o->bad);
	*o = *c;
	return (int)got;
}

/* Ingress, network door: a parked frame (and the rest of its burst) first; new frames
 * only once nothing is parked, one RX burst per port, one hand-over burst. */
int nd_poll_net(struct worker *w, bool take_new)
{
	struct sl_node *n = w->node;
	int work = 0;
	if (!net_resume(w) || !take_new)
		return work;
	for (uint16_t i = 0; i < n->ports.n && !nd_net_parked(w); i++) {
		const struct sl_port *p = &n->ports.p[i];
		if (w->idx >= p->n_queues)
			continue;
		struct rte_mbuf *pkts[RX_BURST];
		uint16_t got = rte_eth_rx_burst(p->port_id, (uint16_t)w->idx, pkts, RX_BURST);
		work += got;
		sl_stats_add(w->st, SL_STAT_pkts_rx, got);
		net_serve(w, i, pkts, 0, got);
	}
	return work + net_handoff_poll(w) + nd_exc_poll(w);
}

/* Line protocol counters live in the parser's struct; publish their growth. */
void nd_lp_stats(struct worker *w)
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

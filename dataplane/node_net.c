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

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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
static void sess_fail(struct worker *w, const struct pend *p, uint8_t status)
{
	sl_sess_on_abort(&w->sess, p->session_id, p->batch_seq);
	struct sl_sess_ack ack = {.session_id = p->session_id, .seq = p->batch_seq, .status = status};
	if (p->level != SL_SESS_LEVEL_NONE)
		sess_send_ack(w, &p->ra, &ack);
}

/* Logs the session record of a batch whose points are all applied and whose earlier seqs
 * are all recorded; its durability is the batch's acknowledgement (docs/protocol.md). */
static void sess_record(struct worker *w, const struct pend *p)
{
	if (w->wal_failed || w->sessq_len == SESSQ_SIZE) {
		sess_fail(w, p, w->wal_failed ? SL_SESS_ST_STORAGE_ERROR : SL_SESS_ST_BUSY);
		return;
	}
	uint8_t b[SESSION_REC_BYTES];
	b[0] = WAL_REC_SESSION;
	sl_put_u64(b + 1, p->session_id);
	sl_put_u64(b + 9, p->batch_seq);
	sl_put_u32(b + 17, p->stored);
	sl_put_u32(b + 21, p->count);
	uint64_t lsn = 0;
	int rc = nd_wal_append_wait(w, WAL_REC_SESSION, NULL, 0, b, sizeof(b), &lsn);
	if (rc != 0) {
		nd_wal_fail(w, rc);
		sess_fail(w, p, SL_SESS_ST_STORAGE_ERROR);
		return;
	}
	w->sessq[(w->sessq_head + w->sessq_len++) % SESSQ_SIZE] =
		(struct sessq_ent){lsn,	     p->session_id, p->batch_seq, p->t0_tsc,
				   p->stored, p->count,	    p->level,	  p->ra};
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
	int64_t now = (int64_t)nd_now_ns();
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
		nd_pend_finish(w, h);
		return;
	}
	struct sl_sess_point_iter it;
	struct sl_point pt;
	sl_sess_points_init(&it, b);
	while (sl_sess_points_next(&it, &pt) == 1) {
		nd_route_point_wait(w, h, &pt);
		sl_stats_add(w->st, SL_STAT_points_in, 1);
	}
	sl_stats_add(w->st, SL_STAT_sess_points, b->count);
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
	nd_outbox_send(w, w->node->regions[sl_node_region_of(sid, w->node->cfg.regions)].worker, x);
}

/* On the region's core: run the query, turn the message into the result frame. */
void nd_read_serve(struct worker *w, struct xmsg *x)
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
	nd_outbox_send(w, back, x);
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
		sl_sess_on_open(&w->sess, &m.u.open, (int64_t)nd_now_ns(), &out.u.open_ok);
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
		nd_route_point_wait(w, NO_ACK, &pt);
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
 * its session's worker when the port has several queues. true when m was handed over
 * (it is not the caller's any more). */
static bool net_udp_here_or_handoff(struct worker *w, uint16_t port, struct rte_mbuf *m,
				    const struct sl_pkt_info *in)
{
	const struct sl_port *p = &w->node->ports.p[port];
	if (in->dst_port == w->node->cfg.session_port && p->n_queues > 1) {
		unsigned owner = sess_owner(in, p->n_queues);
		if (owner != w->idx) {
			net_handoff(w, owner, p, m, SL_STAT_sess_handoffs);
			return true;
		}
	}
	net_udp(w, in, port);
	return false;
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
 * session ports only. */
static void net_reassemble(struct worker *w, uint16_t port, struct rte_mbuf *m,
			   const struct sl_pkt_info *in)
{
	struct sl_node *n = w->node;
	struct rte_mbuf *d = sl_frag_add(&w->frag, m, in, rte_rdtsc());
	if (d == NULL)
		return;
	struct sl_pkt_info dg;
	if (classify_chain(w, d, &dg) != SL_PKT_UDP_FOR_US)
		count_drop(w, dg.reason);
	else if (dg.dst_port != n->cfg.line_port && dg.dst_port != n->cfg.session_port)
		count_drop(w, SL_PKT_DROP_FRAGMENT); /* other ports take no fragments */
	else if (net_udp_here_or_handoff(w, port, d, &dg))
		return;
	rte_pktmbuf_free(d);
}

/* A fragment off the wire: with several RX queues its siblings may come in on other
 * queues, so it goes to the datagram's owner. */
static void net_fragment(struct worker *w, uint16_t port, struct rte_mbuf *m,
			 const struct sl_pkt_info *in)
{
	const struct sl_port *p = &w->node->ports.p[port];
	if (w->frag.tbl == NULL) { /* [net] frag_max_flows = 0 */
		count_drop(w, SL_PKT_DROP_FRAGMENT);
		rte_pktmbuf_free(m);
		return;
	}
	unsigned owner = p->n_queues > 1 ? frag_owner(in, p->n_queues) : w->idx;
	if (owner == w->idx)
		net_reassemble(w, port, m, in);
	else
		net_handoff(w, owner, p, m, SL_STAT_frag_handoffs);
}

/* What other workers handed here (fragments of datagrams this worker reassembles,
 * datagrams of sessions it holds); timed-out datagrams; the table's counters. */
static int net_handoff_poll(struct worker *w)
{
	struct sl_node *n = w->node;
	unsigned got = 0;
	if (w->netq != NULL) {
		struct rte_mbuf *ms[RX_BURST];
		got = rte_ring_dequeue_burst(w->netq, (void **)ms, RX_BURST, NULL);
		for (unsigned k = 0; k < got; k++) {
			struct rte_mbuf *m = ms[k];
			uint16_t port = 0;
			while (port + 1 < n->ports.n && n->ports.p[port].port_id != m->port)
				port++;
			/* classified by the worker that handed it over: the same verdict again */
			struct sl_pkt_info in;
			enum sl_pkt_verdict v = classify_chain(w, m, &in);
			if (v == SL_PKT_UDP_FRAGMENT_FOR_US && m->nb_segs == 1 && w->frag.tbl) {
				net_reassemble(w, port, m, &in);
				continue;
			}
			if (v == SL_PKT_UDP_FOR_US)
				net_udp(w, &in, port);
			else
				count_drop(w, in.reason);
			rte_pktmbuf_free(m);
		}
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

int nd_poll_net(struct worker *w)
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
				if (net_udp_here_or_handoff(w, i, m, &in))
					continue; /* its session lives on another worker */
				break;
			case SL_PKT_ARP_REQUEST_FOR_US:
				sl_pkt_arp_insert(&w->arp, in.src_ip, in.src_mac, (int64_t)nd_now_ns());
				net_reply(w, i, &in, true);
				break;
			case SL_PKT_ARP_REPLY:
				sl_pkt_arp_insert(&w->arp, in.src_ip, in.src_mac, (int64_t)nd_now_ns());
				break;
			case SL_PKT_ICMP_ECHO_FOR_US:
				net_reply(w, i, &in, false);
				break;
			case SL_PKT_UDP_FRAGMENT_FOR_US:
				net_fragment(w, i, m, &in);
				continue; /* m is the table's, another worker's or freed */
			case SL_PKT_DROP:
			default:
				count_drop(w, in.reason);
				break;
			}
			rte_pktmbuf_free(m);
		}
	}
	return work + net_handoff_poll(w);
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

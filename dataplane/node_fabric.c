/* node_fabric.c - the links between the nodes of a cluster: one memif device per peer node
 * with one queue pair per worker, so the core that owns a region here talks to the core
 * that owns it on the peer without a hand-off. Each worker coalesces its regions' consensus
 * messages per peer into frames (fabric.h) and sends them at the end of its round; what
 * arrives is checked, reassembled and stepped into the owning region's driver. */
#include <sys/stat.h>

#include "log.h"
#include "node_internal.h"

#define FAB_RX_BURST 32
#define FAB_DESC 512
#define FAB_NAME_PREFIX SL_PORT_FABRIC_PREFIX

/* A link's buffer: a whole frame (Ethernet header and fabric_mtu bytes), a power of two
 * (memif's buffers; the fabric's mbufs get as much room, so a frame is one segment). */
static uint32_t fab_buf_bytes(uint32_t mtu)
{
	uint32_t b = 2048;
	while (b < mtu + RTE_ETHER_HDR_LEN)
		b <<= 1;
	return b;
}

/* The socket of the link between nodes a < b (the same path on both nodes). */
static void link_path(const struct sl_config *c, unsigned a, unsigned b, char *buf, size_t len)
{
	if (a > b) {
		unsigned t = a;
		a = b;
		b = t;
	}
	snprintf(buf, len, "%s/fabric-%u-%u-%u.sock", c->fabric_dir, c->cluster_id, a, b);
}

int nd_fab_vdevs(const struct sl_config *c, char (*out)[SL_FAB_VDEV_MAX], unsigned max,
		 char *err, size_t err_len)
{
	unsigned k = 0;
	if (c->cluster_nodes <= 1)
		return 0;
	if (mkdir(c->fabric_dir, 0750) != 0 && errno != EEXIST) {
		snprintf(err, err_len, "[cluster] fabric_dir %s: %s", c->fabric_dir, strerror(errno));
		return -errno;
	}
	for (unsigned peer = 1; peer <= c->cluster_nodes; peer++) {
		if (peer == c->node_id)
			continue;
		if (k == max) {
			snprintf(err, err_len, "too many fabric links");
			return -E2BIG;
		}
		char path[SL_CFG_PATH_MAX + 64];
		link_path(c, c->node_id, peer, path, sizeof(path));
		/* the lower id listens: a socket file left by its previous life (a SIGKILL) is
		 * its own, and the listener cannot bind over it */
		bool server = c->node_id < peer;
		if (server)
			unlink(path);
		int len = snprintf(out[k], SL_FAB_VDEV_MAX,
				   FAB_NAME_PREFIX "%u,role=%s,socket=%s,id=0,bsize=%u", peer,
				   server ? "server" : "client", path, fab_buf_bytes(c->fabric_mtu));
		if (len < 0 || len >= SL_FAB_VDEV_MAX) {
			snprintf(err, err_len, "[cluster] fabric_dir too long: %s", c->fabric_dir);
			return -ENAMETOOLONG;
		}
		k++;
	}
	return (int)k;
}

bool nd_fab_port_name(const char *name)
{
	return strncmp(name, FAB_NAME_PREFIX, strlen(FAB_NAME_PREFIX)) == 0;
}

/* One peer's link: as many queue pairs as workers, no RSS (the sender picks the queue: its
 * own core index, which is the receiving core too). A client link whose listener is not
 * up yet starts later (nd_fab_housekeeping). */
static int link_init(struct sl_node *n, struct nd_fab_peer *p, char *err, size_t err_len)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	uint16_t nq = (uint16_t)n->n_workers;
	int rc = rte_eth_dev_configure(p->port_id, nq, nq, &conf);
	if (rc != 0) {
		snprintf(err, err_len, "fabric link to node %u: configure %u queues: %s", p->node,
			 nq, strerror(-rc));
		return rc;
	}
	uint16_t rxd = FAB_DESC, txd = FAB_DESC;
	rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &rxd, &txd);
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, rxd, rte_eth_dev_socket_id(p->port_id),
					    NULL, n->fab->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, q, txd,
						    rte_eth_dev_socket_id(p->port_id), NULL);
		if (rc != 0) {
			snprintf(err, err_len, "fabric link to node %u: queue %u: %s", p->node, q,
				 strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(p->port_id);
	p->started = rc == 0;
	if (rc != 0)
		SL_LOG(NOTICE, fabric, "link to node %u: not up yet (%s); retried\n", p->node,
		       strerror(-rc));
	return 0;
}

int nd_fab_init(struct sl_node *n, char *err, size_t err_len)
{
	const struct sl_config *c = &n->cfg;
	if (c->cluster_nodes <= 1)
		return 0;
	struct nd_fabric *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		snprintf(err, err_len, "out of memory at start-up");
		return -ENOMEM;
	}
	n->fab = f;
	f->self = (struct sl_fab_self){.cluster_id = c->cluster_id, .node = (uint16_t)c->node_id,
				       .min_epoch = 0};
	f->mtu = c->fabric_mtu;
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, name) != 0 || !nd_fab_port_name(name))
			continue;
		unsigned peer = (unsigned)strtoul(name + strlen(FAB_NAME_PREFIX), NULL, 10);
		if (peer == 0 || peer > c->cluster_nodes || f->n_peers == SL_CONS_MAX_PEERS) {
			snprintf(err, err_len, "fabric device %s: no such peer", name);
			return -EINVAL;
		}
		f->peer[f->n_peers++] = (struct nd_fab_peer){.node = (uint16_t)peer, .port_id = pid,
							     .server = c->node_id < peer};
	}
	if (f->n_peers != c->cluster_nodes - 1) {
		snprintf(err, err_len, "fabric: %u links for a cluster of %u nodes", f->n_peers,
			 c->cluster_nodes);
		return -EINVAL;
	}
	uint32_t need = f->n_peers * n->n_workers * (2 * FAB_DESC + 2 * SL_PORT_TX_BURST) + 4096;
	f->pool = rte_pktmbuf_pool_create("sl_fab", need, 256, 0,
					  (uint16_t)(fab_buf_bytes(f->mtu) + RTE_PKTMBUF_HEADROOM),
					  (int)rte_socket_id());
	if (f->pool == NULL) {
		snprintf(err, err_len, "fabric mbuf pool (%u): %s (raise [eal] memory_mb)", need,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (unsigned i = 0; i < f->n_peers; i++) {
		int rc = link_init(n, &f->peer[i], err, err_len);
		if (rc != 0)
			return rc;
	}
	for (unsigned w = 0; w < n->n_workers; w++) {
		struct wk_fab *wf = rte_zmalloc("sl_wkfab", sizeof(*wf), RTE_CACHE_LINE_SIZE);
		if (wf == NULL) {
			snprintf(err, err_len, "out of memory at start-up");
			return -ENOMEM;
		}
		n->w[w].fab = wf;
		wf->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)c->node_id << 32) ^ w;
		wf->scratch = rte_malloc("sl_fwd", FWD_HDR_MAX + PROP_BYTES, 0);
		if (wf->scratch == NULL) {
			snprintf(err, err_len, "out of memory at start-up");
			return -ENOMEM;
		}
		for (unsigned i = 0; i < f->n_peers; i++) {
			struct wk_fab_peer *wp = &wf->peer[i];
			int rc = sl_port_txq_init(&wp->txq, f->peer[i].port_id, (uint16_t)w);
			wp->ra_buf = rc == 0 ? rte_malloc("sl_fabra", SL_FAB_MSG_MAX, 0) : NULL;
			if (wp->ra_buf == NULL) {
				snprintf(err, err_len, "fabric: buffers of core %u: %s", w,
					 strerror(rc ? -rc : ENOMEM));
				return rc ? rc : -ENOMEM;
			}
			sl_fab_reasm_init(&wp->ra, wp->ra_buf, SL_FAB_MSG_MAX);
		}
	}
	SL_LOG(INFO, fabric, "node %u of %u: %u links, %u queue pairs each, frames of %u bytes\n",
	       c->node_id, c->cluster_nodes, f->n_peers, n->n_workers, f->mtu);
	return 0;
}

void nd_fab_fini(struct sl_node *n)
{
	struct nd_fabric *f = n->fab;
	if (f == NULL)
		return;
	for (unsigned w = 0; w < n->n_workers; w++) {
		struct wk_fab *wf = n->w[w].fab;
		if (wf == NULL)
			continue;
		for (unsigned i = 0; i < f->n_peers; i++) {
			rte_pktmbuf_free(wf->peer[i].m);
			for (uint32_t k = 0; k < wf->peer[i].held_len; k++)
				rte_pktmbuf_free(wf->peer[i].held[(wf->peer[i].held_head + k) %
								  FAB_HELD_MAX]);
			sl_port_txq_fini(&wf->peer[i].txq);
			rte_free(wf->peer[i].ra_buf);
		}
		rte_free(wf->scratch);
		rte_free(wf);
		n->w[w].fab = NULL;
	}
	for (unsigned i = 0; i < f->n_peers; i++) {
		rte_eth_dev_stop(f->peer[i].port_id);
		rte_eth_dev_close(f->peer[i].port_id);
	}
	rte_mempool_free(f->pool);
	free(f);
	n->fab = NULL;
}

/* ---------------------------------------------------------------- worker: sending */

static int peer_index(const struct nd_fabric *f, uint32_t node)
{
	for (unsigned i = 0; i < f->n_peers; i++)
		if (f->peer[i].node == node)
			return (int)i;
	return -1;
}

static bool link_usable(const struct nd_fab_peer *p)
{
	return atomic_load_explicit(&p->usable, memory_order_acquire);
}

bool nd_fab_peer_up(const struct sl_node *n, uint32_t node)
{
	int i = n->fab != NULL ? peer_index(n->fab, node) : -1;
	return i >= 0 && link_usable(&n->fab->peer[i]);
}

/* Tests only (debug_fabric): a coin that falls true pct times in a hundred. */
static bool fault_coin(struct worker *w, uint32_t pct)
{
	if (pct == 0)
		return false;
	uint64_t x = w->fab->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	w->fab->rng = x;
	return x % 100 < pct;
}

/* Tests only: a frame sent late; the oldest held ones leave first once due. */
static void held_push(struct worker *w, unsigned i, struct rte_mbuf *m, uint32_t delay_ms)
{
	struct wk_fab_peer *wp = &w->fab->peer[i];
	if (wp->held_len == FAB_HELD_MAX) {
		rte_pktmbuf_free(m);
		sl_stats_add(w->st, SL_STAT_fab_fault_dropped, 1);
		return;
	}
	uint32_t at = (wp->held_head + wp->held_len++) % FAB_HELD_MAX;
	wp->held[at] = m;
	wp->held_due[at] = w->now_ns + (uint64_t)delay_ms * 1000000ull;
	sl_stats_add(w->st, SL_STAT_fab_fault_delayed, 1);
}

static void held_release(struct worker *w, unsigned i)
{
	struct wk_fab_peer *wp = &w->fab->peer[i];
	while (wp->held_len > 0 && wp->held_due[wp->held_head] <= w->now_ns) {
		sl_port_txq_send(&wp->txq, wp->held[wp->held_head]);
		wp->held_head = (wp->held_head + 1) % FAB_HELD_MAX;
		wp->held_len--;
	}
}

/* The open frame to peer i leaves (into the TX buffer; sent with the burst). */
static void frame_close(struct worker *w, unsigned i)
{
	struct nd_fabric *f = w->node->fab;
	struct wk_fab_peer *wp = &w->fab->peer[i];
	if (wp->m == NULL)
		return;
	struct sl_fab_hdr h = {.cluster_id = f->self.cluster_id,
			       .src_node = f->self.node,
			       .dst_node = f->peer[i].node,
			       .src_core = (uint16_t)w->idx,
			       .dst_core = (uint16_t)w->idx,
			       .epoch = f->epoch,
			       .seq = wp->seq};
	uint32_t len = sl_fab_enc_finish(&wp->enc, &h);
	struct rte_mbuf *m = wp->m;
	wp->m = NULL;
	if (len == 0) {
		rte_pktmbuf_free(m);
		return;
	}
	wp->seq++;
	m->data_len = (uint16_t)(RTE_ETHER_HDR_LEN + len);
	m->pkt_len = m->data_len;
	sl_stats_add(w->st, SL_STAT_fab_frames_tx, 1);
	const struct nd_fab_peer *p = &f->peer[i];
	if (fault_coin(w, atomic_load_explicit(&p->fault_out_drop, memory_order_relaxed))) {
		rte_pktmbuf_free(m);
		sl_stats_add(w->st, SL_STAT_fab_fault_dropped, 1);
		return;
	}
	uint32_t delay = atomic_load_explicit(&p->fault_out_delay_ms, memory_order_relaxed);
	if (delay > 0 || wp->held_len > 0) { /* behind held frames too: order is kept */
		held_push(w, i, m, delay);
		return;
	}
	sl_port_txq_send(&wp->txq, m);
}

/* A new frame to peer i, its Ethernet header written; false when no buffer is free. */
static bool frame_open(struct worker *w, unsigned i)
{
	struct nd_fabric *f = w->node->fab;
	struct wk_fab_peer *wp = &w->fab->peer[i];
	struct rte_mbuf *m = rte_pktmbuf_alloc(f->pool);
	if (m == NULL)
		return false;
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr)); /* a point-to-point link */
	rte_eth_macaddr_get(f->peer[i].port_id, &eh->src_addr);
	eh->ether_type = rte_cpu_to_be_16(SL_FAB_ETHERTYPE);
	sl_fab_enc_begin(&wp->enc, (uint8_t *)(eh + 1), f->mtu);
	wp->m = m;
	return true;
}

void nd_fab_send(struct worker *w, const struct sl_cons_msg *m)
{
	nd_fab_send_kind(w, SL_FAB_MSG, m);
}

void nd_fab_send_kind(struct worker *w, enum sl_fab_kind kind, const struct sl_cons_msg *m)
{
	struct nd_fabric *f = w->node->fab;
	int i = f != NULL ? peer_index(f, m->to) : -1;
	if (i < 0) {
		sl_stats_add(w->st, SL_STAT_cons_msgs_unsent, 1);
		return;
	}
	if (!link_usable(&f->peer[i]) || !sl_fab_msg_fits(m->len)) {
		sl_stats_add(w->st, SL_STAT_fab_msgs_unsent, 1); /* protocols retransmit */
		return;
	}
	struct wk_fab_peer *wp = &w->fab->peer[i];
	uint32_t off = 0;
	/* bounded: every turn puts at least a fragment of the message in a frame */
	for (;;) {
		if (wp->m == NULL && !frame_open(w, (unsigned)i)) {
			sl_stats_add(w->st, SL_STAT_fab_no_mbuf, 1);
			return; /* the tail is lost: the peer drops the partial message */
		}
		if (sl_fab_enc_add(&wp->enc, kind, m, &off))
			break;
		frame_close(w, (unsigned)i);
	}
	sl_stats_add(w->st, SL_STAT_fab_msgs_tx, 1);
}

/* End of the round: every open frame leaves, the TX buffers are sent. */
int nd_fab_flush(struct worker *w)
{
	struct nd_fabric *f = w->node->fab;
	if (f == NULL)
		return 0;
	int work = 0;
	for (unsigned i = 0; i < f->n_peers; i++) {
		struct wk_fab_peer *wp = &w->fab->peer[i];
		if (wp->m != NULL) {
			frame_close(w, i);
			work = 1;
		}
		if (wp->held_len > 0) {
			held_release(w, i);
			work = 1;
		}
		if (link_usable(&f->peer[i]))
			sl_port_txq_flush(&wp->txq);
		if (wp->txq.dropped > 0) {
			sl_stats_add(w->st, SL_STAT_fab_tx_full, wp->txq.dropped);
			wp->txq.dropped = 0;
		}
	}
	return work;
}

/* ---------------------------------------------------------------- worker: receiving */

static const enum sl_stat drop_stat[SL_FAB_DROP_COUNT] = {
	[SL_FAB_DROP_SHORT] = SL_STAT_fab_drop_short,
	[SL_FAB_DROP_MAGIC] = SL_STAT_fab_drop_magic,
	[SL_FAB_DROP_VERSION] = SL_STAT_fab_drop_version,
	[SL_FAB_DROP_LENGTH] = SL_STAT_fab_drop_length,
	[SL_FAB_DROP_CRC] = SL_STAT_fab_drop_crc,
	[SL_FAB_DROP_CLUSTER] = SL_STAT_fab_drop_cluster,
	[SL_FAB_DROP_DEST] = SL_STAT_fab_drop_dest,
	[SL_FAB_DROP_EPOCH] = SL_STAT_fab_drop_epoch,
	[SL_FAB_DROP_RECORDS] = SL_STAT_fab_drop_records,
};

/* A whole message: into the driver of its region (or the forwarding of batches), which
 * this core must own. */
static void deliver(struct worker *w, uint16_t kind, const struct sl_cons_msg *m)
{
	struct sl_node *n = w->node;
	if (m->group_id >= n->cfg.regions || n->regions[m->group_id].worker != w->idx ||
	    m->to != n->cfg.node_id) {
		sl_stats_add(w->st, SL_STAT_fab_drop_region, 1);
		return;
	}
	struct region *r = &n->regions[m->group_id];
	if (kind == SL_FAB_FWD) {
		nd_fwd_in(w, r, m);
		return;
	}
	if (kind == SL_FAB_FWD_ACK) {
		nd_fwd_ack_in(w, r, m);
		return;
	}
	if (kind == SL_FAB_READ) {
		nd_read_fwd_in(w, r, m);
		return;
	}
	if (kind == SL_FAB_READ_ANS) {
		nd_read_ans_in(w, r, m);
		return;
	}
	if (r->drv == NULL || sl_drv_step(r->drv, m) != 0) {
		sl_stats_add(w->st, SL_STAT_fab_msgs_refused, 1);
		return;
	}
	sl_stats_add(w->st, SL_STAT_fab_msgs_rx, 1);
}

static void frame_in(struct worker *w, unsigned i, struct rte_mbuf *mb)
{
	struct nd_fabric *f = w->node->fab;
	struct wk_fab_peer *wp = &w->fab->peer[i];
	if (mb->nb_segs != 1 || mb->data_len < RTE_ETHER_HDR_LEN ||
	    rte_pktmbuf_mtod(mb, struct rte_ether_hdr *)->ether_type !=
		    rte_cpu_to_be_16(SL_FAB_ETHERTYPE)) {
		sl_stats_add(w->st, SL_STAT_fab_drop_not_fabric, 1);
		return;
	}
	if (fault_coin(w, atomic_load_explicit(&f->peer[i].fault_in_drop, memory_order_relaxed))) {
		sl_stats_add(w->st, SL_STAT_fab_fault_dropped, 1);
		return;
	}
	const uint8_t *fr = rte_pktmbuf_mtod_offset(mb, const uint8_t *, RTE_ETHER_HDR_LEN);
	struct sl_fab_hdr h;
	enum sl_fab_drop d = sl_fab_decode(fr, mb->data_len - RTE_ETHER_HDR_LEN, &f->self, &h);
	if (d == SL_FAB_OK && (h.src_node != f->peer[i].node || h.dst_core != w->idx))
		d = SL_FAB_DROP_DEST; /* on the wrong link or queue: a miswired cluster */
	if (d != SL_FAB_OK) {
		sl_stats_add(w->st, drop_stat[d], 1);
		return;
	}
	sl_stats_add(w->st, SL_STAT_fab_frames_rx, 1);
	if (wp->rx_seen && h.seq != wp->rx_seq)
		sl_stats_add(w->st, SL_STAT_fab_seq_gaps, 1);
	wp->rx_seen = true;
	wp->rx_seq = h.seq + 1;
	struct sl_fab_rec_iter it;
	struct sl_fab_rec rec;
	sl_fab_recs_init(&it, &h);
	while (sl_fab_recs_next(&it, &rec) == 1) {
		struct sl_cons_msg m;
		uint16_t kind;
		uint64_t gaps = wp->ra.gaps + wp->ra.too_big;
		if (sl_fab_reasm_add(&wp->ra, &rec, &m, &kind) == 1)
			deliver(w, kind, &m);
		if (wp->ra.gaps + wp->ra.too_big != gaps)
			sl_stats_add(w->st, SL_STAT_fab_frag_lost, wp->ra.gaps + wp->ra.too_big - gaps);
	}
}

int nd_fab_poll(struct worker *w)
{
	struct nd_fabric *f = w->node->fab;
	if (f == NULL)
		return 0;
	/* a new round: the main lcore may now restart a link this worker saw unusable */
	atomic_fetch_add_explicit(&w->fab->rounds, 1, memory_order_acq_rel);
	int work = 0;
	for (unsigned i = 0; i < f->n_peers; i++) {
		if (!link_usable(&f->peer[i]))
			continue;
		struct rte_mbuf *pkts[FAB_RX_BURST];
		uint16_t nb = rte_eth_rx_burst(f->peer[i].port_id, (uint16_t)w->idx, pkts,
					       FAB_RX_BURST);
		for (uint16_t k = 0; k < nb; k++) {
			frame_in(w, i, pkts[k]);
			rte_pktmbuf_free(pkts[k]);
		}
		work += nb;
	}
	return work;
}

/* ---------------------------------------------------------------- main lcore: links */

/* Every worker began a round since `snap` was taken: none is inside a link's queues
 * that it saw unusable before. */
static bool workers_moved_on(const struct sl_node *n, const uint64_t *snap)
{
	for (unsigned w = 0; w < n->n_workers; w++)
		if (atomic_load_explicit(&n->w[w].fab->rounds, memory_order_acquire) <= snap[w])
			return false;
	return true;
}

/* Links come up and go down with their peers. A listener takes its peer back by itself;
 * a client link is started again here once its listener is back. Its queues are freed
 * and built again then, so the workers leave it first: usable = false, and the restart
 * waits until every worker has begun a new round (it reads usable once per use). */
void nd_fab_housekeeping(struct sl_node *n)
{
	struct nd_fabric *f = n->fab;
	if (f == NULL)
		return;
	uint64_t now = nd_now_ns();
	for (unsigned i = 0; i < f->n_peers; i++) {
		struct nd_fab_peer *p = &f->peer[i];
		if (p->quiescing) {
			if (!workers_moved_on(n, p->snap))
				continue;
			p->quiescing = false;
			if (p->started)
				rte_eth_dev_stop(p->port_id);
			p->started = rte_eth_dev_start(p->port_id) == 0;
			p->retry_ns = now + 1000000000ull; /* at most once a second */
			continue;
		}
		struct rte_eth_link link;
		memset(&link, 0, sizeof(link));
		if (p->started)
			rte_eth_link_get_nowait(p->port_id, &link);
		bool up = p->started && link.link_status == RTE_ETH_LINK_UP;
		if (up != link_usable(p)) {
			SL_LOG(NOTICE, fabric, "link to node %u %s\n", p->node, up ? "up" : "down");
			atomic_store_explicit(&p->usable, up, memory_order_release);
		}
		if (up || p->server || now < p->retry_ns)
			continue;
		for (unsigned w = 0; w < n->n_workers; w++)
			p->snap[w] = atomic_load_explicit(&n->w[w].fab->rounds, memory_order_acquire);
		p->quiescing = true;
	}
}

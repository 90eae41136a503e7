/* node_fabric.c - the links between the nodes of a cluster: one memif device per peer node
 * with one queue pair per worker, so the core that owns a region here talks to the core
 * that owns it on the peer without a hand-off; or ([cluster] fabric = udp) one NIC port
 * shared by every peer, frames in Ethernet/IPv4/UDP to port base + core, peers' MACs
 * learned by ARP, and frames the port gives to another core's queue handed to it through
 * a ring. Each worker coalesces its regions' consensus messages per peer into frames
 * (fabric.h) and sends them at the end of its round; what arrives is checked, reassembled
 * and stepped into the owning region's driver. */
#include <sys/stat.h>

#include <rte_flow.h>

#include "log.h"
#include "node_internal.h"

#define FAB_RX_BURST 32
#define FAB_DESC 512
#define FAB_NAME_PREFIX SL_PORT_FABRIC_PREFIX
#define FAB_HANDOFF_RING 1024 /* frames waiting for their core, per worker (udp) */
#define FAB_HEARD_EVERY_NS 1000000ull /* a peer's heard_ns is written at most once a ms */

/* A link's buffer: a whole frame (Ethernet header and fabric_mtu bytes), a power of two
 * (memif's buffers; the fabric's mbufs get as much room, so a frame is one segment). */
static uint32_t fab_buf_bytes(uint32_t mtu)
{
	uint32_t b = 2048;
	while (b < mtu + RTE_ETHER_HDR_LEN)
		b <<= 1;
	return b;
}

static void ip_text(uint32_t ip, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
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
	sl_port_reserve(NULL);
	if (c->cluster_nodes <= 1)
		return 0;
	if (c->fabric == SL_FABRIC_UDP) {
		sl_port_reserve(c->fabric_dev);
		if (c->fabric_pci)
			return 0; /* main.c allows it to the EAL */
		if (max == 0 || strlen(c->fabric_port) >= SL_FAB_VDEV_MAX) {
			snprintf(err, err_len, "[cluster] fabric_port too long: %s", c->fabric_port);
			return -ENAMETOOLONG;
		}
		snprintf(out[0], SL_FAB_VDEV_MAX, "%s", c->fabric_port);
		return 1;
	}
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

static bool memif_port_name(const char *name)
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

/* Steers each core's UDP port to its queue with rte_flow when the device can (a NIC with
 * flow rules); else frames reach whatever queue RSS or the driver picks and are handed
 * over. false: no rule stays. */
static bool udp_steer(struct nd_fabric *f, uint16_t nq)
{
	struct rte_flow_error fe;
	for (uint16_t q = 0; q < nq; q++) {
		const struct rte_flow_attr attr = {.ingress = 1};
		const struct rte_flow_item_ipv4 ip_spec = {
			.hdr.dst_addr = rte_cpu_to_be_32(f->local.pkt.ips[0])};
		const struct rte_flow_item_ipv4 ip_mask = {.hdr.dst_addr = RTE_BE32(0xffffffff)};
		const struct rte_flow_item_udp udp_spec = {
			.hdr.dst_port = rte_cpu_to_be_16((uint16_t)(f->local.port_base + q))};
		const struct rte_flow_item_udp udp_mask = {.hdr.dst_port = RTE_BE16(0xffff)};
		const struct rte_flow_item pattern[] = {
			{.type = RTE_FLOW_ITEM_TYPE_ETH},
			{.type = RTE_FLOW_ITEM_TYPE_IPV4, .spec = &ip_spec, .mask = &ip_mask},
			{.type = RTE_FLOW_ITEM_TYPE_UDP, .spec = &udp_spec, .mask = &udp_mask},
			{.type = RTE_FLOW_ITEM_TYPE_END}};
		const struct rte_flow_action_queue queue = {.index = q};
		const struct rte_flow_action actions[] = {
			{.type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &queue},
			{.type = RTE_FLOW_ACTION_TYPE_END}};
		if (rte_flow_validate(f->udp_port_id, &attr, pattern, actions, &fe) != 0 ||
		    rte_flow_create(f->udp_port_id, &attr, pattern, actions, &fe) == NULL) {
			rte_flow_flush(f->udp_port_id, &fe);
			return false;
		}
	}
	return true;
}

/* The fabric port (udp): a queue pair per worker, RSS over UDP when the device has it,
 * the MTU when the driver takes it (else the interface must already have it). Started
 * once and never restarted: peers come and go by ARP and silence, not by link state. */
static int udp_port_init(struct sl_node *n, char *err, size_t err_len)
{
	const struct sl_config *c = &n->cfg;
	struct nd_fabric *f = n->fab;
	uint16_t pid = f->udp_port_id, nq = (uint16_t)n->n_workers;
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(pid, &info);
	if (rc == 0 && (info.max_rx_queues < nq || info.max_tx_queues < nq)) {
		snprintf(err, err_len,
			 "[cluster] fabric_port %s: %u queue pairs, one per worker needed (%u; "
			 "net_af_packet: qpairs=%u)",
			 c->fabric_dev, RTE_MIN(info.max_rx_queues, info.max_tx_queues), nq, nq);
		return -EINVAL;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	uint64_t hf = rc == 0 ? info.flow_type_rss_offloads &
					(RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV4)
			      : 0;
	if (nq > 1 && hf != 0) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = hf;
	}
	if (rc == 0 && c->fabric_mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN <= info.max_rx_pktlen)
		conf.rxmode.mtu = c->fabric_mtu;
	rc = rte_eth_dev_configure(pid, nq, nq, &conf);
	if (rc != 0) {
		snprintf(err, err_len, "[cluster] fabric_port %s: configure %u queues: %s",
			 c->fabric_dev, nq, strerror(-rc));
		return rc;
	}
	uint16_t rxd = FAB_DESC, txd = FAB_DESC;
	rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd);
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(pid, q, rxd, rte_eth_dev_socket_id(pid), NULL, f->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(pid, q, txd, rte_eth_dev_socket_id(pid), NULL);
		if (rc != 0) {
			snprintf(err, err_len, "[cluster] fabric_port %s: queue %u: %s (a vdev's "
					       "frames must fit the fabric's buffers of %u bytes)",
				 c->fabric_dev, q, strerror(-rc), fab_buf_bytes(c->fabric_mtu));
			return rc;
		}
	}
	uint16_t mtu = 0;
	if (conf.rxmode.mtu == 0 && rte_eth_dev_set_mtu(pid, (uint16_t)c->fabric_mtu) != 0 &&
	    (rte_eth_dev_get_mtu(pid, &mtu) != 0 || mtu < c->fabric_mtu))
		SL_LOG(NOTICE, fabric,
		       "fabric port %s: the driver does not set its MTU to %u: the interface and "
		       "the network must carry IP packets of %u bytes\n",
		       c->fabric_dev, c->fabric_mtu, c->fabric_mtu);
	rc = rte_eth_dev_start(pid);
	if (rc != 0) {
		snprintf(err, err_len, "[cluster] fabric_port %s: start: %s", c->fabric_dev,
			 strerror(-rc));
		return rc;
	}
	f->udp_started = true;
	rte_eth_macaddr_get(pid, &f->mac);
	memcpy(f->local.pkt.mac, f->mac.addr_bytes, 6);
	f->local.pkt.n_ips = 1;
	f->local.pkt.ips[0] = c->fabric_ip[c->node_id];
	f->local.port_base = (uint16_t)c->fabric_udp_port;
	f->local.n_cores = nq;
	f->steered = nq > 1 && udp_steer(f, nq);
	for (unsigned w = 0; w < n->n_workers; w++) {
		char name[RTE_RING_NAMESIZE];
		snprintf(name, sizeof(name), "sl_fho%u", w);
		f->handoff[w] = rte_ring_create(name, FAB_HANDOFF_RING, rte_socket_id(),
						RING_F_SC_DEQ);
		if (f->handoff[w] == NULL) {
			snprintf(err, err_len, "fabric hand-off ring: %s", rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	char ip[16];
	ip_text(f->local.pkt.ips[0], ip, sizeof(ip));
	SL_LOG(INFO, fabric, "fabric port %s: %s, UDP ports %u..%u, %s\n", c->fabric_dev, ip,
	       f->local.port_base, f->local.port_base + nq - 1,
	       f->steered ? "steered to the cores by rte_flow"
			  : "frames for another core handed over (no rte_flow steering)");
	return 0;
}

/* The peers (udp): every other node of [cluster] addresses, on the fabric port. */
static int udp_peers(struct sl_node *n, char *err, size_t err_len)
{
	const struct sl_config *c = &n->cfg;
	struct nd_fabric *f = n->fab;
	uint16_t pid;
	if (rte_eth_dev_get_port_by_name(c->fabric_dev, &pid) != 0) {
		snprintf(err, err_len,
			 "[cluster] fabric_port %s: no such DPDK device (see the EAL's messages; "
			 "a NIC must be bound to a DPDK-capable driver)",
			 c->fabric_dev);
		return -ENODEV;
	}
	f->udp = true;
	f->udp_port_id = pid;
	f->hdrs = SL_PKT_UDP_HDRS;
	f->mtu = c->fabric_mtu - SL_FU_IP_UDP_BYTES;
	for (unsigned peer = 1; peer <= c->cluster_nodes; peer++) {
		if (peer == c->node_id)
			continue;
		struct nd_fab_peer *p = &f->peer[f->n_peers++];
		*p = (struct nd_fab_peer){.node = (uint16_t)peer, .port_id = pid,
					  .ip = c->fabric_ip[peer],
					  .static_mac = c->fabric_mac_set[peer]};
		if (p->static_mac)
			atomic_store(&p->mac, sl_fu_mac_pack(c->fabric_mac[peer]));
	}
	return 0;
}

/* The peers (memif): one device each, named after the peer. */
static int memif_peers(struct sl_node *n, char *err, size_t err_len)
{
	const struct sl_config *c = &n->cfg;
	struct nd_fabric *f = n->fab;
	f->hdrs = RTE_ETHER_HDR_LEN;
	f->mtu = c->fabric_mtu;
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, name) != 0 || !memif_port_name(name))
			continue;
		unsigned peer = (unsigned)strtoul(name + strlen(FAB_NAME_PREFIX), NULL, 10);
		if (peer == 0 || peer > c->cluster_nodes || f->n_peers == SL_CONS_MAX_PEERS) {
			snprintf(err, err_len, "fabric device %s: no such peer", name);
			return -EINVAL;
		}
		f->peer[f->n_peers++] = (struct nd_fab_peer){.node = (uint16_t)peer, .port_id = pid,
							     .server = c->node_id < peer};
	}
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
	int prc = c->fabric == SL_FABRIC_UDP ? udp_peers(n, err, err_len)
					     : memif_peers(n, err, err_len);
	if (prc != 0)
		return prc;
	if (f->n_peers != c->cluster_nodes - 1) {
		snprintf(err, err_len, "fabric: %u links for a cluster of %u nodes", f->n_peers,
			 c->cluster_nodes);
		return -EINVAL;
	}
	/* per worker: the RX and TX rings of each link (of the one port over udp), an open
	 * frame and a TX buffer per peer; over udp also its hand-off ring and ARP buffer */
	uint32_t need =
		f->udp ? n->n_workers * (2 * FAB_DESC + FAB_HANDOFF_RING + SL_PORT_TX_BURST +
					 f->n_peers * 2 * SL_PORT_TX_BURST) + 4096
		       : f->n_peers * n->n_workers * (2 * FAB_DESC + 2 * SL_PORT_TX_BURST) + 4096;
	f->pool = rte_pktmbuf_pool_create("sl_fab", need, 256, 0,
					  (uint16_t)(fab_buf_bytes(c->fabric_mtu) + RTE_PKTMBUF_HEADROOM),
					  (int)rte_socket_id());
	if (f->pool == NULL) {
		snprintf(err, err_len, "fabric mbuf pool (%u): %s (raise [eal] memory_mb)", need,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (unsigned i = 0; i < f->n_peers && !f->udp; i++) {
		int rc = link_init(n, &f->peer[i], err, err_len);
		if (rc != 0)
			return rc;
	}
	if (f->udp) {
		int rc = udp_port_init(n, err, err_len);
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
		int trc = f->udp ? sl_port_txq_init(&wf->ctl_txq, f->udp_port_id, (uint16_t)w) : 0;
		if (trc != 0) {
			snprintf(err, err_len, "fabric: buffers of core %u: %s", w, strerror(-trc));
			return trc;
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
	SL_LOG(INFO, fabric, "node %u of %u: %u %s, %u queue pairs each, frames of %u bytes\n",
	       c->node_id, c->cluster_nodes, f->n_peers, f->udp ? "peers over UDP" : "links",
	       n->n_workers, f->mtu);
	if (!f->udp)
		nd_fab_guard_arm(n); /* fab_guard.c: memif's unmap waits for the workers */
	return 0;
}

void nd_fab_fini(struct sl_node *n)
{
	struct nd_fabric *f = n->fab;
	if (f == NULL)
		return;
	nd_fab_guard_disarm();
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
		sl_port_txq_fini(&wf->ctl_txq);
		rte_free(wf->scratch);
		rte_free(wf);
		n->w[w].fab = NULL;
	}
	for (unsigned i = 0; i < f->n_peers && !f->udp; i++) {
		rte_eth_dev_stop(f->peer[i].port_id);
		rte_eth_dev_close(f->peer[i].port_id);
	}
	if (f->udp) {
		struct rte_mbuf *m;
		for (unsigned w = 0; w < SL_CFG_MAX_WORKERS; w++) {
			while (f->handoff[w] != NULL && rte_ring_dequeue(f->handoff[w], (void **)&m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(f->handoff[w]);
		}
		if (f->udp_started)
			rte_eth_dev_stop(f->udp_port_id);
		rte_eth_dev_close(f->udp_port_id);
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

/* Every call into a fabric port sits between these (fab_guard.c): the count is odd while
 * the worker is inside one. Entering is a full barrier, so the guard (after the PMD
 * marked a link down) either sees the count odd, or the worker's call sees the link
 * down. Never nested: each wraps one port call. */
static inline void burst_enter(struct worker *w)
{
	atomic_fetch_add_explicit(&w->fab->burst, 1, memory_order_seq_cst);
}

static inline void burst_leave(struct worker *w)
{
	atomic_fetch_add_explicit(&w->fab->burst, 1, memory_order_release);
}

static void fab_txq_send(struct worker *w, struct sl_port_txq *q, struct rte_mbuf *m)
{
	burst_enter(w);
	sl_port_txq_send(q, m);
	burst_leave(w);
}

static void fab_txq_flush(struct worker *w, struct sl_port_txq *q)
{
	burst_enter(w);
	sl_port_txq_flush(q);
	burst_leave(w);
}

static uint16_t fab_rx_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts,
			     uint16_t n)
{
	burst_enter(w);
	uint16_t nb = rte_eth_rx_burst(port, (uint16_t)w->idx, pkts, n);
	burst_leave(w);
	return nb;
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
		fab_txq_send(w, &wp->txq, wp->held[wp->held_head]);
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
	const struct nd_fab_peer *p = &f->peer[i];
	if (f->udp) {
		/* Ethernet/IPv4/UDP around the frame, from and to this core's port */
		struct sl_pkt_udp_addr a = {.src_ip = f->local.pkt.ips[0], .dst_ip = p->ip,
					    .src_port = (uint16_t)(f->local.port_base + w->idx),
					    .dst_port = (uint16_t)(f->local.port_base + w->idx),
					    .ip_id = (uint16_t)wp->seq,
					    .no_udp_csum = true}; /* the frame has its CRC32C */
		memcpy(a.src_mac, f->mac.addr_bytes, 6);
		uint8_t *b = rte_pktmbuf_mtod(m, uint8_t *);
		int fl = -EINVAL;
		if (sl_fu_mac_unpack(atomic_load_explicit(&p->mac, memory_order_relaxed),
				     a.dst_mac))
			fl = sl_pkt_build_udp(b, (size_t)(m->buf_len - m->data_off), &a,
					      b + SL_PKT_UDP_HDRS, len);
		if (fl < 0) { /* its MAC was forgotten since the link was usable */
			rte_pktmbuf_free(m);
			sl_stats_add(w->st, SL_STAT_fab_msgs_unsent, 1);
			return;
		}
		m->data_len = (uint16_t)fl;
	} else {
		m->data_len = (uint16_t)(RTE_ETHER_HDR_LEN + len);
	}
	wp->seq++;
	m->pkt_len = m->data_len;
	sl_stats_add(w->st, SL_STAT_fab_frames_tx, 1);
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
	fab_txq_send(w, &wp->txq, m);
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
	if (!f->udp) { /* udp: the headers are written once the frame's length is known */
		memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr)); /* a point-to-point link */
		rte_eth_macaddr_get(f->peer[i].port_id, &eh->src_addr);
		eh->ether_type = rte_cpu_to_be_16(SL_FAB_ETHERTYPE);
	}
	sl_fab_enc_begin(&wp->enc, rte_pktmbuf_mtod_offset(m, uint8_t *, f->hdrs), f->mtu);
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

/* Worker 0 (udp): ARP requests to the peers that are due one: broadcast while a peer is
 * not up (its MAC unknown, or silent: a restarted peer may have another NIC), retried
 * with a growing wait; unicast once a second while it is up (its answers keep it up:
 * nd_fab_housekeeping). */
static void arp_tick(struct worker *w)
{
	struct nd_fabric *f = w->node->fab;
	for (unsigned i = 0; i < f->n_peers; i++) {
		struct wk_fab_peer *wp = &w->fab->peer[i];
		if (w->now_ns < wp->arp_due_ns)
			continue;
		const struct nd_fab_peer *p = &f->peer[i];
		uint8_t mac[6];
		bool unicast =
			sl_fu_mac_unpack(atomic_load_explicit(&p->mac, memory_order_relaxed), mac) &&
			link_usable(p);
		struct rte_mbuf *m = rte_pktmbuf_alloc(f->pool);
		if (m == NULL) {
			sl_stats_add(w->st, SL_STAT_fab_no_mbuf, 1);
			return; /* still due: the next round tries again */
		}
		uint8_t *b = rte_pktmbuf_mtod(m, uint8_t *);
		int len = sl_pkt_build_arp_request(b, (size_t)(m->buf_len - m->data_off),
						   f->mac.addr_bytes, f->local.pkt.ips[0], p->ip);
		if (len < 0) {
			rte_pktmbuf_free(m);
			return;
		}
		if (unicast)
			memcpy(b, mac, 6);
		m->data_len = (uint16_t)len;
		m->pkt_len = (uint32_t)len;
		fab_txq_send(w, &w->fab->ctl_txq, m);
		sl_stats_add(w->st, SL_STAT_fab_arp_requests, 1);
		wp->arp_gap_ms = sl_fu_arp_next_ms(wp->arp_gap_ms, unicast);
		wp->arp_due_ns = w->now_ns + (uint64_t)wp->arp_gap_ms * 1000000ull;
	}
}

/* End of the round: every open frame leaves, the TX buffers are sent. */
int nd_fab_flush(struct worker *w)
{
	struct nd_fabric *f = w->node->fab;
	if (f == NULL)
		return 0;
	int work = 0;
	if (f->udp) {
		if (w->idx == 0)
			arp_tick(w);
		fab_txq_flush(w, &w->fab->ctl_txq);
		if (w->fab->ctl_txq.dropped > 0) {
			sl_stats_add(w->st, SL_STAT_fab_tx_full, w->fab->ctl_txq.dropped);
			w->fab->ctl_txq.dropped = 0;
		}
	}
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
			fab_txq_flush(w, &wp->txq);
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
	uint32_t region = (uint32_t)m->group_id; /* the low half: nd_group_id */
	if (region >= n->cfg.regions || n->regions[region].worker != w->idx ||
	    m->to != n->cfg.node_id) {
		sl_stats_add(w->st, SL_STAT_fab_drop_region, 1);
		return;
	}
	struct region *r = &n->regions[region];
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
	if (m->group_id != nd_group_id(r)) {
		/* a protocol message of another segment of the region's log: a peer that has
		 * not switched protocol yet (or is ahead), or one delayed in flight */
		sl_stats_add(w->st, SL_STAT_switch_stale_msgs, 1);
		return;
	}
	if (r->drv == NULL || sl_drv_step(r->drv, m) != 0) {
		sl_stats_add(w->st, SL_STAT_fab_msgs_refused, 1);
		return;
	}
	sl_stats_add(w->st, SL_STAT_fab_msgs_rx, 1);
}

/* A fabric frame (fr, len bytes) from peer i, for this core. */
static void frame_in(struct worker *w, unsigned i, const uint8_t *fr, size_t len)
{
	struct nd_fabric *f = w->node->fab;
	struct wk_fab_peer *wp = &w->fab->peer[i];
	if (fault_coin(w, atomic_load_explicit(&f->peer[i].fault_in_drop, memory_order_relaxed))) {
		sl_stats_add(w->st, SL_STAT_fab_fault_dropped, 1);
		return;
	}
	struct sl_fab_hdr h;
	enum sl_fab_drop d = sl_fab_decode(fr, len, &f->self, &h);
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

/* A frame from peer i's memif link: Ethernet with the fabric's EtherType. */
static void memif_in(struct worker *w, unsigned i, const struct rte_mbuf *mb)
{
	if (mb->nb_segs != 1 || mb->data_len < RTE_ETHER_HDR_LEN ||
	    rte_pktmbuf_mtod(mb, const struct rte_ether_hdr *)->ether_type !=
		    rte_cpu_to_be_16(SL_FAB_ETHERTYPE)) {
		sl_stats_add(w->st, SL_STAT_fab_drop_not_fabric, 1);
		return;
	}
	frame_in(w, i, rte_pktmbuf_mtod_offset(mb, const uint8_t *, RTE_ETHER_HDR_LEN),
		 mb->data_len - RTE_ETHER_HDR_LEN);
}

static const enum sl_stat fu_drop_stat[SL_FU_DROP_COUNT] = {
	[SL_FU_DROP_ETH] = SL_STAT_fab_drop_eth,
	[SL_FU_DROP_IP_HDR] = SL_STAT_fab_drop_ip_hdr,
	[SL_FU_DROP_IP_FRAG] = SL_STAT_fab_drop_ip_frag,
	[SL_FU_DROP_NOT_FOR_US] = SL_STAT_fab_drop_not_for_us,
	[SL_FU_DROP_PROTO] = SL_STAT_fab_drop_proto,
	[SL_FU_DROP_UDP] = SL_STAT_fab_drop_udp,
	[SL_FU_DROP_UDP_PORT] = SL_STAT_fab_drop_udp_port,
	[SL_FU_DROP_ARP] = SL_STAT_fab_drop_arp,
};

static int peer_by_ip(const struct nd_fabric *f, uint32_t ip)
{
	for (unsigned i = 0; i < f->n_peers; i++)
		if (f->peer[i].ip == ip)
			return (int)i;
	return -1;
}

/* Peer p was heard from: written at most once a millisecond (many cores hear it). */
static void heard(struct worker *w, struct nd_fab_peer *p)
{
	if (w->now_ns - atomic_load_explicit(&p->heard_ns, memory_order_relaxed) >
	    FAB_HEARD_EVERY_NS)
		atomic_store_explicit(&p->heard_ns, w->now_ns, memory_order_relaxed);
}

/* mb now holds a reply of len bytes built in place (len < 0: none): it leaves from this
 * core's queue, counted in `what`. Takes mb. */
static void reply_in_place(struct worker *w, struct rte_mbuf *mb, int len, enum sl_stat what)
{
	if (len < 0) {
		rte_pktmbuf_free(mb);
		return;
	}
	mb->data_len = (uint16_t)len;
	mb->pkt_len = (uint32_t)len;
	fab_txq_send(w, &w->fab->ctl_txq, mb);
	sl_stats_add(w->st, what, 1);
}

/* An ARP request or reply: a peer's MAC is learned from it (unless static); a request
 * for our address is answered in place. Takes mb. */
static void arp_in(struct worker *w, struct rte_mbuf *mb, const struct sl_fu_in *in)
{
	struct nd_fabric *f = w->node->fab;
	int i = peer_by_ip(f, in->pkt.src_ip);
	if (i >= 0) {
		struct nd_fab_peer *p = &f->peer[i];
		uint64_t mac = sl_fu_mac_pack(in->pkt.src_mac);
		if (!p->static_mac &&
		    atomic_exchange_explicit(&p->mac, mac, memory_order_relaxed) != mac)
			sl_stats_add(w->st, SL_STAT_fab_arp_learned, 1);
		heard(w, p);
	}
	int len = in->kind == SL_FU_ARP_REQUEST
			  ? sl_pkt_build_arp_reply(rte_pktmbuf_mtod(mb, uint8_t *),
						   (size_t)(mb->buf_len - mb->data_off), &in->pkt,
						   f->mac.addr_bytes)
			  : -EINVAL;
	reply_in_place(w, mb, len, SL_STAT_fab_arp_replies);
}

/* What the fabric port delivered to this core's queue (or another core handed over):
 * checked, then a frame for this core, a frame handed to its core, ARP or a ping.
 * Takes mb. */
static void udp_in(struct worker *w, struct rte_mbuf *mb)
{
	struct nd_fabric *f = w->node->fab;
	struct sl_fu_in in;
	if (mb->nb_segs != 1) {
		in.kind = SL_FU_DROP;
		in.reason = SL_FU_DROP_ETH;
	} else {
		sl_fu_classify(rte_pktmbuf_mtod(mb, const uint8_t *), mb->data_len, &f->local, &in);
	}
	if (in.kind == SL_FU_ARP_REQUEST || in.kind == SL_FU_ARP_REPLY) {
		arp_in(w, mb, &in);
		return;
	}
	if (in.kind == SL_FU_ICMP_ECHO) { /* a ping of our address */
		reply_in_place(w, mb,
			       sl_pkt_build_icmp_echo_reply(rte_pktmbuf_mtod(mb, uint8_t *),
							    (size_t)(mb->buf_len - mb->data_off),
							    &in.pkt, f->mac.addr_bytes),
			       SL_STAT_fab_echo_replies);
		return;
	}
	int i = in.kind == SL_FU_FRAME ? peer_by_ip(f, in.pkt.src_ip) : -1;
	if (in.kind != SL_FU_FRAME || i < 0) {
		sl_stats_add(w->st, in.kind == SL_FU_DROP ? fu_drop_stat[in.reason]
							  : SL_STAT_fab_drop_ip_src, 1);
		rte_pktmbuf_free(mb);
		return;
	}
	if (in.core != w->idx) { /* the device's choice of queue, not the frame's core */
		if (rte_ring_mp_enqueue(f->handoff[in.core], mb) != 0) {
			sl_stats_add(w->st, SL_STAT_fab_drop_handoff, 1);
			rte_pktmbuf_free(mb);
		} else {
			sl_stats_add(w->st, SL_STAT_fab_handoffs, 1);
		}
		return;
	}
	heard(w, &f->peer[i]);
	frame_in(w, (unsigned)i, in.pkt.payload, in.pkt.payload_len);
	rte_pktmbuf_free(mb);
}

static int udp_poll(struct worker *w)
{
	struct nd_fabric *f = w->node->fab;
	struct rte_mbuf *pkts[FAB_RX_BURST];
	uint16_t nb = fab_rx_burst(w, f->udp_port_id, pkts, FAB_RX_BURST);
	for (uint16_t k = 0; k < nb; k++)
		udp_in(w, pkts[k]);
	unsigned nh = rte_ring_sc_dequeue_burst(f->handoff[w->idx], (void **)pkts, FAB_RX_BURST,
						NULL);
	for (unsigned k = 0; k < nh; k++)
		udp_in(w, pkts[k]);
	return (int)(nb + nh);
}

int nd_fab_poll(struct worker *w)
{
	struct nd_fabric *f = w->node->fab;
	if (f == NULL)
		return 0;
	/* a new round: the main lcore may now restart a link this worker saw unusable */
	atomic_fetch_add_explicit(&w->fab->rounds, 1, memory_order_acq_rel);
	if (f->udp)
		return udp_poll(w);
	int work = 0;
	for (unsigned i = 0; i < f->n_peers; i++) {
		if (!link_usable(&f->peer[i]))
			continue;
		struct rte_mbuf *pkts[FAB_RX_BURST];
		uint16_t nb = fab_rx_burst(w, f->peer[i].port_id, pkts, FAB_RX_BURST);
		for (uint16_t k = 0; k < nb; k++) {
			memif_in(w, i, pkts[k]);
			rte_pktmbuf_free(pkts[k]);
		}
		work += nb;
	}
	return work;
}

/* ---------------------------------------------------------------- main lcore: links */

struct json_object *nd_fab_status(const struct sl_node *n)
{
	const struct nd_fabric *f = n->fab;
	struct json_object *o = json_object_new_object(), *peers = json_object_new_array();
	char buf[64];
	json_object_object_add(o, "link", json_object_new_string(f->udp ? "udp" : "memif"));
	if (!f->udp) /* link memory unmapped by the PMD after the workers left their round */
		json_object_object_add(o, "unmap_waits",
				       json_object_new_int64((int64_t)nd_fab_guard_waits()));
	if (f->udp) {
		json_object_object_add(o, "port", json_object_new_string(n->cfg.fabric_dev));
		ip_text(f->local.pkt.ips[0], buf, sizeof(buf));
		json_object_object_add(o, "address", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "%u-%u", f->local.port_base,
			 f->local.port_base + f->local.n_cores - 1);
		json_object_object_add(o, "udp_ports", json_object_new_string(buf));
		json_object_object_add(o, "steered", json_object_new_boolean(f->steered));
	}
	for (unsigned i = 0; i < f->n_peers; i++) {
		const struct nd_fab_peer *p = &f->peer[i];
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "node", json_object_new_int(p->node));
		json_object_object_add(e, "up", json_object_new_boolean(link_usable(p)));
		if (f->udp) {
			uint8_t m[6];
			ip_text(p->ip, buf, sizeof(buf));
			json_object_object_add(e, "address", json_object_new_string(buf));
			bool known = sl_fu_mac_unpack(
				atomic_load_explicit(&p->mac, memory_order_relaxed), m);
			snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
				 m[3], m[4], m[5]);
			json_object_object_add(e, "mac", known ? json_object_new_string(buf) : NULL);
		}
		json_object_array_add(peers, e);
	}
	json_object_object_add(o, "peers", peers);
	return o;
}

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
/* udp: a peer is up while its MAC is known and it was heard from (ARP answers, frames)
 * within SL_FU_PEER_DEAD_MS; silent longer, it is down and worker 0 asks for it by
 * broadcast again. Its MAC is kept (a worker may be learning it at this very moment):
 * whatever ARP comes from it next replaces it. */
static void udp_housekeeping(struct nd_fabric *f)
{
	uint64_t now = nd_now_ns();
	for (unsigned i = 0; i < f->n_peers; i++) {
		struct nd_fab_peer *p = &f->peer[i];
		uint64_t at = atomic_load_explicit(&p->heard_ns, memory_order_relaxed);
		bool resolved = atomic_load_explicit(&p->mac, memory_order_relaxed) != 0;
		bool silent = at == 0 || (now > at && now - at >= SL_FU_PEER_DEAD_MS * 1000000ull);
		bool up = resolved && !silent;
		if (up != link_usable(p)) {
			SL_LOG(NOTICE, fabric, "node %u (UDP) %s\n", p->node,
			       up ? "up" : "down: not heard from for 3 s");
			atomic_store_explicit(&p->usable, up, memory_order_release);
		}
	}
}

void nd_fab_housekeeping(struct sl_node *n)
{
	struct nd_fabric *f = n->fab;
	if (f == NULL)
		return;
	if (f->udp) {
		udp_housekeeping(f);
		return;
	}
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

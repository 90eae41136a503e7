/* kernel_port.c - the session protocol on a kernel UDP socket, for a node without a DPDK
 * port (kernel_port.h). The node's dataplane gets a port like any other: an ethdev made
 * of rte_rings (DPDK's ring PMD), one RX and one TX ring per worker. A thread reads the
 * socket, wraps each datagram in Ethernet/IPv4/UDP as a NIC would have delivered it (the
 * client's real address and port; IPv4 fragments of at most 1500 bytes for a large one)
 * and puts it on the RX ring of the worker that owns the client's session; the frames the
 * workers send back (acks, READ results) are unwrapped and sent from the socket. So the
 * session table, acks at the ack level, duplicates, parking and every counter are the
 * dataplane's own. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "kernel_port.h"
#include "local_ingest.h"
#include "log.h"
#include "pkt.h"
#include "port.h"

#define KP_RING 1024
#define KP_BURST 32
#define KP_DGRAM_MAX 65536
#define KP_FRAG_DATA 1480 /* IPv4 payload per fragment: a 1500-byte MTU, a multiple of 8 */

struct sl_kport {
	struct sl_config cfg;
	unsigned nq;
	struct rte_ring *rx[SL_CFG_MAX_WORKERS], *tx[SL_CFG_MAX_WORKERS];
	struct rte_mempool *pool;
	uint16_t port_id;
	uint8_t mac[6];
	int fd;
	pthread_t th;
	bool running;
	atomic_bool stop;
	uint16_t ip_id;
	uint8_t bufs[KP_BURST][KP_DGRAM_MAX];
};

static struct {
	_Atomic uint64_t datagrams_in, frames_in, rx_full, datagrams_out, tx_bad, send_errors;
} kc;

void sl_kport_counters(struct sl_kport_counters *o)
{
	o->datagrams_in = atomic_load(&kc.datagrams_in);
	o->frames_in = atomic_load(&kc.frames_in);
	o->rx_full = atomic_load(&kc.rx_full);
	o->datagrams_out = atomic_load(&kc.datagrams_out);
	o->tx_bad = atomic_load(&kc.tx_bad);
	o->send_errors = atomic_load(&kc.send_errors);
}

static const uint8_t client_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

int sl_kport_create(struct sl_config *cfg, unsigned workers, struct sl_kport **out, char *err,
		    size_t err_len)
{
	*out = NULL;
	struct sl_kport *k = calloc(1, sizeof(*k));
	if (k == NULL) {
		snprintf(err, err_len, "kernel port: out of memory");
		return -ENOMEM;
	}
	k->fd = -1;
	if (cfg->ipv4[0] == '\0') { /* the node's address on this port: internal only */
		snprintf(cfg->ipv4, sizeof(cfg->ipv4), "127.0.0.1");
		cfg->ipv4_addr = 0x7f000001;
	}
	k->nq = workers;
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)cfg->session_port)};
	inet_pton(AF_INET, cfg->kernel_address, &sa.sin_addr);
	k->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = k->fd < 0 ? -errno : 0;
	if (rc == 0) {
		int rcvbuf = 8 << 20;
		setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		if (bind(k->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			rc = -errno;
	}
	if (rc != 0) {
		snprintf(err, err_len, "kernel UDP: cannot bind %s:%u (session protocol): %s",
			 cfg->kernel_address, cfg->session_port, strerror(-rc));
		sl_kport_destroy(k);
		return rc;
	}
	for (unsigned q = 0; q < k->nq; q++) {
		char name[RTE_RING_NAMESIZE];
		snprintf(name, sizeof(name), "sl_kp_rx%u", q);
		k->rx[q] = rte_ring_create(name, KP_RING, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "sl_kp_tx%u", q);
		k->tx[q] = rte_ring_create(name, KP_RING, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (k->rx[q] == NULL || k->tx[q] == NULL) {
			snprintf(err, err_len, "kernel port: ring: %s", rte_strerror(rte_errno));
			sl_kport_destroy(k);
			return -ENOMEM;
		}
	}
	k->pool = rte_pktmbuf_pool_create("sl_kp_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  SOCKET_ID_ANY);
	int pid = k->pool == NULL ? -1
				  : rte_eth_from_rings("slk", k->rx, k->nq, k->tx, k->nq,
						       SOCKET_ID_ANY);
	if (pid < 0) {
		snprintf(err, err_len, "kernel port: %s: %s", k->pool ? "ring device" : "mbuf pool",
			 rte_strerror(rte_errno));
		sl_kport_destroy(k);
		return -ENOMEM;
	}
	k->port_id = (uint16_t)pid;
	/* the ring device has no MAC of its own: a locally administered one */
	struct rte_ether_addr mac = {.addr_bytes = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
	rte_eth_dev_default_mac_addr_set(k->port_id, &mac);
	rte_eth_macaddr_get(k->port_id, &mac);
	memcpy(k->mac, mac.addr_bytes, 6);
	k->cfg = *cfg;
	*out = k;
	return 0;
}

/* Puts one datagram from (ip, port) on the session owner's RX ring: whole, or in IPv4
 * fragments (on the owner of the fragments' reassembly key). */
static void rx_datagram(struct sl_kport *k, uint32_t ip, uint16_t port, const uint8_t *p,
			size_t len)
{
	atomic_fetch_add(&kc.datagrams_in, 1);
	size_t udp_len = len + 8;
	uint16_t id = k->ip_id++;
	unsigned q = udp_len <= KP_FRAG_DATA ? sl_node_sess_queue(ip, port, k->nq)
					     : sl_node_frag_queue(ip, k->cfg.ipv4_addr, id, k->nq);
	uint8_t udp[8];
	udp[0] = (uint8_t)(port >> 8);
	udp[1] = (uint8_t)port;
	udp[2] = (uint8_t)(k->cfg.session_port >> 8);
	udp[3] = (uint8_t)k->cfg.session_port;
	udp[4] = (uint8_t)(udp_len >> 8);
	udp[5] = (uint8_t)udp_len;
	udp[6] = udp[7] = 0; /* no UDP checksum: session frames carry their own CRC */
	for (size_t off = 0; off < udp_len;) {
		size_t n = udp_len - off > KP_FRAG_DATA ? KP_FRAG_DATA : udp_len - off;
		struct rte_mbuf *m = rte_pktmbuf_alloc(k->pool);
		if (m == NULL) {
			atomic_fetch_add(&kc.rx_full, 1);
			return;
		}
		uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
		memcpy(f, k->mac, 6);
		memcpy(f + 6, client_mac, 6);
		f[12] = 0x08;
		f[13] = 0x00;
		struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)(f + 14);
		memset(h, 0, sizeof(*h));
		h->version_ihl = 0x45;
		h->total_length = htons((uint16_t)(20 + n));
		h->packet_id = htons(id);
		uint16_t frag = (uint16_t)(off / 8);
		if (off + n < udp_len)
			frag |= RTE_IPV4_HDR_MF_FLAG;
		h->fragment_offset = htons(frag);
		h->time_to_live = 64;
		h->next_proto_id = IPPROTO_UDP;
		h->src_addr = htonl(ip);
		h->dst_addr = htonl(k->cfg.ipv4_addr);
		h->hdr_checksum = rte_ipv4_cksum(h);
		uint8_t *d = f + 34;
		size_t at = 0;
		if (off == 0) {
			memcpy(d, udp, 8);
			at = 8;
		}
		memcpy(d + at, p + (off == 0 ? 0 : off - 8), n - at);
		m->data_len = m->pkt_len = (uint32_t)(34 + n);
		if (rte_ring_sp_enqueue(k->rx[q], m) != 0) {
			rte_pktmbuf_free(m);
			atomic_fetch_add(&kc.rx_full, 1); /* the client retransmits */
			return;
		}
		atomic_fetch_add(&kc.frames_in, 1);
		off += n;
	}
}

/* The workers' frames: UDP datagrams to clients, sent from the socket. */
static unsigned tx_drain(struct sl_kport *k)
{
	unsigned done = 0;
	for (unsigned q = 0; q < k->nq; q++) {
		void *objs[KP_BURST];
		unsigned n = rte_ring_sc_dequeue_burst(k->tx[q], objs, KP_BURST, NULL);
		for (unsigned i = 0; i < n; i++) {
			struct rte_mbuf *m = objs[i];
			const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
			size_t len = rte_pktmbuf_data_len(m);
			const struct rte_ipv4_hdr *h = (const struct rte_ipv4_hdr *)(f + 14);
			size_t ihl = len >= 34 ? (size_t)(h->version_ihl & 0xf) * 4 : 0;
			if (m->nb_segs != 1 || len < 34 || f[12] != 0x08 || f[13] != 0x00 ||
			    ihl < 20 || len < 14 + ihl + 8 || h->next_proto_id != IPPROTO_UDP ||
			    (ntohs(h->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | 0x1fff)) != 0) {
				atomic_fetch_add(&kc.tx_bad, 1); /* not a whole datagram: ARP... */
				rte_pktmbuf_free(m);
				continue;
			}
			const uint8_t *u = f + 14 + ihl;
			size_t ulen = (size_t)u[4] << 8 | u[5];
			if (ulen < 8 || 14 + ihl + ulen > len) {
				atomic_fetch_add(&kc.tx_bad, 1);
				rte_pktmbuf_free(m);
				continue;
			}
			struct sockaddr_in to = {.sin_family = AF_INET,
						 .sin_port = (uint16_t)(u[2] | u[3] << 8),
						 .sin_addr.s_addr = h->dst_addr};
			if (sendto(k->fd, u + 8, ulen - 8, MSG_DONTWAIT, (struct sockaddr *)&to,
				   sizeof(to)) < 0)
				atomic_fetch_add(&kc.send_errors, 1);
			else
				atomic_fetch_add(&kc.datagrams_out, 1);
			rte_pktmbuf_free(m);
		}
		done += n;
	}
	return done;
}

static void *kport_main(void *arg)
{
	struct sl_kport *k = arg;
	struct mmsghdr msgs[KP_BURST];
	struct iovec iov[KP_BURST];
	struct sockaddr_in from[KP_BURST];
	while (!atomic_load(&k->stop)) {
		for (unsigned i = 0; i < KP_BURST; i++) {
			iov[i] = (struct iovec){.iov_base = k->bufs[i], .iov_len = KP_DGRAM_MAX};
			msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i],
							       .msg_namelen = sizeof(from[i]),
							       .msg_iov = &iov[i],
							       .msg_iovlen = 1}};
		}
		int got = recvmmsg(k->fd, msgs, KP_BURST, MSG_DONTWAIT, NULL);
		for (int i = 0; i < got; i++)
			rx_datagram(k, ntohl(from[i].sin_addr.s_addr), ntohs(from[i].sin_port),
				    k->bufs[i], msgs[i].msg_len);
		unsigned sent = tx_drain(k);
		if (got <= 0 && sent == 0) { /* idle: the socket, or 200 us for replies */
			struct pollfd p = {.fd = k->fd, .events = POLLIN};
			poll(&p, 1, 0);
			if (!(p.revents & POLLIN)) {
				struct timespec ts = {0, 200000};
				nanosleep(&ts, NULL);
			}
		}
	}
	return NULL;
}

int sl_kport_start(struct sl_kport *k, char *err, size_t err_len)
{
	int rc = pthread_create(&k->th, NULL, kport_main, k);
	if (rc != 0) {
		snprintf(err, err_len, "kernel port: thread: %s", strerror(rc));
		return -rc;
	}
	pthread_setname_np(k->th, "sl-ksess");
	k->running = true;
	return 0;
}

void sl_kport_stop(struct sl_kport *k)
{
	if (k == NULL || !k->running)
		return;
	atomic_store(&k->stop, true);
	pthread_join(k->th, NULL);
	k->running = false;
	tx_drain(k); /* the last acks */
}

void sl_kport_destroy(struct sl_kport *k)
{
	if (k == NULL)
		return;
	sl_kport_stop(k);
	if (k->fd >= 0)
		close(k->fd);
	free(k); /* the rings, the pool and the device go with the EAL */
}

/* node_exc.c - DPDK's exception path: on a node whose ingest port is a DPDK device, the
 * frames the dataplane does not serve (TCP to the node's address, ARP replies, ICMP other
 * than echo, UDP to other ports, fragments of non-UDP datagrams) go to the host's kernel
 * through a virtio_user device (vhost-net; a TAP device where the kernel has no vhost-net),
 * whose kernel interface carries the node's MAC and address, so the host's own sockets
 * (sluiced's HTTP server, sshd) serve on the node's address. What the kernel sends back
 * leaves through the ingest port. Worker i moves queue i both ways; no frame is copied.
 * Only the first ingest port has the path ([net] exception, docs/http.md). */
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "node_internal.h"

bool nd_exc_wanted(const struct sl_config *c, bool *virtio)
{
	*virtio = access("/dev/vhost-net", R_OK | W_OK) == 0;
	if (strcmp(c->exception, "virtio_user") == 0) {
		*virtio = true;
		return true;
	}
	if (strcmp(c->exception, "tap") == 0) {
		*virtio = false;
		return true;
	}
	/* auto: a node on a NIC the operator named (no virtual devices) with an address */
	return strcmp(c->exception, "auto") == 0 && c->vdevs[0] == '\0' && c->ipv4[0] != '\0';
}

void nd_exc_iface(const struct sl_config *c, char *out, size_t len)
{
	if (c->exception_iface[0] != '\0')
		snprintf(out, len, "%s", c->exception_iface);
	else
		snprintf(out, len, "slx-%.11s", c->name); /* IFNAMSIZ - 1 = 15 */
}

int nd_exc_vdev(const struct sl_config *c, unsigned workers, char *out, size_t len)
{
	bool virtio;
	if (!nd_exc_wanted(c, &virtio))
		return 0;
	char ifname[IFNAMSIZ];
	nd_exc_iface(c, ifname, sizeof(ifname));
	if (virtio)
		snprintf(out, len, "%s0,path=/dev/vhost-net,queues=%u,queue_size=1024,iface=%s",
			 SL_PORT_EXC_VIRTIO, workers, ifname);
	else
		snprintf(out, len, "%s0,iface=%s", SL_PORT_EXC_TAP, ifname);
	return 1;
}

/* The kernel side: the ingest port's MAC, the node's address, up, no IPv6 of its own. */
static int kernel_iface(const char *ifname, const uint8_t mac[6], uint32_t ip_host,
			uint32_t prefix, char *err, size_t err_len)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "exception path: socket: %s", strerror(errno));
		return -errno;
	}
	struct ifreq r;
	memset(&r, 0, sizeof(r));
	snprintf(r.ifr_name, sizeof(r.ifr_name), "%s", ifname);
	const char *step = "flags";
	int rc = ioctl(fd, SIOCGIFFLAGS, &r);
	if (rc == 0) {
		r.ifr_flags &= (short)~IFF_UP;
		step = "down";
		rc = ioctl(fd, SIOCSIFFLAGS, &r);
	}
	if (rc == 0) {
		r.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(r.ifr_hwaddr.sa_data, mac, 6);
		step = "MAC";
		rc = ioctl(fd, SIOCSIFHWADDR, &r);
	}
	struct sockaddr_in *sa = (struct sockaddr_in *)&r.ifr_addr;
	if (rc == 0) {
		memset(&r.ifr_addr, 0, sizeof(r.ifr_addr));
		sa->sin_family = AF_INET;
		sa->sin_addr.s_addr = htonl(ip_host);
		step = "address";
		rc = ioctl(fd, SIOCSIFADDR, &r);
	}
	if (rc == 0) {
		sa->sin_family = AF_INET;
		sa->sin_addr.s_addr = htonl(prefix == 0 ? 0 : ~0u << (32 - prefix));
		step = "netmask";
		rc = ioctl(fd, SIOCSIFNETMASK, &r);
	}
	if (rc == 0) {
		step = "up";
		rc = ioctl(fd, SIOCGIFFLAGS, &r);
		if (rc == 0) {
			r.ifr_flags |= IFF_UP;
			rc = ioctl(fd, SIOCSIFFLAGS, &r);
		}
	}
	int e = errno;
	close(fd);
	if (rc != 0) {
		snprintf(err, err_len, "exception path: kernel interface %s: %s: %s", ifname, step,
			 strerror(e));
		return -e;
	}
	char path[128];
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	FILE *f = fopen(path, "w"); /* best effort: its own IPv6 traffic is noise on the wire */
	if (f != NULL) {
		fputs("1\n", f);
		fclose(f);
	}
	return 0;
}

int nd_exc_init(struct sl_node *n, char *err, size_t err_len)
{
	n->exc_port = UINT16_MAX;
	uint16_t pid;
	bool found = false;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, name) == 0 &&
		    (strncmp(name, SL_PORT_EXC_VIRTIO, strlen(SL_PORT_EXC_VIRTIO)) == 0 ||
		     strncmp(name, SL_PORT_EXC_TAP, strlen(SL_PORT_EXC_TAP)) == 0)) {
			found = true;
			break;
		}
	}
	if (!found)
		return 0;
	if (n->ports.n == 0 || n->cfg.ipv4_addr == 0) {
		snprintf(err, err_len, "[net] exception: needs an ingest port and [net] ipv4");
		return -EINVAL;
	}
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(pid, &info);
	if (rc != 0) {
		snprintf(err, err_len, "exception path: device info: %s", strerror(-rc));
		return rc;
	}
	uint16_t nq = (uint16_t)n->n_workers;
	if (nq > info.max_rx_queues)
		nq = info.max_rx_queues;
	if (nq > info.max_tx_queues)
		nq = info.max_tx_queues;
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_configure(pid, nq, nq, &conf);
	/* the kernel's frames use buffers of the ingest port's pool: they leave through it */
	struct rte_mempool *pool = n->ports.p[0].pool;
	for (uint16_t q = 0; rc == 0 && q < nq; q++) {
		rc = rte_eth_rx_queue_setup(pid, q, 512, rte_eth_dev_socket_id(pid), NULL, pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(pid, q, 512, rte_eth_dev_socket_id(pid), NULL);
	}
	if (rc == 0)
		rc = rte_eth_dev_start(pid);
	if (rc != 0) {
		snprintf(err, err_len, "exception path: device %u: %s", pid, strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < n->n_workers && i < nq; i++) {
		rc = sl_port_txq_init(&n->w[i].exc_txq, pid, (uint16_t)i);
		if (rc != 0) {
			snprintf(err, err_len, "exception path: TX buffer %u: %s", i, strerror(-rc));
			return rc;
		}
	}
	char ifname[IFNAMSIZ];
	nd_exc_iface(&n->cfg, ifname, sizeof(ifname));
	rc = kernel_iface(ifname, n->ports.p[0].mac.addr_bytes, n->cfg.ipv4_addr,
			  n->cfg.exception_prefix, err, err_len);
	if (rc != 0)
		return rc;
	n->exc_port = pid;
	n->exc_queues = nq;
	snprintf(n->exc_ifname, sizeof(n->exc_ifname), "%s", ifname);
	SL_LOG(NOTICE, net, "exception path: %s (%s) carries %s/%u to the kernel for port %u: "
			    "the host's sockets serve on the node's address\n",
	       ifname, info.driver_name, n->cfg.ipv4, n->cfg.exception_prefix,
	       n->ports.p[0].port_id);
	return 0;
}

void nd_exc_fini(struct sl_node *n)
{
	for (unsigned i = 0; n->w != NULL && i < n->n_workers; i++)
		sl_port_txq_fini(&n->w[i].exc_txq);
	if (n->exc_port != UINT16_MAX) {
		rte_eth_dev_stop(n->exc_port);
		rte_eth_dev_close(n->exc_port);
		n->exc_port = UINT16_MAX;
	}
}

/* A frame of the ingest port the dataplane does not serve: to the kernel when the path is
 * up and the frame is one the kernel should see. True when taken. */
bool nd_exc_take(struct worker *w, uint16_t port, struct rte_mbuf *m, enum sl_pkt_verdict v,
		 enum sl_pkt_drop reason)
{
	if (port != 0 || w->exc_txq.buf == NULL)
		return false;
	bool kernel = v == SL_PKT_ARP_REPLY || reason == SL_PKT_DROP_UNSUPPORTED_PROTO ||
		      reason == SL_PKT_DROP_ICMP_NOT_ECHO || reason == SL_PKT_DROP_FRAGMENT;
	if (!kernel)
		return false;
	sl_port_txq_send(&w->exc_txq, m);
	sl_stats_add(w->st, SL_STAT_exc_to_kernel, 1);
	return true;
}

/* The kernel's frames of this worker's queue leave through the ingest port. */
int nd_exc_poll(struct worker *w)
{
	struct sl_node *n = w->node;
	if (n->exc_port == UINT16_MAX || w->idx >= n->exc_queues)
		return 0;
	struct rte_mbuf *pkts[RX_BURST];
	uint16_t got = rte_eth_rx_burst(n->exc_port, (uint16_t)w->idx, pkts, RX_BURST);
	if (got == 0)
		return 0;
	sl_stats_add(w->st, SL_STAT_exc_from_kernel, got);
	struct sl_port_txq *t = &w->txq[0];
	for (uint16_t i = 0; i < got; i++) {
		if (t->buf == NULL || pkts[i]->nb_segs != 1) {
			rte_pktmbuf_free(pkts[i]);
			sl_stats_add(w->st, SL_STAT_exc_dropped, 1);
			continue;
		}
		sl_port_txq_send(t, pkts[i]);
	}
	return got;
}

/* End of a round: what waits for the kernel leaves. */
void nd_exc_flush(struct worker *w)
{
	struct sl_port_txq *t = &w->exc_txq;
	if (t->buf == NULL)
		return;
	sl_port_txq_flush(t);
	if (t->dropped > 0)
		sl_stats_add(w->st, SL_STAT_exc_dropped, t->dropped);
	t->sent = t->dropped = 0;
}

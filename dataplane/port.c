/* port.c - bring-up of the node's DPDK ports: a mempool per port, as many RX/TX queue
 * pairs as workers (bounded by the device), RSS over IP/UDP when the device offers it,
 * promiscuous mode so a tap or memif peer can reach us by our MAC; TX buffers per queue. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "port.h"

#define RX_DESC 1024
#define TX_DESC 1024

static int port_init(struct sl_port *p, uint16_t pid, uint16_t n_workers, uint32_t mbufs,
		     char *err, size_t err_len)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(pid, &info);
	if (rc != 0) {
		snprintf(err, err_len, "port %u: device info: %s", pid, strerror(-rc));
		return rc;
	}
	p->port_id = pid;
	rte_eth_dev_get_name_by_port(pid, p->name);
	uint16_t nq = n_workers;
	if (nq > info.max_rx_queues)
		nq = info.max_rx_queues;
	if (nq > info.max_tx_queues)
		nq = info.max_tx_queues;
	if (nq == 0)
		nq = 1;
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	uint64_t hf = info.flow_type_rss_offloads &
		      (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_NONFRAG_IPV4_UDP);
	bool soft_rss = strcmp(p->name, SL_PORT_KERNEL) == 0; /* its feeder spreads */
	p->rss = nq > 1 && (hf != 0 || soft_rss);
	if (p->rss && soft_rss) {
		/* queues as they are: no RSS configuration */
	} else if (p->rss) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = hf;
	} else {
		nq = 1; /* no RSS: one queue, software dispatch to the owning cores */
	}
	p->n_queues = nq;
	rc = rte_eth_dev_configure(pid, nq, nq, &conf);
	if (rc != 0) {
		snprintf(err, err_len, "port %u (%s): configure %u queues: %s", pid, p->name, nq,
			 strerror(-rc));
		return rc;
	}
	uint16_t rxd = RX_DESC, txd = TX_DESC;
	rte_eth_dev_adjust_nb_rx_tx_desc(pid, &rxd, &txd);
	char pname[RTE_MEMPOOL_NAMESIZE];
	snprintf(pname, sizeof(pname), "sl_mbuf_%u", pid);
	uint32_t need = (uint32_t)nq * (rxd + txd) + 2048;
	p->pool = rte_pktmbuf_pool_create(pname, mbufs > need ? mbufs : need, 256, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (p->pool == NULL) {
		snprintf(err, err_len, "port %u: mbuf pool: %s (raise [eal] memory_mb)", pid,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(pid, q, rxd, rte_eth_dev_socket_id(pid), NULL, p->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(pid, q, txd, rte_eth_dev_socket_id(pid), NULL);
		if (rc != 0) {
			snprintf(err, err_len, "port %u: queue %u: %s", pid, q, strerror(-rc));
			return rc;
		}
	}
	rc = rte_eth_dev_start(pid);
	if (rc != 0) {
		snprintf(err, err_len, "port %u (%s): start: %s", pid, p->name, strerror(-rc));
		return rc;
	}
	rte_eth_macaddr_get(pid, &p->mac);
	rte_eth_promiscuous_enable(pid); /* best effort: not every vdev has it */
	return 0;
}

static char reserved[RTE_ETH_NAME_MAX_LEN];

void sl_port_reserve(const char *name)
{
	snprintf(reserved, sizeof(reserved), "%s", name != NULL ? name : "");
}

bool sl_port_reserved(const char *name)
{
	return strncmp(name, SL_PORT_FABRIC_PREFIX, strlen(SL_PORT_FABRIC_PREFIX)) == 0 ||
	       strncmp(name, SL_PORT_EXC_VIRTIO, strlen(SL_PORT_EXC_VIRTIO)) == 0 ||
	       strncmp(name, SL_PORT_EXC_TAP, strlen(SL_PORT_EXC_TAP)) == 0 ||
	       (reserved[0] != '\0' && strcmp(name, reserved) == 0);
}

int sl_ports_init(struct sl_ports *ports, uint16_t n_workers, uint32_t mbufs_per_port,
		  char *err, size_t err_len)
{
	memset(ports, 0, sizeof(*ports));
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, name) == 0 && sl_port_reserved(name))
			continue;
		if (ports->n == SL_PORT_MAX) {
			snprintf(err, err_len, "more than %d ports", SL_PORT_MAX);
			return -E2BIG;
		}
		int rc = port_init(&ports->p[ports->n], pid, n_workers, mbufs_per_port, err,
				   err_len);
		if (rc != 0)
			return rc;
		ports->n++;
	}
	return 0;
}

void sl_ports_close(struct sl_ports *ports)
{
	for (uint16_t i = 0; i < ports->n; i++) {
		rte_eth_dev_stop(ports->p[i].port_id);
		rte_eth_dev_close(ports->p[i].port_id);
	}
	ports->n = 0;
}

/* The device took only part of a burst: the rest is dropped here (the client retries;
 * holding frames back would let one full ring stall the worker's other replies). */
static void txq_drop(struct rte_mbuf **pkts, uint16_t unsent, void *arg)
{
	struct sl_port_txq *t = arg;
	rte_pktmbuf_free_bulk(pkts, unsent);
	t->dropped += unsent;
}

int sl_port_txq_init(struct sl_port_txq *t, uint16_t port_id, uint16_t queue)
{
	memset(t, 0, sizeof(*t));
	if (!rte_eth_dev_is_valid_port(port_id))
		return -ENODEV;
	int socket = rte_eth_dev_socket_id(port_id);
	t->buf = rte_zmalloc_socket("sl_txq", RTE_ETH_TX_BUFFER_SIZE(SL_PORT_TX_BURST), 0,
				    socket >= 0 ? socket : SOCKET_ID_ANY);
	if (t->buf == NULL)
		return -ENOMEM;
	t->port_id = port_id;
	t->queue = queue;
	int rc = rte_eth_tx_buffer_init(t->buf, SL_PORT_TX_BURST);
	if (rc == 0)
		rc = rte_eth_tx_buffer_set_err_callback(t->buf, txq_drop, t);
	if (rc != 0) {
		sl_port_txq_fini(t);
		return rc;
	}
	return 0;
}

void sl_port_txq_fini(struct sl_port_txq *t)
{
	if (t->buf != NULL) {
		rte_pktmbuf_free_bulk(t->buf->pkts, t->buf->length);
		rte_free(t->buf);
	}
	memset(t, 0, sizeof(*t));
}

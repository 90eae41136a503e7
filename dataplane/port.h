/* port.h - DPDK ports of a node: any ethdev the EAL probed (a NIC only when the operator
 * allowed its PCI address; memif, tap, af_packet or ring virtual devices otherwise), one
 * RX/TX queue pair per worker, RSS when the device has it; per-queue TX buffers that send
 * replies in bursts. Everything sized at start. */
#ifndef SL_PORT_H
#define SL_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#define SL_PORT_MAX 4
/* Devices named so are the fabric's links to other nodes (node_fabric.c), not ports for
 * clients: sl_ports_init leaves them alone. */
#define SL_PORT_FABRIC_PREFIX "net_memif_fab"
/* The exception path's device (node_exc.c): a link to the host's kernel, not a port. */
#define SL_PORT_EXC_VIRTIO "virtio_user_slx"
#define SL_PORT_EXC_TAP "net_tap_slx"
/* The kernel socket's port (kernel_port.c): rings a thread fills from a UDP socket,
 * spread over the workers by that thread as RSS would (a queue per worker). */
#define SL_PORT_KERNEL "net_ring_slk" /* rte_eth_from_rings("slk", ...) */
/* The fabric's device over UDP ([cluster] fabric_port, any name): reserved before the
 * ports come up, so sl_ports_init leaves it alone too. One name; "" or NULL clears it. */
void sl_port_reserve(const char *name);
bool sl_port_reserved(const char *name);

struct sl_port {
	uint16_t port_id;
	uint16_t n_queues; /* RX/TX queue pairs; worker i uses queue i when i < n_queues */
	bool rss;          /* RX spread by the device; else only queue 0 receives */
	struct rte_ether_addr mac;
	char name[64];
	struct rte_mempool *pool;
};

struct sl_ports {
	uint16_t n;
	struct sl_port p[SL_PORT_MAX];
};

/* Configure and start every probed ethdev with up to n_workers queue pairs. No device
 * at all is fine (shm ingest only). */
int sl_ports_init(struct sl_ports *ports, uint16_t n_workers, uint32_t mbufs_per_port,
		  char *err, size_t err_len);
void sl_ports_close(struct sl_ports *ports);

/* Frames a TX buffer holds before it sends them in one rte_eth_tx_burst (l3fwd's size). */
#define SL_PORT_TX_BURST 32

/* The TX buffer of one queue of one port (DPDK's rte_eth_dev_tx_buffer): frames collect
 * here and leave when SL_PORT_TX_BURST of them wait or when the owner flushes (a worker:
 * at the end of each round). Only the queue's worker touches it, so no lock. What the
 * device refuses (its TX ring full) is freed and counted in `dropped`; `sent` and
 * `dropped` grow until the owner takes them (and zeroes them) for its stats. */
struct sl_port_txq {
	uint16_t port_id;
	uint16_t queue;
	uint64_t sent;
	uint64_t dropped;
	struct rte_eth_dev_tx_buffer *buf; /* NULL: not set up */
};

/* Sets up t for queue `queue` of port `port_id` (memory from the port's NUMA socket);
 * called at start, never on the data path. t must not move afterwards (the drop callback
 * keeps its address). -ENODEV: no such port; -ENOMEM: no memory. */
int sl_port_txq_init(struct sl_port_txq *t, uint16_t port_id, uint16_t queue);
/* Frees what t still holds (frames included); t is then as before init. */
void sl_port_txq_fini(struct sl_port_txq *t);

/* Queues m; sends the buffer when it is full. m is t's from here on. */
static inline void sl_port_txq_send(struct sl_port_txq *t, struct rte_mbuf *m)
{
	t->sent += rte_eth_tx_buffer(t->port_id, t->queue, t->buf, m);
}

/* Sends whatever waits in t (nothing to do when it is empty). */
static inline void sl_port_txq_flush(struct sl_port_txq *t)
{
	if (t->buf->length > 0)
		t->sent += rte_eth_tx_buffer_flush(t->port_id, t->queue, t->buf);
}

#endif

/* port.h - DPDK ports of a node: any ethdev the EAL probed (a NIC only when the operator
 * allowed its PCI address; memif, tap, af_packet or ring virtual devices otherwise), one
 * RX/TX queue pair per worker, RSS when the device has it. Everything sized at start. */
#ifndef SL_PORT_H
#define SL_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#define SL_PORT_MAX 4

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

#endif

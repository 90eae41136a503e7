/* kernel_port.h - the session protocol on a kernel UDP socket ([net] kernel_udp) for a
 * node without a DPDK port: a ring-backed ethdev feeds the workers' network door
 * (kernel_port.c). Create it after rte_eal_init and before sl_node_create (the node takes
 * it as its port); start the thread once the node serves; stop it before the node. */
#ifndef SL_KERNEL_PORT_H
#define SL_KERNEL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct sl_kport;

struct sl_kport_counters {
	uint64_t datagrams_in, frames_in, rx_full, datagrams_out, tx_bad, send_errors;
};

/* Binds [net] kernel_address:session_port and makes the device (one queue pair per
 * worker). Sets [net] ipv4 to 127.0.0.1 when it is empty (the port's own address; only
 * this thread reaches it). -EADDRINUSE etc. with err set. */
int sl_kport_create(struct sl_config *cfg, unsigned workers, struct sl_kport **out, char *err,
		    size_t err_len);
int sl_kport_start(struct sl_kport *k, char *err, size_t err_len);
void sl_kport_stop(struct sl_kport *k);
void sl_kport_destroy(struct sl_kport *k);
void sl_kport_counters(struct sl_kport_counters *out);

#endif

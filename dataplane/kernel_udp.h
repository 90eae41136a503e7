/* kernel_udp.h - InfluxDB line protocol over a kernel UDP socket, for a node without a
 * DPDK port ([net] kernel_udp): one thread reads datagrams (recvmmsg), parses them and
 * hands the points to the worker cores through in-process ingest. As on a DPDK port, UDP
 * writes are not answered: a bad line is counted, the rest of the datagram is stored. */
#ifndef SL_KERNEL_UDP_H
#define SL_KERNEL_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct sl_node;
struct sl_kudp;

struct sl_kudp_counters {
	uint64_t datagrams, bytes, lines_ok, lines_bad, points, bursts_failed;
};

/* Binds [net] kernel_address:line_port and starts the thread; -EADDRINUSE etc. with err. */
int sl_kudp_start(struct sl_node *n, const struct sl_config *c, struct sl_kudp **out,
		  char *err, size_t err_len);
void sl_kudp_stop(struct sl_kudp *k);
void sl_kudp_counters(struct sl_kudp_counters *out);

#endif

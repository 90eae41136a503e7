/* local_ingest.h - in-process ingest: threads of sluiced that are not worker lcores (the
 * HTTP server, the kernel UDP listener) hand batches of points to a worker core. The
 * worker routes the points to the cores that own their regions, as it does for the shm
 * ring and the network door, and answers the batch once every point is stored at its
 * region's ack level (or refused, or failed).
 *
 * The producer owns the batch and everything its points borrow (keys, strings) until
 * `done` reads 1 (acquire): the worker reads them until then, and writes nothing but the
 * result fields. A submitted batch is always answered while the node runs, so a producer
 * that stops waiting (a timeout) must keep the memory until done reads 1. */
#ifndef SL_LOCAL_INGEST_H
#define SL_LOCAL_INGEST_H

#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"

struct sl_node;

struct sl_local_batch {
	const struct sl_point *pts; /* checked by the producer (sl_batch_point_check) */
	uint32_t n;		    /* 1.. points */
	/* result, valid once done reads 1 */
	int32_t status;	 /* 0 all stored; -EINVAL some refused (a type conflict); -EIO storage
			  * failed (nothing more is claimed stored) */
	uint32_t stored; /* points stored */
	_Atomic uint32_t done;
};

/* Queues b on worker core `core` (taken modulo the worker count). 0, -EAGAIN when that
 * core's queue is full (try later or another core), -EINVAL for an empty batch,
 * -ESHUTDOWN once the node is stopping. Any thread; no system call. */
int sl_node_local_submit(struct sl_node *n, unsigned core, struct sl_local_batch *b);
unsigned sl_node_workers(const struct sl_node *n);
/* The queue of a worker-per-queue port that a session's datagrams from (ip, port) must
 * reach to meet its table, and the one an IPv4 fragment (src, dst, id) must reach to be
 * reassembled: what the network door would hand them over to (host-order values). */
unsigned sl_node_sess_queue(uint32_t src_ip, uint16_t src_port, unsigned nq);
unsigned sl_node_frag_queue(uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, unsigned nq);
/* DPDK ports that take ingest (the fabric's port is not one). */
unsigned sl_node_ingest_ports(const struct sl_node *n);

#endif

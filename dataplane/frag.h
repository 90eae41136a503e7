/* frag.h - IPv4 reassembly of the UDP datagrams that arrive as fragments (line protocol and
 * session ports), one table per worker lcore (shared-nothing) on DPDK's rte_ip_frag: bounded
 * in flows and in time, and every fragment ends up in exactly one counter. Time is an
 * argument (ticks of the caller's clock), so the unit tests drive it. */
#ifndef SL_FRAG_H
#define SL_FRAG_H

#include <stdint.h>

#include <rte_ip_frag.h>
#include <rte_mbuf.h>

#include "pkt.h"

/* Fragments of one datagram at most (DPDK's build-time RTE_LIBRTE_IP_FRAG_MAX_FRAG): with
 * a 1500-byte MTU, datagrams up to 8 * 1480 bytes. */
#define SL_FRAG_MAX_FRAGS RTE_LIBRTE_IP_FRAG_MAX_FRAG

/* What happened to the fragments handed to sl_frag_add. Every fragment is in `fragments`;
 * it then went into a reassembled datagram, is still held, or is in exactly one of
 * expired, table_full and bad. */
struct sl_frag_counts {
	uint64_t fragments;   /* handed to sl_frag_add */
	uint64_t reassembled; /* datagrams completed */
	uint64_t expired;     /* freed: their datagram was not complete within the timeout */
	uint64_t table_full;  /* dropped: a new datagram found every flow entry busy */
	uint64_t bad;	      /* dropped with their datagram: overlap, duplicate, hole, or more
				 than SL_FRAG_MAX_FRAGS fragments */
};

struct sl_frag {
	struct rte_ip_frag_tbl *tbl;
	uint64_t timeout_ticks;
	uint64_t next_expire; /* tick of the next sweep of timed-out datagrams */
	struct sl_frag_counts c;
	struct rte_ip_frag_death_row dr; /* mbufs the library gave up, freed by us */
};

/* A table for max_flows datagrams in reassembly at once (1..65536), each given timeout_ticks
 * from its first fragment. 0, or -EINVAL / -ENOMEM (rte_errno names the DPDK reason). */
int sl_frag_init(struct sl_frag *f, uint32_t max_flows, uint64_t timeout_ticks, int socket_id);
/* Frees the table and every fragment it still holds. Safe on a zeroed struct. */
void sl_frag_fini(struct sl_frag *f);

/* Takes m, a single-segment Ethernet frame that sl_pkt_classify found to be
 * SL_PKT_UDP_FRAGMENT_FOR_US (in is that result). Returns the reassembled datagram (a
 * chained mbuf: Ethernet + IPv4 header with a valid checksum, no fragment bits, + the UDP
 * datagram; the caller frees it) or NULL when m was held or dropped (counted). */
struct rte_mbuf *sl_frag_add(struct sl_frag *f, struct rte_mbuf *m, const struct sl_pkt_info *in,
			     uint64_t now);

/* Frees the fragments of datagrams older than the timeout; cheap when called often (it
 * sweeps at most every eighth of the timeout). */
void sl_frag_expire(struct sl_frag *f, uint64_t now);

#endif

/* frag.c - per-worker IPv4 reassembly on rte_ip_frag. The library answers NULL both for "held,
 * waiting for more" and for every kind of loss, and puts what it gives up on a death row;
 * what it put there, and whether the new fragment is among it, tells the cases apart, so
 * each fragment is counted once by what happened to it. */
#define ALLOW_EXPERIMENTAL_API /* rte_ip_frag_table_del_expired_entries (DPDK 22.11) */
#include <rte_log.h>
#include "frag.h"

#include <errno.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ip.h>

#include "sl_assert.h"

#define BUCKET_ENTRIES 4 /* associativity; the library wants a power of two */
/* a call adds at most one datagram's fragments plus the new one to the death row */
#define DR_ROOM (SL_FRAG_MAX_FRAGS + 1)

int sl_frag_init(struct sl_frag *f, uint32_t max_flows, uint64_t timeout_ticks, int socket_id)
{
	memset(f, 0, sizeof(*f));
	if (max_flows == 0 || max_flows > 65536 || timeout_ticks == 0)
		return -EINVAL;
	/* two candidate buckets per key: 2 * 4 slots per bucket pair, at least 2 * max_flows */
	uint32_t buckets = (max_flows + BUCKET_ENTRIES - 1) / BUCKET_ENTRIES;
	/* the library reports each table's size at INFO on the USER1 logtype: one line per
	 * worker at every start, which says nothing an operator needs */
	int lvl = rte_log_get_level(RTE_LOGTYPE_USER1);
	if (lvl > (int)RTE_LOG_WARNING)
		rte_log_set_level(RTE_LOGTYPE_USER1, RTE_LOG_WARNING);
	f->tbl = rte_ip_frag_table_create(buckets, BUCKET_ENTRIES, max_flows, timeout_ticks,
					  socket_id);
	if (lvl > (int)RTE_LOG_WARNING)
		rte_log_set_level(RTE_LOGTYPE_USER1, (uint32_t)lvl);
	if (f->tbl == NULL)
		return -ENOMEM;
	f->timeout_ticks = timeout_ticks;
	return 0;
}

void sl_frag_fini(struct sl_frag *f)
{
	if (f->tbl != NULL)
		rte_ip_frag_table_destroy(f->tbl);
	rte_ip_frag_free_death_row(&f->dr, 0);
	f->tbl = NULL;
}

/* Segments of the packets on the death row from index `from` on. */
static uint64_t dr_segs(const struct sl_frag *f, uint32_t from)
{
	uint64_t n = 0;
	for (uint32_t i = from; i < f->dr.cnt; i++)
		n += f->dr.row[i]->nb_segs;
	return n;
}

/* true when m is one of the death row's packets from `from` on, or a segment of one (a
 * failed reassembly may already have chained it to another fragment). */
static bool dr_holds(const struct sl_frag *f, uint32_t from, const struct rte_mbuf *m)
{
	for (uint32_t i = from; i < f->dr.cnt; i++)
		for (const struct rte_mbuf *s = f->dr.row[i]; s != NULL; s = s->next)
			if (s == m)
				return true;
	return false;
}

struct rte_mbuf *sl_frag_add(struct sl_frag *f, struct rte_mbuf *m, const struct sl_pkt_info *in,
			     uint64_t now)
{
	SL_ASSERT(f->tbl != NULL && in->verdict == SL_PKT_UDP_FRAGMENT_FOR_US && m->nb_segs == 1);
	f->c.fragments++;
	if (RTE_IP_FRAG_DEATH_ROW_MBUF_LEN - f->dr.cnt < DR_ROOM)
		rte_ip_frag_free_death_row(&f->dr, 0);
	m->l2_len = SL_PKT_ETH_HDR;
	m->l3_len = in->ip_hdr_len;
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, SL_PKT_ETH_HDR);
	uint32_t c0 = f->dr.cnt;
	struct rte_mbuf *d = rte_ipv4_frag_reassemble_packet(f->tbl, &f->dr, m, now, ip);
	if (d != NULL) {
		f->c.reassembled++;
		/* the library zeroes the checksum of the header it rewrote */
		ip = rte_pktmbuf_mtod_offset(d, struct rte_ipv4_hdr *, SL_PKT_ETH_HDR);
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	} else if (f->dr.cnt > c0) {
		uint64_t segs = dr_segs(f, c0);
		if (!dr_holds(f, c0, m))
			f->c.expired += segs; /* held; a timed-out datagram made room for it */
		else if (f->dr.cnt - c0 == 1 && f->dr.row[c0] == m && m->next == NULL)
			f->c.table_full++; /* only m: it found no entry (a set is >= 2) */
		else
			f->c.bad += segs; /* m and the datagram it belonged to */
		rte_ip_frag_free_death_row(&f->dr, 0);
	}
	return d;
}

void sl_frag_expire(struct sl_frag *f, uint64_t now)
{
	if (f->tbl == NULL || now < f->next_expire)
		return;
	uint64_t step = f->timeout_ticks / 8;
	f->next_expire = now + (step ? step : 1);
	/* the library stops when the death row is full: free it and go on, bounded by the
	 * number of datagrams the table can hold */
	for (uint32_t round = 0; round <= 65536 / RTE_IP_FRAG_DEATH_ROW_LEN; round++) {
		rte_ip_frag_free_death_row(&f->dr, 0);
		rte_ip_frag_table_del_expired_entries(f->tbl, &f->dr, now);
		uint32_t n = f->dr.cnt;
		f->c.expired += n; /* held fragments are never chained */
		rte_ip_frag_free_death_row(&f->dr, 0);
		if (RTE_IP_FRAG_DEATH_ROW_MBUF_LEN - n >= SL_FRAG_MAX_FRAGS)
			break; /* it stopped at a datagram still in time, not for room */
	}
}

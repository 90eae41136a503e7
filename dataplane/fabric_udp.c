/* fabric_udp.c - classification of what the fabric port receives (fabric_udp.h): pkt.c
 * checks the Ethernet, ARP, IPv4 and UDP headers; here its verdicts become the fabric's
 * (fragments are dropped, pings answered, ports must be the fabric's) and its drop reasons the
 * fabric's counters. */
#include <string.h>

#include "fabric_udp.h"

const char *sl_fu_drop_name(enum sl_fu_drop d)
{
	static const char *const names[SL_FU_DROP_COUNT] = {
		[SL_FU_OK] = "ok",
		[SL_FU_DROP_ETH] = "eth",
		[SL_FU_DROP_IP_HDR] = "ip_hdr",
		[SL_FU_DROP_IP_FRAG] = "ip_frag",
		[SL_FU_DROP_NOT_FOR_US] = "not_for_us",
		[SL_FU_DROP_PROTO] = "proto",
		[SL_FU_DROP_UDP] = "udp",
		[SL_FU_DROP_UDP_PORT] = "udp_port",
		[SL_FU_DROP_ARP] = "arp",
	};
	return (unsigned)d < SL_FU_DROP_COUNT ? names[d] : "unknown";
}

static enum sl_fu_drop from_pkt_drop(enum sl_pkt_drop r)
{
	switch (r) {
	case SL_PKT_DROP_VLAN:
	case SL_PKT_DROP_BAD_ETHERTYPE:
		return SL_FU_DROP_ETH;
	case SL_PKT_DROP_BAD_ARP:
		return SL_FU_DROP_ARP;
	case SL_PKT_DROP_FRAGMENT:
	case SL_PKT_DROP_BAD_FRAGMENT:
	case SL_PKT_DROP_FRAGMENT_OVERSIZE:
		return SL_FU_DROP_IP_FRAG;
	case SL_PKT_DROP_NOT_FOR_US:
		return SL_FU_DROP_NOT_FOR_US;
	case SL_PKT_DROP_BAD_UDP_LEN:
	case SL_PKT_DROP_BAD_UDP_CSUM:
		return SL_FU_DROP_UDP;
	case SL_PKT_DROP_BAD_ICMP:
	case SL_PKT_DROP_ICMP_NOT_ECHO:
	case SL_PKT_DROP_UNSUPPORTED_PROTO:
		return SL_FU_DROP_PROTO;
	default: /* truncated, version, IHL, length, checksum, TTL, source */
		return SL_FU_DROP_IP_HDR;
	}
}

static enum sl_fu_kind fu_drop(struct sl_fu_in *out, enum sl_fu_drop r)
{
	out->kind = SL_FU_DROP;
	out->reason = r;
	return SL_FU_DROP;
}

enum sl_fu_kind sl_fu_classify(const uint8_t *buf, size_t len, const struct sl_fu_local *local,
			       struct sl_fu_in *out)
{
	out->core = out->src_core = 0;
	out->reason = SL_FU_OK;
	switch (sl_pkt_classify(buf, len, &local->pkt, &out->pkt)) {
	case SL_PKT_ARP_REQUEST_FOR_US:
		out->kind = SL_FU_ARP_REQUEST;
		return out->kind;
	case SL_PKT_ARP_REPLY:
		out->kind = SL_FU_ARP_REPLY;
		return out->kind;
	case SL_PKT_UDP_FRAGMENT_FOR_US:
		return fu_drop(out, SL_FU_DROP_IP_FRAG);
	case SL_PKT_ICMP_ECHO_FOR_US:
		out->kind = SL_FU_ICMP_ECHO;
		return out->kind;
	case SL_PKT_UDP_FOR_US:
		break;
	default:
		return fu_drop(out, from_pkt_drop(out->pkt.reason));
	}
	/* ports base .. base + cores - 1 both ways: core c talks to core c */
	uint32_t dst = (uint32_t)out->pkt.dst_port - local->port_base;
	uint32_t src = (uint32_t)out->pkt.src_port - local->port_base;
	if (out->pkt.dst_port < local->port_base || dst >= local->n_cores ||
	    out->pkt.src_port < local->port_base || src >= local->n_cores)
		return fu_drop(out, SL_FU_DROP_UDP_PORT);
	out->core = (uint16_t)dst;
	out->src_core = (uint16_t)src;
	out->kind = SL_FU_FRAME;
	return SL_FU_FRAME;
}

uint32_t sl_fu_arp_next_ms(uint32_t gap_ms, bool resolved)
{
	if (resolved)
		return SL_FU_ARP_MAX_MS;
	if (gap_ms < SL_FU_ARP_FIRST_MS)
		return SL_FU_ARP_FIRST_MS;
	return gap_ms >= SL_FU_ARP_MAX_MS / 2 ? SL_FU_ARP_MAX_MS : gap_ms * 2;
}

uint64_t sl_fu_mac_pack(const uint8_t mac[6])
{
	uint64_t v = 1ull << 48;
	for (int i = 0; i < 6; i++)
		v |= (uint64_t)mac[i] << (40 - 8 * i);
	return v;
}

bool sl_fu_mac_unpack(uint64_t packed, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(packed >> (40 - 8 * i));
	return (packed >> 48) == 1;
}

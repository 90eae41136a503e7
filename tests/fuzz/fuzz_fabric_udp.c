/* fuzz_fabric_udp.c - libFuzzer target for what the fabric port receives with fabric =
 * udp (fabric_udp.h), then the fabric frame inside: any bytes must classify without a
 * crash or sanitizer report; a frame for us names one of our cores and its payload lies
 * inside the input; an ARP request for us gets a reply the sender takes as one, a ping
 * an echo reply. The first
 * byte chooses whether the rest is taken as is or has its MACs, addresses, lengths and IP
 * checksum made ours first, so the fuzzer also reaches the port and payload checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"
#include "fabric_udp.h"
#include "fuzz_util.h"

#define BASE 7600
#define CORES 4

static uint8_t frame[SL_FAB_MTU_MAX + 128], reply[128];
static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint32_t our_ip = 0x0a090001;

/* Ethernet to us, IPv4 (no options) from 10.9.0.2 to us with lengths and checksum right,
 * UDP with its length right, no checksum, and ports from the input. */
static void fix_up(uint8_t *f, size_t len)
{
	memcpy(f, our_mac, 6);
	sl_pkt_put_be16(f + 12, SL_PKT_ETHERTYPE_IPV4);
	uint8_t *ip = f + SL_PKT_ETH_HDR;
	ip[0] = 0x45;
	sl_pkt_put_be16(ip + 2, (uint16_t)(len - SL_PKT_ETH_HDR));
	ip[8] = ip[8] ? ip[8] : 64;
	ip[9] = SL_PKT_PROTO_UDP;
	sl_pkt_put_be32(ip + 12, 0x0a090002);
	sl_pkt_put_be32(ip + 16, our_ip);
	ip[10] = ip[11] = 0;
	sl_pkt_put_be16(ip + 10, sl_pkt_inet_csum(ip, SL_PKT_IP_HDR));
	uint8_t *u = ip + SL_PKT_IP_HDR;
	sl_pkt_put_be16(u, (uint16_t)(BASE + u[1] % (CORES + 1)));
	sl_pkt_put_be16(u + 2, (uint16_t)(BASE + u[3] % (CORES + 1)));
	sl_pkt_put_be16(u + 4, (uint16_t)(len - SL_PKT_ETH_HDR - SL_PKT_IP_HDR));
	u[6] = u[7] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	if (!fuzz_take_body(data, size, frame, sizeof(frame), &len))
		return 0;
	if ((data[0] & 1) && len >= SL_PKT_UDP_HDRS)
		fix_up(frame, len);
	struct sl_fu_local local = {.port_base = BASE, .n_cores = CORES};
	memcpy(local.pkt.mac, our_mac, 6);
	local.pkt.n_ips = 1;
	local.pkt.ips[0] = our_ip;
	struct sl_fu_in in;
	enum sl_fu_kind k = sl_fu_classify(frame, len, &local, &in);
	CHECK(k == in.kind);
	switch (k) {
	case SL_FU_DROP:
		CHECK(in.reason > SL_FU_OK && in.reason < SL_FU_DROP_COUNT);
		CHECK(strcmp(sl_fu_drop_name(in.reason), "unknown") != 0);
		return 0;
	case SL_FU_ARP_REQUEST: {
		CHECK(in.pkt.dst_ip == our_ip);
		int n = sl_pkt_build_arp_reply(reply, sizeof(reply), &in.pkt, our_mac);
		CHECK(n >= (int)SL_PKT_MIN_FRAME && (size_t)n <= sizeof(reply));
		struct sl_fu_local peer = {.port_base = BASE, .n_cores = CORES};
		memcpy(peer.pkt.mac, in.pkt.src_mac, 6);
		peer.pkt.n_ips = 1;
		peer.pkt.ips[0] = in.pkt.src_ip;
		struct sl_fu_in back;
		/* the requester may be one of our own addresses' impostors (src_ip 0...): what
		 * it takes back is either a reply from us or nothing */
		if (sl_fu_classify(reply, (size_t)n, &peer, &back) == SL_FU_ARP_REPLY)
			CHECK(back.pkt.src_ip == our_ip && memcmp(back.pkt.src_mac, our_mac, 6) == 0);
		return 0;
	}
	case SL_FU_ARP_REPLY:
		return 0;
	case SL_FU_ICMP_ECHO: /* answered in place, as the node does */
		CHECK(in.pkt.dst_ip == our_ip);
		CHECK(sl_pkt_build_icmp_echo_reply(frame, sizeof(frame), &in.pkt, our_mac) >=
		      (int)SL_PKT_MIN_FRAME);
		return 0;
	case SL_FU_FRAME:
		break;
	}
	CHECK(in.core < CORES && in.src_core < CORES);
	CHECK(in.pkt.dst_ip == our_ip);
	CHECK(in.pkt.payload >= frame + SL_PKT_UDP_HDRS &&
	      in.pkt.payload + in.pkt.payload_len <= frame + len);
	/* what the node does next: the fabric frame's own checks */
	const struct sl_fab_self self = {.cluster_id = 7, .node = 1, .min_epoch = 0};
	struct sl_fab_hdr h;
	enum sl_fab_drop d = sl_fab_decode(in.pkt.payload, in.pkt.payload_len, &self, &h);
	CHECK((unsigned)d < SL_FAB_DROP_COUNT);
	if (d == SL_FAB_OK)
		CHECK(h.body + h.body_len <= in.pkt.payload + in.pkt.payload_len);
	return 0;
}

/* fuzz_pkt.c - libFuzzer target for frame classification: any frame must classify without a
 * crash or sanitizer report, and whatever is accepted must give a reply (ARP, echo) or a
 * rebuilt datagram (UDP) that the other side classifies back as expected; an accepted
 * fragment must lie inside the frame and inside a 65535-byte datagram. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "pkt.h"

static uint8_t out[70000], inplace[70000];

/* The sender of a classified frame, as a local endpoint. */
static struct sl_pkt_local peer_of(const uint8_t mac[6], uint32_t ip)
{
	struct sl_pkt_local p = {.n_ips = 1, .ips = {ip}};
	memcpy(p.mac, mac, 6);
	return p;
}

static void check_udp(const struct sl_pkt_local *us, const struct sl_pkt_info *in)
{
	struct sl_pkt_udp_addr a = {.src_ip = in->dst_ip,
				    .dst_ip = in->src_ip,
				    .src_port = in->dst_port,
				    .dst_port = in->src_port};
	memcpy(a.src_mac, us->mac, 6);
	memcpy(a.dst_mac, in->eth_src, 6);
	int n = sl_pkt_build_udp(out, sizeof out, &a, in->payload, in->payload_len);
	CHECK(n >= (int)SL_PKT_MIN_FRAME);
	struct sl_pkt_local peer = peer_of(in->eth_src, in->src_ip);
	struct sl_pkt_info back;
	CHECK(sl_pkt_classify(out, (size_t)n, &peer, &back) == SL_PKT_UDP_FOR_US);
	CHECK(back.payload_len == in->payload_len && back.udp_csum_checked);
	CHECK(in->payload_len == 0 || memcmp(back.payload, in->payload, in->payload_len) == 0);
}

static void check_icmp(const struct sl_pkt_local *us, const uint8_t *data, size_t size,
		       const struct sl_pkt_info *in)
{
	int n = sl_pkt_build_icmp_echo_reply(out, sizeof out, in, us->mac);
	CHECK(n >= (int)SL_PKT_MIN_FRAME);
	struct sl_pkt_local peer = peer_of(in->eth_src, in->src_ip);
	struct sl_pkt_info back;
	CHECK(sl_pkt_classify(out, (size_t)n, &peer, &back) == SL_PKT_DROP);
	CHECK(back.reason == SL_PKT_DROP_ICMP_NOT_ECHO); /* a valid reply, not a request */

	/* the same reply built in place over a copy of the request */
	memcpy(inplace, data, size);
	struct sl_pkt_info in2;
	CHECK(sl_pkt_classify(inplace, size, us, &in2) == SL_PKT_ICMP_ECHO_FOR_US);
	int n2 = sl_pkt_build_icmp_echo_reply(inplace, sizeof inplace, &in2, us->mac);
	CHECK(n2 == n && memcmp(inplace, out, (size_t)n) == 0);
}

static void check_arp_request(const struct sl_pkt_local *us, const struct sl_pkt_info *in)
{
	int n = sl_pkt_build_arp_reply(out, sizeof out, in, us->mac);
	CHECK(n == (int)SL_PKT_MIN_FRAME);
	struct sl_pkt_local peer = peer_of(in->src_mac, in->src_ip);
	struct sl_pkt_info back;
	CHECK(sl_pkt_classify(out, (size_t)n, &peer, &back) == SL_PKT_ARP_REPLY);
	CHECK(memcmp(back.src_mac, us->mac, 6) == 0 && back.src_ip == in->dst_ip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sl_pkt_arp_cache cache;
	static int cache_ready;
	if (!cache_ready) {
		sl_pkt_arp_init(&cache, 1000);
		cache_ready = 1;
	}
	const struct sl_pkt_local us = {
	    .mac = {0x02, 0, 0, 0, 0, 0x01}, .n_ips = 2, .ips = {0x0a000001, 0x0a000002}};
	if (size > sizeof inplace)
		return 0;
	struct sl_pkt_info in;
	enum sl_pkt_verdict v = sl_pkt_classify(data, size, &us, &in);
	CHECK(v == in.verdict);
	CHECK(v == SL_PKT_DROP ? (in.reason > SL_PKT_OK && in.reason < SL_PKT_DROP_COUNT)
			       : in.reason == SL_PKT_OK);
	if (in.payload != NULL)
		CHECK(in.payload >= data && in.payload + in.payload_len <= data + size);

	uint8_t mac[6];
	switch (v) {
	case SL_PKT_UDP_FOR_US:
		check_udp(&us, &in);
		break;
	case SL_PKT_ICMP_ECHO_FOR_US:
		check_icmp(&us, data, size, &in);
		break;
	case SL_PKT_ARP_REQUEST_FOR_US:
		check_arp_request(&us, &in);
		break;
	case SL_PKT_ARP_REPLY:
		sl_pkt_arp_insert(&cache, in.src_ip, in.src_mac, (int64_t)size);
		CHECK(sl_pkt_arp_lookup(&cache, in.src_ip, (int64_t)size, mac) == 0);
		CHECK(memcmp(mac, in.src_mac, 6) == 0);
		break;
	case SL_PKT_UDP_FRAGMENT_FOR_US:
		/* what the reassembly table relies on */
		CHECK(in.frag_len > 0 && (!in.more_frags || in.frag_len % 8 == 0));
		CHECK(in.ip_hdr_len >= SL_PKT_IP_HDR &&
		      SL_PKT_ETH_HDR + in.ip_hdr_len + in.frag_len <= size);
		CHECK(in.ip_hdr_len + in.frag_offset + in.frag_len <= UINT16_MAX);
		break;
	case SL_PKT_DROP:
		break;
	}
	return 0;
}

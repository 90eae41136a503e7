/* test_fabric_udp.c - what the fabric port accepts (fabric_udp.h): a fabric frame in
 * Ethernet/IPv4/UDP for one of our cores, ARP requests and replies, and a drop reason for
 * everything else (each header field the receiver checks); the ARP retry schedule and
 * the packed MAC the workers share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fabric_udp.h"

#define BASE 7600
#define CORES 2

static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint32_t our_ip = 0x0a090001, peer_ip = 0x0a090002;

static struct sl_fu_local local(void)
{
	struct sl_fu_local l = {.port_base = BASE, .n_cores = CORES};
	memcpy(l.pkt.mac, our_mac, 6);
	l.pkt.n_ips = 1;
	l.pkt.ips[0] = our_ip;
	return l;
}

/* A frame from the peer to core dcore (source core score) carrying n payload bytes. */
static size_t udp_frame(uint8_t *buf, size_t cap, uint16_t score, uint16_t dcore, size_t n)
{
	struct sl_pkt_udp_addr a = {.src_ip = peer_ip, .dst_ip = our_ip,
				    .src_port = (uint16_t)(BASE + score),
				    .dst_port = (uint16_t)(BASE + dcore), .ip_id = 9};
	memcpy(a.src_mac, peer_mac, 6);
	memcpy(a.dst_mac, our_mac, 6);
	for (size_t i = 0; i < n; i++)
		buf[SL_PKT_UDP_HDRS + i] = (uint8_t)i;
	int len = sl_pkt_build_udp(buf, cap, &a, buf + SL_PKT_UDP_HDRS, n);
	assert_true(len > 0);
	return (size_t)len;
}

/* The IPv4 header's checksum after a change to it. */
static void fix_ip_csum(uint8_t *f)
{
	uint8_t *ip = f + SL_PKT_ETH_HDR;
	ip[10] = ip[11] = 0;
	sl_pkt_put_be16(ip + 10, sl_pkt_inet_csum(ip, (size_t)(ip[0] & 0xf) * 4));
}

static enum sl_fu_drop drop_of(const uint8_t *f, size_t len)
{
	struct sl_fu_local l = local();
	struct sl_fu_in in;
	assert_int_equal(sl_fu_classify(f, len, &l, &in), SL_FU_DROP);
	assert_int_equal(in.kind, SL_FU_DROP);
	return in.reason;
}

static void test_frame_for_a_core(void **u)
{
	(void)u;
	uint8_t f[2048];
	size_t len = udp_frame(f, sizeof(f), 1, 1, 1000);
	struct sl_fu_local l = local();
	struct sl_fu_in in;
	assert_int_equal(sl_fu_classify(f, len, &l, &in), SL_FU_FRAME);
	assert_int_equal(in.core, 1);
	assert_int_equal(in.src_core, 1);
	assert_int_equal(in.pkt.src_ip, peer_ip);
	assert_int_equal(in.pkt.payload_len, 1000);
	assert_ptr_equal(in.pkt.payload, f + SL_PKT_UDP_HDRS);
	assert_int_equal(in.pkt.payload[999], (uint8_t)999);
	/* the IP header the sender builds: DF, no fragment, checksum valid */
	assert_int_equal(f[SL_PKT_ETH_HDR + 6], 0x40);
	/* what the fabric sends: no UDP checksum (its frames carry a CRC32C), still taken */
	struct sl_pkt_udp_addr a = {.src_ip = peer_ip, .dst_ip = our_ip, .src_port = BASE,
				    .dst_port = BASE, .no_udp_csum = true};
	memcpy(a.src_mac, peer_mac, 6);
	memcpy(a.dst_mac, our_mac, 6);
	int n = sl_pkt_build_udp(f, sizeof(f), &a, f + SL_PKT_UDP_HDRS, 500);
	assert_int_equal(n, SL_PKT_UDP_HDRS + 500);
	assert_int_equal(sl_pkt_get_be16(f + SL_PKT_ETH_HDR + SL_PKT_IP_HDR + 6), 0);
	assert_int_equal(sl_fu_classify(f, (size_t)n, &l, &in), SL_FU_FRAME);
	assert_false(in.pkt.udp_csum_checked);
	assert_int_equal(in.pkt.payload_len, 500);
	/* core 0 of the peer to our core 1: the receiver routes by destination port */
	len = udp_frame(f, sizeof(f), 0, 1, 100);
	assert_int_equal(sl_fu_classify(f, len, &l, &in), SL_FU_FRAME);
	assert_int_equal(in.core, 1);
	assert_int_equal(in.src_core, 0);
}

static void test_drops(void **u)
{
	(void)u;
	uint8_t f[2048];
	size_t len;
	/* ports outside base .. base + cores - 1, either way */
	len = udp_frame(f, sizeof(f), 0, CORES, 100);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_UDP_PORT);
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	sl_pkt_put_be16(f + SL_PKT_ETH_HDR + SL_PKT_IP_HDR + 2, BASE - 1);
	f[SL_PKT_ETH_HDR + SL_PKT_IP_HDR + 6] = f[SL_PKT_ETH_HDR + SL_PKT_IP_HDR + 7] = 0;
	assert_int_equal(drop_of(f, len), SL_FU_DROP_UDP_PORT);
	len = udp_frame(f, sizeof(f), CORES + 5, 0, 100);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_UDP_PORT);
	/* a damaged payload: the UDP checksum */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	f[SL_PKT_UDP_HDRS + 7] ^= 1;
	assert_int_equal(drop_of(f, len), SL_FU_DROP_UDP);
	/* UDP length beyond the IP packet */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	sl_pkt_put_be16(f + SL_PKT_ETH_HDR + SL_PKT_IP_HDR + 4, 200);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_UDP);
	/* IP: version, IHL, checksum, total length past the frame, TTL 0 */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	f[SL_PKT_ETH_HDR] = 0x65;
	fix_ip_csum(f);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_IP_HDR);
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	f[SL_PKT_ETH_HDR] = 0x44;
	assert_int_equal(drop_of(f, len), SL_FU_DROP_IP_HDR);
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	f[SL_PKT_ETH_HDR + 10] ^= 0xff;
	assert_int_equal(drop_of(f, len), SL_FU_DROP_IP_HDR);
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	sl_pkt_put_be16(f + SL_PKT_ETH_HDR + 2, (uint16_t)(len + 10));
	fix_ip_csum(f);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_IP_HDR);
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	assert_int_equal(drop_of(f, 30), SL_FU_DROP_IP_HDR); /* truncated */
	/* a fragment (more fragments, or an offset) */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	sl_pkt_put_be16(f + SL_PKT_ETH_HDR + 6, 0x2000);
	fix_ip_csum(f);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_IP_FRAG);
	len = udp_frame(f, sizeof(f), 0, 0, 96);
	sl_pkt_put_be16(f + SL_PKT_ETH_HDR + 6, 0x0010);
	fix_ip_csum(f);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_IP_FRAG);
	/* for another address, another MAC */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	sl_pkt_put_be32(f + SL_PKT_ETH_HDR + 16, 0x0a090003);
	fix_ip_csum(f);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_NOT_FOR_US);
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	f[5] = 0x77;
	assert_int_equal(drop_of(f, len), SL_FU_DROP_NOT_FOR_US);
	/* not UDP */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	f[SL_PKT_ETH_HDR + 9] = 6;
	fix_ip_csum(f);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_PROTO);
	/* IPv6, VLAN, the memif fabric's own EtherType, a runt */
	len = udp_frame(f, sizeof(f), 0, 0, 100);
	sl_pkt_put_be16(f + 12, 0x86dd);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_ETH);
	sl_pkt_put_be16(f + 12, 0x8100);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_ETH);
	sl_pkt_put_be16(f + 12, 0x88b5);
	assert_int_equal(drop_of(f, len), SL_FU_DROP_ETH);
	assert_int_equal(drop_of(f, 10), SL_FU_DROP_IP_HDR);
	/* every reason has a name */
	for (int d = 0; d < SL_FU_DROP_COUNT; d++)
		assert_string_not_equal(sl_fu_drop_name((enum sl_fu_drop)d), "unknown");
	assert_string_equal(sl_fu_drop_name(SL_FU_DROP_COUNT), "unknown");
}

static void test_arp(void **u)
{
	(void)u;
	uint8_t f[128], r[128];
	struct sl_fu_local l = local();
	struct sl_fu_in in;
	/* the peer asks for us: a request to answer, with its MAC to learn */
	int len = sl_pkt_build_arp_request(f, sizeof(f), peer_mac, peer_ip, our_ip);
	assert_true(len >= 60);
	assert_int_equal(sl_fu_classify(f, (size_t)len, &l, &in), SL_FU_ARP_REQUEST);
	assert_int_equal(in.pkt.src_ip, peer_ip);
	assert_memory_equal(in.pkt.src_mac, peer_mac, 6);
	/* our answer, as the peer sees it: a reply from our address with our MAC */
	len = sl_pkt_build_arp_reply(r, sizeof(r), &in.pkt, our_mac);
	assert_true(len >= 60);
	struct sl_fu_local pl = {.port_base = BASE, .n_cores = CORES};
	memcpy(pl.pkt.mac, peer_mac, 6);
	pl.pkt.n_ips = 1;
	pl.pkt.ips[0] = peer_ip;
	assert_int_equal(sl_fu_classify(r, (size_t)len, &pl, &in), SL_FU_ARP_REPLY);
	assert_int_equal(in.pkt.src_ip, our_ip);
	assert_memory_equal(in.pkt.src_mac, our_mac, 6);
	/* a request for another node's address: not ours to answer */
	len = sl_pkt_build_arp_request(f, sizeof(f), peer_mac, peer_ip, 0x0a090003);
	assert_int_equal(drop_of(f, (size_t)len), SL_FU_DROP_NOT_FOR_US);
	/* not Ethernet/IPv4 ARP, or an unknown operation */
	len = sl_pkt_build_arp_request(f, sizeof(f), peer_mac, peer_ip, our_ip);
	f[SL_PKT_ETH_HDR + 5] = 16;
	assert_int_equal(drop_of(f, (size_t)len), SL_FU_DROP_ARP);
	len = sl_pkt_build_arp_request(f, sizeof(f), peer_mac, peer_ip, our_ip);
	f[SL_PKT_ETH_HDR + 7] = 3;
	assert_int_equal(drop_of(f, (size_t)len), SL_FU_DROP_ARP);
}

/* A ping of our address is answered (operators check the fabric path with ping); one of
 * another address is not ours. */
static void test_ping(void **u)
{
	(void)u;
	uint8_t f[256];
	struct sl_fu_local l = local();
	struct sl_fu_in in;
	/* a UDP frame turned into an echo request of 32 bytes */
	size_t len = udp_frame(f, sizeof(f), 0, 0, 32 - SL_PKT_UDP_HDR);
	uint8_t *ip = f + SL_PKT_ETH_HDR, *icmp = ip + SL_PKT_IP_HDR;
	ip[9] = SL_PKT_PROTO_ICMP;
	fix_ip_csum(f);
	icmp[0] = 8; /* echo request */
	icmp[1] = 0;
	icmp[2] = icmp[3] = 0;
	sl_pkt_put_be16(icmp + 2, sl_pkt_inet_csum(icmp, 32));
	assert_int_equal(sl_fu_classify(f, len, &l, &in), SL_FU_ICMP_ECHO);
	int n = sl_pkt_build_icmp_echo_reply(f, sizeof(f), &in.pkt, our_mac);
	assert_true(n >= (int)SL_PKT_MIN_FRAME);
	assert_memory_equal(f, peer_mac, 6);
	assert_int_equal(sl_pkt_get_be32(f + SL_PKT_ETH_HDR + 16), peer_ip);
	assert_int_equal(f[SL_PKT_ETH_HDR + SL_PKT_IP_HDR], 0); /* echo reply */
	/* any other ICMP is not answered */
	len = udp_frame(f, sizeof(f), 0, 0, 32 - SL_PKT_UDP_HDR);
	ip[9] = SL_PKT_PROTO_ICMP;
	fix_ip_csum(f);
	icmp[0] = 13; /* timestamp */
	icmp[2] = icmp[3] = 0;
	sl_pkt_put_be16(icmp + 2, sl_pkt_inet_csum(icmp, 32));
	assert_int_equal(drop_of(f, len), SL_FU_DROP_PROTO);
}

/* Retries: quick at first, doubling, never more than a second apart; once a second for a
 * resolved peer. The wait never grows without bound nor drops to zero. */
static void test_arp_backoff(void **u)
{
	(void)u;
	uint32_t g = sl_fu_arp_next_ms(0, false);
	assert_int_equal(g, SL_FU_ARP_FIRST_MS);
	uint32_t seen[16];
	for (int i = 0; i < 16; i++) {
		seen[i] = g;
		g = sl_fu_arp_next_ms(g, false);
	}
	assert_int_equal(seen[1], 2 * SL_FU_ARP_FIRST_MS);
	assert_int_equal(seen[15], SL_FU_ARP_MAX_MS);
	for (int i = 1; i < 16; i++)
		assert_true(seen[i] >= seen[i - 1] && seen[i] <= SL_FU_ARP_MAX_MS);
	assert_int_equal(sl_fu_arp_next_ms(SL_FU_ARP_FIRST_MS, true), SL_FU_ARP_MAX_MS);
	assert_int_equal(sl_fu_arp_next_ms(UINT32_MAX, false), SL_FU_ARP_MAX_MS);
}

static void test_mac_pack(void **u)
{
	(void)u;
	uint8_t m[6];
	assert_false(sl_fu_mac_unpack(0, m));
	uint64_t p = sl_fu_mac_pack(peer_mac);
	assert_true(p != 0);
	assert_true(sl_fu_mac_unpack(p, m));
	assert_memory_equal(m, peer_mac, 6);
	static const uint8_t zero[6] = {0};
	assert_true(sl_fu_mac_pack(zero) != 0); /* even an all-zero MAC is "known" */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_for_a_core),
		cmocka_unit_test(test_drops),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_arp_backoff),
		cmocka_unit_test(test_mac_pack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

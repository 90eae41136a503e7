/* test_pkt.c - cmocka tests of the packet layer: every drop reason, checksums checked against
 * a known answer and an independent reference sum, exact ARP reply bytes, ICMP echo replies
 * that verify, UDP frames that classify back to their payload, the ARP cache, and IPv4
 * reassembly (frag.c on DPDK's rte_ip_frag, under an EAL without hugepages or devices). */
/* cmocka needs these before it, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_mbuf.h>

#include "frag.h"
#include "pkt.h"
#include "sl_assert.h"

static const uint8_t OUR_MAC[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t PEER_MAC[6] = {0x02, 0, 0, 0, 0, 0x99};
#define OUR_IP 0x0a000001u  /* 10.0.0.1 */
#define OUR_IP2 0x0a000002u /* 10.0.0.2 */
#define PEER_IP 0x0a000063u /* 10.0.0.99 */

static struct sl_pkt_local local(void)
{
	struct sl_pkt_local l = {.n_ips = 2, .ips = {OUR_IP, OUR_IP2}};
	memcpy(l.mac, OUR_MAC, 6);
	return l;
}

static struct sl_pkt_local peer_local(void)
{
	struct sl_pkt_local l = {.n_ips = 1, .ips = {PEER_IP}};
	memcpy(l.mac, PEER_MAC, 6);
	return l;
}

/* Reference one's-complement sum, folded at every step (unlike pkt.c's deferred fold). */
static uint16_t ref_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i < n; i += 2) {
		s += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
		s = (s & 0xffff) + (s >> 16);
	}
	return (uint16_t)~s;
}

static void set_ip_csum(uint8_t *frame)
{
	uint8_t *ip = frame + 14;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	ip[10] = ip[11] = 0;
	uint16_t c = ref_csum(ip, ihl);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
}

/* Ethernet + IPv4 (ihl_words * 4 bytes, NOP options) + l4 bytes; returns the frame length. */
static size_t mk_ip(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst, size_t ihl_words,
		    const uint8_t *l4, size_t l4len)
{
	memcpy(f, OUR_MAC, 6);
	memcpy(f + 6, PEER_MAC, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14;
	size_t ihl = ihl_words * 4;
	memset(ip, 1, ihl); /* NOP options beyond 20 */
	ip[0] = (uint8_t)(0x40 | ihl_words);
	ip[1] = 0;
	sl_pkt_put_be16(ip + 2, (uint16_t)(ihl + l4len));
	sl_pkt_put_be16(ip + 4, 0x1234);
	sl_pkt_put_be16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	sl_pkt_put_be32(ip + 12, src);
	sl_pkt_put_be32(ip + 16, dst);
	if (l4len > 0)
		memcpy(ip + ihl, l4, l4len);
	set_ip_csum(f);
	return 14 + ihl + l4len;
}

/* A UDP datagram from the peer to us with a correct checksum (reference sum). */
static size_t mk_udp(uint8_t *f, uint32_t dst, size_t ihl_words, const char *payload)
{
	uint8_t u[1600];
	size_t plen = strlen(payload), ulen = 8 + plen;
	sl_pkt_put_be16(u, 40000);
	sl_pkt_put_be16(u + 2, 8089);
	sl_pkt_put_be16(u + 4, (uint16_t)ulen);
	memcpy(u + 8, payload, plen);
	uint8_t pseudo[12 + 1600];
	sl_pkt_put_be32(pseudo, PEER_IP);
	sl_pkt_put_be32(pseudo + 4, dst);
	pseudo[8] = 0;
	pseudo[9] = 17;
	sl_pkt_put_be16(pseudo + 10, (uint16_t)ulen);
	u[6] = u[7] = 0;
	memcpy(pseudo + 12, u, ulen);
	uint16_t c = ref_csum(pseudo, 12 + ulen);
	sl_pkt_put_be16(u + 6, c ? c : 0xffff);
	return mk_ip(f, 17, PEER_IP, dst, ihl_words, u, ulen);
}

static size_t mk_echo(uint8_t *f, size_t ihl_words, const char *data)
{
	uint8_t m[1600];
	size_t n = 8 + strlen(data);
	m[0] = 8;
	m[1] = 0;
	m[2] = m[3] = 0;
	sl_pkt_put_be16(m + 4, 0xbeef); /* identifier */
	sl_pkt_put_be16(m + 6, 7);	/* sequence */
	memcpy(m + 8, data, n - 8);
	uint16_t c = ref_csum(m, n);
	sl_pkt_put_be16(m + 2, c);
	return mk_ip(f, 1, PEER_IP, OUR_IP, ihl_words, m, n);
}

static enum sl_pkt_drop classify_drop(const uint8_t *f, size_t len)
{
	struct sl_pkt_local l = local();
	struct sl_pkt_info info;
	enum sl_pkt_verdict v = sl_pkt_classify(f, len, &l, &info);
	assert_int_equal(v, info.verdict);
	if (v != SL_PKT_DROP)
		return SL_PKT_OK;
	assert_int_not_equal(info.reason, SL_PKT_OK);
	return info.reason;
}

static void expect_drop(const uint8_t *f, size_t len, enum sl_pkt_drop want)
{
	enum sl_pkt_drop got = classify_drop(f, len);
	if (got != want)
		fail_msg("dropped as %s, want %s", sl_pkt_drop_name(got), sl_pkt_drop_name(want));
}

static void test_csum(void **state)
{
	(void)state;
	/* the classic worked example: header checksum 0xb861 */
	uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	assert_int_equal(sl_pkt_inet_csum(h, 20), 0xb861);
	h[10] = 0xb8;
	h[11] = 0x61;
	assert_int_equal(sl_pkt_inet_csum(h, 20), 0);
	/* odd lengths and long buffers agree with the reference */
	uint8_t big[9001];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 131 + 7);
	for (size_t n = 0; n < 40; n++)
		assert_int_equal(sl_pkt_inet_csum(big, n), ref_csum(big, n));
	assert_int_equal(sl_pkt_inet_csum(big, sizeof big), ref_csum(big, sizeof big));
	memset(big, 0xff, sizeof big);
	assert_int_equal(sl_pkt_inet_csum(big, sizeof big), ref_csum(big, sizeof big));
	/* random contents, lengths and alignments; mostly-0xff words stress the carries */
	uint32_t x = 12345;
	for (int round = 0; round < 2000; round++) {
		for (size_t i = 0; i < 2100; i++) {
			x = x * 1103515245u + 12345u;
			big[i] = (round & 1) ? (uint8_t)(0xf0 | (x >> 28)) : (uint8_t)(x >> 24);
		}
		size_t off = round % 8, n = (x >> 8) % 2048;
		assert_int_equal(sl_pkt_inet_csum(big + off, n), ref_csum(big + off, n));
	}
}

static void test_udp_ok(void **state)
{
	(void)state;
	uint8_t f[2048];
	struct sl_pkt_local l = local();
	struct sl_pkt_info info;
	const char *payload = "cpu,host=a usage=1.5 1000\nmem free=3i";
	size_t len = mk_udp(f, OUR_IP, 5, payload);
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_UDP_FOR_US);
	assert_int_equal(info.reason, SL_PKT_OK);
	assert_int_equal(info.src_ip, PEER_IP);
	assert_int_equal(info.dst_ip, OUR_IP);
	assert_int_equal(info.src_port, 40000);
	assert_int_equal(info.dst_port, 8089);
	assert_true(info.udp_csum_checked);
	assert_memory_equal(info.eth_src, PEER_MAC, 6);
	assert_int_equal(info.payload_len, strlen(payload));
	assert_ptr_equal(info.payload, f + 42);
	assert_memory_equal(info.payload, payload, info.payload_len);

	/* the second local address, and IP options skipped */
	len = mk_udp(f, OUR_IP2, 7, "x=1");
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_UDP_FOR_US);
	assert_ptr_equal(info.payload, f + 14 + 28 + 8);
	assert_int_equal(info.payload_len, 3);

	/* Ethernet padding after the IP packet is ignored */
	len = mk_udp(f, OUR_IP, 5, "ab");
	memset(f + len, 0xee, 60 - len);
	assert_int_equal(sl_pkt_classify(f, 60, &l, &info), SL_PKT_UDP_FOR_US);
	assert_int_equal(info.payload_len, 2);

	/* checksum 0: not computed by the sender, accepted unchecked */
	len = mk_udp(f, OUR_IP, 5, "hello");
	f[40] = f[41] = 0;
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_UDP_FOR_US);
	assert_false(info.udp_csum_checked);

	/* broadcast destination MAC with our IP is still ours */
	len = mk_udp(f, OUR_IP, 5, "hello");
	memset(f, 0xff, 6);
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_UDP_FOR_US);

	/* empty payload */
	len = mk_udp(f, OUR_IP, 5, "");
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_UDP_FOR_US);
	assert_int_equal(info.payload_len, 0);
}

static void test_udp_drops(void **state)
{
	(void)state;
	uint8_t f[2048];
	size_t len = mk_udp(f, OUR_IP, 5, "hello world");
	/* any bit flip in the payload, ports or length is caught by the checksum */
	for (size_t i = 34; i < len; i++) {
		if (i == 38 || i == 39)
			continue; /* length: a different reason */
		f[i] ^= 0x10;
		expect_drop(f, len, SL_PKT_DROP_BAD_UDP_CSUM);
		f[i] ^= 0x10;
	}
	expect_drop(f, len, SL_PKT_OK);

	/* UDP length below 8, above the IP payload */
	sl_pkt_put_be16(f + 38, 7);
	expect_drop(f, len, SL_PKT_DROP_BAD_UDP_LEN);
	sl_pkt_put_be16(f + 38, (uint16_t)(len - 34 + 1));
	expect_drop(f, len, SL_PKT_DROP_BAD_UDP_LEN);
	/* shorter than the IP payload: fine, trailing bytes ignored (checksum off) */
	sl_pkt_put_be16(f + 38, 10);
	f[40] = f[41] = 0;
	struct sl_pkt_local l = local();
	struct sl_pkt_info info;
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_UDP_FOR_US);
	assert_int_equal(info.payload_len, 2);
	/* IP payload too short for a UDP header */
	uint8_t four[4] = {1, 2, 3, 4};
	len = mk_ip(f, 17, PEER_IP, OUR_IP, 5, four, 4);
	expect_drop(f, len, SL_PKT_DROP_BAD_UDP_LEN);
}

static void test_eth_drops(void **state)
{
	(void)state;
	uint8_t f[2048];
	size_t len = mk_udp(f, OUR_IP, 5, "hello");
	expect_drop(f, 0, SL_PKT_DROP_TRUNCATED);
	expect_drop(f, 13, SL_PKT_DROP_TRUNCATED);
	expect_drop(NULL, 0, SL_PKT_DROP_TRUNCATED);
	const uint16_t vlan[] = {0x8100, 0x88a8, 0x9100};
	for (size_t i = 0; i < 3; i++) {
		sl_pkt_put_be16(f + 12, vlan[i]);
		expect_drop(f, len, SL_PKT_DROP_VLAN);
	}
	const uint16_t other[] = {0x86dd, 0x05dc, 0x0000, 0x88cc, 0xffff};
	for (size_t i = 0; i < 5; i++) {
		sl_pkt_put_be16(f + 12, other[i]);
		expect_drop(f, len, SL_PKT_DROP_BAD_ETHERTYPE);
	}
	sl_pkt_put_be16(f + 12, 0x0800);
	f[5] = 0x02; /* another unicast MAC */
	expect_drop(f, len, SL_PKT_DROP_NOT_FOR_US);
	f[0] = 0x01; /* multicast */
	expect_drop(f, len, SL_PKT_DROP_NOT_FOR_US);
}

static void test_ip_drops(void **state)
{
	(void)state;
	uint8_t f[2048];
	size_t len = mk_udp(f, OUR_IP, 5, "hello");
	expect_drop(f, 14 + 19, SL_PKT_DROP_TRUNCATED);

	f[14] = 0x65; /* version 6 */
	expect_drop(f, len, SL_PKT_DROP_BAD_IP_VERSION);
	f[14] = 0x44; /* IHL 4 */
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_BAD_IHL);
	f[14] = 0x4f; /* 60-byte header in a 33-byte packet */
	expect_drop(f, len, SL_PKT_DROP_BAD_IHL);

	len = mk_udp(f, OUR_IP, 5, "hello");
	sl_pkt_put_be16(f + 16, 19); /* total length below the header */
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_BAD_IP_LEN);
	sl_pkt_put_be16(f + 16, (uint16_t)(len - 14 + 1)); /* beyond the frame */
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_BAD_IP_LEN);

	len = mk_udp(f, OUR_IP, 5, "hello");
	for (size_t i = 14; i < 34; i++) { /* every header byte is covered by the checksum */
		if (i == 14 || i == 16 || i == 17)
			continue; /* version/IHL and length fail earlier */
		f[i] ^= 0x01;
		expect_drop(f, len, SL_PKT_DROP_BAD_IP_CSUM);
		f[i] ^= 0x01;
	}
	/* options are covered too */
	len = mk_udp(f, OUR_IP, 6, "hello");
	f[34 + 2] ^= 0x80;
	expect_drop(f, len, SL_PKT_DROP_BAD_IP_CSUM);

	len = mk_udp(f, OUR_IP, 5, "hello");
	f[22] = 0; /* TTL */
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_BAD_TTL);
	f[22] = 1;
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_OK);

	const uint32_t bad_src[] = {0, 0x00000001, 0x7f000001, 0xe0000001, 0xf0000001, 0xffffffff};
	for (size_t i = 0; i < sizeof bad_src / sizeof bad_src[0]; i++) {
		len = mk_udp(f, OUR_IP, 5, "hello");
		sl_pkt_put_be32(f + 26, bad_src[i]);
		set_ip_csum(f);
		expect_drop(f, len, SL_PKT_DROP_BAD_SRC_IP);
	}

	/* fragments of a UDP datagram go to reassembly with their place in it: MF, offset,
	 * both; DF alone is no fragment */
	const struct {
		uint16_t bits;
		enum sl_pkt_verdict v;
		enum sl_pkt_drop reason;
		uint32_t ofs;
	} frags[] = {
	    {0x2000, SL_PKT_UDP_FRAGMENT_FOR_US, SL_PKT_OK, 0},
	    {0x0001, SL_PKT_UDP_FRAGMENT_FOR_US, SL_PKT_OK, 8},
	    {0x2010, SL_PKT_UDP_FRAGMENT_FOR_US, SL_PKT_OK, 128},
	    {0x6000, SL_PKT_UDP_FRAGMENT_FOR_US, SL_PKT_OK, 0},
	    {0x1fff, SL_PKT_DROP, SL_PKT_DROP_FRAGMENT_OVERSIZE, 0}, /* 65528 + 20 + 16 */
	    {0x4000, SL_PKT_UDP_FOR_US, SL_PKT_OK, 0},
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(frags); i++) {
		len = mk_udp(f, OUR_IP, 5, "hello123"); /* 16 bytes after the IP header */
		sl_pkt_put_be16(f + 20, frags[i].bits);
		set_ip_csum(f);
		struct sl_pkt_local l = local();
		struct sl_pkt_info in;
		assert_int_equal(sl_pkt_classify(f, len, &l, &in), frags[i].v);
		assert_int_equal(in.reason, frags[i].reason);
		if (frags[i].v == SL_PKT_UDP_FRAGMENT_FOR_US) {
			assert_int_equal(in.frag_offset, frags[i].ofs);
			assert_int_equal(in.frag_len, 16);
			assert_int_equal(in.ip_hdr_len, 20);
			assert_int_equal(in.more_frags, (frags[i].bits & 0x2000) != 0);
			assert_int_equal(in.ip_id, 0x1234);
		}
	}
	len = mk_udp(f, OUR_IP, 6, "hello123"); /* options: the header is 24 bytes */
	sl_pkt_put_be16(f + 20, 0x2000);
	set_ip_csum(f);
	struct sl_pkt_local lo = local();
	struct sl_pkt_info fi;
	assert_int_equal(sl_pkt_classify(f, len, &lo, &fi), SL_PKT_UDP_FRAGMENT_FOR_US);
	assert_int_equal(fi.ip_hdr_len, 24);
	/* a fragment that is not the last carries 8-byte units */
	len = mk_udp(f, OUR_IP, 5, "hello");
	sl_pkt_put_be16(f + 20, 0x2000);
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_BAD_FRAGMENT);
	/* ... and every fragment carries data */
	len = mk_ip(f, 17, PEER_IP, OUR_IP, 5, NULL, 0);
	sl_pkt_put_be16(f + 20, 0x0010);
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_BAD_FRAGMENT);
	/* only UDP is reassembled; a fragment for another host is not ours at all */
	len = mk_echo(f, 5, "ping1234");
	sl_pkt_put_be16(f + 20, 0x2000);
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_FRAGMENT);
	len = mk_udp(f, 0x0a000003, 5, "hello123");
	sl_pkt_put_be16(f + 20, 0x2000);
	set_ip_csum(f);
	expect_drop(f, len, SL_PKT_DROP_NOT_FOR_US);
	len = mk_udp(f, OUR_IP, 5, "hello");

	len = mk_udp(f, 0x0a000003, 5, "hello");
	expect_drop(f, len, SL_PKT_DROP_NOT_FOR_US);
	len = mk_udp(f, 0xffffffff, 5, "hello");
	expect_drop(f, len, SL_PKT_DROP_NOT_FOR_US);

	uint8_t tcp[20] = {0};
	len = mk_ip(f, 6, PEER_IP, OUR_IP, 5, tcp, sizeof tcp);
	expect_drop(f, len, SL_PKT_DROP_UNSUPPORTED_PROTO);
}

/* Every prefix of a good frame is dropped, never misread. */
static void test_truncation_sweep(void **state)
{
	(void)state;
	uint8_t f[2048];
	size_t len = mk_udp(f, OUR_IP, 6, "a payload long enough to be past sixty bytes");
	for (size_t n = 0; n < len; n++) {
		enum sl_pkt_drop r = classify_drop(f, n);
		assert_true(r == SL_PKT_DROP_TRUNCATED || r == SL_PKT_DROP_BAD_IHL ||
			    r == SL_PKT_DROP_BAD_IP_LEN);
	}
	expect_drop(f, len, SL_PKT_OK);
}

static void test_icmp(void **state)
{
	(void)state;
	struct sl_pkt_local l = local(), peer = peer_local();
	struct sl_pkt_info info, back;
	uint8_t f[2048], out[2048];
	const char *datas[] = {"", "abcdefghijklmnopqrstuvwxyz0123456789", "odd"};
	for (size_t d = 0; d < 3; d++) {
		size_t len = mk_echo(f, 5, datas[d]);
		assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_ICMP_ECHO_FOR_US);
		int n = sl_pkt_build_icmp_echo_reply(out, sizeof out, &info, OUR_MAC);
		assert_true(n >= 60);
		size_t msg = 8 + strlen(datas[d]);
		assert_int_equal((size_t)n, 14 + 20 + msg < 60 ? 60 : 14 + 20 + msg);
		assert_memory_equal(out, PEER_MAC, 6);
		assert_memory_equal(out + 6, OUR_MAC, 6);
		assert_int_equal(sl_pkt_get_be16(out + 12), 0x0800);
		assert_int_equal(out[14], 0x45);
		assert_int_equal(sl_pkt_get_be16(out + 16), 20 + msg);
		assert_int_equal(out[14 + 9], 1);
		assert_int_equal(ref_csum(out + 14, 20), 0);
		assert_int_equal(sl_pkt_get_be32(out + 26), OUR_IP);
		assert_int_equal(sl_pkt_get_be32(out + 30), PEER_IP);
		assert_int_equal(out[34], 0); /* echo reply */
		assert_int_equal(out[35], 0);
		assert_int_equal(ref_csum(out + 34, msg), 0);
		assert_memory_equal(out + 38, f + 38, msg - 4); /* identifier, sequence, data */
		/* the peer sees a well-formed ICMP message (not an echo request) */
		assert_int_equal(sl_pkt_classify(out, (size_t)n, &peer, &back), SL_PKT_DROP);
		assert_int_equal(back.reason, SL_PKT_DROP_ICMP_NOT_ECHO);
	}

	/* in place, over a request with IP options */
	size_t len = mk_echo(f, 8, "in place");
	uint8_t copy[2048];
	memcpy(copy, f, len);
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_ICMP_ECHO_FOR_US);
	int n = sl_pkt_build_icmp_echo_reply(f, sizeof f, &info, OUR_MAC);
	assert_int_equal(n, 60);
	assert_int_equal(ref_csum(f + 14, 20), 0);
	assert_int_equal(ref_csum(f + 34, 16), 0);
	assert_memory_equal(f + 38, copy + 14 + 32 + 4, 12);

	/* drops */
	len = mk_echo(f, 5, "data");
	f[40] ^= 1;
	expect_drop(f, len, SL_PKT_DROP_BAD_ICMP);
	uint8_t shortmsg[7] = {8, 0, 0xf7, 0xff, 0, 0, 0};
	len = mk_ip(f, 1, PEER_IP, OUR_IP, 5, shortmsg, sizeof shortmsg);
	expect_drop(f, len, SL_PKT_DROP_BAD_ICMP);
	uint8_t tstamp[20] = {13, 0};
	uint16_t c = ref_csum(tstamp, sizeof tstamp);
	sl_pkt_put_be16(tstamp + 2, c);
	len = mk_ip(f, 1, PEER_IP, OUR_IP, 5, tstamp, sizeof tstamp);
	expect_drop(f, len, SL_PKT_DROP_ICMP_NOT_ECHO);
	tstamp[0] = 8;
	tstamp[1] = 1; /* echo with a nonzero code */
	tstamp[2] = tstamp[3] = 0;
	c = ref_csum(tstamp, sizeof tstamp);
	sl_pkt_put_be16(tstamp + 2, c);
	len = mk_ip(f, 1, PEER_IP, OUR_IP, 5, tstamp, sizeof tstamp);
	expect_drop(f, len, SL_PKT_DROP_ICMP_NOT_ECHO);

	/* builder arguments */
	len = mk_echo(f, 5, "x");
	assert_int_equal(sl_pkt_classify(f, len, &l, &info), SL_PKT_ICMP_ECHO_FOR_US);
	assert_int_equal(sl_pkt_build_icmp_echo_reply(out, 59, &info, OUR_MAC), -ENOSPC);
	info.verdict = SL_PKT_UDP_FOR_US;
	assert_int_equal(sl_pkt_build_icmp_echo_reply(out, sizeof out, &info, OUR_MAC), -EINVAL);
}

static void test_arp(void **state)
{
	(void)state;
	struct sl_pkt_local l = local(), peer = peer_local();
	struct sl_pkt_info info, back;
	/* who has 10.0.0.1? tell 10.0.0.99 (02:00:00:00:00:99), as a peer would send it */
	uint8_t req[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0,  0,
			   0x99, 0x08, 0x06, 0,	   1,	 0x08, 0,    6, 4, 0,  1,
			   0x02, 0,    0,    0,	   0,	 0x99, 10,   0, 0, 99, 0,
			   0,	 0,    0,    0,	   0,	 10,   0,    0, 1};
	assert_int_equal(sl_pkt_classify(req, 42, &l, &info), SL_PKT_ARP_REQUEST_FOR_US);
	assert_memory_equal(info.src_mac, PEER_MAC, 6);
	assert_int_equal(info.src_ip, PEER_IP);
	assert_int_equal(info.dst_ip, OUR_IP);

	uint8_t out[128];
	memset(out, 0xaa, sizeof out);
	int n = sl_pkt_build_arp_reply(out, sizeof out, &info, OUR_MAC);
	const uint8_t want[60] = {0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, 0, 1,
				  0x08, 0, 6, 4, 0, 2,	  0x02, 0, 0, 0, 0, 0x01, 10,	0,    0, 1,
				  0x02, 0, 0, 0, 0, 0x99, 10,	0, 0, 99};
	assert_int_equal(n, 60);
	assert_memory_equal(out, want, 60);
	assert_int_equal(sl_pkt_classify(out, (size_t)n, &peer, &back), SL_PKT_ARP_REPLY);
	assert_memory_equal(back.src_mac, OUR_MAC, 6);
	assert_int_equal(back.src_ip, OUR_IP);

	/* our own request, answered by the peer */
	n = sl_pkt_build_arp_request(out, sizeof out, OUR_MAC, OUR_IP, PEER_IP);
	assert_int_equal(n, 60);
	assert_memory_equal(out, "\xff\xff\xff\xff\xff\xff", 6);
	assert_int_equal(sl_pkt_classify(out, (size_t)n, &peer, &back), SL_PKT_ARP_REQUEST_FOR_US);
	assert_int_equal(back.src_ip, OUR_IP);
	assert_int_equal(back.dst_ip, PEER_IP);

	/* drops */
	req[41] = 3; /* for 10.0.0.3 */
	expect_drop(req, 60, SL_PKT_DROP_NOT_FOR_US);
	req[41] = 1;
	expect_drop(req, 41, SL_PKT_DROP_TRUNCATED);
	const size_t fields[] = {15, 17, 18, 19, 21};
	for (size_t i = 0; i < 5; i++) {
		req[fields[i]] ^= 0x04;
		expect_drop(req, 60, SL_PKT_DROP_BAD_ARP);
		req[fields[i]] ^= 0x04;
	}
	expect_drop(req, 60, SL_PKT_OK);

	assert_int_equal(sl_pkt_build_arp_reply(out, 59, &info, OUR_MAC), -ENOSPC);
	info.verdict = SL_PKT_ARP_REPLY;
	assert_int_equal(sl_pkt_build_arp_reply(out, sizeof out, &info, OUR_MAC), -EINVAL);
}

static void test_udp_build(void **state)
{
	(void)state;
	struct sl_pkt_udp_addr a = {
	    .src_ip = OUR_IP, .dst_ip = PEER_IP, .src_port = 8089, .dst_port = 40000, .ip_id = 9};
	memcpy(a.src_mac, OUR_MAC, 6);
	memcpy(a.dst_mac, PEER_MAC, 6);
	struct sl_pkt_local peer = peer_local();
	struct sl_pkt_info info;
	uint8_t out[2048];
	static uint8_t payload[1500];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	const size_t sizes[] = {0, 1, 17, 18, 19, 1001, 1458};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t plen = sizes[i];
		int n = sl_pkt_build_udp(out, sizeof out, &a, payload, plen);
		assert_int_equal(n, 42 + plen < 60 ? 60 : 42 + plen);
		assert_int_equal(ref_csum(out + 14, 20), 0);
		assert_int_equal(out[22], SL_PKT_DEFAULT_TTL);
		assert_int_equal(sl_pkt_get_be16(out + 20), 0x4000); /* DF */
		assert_int_equal(sl_pkt_classify(out, (size_t)n, &peer, &info), SL_PKT_UDP_FOR_US);
		assert_true(info.udp_csum_checked);
		assert_int_equal(info.src_port, 8089);
		assert_int_equal(info.dst_port, 40000);
		assert_int_equal(info.src_ip, OUR_IP);
		assert_int_equal(info.ip_id, 9);
		assert_int_equal(info.payload_len, plen);
		if (plen)
			assert_memory_equal(info.payload, payload, plen);
		for (int k = (int)(42 + plen); k < n; k++)
			assert_int_equal(out[k], 0); /* padding */
	}
	/* in place: the payload already sits after the headers */
	memcpy(out + SL_PKT_UDP_HDRS, "ack 42", 6);
	int n = sl_pkt_build_udp(out, sizeof out, &a, out + SL_PKT_UDP_HDRS, 6);
	assert_int_equal(n, 60);
	assert_int_equal(sl_pkt_classify(out, (size_t)n, &peer, &info), SL_PKT_UDP_FOR_US);
	assert_memory_equal(info.payload, "ack 42", 6);

	assert_int_equal(sl_pkt_build_udp(out, 59, &a, payload, 0), -ENOSPC);
	assert_int_equal(sl_pkt_build_udp(out, 100, &a, payload, 59), -ENOSPC);
	assert_int_equal(sl_pkt_build_udp(out, sizeof out, &a, payload, 65508), -EMSGSIZE);
	assert_int_equal(sl_pkt_build_udp(out, sizeof out, &a, NULL, 5), -EINVAL);
}

static void test_arp_cache(void **state)
{
	(void)state;
	static struct sl_pkt_arp_cache c;
	sl_pkt_arp_init(&c, 1000);
	uint8_t mac[6], m1[6] = {1, 2, 3, 4, 5, 6}, m2[6] = {6, 5, 4, 3, 2, 1};
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 0, mac), -ENOENT);
	sl_pkt_arp_insert(&c, PEER_IP, m1, 100);
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 100, mac), 0);
	assert_memory_equal(mac, m1, 6);
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 1099, mac), 0);
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 1100, mac), -ENOENT); /* expired */
	assert_int_equal(sl_pkt_arp_lookup(&c, OUR_IP, 100, mac), -ENOENT);
	/* refresh: new MAC, new expiry, still one entry */
	sl_pkt_arp_insert(&c, PEER_IP, m2, 1000);
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 1500, mac), 0);
	assert_memory_equal(mac, m2, 6);
	int used = 0;
	for (int i = 0; i < SL_PKT_ARP_SLOTS; i++)
		used += c.e[i].used;
	assert_int_equal(used, 1);

	/* fill the cache: PEER_IP (expiring at 2000) plus 63 others expiring later */
	for (uint32_t i = 1; i < SL_PKT_ARP_SLOTS; i++)
		sl_pkt_arp_insert(&c, 0x0b000000 + i, m1, 1000 + i);
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 1500, mac), 0);
	/* one more evicts the entry closest to expiry: PEER_IP */
	sl_pkt_arp_insert(&c, 0x0c000001, m1, 1500);
	assert_int_equal(sl_pkt_arp_lookup(&c, PEER_IP, 1500, mac), -ENOENT);
	assert_int_equal(sl_pkt_arp_lookup(&c, 0x0c000001, 1500, mac), 0);
	for (uint32_t i = 1; i < SL_PKT_ARP_SLOTS; i++)
		assert_int_equal(sl_pkt_arp_lookup(&c, 0x0b000000 + i, 1500, mac), 0);
	/* expired entries go first */
	sl_pkt_arp_insert(&c, 0x0b000005, m2, -5000); /* refreshed into the past: expired */
	sl_pkt_arp_insert(&c, 0x0c000002, m2, 1500);
	assert_int_equal(sl_pkt_arp_lookup(&c, 0x0b000001, 1500, mac), 0);
	assert_int_equal(sl_pkt_arp_lookup(&c, 0x0c000002, 1500, mac), 0);
	assert_int_equal(sl_pkt_arp_lookup(&c, 0x0b000005, 1500, mac), -ENOENT);
	/* no overflow near the end of time */
	sl_pkt_arp_insert(&c, 0x0d000001, m1, INT64_MAX - 10);
	assert_int_equal(sl_pkt_arp_lookup(&c, 0x0d000001, INT64_MAX - 1, mac), 0);
}

static void test_names(void **state)
{
	(void)state;
	for (int r = 0; r < SL_PKT_DROP_COUNT; r++) {
		assert_string_not_equal(sl_pkt_drop_name(r), "unknown");
		for (int k = 0; k < r; k++)
			assert_string_not_equal(sl_pkt_drop_name(r), sl_pkt_drop_name(k));
	}
	assert_string_equal(sl_pkt_drop_name(SL_PKT_DROP_COUNT), "unknown");
	assert_string_equal(sl_pkt_drop_name(-1), "unknown");
	assert_string_equal(sl_pkt_verdict_name(SL_PKT_ARP_REPLY), "arp_reply");
	assert_string_equal(sl_pkt_verdict_name(99), "unknown");
	assert_int_equal(sl_pkt_ip4(10, 0, 0, 1), OUR_IP);
	struct sl_pkt_local l = local();
	assert_true(sl_pkt_is_local_ip(&l, OUR_IP2));
	assert_false(sl_pkt_is_local_ip(&l, PEER_IP));
}

/* ---- reassembly ------------------------------------------------------------------ */

static struct rte_mempool *pool;
static uint8_t dgram[70000]; /* the UDP datagram the fragments are cut from */
static size_t dgram_len;

static int frag_setup(void **state)
{
	(void)state;
	char *argv[] = {"test_pkt", "--no-huge", "--no-pci", "--no-shconf", "-m",
			"64", "--log-level=lib.eal:error", "--log-level=user1:error"};
	if (rte_eal_init((int)SL_ARRAY_LEN(argv), argv) < 0)
		return -1;
	/* no per-lcore cache: the free count is exact, so leaks show */
	pool = rte_pktmbuf_pool_create("t_frag", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	return pool == NULL ? -1 : 0;
}

/* A UDP datagram of n payload bytes (a pattern) from the peer to us, checksum included. */
static void mk_dgram(size_t n)
{
	uint8_t *u = dgram;
	size_t ulen = 8 + n;
	sl_pkt_put_be16(u, 40000);
	sl_pkt_put_be16(u + 2, 8089);
	sl_pkt_put_be16(u + 4, (uint16_t)ulen);
	u[6] = u[7] = 0;
	for (size_t i = 0; i < n; i++)
		u[8 + i] = (uint8_t)(i * 7 + i / 251);
	static uint8_t pseudo[12 + sizeof dgram];
	sl_pkt_put_be32(pseudo, PEER_IP);
	sl_pkt_put_be32(pseudo + 4, OUR_IP);
	pseudo[8] = 0;
	pseudo[9] = 17;
	sl_pkt_put_be16(pseudo + 10, (uint16_t)ulen);
	memcpy(pseudo + 12, u, ulen);
	uint16_t c = ref_csum(pseudo, 12 + ulen);
	sl_pkt_put_be16(u + 6, c ? c : 0xffff);
	dgram_len = ulen;
}

/* The fragment of the datagram at [ofs, ofs + len) with IP id `id`, in a fresh mbuf,
 * classified into *in (it must be a fragment for us). */
static struct rte_mbuf *mk_frag(uint16_t id, size_t ofs, size_t len, bool more,
				struct sl_pkt_info *in)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	assert_non_null(m);
	uint8_t *f = rte_pktmbuf_mtod(m, uint8_t *);
	size_t n = mk_ip(f, 17, PEER_IP, OUR_IP, 5, dgram + ofs, len);
	sl_pkt_put_be16(f + 18, id);
	sl_pkt_put_be16(f + 20, (uint16_t)((more ? 0x2000 : 0) | ofs / 8));
	set_ip_csum(f);
	m->data_len = m->pkt_len = (uint32_t)n;
	struct sl_pkt_local l = local();
	assert_int_equal(sl_pkt_classify(f, n, &l, in), SL_PKT_UDP_FRAGMENT_FOR_US);
	return m;
}

/* Adds fragment [ofs, ofs + len) of datagram `id` at tick `now`; returns what sl_frag_add
 * returned. */
static struct rte_mbuf *add(struct sl_frag *t, uint16_t id, size_t ofs, size_t len, bool more,
			    uint64_t now)
{
	struct sl_pkt_info in;
	struct rte_mbuf *m = mk_frag(id, ofs, len, more, &in);
	return sl_frag_add(t, m, &in, now);
}

/* d is the whole datagram: it classifies as UDP for us, checksums and payload intact. */
static void check_dgram(struct rte_mbuf *d)
{
	assert_non_null(d);
	assert_int_equal(d->pkt_len, 14 + 20 + dgram_len);
	static uint8_t flat[70000];
	const uint8_t *b = rte_pktmbuf_read(d, 0, d->pkt_len, flat);
	assert_non_null(b);
	struct sl_pkt_local l = local();
	struct sl_pkt_info in;
	assert_int_equal(sl_pkt_classify(b, d->pkt_len, &l, &in), SL_PKT_UDP_FOR_US);
	assert_true(in.udp_csum_checked);
	assert_int_equal(in.payload_len, dgram_len - 8);
	assert_memory_equal(in.payload, dgram + 8, dgram_len - 8);
	rte_pktmbuf_free(d);
}

static void assert_counts(const struct sl_frag *t, uint64_t fragments, uint64_t reassembled,
			  uint64_t expired, uint64_t table_full, uint64_t bad)
{
	assert_int_equal(t->c.fragments, fragments);
	assert_int_equal(t->c.reassembled, reassembled);
	assert_int_equal(t->c.expired, expired);
	assert_int_equal(t->c.table_full, table_full);
	assert_int_equal(t->c.bad, bad);
}

/* Each reassembly test gets a table of 16 datagrams and 100 ticks; afterwards every mbuf
 * must be back in the pool. */
static struct frag_fx {
	struct sl_frag t;
	unsigned free0;
} fx;

static int fx_setup(void **state)
{
	fx.free0 = rte_mempool_avail_count(pool);
	*state = &fx;
	return sl_frag_init(&fx.t, 16, 100, SOCKET_ID_ANY);
}

static int fx_teardown(void **state)
{
	(void)state;
	sl_frag_fini(&fx.t);
	assert_int_equal(rte_mempool_avail_count(pool), fx.free0);
	return 0;
}

/* 8 KiB payload cut at 1480 bytes (MTU 1500): 6 fragments, in order, then shuffled. */
static void test_frag_orders(void **state)
{
	struct sl_frag *tp = &((struct frag_fx *)*state)->t;
	mk_dgram(8192);
	size_t nf = (dgram_len + 1479) / 1480;
	assert_int_equal(nf, 6);
	const size_t orders[2][6] = {{0, 1, 2, 3, 4, 5},
				     {5, 2, 0, 4, 1, 3}}; /* last first, first in the middle */
	for (uint16_t id = 0; id < 2; id++) {
		for (size_t i = 0; i < nf; i++) {
			size_t k = orders[id][i], ofs = k * 1480;
			size_t len = k + 1 < nf ? 1480 : dgram_len - ofs;
			struct rte_mbuf *d = add(tp, id, ofs, len, k + 1 < nf, 10 + id);
			if (i + 1 < nf)
				assert_null(d);
			else
				check_dgram(d);
		}
		assert_counts(tp, 6 * (id + 1u), id + 1u, 0, 0, 0);
	}
}

/* A datagram missing a fragment is freed after the timeout, and only then. */
static void test_frag_timeout(void **state)
{
	struct sl_frag *tp = &((struct frag_fx *)*state)->t;
	mk_dgram(4000); /* 3 fragments; the middle one never comes */
	assert_null(add(tp, 7, 0, 1480, true, 1000));
	assert_null(add(tp, 7, 2960, dgram_len - 2960, false, 1000));
	sl_frag_expire(tp, 1050);
	assert_counts(tp, 2, 0, 0, 0, 0);
	assert_int_equal(rte_mempool_avail_count(pool), fx.free0 - 2);
	sl_frag_expire(tp, 1101);
	assert_counts(tp, 2, 0, 2, 0, 0);
	assert_int_equal(rte_mempool_avail_count(pool), fx.free0);
	/* the late fragment starts a new datagram of its own (held, then expired in turn) */
	assert_null(add(tp, 7, 1480, 1480, true, 1200));
	assert_counts(tp, 3, 0, 2, 0, 0);
	/* a timed-out datagram met again by its key is freed and started afresh */
	assert_null(add(tp, 7, 0, 1480, true, 1400));
	assert_counts(tp, 4, 0, 3, 0, 0);
	assert_null(add(tp, 7, 2960, dgram_len - 2960, false, 1401));
	check_dgram(add(tp, 7, 1480, 1480, true, 1402));
	assert_counts(tp, 6, 1, 3, 0, 0);
}

/* Overlaps, duplicates and too many fragments drop the datagram, counted per fragment. */
static void test_frag_bad(void **state)
{
	struct sl_frag *tp = &((struct frag_fx *)*state)->t;
	mk_dgram(2992); /* 3000 bytes of UDP */
	/* the second overlaps the first by 8 bytes: more data than the datagram */
	assert_null(add(tp, 1, 0, 1480, true, 0));
	assert_null(add(tp, 1, 1472, 1480, true, 0));
	assert_null(add(tp, 1, 2952, 48, false, 0));
	assert_counts(tp, 3, 0, 0, 0, 3);
	/* the first fragment twice */
	assert_null(add(tp, 2, 0, 1480, true, 0));
	assert_null(add(tp, 2, 0, 1480, true, 0));
	assert_counts(tp, 5, 0, 0, 0, 5);
	/* a hole: the sizes add up but the pieces do not meet */
	assert_null(add(tp, 3, 0, 1480, true, 0));
	assert_null(add(tp, 3, 1488, 1472, true, 0));
	assert_null(add(tp, 3, 2952, 48, false, 0));
	assert_counts(tp, 8, 0, 0, 0, 8);
	/* more fragments than SL_FRAG_MAX_FRAGS: the one past the limit drops the datagram
	 * with it; the last one then starts a new datagram (held until fini) */
	mk_dgram((SL_FRAG_MAX_FRAGS + 1) * 16 - 8);
	for (size_t k = 0; k <= SL_FRAG_MAX_FRAGS; k++)
		assert_null(add(tp, 4, k * 16, 16, k < SL_FRAG_MAX_FRAGS, 0));
	assert_int_equal(tp->c.bad, 8 + SL_FRAG_MAX_FRAGS);
	assert_int_equal(tp->c.reassembled, 0);
	/* the table still works */
	mk_dgram(2000);
	assert_null(add(tp, 5, 1480, dgram_len - 1480, false, 0));
	check_dgram(add(tp, 5, 0, 1480, true, 0));
}

/* A full table drops the new datagram's fragment; a timed-out one makes room. */
static void test_frag_table_full(void **state)
{
	struct sl_frag *tp = &((struct frag_fx *)*state)->t;
	sl_frag_fini(tp);
	assert_int_equal(sl_frag_init(tp, 1, 100, SOCKET_ID_ANY), 0); /* room for one */
	mk_dgram(2000);
	assert_null(add(tp, 1, 0, 1480, true, 0));
	assert_null(add(tp, 2, 0, 1480, true, 50));
	assert_counts(tp, 2, 0, 0, 1, 0);
	assert_null(add(tp, 3, 0, 1480, true, 200)); /* datagram 1 timed out: evicted */
	assert_counts(tp, 3, 0, 1, 1, 0);
	check_dgram(add(tp, 3, 1480, dgram_len - 1480, false, 201));
	assert_counts(tp, 4, 1, 1, 1, 0);
	/* bad sizes are refused */
	struct sl_frag bad;
	assert_int_equal(sl_frag_init(&bad, 0, 100, SOCKET_ID_ANY), -EINVAL);
	assert_int_equal(sl_frag_init(&bad, 65537, 100, SOCKET_ID_ANY), -EINVAL);
	assert_int_equal(sl_frag_init(&bad, 16, 0, SOCKET_ID_ANY), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csum),      cmocka_unit_test(test_udp_ok),
	    cmocka_unit_test(test_udp_drops), cmocka_unit_test(test_eth_drops),
	    cmocka_unit_test(test_ip_drops),  cmocka_unit_test(test_truncation_sweep),
	    cmocka_unit_test(test_icmp),      cmocka_unit_test(test_arp),
	    cmocka_unit_test(test_udp_build), cmocka_unit_test(test_arp_cache),
	    cmocka_unit_test(test_names),
	};
	const struct CMUnitTest frag_tests[] = {
	    cmocka_unit_test_setup_teardown(test_frag_orders, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_frag_timeout, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_frag_bad, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_frag_table_full, fx_setup, fx_teardown),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("reassembly", frag_tests, frag_setup, NULL);
}

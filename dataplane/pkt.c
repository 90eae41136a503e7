/* pkt.c - header checks and frame builders for the node's own L2/L3: every length is checked
 * against the buffer before a byte is read, fields are read byte by byte in network order,
 * and each refusal has its own reason so the counters tell malformed traffic apart. */
#include "pkt.h"

#include <errno.h>
#include <string.h>

#include "sl_assert.h"

static const char *const drop_names[SL_PKT_DROP_COUNT] = {
    [SL_PKT_OK] = "ok",
    [SL_PKT_DROP_TRUNCATED] = "truncated",
    [SL_PKT_DROP_VLAN] = "vlan",
    [SL_PKT_DROP_BAD_ETHERTYPE] = "bad_ethertype",
    [SL_PKT_DROP_BAD_ARP] = "bad_arp",
    [SL_PKT_DROP_BAD_IP_VERSION] = "bad_ip_version",
    [SL_PKT_DROP_BAD_IHL] = "bad_ihl",
    [SL_PKT_DROP_BAD_IP_LEN] = "bad_ip_len",
    [SL_PKT_DROP_BAD_IP_CSUM] = "bad_ip_csum",
    [SL_PKT_DROP_BAD_TTL] = "bad_ttl",
    [SL_PKT_DROP_BAD_SRC_IP] = "bad_src_ip",
    [SL_PKT_DROP_FRAGMENT] = "fragment",
    [SL_PKT_DROP_NOT_FOR_US] = "not_for_us",
    [SL_PKT_DROP_BAD_UDP_LEN] = "bad_udp_len",
    [SL_PKT_DROP_BAD_UDP_CSUM] = "bad_udp_csum",
    [SL_PKT_DROP_BAD_ICMP] = "bad_icmp",
    [SL_PKT_DROP_ICMP_NOT_ECHO] = "icmp_not_echo",
    [SL_PKT_DROP_UNSUPPORTED_PROTO] = "unsupported_proto",
    [SL_PKT_DROP_BAD_FRAGMENT] = "bad_fragment",
    [SL_PKT_DROP_FRAGMENT_OVERSIZE] = "fragment_oversize",
};

const char *sl_pkt_drop_name(int reason)
{
	if (reason < 0 || reason >= SL_PKT_DROP_COUNT)
		return "unknown";
	return drop_names[reason];
}

const char *sl_pkt_verdict_name(int verdict)
{
	static const char *const names[] = {
	    [SL_PKT_DROP] = "drop",
	    [SL_PKT_UDP_FOR_US] = "udp_for_us",
	    [SL_PKT_ARP_REQUEST_FOR_US] = "arp_request_for_us",
	    [SL_PKT_ARP_REPLY] = "arp_reply",
	    [SL_PKT_ICMP_ECHO_FOR_US] = "icmp_echo_for_us",
	    [SL_PKT_UDP_FRAGMENT_FOR_US] = "udp_fragment_for_us",
	};
	if (verdict < 0 || (size_t)verdict >= SL_ARRAY_LEN(names))
		return "unknown";
	return names[verdict];
}

bool sl_pkt_is_local_ip(const struct sl_pkt_local *local, uint32_t ip)
{
	uint32_t n = local->n_ips < SL_PKT_MAX_LOCAL_IPS ? local->n_ips : SL_PKT_MAX_LOCAL_IPS;
	for (uint32_t i = 0; i < n; i++) {
		if (local->ips[i] == ip)
			return true;
	}
	return false;
}

/* ---- checksums --------------------------------------------------------------------- */

/* One's-complement partial sum of big-endian 16-bit words (an odd tail is padded). It is
 * the cost of every UDP payload byte, so whole 64-bit words are added with end-around carry
 * first: one's-complement sums of wider words fold to the same 16 bits (RFC 1071). */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	size_t i = 0;
	for (; i + 7 < len; i += 8) {
		uint64_t w = (uint64_t)sl_pkt_get_be32(p + i) << 32 | sl_pkt_get_be32(p + i + 4);
		sum += w;
		sum += sum < w; /* end-around carry */
	}
	sum = (sum & 0xffffffffu) + (sum >> 32); /* room for the tail below */
	for (; i + 1 < len; i += 2)
		sum += sl_pkt_get_be16(p + i);
	if (i < len)
		sum += (uint64_t)p[i] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16) /* at most 4 rounds from 64 bits */
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t sl_pkt_inet_csum(const void *data, size_t len)
{
	return csum_fold(csum_add(0, data, len));
}

/* UDP checksum over the pseudo-header and the udp_len bytes of the datagram at u. */
static uint16_t udp_csum(uint32_t src, uint32_t dst, const uint8_t *u, size_t udp_len)
{
	uint64_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
	sum += SL_PKT_PROTO_UDP + udp_len;
	return csum_fold(csum_add(sum, u, udp_len));
}

/* ---- classify ---------------------------------------------------------------------- */

static const uint8_t mac_broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static enum sl_pkt_verdict drop(struct sl_pkt_info *out, enum sl_pkt_drop reason)
{
	out->verdict = SL_PKT_DROP;
	out->reason = reason;
	return SL_PKT_DROP;
}

static enum sl_pkt_verdict accept(struct sl_pkt_info *out, enum sl_pkt_verdict v)
{
	out->verdict = v;
	out->reason = SL_PKT_OK;
	return v;
}

static enum sl_pkt_verdict classify_arp(const uint8_t *a, size_t n,
					const struct sl_pkt_local *local, struct sl_pkt_info *out)
{
	if (n < SL_PKT_ARP_LEN)
		return drop(out, SL_PKT_DROP_TRUNCATED);
	uint16_t op = sl_pkt_get_be16(a + 6);
	if (sl_pkt_get_be16(a) != 1 || sl_pkt_get_be16(a + 2) != SL_PKT_ETHERTYPE_IPV4 ||
	    a[4] != 6 || a[5] != 4 || (op != 1 && op != 2))
		return drop(out, SL_PKT_DROP_BAD_ARP);
	memcpy(out->src_mac, a + 8, 6);
	out->src_ip = sl_pkt_get_be32(a + 14);
	out->dst_ip = sl_pkt_get_be32(a + 24);
	if (op == 2)
		return accept(out, SL_PKT_ARP_REPLY); /* the caller decides what to cache */
	if (!sl_pkt_is_local_ip(local, out->dst_ip))
		return drop(out, SL_PKT_DROP_NOT_FOR_US);
	return accept(out, SL_PKT_ARP_REQUEST_FOR_US);
}

/* 0.0.0.0/8, loopback, multicast and class E (with broadcast) never send to us. */
static bool src_ip_valid(uint32_t ip, bool loopback_ok)
{
	uint32_t a = ip >> 24;
	return a != 0 && (a != 127 || loopback_ok) && a < 224;
}

static enum sl_pkt_verdict classify_udp(const uint8_t *u, size_t n, struct sl_pkt_info *out)
{
	if (n < SL_PKT_UDP_HDR)
		return drop(out, SL_PKT_DROP_BAD_UDP_LEN);
	size_t ulen = sl_pkt_get_be16(u + 4);
	if (ulen < SL_PKT_UDP_HDR || ulen > n)
		return drop(out, SL_PKT_DROP_BAD_UDP_LEN);
	/* checksum 0 = not computed (IPv4 only); a computed 0 is sent as 0xffff */
	out->udp_csum_checked = sl_pkt_get_be16(u + 6) != 0;
	if (out->udp_csum_checked && udp_csum(out->src_ip, out->dst_ip, u, ulen) != 0)
		return drop(out, SL_PKT_DROP_BAD_UDP_CSUM);
	out->src_port = sl_pkt_get_be16(u);
	out->dst_port = sl_pkt_get_be16(u + 2);
	out->payload = u + SL_PKT_UDP_HDR;
	out->payload_len = ulen - SL_PKT_UDP_HDR;
	return accept(out, SL_PKT_UDP_FOR_US);
}

static enum sl_pkt_verdict classify_icmp(const uint8_t *m, size_t n, struct sl_pkt_info *out)
{
	if (n < SL_PKT_ICMP_HDR || sl_pkt_inet_csum(m, n) != 0)
		return drop(out, SL_PKT_DROP_BAD_ICMP);
	if (m[0] != 8 || m[1] != 0)
		return drop(out, SL_PKT_DROP_ICMP_NOT_ECHO);
	out->payload = m;
	out->payload_len = n;
	return accept(out, SL_PKT_ICMP_ECHO_FOR_US);
}

/* What one fragment can be checked for; the reassembly table (frag.c) relies on it: data
 * in every fragment, 8-byte units in all but the last, nothing past 65535 bytes (the
 * reassembled total length must fit its 16-bit field). Only UDP is reassembled. */
static enum sl_pkt_verdict classify_fragment(const uint8_t *p, size_t ihl, size_t total,
					     uint16_t frag, struct sl_pkt_info *out)
{
	if (p[9] != SL_PKT_PROTO_UDP)
		return drop(out, SL_PKT_DROP_FRAGMENT);
	out->more_frags = (frag & 0x2000) != 0;
	out->ip_hdr_len = (uint16_t)ihl;
	out->frag_offset = (uint32_t)(frag & 0x1fff) * 8;
	out->frag_len = (uint32_t)(total - ihl);
	if (out->frag_len == 0 || (out->more_frags && out->frag_len % 8 != 0))
		return drop(out, SL_PKT_DROP_BAD_FRAGMENT);
	if (ihl + out->frag_offset + out->frag_len > UINT16_MAX)
		return drop(out, SL_PKT_DROP_FRAGMENT_OVERSIZE);
	return accept(out, SL_PKT_UDP_FRAGMENT_FOR_US);
}

static enum sl_pkt_verdict classify_ipv4(const uint8_t *p, size_t n,
					 const struct sl_pkt_local *local, struct sl_pkt_info *out)
{
	if (n < SL_PKT_IP_HDR)
		return drop(out, SL_PKT_DROP_TRUNCATED);
	if (p[0] >> 4 != 4)
		return drop(out, SL_PKT_DROP_BAD_IP_VERSION);
	size_t ihl = (size_t)(p[0] & 0xf) * 4;
	if (ihl < SL_PKT_IP_HDR || ihl > n)
		return drop(out, SL_PKT_DROP_BAD_IHL);
	size_t total = sl_pkt_get_be16(p + 2);
	if (total < ihl || total > n) /* n > total is Ethernet padding */
		return drop(out, SL_PKT_DROP_BAD_IP_LEN);
	if (sl_pkt_inet_csum(p, ihl) != 0) /* options are covered, then skipped */
		return drop(out, SL_PKT_DROP_BAD_IP_CSUM);
	out->ip_id = sl_pkt_get_be16(p + 4);
	out->ttl = p[8];
	out->src_ip = sl_pkt_get_be32(p + 12);
	out->dst_ip = sl_pkt_get_be32(p + 16);
	if (out->ttl == 0)
		return drop(out, SL_PKT_DROP_BAD_TTL);
	if (!src_ip_valid(out->src_ip, local->loopback_ok))
		return drop(out, SL_PKT_DROP_BAD_SRC_IP);
	if (!sl_pkt_is_local_ip(local, out->dst_ip))
		return drop(out, SL_PKT_DROP_NOT_FOR_US);
	uint16_t frag = sl_pkt_get_be16(p + 6);
	if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0)
		return classify_fragment(p, ihl, total, frag, out);
	switch (p[9]) {
	case SL_PKT_PROTO_UDP:
		return classify_udp(p + ihl, total - ihl, out);
	case SL_PKT_PROTO_ICMP:
		return classify_icmp(p + ihl, total - ihl, out);
	default:
		return drop(out, SL_PKT_DROP_UNSUPPORTED_PROTO);
	}
}

enum sl_pkt_verdict sl_pkt_classify(const uint8_t *buf, size_t len,
				    const struct sl_pkt_local *local, struct sl_pkt_info *out)
{
	SL_ASSERT(local != NULL && out != NULL);
	memset(out, 0, sizeof *out);
	if (buf == NULL || len < SL_PKT_ETH_HDR)
		return drop(out, SL_PKT_DROP_TRUNCATED);
	memcpy(out->eth_dst, buf, 6);
	memcpy(out->eth_src, buf + 6, 6);
	uint16_t type = sl_pkt_get_be16(buf + 12);
	if (type == 0x8100 || type == 0x88a8 || type == 0x9100)
		return drop(out, SL_PKT_DROP_VLAN);
	if (type != SL_PKT_ETHERTYPE_IPV4 && type != SL_PKT_ETHERTYPE_ARP)
		return drop(out, SL_PKT_DROP_BAD_ETHERTYPE);
	if (memcmp(out->eth_dst, local->mac, 6) != 0 && memcmp(out->eth_dst, mac_broadcast, 6) != 0)
		return drop(out, SL_PKT_DROP_NOT_FOR_US);
	const uint8_t *l3 = buf + SL_PKT_ETH_HDR;
	size_t n = len - SL_PKT_ETH_HDR;
	if (type == SL_PKT_ETHERTYPE_ARP)
		return classify_arp(l3, n, local, out);
	return classify_ipv4(l3, n, local, out);
}

/* ---- builders ---------------------------------------------------------------------- */

static void put_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	sl_pkt_put_be16(f + 12, type);
}

/* IPv4 header without options, DF set, checksum filled. */
static void put_ipv4(uint8_t *p, size_t total, uint16_t id, uint8_t ttl, uint8_t proto,
		     uint32_t src, uint32_t dst)
{
	SL_ASSERT(total >= SL_PKT_IP_HDR && total <= UINT16_MAX);
	p[0] = 0x45;
	p[1] = 0;
	sl_pkt_put_be16(p + 2, (uint16_t)total);
	sl_pkt_put_be16(p + 4, id);
	sl_pkt_put_be16(p + 6, 0x4000);
	p[8] = ttl ? ttl : SL_PKT_DEFAULT_TTL;
	p[9] = proto;
	sl_pkt_put_be16(p + 10, 0);
	sl_pkt_put_be32(p + 12, src);
	sl_pkt_put_be32(p + 16, dst);
	sl_pkt_put_be16(p + 10, sl_pkt_inet_csum(p, SL_PKT_IP_HDR));
}

/* Zero padding up to the Ethernet minimum; returns the frame length. */
static int pad_frame(uint8_t *f, size_t len)
{
	if (len < SL_PKT_MIN_FRAME) {
		memset(f + len, 0, SL_PKT_MIN_FRAME - len);
		len = SL_PKT_MIN_FRAME;
	}
	return (int)len;
}

static size_t frame_bytes(size_t len) { return len < SL_PKT_MIN_FRAME ? SL_PKT_MIN_FRAME : len; }

static int build_arp(uint8_t *out, size_t cap, const uint8_t eth_dst[6], uint16_t op,
		     const uint8_t sha[6], uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
	if (out == NULL || cap < SL_PKT_MIN_FRAME)
		return -ENOSPC;
	put_eth(out, eth_dst, sha, SL_PKT_ETHERTYPE_ARP);
	uint8_t *a = out + SL_PKT_ETH_HDR;
	sl_pkt_put_be16(a, 1);
	sl_pkt_put_be16(a + 2, SL_PKT_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	sl_pkt_put_be16(a + 6, op);
	memcpy(a + 8, sha, 6);
	sl_pkt_put_be32(a + 14, spa);
	memcpy(a + 18, tha, 6);
	sl_pkt_put_be32(a + 24, tpa);
	return pad_frame(out, SL_PKT_ETH_HDR + SL_PKT_ARP_LEN);
}

int sl_pkt_build_arp_reply(uint8_t *out, size_t cap, const struct sl_pkt_info *req,
			   const uint8_t our_mac[6])
{
	if (req == NULL || our_mac == NULL || req->verdict != SL_PKT_ARP_REQUEST_FOR_US)
		return -EINVAL;
	return build_arp(out, cap, req->src_mac, 2, our_mac, req->dst_ip, req->src_mac,
			 req->src_ip);
}

int sl_pkt_build_arp_request(uint8_t *out, size_t cap, const uint8_t our_mac[6], uint32_t our_ip,
			     uint32_t target_ip)
{
	static const uint8_t unknown[6] = {0};
	if (our_mac == NULL)
		return -EINVAL;
	return build_arp(out, cap, mac_broadcast, 1, our_mac, our_ip, unknown, target_ip);
}

int sl_pkt_build_icmp_echo_reply(uint8_t *out, size_t cap, const struct sl_pkt_info *req,
				 const uint8_t our_mac[6])
{
	if (out == NULL || req == NULL || our_mac == NULL ||
	    req->verdict != SL_PKT_ICMP_ECHO_FOR_US || req->payload == NULL ||
	    req->payload_len < SL_PKT_ICMP_HDR || req->payload_len > UINT16_MAX - SL_PKT_IP_HDR)
		return -EINVAL;
	size_t hdrs = SL_PKT_ETH_HDR + SL_PKT_IP_HDR;
	size_t len = hdrs + req->payload_len;
	if (cap < frame_bytes(len))
		return -ENOSPC;
	/* the message first: in place, it moves down over the request's IP options */
	uint8_t *m = out + hdrs;
	memmove(m, req->payload, req->payload_len);
	m[0] = 0; /* echo reply */
	m[1] = 0;
	sl_pkt_put_be16(m + 2, 0);
	sl_pkt_put_be16(m + 2, sl_pkt_inet_csum(m, req->payload_len));
	put_eth(out, req->eth_src, our_mac, SL_PKT_ETHERTYPE_IPV4);
	put_ipv4(out + SL_PKT_ETH_HDR, SL_PKT_IP_HDR + req->payload_len, req->ip_id,
		 SL_PKT_DEFAULT_TTL, SL_PKT_PROTO_ICMP, req->dst_ip, req->src_ip);
	return pad_frame(out, len);
}

int sl_pkt_build_udp(uint8_t *out, size_t cap, const struct sl_pkt_udp_addr *a,
		     const uint8_t *payload, size_t payload_len)
{
	if (out == NULL || a == NULL || (payload == NULL && payload_len))
		return -EINVAL;
	if (payload_len > UINT16_MAX - SL_PKT_IP_HDR - SL_PKT_UDP_HDR)
		return -EMSGSIZE;
	size_t len = SL_PKT_UDP_HDRS + payload_len;
	if (cap < frame_bytes(len))
		return -ENOSPC;
	if (payload_len)
		memmove(out + SL_PKT_UDP_HDRS, payload, payload_len);
	int flen = pad_frame(out, len);
	size_t ulen = SL_PKT_UDP_HDR + payload_len;
	put_eth(out, a->dst_mac, a->src_mac, SL_PKT_ETHERTYPE_IPV4);
	put_ipv4(out + SL_PKT_ETH_HDR, SL_PKT_IP_HDR + ulen, a->ip_id, a->ttl, SL_PKT_PROTO_UDP,
		 a->src_ip, a->dst_ip);
	uint8_t *u = out + SL_PKT_ETH_HDR + SL_PKT_IP_HDR;
	sl_pkt_put_be16(u, a->src_port);
	sl_pkt_put_be16(u + 2, a->dst_port);
	sl_pkt_put_be16(u + 4, (uint16_t)ulen);
	sl_pkt_put_be16(u + 6, 0);
	if (a->no_udp_csum)
		return flen;
	uint16_t c = udp_csum(a->src_ip, a->dst_ip, u, ulen);
	sl_pkt_put_be16(u + 6, c == 0 ? 0xffff : c);
	return flen;
}

/* ---- ARP cache --------------------------------------------------------------------- */

void sl_pkt_arp_init(struct sl_pkt_arp_cache *c, int64_t ttl_ns)
{
	SL_ASSERT(c != NULL && ttl_ns > 0);
	memset(c, 0, sizeof *c);
	c->ttl_ns = ttl_ns;
}

void sl_pkt_arp_insert(struct sl_pkt_arp_cache *c, uint32_t ip, const uint8_t mac[6],
		       int64_t now_ns)
{
	size_t slot = SL_PKT_ARP_SLOTS;
	for (size_t i = 0; i < SL_PKT_ARP_SLOTS; i++) {
		const struct sl_pkt_arp_entry *e = &c->e[i];
		if (e->used && e->ip == ip) {
			slot = i;
			break;
		}
		/* prefer a free slot, then the entry that expires (or expired) first */
		if (slot == SL_PKT_ARP_SLOTS || (c->e[slot].used && !e->used) ||
		    (c->e[slot].used && e->used && e->expires_ns < c->e[slot].expires_ns))
			slot = i;
	}
	struct sl_pkt_arp_entry *e = &c->e[slot];
	e->used = true;
	e->ip = ip;
	memcpy(e->mac, mac, 6);
	e->expires_ns = now_ns > INT64_MAX - c->ttl_ns ? INT64_MAX : now_ns + c->ttl_ns;
}

int sl_pkt_arp_lookup(const struct sl_pkt_arp_cache *c, uint32_t ip, int64_t now_ns, uint8_t mac[6])
{
	for (size_t i = 0; i < SL_PKT_ARP_SLOTS; i++) {
		const struct sl_pkt_arp_entry *e = &c->e[i];
		if (e->used && e->ip == ip) {
			if (now_ns >= e->expires_ns)
				return -ENOENT;
			memcpy(mac, e->mac, 6);
			return 0;
		}
	}
	return -ENOENT;
}

/* pkt.h - Ethernet/ARP/IPv4/ICMP/UDP for the node's front door: classify a received frame
 * (every header checked, fragments dropped) and build the few frames the node sends (ARP and
 * echo replies, UDP datagrams). Pure functions over (buf, len): no mbufs, no EAL, no clock. */
#ifndef SL_PKT_H
#define SL_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Network byte order, byte by byte (never a cast onto a packet). */
static inline uint16_t sl_pkt_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t sl_pkt_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void sl_pkt_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void sl_pkt_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

#define SL_PKT_ETH_HDR 14u
#define SL_PKT_IP_HDR 20u /* without options; the builders never write options */
#define SL_PKT_UDP_HDR 8u
#define SL_PKT_ICMP_HDR 8u
#define SL_PKT_ARP_LEN 28u   /* ARP for Ethernet/IPv4 */
#define SL_PKT_MIN_FRAME 60u /* builders pad shorter frames with zeros (no FCS) */
#define SL_PKT_UDP_HDRS (SL_PKT_ETH_HDR + SL_PKT_IP_HDR + SL_PKT_UDP_HDR) /* 42 */
#define SL_PKT_MAX_LOCAL_IPS 8
#define SL_PKT_DEFAULT_TTL 64

#define SL_PKT_ETHERTYPE_IPV4 0x0800
#define SL_PKT_ETHERTYPE_ARP 0x0806
#define SL_PKT_PROTO_ICMP 1
#define SL_PKT_PROTO_UDP 17

/* IPv4 addresses are host-order uint32_t: 10.0.0.1 is 0x0a000001. */
static inline uint32_t sl_pkt_ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return (uint32_t)a << 24 | (uint32_t)b << 16 | (uint32_t)c << 8 | d;
}

/* What this port is: frames must be for mac (or broadcast) and IPv4 for one of ips. */
struct sl_pkt_local {
	uint8_t mac[6];
	uint32_t n_ips;
	uint32_t ips[SL_PKT_MAX_LOCAL_IPS];
	/* 127/8 sources are good: the node's only port is its kernel socket's (clients on
	 * this host), never a wire where they would be martians */
	bool loopback_ok;
};

/* true when ip is one of local's addresses. */
bool sl_pkt_is_local_ip(const struct sl_pkt_local *local, uint32_t ip);

enum sl_pkt_verdict {
	SL_PKT_DROP = 0,
	SL_PKT_UDP_FOR_US,
	SL_PKT_ARP_REQUEST_FOR_US,
	SL_PKT_ARP_REPLY,
	SL_PKT_ICMP_ECHO_FOR_US,
	SL_PKT_UDP_FRAGMENT_FOR_US, /* one IPv4 fragment of a UDP datagram: reassemble first */
};

enum sl_pkt_drop {
	SL_PKT_OK = 0,
	SL_PKT_DROP_TRUNCATED,	   /* shorter than the headers it announces */
	SL_PKT_DROP_VLAN,	   /* 802.1Q/802.1ad tagged: not configured */
	SL_PKT_DROP_BAD_ETHERTYPE, /* not IPv4 or ARP (including 802.3 length fields) */
	SL_PKT_DROP_BAD_ARP,	   /* not Ethernet/IPv4 ARP, or an unknown operation */
	SL_PKT_DROP_BAD_IP_VERSION,
	SL_PKT_DROP_BAD_IHL,	/* IHL < 5, or header longer than the packet */
	SL_PKT_DROP_BAD_IP_LEN, /* total length below the header or beyond the frame */
	SL_PKT_DROP_BAD_IP_CSUM,
	SL_PKT_DROP_BAD_TTL,	/* TTL 0 */
	SL_PKT_DROP_BAD_SRC_IP, /* source 0.0.0.0, broadcast, multicast or class E */
	SL_PKT_DROP_FRAGMENT,	/* a fragment of a non-UDP datagram: not reassembled */
	SL_PKT_DROP_NOT_FOR_US, /* another MAC or IP, or ARP for another address */
	SL_PKT_DROP_BAD_UDP_LEN,
	SL_PKT_DROP_BAD_UDP_CSUM,
	SL_PKT_DROP_BAD_ICMP,	   /* short or bad checksum */
	SL_PKT_DROP_ICMP_NOT_ECHO, /* valid ICMP we do not answer */
	SL_PKT_DROP_UNSUPPORTED_PROTO,
	SL_PKT_DROP_BAD_FRAGMENT,      /* no data, or not the last and not 8-byte multiple */
	SL_PKT_DROP_FRAGMENT_OVERSIZE, /* ends past the 65535-byte IPv4 datagram limit */
	SL_PKT_DROP_COUNT
};

/* Stable lower-case names for counters ("bad_ip_csum"...); "unknown" out of range. */
const char *sl_pkt_drop_name(int reason);
const char *sl_pkt_verdict_name(int verdict);

/* What classify found. For ARP, src_mac/src_ip are the sender's hardware/protocol address
 * and dst_ip the target protocol address. payload is the UDP payload, or the whole ICMP
 * message for an echo request; it points into the classified buffer. */
struct sl_pkt_info {
	enum sl_pkt_verdict verdict;
	enum sl_pkt_drop reason;
	uint8_t eth_src[6];
	uint8_t eth_dst[6];
	uint8_t src_mac[6];
	uint32_t src_ip;
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	uint16_t ip_id;
	uint8_t ttl;
	bool udp_csum_checked; /* false when the sender sent checksum 0 */
	/* SL_PKT_UDP_FRAGMENT_FOR_US: where this fragment's data goes in the datagram */
	bool more_frags;
	uint16_t ip_hdr_len; /* with options */
	uint32_t frag_offset; /* bytes */
	uint32_t frag_len;    /* data bytes after the IP header */
	const uint8_t *payload;
	size_t payload_len;
};

/* Classifies one Ethernet frame (without FCS). Always fills out->verdict and, for
 * SL_PKT_DROP, out->reason; returns the verdict. A fragment is checked as far as one
 * fragment can be (IP header, for us, UDP, its place in a datagram of at most 65535
 * bytes); the UDP header and checksum are checked on the reassembled datagram. */
enum sl_pkt_verdict sl_pkt_classify(const uint8_t *buf, size_t len,
				    const struct sl_pkt_local *local, struct sl_pkt_info *out);

/* RFC 1071 Internet checksum of data, folded and complemented (store as is, big endian). */
uint16_t sl_pkt_inet_csum(const void *data, size_t len);

/* Builders write a complete frame into out and return its length (>= SL_PKT_MIN_FRAME),
 * or -ENOSPC when cap is too small, -EINVAL on bad arguments. */

/* Reply to a request classified as SL_PKT_ARP_REQUEST_FOR_US: "req->dst_ip is at our_mac". */
int sl_pkt_build_arp_reply(uint8_t *out, size_t cap, const struct sl_pkt_info *req,
			   const uint8_t our_mac[6]);
/* Broadcast "who has target_ip, tell our_ip". */
int sl_pkt_build_arp_request(uint8_t *out, size_t cap, const uint8_t our_mac[6], uint32_t our_ip,
			     uint32_t target_ip);
/* Echo reply to a request classified as SL_PKT_ICMP_ECHO_FOR_US (identifier, sequence and
 * data copied from req->payload, which must still be valid). out may be the request's own
 * buffer: the reply is then built in place. */
int sl_pkt_build_icmp_echo_reply(uint8_t *out, size_t cap, const struct sl_pkt_info *req,
				 const uint8_t our_mac[6]);

/* Addresses of one UDP datagram. */
struct sl_pkt_udp_addr {
	uint8_t src_mac[6];
	uint8_t dst_mac[6];
	uint32_t src_ip;
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	uint16_t ip_id;
	uint8_t ttl; /* 0 = SL_PKT_DEFAULT_TTL */
	bool no_udp_csum; /* UDP checksum 0 (not computed): the payload has its own CRC */
};

/* Ethernet + IPv4 (DF, no options) + UDP with both checksums (the UDP one unless
 * a->no_udp_csum). payload may already sit at out + SL_PKT_UDP_HDRS (built in place);
 * -EMSGSIZE past 65535 - 28 payload bytes. */
int sl_pkt_build_udp(uint8_t *out, size_t cap, const struct sl_pkt_udp_addr *a,
		     const uint8_t *payload, size_t payload_len);

/* A small fixed ARP cache (no allocation); lookups past expiry miss. Time is an argument. */
#define SL_PKT_ARP_SLOTS 64
struct sl_pkt_arp_entry {
	uint32_t ip;
	uint8_t mac[6];
	bool used;
	int64_t expires_ns;
};
struct sl_pkt_arp_cache {
	int64_t ttl_ns;
	struct sl_pkt_arp_entry e[SL_PKT_ARP_SLOTS];
};

void sl_pkt_arp_init(struct sl_pkt_arp_cache *c, int64_t ttl_ns);
/* Adds or refreshes ip -> mac until now_ns + ttl_ns; a full cache evicts the entry closest to
 * expiry (expired entries first). */
void sl_pkt_arp_insert(struct sl_pkt_arp_cache *c, uint32_t ip, const uint8_t mac[6],
		       int64_t now_ns);
/* 0 with mac filled, or -ENOENT (unknown or expired). */
int sl_pkt_arp_lookup(const struct sl_pkt_arp_cache *c, uint32_t ip, int64_t now_ns,
		      uint8_t mac[6]);

#endif

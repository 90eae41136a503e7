/* fabric_udp.h - the fabric's frames over Ethernet/IPv4/UDP on a NIC port: what a received
 * frame is (a fabric frame for one of our cores, an ARP request or reply, or a drop with
 * its reason) and the ARP retry schedule. Pure: it classifies with pkt.c's checked
 * Ethernet/ARP/IPv4/UDP parser and adds the fabric's own rules (no fragments, our port
 * range); node_fabric.c does the I/O. docs/cluster.md describes the link. */
#ifndef SL_FABRIC_UDP_H
#define SL_FABRIC_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkt.h"

/* Bytes the IPv4 and UDP headers take from [cluster] fabric_mtu (the IP packet's size). */
#define SL_FU_IP_UDP_BYTES (SL_PKT_IP_HDR + SL_PKT_UDP_HDR)
/* ARP: the first retries come quickly (a peer starting at the same time), then back off
 * to one a second; a resolved peer is asked once a second (its answers keep it up). */
#define SL_FU_ARP_FIRST_MS 50u
#define SL_FU_ARP_MAX_MS 1000u
/* A peer heard from (ARP or frames) within this long is up. */
#define SL_FU_PEER_DEAD_MS 3000u

/* This node on the fabric network: its MAC and address, and UDP ports base ..
 * base + cores - 1 (port base + c reaches core c). */
struct sl_fu_local {
	struct sl_pkt_local pkt;
	uint16_t port_base;
	uint16_t n_cores;
};

enum sl_fu_kind {
	SL_FU_DROP = 0,
	SL_FU_FRAME,	   /* a fabric frame: payload, for core `core`, from src_ip */
	SL_FU_ARP_REQUEST, /* "who has our address": answer it */
	SL_FU_ARP_REPLY,   /* an answer (to us or gratuitous): learn it if from a peer */
	SL_FU_ICMP_ECHO,   /* a ping of our address: answer it (operators check the path) */
};

/* Why a frame from the fabric port was dropped: one counter each (fab_drop_<name>). */
enum sl_fu_drop {
	SL_FU_OK = 0,
	SL_FU_DROP_ETH,	       /* VLAN tagged, or neither IPv4 nor ARP (IPv6, LLDP...) */
	SL_FU_DROP_IP_HDR,     /* truncated, IP version, IHL, length, checksum, TTL 0, bad source */
	SL_FU_DROP_IP_FRAG,    /* an IPv4 fragment: the fabric sends DF and never fragments */
	SL_FU_DROP_NOT_FOR_US, /* another MAC, IP address or ARP target */
	SL_FU_DROP_PROTO,      /* not UDP, nor an ICMP echo request */
	SL_FU_DROP_UDP,	       /* UDP length or checksum */
	SL_FU_DROP_UDP_PORT,   /* a port outside the fabric's range */
	SL_FU_DROP_ARP,	       /* not an Ethernet/IPv4 ARP request or reply */
	SL_FU_DROP_COUNT
};
const char *sl_fu_drop_name(enum sl_fu_drop d);

struct sl_fu_in {
	enum sl_fu_kind kind;
	enum sl_fu_drop reason; /* SL_FU_DROP only */
	uint16_t core;		/* SL_FU_FRAME: the destination core (dst port - base) */
	uint16_t src_core;	/* SL_FU_FRAME: the sending core (src port - base) */
	struct sl_pkt_info pkt; /* addresses, payload (into the classified buffer) */
};

/* Classifies one Ethernet frame (without FCS) received on the fabric port. */
enum sl_fu_kind sl_fu_classify(const uint8_t *buf, size_t len, const struct sl_fu_local *local,
			       struct sl_fu_in *out);

/* The wait before the next ARP request to a peer, after one was sent that waited gap_ms
 * (0 for the first): doubling from SL_FU_ARP_FIRST_MS up to SL_FU_ARP_MAX_MS while the
 * peer is unresolved, SL_FU_ARP_MAX_MS once it is resolved. */
uint32_t sl_fu_arp_next_ms(uint32_t gap_ms, bool resolved);

/* A MAC as one integer for an atomic word: the 6 bytes, bit 48 set (0 = none). */
uint64_t sl_fu_mac_pack(const uint8_t mac[6]);
bool sl_fu_mac_unpack(uint64_t packed, uint8_t mac[6]);

#endif

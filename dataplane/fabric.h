/* fabric.h - the node-to-node frame codec: consensus messages of many groups coalesced
 * into frames of at most one MTU for one destination core, split into fragments when a
 * message is larger than a frame, checked and reassembled on receipt. Pure: no DPDK, no
 * sockets, no allocation (every buffer is the caller's), so it is unit tested and fuzzed
 * as is. docs/cluster.md describes the wire format. */
#ifndef SL_FABRIC_H
#define SL_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consensus.h"

#define SL_FAB_MAGIC 0x46534c53u /* bytes "SLSF" on the wire */
#define SL_FAB_VERSION 2
#define SL_FAB_ETHERTYPE 0x88b5	 /* IEEE 802 local experimental: fabric frames on a link */
#define SL_FAB_HDR_BYTES 40u
#define SL_FAB_REC_HDR_BYTES 28u
#define SL_FAB_MTU_MIN 256u	 /* a frame must carry a record header and some bytes */
#define SL_FAB_MTU_MAX 9000u
#define SL_FAB_MSG_MAX (1u << 20) /* a reassembled message is at most this long */

/* What a record carries. */
enum sl_fab_kind {
	SL_FAB_MSG = 0,	    /* a consensus message between two replicas of a region */
	SL_FAB_FWD = 1,	    /* a batch forwarded to the region's leader (node_fabric.c) */
	SL_FAB_FWD_ACK = 2, /* the leader's answer to a forwarded batch */
	SL_FAB_READ = 3,    /* a linearizable read forwarded to the region's leader */
	SL_FAB_READ_ANS = 4, /* its result: the client's READ_RESULT datagram */
	SL_FAB_KIND_COUNT
};

/* What a frame's header says (the fields a receiver checks, and the frame's body). */
struct sl_fab_hdr {
	uint32_t cluster_id;
	uint16_t src_node, dst_node;
	uint16_t src_core, dst_core;
	uint64_t epoch;	 /* the sender's membership epoch */
	uint32_t seq;	 /* per link and core, +1 a frame: the receiver counts gaps */
	uint16_t n_recs; /* records in the body */
	uint32_t body_len;
	const uint8_t *body; /* decode: points into the frame */
};

/* Why a frame was dropped (one counter each on the receiving core). */
enum sl_fab_drop {
	SL_FAB_OK = 0,
	SL_FAB_DROP_SHORT,	/* shorter than a header */
	SL_FAB_DROP_MAGIC,	/* not a fabric frame */
	SL_FAB_DROP_VERSION,	/* a version this node does not speak */
	SL_FAB_DROP_LENGTH,	/* body length disagrees with the frame's */
	SL_FAB_DROP_CRC,	/* damaged */
	SL_FAB_DROP_CLUSTER,	/* from another cluster */
	SL_FAB_DROP_DEST,	/* for another node */
	SL_FAB_DROP_EPOCH,	/* membership epoch older than this node's */
	SL_FAB_DROP_RECORDS,	/* records do not tile the body exactly */
	SL_FAB_DROP_COUNT
};
const char *sl_fab_drop_name(enum sl_fab_drop d);

/* ---- sending: one frame at a time, filled with whole messages or fragments ---------- */

struct sl_fab_enc {
	uint8_t *buf;  /* the frame: header, then records */
	uint32_t cap;  /* frame bytes (the link's MTU) */
	uint32_t used; /* header included */
	uint16_t n_recs;
};

/* Starts an empty frame in buf (cap bytes, SL_FAB_MTU_MIN..SL_FAB_MTU_MAX). */
void sl_fab_enc_begin(struct sl_fab_enc *e, uint8_t *buf, uint32_t cap);

/* Adds message m from byte *off on: as much as the frame holds, as one record (the whole
 * message, or a fragment of it). Returns true when the message is now wholly in frames
 * (*off == m->len), false when the frame is full: finish and send it, begin the next one
 * and call again with the same *off. Leaves out a fragment too small to be worth its
 * header unless the frame is still empty. A message longer than SL_FAB_MSG_MAX cannot be
 * reassembled: the caller checks sl_fab_msg_fits() first and counts what it drops. */
bool sl_fab_enc_add(struct sl_fab_enc *e, enum sl_fab_kind kind, const struct sl_cons_msg *m,
		    uint32_t *off);
bool sl_fab_msg_fits(uint32_t len);
static inline bool sl_fab_enc_empty(const struct sl_fab_enc *e) { return e->n_recs == 0; }

/* Writes the header (h's addressing fields; n_recs and body_len come from e) and its CRC;
 * returns the frame's length in bytes, 0 when it holds no record. */
uint32_t sl_fab_enc_finish(struct sl_fab_enc *e, const struct sl_fab_hdr *h);

/* ---- receiving ----------------------------------------------------------------------- */

/* What the receiver accepts: its cluster, its node id, and the oldest epoch it takes. */
struct sl_fab_self {
	uint32_t cluster_id;
	uint16_t node;
	uint64_t min_epoch;
};

/* Checks a whole frame (header, CRC over header and body, addressing, record tiling) and
 * fills *h. SL_FAB_OK or the reason to drop it; nothing of a dropped frame is used. */
enum sl_fab_drop sl_fab_decode(const uint8_t *frame, size_t len, const struct sl_fab_self *self,
			       struct sl_fab_hdr *h);

/* One record: a message, or fragment [off, off + len) of a message of `total` bytes. */
struct sl_fab_rec {
	uint16_t kind; /* enum sl_fab_kind */
	uint64_t group_id;
	uint32_t from, to;
	uint32_t total, off, len;
	const uint8_t *data;
};

struct sl_fab_rec_iter {
	const uint8_t *p, *end;
	uint16_t left;
};
/* Records of a frame that sl_fab_decode accepted. */
void sl_fab_recs_init(struct sl_fab_rec_iter *it, const struct sl_fab_hdr *h);
/* 1 and *r, or 0 after the last record. */
int sl_fab_recs_next(struct sl_fab_rec_iter *it, struct sl_fab_rec *r);

/* Reassembly of one sender's fragmented messages: frames from one source core arrive on
 * one queue, in order unless lost, so one message is in progress at a time. A lost
 * fragment loses its message (the protocols retransmit). */
struct sl_fab_reasm {
	uint8_t *buf;
	uint32_t cap; /* largest message it reassembles */
	bool active;
	uint16_t kind;
	uint64_t group_id;
	uint32_t from, to, total, filled;
	uint64_t gaps;	   /* messages lost to a missing fragment */
	uint64_t too_big;  /* messages over cap, dropped */
};
void sl_fab_reasm_init(struct sl_fab_reasm *r, uint8_t *buf, uint32_t cap);
/* Feeds a record. 1: *out is a whole message of kind *kind (the record itself when it was
 * whole, else the reassembled bytes, valid until the next call); 0: more fragments are
 * needed or the record was dropped (counted in gaps or too_big). */
int sl_fab_reasm_add(struct sl_fab_reasm *r, const struct sl_fab_rec *rec, struct sl_cons_msg *out,
		     uint16_t *kind);

#endif

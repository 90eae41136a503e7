/* multileader.c - multi-leader replication (IoTConsensus style) as a pure state machine
 * behind consensus.h: every replica appends its own writes under its own origin index,
 * ships that stream to each peer in windowed batches with cumulative acks, nacks and
 * backoff, applies peers' streams strictly in origin order, and answers CAD and
 * read-your-writes reads. Snapshots for a peer past retention travel in chunks of one
 * message each, in a window, acknowledged cumulatively. No I/O, clock, threads; every
 * buffer is sized at create() except the image a replica receives (grows with its chunks). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "multileader.h"
#include "sl_assert.h"
#include "sl_le.h"

#define ML_VERSION 1u
#define HDR 8u /* version u8, type u8, flags u16, checksum u32 (FNV-1a of the rest) */
#define BATCH_HDR (HDR + 16u)  /* first origin index u64, count u32, origin u32 */
#define BENT_HDR 28u	       /* hlc u64, session u64, seq u64, len u32 */
#define STATE_HDR (HDR + 25u)  /* round u64, echo u64, next expected u64, n u8 */
/* SNAP chunk: image epoch u64, image index u64, total u32, offset u32, len u32 */
#define SNAP_HDR (HDR + 28u)
#define SNAP_ACK_LEN (HDR + 20u) /* image epoch u64, image index u64, bytes held u32 */
/* Snapshot chunks in flight to one peer beyond what it acknowledged. */
#define SNAP_WINDOW 4u
/* Smallest max_msg_bytes: a STATE of the largest group, and a first snapshot chunk that
 * holds the largest vector (so a useless image is refused at its first chunk). */
#define MSG_BYTES_MIN 256u
_Static_assert(STATE_HDR + 12u * SL_CONS_MAX_PEERS <= MSG_BYTES_MIN, "a state fits");
_Static_assert(SNAP_HDR + SL_ML_SNAP_VEC_BYTES(SL_CONS_MAX_PEERS) <= MSG_BYTES_MIN,
	       "a snapshot's vector fits its first chunk");
#define MAXP SL_CONS_MAX_PEERS
/* Indexes and clocks a peer may name: far below where +1 wraps around. */
#define PEER_VALUE_MAX (UINT64_MAX / 4)
#define HLC_LOGICAL_BITS 16u
#define MS 1000000ull
_Static_assert((UINT64_MAX / MS) << HLC_LOGICAL_BITS <= PEER_VALUE_MAX, "a wall clock fits");

enum { M_BATCH = 1, M_STATE = 2, M_SNAP = 3, M_SNAP_ACK = 4, M_END };
#define F_REQ 1u  /* STATE: answer with F_RESP echoing the round (CAD reads, probes) */
#define F_RESP 2u
#define F_NACK 4u /* STATE: a batch did not start at the next expected index */
/* STATE: the sender lost its disk and is rejoining (docs/multileader.md, "Rejoin"): its
 * vector is all it holds now, and batches of its stream come from a life that is gone */
#define F_REJOIN 8u
/* STATE: the ends the sender knows follow the vector: n x u64 by the same slots (0: not
 * known or not safe yet: end_told) */
#define F_ENDS 16u
/* STATE, with F_REJOIN only: the sender holds no image (a joiner of the segment, a wiped
 * disk): a peer sends it its snapshot (the segment's base image and what followed), or
 * answers F_NOIMG (docs/multileader.md, "Joining a segment") */
#define F_WANTIMG 32u
/* STATE, never with F_REJOIN: the sender's state is all in its log (no snapshot, nothing
 * compacted): a replica holding nothing needs no image, the streams bring it everything */
#define F_NOIMG 64u
#define F_REJECT 1u /* SNAP_ACK: a chunk not taken (a gap, another image): go back */
#define F_BSEAL 1u  /* BATCH: its last entry is the origin's SEAL (the end of its stream) */

enum { RD_CAD = 1, RD_RYW = 2, RD_SYNC = 3 };

struct infl {
	uint64_t first, last, sent_ns;
	uint32_t bytes;
};

/* This replica's view of one peer: the shipping of its own stream there, and the
 * peer's durable vector (what it reported durable of every origin). */
struct peer {
	uint32_t node;
	uint64_t acked;	 /* own origin index durable on the peer (cumulative) */
	uint64_t cursor; /* next own origin index to ship */
	bool probing;	 /* position unknown: ask (F_REQ) and wait */
	bool needs_snap;
	bool state_due; /* send it a STATE (ack, nack or answer) */
	uint16_t state_flags;
	uint64_t answer_round;
	struct infl *infl;
	uint32_t ih, in;
	uint64_t ibytes;
	uint64_t rto;
	uint64_t nack_ne, nack_ns; /* last rewind by a nack: the same one again is ignored */
	uint64_t snap_ns; /* last snapshot activity (chunks sent, progress acked) */
	/* the image being sent (tx_active): its id, bytes acked, bytes sent (next to
	 * send), the most ever sent of it */
	bool tx_active, tx_went_back;
	uint64_t tx_epoch, tx_index;
	uint32_t tx_total, tx_off, tx_sent, tx_max;
	uint64_t hb_due;
	uint64_t resp_round;
	uint64_t dur[MAXP];
	/* it says it is rejoining (F_REJOIN): what it reported is all it holds, its copies
	 * count for nothing more, and batches of its lost life are dropped */
	bool rejoining;
	/* this replica rejoining: the latest answer of it to a round of this life (echo)
	 * and how much of this replica's stream it holds by that answer; its durable vector
	 * by its first answer (what it held when this replica came back) */
	uint64_t rj_echo, rj_held;
	uint64_t rj_dur[MAXP];
	/* it rejoins and holds no image yet (F_WANTIMG): it gets this replica's snapshot */
	bool want_img;
};

struct own { /* one own origin index: where it is in the local log, when it was taken */
	uint64_t local, ns;
};

struct undur { /* appended, not yet durable */
	uint64_t local, oidx;
	uint32_t slot;
};

struct pend {
	uint64_t pid, oidx, local;
	uint32_t k;
	bool done;
};

struct mread {
	uint64_t id, round, deadline;
	uint8_t kind;
	bool confirmed;
	uint32_t slot; /* RYW */
	uint64_t target[MAXP];
};

struct ml {
	uint64_t group;
	uint32_t self, n, me;
	uint32_t ids[MAXP];
	struct sl_ml_opts o;
	const struct sl_cons_log *log;
	uint64_t now;
	bool failed;
	uint64_t hlc;
	uint64_t wall_ns; /* sl_ml_wall: the host's wall clock (0: none given) */
	uint64_t last_index, logged_index, durable_index, applied_index;
	uint64_t recv[MAXP], dur[MAXP], applied[MAXP];
	uint64_t own_floor; /* own entries at or below: not in the log any more */
	struct own *ring;
	uint32_t ring_cap;
	struct undur *ud;
	uint32_t ud_head, ud_len;
	struct pend *pend;
	uint32_t p_head, p_len;
	struct mread *reads;
	uint32_t n_reads;
	uint64_t round;
	bool dirty; /* acks or reads may have become answerable */
	struct peer pr[MAXP];
	/* outbox */
	struct sl_cons_entry *ob;
	uint32_t ob_n, ob_cap;
	uint8_t *pbuf;
	uint32_t pused, pcap;
	struct sl_cons_msg *msgs;
	uint32_t n_msgs, msgs_cap;
	uint8_t *mbuf;
	uint32_t mused, mcap;
	struct sl_cons_entry *commit;
	uint8_t *abuf;
	uint32_t acap;
	struct sl_cons_ack *acks;
	struct sl_cons_read *rreads;
	/* images this replica sends get ids (epoch, index) that never repeat */
	uint64_t snap_epoch;
	/* the image being received (rx_active), or received whole (rx_done): from which
	 * slot, its id and size, how much is here; it grows in rx_buf */
	bool rx_active, rx_done;
	uint32_t rx_from, rx_total, rx_next, rx_cap;
	uint64_t rx_epoch, rx_index, rx_ns;
	uint8_t *rx_buf;
	/* a whole image (rx_buf) to merge in the next ready */
	bool snap_pending;
	uint64_t snapvec[MAXP];
	/* what the last ready handed out */
	bool rd_snap;
	uint64_t rd_last, rd_applied_to;
	uint64_t rd_vec[MAXP];
	/* created with cfg->rejoin (a wiped disk) and not caught up yet: no proposals until
	 * a majority of the group, this replica not counted, said how much of its stream they
	 * hold and it holds that much again (rejoin_check); rj_round: its first read round */
	bool rejoin;
	uint64_t rj_round, rj_next; /* rj_next: when to ask again under a new round */
	/* rejoining with no image (no snapshot at create(): a joiner, a wiped disk): it asks
	 * its peers for one (F_WANTIMG) and is not caught up before it merged one, or a peer
	 * said its whole state is in its log (F_NOIMG) */
	bool need_img;
	/* seal: each origin's end (its SEAL's origin index; 0: not known), a peer's end
	 * known while this stream is not sealed yet (seal it when possible), and the local
	 * index by which every stream was applied up to its end (status.sealed_index) */
	uint64_t end[MAXP];
	bool seal_due;
	uint64_t sealed_at;
	/* local index of this replica's own SEAL in its log (0: not there: not sealed, or
	 * its stream came back through a snapshot after a lost disk: then it is recorded
	 * again, so that a restart finds the end in the log) */
	uint64_t seal_local;
	/* the first SEAL entry (of any origin) in the log: it is never compacted away, so a
	 * restart finds every end this replica held; and, per origin, whether one is there
	 * (an end learned from a STATE or with a snapshot is recorded: record_ends) */
	uint64_t seal_first;
	bool sealrec[MAXP];
	struct sl_ml_stats st;
};

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int slot_of(const struct ml *s, uint32_t node)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->ids[i] == node)
			return (int)i;
	return -1;
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* ---- options ---- */

static void opts_fill(struct sl_ml_opts *o, const struct sl_ml_opts *in)
{
	memset(o, 0, sizeof(*o));
	if (in != NULL)
		*o = *in;
#define DEF(f, v)                                                                                  \
	if (o->f == 0)                                                                             \
	o->f = (v)
	DEF(ack_copies, 1);
	DEF(max_entry_bytes, 4096);
	DEF(max_batch_entries, 64);
	DEF(max_batch_bytes, 32u << 10);
	DEF(batch_delay_ns, 1 * MS);
	DEF(window_batches, 8);
	DEF(window_bytes, 256u << 10);
	DEF(rto_ns, 20 * MS);
	DEF(rto_max_ns, 1000 * MS);
	DEF(heartbeat_ns, 50 * MS);
	DEF(retention_entries, 65536);
	DEF(max_undurable, 8192);
	DEF(max_pending, 8192);
	DEF(max_apply_entries, 1024);
	DEF(max_reads, 64);
	DEF(read_timeout_ns, 1000 * MS);
	DEF(max_msg_bytes, 64u << 10);
	DEF(max_snapshot_bytes, 1u << 30);
#undef DEF
	if (o->max_msg_bytes < MSG_BYTES_MIN)
		o->max_msg_bytes = MSG_BYTES_MIN;
	/* a batch's payload fits one message with its headers (create() refuses a
	 * max_entry_bytes that does not) */
	if (o->max_batch_bytes > o->max_msg_bytes - BATCH_HDR - BENT_HDR)
		o->max_batch_bytes = o->max_msg_bytes - BATCH_HDR - BENT_HDR;
	if (o->max_batch_bytes < o->max_entry_bytes)
		o->max_batch_bytes = o->max_entry_bytes; /* one entry always fits a batch */
}

/* The longest batch message: max_msg_bytes, or less when entries and bytes bound it. */
static uint32_t batch_msg_bytes(const struct sl_ml_opts *o)
{
	uint64_t b = (uint64_t)BATCH_HDR + o->max_batch_bytes +
		     (uint64_t)BENT_HDR * o->max_batch_entries;
	return b < o->max_msg_bytes ? (uint32_t)b : o->max_msg_bytes;
}

uint32_t sl_ml_max_entry_bytes(const struct sl_ml_opts *opts)
{
	struct sl_ml_opts o;
	opts_fill(&o, opts);
	return o.max_entry_bytes;
}

/* ---- the origin header every entry carries in the log ---- */

static void ehdr_put(uint8_t *p, uint32_t origin, uint64_t oidx, uint64_t hlc, uint64_t session,
		     uint64_t seq)
{
	p[0] = ML_VERSION;
	sl_put_u32(p + 1, origin);
	sl_put_u64(p + 5, oidx);
	sl_put_u64(p + 13, hlc);
	sl_put_u64(p + 21, session);
	sl_put_u64(p + 29, seq);
}

/* A log entry as the caller stored it -> the entry handed out (payload after the header,
 * origin fields filled). -EBADMSG when it is not one of ours. */
static int ehdr_get(const struct sl_cons_entry *in, struct sl_cons_entry *out)
{
	if (in->len < SL_ML_ENTRY_HDR || in->data == NULL || in->data[0] != ML_VERSION)
		return -EBADMSG;
	*out = *in;
	out->origin = sl_get_u32(in->data + 1);
	out->origin_index = sl_get_u64(in->data + 5);
	out->hlc = sl_get_u64(in->data + 13);
	out->session = sl_get_u64(in->data + 21);
	out->session_seq = sl_get_u64(in->data + 29);
	out->data = in->data + SL_ML_ENTRY_HDR;
	out->len = in->len - SL_ML_ENTRY_HDR;
	return 0;
}

/* ---- snapshot vector ---- */

uint32_t sl_ml_snap_vec_put(uint8_t *buf, uint32_t cap, const uint32_t *nodes,
			    const uint64_t *idx, uint32_t n)
{
	if (n > MAXP || cap < SL_ML_SNAP_VEC_BYTES(n))
		return 0;
	buf[0] = (uint8_t)n;
	for (uint32_t i = 0; i < n; i++) {
		sl_put_u32(buf + 1 + 12 * i, nodes[i]);
		sl_put_u64(buf + 5 + 12 * i, idx[i]);
	}
	return SL_ML_SNAP_VEC_BYTES(n);
}

int sl_ml_snap_vec_get(const uint8_t *buf, uint32_t len, uint32_t *nodes, uint64_t *idx,
		       uint32_t cap, uint32_t *n)
{
	if (len < 1 || buf[0] > MAXP || buf[0] > cap || len < SL_ML_SNAP_VEC_BYTES(buf[0]))
		return -EBADMSG;
	*n = buf[0];
	for (uint32_t i = 0; i < *n; i++) {
		nodes[i] = sl_get_u32(buf + 1 + 12 * i);
		idx[i] = sl_get_u64(buf + 5 + 12 * i);
		if (idx[i] > PEER_VALUE_MAX)
			return -EBADMSG;
		for (uint32_t j = 0; j < i; j++)
			if (nodes[j] == nodes[i])
				return -EBADMSG;
	}
	return (int)SL_ML_SNAP_VEC_BYTES(*n);
}

/* A snapshot's vector by member slot; -EBADMSG for a malformed one or a node that is
 * not a member. */
static int snap_vec(const struct ml *s, const uint8_t *d, uint32_t len, uint64_t *vec)
{
	uint32_t nodes[MAXP], n;
	uint64_t idx[MAXP];
	int rc = sl_ml_snap_vec_get(d, len, nodes, idx, MAXP, &n);
	if (rc < 0)
		return rc;
	memset(vec, 0, MAXP * sizeof(*vec));
	for (uint32_t i = 0; i < n; i++) {
		int sl = slot_of(s, nodes[i]);
		if (sl < 0)
			return -EBADMSG;
		vec[sl] = idx[i];
	}
	return 0;
}

/* Origin sl's stream ends at oidx (its SEAL): learned from its batch, a STATE or the log. A
 * different end than one known already is a peer's lie or bug: refused (false). */
static bool note_end(struct ml *s, uint32_t sl, uint64_t oidx)
{
	if (s->end[sl] != 0)
		return s->end[sl] == oidx;
	s->end[sl] = oidx;
	if (sl != s->me && s->end[s->me] == 0)
		s->seal_due = true; /* the segment ends: this stream ends too */
	s->dirty = true;
	return true;
}

/* ---- own stream bookkeeping ---- */

static uint64_t own_last(const struct ml *s) { return s->recv[s->me]; }

/* Lowest own origin index still readable from the log (own_last + 1: none). */
static uint64_t own_avail(const struct ml *s)
{
	uint64_t last = own_last(s);
	uint64_t lo = s->own_floor + 1;
	if (last >= s->ring_cap && last - s->ring_cap + 1 > lo)
		lo = last - s->ring_cap + 1;
	if (lo > last)
		return last + 1;
	/* entries the caller compacted away: local indexes grow with origin indexes */
	uint64_t first = s->log->first_index(s->log->ctx);
	uint64_t hi = last + 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (s->ring[mid % s->ring_cap].local >= first)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The clock's physical part: the host's wall clock (sl_ml_wall) when it gives one, so
 * that concurrent writes at two nodes are ordered by real time (within the clocks' skew);
 * else the tick's time. A clock stepped back is followed by logical increments. */
static uint64_t hlc_next(struct ml *s)
{
	uint64_t phys = ((s->wall_ns != 0 ? s->wall_ns : s->now) / MS) << HLC_LOGICAL_BITS;
	s->hlc = phys > s->hlc ? phys : s->hlc + 1;
	return s->hlc;
}

/* ---- outbox ---- */

/* Room for one message of `len` bytes; NULL (counted) when the outbox is full. */
static uint8_t *msg_start(struct ml *s, uint32_t to, uint32_t len, uint8_t type, uint16_t flags)
{
	if (s->n_msgs == s->msgs_cap || s->mcap - s->mused < len) {
		s->st.outbox_dropped++;
		return NULL;
	}
	uint8_t *p = s->mbuf + s->mused;
	s->msgs[s->n_msgs] = (struct sl_cons_msg){s->group, s->self, to, len, p};
	p[0] = ML_VERSION;
	p[1] = type;
	sl_put_u16(p + 2, flags);
	return p;
}

static void msg_finish(struct ml *s, uint32_t len)
{
	uint8_t *p = s->mbuf + s->mused;
	s->msgs[s->n_msgs].len = len;
	sl_put_u32(p + 4, fnv1a(p + 8, len - 8));
	s->mused += len;
	s->n_msgs++;
}

static uint32_t copies(const struct ml *s, uint64_t oidx);

/* The end of origin o this replica tells its peers: only one whose stream up to it is
 * safe from any single lost disk, so that no replica waits for entries that are gone: its
 * own once its SEAL is durable on a majority, another's once held durably here. */
static uint64_t end_told(const struct ml *s, uint32_t o)
{
	uint64_t e = s->end[o];
	if (e == 0)
		return 0;
	if (o == s->me)
		return copies(s, e) >= s->n / 2 + 1 ? e : 0;
	return s->dur[o] >= e ? e : 0;
}

static void send_state(struct ml *s, uint32_t sl, uint16_t flags, uint64_t echo)
{
	uint32_t len = STATE_HDR + 12u * s->n;
	if (s->rejoin) {
		flags |= F_REJOIN;
		flags &= (uint16_t)~F_NOIMG;
		if (s->need_img)
			flags |= F_WANTIMG;
	}
	for (uint32_t o = 0; o < s->n && !(flags & F_ENDS); o++)
		if (end_told(s, o) != 0) {
			flags |= F_ENDS;
			len += 8u * s->n;
		}
	uint8_t *p = msg_start(s, s->ids[sl], len, M_STATE, flags);
	if (p == NULL)
		return;
	sl_put_u64(p + HDR, s->round); /* this replica's latest read round (with F_REQ) */
	sl_put_u64(p + HDR + 8, echo); /* the peer's round being answered (with F_RESP) */
	sl_put_u64(p + HDR + 16, s->recv[sl] + 1);
	p[HDR + 24] = (uint8_t)s->n;
	for (uint32_t i = 0; i < s->n; i++) {
		sl_put_u32(p + STATE_HDR + 12 * i, s->ids[i]);
		sl_put_u64(p + STATE_HDR + 12 * i + 4, s->dur[i]);
	}
	for (uint32_t i = 0; (flags & F_ENDS) && i < s->n; i++)
		sl_put_u64(p + STATE_HDR + 12 * s->n + 8 * i, end_told(s, i));
	msg_finish(s, len);
}

static void infl_clear(struct peer *p)
{
	p->ih = p->in = 0;
	p->ibytes = 0;
}

static void mark_needs_snap(struct peer *p, uint64_t *counter)
{
	if (p->needs_snap)
		return;
	p->needs_snap = true;
	p->snap_ns = 0;
	p->tx_active = false;
	infl_clear(p);
	(*counter)++;
}

/* One batch of own entries from the peer's cursor; false when nothing (more) goes out. */
static bool ship_one(struct ml *s, uint32_t sl)
{
	struct peer *p = &s->pr[sl];
	/* only own entries durable here leave: one lost in a crash gets its origin index
	 * again, so a copy of it elsewhere would be a different write under the same index */
	uint64_t logged_last = s->dur[s->me];
	if (p->cursor <= p->acked)
		p->cursor = p->acked + 1; /* durable there already (a resend from an old batch) */
	if (p->cursor > logged_last)
		return false;
	if (p->in == s->o.window_batches || p->ibytes >= s->o.window_bytes)
		return false;
	if (p->cursor < own_avail(s)) {
		mark_needs_snap(p, &s->st.over_retention);
		return false;
	}
	uint64_t avail = logged_last - p->cursor + 1;
	if (avail < s->o.max_batch_entries &&
	    s->now < s->ring[p->cursor % s->ring_cap].ns + s->o.batch_delay_ns)
		return false; /* a partial batch waits for more, up to batch_delay_ns */
	uint32_t cap = batch_msg_bytes(&s->o);
	if (s->n_msgs == s->msgs_cap || s->mcap - s->mused < cap) {
		s->st.outbox_dropped++;
		return false;
	}
	uint8_t *m = msg_start(s, s->ids[sl], cap, M_BATCH, 0);
	uint32_t len = BATCH_HDR, n = 0, bytes = 0;
	uint16_t bflags = 0;
	uint64_t oi = p->cursor;
	for (; oi <= logged_last && n < s->o.max_batch_entries && !bflags; oi++) {
		struct sl_cons_entry raw, e;
		uint64_t local = s->ring[oi % s->ring_cap].local;
		if (s->log->entry(s->log->ctx, local, &raw) != 0 || ehdr_get(&raw, &e) != 0 ||
		    e.origin != s->self || e.origin_index != oi) {
			if (n == 0) { /* compacted under us: only a snapshot helps now */
				mark_needs_snap(p, &s->st.over_retention);
				return false;
			}
			break;
		}
		if (n > 0 && (bytes + e.len > s->o.max_batch_bytes || len + BENT_HDR + e.len > cap))
			break; /* full: by payload bytes, or many small entries fill the message */
		sl_put_u64(m + len, e.hlc);
		sl_put_u64(m + len + 8, e.session);
		sl_put_u64(m + len + 16, e.session_seq);
		sl_put_u32(m + len + 24, e.len);
		memcpy(m + len + BENT_HDR, e.data, e.len);
		len += BENT_HDR + e.len;
		bytes += e.len;
		n++;
		if (raw.type == SL_CONS_ENTRY_SEAL)
			bflags = F_BSEAL; /* the end of this stream: the batch ends with it */
	}
	sl_put_u16(m + 2, bflags);
	sl_put_u64(m + HDR, p->cursor);
	sl_put_u32(m + HDR + 8, n);
	sl_put_u32(m + HDR + 12, s->self);
	msg_finish(s, len);
	p->infl[(p->ih + p->in) % s->o.window_batches] =
		(struct infl){p->cursor, p->cursor + n - 1, s->now, len};
	p->in++;
	p->ibytes += len;
	p->cursor += n;
	s->st.batches_sent++;
	s->st.entries_sent += n;
	return true;
}

/* Image bytes one chunk carries. */
static uint32_t snap_room(const struct ml *s) { return s->o.max_msg_bytes - SNAP_HDR; }

/* Snapshot transfer to a peer past retention, in chunks: the caller's latest snapshot
 * (a different one than the image being sent starts a new image under a new id), as many
 * chunks as SNAP_WINDOW allows beyond what the peer acknowledged (SNAP_ACK). The peer
 * merges the image once it holds all of it and then says where it stands (STATE), which
 * ends 'needs snapshot'. */
static void send_snapshot(struct ml *s, uint32_t sl)
{
	struct peer *p = &s->pr[sl];
	struct sl_cons_snapshot sn;
	uint64_t vec[MAXP];
	if (s->log->snapshot == NULL || s->log->snapshot(s->log->ctx, &sn) != 0 ||
	    snap_vec(s, sn.data, sn.len, vec) != 0 || vec[s->me] + 1 < own_avail(s)) {
		/* none yet, or the own entries after it are gone too: the caller must
		 * snapshot again (its applied state covers more) */
		p->tx_active = false;
		s->st.snapshots_unavailable++;
		return;
	}
	if (!p->tx_active || p->tx_index != sn.index || p->tx_total != sn.len) {
		/* a new image: an id the peer never saw from this replica, even across
		 * restarts (epochs follow time, like read rounds) */
		s->snap_epoch = max64(s->snap_epoch + 1, s->now);
		p->tx_active = true;
		p->tx_epoch = s->snap_epoch;
		p->tx_index = sn.index;
		p->tx_total = sn.len;
		p->tx_off = p->tx_sent = p->tx_max = 0;
		p->tx_went_back = false;
		s->st.snapshots_sent++;
	}
	uint32_t room = snap_room(s);
	for (uint32_t k = 0; k < SNAP_WINDOW; k++) { /* bounded: one window */
		if (p->tx_sent >= p->tx_total ||
		    (uint64_t)p->tx_sent - p->tx_off >= (uint64_t)SNAP_WINDOW * room)
			break;
		uint32_t len = min64(p->tx_total - p->tx_sent, room);
		uint8_t *m = msg_start(s, p->node, SNAP_HDR + len, M_SNAP, 0);
		if (m == NULL)
			break;
		sl_put_u64(m + HDR, p->tx_epoch);
		sl_put_u64(m + HDR + 8, p->tx_index);
		sl_put_u32(m + HDR + 16, p->tx_total);
		sl_put_u32(m + HDR + 20, p->tx_sent);
		sl_put_u32(m + HDR + 24, len);
		memcpy(m + SNAP_HDR, sn.data + p->tx_sent, len);
		msg_finish(s, SNAP_HDR + len);
		p->tx_sent += len;
		p->tx_max = (uint32_t)max64(p->tx_max, p->tx_sent);
		p->snap_ns = s->now;
		s->st.snapshot_chunks_sent++;
	}
}

/* Everything due to peers: states (acks, nacks, answers), then batches. */
static void pump(struct ml *s)
{
	if (s->failed)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		if (i == s->me)
			continue;
		struct peer *p = &s->pr[i];
		if (p->state_due) {
			send_state(s, i, p->state_flags, p->answer_round);
			p->state_due = false;
			p->state_flags = 0;
		}
		if (p->probing || p->needs_snap)
			continue;
		while (ship_one(s, i))
			;
	}
}

static void want_state(struct ml *s, uint32_t sl, uint16_t flags)
{
	s->pr[sl].state_due = true;
	s->pr[sl].state_flags |= flags;
}

/* ---- create / destroy ---- */

static void ml_destroy(void *st)
{
	struct ml *s = st;
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < MAXP; i++)
		free(s->pr[i].infl);
	free(s->ring);
	free(s->ud);
	free(s->pend);
	free(s->reads);
	free(s->ob);
	free(s->pbuf);
	free(s->msgs);
	free(s->mbuf);
	free(s->commit);
	free(s->abuf);
	free(s->acks);
	free(s->rreads);
	free(s->rx_buf);
	free(s);
}

/* The caller holds a snapshot: a merged image, or the segment's base image. */
static bool has_image(const struct ml *s)
{
	struct sl_cons_snapshot sn;
	return s->log->snapshot != NULL && s->log->snapshot(s->log->ctx, &sn) == 0 && sn.len > 0;
}

/* This replica's whole state is in its log (no snapshot, nothing compacted): a replica
 * that holds nothing gets all of it from the streams, and needs no image from here. */
static bool state_in_log(const struct ml *s)
{
	return !has_image(s) && s->log->first_index(s->log->ctx) <= 1 && s->own_floor == 0;
}

/* Recovery: the per-origin positions come back from the log (every entry names its origin
 * and origin index) on top of the snapshot's vector; nothing else is persisted. */
static int recover(struct ml *s)
{
	const struct sl_cons_log *l = s->log;
	uint64_t first = l->first_index(l->ctx), last = l->last_index(l->ctx);
	if (first == 0)
		first = 1;
	uint64_t vec[MAXP] = {0};
	struct sl_cons_snapshot sn;
	bool have_snap = l->snapshot != NULL && l->snapshot(l->ctx, &sn) == 0 && sn.len > 0;
	if (have_snap && snap_vec(s, sn.data, sn.len, vec) != 0)
		return -EBADMSG;
	bool own_seen = false;
	for (uint64_t i = first; i <= last; i++) {
		struct sl_cons_entry raw, e;
		if (l->entry(l->ctx, i, &raw) != 0 || ehdr_get(&raw, &e) != 0)
			return -EBADMSG;
		int sl = slot_of(s, e.origin);
		if (sl < 0)
			return -EBADMSG;
		vec[sl] = max64(vec[sl], e.origin_index);
		s->hlc = max64(s->hlc, e.hlc);
		if (raw.type == SL_CONS_ENTRY_SEAL && !note_end(s, (uint32_t)sl, e.origin_index))
			return -EBADMSG; /* two ends of one stream: not a log of this protocol */
		if (raw.type == SL_CONS_ENTRY_SEAL && (uint32_t)sl == s->me)
			s->seal_local = i;
		if (raw.type == SL_CONS_ENTRY_SEAL && s->seal_first == 0)
			s->seal_first = i;
		if (raw.type == SL_CONS_ENTRY_SEAL)
			s->sealrec[sl] = true;
		if ((uint32_t)sl == s->me) {
			if (!own_seen)
				s->own_floor = e.origin_index - 1;
			own_seen = true;
			s->ring[e.origin_index % s->ring_cap] = (struct own){i, 0};
		}
	}
	memcpy(s->recv, vec, sizeof(vec));
	memcpy(s->dur, vec, sizeof(vec));
	if (!own_seen)
		s->own_floor = vec[s->me];
	s->seal_due = s->seal_due && s->end[s->me] == 0;
	s->last_index = s->logged_index = s->durable_index = last;
	s->applied_index = first - 1; /* the recovered entries go out again for apply */
	/* the state the caller restored: the snapshot's vector, also when the snapshot is a
	 * merge taken at the log's end (first == 1 after a lost disk: the log was kept) */
	memset(s->applied, 0, sizeof(s->applied));
	if (have_snap)
		snap_vec(s, sn.data, sn.len, s->applied);
	return 0;
}

static int ml_create(const struct sl_cons_config *cfg, void **out)
{
	if (cfg->n_voters == 0 || cfg->n_voters > MAXP || cfg->log == NULL || cfg->n_learners > 0)
		return -EINVAL;
	struct ml *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	opts_fill(&s->o, cfg->proto_opts);
	s->group = cfg->group_id;
	s->self = cfg->self;
	s->n = cfg->n_voters;
	memcpy(s->ids, cfg->voters, s->n * sizeof(s->ids[0]));
	int me = slot_of(s, s->self);
	/* one entry of the largest payload fits a batch message */
	if (me < 0 || s->o.ack_copies > s->n ||
	    (uint64_t)BATCH_HDR + BENT_HDR + s->o.max_entry_bytes > s->o.max_msg_bytes) {
		free(s);
		return -EINVAL;
	}
	s->me = (uint32_t)me;
	s->log = cfg->log;
	s->ring_cap = s->o.retention_entries + 1;
	s->ring = calloc(s->ring_cap, sizeof(*s->ring));
	s->ud = calloc(s->o.max_undurable, sizeof(*s->ud));
	s->pend = calloc(s->o.max_pending, sizeof(*s->pend));
	s->reads = calloc(s->o.max_reads, sizeof(*s->reads));
	s->ob_cap = s->o.max_undurable;
	s->ob = calloc(s->ob_cap, sizeof(*s->ob));
	s->pcap = s->o.max_batch_bytes * 4 + s->ob_cap * SL_ML_ENTRY_HDR;
	s->pbuf = malloc(s->pcap);
	s->msgs_cap = 4 * s->n * (s->o.window_batches + 4) + 4 * s->o.max_reads;
	s->msgs = calloc(s->msgs_cap, sizeof(*s->msgs));
	/* per peer: a window of batches and one of snapshot chunks, and room to spare */
	uint64_t mcap = (uint64_t)s->n * s->o.window_bytes +
			(uint64_t)s->n * SNAP_WINDOW * s->o.max_msg_bytes +
			4ull * s->n * batch_msg_bytes(&s->o);
	if (mcap > UINT32_MAX) {
		ml_destroy(s);
		return -EINVAL;
	}
	s->mcap = (uint32_t)mcap;
	s->mbuf = malloc(s->mcap);
	s->commit = calloc(s->o.max_apply_entries, sizeof(*s->commit));
	s->acap = s->o.max_batch_bytes * 4;
	s->abuf = malloc(s->acap);
	s->acks = calloc(s->o.max_pending, sizeof(*s->acks));
	s->rreads = calloc(s->o.max_reads, sizeof(*s->rreads));
	bool ok = s->ring && s->ud && s->pend && s->reads && s->ob && s->pbuf && s->msgs &&
		  s->mbuf && s->commit && s->abuf && s->acks && s->rreads;
	for (uint32_t i = 0; i < s->n && ok; i++) {
		struct peer *p = &s->pr[i];
		p->node = s->ids[i];
		p->rto = s->o.rto_ns;
		p->infl = calloc(s->o.window_batches, sizeof(*p->infl));
		ok = p->infl != NULL;
	}
	if (!ok) {
		ml_destroy(s);
		return -ENOMEM;
	}
	int rc = recover(s);
	if (rc != 0) {
		ml_destroy(s);
		return rc;
	}
	for (uint32_t i = 0; i < s->n; i++) {
		struct peer *p = &s->pr[i];
		/* where it stands is asked first (acked 0: it counts for no ack level); until
		 * then it pins nothing, and if the log moved past it meanwhile it gets a
		 * snapshot. Assuming it held what the log lost would be wrong: a peer in
		 * 'needs snapshot' did not. */
		p->probing = true;
		p->acked = 0;
		p->cursor = 1;
	}
#ifndef SL_MUTATION_ML_REJOIN_REUSE
	s->rejoin = cfg->rejoin && s->n > 1; /* a group of one has no one to ask */
#else
	s->rejoin = false; /* the deliberate bug: a wiped replica reuses its old indexes */
#endif
	/* it holds nothing, not even the segment's base image: it asks for an image (a
	 * snapshot merged before a crash came back with recover(): none needed then) */
#ifdef SL_MUTATION_ML_JOIN_NO_IMAGE
	s->need_img = false; /* deliberate bug: a joiner takes no image, only the streams */
#else
	s->need_img = s->rejoin && !has_image(s);
#endif
	*out = s;
	return 0;
}

/* ---- proposals ---- */

static bool room_for(const struct ml *s, uint32_t len)
{
	return s->ud_len < s->o.max_undurable && s->ob_n < s->ob_cap &&
	       s->pcap - s->pused >= SL_ML_ENTRY_HDR + len;
}

/* Append one entry to the local log (outbox to persist); the caller checked room_for. */
static void append(struct ml *s, uint32_t slot, uint64_t oidx, uint64_t hlc, uint64_t session,
		   uint64_t seq, const uint8_t *d, uint32_t len, uint64_t pid, uint32_t type)
{
	uint8_t *p = s->pbuf + s->pused;
	ehdr_put(p, s->ids[slot], oidx, hlc, session, seq);
	if (len > 0)
		memcpy(p + SL_ML_ENTRY_HDR, d, len);
	s->pused += SL_ML_ENTRY_HDR + len;
	uint64_t local = ++s->last_index;
	if (type == SL_CONS_ENTRY_SEAL && s->seal_first == 0)
		s->seal_first = local;
	if (type == SL_CONS_ENTRY_SEAL)
		s->sealrec[slot] = true;
	s->ob[s->ob_n++] = (struct sl_cons_entry){
	    .term = 1, .index = local, .proposal_id = pid, .type = type,
	    .len = SL_ML_ENTRY_HDR + len, .data = p, .origin = s->ids[slot], .origin_index = oidx,
	    .hlc = hlc, .session = session, .session_seq = seq};
	s->ud[(s->ud_head + s->ud_len++) % s->o.max_undurable] = (struct undur){local, oidx, slot};
	s->recv[slot] = oidx;
}

/* A peer pins the log from the first own entry it lacks. Once that holds more than
 * retention_entries own entries, or spans more than retention_entries local entries
 * (other origins' writes pile up behind it), it moves to snapshot catch-up: writes go
 * on and the log can be compacted past it. */
static bool over_retention(const struct ml *s, const struct peer *p, uint64_t avail)
{
	uint64_t need = p->acked + 1;
	if (own_last(s) - p->acked > s->o.retention_entries)
		return true;
	return need <= own_last(s) && need >= avail &&
	       s->last_index - s->ring[need % s->ring_cap].local >= s->o.retention_entries;
}

static void check_retention(struct ml *s)
{
	uint64_t avail = own_avail(s);
	for (uint32_t i = 0; i < s->n; i++) {
		struct peer *p = &s->pr[i];
		if (i != s->me && !p->needs_snap && !p->probing && over_retention(s, p, avail))
			mark_needs_snap(p, &s->st.over_retention);
	}
}

int sl_ml_propose(void *st, uint64_t pid, const uint8_t *data, uint32_t len,
		  const struct sl_ml_prop *prop)
{
	struct ml *s = st;
	if (s->failed)
		return -EIO;
	uint32_t k = prop != NULL && prop->ack_copies ? prop->ack_copies : s->o.ack_copies;
	if (k > s->n)
		return -EINVAL;
	if (len > s->o.max_entry_bytes)
		return -EMSGSIZE;
#ifndef SL_MUTATION_ML_SEAL_LATE
	if (s->end[s->me] != 0 || s->seal_due) {
		/* the segment ends: a write now belongs to the next one */
		s->st.seal_refused++;
		return -EROFS;
	}
#endif /* else deliberate bug: writes go on after this replica's SEAL */
	if (s->rejoin) {
		s->st.rejoin_refused++;
		return -EBUSY; /* its next origin index is not known yet (rejoin_check) */
	}
	if (s->p_len == s->o.max_pending || !room_for(s, len))
		return -ENOBUFS;
	if (s->snap_pending) {
		s->st.busy_refused++;
		return -EBUSY; /* a snapshot waits for what is in flight here to settle */
	}
	uint64_t oidx = own_last(s) + 1;
	uint64_t hlc = hlc_next(s);
	append(s, s->me, oidx, hlc, prop ? prop->session : 0, prop ? prop->session_seq : 0, data,
	       len, pid, SL_CONS_ENTRY_NORMAL);
	s->ring[oidx % s->ring_cap] = (struct own){s->last_index, s->now};
	s->pend[(s->p_head + s->p_len++) % s->o.max_pending] =
		(struct pend){pid, oidx, s->last_index, k, false};
	s->st.proposals++;
	check_retention(s);
	return 0;
}

static int ml_propose(void *st, uint64_t pid, const uint8_t *data, uint32_t len)
{
	return sl_ml_propose(st, pid, data, len, NULL);
}

/* This replica's SEAL: the end of its own stream, acked (pid != 0) once durable on a
 * majority (then no single lost disk takes the end away). */
static void append_seal(struct ml *s, uint64_t pid, const uint8_t *data, uint32_t len)
{
	uint64_t oidx = own_last(s) + 1;
	append(s, s->me, oidx, hlc_next(s), 0, 0, data, len, pid, SL_CONS_ENTRY_SEAL);
	s->ring[oidx % s->ring_cap] = (struct own){s->last_index, s->now};
	if (pid != 0)
		s->pend[(s->p_head + s->p_len++) % s->o.max_pending] =
			(struct pend){pid, oidx, s->last_index, s->n / 2 + 1, false};
	s->end[s->me] = oidx;
	s->seal_local = s->last_index;
	s->seal_due = false;
	s->st.seals++;
	s->dirty = true;
}

/* An end known here without its SEAL entry in the log (learned from a STATE, or the
 * stream came in a snapshot: its own after a lost disk too) lives in memory only, and a
 * restart of every replica that knows it would forget it: once the stream is here up to
 * its end, the SEAL is recorded in the log, at the same origin index (the same entry as
 * far as peers go; handed out for apply as a no-op). */
static void record_ends(struct ml *s)
{
	for (uint32_t o = 0; o < s->n; o++) {
		uint64_t end = s->end[o];
		if (end == 0 || s->sealrec[o] || s->recv[o] != end || !room_for(s, 0))
			continue;
		append(s, o, end, hlc_next(s), 0, 0, NULL, 0, 0, SL_CONS_ENTRY_SEAL);
		if (o == s->me) {
			s->ring[end % s->ring_cap] = (struct own){s->last_index, s->now};
			s->seal_local = s->last_index;
		}
	}
}

static int ml_seal(void *st, uint64_t pid, const uint8_t *data, uint32_t len)
{
	struct ml *s = st;
	if (s->failed)
		return -EIO;
	if (s->end[s->me] != 0)
		return -EALREADY;
	if (len > s->o.max_entry_bytes)
		return -EMSGSIZE;
	if (s->rejoin || s->snap_pending)
		return -EBUSY; /* its next origin index is not known / a snapshot settles */
	if (s->p_len == s->o.max_pending || !room_for(s, len))
		return -ENOBUFS;
	append_seal(s, pid, data, len);
	return 0;
}

/* A peer's stream ended: this one ends too, as soon as it can append (an empty SEAL). */
static void seal_if_due(struct ml *s)
{
	if (s->failed || s->snap_pending)
		return;
	if (s->seal_due && s->end[s->me] == 0 && !s->rejoin && room_for(s, 0))
		append_seal(s, 0, NULL, 0);
	record_ends(s);
}

/* Every stream applied up to its end: the whole segment is here (status.sealed_index). */
static void check_sealed(struct ml *s)
{
	if (s->sealed_at != 0)
		return;
	for (uint32_t o = 0; o < s->n; o++)
		if (s->end[o] == 0 || s->applied[o] < s->end[o])
			return;
	s->sealed_at = max64(s->applied_index, 1);
}

uint64_t sl_ml_last_own(void *st) { return own_last(st); }

/* ---- messages from peers ---- */

static int bad(struct ml *s)
{
	s->st.msgs_bad++;
	return -EBADMSG;
}

static int on_batch(struct ml *s, uint32_t from, uint16_t flags, const uint8_t *b, uint32_t len)
{
	if (len < BATCH_HDR)
		return bad(s);
	uint64_t first = sl_get_u64(b + HDR);
	uint32_t n = sl_get_u32(b + HDR + 8);
	uint32_t origin = sl_get_u32(b + HDR + 12);
	if (origin != s->ids[from] || first == 0 || first > PEER_VALUE_MAX || n == 0 ||
	    n > (len - BATCH_HDR) / BENT_HDR)
		return bad(s); /* each replica ships only its own stream */
	/* validate every entry before taking any */
	uint32_t off = BATCH_HDR;
	for (uint32_t i = 0; i < n; i++) {
		if (len - off < BENT_HDR)
			return bad(s);
		uint32_t el = sl_get_u32(b + off + 24);
		if (el > s->o.max_entry_bytes || el > len - off - BENT_HDR ||
		    sl_get_u64(b + off) > PEER_VALUE_MAX)
			return bad(s);
		off += BENT_HDR + el;
	}
	if (off != len)
		return bad(s);
	/* a batch ending with the origin's SEAL says so (F_BSEAL); its end is one index */
	uint64_t last_oi = first + n - 1, end = s->end[from];
	bool bseal = (flags & F_BSEAL) != 0;
	if ((bseal && end != 0 && last_oi != end) ||
	    (!bseal && end != 0 && first <= end && last_oi >= end))
		return bad(s);
	s->st.batches_received++;
	if (s->pr[from].rejoining) {
		/* it lost its disk: a batch now is of its lost life (delayed in the network),
		 * whose indexes its new stream may take again (it ships none while rejoining) */
		s->st.rejoin_batches_dropped++;
		return 0;
	}
	if (s->snap_pending) {
		s->st.busy_dropped += n; /* resent once this replica says where it stands */
		return 0;
	}
	uint64_t ne = s->recv[from] + 1;
	if (first > ne) {
#ifndef SL_MUTATION_ML_NO_INDEX_CHECK
		/* a gap (a lost or reordered batch): apply nothing, tell the sender where to
		 * resume */
		s->st.gap_batches++;
		s->st.nacks_sent++;
		want_state(s, from, F_NACK);
		return 0;
#else
		s->recv[from] = first - 1; /* the deliberate bug: the gap is skipped */
		ne = first;
#endif
	}
	if (first + n - 1 < ne) {
		s->st.stale_batches++;
		want_state(s, from, 0); /* duplicate or late: ack again */
		return 0;
	}
	off = BATCH_HDR;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t hlc = sl_get_u64(b + off);
		uint32_t el = sl_get_u32(b + off + 24);
		uint64_t oi = first + i;
		bool seal = bseal && oi == last_oi;
		if (oi < ne) {
			s->st.stale_entries++;
		} else if (end != 0 && oi > end) {
			s->st.past_end_dropped += n - i; /* past the end of its stream: never taken */
			break;
		} else if (!room_for(s, el)) {
			s->st.busy_dropped += n - i; /* the sender resends from what we ack */
			break;
		} else {
			append(s, from, oi, hlc, sl_get_u64(b + off + 8), sl_get_u64(b + off + 16),
			       b + off + BENT_HDR, el, 0,
			       seal ? SL_CONS_ENTRY_SEAL : SL_CONS_ENTRY_NORMAL);
			if (seal)
				note_end(s, from, oi);
			s->hlc = max64(s->hlc, hlc);
			s->st.entries_applied_remote++;
		}
		off += BENT_HDR + el;
	}
	want_state(s, from, 0);
	check_retention(s);
	return 0;
}

static bool confirm_reads(struct ml *s);

/* A rejoining replica is caught up once a majority of the group, itself not counted (it
 * knows nothing), answered a round of this life, and it holds again (merged from their
 * snapshots) as much of its own stream as the most any of them holds, and of every other
 * stream as much as any of them held durably when it came back: its next origin index
 * then follows every one it ever gave that survives, and its copies and answers count
 * again only once it holds what its lost disk held of anything a majority had
 * (docs/multileader.md, "Rejoin"). */
static void rejoin_check(struct ml *s)
{
	if (!s->rejoin || s->snap_pending || s->need_img)
		return;
	uint32_t need = min64(s->n / 2 + 1, s->n - 1), answers = 0;
	uint64_t fence = 0;
	bool behind = false;
	for (uint32_t i = 0; i < s->n; i++) {
		if (i == s->me || s->pr[i].rj_echo == 0)
			continue;
		answers++;
		fence = max64(fence, s->pr[i].rj_held);
		for (uint32_t o = 0; o < s->n; o++)
			behind |= o != s->me && s->dur[o] < s->pr[i].rj_dur[o];
	}
	if (answers < need || own_last(s) < fence || behind)
		return;
	/* its stream's end, learned from its peers, is in its own log durably first: a
	 * restart then still refuses writes (seal_if_due records it) */
	if (s->end[s->me] != 0 && (s->seal_local == 0 || s->durable_index < s->seal_local))
		return;
	s->rejoin = false;
	for (uint32_t i = 0; i < s->n; i++)
		if (i != s->me)
			want_state(s, i, 0); /* without F_REJOIN: its batches are taken again */
	s->dirty = true;
}

static int on_state(struct ml *s, uint32_t from, uint16_t flags, const uint8_t *b, uint32_t len)
{
	if (len < STATE_HDR)
		return bad(s);
	uint64_t round = sl_get_u64(b + HDR);
	uint64_t echo = sl_get_u64(b + HDR + 8);
	uint64_t ne = sl_get_u64(b + HDR + 16);
	uint32_t n = b[HDR + 24];
	uint32_t want = STATE_HDR + ((flags & F_ENDS) ? 20u : 12u) * n;
	if (n > MAXP || len != want || ne == 0 || ne > PEER_VALUE_MAX ||
	    round > PEER_VALUE_MAX || echo > PEER_VALUE_MAX)
		return bad(s);
	/* only a rejoining replica asks for an image; one that says it needs none to give
	 * does not rejoin (and does not ask at once) */
	if (((flags & F_WANTIMG) && !(flags & F_REJOIN)) ||
	    ((flags & F_NOIMG) && (flags & F_REJOIN)))
		return bad(s);
	uint64_t vec[MAXP] = {0}, ends[MAXP] = {0};
	for (uint32_t i = 0; i < n; i++) {
		int sl = slot_of(s, sl_get_u32(b + STATE_HDR + 12 * i));
		uint64_t v = sl_get_u64(b + STATE_HDR + 12 * i + 4);
		uint64_t e = (flags & F_ENDS) ? sl_get_u64(b + STATE_HDR + 12 * n + 8 * i) : 0;
		if (sl < 0 || v > PEER_VALUE_MAX || e > PEER_VALUE_MAX)
			return bad(s);
		vec[sl] = v;
		ends[sl] = e;
	}

	/* it cannot hold more of this replica's stream than there is, except while this
	 * replica rejoins: then its lost disk held more, and that is what it asks for */
	if ((ne - 1 > own_last(s) && !s->rejoin) || vec[s->me] > ne - 1)
		return bad(s);
	/* the ends it knows: one that contradicts an end known here, or this replica's own
	 * stream (more of it is here than that end), is refused and counted */
	for (uint32_t o = 0; o < s->n; o++) {
		if (ends[o] == 0)
			continue;
		bool mine_past = o == s->me && s->end[o] == 0 && own_last(s) > ends[o];
		if (mine_past || !note_end(s, o, ends[o]))
			s->st.msgs_bad++;
	}
	struct peer *p = &s->pr[from];
	if (s->rejoin && (flags & F_RESP) && s->rj_round > 0 && echo >= s->rj_round &&
	    echo <= s->round) {
		/* an answer to a round of this life: the latest one says what it holds now */
		if (p->rj_echo == 0)
			memcpy(p->rj_dur, vec, sizeof(vec));
		if (echo > p->rj_echo)
			p->rj_held = ne - 1;
		else
			p->rj_held = max64(p->rj_held, ne - 1);
		p->rj_echo = echo;
	}
	if ((flags & F_NOIMG) && s->need_img) {
		/* its state is all in its log: the streams bring everything, no image needed */
		s->need_img = false;
		s->dirty = true;
	}
	/* for shipping, what exists here bounds where it stands: past it (this replica
	 * rejoining) its cursor would skip the next own entries if it then lost its tail */
	ne = min64(ne, own_last(s) + 1);
	uint64_t held = min64(vec[s->me], own_last(s)); /* of what exists here */
	if (flags & F_REJOIN) {
		/* it lost its disk: what it reports now is all it holds, so its copies count
		 * for no more (ack levels, CAD); it resumes from where it says */
		if (!p->rejoining) {
			p->cursor = ne;
			infl_clear(p);
		}
		p->rejoining = true;
		memcpy(p->dur, vec, sizeof(vec));
		p->acked = held;
		/* it holds no image (a joiner, a wiped disk): it gets this replica's snapshot
		 * (holding the segment's base image), or hears that it needs none (this state is
		 * all in the log, which the streams bring) */
		p->want_img = (flags & F_WANTIMG) != 0;
		if (p->want_img && !p->needs_snap && state_in_log(s)) {
			p->want_img = false;
			want_state(s, from, F_NOIMG);
			s->st.rejoin_noimage++;
		}
		/* it lacks some of its own stream held here: only a snapshot gives it back
		 * (only an origin ships its stream, and its log is gone) */
		if (s->recv[from] > vec[from])
			mark_needs_snap(p, &s->st.rejoin_snapshots);
		else if (p->want_img)
			mark_needs_snap(p, &s->st.rejoin_images);
	} else {
		p->rejoining = false;
		p->want_img = false;
		for (uint32_t i = 0; i < s->n; i++)
			p->dur[i] = max64(p->dur[i], vec[i]);
		p->acked = max64(p->acked, held);
	}
	if ((flags & F_NACK) && ne - 1 < p->acked)
		p->acked = ne - 1; /* it lost what it acknowledged (a lost disk, or an old nack) */
	if (flags & F_NACK)
		s->st.nacks_received++;
	s->dirty = true;
	if (p->needs_snap) {
		if (ne >= own_avail(s) && !over_retention(s, p, own_avail(s)) &&
		    !(p->rejoining && (s->recv[from] > vec[from] || p->want_img))) {
			p->needs_snap = false; /* back on the stream */
			p->tx_active = false;
			p->probing = false;
			p->cursor = ne;
			infl_clear(p);
			s->st.snapshot_catchups++;
		}
	} else if (p->probing) {
		p->probing = false;
		p->cursor = ne;
		infl_clear(p);
	} else {
		/* batches it received entirely leave the window; progress resets the backoff */
		while (p->in > 0 && p->infl[p->ih].last < ne) {
			p->ibytes -= p->infl[p->ih].bytes;
			p->ih = (p->ih + 1) % s->o.window_batches;
			p->in--;
			p->rto = s->o.rto_ns;
		}
		/* a nack, or, once this stream is sealed and nothing is in flight that could
		 * still fill it, a peer that lacks what was shipped to it (it lost received
		 * entries that were not durable yet in a crash): a sealed stream sends no
		 * more batches, so the gap that would bring the nack never shows */
		bool lacks = (flags & F_NACK) || (p->in == 0 && s->end[s->me] != 0);
		if (lacks && ne < p->cursor &&
		    !(ne == p->nack_ne && s->now < p->nack_ns + p->rto)) {
			p->cursor = ne; /* rewind: catch up from the log */
			infl_clear(p);
			p->nack_ne = ne;
			p->nack_ns = s->now;
			s->st.rewinds++;
		} else if (ne > p->cursor) {
			p->cursor = ne; /* it has more than shipped (a snapshot from elsewhere) */
			infl_clear(p);
		}
	}
	if (flags & F_REQ) {
		want_state(s, from, F_RESP);
		p->answer_round = round; /* the latest asked (rounds restart with the asker) */
	}
	if ((flags & F_RESP) && echo > s->round) {
		s->st.stale_answers++; /* answers a round of an earlier life of this replica */
	} else if ((flags & F_RESP) && echo > p->resp_round) {
		p->resp_round = echo;
		confirm_reads(s);
	}
	rejoin_check(s);
	return 0;
}

static void send_snap_ack(struct ml *s, uint32_t sl, uint16_t flags, uint64_t epoch,
			  uint64_t index, uint32_t held)
{
	uint8_t *p = msg_start(s, s->ids[sl], SNAP_ACK_LEN, M_SNAP_ACK, flags);
	if (p == NULL)
		return;
	sl_put_u64(p + HDR, epoch);
	sl_put_u64(p + HDR + 8, index);
	sl_put_u32(p + HDR + 16, held);
	msg_finish(s, SNAP_ACK_LEN);
}

/* Room for `need` bytes of the image being received: the buffer grows with the chunks
 * (doubling, up to the image's size), never to max_snapshot_bytes ahead of them. The
 * only allocation after create(), on this rare path. */
static bool rx_reserve(struct ml *s, uint32_t need, uint32_t total)
{
	if (need <= s->rx_cap)
		return true;
	uint64_t cap = max64(need, max64(2ull * s->rx_cap, s->o.max_msg_bytes));
	cap = min64(cap, total);
	uint8_t *b = realloc(s->rx_buf, cap);
	if (b == NULL)
		return false;
	s->rx_buf = b;
	s->rx_cap = (uint32_t)cap;
	return true;
}

/* Does a snapshot with this vector hold anything this replica lacks? */
static bool snap_newer(const struct ml *s, const uint64_t *vec)
{
	bool newer = false;
	for (uint32_t i = 0; i < s->n; i++)
		newer |= vec[i] > s->recv[i];
	return newer;
}

/* A chunk of a peer's snapshot. One image is assembled at a time, its chunks in order
 * only; a gap, or a chunk of another image of the same sender at an offset other than 0,
 * is answered with the bytes held (F_REJECT) so that the sender goes back. A new image
 * from the same sender supersedes a half-received one; another sender's waits until the
 * image being received is merged or idle for rto_max_ns. The whole image, validated, is
 * merged in the next ready. */
static int on_snap(struct ml *s, uint32_t from, const uint8_t *b, uint32_t len)
{
	if (len < SNAP_HDR)
		return bad(s);
	uint64_t epoch = sl_get_u64(b + HDR), index = sl_get_u64(b + HDR + 8);
	uint32_t total = sl_get_u32(b + HDR + 16), off = sl_get_u32(b + HDR + 20);
	uint32_t dl = sl_get_u32(b + HDR + 24);
	if (dl != len - SNAP_HDR || dl == 0 || off > total || dl > total - off || epoch == 0 ||
	    epoch > PEER_VALUE_MAX || index > PEER_VALUE_MAX)
		return bad(s);
	const uint8_t *d = b + SNAP_HDR;
	bool same = (s->rx_active || s->rx_done) && s->rx_from == from && s->rx_epoch == epoch &&
		    s->rx_index == index && s->rx_total == total;
	if (same && (s->rx_done || off < s->rx_next)) {
		send_snap_ack(s, from, 0, epoch, index, s->rx_next); /* a duplicate */
		return 0;
	}
	if (s->snap_pending || (!same && s->rx_active && s->rx_from != from &&
				s->now < s->rx_ns + s->o.rto_max_ns)) {
		/* a whole image waits for its merge, or another sender's is coming in: this
		 * sender resends after its timeout */
		s->st.snapshot_chunks_refused++;
		return 0;
	}
	if (!same && off > 0) {
		s->st.snapshot_chunks_refused++; /* from 0 again (another image, or lost here) */
		send_snap_ack(s, from, F_REJECT, epoch, index, 0);
		return 0;
	}
	if (same && off != s->rx_next) {
		s->st.snapshot_chunks_refused++; /* a gap: a chunk before it was lost */
		send_snap_ack(s, from, F_REJECT, epoch, index, s->rx_next);
		return 0;
	}
	if (!same) { /* off == 0: a new image, superseding any half-received one */
		s->rx_active = s->rx_done = false;
		if (total > s->o.max_snapshot_bytes) {
			s->st.snapshots_refused++;
			return -EMSGSIZE;
		}
		uint64_t vec[MAXP];
		if (snap_vec(s, d, dl, vec) == 0 && !snap_newer(s, vec) && !s->need_img) {
			want_state(s, from, 0); /* nothing new in it: say where this replica is */
			return 0;
		}
		s->rx_active = true;
		s->rx_from = from;
		s->rx_epoch = epoch;
		s->rx_index = index;
		s->rx_total = total;
		s->rx_next = 0;
	}
	if (!rx_reserve(s, off + dl, total)) {
		s->rx_active = false;
		s->st.snapshots_refused++; /* no memory for it */
		return -ENOMEM;
	}
	memcpy(s->rx_buf + off, d, dl);
	s->rx_next = off + dl;
	s->rx_ns = s->now;
	s->st.snapshot_chunks_received++;
	send_snap_ack(s, from, 0, epoch, index, s->rx_next);
	if (s->rx_next < total)
		return 0;
	s->rx_active = false;
	s->rx_done = true; /* later duplicates are acknowledged whole */
	uint64_t vec[MAXP];
	if (snap_vec(s, s->rx_buf, total, vec) != 0)
		return bad(s);
	/* The caller MERGES a multileader snapshot into its state (the LWW join: per key the
	 * winner of both, per origin the higher position), so what this replica holds and
	 * the snapshot lacks (its own newest writes, say) stays: two replicas that both
	 * passed each other's retention each take the other's snapshot. */
	if (!snap_newer(s, vec) && !s->need_img) {
		want_state(s, from, 0);
		return 0;
	}
	memcpy(s->snapvec, vec, sizeof(vec));
	s->snap_pending = true;
	return 0;
}

/* A peer's receipt of snapshot chunks: the window moves on, or (F_REJECT: a gap, or it
 * holds less than it had acknowledged, having started over) the sender goes back to what
 * the peer holds, once per offset: every chunk after a lost one is rejected, and going
 * back for each would resend the window as often. A plain ack below the acknowledged
 * offset is an old one overtaken by a newer (reordered) and changes nothing. */
static int on_snap_ack(struct ml *s, uint32_t from, uint16_t flags, const uint8_t *b,
		       uint32_t len)
{
	if (len != SNAP_ACK_LEN)
		return bad(s);
	uint64_t epoch = sl_get_u64(b + HDR), index = sl_get_u64(b + HDR + 8);
	uint32_t held = sl_get_u32(b + HDR + 16);
	struct peer *p = &s->pr[from];
	if (!p->needs_snap || !p->tx_active || epoch != p->tx_epoch || index != p->tx_index) {
		s->st.snapshot_acks_stale++; /* of another image, or the peer is back on the stream */
		return 0;
	}
	if (held > p->tx_max)
		return bad(s); /* more than was ever sent of it */
	if (held > p->tx_off) {
		p->tx_off = held;
		p->tx_went_back = false;
		if (p->tx_sent < p->tx_off)
			p->tx_sent = p->tx_off; /* acked while a resend was going out */
		p->rto = s->o.rto_ns; /* progress */
		p->snap_ns = s->now;
	} else if ((flags & F_REJECT) && (held < p->tx_off || !p->tx_went_back)) {
		p->tx_off = p->tx_sent = held;
		p->tx_went_back = true;
		p->snap_ns = s->now;
		s->st.snapshot_gobacks++;
	}
	if (p->tx_off < p->tx_total)
		send_snapshot(s, from);
	return 0;
}

static int ml_step(void *st, const struct sl_cons_msg *m)
{
	struct ml *s = st;
	if (m->buf == NULL || m->len < HDR || m->buf[0] != ML_VERSION || m->buf[1] == 0 ||
	    m->buf[1] >= M_END || sl_get_u32(m->buf + 4) != fnv1a(m->buf + 8, m->len - 8))
		return bad(s);
	if (m->len > s->o.max_msg_bytes) { /* no peer with the same options sends it */
		s->st.msgs_too_big++;
		return -EMSGSIZE;
	}
	int from = slot_of(s, m->from);
	if (from < 0 || (uint32_t)from == s->me || m->to != s->self || m->group_id != s->group)
		return bad(s);
	if (s->failed)
		return -EIO;
	uint16_t flags = sl_get_u16(m->buf + 2);
	int rc;
	switch (m->buf[1]) {
	case M_BATCH:
		rc = on_batch(s, (uint32_t)from, flags, m->buf, m->len);
		break;
	case M_STATE:
		rc = on_state(s, (uint32_t)from, flags, m->buf, m->len);
		break;
	case M_SNAP:
		rc = on_snap(s, (uint32_t)from, m->buf, m->len);
		break;
	default:
		rc = on_snap_ack(s, (uint32_t)from, flags, m->buf, m->len);
		break;
	}
	seal_if_due(s);
	check_sealed(s);
	pump(s);
	return rc;
}

/* ---- time, storage ---- */

static void ml_tick(void *st, uint64_t now)
{
	struct ml *s = st;
	if (now > s->now)
		s->now = now;
	if (s->failed)
		return;
	if (s->rejoin && s->now >= s->rj_next) {
		/* rounds of this life (rounds grow with time): only answers to them count. A
		 * new round every heartbeat, so that the latest answer of a peer that crashed
		 * and lost part of what it had answered replaces the old one (rejoin_check) */
		s->round = max64(s->round + 1, s->now);
		if (s->rj_round == 0)
			s->rj_round = s->round;
		s->rj_next = s->now + s->o.heartbeat_ns;
		for (uint32_t i = 0; i < s->n; i++)
			if (i != s->me)
				want_state(s, i, F_REQ);
	}
	check_retention(s);
	bool unconfirmed = false;
	for (uint32_t i = 0; i < s->n_reads; i++)
		unconfirmed |= s->reads[i].kind != RD_RYW && !s->reads[i].confirmed;
	for (uint32_t i = 0; i < s->n; i++) {
		if (i == s->me)
			continue;
		struct peer *p = &s->pr[i];
		if (s->now >= p->hb_due) {
			p->hb_due = s->now + s->o.heartbeat_ns;
			want_state(s, i, (p->probing || p->needs_snap || unconfirmed || s->rejoin)
						 ? F_REQ
						 : 0);
		}
		if (p->needs_snap) {
			if (p->snap_ns == 0 || s->now >= p->snap_ns + p->rto) {
				if (p->tx_active && p->tx_off < p->tx_total) {
					/* unanswered chunks: from what the peer holds, again */
					p->tx_sent = p->tx_off;
					p->tx_went_back = false;
					s->st.snapshot_resends++;
				} else {
					p->tx_active = false; /* whole, yet no STATE: a new image */
				}
				if (p->snap_ns != 0)
					p->rto = min64(p->rto * 2, s->o.rto_max_ns);
				p->snap_ns = s->now;
				send_snapshot(s, i);
			}
			continue;
		}
		if (p->in > 0 && s->now >= p->infl[p->ih].sent_ns + p->rto) {
			/* nothing heard for the oldest batch: resend from it, back off */
			p->cursor = p->infl[p->ih].first;
			infl_clear(p);
			p->rto = min64(p->rto * 2, s->o.rto_max_ns);
			s->st.retransmits++;
		}
	}
	if (s->n_reads > 0)
		s->dirty = true; /* timeouts */
	seal_if_due(s);
	pump(s);
}

static void ml_persisted(void *st, uint64_t term, uint64_t index)
{
	struct ml *s = st;
	(void)term;
	if (s->failed)
		return;
	index = min64(index, s->logged_index);
	if (index <= s->durable_index)
		return;
	s->durable_index = index;
	while (s->ud_len > 0 && s->ud[s->ud_head].local <= index) {
		struct undur *u = &s->ud[s->ud_head];
		s->dur[u->slot] = max64(s->dur[u->slot], u->oidx);
		if (u->slot != s->me)
			want_state(s, u->slot, 0); /* cumulative ack of what is durable */
		s->ud_head = (s->ud_head + 1) % s->o.max_undurable;
		s->ud_len--;
	}
	rejoin_check(s); /* it may hold the peers' streams again now */
	s->dirty = true;
	pump(s);
}

static void ml_storage_failed(void *st, uint64_t index, int err)
{
	struct ml *s = st;
	(void)index;
	(void)err;
	s->failed = true;
	s->dirty = true;
}

/* ---- reads ---- */

static int read_add(struct ml *s, uint64_t id, uint8_t kind)
{
	if (s->failed)
		return -EIO;
	if (s->n_reads == s->o.max_reads)
		return -ENOBUFS;
	struct mread *r = &s->reads[s->n_reads++];
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->kind = kind;
	r->deadline = s->now + s->o.read_timeout_ns;
	s->dirty = true;
	return 0;
}

/* A CAD read is confirmed once a majority (itself included) answered a round at least as
 * new as the read's: any write an earlier CAD read showed is durable on one of them, so
 * the target (the highest durable position known per origin) covers it: monotonic.
 * A sync read is confirmed once EVERY peer answered such a round: each origin then told
 * how far its own stream was durable after the read was asked, and every write
 * acknowledged before that was durable at its origin (at any ack level). */
static bool confirm_reads(struct ml *s)
{
	bool any = false;
	for (uint32_t r = 0; r < s->n_reads; r++) {
		struct mread *rd = &s->reads[r];
		if (rd->kind == RD_RYW || rd->confirmed)
			continue;
		uint32_t votes, need;
		if (rd->kind == RD_SYNC) {
			votes = 1;
			for (uint32_t i = 0; i < s->n; i++)
				votes += i != s->me && s->pr[i].resp_round >= rd->round;
#ifdef SL_MUTATION_SYNC_MAJORITY
			need = s->n / 2 + 1; /* the deliberate bug: a majority's positions only */
#else
			need = s->n;
#endif
		} else {
			/* a replica that lost its disk may lack what an earlier read showed */
			votes = !s->rejoin;
			for (uint32_t i = 0; i < s->n; i++)
				votes += i != s->me && s->pr[i].resp_round >= rd->round &&
					 !s->pr[i].rejoining;
			need = s->n / 2 + 1;
		}
		if (votes < need)
			continue;
		rd->confirmed = true;
		for (uint32_t o = 0; o < s->n; o++) {
			uint64_t t = s->dur[o];
			for (uint32_t i = 0; i < s->n; i++)
				if (i != s->me)
					t = max64(t, s->pr[i].dur[o]);
			rd->target[o] = t;
		}
		any = true;
	}
	return any;
}

static int read_round(struct ml *s, uint64_t id, uint8_t kind)
{
	int rc = read_add(s, id, kind);
	if (rc != 0)
		return rc;
	/* rounds grow with time too, so that an answer still in flight from before a restart
	 * never confirms a read of this life (checked: echo <= round) */
	s->round = max64(s->round + 1, s->now);
	s->reads[s->n_reads - 1].round = s->round;
	if (kind == RD_CAD)
		s->st.reads_cad++;
	else
		s->st.reads_sync++;
	for (uint32_t i = 0; i < s->n; i++)
		if (i != s->me)
			want_state(s, i, F_REQ);
	confirm_reads(s); /* a group of one */
	pump(s);
	return 0;
}

static int ml_read(void *st, uint64_t id)
{
	return read_round(st, id, RD_CAD);
}

int sl_ml_read_sync(void *st, uint64_t id)
{
	return read_round(st, id, RD_SYNC);
}

void sl_ml_wall(void *st, uint64_t wall_ns)
{
	struct ml *s = st;
	/* any u64 of ns stays below PEER_VALUE_MAX as ms << HLC_LOGICAL_BITS */
	s->wall_ns = wall_ns;
}

int sl_ml_read_after(void *st, uint64_t id, uint32_t origin, uint64_t oidx)
{
	struct ml *s = st;
	int sl = slot_of(s, origin);
	if (sl < 0)
		return -EINVAL;
	int rc = read_add(s, id, RD_RYW);
	if (rc != 0)
		return rc;
	s->reads[s->n_reads - 1].slot = (uint32_t)sl;
	s->reads[s->n_reads - 1].target[sl] = oidx;
	s->st.reads_ryw++;
	return 0;
}

/* Per origin, the position durable on a majority: the (n/2+1)-th highest of what this
 * replica and its peers reported durable. */
static uint64_t majority_durable(const struct ml *s, uint32_t o)
{
	uint64_t v[MAXP];
	for (uint32_t i = 0; i < s->n; i++)
		v[i] = i == s->me ? s->dur[o] : s->pr[i].dur[o];
	uint32_t need = s->n / 2 + 1;
	/* selection by counting: the largest value with at least `need` values >= it */
	uint64_t best = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		uint32_t ge = 0;
		for (uint32_t j = 0; j < s->n; j++)
			ge += v[j] >= v[i];
		if (ge >= need && v[i] > best)
			best = v[i];
	}
	return best;
}

static bool read_servable(const struct ml *s, const struct mread *r, const uint64_t *vec)
{
	if (r->kind == RD_RYW)
		return vec[r->slot] >= r->target[r->slot];
	if (!r->confirmed)
		return false;
	if (r->kind == RD_SYNC) { /* what every origin had durable, applied here */
		for (uint32_t o = 0; o < s->n; o++)
			if (vec[o] < r->target[o])
				return false;
		return true;
	}
#ifdef SL_MUTATION_CAD_EARLY
	const bool durable_check = false; /* the deliberate bug: served before majority durable */
#else
	const bool durable_check = true;
#endif
	for (uint32_t o = 0; o < s->n; o++) {
		if (vec[o] < r->target[o])
			return false;
		if (durable_check && vec[o] > majority_durable(s, o))
			return false; /* it would show a write not yet durable on a majority */
	}
	return true;
}

/* ---- ready / advance ---- */

static uint32_t copies(const struct ml *s, uint64_t oidx)
{
	uint32_t c = s->dur[s->me] >= oidx;
	for (uint32_t i = 0; i < s->n; i++)
		c += i != s->me && s->pr[i].acked >= oidx;
	return c;
}

/* A snapshot goes out alone, once everything appended here is durable and applied (its
 * index follows the log's end); meanwhile proposals and batches are refused. */
static bool settled(const struct ml *s)
{
	return s->ob_n == 0 && s->ud_len == 0 && s->applied_index == s->logged_index;
}

static bool ml_has_ready(void *st)
{
	struct ml *s = st;
	if (s->ob_n > 0 || s->n_msgs > 0 || (s->snap_pending && settled(s)))
		return true;
	if (s->failed)
		return s->p_len > 0 || s->n_reads > 0;
	if (s->applied_index < min64(s->durable_index, s->logged_index))
		return true;
	return s->dirty && (s->p_len > 0 || s->n_reads > 0);
}

/* The proposal id of an own entry still awaiting its ack (the host matches what it
 * applies to what it proposed: counts, acks); 0 for peers' entries and recovered ones. */
static uint64_t own_pid(const struct ml *s, const struct sl_cons_entry *e, uint64_t local)
{
	if (e->origin != s->self)
		return 0;
	for (uint32_t k = 0; k < s->p_len; k++) {
		const struct pend *p = &s->pend[(s->p_head + k) % s->o.max_pending];
		if (p->local == local)
			return p->pid;
	}
	return 0;
}

static void ml_ready(void *st, struct sl_cons_ready *rd)
{
	struct ml *s = st;
	memset(rd, 0, sizeof(*rd));
	s->rd_snap = false;
	s->rd_last = s->last_index;
	s->rd_applied_to = s->applied_index;
	memcpy(s->rd_vec, s->applied, sizeof(s->rd_vec));
	rd->msgs = s->msgs;
	rd->n_msgs = s->n_msgs;
	uint32_t na = 0, nr = 0;
	if (s->failed) {
		for (uint32_t i = 0; i < s->p_len; i++) {
			struct pend *p = &s->pend[(s->p_head + i) % s->o.max_pending];
			if (!p->done)
				s->acks[na++] = (struct sl_cons_ack){p->pid, 0, SL_CONS_ACK_STORAGE};
			p->done = true;
		}
		for (uint32_t i = 0; i < s->n_reads; i++)
			s->rreads[nr++] = (struct sl_cons_read){s->reads[i].id, 0, SL_CONS_ACK_STORAGE};
		s->n_reads = 0;
		rd->acks = s->acks;
		rd->n_acks = na;
		rd->reads = s->rreads;
		rd->n_reads = nr;
		s->dirty = false;
		return;
	}
	if (s->snap_pending && settled(s)) {
		/* alone in its ready, at the log's end (everything in the log is applied): the
		 * caller merges it into its state and keeps the log (multileader.h) */
		rd->has_snapshot = true;
		rd->snapshot.index = s->last_index;
		rd->snapshot.term = 1;
		rd->snapshot.conf.n_voters = s->n;
		memcpy(rd->snapshot.conf.voters, s->ids, s->n * sizeof(s->ids[0]));
		rd->snapshot.len = s->rx_total;
		rd->snapshot.data = s->rx_buf;
		s->rd_snap = true;
		return;
	}
	rd->persist = s->ob;
	rd->n_persist = s->ob_n;
	/* committed: the durable prefix of the local log, read back and stripped */
	uint64_t upto = min64(s->durable_index, s->logged_index);
	uint32_t nc = 0, aused = 0;
	for (uint64_t i = s->applied_index + 1; i <= upto && nc < s->o.max_apply_entries; i++) {
		struct sl_cons_entry raw, e;
		if (s->log->entry(s->log->ctx, i, &raw) != 0 || ehdr_get(&raw, &e) != 0 ||
		    slot_of(s, e.origin) < 0) {
			s->failed = true; /* the caller's log lost or garbled a durable entry */
			break;
		}
		if (nc > 0 && s->acap - aused < e.len)
			break;
		uint32_t eo = (uint32_t)slot_of(s, e.origin);
		if (e.type == SL_CONS_ENTRY_SEAL && e.origin_index <= s->rd_vec[eo])
			e.type = SL_CONS_ENTRY_NOOP; /* a record of an end applied already */
		if (e.type == SL_CONS_ENTRY_NORMAL && s->end[eo] != 0 && e.origin_index > s->end[eo]) {
			/* past its origin's SEAL (the rule makes it impossible): never applied */
			s->st.past_seal++;
			e.type = SL_CONS_ENTRY_NOOP;
			e.len = 0;
		}
		if (e.len > 0) {
			memcpy(s->abuf + aused, e.data, e.len);
			e.data = s->abuf + aused;
			aused += e.len;
		}
		e.proposal_id = own_pid(s, &e, i);
		s->commit[nc++] = e;
		uint32_t sl = (uint32_t)slot_of(s, e.origin);
		s->rd_vec[sl] = max64(s->rd_vec[sl], e.origin_index);
		s->rd_applied_to = i;
	}
	rd->committed = s->commit;
	rd->n_committed = nc;
	/* acks: applied here, and durable on as many replicas as the proposal asked */
	for (uint32_t i = 0; i < s->p_len && !s->failed; i++) {
		struct pend *p = &s->pend[(s->p_head + i) % s->o.max_pending];
		if (p->done || p->local > s->rd_applied_to)
			continue;
		if (s->end[s->me] != 0 && p->oidx > s->end[s->me]) {
			s->acks[na++] = (struct sl_cons_ack){p->pid, 0, SL_CONS_ACK_SEALED};
			p->done = true;
		} else if (copies(s, p->oidx) >= p->k) {
			s->acks[na++] = (struct sl_cons_ack){p->pid, p->local, SL_CONS_ACK_OK};
			p->done = true;
		}
	}
	confirm_reads(s);
	uint32_t keep = 0;
	for (uint32_t i = 0; i < s->n_reads; i++) {
		struct mread *r = &s->reads[i];
		if (read_servable(s, r, s->rd_vec)) {
			s->rreads[nr++] = (struct sl_cons_read){r->id, s->rd_applied_to, SL_CONS_ACK_OK};
			s->st.reads_served++;
		} else if (s->now >= r->deadline) {
			s->rreads[nr++] = (struct sl_cons_read){r->id, 0, SL_CONS_ACK_DROPPED};
			s->st.reads_timed_out++;
		} else {
			s->reads[keep++] = *r;
		}
	}
	s->n_reads = keep;
	rd->acks = s->acks;
	rd->n_acks = na;
	rd->reads = s->rreads;
	rd->n_reads = nr;
	s->st.acks_sent += na;
	s->dirty = false;
}

static void ml_advance(void *st, const struct sl_cons_ready *rd)
{
	struct ml *s = st;
	(void)rd;
	s->n_msgs = 0;
	s->mused = 0;
	while (s->p_len > 0 && s->pend[s->p_head].done) {
		s->p_head = (s->p_head + 1) % s->o.max_pending;
		s->p_len--;
	}
	if (s->rd_snap) {
		s->snap_pending = false;
		/* the log stays: own entries in it still go to peers that lack them */
		if (s->snapvec[s->me] > own_last(s))
			s->own_floor = s->snapvec[s->me]; /* it knew more of ours than we held */
		for (uint32_t i = 0; i < s->n; i++)
			s->recv[i] = s->dur[i] = s->applied[i] = max64(s->recv[i], s->snapvec[i]);
		s->st.snapshots_installed++;
		s->need_img = false; /* it holds an image now: the base and what followed */
		for (uint32_t i = 0; i < s->n; i++) {
			if (i == s->me)
				continue;
			want_state(s, i, 0); /* tell every origin where to resume */
			/* this replica's snapshot state changed: an image being sent (perhaps
			 * with the same index and length) starts over under a new id */
			s->pr[i].tx_active = false;
		}
		if (s->rx_cap > s->o.max_msg_bytes) {
			/* merged: a large buffer is not kept idle */
			free(s->rx_buf);
			s->rx_buf = NULL;
			s->rx_cap = 0;
		}
		rejoin_check(s); /* it may hold its own stream (and others') again now */
	} else if (!s->failed) {
		s->ob_n = 0;
		s->pused = 0;
		s->logged_index = s->rd_last;
		s->applied_index = s->rd_applied_to;
		memcpy(s->applied, s->rd_vec, sizeof(s->applied));
	}
	s->rd_snap = false;
	check_sealed(s);
	if (!s->failed)
		seal_if_due(s);
	pump(s);
}

static void ml_status(void *st, struct sl_cons_status *o)
{
	struct ml *s = st;
	memset(o, 0, sizeof(*o));
	o->role = SL_CONS_ROLE_REPLICA;
	o->leader = SL_CONS_NODE_NONE;
	o->term = 1;
	o->commit_index = s->durable_index;
	o->applied_index = s->applied_index;
	o->last_index = s->last_index;
	o->durable_index = s->durable_index;
	o->rejoining = s->rejoin;
	o->sealed_index = s->sealed_at;
}

uint64_t sl_ml_safe_delete(void *st)
{
	struct ml *s = st;
	uint64_t l = min64(s->applied_index, s->durable_index);
	uint64_t avail = own_avail(s);
	for (uint32_t i = 0; i < s->n; i++) {
		const struct peer *p = &s->pr[i];
		if (i == s->me || p->needs_snap || p->probing)
			continue;
		uint64_t need = p->acked + 1;
		if (need > own_last(s) || need < avail)
			continue; /* has everything / beyond the log already (snapshot next) */
		l = min64(l, s->ring[need % s->ring_cap].local - 1);
	}
	/* SEAL entries stay in the log: a restart finds the streams' ends there */
	if (s->seal_first != 0)
		l = min64(l, s->seal_first - 1);
	return l;
}

void sl_ml_stats(void *st, struct sl_ml_stats *out)
{
	struct ml *s = st;
	*out = s->st;
	out->retention_alarm = false;
	for (uint32_t i = 0; i < s->n; i++)
		out->retention_alarm |= i != s->me && s->pr[i].needs_snap;
}

uint32_t sl_ml_peers(void *st, struct sl_ml_peer *out, uint32_t cap)
{
	struct ml *s = st;
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->n && n < cap; i++) {
		const struct peer *p = &s->pr[i];
		if (i == s->me)
			continue;
		out[n++] = (struct sl_ml_peer){p->node, p->acked, p->cursor, own_last(s) - p->acked,
					       p->needs_snap, p->probing};
	}
	return n;
}

uint32_t sl_ml_origins(void *st, struct sl_ml_origin *out, uint32_t cap)
{
	struct ml *s = st;
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->n && n < cap; i++, n++)
		out[n] = (struct sl_ml_origin){s->ids[i], s->recv[i], s->dur[i], s->applied[i],
					       s->end[i]};
	return n;
}

const struct sl_cons_ops sl_cons_multileader_ops = {
	.name = "multileader",
	.create = ml_create,
	.destroy = ml_destroy,
	.propose = ml_propose,
	.step = ml_step,
	.tick = ml_tick,
	.persisted = ml_persisted,
	.storage_failed = ml_storage_failed,
	.has_ready = ml_has_ready,
	.ready = ml_ready,
	.advance = ml_advance,
	.status = ml_status,
	.read = ml_read,
	.seal = ml_seal,
};

/* raft.c - Raft as a pure state machine behind consensus.h (etcd-raft shape): pre-vote and
 * check-quorum elections, pipelined and flow-controlled replication, snapshots, leader
 * transfer, ReadIndex and lease reads, one-server-at-a-time membership with learners.
 * No I/O, clock, threads or globals: time comes from tick(), randomness from cfg->seed,
 * and every buffer is sized at create(). Messages are explicit little-endian, versioned
 * and checksummed (FNV-1a: this library must build without DPDK's CRC). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "raft.h"
#include "sl_assert.h"
#include "sl_le.h"

#define RAFT_MSG_VERSION 1u
#define HDR_BYTES 16u	  /* version u8, type u8, flags u16, checksum u32, term u64 */
#define ENT_HDR_BYTES 13u /* term u64, type u8, len u32 */
#define APPEND_HDR_BYTES (HDR_BYTES + 28u)
#define INFL_CAP 64u   /* append messages in flight per follower */
#define ROUND_RING 64u /* heartbeat rounds whose send time a lease may start from */
#define CONF_VERSION 1u
#define HINT_SCAN_MAX 4096u /* bound on the follower's walk back over a conflicting term */
/* Terms and snapshot indexes a peer may name: far beyond any real log, far below where
 * term + 1 or index + 1 would wrap around. */
#define PEER_VALUE_MAX (UINT64_MAX / 4)
/* Smallest max_msg_bytes: an append with one entry of some bytes, a snapshot message with
 * a full membership. */
#define MSG_BYTES_MIN 256u
/* Snapshot chunks a leader has in flight to one follower (each up to max_msg_bytes). */
#define SNAP_WINDOW 4u

enum msg_type {
	M_PREVOTE = 1,
	M_PREVOTE_RESP,
	M_VOTE,
	M_VOTE_RESP,
	M_APPEND,
	M_APPEND_RESP,
	M_HEARTBEAT,
	M_HEARTBEAT_RESP,
	M_SNAPSHOT,
	M_TIMEOUT_NOW,
	M_SNAP_ACK, /* a follower's receipt of snapshot chunks: the next offset it expects */
	M_TYPE_END,
};
#define F_REJECT 1u
#define F_TRANSFER 2u
/* From a rejoining replica: it votes for no one and its match counts for nothing. From a
 * leader to it: the commit index carried was reached without it (raft.h, rejoin). */
#define F_REJOIN 4u

enum role { R_FOLLOWER, R_PRECANDIDATE, R_CANDIDATE, R_LEADER };
enum pstate { P_PROBE, P_REPLICATE, P_SNAPSHOT };

struct inflight {
	uint64_t last;
	uint64_t sent_ns;
	uint32_t bytes;
};

/* The leader's view of one follower or learner. */
struct progress {
	uint32_t id;
	uint8_t state;
	bool paused; /* probe: one append outstanding */
	uint64_t match, next;
	uint64_t pending_snapshot;
	/* chunked snapshot transfer: bytes the follower acknowledged, bytes sent, image size */
	uint32_t snap_off, snap_sent, snap_total;
	bool snap_any;	    /* a chunk of this image went out (an empty image is one chunk) */
	bool snap_went_back; /* at snap_off already, on a reject: its other rejects are moot */
	uint64_t probe_sent_ns;
	uint64_t last_resp_ns; /* check-quorum */
	bool rejoining;	       /* its last response said F_REJOIN */
	uint64_t rejoin_fence; /* appended once it was known to rejoin: committed without it */
	uint64_t acked_round;  /* ReadIndex and lease */
	struct inflight infl[INFL_CAP];
	uint32_t infl_head, infl_len;
	uint64_t infl_bytes;
};

/* An entry appended here and not yet handed to the caller; data lives in ubuf. */
struct uent {
	uint64_t term;
	uint64_t pid;
	uint32_t type;
	uint32_t len;
	uint32_t off;
};

struct pprop {
	uint64_t pid, index, term;
};

struct pread {
	uint64_t id, index, round; /* index 0: waiting for a commit in this term */
};

struct raft {
	uint64_t group;
	uint32_t self;
	uint64_t et_ns, hb_ns;
	uint32_t max_batch;
	uint64_t max_infl_bytes;
	struct sl_raft_opts o;
	const struct sl_cons_log *log;
	uint64_t rng;

	/* durable state and what the caller has been told to persist */
	uint64_t term;
	uint32_t vote;
	uint64_t commit;
	struct sl_cons_hard_state hs_out;

	uint8_t role;
	uint32_t leader;
	uint64_t now;
	bool ticked;
	uint64_t election_deadline, heartbeat_deadline, check_deadline;
	uint64_t last_contact_ns; /* leader heard from (or boot): votes are ignored until +ET */
	bool contact_pending;	  /* heard since the last tick: stamp it with the next tick */
	uint64_t applied, durable;
	bool failed;
	bool rejoin; /* lost its state: no votes, no campaigns, responses flagged F_REJOIN */
	uint64_t rejoin_target; /* a commit index a leader reached without this replica */

	/* log = [caller's log up to ufirst-1] + unstable entries from ufirst */
	uint64_t base_index, base_term;
	uint64_t ufirst;
	struct uent *u;
	uint32_t un;
	uint8_t *ubuf;
	uint32_t uused;

	struct sl_cons_conf conf, base_conf, applied_conf;
	uint64_t conf_index;
	/* the lowest SEAL entry in the log (0: none): with one there, this replica takes no
	 * proposal; once applied it is the segment's known end (status.sealed_index) */
	uint64_t seal_index;

	uint32_t vote_ids[SL_CONS_MAX_PEERS];
	bool vote_granted[SL_CONS_MAX_PEERS];
	uint32_t n_votes;

	struct progress pr[SL_CONS_MAX_PEERS];
	uint32_t n_pr;
	uint64_t hb_round;
	uint64_t round_ns[ROUND_RING];
	uint32_t transfer_to;
	uint64_t transfer_deadline;
	uint64_t no_lease_term; /* a TimeoutNow went out in this term: no lease until next */
	bool need_bcast;

	struct pprop *props;
	uint32_t props_head, props_len;
	struct pread *reads;
	uint32_t reads_len;

	bool snap_pending;
	struct sl_cons_snapshot snap_in;
	/* a snapshot being received in chunks: from which leader (and term), for which index,
	 * how much of it is here; the image grows in rx_buf up to max_snapshot_bytes */
	bool rx_active;
	uint32_t rx_from;
	uint64_t rx_mterm, rx_index, rx_term;
	struct sl_cons_conf rx_conf;
	uint32_t rx_total, rx_next;
	uint8_t *rx_buf;
	uint32_t rx_cap;

	/* outputs accumulated until the next ready() */
	struct sl_cons_msg *out_msgs;
	uint32_t n_out;
	uint8_t *obuf;
	uint32_t oused;
	bool out_resp;
	struct sl_cons_ack *acks;
	uint32_t n_acks;
	struct sl_cons_read *rreads;
	uint32_t n_rreads;
	struct sl_cons_entry *rd_persist;
	struct sl_cons_entry *rd_commit;
	uint8_t *abuf;
	bool in_ready;
	uint32_t rd_n_persist;
	uint64_t rd_applied_to;

	struct sl_raft_stats st;
};

/* ---- small helpers ---- */

static uint64_t rng_next(struct raft *s)
{
	/* splitmix64: deterministic from the seed, no global state */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static uint32_t quorum(uint32_t n) { return n / 2 + 1; }

static bool in_list(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static bool is_voter(const struct raft *s, uint32_t id)
{
	return in_list(s->conf.voters, s->conf.n_voters, id);
}

static uint64_t last_index(const struct raft *s) { return s->ufirst + s->un - 1; }

/* The largest entry payload this replica accepts: one entry alone in an append message of
 * max_msg_bytes (opts_defaults keeps that above the headers). Proposals, peers' appends
 * and the recovered log are held to it, so a committed entry always fits the apply buffer
 * (max_apply_bytes >= max_msg_bytes). */
static uint32_t entry_limit(const struct sl_raft_opts *o)
{
	return o->max_msg_bytes - APPEND_HDR_BYTES - ENT_HDR_BYTES;
}

static uint32_t max_entry_bytes(const struct raft *s) { return entry_limit(&s->o); }

static int term_at(const struct raft *s, uint64_t idx, uint64_t *t)
{
	if (idx == 0) {
		*t = 0;
		return 0;
	}
	if (idx > last_index(s))
		return -ENOENT;
	if (idx >= s->ufirst) {
		*t = s->u[idx - s->ufirst].term;
		return 0;
	}
	if (idx == s->base_index) {
		*t = s->base_term;
		return 0;
	}
	if (idx < s->base_index || s->log == NULL)
		return -ENOENT;
	return s->log->term(s->log->ctx, idx, t);
}

static uint64_t term_or_zero(const struct raft *s, uint64_t idx)
{
	uint64_t t = 0;
	if (term_at(s, idx, &t) != 0)
		return 0;
	return t;
}

static int entry_at(const struct raft *s, uint64_t idx, struct sl_cons_entry *e)
{
	if (idx == 0 || idx > last_index(s))
		return -ENOENT;
	if (idx >= s->ufirst) {
		const struct uent *u = &s->u[idx - s->ufirst];
		*e =
		    (struct sl_cons_entry){u->term, idx, u->pid, u->type, u->len, s->ubuf + u->off};
		return 0;
	}
	if (idx <= s->base_index || s->log == NULL)
		return -ENOENT;
	int rc = s->log->entry(s->log->ctx, idx, e);
	if (rc == 0)
		e->index = idx;
	return rc;
}

static void reset_election(struct raft *s)
{
	s->election_deadline = s->now + s->et_ns + rng_next(s) % s->et_ns;
}

static bool in_lease(const struct raft *s)
{
	return s->role == R_LEADER || s->contact_pending || s->now < s->last_contact_ns + s->et_ns;
}

/* ---- membership encoding ---- */

static uint32_t conf_bytes(const struct sl_cons_conf *c)
{
	return 2 + 4 * (c->n_voters + c->n_learners);
}

static void conf_put(uint8_t *p, const struct sl_cons_conf *c)
{
	*p++ = (uint8_t)c->n_voters;
	for (uint32_t i = 0; i < c->n_voters; i++, p += 4)
		sl_put_u32(p, c->voters[i]);
	*p++ = (uint8_t)c->n_learners;
	for (uint32_t i = 0; i < c->n_learners; i++, p += 4)
		sl_put_u32(p, c->learners[i]);
}

static int conf_get(const uint8_t *p, uint32_t len, struct sl_cons_conf *c, uint32_t *used)
{
	memset(c, 0, sizeof(*c));
	if (len < 1 || p[0] > SL_CONS_MAX_PEERS)
		return -EBADMSG;
	c->n_voters = p[0];
	uint32_t pos = 1;
	if (len < pos + 4 * c->n_voters + 1)
		return -EBADMSG;
	for (uint32_t i = 0; i < c->n_voters; i++, pos += 4)
		c->voters[i] = sl_get_u32(p + pos);
	c->n_learners = p[pos++];
	if (c->n_learners + c->n_voters > SL_CONS_MAX_PEERS || len < pos + 4 * c->n_learners)
		return -EBADMSG;
	for (uint32_t i = 0; i < c->n_learners; i++, pos += 4)
		c->learners[i] = sl_get_u32(p + pos);
	*used = pos;
	return 0;
}

int sl_raft_conf_decode(const uint8_t *data, uint32_t len, struct sl_cons_conf *out)
{
	uint32_t used;
	if (len < 1 || data[0] != CONF_VERSION)
		return -EBADMSG;
	if (conf_get(data + 1, len - 1, out, &used) != 0 || used != len - 1)
		return -EBADMSG;
	return 0;
}

/* ---- message encoding ---- */

struct wr {
	uint8_t *p;
	uint32_t cap, len;
	bool err;
};

static void w_bytes(struct wr *w, const void *src, uint32_t n)
{
	if (w->err || w->cap - w->len < n) {
		w->err = true;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void w8(struct wr *w, uint8_t v) { w_bytes(w, &v, 1); }

static void w32(struct wr *w, uint32_t v)
{
	uint8_t b[4];
	sl_put_u32(b, v);
	w_bytes(w, b, 4);
}

static void w64(struct wr *w, uint64_t v)
{
	uint8_t b[8];
	sl_put_u64(b, v);
	w_bytes(w, b, 8);
}

struct rd {
	const uint8_t *p;
	uint32_t len, pos;
	bool err;
};

static const uint8_t *r_bytes(struct rd *r, uint32_t n)
{
	if (r->err || r->len - r->pos < n) {
		r->err = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static uint8_t r8(struct rd *r)
{
	const uint8_t *p = r_bytes(r, 1);
	return p ? p[0] : 0;
}

static uint32_t r32(struct rd *r)
{
	const uint8_t *p = r_bytes(r, 4);
	return p ? sl_get_u32(p) : 0;
}

static uint64_t r64(struct rd *r)
{
	const uint8_t *p = r_bytes(r, 8);
	return p ? sl_get_u64(p) : 0;
}

/* ---- debug description (tests, traces): decodes a message without touching a replica ---- */

struct desc {
	char *out;
	size_t cap, len;
};

static void d_printf(struct desc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void d_printf(struct desc *d, const char *fmt, ...)
{
	if (d->cap == 0 || d->len >= d->cap - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(d->out + d->len, d->cap - d->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		d->len = d->len + (size_t)n < d->cap ? d->len + (size_t)n : d->cap - 1;
}

static void d_conf(struct desc *d, const struct sl_cons_conf *c)
{
	d_printf(d, "Voters:(");
	for (uint32_t i = 0; i < c->n_voters; i++)
		d_printf(d, "%s%u", i ? "," : "", c->voters[i]);
	d_printf(d, ") Learners:(");
	for (uint32_t i = 0; i < c->n_learners; i++)
		d_printf(d, "%s%u", i ? "," : "", c->learners[i]);
	d_printf(d, ")");
}

/* A payload as text when it is printable (test scripts propose words), else its size. */
static void d_data(struct desc *d, const uint8_t *p, uint32_t len)
{
	bool text = len <= 64;
	for (uint32_t i = 0; text && i < len; i++)
		text = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\';
	if (text)
		d_printf(d, "\"%.*s\"", (int)len, (const char *)p);
	else
		d_printf(d, "<%u bytes>", len);
}

void sl_raft_entry_describe(uint32_t type, const uint8_t *data, uint32_t len, char *out,
			    size_t cap)
{
	struct desc d = {out, cap, 0};
	if (cap > 0)
		out[0] = '\0';
	struct sl_cons_conf c;
	switch (type) {
	case SL_CONS_ENTRY_NOOP:
		d_printf(&d, "EntryNoop");
		break;
	case SL_CONS_ENTRY_CONF:
		d_printf(&d, "EntryConf ");
		if (sl_raft_conf_decode(data, len, &c) == 0)
			d_conf(&d, &c);
		else
			d_printf(&d, "<undecodable>");
		break;
	case SL_CONS_ENTRY_SEAL:
		d_printf(&d, "EntrySeal ");
		d_data(&d, data, len);
		break;
	default:
		d_printf(&d, "EntryNormal ");
		d_data(&d, data, len);
	}
}

int sl_raft_msg_describe(const uint8_t *buf, uint32_t len, char *out, size_t cap)
{
	static const char *const names[M_TYPE_END] = {
	    [M_PREVOTE] = "MsgPreVote",	   [M_PREVOTE_RESP] = "MsgPreVoteResp",
	    [M_VOTE] = "MsgVote",	   [M_VOTE_RESP] = "MsgVoteResp",
	    [M_APPEND] = "MsgApp",	   [M_APPEND_RESP] = "MsgAppResp",
	    [M_HEARTBEAT] = "MsgHeartbeat", [M_HEARTBEAT_RESP] = "MsgHeartbeatResp",
	    [M_SNAPSHOT] = "MsgSnap",	   [M_TIMEOUT_NOW] = "MsgTimeoutNow",
	    [M_SNAP_ACK] = "MsgSnapAck",
	};
	struct desc d = {out, cap, 0};
	if (cap > 0)
		out[0] = '\0';
	if (len < HDR_BYTES || buf[0] != RAFT_MSG_VERSION || buf[1] == 0 || buf[1] >= M_TYPE_END ||
	    sl_get_u32(buf + 4) != fnv1a(buf + 8, len - 8)) {
		d_printf(&d, "<undecodable message, %u bytes>", len);
		return -EBADMSG;
	}
	uint8_t type = buf[1];
	uint16_t flags = sl_get_u16(buf + 2);
	struct rd r = {buf, len, HDR_BYTES, false};
	d_printf(&d, "%s Term:%" PRIu64, names[type], sl_get_u64(buf + 8));
	switch (type) {
	case M_PREVOTE:
	case M_VOTE: {
		uint64_t li = r64(&r), lt = r64(&r);
		if (!r.err)
			d_printf(&d, " Log:%" PRIu64 "/%" PRIu64, lt, li);
		break;
	}
	case M_APPEND: {
		uint64_t prev = r64(&r), prev_term = r64(&r), commit = r64(&r);
		uint32_t n = r32(&r);
		if (r.err)
			break;
		d_printf(&d, " Log:%" PRIu64 "/%" PRIu64 " Commit:%" PRIu64, prev_term, prev,
			 commit);
		if (n > 0)
			d_printf(&d, " Entries:[");
		for (uint32_t i = 0; i < n && !r.err; i++) {
			uint64_t et = r64(&r);
			uint8_t etype = r8(&r);
			uint32_t elen = r32(&r);
			const uint8_t *data = r_bytes(&r, elen);
			if (r.err)
				break;
			char e[160];
			sl_raft_entry_describe(etype, data, elen, e, sizeof(e));
			d_printf(&d, "%s%" PRIu64 "/%" PRIu64 " %s", i ? ", " : "", et,
				 prev + 1 + i, e);
		}
		if (n > 0)
			d_printf(&d, "]");
		break;
	}
	case M_APPEND_RESP: {
		uint64_t index = r64(&r), hint = r64(&r);
		if (r.err)
			break;
		d_printf(&d, " Index:%" PRIu64, index);
		if (flags & F_REJECT)
			d_printf(&d, " Hint:%" PRIu64, hint);
		break;
	}
	case M_HEARTBEAT: {
		uint64_t c = r64(&r), round = r64(&r);
		if (!r.err)
			d_printf(&d, " Commit:%" PRIu64 " Round:%" PRIu64, c, round);
		break;
	}
	case M_HEARTBEAT_RESP: {
		uint64_t round = r64(&r);
		if (!r.err)
			d_printf(&d, " Round:%" PRIu64, round);
		break;
	}
	case M_SNAPSHOT: {
		uint64_t idx = r64(&r), t = r64(&r);
		struct sl_cons_conf c;
		uint32_t used = 0;
		if (r.err || conf_get(r.p + r.pos, r.len - r.pos, &c, &used) != 0) {
			r.err = true;
			break;
		}
		r_bytes(&r, used);
		uint32_t total = r32(&r), off = r32(&r), dlen = r32(&r);
		const uint8_t *data = r_bytes(&r, dlen);
		if (r.err)
			break;
		d_printf(&d, " Snapshot:%" PRIu64 "/%" PRIu64 " ", t, idx);
		d_conf(&d, &c);
		if (off != 0 || dlen != total) /* a whole image reads as before chunking */
			d_printf(&d, " Chunk:%u+%u/%u", off, dlen, total);
		d_printf(&d, " Data:");
		d_data(&d, data, dlen);
		break;
	}
	case M_SNAP_ACK: {
		uint64_t idx = r64(&r), next = r64(&r);
		if (!r.err)
			d_printf(&d, " Snapshot:%" PRIu64 " Next:%" PRIu64, idx, next);
		break;
	}
	default:
		break;
	}
	if (flags & F_REJECT)
		d_printf(&d, " Rejected");
	if (flags & F_TRANSFER)
		d_printf(&d, " Transfer");
	if (r.err) {
		d_printf(&d, " <truncated>");
		return -EBADMSG;
	}
	return 0;
}

static bool needs_durable_state(uint8_t type)
{
	/* a vote request too: the candidate's term and self-vote must be durable first, or a
	 * restart could make it leader of the same term twice with different entries */
	return type == M_VOTE || type == M_VOTE_RESP || type == M_APPEND_RESP ||
	       type == M_HEARTBEAT_RESP || type == M_SNAP_ACK;
}

/* Start a message in the outbox; false when the outbox is full (the message is lost,
 * which Raft tolerates: everything is retransmitted). */
static bool msg_begin(struct raft *s, struct wr *w, uint8_t type, uint16_t flags, uint64_t term)
{
	uint32_t room = s->o.max_outbox_bytes - s->oused;
	if (s->n_out == s->o.max_outbox_msgs || room < HDR_BYTES) {
		s->st.msgs_dropped_outbox++;
		return false;
	}
	w->p = s->obuf + s->oused;
	w->cap = room < s->o.max_msg_bytes ? room : s->o.max_msg_bytes;
	w->len = 0;
	w->err = false;
	uint8_t h[HDR_BYTES];
	h[0] = RAFT_MSG_VERSION;
	h[1] = type;
	if (s->rejoin &&
	    (type == M_APPEND_RESP || type == M_HEARTBEAT_RESP || type == M_SNAP_ACK))
		flags |= F_REJOIN;
	sl_put_u16(h + 2, flags);
	sl_put_u32(h + 4, 0);
	sl_put_u64(h + 8, term);
	w_bytes(w, h, HDR_BYTES);
	return true;
}

static bool msg_end(struct raft *s, struct wr *w, uint32_t to)
{
	if (w->err) {
		s->st.msgs_dropped_outbox++;
		return false;
	}
	sl_put_u32(w->p + 4, fnv1a(w->p + 8, w->len - 8));
	s->out_msgs[s->n_out++] = (struct sl_cons_msg){s->group, s->self, to, w->len, w->p};
	s->oused += w->len;
	if (needs_durable_state(w->p[1]))
		s->out_resp = true;
	s->st.msgs_sent++;
	return true;
}

static void send_simple(struct raft *s, uint32_t to, uint8_t type, uint16_t flags, uint64_t term,
			uint64_t a, uint64_t b, int n64)
{
	struct wr w;
	if (!msg_begin(s, &w, type, flags, term))
		return;
	if (n64 >= 1)
		w64(&w, a);
	if (n64 >= 2)
		w64(&w, b);
	msg_end(s, &w, to);
}

/* ---- proposals and reads bookkeeping ---- */

static void push_ack(struct raft *s, uint64_t pid, uint64_t index, uint32_t status)
{
	SL_ASSERT(s->n_acks < 2 * s->o.max_pending_proposals);
	s->acks[s->n_acks++] = (struct sl_cons_ack){pid, index, status};
}

static struct pprop *prop_at(struct raft *s, uint32_t i)
{
	return &s->props[(s->props_head + i) % s->o.max_pending_proposals];
}

/* Entries at or after `from` left this log: their proposals' outcome is unknown here. */
static void drop_props_from(struct raft *s, uint64_t from)
{
	while (s->props_len > 0 && prop_at(s, s->props_len - 1)->index >= from) {
		struct pprop *p = prop_at(s, s->props_len - 1);
		push_ack(s, p->pid, 0, SL_CONS_ACK_DROPPED);
		s->props_len--;
	}
}

static void push_read_out(struct raft *s, uint64_t id, uint64_t index, uint32_t status)
{
	SL_ASSERT(s->n_rreads < s->o.max_pending_reads);
	s->rreads[s->n_rreads++] = (struct sl_cons_read){id, index, status};
}

static void fail_reads(struct raft *s, uint32_t status)
{
	for (uint32_t i = 0; i < s->reads_len; i++)
		push_read_out(s, s->reads[i].id, 0, status);
	s->reads_len = 0;
}

/* ---- log mutation ---- */

static void recompute_conf(struct raft *s)
{
	s->conf = s->base_conf;
	s->conf_index = s->base_index;
	for (uint64_t i = last_index(s); i > s->base_index; i--) {
		struct sl_cons_entry e;
		if (entry_at(s, i, &e) != 0) {
			/* the caller compacted its log up to here since create(): the membership
			 * in effect is its snapshot's, not the older base_conf */
			struct sl_cons_snapshot sn;
			if (s->log != NULL && s->log->snapshot != NULL &&
			    s->log->snapshot(s->log->ctx, &sn) == 0 && sn.index >= i) {
				s->conf = sn.conf;
				s->conf_index = sn.index;
			}
			return;
		}
		if (e.type == SL_CONS_ENTRY_CONF &&
		    sl_raft_conf_decode(e.data, e.len, &s->conf) == 0) {
			s->conf_index = i;
			return;
		}
	}
}

static void sync_progress(struct raft *s);

static void truncate_from(struct raft *s, uint64_t idx)
{
	SL_ASSERT(idx > s->base_index && idx <= last_index(s));
	SL_ASSERT(idx > s->commit); /* a committed entry never changes */
	if (idx >= s->ufirst) {
		s->un = (uint32_t)(idx - s->ufirst);
		s->uused = s->un ? s->u[s->un - 1].off + s->u[s->un - 1].len : 0;
	} else {
		s->un = 0;
		s->uused = 0;
		s->ufirst = idx;
	}
	if (s->durable >= idx)
		s->durable = idx - 1;
	drop_props_from(s, idx);
	if (s->conf_index >= idx)
		recompute_conf(s);
	/* it was the lowest SEAL: none is left below idx, so the log is open again (the
	 * seal's proposal was just dropped: its caller seals again) */
	if (s->seal_index >= idx)
		s->seal_index = 0;
	s->st.truncations++;
}

/* Append one entry at last+1; -ENOBUFS when the unstable buffer is full. */
static int append_one(struct raft *s, uint64_t term, uint32_t type, const uint8_t *data,
		      uint32_t len, uint64_t pid)
{
	if (s->un == s->o.max_unstable_entries || s->o.max_unstable_bytes - s->uused < len)
		return -ENOBUFS;
	struct uent *u = &s->u[s->un++];
	*u = (struct uent){term, pid, type, len, s->uused};
	if (len > 0)
		memcpy(s->ubuf + s->uused, data, len);
	s->uused += len;
	if (type == SL_CONS_ENTRY_SEAL && s->seal_index == 0)
		s->seal_index = last_index(s);
	if (type == SL_CONS_ENTRY_CONF) {
		struct sl_cons_conf c;
		if (sl_raft_conf_decode(data, len, &c) == 0) {
			s->conf = c;
			s->conf_index = last_index(s);
			s->st.conf_changes++;
			if (s->role == R_LEADER)
				sync_progress(s);
		}
	}
	return 0;
}

/* ---- roles ---- */

static void clear_votes(struct raft *s) { s->n_votes = 0; }

static void become_follower(struct raft *s, uint64_t term, uint32_t leader)
{
	if (s->role == R_LEADER)
		fail_reads(s, SL_CONS_ACK_NOT_LEADER);
	if (term > s->term) {
		s->term = term;
		s->vote = SL_CONS_NODE_NONE;
	}
	s->role = R_FOLLOWER;
	s->leader = leader;
	s->transfer_to = SL_CONS_NODE_NONE;
	s->need_bcast = false;
	clear_votes(s);
	reset_election(s);
}

static struct progress *find_pr(struct raft *s, uint32_t id)
{
	for (uint32_t i = 0; i < s->n_pr; i++)
		if (s->pr[i].id == id)
			return &s->pr[i];
	return NULL;
}

static void pr_reset(struct raft *s, struct progress *p, uint32_t id)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->state = P_PROBE;
	p->next = last_index(s) + 1;
	p->last_resp_ns = s->now;
}

/* Keep one progress per member other than self, after a membership change. */
static void sync_progress(struct raft *s)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->n_pr; i++) {
		uint32_t id = s->pr[i].id;
		if (in_list(s->conf.voters, s->conf.n_voters, id) ||
		    in_list(s->conf.learners, s->conf.n_learners, id)) {
			if (k != i)
				s->pr[k] = s->pr[i];
			k++;
		}
	}
	s->n_pr = k;
	const uint32_t *lists[2] = {s->conf.voters, s->conf.learners};
	uint32_t lens[2] = {s->conf.n_voters, s->conf.n_learners};
	for (int l = 0; l < 2; l++)
		for (uint32_t i = 0; i < lens[l]; i++) {
			uint32_t id = lists[l][i];
			if (id != s->self && find_pr(s, id) == NULL) {
				SL_ASSERT(s->n_pr < SL_CONS_MAX_PEERS);
				pr_reset(s, &s->pr[s->n_pr++], id);
			}
		}
}

static void send_append_all(struct raft *s);
static void maybe_commit(struct raft *s);

static void become_leader(struct raft *s)
{
	s->role = R_LEADER;
	s->leader = s->self;
	s->n_pr = 0;
	sync_progress(s);
	for (uint32_t i = 0; i < s->n_pr; i++)
		pr_reset(s, &s->pr[i], s->pr[i].id);
	s->heartbeat_deadline = s->now;
	s->check_deadline = s->now + s->et_ns;
	s->transfer_to = SL_CONS_NODE_NONE;
	s->reads_len = 0;
	s->st.leader_terms++;
	/* the no-op of this term: commits everything before it (and is what a config change
	 * and ReadIndex wait for) */
	if (append_one(s, s->term, SL_CONS_ENTRY_NOOP, NULL, 0, 0) != 0) {
		become_follower(s, s->term, SL_CONS_NODE_NONE);
		return;
	}
	s->need_bcast = true;
	maybe_commit(s);
}

static uint32_t count_votes(const struct raft *s, bool granted)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->n_votes; i++)
		if (s->vote_granted[i] == granted && is_voter(s, s->vote_ids[i]))
			n++;
	return n;
}

static void record_vote(struct raft *s, uint32_t from, bool granted)
{
	for (uint32_t i = 0; i < s->n_votes; i++)
		if (s->vote_ids[i] == from)
			return;
	if (s->n_votes == SL_CONS_MAX_PEERS)
		return;
	s->vote_ids[s->n_votes] = from;
	s->vote_granted[s->n_votes++] = granted;
}

static void become_candidate(struct raft *s, bool transfer);

/* Check the tally of a (pre-)election after a vote was recorded. */
static void tally(struct raft *s)
{
	uint32_t q = quorum(s->conf.n_voters);
	if (count_votes(s, true) >= q) {
		if (s->role == R_PRECANDIDATE)
			become_candidate(s, false);
		else
			become_leader(s);
	} else if (count_votes(s, false) > s->conf.n_voters - q) {
		become_follower(s, s->term, SL_CONS_NODE_NONE);
	}
}

static void request_votes(struct raft *s, uint8_t type, uint64_t term, uint16_t flags)
{
	uint64_t li = last_index(s);
	uint64_t lt = term_or_zero(s, li);
	for (uint32_t i = 0; i < s->conf.n_voters; i++)
		if (s->conf.voters[i] != s->self)
			send_simple(s, s->conf.voters[i], type, flags, term, li, lt, 2);
}

static void become_candidate(struct raft *s, bool transfer)
{
	s->role = R_CANDIDATE;
	s->term++;
	s->vote = s->self;
	s->leader = SL_CONS_NODE_NONE;
	clear_votes(s);
	reset_election(s);
	s->st.elections++;
	record_vote(s, s->self, true);
	request_votes(s, M_VOTE, s->term, transfer ? F_TRANSFER : 0);
	tally(s);
}

static void become_precandidate(struct raft *s)
{
	s->role = R_PRECANDIDATE;
	s->leader = SL_CONS_NODE_NONE;
	clear_votes(s);
	reset_election(s);
	s->st.pre_votes++;
	record_vote(s, s->self, true);
	/* the pre-vote asks "would you vote for me in term+1" without bumping our term, so a
	 * partitioned replica cannot disrupt a healthy group when it comes back */
	request_votes(s, M_PREVOTE, s->term + 1, 0);
	tally(s);
}

/* ---- replication (leader) ---- */

static void infl_clear(struct progress *p)
{
	p->infl_head = p->infl_len = 0;
	p->infl_bytes = 0;
}

static void infl_free_to(struct progress *p, uint64_t idx)
{
	while (p->infl_len > 0 && p->infl[p->infl_head].last <= idx) {
		p->infl_bytes -= p->infl[p->infl_head].bytes;
		p->infl_head = (p->infl_head + 1) % INFL_CAP;
		p->infl_len--;
	}
}

static void to_probe(struct progress *p, uint64_t next)
{
	p->state = P_PROBE;
	p->paused = false;
	p->next = next;
	infl_clear(p);
}

/* F_REJOIN on a message to a rejoining follower when the commit index it carries is one
 * reached without that follower. */
static uint16_t rejoin_flag(const struct progress *p, uint64_t commit)
{
	return p->rejoining && commit >= p->rejoin_fence ? F_REJOIN : 0;
}

/* Image bytes one snapshot chunk carries: a message of max_msg_bytes with the header,
 * index, term, membership, total, offset and length around them. */
static uint32_t snap_chunk_bytes(const struct raft *s, const struct sl_cons_conf *c)
{
	return s->o.max_msg_bytes - HDR_BYTES - 16u - conf_bytes(c) - 12u;
}

/* Snapshot transfer, in chunks: the latest snapshot from the caller's log (a newer one
 * than the image being sent starts over), as many chunks as the window allows beyond what
 * the follower acknowledged (M_SNAP_ACK). The follower installs the image once it holds
 * all of it and answers with an append response, which ends P_SNAPSHOT. True when a
 * chunk went out. */
static bool send_snapshot(struct raft *s, struct progress *p)
{
	struct sl_cons_snapshot snap;
	if (s->log == NULL || s->log->snapshot == NULL ||
	    s->log->snapshot(s->log->ctx, &snap) != 0 || snap.index == 0)
		return false;
	if (p->state != P_SNAPSHOT || p->pending_snapshot != snap.index ||
	    p->snap_total != snap.len) {
		p->state = P_SNAPSHOT;
		p->pending_snapshot = snap.index;
		p->snap_total = snap.len;
		p->snap_off = p->snap_sent = 0;
		p->snap_any = p->snap_went_back = false;
		p->probe_sent_ns = s->now;
		infl_clear(p);
		s->st.snapshots_sent++;
	}
	uint8_t cb[2 + 4 * SL_CONS_MAX_PEERS * 2];
	conf_put(cb, &snap.conf);
	uint32_t room = snap_chunk_bytes(s, &snap.conf);
	bool sent = false;
	/* bounded: SNAP_WINDOW chunks */
	for (uint32_t k = 0; k < SNAP_WINDOW; k++) {
		if ((p->snap_any && p->snap_sent >= p->snap_total) ||
		    p->snap_sent - p->snap_off >= (uint64_t)SNAP_WINDOW * room)
			break;
		uint32_t len = p->snap_total - p->snap_sent < room ? p->snap_total - p->snap_sent
								    : room;
		struct wr w;
		if (!msg_begin(s, &w, M_SNAPSHOT, 0, s->term))
			break;
		w64(&w, snap.index);
		w64(&w, snap.term);
		w_bytes(&w, cb, conf_bytes(&snap.conf));
		w32(&w, snap.len);
		w32(&w, p->snap_sent);
		w32(&w, len);
		w_bytes(&w, snap.data + p->snap_sent, len);
		if (!msg_end(s, &w, p->id))
			break;
		p->snap_sent += len;
		p->snap_any = true;
		p->probe_sent_ns = s->now;
		s->st.snapshot_chunks_sent++;
		s->st.snapshot_bytes_sent += len;
		sent = true;
	}
	return sent;
}

/* Send one append to a follower if its state allows; true when entries went out. */
static bool send_append(struct raft *s, struct progress *p)
{
	if (p->state == P_SNAPSHOT)
		return send_snapshot(s, p);
	if (p->state == P_PROBE && p->paused)
		return false;
	uint64_t last = last_index(s);
	if (p->state == P_REPLICATE &&
	    (p->next > last || p->infl_len == INFL_CAP || p->infl_bytes >= s->max_infl_bytes))
		return false;
	uint64_t prev = p->next - 1, prev_term;
	if (term_at(s, prev, &prev_term) != 0)
		return send_snapshot(s, p);
	struct wr w;
	if (!msg_begin(s, &w, M_APPEND, rejoin_flag(p, s->commit), s->term))
		return false;
	w64(&w, prev);
	w64(&w, prev_term);
	w64(&w, s->commit);
	uint32_t n_pos = w.len;
	w32(&w, 0);
	uint64_t window = s->max_infl_bytes - (p->state == P_REPLICATE ? p->infl_bytes : 0);
	uint32_t n = 0, bytes = 0;
	for (uint64_t i = p->next; i <= last && n < s->max_batch; i++) {
		struct sl_cons_entry e;
		if (entry_at(s, i, &e) != 0) {
			/* compacted: an abandoned message costs nothing (msg_end never ran) */
			if (n == 0)
				return send_snapshot(s, p);
			break;
		}
		uint32_t need = ENT_HDR_BYTES + e.len;
		if (w.cap - w.len < need || (n > 0 && bytes + need > window))
			break;
		w64(&w, e.term);
		w8(&w, (uint8_t)e.type);
		w32(&w, e.len);
		w_bytes(&w, e.data, e.len);
		n++;
		bytes += need;
	}
	if (n == 0 && p->state == P_REPLICATE)
		return false;
	/* the fixed part may not have fit the outbox's room (w.err): msg_end drops the
	 * message, and n_pos may lie past the room, so nothing is written there */
	if (!w.err)
		sl_put_u32(w.p + n_pos, n);
	if (!msg_end(s, &w, p->id))
		return false;
	if (p->state == P_REPLICATE) {
		p->next = prev + n + 1;
		uint32_t slot = (p->infl_head + p->infl_len) % INFL_CAP;
		p->infl[slot] = (struct inflight){prev + n, s->now, bytes};
		p->infl_len++;
		p->infl_bytes += bytes;
	} else {
		p->paused = true;
		p->probe_sent_ns = s->now;
	}
	return n > 0;
}

static void send_append_loop(struct raft *s, struct progress *p)
{
	/* pipelining: bounded by the in-flight window (INFL_CAP messages, max_infl bytes) */
	for (uint32_t i = 0; i < INFL_CAP && send_append(s, p); i++)
		if (p->state != P_REPLICATE)
			break;
}

static void send_append_all(struct raft *s)
{
	for (uint32_t i = 0; i < s->n_pr; i++)
		send_append_loop(s, &s->pr[i]);
}

static uint64_t quorum_value(const struct raft *s, uint64_t self_value, bool match)
{
	uint64_t v[SL_CONS_MAX_PEERS];
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->conf.n_voters; i++) {
		uint32_t id = s->conf.voters[i];
		uint64_t x = 0;
		if (id == s->self) {
			x = self_value;
		} else {
			for (uint32_t j = 0; j < s->n_pr; j++)
				if (s->pr[j].id == id)
					x = !match		  ? s->pr[j].acked_round
					    : s->pr[j].rejoining ? 0
								 : s->pr[j].match;
		}
		v[n++] = x;
	}
	if (n == 0)
		return 0;
	/* insertion sort, descending: at most SL_CONS_MAX_PEERS values */
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && v[j] > v[j - 1]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[quorum(n) - 1];
}

static void release_reads(struct raft *s);
static void send_heartbeats(struct raft *s);

static bool committed_in_term(const struct raft *s)
{
	return term_or_zero(s, s->commit) == s->term;
}

static void maybe_commit(struct raft *s)
{
	if (s->role != R_LEADER)
		return;
#ifdef SL_MUTATION_EARLY_SELF_COUNT
	uint64_t q = quorum_value(s, last_index(s), true); /* deliberate bug: not durable yet */
#else
	uint64_t q = quorum_value(s, s->durable, true);
#endif
	if (q <= s->commit)
		return;
#ifndef SL_MUTATION_PREV_TERM_COMMIT
	/* Raft 5.4.2: only an entry of the current term is committed by counting replicas;
	 * earlier ones commit indirectly (Figure 8) */
	if (term_or_zero(s, q) != s->term)
		return;
#endif
	s->commit = q;
	/* reads waiting for this leader's first commit now get their index */
	bool waiting = false;
	for (uint32_t i = 0; i < s->reads_len; i++)
		if (s->reads[i].index == 0 && committed_in_term(s)) {
			s->reads[i].index = s->commit;
			s->reads[i].round = s->hb_round + 1;
			waiting = true;
		}
	if (waiting)
		send_heartbeats(s);
}

static void send_heartbeats(struct raft *s)
{
	s->hb_round++;
	s->round_ns[s->hb_round % ROUND_RING] = s->now;
	for (uint32_t i = 0; i < s->n_pr; i++) {
		struct progress *p = &s->pr[i];
		uint64_t c = p->match < s->commit ? p->match : s->commit;
		send_simple(s, p->id, M_HEARTBEAT, rejoin_flag(p, c), s->term, c, s->hb_round, 2);
	}
	release_reads(s);
}

/* Lost appends are recovered here: a probe is repeated, a stalled pipeline goes back to
 * the last acknowledged index, an unanswered snapshot is retried. */
static void retransmit(struct raft *s)
{
	for (uint32_t i = 0; i < s->n_pr; i++) {
		struct progress *p = &s->pr[i];
		if (p->state == P_PROBE && p->paused && s->now >= p->probe_sent_ns + s->hb_ns)
			p->paused = false;
		else if (p->state == P_REPLICATE && p->infl_len > 0 &&
			 s->now >= p->infl[p->infl_head].sent_ns + s->et_ns / 2)
			to_probe(p, p->match + 1);
		else if (p->state == P_SNAPSHOT && s->now >= p->probe_sent_ns + s->et_ns) {
			/* unanswered chunks: from what the follower acknowledged, again */
			p->snap_sent = p->snap_off;
			p->snap_any = p->snap_off > 0;
			p->snap_went_back = false;
			p->probe_sent_ns = s->now;
		}
		send_append_loop(s, p);
	}
}

static uint64_t lease_ns(const struct raft *s)
{
	uint64_t margin = s->et_ns / 1000000u * 2u * s->o.clock_drift_ppm_max +
			  s->et_ns % 1000000u * 2u * s->o.clock_drift_ppm_max / 1000000u;
#ifdef SL_MUTATION_LONG_LEASE
	return 3 * (margin < s->et_ns ? s->et_ns - margin : 0); /* deliberate bug: 3x lease */
#else
	return margin < s->et_ns ? s->et_ns - margin : 0;
#endif
}

bool sl_raft_lease_valid(void *st)
{
	struct raft *s = st;
	if (!s->o.lease_reads || s->role != R_LEADER || s->no_lease_term == s->term ||
	    s->transfer_to != SL_CONS_NODE_NONE || s->failed)
		return false;
	uint64_t qr = quorum_value(s, s->hb_round, false);
	if (qr == 0 || s->hb_round - qr >= ROUND_RING)
		return false;
	return s->now < s->round_ns[qr % ROUND_RING] + lease_ns(s);
}

static void release_reads(struct raft *s)
{
	if (s->reads_len == 0)
		return;
	uint64_t qr = quorum_value(s, s->hb_round, false);
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->reads_len; i++) {
		struct pread *r = &s->reads[i];
		if (r->index != 0 && r->round <= qr)
			push_read_out(s, r->id, r->index, SL_CONS_ACK_OK);
		else
			s->reads[k++] = *r;
	}
	s->reads_len = k;
}

/* ---- message handlers ---- */

static bool log_up_to_date(const struct raft *s, uint64_t li, uint64_t lt)
{
	uint64_t my_li = last_index(s), my_lt = term_or_zero(s, my_li);
	return lt > my_lt || (lt == my_lt && li >= my_li);
}

static void on_vote(struct raft *s, const struct sl_cons_msg *m, uint8_t type, uint64_t mterm,
		    struct rd *r)
{
	uint64_t li = r64(r), lt = r64(r);
	if (r->err)
		return;
	bool can;
	if (type == M_PREVOTE)
		can = mterm > s->term;
	else
#ifdef SL_MUTATION_DOUBLE_VOTE
		can = s->vote == m->from || s->leader == SL_CONS_NODE_NONE;
#else
		can = s->vote == m->from ||
		      (s->vote == SL_CONS_NODE_NONE && s->leader == SL_CONS_NODE_NONE);
#endif
	/* a rejoining replica forgot whom it voted for: it grants nothing (raft.h) */
#ifdef SL_MUTATION_REJOIN_VOTES
	bool grant = can && log_up_to_date(s, li, lt); /* deliberate bug: it votes at once */
#else
	bool grant = can && !s->rejoin && log_up_to_date(s, li, lt);
#endif
	uint8_t rt = type == M_PREVOTE ? M_PREVOTE_RESP : M_VOTE_RESP;
	if (grant && type == M_VOTE) {
		s->vote = m->from;
		reset_election(s);
	}
	send_simple(s, m->from, rt, grant ? 0 : F_REJECT, grant ? mterm : s->term, 0, 0, 0);
}

static void reject_hint(const struct raft *s, uint64_t prev, uint64_t *hint)
{
	uint64_t last = last_index(s);
	if (prev > last) {
		*hint = last;
		return;
	}
	/* skip the whole conflicting term in one round trip */
	uint64_t t = term_or_zero(s, prev), h = prev - 1;
	for (uint32_t i = 0;
	     i < HINT_SCAN_MAX && h > s->commit && h > s->base_index && term_or_zero(s, h) == t;
	     i++)
		h--;
	*hint = h;
}

static void on_append(struct raft *s, const struct sl_cons_msg *m, struct rd *r)
{
	uint64_t prev = r64(r), prev_term = r64(r), lcommit = r64(r);
	uint32_t n = r32(r);
	if (r->err)
		return;
	if (prev < s->commit) {
		send_simple(s, m->from, M_APPEND_RESP, 0, s->term, s->commit, 0, 2);
		return;
	}
	uint64_t t;
	if (term_at(s, prev, &t) != 0 || t != prev_term) {
		uint64_t hint;
		reject_hint(s, prev, &hint);
		s->st.appends_rejected++;
		send_simple(s, m->from, M_APPEND_RESP, F_REJECT, s->term, prev, hint, 2);
		return;
	}
	uint64_t idx = prev;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t et = r64(r);
		uint8_t type = r8(r);
		uint32_t len = r32(r);
		const uint8_t *data = r_bytes(r, len);
		if (r->err)
			break;
		uint64_t at = idx + 1;
		if (at <= last_index(s)) {
			uint64_t have = term_or_zero(s, at);
			if (have == et) {
				idx = at;
				continue;
			}
#ifdef SL_MUTATION_NO_TRUNCATE
			idx = at; /* deliberate bug: keep our conflicting entry */
			continue;
#endif
			truncate_from(s, at);
		}
		if (append_one(s, et, type, data, len, 0) != 0)
			break;
		idx = at;
	}
	if (lcommit > s->commit) {
		uint64_t c = lcommit < idx ? lcommit : idx;
		if (c > s->commit)
			s->commit = c;
	}
	send_simple(s, m->from, M_APPEND_RESP, 0, s->term, idx, 0, 2);
}

/* Space for a snapshot of `total` bytes being received (the only buffer that grows after
 * create(): images are as large as the state machine, bounded by max_snapshot_bytes). */
static bool rx_reserve(struct raft *s, uint32_t total)
{
	if (total > s->o.max_snapshot_bytes)
		return false;
	if (total <= s->rx_cap)
		return true;
	uint8_t *b = realloc(s->rx_buf, total);
	if (b == NULL)
		return false;
	s->rx_buf = b;
	s->rx_cap = total;
	return true;
}

/* A chunk of the leader's snapshot. Chunks are taken in order only, of one image (the
 * same leader, term and index: two leaders may encode the same state differently); any
 * other is answered with the offset expected (F_REJECT), so the leader goes back. Once
 * the whole image is here it is installed. */
static void on_snapshot(struct raft *s, const struct sl_cons_msg *m, struct rd *r)
{
	struct sl_cons_snapshot sn;
	memset(&sn, 0, sizeof(sn));
	sn.index = r64(r);
	sn.term = r64(r);
	uint32_t used = 0;
	if (r->err || conf_get(r->p + r->pos, r->len - r->pos, &sn.conf, &used) != 0)
		return;
	r_bytes(r, used);
	uint32_t total = r32(r), off = r32(r), dlen = r32(r);
	const uint8_t *data = r_bytes(r, dlen);
	if (r->err || sn.index > PEER_VALUE_MAX || sn.term > PEER_VALUE_MAX || off > total ||
	    dlen > total - off || (dlen == 0 && off < total)) {
		s->st.msgs_bad++;
		return;
	}
	uint64_t t;
	if (sn.index <= s->commit) {
		send_simple(s, m->from, M_APPEND_RESP, 0, s->term, s->commit, 0, 2);
		return;
	}
	if (term_at(s, sn.index, &t) == 0 && t == sn.term) {
		/* we already hold that prefix: it is committed, no need to replace the log */
		s->commit = sn.index;
		send_simple(s, m->from, M_APPEND_RESP, 0, s->term, sn.index, 0, 2);
		return;
	}
	if (s->snap_pending)
		return; /* the image handed out lives in rx_buf until advance(); resent later */
	bool same = s->rx_active && s->rx_from == m->from && s->rx_mterm == s->term &&
		    s->rx_index == sn.index && s->rx_total == total;
	if (off == 0) {
		if (!rx_reserve(s, total)) {
			s->rx_active = false;
			s->st.snapshots_refused++;
			return;
		}
		s->rx_active = true;
		s->rx_from = m->from;
		s->rx_mterm = s->term;
		s->rx_index = sn.index;
		s->rx_term = sn.term;
		s->rx_conf = sn.conf;
		s->rx_total = total;
		s->rx_next = 0;
	} else if (!same || off != s->rx_next) {
		/* a duplicate (off below what is here) is only acknowledged again; a gap or
		 * another image asks the leader to go back */
		bool dup = same && off < s->rx_next;
		if (!dup)
			s->st.snapshot_chunks_refused++;
		send_simple(s, m->from, M_SNAP_ACK, dup ? 0 : F_REJECT, s->term, sn.index,
			    same ? s->rx_next : 0, 2);
		return;
	}
	if (dlen > 0)
		memcpy(s->rx_buf + off, data, dlen);
	s->rx_next = off + dlen;
	s->st.snapshot_chunks_received++;
	s->st.snapshot_bytes_received += dlen;
	if (s->rx_next < total) {
		send_simple(s, m->from, M_SNAP_ACK, 0, s->term, sn.index, s->rx_next, 2);
		return;
	}
	s->rx_active = false;
	sn.term = s->rx_term;
	sn.conf = s->rx_conf;
	sn.len = total;
	sn.data = s->rx_buf != NULL ? s->rx_buf : (const uint8_t *)""; /* an empty image */
	drop_props_from(s, s->base_index + 1);
	s->snap_in = sn;
	s->snap_pending = true;
	s->base_index = sn.index;
	s->base_term = sn.term;
	s->ufirst = sn.index + 1;
	s->un = 0;
	s->uused = 0;
	s->commit = s->applied = sn.index;
	s->durable = 0;
#ifndef SL_MUTATION_SNAP_OLD_CONF
	s->base_conf = s->applied_conf = s->conf = sn.conf;
#endif /* else deliberate bug: the membership in effect stays what it was before */
	s->conf_index = sn.index;
	s->seal_index = 0; /* the log it was in is gone; no image is cut at or past a SEAL */
	s->st.snapshots_installed++;
	send_simple(s, m->from, M_APPEND_RESP, 0, s->term, sn.index, 0, 2);
}

/* The follower's receipt of snapshot chunks: the window moves on, or (F_REJECT, or an
 * offset below what it had acknowledged: it started over) the leader goes back to the
 * offset the follower expects. */
static void on_snap_ack(struct raft *s, const struct sl_cons_msg *m, uint16_t flags, struct rd *r)
{
	uint64_t index = r64(r), next = r64(r);
	struct progress *p = find_pr(s, m->from);
	if (r->err || p == NULL)
		return;
	p->last_resp_ns = s->now;
	if (p->state != P_SNAPSHOT || index != p->pending_snapshot || next > p->snap_total)
		return; /* stale: of another image, or this follower moved on */
	if (next > p->snap_off) {
		p->snap_off = (uint32_t)next;
		p->snap_went_back = false;
		if (p->snap_sent < p->snap_off)
			p->snap_sent = p->snap_off;
	} else if (next < p->snap_off || ((flags & F_REJECT) && !p->snap_went_back)) {
		/* once per offset: the chunks after a lost one are all rejected, and going
		 * back for each would resend the window as often */
		p->snap_off = p->snap_sent = (uint32_t)next;
		p->snap_any = next > 0;
		p->snap_went_back = true;
	}
	p->probe_sent_ns = s->now;
	send_snapshot(s, p);
}

/* What a response says of a follower's rejoin (F_REJOIN): when it starts, the follower
 * lost its state: what it had acknowledged is gone, so it is probed from scratch; an entry
 * appended from now on commits without it (its match counts 0), and once one has, it is
 * told so (F_REJOIN on appends and heartbeats). When it ends, its match counts again. */
static void note_peer_rejoin(struct raft *s, struct progress *p, uint16_t flags)
{
	bool rejoining = (flags & F_REJOIN) != 0;
	if (rejoining && !p->rejoining) {
		p->match = 0;
		to_probe(p, p->next);
		p->rejoin_fence = last_index(s) + 1;
		if (append_one(s, s->term, SL_CONS_ENTRY_NOOP, NULL, 0, 0) == 0)
			s->need_bcast = true;
	}
	bool rejoined = p->rejoining && !rejoining;
	p->rejoining = rejoining;
	if (rejoined)
		maybe_commit(s);
}

static void on_append_resp(struct raft *s, const struct sl_cons_msg *m, uint16_t flags,
			   struct rd *r)
{
	uint64_t index = r64(r), hint = r64(r);
	struct progress *p = find_pr(s, m->from);
	if (r->err || p == NULL)
		return;
	p->last_resp_ns = s->now;
	note_peer_rejoin(s, p, flags);
	if (flags & F_REJECT) {
		if (hint < p->match && !is_voter(s, p->id)) {
			/* a learner holds less than it matched: its copy went (sluiced drops a
			 * learner's copy at a restart). It counts for no commit, so its match may
			 * go back; kept, every probe would be above its log and it would never
			 * catch up. A stale reject lowers it too: the next answer raises it. */
			p->match = hint;
			to_probe(p, hint + 1);
			s->st.learner_resets++;
			send_append_loop(s, p);
			return;
		}
		if ((p->state == P_REPLICATE && index <= p->match) ||
		    (p->state != P_REPLICATE && index != p->next - 1))
			return; /* stale: a later exchange already moved this follower */
		uint64_t nx = hint + 1 < index ? hint + 1 : index;
		if (nx < p->match + 1)
			nx = p->match + 1;
		to_probe(p, nx);
		send_append_loop(s, p);
		return;
	}
	bool progressed = index > p->match;
	if (progressed)
		p->match = index;
	if (p->next <= p->match)
		p->next = p->match + 1;
	infl_free_to(p, index);
	if (p->state == P_PROBE || (p->state == P_SNAPSHOT && p->match >= p->pending_snapshot)) {
		p->state = P_REPLICATE;
		p->next = p->match + 1;
		infl_clear(p);
	}
	if (progressed)
		maybe_commit(s);
	if (s->transfer_to == m->from && p->match == last_index(s)) {
		send_simple(s, m->from, M_TIMEOUT_NOW, 0, s->term, 0, 0, 0);
		s->no_lease_term = s->term;
		s->st.transfers++;
	}
	send_append_loop(s, p);
}

static void on_heartbeat_resp(struct raft *s, const struct sl_cons_msg *m, uint16_t flags,
			      struct rd *r)
{
	uint64_t round = r64(r);
	struct progress *p = find_pr(s, m->from);
	if (r->err || p == NULL)
		return;
	p->last_resp_ns = s->now;
	/* an idle group sends only heartbeats: a rejoin is learned here too */
	note_peer_rejoin(s, p, flags);
	if (round > p->acked_round && round <= s->hb_round)
		p->acked_round = round;
	if (p->state == P_PROBE)
		p->paused = false;
	if (p->match < last_index(s))
		send_append_loop(s, p);
	release_reads(s);
}

/* A message from the leader of our term: it is alive, follow it. */
static void heard_leader(struct raft *s, uint32_t from)
{
	if (s->role != R_FOLLOWER)
		become_follower(s, s->term, from);
	s->leader = from;
	/* `now` is the last tick, possibly older than this receipt: stamping it would end the
	 * vote-refusal window early and break the leader's lease, so wait for the next tick */
	s->contact_pending = true;
	reset_election(s);
}

/* A leader says `commit` was reached without this rejoining replica: once it holds the
 * log up to there, it is whole again (maybe_end_rejoin). */
static void maybe_end_rejoin(struct raft *s);

static void note_rejoin_target(struct raft *s, uint64_t commit)
{
	if (s->rejoin && s->rejoin_target == 0 && commit > 0 && commit <= PEER_VALUE_MAX)
		s->rejoin_target = commit;
	maybe_end_rejoin(s); /* an idle group: everything may be applied and durable already */
}

static int rf_step(void *st, const struct sl_cons_msg *m)
{
	struct raft *s = st;
	SL_ASSERT(!s->in_ready);
	if (s->failed)
		return -EIO;
	if (m->group_id != s->group || m->from == SL_CONS_NODE_NONE || m->to != s->self)
		return -EINVAL;
	if (m->len > s->o.max_msg_bytes) {
		/* no sender of this group encodes more: everything inside (entries, snapshot)
		 * stays within what the buffers sized from max_msg_bytes can take */
		s->st.msgs_too_big++;
		return -EMSGSIZE;
	}
	if (m->len < HDR_BYTES || m->buf[0] != RAFT_MSG_VERSION || m->buf[1] == 0 ||
	    m->buf[1] >= M_TYPE_END || sl_get_u32(m->buf + 4) != fnv1a(m->buf + 8, m->len - 8)) {
		s->st.msgs_bad++;
		return -EBADMSG;
	}
	uint8_t type = m->buf[1];
	uint16_t flags = sl_get_u16(m->buf + 2);
	uint64_t mterm = sl_get_u64(m->buf + 8);
	if (mterm > PEER_VALUE_MAX) {
		s->st.msgs_bad++;
		return -EBADMSG;
	}
	struct rd r = {m->buf, m->len, HDR_BYTES, false};
	bool from_leader =
	    type == M_APPEND || type == M_HEARTBEAT || type == M_SNAPSHOT || type == M_TIMEOUT_NOW;

	if (mterm > s->term) {
#ifdef SL_MUTATION_NO_VOTE_REFUSAL
		(void)in_lease; /* deliberate bug: campaigns heard even inside a leader's lease */
#else
		if ((type == M_PREVOTE || type == M_VOTE) && !(flags & F_TRANSFER) && in_lease(s))
			return 0; /* check-quorum: a live leader's followers ignore campaigns */
#endif
		if (type == M_PREVOTE || (type == M_PREVOTE_RESP && !(flags & F_REJECT))) {
			/* pre-votes never change terms */
		} else {
			become_follower(s, mterm, from_leader ? m->from : SL_CONS_NODE_NONE);
		}
	} else if (mterm < s->term) {
		/* tell a stale leader or pre-candidate about the newer term */
		if (from_leader && type != M_TIMEOUT_NOW)
			send_simple(s, m->from, M_APPEND_RESP, F_REJECT, s->term, 0, 0, 2);
		else if (type == M_PREVOTE)
			send_simple(s, m->from, M_PREVOTE_RESP, F_REJECT, s->term, 0, 0, 0);
		return 0;
	}

	switch (type) {
	case M_PREVOTE:
	case M_VOTE:
		on_vote(s, m, type, mterm, &r);
		break;
	case M_PREVOTE_RESP:
		/* a grant counts only for the round in flight (it carries our term + 1) */
		if (s->role == R_PRECANDIDATE && ((flags & F_REJECT) || mterm == s->term + 1)) {
			record_vote(s, m->from, !(flags & F_REJECT));
			tally(s);
		}
		break;
	case M_VOTE_RESP:
		if (s->role == R_CANDIDATE && mterm == s->term) {
			record_vote(s, m->from, !(flags & F_REJECT));
			tally(s);
		}
		break;
	case M_APPEND:
		heard_leader(s, m->from);
		if ((flags & F_REJOIN) && m->len >= HDR_BYTES + 24u)
			note_rejoin_target(s, sl_get_u64(m->buf + HDR_BYTES + 16u));
		on_append(s, m, &r);
		break;
	case M_HEARTBEAT: {
		heard_leader(s, m->from);
		uint64_t c = r64(&r), round = r64(&r);
		if (r.err)
			break;
		uint64_t last = last_index(s);
		if (c > last && !is_voter(s, s->self))
			/* the leader's match for this learner is past its log (its copy was
			 * dropped): a reject holding `last` puts the match back (on_append_resp),
			 * also in an idle or sealed group, which sends no append */
			send_simple(s, m->from, M_APPEND_RESP, F_REJECT, s->term, c, last, 2);
		if (c > last)
			c = last;
		if (c > s->commit)
			s->commit = c;
		if (flags & F_REJOIN)
			note_rejoin_target(s, c);
		send_simple(s, m->from, M_HEARTBEAT_RESP, 0, s->term, round, 0, 1);
		break;
	}
	case M_SNAPSHOT:
		heard_leader(s, m->from);
		on_snapshot(s, m, &r);
		break;
	case M_TIMEOUT_NOW:
		heard_leader(s, m->from);
		if (is_voter(s, s->self) && !s->rejoin)
			become_candidate(s, true);
		break;
	case M_APPEND_RESP:
		if (s->role == R_LEADER)
			on_append_resp(s, m, flags, &r);
		break;
	case M_SNAP_ACK:
		if (s->role == R_LEADER)
			on_snap_ack(s, m, flags, &r);
		break;
	case M_HEARTBEAT_RESP:
		if (s->role == R_LEADER)
			on_heartbeat_resp(s, m, flags, &r);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- time ---- */

static void rf_tick(void *st, uint64_t now_ns)
{
	struct raft *s = st;
	SL_ASSERT(!s->in_ready);
	if (s->failed)
		return;
	if (!s->ticked) {
		/* a (re)started replica acts as if it just heard a leader: it must not help
		 * elect a new one inside a lease it may have acknowledged before the crash */
		s->ticked = true;
		s->now = now_ns;
		s->last_contact_ns = now_ns;
		reset_election(s);
		return;
	}
	if (now_ns <= s->now)
		return; /* time is monotonic for the protocol */
	s->now = now_ns;
	if (s->contact_pending) {
		s->contact_pending = false;
		s->last_contact_ns = now_ns;
	}
	if (s->role == R_LEADER) {
		if (s->now >= s->check_deadline) {
			s->check_deadline = s->now + s->et_ns;
			uint32_t active = 0;
			for (uint32_t i = 0; i < s->conf.n_voters; i++) {
				uint32_t id = s->conf.voters[i];
				struct progress *p = find_pr(s, id);
				if (id == s->self || (p && p->last_resp_ns + s->et_ns > s->now))
					active++;
			}
			if (active < quorum(s->conf.n_voters)) {
				s->st.check_quorum_stepdowns++;
				become_follower(s, s->term, SL_CONS_NODE_NONE);
				return;
			}
		}
		if (s->transfer_to != SL_CONS_NODE_NONE && s->now >= s->transfer_deadline)
			s->transfer_to = SL_CONS_NODE_NONE;
		if (s->now >= s->heartbeat_deadline) {
			s->heartbeat_deadline = s->now + s->hb_ns;
			send_heartbeats(s);
			retransmit(s);
		}
		return;
	}
	if (s->now >= s->election_deadline) {
		if (is_voter(s, s->self) && !s->rejoin)
			become_precandidate(s);
		else
			reset_election(s);
	}
}

/* ---- client operations ---- */

/* Who may act for clients: a live leader, not in the middle of handing leadership over
 * (when `busy_in_transfer`). */
static int leader_gate(const struct raft *s, bool busy_in_transfer)
{
	SL_ASSERT(!s->in_ready);
	if (s->failed)
		return -EIO;
	if (s->role != R_LEADER)
		return -EPERM;
	if (busy_in_transfer && s->transfer_to != SL_CONS_NODE_NONE)
		return -EBUSY;
	return 0;
}

/* A leader's own entry, acked later through `pid` (the gates were passed). */
static int append_proposal(struct raft *s, uint64_t pid, uint32_t type, const uint8_t *data,
			   uint32_t len)
{
	if (len > max_entry_bytes(s))
		return -EMSGSIZE;
	if (s->props_len == s->o.max_pending_proposals)
		return -ENOBUFS;
	int rc = append_one(s, s->term, type, data, len, pid);
	if (rc != 0)
		return rc;
	*prop_at(s, s->props_len++) = (struct pprop){pid, last_index(s), s->term};
	s->need_bcast = true;
	maybe_commit(s); /* a single voter commits on its own durability */
	return 0;
}

/* A SEAL at or below the commit index ends this log for every replica: no one will take
 * a proposal, so a follower says so too rather than send the caller to a leader. */
static bool sealed_for_good(const struct raft *s)
{
	return s->seal_index != 0 && s->seal_index <= s->commit;
}

/* An entry at `idx` comes after the SEAL in this log: never applied, its proposal refused. */
static bool past_seal(const struct raft *s, uint64_t idx)
{
	return s->seal_index != 0 && idx > s->seal_index;
}

static int rf_propose(void *st, uint64_t pid, const uint8_t *data, uint32_t len)
{
	struct raft *s = st;
	SL_ASSERT(!s->in_ready);
#ifdef SL_MUTATION_SEAL_LEAKY
	(void)sealed_for_good; /* deliberate bug (below): writes go on after the SEAL */
#else
	if (!s->failed && sealed_for_good(s))
		return -EROFS;
#endif
	int rc = leader_gate(s, true);
	if (rc != 0)
		return rc;
#ifndef SL_MUTATION_SEAL_LEAKY
	/* a SEAL in the leader's log, committed or not, ends it: a write taken after it would
	 * land past the segment's end (a new leader holding the SEAL refuses the same way) */
	if (s->seal_index != 0)
		return -EROFS;
#endif /* else deliberate bug: the leader keeps taking proposals after its SEAL */
	return append_proposal(s, pid, SL_CONS_ENTRY_NORMAL, data, len);
}

/* The SEAL entry: proposed like a write (acked through `pid`), once per log. A leader
 * whose log holds one already says -EALREADY: the caller waits for sealed_index. */
static int rf_seal(void *st, uint64_t pid, const uint8_t *data, uint32_t len)
{
	struct raft *s = st;
	int rc = leader_gate(s, true);
	if (rc != 0)
		return rc;
	if (s->seal_index != 0)
		return -EALREADY;
	return append_proposal(s, pid, SL_CONS_ENTRY_SEAL, data, len);
}

int sl_raft_read_index(void *st, uint64_t read_id, bool lease);

/* The interface's read: ReadIndex, a heartbeat round confirming leadership (no lease). */
static int rf_read(void *st, uint64_t read_id) { return sl_raft_read_index(st, read_id, false); }

int sl_raft_read_index(void *st, uint64_t read_id, bool lease)
{
	struct raft *s = st;
	int rc = leader_gate(s, false);
	if (rc != 0)
		return rc;
	if (s->reads_len + s->n_rreads >= s->o.max_pending_reads)
		return -ENOBUFS;
	bool ready = committed_in_term(s);
#ifdef SL_MUTATION_READ_NO_ROUND
	(void)lease; /* deliberate bug: every read answered at once, no heartbeat round */
	if (ready) {
#else
	if (ready && lease && sl_raft_lease_valid(s)) {
#endif
		push_read_out(s, read_id, s->commit, SL_CONS_ACK_OK);
		s->st.reads_lease++;
		return 0;
	}
	s->st.reads_index++;
	s->reads[s->reads_len++] = (struct pread){read_id, ready ? s->commit : 0, s->hb_round + 1};
	if (ready)
		send_heartbeats(s); /* confirm leadership now rather than at the next beat */
	return 0;
}

uint32_t sl_raft_peers(void *st, struct sl_raft_peer *out, uint32_t cap)
{
	struct raft *s = st;
	uint32_t n = 0;
	for (uint32_t i = 0; s->role == R_LEADER && i < s->n_pr && n < cap; i++) {
		const struct progress *p = &s->pr[i];
		if (p->id == s->self)
			continue;
		out[n++] = (struct sl_raft_peer){p->id, p->state, p->rejoining, p->match, p->next,
						 p->pending_snapshot, p->snap_off, p->snap_sent,
						 p->snap_total};
	}
	return n;
}

int sl_raft_transfer_leader(void *st, uint32_t target)
{
	struct raft *s = st;
	int rc = leader_gate(s, false);
	if (rc != 0)
		return rc;
	if (target == s->self)
		return 0;
	struct progress *p = find_pr(s, target);
	if (!is_voter(s, target) || p == NULL)
		return -EINVAL;
	s->transfer_to = target;
	s->transfer_deadline = s->now + s->et_ns;
	if (p->match == last_index(s)) {
		send_simple(s, target, M_TIMEOUT_NOW, 0, s->term, 0, 0, 0);
		s->no_lease_term = s->term;
		s->st.transfers++;
	} else {
		send_append_loop(s, p);
	}
	return 0;
}

static bool conf_remove(uint32_t *ids, uint32_t *n, uint32_t id)
{
	for (uint32_t i = 0; i < *n; i++)
		if (ids[i] == id) {
			ids[i] = ids[--*n];
			return true;
		}
	return false;
}

int sl_raft_change(void *st, uint64_t pid, enum sl_raft_change_op op, uint32_t node)
{
	struct raft *s = st;
	int rc = leader_gate(s, true);
	if (rc != 0)
		return rc;
	if (node == SL_CONS_NODE_NONE)
		return -EINVAL;
	if (s->seal_index != 0)
		return -EROFS; /* a sealed log changes no more: the next segment has its own */
	/* one change at a time, and only after this leader committed its own no-op: without
	 * that, two leaders of adjacent terms can each commit a different single-server change
	 * with disjoint majorities (Ongaro, raft-dev 2015) */
#ifdef SL_MUTATION_NO_CHANGE_GUARD
	if (s->conf_index > s->commit) /* deliberate bug: no wait for this term's no-op */
#else
	if (s->conf_index > s->commit || !committed_in_term(s))
#endif
		return -EAGAIN;
	if (s->props_len == s->o.max_pending_proposals)
		return -ENOBUFS;
	struct sl_cons_conf c = s->conf;
	bool voter = in_list(c.voters, c.n_voters, node);
	bool learner = in_list(c.learners, c.n_learners, node);
	switch (op) {
	case SL_RAFT_ADD_LEARNER:
		if (voter || learner || c.n_voters + c.n_learners >= SL_CONS_MAX_PEERS)
			return -EINVAL;
		c.learners[c.n_learners++] = node;
		break;
	case SL_RAFT_PROMOTE: {
		if (!learner)
			return -EINVAL;
		struct progress *p = find_pr(s, node);
		if (p == NULL || p->match < s->commit)
			return -EAGAIN; /* a learner votes only once it has caught up */
		conf_remove(c.learners, &c.n_learners, node);
		c.voters[c.n_voters++] = node;
		break;
	}
	case SL_RAFT_REMOVE:
		if (node == s->self || (!voter && !learner) || (voter && c.n_voters == 1))
			return -EINVAL;
		if (!conf_remove(c.voters, &c.n_voters, node))
			conf_remove(c.learners, &c.n_learners, node);
		break;
	default:
		return -EINVAL;
	}
	uint8_t buf[1 + 2 + 4 * SL_CONS_MAX_PEERS * 2];
	buf[0] = CONF_VERSION;
	conf_put(buf + 1, &c);
	rc = append_one(s, s->term, SL_CONS_ENTRY_CONF, buf, 1 + conf_bytes(&c), pid);
	if (rc != 0)
		return rc;
	if (pid != 0)
		*prop_at(s, s->props_len++) = (struct pprop){pid, last_index(s), s->term};
	s->need_bcast = true;
	maybe_commit(s); /* removing a voter can lower the quorum */
	return 0;
}

/* The learners outside the log (sl_cons_ops.set_learners): they vote for nothing and
 * count for no commit, so a replica may be told of them apart from the others; only
 * while no CONF entry rules the membership (then the log says who learns). */
static int rf_set_learners(void *st, const uint32_t *ids, uint32_t n)
{
	struct raft *s = st;
	if (n > SL_CONS_MAX_PEERS)
		return -EINVAL;
	if (s->conf_index > s->base_index)
		return -EBUSY; /* a CONF entry rules: changes go through sl_raft_change */
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == SL_CONS_NODE_NONE || in_list(s->conf.voters, s->conf.n_voters, ids[i]) ||
		    s->conf.n_voters + i + 1 > SL_CONS_MAX_PEERS)
			return -EINVAL;
	s->base_conf.n_learners = s->conf.n_learners = n;
	for (uint32_t i = 0; i < n; i++)
		s->base_conf.learners[i] = s->conf.learners[i] = ids[i];
	if (s->role == R_LEADER) {
		sync_progress(s);
		s->need_bcast = true;
	}
	return 0;
}

int sl_raft_snapshot_meta(void *st, uint64_t index, struct sl_cons_snapshot *meta)
{
	struct raft *s = st;
	if (s->in_ready || index != s->applied || index == 0)
		return -EINVAL;
	/* the SEAL entry stays in the log: it is how a restarted replica knows the log ended
	 * (a snapshot carries no such mark); a sealed segment is trimmed whole, by its owner */
	if (s->seal_index != 0 && index >= s->seal_index)
		return -EROFS;
	memset(meta, 0, sizeof(*meta));
	meta->index = index;
	if (term_at(s, index, &meta->term) != 0)
		return -ENOENT;
	meta->conf = s->applied_conf;
	return 0;
}

void sl_raft_conf(void *st, struct sl_cons_conf *out) { *out = ((struct raft *)st)->conf; }

void sl_raft_stats(void *st, struct sl_raft_stats *out) { *out = ((struct raft *)st)->st; }

/* ---- storage completions ---- */

/* A rejoining replica is whole again once it holds, durably and applied, the log up to a
 * commit index its leader reached without counting it (rejoin_target; the leader
 * appended an entry of its term when it learned of the rejoin, and that entry is at or
 * below it). Then (1) everything committed before the replica lost its state is below it
 * (leader completeness), and (2) a majority without this replica accepted that term, so
 * every term in which the replica's lost votes counted is at most that one, while from
 * now on it votes in later terms only (its term is at least that one and its leader is
 * known in it). */
static void maybe_end_rejoin(struct raft *s)
{
	if (!s->rejoin || s->rejoin_target == 0 || s->applied < s->rejoin_target)
		return;
	if (s->durable < s->rejoin_target && s->base_index < s->rejoin_target)
		return; /* an installed snapshot is durable before advance(); entries once persisted */
	s->rejoin = false;
}

static void rf_persisted(void *st, uint64_t term, uint64_t index)
{
	struct raft *s = st;
	SL_ASSERT(!s->in_ready);
	if (s->failed || index <= s->durable || index > last_index(s))
		return;
	if (term_or_zero(s, index) != term)
		return; /* a completion for entries replaced since */
	s->durable = index;
	maybe_commit(s);
	maybe_end_rejoin(s);
}

static void rf_storage_failed(void *st, uint64_t index, int err)
{
	struct raft *s = st;
	(void)err;
	SL_ASSERT(!s->in_ready);
	if (index > 0 && s->durable >= index)
		s->durable = index - 1;
	for (uint32_t i = 0; i < s->props_len; i++)
		push_ack(s, prop_at(s, i)->pid, 0, SL_CONS_ACK_STORAGE);
	s->props_len = 0;
	fail_reads(s, SL_CONS_ACK_STORAGE);
	s->role = R_FOLLOWER;
	s->leader = SL_CONS_NODE_NONE;
	s->failed = true;
}

/* ---- ready / advance ---- */

static bool hs_changed(const struct raft *s)
{
	return s->hs_out.term != s->term || s->hs_out.vote != s->vote ||
	       s->hs_out.commit != s->commit;
}

static bool props_resolvable(struct raft *s)
{
	return s->props_len > 0 && prop_at(s, 0)->index <= s->commit;
}

static bool rf_has_ready(void *st)
{
	struct raft *s = st;
	if (s->in_ready)
		return false;
	if (s->failed)
		return s->n_acks > 0 || s->n_rreads > 0;
	return (s->need_bcast && s->role == R_LEADER) || s->un > 0 || hs_changed(s) ||
	       s->n_out > 0 || s->snap_pending || s->n_rreads > 0 || s->n_acks > 0 ||
	       s->commit > s->applied || props_resolvable(s);
}

static void rf_ready(void *st, struct sl_cons_ready *rd)
{
	struct raft *s = st;
	SL_ASSERT(!s->in_ready);
	memset(rd, 0, sizeof(*rd));
	s->in_ready = true;
	s->rd_n_persist = 0;
	s->rd_applied_to = s->applied;
	if (!s->failed) {
		if (s->need_bcast && s->role == R_LEADER)
			send_append_all(s); /* batching: all proposals since the last ready */
		s->need_bcast = false;
		while (props_resolvable(s)) {
			struct pprop *p = prop_at(s, 0);
			bool ok = term_or_zero(s, p->index) == p->term;
			uint32_t status = !ok			  ? SL_CONS_ACK_DROPPED
					  : past_seal(s, p->index) ? SL_CONS_ACK_SEALED
								   : SL_CONS_ACK_OK;
			push_ack(s, p->pid, status == SL_CONS_ACK_OK ? p->index : 0, status);
			s->props_head = (s->props_head + 1) % s->o.max_pending_proposals;
			s->props_len--;
		}
		if (s->snap_pending) {
			rd->has_snapshot = true;
			rd->snapshot = s->snap_in;
		}
		for (uint32_t i = 0; i < s->un; i++) {
			const struct uent *u = &s->u[i];
			s->rd_persist[i] = (struct sl_cons_entry){
			    u->term, s->ufirst + i, u->pid, u->type, u->len, s->ubuf + u->off};
		}
		rd->persist = s->rd_persist;
		rd->n_persist = s->rd_n_persist = s->un;
		if (hs_changed(s)) {
			rd->has_hard_state = true;
			rd->hard_state = (struct sl_cons_hard_state){s->term, s->vote, s->commit};
		}
		uint32_t n = 0, bytes = 0;
		for (uint64_t i = s->applied + 1; i <= s->commit && n < s->o.max_apply_entries;
		     i++) {
			struct sl_cons_entry e;
			if (entry_at(s, i, &e) != 0)
				break;
			if (s->o.max_apply_bytes - bytes < e.len) {
				/* the rest goes in the next ready; an entry that cannot fit even
				 * alone (the caller's log changed under us: create() checked it) is
				 * never copied: apply stops there and the stat says why */
				if (n == 0)
					s->st.apply_too_big++;
				break;
			}
			if (e.type == SL_CONS_ENTRY_NORMAL && past_seal(s, i)) {
				/* cannot happen by the seal rule (propose); if it does, the write
				 * is not applied: handed out as a no-op, counted, acked SEALED */
				s->st.past_seal++;
				e.type = SL_CONS_ENTRY_NOOP;
				e.len = 0;
			}
			if (e.len > 0)
				memcpy(s->abuf + bytes, e.data, e.len);
			e.data = s->abuf + bytes;
			bytes += e.len;
			if (e.type == SL_CONS_ENTRY_CONF)
				sl_raft_conf_decode(e.data, e.len, &s->applied_conf);
			s->rd_commit[n++] = e;
			s->rd_applied_to = i;
		}
		rd->committed = s->rd_commit;
		rd->n_committed = n;
	}
	rd->msgs = s->out_msgs;
	rd->n_msgs = s->n_out;
	rd->msgs_after_persist = s->out_resp;
	rd->acks = s->acks;
	rd->n_acks = s->n_acks;
	rd->reads = s->rreads;
	rd->n_reads = s->n_rreads;
}

static void rf_advance(void *st, const struct sl_cons_ready *rd)
{
	struct raft *s = st;
	(void)rd;
	SL_ASSERT(s->in_ready);
	SL_ASSERT(s->rd_n_persist == s->un);
	s->ufirst += s->un;
	s->un = 0;
	s->uused = 0;
	s->applied = s->rd_applied_to;
	maybe_end_rejoin(s);
	if (!s->failed)
		s->hs_out = (struct sl_cons_hard_state){s->term, s->vote, s->commit};
	s->n_out = 0;
	s->oused = 0;
	s->out_resp = false;
	s->n_acks = 0;
	s->n_rreads = 0;
	if (s->snap_pending && s->rx_cap > s->o.max_msg_bytes) {
		/* an installed image is the caller's now: a large buffer is not kept idle */
		free(s->rx_buf);
		s->rx_buf = NULL;
		s->rx_cap = 0;
	}
	s->snap_pending = false;
	s->in_ready = false;
	SL_ASSERT(s->applied <= s->commit && s->commit <= last_index(s));
}

static void rf_status(void *st, struct sl_cons_status *o)
{
	struct raft *s = st;
	memset(o, 0, sizeof(*o));
	switch (s->role) {
	case R_LEADER:
		o->role = SL_CONS_ROLE_LEADER;
		break;
	case R_CANDIDATE:
	case R_PRECANDIDATE:
		o->role = SL_CONS_ROLE_CANDIDATE;
		break;
	default:
		o->role = is_voter(s, s->self) ? SL_CONS_ROLE_FOLLOWER : SL_CONS_ROLE_LEARNER;
	}
	o->leader = s->leader;
	o->term = s->term;
	o->rejoining = s->rejoin;
	o->commit_index = s->commit;
	o->applied_index = s->applied;
	o->last_index = last_index(s);
	o->durable_index = s->durable;
	o->sealed_index = s->seal_index != 0 && s->applied >= s->seal_index ? s->seal_index : 0;
}

/* ---- life cycle ---- */

static void opts_defaults(struct sl_raft_opts *o, const struct sl_raft_opts *in)
{
	memset(o, 0, sizeof(*o));
	if (in != NULL)
		*o = *in;
#define DEF(f, v)                                                                                  \
	if (o->f == 0)                                                                             \
		o->f = (v);
	DEF(clock_drift_ppm_max, 1000u);
	DEF(max_msg_bytes, 64u << 10);
	DEF(max_unstable_entries, 4096u);
	DEF(max_unstable_bytes, 4u << 20);
	DEF(max_outbox_msgs, 1024u);
	DEF(max_outbox_bytes, 1u << 20);
	DEF(max_apply_entries, 1024u);
	DEF(max_apply_bytes, 1u << 20);
	DEF(max_pending_proposals, 4096u);
	DEF(max_pending_reads, 256u);
	DEF(max_snapshot_bytes, 1u << 30);
#undef DEF
	if (o->max_msg_bytes < MSG_BYTES_MIN)
		o->max_msg_bytes = MSG_BYTES_MIN;
	if (o->max_unstable_bytes < o->max_msg_bytes)
		o->max_unstable_bytes = o->max_msg_bytes;
	if (o->max_apply_bytes < o->max_msg_bytes)
		o->max_apply_bytes = o->max_msg_bytes;
	if (o->max_outbox_bytes < o->max_msg_bytes)
		o->max_outbox_bytes = o->max_msg_bytes;
}

uint32_t sl_raft_max_entry_bytes(const struct sl_raft_opts *opts)
{
	struct sl_raft_opts o;
	opts_defaults(&o, opts);
	return entry_limit(&o);
}

static void rf_destroy(void *st)
{
	struct raft *s = st;
	if (s == NULL)
		return;
	free(s->u);
	free(s->ubuf);
	free(s->props);
	free(s->reads);
	free(s->rx_buf);
	free(s->out_msgs);
	free(s->obuf);
	free(s->acks);
	free(s->rreads);
	free(s->rd_persist);
	free(s->rd_commit);
	free(s->abuf);
	free(s);
}

static int rf_create(const struct sl_cons_config *cfg, void **out)
{
	if (cfg->self == SL_CONS_NODE_NONE || cfg->n_voters > SL_CONS_MAX_PEERS ||
	    cfg->n_learners > SL_CONS_MAX_PEERS ||
	    cfg->n_voters + cfg->n_learners > SL_CONS_MAX_PEERS)
		return -EINVAL;
	struct raft *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	opts_defaults(&s->o, cfg->proto_opts);
	s->group = cfg->group_id;
	s->self = cfg->self;
	s->et_ns = cfg->election_timeout_ns ? cfg->election_timeout_ns : 1000000000ull;
	s->hb_ns = cfg->heartbeat_interval_ns ? cfg->heartbeat_interval_ns : s->et_ns / 10;
	if (s->hb_ns == 0 || s->hb_ns >= s->et_ns)
		s->hb_ns = s->et_ns / 2 ? s->et_ns / 2 : 1;
	s->max_batch = cfg->max_batch_entries ? cfg->max_batch_entries : 64;
	s->max_infl_bytes = cfg->max_inflight_bytes ? cfg->max_inflight_bytes : (1u << 20);
	s->log = cfg->log;
	s->rng = cfg->seed ^ ((uint64_t)cfg->self * 0xd1b54a32d192ed03ull);
	const struct sl_raft_opts *o = &s->o;
	s->u = calloc(o->max_unstable_entries, sizeof(*s->u));
	s->ubuf = malloc(o->max_unstable_bytes);
	s->props = calloc(o->max_pending_proposals, sizeof(*s->props));
	s->reads = calloc(o->max_pending_reads, sizeof(*s->reads));
	s->out_msgs = calloc(o->max_outbox_msgs, sizeof(*s->out_msgs));
	s->obuf = malloc(o->max_outbox_bytes);
	s->acks = calloc(2 * (size_t)o->max_pending_proposals, sizeof(*s->acks));
	s->rreads = calloc(o->max_pending_reads, sizeof(*s->rreads));
	s->rd_persist = calloc(o->max_unstable_entries, sizeof(*s->rd_persist));
	s->rd_commit = calloc(o->max_apply_entries, sizeof(*s->rd_commit));
	s->abuf = malloc(o->max_apply_bytes);
	if (!s->u || !s->ubuf || !s->props || !s->reads || !s->out_msgs ||
	    !s->obuf || !s->acks || !s->rreads || !s->rd_persist || !s->rd_commit || !s->abuf) {
		rf_destroy(s);
		return -ENOMEM;
	}

	s->base_conf.n_voters = cfg->n_voters;
	memcpy(s->base_conf.voters, cfg->voters, sizeof(cfg->voters));
	s->base_conf.n_learners = cfg->n_learners;
	memcpy(s->base_conf.learners, cfg->learners, sizeof(cfg->learners));
	uint64_t last = 0;
	if (s->log != NULL) {
		uint64_t first = s->log->first_index(s->log->ctx);
		last = s->log->last_index(s->log->ctx);
		s->base_index = first > 0 ? first - 1 : 0;
		if (last < s->base_index)
			last = s->base_index;
		if (s->base_index > 0) {
			if (s->log->term(s->log->ctx, s->base_index, &s->base_term) != 0) {
				rf_destroy(s);
				return -EIO;
			}
			struct sl_cons_snapshot sn;
			if (s->log->snapshot != NULL && s->log->snapshot(s->log->ctx, &sn) == 0 &&
			    sn.index == s->base_index)
				s->base_conf = sn.conf;
		}
	}
	/* a recovered entry larger than this configuration accepts (written under larger
	 * limits, or damaged) could never be handed out for apply: refuse it now */
	for (uint64_t i = s->base_index + 1; i <= last; i++) {
		struct sl_cons_entry e;
		if (s->log->entry(s->log->ctx, i, &e) != 0)
			continue;
		if (e.len > max_entry_bytes(s)) {
			rf_destroy(s);
			return -EMSGSIZE;
		}
		/* a SEAL survives restarts: the recovered log keeps the rule */
		if (e.type == SL_CONS_ENTRY_SEAL && s->seal_index == 0)
			s->seal_index = i;
	}
	s->ufirst = last + 1;
	s->term = cfg->initial.term;
	s->vote = cfg->initial.vote;
	s->rejoin = cfg->rejoin;
	s->commit = cfg->initial.commit;
	if (s->commit < s->base_index)
		s->commit = s->base_index;
	if (s->commit > last)
		s->commit = last;
	s->hs_out = (struct sl_cons_hard_state){s->term, s->vote, s->commit};
	s->applied = s->base_index;
	s->durable = last;
	s->applied_conf = s->base_conf;
	recompute_conf(s);
	s->role = R_FOLLOWER;
	*out = s;
	return 0;
}

const struct sl_cons_ops sl_cons_raft_ops = {
    .name = "raft",
    .create = rf_create,
    .destroy = rf_destroy,
    .propose = rf_propose,
    .step = rf_step,
    .tick = rf_tick,
    .persisted = rf_persisted,
    .storage_failed = rf_storage_failed,
    .has_ready = rf_has_ready,
    .ready = rf_ready,
    .advance = rf_advance,
    .status = rf_status,
    .read = rf_read,
    .transfer = sl_raft_transfer_leader,
    .seal = rf_seal,
    .set_learners = rf_set_learners,
};

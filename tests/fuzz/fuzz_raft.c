/* fuzz_raft.c - libFuzzer target for raft's step() on anything a peer could send. The input
 * is a script run against replica 1 of a three-voter group (peers 2 and 3 exist only as
 * the fuzzer): messages built field by field (terms and indexes near the replica's own,
 * entry counts and lengths that may lie, optional trailing junk, a checksum fixed or not),
 * raw byte messages, time passing, proposals, reads, transfers, membership changes, a disk
 * that stalls, snapshots, restarts. The harness is the replica's caller (log, hard state):
 * raft must never crash, assert or hand out anything inconsistent. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "fuzz_util.h"
#include "raft.h"
#include "sl_le.h"

#define MS 1000000ull
#define GROUP 7u
#define MAX_MSG 1024u
#define MAX_APPLY 2048u
#define HDR 16u	 /* raft.c wire header: version, type, flags u16, checksum u32, term u64 */
#define TYPES 11 /* message types 1..11 */
#define LOGCAP 256u
#define MB_CAP 2048u /* built messages may exceed MAX_MSG: step must refuse those */

struct fent {
	uint64_t term;
	uint32_t type, len;
	uint8_t data[MAX_MSG];
};

/* The caller's durable storage, as raft sees it through sl_cons_log. */
static struct {
	uint64_t snap_index, snap_term;
	struct sl_cons_conf snap_conf;
	uint8_t snap_data[MAX_MSG];
	uint32_t snap_len;
	struct fent e[LOGCAP]; /* e[i] has index snap_index + 1 + i */
	uint64_t n;
	struct sl_cons_hard_state hs;
} lg;

static const struct sl_cons_ops *R = &sl_cons_raft_ops;
static void *st;
static uint64_t now, applied, stalled_term, stalled_index;
static bool stalled, full;
static struct sl_cons_log view;
static const struct sl_raft_opts opts = {
    .lease_reads = true,
    .max_msg_bytes = MAX_MSG,
    .max_snapshot_bytes = MAX_MSG, /* what lg.snap_data holds */
    .max_unstable_entries = 64,
    .max_unstable_bytes = 4096,
    .max_outbox_msgs = 64,
    .max_outbox_bytes = 8192,
    .max_apply_entries = 32,
    .max_apply_bytes = MAX_APPLY,
    .max_pending_proposals = 16,
    .max_pending_reads = 8,
};

static uint64_t lg_first(void *c) { return (void)c, lg.snap_index + 1; }
static uint64_t lg_last(void *c) { return (void)c, lg.snap_index + lg.n; }

static int lg_term(void *c, uint64_t i, uint64_t *t)
{
	if (i == lg.snap_index) {
		*t = lg.snap_term;
		return 0;
	}
	if (i < lg.snap_index || i > lg_last(c))
		return -ENOENT;
	*t = lg.e[i - lg.snap_index - 1].term;
	return 0;
}

static int lg_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	if (i <= lg.snap_index || i > lg_last(c))
		return -ENOENT;
	const struct fent *e = &lg.e[i - lg.snap_index - 1];
	*o = (struct sl_cons_entry){e->term, i, 0, e->type, e->len, e->data};
	return 0;
}

static int lg_snapshot(void *c, struct sl_cons_snapshot *o)
{
	(void)c;
	if (lg.snap_index == 0)
		return -ENOENT;
	*o = (struct sl_cons_snapshot){lg.snap_index, lg.snap_term, lg.snap_conf, lg.snap_len,
				       lg.snap_data};
	return 0;
}

static void lg_set_snapshot(const struct sl_cons_snapshot *s, bool install)
{
	uint64_t drop = s->index - lg.snap_index;
	if (install || drop >= lg.n) {
		lg.n = 0;
	} else {
		memmove(lg.e, lg.e + drop, (lg.n - drop) * sizeof(lg.e[0]));
		lg.n -= drop;
	}
	lg.snap_index = s->index;
	lg.snap_term = s->term;
	lg.snap_conf = s->conf;
	lg.snap_len = s->len;
	memcpy(lg.snap_data, s->data, s->len);
}

static void start(void)
{
	struct sl_cons_config cfg;
	fuzz_cons_config_3(&cfg, GROUP);
	cfg.seed = 42;
	cfg.election_timeout_ns = 100 * MS;
	cfg.heartbeat_interval_ns = 20 * MS;
	cfg.max_batch_entries = 8;
	cfg.max_inflight_bytes = 4096;
	cfg.initial = lg.hs;
	cfg.log = &view;
	cfg.proto_opts = &opts;
	/* everything in the log came from raft itself: a restart must take it */
	CHECK(R->create(&cfg, &st) == 0);
	applied = lg.snap_index;
	R->tick(st, now);
}

static void touch(const uint8_t *p, uint32_t n)
{
	/* read every byte handed out, so the sanitizer sees an out-of-bounds one */
	volatile uint8_t x = 0;
	for (uint32_t i = 0; i < n; i++)
		x ^= p[i];
	(void)x;
}

/* The caller's side of one ready/advance cycle, checking what raft hands out. */
static void drain(void)
{
	for (int guard = 0; guard < 64 && !full && R->has_ready(st); guard++) {
		struct sl_cons_ready rd;
		R->ready(st, &rd);
		uint64_t last_term = 0, last_idx = 0;
		if (rd.has_snapshot) {
			CHECK(rd.snapshot.len <= MAX_MSG && rd.snapshot.index > applied);
			lg_set_snapshot(&rd.snapshot, true);
			applied = rd.snapshot.index;
			last_term = rd.snapshot.term;
			last_idx = rd.snapshot.index;
		}
		for (uint32_t i = 0; i < rd.n_persist; i++) {
			const struct sl_cons_entry *e = &rd.persist[i];
			CHECK(e->index > lg.snap_index && e->index <= lg_last(NULL) + 1);
			CHECK(i == 0 || e->index == rd.persist[i - 1].index + 1);
			CHECK(e->index > applied); /* an applied entry never changes */
			CHECK(e->len <= sl_raft_max_entry_bytes(&opts));
			touch(e->data, e->len);
			if (e->index - lg.snap_index > LOGCAP) {
				full = true; /* the harness's limit, not raft's: stop this run */
				break;
			}
			lg.n = e->index - lg.snap_index - 1;
			struct fent *f = &lg.e[lg.n++];
			*f = (struct fent){.term = e->term, .type = e->type, .len = e->len};
			memcpy(f->data, e->data, e->len);
			last_term = e->term;
			last_idx = e->index;
		}
		if (full) {
			R->advance(st, &rd); /* what follows would read entries not kept */
			return;
		}
		if (rd.has_hard_state) {
			CHECK(rd.hard_state.term >= lg.hs.term);
			CHECK(rd.hard_state.commit >= lg.hs.commit);
			lg.hs = rd.hard_state;
		}
		for (uint32_t i = 0; i < rd.n_msgs; i++) {
			const struct sl_cons_msg *m = &rd.msgs[i];
			CHECK(m->from == 1 && m->group_id == GROUP);
			CHECK(m->len >= HDR && m->len <= MAX_MSG);
			touch(m->buf, m->len);
		}
		uint32_t bytes = 0;
		for (uint32_t i = 0; i < rd.n_committed; i++) {
			const struct sl_cons_entry *e = &rd.committed[i];
			CHECK(e->index == applied + 1);
			uint64_t t;
			CHECK(lg_term(NULL, e->index, &t) == 0 && t == e->term);
			bytes += e->len;
			CHECK(bytes <= MAX_APPLY);
			touch(e->data, e->len);
			applied = e->index;
		}
		for (uint32_t i = 0; i < rd.n_acks; i++)
			CHECK(rd.acks[i].status <= SL_CONS_ACK_SEALED);
		for (uint32_t i = 0; i < rd.n_reads; i++)
			CHECK(rd.reads[i].status <= SL_CONS_ACK_STORAGE);
		R->advance(st, &rd);
		if (last_idx > 0) {
			if (stalled) {
				stalled_term = last_term;
				stalled_index = last_idx;
			} else {
				R->persisted(st, last_term, last_idx);
			}
		}
	}
	struct sl_cons_status s;
	R->status(st, &s);
	CHECK(s.applied_index <= s.commit_index && s.commit_index <= s.last_index);
	CHECK(s.term >= lg.hs.term);
}

/* ---- the script ---- */

struct in {
	const uint8_t *p;
	size_t n, pos;
};

static uint8_t u8(struct in *in) { return in->pos < in->n ? in->p[in->pos++] : 0; }

static uint64_t u64(struct in *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)u8(in) << (8 * i);
	return v;
}

/* A term or index near `base` (what a peer in step with us would send), or any value. */
static uint64_t rel(struct in *in, uint64_t base)
{
	uint8_t b = u8(in);
	return b < 0xf0 ? base + (uint64_t)(b % 24) - 8 : u64(in);
}

static uint8_t mb[MB_CAP];
static uint32_t ml;

static void put(const void *src, uint32_t n)
{
	if (n > MB_CAP - ml)
		n = MB_CAP - ml;
	memcpy(mb + ml, src, n);
	ml += n;
}

static void put8(uint8_t v) { put(&v, 1); }

static void put32(uint32_t v)
{
	uint8_t b[4];
	sl_put_u32(b, v);
	put(b, 4);
}

static void put64(uint64_t v)
{
	uint8_t b[8];
	sl_put_u64(b, v);
	put(b, 8);
}

/* Up to `n` bytes of the input as payload; zeros once it runs out. */
static void put_input(struct in *in, uint32_t n)
{
	for (uint32_t i = 0; i < n && ml < MB_CAP; i++)
		put8(u8(in));
}

/* A membership: sometimes well-formed (counts, ids of 0..4), sometimes raw bytes. */
static void put_conf(struct in *in, bool versioned)
{
	uint8_t c = u8(in);
	if (versioned)
		put8(c & 0x80 ? u8(in) : 1);
	uint32_t nv = c % 5, nl = (c >> 3) % 3;
	put8((uint8_t)(c & 0x40 ? u8(in) : nv));
	for (uint32_t i = 0; i < nv; i++)
		put32(u8(in) % 5);
	put8((uint8_t)nl);
	for (uint32_t i = 0; i < nl; i++)
		put32(u8(in) % 5);
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void deliver(uint32_t from, bool fix_checksum)
{
	struct sl_cons_msg m = {GROUP, from, 1, ml, mb};
	if (fix_checksum && ml >= HDR)
		sl_put_u32(mb + 4, fnv1a(mb + 8, ml - 8));
	int rc = R->step(st, &m);
	CHECK(rc == 0 || rc == -EINVAL || rc == -EBADMSG || rc == -EMSGSIZE || rc == -EIO);
	if (ml > MAX_MSG)
		CHECK(rc != 0); /* never read past what a sender may encode */
}

/* One message from a peer, field by field. */
static void op_message(struct in *in)
{
	uint8_t a = u8(in), b = u8(in);
	uint32_t from = a & 0x80 ? a % 6 : 2 + (a & 1); /* rarely 0, self or a stranger */
	uint8_t type = b < 0xf0 ? 1 + b % TYPES : b;
	struct sl_cons_status s;
	R->status(st, &s);
	uint64_t lt = 0;
	lg_term(NULL, s.last_index, &lt);
	ml = 0;
	put8(a & 0x40 ? u8(in) : 1); /* version */
	put8(type);
	uint8_t f = u8(in);
	put8(f & 3); /* F_REJECT, F_TRANSFER */
	put8(f & 0x80 ? u8(in) : 0);
	put32(0);
	put64(rel(in, s.term));
	switch (type) {
	case 1: /* pre-vote, vote: last index and term */
	case 3:
		put64(rel(in, s.last_index));
		put64(rel(in, lt));
		break;
	case 5: { /* append: prev, prev term, commit, count, entries */
		uint64_t prev = rel(in, s.last_index), pt = 0;
		lg_term(NULL, prev, &pt);
		put64(prev);
		put64(rel(in, pt));
		put64(rel(in, s.commit_index));
		uint8_t c = u8(in);
		uint32_t n = c % 9;
		put32(c & 0x80 ? n + u8(in) : n); /* a count that may exceed what follows */
		for (uint32_t i = 0; i < n; i++) {
			uint8_t k = u8(in);
			put64(rel(in, s.term));
			put8(k % 4);
			if (k % 4 == SL_CONS_ENTRY_CONF && !(k & 0x40)) {
				uint32_t at = ml;
				put32(0);
				put_conf(in, true);
				sl_put_u32(mb + at, ml - at - 4);
				continue;
			}
			uint32_t len = k & 0x80 ? (uint32_t)u8(in) << 4 | u8(in) : u8(in) % 64;
			put32(k & 0x20 ? len + u8(in) : len); /* a length that may lie */
			put_input(in, len);
		}
		break;
	}
	case 6: /* append response: index, hint */
		put64(rel(in, s.last_index));
		put64(rel(in, s.last_index));
		break;
	case 7: /* heartbeat: commit, round */
		put64(rel(in, s.commit_index));
		put64(u8(in));
		break;
	case 8: /* heartbeat response: round */
		put64(u8(in));
		break;
	case 9: { /* snapshot chunk: index, term, membership, total, offset, length, data */
		put64(rel(in, s.last_index));
		put64(rel(in, s.term));
		put_conf(in, false);
		uint8_t k = u8(in), c = u8(in);
		uint32_t len = k & 0x80 ? (uint32_t)u8(in) << 4 | u8(in) : k % 32;
		uint32_t off = c & 0x80 ? (uint32_t)(c & 0x3f) * 8 : 0;
		put32(c & 0x40 ? off + len + (uint32_t)u8(in) * 8 : off + len); /* the image */
		put32(off);
		put32(k & 0x40 ? len + u8(in) : len);
		put_input(in, len);
		break;
	}
	case 11: /* snapshot chunk ack: index, next offset */
		put64(rel(in, s.last_index));
		put64(u8(in));
		break;
	default: /* the responses to votes, TimeoutNow, unknown types: header only */
		break;
	}
	uint8_t tail = u8(in);
	if (tail & 0x80)
		put_input(in, tail & 0x1f); /* trailing bytes */
	else if (tail & 0x40 && ml > HDR)
		ml -= 1 + tail % (ml - HDR); /* truncated */
	deliver(from, !(tail & 0x20) || (tail & 0x10));
}

/* Raw bytes as a message, with the checksum fixed or not. */
static void op_raw(struct in *in)
{
	uint8_t a = u8(in);
	uint32_t len = (uint32_t)u8(in) << 3 | (a & 7);
	ml = 0;
	put_input(in, len);
	deliver(2 + (a >> 7), a & 8);
}

static void one_op(struct in *in)
{
	uint8_t op = u8(in);
	uint8_t x = u8(in);
	switch (op % 12) {
	case 0:
	case 1: /* time passes */
		now += (1 + (uint64_t)x) * MS * (op & 0x80 ? 10 : 1);
		R->tick(st, now);
		break;
	case 2:
	case 3:
	case 4:
		op_message(in);
		break;
	case 5:
		op_raw(in);
		break;
	case 6: { /* a proposal (refused when not leader) */
		uint32_t len = op & 0x80 ? 900 + x : x;
		uint8_t d[1200];
		memset(d, x, sizeof(d));
		int rc = R->propose(st, now, d, len);
		/* -EROFS: the log holds a SEAL (an entry of that type can come in a message) */
		CHECK(rc == 0 || rc == -EPERM || rc == -EBUSY || rc == -ENOBUFS || rc == -EIO ||
		      rc == -EMSGSIZE || rc == -EROFS);
		CHECK(len <= sl_raft_max_entry_bytes(&opts) || rc != 0);
		break;
	}
	case 7:
		sl_raft_read_index(st, now, x & 1);
		break;
	case 8:
		if (x & 0x80)
			sl_raft_transfer_leader(st, x % 5);
		else
			sl_raft_change(st, now, (enum sl_raft_change_op)(x % 4), (x >> 2) % 5);
		break;
	case 9: /* the disk stalls, or catches up */
		stalled = !stalled;
		if (!stalled && stalled_index > 0) {
			R->persisted(st, stalled_term, stalled_index);
			stalled_index = 0;
		}
		if (x == 0xff)
			R->storage_failed(st, lg_last(NULL), -EIO);
		break;
	case 10: { /* the caller snapshots its state machine and compacts its log */
		struct sl_cons_snapshot meta;
		if (applied > lg.snap_index && sl_raft_snapshot_meta(st, applied, &meta) == 0) {
			uint64_t t;
			CHECK(lg_term(NULL, applied, &t) == 0 && t == meta.term);
			uint8_t d[4] = {x, 1, 2, 3};
			meta.data = d;
			meta.len = sizeof(d);
			lg_set_snapshot(&meta, false);
		}
		break;
	}
	case 11: /* crash and restart from what the caller persisted */
		if (!stalled) {
			R->destroy(st);
			start();
		}
		break;
	}
	drain();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&lg, 0, sizeof(lg));
	view = (struct sl_cons_log){NULL, lg_first, lg_last, lg_term, lg_entry, lg_snapshot};
	now = 1000 * MS;
	stalled = full = false;
	stalled_index = 0;
	start();
	struct in in = {data, size, 0};
	while (in.pos < in.n && !full)
		one_op(&in);
#ifdef FUZZ_RAFT_TRACE /* where a script ends up: for writing seeds (gen_raft_seeds.py) */
	struct sl_cons_status s;
	struct sl_raft_stats rs;
	R->status(st, &s);
	sl_raft_stats(st, &rs);
	fprintf(
	    stderr,
	    "role %u term %llu commit %llu applied %llu last %llu snap %llu | "
	    "leader_terms %llu snaps sent %llu installed %llu truncations %llu bad %llu big %llu\n",
	    s.role, (unsigned long long)s.term, (unsigned long long)s.commit_index,
	    (unsigned long long)s.applied_index, (unsigned long long)s.last_index,
	    (unsigned long long)lg.snap_index, (unsigned long long)rs.leader_terms,
	    (unsigned long long)rs.snapshots_sent, (unsigned long long)rs.snapshots_installed,
	    (unsigned long long)rs.truncations, (unsigned long long)rs.msgs_bad,
	    (unsigned long long)rs.msgs_too_big);
#endif
	R->destroy(st);
	st = NULL;
	return 0;
}

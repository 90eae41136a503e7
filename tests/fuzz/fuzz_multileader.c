/* fuzz_multileader.c - libFuzzer target for multileader's step() on anything a peer could
 * send. The input is a script run against replica 1 of a three-replica group: batches built
 * field by field (origin indexes near what the replica expects, lengths that may lie),
 * states (acks, nacks, read rounds, a peer rejoining and asking for an image), snapshot
 * images in chunks (in order, with a chunk skipped, repeated or lying) and acks of the
 * chunks the replica sends, raw bytes with or without a valid checksum, proposals, reads,
 * time passing, durability, restarts. The harness is the replica's log: the protocol must
 * never crash, never send a message over max_msg_bytes, and must hand out each origin in
 * order. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus.h"
#include "fuzz_util.h"
#include "multileader.h"
#include "sl_le.h"

#define MS 1000000ull
#define GROUP 9u
#define LOGCAP 512u
#define EMAX (64u + SL_ML_ENTRY_HDR)
#define MB 2048u

static const struct sl_cons_ops *M = &sl_cons_multileader_ops;
static const struct sl_ml_opts opts = {
    .max_entry_bytes = 64,
    .max_batch_entries = 4,
    .window_batches = 2,
    .retention_entries = 16,
    .max_undurable = 64,
    .max_pending = 32,
    .max_apply_entries = 16,
    .max_reads = 4,
    .max_msg_bytes = 256, /* snapshot chunks of 220 bytes */
    .max_snapshot_bytes = 512,
};

static struct {
	uint8_t d[LOGCAP][EMAX];
	uint32_t len[LOGCAP];
	uint64_t first, last, synced;
	uint8_t snap[1024];
	uint32_t snap_len;
	uint64_t snap_index;
} lg;
static void *st;
static uint64_t now, applied, vec[4];
static bool full;
static struct sl_cons_log view;
/* per peer, the last snapshot chunk the replica sent it: the id and end an ack names */
static uint64_t tx_epoch[4], tx_index[4];
static uint32_t tx_end[4];

static uint64_t lg_first(void *c) { return (void)c, lg.first; }
static uint64_t lg_last(void *c) { return (void)c, lg.last; }
static int lg_term(void *c, uint64_t i, uint64_t *t)
{
	(void)c;
	if (i < lg.first || i > lg.last)
		return -ENOENT;
	*t = 1;
	return 0;
}
static int lg_entry(void *c, uint64_t i, struct sl_cons_entry *o)
{
	(void)c;
	if (i < lg.first || i > lg.last)
		return -ENOENT;
	memset(o, 0, sizeof(*o));
	o->term = 1;
	o->index = i;
	o->len = lg.len[i % LOGCAP];
	o->data = lg.d[i % LOGCAP];
	return 0;
}
static int lg_snapshot(void *c, struct sl_cons_snapshot *o)
{
	(void)c;
	if (lg.snap_len == 0)
		return -EAGAIN;
	memset(o, 0, sizeof(*o));
	o->index = lg.snap_index;
	o->term = 1;
	o->len = lg.snap_len;
	o->data = lg.snap;
	return 0;
}

static void start(void)
{
	struct sl_cons_config cfg;
	fuzz_cons_config_3(&cfg, GROUP);
	cfg.proto_opts = &opts;
	view = (struct sl_cons_log){NULL, lg_first, lg_last, lg_term, lg_entry, lg_snapshot};
	cfg.log = &view;
	/* everything in the log came from the protocol itself: a restart must take it */
	CHECK(M->create(&cfg, &st) == 0);
	/* the state comes back from the snapshot; entries it covers are skipped on replay */
	applied = lg.snap_len > 0 && lg.snap_index >= lg.first - 1 ? lg.snap_index : lg.first - 1;
	memset(vec, 0, sizeof(vec));
	uint32_t ids[3], n;
	uint64_t idx[3];
	if (lg.snap_len > 0 && sl_ml_snap_vec_get(lg.snap, lg.snap_len, ids, idx, 3, &n) > 0)
		for (uint32_t i = 0; i < n; i++)
			vec[ids[i]] = idx[i];
	M->tick(st, now);
}

static void drain(void)
{
	for (int guard = 0; guard < 32 && !full && M->has_ready(st); guard++) {
		struct sl_cons_ready rd;
		M->ready(st, &rd);
		if (rd.has_snapshot) {
			/* a merge at the log's end, everything applied; the log stays */
			CHECK(rd.snapshot.index == lg.last && applied == lg.last);
			CHECK(rd.snapshot.len <= opts.max_snapshot_bytes);
			uint32_t ids[3], n;
			uint64_t idx[3];
			CHECK(sl_ml_snap_vec_get(rd.snapshot.data, rd.snapshot.len, ids, idx, 3, &n) > 0);
			for (uint32_t i = 0; i < n; i++)
				if (idx[i] > vec[ids[i]])
					vec[ids[i]] = idx[i];
			uint32_t all[3] = {1, 2, 3};
			uint64_t v[3] = {vec[1], vec[2], vec[3]};
			lg.snap_len = sl_ml_snap_vec_put(lg.snap, sizeof(lg.snap), all, v, 3);
			lg.snap_index = rd.snapshot.index;
		}
		for (uint32_t i = 0; i < rd.n_persist; i++) {
			const struct sl_cons_entry *e = &rd.persist[i];
			CHECK(e->index == lg.last + 1 && e->len <= EMAX);
			if (e->index - lg.first + 1 >= LOGCAP) {
				full = true; /* the harness's limit: stop this run */
				break;
			}
			memcpy(lg.d[e->index % LOGCAP], e->data, e->len);
			lg.len[e->index % LOGCAP] = e->len;
			lg.last = e->index;
		}
		for (uint32_t i = 0; i < rd.n_msgs; i++) {
			volatile uint8_t x = 0;
			CHECK(rd.msgs[i].from == 1 && rd.msgs[i].to >= 2 && rd.msgs[i].to <= 3);
			CHECK(rd.msgs[i].len <= opts.max_msg_bytes);
			if (rd.msgs[i].len >= 36 && rd.msgs[i].buf[1] == 3) {
				uint32_t to = rd.msgs[i].to;
				tx_epoch[to] = sl_get_u64(rd.msgs[i].buf + 8);
				tx_index[to] = sl_get_u64(rd.msgs[i].buf + 16);
				tx_end[to] = sl_get_u32(rd.msgs[i].buf + 28) +
					     sl_get_u32(rd.msgs[i].buf + 32);
			}
			for (uint32_t j = 0; j < rd.msgs[i].len; j++)
				x ^= rd.msgs[i].buf[j];
			(void)x;
		}
		for (uint32_t i = 0; i < rd.n_committed && !full; i++) {
			const struct sl_cons_entry *e = &rd.committed[i];
			if (e->index <= applied)
				continue;
			CHECK(e->index == applied + 1 && e->index <= lg.synced);
			CHECK(e->origin >= 1 && e->origin <= 3);
			/* each origin's stream in order: the property the index check guards */
			CHECK(e->origin_index == vec[e->origin] + 1);
			vec[e->origin] = e->origin_index;
			applied = e->index;
		}
		M->advance(st, &rd);
	}
}

static uint32_t fnv(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void send(uint32_t from, uint8_t *b, uint32_t len, bool fix)
{
	if (fix && len >= 8)
		sl_put_u32(b + 4, fnv(b + 8, len - 8));
	struct sl_cons_msg m = {GROUP, from, 1, len, b};
	M->step(st, &m);
}

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct rd *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

static uint64_t near(struct rd *r, uint64_t base)
{
	uint8_t v = u8(r);
	return v >= 250 ? (uint64_t)v << 56 : base + v % 16 - (v % 16 > 8 && base > 8 ? 8 : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&lg, 0, sizeof(lg));
	lg.first = 1;
	memset(tx_epoch, 0, sizeof(tx_epoch));
	memset(tx_index, 0, sizeof(tx_index));
	memset(tx_end, 0, sizeof(tx_end));
	now = 1000 * MS;
	full = false;
	start();
	struct rd r = {data, size};
	static uint8_t b[MB];
	for (int ops = 0; r.n > 0 && ops < 256 && !full; ops++) {
		uint8_t op = u8(&r);
		uint32_t from = 2 + (op & 1);
		struct sl_ml_origin org[3];
		sl_ml_origins(st, org, 3);
		switch ((op >> 1) % 11) {
		case 0: { /* a batch of `from`'s stream */
			uint32_t n = u8(&r) % 6, len = 24;
			memset(b, 0, 24);
			b[0] = 1;
			b[1] = 1;
			sl_put_u64(b + 8, near(&r, org[from - 1].received + 1));
			sl_put_u32(b + 16, u8(&r) == 0 ? 200 : n);
			sl_put_u32(b + 20, u8(&r) == 1 ? 1 : from);
			for (uint32_t i = 0; i < n && len + 28 + 70 < MB; i++) {
				uint32_t el = u8(&r) % 70;
				sl_put_u64(b + len, near(&r, now >> 4));
				sl_put_u64(b + len + 8, u8(&r) % 3);
				sl_put_u64(b + len + 16, u8(&r));
				sl_put_u32(b + len + 24, u8(&r) == 7 ? 5000 : el);
				memset(b + len + 28, 0x5a, el);
				len += 28 + el;
			}
			send(from, b, len - (u8(&r) == 3 ? 1 : 0), u8(&r) != 9);
			break;
		}
		case 1: { /* a state: acks, nacks, read rounds; rejoin and image flags */
			uint32_t n = u8(&r) % 5, len = 33 + 12 * n;
			memset(b, 0, len);
			b[0] = 1;
			b[1] = 2;
			/* a flags byte with its top bit set also gives rejoining (8), wants an
			 * image (32) and no image needed (64), in any combination */
			uint8_t fl = u8(&r);
			sl_put_u16(b + 2, (fl & 0x80) ? (fl & 0x6f) : (fl & 7));
			sl_put_u64(b + 8, u8(&r));
			sl_put_u64(b + 16, u8(&r) % 8);
			sl_put_u64(b + 24, near(&r, sl_ml_last_own(st)));
			b[32] = (uint8_t)(u8(&r) == 2 ? 200 : n);
			for (uint32_t i = 0; i < n; i++) {
				sl_put_u32(b + 33 + 12 * i, u8(&r) % 5);
				sl_put_u64(b + 37 + 12 * i, near(&r, sl_ml_last_own(st) / 2));
			}
			send(from, b, len, true);
			break;
		}
		case 2: { /* a snapshot image, in chunks */
			uint32_t ids[3] = {1, 2, 3};
			uint64_t idx[3];
			static uint8_t img[1024];
			for (uint32_t i = 0; i < 3; i++)
				idx[i] = near(&r, org[i].received);
			uint32_t total = sl_ml_snap_vec_put(img, sizeof(img), ids, idx, u8(&r) % 4);
			uint32_t extra = (uint32_t)u8(&r) * 3;
			memset(img + total, 0x33, extra);
			total += extra;
			uint64_t epoch = 1 + u8(&r) % 3, index = u8(&r);
			uint32_t csz = 1 + u8(&r) % 230, mode = u8(&r);
			uint32_t claim = mode == 5 ? total + 1 : mode == 6 ? 9999 : total;
			uint32_t k = 0;
			for (uint32_t off = 0; off < total && k < 16; off += csz, k++) {
				if ((mode & 0x80) && k == (mode & 7))
					continue; /* lost */
				uint32_t dl = total - off < csz ? total - off : csz;
				if (36 + dl > MB)
					break;
				memset(b, 0, 36);
				b[0] = 1;
				b[1] = 3;
				sl_put_u64(b + 8, mode == 7 ? 0 : epoch);
				sl_put_u64(b + 16, index);
				sl_put_u32(b + 24, claim);
				sl_put_u32(b + 28, off);
				sl_put_u32(b + 32, mode == 8 ? dl + 1 : dl);
				memcpy(b + 36, img + off, dl);
				send(from, b, 36 + dl, true);
				if ((mode & 0x40) && k == 0)
					send(from, b, 36 + dl, true); /* repeated */
				drain();
			}
			break;
		}
		case 9: { /* an ack of the replica's snapshot chunks (or of another image) */
			uint8_t v = u8(&r);
			memset(b, 0, 28);
			b[0] = 1;
			b[1] = 4;
			sl_put_u16(b + 2, v & 1); /* F_REJECT */
			sl_put_u64(b + 8, v == 2 ? tx_epoch[from] + 1 : tx_epoch[from]);
			sl_put_u64(b + 16, tx_index[from]);
			uint32_t back = u8(&r), end = tx_end[from];
			sl_put_u32(b + 24, v == 3 ? end + 1 : back > end ? 0 : end - back);
			send(from, b, 28 - (v == 4), true);
			break;
		}
		case 3: { /* raw bytes */
			uint32_t len = u8(&r);
			for (uint32_t i = 0; i < len; i++)
				b[i] = u8(&r);
			send(from, b, len, u8(&r) & 1);
			break;
		}
		case 4: { /* a proposal */
			uint8_t p[64];
			memset(p, op, sizeof(p));
			struct sl_ml_prop pr = {u8(&r) % 3, u8(&r), u8(&r) % 5};
			sl_ml_propose(st, op, p, u8(&r) % 80, &pr);
			break;
		}
		case 5:
			now += (uint64_t)u8(&r) * MS;
			M->tick(st, now);
			break;
		case 6: /* the disk catches up */
			lg.synced = lg.last;
			M->persisted(st, 1, lg.last);
			break;
		case 7:
			if (op & 1)
				M->read(st, u8(&r));
			else
				sl_ml_read_after(st, u8(&r), u8(&r) % 4, u8(&r));
			break;
		case 8: { /* a snapshot of what is applied, the log compacted */
			uint32_t ids[3] = {1, 2, 3};
			uint64_t idx[3] = {vec[1], vec[2], vec[3]};
			lg.snap_len = sl_ml_snap_vec_put(lg.snap, sizeof(lg.snap), ids, idx, 3);
			uint32_t fill = u8(&r) * 2u; /* several chunks of max_msg_bytes */
			memset(lg.snap + lg.snap_len, 0x44, fill);
			lg.snap_len += fill;
			lg.snap_index = applied;
			uint64_t upto = sl_ml_safe_delete(st);
			CHECK(upto <= applied);
			if (upto + 1 > lg.first)
				lg.first = upto + 1;
			break;
		}
		default: /* crash: the unsynced tail is lost */
			M->destroy(st);
			lg.last = lg.synced;
			start();
			break;
		}
		drain();
	}
	M->destroy(st);
	return 0;
}

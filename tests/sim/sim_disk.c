/* sim_disk.c - the simulated disk of one replica: a write-ahead log of checksummed records
 * (hard state, entry, snapshot) behind an in-memory view that serves the protocol's log
 * read side. Every change goes through the same record decoder that recovery replays, so
 * what a crash leaves behind is exactly what a real WAL would give back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sl_assert.h"
#include "sl_le.h"

enum { REC_HS = 1, REC_ENTRY = 2, REC_SNAP = 3 };
#define REC_HDR 8u /* payload length u32, checksum u32 */
#define REC_MAX (64u + SIM_MAX_PAYLOAD + SIM_SNAP_BYTES + 8u * SL_CONS_MAX_PEERS)

static uint32_t rec_sum(const uint8_t *p, uint32_t n) { return (uint32_t)sim_hash(p, n, 7); }

static void ents_reserve(struct sim_disk *d, uint64_t n)
{
	if (n <= d->cap_ents)
		return;
	uint64_t cap = d->cap_ents ? d->cap_ents * 2 : 256;
	while (cap < n)
		cap *= 2;
	d->ents = realloc(d->ents, cap * sizeof(*d->ents));
	SL_ASSERT(d->ents != NULL);
	d->cap_ents = cap;
}

uint64_t sim_disk_last(const struct sim_disk *d) { return d->snap_index + d->n_ents; }

/* Apply one record payload to the view: the single path for writes and for replay. */
static int apply_rec(struct sim_disk *d, const uint8_t *p, uint32_t n)
{
	if (n < 1)
		return -1;
	switch (p[0]) {
	case REC_HS:
		if (n != 21)
			return -1;
		d->hs.term = sl_get_u64(p + 1);
		d->hs.vote = sl_get_u32(p + 9);
		d->hs.commit = sl_get_u64(p + 13);
		return 0;
	case REC_ENTRY: {
		if (n < 22)
			return -1;
		uint64_t idx = sl_get_u64(p + 1);
		uint32_t len = sl_get_u32(p + 18);
		if (len > SIM_MAX_PAYLOAD || n != 22 + len || idx > sim_disk_last(d) + 1)
			return -1;
		if (idx <= d->snap_index)
			return 0;
		d->n_ents = idx - d->snap_index - 1; /* an entry replaces its index and the rest */
		ents_reserve(d, d->n_ents + 1);
		struct sim_entry *e = &d->ents[d->n_ents++];
		e->term = sl_get_u64(p + 9);
		e->type = p[17];
		e->len = len;
		memcpy(e->data, p + 22, len);
		return 0;
	}
	case REC_SNAP: {
		if (n < 20)
			return -1;
		bool install = p[1] != 0;
		uint64_t idx = sl_get_u64(p + 2), term = sl_get_u64(p + 10);
		uint32_t pos = 18;
		struct sl_cons_conf c;
		memset(&c, 0, sizeof(c));
		c.n_voters = p[pos++];
		if (c.n_voters > SL_CONS_MAX_PEERS || n < pos + 4 * c.n_voters + 5)
			return -1;
		for (uint32_t i = 0; i < c.n_voters; i++, pos += 4)
			c.voters[i] = sl_get_u32(p + pos);
		c.n_learners = p[pos++];
		if (c.n_learners + c.n_voters > SL_CONS_MAX_PEERS || n < pos + 4 * c.n_learners + 4)
			return -1;
		for (uint32_t i = 0; i < c.n_learners; i++, pos += 4)
			c.learners[i] = sl_get_u32(p + pos);
		uint32_t len = sl_get_u32(p + pos);
		pos += 4;
		if (len > SIM_SNAP_BYTES || n != pos + len)
			return -1;
		if (!install && idx <= d->snap_index)
			return 0;
		if (install || idx >= sim_disk_last(d)) {
			d->n_ents = 0;
		} else {
			uint64_t drop = idx - d->snap_index;
			memmove(d->ents, d->ents + drop, (d->n_ents - drop) * sizeof(*d->ents));
			d->n_ents -= drop;
		}
		d->snap_index = idx;
		d->snap_term = term;
		d->snap_conf = c;
		d->snap_len = len;
		memcpy(d->snap_data, p + pos, len);
		return 0;
	}
	default:
		return -1;
	}
}

static void wal_append(struct sim_disk *d, const uint8_t *p, uint32_t n)
{
	if (d->wal_len + REC_HDR + n > d->wal_cap) {
		size_t cap = d->wal_cap ? d->wal_cap * 2 : 64 * 1024;
		while (cap < d->wal_len + REC_HDR + n)
			cap *= 2;
		d->wal = realloc(d->wal, cap);
		SL_ASSERT(d->wal != NULL);
		d->wal_cap = cap;
	}
	sl_put_u32(d->wal + d->wal_len, n);
	sl_put_u32(d->wal + d->wal_len + 4, rec_sum(p, n));
	memcpy(d->wal + d->wal_len + REC_HDR, p, n);
	d->wal_len += REC_HDR + n;
	SL_ASSERT(apply_rec(d, p, n) == 0);
}

void sim_disk_write_hs(struct sim_disk *d, const struct sl_cons_hard_state *hs)
{
	uint8_t p[21];
	p[0] = REC_HS;
	sl_put_u64(p + 1, hs->term);
	sl_put_u32(p + 9, hs->vote);
	sl_put_u64(p + 13, hs->commit);
	wal_append(d, p, sizeof(p));
}

static void put_entry(struct sim_disk *d, uint64_t idx, uint64_t term, uint32_t type,
		      const uint8_t *data, uint32_t len)
{
	uint8_t p[22 + SIM_MAX_PAYLOAD];
	SL_ASSERT(len <= SIM_MAX_PAYLOAD);
	p[0] = REC_ENTRY;
	sl_put_u64(p + 1, idx);
	sl_put_u64(p + 9, term);
	p[17] = (uint8_t)type;
	sl_put_u32(p + 18, len);
	if (len > 0)
		memcpy(p + 22, data, len);
	wal_append(d, p, 22 + len);
}

void sim_disk_write_entries(struct sim_disk *d, const struct sl_cons_entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		put_entry(d, e[i].index, e[i].term, e[i].type, e[i].data, e[i].len);
}

static void put_snap(struct sim_disk *d, bool install, uint64_t idx, uint64_t term,
		     const struct sl_cons_conf *c, const uint8_t *data, uint32_t len)
{
	uint8_t p[REC_MAX];
	uint32_t pos = 0;
	SL_ASSERT(len <= SIM_SNAP_BYTES);
	p[pos++] = REC_SNAP;
	p[pos++] = install;
	sl_put_u64(p + pos, idx);
	sl_put_u64(p + pos + 8, term);
	pos += 16;
	p[pos++] = (uint8_t)c->n_voters;
	for (uint32_t i = 0; i < c->n_voters; i++, pos += 4)
		sl_put_u32(p + pos, c->voters[i]);
	p[pos++] = (uint8_t)c->n_learners;
	for (uint32_t i = 0; i < c->n_learners; i++, pos += 4)
		sl_put_u32(p + pos, c->learners[i]);
	sl_put_u32(p + pos, len);
	pos += 4;
	memcpy(p + pos, data, len);
	wal_append(d, p, pos + len);
}

void sim_disk_write_snapshot(struct sim_disk *d, const struct sl_cons_snapshot *s, bool install)
{
	put_snap(d, install, s->index, s->term, &s->conf, s->data, s->len);
}

static void view_reset(struct sim_disk *d)
{
	memset(&d->hs, 0, sizeof(d->hs));
	d->snap_index = d->snap_term = 0;
	d->snap_len = 0;
	memset(&d->snap_conf, 0, sizeof(d->snap_conf));
	d->n_ents = 0;
}

size_t sim_disk_crash(struct sim_disk *d, size_t extra, bool garble)
{
	size_t unsynced = d->wal_len - d->synced;
	size_t keep = d->synced + (extra < unsynced ? extra : unsynced);
	if (garble && keep > d->synced)
		d->wal[keep - 1] ^= 0xa5; /* the last sector came back with garbage */
	d->wal_len = keep;
	view_reset(d);
	size_t pos = 0;
	while (pos + REC_HDR <= d->wal_len) {
		uint32_t n = sl_get_u32(d->wal + pos);
		if (n > REC_MAX || pos + REC_HDR + n > d->wal_len)
			break;
		const uint8_t *p = d->wal + pos + REC_HDR;
		if (sl_get_u32(d->wal + pos + 4) != rec_sum(p, n) || apply_rec(d, p, n) != 0)
			break;
		pos += REC_HDR + n;
	}
	size_t cut = d->wal_len - pos;
	d->wal_len = d->synced = pos; /* recovery truncates the torn tail, then it is durable */
	return cut;
}

size_t sim_disk_crash_drawn(struct sim_disk *d, struct sim_rng *r, bool *lost)
{
	size_t unsynced = d->wal_len - d->synced;
	uint64_t pick = sim_below(r, 10);
	size_t extra = pick < 4 ? 0 : pick < 7 ? unsynced : sim_below(r, unsynced + 1);
	*lost = extra < unsynced;
	return sim_disk_crash(d, extra, sim_chance(r, 300000));
}

void sim_disk_rewrite(struct sim_disk *d)
{
	SL_ASSERT(d->synced == d->wal_len);
	struct sim_disk old = *d;
	d->wal = NULL;
	d->wal_len = d->wal_cap = 0;
	d->ents = NULL;
	d->n_ents = d->cap_ents = 0;
	view_reset(d);
	if (old.snap_index > 0)
		put_snap(d, true, old.snap_index, old.snap_term, &old.snap_conf, old.snap_data,
			 old.snap_len);
	for (uint64_t i = 0; i < old.n_ents; i++) {
		const struct sim_entry *e = &old.ents[i];
		put_entry(d, old.snap_index + 1 + i, e->term, e->type, e->data, e->len);
	}
	sim_disk_write_hs(d, &old.hs);
	d->synced = d->wal_len;
	free(old.wal);
	free(old.ents);
}

/* ---- the protocol's read side ---- */

static uint64_t lg_first(void *ctx) { return ((struct sim_disk *)ctx)->snap_index + 1; }
static uint64_t lg_last(void *ctx) { return sim_disk_last(ctx); }

static int lg_term(void *ctx, uint64_t idx, uint64_t *t)
{
	struct sim_disk *d = ctx;
	if (idx == d->snap_index) {
		*t = d->snap_term;
		return 0;
	}
	if (idx < d->snap_index || idx > sim_disk_last(d))
		return -ENOENT;
	*t = d->ents[idx - d->snap_index - 1].term;
	return 0;
}

static int lg_entry(void *ctx, uint64_t idx, struct sl_cons_entry *out)
{
	struct sim_disk *d = ctx;
	if (idx <= d->snap_index || idx > sim_disk_last(d))
		return -ENOENT;
	const struct sim_entry *e = &d->ents[idx - d->snap_index - 1];
	*out = (struct sl_cons_entry){e->term, idx, 0, e->type, e->len, e->data};
	return 0;
}

static int lg_snapshot(void *ctx, struct sl_cons_snapshot *out)
{
	struct sim_disk *d = ctx;
	if (d->snap_index == 0)
		return -ENOENT;
	*out = (struct sl_cons_snapshot){d->snap_index, d->snap_term, d->snap_conf, d->snap_len,
					 d->snap_data};
	return 0;
}

void sim_disk_init(struct sim_disk *d)
{
	memset(d, 0, sizeof(*d));
	d->log = (struct sl_cons_log){d, lg_first, lg_last, lg_term, lg_entry, lg_snapshot};
}

void sim_disk_free(struct sim_disk *d)
{
	free(d->ents);
	free(d->wal);
	memset(d, 0, sizeof(*d));
}

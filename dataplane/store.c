/* store.c - per-region in-memory series store: an open-addressing map from series id to a
 * series record holding time-ordered, non-overlapping chunks of (ts, value). Owned by one
 * core, so no locks; every byte comes from that core's jemalloc arena. Also the snapshot
 * image that lets the WAL be truncated.
 * String values: each one is its own allocation (struct sval, same arena flags, counted in
 * stats.bytes) whose address sits in the chunk's u64 value slot; the empty string is slot
 * 0 with no allocation. Chunk splits and memmoves therefore move strings for free, and an
 * overwrite frees the old allocation once the new one exists (so -ENOMEM changes nothing).
 * Strings are at most SL_STR_MAX bytes, so jemalloc size classes keep the slack small.
 * Versioned stores (multileader regions) also keep each point's version (hlc, origin) in
 * two more arrays after the values, in the same chunk allocation; an unversioned store's
 * chunks are exactly ts + values, so it pays nothing for them. */
#include "store.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "sl_jemalloc.h"


#include "lww.h"
#include "sl_assert.h"
#include "sl_le.h"

#define TABLE_CAP_MIN 64u
#define TABLE_LOAD_PCT 70u
#define CHUNKS_CAP_MIN 4u
#define FIB_MULT 0x9e3779b97f4a7c15ull

#define SNAP_MAGIC 0x4e534c53u /* "SLSN" read as little-endian bytes */
#define SNAP_VERSION 2u
#define SNAP_VERSION_V1 1u /* no string series; still read */
#define SNAP_HDR_BYTES 32u
#define SNAP_REC_HDR_BYTES 19u
#define SNAP_POINT_BYTES 16u
#define SNAP_STR_POINT_BYTES 12u /* ts i64 | str_len u32, then the bytes */
#define SNAP_VER_BYTES 12u	  /* hlc u64 | origin u32 after each sample of a versioned image */
#define SNAP_FLAGS_KNOWN (SL_STORE_SNAP_F_DELTA | SL_STORE_SNAP_F_VERSIONED)
#define SNAP_CRC_SEED 0xffffffffu
#define SNAP_IO_BYTES (64u * 1024u)
#define SNAP_SKIP_COST 32u /* budget bytes a walk step charges for a series a delta skips */

/* Timestamps first, then chunk_points values right after the ts array (one allocation);
 * in a versioned store then chunk_points hlc u64 and chunk_points origin u32. */
struct chunk {
	uint32_t n;	  /* never 0 once linked into a series */
	uint32_t mod_gen; /* st->gen at its last change: a delta image holds it when >= since */
	int64_t ts[];
};

struct series {
	uint64_t id;
	uint64_t n_points;
	struct chunk **chunks; /* ordered by time, non-overlapping */
	uint32_t n_chunks;
	uint32_t cap_chunks;
	uint8_t type;
	uint16_t key_len;
	uint32_t mod_gen; /* the highest mod_gen of its chunks: a clean series is skipped */
	struct series *next_created; /* creation order: a stable walk for snapshots */
	char key[]; /* key_len bytes + NUL */
};

struct slot {
	uint64_t id;
	struct series *s; /* NULL: empty (series are never removed, so no tombstones) */
};

struct sl_store {
	uint32_t region_id;
	uint32_t chunk_points;
	bool versioned;
	int mflags;
	unsigned table_log2;
	struct slot *slots;
	/* every series in creation order: the table may rehash between two steps of a
	 * snapshot, this list never changes order (series are never removed) */
	struct series *created_head, *created_tail;
	/* the generation every change is stamped with; a walk that begins moves it on, so
	 * a delta image since gen g holds every chunk changed at or after g */
	uint32_t gen;
	struct sl_store_stats stats;
};

/* ---- memory: every allocation goes through these so stats.bytes stays exact ---- */

static void *st_alloc(struct sl_store *st, size_t size, int extra_flags)
{
	void *p = mallocx(size, st->mflags | extra_flags);
	if (p != NULL)
		st->stats.bytes += sallocx(p, st->mflags);
	return p;
}

static void st_free(struct sl_store *st, void *p)
{
	if (p == NULL)
		return;
	st->stats.bytes -= sallocx(p, st->mflags);
	dallocx(p, st->mflags);
}

/* ---- series table ---- */

static uint64_t table_cap(const struct sl_store *st) { return 1ull << st->table_log2; }

/* Fibonacci hashing: ids are hashes already, the multiply only spreads the top bits. */
static uint64_t table_home(const struct sl_store *st, uint64_t id)
{
	return (id * FIB_MULT) >> (64u - st->table_log2);
}

static struct series *table_find(const struct sl_store *st, uint64_t id)
{
	uint64_t mask = table_cap(st) - 1;
	uint64_t i = table_home(st, id);
	for (uint64_t probes = 0; probes <= mask; probes++, i = (i + 1) & mask) {
		if (st->slots[i].s == NULL)
			return NULL;
		if (st->slots[i].id == id)
			return st->slots[i].s;
	}
	return NULL;
}

static void table_put(struct sl_store *st, struct slot *slots, struct series *s)
{
	uint64_t mask = table_cap(st) - 1;
	uint64_t i = table_home(st, s->id);
	for (uint64_t probes = 0; probes <= mask; probes++, i = (i + 1) & mask) {
		if (slots[i].s == NULL) {
			slots[i].id = s->id;
			slots[i].s = s;
			return;
		}
	}
	SL_ASSERT(!"series table full");
}

/* Makes room for one more series, growing (x2) past TABLE_LOAD_PCT. */
static int table_reserve(struct sl_store *st)
{
	uint64_t cap = table_cap(st);
	if ((st->stats.series + 1) * 100 <= cap * TABLE_LOAD_PCT)
		return 0;
	if (st->table_log2 >= 40)
		return -ENOMEM;
	struct slot *slots = st_alloc(st, 2 * cap * sizeof(*slots), MALLOCX_ZERO);
	if (slots == NULL)
		return -ENOMEM;
	struct slot *old = st->slots;
	st->table_log2++;
	for (uint64_t i = 0; i < cap; i++) {
		if (old[i].s != NULL)
			table_put(st, slots, old[i].s);
	}
	st->slots = slots;
	st_free(st, old);
	return 0;
}

/* ---- values: the u64 slot of a sample ---- */

/* A string value; the store keeps its address in the slot (see the top of the file). */
struct sval {
	uint32_t len; /* 1..SL_STR_MAX */
	char bytes[];
};

static const struct sval *sval_of(uint64_t slot) { return (const struct sval *)(uintptr_t)slot; }

static uint32_t sval_len(uint64_t slot) { return slot == 0 ? 0 : sval_of(slot)->len; }

/* A string slot of len bytes for the caller to fill through *bytes (NULL when len is 0). */
static int sval_new(struct sl_store *st, uint32_t len, uint64_t *slot, char **bytes)
{
	SL_ASSERT(len <= SL_STR_MAX);
	*slot = 0;
	*bytes = NULL;
	if (len == 0)
		return 0;
	struct sval *v = st_alloc(st, sizeof(*v) + len, 0);
	if (v == NULL)
		return -ENOMEM;
	v->len = len;
	*slot = (uint64_t)(uintptr_t)v;
	*bytes = v->bytes;
	return 0;
}

/* The slot a validated point's value takes: its bits, or a fresh copy of its string. */
static int value_make(struct sl_store *st, const struct sl_point *p, uint64_t *slot)
{
	if (p->type != SL_VAL_STR) {
		*slot = p->value;
		return 0;
	}
	char *bytes = NULL;
	int rc = sval_new(st, p->str_len, slot, &bytes);
	if (rc == 0 && p->str_len > 0)
		memcpy(bytes, p->str, p->str_len);
	return rc;
}

/* Releases what a slot owns (only non-empty strings own anything). */
static void value_drop(struct sl_store *st, uint8_t type, uint64_t slot)
{
	if (type == SL_VAL_STR && slot != 0)
		st_free(st, (void *)(uintptr_t)slot);
}

/* ---- chunks ---- */

/* The version of a write; unversioned stores ignore it, versioned ones keep it per point. */
struct ver {
	uint64_t hlc;
	uint32_t origin;
};

/* What sl_store_apply / sl_store_apply_batch write: loses to every real write. */
static const struct ver VER_NONE = {0, 0};

static uint64_t *chunk_vals(const struct sl_store *st, struct chunk *c)
{
	return (uint64_t *)(c->ts + st->chunk_points);
}

/* Versioned stores only: the arrays after the values. */
static uint64_t *chunk_hlc(const struct sl_store *st, struct chunk *c)
{
	return chunk_vals(st, c) + st->chunk_points;
}

static uint32_t *chunk_origin(const struct sl_store *st, struct chunk *c)
{
	return (uint32_t *)(chunk_hlc(st, c) + st->chunk_points);
}

static struct ver chunk_ver(const struct sl_store *st, struct chunk *c, uint32_t i)
{
	return (struct ver){chunk_hlc(st, c)[i], chunk_origin(st, c)[i]};
}

static struct chunk *chunk_new(struct sl_store *st)
{
	size_t size = sizeof(struct chunk) + (size_t)st->chunk_points * 2 * sizeof(uint64_t);
	if (st->versioned)
		size += (size_t)st->chunk_points * (sizeof(uint64_t) + sizeof(uint32_t));
	struct chunk *c = st_alloc(st, size, 0);
	if (c == NULL)
		return NULL;
	c->n = 0;
	c->mod_gen = st->gen;
	st->stats.chunks++;
	return c;
}

static void chunk_free(struct sl_store *st, struct chunk *c)
{
	st->stats.chunks--;
	st_free(st, c);
}

/* Index of the first timestamp >= ts in ts[0..n). */
static uint32_t ts_lower_bound(const int64_t *ts, uint32_t n, int64_t want)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (ts[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the last chunk whose first timestamp is <= ts, or 0 when ts precedes all. */
static uint32_t chunk_find(const struct series *s, int64_t ts)
{
	uint32_t lo = 0, hi = s->n_chunks;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->chunks[mid]->ts[0] <= ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? 0 : lo - 1;
}

/* Makes room for one more chunk pointer in s->chunks. */
static int chunks_reserve(struct sl_store *st, struct series *s)
{
	if (s->n_chunks < s->cap_chunks)
		return 0;
	if (s->cap_chunks > UINT32_MAX / 2)
		return -ENOMEM;
	uint32_t cap = s->cap_chunks * 2;
	size_t old_bytes = sallocx(s->chunks, st->mflags);
	struct chunk **p = rallocx(s->chunks, (size_t)cap * sizeof(*p), st->mflags);
	if (p == NULL)
		return -ENOMEM;
	st->stats.bytes = st->stats.bytes - old_bytes + sallocx(p, st->mflags);
	s->chunks = p;
	s->cap_chunks = cap;
	return 0;
}

/* Allocates an empty chunk and links it at position `at`; -ENOMEM leaves s unchanged. */
static struct chunk *chunk_link_new(struct sl_store *st, struct series *s, uint32_t at)
{
	if (chunks_reserve(st, s) != 0)
		return NULL;
	struct chunk *c = chunk_new(st);
	if (c == NULL)
		return NULL;
	memmove(&s->chunks[at + 1], &s->chunks[at], (s->n_chunks - at) * sizeof(*s->chunks));
	s->chunks[at] = c;
	s->n_chunks++;
	return c;
}

/* A chunk of s changed (a point added or overwritten, a split): the next delta holds it. */
static void chunk_touch(struct sl_store *st, struct series *s, struct chunk *c)
{
	c->mod_gen = st->gen;
	s->mod_gen = st->gen;
}

static void chunk_insert_at(struct sl_store *st, struct series *s, struct chunk *c, uint32_t pos,
			    int64_t ts, uint64_t value, const struct ver *v)
{
	chunk_touch(st, s, c);
	uint64_t *vals = chunk_vals(st, c);
	SL_ASSERT(c->n < st->chunk_points && pos <= c->n);
	memmove(&c->ts[pos + 1], &c->ts[pos], (c->n - pos) * sizeof(c->ts[0]));
	memmove(&vals[pos + 1], &vals[pos], (c->n - pos) * sizeof(vals[0]));
	c->ts[pos] = ts;
	vals[pos] = value;
	if (st->versioned) {
		uint64_t *hlc = chunk_hlc(st, c);
		uint32_t *origin = chunk_origin(st, c);
		memmove(&hlc[pos + 1], &hlc[pos], (c->n - pos) * sizeof(hlc[0]));
		memmove(&origin[pos + 1], &origin[pos], (c->n - pos) * sizeof(origin[0]));
		hlc[pos] = v->hlc;
		origin[pos] = v->origin;
	}
	c->n++;
	s->n_points++;
	st->stats.points++;
}

/* An existing (series, ts) gets a new write. Unversioned: the last one to arrive wins.
 * Versioned: the winner by version, and at the same version the later write: one batch
 * (one version) can write a point twice, and its last value stands, as in an unversioned
 * store; the same batch applied again ends the same. A write that loses changes nothing
 * and its slot is released here. */
static void point_overwrite(struct sl_store *st, struct series *s, struct chunk *c, uint32_t pos,
			    uint64_t value, const struct ver *v)
{
	uint64_t *vals = chunk_vals(st, c);
	if (st->versioned) {
		struct ver old = chunk_ver(st, c, pos);
		if ((v->hlc != old.hlc || v->origin != old.origin) &&
		    !sl_lww_wins(v->hlc, v->origin, old.hlc, old.origin)) {
			value_drop(st, s->type, value);
			return;
		}
		chunk_hlc(st, c)[pos] = v->hlc;
		chunk_origin(st, c)[pos] = v->origin;
	}
	value_drop(st, s->type, vals[pos]);
	vals[pos] = value;
	chunk_touch(st, s, c);
}

/* Copies points [from, from + n) of chunk a to the start of chunk b (split). */
static void chunk_copy_tail(const struct sl_store *st, struct chunk *a, uint32_t from,
			    struct chunk *b, uint32_t n)
{
	memcpy(b->ts, &a->ts[from], n * sizeof(a->ts[0]));
	memcpy(chunk_vals(st, b), &chunk_vals(st, a)[from], n * sizeof(uint64_t));
	if (st->versioned) {
		memcpy(chunk_hlc(st, b), &chunk_hlc(st, a)[from], n * sizeof(uint64_t));
		memcpy(chunk_origin(st, b), &chunk_origin(st, a)[from], n * sizeof(uint32_t));
	}
}

/* Out-of-order or overwriting write: binary search the chunk, split it when full. */
static int series_put_slow(struct sl_store *st, struct series *s, int64_t ts, uint64_t value,
			   const struct ver *v)
{
	uint32_t ci = chunk_find(s, ts);
	struct chunk *c = s->chunks[ci];
	uint32_t pos = ts_lower_bound(c->ts, c->n, ts);
	if (pos < c->n && c->ts[pos] == ts) {
		point_overwrite(st, s, c, pos, value, v);
		return 0;
	}
	if (c->n == st->chunk_points) {
		struct chunk *upper = chunk_link_new(st, s, ci + 1);
		if (upper == NULL)
			return -ENOMEM;
		uint32_t half = c->n / 2;
		upper->n = c->n - half;
		chunk_copy_tail(st, c, half, upper, upper->n);
		c->n = half;
		chunk_touch(st, s, c); /* both halves: they hold other points than before */
		chunk_touch(st, s, upper);
		/* pos == half lands at the end of the lower half: still between both. */
		if (pos > half) {
			c = upper;
			pos -= half;
		}
	}
	chunk_insert_at(st, s, c, pos, ts, value, v);
	return 0;
}

/* Stores a slot made by value_make (or sval_new) with version v (versioned stores). On
 * success the series owns it (or released it: a write that lost by version); on -ENOMEM
 * the caller still does (and nothing changed). */
static int series_put(struct sl_store *st, struct series *s, int64_t ts, uint64_t value,
		      const struct ver *v)
{
	if (s->n_chunks > 0) {
		struct chunk *last = s->chunks[s->n_chunks - 1];
		if (ts <= last->ts[last->n - 1])
			return series_put_slow(st, s, ts, value, v);
		if (last->n < st->chunk_points) {
			chunk_insert_at(st, s, last, last->n, ts, value, v); /* O(1) append */
			return 0;
		}
	}
	struct chunk *c = chunk_link_new(st, s, s->n_chunks);
	if (c == NULL)
		return -ENOMEM;
	chunk_insert_at(st, s, c, 0, ts, value, v);
	return 0;
}

/* ---- series ---- */

static void series_free(struct sl_store *st, struct series *s)
{
	for (uint32_t i = 0; i < s->n_chunks; i++) {
		struct chunk *c = s->chunks[i];
		const uint64_t *vals = chunk_vals(st, c);
		for (uint32_t k = 0; s->type == SL_VAL_STR && k < c->n; k++)
			value_drop(st, s->type, vals[k]);
		chunk_free(st, c);
	}
	st_free(st, s->chunks);
	st_free(st, s);
}

static struct series *series_new(struct sl_store *st, const struct sl_point *p)
{
	struct series *s = st_alloc(st, sizeof(*s) + (size_t)p->key_len + 1, 0);
	if (s == NULL)
		return NULL;
	s->chunks = st_alloc(st, CHUNKS_CAP_MIN * sizeof(*s->chunks), 0);
	if (s->chunks == NULL) {
		st_free(st, s);
		return NULL;
	}
	s->id = p->series_id;
	s->n_points = 0;
	s->n_chunks = 0;
	s->cap_chunks = CHUNKS_CAP_MIN;
	s->mod_gen = st->gen;
	s->type = p->type;
	s->key_len = p->key_len;
	memcpy(s->key, p->key, p->key_len);
	s->key[p->key_len] = '\0';
	return s;
}

/* Stores slot `value` (ownership as series_put) at p->ts of series s, which is either
 * p's series of the same type or NULL: then a series is made from p, and linked only once
 * it holds its first point so a failed allocation never leaves an empty series behind. */
static int store_put_value(struct sl_store *st, struct series *s, const struct sl_point *p,
			   uint64_t value, const struct ver *v)
{
	if (s != NULL)
		return series_put(st, s, p->ts, value, v);
	int rc = table_reserve(st);
	if (rc != 0)
		return rc;
	s = series_new(st, p);
	if (s == NULL)
		return -ENOMEM;
	rc = series_put(st, s, p->ts, value, v);
	if (rc != 0) {
		series_free(st, s); /* holds no point, so it does not free `value` */
		return rc;
	}
	table_put(st, st->slots, s);
	s->next_created = NULL;
	if (st->created_tail != NULL)
		st->created_tail->next_created = s;
	else
		st->created_head = s;
	st->created_tail = s;
	st->stats.series++;
	return 0;
}

/* Applies one already-validated point written with version v. */
static int store_put(struct sl_store *st, const struct sl_point *p, const struct ver *v)
{
	struct series *s = table_find(st, p->series_id);
	if (s != NULL && s->type != p->type) {
		st->stats.type_conflicts++;
		return -EINVAL;
	}
	uint64_t value = 0;
	int rc = value_make(st, p, &value);
	if (rc != 0)
		return rc;
	rc = store_put_value(st, s, p, value, v);
	if (rc != 0)
		value_drop(st, p->type, value);
	return rc;
}

static void store_clear(struct sl_store *st)
{
	uint64_t cap = table_cap(st);
	for (uint64_t i = 0; i < cap; i++) {
		if (st->slots[i].s != NULL) {
			series_free(st, st->slots[i].s);
			st->slots[i].s = NULL;
			st->slots[i].id = 0;
		}
	}
	SL_ASSERT(st->stats.chunks == 0);
	st->created_head = st->created_tail = NULL;
	st->stats.series = 0;
	st->stats.points = 0;
}

/* ---- public API ---- */

int sl_store_create(const struct sl_store_config *cfg, struct sl_store **out)
{
	if (cfg == NULL || out == NULL)
		return -EINVAL;
	uint32_t chunk_points =
	    cfg->chunk_points ? cfg->chunk_points : SL_STORE_CHUNK_POINTS_DEFAULT;
	if (chunk_points < SL_STORE_CHUNK_POINTS_MIN || chunk_points > SL_STORE_CHUNK_POINTS_MAX)
		return -EINVAL;
	int mflags = 0;
	if (cfg->use_arena) {
		/* mallocx does not validate the index; a wrong one must not reach it. */
		unsigned narenas = 0;
		size_t sz = sizeof(narenas);
		if (mallctl("arenas.narenas", &narenas, &sz, NULL, 0) != 0 || cfg->arena >= narenas)
			return -EINVAL;
		/* No thread cache: a cached region may come from another arena, and the point
		 * of a per-core arena is that the core's data lives in it. */
		mflags = MALLOCX_ARENA(cfg->arena) | MALLOCX_TCACHE_NONE;
	}
	struct sl_store *st = mallocx(sizeof(*st), mflags | MALLOCX_ZERO);
	if (st == NULL)
		return -ENOMEM;
	st->region_id = cfg->region_id;
	st->chunk_points = chunk_points;
	st->versioned = cfg->versioned;
	st->mflags = mflags;
	st->table_log2 = 6;
	SL_ASSERT(table_cap(st) == TABLE_CAP_MIN);
	st->stats.bytes = sallocx(st, mflags);
	st->slots = st_alloc(st, TABLE_CAP_MIN * sizeof(*st->slots), MALLOCX_ZERO);
	if (st->slots == NULL) {
		dallocx(st, mflags);
		return -ENOMEM;
	}
	*out = st;
	return 0;
}

void sl_store_destroy(struct sl_store *st)
{
	if (st == NULL)
		return;
	int mflags = st->mflags;
	store_clear(st);
	st_free(st, st->slots);
	dallocx(st, mflags);
}

uint32_t sl_store_region(const struct sl_store *st) { return st->region_id; }

int sl_store_apply(struct sl_store *st, const struct sl_point *p)
{
	if (sl_batch_point_check(p) != 0)
		return -EINVAL;
	return store_put(st, p, &VER_NONE);
}

int sl_store_apply_v(struct sl_store *st, const struct sl_point *p, uint64_t hlc, uint32_t origin)
{
	if (!st->versioned)
		return -EINVAL;
	if (sl_batch_point_check(p) != 0)
		return -EINVAL;
	struct ver v = {hlc, origin};
	return store_put(st, p, &v);
}

bool sl_store_versioned(const struct sl_store *st) { return st->versioned; }

static int apply_batch(struct sl_store *st, const uint8_t *payload, size_t len, const struct ver *v,
		       uint32_t *applied, uint32_t *rejected)
{
	uint32_t n_ok = 0, n_bad = 0, region = 0;
	struct sl_batch_iter it;
	struct sl_point p;

	/* Validate everything first so a malformed tail never leaves half a batch applied. */
	int rc = sl_batch_check(payload, len, NULL, &region);
	if (rc == 0 && region != st->region_id)
		rc = -EXDEV;
	if (rc == 0) {
		rc = sl_batch_iter_init(&it, payload, len);
		SL_ASSERT(rc == 0);
		while (sl_batch_next(&it, &p) == 1) {
			rc = store_put(st, &p, v);
			if (rc == -EINVAL) {
				n_bad++;
				rc = 0;
			} else if (rc != 0) {
				break;
			} else {
				n_ok++;
			}
		}
	}
	if (applied != NULL)
		*applied = n_ok;
	if (rejected != NULL)
		*rejected = n_bad;
	return rc;
}

int sl_store_apply_batch(struct sl_store *st, const uint8_t *payload, size_t len, uint32_t *applied,
			 uint32_t *rejected)
{
	return apply_batch(st, payload, len, &VER_NONE, applied, rejected);
}

int sl_store_apply_batch_v(struct sl_store *st, const uint8_t *payload, size_t len, uint64_t hlc,
			   uint32_t origin, uint32_t *applied, uint32_t *rejected)
{
	if (!st->versioned) {
		if (applied != NULL)
			*applied = 0;
		if (rejected != NULL)
			*rejected = 0;
		return -EINVAL;
	}
	struct ver v = {hlc, origin};
	return apply_batch(st, payload, len, &v, applied, rejected);
}

/* A forward walk over the samples of one series with ts <= to_ts. */
struct scan {
	const struct series *s;
	uint32_t ci;
	uint32_t pos;
	int64_t to_ts;
};

/* Finds the series and its first sample with ts >= from_ts. -ENOENT; 1 when there is
 * nothing to scan (empty range or max == 0); 0 with *sc ready for scan_next. */
static int scan_start(const struct sl_store *st, uint64_t series_id, int64_t from_ts, int64_t to_ts,
		      size_t max, uint8_t *type_out, struct scan *sc)
{
	const struct series *s = table_find(st, series_id);
	if (s == NULL)
		return -ENOENT;
	if (type_out != NULL)
		*type_out = s->type;
	*sc = (struct scan){.s = s, .to_ts = to_ts};
	if (from_ts > to_ts || max == 0)
		return 1;
	SL_ASSERT(s->n_chunks > 0);
	sc->ci = chunk_find(s, from_ts);
	sc->pos = ts_lower_bound(s->chunks[sc->ci]->ts, s->chunks[sc->ci]->n, from_ts);
	return 0;
}

/* true with the next sample's ts and slot; false past to_ts or the last sample. */
static bool scan_next(const struct sl_store *st, struct scan *sc, int64_t *ts, uint64_t *slot)
{
	/* Bounded: every turn returns or moves to the next chunk. */
	while (sc->ci < sc->s->n_chunks) {
		struct chunk *c = sc->s->chunks[sc->ci];
		if (sc->pos < c->n) {
			if (c->ts[sc->pos] > sc->to_ts)
				return false;
			*ts = c->ts[sc->pos];
			*slot = chunk_vals(st, c)[sc->pos];
			sc->pos++;
			return true;
		}
		sc->ci++;
		sc->pos = 0;
	}
	return false;
}

int sl_store_query(const struct sl_store *st, uint64_t series_id, int64_t from_ts, int64_t to_ts,
		   struct sl_sample *out, size_t max, size_t *n_out, uint8_t *type_out)
{
	*n_out = 0;
	struct scan sc;
	int rc = scan_start(st, series_id, from_ts, to_ts, max, type_out, &sc);
	if (rc < 0)
		return rc;
	if (sc.s->type == SL_VAL_STR)
		return -EMEDIUMTYPE; /* a slot is an address here: it must not leave the store */
	size_t n = 0;
	while (rc == 0 && n < max && scan_next(st, &sc, &out[n].ts, &out[n].value))
		n++;
	*n_out = n;
	return 0;
}

int sl_store_query_ex(const struct sl_store *st, uint64_t series_id, int64_t from_ts, int64_t to_ts,
		      struct sl_sample_ex *out, size_t max, char *str_buf, size_t str_cap,
		      size_t *n_out, size_t *str_used, uint8_t *type_out)
{
	*n_out = 0;
	*str_used = 0;
	struct scan sc;
	int rc = scan_start(st, series_id, from_ts, to_ts, max, type_out, &sc);
	if (rc != 0)
		return rc < 0 ? rc : 0;

	bool is_str = sc.s->type == SL_VAL_STR;
	size_t n = 0, used = 0;
	int64_t ts = 0;
	uint64_t slot = 0;
	while (n < max && scan_next(st, &sc, &ts, &slot)) {
		uint32_t len = is_str ? sval_len(slot) : 0;
		if (str_cap - used < len) {
			rc = -ENOSPC;
			break;
		}
		if (len > 0)
			memcpy(str_buf + used, sval_of(slot)->bytes, len);
		out[n] = (struct sl_sample_ex){.ts = ts,
					       .value = is_str ? 0 : slot,
					       .str_off = is_str ? used : 0,
					       .str_len = len};
		used += len;
		n++;
	}
	SL_ASSERT(used <= str_cap);
	*n_out = n;
	*str_used = used;
	return rc;
}

static void series_info_fill(const struct series *s, struct sl_series_info *out)
{
	const struct chunk *last = s->chunks[s->n_chunks - 1];
	out->series_id = s->id;
	out->key = s->key;
	out->key_len = s->key_len;
	out->type = s->type;
	out->n_points = s->n_points;
	out->n_chunks = s->n_chunks;
	out->first_ts = s->chunks[0]->ts[0];
	out->last_ts = last->ts[last->n - 1];
}

int sl_store_series_info(const struct sl_store *st, uint64_t series_id, struct sl_series_info *out)
{
	const struct series *s = table_find(st, series_id);
	if (s == NULL)
		return -ENOENT;
	series_info_fill(s, out);
	return 0;
}

int sl_store_version_at(const struct sl_store *st, uint64_t series_id, int64_t ts, uint64_t *hlc,
			uint32_t *origin)
{
	if (!st->versioned)
		return -EINVAL;
	const struct series *s = table_find(st, series_id);
	if (s == NULL)
		return -ENOENT;
	struct chunk *c = s->chunks[chunk_find(s, ts)];
	uint32_t pos = ts_lower_bound(c->ts, c->n, ts);
	if (pos == c->n || c->ts[pos] != ts)
		return -ENOENT;
	*hlc = chunk_hlc(st, c)[pos];
	*origin = chunk_origin(st, c)[pos];
	return 0;
}

int sl_store_foreach_series(const struct sl_store *st, sl_store_series_cb cb, void *arg)
{
	uint64_t cap = table_cap(st);
	for (uint64_t i = 0; i < cap; i++) {
		if (st->slots[i].s == NULL)
			continue;
		struct sl_series_info info;
		series_info_fill(st->slots[i].s, &info);
		int rc = cb(&info, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void sl_store_stats(const struct sl_store *st, struct sl_store_stats *out) { *out = st->stats; }

/* ---- snapshot: buffered plain read()/write() with a running per-record CRC ---- */

struct snap_io {
	int fd; /* -1: buf holds the whole image */
	uint8_t *buf;
	size_t len; /* write: bytes buffered; read: bytes valid in buf */
	size_t pos; /* read: bytes consumed */
	uint32_t crc;
};

/* One read() or write(), retried on EINTR: bytes moved (0 = end of file) or -errno. */
static ssize_t rw_retry(int fd, uint8_t *buf, size_t len, bool is_write)
{
	for (;;) {
		ssize_t n = is_write ? write(fd, buf, len) : read(fd, buf, len);
		if (n >= 0 || errno != EINTR)
			return n < 0 ? -errno : n;
	}
}

static int write_all(int fd, uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = rw_retry(fd, p, len, true);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes; end of file is truncation, hence -EBADMSG. */
static int source_get(struct snap_io *io, void *data, size_t len)
{
	uint8_t *d = data;
	size_t want = len;
	while (len > 0) {
		if (io->pos == io->len) {
			if (io->fd < 0)
				return -EBADMSG; /* an image in memory ends here */
			ssize_t n = rw_retry(io->fd, io->buf, SNAP_IO_BYTES, false);
			if (n < 0)
				return (int)n;
			if (n == 0)
				return -EBADMSG;
			io->len = (size_t)n;
			io->pos = 0;
		}
		size_t n = io->len - io->pos < len ? io->len - io->pos : len;
		memcpy(d, io->buf + io->pos, n);
		io->pos += n;
		d += n;
		len -= n;
	}
	io->crc = sl_batch_crc32c(data, want, io->crc);
	return 0;
}

/* A chunk an image since `since` holds: every chunk when since is 0 (a full image). */
static bool chunk_in_image(const struct chunk *c, uint32_t since) { return c->mod_gen >= since; }

/* The samples and bytes of a series' image record (header, key, samples, crc) holding
 * the chunks changed at or after `since`; *n_points 0: the series has no record. */
static size_t snap_record_bytes(const struct sl_store *st, const struct series *s, uint32_t since,
				uint64_t *n_points)
{
	size_t n = SNAP_REC_HDR_BYTES + s->key_len + 4;
	uint64_t pts = 0;
	if (s->mod_gen < since) {
		*n_points = 0;
		return n;
	}
	bool is_str = s->type == SL_VAL_STR;
	for (uint32_t ci = 0; ci < s->n_chunks; ci++) {
		struct chunk *c = s->chunks[ci];
		if (!chunk_in_image(c, since))
			continue;
		pts += c->n;
		if (st->versioned)
			n += (size_t)c->n * SNAP_VER_BYTES;
		if (!is_str) {
			n += (size_t)c->n * SNAP_POINT_BYTES;
			continue;
		}
		const uint64_t *vals = chunk_vals(st, c);
		for (uint32_t i = 0; i < c->n; i++)
			n += SNAP_STR_POINT_BYTES + sval_len(vals[i]);
	}
	*n_points = pts;
	return n;
}

/* Encodes a series' record (n_points samples, as snap_record_bytes counted them) into
 * out, which has room for it; returns its length. The chunks are in time order and do
 * not overlap, so the samples of any subset of them are strictly increasing in ts. */
static size_t snap_encode_series(const struct sl_store *st, const struct series *s, uint32_t since,
				 uint64_t n_points, uint8_t *out)
{
	uint8_t *p = out;
	sl_put_u64(p, s->id);
	p[8] = s->type;
	sl_put_u16(p + 9, s->key_len);
	sl_put_u64(p + 11, n_points);
	p += SNAP_REC_HDR_BYTES;
	memcpy(p, s->key, s->key_len);
	p += s->key_len;
	bool is_str = s->type == SL_VAL_STR;
	for (uint32_t ci = 0; ci < s->n_chunks; ci++) {
		struct chunk *c = s->chunks[ci];
		if (!chunk_in_image(c, since))
			continue;
		const uint64_t *vals = chunk_vals(st, c);
		for (uint32_t i = 0; i < c->n; i++) {
			sl_put_u64(p, (uint64_t)c->ts[i]);
			if (!is_str) {
				sl_put_u64(p + 8, vals[i]);
				p += SNAP_POINT_BYTES;
			} else {
				uint32_t len = sval_len(vals[i]);
				sl_put_u32(p + 8, len);
				p += SNAP_STR_POINT_BYTES;
				if (len > 0)
					memcpy(p, sval_of(vals[i])->bytes, len);
				p += len;
			}
			if (st->versioned) {
				struct ver v = chunk_ver(st, c, i);
				sl_put_u64(p, v.hlc);
				sl_put_u32(p + 8, v.origin);
				p += SNAP_VER_BYTES;
			}
		}
	}
	sl_put_u32(p, sl_batch_crc32c(out, (size_t)(p - out), SNAP_CRC_SEED));
	return (size_t)(p + 4 - out);
}

static void snap_header(uint8_t *hdr, uint32_t region_id, uint16_t flags, uint64_t applied_index,
			uint64_t series_count)
{
	sl_put_u32(hdr, SNAP_MAGIC);
	sl_put_u16(hdr + 4, SNAP_VERSION);
	sl_put_u16(hdr + 6, flags);
	sl_put_u32(hdr + 8, region_id);
	sl_put_u64(hdr + 12, applied_index);
	sl_put_u64(hdr + 20, series_count);
	sl_put_u32(hdr + 28, sl_batch_crc32c(hdr, 28, SNAP_CRC_SEED));
}

_Static_assert(SNAP_HDR_BYTES == SL_STORE_SNAP_HDR_BYTES, "image header size");

void sl_store_snap_begin(const struct sl_store *st, uint64_t applied_index,
			 struct sl_store_snap_cursor *cur)
{
	*cur = (struct sl_store_snap_cursor){
	    .st = st,
	    .next = st->created_head,
	    .last = st->created_tail,
	    .applied_index = applied_index,
	    .gen = st->gen,
	    .flags = st->versioned ? SL_STORE_SNAP_F_VERSIONED : 0};
}

/* Every chunk and series stamped 0 again, and gen 0: the stamps restart from a full
 * image. Runs once in 2^32 walks of a store (centuries at one checkpoint a second). */
static void store_renumber(struct sl_store *st)
{
	for (struct series *s = st->created_head; s != NULL; s = s->next_created) {
		s->mod_gen = 0;
		for (uint32_t ci = 0; ci < s->n_chunks; ci++)
			s->chunks[ci]->mod_gen = 0;
	}
	st->gen = 0;
}

void sl_store_snap_begin_since(struct sl_store *st, uint64_t applied_index, uint32_t since_gen,
			       struct sl_store_snap_cursor *cur)
{
	if (st->gen == UINT32_MAX) {
		store_renumber(st);
		since_gen = 0; /* every stamp is 0 now: only a full image is exact */
	}
	sl_store_snap_begin(st, applied_index, cur);
	cur->since = since_gen;
	if (since_gen > 0)
		cur->flags |= SL_STORE_SNAP_F_DELTA;
	/* changes from here on carry a newer stamp than any chunk the walk may skip */
	st->gen++;
}

uint32_t sl_store_mark_clean(struct sl_store *st)
{
	if (st->gen == UINT32_MAX)
		store_renumber(st);
	return ++st->gen;
}

void sl_store_test_set_gen(struct sl_store *st, uint32_t gen) { st->gen = gen; }

size_t sl_store_snap_next_bytes(const struct sl_store_snap_cursor *cur)
{
	uint64_t n_points = 0;
	return cur->next == NULL ? 0 : snap_record_bytes(cur->st, cur->next, cur->since, &n_points);
}

int sl_store_snap_step(struct sl_store_snap_cursor *cur, uint8_t *buf, size_t cap, size_t budget,
		       size_t *len)
{
	size_t start = *len, skipped = 0;
	/* Bounded: every turn encodes or skips one series or returns; the walk ends at the
	 * series that was the newest when it began, so series created since never prolong
	 * it. A series a delta skips counts SNAP_SKIP_COST against the budget, so a step over
	 * a store that barely changed still ends after a bounded number of series. */
	while (cur->next != NULL && *len - start + skipped < budget) {
		const struct series *s = cur->next;
		uint64_t n_points = 0;
		size_t need = snap_record_bytes(cur->st, s, cur->since, &n_points);
		if (n_points == 0) {
			skipped += SNAP_SKIP_COST;
		} else {
			if (need > cap - *len)
				return *len == 0 ? -ENOBUFS : 0;
			*len += snap_encode_series(cur->st, s, cur->since, n_points, buf + *len);
			cur->series++;
			cur->bytes += need;
		}
		cur->next = s == cur->last ? NULL : s->next_created;
	}
	return cur->next == NULL ? 1 : 0;
}

void sl_store_snap_header(const struct sl_store_snap_cursor *cur, uint8_t *hdr)
{
	snap_header(hdr, cur->st->region_id, cur->flags, cur->applied_index, cur->series);
}
int sl_store_snapshot_write(const struct sl_store *st, int fd, uint64_t applied_index)
{
	/* Scratch buffer: not accounted in stats.bytes (transient, and st is const here). */
	size_t cap = SNAP_IO_BYTES;
	uint8_t *buf = mallocx(cap, st->mflags);
	if (buf == NULL)
		return -ENOMEM;
	/* nothing changes the store during this call: its series count is the image's */
	snap_header(buf, st->region_id, st->versioned ? SL_STORE_SNAP_F_VERSIONED : 0, applied_index,
		    st->stats.series);
	size_t len = SNAP_HDR_BYTES;
	struct sl_store_snap_cursor cur;
	sl_store_snap_begin(st, applied_index, &cur);
	int rc = 0, step = 0;
	while (rc == 0 && step != 1) {
		step = sl_store_snap_step(&cur, buf, cap, cap, &len);
		if (step == -ENOBUFS) {
			/* one series larger than the buffer: a buffer its size */
			size_t need = sl_store_snap_next_bytes(&cur);
			uint8_t *big = rallocx(buf, need, st->mflags);
			if (big == NULL)
				rc = -ENOMEM;
			else
				buf = big, cap = need;
			continue;
		}
		rc = write_all(fd, buf, len);
		len = 0;
	}
	if (rc == 0)
		SL_ASSERT(cur.series == st->stats.series);
	dallocx(buf, st->mflags);
	return rc;
}

/* Reads len bytes the reader does not keep (they still count in the record's CRC). */
static int source_skip(struct snap_io *io, size_t len)
{
	uint8_t tmp[256];
	while (len > 0) {
		size_t n = len < sizeof(tmp) ? len : sizeof(tmp);
		int rc = source_get(io, tmp, n);
		if (rc != 0)
			return rc;
		len -= n;
	}
	return 0;
}

/* What a read of an image does with it. */
enum snap_mode {
	SNAP_LOAD,  /* a full image into an empty store */
	SNAP_DELTA, /* a delta image on top of the store */
	SNAP_CHECK, /* merge, first pass: every check, the store untouched */
	SNAP_MERGE, /* merge, second pass: a checked image joined in by version */
	SNAP_CONVERT, /* a full image into an empty store of the other kind (protocol switch) */
};

struct snap_rd {
	enum snap_mode mode;
	uint16_t version; /* of the image */
	bool versioned;	  /* its samples carry (hlc, origin) */
	bool ranged;	  /* a split: only series ids within [lo, hi] are kept */
	uint64_t lo, hi;
};

/* Reads one sample: its ts, and its value into a slot the caller owns on success when
 * keep (else only read past: *slot stays 0), then its version when the image has them. */
static int snap_read_sample(struct sl_store *st, struct snap_io *io, const struct snap_rd *rd,
			    uint8_t type, bool keep, int64_t *ts, uint64_t *slot, struct ver *v)
{
	uint8_t pt[SNAP_POINT_BYTES];
	bool is_str = type == SL_VAL_STR;
	*slot = 0;
	int rc = source_get(io, pt, is_str ? SNAP_STR_POINT_BYTES : SNAP_POINT_BYTES);
	if (rc != 0)
		return rc;
	*ts = (int64_t)sl_get_u64(pt);
	if (!is_str) {
		uint64_t value = sl_get_u64(pt + 8);
		if (type == SL_VAL_BOOL && value > 1)
			return -EBADMSG;
		if (keep)
			*slot = value;
	} else {
		uint32_t len = sl_get_u32(pt + 8);
		if (len > SL_STR_MAX)
			return -EBADMSG;
		if (!keep) {
			rc = source_skip(io, len);
		} else {
			char *bytes = NULL;
			rc = sval_new(st, len, slot, &bytes);
			if (rc == 0 && len > 0)
				rc = source_get(io, bytes, len);
		}
	}
	*v = VER_NONE;
	if (rc == 0 && rd->versioned) {
		uint8_t vb[SNAP_VER_BYTES];
		rc = source_get(io, vb, sizeof(vb));
		if (rc == 0)
			*v = (struct ver){sl_get_u64(vb), sl_get_u32(vb + 8)};
	}
	if (rc != 0 && keep) {
		value_drop(st, type, *slot);
		*slot = 0;
	}
	return rc;
}

/* Reads one series record. LOAD and DELTA apply points as they come (the caller empties
 * the store if a load turns out bad); a full image's series is new to the store, a
 * delta's may exist already, then with the same key and type, and its samples overwrite
 * (last writer wins; by version in a versioned store). CHECK reads without storing
 * anything; MERGE then joins the record in by version, and a series of another type in
 * the store keeps its type: the record's samples are skipped and counted. */
static int snap_read_series(struct sl_store *st, struct snap_io *io, const struct snap_rd *rd)
{
	uint8_t hdr[SNAP_REC_HDR_BYTES];
	char key[SL_KEY_MAX];
	io->crc = SNAP_CRC_SEED;
	int rc = source_get(io, hdr, sizeof(hdr));
	if (rc != 0)
		return rc;
	struct sl_point p = {
	    .series_id = sl_get_u64(hdr),
	    .type = hdr[8],
	    .key_len = sl_get_u16(hdr + 9),
	    .key = key,
	};
	uint64_t n_points = sl_get_u64(hdr + 11);
	if (p.key_len == 0 || p.key_len > SL_KEY_MAX || n_points == 0)
		return -EBADMSG;
	rc = source_get(io, key, p.key_len);
	if (rc != 0)
		return rc;
	struct series *s = table_find(st, p.series_id);
	if (sl_batch_point_check(&p) != 0 ||
	    (s != NULL && (rd->mode == SNAP_LOAD || rd->mode == SNAP_CONVERT)) ||
	    (p.type == SL_VAL_STR && rd->version == SNAP_VERSION_V1))
		return -EBADMSG;
	bool same_key = s == NULL || (s->key_len == p.key_len && memcmp(s->key, key, p.key_len) == 0);
	bool skip = false; /* MERGE: a series the store holds as another type (or key) */
	bool out_of_range = rd->ranged && (p.series_id < rd->lo || p.series_id > rd->hi);
	if (rd->mode == SNAP_DELTA && s != NULL && (s->type != p.type || !same_key))
		return -EBADMSG; /* a delta of another series than the one the store holds */
	if (rd->mode == SNAP_CHECK && !same_key)
		return -EBADMSG; /* a key that hashes to another key's id: not a sluice image */
	if (rd->mode == SNAP_MERGE && s != NULL && (s->type != p.type || !same_key))
		skip = true; /* a key mismatch here: an image naming one id twice (checked) */
	bool keep = rd->mode != SNAP_CHECK && !skip && !out_of_range;

	/* Bounded by the image: a lying n_points ends at its end (-EBADMSG). */
	for (uint64_t i = 0; i < n_points; i++) {
		int64_t ts = 0;
		uint64_t value = 0;
		struct ver v;
		rc = snap_read_sample(st, io, rd, p.type, keep, &ts, &value, &v);
		if (rc != 0)
			return rc;
		if (i > 0 && ts <= p.ts) {
			rc = -EBADMSG;
		} else {
			p.ts = ts;
			if (skip)
				st->stats.type_conflicts++;
			if (keep) {
				rc = store_put_value(st, s, &p, value, &v);
				if (rc == 0 && s == NULL)
					s = table_find(st, p.series_id);
			}
		}
		if (rc != 0) {
			value_drop(st, p.type, value);
			return rc;
		}
	}
	uint32_t want = io->crc;
	uint8_t crc[4];
	rc = source_get(io, crc, sizeof(crc));
	if (rc != 0)
		return rc;
	return sl_get_u32(crc) == want ? 0 : -EBADMSG;
}

/* The image's header and records, as rd->mode wants them: a load takes only a full image,
 * a delta only a delta, a merge either. Corruption is -EBADMSG; an image of another
 * region, or versioned when the store is not (or the reverse), is -EINVAL. */
static int snap_read_all(struct sl_store *st, struct snap_io *io, enum snap_mode mode,
			 const uint64_t *range, uint64_t *applied_index)
{
	uint8_t hdr[SNAP_HDR_BYTES];
	int rc = source_get(io, hdr, sizeof(hdr));
	if (rc != 0)
		return rc;
	uint16_t version = sl_get_u16(hdr + 4);
	uint16_t flags = sl_get_u16(hdr + 6);
	bool delta = (flags & SL_STORE_SNAP_F_DELTA) != 0;
	if (sl_get_u32(hdr + 28) != sl_batch_crc32c(hdr, 28, SNAP_CRC_SEED) ||
	    sl_get_u32(hdr) != SNAP_MAGIC ||
	    (version != SNAP_VERSION && version != SNAP_VERSION_V1) ||
	    (flags & ~SNAP_FLAGS_KNOWN) != 0 || (flags != 0 && version == SNAP_VERSION_V1) ||
	    ((mode == SNAP_LOAD || mode == SNAP_CONVERT) && delta) || (mode == SNAP_DELTA && !delta))
		return -EBADMSG;
	struct snap_rd rd = {.mode = mode,
			     .version = version,
			     .versioned = (flags & SL_STORE_SNAP_F_VERSIONED) != 0,
			     .ranged = range != NULL,
			     .lo = range != NULL ? range[0] : 0,
			     .hi = range != NULL ? range[1] : UINT64_MAX};
	/* converting, the samples keep their values: an unversioned store drops the versions,
	 * a versioned one gives each version (0, 0), which any later write beats */
	if ((sl_get_u32(hdr + 8) != st->region_id && !rd.ranged) ||
	    (rd.versioned != st->versioned && mode != SNAP_CONVERT))
		return -EINVAL;
	uint64_t n_series = sl_get_u64(hdr + 20);
	for (uint64_t i = 0; i < n_series; i++) {
		rc = snap_read_series(st, io, &rd);
		if (rc != 0)
			return rc;
	}
	if (applied_index != NULL)
		*applied_index = sl_get_u64(hdr + 12);
	return 0;
}

/* From a file descriptor: reads ahead in SNAP_IO_BYTES blocks and hands back, on success,
 * what it read past the image (best effort: a pipe cannot seek). */
static int snap_read_fd(struct sl_store *st, int fd, enum snap_mode mode, const uint64_t *range,
			uint64_t *applied_index)
{
	struct snap_io io = {.fd = fd, .buf = mallocx(SNAP_IO_BYTES, st->mflags)};
	if (io.buf == NULL)
		return -ENOMEM;
	int rc = snap_read_all(st, &io, mode, range, applied_index);
	if (rc == 0 && io.pos < io.len)
		(void)lseek(fd, -(off_t)(io.len - io.pos), SEEK_CUR);
	dallocx(io.buf, st->mflags);
	return rc;
}

/* From memory: exactly len bytes (bytes after the image: not an image of this format). */
static int snap_read_mem(struct sl_store *st, const uint8_t *img, size_t len, enum snap_mode mode,
			 uint64_t *applied_index)
{
	/* the reader only reads through buf in this mode */
	struct snap_io io = {.fd = -1, .buf = (uint8_t *)(uintptr_t)img, .len = len};
	int rc = snap_read_all(st, &io, mode, NULL, applied_index);
	return rc == 0 && io.pos != len ? -EBADMSG : rc;
}

int sl_store_snapshot_read(struct sl_store *empty_store, int fd, uint64_t *applied_index)
{
	struct sl_store *st = empty_store;
	if (st->stats.series != 0)
		return -EINVAL;
	int rc = snap_read_fd(st, fd, SNAP_LOAD, NULL, applied_index);
	if (rc != 0)
		store_clear(st);
	return rc;
}

int sl_store_snapshot_read_convert(struct sl_store *empty_store, int fd, uint64_t *applied_index)
{
	struct sl_store *st = empty_store;
	if (st->stats.series != 0)
		return -EINVAL;
	int rc = snap_read_fd(st, fd, SNAP_CONVERT, NULL, applied_index);
	if (rc != 0)
		store_clear(st);
	return rc;
}

int sl_store_snapshot_read_range(struct sl_store *empty_store, int fd, uint64_t lo, uint64_t hi,
				 uint64_t *applied_index)
{
	struct sl_store *st = empty_store;
	if (st->stats.series != 0 || lo > hi)
		return -EINVAL;
	const uint64_t range[2] = {lo, hi};
	int rc = snap_read_fd(st, fd, SNAP_LOAD, range, applied_index);
	if (rc != 0)
		store_clear(st);
	return rc;
}

int sl_store_snapshot_read_more(struct sl_store *st, int fd, uint64_t lo, uint64_t hi,
				uint64_t *applied_index)
{
	if (lo > hi)
		return -EINVAL;
	const uint64_t range[2] = {lo, hi};
	return snap_read_fd(st, fd, SNAP_LOAD, range, applied_index);
}

int sl_store_snapshot_peek(const uint8_t *hdr, size_t len, uint64_t *applied_index,
			   uint16_t *flags)
{
	if (len < SNAP_HDR_BYTES || sl_get_u32(hdr) != SNAP_MAGIC ||
	    sl_get_u32(hdr + 28) != sl_batch_crc32c(hdr, 28, SNAP_CRC_SEED))
		return -EBADMSG;
	*applied_index = sl_get_u64(hdr + 12);
	*flags = sl_get_u16(hdr + 6);
	return 0;
}

int sl_store_snapshot_read_mem(struct sl_store *empty_store, const uint8_t *img, size_t len,
			       uint64_t *applied_index)
{
	struct sl_store *st = empty_store;
	if (st->stats.series != 0)
		return -EINVAL;
	int rc = snap_read_mem(st, img, len, SNAP_LOAD, applied_index);
	if (rc != 0)
		store_clear(st);
	return rc;
}

int sl_store_snapshot_apply_delta(struct sl_store *st, int fd, uint64_t *applied_index)
{
	return snap_read_fd(st, fd, SNAP_DELTA, NULL, applied_index);
}

int sl_store_snapshot_apply_delta_mem(struct sl_store *st, const uint8_t *img, size_t len,
				      uint64_t *applied_index)
{
	return snap_read_mem(st, img, len, SNAP_DELTA, applied_index);
}

int sl_store_snapshot_merge_mem(struct sl_store *st, const uint8_t *img, size_t len,
				uint64_t *applied_index)
{
	if (!st->versioned)
		return -EINVAL; /* without versions a merge would depend on the order */
	/* The whole image first: a damaged one must leave the store as it was. */
	int rc = snap_read_mem(st, img, len, SNAP_CHECK, NULL);
	if (rc != 0)
		return rc;
	return snap_read_mem(st, img, len, SNAP_MERGE, applied_index);
}

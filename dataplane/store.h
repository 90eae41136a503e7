/* store.h - the in-memory series store of one region: committed batches are applied here
 * in log order by the core that owns the region (single-threaded, no locks). Memory comes
 * from that core's jemalloc arena; snapshots let the WAL be truncated. */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

#define SL_STORE_CHUNK_POINTS_DEFAULT 512u
#define SL_STORE_CHUNK_POINTS_MIN 2u
#define SL_STORE_CHUNK_POINTS_MAX (1u << 20)

struct sl_store_config {
	uint32_t region_id;
	unsigned arena;	       /* jemalloc arena index, used when use_arena */
	bool use_arena;	       /* false: default jemalloc placement (flags 0) */
	uint32_t chunk_points; /* points per chunk; 0 = SL_STORE_CHUNK_POINTS_DEFAULT */
	/* every point keeps the version (hlc, origin) of the write that stored it, and a
	 * write replaces a point only when it wins by sl_lww_wins() (multileader regions) */
	bool versioned;
};

struct sl_store;

struct sl_sample {
	int64_t ts;
	uint64_t value;
};

/* A sample of any type. Numeric: value as in sl_sample, str_off = str_len = 0. String:
 * value = 0, the bytes are str_buf[str_off .. str_off + str_len) of the caller's buffer
 * given to sl_store_query_ex (copied, never a pointer into the store). */
struct sl_sample_ex {
	int64_t ts;
	uint64_t value;
	size_t str_off;
	uint32_t str_len;
};

/* `key` is NUL-terminated and owned by the store: valid until sl_store_destroy() (series
 * are never removed). first_ts/last_ts are the series' time span. */
struct sl_series_info {
	uint64_t series_id;
	const char *key;
	uint16_t key_len;
	uint8_t type;
	uint64_t n_points;
	uint32_t n_chunks;
	int64_t first_ts;
	int64_t last_ts;
};

struct sl_store_stats {
	uint64_t series;
	uint64_t points;
	uint64_t chunks;
	uint64_t bytes; /* usable bytes of every allocation the store holds, strings included */
	uint64_t type_conflicts;
};

/* 0; -EINVAL on a bad config (chunk_points outside [MIN, MAX]); -ENOMEM. */
int sl_store_create(const struct sl_store_config *cfg, struct sl_store **out);
void sl_store_destroy(struct sl_store *st);
uint32_t sl_store_region(const struct sl_store *st);

/* Last-writer-wins per (series, ts): an existing timestamp gets the new value, so applying
 * the same points again changes nothing (a versioned store: version (0, 0), see
 * sl_store_apply_batch_v). String values are copied into the store (p->str
 * need not outlive the call). 0; -EINVAL on a malformed point (see sl_batch_point_check)
 * or when the point's type differs from the series' type, string vs numeric included
 * (counted in type_conflicts); -ENOMEM (store unchanged). */
int sl_store_apply(struct sl_store *st, const struct sl_point *p);

/* Validates the whole payload first: -EBADMSG when malformed, -EXDEV when it belongs to
 * another region; nothing is applied in both cases. Otherwise applies every point in
 * order; type conflicts are rejected one by one and counted in *rejected. Returns 0, or
 * -ENOMEM part way (*applied / *rejected say how far it got). Counters may be NULL. */
int sl_store_apply_batch(struct sl_store *st, const uint8_t *payload, size_t len, uint32_t *applied,
			 uint32_t *rejected);

/* Versioned stores (config.versioned; multileader regions, docs/multileader.md). Replicas
 * apply each other's writes in different orders, so a (series, ts) is decided by the
 * write's version, not by arrival: every point of the batch carries (hlc, origin); an
 * existing (series, ts) takes the new value when sl_lww_wins(hlc, origin, old hlc, old
 * origin) (consensus/lww.h) or at the same version: that is the same batch, whose later
 * write of a point stands (a batch re-applied ends the same); an older one is ignored
 * (it counts as applied). A new ts is stored with the version. Otherwise the contract of
 * sl_store_apply_batch (-EBADMSG, -EXDEV, type conflicts in *rejected, -ENOMEM part
 * way); -EINVAL on an unversioned store. sl_store_apply and sl_store_apply_batch on a
 * versioned store write version (0, 0), which loses to every real write (against a
 * point of version (0, 0), the later write stands). */
int sl_store_apply_batch_v(struct sl_store *st, const uint8_t *payload, size_t len, uint64_t hlc,
			   uint32_t origin, uint32_t *applied, uint32_t *rejected);
bool sl_store_versioned(const struct sl_store *st);
/* One point of a write of version (hlc, origin) into a versioned store, decided as in
 * sl_store_apply_batch_v (the node applies point by point to count what each client's
 * run stored). 0 (also when an existing point of a newer version wins and is kept);
 * -EINVAL on an unversioned store, a malformed point or a type conflict; -ENOMEM. */
int sl_store_apply_v(struct sl_store *st, const struct sl_point *p, uint64_t hlc, uint32_t origin);
/* The version stored with the sample at exactly ts: 0; -ENOENT (no such series or ts);
 * -EINVAL on an unversioned store. */
int sl_store_version_at(const struct sl_store *st, uint64_t series_id, int64_t ts, uint64_t *hlc,
			uint32_t *origin);

/* Samples with from_ts <= ts <= to_ts in time order, at most max of them (the first ones).
 * Continue a long range with from_ts = last returned ts + 1. *type_out may be NULL.
 * 0 (possibly *n_out == 0); -ENOENT for an unknown series; -EMEDIUMTYPE for a string
 * series (*type_out is still set, *n_out is 0): use sl_store_query_ex. */
int sl_store_query(const struct sl_store *st, uint64_t series_id, int64_t from_ts, int64_t to_ts,
		   struct sl_sample *out, size_t max, size_t *n_out, uint8_t *type_out);

/* Like sl_store_query for a series of any type. String bytes are copied one after another
 * into str_buf (str_cap bytes; may be NULL when str_cap is 0), *str_used says how many
 * were used; nothing returned points into the store, so the results may be read on
 * another thread once this returns. Returns 0 when it stopped at to_ts or at max samples
 * (as sl_store_query), or -ENOSPC when the next string in range did not fit in what was
 * left of str_buf: the *n_out samples returned so far are valid, continue from the last
 * returned ts + 1 (from the same from_ts with a larger buffer when *n_out is 0; a str_cap
 * of SL_STR_MAX always makes progress). -ENOENT for an unknown series. type_out may be
 * NULL. */
int sl_store_query_ex(const struct sl_store *st, uint64_t series_id, int64_t from_ts, int64_t to_ts,
		      struct sl_sample_ex *out, size_t max, char *str_buf, size_t str_cap,
		      size_t *n_out, size_t *str_used, uint8_t *type_out);

/* 0 or -ENOENT. */
int sl_store_series_info(const struct sl_store *st, uint64_t series_id, struct sl_series_info *out);

/* Visits every series in unspecified order; cb must not modify the store. Returns 0 after
 * visiting all, or the first nonzero value cb returned (which stops the walk). */
typedef int (*sl_store_series_cb)(const struct sl_series_info *info, void *arg);
int sl_store_foreach_series(const struct sl_store *st, sl_store_series_cb cb, void *arg);

void sl_store_stats(const struct sl_store *st, struct sl_store_stats *out);

/* Snapshot image v2 (little-endian):
 *   header: magic u32 "SLSN" | version u16 | flags u16 | region_id u32 | applied_index u64 |
 *           series_count u64 | crc32c u32 of the header bytes before it
 *   series_count x record: series_id u64 | type u8 | key_len u16 | n_points u64 | key |
 *           n_points x sample, strictly increasing ts | crc32c u32 of record
 *   sample: ts i64 | value u64 for numeric types;
 *           ts i64 | str_len u32 (<= SL_STR_MAX) | str bytes for SL_VAL_STR;
 *           either followed by hlc u64 | origin u32 in a versioned image
 * v1 is the same without string series; it is still read. flags (v2 only; other bits are
 * corruption): SL_STORE_SNAP_F_DELTA for a delta image: the same records, each holding
 * only the chunks of its series changed since an earlier image
 * (sl_store_snap_begin_since); SL_STORE_SNAP_F_VERSIONED for an image of a versioned
 * store, whose samples carry their versions. A versioned image is only read into a
 * versioned store and an unversioned one only into an unversioned store (-EINVAL
 * otherwise, for every reader below). Written (always as a full v2 image) with plain
 * write() loops from the current file offset; 0 or -errno. */
#define SL_STORE_SNAP_F_DELTA 0x0001u
#define SL_STORE_SNAP_F_VERSIONED 0x0002u
int sl_store_snapshot_write(const struct sl_store *st, int fd, uint64_t applied_index);

/* Loads a full image into an empty store. 0; -EBADMSG on any corruption or truncation
 * (a delta image too);
 * -EINVAL when the store is not empty or the image is of another region; -ENOMEM; -errno
 * of read(). On any error the store is left empty. Reads from the current offset in 64 KiB
 * blocks; on success a seekable fd is left just after the image. */
int sl_store_snapshot_read(struct sl_store *empty_store, int fd, uint64_t *applied_index);

/* The same from an image in memory that must be exactly len bytes (trailing bytes are
 * -EBADMSG); img is only read. A snapshot received from a peer is loaded with it. */
int sl_store_snapshot_read_mem(struct sl_store *empty_store, const uint8_t *img, size_t len,
			       uint64_t *applied_index);

/* sl_store_snapshot_read for an image of either kind (versioned or not) into a store of
 * the kind the region's protocol needs after a protocol switch: into an unversioned store
 * the samples lose their versions, into a versioned one each gets version (0, 0), which
 * every later write beats. */
int sl_store_snapshot_read_convert(struct sl_store *empty_store, int fd, uint64_t *applied_index);

/* A region split (docs/cluster.md, "Splitting a region"): loads, from a full image of
 * the region being split (any region id), only the series whose id is within [lo, hi],
 * into an empty store of the same kind; the others are read past, checked as a load
 * checks them. Errors as sl_store_snapshot_read (an image of the other kind: -EINVAL). */
int sl_store_snapshot_read_range(struct sl_store *empty_store, int fd, uint64_t lo, uint64_t hi,
				 uint64_t *applied_index);

/* A region merge: loads, from a full image (any region id), the series within [lo, hi]
 * into a store that may hold other series already; one it holds already is -EBADMSG (two
 * merged regions' ranges never share a series). On an error the store holds part of the
 * image: the caller drops it. Otherwise as sl_store_snapshot_read_range. */
int sl_store_snapshot_read_more(struct sl_store *st, int fd, uint64_t lo, uint64_t hi,
				uint64_t *applied_index);

/* An image's header (its first SL_STORE_SNAP_HDR_BYTES): applied index and flags, or
 * -EBADMSG when it is not one (no checks of the records). */
int sl_store_snapshot_peek(const uint8_t *hdr, size_t len, uint64_t *applied_index,
			   uint16_t *flags);

/* Applies a delta image on top of the store (its base and earlier deltas loaded): every
 * sample last-writer-wins (by version in a versioned store), a series the store lacks is
 * created. -EBADMSG on corruption, truncation, a full image, or a series whose key or type
 * differs from the store's; -EINVAL for an image of another region, or versioned when the
 * store is not (or the reverse); -ENOMEM. On an error the store holds some of the delta's
 * points (every record is checked as it is applied): usable, but not an image chain's
 * state; recovery refuses to start then. The _mem form takes exactly len bytes, the fd
 * form reads as sl_store_snapshot_read. */
int sl_store_snapshot_apply_delta(struct sl_store *st, int fd, uint64_t *applied_index);
int sl_store_snapshot_apply_delta_mem(struct sl_store *st, const uint8_t *img, size_t len,
				      uint64_t *applied_index);

/* Joins a versioned image (full or delta, exactly len bytes) into a versioned store that
 * may hold anything (multileader snapshot catch-up): every sample by sl_lww_wins on
 * versions, a missing series created; a series the store holds with another type keeps
 * the store's type, and the image's samples of it are skipped and counted in
 * type_conflicts. The image is checked whole (every CRC, the structure, the region)
 * before anything is applied: -EBADMSG on damage and -EINVAL for another region, an
 * unversioned image or store, both with the store unchanged. -ENOMEM may stop part way:
 * the store then holds the image's samples up to there, each joined by version (a state
 * merging the same image again completes). Commutative and idempotent: stores that merged
 * each other's images, or applied the same writes in any order, hold the same points.
 * *applied_index (may be NULL) is the image's. */
int sl_store_snapshot_merge_mem(struct sl_store *st, const uint8_t *img, size_t len,
				uint64_t *applied_index);

/* An image written in steps while the store keeps changing between them ("fuzzy"): the
 * image holds every series that existed when the walk began (in creation order, so a
 * table that grows between steps loses none), each as it was when its step encoded it.
 * Labelled with the applied index at the walk's beginning, it is exact once every log
 * entry after that index is applied on top of it again: points are last-writer-wins per
 * (series, ts) and never removed, a series' type is that of its first point (docs/wal.md
 * has the argument). The cursor reads the store: the store must outlive it and only the
 * owning thread may step it. Image = SL_STORE_SNAP_HDR_BYTES of header (known at the end,
 * sl_store_snap_header) followed by the records the steps produce. */
#define SL_STORE_SNAP_HDR_BYTES 32u
struct sl_store_snap_cursor {
	const struct sl_store *st;
	const void *next;   /* next series to encode; NULL: the walk is done */
	const void *last;   /* the newest series when the walk began: the walk ends after it */
	uint64_t applied_index;
	uint64_t series;    /* records encoded so far */
	uint64_t bytes;     /* record bytes so far */
	uint32_t since;     /* chunks changed at or after this generation (0: all) */
	uint32_t gen;       /* the store's generation when the walk began */
	uint16_t flags;     /* of the image's header: SL_STORE_SNAP_F_DELTA, _VERSIONED */
};
/* A full image (every chunk); leaves the store's generation alone. */
void sl_store_snap_begin(const struct sl_store *st, uint64_t applied_index,
			 struct sl_store_snap_cursor *cur);
/* Incremental images. Every change to a chunk (a point added or overwritten, a chunk
 * made or split) stamps it with the store's generation. This begins a walk that encodes,
 * of every series, only the chunks stamped >= since_gen (a series with none has no
 * record): a delta image, or a full one when since_gen is 0 (flags 0, byte for byte
 * what sl_store_snap_begin gives). It records cur->gen and moves the store's generation
 * past it, so every change from now on is stamped > cur->gen. Once the image is durable,
 * the next delta is taken since cur->gen + 1: a chunk stamped <= cur->gen changed before
 * this walk began, and the walk encoded it (or a later state of it); a chunk changed
 * since is stamped > cur->gen. A chain base + deltas, each labelled with the applied
 * index at its walk's beginning, plus the log entries after the last image's index
 * re-applied, is the store (docs/wal.md, "Delta images"). A walk abandoned before its
 * image is durable changes nothing of this: the next one is taken since the same
 * generation as it was. (After 2^32 walks the stamps restart at 0 and that walk is a
 * full image: cur->flags says which it is.) */
void sl_store_snap_begin_since(struct sl_store *st, uint64_t applied_index, uint32_t since_gen,
			       struct sl_store_snap_cursor *cur);
/* The store as it is is "clean": returns g such that every chunk now is stamped < g and
 * every later change >= g. After recovery loaded an image chain, the next delta is taken
 * since g: it then holds what the WAL's replay changed. */
uint32_t sl_store_mark_clean(struct sl_store *st);
/* Tests only: sets the store's generation, so a test reaches its wrap without 2^32 walks. */
void sl_store_test_set_gen(struct sl_store *st, uint32_t gen);
/* Appends whole series records to buf at *len (cap bytes in all) until budget bytes were
 * added, the next record does not fit, or the walk ends. 1 when the walk is done, 0 when
 * there is more, -ENOBUFS when the next record alone is larger than cap (*len was 0):
 * give a buffer of sl_store_snap_next_bytes(). */
int sl_store_snap_step(struct sl_store_snap_cursor *cur, uint8_t *buf, size_t cap, size_t budget,
		       size_t *len);
size_t sl_store_snap_next_bytes(const struct sl_store_snap_cursor *cur);
/* The image's header (SL_STORE_SNAP_HDR_BYTES) once the walk is done. */
void sl_store_snap_header(const struct sl_store_snap_cursor *cur, uint8_t *hdr);

#endif

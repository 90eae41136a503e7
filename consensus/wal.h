/* wal.h - the per-core write-ahead log: checksummed records in segment files, written
 * with batched, block-aligned io_uring writes each linked to an fdatasync (group
 * commit), recovered in lsn order: a torn last write is cut, damage to durable records
 * is refused. One WAL per worker core, used by one thread only: no locks. */
#ifndef SL_WAL_H
#define SL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* On-disk record (format version 3): a 40-byte little-endian header then the payload,
 * padded with zeros to 8 bytes. Header: magic u32, version u8, kind u8 (data, padding or
 * clean-shutdown; bit 7 on data: the payload holds a 512-byte sector's worth of zeros),
 * type u16 (caller-defined), payload length u32, payload crc32c u32, lsn u64, flush lsn
 * u64 (the first lsn of the flush that wrote the record: it tells the blocks of a torn
 * last flush from later flushes), reserved u32 (zero), header crc32c u32 (over the 36
 * bytes before it). Every flush starts and ends on a SL_WAL_BLOCK_BYTES boundary (padding
 * record, or zeros when fewer than a header's bytes are left). docs/wal.md has the rules
 * that tell a torn last write from damage to durable bytes. */
#define SL_WAL_FORMAT_VERSION 3u
#define SL_WAL_HDR_BYTES 40u
#define SL_WAL_BLOCK_BYTES 4096u
#define SL_WAL_SECTOR_BYTES 512u /* the smallest unit a torn write leaves whole */
#define SL_WAL_RECORD_BYTES(payload_len) (((uint64_t)(payload_len) + SL_WAL_HDR_BYTES + 7u) & ~7ull)

struct sl_wal_config {
	const char *dir;	/* created like mkdir -p */
	uint64_t segment_bytes; /* default 64 MiB; multiple of 4096, >= buffer_bytes */
	uint32_t buffer_bytes;	/* per buffer (two are allocated), default 1 MiB; rounded up
				 * to 4096; a record payload is at most buffer_bytes - 24 */
	uint32_t ring_entries;	/* io_uring size, default 64, at least 4 */
	bool no_direct;		/* never try O_DIRECT */
	bool salvage;		/* recovery cuts at damage to durable records instead of failing */
};

/* Why recovery stopped at a record. */
enum sl_wal_bad {
	SL_WAL_BAD_NONE = 0,
	SL_WAL_BAD_MAGIC,   /* not a record header (garbage) */
	SL_WAL_BAD_VERSION, /* unknown version or record kind */
	SL_WAL_BAD_LENGTH,  /* record runs past the end of its segment */
	SL_WAL_BAD_CRC,
	SL_WAL_BAD_LSN,	 /* valid record, but not the next lsn */
	SL_WAL_BAD_NAME, /* segment name is not the lsn following the previous segment */
	SL_WAL_BAD_HOLE, /* zeros where a record belongs, with valid records after them */
	SL_WAL_BAD_TAIL, /* non-zero bytes after the last record of the log */
};

/* Why a bad record was judged damage to durable bytes rather than a torn last write. */
enum sl_wal_evidence {
	SL_WAL_EV_NONE = 0,
	SL_WAL_EV_LATER_FLUSH, /* a record of a later flush (or the next lsn) follows it */
	SL_WAL_EV_WRITTEN,     /* every sector of the record was written, yet it is wrong */
	SL_WAL_EV_AMBIGUOUS,   /* a torn write cannot be told apart (zero sectors in the
				* record's own payload): refused rather than cut */
	SL_WAL_EV_INTACT,      /* an intact record with the wrong lsn or segment name */
};

struct sl_wal_recovery {
	uint64_t records;	   /* data records passed to the callback */
	uint64_t first_lsn;	   /* first lsn kept in the log (next lsn if it is empty) */
	uint64_t last_lsn;	   /* last valid lsn, first_lsn - 1 if empty */
	uint32_t segments;	   /* segment files kept */
	uint32_t segments_deleted; /* later segments removed by a cut */
	bool torn_tail_cut;	   /* a torn last write (never acknowledged): cut */
	bool corruption;	   /* damage to durable records (evidence says why) */
	bool salvaged;		   /* corruption cut because cfg.salvage was set */
	enum sl_wal_bad reason;	   /* first invalid record, when torn_tail_cut or corruption */
	uint64_t bad_segment_lsn;  /* the segment holding it (its name's lsn) */
	uint64_t bad_offset;	   /* its byte offset in that segment */
	char bad_segment[32];	   /* its segment's file name */
	enum sl_wal_evidence evidence; /* when corruption: why it is not a torn tail */
	uint64_t risk_first_lsn;   /* when torn_tail_cut or corruption: first lsn lost or at */
	uint64_t risk_last_lsn;	   /* risk, and the last one known (0: unknown, maybe more) */
	bool clean_shutdown;	   /* the log ends with a clean-shutdown record */
	uint8_t old_version;	   /* the log's format version when it is not ours, else 0 */
};

enum sl_wal_op {
	SL_WAL_OP_WRITE = 0,
	SL_WAL_OP_FSYNC = 1,   /* the segment's fdatasync */
	SL_WAL_OP_DIRSYNC = 2, /* the directory's fsync after a new segment (linked) */
	SL_WAL_OP_RENAME = 3,  /* the prepared spare renamed to the new segment (linked) */
};

struct sl_wal_stats {
	uint64_t appends;
	uint64_t append_bytes;	    /* payload bytes appended */
	uint64_t flush_calls;	    /* sl_wal_flush() calls */
	uint64_t flushes_submitted; /* write + fdatasync pairs submitted */
	uint64_t flushes_durable;   /* pairs that both succeeded */
	uint64_t fsyncs;	    /* successful fdatasyncs */
	uint64_t bytes_written;	    /* bytes of submitted writes, padding included */
	uint64_t pad_bytes;	    /* of which padding to block boundaries */
	uint64_t enobufs;	    /* appends refused because both buffers were busy */
	uint64_t segments_created;
	uint64_t segments_prepared; /* of which taken from a spare prepared ahead */
	uint64_t spare_errors;	    /* spare preparations that failed (roll creates it then) */
	uint64_t segments_deleted; /* by sl_wal_release */
	uint64_t write_errors;	   /* failed or short writes */
	uint64_t fsync_errors;
	uint64_t faults_injected;
	uint64_t torn_tail_cuts;
	uint64_t salvage_cuts;
	uint64_t records_recovered;
	uint64_t durable_lsn;
	uint64_t last_lsn;
	int32_t error; /* the sticky error when failed, else 0 */
	bool failed;
	bool direct_io; /* O_DIRECT in use (false: buffered fallback or no_direct) */
};

struct sl_wal;

/* Called for each valid record in lsn order; payload is valid only during the call.
 * Return 0 to continue, a negative errno to stop recovery with that value. */
typedef int (*sl_wal_replay_fn)(void *arg, uint64_t lsn, uint16_t type, const uint8_t *payload,
				uint32_t len);

void sl_wal_config_default(struct sl_wal_config *cfg);

/* Creates the directory, locks it (-EBUSY if another sl_wal holds it), allocates the
 * buffers and the ring. Nothing is read yet: call sl_wal_recover() next. */
int sl_wal_open(const struct sl_wal_config *cfg, struct sl_wal **out);

/* Must run once, before any append/flush/release (those return -EINVAL until then).
 * fn may be NULL. Returns 0, -EBADMSG on damage to durable records without cfg.salvage
 * (nothing replayed, nothing changed on disk; report says where and which lsns),
 * -EPROTONOSUPPORT for a log of another format version (report.old_version; nothing
 * changed), the callback's error, or another negative errno. report may be NULL. */
int sl_wal_recover(struct sl_wal *wal, sl_wal_replay_fn fn, void *arg,
		   struct sl_wal_recovery *report);

/* Recovery's validation and replay on one segment held in memory, as if it were the whole
 * log, without touching any file (tests and the fuzz target). seg_lsn is the lsn in the
 * segment's name; salvage as in the config. Returns what sl_wal_recover would. */
int sl_wal_check_segment(const uint8_t *data, uint64_t size, uint64_t seg_lsn, bool salvage,
			 sl_wal_replay_fn fn, void *arg, struct sl_wal_recovery *report);

/* One line for an operator on sl_wal_recover's failure rc: file, offset, reason, the lsn
 * range at risk. dir is the WAL directory. */
void sl_wal_explain(const char *dir, int rc, const struct sl_wal_recovery *rep, char *buf,
		    size_t len);
const char *sl_wal_bad_str(enum sl_wal_bad bad);
const char *sl_wal_evidence_str(enum sl_wal_evidence ev);

/* Copies one record into the current buffer and assigns it the next lsn. -ENOBUFS when
 * it does not fit and the other buffer is still being written: poll and retry. A full
 * buffer with no write in flight is submitted here. -EMSGSIZE if it can never fit,
 * -EIO once the WAL has failed. */
int sl_wal_append(struct sl_wal *wal, uint16_t type, const uint8_t *payload, uint32_t len,
		  uint64_t *lsn_out);
/* The same for a record whose payload is head followed by payload, copied once each (a
 * caller's header in front of a buffer it does not want to copy first). */
int sl_wal_append2(struct sl_wal *wal, uint16_t type, const uint8_t *head, uint32_t head_len,
		   const uint8_t *payload, uint32_t payload_len, uint64_t *lsn_out);

/* Buffer bytes appends take now without -ENOBUFS, counting each record as
 * SL_WAL_RECORD_BYTES(len) + SL_WAL_HDR_BYTES (the gap a header cannot straddle): the
 * rest of the filling buffer while the other is being written, else a whole buffer (a
 * record that does not fit the rest submits it and starts the free one). Lets a caller
 * that must not wait decide before it appends. */
uint32_t sl_wal_room(const struct sl_wal *wal);

/* Submits the current buffer (write linked to fdatasync). If a flush is already in
 * flight, the buffer is submitted when it completes (group commit). */
int sl_wal_flush(struct sl_wal *wal);

/* Non-blocking: reaps completions, advances the durable lsn, submits a requested
 * flush. Returns 0, or the sticky negative errno once the WAL has failed. */
int sl_wal_poll(struct sl_wal *wal);

/* Blocking: flushes and waits until everything appended is durable (shutdown, tests). */
int sl_wal_sync(struct sl_wal *wal);

/* Records <= lsn are no longer needed: deletes the oldest segments whose every record
 * is <= lsn, never the newest one. Blocking (unlink, directory fsync). */
int sl_wal_release(struct sl_wal *wal, uint64_t lsn);

/* The same in two halves, so the file work can run on another thread while the WAL's
 * owner keeps appending: sl_wal_release_files touches only the directory (any thread;
 * it never deletes the segment keep_seg_lsn, the active one when asked, nor later ones)
 * and says which segment is now the oldest; the owner then calls sl_wal_released. */
int sl_wal_release_files(const char *dir, uint64_t lsn, uint64_t keep_seg_lsn,
			 uint64_t *first_lsn, uint32_t *deleted);
void sl_wal_released(struct sl_wal *wal, uint64_t first_lsn, uint32_t deleted);
/* The active segment's first lsn (its name), 0 before the first one. */
uint64_t sl_wal_segment_lsn(const struct sl_wal *wal);

/* Fault injection for tests: the completion of the (after_ops + 1)-th next operation of
 * that kind reports err (< 0) instead of its real result; the real I/O still runs. */
int sl_wal_inject_fault(struct sl_wal *wal, enum sl_wal_op op, int err, uint32_t after_ops);

uint64_t sl_wal_durable_lsn(const struct sl_wal *wal);
uint64_t sl_wal_last_lsn(const struct sl_wal *wal);	 /* last assigned; first_lsn - 1 if empty */
uint64_t sl_wal_first_lsn(const struct sl_wal *wal);	 /* oldest kept record */
uint32_t sl_wal_pending_bytes(const struct sl_wal *wal); /* appended, not yet submitted */
void sl_wal_stats(const struct sl_wal *wal, struct sl_wal_stats *out);

/* Clean stop: makes everything durable, then writes a clean-shutdown record in a flush
 * of its own (it proves every record before it was durable, so recovery can tell damage
 * in the last flush from a torn write). Appends may still follow. */
int sl_wal_shutdown(struct sl_wal *wal);

/* Waits for in-flight I/O, then releases everything. Records not yet durable are not
 * flushed: call sl_wal_sync() first for a clean shutdown. */
void sl_wal_close(struct sl_wal *wal);

#endif

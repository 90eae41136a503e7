/* wal_format.h - inside the WAL library only: the record format (format version 3) and
 * recovery's validation over segments read from anywhere (files in wal.c, one buffer in
 * sl_wal_check_segment), kept apart from io_uring and file I/O so it can be fuzzed. */
#ifndef SL_WAL_FORMAT_H
#define SL_WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

#define WAL_MAGIC 0x4c574c53u /* "SLWL" */
#define WAL_VERSION SL_WAL_FORMAT_VERSION
#define KIND_DATA 1u
#define KIND_PAD 2u
#define KIND_CLOSE 3u
#define KIND_ZSEC 0x80u /* on data: the payload may hold a whole sector of zeros */
#define CRC_SEED 0xffffffffu
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_KIND 5
#define OFF_TYPE 6
#define OFF_LEN 8
#define OFF_DCRC 12
#define OFF_LSN 16
#define OFF_FLUSH 24
#define OFF_RSVD 32
#define OFF_HCRC 36
#define NAME_BYTES 32

static inline uint64_t sl_wal_align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* A segment's bytes, mapped read-only or in memory. */
struct sl_wal_map {
	uint8_t *p;
	uint64_t size;
};

/* The segments of a log, oldest first, and how to get their bytes. */
struct sl_wal_src {
	int (*get)(void *ctx, uint64_t seg_lsn, struct sl_wal_map *m);
	void (*put)(void *ctx, struct sl_wal_map *m);
	void *ctx;
	const uint64_t *segs; /* their names' lsns */
	size_t n;
};

/* Where pass one stopped. */
struct sl_wal_scan {
	size_t end_seg;	  /* last segment with valid records kept */
	uint64_t end_off; /* end of its valid records */
	uint64_t last_lsn;
	uint8_t last_kind;
	enum sl_wal_bad bad; /* NONE: the whole log is valid */
	size_t bad_seg;
	uint64_t bad_off;
	enum sl_wal_evidence evidence; /* NONE: a torn tail, to be cut */
	uint64_t risk_last;
	uint8_t old_version;
};

void sl_wal_seg_name(char out[NAME_BYTES], uint64_t lsn);

/* Writes a record at p (file offset off); the payload must already follow the header. */
void sl_wal_seal(uint8_t *p, uint64_t off, uint8_t kind, uint16_t type, uint32_t len,
		 uint64_t lsn, uint64_t flush_lsn);

/* Pass one and the verdict: 0 (log valid, or a torn tail to cut), -EBADMSG (damage, no
 * salvage) or -EPROTONOSUPPORT. Fills the report's verdict fields. */
int sl_wal_classify(const struct sl_wal_src *src, bool salvage, struct sl_wal_scan *sc,
		    struct sl_wal_recovery *rep);

/* Pass two: replays segments [0, n_keep), the last one up to end_off. */
int sl_wal_replay_log(const struct sl_wal_src *src, size_t n_keep, uint64_t end_off,
		      sl_wal_replay_fn fn, void *arg, struct sl_wal_recovery *rep);

#endif

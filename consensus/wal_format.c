/* wal_format.c - the WAL's record format and recovery's pass one (validation, and the
 * verdict: torn last write or damage to durable records) and pass two (replay), over
 * segments from any source; no io_uring, no files. docs/wal.md states the rules. */
#include "wal_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sl_crc.h"
#include "sl_le.h"

void sl_wal_seg_name(char out[NAME_BYTES], uint64_t lsn)
{
	snprintf(out, NAME_BYTES, "wal-%016" PRIx64 ".log", lsn);
}

/* ---- record encoding ---- */

static bool zero_bytes(const uint8_t *p, uint64_t n)
{
	/* Word-wise after an unaligned head: recovery checks whole preallocated tails. */
	while (n > 0 && ((uintptr_t)p & 7u) != 0) {
		if (*p++)
			return false;
		n--;
	}
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		if (v)
			return false;
	}
	while (n-- > 0)
		if (*p++)
			return false;
	return true;
}

/* Could a sector overlapping this record's payload legitimately read as all zeros? rec
 * sits at file offset off (the buffer and the file agree modulo the block size). Only
 * payload bytes count: the sector with the magic is never zero, and treating header
 * bytes in a later sector as zero errs on the side of setting the flag. */
static bool payload_has_zero_sector(const uint8_t *rec, uint64_t off, uint32_t len)
{
	uint64_t from = off + SL_WAL_HDR_BYTES, end = from + len;
	uint64_t s = off / SL_WAL_SECTOR_BYTES * SL_WAL_SECTOR_BYTES + SL_WAL_SECTOR_BYTES;
	for (; s < end; s += SL_WAL_SECTOR_BYTES) {
		uint64_t a = s > from ? s : from;
		uint64_t b = s + SL_WAL_SECTOR_BYTES < end ? s + SL_WAL_SECTOR_BYTES : end;
		if (zero_bytes(rec + (a - off), b - a))
			return true;
	}
	return false;
}

static uint32_t header_crc(const uint8_t *rec) { return sl_crc32c(rec, OFF_HCRC, CRC_SEED); }

void sl_wal_seal(uint8_t *p, uint64_t off, uint8_t kind, uint16_t type, uint32_t len,
		 uint64_t lsn, uint64_t flush_lsn)
{
	if (kind == KIND_DATA && payload_has_zero_sector(p, off, len))
		kind |= KIND_ZSEC;
	sl_put_u32(p + OFF_MAGIC, WAL_MAGIC);
	p[OFF_VERSION] = WAL_VERSION;
	p[OFF_KIND] = kind;
	sl_put_u16(p + OFF_TYPE, type);
	sl_put_u32(p + OFF_LEN, len);
	sl_put_u32(p + OFF_DCRC, sl_crc32c(p + SL_WAL_HDR_BYTES, len, CRC_SEED));
	sl_put_u64(p + OFF_LSN, lsn);
	sl_put_u64(p + OFF_FLUSH, flush_lsn);
	sl_put_u32(p + OFF_RSVD, 0);
	sl_put_u32(p + OFF_HCRC, header_crc(p));
	uint64_t total = SL_WAL_RECORD_BYTES(len);
	memset(p + SL_WAL_HDR_BYTES + len, 0, total - SL_WAL_HDR_BYTES - len);
}

struct rec {
	bool hdr_ok; /* the header is intact: its length and lsn can be trusted */
	uint8_t kind; /* without KIND_ZSEC */
	bool zsec;
	uint16_t type;
	uint32_t len;
	uint64_t lsn;
	uint64_t flush_lsn;
	const uint8_t *payload;
};

/* Validates the record at off of a mapped segment of size bytes: the header first (so
 * its length is trusted before it is used), then the payload. */
static enum sl_wal_bad check_record(const uint8_t *map, uint64_t size, uint64_t off, struct rec *r)
{
	r->hdr_ok = false;
	if (off > size || size - off < SL_WAL_HDR_BYTES)
		return SL_WAL_BAD_LENGTH;
	const uint8_t *p = map + off;
	if (sl_get_u32(p + OFF_MAGIC) != WAL_MAGIC)
		return SL_WAL_BAD_MAGIC;
	if (p[OFF_VERSION] != WAL_VERSION)
		return SL_WAL_BAD_VERSION;
	if (sl_get_u32(p + OFF_HCRC) != header_crc(p))
		return SL_WAL_BAD_CRC;
	uint8_t kind = p[OFF_KIND] & (uint8_t)~KIND_ZSEC;
	bool zsec = (p[OFF_KIND] & KIND_ZSEC) != 0;
	if ((kind != KIND_DATA && kind != KIND_PAD && kind != KIND_CLOSE) ||
	    (zsec && kind != KIND_DATA) || sl_get_u32(p + OFF_RSVD) != 0)
		return SL_WAL_BAD_VERSION;
	r->hdr_ok = true;
	r->kind = kind;
	r->zsec = zsec;
	r->type = sl_get_u16(p + OFF_TYPE);
	r->len = sl_get_u32(p + OFF_LEN);
	r->lsn = sl_get_u64(p + OFF_LSN);
	r->flush_lsn = sl_get_u64(p + OFF_FLUSH);
	r->payload = p + SL_WAL_HDR_BYTES;
	if (r->len > size - off - SL_WAL_HDR_BYTES)
		return SL_WAL_BAD_LENGTH;
	if (sl_get_u32(p + OFF_DCRC) != sl_crc32c(r->payload, r->len, CRC_SEED))
		return SL_WAL_BAD_CRC;
	return SL_WAL_BAD_NONE;
}

/* ---- recovery: pass one ---- */

static int src_get(const struct sl_wal_src *src, size_t k, struct sl_wal_map *m)
{
	return src->get(src->ctx, src->segs[k], m);
}

static void src_put(const struct sl_wal_src *src, struct sl_wal_map *m) { src->put(src->ctx, m); }

/* Past the zeros a writer leaves when fewer than a header's bytes remain in a block. */
static uint64_t skip_block_gap(uint64_t off)
{
	uint64_t to_block = SL_WAL_BLOCK_BYTES - off % SL_WAL_BLOCK_BYTES;
	return to_block < SL_WAL_HDR_BYTES ? off + to_block : off;
}

/* Any valid record starting at a block boundary >= from? */
static bool any_valid_from(const struct sl_wal_map *m, uint64_t from)
{
	struct rec r;
	for (uint64_t o = sl_wal_align_up(from, SL_WAL_BLOCK_BYTES); o < m->size; o += SL_WAL_BLOCK_BYTES)
		if (check_record(m->p, m->size, o, &r) == SL_WAL_BAD_NONE)
			return true;
	return false;
}

/* What valid records after a damaged spot say about it. Only the last flush can be torn
 * (one flush is in flight at a time, the next is written after its fdatasync), and a
 * torn flush may leave later blocks of its own intact: records whose flush lsn is that of
 * the damaged flush (<= last valid lsn + 1). A record of any later flush (a clean-shutdown
 * record included), a mix of flushes, or the very next lsn (nothing of the flush was lost
 * yet the log is damaged) proves the damaged flush completed: not a torn tail. */
struct later {
	uint64_t last_lsn; /* last valid lsn before the damage */
	bool found;
	uint64_t flush_lsn; /* of the first valid record found */
	bool later_flush;
	uint64_t max_lsn; /* highest lsn of the valid records found */
};

static void later_note(struct later *l, const struct rec *r)
{
	if (!l->found) {
		l->found = true;
		l->flush_lsn = r->flush_lsn;
		if (r->kind == KIND_DATA && r->lsn == l->last_lsn + 1)
			l->later_flush = true;
	}
	if (r->flush_lsn != l->flush_lsn || r->flush_lsn > l->last_lsn + 1)
		l->later_flush = true;
	if (r->lsn > l->max_lsn)
		l->max_lsn = r->lsn;
}

/* Notes the valid records from q on, one after the other; returns where they end. */
static uint64_t later_chain(const struct sl_wal_map *m, uint64_t q, struct later *l)
{
	struct rec r;
	while (q < m->size && check_record(m->p, m->size, q, &r) == SL_WAL_BAD_NONE) {
		later_note(l, &r);
		q = skip_block_gap(q + SL_WAL_RECORD_BYTES(r.len));
	}
	return q;
}

/* Looks for a valid record at every block boundary >= from and follows each one found
 * record by record. Bounded: the offset only grows. */
static void later_scan(const struct sl_wal_map *m, uint64_t from, struct later *l)
{
	uint64_t o = sl_wal_align_up(from, SL_WAL_BLOCK_BYTES);
	while (o < m->size && !l->later_flush) {
		uint64_t q = later_chain(m, o, l);
		o = q == o ? o + SL_WAL_BLOCK_BYTES : sl_wal_align_up(q, SL_WAL_BLOCK_BYTES);
	}
}

struct walk {
	uint64_t last_lsn; /* in: lsn before the segment; out: last valid lsn */
	uint64_t limit;	   /* in: stop at this offset */
	uint64_t off;	   /* out: end of the valid records, or the invalid one */
	uint64_t records;
	uint8_t last_kind; /* out: kind of the last valid record, 0 if none */
	bool check_holes;
	sl_wal_replay_fn fn;
	void *arg;
	int cb_rc;
	struct rec bad_rec; /* out: the invalid record as far as it was read */
};

/* Walks one segment's records. Ends at the limit, the end of the file or at zeros where a
 * header belongs (preallocated space); returns why it stopped early otherwise. */
static enum sl_wal_bad walk_segment(const struct sl_wal_map *m, struct walk *st)
{
	uint64_t off = 0, end = m->size < st->limit ? m->size : st->limit;
	enum sl_wal_bad bad = SL_WAL_BAD_NONE;
	while ((off = skip_block_gap(off)) < end) {
		uint64_t hdr = m->size - off < SL_WAL_HDR_BYTES ? m->size - off : SL_WAL_HDR_BYTES;
		if (zero_bytes(m->p + off, hdr)) {
			if (st->check_holes && any_valid_from(m, off + 1))
				bad = SL_WAL_BAD_HOLE;
			break;
		}
		struct rec r;
		bad = check_record(m->p, m->size, off, &r);
		if (bad == SL_WAL_BAD_NONE && r.lsn != st->last_lsn + (r.kind == KIND_DATA))
			bad = SL_WAL_BAD_LSN;
		if (bad != SL_WAL_BAD_NONE) {
			st->bad_rec = r;
			break;
		}
		if (r.kind == KIND_DATA) {
			if (st->fn) {
				st->cb_rc = st->fn(st->arg, r.lsn, r.type, r.payload, r.len);
				if (st->cb_rc != 0)
					break;
			}
			st->last_lsn = r.lsn;
			st->records++;
		}
		if (r.kind != KIND_PAD) /* a flush's padding follows a clean-shutdown record */
			st->last_kind = r.kind;
		off += SL_WAL_RECORD_BYTES(r.len);
	}
	st->off = off < end ? off : end;
	return bad;
}

/* Does a sector overlapping [from, to) read as all zeros (or lie past the file's end)?
 * A torn write leaves every sector either as written or as it was: zeros, since blocks
 * are preallocated and never written twice. */
static bool zero_sector_in(const struct sl_wal_map *m, uint64_t from, uint64_t to)
{
	if (to > m->size)
		return true;
	for (uint64_t s = from / SL_WAL_SECTOR_BYTES * SL_WAL_SECTOR_BYTES; s < to;
	     s += SL_WAL_SECTOR_BYTES) {
		uint64_t e = s + SL_WAL_SECTOR_BYTES < m->size ? s + SL_WAL_SECTOR_BYTES : m->size;
		if (zero_bytes(m->p + s, e - s))
			return true;
	}
	return false;
}

/* With no later flush after it, could the bad record be the torn end of the last write?
 * Returns SL_WAL_EV_NONE when it could, else why not. */
static enum sl_wal_evidence torn_evidence(const struct sl_wal_map *m, uint64_t off,
					  enum sl_wal_bad bad, const struct rec *r)
{
	switch (bad) {
	case SL_WAL_BAD_HOLE:
	case SL_WAL_BAD_TAIL:
	case SL_WAL_BAD_LENGTH: /* zeros, or the file ends inside the record */
	case SL_WAL_BAD_NAME:
		return SL_WAL_EV_NONE;
	case SL_WAL_BAD_LSN:
		return SL_WAL_EV_INTACT;
	default:
		break;
	}
	if (!r->hdr_ok) /* a torn record's header is whole unless its sector is unwritten */
		return zero_sector_in(m, off, off + SL_WAL_HDR_BYTES) ? SL_WAL_EV_NONE
								       : SL_WAL_EV_WRITTEN;
	if (r->kind != KIND_DATA)
		return SL_WAL_EV_NONE; /* padding or a shutdown mark: no data to lose */
	if (r->zsec)
		return SL_WAL_EV_AMBIGUOUS;
	return zero_sector_in(m, off, off + SL_WAL_HDR_BYTES + r->len) ? SL_WAL_EV_NONE
								       : SL_WAL_EV_WRITTEN;
}

/* After an invalid record: torn tail of the last flush, or damage to durable bytes? */
static int judge(const struct sl_wal_src *src, const struct sl_wal_map *bad_map, const struct walk *st,
		 struct sl_wal_scan *sc)
{
	struct later l = {.last_lsn = sc->last_lsn};
	const struct rec *r = &st->bad_rec;
	/* A record with an intact header is followed by the rest of its flush. */
	if (sc->bad == SL_WAL_BAD_CRC && r->hdr_ok)
		(void)later_chain(bad_map, skip_block_gap(sc->bad_off + SL_WAL_RECORD_BYTES(r->len)),
				  &l);
	later_scan(bad_map, sc->bad == SL_WAL_BAD_NAME ? 0 : sc->bad_off + 1, &l);
	for (size_t j = sc->bad_seg + 1; j < src->n && !l.later_flush; j++) {
		struct sl_wal_map m;
		int rc = src_get(src, j, &m);
		if (rc < 0)
			return rc;
		later_scan(&m, 0, &l);
		src_put(src, &m);
	}
	sc->risk_last = l.max_lsn;
	if ((sc->bad == SL_WAL_BAD_CRC || sc->bad == SL_WAL_BAD_LENGTH) && r->hdr_ok &&
	    r->kind == KIND_DATA && r->lsn > sc->risk_last)
		sc->risk_last = r->lsn;
	if (l.later_flush)
		sc->evidence = SL_WAL_EV_LATER_FLUSH;
	else if (sc->bad == SL_WAL_BAD_NAME)
		sc->evidence = l.found ? SL_WAL_EV_INTACT : SL_WAL_EV_NONE;
	else
		sc->evidence = torn_evidence(bad_map, sc->bad_off, sc->bad, r);
	return 0;
}

/* Format version 2 (32-byte header, one crc over header and payload): recognised only to
 * refuse it by name. */
static uint8_t old_version_at_start(const struct sl_wal_map *m)
{
	if (m->size < 32 || sl_get_u32(m->p + OFF_MAGIC) != WAL_MAGIC || m->p[OFF_VERSION] != 2)
		return 0;
	uint32_t len = sl_get_u32(m->p + 8);
	if (len > m->size - 32)
		return 0;
	uint32_t c = sl_crc32c(m->p, 12, CRC_SEED);
	c = sl_crc32c(m->p + 16, 16, c);
	c = sl_crc32c(m->p + 32, len, c);
	return c == sl_get_u32(m->p + 12) ? 2 : 0;
}

static int scan_log(const struct sl_wal_src *src, struct sl_wal_scan *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->last_lsn = src->segs[0] - 1;
	for (size_t k = 0; k < src->n; k++) {
		struct sl_wal_map m;
		int rc = src_get(src, k, &m);
		if (rc < 0)
			return rc;
		struct walk st = {.last_lsn = sc->last_lsn, .limit = UINT64_MAX, .check_holes = true};
		enum sl_wal_bad bad = SL_WAL_BAD_NONE;
		if (src->segs[k] != sc->last_lsn + 1)
			bad = SL_WAL_BAD_NAME;
		else
			bad = walk_segment(&m, &st);
		if (bad == SL_WAL_BAD_VERSION && k == 0 && st.off == 0)
			sc->old_version = old_version_at_start(&m);
		if (sc->old_version) {
			src_put(src, &m);
			return 0;
		}
		/* Bytes after the last record of the log: the rest of a torn write (or a flip
		 * in unused space); cut so that appends never leave them behind. */
		if (bad == SL_WAL_BAD_NONE && k + 1 == src->n && st.off < m.size &&
		    !zero_bytes(m.p + st.off, m.size - st.off))
			bad = SL_WAL_BAD_TAIL;
		if (bad == SL_WAL_BAD_NONE) {
			sc->end_seg = k;
			sc->end_off = st.off;
			sc->last_lsn = st.last_lsn;
			if (st.last_kind)
				sc->last_kind = st.last_kind;
			src_put(src, &m);
			continue;
		}
		sc->bad = bad;
		sc->bad_seg = k;
		sc->bad_off = st.off;
		if (bad != SL_WAL_BAD_NAME && (k == 0 || st.off > 0)) {
			/* The cut keeps this segment up to the bad record. */
			sc->end_seg = k;
			sc->end_off = st.off;
			sc->last_lsn = st.last_lsn;
			if (st.last_kind)
				sc->last_kind = st.last_kind;
		}
		rc = judge(src, &m, &st, sc);
		src_put(src, &m);
		return rc;
	}
	return 0;
}

static void fill_bad(struct sl_wal_recovery *rep, const uint64_t *segs, const struct sl_wal_scan *sc)
{
	rep->reason = sc->bad;
	rep->bad_segment_lsn = segs[sc->bad_seg];
	rep->bad_offset = sc->bad_off;
	sl_wal_seg_name(rep->bad_segment, segs[sc->bad_seg]);
	rep->evidence = sc->evidence;
	rep->risk_first_lsn = sc->last_lsn + 1;
	rep->risk_last_lsn = sc->risk_last > sc->last_lsn ? sc->risk_last : 0;
}

int sl_wal_classify(const struct sl_wal_src *src, bool salvage, struct sl_wal_scan *sc,
		    struct sl_wal_recovery *rep)
{
	int rc = scan_log(src, sc);
	if (rc < 0)
		return rc;
	if (sc->old_version) {
		rep->old_version = sc->old_version;
		return -EPROTONOSUPPORT;
	}
	if (sc->bad == SL_WAL_BAD_NONE) {
		rep->clean_shutdown = sc->last_kind == KIND_CLOSE;
		return 0;
	}
	fill_bad(rep, src->segs, sc);
	if (sc->evidence == SL_WAL_EV_NONE) {
		rep->torn_tail_cut = true;
		return 0;
	}
	rep->corruption = true;
	if (!salvage)
		return -EBADMSG;
	rep->salvaged = true;
	return 0;
}

int sl_wal_replay_log(const struct sl_wal_src *src, size_t n_keep, uint64_t end_off,
		      sl_wal_replay_fn fn, void *arg, struct sl_wal_recovery *rep)
{
	uint64_t last = src->segs[0] - 1;
	for (size_t k = 0; k < n_keep; k++) {
		struct sl_wal_map m;
		int rc = src_get(src, k, &m);
		if (rc < 0)
			return rc;
		struct walk st = {.last_lsn = last,
				  .limit = k + 1 == n_keep ? end_off : UINT64_MAX,
				  .fn = fn,
				  .arg = arg};
		enum sl_wal_bad bad = walk_segment(&m, &st);
		src_put(src, &m);
		rep->records += st.records;
		if (st.cb_rc != 0)
			return st.cb_rc < 0 ? st.cb_rc : -ECANCELED;
		if (bad != SL_WAL_BAD_NONE)
			return -EIO; /* validated in pass one: the file changed underneath */
		last = st.last_lsn;
	}
	return 0;
}

static int buf_get(void *ctx, uint64_t seg_lsn, struct sl_wal_map *m)
{
	(void)seg_lsn;
	*m = *(const struct sl_wal_map *)ctx;
	return 0;
}

static void buf_put(void *ctx, struct sl_wal_map *m)
{
	(void)ctx;
	(void)m;
}

int sl_wal_check_segment(const uint8_t *data, uint64_t size, uint64_t seg_lsn, bool salvage,
			 sl_wal_replay_fn fn, void *arg, struct sl_wal_recovery *report)
{
	struct sl_wal_recovery rep;
	memset(&rep, 0, sizeof(rep));
	if ((!data && size > 0) || seg_lsn == 0)
		return -EINVAL;
	struct sl_wal_map m = {.p = (uint8_t *)(uintptr_t)data, .size = size};
	struct sl_wal_src src = {.get = buf_get, .put = buf_put, .ctx = &m, .segs = &seg_lsn, .n = 1};
	struct sl_wal_scan sc;
	int rc = sl_wal_classify(&src, salvage, &sc, &rep);
	/* A bad segment name cannot happen with one segment; NAME keeps nothing. */
	if (rc == 0)
		rc = sl_wal_replay_log(&src, 1, sc.end_off, fn, arg, &rep);
	if (rc == 0) {
		rep.segments = 1;
		rep.first_lsn = seg_lsn;
		rep.last_lsn = sc.last_lsn;
	}
	if (report)
		*report = rep;
	return rc;
}

void sl_wal_explain(const char *dir, int rc, const struct sl_wal_recovery *rep, char *buf,
		    size_t len)
{
	if (rc == -EPROTONOSUPPORT) {
		snprintf(buf, len,
			 "WAL %s: written in format version %u, this build reads version %u only "
			 "(nothing was changed)",
			 dir, rep->old_version, SL_WAL_FORMAT_VERSION);
	} else if (rc == -EBADMSG) {
		char last[32] = "on";
		if (rep->risk_last_lsn)
			snprintf(last, sizeof(last), "to %" PRIu64, rep->risk_last_lsn);
		snprintf(buf, len,
			 "WAL %s/%s offset %" PRIu64 ": %s; damage to durable records, not a torn "
			 "write (%s): lsn %" PRIu64 " %s at risk (nothing was changed)",
			 dir, rep->bad_segment, rep->bad_offset, sl_wal_bad_str(rep->reason),
			 sl_wal_evidence_str(rep->evidence), rep->risk_first_lsn, last);
	} else {
		snprintf(buf, len, "WAL %s: recovery failed: %s", dir, strerror(-rc));
	}
}

const char *sl_wal_bad_str(enum sl_wal_bad bad)
{
	switch (bad) {
	case SL_WAL_BAD_NONE:
		return "valid";
	case SL_WAL_BAD_MAGIC:
		return "not a record header";
	case SL_WAL_BAD_VERSION:
		return "unknown version or record kind";
	case SL_WAL_BAD_LENGTH:
		return "record runs past the end of the file";
	case SL_WAL_BAD_CRC:
		return "checksum mismatch";
	case SL_WAL_BAD_LSN:
		return "lsn out of sequence";
	case SL_WAL_BAD_NAME:
		return "segment name out of sequence";
	case SL_WAL_BAD_HOLE:
		return "zeros where a record belongs";
	case SL_WAL_BAD_TAIL:
		return "bytes after the last record";
	}
	return "?";
}

const char *sl_wal_evidence_str(enum sl_wal_evidence ev)
{
	switch (ev) {
	case SL_WAL_EV_NONE:
		return "torn last write";
	case SL_WAL_EV_LATER_FLUSH:
		return "a later completed write follows it";
	case SL_WAL_EV_WRITTEN:
		return "every sector of the record was written";
	case SL_WAL_EV_AMBIGUOUS:
		return "the record holds zero sectors, a torn write cannot be ruled out";
	case SL_WAL_EV_INTACT:
		return "an intact record is out of place";
	}
	return "?";
}


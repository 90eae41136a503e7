/* session.h - the binary session protocol (docs/protocol.md): the UDP message codec, the
 * node's session table that gives exactly-once, in-order batches per session, and a client
 * helper (window, retransmissions) shared by sluice-bench and sluicectl. Pure: no sockets,
 * no clocks (time comes in as now_ns), no allocation (all memory is the caller's). */
#ifndef SL_SESSION_H
#define SL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* ---- wire format ------------------------------------------------------------------- */

#define SL_SESS_MAGIC 0x50534c53u /* bytes "SLSP" on the wire */
#define SL_SESS_VERSION 1
#define SL_SESS_PORT 7400	      /* default UDP port of a node */
#define SL_SESS_MSG_MAX 9000u	      /* bytes of one message = one UDP payload */
#define SL_SESS_HDR_BYTES 20u	      /* magic|version|type|flags|length|cluster|crc */
#define SL_SESS_POINT_FIXED_BYTES 19u /* key_len u16 | ts i64 | type u8 | value u64 (+ key) */
#define SL_SESS_BATCH_FIXED_BYTES 24u
#define SL_SESS_RESULT_FIXED_BYTES 24u
#define SL_SESS_PAIR_BYTES 16u /* ts i64 | value u64 of a read result */
#define SL_SESS_ROUTES_FIXED_BYTES 16u /* request id u64 | node u32 | regions u16 | 0 u16 */
#define SL_SESS_ROUTE_BYTES 24u	       /* hash lo u64 | hash hi u64 | home u32 | proto u8 | 0 */
#define SL_SESS_ROUTES_MAX 256u	       /* regions in one ROUTES_OK */
#define SL_SESS_BATCH_POINTS_MAX                                                                   \
	((SL_SESS_MSG_MAX - SL_SESS_HDR_BYTES - SL_SESS_BATCH_FIXED_BYTES) /                       \
	 (SL_SESS_POINT_FIXED_BYTES + 1u)) /* 447: every key one byte */
#define SL_SESS_RESULT_POINTS_MAX                                                                  \
	((SL_SESS_MSG_MAX - SL_SESS_HDR_BYTES - SL_SESS_RESULT_FIXED_BYTES) /                      \
	 SL_SESS_PAIR_BYTES) /* 559 */
#define SL_SESS_ERROR_TEXT_MAX 256u

enum sl_sess_type {
	SL_SESS_OPEN = 1,
	SL_SESS_OPEN_OK = 2,
	SL_SESS_BATCH = 3,
	SL_SESS_ACK = 4,
	SL_SESS_READ = 5,
	SL_SESS_READ_RESULT = 6,
	SL_SESS_CLOSE = 7,
	SL_SESS_CLOSE_OK = 8,
	SL_SESS_ERROR = 9,
	SL_SESS_ROUTES = 10,	/* where each region's writes go (client-side routing) */
	SL_SESS_ROUTES_OK = 11,
};
#define SL_SESS_TYPE_MAX SL_SESS_ROUTES_OK

/* Protocol of a region in ROUTES_OK. */
enum sl_sess_route_proto {
	SL_SESS_PROTO_STANDALONE = 1,
	SL_SESS_PROTO_RAFT = 2,
	SL_SESS_PROTO_MULTILEADER = 3,
};

/* One status numbering for OPEN_OK, ACK, READ_RESULT and CLOSE_OK; each uses a subset
 * (docs/protocol.md says which). Names by sl_sess_status_name(). */
enum sl_sess_status {
	SL_SESS_ST_OK = 0,
	SL_SESS_ST_DUPLICATE = 1,	/* already durable: success, not applied again */
	SL_SESS_ST_UNKNOWN_SESSION = 2, /* OPEN again (same id, oldest unacked seq) */
	SL_SESS_ST_OUT_OF_ORDER = 3,	/* resend from expected_seq */
	SL_SESS_ST_TOO_FAR_AHEAD = 4,	/* seq beyond the node's window: resend from expected */
	SL_SESS_ST_REJECTED_POINTS = 5, /* durable; count_stored < points sent */
	SL_SESS_ST_BUSY = 6,		/* not taken: retry the same seq later */
	SL_SESS_ST_STORAGE_ERROR = 7,	/* not durable: retry later (another node/restart) */
	SL_SESS_ST_RESUMED = 8,		/* OPEN_OK: the node already knew the session */
	SL_SESS_ST_NOT_FOUND = 9,	/* READ_RESULT: no such series */
	SL_SESS_ST_UNAVAILABLE = 10,	/* READ_RESULT: read level not offered here */
	SL_SESS_ST_BAD_REQUEST = 11,	/* READ_RESULT: range or limits refused */
	SL_SESS_ST_COUNT
};

/* Ack levels of a BATCH (what the ACK waits for). */
enum sl_sess_level {
	SL_SESS_LEVEL_NONE = 0,	    /* no ACK; gaps allowed (at most once, in order) */
	SL_SESS_LEVEL_LOCAL = 1,    /* durable on the receiving node */
	SL_SESS_LEVEL_MAJORITY = 2, /* durable on a majority (single node: reached as 1) */
};

/* Read levels of a READ. */
enum sl_sess_read_level {
	SL_SESS_READ_LOCAL = 0,	  /* any replica, what it has applied */
	SL_SESS_READ_LEADER = 1,  /* linearizable (Raft regions) */
	SL_SESS_READ_DURABLE = 2, /* only data durable on a majority (CAD) */
	SL_SESS_READ_SYNC = 3,	  /* every write acknowledged before it (read-your-writes) */
};

/* Header flags (u16): bit 0 is CONTINUE in a READ and MORE in a READ_RESULT; no other bit
 * is defined for any type, and a set undefined bit is BAD_FLAGS. */
#define SL_SESS_F_CONTINUE 0x0001u
#define SL_SESS_F_MORE 0x0001u

/* Why a message was refused; 0 is "no error". Names by sl_sess_err_name() for counters. */
enum sl_sess_err {
	SL_SESS_OK = 0,
	SL_SESS_ERR_TRUNCATED, /* shorter than the header or than its length field */
	SL_SESS_ERR_BAD_MAGIC,
	SL_SESS_ERR_BAD_VERSION,
	SL_SESS_ERR_OVERSIZE,	/* datagram or length field over SL_SESS_MSG_MAX */
	SL_SESS_ERR_BAD_LENGTH, /* trailing bytes, or a body of the wrong size for its type */
	SL_SESS_ERR_BAD_CRC,
	SL_SESS_ERR_WRONG_CLUSTER, /* a valid frame of another cluster */
	SL_SESS_ERR_BAD_TYPE,
	SL_SESS_ERR_BAD_FLAGS,	     /* an undefined flag bit */
	SL_SESS_ERR_BAD_FIELD,	     /* id/seq 0, level, status, reserved bytes, ts range... */
	SL_SESS_ERR_TOO_MANY_POINTS, /* count over the per-message maximum */
	SL_SESS_ERR_BAD_COUNT,	     /* count does not match the bytes */
	SL_SESS_ERR_BAD_KEY,	     /* key length not in 1..SL_KEY_MAX */
	SL_SESS_ERR_BAD_UTF8,	     /* key or error text not valid UTF-8 */
	SL_SESS_ERR_BAD_POINT,	     /* value type not 1..4, bool not 0/1, ts not increasing */
	SL_SESS_ERR_COUNT
};

const char *sl_sess_err_name(int err);	 /* "bad_crc"...; "unknown" out of range */
const char *sl_sess_status_name(int st); /* "out_of_order"...; "unknown" out of range */
const char *sl_sess_type_name(int type); /* "batch"...; "unknown" out of range */

struct sl_sess_open {
	uint64_t session_id; /* != 0, chosen at random by the client */
	uint64_t next_seq;   /* >= 1: the client's oldest unacknowledged (or next) seq */
};

struct sl_sess_open_ok {
	uint64_t session_id;
	uint64_t next_seq;    /* the node expects this seq next */
	uint64_t durable_seq; /* every seq <= this is durable (0: none) */
	uint64_t incarnation; /* changes when the node restarts */
	uint32_t window;      /* seqs accepted ahead of next_seq (the node's reorder limit) */
	uint8_t status;	      /* OK (new session), RESUMED, BUSY (table full: retry) */
};

/* points/points_len: the encoded points (key_len|key|ts|type|value ...) of a decoded
 * message, pointing into the datagram; walk them with sl_sess_points_*. */
struct sl_sess_batch {
	uint64_t session_id;
	uint64_t seq; /* 1 .. UINT64_MAX - 1 */
	uint32_t count;
	uint8_t level; /* enum sl_sess_level */
	const uint8_t *points;
	size_t points_len;
};

struct sl_sess_ack {
	uint64_t session_id;
	uint64_t seq;
	uint64_t expected_seq; /* the node's next expected seq (resend from here on 3/4) */
	uint32_t count_stored;
	uint8_t status;
	uint8_t level; /* level reached (SL_SESS_LEVEL_LOCAL while single-node) */
};

/* Series key and time range [from_ts, to_ts]; with cont set the read resumes strictly
 * after cont_ts (the READ_RESULT's cont_ts). max_points 0 = as many as fit. */
struct sl_sess_read {
	uint64_t request_id;
	int64_t from_ts;
	int64_t to_ts;
	int64_t cont_ts;
	uint32_t max_points;
	uint8_t level; /* enum sl_sess_read_level */
	bool cont;
	uint16_t key_len;
	const char *key;
};

/* pairs: count x (ts i64 | value u64), strictly increasing ts; sl_sess_result_pair(). */
struct sl_sess_result {
	uint64_t request_id;
	int64_t cont_ts; /* with more: the last ts returned, to pass back as READ cont_ts */
	uint32_t count;
	uint8_t status;
	uint8_t type; /* value type of the series; 0 when count is 0 */
	bool more;
	const uint8_t *pairs;
};

struct sl_sess_close {
	uint64_t session_id;
};

struct sl_sess_close_ok {
	uint64_t session_id;
	uint8_t status; /* OK, UNKNOWN_SESSION, BUSY (batches in flight: retry) */
};

/* Reply to a message that could not be handled (malformed, wrong state...). */
struct sl_sess_error {
	uint64_t ref_id;  /* first 8 body bytes of the offending message (session/request id) */
	uint16_t code;	  /* enum sl_sess_err */
	uint8_t ref_type; /* type byte of the offending message, 0 if unknown */
	uint16_t text_len;
	const char *text; /* UTF-8, <= SL_SESS_ERROR_TEXT_MAX bytes, not NUL-terminated */
};

/* ROUTES: the request id only. ROUTES_OK: the answering node's id and, per region, its
 * series-hash range (ascending, covering 0..2^64-1 without a gap), its protocol and its
 * home: the node a client should send the region's points to (raft: the leader it knows;
 * multileader: its home replica; standalone: its one copy; 0: none known now, any node
 * takes them and forwards). routes: n_regions x SL_SESS_ROUTE_BYTES, read with
 * sl_sess_route(). */
struct sl_sess_routes_req {
	uint64_t request_id;
};
struct sl_sess_routes {
	uint64_t request_id;
	uint32_t node;
	uint16_t n_regions;
	const uint8_t *routes;
};
struct sl_sess_route {
	uint64_t hash_lo, hash_hi;
	uint32_t home;
	uint8_t protocol; /* enum sl_sess_route_proto */
};
/* Region i of a decoded ROUTES_OK; for encoding, sl_sess_route_put() fills the array. */
void sl_sess_route(const struct sl_sess_routes *r, uint32_t i, struct sl_sess_route *out);
void sl_sess_route_put(uint8_t *routes, uint32_t i, const struct sl_sess_route *in);

struct sl_sess_msg {
	uint8_t type;
	uint32_t cluster_id;
	union {
		struct sl_sess_open open;
		struct sl_sess_open_ok open_ok;
		struct sl_sess_batch batch;
		struct sl_sess_ack ack;
		struct sl_sess_read read;
		struct sl_sess_result result;
		struct sl_sess_close close;
		struct sl_sess_close_ok close_ok;
		struct sl_sess_routes_req routes_req;
		struct sl_sess_routes routes;
		struct sl_sess_error error;
	} u;
};

/* Validates one datagram completely (header, CRC, cluster, every field and point) and
 * fills *out (pointers into buf). Returns SL_SESS_OK or the reason; on error *out is
 * unspecified. A frame of another cluster is WRONG_CLUSTER only when its CRC is valid. */
enum sl_sess_err sl_sess_decode(const uint8_t *buf, size_t len, uint32_t cluster_id,
				struct sl_sess_msg *out);

/* For ERROR replies to a message that failed to decode: its type byte and first 8 body
 * bytes when present (0 otherwise). Never fails. */
void sl_sess_peek_ref(const uint8_t *buf, size_t len, uint8_t *type, uint64_t *ref_id);

/* Iterates the points of a decoded BATCH without copying: key points into the datagram,
 * series_id = sl_series_id(key), str NULL. Only for messages sl_sess_decode accepted. */
struct sl_sess_point_iter {
	const uint8_t *p;
	size_t off;
	size_t len;
	uint32_t left;
};
void sl_sess_points_init(struct sl_sess_point_iter *it, const struct sl_sess_batch *b);
int sl_sess_points_next(struct sl_sess_point_iter *it, struct sl_point *out); /* 1, 0 at end */

/* Pair i (< count) of a decoded READ_RESULT. */
void sl_sess_result_pair(const struct sl_sess_result *r, uint32_t i, int64_t *ts, uint64_t *value);

/* Encodes any message into buf (for BATCH/READ_RESULT the points/pairs bytes are copied as
 * they are, e.g. from a decoded message). Returns the length, -ENOSPC, or -EINVAL for a
 * message sl_sess_decode would refuse (bad type, field or size). */
int sl_sess_encode(uint8_t *buf, size_t cap, const struct sl_sess_msg *m);

/* Builder of a BATCH or READ_RESULT over a caller buffer (at most SL_SESS_MSG_MAX is used).
 * Fields are private. */
struct sl_sess_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint32_t count;
	uint32_t max_count;
	uint8_t type;
	uint8_t value_type; /* READ_RESULT */
	int64_t last_ts;    /* READ_RESULT: strictly increasing */
};

/* -EINVAL for session id 0, seq 0 or UINT64_MAX, level > 2; -ENOSPC for a tiny buffer. */
int sl_sess_batch_begin(struct sl_sess_writer *w, uint8_t *buf, size_t cap, uint32_t cluster_id,
			uint64_t session_id, uint64_t seq, uint8_t level);
/* Appends one point (series_id and str ignored). -ENOSPC when it does not fit (writer
 * unchanged), -EINVAL for a point the decoder would refuse. */
int sl_sess_batch_add(struct sl_sess_writer *w, const struct sl_point *p);

int sl_sess_result_begin(struct sl_sess_writer *w, uint8_t *buf, size_t cap, uint32_t cluster_id,
			 uint64_t request_id, uint8_t status, uint8_t value_type);
/* -ENOSPC when full, -EINVAL when ts does not increase or a bool is not 0/1. */
int sl_sess_result_add(struct sl_sess_writer *w, int64_t ts, uint64_t value);
/* Sets MORE and cont_ts (READ_RESULT only; call before finish). */
void sl_sess_result_more(struct sl_sess_writer *w, int64_t cont_ts);

/* Writes count, length and CRC; returns the message length. */
size_t sl_sess_finish(struct sl_sess_writer *w);

/* ---- node side: the session table ---------------------------------------------------- */

struct sl_sess_config {
	uint32_t capacity;	 /* sessions held (>= 1) */
	uint32_t window;	 /* seqs accepted ahead of next expected (>= 1), e.g. 1024 */
	int64_t idle_timeout_ns; /* sl_sess_expire evicts sessions idle this long */
	/* a full table evicts only sessions idle at least this (<= idle_timeout_ns): a client
	 * that retries within it keeps exactly-once */
	int64_t keep_min_ns;
	uint64_t incarnation; /* reported in OPEN_OK; new value at each node start */
	uint64_t hash_seed;   /* slot hashing, so chosen ids cannot force collisions */
	/* completions that can be held while an earlier seq of their session is not done:
	 * the caller's cookies (sl_sess_on_complete) are 0 .. hold_max - 1 */
	uint32_t hold_max;
};

/* What the node must do with a BATCH. */
enum sl_sess_verdict {
	SL_SESS_ACCEPT = 0,    /* seq is next: propose it (now in flight) */
	SL_SESS_DUPLICATE,     /* seq <= durable: reply the ack, do not apply */
	SL_SESS_IN_FLIGHT,     /* accepted, not durable yet: drop, its ack will come */
	SL_SESS_OUT_OF_ORDER,  /* seq ahead within the window: reply, client resends */
	SL_SESS_TOO_FAR_AHEAD, /* seq beyond the window: reply, client resends */
	SL_SESS_UNKNOWN,       /* no such session: reply, client must OPEN */
	SL_SESS_VERDICT_COUNT
};

struct sl_sess_decision {
	enum sl_sess_verdict verdict;
	bool reply;		/* send `ack` (never for ACCEPT or IN_FLIGHT) */
	struct sl_sess_ack ack; /* status, seq, expected_seq filled */
};

/* How a durable batch ended, for its ACK. */
struct sl_sess_outcome {
	uint32_t count_stored;
	uint8_t status;	       /* OK or REJECTED_POINTS */
	uint8_t level_req;     /* the BATCH's ack level */
	uint8_t level_reached; /* LOCAL (single node) or MAJORITY */
};

/* What to do with a batch whose points are all applied (sl_sess_on_complete), or with a
 * completion handed back later (sl_sess_next_done). */
enum sl_sess_done {
	SL_SESS_DONE_RECORD = 0, /* every earlier seq is recorded: log this one's record now */
	SL_SESS_DONE_HOLD,	 /* an earlier seq is not done yet: kept, handed back later */
	SL_SESS_DONE_DROP,	 /* recorded already, or un-accepted since (abort): no record */
	SL_SESS_DONE_NONE,	 /* sl_sess_next_done: nothing to hand back now */
};

struct sl_sess_table_stats {
	uint64_t verdicts[SL_SESS_VERDICT_COUNT];
	uint64_t opened;       /* new sessions */
	uint64_t resumed;      /* OPEN of a known session */
	uint64_t open_busy;    /* OPEN refused: table full of active sessions */
	uint64_t evicted_idle; /* by sl_sess_expire */
	uint64_t evicted_lru;  /* to make room */
	uint64_t closed;
	uint64_t recovered; /* sessions created by sl_sess_recover_durable/snapshot */
	uint64_t held;	    /* completions held for an earlier seq (out of order) */
	uint64_t dropped;   /* completions handed back as DROP */
};

struct sl_sess_entry; /* private, lives in the caller's memory */
struct sl_sess_hold;  /* private: one per cookie, in the caller's memory */

/* The table. Open addressing (linear probing, backward-shift deletion) over u32 slot
 * indices into a fixed entry pool, plus an LRU list through the entries. Fields private. */
struct sl_sess_table {
	struct sl_sess_entry *entries;
	struct sl_sess_hold *holds;
	uint32_t *slots;
	uint32_t slot_mask;
	uint32_t count;
	uint32_t free_head;
	uint32_t lru_head; /* most recently active */
	uint32_t lru_tail;
	struct sl_sess_config cfg;
	struct sl_sess_table_stats stats;
};

/* Bytes of caller memory (8-byte aligned) for a table of capacity sessions that can hold
 * hold_max completions (the config's hold_max). */
size_t sl_sess_table_mem_bytes(uint32_t capacity, uint32_t hold_max);
/* 0; -EINVAL for a bad config, misaligned or too small memory. */
int sl_sess_table_init(struct sl_sess_table *t, void *mem, size_t mem_bytes,
		       const struct sl_sess_config *cfg);

/* OPEN: a known session is RESUMED with the node's state (the client's next_seq is
 * ignored); an unknown one is created expecting next_seq (status OK), evicting the least
 * recently active session idle >= keep_min_ns when full (else status BUSY). */
void sl_sess_on_open(struct sl_sess_table *t, const struct sl_sess_open *o, int64_t now_ns,
		     struct sl_sess_open_ok *reply);

/* BATCH: the decision above. Level 0 batches accept seq ahead within the window (the gap
 * is abandoned) and get no reply except UNKNOWN_SESSION. */
void sl_sess_on_batch(struct sl_sess_table *t, uint64_t session_id, uint64_t seq, uint8_t level,
		      int64_t now_ns, struct sl_sess_decision *d);

/* Completion of an accepted batch: its points are all applied (durable where they were
 * sent). A batch's points may go to several cores, so seq can complete before an earlier
 * one. Its session record (which makes "seq done" durable and lets a retry be answered
 * DUPLICATE) may only be logged once every earlier seq has been logged, so:
 *   RECORD: seq is the oldest accepted seq not yet recorded: log its record now;
 *   HOLD:   an earlier seq is not done: cookie (< hold_max, not held already) is kept and
 *           comes back from sl_sess_next_done once the gap is filled (or as DROP);
 *   DROP:   seq was recorded already, or is no longer accepted (sl_sess_on_abort).
 * Level 0 (no acks, gaps abandoned) is RECORDed whenever it is above the recorded mark.
 * -ENOENT: unknown session; -ENOSPC: must be held but cookie >= hold_max (the caller
 * aborts seq); -EINVAL: id or seq 0, or cookie already held. */
int sl_sess_on_complete(struct sl_sess_table *t, uint64_t session_id, uint64_t seq, uint8_t level,
			uint32_t cookie);

/* After a RECORD (or an abort) of the session: the next held completion due, if any. RECORD
 * (log seq's record now), DROP (release cookie, no record), NONE, or -ENOENT. Call it until
 * it returns NONE: every held cookie comes back exactly once. */
int sl_sess_next_done(struct sl_sess_table *t, uint64_t session_id, uint64_t *seq,
		      uint32_t *cookie);

/* The session record of seq is durable (calls come in seq order per session: records are
 * logged in the order RECORD gave them). Every seq <= it is now durable: it becomes the
 * mark for DUPLICATE and the cumulative ACK. Returns 1 with *ack to send, 0 when none is
 * due (level 0), -ENOENT for an unknown session, -ERANGE when seq was not RECORDed or is
 * durable already. */
int sl_sess_on_durable(struct sl_sess_table *t, uint64_t session_id, uint64_t seq,
		       const struct sl_sess_outcome *o, struct sl_sess_ack *ack);

/* The accepted batch seq, and every batch accepted after it, will never become durable
 * (BUSY after accept, WAL failure): the session expects seq again; completions held for
 * seqs >= seq come back from sl_sess_next_done as DROP. 0, -ENOENT, -ERANGE. */
int sl_sess_on_abort(struct sl_sess_table *t, uint64_t session_id, uint64_t seq);

/* CLOSE: removes the session unless batches are in flight (BUSY). */
void sl_sess_on_close(struct sl_sess_table *t, const struct sl_sess_close *c,
		      struct sl_sess_close_ok *reply);

/* Recovery: a replayed WAL entry carried (session_id, seq). Creates the session if needed
 * (evicting the least recently active one when full) and marks seq durable (max). 0,
 * -EINVAL for id/seq 0, -ENOSPC when every session has batches in flight. */
int sl_sess_recover_durable(struct sl_sess_table *t, uint64_t session_id, uint64_t seq,
			    int64_t now_ns);

/* Evicts up to max sessions idle >= idle_timeout_ns with nothing in flight, oldest first.
 * Returns how many. Bounded work: call it from the slow path now and then. */
uint32_t sl_sess_expire(struct sl_sess_table *t, int64_t now_ns, uint32_t max);

struct sl_sess_info {
	uint64_t next_seq;
	uint64_t durable_seq;
	int64_t last_active_ns;
};
int sl_sess_lookup(const struct sl_sess_table *t, uint64_t session_id, struct sl_sess_info *out);
uint32_t sl_sess_count(const struct sl_sess_table *t);
void sl_sess_table_stats(const struct sl_sess_table *t, struct sl_sess_table_stats *out);

/* Snapshot image v1 (little-endian), written with the store's snapshot at applied_index:
 *   header: magic u32 "SLST" | version u16 | flags u16 (0) | count u32 | reserved u32 (0) |
 *           applied_index u64 | reserved u32 (0) | crc32c u32 of the 28 bytes before it
 *   count x record (oldest activity first): session_id u64 | durable_seq u64 |
 *           last_count u32 | last_status u8 | last_level u8 | reserved u16 (0)
 *   trailer: crc32c u32 of all records
 * Only durable state is saved (in-flight batches are re-proposed or replayed from the WAL). */
#define SL_SESS_SNAP_HDR_BYTES 32u
#define SL_SESS_SNAP_REC_BYTES 24u
size_t sl_sess_snapshot_bytes(const struct sl_sess_table *t);
/* Returns the image length, or -ENOSPC. */
int sl_sess_snapshot_write(const struct sl_sess_table *t, uint64_t applied_index, uint8_t *buf,
			   size_t cap);
/* Loads an image into an empty table (sessions active at now_ns). 0; -EBADMSG on any
 * corruption or truncation (table left empty); -EINVAL when not empty; -ENOSPC when the
 * image holds more sessions than the capacity (table left empty). */
int sl_sess_snapshot_read(struct sl_sess_table *t, const uint8_t *buf, size_t len, int64_t now_ns,
			  uint64_t *applied_index);
/* Adds another table's image to a table that may hold sessions (a worker count change:
 * every core takes every old core's sessions, node_recover.c): each session's durable
 * seq as sl_sess_recover_durable would. 0 and *merged; -EBADMSG on any corruption or
 * truncation (nothing added); -ENOSPC when a session found no room (the rest added). */
int sl_sess_snapshot_merge(struct sl_sess_table *t, const uint8_t *buf, size_t len,
			   int64_t now_ns, uint32_t *merged);

/* ---- client side ----------------------------------------------------------------------- */

struct sl_sess_client_config {
	uint32_t cluster_id;
	uint64_t session_id; /* != 0: random */
	uint64_t first_seq;  /* >= 1 */
	uint8_t level;	     /* ack level of every batch of this client */
	uint32_t window;     /* unacknowledged batches at most (>= 1) */
	size_t slot_bytes;   /* room per batch datagram (<= SL_SESS_MSG_MAX) */
	int64_t rto_ns;	     /* first retransmission timeout */
	int64_t rto_max_ns;  /* backoff cap (doubling) */
};

struct sl_sess_client_slot; /* private, in the caller's memory */

struct sl_sess_client_stats {
	uint64_t batches_sent;
	uint64_t retransmits;
	uint64_t batches_acked;
	uint64_t points_acked; /* points of acked batches as sent (stored: see events) */
	uint64_t opens_sent;
	uint64_t reopens; /* UNKNOWN_SESSION answers */
	uint64_t busy;	  /* BUSY / STORAGE_ERROR answers */
	uint64_t go_back; /* OUT_OF_ORDER / TOO_FAR_AHEAD answers acted upon */
};

/* Fields private. */
struct sl_sess_client {
	struct sl_sess_client_config cfg;
	struct sl_sess_client_slot *slots;
	uint8_t *bufs;
	bool open;
	uint64_t base_seq; /* oldest unacknowledged */
	uint64_t next_seq; /* next to assign */
	int64_t open_deadline_ns;
	int64_t open_rto_ns;
	uint64_t incarnation;
	uint64_t go_back_seq;
	int64_t go_back_ns;
	uint8_t open_buf[SL_SESS_HDR_BYTES + 16];
	struct sl_sess_client_stats stats;
};

/* What a reply meant to the client. */
struct sl_sess_client_event {
	bool opened;	   /* an OPEN_OK was taken */
	uint64_t acked_lo; /* batches acked_lo..acked_hi are done (0, 0: none) */
	uint64_t acked_hi;
	uint64_t points;       /* points of those batches, as sent */
	int64_t first_sent_ns; /* first transmission of acked_hi */
	uint32_t count_stored; /* of acked_hi, as the node said */
	uint8_t status;	       /* of the reply */
	uint8_t level;	       /* reached, for acked_hi */
};

size_t sl_sess_client_mem_bytes(uint32_t window, size_t slot_bytes);
/* 0 or -EINVAL (bad config, misaligned or small memory). Starts unopened. */
int sl_sess_client_init(struct sl_sess_client *c, void *mem, size_t mem_bytes,
			const struct sl_sess_client_config *cfg);

/* The next datagram due at now_ns: the OPEN while not open, else the oldest due
 * retransmission (its timeout doubled). 1 with *dgram and *len (valid until the next call
 * that changes the client), 0 when nothing is due. */
int sl_sess_client_poll(struct sl_sess_client *c, int64_t now_ns, const uint8_t **dgram,
			size_t *len);
/* Earliest now_ns at which poll has something to send (INT64_MAX: nothing pending). */
int64_t sl_sess_client_deadline(const struct sl_sess_client *c);

/* Starts the next batch in a free window slot. -EAGAIN when not open or the window is
 * full. Then sl_sess_batch_add() points and sl_sess_client_send(). */
int sl_sess_client_batch(struct sl_sess_client *c, struct sl_sess_writer *w);
/* Seals the batch begun above and returns its datagram (send it now); assigns its seq.
 * -EINVAL when w is not the batch sl_sess_client_batch began. */
int sl_sess_client_send(struct sl_sess_client *c, struct sl_sess_writer *w, int64_t now_ns,
			const uint8_t **dgram, size_t *len);

/* Feeds a decoded OPEN_OK, ACK or CLOSE_OK; other types and other sessions are ignored.
 * 0 with *ev filled; -EPROTO when the node contradicts what it acknowledged before
 * (expects a seq below one it acked, or above any sent). */
int sl_sess_client_on_msg(struct sl_sess_client *c, const struct sl_sess_msg *m, int64_t now_ns,
			  struct sl_sess_client_event *ev);

/* Batches sent and not yet acknowledged. */
uint32_t sl_sess_client_unacked(const struct sl_sess_client *c);

#endif

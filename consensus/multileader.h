/* multileader.h - multi-leader replication (IoTConsensus style) behind consensus.h
 * (sl_cons_multileader_ops): every replica takes writes into its own origin stream and
 * ships it to each peer in batches; its options, per-proposal session and ack level, CAD
 * and read-your-writes reads, the WAL safe-delete index, and its counters. Pure. */
#ifndef SL_MULTILEADER_H
#define SL_MULTILEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus.h"

/* Protocol options (sl_cons_config.proto_opts; NULL or 0 fields: defaults). Every buffer
 * is sized from these at create(); after that, only a replica receiving a snapshot
 * allocates (the image, growing with its chunks up to max_snapshot_bytes; freed once
 * merged), a rare path: the hot paths do not. */
struct sl_ml_opts {
	uint32_t ack_copies;	    /* default ack level k: 1 = local WAL durable (default 1) */
	uint32_t max_entry_bytes;   /* largest payload (4096) */
	uint32_t max_batch_entries; /* entries per batch message (64) */
	uint32_t max_batch_bytes;   /* payload bytes per batch message (32 KiB; at most
				     * max_msg_bytes - 52, at least max_entry_bytes) */
	uint64_t batch_delay_ns;    /* a partial batch leaves this long after its first entry (1 ms) */
	uint32_t window_batches;    /* batches in flight per peer (8) */
	uint32_t window_bytes;	    /* their bytes (256 KiB) */
	uint64_t rto_ns;	    /* first retransmission timeout (20 ms), doubled per retry */
	uint64_t rto_max_ns;	    /* cap of the backoff (1 s) */
	uint64_t heartbeat_ns;	    /* durable-vector exchange with every peer (50 ms) */
	uint32_t retention_entries; /* own entries kept for a lagging peer (65536) */
	uint32_t max_undurable;	    /* entries appended and not yet durable (8192) */
	uint32_t max_pending;	    /* proposals awaiting their ack (8192) */
	uint32_t max_apply_entries; /* committed entries per ready (1024) */
	uint32_t max_reads;	    /* reads waiting (64) */
	uint64_t read_timeout_ns;   /* a read not servable by then fails DROPPED (1 s) */
	/* One encoded message: a batch or a snapshot chunk (64 KiB, at least 256). create()
	 * refuses (-EINVAL) a max_entry_bytes over max_msg_bytes - 52 (one batch of one). */
	uint32_t max_msg_bytes;
	/* Largest snapshot image this replica accepts, assembled from chunks (1 GiB). */
	uint32_t max_snapshot_bytes;
};

/* What a proposal carries besides its payload (sl_ml_propose). */
struct sl_ml_prop {
	uint64_t session;     /* client session id (0: none) */
	uint64_t session_seq; /* its sequence number within the session */
	uint32_t ack_copies;  /* ack level for this write (0: the group's default) */
};

struct sl_ml_stats {
	uint64_t proposals, acks_sent;
	uint64_t batches_sent, entries_sent, retransmits, rewinds;
	uint64_t batches_received, entries_applied_remote;
	uint64_t stale_batches; /* every entry already here (duplicate or late): re-acked */
	uint64_t stale_entries; /* entries of a partly known batch skipped */
	uint64_t gap_batches;	/* not starting at next_expected: not applied, nacked */
	uint64_t nacks_sent, nacks_received;
	uint64_t stale_answers; /* read-round answers for a round this life never asked */
	uint64_t msgs_bad;	    /* undecodable, bad checksum, unknown sender or origin */
	uint64_t msgs_too_big;	    /* over max_msg_bytes */
	uint64_t busy_dropped;	    /* entries of a batch dropped: bounds, or a snapshot pending */
	uint64_t busy_refused;	    /* proposals refused (-EBUSY) while a snapshot is pending */
	uint64_t outbox_dropped;    /* messages not produced: outbox full (peers retry) */
	uint64_t over_retention;    /* peers marked 'needs snapshot' */
	uint64_t snapshots_sent; /* images started to a peer (each in chunks) */
	uint64_t snapshots_installed;	/* images merged here */
	uint64_t snapshots_unavailable; /* caller's snapshot too old or missing: asked again */
	uint64_t snapshots_refused;	/* over max_snapshot_bytes, or no memory for it */
	uint64_t snapshot_chunks_sent, snapshot_chunks_received;
	/* chunks not taken: a gap, another image, or busy (a whole image waits for its
	 * merge, another sender's is being received): the sender goes back or retries */
	uint64_t snapshot_chunks_refused;
	uint64_t snapshot_gobacks;    /* a peer's ack sent this replica back to its offset */
	uint64_t snapshot_resends;    /* unanswered chunks sent again after the timeout */
	uint64_t snapshot_acks_stale; /* acks of an image no longer being sent */
	uint64_t snapshot_catchups;	/* a 'needs snapshot' peer back on the stream */
	uint64_t reads_cad, reads_ryw, reads_sync, reads_served, reads_timed_out;
	/* rejoin (sl_cons_config.rejoin, a wiped disk): proposals refused (-EBUSY) until this
	 * replica knows its next origin index; batches of a rejoining peer's lost life
	 * dropped; rejoining peers put on snapshot catch-up to get their own stream back */
	uint64_t rejoin_refused, rejoin_batches_dropped, rejoin_snapshots;
	/* rejoining peers that hold no image yet (a joiner of a segment, a wiped disk: flag
	 * 'wants image') put on snapshot catch-up to get one (the segment's base image and
	 * what followed); answers 'no image needed' (this replica's state is all in its log:
	 * no snapshot, nothing compacted) */
	uint64_t rejoin_images, rejoin_noimage;
	/* seal: own stream sealed (a SEAL appended), proposals refused (-EROFS) after it,
	 * peers' entries past their origin's end dropped, and committed writes past an
	 * origin's end found at apply (handed out as no-ops; by the rule: never) */
	uint64_t seals, seal_refused, past_end_dropped, past_seal;
	bool retention_alarm; /* some peer is in 'needs snapshot' now */
};

struct sl_ml_peer {
	uint32_t node;
	uint64_t acked;	 /* own origin index durable on it (cumulative) */
	uint64_t cursor; /* next own origin index to ship to it */
	uint64_t lag;	 /* own entries it does not hold durably */
	bool needs_snapshot;
	bool probing; /* its position is not known yet (after a restart) */
};

struct sl_ml_origin {
	uint32_t node;
	uint64_t received; /* contiguous prefix of its stream in the local log */
	uint64_t durable;  /* ... durable here */
	uint64_t applied;  /* ... applied here */
	uint64_t end;	   /* its SEAL's index in its stream (0: not known sealed) */
};

/* Propose with a session and an ack level. Errors: -EINVAL (ack level above the group's
 * size), -EMSGSIZE, -ENOBUFS (a bound reached), -EIO (storage failed), -EBUSY
 * (briefly: a snapshot from a peer waits for what is in flight here to settle; or, created
 * with sl_cons_config.rejoin, until it caught up (status.rejoining); retry).
 * The generic propose() is this with session 0 and the default level. The payload is copied. */
int sl_ml_propose(void *state, uint64_t proposal_id, const uint8_t *data, uint32_t len,
		  const struct sl_ml_prop *prop);

/* Read-your-writes: answered (ready.reads) once this replica applied `origin`'s stream up
 * to `origin_index` (the write's position, from its entry or sl_ml_last_own()). */
int sl_ml_read_after(void *state, uint64_t read_id, uint32_t origin, uint64_t origin_index);

/* Sync read (read-your-writes for any session, on any replica): asks every peer how far
 * its own stream is durable, and is answered (ready.reads) once this replica applied that
 * much of every origin's stream. It shows every write acknowledged (at any ack level)
 * before it was asked, wherever it was taken. It needs an answer from every replica: with
 * one unreachable it fails DROPPED after read_timeout_ns. Not monotonic across clients
 * beyond that (a later sync read may miss a write an earlier one saw that was never
 * acknowledged and was lost with its origin's disk). */
int sl_ml_read_sync(void *state, uint64_t read_id);

/* The host's wall clock (ns since 1970), for the hybrid logical clock's physical part:
 * concurrent writes at two replicas are then ordered by real time, within the clocks'
 * skew, and a write made after its replica saw another still wins over it whatever the
 * clocks say. Without it (the simulator) the tick's time is used. Call before each tick. */
void sl_ml_wall(void *state, uint64_t wall_ns);

/* The origin index the last proposal accepted here got (a session's last write). */
uint64_t sl_ml_last_own(void *state);

/* Highest local log index the caller may compact up to (snapshot first): no peer still
 * being shipped to needs an entry at or below it, and it is applied. A peer in 'needs
 * snapshot' does not hold it back. */
uint64_t sl_ml_safe_delete(void *state);

void sl_ml_stats(void *state, struct sl_ml_stats *out);
/* Per peer / per origin views; return how many were written (at most cap). */
uint32_t sl_ml_peers(void *state, struct sl_ml_peer *out, uint32_t cap);
uint32_t sl_ml_origins(void *state, struct sl_ml_origin *out, uint32_t cap);

/* Snapshots MERGE (unlike consensus.h's replace-and-drop-the-log): ready.has_snapshot
 * from this protocol comes alone in its ready with snapshot.index = the log's last index
 * (all of it applied), and asks the caller to join the snapshot's state into its own (per
 * key the LWW winner of both, sl_lww_wins; per origin and per session the higher
 * position), to make the merged state durable as its snapshot at that index (what
 * sl_cons_log.snapshot returns next) and to KEEP the log: its own entries still go to
 * peers that lack them. Nothing this replica held is lost, so two replicas past each
 * other's retention both catch up, and one merge does not push others past retention.
 * An image travels in chunks of at most max_msg_bytes, acknowledged cumulatively, and is
 * handed out only once all of it arrived (docs/multileader.md, chunked transfer); the
 * caller's snapshot() must not change bytes under the same index and length.
 *
 * Snapshot data of this protocol starts with the per-origin applied vector the caller's
 * state reflects: u8 n, then n x (node u32, origin index u64); the caller's own state
 * follows. put returns the bytes written (0: cap too small); get returns the header's
 * length or -EBADMSG. */
#define SL_ML_SNAP_VEC_BYTES(n) (1u + 12u * (n))
uint32_t sl_ml_snap_vec_put(uint8_t *buf, uint32_t cap, const uint32_t *nodes,
			    const uint64_t *idx, uint32_t n);
int sl_ml_snap_vec_get(const uint8_t *buf, uint32_t len, uint32_t *nodes, uint64_t *idx,
		       uint32_t cap, uint32_t *n);

/* Joining (sl_cons_config.rejoin with no snapshot at create(): a replica move's joiner
 * opened empty, or a wiped disk): besides rejoin's rules (docs/multileader.md, "Rejoin
 * after a lost disk") the replica asks its peers for an image (STATE flag 'wants image')
 * and stays rejoining (no write, status.rejoining) until it merged one: a peer sends its
 * caller's latest snapshot (the segment's base image, merged images, their vector) through
 * the snapshot path, even one whose vector shows nothing the joiner lacks. A peer whose
 * caller has no snapshot and whose log starts at index 1 answers 'no image needed' (its
 * state is all in its log, which the streams bring), which ends the wait too. So a
 * caller whose state holds anything not in its log (a base image) must return it from
 * snapshot(). docs/multileader.md, "Joining a segment". */

/* Seal (sl_cons_ops.seal, any replica): this replica appends a SEAL entry to its own
 * stream (acked once durable on a majority) and takes no write after it (-EROFS); its stream ends
 * there. Every replica that learns of a sealed stream (the SEAL entry in a batch, or a
 * peer's STATE listing the ends it knows) seals its own stream too (an empty SEAL, no
 * ack): writes it took before that are in the segment, later ones are refused. An end is
 * told to peers only once safe from one lost disk, and the log is never compacted past
 * a SEAL entry (sl_ml_safe_delete), so a restart keeps the rule; a
 * replica that lost its disk learns its end back from its peers. status.sealed_index is
 * the local index by which this replica applied every stream up to its end: from then on
 * it holds the whole segment. -EALREADY: sealed already; -EBUSY: rejoining or a snapshot
 * pending (retry). docs/multileader.md, "Seal". */

/* Bytes the protocol adds to each payload in the log (the origin header). */
#define SL_ML_ENTRY_HDR 37u
uint32_t sl_ml_max_entry_bytes(const struct sl_ml_opts *opts);

#endif

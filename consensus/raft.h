/* raft.h - Raft behind the generic consensus interface (sl_cons_raft_ops), plus the
 * operations the generic vtable has no slot for: linearizable reads (ReadIndex and
 * lease), leader transfer, one-server-at-a-time membership change with learners, and the
 * metadata a caller needs to cut a snapshot. Snapshots travel in chunks of one message
 * each, acknowledged by the follower, in a window. Pure: no I/O, no clock, no globals. */
#ifndef SL_RAFT_H
#define SL_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consensus.h"

/* Protocol options, passed as sl_cons_config.proto_opts (NULL or 0 fields: defaults).
 * All buffers are sized from these at create(); after that, only a follower receiving a
 * snapshot allocates (the image, up to max_snapshot_bytes). */
struct sl_raft_opts {
	bool lease_reads; /* allow sl_raft_read_index(.., lease=true) to skip the quorum round */
	/* Bound on the rate difference between any two replicas' clocks, in parts per
	 * million. Lease reads are safe only if it holds and no clock jumps forward; the lease
	 * is election_timeout * (1 - 2 * drift) from the send time of a quorum-acked
	 * heartbeat. Default 1000 ppm. */
	uint32_t clock_drift_ppm_max;
	uint32_t max_msg_bytes;	       /* one encoded message (a snapshot chunk): 64 KiB, min 256 */
	uint32_t max_unstable_entries; /* entries appended but not yet handed to persist */
	uint32_t max_unstable_bytes;
	uint32_t max_outbox_msgs; /* messages produced between two advance() */
	uint32_t max_outbox_bytes;
	uint32_t max_apply_entries; /* committed entries handed out per ready */
	uint32_t max_apply_bytes;
	uint32_t max_pending_proposals; /* proposals awaiting an ack */
	uint32_t max_pending_reads;
	/* Largest snapshot image a follower accepts. Images travel in chunks of at most
	 * max_msg_bytes; the receiver assembles one in a buffer that grows to its size (the
	 * one allocation after create()). Default 1 GiB. */
	uint32_t max_snapshot_bytes;
};

/* Membership change operations (one server at a time; see sl_raft_change). */
enum sl_raft_change_op {
	SL_RAFT_ADD_LEARNER = 1, /* a new node receives the log but does not vote */
	SL_RAFT_PROMOTE = 2,	 /* a caught-up learner becomes a voter */
	SL_RAFT_REMOVE = 3,	 /* a voter or learner leaves (never the leader itself) */
};

/* Counters for reports and tests; monotonic over the life of one instance. */
struct sl_raft_stats {
	uint64_t pre_votes;    /* pre-vote rounds started */
	uint64_t elections;    /* real elections started */
	uint64_t leader_terms; /* times this replica became leader */
	uint64_t check_quorum_stepdowns;
	uint64_t msgs_sent, msgs_dropped_outbox, msgs_bad;
	uint64_t msgs_too_big;	   /* received messages over max_msg_bytes (refused) */
	uint64_t apply_too_big;	   /* readies stopped at a committed entry over max_apply_bytes */
	uint64_t appends_rejected; /* append requests this replica rejected */
	uint64_t truncations;	   /* conflicting suffixes cut */
	uint64_t snapshots_sent, snapshots_installed;
	uint64_t snapshot_chunks_sent, snapshot_chunks_received;
	uint64_t snapshot_bytes_sent;	  /* image bytes in chunks sent, resent ones included */
	uint64_t snapshot_bytes_received; /* image bytes of chunks taken in order */
	uint64_t snapshot_chunks_refused; /* out of order or of another image: leader goes back */
	uint64_t snapshots_refused;	  /* larger than max_snapshot_bytes, or no memory */
	uint64_t transfers; /* TimeoutNow sent */
	uint64_t reads_index, reads_lease;
	uint64_t conf_changes; /* configuration entries appended */
	/* committed NORMAL entries found past a SEAL, handed out as no-ops and acked SEALED:
	 * the seal rule makes them impossible, so anything but 0 is a bug */
	uint64_t past_seal;
	/* a learner's match gone back: it answered holding less (its copy was dropped) */
	uint64_t learner_resets;
};

/* Semantics on top of consensus.h, for this protocol:
 * - propose() returns -EPERM on a non-leader, -EBUSY during a leader transfer, -ENOBUFS
 *   when a bound is reached, -EIO after storage_failed(), -EMSGSIZE for a payload that
 *   one append message (max_msg_bytes) cannot carry. The payload is copied.
 * - step() refuses a message longer than max_msg_bytes with -EMSGSIZE (msgs_too_big) and
 *   an undecodable one with -EBADMSG (msgs_bad): peers' entries obey the proposal limit.
 * - create() returns -EMSGSIZE when the recovered log holds an entry over that limit.
 * - Between ready() and advance() the caller makes no other call on the instance.
 * - After advance(), the log read side (sl_cons_log) returns every entry handed out in
 *   `persist`, durable or not; persisted(term, index) reports durability.
 * - Messages flagged msgs_after_persist go out only once every write the caller has
 *   issued so far is durable (a barrier; free when nothing is pending).
 * - SL_CONS_ACK_DROPPED means the outcome is unknown (the entry may still commit through
 *   another leader); SL_CONS_ACK_OK is definitive.
 * - Seal (sl_cons_ops.seal, leader only, -EPERM elsewhere): appends a SEAL entry. A
 *   replica whose log holds a SEAL takes no proposal and no membership change (-EROFS;
 *   a follower says so only once the SEAL is committed, before that -EPERM), whether it
 *   appended the SEAL or got it as a follower and was elected since (its no-op commits
 *   it). A SEAL truncated before it commits reopens the log, and its proposal is acked
 *   DROPPED: seal again. status.sealed_index is the SEAL's index once applied. The SEAL
 *   survives restarts (create() finds it in the recovered log) because the log is never
 *   compacted past it: sl_raft_snapshot_meta refuses (-EROFS) an index at or past it.
 * - CONF entries carry the full new membership (decode with sl_raft_conf_decode); a
 *   membership takes effect as soon as its entry is in the log (Raft dissertation 4.1).
 * - Snapshots: the leader reads the latest one through sl_cons_log.snapshot (which may
 *   answer -EAGAIN while the caller prepares it: asked again next round) and sends it in
 *   chunks of one message each, SNAP_WINDOW chunks ahead of the follower's cumulative
 *   acknowledgement; lost chunks are sent again from what was acknowledged. The follower
 *   hands the whole image out in ready().has_snapshot once every chunk is in.
 * - Rejoin (sl_cons_config.rejoin: the replica lost its durable state and restarts under
 *   its old id): it never campaigns and grants no vote, its responses carry F_REJOIN so
 *   leaders count its match as 0, and the leader appends a no-op when it learns of it.
 *   Once a leader tells it (F_REJOIN on an append or heartbeat) that a commit index was
 *   reached without it, and it holds that log durably, it is an ordinary voter again
 *   (status.rejoining false). A group that loses a majority besides a rejoining replica
 *   stops committing rather than lose what only the lost state had acknowledged. */

/* Request a linearizable read: the answer arrives in a later ready's `reads`. With
 * `lease` and opts.lease_reads, a valid leader lease answers at once; otherwise a
 * heartbeat round confirms leadership (ReadIndex). -EPERM: not leader; -ENOBUFS. */
int sl_raft_read_index(void *state, uint64_t read_id, bool lease);

/* Hand leadership to voter `target`: proposals are refused (-EBUSY) until it completes
 * or an election timeout passes. -EPERM: not leader; -EINVAL: not a voter. */
int sl_raft_transfer_leader(void *state, uint32_t target);

/* Propose a membership change (acked like a proposal through `proposal_id`). Refused
 * with -EAGAIN while an earlier change is uncommitted, before this leader committed an
 * entry of its own term (the fix for the single-server change bug), or (PROMOTE) while
 * the learner lags the leader's commit index. -EINVAL: invalid for the membership. */
int sl_raft_change(void *state, uint64_t proposal_id, enum sl_raft_change_op op, uint32_t node);

/* Term and membership at `index`, which must be the applied index (what the caller's
 * state machine reflects after the last advance()): what a snapshot taken now records.
 * The caller then stores the snapshot and may compact its log up to `index`. */
int sl_raft_snapshot_meta(void *state, uint64_t index, struct sl_cons_snapshot *meta);

/* The membership currently in effect (the latest one in the log). */
void sl_raft_conf(void *state, struct sl_cons_conf *out);

/* Decode a SL_CONS_ENTRY_CONF payload. 0 or -EBADMSG. */
int sl_raft_conf_decode(const uint8_t *data, uint32_t len, struct sl_cons_conf *out);

void sl_raft_stats(void *state, struct sl_raft_stats *out);

/* A leader's view of one follower (what an operator reads when a replica lags). */
struct sl_raft_peer {
	uint32_t id;
	uint8_t state;	 /* 0 probe, 1 replicate, 2 snapshot */
	bool rejoining;	 /* it said it lost its state (F_REJOIN) */
	uint64_t match, next;
	uint64_t pending_snapshot; /* snapshot state: the image's index */
	uint32_t snap_acked, snap_sent, snap_total; /* bytes of that image */
};
/* The leader's followers (0 when not leading); at most cap written. */
uint32_t sl_raft_peers(void *state, struct sl_raft_peer *out, uint32_t cap);

/* The largest entry payload (proposal, peer's entry, recovered entry) accepted under
 * these options (NULL: defaults): one entry alone in a message of max_msg_bytes. */
uint32_t sl_raft_max_entry_bytes(const struct sl_raft_opts *opts);

/* Lease status for reports and tests: true while a lease read would be answered locally. */
bool sl_raft_lease_valid(void *state);

/* Debug description of an encoded message, etcd-raft style ("MsgApp Term:2 Log:1/3
 * Commit:3 Entries:[2/4 EntryNormal \"x\"]"; Log is term/index), for tests and traces.
 * Pure; always NUL-terminates `out` (cap > 0), truncating. 0, or -EBADMSG (undecodable:
 * what could be read is described). */
int sl_raft_msg_describe(const uint8_t *buf, uint32_t len, char *out, size_t cap);
/* The same for one entry: "EntryNoop", "EntryConf Voters:(1,2) Learners:(3)",
 * "EntryNormal \"text\"" (payloads that are not short printable text: "<N bytes>"). */
void sl_raft_entry_describe(uint32_t type, const uint8_t *data, uint32_t len, char *out,
			    size_t cap);

#endif

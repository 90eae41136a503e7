/* consensus.h - the one interface every replication protocol of sluice implements.
 * A protocol is a pure state machine (etcd-raft shape): proposals, received messages,
 * ticks carrying an explicit time and storage completions go in; a "ready" batch of
 * (state to persist, entries to persist, messages to send, entries committed for apply,
 * acknowledgements) comes out. No I/O, no clocks, no threads, no globals: the node binds
 * the outputs to io_uring and the fabric, the simulator to a fake disk and network. */
#ifndef SL_CONSENSUS_H
#define SL_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_CONS_NODE_NONE 0u    /* node ids start at 1 */
#define SL_CONS_MAX_PEERS 9u    /* voters + learners in one group */

enum sl_cons_entry_type {
	SL_CONS_ENTRY_NORMAL = 0, /* application payload (a batch of points) */
	SL_CONS_ENTRY_NOOP = 1,   /* leader's first entry of a term */
	SL_CONS_ENTRY_CONF = 2,   /* membership change, protocol-encoded */
	/* The end of this log (one segment of a region's virtual log): the caller's opaque
	 * payload (e.g. the next segment's epoch). Once it is in a replica's log, that replica
	 * takes no new proposal (-EROFS, SL_CONS_ACK_SEALED): writes go to the next segment. */
	SL_CONS_ENTRY_SEAL = 3,
};

/* A log entry. `data` is borrowed: valid until the advance() that follows the ready()
 * which reported it; the caller copies what it persists. */
struct sl_cons_entry {
	uint64_t term;
	uint64_t index;
	uint64_t proposal_id; /* caller's id for acks; 0 for entries not proposed here */
	uint32_t type;        /* enum sl_cons_entry_type */
	uint32_t len;
	const uint8_t *data;
	/* multileader (multileader.h): the replica that took the write, its index in that
	 * replica's own stream, its hybrid logical clock value and the client session it came
	 * in on (id, sequence number). Zero for every other protocol. */
	uint32_t origin;
	uint64_t origin_index;
	uint64_t hlc;
	uint64_t session;
	uint64_t session_seq;
};

/* A protocol message, already encoded by the protocol (explicit little-endian format,
 * versioned). The transport ships the bytes; it never looks inside. */
struct sl_cons_msg {
	uint64_t group_id;
	uint32_t from;
	uint32_t to;
	uint32_t len;
	const uint8_t *buf;
};

/* Durable per-group state, persisted before any message of the same ready is sent. */
struct sl_cons_hard_state {
	uint64_t term;
	uint32_t vote;
	uint64_t commit;
};

enum sl_cons_ack_status {
	SL_CONS_ACK_OK = 0,         /* committed (and durable as the protocol promises) */
	SL_CONS_ACK_NOT_LEADER = 1, /* rejected: this replica cannot take proposals */
	SL_CONS_ACK_DROPPED = 2,    /* lost leadership / truncated before commit */
	SL_CONS_ACK_STORAGE = 3,    /* storage failed; never durable */
	SL_CONS_ACK_SEALED = 4,     /* refused, never applied: the log is sealed (a SEAL entry
				     * precedes it); propose it to the next segment */
};

struct sl_cons_ack {
	uint64_t proposal_id;
	uint64_t index; /* log index it was committed at (0 when not committed) */
	uint32_t status; /* enum sl_cons_ack_status */
};

/* A membership: voters count for quorums, learners only receive the log. */
struct sl_cons_conf {
	uint32_t n_voters;
	uint32_t voters[SL_CONS_MAX_PEERS];
	uint32_t n_learners;
	uint32_t learners[SL_CONS_MAX_PEERS];
};

/* A state-machine snapshot covering the log up to (index, term), with the membership in
 * effect at that index. `data` is the caller's serialized state machine (opaque). */
struct sl_cons_snapshot {
	uint64_t index;
	uint64_t term;
	struct sl_cons_conf conf;
	uint32_t len;
	const uint8_t *data;
};

/* Outcome of a linearizable read request: once the local state machine has applied
 * `index`, reading it is linearizable (status SL_CONS_ACK_OK), else the read failed. */
struct sl_cons_read {
	uint64_t read_id;
	uint64_t index;
	uint32_t status; /* enum sl_cons_ack_status */
};

/* Everything a protocol asks its caller to do, in this order:
 * 0. if `has_snapshot`: install it (replace the state machine with its data, make it
 *    durable, drop every log entry: the log now starts after snapshot.index);
 * 1. persist hard state and `persist` entries (entries with index >= persist[0].index
 *    already in the log are replaced: truncate from there first);
 * 2. send `msgs` (only after 1 is durable if `msgs_after_persist`);
 * 3. apply `committed` in order to the state machine;
 * 4. deliver `acks`;
 * then call advance(). Arrays stay valid until advance(). */
struct sl_cons_ready {
	bool has_hard_state;
	struct sl_cons_hard_state hard_state;
	const struct sl_cons_entry *persist;
	uint32_t n_persist;
	const struct sl_cons_msg *msgs;
	uint32_t n_msgs;
	bool msgs_after_persist;
	const struct sl_cons_entry *committed;
	uint32_t n_committed;
	const struct sl_cons_ack *acks;
	uint32_t n_acks;
	/* extensions (protocols that do not use them leave them zeroed) */
	bool has_snapshot;
	struct sl_cons_snapshot snapshot;
	const struct sl_cons_read *reads;
	uint32_t n_reads;
};

/* Read side of the log the caller keeps durable. A protocol may read through it (a
 * leader sending old entries) but never writes: writes go out through ready().
 * Functions return 0 or a negative errno (-ENOENT: compacted or beyond the end). */
struct sl_cons_log {
	void *ctx;
	uint64_t (*first_index)(void *ctx);
	uint64_t (*last_index)(void *ctx);
	int (*term)(void *ctx, uint64_t index, uint64_t *term);
	int (*entry)(void *ctx, uint64_t index, struct sl_cons_entry *out);
	/* Optional (NULL: the caller never compacts). A snapshot the log continues from: its
	 * index at least first_index() - 1 (the latest, or an older one while the entries
	 * after it are still in the log) and at most the applied index, with its term and
	 * membership. -EAGAIN (or another error) when none can be given now: asked again. */
	int (*snapshot)(void *ctx, struct sl_cons_snapshot *out);
};

struct sl_cons_config {
	uint64_t group_id;
	uint32_t self;              /* this replica's node id */
	uint32_t n_voters;
	uint32_t voters[SL_CONS_MAX_PEERS];
	uint32_t n_learners;
	uint32_t learners[SL_CONS_MAX_PEERS];
	uint64_t seed;              /* all randomness of the protocol comes from here */
	uint64_t election_timeout_ns;
	uint64_t heartbeat_interval_ns;
	uint32_t max_batch_entries; /* entries per append message */
	uint32_t max_inflight_bytes; /* per follower flow-control window */
	struct sl_cons_hard_state initial; /* recovered durable state */
	const struct sl_cons_log *log;     /* recovered log; may be NULL for a fresh group */
	const void *proto_opts; /* protocol-specific options, NULL for defaults (raft.h) */
	/* This replica lost its durable state (a wiped disk) and comes back under its old id:
	 * it must not vote, campaign or count toward a commit until it holds the group's
	 * committed state again (protocols without votes ignore it; raft.h says when). */
	bool rejoin;
};

enum sl_cons_role {
	SL_CONS_ROLE_FOLLOWER = 0,
	SL_CONS_ROLE_CANDIDATE = 1,
	SL_CONS_ROLE_LEADER = 2,
	SL_CONS_ROLE_LEARNER = 3,
	SL_CONS_ROLE_REPLICA = 4, /* leaderless protocols: every replica takes writes */
};

struct sl_cons_status {
	uint32_t role;
	uint32_t leader; /* SL_CONS_NODE_NONE if unknown */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t last_index;
	uint64_t durable_index;
	bool rejoining; /* created with `rejoin` and not caught up yet */
	/* index of the SEAL entry once this replica applied it (0: not sealed here yet):
	 * the known end of this log; nothing after it is ever applied */
	uint64_t sealed_index;
};

/* The vtable. Every function is pure with respect to the outside world. */
struct sl_cons_ops {
	const char *name;
	int (*create)(const struct sl_cons_config *cfg, void **state);
	void (*destroy)(void *state);
	/* Propose a payload; the protocol keeps `data` by reference until the next advance(). */
	int (*propose)(void *state, uint64_t proposal_id, const uint8_t *data, uint32_t len);
	/* A message received from a peer (bytes as produced by the sender's ready()). */
	int (*step)(void *state, const struct sl_cons_msg *msg);
	/* Time passes: `now_ns` is monotonic as seen by this replica. */
	void (*tick)(void *state, uint64_t now_ns);
	/* Storage completion: the log is durable up to (term, index). */
	void (*persisted)(void *state, uint64_t term, uint64_t index);
	/* Storage failure: nothing at or after `index` is durable; the protocol fails the
	 * affected proposals and stops acknowledging until restarted. */
	void (*storage_failed)(void *state, uint64_t index, int err);
	bool (*has_ready)(void *state);
	void (*ready)(void *state, struct sl_cons_ready *out);
	void (*advance)(void *state, const struct sl_cons_ready *rd);
	void (*status)(void *state, struct sl_cons_status *out);
	/* Optional (NULL: the protocol offers no linearizable read). Ask for one: its outcome
	 * comes in a later ready's `reads` (the index to apply before reading). */
	int (*read)(void *state, uint64_t read_id);
	/* Optional (NULL: leadership does not move). Hand leadership to replica `target`. */
	int (*transfer)(void *state, uint32_t target);
	/* Optional (NULL: the protocol cannot seal; the driver says -ENOTSUP). Append a SEAL
	 * entry carrying `data` (copied or kept like a proposal's), acked like a proposal.
	 * From then on propose() returns -EROFS, and a proposal found after a SEAL is
	 * acked SL_CONS_ACK_SEALED. -EALREADY: the log holds a SEAL already (wait for
	 * status.sealed_index); other errors as propose(). */
	int (*seal)(void *state, uint64_t proposal_id, const uint8_t *data, uint32_t len);
	/* Optional (NULL: no learners; the driver says -ENOTSUP). The replicas that receive
	 * the log without voting or counting toward a commit, replacing the ones before
	 * (n 0: none). Every replica of the group may be told apart, since learners change
	 * no quorum. -EINVAL: a voter or too many; -EBUSY: the log's own membership rules. */
	int (*set_learners)(void *state, const uint32_t *ids, uint32_t n);
};

/* Registry: protocols are looked up by name ("standalone", "raft", ...). Adding a
 * protocol means adding one ops struct and one line in consensus.c. */
const struct sl_cons_ops *sl_cons_find(const char *name);
/* What a host does differently per protocol, by capability rather than by name: */
#define SL_CONS_CAP_LEADER 1u /* one leader takes the writes; reads linearize at it */
#define SL_CONS_CAP_MERGE 2u  /* every replica takes writes: state versioned per write
			       * (last writer wins), snapshots merge (multileader.h) */
uint32_t sl_cons_caps(const struct sl_cons_ops *ops);
/* The protocol a node runs when its config names none (the first registered). */
const char *sl_cons_default_name(void);
/* How many replicas one group of this protocol may have (1: a single copy). */
uint32_t sl_cons_max_copies(const struct sl_cons_ops *ops);
/* "follower", "candidate", "leader", "learner", "replica" (status and ctl output). */
const char *sl_cons_role_name(uint32_t role);
/* The registered names, comma separated, for error messages. */
void sl_cons_names(char *buf, size_t len);

/* What a host needs of a protocol, in protocol-neutral terms: the largest payload it
 * proposes and how many proposals it keeps in flight. */
struct sl_cons_limits {
	uint32_t max_entry_bytes;
	uint32_t max_inflight;
};
#define SL_CONS_OPTS_BYTES 256u /* room for any protocol's options */
/* The options of `ops` sized for `lim`, written into buf (SL_CONS_OPTS_BYTES, 8-aligned):
 * the value for sl_cons_config.proto_opts (NULL: the protocol's defaults). */
const void *sl_cons_opts(const struct sl_cons_ops *ops, const struct sl_cons_limits *lim,
			 void *buf);
/* The largest entry payload `ops` accepts under `opts` (from sl_cons_opts). */
uint32_t sl_cons_entry_limit(const struct sl_cons_ops *ops, const void *opts);
extern const struct sl_cons_ops sl_cons_standalone_ops;
extern const struct sl_cons_ops sl_cons_raft_ops;
extern const struct sl_cons_ops sl_cons_multileader_ops;

#endif

/* ctld.h - sluice-ctld, the replicated control plane: its config, the metadata state
 * machine (region map and data nodes, applied from a raft log), and the durable log file
 * that raft log lives in. The daemon itself (ctld.c) binds these to sockets and a clock. */
#ifndef SL_CTLD_H
#define SL_CTLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "consensus.h"
#include "rlog.h"

#define SL_CTLD_MAX_REPLICAS 3   /* ctld runs as 1 or 3 replicas */
#define SL_CTLD_MAX_NODES 64     /* data nodes, ids 1..nodes */
#define SL_CTLD_MAX_REGIONS 256
#define SL_CTLD_MAX_RF 3
#define SL_CTLD_ADDR_MAX 128     /* a data node's address string */
#define SL_CTLD_PROTO_MAX 16
#define SL_CTLD_PATH_MAX 256
#define SL_CTLD_MAX_CORES 1024

/* ---------------------------------------------------------------- config (ctld_conf.c) */

struct sl_ctld_peer {
	uint32_t id;
	char host[64]; /* IPv4 literal */
	uint16_t port;
};

/* What [cluster] asks the first leader to bootstrap. */
struct sl_ctld_cluster {
	uint32_t cluster_id;
	uint32_t nodes;       /* expected data nodes, ids 1..nodes */
	uint32_t regions;
	uint32_t replication; /* 1 or 3 */
	/* the bootstrap places replicas on nodes 1..initial_nodes only (0: all nodes); the
	 * others are expected members holding nothing until moves give them replicas */
	uint32_t initial_nodes;
	uint32_t cores;       /* worker cores per data node; 0: leaders spread over nodes only */
	char protocol[SL_CTLD_PROTO_MAX];
	/* per-region overrides (empty string: the default protocol) */
	char region_protocol[SL_CTLD_MAX_REGIONS][SL_CTLD_PROTO_MAX];
};

/* Automatic splits ([cluster] split_*, docs/cluster.md "Automatic splits"): a region whose
 * size (the largest a live replica reports) stays above bytes, or whose write rate stays
 * above points_per_s, for sustain_ms is split at its middle (0 turns a rule off).
 * Automatic merges ([cluster] merge_*, "Automatic merges"): a region and its right
 * neighbour whose sizes add up to less than merge_bytes (0: off), and whose write rates
 * add up to less than merge_points_per_s (0: rates not looked at), for sustain_ms merge. */
struct sl_ctld_split_conf {
	uint64_t bytes;
	uint64_t points_per_s;
	uint32_t sustain_ms;
	uint64_t merge_bytes;
	uint64_t merge_points_per_s;
	/* [cluster] regions_target ("Changing the number of regions"): the number of live
	 * regions ctld splits or merges toward (0: off) */
	uint32_t regions_target;
};

/* Leader balance ([cluster] balance_by, docs/cluster.md "Leader moves and balance"): by
 * the number of regions each node (and core) is the preferred leader of (count, the
 * default), or by the write rate those regions take (rate): a move when the busiest node's
 * load is more than rate_slack_pct percent of it above the least busy node's. */
enum sl_ctld_balance_by { SL_CTLD_BALANCE_COUNT = 0, SL_CTLD_BALANCE_RATE = 1 };
struct sl_ctld_balance_conf {
	uint32_t by;             /* enum sl_ctld_balance_by */
	uint32_t rate_slack_pct; /* 1..100 */
};

struct sl_ctld_conf {
	uint32_t id;
	uint32_t n_peers;
	struct sl_ctld_peer peers[SL_CTLD_MAX_REPLICAS];
	char data_dir[SL_CTLD_PATH_MAX];
	char ctl_socket[SL_CTLD_PATH_MAX]; /* "" = <data_dir>/ctld.sock */
	uint32_t node_timeout_ms;
	uint32_t learner_timeout_ms; /* a replica move's learner catch-up, at most */
	uint32_t election_timeout_ms;
	uint32_t balance_interval_ms; /* one balancing leader move at most this often; 0: off */
	char peers_text[512];
	char protocols_text[512];
	struct sl_ctld_cluster cluster;
	struct sl_ctld_split_conf split;
	char balance_by_text[16]; /* "count" or "rate": parsed into balance.by */
	struct sl_ctld_balance_conf balance;
};

void sl_ctld_conf_default(struct sl_ctld_conf *c);
/* An INI file over the current values; unknown sections or keys are errors. */
int sl_ctld_conf_load(struct sl_ctld_conf *c, const char *path, char *err, size_t err_len);
int sl_ctld_conf_set(struct sl_ctld_conf *c, const char *section, const char *key,
		     const char *value, char *err, size_t err_len);
/* Parses the lists (peers, protocols), fills derived defaults and checks ranges. */
int sl_ctld_conf_finish(struct sl_ctld_conf *c, char *err, size_t err_len);
void sl_ctld_conf_dump(const struct sl_ctld_conf *c, FILE *out);

/* ---------------------------------------------------------------- state machine (ctld_sm.c) */

struct sl_ctld_region {
	uint64_t hash_lo, hash_hi;
	char protocol[SL_CTLD_PROTO_MAX];
	uint32_t rf;
	uint32_t replicas[SL_CTLD_MAX_RF]; /* node ids */
	uint32_t leader;                   /* preferred leader (a replica) */
	uint32_t observed;                 /* leader the replicas last reported (0: none) */
	uint64_t observed_term;            /* its term */
	/* The region's log is a chain of segments (docs/cluster.md, "Switching a region's
	 * protocol"): epoch numbers the active one (0 from the bootstrap on), next_protocol
	 * is the protocol of the next while a switch is in progress ("" when none). */
	uint32_t epoch;
	char next_protocol[SL_CTLD_PROTO_MAX];
	/* A replica move (docs/cluster.md, "Moving replicas, decommissioning and adding a
	 * node") is a switch whose next segment runs on next_replicas (next_rf of them);
	 * next_rf 0: the next segment keeps the replica set. */
	uint32_t next_rf;
	uint32_t next_replicas[SL_CTLD_MAX_RF];
	/* A replica move's first phase: the node it adds catches up as a learner of the
	 * active segment (it gets the log, votes for nothing, counts for no commit) before
	 * the seal is asked (next_protocol set once it has: learner_ready), so it switches
	 * with the others from its own copy (0: none). */
	uint32_t learner;
	/* A split (docs/cluster.md, "Splitting a region") is a switch to the same protocol
	 * whose next segment is cut in two: split_at is the first hash of the new half while
	 * it runs (0: none; never a valid cut, which lies above hash_lo). split_from is the
	 * parent region's id + 1 for a region born of a split (0: from the bootstrap), and
	 * split_epoch the segment both started at (a data node whose parent replica has not
	 * reached it yet makes the region when it does). */
	uint64_t split_at;
	uint32_t split_from;
	uint32_t split_epoch;
	/* A merge (docs/cluster.md, "Merging regions") is a switch of two adjacent regions to
	 * their own protocol whose next segment is one region: merge_with is the right
	 * neighbour's id + 1 on the region that takes its range, while it runs (0: none).
	 * The neighbour is then retired: merged_into is the id + 1 of the region it went into
	 * (0: live) and merge_epoch the segment that region started the merged range at; a
	 * retired region keeps its epoch, range and replicas as they were (history), takes
	 * part in nothing, and its id is never reused. */
	uint32_t merge_with;
	uint32_t merged_into;
	uint32_t merge_epoch;
	/* A core move (docs/cluster.md, "Moving a region to another core") is a switch to
	 * the same protocol whose next segment runs on another worker core of every node:
	 * core is that core + 1 once one ran (0: the core of its lineage, the first region
	 * of its split line's id mod the node's cores: sl_ctld_region_core), next_core the
	 * target + 1 while one runs (0: none). A split's new region takes its parent's. */
	uint32_t core;
	uint32_t next_core;
};

enum sl_ctld_node_state { SL_CTLD_EXPECTED = 0, SL_CTLD_UP = 1, SL_CTLD_DOWN = 2 };

struct sl_ctld_node {
	uint32_t state; /* enum sl_ctld_node_state */
	char address[SL_CTLD_ADDR_MAX];
	uint32_t cores;
	/* the worker count its data dir was made with (0: cores): a region no core move
	 * placed runs there on core region % lineage_cores (its workers may change since) */
	uint32_t lineage_cores;
	uint64_t joins; /* join commands applied */
	bool draining;  /* an operator drains its leaders: never a move's target, its preferred
			 * regions move to other replicas (moves of kind drain) */
	bool decommissioning; /* an operator retires it: drained of leaders and its replicas
			       * moved to other nodes (moves of kind decommission) */
};

/* A leader move an operator asked for (`transfer_leader`): the region's preferred leader
 * becomes `to`; the ctld leader marks it done once the replicas report `to` leading, or
 * failed (with why) when that does not happen in time. A protocol move (`set_protocol`)
 * is done once every replica runs the new segment; it never fails. Times are the proposing ctld
 * leader's wall clock (ms since the epoch), carried in the commands. */
#define SL_CTLD_MAX_MOVES 64 /* the last ones are kept (a ring) */
#define SL_CTLD_WHY_MAX 160
enum sl_ctld_move_state { SL_CTLD_MOVE_RUNNING = 1, SL_CTLD_MOVE_DONE = 2, SL_CTLD_MOVE_FAILED = 3 };

enum sl_ctld_move_kind {
	SL_CTLD_MOVE_OPERATOR = 0,
	SL_CTLD_MOVE_BALANCE = 1,
	SL_CTLD_MOVE_DRAIN = 2, /* off a node an operator drains */
	SL_CTLD_MOVE_PROTOCOL = 3, /* a protocol switch (set_protocol): from = to = 0 */
	/* replica moves (move_replica): from, to are node ids, the protocol stays (raft) */
	SL_CTLD_MOVE_REPLICA = 4,      /* an operator's */
	SL_CTLD_MOVE_DECOMMISSION = 5, /* ctld's own, off a decommissioning node */
	SL_CTLD_MOVE_REBALANCE = 6,    /* ctld's own, to a node holding fewer replicas */
	/* a split (split): from = to = 0, the protocol stays; the new half is the region
	 * whose hash_lo is the move's split_at */
	SL_CTLD_MOVE_SPLIT = 7,
	SL_CTLD_MOVE_AUTOSPLIT = 8, /* ctld's own split (size or write load), as a split */
	/* a merge (merge): from = to = 0, the protocol stays; the move's region takes the
	 * range of its right neighbour, merge_with - 1, which is retired */
	SL_CTLD_MOVE_MERGE = 9,
	SL_CTLD_MOVE_AUTOMERGE = 10, /* ctld's own merge (two small neighbours), as a merge */
	/* a core move (move_core): from = to = 0, the protocol stays; core is the target
	 * core + 1 */
	SL_CTLD_MOVE_CORE = 11,
};
/* A move that seals the region's segment (a protocol switch, a replica move, a split or
 * a merge: a merge seals both regions' segments). */
bool sl_ctld_move_is_switch(uint32_t kind);
/* A split, an operator's or ctld's own (SL_CTLD_MOVE_SPLIT or SL_CTLD_MOVE_AUTOSPLIT). */
bool sl_ctld_move_is_split(uint32_t kind);
/* A merge, an operator's or ctld's own (SL_CTLD_MOVE_MERGE or SL_CTLD_MOVE_AUTOMERGE). */
bool sl_ctld_move_is_merge(uint32_t kind);

struct sl_ctld_move {
	uint64_t id; /* 1, 2, ... in log order; 0: an empty slot */
	uint32_t kind; /* enum sl_ctld_move_kind: asked by an operator, or ctld's balancing */
	uint32_t region;
	uint32_t from; /* the leader the replicas reported when it was asked (0: none) */
	uint32_t to;
	uint32_t state; /* enum sl_ctld_move_state */
	uint64_t start_ms, end_ms;
	char why[SL_CTLD_WHY_MAX];
	/* a protocol move: the switch from_protocol -> to_protocol seals segment `epoch`
	 * (the region's epoch when it was asked); leader moves leave these "" and 0; a
	 * replica move (from, to: node ids) has from_protocol = to_protocol and its epoch */
	char from_protocol[SL_CTLD_PROTO_MAX], to_protocol[SL_CTLD_PROTO_MAX];
	uint32_t epoch;
	uint64_t split_at; /* a split: the first hash of the new half (0 for other kinds) */
	uint32_t merge_with; /* a merge: the right neighbour's id + 1 (0 for other kinds) */
	uint32_t core;       /* a core move: the target core + 1 (0 for other kinds) */
};

/* The replicated metadata: identical on every replica that applied the same prefix. */
struct sl_ctld_sm {
	bool bootstrapped;
	uint32_t cluster_id;
	uint32_t n_nodes;
	uint32_t n_regions;
	struct sl_ctld_region regions[SL_CTLD_MAX_REGIONS];
	struct sl_ctld_node nodes[SL_CTLD_MAX_NODES + 1]; /* [0] unused */
	/* bumped by every change of the region map: nodes compare it in heartbeat answers
	 * and fetch the map again when it moved */
	uint64_t map_version;
	uint64_t n_moves; /* moves ever recorded; move id i is at moves[(i - 1) % MAX] */
	struct sl_ctld_move moves[SL_CTLD_MAX_MOVES];
	uint64_t applied;      /* entries applied (any type) */
	uint64_t commands;     /* commands applied */
	uint64_t refused;      /* committed commands refused (malformed or not applicable) */
};

void sl_ctld_sm_init(struct sl_ctld_sm *sm);
/* The bootstrap command for this cluster config (the region map, computed once): hash
 * ranges split evenly, replicas round-robin over node ids, preferred leaders spread.
 * NULL with err set when the config cannot be placed. */
struct json_object *sl_ctld_plan(const struct sl_ctld_cluster *c, char *err, size_t err_len);
/* Command builders (new objects). */
struct json_object *sl_ctld_cmd_join(uint32_t node, const char *address, uint32_t cores,
				     uint32_t lineage_cores);
/* The count a node's unmoved regions are spread by (its lineage_cores, else cores). */
uint32_t sl_ctld_node_lineage(const struct sl_ctld_node *n);
struct json_object *sl_ctld_cmd_node_state(uint32_t node, bool up);
struct json_object *sl_ctld_cmd_set_leader(uint32_t region, uint32_t leader, uint64_t term);
/* Move id `id` (it must be the next one, n_moves + 1, when applied): region's preferred
 * leader becomes `to`, from = the leader observed now. */
struct json_object *sl_ctld_cmd_transfer_leader(uint64_t id, uint32_t region, uint32_t to,
						uint32_t from, uint64_t now_ms);
/* The same for one of ctld's own moves (kind SL_CTLD_MOVE_BALANCE or _DRAIN); why (NULL or
 * "": none) is what the move shows while it runs (the balance by rate names the loads). */
struct json_object *sl_ctld_cmd_balance(uint64_t id, uint32_t region, uint32_t to, uint32_t from,
					uint64_t now_ms, uint32_t kind, const char *why);
/* An operator starts (on) or ends draining node's leaders. */
struct json_object *sl_ctld_cmd_drain(uint32_t node, bool on);
/* Leader balance: regions an operator moved are left alone this long (ms). */
#define SL_CTLD_OPERATOR_HOLD_MS 600000u
/* The next move of ctld's own, from the map alone (deterministic): a region with copies
 * whose preferred leader is a node being drained (kind drain) or marked down (balance)
 * goes to its up, undrained replica preferred for the fewest regions; else, when those
 * nodes' counts of preferred regions differ by more than one, a region of the node with
 * the most (on its busiest core) goes to a replica with at least two fewer (the fewest,
 * then fewest on that core). Regions an operator moved within SL_CTLD_OPERATOR_HOLD_MS of
 * now_ms stay, unless their node is drained or down; a region being switched to another
 * protocol (sl_ctld_switching) stays whatever its node. Returns the move's kind + 1
 * (SL_CTLD_MOVE_BALANCE + 1 or SL_CTLD_MOVE_DRAIN + 1) with region and to set, 0 when
 * nothing is worth moving. */
int sl_ctld_balance_next(const struct sl_ctld_sm *sm, uint64_t now_ms, uint32_t *region,
			 uint32_t *to);
/* A running move ends: done, or failed with why. */
struct json_object *sl_ctld_cmd_move_end(uint64_t id, bool done, const char *why,
					 uint64_t now_ms);
/* Move `id` if the ring still has it, else NULL. */
const struct sl_ctld_move *sl_ctld_move_get(const struct sl_ctld_sm *sm, uint64_t id);
const char *sl_ctld_move_state_name(uint32_t state);
/* Checks what transfer_leader would refuse (region, node, protocol, a protocol switch in
 * progress), for an answer before
 * anything is proposed. 0 or -EINVAL with err. */
int sl_ctld_check_transfer(const struct sl_ctld_sm *sm, uint64_t region, uint64_t to,
			   char *err, size_t err_len);
/* Protocol switch, move id `id` (after the last one, as transfer_leader's): the region's
 * active segment is sealed and the next one runs `protocol` (next_protocol until the
 * replicas sealed, then protocol_switched). */
struct json_object *sl_ctld_cmd_set_protocol(uint64_t id, uint32_t region, const char *protocol,
					     uint64_t now_ms);
/* Every replica applied the seal of the region's segment epoch - 1: segment `epoch` runs
 * `protocol` (the region's next_protocol). */
struct json_object *sl_ctld_cmd_protocol_switched(uint32_t region, uint32_t epoch,
						  const char *protocol, uint64_t now_ms);
/* Checks what set_protocol would refuse. 0, or with err: -ENOENT (no such region),
 * -EINVAL (not a protocol name), -EBUSY (not applicable now: the same protocol, a switch
 * in progress, standalone on a region with copies, not bootstrapped). */
int sl_ctld_check_set_protocol(const struct sl_ctld_sm *sm, uint64_t region,
			       const char *protocol, char *err, size_t err_len);
/* Core move, move id `id`: the region's active segment is sealed and the next one runs
 * the same protocol on worker core `core` of every node (next_core until the replicas
 * sealed, then protocol_switched). */
struct json_object *sl_ctld_cmd_move_core(uint64_t id, uint32_t region, uint32_t core,
					  uint64_t now_ms);
/* Checks what move_core would refuse. 0, or with err: -ENOENT (no such region), -EINVAL
 * (a core no node has), -EBUSY (not applicable now: multileader, a switch in progress, a
 * node whose cores are unknown, the core it runs on already, not bootstrapped). */
int sl_ctld_check_move_core(const struct sl_ctld_sm *sm, uint64_t region, uint64_t core,
			    char *err, size_t err_len);
/* A protocol switch of the region is in progress: its next protocol is set (a split or
 * merge pending too), or the move that switched it still waits for the replicas to run the
 * new segment (a merge's: for the region and for the neighbour it takes), or the region
 * was born of a split whose move still waits so. Leader moves (operator, balance, drain),
 * replica moves, splits and merges leave such a region alone. */
bool sl_ctld_switching(const struct sl_ctld_sm *sm, uint32_t region);

/* Split, move id `id` (after the last one): the region's active segment is sealed (its
 * next protocol is its protocol) and the next one is cut in two at hash `at` (split_at
 * until the replicas sealed, then split_done). */
struct json_object *sl_ctld_cmd_split(uint64_t id, uint32_t region, uint64_t at,
				      uint64_t now_ms);
/* The same for one of ctld's own splits (kind SL_CTLD_MOVE_AUTOSPLIT, "auto-split"): the
 * move records why (the metric that stayed above its threshold). sl_ctld_cmd_automerge
 * is the same for ctld's own merges (kind SL_CTLD_MOVE_AUTOMERGE, "auto-merge"). */
struct json_object *sl_ctld_cmd_autosplit(uint64_t id, uint32_t region, uint64_t at,
					  uint64_t now_ms, const char *why);
/* Every replica applied the seal of the region's segment epoch - 1: the region keeps
 * [hash_lo, at - 1] and region new_id (n_regions, a new one) takes [at, hash_hi], both at
 * segment `epoch` under the same protocol and replicas. */
struct json_object *sl_ctld_cmd_split_done(uint32_t region, uint32_t epoch, uint64_t at,
					   uint32_t new_id, uint64_t now_ms);
/* Checks what split would refuse; at (when has_at) is the first hash of the new half, else
 * the middle of the range is (hash_lo + (hash_hi - hash_lo) / 2 + 1). 0 with *at_out set,
 * or with err: -ENOENT (no such region), -EINVAL (at not in (hash_lo, hash_hi], or a
 * range of one hash), -ENOSPC (SL_CTLD_MAX_REGIONS regions already), -EBUSY (not
 * applicable now: not raft or standalone, a switch of the region or a replica move
 * anywhere in progress, not bootstrapped). */
int sl_ctld_check_split(const struct sl_ctld_sm *sm, uint64_t region, uint64_t at, bool has_at,
			uint64_t *at_out, char *err, size_t err_len);
/* A hash as the map writes it: "0x" and 16 hex digits. */
bool sl_ctld_parse_hash(const char *s, uint64_t *out);
/* The region a split move made (the one born at its split_at), or UINT32_MAX while the
 * split is not done (or m is no split). */
uint32_t sl_ctld_split_child(const struct sl_ctld_sm *sm, const struct sl_ctld_move *m);

/* Merge, move id `id` (after the last one): the active segments of region and of its right
 * neighbour `with` are sealed (each one's next protocol is its protocol, region's
 * merge_with is with + 1) and the region's next segment covers both ranges (merge_done). */
struct json_object *sl_ctld_cmd_merge(uint64_t id, uint32_t region, uint32_t with,
				      uint64_t now_ms);
struct json_object *sl_ctld_cmd_automerge(uint64_t id, uint32_t region, uint32_t with,
					  uint64_t now_ms, const char *why);
/* Every replica applied the seals of both regions' segments: region runs segment `epoch`
 * (its epoch + 1) on [hash_lo, with's hash_hi]; region `with` is retired. */
struct json_object *sl_ctld_cmd_merge_done(uint32_t region, uint32_t with, uint32_t epoch,
					   uint64_t now_ms);
/* Checks what merge would refuse and finds the right neighbour (the live region whose
 * hash_lo is the region's hash_hi + 1). 0 with *with set, or with err: -ENOENT (no such
 * region), -EINVAL (the region is retired, or ends at the top of the hash space), -EBUSY
 * (not applicable now: a protocol other than raft or standalone, different protocols,
 * different replica sets, the two on different cores of a replica node (or a node whose
 * cores are unknown), a switch, split or merge of either in progress, a split's new region
 * whose move still runs, a replica move anywhere, not bootstrapped). */
int sl_ctld_check_merge(const struct sl_ctld_sm *sm, uint64_t region, uint32_t *with,
			char *err, size_t err_len);
/* The region was merged away (merged_into set): it takes part in nothing any more. */
bool sl_ctld_region_retired(const struct sl_ctld_sm *sm, uint32_t region);
/* The region whose pending merge takes `region` (its merge_with is region + 1), or
 * UINT32_MAX: none. */
uint32_t sl_ctld_merging_into(const struct sl_ctld_sm *sm, uint32_t region);
/* The worker core a data node of `cores` cores runs region i on: its split ancestor's
 * (the first region of its line, from the bootstrap), i.e. that region's id mod cores. */
uint32_t sl_ctld_region_core(const struct sl_ctld_sm *sm, uint32_t region, uint32_t cores);

/* Replica move `id` (after the last one) of region from node `from` to node `to`, kind
 * SL_CTLD_MOVE_REPLICA, _DECOMMISSION or _REBALANCE: the region's segment is sealed and
 * the next one runs under the same protocol on the replicas with from replaced by to. */
struct json_object *sl_ctld_cmd_move_replica(uint64_t id, uint32_t region, uint32_t from,
					     uint32_t to, uint32_t kind, uint64_t now_ms);
/* A replica move's learner caught up (applied what the replicas had when it started):
 * its region's seal is asked. Refused unless move `id` of `region` runs with a learner
 * and no seal asked yet. */
struct json_object *sl_ctld_cmd_learner_ready(uint64_t id, uint32_t region, uint64_t now_ms);
/* Checks what move_replica would refuse. 0, or with err: -ENOENT (no such region), -EINVAL
 * (from or to not a fitting node), -EBUSY (not applicable now: not raft, one replica, a
 * switch in progress, to down or draining or decommissioning, not bootstrapped). */
int sl_ctld_check_move_replica(const struct sl_ctld_sm *sm, uint64_t region, uint64_t from,
			       uint64_t to, char *err, size_t err_len);
/* An operator starts (on) or ends (recommission) the decommissioning of `node`. */
struct json_object *sl_ctld_cmd_decommission(uint32_t node, bool on);
/* Log indexes of segment `epoch` start above this (the data nodes' numbering). */
uint64_t sl_ctld_segment_base(uint32_t epoch);
/* A replica move (of any kind) is running. */
bool sl_ctld_replica_move_running(const struct sl_ctld_sm *sm);
/* Replicas `node` holds. */
uint32_t sl_ctld_node_replicas(const struct sl_ctld_sm *sm, uint32_t node);
/* The next decommission move, from the map alone: the first region (lowest id) with a
 * replica on a decommissioning node goes to the up, non-draining, non-decommissioning
 * node that is not its replica with the fewest replicas (ties: lowest id). 1 with region,
 * from, to set; 0 when there is nothing to move, or (blocked, with `blocked` saying why,
 * e.g. "no node to take region 3") when no region can go anywhere now. */
int sl_ctld_decommission_next(const struct sl_ctld_sm *sm, uint32_t *region, uint32_t *from,
			      uint32_t *to, char *blocked, size_t blocked_len);
/* The next rebalance move, from the map alone: when the up, non-draining,
 * non-decommissioning nodes' replica counts differ by more than one, a region (raft, not
 * switching, lowest id) of the node with the most goes to the node with the fewest (at
 * least two fewer, not already a replica; ties: lowest id). 1 with region, from, to set,
 * else 0. now_ms is for symmetry with sl_ctld_balance_next (no hold applies). */
int sl_ctld_rebalance_next(const struct sl_ctld_sm *sm, uint64_t now_ms, uint32_t *region,
			   uint32_t *from, uint32_t *to);
/* Applies one committed command (JSON text). 0, or a negative errno with err set: the
 * command is refused and counted, the state is unchanged (every replica refuses alike). */
int sl_ctld_sm_apply(struct sl_ctld_sm *sm, const uint8_t *data, uint32_t len, char *err,
		     size_t err_len);

/* Soft state of the leader: what the data nodes' heartbeats said (never replicated). */
struct sl_ctld_hb_region {
	bool valid;
	uint32_t role; /* enum sl_cons_role */
	uint32_t leader;
	uint64_t term, commit_index, applied_index;
	uint32_t epoch; /* the replica's active segment (0 from nodes that do not send it) */
	bool sealed;    /* it applied the SEAL of that segment: takes no more writes in it */
	bool rejoining; /* not caught up yet: a joiner, or a node that lost its data dir */
	uint32_t core;  /* the worker core that runs it there + 1 (0: not reported) */
	/* the replica's store for the region: points and bytes (absent from nodes that do not
	 * send them: unknown, never taken as 0), and the write rate the leader derives from
	 * the points of this and the node's previous heartbeat (unknown without both, or when
	 * the points went down) */
	bool has_points, has_bytes, has_rate;
	uint64_t points, bytes, points_per_s;
	uint64_t at_ns; /* when the heartbeat that carried this row arrived */
};

struct sl_ctld_soft {
	bool seen[SL_CTLD_MAX_NODES + 1];        /* a heartbeat arrived in this leadership */
	uint64_t last_hb_ns[SL_CTLD_MAX_NODES + 1];
	struct sl_ctld_hb_region hb[SL_CTLD_MAX_NODES + 1][SL_CTLD_MAX_REGIONS];
};

/* Records a heartbeat's "regions" array for `node`. -EINVAL with err for a malformed one
 * (nothing recorded). */
int sl_ctld_soft_heartbeat(struct sl_ctld_soft *soft, const struct sl_ctld_sm *sm,
			   uint32_t node, struct json_object *regions, uint64_t now_ns,
			   char *err, size_t err_len);

/* What the live replicas of `region` report (heartbeats younger than timeout_ns): the
 * leader named in the highest term (0: none), the highest commit and lowest applied index.
 * Returns how many replicas reported. */
struct sl_ctld_observed {
	uint32_t leader;
	uint64_t term, max_commit, min_applied;
};
uint32_t sl_ctld_observe(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			 uint32_t region, uint64_t now_ns, uint64_t timeout_ns,
			 struct sl_ctld_observed *out);

/* A region's load as its live replicas report it (heartbeats younger than timeout_ns): the
 * largest size and the largest write rate, each with whether any replica knew it. */
struct sl_ctld_load {
	bool has_bytes, has_rate;
	uint64_t bytes, points_per_s;
};
void sl_ctld_region_load(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			 uint32_t region, uint64_t now_ns, uint64_t timeout_ns,
			 struct sl_ctld_load *out);

/* Automatic splits: the leader's soft state per region, the load and since when each
 * figure has been above its threshold (reset when it is not, when it is unknown, and
 * while the region switches; a new leader starts with none). */
struct sl_ctld_split_obs {
	struct sl_ctld_split_region {
		struct sl_ctld_load load;
		bool bytes_above, rate_above;
		uint64_t bytes_since_ms, rate_since_ms;
		/* the region and its right neighbour (with: its id) below the merge rule */
		bool pair_below;
		uint32_t with;
		uint64_t pair_since_ms;
	} r[SL_CTLD_MAX_REGIONS];
};
/* Updates obs from the heartbeats at now_ns (now_ms = now_ns / 10^6 is its clock). */
void sl_ctld_split_observe(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			   uint64_t now_ns, uint64_t timeout_ns,
			   const struct sl_ctld_split_conf *conf, struct sl_ctld_split_obs *obs);
/* The next automatic split (deterministic): none while any region switches (a protocol
 * switch, a split) or a replica move runs, or when both thresholds are 0; else, of the
 * regions with a figure above its threshold for at least sustain_ms, the one above the
 * longest (ties: the larger size, then the lowest id) that sl_ctld_check_split lets cut at
 * its middle. 1 with region set and why ("size 1.2 GB above split_bytes 1.0 GB for 31 s",
 * "write rate 52000 points/s above split_points_per_s 50000 for 30 s"); 0 when nothing is
 * due, why then "" or, when a due region cannot split, the first such one and the
 * reason ("region 3 is due (size ...) but cannot split: split: region 3 runs
 * multileader: ..."). */
int sl_ctld_split_next(const struct sl_ctld_sm *sm, const struct sl_ctld_split_obs *obs,
		       uint64_t now_ms, const struct sl_ctld_split_conf *conf, uint32_t *region,
		       char *why, size_t why_len);
/* The next automatic merge (deterministic), under the same rules as sl_ctld_split_next:
 * of the regions whose pair with their right neighbour stayed below the merge rule for
 * at least sustain_ms, the one below the longest (ties: the smaller pair, then the lowest
 * id) that sl_ctld_check_merge lets merge. 1 with region, with and why ("sizes 1.2 MB +
 * 0.8 MB below merge_bytes 4.0 MB for 31 s"); 0 when nothing is due, why then "" or the
 * first due pair that cannot merge and the reason. */
int sl_ctld_merge_next(const struct sl_ctld_sm *sm, const struct sl_ctld_split_obs *obs,
		       uint64_t now_ms, const struct sl_ctld_split_conf *conf, uint32_t *region,
		       uint32_t *with, char *why, size_t why_len);
/* The next split or merge toward conf->regions_target live regions (deterministic):
 * fewer live regions than that, the live region with the widest hash range (ties: lowest
 * id) that sl_ctld_check_split lets split at its middle; more, the live region whose pair
 * with its right neighbour covers the narrowest range (ties: lowest id) that
 * sl_ctld_check_merge lets merge. 1: a split of *region (*with UINT32_MAX), 2: a merge of
 * *region and *with, each with why ("regions_target 8: 5 live regions"); 0 when none is
 * due or none can move (why then "" or the reason). */
int sl_ctld_count_next(const struct sl_ctld_sm *sm, const struct sl_ctld_split_conf *conf,
		       uint32_t *region, uint32_t *with, char *why, size_t why_len);
/* Leader balance with its config: count is sl_ctld_balance_next. rate: the drained and
 * down nodes' regions first, as there; else the load of a node is the sum of the write
 * rates (obs, the leader's observation: unknown counts 0) of the live regions it is the
 * preferred leader of; when the busiest up, undrained node's load exceeds the least busy
 * one's by more than rate_slack_pct percent of its own, one of its regions goes to a
 * replica on a lighter node: the region and replica whose move evens the loads most (the
 * largest drop of the sum of the nodes' squared loads: for one target, the move that
 * leaves the two closest), never making the target's load reach the source's (ties:
 * lowest region id, then lowest node id). A busiest node with no such region gives way to
 * the next busiest. The
 * same regions stay as by count (an operator's hold, a switch, one copy, retired). why
 * (NULL: not wanted) says it ("rate: node 1 leads 52000 points/s, node 3 18000; region 4
 * (21000 points/s) to node 3"), "" for the other moves. */
int sl_ctld_balance_next_by(const struct sl_ctld_sm *sm, uint64_t now_ms,
			    const struct sl_ctld_balance_conf *conf,
			    const struct sl_ctld_split_obs *obs, uint32_t *region, uint32_t *to,
			    char *why, size_t why_len);

/* The switch decisions the ctld leader runs (pure: map and heartbeats in, no clock of
 * their own). switch_ready: the region has a next protocol and every replica reported
 * within timeout_ns that it applied the seal of the region's epoch (propose
 * protocol_switched, or split_done when a split is pending); for a replica move every
 * replica but the one leaving, and a majority of the old set (the leaving one may be
 * dead). switch_done: the running move `m` switched its region and every replica reports
 * the new epoch, unsealed (end the move done); for a replica move each has also applied
 * up to the new segment's base (the joiner installed its snapshot); for a split each
 * reports both the region and the new one at the new epoch, unsealed (a node reports
 * the new region once it has it). When not, both write what they wait for to `waiting`
 * ("node 3 has not applied the seal", "node 2 is down", "node 4 has not caught up"). */
bool sl_ctld_switch_ready(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			  uint32_t region, uint64_t now_ns, uint64_t timeout_ns, char *waiting,
			  size_t waiting_len);
/* A running replica move that switched its region but cannot finish: a node of the new
 * replica set is marked down (the joiner died before it caught up, or another replica
 * died). The ctld leader ends it failed with `why`, so the region takes a new move (e.g.
 * move_replica from the dead node); the new segment keeps running on a majority. */
/* A replica move's learner (region->learner) reports the active segment applied to at
 * least `target` (what sl_ctld_learner_target gave when the leader first looked: the
 * highest applied index its replicas reported); else waiting says what it waits for. */
bool sl_ctld_learner_caught_up(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			       uint32_t region, uint64_t target, uint64_t now_ns,
			       uint64_t timeout_ns, char *waiting, size_t waiting_len);
uint64_t sl_ctld_learner_target(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
				uint32_t region, uint64_t now_ns, uint64_t timeout_ns);
bool sl_ctld_replica_move_stuck(const struct sl_ctld_sm *sm, const struct sl_ctld_move *m,
				char *why, size_t why_len);
bool sl_ctld_switch_done(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			 const struct sl_ctld_move *m, uint64_t now_ns, uint64_t timeout_ns,
			 char *waiting, size_t waiting_len);

/* Views for the ctl commands. soft may be NULL (a follower has no heartbeats). */
struct json_object *sl_ctld_view_members(const struct sl_ctld_sm *sm,
					 const struct sl_ctld_soft *soft, uint64_t now_ns);
struct json_object *sl_ctld_view_regions(const struct sl_ctld_sm *sm,
					 const struct sl_ctld_soft *soft, uint64_t now_ns,
					 uint64_t timeout_ns);
struct json_object *sl_ctld_view_placement(const struct sl_ctld_sm *sm);
/* The moves the ring keeps, oldest first; with soft (the leader's), a running protocol
 * move says what it waits for. */
struct json_object *sl_ctld_view_moves(const struct sl_ctld_sm *sm,
				       const struct sl_ctld_soft *soft, uint64_t now_ns,
				       uint64_t timeout_ns);
const char *sl_ctld_state_name(uint32_t state);

/* ---------------------------------------------------------------- log file (ctld_log.c) */

/* The raft log of the metadata group in one append-only file of CRC32C-checked records,
 * and the hard state in a small file replaced atomically. Entries live in an sl_rlog
 * window as well (the protocol's read side); nothing is compacted: the metadata log is
 * small. */
struct sl_ctld_log {
	int fd;
	int dir_fd;
	char dir[SL_CTLD_PATH_MAX];
	uint64_t *offsets; /* file offset of entry i at [i - 1] */
	uint64_t cap;
	uint64_t last;     /* last index in the file */
	uint64_t last_term;
	uint64_t end;      /* file size */
	struct sl_rlog rlog;
	struct sl_cons_hard_state hs; /* as recovered or last written */
	bool hs_pending;
	struct sl_cons_hard_state hs_next;
	bool dirty;        /* entries written since the last sync */
	/* recovery report */
	uint64_t torn_bytes; /* cut from an unfinished tail */
};

/* Opens (creating) dir/ctld.log and dir/ctld.hs and recovers them: an unfinished record at
 * the end is cut (torn_bytes), a complete record that fails its CRC or is out of order is
 * refused (-EBADMSG, err names the offset). */
int sl_ctld_log_open(struct sl_ctld_log *l, const char *dir, char *err, size_t err_len);
void sl_ctld_log_close(struct sl_ctld_log *l);
/* Appends e (an index at or below the last replaces the suffix from there). Not durable
 * until sl_ctld_log_sync. */
int sl_ctld_log_append(struct sl_ctld_log *l, const struct sl_cons_entry *e);
/* Hard state to write at the next sync, after the entries. */
void sl_ctld_log_set_hs(struct sl_ctld_log *l, const struct sl_cons_hard_state *hs);
/* fdatasync the log, then write the hard state (tmp + fdatasync + rename + dir fsync). */
int sl_ctld_log_sync(struct sl_ctld_log *l);

#endif

/* ctld_sm.c - the control plane's metadata state machine (region map, data nodes) applied
 * from JSON commands, every field validated (a refused one changes nothing on any replica);
 * also the leader's soft state from heartbeats and the views of the ctl commands. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctld.h"

void sl_ctld_sm_init(struct sl_ctld_sm *sm) { memset(sm, 0, sizeof(*sm)); }

const char *sl_ctld_state_name(uint32_t state)
{
	return state == SL_CTLD_UP ? "up" : state == SL_CTLD_DOWN ? "down" : "expected";
}

/* ---------------------------------------------------------------- bootstrap plan */

/* The node's own split (dataplane/node_recover.c): region i covers
 * [ceil(i * 2^64 / n), ceil((i + 1) * 2^64 / n) - 1], the last one up to 2^64 - 1. */
static void hash_range(uint32_t i, uint32_t n, uint64_t *lo, uint64_t *hi)
{
	*lo = (uint64_t)((((unsigned __int128)i << 64) + n - 1) / n);
	*hi = i + 1 == n ? UINT64_MAX
			 : (uint64_t)((((unsigned __int128)(i + 1) << 64) + n - 1) / n) - 1;
}

static struct json_object *hex64(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%016" PRIx64, v);
	return json_object_new_string(b);
}

/* The preferred leader of region i among its replicas. Without cores: the replica slot
 * advances once per lap over the nodes, so leaders are even over the nodes (to within
 * one) and over the replica slots (the rule nodes derive without ctld). With cores: the
 * replica leading fewest regions so far, then the one leading fewest on the region's core
 * (i mod cores), then the earlier slot, so leaders also spread over each node's cores. */
static uint32_t plan_leader(const struct sl_ctld_cluster *c, uint32_t nodes, uint32_t i,
			    uint32_t rf, uint32_t *node_leads,
			    uint32_t (*core_leads)[SL_CTLD_MAX_REGIONS])
{
	if (c->cores == 0)
		return (i + (i / nodes) % rf) % nodes + 1;
	uint32_t core = i % c->cores, best = 0;
	for (uint32_t k = 0; k < rf; k++) {
		uint32_t n = (i + k) % nodes + 1;
		if (best == 0 || node_leads[n] < node_leads[best] ||
		    (node_leads[n] == node_leads[best] && core_leads[n][core] < core_leads[best][core]))
			best = n;
	}
	node_leads[best]++;
	core_leads[best][core]++;
	return best;
}

struct json_object *sl_ctld_plan(const struct sl_ctld_cluster *c, char *err, size_t err_len)
{
	/* replicas go to nodes 1..placed; the others join later and get theirs by moves */
	uint32_t placed = c->initial_nodes != 0 ? c->initial_nodes : c->nodes;
	if (c->nodes == 0 || c->nodes > SL_CTLD_MAX_NODES || placed > c->nodes ||
	    c->regions == 0 || c->regions > SL_CTLD_MAX_REGIONS || c->replication == 0 ||
	    c->replication > SL_CTLD_MAX_RF || c->replication > placed ||
	    c->cores > SL_CTLD_MAX_CORES) {
		snprintf(err, err_len, "cannot place %u regions of RF %u on %u of %u nodes",
			 c->regions, c->replication, placed, c->nodes);
		return NULL;
	}
	struct json_object *cmd = json_object_new_object(), *arr = json_object_new_array();
	json_object_object_add(cmd, "op", json_object_new_string("bootstrap"));
	json_object_object_add(cmd, "cluster", json_object_new_int64(c->cluster_id));
	json_object_object_add(cmd, "nodes", json_object_new_int64(c->nodes));
	/* core = region mod cores < regions */
	static uint32_t node_leads[SL_CTLD_MAX_NODES + 1],
	    core_leads[SL_CTLD_MAX_NODES + 1][SL_CTLD_MAX_REGIONS];
	memset(node_leads, 0, sizeof(node_leads));
	memset(core_leads, 0, sizeof(core_leads));
	for (uint32_t i = 0; i < c->regions; i++) {
		const char *proto = c->region_protocol[i][0] ? c->region_protocol[i] : c->protocol;
		/* a single-copy protocol (standalone) has one replica whatever the RF */
		uint32_t rf = c->replication, max = sl_cons_max_copies(sl_cons_find(proto));
		if (rf > max)
			rf = max;
		uint64_t lo, hi;
		hash_range(i, c->regions, &lo, &hi);
		struct json_object *r = json_object_new_object(), *reps = json_object_new_array();
		/* the node's own rule (sl_cfg_region_replicas): consecutive node ids from
		 * (region mod nodes) + 1, so the map is the one nodes with the same config run;
		 * with regions a multiple of nodes every node holds as many replicas */
		for (uint32_t k = 0; k < rf; k++)
			json_object_array_add(reps, json_object_new_int64((i + k) % placed + 1));
		uint32_t lead = plan_leader(c, placed, i, rf, node_leads, core_leads);
		json_object_object_add(r, "id", json_object_new_int64(i));
		json_object_object_add(r, "hash_lo", hex64(lo));
		json_object_object_add(r, "hash_hi", hex64(hi));
		json_object_object_add(r, "protocol", json_object_new_string(proto));
		json_object_object_add(r, "replicas", reps);
		json_object_object_add(r, "leader", json_object_new_int64(lead));
		json_object_array_add(arr, r);
	}
	json_object_object_add(cmd, "regions", arr);
	return cmd;
}

uint32_t sl_ctld_node_lineage(const struct sl_ctld_node *n)
{
	return n->lineage_cores != 0 ? n->lineage_cores : n->cores;
}

struct json_object *sl_ctld_cmd_join(uint32_t node, const char *address, uint32_t cores,
				     uint32_t lineage_cores)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("join"));
	json_object_object_add(o, "node", json_object_new_int64(node));
	json_object_object_add(o, "address", json_object_new_string(address));
	json_object_object_add(o, "cores", json_object_new_int64(cores));
	if (lineage_cores != 0 && lineage_cores != cores)
		json_object_object_add(o, "lineage_cores", json_object_new_int64(lineage_cores));
	return o;
}

/* {"op": op, "node": node, key: value}: node_state and drain */
static struct json_object *node_flag_cmd(const char *op, uint32_t node, const char *key,
					 bool value)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "node", json_object_new_int64(node));
	json_object_object_add(o, key, json_object_new_boolean(value));
	return o;
}

struct json_object *sl_ctld_cmd_node_state(uint32_t node, bool up)
{
	return node_flag_cmd("node_state", node, "up", up);
}

struct json_object *sl_ctld_cmd_set_leader(uint32_t region, uint32_t leader, uint64_t term)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("set_leader"));
	json_object_object_add(o, "region", json_object_new_int64(region));
	json_object_object_add(o, "leader", json_object_new_int64(leader));
	json_object_object_add(o, "term", json_object_new_int64((int64_t)term));
	return o;
}

/* {"op": op, "id": id, "region": region}: the start of a command that records a move */
static struct json_object *move_cmd(const char *op, uint64_t id, uint32_t region)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "id", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "region", json_object_new_int64(region));
	return o;
}

struct json_object *sl_ctld_cmd_transfer_leader(uint64_t id, uint32_t region, uint32_t to,
						uint32_t from, uint64_t now_ms)
{
	struct json_object *o = move_cmd("transfer_leader", id, region);
	json_object_object_add(o, "to", json_object_new_int64(to));
	json_object_object_add(o, "from", json_object_new_int64(from));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

static const char *move_kind_name(uint32_t kind)
{
	return kind == SL_CTLD_MOVE_BALANCE	   ? "balance"
	       : kind == SL_CTLD_MOVE_DRAIN	   ? "drain"
	       : kind == SL_CTLD_MOVE_PROTOCOL	   ? "protocol"
	       : kind == SL_CTLD_MOVE_REPLICA	   ? "replica"
	       : kind == SL_CTLD_MOVE_DECOMMISSION ? "decommission"
	       : kind == SL_CTLD_MOVE_REBALANCE	   ? "rebalance"
	       : kind == SL_CTLD_MOVE_SPLIT	   ? "split"
	       : kind == SL_CTLD_MOVE_AUTOSPLIT	   ? "auto-split"
	       : kind == SL_CTLD_MOVE_MERGE	   ? "merge"
	       : kind == SL_CTLD_MOVE_AUTOMERGE	   ? "auto-merge"
	       : kind == SL_CTLD_MOVE_CORE	   ? "core"
						   : "transfer-leader";
}

bool sl_ctld_move_is_switch(uint32_t kind)
{
	return kind == SL_CTLD_MOVE_PROTOCOL || kind == SL_CTLD_MOVE_REPLICA ||
	       kind == SL_CTLD_MOVE_DECOMMISSION || kind == SL_CTLD_MOVE_REBALANCE ||
	       kind == SL_CTLD_MOVE_CORE || sl_ctld_move_is_split(kind) ||
	       sl_ctld_move_is_merge(kind);
}

bool sl_ctld_move_is_merge(uint32_t kind)
{
	return kind == SL_CTLD_MOVE_MERGE || kind == SL_CTLD_MOVE_AUTOMERGE;
}

bool sl_ctld_move_is_split(uint32_t kind)
{
	return kind == SL_CTLD_MOVE_SPLIT || kind == SL_CTLD_MOVE_AUTOSPLIT;
}

static bool replica_kind(uint32_t kind)
{
	return kind == SL_CTLD_MOVE_REPLICA || kind == SL_CTLD_MOVE_DECOMMISSION ||
	       kind == SL_CTLD_MOVE_REBALANCE;
}

uint64_t sl_ctld_segment_base(uint32_t epoch) { return (uint64_t)epoch << 40; }

struct json_object *sl_ctld_cmd_move_replica(uint64_t id, uint32_t region, uint32_t from,
					     uint32_t to, uint32_t kind, uint64_t now_ms)
{
	struct json_object *o = move_cmd("move_replica", id, region);
	json_object_object_add(o, "from", json_object_new_int64(from));
	json_object_object_add(o, "to", json_object_new_int64(to));
	json_object_object_add(o, "kind", json_object_new_string(move_kind_name(kind)));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	/* the new replica catches up as a learner first (a log from before this had none) */
	json_object_object_add(o, "learner", json_object_new_boolean(1));
	return o;
}

struct json_object *sl_ctld_cmd_learner_ready(uint64_t id, uint32_t region, uint64_t now_ms)
{
	struct json_object *o = move_cmd("learner_ready", id, region);
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_set_protocol(uint64_t id, uint32_t region, const char *protocol,
					     uint64_t now_ms)
{
	struct json_object *o = move_cmd("set_protocol", id, region);
	json_object_object_add(o, "protocol", json_object_new_string(protocol));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_move_core(uint64_t id, uint32_t region, uint32_t core,
					  uint64_t now_ms)
{
	struct json_object *o = move_cmd("move_core", id, region);
	json_object_object_add(o, "core", json_object_new_int64(core));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_protocol_switched(uint32_t region, uint32_t epoch,
						  const char *protocol, uint64_t now_ms)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("protocol_switched"));
	json_object_object_add(o, "region", json_object_new_int64(region));
	json_object_object_add(o, "epoch", json_object_new_int64(epoch));
	json_object_object_add(o, "protocol", json_object_new_string(protocol));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_split(uint64_t id, uint32_t region, uint64_t at,
				      uint64_t now_ms)
{
	struct json_object *o = move_cmd("split", id, region);
	json_object_object_add(o, "at", hex64(at));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

/* A command of ctld's own: its kind and why added to the operator's command o. */
static struct json_object *own_kind(struct json_object *o, uint32_t kind, const char *why)
{
	json_object_object_add(o, "kind", json_object_new_string(move_kind_name(kind)));
	json_object_object_add(o, "why", json_object_new_string(why));
	return o;
}

struct json_object *sl_ctld_cmd_autosplit(uint64_t id, uint32_t region, uint64_t at,
					  uint64_t now_ms, const char *why)
{
	return own_kind(sl_ctld_cmd_split(id, region, at, now_ms), SL_CTLD_MOVE_AUTOSPLIT, why);
}

struct json_object *sl_ctld_cmd_split_done(uint32_t region, uint32_t epoch, uint64_t at,
					   uint32_t new_id, uint64_t now_ms)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("split_done"));
	json_object_object_add(o, "region", json_object_new_int64(region));
	json_object_object_add(o, "epoch", json_object_new_int64(epoch));
	json_object_object_add(o, "at", hex64(at));
	json_object_object_add(o, "new_region", json_object_new_int64(new_id));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_merge(uint64_t id, uint32_t region, uint32_t with,
				      uint64_t now_ms)
{
	struct json_object *o = move_cmd("merge", id, region);
	json_object_object_add(o, "with", json_object_new_int64(with));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_automerge(uint64_t id, uint32_t region, uint32_t with,
					  uint64_t now_ms, const char *why)
{
	return own_kind(sl_ctld_cmd_merge(id, region, with, now_ms), SL_CTLD_MOVE_AUTOMERGE, why);
}

struct json_object *sl_ctld_cmd_merge_done(uint32_t region, uint32_t with, uint32_t epoch,
					   uint64_t now_ms)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("merge_done"));
	json_object_object_add(o, "region", json_object_new_int64(region));
	json_object_object_add(o, "with", json_object_new_int64(with));
	json_object_object_add(o, "epoch", json_object_new_int64(epoch));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

struct json_object *sl_ctld_cmd_balance(uint64_t id, uint32_t region, uint32_t to, uint32_t from,
					uint64_t now_ms, uint32_t kind, const char *why)
{
	struct json_object *o = sl_ctld_cmd_transfer_leader(id, region, to, from, now_ms);
	json_object_object_add(o, "kind", json_object_new_string(move_kind_name(kind)));
	if (why != NULL && why[0] != '\0')
		json_object_object_add(o, "why", json_object_new_string(why));
	return o;
}

struct json_object *sl_ctld_cmd_drain(uint32_t node, bool on)
{
	return node_flag_cmd("drain", node, "on", on);
}

struct json_object *sl_ctld_cmd_decommission(uint32_t node, bool on)
{
	return node_flag_cmd("decommission", node, "on", on);
}

struct json_object *sl_ctld_cmd_move_end(uint64_t id, bool done, const char *why,
					 uint64_t now_ms)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("move_end"));
	json_object_object_add(o, "id", json_object_new_int64((int64_t)id));
	json_object_object_add(o, "state", json_object_new_string(done ? "done" : "failed"));
	json_object_object_add(o, "why", json_object_new_string(why));
	json_object_object_add(o, "at_ms", json_object_new_int64((int64_t)now_ms));
	return o;
}

const char *sl_ctld_move_state_name(uint32_t state)
{
	return state == SL_CTLD_MOVE_RUNNING ? "running"
	       : state == SL_CTLD_MOVE_DONE  ? "done"
	       : state == SL_CTLD_MOVE_FAILED ? "failed"
					      : "?";
}

const struct sl_ctld_move *sl_ctld_move_get(const struct sl_ctld_sm *sm, uint64_t id)
{
	if (id == 0 || id > sm->n_moves || sm->n_moves - id >= SL_CTLD_MAX_MOVES)
		return NULL;
	const struct sl_ctld_move *m = &sm->moves[(id - 1) % SL_CTLD_MAX_MOVES];
	return m->id == id ? m : NULL; /* an id whose proposal was lost leaves a gap */
}

bool sl_ctld_region_retired(const struct sl_ctld_sm *sm, uint32_t region)
{
	return region < sm->n_regions && sm->regions[region].merged_into != 0;
}

uint32_t sl_ctld_merging_into(const struct sl_ctld_sm *sm, uint32_t region)
{
	for (uint32_t i = 0; i < sm->n_regions && region < sm->n_regions; i++)
		if (sm->regions[i].merge_with == region + 1)
			return i;
	return UINT32_MAX;
}

uint32_t sl_ctld_region_core(const struct sl_ctld_sm *sm, uint32_t region, uint32_t cores)
{
	/* a core move's (a split's new region took its parent's) */
	if (region < sm->n_regions && sm->regions[region].core != 0)
		return sm->regions[region].core - 1;
	/* a split's new region lives on its parent's core (a parent's id is below its
	 * child's: the walk ends) */
	while (region < sm->n_regions && sm->regions[region].split_from != 0)
		region = sm->regions[region].split_from - 1;
	return cores != 0 ? region % cores : 0;
}

/* A region merged away is refused by every command that names it (err says so). */
static bool refuse_retired(const struct sl_ctld_sm *sm, const char *op, uint64_t region,
			   char *err, size_t err_len)
{
	if (region >= sm->n_regions || sm->regions[region].merged_into == 0)
		return false;
	snprintf(err, err_len, "%s: region %" PRIu64 " was merged into region %u (retired: it "
		 "takes part in nothing)", op, region, sm->regions[region].merged_into - 1);
	return true;
}

/* ---------------------------------------------------------------- apply */

#define REFUSE(...)                                                                         \
	do {                                                                                \
		snprintf(err, err_len, __VA_ARGS__);                                        \
		return -EINVAL;                                                             \
	} while (0)

/* An integer member in [min, max]. */
static bool get_uint(struct json_object *o, const char *key, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	int64_t x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return false;
	*out = (uint64_t)x;
	return true;
}

static const char *get_str(struct json_object *o, const char *key, size_t max_len)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) > max_len)
		return NULL;
	return json_object_get_string(v);
}

bool sl_ctld_parse_hash(const char *s, uint64_t *out)
{
	if (s == NULL || strncmp(s, "0x", 2) != 0 || strlen(s) != 18)
		return false;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s + 2, &end, 16);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static int apply_region(struct json_object *ro, uint32_t idx, uint32_t nodes,
			struct sl_ctld_region *r, char *err, size_t err_len)
{
	uint64_t id = 0, lead = 0;
	struct json_object *reps = NULL;
	const char *proto = get_str(ro, "protocol", SL_CTLD_PROTO_MAX - 1);
	if (!json_object_is_type(ro, json_type_object) || !get_uint(ro, "id", idx, idx, &id))
		REFUSE("bootstrap: region %u: missing or out of order", idx);
	if (!sl_ctld_parse_hash(get_str(ro, "hash_lo", 18), &r->hash_lo) ||
	    !sl_ctld_parse_hash(get_str(ro, "hash_hi", 18), &r->hash_hi) || r->hash_lo > r->hash_hi)
		REFUSE("bootstrap: region %u: bad hash range", idx);
	if (proto == NULL || sl_cons_find(proto) == NULL)
		REFUSE("bootstrap: region %u: unknown protocol", idx);
	snprintf(r->protocol, sizeof(r->protocol), "%s", proto);
	if (!json_object_object_get_ex(ro, "replicas", &reps) ||
	    !json_object_is_type(reps, json_type_array) || json_object_array_length(reps) == 0 ||
	    json_object_array_length(reps) > SL_CTLD_MAX_RF)
		REFUSE("bootstrap: region %u: replicas must be 1..%u node ids", idx,
		       SL_CTLD_MAX_RF);
	r->rf = (uint32_t)json_object_array_length(reps);
	if (r->rf > sl_cons_max_copies(sl_cons_find(proto)))
		REFUSE("bootstrap: region %u: %s keeps at most %u copies", idx, proto,
		       sl_cons_max_copies(sl_cons_find(proto)));
	for (uint32_t k = 0; k < r->rf; k++) {
		struct json_object *v = json_object_array_get_idx(reps, k);
		int64_t n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
		if (n < 1 || n > (int64_t)nodes)
			REFUSE("bootstrap: region %u: replica %u is not a node id in 1..%u", idx, k,
			       nodes);
		r->replicas[k] = (uint32_t)n;
		for (uint32_t j = 0; j < k; j++)
			if (r->replicas[j] == r->replicas[k])
				REFUSE("bootstrap: region %u: node %u holds two replicas", idx,
				       r->replicas[k]);
	}
	if (!get_uint(ro, "leader", 1, nodes, &lead))
		REFUSE("bootstrap: region %u: bad preferred leader", idx);
	r->leader = (uint32_t)lead;
	for (uint32_t k = 0; k < r->rf; k++)
		if (r->replicas[k] == r->leader)
			return 0;
	REFUSE("bootstrap: region %u: preferred leader %u is not a replica", idx, r->leader);
}

static int apply_bootstrap(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			   size_t err_len)
{
	if (sm->bootstrapped) /* two first leaders may both propose: the first one wins */
		REFUSE("bootstrap: the cluster is bootstrapped already");
	uint64_t cluster = 0, nodes = 0;
	struct json_object *regions = NULL;
	if (!get_uint(cmd, "cluster", 1, UINT32_MAX - 1, &cluster) ||
	    !get_uint(cmd, "nodes", 1, SL_CTLD_MAX_NODES, &nodes))
		REFUSE("bootstrap: cluster or nodes missing or out of range");
	if (!json_object_object_get_ex(cmd, "regions", &regions) ||
	    !json_object_is_type(regions, json_type_array) ||
	    json_object_array_length(regions) == 0 ||
	    json_object_array_length(regions) > SL_CTLD_MAX_REGIONS)
		REFUSE("bootstrap: regions must be an array of 1..%u", SL_CTLD_MAX_REGIONS);
	uint32_t n = (uint32_t)json_object_array_length(regions);
	/* decoded aside first: a refused command leaves the map as it was */
	struct sl_ctld_region *tmp = calloc(n, sizeof(*tmp));
	if (tmp == NULL)
		REFUSE("bootstrap: out of memory");
	for (uint32_t i = 0; i < n; i++) {
		int rc = apply_region(json_object_array_get_idx(regions, i), i, (uint32_t)nodes,
				      &tmp[i], err, err_len);
		if (rc == 0 && i > 0 && tmp[i].hash_lo != tmp[i - 1].hash_hi + 1) {
			snprintf(err, err_len, "bootstrap: region %u: hash ranges not contiguous", i);
			rc = -EINVAL;
		}
		if (rc != 0) {
			free(tmp);
			return rc;
		}
	}
	if (tmp[0].hash_lo != 0 || tmp[n - 1].hash_hi != UINT64_MAX) {
		free(tmp);
		REFUSE("bootstrap: hash ranges do not cover the whole hash space");
	}
	memcpy(sm->regions, tmp, n * sizeof(*tmp));
	free(tmp);
	sm->n_regions = n;
	sm->n_nodes = (uint32_t)nodes;
	sm->cluster_id = (uint32_t)cluster;
	sm->bootstrapped = true;
	sm->map_version = 1;
	return 0;
}

static int apply_join(struct sl_ctld_sm *sm, struct json_object *cmd, char *err, size_t err_len)
{
	uint64_t node = 0, cores = 0, lineage = 0;
	struct json_object *lv = NULL;
	const char *addr = get_str(cmd, "address", SL_CTLD_ADDR_MAX - 1);
	if (!sm->bootstrapped)
		REFUSE("join: the cluster is not bootstrapped");
	if (!get_uint(cmd, "node", 1, sm->n_nodes, &node))
		REFUSE("join: node must be an id in 1..%u", sm->n_nodes);
	if (addr == NULL)
		REFUSE("join: address must be a string of at most %u bytes",
		       SL_CTLD_ADDR_MAX - 1);
	if (!get_uint(cmd, "cores", 1, SL_CTLD_MAX_CORES, &cores))
		REFUSE("join: cores must be in 1..%u", SL_CTLD_MAX_CORES);
	if (json_object_object_get_ex(cmd, "lineage_cores", &lv) &&
	    !get_uint(cmd, "lineage_cores", 1, SL_CTLD_MAX_CORES, &lineage))
		REFUSE("join: lineage_cores must be in 1..%u", SL_CTLD_MAX_CORES);
	struct sl_ctld_node *n = &sm->nodes[node];
	snprintf(n->address, sizeof(n->address), "%s", addr);
	n->cores = (uint32_t)cores;
	n->lineage_cores = lineage == cores ? 0 : (uint32_t)lineage;
	n->state = SL_CTLD_UP; /* it just talked to the leader */
	n->joins++;
	return 0;
}

static int apply_node_state(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			    size_t err_len)
{
	uint64_t node = 0;
	struct json_object *up = NULL;
	if (!sm->bootstrapped || !get_uint(cmd, "node", 1, sm->n_nodes, &node))
		REFUSE("node_state: node must be an id in 1..%u", sm->n_nodes);
	if (!json_object_object_get_ex(cmd, "up", &up) ||
	    !json_object_is_type(up, json_type_boolean))
		REFUSE("node_state: up must be true or false");
	if (sm->nodes[node].state == SL_CTLD_EXPECTED)
		REFUSE("node_state: node %" PRIu64 " never joined", node);
	sm->nodes[node].state = json_object_get_boolean(up) ? SL_CTLD_UP : SL_CTLD_DOWN;
	return 0;
}

/* An observed region leader, as the ctld leader saw it in heartbeats: only forward in term
 * (reports may arrive late), one leader per term, and a replica of the region. */
static int apply_set_leader(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			    size_t err_len)
{
	uint64_t region = 0, leader = 0, term = 0;
	if (!sm->bootstrapped || !get_uint(cmd, "region", 0, sm->n_regions - 1, &region))
		REFUSE("set_leader: region must be an id below %u", sm->n_regions);
	if (!get_uint(cmd, "leader", 1, sm->n_nodes, &leader) ||
	    !get_uint(cmd, "term", 0, INT64_MAX, &term))
		REFUSE("set_leader: leader must be a node id, term a number");
	if (refuse_retired(sm, "set_leader", region, err, err_len))
		return -EINVAL;
	struct sl_ctld_region *r = &sm->regions[region];
	bool replica = false;
	for (uint32_t k = 0; k < r->rf; k++)
		replica = replica || r->replicas[k] == leader;
	if (!replica)
		REFUSE("set_leader: node %" PRIu64 " is not a replica of region %" PRIu64, leader,
		       region);
	if (term < r->observed_term ||
	    (term == r->observed_term && r->observed != 0 && r->observed != leader))
		REFUSE("set_leader: region %" PRIu64 " term %" PRIu64 " is behind term %" PRIu64
		       " led by %u",
		       region, term, r->observed_term, r->observed);
	r->observed = (uint32_t)leader;
	r->observed_term = term;
	return 0;
}

/* drain and decommission {node, on}: an operator's flag on a node. A node that never
 * joined may be decommissioned (its replicas move away) but not drained (it leads
 * nothing). */
static int apply_node_flag(struct sl_ctld_sm *sm, struct json_object *cmd, const char *op,
			   char *err, size_t err_len)
{
	uint64_t node = 0;
	struct json_object *on = NULL;
	bool drain = strcmp(op, "drain") == 0;
	if (!sm->bootstrapped || !get_uint(cmd, "node", 1, sm->n_nodes, &node))
		REFUSE("%s: node must be an id in 1..%u", op, sm->n_nodes);
	if (!json_object_object_get_ex(cmd, "on", &on) || !json_object_is_type(on, json_type_boolean))
		REFUSE("%s: on must be true or false", op);
	if (drain && sm->nodes[node].state == SL_CTLD_EXPECTED)
		REFUSE("drain: node %" PRIu64 " never joined", node);
	if (drain)
		sm->nodes[node].draining = json_object_get_boolean(on);
	else
		sm->nodes[node].decommissioning = json_object_get_boolean(on);
	return 0;
}

int sl_ctld_check_transfer(const struct sl_ctld_sm *sm, uint64_t region, uint64_t to,
			   char *err, size_t err_len)
{
	if (!sm->bootstrapped)
		REFUSE("transfer_leader: the cluster is not bootstrapped");
	if (region >= sm->n_regions)
		REFUSE("transfer_leader: region must be an id below %u", sm->n_regions);
	if (refuse_retired(sm, "transfer_leader", region, err, err_len))
		return -EINVAL;
	const struct sl_ctld_region *r = &sm->regions[region];
	if (r->rf < 2)
		REFUSE("transfer_leader: region %" PRIu64 " has one replica (%s on node %u): "
		       "its leader cannot move",
		       region, r->protocol, r->replicas[0]);
	bool replica = false;
	for (uint32_t k = 0; k < r->rf; k++)
		replica = replica || r->replicas[k] == to;
	if (to < 1 || to > sm->n_nodes || !replica)
		REFUSE("transfer_leader: node %" PRIu64 " is not a replica of region %" PRIu64
		       " (replicas: %u,%u,%u)",
		       to, region, r->replicas[0], r->rf > 1 ? r->replicas[1] : 0,
		       r->rf > 2 ? r->replicas[2] : 0);
	if (sm->nodes[to].state != SL_CTLD_UP)
		REFUSE("transfer_leader: node %" PRIu64 " is %s: a leader cannot move there", to,
		       sl_ctld_state_name(sm->nodes[to].state));
	if (sm->nodes[to].draining)
		REFUSE("transfer_leader: node %" PRIu64 " is draining its leaders (undrain it first)",
		       to);
	if (sm->nodes[to].decommissioning)
		REFUSE("transfer_leader: node %" PRIu64 " is being decommissioned (recommission it "
		       "first)",
		       to);
	if (sl_ctld_switching(sm, (uint32_t)region))
		REFUSE("transfer_leader: region %" PRIu64 " is switching to %s: a protocol switch "
		       "is in progress (see moves)",
		       region, r->next_protocol[0] ? r->next_protocol : r->protocol);
	return 0;
}

/* The running switch (protocol or replica move) of a region (UINT32_MAX: of any region),
 * if the ring still has one. */
static struct sl_ctld_move *switch_move(const struct sl_ctld_sm *sm, uint32_t region)
{
	for (uint64_t k = sm->n_moves > SL_CTLD_MAX_MOVES ? sm->n_moves - SL_CTLD_MAX_MOVES + 1 : 1;
	     k <= sm->n_moves; k++) {
		const struct sl_ctld_move *m = sl_ctld_move_get(sm, k);
		/* a merge switches its region and the neighbour it takes */
		if (m != NULL &&
		    (region == UINT32_MAX || m->region == region ||
		     (sl_ctld_move_is_merge(m->kind) && m->merge_with == region + 1)) &&
		    sl_ctld_move_is_switch(m->kind) && m->state == SL_CTLD_MOVE_RUNNING &&
		    (region != UINT32_MAX || replica_kind(m->kind)))
			return (struct sl_ctld_move *)m;
	}
	return NULL;
}

uint32_t sl_ctld_split_child(const struct sl_ctld_sm *sm, const struct sl_ctld_move *m)
{
	if (!sl_ctld_move_is_split(m->kind) || m->split_at == 0)
		return UINT32_MAX;
	/* only the new half starts at the cut in the segment after the sealed one (a region
	 * merged back and split there again made another at the same place, later) */
	for (uint32_t i = 0; i < sm->n_regions; i++)
		if (sm->regions[i].split_from == m->region + 1 &&
		    sm->regions[i].hash_lo == m->split_at &&
		    sm->regions[i].split_epoch == m->epoch + 1)
			return i;
	return UINT32_MAX;
}

/* The region was born of a split whose move still runs (its nodes may not have it yet). */
static bool split_child_waiting(const struct sl_ctld_sm *sm, uint32_t region)
{
	const struct sl_ctld_region *r = &sm->regions[region];
	if (r->split_from == 0)
		return false;
	const struct sl_ctld_move *m = switch_move(sm, r->split_from - 1);
	return m != NULL && sl_ctld_move_is_split(m->kind) && m->split_at == r->hash_lo &&
	       m->epoch + 1 == r->split_epoch;
}

bool sl_ctld_switching(const struct sl_ctld_sm *sm, uint32_t region)
{
	return region < sm->n_regions &&
	       (sm->regions[region].next_protocol[0] != '\0' || switch_move(sm, region) != NULL ||
		split_child_waiting(sm, region));
}

bool sl_ctld_replica_move_running(const struct sl_ctld_sm *sm)
{
	for (uint32_t i = 0; i < sm->n_regions; i++)
		if (sm->regions[i].next_rf != 0)
			return true;
	return switch_move(sm, UINT32_MAX) != NULL;
}

static bool is_replica_of(const uint32_t *ids, uint32_t n, uint64_t node)
{
	for (uint32_t k = 0; k < n; k++)
		if (ids[k] == node)
			return true;
	return false;
}

static bool is_replica(const struct sl_ctld_region *r, uint64_t node)
{
	return is_replica_of(r->replicas, r->rf, node);
}

uint32_t sl_ctld_node_replicas(const struct sl_ctld_sm *sm, uint32_t node)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < sm->n_regions; i++)
		n += !sl_ctld_region_retired(sm, i) && is_replica(&sm->regions[i], node);
	return n;
}

/* A node that may take a replica (or a leader): up, not drained, not decommissioned. */
static bool node_takes(const struct sl_ctld_sm *sm, uint32_t node)
{
	const struct sl_ctld_node *n = &sm->nodes[node];
	return n->state == SL_CTLD_UP && !n->draining && !n->decommissioning;
}

#define BUSY(...)                                                                           \
	do {                                                                                \
		snprintf(err, err_len, __VA_ARGS__);                                        \
		return -EBUSY;                                                              \
	} while (0)

/* A protocol whose replicas move: raft (a learner caught up, then the seal) and
 * multileader (the seal, then a joiner that catches up in the next segment). */
static bool moves_protocol(const struct sl_ctld_region *r)
{
	return strcmp(r->protocol, "raft") == 0 || strcmp(r->protocol, "multileader") == 0;
}

/* A multileader region's seal ends every replica's stream, so each must be up: the first
 * that is not (0: all are, or the region is not multileader). */
static uint32_t ml_replica_down(const struct sl_ctld_sm *sm, const struct sl_ctld_region *r)
{
	if (strcmp(r->protocol, "multileader") != 0)
		return 0;
	for (uint32_t k = 0; k < r->rf; k++)
		if (r->replicas[k] <= SL_CTLD_MAX_NODES &&
		    sm->nodes[r->replicas[k]].state != SL_CTLD_UP)
			return r->replicas[k];
	return 0;
}

int sl_ctld_check_move_replica(const struct sl_ctld_sm *sm, uint64_t region, uint64_t from,
			       uint64_t to, char *err, size_t err_len)
{
	if (!sm->bootstrapped)
		BUSY("move_replica: the cluster is not bootstrapped");
	if (region >= sm->n_regions) {
		snprintf(err, err_len, "move_replica: no region %" PRIu64 " (ids are below %u)",
			 region, sm->n_regions);
		return -ENOENT;
	}
	if (refuse_retired(sm, "move_replica", region, err, err_len))
		return -EINVAL;
	const struct sl_ctld_region *r = &sm->regions[region];
	/* a new member catches up from the others: raft's learner, then snapshot and log;
	 * multileader's joiner, which asks for the segment's base image and takes the streams.
	 * A standalone region has no copy to catch up from */
	if (!moves_protocol(r))
		BUSY("move_replica: region %" PRIu64 " runs %s: switch it to raft or multileader "
		     "first",
		     region, r->protocol);
	uint32_t down = ml_replica_down(sm, r);
	if (down != 0)
		BUSY("move_replica: region %" PRIu64 " runs multileader, whose seal needs every "
		     "replica: node %u is %s (bring it back, or switch the region to raft)",
		     region, down, sl_ctld_state_name(sm->nodes[down].state));
	if (r->rf < 2)
		BUSY("move_replica: region %" PRIu64 " has one replica: a new one would have no "
		     "copy to catch up from",
		     region);
	if (!is_replica(r, from)) /* replicas are node ids: 0 and others are not */
		REFUSE("move_replica: node %" PRIu64 " is not a replica of region %" PRIu64
		       " (replicas: %u,%u,%u)",
		       from, region, r->replicas[0], r->rf > 1 ? r->replicas[1] : 0,
		       r->rf > 2 ? r->replicas[2] : 0);
	if (to < 1 || to > sm->n_nodes)
		REFUSE("move_replica: node %" PRIu64 " is not a node of the cluster (ids 1..%u)", to,
		       sm->n_nodes);
	if (is_replica(r, to))
		REFUSE("move_replica: node %" PRIu64 " is a replica of region %" PRIu64 " already",
		       to, region);
	const struct sl_ctld_node *n = &sm->nodes[to];
	if (n->state != SL_CTLD_UP)
		BUSY("move_replica: node %" PRIu64 " is %s: a replica cannot move there", to,
		     n->state == SL_CTLD_EXPECTED ? "expected (it never joined)"
						  : sl_ctld_state_name(n->state));
	if (n->draining)
		BUSY("move_replica: node %" PRIu64 " is draining (undrain it first)", to);
	if (n->decommissioning)
		BUSY("move_replica: node %" PRIu64 " is being decommissioned (recommission it first)",
		     to);
	if (sl_ctld_switching(sm, (uint32_t)region))
		BUSY("move_replica: region %" PRIu64 " has a switch in progress (see moves)", region);
	return 0;
}

/* Records switch move `id` of `kind` of the region, running since at_ms: it seals the
 * region's active segment (the move's epoch) and the next runs `protocol`. The region's
 * next protocol set makes it a switch for every path that seals a segment (the nodes
 * fetch the map again: its version moves). */
static struct sl_ctld_move *switch_start(struct sl_ctld_sm *sm, uint64_t id, uint32_t kind,
					 uint32_t region, uint64_t at_ms, const char *protocol)
{
	struct sl_ctld_region *r = &sm->regions[region];
	struct sl_ctld_move *m = &sm->moves[(id - 1) % SL_CTLD_MAX_MOVES];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->kind = kind;
	m->region = region;
	m->start_ms = at_ms;
	m->state = SL_CTLD_MOVE_RUNNING;
	memcpy(m->from_protocol, r->protocol, sizeof(m->from_protocol));
	snprintf(m->to_protocol, sizeof(m->to_protocol), "%s", protocol);
	m->epoch = r->epoch;
	sm->n_moves = id;
	snprintf(r->next_protocol, sizeof(r->next_protocol), "%s", protocol);
	sm->map_version++;
	return m;
}

/* A replica move: a switch to the same protocol whose next segment runs on the replicas
 * with from replaced by to (in from's position); recorded as a running move. */
static int apply_move_replica(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			      size_t err_len)
{
	uint64_t id = 0, region = 0, from = 0, to = 0, at = 0;
	const char *kind = get_str(cmd, "kind", 16);
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) ||
	    !get_uint(cmd, "region", 0, UINT32_MAX, &region) ||
	    !get_uint(cmd, "from", 0, UINT32_MAX, &from) ||
	    !get_uint(cmd, "to", 0, UINT32_MAX, &to) || !get_uint(cmd, "at_ms", 0, INT64_MAX, &at))
		REFUSE("move_replica: id, region, from, to and at_ms must be numbers");
	uint32_t k = SL_CTLD_MOVE_REPLICA;
	while (k <= SL_CTLD_MOVE_REBALANCE && (kind == NULL || strcmp(kind, move_kind_name(k)) != 0))
		k++;
	if (k > SL_CTLD_MOVE_REBALANCE)
		REFUSE("move_replica: kind must be \"replica\", \"decommission\" or \"rebalance\"");
	if (id <= sm->n_moves) /* as transfer_leader: a stale proposal */
		REFUSE("move_replica: move %" PRIu64 " is not after the last one (%" PRIu64 ")", id,
		       sm->n_moves);
	if (sl_ctld_check_move_replica(sm, region, from, to, err, err_len) != 0)
		return -EINVAL;
	struct sl_ctld_region *r = &sm->regions[region];
	struct sl_ctld_move *m = switch_start(sm, id, k, (uint32_t)region, at, r->protocol);
	m->from = (uint32_t)from;
	m->to = (uint32_t)to;
	r->next_rf = r->rf;
	for (uint32_t j = 0; j < r->rf; j++)
		r->next_replicas[j] = r->replicas[j] == from ? (uint32_t)to : r->replicas[j];
	struct json_object *lv = NULL;
	if (json_object_object_get_ex(cmd, "learner", &lv) && json_object_get_boolean(lv) &&
	    strcmp(r->protocol, "raft") == 0) {
		/* the seal waits for the learner to catch up (learner_ready); a multileader
		 * region seals at once, its new replica joins the next segment */
		r->learner = (uint32_t)to;
		r->next_protocol[0] = '\0';
	}
	return 0;
}

/* The replica move's learner caught up: the seal is asked (as for any switch). */
static int apply_learner_ready(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			       size_t err_len)
{
	uint64_t id = 0, region = 0, at = 0;
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) ||
	    !get_uint(cmd, "region", 0, UINT32_MAX, &region) || !get_uint(cmd, "at_ms", 0, INT64_MAX, &at))
		REFUSE("learner_ready: id, region and at_ms must be numbers");
	const struct sl_ctld_move *m = sl_ctld_move_get(sm, id);
	if (m == NULL || m->state != SL_CTLD_MOVE_RUNNING || !replica_kind(m->kind) ||
	    m->region != region || region >= sm->n_regions)
		REFUSE("learner_ready: move %" PRIu64 " is not a running replica move of region %" PRIu64,
		       id, region);
	struct sl_ctld_region *r = &sm->regions[region];
	if (r->learner == 0 || r->learner != m->to || r->next_protocol[0] != '\0')
		REFUSE("learner_ready: region %" PRIu64 " has no learner catching up", region);
	memcpy(r->next_protocol, r->protocol, sizeof(r->next_protocol));
	sm->map_version++;
	return 0;
}

/* The protocols a region may switch to: the ones a data node runs a segment under. */
static bool switchable_protocol(const char *p)
{
	return strcmp(p, "standalone") == 0 || strcmp(p, "raft") == 0 ||
	       strcmp(p, "multileader") == 0;
}

int sl_ctld_check_set_protocol(const struct sl_ctld_sm *sm, uint64_t region,
			       const char *protocol, char *err, size_t err_len)
{
	if (!sm->bootstrapped) {
		snprintf(err, err_len, "set_protocol: the cluster is not bootstrapped");
		return -EBUSY;
	}
	if (region >= sm->n_regions) {
		snprintf(err, err_len, "set_protocol: no region %" PRIu64 " (ids are below %u)",
			 region, sm->n_regions);
		return -ENOENT;
	}
	if (refuse_retired(sm, "set_protocol", region, err, err_len))
		return -EINVAL;
	if (protocol == NULL || !switchable_protocol(protocol))
		REFUSE("set_protocol: protocol must be standalone, raft or multileader");
	const struct sl_ctld_region *r = &sm->regions[region];
	int rc = -EBUSY;
	if (strcmp(protocol, r->protocol) == 0)
		snprintf(err, err_len, "set_protocol: region %" PRIu64 " runs %s already", region,
			 protocol);
	else if (sl_ctld_switching(sm, (uint32_t)region))
		snprintf(err, err_len, "set_protocol: region %" PRIu64 " has a protocol switch in "
			 "progress (to %s, see moves)",
			 region, r->next_protocol[0] ? r->next_protocol : r->protocol);
	else if (r->rf > sl_cons_max_copies(sl_cons_find(protocol)))
		snprintf(err, err_len, "set_protocol: region %" PRIu64 " has %u copies and %s keeps "
			 "one (changing the copies is a membership change, not a protocol switch)",
			 region, r->rf, protocol);
	else
		rc = 0;
	return rc;
}

/* An operator's protocol switch: recorded as a running move; the region's next protocol
 * is set, so the nodes (fetching the map again) seal its active segment. */
static int apply_set_protocol(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			      size_t err_len)
{
	uint64_t id = 0, region = 0, at = 0;
	const char *proto = get_str(cmd, "protocol", SL_CTLD_PROTO_MAX - 1);
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) ||
	    !get_uint(cmd, "region", 0, UINT32_MAX, &region) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at) || proto == NULL)
		REFUSE("set_protocol: id, region and at_ms must be numbers, protocol a name");
	if (id <= sm->n_moves) /* as transfer_leader: a stale proposal */
		REFUSE("set_protocol: move %" PRIu64 " is not after the last one (%" PRIu64 ")", id,
		       sm->n_moves);
	if (sl_ctld_check_set_protocol(sm, region, proto, err, err_len) != 0)
		return -EINVAL;
	(void)switch_start(sm, id, SL_CTLD_MOVE_PROTOCOL, (uint32_t)region, at, proto);
	return 0;
}

int sl_ctld_check_move_core(const struct sl_ctld_sm *sm, uint64_t region, uint64_t core,
			    char *err, size_t err_len)
{
	if (!sm->bootstrapped) {
		snprintf(err, err_len, "move_core: the cluster is not bootstrapped");
		return -EBUSY;
	}
	if (region >= sm->n_regions) {
		snprintf(err, err_len, "move_core: no region %" PRIu64 " (ids are below %u)", region,
			 sm->n_regions);
		return -ENOENT;
	}
	if (refuse_retired(sm, "move_core", region, err, err_len))
		return -EINVAL;
	const struct sl_ctld_region *r = &sm->regions[region];
	/* every node runs the region on the same core (a non-replica forwards its writes
	 * from there): each must have it */
	uint32_t cores = 0;
	for (uint32_t nd = 1; nd <= sm->n_nodes; nd++) {
		if (sm->nodes[nd].cores == 0)
			BUSY("move_core: node %u has not joined: its cores are unknown", nd);
		if (core >= sm->nodes[nd].cores)
			REFUSE("move_core: node %u has %u worker cores (0..%u): no core %" PRIu64, nd,
			       sm->nodes[nd].cores, sm->nodes[nd].cores - 1, core);
		cores = sl_ctld_node_lineage(&sm->nodes[nd]);
	}
	if (strcmp(r->protocol, "raft") != 0 && strcmp(r->protocol, "standalone") != 0)
		BUSY("move_core: region %" PRIu64 " runs %s: only raft and standalone regions move "
		     "between cores (switch it to raft first)",
		     region, r->protocol);
	if (sl_ctld_switching(sm, (uint32_t)region))
		BUSY("move_core: region %" PRIu64 " has a switch in progress (see moves)", region);
	if (sl_ctld_region_core(sm, (uint32_t)region, cores) == core)
		BUSY("move_core: region %" PRIu64 " runs on core %" PRIu64 " already", region, core);
	return 0;
}

/* A core move: a switch to the same protocol whose next segment runs on another core. */
static int apply_move_core(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			   size_t err_len)
{
	uint64_t id = 0, region = 0, core = 0, at = 0;
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) ||
	    !get_uint(cmd, "region", 0, UINT32_MAX, &region) ||
	    !get_uint(cmd, "core", 0, SL_CTLD_MAX_CORES - 1, &core) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at))
		REFUSE("move_core: id, region, core and at_ms must be numbers (core below %u)",
		       SL_CTLD_MAX_CORES);
	if (id <= sm->n_moves) /* as transfer_leader: a stale proposal */
		REFUSE("move_core: move %" PRIu64 " is not after the last one (%" PRIu64 ")", id,
		       sm->n_moves);
	if (sl_ctld_check_move_core(sm, region, core, err, err_len) != 0)
		return -EINVAL;
	struct sl_ctld_region *r = &sm->regions[region];
	struct sl_ctld_move *m =
		switch_start(sm, id, SL_CTLD_MOVE_CORE, (uint32_t)region, at, r->protocol);
	m->core = (uint32_t)core + 1;
	r->next_core = (uint32_t)core + 1;
	return 0;
}

/* Every replica sealed the active segment: the next one, epoch + 1, runs next_protocol. */
static int apply_protocol_switched(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
				   size_t err_len)
{
	uint64_t region = 0, epoch = 0, at = 0;
	const char *proto = get_str(cmd, "protocol", SL_CTLD_PROTO_MAX - 1);
	if (!sm->bootstrapped || !get_uint(cmd, "region", 0, sm->n_regions - 1, &region))
		REFUSE("protocol_switched: region must be an id below %u", sm->n_regions);
	if (!get_uint(cmd, "epoch", 1, UINT32_MAX, &epoch) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at) || proto == NULL)
		REFUSE("protocol_switched: epoch and at_ms must be numbers, protocol a name");
	struct sl_ctld_region *r = &sm->regions[region];
	if (r->next_protocol[0] == '\0' || strcmp(proto, r->next_protocol) != 0 ||
	    epoch != (uint64_t)r->epoch + 1)
		REFUSE("protocol_switched: region %" PRIu64 " is at epoch %u switching to '%s', "
		       "not to %s at epoch %" PRIu64,
		       region, r->epoch, r->next_protocol, proto, epoch);
	if (r->split_at != 0)
		REFUSE("protocol_switched: region %" PRIu64 " is being split (split_done ends it)",
		       region);
	if (r->merge_with != 0 || sl_ctld_merging_into(sm, (uint32_t)region) != UINT32_MAX)
		REFUSE("protocol_switched: region %" PRIu64 " is being merged (merge_done ends it)",
		       region);
	memcpy(r->protocol, r->next_protocol, sizeof(r->protocol)); /* same size, NUL-ended */
	r->next_protocol[0] = '\0';
	r->epoch = (uint32_t)epoch;
	r->learner = 0; /* a replica of the new segment now */
	if (r->next_core != 0) { /* a core move: the new segment runs there */
		r->core = r->next_core;
		r->next_core = 0;
	}
	if (r->next_rf != 0) {
		/* the new segment runs on the new replica set; the preferred leader stays if it
		 * is still a replica, else the first that was one before (it has the data) */
		struct sl_ctld_region old = *r;
		memcpy(r->replicas, r->next_replicas, sizeof(r->replicas));
		r->rf = r->next_rf;
		r->next_rf = 0;
		memset(r->next_replicas, 0, sizeof(r->next_replicas));
		if (!is_replica(r, r->leader))
			for (uint32_t k = r->rf; k-- > 0;)
				if (is_replica(&old, r->replicas[k]))
					r->leader = r->replicas[k];
		if (r->observed != 0 && !is_replica(r, r->observed))
			r->observed = 0;
	}
	sm->map_version++;
	return 0;
}

int sl_ctld_check_split(const struct sl_ctld_sm *sm, uint64_t region, uint64_t at, bool has_at,
			uint64_t *at_out, char *err, size_t err_len)
{
	if (!sm->bootstrapped)
		BUSY("split: the cluster is not bootstrapped");
	if (region >= sm->n_regions) {
		snprintf(err, err_len, "split: no region %" PRIu64 " (ids are below %u)", region,
			 sm->n_regions);
		return -ENOENT;
	}
	if (refuse_retired(sm, "split", region, err, err_len))
		return -EINVAL;
	const struct sl_ctld_region *r = &sm->regions[region];
	/* a multileader region's writes land on every replica: no single sealed store to cut */
	if (strcmp(r->protocol, "raft") != 0 && strcmp(r->protocol, "standalone") != 0)
		BUSY("split: region %" PRIu64 " runs %s: switch it to raft first", region,
		     r->protocol);
	if (sl_ctld_switching(sm, (uint32_t)region))
		BUSY("split: region %" PRIu64 " has a switch in progress (see moves)", region);
	if (sl_ctld_replica_move_running(sm))
		BUSY("split: a replica move is running (see moves); split once it ended");
	if (sm->n_regions >= SL_CTLD_MAX_REGIONS) {
		snprintf(err, err_len, "split: the map has %u regions, the most it holds",
			 sm->n_regions);
		return -ENOSPC;
	}
	if (r->hash_lo == r->hash_hi)
		REFUSE("split: region %" PRIu64 " covers the single hash 0x%016" PRIx64
		       ": nothing to cut",
		       region, r->hash_lo);
	if (!has_at)
		at = r->hash_lo + (r->hash_hi - r->hash_lo) / 2 + 1;
	if (at <= r->hash_lo || at > r->hash_hi)
		REFUSE("split: at 0x%016" PRIx64 " is not inside region %" PRIu64 " (it must be "
		       "above 0x%016" PRIx64 " and at most 0x%016" PRIx64 ")",
		       at, region, r->hash_lo, r->hash_hi);
	*at_out = at;
	return 0;
}

/* A split (an operator's, or ctld's own with kind "auto-split" and why): a switch to the
 * same protocol, recorded as a running move; the next protocol set makes the nodes seal
 * the region's active segment, split_at says the next one is cut in two. */
static int apply_split(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
		       size_t err_len)
{
	uint64_t id = 0, region = 0, at = 0, at_ms = 0;
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) ||
	    !get_uint(cmd, "region", 0, UINT32_MAX, &region) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at_ms) ||
	    !sl_ctld_parse_hash(get_str(cmd, "at", 18), &at))
		REFUSE("split: id, region and at_ms must be numbers, at a hash (0x and 16 hex "
		       "digits)");
	/* kind: absent (an operator's) or "auto-split" with a why */
	const char *kind = get_str(cmd, "kind", 16), *why = get_str(cmd, "why", 4096);
	if (json_object_object_get_ex(cmd, "kind", NULL) &&
	    (kind == NULL || strcmp(kind, move_kind_name(SL_CTLD_MOVE_AUTOSPLIT)) != 0 ||
	     why == NULL))
		REFUSE("split: kind must be \"auto-split\" (with a why) or absent");
	if (id <= sm->n_moves) /* as transfer_leader: a stale proposal */
		REFUSE("split: move %" PRIu64 " is not after the last one (%" PRIu64 ")", id,
		       sm->n_moves);
	if (sl_ctld_check_split(sm, region, at, true, &at, err, err_len) != 0)
		return -EINVAL;
	struct sl_ctld_region *r = &sm->regions[region];
	struct sl_ctld_move *m =
	    switch_start(sm, id, kind != NULL ? SL_CTLD_MOVE_AUTOSPLIT : SL_CTLD_MOVE_SPLIT,
			 (uint32_t)region, at_ms, r->protocol);
	m->split_at = at;
	if (kind != NULL)
		snprintf(m->why, sizeof(m->why), "%s", why);
	r->split_at = at;
	return 0;
}

/* Every replica sealed the region's active segment: segment epoch + 1 runs in two
 * regions, the region on [hash_lo, at - 1] and a new one (id n_regions) on [at, hash_hi],
 * with the same protocol, replicas and preferred leader. */
static int apply_split_done(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			    size_t err_len)
{
	uint64_t region = 0, epoch = 0, at = 0, new_id = 0, at_ms = 0;
	if (!sm->bootstrapped || !get_uint(cmd, "region", 0, sm->n_regions - 1, &region))
		REFUSE("split_done: region must be an id below %u", sm->n_regions);
	if (!get_uint(cmd, "epoch", 1, UINT32_MAX, &epoch) ||
	    !get_uint(cmd, "new_region", 0, UINT32_MAX, &new_id) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at_ms) ||
	    !sl_ctld_parse_hash(get_str(cmd, "at", 18), &at))
		REFUSE("split_done: epoch, new_region and at_ms must be numbers, at a hash");
	struct sl_ctld_region *r = &sm->regions[region];
	if (r->split_at == 0 || r->split_at != at || epoch != (uint64_t)r->epoch + 1)
		REFUSE("split_done: region %" PRIu64 " is at epoch %u splitting at 0x%016" PRIx64
		       ", not at 0x%016" PRIx64 " into epoch %" PRIu64,
		       region, r->epoch, r->split_at, at, epoch);
	if (new_id != sm->n_regions || sm->n_regions >= SL_CTLD_MAX_REGIONS)
		REFUSE("split_done: the new region must be %u (below %u), not %" PRIu64,
		       sm->n_regions, SL_CTLD_MAX_REGIONS, new_id);
	struct sl_ctld_region *n = &sm->regions[new_id];
	memset(n, 0, sizeof(*n));
	n->hash_lo = at;
	n->hash_hi = r->hash_hi;
	memcpy(n->protocol, r->protocol, sizeof(n->protocol));
	n->rf = r->rf;
	memcpy(n->replicas, r->replicas, sizeof(n->replicas));
	n->leader = r->leader;
	n->epoch = (uint32_t)epoch; /* its log starts at segment epoch, as the region's */
	n->split_from = (uint32_t)region + 1;
	n->split_epoch = (uint32_t)epoch;
	n->core = r->core; /* on its parent's core */
	sm->n_regions++;
	r->hash_hi = at - 1;
	r->epoch = (uint32_t)epoch;
	r->next_protocol[0] = '\0';
	r->split_at = 0;
	sm->map_version++;
	return 0;
}

/* Node ids as "1,2,3" (the replica sets a refusal names). */
static void fmt_ids(char *b, size_t len, const uint32_t *ids, uint32_t n)
{
	b[0] = '\0';
	for (uint32_t k = 0; k < n; k++) {
		size_t at = strlen(b);
		snprintf(b + at, len - at, "%s%u", k ? "," : "", ids[k]);
	}
}

/* The live region whose range starts right above region's (the live ranges tile the hash
 * space: exactly one does, a retired region may have started there too, once); UINT32_MAX
 * when region ends at the top, or the map is damaged. */
static uint32_t right_neighbour(const struct sl_ctld_sm *sm, uint32_t region)
{
	const struct sl_ctld_region *r = &sm->regions[region];
	if (r->hash_hi == UINT64_MAX)
		return UINT32_MAX;
	for (uint32_t i = 0; i < sm->n_regions; i++)
		if (!sl_ctld_region_retired(sm, i) && sm->regions[i].hash_lo == r->hash_hi + 1)
			return i;
	return UINT32_MAX;
}

int sl_ctld_check_merge(const struct sl_ctld_sm *sm, uint64_t region, uint32_t *with,
			char *err, size_t err_len)
{
	if (!sm->bootstrapped)
		BUSY("merge: the cluster is not bootstrapped");
	if (region >= sm->n_regions) {
		snprintf(err, err_len, "merge: no region %" PRIu64 " (ids are below %u)", region,
			 sm->n_regions);
		return -ENOENT;
	}
	if (refuse_retired(sm, "merge", region, err, err_len))
		return -EINVAL;
	const struct sl_ctld_region *r = &sm->regions[region];
	if (r->hash_hi == UINT64_MAX)
		REFUSE("merge: region %" PRIu64 " has no right neighbour: it ends at the top of the "
		       "hash space (0xffffffffffffffff); merge the region on its left into it "
		       "instead",
		       region);
	uint32_t sid = right_neighbour(sm, (uint32_t)region);
	if (sid == UINT32_MAX)
		REFUSE("merge: no live region starts at 0x%016" PRIx64 " (above region %" PRIu64
		       "): the map is damaged",
		       r->hash_hi + 1, region);
	const struct sl_ctld_region *s = &sm->regions[sid];
	/* the merged segment is one sealed store of each, joined: not multileader's copies */
	if (strcmp(r->protocol, "raft") != 0 && strcmp(r->protocol, "standalone") != 0)
		BUSY("merge: region %" PRIu64 " runs %s: switch it to raft first (only raft and "
		     "standalone regions merge)", region, r->protocol);
	if (strcmp(s->protocol, "raft") != 0 && strcmp(s->protocol, "standalone") != 0)
		BUSY("merge: region %u (right of region %" PRIu64 ") runs %s: switch it to raft "
		     "first (only raft and standalone regions merge)", sid, region, s->protocol);
	if (strcmp(r->protocol, s->protocol) != 0)
		BUSY("merge: region %" PRIu64 " runs %s and region %u runs %s: switch one of them "
		     "first (both must run the same protocol)", region, r->protocol, sid,
		     s->protocol);
	bool same = r->rf == s->rf;
	for (uint32_t k = 0; k < r->rf && same; k++)
		same = is_replica(s, r->replicas[k]);
	if (!same) {
		char a[48], b[48];
		fmt_ids(a, sizeof(a), r->replicas, r->rf);
		fmt_ids(b, sizeof(b), s->replicas, s->rf);
		BUSY("merge: region %" PRIu64 " (replicas %s) and region %u (replicas %s) have "
		     "different replica sets: move replicas first (region move-replica)",
		     region, a, sid, b);
	}
	/* a node runs a region on one core (sl_ctld_region_core): a merged region's store is
	 * the two sealed ones joined in place, which only one core can do; a node with no
	 * replica hands the points waiting for the merged-away region to the other on the
	 * same core, so the rule holds for every node that joined */
	for (uint32_t k = 0; k < r->rf; k++)
		if (sm->nodes[r->replicas[k]].cores == 0)
			BUSY("merge: node %u has not joined: the cores of regions %" PRIu64 " and %u "
			     "on it are unknown", r->replicas[k], region, sid);
	for (uint32_t nd = 1; nd <= SL_CTLD_MAX_NODES; nd++) {
		uint32_t cores = sl_ctld_node_lineage(&sm->nodes[nd]);
		if (cores == 0)
			continue;
		uint32_t cr = sl_ctld_region_core(sm, (uint32_t)region, cores),
			 cs = sl_ctld_region_core(sm, sid, cores);
		if (cr != cs)
			BUSY("merge: on node %u region %" PRIu64 " runs on core %u and region %u on "
			     "core %u: merging regions on different cores is not supported yet",
			     nd, region, cr, sid, cs);
	}
	uint32_t ids[2] = {(uint32_t)region, sid};
	for (uint32_t k = 0; k < 2; k++) {
		if (split_child_waiting(sm, ids[k]))
			BUSY("merge: region %u was made by a split whose move still runs (see "
			     "moves); merge once it is done", ids[k]);
		if (sl_ctld_switching(sm, ids[k]))
			BUSY("merge: region %u has a switch, split or merge in progress (see moves)",
			     ids[k]);
	}
	if (sl_ctld_replica_move_running(sm))
		BUSY("merge: a replica move is running (see moves); merge once it ended");
	*with = sid;
	return 0;
}

/* A merge: both regions switch to their own protocol (so every replica seals both active
 * segments), recorded as a running move of the left one; merge_with says the next
 * segment of the left one covers both ranges. */
static int apply_merge(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
		       size_t err_len)
{
	uint64_t id = 0, region = 0, with = 0, at_ms = 0;
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) ||
	    !get_uint(cmd, "region", 0, UINT32_MAX, &region) ||
	    !get_uint(cmd, "with", 0, UINT32_MAX, &with) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at_ms))
		REFUSE("merge: id, region, with and at_ms must be numbers");
	/* kind: absent (an operator's) or "auto-merge" with a why */
	const char *kind = get_str(cmd, "kind", 16), *why = get_str(cmd, "why", 4096);
	if (json_object_object_get_ex(cmd, "kind", NULL) &&
	    (kind == NULL || strcmp(kind, move_kind_name(SL_CTLD_MOVE_AUTOMERGE)) != 0 ||
	     why == NULL))
		REFUSE("merge: kind must be \"auto-merge\" (with a why) or absent");
	if (id <= sm->n_moves) /* as transfer_leader: a stale proposal */
		REFUSE("merge: move %" PRIu64 " is not after the last one (%" PRIu64 ")", id,
		       sm->n_moves);
	uint32_t sid = 0;
	if (sl_ctld_check_merge(sm, region, &sid, err, err_len) != 0)
		return -EINVAL;
	if (with != sid)
		REFUSE("merge: the right neighbour of region %" PRIu64 " is region %u, not %" PRIu64,
		       region, sid, with);
	struct sl_ctld_region *r = &sm->regions[region], *s = &sm->regions[sid];
	struct sl_ctld_move *m =
	    switch_start(sm, id, kind != NULL ? SL_CTLD_MOVE_AUTOMERGE : SL_CTLD_MOVE_MERGE,
			 (uint32_t)region, at_ms, r->protocol);
	m->merge_with = sid + 1;
	if (kind != NULL)
		snprintf(m->why, sizeof(m->why), "%s", why);
	/* the neighbour seals too: its replicas take no more writes in its segment */
	memcpy(s->next_protocol, s->protocol, sizeof(s->next_protocol));
	r->merge_with = sid + 1;
	return 0;
}

/* Every replica sealed both regions' active segments: the left one's segment epoch + 1
 * covers both ranges; the right one is retired (its epoch, range and replicas kept). */
static int apply_merge_done(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			    size_t err_len)
{
	uint64_t region = 0, with = 0, epoch = 0, at_ms = 0;
	if (!sm->bootstrapped || !get_uint(cmd, "region", 0, sm->n_regions - 1, &region) ||
	    !get_uint(cmd, "with", 0, sm->n_regions - 1, &with))
		REFUSE("merge_done: region and with must be ids below %u", sm->n_regions);
	if (!get_uint(cmd, "epoch", 1, UINT32_MAX, &epoch) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at_ms))
		REFUSE("merge_done: epoch and at_ms must be numbers");
	struct sl_ctld_region *r = &sm->regions[region], *s = &sm->regions[with];
	if (r->merge_with != with + 1 || epoch != (uint64_t)r->epoch + 1)
		REFUSE("merge_done: region %" PRIu64 " is at epoch %u with merge_with %u (id + 1, "
		       "0: none), not merging region %" PRIu64 " into epoch %" PRIu64,
		       region, r->epoch, r->merge_with, with, epoch);
	r->hash_hi = s->hash_hi;
	r->epoch = (uint32_t)epoch;
	r->next_protocol[0] = '\0';
	r->merge_with = 0;
	s->merged_into = (uint32_t)region + 1;
	s->merge_epoch = (uint32_t)epoch;
	s->next_protocol[0] = '\0';
	sm->map_version++;
	return 0;
}

/* An operator's leader move: the preferred leader changes in the map (nodes pick it up
 * from their next heartbeat answer and the region's leader hands over); a move still
 * running for the region is superseded. */
static int apply_transfer_leader(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
				 size_t err_len)
{
	uint64_t id = 0, region = 0, to = 0, from = 0, at = 0;
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) || !get_uint(cmd, "region", 0, UINT32_MAX, &region) ||
	    !get_uint(cmd, "to", 0, UINT32_MAX, &to) || !get_uint(cmd, "from", 0, UINT32_MAX, &from) ||
	    !get_uint(cmd, "at_ms", 0, INT64_MAX, &at))
		REFUSE("transfer_leader: id, region, to, from and at_ms must be numbers");
	/* ids only go up (one lost with its proposal leaves a gap); a proposal of an earlier
	 * ctld leader that commits after a later one's is stale */
	if (id <= sm->n_moves)
		REFUSE("transfer_leader: move %" PRIu64 " is not after the last one (%" PRIu64 ")",
		       id, sm->n_moves);
	const char *kind = NULL;
	struct json_object *kv = NULL;
	if (json_object_object_get_ex(cmd, "kind", &kv) &&
	    ((kind = get_str(cmd, "kind", 16)) == NULL ||
	     (strcmp(kind, "balance") != 0 && strcmp(kind, "drain") != 0)))
		REFUSE("transfer_leader: kind must be \"balance\", \"drain\" or absent");
	/* ctld's own move may say why it runs (the balance by rate: the loads) */
	const char *why = NULL;
	if (json_object_object_get_ex(cmd, "why", NULL) &&
	    (kind == NULL || (why = get_str(cmd, "why", 4096)) == NULL))
		REFUSE("transfer_leader: why is a string, on a move with a kind");
	int rc = sl_ctld_check_transfer(sm, region, to, err, err_len);
	if (rc != 0)
		return rc;
	for (uint64_t k = sm->n_moves > SL_CTLD_MAX_MOVES ? sm->n_moves - SL_CTLD_MAX_MOVES + 1 : 1;
	     k <= sm->n_moves; k++) {
		struct sl_ctld_move *o = (struct sl_ctld_move *)sl_ctld_move_get(sm, k);
		if (o != NULL && o->region == region && o->state == SL_CTLD_MOVE_RUNNING &&
		    !sl_ctld_move_is_switch(o->kind)) {
			o->state = SL_CTLD_MOVE_FAILED;
			o->end_ms = at;
			snprintf(o->why, sizeof(o->why), "superseded by move %" PRIu64, id);
		}
	}
	struct sl_ctld_move *m = &sm->moves[(id - 1) % SL_CTLD_MAX_MOVES];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->kind = kind == NULL		       ? SL_CTLD_MOVE_OPERATOR
		  : strcmp(kind, "drain") == 0 ? SL_CTLD_MOVE_DRAIN
					       : SL_CTLD_MOVE_BALANCE;
	m->region = (uint32_t)region;
	m->from = (uint32_t)from;
	m->to = (uint32_t)to;
	m->start_ms = at;
	m->state = SL_CTLD_MOVE_RUNNING;
	if (why != NULL)
		snprintf(m->why, sizeof(m->why), "%s", why);
	sm->n_moves = id;
	if (sm->regions[region].leader != to) {
		sm->regions[region].leader = (uint32_t)to;
		sm->map_version++;
	}
	return 0;
}

static int apply_move_end(struct sl_ctld_sm *sm, struct json_object *cmd, char *err,
			  size_t err_len)
{
	uint64_t id = 0, at = 0;
	const char *state = get_str(cmd, "state", 8), *why = get_str(cmd, "why", 4096);
	if (!get_uint(cmd, "id", 1, INT64_MAX, &id) || !get_uint(cmd, "at_ms", 0, INT64_MAX, &at) ||
	    state == NULL || why == NULL ||
	    (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0))
		REFUSE("move_end: id, at_ms, state (done or failed) and why are needed");
	struct sl_ctld_move *m = (struct sl_ctld_move *)sl_ctld_move_get(sm, id);
	if (m == NULL || m->state != SL_CTLD_MOVE_RUNNING)
		REFUSE("move_end: move %" PRIu64 " is not running", id);
	m->state = strcmp(state, "done") == 0 ? SL_CTLD_MOVE_DONE : SL_CTLD_MOVE_FAILED;
	m->end_ms = at;
	struct sl_ctld_region *r = m->region < sm->n_regions ? &sm->regions[m->region] : NULL;
	if (replica_kind(m->kind) && r != NULL && r->learner != 0 && r->learner == m->to &&
	    r->next_protocol[0] == '\0') {
		/* ended before its seal: nothing changed but the learner, which goes */
		r->learner = 0;
		r->next_rf = 0;
		memset(r->next_replicas, 0, sizeof(r->next_replicas));
		sm->map_version++;
	}
	snprintf(m->why, sizeof(m->why), "%s", why);
	return 0;
}

int sl_ctld_sm_apply(struct sl_ctld_sm *sm, const uint8_t *data, uint32_t len, char *err,
		     size_t err_len)
{
	sm->applied++;
	struct json_object *cmd = NULL;
	int rc = -EINVAL;
	const char *op = NULL;
	if (sl_ctl_parse_json((const char *)data, len, &cmd) != 0 ||
	    !json_object_is_type(cmd, json_type_object) ||
	    (op = get_str(cmd, "op", 32)) == NULL) {
		snprintf(err, err_len, "not a command object with an \"op\"");
	} else if (strcmp(op, "bootstrap") == 0) {
		rc = apply_bootstrap(sm, cmd, err, err_len);
	} else if (strcmp(op, "join") == 0) {
		rc = apply_join(sm, cmd, err, err_len);
	} else if (strcmp(op, "node_state") == 0) {
		rc = apply_node_state(sm, cmd, err, err_len);
	} else if (strcmp(op, "set_leader") == 0) {
		rc = apply_set_leader(sm, cmd, err, err_len);
	} else if (strcmp(op, "transfer_leader") == 0) {
		rc = apply_transfer_leader(sm, cmd, err, err_len);
	} else if (strcmp(op, "drain") == 0 || strcmp(op, "decommission") == 0) {
		rc = apply_node_flag(sm, cmd, op, err, err_len);
	} else if (strcmp(op, "move_replica") == 0) {
		rc = apply_move_replica(sm, cmd, err, err_len);
	} else if (strcmp(op, "learner_ready") == 0) {
		rc = apply_learner_ready(sm, cmd, err, err_len);
	} else if (strcmp(op, "move_end") == 0) {
		rc = apply_move_end(sm, cmd, err, err_len);
	} else if (strcmp(op, "set_protocol") == 0) {
		rc = apply_set_protocol(sm, cmd, err, err_len);
	} else if (strcmp(op, "move_core") == 0) {
		rc = apply_move_core(sm, cmd, err, err_len);
	} else if (strcmp(op, "protocol_switched") == 0) {
		rc = apply_protocol_switched(sm, cmd, err, err_len);
	} else if (strcmp(op, "split") == 0) {
		rc = apply_split(sm, cmd, err, err_len);
	} else if (strcmp(op, "split_done") == 0) {
		rc = apply_split_done(sm, cmd, err, err_len);
	} else if (strcmp(op, "merge") == 0) {
		rc = apply_merge(sm, cmd, err, err_len);
	} else if (strcmp(op, "merge_done") == 0) {
		rc = apply_merge_done(sm, cmd, err, err_len);
	} else {
		snprintf(err, err_len, "unknown op '%.32s'", op);
	}
	json_object_put(cmd);
	if (rc == 0)
		sm->commands++;
	else
		sm->refused++;
	return rc;
}

/* ---------------------------------------------------------------- soft state */

int sl_ctld_soft_heartbeat(struct sl_ctld_soft *soft, const struct sl_ctld_sm *sm,
			   uint32_t node, struct json_object *regions, uint64_t now_ns,
			   char *err, size_t err_len)
{
	if (node < 1 || node > sm->n_nodes)
		REFUSE("heartbeat: node must be an id in 1..%u", sm->n_nodes);
	size_t n = regions != NULL && json_object_is_type(regions, json_type_array)
			   ? json_object_array_length(regions)
			   : SIZE_MAX;
	if (n > SL_CTLD_MAX_REGIONS)
		REFUSE("heartbeat: regions must be an array of at most %u", SL_CTLD_MAX_REGIONS);
	struct sl_ctld_hb_region tmp[SL_CTLD_MAX_REGIONS];
	memset(tmp, 0, sizeof(tmp));
	for (size_t i = 0; i < n; i++) {
		struct json_object *ro = json_object_array_get_idx(regions, i), *v = NULL;
		uint64_t id = 0, term = 0, commit = 0, applied = 0, leader = 0, epoch = 0;
		uint64_t points = 0, bytes = 0;
		bool sealed = false, has_points, has_bytes;
		const char *role = json_object_is_type(ro, json_type_object)
					   ? get_str(ro, "role", 16)
					   : NULL;
		if (role == NULL || !get_uint(ro, "id", 0, SL_CTLD_MAX_REGIONS - 1, &id) ||
		    !get_uint(ro, "term", 0, INT64_MAX, &term) ||
		    !get_uint(ro, "commit_index", 0, INT64_MAX, &commit) ||
		    !get_uint(ro, "applied_index", 0, INT64_MAX, &applied))
			REFUSE("heartbeat: regions[%zu] needs id, role, term, commit_index and "
			       "applied_index",
			       i);
		/* leader: a node id, or null while the region has none */
		if (json_object_object_get_ex(ro, "leader", &v) && v != NULL &&
		    !get_uint(ro, "leader", 0, SL_CTLD_MAX_NODES, &leader))
			REFUSE("heartbeat: regions[%zu].leader must be a node id or null", i);
		/* epoch and sealed: absent from nodes that predate the protocol switch */
		if (json_object_object_get_ex(ro, "epoch", NULL) &&
		    !get_uint(ro, "epoch", 0, UINT32_MAX, &epoch))
			REFUSE("heartbeat: regions[%zu].epoch must be a number in 0..%u", i,
			       UINT32_MAX);
		if (json_object_object_get_ex(ro, "sealed", &v)) {
			if (!json_object_is_type(v, json_type_boolean))
				REFUSE("heartbeat: regions[%zu].sealed must be true or false", i);
			sealed = json_object_get_boolean(v);
		}
		/* core: the worker core that runs it (absent from nodes that predate core moves) */
		uint64_t core = UINT64_MAX;
		if (json_object_object_get_ex(ro, "core", NULL) &&
		    !get_uint(ro, "core", 0, SL_CTLD_MAX_CORES - 1, &core))
			REFUSE("heartbeat: regions[%zu].core must be a number in 0..%u", i,
			       SL_CTLD_MAX_CORES - 1);
		/* rejoining: a joiner (or a node that lost its data dir) not caught up yet */
		bool rejoining = false;
		if (json_object_object_get_ex(ro, "rejoining", &v)) {
			if (!json_object_is_type(v, json_type_boolean))
				REFUSE("heartbeat: regions[%zu].rejoining must be true or false", i);
			rejoining = json_object_get_boolean(v);
		}
		/* points and bytes of the replica's store: absent from nodes that predate them */
		has_points = json_object_object_get_ex(ro, "points", NULL);
		if (has_points && !get_uint(ro, "points", 0, INT64_MAX, &points))
			REFUSE("heartbeat: regions[%zu].points must be a number in 0..%" PRId64, i,
			       INT64_MAX);
		has_bytes = json_object_object_get_ex(ro, "bytes", NULL);
		if (has_bytes && !get_uint(ro, "bytes", 0, INT64_MAX, &bytes))
			REFUSE("heartbeat: regions[%zu].bytes must be a number in 0..%" PRId64, i,
			       INT64_MAX);
		if (strcmp(role, "none") == 0)
			continue; /* the node holds no replica of it: nothing to say */
		uint32_t r = 0;
		while (r <= SL_CONS_ROLE_REPLICA && strcmp(sl_cons_role_name(r), role) != 0)
			r++;
		if (r > SL_CONS_ROLE_REPLICA)
			REFUSE("heartbeat: regions[%zu].role '%s' unknown", i, role);
		tmp[id] = (struct sl_ctld_hb_region){true,   r,	     (uint32_t)leader,
						     term,   commit, applied,
						     (uint32_t)epoch, sealed};
		tmp[id].rejoining = rejoining;
		tmp[id].core = core == UINT64_MAX ? 0 : (uint32_t)core + 1;
		tmp[id].has_points = has_points;
		tmp[id].has_bytes = has_bytes;
		tmp[id].points = points;
		tmp[id].bytes = bytes;
		/* the write rate since the node's previous heartbeat, when both had points and
		 * they did not go down (a restarted or cut store says nothing of the rate) */
		const struct sl_ctld_hb_region *prev = &soft->hb[node][id];
		uint64_t dt = now_ns - prev->at_ns;
		tmp[id].at_ns = now_ns;
		if (has_points && prev->valid && prev->has_points && points >= prev->points &&
		    now_ns > prev->at_ns) {
			tmp[id].has_rate = true;
			unsigned __int128 rate =
				(unsigned __int128)(points - prev->points) * 1000000000u / dt;
			tmp[id].points_per_s = rate > INT64_MAX ? INT64_MAX : (uint64_t)rate;
		}
	}
	memcpy(soft->hb[node], tmp, sizeof(tmp));
	soft->seen[node] = true;
	soft->last_hb_ns[node] = now_ns;
	return 0;
}

/* ---------------------------------------------------------------- views */

static struct json_object *str_or_null(const char *s)
{
	return s[0] ? json_object_new_string(s) : NULL;
}

struct json_object *sl_ctld_view_members(const struct sl_ctld_sm *sm,
					 const struct sl_ctld_soft *soft, uint64_t now_ns)
{
	struct json_object *arr = json_object_new_array();
	for (uint32_t i = 1; i <= sm->n_nodes; i++) {
		const struct sl_ctld_node *n = &sm->nodes[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "node", json_object_new_int64(i));
		json_object_object_add(o, "state", json_object_new_string(sl_ctld_state_name(n->state)));
		json_object_object_add(o, "address", n->state == SL_CTLD_EXPECTED
							     ? NULL
							     : json_object_new_string(n->address));
		json_object_object_add(o, "cores",
				       n->cores ? json_object_new_int64(n->cores) : NULL);
		if (n->lineage_cores != 0) /* its workers changed since its data dir was made */
			json_object_object_add(o, "lineage_cores",
					       json_object_new_int64(n->lineage_cores));
		/* heartbeats are soft state of the leader: unknown elsewhere */
		json_object_object_add(o, "heartbeat_age_ms",
				       soft != NULL && soft->seen[i]
					       ? json_object_new_int64(
						     (int64_t)((now_ns - soft->last_hb_ns[i]) / 1000000))
					       : NULL);
		json_object_object_add(o, "draining", json_object_new_boolean(n->draining));
		uint32_t pref = 0;
		for (uint32_t k = 0; k < sm->n_regions; k++)
			pref += sm->regions[k].rf > 1 && sm->regions[k].leader == i &&
				!sl_ctld_region_retired(sm, k);
		/* regions with copies it is the preferred leader of (0 once drained) */
		json_object_object_add(o, "preferred_regions", json_object_new_int64(pref));
		uint32_t reps = sl_ctld_node_replicas(sm, i);
		json_object_object_add(o, "replicas", json_object_new_int64(reps));
		json_object_object_add(o, "decommissioning",
				       json_object_new_boolean(n->decommissioning));
		/* safe to retire once it holds nothing */
		json_object_object_add(o, "decommissioned",
				       json_object_new_boolean(n->decommissioning && reps == 0));
		json_object_array_add(arr, o);
	}
	/* why a decommission cannot go on now (null when it can, or none runs) */
	uint32_t region = 0, from = 0, to = 0;
	char blocked[SL_CTLD_WHY_MAX] = "";
	(void)sl_ctld_decommission_next(sm, &region, &from, &to, blocked, sizeof(blocked));
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "members", arr);
	json_object_object_add(res, "decommission_blocked", str_or_null(blocked));
	return res;
}

static struct json_object *id_array(const uint32_t *ids, uint32_t n)
{
	struct json_object *a = json_object_new_array();
	for (uint32_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int64(ids[i]));
	return a;
}

uint32_t sl_ctld_observe(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			 uint32_t region, uint64_t now_ns, uint64_t timeout_ns,
			 struct sl_ctld_observed *out)
{
	/* the leader named in the highest term any live replica reported; the lag is how far
	 * the slowest reporting replica's applied index trails the highest commit reported */
	const struct sl_ctld_region *r = &sm->regions[region];
	memset(out, 0, sizeof(*out));
	out->min_applied = UINT64_MAX;
	uint32_t reporting = 0;
	for (uint32_t k = 0; k < r->rf; k++) {
		uint32_t nd = r->replicas[k];
		const struct sl_ctld_hb_region *h = &soft->hb[nd][region];
		if (!soft->seen[nd] || !h->valid || now_ns - soft->last_hb_ns[nd] > timeout_ns)
			continue;
		reporting++;
		if (h->leader != 0 && (out->leader == 0 || h->term > out->term)) {
			out->leader = h->leader;
			out->term = h->term;
		}
		if (h->commit_index > out->max_commit)
			out->max_commit = h->commit_index;
		if (h->applied_index < out->min_applied)
			out->min_applied = h->applied_index;
	}
	return reporting;
}

void sl_ctld_region_load(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			 uint32_t region, uint64_t now_ns, uint64_t timeout_ns,
			 struct sl_ctld_load *out)
{
	const struct sl_ctld_region *r = &sm->regions[region];
	memset(out, 0, sizeof(*out));
	for (uint32_t k = 0; k < r->rf; k++) {
		uint32_t nd = r->replicas[k];
		const struct sl_ctld_hb_region *h = &soft->hb[nd][region];
		if (!soft->seen[nd] || !h->valid || now_ns - soft->last_hb_ns[nd] > timeout_ns)
			continue;
		if (h->has_bytes && (!out->has_bytes || h->bytes > out->bytes))
			out->bytes = h->bytes;
		if (h->has_rate && (!out->has_rate || h->points_per_s > out->points_per_s))
			out->points_per_s = h->points_per_s;
		out->has_bytes = out->has_bytes || h->has_bytes;
		out->has_rate = out->has_rate || h->has_rate;
	}
}

/* One figure of a region against its threshold: above since when it first was (kept while
 * it stays above), reset when it is not, is unknown, or the rule is off. */
static void split_track(bool known, uint64_t value, uint64_t threshold, bool hold,
			uint64_t now_ms, bool *above, uint64_t *since_ms)
{
	bool over = hold && threshold != 0 && known && value > threshold;
	if (over && !*above)
		*since_ms = now_ms;
	*above = over;
}

void sl_ctld_split_observe(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			   uint64_t now_ns, uint64_t timeout_ns,
			   const struct sl_ctld_split_conf *conf, struct sl_ctld_split_obs *obs)
{
	uint64_t now_ms = now_ns / 1000000u;
	for (uint32_t i = 0; i < SL_CTLD_MAX_REGIONS; i++) {
		struct sl_ctld_split_region *o = &obs->r[i];
		if (i >= sm->n_regions || sl_ctld_region_retired(sm, i)) {
			memset(o, 0, sizeof(*o));
			continue;
		}
		sl_ctld_region_load(sm, soft, i, now_ns, timeout_ns, &o->load);
		/* a region that switches (a split too) starts over once it is done: its
		 * replicas' figures change with the new segment */
		bool hold = !sl_ctld_switching(sm, i);
		split_track(o->load.has_bytes, o->load.bytes, conf->bytes, hold, now_ms,
			    &o->bytes_above, &o->bytes_since_ms);
		split_track(o->load.has_rate, o->load.points_per_s, conf->points_per_s, hold,
			    now_ms, &o->rate_above, &o->rate_since_ms);
	}
	/* the merge rule, per region and its right neighbour (loads of both known) */
	for (uint32_t i = 0; i < SL_CTLD_MAX_REGIONS; i++) {
		struct sl_ctld_split_region *o = &obs->r[i];
		uint32_t j = i < sm->n_regions && !sl_ctld_region_retired(sm, i)
				     ? right_neighbour(sm, i)
				     : UINT32_MAX;
		bool below = false;
		if (j != UINT32_MAX && conf->merge_bytes != 0 && !sl_ctld_switching(sm, i) &&
		    !sl_ctld_switching(sm, j)) {
			const struct sl_ctld_load *a = &o->load, *b = &obs->r[j].load;
			below = a->has_bytes && b->has_bytes &&
				a->bytes + b->bytes < conf->merge_bytes &&
				(conf->merge_points_per_s == 0 ||
				 (a->has_rate && b->has_rate &&
				  a->points_per_s + b->points_per_s < conf->merge_points_per_s));
		}
		if (below && (!o->pair_below || o->with != j))
			o->pair_since_ms = now_ms;
		o->pair_below = below;
		o->with = below ? j : 0;
	}
}

/* Bytes for a why: "1.2 GB" (powers of 1000). */
static void fmt_bytes(char *b, size_t len, uint64_t v);
static bool held_by_operator(const struct sl_ctld_sm *sm, uint32_t region, uint64_t now_ms,
			     uint32_t kind);

int sl_ctld_merge_next(const struct sl_ctld_sm *sm, const struct sl_ctld_split_obs *obs,
		       uint64_t now_ms, const struct sl_ctld_split_conf *conf, uint32_t *region,
		       uint32_t *with, char *why, size_t why_len)
{
	why[0] = '\0';
	if (!sm->bootstrapped || conf->merge_bytes == 0 || sl_ctld_replica_move_running(sm))
		return 0;
	for (uint32_t i = 0; i < sm->n_regions; i++)
		if (sl_ctld_switching(sm, i))
			return 0; /* one switch at a time, as for splits */
	uint32_t best = UINT32_MAX;
	uint64_t best_since = 0, best_bytes = 0;
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_split_region *o = &obs->r[i];
		/* a region an operator split lately stays split for the hold (as the balance
		 * leaves an operator's leader move alone), however small its halves */
		if (!o->pair_below || now_ms - o->pair_since_ms < conf->sustain_ms ||
		    sl_ctld_region_retired(sm, i) ||
		    held_by_operator(sm, i, now_ms, SL_CTLD_MOVE_SPLIT) ||
		    held_by_operator(sm, o->with, now_ms, SL_CTLD_MOVE_SPLIT))
			continue;
		uint32_t w = 0;
		char err[SL_CTLD_WHY_MAX];
		/* other replicas, cores or protocols: skipped, the first one said */
		if (sl_ctld_check_merge(sm, i, &w, err, sizeof(err)) != 0 || w != o->with) {
			if (why[0] == '\0')
				snprintf(why, why_len, "regions %u and %u are due to merge but cannot: %s",
					 i, o->with, w != o->with && err[0] == '\0' ? "the map changed" : err);
			continue;
		}
		uint64_t bytes = o->load.bytes + obs->r[o->with].load.bytes;
		if (best != UINT32_MAX && (o->pair_since_ms > best_since ||
					   (o->pair_since_ms == best_since && bytes >= best_bytes)))
			continue; /* ascending ids: an equal one stays the lower id */
		best = i;
		best_since = o->pair_since_ms;
		best_bytes = bytes;
	}
	if (best == UINT32_MAX)
		return 0;
	const struct sl_ctld_split_region *o = &obs->r[best];
	char a[32], b[32], limit[32];
	fmt_bytes(a, sizeof(a), o->load.bytes);
	fmt_bytes(b, sizeof(b), obs->r[o->with].load.bytes);
	fmt_bytes(limit, sizeof(limit), conf->merge_bytes);
	int at = snprintf(why, why_len, "sizes %s + %s below merge_bytes %s", a, b, limit);
	if (conf->merge_points_per_s != 0 && at > 0 && (size_t)at < why_len)
		at += snprintf(why + at, why_len - (size_t)at, ", write rates %" PRIu64 " + %" PRIu64
			       " points/s below merge_points_per_s %" PRIu64,
			       o->load.points_per_s, obs->r[o->with].load.points_per_s,
			       conf->merge_points_per_s);
	if (at > 0 && (size_t)at < why_len)
		snprintf(why + at, why_len - (size_t)at, " for %" PRIu64 " s",
			 (now_ms - o->pair_since_ms) / 1000);
	*region = best;
	*with = o->with;
	return 1;
}

int sl_ctld_count_next(const struct sl_ctld_sm *sm, const struct sl_ctld_split_conf *conf,
		       uint32_t *region, uint32_t *with, char *why, size_t why_len)
{
	why[0] = '\0';
	if (!sm->bootstrapped || conf->regions_target == 0 || sl_ctld_replica_move_running(sm))
		return 0;
	uint32_t live = 0;
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		if (sl_ctld_switching(sm, i))
			return 0; /* one switch at a time, as for automatic splits */
		live += !sl_ctld_region_retired(sm, i);
	}
	if (live == conf->regions_target)
		return 0;
	bool split = live < conf->regions_target;
	uint32_t best = UINT32_MAX, best_with = UINT32_MAX;
	uint64_t best_width = 0;
	char err[SL_CTLD_WHY_MAX];
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		if (sl_ctld_region_retired(sm, i))
			continue;
		uint64_t at = 0, width = 0;
		uint32_t w = UINT32_MAX;
		int rc = split ? sl_ctld_check_split(sm, i, 0, false, &at, err, sizeof(err))
			       : sl_ctld_check_merge(sm, i, &w, err, sizeof(err));
		if (rc != 0) {
			if (why[0] == '\0' && (split || rc == -EBUSY))
				snprintf(why, why_len, "regions_target %u, %u live regions: region %u "
					 "cannot %s: %s", conf->regions_target, live, i,
					 split ? "split" : "merge", err);
			continue;
		}
		/* the range covered, less one (a full 2^64 would not fit) */
		width = split ? sm->regions[i].hash_hi - sm->regions[i].hash_lo
			      : sm->regions[w].hash_hi - sm->regions[i].hash_lo;
		if (best != UINT32_MAX && (split ? width <= best_width : width >= best_width))
			continue; /* ascending ids: an equal one stays the lower id */
		best = i;
		best_with = w;
		best_width = width;
	}
	if (best == UINT32_MAX)
		return 0;
	snprintf(why, why_len, "regions_target %u: %u live regions", conf->regions_target, live);
	*region = best;
	*with = best_with;
	return split ? 1 : 2;
}

static void fmt_bytes(char *b, size_t len, uint64_t v)
{
	static const char *const unit[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	uint32_t u = 0;
	double d = (double)v;
	while (d >= 1000.0 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		d /= 1000.0;
		u++;
	}
	if (u == 0)
		snprintf(b, len, "%" PRIu64 " B", v);
	else
		snprintf(b, len, "%.1f %s", d, unit[u]);
}

/* Why region i is due (its figure above the longest), and since when; false if not due. */
static bool split_due(const struct sl_ctld_split_region *o, uint64_t now_ms,
		      const struct sl_ctld_split_conf *conf, uint64_t *since_ms, char *why,
		      size_t why_len)
{
	uint64_t sustain = conf->sustain_ms;
	bool by_size = o->bytes_above && now_ms - o->bytes_since_ms >= sustain;
	bool by_rate = o->rate_above && now_ms - o->rate_since_ms >= sustain;
	if (by_size && (!by_rate || o->bytes_since_ms <= o->rate_since_ms)) {
		char have[32], limit[32];
		fmt_bytes(have, sizeof(have), o->load.bytes);
		fmt_bytes(limit, sizeof(limit), conf->bytes);
		*since_ms = o->bytes_since_ms;
		snprintf(why, why_len, "size %s above split_bytes %s for %" PRIu64 " s", have,
			 limit, (now_ms - o->bytes_since_ms) / 1000);
		return true;
	}
	if (by_rate) {
		*since_ms = o->rate_since_ms;
		snprintf(why, why_len, "write rate %" PRIu64 " points/s above split_points_per_s %"
			 PRIu64 " for %" PRIu64 " s", o->load.points_per_s, conf->points_per_s,
			 (now_ms - o->rate_since_ms) / 1000);
		return true;
	}
	return false;
}

int sl_ctld_split_next(const struct sl_ctld_sm *sm, const struct sl_ctld_split_obs *obs,
		       uint64_t now_ms, const struct sl_ctld_split_conf *conf, uint32_t *region,
		       char *why, size_t why_len)
{
	why[0] = '\0';
	if (!sm->bootstrapped || (conf->bytes == 0 && conf->points_per_s == 0) ||
	    sl_ctld_replica_move_running(sm))
		return 0;
	for (uint32_t i = 0; i < sm->n_regions; i++)
		if (sl_ctld_switching(sm, i))
			return 0; /* one switch at a time: a split waits for any other to end */
	uint32_t best = UINT32_MAX;
	uint64_t best_since = 0, best_bytes = 0;
	char best_why[SL_CTLD_WHY_MAX] = "";
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_split_region *o = &obs->r[i];
		char w[SL_CTLD_WHY_MAX], err[SL_CTLD_WHY_MAX];
		uint64_t since = 0, at = 0;
		if (sl_ctld_region_retired(sm, i) || !split_due(o, now_ms, conf, &since, w, sizeof(w)))
			continue;
		/* multileader, a single hash, a full map: skipped, the first one said */
		if (sl_ctld_check_split(sm, i, 0, false, &at, err, sizeof(err)) != 0) {
			if (why[0] == '\0')
				snprintf(why, why_len, "region %u is due (%s) but cannot split: %s", i,
					 w, err);
			continue;
		}
		uint64_t bytes = o->load.has_bytes ? o->load.bytes : 0;
		if (best != UINT32_MAX &&
		    (since > best_since || (since == best_since && bytes <= best_bytes)))
			continue; /* ascending ids: an equal one stays the lower id */
		best = i;
		best_since = since;
		best_bytes = bytes;
		memcpy(best_why, w, sizeof(best_why));
	}
	if (best == UINT32_MAX)
		return 0;
	*region = best;
	snprintf(why, why_len, "%s", best_why);
	return 1;
}

/* Appends "node N <what>" to the waiting text ("; " between nodes). */
static void wait_add(char *w, size_t len, uint32_t node, const char *what)
{
	size_t at = strlen(w);
	if (at + 1 < len)
		snprintf(w + at, len - at, "%snode %u %s", at ? "; " : "", node, what);
}

/* Every replica of the region but `skip` (0: none) reports live at `epoch`, sealed
 * (want_sealed) or not, and applied at least min_applied; else waiting says who does not.
 * *n_ok counts the replicas (skip included) that do. */
static bool replicas_at(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			uint32_t region, uint32_t epoch, bool want_sealed, uint32_t skip,
			uint64_t min_applied, uint64_t now_ns, uint64_t timeout_ns, char *waiting,
			size_t len, uint32_t *n_ok)
{
	const struct sl_ctld_region *r = &sm->regions[region];
	bool all = true;
	if (len > 0)
		waiting[0] = '\0';
	*n_ok = 0;
	for (uint32_t k = 0; k < r->rf; k++) {
		uint32_t nd = r->replicas[k];
		const struct sl_ctld_hb_region *h = &soft->hb[nd][region];
		const char *what = NULL;
		if (!soft->seen[nd] || now_ns - soft->last_hb_ns[nd] > timeout_ns)
			what = "is down";
		else if (!h->valid)
			what = "does not report the region";
		else if (h->epoch < epoch)
			what = want_sealed ? "is behind (an older segment)" : "has not switched";
		else if (h->epoch > epoch)
			what = "is ahead (a newer segment)";
		else if (h->sealed != want_sealed)
			what = want_sealed ? "has not applied the seal" : "has not switched";
		else if (h->applied_index < min_applied)
			what = "has not caught up";
		else if (min_applied != 0 && h->rejoining)
			what = "is catching up (a joiner: the base image and the log)";
		if (what == NULL)
			(*n_ok)++;
		else if (nd != skip) {
			all = false;
			wait_add(waiting, len, nd, what);
		}
	}
	return all;
}

/* The node a running replica move of the region takes out (0: not a replica move). */
static uint32_t leaving(const struct sl_ctld_region *r)
{
	for (uint32_t k = 0; k < r->rf && r->next_rf != 0; k++)
		if (!is_replica_of(r->next_replicas, r->next_rf, r->replicas[k]))
			return r->replicas[k];
	return 0;
}

bool sl_ctld_switch_ready(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			  uint32_t region, uint64_t now_ns, uint64_t timeout_ns, char *waiting,
			  size_t waiting_len)
{
	if (region >= sm->n_regions || sm->regions[region].next_protocol[0] == '\0') {
		snprintf(waiting, waiting_len, "no switch asked");
		return false;
	}
	/* a replica move seals without the node it takes out (it may be dead: a dead node
	 * is replaced so), but raft's seal commits on a majority of the old set */
	const struct sl_ctld_region *r = &sm->regions[region];
	uint32_t skip = leaving(r), n_ok = 0;
	bool others = replicas_at(sm, soft, region, r->epoch, true, skip, 0, now_ns, timeout_ns,
				  waiting, waiting_len, &n_ok);
	if (others && n_ok <= r->rf / 2) {
		wait_add(waiting, waiting_len, skip, "has not applied the seal (no majority)");
		return false;
	}
	/* a learner switches from its own copy once it applied the seal too; if its node
	 * is down, the switch goes on without it (it joins the next segment empty, caught
	 * up by snapshot as before) */
	uint32_t ln = r->learner;
	if (others && ln != 0 && ln <= SL_CTLD_MAX_NODES && soft->seen[ln] &&
	    now_ns - soft->last_hb_ns[ln] <= timeout_ns) {
		const struct sl_ctld_hb_region *h = &soft->hb[ln][region];
		if (!h->valid || h->epoch != r->epoch || !h->sealed) {
			wait_add(waiting, waiting_len, ln, "(learner) has not applied the seal");
			return false;
		}
	}
	return others;
}

bool sl_ctld_learner_caught_up(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			       uint32_t region, uint64_t target, uint64_t now_ns,
			       uint64_t timeout_ns, char *waiting, size_t waiting_len)
{
	if (waiting_len > 0)
		waiting[0] = '\0';
	if (region >= sm->n_regions || sm->regions[region].learner == 0 ||
	    sm->regions[region].learner > SL_CTLD_MAX_NODES) {
		snprintf(waiting, waiting_len, "no learner");
		return false;
	}
	const struct sl_ctld_region *r = &sm->regions[region];
	uint32_t ln = r->learner;
	const struct sl_ctld_hb_region *h = &soft->hb[ln][region];
	if (!soft->seen[ln] || now_ns - soft->last_hb_ns[ln] > timeout_ns)
		snprintf(waiting, waiting_len, "node %u (learner) is down", ln);
	else if (!h->valid || h->epoch != r->epoch)
		snprintf(waiting, waiting_len, "node %u (learner) does not run epoch %u yet", ln,
			 r->epoch);
	else if (target == 0 || h->applied_index < target)
		snprintf(waiting, waiting_len, "node %u (learner) catching up: applied %" PRIu64
			 " of %" PRIu64, ln, h->applied_index, target);
	else
		return true;
	return false;
}

uint64_t sl_ctld_learner_target(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
				uint32_t region, uint64_t now_ns, uint64_t timeout_ns)
{
	if (region >= sm->n_regions)
		return 0;
	const struct sl_ctld_region *r = &sm->regions[region];
	uint64_t best = 0;
	for (uint32_t k = 0; k < r->rf; k++) {
		uint32_t nd = r->replicas[k];
		const struct sl_ctld_hb_region *h = &soft->hb[nd][region];
		if (soft->seen[nd] && now_ns - soft->last_hb_ns[nd] <= timeout_ns && h->valid &&
		    h->epoch == r->epoch && h->applied_index > best)
			best = h->applied_index;
	}
	return best;
}

bool sl_ctld_switch_done(const struct sl_ctld_sm *sm, const struct sl_ctld_soft *soft,
			 const struct sl_ctld_move *m, uint64_t now_ns, uint64_t timeout_ns,
			 char *waiting, size_t waiting_len)
{
	if (!sl_ctld_move_is_switch(m->kind) || m->state != SL_CTLD_MOVE_RUNNING ||
	    m->region >= sm->n_regions) {
		snprintf(waiting, waiting_len, "not a running protocol or replica move");
		return false;
	}
	const struct sl_ctld_region *r = &sm->regions[m->region];
	if (replica_kind(m->kind) && r->learner != 0 && r->next_protocol[0] == '\0') {
		char w[SL_CTLD_WHY_MAX];
		(void)sl_ctld_learner_caught_up(sm, soft, m->region, 0, now_ns, timeout_ns, w,
						sizeof(w));
		snprintf(waiting, waiting_len, "before the seal: %s", w);
		return false;
	}
	if (r->next_protocol[0] != '\0' || r->epoch <= m->epoch) {
		/* not switched yet: what the seal waits for (a merge: of both regions) */
		char w[SL_CTLD_WHY_MAX];
		uint32_t s = m->merge_with - 1;
		if (!sl_ctld_switch_ready(sm, soft, m->region, now_ns, timeout_ns, w, sizeof(w)))
			snprintf(waiting, waiting_len, "%s", w);
		else if (!sl_ctld_move_is_merge(m->kind))
			snprintf(waiting, waiting_len, "every replica sealed epoch %u: %s",
				 r->epoch, sl_ctld_move_is_split(m->kind) ? "splitting" : "switching");
		else if (!sl_ctld_switch_ready(sm, soft, s, now_ns, timeout_ns, w, sizeof(w)))
			snprintf(waiting, waiting_len, "region %u: %s", s, w);
		else
			snprintf(waiting, waiting_len, "every replica sealed epoch %u of region %u and "
				 "epoch %u of region %u: merging", r->epoch, m->region,
				 sm->regions[s].epoch, s);
		return false;
	}
	/* a replica move: the joiner installed the snapshot of the new segment's base */
	uint32_t n_ok = 0;
	uint64_t base = replica_kind(m->kind) ? sl_ctld_segment_base(r->epoch) : 0;
	bool ok = replicas_at(sm, soft, m->region, r->epoch, false, 0, base, now_ns, timeout_ns,
			      waiting, waiting_len, &n_ok);
	if (ok && m->kind == SL_CTLD_MOVE_CORE) {
		/* every replica runs the new segment on the new core (a node reports the core
		 * of the worker that answers for the region) */
		for (uint32_t k = 0; k < r->rf; k++) {
			const struct sl_ctld_hb_region *h = &soft->hb[r->replicas[k]][m->region];
			if (h->core != 0 && h->core != m->core) {
				snprintf(waiting, waiting_len, "node %u runs it on core %u, not %u yet",
					 r->replicas[k], h->core - 1, m->core - 1);
				return false;
			}
		}
	}
	if (!ok || !sl_ctld_move_is_split(m->kind))
		return ok;
	/* a split: the replicas run the new half too (a node reports it once it has it) */
	uint32_t child = sl_ctld_split_child(sm, m);
	char w[SL_CTLD_WHY_MAX];
	if (child == UINT32_MAX) {
		snprintf(waiting, waiting_len, "the new region is not in the map");
		return false;
	}
	if (replicas_at(sm, soft, child, sm->regions[child].epoch, false, 0, 0, now_ns,
			timeout_ns, w, sizeof(w), &n_ok))
		return true;
	snprintf(waiting, waiting_len, "new region %u: %s", child, w);
	return false;
}

bool sl_ctld_replica_move_stuck(const struct sl_ctld_sm *sm, const struct sl_ctld_move *m,
				char *why, size_t why_len)
{
	if (!replica_kind(m->kind) || m->state != SL_CTLD_MOVE_RUNNING || m->region >= sm->n_regions)
		return false;
	const struct sl_ctld_region *r = &sm->regions[m->region];
	if (r->learner != 0 && r->learner == m->to && r->next_protocol[0] == '\0') {
		/* nothing is sealed yet: a learner whose node went down ends the move, and the
		 * region runs on as it was */
		if (sm->nodes[m->to].state != SL_CTLD_DOWN)
			return false;
		snprintf(why, why_len, "node %u went down while catching up as a learner of "
			 "region %u (nothing was sealed: the region runs on nodes %u,%u,%u)",
			 m->to, m->region, r->replicas[0], r->rf > 1 ? r->replicas[1] : 0,
			 r->rf > 2 ? r->replicas[2] : 0);
		return true;
	}
	if (r->next_protocol[0] != '\0' || r->epoch <= m->epoch)
		return false; /* not switched: the seal waits for the old set (as a protocol's) */
	for (uint32_t k = 0; k < r->rf; k++) {
		uint32_t nd = r->replicas[k];
		if (sm->nodes[nd].state == SL_CTLD_DOWN) {
			snprintf(why, why_len, "node %u went down before every replica ran epoch %u "
				 "(region %u runs on the others; move the replica off node %u)",
				 nd, r->epoch, m->region, nd);
			return true;
		}
	}
	return false;
}

struct json_object *sl_ctld_view_regions(const struct sl_ctld_sm *sm,
					 const struct sl_ctld_soft *soft, uint64_t now_ns,
					 uint64_t timeout_ns)
{
	struct json_object *arr = json_object_new_array();
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_region *r = &sm->regions[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_int64(i));
		json_object_object_add(o, "hash_lo", hex64(r->hash_lo));
		json_object_object_add(o, "hash_hi", hex64(r->hash_hi));
		json_object_object_add(o, "protocol", json_object_new_string(r->protocol));
		/* the active segment, and the protocol of the next while a switch runs */
		json_object_object_add(o, "epoch", json_object_new_int64(r->epoch));
		json_object_object_add(o, "next_protocol",
				       r->next_protocol[0] ? json_object_new_string(r->next_protocol)
							   : NULL);
		json_object_object_add(o, "replicas", id_array(r->replicas, r->rf));
		/* the replicas of the next segment while a replica move runs */
		json_object_object_add(o, "next_replicas",
				       r->next_rf ? id_array(r->next_replicas, r->next_rf) : NULL);
		/* a replica move's new node while it catches up as a learner of this segment */
		if (r->learner != 0)
			json_object_object_add(o, "learner", json_object_new_int64(r->learner));
		json_object_object_add(o, "preferred_leader", json_object_new_int64(r->leader));
		/* a split pending (the first hash of the new half), and the region a split made
		 * this one of: absent otherwise */
		if (r->split_at != 0)
			json_object_object_add(o, "split_at", hex64(r->split_at));
		/* a core move's core (absent: the lineage's), and its target while one runs */
		if (r->core != 0)
			json_object_object_add(o, "core", json_object_new_int64(r->core - 1));
		if (r->next_core != 0)
			json_object_object_add(o, "next_core", json_object_new_int64(r->next_core - 1));
		if (r->split_from != 0) {
			json_object_object_add(o, "split_from",
					       json_object_new_int64(r->split_from - 1));
			json_object_object_add(o, "split_epoch",
					       json_object_new_int64(r->split_epoch));
		}
		/* a merge pending (the right neighbour this one takes), and a region merged away
		 * (the one it went into, and the segment that took its range there): absent
		 * otherwise */
		if (r->merge_with != 0)
			json_object_object_add(o, "merge_with",
					       json_object_new_int64(r->merge_with - 1));
		bool retired = r->merged_into != 0;
		if (retired) {
			json_object_object_add(o, "merged_into",
					       json_object_new_int64(r->merged_into - 1));
			json_object_object_add(o, "merge_epoch",
					       json_object_new_int64(r->merge_epoch));
		}
		/* from the heartbeats when this is the leader, else as last written to the log
		 * (a retired region has no replicas to report) */
		struct sl_ctld_observed ob;
		uint32_t reporting = soft != NULL && !retired
					     ? sl_ctld_observe(sm, soft, i, now_ns, timeout_ns, &ob)
					     : 0;
		uint32_t leader = reporting && ob.leader ? ob.leader : retired ? 0 : r->observed;
		json_object_object_add(o, "leader", leader ? json_object_new_int64(leader) : NULL);
		json_object_object_add(o, "reporting", json_object_new_int64(reporting));
		json_object_object_add(o, "commit_lag",
				       reporting ? json_object_new_int64(
						       (int64_t)(ob.max_commit > ob.min_applied
								 ? ob.max_commit - ob.min_applied
								 : 0))
						 : NULL);
		/* the largest size and write rate live replicas report (null: none says) */
		struct sl_ctld_load ld = {0};
		if (soft != NULL && !retired)
			sl_ctld_region_load(sm, soft, i, now_ns, timeout_ns, &ld);
		json_object_object_add(o, "bytes", ld.has_bytes ? json_object_new_int64(
								      (int64_t)ld.bytes)
								: NULL);
		json_object_object_add(o, "points_per_s",
				       ld.has_rate ? json_object_new_int64((int64_t)ld.points_per_s)
						   : NULL);
		json_object_array_add(arr, o);
	}
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "regions", arr);
	json_object_object_add(res, "map_version", json_object_new_int64((int64_t)sm->map_version));
	return res;
}

struct json_object *sl_ctld_view_placement(const struct sl_ctld_sm *sm)
{
	struct json_object *arr = json_object_new_array();
	for (uint32_t nd = 1; nd <= sm->n_nodes; nd++) {
		const struct sl_ctld_node *n = &sm->nodes[nd];
		/* core = region % cores, as the node spreads regions over its workers (a split's
		 * new region: its parent's, sl_ctld_region_core); a node that has not joined
		 * has no known cores: one row for all of its regions */
		uint32_t cores = n->cores ? n->cores : 1, lin = sl_ctld_node_lineage(n);
		if (lin == 0)
			lin = 1;
		for (uint32_t c = 0; c < (cores > lin ? cores : lin); c++) {
			struct json_object *reps = json_object_new_array();
			struct json_object *leads = json_object_new_array();
			for (uint32_t i = 0; i < sm->n_regions; i++) {
				const struct sl_ctld_region *r = &sm->regions[i];
				bool holds = false;
				if (sl_ctld_region_retired(sm, i))
					continue; /* merged away: on no core any more */
				for (uint32_t k = 0; k < r->rf; k++)
					holds = holds || r->replicas[k] == nd;
				if (!holds || sl_ctld_region_core(sm, i, lin) != c)
					continue;
				json_object_array_add(reps, json_object_new_int64(i));
				if (r->leader == nd)
					json_object_array_add(leads, json_object_new_int64(i));
			}
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "node", json_object_new_int64(nd));
			json_object_object_add(o, "state",
					       json_object_new_string(sl_ctld_state_name(n->state)));
			json_object_object_add(o, "core",
					       n->cores ? json_object_new_int64(c) : NULL);
			json_object_object_add(o, "replicas", reps);
			json_object_object_add(o, "leads", leads);
			json_object_array_add(arr, o);
		}
	}
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "placement", arr);
	return res;
}

struct json_object *sl_ctld_view_moves(const struct sl_ctld_sm *sm,
				       const struct sl_ctld_soft *soft, uint64_t now_ns,
				       uint64_t timeout_ns)
{
	struct json_object *arr = json_object_new_array();
	uint64_t first = sm->n_moves > SL_CTLD_MAX_MOVES ? sm->n_moves - SL_CTLD_MAX_MOVES + 1 : 1;
	for (uint64_t id = first; id <= sm->n_moves; id++) {
		const struct sl_ctld_move *m = sl_ctld_move_get(sm, id);
		if (m == NULL)
			continue;
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_int64((int64_t)m->id));
		json_object_object_add(o, "kind", json_object_new_string(move_kind_name(m->kind)));
		json_object_object_add(o, "region", json_object_new_int64(m->region));
		json_object_object_add(o, "from", m->from ? json_object_new_int64(m->from) : NULL);
		bool proto = m->kind == SL_CTLD_MOVE_PROTOCOL || m->kind == SL_CTLD_MOVE_CORE ||
			     sl_ctld_move_is_split(m->kind) ||
			     sl_ctld_move_is_merge(m->kind),
		     sw = sl_ctld_move_is_switch(m->kind);
		json_object_object_add(o, "to", proto ? NULL : json_object_new_int64(m->to));
		/* the segment a switch seals */
		json_object_object_add(o, "epoch", sw ? json_object_new_int64(m->epoch) : NULL);
		json_object_object_add(o, "from_protocol", str_or_null(m->from_protocol));
		json_object_object_add(o, "to_protocol", str_or_null(m->to_protocol));
		/* a split: the first hash of the new half, and the new region once it is made */
		uint32_t child = sl_ctld_split_child(sm, m);
		json_object_object_add(o, "split_at", m->split_at ? hex64(m->split_at) : NULL);
		json_object_object_add(o, "new_region",
				       child != UINT32_MAX ? json_object_new_int64(child) : NULL);
		/* a merge: the right neighbour the region takes (retired once it is done) */
		json_object_object_add(o, "merge_with",
				       m->merge_with ? json_object_new_int64(m->merge_with - 1) : NULL);
		/* a core move: the core every node runs the region on after it */
		json_object_object_add(o, "to_core", m->core ? json_object_new_int64(m->core - 1) : NULL);
		json_object_object_add(o, "state",
				       json_object_new_string(sl_ctld_move_state_name(m->state)));
		/* what a running switch waits for: the leader's heartbeats (none elsewhere) */
		char w[SL_CTLD_WHY_MAX] = "";
		if (sw && m->state == SL_CTLD_MOVE_RUNNING && soft != NULL)
			(void)sl_ctld_switch_done(sm, soft, m, now_ns, timeout_ns, w, sizeof(w));
		json_object_object_add(o, "waiting", str_or_null(w));
		json_object_object_add(o, "start_ms", json_object_new_int64((int64_t)m->start_ms));
		json_object_object_add(o, "end_ms", m->end_ms ? json_object_new_int64((int64_t)m->end_ms)
							      : NULL);
		json_object_object_add(o, "took_ms",
				       m->end_ms ? json_object_new_int64(
						       (int64_t)(m->end_ms - m->start_ms))
						 : NULL);
		json_object_object_add(o, "why", json_object_new_string(m->why));
		json_object_array_add(arr, o);
	}
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "moves", arr);
	json_object_object_add(res, "total", json_object_new_int64((int64_t)sm->n_moves));
	return res;
}

/* ---------------------------------------------------------------- leader balance */

/* An operator moved the region (a move of `kind`) within SL_CTLD_OPERATOR_HOLD_MS. */
static bool held_by_operator(const struct sl_ctld_sm *sm, uint32_t region, uint64_t now_ms,
			     uint32_t kind)
{
	uint64_t first = sm->n_moves > SL_CTLD_MAX_MOVES ? sm->n_moves - SL_CTLD_MAX_MOVES + 1 : 1;
	for (uint64_t id = first; id <= sm->n_moves; id++) {
		const struct sl_ctld_move *m = sl_ctld_move_get(sm, id);
		if (m != NULL && m->region == region && m->kind == kind &&
		    m->start_ms + SL_CTLD_OPERATOR_HOLD_MS > now_ms)
			return true;
	}
	return false;
}

/* A region the balance leaves where it is: one copy, retired, switching (a protocol
 * switch, split or merge), or moved by an operator within the hold unless its node is
 * evacuated (drained or down). */
static bool balance_stays(const struct sl_ctld_sm *sm, uint32_t i, uint64_t now_ms, bool evac)
{
	return sm->regions[i].rf < 2 ||
	       (!evac && held_by_operator(sm, i, now_ms, SL_CTLD_MOVE_OPERATOR)) ||
	       sl_ctld_switching(sm, i) || sl_ctld_region_retired(sm, i);
}

static uint64_t add_sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

/* The balance by write rate (sl_ctld_balance_next_by): 1 with region, to and why set, or
 * 0. Loads saturate (rates come from heartbeats) and the slack is compared without a
 * product that could overflow. */
static int balance_rate(const struct sl_ctld_sm *sm, uint64_t now_ms,
			const struct sl_ctld_balance_conf *conf,
			const struct sl_ctld_split_obs *obs, uint32_t *region, uint32_t *to,
			char *why, size_t why_len)
{
	uint64_t load[SL_CTLD_MAX_NODES + 1] = {0}, rate[SL_CTLD_MAX_REGIONS] = {0};
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_load *l = &obs->r[i].load;
		if (sl_ctld_region_retired(sm, i) || !l->has_rate)
			continue; /* a region whose rate is not known yet counts 0 */
		rate[i] = l->points_per_s;
		load[sm->regions[i].leader] = add_sat(load[sm->regions[i].leader], rate[i]);
	}
	uint32_t least = 0;
	for (uint32_t n = 1; n <= sm->n_nodes; n++)
		if (node_takes(sm, n) && (least == 0 || load[n] < load[least]))
			least = n;
	bool tried[SL_CTLD_MAX_NODES + 1] = {false};
	for (;;) {
		/* the busiest source not tried yet (ties: lowest id) */
		uint32_t f = 0;
		for (uint32_t n = 1; n <= sm->n_nodes; n++)
			if (node_takes(sm, n) && !tried[n] && (f == 0 || load[n] > load[f]))
				f = n;
		if (f == 0 || least == 0)
			return 0;
		tried[f] = true;
		uint64_t slack = load[f] / 100 * conf->rate_slack_pct +
				 load[f] % 100 * conf->rate_slack_pct / 100;
		if (load[f] - load[least] <= slack)
			return 0; /* within the slack, and so is every lighter source */
		/* the move that evens the loads most: rate x from f to t lowers the sum of the
		 * nodes' squared loads by 2x(load f - load t - x); for one target that is the
		 * move leaving the two closest, and a lighter target wins over a heavier one */
		uint32_t best_r = UINT32_MAX, best_to = 0;
		unsigned __int128 best_gain = 0;
		for (uint32_t i = 0; i < sm->n_regions; i++) {
			const struct sl_ctld_region *r = &sm->regions[i];
			if (r->leader != f || rate[i] == 0 || balance_stays(sm, i, now_ms, false))
				continue;
			for (uint32_t k = 0; k < r->rf; k++) {
				uint32_t t = r->replicas[k];
				/* the target stays below what the source led, so the gain is
				 * positive: the sum only goes down, and no move is ever undone
				 * while the rates stay */
				if (t == f || !node_takes(sm, t) || add_sat(load[t], rate[i]) >= load[f])
					continue;
				unsigned __int128 gain =
				    (unsigned __int128)rate[i] * (load[f] - load[t] - rate[i]);
				/* ascending region ids: an equal gain keeps the lower id */
				if (best_r == UINT32_MAX || gain > best_gain ||
				    (gain == best_gain && i == best_r && t < best_to)) {
					best_r = i;
					best_to = t;
					best_gain = gain;
				}
			}
		}
		if (best_r == UINT32_MAX)
			continue; /* nothing of f can go: the next busiest may */
		*region = best_r;
		*to = best_to;
		if (why != NULL)
			snprintf(why, why_len, "rate: node %u leads %" PRIu64 " points/s, node %u %"
				 PRIu64 "; region %u (%" PRIu64 " points/s) to node %u", f, load[f],
				 best_to, load[best_to], best_r, rate[best_r], best_to);
		return 1;
	}
}

int sl_ctld_balance_next(const struct sl_ctld_sm *sm, uint64_t now_ms, uint32_t *region,
			 uint32_t *to)
{
	return sl_ctld_balance_next_by(sm, now_ms, NULL, NULL, region, to, NULL, 0);
}

int sl_ctld_balance_next_by(const struct sl_ctld_sm *sm, uint64_t now_ms,
			    const struct sl_ctld_balance_conf *conf,
			    const struct sl_ctld_split_obs *obs, uint32_t *region, uint32_t *to,
			    char *why, size_t why_len)
{
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (!sm->bootstrapped)
		return 0;
	bool by_rate = conf != NULL && conf->by == SL_CTLD_BALANCE_RATE && obs != NULL;
	/* preferred regions per node and per (node, core): core = region mod the node's cores */
	static uint32_t leads[SL_CTLD_MAX_NODES + 1];
	static uint32_t core_leads[SL_CTLD_MAX_NODES + 1][SL_CTLD_MAX_REGIONS];
	memset(leads, 0, sizeof(leads));
	memset(core_leads, 0, sizeof(core_leads));
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_region *r = &sm->regions[i];
		uint32_t c = sl_ctld_region_core(sm, i, sl_ctld_node_lineage(&sm->nodes[r->leader]));
		if (r->rf >= 2 && !sl_ctld_region_retired(sm, i)) {
			leads[r->leader]++;
			core_leads[r->leader][c]++;
		}
	}
	uint32_t best_r = UINT32_MAX, best_to = 0, best_from_load = 0, best_core_load = 0;
	uint32_t evac_kind = 0; /* a region off a drained (or down) node comes first */
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_region *r = &sm->regions[i];
		const struct sl_ctld_node *from = &sm->nodes[r->leader];
		/* a decommissioning node is drained of its leaders as well */
		bool drained = from->draining || from->decommissioning;
		bool evac = drained || from->state == SL_CTLD_DOWN;
		if (balance_stays(sm, i, now_ms, evac))
			continue;
		/* the up, undrained replica preferred for fewest regions, then fewest on this core */
		uint32_t cand = 0;
		for (uint32_t k = 0; k < r->rf; k++) {
			uint32_t n = r->replicas[k];
			if (n == r->leader || !node_takes(sm, n))
				continue;
			uint32_t nc = sl_ctld_region_core(sm, i, sl_ctld_node_lineage(&sm->nodes[n]));
			uint32_t cc = cand ? sl_ctld_region_core(sm, i, sl_ctld_node_lineage(&sm->nodes[cand])) : 0;
			if (cand == 0 || leads[n] < leads[cand] ||
			    (leads[n] == leads[cand] && core_leads[n][nc] < core_leads[cand][cc]))
				cand = n;
		}
		if (cand == 0)
			continue;
		if (evac) {
			uint32_t kind = drained ? SL_CTLD_MOVE_DRAIN + 1 : SL_CTLD_MOVE_BALANCE + 1;
			if (evac_kind < kind) { /* a drain before a down node's regions */
				evac_kind = kind;
				best_r = i;
				best_to = cand;
			}
			continue;
		}
		if (by_rate || evac_kind != 0 || from->state != SL_CTLD_UP ||
		    leads[r->leader] < leads[cand] + 2)
			continue;
		uint32_t c = sl_ctld_region_core(sm, i, sl_ctld_node_lineage(from));
		if (best_r == UINT32_MAX || leads[r->leader] > best_from_load ||
		    (leads[r->leader] == best_from_load && core_leads[r->leader][c] > best_core_load)) {
			best_r = i;
			best_to = cand;
			best_from_load = leads[r->leader];
			best_core_load = core_leads[r->leader][c];
		}
	}
	if (evac_kind == 0 && by_rate)
		return balance_rate(sm, now_ms, conf, obs, region, to, why, why_len) > 0
			   ? SL_CTLD_MOVE_BALANCE + 1
			   : 0;
	if (best_r == UINT32_MAX)
		return 0;
	*region = best_r;
	*to = best_to;
	return evac_kind != 0 ? (int)evac_kind : SL_CTLD_MOVE_BALANCE + 1;
}

/* ---------------------------------------------------------------- replica placement */

/* The node taking a replica of region r: up, not drained nor decommissioned, not a
 * replica, holding fewest replicas (ties: lowest id) and at most `max_count`. 0: none. */
static uint32_t replica_target(const struct sl_ctld_sm *sm, const struct sl_ctld_region *r,
			       const uint32_t *count, uint32_t max_count)
{
	uint32_t best = 0;
	for (uint32_t n = 1; n <= sm->n_nodes; n++)
		if (node_takes(sm, n) && !is_replica(r, n) && count[n] <= max_count &&
		    (best == 0 || count[n] < count[best]))
			best = n;
	return best;
}

/* A region whose replica may move now: live, raft or multileader (every replica up) with
 * copies, no switch running. */
static bool region_movable(const struct sl_ctld_sm *sm, uint32_t i)
{
	const struct sl_ctld_region *r = &sm->regions[i];
	return moves_protocol(r) && r->rf >= 2 && ml_replica_down(sm, r) == 0 &&
	       !sl_ctld_switching(sm, i) && !sl_ctld_region_retired(sm, i);
}

static void replica_counts(const struct sl_ctld_sm *sm, uint32_t *count)
{
	for (uint32_t n = 0; n <= SL_CTLD_MAX_NODES; n++)
		count[n] = n >= 1 && n <= sm->n_nodes ? sl_ctld_node_replicas(sm, n) : 0;
}

int sl_ctld_decommission_next(const struct sl_ctld_sm *sm, uint32_t *region, uint32_t *from,
			      uint32_t *to, char *blocked, size_t blocked_len)
{
	if (blocked_len > 0)
		blocked[0] = '\0';
	if (!sm->bootstrapped)
		return 0;
	uint32_t count[SL_CTLD_MAX_NODES + 1];
	replica_counts(sm, count);
	for (uint32_t i = 0; i < sm->n_regions; i++) {
		const struct sl_ctld_region *r = &sm->regions[i];
		uint32_t f = 0;
		if (sl_ctld_region_retired(sm, i))
			continue; /* its replicas hold nothing to move any more */
		for (uint32_t k = 0; k < r->rf && f == 0; k++)
			if (sm->nodes[r->replicas[k]].decommissioning)
				f = r->replicas[k];
		if (f == 0)
			continue;
		uint32_t t = replica_target(sm, r, count, UINT32_MAX);
		if (t != 0 && region_movable(sm, i)) {
			*region = i;
			*from = f;
			*to = t;
			if (blocked_len > 0)
				blocked[0] = '\0';
			return 1;
		}
		/* the first region that cannot go says why (a switch running is no block) */
		if (blocked_len > 0 && blocked[0] == '\0' && !sl_ctld_switching(sm, i)) {
			uint32_t down = ml_replica_down(sm, r);
			if (!moves_protocol(r))
				snprintf(blocked, blocked_len, "region %u runs %s: switch it to raft "
					 "or multileader first", i, r->protocol);
			else if (down != 0)
				snprintf(blocked, blocked_len, "region %u runs multileader, whose seal "
					 "needs every replica: node %u is %s", i, down,
					 sl_ctld_state_name(sm->nodes[down].state));
			else if (r->rf < 2)
				snprintf(blocked, blocked_len, "region %u has one replica: nothing "
					 "to catch up from", i);
			else
				snprintf(blocked, blocked_len, "no node to take region %u", i);
		}
	}
	return 0;
}

int sl_ctld_rebalance_next(const struct sl_ctld_sm *sm, uint64_t now_ms, uint32_t *region,
			   uint32_t *from, uint32_t *to)
{
	if (!sm->bootstrapped)
		return 0;
	uint32_t count[SL_CTLD_MAX_NODES + 1];
	replica_counts(sm, count);
	/* the sources, most replicas first (ties: lowest id); a source without a fitting
	 * region (all already on the emptier nodes) gives way to the next */
	bool tried[SL_CTLD_MAX_NODES + 1] = {false};
	for (;;) {
		uint32_t f = 0;
		for (uint32_t n = 1; n <= sm->n_nodes; n++)
			if (node_takes(sm, n) && !tried[n] && (f == 0 || count[n] > count[f]))
				f = n;
		if (f == 0 || count[f] < 2)
			return 0;
		tried[f] = true;
		for (uint32_t i = 0; i < sm->n_regions; i++) {
			const struct sl_ctld_region *r = &sm->regions[i];
			/* a region whose replica an operator moved stays (as leader balance
			 * leaves an operator's leader move alone) */
			if (!is_replica(r, f) || !region_movable(sm, i) ||
			    held_by_operator(sm, i, now_ms, SL_CTLD_MOVE_REPLICA))
				continue;
			uint32_t t = replica_target(sm, r, count, count[f] - 2);
			if (t != 0) {
				*region = i;
				*from = f;
				*to = t;
				return 1;
			}
		}
	}
}

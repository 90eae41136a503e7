/* test_ctld_sm.c - cmocka tests of sluice-ctld's metadata state machine (bootstrap
 * placement, join, node up/down, leader moves, protocol switches, replica moves, splits,
 * automatic splits, merges, refused commands leave the state unchanged), the heartbeat soft state and views, and the
 * ctld config parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "ctld.h"

static struct sl_ctld_sm sm; /* large: static */
static struct sl_ctld_sm before;
static struct sl_ctld_soft soft;

static struct sl_ctld_cluster cluster(uint32_t nodes, uint32_t regions, uint32_t rf)
{
	struct sl_ctld_cluster c;
	memset(&c, 0, sizeof(c));
	c.cluster_id = 7;
	c.nodes = nodes;
	c.regions = regions;
	c.replication = rf;
	snprintf(c.protocol, sizeof(c.protocol), "raft");
	return c;
}

/* While recording, every command applied is kept (replayed on a fresh machine). */
#define MAX_REC 512
static char *rec[MAX_REC];
static size_t n_rec;
static bool recording;

static void record(const char *text, size_t len)
{
	if (!recording)
		return;
	assert_true(n_rec < MAX_REC);
	rec[n_rec] = strndup(text, len);
	assert_non_null(rec[n_rec]);
	n_rec++;
}

static int apply_text(const char *text)
{
	char err[256];
	record(text, strlen(text));
	return sl_ctld_sm_apply(&sm, (const uint8_t *)text, (uint32_t)strlen(text), err,
				sizeof(err));
}

static int apply_obj(struct json_object *o)
{
	size_t len = 0;
	const char *text = sl_ctl_to_line(o, &len);
	char err[256];
	record(text, len);
	int rc = sl_ctld_sm_apply(&sm, (const uint8_t *)text, (uint32_t)len, err, sizeof(err));
	json_object_put(o);
	return rc;
}

/* A replica move whose learner caught up at once: move_replica, then learner_ready (what
 * the ctld leader proposes once the learner applied what the replicas had). */
static int apply_move(uint64_t id, uint32_t region, uint32_t from, uint32_t to, uint32_t kind,
		      uint64_t at_ms)
{
	int rc = apply_obj(sl_ctld_cmd_move_replica(id, region, from, to, kind, at_ms));
	if (rc == 0)
		rc = apply_obj(sl_ctld_cmd_learner_ready(id, region, at_ms));
	return rc;
}

/* Recording ends; the state is kept in `before` and the recorded log is replayed on a
 * fresh machine (which must then equal `before`). */
static void replay_recorded(void)
{
	recording = false;
	before = sm;
	sl_ctld_sm_init(&sm);
	for (size_t i = 0; i < n_rec; i++) {
		assert_int_equal(apply_text(rec[i]), 0);
		free(rec[i]);
	}
	n_rec = 0;
}

static void bootstrap(uint32_t nodes, uint32_t regions, uint32_t rf)
{
	sl_ctld_sm_init(&sm);
	struct sl_ctld_cluster c = cluster(nodes, regions, rf);
	char err[256];
	struct json_object *plan = sl_ctld_plan(&c, err, sizeof(err));
	assert_non_null(plan);
	assert_int_equal(apply_obj(plan), 0);
	assert_true(sm.bootstrapped);
}

/* The state without its counters, which every command (refused too) moves. */
static void snapshot_state(void)
{
	before = sm;
	before.applied = before.commands = before.refused = 0;
}

static void assert_unchanged(void)
{
	struct sl_ctld_sm now = sm;
	now.applied = now.commands = now.refused = 0;
	assert_memory_equal(&now, &before, sizeof(now));
}

static void test_bootstrap_spreads(void **state)
{
	(void)state;
	static const uint32_t cases[][3] = {{3, 8, 3}, {3, 4, 3}, {5, 16, 3}, {4, 10, 1},
					    {1, 8, 1}, {7, 256, 3}, {3, 1, 3}};
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		uint32_t nodes = cases[t][0], regions = cases[t][1], rf = cases[t][2];
		bootstrap(nodes, regions, rf);
		assert_int_equal(sm.n_regions, regions);
		assert_int_equal(sm.n_nodes, nodes);
		assert_int_equal(sm.cluster_id, 7);
		uint32_t reps[SL_CTLD_MAX_NODES + 1] = {0}, leads[SL_CTLD_MAX_NODES + 1] = {0};
		for (uint32_t i = 0; i < regions; i++) {
			const struct sl_ctld_region *r = &sm.regions[i];
			assert_int_equal(r->rf, rf);
			bool lead_is_replica = false;
			for (uint32_t k = 0; k < r->rf; k++) {
				/* the node's rule: consecutive ids from (region mod nodes) + 1 */
				assert_int_equal(r->replicas[k], (i + k) % nodes + 1);
				reps[r->replicas[k]]++;
				lead_is_replica = lead_is_replica || r->replicas[k] == r->leader;
			}
			assert_true(lead_is_replica);
			leads[r->leader]++;
			/* the node's own split of the hash space */
			uint64_t lo = (uint64_t)((((unsigned __int128)i << 64) + regions - 1) / regions);
			assert_true(r->hash_lo == lo);
			if (i > 0)
				assert_true(r->hash_lo == sm.regions[i - 1].hash_hi + 1);
		}
		assert_true(sm.regions[0].hash_lo == 0);
		assert_true(sm.regions[regions - 1].hash_hi == UINT64_MAX);
		uint32_t rmin = UINT32_MAX, rmax = 0, lmin = UINT32_MAX, lmax = 0;
		for (uint32_t n = 1; n <= nodes; n++) {
			rmin = reps[n] < rmin ? reps[n] : rmin;
			rmax = reps[n] > rmax ? reps[n] : rmax;
			lmin = leads[n] < lmin ? leads[n] : lmin;
			lmax = leads[n] > lmax ? leads[n] : lmax;
		}
		/* leaders even to within one whatever the numbers; replicas exactly even when
		 * the regions fill whole laps over the nodes, else within one per copy */
		assert_true(lmax - lmin <= 1);
		assert_true(rmax - rmin <= (regions % nodes == 0 ? 0 : rf));
	}
}

/* With [cluster] cores, preferred leaders spread over the nodes (to within one) and, on
 * each node, over its cores (region r on core r mod cores): no node's core leads two more
 * than another of its cores; without cores the nodes' own rule stays (checked above). */
static void test_bootstrap_spreads_cores(void **state)
{
	(void)state;
	static const uint32_t cases[][4] = {{3, 6, 3, 2}, {3, 12, 3, 2}, {3, 24, 3, 4},
					    {5, 40, 3, 4}, {3, 8, 3, 2}, {4, 16, 3, 2}};
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		uint32_t nodes = cases[t][0], regions = cases[t][1], rf = cases[t][2];
		uint32_t cores = cases[t][3];
		sl_ctld_sm_init(&sm);
		struct sl_ctld_cluster c = cluster(nodes, regions, rf);
		c.cores = cores;
		char err[256];
		assert_int_equal(apply_obj(sl_ctld_plan(&c, err, sizeof(err))), 0);
		uint32_t leads[SL_CTLD_MAX_NODES + 1] = {0}, on[SL_CTLD_MAX_NODES + 1][8] = {{0}};
		for (uint32_t i = 0; i < regions; i++) {
			const struct sl_ctld_region *r = &sm.regions[i];
			bool is_replica = false;
			for (uint32_t k = 0; k < r->rf; k++)
				is_replica = is_replica || r->replicas[k] == r->leader;
			assert_true(is_replica);
			leads[r->leader]++;
			on[r->leader][i % cores]++;
		}
		uint32_t lmin = UINT32_MAX, lmax = 0;
		for (uint32_t n = 1; n <= nodes; n++) {
			lmin = leads[n] < lmin ? leads[n] : lmin;
			lmax = leads[n] > lmax ? leads[n] : lmax;
			uint32_t cmin = UINT32_MAX, cmax = 0;
			for (uint32_t k = 0; k < cores; k++) {
				cmin = on[n][k] < cmin ? on[n][k] : cmin;
				cmax = on[n][k] > cmax ? on[n][k] : cmax;
			}
			assert_true(cmax - cmin <= 1);
		}
		assert_true(lmax - lmin <= 1);
	}
}

static void test_bootstrap_protocols(void **state)
{
	(void)state;
	struct sl_ctld_cluster c = cluster(3, 8, 3);
	for (int i = 4; i < 8; i++)
		snprintf(c.region_protocol[i], sizeof(c.region_protocol[i]), "standalone");
	char err[256];
	sl_ctld_sm_init(&sm);
	assert_int_equal(apply_obj(sl_ctld_plan(&c, err, sizeof(err))), 0);
	for (int i = 0; i < 8; i++) {
		assert_string_equal(sm.regions[i].protocol, i < 4 ? "raft" : "standalone");
		assert_int_equal(sm.regions[i].rf, i < 4 ? 3 : 1); /* standalone: one replica */
	}
	c = cluster(2, 8, 3); /* RF over the node count cannot be placed */
	assert_null(sl_ctld_plan(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot place"));
}

static void test_bootstrap_once(void **state)
{
	(void)state;
	bootstrap(3, 8, 3);
	snapshot_state();
	struct sl_ctld_cluster c = cluster(5, 4, 1);
	char err[256];
	/* a second first leader's bootstrap commits after the first: refused everywhere */
	assert_int_equal(apply_obj(sl_ctld_plan(&c, err, sizeof(err))), -EINVAL);
	assert_int_equal(sm.refused, 1);
	assert_unchanged();
}

static void test_join_and_state(void **state)
{
	(void)state;
	sl_ctld_sm_init(&sm);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(1, "a", 2, 0)), -EINVAL); /* not bootstrapped */
	bootstrap(3, 8, 3);
	assert_int_equal(sm.nodes[2].state, SL_CTLD_EXPECTED);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, false)), -EINVAL); /* never joined */
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "unix:/x/d2.sock", 4, 0)), 0);
	assert_int_equal(sm.nodes[2].state, SL_CTLD_UP);
	assert_string_equal(sm.nodes[2].address, "unix:/x/d2.sock");
	assert_int_equal(sm.nodes[2].cores, 4);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, false)), 0);
	assert_int_equal(sm.nodes[2].state, SL_CTLD_DOWN);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, true)), 0);
	assert_int_equal(sm.nodes[2].state, SL_CTLD_UP);
	/* a node that comes back with other cores is updated by its new join */
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "unix:/x/d2.sock", 2, 0)), 0);
	assert_int_equal(sm.nodes[2].cores, 2);
	assert_int_equal(sm.nodes[2].joins, 2);
	assert_int_equal(sl_ctld_node_lineage(&sm.nodes[2]), 2);
	/* its workers changed from 2 to 4: its unmoved regions stay at region % 2 */
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "unix:/x/d2.sock", 4, 2)), 0);
	assert_int_equal(sm.nodes[2].cores, 4);
	assert_int_equal(sm.nodes[2].lineage_cores, 2);
	assert_int_equal(sl_ctld_node_lineage(&sm.nodes[2]), 2);
	assert_int_equal(sl_ctld_region_core(&sm, 3, sl_ctld_node_lineage(&sm.nodes[2])), 1);
	/* back to its first count: no lineage of its own */
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "unix:/x/d2.sock", 2, 2)), 0);
	assert_int_equal(sm.nodes[2].lineage_cores, 0);
	/* a malformed lineage is refused */
	struct json_object *j = sl_ctld_cmd_join(2, "unix:/x/d2.sock", 2, 0);
	json_object_object_add(j, "lineage_cores", json_object_new_int64(0));
	assert_int_equal(apply_obj(j), -EINVAL);
}

static void test_set_leader(void **state)
{
	(void)state;
	sl_ctld_sm_init(&sm);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 1, 1)), -EINVAL); /* no map yet */
	bootstrap(4, 4, 3); /* region 0: nodes 1, 2, 3 */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 2, 5)), 0);
	assert_int_equal(sm.regions[0].observed, 2);
	assert_int_equal(sm.regions[0].observed_term, 5);
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 3, 4)), -EINVAL); /* older term */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 3, 5)), -EINVAL); /* two in a term */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 4, 6)), -EINVAL); /* not a replica */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(4, 1, 6)), -EINVAL); /* no region 4 */
	assert_unchanged();
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 3, 6)), 0);
	assert_int_equal(sm.regions[0].observed, 3);
	/* a follower (no heartbeats) shows the recorded leader */
	struct json_object *rv = sl_ctld_view_regions(&sm, NULL, 0, 1), *v = NULL;
	json_object_object_get_ex(rv, "regions", &v);
	struct json_object *r0 = json_object_array_get_idx(v, 0);
	assert_int_equal(json_object_get_int(json_object_object_get(r0, "leader")), 3);
	assert_null(json_object_object_get(json_object_array_get_idx(v, 1), "leader"));
	json_object_put(rv);
}

/* transfer_leader: refused unless the target is an up replica of a region with copies and
 * the id is the next one; applied, it moves the preferred leader, bumps the map version,
 * supersedes a running move of the region; move_end closes a running move only. */
static void test_transfer_leader(void **state)
{
	(void)state;
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	snprintf(c.region_protocol[3], sizeof(c.region_protocol[3]), "standalone");
	char err[256];
	sl_ctld_sm_init(&sm);
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(1, 0, 1, 0, 5)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_plan(&c, err, sizeof(err))), 0);
	assert_int_equal(sm.map_version, 1);
	for (uint32_t i = 1; i <= 2; i++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(i, "a", 2, 0)), 0);
	uint32_t pref = sm.regions[0].leader, to = pref % 3 + 1; /* another replica */
	if (to == 3)
		to = pref == 1 ? 2 : 1;
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(1, 0, 3, 0, 5)), -EINVAL); /* 3 never joined */
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(1, 3, 1, 0, 5)), -EINVAL); /* one copy */
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(1, 4, 1, 0, 5)), -EINVAL); /* no region */
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(0, 0, to, 0, 5)), -EINVAL); /* id 0 */
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "x", 6)), -EINVAL); /* no move */
	assert_unchanged();
	assert_int_equal(sl_ctld_check_transfer(&sm, 3, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "one replica"));
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(1, 0, to, pref, 100)), 0);
	assert_int_equal(sm.regions[0].leader, to);
	assert_int_equal(sm.map_version, 2);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	assert_non_null(m);
	assert_int_equal(m->state, SL_CTLD_MOVE_RUNNING);
	assert_int_equal(m->from, pref);
	/* a second move of region 0 supersedes the first; its map version moves again */
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(2, 0, pref, to, 200)), 0);
	assert_int_equal(sl_ctld_move_get(&sm, 1)->state, SL_CTLD_MOVE_FAILED);
	assert_non_null(strstr(sl_ctld_move_get(&sm, 1)->why, "superseded by move 2"));
	assert_int_equal(sm.map_version, 3);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(2, true, "node leads", 450)), 0);
	assert_int_equal(sl_ctld_move_get(&sm, 2)->state, SL_CTLD_MOVE_DONE);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(2, false, "late", 500)), -EINVAL); /* ended */
	/* an id at or below the last is a stale proposal (an earlier ctld leader's) */
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(2, 0, to, pref, 460)), -EINVAL);
	assert_unchanged();
	/* moving to the preferred leader again records a move, the map stays */
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(3, 0, pref, pref, 600)), 0);
	assert_int_equal(sm.map_version, 3);
	struct json_object *mv = sl_ctld_view_moves(&sm, NULL, 0, 1), *arr = NULL;
	assert_true(json_object_object_get_ex(mv, "moves", &arr));
	assert_int_equal(json_object_array_length(arr), 3);
	struct json_object *m2 = json_object_array_get_idx(arr, 1);
	assert_string_equal(json_object_get_string(json_object_object_get(m2, "state")), "done");
	assert_int_equal(json_object_get_int(json_object_object_get(m2, "took_ms")), 250);
	json_object_put(mv);
	/* the ring keeps the last SL_CTLD_MAX_MOVES */
	for (uint64_t id = 4; id < 4 + SL_CTLD_MAX_MOVES; id++)
		assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(id, 1, 1 + id % 2, 0, 700)), 0);
	assert_null(sl_ctld_move_get(&sm, 3));
	assert_non_null(sl_ctld_move_get(&sm, 4));
	/* a lost proposal leaves a gap in the ids: the next one applies, the gap has no move */
	uint64_t last = sm.n_moves;
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(last + 2, 1, 2, 0, 800)), 0);
	assert_null(sl_ctld_move_get(&sm, last + 1));
	assert_non_null(sl_ctld_move_get(&sm, last + 2));
	mv = sl_ctld_view_moves(&sm, NULL, 0, 1);
	assert_true(json_object_object_get_ex(mv, "moves", &arr));
	assert_int_equal(json_object_array_length(arr), SL_CTLD_MAX_MOVES - 1); /* the gap */
	json_object_put(mv);
}

/* Counts of preferred regions per node (regions with copies). */
static void pref_counts(uint32_t *cnt)
{
	memset(cnt, 0, 4 * sizeof(*cnt));
	for (uint32_t i = 0; i < sm.n_regions; i++)
		if (sm.regions[i].rf > 1)
			cnt[sm.regions[i].leader]++;
}

/* Applies balancing moves until sl_ctld_balance_next has none (bounded); returns how many. */
static uint32_t balance_all(uint64_t now_ms)
{
	uint32_t region = 0, to = 0, n = 0;
	int k;
	while (n < 64 && (k = sl_ctld_balance_next(&sm, now_ms, &region, &to)) > 0) {
		assert_int_not_equal(sm.regions[region].leader, to);
		assert_false(sm.nodes[to].draining);
		assert_int_equal(apply_obj(sl_ctld_cmd_balance(sm.n_moves + 1, region, to, 0, now_ms,
							       (uint32_t)k - 1, NULL)),
				 0);
		assert_int_equal(sl_ctld_move_get(&sm, sm.n_moves)->kind, (uint32_t)k - 1);
		n++;
	}
	assert_true(n < 64);
	return n;
}

/* Leader balance: nothing to do on the bootstrap plan; a down node's preferred regions go
 * to up replicas; back up, it gets its share again; operator moves are left alone. */
static void test_balance(void **state)
{
	(void)state;
	uint32_t region = 0, to = 0, cnt[4];
	struct sl_ctld_cluster c = cluster(3, 12, 3);
	c.cores = 2;
	snprintf(c.region_protocol[11], sizeof(c.region_protocol[11]), "standalone");
	char err[256];
	sl_ctld_sm_init(&sm);
	assert_int_equal(apply_obj(sl_ctld_plan(&c, err, sizeof(err))), 0);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(i, "a", 2, 0)), 0);
	assert_int_equal(sl_ctld_balance_next(&sm, 1000, &region, &to), 0); /* the plan is even */
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, false)), 0);
	assert_true(balance_all(1000) > 0);
	pref_counts(cnt);
	assert_int_equal(cnt[2], 0);
	assert_true(cnt[1] + cnt[3] == 11 && (cnt[1] > cnt[3] ? cnt[1] - cnt[3] : cnt[3] - cnt[1]) <= 1);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, true)), 0);
	assert_true(balance_all(2000) > 0);
	pref_counts(cnt);
	for (uint32_t n = 1; n <= 3; n++)
		assert_true(cnt[n] >= 3 && cnt[n] <= 4);
	/* an operator piles three regions on node 1: those stay for the hold, others move */
	uint64_t op_ms = 10000;
	uint32_t piled = 0;
	for (uint32_t i = 0; i < 11 && piled < 3; i++)
		if (sm.regions[i].leader != 1) {
			assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(sm.n_moves + 1, i, 1, 0, op_ms)), 0);
			piled++;
		}
	uint32_t held[12];
	for (uint32_t i = 0; i < 12; i++)
		held[i] = sm.regions[i].leader;
	balance_all(op_ms + 1);
	for (uint64_t id = sm.n_moves; id > 0 && sl_ctld_move_get(&sm, id) != NULL; id--) {
		const struct sl_ctld_move *m = sl_ctld_move_get(&sm, id);
		if (m->kind == SL_CTLD_MOVE_OPERATOR && m->start_ms == op_ms)
			assert_int_equal(sm.regions[m->region].leader, held[m->region]);
	}
	pref_counts(cnt);
	for (uint32_t n = 1; n <= 3; n++)
		assert_true(cnt[n] >= 3 && cnt[n] <= 4);
	/* single-copy regions never move */
	assert_int_equal(sm.regions[11].rf, 1);
	/* draining node 3: every region it is preferred for moves off (kind drain), held ones
	 * too; no move may target it; undrained, it gets its share back */
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, true)), 0);
	assert_true(sm.nodes[3].draining);
	assert_int_equal(sl_ctld_balance_next(&sm, op_ms + 2, &region, &to), SL_CTLD_MOVE_DRAIN + 1);
	assert_true(balance_all(op_ms + 2) > 0);
	pref_counts(cnt);
	assert_int_equal(cnt[3], 0);
	assert_int_equal(sl_ctld_check_transfer(&sm, 0, 3, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "draining"));
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, false)), 0);
	assert_true(balance_all(op_ms + 3) > 0);
	pref_counts(cnt);
	assert_true(cnt[3] >= 3);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(9, true)), -EINVAL); /* no node 9 */
}

static void test_malformed_refused(void **state)
{
	(void)state;
	bootstrap(3, 4, 3);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(1, "n1", 2, 0)), 0);
	snapshot_state();
	char longaddr[SL_CTLD_ADDR_MAX + 8];
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[1,2]",
	    "{}",
	    "{\"op\":1}",
	    "{\"op\":\"drop_tables\"}",
	    "{\"op\":\"join\",\"node\":0,\"address\":\"a\",\"cores\":1}",
	    "{\"op\":\"join\",\"node\":4,\"address\":\"a\",\"cores\":1}",
	    "{\"op\":\"join\",\"node\":-1,\"address\":\"a\",\"cores\":1}",
	    "{\"op\":\"join\",\"node\":1,\"address\":7,\"cores\":1}",
	    "{\"op\":\"join\",\"node\":1,\"address\":\"a\",\"cores\":0}",
	    "{\"op\":\"join\",\"node\":1,\"address\":\"a\",\"cores\":\"2\"}",
	    "{\"op\":\"join\",\"node\":1.5,\"address\":\"a\",\"cores\":1}",
	    "{\"op\":\"node_state\",\"node\":1,\"up\":\"yes\"}",
	    "{\"op\":\"node_state\",\"node\":9,\"up\":false}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(apply_text(bad[i]), -EINVAL);
		assert_unchanged();
	}
	assert_int_equal(apply_obj(sl_ctld_cmd_join(1, longaddr, 1, 0)), -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, sizeof(bad) / sizeof(bad[0]) + 1);
	/* a malformed bootstrap on a fresh machine: nothing of it is taken */
	sl_ctld_sm_init(&sm);
	snapshot_state();
	static const char *const badboot[] = {
	    /* replica out of range */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"raft\","
	    "\"replicas\":[1,3],\"leader\":1}]}",
	    /* the same node twice */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"raft\","
	    "\"replicas\":[1,1],\"leader\":1}]}",
	    /* leader not a replica */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"raft\","
	    "\"replicas\":[1],\"leader\":2}]}",
	    /* a single-copy protocol with two copies */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"standalone\","
	    "\"replicas\":[1,2],\"leader\":1}]}",
	    /* unknown protocol */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"paxos\","
	    "\"replicas\":[1],\"leader\":1}]}",
	    /* the hash space not covered */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0x0fffffffffffffff\",\"protocol\":\"raft\","
	    "\"replicas\":[1],\"leader\":1}]}",
	    /* a gap between two regions (the second is valid on its own) */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":0,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0x0fffffffffffffff\",\"protocol\":\"raft\","
	    "\"replicas\":[1],\"leader\":1},{\"id\":1,\"hash_lo\":\"0x2000000000000000\","
	    "\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"raft\",\"replicas\":[2],"
	    "\"leader\":2}]}",
	    /* regions out of order */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[{\"id\":1,\"hash_lo\":"
	    "\"0x0000000000000000\",\"hash_hi\":\"0xffffffffffffffff\",\"protocol\":\"raft\","
	    "\"replicas\":[1],\"leader\":1}]}",
	    /* no regions, too many nodes */
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":2,\"regions\":[]}",
	    "{\"op\":\"bootstrap\",\"cluster\":1,\"nodes\":65,\"regions\":[]}",
	};
	for (size_t i = 0; i < sizeof(badboot) / sizeof(badboot[0]); i++) {
		assert_int_equal(apply_text(badboot[i]), -EINVAL);
		assert_unchanged();
	}
	assert_false(sm.bootstrapped);
}

static struct json_object *hb_regions(const char *text)
{
	struct json_object *o = NULL;
	assert_int_equal(sl_ctl_parse_json(text, strlen(text), &o), 0);
	return o;
}

static void test_heartbeat_and_views(void **state)
{
	(void)state;
	bootstrap(3, 2, 3);
	memset(&soft, 0, sizeof(soft));
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "addr", 2, 0)), 0);
	char err[256];
	const uint64_t s = 1000000000ull;
	struct json_object *r1 = hb_regions(
	    "[{\"id\":0,\"role\":\"leader\",\"leader\":1,\"term\":3,\"commit_index\":10,"
	    "\"applied_index\":10},{\"id\":1,\"role\":\"follower\",\"leader\":2,\"term\":2,"
	    "\"commit_index\":5,\"applied_index\":5}]");
	struct json_object *r2 = hb_regions(
	    "[{\"id\":0,\"role\":\"follower\",\"leader\":1,\"term\":3,\"commit_index\":9,"
	    "\"applied_index\":7},{\"id\":1,\"role\":\"leader\",\"leader\":2,\"term\":2,"
	    "\"commit_index\":5,\"applied_index\":5}]");
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 1, r1, 10 * s, err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 2, r2, 10 * s, err, sizeof(err)), 0);
	/* malformed heartbeats are refused and change nothing */
	struct json_object *bad[] = {
	    hb_regions("[{\"id\":0,\"role\":\"king\",\"leader\":1,\"term\":3,"
		       "\"commit_index\":1,\"applied_index\":1}]"),
	    hb_regions("[{\"id\":300,\"role\":\"leader\",\"leader\":1,\"term\":3,"
		       "\"commit_index\":1,\"applied_index\":1}]"),
	    hb_regions("[{\"id\":0,\"role\":\"leader\",\"leader\":1}]"),
	    hb_regions("{\"id\":0}"),
	    hb_regions("[{\"id\":0,\"role\":\"leader\",\"leader\":\"me\",\"term\":3,"
		       "\"commit_index\":1,\"applied_index\":1}]"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 3, bad[i], 10 * s, err,
							sizeof(err)),
				 -EINVAL);
		json_object_put(bad[i]);
	}
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 4, r1, 10 * s, err, sizeof(err)),
			 -EINVAL); /* not a node of the cluster */
	/* role none: the node holds no replica of the region; taken, nothing recorded */
	struct json_object *none = hb_regions("[{\"id\":1,\"role\":\"none\",\"leader\":2,"
					      "\"term\":0,\"commit_index\":0,\"applied_index\":0}]");
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 3, none, 10 * s, err, sizeof(err)), 0);
	assert_false(soft.hb[3][1].valid);
	json_object_put(none);
	soft.seen[3] = false;
	assert_false(soft.seen[3]);
	json_object_put(r1);
	json_object_put(r2);

	struct json_object *m = sl_ctld_view_members(&sm, &soft, 10 * s + 250000000ull), *v;
	const char *text = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(text, "\"node\":1,\"state\":\"up\",\"address\":\"addr\",\"cores\":2,"
				     "\"heartbeat_age_ms\":250"));
	assert_non_null(strstr(text, "\"node\":3,\"state\":\"up\",\"address\":\"addr\",\"cores\":2,"
				     "\"heartbeat_age_ms\":null"));
	json_object_put(m);

	struct json_object *rv = sl_ctld_view_regions(&sm, &soft, 11 * s, 3 * s);
	struct json_object *r0 = json_object_array_get_idx(
	    (json_object_object_get_ex(rv, "regions", &v), v), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(r0, "leader")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(r0, "reporting")), 2);
	/* the slowest replica applied 7 of the 10 committed */
	assert_int_equal(json_object_get_int(json_object_object_get(r0, "commit_lag")), 3);
	json_object_put(rv);
	/* heartbeats older than the timeout are not counted */
	rv = sl_ctld_view_regions(&sm, &soft, 20 * s, 3 * s);
	r0 = json_object_array_get_idx((json_object_object_get_ex(rv, "regions", &v), v), 0);
	assert_null(json_object_object_get(r0, "commit_lag"));
	assert_null(json_object_object_get(r0, "leader"));
	json_object_put(rv);

	/* placement: each node's regions over its cores, region % cores */
	struct json_object *pl = sl_ctld_view_placement(&sm);
	text = json_object_to_json_string_ext(pl, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(text, "{\"node\":1,\"state\":\"up\",\"core\":0,\"replicas\":[0],"
				     "\"leads\":[0]}"));
	assert_non_null(strstr(text, "{\"node\":2,\"state\":\"up\",\"core\":1,\"replicas\":[1],"
				     "\"leads\":[1]}"));
	json_object_put(pl);
}

/* ---------------------------------------------------------------- protocol switch */

/* set_protocol: refused (state unchanged, counted) for an unknown region or protocol, the
 * region's own protocol, a switch in progress, standalone on a region with copies, a stale
 * id; applied: next_protocol, map version, a running move of kind protocol.
 * protocol_switched: only the next epoch under the asked protocol. */
static void test_set_protocol(void **state)
{
	(void)state;
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	snprintf(c.region_protocol[3], sizeof(c.region_protocol[3]), "standalone");
	char err[256];
	sl_ctld_sm_init(&sm);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "multileader", 5)), -EINVAL);
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 0, "multileader", err, sizeof(err)),
			 -EBUSY);
	assert_int_equal(apply_obj(sl_ctld_plan(&c, err, sizeof(err))), 0);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(i, "a", 2, 0)), 0);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(sm.regions[i].epoch, 0); /* every region starts at segment 0 */
		assert_string_equal(sm.regions[i].next_protocol, "");
	}
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 4, "multileader", 5)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "paxos", 5)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "raft", 5)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "standalone", 5)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(0, 0, "multileader", 5)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "multileader", 5)),
			 -EINVAL); /* no switch asked */
	static const char *const bad[] = {
	    "{\"op\":\"set_protocol\",\"id\":1,\"region\":0,\"at_ms\":5}",
	    "{\"op\":\"set_protocol\",\"id\":1,\"region\":0,\"protocol\":7,\"at_ms\":5}",
	    "{\"op\":\"set_protocol\",\"id\":1,\"region\":-1,\"protocol\":\"multileader\","
	    "\"at_ms\":5}",
	    "{\"op\":\"set_protocol\",\"id\":1,\"region\":0,\"protocol\":"
	    "\"multileadermultileader\",\"at_ms\":5}",
	    "{\"op\":\"protocol_switched\",\"region\":0,\"epoch\":\"1\",\"protocol\":\"raft\","
	    "\"at_ms\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(apply_text(bad[i]), -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 6 + sizeof(bad) / sizeof(bad[0]));
	/* the checker says why, with the error kind the ctl command answers */
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 9, "raft", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no region 9"));
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 0, "paxos", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "standalone, raft or multileader"));
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 0, "raft", err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "runs raft already"));
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 0, "standalone", err, sizeof(err)),
			 -EBUSY);
	assert_non_null(strstr(err, "membership change"));

	uint64_t v = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "multileader", 100)), 0);
	assert_string_equal(sm.regions[0].next_protocol, "multileader");
	assert_string_equal(sm.regions[0].protocol, "raft"); /* until every replica sealed */
	assert_int_equal(sm.map_version, v + 1);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	assert_non_null(m);
	assert_int_equal(m->kind, SL_CTLD_MOVE_PROTOCOL);
	assert_int_equal(m->state, SL_CTLD_MOVE_RUNNING);
	assert_int_equal(m->from, 0);
	assert_int_equal(m->to, 0);
	assert_string_equal(m->from_protocol, "raft");
	assert_string_equal(m->to_protocol, "multileader");
	assert_true(sl_ctld_switching(&sm, 0));
	assert_false(sl_ctld_switching(&sm, 1));
	/* one switch at a time per region; other regions may switch meanwhile */
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(2, 0, "standalone", 110)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(2, 0, "multileader", 110)), -EINVAL);
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 0, "multileader", err, sizeof(err)),
			 -EBUSY);
	assert_non_null(strstr(err, "in progress"));
	/* protocol_switched: the next epoch, under the protocol asked, nothing else */
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "raft", 120)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 2, "multileader", 120)),
			 -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 0, "multileader", 120)),
			 -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(1, 1, "multileader", 120)),
			 -EINVAL);
	assert_unchanged();
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(2, 3, "raft", 130)), 0); /* rf 1 */
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "multileader", 140)), 0);
	assert_int_equal(sm.regions[0].epoch, 1);
	assert_string_equal(sm.regions[0].protocol, "multileader");
	assert_string_equal(sm.regions[0].next_protocol, "");
	assert_int_equal(sm.map_version, v + 3);
	/* switched, but the move runs until the replicas run the new segment: no new switch */
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 2, "multileader", 150)),
			 -EINVAL);
	assert_true(sl_ctld_switching(&sm, 0));
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(3, 0, "raft", 150)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "switched", 160)), 0);
	assert_false(sl_ctld_switching(&sm, 0));
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(3, 0, "raft", 170)), 0);
	assert_int_equal(sl_ctld_move_get(&sm, 3)->epoch, 1); /* it seals segment 1 */
	/* the regions view carries epoch and next_protocol (what the nodes read) */
	struct json_object *rv = sl_ctld_view_regions(&sm, NULL, 0, 1), *arr = NULL;
	assert_true(json_object_object_get_ex(rv, "regions", &arr));
	struct json_object *r0 = json_object_array_get_idx(arr, 0);
	struct json_object *r1 = json_object_array_get_idx(arr, 1);
	assert_int_equal(json_object_get_int(json_object_object_get(r0, "epoch")), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(r0, "next_protocol")),
			    "raft");
	assert_string_equal(json_object_get_string(json_object_object_get(r0, "protocol")),
			    "multileader");
	assert_int_equal(json_object_get_int(json_object_object_get(r1, "epoch")), 0);
	assert_true(json_object_object_get_ex(r1, "next_protocol", NULL));
	assert_null(json_object_object_get(r1, "next_protocol"));
	json_object_put(rv);
}

/* One heartbeat of `node` reporting region 0 at `epoch`, sealed or not. */
static int hb_switch(uint32_t node, uint32_t epoch, bool sealed, uint64_t now_ns)
{
	char text[256], err[256];
	snprintf(text, sizeof(text),
		 "[{\"id\":0,\"role\":\"follower\",\"leader\":1,\"term\":2,\"commit_index\":4,"
		 "\"applied_index\":4,\"epoch\":%u,\"sealed\":%s}]",
		 epoch, sealed ? "true" : "false");
	struct json_object *o = hb_regions(text);
	int rc = sl_ctld_soft_heartbeat(&soft, &sm, node, o, now_ns, err, sizeof(err));
	json_object_put(o);
	return rc;
}

/* The value of `key` of move `id` in the moves view (with soft, or as a follower). */
static const char *move_field(struct json_object *mv, uint64_t id, const char *key)
{
	struct json_object *arr = NULL;
	assert_true(json_object_object_get_ex(mv, "moves", &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *o = json_object_array_get_idx(arr, i);
		if ((uint64_t)json_object_get_int64(json_object_object_get(o, "id")) == id)
			return json_object_get_string(json_object_object_get(o, key));
	}
	fail_msg("move %llu not in the view", (unsigned long long)id);
	return NULL;
}

/* The switch as the ctld leader drives it from heartbeats: not switched while a replica
 * is unsealed or silent, switched once all sealed, the move done once all report the new
 * epoch unsealed; replaying the log on a fresh machine gives the same state. */
static void test_switch_flow(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s;
	char w[SL_CTLD_WHY_MAX], err[256];
	n_rec = 0;
	recording = true;
	bootstrap(3, 4, 3); /* region 0: nodes 1, 2, 3 */
	memset(&soft, 0, sizeof(soft));
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	/* older nodes send neither epoch nor sealed: taken as epoch 0, unsealed */
	struct json_object *old = hb_regions(
	    "[{\"id\":0,\"role\":\"leader\",\"leader\":1,\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4}]");
	soft.hb[1][0].epoch = 9;
	soft.hb[1][0].sealed = true;
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 1, old, 1 * s, err, sizeof(err)), 0);
	json_object_put(old);
	assert_true(soft.hb[1][0].valid);
	assert_int_equal(soft.hb[1][0].epoch, 0);
	assert_false(soft.hb[1][0].sealed);
	/* malformed epoch or sealed: the heartbeat is refused, nothing recorded */
	static const char *const bad[] = {
	    "[{\"id\":0,\"role\":\"leader\",\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4,\"epoch\":\"1\"}]",
	    "[{\"id\":0,\"role\":\"leader\",\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4,\"epoch\":-1}]",
	    "[{\"id\":0,\"role\":\"leader\",\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4,\"epoch\":4294967296}]",
	    "[{\"id\":0,\"role\":\"leader\",\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4,\"epoch\":1,\"sealed\":\"yes\"}]",
	    "[{\"id\":0,\"role\":\"leader\",\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4,\"sealed\":1}]",
	    "[{\"id\":0,\"role\":\"leader\",\"term\":2,\"commit_index\":4,"
	    "\"applied_index\":4,\"rejoining\":0}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *b = hb_regions(bad[i]);
		assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 2, b, 1 * s, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, i < 3 ? "epoch" : i < 5 ? "sealed" : "rejoining"));
		json_object_put(b);
		assert_false(soft.seen[2]);
	}
	/* no switch asked: nothing is ready */
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));

	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "multileader", 1000)), 0);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(hb_switch(n, 0, false, 2 * s), 0);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 2 * s, timeout, w, sizeof(w)));
	assert_non_null(strstr(w, "node 1 has not applied the seal"));
	/* two of three sealed: not yet */
	assert_int_equal(hb_switch(1, 0, true, 3 * s), 0);
	assert_int_equal(hb_switch(2, 0, true, 3 * s), 0);
	assert_int_equal(hb_switch(3, 0, false, 3 * s), 0);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 3 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 has not applied the seal");
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 3 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 has not applied the seal");
	/* the leader's moves view says so; a follower's (no heartbeats) does not */
	struct json_object *mv = sl_ctld_view_moves(&sm, &soft, 3 * s, timeout);
	assert_string_equal(move_field(mv, 1, "waiting"), "node 3 has not applied the seal");
	assert_string_equal(move_field(mv, 1, "kind"), "protocol");
	assert_string_equal(move_field(mv, 1, "from_protocol"), "raft");
	assert_string_equal(move_field(mv, 1, "to_protocol"), "multileader");
	assert_string_equal(move_field(mv, 1, "state"), "running");
	json_object_put(mv);
	mv = sl_ctld_view_moves(&sm, NULL, 3 * s, timeout);
	assert_null(move_field(mv, 1, "waiting"));
	json_object_put(mv);
	/* node 3 sealed, then falls silent: a silent replica is not counted as sealed */
	assert_int_equal(hb_switch(3, 0, true, 4 * s), 0);
	assert_int_equal(hb_switch(1, 0, true, 8 * s), 0);
	assert_int_equal(hb_switch(2, 0, true, 8 * s), 0);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 8 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 is down");
	/* every replica sealed: protocol_switched, epoch 1 under multileader */
	assert_int_equal(hb_switch(3, 0, true, 8 * s), 0);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 8 * s, timeout, w, sizeof(w)));
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 8 * s, timeout, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "multileader", 8000)), 0);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 8 * s, timeout, w, sizeof(w)));
	/* the move ends once every replica runs segment 1, unsealed */
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 8 * s, timeout, w, sizeof(w)));
	assert_non_null(strstr(w, "node 1 has not switched"));
	assert_int_equal(hb_switch(1, 1, false, 9 * s), 0);
	assert_int_equal(hb_switch(3, 1, false, 9 * s), 0);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 9 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 2 has not switched");
	assert_int_equal(hb_switch(2, 1, false, 9 * s), 0);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 13 * s, timeout, w, sizeof(w)));
	assert_non_null(strstr(w, "is down")); /* silent replicas do not count either */
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 9 * s, timeout, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "switched", 9000)), 0);
	assert_int_equal(sl_ctld_move_get(&sm, 1)->state, SL_CTLD_MOVE_DONE);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 9 * s, timeout, w, sizeof(w)));
	replay_recorded();
	assert_int_equal(sm.regions[0].epoch, 1);
	assert_string_equal(sm.regions[0].protocol, "multileader");
	assert_memory_equal(&sm, &before, sizeof(sm));
}

/* Leader moves leave a switching region alone: transfer_leader is refused, the balance
 * (even off a down node) picks other regions; both take it again once the switch ended. */
static void test_switch_leader_moves(void **state)
{
	(void)state;
	uint32_t region = 0, to = 0;
	char err[256];
	bootstrap(3, 6, 3); /* every node the preferred leader of two regions */
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(i, "a", 2, 0)), 0);
	uint32_t r = 0, pref = sm.regions[r].leader, other = pref % 3 + 1;
	assert_int_equal(sl_ctld_check_transfer(&sm, r, other, err, sizeof(err)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, r, "multileader", 10)), 0);
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(2, r, other, pref, 20)), -EINVAL);
	assert_unchanged();
	assert_int_equal(sl_ctld_check_transfer(&sm, r, other, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a protocol switch is in progress"));
	/* its preferred leader goes down: the balance moves the other regions only */
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(pref, false)), 0);
	uint32_t moved = 0;
	int k;
	while (moved < 8 && (k = sl_ctld_balance_next(&sm, 100, &region, &to)) > 0) {
		assert_int_not_equal(region, r);
		assert_int_equal(apply_obj(sl_ctld_cmd_balance(sm.n_moves + 1, region, to, 0, 100,
							       (uint32_t)k - 1, NULL)),
				 0);
		moved++;
	}
	assert_true(moved > 0 && moved < 8);
	assert_int_equal(sm.regions[r].leader, pref);
	assert_int_equal(sl_ctld_move_get(&sm, 1)->state, SL_CTLD_MOVE_RUNNING);
	/* switched and ended: the region's leader moves again */
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(r, 1, "multileader", 200)), 0);
	assert_int_equal(sl_ctld_balance_next(&sm, 300, &region, &to), 0); /* the move runs */
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "switched", 300)), 0);
	assert_true(sl_ctld_balance_next(&sm, 400, &region, &to) > 0);
	assert_int_equal(region, r);
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(sm.n_moves + 1, r, to, pref, 400)),
			 0);
	assert_int_equal(sm.regions[r].leader, to);
}

/* ---------------------------------------------------------------- replica moves */

static void bootstrap_cluster(const struct sl_ctld_cluster *c)
{
	sl_ctld_sm_init(&sm);
	char err[256];
	struct json_object *plan = sl_ctld_plan(c, err, sizeof(err));
	assert_non_null(plan);
	assert_int_equal(apply_obj(plan), 0);
}

/* One heartbeat of `node` reporting `region` at `epoch`, sealed or not, applied up to
 * `applied`; a node reporting nothing for the region sends role none. */
static void hb_region(uint32_t node, uint32_t region, uint32_t epoch, bool sealed,
		      uint64_t applied, uint64_t now_ns)
{
	char text[320], err[256];
	snprintf(text, sizeof(text),
		 "[{\"id\":%u,\"role\":\"%s\",\"leader\":null,\"term\":2,\"commit_index\":%llu,"
		 "\"applied_index\":%llu,\"epoch\":%u,\"sealed\":%s}]",
		 region, applied == UINT64_MAX ? "none" : "follower",
		 (unsigned long long)(applied == UINT64_MAX ? 0 : applied),
		 (unsigned long long)(applied == UINT64_MAX ? 0 : applied), epoch,
		 sealed ? "true" : "false");
	struct json_object *o = hb_regions(text);
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, node, o, now_ns, err, sizeof(err)), 0);
	json_object_put(o);
}

/* The move's switch is proposed and ended (what the ctld leader does once ready/done). */
static void finish_switch(uint64_t id)
{
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, id);
	assert_non_null(m);
	const struct sl_ctld_region *r = &sm.regions[m->region];
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(m->region, r->epoch + 1,
								 r->next_protocol, 5000)),
			 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "moved", 6000)), 0);
}

/* move_replica is refused (state unchanged, counted) with err containing `why`. */
static void move_refused(uint64_t id, uint32_t region, uint32_t from, uint32_t to, int rc,
			 const char *why)
{
	char err[256] = "";
	assert_int_equal(sl_ctld_check_move_replica(&sm, region, from, to, err, sizeof(err)), rc);
	if (strstr(err, why) == NULL)
		fail_msg("'%s' does not say '%s'", err, why);
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_move(id, region, from, to,
							    SL_CTLD_MOVE_REPLICA, 10),
			 -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 1);
}

/* A multileader region's replica move: no learner phase (the seal is asked at once); the
 * next segment runs on the new replica set, still multileader. */
static void test_move_replica_multileader(void **state)
{
	(void)state;
	sl_ctld_sm_init(&sm);
	struct sl_ctld_cluster c = cluster(4, 2, 3);
	c.initial_nodes = 3;
	snprintf(c.region_protocol[0], sizeof(c.region_protocol[0]), "multileader");
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	uint32_t from = sm.regions[0].replicas[1];
	assert_int_equal(apply_obj(sl_ctld_cmd_move_replica(1, 0, from, 4, SL_CTLD_MOVE_REPLICA,
							    10)),
			 0);
	assert_int_equal(sm.regions[0].learner, 0);
	assert_string_equal(sm.regions[0].next_protocol, "multileader");
	assert_int_equal(sm.regions[0].next_replicas[1], 4);
	assert_true(sl_ctld_switching(&sm, 0));
	/* there is no learner to report caught up */
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(1, 0, 11)), -EINVAL);
	uint32_t epoch = sm.regions[0].epoch;
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, epoch + 1, "multileader", 20)),
			 0);
	assert_int_equal(sm.regions[0].epoch, epoch + 1);
	assert_string_equal(sm.regions[0].protocol, "multileader");
	assert_int_equal(sm.regions[0].replicas[1], 4);
	for (uint32_t k = 0; k < sm.regions[0].rf; k++)
		assert_int_not_equal(sm.regions[0].replicas[k], from);
}

static void test_move_replica_refused(void **state)
{
	(void)state;
	sl_ctld_sm_init(&sm);
	move_refused(1, 0, 1, 2, -EBUSY, "not bootstrapped");
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(1, true)), -EINVAL);
	/* 5 nodes, replicas on 1..4; region 1 multileader, region 2 standalone (one copy) */
	struct sl_ctld_cluster c = cluster(5, 4, 3);
	c.initial_nodes = 4;
	snprintf(c.region_protocol[1], sizeof(c.region_protocol[1]), "multileader");
	snprintf(c.region_protocol[2], sizeof(c.region_protocol[2]), "standalone");
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	/* region 0: nodes 1, 2, 3 */
	assert_int_equal(sm.regions[0].replicas[0], 1);
	assert_int_equal(sm.regions[0].replicas[2], 3);
	move_refused(1, 9, 1, 4, -ENOENT, "no region 9");
	/* a multileader region's replicas move (its seal needs them all up) */
	uint32_t ml_rep = sm.regions[1].replicas[1];
	move_refused(1, 1, sm.regions[1].replicas[0], 5, -EBUSY, "never joined");
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(ml_rep, false)), 0);
	char want[128];
	snprintf(want, sizeof(want), "runs multileader, whose seal needs every replica: node %u "
				     "is down", ml_rep);
	move_refused(1, 1, sm.regions[1].replicas[0], 5, -EBUSY, want);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(ml_rep, true)), 0);
	move_refused(1, 2, sm.regions[2].replicas[0], 5, -EBUSY,
		     "runs standalone: switch it to raft or multileader first");
	move_refused(1, 0, 4, 5, -EINVAL, "node 4 is not a replica of region 0");
	move_refused(1, 0, 0, 4, -EINVAL, "node 0 is not a replica");
	move_refused(1, 0, 1, 0, -EINVAL, "node 0 is not a node of the cluster");
	move_refused(1, 0, 1, 6, -EINVAL, "node 6 is not a node of the cluster");
	move_refused(1, 0, 1, 2, -EINVAL, "node 2 is a replica of region 0 already");
	move_refused(1, 0, 1, 5, -EBUSY, "never joined");
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(4, false)), 0);
	move_refused(1, 0, 1, 4, -EBUSY, "node 4 is down");
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(4, true)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(4, true)), 0);
	move_refused(1, 0, 1, 4, -EBUSY, "node 4 is draining");
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(4, false)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(4, true)), 0);
	move_refused(1, 0, 1, 4, -EBUSY, "node 4 is being decommissioned");
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(4, false)), 0);
	/* a node that never joined may be decommissioned (its replicas move as from a dead
	 * one), though not drained */
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(5, true)), 0);
	assert_true(sm.nodes[5].decommissioning);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(5, false)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(5, true)), -EINVAL);
	/* a bad kind, and a malformed decommission */
	snapshot_state();
	assert_int_equal(apply_text("{\"op\":\"move_replica\",\"id\":1,\"region\":0,\"from\":1,"
				    "\"to\":4,\"kind\":\"protocol\",\"at_ms\":1}"),
			 -EINVAL);
	assert_int_equal(apply_text("{\"op\":\"move_replica\",\"id\":1,\"region\":0,\"from\":1,"
				    "\"to\":4,\"at_ms\":1}"),
			 -EINVAL);
	assert_int_equal(apply_text("{\"op\":\"decommission\",\"node\":6,\"on\":true}"), -EINVAL);
	assert_int_equal(apply_text("{\"op\":\"decommission\",\"node\":1,\"on\":1}"), -EINVAL);
	assert_unchanged();

	/* accepted: a switch to the same protocol onto the new replica set */
	uint64_t version = sm.map_version;
	assert_int_equal(apply_move(1, 0, 1, 4, SL_CTLD_MOVE_REPLICA, 10),
			 0);
	const struct sl_ctld_region *r = &sm.regions[0];
	assert_string_equal(r->next_protocol, "raft");
	assert_int_equal(r->next_rf, 3);
	assert_int_equal(r->next_replicas[0], 4); /* in node 1's position */
	assert_int_equal(r->next_replicas[1], 2);
	assert_int_equal(r->next_replicas[2], 3);
	assert_int_equal(r->replicas[0], 1); /* unchanged until switched */
	assert_int_equal(sm.map_version, version + 2); /* the move, then its learner ready */
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	assert_int_equal(m->kind, SL_CTLD_MOVE_REPLICA);
	assert_int_equal(m->state, SL_CTLD_MOVE_RUNNING);
	assert_int_equal(m->from, 1);
	assert_int_equal(m->to, 4);
	assert_int_equal(m->epoch, 0);
	assert_string_equal(m->from_protocol, "raft");
	assert_string_equal(m->to_protocol, "raft");
	assert_true(sl_ctld_switching(&sm, 0));
	assert_true(sl_ctld_replica_move_running(&sm));
	/* the views: next_replicas, and the move with its nodes */
	struct json_object *rv = sl_ctld_view_regions(&sm, NULL, 0, 1), *arr = NULL;
	assert_true(json_object_object_get_ex(rv, "regions", &arr));
	struct json_object *nr = json_object_object_get(json_object_array_get_idx(arr, 0),
							"next_replicas");
	assert_int_equal(json_object_array_length(nr), 3);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(nr, 0)), 4);
	assert_null(json_object_object_get(json_object_array_get_idx(arr, 3), "next_replicas"));
	json_object_put(rv);
	struct json_object *mv = sl_ctld_view_moves(&sm, NULL, 0, 1);
	assert_string_equal(move_field(mv, 1, "kind"), "replica");
	assert_string_equal(move_field(mv, 1, "to"), "4");
	json_object_put(mv);
	/* a switch in progress, a stale id; set_protocol and leader moves wait as well */
	move_refused(2, 0, 2, 4, -EBUSY, "has a switch in progress");
	char err[256];
	assert_int_equal(sm.regions[3].replicas[0], 4); /* region 3: nodes 4, 1, 2 */
	assert_int_equal(sl_ctld_check_move_replica(&sm, 3, 4, 3, err, sizeof(err)), 0);
	snapshot_state();
	assert_int_equal(apply_move(1, 3, 4, 3, SL_CTLD_MOVE_REPLICA, 10),
			 -EINVAL);
	assert_unchanged();
	assert_int_equal(sl_ctld_check_set_protocol(&sm, 0, "multileader", err, sizeof(err)),
			 -EBUSY);
	assert_int_equal(sl_ctld_check_transfer(&sm, 0, 2, err, sizeof(err)), -EINVAL);
	/* a raft region of one copy: a new replica would have nothing to catch up from */
	bootstrap(3, 2, 1);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "a", 2, 0)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(3, "a", 2, 0)), 0);
	move_refused(1, 0, 1, 2, -EBUSY, "has one replica");
}

/* A replica move as the ctld leader drives it from heartbeats, replacing a live node and
 * a dead one; replaying the log on a fresh machine gives the same state. */
static void test_replica_move_flow(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s, base1 = sl_ctld_segment_base(1);
	char w[SL_CTLD_WHY_MAX];
	assert_int_equal(base1, 1ull << 40);
	n_rec = 0;
	recording = true;
	struct sl_ctld_cluster c = cluster(4, 4, 3);
	c.initial_nodes = 3; /* node 4 holds nothing */
	bootstrap_cluster(&c);
	memset(&soft, 0, sizeof(soft));
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(sl_ctld_node_replicas(&sm, 4), 0);
	assert_int_equal(sm.regions[0].leader, 1);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(0, 1, 2)), 0);

	/* 1. region 0 from node 1 (alive, its preferred and observed leader) to node 4,
	 * which first catches up as a learner of epoch 0: no seal is asked before */
	uint64_t v0 = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_move_replica(1, 0, 1, 4, SL_CTLD_MOVE_REPLICA, 10)),
			 0);
	assert_int_equal(sm.map_version, v0 + 1);
	assert_int_equal(sm.regions[0].learner, 4);
	assert_string_equal(sm.regions[0].next_protocol, "");
	assert_true(sl_ctld_switching(&sm, 0));
	assert_true(sl_ctld_replica_move_running(&sm));
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	for (uint32_t n = 1; n <= 3; n++)
		hb_region(n, 0, 0, false, n == 2 ? 9 : 7, 1 * s);
	hb_region(4, 0, 0, false, UINT64_MAX, 1 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "before the seal: node 4 (learner) does not run epoch 0 yet");
	/* the target: the highest applied index among the replicas */
	uint64_t target = sl_ctld_learner_target(&sm, &soft, 0, 1 * s, timeout);
	assert_int_equal(target, 9);
	hb_region(4, 0, 0, false, 8, 1 * s);
	assert_false(sl_ctld_learner_caught_up(&sm, &soft, 0, target, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 (learner) catching up: applied 8 of 9");
	assert_false(sl_ctld_learner_caught_up(&sm, &soft, 0, target, 5 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 (learner) is down");
	/* a learner's down node ends the move before anything was sealed (not yet) */
	assert_false(sl_ctld_replica_move_stuck(&sm, m, w, sizeof(w)));
	hb_region(4, 0, 0, false, 9, 1 * s);
	assert_true(sl_ctld_learner_caught_up(&sm, &soft, 0, target, 1 * s, timeout, w, sizeof(w)));
	/* learner_ready only for the running move of that region, once (the refusals are
	 * tried on a copy: the replay below applies what committed) */
	static struct sl_ctld_sm keep;
	keep = sm;
	recording = false;
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(1, 1, 11)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(2, 0, 11)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(1, 0, 11)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(1, 0, 12)), -EINVAL);
	sm = keep;
	recording = true;
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(1, 0, 11)), 0);
	assert_int_equal(sm.map_version, v0 + 2);
	assert_string_equal(sm.regions[0].next_protocol, "raft");
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 2 has not applied the seal; node 3 has not applied the seal");
	/* the learner must apply the seal too */
	hb_region(2, 0, 0, true, 10, 1 * s);
	hb_region(3, 0, 0, true, 10, 1 * s);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 (learner) has not applied the seal");
	hb_region(4, 0, 0, true, 10, 1 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	/* the rest as in a move whose learner sealed: older heartbeats replaced below */
	hb_region(2, 0, 0, false, 7, 1 * s);
	hb_region(3, 0, 0, false, 7, 1 * s);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 2 has not applied the seal; node 3 has not applied the seal");
	/* the others sealed: ready (node 1, leaving, need not) */
	hb_region(2, 0, 0, true, 8, 2 * s);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 2 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 has not applied the seal");
	hb_region(3, 0, 0, true, 8, 2 * s);
	hb_region(1, 0, 0, false, 7, 2 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 2 * s, timeout, w, sizeof(w)));
	/* a silent one that stays is not counted */
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 6 * s, timeout, w, sizeof(w)));
	assert_non_null(strstr(w, "node 2 is down"));
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "every replica sealed epoch 0: switching");
	uint64_t version = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "raft", 3000)), 0);
	const struct sl_ctld_region *r = &sm.regions[0];
	assert_int_equal(r->epoch, 1);
	assert_string_equal(r->protocol, "raft");
	assert_int_equal(r->rf, 3);
	assert_int_equal(r->replicas[0], 4);
	assert_int_equal(r->replicas[1], 2);
	assert_int_equal(r->replicas[2], 3);
	assert_int_equal(r->next_rf, 0);
	assert_string_equal(r->next_protocol, "");
	assert_int_equal(r->leader, 2); /* node 1 left: the first replica that was one before */
	assert_int_equal(r->observed, 0);
	assert_int_equal(sm.map_version, version + 1);
	assert_false(sl_ctld_switching(&sm, 0) && !sl_ctld_replica_move_running(&sm));
	/* done once the new set runs epoch 1 and the joiner installed the base snapshot */
	hb_region(2, 0, 1, false, base1 + 3, 4 * s);
	hb_region(3, 0, 1, false, base1 + 3, 4 * s);
	assert_int_equal(r->learner, 0); /* a replica now */
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 4 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 has not switched"); /* its learner's epoch 0 */
	hb_region(4, 0, 1, false, 0, 4 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 4 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 has not caught up");
	hb_region(4, 0, 1, false, base1 - 1, 4 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 4 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 has not caught up");
	struct json_object *mv = sl_ctld_view_moves(&sm, &soft, 4 * s, timeout);
	assert_string_equal(move_field(mv, 1, "waiting"), "node 4 has not caught up");
	json_object_put(mv);
	hb_region(4, 0, 1, false, base1, 4 * s);
	/* a joiner still in its protocol's rejoin mode (multileader's) is not done */
	soft.hb[4][0].rejoining = true;
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 4 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 is catching up (a joiner: the base image and the log)");
	soft.hb[4][0].rejoining = false;
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 4 * s, timeout, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "moved", 4000)), 0);
	assert_false(sl_ctld_replica_move_running(&sm));
	assert_false(sl_ctld_switching(&sm, 0));
	assert_int_equal(sl_ctld_node_replicas(&sm, 1), 3);
	assert_int_equal(sl_ctld_node_replicas(&sm, 4), 1);

	/* 2. region 1 (nodes 2, 3, 1; node 2 preferred) from node 2, which is dead, to 4 */
	r = &sm.regions[1];
	assert_int_equal(r->replicas[0], 2);
	assert_int_equal(r->leader, 2);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, false)), 0);
	assert_int_equal(apply_move(2, 1, 2, 4, SL_CTLD_MOVE_REPLICA, 20),
			 0);
	m = sl_ctld_move_get(&sm, 2);
	hb_region(3, 1, 0, true, 9, 10 * s);
	hb_region(1, 1, 0, false, 9, 10 * s);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 1, 10 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 1 has not applied the seal");
	hb_region(1, 1, 0, true, 9, 10 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 1, 10 * s, timeout, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(1, 1, "raft", 11000)), 0);
	assert_int_equal(r->replicas[0], 4);
	assert_int_equal(r->leader, 3);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 10 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 4 is down; node 3 has not switched; "
			       "node 1 has not switched");
	hb_region(3, 1, 1, false, base1 + 1, 11 * s);
	hb_region(1, 1, 1, false, base1 + 1, 11 * s);
	hb_region(4, 1, 1, false, base1 + 1, 11 * s);
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 11 * s, timeout, w, sizeof(w)));
	assert_false(sl_ctld_replica_move_stuck(&sm, m, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(2, true, "moved", 11000)), 0);

	/* 3. region 2 (3, 1, 2) to node 4, which dies once switched: the move fails (so the
	 * region takes the next move, off node 4) */
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(2, true)), 0);
	assert_int_equal(apply_move(3, 2, 2, 4, SL_CTLD_MOVE_REPLICA, 30),
			 0);
	m = sl_ctld_move_get(&sm, 3);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(4, false)), 0);
	assert_false(sl_ctld_replica_move_stuck(&sm, m, w, sizeof(w))); /* not switched yet */
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(2, 1, "raft", 31000)), 0);
	assert_true(sl_ctld_replica_move_stuck(&sm, m, w, sizeof(w)));
	assert_non_null(strstr(w, "node 4 went down"));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(3, false, w, 32000)), 0);
	assert_false(sl_ctld_switching(&sm, 2));
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(4, true)), 0);
	assert_int_equal(sl_ctld_check_move_replica(&sm, 2, 4, 2, w, sizeof(w)), 0);
	replay_recorded();
	assert_int_equal(sm.regions[1].replicas[0], 4);
	assert_memory_equal(&sm, &before, sizeof(sm));
}

/* A learner's node that goes down before the seal ends its move: nothing was sealed, the
 * region runs on as it was; a move_replica of an older log (no "learner") seals at once. */
static void test_replica_move_learner_down(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s;
	char w[SL_CTLD_WHY_MAX];
	n_rec = 0;
	recording = true;
	struct sl_ctld_cluster c = cluster(4, 4, 3);
	c.initial_nodes = 3;
	bootstrap_cluster(&c);
	memset(&soft, 0, sizeof(soft));
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_replica(1, 0, 1, 4, SL_CTLD_MOVE_REPLICA, 10)),
			 0);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	struct json_object *v = sl_ctld_view_regions(&sm, &soft, 1 * s, timeout), *arr = NULL;
	assert_true(json_object_object_get_ex(v, "regions", &arr));
	struct json_object *row = json_object_array_get_idx(arr, 0), *f = NULL;
	assert_true(json_object_object_get_ex(row, "learner", &f));
	assert_int_equal(json_object_get_int64(f), 4);
	json_object_put(v);
	assert_false(sl_ctld_replica_move_stuck(&sm, m, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(4, false)), 0);
	assert_true(sl_ctld_replica_move_stuck(&sm, m, w, sizeof(w)));
	assert_non_null(strstr(w, "node 4 went down while catching up as a learner"));
	uint64_t version = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, false, w, 2000)), 0);
	const struct sl_ctld_region *r = &sm.regions[0];
	assert_int_equal(r->learner, 0);
	assert_int_equal(r->next_rf, 0);
	assert_string_equal(r->next_protocol, "");
	assert_int_equal(r->epoch, 0);
	assert_int_equal(r->replicas[0], 1);
	assert_int_equal(sm.map_version, version + 1);
	assert_false(sl_ctld_switching(&sm, 0));
	assert_false(sl_ctld_replica_move_running(&sm));
	/* an older log's move: the seal at once, no learner */
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(4, true)), 0);
	assert_int_equal(apply_text("{\"op\":\"move_replica\",\"id\":2,\"region\":0,\"from\":1,"
				    "\"to\":4,\"kind\":\"replica\",\"at_ms\":3000}"),
			 0);
	assert_int_equal(r->learner, 0);
	assert_string_equal(r->next_protocol, "raft");
	assert_int_equal(apply_obj(sl_ctld_cmd_learner_ready(2, 0, 3001)), -EINVAL);
	n_rec--; /* the refusal is not replayed */
	free(rec[n_rec]);
	sm.applied--;
	sm.refused--;
	replay_recorded();
	assert_memory_equal(&sm, &before, sizeof(sm));
}

/* The members view's value of `key` for `node`. */
static struct json_object *member(struct json_object *v, uint32_t node, const char *key)
{
	struct json_object *arr = NULL;
	assert_true(json_object_object_get_ex(v, "members", &arr));
	return json_object_object_get(json_object_array_get_idx(arr, node - 1), key);
}

static void test_decommission(void **state)
{
	(void)state;
	uint32_t region = 0, from = 0, to = 0, moves = 0;
	char blocked[SL_CTLD_WHY_MAX];
	bootstrap(4, 8, 3); /* every node holds 6 */
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(sl_ctld_decommission_next(&sm, &region, &from, &to, blocked,
						   sizeof(blocked)),
			 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(4, true)), 0);
	assert_true(sm.nodes[4].decommissioning);
	/* its leaders move off it too (moves of kind drain), never to it */
	int k = sl_ctld_balance_next(&sm, 0, &region, &to);
	assert_int_equal(k, SL_CTLD_MOVE_DRAIN + 1);
	assert_int_equal(sm.regions[region].leader, 4);
	assert_int_not_equal(to, 4);
	char err[256];
	assert_int_equal(sl_ctld_check_transfer(&sm, 3, 4, err, sizeof(err)), -EINVAL);
	while (sl_ctld_decommission_next(&sm, &region, &from, &to, blocked, sizeof(blocked)) > 0) {
		assert_true(moves < 8);
		assert_int_equal(from, 4);
		assert_int_not_equal(to, 4);
		/* the target holds fewest replicas of the nodes that may take one */
		for (uint32_t n = 1; n <= 3; n++) {
			bool rep = false;
			for (uint32_t j = 0; j < sm.regions[region].rf; j++)
				rep = rep || sm.regions[region].replicas[j] == n;
			if (!rep)
				assert_true(sl_ctld_node_replicas(&sm, to) <=
					    sl_ctld_node_replicas(&sm, n));
		}
		assert_int_equal(apply_move(
				     sm.n_moves + 1, region, from, to, SL_CTLD_MOVE_DECOMMISSION, 10),
				 0);
		assert_int_equal(sl_ctld_move_get(&sm, sm.n_moves)->kind, SL_CTLD_MOVE_DECOMMISSION);
		assert_true(sl_ctld_replica_move_running(&sm));
		finish_switch(sm.n_moves);
		moves++;
	}
	assert_string_equal(blocked, "");
	assert_int_equal(moves, 6);
	assert_int_equal(sl_ctld_node_replicas(&sm, 4), 0);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(sl_ctld_node_replicas(&sm, n), 8);
	struct json_object *v = sl_ctld_view_members(&sm, NULL, 0);
	assert_true(json_object_get_boolean(member(v, 4, "decommissioned")));
	assert_true(json_object_get_boolean(member(v, 4, "decommissioning")));
	assert_int_equal(json_object_get_int(member(v, 4, "replicas")), 0);
	assert_false(json_object_get_boolean(member(v, 3, "decommissioned")));
	assert_int_equal(json_object_get_int(member(v, 3, "replicas")), 8);
	assert_null(json_object_object_get(v, "decommission_blocked"));
	json_object_put(v);
	/* decommissioning another: three nodes left for RF 3, no node can take its regions */
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(3, true)), 0);
	assert_int_equal(sl_ctld_decommission_next(&sm, &region, &from, &to, blocked,
						   sizeof(blocked)),
			 0);
	assert_non_null(strstr(blocked, "no node to take region"));
	v = sl_ctld_view_members(&sm, NULL, 0);
	assert_non_null(strstr(json_object_get_string(json_object_object_get(
				   v, "decommission_blocked")),
			       "no node to take region"));
	assert_false(json_object_get_boolean(member(v, 3, "decommissioned")));
	json_object_put(v);
	/* recommissioned: node 4 takes replicas again */
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(4, true)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(4, false)), 0);
	assert_int_equal(sl_ctld_decommission_next(&sm, &region, &from, &to, blocked,
						   sizeof(blocked)),
			 1);
	assert_int_equal(from, 3);
	assert_int_equal(to, 4);
	/* the target holds the fewest replicas, ties to the lowest id */
	struct sl_ctld_cluster c = cluster(5, 3, 3);
	c.initial_nodes = 3; /* nodes 1..3 hold 3 each */
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 5; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(1, true)), 0);
	assert_int_equal(sl_ctld_decommission_next(&sm, &region, &from, &to, blocked,
						   sizeof(blocked)),
			 1);
	assert_int_equal(region, 0);
	assert_int_equal(to, 4); /* 4 and 5 hold none: the lower id */
	assert_int_equal(apply_move(1, 0, 1, 4, SL_CTLD_MOVE_DECOMMISSION,
							    10),
			 0);
	finish_switch(1);
	/* counts now 1:2 2:3 3:3 4:1 5:0: region 1 (2, 3, 1) goes to node 5 */
	assert_int_equal(sl_ctld_decommission_next(&sm, &region, &from, &to, blocked,
						   sizeof(blocked)),
			 1);
	assert_int_equal(region, 1);
	assert_int_equal(from, 1);
	assert_int_equal(to, 5);
}

static void test_rebalance(void **state)
{
	(void)state;
	uint32_t region = 0, from = 0, to = 0, moves = 0;
	struct sl_ctld_cluster c = cluster(4, 6, 3);
	c.initial_nodes = 3; /* nodes 1..3 hold 6 each, node 4 nothing */
	snprintf(c.region_protocol[5], sizeof(c.region_protocol[5]), "multileader");
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	/* node 4 has not joined: it takes nothing */
	assert_int_equal(sl_ctld_rebalance_next(&sm, 0, &region, &from, &to), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(4, "a", 2, 0)), 0);
	/* a region in a switch stays where it is */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(1, 0, "multileader", 1)), 0);
	while (sl_ctld_rebalance_next(&sm, 0, &region, &from, &to) > 0) {
		assert_true(moves < 10);
		assert_int_not_equal(region, 0);
		assert_int_not_equal(region, 5); /* multileader */
		assert_int_equal(to, 4);
		assert_true(sl_ctld_node_replicas(&sm, from) >= sl_ctld_node_replicas(&sm, to) + 2);
		for (uint32_t n = 1; n <= 4; n++)
			assert_true(sl_ctld_node_replicas(&sm, from) >= sl_ctld_node_replicas(&sm, n));
		assert_int_equal(apply_move(
				     sm.n_moves + 1, region, from, to, SL_CTLD_MOVE_REBALANCE, 10),
				 0);
		finish_switch(sm.n_moves);
		moves++;
	}
	/* 18 replicas on 4 nodes: counts within one of each other */
	uint32_t min = UINT32_MAX, max = 0;
	for (uint32_t n = 1; n <= 4; n++) {
		uint32_t k = sl_ctld_node_replicas(&sm, n);
		min = k < min ? k : min;
		max = k > max ? k : max;
	}
	assert_true(max - min <= 1);
	assert_int_equal(sl_ctld_node_replicas(&sm, 4), moves);
	assert_true(moves >= 4);
	assert_int_equal(sl_ctld_move_get(&sm, sm.n_moves)->kind, SL_CTLD_MOVE_REBALANCE);
	/* a draining node is no target */
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(sl_ctld_rebalance_next(&sm, 0, &region, &from, &to), 1);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(4, true)), 0);
	assert_int_equal(sl_ctld_rebalance_next(&sm, 0, &region, &from, &to), 0);
	/* a region whose replica an operator moved stays put while the hold lasts: find a move
	 * that the rebalance would undo at once, then see it left alone within the hold */
	struct sl_ctld_cluster c4 = cluster(4, 6, 3);
	bool found = false;
	for (uint32_t r = 0; r < 6 && !found; r++)
		for (uint32_t y = 1; y <= 4 && !found; y++) {
			bootstrap_cluster(&c4);
			for (uint32_t n = 1; n <= 4; n++)
				assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
			uint32_t x = sm.regions[r].replicas[0];
			if (apply_move(sm.n_moves + 1, r, x, y,
							       SL_CTLD_MOVE_REPLICA, 10) != 0)
				continue; /* y holds r already */
			finish_switch(sm.n_moves);
			if (sl_ctld_rebalance_next(&sm, 11 + SL_CTLD_OPERATOR_HOLD_MS, &region, &from,
						   &to) <= 0 ||
			    region != r)
				continue;
			found = true;
			int got = sl_ctld_rebalance_next(&sm, 20, &region, &from, &to);
			assert_true(got == 0 || region != r);
		}
	assert_true(found);
}

static void test_initial_nodes(void **state)
{
	(void)state;
	char err[256];
	struct sl_ctld_cluster c = cluster(4, 8, 3);
	c.initial_nodes = 3;
	bootstrap_cluster(&c);
	assert_int_equal(sm.n_nodes, 4);
	for (uint32_t i = 0; i < sm.n_regions; i++) {
		assert_int_not_equal(sm.regions[i].leader, 4);
		for (uint32_t k = 0; k < sm.regions[i].rf; k++)
			assert_true(sm.regions[i].replicas[k] <= 3);
	}
	assert_int_equal(sl_ctld_node_replicas(&sm, 4), 0);
	assert_int_equal(sl_ctld_node_replicas(&sm, 1), 8);
	/* 0: every node */
	c.initial_nodes = 0;
	bootstrap_cluster(&c);
	assert_int_equal(sl_ctld_node_replicas(&sm, 4), 6);
	/* out of range */
	c.initial_nodes = 5;
	assert_null(sl_ctld_plan(&c, err, sizeof(err)));
	c.initial_nodes = 2;
	assert_null(sl_ctld_plan(&c, err, sizeof(err)));
	/* the config checks them too */
	struct sl_ctld_conf cf;
	static const char *const bad[][2] = {{"5", "3"}, {"2", "3"}};
	for (size_t i = 0; i < 2; i++) {
		sl_ctld_conf_default(&cf);
		assert_int_equal(sl_ctld_conf_set(&cf, "cluster", "nodes", "4", err, sizeof(err)), 0);
		assert_int_equal(sl_ctld_conf_set(&cf, "cluster", "initial_nodes", bad[i][0], err,
						  sizeof(err)),
				 0);
		assert_int_equal(sl_ctld_conf_set(&cf, "cluster", "replication", bad[i][1], err,
						  sizeof(err)),
				 0);
		err[0] = '\0';
		assert_int_equal(sl_ctld_conf_finish(&cf, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "initial_nodes"));
	}
	sl_ctld_conf_default(&cf);
	assert_int_equal(sl_ctld_conf_set(&cf, "cluster", "nodes", "4", err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_set(&cf, "cluster", "initial_nodes", "3", err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_set(&cf, "cluster", "replication", "3", err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&cf, err, sizeof(err)), 0);
	assert_int_equal(cf.cluster.initial_nodes, 3);
}

/* The seal of the old set commits on a majority: with two copies (a map written by hand)
 * the leaving node's seal is needed as well. */
static void test_replica_move_majority(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s;
	char w[SL_CTLD_WHY_MAX];
	sl_ctld_sm_init(&sm);
	memset(&soft, 0, sizeof(soft));
	assert_int_equal(apply_text("{\"op\":\"bootstrap\",\"cluster\":7,\"nodes\":3,\"regions\":["
				    "{\"id\":0,\"hash_lo\":\"0x0000000000000000\",\"hash_hi\":"
				    "\"0xffffffffffffffff\",\"protocol\":\"raft\",\"replicas\":[1,2],"
				    "\"leader\":1}]}"),
			 0);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(apply_move(1, 0, 1, 3, SL_CTLD_MOVE_REPLICA, 10),
			 0);
	hb_region(1, 0, 0, false, 5, 1 * s);
	hb_region(2, 0, 0, true, 5, 1 * s);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 1 has not applied the seal (no majority)");
	hb_region(1, 0, 0, true, 5, 1 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
}

static void test_conf(void **state)
{
	(void)state;
	struct sl_ctld_conf c;
	char err[256];
	sl_ctld_conf_default(&c);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.n_peers, 1);
	assert_string_equal(c.ctl_socket, "./ctld-data/ctld.sock");
	sl_ctld_conf_default(&c);
	assert_int_equal(sl_ctld_conf_set(&c, "ctld", "peers",
					  "\"1@127.0.0.1:7610,2@127.0.0.1:7611,3@127.0.0.1:7612\"",
					  err, sizeof(err)),
			 0);
	assert_int_equal(sl_ctld_conf_set(&c, "ctld", "id", "3", err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "nodes", "3", err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "protocols", "0-3:raft,5:standalone",
					  err, sizeof(err)),
			 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.n_peers, 3);
	assert_int_equal(c.peers[2].port, 7612);
	assert_string_equal(c.cluster.region_protocol[5], "standalone");
	assert_string_equal(c.cluster.region_protocol[4], "");
	/* errors name what is wrong */
	static const char *const bad[][3] = {
	    {"ctld", "peers", "1@127.0.0.1:7610,2@127.0.0.1:7611"},  /* 2 replicas */
	    {"ctld", "peers", "1@127.0.0.1:7610,1@127.0.0.1:7611,3@127.0.0.1:1"},
	    {"ctld", "peers", "1@localhost:7610"},
	    {"ctld", "peers", "2@127.0.0.1:7610"},                    /* own id missing */
	    {"cluster", "protocols", "0-9:raft"},                     /* beyond regions */
	    {"cluster", "protocols", "0-1:paxos"},
	    {"cluster", "replication", "2"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sl_ctld_conf_default(&c);
		assert_int_equal(sl_ctld_conf_set(&c, "cluster", "nodes", "3", err, sizeof(err)), 0);
		assert_int_equal(sl_ctld_conf_set(&c, bad[i][0], bad[i][1], bad[i][2], err,
						  sizeof(err)),
				 0);
		err[0] = '\0';
		assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 0);
	}
	sl_ctld_conf_default(&c);
	assert_int_equal(sl_ctld_conf_set(&c, "ctld", "nope", "1", err, sizeof(err)), -ENOENT);
	assert_int_equal(sl_ctld_conf_set(&c, "ctld", "node_timeout_ms", "5", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(sl_ctld_conf_set(&c, "ctld", "id", "-1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[ctld] id"));
}

static void test_conf_file(void **state)
{
	(void)state;
	char path[] = "/tmp/ctld_conf_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("; a comment\n[ctld]\nid = 2\npeers = \"1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3\"\n"
	      "\n  # another\n[cluster]\nnodes = 5\nregions = 12\nreplication = 3\n"
	      "protocols = 0-1:standalone\n",
	      f);
	fclose(f);
	struct sl_ctld_conf c;
	char err[256];
	sl_ctld_conf_default(&c);
	assert_int_equal(sl_ctld_conf_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.id, 2);
	assert_int_equal(c.n_peers, 3);
	assert_int_equal(c.cluster.nodes, 5);
	assert_int_equal(c.cluster.regions, 12);
	assert_string_equal(c.cluster.region_protocol[1], "standalone");
	/* errors name the file and line */
	static const char *const bad[] = {"[ctld]\nid = 0\n", "id = 1\n", "[ctld\n",
					  "[ctld]\nid\n", "[nope]\nx = 1\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = fopen(path, "w");
		fputs(bad[i], f);
		fclose(f);
		sl_ctld_conf_default(&c);
		err[0] = '\0';
		assert_true(sl_ctld_conf_load(&c, path, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, path));
	}
	unlink(path);
	assert_int_equal(sl_ctld_conf_load(&c, path, err, sizeof(err)), -ENOENT);
}

/* ---------------------------------------------------------------- splits */

/* One heartbeat of `node` reporting region a at epoch ea (sealed or not) and, unless b is
 * UINT32_MAX, region b at eb (sealed or not). */
static void hb_pair(uint32_t node, uint32_t a, uint32_t ea, bool sa, uint32_t b, uint32_t eb,
		    bool sb, uint64_t now_ns)
{
	char text[512], ra[200], rb[200], err[256];
	const char *fmt = "{\"id\":%u,\"role\":\"follower\",\"leader\":null,\"term\":2,"
			  "\"commit_index\":9,\"applied_index\":9,\"epoch\":%u,\"sealed\":%s}";
	snprintf(ra, sizeof(ra), fmt, a, ea, sa ? "true" : "false");
	snprintf(rb, sizeof(rb), fmt, b, eb, sb ? "true" : "false");
	snprintf(text, sizeof(text), "[%s%s%s]", ra, b != UINT32_MAX ? "," : "",
		 b != UINT32_MAX ? rb : "");
	struct json_object *o = hb_regions(text);
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, node, o, now_ns, err, sizeof(err)), 0);
	json_object_put(o);
}

/* One heartbeat of `node` reporting `region` at `epoch` (sealed or not) and, unless child
 * is UINT32_MAX, the split's new region `child` at the same epoch, unsealed. */
static void hb_split(uint32_t node, uint32_t region, uint32_t child, uint32_t epoch,
		     bool sealed, uint64_t now_ns)
{
	hb_pair(node, region, epoch, sealed, child, epoch, false, now_ns);
}

/* The value of `key` of region `id` in the regions view (NULL: absent). */
static struct json_object *region_field(struct json_object *rv, uint32_t id, const char *key)
{
	struct json_object *arr = NULL, *v = NULL;
	assert_true(json_object_object_get_ex(rv, "regions", &arr));
	struct json_object *o = json_object_array_get_idx(arr, id);
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "id")), id);
	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Split and split_done of `region` at `at` (the leader's steps, heartbeats aside), then
 * the move's end; returns the new region's id. */
static uint32_t split_region(uint32_t region, uint64_t at)
{
	uint64_t id = sm.n_moves + 1;
	uint32_t n = sm.n_regions, epoch = sm.regions[region].epoch;
	assert_int_equal(apply_obj(sl_ctld_cmd_split(id, region, at, 100)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(region, epoch + 1, at, n, 200)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "split", 300)), 0);
	assert_int_equal(sm.n_regions, n + 1);
	return n;
}

/* The live regions' ranges cover the hash space once each (a retired region keeps the
 * range it had: history). */
static void assert_live_tiling(void)
{
	uint64_t covered = 0;
	for (uint32_t i = 0; i < sm.n_regions; i++) {
		if (sm.regions[i].merged_into != 0)
			continue;
		covered += sm.regions[i].hash_hi - sm.regions[i].hash_lo + 1;
		for (uint32_t j = 0; j < sm.n_regions; j++)
			assert_true(i == j || sm.regions[j].merged_into != 0 ||
				    sm.regions[i].hash_hi < sm.regions[j].hash_lo ||
				    sm.regions[j].hash_hi < sm.regions[i].hash_lo);
	}
	assert_int_equal(covered, 0); /* 2^64, wrapped */
}

/* A split as the ctld leader drives it: sealed, split_done makes the new region, the move
 * is done once every replica runs both at the new epoch; a second split of the new region;
 * replaying the log on a fresh machine gives the same state. */
static void test_split_flow(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s;
	char err[256], w[SL_CTLD_WHY_MAX];
	n_rec = 0;
	recording = true;
	bootstrap(3, 2, 3);
	memset(&soft, 0, sizeof(soft));
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	const struct sl_ctld_region old = sm.regions[0];
	assert_int_equal(old.hash_lo, 0);
	assert_int_equal(old.hash_hi, 0x7fffffffffffffffull);
	/* the default cut: the middle of the range */
	uint64_t at = 0;
	assert_int_equal(sl_ctld_check_split(&sm, 0, 0, false, &at, err, sizeof(err)), 0);
	assert_int_equal(at, 0x4000000000000000ull);
	uint64_t v = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_split(1, 0, at, 10)), 0);
	const struct sl_ctld_region *r = &sm.regions[0];
	assert_string_equal(r->next_protocol, "raft"); /* what makes the nodes seal */
	assert_int_equal(r->split_at, at);
	assert_int_equal(r->hash_hi, old.hash_hi); /* until split_done */
	assert_int_equal(sm.n_regions, 2);
	assert_int_equal(sm.map_version, v + 1);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	assert_non_null(m);
	assert_int_equal(m->kind, SL_CTLD_MOVE_SPLIT);
	assert_true(sl_ctld_move_is_switch(m->kind));
	assert_int_equal(m->state, SL_CTLD_MOVE_RUNNING);
	assert_int_equal(m->from, 0);
	assert_int_equal(m->to, 0);
	assert_string_equal(m->from_protocol, "raft");
	assert_string_equal(m->to_protocol, "raft");
	assert_int_equal(m->epoch, 0);
	assert_int_equal(m->split_at, at);
	assert_true(sl_ctld_switching(&sm, 0));
	assert_false(sl_ctld_switching(&sm, 1));
	assert_false(sl_ctld_replica_move_running(&sm));
	assert_int_equal(sl_ctld_split_child(&sm, m), UINT32_MAX);
	/* the map the nodes read: split_at while pending, absent elsewhere */
	struct json_object *rv = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_string_equal(json_object_get_string(region_field(rv, 0, "split_at")),
			    "0x4000000000000000");
	assert_string_equal(json_object_get_string(region_field(rv, 0, "next_protocol")), "raft");
	assert_null(region_field(rv, 1, "split_at"));
	assert_null(region_field(rv, 0, "split_from"));
	json_object_put(rv);

	/* nothing else applies meanwhile: not a protocol switch, not a split_done that does
	 * not match (epoch, at, new id); not recorded (the replay applies what committed) */
	recording = false;
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "raft", 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 2, at, 2, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 0, at, 2, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 1, at + 1, 2, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 1, at, 3, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 1, at, 1, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(1, 1, at, 2, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split(2, 0, at, 20)), -EINVAL); /* pending */
	assert_int_equal(sl_ctld_check_split(&sm, 0, at, true, &at, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "switch in progress"));
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(2, 0, "multileader", 20)), -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 9);
	recording = true;

	/* the seal: ready once every replica applied it */
	for (uint32_t n = 1; n <= 3; n++)
		hb_split(n, 0, UINT32_MAX, 0, n != 3, 1 * s);
	assert_false(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 has not applied the seal");
	hb_split(3, 0, UINT32_MAX, 0, true, 1 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "every replica sealed epoch 0: splitting");

	v = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 1, at, 2, 30)), 0);
	assert_int_equal(sm.n_regions, 3);
	assert_int_equal(sm.map_version, v + 1);
	const struct sl_ctld_region *nr = &sm.regions[2];
	/* contiguous, covering exactly the old range */
	assert_int_equal(r->hash_lo, old.hash_lo);
	assert_int_equal(r->hash_hi, at - 1);
	assert_int_equal(nr->hash_lo, r->hash_hi + 1);
	assert_int_equal(nr->hash_hi, old.hash_hi);
	assert_int_equal(r->epoch, 1);
	assert_int_equal(nr->epoch, 1);
	assert_string_equal(r->next_protocol, "");
	assert_string_equal(nr->next_protocol, "");
	assert_int_equal(r->split_at, 0);
	assert_int_equal(nr->split_at, 0);
	assert_int_equal(r->split_from, 0);
	assert_int_equal(nr->split_from, 1); /* region 0, + 1 */
	assert_int_equal(nr->split_epoch, 1);
	assert_string_equal(nr->protocol, old.protocol);
	assert_int_equal(nr->rf, old.rf);
	assert_memory_equal(nr->replicas, old.replicas, sizeof(old.replicas));
	assert_int_equal(nr->leader, old.leader);
	assert_int_equal(nr->next_rf, 0);
	assert_int_equal(sl_ctld_split_child(&sm, m), 2);
	/* both stay out of other moves until every replica runs both */
	assert_true(sl_ctld_switching(&sm, 0));
	assert_true(sl_ctld_switching(&sm, 2));
	assert_false(sl_ctld_switching(&sm, 1));
	recording = false;
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 2, at, 3, 40)), -EINVAL); /* again */
	recording = true;
	rv = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_null(region_field(rv, 0, "split_at"));
	assert_int_equal(json_object_get_int64(region_field(rv, 2, "split_from")), 0);
	assert_int_equal(json_object_get_int64(region_field(rv, 2, "split_epoch")), 1);
	assert_string_equal(json_object_get_string(region_field(rv, 2, "hash_lo")),
			    "0x4000000000000000");
	assert_string_equal(json_object_get_string(region_field(rv, 0, "hash_hi")),
			    "0x3fffffffffffffff");
	assert_int_equal(json_object_get_int64(region_field(rv, 2, "epoch")), 1);
	json_object_put(rv);

	/* done once every replica reports both at epoch 1, unsealed */
	for (uint32_t n = 1; n <= 3; n++)
		hb_split(n, 0, UINT32_MAX, 1, false, 2 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "new region 2: node 1 does not report the region; node 2 does not "
			       "report the region; node 3 does not report the region");
	hb_split(1, 0, 2, 1, false, 2 * s);
	hb_split(2, 0, 2, 1, false, 2 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "new region 2: node 3 does not report the region");
	hb_split(3, 0, 2, 0, false, 2 * s); /* an old row of region 0 */
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 has not switched");
	hb_split(3, 0, 2, 1, false, 2 * s);
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	struct json_object *mv = sl_ctld_view_moves(&sm, &soft, 2 * s, timeout);
	assert_string_equal(move_field(mv, 1, "kind"), "split");
	assert_string_equal(move_field(mv, 1, "split_at"), "0x4000000000000000");
	assert_string_equal(move_field(mv, 1, "new_region"), "2");
	assert_null(move_field(mv, 1, "to"));
	json_object_put(mv);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "split", 50)), 0);
	assert_false(sl_ctld_switching(&sm, 0));
	assert_false(sl_ctld_switching(&sm, 2));

	/* the new region splits in turn (default cut), and so does region 0 again: the id
	 * order of ranges is no longer the hash order */
	uint64_t at2 = 0;
	assert_int_equal(sl_ctld_check_split(&sm, 2, 0, false, &at2, err, sizeof(err)), 0);
	assert_int_equal(at2, 0x6000000000000000ull);
	assert_int_equal(split_region(2, at2), 3);
	assert_int_equal(sm.regions[2].hash_hi, at2 - 1);
	assert_int_equal(sm.regions[3].hash_lo, at2);
	assert_int_equal(sm.regions[3].hash_hi, old.hash_hi);
	assert_int_equal(sm.regions[3].split_from, 3); /* region 2, + 1 */
	assert_int_equal(sm.regions[3].epoch, 2);
	assert_int_equal(sm.regions[2].epoch, 2);
	assert_int_equal(split_region(0, 0x100), 4);
	assert_int_equal(sm.regions[4].hash_lo, 0x100);
	assert_int_equal(sm.regions[4].hash_hi, at - 1);
	assert_int_equal(sm.regions[4].split_from, 1);
	/* the five ranges still cover the hash space once each */
	assert_live_tiling();
	/* the new regions are placed and counted like any other */
	struct json_object *pl = sl_ctld_view_placement(&sm), *arr = NULL;
	assert_true(json_object_object_get_ex(pl, "placement", &arr));
	uint32_t rows = 0;
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		rows += (uint32_t)json_object_array_length(
		    json_object_object_get(json_object_array_get_idx(arr, i), "replicas"));
	assert_int_equal(rows, 5 * 3);
	json_object_put(pl);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(sl_ctld_node_replicas(&sm, n), 5);

	/* two replicas applying the same commands end identical (the refused ones counted
	 * aside) */
	replay_recorded();
	before.applied = before.refused = 0;
	sm.applied = sm.refused = 0;
	assert_memory_equal(&sm, &before, sizeof(sm));
}

/* What split refuses, with the error kind the ctl command answers; a refused command
 * leaves the state unchanged and is counted. */
static void split_refused(uint32_t region, uint64_t at, bool has_at, int rc, const char *why)
{
	char err[256] = "";
	uint64_t out = 0;
	assert_int_equal(sl_ctld_check_split(&sm, region, at, has_at, &out, err, sizeof(err)), rc);
	if (strstr(err, why) == NULL)
		fail_msg("'%s' does not say '%s'", err, why);
	if (!has_at)
		return;
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, region, at, 10)), -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 1);
}

static void test_split_refused(void **state)
{
	(void)state;
	char err[256];
	sl_ctld_sm_init(&sm);
	split_refused(0, 5, true, -EBUSY, "not bootstrapped");
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	snprintf(c.region_protocol[2], sizeof(c.region_protocol[2]), "standalone");
	snprintf(c.region_protocol[3], sizeof(c.region_protocol[3]), "multileader");
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	const struct sl_ctld_region *r0 = &sm.regions[0];
	split_refused(9, 5, true, -ENOENT, "no region 9");
	split_refused(3, 0, false, -EBUSY, "switch it to raft first");
	split_refused(3, sm.regions[3].hash_lo + 1, true, -EBUSY, "runs multileader");
	split_refused(0, r0->hash_lo, true, -EINVAL, "not inside region 0");
	split_refused(0, r0->hash_hi + 1, true, -EINVAL, "not inside region 0");
	split_refused(1, r0->hash_hi, true, -EINVAL, "not inside region 1");
	uint64_t out = 0;
	assert_int_equal(sl_ctld_check_split(&sm, 2, 0, false, &out, err, sizeof(err)), 0);
	/* malformed and stale commands */
	snapshot_state();
	static const char *const bad[] = {
	    "{\"op\":\"split\",\"id\":1,\"region\":0,\"at_ms\":5}",
	    "{\"op\":\"split\",\"id\":1,\"region\":0,\"at\":12,\"at_ms\":5}",
	    "{\"op\":\"split\",\"id\":1,\"region\":0,\"at\":\"0x10\",\"at_ms\":5}",
	    "{\"op\":\"split\",\"id\":1,\"region\":0,\"at\":\"0x000000000000010g\",\"at_ms\":5}",
	    "{\"op\":\"split\",\"id\":0,\"region\":0,\"at\":\"0x0000000000000010\",\"at_ms\":5}",
	    "{\"op\":\"split\",\"id\":1,\"region\":-1,\"at\":\"0x0000000000000010\",\"at_ms\":5}",
	    "{\"op\":\"split_done\",\"region\":0,\"epoch\":1,\"at\":\"0x0000000000000010\","
	    "\"new_region\":4,\"at_ms\":5}", /* none pending */
	    "{\"op\":\"split_done\",\"region\":0,\"epoch\":1,\"at\":\"0x0000000000000010\","
	    "\"at_ms\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(apply_text(bad[i]), -EINVAL);
	assert_unchanged();
	/* a cut at the last hash leaves a new region of one hash: it cannot split again */
	uint32_t n = split_region(0, r0->hash_hi);
	assert_int_equal(sm.regions[n].hash_lo, sm.regions[n].hash_hi);
	split_refused(n, 0, false, -EINVAL, "single hash");
	split_refused(n, sm.regions[n].hash_lo, true, -EINVAL, "single hash");
	/* not during another switch of the region, nor while a replica move runs anywhere */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 1, "multileader", 20)),
			 0);
	split_refused(1, sm.regions[1].hash_hi, true, -EBUSY, "switch in progress");
	struct sl_ctld_cluster c4 = cluster(4, 2, 3);
	bootstrap_cluster(&c4);
	for (uint32_t k = 1; k <= 4; k++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(k, "a", 2, 0)), 0);
	uint32_t from = sm.regions[0].replicas[0], to = 0;
	for (uint32_t k = 1; k <= 4 && to == 0; k++)
		if (!(sm.regions[0].replicas[0] == k || sm.regions[0].replicas[1] == k ||
		      sm.regions[0].replicas[2] == k))
			to = k;
	assert_int_equal(apply_move(1, 0, from, to, SL_CTLD_MOVE_REPLICA,
							    30),
			 0);
	split_refused(1, sm.regions[1].hash_hi, true, -EBUSY, "replica move is running");
	/* a full map takes no new region */
	bootstrap(3, SL_CTLD_MAX_REGIONS, 3);
	split_refused(0, sm.regions[0].hash_hi, true, -ENOSPC, "the most it holds");
}

/* move_core is refused (state unchanged, counted) with err containing `why`. */
static void core_refused(uint32_t region, uint32_t core, int rc, const char *why)
{
	char err[256] = "";
	assert_int_equal(sl_ctld_check_move_core(&sm, region, core, err, sizeof(err)), rc);
	if (strstr(err, why) == NULL)
		fail_msg("'%s' does not say '%s'", err, why);
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_obj(sl_ctld_cmd_move_core(sm.n_moves + 1, region, core, 10)),
			 -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 1);
}

/* A core move: a switch to the same protocol whose next segment runs on another core of
 * every node (the map says core once done, next_core meanwhile); done once every replica
 * reports the new segment on that core; a split's new region takes its parent's core;
 * the leader balance counts regions on the cores they run on; refusals. */
static void test_move_core(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s;
	char w[SL_CTLD_WHY_MAX];
	sl_ctld_sm_init(&sm);
	core_refused(0, 1, -EBUSY, "not bootstrapped");
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	snprintf(c.region_protocol[2], sizeof(c.region_protocol[2]), "standalone");
	snprintf(c.region_protocol[3], sizeof(c.region_protocol[3]), "multileader");
	bootstrap_cluster(&c);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(1, "a", 2, 0)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "a", 2, 0)), 0);
	core_refused(0, 1, -EBUSY, "node 3 has not joined");
	assert_int_equal(apply_obj(sl_ctld_cmd_join(3, "a", 2, 0)), 0);
	core_refused(9, 1, -ENOENT, "no region 9");
	core_refused(0, 2, -EINVAL, "2 worker cores");
	core_refused(0, 0, -EBUSY, "runs on core 0 already");
	core_refused(1, 1, -EBUSY, "runs on core 1 already");
	core_refused(3, 0, -EBUSY, "runs multileader");
	/* a standalone region moves too */
	char err[256];
	assert_int_equal(sl_ctld_check_move_core(&sm, 2, 1, err, sizeof(err)), 0);
	assert_int_equal(sl_ctld_region_core(&sm, 0, 2), 0);

	memset(&soft, 0, sizeof(soft));
	uint64_t v = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_move_core(1, 0, 1, 10)), 0);
	const struct sl_ctld_region *r = &sm.regions[0];
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	assert_non_null(m);
	assert_int_equal(m->kind, SL_CTLD_MOVE_CORE);
	assert_true(sl_ctld_move_is_switch(m->kind));
	assert_int_equal(m->core, 2);
	assert_string_equal(m->from_protocol, "raft");
	assert_string_equal(m->to_protocol, "raft");
	assert_string_equal(r->next_protocol, "raft"); /* what makes the nodes seal */
	assert_int_equal(r->next_core, 2);
	assert_int_equal(r->core, 0);
	assert_int_equal(sm.map_version, v + 1);
	assert_true(sl_ctld_switching(&sm, 0));
	core_refused(0, 0, -EBUSY, "switch in progress");
	/* the map the nodes read: next_core while it runs, no core yet */
	struct json_object *rv = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_int_equal(json_object_get_int64(region_field(rv, 0, "next_core")), 1);
	assert_null(region_field(rv, 0, "core"));
	json_object_put(rv);
	struct json_object *mv = sl_ctld_view_moves(&sm, NULL, 0, 1);
	struct json_object *arr = NULL;
	assert_true(json_object_object_get_ex(mv, "moves", &arr));
	struct json_object *m0 = json_object_array_get_idx(arr, 0), *f = NULL;
	assert_true(json_object_object_get_ex(m0, "kind", &f));
	assert_string_equal(json_object_get_string(f), "core");
	assert_true(json_object_object_get_ex(m0, "to_core", &f));
	assert_int_equal(json_object_get_int64(f), 1);
	json_object_put(mv);

	/* sealed everywhere: the next segment runs on core 1 */
	for (uint32_t n = 1; n <= 3; n++)
		hb_region(n, 0, 0, true, 100, 10 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 10 * s, timeout, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "raft", 20)), 0);
	assert_int_equal(r->core, 2);
	assert_int_equal(r->next_core, 0);
	assert_int_equal(r->epoch, 1);
	assert_int_equal(sl_ctld_region_core(&sm, 0, 2), 1);
	/* done once every replica runs segment 1 on core 1: one still on core 0 waits */
	char text[320];
	for (uint32_t n = 1; n <= 3; n++) {
		snprintf(text, sizeof(text),
			 "[{\"id\":0,\"role\":\"follower\",\"leader\":null,\"term\":2,"
			 "\"commit_index\":200,\"applied_index\":200,\"epoch\":1,"
			 "\"sealed\":false,\"core\":%u}]",
			 n == 3 ? 0 : 1);
		struct json_object *o = hb_regions(text);
		assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, n, o, 11 * s, err, sizeof(err)), 0);
		json_object_put(o);
	}
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 11 * s, timeout, w, sizeof(w)));
	assert_non_null(strstr(w, "node 3 runs it on core 0, not 1 yet"));
	struct json_object *o = hb_regions("[{\"id\":0,\"role\":\"follower\",\"leader\":null,"
					   "\"term\":2,\"commit_index\":200,\"applied_index\":200,"
					   "\"epoch\":1,\"sealed\":false,\"core\":1}]");
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 3, o, 11 * s, err, sizeof(err)), 0);
	json_object_put(o);
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 11 * s, timeout, w, sizeof(w)));
	/* a malformed core is refused */
	o = hb_regions("[{\"id\":0,\"role\":\"follower\",\"leader\":null,\"term\":2,"
		       "\"commit_index\":200,\"applied_index\":200,\"core\":-1}]");
	assert_int_not_equal(sl_ctld_soft_heartbeat(&soft, &sm, 3, o, 11 * s, err, sizeof(err)), 0);
	json_object_put(o);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "moved", 30)), 0);
	rv = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_int_equal(json_object_get_int64(region_field(rv, 0, "core")), 1);
	assert_null(region_field(rv, 0, "next_core"));
	json_object_put(rv);
	core_refused(0, 1, -EBUSY, "runs on core 1 already");

	/* a split's new region runs on its parent's core; merging regions on different cores
	 * is refused */
	uint32_t child = split_region(0, 0x2000000000000000ull);
	assert_int_equal(sm.regions[child].core, 2);
	assert_int_equal(sl_ctld_region_core(&sm, child, 2), 1);
	uint64_t cid = sm.n_moves + 1;
	assert_int_equal(apply_obj(sl_ctld_cmd_move_core(cid, child, 0, 40)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(child, sm.regions[child].epoch + 1,
								 "raft", 50)),
			 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(cid, true, "moved", 60)), 0);
	assert_int_equal(sl_ctld_region_core(&sm, child, 2), 0);
	assert_int_equal(sl_ctld_region_core(&sm, 0, 2), 1);
	uint32_t with = 0;
	assert_int_not_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "different cores"));
	/* the command's own checks: malformed, stale */
	snapshot_state();
	static const char *const bad[] = {
	    "{\"op\":\"move_core\",\"id\":99,\"region\":1,\"at_ms\":5}",
	    "{\"op\":\"move_core\",\"id\":99,\"region\":1,\"core\":-1,\"at_ms\":5}",
	    "{\"op\":\"move_core\",\"id\":99,\"region\":1,\"core\":\"0\",\"at_ms\":5}",
	    "{\"op\":\"move_core\",\"id\":1,\"region\":1,\"core\":0,\"at_ms\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(apply_text(bad[i]), -EINVAL);
	assert_unchanged();
}

/* Region r moves to core `core`: the move asked, switched and ended. */
static void core_move(uint32_t r, uint32_t core)
{
	uint64_t id = sm.n_moves + 1;
	assert_int_equal(apply_obj(sl_ctld_cmd_move_core(id, r, core, 8)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(r, sm.regions[r].epoch + 1, "raft",
								 9)),
			 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "moved", 10)), 0);
}

/* [cluster] regions_target: ctld splits the widest live region while there are fewer,
 * merges the narrowest pair of neighbours that may merge while there are more, one move at
 * a time, and says why nothing moves. */
static void test_count_next(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t region = 0, with = 0;
	struct sl_ctld_split_conf conf = {.regions_target = 0};
	bootstrap(3, 2, 3);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 0);
	conf.regions_target = 2;
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 0);
	/* fewer: the widest first (equal: the lowest id), then the other, then a half */
	conf.regions_target = 4;
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 1);
	assert_int_equal(region, 0);
	assert_string_equal(why, "regions_target 4: 2 live regions");
	uint32_t c2 = split_region(0, 0x4000000000000000ull);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 1);
	assert_int_equal(region, 1);
	/* one switch at a time */
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, 1, 0xc000000000000000ull, 5)),
			 0);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(1, 1, 0xc000000000000000ull, 3, 6)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(sm.n_moves, true, "split", 7)), 0);
	assert_int_equal(sm.n_regions, 4);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 0);
	/* more: the narrowest pair that may merge; a pair on different cores is skipped */
	conf.regions_target = 3;
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 2);
	assert_int_equal(region, 0);
	assert_int_equal(with, c2);
	assert_string_equal(why, "regions_target 3: 4 live regions");
	core_move(c2, 1);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 2);
	assert_int_equal(region, 1); /* region 1 and its half 3, on core 1 */
	assert_int_equal(with, 3);
	core_move(3, 0);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 2);
	assert_int_equal(region, c2); /* region 2 (moved to core 1) and region 1 */
	assert_int_equal(with, 1);
	/* none may merge (cores 0, 1, 0, 1 in hash order): why says the first that cannot */
	core_move(1, 0);
	core_move(3, 1);
	assert_int_equal(sl_ctld_count_next(&sm, &conf, &region, &with, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "regions_target 3, 4 live regions: region 0 cannot merge"));
}

/* Leader balance, rebalance and decommission leave a region with a split pending alone;
 * the new region takes part once the split's move is done. */
static void test_split_balance(void **state)
{
	(void)state;
	uint32_t region = 0, from = 0, to = 0;
	struct sl_ctld_cluster c = cluster(4, 6, 3);
	c.initial_nodes = 3; /* node 4 holds nothing: the rebalance has work */
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 4; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	/* the rebalance's first pick (lowest id) and a drain's are region 0 until it splits */
	assert_int_equal(sl_ctld_rebalance_next(&sm, 0, &region, &from, &to), 1);
	assert_int_equal(region, 0);
	uint32_t lead = sm.regions[0].leader;
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(lead, true)), 0);
	assert_int_equal(sl_ctld_balance_next(&sm, 0, &region, &to), SL_CTLD_MOVE_DRAIN + 1);
	assert_int_equal(region, 0);
	uint64_t at = sm.regions[0].hash_hi;
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, 0, at, 10)), 0);
	uint64_t split_id = sm.n_moves;
	for (uint32_t k = 0; k < 40 && sl_ctld_balance_next(&sm, 0, &region, &to) > 0; k++) {
		assert_int_not_equal(region, 0);
		assert_int_equal(apply_obj(sl_ctld_cmd_balance(sm.n_moves + 1, region, to, 0, 0,
							       SL_CTLD_MOVE_DRAIN, NULL)),
				 0);
	}
	assert_int_equal(sm.regions[0].leader, lead); /* it stays while the split runs */
	assert_int_equal(sl_ctld_rebalance_next(&sm, 0, &region, &from, &to), 1);
	assert_int_not_equal(region, 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(lead, true)), 0);
	char blocked[SL_CTLD_WHY_MAX];
	assert_int_equal(sl_ctld_decommission_next(&sm, &region, &from, &to, blocked,
						   sizeof(blocked)),
			 1);
	assert_int_not_equal(region, 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(lead, false)), 0);
	/* split done, its move still running: neither half moves */
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 1, at, 6, 20)), 0);
	int next = sl_ctld_balance_next(&sm, 0, &region, &to);
	assert_true(next == 0 || (region != 0 && region != 6));
	uint32_t other = sm.regions[6].replicas[0] != lead ? sm.regions[6].replicas[0]
							   : sm.regions[6].replicas[1];
	assert_int_equal(sl_ctld_check_transfer(&sm, 6, other, blocked, sizeof(blocked)), -EINVAL);
	assert_non_null(strstr(blocked, "switch"));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(split_id, true, "split", 30)), 0);
	/* then both are drained like the others */
	uint32_t k = 0;
	bool saw0 = false, saw6 = false;
	while (k < 40 && sl_ctld_balance_next(&sm, 0, &region, &to) == SL_CTLD_MOVE_DRAIN + 1) {
		saw0 = saw0 || region == 0;
		saw6 = saw6 || region == 6;
		assert_int_equal(apply_obj(sl_ctld_cmd_balance(sm.n_moves + 1, region, to, 0, 0,
							       SL_CTLD_MOVE_DRAIN, NULL)),
				 0);
		k++;
	}
	assert_true(saw0 && saw6);
	assert_int_not_equal(sm.regions[6].leader, lead);
}

/* ---------------------------------------------------------------- automatic splits */

#define NO_FIGURE (-1) /* a row without points or bytes (a node that predates them) */

/* One heartbeat of `node` reporting every region of the map at its epoch, unsealed, with
 * points[i] and bytes[i] (NO_FIGURE: the field is left out). */
static void hb_load(uint32_t node, const int64_t *points, const int64_t *bytes,
		    uint64_t now_ns)
{
	static char text[SL_CTLD_MAX_REGIONS * 200];
	char row[200], err[256];
	snprintf(text, sizeof(text), "[");
	for (uint32_t i = 0; i < sm.n_regions; i++) {
		int n = snprintf(row, sizeof(row),
				 "%s{\"id\":%u,\"role\":\"follower\",\"leader\":null,\"term\":2,"
				 "\"commit_index\":9,\"applied_index\":9,\"epoch\":%u,"
				 "\"sealed\":false",
				 i ? "," : "", i, sm.regions[i].epoch);
		if (points[i] != NO_FIGURE)
			n += snprintf(row + n, sizeof(row) - (size_t)n, ",\"points\":%lld",
				      (long long)points[i]);
		if (bytes[i] != NO_FIGURE)
			snprintf(row + n, sizeof(row) - (size_t)n, ",\"bytes\":%lld",
				 (long long)bytes[i]);
		strcat(text, row);
		strcat(text, "}");
	}
	strcat(text, "]");
	struct json_object *o = hb_regions(text);
	assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, node, o, now_ns, err, sizeof(err)), 0);
	json_object_put(o);
}

static struct sl_ctld_split_obs obs;
static const uint64_t S = 1000000000ull, HOUR = 3600 * S; /* a timeout no test reaches */

/* The leader's observation at t_ms, then its decision: the region (UINT32_MAX: none). */
static uint32_t split_at_ms(uint64_t t_ms, const struct sl_ctld_split_conf *conf, char *why,
			    size_t why_len)
{
	uint32_t region = UINT32_MAX;
	sl_ctld_split_observe(&sm, &soft, t_ms * 1000000ull, HOUR, conf, &obs);
	int rc = sl_ctld_split_next(&sm, &obs, t_ms, conf, &region, why, why_len);
	assert_int_equal(rc, region != UINT32_MAX);
	return region;
}

/* A cluster of 3 nodes, `regions` regions of RF 3, joined, no heartbeats, no windows. */
static void autosplit_cluster(const struct sl_ctld_cluster *c)
{
	bootstrap_cluster(c);
	for (uint32_t n = 1; n <= c->nodes; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	memset(&soft, 0, sizeof(soft));
	memset(&obs, 0, sizeof(obs));
}

/* points and bytes of heartbeat rows: recorded per node and region, absent = unknown, the
 * write rate from two heartbeats of the same node, malformed ones refused; the regions
 * view shows the largest figures of live replicas (null when unknown or on a follower). */
static void test_autosplit_heartbeat(void **state)
{
	(void)state;
	char err[256];
	struct sl_ctld_cluster c = cluster(3, 2, 3);
	autosplit_cluster(&c);
	int64_t p1[] = {1000, NO_FIGURE}, b1[] = {4096, NO_FIGURE};
	hb_load(1, p1, b1, 10 * S);
	const struct sl_ctld_hb_region *h = &soft.hb[1][0];
	assert_true(h->has_points && h->has_bytes && !h->has_rate);
	assert_int_equal(h->points, 1000);
	assert_int_equal(h->bytes, 4096);
	assert_false(soft.hb[1][1].has_points || soft.hb[1][1].has_bytes);
	/* 5000 more points in 2 s: 2500 points/s (from the row's heartbeat: a join in
	 * between, which ctld counts as alive, does not shorten the time) */
	int64_t p2[] = {6000, 7}, b2[] = {8192, 100};
	soft.last_hb_ns[1] = 11 * S;
	hb_load(1, p2, b2, 12 * S);
	assert_true(h->has_rate);
	assert_int_equal(h->points_per_s, 2500);
	assert_false(soft.hb[1][1].has_rate); /* no points in the previous heartbeat */
	/* fewer points (a restarted store): the rate is unknown, not 0 */
	int64_t p3[] = {10, 7};
	hb_load(1, p3, b2, 13 * S);
	assert_false(h->has_rate);
	assert_true(soft.hb[1][1].has_rate);
	assert_int_equal(soft.hb[1][1].points_per_s, 0);
	hb_load(1, p2, b2, 14 * S);
	/* malformed figures are refused and change nothing */
	struct sl_ctld_soft keep = soft;
	static const char *const bad[] = {
	    "[{\"id\":0,\"role\":\"leader\",\"leader\":1,\"term\":3,\"commit_index\":1,"
	    "\"applied_index\":1,\"points\":-1}]",
	    "[{\"id\":0,\"role\":\"leader\",\"leader\":1,\"term\":3,\"commit_index\":1,"
	    "\"applied_index\":1,\"points\":1.5}]",
	    "[{\"id\":0,\"role\":\"leader\",\"leader\":1,\"term\":3,\"commit_index\":1,"
	    "\"applied_index\":1,\"bytes\":\"big\"}]",
	    "[{\"id\":0,\"role\":\"leader\",\"leader\":1,\"term\":3,\"commit_index\":1,"
	    "\"applied_index\":1,\"bytes\":null}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = hb_regions(bad[i]);
		err[0] = '\0';
		assert_int_equal(sl_ctld_soft_heartbeat(&soft, &sm, 1, o, 15 * S, err, sizeof(err)),
				 -EINVAL);
		assert_true(strstr(err, "points") != NULL || strstr(err, "bytes") != NULL);
		json_object_put(o);
	}
	assert_memory_equal(&keep, &soft, sizeof(soft));
	/* the region's load: the largest of live replicas; a silent one does not count */
	int64_t p4[] = {6000, NO_FIGURE}, b4[] = {1 << 20, NO_FIGURE};
	hb_load(2, p4, b4, 14 * S);
	struct sl_ctld_load ld;
	sl_ctld_region_load(&sm, &soft, 0, 14 * S, 3 * S, &ld);
	assert_true(ld.has_bytes && ld.has_rate);
	assert_int_equal(ld.bytes, 1 << 20);
	assert_int_equal(ld.points_per_s, 5990); /* node 1's (10 -> 6000 in 1 s), node 2 has
						  * no rate yet */
	sl_ctld_region_load(&sm, &soft, 0, 16 * S, 1 * S, &ld);
	assert_false(ld.has_bytes || ld.has_rate);
	struct json_object *rv = sl_ctld_view_regions(&sm, &soft, 14 * S, 3 * S);
	assert_int_equal(json_object_get_int64(region_field(rv, 0, "bytes")), 1 << 20);
	assert_int_equal(json_object_get_int64(region_field(rv, 0, "points_per_s")), 5990);
	assert_int_equal(json_object_get_int64(region_field(rv, 1, "bytes")), 100);
	assert_int_equal(json_object_get_int64(region_field(rv, 1, "points_per_s")), 0);
	json_object_put(rv);
	rv = sl_ctld_view_regions(&sm, NULL, 14 * S, 3 * S); /* a follower: unknown */
	assert_true(json_object_object_get_ex(json_object_array_get_idx(
						  json_object_object_get(rv, "regions"), 0),
					      "bytes", NULL));
	assert_null(region_field(rv, 0, "bytes"));
	assert_null(region_field(rv, 0, "points_per_s"));
	json_object_put(rv);
}

/* By size: nothing below the threshold, unknown sizes or before the sustain time; the
 * region above it for split_sustain_ms is split, the largest replica's size counting. */
static void test_autosplit_size(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	autosplit_cluster(&c);
	const struct sl_ctld_split_conf conf = {.bytes = 1000000000, .sustain_ms = 30000};
	int64_t pts[] = {1, 1, 1, 1};
	int64_t big[] = {1000000000, NO_FIGURE, 1200000000, 10}; /* 0: at, not above */
	int64_t small[] = {1000000000, 2000000000, 500000000, 10}; /* 1 on node 2 only */
	int64_t none[] = {NO_FIGURE, NO_FIGURE, NO_FIGURE, NO_FIGURE};
	hb_load(1, pts, big, 0);
	hb_load(2, pts, none, 0);
	hb_load(3, pts, none, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	assert_string_equal(why, "");
	assert_int_equal(split_at_ms(29999, &conf, why, sizeof(why)), UINT32_MAX);
	/* off: never */
	const struct sl_ctld_split_conf off = {.sustain_ms = 30000};
	struct sl_ctld_split_obs keep = obs;
	assert_int_equal(split_at_ms(60000, &off, why, sizeof(why)), UINT32_MAX);
	obs = keep;
	assert_int_equal(split_at_ms(30000, &conf, why, sizeof(why)), 2);
	assert_string_equal(why, "size 1.2 GB above split_bytes 1.0 GB for 30 s");
	assert_int_equal(sm.regions[0].hash_lo, 0); /* nothing applied by the decision */
	/* region 1 goes above on node 2 later: region 2 (above longer) still goes first */
	hb_load(2, pts, small, 31 * S);
	assert_int_equal(split_at_ms(31000, &conf, why, sizeof(why)), 2);
	assert_true(obs.r[1].bytes_above);
	assert_int_equal(obs.r[1].bytes_since_ms, 31000);
	assert_int_equal(obs.r[1].load.bytes, 2000000000);
	assert_false(obs.r[0].bytes_above);
	assert_false(obs.r[3].bytes_above);
	/* what the leader proposes: the middle of the range, as the manual default */
	uint64_t at = 0;
	char err[256];
	assert_int_equal(sl_ctld_check_split(&sm, 2, 0, false, &at, err, sizeof(err)), 0);
	assert_int_equal(at, sm.regions[2].hash_lo + (sm.regions[2].hash_hi - sm.regions[2].hash_lo) / 2 + 1);
}

/* By write rate: derived from the points of successive heartbeats of a replica; split once
 * it stayed above split_points_per_s for the sustain time. */
static void test_autosplit_rate(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	struct sl_ctld_cluster c = cluster(3, 3, 3);
	autosplit_cluster(&c);
	const struct sl_ctld_split_conf conf = {.points_per_s = 50000, .sustain_ms = 30000};
	int64_t none[] = {NO_FIGURE, NO_FIGURE, NO_FIGURE};
	for (uint64_t t = 0; t <= 31; t++) {
		/* region 1 takes 52000 points/s, region 0 40000, region 2 exactly 50000 */
		int64_t pts[] = {(int64_t)t * 40000, (int64_t)t * 52000, (int64_t)t * 50000};
		hb_load(1, pts, none, t * S);
		uint32_t r = split_at_ms(t * 1000, &conf, why, sizeof(why));
		if (t < 31) /* a rate from t = 1 s on: above for 30 s at t = 31 s */
			assert_int_equal(r, UINT32_MAX);
		else
			assert_int_equal(r, 1);
	}
	assert_string_equal(why, "write rate 52000 points/s above split_points_per_s 50000 for "
				 "30 s");
	assert_true(obs.r[1].load.has_rate && !obs.r[1].load.has_bytes);
	assert_false(obs.r[0].rate_above || obs.r[2].rate_above);
}

/* A figure that dips to the threshold (or becomes unknown) starts the window over. */
static void test_autosplit_dip_resets(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	struct sl_ctld_cluster c = cluster(3, 2, 3);
	autosplit_cluster(&c);
	const struct sl_ctld_split_conf conf = {.bytes = 1000, .sustain_ms = 30000};
	int64_t pts[] = {1, 1}, above[] = {5000, 5}, at[] = {1000, 5}, unknown[] = {NO_FIGURE, 5};
	hb_load(1, pts, above, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(20000, &conf, why, sizeof(why)), UINT32_MAX);
	hb_load(1, pts, at, 20 * S);
	assert_int_equal(split_at_ms(20500, &conf, why, sizeof(why)), UINT32_MAX);
	assert_false(obs.r[0].bytes_above);
	hb_load(1, pts, above, 21 * S);
	assert_int_equal(split_at_ms(21000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(31000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(50999, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(51000, &conf, why, sizeof(why)), 0);
	assert_string_equal(why, "size 5.0 kB above split_bytes 1.0 kB for 30 s");
	/* unknown is not "still above": the window starts over */
	hb_load(1, pts, unknown, 52 * S);
	assert_int_equal(split_at_ms(52000, &conf, why, sizeof(why)), UINT32_MAX);
	hb_load(1, pts, above, 53 * S);
	assert_int_equal(split_at_ms(53000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(82999, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(83000, &conf, why, sizeof(why)), 0);
	/* every replica silent (heartbeats older than the timeout): unknown as well */
	sl_ctld_split_observe(&sm, &soft, 83 * S + HOUR + 1, HOUR, &conf, &obs);
	assert_false(obs.r[0].bytes_above);
}

/* Of several due regions the one above the longest goes (by either figure); ties: the
 * larger size, then the lowest id. */
static void test_autosplit_longest_wins(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	autosplit_cluster(&c);
	const struct sl_ctld_split_conf conf = {.bytes = 100, .points_per_s = 100,
						.sustain_ms = 1000};
	/* region 3 by size from t = 0, region 1 by size from t = 5 s, region 2 by rate from
	 * t = 1 s (its first rate) */
	int64_t p0[] = {0, 0, 0, 0}, b0[] = {1, 1, 1, 500};
	hb_load(1, p0, b0, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	int64_t p1[] = {0, 0, 1000, 0}, b1[] = {1, 1, 1, 500};
	hb_load(1, p1, b1, 1 * S);
	assert_int_equal(split_at_ms(1000, &conf, why, sizeof(why)), 3);
	int64_t p2[] = {0, 0, 6000, 0}, b2[] = {1, 200, 1, 500};
	hb_load(1, p2, b2, 5 * S);
	assert_int_equal(split_at_ms(10000, &conf, why, sizeof(why)), 3);
	assert_string_equal(why, "size 500 B above split_bytes 100 B for 10 s");
	/* region 3 dips: region 2 (by rate, since 1 s) beats region 1 (by size, since 5 s) */
	int64_t p3[] = {0, 0, 11000, 0}, b3[] = {1, 200, 1, 50};
	hb_load(1, p3, b3, 10 * S);
	assert_int_equal(split_at_ms(10000, &conf, why, sizeof(why)), 2);
	assert_string_equal(why, "write rate 1000 points/s above split_points_per_s 100 for 9 s");

	/* ties in time: the larger size, then the lowest id */
	autosplit_cluster(&c);
	int64_t pt[] = {1, 1, 1, 1}, bt[] = {1, 300, 1, 400};
	hb_load(1, pt, bt, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(1000, &conf, why, sizeof(why)), 3);
	memset(&obs, 0, sizeof(obs));
	int64_t be[] = {1, 300, 1, 300};
	hb_load(1, pt, be, 2 * S);
	assert_int_equal(split_at_ms(2000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(3000, &conf, why, sizeof(why)), 1);
}

/* Nothing is split while a region switches (a protocol switch, a split) or a replica move
 * runs; a due region that cannot split (multileader, one hash, a full map) is skipped and
 * why says so. */
static void test_autosplit_blocked(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX], err[256];
	struct sl_ctld_cluster c = cluster(4, 4, 3);
	c.initial_nodes = 3;
	snprintf(c.region_protocol[3], sizeof(c.region_protocol[3]), "multileader");
	autosplit_cluster(&c);
	const struct sl_ctld_split_conf conf = {.bytes = 100, .sustain_ms = 1000};
	int64_t pts[] = {1, 1, 1, 1}, b[] = {1, 200, 300, 400};
	hb_load(1, pts, b, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	/* region 3 (the largest) runs multileader: region 2 goes, why names region 3 */
	assert_int_equal(split_at_ms(1000, &conf, why, sizeof(why)), 2);
	int64_t b1[] = {1, 1, 1, 400};
	hb_load(1, pts, b1, 1 * S);
	assert_int_equal(split_at_ms(2000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_non_null(strstr(why, "region 3 is due (size 400 B above split_bytes 100 B for "
				    "2 s) but cannot split"));
	assert_non_null(strstr(why, "runs multileader"));
	hb_load(1, pts, b, 2 * S);
	assert_int_equal(split_at_ms(3000, &conf, why, sizeof(why)), UINT32_MAX); /* new window */
	assert_int_equal(split_at_ms(4000, &conf, why, sizeof(why)), 2); /* 1 and 2: larger */

	/* a protocol switch of region 0: nothing anywhere until it ended */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 0, "multileader", 10)),
			 0);
	assert_int_equal(split_at_ms(5000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_string_equal(why, "");
	finish_switch(sm.n_moves);
	hb_load(1, pts, b, 6 * S);
	assert_int_equal(split_at_ms(6000, &conf, why, sizeof(why)), 2);
	/* a replica move (of region 1, node 2 -> 4): nothing; region 1's window starts over */
	assert_int_equal(apply_move(sm.n_moves + 1, 1, 2, 4,
							    SL_CTLD_MOVE_REPLICA, 10),
			 0);
	uint64_t move = sm.n_moves;
	assert_int_equal(split_at_ms(7000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_false(obs.r[1].bytes_above);
	finish_switch(move);
	hb_load(1, pts, b, 8 * S);
	assert_int_equal(split_at_ms(8000, &conf, why, sizeof(why)), 2);
	assert_int_equal(obs.r[1].bytes_since_ms, 8000);
	/* a split (an operator's) of region 2: nothing, and its windows start over */
	uint64_t at = 0;
	assert_int_equal(sl_ctld_check_split(&sm, 2, 0, false, &at, err, sizeof(err)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, 2, at, 10)), 0);
	assert_int_equal(split_at_ms(9000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_false(obs.r[2].bytes_above);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(2, sm.regions[2].epoch + 1, at, 4, 20)),
			 0);
	assert_int_equal(split_at_ms(9500, &conf, why, sizeof(why)), UINT32_MAX); /* still runs */
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(sm.n_moves, true, "split", 30)), 0);
	int64_t p5[] = {1, 1, 1, 1, 1}, b5[] = {1, 1, 300, 1, 1};
	hb_load(1, p5, b5, 10 * S);
	assert_int_equal(split_at_ms(10000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(11000, &conf, why, sizeof(why)), 2);

	/* a region of a single hash: skipped */
	const struct sl_ctld_region *r2 = &sm.regions[2];
	uint32_t one = split_region(2, r2->hash_hi);
	assert_int_equal(sm.regions[one].hash_lo, sm.regions[one].hash_hi);
	memset(&obs, 0, sizeof(obs));
	int64_t p6[] = {1, 1, 1, 1, 1, 1}, b6[] = {1, 1, 1, 1, 1, 900};
	hb_load(1, p6, b6, 12 * S);
	assert_int_equal(split_at_ms(12000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(13000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_non_null(strstr(why, "region 5 is due"));
	assert_non_null(strstr(why, "single hash"));

	/* a full map: nothing can split */
	struct sl_ctld_cluster full = cluster(3, SL_CTLD_MAX_REGIONS, 3);
	autosplit_cluster(&full);
	int64_t pf[SL_CTLD_MAX_REGIONS], bf[SL_CTLD_MAX_REGIONS];
	for (uint32_t i = 0; i < SL_CTLD_MAX_REGIONS; i++) {
		pf[i] = 1;
		bf[i] = i == 7 ? 1000 : 1;
	}
	hb_load(1, pf, bf, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(5000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_non_null(strstr(why, "region 7 is due"));
	assert_non_null(strstr(why, "the most it holds"));
}

/* A command of ctld's own kind (`head`: the command's JSON up to its kind, `kind` the only
 * one taken) with a kind of another name, without a why, or with a null kind is refused
 * and changes nothing; then the recorded log replayed on a fresh machine gives the same
 * state, move `id` of kind `want` in it. */
static void own_kinds_checked(const char *head, const char *kind, uint64_t id, uint32_t want)
{
	char bad[3][256];
	snprintf(bad[0], sizeof(bad[0]), "%s\"kind\":\"%s-ish\",\"why\":\"x\"}", head, kind);
	snprintf(bad[1], sizeof(bad[1]), "%s\"kind\":\"%s\"}", head, kind);
	snprintf(bad[2], sizeof(bad[2]), "%s\"kind\":null,\"why\":\"x\"}", head);
	recording = false;
	snapshot_state();
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(apply_text(bad[i]), -EINVAL);
	assert_unchanged();
	/* two replicas applying the same commands end identical */
	replay_recorded();
	before.applied = before.refused = 0;
	sm.applied = sm.refused = 0;
	assert_memory_equal(&sm, &before, sizeof(sm));
	assert_int_equal(sl_ctld_move_get(&sm, id)->kind, want);
}

/* The decision goes to the log as an ordinary split of kind auto-split with its why: the
 * moves view shows it, it is a switch and a split for every rule, and two replicas that
 * apply the same commands end identical. */
static void test_autosplit_move(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX], err[256], w[SL_CTLD_WHY_MAX];
	n_rec = 0;
	recording = true;
	struct sl_ctld_cluster c = cluster(3, 2, 3);
	autosplit_cluster(&c);
	const struct sl_ctld_split_conf conf = {.bytes = 1000000000, .sustain_ms = 30000};
	int64_t pts[] = {1, 1}, b[] = {1, 1500000000};
	hb_load(1, pts, b, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(31000, &conf, why, sizeof(why)), 1);
	uint64_t at = 0;
	assert_int_equal(sl_ctld_check_split(&sm, 1, 0, false, &at, err, sizeof(err)), 0);
	uint64_t id = sm.n_moves + 1;
	assert_int_equal(apply_obj(sl_ctld_cmd_autosplit(id, 1, at, 31000, why)), 0);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, id);
	assert_int_equal(m->kind, SL_CTLD_MOVE_AUTOSPLIT);
	assert_true(sl_ctld_move_is_switch(m->kind) && sl_ctld_move_is_split(m->kind));
	assert_false(sl_ctld_move_is_split(SL_CTLD_MOVE_REPLICA));
	assert_string_equal(m->why, "size 1.5 GB above split_bytes 1.0 GB for 31 s");
	assert_true(sl_ctld_switching(&sm, 1));
	assert_int_equal(sm.regions[1].split_at, at);
	/* the next one waits for it */
	assert_int_equal(split_at_ms(32000, &conf, why, sizeof(why)), UINT32_MAX);
	struct json_object *mv = sl_ctld_view_moves(&sm, &soft, 32 * S, HOUR);
	assert_string_equal(move_field(mv, id, "kind"), "auto-split");
	assert_string_equal(move_field(mv, id, "why"),
			    "size 1.5 GB above split_bytes 1.0 GB for 31 s");
	assert_string_equal(move_field(mv, id, "state"), "running");
	assert_null(move_field(mv, id, "to"));
	assert_non_null(move_field(mv, id, "split_at"));
	assert_non_null(move_field(mv, id, "waiting"));
	json_object_put(mv);
	/* split_done makes the new half, a child of the auto-split move as of a manual one */
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(1, 1, at, 2, 32000)), 0);
	assert_int_equal(sl_ctld_split_child(&sm, m), 2);
	assert_true(sl_ctld_switching(&sm, 2));
	for (uint32_t n = 1; n <= 3; n++)
		hb_split(n, 1, 2, 1, false, 33 * S);
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 33 * S, HOUR, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "done", 34000)), 0);
	assert_false(sl_ctld_switching(&sm, 1) || sl_ctld_switching(&sm, 2));
	/* malformed kinds are refused, the state unchanged (not part of the replayed log) */
	own_kinds_checked("{\"op\":\"split\",\"id\":9,\"region\":0,\"at\":\"0x0000000000000010\","
			  "\"at_ms\":5,", "auto-split", id, SL_CTLD_MOVE_AUTOSPLIT);
}

/* The [cluster] split keys: defaults, 64-bit sizes, ranges. */
/* What --print-config prints for c (a static buffer). */
static const char *conf_dump(const struct sl_ctld_conf *c)
{
	static char dump[32768];
	memset(dump, 0, sizeof(dump));
	FILE *f = fmemopen(dump, sizeof(dump) - 1, "w");
	assert_non_null(f);
	sl_ctld_conf_dump(c, f);
	assert_int_equal(fclose(f), 0);
	return dump;
}

static void test_autosplit_conf(void **state)
{
	(void)state;
	struct sl_ctld_conf c;
	char err[256];
	sl_ctld_conf_default(&c);
	assert_int_equal(c.split.bytes, 0);
	assert_int_equal(c.split.points_per_s, 0);
	assert_int_equal(c.split.sustain_ms, 30000);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_bytes", "10000000000", err,
					  sizeof(err)),
			 0);
	assert_int_equal(c.split.bytes, 10000000000ull);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_points_per_s", "50000", err,
					  sizeof(err)),
			 0);
	assert_int_equal(c.split.points_per_s, 50000);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_sustain_ms", "5000", err,
					  sizeof(err)),
			 0);
	assert_int_equal(c.split.sustain_ms, 5000);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_bytes", "-1", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "[cluster] split_bytes"));
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_sustain_ms", "86400001", err,
					  sizeof(err)),
			 -EINVAL);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	const char *dump = conf_dump(&c);
	assert_non_null(strstr(dump, "split_bytes = 10000000000\n"));
	assert_non_null(strstr(dump, "split_sustain_ms = 5000\n"));
}

/* ---------------------------------------------------------------- merges */

/* A cluster's bootstrap, every node joined with `cores` cores. */
static void merge_cluster(const struct sl_ctld_cluster *c, uint32_t cores)
{
	bootstrap_cluster(c);
	for (uint32_t n = 1; n <= c->nodes; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", cores, 0)), 0);
	memset(&soft, 0, sizeof(soft));
}

/* merge, merge_done and the move's end of `region` with its right neighbour (the leader's
 * steps, heartbeats aside); returns the neighbour, now retired. */
static uint32_t merge_regions(uint32_t region)
{
	char err[256];
	uint32_t with = UINT32_MAX;
	uint64_t id = sm.n_moves + 1;
	if (sl_ctld_check_merge(&sm, region, &with, err, sizeof(err)) != 0)
		fail_msg("merge of region %u refused: %s", region, err);
	uint32_t epoch = sm.regions[region].epoch;
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(id, region, with, 100)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(region, with, epoch + 1, 200)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "merge", 300)), 0);
	assert_int_equal(sm.regions[with].merged_into, region + 1);
	return with;
}

/* A merge as the ctld leader drives it: both regions seal, merge_done gives the left one
 * both ranges at its next epoch and retires the right one, the move is done once every
 * replica runs the left one there; the retired id is never reused and takes no command;
 * replaying the log on a fresh machine gives the same state. */
static void test_merge_flow(void **state)
{
	(void)state;
	const uint64_t s = 1000000000ull, timeout = 3 * s;
	char err[256], w[SL_CTLD_WHY_MAX];
	n_rec = 0;
	recording = true;
	struct sl_ctld_cluster c = cluster(3, 3, 3);
	merge_cluster(&c, 1); /* one core: adjacent regions share it */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(1, sm.regions[1].leader, 1)), 0);
	const struct sl_ctld_region old0 = sm.regions[0], old1 = sm.regions[1];
	uint32_t with = UINT32_MAX;
	assert_int_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), 0);
	assert_int_equal(with, 1);
	uint64_t v = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(1, 0, 1, 10)), 0);
	const struct sl_ctld_region *r = &sm.regions[0], *sr = &sm.regions[1];
	/* both seal: each switches to its own protocol */
	assert_string_equal(r->next_protocol, "raft");
	assert_string_equal(sr->next_protocol, "raft");
	assert_int_equal(r->merge_with, 2); /* region 1, + 1 */
	assert_int_equal(sr->merge_with, 0);
	assert_int_equal(sr->merged_into, 0);
	assert_int_equal(r->hash_hi, old0.hash_hi); /* until merge_done */
	assert_int_equal(sm.map_version, v + 1);
	assert_int_equal(sl_ctld_merging_into(&sm, 1), 0);
	assert_int_equal(sl_ctld_merging_into(&sm, 0), UINT32_MAX);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, 1);
	assert_non_null(m);
	assert_int_equal(m->kind, SL_CTLD_MOVE_MERGE);
	assert_true(sl_ctld_move_is_switch(m->kind));
	assert_false(sl_ctld_move_is_split(m->kind));
	assert_int_equal(m->region, 0);
	assert_int_equal(m->merge_with, 2);
	assert_int_equal(m->epoch, 0);
	assert_int_equal(m->state, SL_CTLD_MOVE_RUNNING);
	assert_string_equal(m->from_protocol, "raft");
	assert_string_equal(m->to_protocol, "raft");
	assert_true(sl_ctld_switching(&sm, 0));
	assert_true(sl_ctld_switching(&sm, 1));
	assert_false(sl_ctld_switching(&sm, 2));
	assert_false(sl_ctld_replica_move_running(&sm));
	struct json_object *rv = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_int_equal(json_object_get_int64(region_field(rv, 0, "merge_with")), 1);
	assert_null(region_field(rv, 1, "merge_with"));
	assert_null(region_field(rv, 1, "merged_into"));
	assert_string_equal(json_object_get_string(region_field(rv, 1, "next_protocol")), "raft");
	json_object_put(rv);

	/* nothing else applies meanwhile (not recorded: the replay applies what committed) */
	recording = false;
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(0, 1, "raft", 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_protocol_switched(1, 1, "raft", 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(0, 1, 2, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(0, 1, 0, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(0, 2, 1, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(1, 2, 1, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(2, 0, 1, 20)), -EINVAL); /* pending */
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(2, 1, 2, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split(2, 1, sm.regions[1].hash_hi, 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(2, 1, "standalone", 20)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(2, 1, old1.replicas[1] ==
							       old1.leader ? old1.replicas[0]
									   : old1.replicas[1],
							       0, 20)),
			 -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 11);
	recording = true;

	/* the seals: ready once every replica applied both */
	for (uint32_t n = 1; n <= 3; n++)
		hb_pair(n, 0, 0, n != 3, 1, 0, false, 1 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 3 has not applied the seal");
	hb_pair(3, 0, 0, true, 1, 0, false, 1 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 0, 1 * s, timeout, w, sizeof(w)));
	assert_false(sl_ctld_switch_ready(&sm, &soft, 1, 1 * s, timeout, w, sizeof(w)));
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "region 1: node 2 has not applied the seal; node 3 has not applied "
			       "the seal; node 1 has not applied the seal"); /* its replica order */
	for (uint32_t n = 1; n <= 3; n++)
		hb_pair(n, 0, 0, true, 1, 0, true, 1 * s);
	assert_true(sl_ctld_switch_ready(&sm, &soft, 1, 1 * s, timeout, w, sizeof(w)));
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 1 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "every replica sealed epoch 0 of region 0 and epoch 0 of region 1: "
			       "merging");
	struct json_object *mv = sl_ctld_view_moves(&sm, &soft, 1 * s, timeout);
	assert_string_equal(move_field(mv, 1, "kind"), "merge");
	assert_string_equal(move_field(mv, 1, "merge_with"), "1");
	assert_null(move_field(mv, 1, "to"));
	assert_null(move_field(mv, 1, "split_at"));
	json_object_put(mv);

	v = sm.map_version;
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(0, 1, 1, 30)), 0);
	assert_int_equal(sm.map_version, v + 1);
	assert_int_equal(sm.n_regions, 3); /* no id goes away */
	assert_int_equal(r->hash_lo, old0.hash_lo);
	assert_int_equal(r->hash_hi, old1.hash_hi);
	assert_int_equal(r->epoch, 1);
	assert_string_equal(r->next_protocol, "");
	assert_int_equal(r->merge_with, 0);
	assert_int_equal(r->merged_into, 0);
	/* the retired one keeps what it was, as history */
	assert_int_equal(sr->merged_into, 1); /* region 0, + 1 */
	assert_int_equal(sr->merge_epoch, 1);
	assert_string_equal(sr->next_protocol, "");
	assert_int_equal(sr->epoch, 0);
	assert_int_equal(sr->hash_lo, old1.hash_lo);
	assert_int_equal(sr->hash_hi, old1.hash_hi);
	assert_memory_equal(sr->replicas, old1.replicas, sizeof(old1.replicas));
	assert_true(sl_ctld_region_retired(&sm, 1));
	assert_false(sl_ctld_region_retired(&sm, 0));
	assert_live_tiling();
	/* both stay out of other moves until the move is done */
	assert_true(sl_ctld_switching(&sm, 0));
	assert_true(sl_ctld_switching(&sm, 1));
	recording = false;
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(0, 1, 2, 40)), -EINVAL); /* again */
	recording = true;
	rv = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_null(region_field(rv, 0, "merge_with"));
	assert_int_equal(json_object_get_int64(region_field(rv, 1, "merged_into")), 0);
	assert_int_equal(json_object_get_int64(region_field(rv, 1, "merge_epoch")), 1);
	assert_null(region_field(rv, 0, "merged_into"));
	/* every region says its range: the nodes take the map as ranged */
	for (uint32_t i = 0; i < 3; i++) {
		assert_non_null(region_field(rv, i, "hash_lo"));
		assert_non_null(region_field(rv, i, "hash_hi"));
	}
	assert_string_equal(json_object_get_string(region_field(rv, 0, "hash_hi")),
			    json_object_get_string(region_field(rv, 1, "hash_hi")));
	json_object_put(rv);

	/* done once every replica runs region 0 at epoch 1, unsealed */
	for (uint32_t n = 1; n <= 3; n++)
		hb_pair(n, 0, n == 2 ? 0 : 1, n == 2, 1, 0, true, 2 * s);
	assert_false(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	assert_string_equal(w, "node 2 has not switched");
	hb_pair(2, 0, 1, false, 2, 0, false, 2 * s);
	assert_true(sl_ctld_switch_done(&sm, &soft, m, 2 * s, timeout, w, sizeof(w)));
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(1, true, "merge", 50)), 0);
	assert_false(sl_ctld_switching(&sm, 0));
	assert_false(sl_ctld_switching(&sm, 1));
	/* the regions view of a retired region: no replica reports it, no leader (not even
	 * the one last observed) */
	assert_int_not_equal(sr->observed, 0);
	rv = sl_ctld_view_regions(&sm, &soft, 2 * s, timeout);
	assert_int_equal(json_object_get_int64(region_field(rv, 1, "reporting")), 0);
	assert_null(region_field(rv, 1, "leader"));
	json_object_put(rv);

	/* the retired id takes no command */
	struct {
		int rc;
		const char *op;
	} got[6];
	uint32_t rep = old1.replicas[0];
	got[0].rc = sl_ctld_check_transfer(&sm, 1, rep, err, sizeof(err));
	got[0].op = "transfer_leader";
	assert_non_null(strstr(err, "region 1 was merged into region 0"));
	got[1].rc = sl_ctld_check_set_protocol(&sm, 1, "standalone", err, sizeof(err));
	got[1].op = "set_protocol";
	assert_non_null(strstr(err, "region 1 was merged into region 0"));
	uint64_t at = 0;
	got[2].rc = sl_ctld_check_split(&sm, 1, 0, false, &at, err, sizeof(err));
	got[2].op = "split";
	assert_non_null(strstr(err, "region 1 was merged into region 0"));
	got[3].rc = sl_ctld_check_move_replica(&sm, 1, rep, 4, err, sizeof(err));
	got[3].op = "move_replica";
	assert_non_null(strstr(err, "region 1 was merged into region 0"));
	got[4].rc = sl_ctld_check_merge(&sm, 1, &with, err, sizeof(err));
	got[4].op = "merge";
	assert_non_null(strstr(err, "region 1 was merged into region 0"));
	for (uint32_t k = 0; k < 5; k++)
		if (got[k].rc != -EINVAL)
			fail_msg("%s of a retired region: %d", got[k].op, got[k].rc);
	recording = false;
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_set_leader(1, rep, 9)), -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, 1, old1.hash_hi, 60)),
			 -EINVAL);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 1, "standalone", 60)),
			 -EINVAL);
	assert_unchanged();
	recording = true;
	/* counted once per live replica: regions 0 and 2 */
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(sl_ctld_node_replicas(&sm, n), 2);
	struct json_object *pl = sl_ctld_view_placement(&sm), *arr = NULL;
	assert_true(json_object_object_get_ex(pl, "placement", &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		assert_int_equal(json_object_array_length(json_object_object_get(
					 json_object_array_get_idx(arr, i), "replicas")),
				 2);
	json_object_put(pl);

	/* the next split takes id n_regions (3), not the retired 1; the merged region splits
	 * like any other, back at the old boundary */
	assert_int_equal(split_region(0, old1.hash_lo), 3);
	assert_int_equal(sm.regions[0].hash_hi, old0.hash_hi);
	assert_int_equal(sm.regions[3].hash_lo, old1.hash_lo);
	assert_int_equal(sm.regions[3].hash_hi, old1.hash_hi);
	assert_int_equal(sm.regions[3].epoch, 2);
	assert_int_equal(sl_ctld_split_child(&sm, sl_ctld_move_get(&sm, sm.n_moves)), 3);
	assert_live_tiling();
	/* and region 0's right neighbour is the new region now, not the retired 1 (which
	 * starts at the same hash) */
	assert_int_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), 0);
	assert_int_equal(with, 3);

	replay_recorded();
	before.applied = before.refused = 0;
	sm.applied = sm.refused = 0;
	assert_memory_equal(&sm, &before, sizeof(sm));
	/* the same log gives the same map the nodes read */
	struct json_object *a = sl_ctld_view_regions(&sm, NULL, 0, 1);
	struct sl_ctld_sm keep = sm;
	sm = before;
	struct json_object *b = sl_ctld_view_regions(&sm, NULL, 0, 1);
	assert_string_equal(json_object_to_json_string(a), json_object_to_json_string(b));
	json_object_put(a);
	json_object_put(b);
	sm = keep;
}

/* A split's halves merge back into the parent's range (they share its core on every node);
 * the merged region splits again at the same place, the retired half never mistaken for
 * the new one; a bootstrap neighbour on another core is refused. */
static void test_merge_split_halves(void **state)
{
	(void)state;
	char err[256];
	struct sl_ctld_cluster c = cluster(3, 2, 3);
	merge_cluster(&c, 2);
	const struct sl_ctld_region old0 = sm.regions[0];
	uint64_t at = old0.hash_lo + (old0.hash_hi - old0.hash_lo) / 2 + 1;
	assert_int_equal(split_region(0, at), 2);
	const struct sl_ctld_move *first = sl_ctld_move_get(&sm, sm.n_moves);
	assert_int_equal(sl_ctld_region_core(&sm, 2, 2), 0); /* its parent's */
	assert_int_equal(sl_ctld_region_core(&sm, 1, 2), 1);
	assert_int_equal(merge_regions(0), 2);
	assert_int_equal(sm.regions[0].hash_lo, old0.hash_lo);
	assert_int_equal(sm.regions[0].hash_hi, old0.hash_hi);
	assert_int_equal(sm.regions[0].epoch, 2);
	assert_int_equal(sm.regions[2].merge_epoch, 2);
	assert_int_equal(sm.regions[2].epoch, 1);
	assert_live_tiling();
	/* region 1 is on core 1 of every node, region 0 on core 0 (with its split's half,
	 * retired now: not listed) */
	struct json_object *pl = sl_ctld_view_placement(&sm), *arr = NULL;
	assert_true(json_object_object_get_ex(pl, "placement", &arr));
	assert_int_equal(json_object_array_length(arr), 3 * 2);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *row = json_object_array_get_idx(arr, i);
		struct json_object *reps = json_object_object_get(row, "replicas");
		int64_t core = json_object_get_int64(json_object_object_get(row, "core"));
		assert_int_equal(json_object_array_length(reps), 1);
		assert_int_equal(json_object_get_int64(json_object_array_get_idx(reps, 0)), core);
	}
	json_object_put(pl);
	uint32_t with = 0;
	assert_int_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "merge: on node 1 region 0 runs on core 0 and region 1 on core 1: "
				 "merging regions on different cores is not supported yet");
	/* the same cut again: a new region 3; the first split's move still names region 2 */
	assert_int_equal(split_region(0, at), 3);
	assert_int_equal(sl_ctld_split_child(&sm, first), 2);
	assert_int_equal(sl_ctld_split_child(&sm, sl_ctld_move_get(&sm, sm.n_moves)), 3);
	assert_int_equal(sm.regions[3].split_epoch, 3);
	assert_live_tiling();
	/* while a third split at that cut waits, only its own new region is held */
	assert_int_equal(merge_regions(0), 3);
	uint64_t id = sm.n_moves + 1;
	assert_int_equal(apply_obj(sl_ctld_cmd_split(id, 0, at, 10)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 5, at, 4, 20)), 0);
	assert_true(sl_ctld_switching(&sm, 4));
	assert_false(sl_ctld_switching(&sm, 2));
	assert_false(sl_ctld_switching(&sm, 3));
	assert_int_equal(sl_ctld_split_child(&sm, sl_ctld_move_get(&sm, id)), 4);
}

/* merge is refused (state unchanged, counted) with err containing `why`. */
static void merge_refused(uint32_t region, int rc, const char *why)
{
	char err[256] = "";
	uint32_t with = UINT32_MAX;
	assert_int_equal(sl_ctld_check_merge(&sm, region, &with, err, sizeof(err)), rc);
	if (strstr(err, why) == NULL)
		fail_msg("'%s' does not say '%s'", err, why);
	snapshot_state();
	uint64_t refused = sm.refused;
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(sm.n_moves + 1, region, region + 1, 10)),
			 -EINVAL);
	assert_unchanged();
	assert_int_equal(sm.refused, refused + 1);
}

static void test_merge_refused(void **state)
{
	(void)state;
	char err[256];
	uint32_t with = 0;
	sl_ctld_sm_init(&sm);
	merge_refused(0, -EBUSY, "merge: the cluster is not bootstrapped");
	/* protocols: 0 raft, 1 multileader, 2 standalone, 3 raft, 4 raft, 5 standalone */
	struct sl_ctld_cluster c = cluster(3, 6, 3);
	snprintf(c.region_protocol[1], sizeof(c.region_protocol[1]), "multileader");
	snprintf(c.region_protocol[2], sizeof(c.region_protocol[2]), "standalone");
	snprintf(c.region_protocol[5], sizeof(c.region_protocol[5]), "standalone");
	merge_cluster(&c, 1);
	merge_refused(9, -ENOENT, "merge: no region 9 (ids are below 6)");
	merge_refused(5, -EINVAL, "merge: region 5 has no right neighbour: it ends at the top of "
				  "the hash space");
	merge_refused(0, -EBUSY, "merge: region 1 (right of region 0) runs multileader: switch it "
				 "to raft first");
	merge_refused(1, -EBUSY, "merge: region 1 runs multileader: switch it to raft first");
	merge_refused(2, -EBUSY, "merge: region 2 runs standalone and region 3 runs raft: switch "
				 "one of them first");
	merge_refused(4, -EBUSY, "merge: region 4 runs raft and region 5 runs standalone");
	/* a region switched to multileader since */
	assert_int_equal(sl_ctld_check_merge(&sm, 3, &with, err, sizeof(err)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 4, "multileader", 1)),
			 0);
	finish_switch(sm.n_moves);
	merge_refused(3, -EBUSY, "region 4 (right of region 3) runs multileader");
	merge_refused(4, -EBUSY, "merge: region 4 runs multileader: switch it to raft first");

	/* replica sets: 4 nodes, regions on consecutive nodes */
	struct sl_ctld_cluster c4 = cluster(4, 4, 3);
	merge_cluster(&c4, 1);
	merge_refused(0, -EBUSY, "merge: region 0 (replicas 1,2,3) and region 1 (replicas 2,3,4) "
				 "have different replica sets: move replicas first");
	/* standalone: one replica each, on other nodes */
	struct sl_ctld_cluster cs = cluster(3, 3, 1);
	snprintf(cs.protocol, sizeof(cs.protocol), "standalone");
	merge_cluster(&cs, 1);
	merge_refused(0, -EBUSY, "region 0 (replicas 1) and region 1 (replicas 2)");

	/* cores: node 2 runs two, so regions 0 and 1 are on different cores there; a node that
	 * never joined has no known cores */
	struct sl_ctld_cluster c3 = cluster(3, 4, 3);
	bootstrap_cluster(&c3);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(1, "a", 1, 0)), 0);
	merge_refused(0, -EBUSY, "merge: node 2 has not joined: the cores of regions 0 and 1 on it "
				 "are unknown");
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "a", 2, 0)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_join(3, "a", 1, 0)), 0);
	merge_refused(0, -EBUSY, "merge: on node 2 region 0 runs on core 0 and region 1 on core 1");
	assert_int_equal(apply_obj(sl_ctld_cmd_join(2, "a", 1, 0)), 0); /* rejoins with one */
	assert_int_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), 0);
	assert_int_equal(with, 1);
	/* the command must name the right neighbour */
	snapshot_state();
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(sm.n_moves + 1, 0, 2, 10)), -EINVAL);
	assert_unchanged();
	/* switches in progress on either side */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 1, "multileader", 1)),
			 0);
	merge_refused(0, -EBUSY, "merge: region 1 has a switch, split or merge in progress");
	merge_refused(1, -EBUSY, "merge: region 1 has a switch, split or merge in progress");
	finish_switch(sm.n_moves);
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 1, "raft", 1)), 0);
	finish_switch(sm.n_moves);
	assert_int_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), 0);
	/* a merge pending: neither side nor the region left of it merges */
	assert_int_equal(apply_obj(sl_ctld_cmd_merge(sm.n_moves + 1, 1, 2, 1)), 0);
	uint64_t mid = sm.n_moves;
	merge_refused(0, -EBUSY, "merge: region 1 has a switch, split or merge in progress");
	merge_refused(1, -EBUSY, "merge: region 1 has a switch, split or merge in progress");
	merge_refused(2, -EBUSY, "merge: region 2 has a switch, split or merge in progress");
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(1, 2, sm.regions[1].epoch + 1, 2)), 0);
	merge_refused(2, -EINVAL, "merge: region 2 was merged into region 1");
	merge_refused(1, -EBUSY, "merge: region 1 has a switch, split or merge in progress");
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(mid, true, "merged", 3)), 0);
	/* region 1 now ends where 2 ended: its right neighbour is 3 */
	assert_int_equal(sl_ctld_check_merge(&sm, 1, &with, err, sizeof(err)), 0);
	assert_int_equal(with, 3);
	/* a split's new region whose move still runs */
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, 0, sm.regions[0].hash_hi, 4)),
			 0);
	uint64_t sid = sm.n_moves;
	merge_refused(0, -EBUSY, "merge: region 0 has a switch, split or merge in progress");
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, sm.regions[0].epoch + 1,
							  sm.regions[0].hash_hi, 4, 5)),
			 0);
	merge_refused(4, -EBUSY, "merge: region 4 was made by a split whose move still runs");
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(sid, true, "split", 6)), 0);
	assert_int_equal(sl_ctld_check_merge(&sm, 4, &with, err, sizeof(err)), 0);
	assert_int_equal(with, 1);
	/* malformed and stale commands */
	snapshot_state();
	static const char *const bad[] = {
	    "{\"op\":\"merge\",\"id\":99,\"region\":4,\"at_ms\":5}",
	    "{\"op\":\"merge\",\"id\":99,\"region\":4,\"with\":\"1\",\"at_ms\":5}",
	    "{\"op\":\"merge\",\"id\":99,\"region\":-1,\"with\":1,\"at_ms\":5}",
	    "{\"op\":\"merge\",\"id\":1,\"region\":4,\"with\":1,\"at_ms\":5}", /* stale id */
	    "{\"op\":\"merge\",\"id\":99,\"region\":4,\"with\":1}",
	    "{\"op\":\"merge_done\",\"region\":4,\"with\":1,\"epoch\":1,\"at_ms\":5}", /* none */
	    "{\"op\":\"merge_done\",\"region\":4,\"with\":9,\"epoch\":1,\"at_ms\":5}",
	    "{\"op\":\"merge_done\",\"region\":4,\"with\":1,\"at_ms\":5}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(apply_text(bad[i]), -EINVAL);
	assert_unchanged();

	/* a replica move anywhere: 4 nodes, every region on nodes 1..3 */
	struct sl_ctld_cluster c5 = cluster(4, 4, 3);
	c5.initial_nodes = 3;
	merge_cluster(&c5, 1);
	assert_int_equal(sl_ctld_check_merge(&sm, 0, &with, err, sizeof(err)), 0);
	assert_int_equal(apply_move(1, 3, sm.regions[3].replicas[0], 4,
							    SL_CTLD_MOVE_REPLICA, 30),
			 0);
	merge_refused(0, -EBUSY, "merge: a replica move is running (see moves)");
}

/* A retired region takes part in nothing: leader balance and drains, the rebalance,
 * decommission, automatic splits and replica counts leave it out (its replicas stay in
 * the map as history). */
static void test_merge_retired_ignored(void **state)
{
	(void)state;
	uint32_t region = 0, from = 0, to = 0;
	char why[SL_CTLD_WHY_MAX];
	struct sl_ctld_cluster c = cluster(4, 4, 3);
	c.initial_nodes = 3; /* node 4 holds nothing: the rebalance has work */
	merge_cluster(&c, 1);
	memset(&obs, 0, sizeof(obs));
	assert_int_equal(merge_regions(0), 1);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(sl_ctld_node_replicas(&sm, n), 3); /* 0, 2 and 3 */
	struct json_object *mv = sl_ctld_view_members(&sm, NULL, 0);
	uint32_t pref = 0;
	for (uint32_t n = 1; n <= 4; n++)
		pref += (uint32_t)json_object_get_int64(member(mv, n, "preferred_regions"));
	assert_int_equal(pref, 3);
	json_object_put(mv);

	/* automatic splits: region 1's figures (from an old heartbeat) count for nothing */
	const struct sl_ctld_split_conf conf = {.bytes = 1000, .sustain_ms = 1000};
	int64_t pts[] = {1, 1, 1, 1}, bytes[] = {10, 5000000, 10, 10};
	for (uint32_t n = 1; n <= 3; n++)
		hb_load(n, pts, bytes, 0);
	assert_int_equal(split_at_ms(0, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(5000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_false(obs.r[1].bytes_above);
	assert_string_equal(why, "");
	bytes[2] = 5000000; /* a live region above: it goes */
	for (uint32_t n = 1; n <= 3; n++)
		hb_load(n, pts, bytes, 6 * S);
	assert_int_equal(split_at_ms(6000, &conf, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(split_at_ms(7000, &conf, why, sizeof(why)), 2);

	/* a drain of the node preferred for region 1 moves every other region of it */
	uint32_t lead = sm.regions[1].leader;
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(lead, true)), 0);
	for (uint32_t k = 0; k < 40 && sl_ctld_balance_next(&sm, 0, &region, &to) > 0; k++) {
		assert_int_not_equal(region, 1);
		assert_int_equal(apply_obj(sl_ctld_cmd_balance(sm.n_moves + 1, region, to, 0, 0,
							       SL_CTLD_MOVE_DRAIN, NULL)),
				 0);
	}
	assert_int_equal(sm.regions[1].leader, lead);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(lead, false)), 0);

	/* the rebalance toward node 4 counts and moves live regions only */
	uint32_t moved = 0;
	while (sl_ctld_rebalance_next(&sm, 0, &region, &from, &to) == 1) {
		assert_int_not_equal(region, 1);
		assert_int_equal(apply_move(sm.n_moves + 1, region, from, to,
								    SL_CTLD_MOVE_REBALANCE, 0),
				 0);
		finish_switch(sm.n_moves);
		assert_true(++moved < 10);
	}
	assert_int_equal(moved, 2); /* 9 live replicas: 3, 2, 2, 2 */
	uint32_t total = 0;
	for (uint32_t n = 1; n <= 4; n++)
		total += sl_ctld_node_replicas(&sm, n);
	assert_int_equal(total, 9);

	/* decommission: done once the live regions left, region 1 still names the node */
	uint32_t node = sm.regions[1].replicas[0];
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(node, true)), 0);
	while (sl_ctld_decommission_next(&sm, &region, &from, &to, why, sizeof(why)) == 1) {
		assert_int_not_equal(region, 1);
		assert_int_equal(from, node);
		assert_int_equal(apply_move(sm.n_moves + 1, region, from, to,
								    SL_CTLD_MOVE_DECOMMISSION, 0),
				 0);
		finish_switch(sm.n_moves);
	}
	assert_string_equal(why, "");
	assert_int_equal(sl_ctld_node_replicas(&sm, node), 0);
	assert_int_equal(sm.regions[1].replicas[0], node);
	mv = sl_ctld_view_members(&sm, NULL, 0);
	assert_true(json_object_get_boolean(member(mv, node, "decommissioned")));
	json_object_put(mv);
}

/* ---------------------------------------------------------------- automatic merges */

/* The leader's observation at t_ms, then its merge decision: the region (UINT32_MAX:
 * none), *with its right neighbour. */
static uint32_t merge_at_ms(uint64_t t_ms, const struct sl_ctld_split_conf *conf, uint32_t *with,
			    char *why, size_t why_len)
{
	uint32_t region = UINT32_MAX;
	sl_ctld_split_observe(&sm, &soft, t_ms * 1000000ull, HOUR, conf, &obs);
	int rc = sl_ctld_merge_next(&sm, &obs, t_ms, conf, &region, with, why, why_len);
	assert_int_equal(rc, region != UINT32_MAX);
	return region;
}

/* A region and its right neighbour merge once their sizes add up to less than
 * merge_bytes for the sustain time (both known; the top region has no neighbour); off,
 * nothing; with merge_points_per_s the rates count too (unknown: not below); a dip
 * starts the wait over; the pair below the longest goes first. */
static void test_automerge_due(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t with = 0;
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 3; n++) /* one core: neighbours share it */
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 1, 0)), 0);
	memset(&soft, 0, sizeof(soft));
	memset(&obs, 0, sizeof(obs));
	const struct sl_ctld_split_conf conf = {.merge_bytes = 4000000, .sustain_ms = 30000};
	int64_t pts[] = {1, 1, 1, 1};
	int64_t b[] = {1000000, 2000000, 5000000, 100}; /* pairs: 3 MB, 7 MB, 5.0001 MB */
	int64_t none[] = {NO_FIGURE, NO_FIGURE, NO_FIGURE, NO_FIGURE};
	hb_load(1, pts, b, 0);
	hb_load(2, pts, none, 0);
	assert_int_equal(merge_at_ms(0, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_string_equal(why, "");
	assert_true(obs.r[0].pair_below);
	assert_int_equal(obs.r[0].with, 1);
	assert_false(obs.r[1].pair_below || obs.r[2].pair_below || obs.r[3].pair_below);
	assert_int_equal(merge_at_ms(29999, &conf, &with, why, sizeof(why)), UINT32_MAX);
	const struct sl_ctld_split_conf off = {.bytes = 1, .sustain_ms = 30000};
	struct sl_ctld_split_obs keep = obs;
	assert_int_equal(merge_at_ms(60000, &off, &with, why, sizeof(why)), UINT32_MAX);
	obs = keep;
	assert_int_equal(merge_at_ms(30000, &conf, &with, why, sizeof(why)), 0);
	assert_int_equal(with, 1);
	assert_string_equal(why, "sizes 1.0 MB + 2.0 MB below merge_bytes 4.0 MB for 30 s");
	assert_int_equal(sm.regions[0].hash_hi + 1, sm.regions[1].hash_lo); /* nothing applied */
	/* the rate rule: rates unknown (one heartbeat each) are not below it */
	const struct sl_ctld_split_conf rated = {.merge_bytes = 4000000,
						 .merge_points_per_s = 100, .sustain_ms = 30000};
	keep = obs;
	assert_int_equal(merge_at_ms(31000, &rated, &with, why, sizeof(why)), UINT32_MAX);
	assert_false(obs.r[0].pair_below);
	/* 10 points/s each: 20 below 100 */
	int64_t p2[] = {301, 301, 301, 301};
	hb_load(1, p2, b, 30 * S);
	assert_int_equal(merge_at_ms(32000, &rated, &with, why, sizeof(why)), UINT32_MAX);
	assert_true(obs.r[0].pair_below);
	assert_int_equal(merge_at_ms(62000, &rated, &with, why, sizeof(why)), 0);
	assert_string_equal(why, "sizes 1.0 MB + 2.0 MB below merge_bytes 4.0 MB, write rates 10 "
				 "+ 10 points/s below merge_points_per_s 100 for 30 s");
	obs = keep;
	/* a dip above: the wait starts over */
	int64_t grown[] = {3000000, 2000000, 5000000, 100};
	hb_load(1, pts, grown, 31 * S);
	assert_int_equal(merge_at_ms(31000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	hb_load(1, pts, b, 32 * S);
	assert_int_equal(merge_at_ms(32000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	/* regions 2 and 3 go below later than 0 and 1: 0 still goes first, and at 62 s
	 * both are due */
	int64_t b3[] = {1000000, 2000000, 1000000, 100};
	hb_load(1, pts, b3, 40 * S);
	assert_int_equal(merge_at_ms(40000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_true(obs.r[2].pair_below);
	assert_int_equal(obs.r[2].with, 3);
	assert_int_equal(merge_at_ms(70000, &conf, &with, why, sizeof(why)), 0);
	assert_int_equal(obs.r[0].pair_since_ms, 32000);
	assert_int_equal(obs.r[2].pair_since_ms, 40000);
}

/* A due pair that cannot merge (its regions on different cores of a node) is skipped,
 * the first one named in why; a switch anywhere holds every automatic merge; the halves
 * of an operator's split stay split for the operator's hold, then merge once small. */
static void test_automerge_blocked(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t with = 0;
	struct sl_ctld_cluster c = cluster(3, 4, 3);
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 3; n++) /* two cores: region r on core r mod 2 */
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 2, 0)), 0);
	memset(&soft, 0, sizeof(soft));
	memset(&obs, 0, sizeof(obs));
	const struct sl_ctld_split_conf conf = {.merge_bytes = 4000000, .sustain_ms = 1000};
	int64_t pts[] = {1, 1, 1, 1}, b[] = {1000, 1000, 1000, 1000};
	hb_load(1, pts, b, 0);
	assert_int_equal(merge_at_ms(0, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(merge_at_ms(5000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_non_null(strstr(why, "regions 0 and 1 are due to merge but cannot"));
	assert_non_null(strstr(why, "different cores"));
	/* a split of region 0 (its halves on one core): they merge back once small */
	uint64_t at = 0;
	char err[256];
	assert_int_equal(sl_ctld_check_split(&sm, 0, 0, false, &at, err, sizeof(err)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_split(sm.n_moves + 1, 0, at, 6000)), 0);
	uint64_t id = sm.n_moves;
	assert_int_equal(merge_at_ms(7000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_string_equal(why, ""); /* a switch runs: nothing is looked at */
	assert_int_equal(apply_obj(sl_ctld_cmd_split_done(0, 1, at, 4, 7000)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "split", 8000)), 0);
	int64_t p5[] = {1, 1, 1, 1, 1}, b5[] = {1000, 1000, 1000, 1000, 1000};
	hb_load(1, p5, b5, 9 * S);
	assert_int_equal(merge_at_ms(9000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(merge_at_ms(10000, &conf, &with, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(merge_at_ms(6000 + SL_CTLD_OPERATOR_HOLD_MS - 1, &conf, &with, why,
				     sizeof(why)),
			 UINT32_MAX);
	assert_int_equal(merge_at_ms(6000 + SL_CTLD_OPERATOR_HOLD_MS, &conf, &with, why,
				     sizeof(why)),
			 0);
	assert_int_equal(with, 4);
}

/* The decision goes to the log as a merge of kind auto-merge with its why: the moves view
 * shows it, it is a switch and a merge for every rule, malformed kinds are refused, and
 * two replicas that apply the same commands end identical. */
static void test_automerge_move(void **state)
{
	(void)state;
	n_rec = 0;
	recording = true;
	struct sl_ctld_cluster c = cluster(3, 3, 3);
	merge_cluster(&c, 1);
	uint64_t id = sm.n_moves + 1;
	const char *why = "sizes 1.0 MB + 2.0 MB below merge_bytes 4.0 MB for 30 s";
	assert_int_equal(apply_obj(sl_ctld_cmd_automerge(id, 1, 2, 31000, why)), 0);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, id);
	assert_int_equal(m->kind, SL_CTLD_MOVE_AUTOMERGE);
	assert_true(sl_ctld_move_is_switch(m->kind) && sl_ctld_move_is_merge(m->kind));
	assert_false(sl_ctld_move_is_merge(SL_CTLD_MOVE_SPLIT));
	assert_string_equal(m->why, why);
	assert_true(sl_ctld_switching(&sm, 1) && sl_ctld_switching(&sm, 2));
	struct json_object *mv = sl_ctld_view_moves(&sm, &soft, 32 * S, HOUR);
	assert_string_equal(move_field(mv, id, "kind"), "auto-merge");
	assert_string_equal(move_field(mv, id, "why"), why);
	assert_string_equal(move_field(mv, id, "merge_with"), "2");
	json_object_put(mv);
	assert_int_equal(apply_obj(sl_ctld_cmd_merge_done(1, 2, 1, 32000)), 0);
	assert_int_equal(sm.regions[2].merged_into, 2);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "done", 34000)), 0);
	own_kinds_checked("{\"op\":\"merge\",\"id\":9,\"region\":0,\"with\":1,\"at_ms\":5,",
			  "auto-merge", id, SL_CTLD_MOVE_AUTOMERGE);
}

/* The [cluster] merge keys: off by default; at most half of the split thresholds, so a
 * merged region is never due to split at once. */
static void test_automerge_conf(void **state)
{
	(void)state;
	struct sl_ctld_conf c;
	char err[256];
	sl_ctld_conf_default(&c);
	assert_int_equal(c.split.merge_bytes, 0);
	assert_int_equal(c.split.merge_points_per_s, 0);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "merge_bytes", "500000000", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "merge_points_per_s", "1000", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	const char *dump = conf_dump(&c);
	assert_non_null(strstr(dump, "merge_bytes = 500000000\n"));
	assert_non_null(strstr(dump, "merge_points_per_s = 1000\n"));
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_bytes", "999999999", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "merge_bytes = 500000000 is above half of split_bytes"));
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_bytes", "1000000000", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_points_per_s", "1999", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "merge_points_per_s = 1000 is above half"));
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_points_per_s", "2000", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	/* splits by rate with merges by size alone would undo each other */
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "merge_points_per_s", "0", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "merge_points_per_s is 0"));
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "split_points_per_s", "0", err,
					  sizeof(err)), 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
}

/* ---------------------------------------------------------------- balance by write rate */

static const struct sl_ctld_balance_conf by_rate = {.by = SL_CTLD_BALANCE_RATE,
						    .rate_slack_pct = 25};
#define NO_RATE UINT64_MAX /* a region whose write rate is not known (yet) */

/* 3 nodes with one core each (joined), regions of RF 3 whose preferred leaders are lead[i]
 * (ctld's own moves, ended: no operator hold) and whose observed write rates are rate[i]
 * points/s (NO_RATE: unknown, the figure itself left absurdly high to be noticed if it
 * counted). */
static void rate_cluster(uint32_t regions, const uint32_t *lead, const uint64_t *rate)
{
	struct sl_ctld_cluster c = cluster(3, regions, 3);
	bootstrap_cluster(&c);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(apply_obj(sl_ctld_cmd_join(n, "a", 1, 0)), 0);
	memset(&obs, 0, sizeof(obs));
	for (uint32_t i = 0; i < regions; i++) {
		if (sm.regions[i].leader != lead[i]) {
			uint64_t id = sm.n_moves + 1;
			assert_int_equal(apply_obj(sl_ctld_cmd_balance(id, i, lead[i], 0, 0,
								       SL_CTLD_MOVE_BALANCE, NULL)),
					 0);
			assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, "set up", 0)), 0);
		}
		obs.r[i].load.has_rate = rate[i] != NO_RATE;
		obs.r[i].load.points_per_s = rate[i] != NO_RATE ? rate[i] : 999999999;
	}
}

/* The balance by rate's next move (region, or UINT32_MAX: none; to, why set). */
static uint32_t rate_next(const struct sl_ctld_balance_conf *conf, uint32_t *to, char *why,
			  size_t why_len)
{
	uint32_t region = UINT32_MAX;
	int k = sl_ctld_balance_next_by(&sm, 0, conf, &obs, &region, to, why, why_len);
	assert_true(k == 0 || k == SL_CTLD_MOVE_BALANCE + 1);
	return k != 0 ? region : UINT32_MAX;
}

/* balance_by = rate: node 1 leads 52000 points/s, node 2 30000, node 3 18000 (region 5's
 * rate unknown: 0). The move that evens the loads most is region 0 (20000) to node 3 (not
 * region 2 to node 2, which would leave those two equal but node 1 and 2 at 41000); the
 * move records why, keeps it when done, and the balance then rests (38000 against 30000
 * is within 25 %). Count mode is sl_ctld_balance_next's, rates or not. */
static void test_balance_rate(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t to = 0, region = 0, to_count = 0, region_count = 0;
	const uint32_t lead[] = {1, 1, 1, 2, 3, 3};
	const uint64_t rate[] = {20000, 21000, 11000, 30000, 18000, NO_RATE};
	recording = true;
	rate_cluster(6, lead, rate);
	const struct sl_ctld_balance_conf by_count = {.by = SL_CTLD_BALANCE_COUNT,
						      .rate_slack_pct = 25};
	int k = sl_ctld_balance_next(&sm, 0, &region_count, &to_count);
	assert_int_equal(sl_ctld_balance_next_by(&sm, 0, &by_count, &obs, &region, &to, why,
						 sizeof(why)),
			 k);
	assert_int_equal(region, region_count);
	assert_int_equal(to, to_count);
	assert_string_equal(why, "");
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 0);
	assert_int_equal(to, 3);
	assert_string_equal(why, "rate: node 1 leads 52000 points/s, node 3 18000; region 0 "
				 "(20000 points/s) to node 3");
	/* recorded with its why (kind balance), shown while it runs */
	uint64_t id = sm.n_moves + 1;
	assert_int_equal(apply_obj(sl_ctld_cmd_balance(id, 0, 3, 1, 500, SL_CTLD_MOVE_BALANCE,
						       why)),
			 0);
	const struct sl_ctld_move *m = sl_ctld_move_get(&sm, id);
	assert_int_equal(m->kind, SL_CTLD_MOVE_BALANCE);
	assert_string_equal(m->why, why);
	struct json_object *mv = sl_ctld_view_moves(&sm, NULL, 0, 0), *arr = NULL;
	assert_true(json_object_object_get_ex(mv, "moves", &arr));
	struct json_object *last = json_object_array_get_idx(arr, json_object_array_length(arr) - 1);
	assert_string_equal(json_object_get_string(json_object_object_get(last, "why")), why);
	assert_string_equal(json_object_get_string(json_object_object_get(last, "kind")), "balance");
	json_object_put(mv);
	assert_int_equal(sm.regions[0].leader, 3);
	replay_recorded(); /* the why is in the log: a fresh machine has it too */
	assert_string_equal(sl_ctld_move_get(&sm, id)->why, why);
	/* a why only on ctld's own moves */
	assert_int_equal(apply_text("{\"op\":\"transfer_leader\",\"id\":99,\"region\":1,\"to\":2,"
				    "\"from\":0,\"at_ms\":1,\"why\":\"x\"}"),
			 -EINVAL);
	assert_int_equal(apply_text("{\"op\":\"transfer_leader\",\"id\":99,\"region\":1,\"to\":2,"
				    "\"from\":0,\"at_ms\":1,\"kind\":\"balance\",\"why\":7}"),
			 -EINVAL);
	/* 32000, 30000, 38000: within the slack, nothing more */
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), UINT32_MAX);
	assert_string_equal(why, "");
}

/* The slack: 40000 against 31000 is within 25 % (10000) but not within 20 % (8000); no
 * rate known anywhere: nothing moves. */
static void test_balance_rate_slack(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t to = 0;
	const uint32_t lead[] = {1, 1, 2, 3};
	const uint64_t rate[] = {30000, 10000, 32000, 31000};
	rate_cluster(4, lead, rate);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), UINT32_MAX);
	const struct sl_ctld_balance_conf tight = {.by = SL_CTLD_BALANCE_RATE,
						   .rate_slack_pct = 20};
	/* 10000 to node 3 leaves 30000 and 41000: not below 40000, refused; region 0 to node
	 * 3 (30000 + 31000) too: nothing of node 1 can go without a ping-pong */
	assert_int_equal(rate_next(&tight, &to, why, sizeof(why)), UINT32_MAX);
	/* the same loads with a region of 4000 on node 1: it goes to node 3 under 20 % */
	const uint64_t rate2[] = {36000, 4000, 32000, 31000};
	rate_cluster(4, lead, rate2);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), UINT32_MAX);
	assert_int_equal(rate_next(&tight, &to, why, sizeof(why)), 1);
	assert_int_equal(to, 3);
	const uint64_t unknown[] = {NO_RATE, NO_RATE, NO_RATE, NO_RATE};
	rate_cluster(4, lead, unknown);
	assert_int_equal(rate_next(&tight, &to, why, sizeof(why)), UINT32_MAX);
}

/* No ping-pong: node 1 leads 50000 + 10000, node 2 nothing (node 3 drained). The tie of
 * the two regions goes to the lower id; after the move node 2 is busiest, 50000 against
 * 10000, yet moving region 0 back would give node 1 60000, not below 50000: no move, as
 * long as the rates stay. */
static void test_balance_rate_no_ping_pong(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t to = 0;
	const uint32_t lead[] = {1, 1};
	const uint64_t rate[] = {50000, 10000};
	rate_cluster(2, lead, rate);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, true)), 0);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 0);
	assert_int_equal(to, 2);
	uint64_t id = sm.n_moves + 1;
	assert_int_equal(apply_obj(sl_ctld_cmd_balance(id, 0, 2, 1, 0, SL_CTLD_MOVE_BALANCE, why)),
			 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_move_end(id, true, why, 0)), 0);
	for (uint32_t round = 0; round < 3; round++)
		assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), UINT32_MAX);
	/* one region of 100000 alone on node 1: moving it only moves the imbalance */
	const uint32_t lead1[] = {1};
	const uint64_t rate1[] = {100000};
	rate_cluster(1, lead1, rate1);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), UINT32_MAX);
}

/* Guards shared with the count balance: node 3 leading nothing but draining (or down, or
 * decommissioning) is never the least busy node nor a target; a region that switches, or
 * that an operator moved within the hold, stays; a retired region's rate counts for
 * nobody; a drained node's regions go first (kind drain), whatever the rates. */
static void test_balance_rate_guards(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t to = 0, region = 0;
	const uint32_t lead[] = {1, 1, 1, 2, 2, 2};
	const uint64_t rate[] = {20000, 21000, 11000, 30000, 0, NO_RATE};
	/* 52000, 30000, 0 */
	rate_cluster(6, lead, rate);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 1); /* 21000 to node 3 */
	assert_int_equal(to, 3);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, true)), 0);
	/* 52000 against 30000: region 2 (11000) to node 2 evens them */
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 2);
	assert_int_equal(to, 2);
	assert_string_equal(why, "rate: node 1 leads 52000 points/s, node 2 30000; region 2 "
				 "(11000 points/s) to node 2");
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, false)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(3, false)), 0);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 2);
	assert_int_equal(to, 2);
	assert_int_equal(apply_obj(sl_ctld_cmd_node_state(3, true)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(3, true)), 0);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 2);
	assert_int_equal(to, 2);
	assert_int_equal(apply_obj(sl_ctld_cmd_decommission(3, false)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, true)), 0);
	/* region 2 switches (a protocol switch runs): region 0 (20000) is the next best */
	assert_int_equal(apply_obj(sl_ctld_cmd_set_protocol(sm.n_moves + 1, 2, "multileader", 0)),
			 0);
	assert_true(sl_ctld_switching(&sm, 2));
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 0);
	assert_int_equal(to, 2);
	/* an operator put region 0 on node 1 (the hold runs): region 1 (21000) then */
	assert_int_equal(apply_obj(sl_ctld_cmd_transfer_leader(sm.n_moves + 1, 0, 1, 1, 0)), 0);
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 1);
	assert_int_equal(to, 2);
	assert_int_equal(sl_ctld_balance_next_by(&sm, SL_CTLD_OPERATOR_HOLD_MS, &by_rate, &obs,
						 &region, &to, why, sizeof(why)),
			 SL_CTLD_MOVE_BALANCE + 1);
	assert_int_equal(region, 0); /* the hold is over */
	/* node 2 drained too: only node 1 takes leaders, its regions with copies go first */
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(3, false)), 0);
	assert_int_equal(apply_obj(sl_ctld_cmd_drain(2, true)), 0);
	assert_int_equal(sl_ctld_balance_next_by(&sm, 0, &by_rate, &obs, &region, &to, why,
						 sizeof(why)),
			 SL_CTLD_MOVE_DRAIN + 1);
	assert_int_equal(sm.regions[region].leader, 2);
	assert_string_equal(why, "");

	/* retired: region 5 merged into 4 (both on node 3) keeps an observed rate that would
	 * make node 3 the busiest if it counted: 31000, 30000, 20000 is within the slack */
	const uint32_t lead2[] = {1, 1, 2, 3, 3, 3};
	const uint64_t rate2[] = {20000, 11000, 30000, 20000, 0, 0};
	rate_cluster(6, lead2, rate2);
	(void)merge_regions(4);
	assert_true(sl_ctld_region_retired(&sm, 5));
	obs.r[5].load.has_rate = true;
	obs.r[5].load.points_per_s = 1000000;
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), UINT32_MAX);
}

/* The rates the ctld leader observes from heartbeats (sl_ctld_split_observe) drive it: a
 * region never reported counts 0. */
static void test_balance_rate_heartbeats(void **state)
{
	(void)state;
	char why[SL_CTLD_WHY_MAX];
	uint32_t to = 0;
	const uint32_t lead[] = {1, 1, 2, 3, 3};
	const uint64_t none[] = {NO_RATE, NO_RATE, NO_RATE, NO_RATE, NO_RATE};
	rate_cluster(5, lead, none);
	memset(&soft, 0, sizeof(soft));
	const struct sl_ctld_split_conf off = {.sustain_ms = 30000};
	int64_t nob[] = {NO_FIGURE, NO_FIGURE, NO_FIGURE, NO_FIGURE, NO_FIGURE};
	for (uint64_t t = 0; t <= 2; t++) {
		/* node 1 leads 40000 + 30000 points/s, node 2 1000, node 3 2000 + unknown */
		int64_t pts[] = {(int64_t)t * 40000, (int64_t)t * 30000, (int64_t)t * 1000,
				 (int64_t)t * 2000, NO_FIGURE};
		hb_load(1, pts, nob, t * S);
		sl_ctld_split_observe(&sm, &soft, t * S, HOUR, &off, &obs);
	}
	assert_false(obs.r[4].load.has_rate);
	/* 30000 to node 2 lowers the squares by 2 * 30000 * 39000, 40000 by 2 * 40000 * 29000 */
	assert_int_equal(rate_next(&by_rate, &to, why, sizeof(why)), 1);
	assert_int_equal(to, 2);
	assert_string_equal(why, "rate: node 1 leads 70000 points/s, node 2 1000; region 1 "
				 "(30000 points/s) to node 2");
}

/* [cluster] balance_by and balance_rate_slack: defaults, values, errors, the dump. */
static void test_balance_rate_conf(void **state)
{
	(void)state;
	struct sl_ctld_conf c;
	char err[256];
	sl_ctld_conf_default(&c);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.balance.by, SL_CTLD_BALANCE_COUNT);
	assert_int_equal(c.balance.rate_slack_pct, 25);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "balance_by", "rate", err, sizeof(err)),
			 0);
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "balance_rate_slack", "10", err,
					  sizeof(err)),
			 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.balance.by, SL_CTLD_BALANCE_RATE);
	assert_int_equal(c.balance.rate_slack_pct, 10);
	const char *dump = conf_dump(&c);
	assert_non_null(strstr(dump, "balance_by = \"rate\"\n"));
	assert_non_null(strstr(dump, "balance_rate_slack = 10\n"));
	for (size_t i = 0; i < 2; i++) {
		const char *bad = i ? "101" : "0";
		assert_int_equal(sl_ctld_conf_set(&c, "cluster", "balance_rate_slack", bad, err,
						  sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "[cluster] balance_rate_slack"));
	}
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "balance_by", "load", err, sizeof(err)),
			 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "[cluster] balance_by = 'load': count or rate");
	assert_int_equal(sl_ctld_conf_set(&c, "cluster", "balance_by", "count", err, sizeof(err)),
			 0);
	assert_int_equal(sl_ctld_conf_finish(&c, err, sizeof(err)), 0);
	assert_int_equal(c.balance.by, SL_CTLD_BALANCE_COUNT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bootstrap_spreads),
	    cmocka_unit_test(test_bootstrap_spreads_cores), cmocka_unit_test(test_bootstrap_protocols),
	    cmocka_unit_test(test_bootstrap_once),    cmocka_unit_test(test_join_and_state),
	    cmocka_unit_test(test_set_leader),        cmocka_unit_test(test_transfer_leader),
	    cmocka_unit_test(test_balance),           cmocka_unit_test(test_set_protocol),
	    cmocka_unit_test(test_switch_flow),       cmocka_unit_test(test_switch_leader_moves),
	    cmocka_unit_test(test_malformed_refused), cmocka_unit_test(test_heartbeat_and_views),
	    cmocka_unit_test(test_conf),              cmocka_unit_test(test_conf_file),
	    cmocka_unit_test(test_move_replica_refused), cmocka_unit_test(test_move_replica_multileader),
	    cmocka_unit_test(test_replica_move_flow),
	    cmocka_unit_test(test_replica_move_learner_down),
	    cmocka_unit_test(test_decommission),      cmocka_unit_test(test_rebalance),
	    cmocka_unit_test(test_initial_nodes),     cmocka_unit_test(test_replica_move_majority),
	    cmocka_unit_test(test_split_flow),        cmocka_unit_test(test_split_refused),
	    cmocka_unit_test(test_split_balance),     cmocka_unit_test(test_move_core),
	    cmocka_unit_test(test_count_next),
	    cmocka_unit_test(test_autosplit_heartbeat), cmocka_unit_test(test_autosplit_size),
	    cmocka_unit_test(test_autosplit_rate),    cmocka_unit_test(test_autosplit_dip_resets),
	    cmocka_unit_test(test_autosplit_longest_wins), cmocka_unit_test(test_autosplit_blocked),
	    cmocka_unit_test(test_autosplit_move),    cmocka_unit_test(test_autosplit_conf),
	    cmocka_unit_test(test_merge_flow),        cmocka_unit_test(test_merge_split_halves),
	    cmocka_unit_test(test_merge_refused),     cmocka_unit_test(test_merge_retired_ignored),
	    cmocka_unit_test(test_automerge_due),     cmocka_unit_test(test_automerge_blocked),
	    cmocka_unit_test(test_automerge_move),    cmocka_unit_test(test_automerge_conf),
	    cmocka_unit_test(test_balance_rate),      cmocka_unit_test(test_balance_rate_slack),
	    cmocka_unit_test(test_balance_rate_no_ping_pong),
	    cmocka_unit_test(test_balance_rate_guards), cmocka_unit_test(test_balance_rate_heartbeats),
	    cmocka_unit_test(test_balance_rate_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#!/usr/bin/env bash
# ctld_core.sh SLUICED CTLD PRODUCER VERIFY BENCH - core moves through sluice-ctld
# (`sluicectl region move-core R CORE`) on three nodes of two worker cores under load: three
# shm producers (one per node, every acknowledged batch logged) and sluice-bench on node 2,
# two raft regions (region 0 on core 0, region 1 on core 1). Checks: refusals with a clear
# error (the core it runs on, a core no node has, an unknown region, a data node's
# socket); region 0 moves to core 1 under load, a move of kind core done once every node
# runs its next segment there, writes acknowledged meanwhile; region 1 splits and its new
# half, region 2, moves to core 0; a merge of regions 1 and 2 is refused while they run on
# different cores; node 1 SIGKILLed and restarted runs region 0 on core 1 and region 2 on
# core 0 (its epochs files say so) after replaying its WALs; region 0 moves back to core 0
# with node 3 SIGKILLed right after the ask: the move waits for node 3, which replays,
# seals and moves after its restart; region 2 moves back to core 1 and merges into
# region 1; with [cluster] regions_target = 4 ctld splits until 4 regions are live, node 3
# restarted with --regions 4 runs the map, and regions_target = 2 merges them back; after
# the load, [eal] workers changes on the existing data dirs: every node restarted with 3
# workers (its regions stay on their cores; ctld shows 3 cores of lineage 2), region 1
# moves to core 2, node 3 restarted with 2 workers is refused naming region 1 on core 2,
# region 1 moves back to core 1, and every node restarts with 2 workers again; every
# acknowledged point reads back exactly on every node.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4 BENCH=$5
CTL=$(dirname "$SLUICED")/sluicectl
POINTS=${POINTS:-$([ -n "${ASAN_OPTIONS:-}" ] && echo 30000 || echo 60000)} SERIES=30 BATCH=300
NAME=co$$ REGIONS=2
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
. "$(dirname "$0")/cluster_lib.sh"
CTLD_REGIONS=2 CTLD_NODE_TIMEOUT_MS=3000 CTLD_DIAG_LINES=12
. "$(dirname "$0")/ctld_lib.sh"
trap ctld_cleanup_all EXIT
CL_ARGS=(--set cluster.ctld="$(ctld_socks)")

move_state() { ql moves "[(m['state'], m.get('waiting')) for m in r['moves'] if m['id'] == $1]"; }
# move_core R CORE: asks the ctld leader to move region R to core CORE; prints the move id
move_core() {
	local out
	out=$(ask_leader region move-core "$1" "$2") || fail "move-core $*: $out"
	move_id "$out"
}
# on_core R CORE EPOCH: every node runs region R on core CORE at segment EPOCH, not sealed
on_core() {
	local i
	for i in 1 2 3; do
		[ "$(cl_regions "$i" "len(rs) > $1 and (rs[$1]['core'], rs[$1]['epoch'], rs[$1]['sealed']) == ($2, $3, False)")" = True ] ||
			{ echo False; return; }
	done
	echo True
}
cores_of() { for i in 1 2 3; do cl_regions "$i" "[(r['id'], r['core'], r['epoch']) for r in rs if 'merged_into' not in r]"; done; }
# core_done ID R CORE EPOCH: move ID ends done; ctld's map and every node run region R on
# CORE at segment EPOCH
core_done() {
	until_true 600 "move $1 (region $2 to core $3) did not end done: $(move_state "$1")" move_is "$1" done
	until_true 300 "not every node runs region $2 on core $3 at segment $4: $(cores_of)" on_core "$2" "$3" "$4"
	[ "$(ql regions "r['regions'][$2].get('core')")" = "$3" ] || fail "ctld's map has region $2 on core $(ql regions "r['regions'][$2].get('core')")"
}

ctld_cluster_up 3
echo "[${SECONDS}s] 3 ctld replicas, 3 nodes of 2 cores; regions (id, core, epoch): $(cl_regions 1 "[(r['id'], r['core'], r['epoch']) for r in rs]")"
[ "$(cl_regions 1 "[r['core'] for r in rs]")" = "[0, 1]" ] || fail "regions 0 and 1 do not start on cores 0 and 1"

load_start 100 300 40

# refusals: clear errors, nothing recorded
T=$(ql moves "r['total']")
out=$(ask_leader region move-core 0 0) && fail "a move to the core region 0 runs on: $out"
[[ "$out" == *"already"* ]] || fail "same-core refusal: $out"
out=$(ask_leader region move-core 0 5) && fail "a move to core 5 of 2: $out"
[[ "$out" == *"bad_request"* && "$out" == *"worker cores"* ]] || fail "core 5 refusal: $out"
out=$(ask_leader region move-core 9 1) && fail "region 9 moved: $out"
[[ "$out" == *"not_found"* ]] || fail "unknown region: $out"
out=$(ask "$(cl_sock 1)" region move-core 0 1) && fail "a data node took a core move: $out"
[ "$(ql moves "r['total']")" = "$T" ] || fail "a refused core move was recorded"
echo "[${SECONDS}s] refused: the core it runs on, core 5, region 9, a data node's socket"

# region 0 moves to core 1 under load
a0=$(cl_acks)
ID=$(move_core 0 1)
core_done "$ID" 0 1 1
a1=$(cl_acks)
[ "$a1" -gt "$a0" ] || fail "no write acknowledged during the core move"
echo "[${SECONDS}s] move $ID: region 0 runs on core 1 at segment 1 on every node ($(ql moves "[m['took_ms'] for m in r['moves'] if m['id'] == $ID][0]") ms; $((a1 - a0)) batches acknowledged meanwhile)"
for i in 1 2 3; do
	[ "$(cl_stat "$i" core_moves)" -ge 1 ] || fail "node $i counted no core move"
	grep -q "region 0: runs on core 1 from segment 1" "$DIR/node$i.log" || fail "node $i did not log the core move"
done

# region 1 (core 1) splits; its new half, region 2, moves to core 0; a merge of the two is
# refused while they run on different cores
out=$(ask_leader region split 1) || fail "split 1: $out"
ID=$(move_id "$out")
until_true 600 "move $ID (split of region 1) did not end done: $(move_state "$ID")" move_is "$ID" done
until_true 300 "not every node runs region 2 on core 1: $(cores_of)" on_core 2 1 1
ID=$(move_core 2 0)
core_done "$ID" 2 0 2
out=$(ask_leader region merge 1) && fail "a merge across cores: $out"
[[ "$out" == *"different cores"* ]] || fail "cross-core merge refusal: $out"
echo "[${SECONDS}s] region 1 split, its half region 2 moved to core 0 (move $ID); a merge across cores refused"

# node 1 restarted (not node 2: sluice-bench writes through it): its epochs files put
# region 0 on core 1 and region 2 on core 0
cl_kill 1
cl_start 1
until_true 300 "node 1 does not run regions 0 and 2 on cores 1 and 0 after its restart: $(cores_of)" \
	cl_regions 1 "len(rs) > 2 and (rs[0]['core'], rs[2]['core'], rs[1]['core']) == (1, 0, 1)"
grep -q "refusing" "$DIR/node1.log" && fail "node 1 refused to start"
cl_wait_leaders 1 0
echo "[${SECONDS}s] node 1 restarted: $(cl_regions 1 "[(r['id'], r['core'], r['epoch']) for r in rs]")"

# region 0 back to core 0 with node 3 killed right after the ask: the move waits for it
E0=$(ql regions "r['regions'][0]['epoch']")
ID=$(move_core 0 0)
cl_kill 3
sleep 1
[ "$(move_is "$ID" running)" = True ] || fail "move $ID did not wait for node 3: $(move_state "$ID")"
echo "[${SECONDS}s] move $ID: region 0 to core 0 asked, node 3 killed: $(move_state "$ID")"
cl_start 3
core_done "$ID" 0 0 $((E0 + 1))
echo "[${SECONDS}s] node 3 back: move $ID done, region 0 on core 0 at segment $((E0 + 1))"

# region 2 back to core 1, then merged into region 1
ID=$(move_core 2 1)
core_done "$ID" 2 1 3
E1=$(ql regions "r['regions'][1]['epoch']")
out=$(ask_leader region merge 1) || fail "merge 1: $out"
ID=$(move_id "$out")
until_true 600 "move $ID (merge of regions 1 and 2) did not end done: $(move_state "$ID")" move_is "$ID" done
merged() {
	local i
	for i in 1 2 3; do
		[ "$(cl_regions "$i" "(rs[1]['epoch'], rs[1]['core'], rs[2].get('merged_into'))")" = "($((E1 + 1)), 1, 1)" ] ||
			{ echo False; return; }
	done
	echo True
}
until_true 300 "not every node merged region 2 into region 1: $(cores_of)" merged
echo "[${SECONDS}s] region 2 moved back to core 1 and merged into region 1 (move $ID)"

# the number of regions changed: [cluster] regions_target = 4 (the ctld replicas restarted
# one by one): ctld splits the widest live region, one move per balance interval, until 4
# are live; node 3 restarted with --regions 4 starts (the count only seeds a new cluster)
live() { ql regions "len([x for x in r['regions'] if x.get('merged_into') is None])"; }
CTLD_BALANCE_MS=1000 CTLD_REGIONS_TARGET=4
restart_ctlds
until_true 600 "ctld did not reach 4 live regions: $(live) live, $(ql moves "r['moves'][-2:]") $(ql regions "r.get('auto_split_blocked')")" \
	ql regions "len([x for x in r['regions'] if x.get('merged_into') is None]) == 4"
until_true 600 "a move is still running: $(ql moves "[m for m in r['moves'] if m['state'] == 'running']")" idle
until_true 300 "the nodes do not route as ctld's map (4 regions)" nodes_route
WHY=$(ql moves "[m['why'] for m in r['moves'] if m['kind'] == 'auto-split'][0]")
[[ "$WHY" == "regions_target 4: 2 live regions"* ]] || fail "the first auto-split says: $WHY"
cl_kill 3
REGIONS=4 cl_start 3
until_true 300 "node 3 does not route as ctld's map after a restart with --regions 4" nodes_route
grep -q "this data dir was written with \[regions\] count = 2; the config says 4" "$DIR/node3.log" ||
	fail "node 3 did not say its changed region count is not the map's"
echo "[${SECONDS}s] regions_target 4: $(ql moves "[(m['kind'], m['region'], m['new_region']) for m in r['moves'] if m['kind'] == 'auto-split']") ($WHY); node 3 restarted with --regions 4 runs the map"

# and back to 2: ctld merges the narrowest pair that may merge (the halves of a split, on
# one core), one at a time
CTLD_REGIONS_TARGET=2
restart_ctlds
until_true 600 "ctld did not merge back to 2 live regions: $(live) live, $(ql moves "r['moves'][-2:]") $(ql regions "r.get('auto_split_blocked')")" \
	ql regions "len([x for x in r['regions'] if x.get('merged_into') is None]) == 2"
until_true 600 "a move is still running: $(ql moves "[m for m in r['moves'] if m['state'] == 'running']")" idle
until_true 300 "the nodes do not route as ctld's map (2 regions)" nodes_route
echo "[${SECONDS}s] regions_target 2: $(ql moves "[(m['kind'], m['region'], m['merge_with']) for m in r['moves'] if m['kind'] == 'auto-merge']"); live regions $(ql regions "[(x['id'], x['hash_lo'], x.get('core')) for x in r['regions'] if x.get('merged_into') is None]")"

load_end

# [eal] workers changed on existing data dirs (docs/cluster.md, "Changing the number of
# workers"): up to 3 on every node, one at a time
for i in 1 2 3; do
	cl_kill "$i"
	WORKERS=3 cl_start "$i"
	grep -q "this data dir last ran 2 workers, the config says 3" "$DIR/node$i.log" ||
		fail "node $i did not say its workers changed"
done
until_true 300 "ctld does not show 3 cores of lineage 2: $(ql members "[(m.get('cores'), m.get('lineage_cores')) for m in r['members']]")" \
	ql members "[(m.get('cores'), m.get('lineage_cores')) for m in r['members']] == [(3, 2)] * 3"
cl_wait_leaders 1 0
for i in 1 2 3; do # the regions stay on their cores
	[ "$(cl_regions "$i" "[r['core'] for r in rs if 'merged_into' not in r]")" = "[0, 1]" ] ||
		fail "node $i with 3 workers: $(cores_of)"
done
E1=$(ql regions "r['regions'][1]['epoch']")
ID=$(move_core 1 2)
core_done "$ID" 1 2 $((E1 + 1))
echo "[${SECONDS}s] every node restarted with 3 workers, region 1 moved to core 2 (move $ID)"
cl_kill 3
if WORKERS=2 "$SLUICED" --data-dir "$SL_DIR/d3" --name "$NAME-3" --workers 2 --regions "$REGIONS" \
	--set regions.protocol=raft --set node.id=3 --set cluster.nodes="$CL_NODES" \
	--set cluster.fabric_dir="$SL_DIR/fab" ${CL_ARGS[@]+"${CL_ARGS[@]}"} >"$DIR/refused.log" 2>&1; then
	fail "node 3 started with 2 workers while region 1 runs on its core 2"
fi
grep -q "region 1 runs on worker core 2 here" "$DIR/refused.log" ||
	{ cat "$DIR/refused.log"; fail "node 3's refusal does not name region 1 on core 2"; }
echo "[${SECONDS}s] node 3 with 2 workers refused: $(grep -o "region 1 runs on worker core 2 here.*" "$DIR/refused.log")"
WORKERS=3 cl_start 3
ID=$(move_core 1 1)
core_done "$ID" 1 1 $((E1 + 2))
for i in 1 2 3; do
	cl_kill "$i"
	cl_start "$i"
	grep -q "workers 3 -> 2: every core took the sessions" "$DIR/node$i.log" ||
		fail "node $i did not take its old cores' sessions"
done
until_true 300 "ctld does not show 2 cores: $(ql members "[(m.get('cores'), m.get('lineage_cores')) for m in r['members']]")" \
	ql members "[(m.get('cores'), m.get('lineage_cores')) for m in r['members']] == [(2, None)] * 3"
cl_wait_leaders 1 0
echo "[${SECONDS}s] region 1 back on core 1 (move $ID), every node restarted with 2 workers"

cl_verify_all
for i in 1 2 3; do
	echo "node $i: core moves $(cl_stat "$i" core_moves), points/reads handed to the new core $(cl_stat "$i" core_redirects), switches $(cl_stat "$i" protocol_switches), failed $(cl_stat "$i" protocol_switch_failed)"
	[ "$(cl_stat "$i" protocol_switch_failed)" = 0 ] || fail "node $i counted failed switches"
done
"$CTL" --socket "$(csock "$(leader)")" moves
echo "[${SECONDS}s] ctld_core: PASS ($(cl_acks) batches acknowledged)"

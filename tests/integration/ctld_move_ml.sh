#!/usr/bin/env bash
# ctld_move_ml.sh SLUICED CTLD PRODUCER VERIFY BENCH - multileader replica moves through
# sluice-ctld on four nodes under load: three shm producers (nodes 1-3, every acknowledged
# batch logged) and sluice-bench on node 2. Both regions run multileader; the map starts
# on nodes 1-3 and node 4 starts on an empty data dir. A multileader replica move seals
# the region's segment at once (no learner phase), and the new replica joins the next
# segment empty: it asks a peer for the segment's base image and takes the streams, in
# its protocol's rejoin mode (no write, its copies count for no ack) until caught up; ctld
# ends the move only then. Checks: ctld's rebalance gives node 4 a replica ("add a node");
# an operator's move to node 4 whose joiner cannot catch up (its peers' frames to it
# dropped) stays running, saying so; node 4 SIGKILLed while joining drops that copy at its
# restart and joins again, then catches up (the move ends done, or failed if ctld saw node
# 4 down first); a restart after that keeps the copies; node 4, its data dir lost, comes
# back with --rejoin and joins both regions at the segment they run; a move is refused
# while a replica of the region is down (the seal needs every replica); every
# acknowledged point reads back exactly on every node, node 4's copies included.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4 BENCH=$5
CTL=$(dirname "$SLUICED")/sluicectl
POINTS=${POINTS:-$([ -n "${ASAN_OPTIONS:-}" ] && echo 30000 || echo 60000)} SERIES=30 BATCH=300
NAME=mm$$ REGIONS=2 CL_NODES=4 CL_PROTOCOLS=0:multileader,1:multileader
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
. "$(dirname "$0")/cluster_lib.sh"
CTLD_REGIONS=2 CTLD_PROTOCOLS=$CL_PROTOCOLS CTLD_NODE_TIMEOUT_MS=3000 CTLD_DIAG_LINES=12
CTLD_INITIAL_NODES=3 CTLD_BALANCE_MS=1000
. "$(dirname "$0")/ctld_lib.sh"
trap ctld_cleanup_all EXIT
CL_ARGS=(--set cluster.ctld="$(ctld_socks)" --set debug.fault_injection=true)

move_state() { ql moves "[(m['state'], m.get('waiting'), m.get('why')) for m in r['moves'] if m['id'] == $1]"; }
# joining I R: node I runs region R's replica in its protocol's rejoin mode (a joiner)
joining() { cl_regions "$1" "rs[$2]['role'] != 'none' and rs[$2]['rejoining']"; }
# cut_off I PCT: nodes 1-3 drop their frames to node I at PCT %
cut_off() {
	local j
	for j in 1 2 3; do
		"$CTL" --socket "$(cl_sock "$j")" call debug_fabric \
			"{\"peer\":$1,\"dir\":\"out\",\"drop_pct\":$2,\"delay_ms\":0}" >/dev/null
	done
}
# converged: each region's replicas applied the same per-origin positions (twice, 0.5 s
# apart); a region is read from the nodes ctld's map names
positions() {
	local r i
	for r in $(seq 0 $((REGIONS - 1))); do
		for i in $(ql regions "' '.join(map(str, r['regions'][$r]['replicas']))"); do
			echo "$r $(cl_regions "$i" "sorted((o['node'], o['applied']) for o in rs[$r]['origins'])")"
		done
	done | sort -u | cut -d' ' -f1 | uniq -d | wc -l
}
converged() {
	[ "$(positions)" = 0 ] || { echo False; return; }
	sleep 0.5
	[ "$(positions)" = 0 ] && echo True || echo False
}

for i in 1 2 3; do start_ctld "$i"; done
until_true 300 "no ctld leader bootstrapped the cluster" \
	q "$(csock 1)" status "r['bootstrapped'] and r['leader'] is not None and r['applied_index'] == r['commit_index']"
for i in 1 2 3; do cl_start "$i"; done
until_true 600 "members never showed nodes 1-3 up" \
	ql members "[m['state'] for m in r['members']][:3] == ['up'] * 3"
cl_wait_leaders 1 0
echo "[${SECONDS}s] 3 ctld replicas, 3 nodes; map $(ql regions "[(x['replicas'], x['protocol']) for x in r['regions']]")"
load_start 200 700 50
# node 4 comes once the regions hold data: its joiner needs the segment's base image
cl_wait_acks 60
cl_start 4
until_true 600 "node 4 never showed up" ql members "r['members'][3]['state'] == 'up'"

# add a node: the rebalance moves a multileader replica to node 4 (empty data dir)
until_true 900 "node 4 got no replica: $(count_of) $(ql moves "r['moves']")" \
	ql members "r['members'][3]['replicas'] >= 1"
until_true 900 "the rebalance did not settle: $(ql moves "r['moves']")" idle
R4=$(ql regions "[x['id'] for x in r['regions'] if 4 in x['replicas']][0]")
[ "$(ql regions "r['regions'][$R4]['protocol']")" = multileader ] || fail "region $R4 left multileader"
[ "$(ql moves "[m['state'] for m in r['moves'] if m['to'] == 4]")" = "['done']" ] ||
	fail "the rebalance move to node 4: $(ql moves "r['moves']")"
until_true 300 "node 4 still joins region $R4" eval '[ "$(joining 4 "$R4")" = False ] && echo True || echo False'
J=$(cl_stat 4 ml_joiners_caught_up)
[ "$J" = 1 ] || fail "node 4 caught up $J multileader joiners, not 1"
grep -q "caught up as a multileader joiner of segment" "$DIR/node4.log" || fail "node 4 did not say it caught up"
echo "[${SECONDS}s] node 4 added: region $R4's replica by rebalance ($(reps "$R4")), caught up as a multileader joiner; replicas per node $(count_of)"

# refused while a replica of the region is down: the seal needs every replica
R=$((1 - R4))
F=$(ql regions "r['regions'][$R]['replicas'][0]")
D=$(ql regions "r['regions'][$R]['replicas'][1]")
cl_kill "$D"
until_true 600 "node $D not down" ql members "r['members'][$((D - 1))]['state'] == 'down'"
T=$(ql moves "r['total']")
out=$(ask "$(csock "$(leader)")" region move-replica "$R" "$F" 4) && fail "a move with node $D down: $out"
[[ "$out" == *"whose seal needs every replica: node $D is down"* ]] || fail "refusal: $out"
[ "$(ql moves "r['total']")" = "$T" ] || fail "a refused replica move was recorded"
cl_start "$D"
until_true 600 "node $D not back up" ql members "r['members'][$((D - 1))]['state'] == 'up'"
echo "[${SECONDS}s] refused with node $D down: ${out##*move-replica: }"

# an operator's move to node 4 whose joiner cannot catch up (frames to node 4 dropped):
# the move stays running, waiting for it; node 4 SIGKILLed while joining drops its copy
# at the restart and joins again; with the frames back it catches up and the move ends
until_true 900 "moves still running" idle
RB=$(reps "$R") EB=$(ql regions "r['regions'][$R]['epoch']")
cut_off 4 100
out=$(ask "$(csock "$(leader)")" region move-replica "$R" "$F" 4) || fail "move-replica $R $F 4: $out"
ID=$(move_id "$out")
until_true 600 "region $R did not switch to its next segment: $(move_state "$ID")" \
	ql regions "r['regions'][$R]['epoch'] == $EB + 1"
until_true 300 "node 4 does not join region $R: $(cl_regions 4 "rs[$R]")" joining 4 "$R"
sleep 2
[ "$(joining 4 "$R")" = True ] || fail "node 4 caught up without its peers' frames"
[ "$(move_state "$ID")" != "[]" ] && [ "$(ql moves "[m['state'] for m in r['moves'] if m['id'] == $ID][0]")" = running ] ||
	fail "move $ID ended while its joiner catches up: $(move_state "$ID")"
WAITING=$(ql moves "[m.get('waiting') for m in r['moves'] if m['id'] == $ID][0]")
[[ "$WAITING" == *"node 4 is catching up"* ]] || fail "move $ID waits for: $WAITING"
echo "[${SECONDS}s] move $ID: region $R switched to epoch $((EB + 1)) on $(reps "$R"); node 4 joining, cut off: '$WAITING'"
# ctld ends the move failed if it sees node 4 down before it caught up (its restart may
# take longer than the node timeout): the region runs on its new replica set either way
cl_kill 4
cut_off 4 0
cl_start 4
until_true 600 "move $ID (region $R: $F -> 4) did not end: $(move_state "$ID")" \
	ql moves "[m['state'] for m in r['moves'] if m['id'] == $ID] != ['running']"
END=$(move_state "$ID")
[[ "$END" == *"'done'"* ]] || [[ "$END" == *"node 4 went down before every replica ran epoch"* ]] ||
	fail "move $ID: $END"
[ "$(ql regions "4 in r['regions'][$R]['replicas']")" = True ] || fail "region $R lost node 4: $(reps "$R")"
until_true 600 "node 4 still joins region $R" eval '[ "$(joining 4 "$R")" = False ] && echo True || echo False'
grep -q "catching up as a multileader joiner of segment $((EB + 1)): that copy is dropped, it joins again" "$DIR/node4.log" ||
	fail "node 4 did not drop its joiner's copy at the restart: $(grep "region $R" "$DIR/node4.log" | tail -5)"
[ "$(cl_stat 4 ml_joiners_caught_up)" = 1 ] || fail "node 4, restarted, caught up $(cl_stat 4 ml_joiners_caught_up) joiners"
echo "[${SECONDS}s] node 4 restarted while joining: copy dropped, joined again, caught up; move $ID ${END:3:6} ($RB -> $(reps "$R"))"

# a restart after catching up keeps the copy (no second join)
cl_kill 4
cl_start 4
until_true 600 "node 4 not back up" ql members "r['members'][3]['state'] == 'up'"
[ "$(grep -c "that copy is dropped" "$DIR/node4.log")" = 1 ] || fail "node 4 dropped a caught-up copy at a restart"
echo "[${SECONDS}s] node 4 restarted after catching up: kept its copies"

# node 4 loses its data dir: back with --rejoin, it joins both regions at the segment the
# map runs (1), in rejoin mode, and catches up from the base images and the streams
cl_kill 4
rm -rf "$DIR/d4"
CL_REJOIN=4
cl_start 4
CL_REJOIN=0
until_true 600 "node 4 (--rejoin) did not join both regions at segment 1: $(cl_regions 4 "[(r['epoch'], r['role']) for r in rs]")" \
	cl_regions 4 "all(r['epoch'] == 1 and r['role'] != 'none' for r in rs)"
until_true 600 "node 4 (--rejoin) did not catch up: $(cl_regions 4 "[r['rejoining'] for r in rs]")" \
	cl_regions 4 "not any(r['rejoining'] for r in rs)"
# the main lcore drops the marker (and says so) at its next housekeeping after the last
# region caught up: a moment after the regions show it (a bare grep here lost that race)
for _ in $(seq 1 100); do
	grep -q "rejoined: every replicated region caught up" "$DIR/node4.log" && break
	sleep 0.1
done
grep -q "rejoined: every replicated region caught up" "$DIR/node4.log" || fail "node 4 kept its REJOIN marker"
echo "[${SECONDS}s] node 4 lost its data dir: back with --rejoin, it joined both regions at segment 1 and caught up"

sl_wait_producers
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=0
bench_summary "$DIR/bench.json" || { cat "$DIR/bench.err"; fail "sluice-bench exited $rc"; }
until_true 600 "the replicas did not converge" converged
CL_VERIFY_ASAN="4" cl_verify_all
for i in 1 2 3 4; do
	echo "node $i: joined $(cl_stat "$i" replicas_joined), left $(cl_stat "$i" replicas_left), switches $(cl_stat "$i" protocol_switches), multileader joiners caught up $(cl_stat "$i" ml_joiners_caught_up), images sent $(cl_stat "$i" checkpoints_for_peers)"
done
"$CTL" --socket "$(csock "$(leader)")" moves
echo "[${SECONDS}s] ctld_move_ml: PASS ($(cl_acks) batches acknowledged)"

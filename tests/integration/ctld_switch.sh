#!/usr/bin/env bash
# ctld_switch.sh SLUICED CTLD PRODUCER VERIFY BENCH - online protocol switches through
# sluice-ctld (`sluicectl region set-protocol R P`) on three nodes under load: three shm
# producers (one per node, every acknowledged batch logged) and sluice-bench on node 2.
# Regions 0, 1 and 3 raft, 2 multileader. Checks: region 0 goes raft -> multileader ->
# raft, each switch a "protocol" move that ends done with every replica at the next
# segment of the region's log (epoch) under the new protocol, the other regions taking
# writes meanwhile; refusals with a clear error (the protocol it runs, standalone on three
# copies, an unknown protocol or region, a ctld follower, a data node's socket); region 2
# goes multileader -> raft while node 3 is SIGKILLed right after the switch was asked
# (it seals and switches after its restart, replaying its WAL); a node restarted after
# the switches runs each region's segment (its protocol from the data dir); node 3, its
# data dir lost, rejoins (--rejoin) regions past segment 0; every acknowledged point
# reads back exactly on every node.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4 BENCH=$5
CTL=$(dirname "$SLUICED")/sluicectl
POINTS=${POINTS:-$([ -n "${ASAN_OPTIONS:-}" ] && echo 30000 || echo 90000)} SERIES=30 BATCH=300
NAME=sw$$ REGIONS=4 CL_PROTOCOLS=2:multileader
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
. "$(dirname "$0")/cluster_lib.sh"
CTLD_REGIONS=4 CTLD_PROTOCOLS=$CL_PROTOCOLS CTLD_NODE_TIMEOUT_MS=3000 CTLD_DIAG_LINES=12
. "$(dirname "$0")/ctld_lib.sh"
trap ctld_cleanup_all EXIT
CL_ARGS=(--set cluster.ctld="$(ctld_socks)")

# switch R P: asks the ctld leader to switch region R to protocol P; prints the move id
switch() {
	local out
	out=$(ask "$(csock "$(leader)")" region set-protocol "$1" "$2") || fail "set-protocol $1 $2: $out"
	move_id "$out"
}
move_state() { ql moves "[(m['state'], m.get('waiting')) for m in r['moves'] if m['id'] == $1]"; }
# at R EPOCH P: every node runs region R at segment EPOCH under protocol P, unsealed
at() {
	local i
	for i in 1 2 3; do
		[ "$(cl_regions "$i" "(rs[$1]['epoch'], rs[$1]['protocol'], rs[$1]['sealed'])")" = "($2, '$3', False)" ] ||
			{ echo False; return; }
	done
	echo True
}
# switched R EPOCH P ID: move ID ends done, ctld's map and every node agree
switched() {
	until_true 600 "move $4 (region $1 to $3) did not end done: $(move_state "$4")" move_is "$4" done
	until_true 300 "not every node runs region $1 at segment $2 under $3: $(for i in 1 2 3; do cl_regions "$i" "(rs[$1]['epoch'], rs[$1]['protocol'], rs[$1]['sealed'])"; done)" \
		at "$1" "$2" "$3"
	[ "$(ql regions "(r['regions'][$1]['epoch'], r['regions'][$1]['protocol'], r['regions'][$1]['next_protocol'])")" = "($2, '$3', None)" ] ||
		fail "ctld's map of region $1: $(ql regions "r['regions'][$1]")"
}

ctld_cluster_up 3
echo "[${SECONDS}s] 3 ctld replicas, 3 nodes; map: $(ql regions "[(x['id'], x['protocol'], x['epoch']) for x in r['regions']]")"

load_start 100 300 30

# region 0: raft -> multileader under load, then back to raft
a0=$(cl_acks)
ID=$(switch 0 multileader)
switched 0 1 multileader "$ID"
a1=$(cl_acks)
[ "$a1" -gt "$a0" ] || fail "no write acknowledged during the switch"
echo "[${SECONDS}s] move $ID: region 0 raft -> multileader, segment 1 ($(ql moves "[m['took_ms'] for m in r['moves'] if m['id'] == $ID][0]") ms; $((a1 - a0)) batches acknowledged meanwhile)"

# refusals: clear errors, nothing recorded
LS=$(csock "$(leader)")
T=$(ql moves "r['total']")
out=$(ask "$LS" region set-protocol 0 multileader) && fail "a switch to the protocol region 0 runs: $out"
[[ "$out" == *"already"* ]] || fail "same-protocol refusal: $out"
out=$(ask "$LS" region set-protocol 1 standalone) && fail "standalone on three copies: $out"
[[ "$out" == *"standalone"* ]] || fail "standalone refusal: $out"
out=$(ask "$LS" region set-protocol 1 paxos) && fail "protocol paxos taken: $out"
[[ "$out" == *"bad_request"*"protocol must be"* ]] || fail "unknown protocol refusal: $out"
out=$(ask "$LS" region set-protocol 9 raft) && fail "region 9 switched: $out"
[[ "$out" == *"not_found"* ]] || fail "unknown region: $out"
F=$(( $(leader) % 3 + 1 ))
out=$(ask "$(csock "$F")" region set-protocol 1 multileader) && fail "a ctld follower took a switch: $out"
[[ "$out" == *"not_leader"* ]] || fail "follower refusal: $out"
out=$(ask "$(cl_sock 1)" region set-protocol 1 multileader) && fail "a data node took a switch: $out"
[[ "$out" == *"sluice-ctld"* ]] || fail "data node refusal: $out"
[ "$(ql moves "r['total']")" = "$T" ] || fail "a refused switch was recorded"
echo "[${SECONDS}s] refused: the protocol it runs, standalone on 3 copies, paxos, region 9, a ctld follower, a data node's socket"

ID=$(switch 0 raft)
switched 0 2 raft "$ID"
cl_wait_leaders 1 0
echo "[${SECONDS}s] move $ID: region 0 multileader -> raft, segment 2"

# region 2: multileader -> raft with node 3 killed right after it was asked: the switch
# waits for node 3 (it has not sealed), which replays its WAL, seals and switches
ID=$(switch 2 raft)
cl_kill 3
sleep 1
[ "$(move_is "$ID" running)" = True ] || fail "move $ID did not wait for node 3: $(move_state "$ID")"
echo "[${SECONDS}s] move $ID: region 2 to raft asked, node 3 killed: $(move_state "$ID")"
cl_start 3
switched 2 1 raft "$ID"
echo "[${SECONDS}s] node 3 back: move $ID done, region 2 runs raft at segment 1"

# a node restarted after the switches runs each region's own segment
cl_kill 1
cl_start 1
until_true 300 "node 1 does not run region 0 at segment 2 under raft" at 0 2 raft
until_true 300 "node 1 does not run region 2 at segment 1 under raft" at 2 1 raft
grep -q "refusing" "$DIR/node1.log" && fail "node 1 refused to start"
echo "[${SECONDS}s] node 1 restarted: regions $(cl_regions 1 "[(r['id'], r['epoch'], r['protocol']) for r in rs]")"
cl_wait_leaders 1 0

# node 3 loses its data dir and starts with --rejoin while regions 0 and 2 are past
# segment 0 (their peers run segments 2 and 1): it joins each at the map's segment, still
# rejoining (no vote until caught up), is caught up by snapshot, and the REJOIN marker goes
cl_kill 3
rm -rf "$DIR/d3"
CL_REJOIN=3
cl_start 3
CL_REJOIN=0
until_true 600 "node 3 (rejoining) does not run region 0 at segment 2" at 0 2 raft
until_true 300 "node 3 (rejoining) does not run region 2 at segment 1" at 2 1 raft
until_true 600 "node 3 still rejoining: $(cl_regions 3 "[(r['id'], r['epoch'], r['rejoining']) for r in rs]")" \
	eval '[ -e "$DIR/d3/REJOIN" ] && echo False || echo True'
grep -q "rejoining after its data dir was lost" "$DIR/node3.log" ||
	fail "node 3 did not join a later segment as a rejoining replica"
echo "[${SECONDS}s] node 3 rejoined after losing its data dir: regions $(cl_regions 3 "[(r['id'], r['epoch'], r['protocol']) for r in rs]")"

sl_wait_producers
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=0
bench_summary "$DIR/bench.json" || { cat "$DIR/bench.err"; fail "sluice-bench exited $rc"; }
cl_caught_up >/dev/null || fail "replicas did not catch up"
ml_caught_up
cl_verify_all
for i in 1 2 3; do
	echo "node $i: switches $(cl_stat "$i" protocol_switches), seals proposed $(cl_stat "$i" seals_proposed), proposals held by a seal $(cl_stat "$i" proposals_sealed), stale segment messages $(cl_stat "$i" switch_stale_msgs)"
done
[ "$(cl_stat 2 protocol_switch_failed)" = 0 ] || fail "node 2 counted failed switches"
"$CTL" --socket "$(csock "$(leader)")" moves
echo "[${SECONDS}s] ctld_switch: PASS ($(cl_acks) batches acknowledged)"

#!/usr/bin/env bash
# ctld_moves.sh SLUICED CTLD PRODUCER VERIFY BENCH - leader moves through sluice-ctld
# (`sluicectl region transfer-leader R NODE`) on three nodes under load: three shm
# producers (one per node, every acknowledged batch logged) and sluice-bench on node 2.
# Regions 0-1 and 4-5 raft, 2 multileader, 3 standalone (ctld's map; 4-5 are never moved
# by an operator here, so the balance always has regions it may move). Checks: refusals with a
# clear error (a single-copy region, a node that is not a replica, an unknown region, a
# ctld follower); a raft leader move ends "done" with every node seeing the new leader;
# a multileader region's home moves; a move survives the ctld leader being SIGKILLed
# right after it was asked (the next ctld leader ends it); a move to a node that stops
# (SIGSTOP) ends "failed" saying why; a node restarted after moves takes ctld's moved
# map (no refusal) and keeps it; every acknowledged point reads back exactly on every node.
# Leader balance (ctld's, every second here): a node SIGKILLed loses its preferred regions
# to the others (moves of kind "balance"), and gets its share back once it returns.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4 BENCH=$5
CTL=$(dirname "$SLUICED")/sluicectl
POINTS=${POINTS:-$([ -n "${ASAN_OPTIONS:-}" ] && echo 30000 || echo 90000)} SERIES=30 BATCH=300
NAME=mv$$ REGIONS=6 CL_PROTOCOLS=2:multileader,3:standalone
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
. "$(dirname "$0")/cluster_lib.sh"
CTLD_REGIONS=6 CTLD_PROTOCOLS=$CL_PROTOCOLS CTLD_BALANCE_MS=1000
# a loaded host (or the sanitized build) may delay a heartbeat past 1.5 s: 3 s here
CTLD_NODE_TIMEOUT_MS=3000
. "$(dirname "$0")/ctld_lib.sh"
trap ctld_cleanup_all EXIT
CL_ARGS=(--set cluster.ctld="$(ctld_socks)")

# move R NODE: asks the ctld leader to move region R's leader; prints the move id
move() {
	local out
	out=$(ask "$(csock "$(leader)")" region transfer-leader "$1" "$2") || fail "transfer-leader $1 $2: $out"
	move_id "$out"
}
move_state() { ql moves "[m['state'] for m in r['moves'] if m['id'] == $1]"; }
# node_leader I R: region R's leader (a multileader region: its home) as node I sees it
node_leader() { cl_regions "$1" "rs[$2].get('home', rs[$2]['leader'])"; }
same_leader_everywhere() { # R NODE: every node sees NODE lead region R
	local i
	for i in 1 2 3; do [ "$(node_leader "$i" "$1")" = "$2" ] || { echo False; return; }; done
	echo True
}
# another replica than the region's current leader (seen from node 1)
other_than() { echo $(($1 % 3 + 1)); }
# seen_leader R: region R's leader as node 1 sees it, once it sees one (bounded: 30 s;
# none while an election runs, e.g. right after the balance moved leaders: CI once read
# None here)
seen_leader() {
	local l
	for _ in $(seq 1 300); do
		l=$(node_leader 1 "$1")
		[ "$l" != None ] && { echo "$l"; return; }
		sleep 0.1
	done
	echo None
}

ctld_cluster_up 3
until_true 300 "regions never showed an observed leader" \
	ql regions "all(x['leader'] is not None for x in r['regions'])"
echo "[${SECONDS}s] 3 ctld replicas, 3 nodes; map: $(ql regions "[(x['id'], x['protocol'], x['preferred_leader']) for x in r['regions']]")"

load_start 100 300 35 # about 30 s of steps

# leader balance: node 3 killed, its preferred regions go to nodes 1 and 2; back, it gets
# its share again (five regions with copies over three nodes)
pref_of() { ql regions "sorted(x['preferred_leader'] for x in r['regions'] if len(x['replicas']) > 1).count($1)"; }
no_move_running() { ql moves "all(m['state'] != 'running' for m in r['moves'])"; }
spread_ok() { ql regions "(lambda c: max(c) - min(c) <= 1)([[x['preferred_leader'] for x in r['regions'] if len(x['replicas']) > 1].count(n) for n in (1, 2, 3)])"; }
[ "$(pref_of 3)" -ge 1 ] || fail "node 3 is preferred for no region: $(ql regions "r['regions']")"
cl_kill 3
until_true 300 "node 3's preferred regions did not move away" \
	ql regions "all(x['preferred_leader'] != 3 for x in r['regions'] if len(x['replicas']) > 1)"
# (a balancing move that failed, its target missing heartbeats on a loaded host, is made
# again one interval later)
until_true 600 "no balancing move done: $(ql moves "r['moves']")" \
	ql moves "len([m for m in r['moves'] if m['kind'] == 'balance' and m['state'] == 'done']) >= 1"
until_true 300 "a balancing move did not end" no_move_running
echo "[${SECONDS}s] node 3 killed: its preferred regions moved by ctld's balance ($(ql moves "[(m['region'], m['from'], m['to'], m['state']) for m in r['moves']]"))"
cl_start 3
until_true 600 "node 3 not back up" ql members "r['members'][2]['state'] == 'up'"
until_true 300 "node 3 got no preferred region back" ql regions "3 in [x['preferred_leader'] for x in r['regions'] if len(x['replicas']) > 1]"
# (bounded: a slow host may see a node miss heartbeats, and the balance undo a move)
until_true 600 "preferred leaders not spread: $(ql regions "r['regions']")" spread_ok
until_true 300 "the balance did not settle" no_move_running
until_true 300 "node 3 does not lead what it is preferred for" \
	ql regions "all(x['leader'] == x['preferred_leader'] for x in r['regions'] if len(x['replicas']) > 1)"
echo "[${SECONDS}s] node 3 back: preferred leaders $(ql regions "[x['preferred_leader'] for x in r['regions']]"), each leading"
BAL=$(ql moves "r['total']")

# refusals: clear errors, nothing recorded
LS=$(csock "$(leader)")
out=$(ask "$LS" region transfer-leader 3 2) && fail "a single-copy region's leader moved: $out"
[[ "$out" == *"bad_request"*"has one replica"* ]] || fail "single-copy refusal: $out"
out=$(ask "$LS" region transfer-leader 9 1) && fail "region 9 moved: $out"
[[ "$out" == *"not_found"* ]] || fail "unknown region: $out"
out=$(ask "$LS" call transfer_leader '{"region":0,"node":7}') && fail "node 7 took region 0: $out"
[[ "$out" == *"is not a replica"* ]] || fail "non-replica refusal: $out"
F=$(( $(leader) % 3 + 1 ))
out=$(ask "$(csock "$F")" region transfer-leader 0 1) && fail "a ctld follower took a move: $out"
[[ "$out" == *"not_leader"* ]] || fail "follower refusal: $out"
out=$(ask "$(cl_sock 1)" region transfer-leader 0 2) && fail "a data node took a move: $out"
[[ "$out" == *"sluice-ctld command"*"this node reports to"* ]] || fail "data node refusal: $out"
[ "$(ql moves "r['total']")" = "$BAL" ] || fail "a refused move was recorded"
echo "[${SECONDS}s] refused: a single-copy region, region 9, node 7, a ctld follower, a data node's socket"

# a raft leader move under load: done, every node sees the new leader
L0=$(seen_leader 0)
[ "$L0" != None ] || fail "node 1 sees no leader of region 0 in 30 s"
T0=$(other_than "$L0")
a0=$(cl_acks)
ID=$(move 0 "$T0")
until_true 300 "move $ID (region 0: $L0 -> $T0) did not end done: $(move_state "$ID")" \
	move_is "$ID" done
until_true 100 "not every node sees node $T0 lead region 0" same_leader_everywhere 0 "$T0"
[ "$(ql regions "r['regions'][0]['preferred_leader']")" = "$T0" ] || fail "the map's preferred leader of region 0 is not $T0"
echo "[${SECONDS}s] move $ID: region 0 led by $L0 -> $T0, done in $(ql moves "[m['took_ms'] for m in r['moves'] if m['id'] == $ID][0]") ms"

# a multileader region's home moves
H2=$(seen_leader 2)
[ "$H2" != None ] || fail "node 1 sees no leader of region 2 in 30 s"
T2=$(other_than "$H2")
ID=$(move 2 "$T2")
until_true 300 "move $ID (region 2 home $H2 -> $T2) did not end done: $(move_state "$ID")" \
	move_is "$ID" done
until_true 100 "not every node sees node $T2 as region 2's home" same_leader_everywhere 2 "$T2"
echo "[${SECONDS}s] move $ID: region 2 (multileader) home $H2 -> $T2, done"

# the ctld leader SIGKILLed right after a move was asked: the next leader ends it
L1=$(seen_leader 1)
[ "$L1" != None ] || fail "node 1 sees no leader of region 1 in 30 s"
T1=$(other_than "$L1")
CL=$(leader)
ID=$(move 1 "$T1")
kill -9 "${CPIDS[$CL]}"; wait "${CPIDS[$CL]}" 2>/dev/null || true; CPIDS[$CL]=0
NL=$(leader "$CL")
[ -n "$NL" ] && [ "$NL" != "$CL" ] || fail "no new ctld leader after killing replica $CL"
# the move is in the log if the old leader committed it before it died; else it is lost
# with its proposal (the operator saw no id in `moves`), and asked again
if [ "$(q "$(csock "$NL")" moves "len([m for m in r['moves'] if m['id'] == $ID])")" != 1 ]; then
	echo "[${SECONDS}s] move $ID was not committed before ctld $CL died: asked again"
	ID=$(move 1 "$T1")
fi
until_true 300 "move $ID (region 1: $L1 -> $T1) did not end done after the ctld failover: $(move_state "$ID")" \
	move_is "$ID" done
until_true 100 "not every node sees node $T1 lead region 1" same_leader_everywhere 1 "$T1"
echo "[${SECONDS}s] move $ID: ctld leader $CL killed after it was asked; ctld $NL ended it: region 1 led by $T1"
start_ctld "$CL"

# a move to a node that stops (SIGSTOP, not node 1: it holds the single-copy region every
# batch waits for): ctld marks it down and the move fails, saying why
L0=$(seen_leader 0)
[ "$L0" != None ] || fail "node 1 sees no leader of region 0 in 30 s"
S=$(( L0 == 2 ? 3 : 2 ))
kill -STOP "${CL_PIDS[$S]}"
out=$(ask "$(csock "$(leader)")" region transfer-leader 0 "$S") || true
if [[ "$out" == *'"move"'* ]]; then
	ID=$(move_id "$out")
	until_true 300 "move $ID to stopped node $S did not fail: $(move_state "$ID")" \
		move_is "$ID" failed
	why=$(ql moves "[m['why'] for m in r['moves'] if m['id'] == $ID][0]")
	[[ "$why" == *"node $S went down"* ]] || fail "failed move $ID says: $why"
	echo "[${SECONDS}s] move $ID to stopped node $S: failed, \"$why\""
else
	# ctld saw the node down before the request: refused instead, also with a reason
	[[ "$out" == *"is down"* ]] || fail "move to a stopped node: $out"
	echo "[${SECONDS}s] move to stopped node $S refused: node down"
fi
kill -CONT "${CL_PIDS[$S]}"
until_true 600 "node $S not back up" ql members "r['members'][$S - 1]['state'] == 'up'"

# node 2 drained: every region with copies moves its leader off it (moves of kind drain),
# a move to it is refused; undrained, the balance gives it leaders back
"$CTL" --socket "$(csock "$(leader)")" node drain 2 >/dev/null || fail "node drain 2"
until_true 600 "node 2 still preferred or leading after its drain: $(ql regions "r['regions']")" \
	ql regions "all(x['preferred_leader'] != 2 and x['leader'] != 2 for x in r['regions'] if len(x['replicas']) > 1)"
[ "$(ql members "(r['members'][1]['draining'], r['members'][1]['preferred_regions'])")" = "(True, 0)" ] ||
	fail "members: $(ql members "r['members'][1]")"
out=$(ask "$(csock "$(leader)")" region transfer-leader 0 2) && fail "a move to a draining node: $out"
[[ "$out" == *"draining"* ]] || fail "move to a draining node: $out"
echo "[${SECONDS}s] node 2 drained: leaders $(ql regions "[x['leader'] for x in r['regions']]"), drain moves $(ql moves "[(m['region'], m['to'], m['state']) for m in r['moves'] if m['kind'] == 'drain']")"
"$CTL" --socket "$(csock "$(leader)")" node undrain 2 >/dev/null || fail "node undrain 2"
until_true 600 "node 2 got no leader back after its drain" \
	ql regions "2 in [x['preferred_leader'] for x in r['regions'] if len(x['replicas']) > 1]"
echo "[${SECONDS}s] node 2 undrained: preferred leaders $(ql regions "[x['preferred_leader'] for x in r['regions']]")"

# a node restarted after the moves runs ctld's moved map and keeps it
R=3
[ "$S" = 3 ] && R=2
cl_kill "$R"
cl_start "$R"
grep -q "differs" "$DIR/node$R.log" && fail "node $R refused ctld's moved map"
# (bounded: a balancing move may follow the restart)
kept_is_ctlds() {
	local want got
	want=$(ql regions "' '.join(str(x['preferred_leader']) for x in r['regions'])")
	got=$(awk 'NR > 1 { printf "%s%s", sep, $3; sep = " " }' "$DIR/d$R/regions.map")
	[ "$got" = "$want" ] && echo True || echo False
}
until_true 300 "node $R keeps other preferred leaders than ctld: $(cat "$DIR/d$R/regions.map")" kept_is_ctlds
want=$(ql regions "' '.join(str(x['preferred_leader']) for x in r['regions'])")
echo "[${SECONDS}s] node $R restarted: runs and keeps ctld's map (preferred leaders $want)"

a1=$(cl_acks)
[ "$a1" -lt $((3 * POINTS / BATCH)) ] || echo "note: the producers were done before the last step"
sl_wait_producers
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=0
# a failed batch is one the node refused to acknowledge (it exits 1 then): reported, not
# an error of the moves; anything else (a crash, no result) is
bench_summary "$DIR/bench.json" || { cat "$DIR/bench.err"; fail "sluice-bench exited $rc"; }
cl_caught_up >/dev/null || fail "replicas did not catch up"
ml_caught_up
cl_verify_all
for i in 1 2 3; do
	echo "node $i ctld: $(q "$(cl_sock "$i")" status "{k: r['ctld'][k] for k in ('map_version', 'map_fetches', 'leader_changes', 'map_refused')}")"
done
[ "$(q "$(cl_sock 1)" status "r['ctld']['leader_changes'] >= 3 and r['ctld']['map_refused'] == 0")" = True ] ||
	fail "node 1 did not take the moves: $(q "$(cl_sock 1)" status "r['ctld']")"
"$CTL" --socket "$(csock "$(leader)")" moves
echo "[${SECONDS}s] ctld_moves: PASS ($(cl_acks) batches acknowledged, $a0 before the first operator move, $a1 after the last)"

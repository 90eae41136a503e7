#!/usr/bin/env bash
# move_pause.sh [BUILD] - the write pause each reconfiguration causes (issue 11's figure):
# three sluice-ctld replicas and four nodes on this host (memif fabric; node 4 holds no
# replica at the start: [cluster] initial_nodes = 3), regions 0-3 raft and 4-5 multileader. sluice-bench writes through node 1 for DURATION s (default 75) and
# reports each second's acked points, p99 and max ack latency. After WARM s the phases of
# OPS run one after the other, GAP s apart, each move waited for until ctld says done:
#   leader  every raft region's leader moves to another replica (transfer-leader)
#   home    every multileader region's home moves the same way
#   switch  region 1 switches raft -> multileader, then back to raft (set-protocol)
#   split   region 0 splits at its middle (region split)
#   merge   region 0 merges its right neighbour back (region merge; after split)
#   replica region 2's last replica moves to node 4, then back (region move-replica: the
#           new node catches up as a learner before the seal)
#   mlreplica region 4's (multileader) last replica moves to node 4, then back (the seal
#           at once; the new node joins the next segment: base image, then the streams)
#   core    region 0 moves to worker core 1 of every node, then back to core 0 (move-core)
# Prints the time each move took and the p99/max ack latency and rate of the seconds
# before the moves against the seconds in which each phase's moves ran. Everything it
# starts is stopped by PID and removed on exit.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-90} WARM=${WARM:-10} GAP=${GAP:-4} OPS=${OPS:-leader home switch split merge replica mlreplica core} BATCH=${BATCH:-1000} INFLIGHT=${INFLIGHT:-8}
SLUICED=$B/ctl/sluiced CTLD=$B/ctl/sluice-ctld BENCH=$B/perf/sluice-bench
VERIFY=$SRC/tests/integration/verify_points.py
[ -x "$SLUICED" ] && [ -x "$CTLD" ] && [ -x "$BENCH" ] || { echo "move_pause: build $B first"; exit 1; }
NAME=mvp$$ REGIONS=6 CL_PROTOCOLS=4-5:multileader CL_NODES=4 CTLD_INITIAL_NODES=3
. "$SRC/tests/integration/lib.sh"
DIR=$SL_DIR
. "$SRC/tests/integration/cluster_lib.sh"
# a stayer writes the region's image at a switch on its worker core, which also answers
# the node's heartbeat: on this loaded 2-core host that took up to 1.6 s, past ctld's
# default node timeout (a move then ends failed, "node N went down"): 3 s, as the tests
CTLD_REGIONS=6 CTLD_PROTOCOLS=$CL_PROTOCOLS CTLD_NODE_TIMEOUT_MS=${CTLD_NODE_TIMEOUT_MS:-3000}
. "$SRC/tests/integration/ctld_lib.sh"
BENCH_PID=0
trap '[ "$BENCH_PID" != 0 ] && kill -9 "$BENCH_PID" 2>/dev/null; ctld_stop_all; cl_cleanup' EXIT
fail() { echo "move_pause: $*" >&2; ctld_diag 5 >&2; exit 1; }
CL_ARGS=(--set cluster.ctld="$(ctld_socks)")
now() { date +%s.%N; }

for i in 1 2 3; do start_ctld "$i"; done
until_true 300 "no ctld leader bootstrapped the cluster" \
	q "$(csock 1)" status "r['bootstrapped'] and r['leader'] is not None"
for i in 1 2 3 4; do cl_start "$i"; done
until_true 600 "the nodes did not join" ql members "[m['state'] for m in r['members']] == ['up'] * 4"
cl_wait_leaders 1 0
until_true 300 "no observed leader for every region" ql regions "all(x['leader'] is not None for x in r['regions'])"

T0=$(now)
"$BENCH" --path "/dev/shm/sluice-$NAME-1.ingest" --duration "$DURATION" --batch "$BATCH" \
	--series 10000 --inflight "$INFLIGHT" --json --quiet >"$DIR/bench.json" 2>"$DIR/bench.err" &
BENCH_PID=$!
# await ID: move ID ends done (ctld's word), bounded
await() {
	until_true 600 "move $1 did not end done: $(ql moves "[m for m in r['moves'] if m['id'] == $1]")" \
		ql moves "[m['state'] for m in r['moves'] if m['id'] == $1] == ['done']"
}
# op PHASE ARGS...: one ctld request, its move waited for and recorded under PHASE
op() {
	local phase=$1 out id
	shift
	out=$("$CTL" --socket "$(csock "$(leader)")" --json "$@") || fail "$*: $out"
	id=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['move'])" "$out")
	await "$id"
	echo "$phase $id" >>"$DIR/phases"
}
# lead_moves REGIONS...: each region's leader (home) to the next replica, one after the other
lead_moves() {
	local r from
	for r in "$@"; do
		from=$(cl_regions 1 "rs[$r].get('home', rs[$r]['leader'])")
		op "$PHASE" region transfer-leader "$r" "$((from % 3 + 1))"
	done
}
: >"$DIR/phases"
sleep "$WARM"
for PHASE in $OPS; do
	case $PHASE in
	leader) lead_moves 0 1 2 3 ;;
	home) lead_moves 4 5 ;;
	switch) op switch region set-protocol 1 multileader; op switch region set-protocol 1 raft ;;
	split) op split region split 0 ;;
	merge) op merge region merge 0 ;;
	replica)
		F=$(ql regions "r['regions'][2]['replicas'][-1]")
		op replica region move-replica 2 "$F" 4
		op replica region move-replica 2 4 "$F"
		;;
	mlreplica)
		F=$(ql regions "r['regions'][4]['replicas'][-1]")
		op mlreplica region move-replica 4 "$F" 4
		op mlreplica region move-replica 4 4 "$F"
		;;
	core) op core region move-core 0 1; op core region move-core 0 0 ;;
	*) fail "unknown operation $PHASE (OPS: leader home switch split merge replica mlreplica core)" ;;
	esac
	sleep "$GAP"
done
wait "$BENCH_PID" || true
BENCH_PID=0
# where failed batches come from, per node: points whose proposal had no room after a
# split moved them, forwarded batches given up or forgotten, proposals failed at a seal
for c in reroute_failed fwd_failed proposals_sealed points_rerouted fwd_rerouted route_stale learners_joined ml_joiners_caught_up; do
	echo "node counters $c: $(for i in 1 2 3 4; do printf '%s ' "$(cl_stat "$i" "$c")"; done)"
done >"$DIR/counters"
"$CTL" --socket "$(csock "$(leader)")" --json moves >"$DIR/moves.json"
python3 - "$DIR/bench.json" "$DIR/moves.json" "$T0" "$WARM" "$DIR/phases" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
moves = {m['id']: m for m in json.load(open(sys.argv[2]))['moves']}
t0, warm = float(sys.argv[3]), float(sys.argv[4])
phases = []
for line in open(sys.argv[5]):
    name, mid = line.split()
    if not phases or phases[-1][0] != name:
        phases.append((name, []))
    phases[-1][1].append(moves[int(mid)])
w = r['windows']
def stats(sel):
    if not sel:
        return ('-', '-', '-')
    return ('%.0f' % (sum(x['acked'] for x in sel) / len(sel)),
            '%.1f' % (max(x['p99'] for x in sel) / 1e6), '%.1f' % (max(x['max'] for x in sel) / 1e6))
# window x covers bench seconds (t - 1, t]; a move covers ctld's [start_ms, end_ms]
def during(ms):
    sel = []
    for m in ms:
        s, e = m['start_ms'] / 1e3 - t0, m['end_ms'] / 1e3 - t0
        sel += [x for x in w if x['t'] > s and x['t'] - 1 < e and x not in sel]
    return sel
before = [x for x in w if 2 < x['t'] <= warm] # the first 2 s are start-up
print('sluice-bench through node 1: %d points acked in %.1f s, %d batches failed %s'
      % (r['points_acked'], r['seconds'], r['batches_failed'], r['failed_by_status']))
print()
print('| operation | each move took (ms) | seconds | acked points/s | worst 1-s p99 (ms) | max (ms) |')
print('|---|---|---|---|---|---|')
print('| none (before) | - | %d | %s | %s | %s |' % ((len(before),) + stats(before)))
names = {'leader': 'raft leader moves, regions 0-3', 'home': 'multileader home moves, regions 4-5',
         'switch': 'region 1 raft -> multileader -> raft', 'split': 'split of region 0',
         'merge': 'merge of region 0 and its right neighbour',
         'replica': 'region 2: a replica to node 4 and back (learner first)',
         'mlreplica': 'region 4 (multileader): a replica to node 4 and back (joiner)',
         'core': 'region 0 to core 1 and back (core moves)'}
for name, ms in phases:
    sel = during(ms)
    print('| %s | %s | %d | %s | %s | %s |' % ((names.get(name, name), ', '.join(str(m['took_ms']) for m in ms), len(sel)) + stats(sel)))
EOF
cat "$DIR/counters"

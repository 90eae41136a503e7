# ctld_lib.sh - sourced (after lib.sh) by the scripts that run sluice-ctld: three replicas
# on loopback UDP (ports BASE..BASE+2), data dirs $DIR/cI, and the helpers to ask them.
# Needs CTLD, CTL, DIR and a `fail` function; CTLD_REGIONS, CTLD_PROTOCOLS (the map's
# per-region protocols), CTLD_BALANCE_MS, CTLD_BALANCE_BY (count or rate), CTLD_SPLIT_BYTES
# (automatic splits above this size, after 2 s), CTLD_MERGE_BYTES (automatic merges of
# neighbours below this size together, after 2 s) and CTLD_ARGS (more sluice-ctld
# arguments) shape the cluster.
BASE=$((20000 + $$ % 20000)) # UDP ports of the ctld replicas: BASE..BASE+2
PEERS="1@127.0.0.1:$BASE,2@127.0.0.1:$((BASE + 1)),3@127.0.0.1:$((BASE + 2))"
CPIDS=(0 0 0 0)
CTLD_ARGS=(${CTLD_ARGS[@]+"${CTLD_ARGS[@]}"})
csock() { echo "$DIR/c$1/ctld.sock"; }
ctld_socks() { echo "$(csock 1),$(csock 2),$(csock 3)"; }
ctld_stop_all() {
	for i in 1 2 3; do
		[ "${CPIDS[$i]}" != 0 ] && kill -9 "${CPIDS[$i]}" 2>/dev/null || true
		[ "${CPIDS[$i]}" != 0 ] && wait "${CPIDS[$i]}" 2>/dev/null || true
		CPIDS[$i]=0
	done
}
# ctld_diag LINES: the last LINES of each ctld's and each node's log (for a failure)
ctld_diag() {
	for i in 1 2 3; do echo "-- ctld $i:"; tail -"$1" "$DIR/ctld$i.log" 2>/dev/null || true; done
	for i in $(seq 1 "${CL_NODES:-3}"); do echo "-- node $i:"; tail -"$1" "$DIR/node$i.log" 2>/dev/null || true; done
}
wait_sock() { # wait_sock PATH PID LOG: bounded wait for a daemon's ctl socket
	for _ in $(seq 1 600); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3"; fail "daemon $2 exited"; }
		sleep 0.05
	done
	fail "no ctl socket at $1"
}
start_ctld() {
	local i=$1
	rm -f "$(csock "$i")"
	cat >"$DIR/ctld$i.ini" <<-EOT
	; ctld replica $i
	[ctld]
	id = $i
	peers = "$PEERS"
	data_dir = $DIR/c$i
	node_timeout_ms = ${CTLD_NODE_TIMEOUT_MS:-1500}
	election_timeout_ms = 1000
	balance_interval_ms = ${CTLD_BALANCE_MS:-0}
	${CTLD_LEARNER_TIMEOUT_MS:+learner_timeout_ms = $CTLD_LEARNER_TIMEOUT_MS}

	[cluster]
	nodes = ${CL_NODES:-3}
	${CTLD_INITIAL_NODES:+initial_nodes = $CTLD_INITIAL_NODES}
	regions = ${CTLD_REGIONS:-4}
	replication = 3
	cores = 2
	protocol = raft
	protocols = ${CTLD_PROTOCOLS:-}
	${CTLD_SPLIT_BYTES:+split_bytes = $CTLD_SPLIT_BYTES}
	${CTLD_MERGE_BYTES:+merge_bytes = $CTLD_MERGE_BYTES}
	${CTLD_REGIONS_TARGET:+regions_target = $CTLD_REGIONS_TARGET}
	split_sustain_ms = 2000
	${CTLD_BALANCE_BY:+balance_by = $CTLD_BALANCE_BY}
	EOT
	"$CTLD" --config "$DIR/ctld$i.ini" ${CTLD_ARGS[@]+"${CTLD_ARGS[@]}"} >>"$DIR/ctld$i.log" 2>&1 &
	CPIDS[$i]=$!
	wait_sock "$(csock "$i")" "${CPIDS[$i]}" "$DIR/ctld$i.log"
}
# q SOCKET CMD EXPR: a python expression over r = CMD's result (what sluicectl --json
# prints), printed ("" when the daemon does not answer in 2 s)
q() {
	python3 -c "import json, sys; sys.path.insert(0, sys.argv[1]); from sltest import ctl
r = ctl(sys.argv[2], sys.argv[3], timeout=2.0); print($3)" "$SL_PYLIB" "$1" "$2" 2>/dev/null || true
}
# leader [SKIP]: the id of the ctld leader, a live replica other than SKIP that says it
# leads; waits (bounded: 30 s) through an election, "" if none. The replica that led at
# the last call ($DIR/ctld.leader: most calls run in a subshell) is asked first: each ask
# starts a python3, and most scripts ask for the leader hundreds of times.
leader() {
	local i l hint= order
	for _ in $(seq 1 300); do
		[ -f "$DIR/ctld.leader" ] && read -r hint <"$DIR/ctld.leader"
		order="1 2 3"
		case "$hint" in 1 | 2 | 3) order="$hint ${order/$hint/}" ;; esac
		for i in $order; do
			[ "$i" = "${1:-0}" ] && continue
			l=$(q "$(csock "$i")" status "r['leader'] if r['role'] == 'leader' else ''")
			[ -n "$l" ] && { [ "$l" = "$hint" ] || echo "$l" >"$DIR/ctld.leader"; echo "$l"; return 0; }
		done
		sleep 0.1
	done
	echo ""
}
# ql CMD EXPR: q against the current ctld leader (heartbeat-derived fields live there)
ql() {
	local l
	l=$(leader)
	[ -n "$l" ] && q "$(csock "$l")" "$@"
	return 0
}
# With cluster_lib.sh: the scripts that drive moves through ctld under load (ctld_moves,
# ctld_switch). BENCH_PID (0: none) is killed on exit, stopped nodes continued.
BENCH_PID=0
ctld_cleanup_all() {
	[ "$BENCH_PID" != 0 ] && kill -9 "$BENCH_PID" 2>/dev/null || true
	for i in $(seq 1 "${CL_NODES:-3}"); do [ "${CL_PIDS[$i]}" != 0 ] && kill -CONT "${CL_PIDS[$i]}" 2>/dev/null || true; done
	ctld_stop_all
	cl_cleanup
}
# fail MSG: said, with the logs' tails (CTLD_DIAG_LINES) and the ctld leader's moves
fail() {
	echo "FAIL: $*"
	ctld_diag "${CTLD_DIAG_LINES:-8}"
	"$CTL" --socket "$(csock "$(leader)")" --timeout 1000 moves 2>&1 || true
	exit 1
}
# ask LS ARGS...: sluicectl against ctld socket LS; its output (errors too), status in $?
ask() { local s=$1; shift; "$CTL" --socket "$s" --timeout 2000 --json "$@" 2>&1; }
# ask_leader ARGS...: ask the ctld leader, again (bounded) when leadership moved meanwhile
ask_leader() {
	local out rc i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rc=0
		out=$(ask "$(csock "$(leader)")" "$@") || rc=$?
		[[ "$out" == *not_leader* || "$out" == *"no leader"* ]] || break
		sleep 0.5
	done
	echo "$out"
	return "$rc"
}
# move_id OUT: the move id in a ctld answer
move_id() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['move'])" "$1"; }
move_is() { ql moves "[m['state'] for m in r['moves'] if m['id'] == $1] == ['$2']"; } # ID STATE
# replica moves: reps R (ctld's replicas of region R), count_of (replicas per node), idle
# (no move running)
reps() { ql regions "r['regions'][$1]['replicas']"; }
count_of() { ql members "[m.get('replicas') for m in r['members']]"; }
idle() { ql moves "all(m['state'] != 'running' for m in r['moves'])"; }
# bench_summary FILE: sluice-bench's --json result on node 2, summed up and per second
bench_summary() {
	python3 - "$1" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print('[bench] sluice-bench on node 2: %d points acked, %d batches failed %s, p99 %.1f ms, max %.1f ms'
      % (r['points_acked'], r['batches_failed'], r['failed_by_status'],
         r['ack_latency_ns']['p99'] / 1e6, r['ack_latency_ns']['max'] / 1e6))
print('[bench] per second (acked, p99 ms, max ms):',
      ' '.join('%d:%d/%.0f/%.0f' % (w['t'], w['acked'], w['p99'] / 1e6, w['max'] / 1e6) for w in r['windows']))
PYEOF
}
# ctld_cluster_up N: three ctld replicas, then data nodes 1..N (bounded waits: the map
# bootstrapped, every node a member and up, a leader for every region seen from node 1)
ctld_cluster_up() {
	local i
	for i in 1 2 3; do start_ctld "$i"; done
	until_true 300 "no ctld leader bootstrapped the cluster" \
		q "$(csock 1)" status "r['bootstrapped'] and r['leader'] is not None and r['applied_index'] == r['commit_index']"
	for i in $(seq 1 "$1"); do cl_start "$i"; done
	until_true 600 "members never showed $1 nodes up" \
		ql members "[m['state'] for m in r['members']] == ['up'] * $1"
	cl_wait_leaders 1 0
}
# load_start PACE_MS ASAN_PACE_MS SECONDS: the shm producers (a batch every PACE_MS, or
# ASAN_PACE_MS under the sanitizers: a load that lasts through the test's steps) and
# sluice-bench on node 2 for SECONDS (BENCH_PID); returns once writes are acknowledged
load_start() {
	CL_PROD_ARGS=(--pace-ms "$([ -n "${ASAN_OPTIONS:-}" ] && echo "$2" || echo "$1")")
	cl_producers
	"$BENCH" --path "/dev/shm/sluice-$NAME-2.ingest" --duration "$3" --batch 200 --series 500 \
		--inflight 4 --json --quiet >"$DIR/bench.json" 2>"$DIR/bench.err" &
	BENCH_PID=$!
	cl_wait_acks 10
}
# nodes_route: every node routes the live ranges of ctld's map, nothing else (True/False)
nodes_route() {
	local i want
	want=$(ql regions "[(x['id'], x['hash_lo'], x['hash_hi']) for x in r['regions'] if x.get('merged_into') is None]")
	for i in 1 2 3; do
		[ "$(cl_regions "$i" "[(r['id'], r['hash_lo'], r['hash_hi']) for r in rs if 'merged_into' not in r and not r.get('unborn')]")" = "$want" ] ||
			{ echo False; return; }
	done
	echo True
}
# load_end: waits for the shm producers and sluice-bench to finish (a failed batch is one
# the node refused to acknowledge: reported, not an error; anything else, a crash or no
# result, fails), then for every replica to catch up
load_end() {
	local rc=0
	sl_wait_producers
	wait "$BENCH_PID" || rc=$?
	BENCH_PID=0
	bench_summary "$DIR/bench.json" || { cat "$DIR/bench.err"; fail "sluice-bench exited $rc"; }
	cl_caught_up >/dev/null || fail "replicas did not catch up"
}
# restart_ctlds: the ctld replicas SIGKILLed and started again one by one (their state is
# in their logs), each back in its group before the next
restart_ctlds() {
	local i
	for i in 1 2 3; do
		kill -9 "${CPIDS[$i]}"
		wait "${CPIDS[$i]}" 2>/dev/null || true
		CPIDS[$i]=0
		start_ctld "$i"
		until_true 300 "ctld $i did not rejoin its group" q "$(csock "$i")" status "r['leader'] is not None"
	done
}

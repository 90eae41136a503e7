# cluster_lib.sh - sourced (after lib.sh) by the multi-node scripts: three sluiced nodes on
# one host linked by the fabric over memif (sockets in $SL_DIR/fab), every region a
# 3-replica raft group (CL_NODES=4: a fourth node, which the region map places replicas
# on, or not). Needs SLUICED, VERIFY and NAME; CL_ARGS adds sluiced arguments.
# Each node is stopped by its PID and its shm files removed on exit, also on failure.
# CL_EXEC, when set, is a command prefix for sluiced (e.g. ip netns exec NS: cluster_udp).
CTL=$(dirname "$SLUICED")/sluicectl
REGIONS=${REGIONS:-4}
CL_NODES=${CL_NODES:-3}
CL_PIDS=(0 0 0 0 0 0 0 0 0 0)
CL_ARGS=(${CL_ARGS[@]+"${CL_ARGS[@]}"})
CL_EXEC=(${CL_EXEC[@]+"${CL_EXEC[@]}"})
cl_cleanup() {
	for i in $(seq 1 "$CL_NODES"); do
		if [ "${CL_PIDS[$i]}" != 0 ]; then
			kill -9 "${CL_PIDS[$i]}" 2>/dev/null || true
			wait "${CL_PIDS[$i]}" 2>/dev/null || true
		fi
		rm -f "/dev/shm/sluice-$NAME-$i.ingest" "/dev/shm/sluice-$NAME-$i.stats"
	done
	sl_cleanup
}
trap cl_cleanup EXIT

cl_sock() { echo "$SL_DIR/d$1/sluiced.sock"; }
# cl_start I: node I, bounded wait for its ctl socket; a script may define cl_node_args I
# to give node I arguments of its own (one per line); node CL_REJOIN (when set) starts
# with --rejoin (a node that lost its data dir); WORKERS: its worker count (2)
CL_REJOIN=0
cl_start() {
	local i=$1 extra=()
	declare -F cl_node_args >/dev/null && mapfile -t extra < <(cl_node_args "$i")
	[ "$i" != "$CL_REJOIN" ] || extra+=(--rejoin)
	rm -f "$(cl_sock "$i")"
	${CL_EXEC[@]+"${CL_EXEC[@]}"} "$SLUICED" --data-dir "$SL_DIR/d$i" --name "$NAME-$i" --workers "${WORKERS:-2}" --regions "$REGIONS" \
		--set regions.protocol=raft --set node.id="$i" --set cluster.nodes="$CL_NODES" \
		--set regions.protocols="${CL_PROTOCOLS:-}" \
		--set cluster.fabric_dir="$SL_DIR/fab" --set regions.log_keep_mb=64 \
		${CL_ARGS[@]+"${CL_ARGS[@]}"} ${extra[@]+"${extra[@]}"} >>"$SL_DIR/node$i.log" 2>&1 &
	CL_PIDS[$i]=$!
	for _ in $(seq 1 600); do
		[ -S "$(cl_sock "$i")" ] && return 0
		kill -0 "${CL_PIDS[$i]}" 2>/dev/null || { cat "$SL_DIR/node$i.log"; exit 1; }
		sleep 0.05
	done
	echo "FAIL: node $i did not come up"; tail -20 "$SL_DIR/node$i.log"; exit 1
}
cl_kill() { kill -9 "${CL_PIDS[$1]}"; wait "${CL_PIDS[$1]}" 2>/dev/null || true; CL_PIDS[$1]=0; }
# cl_regions I EXPR: a python expression over rs = node I's regions, printed
cl_regions() {
	python3 -c "import json, sys; sys.path.insert(0, sys.argv[1]); from sltest import ctl
rs = ctl(sys.argv[2], 'regions', timeout=5.0)['regions']; print($2)" "$SL_PYLIB" "$(cl_sock "$1")"
}
# cl_stat I COUNTER: node I's total of a stats counter
cl_stat() {
	python3 -c "import sys; sys.path.insert(0, sys.argv[1]); from sltest import ctl
print(ctl(sys.argv[2], 'stats', timeout=5.0)['totals']['$2'])" "$SL_PYLIB" "$(cl_sock "$1")"
}
# cl_wait_leaders I NOT: bounded, until every replicated region seen from node I has a
# leader other than NOT
cl_wait_leaders() {
	for _ in $(seq 1 200); do
		[ "$(cl_regions "$1" "all(r.get('leader') not in (None, $2) for r in rs if r['protocol'] == 'raft' and 'merged_into' not in r)")" = True ] && return 0
		sleep 0.1
	done
	echo "FAIL: no leader for every region (node $1):"; cl_regions "$1" rs; exit 1
}
# cl_writes_go_on K: with node K down, bounded: the other two nodes see leaders other than
# K for every region, and writes are still acknowledged over the next 2 s
cl_writes_go_on() {
	local before after
	cl_wait_leaders $(($1 % 3 + 1)) "$1"
	cl_wait_leaders $((($1 + 1) % 3 + 1)) "$1"
	before=$(cl_acks)
	sleep 2
	after=$(cl_acks)
	[ "$after" -gt "$before" ] ||
		{ echo "FAIL: no write acknowledged in the 2 s after the new elections (producers: $(cl_prod_acks) of $((POINTS / BATCH)) each)"; exit 1; }
	echo "writes go on with node $1 down: $before -> $after acknowledged batches in 2 s"
}
# cl_producers: one shm producer per node (key prefix p<node>), acks in $SL_DIR/acked<node>.log;
# CL_PROD_ARGS: more arguments for each (--pace-ms MS: a load that lasts)
cl_producers() {
	for p in 1 2 3; do
		"$PRODUCER" --path "/dev/shm/sluice-$NAME-$p.ingest" --log "$SL_DIR/acked$p.log" \
			--points "$POINTS" --series "$SERIES" --batch "$BATCH" --key-prefix "p$p" \
			--timeout 200 ${CL_PROD_ARGS[@]+"${CL_PROD_ARGS[@]}"} >"$SL_DIR/producer$p.log" 2>&1 &
		SL_PROD_PIDS+=($!)
	done
}
# cl_wait_balanced: bounded (30 s), until every replicated region is led by its preferred
# replica (replicas (r + k) mod 3 + 1, preferred slot (r div 3) mod copies), seen from node 1
cl_wait_balanced() {
	local want="[(r['replicas'][(r['id'] // 3) % len(r['replicas'])]) for r in rs if len(r['replicas']) > 1]"
	local got="[r['leader'] for r in rs if len(r['replicas']) > 1]"
	for _ in $(seq 1 300); do
		[ "$(cl_regions 1 "$want")" = "$(cl_regions 1 "$got")" ] && { cl_regions 1 "$got"; return 0; }
		sleep 0.1
	done
	echo "FAIL: leaders $(cl_regions 1 "$got"), preferred $(cl_regions 1 "$want")" >&2
	return 1
}
cl_acks() { cat "$SL_DIR"/acked[123].log 2>/dev/null | wc -l; }
# cl_prod_acks: each producer's acknowledged batches, "a / b / c"
cl_prod_acks() {
	local out=() p
	for p in 1 2 3; do out+=("$(cat "$SL_DIR/acked$p.log" 2>/dev/null | wc -l)"); done
	echo "${out[0]} / ${out[1]} / ${out[2]}"
}
# cl_wait_acks N: bounded (30 s), until the producers have more than N batches acknowledged
cl_wait_acks() {
	for _ in $(seq 1 300); do
		[ "$(cl_acks)" -gt "$1" ] && return 0
		sleep 0.1
	done
	echo "FAIL: not $1 batches acknowledged in 30 s"; exit 1
}
# cl_caught_up: bounded (60 s), until every node applied every raft region replicated on all
# three as far as node 1 committed
cl_caught_up() {
	local c a2 a3 a1
	for _ in $(seq 1 600); do
		c=$(cl_regions 1 "[r['commit_index'] for r in rs if len(r['replicas']) == 3 and r['protocol'] == 'raft']")
		a1=$(cl_regions 1 "[r['applied_index'] for r in rs if len(r['replicas']) == 3 and r['protocol'] == 'raft']")
		a2=$(cl_regions 2 "[r['applied_index'] for r in rs if len(r['replicas']) == 3 and r['protocol'] == 'raft']")
		a3=$(cl_regions 3 "[r['applied_index'] for r in rs if len(r['replicas']) == 3 and r['protocol'] == 'raft']")
		[ "$a1" = "$c" ] && [ "$a2" = "$c" ] && [ "$a3" = "$c" ] && { echo "$c"; return 0; }
		sleep 0.1
	done
	echo "FAIL: replicas did not catch up: committed $c, applied $a1 / $a2 / $a3" >&2
	for i in 1 2 3; do
		echo "node $i:" >&2; tail -5 "$SL_DIR/node$i.log" >&2
		"$CTL" --socket "$(cl_sock "$i")" --json stats | python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print({k: v for k, v in t.items() if k.startswith(('fab', 'fwd', 'cons')) and v})" >&2
	done
	return 1
}
# cl_verify_all: every producer's points, exactly, on every node (a region with no
# replica on node i is read from the next node that has one). Under the sanitizers
# (ASAN_OPTIONS set) on node 3 only, or the nodes CL_VERIFY_ASAN names: reading millions
# of points back through an instrumented node is most of the time such a test takes
# there.
cl_verify_all() {
	local socks nodes k p rc pids
	nodes=$(seq 1 "$CL_NODES")
	[ -n "${ASAN_OPTIONS:-}" ] && nodes=${CL_VERIFY_ASAN:-3}
	for i in $nodes; do
		socks=$(cl_sock "$i")
		for k in $(seq 1 $((CL_NODES - 1))); do socks="$socks,$(cl_sock $(((i + k - 1) % CL_NODES + 1)))"; done
		# the three producers' read-backs of a node at once (each is mostly JSON parsing
		# in python or the node answering: on 2 cores they overlap), reported in order
		pids=()
		for p in 1 2 3; do
			python3 "$VERIFY" --socket "$socks" --points "$POINTS" --series "$SERIES" \
				--batch "$BATCH" --key "p$p,host=h{s:03d} value" --exact >"$SL_DIR/verify$p.out" 2>&1 &
			pids+=($!)
		done
		rc=0
		for p in 1 2 3; do
			wait "${pids[$((p - 1))]}" || rc=1
			sed "s/^/node $i, producer $p: /" "$SL_DIR/verify$p.out"
		done
		[ "$rc" -eq 0 ] || exit 1
	done
}
# ml_caught_up: bounded (60 s), until the three nodes applied the same per-origin
# positions in every region (and two looks 0.5 s apart agree)
ml_vec() {
	local i
	for i in 1 2 3; do
		cl_regions "$i" "[[(o['node'], o['applied']) for o in r['origins']] for r in rs if r['protocol'] == 'multileader']"
	done | sort -u | wc -l
}
ml_caught_up() {
	for _ in $(seq 1 120); do
		if [ "$(ml_vec)" = 1 ]; then
			sleep 0.5
			[ "$(ml_vec)" = 1 ] && return 0
		fi
		sleep 0.5
	done
	echo "FAIL: the replicas did not converge on their positions:"
	for i in 1 2 3; do echo "node $i: $(cl_regions "$i" "[r['origins'] for r in rs]")"; done
	exit 1
}

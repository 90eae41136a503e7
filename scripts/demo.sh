#!/usr/bin/env bash
# demo.sh - the main job on any machine: build, then a three-node cluster on this host:
# sluice-ctld (the control plane, one replica on loopback) and three sluiced nodes linked
# by the fabric over memif (no NIC is touched; --no-huge when the host has no hugepages).
# Its six regions are raft groups with a replica on every node (docs/cluster.md shows
# single-copy regions next to them: a region with one copy stops while its node is down).
# sluice-bench loads node 1 through its shm ring for about 15 s while per-node and
# per-core rates show live; midway node 3 is SIGKILLed and restarted, and the effect shows
# in `sluicectl regions` (node 1's view and ctld's). Then members, placement, a query, and
# a clean stop of everything. What it creates (temp dir, memif sockets,
# /dev/shm/sluice-demo$$-*) is removed on exit. The single-node demo of earlier releases:
# scripts/demo_node.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
B=build
DIR=$(mktemp -d /tmp/sluice-demo.XXXXXX)
NAME=demo$$
PIDS=() # ctld, node 1, node 2, node 3
CTLD_PORT=$((21000 + $$ % 20000))
cleanup() {
	for p in "${PIDS[@]}"; do
		[ "$p" != 0 ] && kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		[ "$p" != 0 ] && wait "$p" 2>/dev/null || true
	done
	rm -rf "$DIR" /dev/shm/sluice-"$NAME"-*
}
trap cleanup EXIT
ctl() { "$B/ctl/sluicectl" --timeout 3000 --socket "$@"; }
nsock() { echo "$DIR/d$1/sluiced.sock"; }
CSOCK=$DIR/ctld/ctld.sock
wait_sock() { # wait_sock PATH WHAT
	for _ in $(seq 1 600); do [ -S "$1" ] && return 0; sleep 0.05; done
	echo "$2 did not start"; tail -20 "$DIR"/*.log; exit 1
}
start_node() {
	local i=$1
	rm -f "$(nsock "$i")"
	"$B/ctl/sluiced" --data-dir "$DIR/d$i" --name "$NAME-$i" --workers 1 --regions 6 \
		--set node.id="$i" --set cluster.nodes=3 --set cluster.fabric_dir="$DIR/fabric" \
		--set regions.protocol=raft \
		--set regions.log_keep_mb=64 --set cluster.ctld="$CSOCK" >>"$DIR/node$i.log" 2>&1 &
	PIDS[$i]=$!
	wait_sock "$(nsock "$i")" "node $i"
}

echo "== sluice-ctld: the control plane (one replica, metadata in a raft log on disk)"
cat >"$DIR/ctld.ini" <<INI
[ctld]
id = 1
peers = "1@127.0.0.1:$CTLD_PORT"
data_dir = $DIR/ctld
[cluster]
nodes = 3
regions = 6
replication = 3
protocol = raft
INI
"$B/ctl/sluice-ctld" --config "$DIR/ctld.ini" >>"$DIR/ctld.log" 2>&1 &
PIDS[0]=$!
wait_sock "$CSOCK" sluice-ctld
echo "== three sluiced nodes, linked by memif (data in $DIR)"
for i in 1 2 3; do start_node "$i"; done
for _ in $(seq 1 100); do # every replicated region has a leader (bounded: 10 s)
	ctl "$(nsock 1)" --json regions | python3 -c "import json,sys; sys.exit(0 if all(r['leader'] for r in json.load(sys.stdin)['regions']) else 1)" && break
	sleep 0.1
done
ctl "$(nsock 1)" regions
echo "== sluice-bench: 15 s through node 1's shm ring (batches of regions led elsewhere are forwarded)"
"$B/perf/sluice-bench" --path "/dev/shm/sluice-$NAME-1.ingest" --duration 15 --batch 1000 \
	--series 1000 --quiet >"$DIR/bench.out" 2>&1 &
BENCH=$!
echo "== live: points stored per second on each node and core"
python3 perf/cluster_top.py "$(nsock 1)" "$(nsock 2)" "$(nsock 3)" --count 4
echo "== SIGKILL node 3"
kill -9 "${PIDS[3]}"; wait "${PIDS[3]}" 2>/dev/null || true; PIDS[3]=0
python3 perf/cluster_top.py "$(nsock 1)" "$(nsock 2)" "$(nsock 3)" --count 3
echo "== node 1's view with node 3 down: new leaders where node 3 led"
ctl "$(nsock 1)" regions
echo "== ctld's view"
ctl "$CSOCK" members
echo "== restart node 3 from its data dir: it replays its WAL and catches up"
start_node 3
python3 perf/cluster_top.py "$(nsock 1)" "$(nsock 2)" "$(nsock 3)" --count 3
wait "$BENCH" || true
grep -v "^rte_pmd_memif\|^TELEMETRY" "$DIR/bench.out"
sleep 1
echo "== after the load"
ctl "$(nsock 3)" regions
ctl "$CSOCK" regions
ctl "$CSOCK" placement
echo "== sluicectl query 'bench,host=h000007 value' --limit 5 (from whichever node holds it)"
for i in 1 2 3; do ctl "$(nsock "$i")" query 'bench,host=h000007 value' --limit 5 2>/dev/null && break; done
echo "== stopping the nodes and ctld (SIGTERM: drain, WAL sync, exit)"
for i in 3 2 1 0; do
	kill -TERM "${PIDS[$i]}"; wait "${PIDS[$i]}" 2>/dev/null || true; PIDS[$i]=0
done
echo "== demo done"

#!/usr/bin/env bash
# cluster_bench.sh [BUILD] - issue 9's replication benchmark on one host: acknowledged
# points/s and ack latency (p50/p99/p999) through the shm ring of one node, for
#   RF=1  one node, standalone regions (a single copy)
#   RF=3  three nodes linked by the fabric over memif, raft regions (a majority durable);
#         the bench writes through node 1, which forwards batches of regions led elsewhere
#   RF=3  multileader regions (every replica takes writes; node 1 forwards batches of
#         regions whose home is elsewhere), acked on 1 and on 2 replicas (ML_ACKS="1 2";
#         ML_ACKS= leaves these rows out)
# with 1 and 2 worker cores per node (WORKERS), DURATION seconds each (default 10), 1000
# series, 1000-point batches, REGIONS regions (default 8). Data dirs under DATA_PARENT
# (/var/tmp: on the disk). Prints a Markdown table; everything it starts is stopped by PID
# and removed on exit. The last column is the CPU time all nodes used per million
# acknowledged points (user + system, from /proc): on a host with fewer CPUs than the
# nodes' busy threads it shows how much of the gap between the two is work the host has
# to share, rather than waiting.
set -euo pipefail
B=${1:-build}
DURATION=${DURATION:-10} WORKERS=${WORKERS:-"1 2"} REGIONS=${REGIONS:-8} ML_ACKS=${ML_ACKS-"1 2"}
DATA_PARENT=${DATA_PARENT:-/var/tmp}
[ -x "$B/ctl/sluiced" ] && [ -x "$B/perf/sluice-bench" ] || { echo "cluster_bench: build $B first"; exit 1; }
T=$(mktemp -d "$DATA_PARENT/sluice-cbench.XXXXXX")
NAME=cb$$
PIDS=()
stop_all() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
	rm -f /dev/shm/sluice-"$NAME"-*
}
trap 'stop_all; rm -rf "$T"' EXIT INT TERM

# start NODES WORKERS [PROTO [ACKS]]: nodes 1..NODES (standalone when 1, else PROTO:
# raft by default), fresh data dirs
start() {
	local nodes=$1 w=$2 proto=${3:-raft} acks=${4:-1}
	[ "$nodes" -eq 1 ] && proto=standalone
	rm -rf "$T"/d* "$T/fab"
	for i in $(seq 1 "$nodes"); do
		"$B/ctl/sluiced" --data-dir "$T/d$i" --name "$NAME-$i" --workers "$w" \
			--regions "$REGIONS" --set regions.protocol=$proto --set node.id="$i" \
			--set regions.multileader_ack_copies="$acks" \
			--set cluster.nodes="$nodes" --set cluster.fabric_dir="$T/fab" \
			--set regions.log_keep_mb=64 >>"$T/node$i.log" 2>&1 &
		PIDS+=($!)
	done
	for i in $(seq 1 "$nodes"); do
		for _ in $(seq 1 600); do
			[ -S "$T/d$i/sluiced.sock" ] && break
			sleep 0.05
		done
		[ -S "$T/d$i/sluiced.sock" ] || { echo "node $i did not start"; tail "$T/node$i.log"; exit 1; }
	done
	# raft: every region has a leader before the load starts (bounded: 20 s); multileader:
	# the links are up (every region's home is its preferred replica, seen from node 1)
	[ "$nodes" -eq 1 ] && return 0
	if [ "$proto" = multileader ]; then
		sleep 2
		return 0
	fi
	for _ in $(seq 1 200); do
		"$B/ctl/sluicectl" --socket "$T/d1/sluiced.sock" --json regions | python3 -c \
			"import json,sys; sys.exit(0 if all(r.get('leader') for r in json.load(sys.stdin)['regions']) else 1)" &&
			return 0
		sleep 0.1
	done
	echo "no leader for every region"; exit 1
}

# cpu_ticks: user + system clock ticks of every node process so far
cpu_ticks() {
	local t=0 p
	for p in "${PIDS[@]}"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)
echo "| copies | worker cores per node | acknowledged points/s | p50 | p99 | p999 | forwarded batches | node CPU s per M points |"
echo "|---|---|---|---|---|---|---|---|"
for w in $WORKERS; do
	rows="1:raft 3:raft"
	for k in $ML_ACKS; do rows="$rows 3:multileader:$k"; done
	for row in $rows; do
		IFS=: read -r nodes proto acks <<<"$row"
		start "$nodes" "$w" "$proto" "${acks:-1}"
		label="RF=3 raft"
		[ "$nodes" -eq 1 ] && label="RF=1 standalone"
		[ "$proto" = multileader ] && label="RF=3 multileader, acked on $acks"
		t0=$(cpu_ticks)
		out=$("$B/perf/sluice-bench" --path "/dev/shm/sluice-$NAME-1.ingest" --duration "$DURATION" \
			--series 1000 --batch 1000 --quiet --json)
		cpu=$(( $(cpu_ticks) - t0 ))
		fwd=$("$B/ctl/sluicectl" --socket "$T/d1/sluiced.sock" --json stats |
			python3 -c "import json,sys; print(json.load(sys.stdin)['totals'].get('fwd_answers', 0))")
		echo "$out" | python3 -c "
import json,sys
r=json.load(sys.stdin)
l=r['ack_latency_ns']
ms=lambda k: '%.1f ms' % (l[k] / 1e6)
pts=r['points_per_s'] * r['seconds']
print('| %s | $w | %.2f M | %s | %s | %s | $fwd | %.2f |' % ('$label',
      r['points_per_s'] / 1e6, ms('p50'), ms('p99'), ms('p999'), $cpu / $HZ / (pts / 1e6)))"
		stop_all
	done
done

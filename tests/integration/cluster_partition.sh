#!/usr/bin/env bash
# cluster_partition.sh SLUICED PRODUCER VERIFY - fabric partitions under load on a three-node
# raft cluster (cluster_lib.sh), made with the tests-only ctl debug_fabric: the link
# between the leader of region 0 and another node cut both ways for 2 s, then healed; then
# the leader's outgoing frames to one node cut (one way) for 2 s, then healed; then 5 %
# frame loss and 20 ms delay on every link for 3 s. A majority stays connected in each,
# so writes must go on during each fault; at the end every node holds every point
# exactly, and the faults did drop and delay frames (counted).
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
# The load must last through the three faults, however fast the build: each producer
# pauses 20 ms after each batch, so its 800 batches take at least 16 s (the faults end
# about 10 s after the start). Unpaced, an ASan build once took all of it in 4 s, and a
# check that "writes go on" during the second fault then saw only the producer it cut off.
POINTS=${POINTS:-400000} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=cpart$$
CL_ARGS=(--set debug.fault_injection=true)
CL_PROD_ARGS=(--pace-ms 20)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

# fault NODE PEER DIR DROP [DELAY]: node NODE's link to PEER
fault() {
	"$CTL" --socket "$(cl_sock "$1")" call debug_fabric \
		"{\"peer\":$2,\"dir\":\"$3\",\"drop_pct\":$4,\"delay_ms\":${5:-0}}" >/dev/null
}
# progress WHAT [SECONDS]: writes were acknowledged during the SECONDS (2) the fault lasted.
# Under loss every batch waits for retries (the forwarders' retry timeout follows the
# answer time: 50 ms and up, node.c), and the CI host runs the simulator beside: once
# no write was acknowledged within 2 s of loss, so that fault lasts 3 s
progress() {
	local before after
	before=$(cl_acks)
	sleep "${2:-2}"
	after=$(cl_acks)
	echo "$1: $before -> $after acknowledged batches in ${2:-2} s (producers: $(cl_prod_acks))"
	[ "$after" -gt "$before" ] && return 0
	echo "FAIL: no write acknowledged during: $1"
	for i in 1 2 3; do
		echo "producer $i: $(wc -l <"$SL_DIR/acked$i.log") batches acknowledged; $(tail -1 "$SL_DIR/producer$i.log")"
		echo "node $i regions: $(cl_regions "$i" "[(r['id'], r['leader'], r['commit_index'], r['applied_index']) for r in rs]")"
		"$CTL" --socket "$(cl_sock "$i")" --json stats | python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print('node $i:', {k: v for k, v in t.items() if v and any(w in k for w in ('fwd', 'forward', 'fab', 'stall', 'refus', 'drop', 'transfer', 'snapshot'))})"
		tail -5 "$SL_DIR/node$i.log"
	done
	exit 1
}

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
cl_producers
cl_wait_acks 60
L=$(cl_regions 1 "rs[0]['leader']")
O=$((L % 3 + 1)) T=$(((L + 1) % 3 + 1))
fault "$L" "$O" both 100
fault "$O" "$L" both 100
progress "link $L-$O cut both ways"
fault "$L" "$O" both 0
fault "$O" "$L" both 0
L=$(cl_regions "$T" "rs[0]['leader']")
O=$((L % 3 + 1))
fault "$L" "$O" out 100
progress "node $L -> node $O cut one way"
fault "$L" "$O" out 0
for i in 1 2 3; do
	for j in 1 2 3; do [ "$i" != "$j" ] && fault "$i" "$j" both 5 20; done
done
progress "5 % loss, 20 ms delay on every link" 3
for i in 1 2 3; do
	for j in 1 2 3; do [ "$i" != "$j" ] && fault "$i" "$j" both 0 0; done
done
for p in 1 2 3; do # the load outlasted the faults
	[ "$(wc -l <"$SL_DIR/acked$p.log")" -lt $((POINTS / BATCH)) ] ||
		{ echo "FAIL: producer $p was done before the faults ended: lengthen the load"; exit 1; }
done
sl_wait_producers
c=$(cl_caught_up)
cl_verify_all
dropped=$(($(cl_stat 1 fab_fault_dropped) + $(cl_stat 2 fab_fault_dropped) + $(cl_stat 3 fab_fault_dropped)))
delayed=$(($(cl_stat 1 fab_fault_delayed) + $(cl_stat 2 fab_fault_delayed) + $(cl_stat 3 fab_fault_delayed)))
[ "$dropped" -gt 0 ] && [ "$delayed" -gt 0 ] ||
	{ echo "FAIL: the faults dropped $dropped and delayed $delayed frames"; exit 1; }
echo "cluster_partition: snapshots installed: $(cl_stat 1 cons_snapshots_installed) / $(cl_stat 2 cons_snapshots_installed) / $(cl_stat 3 cons_snapshots_installed), leader transfers: $(cl_stat 1 leader_transfers) / $(cl_stat 2 leader_transfers) / $(cl_stat 3 leader_transfers)"
echo "cluster_partition: $dropped frames dropped, $delayed delayed by the faults; replicas at $c"
echo "cluster_partition: PASS"

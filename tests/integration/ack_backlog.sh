#!/usr/bin/env bash
# ack_backlog.sh SLUICED SLUICECTL PRODUCER VERIFY - acks that back up between cores never
# overflow. Two workers, 128 regions, one proposal per point (ingest.batch_points = 1): each
# point a core applies for a batch of the other core is an ack of its own. The receiving
# core is held (debug_hold_core) while the other applies the ~130k points it was handed, so
# their acks find the ring full and wait in that core's backlog. Before acks of one batch
# were merged there, a backlog of 64k acks hit an assertion and aborted the node. Then every
# batch is acknowledged, every point is applied, and two producers' points read back exactly.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 VERIFY=$4
PRODUCERS=16 POINTS=65536 SERIES=256 BATCH=64
NAME=ackbl$$
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 --regions 128 \
	--set ingest.shm_slots=$PRODUCERS --set ingest.shm_ring_entries=$POINTS --set ingest.batch_points=1 \
	--set debug.fault_injection=true
# wait_until SECONDS CONDITION: poll (bounded) until CONDITION holds; false if it never did
wait_until() {
	for _ in $(seq 1 $(($1 * 10))); do
		kill -0 "$NODE_PID" 2>/dev/null || {
			echo "FAIL: sluiced died"; tail -5 "$SL_DIR/node.log"; exit 1; }
		eval "$2" && return 0
		sleep 0.1
	done
	return 1
}

# Slots 0, 2, 4... are read by core 0. Hold core 1 first, so that core 0 takes in all its
# slots' batches and hands core 1 its share without any ack coming back yet.
sl_hold 1 true
sl_start_producers "$PRODUCER" ab
# stable N EXPR: wait (bounded: N samples) until the stat EXPR stops moving for 3 s; the
# node must stay up meanwhile
stable() {
	local prev=-1 now
	for _ in $(seq 1 "$1"); do
		kill -0 "$NODE_PID" 2>/dev/null || {
			echo "FAIL: sluiced died while acks backed up"; tail -5 "$SL_DIR/node.log"; exit 1; }
		now=$(sl_stat "$2")
		[ "$now" = "$prev" ] && return 0
		prev=$now
		sleep 3
	done
}
# core 0 takes in what it can hand over (the cross-core message pool bounds it)
stable 20 'r["cores"][0]["cross_core_out"]'
echo "core 0 handed $(sl_stat 'r["cores"][0]["cross_core_out"]') points to the held core 1"
# now hold core 0 and let core 1 apply its share: one proposal, so one ack, per point
# (ingest.batch_points = 1); the acks to core 0 find the ring full and wait in the backlog
handed=$(sl_stat 'r["cores"][0]["cross_core_out"]')
sl_hold 0 true
sl_hold 1 false
# core 1 takes in all it was handed, then applies it: wait (bounded) for both
wait_until 120 '[ "$(sl_stat "r[\"cores\"][1][\"cross_core_in\"]")" -ge "$handed" ]' || {
	echo "FAIL: core 1 took in $(sl_stat 'r["cores"][1]["cross_core_in"]') of $handed points"; exit 1; }
stable 30 'r["cores"][1]["points_applied"]'
merged=$(sl_stat 'r["totals"]["acks_merged"]')
echo "core 1 applied $(sl_stat 'r["cores"][1]["points_applied"]') points while core 0 was held; ring_full $(sl_stat 'r["totals"]["ring_full"]')," \
	"acks merged in the backlog $merged"
sl_hold 0 false
sl_wait_producers
total=0
for p in $(seq 1 "$PRODUCERS"); do total=$((total + $(wc -l <"$SL_DIR/acked$p.log"))); done
[ "$total" -eq $((PRODUCERS * POINTS / BATCH)) ] || {
	echo "FAIL: $total of $((PRODUCERS * POINTS / BATCH)) batches acknowledged"; exit 1; }
[ "$merged" -gt 0 ] || { echo "FAIL: no ack waited in the backlog: the scenario did not happen"; exit 1; }
applied=$(sl_stat 'r["totals"]["points_applied"]')
[ "$applied" -eq $((PRODUCERS * POINTS)) ] || { echo "FAIL: $applied points applied"; exit 1; }
# two producers' points read back exactly (one of each core's slots)
for p in 1 2; do
	python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
		--key "ab$p,host=h{s:03d} value" --acked "$SL_DIR/acked$p.log"
done
sl_stop_node
echo "ack_backlog: PASS"

#!/usr/bin/env bash
# route_backpressure.sh SLUICED SLUICECTL PRODUCER VERIFY - a core whose routing is full
# keeps running its rounds. Core 1 is held (debug_hold_core) while producers feed both
# cores' shm slots: core 0 hands core 1 its points until the cross-core message pool runs
# out, then its ingress answers "not taken" (route_no_room) and keeps the records for the
# next round. Core 0 must still answer ctl requests and publish counters meanwhile (it
# once waited inside its ingress loop for ring room and did neither). Released, every
# batch is acknowledged and two producers' points read back exactly.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 VERIFY=$4
PRODUCERS=32 POINTS=65536 SERIES=256 BATCH=128
# long keys (the producer's longest, ~120 bytes routed per point) and a pool of 64
# messages ([debug] xmsg_pool): they hold at most ~40k points, far fewer than core 0 has
# for core 1 before the producers' windows stop them (with the default 1024 messages, how
# full each message gets depends on the machine's speed, and a fast one filled them so
# well that the producers stalled first: CI saw no route_no_room once)
LONG=$(printf 'k%.0s' $(seq 1 58))
NAME=rbp$$
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 --regions 16 \
	--set ingest.shm_slots=$PRODUCERS --set ingest.shm_ring_entries=65536 \
	--set debug.fault_injection=true --set debug.xmsg_pool=64
sl_hold 1 true
sl_start_producers "$PRODUCER" rb "$LONG"
# core 0 hands over what the message pool allows, then its routing says "no room": wait
# (bounded: 60 s) for that (waiting instead until the handed count stopped moving took
# 13 s to 60 s: it creeps while 32 producers start)
for _ in $(seq 1 300); do
	kill -0 "$NODE_PID" 2>/dev/null || { echo "FAIL: sluiced died"; tail -5 "$SL_DIR/node.log"; exit 1; }
	[ "$(sl_stat 'r["cores"][0]["route_no_room"]')" -gt 0 ] && break
	sleep 0.2
done
now=$(sl_stat 'r["cores"][0]["cross_core_out"]')
echo "core 0 handed $now points to the held core 1"
# core 0 still runs rounds: it answers a request that every worker serves ...
timeout 30 "$CTL" --socket "$SL_SOCK" regions >"$SL_DIR/regions" 2>&1 || {
	echo "FAIL: core 0 did not answer a ctl request while its routing was full"
	cat "$SL_DIR/regions"; exit 1; }
# ... and publishes its counters: rounds go on, and routing said "no room"
p1=$(sl_stat 'r["cores"][0]["polls_busy"] + r["cores"][0]["polls_idle"]')
sleep 1
p2=$(sl_stat 'r["cores"][0]["polls_busy"] + r["cores"][0]["polls_idle"]')
[ "$p2" -gt "$p1" ] || { echo "FAIL: core 0 ran no round in 1 s ($p1 -> $p2)"; exit 1; }
nr=$(sl_stat 'r["cores"][0]["route_no_room"]')
[ "$nr" -gt 0 ] || { echo "FAIL: routing never ran out of room: the scenario did not happen"; exit 1; }
echo "core 0: $((p2 - p1)) rounds in 1 s while routing was full, route_no_room $nr"
sl_hold 1 false
sl_wait_producers
total=0
for p in $(seq 1 "$PRODUCERS"); do total=$((total + $(wc -l <"$SL_DIR/acked$p.log"))); done
[ "$total" -eq $((PRODUCERS * POINTS / BATCH)) ] || {
	echo "FAIL: $total of $((PRODUCERS * POINTS / BATCH)) batches acknowledged"; exit 1; }
applied=$(sl_stat 'r["totals"]["points_applied"]')
[ "$applied" -eq $((PRODUCERS * POINTS)) ] || { echo "FAIL: $applied points applied"; exit 1; }
for p in 1 2; do
	python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
		--key "rb$p$LONG,host=h{s:03d} value" --acked "$SL_DIR/acked$p.log"
done
sl_stop_node
echo "route_backpressure: PASS"

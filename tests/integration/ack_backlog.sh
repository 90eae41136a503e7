#!/usr/bin/env bash
# ack_backlog.sh SLUICED SLUICECTL PRODUCER VERIFY - acks that back up between cores never
# overflow. Two workers, 32 regions: every batch of 32 points is split over many of the
# other core's regions, so each batch comes back as many acks. The receiving core is held
# (debug_hold_core) while the other core applies a whole ring's worth of batches, so their
# acks wait in that core's backlog; the backlog must hold them (acks of one batch merge),
# not abort the node. Then every batch is acknowledged and every point reads back once.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 VERIFY=$4
POINTS=400000 SERIES=4096 BATCH=32
NAME=ackbl$$
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 --regions 32 \
	--set ingest.shm_slots=2 --set ingest.shm_ring_entries=524288 --set debug.fault_injection=true
# stat EXPR: a python expression over r = the `stats` result
stat() {
	"$CTL" --socket "$SL_SOCK" --json stats |
		python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"
}
hold() { "$CTL" --socket "$SL_SOCK" call debug_hold_core "{\"core\":$1,\"hold\":$2}" >/dev/null; }
# wait_until SECONDS CONDITION: poll (bounded) until CONDITION holds; false if it never did
wait_until() {
	for _ in $(seq 1 $(($1 * 10))); do
		eval "$2" && return 0
		sleep 0.1
	done
	return 1
}
acked() { if [ -f "$SL_DIR/acked.log" ]; then wc -l <"$SL_DIR/acked.log"; else echo 0; fi; }

# The producer's slot (0) is read by core 0. Hold core 1 first, so that core 0 takes in
# every batch and hands core 1 its share without any ack coming back yet.
hold 1 true
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$SL_DIR/acked.log" --points "$POINTS" \
	--series "$SERIES" --batch "$BATCH" --timeout 120 >"$SL_DIR/producer.log" 2>&1 &
PROD_PID=$!
BATCHES=$((POINTS / BATCH))
wait_until 60 '[ "$(stat "r[\"cores\"][0][\"batches_in\"]")" -ge "$BATCHES" ]' || {
	echo "FAIL: core 0 took in $(stat 'r["cores"][0]["batches_in"]') of $BATCHES batches"
	exit 1
}
# now hold core 0 and let core 1 apply its share: its acks to core 0 find the ring full
hold 0 true
hold 1 false
# wait (bounded) until core 1 has applied what it was handed: its count stops moving
prev=-1
for _ in $(seq 1 60); do
	now=$(stat 'r["cores"][1]["points_applied"]')
	[ "$now" = "$prev" ] && break
	prev=$now
	sleep 1
done
kill -0 "$NODE_PID" || { echo "FAIL: sluiced died while acks backed up"; cat "$SL_DIR/node.log"; exit 1; }
merged=$(stat 'r["totals"]["acks_merged"]')
full=$(stat 'r["totals"]["ring_full"]')
echo "core 1 applied $(stat 'r["cores"][1]["points_applied"]') points while core 0 was held;" \
	"ring_full $full, acks merged in the backlog $merged"
hold 0 false
wait "$PROD_PID" || { PROD_PID=; echo "FAIL: producer"; cat "$SL_DIR/producer.log"; exit 1; }
PROD_PID=
[ "$(acked)" -eq "$BATCHES" ] || { echo "FAIL: $(acked) of $BATCHES batches acknowledged"; exit 1; }
[ "$merged" -gt 0 ] || { echo "FAIL: no ack waited in the backlog: the scenario did not happen"; exit 1; }
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" --exact
sl_stop_node
echo "ack_backlog: PASS"

#!/usr/bin/env bash
# wal_gate.sh SLUICED SLUICECTL PRODUCER VERIFY - the driver stage never waits for the WAL:
# with the smallest WAL buffer ([wal] buffer_kb = 129: one worst-case consensus ready), a
# region's ready often finds too little room while a flush is in flight and waits for the
# next round (wal_gate_waits) instead of sleeping inside the round. No append is refused
# after the gate (wal_gate_misses, wal_errors stay 0), every batch is acknowledged and
# reads back.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 VERIFY=$4
PRODUCERS=4 POINTS=65536 SERIES=256 BATCH=512
NAME=walgate$$
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 1 \
	--set wal.buffer_kb=129 --set ingest.shm_slots=$PRODUCERS
sl_start_producers "$PRODUCER" wg
sl_wait_producers
echo "$(sl_stat '{k: r["totals"][k] for k in ("wal_gate_waits", "wal_gate_misses", "wal_errors", "wal_fsyncs", "points_applied")}')"
[ "$(sl_stat 'r["totals"]["wal_gate_waits"]')" -gt 0 ] || {
	echo "FAIL: no ready waited for WAL room: the scenario did not happen"; exit 1; }
[ "$(sl_stat 'r["totals"]["wal_gate_misses"] + r["totals"]["wal_errors"]')" -eq 0 ] || {
	echo "FAIL: the WAL refused an append after the gate"; tail -5 "$SL_DIR/node.log"; exit 1; }
[ "$(sl_stat 'r["totals"]["points_applied"]')" -eq $((PRODUCERS * POINTS)) ] || {
	echo "FAIL: $(sl_stat 'r["totals"]["points_applied"]') points applied"; exit 1; }
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key "wg1,host=h{s:03d} value" --acked "$SL_DIR/acked1.log"
sl_stop_node
echo "wal_gate: PASS"

#!/usr/bin/env bash
# wal_fault.sh SLUICED SLUICECTL PRODUCER VERIFY - a disk error on the node's WAL (an
# fdatasync or a write reported failed although it ran) while a producer writes through
# the shm ring: no batch after the failure is acknowledged, the node reports the failure
# and counts it, and after a restart every batch acknowledged before it reads back exactly.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 VERIFY=$4
POINTS=1000000 SERIES=50 BATCH=500
NAME=wfault$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR SOCK=$SL_SOCK
start_node() {
	sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 1 --regions 4 "$@"
}

for fault in "fsync EIO" "write ENOSPC"; do
	set -- $fault
	op=$1 err=$2
	rm -rf "$DIR/data" "$DIR/acked.log"
	start_node --set debug.fault_injection=true
	"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked.log" --points "$POINTS" \
		--series "$SERIES" --batch "$BATCH" --timeout 60 --stop-on-nack >"$DIR/producer.log" 2>&1 &
	PROD_PID=$!
	for _ in $(seq 1 1000); do
		[ "$(wc -l <"$DIR/acked.log" 2>/dev/null || echo 0)" -ge 100 ] && break
		sleep 0.01
	done
	"$CTL" --socket "$SOCK" call debug_wal_fault "{\"op\":\"$op\",\"errno\":\"$err\"}" >/dev/null
	rc=0
	wait "$PROD_PID" || rc=$?
	PROD_PID=
	if [ "$rc" -ne 3 ]; then
		echo "FAIL ($op $err): producer should stop at a nack, exit $rc"; cat "$DIR/producer.log"; exit 1
	fi
	acked=$(wc -l <"$DIR/acked.log")
	state=$("$CTL" --socket "$SOCK" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
	errors=$("$CTL" --socket "$SOCK" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["wal_errors"])')
	echo "$op $err: producer stopped at a nack after $acked acknowledged batches; node state '$state', wal_errors $errors"
	case "$state" in failed*) ;; *) echo "FAIL: node should report the WAL failure"; exit 1 ;; esac
	[ "$errors" -ge 1 ] || { echo "FAIL: wal_errors not counted"; exit 1; }
	# nothing is acknowledged after the failure: fresh batches are refused
	rc=0
	"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/after.log" --points 1000 \
		--series "$SERIES" --batch 100 --timeout 20 --stop-on-nack >"$DIR/after-producer.log" 2>&1 || rc=$?
	if [ "$rc" -ne 3 ] || [ -s "$DIR/after.log" ]; then
		echo "FAIL: a batch written after the WAL failure was acknowledged (exit $rc)"
		cat "$DIR/after-producer.log"; exit 1
	fi
	sl_kill_node
	start_node
	python3 "$VERIFY" --socket "$SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
		--acked "$DIR/acked.log"
	# every acknowledged point came back through the protocol's re-apply at start (no
	# checkpoint ran: the WAL holds them all); one-voter groups had nothing to send
	rec=$("$CTL" --socket "$SOCK" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["recovered_points"])')
	unsent=$("$CTL" --socket "$SOCK" --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["cons_msgs_unsent"])')
	echo "$op $err: restart re-applied $rec points; cons_msgs_unsent $unsent"
	[ "$rec" -ge $((acked * BATCH)) ] || { echo "FAIL: recovered_points $rec < $((acked * BATCH)) acknowledged"; exit 1; }
	[ "$unsent" -eq 0 ] || { echo "FAIL: a one-voter group produced messages"; exit 1; }
	sl_stop_node
done
echo "wal_fault: PASS"

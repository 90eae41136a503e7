#!/usr/bin/env bash
# shm_bad_records.sh SLUICED SLUICECTL BAD_PRODUCER - a client writes malformed records into
# its shm ingest slot of a running sluiced (batch_count 0, absurd counts and indices, keys
# longer than the record, bad types and values, replayed seqs, batches left unfinished), more
# batches of the kinds that used to hold a pending handle than a worker has handles. The node
# must survive, acknowledge every well-framed batch correctly, count each case by reason in
# `sluicectl stats`, and still store valid batches afterwards; after an injected WAL error,
# more batches than there are handles are each refused with -EIO.
set -euo pipefail
SLUICED=$1 CTL=$2 BAD=$3
NAME=shmbad$$
. "$(dirname "$0")/lib.sh"
SHM=/dev/shm/sluice-$NAME.ingest
# one worker: every slot shares its pending-batch pool (PEND_MAX = 16384 handles)
sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 1 --regions 2 \
	--set ingest.shm_ring_entries=1024 --set debug.fault_injection=true
LEAK_ROUNDS=17000 JUNK_ROUNDS=2000
"$BAD" --path "$SHM" --mode leaks --rounds $LEAK_ROUNDS --good 50 --timeout 240
"$BAD" --path "$SHM" --mode junk --rounds $JUNK_ROUNDS --good 50 --timeout 120
kill -0 "$NODE_PID" || { echo "FAIL: sluiced died"; tail -20 "$SL_DIR/node.log"; exit 1; }
"$CTL" --socket "$SL_SOCK" --json stats >"$SL_DIR/stats.json"
check() { # counter expected
	v=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals'][sys.argv[2]])" \
		"$SL_DIR/stats.json" "$1")
	echo "  $1 = $v (want $2)"
	[ "$v" -eq "$2" ] || { echo "FAIL: counter $1"; exit 1; }
}
# per leak round: absurd count + replayed seq; per junk round: four records of no batch
check shm_bad_framing $((2 * LEAK_ROUNDS + 4 * JUNK_ROUNDS))
check shm_batches_abandoned $LEAK_ROUNDS
check shm_bad_key $((LEAK_ROUNDS + JUNK_ROUNDS))
check shm_bad_type $((LEAK_ROUNDS + JUNK_ROUNDS))
check shm_bad_value $JUNK_ROUNDS
check ack_errors 0
# after a WAL failure every batch is refused with -EIO, and releases its handle
"$CTL" --socket "$SL_SOCK" call debug_wal_fault '{"op":"fsync","errno":"EIO"}' >/dev/null
"$BAD" --path "$SHM" --mode refused --rounds $LEAK_ROUNDS --good 0 --timeout 120
kill -0 "$NODE_PID" || { echo "FAIL: sluiced died"; tail -20 "$SL_DIR/node.log"; exit 1; }
# a node whose WAL failed exits non-zero on SIGTERM, but by itself, not by a signal
kill -TERM "$NODE_PID"
rc=0
wait "$NODE_PID" || rc=$?
NODE_PID=
echo "sluiced exited with status $rc after the WAL failure"
[ "$rc" -lt 128 ] || { echo "FAIL: sluiced killed by signal $((rc - 128))"; tail -20 "$SL_DIR/node.log"; exit 1; }
echo "shm_bad_records: PASS"

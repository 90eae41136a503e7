#!/usr/bin/env bash
# raft_recover.sh SLUICED CRAFT PRODUCER - raft recovery refuses a log it cannot rebuild whole: a WAL
# (written by raft_wal_craft) whose raft entries of a region have a gap, hold an entry larger
# than raft accepts or one whose batch does not decode, makes sluiced exit with an error naming the region, the index
# and the reason, instead of starting without those entries (and every later one). The
# same WAL without the gap recovers and serves, which shows the crafted records are sound.
# Then snapshots: each carries a term record naming its own index and the previous
# snapshot's; a restart takes the term of exactly its snapshot's index (a record left by a
# crash before a newer snapshot's rename still serves), and refuses one naming neither.
set -euo pipefail
SLUICED=$1 CRAFT=$2 PRODUCER=$3
NAME=rrecov$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
WAL=$DIR/data/wal/core-00

start_node() {
	sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 1 --regions 2 \
		--set regions.protocol=raft "$@"
}

# refused CASE EXPECTED...: the node must exit on its own, and its log say each EXPECTED
refused() {
	local what=$1
	shift
	: >"$DIR/node.log"
	if start_node >/dev/null; then
		echo "FAIL ($what): sluiced started on a log it cannot rebuild"
		cat "$DIR/node.log"
		exit 1
	fi
	wait "$NODE_PID" 2>/dev/null || true
	NODE_PID=
	for want in "$@"; do
		if ! grep -qF -- "$want" "$DIR/node.log"; then
			echo "FAIL ($what): the error does not say '$want':"
			cat "$DIR/node.log"
			exit 1
		fi
	done
	echo "$what: refused: $(grep -F 'refusing to start' "$DIR/node.log" | head -1)"
}

# 1. a gap: entries 1 and 2 of region 1, then 4
rm -rf "$DIR/data"
"$CRAFT" "$WAL" 1 1 2 4
refused "gap" "region 1: raft log entry at index 4" "log ends at index 2" "refusing to start"

# 2. an entry no raft message could carry (written under larger limits, or damaged)
rm -rf "$DIR/data"
"$CRAFT" "$WAL" 1 1 2:300000 3
refused "oversized entry" "region 1: raft log entry at index 2 holds 300000 bytes" "refusing to start"

# 3. an entry whose batch does not decode (apply trusts committed entries: check it here)
rm -rf "$DIR/data"
"$CRAFT" "$WAL" 1 1 2:junk 3
refused "undecodable entry" "region 1: raft log entry at index 2" "does not decode" "refusing to start"

# 4. the same records without a gap recover, and the node serves
rm -rf "$DIR/data"
"$CRAFT" "$WAL" 1 1 2 3
: >"$DIR/node.log"
start_node
grep -q "3 entries" "$DIR/node.log" || { echo "FAIL: clean log not replayed"; cat "$DIR/node.log"; exit 1; }
sl_stop_node

# 5. snapshots written by checkpoints (1 MiB of WAL each), then restarts
rm -rf "$DIR/data"
: >"$DIR/node.log"
start_node --set wal.checkpoint_mb=1
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked.log" --points 200000 \
	--series 50 --batch 1000 --timeout 120 >"$DIR/producer.log" 2>&1 || {
	echo "FAIL: producer"; cat "$DIR/producer.log"; exit 1; }
sl_stop_node
TERMF=$DIR/data/snap/region-0001.snap.term
[ -f "$TERMF" ] || { echo "FAIL: no snapshot term record written"; ls -l "$DIR/data/snap"; exit 1; }
read -r idx term < "$TERMF"
[ "$(wc -l <"$TERMF")" -eq 2 ] || { echo "FAIL: the term record lacks the previous pair"; cat "$TERMF"; exit 1; }
echo "snapshot term record: $(tr '\n' ' ' <"$TERMF")"
# a crash after a newer snapshot's record, before its rename: the record leads with that
# newer index and term; the snapshot on disk is still the one of index $idx
printf '%s %s\n%s %s\n' "$((idx + 100))" "$((term + 1))" "$idx" "$term" >"$TERMF"
: >"$DIR/node.log"
start_node
sl_stop_node
# a record naming other indexes only: the snapshot's term is unknown, no guess
printf '%s %s\n%s %s\n' "$((idx + 100))" "$((term + 1))" "$((idx - 1))" "$term" >"$TERMF"
refused "term of another index" "no term recorded for snapshot index $idx" "refusing to start"
echo "raft_recover: PASS"

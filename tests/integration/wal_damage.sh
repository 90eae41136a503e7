#!/usr/bin/env bash
# wal_damage.sh SLUICED PRODUCER VERIFY EDIT - one flipped byte in a durable WAL record is
# damage, never a torn tail: for a node stopped cleanly and one killed with SIGKILL (after
# every batch was acknowledged), a byte of the first, a middle, the last record, the last
# flush (and the clean-shutdown record) is flipped; the restart must refuse and name the
# segment, the offset and the lsn, and salvage must then start it. A genuinely torn last
# write (a flush with a sector that never reached the disk) after SIGKILL is cut, and
# every acknowledged point reads back.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3 EDIT=$4
POINTS=20000 SERIES=20 BATCH=200
NAME=waldmg$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR WAL=$SL_DIR/data/wal/core-00
start_node() {
	sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 1 --regions 2 "$@"
}

# A fresh node takes every batch (all acknowledged), then stops as $1 says.
write_and_stop() {
	rm -rf "$DIR/data" "$DIR/acked.log" "$DIR/node.log"
	start_node
	"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked.log" --points "$POINTS" \
		--series "$SERIES" --batch "$BATCH" --timeout 60 >"$DIR/producer.log" 2>&1 ||
		{ echo "FAIL: producer"; cat "$DIR/producer.log"; exit 1; }
	[ "$(wc -l <"$DIR/acked.log")" -eq $((POINTS / BATCH)) ] || { echo "FAIL: not all acked"; exit 1; }
	if [ "$1" = clean ]; then sl_stop_node; else sl_kill_node; fi
}

cases="clean:first clean:middle clean:last clean:lastflush clean:close"
cases="$cases kill:first kill:middle kill:last kill:lastflush"
for c in $cases; do
	stop=${c%%:*} target=${c#*:}
	write_and_stop "$stop"
	read -r seg off lsn < <(python3 "$EDIT" flip "$WAL" "$target")
	: >"$DIR/node.log"
	if start_node 2>/dev/null >/dev/null; then
		echo "FAIL ($c): sluiced started on a damaged WAL"; sl_stop_node; exit 1
	fi
	NODE_PID=
	line=$(grep "damage to durable records" "$DIR/node.log" || true)
	# the record with the flipped byte: lsn $lsn (the close record: the lsn after the last)
	[ "$target" = close ] && lsn=$((lsn + 1))
	case "$line" in
	*"$WAL/$seg offset $off:"*"lsn $lsn "*"salvage"*) ;;
	*) echo "FAIL ($c): refusal should name $seg offset $off lsn $lsn:"; cat "$DIR/node.log"; exit 1 ;;
	esac
	echo "$c: refused: ${line#*: }"
	start_node --set wal.salvage=true
	grep -q "damage salvaged" "$DIR/node.log" || { echo "FAIL ($c): salvage"; cat "$DIR/node.log"; exit 1; }
	sl_stop_node
done

# A torn last write after SIGKILL: cut, and every acknowledged point is there.
write_and_stop kill
torn_lsn=$(python3 "$EDIT" torn "$WAL")
start_node
grep -q "torn tail of an unfinished write.*lsn $torn_lsn on dropped" "$DIR/node.log" ||
	{ echo "FAIL (torn): no torn-tail cut reported"; cat "$DIR/node.log"; exit 1; }
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--acked "$DIR/acked.log" --exact
sl_stop_node
echo "kill:torn: cut at lsn $torn_lsn, every acknowledged point present"
echo "wal_damage: PASS"

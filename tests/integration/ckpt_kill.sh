#!/usr/bin/env bash
# ckpt_kill.sh SLUICED PRODUCER VERIFY - checkpoints under load, killed part way: a tiny
# [wal] checkpoint_mb makes the node checkpoint every MiB of WAL while a producer writes
# through the shm ring; sluiced is killed with SIGKILL KILLS times, each time while a
# region image is being written (its .tmp file exists), restarted, and every point
# acknowledged before each kill must read back exactly; at the end, every point exactly
# once. Also checks that checkpoints did release WAL and left no temp file behind.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
POINTS=${POINTS:-2000000} SERIES=${SERIES:-200} BATCH=${BATCH:-500} KILLS=${KILLS:-4}
PROTOCOL=${PROTOCOL:-standalone}
NAME=ckptkill$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
start_node() {
	sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 2 --regions 6 \
		--set wal.checkpoint_mb=1 --set wal.segment_mb=1 --set wal.buffer_kb=256 --set "regions.protocol=$PROTOCOL"
}
verify_acked() {
	python3 "$VERIFY" --socket "$DIR/data/sluiced.sock" --points "$POINTS" --series "$SERIES" \
		--batch "$BATCH" --acked "$1"
}

start_node
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked.log" --points "$POINTS" \
	--series "$SERIES" --batch "$BATCH" --timeout 240 >"$DIR/producer.log" 2>&1 &
PROD_PID=$!
mid=0
for k in $(seq 1 "$KILLS"); do
	# kill while an image is being written; bounded: 20 s per kill, then kill anyway
	start_acks=$(wc -l <"$DIR/acked.log" 2>/dev/null || echo 0)
	hit=0
	for _ in $(seq 1 20000); do
		kill -0 "$PROD_PID" 2>/dev/null || break
		n=$(wc -l <"$DIR/acked.log" 2>/dev/null || echo 0)
		if [ "$n" -gt $((start_acks + 20)) ] && compgen -G "$DIR/data/snap/region-*.snap.tmp" >/dev/null; then
			hit=1
			break
		fi
		sleep 0.001
	done
	kill -0 "$PROD_PID" 2>/dev/null || break
	sl_kill_node
	# the producer waits while the acks before the kill are checked, so the load is still
	# running at the next kill
	kill -STOP "$PROD_PID"
	mid=$((mid + hit))
	cp "$DIR/acked.log" "$DIR/acked-$k.log"
	echo "kill $k: after $(wc -l <"$DIR/acked-$k.log") acknowledged batches (mid-checkpoint: $hit)"
	start_node
	verify_acked "$DIR/acked-$k.log"
	kill -CONT "$PROD_PID"
done
if ! wait "$PROD_PID"; then
	PROD_PID=
	echo "producer failed:"; cat "$DIR/producer.log"; tail -20 "$DIR/node.log"; exit 1
fi
PROD_PID=
python3 "$VERIFY" --socket "$DIR/data/sluiced.sock" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --exact
[ "$k" -eq "$KILLS" ] || { echo "FAIL: the producer finished before kill $KILLS"; exit 1; }
[ "$mid" -ge 2 ] || { echo "FAIL: $mid kills landed while a region image was being written"; exit 1; }
# checkpoints released WAL: far fewer 1 MiB segments than the WAL written
segs=$(find "$DIR/data/wal" -name 'wal-*.log' | wc -l)
[ "$segs" -le 24 ] || { echo "FAIL: $segs WAL segments kept: checkpoints released nothing"; exit 1; }
grep -q "snapshot failed" "$DIR/node.log" && { echo "FAIL: a snapshot failed:"; grep "snapshot failed" "$DIR/node.log"; exit 1; }
sl_stop_node
leftover=$(find "$DIR/data" -name '*.tmp' | wc -l)
echo "ckpt_kill: $mid of $KILLS kills mid-checkpoint, $segs WAL segments kept, $leftover temp files after a clean stop"
echo "ckpt_kill: PASS"

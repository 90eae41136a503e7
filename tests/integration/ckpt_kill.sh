#!/usr/bin/env bash
# ckpt_kill.sh SLUICED PRODUCER VERIFY - checkpoints under load, killed part way: a tiny
# [wal] checkpoint_mb makes the node checkpoint every MiB of WAL while a producer writes
# through the shm ring; sluiced is killed with SIGKILL KILLS times, each time while a
# region image is being written (its .tmp file exists), restarted, and every point
# acknowledged before each kill must read back exactly; at the end, every point exactly
# once. Also checks that checkpoints did release WAL and left no temp file behind.
# DELTA=1 (needs CTL, sluicectl): [wal] checkpoint_delta_min_kb = 0, so regions are
# checkpointed as delta images after their first base: each kill comes only once the
# running node made a delta image durable (a new region-*.d*.snap file; its counter
# snapshots_delta is read then), and the restarts must load chains of a base and deltas.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3 CTL=${4:-}
POINTS=${POINTS:-2000000} SERIES=${SERIES:-200} BATCH=${BATCH:-500} KILLS=${KILLS:-4}
# under the sanitizers (ASAN_OPTIONS set) the node runs slower: half the points, two kills
[ -n "${ASAN_OPTIONS:-}" ] && POINTS=$((POINTS / 2)) KILLS=2
PROTOCOL=${PROTOCOL:-standalone} DELTA=${DELTA:-0}
NAME=ckptkill$$
[ "$DELTA" = 1 ] && NAME=ckptdelta$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
DELTA_ARGS=()
[ "$DELTA" = 1 ] && DELTA_ARGS=(--set wal.checkpoint_delta_min_kb=0)
start_node() {
	sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 2 --regions 6 \
		--set wal.checkpoint_mb=1 --set wal.segment_mb=1 --set wal.buffer_kb=256 --set "regions.protocol=$PROTOCOL" \
		"${DELTA_ARGS[@]}"
}
# deltas written by the running node; the worker publishes its counters a little after
# the image is in place, so asked again for up to a second while 0
deltas_now() {
	local d=0
	for _ in $(seq 1 20); do
		d=$(sl_stat "r['totals']['snapshots_delta']" 2>/dev/null || echo 0)
		[ "$d" -gt 0 ] && break
		sleep 0.05
	done
	echo "$d"
}
verify_acked() {
	python3 "$VERIFY" --socket "$DIR/data/sluiced.sock" --points "$POINTS" --series "$SERIES" \
		--batch "$BATCH" --acked "$1"
}

start_node
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked.log" --points "$POINTS" \
	--series "$SERIES" --batch "$BATCH" --timeout 240 >"$DIR/producer.log" 2>&1 &
PROD_PID=$!
mid=0 deltas=0 dkills=0
for k in $(seq 1 "$KILLS"); do
	# kill while an image is being written; bounded: 20 s per kill, then kill anyway.
	# DELTA=1: only once this node made a delta image durable; a delta is small and its
	# .tmp short-lived, so after 100 more turns without one the kill lands between images
	start_acks=$(wc -l <"$DIR/acked.log" 2>/dev/null || echo 0)
	hit=0 wrote=0 armed=$((DELTA != 1)) since_armed=0
	touch "$DIR/mark"
	for _ in $(seq 1 20000); do
		kill -0 "$PROD_PID" 2>/dev/null || break
		if [ "$armed" = 0 ] && [ -n "$(find "$DIR/data/snap" -name 'region-*.d*.snap' -newer "$DIR/mark" -print -quit)" ]; then
			wrote=$(deltas_now)
			armed=1
		fi
		n=$(wc -l <"$DIR/acked.log" 2>/dev/null || echo 0)
		if [ "$armed" = 1 ] && [ "$n" -gt $((start_acks + 20)) ]; then
			compgen -G "$DIR/data/snap/region-*.snap.tmp" >/dev/null && { hit=1; break; }
			since_armed=$((since_armed + 1))
			[ "$DELTA" = 1 ] && [ "$since_armed" -ge 100 ] && break
		fi
		sleep 0.001
	done
	kill -0 "$PROD_PID" 2>/dev/null || break
	sl_kill_node
	# the producer waits while the acks before the kill are checked, so the load is still
	# running at the next kill
	kill -STOP "$PROD_PID"
	mid=$((mid + hit))
	deltas=$((deltas + wrote))
	[ "$wrote" -gt 0 ] && dkills=$((dkills + 1))
	cp "$DIR/acked.log" "$DIR/acked-$k.log"
	echo "kill $k: after $(wc -l <"$DIR/acked-$k.log") acknowledged batches (mid-checkpoint: $hit, delta images written before: $wrote)"
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
# (DELTA=1 kills after its node wrote deltas, mid-image when it can)
[ "$mid" -ge 2 ] || [ "$DELTA" = 1 ] || { echo "FAIL: $mid kills landed while a region image was being written"; exit 1; }
# checkpoints released WAL: far fewer 1 MiB segments than the WAL written
segs=$(find "$DIR/data/wal" -name 'wal-*.log' | wc -l)
[ "$segs" -le 24 ] || { echo "FAIL: $segs WAL segments kept: checkpoints released nothing"; exit 1; }
grep -q "snapshot failed" "$DIR/node.log" && { echo "FAIL: a snapshot failed:"; grep "snapshot failed" "$DIR/node.log"; exit 1; }
if [ "$DELTA" = 1 ]; then
	# the killed nodes wrote deltas, and restarts read chains of a base and deltas
	chains=$(grep -c "delta images up to index" "$DIR/node.log" || true)
	echo "ckpt_kill: $deltas delta images written before the kills, $chains regions restarted from a base + deltas"
	[ "$dkills" -eq "$KILLS" ] || { echo "FAIL: only $dkills of $KILLS killed nodes counted delta images"; exit 1; }
	[ "$chains" -ge 2 ] || { echo "FAIL: $chains regions restarted from a chain with deltas"; exit 1; }
fi
sl_stop_node
leftover=$(find "$DIR/data" -name '*.tmp' | wc -l)
# refuses_start TEXT: sluiced on this data dir stops at start saying TEXT (bounded)
refuses_start() {
	local rc=0
	timeout -s KILL 60 "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 2 --regions 6 \
		"${DELTA_ARGS[@]}" >"$DIR/refused.log" 2>&1 || rc=$?
	echo "start with a damaged chain: exit $rc: $(grep -F "refusing" "$DIR/refused.log" | head -c 300)"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] && grep -qF -- "$1" "$DIR/refused.log" ||
		{ echo "FAIL: not refused with '$1'"; tail -5 "$DIR/refused.log"; exit 1; }
}
# (-quit, not `| head -1`: find writing on after head exits dies of SIGPIPE, which
# pipefail turns into the script's exit status)
dfile=$(find "$DIR/data/snap" -name 'region-*.d*.snap' -print -quit)
if [ "$DELTA" = 1 ] && [ -n "$dfile" ]; then
	# a damaged delta, and deltas without their base, stop the start with their name
	python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x10; open(p,'wb').write(b)" "$dfile"
	refuses_start "$dfile: delta image is corrupt"
	# the base of region-R.dI.bJ.snap is region-R.snap (cut in the file name only: the
	# temp dir's random name may hold ".d" too, which once made this path wrong)
	f=${dfile##*/}
	base="${dfile%/*}/${f%%.d*}.snap"
	rm -f "$base"
	refuses_start "$base: missing, but"
elif [ "$DELTA" = 1 ]; then
	echo "ckpt_kill: no delta image left at the end: the damaged-chain starts not tried"
fi
echo "ckpt_kill: $mid of $KILLS kills mid-checkpoint, $segs WAL segments kept, $leftover temp files after a clean stop"
echo "ckpt_kill: PASS"

#!/usr/bin/env bash
# shm_kill_restart.sh SLUICED PRODUCER VERIFY - a producer writes 1,000,000 points through
# the shm ingest ring with acknowledgements; sluiced is killed with SIGKILL at a random
# moment, restarted, and every point acknowledged before the kill must read back exactly;
# the producer then resubmits what was not acknowledged and finally all points must read
# back exactly once. SEED=<n> replays a run's kill moment.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
POINTS=${POINTS:-1000000} SERIES=${SERIES:-100} BATCH=${BATCH:-1000} PROTOCOL=${PROTOCOL:-standalone}
SEED=${SEED:-$(( $(date +%s%N) % 100000 ))}
RANDOM=$SEED
# kill once between 10% and 90% of the batches are acknowledged
NB=$(( (POINTS + BATCH - 1) / BATCH ))
KILL_AT=$(( NB / 10 + RANDOM % (NB * 8 / 10) ))
NAME=itest$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
echo "shm_kill_restart: seed $SEED: kill after $KILL_AT of $NB batches acknowledged (replay: SEED=$SEED $0 $*)"
start_node() {
	sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" --workers 2 --regions 4 \
		--set wal.checkpoint_mb=16 --set wal.segment_mb=8 --set "regions.protocol=$PROTOCOL"
}

start_node
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked.log" --points "$POINTS" \
	--series "$SERIES" --batch "$BATCH" --timeout 240 >"$DIR/producer.log" 2>&1 &
PROD_PID=$!
# wait for the kill moment (bounded: 120 s)
for _ in $(seq 1 12000); do
	n=$(wc -l <"$DIR/acked.log" 2>/dev/null || echo 0)
	[ "$n" -ge "$KILL_AT" ] && break
	kill -0 "$PROD_PID" 2>/dev/null || break
	sleep 0.01
done
sl_kill_node
cp "$DIR/acked.log" "$DIR/acked-before-kill.log"
echo "killed sluiced with SIGKILL after $(wc -l <"$DIR/acked-before-kill.log") acknowledged batches"
start_node
grep -h "WAL\|serving" "$DIR/node.log" | tail -4 || true
# every batch acknowledged before the kill must be there, exactly
python3 "$VERIFY" --socket "$DIR/data/sluiced.sock" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --acked "$DIR/acked-before-kill.log"
# the producer resumes and completes; then everything, exactly once
if ! wait "$PROD_PID"; then
	PROD_PID=
	echo "producer failed:"; cat "$DIR/producer.log"; tail -20 "$DIR/node.log"; exit 1
fi
PROD_PID=
cat "$DIR/producer.log"
python3 "$VERIFY" --socket "$DIR/data/sluiced.sock" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --exact
sl_stop_node
echo "shm_kill_restart: PASS (seed $SEED)"

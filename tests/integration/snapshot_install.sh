#!/usr/bin/env bash
# snapshot_install.sh SLUICED PRODUCER - a region installs a store image as a snapshot from
# a peer (debug_install_snapshot calls the function the region driver's install calls):
# node A checkpoints (its region 0 image is the snapshot); node B, with data of its own,
# refuses a damaged image and one of another region (store unchanged, counted), then
# installs A's image; B's region 0 then holds exactly the image's points, before and after
# a restart, compared with node REF that starts from that image alone.
set -euo pipefail
SLUICED=$1 PRODUCER=$2
CHECK="python3 $(dirname "$0")/snapshot_install.py"
NAME=snapinst$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
ARGS=(--workers 1 --regions 2 --set debug.fault_injection=true --set wal.checkpoint_mb=1
	--set wal.segment_mb=1 --set wal.buffer_kb=256)
SOCK_B=$DIR/b/sluiced.sock SOCK_REF=$DIR/ref/sluiced.sock

# A: 200,000 points, checkpoints every MiB of WAL, then a clean stop
sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" "${ARGS[@]}"
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/a.log" --points 200000 \
	--series 50 --batch 1000 --timeout 120 >"$DIR/a-producer.log"
sl_stop_node
IMG=$DIR/region-0000.snap
cp "$DIR/data/snap/region-0000.snap" "$IMG"
[ -s "$IMG" ] || { echo "FAIL: node A wrote no region snapshot"; exit 1; }

# REF: A's region 0 image alone (no WAL): what region 0 must hold after the install
mkdir -p "$DIR/ref/snap"
cp "$DIR/data/snap/region-0000.snap" "$DIR/data/snap/region-0000.snap.term" "$DIR/ref/snap/"
cp "$DIR/data/node.meta" "$DIR/ref/"
"$SLUICED" --data-dir "$DIR/ref" --name "${NAME}r" "${ARGS[@]}" >"$DIR/ref.log" 2>&1 &
REF_PID=$!
trap 'kill -9 $REF_PID 2>/dev/null || true; sl_cleanup; rm -f /dev/shm/sluice-${NAME}r.*' EXIT

# B: a few points of its own (other series) in both regions
mv "$DIR/data" "$DIR/a"
SL_SOCK=$SOCK_B
sl_start_node "$SLUICED" --data-dir "$DIR/b" --name "$NAME" "${ARGS[@]}"
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/b.log" --points 3000 \
	--series 20 --batch 100 --key-prefix other --timeout 120 >"$DIR/b-producer.log"
for _ in $(seq 1 600); do [ -S "$SOCK_REF" ] && break; sleep 0.05; done
before0=$($CHECK "$SOCK_B" "$SOCK_REF" region 0) before1=$($CHECK "$SOCK_B" "$SOCK_REF" region 1)

# refused: a damaged image, an image of another region; the store stays as it was
cp "$IMG" "$DIR/bad.snap"
printf '\xff' | dd of="$DIR/bad.snap" bs=1 seek=$(( $(stat -c %s "$IMG") / 2 )) conv=notrunc status=none
$CHECK "$SOCK_B" "$SOCK_REF" refuse 0 "$DIR/bad.snap"
$CHECK "$SOCK_B" "$SOCK_REF" refuse 1 "$IMG"
[ "$($CHECK "$SOCK_B" "$SOCK_REF" region 0)" = "$before0" ] || { echo "FAIL: a refused image changed region 0"; exit 1; }
grep -q "refused: the image does not decode" "$DIR/node.log" || { echo "FAIL: no log line for the damaged image"; exit 1; }

# installed: region 0 is the image (its counts: none of B's own points are left), region 1
# keeps B's points
$CHECK "$SOCK_B" "$SOCK_REF" install 0 "$IMG"
$CHECK "$SOCK_B" "$SOCK_REF" same 0 50 itest
[ "$($CHECK "$SOCK_B" "$SOCK_REF" region 1)" = "$before1" ] || { echo "FAIL: region 1 changed"; exit 1; }
cmp "$IMG" "$DIR/b/snap/region-0000.snap" || { echo "FAIL: the installed image is not the region's snapshot file"; exit 1; }
# and after a restart (the node reads it back from its own snapshot)
sl_stop_node
sl_start_node "$SLUICED" --data-dir "$DIR/b" --name "$NAME" "${ARGS[@]}"
$CHECK "$SOCK_B" "$SOCK_REF" same 0 50 itest
[ "$($CHECK "$SOCK_B" "$SOCK_REF" region 1)" = "$before1" ] || { echo "FAIL: region 1 changed after the restart"; exit 1; }
sl_stop_node
kill -TERM "$REF_PID"; wait "$REF_PID" || true
echo "snapshot_install: PASS"

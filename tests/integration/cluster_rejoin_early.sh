#!/usr/bin/env bash
# cluster_rejoin_early.sh SLUICED PRODUCER VERIFY - a replica rejoins before its leader's
# first checkpoint. Three nodes, every region a 3-replica raft group, the default
# checkpoint spacing (256 MiB of WAL: never reached here) and 1 MiB of applied entries
# kept in memory: after the load the leaders hold no snapshot and no longer the start of
# their log. Node 3 loses its data dir and rejoins: it needs a snapshot that does not
# exist yet, so the leaders must take a checkpoint for it (checkpoints_for_peers). They
# once answered "no snapshot" forever and node 3 never caught up.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
POINTS=${POINTS:-200000} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=clje$$
REGIONS=2
CL_ARGS=(--workers 1 --set regions.log_keep_mb=1)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
"$PRODUCER" --path "/dev/shm/sluice-$NAME-1.ingest" --log "$SL_DIR/acked1.log" \
	--points "$POINTS" --series "$SERIES" --batch "$BATCH" --key-prefix p1 --timeout 120 \
	>"$SL_DIR/producer1.log" 2>&1 || { echo "FAIL: producer"; cat "$SL_DIR/producer1.log"; exit 1; }
cl_caught_up >/dev/null
# the premise: no checkpoint yet, and more than the kept MiB of entries applied
[ "$(cl_regions 1 "max(r['snapshot_index'] for r in rs)")" = 0 ] ||
	{ echo "FAIL: a region checkpointed already: the test does not test the early rejoin"; exit 1; }
[ "$(cl_stat 1 snapshots_full)" = 0 ] || { echo "FAIL: node 1 wrote snapshots"; exit 1; }
cl_kill 3
rm -rf "$SL_DIR/d3"
cl_wait_leaders 1 3
CL_REJOIN=3
t0=$SECONDS
cl_start 3
# bounded by the clock (60 s): without a checkpoint for it node 3 would wait forever
want="[r['commit_index'] for r in rs]"
for _ in $(seq 1 600); do
	c=$(cl_regions 1 "$want")
	# the same reading decides and is checked below: node 3 may apply a later entry
	# (the leaders' no-op on learning of a rejoining replica) between two readings
	a=$(cl_regions 3 "[r['applied_index'] for r in rs]")
	[ "$a" = "$c" ] && break
	[ "$SECONDS" -lt $((t0 + 60)) ] || break
	sleep 0.1
done
[ "$a" = "$c" ] ||
	{ echo "FAIL: node 3 applied $a of $c in 60 s (node 1's snapshot indexes $(cl_regions 1 "[r['snapshot_index'] for r in rs]"))"; exit 1; }
inst=$(cl_stat 3 cons_snapshots_installed)
want=$(($(cl_stat 1 checkpoints_for_peers) + $(cl_stat 2 checkpoints_for_peers)))
[ "$inst" -gt 0 ] || { echo "FAIL: node 3 caught up without a snapshot"; exit 1; }
[ "$want" -gt 0 ] || { echo "FAIL: no checkpoint taken for a peer"; exit 1; }
echo "node 3 rejoined before any checkpoint: $want checkpoints for peers, $inst snapshots installed, caught up to $c"
for s in "$(cl_sock 3)" "$(cl_sock 1)"; do
	python3 "$VERIFY" --socket "$s" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
		--key "p1,host=h{s:03d} value" --exact | sed "s|^|$(basename "$(dirname "$s")"): |"
	[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
done
echo "cluster_rejoin_early: PASS"

#!/usr/bin/env bash
# cluster_rejoin.sh SLUICED PRODUCER VERIFY - a node that lost its data dir comes back
# with --rejoin. Three nodes, every region a 3-replica raft group, checkpoints every 4 MiB
# and almost no log kept beyond them, so the leaders no longer hold the log from its
# start: under load node 3 is SIGKILLed, its data dir deleted, and it is started again
# on an empty one with --rejoin. Checks: it catches up by snapshots larger than one
# raft message (sent in chunks, built by the leaders' writer threads from their image
# chains), the REJOIN marker goes once every region caught up, every acknowledged point
# reads back exactly from every node, and node 3 votes again: with node 1 killed, nodes 2
# and 3 elect leaders for every region.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
# the same load under the sanitizers: the regions' images must outgrow one raft message
POINTS=${POINTS:-200000} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=clj$$
CL_ARGS=(--set wal.checkpoint_mb=4 --set regions.log_keep_mb=1)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
cl_producers
cl_wait_acks 60
cl_kill 3
rm -rf "$SL_DIR/d3"
echo "[${SECONDS}s] node 3 killed after $(cl_acks) acknowledged batches; its data dir deleted"
cl_wait_leaders 1 3
# the leaders checkpoint and drop their log's start meanwhile: node 3 needs snapshots
for _ in $(seq 1 600); do
	[ "$(cl_regions 1 "min(r['snapshot_index'] for r in rs) > 0")" = True ] && break
	sleep 0.1
done
[ "$(cl_regions 1 "min(r['snapshot_index'] for r in rs) > 0")" = True ] ||
	{ echo "FAIL: no checkpoint on every region of node 1 within 60 s"; exit 1; }
CL_REJOIN=3
echo "[${SECONDS}s] every region of node 1 checkpointed; node 3 starts with --rejoin"
cl_start 3
grep -q "rejoining:" "$SL_DIR/node3.log" || { echo "FAIL: node 3 did not start rejoining"; cat "$SL_DIR/node3.log"; exit 1; }
[ -e "$SL_DIR/d3/REJOIN" ] || { echo "FAIL: no REJOIN marker in node 3's data dir"; exit 1; }
sl_wait_producers
echo "[${SECONDS}s] producers done"
c=$(cl_caught_up)
for _ in $(seq 1 300); do
	[ -e "$SL_DIR/d3/REJOIN" ] || break
	sleep 0.1
done
[ ! -e "$SL_DIR/d3/REJOIN" ] || { echo "FAIL: node 3 still rejoining after catching up"; cl_regions 3 rs; exit 1; }
for _ in $(seq 1 50); do # the line follows the unlink and a directory fsync
	grep -q "rejoined: every replicated region" "$SL_DIR/node3.log" && break
	sleep 0.1
done
grep -q "rejoined: every replicated region" "$SL_DIR/node3.log" || { echo "FAIL: no 'rejoined' line"; exit 1; }
[ "$(cl_regions 3 "any(r['rejoining'] for r in rs)")" = False ] || { echo "FAIL: a region still rejoining"; exit 1; }
inst=$(cl_stat 3 cons_snapshots_installed)
exp=$(($(cl_stat 1 snapshot_exports) + $(cl_stat 2 snapshot_exports)))
[ "$inst" -gt 0 ] || { echo "FAIL: node 3 caught up without a snapshot: the test did not test that"; exit 1; }
big=$(grep -o 'installed ([0-9]* bytes)' "$SL_DIR/node3.log" | tr -dc '0-9\n' | sort -n | tail -1)
# one raft message of the node's regions carries about 270 KB
[ "${big:-0}" -gt 300000 ] || { echo "FAIL: the largest snapshot was ${big:-0} bytes: it fit one raft message"; exit 1; }
# the leaders started few transfers for those installs: a leader offering an image the
# follower already holds, while the entries after it were no longer kept in memory, once
# started thousands (each answered "I have it", then the entries missing again)
started=$(($(cl_regions 1 "sum(r['consensus']['snapshots_sent'] for r in rs)") + $(cl_regions 2 "sum(r['consensus']['snapshots_sent'] for r in rs)")))
[ "$started" -le $((10 * inst + 20)) ] ||
	{ echo "FAIL: the leaders started $started snapshot transfers for $inst installs"; exit 1; }
echo "[${SECONDS}s] node 3 rejoined: $inst snapshots installed (largest $big bytes, $exp images built by the leaders' writers, $started transfers started), caught up to $c"
cl_verify_all
# a voter again: without node 1, nodes 2 and 3 elect a leader for every region
cl_kill 1
cl_wait_leaders 2 1
echo "[${SECONDS}s] with node 1 down, leaders $(cl_regions 2 "[r['leader'] for r in rs]"): node 3 votes again"
echo "cluster_rejoin: PASS"

#!/usr/bin/env bash
# cluster_raft.sh SLUICED PRODUCER VERIFY - three sluiced nodes on one host, linked by the
# fabric over memif, every region a 3-replica raft group. A producer writes through the
# shm ring of each node (points of regions led elsewhere are forwarded to the leader);
# the node leading region 0 is SIGKILLed under load and restarted from its data dir (its
# producer waits and resubmits what was not acknowledged). Checks: the regions it led get
# a new leader and writes go on meanwhile, it catches up on its return, and every point
# reads back exactly (nothing missing, twice or unexpected) from every one of the nodes.
# Then leadership returns to each region's preferred replica (leaders spread evenly).
# Checkpoints every 8 MiB of WAL run meanwhile: a replica back from an outage still gets
# entries the leaders keep ([regions] log_keep_mb), not only what their log has left.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
# paced (10 ms after each batch): the load outlasts the kill and the 2 s that follow it
# however fast the build (each producer's 600 batches take at least 6 s)
POINTS=${POINTS:-300000} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=clu$$
CL_ARGS=(--set wal.checkpoint_mb=8)
CL_PROD_ARGS=(--pace-ms 10)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
echo "leaders: $(cl_regions 1 "[r['leader'] for r in rs]")"
cl_producers
# kill the leader of region 0 under load
cl_wait_acks 60
for _ in $(seq 1 100); do # bounded: a leader move (balance) may be under way
	K=$(cl_regions 1 "rs[0]['leader']")
	[[ "$K" =~ ^[1-3]$ ]] && break
	sleep 0.1
done
[[ "$K" =~ ^[1-3]$ ]] || { echo "FAIL: region 0 has no leader: $K"; exit 1; }
A=$((K % 3 + 1)) B=$(((K + 1) % 3 + 1))
ledk=$(cl_regions "$A" "sum(r['leader'] == $K for r in rs)")
cl_kill "$K"
echo "node $K killed after $(cl_acks) acknowledged batches; it led $ledk of $REGIONS regions"
cl_writes_go_on "$K"
echo "leaders now $(cl_regions "$A" "[r['leader'] for r in rs]")"
cl_start "$K"
sl_wait_producers
c=$(cl_caught_up)
# leadership goes back to the preferred replicas once the node is back ([cluster]
# balance_leaders): leaders end up spread over the nodes
bal=$(cl_wait_balanced)
moved=$(($(cl_stat 1 leader_transfers) + $(cl_stat 2 leader_transfers) + $(cl_stat 3 leader_transfers)))
echo "leaders back on their preferred replicas: $bal ($moved transfers)"
cl_verify_all
fwd=$(($(cl_stat 1 fwd_answers) + $(cl_stat 2 fwd_answers) + $(cl_stat 3 fwd_answers)))
[ "$fwd" -gt 0 ] || { echo "FAIL: nothing was forwarded to a leader on another node"; exit 1; }
for i in 1 2 3; do
	bad=$(cl_stat "$i" fab_drop_crc)
	[ "$bad" -eq 0 ] || { echo "FAIL: node $i dropped $bad damaged fabric frames"; exit 1; }
done
# the links to the killed node went down under load: the memif driver unmapped their
# memory only once every worker had left the round it was in (dataplane/fab_guard.c)
for i in "$A" "$B"; do
	waits=$("$CTL" --socket "$(cl_sock "$i")" --json status | python3 -c "import json,sys; print(json.load(sys.stdin)['fabric']['unmap_waits'])")
	[ "$waits" -ge 1 ] || { echo "FAIL: node $i lost its link to node $K without the unmap guard"; exit 1; }
done
snaps=$(cl_regions "$A" "sum(r['snapshot_index'] > 0 for r in rs)")
[ "$snaps" -gt 0 ] || { echo "FAIL: no checkpoint was taken: the catch-up did not cross one"; exit 1; }
echo "cluster_raft: $fwd forwarded batches answered; node $K caught up to $c across checkpoints ($snaps regions)"
echo "cluster_raft: PASS"

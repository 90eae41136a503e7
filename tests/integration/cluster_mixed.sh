#!/usr/bin/env bash
# cluster_mixed.sh SLUICED PRODUCER VERIFY - the three protocols side by side on three nodes
# (cluster_lib.sh): regions 0-3 raft with a replica on every node, 4-7 standalone, one
# copy each on node (region mod 3) + 1, 8-9 multileader on every node. Every node takes
# writes for every region (forwarded to the region's leader, its only copy, or its home). Checks the placement the
# nodes report (replicas, role "none" where a region has no replica), that a local query
# for a region with no replica here is refused naming where to ask, and, after the node
# holding region 4's only copy was SIGKILLed under load and restarted, that the raft
# regions got leaders on the other nodes meanwhile and every point reads back exactly.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
# under the sanitizers (ASAN_OPTIONS set) the nodes run slower: fewer points last as long
POINTS=${POINTS:-$([ -n "${ASAN_OPTIONS:-}" ] && echo 60000 || echo 200000)} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=cmix$$ REGIONS=10 CL_PROTOCOLS=4-7:standalone,8-9:multileader
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
for i in 1 2 3; do
	got=$(cl_regions "$i" "[(r['protocol'], r['replicas'], r['role'] == 'none') for r in rs[4:8]]")
	want=$(python3 -c "print([('standalone', [r % 3 + 1], r % 3 + 1 != $i) for r in range(4, 8)])")
	[ "$got" = "$want" ] || { echo "FAIL: node $i places regions 4-7 as $got, want $want"; exit 1; }
	[ "$(cl_regions "$i" "all(len(r['replicas']) == 3 and r['role'] != 'none' for r in rs[:4])")" = True ] ||
		{ echo "FAIL: node $i: a raft region without a replica here"; exit 1; }
	[ "$(cl_regions "$i" "[(r['protocol'], len(r['replicas']), r['role']) for r in rs[8:]]")" = \
		"[('multileader', 3, 'replica'), ('multileader', 3, 'replica')]" ] ||
		{ echo "FAIL: node $i places regions 8-9 as $(cl_regions "$i" "rs[8:]")"; exit 1; }
done
echo "placement: regions 0-3 raft on nodes 1-3, 4-7 one copy each on node 2, 3, 1, 2, 8-9 multileader on nodes 1-3"
cl_producers
cl_wait_acks 30
# region 4's only copy is on node 2: kill it under load. The raft regions elect leaders
# among nodes 1 and 3 (node 2 led some); a client batch holds points of every region, so
# its ack waits for node 2's single-copy regions (4 and 7) to come back
cl_kill 2
cl_wait_leaders 1 2
cl_wait_leaders 3 2
echo "node 2 down: every raft region led by node 1 or 3; batches wait for regions 4 and 7"
sleep 1
cl_start 2
sl_wait_producers
cl_caught_up >/dev/null
ml_caught_up
cl_verify_all
# a local read of a region with no replica here is refused with where to ask
python3 - "$(dirname "$0")" "$(cl_sock 1)" "$SERIES" <<'PY' || { echo "FAIL: local reads on node 1"; exit 1; }
import sys
sys.path.insert(0, sys.argv[1])
from sltest import NotHere, query_points
refused = 0
for s in range(int(sys.argv[3])):
    try:
        query_points(sys.argv[2], f"p1,host=h{s:03d} value")
    except NotHere as e:
        refused += 1
        assert "ask node" in str(e), e
print(f"node 1 refused {refused} of {sys.argv[3]} local reads: their regions have no replica there")
sys.exit(0 if 0 < refused < int(sys.argv[3]) else 1)
PY
fwd=$(($(cl_stat 1 fwd_answers) + $(cl_stat 2 fwd_answers) + $(cl_stat 3 fwd_answers)))
echo "cluster_mixed: $fwd forwarded batches answered"
echo "cluster_mixed: PASS"

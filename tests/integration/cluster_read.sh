#!/usr/bin/env bash
# cluster_read.sh SLUICED PRODUCER VERIFY - reads at every level from every node of a
# three-node raft cluster (cluster_lib.sh). Each node has a tap port in a network namespace
# of its own (created and removed here); producers write through the nodes' shm rings.
# Then, over the session protocol from each namespace (sluicectl query --addr): a
# linearizable read (--level leader, and durable) of sample series on every node returns
# every acknowledged point, whether that node leads the series' region (ReadIndex there)
# or not (the read goes to the leader over the fabric: counted in reads_forwarded); local
# reads on a follower are answered from its own store.
# Writes over the session protocol at ack level 2 (majority) through a node are
# acknowledged as reaching level 2: every region replicates.
# Read-your-writes on another node: with node 3's frames to node 1 delayed 300 ms, a
# session writes through node 3, and right after its last ack a read at level sync on
# node 1 returns every point it wrote (raft: a read index at the leader; multileader: the
# protocol's sync read, which waits until node 1 applied what every origin had durable).
# PROTOCOL=multileader: the same cluster with multileader regions acked on 1 replica
# (a write at level 2 waits for a majority): durable (CAD) and local reads return every point on every node, each served
# by the node's own replica (reads_cad); leader (linearizable) is refused, as such a
# region has no leader; session writes at level 2 reach it.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3 CLIENT=$4
[ "$(id -u)" -eq 0 ] || { echo "cluster_read: needs root for tap and netns: SKIP"; exit 77; }
POINTS=${POINTS:-60000} SERIES=${SERIES:-20} BATCH=${BATCH:-500}
ID=$$
NAME=crd$ID
PROTOCOL=${PROTOCOL:-raft}
CL_ARGS=(--set debug.fault_injection=true)
[ "$PROTOCOL" = multileader ] &&
	CL_ARGS+=(--set regions.protocol=multileader)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
NSS=()
cleanup_ns() {
	for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
	for i in 1 2 3; do ip link del "slrd$((ID % 10000))$i" 2>/dev/null || true; done
	cl_cleanup
}
trap cleanup_ns EXIT
net() { echo "198.18.$(((ID + $1) % 250))."; }
cl_node_args() {
	echo "--set"; echo "net.vdevs=net_tap0,iface=slrd$((ID % 10000))$1"
	echo "--set"; echo "net.ipv4=$(net "$1")1"
}

for i in 1 2 3; do
	cl_start "$i"
	ns=slrd$ID-$i tap=slrd$((ID % 10000))$i
	ip netns add "$ns"; NSS+=("$ns")
	ip link set "$tap" netns "$ns"
	ip -n "$ns" addr add "$(net "$i")2/24" dev "$tap"
	ip -n "$ns" link set "$tap" up
	ip -n "$ns" link set lo up
	ip netns exec "$ns" ping -c 1 -W 2 "$(net "$i")1" >/dev/null
done
[ "$PROTOCOL" = multileader ] || cl_wait_leaders 1 0
cl_producers
sl_wait_producers
if [ "$PROTOCOL" = multileader ]; then ml_caught_up; else cl_caught_up >/dev/null; fi
# query NODE LEVEL S: points of producer 2's series S read from NODE at LEVEL. A read
# answered UNAVAILABLE (a leader changing hands: leadership balance moves leaders to their
# preferred replicas once the load ends) is asked again, as the protocol tells a client
# to: at most 20 times, 0.2 s apart; then the error stands.
query() {
	local out k tries=${TRIES:-20}
	for k in $(seq 1 "$tries"); do
		out=$(ip netns exec "slrd$ID-$1" "$CTL" --json --timeout 5000 query \
			"${QKEY:-p2,host=h$(printf %03d "$3") value}" --addr "$(net "$1")1" --level "$2" 2>&1) &&
			break
		echo "$out" | grep -q unavailable || break
		[ "$k" -lt "$tries" ] && sleep 0.2
	done
	echo "$out" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["points"]))' 2>/dev/null ||
		{ echo "$out"; return 1; }
}
# cl_diag: each node's forwarding, fabric and session counters (on a failure)
cl_diag() {
	local i
	for i in 1 2 3; do
		[ "${CL_PIDS[$i]}" != 0 ] || continue
		echo "node $i: $("$CTL" --socket "$(cl_sock "$i")" --json stats | python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print({k: v for k, v in t.items() if v and any(w in k for w in ('fwd', 'fab_fault', 'sess', 'ml_', 'busy', 'refus'))})")"
		echo "node $i regions: $(cl_regions "$i" "[(r['id'], r.get('home'), r.get('proposals_in_flight'), r.get('forwarded_in_flight')) for r in rs]")"
	done
}
want=$((POINTS / SERIES))
levels="leader durable sync local"
[ "$PROTOCOL" = multileader ] && levels="durable sync local"
for i in 1 2 3; do
	for level in $levels; do
		for s in 0 5 11 17; do
			got=$(query "$i" "$level" "$s") || true
			[ "$got" -eq "$want" ] ||
				{ echo "FAIL: node $i, level $level, series $s: $got points, $want written"; exit 1; }
		done
	done
	echo "node $i: $levels reads of 4 series: $want points each"
	if [ "$PROTOCOL" = multileader ]; then
		! out=$(TRIES=1 query "$i" leader 0 2>&1) || { echo "FAIL: node $i answered a leader read of a multileader region: $out"; exit 1; }
		echo "$out" | grep -qi unavailable || { echo "FAIL: node $i, leader read: $out"; exit 1; }
	fi
done
# client-side routing: ROUTES from each node names every region's home (raft: its leader,
# multileader: its home replica), as that node's regions show it, over hash ranges that
# are the node's own
for i in 1 2 3; do
	got=$(ip netns exec "slrd$ID-$i" "$CTL" --json --timeout 5000 routes --addr "$(net "$i")1" |
		python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["node"], [(x["hash_lo"], x["protocol"], x["home"]) for x in r["routes"]])')
	key=$([ "$PROTOCOL" = multileader ] && echo home || echo leader)
	want="$i $(cl_regions "$i" "[(r['hash_lo'], r['protocol'], r['$key']) for r in rs]")"
	[ "$got" = "$want" ] || { echo "FAIL: node $i routes $got, its regions say $want"; exit 1; }
	echo "node $i routes: $got"
done
out=$(ip netns exec "slrd$ID-3" "$CLIENT" --node "$(net 3)1" --points 3000 --series 10 \
	--batch 30 --level 2 --timeout 60 --log "$SL_DIR/sess_acked.log" write)
echo "$out"
echo "$out" | grep -q "100 batches acknowledged at level 2 or above" ||
	{ echo "FAIL: session batches at ack level 2 were not all acknowledged as reaching it"; exit 1; }
# read-your-writes on node 1 for a session writing through node 3, whose frames to node 1
# arrive 300 ms late: the same 3000 points again (identical) and 3000 new ones, 600 per
# series; then sync reads on node 1 at once (a local read there still misses some, shown)
"$CTL" --socket "$(cl_sock 3)" call debug_fabric '{"peer":1,"dir":"out","delay_ms":300}' >/dev/null
out=$(ip netns exec "slrd$ID-3" "$CLIENT" --node "$(net 3)1" --points 6000 --series 10 \
	--batch 30 --session 77 --level 1 --timeout 60 --log "$SL_DIR/sess_ryw.log" write)
echo "$out" | grep -q "200 batches acknowledged" || {
	echo "FAIL: the read-your-writes session's batches were not all acknowledged: $out"
	cl_diag
	exit 1
}
lag=$(QKEY="sess,host=h009 v" TRIES=1 query 1 local 0 || true)
for s in 9 0 3; do
	got=$(QKEY="sess,host=h$(printf %03d "$s") v" query 1 sync 0) || true
	[ "$got" = 600 ] || { echo "FAIL: node 1, sync read of series $s right after the session's acks: $got points, 600 written"; exit 1; }
done
"$CTL" --socket "$(cl_sock 3)" call debug_fabric '{"peer":1}' >/dev/null
echo "cluster_read: sync reads on node 1 right after the session's last ack through node 3: 600 points per series (a local read just before: $lag)"
if [ "$PROTOCOL" = multileader ]; then
	cad=$(($(cl_stat 1 reads_cad) + $(cl_stat 2 reads_cad) + $(cl_stat 3 reads_cad)))
	fwd=$(($(cl_stat 1 reads_forwarded) + $(cl_stat 2 reads_forwarded) + $(cl_stat 3 reads_forwarded)))
	[ "$cad" -ge 12 ] || { echo "FAIL: $cad reads went through the protocol's CAD read, 12 expected"; exit 1; }
	[ "$fwd" -eq 0 ] || { echo "FAIL: $fwd reads forwarded; a multileader replica serves its own"; exit 1; }
	sync=$(($(cl_stat 1 reads_sync) + $(cl_stat 2 reads_sync) + $(cl_stat 3 reads_sync)))
	[ "$sync" -ge 15 ] || { echo "FAIL: $sync reads went through the protocol's sync read, 15 expected"; exit 1; }
	echo "cluster_read: $cad durable (CAD) and $sync sync reads, each served by the node's own replica"
	# the safe-delete index: caught up and idle, every replica may compact all it applied
	sd=$(cl_regions 1 "[(r['safe_delete_index'], r['applied_index']) for r in rs]")
	[ "$(cl_regions 1 "all(0 < r['safe_delete_index'] <= r['applied_index'] for r in rs)")" = True ] ||
		{ echo "FAIL: node 1's safe-delete indexes (safe, applied) $sd"; exit 1; }
	echo "cluster_read: node 1's (safe-delete, applied) indexes: $sd"
else
	fwd=$(($(cl_stat 1 reads_forwarded) + $(cl_stat 2 reads_forwarded) + $(cl_stat 3 reads_forwarded)))
	lin=$(($(cl_stat 1 reads_linearizable) + $(cl_stat 2 reads_linearizable) + $(cl_stat 3 reads_linearizable)))
	[ "$fwd" -gt 0 ] || { echo "FAIL: no read was forwarded to a leader on another node"; exit 1; }
	[ "$lin" -ge 24 ] || { echo "FAIL: $lin reads went through a read index, 24 expected"; exit 1; }
	echo "cluster_read: $lin linearizable reads, $fwd of them forwarded to the leader's node"
fi
# An ACK at level 2 means on a majority, also for a multileader region acked on one copy
# by default here (a level-2 write waits for a peer). With every node's fabric frames sent
# 300 ms late (raft: 50 ms, as its leaders step down without answers within an election
# timeout), sessions write through node 3 at level 2 and a node is SIGKILLed right
# after the last ack; every acknowledged point must be on the nodes left:
#  A. points of every region; node 1 killed: on node 2 or node 3;
#  B. node 1 down, points of one region whose home (multileader) or leader (raft) is
#     node 3 only, so that no part of a batch waits for another node; node 3 killed:
#     on node 2. (A batch spanning regions is acked when its slowest part is, and that
#     part's round trip over the delayed link hides the local one.)
delay=$([ "$PROTOCOL" = multileader ] && echo 300 || echo 50)
for i in 1 2 3; do
	for peer in 1 2 3; do
		[ "$peer" = "$i" ] && continue
		"$CTL" --socket "$(cl_sock "$i")" call debug_fabric "{\"peer\":$peer,\"dir\":\"out\",\"delay_ms\":$delay}" >/dev/null
	done
done
# level2 FIRST [REGION]: a session writes points FIRST.. FIRST+2599 (13 series, ts T0 + i;
# with REGION only series of that region) through node 3 at level 2; every batch must
# reach level 2; the series keys go to $SL_DIR/keys_FIRST
level2() {
	local out rg=()
	[ -n "${2:-}" ] && rg=(--region "$2/$REGIONS")
	"$CLIENT" --series 13 ${rg[@]+"${rg[@]}"} keys >"$SL_DIR/keys_$1"
	out=$(ip netns exec "slrd$ID-3" "$CLIENT" --node "$(net 3)1" --points 2600 --series 13 \
		${rg[@]+"${rg[@]}"} --first "$1" --batch 26 --session "$((1000 + $1))" --level 2 \
		--timeout 60 --log "$SL_DIR/sess_l2_$1.log" write)
	echo "$out" | grep -q "100 batches acknowledged at level 2 or above" ||
		{ echo "FAIL: session $1's batches were not all acknowledged at level 2: $out"; exit 1; }
}
# held FIRST WHAT SOCKET...: every point of level2 FIRST is on one of the nodes
held() {
	python3 - "$(dirname "$0")" "$SL_DIR/keys_$1" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from sltest import query_points
keys = [k.rstrip("\n") for k in open(sys.argv[2])]
T0, N, F = 1700000000000000000, 2600, int(sys.argv[3])
held = [set() for _ in keys]
for sock in sys.argv[5:]:
    for s, key in enumerate(keys):
        held[s].update(ts for ts, _ in query_points(sock, key, {"limit": 1000000}))
missing = sum(1 for i in range(F, F + N) if T0 + i not in held[i % len(keys)])
print(f"cluster_read: {sys.argv[4]}: {missing} of {N} points missing")
sys.exit(1 if missing else 0)
PY
}
level2 100000
cl_kill 1
held 100000 "level-2 session A through node 3, node 1 killed at its last ack, on nodes 2 and 3" \
	"$(cl_sock 2)" "$(cl_sock 3)" || exit 1
key=$([ "$PROTOCOL" = multileader ] && echo home || echo leader)
r3=
for _ in $(seq 1 100); do # raft: a region of node 1's waits for its election to end
	r3=$(cl_regions 3 "next((r['id'] for r in rs if r['$key'] == 3), '')")
	[ -n "$r3" ] && break
	sleep 0.1
done
[ -n "$r3" ] || { echo "FAIL: no region led by node 3 with node 1 down: $(cl_regions 3 "[r['$key'] for r in rs]")"; exit 1; }
level2 200000 "$r3"
cl_kill 3
held 200000 "level-2 session B to region $r3 (node 3's) through node 3, node 1 down, node 3 killed at its last ack, on node 2" \
	"$(cl_sock 2)" || exit 1
echo "cluster_read: PASS"

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
# PROTOCOL=multileader: the same cluster with multileader regions acked on 2 of 3
# replicas: durable (CAD) and local reads return every point on every node, each served
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
	CL_ARGS+=(--set regions.protocol=multileader --set regions.multileader_ack_copies=2)
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
echo "$out" | grep -q "200 batches acknowledged" ||
	{ echo "FAIL: the read-your-writes session's batches were not all acknowledged: $out"; exit 1; }
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
	echo "cluster_read: PASS"
	exit 0
fi
fwd=$(($(cl_stat 1 reads_forwarded) + $(cl_stat 2 reads_forwarded) + $(cl_stat 3 reads_forwarded)))
lin=$(($(cl_stat 1 reads_linearizable) + $(cl_stat 2 reads_linearizable) + $(cl_stat 3 reads_linearizable)))
[ "$fwd" -gt 0 ] || { echo "FAIL: no read was forwarded to a leader on another node"; exit 1; }
[ "$lin" -ge 24 ] || { echo "FAIL: $lin reads went through a read index, 24 expected"; exit 1; }
echo "cluster_read: $lin linearizable reads, $fwd of them forwarded to the leader's node"
echo "cluster_read: PASS"

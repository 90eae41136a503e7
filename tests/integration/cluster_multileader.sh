#!/usr/bin/env bash
# cluster_multileader.sh SLUICED PRODUCER VERIFY CONVERGE - multi-leader regions on a
# three-node cluster (cluster_lib.sh, docs/multileader.md), in three runs:
#  A. writes routed to each region's home replica ([regions] multileader_home, the
#     default), acked once durable on 2 replicas, checkpoints every MiB: a producer on
#     every node; node 3 is SIGKILLed under load once it holds images of every region
#     (writes go on: the homes it held move), stays down past its peers' retention (500
#     entries), restarts from its images (with their origin vectors) and WAL, and catches
#     up by merging its peers' snapshots; then the link 1-2 is cut both ways for 2 s.
#     Every node holds every point exactly.
#  B. every replica takes writes itself (multileader_home = false): producers on nodes 1
#     and 2 write the SAME points with different values (a conflict on every point), the
#     link 1-2 cut for 2 s meanwhile. All three nodes end with identical data, each point
#     one of the two values (last writer wins by hybrid clock, then origin node).
#  C. as A, node 3 SIGKILLed under load and its data dir deleted; it starts again with
#     --rejoin (takes no write until its peers told it how far its own stream went, then
#     catches up by snapshot merges): every acknowledged point of all three producers is
#     on every node.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3 CONVERGE=$4
POINTS=${POINTS:-300000} SERIES=${SERIES:-100} BATCH=${BATCH:-500}
NAME=cml$$
# checkpoints every MiB of WAL; a peer more than 500 own entries behind is caught up by a
# snapshot (images over one message travel in chunks)
CL_ARGS=(--set regions.protocol=multileader --set debug.fault_injection=true
	--set regions.multileader_ack_copies=2
	--set wal.checkpoint_mb=1 --set regions.multileader_retention=500)
CL_PROD_ARGS=(--pace-ms 15) # each producer's 600 batches take at least 9 s
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

fault() {
	"$CTL" --socket "$(cl_sock "$1")" call debug_fabric \
		"{\"peer\":$2,\"dir\":\"both\",\"drop_pct\":$3}" >/dev/null
}
cut12() { fault 1 2 "$1"; fault 2 1 "$1"; }
# stop_all: SIGTERM each node (clean stop), then a fresh data dir for the next run
stop_all() {
	local i
	for i in 1 2 3; do
		[ "${CL_PIDS[$i]}" != 0 ] || continue
		kill -TERM "${CL_PIDS[$i]}"
		wait "${CL_PIDS[$i]}" 2>/dev/null || true
		CL_PIDS[$i]=0
	done
	rm -rf "$SL_DIR"/d[123] "$SL_DIR"/fab "$SL_DIR"/acked*.log
}

echo "== run A: writes routed to each region's home, acked on 2 replicas"
for i in 1 2 3; do cl_start "$i"; done
echo "homes: $(cl_regions 1 "[r['home'] for r in rs]"), protocol $(cl_regions 1 "rs[0]['protocol']")"
cl_producers
cl_wait_acks 60
# node 3 killed once it holds images (and their vectors) of every region
for _ in $(seq 1 300); do
	[ "$(cl_regions 3 "all(r['snapshot_index'] > 0 for r in rs)")" = True ] && break
	sleep 0.1
done
[ "$(cl_regions 3 "all(r['snapshot_index'] > 0 for r in rs)")" = True ] ||
	{ echo "FAIL: node 3 took no checkpoint of every region in 30 s"; exit 1; }
vecs=$(ls "$SL_DIR"/d3/snap/region-*.snap.vec | wc -l)
cl_kill 3
echo "node 3 killed after $(cl_acks) acknowledged batches, with images and $vecs vector files"
# writes go on: the homes node 3 held moved (bounded: 30 s)
want=$(($(cl_acks) + 30))
for _ in $(seq 1 300); do [ "$(cl_acks)" -ge "$want" ] && break; sleep 0.1; done
if [ "$(cl_acks)" -lt "$want" ]; then
	echo "FAIL: writes stopped with node 3 down (producers: $(cl_prod_acks))"
	for i in 1 2; do
		echo "node $i: $(cl_regions "$i" "[(r['id'], r['home'], r['peers'], r['applied_index']) for r in rs]")"
		"$CTL" --socket "$(cl_sock "$i")" --json stats | python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print({k: v for k, v in t.items() if v and any(w in k for w in ('fwd', 'ml_', 'fab_msgs', 'gate'))})"
		tail -3 "$SL_DIR/producer$i.log"
	done
	exit 1
fi
echo "writes go on with node 3 down: $(cl_acks) batches (producers: $(cl_prod_acks)); homes seen from node 1: $(cl_regions 1 "[r['home'] for r in rs]")"
sleep 4 # past the peers' retention: node 3 comes back by snapshots
cl_start 3
loaded=$(cl_regions 3 "sum(r['snapshot_index'] > 0 for r in rs)")
[ "$loaded" = "$REGIONS" ] || { echo "FAIL: node 3 restarted with images of $loaded regions"; exit 1; }
b=$(cl_acks)
cut12 100
sleep 2
cut12 0
echo "link 1-2 cut for 2 s: $b -> $(cl_acks) acknowledged batches"
sl_wait_producers
ml_caught_up
cl_verify_all
fwd=$(($(cl_stat 1 fwd_answers) + $(cl_stat 2 fwd_answers) + $(cl_stat 3 fwd_answers)))
remote=$(($(cl_stat 1 ml_entries_remote) + $(cl_stat 2 ml_entries_remote) + $(cl_stat 3 ml_entries_remote)))
refused=$(($(cl_stat 1 ml_entries_refused) + $(cl_stat 2 ml_entries_refused) + $(cl_stat 3 ml_entries_refused)))
[ "$fwd" -gt 0 ] || { echo "FAIL: no write was routed to a home on another node"; exit 1; }
[ "$remote" -gt 0 ] || { echo "FAIL: no replica applied a peer's write"; exit 1; }
[ "$refused" -eq 0 ] || { echo "FAIL: $refused peer entries refused"; exit 1; }
merged=$(cl_stat 3 cons_snapshots_installed)
[ "$merged" -gt 0 ] || { echo "FAIL: node 3 merged no snapshot after being past retention"; exit 1; }
[ "$(cl_stat 3 cons_snapshots_refused)" -eq 0 ] || { echo "FAIL: node 3 refused snapshots"; exit 1; }
echo "run A: $fwd batches routed to their home and answered, $remote peers' entries applied, node 3 merged $merged snapshots"
stop_all

# Under the sanitizers (ASAN_OPTIONS set) run B is left out: the store's last-writer-wins
# rule it checks end to end runs under them in the unit test store_versioned.
if [ -z "${ASAN_OPTIONS:-}" ]; then
	echo "== run B: every replica takes writes; two writers of the same points, values apart"
	CL_ARGS_A=("${CL_ARGS[@]}")
	CL_ARGS+=(--set regions.multileader_home=false)
	for i in 1 2 3; do cl_start "$i"; done
	for p in 1 2; do
		"$PRODUCER" --path "/dev/shm/sluice-$NAME-$p.ingest" --log "$SL_DIR/acked$p.log" \
			--points "$POINTS" --series "$SERIES" --batch "$BATCH" --key-prefix c --timeout 200 \
			--pace-ms 15 --value-offset $((p == 1 ? 0 : 1000000)) >"$SL_DIR/producer$p.log" 2>&1 &
		SL_PROD_PIDS+=($!)
	done
	cl_wait_acks 100
	cut12 100
	sleep 2
	cut12 0
	sl_wait_producers
	ml_caught_up
	python3 "$CONVERGE" --socket "$(cl_sock 1),$(cl_sock 2),$(cl_sock 3)" --points "$POINTS" \
		--series "$SERIES" --key "c,host=h{s:03d} value" --offset 0 --offset 1000000
	fwd=$(($(cl_stat 1 fwd_out) + $(cl_stat 2 fwd_out) + $(cl_stat 3 fwd_out)))
	[ "$fwd" -eq 0 ] || { echo "FAIL: $fwd batches forwarded although every replica takes writes"; exit 1; }
	stop_all
	CL_ARGS=("${CL_ARGS_A[@]}") # routed to homes again
fi

echo "== run C: node 3 loses its data dir and rejoins (--rejoin)"
for i in 1 2 3; do cl_start "$i"; done
cl_producers
cl_wait_acks 150
cl_kill 3
rm -rf "$SL_DIR/d3"
echo "node 3 killed after $(cl_acks) acknowledged batches (producers: $(cl_prod_acks)); its data dir deleted"
sleep 1
CL_REJOIN=3
cl_start 3
grep -q "rejoining:" "$SL_DIR/node3.log" || { echo "FAIL: node 3 did not start rejoining"; exit 1; }
sl_wait_producers
ml_caught_up
for _ in $(seq 1 300); do [ -e "$SL_DIR/d3/REJOIN" ] || break; sleep 0.1; done
[ ! -e "$SL_DIR/d3/REJOIN" ] || { echo "FAIL: node 3 still rejoining: $(cl_regions 3 "[r['rejoining'] for r in rs]")"; exit 1; }
cl_verify_all
merged=$(cl_stat 3 cons_snapshots_installed)
[ "$merged" -gt 0 ] || { echo "FAIL: node 3 rejoined without a snapshot merge"; exit 1; }
echo "run C: node 3 rejoined by $merged snapshot merges; every acknowledged point on every node"
echo "cluster_multileader: PASS"

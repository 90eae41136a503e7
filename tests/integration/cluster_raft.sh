#!/usr/bin/env bash
# cluster_raft.sh SLUICED PRODUCER VERIFY - three sluiced nodes on one host, linked by the
# fabric over memif, every region a 3-replica raft group. A producer writes through the
# shm ring of each node (points of regions led elsewhere are forwarded to the leader);
# the node leading region 0 is SIGKILLed under load and restarted from its data dir (its
# producer waits and resubmits what was not acknowledged). Checks: the regions it led get
# a new leader and writes go on meanwhile, it catches up on its return, and every point
# reads back exactly (nothing missing, twice or unexpected) from every one of the nodes.
set -euo pipefail
SLUICED=$1 PRODUCER=$2 VERIFY=$3
CTL=$(dirname "$SLUICED")/sluicectl
POINTS=${POINTS:-300000} SERIES=${SERIES:-100} BATCH=${BATCH:-500} REGIONS=4
NAME=clu$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
PIDS=(0 0 0 0)
cleanup_nodes() {
	for i in 1 2 3; do
		[ "${PIDS[$i]}" != 0 ] && kill -9 "${PIDS[$i]}" 2>/dev/null || true
		rm -f "/dev/shm/sluice-$NAME-$i.ingest" "/dev/shm/sluice-$NAME-$i.stats"
	done
	sl_cleanup
}
trap cleanup_nodes EXIT

sock() { echo "$DIR/d$1/sluiced.sock"; }
start() { # start I: node I, bounded wait for its ctl socket
	local i=$1
	rm -f "$(sock "$i")"
	"$SLUICED" --data-dir "$DIR/d$i" --name "$NAME-$i" --workers 2 --regions $REGIONS \
		--set regions.protocol=raft --set node.id="$i" --set cluster.nodes=3 \
		--set cluster.fabric_dir="$DIR/fab" --set regions.log_keep_mb=64 >>"$DIR/node$i.log" 2>&1 &
	PIDS[$i]=$!
	for _ in $(seq 1 600); do
		[ -S "$(sock "$i")" ] && return 0
		kill -0 "${PIDS[$i]}" 2>/dev/null || { cat "$DIR/node$i.log"; exit 1; }
		sleep 0.05
	done
	echo "FAIL: node $i did not come up"; tail -20 "$DIR/node$i.log"; exit 1
}
# regions I EXPR: a python expression over rs = node I's regions, printed
regions() {
	"$CTL" --socket "$(sock "$1")" --json regions |
		python3 -c "import json,sys; rs=json.load(sys.stdin)['regions']; print($2)"
}
# wait_leaders I NOT: bounded, until every region seen from node I has a leader other than NOT
wait_leaders() {
	for _ in $(seq 1 200); do
		[ "$(regions "$1" "all(r['leader'] not in (None, $2) for r in rs)")" = True ] && return 0
		sleep 0.1
	done
	echo "FAIL: no leader for every region (node $1):"; regions "$1" rs; exit 1
}
stat() { "$CTL" --socket "$(sock "$1")" --json stats | python3 -c "import json,sys; r=json.load(sys.stdin); print(r['totals']['$2'])"; }

for i in 1 2 3; do start "$i"; done
wait_leaders 1 0
echo "leaders: $(regions 1 "[r['leader'] for r in rs]")"
for p in 1 2 3; do
	"$PRODUCER" --path "/dev/shm/sluice-$NAME-$p.ingest" --log "$DIR/acked$p.log" \
		--points "$POINTS" --series "$SERIES" --batch "$BATCH" --key-prefix "p$p" \
		--timeout 200 >"$DIR/producer$p.log" 2>&1 &
	SL_PROD_PIDS+=($!)
done
acks() { cat "$DIR"/acked[123].log 2>/dev/null | wc -l; }
# kill the leader of region 0 under load (bounded: 30 s for the first acks)
for _ in $(seq 1 300); do
	[ "$(acks)" -gt 60 ] && break
	sleep 0.1
done
K=$(regions 1 "rs[0]['leader']")
A=$(( K % 3 + 1 )) B=$(( (K + 1) % 3 + 1 ))
ledk=$(regions "$A" "sum(r['leader'] == $K for r in rs)")
kill -9 "${PIDS[$K]}"; wait "${PIDS[$K]}" 2>/dev/null || true; PIDS[$K]=0
echo "node $K killed after $(acks) acknowledged batches; it led $ledk of $REGIONS regions"
wait_leaders "$A" "$K"
wait_leaders "$B" "$K"
before=$(acks)
sleep 2
after=$(acks)
[ "$after" -gt "$before" ] || { echo "FAIL: no write acknowledged in the 2 s after the new elections"; exit 1; }
echo "writes go on with node $K down: $before -> $after acknowledged batches in 2 s; leaders now $(regions "$A" "[r['leader'] for r in rs]")"
start "$K"
sl_wait_producers
# node K catches up: every region applied as far as node A committed (bounded: 60 s)
for _ in $(seq 1 600); do
	c1=$(regions "$A" "[r['commit_index'] for r in rs]")
	a3=$(regions "$K" "[r['applied_index'] for r in rs]")
	a2=$(regions "$B" "[r['applied_index'] for r in rs]")
	[ "$a3" = "$c1" ] && [ "$a2" = "$c1" ] && break
	sleep 0.1
done
if [ "$a3" != "$c1" ]; then
	echo "FAIL: node $K did not catch up: applied $a3, committed $c1"
	for i in 1 2 3; do
		echo "node $i:"; tail -5 "$DIR/node$i.log"
		"$CTL" --socket "$(sock "$i")" --json stats | python3 -c "import json,sys; t=json.load(sys.stdin)['totals']; print({k: v for k, v in t.items() if (k.startswith('fab') or k.startswith('fwd') or k.startswith('cons')) and v})"
	done
	exit 1
fi
for i in 1 2 3; do
	for p in 1 2 3; do
		python3 "$VERIFY" --socket "$(sock "$i")" --points "$POINTS" --series "$SERIES" \
			--batch "$BATCH" --key "p$p,host=h{s:03d} value" --exact |
			sed "s/^/node $i, producer $p: /"
		[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
	done
done
fwd=$(( $(stat 1 fwd_answers) + $(stat 2 fwd_answers) + $(stat 3 fwd_answers) ))
[ "$fwd" -gt 0 ] || { echo "FAIL: nothing was forwarded to a leader on another node"; exit 1; }
for i in 1 2 3; do
	bad=$(stat "$i" fab_drop_crc)
	[ "$bad" -eq 0 ] || { echo "FAIL: node $i dropped $bad damaged fabric frames"; exit 1; }
done
echo "cluster_raft: $fwd forwarded batches answered; node $K caught up to $c1"
echo "cluster_raft: PASS"

#!/usr/bin/env bash
# workers_change.sh SLUICED SESS_CLIENT VERIFY SLUICECTL - changing [eal] workers on an
# existing data dir. A session client (UDP through a tap in a test namespace) writes with
# acknowledgements and retransmissions while sluiced, started with 2 workers, is killed
# with SIGKILL and restarted with 3, then killed again and restarted with 2. Each restart
# must start (the regions stay on the cores of their lineage, node.meta's workers) and say
# that every core took the old cores' sessions; then sess_client replays the session's
# first 30 seqs from 6 new sockets (6 source ports: most reach another core's table than
# the writer's did), and each must be answered DUPLICATE, never applied. The client
# carries on with the same session; the node holds every batch acknowledged before either
# kill, and at the end every point exactly once. Then a data dir made with 4 workers and
# 4 regions is refused at 2 workers, naming the regions on cores 2 and 3 and how to move
# them; at 4 workers again it starts.
set -euo pipefail
SLUICED=$1 CLIENT=$2 VERIFY=$3 CTL=$4
[ "$(id -u)" -eq 0 ] || { echo "workers_change: needs root for tap and netns: SKIP"; exit 77; }
ID=$$
NAME=wchg$ID TAP=slwc$((ID % 100000)) NS=slwc$ID
NET=198.18.$((ID % 250)).
POINTS=${POINTS:-600000} K1=800 K2=1500 SERIES=40 BATCH=30 SESSION=$((ID * 1000 + 7))
. "$(dirname "$0")/lib.sh"
start() { # start WORKERS
	sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" \
		--name "$NAME" --workers "$1" --set "net.ipv4=${NET}1" --set wal.checkpoint_mb=4
	sl_netns_tap "$NS" "$TAP" "$NET"
	ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
}
acked() { cat "$SL_DIR/acked.log" 2>/dev/null | wc -l; }
# kill_after N: bounded, until the client has N batches acknowledged, then SIGKILL; the
# client must still be writing then
kill_after() {
	for _ in $(seq 1 3000); do
		[ "$(acked)" -ge "$1" ] || ! kill -0 "$PROD_PID" 2>/dev/null && break
		sleep 0.01
	done
	kill -0 "$PROD_PID" 2>/dev/null && [ "$(acked)" -lt $((POINTS / BATCH)) ] ||
		{ echo "FAIL: the client was done before the kill (N = $1): lengthen its load"; exit 1; }
	sl_kill_node
	cp "$SL_DIR/acked.log" "$SL_DIR/acked-before.log"
	echo "killed sluiced after $(wc -l <"$SL_DIR/acked-before.log") acknowledged batches"
}
# restarted FROM TO: started with TO workers, said that every core took the old cores'
# sessions, and replays of the session's first 30 seqs from 6 new sockets (other source
# ports, so mostly other cores' tables) are each answered DUPLICATE
restarted() {
	start "$2"
	grep -q "workers $1 -> $2: every core took the sessions of cores" "$SL_DIR/node.log" ||
		{ echo "FAIL: no session hand-over logged for $1 -> $2"; tail -20 "$SL_DIR/node.log"; exit 1; }
	w=$("$CTL" --socket "$SL_SOCK" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')
	[ "$w" = "$2" ] || { echo "FAIL: status says $w workers, $2 asked"; exit 1; }
	for k in 1 2 3 4 5 6; do # a new socket each: another source port
		ip netns exec "$NS" "$CLIENT" --node "${NET}1" --session "$SESSION" replay 30 \
			>"$SL_DIR/replay.log" 2>&1 ||
			{ echo "FAIL: replay $k after $1 -> $2 workers:"; grep -v DUPLICATE "$SL_DIR/replay.log"; exit 1; }
	done
	tail -1 "$SL_DIR/replay.log"
}

start 2
ip netns exec "$NS" "$CLIENT" --node "${NET}1" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --session "$SESSION" --timeout 180 --log "$SL_DIR/acked.log" write \
	>"$SL_DIR/client.log" 2>&1 &
PROD_PID=$!
kill_after $K1
restarted 2 3
kill_after $(($(acked) + K2))
restarted 3 2
# every batch acknowledged before either kill (the second's log holds the first's)
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --acked "$SL_DIR/acked-before.log"
sl_wait_client "$SL_DIR/client.log"
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --exact
echo "workers_change: 2 -> 3 -> 2 workers under a session client: every point once, 6 x 30 replayed seqs answered DUPLICATE after each restart"
grep -h "workers .* -> .*: every core took" "$SL_DIR/node.log"
sl_stop_node

echo "== fewer workers than the regions' cores: refused, then started with enough"
D4=$SL_DIR/data4 SL_SOCK=$SL_DIR/data4/sluiced.sock
sl_start_node "$SLUICED" --data-dir "$D4" --name "$NAME" --workers 4 --regions 4
sl_stop_node
if "$SLUICED" --data-dir "$D4" --name "$NAME" --workers 2 --regions 4 >"$SL_DIR/refused.log" 2>&1; then
	echo "FAIL: a data dir whose regions 2 and 3 run on cores 2 and 3 started with 2 workers"
	exit 1
fi
grep -q "2 region(s) run on worker cores this node no longer has (2 workers): 2 (core 2), 3 (core 3)" \
	"$SL_DIR/refused.log" || { echo "FAIL: refusal unclear:"; cat "$SL_DIR/refused.log"; exit 1; }
grep -q "sluicectl region move-core 2 CORE" "$SL_DIR/refused.log" ||
	{ echo "FAIL: the refusal does not say how to move them:"; cat "$SL_DIR/refused.log"; exit 1; }
grep -h "no longer has" "$SL_DIR/refused.log"
grep -q "^workers=4$" "$D4/node.meta" && ! grep -q workers_now "$D4/node.meta" ||
	{ echo "FAIL: a refused start changed node.meta:"; cat "$D4/node.meta"; exit 1; }
# a damaged node.meta (a worker count no build allows) is refused, not scanned for
cp "$D4/node.meta" "$SL_DIR/meta.ok"
printf 'workers_now=4000000000\n' >>"$D4/node.meta"
if timeout 60 "$SLUICED" --data-dir "$D4" --name "$NAME" --workers 4 --regions 4 >"$SL_DIR/bad.log" 2>&1; then
	echo "FAIL: started on a node.meta with workers_now=4000000000"; exit 1
fi
grep -q "unreadable node metadata" "$SL_DIR/bad.log" || { echo "FAIL: damaged node.meta:"; cat "$SL_DIR/bad.log"; exit 1; }
cp "$SL_DIR/meta.ok" "$D4/node.meta"
sl_start_node "$SLUICED" --data-dir "$D4" --name "$NAME" --workers 4 --regions 4
sl_stop_node
echo "workers_change: PASS"

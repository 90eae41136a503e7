#!/usr/bin/env bash
# sess_restart.sh SLUICED SESS_CLIENT VERIFY SLUICECTL - the session protocol over UDP
# through a tap in a test namespace: first the protocol checks (unknown session, replayed
# and far-future sequence numbers, another cluster's frame); then a client writes 200,000
# points with acknowledgements and retransmissions while sluiced is killed with SIGKILL and
# restarted; the client carries on with the same session. Every acknowledged batch must be
# there, and at the end every point exactly once. The node must have recognised retries of
# batches that were durable before the kill (session state recovered from the WAL).
set -euo pipefail
SLUICED=$1 CLIENT=$2 VERIFY=$3 CTL=$4
[ "$(id -u)" -eq 0 ] || { echo "sess_restart: needs root for tap and netns: SKIP"; exit 77; }
ID=$$
NAME=sess$ID TAP=slss$((ID % 100000)) NS=slss$ID
NET=198.18.$((ID % 250)).
POINTS=200000 SERIES=50 BATCH=30
. "$(dirname "$0")/lib.sh"
start() {
	sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" \
		--name "$NAME" --workers 2 --set "net.ipv4=${NET}1" --set wal.checkpoint_mb=4
	sl_netns_tap "$NS" "$TAP" "$NET"
	ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
}
start
echo "== protocol checks"
ip netns exec "$NS" "$CLIENT" --node "${NET}1" probe
echo "== writer with a SIGKILL and a restart of the node"
ip netns exec "$NS" "$CLIENT" --node "${NET}1" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --timeout 180 --log "$SL_DIR/acked.log" write >"$SL_DIR/client.log" 2>&1 &
PROD_PID=$!
for _ in $(seq 1 3000); do
	[ -f "$SL_DIR/acked.log" ] && [ "$(wc -l <"$SL_DIR/acked.log")" -ge 2000 ] && break
	sleep 0.01
done
sl_kill_node
cp "$SL_DIR/acked.log" "$SL_DIR/acked-before.log"
echo "killed sluiced after $(wc -l <"$SL_DIR/acked-before.log") acknowledged batches"
start
grep -h "WAL" "$SL_DIR/node.log" | tail -2 || true
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --acked "$SL_DIR/acked-before.log"
sl_wait_client "$SL_DIR/client.log"
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --exact
# reads over the same protocol: sluicectl query --addr (UDP READ with continuation)
n=$(ip netns exec "$NS" "$CTL" --json query 'sess,host=h007 v' --addr "${NET}1" |
	python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r["points"]))')
[ "$n" -eq $((POINTS / SERIES)) ] || { echo "FAIL: session READ gave $n points, $((POINTS / SERIES)) expected"; exit 1; }
echo "session READ via sluicectl query --addr: $n points of sess,host=h007 v"
"$CTL" --socket "$SL_SOCK" stats | grep -E "^(counter|sess_batches|sess_duplicates|sess_in_flight|sess_unknown|sess_acks) "
sl_stop_node
echo "sess_restart: PASS"

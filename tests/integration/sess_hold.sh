#!/usr/bin/env bash
# sess_hold.sh SLUICED SESS_CLIENT VERIFY SLUICECTL - session acknowledgements never run
# ahead of durability when a session's batches complete out of order. Two workers; every
# batch is one point, so a batch lives on the core that owns its series. The core that does
# not receive the session's datagrams is held back (debug_hold_core, a stand-in for a long
# checkpoint), while the receiving core completes the later batches of its own series.
# First the core is released (the held completions must be acknowledged in order), then
# held again and the node is killed with SIGKILL: every acknowledged batch must be there
# after the restart, and the client (retrying what was lost) must end with every point once.
set -euo pipefail
SLUICED=$1 CLIENT=$2 VERIFY=$3 CTL=$4
[ "$(id -u)" -eq 0 ] || { echo "sess_hold: needs root for tap and netns: SKIP"; exit 77; }
ID=$$
NAME=sesshold$ID TAP=slsh$((ID % 100000)) NS=slsh$ID
NET=198.19.$((ID % 250)).
POINTS=30000 SERIES=50 BATCH=1
. "$(dirname "$0")/lib.sh"
start() {
	sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" \
		--name "$NAME" --workers 2 --set "net.ipv4=${NET}1" \
		--set debug.fault_injection=true
	sl_netns_tap "$NS" "$TAP" "$NET"
	ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
}
acked() { if [ -f "$SL_DIR/acked.log" ]; then wc -l <"$SL_DIR/acked.log"; else echo 0; fi; }
# wait_for SECONDS CONDITION: until it holds, at most SECONDS (the caller checks again)
wait_for() {
	for _ in $(seq 1 $(($1 * 20))); do
		eval "$2" && return 0
		sleep 0.05
	done
	return 0
}

start
ip netns exec "$NS" "$CLIENT" --node "${NET}1" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --timeout 240 --log "$SL_DIR/acked.log" write >"$SL_DIR/client.log" 2>&1 &
PROD_PID=$!
wait_for 60 '[ "$(acked)" -ge 200 ]'
[ "$(acked)" -ge 200 ] || { echo "FAIL: the writer does not get going"; cat "$SL_DIR/client.log"; exit 1; }
RX=$(sl_stat "max(range(len(r['cores'])), key=lambda c: r['cores'][c]['sess_batches'])")
HELD=$((1 - RX))
echo "session received on core $RX; holding core $HELD"

# While the core is held, the batches of its series wait; those of the receiving core's
# series complete. Acks must stop at the first waiting batch (the client's window, 32, then
# fills): without that rule they run on, cumulative, over batches that are not durable. The
# stop also shows the scenario happened (a batch of the held core was in flight).
# hold_phase: hold, then wait (bounded) for acks to run 100 batches ahead, which they must not
hold_phase() {
	sl_hold "$HELD" true
	a0=$(acked)
	wait_for 2 '[ "$(acked)" -ge $((a0 + 100)) ]'
	a1=$(acked)
	echo "acked: $a0 when core $HELD was held, $a1 after"
	[ "$a0" -lt "$POINTS" ] || { echo "FAIL: the writer finished before the hold"; exit 1; }
	[ "$a1" -lt $((a0 + 100)) ] || {
		echo "FAIL: acks ran on while a batch waited on the held core"; exit 1; }
}
echo "== hold, then release: the held completions are acknowledged in order"
hold_phase
sl_hold "$HELD" false
wait_for 60 '[ "$(acked)" -ge $((a1 + 100)) ]'
a2=$(acked)
echo "acked: $a2 after the release"
[ "$a2" -ge $((a1 + 100)) ] || { echo "FAIL: no progress after the release"; exit 1; }

echo "== hold again, then SIGKILL"
hold_phase
held=$(sl_stat 'r["totals"]["sess_held"]')
sl_kill_node
cp "$SL_DIR/acked.log" "$SL_DIR/acked-before.log"
echo "killed sluiced after $(wc -l <"$SL_DIR/acked-before.log") acknowledged batches" \
	"($held completions held for an earlier batch so far)"
start
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --acked "$SL_DIR/acked-before.log"
sl_wait_client "$SL_DIR/client.log"
# a retry of a batch lost in the kill must be applied, not answered DUPLICATE
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --exact
[ "$held" -ge 1 ] || { echo "FAIL: no batch completed before an earlier one"; exit 1; }
sl_stop_node
echo "sess_hold: PASS"

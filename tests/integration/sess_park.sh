#!/usr/bin/env bash
# sess_park.sh SLUICED SESS_CLIENT VERIFY SLUICECTL - the network door parks a frame whose
# points cannot all be routed and resumes it next round: never dropped once partly taken,
# never accepted twice. Two workers, a cross-core message pool of 2 ([debug] xmsg_pool),
# the core that does not receive the session held now and then: the receiving core runs
# out of routing room mid-batch and keeps running rounds meanwhile (ctl answered). The
# session client ends with every point stored exactly once. Then line protocol datagrams:
# parked mid-line, every point taken is stored once.
set -euo pipefail
SLUICED=$1 CLIENT=$2 VERIFY=$3 CTL=$4
[ "$(id -u)" -eq 0 ] || { echo "sess_park: needs root for tap and netns: SKIP"; exit 77; }
ID=$$
NAME=sesspark$ID TAP=slsp$((ID % 100000)) NS=slsp$ID
NET=198.19.$(((ID + 97) % 250)).
POINTS=200000 SERIES=64 BATCH=30
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" \
	--name "$NAME" --workers 2 --set "net.ipv4=${NET}1" \
	--set debug.fault_injection=true --set debug.xmsg_pool=2
sl_netns_tap "$NS" "$TAP" "$NET"
ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
acked() { if [ -f "$SL_DIR/acked.log" ]; then wc -l <"$SL_DIR/acked.log"; else echo 0; fi; }

ip netns exec "$NS" "$CLIENT" --node "${NET}1" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --timeout 240 --log "$SL_DIR/acked.log" write >"$SL_DIR/client.log" 2>&1 &
PROD_PID=$!
# the session lands on one worker (the tap has a queue per worker and spreads flows)
for _ in $(seq 1 200); do
	[ "$(sl_stat 'r["totals"]["sess_batches"]')" -ge 1 ] && break
	sleep 0.05
done
RX=$(sl_stat "max(range(len(r['cores'])), key=lambda c: r['cores'][c]['sess_batches'])")
HELD=$((1 - RX))
# The other core held, released, held again (bounded) until the receiving core parks a
# frame: every batch has points of both cores; the first round that routes some to the
# held core puts one message in its ring, the next such round takes the other for the
# held core's points and finds none left for its own.
for _ in $(seq 1 40); do
	sl_hold "$HELD" true
	sleep 0.3
	timeout 30 "$CTL" --socket "$SL_SOCK" regions >/dev/null || {
		echo "FAIL: core $RX did not answer a ctl request while core $HELD was held"; exit 1; }
	sl_hold "$HELD" false
	sleep 0.1
	[ "$(sl_stat "r['cores'][$RX]['net_parked']")" -ge 1 ] && break
done
echo "session on core $RX: parked frames $(sl_stat "r['cores'][$RX]['net_parked']"), route_no_room" \
	"$(sl_stat "r['cores'][$RX]['route_no_room']"), acked batches $(acked) so far"
sl_wait_client "$SL_DIR/client.log"
parked=$(sl_stat "r['cores'][$RX]['net_parked']")
[ "$parked" -ge 1 ] || {
	echo "FAIL: no frame was parked: the scenario did not happen"
	"$CTL" --socket "$SL_SOCK" stats | grep -vE " 0 +0 +0$"; exit 1; }
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --exact
applied=$(sl_stat 'r["totals"]["points_applied"]')
[ "$applied" -eq "$POINTS" ] || { echo "FAIL: $applied points applied, $POINTS sent once each"; exit 1; }

# The line protocol door parks the same way, mid-line: a datagram's lines (three fields,
# three points each) resume at the line and field where routing stopped. No acks here: a
# frame the kernel drops never counts; every point counted as taken (lp_points) is stored
# once, and every line is counted once.
lp0=$(sl_stat 'r["totals"]["lp_points"]') ap0=$(sl_stat 'r["totals"]["points_applied"]')
pk0=$(sl_stat 'r["totals"]["net_parked"]')
ip netns exec "$NS" python3 - "${NET}1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in range(3000):
    lines = "".join(f"lp,host=h{(d * 10 + i) % 64:02d} a={i}i,b=2i,c=3i {1700000000000000000 + d * 10 + i}\n"
                    for i in range(10))
    s.sendto(lines.encode(), (sys.argv[1], 8089))
    if d % 50 == 49:
        time.sleep(0.002)
PY
prev=-1
for _ in $(seq 1 100); do
	now=$(sl_stat 'r["totals"]["lp_points"]')
	[ "$now" = "$prev" ] && break
	prev=$now
	sleep 0.2
done
lp=$(($(sl_stat 'r["totals"]["lp_points"]') - lp0))
ap=$(($(sl_stat 'r["totals"]["points_applied"]') - ap0))
pk=$(($(sl_stat 'r["totals"]["net_parked"]') - pk0))
lines=$(sl_stat 'r["totals"]["lp_lines"]')
echo "line protocol: $lines lines, $lp points taken, $ap applied, $pk frames parked"
[ "$lp" -gt 0 ] && [ "$lp" -le 90000 ] && [ "$lp" -eq $((lines * 3)) ] || {
	echo "FAIL: $lp points counted for $lines lines (3 each, at most 90000 sent)"; exit 1; }
[ "$ap" -eq "$lp" ] || { echo "FAIL: $ap points applied, $lp taken"; exit 1; }
[ "$pk" -ge 1 ] || { echo "FAIL: no line protocol frame was parked: the scenario did not happen"; exit 1; }
sl_stop_node
echo "sess_park: PASS"

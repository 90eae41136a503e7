#!/usr/bin/env bash
# malformed.sh SLUICED SLUICECTL CLIENT - sluiced on a tap device moved into a namespace
# this test creates; malformed.py sends hostile frames and datagrams from inside it. The
# node must keep serving, store every valid point and count each bad case by reason.
set -euo pipefail
SLUICED=$1 CTL=$2 CLIENT=$3
if [ "$(id -u)" -ne 0 ]; then echo "malformed: needs root for tap and netns: SKIP"; exit 77; fi
ID=$$
NS=slmal$ID TAP=slmal$((ID % 100000)) NAME=mal$ID
NET=198.19.$((ID % 250)).
DIR=$(mktemp -d /tmp/sluice-mal.XXXXXX)
SOCK=$DIR/data/sluiced.sock
NODE_PID=
cleanup() {
	[ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	ip link del "$TAP" 2>/dev/null || true
	rm -rf "$DIR" "/dev/shm/sluice-$NAME.ingest" "/dev/shm/sluice-$NAME.stats"
}
trap cleanup EXIT
"$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$DIR/data" --name "$NAME" --workers 1 \
	--set "net.ipv4=${NET}1" >"$DIR/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 200); do
	[ -S "$SOCK" ] && break
	kill -0 "$NODE_PID" 2>/dev/null || { cat "$DIR/node.log"; exit 1; }
	sleep 0.05
done
[ -S "$SOCK" ] || { echo "sluiced did not come up"; cat "$DIR/node.log"; exit 1; }
ip netns add "$NS"
ip link set "$TAP" netns "$NS"
ip -n "$NS" addr add "${NET}2/24" dev "$TAP"
ip -n "$NS" link set "$TAP" up
ip -n "$NS" link set lo up
ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
ip netns exec "$NS" /usr/bin/python3 "$CLIENT" "$TAP" "${NET}1" "${NET}2" "$SOCK"
"$CTL" --socket "$SOCK" ping >/dev/null
kill -TERM "$NODE_PID"; wait "$NODE_PID"; NODE_PID=
echo "malformed: PASS"

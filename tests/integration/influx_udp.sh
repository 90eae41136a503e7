#!/usr/bin/env bash
# influx_udp.sh SLUICED SLUICECTL CLIENT - sluiced on a DPDK tap device that this test
# moves into a network namespace it creates: a real InfluxDB client (Debian's
# python3-influxdb) in the namespace writes line protocol over UDP, every point reads
# back; ARP and ICMP echo answered. The namespace, the tap and the node are removed even
# when the test fails. Addresses live only inside the namespace (198.18.0.0/15 is the
# benchmarking range).
set -euo pipefail
SLUICED=$1 CTL=$2 CLIENT=$3
if [ "$(id -u)" -ne 0 ]; then echo "influx_udp: needs root for tap and netns: SKIP"; exit 77; fi
if ! /usr/bin/python3 -c 'import influxdb' 2>/dev/null; then
	echo "influx_udp: python3-influxdb missing (scripts/deps.sh installs it)"; exit 1
fi
ID=$$
NS=slns$ID TAP=sltap$((ID % 100000)) NAME=influx$ID
NET=198.18.$((ID % 250)).
DIR=$(mktemp -d /tmp/sluice-influx.XXXXXX)
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
ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 "${NET}1"
ip netns exec "$NS" /usr/bin/python3 "$CLIENT" "${NET}1" "$SOCK"
"$CTL" --socket "$SOCK" stats | grep -E "^(counter|pkts_rx|pkts_tx|arp_replies|icmp_replies|lp_lines|lp_points|points_applied) "
icmp=$("$CTL" --socket "$SOCK" --json stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["icmp_replies"])')
[ "$icmp" -ge 3 ] || { echo "FAIL: $icmp ICMP echo replies counted, 3 expected"; exit 1; }
kill -TERM "$NODE_PID"; wait "$NODE_PID"; NODE_PID=
echo "influx_udp: PASS"

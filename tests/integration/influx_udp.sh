#!/usr/bin/env bash
# influx_udp.sh SLUICED SLUICECTL CLIENT - sluiced on a DPDK tap device that this test
# moves into a network namespace it creates: a real InfluxDB client (Debian's
# python3-influxdb) in the namespace writes line protocol over UDP, every point reads
# back; ARP and ICMP echo answered. The namespace, the tap and the node are removed even
# when the test fails. Addresses live only inside the namespace (198.18.0.0/15 is the
# benchmarking range).
set -euo pipefail
SLUICED=$1 CTL=$2 CLIENT=$3
[ "$(id -u)" -eq 0 ] || { echo "influx_udp: needs root for tap and netns: SKIP"; exit 77; }
if ! /usr/bin/python3 -c 'import influxdb' 2>/dev/null; then
	echo "influx_udp: python3-influxdb missing (scripts/deps.sh installs it)"; exit 1
fi
ID=$$
NAME=influx$ID
NET=198.18.$((ID % 250)).
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --vdev "net_tap0,iface=sltap$((ID % 100000))" -- --data-dir "$SL_DIR/data" \
	--name "$NAME" --workers 1 --set "net.ipv4=${NET}1"
sl_netns_tap "slns$ID" "sltap$((ID % 100000))" "$NET"
NS=$SL_NS SOCK=$SL_SOCK
ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 "${NET}1"
ip netns exec "$NS" /usr/bin/python3 "$CLIENT" "${NET}1" "$SOCK"
"$CTL" --socket "$SOCK" stats | grep -E "^(counter|pkts_rx|pkts_tx|arp_replies|icmp_replies|lp_lines|lp_points|points_applied) "
icmp=$("$CTL" --socket "$SOCK" --json stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["icmp_replies"])')
[ "$icmp" -ge 3 ] || { echo "FAIL: $icmp ICMP echo replies counted, 3 expected"; exit 1; }
sl_stop_node
echo "influx_udp: PASS"

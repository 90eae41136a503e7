#!/usr/bin/env bash
# frag_udp.sh SLUICED SLUICECTL INFLUX_CLIENT SESS_CLIENT VERIFY - datagrams larger than the
# MTU: sluiced (two workers) on a tap that this test moves into a namespace it creates;
# there python3-influxdb writes line protocol in datagrams of 8 KiB and more, and
# sess_client writes session batches of about 8 KB; the kernel sends them as IPv4 fragments
# (MTU 1500). Every point must read back, the reassembly counters must have moved and no
# fragment may have been lost. Namespace, tap and node are removed even when it fails.
set -euo pipefail
SLUICED=$1 CTL=$2 CLIENT=$3 SESS=$4 VERIFY=$5
[ "$(id -u)" -eq 0 ] || { echo "frag_udp: needs root for tap and netns: SKIP"; exit 77; }
if ! /usr/bin/python3 -c 'import influxdb' 2>/dev/null; then
	echo "frag_udp: python3-influxdb missing (scripts/deps.sh installs it)"; exit 1
fi
ID=$$
NAME=frag$ID
TAP=slfr$((ID % 100000))
NET=198.19.$((ID % 250)).
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" \
	--name "$NAME" --workers 2 --set "net.ipv4=${NET}1"
sl_netns_tap "slfr$ID" "$TAP" "$NET"
NS=$SL_NS SOCK=$SL_SOCK
ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
counter() {
	"$CTL" --socket "$SOCK" --json stats |
		/usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['totals']['$1'])"
}
echo "== line protocol: 100 datagrams of 85 points (>= 8 KiB each)"
ip netns exec "$NS" /usr/bin/python3 "$CLIENT" "${NET}1" "$SOCK" 85 8192
echo "== session protocol: 200-point batches"
ip netns exec "$NS" "$SESS" --node "${NET}1" --points 20000 --series 50 --batch 200 \
	--timeout 60 --log "$SL_DIR/acked.log" write | tee "$SL_DIR/sess.out"
rtx=$(sed -n 's/.* \([0-9]*\) retransmits.*/\1/p' "$SL_DIR/sess.out")
[ -n "$rtx" ] || { echo "FAIL: sess_client printed no retransmit count"; exit 1; }
/usr/bin/python3 "$VERIFY" --socket "$SOCK" --points 20000 --series 50 --batch 200 \
	--key 'sess,host=h{s:03d} v' --exact
"$CTL" --socket "$SOCK" stats |
	grep -E "^(counter|pkts_rx|frag_[a-z_]+|sess_handoffs|handoff_full|drop_[a-z_]*fragment[a-z_]*) "
# 100 line protocol datagrams of 6 fragments or more, 100 session batches of 2 or more
re=$(counter frag_reassembled) rx=$(counter frag_rx)
[ "$re" -ge 200 ] || { echo "FAIL: $re datagrams reassembled, 200 expected at least"; exit 1; }
[ "$rx" -ge 800 ] || { echo "FAIL: $rx fragments counted, 800 expected at least"; exit 1; }
# A datagram whose fragments the tap dropped (a slow node: sanitizers, a loaded host) is
# retransmitted by the client and its leftovers expire: expiries are then expected, and
# only then; the exact read-back above shows that nothing was lost either way.
ex=$(counter frag_expired)
if [ "$rtx" -eq 0 ] && [ "$ex" -ne 0 ]; then
	echo "FAIL: frag_expired = $ex with no retransmission"; exit 1
fi
echo "frag_expired $ex with $rtx retransmits"
for c in frag_table_full frag_bad handoff_full drop_fragment drop_bad_fragment \
	drop_fragment_oversize; do
	v=$(counter "$c")
	[ "$v" -eq 0 ] || { echo "FAIL: $c = $v, 0 expected"; exit 1; }
done
sl_stop_node
echo "frag_udp: PASS"

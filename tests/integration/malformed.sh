#!/usr/bin/env bash
# malformed.sh SLUICED SLUICECTL CLIENT SESS_CLIENT - sluiced on a tap device moved into a namespace
# this test creates; malformed.py sends hostile frames and datagrams from inside it. The
# node must keep serving, store every valid point and count each bad case by reason.
set -euo pipefail
SLUICED=$1 CTL=$2 CLIENT=$3 SESS=$4
[ "$(id -u)" -eq 0 ] || { echo "malformed: needs root for tap and netns: SKIP"; exit 77; }
ID=$$
NAME=mal$ID
NET=198.19.$((ID % 250)).
TAP=slmal$((ID % 100000))
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" --name "$NAME" \
	--workers 1 --set "net.ipv4=${NET}1" --set net.frag_timeout_ms=100
sl_netns_tap "slmal$ID" "$TAP" "$NET"
NS=$SL_NS SOCK=$SL_SOCK
ip netns exec "$NS" ping -c 1 -W 2 "${NET}1" >/dev/null
ip netns exec "$NS" /usr/bin/python3 "$CLIENT" "$TAP" "${NET}1" "${NET}2" "$SOCK"
# session protocol abuse: unknown session, replayed and far-future seqs, another cluster
ip netns exec "$NS" "$SESS" --node "${NET}1" probe
for c in sess_unknown sess_duplicates sess_out_of_order sess_too_far_ahead sess_wrong_cluster; do
	v=$("$CTL" --socket "$SOCK" --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['totals']['$c'])")
	echo "  $c +$v"
	[ "$v" -ge 1 ] || { echo "FAIL: counter $c did not move"; exit 1; }
done
"$CTL" --socket "$SOCK" ping >/dev/null
sl_stop_node
echo "malformed: PASS"

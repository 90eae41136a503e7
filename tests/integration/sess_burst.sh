#!/usr/bin/env bash
# sess_burst.sh SLUICED SESS_CLIENT VERIFY SLUICECTL - replies leave through per-queue TX
# buffers (a burst at a time, the rest at the end of the worker's round): a session client
# with 32 batches in flight over a tap in a test namespace must receive every ack the node
# sent (none held back in a buffer, none lost), ICMP echo replies must come back one by
# one, and pkts_tx must count exactly the replies (acks, OPEN_OK, ARP, ICMP) with no TX
# failure. Namespace, tap and node are removed even when it fails.
set -euo pipefail
SLUICED=$1 CLIENT=$2 VERIFY=$3 CTL=$4
[ "$(id -u)" -eq 0 ] || { echo "sess_burst: needs root for tap and netns: SKIP"; exit 77; }
ID=$$
NAME=sessburst$ID TAP=slsb$((ID % 100000)) NS=slsb$ID
NET=198.19.$((ID % 250)).
POINTS=30000 SERIES=50 BATCH=30
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --vdev "net_tap0,iface=$TAP" -- --data-dir "$SL_DIR/data" \
	--name "$NAME" --workers 1 --set "net.ipv4=${NET}1"
sl_netns_tap "$NS" "$TAP" "$NET"
# the sluice.net log type speaks at its default level (info): the port bring-up line
grep -q "sluiced: port 0 (net_tap0): 1 RX/TX queue pair(s), RSS off, .* bursts of up to 32$" \
	"$SL_DIR/node.log" || { echo "FAIL: no port line in the node's log"; exit 1; }
# single frames (below a burst) must not wait for company: each ping gets its reply
ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 "${NET}1" >/dev/null ||
	{ echo "FAIL: ICMP echo replies missing"; exit 1; }
ip netns exec "$NS" "$CLIENT" --node "${NET}1" --points "$POINTS" --series "$SERIES" \
	--batch "$BATCH" --timeout 120 --log "$SL_DIR/acked.log" write >"$SL_DIR/client.log" 2>&1 &
PROD_PID=$!
sl_wait_client "$SL_DIR/client.log"
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" \
	--key 'sess,host=h{s:03d} v' --exact
got=$(sed -n 's/.* \([0-9][0-9]*\) acks received,.*/\1/p' "$SL_DIR/client.log")
"$CTL" --socket "$SL_SOCK" stats |
	grep -E "^(counter|pkts_tx|pkts_tx_failed|tx_queue_full|sess_acks|sess_opens|arp_replies|icmp_replies) "
"$CTL" --socket "$SL_SOCK" --json stats | python3 -c '
import json, sys
t = json.load(sys.stdin)["totals"]
got, acks, tx = int(sys.argv[1]), t["sess_acks"], t["pkts_tx"]
fails = []
if got != acks:
    fails.append(f"client received {got} acks, node sent {acks}")
replies = acks + t["sess_opens"] + t["arp_replies"] + t["icmp_replies"]
if tx != replies:
    fails.append(f"pkts_tx {tx}, replies {replies}")
fails += [f"{c} = {t[c]}, 0 expected" for c in ("pkts_tx_failed", "tx_queue_full") if t[c]]
if t["icmp_replies"] < 3:
    fails.append("icmp_replies %d, 3 expected" % t["icmp_replies"])
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
' "${got:-0}"
sl_stop_node
echo "sess_burst: PASS"

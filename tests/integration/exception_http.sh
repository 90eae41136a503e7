#!/usr/bin/env bash
# exception_http.sh SLUICED SLUICECTL - the exception path: sluiced runs in a network
# namespace of its own with a DPDK TAP device as its ingest port, moved into a second
# namespace where the client is. TCP to the node's address is not the dataplane's: it goes
# to the node namespace's kernel through the exception device ([net] exception = tap; the
# virtio_user device needs /dev/vhost-net, which this kernel lacks), whose interface has
# the port's MAC and the node's address, so curl in the client namespace reaches sluiced's
# HTTP server on the node's own address (the default port 8086) while line protocol over
# UDP to the same address is served by the dataplane. Both sets of points read back
# exactly; the exception counters moved. Namespaces, devices and the node go even when
# the test fails.
set -euo pipefail
SLUICED=$1 CTL=$2
[ "$(id -u)" -eq 0 ] || { echo "exception_http: needs root for netns and tap: SKIP"; exit 77; }
command -v curl >/dev/null || { echo "exception_http: curl missing"; exit 1; }
ID=$$
NAME=exc$ID
NET=198.19.$((ID % 250)).
NSN=slxn$ID NSC=slxc$ID TAP=sltx$((ID % 100000))
. "$(dirname "$0")/lib.sh"
exc_cleanup() {
	sl_cleanup
	ip netns del "$NSN" 2>/dev/null || true
	ip netns del "$NSC" 2>/dev/null || true
}
trap exc_cleanup EXIT
fail() { echo "FAIL: $*"; tail -30 "$SL_DIR/node.log"; exit 1; }
ip netns add "$NSN"
ip -n "$NSN" link set lo up
sl_start_node ip netns exec "$NSN" "$SLUICED" --vdev "net_tap0,iface=$TAP" -- \
	--data-dir "$SL_DIR/data" --name "$NAME" --workers 2 --set "net.ipv4=${NET}1" \
	--set net.exception=tap
grep -q "exception path: slx-$NAME" "$SL_DIR/node.log" || fail "no exception path line"
# the ingest port's device goes to the client's namespace
SL_NS=$NSC
ip netns add "$NSC"
ip -n "$NSN" link set "$TAP" netns "$NSC"
ip -n "$NSC" addr add "${NET}2/24" dev "$TAP"
ip -n "$NSC" link set "$TAP" up
ip -n "$NSC" link set lo up
ip -n "$NSN" addr show "slx-${NAME:0:11}" | grep -q "inet ${NET}1/24" ||
	fail "the kernel interface does not carry ${NET}1/24"

# HTTP through the exception path
ok=
for _ in $(seq 1 50); do
	st=$(ip netns exec "$NSC" curl -sS -m 2 -o /dev/null -w '%{http_code}' "http://${NET}1:8086/ping" 2>/dev/null || true)
	[ "$st" = 204 ] && { ok=1; break; }
	sleep 0.2
done
[ -n "$ok" ] || fail "/ping over the exception path never answered 204"
python3 - "$SL_DIR/x.lp" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(5000):
        f.write(f"exc,via=http v={i}i {1700000000000000000 + i}\n")
EOF
st=$(ip netns exec "$NSC" curl -sS -m 20 -o "$SL_DIR/resp" -w '%{http_code}' \
	--data-binary "@$SL_DIR/x.lp" "http://${NET}1:8086/write?db=x")
[ "$st" = 204 ] || fail "/write over the exception path: $st $(cat "$SL_DIR/resp")"
echo "ok: 5,000 lines over HTTP on ${NET}1:8086 through the exception path: 204"
# UDP line protocol to the same address: the dataplane's
ip netns exec "$NSC" python3 - "${NET}1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in range(20):
    body = "".join(f"exc,via=udp v={d * 10 + i}i {1700000000000000000 + d * 10 + i}\n" for i in range(10))
    s.sendto(body.encode(), (sys.argv[1], 8089))
EOF
python3 - "$SL_SOCK" "$(cd "$(dirname "$0")" && pwd)" <<'EOF'
import sys, time
sys.path.insert(0, sys.argv[2])
from sltest import query_points
sock = sys.argv[1]
T = 1700000000000000000
http = {ts: v for ts, v in query_points(sock, "exc,via=http v")}
assert http == {T + i: i for i in range(5000)}, f"http: {len(http)} points, not the 5000 written"
deadline = time.time() + 10
while True:
    udp = {ts: v for ts, v in query_points(sock, "exc,via=udp v")}
    if len(udp) >= 200 or time.time() > deadline:
        break
    time.sleep(0.2)
assert udp == {T + i: i for i in range(200)}, f"udp: {len(udp)} points, not the 200 written"
print("ok: 5000 points over HTTP, 200 over UDP read back exactly")
EOF
tok=$("$CTL" --socket "$SL_SOCK" --json stats | python3 -c 'import json,sys; t=json.load(sys.stdin)["totals"]; print(t["exc_to_kernel"], t["exc_from_kernel"], t["lp_points"])')
read -r to from lp <<<"$tok"
[ "$to" -gt 0 ] && [ "$from" -gt 0 ] || fail "exception counters: to_kernel $to from_kernel $from"
[ "$lp" -ge 200 ] || fail "the dataplane parsed $lp line protocol points, 200 expected"
echo "ok: exc_to_kernel $to, exc_from_kernel $from, dataplane lp_points $lp"
sl_stop_node
echo "exception_http: PASS"

#!/usr/bin/env bash
# noargs.sh SLUICED SLUICECTL SESS_CLIENT VERIFY - `sluiced` with no arguments on a box
# without DPDK ports is a working ingest server: in a network namespace of its own (so the
# default ports 8086, 8089 and 7400 are free whatever else runs on the host) and a temp
# dir as its working directory, it serves HTTP /write on 8086, line protocol on UDP 8089
# and the session protocol on UDP 7400 on kernel sockets. A session client writes 100,000
# points in fragmented datagrams and probes the protocol's answers (duplicates, order,
# a far-future seq); curl and a UDP sender write line protocol. Everything reads back
# exactly. The node, the namespace and the dir are removed even when the test fails.
set -euo pipefail
SLUICED=$(realpath "$1") CTL=$2 CLIENT=$3 VERIFY=$4
[ "$(id -u)" -eq 0 ] || { echo "noargs: needs root for a netns: SKIP"; exit 77; }
ID=$$
NAME=node1 # sluiced's default name: its shm files are removed by the cleanup
NS=slna$ID
. "$(dirname "$0")/lib.sh"
[ -e /dev/shm/sluice-node1.ingest ] && { echo "noargs: another sluiced named node1 runs here: SKIP"; exit 77; }
SL_NS=$NS
ip netns add "$NS"
ip -n "$NS" link set lo up
SL_SOCK=$SL_DIR/sluice-data/sluiced.sock
fail() { echo "FAIL: $*"; tail -30 "$SL_DIR/node.log"; exit 1; }
(cd "$SL_DIR" && exec ip netns exec "$NS" "$SLUICED") >>"$SL_DIR/node.log" 2>&1 &
NODE_PID=$!
until_true 600 "sluiced with no arguments came up" \
	python3 -c "import os,sys; print(os.path.exists(sys.argv[1]))" "$SL_SOCK"
grep -q "http 0.0.0.0:8086, kernel udp 0.0.0.0:8089" "$SL_DIR/node.log" || fail "start line"
grep -q "session protocol on kernel UDP 0.0.0.0:7400" "$SL_DIR/node.log" || fail "no session door"
N() { ip netns exec "$NS" "$@"; }

# the session protocol: a write in fragmented datagrams (200 points a batch), the probe
N "$CLIENT" --node 127.0.0.1 --points 100000 --series 10 --batch 200 --log "$SL_DIR/acked.log" write
N "$CLIENT" --node 127.0.0.1 probe | tee "$SL_DIR/probe.log"
for want in "replayed *-> duplicate_already_durable" "before seq 2 *-> out_of_order" \
	"far future) *-> too_far_ahead" "unknown session *-> unknown_session"; do
	grep -q "$want" "$SL_DIR/probe.log" || fail "probe: no '$want'"
done
python3 "$VERIFY" --socket "$SL_SOCK" --points 100000 --series 10 --batch 200 \
	--key "sess,host=h{s:03d} v" --exact

# HTTP and UDP line protocol on the default ports
printf 'na,via=http v=1i 1700000000000000001\nna,via=http v=2i 1700000000000000002\n' > "$SL_DIR/a.lp"
st=$(N curl -sS -m 10 -o /dev/null -w '%{http_code}' --data-binary "@$SL_DIR/a.lp" "http://127.0.0.1:8086/write?db=x")
[ "$st" = 204 ] || fail "/write on 8086: $st"
N python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"na,via=udp v=3i 1700000000000000003\n", ("127.0.0.1", 8089))'
python3 - "$SL_SOCK" "$(cd "$(dirname "$0")" && pwd)" <<'EOF'
import sys, time
sys.path.insert(0, sys.argv[2])
from sltest import query_points
sock = sys.argv[1]
assert {t: v for t, v in query_points(sock, "na,via=http v")} == {1700000000000000001: 1, 1700000000000000002: 2}
deadline = time.time() + 10
while not query_points(sock, "na,via=udp v") and time.time() < deadline:
    time.sleep(0.1)
assert {t: v for t, v in query_points(sock, "na,via=udp v")} == {1700000000000000003: 3}
print("ok: HTTP and UDP line protocol read back")
EOF
"$CTL" --socket "$SL_SOCK" stats | grep -E "^(sess_batches|sess_duplicates|frag_reassembled|local_batches) " || true
sl_stop_node
grep -q "stopped" "$SL_DIR/node.log" || fail "no clean stop"
echo "noargs: PASS"

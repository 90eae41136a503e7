#!/usr/bin/env bash
# http_write.sh SLUICED SLUICECTL - sluiced with no DPDK port serves InfluxDB's HTTP write
# APIs and line protocol on a kernel UDP socket, on loopback. curl writes: InfluxDB 1.x
# /write (precisions, gzip, partial writes, a missing db, an oversize body and a gzip bomb,
# strings with newlines and escapes), 2.x /api/v2/write (org, bucket, precision, its error
# bodies), /ping, /health, /query, /metrics; every point answered 204 reads back exactly
# over the ctl socket, and every point of a refused line is absent. The node is stopped by
# PID, its temp dir removed, also when the test fails.
set -euo pipefail
SLUICED=$1 CTL=$2
command -v curl >/dev/null || { echo "http_write: curl missing (scripts/deps.sh installs it)"; exit 1; }
ID=$$
NAME=http$ID
. "$(dirname "$0")/lib.sh"
HP=$((20000 + ID % 10000)) UP=$((30000 + ID % 2700)) # below the ephemeral range
URL=http://127.0.0.1:$HP
sl_start_node "$SLUICED" -- --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 \
	--set "http.listen=127.0.0.1:$HP" --set "net.line_port=$UP" \
	--set net.kernel_address=127.0.0.1 --set http.max_body_bytes=1000000
SOCK=$SL_SOCK
fail() { echo "FAIL: $*"; tail -20 "$SL_DIR/node.log"; exit 1; }
grep -q "http 127.0.0.1:$HP, kernel udp 127.0.0.1:$UP" "$SL_DIR/node.log" ||
	fail "the start line does not name the HTTP and UDP addresses"

# post URL_SUFFIX FILE [CURL ARGS...]: prints "STATUS BODY"
post() {
	local u=$1 f=$2
	shift 2
	curl -sS -o "$SL_DIR/resp" -w '%{http_code}' --data-binary "@$f" "$@" "$URL$u"
	echo " $(cat "$SL_DIR/resp")"
}
expect() { # expect WHAT WANT GOT
	case "$3" in "$2"*) echo "ok: $1: $3" ;; *) fail "$1: want '$2...', got '$3'" ;; esac
}

# /ping, /health, /query
st=$(curl -sS -o /dev/null -D "$SL_DIR/hdr" -w '%{http_code}' "$URL/ping")
[ "$st" = 204 ] || fail "/ping answered $st"
grep -qi '^X-Influxdb-Version: 1\.8' "$SL_DIR/hdr" || fail "/ping: no X-Influxdb-Version header"
expect /health 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/health")"
expect "CREATE DATABASE" '200 {"results"' \
	"$(curl -sS -w '%{http_code} ' -o "$SL_DIR/resp" -X POST "$URL/query?q=CREATE+DATABASE+x"; cat "$SL_DIR/resp")"

# 1.x /write: 20,000 lines in one body, two fields each (a float and an integer)
python3 - "$SL_DIR/big.lp" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        f.write(f"hw,host=h{i % 10} v={i * 0.25},n={i}i {1700000000000000000 + i}\n")
EOF
expect "/write 20,000 lines" "204" "$(post "/write?db=d" "$SL_DIR/big.lp")"
expect "/write without db" '400 {"error":"database is required"}' "$(post /write "$SL_DIR/big.lp")"

# gzip, precision=s (1.x) and precision=ms (2.x)
printf 'gz,host=a v=1.5 1700000000\ngz,host=a v=2.5 1700000001\n' | gzip > "$SL_DIR/gz.gz"
expect "/write gzip, precision=s" 204 \
	"$(post "/write?db=d&precision=s" "$SL_DIR/gz.gz" -H 'Content-Encoding: gzip')"
printf 'v2,host=b v=7i 1700000000123\nv2,host=b s="two\nlines \\"q\\"" 1700000000124\n' > "$SL_DIR/v2.lp"
expect "/api/v2/write precision=ms" 204 \
	"$(post "/api/v2/write?org=o&bucket=b&precision=ms" "$SL_DIR/v2.lp")"
expect "/api/v2/write without bucket" '400 {"code":"invalid","message":"bucket is required"}' \
	"$(post "/api/v2/write?org=o" "$SL_DIR/v2.lp")"
expect "/api/v2/write precision=h" '400 {"code":"invalid"' \
	"$(post "/api/v2/write?org=o&bucket=b&precision=h" "$SL_DIR/v2.lp")"
printf 'hr,host=c v=1 2\n' > "$SL_DIR/h.lp"
expect "/write precision=h (1.x)" 204 "$(post "/write?db=d&precision=h" "$SL_DIR/h.lp")"

# partial writes: the good lines are stored, the answer names the first bad line
printf 'pw,host=a v=1 1700000000000000001\npw,host=a v= 1700000000000000002\npw,host=a v=3 1700000000000000003\npw,host=a 1700000000000000004\n' > "$SL_DIR/pw.lp"
expect "/write partial (InfluxDB 1.x's answer)" "400 {\"error\":\"partial write: unable to parse 'pw,host=a v= 1700000000000000002': invalid field format\\nunable to parse 'pw,host=a 1700000000000000004': invalid field format dropped=0\"}" \
	"$(post "/write?db=d" "$SL_DIR/pw.lp")"
expect "/api/v2/write partial" '400 {"code":"invalid","message":"partial write error (2 written)' \
	"$(post "/api/v2/write?org=o&bucket=b" "$SL_DIR/pw.lp")"
printf 'bad line\n' > "$SL_DIR/bad.lp"
expect "/write nothing valid" "400 {\"error\":\"unable to parse 'bad line': invalid field format\"}" \
	"$(post "/write?db=d" "$SL_DIR/bad.lp")"

# bounds: a body over max_body_bytes, and a gzip body that grows over it
head -c 1200000 /dev/zero | tr '\0' 'x' > "$SL_DIR/huge.lp"
expect "/write oversize" '413 {"error":"Request Entity Too Large' "$(post "/write?db=d" "$SL_DIR/huge.lp")"
gzip -c "$SL_DIR/huge.lp" > "$SL_DIR/bomb.gz"
expect "/write gzip bomb" '413 {"error":"Request Entity Too Large' \
	"$(post "/write?db=d" "$SL_DIR/bomb.gz" -H 'Content-Encoding: gzip')"
printf 'not gzip' > "$SL_DIR/notgz"
expect "/write bad gzip" '400 {"error":"unable to decode gzip body' \
	"$(post "/write?db=d" "$SL_DIR/notgz" -H 'Content-Encoding: gzip')"
expect "unknown path" 404 "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/nope")"

# line protocol over the kernel UDP socket
python3 - "$UP" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in range(50):
    body = "".join(f"udp,host=k v={d * 100 + i}i {1700000000000000000 + d * 100 + i}\n" for i in range(100))
    s.sendto(body.encode(), ("127.0.0.1", int(sys.argv[1])))
EOF

# read back: exact
python3 - "$SOCK" "$(cd "$(dirname "$0")" && pwd)" <<'EOF'
import sys, os, time
sys.path.insert(0, sys.argv[2])
from sltest import query_points
sock = sys.argv[1]
def pts(key):
    return {ts: v for ts, v in query_points(sock, key)}
bad = 0
def check(what, got, want):
    global bad
    if got != want:
        bad += 1
        print(f"FAIL: {what}: got {str(got)[:300]} want {str(want)[:300]}")
T = 1700000000000000000
for h in range(10):
    check(f"hw host=h{h} v", pts(f"hw,host=h{h} v"), {T + i: i * 0.25 for i in range(h, 20000, 10)})
    check(f"hw host=h{h} n", pts(f"hw,host=h{h} n"), {T + i: i for i in range(h, 20000, 10)})
check("gzip", pts("gz,host=a v"), {1700000000 * 10**9: 1.5, 1700000001 * 10**9: 2.5})
check("v2 int", pts("v2,host=b v"), {1700000000123 * 10**6: 7})
check("v2 string", pts("v2,host=b s"), {1700000000124 * 10**6: 'two\nlines "q"'})
check("precision=h", pts("hr,host=c v"), {2 * 3600 * 10**9: 1.0})
check("partial", pts("pw,host=a v"), {T + 1: 1.0, T + 3: 3.0})
deadline = time.time() + 10
while True:
    got = pts("udp,host=k v")
    if len(got) >= 5000 or time.time() > deadline:
        break
    time.sleep(0.2)
check("kernel udp", got, {T + i: i for i in range(5000)})
sys.exit(1 if bad else 0)
EOF
echo "ok: every point read back exactly"

# /metrics: counters per core, HTTP counters moving
curl -sS "$URL/metrics" > "$SL_DIR/m1"
grep -q '^sluice_points_in_total{core="0"} ' "$SL_DIR/m1" || fail "/metrics: no per-core points_in"
grep -q '^sluice_points_in_total{core="1"} ' "$SL_DIR/m1" || fail "/metrics: no core 1"
grep -q '^sluice_ack_latency_seconds_bucket{core="0",le="+Inf"} ' "$SL_DIR/m1" || fail "/metrics: no histogram"
too=$(awk '/^sluice_http_too_large_total /{print $2}' "$SL_DIR/m1")
[ "$too" = 2 ] || fail "/metrics: http_too_large_total $too, 2 expected"
lb=$(awk '/^sluice_http_lines_bad_total /{print $2}' "$SL_DIR/m1")
[ "$lb" -ge 5 ] || fail "/metrics: http_lines_bad_total $lb, 5 or more expected"
expect "/write after the scrape" 204 "$(post "/write?db=d" "$SL_DIR/gz.gz" -H 'Content-Encoding: gzip')"
curl -sS "$URL/metrics" > "$SL_DIR/m2"
w1=$(awk '/^sluice_http_writes_ok_total /{print $2}' "$SL_DIR/m1")
w2=$(awk '/^sluice_http_writes_ok_total /{print $2}' "$SL_DIR/m2")
[ "$w2" -gt "$w1" ] || fail "/metrics: writes_ok did not move ($w1 -> $w2)"
echo "ok: /metrics ($(grep -c '^sluice_' "$SL_DIR/m2") samples), writes_ok $w1 -> $w2"

sl_stop_node
grep -q "stopped" "$SL_DIR/node.log" || fail "no clean stop"
echo "http_write: PASS"

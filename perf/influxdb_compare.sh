#!/usr/bin/env bash
# influxdb_compare.sh [BUILD_DIR] - side by side on this machine: Debian's InfluxDB 1.x and
# sluice fed the same InfluxDB line protocol (same generator: sluice-bench; same series
# count and points per datagram / batch). InfluxDB runs on loopback only from a temp
# config and temp data dirs, fed through its UDP listener (open loop at a few rates,
# stored points counted back over its HTTP query API) and its HTTP /write endpoint
# (5,000-point batches); sluice through memif. Everything started here is stopped and
# every temp dir removed on exit. Each run is bounded (DURATION seconds).
#
# Environment: DURATION (10), SERIES (1000), PPP (points per UDP datagram, 28: what one
# 1500-byte MTU holds), HTTP_BATCH (5000), HTTP_CONNS (4), UDP_RATES ("250000 500000
# 1000000" points/s), INFLUX_PORT_BASE (18000: HTTP +86, UDP +89, meta +88).
set -euo pipefail
BUILD=${1:-build}
DURATION=${DURATION:-10}
SERIES=${SERIES:-1000}
PPP=${PPP:-28}
HTTP_BATCH=${HTTP_BATCH:-5000}
HTTP_CONNS=${HTTP_CONNS:-4}
UDP_RATES=${UDP_RATES:-"250000 500000 1000000"}
PB=${INFLUX_PORT_BASE:-18000}
HTTP_PORT=$((PB + 86)) UDP_PORT=$((PB + 89)) META_PORT=$((PB + 88))
BENCH=$BUILD/perf/sluice-bench
SLUICED=$BUILD/ctl/sluiced

[ -x "$BENCH" ] || { echo "influxdb_compare: $BENCH not built (scripts/build.sh $BUILD)"; exit 1; }
if ! command -v influxd >/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "influxdb_compare: influxd missing; as root: apt-get install -y influxdb"; exit 1
	fi
	# the package would start a system-wide influxd on 0.0.0.0:8086: forbid service starts
	# for the install unless a policy is already in place
	POLICY=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		POLICY=/usr/sbin/policy-rc.d
		trap 'rm -f "$POLICY"' EXIT
		printf '#!/bin/sh\nexit 101\n' >"$POLICY"
		chmod 755 "$POLICY"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q influxdb >/dev/null 2>&1 || true
	if [ -n "$POLICY" ]; then rm -f "$POLICY"; fi
	trap - EXIT
	command -v influxd >/dev/null || { echo "influxdb_compare: apt-get install influxdb failed"; exit 1; }
fi

T=$(mktemp -d /tmp/sluice-influx-cmp.XXXXXX)
INFLUX_PID= NODE_PID=
cleanup() {
	[ -n "$INFLUX_PID" ] && kill "$INFLUX_PID" 2>/dev/null && wait "$INFLUX_PID" 2>/dev/null || true
	[ -n "$NODE_PID" ] && kill -TERM "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
	rm -rf "$T" /dev/shm/sluice-cmp$$.ingest /dev/shm/sluice-cmp$$.stats
}
trap cleanup EXIT INT TERM

cat >"$T/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$META_PORT"
[meta]
  dir = "$T/meta"
[data]
  dir = "$T/data"
  wal-dir = "$T/wal"
  query-log-enabled = false
[retention]
  enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$HTTP_PORT"
  log-enabled = false
  max-body-size = 0
[[udp]]
  enabled = true
  bind-address = "127.0.0.1:$UDP_PORT"
  database = "udp"
  batch-size = 5000
  batch-pending = 10
  batch-timeout = "1s"
  read-buffer = 8388608
[logging]
  level = "warn"
EOF
influxd run -config "$T/influxdb.conf" >"$T/influxd.log" 2>&1 &
INFLUX_PID=$!
URL=http://127.0.0.1:$HTTP_PORT
for _ in $(seq 1 200); do
	curl -sf "$URL/ping" >/dev/null 2>&1 && break
	kill -0 "$INFLUX_PID" 2>/dev/null || { cat "$T/influxd.log"; exit 1; }
	sleep 0.1
done
curl -sf "$URL/ping" >/dev/null || { echo "influxd did not come up"; cat "$T/influxd.log"; exit 1; }
query() { # DB QUERY -> stdout: raw JSON
	curl -sf -G "$URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"
}
count() { # DB -> points stored in measurement bench
	query "$1" 'SELECT count(value) FROM bench' | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0)'
}
curl -sf -XPOST "$URL/query" --data-urlencode 'q=CREATE DATABASE udp' >/dev/null
curl -sf -XPOST "$URL/query" --data-urlencode 'q=CREATE DATABASE http' >/dev/null
# the node's own view: 1.6's count() waits for nothing, so let the UDP batcher flush
settle() { # DB -> stable count
	local last=-1 c
	for _ in $(seq 1 30); do
		c=$(count "$1"); [ "$c" = "$last" ] && break; last=$c; sleep 1
	done
	echo "$c"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), influxd $(influxd version 2>/dev/null | head -1)"
echo "points: $SERIES series, $PPP points per UDP datagram, $HTTP_BATCH per HTTP request, $DURATION s per run"
BEST_UDP=0
for RATE in $UDP_RATES; do
	before=$(count udp)
	out=$("$BENCH" --transport udp --dest 127.0.0.1:$UDP_PORT --series "$SERIES" \
		--points-per-packet "$PPP" --rate "$RATE" --duration "$DURATION" --json -q)
	sent=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["points_sent"])')
	after=$(settle udp)
	stored=$((after - before))
	/usr/bin/python3 - "$RATE" "$sent" "$stored" "$DURATION" <<'EOF'
import sys
rate, sent, stored, dur = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(f"influxdb udp   offered {rate:>9} points/s: sent {sent}, stored {stored} "
      f"= {stored/dur:,.0f} points/s stored, loss {100.0*(sent-stored)/max(sent,1):.1f}%")
EOF
	s=$((stored / ${DURATION%.*}))
	[ "$s" -gt "$BEST_UDP" ] && BEST_UDP=$s
done

out=$("$BENCH" --transport http --dest 127.0.0.1:$HTTP_PORT --db http --series "$SERIES" \
	--points-per-packet "$HTTP_BATCH" --sessions "$HTTP_CONNS" --duration "$DURATION" --json -q)
written=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["points_written"])')
secs=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
stored=$(settle http)
HTTP_RATE=$(/usr/bin/python3 -c "print(int($stored / $secs))")
echo "influxdb http  $HTTP_CONNS connections x $HTTP_BATCH-point batches: acknowledged $written, stored $stored in $secs s = $HTTP_RATE points/s"
kill "$INFLUX_PID"; wait "$INFLUX_PID" 2>/dev/null || true; INFLUX_PID=

# sluice on the same machine, the same points, line protocol over memif
if [ -x "$SLUICED" ]; then
	"$SLUICED" --vdev "net_memif0,role=server,socket=$T/memif.sock" -- --data-dir "$T/sl" \
		--name cmp$$ --workers 1 --set net.ipv4=198.18.0.1 >"$T/node.log" 2>&1 &
	NODE_PID=$!
	for _ in $(seq 1 100); do [ -S "$T/sl/sluiced.sock" ] && break; sleep 0.1; done
	out=$("$BENCH" --transport memif --socket "$T/memif.sock" --ctl "$T/sl/sluiced.sock" \
		--series "$SERIES" --points-per-packet "$PPP" --duration "$DURATION" --json -q 2>/dev/null)
	kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true; NODE_PID=
	/usr/bin/python3 - "$out" "$BEST_UDP" "$HTTP_RATE" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); udp = int(sys.argv[2]); http = int(sys.argv[3])
applied = r.get("node_points_applied", r["points_sent"])
rate = applied / r["seconds"]
print(f"sluice memif   1 worker, {r['points_per_packet']} points/datagram: applied {applied} "
      f"= {rate:,.0f} points/s (loss {r.get('loss_points', 'n/a')})")
if udp:
    print(f"ratio          sluice / influxdb-udp  = {rate / udp:.1f}x")
if http:
    print(f"ratio          sluice / influxdb-http = {rate / http:.1f}x")
EOF
fi

#!/usr/bin/env bash
# prom_remote.sh SLUICED SLUICECTL PROM_CHECK - a real Prometheus server (Debian's
# /usr/bin/prometheus) scrapes sluiced's /metrics and itself every second and remote-writes
# everything to sluiced's /api/v1/write, on loopback (sluiced with no DPDK port), while curl
# writes line protocol to /write. After 30 s: the scraped counters move (Prometheus' query
# API); then scraping stops (a reload whose jobs have no target, the same remote_write), the
# queue drains with no sample failed or dropped, and every sample Prometheus holds reads
# back from sluice over the ctl socket with the same key (built from its labels as
# docs/prometheus.md says), timestamp (ms -> ns) and value (NaN included). The staleness
# markers written when scraping stops are hidden by Prometheus' API: they are counted as
# extras in sluice (samples checked plus extras must make every sample Prometheus took
# in, and every one sluice stored). Prometheus and the node are stopped by PID, the temp
# dir removed, also when the test fails (prometheus.log and node.log are kept with
# SL_KEEP=DIR).
set -euo pipefail
SLUICED=$1 CTL=$2 CHECK=$3
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
command -v curl >/dev/null || { echo "prom_remote: curl missing (scripts/deps.sh installs it)"; exit 1; }
[ -x "$PROMETHEUS" ] || { echo "prom_remote: $PROMETHEUS missing (apt-get install prometheus)"; exit 1; }
ID=$$
NAME=prom$ID
. "$(dirname "$0")/lib.sh"
# below the ephemeral range (32768-60999)
HP=$((25000 + ID % 5000)) PP=$((30000 + ID % 2700)) FP=$((15000 + ID % 5000))
URL=http://127.0.0.1:$HP PURL=http://127.0.0.1:$PP
PROM_PID='' FILES_PID=''

# Prometheus first (TERM, then KILL after 10 s), then lib.sh's cleanup (node, temp dir)
pr_stop_prom() {
	[ -n "$PROM_PID" ] || return 0
	kill -TERM "$PROM_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$PROM_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$PROM_PID" 2>/dev/null || true
	local rc=0
	wait "$PROM_PID" 2>/dev/null || rc=$?
	PROM_PID=
	return $rc
}
pr_cleanup() {
	pr_stop_prom || true
	if [ -n "$FILES_PID" ]; then kill -9 "$FILES_PID" 2>/dev/null || true; fi
	sl_cleanup
}
trap pr_cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- sluiced (last lines)"; tail -20 "$SL_DIR/node.log" || true
	echo "--- prometheus (last lines)"; tail -20 "$SL_DIR/prometheus.log" || true
	exit 1
}
check() { python3 "$CHECK" "$@" || fail "prom_check.py $1"; }

sl_start_node "$SLUICED" -- --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 \
	--set "http.listen=127.0.0.1:$HP" --set net.kernel_udp=off
SOCK=$SL_SOCK
grep -q "http 127.0.0.1:$HP" "$SL_DIR/node.log" || fail "the start line does not name the HTTP address"

# prom_config WITH_TARGETS: the config. Scraping stops by a reload whose jobs have no
# target: Prometheus then writes a staleness marker to each series it scraped (2.42 writes
# none when the jobs themselves go: their loops stop with their pool's context). The
# remote_write section is the same either way, so the reload keeps its queue.
prom_config() {
	local p=[] s=[] f=[]
	if [ "$1" = 1 ]; then p="['127.0.0.1:$PP']" s="['127.0.0.1:$HP']" f="['127.0.0.1:$FP']"; fi
	cat <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: $p
  - job_name: sluice
    static_configs:
      - targets: $s
  - job_name: odd
    static_configs:
      - targets: $f
remote_write:
  - url: $URL/api/v1/write
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send: false
EOF
}
# a third target, job odd: a static page (python3's http.server) of series whose keys need
# the line protocol's escapes (space, ',' and '=' in label values), a backslash, quotes,
# a newline and UTF-8 in values, an empty label (left out of the key), label names whose
# byte order is not their case-blind order, a label named job (Prometheus renames it
# exported_job), a ':' in a metric name, and the values NaN, +Inf, -Inf, -0 (which
# Prometheus sends as +0: prom_check.py's same()), the smallest subnormal, the largest
# double and 1/3
mkdir "$SL_DIR/www"
cat > "$SL_DIR/www/metrics" <<'EOF'
# TYPE odd_gauge gauge
odd_gauge{path="/mnt/my disk",opts="ro,noatime",eq="a=b",win="C:\\tmp\\x",quote="say \"hi\"",empty="",B="upper",a="lower",uni="héllo wörld ✓"} 1.5
odd_gauge{kind="nan"} NaN
odd_gauge{kind="pinf"} +Inf
odd_gauge{kind="ninf"} -Inf
odd_gauge{kind="negzero"} -0
odd_gauge{kind="tiny"} 4.9406564584124654e-324
odd_gauge{kind="huge"} 1.7976931348623157e+308
odd_gauge{kind="third"} 0.3333333333333333
odd_gauge{kind="newline",v="two\nlines"} 2
odd_gauge{job="exported",kind="job"} 3
odd:colon_metric{kind="colon"} 4
EOF
python3 -m http.server --bind 127.0.0.1 --directory "$SL_DIR/www" "$FP" >"$SL_DIR/files.log" 2>&1 &
FILES_PID=$!
for i in $(seq 1 100); do
	curl -sf -o /dev/null "http://127.0.0.1:$FP/metrics" && break
	kill -0 "$FILES_PID" 2>/dev/null || { cat "$SL_DIR/files.log"; fail "http.server exited"; }
	[ "$i" = 100 ] && fail "http.server not serving in 10 s"
	sleep 0.1
done
prom_config 1 > "$SL_DIR/prometheus.yml"
"$PROMETHEUS" --config.file="$SL_DIR/prometheus.yml" --storage.tsdb.path="$SL_DIR/tsdb" \
	--web.listen-address="127.0.0.1:$PP" >"$SL_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
for i in $(seq 1 300); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$PURL/-/ready" || true)" = 200 ] && break
	kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited at its start"
	[ "$i" = 300 ] && fail "prometheus not ready in 30 s"
	sleep 0.1
done
echo "ok: $("$PROMETHEUS" --version 2>&1 | head -1) ready on 127.0.0.1:$PP, sluiced on 127.0.0.1:$HP"

# 30 s of scrapes and remote write; a line protocol point a second through /write
T_END=$((SECONDS + 30)) LP=0
while [ "$SECONDS" -lt "$T_END" ]; do
	st=$(curl -sS -o "$SL_DIR/resp" -w '%{http_code}' \
		--data-binary "lp,host=prom v=$LP,n=${LP}i $(date +%s%N)" "$URL/write?db=x") || st=curl
	[ "$st" = 204 ] || fail "/write answered $st: $(cat "$SL_DIR/resp")"
	LP=$((LP + 1))
	kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited"
	sleep 1
done
check scrape "$PURL"

# stop scraping, keep remote write: a reload (SIGHUP), no targets, the same remote_write
t0=$(curl -sS "$PURL/metrics" | awk '/^prometheus_config_last_reload_success_timestamp_seconds /{print $2}')
prom_config 0 > "$SL_DIR/prometheus.yml"
kill -HUP "$PROM_PID"
check reloaded "$PURL" "$t0" 20
check drain "$PURL" 60
check compare "$PURL" "$URL" "$SOCK"
check lp "$SOCK" "lp,host=prom v" "$LP"
rej=$(sl_stat 'sum(c["points_rejected"] for c in r["cores"])')
[ "$rej" = 0 ] || fail "the workers rejected $rej points (sluicectl stats)"
grep -iE 'remote.*(level=(error|warn))|(level=(error|warn)).*remote' "$SL_DIR/prometheus.log" &&
	fail "prometheus logged remote write errors or warnings"

pr_stop_prom || fail "prometheus exited $? on SIGTERM"
kill "$FILES_PID" && { wait "$FILES_PID" || true; }
FILES_PID=
sl_stop_node
grep -q "stopped" "$SL_DIR/node.log" || fail "no clean stop of sluiced"
echo "prom_remote: PASS"

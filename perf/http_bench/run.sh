#!/bin/bash
# perf/http_bench/run.sh [BUILD_DIR] - issue 12, point 6: HTTP /write with 5,000-point
# batches into sluice (one worker core), InfluxDB 1.x and VictoriaMetrics on this host,
# each server's points per CPU-second. See perf/README.md, "HTTP /write against
# InfluxDB and VictoriaMetrics".
#
# Once: gen_bodies.py writes POOL request bodies (5,000 lines each, 1,000 series) into a
# temp dir. Then for each entry of CONFIGS: start the server on a fresh data dir
# (loopback only), warm up WARMUP s with 4 connections, then for each C in CONNS run
#   wrk -t1 -cC -dDURATION -s write5000.lua URL/write?db=bench -- BODIES FIRST_PASS
# and read the server's CPU time (utime+stime of all its threads, /proc/PID/stat)
# from the moment wrk starts its clock (its "Running" line, after the Lua init) to its
# exit, and its VmRSS at the end. Then the CPU of AFTER s with no load (deferred
# work: merges, compactions, checkpoints), and a check that the points arrived (sluice:
# one series read back with sluicectl and its points_applied; InfluxDB: count(*);
# VictoriaMetrics: vm_rows_inserted_total and one series exported after a forced
# flush), each against the requests wrk completed (lower bound) and generated (upper
# bound: wrk drops the requests in flight when it stops). Any answer other than 2xx,
# any wrk error or a failed check marks the row FAILED and the script exits 1.
# Every server is stopped by its PID (also on exit), every temp dir removed.
#
# CONFIGS entries: sluice | influxdb[:GOMAXPROCS] | vm[:GOMAXPROCS]
# Environment: CONFIGS ("sluice influxdb influxdb:1 vm vm:1"), CONNS ("4 16"),
# DURATION (20), WARMUP (3), AFTER (5), POOL (200), BASE_PORT (19400: sluice +0,
# InfluxDB +1 and its meta +2, VictoriaMetrics +3), RUN (a label for the run column, 1),
# SLUICE_ARGS (more sluiced options, e.g. "--set wal.checkpoint_mb=100000"),
# RESULTS (append rows as TSV to this file), PROFILE (seconds of `perf record -g` of
# sluiced from the start of each measured phase, 0 = none; reports in
# ${PROFILE_OUT%.txt}-N-cC.txt for phase N, default ./sluiced-http.perf-N-cC.txt).
# About 60 s an entry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${1:-build-dev}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
SLUICED=$BUILD/ctl/sluiced
SLUICECTL=$BUILD/ctl/sluicectl
CONFIGS=${CONFIGS:-"sluice influxdb influxdb:1 vm vm:1"}
CONNS=${CONNS:-"4 16"}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
AFTER=${AFTER:-5}
POOL=${POOL:-200}
BASE_PORT=${BASE_PORT:-19400}
RUN=${RUN:-1}
RESULTS=${RESULTS:-}
PROFILE=${PROFILE:-0}
SLUICE_ARGS=${SLUICE_ARGS:-}
PROFILE_OUT=${PROFILE_OUT:-$PWD/sluiced-http.perf.txt}
LINES=5000 SERIES=1000
PER_SERIES=$((LINES / SERIES)) # points of each series in one request
CHECK_SERIES='cpu,host=h0042,dc=d1'

for tool in wrk curl python3 stdbuf influxd /usr/bin/victoria-metrics /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "http_bench: $tool is not installed" >&2; exit 1; }
done
[[ -x $SLUICED && -x $SLUICECTL ]] || { echo "http_bench: no $SLUICED / $SLUICECTL" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/sluice-http-bench.XXXXXX")
pid="" name="" perf_pid="" wpid=""
stop_server() {
	if [[ -n $wpid ]]; then kill -TERM "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; wpid=""; fi
	if [[ -n $perf_pid ]]; then
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
		perf_pid=""
	fi
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
	fi
	if [[ -n $name ]]; then rm -f /dev/shm/sluice-"$name".*; name=""; fi
}
cleanup() { stop_server; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

tck=$(getconf CLK_TCK)
# utime+stime of a process, all its threads, in clock ticks (fields after the ")").
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# the same, summed over the threads whose name starts with $2 (sluiced: rte-worker)
thread_ticks() {
	local t s=0 v
	for t in /proc/"$1"/task/*; do
		[[ $(cat "$t/comm" 2>/dev/null) == "$2"* ]] || continue
		v=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null | sed 's/[-+~].*//'; }
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
die_server() { # message
	echo "http_bench: $1; server log:" >&2
	tail -20 "$dir/server.log" >&2 || true
	exit 1
}
wait_http() { # URL expected-code
	for _ in $(seq 150); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' -m 2 "$1" || true) == "$2" ]] && return 0
		kill -0 "$pid" 2>/dev/null || die_server "the server exited at start"
		sleep 0.2
	done
	die_server "no answer $2 from $1 after 30 s"
}

start_sluice() { # port
	name=bench$((100 + RANDOM % 900))
	while compgen -G "/dev/shm/sluice-$name.*" >/dev/null; do name=bench$((100 + RANDOM % 900)); done
	"$SLUICED" --data-dir "$dir/data" --name "$name" --workers 1 \
		--set "http.listen=127.0.0.1:$1" --set net.kernel_udp=off $SLUICE_ARGS >"$dir/server.log" 2>&1 &
	pid=$!
	wait_http "http://127.0.0.1:$1/ping" 204
}

start_influxdb() { # port gomaxprocs
	local p=$1
	# Debian's defaults (`influxd config`) with our dirs and loopback ports; the HTTP
	# access log (a line per request), the query log and the _internal monitor
	# database are off. wal-fsync-delay stays at its default, 0s.
	influxd config 2>/dev/null | sed \
		-e "s|^bind-address = .*|bind-address = \"127.0.0.1:$((p + 1))\"|" \
		-e "/^\[meta\]/,/^\[/ s|^  dir = .*|  dir = \"$dir/meta\"|" \
		-e "/^\[data\]/,/^\[/ { s|^  dir = .*|  dir = \"$dir/data\"|; s|^  wal-dir = .*|  wal-dir = \"$dir/wal\"|; s|^  query-log-enabled = .*|  query-log-enabled = false|; }" \
		-e "/^\[http\]/,/^\[/ { s|^  bind-address = .*|  bind-address = \"127.0.0.1:$p\"|; s|^  log-enabled = .*|  log-enabled = false|; }" \
		-e "/^\[monitor\]/,/^\[/ s|^  store-enabled = .*|  store-enabled = false|" \
		-e "/^\[logging\]/,/^\[/ s|^  level = .*|  level = \"warn\"|" >"$dir/influxdb.conf"
	grep -q "wal-fsync-delay = \"0s\"" "$dir/influxdb.conf" ||
		echo "http_bench: note: influxd config does not say wal-fsync-delay = \"0s\"" >&2
	if [[ -n $2 ]]; then
		GOMAXPROCS=$2 influxd run -config "$dir/influxdb.conf" >"$dir/server.log" 2>&1 &
	else
		influxd run -config "$dir/influxdb.conf" >"$dir/server.log" 2>&1 &
	fi
	pid=$!
	wait_http "http://127.0.0.1:$p/ping" 204
	curl -sf -m 10 -XPOST "http://127.0.0.1:$p/query" --data-urlencode 'q=CREATE DATABASE bench' >/dev/null ||
		die_server "CREATE DATABASE failed"
}

start_vm() { # port gomaxprocs
	if [[ -n $2 ]]; then
		GOMAXPROCS=$2 /usr/bin/victoria-metrics -storageDataPath "$dir/data" \
			-httpListenAddr "127.0.0.1:$1" -loggerLevel WARN >"$dir/server.log" 2>&1 &
	else
		/usr/bin/victoria-metrics -storageDataPath "$dir/data" \
			-httpListenAddr "127.0.0.1:$1" -loggerLevel WARN >"$dir/server.log" 2>&1 &
	fi
	pid=$!
	wait_http "http://127.0.0.1:$1/health" 200
}

# One wrk run: sets RES (the RESULT line), DT (server CPU ticks while wrk's clock ran;
# DW: those of its threads named rte-worker, sluiced's worker cores),
# WCPU (wrk's own CPU seconds) and NEXT_PASS.
run_wrk() { # url conns seconds first_pass [profile-seconds]
	local out=$T/wrk.out tm=$T/wrk.time t0 t1 w0 w1
	: >"$out"
	# stdbuf: wrk's stdout is a file, so without it "Running" would show only at exit
	/usr/bin/time -f '%U %S' -o "$tm" stdbuf -oL wrk -t1 -c"$2" -d"$3s" --timeout 10s \
		-s "$here/write5000.lua" "$1" -- "$T/bodies" "$4" >"$out" 2>&1 &
	wpid=$!
	# wrk prints "Running" once the script's init is done, just before its clock starts
	for _ in $(seq 3000); do
		grep -q '^Running' "$out" && break
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.01
	done
	t0=$(cpu_ticks "$pid") w0=$(thread_ticks "$pid" rte-worker)
	if [[ ${5:-0} -gt 0 ]]; then
		perf record -g -o "$T/perf.data" -p "$pid" -- sleep "$5" >"$T/perf.log" 2>&1 &
		perf_pid=$!
	fi
	wait "$wpid" || { wpid=""; cat "$out" >&2; die_server "wrk failed"; }
	wpid=""
	t1=$(cpu_ticks "$pid") w1=$(thread_ticks "$pid" rte-worker)
	if [[ -n $perf_pid ]]; then wait "$perf_pid" || true; perf_pid=""; fi
	RES=$(grep '^RESULT ' "$out" || true)
	[[ -n $RES ]] || { cat "$out" >&2; die_server "wrk printed no RESULT line"; }
	DT=$((t1 - t0)) DW=$((w1 - w0))
	WCPU=$(awk '{ printf "%.2f", $1 + $2 }' "$tm")
	local gen=${RES##*generated=}
	gen=${gen%% *}
	NEXT_PASS=$(($4 + (gen + POOL - 1) / POOL))
}
field() { local v=${RES##*"$1"=}; echo "${v%% *}"; } # value of KEY=VALUE in RES

failed=0
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg), data dirs under $T ($(df -T "$T" | awk 'NR == 2 { print $2 " on " $1 }'))"
echo "load: wrk -t1, ${LINES}-line bodies over $SERIES series, pool of $POOL, warm-up ${WARMUP}s at 4 connections, ${DURATION}s per connection count ($CONNS)"
python3 "$here/gen_bodies.py" "$T/bodies" "$POOL" "$LINES" "$SERIES" >/dev/null
echo
echo "| run | server | conns | requests/s | points/s | non-2xx | wrk errors | server CPU s | cores used | points per CPU-s | RSS MiB | p50 / p99 ms | wrk CPU s | load1 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
checks=()
if [[ -n $RESULTS && ! -s $RESULTS ]]; then
	printf 'run\tserver\tconns\treq_s\tpoints_s\tnon2xx\terrors\tcpu_s\tcores\tpoints_per_cpu_s\trss_mib\tp50_ms\tp99_ms\twrk_cpu_s\tload1\tok\n' >"$RESULTS"
fi

for cfg in $CONFIGS; do
	IFS=: read -r kind gmp <<<"$cfg"
	dir=$T/$kind${gmp:+-$gmp}
	mkdir -p "$dir"
	case $kind in
	sluice) port=$BASE_PORT label="sluice, 1 worker${SLUICE_ARGS:+ $SLUICE_ARGS}" ;;
	influxdb) port=$((BASE_PORT + 1)) label="InfluxDB $(pkg_version influxdb)" ;;
	vm) port=$((BASE_PORT + 3)) label="VictoriaMetrics $(pkg_version victoria-metrics)" ;;
	*) echo "http_bench: unknown config $cfg" >&2; exit 1 ;;
	esac
	[[ $kind != sluice ]] && label+=", GOMAXPROCS=${gmp:-default}"
	port_free "$port" || { echo "http_bench: port $port is taken (set BASE_PORT)" >&2; exit 1; }
	[[ $kind == influxdb ]] && { port_free $((port + 1)) || { echo "http_bench: port $((port + 1)) is taken" >&2; exit 1; }; }
	"start_$kind" "$port" "$gmp"
	url="http://127.0.0.1:$port/write?db=bench"

	done_req=0 gen_req=0 row_fail=0 split=""
	run_wrk "$url" 4 "$WARMUP" 0
	pass=$NEXT_PASS
	done_req=$((done_req + $(field requests))) gen_req=$((gen_req + $(field generated)))
	bad=$(($(field non2xx) + $(field err_connect) + $(field err_read) + $(field err_write) + $(field err_timeout)))
	[[ $bad -eq 0 ]] || { echo "http_bench: $label: warm-up had errors: $RES" >&2; row_fail=1; }
	prof=$PROFILE
	[[ $kind == sluice ]] || prof=0
	phase=0
	for c in $CONNS; do
		phase=$((phase + 1))
		run_wrk "$url" "$c" "$DURATION" "$pass" "$prof"
		if [[ $prof -gt 0 ]]; then
			pout=${PROFILE_OUT%.txt}-$phase-c$c.txt
			{
				perf report -i "$T/perf.data" --stdio --no-children --sort comm,dso --percent-limit 0.5
				perf report -i "$T/perf.data" --stdio --no-children -g none --percent-limit 0.3
				perf report -i "$T/perf.data" --stdio --no-children -g caller,0.5,callee --percent-limit 2
			} >"$pout" 2>/dev/null || true
			echo "http_bench: perf report of sluiced (${prof} s of the C=$c phase, figures of that row include perf's overhead) in $pout" >&2
		fi
		pass=$NEXT_PASS
		done_req=$((done_req + $(field requests))) gen_req=$((gen_req + $(field generated)))
		rss=$(rss_mib "$pid")
		load1=$(cut -d' ' -f1 /proc/loadavg)
		non2xx=$(field non2xx)
		errs=$(($(field err_connect) + $(field err_read) + $(field err_write) + $(field err_timeout)))
		ok=ok
		[[ $non2xx -eq 0 && $errs -eq 0 ]] || { ok=FAILED; row_fail=1; }
		[[ $non2xx -eq 0 ]] || echo "http_bench: $label C=$c: $non2xx answers not 2xx (first: $(field first_bad_status))" >&2
		row=$(awk -v res="$RES" -v dt="$DT" -v tck="$tck" -v lines=$LINES -v run="$RUN" \
			-v label="$label" -v c="$c" -v rss="$rss" -v wcpu="$WCPU" -v load1="$load1" \
			-v non2xx="$non2xx" -v errs="$errs" -v ok="$ok" 'BEGIN {
			n = split(res, kv, " ")
			for (i = 2; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
			secs = v["duration_us"] / 1e6
			rps = v["requests"] / secs
			cpu = dt / tck
			pts = v["requests"] * lines
			printf "%s\t%s\t%d\t%.0f\t%.0f\t%d\t%d\t%.2f\t%.2f\t%.0f\t%s\t%.1f\t%.1f\t%s\t%s\t%s\n",
				run, label, c, rps, rps * lines, non2xx, errs, cpu, cpu / secs,
				(cpu > 0 ? pts / cpu : 0), rss, v["p50_us"] / 1000, v["p99_us"] / 1000,
				wcpu, load1, ok
		}')
		[[ $kind == sluice ]] && split+=" C=$c: worker thread $(awk -v w=$DW -v t=$DT -v k="$tck" 'BEGIN { printf "%.2f s of %.2f s", w / k, t / k }');"
		[[ -n $RESULTS ]] && printf '%s\n' "$row" >>"$RESULTS"
		awk -F'\t' '{ printf "| %s | %s | %s | %s | %.2f M | %s | %s | %s | %s | %.2f M%s | %s | %s / %s | %s | %s |\n",
			$1, $2, $3, $4, $5 / 1e6, $6, $7, $8, $9, $10 / 1e6, ($16 == "ok" ? "" : " FAILED"),
			$11, $12, $13, $14, $15 }' <<<"$row"
	done

	# Deferred work: the server's CPU in AFTER seconds without load.
	a0=$(cpu_ticks "$pid")
	sleep "$AFTER"
	a1=$(cpu_ticks "$pid")
	after_cpu=$(awk -v d=$((a1 - a0)) -v tck="$tck" 'BEGIN { printf "%.2f", d / tck }')

	# Did the points arrive? Bounds: requests wrk completed .. requests it generated.
	lo=$((done_req * LINES)) hi=$((gen_req * LINES))
	slo=$((done_req * PER_SERIES)) shi=$((gen_req * PER_SERIES))
	case $kind in
	sluice)
		sock=$dir/data/sluiced.sock
		ser=$("$SLUICECTL" --socket "$sock" --json --timeout 60000 query "$CHECK_SERIES usage" --limit 10000000 |
			python3 -c 'import json, sys; d = json.load(sys.stdin); t = [p[0] for p in d["points"]]; print(len(t), len(set(t)), d["series"])') || ser="0 0 error"
		tot=$("$SLUICECTL" --socket "$sock" --json stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["totals"]["points_applied"])') || tot=0
		read -r sn sd skey <<<"$ser"
		st=$("$SLUICECTL" --socket "$sock" --json stats | python3 -c 'import json, sys
t = json.load(sys.stdin)["totals"]
print(" ".join(f"{k} {t.get(k, 0)}" for k in ("wal_fsyncs", "snapshots_full", "snapshots_delta",
      "snapshot_bytes_written", "stall_10ms", "stall_100ms", "stall_preempted")))') || st=""
		st+=$(curl -sf -m 10 "http://127.0.0.1:$port/metrics" | awk '/^sluice_local_(chunks|queue_full_waits|timeouts)_total / { printf " %s %s", substr($1, 8), $2 }') || true
		detail="series '$skey': $sn points ($sd distinct timestamps), expected $slo..$shi; points_applied $tot, expected $lo..$hi"
		cnote=" ($split counters: $st)"
		;;
	influxdb)
		q() { curl -sf -m 120 -G "http://127.0.0.1:$port/query" --data-urlencode db=bench --data-urlencode "q=$1" |
			python3 -c 'import json, sys; r = json.load(sys.stdin)["results"][0]; print(r["series"][0]["values"][0][1] if "series" in r else 0)'; }
		tot=$(q 'SELECT count(*) FROM cpu') || tot=0
		sn=$(q "SELECT count(usage) FROM cpu WHERE host='h0042' AND dc='d1'") || sn=0
		sd=$sn
		detail="SELECT count(*) FROM cpu: $tot, expected $lo..$hi; series h0042: $sn, expected $slo..$shi"
		;;
	vm)
		m=$(curl -sf -m 30 "http://127.0.0.1:$port/metrics")
		tot=$(awk '/^vm_rows_inserted_total\{type="influx"\}/ { print $2 }' <<<"$m")
		ign=$(awk '/^vm_rows_ignored_total/ && $2 > 0' <<<"$m" | tr '\n' ' ')
		gmpv=$(awk '/^go_gomaxprocs/ { print $2 }' <<<"$m")
		curl -sf -m 60 "http://127.0.0.1:$port/internal/force_flush" >/dev/null || true
		ser=$(curl -sf -m 120 "http://127.0.0.1:$port/api/v1/export" -d "match[]=cpu_usage{host=\"h0042\",dc=\"d1\"}" |
			python3 -c 'import json, sys
n = d = 0
for l in sys.stdin:
    r = json.loads(l); n += len(r["values"]); d += len(set(r["timestamps"]))
print(n, d)') || ser="0 0"
		read -r sn sd <<<"$ser"
		detail="vm_rows_inserted_total{type=\"influx\"} $tot, expected $lo..$hi; series cpu_usage{host=\"h0042\",dc=\"d1\"} exported after /internal/force_flush: $sn samples ($sd distinct timestamps), expected $slo..$shi; go_gomaxprocs $gmpv${ign:+; ignored rows: $ign}"
		;;
	esac
	[[ $kind == sluice ]] || cnote=""
	verdict=ok
	if ! [[ $tot -ge $lo && $tot -le $hi && $sn -ge $slo && $sn -le $shi && $sd -eq $sn ]]; then
		verdict=FAILED row_fail=1
	fi
	checks+=("- run $RUN, $label: $detail: $verdict; CPU in the ${AFTER} s after the load: $after_cpu s$cnote")
	[[ $row_fail -eq 0 ]] || failed=1
	stop_server
	rm -rf "$dir"
done
echo
printf '%s\n' "${checks[@]}"
exit $failed

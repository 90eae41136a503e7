#!/bin/bash
# Throughput of POST /write (5,000 line-protocol lines a request) on three HTTP
# server libraries from Debian; see docs/http_library.md.
#
#   bash perf/http_libs/run.sh
#
# Builds the probe servers (build.sh), then for each run, each configuration and
# each connection count: starts the server, checks it with curl (a POST answers
# 204 and the server counted its 5,000 lines), runs
#   wrk -t1 -c$C -d$DURATION -s post5000.lua http://127.0.0.1:$PORT/write
# and reads the server's CPU time (utime+stime of all its threads, from
# /proc/PID/stat) before and after. Loopback only; every run is bounded by
# DURATION. Servers are stopped by PID, also on exit.
#
# Environment: RUNS (2), DURATION (10s), CONNS ("4 16"), BASE_PORT (18090),
# OUT (build and log dir, $TMPDIR/sluice-http-libs), CONFIGS (below:
# library:threads[:mhd connection memory KiB, 0 = default[:defer]]; "defer" makes
# mhd_server hold each reply until a second thread resumes it), ALLOCS ("je glibc": the server
# linked with jemalloc as sluiced is, and with glibc's malloc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-${TMPDIR:-/tmp}/sluice-http-libs}
RUNS=${RUNS:-2}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-"4 16"}
BASE_PORT=${BASE_PORT:-18090}
CONFIGS=${CONFIGS:-"mhd:1 mhd:2 mhd:1:256 mhd:2:256 evhttp:1 evhttp:2 h2o:1 h2o:2"}
ALLOCS=${ALLOCS:-"je glibc"}
LINES_PER_REQ=5000

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed" >&2; exit 1; }
bash "$here/build.sh" "$OUT" >&2

tck=$(getconf CLK_TCK)
log=$OUT/servers.log
: >"$log"
pid=""

stop_server() {
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# The same body as post5000.lua, for the curl check.
body=$OUT/body5000.txt
awk -v n=$LINES_PER_REQ 'BEGIN { for (i = 0; i < n; i++)
    printf "cpu,host=host%04d,region=r%d usage=%d.%03d,idle=%di 17000000000%08d\n",
        i % 1000, i % 4, i % 100, (i * 37) % 1000, 90 + i % 10, i }' >"$body"

# utime+stime of a process (all threads), in clock ticks. Fields counted after
# the ")" that closes the command name.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
counted() { curl -sf "http://127.0.0.1:$1/count" | awk '{ print $1 }'; }

start_server() { # lib threads mem_kib port alloc mode
    local lib=$1 threads=$2 mem=$3 port=$4 bin=$OUT/${1}_server
    [[ $5 == je ]] && bin+=_je
    if [[ $lib == mhd ]]; then
        "$bin" "$port" "$threads" "${mem:-0}" ${6:+"$6"} 2>>"$log" &
    else
        "$bin" "$port" "$threads" 2>>"$log" &
    fi
    pid=$!
    for _ in $(seq 50); do
        counted "$port" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server $lib:$threads did not come up on port $port (see $log)" >&2
    exit 1
}

curl_check() { # port
    local before after code
    before=$(counted "$1")
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
        --data-binary @"$body" "http://127.0.0.1:$1/write?db=sluice")
    after=$(counted "$1")
    if [[ $code != 204 || $((after - before)) -ne $LINES_PER_REQ ]]; then
        echo "curl check failed on port $1: HTTP $code, counted $((after - before)) lines" >&2
        exit 1
    fi
}

results=$OUT/results.tsv
printf 'run\tserver\tconns\treq_s\tlines_s\tcpu_s\tcpu_s_per_Mlines\tMlines_per_cpu_s\tp50_ms\tp99_ms\terrors\tcount_ok\tload1\n' >"$results"
echo "| run | server | conns | req/s | lines/s | server CPU s | CPU-s per M lines | M lines per CPU-s | p50 ms | p99 ms | errors | count ok | load1 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"

port=$BASE_PORT
for run in $(seq "$RUNS"); do
  for alloc in $ALLOCS; do
    for cfg in $CONFIGS; do
        IFS=: read -r lib threads mem mode <<<"$cfg"
        [[ $mem == 0 ]] && mem=
        name="$lib t=$threads${mem:+ mem=${mem}K}${mode:+ $mode} $alloc"
        for c in $CONNS; do
            port=$((port + 1))
            start_server "$lib" "$threads" "$mem" "$port" "$alloc" "$mode"
            curl_check "$port"
            l0=$(counted "$port")
            t0=$(cpu_ticks "$pid")
            out=$(wrk -t1 -c"$c" -d"$DURATION" -s "$here/post5000.lua" "http://127.0.0.1:$port/write")
            t1=$(cpu_ticks "$pid")
            l1=$(counted "$port")
            load1=$(cut -d' ' -f1 /proc/loadavg)
            stop_server
            res=$(grep '^RESULT ' <<<"$out" || true)
            if [[ -z $res ]]; then
                echo "wrk gave no RESULT line for $name c=$c:" >&2
                echo "$out" >&2
                exit 1
            fi
            row=$(awk -v res="$res" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v l0="$l0" -v l1="$l1" \
                -v c="$c" -v lpr=$LINES_PER_REQ -v run="$run" -v name="$name" -v load1="$load1" 'BEGIN {
                n = split(res, kv, " ")
                for (i = 2; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
                secs = v["duration_us"] / 1e6
                rps = v["requests"] / secs
                cpu = (t1 - t0) / tck
                lines = l1 - l0
                err = v["err_connect"] + v["err_read"] + v["err_write"] + v["err_status"] + v["err_timeout"]
                # the server may have finished up to one request per connection that wrk did not count
                ok = (lines >= v["requests"] * lpr && lines <= (v["requests"] + c) * lpr) ? "yes" : "NO"
                printf "%d\t%s\t%d\t%.0f\t%.0f\t%.2f\t%.3f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\n",
                    run, name, c, rps, rps * lpr, cpu, (lines ? cpu / (lines / 1e6) : 0),
                    (cpu ? lines / cpu / 1e6 : 0), v["p50_us"] / 1000, v["p99_us"] / 1000,
                    err, ok, load1
            }')
            printf '%s\n' "$row" >>"$results"
            awk -F'\t' '{ printf "| %s | %s | %s | %s | %.2f M | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                $1, $2, $3, $4, $5 / 1e6, $6, $7, $8, $9, $10, $11, $12, $13 }' <<<"$row"
        done
    done
  done
done
echo "results also in $results; server logs in $log" >&2

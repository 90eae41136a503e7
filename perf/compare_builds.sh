#!/usr/bin/env bash
# compare_builds.sh BUILD_A [BUILD_B ...] - the node-core benchmarks of perf/README.md for
# one or more build trees, run back to back per scenario (A, B, A, B ...) so that the host's
# noise hits every tree alike. One worker core, 1000 series, DURATION seconds per run:
#   shm        closed loop, 1000-point batches (libsluice ingest ring)
#   line       InfluxDB line protocol over memif, as fast as the port takes
#   session    session protocol over memif, closed loop, 4 sessions x 32 batches
#   open@R     session protocol over memif, open loop at R points/s, poll.mode=OPEN_POLL
#              (latency from each batch's scheduled send time), for R in RATES
#   disk       the disk's own 64 KiB O_DIRECT write + fdatasync (no node), once
# Prints one Markdown table; the stall columns are the node's loop rounds over 1/10/100 ms
# (sluicectl stats, where the tree has those counters). Everything started here is stopped
# by PID and every temp file removed on exit. Environment: DURATION (10), RATES
# ("100000 500000"), OPEN_POLL (perf; or adaptive), NODE_ARGS (more sluiced options for
# every node, e.g. "--set wal.checkpoint_mb=100000"), SCENARIOS ("shm line session open disk"), DATA_PARENT (/var/tmp:
# the node's data dir sits on the disk being measured, not on tmpfs).
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,15p' "$0"; exit 2; }
DURATION=${DURATION:-10}
RATES=${RATES:-"100000 500000"}
SCENARIOS=${SCENARIOS:-"shm line session open disk"}
DATA_PARENT=${DATA_PARENT:-/var/tmp}
OPEN_POLL=${OPEN_POLL:-perf}
NODE_ARGS=${NODE_ARGS:-}
for b in "$@"; do
	[ -x "$b/ctl/sluiced" ] && [ -x "$b/perf/sluice-bench" ] ||
		{ echo "compare_builds: $b: ctl/sluiced or perf/sluice-bench not built"; exit 1; }
done
T=$(mktemp -d "$DATA_PARENT/sluice-cmp.XXXXXX")
NAME=cmp$$
NODE_PID=
cleanup() {
	if [ -n "$NODE_PID" ]; then kill -TERM "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
	rm -rf "$T" "/dev/shm/sluice-$NAME.ingest" "/dev/shm/sluice-$NAME.stats"
}
trap cleanup EXIT INT TERM

# start_node BUILD MEMIF(0|1) [--set k=v ...]: a fresh data dir, one worker
start_node() {
	local b=$1 memif=$2; shift 2
	rm -rf "$T/data" "$T/memif.sock"
	local eal=()
	[ "$memif" = 1 ] && eal=(--vdev "net_memif0,role=server,socket=$T/memif.sock" --)
	"$b/ctl/sluiced" "${eal[@]}" --data-dir "$T/data" --name "$NAME" --workers 1 \
		--set net.ipv4=198.18.0.1 $NODE_ARGS "$@" >"$T/node.log" 2>&1 &
	NODE_PID=$!
	for _ in $(seq 1 200); do
		[ -S "$T/data/sluiced.sock" ] && "$b/ctl/sluicectl" --socket "$T/data/sluiced.sock" ping >/dev/null 2>&1 && return 0
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "compare_builds: $b: the node did not start:"; cat "$T/node.log"; exit 1
}
stop_node() {
	local b=$1
	local st
	st=$("$b/ctl/sluicectl" --socket "$T/data/sluiced.sock" --json stats 2>/dev/null || true)
	STALLS=$(echo "$st" | python3 -c 'import json,sys
t=json.load(sys.stdin).get("totals",{})
k=["stall_1ms","stall_10ms","stall_100ms"]
print(" / ".join(str(t[x]) for x in k) if all(x in t for x in k) else "-")' 2>/dev/null || echo -)
	# region images written (trees with the delta-image counters)
	IMAGES=$(echo "$st" | python3 -c 'import json,sys
t=json.load(sys.stdin).get("totals",{})
if "snapshot_bytes_written" in t:
    f, d, mb = t["snapshots_full"], t["snapshots_delta"], t["snapshot_bytes_written"] / 1e6
    print(f"images {f} full + {d} delta, {mb:.0f} MB")' 2>/dev/null || true)
	kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true; NODE_PID=
}
# row SCENARIO BUILD JSON: one table row from a sluice-bench --json line
row() {
	python3 - "$1" "$2" "$3" "$STALLS" "${IMAGES:-}" <<'PY'
import json, sys
sc, b, line, stalls, images = sys.argv[1:6]
try:
    j = json.loads(line)
except Exception:
    print(f"| {sc} | {b} | failed: {line[:60]} | | | | | |"); sys.exit(0)
lat = j.get("ack_latency_ns") or j.get("latency_ns") or {}
ms = lambda k: f"{lat[k]/1e6:.2f}" if k in lat else ""
rate = j.get("points_per_s")
extra = []
for k in ("loss_points", "retransmits", "backlog_max_batches", "ops"):
    if k in j: extra.append(f"{k} {j[k]}")
if images: extra.append(images)
print(f"| {sc} | {b} | {rate/1e6:.3f} M |" if rate is not None else f"| {sc} | {b} | |",
      f"{ms('p50')} | {ms('p99')} | {ms('p999')} | {ms('max')} | {stalls} | {', '.join(extra)} |")
PY
}
echo "| scenario | build | points/s | p50 ms | p99 ms | p999 ms | max ms | stalls >1/10/100 ms | notes |"
echo "|---|---|---|---|---|---|---|---|---|"
MEMIF_ARGS=(--socket "$T/memif.sock" --ctl "$T/data/sluiced.sock" --duration "$DURATION" --json -q)
for sc in $SCENARIOS; do
	case $sc in
	shm)
		for b in "$@"; do
			start_node "$b" 0
			out=$("$b/perf/sluice-bench" --path "/dev/shm/sluice-$NAME.ingest" --duration "$DURATION" \
				--batch 1000 --series 1000 --json -q 2>/dev/null | tail -1 || true)
			stop_node "$b"; row shm "$b" "$out"
		done ;;
	line)
		for b in "$@"; do
			start_node "$b" 1
			out=$("$b/perf/sluice-bench" --transport memif "${MEMIF_ARGS[@]}" 2>/dev/null | tail -1 || true)
			stop_node "$b"; row line "$b" "$out"
		done ;;
	session)
		for b in "$@"; do
			start_node "$b" 1
			out=$("$b/perf/sluice-bench" --transport memif --protocol session "${MEMIF_ARGS[@]}" \
				--sessions 4 --window 32 2>/dev/null | tail -1 || true)
			stop_node "$b"; row session "$b" "$out"
		done ;;
	open)
		for r in $RATES; do
			for b in "$@"; do
				start_node "$b" 1 --set "poll.mode=$OPEN_POLL"
				out=$("$b/perf/sluice-bench" --transport memif --protocol session "${MEMIF_ARGS[@]}" \
					--sessions 4 --rate "$r" 2>/dev/null | tail -1 || true)
				stop_node "$b"; row "open@$r" "$b" "$out"
			done
		done ;;
	disk)
		STALLS=- IMAGES=
		out=$("$1/perf/sluice-bench" --transport disk --path "$T" --duration "$DURATION" --json)
		row disk "-" "$out" ;;
	*) echo "compare_builds: unknown scenario $sc"; exit 2 ;;
	esac
done

#!/usr/bin/env bash
# region_move.sh [BUILD] - the time to move a region of 1 GiB (issue 11, item 8).
#
# sluice has no move command yet; a move will be what exists today: a new replica that
# starts on an empty data dir with `sluiced --rejoin` and catches up every region it
# replicates from the leader, by snapshot (a full image of the region, in chunks over
# the fabric) and then by log. This script measures that on one host:
#   1. three nodes linked by the fabric over memif (--no-pci, no hugepages needed), one
#      worker core and REGIONS raft regions each (default 1: the whole load in one region);
#   2. sluice-bench loads node 1 through its shm ingest ring with enough float points
#      that the region's image (16 bytes a point) is TARGET_MB MiB (default 1024);
#   3. RUNS times (default 2): node 3 is SIGKILLed, its data dir deleted, and it is
#      started again with --rejoin; from its launch, every 100 ms, the leader's commit
#      index and node 3's applied index are read (`sluicectl regions`), until node 3
#      applied what the leader committed in every region (bounded: MOVE_TIMEOUT s,
#      default 900). Prints a Markdown row per run: image bytes, seconds, MB/s, when
#      each step happened, the chunks the raft counters show.
# LIGHT_S=N (default 0: none): also a light load (sluice-bench, one 100-point batch in
# flight) on node 1 for N s before the move and N s from node 3's launch, with its ack
# latency p99 / max in both.
# Data dirs in a temp dir under /tmp (3 x about 2 GiB of disk at the default size);
# everything it starts is stopped by PID and removed on exit, also on failure.
#
# Environment: TARGET_MB, RUNS, REGIONS, SERIES (1000), BATCH (4000), LIGHT_S,
# MOVE_TIMEOUT, LOAD_TIMEOUT (1800 s for the load), LOG_KEEP_MB ([regions] log_keep_mb:
# 1, the default), KEEP=DIR (an existing directory: the node logs, each move's poll
# record and the nodes' stats are copied there at the end). Exits 1 when the load falls
# short of TARGET_MB or node 3 does not catch up within MOVE_TIMEOUT.
set -euo pipefail
case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit 0
	;;
esac
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
TARGET_MB=${TARGET_MB:-1024} RUNS=${RUNS:-2} REGIONS=${REGIONS:-1} SERIES=${SERIES:-1000}
BATCH=${BATCH:-4000} LIGHT_S=${LIGHT_S:-0} MOVE_TIMEOUT=${MOVE_TIMEOUT:-900}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-1800}
SLUICED=$B/ctl/sluiced BENCH=$B/perf/sluice-bench
[ -x "$SLUICED" ] && [ -x "$BENCH" ] || { echo "region_move: build $B first"; exit 1; }
NAME=rmv$$
# [regions] log_keep_mb: the default (1) unless LOG_KEEP_MB says (cluster_lib's is 64)
CL_ARGS=(--workers 1 --set regions.log_keep_mb="${LOG_KEEP_MB:-1}")
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/cluster_lib.sh"
BENCH_PIDS=()
mv_cleanup() {
	for p in ${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then
		for i in 1 2 3; do
			[ "${CL_PIDS[$i]}" = 0 ] || "$CTL" --socket "$(cl_sock "$i")" --json stats >"$SL_DIR/stats$i.json" 2>/dev/null || true
		done
		cp "$SL_DIR"/*.log "$SL_DIR"/*.json "$KEEP"/ 2>/dev/null || true
	fi
	cl_cleanup
}
trap mv_cleanup EXIT

# light OUT: the light load on node 1 for LIGHT_S s, its --json result in OUT (background)
light() {
	"$BENCH" --path "/dev/shm/sluice-$NAME-1.ingest" --duration "$LIGHT_S" --series "$SERIES" \
		--batch 100 --inflight 1 --quiet --json >"$1" 2>"$1.err" &
	BENCH_PIDS+=($!)
}
# lat FILE: "p99 / max" of a light load's result, in ms
lat() {
	python3 -c "import json,sys; l=json.load(open(sys.argv[1]))['ack_latency_ns']; \
print('%.1f / %.1f ms' % (l['p99'] / 1e6, l['max'] / 1e6))" "$1" 2>/dev/null || echo "n/a"
}

for i in 1 2 3; do cl_start "$i"; done
cl_wait_leaders 1 0
# the image holds 16 bytes per float point, plus per series a record header, its key and
# a CRC: points for TARGET_MB MiB of points alone
points=$((TARGET_MB * 1048576 / 16 * REGIONS))
echo "loading $points points of $SERIES series through node 1 (${TARGET_MB} MiB of points per region, $REGIONS region(s))"
t=$SECONDS
"$BENCH" --path "/dev/shm/sluice-$NAME-1.ingest" --points "$points" --duration "$LOAD_TIMEOUT" \
	--series "$SERIES" --batch "$BATCH" --quiet --json >"$SL_DIR/load.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); \
print('loaded in %d s: %.2f M acknowledged points/s, %d failed batches' % ($SECONDS - $t, r['points_per_s'] / 1e6, r.get('failed', 0)))" \
	"$SL_DIR/load.json"
c=$(cl_caught_up) || exit 1
echo "every node applied the load (commit $c); regions seen from node 1:"
cl_regions 1 "'\n'.join('  region %d: %d series, %d points, %.0f MiB of store, leader %s' % (r['id'], r['series'], r['points'], r['bytes'] / 1048576, r['leader']) for r in rs)"
if [ "$(cl_regions 1 "min(r['points'] for r in rs) * 16 >= $TARGET_MB * 1048576")" != True ]; then
	echo "FAIL: a region holds fewer than $TARGET_MB MiB of points"
	exit 1
fi

rows=()
for run in $(seq 1 "$RUNS"); do
	before=
	if [ "$LIGHT_S" -gt 0 ]; then
		light "$SL_DIR/light-before$run.json"
		wait "${BENCH_PIDS[-1]}" || true
		before=$(lat "$SL_DIR/light-before$run.json")
	fi
	base=$(python3 "$SRC/perf/region_move_poll.py" --counters --node 3 \
		--socks "$(cl_sock 1),$(cl_sock 2),$(cl_sock 3)")
	cl_kill 3
	rm -rf "$SL_DIR/d3"
	cl_wait_leaders 1 3
	offs=$(for i in 1 2 3; do stat -c %s "$SL_DIR/node$i.log" 2>/dev/null || echo 0; done | paste -sd,)
	CL_REJOIN=3
	t0=$(date +%s.%N)
	[ "$LIGHT_S" -gt 0 ] && light "$SL_DIR/light-during$run.json"
	cl_start 3
	python3 "$SRC/perf/region_move_poll.py" --node 3 --t0 "$t0" --base "$base" \
		--socks "$(cl_sock 1),$(cl_sock 2),$(cl_sock 3)" \
		--logs "$SL_DIR/node1.log,$SL_DIR/node2.log,$SL_DIR/node3.log" --log-from "$offs" \
		--timeout "$MOVE_TIMEOUT" >"$SL_DIR/move$run.json" ||
		{ echo "FAIL: node 3 did not catch up within $MOVE_TIMEOUT s: $(cat "$SL_DIR/move$run.json")"; tail -5 "$SL_DIR/node3.log"; exit 1; }
	during=
	if [ "$LIGHT_S" -gt 0 ]; then
		wait "${BENCH_PIDS[-1]}" || true
		during=$(lat "$SL_DIR/light-during$run.json")
	fi
	row=$(python3 - "$SL_DIR/move$run.json" "$run" "$before" "$during" <<-'EOF'
		import json, sys
		m = json.load(open(sys.argv[1]))
		run, before, during = sys.argv[2], sys.argv[3], sys.argv[4]
		s = m["steps"]
		img = sum(m["image_bytes"])
		cons = list(m["consensus"].values())
		recv = sum(c.get("snapshot_chunks_received", 0) for c in cons)
		rbytes = sum(c.get("snapshot_bytes_received", 0) for c in cons)
		sent = m["leaders_sent"]
		t = s["caught_up"]
		get = lambda k: "%.1f" % s[k] if k in s else "-"
		cells = [run, "{:,}".format(img), "%.1f s" % t, "%.0f" % (img / 1e6 / t) if img else "-",
		         get("up"), get("export"), get("transfer"), get("received"), get("installed"),
		         "%d / %d" % (sent["snapshots_sent"], sent["leader_terms"]), "%d / %d" % (sent["snapshot_chunks_sent"], recv),
		         "{:,} / {:,}".format(sent["snapshot_bytes_sent"], rbytes), str(m["silent_polls"])]
		if before:
		    cells += [before, during]
		print("| " + " | ".join(cells) + " |")
	EOF
	)
	rows+=("$row")
	echo "run $run: $(cat "$SL_DIR/move$run.json")" >&2
	CL_REJOIN=0
done
hdr="| run | region image bytes | caught up | MB/s | up | image ready | transfer begins | image received | installed | transfers / leader changes | chunks sent / received | bytes sent / received | polls unanswered |"
sep="|---|---|---|---|---|---|---|---|---|---|---|---|---|"
if [ "$LIGHT_S" -gt 0 ]; then
	hdr="$hdr light load p99 / max, before | during |"
	sep="$sep---|---|"
fi
echo
echo "$hdr"
echo "$sep"
printf '%s\n' "${rows[@]}"

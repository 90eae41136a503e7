#!/usr/bin/env bash
# demo.sh - the main job on any machine: build, start sluiced (no NIC, --no-huge when the
# host has no hugepages), load it for about ten seconds through the shm ingest ring with
# sluice-bench, show status, regions, stats and a query, then stop it cleanly. Everything
# it creates lives in a temp dir and /dev/shm/sluice-demo$$.*, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
B=build
DIR=$(mktemp -d /tmp/sluice-demo.XXXXXX)
NAME=demo$$
SOCK=$DIR/data/sluiced.sock
NODE_PID=
cleanup() {
	if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
	fi
	rm -rf "$DIR" "/dev/shm/sluice-$NAME.ingest" "/dev/shm/sluice-$NAME.stats"
}
trap cleanup EXIT
echo "== starting sluiced (data in $DIR/data)"
"$B/ctl/sluiced" --data-dir "$DIR/data" --name "$NAME" > >(sed 's/^/   [sluiced] /') 2>&1 &
NODE_PID=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "sluiced did not start"; exit 1; }
echo "== sluice-bench: 10 s through the shm ingest ring (live rates from sluicectl top meanwhile)"
"$B/perf/sluice-bench" --path "/dev/shm/sluice-$NAME.ingest" --duration 10 --batch 1000 \
	--series 1000 --quiet >"$DIR/bench.out" 2>&1 &
BENCH_PID=$!
sleep 3
"$B/ctl/sluicectl" --socket "$SOCK" top --count 3 --interval 1
wait "$BENCH_PID"
cat "$DIR/bench.out"
echo "== sluicectl status"
"$B/ctl/sluicectl" --socket "$SOCK" status
echo "== sluicectl regions"
"$B/ctl/sluicectl" --socket "$SOCK" regions
echo "== sluicectl query 'bench,host=h000007 value' (first 5 points)"
"$B/ctl/sluicectl" --socket "$SOCK" query 'bench,host=h000007 value' --from 0 --to 100000 --limit 5
echo "== stopping sluiced"
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
NODE_PID=
echo "== demo done"

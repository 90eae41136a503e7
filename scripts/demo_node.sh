#!/usr/bin/env bash
# demo_node.sh - the single-node demo: build, start sluiced on a virtual device (a memif
# port: no NIC is touched, --no-huge when the host has no hugepages), load it for about ten
# seconds with sluice-bench over the binary session protocol (acknowledged, WAL group
# commit) while `sluicectl top` shows live per-core rates, then a few seconds through the
# shm ingest ring, show status, regions and a query, and stop sluiced cleanly. Everything
# it creates (temp dir, memif socket, /dev/shm/sluice-demo$$.*) is removed on exit.
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
echo "== starting sluiced: one memif port (virtual), data in $DIR/data"
"$B/ctl/sluiced" --vdev "net_memif0,role=server,socket=$DIR/memif.sock" -- \
	--data-dir "$DIR/data" --name "$NAME" --set net.ipv4=198.18.0.1 \
	> >(sed 's/^/   [sluiced] /') 2>&1 &
NODE_PID=$!
for _ in $(seq 1 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "sluiced did not start"; exit 1; }
echo "== sluice-bench: 10 s, session protocol over memif (live rates from sluicectl top meanwhile)"
"$B/perf/sluice-bench" --transport memif --protocol session --socket "$DIR/memif.sock" \
	--ctl "$SOCK" --sessions 4 --window 32 --duration 10 --quiet >"$DIR/bench.out" 2>&1 &
BENCH_PID=$!
sleep 4
"$B/ctl/sluicectl" --socket "$SOCK" top --count 3 --interval 1
wait "$BENCH_PID"
grep -v "^rte_pmd_memif\|^TELEMETRY" "$DIR/bench.out"
echo "== sluice-bench: 3 s through the shm ingest ring (a producer on the same host)"
"$B/perf/sluice-bench" --path "/dev/shm/sluice-$NAME.ingest" --duration 3 --batch 1000 \
	--series 1000 --quiet
echo "== sluicectl status"
"$B/ctl/sluicectl" --socket "$SOCK" status
echo "== sluicectl regions"
"$B/ctl/sluicectl" --socket "$SOCK" regions
echo "== sluicectl query 'bench,host=h000007 value' --limit 5"
"$B/ctl/sluicectl" --socket "$SOCK" query 'bench,host=h000007 value' --limit 5
echo "== stopping sluiced (SIGTERM: drain, WAL sync, exit)"
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
NODE_PID=
echo "== demo done"

#!/usr/bin/env bash
# ctld_single.sh SLUICED CTLD PRODUCER VERIFY - reshaping a single node through one
# sluice-ctld replica ([cluster] nodes = 1, standalone regions): under an shm producer's
# load, region 0 splits and its new half, region 2, moves to core 1; the node restarted
# with 3 workers starts (ctld shows 3 cores of lineage 2) and region 1 moves to core 2; a
# restart with 2 workers is refused naming region 1 on core 2; back at 3 workers region 1
# moves back to core 1 and the node restarts with 2; a restart with --regions 4 runs ctld's
# map (a notice); every acknowledged point reads back exactly.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4
CTL=$(dirname "$SLUICED")/sluicectl
NAME=cs$$ POINTS=${POINTS:-120000} SERIES=60 BATCH=300
. "$(dirname "$0")/lib.sh"
CS=$SL_DIR/c1/ctld.sock
fail() { echo "FAIL: $*"; tail -20 "$SL_DIR/node.log"; tail -20 "$SL_DIR/ctld.log"; exit 1; }
CTLD_PID=
trap '[ -n "$CTLD_PID" ] && kill -9 "$CTLD_PID" 2>/dev/null; sl_cleanup' EXIT
# q SOCK CMD EXPR: a python expression over r = the result of CMD on SOCK
q() {
	python3 -c "import sys; sys.path.insert(0, sys.argv[1]); from sltest import ctl
r = ctl(sys.argv[2], sys.argv[3], timeout=5.0); print($3)" "$SL_PYLIB" "$1" "$2"
}
# start WORKERS [REGIONS]: the node, bounded wait for its socket
start() {
	sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers "$1" \
		--regions "${2:-2}" --set cluster.ctld="$CS"
}
# move ARGS...: a region command through ctld; waits for the move to end done
move() {
	local out id
	out=$("$CTL" --socket "$CS" --json region "$@") || fail "region $*: $out"
	id=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["move"])')
	until_true 600 "move $id (region $*) did not end done: $(q "$CS" moves "[m for m in r['moves'] if m['id'] == $id]")" \
		q "$CS" moves "[m['state'] for m in r['moves'] if m['id'] == $id] == ['done']"
}
# cores: the node's live regions as (id, core)
cores() { q "$SL_SOCK" regions "[(x['id'], x['core']) for x in r['regions'] if 'merged_into' not in x]"; }

cat >"$SL_DIR/ctld.ini" <<EOT
[ctld]
id = 1
peers = "1@127.0.0.1:$((20000 + $$ % 20000))"
data_dir = $SL_DIR/c1
balance_interval_ms = 0
[cluster]
nodes = 1
regions = 2
replication = 1
cores = 2
protocol = standalone
EOT
"$CTLD" --config "$SL_DIR/ctld.ini" >"$SL_DIR/ctld.log" 2>&1 &
CTLD_PID=$!
until_true 300 "ctld did not bootstrap" q "$CS" status "r['bootstrapped'] and r['leader'] == 1"
start 2
until_true 300 "the node did not join" q "$CS" members "[m['state'] for m in r['members']] == ['up']"
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$SL_DIR/acked.log" --points "$POINTS" \
	--series "$SERIES" --batch "$BATCH" --pace-ms 20 --timeout 200 >"$SL_DIR/producer.log" 2>&1 &
PROD_PID=$!

move split 0
move move-core 2 1
[ "$(cores)" = "[(0, 0), (1, 1), (2, 1)]" ] || fail "after the split and the core move: $(cores)"
echo "[${SECONDS}s] region 0 split, its half region 2 moved to core 1: $(cores)"

sl_kill_node
start 3
grep -q "this data dir last ran 2 workers, the config says 3" "$SL_DIR/node.log" ||
	fail "no notice of the changed worker count"
until_true 300 "ctld does not show 3 cores of lineage 2" \
	q "$CS" members "[(m.get('cores'), m.get('lineage_cores')) for m in r['members']] == [(3, 2)]"
move move-core 1 2
[ "$(cores)" = "[(0, 0), (1, 2), (2, 1)]" ] || fail "region 1 on core 2: $(cores)"
echo "[${SECONDS}s] restarted with 3 workers, region 1 moved to core 2: $(cores)"
sl_stop_node
if "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 --regions 2 \
	--set cluster.ctld="$CS" >"$SL_DIR/refused.log" 2>&1; then
	fail "started with 2 workers while region 1 runs on core 2"
fi
grep -q "region 1 runs on worker core 2 here" "$SL_DIR/refused.log" ||
	{ cat "$SL_DIR/refused.log"; fail "the refusal does not name region 1 on core 2"; }
echo "[${SECONDS}s] 2 workers refused: $(grep -o "region 1 runs on worker core 2 here[^(]*" "$SL_DIR/refused.log")"
start 3
move move-core 1 1
sl_kill_node
start 2
grep -q "workers 3 -> 2: every core took the sessions" "$SL_DIR/node.log" || fail "no session hand-over at 3 -> 2"
[ "$(cores)" = "[(0, 0), (1, 1), (2, 1)]" ] || fail "back at 2 workers: $(cores)"
echo "[${SECONDS}s] region 1 back on core 1, restarted with 2 workers: $(cores)"
sl_kill_node
start 2 4
grep -q "this data dir was written with \[regions\] count = 2; the config says 4" "$SL_DIR/node.log" ||
	fail "no notice that --regions 4 only seeds a new cluster"
[ "$(cores)" = "[(0, 0), (1, 1), (2, 1)]" ] || fail "with --regions 4 the node does not run ctld's map: $(cores)"

wait "$PROD_PID" || { PROD_PID=; cat "$SL_DIR/producer.log"; fail "the producer failed"; }
PROD_PID=
python3 "$VERIFY" --socket "$SL_SOCK" --points "$POINTS" --series "$SERIES" --batch "$BATCH" --exact
sl_stop_node
echo "[${SECONDS}s] ctld_single: PASS ($(wc -l <"$SL_DIR/acked.log") batches acknowledged)"

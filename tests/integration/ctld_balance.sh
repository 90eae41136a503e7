#!/usr/bin/env bash
# ctld_balance.sh SLUICED CTLD PRODUCER VERIFY BENCH - leader balance by write rate
# ([cluster] balance_by = rate, every second) on three nodes: six raft regions, preferred
# leaders two per node as ctld's bootstrap plans them, and sluice-bench on node 2 writing
# six series that hash into regions 1, 4 and 5 (three, two and one of them: the bench's
# keys `bench,host=hNNNNNN value` never change), so node 2, which leads regions 1 and 4,
# takes five sixths of the writes and node 1 none. Checks: ctld moves a preferred leader
# off node 2 by itself (a move of kind balance whose why names both nodes' write rates),
# the move leaves its target below the source's load before it (so it is never undone),
# no region is moved twice, and once balanced nothing more moves while the rates stay;
# every sluice-bench batch is acknowledged.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4 BENCH=$5
CTL=$(dirname "$SLUICED")/sluicectl
NAME=bal$$ REGIONS=6
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
. "$(dirname "$0")/cluster_lib.sh"
CTLD_REGIONS=6 CTLD_BALANCE_MS=1000 CTLD_BALANCE_BY=rate CTLD_NODE_TIMEOUT_MS=3000
. "$(dirname "$0")/ctld_lib.sh"
trap ctld_cleanup_all EXIT
CL_ARGS=(--set cluster.ctld="$(ctld_socks)")

ctld_cluster_up 3
PLAN=$(ql regions "[x['preferred_leader'] for x in r['regions']]")
[ "$PLAN" = "[1, 2, 3, 1, 2, 3]" ] || fail "ctld's bootstrap plan is $PLAN, this test expects [1, 2, 3, 1, 2, 3]"
[ "$(ql moves "r['total']")" = 0 ] || fail "a move before any write: $(ql moves "r['moves']")"
BAL=$(ql status "(r['balance']['by'], r['balance']['rate_slack_pct'])")
[ "$BAL" = "('rate', 25)" ] || fail "ctld's status shows balance $BAL, not by rate with 25 % slack"
echo "[${SECONDS}s] 3 ctld replicas (balance_by = rate), 3 nodes; preferred leaders $PLAN"

"$BENCH" --path "/dev/shm/sluice-$NAME-2.ingest" --duration 20 --batch 60 --series 6 \
	--inflight 4 --json --quiet >"$DIR/bench.json" 2>"$DIR/bench.err" &
BENCH_PID=$!
rate_moves() { ql moves "[(m['region'], m['from'], m['to'], m['state'], m['why']) for m in r['moves'] if m['kind'] == 'balance']"; }
until_true 600 "no balance move by rate: $(rate_moves); loads $(ql regions "[(x['id'], x['preferred_leader'], x.get('points_per_s')) for x in r['regions']]")" \
	ql moves "any(m['kind'] == 'balance' and m['state'] == 'done' and m['why'].startswith('rate:') for m in r['moves'])"
FIRST=$(ql moves "[m['why'] for m in r['moves'] if m['kind'] == 'balance'][0]")
echo "[${SECONDS}s] ctld balanced by rate: $FIRST"
# "rate: node A leads X points/s, node B Y; region R (Z points/s) to node B": B ends below X
python3 - "$FIRST" <<'PYEOF' || fail "the move does not leave its target below the source's load: $FIRST"
import re, sys
m = re.match(r"rate: node (\d+) leads (\d+) points/s, node (\d+) (\d+); region (\d+) \((\d+) points/s\) to node (\d+)", sys.argv[1])
assert m, sys.argv[1]
a, x, b, y, r, z, to = map(int, m.groups())
assert a == 2 and to == b and b != a and y + z < x, m.groups()
PYEOF
# balanced: nothing more moves while the load goes on (4 s: four balance rounds)
N=$(ql moves "r['total']")
sleep 4
[ "$(ql moves "r['total']")" = "$N" ] || fail "balance went on moving: $(rate_moves)"
[ "$(ql moves "len(set(m['region'] for m in r['moves'])) == len(r['moves'])")" = True ] ||
	fail "a region was moved twice: $(rate_moves)"
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=0
[ "$rc" = 0 ] || { cat "$DIR/bench.err"; fail "sluice-bench exited $rc"; }
FAILED=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['batches_failed'])" "$DIR/bench.json")
[ "$FAILED" = 0 ] || fail "$FAILED sluice-bench batches failed"
"$CTL" --socket "$(csock "$(leader)")" moves
echo "[${SECONDS}s] ctld_balance: PASS ($(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['points_acked'])" "$DIR/bench.json") points acknowledged, $(ql moves "r['total']") balance move(s))"

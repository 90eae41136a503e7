#!/usr/bin/env bash
# ctld_split.sh SLUICED CTLD PRODUCER VERIFY BENCH - region splits through sluice-ctld
# (`sluicectl region split R`) on three nodes under load: three shm producers (one per node,
# every acknowledged batch logged) and sluice-bench on node 2, four raft regions. Checks:
# region 0 splits at its midpoint into region 4 with ctld's leader killed right after the
# ask, a "split" move that the next ctld leader carries on, done with every node running
# both at segment 1, the two ranges adjoining, each half holding series;
# refusals with a clear error (a cut outside the range, an unknown region, a ctld
# follower, a data node's socket); region 4 splits again (exactly at the hash of a
# series written) into region 5
# while node 3 is SIGKILLed right after the ask: the split waits for node 3, which
# replays its WAL, seals and splits after its restart; a node restarted after the splits
# runs six regions; region 4 merges region 5 back (`sluicectl region merge 4`) while
# node 2 is SIGKILLed right after the ask: the merge waits for node 2, which replays, seals
# both and merges after its restart; every node then routes region 5's range to region 4
# and node 3, restarted after the merge, starts without region 5's files; with the ctld
# replicas restarted one by one with [cluster]
# split_bytes below the largest region's size, ctld splits it by itself (a move of kind
# auto-split, with its reason); every acknowledged point reads back exactly on every node
# (reads are routed by the nodes' split ranges).
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4 BENCH=$5
CTL=$(dirname "$SLUICED")/sluicectl
POINTS=${POINTS:-$([ -n "${ASAN_OPTIONS:-}" ] && echo 30000 || echo 90000)} SERIES=30 BATCH=300
NAME=sp$$ REGIONS=4
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
. "$(dirname "$0")/cluster_lib.sh"
CTLD_REGIONS=4 CTLD_NODE_TIMEOUT_MS=3000 CTLD_DIAG_LINES=12
. "$(dirname "$0")/ctld_lib.sh"
trap ctld_cleanup_all EXIT
CL_ARGS=(--set cluster.ctld="$(ctld_socks)")

# split R [AT]: asks the ctld leader to split region R (at hash AT); prints the move id
split() {
	local out
	out=$(ask "$(csock "$(leader)")" region split "$@") || fail "split $*: $out"
	move_id "$out"
}
move_state() { ql moves "[(m['state'], m.get('waiting')) for m in r['moves'] if m['id'] == $1]"; }
# leader_other_than L: a ctld replica other than L leads
leader_other_than() { [ -n "$(leader "$1")" ] && echo True || echo False; }
# range R: region R's [hash_lo, hash_hi] in ctld's map, as integers
range() { ql regions "(int(r['regions'][$1]['hash_lo'], 16), int(r['regions'][$1]['hash_hi'], 16))"; }
# node_range I R: the same as node I routes it
node_range() { cl_regions "$1" "(int(rs[$2]['hash_lo'], 16), int(rs[$2]['hash_hi'], 16))"; }
# split_done PARENT CHILD EPOCH ID: move ID ends done; ctld's map and every node agree on
# both halves' segment and ranges
split_done() {
	until_true 600 "move $4 (split of region $1) did not end done: $(move_state "$4")" move_is "$4" done
	until_true 300 "not every node runs regions $1 and $2 at segment $3: $(for i in 1 2 3; do cl_regions "$i" "[(r['id'], r['epoch'], r.get('unborn')) for r in rs]"; done)" \
		both_at "$1" "$2" "$3"
	local p c i
	p=$(range "$1") c=$(range "$2")
	python3 -c "p, c = $p, $c; assert p[1] + 1 == c[0], (p, c)" || fail "ranges of $1 and $2 do not adjoin: $p $c"
	[ "$(ql regions "r['regions'][$2]['split_from']")" = "$1" ] || fail "region $2 not split from $1: $(ql regions "r['regions'][$2]")"
	for i in 1 2 3; do
		[ "$(node_range "$i" "$1")" = "$p" ] || fail "node $i routes region $1 as $(node_range "$i" "$1"), ctld has $p"
		[ "$(node_range "$i" "$2")" = "$c" ] || fail "node $i routes region $2 as $(node_range "$i" "$2"), ctld has $c"
	done
}
both_at() {
	local i
	for i in 1 2 3; do
		[ "$(cl_regions "$i" "len(rs) > $2 and all((rs[k]['epoch'], rs[k]['sealed'], rs[k].get('unborn', False)) == ($3, False, False) for k in ($1, $2))")" = True ] ||
			{ echo False; return; }
	done
	echo True
}

ctld_cluster_up 3
echo "[${SECONDS}s] 3 ctld replicas, 3 nodes; map: $(ql regions "[(x['id'], x['hash_lo'], x['epoch']) for x in r['regions']]")"

load_start 100 300 30

# region 0 splits at its midpoint under load, with ctld's leader SIGKILLed right after
# the ask: the next leader finds the split in the log and carries it on
a0=$(cl_acks)
ID=$(split 0)
L=$(leader)
F=$((L % 3 + 1))
until_true 100 "move $ID never reached ctld follower $F" \
	q "$(csock "$F")" moves "any(m['id'] == $ID for m in r['moves'])"
kill -9 "${CPIDS[$L]}"
wait "${CPIDS[$L]}" 2>/dev/null || true
CPIDS[$L]=0
until_true 300 "no new ctld leader after leader $L was killed" leader_other_than "$L"
start_ctld "$L"
split_done 0 4 1 "$ID"
a1=$(cl_acks)
[ "$a1" -gt "$a0" ] || fail "no write acknowledged during the split"
echo "[${SECONDS}s] move $ID (ctld leader $L killed after the ask, carried on by the next): region 0 split, region 4 = $(ql regions "r['regions'][4]['hash_lo']") .. ($(ql moves "[m['took_ms'] for m in r['moves'] if m['id'] == $ID][0]") ms; $((a1 - a0)) batches acknowledged meanwhile); series: $(cl_regions 1 "[(r['id'], r.get('series')) for r in rs]")"
for i in 1 2 3; do
	[ "$(cl_regions "$i" "rs[0]['series'] > 0 and rs[4]['series'] > 0")" = True ] ||
		fail "node $i: a half of region 0 holds no series: $(cl_regions "$i" "[(r['id'], r['series']) for r in rs]")"
done

# refusals: clear errors, nothing recorded
LS=$(csock "$(leader)")
T=$(ql moves "r['total']")
out=$(ask "$LS" region split 1 --at 0x0000000000000000) && fail "a cut below region 1's range: $out"
[[ "$out" == *"bad_request"* ]] || fail "bad cut refusal: $out"
out=$(ask "$LS" region split 9) && fail "region 9 split: $out"
[[ "$out" == *"not_found"* ]] || fail "unknown region: $out"
F=$(( $(leader) % 3 + 1 ))
out=$(ask "$(csock "$F")" region split 1) && fail "a ctld follower took a split: $out"
[[ "$out" == *"not_leader"* ]] || fail "follower refusal: $out"
out=$(ask "$(cl_sock 1)" region split 1) && fail "a data node took a split: $out"
[ "$(ql moves "r['total']")" = "$T" ] || fail "a refused split was recorded"
echo "[${SECONDS}s] refused: a cut outside the range, region 9, a ctld follower, a data node's socket"

# region 4 splits again, exactly at the hash of a series the producers write (so a cut
# one off puts that series in the wrong half, which its exact read-back sees: the
# split_boundary mutation), with node 3 killed right after the ask: the split waits for
# node 3, which replays, seals and splits after its restart
# (the producers' 90 series asked from one python3 on node 1's ctl socket: a sluicectl per
# series took 15 s under the sanitizers)
AT=$(python3 - "$(dirname "$VERIFY")" "$(cl_sock 1)" "$SERIES" "$(range 4)" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
from sltest import _query_once
series = int(sys.argv[3])
lo, hi = eval(sys.argv[4])
ids = []
for k in range(3 * series):
    r = _query_once(sys.argv[2], 'p%d,host=h%03d value' % (k // series + 1, k % series), {'limit': 1})
    if r.get('ok'):
        ids.append(int(r['result']['series_id'], 16))
ids = sorted(x for x in ids if lo < x <= hi)
print('0x%016x' % (ids[0] if ids else lo + (hi - lo) // 3))
PYEOF
)
ID=$(split 4 --at "$AT")
cl_kill 3
sleep 1
[ "$(move_is "$ID" running)" = True ] || fail "move $ID did not wait for node 3: $(move_state "$ID")"
echo "[${SECONDS}s] move $ID: region 4 split at $AT asked, node 3 killed: $(move_state "$ID")"
cl_start 3
split_done 4 5 2 "$ID"
[ "$(ql regions "r['regions'][5]['hash_lo']")" = "$AT" ] || fail "region 5 does not start at $AT: $(ql regions "r['regions'][5]")"
echo "[${SECONDS}s] node 3 back: move $ID done, region 5 from $AT"

# a node restarted after the splits runs six regions with the split ranges
cl_kill 1
cl_start 1
until_true 300 "node 1 does not run regions 4 and 5 at segment 2" both_at 4 5 2
grep -q "refusing" "$DIR/node1.log" && fail "node 1 refused to start"
[ "$(node_range 1 0)" = "$(range 0)" ] || fail "node 1 routes region 0 as $(node_range 1 0) after its restart"
echo "[${SECONDS}s] node 1 restarted: regions $(cl_regions 1 "[(r['id'], r['epoch'], r['hash_lo']) for r in rs]")"
cl_wait_leaders 1 0

# region 4 merges region 5 back (the halves of the second split, on region 0's core on
# every node), with node 2 killed right after the ask: the merge waits for node 2, which
# replays its WAL, seals both regions and merges them after its restart
P4=$(range 4) P5=$(range 5)
E4=$(ql regions "r['regions'][4]['epoch']")
out=$(ask "$(csock "$(leader)")" region merge 4) || fail "merge 4: $out"
ID=$(move_id "$out")
cl_kill 2
sleep 1
[ "$(move_is "$ID" running)" = True ] || fail "move $ID did not wait for node 2: $(move_state "$ID")"
echo "[${SECONDS}s] move $ID: merge of regions 4 and 5 asked, node 2 killed: $(move_state "$ID")"
cl_start 2
until_true 600 "move $ID (merge of regions 4 and 5) did not end done: $(move_state "$ID")" move_is "$ID" done
merged() {
	local i
	for i in 1 2 3; do
		[ "$(cl_regions "$i" "(rs[4]['epoch'], rs[4]['sealed'], rs[5].get('merged_into'))")" = "($((E4 + 1)), False, 4)" ] ||
			{ echo False; return; }
	done
	echo True
}
until_true 300 "not every node merged region 5 into region 4 at segment $((E4 + 1)): $(for i in 1 2 3; do cl_regions "$i" "[(r['id'], r['epoch'], r.get('merged_into')) for r in rs]"; done)" merged
W=$(python3 -c "a, b = $P4, $P5; assert a[1] + 1 == b[0]; print((a[0], b[1]))") || fail "regions 4 and 5 were not adjacent: $P4 $P5"
[ "$(range 4)" = "$W" ] || fail "ctld's region 4 is $(range 4) after the merge, not $W"
[ "$(ql regions "r['regions'][5].get('merged_into')")" = 4 ] || fail "ctld's region 5 is not merged into 4: $(ql regions "r['regions'][5]")"
for i in 1 2 3; do
	[ "$(node_range "$i" 4)" = "$W" ] || fail "node $i routes region 4 as $(node_range "$i" 4), not $W"
done
echo "[${SECONDS}s] node 2 back: move $ID done ($(ql moves "[m['took_ms'] for m in r['moves'] if m['id'] == $ID][0]") ms), region 4 covers $W at segment $((E4 + 1))"
# a node restarted after the merge starts with region 5 gone: no files, routed to region 4
cl_kill 3
cl_start 3
until_true 300 "node 3 did not come back merged" merged
ls "$DIR/d3/snap/" | grep -q "region-0005" && fail "node 3 keeps region 5's files: $(ls "$DIR/d3/snap/")"
[ "$(node_range 3 4)" = "$W" ] || fail "node 3 routes region 4 as $(node_range 3 4) after its restart"
echo "[${SECONDS}s] node 3 restarted after the merge: region 5's files gone, region 4 covers $W"
cl_wait_leaders 1 0

# automatic split by size: the ctld replicas restarted one by one with split_bytes just
# below the largest region's size (its state is in its log: the map and moves stay); the
# largest region is split by ctld itself, a move of kind auto-split with its reason
BIG=$(cl_regions 2 "max(r.get('bytes', 0) for r in rs)")
CTLD_SPLIT_BYTES=$((BIG * 9 / 10)) CTLD_BALANCE_MS=1000
restart_ctlds
until_true 600 "no automatic split of a region above $CTLD_SPLIT_BYTES bytes: $(ql moves "r['moves'][-2:]") $(ql regions "r.get('auto_split_blocked')")" \
	ql moves "any(m['kind'] == 'auto-split' and m['state'] == 'done' for m in r['moves'])"
AUTO=$(ql moves "[(m['region'], m['new_region'], m['why']) for m in r['moves'] if m['kind'] == 'auto-split'][0]")
echo "[${SECONDS}s] automatic split above $CTLD_SPLIT_BYTES bytes: (region, new region, why) $AUTO"
NEW=$(ql moves "[m['new_region'] for m in r['moves'] if m['kind'] == 'auto-split'][0]")
until_true 300 "not every node runs region $NEW" ql regions "len(r['regions']) > $NEW"
until_true 300 "not every node made region $NEW" both_at "$(ql regions "r['regions'][$NEW]['split_from']")" "$NEW" "$(ql regions "r['regions'][$NEW]['epoch']")"

sl_wait_producers
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=0
bench_summary "$DIR/bench.json" || { cat "$DIR/bench.err"; fail "sluice-bench exited $rc"; }
cl_caught_up >/dev/null || fail "replicas did not catch up"
# the automatic splits the load set off end (the load is over: none starts after them)
until_true 600 "a move is still running: $(ql moves "[m for m in r['moves'] if m['state'] == 'running']")" \
	ql moves "all(m['state'] != 'running' for m in r['moves'])"
# automatic merge: the ctld replicas restarted with split_bytes off and merge_bytes just
# above the smallest pair of neighbours that may merge (one core on every node: ctld's
# rule, the root region of a split's chain mod the nodes' 2 cores; neither region split
# by an operator, which ctld leaves split for 10 minutes), below every other pair: ctld
# merges that pair by itself (a move of kind auto-merge with its reason), and nothing
# after it (the merged region and either neighbour are above merge_bytes)
pairs() {
	local held
	held=$(ql moves "[m['region'] for m in r['moves'] if m['kind'] == 'split']")
	ql regions "(lambda rs: sorted((rs[i]['bytes'] + rs[j]['bytes'], i, j) for i in range(len(rs)) for j in range(len(rs)) if rs[i].get('merged_into') is None and rs[j].get('merged_into') is None and i not in $held and j not in $held and int(rs[i]['hash_hi'], 16) + 1 == int(rs[j]['hash_lo'], 16) and (lambda f: f(f, i) == f(f, j))(lambda f, k: k % 2 if rs[k].get('split_from') is None else f(f, rs[k]['split_from']))))(r['regions'])"
}
until_true 300 "a region's size is unknown: $(ql regions "[x.get('bytes') for x in r['regions']]")" \
	ql regions "all(x.get('bytes') is not None for x in r['regions'] if x.get('merged_into') is None)"
PAIRS=$(pairs)
echo "[${SECONDS}s] neighbours that may merge (bytes together, region, neighbour): $PAIRS"
CTLD_MERGE_BYTES=$(python3 -c "import sys; p = eval(sys.argv[1]); print(p[0][0] + 1 if len(p) > 0 and (len(p) == 1 or p[1][0] > p[0][0] + 1) else 0)" "$PAIRS")
[ "$CTLD_MERGE_BYTES" != 0 ] || fail "no pair of neighbours to merge alone: $PAIRS"
WANT=$(python3 -c "import sys; p = eval(sys.argv[1])[0]; print(p[1], p[2])" "$PAIRS")
CTLD_SPLIT_BYTES=
N_MOVES=$(ql moves "r['total']")
restart_ctlds
until_true 600 "no automatic merge below $CTLD_MERGE_BYTES bytes: $(ql moves "r['moves'][-2:]") $(ql regions "r.get('auto_merge_blocked')")" \
	ql moves "any(m['kind'] == 'auto-merge' and m['state'] == 'done' for m in r['moves'])"
AUTO=$(ql moves "[(m['region'], m['merge_with'], m['why']) for m in r['moves'] if m['kind'] == 'auto-merge'][0]")
echo "[${SECONDS}s] automatic merge below $CTLD_MERGE_BYTES bytes: (region, merged, why) $AUTO"
[ "$(ql moves "[str(m['region']) + ' ' + str(m['merge_with']) for m in r['moves'] if m['kind'] == 'auto-merge'][0]")" = "$WANT" ] ||
	fail "ctld merged another pair than $WANT: $AUTO"
sleep 4 # two sustain times: nothing else is due
# (leader balance moves may come meanwhile: a node that missed a heartbeat on this loaded
# host gets its leaders back; only splits and merges are counted)
[ "$(ql moves "len([m for m in r['moves'] if m['id'] > $N_MOVES and m['kind'] in ('split', 'auto-split', 'merge', 'auto-merge')])")" = 1 ] ||
	fail "ctld split or merged more than the one merge: $(ql moves "r['moves'][-3:]")"
until_true 300 "the nodes do not route as ctld's map" nodes_route
# every node routes the whole hash space, each hash to exactly one region, as ctld's map
for i in 1 2 3; do
	t=$(cl_regions "$i" "(lambda v: 'ok' if v[0][0] == 0 and v[-1][1] == 2**64 - 1 and all(a[1] + 1 == b[0] for a, b in zip(v, v[1:])) else v)(sorted((int(r['hash_lo'], 16), int(r['hash_hi'], 16)) for r in rs if 'merged_into' not in r))")
	[ "$t" = ok ] || fail "node $i's regions do not cover the hash space once: $t"
	[ "$(cl_regions "$i" "[(r['hash_lo'], r['hash_hi']) for r in rs if 'merged_into' not in r]")" = "$(ql regions "[(x['hash_lo'], x['hash_hi']) for x in r['regions'] if x.get('merged_into') is None]")" ] ||
		fail "node $i routes other ranges than ctld's map: $(cl_regions "$i" "[(r['id'], r.get('hash_lo'), r.get('hash_hi'), r.get('unborn')) for r in rs]") against $(ql regions "[(x['id'], x['hash_lo'], x['hash_hi']) for x in r['regions']]")"
done
echo "[${SECONDS}s] every node routes the hash space once over $(ql regions "len(r['regions'])") regions, as ctld's map"
cl_verify_all
for i in 1 2 3; do
	echo "node $i: splits $(cl_stat "$i" region_splits), merges $(cl_stat "$i" region_merges), points moved to a new region while waiting $(cl_stat "$i" points_rerouted), stale routes $(cl_stat "$i" route_stale), forwarded batches routed again $(cl_stat "$i" fwd_rerouted), points failed then $(cl_stat "$i" reroute_failed)"
	[ "$(cl_stat "$i" region_split_failed)" = 0 ] || fail "node $i counted failed splits"
	[ "$(cl_stat "$i" region_merge_failed)" = 0 ] || fail "node $i counted failed merges"
done
"$CTL" --socket "$(csock "$(leader)")" moves
echo "[${SECONDS}s] ctld_split: PASS ($(cl_acks) batches acknowledged)"

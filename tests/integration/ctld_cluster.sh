#!/usr/bin/env bash
# ctld_cluster.sh SLUICED CTLD PRODUCER VERIFY - the control plane: three sluice-ctld
# replicas on loopback bootstrap a 3-node, 4-region cluster (regions 0-2 raft RF 3, region
# 3 standalone); three sluiced nodes join and heartbeat. The nodes' own config says every
# region is raft: they run ctld's map (region 3 standalone), taken at start and kept in
# their data dirs. Checks: the map (members/regions/placement --json, equal to what the
# nodes run); a node restarted while no ctld answers runs the map it kept; a data dir
# that kept another map than ctld's refuses to start; a
# SIGKILLed data node is marked down and back up after its restart; a SIGKILLed ctld
# leader is replaced under load (writes through node 2 go on and read back exactly) with
# the map unchanged, and the killed replica catches up when it
# returns; with one ctld replica hung (SIGSTOP) and the others stopped the data nodes
# still take and serve writes. A follower refuses writes naming the leader; malformed
# heartbeats and joins are refused and counted, and so are garbage datagrams; operator
# errors stop sluice-ctld with a message. Finally every replica restarts from its data
# dir with the same map.
set -euo pipefail
SLUICED=$1 CTLD=$2 PRODUCER=$3 VERIFY=$4
CTL=$(dirname "$SLUICED")/sluicectl
NAME=ctld$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR
CTLD_REGIONS=2 CTLD_PROTOCOLS=3:standalone
CTLD_ARGS=(--set cluster.regions=4) # the config file says 2 regions: --set overrides it
. "$(dirname "$0")/ctld_lib.sh"
NPIDS=(0 0 0 0)
cleanup_all() {
	for i in 1 2 3; do
		[ "${CPIDS[$i]}" != 0 ] && kill -9 "${CPIDS[$i]}" 2>/dev/null || true
		[ "${NPIDS[$i]}" != 0 ] && kill -9 "${NPIDS[$i]}" 2>/dev/null || true
		rm -f "/dev/shm/sluice-$NAME-$i.ingest" "/dev/shm/sluice-$NAME-$i.stats"
	done
	sl_cleanup
}
trap cleanup_all EXIT
fail() {
	echo "FAIL: $*"
	for i in 1 2 3; do
		echo "-- ctld $i:"; tail -5 "$DIR/ctld$i.log" 2>/dev/null || true
		"$CTL" --socket "$DIR/c$i/ctld.sock" --timeout 1000 --json status 2>&1 || true
	done
	for i in 1 2 3; do echo "-- node $i:"; tail -5 "$DIR/node$i.log" 2>/dev/null || true; done
	exit 1
}

nsock() { echo "$DIR/d$1/sluiced.sock"; }
start_node() { # start_node I [EXTRA ARGUMENTS...]
	local i=$1
	shift
	rm -f "$(nsock "$i")"
	"$SLUICED" --data-dir "$DIR/d$i" --name "$NAME-$i" --workers 2 --regions 4 \
		--set regions.protocol=raft \
		--set node.id="$i" --set cluster.nodes=3 \
		--set cluster.fabric_dir="$DIR/fab" \
		--set cluster.ctld="$(csock 1),$(csock 2),$(csock 3)" "$@" >>"$DIR/node$i.log" 2>&1 &
	NPIDS[$i]=$!
	wait_sock "$(nsock "$i")" "${NPIDS[$i]}" "$DIR/node$i.log"
}
test_acked2() { [ -s "$DIR/acked2.log" ] && echo True || echo False; }
# node3_once: node 3 started in the foreground, for a start that must be refused
node3_once() {
	timeout 60 "$SLUICED" --data-dir "$DIR/d3" --name "$NAME-3" --workers 2 --regions 4 \
		--set regions.protocol=raft --set node.id=3 --set cluster.nodes=3 \
		--set cluster.fabric_dir="$DIR/fab" --set cluster.ctld="$(csock 1),$(csock 2),$(csock 3)"
}
test_no_marker3() { [ -e "$DIR/d3/REJOIN" ] && echo False || echo True; }

# operator errors: refused at start with a message naming the problem
refused() { # refused TEXT ARGS...: sluice-ctld ARGS exits 1 saying TEXT
	local text=$1 out rc=0
	shift
	out=$("$CTLD" "$@" 2>&1) || rc=$?
	[ "$rc" -eq 1 ] && [[ "$out" == *"$text"* ]] || fail "sluice-ctld $* gave $rc: $out"
}
refused "ctld runs as 1 or 3" --set ctld.peers=1@127.0.0.1:1,2@127.0.0.1:2
refused "No such file" --config "$DIR/none.ini"
refused "needs at least as many nodes" --set cluster.replication=3
refused "unknown key [ctld] bogus" --set ctld.bogus=1
refused "is not among [ctld] peers" --set ctld.id=4

for i in 1 2 3; do start_ctld "$i"; done
refused "another sluice-ctld uses this data_dir" --config "$DIR/ctld1.ini" --set cluster.regions=4 \
	--set ctld.ctl_socket="$DIR/other.sock"
until_true 300 "no ctld leader bootstrapped the cluster" \
	q "$(csock 1)" status "r['bootstrapped'] and r['leader'] is not None and r['applied_index'] == r['commit_index']"
L=$(leader)
[ -n "$L" ] || fail "no ctld leader"
LS=$(csock "$L")
echo "[${SECONDS}s] ctld leader: replica $L"

# the map: 4 regions covering the hash space, 3 replicas each, preferred leaders spread
python3 - "$("$CTL" --socket "$LS" --json regions)" "$("$CTL" --socket "$LS" --json placement)" \
	"$("$CTL" --socket "$LS" --json members)" <<'EOF' || fail "map"
import json, sys
rs = json.loads(sys.argv[1])['regions']
pl = json.loads(sys.argv[2])['placement']
ms = json.loads(sys.argv[3])['members']
assert len(rs) == 4, rs
assert rs[0]['hash_lo'] == '0x0000000000000000' and rs[-1]['hash_hi'] == '0xffffffffffffffff'
for a, b in zip(rs, rs[1:]):
    assert int(a['hash_hi'], 16) + 1 == int(b['hash_lo'], 16), (a, b)
for r in rs[:3]:
    assert sorted(r['replicas']) == [1, 2, 3] and r['protocol'] == 'raft', r
assert rs[3]['replicas'] == [1] and rs[3]['protocol'] == 'standalone', rs[3]
for r in rs:
    assert r['preferred_leader'] in r['replicas'], r
leads = [r['preferred_leader'] for r in rs]
assert max(leads.count(n) for n in (1, 2, 3)) - min(leads.count(n) for n in (1, 2, 3)) <= 1, leads
assert sorted({p['node'] for p in pl}) == [1, 2, 3], pl
assert [len(p['replicas']) for p in pl] == [4, 3, 3], pl
assert [m['state'] for m in ms] == ['expected'] * 3, ms
print('map: 4 regions, replicas', [r['replicas'] for r in rs], 'preferred leaders', leads)
EOF
"$CTL" --socket "$LS" regions

for i in 1 2 3; do start_node "$i"; done
# the map is the layout the nodes run: same protocol and replicas per region
python3 - "$("$CTL" --socket "$LS" --json regions)" "$("$CTL" --socket "$(nsock 1)" --json regions)" <<'EOF' || fail "ctld map and node layout differ"
import json, sys
c = json.loads(sys.argv[1])['regions']
n = json.loads(sys.argv[2])['regions']
assert len(c) == len(n), (c, n)
for a, b in zip(c, n):
    assert (a['id'], a['protocol'], a['replicas'], a['hash_lo'], a['hash_hi']) == \
        (b['id'], b['protocol'], b['replicas'], b['hash_lo'], b['hash_hi']), (a, b)
print('the map matches node 1 region for region')
EOF
grep -q "region map of 4 regions taken from ctld" "$DIR/node1.log" || fail "node 1 did not say it took ctld's map"
[ "$(head -1 "$DIR/d1/regions.map")" = "regions 4" ] || fail "node 1 keeps no region map"
grep -qx "3 standalone 1 1" "$DIR/d1/regions.map" || fail "node 1's kept map: $(cat "$DIR/d1/regions.map")"
until_true 600 "members never showed 3 nodes up" \
	ql members "[m['state'] for m in r['members']] == ['up'] * 3 and all(m['heartbeat_age_ms'] is not None for m in r['members'])"
until_true 300 "regions never showed an observed leader and commit lag" \
	ql regions "all(x['leader'] is not None and x['reporting'] == len(x['replicas']) and x['commit_lag'] is not None for x in r['regions'])"
"$CTL" --socket "$LS" members
"$CTL" --socket "$LS" regions
"$CTL" --socket "$LS" placement
[ "$(q "$(nsock 1)" status "r['ctld']['heartbeats'] > 0")" = True ] || fail "node 1 counts no heartbeat"
# observed region leaders are written to the log: a follower shows them too
for i in 1 2 3; do
	until_true 300 "ctld $i does not show every region's leader" \
		q "$(csock "$i")" regions "all(x['leader'] is not None for x in r['regions'])"
done
# writes only on the leader: a follower names it; a malformed heartbeat is refused, counted
L=$(leader) # again: a loaded host may have moved leadership since
[ -n "$L" ] || fail "no ctld leader"
LS=$(csock "$L")
F=$(( L % 3 + 1 ))
out=$("$CTL" --socket "$(csock "$F")" call heartbeat '{"node":1,"regions":[]}' 2>&1) && fail "follower took a heartbeat"
case "$out" in *"not_leader"*"leader is replica $L"*) ;; *) fail "follower answer: $out" ;; esac
out=$("$CTL" --socket "$LS" call heartbeat '{"node":1,"regions":[{"id":0,"role":"king"}]}' 2>&1) && fail "bad heartbeat taken"
case "$out" in *"bad_request"*) ;; *) fail "bad heartbeat answer: $out" ;; esac
[ "$(q "$LS" status "r['counters']['heartbeats_bad']")" -ge 1 ] || fail "bad heartbeat not counted"
out=$("$CTL" --socket "$LS" call join '{"node":9,"address":"x","cores":1}' 2>&1) && fail "join of node 9 taken"
case "$out" in *"bad_request"*) ;; *) fail "bad join answer: $out" ;; esac
# datagrams that are not from a peer (short, wrong magic, wrong cluster, right header but
# another sender address) are counted and dropped; the replica keeps leading and serving
bad0=$(q "$LS" status "r['counters']['udp_rx_bad']")
python3 - "$((BASE + L - 1))" "$L" <<'EOF'
import socket, struct, sys
port, me = int(sys.argv[1]), int(sys.argv[2])
peer = me % 3 + 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in [b'', b'x' * 10, struct.pack('<IIII', 0x12345678, 1, peer, me),
          struct.pack('<IIII', 0x44435453, 99, peer, me) + b'raft',
          struct.pack('<IIII', 0x44435453, 1, peer, me) + b'\xff' * 64]:
    s.sendto(d, ('127.0.0.1', port))
EOF
until_true 100 "garbage datagrams not counted" q "$LS" status "r['counters']['udp_rx_bad'] >= $bad0 + 5"
[ "$(q "$LS" status "r['role']")" = leader ] || echo "note: leadership moved during the garbage check"
q "$LS" members "len(r['members'])" | grep -qx 3 || fail "ctld $L stopped serving after garbage datagrams"

# a data node killed is marked down, and up again once it is back
kill -9 "${NPIDS[2]}"; wait "${NPIDS[2]}" 2>/dev/null || true; NPIDS[2]=0
until_true 300 "node 2 not marked down" ql members "r['members'][1]['state'] == 'down'"
echo "[${SECONDS}s] node 2 killed: marked down"
start_node 2
until_true 300 "node 2 not marked up after its restart" ql members "r['members'][1]['state'] == 'up'"
echo "[${SECONDS}s] node 2 restarted: up"

# the ctld leader killed under load (a producer writing through node 2 meanwhile): another
# leads, the map is the same, the old one catches up; the writes are checked below
"$PRODUCER" --path "/dev/shm/sluice-$NAME-2.ingest" --log "$DIR/acked2.log" --points 60000 \
	--series 20 --batch 500 --key-prefix p2 --timeout 200 --pace-ms 50 >"$DIR/producer2.log" 2>&1 &
P2=$!
until_true 300 "no write acknowledged through node 2" test_acked2
L=$(leader)
[ -n "$L" ] || fail "no ctld leader"
LS=$(csock "$L")
MAP_BEFORE=$(q "$LS" regions "json.dumps([{k: x[k] for k in ('id', 'hash_lo', 'hash_hi', 'protocol', 'replicas', 'preferred_leader')} for x in r['regions']])")
PL_BEFORE=$("$CTL" --socket "$LS" --json placement)
kill -9 "${CPIDS[$L]}"; wait "${CPIDS[$L]}" 2>/dev/null || true; CPIDS[$L]=0
a0=$(wc -l <"$DIR/acked2.log")
NL=$(leader "$L")
[ -n "$NL" ] && [ "$NL" != "$L" ] || fail "no new ctld leader after killing replica $L"
a1=$(wc -l <"$DIR/acked2.log")
[ "$a1" -gt "$a0" ] || fail "no write acknowledged while ctld elected a new leader ($a0 -> $a1 batches)"
echo "[${SECONDS}s] writes through node 2 went on while ctld had no leader: $a0 -> $a1 acknowledged batches"
NLS=$(csock "$NL")
echo "[${SECONDS}s] ctld leader $L killed: replica $NL leads"
MAP_AFTER=$(q "$NLS" regions "json.dumps([{k: x[k] for k in ('id', 'hash_lo', 'hash_hi', 'protocol', 'replicas', 'preferred_leader')} for x in r['regions']])")
[ -n "$MAP_AFTER" ] && [ "$MAP_BEFORE" = "$MAP_AFTER" ] || fail "region map changed: $MAP_BEFORE / $MAP_AFTER"
# heartbeats reach the new leader: every node up there too (its grace is one timeout)
until_true 300 "the new leader does not see 3 nodes up" \
	ql members "[m['state'] for m in r['members']] == ['up'] * 3 and all(m['heartbeat_age_ms'] is not None for m in r['members'])"
PL_AFTER=$("$CTL" --socket "$NLS" --json placement)
[ "$PL_BEFORE" = "$PL_AFTER" ] || fail "placement changed: $PL_BEFORE / $PL_AFTER"
start_ctld "$L"
until_true 300 "ctld replica $L did not catch up" \
	q "$(csock "$L")" status "r['applied_index'] >= $(q "$NLS" status "r['commit_index']") and r['bootstrapped']"
[ "$(q "$(csock "$L")" placement "json.dumps(r, separators=(',', ':'))")" = \
	"$(q "$NLS" placement "json.dumps(r, separators=(',', ':'))")" ] || fail "replica $L's map differs"
echo "[${SECONDS}s] ctld replica $L restarted: caught up with the same map"
wait "$P2" || { cat "$DIR/producer2.log"; fail "producer through node 2 while ctld's leader was killed"; }
echo "[${SECONDS}s] 60000 points written through node 2 while ctld's leader was killed and replaced"

# no ctld serving: one replica hung (SIGSTOP: calls to it time out), the others stopped;
# the data nodes keep taking and serving writes
H=$(leader)
[ -n "$H" ] || H=1
kill -STOP "${CPIDS[$H]}"
for i in 1 2 3; do
	[ "$i" = "$H" ] && continue
	kill -TERM "${CPIDS[$i]}"; wait "${CPIDS[$i]}" || fail "ctld $i exit"; CPIDS[$i]=0
done
f0=$(q "$(nsock 1)" status "r['ctld']['failures']")
POINTS=20000 SERIES=20 BATCH=500
"$PRODUCER" --path "/dev/shm/sluice-$NAME-1.ingest" --log "$DIR/acked.log" --points $POINTS \
	--series $SERIES --batch $BATCH --key-prefix p1 --timeout 200 >"$DIR/producer.log" 2>&1 ||
	{ cat "$DIR/producer.log"; fail "producer with ctld down"; }
# followers apply what the leader committed (bounded) before they are read
converged() { # every replica of a region applied the highest commit index reported
	python3 - "$("$CTL" --socket "$(nsock 1)" --json regions)" \
		"$("$CTL" --socket "$(nsock 2)" --json regions)" \
		"$("$CTL" --socket "$(nsock 3)" --json regions)" <<'EOF' 2>/dev/null || echo False
import json, sys
nodes = [json.loads(a)['regions'] for a in sys.argv[1:]]
held = [[x for x in rs if x['role'] != 'none'] for rs in zip(*nodes)]
print(all(len({x['applied_index'] for x in h} | {max(x['commit_index'] for x in h)}) == 1 for h in held))
EOF
}
until_true 300 "the nodes did not apply the same log" converged
for i in 1 2 3; do
	# the standalone region is read from the node that holds it
	python3 "$VERIFY" --socket "$(nsock "$i"),$(nsock 1)" --points $POINTS --series $SERIES --batch $BATCH \
		--key "p1,host=h{s:03d} value" --exact | sed "s/^/node $i: /"
	[ "${PIPESTATUS[0]}" -eq 0 ] || fail "points on node $i"
	# and those written while ctld's leader was killed
	python3 "$VERIFY" --socket "$(nsock "$i"),$(nsock 1)" --points 60000 --series 20 --batch 500 \
		--key "p2,host=h{s:03d} value" --exact | sed "s/^/node $i, during the ctld kill: /"
	[ "${PIPESTATUS[0]}" -eq 0 ] || fail "points written during the ctld kill, on node $i"
done
f1=$(q "$(nsock 1)" status "r['ctld']['failures']")
# a node restarted while no ctld answers runs the map its data dir kept
kill -9 "${NPIDS[3]}"; wait "${NPIDS[3]}" 2>/dev/null || true; NPIDS[3]=0
start_node 3
grep -q "ctld did not answer: running the region map kept in" "$DIR/node3.log" || fail "node 3 did not run its kept map"
[ "$(q "$(nsock 3)" regions "[x['protocol'] for x in r['regions']]")" = "['raft', 'raft', 'raft', 'standalone']" ] ||
	fail "node 3 runs $(q "$(nsock 3)" regions "[x['protocol'] for x in r['regions']]") without ctld"
echo "[${SECONDS}s] node 3 restarted without ctld: it runs the map it kept"
kill -9 "${CPIDS[$H]}"; wait "${CPIDS[$H]}" 2>/dev/null || true; CPIDS[$H]=0
[ "$f1" -gt "$f0" ] || fail "node 1 counted no failed report with ctld down ($f0 -> $f1)"
echo "[${SECONDS}s] ctld $H hung, the others down: $POINTS points written and read back on every node; node 1 report failures $f0 -> $f1"

# every replica restarted from its data dir: the same map from the log, the nodes report
# again without being restarted
for i in 1 2 3; do start_ctld "$i"; done
until_true 300 "no ctld leader after restarting every replica" \
	q "$(csock 1)" status "r['bootstrapped'] and r['leader'] is not None"
RL=$(leader)
[ -n "$RL" ] || fail "no ctld leader after the restart"
MAP_RESTART=$(q "$(csock "$RL")" regions "json.dumps([{k: x[k] for k in ('id', 'hash_lo', 'hash_hi', 'protocol', 'replicas', 'preferred_leader')} for x in r['regions']])")
[ "$MAP_BEFORE" = "$MAP_RESTART" ] || fail "region map changed over a full restart: $MAP_RESTART"
until_true 300 "the nodes do not report to the restarted ctld" \
	ql members "[m['state'] for m in r['members']] == ['up'] * 3 and all(m['heartbeat_age_ms'] is not None for m in r['members'])"
echo "[${SECONDS}s] every ctld replica restarted: the same map, 3 nodes up (leader $RL)"
# a data dir that kept another map than ctld's: refused, nothing started (node 3 stopped
# first, its data dir's map edited: region 3 on nodes 1-3 by raft)
kill -TERM "${NPIDS[3]}"; wait "${NPIDS[3]}" || fail "node 3 exit"; NPIDS[3]=0
sed -i 's/^3 standalone 1 1$/3 raft 1 1,2,3/' "$DIR/d3/regions.map"
rc=0
out=$(node3_once 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [[ "$out" == *"ctld's region map differs from the one"*"region 3"* ]] ||
	fail "a data dir with another map started (rc $rc): $out"
echo "[${SECONDS}s] a data dir that kept another map refuses to start: $(echo "$out" | grep -o "ctld's region map differs[^;]*")"
# node 3 lost its data dir: without --rejoin the start is refused (ctld shows it joined
# before) and nothing is written; with --rejoin it catches up, votes again, and holds
# every point written earlier
rm -rf "$DIR/d3"
rc=0
out=$(node3_once 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [[ "$out" == *"joined this cluster before"*"--rejoin"* ]] ||
	fail "node 3 started on a new data dir without --rejoin (rc $rc): $out"
[ ! -e "$DIR/d3/node.meta" ] || fail "the refused start wrote node.meta"
start_node 3 --rejoin
until_true 600 "node 3 did not rejoin" q "$(nsock 3)" regions "not any(x['rejoining'] for x in r['regions']) and all(x['applied_index'] > 0 for x in r['regions'] if x['role'] != 'none')"
until_true 300 "node 3's REJOIN marker stays" test_no_marker3
until_true 300 "the nodes did not apply the same log after the rejoin" converged
python3 "$VERIFY" --socket "$(nsock 3),$(nsock 1)" --points 60000 --series 20 --batch 500 \
	--key "p2,host=h{s:03d} value" --exact | sed "s/^/node 3 after its rejoin: /"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "points on node 3 after its rejoin"
echo "[${SECONDS}s] node 3 lost its data dir: refused without --rejoin, rejoined with it"
echo "[${SECONDS}s] ctld_cluster: PASS"

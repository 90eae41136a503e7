#!/usr/bin/env bash
# operator_errors.sh SLUICED SLUICECTL PRODUCER BENCH SIM - what an operator sees: a data
# dir under a missing parent, a bad config line and a WAL segment smaller than its buffer
# are refused with messages naming them; every binary answers --version; the effective
# config shows the values in use; ctl query answers not_found, takes tags in any order and
# refuses from > to; a type conflict is counted as rejected with its reason; sluicectl
# prints no control byte a client stored; a failed snapshot leaves no .snap.tmp and is
# counted; a WAL failure names its core and errno in status.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 BENCH=$4 SIM=$5
NAME=operr$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR SOCK=$SL_SOCK DATA=$SL_DIR/data
ESC=$(printf '\033')

fail() { echo "FAIL: $*"; [ -f "$DIR/node.log" ] && tail -20 "$DIR/node.log"; exit 1; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# refused EXPECT_TEXT ARGS...: sluiced ARGS exits non-zero (bounded) saying EXPECT_TEXT
refused() {
	local want=$1 rc=0
	shift
	timeout -s KILL 30 "$SLUICED" "$@" >"$DIR/out.log" 2>&1 || rc=$?
	echo "sluiced $*: exit $rc: $(head -c 300 "$DIR/out.log")"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] || fail "not refused: $*"
	grep -qF -- "$want" "$DIR/out.log" || fail "the error does not say '$want'"
}

# --- refused at start
refused "parent directory $DIR/nonexistent does not exist" --data-dir "$DIR/nonexistent/data" \
	--name "$NAME" --workers 1
[ ! -e "$DIR/nonexistent" ] || fail "a missing parent was created"
printf '[node]\nname = x\nbogus line\n' >"$DIR/bad.conf"
refused "line 3: 'bogus line'" --config "$DIR/bad.conf" --data-dir "$DATA"
refused "[wal] segment_mb = 1 (1024 KiB) is smaller than [wal] buffer_kb = 2048" \
	--data-dir "$DATA" --set wal.segment_mb=1 --set wal.buffer_kb=2048

# --- every binary answers --version
for b in "$SLUICED" "$CTL" "$BENCH" "$SIM"; do
	v=$(timeout 10 "$b" --version) || fail "$b --version exit $?"
	echo "$v" | grep -Eq '^[a-z-]+ [0-9]+\.[0-9]+' || fail "$b --version printed '$v'"
	echo "--version: $v"
done

# --- sluice-bench --transport disk: bounded by --points, the temp file removed, bad size refused
dj=$("$BENCH" --transport disk --path "$DIR" --points 20 --duration 30 --json) || fail "bench disk exit $?"
echo "$dj" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["ops"] == 20 and j["latency_ns"]["p50"] > 0, j' ||
	fail "bench disk: $dj"
! ls "$DIR"/sluice-bench-disk.* >/dev/null 2>&1 || fail "bench disk left its file behind"
"$BENCH" --transport disk --path "$DIR" --disk-bytes 100 2>"$DIR/bd.err" && fail "--disk-bytes 100 accepted"
grep -q "multiple of 4096" "$DIR/bd.err" || fail "bench disk error: $(cat "$DIR/bd.err")"
echo "bench disk: $dj"

# --- the effective config: the worker count in use, the EAL's vdevs too
eff=$("$SLUICED" --vdev net_null0 -- --set net.ipv4=10.9.9.1 --set net.vdevs=net_null1 --print-config)
echo "$eff" | grep -qx 'vdevs = net_null1 net_null0' || fail "--print-config vdevs: $(echo "$eff" | grep vdevs)"
# a config file takes several vdevs separated by spaces (';' would start a comment there)
printf '[net]\nipv4 = 10.9.9.1\nvdevs = net_null0 net_null1\n' >"$DIR/vdevs.conf"
# (the output is taken whole first: grep -q stopping early would end sluiced by SIGPIPE)
fcfg=$("$SLUICED" --config "$DIR/vdevs.conf" --print-config)
echo "$fcfg" | grep -qx 'vdevs = net_null0 net_null1' ||
	fail "vdevs from a config file: $(echo "$fcfg" | grep vdevs)"
echo "$eff" | grep -Eqx 'workers = [1-9][0-9]*' || fail "--print-config workers: $(echo "$eff" | grep workers)"
echo "$eff" | grep -qx 'ctl_socket = ./sluice-data/sluiced.sock' || fail "--print-config ctl_socket"

# --- a running node
sl_start_node "$SLUICED" --data-dir "$DATA" --name "$NAME" --regions 2 \
	--set debug.fault_injection=true --set wal.checkpoint_mb=1
workers=$("$CTL" --socket "$SOCK" --json status | jget 'd["workers"]')
cfg=$("$CTL" --socket "$SOCK" --json call config | jget 'd["config"]')
echo "$cfg" | grep -qx "workers = $workers" || fail "ctl config: $(echo "$cfg" | grep workers), status says $workers"
echo "$cfg" | grep -qx "stats_path = /dev/shm/sluice-$NAME.stats" || fail "ctl config: stats_path"

# two tags: stored canonical (sorted), found in any order
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/a1.log" --points 1000 --series 10 \
	--batch 100 --timeout 60 --key-prefix "itest,a=1" >/dev/null || fail "producer"
for key in 'itest,a=1,host=h003 value' 'itest,host=h003,a=1 value'; do
	n=$("$CTL" --socket "$SOCK" --json query "$key" | jget 'len(d["points"])')
	[ "$n" -eq 100 ] || fail "query '$key': $n points, want 100"
done
echo "query: tags in either order find the series"
rc=0
"$CTL" --socket "$SOCK" query 'itest,a=1,host=h999 value' 2>"$DIR/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'not_found' "$DIR/err.txt" || fail "unknown series: exit $rc, $(cat "$DIR/err.txt")"
rc=0
"$CTL" --socket "$SOCK" query 'itest,a=1,host=h003 value' --from 10 --to 5 2>"$DIR/err.txt" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'bad_request' "$DIR/err.txt" || fail "from > to: exit $rc, $(cat "$DIR/err.txt")"
echo "query: not_found and from > to refused"

# a type conflict (i64 points for f64 series) is rejected, counted with its reason
rc=0
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/a2.log" --points 100 --series 10 \
	--batch 100 --timeout 60 --key-prefix "itest,a=1" --int --stop-on-nack >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "a type conflict should be nacked (producer exit $rc)"
st=$("$CTL" --socket "$SOCK" --json status)
rej=$(echo "$st" | jget 'd["points_rejected"]')
why=$(echo "$st" | jget 'd["rejected_type_conflict"]')
echo "type conflict: points_rejected $rej, rejected_type_conflict $why"
tot=$("$CTL" --socket "$SOCK" --json stats | jget 'd["totals"]["points_rejected"]')
[ "$rej" -ge 100 ] && [ "$why" -ge 100 ] && [ "$tot" -ge 100 ] ||
	fail "type conflicts not counted (stats totals points_rejected $tot)"

# control bytes a client stored (or typed) never reach the terminal raw
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/a3.log" --points 10 --series 1 \
	--batch 10 --timeout 60 --key-prefix "ctl${ESC}[2Jx" >/dev/null || fail "producer (control key)"
"$CTL" --socket "$SOCK" query "ctl${ESC}[2Jx,host=h000 value" >"$DIR/q.txt" || fail "query of the control key"
"$CTL" --socket "$SOCK" query "nosuch${ESC}[31m value" 2>"$DIR/q.err" >/dev/null || true
! grep -q "$ESC" "$DIR/q.txt" "$DIR/q.err" || fail "sluicectl printed a raw ESC"
grep -qF 'ctl\e[2Jx' "$DIR/q.txt" || fail "the key is not shown escaped: $(cat "$DIR/q.txt")"
echo "sluicectl: control bytes escaped ($(head -1 "$DIR/q.txt" | cut -c1-60))"

# a snapshot that fails (its target is a non-empty directory): counted, no .snap.tmp left
mkdir -p "$DATA/snap/region-0000.snap/blocker"
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/a4.log" --points 100000 --series 10 \
	--batch 1000 --timeout 120 --key-prefix "big" >/dev/null || fail "producer (checkpoint)"
failed=0
for _ in $(seq 1 300); do
	failed=$("$CTL" --socket "$SOCK" --json status | jget 'd["snapshots_failed"]')
	[ "$failed" -ge 1 ] && break
	sleep 0.1
done
[ "$failed" -ge 1 ] || fail "no failed snapshot counted"
left=$(find "$DATA/snap" -name '*.tmp' | wc -l)
echo "snapshot failure: snapshots_failed $failed, tmp files left: $left"
[ "$left" -eq 0 ] || fail "a failed snapshot left $(find "$DATA/snap" -name '*.tmp')"
rm -rf "$DATA/snap/region-0000.snap"

# a WAL failure: status names the core and the errno
"$CTL" --socket "$SOCK" call debug_wal_fault '{"op":"fsync","errno":"EIO"}' >/dev/null
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/a5.log" --points 100 --series 10 \
	--batch 100 --timeout 30 --stop-on-nack >/dev/null 2>&1 || true
st=$("$CTL" --socket "$SOCK" --json status)
state=$(echo "$st" | jget 'd["state"]')
errno=$(echo "$st" | jget 'd["wal_failures"][0]["errno"] if d["wal_failures"] else -1')
echo "WAL failure: state '$state', errno $errno"
case "$state" in "failed (WAL error on core "*": Input/output error)") ;; *) fail "state '$state'" ;; esac
[ "$errno" -eq 5 ] || fail "wal_failures errno $errno, want 5 (EIO)"
"$CTL" --socket "$SOCK" status | grep -q "wal_failures" || fail "sluicectl status does not show wal_failures"
sl_kill_node
echo "operator_errors: PASS"

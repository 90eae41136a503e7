#!/usr/bin/env bash
# two_daemons.sh SLUICED SLUICECTL PRODUCER VERIFY - a second sluiced never takes a running
# node's state: started on the same data dir, or on another data dir under the same node
# name, it is refused (naming the first one's pid) before it creates anything, and the
# first node keeps its ingest ring, its ctl socket and its stats segment (`top`). After a
# SIGKILL the leftovers (lock file, shm segments) do not stop the next start.
set -euo pipefail
SLUICED=$1 CTL=$2 PRODUCER=$3 VERIFY=$4
NAME=twod$$
. "$(dirname "$0")/lib.sh"
DIR=$SL_DIR SOCK=$SL_SOCK
OTHER=${NAME}x
trap 'rm -f /dev/shm/sluice-$OTHER.ingest /dev/shm/sluice-$OTHER.stats; sl_cleanup' EXIT
SERIES=20 BATCH=100
COMMON=(--workers 1 --regions 4)

fail() { echo "FAIL: $*"; cat "$DIR/node.log"; exit 1; }

produce() { # produce LOG POINTS
	"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$1" --points "$2" --series "$SERIES" \
		--batch "$BATCH" --timeout 60 >"$DIR/producer.log" 2>&1 ||
		{ cat "$DIR/producer.log"; fail "producer exit"; }
}

# second DESCRIPTION ARGS...: a second sluiced with ARGS must exit non-zero at once, naming
# the first one's pid (bounded: a second node that wrongly starts is killed after 30 s)
second() {
	local what=$1
	shift
	local rc=0
	timeout -s KILL 30 "$SLUICED" "$@" "${COMMON[@]}" >"$DIR/second.log" 2>&1 || rc=$?
	echo "second sluiced, $what: exit $rc: $(head -c 300 "$DIR/second.log")"
	[ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] || fail "$what: the second sluiced was not refused"
	grep -q "pid $NODE_PID" "$DIR/second.log" || fail "$what: the error does not name pid $NODE_PID"
}

# the first node is still whole: its files, ctl, top, and ingest (acknowledged and stored)
first_intact() {
	local what=$1 stats_pid
	[ -S "$SOCK" ] || fail "$what: ctl socket gone"
	[ -e "/dev/shm/sluice-$NAME.ingest" ] || fail "$what: ingest ring gone"
	"$CTL" --socket "$SOCK" status >/dev/null || fail "$what: ctl status"
	"$CTL" --socket "$SOCK" --json top --count 1 --interval 0.2 >"$DIR/top.json" ||
		fail "$what: sluicectl top"
	stats_pid=$("$CTL" --socket "$SOCK" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	[ "$stats_pid" = "$NODE_PID" ] || fail "$what: status answered by pid $stats_pid"
}

sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" "${COMMON[@]}"
produce "$DIR/acked1.log" 2000

# 1. the same data dir (under another name, and under the same name)
second "same data dir, other name" --data-dir "$DIR/data" --name "$OTHER"
[ ! -e "/dev/shm/sluice-$OTHER.stats" ] && [ ! -e "/dev/shm/sluice-$OTHER.ingest" ] ||
	fail "the refused sluiced created shm segments"
first_intact "same data dir, other name"
second "same data dir, same name" --data-dir "$DIR/data" --name "$NAME"
first_intact "same data dir, same name"
# 2. another data dir under the same node name (the default shm names collide)
second "other data dir, same name" --data-dir "$DIR/data2" --name "$NAME"
[ ! -e "$DIR/data2/wal" ] || fail "the refused sluiced wrote into its data dir"
first_intact "other data dir, same name"

# the first node still ingests: more points, then every acknowledged one reads back
"$PRODUCER" --path "/dev/shm/sluice-$NAME.ingest" --log "$DIR/acked2.log" --points 4000 \
	--series "$SERIES" --batch "$BATCH" --timeout 60 >"$DIR/producer.log" 2>&1 ||
	{ cat "$DIR/producer.log"; fail "producer after the second daemons"; }
python3 "$VERIFY" --socket "$SOCK" --points 4000 --series "$SERIES" --batch "$BATCH" ||
	fail "points of the first node"

# a crash leaves the lock file and the segments: the next start takes them over
sl_kill_node
sl_start_node "$SLUICED" --data-dir "$DIR/data" --name "$NAME" "${COMMON[@]}" ||
	fail "restart after SIGKILL"
python3 "$VERIFY" --socket "$SOCK" --points 4000 --series "$SERIES" --batch "$BATCH" ||
	fail "points after the restart"
sl_stop_node
echo "two_daemons: PASS"

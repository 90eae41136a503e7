# lib.sh - sourced by the integration scripts: a temp dir, a node started and stopped by
# its PID, a tap device moved into a network namespace the test creates; sl_cleanup (on
# EXIT, also when a test fails) kills what is left and removes the namespace, the tap,
# the temp dir and the node's shm files. Set NAME before sourcing.
# Debian's python3 first in PATH when there is one: a version manager's shim (pyenv's
# runs bash scripts before python) costs about a second per start on a loaded 2-core
# machine, and these scripts start python3 hundreds of times.
[ -x /usr/bin/python3 ] && PATH="/usr/bin:$PATH"
SL_DIR=$(mktemp -d "/tmp/sluice-$NAME.XXXXXX")
# this directory, where sltest.py is: the helpers that ask a daemon for one JSON field
# (cl_regions, cl_stat, ctld_lib.sh's q) ask its ctl socket from one python3 (sltest.ctl),
# not a sluicectl piped into a python3: one process start per ask, not two (an ASan
# sluicectl's start is a good part of a poll's time under the sanitizers)
SL_PYLIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SL_SOCK=$SL_DIR/data/sluiced.sock
NODE_PID= PROD_PID= SL_NS= SL_TAP=
SL_PROD_PIDS=()

sl_cleanup() {
	[ -n "$PROD_PID" ] && kill -9 "$PROD_PID" 2>/dev/null || true
	for p in "${SL_PROD_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "$SL_NS" ] && ip netns del "$SL_NS" 2>/dev/null || true
	[ -n "$SL_TAP" ] && ip link del "$SL_TAP" 2>/dev/null || true
	# SL_KEEP=DIR (an existing directory): the test's logs are copied there first
	[ -n "${SL_KEEP:-}" ] && [ -d "$SL_KEEP" ] && cp -r "$SL_DIR"/*.log "$SL_KEEP"/ 2>/dev/null
	rm -rf "$SL_DIR" "/dev/shm/sluice-$NAME.ingest" "/dev/shm/sluice-$NAME.stats"
}
trap sl_cleanup EXIT

# until_true TRIES WHAT CMD...: run CMD every 0.1 s until it prints True (bounded); else
# the script's fail WHAT (when it has one) or FAIL: WHAT and exit 1
until_true() {
	local tries=$1 what=$2
	shift 2
	for _ in $(seq 1 "$tries"); do
		[ "$("$@")" = True ] && return 0
		sleep 0.1
	done
	declare -F fail >/dev/null && fail "$what"
	echo "FAIL: $what"
	exit 1
}
# sl_stat EXPR: a python expression over r = the node's `stats` result ($CTL: sluicectl)
sl_stat() {
	"$CTL" --socket "$SL_SOCK" --json stats |
		python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"
}
# sl_hold CORE true|false: tests-only debug_hold_core
sl_hold() { "$CTL" --socket "$SL_SOCK" call debug_hold_core "{\"core\":$1,\"hold\":$2}" >/dev/null; }
# sl_start_producers PRODUCER KEY_PREFIX [KEY_SUFFIX]: $PRODUCERS shm producers in the background, each
# writing $POINTS points of $SERIES series in $BATCH-point batches (keys KEY_PREFIX<p>KEY_SUFFIX),
# logging its acks to $SL_DIR/acked<p>.log; killed by sl_cleanup if still running.
sl_start_producers() {
	for p in $(seq 1 "$PRODUCERS"); do
		"$1" --path "/dev/shm/sluice-$NAME.ingest" --log "$SL_DIR/acked$p.log" \
			--points "$POINTS" --series "$SERIES" --batch "$BATCH" --key-prefix "$2$p${3:-}" \
			--timeout 200 >"$SL_DIR/producer$p.log" 2>&1 &
		SL_PROD_PIDS+=($!)
	done
}
# sl_wait_producers: each producer must exit 0 (its log is shown otherwise)
sl_wait_producers() {
	for i in "${!SL_PROD_PIDS[@]}"; do
		wait "${SL_PROD_PIDS[$i]}" ||
			{ echo "FAIL: producer $((i + 1))"; cat "$SL_DIR/producer$((i + 1)).log"; exit 1; }
	done
	SL_PROD_PIDS=()
}

# sl_start_node SLUICED ARGS...: start it (log in $SL_DIR/node.log) and wait, bounded, for
# its ctl socket; ARGS must include --data-dir "$SL_DIR/data" --name "$NAME".
sl_start_node() {
	local bin=$1
	shift
	rm -f "$SL_SOCK"
	"$bin" "$@" >>"$SL_DIR/node.log" 2>&1 &
	NODE_PID=$!
	for _ in $(seq 1 1200); do
		[ -S "$SL_SOCK" ] && return 0
		kill -0 "$NODE_PID" 2>/dev/null || { cat "$SL_DIR/node.log"; return 1; }
		sleep 0.05
	done
	echo "sluiced did not come up"
	cat "$SL_DIR/node.log"
	return 1
}

sl_stop_node() { kill -TERM "$NODE_PID"; wait "$NODE_PID"; NODE_PID=; }
sl_kill_node() { kill -9 "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true; NODE_PID=; }

# sl_netns_tap NS TAP PREFIX: move the node's tap TAP into a new namespace NS and give it
# PREFIX.2/24 there (the node answers on PREFIX.1). Called again after a node restart (a
# new process makes a new tap in the host namespace), it moves that one into NS.
sl_netns_tap() {
	if [ "$SL_NS" != "$1" ]; then
		SL_NS=$1 SL_TAP=$2
		ip netns add "$SL_NS"
	fi
	ip link set "$SL_TAP" netns "$SL_NS"
	ip -n "$SL_NS" addr add "${3}2/24" dev "$SL_TAP"
	ip -n "$SL_NS" link set "$SL_TAP" up
	ip -n "$SL_NS" link set lo up
}

# sl_wait_client LOG: waits for the client running as PROD_PID and shows LOG, its output;
# when it failed, also the node's last log lines, and the test fails.
sl_wait_client() {
	local rc=0
	wait "$PROD_PID" || rc=$?
	PROD_PID=
	if [ "$rc" -ne 0 ]; then
		echo "client failed (exit $rc):"; cat "$1"; tail -20 "$SL_DIR/node.log"; exit 1
	fi
	cat "$1"
}

sl_need_root() {
	if [ "$(id -u)" -ne 0 ]; then echo "$1: needs root for tap and netns: SKIP"; exit 77; fi
}

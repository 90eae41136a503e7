#!/usr/bin/env bash
# stall_counters.sh SLUICED SLUICECTL - the stall histogram: a worker round held for 120 ms
# (debug_hold_core stall_ms, tests only) is counted in stall_1ms, stall_10ms and
# stall_100ms (cumulative), per core in the stats segment, shown by `sluicectl stats`.
set -euo pipefail
SLUICED=$1 CTL=$2
NAME=stall$$
. "$(dirname "$0")/lib.sh"
sl_start_node "$SLUICED" --data-dir "$SL_DIR/data" --name "$NAME" --workers 2 \
	--set debug.fault_injection=true
"$CTL" --socket "$SL_SOCK" call debug_hold_core '{"core":1,"stall_ms":120}' >/dev/null
# bounded: the held round ends 120 ms later and is published at its end
for _ in $(seq 1 100); do
	[ "$(sl_stat 'r["cores"][1]["stall_100ms"]')" -ge 1 ] && break
	sleep 0.1
done
c1=$(sl_stat 'r["cores"][1]')
echo "core 1 after a 120 ms round: $(sl_stat '{k: r["cores"][1][k] for k in ("stall_1ms", "stall_10ms", "stall_100ms")}')"
[ "$(sl_stat 'r["cores"][1]["stall_100ms"]')" -ge 1 ] || { echo "FAIL: stall_100ms not counted: $c1"; exit 1; }
[ "$(sl_stat 'r["cores"][1]["stall_10ms"]')" -ge 1 ] || { echo "FAIL: stall_10ms not counted: $c1"; exit 1; }
[ "$(sl_stat 'r["cores"][1]["stall_1ms"]')" -ge 1 ] || { echo "FAIL: stall_1ms not counted: $c1"; exit 1; }
# attribution: the held round spent its time in the ctl stage (where the test hook sleeps);
# every stall round names exactly one stage
[ "$(sl_stat 'r["cores"][1]["stall_in_ctl"]')" -ge 1 ] || { echo "FAIL: stall_in_ctl not counted"; exit 1; }
[ "$(sl_stat 'sum(v for k, v in r["cores"][1].items() if k.startswith("stall_in_"))')" -eq \
	"$(sl_stat 'r["cores"][1]["stall_1ms"]')" ] || { echo "FAIL: stall_in_* do not add up to stall_1ms"; exit 1; }
# shown per core in the human table too
"$CTL" --socket "$SL_SOCK" stats | grep -E "^stall_(1|10|100)ms " >"$SL_DIR/table"
[ "$(wc -l <"$SL_DIR/table")" -eq 3 ] || { echo "FAIL: sluicectl stats lacks the stall rows"; exit 1; }
cat "$SL_DIR/table"
# the argument is checked
if "$CTL" --socket "$SL_SOCK" call debug_hold_core '{"core":1,"stall_ms":-1}' >/dev/null 2>&1; then
	echo "FAIL: a negative stall_ms was accepted"; exit 1
fi
sl_stop_node
echo "stall_counters: PASS"

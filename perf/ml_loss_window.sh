#!/usr/bin/env bash
# ml_loss_window.sh [BUILD] - how many acknowledged points a multileader region can lose
# with its node's disk, per ack level (docs/consistency.md "The loss window").
# Three nodes on this host (memif fabric), multileader regions where every replica takes
# the writes that reach it (multileader_home = false: what a client that writes to a
# region's home itself gets, with no fabric hop before the ack; a write forwarded from
# another node is acked over the fabric, behind its own replication, so it is not at
# risk). A shm producer on each node writes at full speed for LOAD seconds (default 4);
# node 3's points are acknowledged once node 3 holds them durably (ack copies 1) or once
# two replicas do (2). Then node 3 is SIGKILLed and its data dir deleted: a lost disk.
# The other producers go on; when they are done and nodes 1 and 2 agree, every
# acknowledged point is looked for on them. Prints, per ack
# level, the points acknowledged, node 3's acknowledged rate, the points lost and what
# time of node 3's writing that is. DELAY_MS=N (default 0) sends node 3's fabric frames N ms late (the
# replication lag of a slower link: the window grows with it). Everything it starts is
# stopped by PID and removed on exit.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
LOAD=${LOAD:-4} POINTS=${POINTS:-20000000} SERIES=${SERIES:-1000} BATCH=${BATCH:-1000}
ACKS=${ACKS:-"1 2"} DELAY_MS=${DELAY_MS:-0}
SLUICED=$B/ctl/sluiced PRODUCER=$B/tests/integration/shm_producer
VERIFY=$SRC/tests/integration/verify_points.py
[ -x "$SLUICED" ] && [ -x "$PRODUCER" ] || { echo "ml_loss_window: build $B first"; exit 1; }
NAME=mlw$$
REGIONS=6
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/cluster_lib.sh"

echo "node 3's frames $DELAY_MS ms late, $LOAD s of load before its disk is lost"
echo "| ack copies | points acked (all nodes) | node 3's acked points/s | lost with node 3's disk | lost, in node 3's time of writing |"
echo "|---|---|---|---|---|"
for k in $ACKS; do
	CL_ARGS=(--set regions.protocol=multileader --set regions.multileader_ack_copies="$k"
		--set regions.multileader_home=false
		--set debug.fault_injection=true)
	rm -rf "$SL_DIR"/d[123] "$SL_DIR"/fab "$SL_DIR"/acked*.log
	for i in 1 2 3; do cl_start "$i"; done
	for peer in 1 2; do
		"$CTL" --socket "$(cl_sock 3)" call debug_fabric \
			"{\"peer\":$peer,\"dir\":\"out\",\"delay_ms\":$DELAY_MS}" >/dev/null
	done
	t0=$(date +%s.%N)
	for p in 1 2 3; do
		"$PRODUCER" --path "/dev/shm/sluice-$NAME-$p.ingest" --log "$SL_DIR/acked$p.log" \
			--points "$POINTS" --series "$SERIES" --batch "$BATCH" --key-prefix "p$p" \
			--timeout $((LOAD + 30)) >"$SL_DIR/producer$p.log" 2>&1 &
		SL_PROD_PIDS+=($!)
	done
	sleep "$LOAD"
	before=$(cat "$SL_DIR/acked3.log" | wc -l)
	t1=$(date +%s.%N)
	[ -n "${VERBOSE:-}" ] && echo "node 3 before the kill: $(cl_stat 3 fab_fault_delayed) frames delayed, $(cat "$SL_DIR/acked3.log" | wc -l) batches acked to producer 3" >&2
	cl_kill 3
	rm -rf "$SL_DIR/d3"
	# the producers stop on their own (timeout or all written); stop them after 5 s more
	sleep 5
	for pid in "${SL_PROD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${SL_PROD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	SL_PROD_PIDS=()
	# nodes 1 and 2 settle: the same per-origin positions twice, 1 s apart
	for _ in $(seq 1 60); do
		a=$(cl_regions 1 "[[(o['node'], o['applied']) for o in r['origins']] for r in rs]")
		b=$(cl_regions 2 "[[(o['node'], o['applied']) for o in r['origins']] for r in rs]")
		[ "$a" = "$b" ] && sleep 1 &&
			[ "$(cl_regions 1 "[[(o['node'], o['applied']) for o in r['origins']] for r in rs]")" = "$a" ] && break
		sleep 0.5
	done
	lost=0 acked=0
	for p in 1 2 3; do
		out=$(python3 "$VERIFY" --socket "$(cl_sock 1),$(cl_sock 2)" --points "$POINTS" \
			--series "$SERIES" --batch "$BATCH" --key "p$p,host=h{s:03d} value" \
			--acked "$SL_DIR/acked$p.log" 2>/dev/null | tail -1) || true
		[ -n "${VERBOSE:-}" ] && echo "producer $p: $out" >&2
		acked=$((acked + $(echo "$out" | awk '{print $2}')))
		lost=$((lost + $(echo "$out" | sed -E 's/.*: ([0-9]+) missing.*/\1/')))
	done
	rate=$(python3 -c "print(round($before * $BATCH / ($t1 - $t0)))")
	ms=$(python3 -c "print(round(1000 * $lost / $rate, 1) if $rate else 0)")
	echo "| $k | $acked | $rate | $lost | $ms ms |"
	for i in 1 2; do cl_kill "$i"; done
done

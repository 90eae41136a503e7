#!/bin/sh
# mutation_check.sh - proves the simulator's checkers catch real protocol bugs: for each
# deliberate bug behind -Dmutations=..., build sluice-sim in its own (reused) build dir and
# assert that the CI seed budget FAILS with a checker violation. An assertion abort
# ("FAIL seed=N (assertion)") does not count: a checker must name what it saw.
# usage: mutation_check.sh SOURCE_DIR OUT_DIR SEEDS [MUTATION...]
#        (MUTATION_JOBS: ninja -j, default 2; no MUTATION given: all of them)
set -u
src=$1
out=$2
seeds=$3
shift 3
jobs=${MUTATION_JOBS:-2}
all="prev_term_commit double_vote no_truncate read_no_round long_lease no_vote_refusal
snap_old_conf no_change_guard early_self_count rejoin_votes lww_arrival ml_no_index_check
cad_early ml_rejoin_reuse sync_majority seal_leaky ml_seal_late split_boundary"
list=${*:-$all}
mkdir -p "$out"
status=0
for m in $list; do
	dir="$out/$m"
	if [ ! -f "$dir/build.ninja" ]; then
		if ! meson setup "$dir" "$src" -Dmutations="$m" >"$dir.log" 2>&1; then
			echo "mutation $m: meson setup failed (see $dir.log)"
			status=1
			continue
		fi
	fi
	if ! ninja -C "$dir" -j "$jobs" tests/sim/sluice-sim >>"$dir.log" 2>&1; then
		echo "mutation $m: build failed (see $dir.log)"
		status=1
		continue
	fi
	# a bug of the rejoin mode shows only when disks are lost; multileader's bugs need
	# the multileader mode
	extra=
	[ "$m" = rejoin_votes ] && extra=--disk-loss
	case $m in lww_arrival | ml_no_index_check | cad_early | sync_majority) extra="--protocol multileader" ;; esac
	[ "$m" = ml_rejoin_reuse ] && extra="--protocol multileader --disk-loss"
	# a seal bug needs groups that are sealed, through the driver as a node would
	[ "$m" = seal_leaky ] && extra="--driver --seal"
	[ "$m" = ml_seal_late ] && extra="--protocol multileader --seal"
	# a split cut one off needs regions that split (range.h's cut, shared with the node)
	[ "$m" = split_boundary ] && extra="--reconfig"
	"$dir/tests/sim/sluice-sim" --seeds "$seeds" $extra >"$dir.out" 2>&1
	# a checker's line is "FAIL seed=N: t=...: <checker>: <what it saw>"
	line=$(grep -m1 '^FAIL seed=[0-9]*: ' "$dir.out")
	if [ -n "$line" ]; then
		echo "mutation $m: caught: $line"
	elif grep -q '^FAIL seed=[0-9]* (assertion)' "$dir.out"; then
		echo "mutation $m: NOT caught by a checker: an assertion aborted first (see $dir.out)"
		status=1
	else
		echo "mutation $m: NOT caught within $seeds seeds (see $dir.out)"
		status=1
	fi
done
exit $status

#!/bin/sh
# mutation_check.sh - proves the simulator's checkers catch real protocol bugs: for each
# deliberate bug behind -Dmutations=..., build sluice-sim in its own (reused) build dir and
# assert that the CI seed budget FAILS with a checker violation.
# usage: mutation_check.sh SOURCE_DIR OUT_DIR SEEDS   (MUTATION_JOBS: ninja -j, default 2)
set -u
src=$1
out=$2
seeds=$3
jobs=${MUTATION_JOBS:-2}
mkdir -p "$out"
status=0
for m in prev_term_commit double_vote no_truncate; do
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
	"$dir/tests/sim/sluice-sim" --seeds "$seeds" >"$dir.out" 2>&1
	line=$(grep -m1 '^FAIL seed=' "$dir.out")
	if [ -z "$line" ]; then
		echo "mutation $m: NOT caught within $seeds seeds (see $dir.out)"
		status=1
	else
		echo "mutation $m: caught: $line"
	fi
done
exit $status

#!/usr/bin/env bash
# test.sh - every test on a fresh Debian 12 machine: installs what is missing, builds,
# runs the unit and fuzz-corpus suites, then the integration scenarios of suite long
# while the simulator suite runs in the background; then unit and fuzz-corpus again and
# the integration scenarios of suite sanitized against an ASan+UBSan build (each scenario
# runs in one of the two passes: tests/integration/meson.build says which and why); short
# libFuzzer runs of every parser; the simulator's mutation check (in the background
# during suite long). Exit status is non-zero if anything failed, and the last line is
# always `summary: ...`, naming the step that failed if one did.
set -euo pipefail
cd "$(dirname "$0")/.."
PASSED=0 SKIPPED=0 STEP="start" T0=$SECONDS

summary() {
	local rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "summary: $PASSED passed, 0 failed, $SKIPPED skipped ($((SECONDS - T0)) s)"
	else
		echo "summary: $PASSED passed, FAILED at step '$STEP' (exit $rc), $SKIPPED skipped ($((SECONDS - T0)) s)"
	fi
	# give back hugepages if the arena step was interrupted
	[ -n "${HUGE_RESERVED:-}" ] && echo 0 >/proc/sys/vm/nr_hugepages 2>/dev/null
	# stop the background builds if a step failed while they ran
	[ -n "${BG_PID:-}" ] && kill -- -"$BG_PID" 2>/dev/null
	exit "$rc"
}
trap summary EXIT

# step NAME: announce a step; its name is what the summary reports if it fails
step() {
	STEP=$1
	echo "== [$((SECONDS - T0)) s] $STEP"
}

# tally DIR [LOGBASE]: add the results of the meson test run made in DIR (its log
# meson-logs/LOGBASE.json, testlog by default; a failure already stopped the script: set -e)
tally() {
	local counts
	counts=$(python3 -c 'import json,sys
ok = skip = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    ok += r in ("OK", "EXPECTEDFAIL")
    skip += r == "SKIP"
print(ok, skip)' "$1/meson-logs/${2:-testlog}.json")
	PASSED=$((PASSED + ${counts% *})) SKIPPED=$((SKIPPED + ${counts#* }))
}

step "install missing Debian packages (scripts/deps.sh)"
scripts/deps.sh
step "build (build/)"
SL_PROGRESS=1 scripts/build.sh build
step "unit and fuzz-corpus suites (two at a time: none depends on timing)"
meson test -C build --no-suite integration --no-suite sim --print-errorlogs --num-processes 2
tally build
step "meson install into a temporary DESTDIR; the example built with the installed sluice.pc writes to the installed sluiced (scripts/install_check.sh)"
bash scripts/install_check.sh build
PASSED=$((PASSED + 1))
# The integration scenarios mostly wait on their clusters and leave the CPU idle: the
# ASan+UBSan and libFuzzer builds, then the simulator suite and its mutation check
# (deterministic: their seeds run in simulated time, so the CPU they get changes nothing
# they check), run meanwhile in the background under SCHED_IDLE (they get the CPU only
# when nothing else wants it: a scenario's processes always come first), in a process
# group of their own. Their output goes to build/bg-*.log, build/meson-logs/simlog.* (not
# testlog: suite long writes that meanwhile; no rebuild: build/ is built) and
# build/mutations.log; the steps below wait for them.
set -m
(
	chrt --idle 0 nice -n 19 scripts/build.sh build-asan -Db_sanitize=address,undefined \
		-Db_lundef=false >build/bg-asan.log 2>&1 ||
		{ echo "ASan+UBSan build failed" >>build/bg-asan.log; exit 1; }
	FUZZ_OUT=build-fuzz FUZZ_PHASE=build chrt --idle 0 nice -n 19 bash tests/fuzz/run.sh \
		>build/bg-fuzz.log 2>&1 || { echo "libFuzzer build failed" >>build/bg-fuzz.log; exit 2; }
	# (timeouts x3: a hang guard for a run that may wait on the scenarios' CPU)
	chrt --idle 0 nice -n 19 meson test -C build --suite sim --no-rebuild --logbase simlog \
		--print-errorlogs --num-processes 2 --timeout-multiplier 3 >build/bg-sim.log 2>&1 ||
		{ echo "simulator suite failed" >>build/bg-sim.log; exit 4; }
	chrt --idle 0 nice -n 19 ninja -C build sim-mutations >build/mutations.log 2>&1 ||
		{ echo "mutation check failed" >>build/mutations.log; exit 3; }
) &
BG_PID=$!
set +m
step "integration scenarios of suite long (one at a time: the tests start clusters)"
meson test -C build --suite integration --no-suite sanitized --print-errorlogs --num-processes 1
tally build
# The arena test takes the hugepage path only where 2 MiB pages are free. As root on a
# host with none reserved, reserve 16 for one more run of it, and give them back.
if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo x)" = 0 ]; then
	step "arena test with 16 hugepages reserved"
	HUGE_RESERVED=1
	if echo 16 >/proc/sys/vm/nr_hugepages 2>/dev/null && grep -q "HugePages_Free: *1[0-9]" /proc/meminfo; then
		build/tests/test_arena
		PASSED=$((PASSED + 1))
	else
		echo "(could not reserve hugepages here: the fallback path was tested above)"
	fi
	echo 0 >/proc/sys/vm/nr_hugepages
	HUGE_RESERVED=
fi
step "ASan+UBSan and libFuzzer builds, simulator suite, mutation check (build-asan/, build-fuzz/: waiting for the background jobs)"
bg_rc=0
wait "$BG_PID" || bg_rc=$?
BG_PID=
if [ "$bg_rc" -ne 0 ]; then
	tail -40 build/bg-asan.log build/bg-fuzz.log build/bg-sim.log build/mutations.log 2>/dev/null
	[ "$bg_rc" -ne 3 ] || STEP="mutation check: the simulator must catch each deliberate Raft bug within the CI seeds"
	[ "$bg_rc" -ne 4 ] || STEP="simulator suite (build/bg-sim.log)"
	exit "$bg_rc"
fi
echo "   simulator suite (run in the background above):"
grep -E '^ *[0-9]+/[0-9]+ ' build/bg-sim.log || true
tally build simlog
SL_PROGRESS=1 scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
step "unit and fuzz-corpus suites under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --suite unit --suite fuzz --print-errorlogs --num-processes 1
tally build-asan
step "integration scenarios of suite sanitized against the ASan+UBSan build (a sanitizer report aborts the node)"
# leak checks off here: DPDK keeps process-lifetime allocations that LeakSanitizer reports
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --suite integration --no-suite long --print-errorlogs --num-processes 1
tally build-asan
step "libFuzzer: every target for a short run (tests/fuzz/run.sh)"
FUZZ_OUT=build-fuzz FUZZ_PHASE=run bash tests/fuzz/run.sh "${FUZZ_SECONDS:-4}" | tee build/fuzz-run.log
PASSED=$((PASSED + $(grep -c '^ok fuzz_' build/fuzz-run.log)))
step "mutation check: the simulator must catch each deliberate Raft bug within the CI seeds (run in the background above)"
cat build/mutations.log
PASSED=$((PASSED + $(grep -c '^mutation .*: caught' build/mutations.log)))
STEP="done"

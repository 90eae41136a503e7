#!/usr/bin/env bash
# test.sh - every test on a fresh Debian 12 machine: installs what is missing, builds,
# runs the unit, simulator and integration suites, then the unit suite again under
# ASan+UBSan. Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
meson test -C build --print-errorlogs --num-processes 1
echo "== unit suite under ASan+UBSan"
scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --suite unit --print-errorlogs --num-processes 1

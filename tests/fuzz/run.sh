#!/usr/bin/env bash
# tests/fuzz/run.sh - builds every libFuzzer target with clang (-fsanitize=fuzzer,address,
# undefined) and runs each for N seconds (default 20), starting from the seed corpus.
# Usage: bash tests/fuzz/run.sh [seconds]. Exits non-zero on any crash or sanitizer report;
# the reproducer is left in $FUZZ_OUT/artifacts. FUZZ_OUT defaults to build-fuzz/ at the root.
# FUZZ_PHASE=build only builds the targets; FUZZ_PHASE=run only runs them (built before by
# FUZZ_PHASE=build into the same FUZZ_OUT); unset or "all": both.
set -euo pipefail

secs=${1:-20}
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;; esac
phase=${FUZZ_PHASE:-all}
case "$phase" in build | run | all) ;; *) echo "$0: FUZZ_PHASE must be build, run or all" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$root/build-fuzz}
cc=${FUZZ_CC:-clang}
mkdir -p "$out/artifacts"

flags=(-std=c11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers
	-fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-I"$root/include" -I"$root/dataplane" -I"$root/consensus" -I"$root/shm")
# shellcheck disable=SC2207
dpdk_cflags=($(pkg-config --cflags libdpdk))
# shellcheck disable=SC2207
libs=($(pkg-config --libs libxxhash libdpdk) -lm)

# fail early and clearly when the toolchain cannot build a fuzzer at all
probe="$out/probe.c"
[ "$phase" = run ] || {
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe" -o "$out/probe" 2>"$out/probe.log"; then
	echo "run.sh: $cc cannot link -fsanitize=fuzzer (install clang and libclang-rt-dev):" >&2
	cat "$out/probe.log" >&2
	exit 1
fi
}

# target name -> its sources besides fuzz_<name>.c (batch.c gives sl_series_id)
declare -A srcs=(
	[lineproto]="$root/dataplane/lineproto.c $root/dataplane/batch.c"
	[pkt]="$root/dataplane/pkt.c"
	[session]="$root/dataplane/session.c $root/dataplane/batch.c"
	[raft]="$root/consensus/raft.c"
	[multileader]="$root/consensus/multileader.c"
	[shm]="$root/shm/ingest.c $root/shm/stats.c"
	[session_snap]="$root/dataplane/session.c $root/dataplane/batch.c"
	[wal]="$root/consensus/wal_format.c"
	[fabric]="$root/dataplane/fabric.c"
	[fabric_udp]="$root/dataplane/fabric_udp.c $root/dataplane/pkt.c $root/dataplane/fabric.c"
	[store_image]="$root/dataplane/store.c $root/dataplane/batch.c $root/consensus/lww.c"
)
# target name -> libraries it needs besides libs (the store allocates with jemalloc's mallocx)
declare -A xlibs=([store_image]="-ljemalloc")
declare -A maxlen=([lineproto]=8192 [pkt]=9100 [session]=9100 [raft]=4096 [shm]=4096
	[session_snap]=1600 [wal]=16385 [fabric]=9100 [fabric_udp]=9100 [multileader]=4096
	[store_image]=8192)
targets=(lineproto pkt session raft shm session_snap wal fabric fabric_udp multileader store_image)
# FUZZ_TARGETS="raft wal" runs only those
[ -n "${FUZZ_TARGETS:-}" ] && read -ra targets <<<"$FUZZ_TARGETS"

if [ "$phase" != run ]; then
	for t in "${targets[@]}"; do
		# shellcheck disable=SC2086
		"$cc" "${flags[@]}" "${dpdk_cflags[@]}" "$here/fuzz_$t.c" ${srcs[$t]} "${libs[@]}" ${xlibs[$t]:-} \
			-o "$out/fuzz_$t" || { echo "FAILED to build fuzz_$t" >&2; exit 1; }
	done
fi
[ "$phase" = build ] && { echo "== fuzz targets built into $out"; exit 0; }
for t in "${targets[@]}"; do
	[ -x "$out/fuzz_$t" ] || { echo "run.sh: $out/fuzz_$t is not built (FUZZ_PHASE=build first)" >&2; exit 1; }
done

for t in "${targets[@]}"; do
	work="$out/corpus-$t" # new inputs go here; the seed directory stays as committed
	mkdir -p "$work"
	extra=()
	[ -f "$here/$t.dict" ] && extra+=(-dict="$here/$t.dict")
	# libFuzzer's own chatter (dictionary listings, per-input progress) goes to a log; the
	# console gets one line per target, or the log's report on a failure
	log="$out/fuzz_$t.log"
	if "$out/fuzz_$t" -max_total_time="$secs" -max_len="${maxlen[$t]}" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
		"${extra[@]}" "$work" "$here/corpus/$t" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
		echo "ok fuzz_$t: ${runs:-?} inputs in ${secs}s, ${cov:-cov: ?}, corpus $(find "$work" -type f | wc -l) files"
	else
		echo "FAILED fuzz_$t (full log: $log):"
		sed '/^###### Recommended dictionary/,/^###### End of recommended dictionary/d; /^Dictionary: /d' "$log" | tail -60
		exit 1
	fi
done
echo "== fuzzing passed (${secs}s per target)"

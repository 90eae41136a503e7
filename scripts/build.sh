#!/usr/bin/env bash
# build.sh DIR [meson options] - configure (once) and build sluice into DIR.
# Quiet by default; SL_PROGRESS=1 prints a progress line at every tenth of the build, and
# compiler errors are always shown in full.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@" >/dev/null
fi
# ninja status lines look like "[12/340] Compiling C object ..."; anything else is a
# diagnostic and is passed through
ninja -C "$dir" -j"$(nproc)" | awk -v progress="${SL_PROGRESS:-0}" -v dir="$dir" '
	/^\[[0-9]+\/[0-9]+\] / {
		split(substr($1, 2, length($1) - 2), nm, "/")
		tenth = int(nm[1] * 10 / nm[2])
		if (progress && tenth > shown) { printf "   %s: %d/%d steps\n", dir, nm[1], nm[2]; shown = tenth; fflush() }
		next
	}
	/^ninja: (Entering|no work)/ { next }
	{ print; fflush() }'

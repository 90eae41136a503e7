#!/usr/bin/env bash
# build.sh DIR [meson options] - configure (once) and build sluice into DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" -j"$(nproc)" >/dev/null

#!/usr/bin/env bash
# deps.sh - install the Debian packages sluice builds and tests with, if missing.
# As root: non-interactive apt-get. Otherwise: print the missing packages and fail.
set -euo pipefail
PKGS=(build-essential meson ninja-build pkg-config libdpdk-dev liburing-dev libjemalloc-dev
      libcmocka-dev libxxhash-dev libjson-c-dev libnuma-dev python3 iproute2 procps
      iputils-ping python3-influxdb clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "sluice: missing Debian packages: ${missing[*]}" >&2
	echo "sluice: install them as root: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "sluice: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

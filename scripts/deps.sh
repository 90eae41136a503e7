#!/usr/bin/env bash
# deps.sh - install the Debian packages sluice builds and tests with, if missing.
# As root: non-interactive apt-get. Otherwise: print the missing packages and fail.
set -euo pipefail
PKGS=(build-essential meson ninja-build pkg-config libdpdk-dev liburing-dev libjemalloc-dev
      libcmocka-dev libxxhash-dev libjson-c-dev libnuma-dev python3 iproute2 procps
      iputils-ping python3-influxdb clang libclang-rt-14-dev libprotobuf-c-dev protobuf-c-compiler
      libsnappy-dev libmicrohttpd-dev zlib1g-dev curl prometheus)
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
echo "sluice: apt-get update" >&2
apt-get update -qq
# progress: a line at every tenth package set up (a fresh machine sets up about 200)
apt-get install -y -q --no-install-recommends "${missing[@]}" |
	awk '/^Need to get/ { print "sluice: " $0; fflush() }
	     /^[0-9]+ upgraded, [0-9]+ newly installed/ { total = $3; print "sluice: " $0; fflush() }
	     /^Setting up / { n++; if (n % 10 == 0 || n == total) { printf "sluice: set up %d/%s packages\n", n, total ? total : "?"; fflush() } }
	     /^(E|W): / { print; fflush() }'
echo "sluice: packages installed" >&2

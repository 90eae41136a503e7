#!/bin/bash
# Builds the three HTTP probe servers with gcc -O2 against Debian's packages
# (pkg-config). Not part of the Meson build.
#   bash perf/http_libs/build.sh [OUT_DIR]     (default: $TMPDIR/sluice-http-libs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${TMPDIR:-/tmp}/sluice-http-libs}
mkdir -p "$out"
CC=${CC:-gcc}
CFLAGS=${CFLAGS:--O2 -g -std=c11 -Wall -Wextra}

# Each server twice: with glibc's malloc, and linked with jemalloc as sluiced is
# (Debian's libjemalloc exports malloc/free, so it serves every allocation in the
# process, the HTTP library's included). Suffix _je.
for alloc in glibc je; do
    sfx=; extra=
    if [[ $alloc == je ]]; then
        sfx=_je
        # --no-as-needed: keep it even where this file itself calls no allocator
        extra="-Wl,--no-as-needed $(pkg-config --libs jemalloc) -Wl,--as-needed"
    fi
    # shellcheck disable=SC2046,SC2086
    $CC $CFLAGS -o "$out/mhd_server$sfx" "$here/mhd_server.c" \
        $(pkg-config --cflags --libs libmicrohttpd) $extra
    # shellcheck disable=SC2046,SC2086
    $CC $CFLAGS -pthread -o "$out/evhttp_server$sfx" "$here/evhttp_server.c" \
        $(pkg-config --cflags --libs libevent libevent_pthreads) $extra
    # shellcheck disable=SC2046,SC2086
    $CC $CFLAGS -pthread -o "$out/h2o_server$sfx" "$here/h2o_server.c" \
        $(pkg-config --cflags --libs libh2o-evloop) $extra
done
for b in mhd evhttp h2o; do
    ldd "$out/${b}_server_je" | grep -q libjemalloc || { echo "${b}_server_je lacks jemalloc" >&2; exit 1; }
done
echo "built in $out: {mhd,evhttp,h2o}_server{,_je}"

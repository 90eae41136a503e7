#!/usr/bin/env bash
# install_check.sh BUILD_DIR - `meson install` into a temporary DESTDIR, then what a user of
# the installed sluice does: builds examples/sluice_write.c with the installed sluice.pc
# (pkg-config --cflags --libs sluice), starts the installed sluiced, writes 20,000 points
# with the example and reads them back with the installed sluicectl; checks the man pages,
# systemd units and example config are installed. Everything it starts is stopped by pid,
# and the temporary directory removed, even when a check fails.
set -euo pipefail
BUILD=$(realpath "$1")
TMP=$(mktemp -d /tmp/sluice-install.XXXXXX)
NODE_PID=
cleanup() {
	[ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
	rm -rf "$TMP" /dev/shm/sluice-instchk$$.* 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "install_check: FAIL: $*"; exit 1; }
meson install -C "$BUILD" --destdir "$TMP/root" --quiet >"$TMP/install.log" 2>&1 ||
	{ cat "$TMP/install.log"; fail "meson install"; }
PREFIX=$(meson introspect "$BUILD" --buildoptions |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
R=$TMP/root$PREFIX
for f in bin/sluiced bin/sluicectl bin/sluice-ctld bin/sluice-bench include/sluice.h \
	share/man/man8/sluiced.8 share/man/man8/sluicectl.8 share/man/man8/sluice-ctld.8 \
	share/man/man1/sluice-bench.1 share/man/man5/sluice.conf.5 \
	lib/systemd/system/sluiced.service lib/systemd/system/sluice-ctld.service \
	share/doc/sluice/sluice.conf.example share/doc/sluice/examples/sluice_write.c; do
	[ -e "$R/$f" ] || fail "$f is not installed"
done
grep -q "^ExecStart=$PREFIX/bin/sluiced " "$R/lib/systemd/system/sluiced.service" ||
	fail "sluiced.service does not start $PREFIX/bin/sluiced"
PCDIR=$(dirname "$(find "$R" -name sluice.pc | head -1)")
[ -f "$PCDIR/sluice.pc" ] || fail "sluice.pc is not installed"
LIBDIR=$(dirname "$(find "$R" -name 'libsluice.so' | head -1)")
# the .pc file names the real prefix: point pkg-config into the DESTDIR copy
flags=$(PKG_CONFIG_PATH=$PCDIR PKG_CONFIG_SYSROOT_DIR=$TMP/root pkg-config --cflags --libs sluice) ||
	fail "pkg-config --cflags --libs sluice"
cc -std=c11 -Wall -Wextra -Werror -o "$TMP/sluice_write" "$R/share/doc/sluice/examples/sluice_write.c" \
	$flags || fail "the example does not build against the installed sluice.pc ($flags)"
"$R/bin/sluiced" --data-dir "$TMP/data" --name "instchk$$" --workers 1 >"$TMP/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 600); do
	[ -S "$TMP/data/sluiced.sock" ] && break
	kill -0 "$NODE_PID" 2>/dev/null || { cat "$TMP/node.log"; fail "the installed sluiced did not start"; }
	sleep 0.05
done
LD_LIBRARY_PATH=$LIBDIR "$TMP/sluice_write" "/dev/shm/sluice-instchk$$.ingest" 20000 ||
	fail "the example did not get 20000 points acknowledged"
n=$("$R/bin/sluicectl" --socket "$TMP/data/sluiced.sock" --json query 'example,host=a value' \
	--limit 100000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["points"]))')
[ "$n" = 20000 ] || fail "the installed sluicectl reads $n points of the example's 20000"
grep -q '^\\fBcheckpoint_mb\\fR = ' "$R/share/man/man5/sluice.conf.5" &&
	grep -q '^\\fBbalance_interval_ms\\fR = ' "$R/share/man/man5/sluice.conf.5" ||
	fail "sluice.conf(5) does not list the config keys of both daemons"
echo "install_check: installed under $PREFIX (DESTDIR $TMP/root): binaries, libsluice and sluice.pc, 5 man pages, 2 systemd units; examples/sluice_write.c built with '$flags', 20000 points acknowledged and read back with the installed sluicectl: PASS"

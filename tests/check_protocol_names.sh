#!/bin/sh
# check_protocol_names.sh SRCDIR - the node never branches on a protocol's name: the
# registry (consensus/consensus.c) alone maps names to code, so adding a protocol touches
# no file under dataplane/. Fails on any registered name written as a C string there.
set -eu
src=$1
names=$(sed -n 's/^[[:space:]]*\.name = "\([a-z0-9_]*\)",.*/\1/p' "$src"/consensus/*.c)
[ -n "$names" ] || { echo "FAIL: no protocol names found in $src/consensus"; exit 1; }
bad=0
for n in $names; do
	if grep -n "\"$n\"" "$src"/dataplane/*.c "$src"/dataplane/*.h; then
		echo "FAIL: protocol name \"$n\" in dataplane/ (use the registry)"
		bad=1
	fi
done
exit $bad

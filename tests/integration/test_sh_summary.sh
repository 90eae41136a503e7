#!/usr/bin/env bash
# test_sh_summary.sh - scripts/test.sh tells what happened: run it with stand-ins for meson
# and ninja (first on PATH) so that a chosen step fails at once, and check that the last
# line is the summary naming that step, that the exit status is the step's, and that
# scripts/build.sh turns ninja's status lines into progress and passes diagnostics through.
# Nothing is built: the stand-ins only print.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/sluice-testsh.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$tmp/bin"
# ninja: twenty status lines and one diagnostic; exits with $FAKE_NINJA_RC
cat >"$tmp/bin/ninja" <<'EOF'
#!/bin/sh
i=1
while [ $i -le 20 ]; do echo "[$i/20] Compiling C object x$i.o"; i=$((i + 1)); done
echo "x7.c:1:1: error: a diagnostic"
exit "${FAKE_NINJA_RC:-0}"
EOF
# meson: `meson test` fails with status 7; anything else succeeds
cat >"$tmp/bin/meson" <<'EOF'
#!/bin/sh
[ "$1" = test ] && { echo "fake meson test failing"; exit 7; }
exit 0
EOF
chmod +x "$tmp/bin/ninja" "$tmp/bin/meson"

# 1. the first suite step fails: summary names it, exit status is meson's
rc=0
out=$(cd "$root" && PATH="$tmp/bin:$PATH" bash scripts/test.sh 2>&1) || rc=$?
last=$(echo "$out" | tail -1)
echo "test.sh with meson test failing: exit $rc, last line: $last"
[ "$rc" -eq 7 ] || fail "exit status $rc, expected 7"
echo "$last" | grep -q "^summary: .*FAILED at step 'unit and fuzz-corpus suites (two at a time: none depends on timing)' (exit 7)" ||
	fail "last line does not name the failed step"
echo "$out" | grep -q '^== \[[0-9]* s\] build (build/)' || fail "steps are not announced"
# build progress: a line at every tenth, the diagnostic passed through
[ "$(echo "$out" | grep -c '^   build: [0-9]*/20 steps')" -eq 10 ] || fail "build progress lines: $(echo "$out" | grep -c 'steps')"
echo "$out" | grep -q '^x7.c:1:1: error: a diagnostic' || fail "a compiler diagnostic was hidden"

# 2. the build fails: summary names the build step
rc=0
out=$(cd "$root" && FAKE_NINJA_RC=1 PATH="$tmp/bin:$PATH" bash scripts/test.sh 2>&1) || rc=$?
last=$(echo "$out" | tail -1)
echo "test.sh with the build failing: exit $rc, last line: $last"
[ "$rc" -ne 0 ] || fail "a failed build passed"
echo "$last" | grep -q "^summary: .*FAILED at step 'build (build/)'" || fail "last line does not name the build step"
echo "test_sh_summary: PASS"

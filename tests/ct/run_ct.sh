#!/usr/bin/env bash
# run_ct.sh <binary> <mode> expect-clean|expect-leak [avx2|portable]
# Runs one mode of the constant-time harness under valgrind memcheck. expect-clean passes only
# when memcheck reports nothing; expect-leak passes only when memcheck reports the
# secret-dependent branch (so the harness itself is known to be able to fail). With a fourth
# argument, the harness must also report that it ran that code (see E2EE_NO_AVX2).
set -u
bin=$1 mode=$2 expect=$3 code=${4:-}
log=$(mktemp) out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT
valgrind --tool=memcheck --error-exitcode=99 --track-origins=yes --quiet "$bin" "$mode" 2>"$log" >"$out"
rc=$?
cat "$log" >&2
cat "$out"
if [ -n "$code" ] && ! grep -qx "code: $code" "$out"; then
  echo "FAIL: $mode: expected to run the $code code, the harness said: $(grep '^code:' "$out")"; exit 1
fi
case "$expect" in
  expect-clean)
    if [ "$rc" -eq 99 ]; then echo "FAIL: $mode: memcheck found secret-dependent behaviour (see above)"; exit 1; fi
    if [ "$rc" -ne 0 ]; then echo "FAIL: $mode: the harness did not run cleanly (exit $rc)"; exit 1; fi
    echo "ok: $mode: no secret-dependent branch or address";;
  expect-leak)
    if [ "$rc" -ne 99 ] || ! grep -q 'depends on uninitialised value' "$log"; then
      echo "FAIL: the control leak was not detected (exit $rc): the harness cannot be trusted"; exit 1
    fi
    echo "ok: control leak detected, as it must be";;
esac

#!/usr/bin/env bash
# rank_dies.sh MPIEXEC EXE MODE: runs EXE on 4 ranks where rank 1 dies (see rank_dies.cpp) and checks
# that mpirun exits non-zero within 30 s (not at the 60 s timeout, which would mean a hang) and
# that its output names the failure.
set -u
mpiexec=$1 exe=$2 mode=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
timeout 60 "$mpiexec" --allow-run-as-root --oversubscribe -np 4 "$exe" "$mode" >"$out" 2>&1
rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$out"
echo "rank_dies.sh: mode $mode: mpirun exit code $rc after ${elapsed_ms} ms"
fail() { echo "rank_dies.sh: FAIL: $*"; exit 1; }
[ "$rc" -ne 0 ] || fail "mpirun exited 0"
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "mpirun hung until the timeout"
[ "$elapsed_ms" -lt 30000 ] || fail "mpirun took ${elapsed_ms} ms to stop"
grep -q "should not happen" "$out" && fail "a rank returned from all_reduce"
if [ "$mode" = exit ]; then
  grep -qiE "exit(ed)? (code|status)[^0-9]*3|exit code: *3" "$out" || fail "output does not name exit code 3"
else
  grep -q "foundry: error: \[rank 1\] rank_dies: simulated failure" "$out" || fail "rank 1's error not printed"
  # Open MPI's "MPI_ABORT was invoked on rank 1" notice is best effort (it can lose the race with
  # the kill), so it is not required.
fi
echo "rank_dies.sh: PASS"

#!/usr/bin/env bash
# Slow end-to-end checks (label `slow`, not part of the default test command): the full default
# recipe (the README's main job) trains on the fortunes text to a validation loss well below
# its start, and the dense benchmark recipe runs a training step in f32 and bf16.
# Usage: run_slow.sh FOUNDRY_BINARY SOURCE_DIR
set -euo pipefail
foundry="$1"
src="$2"
fail() { echo "slow e2e: FAILED: $*" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The untrained model's loss is ln(2048) = 7.6 nats; the full run ends below 4.4.
log="$("$foundry" train train.output_dir="$work/run")"
echo "$log"
valid=$(echo "$log" | grep 'validation loss' | tail -1 | sed -E 's/.*validation loss ([0-9.]+).*/\1/')
awk -v l="$valid" 'BEGIN { exit !(l < 4.4) }' || fail "default recipe ended at validation loss $valid"

for precision in false true; do
  line="$("$foundry" bench step "$src/configs/bench/dense-small.yaml" model.bf16=$precision --steps 1 --warmup 1)"
  echo "$line"
  echo "$line" | grep -q '"tokens_per_s"' || fail "no tokens_per_s in: $line"
done
echo "slow e2e: all checks passed"

#!/usr/bin/env bash
# End-to-end checks of the foundry command: the default job learns, recipes and overrides
# resolve, bad input fails with one clear line, `bench step` prints its JSON line.
# Usage: run_e2e.sh FOUNDRY_BINARY SOURCE_DIR
set -euo pipefail
foundry="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "e2e: FAILED: $*" >&2; exit 1; }

# 1. The default recipe (shortened) trains: the last logged loss is well below the first.
"$foundry" train train.train_iters=60 train.log_interval=20 >"$work/train.log"
cat "$work/train.log"
first=$(grep -m1 '^step' "$work/train.log" | sed -E 's/.*loss ([0-9.]+).*/\1/')
last=$(grep '^step' "$work/train.log" | tail -1 | sed -E 's/.*loss ([0-9.]+).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "loss did not fall: $first -> $last"

# 2. --print-config shows overrides applied.
"$foundry" train "$src/configs/bench/dense-small.yaml" model.num_layers=3 --print-config >"$work/cfg.yaml"
grep -q '^  num_layers: 3$' "$work/cfg.yaml" || fail "override not applied in --print-config"
grep -q '^  vocab_size: 32768$' "$work/cfg.yaml" || fail "recipe not loaded"

# 3. Bad input: one clear line naming the key, non-zero exit.
if "$foundry" train model.hiden_size=3 2>"$work/err.txt"; then fail "unknown key accepted"; fi
grep -q "unknown config key 'model.hiden_size' (did you mean 'model.hidden_size'?)" "$work/err.txt" ||
  fail "unclear error: $(cat "$work/err.txt")"
if "$foundry" train "$work/missing.yaml" 2>"$work/err2.txt"; then fail "missing recipe accepted"; fi
grep -q "missing.yaml" "$work/err2.txt" || fail "missing recipe not named"

# 4. bench step prints one JSON line with the promised fields.
"$foundry" bench step "$src/configs/default.yaml" --steps 2 --warmup 1 >"$work/bench.json"
for key in tokens_per_s step_ms mfu peak_gflops; do
  grep -q "\"$key\"" "$work/bench.json" || fail "bench step JSON lacks $key: $(cat "$work/bench.json")"
done
echo "e2e: all checks passed"

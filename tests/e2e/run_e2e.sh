#!/usr/bin/env bash
# End-to-end checks of the foundry command, as a user runs it: train the default recipe
# (shortened) from raw text, checkpoint, resume in a new process, generate, eval, info,
# preprocess, plot, bench step; and bad input, each failing with one clear line.
# Usage: run_e2e.sh FOUNDRY_BINARY SOURCE_DIR
set -euo pipefail
foundry="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
run="$work/run"
short=(train.output_dir="$run" train.log_interval=5 train.eval_interval=10 train.save_interval=10)

# 1. Train the default recipe for 20 steps: the tokenizer is trained and the fortunes text
#    preprocessed on first use; the loss falls; checkpoints are written; a sample is printed.
"$foundry" train train.train_iters=20 "${short[@]}" --sample-tokens 8 >"$work/train.log"
cat "$work/train.log"
first=$(grep -m1 '^step ' "$work/train.log" | sed -E 's/.*loss ([0-9.]+).*/\1/')
last=$(grep '^step .*| loss' "$work/train.log" | tail -1 | sed -E 's/.*loss ([0-9.]+).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "loss did not fall: $first -> $last"
grep -q 'validation loss' "$work/train.log" || fail "no evaluation line"
grep -q 'saved checkpoint .*iter_0000020' "$work/train.log" || fail "no final checkpoint"
grep -q 'tokens/s decode' "$work/train.log" || fail "no sample printed"
test -s "$run/metrics.jsonl" || fail "no metrics.jsonl"
grep -q '| aux loss .* | max load .* | dropped' "$work/train.log" || fail "no MoE routing statistics in the log line"
grep -q '"moe_load.3.7"' "$run/metrics.jsonl" || fail "no per-expert load in metrics.jsonl"
ls "$run"/events.out.tfevents.* >/dev/null || fail "no TensorBoard events"

# 2. A new process resumes from the latest checkpoint and continues to step 30.
"$foundry" train train.train_iters=30 "${short[@]}" --sample-tokens 0 >"$work/resume.log"
grep -q 'resumed from .*iter_0000020 at step 20' "$work/resume.log" || fail "did not resume: $(head -5 "$work/resume.log")"
grep -q '^step  *30/30' "$work/resume.log" || fail "did not reach step 30"

# 2b. Resume is bit-identical across processes: 6 steps straight equal a resume from the step-3
#     checkpoint in a new process plus 3 steps (the first process's later checkpoint is removed
#     and the tracker reset), in the saved parameters and optimizer state.
mock=(data.mock_data=true model.vocab_size=256 train.train_iters=6 train.log_interval=3 train.eval_interval=0
      train.lr_warmup_iters=2 --sample-tokens 0)
"$foundry" train "${mock[@]}" train.output_dir="$work/straight" >/dev/null
"$foundry" train "${mock[@]}" train.output_dir="$work/halves" train.save_interval=3 >/dev/null
rm -rf "$work/halves/checkpoints/iter_0000006"
printf '3' >"$work/halves/checkpoints/latest_checkpointed_iteration.txt"
"$foundry" train "${mock[@]}" train.output_dir="$work/halves" >"$work/halves.log"
grep -q 'resumed from .*iter_0000003 at step 3' "$work/halves.log" || fail "halves did not resume at step 3"
for f in model.safetensors optimizer.safetensors; do
  cmp -s "$work/straight/checkpoints/iter_0000006/$f" "$work/halves/checkpoints/iter_0000006/$f" ||
    fail "resumed run differs from the straight run in $f"
done

# 3. Generate, eval, info on what the run wrote.
"$foundry" generate "$run" --prompt "The " --max-new-tokens 12 --seed 3 >"$work/gen.txt"
grep -q 'new tokens' "$work/gen.txt" || fail "generate: $(cat "$work/gen.txt")"
"$foundry" eval "$run" --data "$run/data/corpus" --json >"$work/eval.json"
grep -q '"perplexity"' "$work/eval.json" || fail "eval: $(cat "$work/eval.json")"
"$foundry" info "$run" | grep -q 'step  *30' || fail "info on the run"
"$foundry" info "$run/data/corpus" | grep -q 'documents' || fail "info on the dataset"
"$foundry" info "$run/data/tokenizer" | grep -q '2048 tokens' || fail "info on the tokenizer"

# 4. preprocess a .jsonl with the run's tokenizer; the dataset loads; plot draws the run.
printf '{"text": "hello world"}\n{"text": "a second document"}\n' >"$work/docs.jsonl"
"$foundry" preprocess --input "$work/docs.jsonl" --tokenizer "$run/data/tokenizer" --output-prefix "$work/docs" >/dev/null
"$foundry" info "$work/docs" | grep -q '2 documents' || fail "preprocessed dataset: $("$foundry" info "$work/docs")"
"$foundry" plot "$run" --no-png >/dev/null
grep -q '<svg' "$run/metrics.svg" || fail "plot wrote no SVG"
grep -qF 'Expert load (tokens / mean)' "$run/metrics.svg" || fail "plot drew no expert-load heatmap"

# 4b. The tiny MoE recipes train (synthetic data, 3 steps each).
for recipe in mixtral-tiny qwen3-moe-tiny deepseek-v3-tiny; do
  "$foundry" train "$src/configs/moe/$recipe.yaml" data.mock_data=true model.vocab_size=256 train.train_iters=3 \
    train.log_interval=1 train.eval_interval=0 train.micro_batch_size=2 train.seq_length=64 \
    train.output_dir="$work/$recipe" --sample-tokens 0 >"$work/$recipe.log" || fail "$recipe: $(tail -3 "$work/$recipe.log")"
  grep -q '^step  *3/3 .*aux loss' "$work/$recipe.log" || fail "$recipe did not train: $(tail -3 "$work/$recipe.log")"
done

# 5. Bad input: non-zero exit and one line "foundry: error: ..." naming the culprit.
expect_error() {  # expect_error PATTERN COMMAND...
  local pattern="$1"; shift
  if "$@" >"$work/out.txt" 2>"$work/err.txt"; then fail "accepted: $*"; fi
  [ "$(wc -l <"$work/err.txt")" -eq 1 ] || fail "not one line for: $* -> $(cat "$work/err.txt")"
  grep -q "^foundry: error: .*$pattern" "$work/err.txt" || fail "unclear error for: $* -> $(cat "$work/err.txt")"
}
expect_error "unknown config key 'model.hiden_size' (did you mean 'model.hidden_size'?)" "$foundry" train model.hiden_size=3
expect_error "missing.yaml" "$foundry" train "$work/missing.yaml"
printf 'model:\n  hidden_size: [1, 2\n' >"$work/bad.yaml"
expect_error "bad.yaml: YAML error" "$foundry" train "$work/bad.yaml"
cp "$work/docs.idx" "$work/trunc.idx" && cp "$work/docs.bin" "$work/trunc.bin"
truncate -s 20 "$work/trunc.idx"
expect_error "trunc.idx" "$foundry" info "$work/trunc"
cp -r "$run/checkpoints/iter_0000030" "$work/ckpt"
printf '\xff\xff\xff\xff\xff\xff\x00\x00{' | dd of="$work/ckpt/model.safetensors" conv=notrunc status=none
expect_error "model.safetensors" "$foundry" generate "$work/ckpt" --prompt "x"
expect_error "bad.yaml" "$foundry" tokenizer encode --tokenizer "$work/bad.yaml" </dev/null
expect_error "nonexistent" "$foundry" eval "$run" --data "$work/nonexistent"
expect_error "unknown curate config key 'filter.motoin' (did you mean 'filter.motion'?)" \
    "$foundry" curate "$work" -o "$work/curated" --set filter.motoin=false
expect_error "curate: input '$work/no_videos' does not exist" "$foundry" curate "$work/no_videos" -o "$work/curated"
"$foundry" curate "$work" -o "$work/curated" --config "$src/configs/curate/default.yaml" --print-config >"$work/curate.yaml"
grep -q '^  max_length_mode: "\?stride' "$work/curate.yaml" || fail "curate --print-config: $(head -3 "$work/curate.yaml")"

# 6. bench step prints one JSON line with the promised fields.
"$foundry" bench step "$src/configs/bench/dense-small.yaml" model.num_layers=1 train.seq_length=64 --steps 2 --warmup 1 >"$work/bench.json"
for key in tokens_per_s step_ms mfu peak_gflops; do
  grep -q "\"$key\"" "$work/bench.json" || fail "bench step JSON lacks $key: $(cat "$work/bench.json")"
done
echo "e2e: all checks passed"

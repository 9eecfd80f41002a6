#!/usr/bin/env bash
# `mpirun -np 2 foundry train` trains data-parallel: the same losses (fp32, 1e-5 relative) as one
# process with the same global batch, one log (rank 0), one checkpoint that a single process
# resumes from; and a rank that fails makes the whole job exit with a clear error.
# Usage: dp_train.sh FOUNDRY_BINARY MPIEXEC
set -euo pipefail
foundry="$1"
mpiexec="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "dp_train: FAILED: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
common=(data.mock_data=true model.vocab_size=256 model.hidden_size=64 model.num_layers=2 model.num_attention_heads=4
        model.num_query_groups=2 model.ffn_hidden_size=128 model.num_moe_experts=4 model.moe_router_topk=2
        model.moe_ffn_hidden_size=64 model.moe_aux_loss_coeff=1e-2 train.micro_batch_size=2 train.global_batch_size=4
        train.seq_length=32 train.train_iters=6 train.log_interval=1 train.eval_interval=3 train.eval_iters=2
        train.lr_warmup_iters=2 --sample-tokens 0)
"$foundry" train "${common[@]}" train.output_dir="$work/one" >"$work/one.log"
timeout 300 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$foundry" train "${common[@]}" \
  train.output_dir="$work/two" >"$work/two.log" 2>&1 || fail "mpirun: $(tail -5 "$work/two.log")"
grep -q '2 data-parallel ranks' "$work/two.log" || fail "no data-parallel banner: $(head -3 "$work/two.log")"
[ "$(grep -c '^step  *6/6' "$work/two.log")" -eq 1 ] || fail "expected one log (rank 0 only)"
losses() { grep -o '"loss":[^,]*' "$1/metrics.jsonl" | cut -d: -f2; }
paste <(losses "$work/one") <(losses "$work/two") | awk '
  { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { print "step " n ": " $1 " vs " $2; bad = 1 } }
  END { exit bad || n != 6 }' || fail "data-parallel losses differ from one process"
valid() { grep -o '"valid_loss":[^,}]*' "$1/metrics.jsonl" | cut -d: -f2; }
paste <(valid "$work/one") <(valid "$work/two") | awk '
  { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) bad = 1 } END { exit bad }' || fail "validation losses differ"
# The distributed optimizer (ZeRO-1) over 2 ranks: the same losses again.
timeout 300 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$foundry" train "${common[@]}" \
  train.use_distributed_optimizer=true train.output_dir="$work/zero" >"$work/zero.log" 2>&1 || fail "zero: $(tail -5 "$work/zero.log")"
paste <(losses "$work/one") <(losses "$work/zero") | awk '
  { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { print "step " n ": " $1 " vs " $2; bad = 1 } }
  END { exit bad || n != 6 }' || fail "distributed-optimizer losses differ from one process"
# 4 ranks resume the ZeRO-1 checkpoint of 2 ranks (resharded by construction: checkpoints hold the
# full state) and one process resumes the data-parallel checkpoint.
timeout 300 "$mpiexec" --allow-run-as-root --oversubscribe -np 4 "$foundry" train "${common[@]}" \
  train.use_distributed_optimizer=true train.global_batch_size=8 train.output_dir="$work/zero" train.train_iters=7 \
  >"$work/zero4.log" 2>&1 || fail "zero on 4 ranks: $(tail -5 "$work/zero4.log")"
grep -q 'resumed from .*iter_0000006 at step 6' "$work/zero4.log" || fail "zero resume: $(head -5 "$work/zero4.log")"
# One process resumes the data-parallel checkpoint.
"$foundry" train "${common[@]}" train.output_dir="$work/two" train.train_iters=7 >"$work/resume.log"
grep -q 'resumed from .*iter_0000006 at step 6' "$work/resume.log" || fail "resume: $(head -5 "$work/resume.log")"
# A bad layout is one clear error.
if "$mpiexec" --allow-run-as-root --oversubscribe -np 3 "$foundry" train "${common[@]}" train.output_dir="$work/three" \
  >"$work/three.log" 2>&1; then fail "3 ranks with a global batch of 2 microbatches was accepted"; fi
grep -q 'train.global_batch_size 4 is not a multiple of train.micro_batch_size 2 x 3 data-parallel ranks' "$work/three.log" ||
  fail "unclear error: $(tail -5 "$work/three.log")"
# bench comm: the bytes each collective moves per step equal the layout's formula.
for zero in false true; do
  "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$foundry" bench comm "${common[@]:0:19}" \
    train.use_distributed_optimizer=$zero --steps 1 >"$work/comm.json" 2>&1 || fail "bench comm: $(tail -3 "$work/comm.json")"
  grep -q '"matches_analytic":true' "$work/comm.json" || fail "bench comm ($zero) disagrees: $(cat "$work/comm.json")"
done
echo "dp_train: all checks passed"

#!/usr/bin/env bash
# Dense -> MoE upcycling end to end (the CLI): a tiny dense model trains 3 steps; `foundry upcycle`
# turns it into E8G2T4 (topk-then-softmax, exact); training continues offline (one process,
# train.load=the upcycled checkpoint: no optimizer state, AdamW fresh) and online (mpirun -np 4,
# TP2 + SP x EP2, model.upcycle_from=the dense run: each rank converts its shard) from step 3 with
# the dense data position. Checks: the first MoE loss (step 4) equals the dense run's step-4 loss,
# and the online losses equal the offline ones (fp32, 1e-5 relative); a MoE recipe that disagrees
# with the dense checkpoint is a clear error.
# Usage: upcycle_train.sh FOUNDRY_BINARY MPIEXEC
set -euo pipefail
foundry="$1"
mpiexec="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "upcycle_train: FAILED: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
dense=(data.mock_data=true model.vocab_size=256 model.hidden_size=64 model.num_layers=2 model.num_attention_heads=4
       model.num_query_groups=2 model.ffn_hidden_size=128 model.num_moe_experts=0 model.init_method_std=0.05 train.micro_batch_size=2
       train.global_batch_size=8 train.seq_length=32 train.log_interval=1 train.lr=3e-3 --sample-tokens 0)
moe=("${dense[@]}" model.num_moe_experts=8 model.moe_router_topk=4 model.moe_ffn_hidden_size=64 train.train_iters=6)
loss_at() { grep "\"step\":$2[,}]" "$1/metrics.jsonl" | grep -o '"loss":[^,}]*' | cut -d: -f2; }
close() {  # close A B WHAT: |A - B| <= 1e-5 |A|
  awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-5 * (a < 0 ? -a : a)) }' ||
    fail "$3: $1 vs $2"
}

"$foundry" train "${dense[@]}" train.train_iters=3 train.output_dir="$work/dense" >"$work/dense.log"
"$foundry" upcycle "$work/dense" --num-experts 8 --topk 4 --granularity 2 --out "$work/moe_ckpt" >"$work/upcycle.log" ||
  fail "upcycle: $(cat "$work/upcycle.log")"
grep -q 'activation scale c = 2: gate x 1, up x 1.41421, fc2 x 1.41421' "$work/upcycle.log" ||
  fail "upcycle output: $(cat "$work/upcycle.log")"
[ -d "$work/moe_ckpt/iter_0000003" ] && [ ! -e "$work/moe_ckpt/iter_0000003/optimizer.safetensors" ] ||
  fail "upcycled checkpoint: $(ls -R "$work/moe_ckpt")"

"$foundry" train "${moe[@]}" train.load="$work/moe_ckpt" train.output_dir="$work/offline" >"$work/offline.log" ||
  fail "offline: $(tail -5 "$work/offline.log")"
grep -q 'resumed from .*iter_0000003 at step 3' "$work/offline.log" || fail "offline resume: $(head -5 "$work/offline.log")"
grep -q 'holds no optimizer state' "$work/offline.log" || fail "offline: no fresh-optimizer line"
timeout 300 "$mpiexec" --allow-run-as-root --oversubscribe -np 4 "$foundry" train "${moe[@]}" \
  parallel.tensor_model_parallel_size=2 parallel.sequence_parallel=true parallel.expert_model_parallel_size=2 \
  model.upcycle_from="$work/dense" train.output_dir="$work/online" >"$work/online.log" 2>&1 ||
  fail "online: $(tail -5 "$work/online.log")"
grep -q 'upcycled .*iter_0000003 (step 3) into 8 experts, top-4, granularity 2' "$work/online.log" ||
  fail "online: no upcycling line: $(head -5 "$work/online.log")"

# The dense run's own step 4, for the first MoE loss.
"$foundry" train "${dense[@]}" train.train_iters=4 train.output_dir="$work/dense" >"$work/dense4.log"
close "$(loss_at "$work/dense" 4)" "$(loss_at "$work/offline" 4)" "first MoE loss vs the dense step-4 loss"
for step in 4 5 6; do close "$(loss_at "$work/offline" $step)" "$(loss_at "$work/online" $step)" "online vs offline step $step"; done

# A recipe that does not match the dense checkpoint.
if "$foundry" train "${moe[@]}" model.num_query_groups=4 model.upcycle_from="$work/dense" \
  train.output_dir="$work/bad" >"$work/bad.log" 2>&1; then fail "a mismatched MoE recipe was accepted"; fi
grep -q 'model.num_query_groups differs: the dense checkpoint has 2, the MoE config 4' "$work/bad.log" ||
  fail "unclear error: $(tail -3 "$work/bad.log")"
echo "upcycle_train: all checks passed"

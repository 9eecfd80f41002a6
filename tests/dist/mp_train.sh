#!/usr/bin/env bash
# `mpirun foundry train` with model parallelism end to end (the CLI, the Mesh from parallel.*,
# logs, checkpoints): TP2 + SP x EP2 on 4 ranks and PP2 (1F1B) x EP2 on 4 ranks train with the same
# losses (fp32, 1e-5 relative) and validation losses as one process with the same global batch
# (the PP run with gradient buckets overlapped with the backward and every rank logging; TP2 x EP2
# with the distributed optimizer);
# one process resumes the TP2 x EP2 checkpoint (resharded: checkpoints hold full tensors) and
# 2 ranks with PP2 resume it too; unsupported settings are clear errors; `foundry bench comm` counts
# the bytes of every Mesh group's collectives equal to the layout's formula (TP2 + SP, PP2 with
# tied embeddings, EP2 and TP2 x EP2 padded to capacity, EP2 with the allgather dispatcher) and
# prints null for the routing-dependent all-to-all of dropless EP.
# Usage: mp_train.sh FOUNDRY_BINARY MPIEXEC
set -euo pipefail
foundry="$1"
mpiexec="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "mp_train: FAILED: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
common=(data.mock_data=true model.vocab_size=256 model.hidden_size=64 model.num_layers=2 model.num_attention_heads=4
        model.num_query_groups=2 model.ffn_hidden_size=128 model.num_moe_experts=4 model.moe_router_topk=2
        model.moe_ffn_hidden_size=64 model.moe_aux_loss_coeff=1e-2 model.moe_z_loss_coeff=1e-3
        train.micro_batch_size=2 train.global_batch_size=8 train.seq_length=32 train.train_iters=6 train.log_interval=1
        train.eval_interval=3 train.eval_iters=2 train.lr_warmup_iters=2 --sample-tokens 0)
run() {  # run NP NAME overrides...
  local np="$1" name="$2"; shift 2
  timeout 300 "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" "$foundry" train "${common[@]}" \
    train.output_dir="$work/$name" "$@" >"$work/$name.log" 2>&1 || fail "$name: $(tail -5 "$work/$name.log")"
}
losses() { grep -o "\"$2\":[^,}]*" "$1/metrics.jsonl" | cut -d: -f2; }
same_losses() {  # same_losses NAME KEY COUNT
  paste <(losses "$work/one" "$2") <(losses "$work/$1" "$2") | awk -v want="$3" '
    { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { print "step " n ": " $1 " vs " $2; bad = 1 } }
    END { exit bad || n != want }' || fail "$1: $2 differs from one process"
}
"$foundry" train "${common[@]}" train.output_dir="$work/one" >"$work/one.log"
run 4 tpep parallel.tensor_model_parallel_size=2 parallel.sequence_parallel=true parallel.expert_model_parallel_size=2
grep -q '4 ranks (TP 2 + SP, EP 2, ETP 2, PP 1, DP 2)' "$work/tpep.log" || fail "no layout banner: $(head -3 "$work/tpep.log")"
[ "$(grep -c '^step  *6/6' "$work/tpep.log")" -eq 1 ] || fail "expected one log (rank 0 only)"
same_losses tpep loss 6
same_losses tpep valid_loss 2
# The distributed optimizer with the model split (dense shards over dp_cp, expert shards over expt_dp),
# resumed by one process.
run 4 zero parallel.tensor_model_parallel_size=2 parallel.sequence_parallel=true parallel.expert_model_parallel_size=2 \
  train.use_distributed_optimizer=true
same_losses zero loss 6
"$foundry" train "${common[@]}" train.output_dir="$work/zero" train.train_iters=7 >"$work/zero_resume.log"
grep -q 'resumed from .*iter_0000006 at step 6' "$work/zero_resume.log" || fail "zero resume: $(head -5 "$work/zero_resume.log")"
run 4 ppep parallel.pipeline_model_parallel_size=2 parallel.expert_model_parallel_size=2 \
  train.overlap_grad_reduce=true train.ddp_bucket_size=20000 train.log_all_ranks=true
grep -q '^\[rank 3\] step 6 | validation loss' "$work/ppep.log" || fail "train.log_all_ranks: no rank-3 lines"
same_losses ppep loss 6
same_losses ppep valid_loss 2
# Interleaved pipeline (PP2 x 2 virtual stages, 4 layers) with evaluation, against one process.
"$foundry" train "${common[@]}" model.num_layers=4 train.output_dir="$work/one4" >"$work/one4.log"
run 2 vpp model.num_layers=4 parallel.pipeline_model_parallel_size=2 parallel.virtual_pipeline_model_parallel_size=2
paste <(losses "$work/one4" loss) <(losses "$work/vpp" loss) <(losses "$work/one4" valid_loss) <(losses "$work/vpp" valid_loss) |
  awk '{ for (i = 1; i <= NF; i += 2) { d = $i - $(i + 1); if (d < 0) d = -d; if (d > 1e-5 * $i) bad = 1 } } END { exit bad }' ||
  fail "interleaved pipeline losses differ from one process"
# One process and a PP2 layout resume the TP2 x EP2 checkpoint.
"$foundry" train "${common[@]}" train.output_dir="$work/tpep" train.train_iters=7 >"$work/resume1.log"
grep -q 'resumed from .*iter_0000006 at step 6' "$work/resume1.log" || fail "resume: $(head -5 "$work/resume1.log")"
run 2 tpep parallel.pipeline_model_parallel_size=2 train.train_iters=8
grep -q 'resumed from .*iter_0000007 at step 7' "$work/tpep.log" || fail "pp resume: $(head -5 "$work/tpep.log")"
# Unsupported: a clear error naming the key.
if "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$foundry" train "${common[@]}" train.output_dir="$work/bad" \
  parallel.context_parallel_size=2 >"$work/bad.log" 2>&1; then fail "context parallelism was accepted"; fi
grep -q 'parallel.context_parallel_size = 2: not implemented yet' "$work/bad.log" || fail "unclear error: $(tail -3 "$work/bad.log")"
# bench comm: bytes per (group, collective) and step equal the layout's formula on every rank.
pad=(model.moe_expert_capacity_factor=1.0 model.moe_pad_expert_input_to_capacity=true)
bench_comm() {  # bench_comm NAME GROUP... -- overrides...: matches_analytic and the groups present
  local name="$1"; shift
  local groups=()
  while [ "$1" != "--" ]; do groups+=("$1"); shift; done
  shift
  timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np 4 "$foundry" bench comm "${common[@]:0:15}" \
    --steps 1 "$@" >"$work/$name.json" 2>&1 || fail "bench comm $name: $(tail -3 "$work/$name.json")"
  grep -q '"matches_analytic":true' "$work/$name.json" || fail "bench comm $name disagrees: $(cat "$work/$name.json")"
  for g in "${groups[@]}"; do
    grep -q "\"$g\":{" "$work/$name.json" || fail "bench comm $name: no '$g' group: $(cat "$work/$name.json")"
  done
}
bench_comm tpsp tp expt_tp dp_cp expt_dp tp_dp_cp world -- parallel.tensor_model_parallel_size=2 \
  parallel.sequence_parallel=true "${pad[@]}"
bench_comm pp pp embd dp_cp world -- parallel.pipeline_model_parallel_size=2 model.share_embeddings_and_output_weights=true
bench_comm ep ep dp_cp expt_dp -- parallel.expert_model_parallel_size=2 "${pad[@]}"
bench_comm tpep tp ep expt_tp dp_cp tp_dp_cp -- parallel.tensor_model_parallel_size=2 parallel.sequence_parallel=true \
  parallel.expert_model_parallel_size=2 "${pad[@]}"
bench_comm epag ep -- parallel.expert_model_parallel_size=2 model.moe_token_dispatcher_type=allgather
bench_comm epdropless ep -- parallel.expert_model_parallel_size=2
grep -q '"all_to_all_v":{"analytic_bytes_per_step":null' "$work/epdropless.json" ||
  fail "bench comm: dropless all-to-all bytes should have no formula: $(cat "$work/epdropless.json")"
! grep -q ':null' "$work/tpep.json" || fail "bench comm: padded TP2 x EP2 left a byte count without formula"
echo "mp_train: all checks passed"

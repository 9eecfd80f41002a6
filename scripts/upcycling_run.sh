#!/usr/bin/env bash
# The worked run of docs/upcycling.md: train a dense model on the default corpus, upcycle it
# (E8G1T2 topk-then-softmax, and E8G4T4 softmax-then-topk with weight scaling), continue each for
# the same tokens as a continued dense run (same data order, same LR schedule, fresh AdamW for
# all three), and plot the loss curves together.
# Usage: scripts/upcycling_run.sh [OUT_DIR (default runs/upcycling)] [DENSE_STEPS] [MORE_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
foundry=build/release/foundry
out="${1:-runs/upcycling}"
dense_steps="${2:-600}"
more="${3:-600}"
total=$((dense_steps + more))
export OMP_WAIT_POLICY=passive

# The default recipe (configs/default.yaml) with a dense SwiGLU MLP of width 704: the active
# FLOPs of the default MoE (2 experts of 352).
common=(model.num_moe_experts=0 train.log_interval=10 train.eval_interval=100 train.eval_iters=10
        --sample-tokens 0)
"$foundry" train "${common[@]}" train.train_iters="$dense_steps" train.save_interval="$dense_steps" \
  train.output_dir="$out/dense"
dense_ckpt="$out/dense/checkpoints"
data=(data.text_files= "data.data_path=$out/dense/data/corpus" "data.tokenizer_model=$out/dense/data/tokenizer")

# Continuation: LR restarted at half the pretraining peak, warmup 20, cosine over the new steps (the
# schedule counts optimizer steps, which start again at 0 with a fresh AdamW).
cont=(train.lr=1e-3 train.min_lr=1e-4 train.lr_warmup_iters=20 train.lr_decay_iters="$more"
      train.train_iters="$total" train.save_interval="$total" "${data[@]}" "${common[@]}")

# Dense, continued: the dense checkpoint without its optimizer state (as the upcycled ones).
mkdir -p "$out/dense_continued/checkpoints"
src="$(ls -d "$dense_ckpt"/iter_* | tail -1)"
cp -r "$src" "$out/dense_continued/checkpoints/"
rm -f "$out/dense_continued/checkpoints/$(basename "$src")/optimizer.safetensors"
"$foundry" train "${cont[@]}" train.output_dir="$out/dense_continued"

# E8G1T2: 8 copies of the MLP, top-2, Mixtral router (exactly the dense model at the start).
"$foundry" upcycle "$dense_ckpt" --num-experts 8 --topk 2 --out "$out/e8g1t2/checkpoints"
"$foundry" train "${cont[@]}" model.num_moe_experts=8 model.moe_router_topk=2 model.moe_ffn_hidden_size=704 \
  train.output_dir="$out/e8g1t2"

# E8G4T4 (32 experts of 176, top-4: the dense model's active FLOPs): virtual groups,
# softmax-then-topk, weight scaling c = R G^2 / T = 32 on the expert outputs.
"$foundry" upcycle "$dense_ckpt" --num-experts 32 --topk 4 --granularity 4 --router softmax-then-topk \
  --out "$out/e8g4t4/checkpoints"
"$foundry" train "${cont[@]}" model.num_moe_experts=32 model.moe_router_topk=4 model.moe_ffn_hidden_size=176 \
  model.moe_router_pre_softmax=true train.output_dir="$out/e8g4t4"

"$foundry" plot "$out/dense_continued" "$out/e8g1t2" "$out/e8g4t4" "$out/dense" \
  --label "dense, continued" --label "upcycled E8G1T2" --label "upcycled E8G4T4" --label "dense pretraining" \
  --output "$out/upcycling.svg"
"$foundry" plot "$out/dense_continued" "$out/e8g1t2" "$out/e8g4t4" \
  --label "dense, continued" --label "upcycled E8G1T2" --label "upcycled E8G4T4" --output "$out/continued.svg"

// Tensor-parallel module checks shared by tests/dist (TP = world size under mpirun) and tests/nn
// (TP = 1, a self communicator): every rank builds the single-process module with the full
// weights from the same seed, copies its shard into the parallel module, and compares forward,
// dx and its weight-gradient shard with the matching part of the single-process results.
// fp32 tolerances: rtol 1e-5, atol 1e-6 (the parallel GEMMs only sum in another order); the
// embedding is exact (one owner per row).
#pragma once

#include <algorithm>

#include "foundry/nn/embedding.h"
#include "foundry/nn/mlp.h"
#include "foundry/nn/parallel_attention.h"
#include "foundry/nn/parallel_mlp.h"
#include "foundry/nn/vocab_parallel.h"
#include "testing.h"

namespace foundry::testing {

inline constexpr double kTpRtol = 1e-5, kTpAtol = 1e-6;

// allclose with atol kTpAtol * max|b| (at least kTpAtol): for outputs whose elements are sums of
// terms much larger than some results (the attention's y and dx reach |18| with init std 0.3, and a
// reordered f32 sum of such terms errs by ~eps * their size, ~1e-6, on results near 0).
inline ::testing::AssertionResult allclose_to_scale(const Tensor& a, const Tensor& b) {
  double mx = 1.0;
  for (float v : b.to_vector()) mx = std::max(mx, static_cast<double>(std::abs(v)));
  return allclose(a, b, kTpRtol, kTpAtol * mx);
}

// Rows [r n/P, (r+1) n/P) of a (n, C) tensor: this rank's tokens under sequence parallelism.
inline Tensor my_tokens(const Tensor& x, const Communicator& tp, bool sp) {
  if (!sp) return x;
  const int64_t n = x.size(0) / tp.size();
  return x.slice(tp.rank() * n, (tp.rank() + 1) * n).clone();
}

inline void check_column_parallel_linear(Communicator& tp, bool sp, DType compute) {
  const int64_t n = 16, in = 16, out = 24;
  const int r = tp.rank(), p = tp.size();
  Linear ref({.in = in, .out = out, .init = Init::normal(0.3f), .compute = compute});
  ParamTable rt;
  ref.register_params(rt, "fc");
  rt.allocate(5);
  ColumnParallelLinear col({.in = in, .out = out, .init = Init::normal(0.3f), .compute = compute,
                            .sequence_parallel = sp}, tp);
  ParamTable pt;
  col.register_params(pt, "fc");
  pt.allocate(5);
  // A sharded parameter starts as its slice of the full initial value (equal to one process).
  EXPECT_EQ(col.weight().value.to_vector(), shard_rows(ref.weight.value, r, p).to_vector());
  col.weight().value.copy_from(shard_rows(ref.weight.value, r, p));

  Context ctx;
  Tensor x = randn({n, in}, 1), dy = randn({n, out}, 2);
  Linear::Saved rs, ps;
  Tensor y_ref = ref.forward(ctx, x, rs), dx_ref = ref.backward(ctx, dy, rs);
  Tensor y = col.forward(ctx, my_tokens(x, tp, sp), ps);
  EXPECT_TRUE(allclose(y, shard_cols(y_ref, r, p), kTpRtol, kTpAtol)) << "forward";
  Tensor dx = col.backward(ctx, shard_cols(dy, r, p), ps);
  EXPECT_TRUE(allclose(dx, my_tokens(dx_ref, tp, sp), kTpRtol, kTpAtol)) << "dx";
  EXPECT_TRUE(allclose(col.weight().grad, shard_rows(ref.weight.grad, r, p), kTpRtol, kTpAtol)) << "dW";
}

inline void check_row_parallel_linear(Communicator& tp, bool sp, DType compute) {
  const int64_t n = 16, in = 24, out = 16;
  const int r = tp.rank(), p = tp.size();
  Linear ref({.in = in, .out = out, .init = Init::normal(0.3f), .compute = compute});
  ParamTable rt;
  ref.register_params(rt, "fc");
  rt.allocate(6);
  RowParallelLinear row({.in = in, .out = out, .compute = compute, .sequence_parallel = sp}, tp);
  ParamTable pt;
  row.register_params(pt, "fc");
  pt.allocate(6);
  row.weight().value.copy_from(shard_cols(ref.weight.value, r, p));

  Context ctx;
  Tensor x = randn({n, in}, 3), dy = randn({n, out}, 4);
  Linear::Saved rs, ps;
  Tensor y_ref = ref.forward(ctx, x, rs), dx_ref = ref.backward(ctx, dy, rs);
  Tensor y = row.forward(ctx, shard_cols(x, r, p), ps);
  EXPECT_TRUE(allclose(y, my_tokens(y_ref, tp, sp), kTpRtol, kTpAtol)) << "forward";
  Tensor dx = row.backward(ctx, my_tokens(dy, tp, sp), ps);
  EXPECT_TRUE(allclose(dx, shard_cols(dx_ref, r, p), kTpRtol, kTpAtol)) << "dx";
  EXPECT_TRUE(allclose(row.weight().grad, shard_cols(ref.weight.grad, r, p), kTpRtol, kTpAtol)) << "dW";
}

inline void check_parallel_mlp(Communicator& tp, bool sp) {
  const int64_t n = 16, h = 16, f = 32;
  const int r = tp.rank(), p = tp.size();
  MLP ref({.hidden = h, .ffn = f, .init_std = 0.3f, .output_init_std = 0.3f});
  ParamTable rt;
  ref.register_params(rt, "mlp");
  rt.allocate(7);
  ParallelMLP mlp({.hidden = h, .ffn = f, .sequence_parallel = sp}, tp);
  ParamTable pt;
  mlp.register_params(pt, "mlp");
  pt.allocate(7);
  mlp.linear_fc1.weight().value.copy_from(ParallelMLP::fc1_shard(ref.linear_fc1.weight.value, r, p));
  mlp.linear_fc2.weight().value.copy_from(shard_cols(ref.linear_fc2.weight.value, r, p));

  Context ctx;
  Tensor x = randn({n, h}, 8), dy = randn({n, h}, 9);
  MLP::Saved rs;
  ParallelMLP::Saved ps;
  Tensor y_ref = ref.forward(ctx, x, rs), dx_ref = ref.backward(ctx, dy, rs);
  Tensor y = mlp.forward(ctx, my_tokens(x, tp, sp), ps);
  EXPECT_TRUE(allclose(y, my_tokens(y_ref, tp, sp), kTpRtol, kTpAtol)) << "forward";
  Tensor dx = mlp.backward(ctx, my_tokens(dy, tp, sp), ps);
  EXPECT_TRUE(allclose(dx, my_tokens(dx_ref, tp, sp), kTpRtol, kTpAtol)) << "dx";
  EXPECT_TRUE(allclose(mlp.linear_fc1.weight().grad, ParallelMLP::fc1_shard(ref.linear_fc1.weight.grad, r, p),
                       kTpRtol, kTpAtol)) << "dW1";
  EXPECT_TRUE(allclose(mlp.linear_fc2.weight().grad, shard_cols(ref.linear_fc2.weight.grad, r, p),
                       kTpRtol, kTpAtol)) << "dW2";
}

inline Tensor tp_test_ids(int64_t n, int64_t vocab) {
  Tensor ids = Tensor::empty({n}, DType::i32);
  for (int64_t t = 0; t < n; ++t) ids.ptr<int32_t>()[t] = static_cast<int32_t>((t * 37 + 11) % vocab);
  ids.ptr<int32_t>()[1] = ids.ptr<int32_t>()[0];  // a repeated id: gradients accumulate
  return ids;
}

inline void check_vocab_parallel_embedding(Communicator& tp, bool sp) {
  const int64_t n = 16, vocab = 64, h = 16;
  const int r = tp.rank(), p = tp.size();
  Embedding ref({.vocab = vocab, .hidden = h, .init = Init::normal(1.f)});
  ParamTable rt;
  ref.register_params(rt, "emb");
  rt.allocate(3);
  VocabParallelEmbedding emb({.vocab = vocab, .hidden = h, .sequence_parallel = sp}, tp);
  ParamTable pt;
  emb.register_params(pt, "emb");
  pt.allocate(3);
  emb.weight.value.copy_from(shard_rows(ref.weight.value, r, p));

  Context ctx;
  Tensor ids = tp_test_ids(n, vocab), dy = randn({n, h}, 4);
  Embedding::Saved rs;
  VocabParallelEmbedding::Saved ps;
  Tensor y_ref = ref.forward(ctx, ids, rs);
  ref.backward(ctx, dy, rs);
  Tensor y = emb.forward(ctx, ids, ps);
  EXPECT_TRUE(allclose(y, my_tokens(y_ref, tp, sp), 0, 0)) << "forward";
  emb.backward(ctx, my_tokens(dy, tp, sp), ps);
  EXPECT_TRUE(allclose(emb.weight.grad, shard_rows(ref.weight.grad, r, p), 0, 0)) << "dW";
}

// Loss, per-token losses and dlogits against cross_entropy_fused on the full logits, with ignored
// targets, the default D and an explicit token_count, grad_scale and z-loss.
inline void check_vocab_parallel_cross_entropy(Communicator& tp, double token_count, float z_loss) {
  const int64_t n = 16, vocab = 64;
  const int r = tp.rank(), p = tp.size();
  Tensor logits = randn({n, vocab}, 12, 3.f);
  Tensor targets = tp_test_ids(n, vocab);
  targets.ptr<int32_t>()[2] = -100;
  targets.ptr<int32_t>()[9] = -100;
  Tensor dl_ref = Tensor::empty({n, vocab}), loss_ref = Tensor::empty({n});
  const CrossEntropyResult ref = cross_entropy_fused({.logits = logits, .targets = targets,
      .z_loss_coeff = z_loss, .token_count = token_count, .grad_scale = 0.5f, .dlogits = dl_ref,
      .losses = loss_ref});
  Tensor mine = shard_cols(logits, r, p);
  Tensor dl = Tensor::empty(mine.shape()), losses = Tensor::empty({n});
  const CrossEntropyResult got = vocab_parallel_cross_entropy(tp, {.logits = mine, .targets = targets,
      .vocab_start = r * (vocab / p), .z_loss_coeff = z_loss, .token_count = token_count,
      .grad_scale = 0.5f, .dlogits = dl, .losses = losses});
  EXPECT_EQ(got.num_valid, ref.num_valid);
  EXPECT_NEAR(got.loss, ref.loss, 1e-6 * ref.loss);
  EXPECT_NEAR(got.z_loss, ref.z_loss, 1e-6 * ref.z_loss + 1e-12);
  EXPECT_TRUE(allclose(losses, loss_ref, kTpRtol, kTpAtol)) << "per-token losses";
  EXPECT_TRUE(allclose(dl, shard_cols(dl_ref, r, p), kTpRtol, 1e-7)) << "dlogits";
  // In place (dlogits aliasing logits), loss only.
  const CrossEntropyResult again = vocab_parallel_cross_entropy(tp, {.logits = mine, .targets = targets,
      .vocab_start = r * (vocab / p), .z_loss_coeff = z_loss, .token_count = token_count,
      .grad_scale = 0.5f, .dlogits = mine});
  EXPECT_EQ(again.loss, got.loss);
  EXPECT_TRUE(allclose(mine, dl, 0, 0)) << "in-place dlogits";
}

// Attention with heads split over tp: NH = 16, NKV = 8 (G = 2), HD = 4, two sequences of 8 tokens.
// The replicated q/k norm gradients are summed over tp here (parallel_attention.h).
// With qkv_bias (Megatron's --add-qkv-bias) the bias is split like linear_qkv's rows; with
// rope_scaling the Llama 3 bands (short original context: at HD 4 one frequency kept, one scaled).
inline void check_parallel_attention(Communicator& tp, bool sp, bool qk_layernorm, bool qkv_bias = false,
                                     bool rope_scaling = false) {
  const int64_t h = 32;
  const int r = tp.rank(), p = tp.size();
  const Attention::Config ac{.hidden = h, .num_heads = 16, .num_kv_heads = 8, .head_dim = 4,
                             .init_std = 0.3f, .output_init_std = 0.3f, .qk_layernorm = qk_layernorm,
                             .add_qkv_bias = qkv_bias,
                             .rope_scaling = {.enabled = rope_scaling, .factor = 4.f, .low_freq_factor = 1.f,
                                              .high_freq_factor = 4.f, .original_max_position_embeddings = 64}};
  Attention ref(ac);
  ParamTable rt;
  ref.register_params(rt, "attn");
  rt.allocate(9);
  ParallelAttention attn({.attn = ac, .sequence_parallel = sp}, tp);
  ParamTable pt;
  attn.register_params(pt, "attn");
  pt.allocate(9);
  EXPECT_EQ(attn.local.linear_qkv.weight.value.to_vector(), shard_rows(ref.linear_qkv.weight.value, r, p).to_vector());
  EXPECT_EQ(attn.local.linear_proj.weight.value.to_vector(), shard_cols(ref.linear_proj.weight.value, r, p).to_vector());
  attn.local.linear_qkv.weight.value.copy_from(shard_rows(ref.linear_qkv.weight.value, r, p));
  attn.local.linear_proj.weight.value.copy_from(shard_cols(ref.linear_proj.weight.value, r, p));
  if (qkv_bias) {  // zero init on both; then a non-trivial bias, this rank's rows of it
    const int64_t n = ref.linear_qkv_bias.value.numel();
    EXPECT_EQ(attn.local.linear_qkv_bias.value.numel(), n / p);
    const ParamSpec& spec = pt.spec(attn.local.linear_qkv_bias.index);
    EXPECT_EQ(spec.full_shape(), Shape({n}));
    EXPECT_EQ(spec.blocks.size(), 1u);
    EXPECT_EQ(spec.blocks.at(0).global_offset.at(0), r * (n / p));
    EXPECT_FALSE(spec.weight_decay);
    ref.linear_qkv_bias.value.copy_from(randn({n}, 23));
    attn.local.linear_qkv_bias.value.copy_from(shard_rows(ref.linear_qkv_bias.value.reshape({n, 1}), r, p).reshape({n / p}));
  }
  if (qk_layernorm) {  // non-trivial norm weights
    Tensor qw = randn({4}, 21), kw = randn({4}, 22);
    ref.q_layernorm.weight.value.copy_from(qw);
    ref.k_layernorm.weight.value.copy_from(kw);
    attn.local.q_layernorm.weight.value.copy_from(qw);
    attn.local.k_layernorm.weight.value.copy_from(kw);
  }

  Context ctx;
  const SequenceLayout seq = SequenceLayout::uniform(2, 8);
  Tensor x = randn({16, h}, 10), dy = randn({16, h}, 11);
  Attention::Saved rs, ps;
  Tensor y_ref = ref.forward(ctx, x, seq, rs), dx_ref = ref.backward(ctx, dy, seq, rs);
  Tensor y = attn.forward(ctx, my_tokens(x, tp, sp), seq, ps);
  // This rank's heads before the output projection: the same per-head computation.
  EXPECT_TRUE(allclose(ps.out.reshape({16, 16 / p * 4}), shard_cols(rs.out.reshape({16, 64}), r, p),
                       kTpRtol, kTpAtol)) << "attention output of this rank's heads";
  EXPECT_TRUE(allclose_to_scale(y, my_tokens(y_ref, tp, sp))) << "forward";
  Tensor dx = attn.backward(ctx, my_tokens(dy, tp, sp), seq, ps);
  EXPECT_TRUE(allclose_to_scale(dx, my_tokens(dx_ref, tp, sp))) << "dx";
  EXPECT_TRUE(allclose(attn.local.linear_qkv.weight.grad, shard_rows(ref.linear_qkv.weight.grad, r, p),
                       kTpRtol, kTpAtol)) << "dWqkv";
  EXPECT_TRUE(allclose(attn.local.linear_proj.weight.grad, shard_cols(ref.linear_proj.weight.grad, r, p),
                       kTpRtol, kTpAtol)) << "dWproj";
  if (qkv_bias) {
    const int64_t n = ref.linear_qkv_bias.grad.numel();
    EXPECT_TRUE(allclose(attn.local.linear_qkv_bias.grad,
                         shard_rows(ref.linear_qkv_bias.grad.reshape({n, 1}), r, p).reshape({n / p}), kTpRtol, kTpAtol))
        << "dbqkv";
  }
  if (qk_layernorm) {
    tp.all_reduce(attn.local.q_layernorm.weight.grad);
    tp.all_reduce(attn.local.k_layernorm.weight.grad);
    EXPECT_TRUE(allclose(attn.local.q_layernorm.weight.grad, ref.q_layernorm.weight.grad, kTpRtol, kTpAtol));
    EXPECT_TRUE(allclose(attn.local.k_layernorm.weight.grad, ref.k_layernorm.weight.grad, kTpRtol, kTpAtol));
  }
}

}  // namespace foundry::testing

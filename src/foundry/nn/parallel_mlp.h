// Tensor-parallel SwiGLU MLP (Megatron-Core MLP with a ColumnParallelLinear fc1 and a
// RowParallelLinear fc2), equal to nn::MLP with the full weights:
//   h_r = x W1_r^T (N, 2F/P) = [gate_r | up_r];  a_r = silu(gate_r) * up_r (N, F/P);
//   y = all_reduce_tp(a_r W2_r^T) (N, H)     (reduce-scattered along tokens with SP)
// fc1's full weight (2F, H) = [gate; up] is split half by half, as Megatron does for the gated
// linear unit, so that rank r holds matching rows: W1_r = [gate rows r F/P ..; up rows r F/P ..]
// (fc1_shard). fc2 (H, F) is split by columns (shard_cols). F % P == 0.
#pragma once

#include "foundry/nn/feed_forward.h"
#include "foundry/nn/parallel_linear.h"

namespace foundry {

struct ParallelMLP : FeedForward {  // a TransformerLayer mlp block (x shaped (T/P, H) with SP)
  struct Config {
    int64_t hidden = 0;  // H
    int64_t ffn = 0;     // F (full)
    DType compute = DType::f32;
    float init_std = 0.02f;
    float output_init_std = 0.02f;
    bool sequence_parallel = false;
  };
  struct Saved : FeedForward::State {
    ColumnParallelLinear::Saved fc1_in;
    Tensor h;  // (N, 2F/P)
    RowParallelLinear::Saved fc2_in;
  };

  Config cfg;
  ColumnParallelLinear linear_fc1;  // local (2F/P, H)
  RowParallelLinear linear_fc2;     // local (H, F/P)

  ParallelMLP(Config c, Communicator& tp);
  void register_params(ParamTable& table, const std::string& name) override;  // "...mlp"

  // Rank r's fc1 shard of the full [gate; up] weight (2F, H) -> (2F/P, H).
  static Tensor fc1_shard(const Tensor& full, int rank, int size);

  // x (N, H), or (N/P, H) with SP -> y of the same shape
  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s);  // -> dx, shaped as x

  // FeedForward: the same, on a State made by new_state().
  std::unique_ptr<State> new_state() const override { return std::make_unique<Saved>(); }
  Tensor forward(Context& ctx, const Tensor& x, const SequenceLayout&, State& s) override {
    return forward(ctx, x, static_cast<Saved&>(s));
  }
  Tensor backward(Context& ctx, const Tensor& dy, const State& s) override {
    return backward(ctx, dy, static_cast<const Saved&>(s));
  }
};

}  // namespace foundry

// Tensor-parallel linears and the communication regions around them (Megatron-Core
// tensor_parallel/layers.py ColumnParallelLinear / RowParallelLinear and mappings.py), over the
// tp group of size P with this rank r. No bias (Llama-style).
//
//   ColumnParallelLinear  W (out, in) split by rows: this rank holds W_r = W[r out/P, (r+1) out/P)
//     forward   y_r = x W_r^T                         x (N, in) replicated -> y_r (N, out/P)
//     backward  dx = all_reduce_tp(dy_r W_r)          (copy_to_tensor_model_parallel_region)
//   RowParallelLinear     W (out, in) split by columns: W_r = W[:, r in/P, (r+1) in/P)
//     forward   y = all_reduce_tp(x_r W_r^T)          x_r (N, in/P) -> y (N, out) replicated
//     backward  dx_r = dy W_r                         (reduce_from_tensor_model_parallel_region)
// With sequence parallelism (Korthikanti et al. 2022) the replicated activations are split along
// tokens instead, x (N/P, in) per rank, rank r holding tokens [r N/P, (r+1) N/P):
//   column: x = all_gather_tokens(x_r) before the GEMM; backward dx_r = reduce_scatter_tokens(dx)
//   row:    y_r = reduce_scatter_tokens(x_r W_r^T);   backward dy = all_gather_tokens(dy_r)
// (gather_from / reduce_scatter_to_sequence_parallel_region). Tokens are rows of a row-major
// (N, H) tensor, so the collectives act on the flat buffers.
// Weight gradients accumulate (+=) into the local shard; with compute = bf16 the GEMMs round their
// inputs to bf16 as nn::Linear does. The gathered input is saved for the weight gradient (Megatron
// saves the local part and re-gathers it in backward; not done here).
#pragma once

#include "foundry/comm/communicator.h"
#include "foundry/nn/linear.h"

namespace foundry {

// Sequence-parallel regions: tokens are rows. x (n, H) -> (P n, H), and its backward.
Tensor all_gather_tokens(Communicator& tp, const Tensor& x);
// x (P n, H) summed over ranks, rows [r n, (r+1) n) kept -> (n, H).
Tensor reduce_scatter_tokens(Communicator& tp, const Tensor& x);

// Shards of a full (R, C) matrix for rank r of P: rows [r R/P, (r+1) R/P) / columns
// [r C/P, (r+1) C/P). Used to load full weights (tests, checkpoints) into the parallel modules.
Tensor shard_rows(const Tensor& full, int rank, int size);
Tensor shard_cols(const Tensor& full, int rank, int size);

struct ColumnParallelLinear {
  struct Config {
    int64_t in = 0;
    int64_t out = 0;  // full output size; out % P == 0
    Init init = Init::normal(0.02f);
    DType compute = DType::f32;
    bool sequence_parallel = false;
    bool gated = false;  // W = [gate; up] (SwiGLU fc1): each half split separately (rank r keeps
                         // rows r of both halves, ParallelMLP::fc1_shard)
  };
  using Saved = Linear::Saved;

  Config cfg;
  Communicator* tp;
  Linear local;  // (out/P, in); local.weight is this rank's shard

  ColumnParallelLinear(Config c, Communicator& tp_group);
  // name + ".weight": a sharded ParamSpec (nn/param.h) of the full (out, in) weight, split along axis 0.
  void register_params(ParamTable& table, const std::string& name);
  Param& weight() { return local.weight; }

  // x (N, in), or (N/P, in) with sequence parallelism -> y_r (N, out/P)
  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;
  // dy_r (N, out/P) -> dx (N, in) all-reduced, or (N/P, in) reduce-scattered; weight.grad +=
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s);
};

struct RowParallelLinear {
  struct Config {
    int64_t in = 0;  // full input size; in % P == 0
    int64_t out = 0;
    Init init = Init::normal(0.02f);
    DType compute = DType::f32;
    bool sequence_parallel = false;
  };
  using Saved = Linear::Saved;

  Config cfg;
  Communicator* tp;
  Linear local;  // (out, in/P)

  RowParallelLinear(Config c, Communicator& tp_group);
  // name + ".weight": a sharded ParamSpec of the full (out, in) weight, split along axis 1.
  void register_params(ParamTable& table, const std::string& name);
  Param& weight() { return local.weight; }

  // x_r (N, in/P) -> y (N, out) all-reduced, or (N/P, out) reduce-scattered
  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;
  // dy (N, out), or (N/P, out) -> dx_r (N, in/P); weight.grad +=
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s);
};

}  // namespace foundry

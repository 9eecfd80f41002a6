// Linear: y = x W^T (no bias; Llama-style models have none).
// With compute = bf16 the GEMM inputs (x, W, dy) are rounded to bf16 and accumulated in f32
// (mixed precision as in Megatron's bf16 training: f32 master weights and gradients).
#pragma once

#include "foundry/core/context.h"
#include "foundry/nn/param.h"

namespace foundry {

struct Linear {
  struct Config {
    int64_t in = 0;
    int64_t out = 0;
    Init init = Init::normal(0.02f);
    DType compute = DType::f32;  // f32 or bf16
    int tp_split_axis = -1;      // 0: column parallel, 1: row parallel (the parallelism issue)
  };
  struct Saved {
    Tensor x;  // (N, in) in the compute dtype
    Tensor w;  // (out, in) bf16 copy of the weight when compute = bf16
  };

  Config cfg;
  Param weight;  // (out, in)

  explicit Linear(Config c) : cfg(c) {}
  void register_params(ParamTable& table, const std::string& name);  // name = "...linear_fc1"

  // x (N, in) -> y (N, out)
  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;
  // dy (N, out) -> dx (N, in) (written); weight.grad += dy^T x
  Tensor backward(Context& ctx, const Tensor& dy, const Saved& s);
};

}  // namespace foundry

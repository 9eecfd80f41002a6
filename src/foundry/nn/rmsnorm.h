// RMSNorm module (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * w.
#pragma once

#include "foundry/core/context.h"
#include "foundry/nn/param.h"

namespace foundry {

struct RMSNorm {
  struct Config {
    int64_t hidden = 0;
    float eps = 1e-5f;
  };
  struct Saved {
    Tensor x;     // (N, H)
    Tensor rstd;  // (N)
  };

  Config cfg;
  Param weight;  // (H)

  explicit RMSNorm(Config c) : cfg(c) {}
  void register_params(ParamTable& table, const std::string& name);

  Tensor forward(Context& ctx, const Tensor& x, Saved& s) const;  // (N, H) -> (N, H)
  // dx += d(norm)/dx^T dy (accumulated into the residual stream's gradient); weight.grad += ...
  void backward(Context& ctx, const Tensor& dy, const Saved& s, const Tensor& dx_accumulate);
};

}  // namespace foundry

// Embedding: out[t] = W[ids[t]]; backward scatters into W.grad (+=).
#pragma once

#include "foundry/core/context.h"
#include "foundry/nn/param.h"

namespace foundry {

struct Embedding {
  struct Config {
    int64_t vocab = 0;
    int64_t hidden = 0;
    Init init = Init::normal(0.02f);
  };
  struct Saved {
    Tensor ids;  // (T) i32
  };

  Config cfg;
  Param weight;  // (V, H)

  explicit Embedding(Config c) : cfg(c) {}
  void register_params(ParamTable& table, const std::string& name);

  Tensor forward(Context& ctx, const Tensor& ids, Saved& s) const;  // (T) i32 -> (T, H)
  void backward(Context& ctx, const Tensor& dy, const Saved& s);   // weight.grad += scatter(dy)
};

}  // namespace foundry

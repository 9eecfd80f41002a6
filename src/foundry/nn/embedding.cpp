#include "foundry/nn/embedding.h"

#include "foundry/ops/embedding.h"

namespace foundry {

void Embedding::register_params(ParamTable& table, const std::string& name) {
  table.add(weight, {.name = name + ".weight", .shape = {cfg.vocab, cfg.hidden}, .init = cfg.init,
                     .tp_split_axis = 0});
}

Tensor Embedding::forward(Context& ctx, const Tensor& ids, Saved& s) const {
  s.ids = ids;
  Tensor out = Tensor::empty({ids.numel(), cfg.hidden}, DType::f32, ids.device());
  embedding_forward({.ids = ids, .table = weight.value, .out = out});
  return out;
}

void Embedding::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  embedding_backward({.ids = s.ids, .table = weight.value, .dout = dy, .dtable = weight.grad});
}

}  // namespace foundry

#include "foundry/nn/parallel_mlp.h"

#include "foundry/ops/activation.h"

namespace foundry {

ParallelMLP::ParallelMLP(Config c, Communicator& tp)
    : cfg(c),
      linear_fc1({.in = c.hidden, .out = 2 * c.ffn, .init = Init::normal(c.init_std),
                  .compute = c.compute, .sequence_parallel = c.sequence_parallel, .gated = true}, tp),
      linear_fc2({.in = c.ffn, .out = c.hidden, .init = Init::normal(c.output_init_std),
                  .compute = c.compute, .sequence_parallel = c.sequence_parallel}, tp) {
  FOUNDRY_CHECK(c.ffn % tp.size() == 0, "ParallelMLP: ffn {} is not divisible by the tensor-parallel "
                "size {}", c.ffn, tp.size());
}

void ParallelMLP::register_params(ParamTable& table, const std::string& name) {
  linear_fc1.register_params(table, name + ".linear_fc1");
  linear_fc2.register_params(table, name + ".linear_fc2");
}

Tensor ParallelMLP::fc1_shard(const Tensor& full, int rank, int size) {
  FOUNDRY_CHECK(full.ndim() == 2 && full.size(0) % (2 * size) == 0, "ParallelMLP::fc1_shard: {} is "
                "not (2F, H) with F divisible by {}", full.shape().str(), size);
  const int64_t f = full.size(0) / 2, n = f / size;
  Tensor out = Tensor::empty({2 * n, full.size(1)}, full.dtype(), full.device());
  out.slice(0, n).copy_from(full.slice(rank * n, (rank + 1) * n));              // gate_r
  out.slice(n, 2 * n).copy_from(full.slice(f + rank * n, f + (rank + 1) * n));  // up_r
  return out;
}

Tensor ParallelMLP::forward(Context& ctx, const Tensor& x, Saved& s) const {
  s.h = linear_fc1.forward(ctx, x, s.fc1_in);  // (N, 2F/P)
  const int64_t f_local = s.h.size(1) / 2;
  Tensor a = Tensor::empty({s.h.size(0), f_local}, DType::f32, x.device());  // (N, F/P)
  swiglu_forward({.x = s.h, .y = a});
  return linear_fc2.forward(ctx, a, s.fc2_in);  // (N, H) or (N/P, H)
}

Tensor ParallelMLP::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  Tensor da = linear_fc2.backward(ctx, dy, s.fc2_in);                           // (N, F/P)
  Tensor dh = Tensor::empty({s.h.size(0), s.h.size(1)}, DType::f32, dy.device());  // (N, 2F/P)
  swiglu_backward({.x = s.h, .dy = da, .dx = dh});
  return linear_fc1.backward(ctx, dh, s.fc1_in);
}

}  // namespace foundry

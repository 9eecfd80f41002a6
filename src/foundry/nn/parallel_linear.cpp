#include "foundry/nn/parallel_linear.h"

#include <cstring>

namespace foundry {

namespace {
int64_t split_size(int64_t n, const Communicator& tp, const char* what) {
  FOUNDRY_CHECK(n % tp.size() == 0, "{}: {} is not divisible by the tensor-parallel size {} (group '{}')",
                what, n, tp.size(), tp.name());
  return n / tp.size();
}
}  // namespace

Tensor all_gather_tokens(Communicator& tp, const Tensor& x) {
  FOUNDRY_CHECK(x.ndim() == 2, "all_gather_tokens: input {} must be (tokens, hidden)", x.shape().str());
  Tensor out = Tensor::empty({tp.size() * x.size(0), x.size(1)}, x.dtype(), x.device());
  tp.all_gather(x, out);
  return out;
}

Tensor reduce_scatter_tokens(Communicator& tp, const Tensor& x) {
  FOUNDRY_CHECK(x.ndim() == 2, "reduce_scatter_tokens: input {} must be (tokens, hidden)",
                x.shape().str());
  const int64_t n = split_size(x.size(0), tp, "reduce_scatter_tokens: token count");
  Tensor out = Tensor::empty({n, x.size(1)}, x.dtype(), x.device());
  tp.reduce_scatter(x, out);
  return out;
}

Tensor shard_rows(const Tensor& full, int rank, int size) {
  FOUNDRY_CHECK(full.ndim() == 2 && full.size(0) % size == 0 && rank >= 0 && rank < size,
                "shard_rows: {} rows not divisible into {} shards (rank {})", full.shape().str(), size, rank);
  const int64_t n = full.size(0) / size;
  return full.slice(rank * n, (rank + 1) * n).clone();
}

Tensor shard_cols(const Tensor& full, int rank, int size) {
  FOUNDRY_CHECK(full.ndim() == 2 && full.size(1) % size == 0 && rank >= 0 && rank < size,
                "shard_cols: {} columns not divisible into {} shards (rank {})", full.shape().str(), size,
                rank);
  const int64_t rows = full.size(0), c = full.size(1) / size;
  const int64_t es = dtype_storage_bytes(full.dtype(), 1);
  Tensor out = Tensor::empty({rows, c}, full.dtype(), full.device());
  const char* src = static_cast<const char*>(full.data());
  char* dst = static_cast<char*>(out.data());
  for (int64_t i = 0; i < rows; ++i)
    std::memcpy(dst + i * c * es, src + (i * full.size(1) + rank * c) * es, static_cast<size_t>(c * es));
  return out;
}

// ---- ColumnParallelLinear ----

ColumnParallelLinear::ColumnParallelLinear(Config c, Communicator& tp_group)
    : cfg(c), tp(&tp_group),
      local({.in = c.in, .out = split_size(c.out, tp_group, "ColumnParallelLinear: out"),
             .init = c.init, .compute = c.compute, .tp_split_axis = 0}) {}

void ColumnParallelLinear::register_params(ParamTable& table, const std::string& name) {
  local.register_params(table, name);
  ParamSpec& s = table.edit_spec(local.weight.index);  // rows [r out/P, ...) of the full (out, in)
  s.shape[0] = cfg.out;
  if (cfg.gated) shard_split_halves(s, 0, tp->rank(), tp->size(), "tp");
  else shard_split(s, 0, tp->rank(), tp->size(), "tp");
}

Tensor ColumnParallelLinear::forward(Context& ctx, const Tensor& x, Saved& s) const {
  if (cfg.sequence_parallel) return local.forward(ctx, all_gather_tokens(*tp, x), s);  // (N, out/P)
  return local.forward(ctx, x, s);
}

Tensor ColumnParallelLinear::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  Tensor dx = local.backward(ctx, dy, s);  // (N, in) partial sum over ranks
  if (cfg.sequence_parallel) return reduce_scatter_tokens(*tp, dx);  // (N/P, in)
  tp->all_reduce(dx);
  return dx;
}

// ---- RowParallelLinear ----

RowParallelLinear::RowParallelLinear(Config c, Communicator& tp_group)
    : cfg(c), tp(&tp_group),
      local({.in = split_size(c.in, tp_group, "RowParallelLinear: in"), .out = c.out,
             .init = c.init, .compute = c.compute, .tp_split_axis = 1}) {}

void RowParallelLinear::register_params(ParamTable& table, const std::string& name) {
  local.register_params(table, name);
  ParamSpec& s = table.edit_spec(local.weight.index);  // columns [r in/P, ...) of the full (out, in)
  s.shape[1] = cfg.in;
  shard_split(s, 1, tp->rank(), tp->size(), "tp");
}

Tensor RowParallelLinear::forward(Context& ctx, const Tensor& x, Saved& s) const {
  Tensor y = local.forward(ctx, x, s);  // (N, out) partial sum over ranks
  if (cfg.sequence_parallel) return reduce_scatter_tokens(*tp, y);  // (N/P, out)
  tp->all_reduce(y);
  return y;
}

Tensor RowParallelLinear::backward(Context& ctx, const Tensor& dy, const Saved& s) {
  if (cfg.sequence_parallel) return local.backward(ctx, all_gather_tokens(*tp, dy), s);
  return local.backward(ctx, dy, s);  // (N, in/P)
}

}  // namespace foundry

#include "foundry/nn/param.h"

#include "foundry/core/rng.h"

namespace foundry {

namespace {
// FNV-1a: a parameter's init stream depends on (seed, name) only, not on registration order.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
}  // namespace

void ParamTable::add(Param& p, ParamSpec spec) {
  FOUNDRY_CHECK(!allocated(), "ParamTable: '{}' registered after allocate()", spec.name);
  for (const auto& s : specs_)
    FOUNDRY_CHECK(s.name != spec.name, "ParamTable: parameter '{}' registered twice", spec.name);
  FOUNDRY_CHECK(spec.dtype == DType::f32, "ParamTable: '{}' has dtype {}; parameters are f32",
                spec.name, dtype_name(spec.dtype));
  p.index = size();
  specs_.push_back(std::move(spec));
  params_.push_back(&p);
}

void ParamTable::add_buffer(const std::string& name, Tensor& buffer) {
  FOUNDRY_CHECK(buffer.defined() && buffer.dtype() == DType::f32,
                "ParamTable: buffer '{}' must be a defined f32 tensor", name);
  for (const auto& s : specs_) FOUNDRY_CHECK(s.name != name, "ParamTable: buffer '{}' is also a parameter", name);
  for (const auto& n : buffer_names_) FOUNDRY_CHECK(n != name, "ParamTable: buffer '{}' registered twice", name);
  buffer_names_.push_back(name);
  buffers_.push_back(&buffer);
}

void ParamTable::allocate(uint64_t seed) {
  FOUNDRY_CHECK(!allocated(), "ParamTable: allocate() called twice");
  int64_t bytes = 0;
  for (const auto& s : specs_) bytes += Arena::aligned(dtype_storage_bytes(s.dtype, s.shape.numel()));
  values_ = Arena(std::max<int64_t>(bytes, Arena::kAlign));
  grads_ = Arena(std::max<int64_t>(bytes, Arena::kAlign));
  // Dense parameters first, then expert parameters, each in registration order.
  for (const bool expert : {false, true}) {
    if (expert) expert_begin_ = values_.used() / 4;
    for (int i = 0; i < size(); ++i) {
      const ParamSpec& s = specs_[static_cast<size_t>(i)];
      if (s.expert_local != expert) continue;
      Param& p = *params_[static_cast<size_t>(i)];
      p.value = values_.take(s.shape, s.dtype);
      p.grad = grads_.take(s.shape, s.dtype);
      switch (s.init.kind) {
        case Init::Kind::normal: {
          Philox rng(seed ^ name_hash(s.name));
          if (!s.sharded()) {
            rng.normal_(p.value, 0.f, s.init.std);
          } else {  // this rank's blocks of the full tensor's values
            Tensor full = Tensor::empty(s.global_shape, DType::f32);
            rng.normal_(full, 0.f, s.init.std);
            copy_full_to_shard(s, full, p.value);
          }
          break;
        }
        case Init::Kind::zeros: p.value.zero_(); break;
        case Init::Kind::ones: {
          float* v = p.value.ptr<float>();
          for (int64_t j = 0; j < p.value.numel(); ++j) v[j] = 1.f;
          break;
        }
      }
    }
  }
}

TensorView ParamTable::grad_buffer(Kind kind) const {
  const TensorView all = grad_buffer();
  const int64_t n = all.shape[0];
  return kind == Kind::dense ? all.slice(0, expert_begin_) : all.slice(expert_begin_, n);
}

TensorView ParamTable::value_buffer(Kind kind) const {
  const TensorView all = value_buffer();
  const int64_t n = all.shape[0];
  return kind == Kind::dense ? all.slice(0, expert_begin_) : all.slice(expert_begin_, n);
}

// ---- shards ----

void shard_split(ParamSpec& spec, int axis, int rank, int size, const std::string& group) {
  const int nd = spec.shape.ndim();
  FOUNDRY_CHECK(axis >= 0 && axis < nd && size > 0 && rank >= 0 && rank < size && spec.shape[axis] % size == 0,
                "parameter '{}': dimension {} of {} cannot be split into {} shards ({})", spec.name, axis,
                spec.shape.str(), size, group);
  if (!spec.sharded()) {
    spec.global_shape = spec.shape;
    ShardBlock all{std::vector<int64_t>(static_cast<size_t>(nd), 0), std::vector<int64_t>(static_cast<size_t>(nd), 0),
                   std::vector<int64_t>(spec.shape.begin(), spec.shape.end())};
    spec.blocks = {all};
  }
  const int64_t n = spec.shape[axis] / size, lo = rank * n, hi = lo + n;  // kept range of the local axis
  std::vector<ShardBlock> kept;
  for (ShardBlock b : spec.blocks) {  // intersect each block with [lo, hi) of the local axis
    const size_t a = static_cast<size_t>(axis);
    const int64_t b_lo = std::max(lo, b.local_offset[a]), b_hi = std::min(hi, b.local_offset[a] + b.extent[a]);
    if (b_lo >= b_hi) continue;
    b.global_offset[a] += b_lo - b.local_offset[a];
    b.extent[a] = b_hi - b_lo;
    b.local_offset[a] = b_lo - lo;
    kept.push_back(std::move(b));
  }
  spec.blocks = std::move(kept);
  spec.shape[axis] = n;
  spec.shard_group = spec.shard_group.empty() ? group : spec.shard_group + "_" + group;
}

void shard_split_halves(ParamSpec& spec, int axis, int rank, int size, const std::string& group) {
  FOUNDRY_CHECK(axis >= 0 && axis < spec.shape.ndim() && spec.shape[axis] % (2 * size) == 0,
                "parameter '{}': dimension {} of {} cannot be split into 2 x {} shards ({})", spec.name, axis,
                spec.shape.str(), size, group);
  // Split into the halves first (two blocks), then keep rank's part of each.
  ParamSpec gate = spec, up = spec;
  shard_split(gate, axis, 0, 2, group);
  shard_split(up, axis, 1, 2, group);
  shard_split(gate, axis, rank, size, group);
  shard_split(up, axis, rank, size, group);
  const int64_t n = gate.shape[axis];
  for (ShardBlock& b : up.blocks) b.local_offset[static_cast<size_t>(axis)] += n;
  spec.global_shape = gate.global_shape;
  spec.blocks = gate.blocks;
  spec.blocks.insert(spec.blocks.end(), up.blocks.begin(), up.blocks.end());
  spec.shape[axis] = 2 * n;
  spec.shard_group = spec.shard_group.empty() ? group : spec.shard_group + "_" + group;
}

namespace {
// Copies the box `extent` between two row-major f32 tensors: src[src_off + i] -> dst[dst_off + i].
void copy_box(const float* src, const Shape& src_shape, const std::vector<int64_t>& src_off, float* dst,
              const Shape& dst_shape, const std::vector<int64_t>& dst_off, const std::vector<int64_t>& extent) {
  const int nd = src_shape.ndim();
  std::vector<int64_t> src_stride(static_cast<size_t>(nd), 1), dst_stride(static_cast<size_t>(nd), 1);
  for (int d = nd - 2; d >= 0; --d) {
    src_stride[static_cast<size_t>(d)] = src_stride[static_cast<size_t>(d) + 1] * src_shape[d + 1];
    dst_stride[static_cast<size_t>(d)] = dst_stride[static_cast<size_t>(d) + 1] * dst_shape[d + 1];
  }
  const int64_t row = extent.back();  // contiguous innermost run
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  int64_t rows = 1;
  for (int d = 0; d + 1 < nd; ++d) rows *= extent[static_cast<size_t>(d)];
  for (int64_t r = 0; r < rows; ++r) {
    int64_t s = 0, t = 0;
    for (int d = 0; d < nd; ++d) {
      const size_t k = static_cast<size_t>(d);
      s += (src_off[k] + idx[k]) * src_stride[k];
      t += (dst_off[k] + idx[k]) * dst_stride[k];
    }
    std::copy(src + s, src + s + row, dst + t);
    for (int d = nd - 2; d >= 0; --d) {  // next row: odometer over the outer dimensions
      const size_t k = static_cast<size_t>(d);
      if (++idx[k] < extent[k]) break;
      idx[k] = 0;
    }
  }
}

void check_shard_views(const ParamSpec& spec, const TensorView& full, const TensorView& local) {
  FOUNDRY_CHECK(full.dtype == DType::f32 && local.dtype == DType::f32 && full.shape == spec.full_shape() &&
                    local.shape == spec.shape,
                "parameter '{}': shard copy between {} and {} does not match the spec (local {}, full {})", spec.name,
                local.shape.str(), full.shape.str(), spec.shape.str(), spec.full_shape().str());
}
}  // namespace

void copy_full_to_shard(const ParamSpec& spec, const TensorView& full, const TensorView& local) {
  check_shard_views(spec, full, local);
  if (!spec.sharded()) {
    std::copy(full.ptr<float>(), full.ptr<float>() + full.shape.numel(), local.ptr<float>());
    return;
  }
  for (const ShardBlock& b : spec.blocks)
    copy_box(full.ptr<float>(), full.shape, b.global_offset, local.ptr<float>(), local.shape, b.local_offset, b.extent);
}

void copy_shard_to_full(const ParamSpec& spec, const TensorView& local, const TensorView& full) {
  check_shard_views(spec, full, local);
  if (!spec.sharded()) {
    std::copy(local.ptr<float>(), local.ptr<float>() + local.shape.numel(), full.ptr<float>());
    return;
  }
  for (const ShardBlock& b : spec.blocks)
    copy_box(local.ptr<float>(), local.shape, b.local_offset, full.ptr<float>(), full.shape, b.global_offset, b.extent);
}

ParamSpec& ParamTable::edit_spec(int i) {
  FOUNDRY_CHECK(i >= 0 && i < size(), "ParamTable::edit_spec: no parameter {}", i);
  FOUNDRY_CHECK(!allocated(), "ParamTable: '{}' edited after allocate()", specs_[static_cast<size_t>(i)].name);
  return specs_[static_cast<size_t>(i)];
}

Param& ParamTable::at(const std::string& name) const {
  for (int i = 0; i < size(); ++i)
    if (specs_[static_cast<size_t>(i)].name == name) return *params_[static_cast<size_t>(i)];
  FOUNDRY_FAIL("ParamTable: no parameter named '{}'", name);
}

int64_t ParamTable::numel() const {
  int64_t n = 0;
  for (const auto& s : specs_) n += s.shape.numel();
  return n;
}

TensorView ParamTable::grad_buffer() const {
  const Tensor& b = grads_.buffer();
  return {.data = b.data(), .dtype = DType::f32, .shape = {b.nbytes() / 4}, .device = b.device()};
}

TensorView ParamTable::value_buffer() const {
  const Tensor& b = values_.buffer();
  return {.data = b.data(), .dtype = DType::f32, .shape = {b.nbytes() / 4}, .device = b.device()};
}

std::vector<TensorView> ParamTable::grads() const {
  std::vector<TensorView> g;
  for (const Param* p : params_) g.push_back(p->grad.view());
  return g;
}

}  // namespace foundry

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
  for (int i = 0; i < size(); ++i) {
    const ParamSpec& s = specs_[static_cast<size_t>(i)];
    Param& p = *params_[static_cast<size_t>(i)];
    p.value = values_.take(s.shape, s.dtype);
    p.grad = grads_.take(s.shape, s.dtype);
    switch (s.init.kind) {
      case Init::Kind::normal: Philox(seed ^ name_hash(s.name)).normal_(p.value, 0.f, s.init.std); break;
      case Init::Kind::zeros: p.value.zero_(); break;
      case Init::Kind::ones: {
        float* v = p.value.ptr<float>();
        for (int64_t j = 0; j < p.value.numel(); ++j) v[j] = 1.f;
        break;
      }
    }
  }
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

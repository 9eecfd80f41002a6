#include "foundry/core/shape.h"

#include "foundry/core/check.h"

namespace foundry {

Shape::Shape(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) push_back(d);
}

void Shape::push_back(int64_t d) {
  FOUNDRY_CHECK(ndim_ < kMaxDims, "Shape: more than {} dimensions", kMaxDims);
  FOUNDRY_CHECK(d >= 0, "Shape: negative dimension {}", d);
  dims_[ndim_++] = d;
}

int Shape::index(int i) const {
  const int j = i < 0 ? i + ndim_ : i;
  FOUNDRY_CHECK(j >= 0 && j < ndim_, "Shape{}: dimension index {} out of range", str(), i);
  return j;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[i];
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + (ndim_ == 1 ? ",)" : ")");
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.ndim_ != b.ndim_) return false;
  for (int i = 0; i < a.ndim_; ++i)
    if (a.dims_[i] != b.dims_[i]) return false;
  return true;
}

}  // namespace foundry

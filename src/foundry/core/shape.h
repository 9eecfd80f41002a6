// Shape: up to 8 dimensions, row-major. Shapes are printed as (2, 3, 4) in error messages.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace foundry {

class Shape {
 public:
  static constexpr int kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  template <class It> Shape(It first, It last) { for (; first != last; ++first) push_back(*first); }

  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[index(i)]; }
  int64_t& operator[](int i) { return dims_[index(i)]; }
  int64_t numel() const;
  void push_back(int64_t d);
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + ndim_; }
  // Product of dims [0, ndim-1): rows when the tensor is read as a 2-D (rows, last) matrix.
  int64_t rows() const { return ndim_ == 0 ? 1 : numel() / dims_[ndim_ - 1]; }
  int64_t last() const { return ndim_ == 0 ? 1 : dims_[ndim_ - 1]; }
  std::string str() const;

  friend bool operator==(const Shape& a, const Shape& b);

 private:
  int index(int i) const;  // negative i counts from the end; throws when out of range
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

}  // namespace foundry

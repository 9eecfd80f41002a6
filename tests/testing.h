// Shared test helpers: random tensors, tolerance comparisons that report the worst element,
// and central finite-difference gradient checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "foundry/core/rng.h"
#include "foundry/core/tensor.h"

namespace foundry::testing {

// f32 tensor with N(0, std) entries from a fixed Philox stream.
inline Tensor randn(const Shape& shape, uint64_t seed, float std = 1.f) {
  Tensor t = Tensor::empty(shape);
  Philox(seed).normal_(t, 0.f, std);
  return t;
}
inline Tensor randu(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::empty(shape);
  Philox(seed).uniform_(t, lo, hi);
  return t;
}

// Element-wise |a - b| <= atol + rtol * |b|; on failure reports the worst element.
inline ::testing::AssertionResult allclose(const Tensor& a, const Tensor& b, double rtol,
                                           double atol) {
  if (!(a.shape() == b.shape()))
    return ::testing::AssertionFailure() << "shape " << a.shape().str() << " vs " << b.shape().str();
  const auto va = a.to_vector(), vb = b.to_vector();
  double worst = -1;
  size_t worst_i = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double err = std::abs(static_cast<double>(va[i]) - vb[i]);
    const double excess = err - (atol + rtol * std::abs(static_cast<double>(vb[i])));
    if (!(excess <= 0) && (worst < 0 || excess > worst || std::isnan(excess))) {
      worst = std::isnan(excess) ? 1e300 : excess;
      worst_i = i;
    }
  }
  if (worst < 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << worst_i << ": " << va[worst_i] << " vs "
                                       << vb[worst_i] << " (rtol " << rtol << ", atol " << atol
                                       << ")";
}

// ||a - b|| / ||b|| <= tol (the metric used for gradients in the parity tests).
inline ::testing::AssertionResult close_in_norm(const Tensor& a, const Tensor& b, double tol) {
  const auto va = a.to_vector(), vb = b.to_vector();
  if (va.size() != vb.size()) return ::testing::AssertionFailure() << "size mismatch";
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += (static_cast<double>(va[i]) - vb[i]) * (static_cast<double>(va[i]) - vb[i]);
    den += static_cast<double>(vb[i]) * vb[i];
  }
  const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  if (rel <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "relative error in norm " << rel << " > " << tol;
}

// Central finite differences: for up to max_checks elements i of x (spread evenly),
// compares analytic[i] with (loss(x + h e_i) - loss(x - h e_i)) / 2h. loss() must read x
// afresh on each call and should accumulate in double.
inline ::testing::AssertionResult finite_difference_check(const std::function<double()>& loss,
                                                          const Tensor& x, const Tensor& analytic,
                                                          double h = 1e-2, double rtol = 2e-2,
                                                          double atol = 2e-3,
                                                          int64_t max_checks = 48) {
  float* p = x.ptr<float>();
  const auto g = analytic.to_vector();
  const int64_t n = x.numel();
  const int64_t stride = std::max<int64_t>(1, n / max_checks);
  for (int64_t i = 0; i < n; i += stride) {
    const float saved = p[i];
    p[i] = saved + static_cast<float>(h);
    const double up = loss();
    p[i] = saved - static_cast<float>(h);
    const double down = loss();
    p[i] = saved;
    const double numeric = (up - down) / (2 * h);
    if (std::abs(numeric - g[static_cast<size_t>(i)]) > atol + rtol * std::abs(numeric))
      return ::testing::AssertionFailure() << "d/dx[" << i << "]: analytic " << g[static_cast<size_t>(i)]
                                           << " vs finite difference " << numeric;
  }
  return ::testing::AssertionSuccess();
}

// The message of the foundry::Error that f throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

// An f32 tensor full of NaN: outputs documented as written (=) must overwrite all of it.
inline Tensor nan_filled(const Shape& s) { return Tensor::full(s, std::numeric_limits<float>::quiet_NaN()); }

// sum(y * w) in double: a scalar loss with a random cotangent w = dL/dy.
inline double dot(const Tensor& y, const Tensor& w) {
  const float* a = y.ptr<float>();
  const float* b = w.ptr<float>();
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

}  // namespace foundry::testing

// EXPECT_ERROR_MENTIONS(call, "part", ...): call throws foundry::Error whose message contains
// every part.
#define EXPECT_ERROR_MENTIONS(call, ...)                                                    \
  do {                                                                                      \
    EXPECT_THROW(call, ::foundry::Error);                                                   \
    const std::string msg_ = ::foundry::testing::error_of([&] { call; });                   \
    for (const char* part : {__VA_ARGS__})                                                  \
      EXPECT_NE(msg_.find(part), std::string::npos) << "'" << part << "' not in: " << msg_; \
  } while (0)

#include "foundry/backend/cpu/ref/activation_ref.h"

#include <cmath>
#include <numbers>
#include <vector>

namespace foundry::ref {

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// 0.5 (1 + tanh u) is evaluated as sigmoid(2u) and 0.5 (1 + erf z) as 0.5 erfc(-z): the same
// values, without the cancellation that zeroes the negative tail even in f64.
double gelu_tanh_gate(double x) {
  return sigmoid(2.0 * std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x));
}
double gelu_erf_gate(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double act(Activation kind, double x) {
  switch (kind) {
    case Activation::silu: return x * sigmoid(x);
    case Activation::gelu_tanh: return x * gelu_tanh_gate(x);
    case Activation::gelu_erf: return x * gelu_erf_gate(x);
    case Activation::sigmoid: return sigmoid(x);
  }
  return 0;
}

double act_grad(Activation kind, double x) {
  switch (kind) {
    case Activation::silu: {
      const double s = sigmoid(x);
      return s + x * s * (1.0 - s);
    }
    case Activation::gelu_tanh: {
      // d/dx [0.5 x (1 + tanh u)] = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u',
      // with 0.5 (1 - tanh^2 u) = 2 s (1 - s), s = sigmoid(2u).
      const double c = std::sqrt(2.0 / std::numbers::pi);
      const double s = gelu_tanh_gate(x);
      return s + x * 2.0 * s * (1.0 - s) * c * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case Activation::gelu_erf:
      return gelu_erf_gate(x) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
    case Activation::sigmoid: {
      const double s = sigmoid(x);
      return s * (1.0 - s);
    }
  }
  return 0;
}

}  // namespace

void activation_forward(const ActivationArgs& g) {
  const float* x = g.x.ptr<float>();
  float* y = g.y.ptr<float>();
  for (int64_t i = 0; i < g.x.numel(); ++i) y[i] = static_cast<float>(act(g.kind, x[i]));
}

void activation_backward(const ActivationArgs& g) {
  const float* x = g.x.ptr<float>();
  const float* dy = g.dy.ptr<float>();
  float* dx = g.dx.ptr<float>();
  for (int64_t i = 0; i < g.x.numel(); ++i)
    dx[i] = static_cast<float>(dy[i] * act_grad(g.kind, x[i]));
}

void swiglu_forward(const SwigluArgs& g) {
  const int64_t N = g.y.size(0), F = g.y.size(1);
  const float* x = g.x.ptr<float>();
  float* y = g.y.ptr<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < F; ++j) {
      const double gate = x[n * 2 * F + j], up = x[n * 2 * F + F + j];
      y[n * F + j] = static_cast<float>(gate * sigmoid(gate) * up);
    }
}

void swiglu_backward(const SwigluArgs& g) {
  const int64_t N = g.dy.size(0), F = g.dy.size(1);
  const float* x = g.x.ptr<float>();
  const float* dy = g.dy.ptr<float>();
  float* dx = g.dx.ptr<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < F; ++j) {
      const double gate = x[n * 2 * F + j], up = x[n * 2 * F + F + j], d = dy[n * F + j];
      dx[n * 2 * F + j] = static_cast<float>(d * up * act_grad(Activation::silu, gate));
      dx[n * 2 * F + F + j] = static_cast<float>(d * act(Activation::silu, gate));
    }
}

void softmax_forward(const SoftmaxArgs& g) {
  const int64_t N = g.x.size(0), C = g.x.size(1);
  const float* x = g.x.ptr<float>();
  float* y = g.y.ptr<float>();
  std::vector<double> e(static_cast<size_t>(C));
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, sum = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(x[n * C + c]));
    for (int64_t c = 0; c < C; ++c) sum += e[c] = std::exp(x[n * C + c] - m);
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = static_cast<float>(e[c] / sum);
  }
}

void softmax_backward(const SoftmaxArgs& g) {
  const int64_t N = g.y.size(0), C = g.y.size(1);
  const float* y = g.y.ptr<float>();
  const float* dy = g.dy.ptr<float>();
  float* dx = g.dx.ptr<float>();
  for (int64_t n = 0; n < N; ++n) {
    double dot = 0;
    for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(dy[n * C + c]) * y[n * C + c];
    for (int64_t c = 0; c < C; ++c)
      dx[n * C + c] = static_cast<float>(y[n * C + c] * (dy[n * C + c] - dot));
  }
}

}  // namespace foundry::ref

// CPU activations, SwiGLU and softmax.
//   sigmoid(x)   = s(x),                    sigmoid'   = s(x) s(-x)  (= s (1 - s))
//   silu(x)      = x s(x),                  silu'      = s (1 + x (1 - s))
//   gelu_tanh(x) = x s(2u), u = c (x + 0.044715 x^3), c = sqrt(2/pi)
//                  (0.5 (1 + tanh u) = s(2u), which keeps the negative tail accurate)
//                  gelu_tanh' = s + x s (1 - s) 2c (1 + 3 * 0.044715 x^2),  s = s(2u)
//   gelu_erf(x)  = x Phi(x),                gelu_erf'  = Phi + x exp(-x^2/2) / sqrt(2 pi)
//   swiglu: y = silu(g) u;  dg = dy u silu'(g),  du = dy silu(g)  (Megatron fused fc1 layout)
//   softmax: y = exp(x - max) / sum;  dx = y (dy - sum(dy y))
// s() is the logistic sigmoid; sources: Hendrycks & Gimpel 2016 (GELU), Shazeer 2020 (GLU variants).
#include "foundry/backend/cpu/activation.h"

#include <cmath>

#include "foundry/backend/cpu/vector_math.h"

namespace foundry::cpu {

namespace {

constexpr int64_t kParallelMin = int64_t{1} << 14;  // elements; below this threads cost more
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCoef = 0.044715f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

}  // namespace

// y = f(x), elementwise; y may alias x.
void activation_forward(const ActivationArgs& args) {
  const int64_t n = args.x.numel();
  const float* x = args.x.ptr<float>();
  float* y = args.y.ptr<float>();
  switch (args.kind) {
    case Activation::silu:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_f32(x[i]);
      break;
    case Activation::gelu_tanh:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
        y[i] = v * sigmoid_f32(2.f * u);
      }
      break;
    case Activation::gelu_erf:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * normal_cdf_f32(x[i]);
      break;
    case Activation::sigmoid:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_f32(x[i]);
      break;
  }
}

// dx = dy * f'(x), written (=); dx may alias dy.
void activation_backward(const ActivationArgs& args) {
  const int64_t n = args.x.numel();
  const float* x = args.x.ptr<float>();
  const float* dy = args.dy.ptr<float>();
  float* dx = args.dx.ptr<float>();
  switch (args.kind) {
    case Activation::silu:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const float s = sigmoid_f32(x[i]);
        dx[i] = dy[i] * (s * (1.f + x[i] * (1.f - s)));
      }
      break;
    case Activation::gelu_tanh:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        // Beyond |x| = 20 the derivative is 0 or 1 in f32; clamping keeps v^3 and u' finite.
        const float v = x[i] < -20.f ? -20.f : (x[i] > 20.f ? 20.f : x[i]);
        const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
        const float du = kSqrt2OverPi * (1.f + 3.f * kGeluCoef * v * v);
        const float s = sigmoid_f32(2.f * u);
        dx[i] = dy[i] * (s + v * s * (1.f - s) * 2.f * du);
      }
      break;
    case Activation::gelu_erf:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float pdf = kInvSqrt2Pi * exp_f32(-0.5f * v * v);
        dx[i] = dy[i] * (normal_cdf_f32(v) + v * pdf);
      }
      break;
    case Activation::sigmoid:
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        dx[i] = dy[i] * (sigmoid_f32(x[i]) * sigmoid_f32(-x[i]));  // 1 - s(x) = s(-x), no cancellation
      }
      break;
  }
}

// x (N, 2F) = [gate | up] -> y (N, F) = silu(gate) * up.
void swiglu_forward(const SwigluArgs& args) {
  const int64_t N = args.y.size(0), F = args.y.size(1);
  const float* x = args.x.ptr<float>();
  float* y = args.y.ptr<float>();
#pragma omp parallel for schedule(static) if (N * F >= kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    const float* g = x + r * 2 * F;
    const float* u = g + F;
    float* yr = y + r * F;
#pragma omp simd
    for (int64_t j = 0; j < F; ++j) yr[j] = g[j] * sigmoid_f32(g[j]) * u[j];
  }
}

// dx (N, 2F) written (=): [dy * u * silu'(gate) | dy * silu(gate)].
void swiglu_backward(const SwigluArgs& args) {
  const int64_t N = args.dy.size(0), F = args.dy.size(1);
  const float* x = args.x.ptr<float>();
  const float* dy = args.dy.ptr<float>();
  float* dx = args.dx.ptr<float>();
#pragma omp parallel for schedule(static) if (N * F >= kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    const float* g = x + r * 2 * F;
    const float* u = g + F;
    const float* dyr = dy + r * F;
    float* dg = dx + r * 2 * F;
    float* du = dg + F;
#pragma omp simd
    for (int64_t j = 0; j < F; ++j) {
      const float s = sigmoid_f32(g[j]);
      dg[j] = dyr[j] * u[j] * (s * (1.f + g[j] * (1.f - s)));
      du[j] = dyr[j] * g[j] * s;
    }
  }
}

// Row-wise softmax over the last dim, max-subtracted (y may alias x: each pass reads the
// element it writes).
void softmax_forward(const SoftmaxArgs& args) {
  const int64_t N = args.x.size(0), C = args.x.size(1);
  const float* x = args.x.ptr<float>();
  float* y = args.y.ptr<float>();
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < C; ++j) m = xr[j] > m ? xr[j] : m;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < C; ++j) {
      yr[j] = exp_f32(xr[j] - m);
      sum += yr[j];
    }
    const float inv = 1.f / sum;
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) yr[j] *= inv;
  }
}

// dx = y * (dy - sum(dy * y)), written (=); dx may alias dy.
void softmax_backward(const SoftmaxArgs& args) {
  const int64_t N = args.y.size(0), C = args.y.size(1);
  const float* y = args.y.ptr<float>();
  const float* dy = args.dy.ptr<float>();
  float* dx = args.dx.ptr<float>();
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    const float* yr = y + r * C;
    const float* dyr = dy + r * C;
    float* dxr = dx + r * C;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < C; ++j) dot += dyr[j] * yr[j];
#pragma omp simd
    for (int64_t j = 0; j < C; ++j) dxr[j] = yr[j] * (dyr[j] - dot);
  }
}

}  // namespace foundry::cpu

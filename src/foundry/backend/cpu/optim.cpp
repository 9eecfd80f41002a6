// CPU optimizer kernels.
// AdamW follows torch.optim.AdamW (_single_tensor_adamw, PyTorch 1.13) operation for operation:
// scalars are computed in f64 as Python does and rounded to f32 where they meet a tensor; the
// tensor arithmetic is f32.
//   g = grad * grad_scale                           (clip_grad_norm_'s grad.mul_(clip_coef))
//   p = p * (1 - lr wd)                             param.mul_(1 - lr * weight_decay)
//   m = m beta1 + (1 - beta1) g                     exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
//   v = v beta2 + (1 - beta2) g g                   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   p = p + (-lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - beta_i^step
// The gradient norm sums squares in f64 over fixed blocks of kBlock elements; block sums are added
// in order afterwards, so the result does not depend on the thread count.
#include "foundry/backend/cpu/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace foundry::cpu {

namespace {

// f32 scalars of one AdamW step, computed once (see the file comment).
struct AdamWCoeffs {
  float grad_scale, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, neg_step_size, bc2_sqrt, eps;
};

// Elements [begin, end). GCC does not vectorise std::sqrt while math errno is on (the default:
// it becomes a branch to the library call), so the AVX-512 build spells the loop with intrinsics,
// 16 lanes at a time with a masked tail; other builds run the same formula as a plain loop.
#if defined(__AVX512F__)
void adamw_range(const AdamWCoeffs& c, float* p, const float* grad, float* m, float* v,
                 int64_t begin, int64_t end) {
  const __m512 grad_scale = _mm512_set1_ps(c.grad_scale), decay = _mm512_set1_ps(c.decay);
  const __m512 beta1 = _mm512_set1_ps(c.beta1), one_minus_beta1 = _mm512_set1_ps(c.one_minus_beta1);
  const __m512 beta2 = _mm512_set1_ps(c.beta2), one_minus_beta2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 neg_step_size = _mm512_set1_ps(c.neg_step_size), bc2_sqrt = _mm512_set1_ps(c.bc2_sqrt);
  const __m512 eps = _mm512_set1_ps(c.eps);
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 k = end - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (end - i)) - 1);
    const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, grad + i), grad_scale);
    const __m512 pi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), decay);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, m + i), beta1),
                                    _mm512_mul_ps(one_minus_beta1, g));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), beta2),
                                    _mm512_mul_ps(_mm512_mul_ps(one_minus_beta2, g), g));
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_maskz_sqrt_ps(k, vi), bc2_sqrt), eps);
    _mm512_mask_storeu_ps(p + i, k, _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(neg_step_size, mi), denom)));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
  }
}
#else
void adamw_range(const AdamWCoeffs& c, float* p, const float* grad, float* m, float* v,
                 int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i] * c.grad_scale;
    const float pi = p[i] * c.decay;
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * g;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * g * g;
    const float denom = std::sqrt(vi) / c.bc2_sqrt + c.eps;
    p[i] = pi + c.neg_step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}
#endif

constexpr int64_t kAdamWBlock = 1 << 14;

}  // namespace

void adamw_step(const AdamWArgs& a) {
  const int64_t n = a.param.numel();
  const double step = static_cast<double>(a.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), step);
  const AdamWCoeffs c{
      .grad_scale = a.grad_scale,
      .decay = static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay),
      .beta1 = a.beta1,
      .one_minus_beta1 = static_cast<float>(1.0 - a.beta1),
      .beta2 = a.beta2,
      .one_minus_beta2 = static_cast<float>(1.0 - a.beta2),
      .neg_step_size = static_cast<float>(-(a.lr / bc1)),
      .bc2_sqrt = static_cast<float>(std::sqrt(bc2)),
      .eps = a.eps,
  };
  float* p = a.param.ptr<float>();
  const float* grad = a.grad.ptr<float>();
  float* m = a.exp_avg.ptr<float>();
  float* v = a.exp_avg_sq.ptr<float>();
  const int64_t blocks = (n + kAdamWBlock - 1) / kAdamWBlock;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b)
    adamw_range(c, p, grad, m, v, b * kAdamWBlock, std::min(n, (b + 1) * kAdamWBlock));
}

namespace {

constexpr int64_t kBlock = 1 << 16;

struct Block {
  const TensorView* t;
  int64_t begin, end;
};

double sum_squares(const Block& b) {
  double s = 0.0;
  if (b.t->dtype == DType::bf16) {
    const uint16_t* x = static_cast<const uint16_t*>(b.t->data);
#pragma omp simd reduction(+ : s)
    for (int64_t i = b.begin; i < b.end; ++i) {
      const double xi = bf16_to_f32(x[i]);
      s += xi * xi;
    }
  } else {
    const float* x = static_cast<const float*>(b.t->data);
#pragma omp simd reduction(+ : s)
    for (int64_t i = b.begin; i < b.end; ++i) {
      const double xi = x[i];
      s += xi * xi;
    }
  }
  return s;
}

}  // namespace

double global_grad_norm(std::span<const TensorView> grads) {
  std::vector<Block> blocks;
  for (const TensorView& t : grads)
    for (int64_t b = 0; b < t.numel(); b += kBlock) blocks.push_back({&t, b, std::min(b + kBlock, t.numel())});
  std::vector<double> partial(blocks.size());
  const int64_t nb = static_cast<int64_t>(blocks.size());
#pragma omp parallel for schedule(static) if (nb > 1)
  for (int64_t i = 0; i < nb; ++i) partial[i] = sum_squares(blocks[i]);
  double total = 0.0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

void scale_(const TensorView& t, float s) {
  const int64_t n = t.numel();
  if (t.dtype == DType::bf16) {
    uint16_t* x = static_cast<uint16_t*>(t.data);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] = f32_to_bf16(bf16_to_f32(x[i]) * s);
  } else {
    float* x = t.ptr<float>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
  }
}

}  // namespace foundry::cpu

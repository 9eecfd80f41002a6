#include "foundry/backend/cpu/ref/optim_ref.h"

#include <cmath>

namespace foundry::ref {

void adamw_step(const AdamWArgs& a) {
  float* p = a.param.ptr<float>();
  const float* grad = a.grad.ptr<float>();
  float* m = a.exp_avg.ptr<float>();
  float* v = a.exp_avg_sq.ptr<float>();
  const double lr = a.lr, wd = a.weight_decay, b1 = a.beta1, b2 = a.beta2, eps = a.eps;
  const double bc1 = 1 - std::pow(b1, static_cast<double>(a.step));
  const double bc2 = 1 - std::pow(b2, static_cast<double>(a.step));
  for (int64_t i = 0; i < a.param.numel(); ++i) {
    const double g = static_cast<double>(grad[i]) * a.grad_scale;
    double pi = p[i];
    pi -= lr * wd * pi;
    const double mi = b1 * m[i] + (1 - b1) * g;
    const double vi = b2 * v[i] + (1 - b2) * g * g;
    pi -= lr / bc1 * mi / (std::sqrt(vi) / std::sqrt(bc2) + eps);
    p[i] = static_cast<float>(pi);
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

double global_grad_norm(std::span<const TensorView> grads) {
  double s = 0;
  for (const TensorView& t : grads) {
    const float* x = t.ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(s);
}

}  // namespace foundry::ref

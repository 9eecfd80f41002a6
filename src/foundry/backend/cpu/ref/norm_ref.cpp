#include "foundry/backend/cpu/ref/norm_ref.h"

#include <cmath>
#include <vector>

namespace foundry::ref {

namespace {

void forward(const NormArgs& a, bool layer) {
  const int64_t N = a.x.size(0), H = a.x.size(1);
  const float* x = a.x.ptr<float>();
  const float* w = a.weight.ptr<float>();
  const float* b = a.bias.defined() ? a.bias.ptr<float>() : nullptr;
  float* y = a.y.ptr<float>();
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * H;
    double mean = 0;
    if (layer) {
      for (int64_t j = 0; j < H; ++j) mean += xr[j];
      mean /= static_cast<double>(H);
      a.mean.ptr<float>()[n] = static_cast<float>(mean);
    }
    double ss = 0;
    for (int64_t j = 0; j < H; ++j) ss += (xr[j] - mean) * (xr[j] - mean);
    const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(H) + a.eps);
    a.rstd.ptr<float>()[n] = static_cast<float>(rstd);
    for (int64_t j = 0; j < H; ++j)
      y[n * H + j] = static_cast<float>((xr[j] - mean) * rstd * w[j] + (b ? b[j] : 0.0));
  }
}

void backward(const NormArgs& a, bool layer) {
  const int64_t N = a.x.size(0), H = a.x.size(1);
  const float* x = a.x.ptr<float>();
  const float* w = a.weight.ptr<float>();
  const float* dy = a.dy.ptr<float>();
  float* dx = a.dx.ptr<float>();
  std::vector<double> dw(static_cast<size_t>(H), 0.0), db(static_cast<size_t>(H), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const double mean = layer ? a.mean.ptr<float>()[n] : 0.0;
    const double rstd = a.rstd.ptr<float>()[n];
    double mean_g = 0, mean_gx = 0;
    for (int64_t j = 0; j < H; ++j) {
      const double xhat = (x[n * H + j] - mean) * rstd;
      const double g = static_cast<double>(dy[n * H + j]) * w[j];
      mean_g += g / static_cast<double>(H);
      mean_gx += g * xhat / static_cast<double>(H);
      dw[j] += dy[n * H + j] * xhat;
      db[j] += dy[n * H + j];
    }
    for (int64_t j = 0; j < H; ++j) {
      const double xhat = (x[n * H + j] - mean) * rstd;
      const double g = static_cast<double>(dy[n * H + j]) * w[j];
      const double d = rstd * (g - (layer ? mean_g : 0.0) - xhat * mean_gx);
      float& out = dx[n * H + j];
      out = static_cast<float>(a.accumulate_dx ? out + d : d);
    }
  }
  for (int64_t j = 0; j < H; ++j) {
    a.dweight.ptr<float>()[j] += static_cast<float>(dw[j]);
    if (layer && a.dbias.defined()) a.dbias.ptr<float>()[j] += static_cast<float>(db[j]);
  }
}

}  // namespace

void rmsnorm_forward(const NormArgs& args) { forward(args, false); }
void rmsnorm_backward(const NormArgs& args) { backward(args, false); }
void layernorm_forward(const NormArgs& args) { forward(args, true); }
void layernorm_backward(const NormArgs& args) { backward(args, true); }

}  // namespace foundry::ref

#include "foundry/backend/cpu/ref/elementwise_ref.h"

namespace foundry::ref {

void add_forward(const AddArgs& g) {
  const float* a = g.a.ptr<float>();
  const float* b = g.b.ptr<float>();
  float* out = g.out.ptr<float>();
  for (int64_t i = 0; i < g.out.numel(); ++i)
    out[i] = static_cast<float>(static_cast<double>(a[i]) + b[i]);
}

void add_backward(const AddArgs& g) {
  const float* dout = g.dout.ptr<float>();
  for (const TensorView* d : {&g.da, &g.db}) {
    if (!d->defined()) continue;
    float* p = d->ptr<float>();
    for (int64_t i = 0; i < g.dout.numel(); ++i) p[i] = static_cast<float>(static_cast<double>(p[i]) + dout[i]);
  }
}

void bias_add_forward(const BiasAddArgs& g) {
  const int64_t N = g.x.size(0), C = g.x.size(1);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      g.out.ptr<float>()[n * C + c] = static_cast<float>(static_cast<double>(g.x.ptr<float>()[n * C + c]) + g.bias.ptr<float>()[c]);
}

void bias_add_backward(const BiasAddArgs& g) {
  const int64_t N = g.dout.size(0), C = g.dout.size(1);
  for (int64_t c = 0; c < C; ++c) {
    double sum = g.dbias.ptr<float>()[c];
    for (int64_t n = 0; n < N; ++n) sum += g.dout.ptr<float>()[n * C + c];
    g.dbias.ptr<float>()[c] = static_cast<float>(sum);
  }
}

}  // namespace foundry::ref

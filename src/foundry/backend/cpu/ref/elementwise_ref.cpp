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

}  // namespace foundry::ref

#include "foundry/backend/cpu/ref/moe_rows_ref.h"

namespace foundry::ref {

void row_scale_forward(const RowScaleArgs& a) {
  const int64_t N = a.x.size(0), F = a.x.size(1);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < F; ++j)
      a.y.ptr<float>()[r * F + j] = static_cast<float>(static_cast<double>(a.x.ptr<float>()[r * F + j]) * a.s.ptr<float>()[r]);
}

void row_scale_backward(const RowScaleArgs& a) {
  const int64_t N = a.x.size(0), F = a.x.size(1);
  for (int64_t r = 0; r < N; ++r) {
    double acc = 0;
    for (int64_t j = 0; j < F; ++j) acc += static_cast<double>(a.dy.ptr<float>()[r * F + j]) * a.x.ptr<float>()[r * F + j];
    a.ds.ptr<float>()[r] = static_cast<float>(acc);
    for (int64_t j = 0; j < F; ++j)
      a.dx.ptr<float>()[r * F + j] = static_cast<float>(static_cast<double>(a.dy.ptr<float>()[r * F + j]) * a.s.ptr<float>()[r]);
  }
}

}  // namespace foundry::ref

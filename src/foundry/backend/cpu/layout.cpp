#include "foundry/backend/cpu/layout.h"

#include <cstring>

namespace foundry::cpu {

namespace {
// Copies each token's (NKV, G + 2, HD) block to or from the separate q, k, v rows.
template <bool kToSeparate>
void qkv_copy(const QkvSplitArgs& a) {
  const int64_t T = a.q.size(0), NH = a.num_heads, NKV = a.num_kv_heads, HD = a.q.size(2);
  const int64_t G = NH / NKV;
  const size_t head_bytes = static_cast<size_t>(HD) * sizeof(float);
  float* qkv = a.qkv.ptr<float>();
  float* q = a.q.ptr<float>();
  float* k = a.k.ptr<float>();
  float* v = a.v.ptr<float>();
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    float* row = qkv + t * NKV * (G + 2) * HD;
    for (int64_t g = 0; g < NKV; ++g) {
      float* group = row + g * (G + 2) * HD;
      float* qg = q + (t * NH + g * G) * HD;
      float* kg = k + (t * NKV + g) * HD;
      float* vg = v + (t * NKV + g) * HD;
      if constexpr (kToSeparate) {
        std::memcpy(qg, group, head_bytes * G);
        std::memcpy(kg, group + G * HD, head_bytes);
        std::memcpy(vg, group + (G + 1) * HD, head_bytes);
      } else {
        std::memcpy(group, qg, head_bytes * G);
        std::memcpy(group + G * HD, kg, head_bytes);
        std::memcpy(group + (G + 1) * HD, vg, head_bytes);
      }
    }
  }
}
}  // namespace

void qkv_split_forward(const QkvSplitArgs& args) { qkv_copy<true>(args); }
void qkv_split_backward(const QkvSplitArgs& args) { qkv_copy<false>(args); }

}  // namespace foundry::cpu

#include "foundry/backend/cpu/ref/layout_ref.h"

namespace foundry::ref {

namespace {
// Row of the fused projection that holds (head kind, head index, d): query head h sits in group
// h / G at slot h % G; the group's key and value heads follow its G query heads.
int64_t q_row(int64_t h, int64_t G, int64_t HD, int64_t d) { return ((h / G) * (G + 2) + h % G) * HD + d; }
int64_t k_row(int64_t g, int64_t G, int64_t HD, int64_t d) { return (g * (G + 2) + G) * HD + d; }
int64_t v_row(int64_t g, int64_t G, int64_t HD, int64_t d) { return (g * (G + 2) + G + 1) * HD + d; }
}  // namespace

void qkv_split_forward(const QkvSplitArgs& a) {
  const int64_t T = a.q.size(0), NH = a.num_heads, NKV = a.num_kv_heads, HD = a.q.size(2), G = NH / NKV;
  const int64_t W = (NH + 2 * NKV) * HD;
  const float* qkv = a.qkv.ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t d = 0; d < HD; ++d) {
      for (int64_t h = 0; h < NH; ++h) a.q.ptr<float>()[(t * NH + h) * HD + d] = qkv[t * W + q_row(h, G, HD, d)];
      for (int64_t g = 0; g < NKV; ++g) {
        a.k.ptr<float>()[(t * NKV + g) * HD + d] = qkv[t * W + k_row(g, G, HD, d)];
        a.v.ptr<float>()[(t * NKV + g) * HD + d] = qkv[t * W + v_row(g, G, HD, d)];
      }
    }
}

void qkv_split_backward(const QkvSplitArgs& a) {
  const int64_t T = a.q.size(0), NH = a.num_heads, NKV = a.num_kv_heads, HD = a.q.size(2), G = NH / NKV;
  const int64_t W = (NH + 2 * NKV) * HD;
  float* qkv = a.qkv.ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t d = 0; d < HD; ++d) {
      for (int64_t h = 0; h < NH; ++h) qkv[t * W + q_row(h, G, HD, d)] = a.q.ptr<float>()[(t * NH + h) * HD + d];
      for (int64_t g = 0; g < NKV; ++g) {
        qkv[t * W + k_row(g, G, HD, d)] = a.k.ptr<float>()[(t * NKV + g) * HD + d];
        qkv[t * W + v_row(g, G, HD, d)] = a.v.ptr<float>()[(t * NKV + g) * HD + d];
      }
    }
}

}  // namespace foundry::ref

#include "foundry/backend/cpu/ref/moe_permute_ref.h"

#include <algorithm>
#include <vector>

namespace foundry::ref {

namespace {

// (expert, token) of every one in the map, stably sorted by expert (Megatron: argsort of
// map^T.flatten(), stable).
std::vector<std::pair<int64_t, int64_t>> routed_pairs(const TensorView& map) {
  const int64_t T = map.size(0), E = map.size(1);
  const uint8_t* m = map.ptr<uint8_t>();
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e)
      if (m[t * E + e]) pairs.emplace_back(e, t);
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& p, const auto& q) { return p.first < q.first; });
  return pairs;
}

void scatter_sum(const float* src, const int32_t* row_token, int64_t N, int64_t T, int64_t H,
                 float* out) {
  std::vector<double> acc(static_cast<size_t>(T * H), 0.0);
  for (int64_t r = 0; r < N; ++r)
    if (row_token[r] >= 0)
      for (int64_t j = 0; j < H; ++j) acc[row_token[r] * H + j] += src[r * H + j];
  for (int64_t i = 0; i < T * H; ++i) out[i] = static_cast<float>(acc[i]);
}

}  // namespace

// The permuted rows as (expert, token) with token -1 for padding rows: the stably sorted pairs
// of each expert followed by its padding.
std::vector<std::pair<int64_t, int64_t>> padded_rows(const MoePermuteArgs& a) {
  const int64_t E = a.routing_map.size(1);
  const auto pairs = routed_pairs(a.routing_map);
  std::vector<std::pair<int64_t, int64_t>> rows;
  size_t i = 0;
  for (int64_t e = 0; e < E; ++e) {
    int64_t n = 0;
    for (; i < pairs.size() && pairs[i].first == e; ++i, ++n) rows.push_back(pairs[i]);
    int64_t seg = n;
    if (a.capacity > 0) seg = a.capacity;
    else if (a.pad_multiple > 1) seg = (n + a.pad_multiple - 1) / a.pad_multiple * a.pad_multiple;
    for (; n < seg; ++n) rows.emplace_back(e, -1);
  }
  return rows;
}

void moe_permute_forward(const MoePermuteArgs& a) {
  const int64_t E = a.routing_map.size(1), H = a.x.size(1);
  const auto rows = padded_rows(a);
  int64_t* tpe = a.tokens_per_expert.ptr<int64_t>();
  std::fill(tpe, tpe + E, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto [e, t] = rows[r];
    ++tpe[e];
    a.row_token.ptr<int32_t>()[r] = static_cast<int32_t>(t);
    for (int64_t j = 0; j < H; ++j)
      a.permuted.ptr<float>()[static_cast<int64_t>(r) * H + j] = t < 0 ? 0.f : a.x.ptr<float>()[t * H + j];
    if (a.probs.defined())
      a.permuted_probs.ptr<float>()[r] = t < 0 ? 0.f : a.probs.ptr<float>()[t * E + e];
  }
}

void moe_permute_backward(const MoePermuteArgs& a) {
  const int64_t T = a.routing_map.size(0), E = a.routing_map.size(1);
  const int64_t N = a.dpermuted.size(0), H = a.dpermuted.size(1);
  scatter_sum(a.dpermuted.ptr<float>(), a.row_token.ptr<int32_t>(), N, T, H, a.dx.ptr<float>());
  if (!a.dpermuted_probs.defined()) return;
  float* dprobs = a.dprobs.ptr<float>();
  std::fill(dprobs, dprobs + T * E, 0.f);
  const auto rows = padded_rows(a);
  for (size_t r = 0; r < rows.size(); ++r)
    if (rows[r].second >= 0)
      dprobs[rows[r].second * E + rows[r].first] = a.dpermuted_probs.ptr<float>()[r];
}

void moe_unpermute_forward(const MoeUnpermuteArgs& a) {
  scatter_sum(a.y.ptr<float>(), a.row_token.ptr<int32_t>(), a.y.size(0), a.out.size(0),
              a.out.size(1), a.out.ptr<float>());
}

void moe_unpermute_backward(const MoeUnpermuteArgs& a) {
  const int64_t N = a.dy.size(0), H = a.dy.size(1);
  const int32_t* rt = a.row_token.ptr<int32_t>();
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < H; ++j)
      a.dy.ptr<float>()[r * H + j] = rt[r] < 0 ? 0.f : a.dout.ptr<float>()[int64_t{rt[r]} * H + j];
}

}  // namespace foundry::ref

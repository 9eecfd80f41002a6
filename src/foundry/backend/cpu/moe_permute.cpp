// CPU MoE permute / unpermute. The permutation is built from the routing map one expert per
// OpenMP task (expert e owns rows [off_e, off_e + n_e), filled in token order: stable); rows are
// then copied in parallel. The combines (unpermute forward, permute backward) go through a
// token -> rows index (CSR, rows in increasing order) and run in parallel over tokens: each
// token's output row is owned by one thread and summed in row order, so results are
// bit-identical for any thread count and nothing races.
#include "foundry/backend/cpu/moe_permute.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace foundry::cpu {
namespace {

constexpr int64_t kParallelMin = int64_t{1} << 14;  // elements; below this threads cost more
// The routing-map scan that builds the permutation reads one byte per (token, expert): at
// T * E = 2048 x 8 it takes microseconds, less than waking the team (and on a loaded machine a
// parallel region can cost a scheduler time slice), so it runs in parallel only when huge.
constexpr int64_t kParallelScanMin = int64_t{1} << 22;  // map entries

// Per-expert counts of a (T, E) map; every entry must be 0 or 1.
std::vector<int64_t> expert_counts(std::string_view op, const TensorView& map) {
  const int64_t T = map.size(0), E = map.size(1);
  const uint8_t* m = map.ptr<uint8_t>();
  std::vector<int64_t> counts(static_cast<size_t>(E), 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      const uint8_t v = m[t * E + e];
      FOUNDRY_CHECK(v <= 1, "{}: routing_map[{}, {}] is {}, expected 0 or 1", op, t, e, int{v});
      counts[static_cast<size_t>(e)] += v;
    }
  return counts;
}

// Rows of each expert's segment: its token count, padded.
std::vector<int64_t> segment_sizes(std::string_view op, const std::vector<int64_t>& counts,
                                   int64_t pad_multiple, int64_t capacity) {
  std::vector<int64_t> seg(counts);
  for (size_t e = 0; e < counts.size(); ++e) {
    if (capacity > 0) {
      FOUNDRY_CHECK(counts[e] <= capacity, "{}: expert {} has {} tokens, more than capacity {}", op,
                    e, counts[e], capacity);
      seg[e] = capacity;
    } else if (pad_multiple > 1) {
      seg[e] = (counts[e] + pad_multiple - 1) / pad_multiple * pad_multiple;
    }
  }
  return seg;
}

std::vector<int64_t> offsets_of(const std::vector<int64_t>& seg) {
  std::vector<int64_t> off(seg.size() + 1, 0);
  for (size_t e = 0; e < seg.size(); ++e) off[e + 1] = off[e] + seg[e];
  return off;
}

// out[t] = sum of src[r] over rows r with row_token[r] = t (in increasing r); -1 rows skipped.
void combine(std::string_view op, const float* src, const int32_t* row_token, int64_t N, int64_t T,
             int64_t H, float* out) {
  std::vector<int64_t> start(static_cast<size_t>(T + 1), 0);
  for (int64_t r = 0; r < N; ++r) {
    const int32_t t = row_token[r];
    FOUNDRY_CHECK(t >= -1 && t < T, "{}: row_token[{}] = {} is out of range [0, {}) (or -1)", op, r,
                  t, T);
    if (t >= 0) ++start[static_cast<size_t>(t) + 1];
  }
  for (int64_t t = 0; t < T; ++t) start[t + 1] += start[t];
  std::vector<int64_t> rows(static_cast<size_t>(start[T]));
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t r = 0; r < N; ++r)
      if (row_token[r] >= 0) rows[static_cast<size_t>(fill[row_token[r]]++)] = r;
  }
#pragma omp parallel for schedule(static) if (T * H >= kParallelMin)
  for (int64_t t = 0; t < T; ++t) {
    float* dst = out + t * H;
    const int64_t b = start[t], e = start[t + 1];
    if (b == e) {
      std::fill(dst, dst + H, 0.f);
      continue;
    }
    std::memcpy(dst, src + rows[b] * H, static_cast<size_t>(H) * sizeof(float));
    for (int64_t i = b + 1; i < e; ++i) {
      const float* s = src + rows[i] * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dst[j] += s[j];
    }
  }
}

// dst[r] = src[row_token[r]] (zeros for -1 rows).
void gather(std::string_view op, const float* src, const int32_t* row_token, int64_t N, int64_t T,
            int64_t H, float* dst) {
  int64_t bad = N;
  for (int64_t r = 0; r < N; ++r)
    if (row_token[r] < -1 || row_token[r] >= T) bad = std::min(bad, r);
  FOUNDRY_CHECK(bad == N, "{}: row_token[{}] = {} is out of range [0, {}) (or -1)", op, bad,
                bad < N ? row_token[bad] : 0, T);
#pragma omp parallel for schedule(static) if (N * H >= kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    float* d = dst + r * H;
    if (row_token[r] < 0) std::fill(d, d + H, 0.f);
    else std::memcpy(d, src + int64_t{row_token[r]} * H, static_cast<size_t>(H) * sizeof(float));
  }
}

}  // namespace

int64_t moe_permute_num_rows(const TensorView& routing_map, int64_t pad_multiple, int64_t capacity) {
  constexpr std::string_view op = "moe_permute_num_rows";
  int64_t n = 0;
  for (int64_t c : segment_sizes(op, expert_counts(op, routing_map), pad_multiple, capacity)) n += c;
  return n;
}

void moe_permute_forward(const MoePermuteArgs& a) {
  constexpr std::string_view op = "moe_permute_forward";
  const int64_t T = a.routing_map.size(0), E = a.routing_map.size(1), H = a.x.size(1);
  const int64_t N = a.permuted.size(0);
  const std::vector<int64_t> counts = expert_counts(op, a.routing_map);
  const std::vector<int64_t> seg = segment_sizes(op, counts, a.pad_multiple, a.capacity);
  const std::vector<int64_t> off = offsets_of(seg);
  FOUNDRY_CHECK(off[E] == N,
                "{}: routing_map {} needs {} rows (padding: multiple {}, capacity {}) but "
                "permuted {} has {} rows", op, a.routing_map.shape.str(), off[E], a.pad_multiple,
                a.capacity, a.permuted.shape.str(), N);
  const uint8_t* m = a.routing_map.ptr<uint8_t>();
  int32_t* row_token = a.row_token.ptr<int32_t>();
  int64_t* tpe = a.tokens_per_expert.ptr<int64_t>();
  const float* probs = a.probs.defined() ? a.probs.ptr<float>() : nullptr;
  float* pprobs = probs ? a.permuted_probs.ptr<float>() : nullptr;
#pragma omp parallel for schedule(dynamic, 1) if (T * E >= kParallelScanMin)
  for (int64_t e = 0; e < E; ++e) {
    int64_t r = off[e];
    for (int64_t t = 0; t < T; ++t)
      if (m[t * E + e]) {
        row_token[r] = static_cast<int32_t>(t);
        if (probs) pprobs[r] = probs[t * E + e];
        ++r;
      }
    for (; r < off[e + 1]; ++r) {  // padding rows
      row_token[r] = -1;
      if (probs) pprobs[r] = 0.f;
    }
    tpe[e] = seg[static_cast<size_t>(e)];
  }
  const float* x = a.x.ptr<float>();
  float* out = a.permuted.ptr<float>();
#pragma omp parallel for schedule(static) if (N * H >= kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    if (row_token[r] < 0) std::fill(out + r * H, out + (r + 1) * H, 0.f);
    else std::memcpy(out + r * H, x + int64_t{row_token[r]} * H, static_cast<size_t>(H) * sizeof(float));
  }
}

void moe_permute_backward(const MoePermuteArgs& a) {
  constexpr std::string_view op = "moe_permute_backward";
  const int64_t T = a.routing_map.size(0), E = a.routing_map.size(1);
  const int64_t N = a.dpermuted.size(0), H = a.dpermuted.size(1);
  const std::vector<int64_t> counts = expert_counts(op, a.routing_map);
  const std::vector<int64_t> off =
      offsets_of(segment_sizes(op, counts, a.pad_multiple, a.capacity));
  FOUNDRY_CHECK(off[E] == N,
                "{}: routing_map {} needs {} rows (padding: multiple {}, capacity {}) but "
                "dpermuted {} has {} rows", op, a.routing_map.shape.str(), off[E], a.pad_multiple,
                a.capacity, a.dpermuted.shape.str(), N);
  const int32_t* row_token = a.row_token.ptr<int32_t>();
  combine(op, a.dpermuted.ptr<float>(), row_token, N, T, H, a.dx.ptr<float>());
  if (!a.dpermuted_probs.defined()) return;
  const float* dpp = a.dpermuted_probs.ptr<float>();
  float* dprobs = a.dprobs.ptr<float>();
  std::fill(dprobs, dprobs + T * E, 0.f);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = off[e]; r < off[e] + counts[static_cast<size_t>(e)]; ++r) {
      const int32_t t = row_token[r];
      FOUNDRY_CHECK(t >= 0 && t < T, "{}: row_token[{}] = {} is out of range [0, {})", op, r, t, T);
      dprobs[int64_t{t} * E + e] = dpp[r];
    }
}

void moe_unpermute_forward(const MoeUnpermuteArgs& a) {
  combine("moe_unpermute_forward", a.y.ptr<float>(), a.row_token.ptr<int32_t>(), a.y.size(0),
          a.out.size(0), a.out.size(1), a.out.ptr<float>());
}

void moe_unpermute_backward(const MoeUnpermuteArgs& a) {
  gather("moe_unpermute_backward", a.dout.ptr<float>(), a.row_token.ptr<int32_t>(), a.dy.size(0),
         a.dout.size(0), a.dout.size(1), a.dy.ptr<float>());
}

}  // namespace foundry::cpu

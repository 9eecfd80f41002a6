#include "foundry/moe/expert_tensor_parallel.h"

#include <cstring>

namespace foundry {

namespace {

// Copies the (Q x E_l) chunks of rows of width W between etp-rank-major order (q, l) and
// local-expert-major order (l, q); counts[q * E_l + l] rows per chunk.
void reorder_chunks(const float* src, float* dst, const std::vector<int64_t>& counts, int64_t Q, int64_t El,
                    int64_t W, bool to_expert_major) {
  std::vector<int64_t> rank_major(static_cast<size_t>(Q * El));  // row offset of chunk (q, l) in (q, l) order
  int64_t o = 0;
  for (int64_t i = 0; i < Q * El; ++i) rank_major[static_cast<size_t>(i)] = o, o += counts[static_cast<size_t>(i)];
  o = 0;
  for (int64_t l = 0; l < El; ++l)
    for (int64_t q = 0; q < Q; ++q) {
      const size_t c = static_cast<size_t>(q * El + l);
      const int64_t n = counts[c], rm = rank_major[c];
      const int64_t from = to_expert_major ? rm : o, to = to_expert_major ? o : rm;
      if (n > 0) std::memcpy(dst + to * W, src + from * W, static_cast<size_t>(n * W) * sizeof(float));
      o += n;
    }
}

// Elements of each etp rank's rows (N_q W): the all_gather_v / reduce_scatter_v counts.
std::vector<int64_t> rank_numel(const std::vector<int64_t>& counts, int64_t Q, int64_t El, int64_t W) {
  std::vector<int64_t> numel(static_cast<size_t>(Q), 0);
  for (int64_t q = 0; q < Q; ++q)
    for (int64_t l = 0; l < El; ++l) numel[static_cast<size_t>(q)] += counts[static_cast<size_t>(q * El + l)] * W;
  return numel;
}

}  // namespace

ExpertTensorParallel::ExpertTensorParallel(Communicator& etp, int64_t num_local_experts)
    : etp_(etp), num_local_experts_(num_local_experts) {
  FOUNDRY_CHECK(num_local_experts > 0, "ExpertTensorParallel: {} local experts on the '{}' group",
                num_local_experts, etp.name());
}

EtpHandle ExpertTensorParallel::plan(Context& ctx, const Tensor& tokens_per_expert) {
  const int64_t Q = etp_.size(), El = num_local_experts_;
  FOUNDRY_CHECK(tokens_per_expert.ndim() == 1 && tokens_per_expert.size(0) == El &&
                    tokens_per_expert.dtype() == DType::i64,
                "ExpertTensorParallel '{}': tokens_per_expert {} (expected i64 ({}))", etp_.name(),
                tokens_per_expert.str(), El);
  Tensor all = Tensor::empty({Q * El}, DType::i64, ctx.device);
  etp_.all_gather(tokens_per_expert, all);
  EtpHandle h;
  h.counts.assign(all.ptr<int64_t>(), all.ptr<int64_t>() + Q * El);
  h.tokens_per_expert = Tensor::zeros({El}, DType::i64, ctx.device);
  int64_t* tpe = h.tokens_per_expert.ptr<int64_t>();
  for (int64_t q = 0; q < Q; ++q)
    for (int64_t l = 0; l < El; ++l) {
      const int64_t n = h.counts[static_cast<size_t>(q * El + l)];
      tpe[l] += n;
      h.gathered_rows += n;
      if (q == etp_.rank()) h.local_rows += n;
    }
  return h;
}

Tensor ExpertTensorParallel::gather(Context& ctx, const Tensor& rows, const EtpHandle& h) {
  const int64_t Q = etp_.size(), El = num_local_experts_;
  FOUNDRY_CHECK(rows.ndim() == 2 && rows.size(0) == h.local_rows && rows.dtype() == DType::f32,
                "ExpertTensorParallel::gather '{}': rows {} (expected f32 ({}, W))", etp_.name(), rows.str(),
                h.local_rows);
  const int64_t W = rows.size(1);
  const std::vector<int64_t> numel = rank_numel(h.counts, Q, El, W);
  Tensor rank_major = Tensor::empty({h.gathered_rows, W}, DType::f32, ctx.device);
  etp_.all_gather_v(rows, rank_major, numel);
  Tensor out = Tensor::empty({h.gathered_rows, W}, DType::f32, ctx.device);
  reorder_chunks(rank_major.ptr<float>(), out.ptr<float>(), h.counts, Q, El, W, true);
  return out;
}

Tensor ExpertTensorParallel::scatter(Context& ctx, const Tensor& rows, const EtpHandle& h) {
  const int64_t Q = etp_.size(), El = num_local_experts_;
  FOUNDRY_CHECK(rows.ndim() == 2 && rows.size(0) == h.gathered_rows && rows.dtype() == DType::f32,
                "ExpertTensorParallel::scatter '{}': rows {} (expected f32 ({}, W))", etp_.name(), rows.str(),
                h.gathered_rows);
  const int64_t W = rows.size(1);
  Tensor rank_major = Tensor::empty({h.gathered_rows, W}, DType::f32, ctx.device);
  reorder_chunks(rows.ptr<float>(), rank_major.ptr<float>(), h.counts, Q, El, W, false);
  // Rank q's N_q rows are contiguous in (q, l) order: reduce-scatter with per-rank counts N_q W.
  const std::vector<int64_t> numel = rank_numel(h.counts, Q, El, W);
  Tensor out = Tensor::empty({h.local_rows, W}, DType::f32, ctx.device);
  etp_.reduce_scatter_v(rank_major, out, numel);
  return out;
}

}  // namespace foundry

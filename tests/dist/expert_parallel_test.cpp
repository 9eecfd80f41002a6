// Expert parallelism (moe/alltoall_dispatcher.h, moe/allgather_dispatcher.h, MoELayer::Config::ep;
// every test runs with both dispatchers) over the MPI world with
// EP = world size (2, 4, 8 ranks) and 8 experts. Every rank regenerates every rank's tokens, so the
// expectations are computed locally:
//  - the dispatcher delivers to each local expert exactly the rows of all ranks' tokens routed to
//    it, in (source rank, token) order; dispatch then combine of identity experts (y = p x) gives
//    sum_k p_k x per token; dispatch / combine / probs are adjoint to their backwards;
//  - the MoE layer with EP equals the one-process layer with all 8 experts (same seed, the EP layer
//    holding its rows of the expert weights): forward output, dx and router gradient of the rank's
//    own tokens (fp32, rtol 1e-5 / atol 1e-6: only GEMM blocking may differ), and each local
//    expert's weight gradients equal the one-process gradients summed over all ranks' tokens
//    (close in norm 1e-5: the summation order differs).
// Tokens per rank differ (2 + rank) and the routing is uneven (experts with no tokens from some
// ranks, tokens with fewer than k experts in the dispatcher test).
#include <gtest/gtest.h>

#include <cmath>

#include "foundry/comm/communicator.h"
#include "foundry/moe/allgather_dispatcher.h"
#include "foundry/moe/alltoall_dispatcher.h"
#include "foundry/moe/moe_layer.h"
#include "testing.h"

namespace foundry {
namespace {

using testing::randn;
constexpr int64_t kE = 8, kH = 16;

int64_t tokens_of(int r) { return 2 + r; }

Tensor x_of(int r) { return randn({tokens_of(r), kH}, 100 + static_cast<uint64_t>(r)); }

// An uneven routing map: 0 to 3 experts per token; several (rank, expert) pairs get no tokens.
Tensor map_of(int r) {
  const int64_t T = tokens_of(r);
  Tensor m = Tensor::zeros({T, kE}, DType::u8);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < kE; ++e) m.ptr<uint8_t>()[t * kE + e] = (r * 7 + t * 3 + e * 5) % 3 == 0 && e != r % kE;
  return m;
}

Tensor probs_of(int r) { return testing::randu({tokens_of(r), kE}, 300 + static_cast<uint64_t>(r), 0.1f, 1.f); }

double global_dot(Communicator& w, const Tensor& a, const Tensor& b) { return w.all_reduce_sum(testing::dot(a, b)); }

double global_norm(Communicator& w, const Tensor& a) { return std::sqrt(global_dot(w, a, a)); }

std::unique_ptr<TokenDispatcher> make(const std::string& type, Communicator& w) {
  if (type == "allgather") return std::make_unique<AllGatherTokenDispatcher>(w, kE);
  return std::make_unique<AllToAllTokenDispatcher>(w, kE);
}

class ExpertParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(ExpertParallel, DispatchDeliversEachExpertsRowsAndCombineSumsThem) {
  Communicator& w = world();
  const int P = w.size(), rank = w.rank();
  ASSERT_EQ(kE % P, 0);
  const std::unique_ptr<TokenDispatcher> owned = make(GetParam(), w);
  TokenDispatcher& disp = *owned;
  const int64_t El = kE / P, begin = rank * El, T = tokens_of(rank);
  Context ctx;
  const Tensor x = x_of(rank), map = map_of(rank), probs = probs_of(rank);
  const Dispatched d = disp.dispatch(ctx, x, map, probs);
  // Expected rows: for each local expert, each source rank's routed tokens in token order.
  std::vector<float> rows, row_probs;
  std::vector<int64_t> counts(static_cast<size_t>(El), 0);
  for (int64_t l = 0; l < El; ++l)
    for (int s = 0; s < P; ++s) {
      const Tensor xs = x_of(s), ms = map_of(s), ps = probs_of(s);
      for (int64_t t = 0; t < tokens_of(s); ++t) {
        if (!ms.ptr<uint8_t>()[t * kE + begin + l]) continue;
        ++counts[static_cast<size_t>(l)];
        rows.insert(rows.end(), xs.ptr<float>() + t * kH, xs.ptr<float>() + (t + 1) * kH);
        row_probs.push_back(ps.ptr<float>()[t * kE + begin + l]);
      }
    }
  const int64_t N = static_cast<int64_t>(row_probs.size());
  ASSERT_EQ(d.rows.size(0), N);
  EXPECT_TRUE(testing::allclose(d.rows, Tensor::from<float>({N, kH}, rows), 0, 0));
  EXPECT_TRUE(testing::allclose(d.probs, Tensor::from<float>({N}, row_probs), 0, 0));
  for (int64_t l = 0; l < El; ++l) EXPECT_EQ(d.handle.tokens_per_expert.ptr<int64_t>()[l], counts[l]) << l;
  // Uneven: some expert gets nothing from some rank (checked over the group).
  int64_t zero_chunks = 0;
  for (int64_t e = 0; e < kE; ++e) {
    bool any = false;
    for (int64_t t = 0; t < T; ++t) any |= map.ptr<uint8_t>()[t * kE + e] != 0;
    zero_chunks += !any;
  }
  EXPECT_GT(w.all_reduce_sum(static_cast<double>(zero_chunks)), 0);

  // Identity experts y = p x: combine gives sum_e map[t, e] p[t, e] x[t].
  Tensor y = Tensor::empty({N, kH});
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < kH; ++j) y.ptr<float>()[r * kH + j] = d.probs.ptr<float>()[r] * d.rows.ptr<float>()[r * kH + j];
  const Tensor out = disp.combine(ctx, y, d.handle);
  Tensor expect = Tensor::zeros({T, kH});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < kE; ++e) {
      if (!map.ptr<uint8_t>()[t * kE + e]) continue;
      for (int64_t j = 0; j < kH; ++j)
        expect.ptr<float>()[t * kH + j] += probs.ptr<float>()[t * kE + e] * x.ptr<float>()[t * kH + j];
    }
  EXPECT_TRUE(testing::allclose(out, expect, 1e-6, 1e-6));
}

// <combine(a), b> = <a, combine_backward(b)>, <dispatch(x), c> = <x, dispatch_backward(c)> and
// <dispatched probs, c> = <probs, probs_backward(c)>, each summed over the group (fp64 dots of
// fp32 results; the backwards sum a token's copies in fp32, so the two sides differ by rounding
// only: within 1e-6 |u| |v|, the Cauchy-Schwarz scale of the dot, since the dots can cancel).
TEST_P(ExpertParallel, DispatchAndCombineAreAdjointToTheirBackwards) {
  Communicator& w = world();
  const int rank = w.rank();
  const std::unique_ptr<TokenDispatcher> owned = make(GetParam(), w);
  TokenDispatcher& disp = *owned;
  Context ctx;
  const int64_t T = tokens_of(rank);
  const Tensor x = x_of(rank), probs = probs_of(rank);
  const Dispatched d = disp.dispatch(ctx, x, map_of(rank), probs);
  const int64_t N = d.rows.size(0);
  const Tensor a = randn({N, kH}, 400 + rank), b = randn({T, kH}, 500 + rank), c = randn({N}, 600 + rank);
  const double lhs1 = global_dot(w, disp.combine(ctx, a, d.handle), b);
  const double rhs1 = global_dot(w, a, disp.combine_backward(ctx, b, d.handle));
  EXPECT_NEAR(lhs1, rhs1, 1e-6 * global_norm(w, a) * global_norm(w, b));
  const double lhs2 = global_dot(w, d.rows, a);
  const double rhs2 = global_dot(w, x, disp.dispatch_backward(ctx, a, d.handle));
  EXPECT_NEAR(lhs2, rhs2, 1e-6 * global_norm(w, d.rows) * global_norm(w, a));
  const double lhs3 = global_dot(w, d.probs, c);
  const double rhs3 = global_dot(w, probs, disp.probs_backward(ctx, c, d.handle));
  EXPECT_NEAR(lhs3, rhs3, 1e-6 * global_norm(w, d.probs) * global_norm(w, c));
}

MoELayer::Config layer_config(Communicator* ep, const std::string& type = "alltoall") {
  return {.router = {.hidden = kH, .num_experts = kE, .topk = 2, .load_balancing_type = {"aux_loss"},
                     .aux_loss_coeff = {1e-2f}, .z_loss_coeff = 1e-3f},
          .moe_ffn_hidden_size = 12,
          .shared_expert_ffn = 8,
          .init_std = 0.3f,
          .output_init_std = 0.3f,
          .ep = ep,
          .token_dispatcher_type = type};
}

struct Layer {
  MoELayer moe;
  ParamTable table;
  explicit Layer(Communicator* ep, const std::string& type = "alltoall") : moe(layer_config(ep, type)) {
    moe.register_params(table, "mlp");
    table.allocate(3);
  }
  // Runs forward and backward of loss = <y, dy> + aux + z on x; returns y and dx.
  std::pair<Tensor, Tensor> run(const Tensor& x, const Tensor& dy) {
    Context ctx;
    MoELayer::Saved s;
    Tensor y = moe.forward(ctx, x, x.size(0), s);
    Tensor dx = moe.backward(ctx, dy, s, 1.f);
    return {y, dx};
  }
};

TEST_P(ExpertParallel, MoELayerEqualsTheOneProcessLayer) {
  Communicator& w = world();
  const int P = w.size(), rank = w.rank();
  Layer ref_own(nullptr), ref_all(nullptr), ep(&w, GetParam());
  const int64_t El = kE / P, begin = ep.moe.local_expert_begin();
  ASSERT_EQ(ep.moe.num_local_experts(), El);
  ASSERT_EQ(ep.table.size(), ref_own.table.size());
  // The EP layer's parameters from the reference: its rows of the expert weights, the rest whole.
  for (int i = 0; i < ep.table.size(); ++i) {
    const Tensor& src = ref_own.table.param(i).value;
    Tensor& dst = ep.table.param(i).value;
    ASSERT_EQ(ep.table.spec(i).name, ref_own.table.spec(i).name);
    if (ep.table.spec(i).expert_local) {
      ASSERT_EQ(dst.size(0), El) << ep.table.spec(i).name;
      const int64_t per = dst.numel() / El;
      std::copy_n(src.ptr<float>() + begin * per, dst.numel(), dst.ptr<float>());
    } else {
      std::copy_n(src.ptr<float>(), dst.numel(), dst.ptr<float>());
    }
  }
  const Tensor x = x_of(rank), dy = randn({tokens_of(rank), kH}, 700 + rank);
  const auto [y_ep, dx_ep] = ep.run(x, dy);
  const auto [y_ref, dx_ref] = ref_own.run(x, dy);
  EXPECT_TRUE(testing::allclose(y_ep, y_ref, 1e-5, 1e-6));
  EXPECT_TRUE(testing::allclose(dx_ep, dx_ref, 1e-5, 1e-6));
  // Non-expert gradients come from this rank's tokens only (no reduction yet: that is the DP step).
  for (int i = 0; i < ep.table.size(); ++i)
    if (!ep.table.spec(i).expert_local)
      EXPECT_TRUE(testing::allclose(ep.table.param(i).grad, ref_own.table.param(i).grad, 1e-5, 1e-6))
          << ep.table.spec(i).name;
  // Expert gradients: the tokens of every rank routed to the local experts.
  int64_t zero_experts = 0;
  for (int s = 0; s < P; ++s) {
    ref_all.run(x_of(s), randn({tokens_of(s), kH}, 700 + s));
  }
  {  // uneven routing: this rank's tokens leave some experts empty (2 + rank tokens, k = 2)
    Context ctx;
    MoELayer::Saved s;
    ref_own.moe.forward(ctx, x, x.size(0), s);
    for (int64_t e = 0; e < kE; ++e) zero_experts += s.routing.tokens_per_expert.ptr<int64_t>()[e] == 0;
  }
  EXPECT_GT(w.all_reduce_sum(static_cast<double>(zero_experts)), 0);
  for (int i = 0; i < ep.table.size(); ++i) {
    if (!ep.table.spec(i).expert_local) continue;
    const Tensor& g = ep.table.param(i).grad;
    const int64_t per = g.numel() / El;
    for (int64_t l = 0; l < El; ++l) {
      const Tensor mine = g.slice(l, l + 1);
      Tensor expect = Tensor::empty(mine.shape());
      std::copy_n(ref_all.table.param(i).grad.ptr<float>() + (begin + l) * per, per, expect.ptr<float>());
      EXPECT_TRUE(testing::close_in_norm(mine, expect, 1e-5)) << ep.table.spec(i).name << " expert " << begin + l;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dispatchers, ExpertParallel, ::testing::Values("alltoall", "allgather"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace foundry

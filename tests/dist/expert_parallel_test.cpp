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
//  - ExpertTensorParallel alone: gather orders the group's rows by local expert, scatter is its adjoint;
//  - expert tensor parallelism (ETP2 with ep = self; EP2 x ETP2 on blocks of 4 ranks; both
//    dispatchers): the sharded layer starts equal to one process and equals it (output, dx, router
//    and shared-expert gradients; each expert weight gradient shard = the shard of the one-process
//    gradient over all the block's tokens);
//  - the router under sequence parallelism (tp_cp / tp_dp_cp pairs): the sums over the pair of the
//    aux losses, z loss and router weight gradient equal one process on all tokens.
// Tokens per rank differ (2 + rank) and the routing is uneven (experts with no tokens from some
// ranks, tokens with fewer than k experts in the dispatcher test).
#include <gtest/gtest.h>

#include <cmath>

#include "foundry/comm/communicator.h"
#include "foundry/moe/allgather_dispatcher.h"
#include "foundry/moe/alltoall_dispatcher.h"
#include "foundry/moe/expert_tensor_parallel.h"
#include "foundry/moe/moe_layer.h"
#include "foundry/moe/router.h"
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

MoELayer::Config layer_config(Communicator* ep, const std::string& type = "alltoall", Communicator* etp = nullptr) {
  return {.router = {.hidden = kH, .num_experts = kE, .topk = 2, .load_balancing_type = {"aux_loss"},
                     .aux_loss_coeff = {1e-2f}, .z_loss_coeff = 1e-3f},
          .moe_ffn_hidden_size = 12,
          .shared_expert_ffn = 8,
          .init_std = 0.3f,
          .output_init_std = 0.3f,
          .ep = ep,
          .etp = etp,
          .token_dispatcher_type = type};
}

struct Layer {
  MoELayer moe;
  ParamTable table;
  explicit Layer(Communicator* ep, const std::string& type = "alltoall", Communicator* etp = nullptr)
      : moe(layer_config(ep, type, etp)) {
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
  for (int i = 0; i < ep.table.size(); ++i) {
    if (!ep.table.spec(i).expert_local) {
      EXPECT_TRUE(testing::allclose(ep.table.param(i).grad, ref_own.table.param(i).grad, 1e-5, 1e-6))
          << ep.table.spec(i).name;
    }
  }
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

// Expert tensor parallelism: blocks of EP x ETP consecutive ranks (etp innermost, as the expert
// rank generator's tp-ep order); etp rank q = i % Q, ep rank = i / Q for i = rank % (EP ETP). Each
// rank routes its own tokens; the layer equals one process: y, dx and the router / shared-expert
// gradients on the rank's tokens equal the one-process layer on them, and the expert weight
// gradients (this rank's shard) equal the shard of the one-process gradients over all the block's
// tokens. The sharded layer starts equal to one process (its shards of the same init).
void check_etp_layer(const std::string& type, int ep_size, int etp_size) {
  Communicator& w = world();
  const int block = ep_size * etp_size, rank = w.rank();
  if (w.size() % block != 0) {
    GTEST_SKIP() << "world " << w.size() << " is not a multiple of EP x ETP = " << block;
  }
  const int first = rank / block * block, i = rank % block, q = i % etp_size;
  std::unique_ptr<Communicator> etp = w.split(rank / etp_size, rank, "etp");
  std::unique_ptr<Communicator> ep =
      ep_size > 1 ? w.split(rank / block * etp_size + q, rank, "ep") : make_self_communicator("ep");
  ASSERT_EQ(etp->size(), etp_size);
  ASSERT_EQ(etp->rank(), q);
  ASSERT_EQ(ep->rank(), i / etp_size);
  Layer ref_own(nullptr), ref_all(nullptr), par(ep.get(), type, etp.get());
  ASSERT_EQ(par.table.size(), ref_own.table.size());
  for (int k = 0; k < par.table.size(); ++k) {  // same initial values: the shards of one process's
    const ParamSpec& spec = par.table.spec(k);
    ASSERT_EQ(spec.name, ref_own.table.spec(k).name);
    ASSERT_EQ(spec.sharded(), spec.expert_local) << spec.name;
    Tensor expect = Tensor::empty(spec.shape);
    copy_full_to_shard(spec, ref_own.table.param(k).value, expect);
    EXPECT_TRUE(testing::allclose(par.table.param(k).value, expect, 0, 0)) << spec.name;
  }
  const Tensor x = x_of(rank), dy = randn({tokens_of(rank), kH}, 700 + rank);
  const auto [y_par, dx_par] = par.run(x, dy);
  const auto [y_ref, dx_ref] = ref_own.run(x, dy);
  EXPECT_TRUE(testing::allclose(y_par, y_ref, 1e-5, 1e-6));
  EXPECT_TRUE(testing::allclose(dx_par, dx_ref, 1e-5, 1e-6));
  for (int r = first; r < first + block; ++r) ref_all.run(x_of(r), randn({tokens_of(r), kH}, 700 + r));
  for (int k = 0; k < par.table.size(); ++k) {
    const ParamSpec& spec = par.table.spec(k);
    if (!spec.expert_local) {  // router and shared experts: this rank's tokens
      EXPECT_TRUE(testing::allclose(par.table.param(k).grad, ref_own.table.param(k).grad, 1e-5, 1e-6)) << spec.name;
      continue;
    }
    Tensor expect = Tensor::empty(spec.shape);
    copy_full_to_shard(spec, ref_all.table.param(k).grad, expect);
    EXPECT_TRUE(testing::close_in_norm(par.table.param(k).grad, expect, 1e-5)) << spec.name;
  }
}

// ExpertTensorParallel alone over the whole world (Q = world size, 3 local experts, rank r holding
// (r + l) % 3 rows for local expert l, so some chunks are empty and N_q differ): gather delivers
// each local expert's rows of every rank in (rank, row) order, and <gather(a), b> = <a, scatter(b)>
// summed over the group (scatter sums the ranks' partial rows).
TEST(ExpertTensorParallelRows, GatherOrdersByLocalExpertAndScatterIsItsAdjoint) {
  Communicator& w = world();
  const int Q = w.size(), q = w.rank();
  constexpr int64_t El = 3, W = 4;
  auto counts_of = [](int r) {
    std::vector<int64_t> c(El);
    for (int64_t l = 0; l < El; ++l) c[static_cast<size_t>(l)] = (r + l) % 3;
    return c;
  };
  auto rows_of = [&](int r) {
    const std::vector<int64_t> c = counts_of(r);
    return randn({c[0] + c[1] + c[2], W}, 1000 + static_cast<uint64_t>(r));
  };
  ExpertTensorParallel etp(w, El);
  Context ctx;
  const std::vector<int64_t> mine = counts_of(q);
  const EtpHandle h = etp.plan(ctx, Tensor::from<int64_t>({El}, mine));
  const Tensor a = rows_of(q);
  const Tensor g = etp.gather(ctx, a, h);
  std::vector<float> expect;
  for (int64_t l = 0; l < El; ++l)
    for (int r = 0; r < Q; ++r) {
      const std::vector<int64_t> c = counts_of(r);
      const Tensor x = rows_of(r);
      int64_t begin = 0;
      for (int64_t j = 0; j < l; ++j) begin += c[static_cast<size_t>(j)];
      expect.insert(expect.end(), x.ptr<float>() + begin * W, x.ptr<float>() + (begin + c[static_cast<size_t>(l)]) * W);
    }
  const int64_t N = static_cast<int64_t>(expect.size()) / W;
  ASSERT_EQ(g.size(0), N);
  EXPECT_TRUE(testing::allclose(g, Tensor::from<float>({N, W}, expect), 0, 0));
  for (int64_t l = 0; l < El; ++l) {
    int64_t n = 0;
    for (int r = 0; r < Q; ++r) n += counts_of(r)[static_cast<size_t>(l)];
    EXPECT_EQ(h.tokens_per_expert.ptr<int64_t>()[l], n) << l;
  }
  const Tensor b = randn({N, W}, 1100 + static_cast<uint64_t>(q));  // a different partial per rank
  const Tensor sb = etp.scatter(ctx, b, h);
  ASSERT_EQ(sb.size(0), a.size(0));
  const double lhs = global_dot(w, g, b), rhs = global_dot(w, a, sb);
  EXPECT_NEAR(lhs, rhs, 1e-6 * global_norm(w, g) * global_norm(w, b));
}

TEST_P(ExpertParallel, Etp2LayerEqualsTheOneProcessLayer) { check_etp_layer(GetParam(), 1, 2); }

TEST_P(ExpertParallel, Ep2Etp2LayerEqualsTheOneProcessLayer) { check_etp_layer(GetParam(), 2, 2); }

INSTANTIATE_TEST_SUITE_P(Dispatchers, ExpertParallel, ::testing::Values("alltoall", "allgather"),
                         [](const auto& info) { return info.param; });

// The router under sequence parallelism: pairs of ranks (tp_cp = tp_dp_cp = the pair) each route
// their half of 8 tokens, two micro-batches (global_aux_loss keeps running counts). The sums over
// the pair of the aux loss (aux_loss + global_aux_loss), the z loss and the router weight gradient
// equal one process routing all 8 tokens; each rank's dx equals the one process's rows.
TEST(RouterSequenceParallel, GroupLossesSumToTheOneProcessLosses) {
  Communicator& w = world();
  if (w.size() % 2 != 0) {
    GTEST_SKIP() << "needs an even world";
  }
  std::unique_ptr<Communicator> tp = w.split(w.rank() / 2, w.rank(), "tp_cp");
  const int q = tp->rank();
  constexpr int64_t T = 8, Tl = T / 2;
  RouterConfig cfg{.hidden = kH, .num_experts = kE, .topk = 2, .load_balancing_type = {"aux_loss", "global_aux_loss"},
                   .aux_loss_coeff = {1e-2f, 3e-3f}, .z_loss_coeff = 1e-3f, .init = Init::normal(0.5f)};
  Router ref(cfg);
  cfg.tp_cp = tp.get();
  cfg.tp_dp_cp = tp.get();
  Router sp(cfg);
  ParamTable ref_table, sp_table;
  ref.register_params(ref_table, "mlp.router");
  sp.register_params(sp_table, "mlp.router");
  ref_table.allocate(9);
  sp_table.allocate(9);
  EXPECT_TRUE(sp_table.spec(0).tp_grad_sum);
  EXPECT_FALSE(ref_table.spec(0).tp_grad_sum);
  double aux_sp = 0, z_sp = 0, aux_ref = 0, z_ref = 0;
  for (int mb = 0; mb < 2; ++mb) {
    const Tensor x = randn({T, kH}, 800 + mb), dprobs = randn({T, kE}, 900 + mb);
    const Tensor x_own = x.slice(q * Tl, (q + 1) * Tl).clone();
    const Tensor dp_own = dprobs.slice(q * Tl, (q + 1) * Tl).clone();
    Context ctx;
    Router::Saved s_ref, s_sp;
    const Router::Output o_ref = ref.forward(ctx, x, s_ref);
    const Router::Output o_sp = sp.forward(ctx, x_own, s_sp);
    aux_ref += o_ref.aux_loss, z_ref += o_ref.z_loss;
    aux_sp += tp->all_reduce_sum(o_sp.aux_loss), z_sp += tp->all_reduce_sum(o_sp.z_loss);
    const Tensor dx_ref = ref.backward(ctx, dprobs, s_ref, 1.f);
    const Tensor dx_sp = sp.backward(ctx, dp_own, s_sp, 1.f);
    EXPECT_TRUE(testing::allclose(dx_sp, dx_ref.slice(q * Tl, (q + 1) * Tl).clone(), 1e-5, 1e-6)) << mb;
  }
  EXPECT_GT(aux_ref, 0);
  EXPECT_GT(z_ref, 0);
  EXPECT_NEAR(aux_sp, aux_ref, 1e-6 * aux_ref);
  EXPECT_NEAR(z_sp, z_ref, 1e-6 * z_ref);
  Tensor g = sp.weight.grad.clone();
  tp->all_reduce(g);  // the tp gradient sum (tp_grad_sum)
  EXPECT_TRUE(testing::allclose(g, ref.weight.grad, 1e-5, 1e-6));
}

TEST(RouterSequenceParallel, SeqAuxLossWithATpCpGroupIsRefused) {
  Communicator& w = world();
  if (w.size() % 2 != 0) {
    GTEST_SKIP() << "needs an even world";
  }
  std::unique_ptr<Communicator> tp = w.split(w.rank() / 2, w.rank(), "tp_cp");
  RouterConfig cfg{.hidden = kH, .num_experts = kE, .topk = 2, .load_balancing_type = {"seq_aux_loss"},
                   .aux_loss_coeff = {1e-2f}};
  cfg.tp_cp = tp.get();
  EXPECT_THROW(Router r(cfg), Error);
}

}  // namespace
}  // namespace foundry

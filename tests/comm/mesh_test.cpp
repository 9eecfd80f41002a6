// Tests of comm/mesh: Megatron-Core's rank groups (parallel_state.py docstrings, megatron_moe.md §3
// worked example), group consistency for random valid layouts, every validation error, and Mesh's
// splits (checked on a simulated world: one thread per rank, split resolved like MPI_Comm_split).
#include "foundry/comm/mesh.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <type_traits>

#include "foundry/core/check.h"

namespace foundry {
namespace {

using Groups = std::vector<std::vector<int>>;

std::vector<int> iota(int from, int to) {  // [from, to)
  std::vector<int> v(to - from);
  std::iota(v.begin(), v.end(), from);
  return v;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

// ---- generate_masked_orthogonal_rank_groups ----------------------------------------------------

TEST(MaskedOrthogonalRankGroups, MegatronDocstringExample) {
  // parallel_size = [tp, dp, pp] = [2, 3, 4], mask = [False, True, False].
  Groups g = masked_orthogonal_rank_groups({2, 3, 4}, {false, true, false});
  ASSERT_EQ(g.size(), 8u);
  EXPECT_EQ(g[0], (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(g[1], (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(g[7], (std::vector<int>{19, 21, 23}));
  // order tp-pp-dp, sizes 2-2-2: dp groups [[0, 4], [1, 5], [2, 6], [3, 7]].
  EXPECT_EQ(masked_orthogonal_rank_groups({2, 2, 2}, {false, false, true}), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
}

TEST(MeshLayout, InitializeModelParallelDocstring) {
  // 16 GPUs, TP2, PP4: 8 dp groups [g0, g2], [g1, g3], ...; 8 tp groups; 4 pp groups [g0, g4, g8, g12] ...
  MeshLayout l({.tensor_model_parallel_size = 2, .pipeline_model_parallel_size = 4}, 16);
  EXPECT_EQ(l.dp(), 2);
  EXPECT_EQ(l.groups(MeshGroup::dp),
            (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::tp),
            (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::pp), (Groups{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}));
  // Embedding: first and last stage of each pipeline; position embedding: first stage.
  EXPECT_EQ(l.groups(MeshGroup::embd), (Groups{{0, 12}, {1, 13}, {2, 14}, {3, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::pos_embd), (Groups{{0}, {1}, {2}, {3}}));
  EXPECT_FALSE(l.is_member(MeshGroup::embd, 4));
  EXPECT_TRUE(l.is_member(MeshGroup::embd, 13));
  EXPECT_NE(error_of([&] { l.group_index(MeshGroup::embd, 4); }).find("no embd group"), std::string::npos);
}

// ---- megatron_moe.md §3: world 16, attention TP2·CP2·DP2·PP2 --------------------------------------

TEST(MeshLayout, ParallelFoldingWorkedExample) {
  ParallelConfig c{.tensor_model_parallel_size = 2, .context_parallel_size = 2, .expert_model_parallel_size = 8,
                   .expert_tensor_parallel_size = 1, .pipeline_model_parallel_size = 2};
  MeshLayout l(c, 16);
  EXPECT_EQ(l.dp(), 2);
  EXPECT_EQ(l.edp(), 1);
  EXPECT_EQ(l.etp(), 1);
  EXPECT_EQ(l.groups(MeshGroup::tp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::cp), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::dp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::dp_cp), (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10, 12, 14}, {9, 11, 13, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::tp_cp), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}));
  EXPECT_EQ(l.groups(MeshGroup::tp_dp_cp), (Groups{iota(0, 8), iota(8, 16)}));
  EXPECT_EQ(l.groups(MeshGroup::tp_dp), (Groups{{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}}));
  const Groups pp{{0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {7, 15}};
  EXPECT_EQ(l.groups(MeshGroup::pp), pp);
  EXPECT_EQ(l.groups(MeshGroup::embd), pp);
  EXPECT_EQ(l.groups(MeshGroup::mp), (Groups{{0, 1, 8, 9}, {2, 3, 10, 11}, {4, 5, 12, 13}, {6, 7, 14, 15}}));
  // Experts ETP1·EP8·EDP1·PP2: EP spans TP x CP x DP of one pipeline stage.
  EXPECT_EQ(l.groups(MeshGroup::ep), (Groups{iota(0, 8), iota(8, 16)}));
  Groups singletons;
  for (int r = 0; r < 16; ++r) singletons.push_back({r});
  EXPECT_EQ(l.groups(MeshGroup::expt_tp), singletons);
  EXPECT_EQ(l.groups(MeshGroup::expt_dp), singletons);
  EXPECT_EQ(l.groups(MeshGroup::tp_ep), (Groups{iota(0, 8), iota(8, 16)}));
  EXPECT_EQ(l.groups(MeshGroup::tp_ep_pp), (Groups{iota(0, 16)}));
  EXPECT_EQ(l.expert().get_ranks("pp"), pp);

  // Rank 13 = tp 1 + cp 0 * 2 + dp 1 * 4 + pp 1 * 8; experts: ep 5 (13 - 8), pp 1.
  MeshCoord k = l.coord(13);
  EXPECT_EQ(std::vector<int>({k.tp, k.cp, k.dp, k.pp, k.etp, k.ep, k.edp}), std::vector<int>({1, 0, 1, 1, 0, 5, 0}));
  EXPECT_EQ(l.rank_in_group(MeshGroup::dp_cp, 13), 2);  // cp + CP * dp
  EXPECT_EQ(l.group_ranks(MeshGroup::dp_cp, 13), (std::vector<int>{9, 11, 13, 15}));

  // EP4·EDP2: EP [[0..3], [4..7], ...], EDP [[0, 4], [1, 5], ...].
  c.expert_model_parallel_size = 4;
  MeshLayout l4(c, 16);
  EXPECT_EQ(l4.edp(), 2);
  EXPECT_EQ(l4.groups(MeshGroup::ep), (Groups{iota(0, 4), iota(4, 8), iota(8, 12), iota(12, 16)}));
  EXPECT_EQ(l4.groups(MeshGroup::expt_dp),
            (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
  EXPECT_EQ(l4.groups(MeshGroup::pp), pp);
}

static_assert(std::is_copy_constructible_v<MeshLayout>);

TEST(MeshLayout, DefaultSingleRank) {
  MeshLayout l(ParallelConfig{}, 1);
  EXPECT_EQ(l.order(), "tp-cp-ep-dp-pp");
  for (int v : {l.tp(), l.cp(), l.dp(), l.pp(), l.ep(), l.etp(), l.edp()}) EXPECT_EQ(v, 1);
  EXPECT_EQ(l.vpp(), 0);
  EXPECT_FALSE(l.sequence_parallel());
  for (MeshGroup g : kAllMeshGroups) {
    EXPECT_EQ(l.groups(g), (Groups{{0}})) << mesh_group_name(g);
    EXPECT_EQ(l.rank_in_group(g, 0), 0);
  }
  MeshCoord k = l.coord(0);
  EXPECT_EQ(k.tp + k.cp + k.dp + k.pp + k.etp + k.ep + k.edp, 0);
}

TEST(MeshLayout, FoldedTp2Ep2World8) {
  // TP2, EP2, ETP = TP (Megatron's default): attention DP 4, expert EDP 2. Each EP group pairs two
  // attention data-parallel ranks (same tp rank): experts fold onto attention DP.
  MeshLayout l({.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2, .sequence_parallel = true}, 8);
  EXPECT_EQ(l.dp(), 4);
  EXPECT_EQ(l.etp(), 2);
  EXPECT_EQ(l.edp(), 2);
  EXPECT_TRUE(l.sequence_parallel());
  EXPECT_EQ(l.groups(MeshGroup::tp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(l.groups(MeshGroup::dp), (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}}));
  EXPECT_EQ(l.groups(MeshGroup::ep), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(l.groups(MeshGroup::expt_tp), l.groups(MeshGroup::tp));
  EXPECT_EQ(l.groups(MeshGroup::expt_dp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(l.groups(MeshGroup::tp_ep), (Groups{iota(0, 4), iota(4, 8)}));
  for (const auto& g : l.groups(MeshGroup::ep)) {  // one EP group = distinct attention dp ranks
    EXPECT_EQ(l.coord(g[0]).tp, l.coord(g[1]).tp);
    EXPECT_NE(l.coord(g[0]).dp, l.coord(g[1]).dp);
  }
  MeshCoord k = l.coord(6);
  EXPECT_EQ(std::vector<int>({k.tp, k.dp, k.etp, k.ep, k.edp}), std::vector<int>({0, 3, 0, 1, 1}));

  // ETP1·EP2 on the same world: EP folds onto the attention TP pairs, EDP 4.
  MeshLayout l1({.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2, .expert_tensor_parallel_size = 1}, 8);
  EXPECT_EQ(l1.edp(), 4);
  EXPECT_EQ(l1.groups(MeshGroup::ep), l1.groups(MeshGroup::tp));
  EXPECT_EQ(l1.groups(MeshGroup::expt_dp), (Groups{{0, 2, 4, 6}, {1, 3, 5, 7}}));
}

TEST(MeshLayout, PipelineNotLastOrder) {
  // order tp-pp-dp (Megatron's docstring): rank = tp + 2 pp + 4 dp; needs EDP == DP when PP > 1.
  MeshLayout l({.tensor_model_parallel_size = 2, .pipeline_model_parallel_size = 2, .order = "tp-pp-dp"}, 8);
  EXPECT_EQ(l.groups(MeshGroup::pp), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(l.groups(MeshGroup::dp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(l.expert().get_ranks("pp"), l.groups(MeshGroup::pp));
}

// ---- consistency for random valid layouts ------------------------------------------------------

std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

// Which coordinates each kind varies (the others are fixed within one group):
// index 0..3 attention tp, cp, dp, pp; 4..6 expert etp, ep, edp (expert pp == attention pp).
std::vector<int> coord_vec(const MeshCoord& k) { return {k.tp, k.cp, k.dp, k.pp, k.etp, k.ep, k.edp}; }

TEST(MeshLayout, RandomLayoutsAreConsistent) {
  const std::map<MeshGroup, std::vector<int>> varies = {
      {MeshGroup::tp, {0}},        {MeshGroup::cp, {1}},          {MeshGroup::dp, {2}},
      {MeshGroup::dp_cp, {1, 2}},  {MeshGroup::tp_cp, {0, 1}},     {MeshGroup::tp_dp_cp, {0, 1, 2}},
      {MeshGroup::tp_dp, {0, 2}},  {MeshGroup::pp, {3}},           {MeshGroup::mp, {0, 3}},
      {MeshGroup::ep, {5}},        {MeshGroup::expt_tp, {4}},      {MeshGroup::expt_dp, {6}},
      {MeshGroup::tp_ep, {4, 5}},  {MeshGroup::tp_ep_pp, {3, 4, 5}}};
  std::mt19937 rng(5);
  auto pick = [&](const std::vector<int>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> dims = {"tp", "cp", "ep", "dp", "pp"};
  int tested = 0;
  for (int trial = 0; trial < 400 && tested < 150; ++trial) {
    const int world = pick({1, 2, 4, 6, 8, 12, 16, 24, 32});
    const int tp = pick(divisors(world)), cp = pick(divisors(world / tp)), pp = pick(divisors(world / tp / cp));
    const int etp = pick(divisors(world / pp)), ep = pick(divisors(world / pp / etp));
    std::vector<std::string> order = dims;
    if (trial % 2) std::shuffle(order.begin(), order.end(), rng);
    std::string order_s = order[0];
    for (size_t i = 1; i < order.size(); ++i) order_s += "-" + order[i];
    ParallelConfig c{.tensor_model_parallel_size = tp, .context_parallel_size = cp, .expert_model_parallel_size = ep,
                     .expert_tensor_parallel_size = etp, .pipeline_model_parallel_size = pp, .order = order_s};
    const int dp = world / (tp * cp * pp), edp = world / (etp * ep * pp);
    const bool ends_pp = order.back() == "pp";
    if (!ends_pp && pp > 1 && edp != dp) {  // Megatron rejects it
      EXPECT_NE(error_of([&] { MeshLayout tmp(c, world); }).find("does not end in 'pp'"), std::string::npos);
      continue;
    }
    std::unique_ptr<MeshLayout> lp;
    const std::string err = error_of([&] { lp = std::make_unique<MeshLayout>(c, world); });
    if (!lp) {
      // The only other rejection: pp groups that differ between the generators (order not pp-last).
      EXPECT_FALSE(ends_pp) << err;
      EXPECT_NE(err.find("pipeline groups differ"), std::string::npos) << err;
      continue;
    }
    ++tested;
    const MeshLayout& l = *lp;
    const std::string what = fmt::format("world {} order {} tp {} cp {} pp {} etp {} ep {}", world, order_s, tp, cp, pp, etp, ep);
    const std::map<MeshGroup, int> sizes = {
        {MeshGroup::tp, tp},         {MeshGroup::cp, cp},          {MeshGroup::dp, dp},
        {MeshGroup::dp_cp, dp * cp}, {MeshGroup::tp_cp, tp * cp},  {MeshGroup::tp_dp_cp, tp * dp * cp},
        {MeshGroup::tp_dp, tp * dp}, {MeshGroup::pp, pp},          {MeshGroup::mp, tp * pp},
        {MeshGroup::ep, ep},         {MeshGroup::expt_tp, etp},    {MeshGroup::expt_dp, edp},
        {MeshGroup::tp_ep, etp * ep}, {MeshGroup::tp_ep_pp, etp * ep * pp}};
    // Coordinates are a bijection onto the grid.
    std::set<std::vector<int>> attn_coords, expt_coords;
    for (int r = 0; r < world; ++r) {
      auto k = coord_vec(l.coord(r));
      attn_coords.insert({k[0], k[1], k[2], k[3]});
      expt_coords.insert({k[4], k[5], k[6], k[3]});
    }
    ASSERT_EQ(attn_coords.size(), size_t(world)) << what;
    ASSERT_EQ(expt_coords.size(), size_t(world)) << what;
    for (const auto& [g, var] : varies) {
      const Groups& gs = l.groups(g);
      ASSERT_EQ(gs.size() * sizes.at(g), size_t(world)) << what << " " << mesh_group_name(g);
      std::vector<int> seen(world, 0);
      for (const auto& grp : gs) {
        ASSERT_EQ(grp.size(), size_t(sizes.at(g))) << what << " " << mesh_group_name(g);
        EXPECT_TRUE(std::is_sorted(grp.begin(), grp.end()));
        for (int r : grp) ++seen[r];
      }
      for (int r = 0; r < world; ++r) ASSERT_EQ(seen[r], 1) << what << " " << mesh_group_name(g) << " rank " << r;
      // Same group <=> same coordinates outside the varied dims.
      for (int a = 0; a < world; ++a)
        for (int b = 0; b < world; ++b) {
          auto ka = coord_vec(l.coord(a)), kb = coord_vec(l.coord(b));
          const bool expert = var.front() >= 4 || g == MeshGroup::tp_ep_pp;
          bool same = true;
          for (int d : expert ? std::vector<int>{3, 4, 5, 6} : std::vector<int>{0, 1, 2, 3})
            if (std::find(var.begin(), var.end(), d) == var.end() && ka[d] != kb[d]) same = false;
          ASSERT_EQ(same, l.group_index(g, a) == l.group_index(g, b))
              << what << " " << mesh_group_name(g) << " ranks " << a << " " << b;
        }
    }
    // A rank's coordinate is its position in the single-dim groups.
    for (int r = 0; r < world; ++r) {
      auto k = l.coord(r);
      EXPECT_EQ(l.rank_in_group(MeshGroup::tp, r), k.tp);
      EXPECT_EQ(l.rank_in_group(MeshGroup::cp, r), k.cp);
      EXPECT_EQ(l.rank_in_group(MeshGroup::dp, r), k.dp);
      EXPECT_EQ(l.rank_in_group(MeshGroup::pp, r), k.pp);
      EXPECT_EQ(l.rank_in_group(MeshGroup::expt_tp, r), k.etp);
      EXPECT_EQ(l.rank_in_group(MeshGroup::ep, r), k.ep);
      EXPECT_EQ(l.rank_in_group(MeshGroup::expt_dp, r), k.edp);
      // Embedding groups: first and last pipeline stage.
      EXPECT_EQ(l.is_member(MeshGroup::embd, r), k.pp == 0 || k.pp == pp - 1);
      EXPECT_EQ(l.is_member(MeshGroup::pos_embd, r), k.pp == 0);
    }
    // Order starting with tp: tp groups are contiguous blocks.
    if (order[0] == "tp") {
      for (size_t i = 0; i < l.groups(MeshGroup::tp).size(); ++i)
        EXPECT_EQ(l.groups(MeshGroup::tp)[i], iota(int(i) * tp, int(i + 1) * tp)) << what;
    }
  }
  EXPECT_GE(tested, 100);
}

// ---- validation errors -------------------------------------------------------------------------

void expect_error(const ParallelConfig& c, int world, std::initializer_list<const char*> parts) {
  const std::string msg = error_of([&] { MeshLayout tmp(c, world); });
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(MeshLayout, ValidationErrors) {
  expect_error({.tensor_model_parallel_size = 4}, 6,
               {"world size 6 is not divisible", "tensor_model_parallel_size (4)", "= 4"});
  expect_error({.tensor_model_parallel_size = 2, .context_parallel_size = 3}, 8,
               {"world size 8", "context_parallel_size (3)", "= 6"});
  expect_error({.pipeline_model_parallel_size = 3}, 8, {"pipeline_model_parallel_size (3)"});
  expect_error({.tensor_model_parallel_size = 0}, 8, {"parallel.tensor_model_parallel_size is 0", ">= 1"});
  expect_error({.context_parallel_size = -1}, 8, {"parallel.context_parallel_size is -1"});
  expect_error({.pipeline_model_parallel_size = 16}, 8, {"parallel.pipeline_model_parallel_size (16)", "larger than the world size (8)"});
  expect_error({.expert_model_parallel_size = 3}, 8,
               {"world size 8 is not divisible by expert_tensor_parallel_size (1) x expert_model_parallel_size (3)"});
  expect_error({.tensor_model_parallel_size = 2, .expert_model_parallel_size = 8}, 8,
               {"expert_tensor_parallel_size (2) x expert_model_parallel_size (8)", "= 16"});
  expect_error({.expert_tensor_parallel_size = -2}, 8, {"parallel.expert_tensor_parallel_size"});
  expect_error({.virtual_pipeline_model_parallel_size = 2}, 8,
               {"parallel.virtual_pipeline_model_parallel_size (2)", "pipeline_model_parallel_size > 1"});
  expect_error({.pipeline_model_parallel_size = 2, .virtual_pipeline_model_parallel_size = -1}, 8,
               {"parallel.virtual_pipeline_model_parallel_size is -1"});
  expect_error({.order = "tp-cp-xx-dp-pp"}, 8, {"parallel.order 'tp-cp-xx-dp-pp' is malformed", "'xx'"});
  expect_error({.order = "tp-dp-tp-pp"}, 8, {"parallel.order 'tp-dp-tp-pp' is malformed", "'tp' appears twice"});
  expect_error({.order = "tp--dp-pp"}, 8, {"parallel.order 'tp--dp-pp' is malformed"});
  expect_error({.order = ""}, 8, {"parallel.order '' is malformed"});
  expect_error({.context_parallel_size = 2, .order = "tp-dp-pp"}, 8, {"parallel.order 'tp-dp-pp' lacks 'cp'", "size is 2"});
  expect_error({.expert_model_parallel_size = 2, .order = "tp-cp-dp-pp"}, 8, {"lacks 'ep'", "expert generator"});
  // Not pp-last with PP > 1: EDP must equal DP (TP2 PP2 on 8: DP 2; ETP1 EP1: EDP 4).
  expect_error({.tensor_model_parallel_size = 2, .expert_tensor_parallel_size = 1, .pipeline_model_parallel_size = 2,
                .order = "tp-cp-ep-pp-dp"}, 8,
               {"parallel.order 'tp-cp-ep-pp-dp' does not end in 'pp'", "= 4", "= 2"});
  EXPECT_NE(error_of([] { MeshLayout tmp(ParallelConfig{}, 0); }).find("world size 0"), std::string::npos);
  // Valid ones for contrast.
  MeshLayout({.tensor_model_parallel_size = 2, .pipeline_model_parallel_size = 2, .order = "tp-cp-ep-pp-dp"}, 8);
  MeshLayout({.order = "TP-CP-EP-DP-PP"}, 4);
  MeshLayout({.pipeline_model_parallel_size = 2, .order = "dp-pp"}, 4);  // missing size-1 dims appended
}

// ---- Mesh over a simulated world ---------------------------------------------------------------

// A world of `size` ranks simulated by threads: split blocks until every member of the parent
// group has called it, then groups ranks by color and orders them by (key, parent rank), as
// MPI_Comm_split does. Only rank/size/name/split are simulated.
struct SimWorld {
  std::mutex m;
  std::condition_variable cv;
  std::map<std::pair<std::string, int>, std::map<int, std::pair<int, int>>> calls;  // (comm id, seq) -> rank -> (color, key)
};

class SimComm final : public Communicator {
 public:
  SimComm(SimWorld* w, std::string id, std::vector<int> members, int me, std::string name)
      : w_(w), id_(std::move(id)), members_(std::move(members)), me_(me), name_(std::move(name)) {}
  const std::vector<int>& members() const { return members_; }
  int rank() const override {
    return static_cast<int>(std::find(members_.begin(), members_.end(), me_) - members_.begin());
  }
  int size() const override { return static_cast<int>(members_.size()); }
  std::string name() const override { return name_; }
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override {
    std::unique_lock lock(w_->m);
    const auto call = std::make_pair(id_, seq_++);
    auto& entries = w_->calls[call];
    entries[me_] = {color, key};
    w_->cv.notify_all();
    w_->cv.wait(lock, [&] { return entries.size() == members_.size(); });
    std::vector<std::pair<int, int>> mine;  // (key, parent rank) -> sorted
    for (int p = 0; p < size(); ++p) {
      const auto [c, k] = entries.at(members_[p]);
      if (c == color) mine.push_back({k, p});
    }
    std::sort(mine.begin(), mine.end());
    std::vector<int> members;
    for (auto [k, p] : mine) members.push_back(members_[p]);
    return std::make_unique<SimComm>(w_, fmt::format("{}/{}#{}:{}", id_, name, call.second, color), members, me_, name);
  }
  [[noreturn]] static void no() { FOUNDRY_FAIL("SimComm: not simulated"); }
  void all_reduce(TensorView, ReduceOp) override { no(); }
  void reduce_scatter(TensorView, TensorView) override { no(); }
  void all_gather(TensorView, TensorView) override { no(); }
  void reduce_scatter_v(TensorView, TensorView, std::span<const int64_t>) override { no(); }
  void all_gather_v(TensorView, TensorView, std::span<const int64_t>) override { no(); }
  void all_to_all_v(TensorView, std::span<const int64_t>, std::span<const int64_t>, TensorView,
                    std::span<const int64_t>, std::span<const int64_t>) override { no(); }
  void broadcast(TensorView, int) override { no(); }
  void send(TensorView, int, int) override { no(); }
  void recv(TensorView, int, int) override { no(); }
  void barrier() override { no(); }
  std::unique_ptr<Request> all_reduce_async(TensorView, ReduceOp) override { no(); }
  std::unique_ptr<Request> reduce_scatter_async(TensorView, TensorView) override { no(); }
  std::unique_ptr<Request> all_gather_async(TensorView, TensorView) override { no(); }
  std::unique_ptr<Request> send_async(TensorView, int, int) override { no(); }
  std::unique_ptr<Request> recv_async(TensorView, int, int) override { no(); }

 private:
  SimWorld* w_;
  std::string id_;
  std::vector<int> members_;
  int me_;
  std::string name_;
  int seq_ = 0;
};

// Builds the Mesh on every simulated rank and checks each group communicator against the layout.
void check_mesh_on_sim_world(const ParallelConfig& c, int world) {
  SimWorld sim;
  const MeshLayout layout(c, world);
  std::vector<std::unique_ptr<SimComm>> worlds;
  for (int r = 0; r < world; ++r) worlds.push_back(std::make_unique<SimComm>(&sim, "world", iota(0, world), r, "world"));
  std::vector<std::unique_ptr<Mesh>> meshes(world);
  std::vector<std::string> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] { errors[r] = error_of([&] { meshes[r] = std::make_unique<Mesh>(c, *worlds[r]); }); });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    ASSERT_EQ(errors[r], "(no error)") << "rank " << r;
    const Mesh& m = *meshes[r];
    EXPECT_EQ(m.rank(), r);
    EXPECT_EQ(&m.world(), worlds[r].get());
    for (MeshGroup g : kAllMeshGroups) {
      const auto& comm = dynamic_cast<const SimComm&>(m.group(g));
      EXPECT_EQ(comm.name(), mesh_group_name(g));
      if (layout.is_member(g, r)) {
        EXPECT_EQ(comm.members(), layout.group_ranks(g, r)) << mesh_group_name(g) << " rank " << r;
        EXPECT_EQ(comm.rank(), layout.rank_in_group(g, r));
      } else {
        EXPECT_EQ(comm.members(), std::vector<int>{r}) << mesh_group_name(g) << " rank " << r;
      }
    }
    EXPECT_EQ(m.tp().size(), layout.tp());
    EXPECT_EQ(m.dp_cp().size(), layout.dp() * layout.cp());
    EXPECT_EQ(m.ep().size(), layout.ep());
    EXPECT_EQ(m.expt_dp().size(), layout.edp());
    EXPECT_EQ(m.tp_ep().size(), layout.etp() * layout.ep());
    EXPECT_EQ(m.in_embedding_group(), layout.is_member(MeshGroup::embd, r));
    EXPECT_EQ(m.coord().ep, layout.coord(r).ep);
  }
}

TEST(Mesh, SelfWorldEveryGroupIsOneRank) {
  SimWorld sim;
  SimComm self(&sim, "self", {0}, 0, "self");
  Mesh m(ParallelConfig{}, self);
  for (MeshGroup g : kAllMeshGroups) {
    EXPECT_EQ(m.group(g).size(), 1) << mesh_group_name(g);
    EXPECT_EQ(m.group(g).rank(), 0);
  }
  EXPECT_TRUE(m.in_embedding_group());
  EXPECT_EQ(&m.dp(), &m.group(MeshGroup::dp));
}

TEST(Mesh, SplitsMatchLayout) {
  check_mesh_on_sim_world({.tensor_model_parallel_size = 2, .context_parallel_size = 2, .expert_model_parallel_size = 8,
                           .expert_tensor_parallel_size = 1, .pipeline_model_parallel_size = 2}, 16);
  check_mesh_on_sim_world({.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2, .sequence_parallel = true}, 8);
  // PP3: the middle stage is in no embedding group (a group of its own).
  check_mesh_on_sim_world({.expert_model_parallel_size = 2, .pipeline_model_parallel_size = 3}, 6);
}

TEST(Mesh, WorldSizeMustMatchLayout) {
  SimWorld sim;
  SimComm self(&sim, "self", {0}, 0, "self");
  const std::string msg = error_of([&] { Mesh tmp(MeshLayout(ParallelConfig{}, 2), self); });
  EXPECT_NE(msg.find("has 1 ranks but the layout was built for 2"), std::string::npos) << msg;
}

}  // namespace
}  // namespace foundry

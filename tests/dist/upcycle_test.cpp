// Online upcycling (models/gpt/upcycle.h through train/upcycling.h's checkpoint source): every
// rank of a model split over TP2 x EP2 (with sequence parallelism), PP2 x EP2, or PP2 x TP2 x EP2
// (8 ranks) converts only the blocks it holds, straight from the dense checkpoint files, and the
// result is bit for bit the one-process (offline) upcycled model: each rank's blocks, and the full
// model rank 0 assembles (gather_full_model). Needs 4 ranks (8 for the last layout); skips otherwise.
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/comm/communicator.h"
#include "foundry/comm/mesh.h"
#include "foundry/train/model_parallel_checkpoint.h"
#include "foundry/train/parallel_checks.h"
#include "foundry/train/upcycling.h"
#include "testing.h"

namespace foundry {
namespace {

GPTConfig dense_config() {
  GPTConfig c{.vocab_size = 64, .hidden_size = 32, .num_layers = 4, .num_attention_heads = 4,
              .num_query_groups = 2, .ffn_hidden_size = 64};
  c.init_method_std = 0.1f;
  return resolve_gpt_config(c);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.nbytes())) == 0;
}

// Rank 0 writes the dense checkpoint into a directory named by its pid; every rank gets the path.
std::string save_dense(const GPTModel& dense) {
  Communicator& w = world();
  Tensor pid = Tensor::from<int64_t>({1}, std::vector<int64_t>{static_cast<int64_t>(getpid())});
  w.broadcast(pid, 0);
  const std::string root =
      (std::filesystem::temp_directory_path() / ("foundry_upcycle_" + std::to_string(pid.ptr<int64_t>()[0]))).string();
  if (w.rank() == 0) save_checkpoint({.step = 7, .params = &dense.params()}, root);
  w.barrier();
  return root + "/" + checkpoint_dir_name(7);
}

void check_layout(int64_t tp, int64_t ep, int64_t pp, const UpcycleOptions& o) {
  Communicator& w = world();
  const ParallelConfig p{.tensor_model_parallel_size = tp, .expert_model_parallel_size = ep,
                         .pipeline_model_parallel_size = pp, .sequence_parallel = tp > 1};
  // Attention ranks TP x PP and expert ranks ETP (= TP) x EP x PP must both divide the world.
  if (w.size() % (tp * pp) != 0 || w.size() % (tp * ep * pp) != 0) GTEST_SKIP() << "layout does not fit " << w.size();
  const GPTConfig dense_cfg = dense_config();
  const GPTConfig moe_cfg = upcycled_config(dense_cfg, o);
  GPTModel dense(dense_cfg, 3);
  const std::string dir = save_dense(dense);

  // Offline: one process, from the in-memory dense model.
  GPTModel one(moe_cfg, 11);
  upcycle_model(one, o, dense_source_of(dense.params()));
  // Online: each rank its blocks, from the files.
  Mesh mesh(p, w);
  GPTModel par(moe_cfg, 11, model_parallel_of(mesh));
  upcycle_model(par, upcycle_options_for(dense_cfg, par.config(), o.weight_scaling, o.scaling_split),
                dense_checkpoint_source(dir));
  for (int i = 0; i < par.params().size(); ++i) {
    const ParamSpec& s = par.params().spec(i);
    Tensor want = Tensor::empty(s.shape);
    if (s.sharded()) copy_full_to_shard(s, one.params().at(s.name).value, want);
    else want = one.params().at(s.name).value;
    EXPECT_TRUE(bitwise_equal(par.params().param(i).value, want)) << s.name << " on rank " << w.rank();
  }
  const FullModelState full = gather_full_model(par, nullptr);
  if (w.rank() == 0) {
    ASSERT_TRUE(full.model);
    for (int i = 0; i < one.params().size(); ++i)
      EXPECT_TRUE(bitwise_equal(full.model->params().param(i).value, one.params().param(i).value))
          << one.params().spec(i).name;
  }
  w.barrier();
  if (w.rank() == 0) std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

const UpcycleOptions kE8G2T4{.num_experts = 8, .topk = 4, .granularity = 2};
const UpcycleOptions kE8G4T4ST{.num_experts = 8, .topk = 4, .granularity = 4, .pre_softmax = true,
                               .scaling_split = "equal"};

TEST(Upcycle, OnlineUnderTP2EP2EqualsOfflineBitwise) {
  check_layout(2, 2, 1, kE8G2T4);
  check_layout(2, 2, 1, kE8G4T4ST);
}
TEST(Upcycle, OnlineUnderPP2EP2EqualsOfflineBitwise) { check_layout(1, 2, 2, kE8G2T4); }
TEST(Upcycle, OnlineUnderPP2TP2EP2EqualsOfflineBitwise) { check_layout(2, 2, 2, kE8G2T4); }

}  // namespace
}  // namespace foundry

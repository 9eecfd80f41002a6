// Mesh on a real world (run under `mpirun -np 8`): every group communicator has the layout's
// size and rank, and an all_reduce over it sums exactly its member ranks (a bitmask of world
// ranks, so a wrong member set cannot cancel out). GroupsOnEightRanks skips unless the world has 8
// ranks; GroupsOnAnyWorld runs on any (1 included).
#include <gtest/gtest.h>

#include <cstdint>

#include "foundry/comm/communicator.h"
#include "foundry/comm/mesh.h"

namespace foundry {
namespace {

void check_mesh(const ParallelConfig& cfg) {
  Communicator& w = world();
  Mesh mesh(cfg, w);
  const MeshLayout& l = mesh.layout();
  const int r = w.rank();
  for (MeshGroup g : kAllMeshGroups) {
    Communicator& c = mesh.group(g);
    const bool member = l.is_member(g, r);
    const std::vector<int> members = member ? l.group_ranks(g, r) : std::vector<int>{r};
    ASSERT_EQ(c.size(), static_cast<int>(members.size())) << mesh_group_name(g) << " on rank " << r;
    EXPECT_EQ(c.rank(), member ? l.rank_in_group(g, r) : 0) << mesh_group_name(g) << " on rank " << r;
    Tensor x = Tensor::empty({2}, DType::i64);
    x.ptr<int64_t>()[0] = int64_t{1} << r;
    x.ptr<int64_t>()[1] = r;
    c.all_reduce(x);
    int64_t mask = 0, sum = 0;
    for (int m : members) {
      mask |= int64_t{1} << m;
      sum += m;
    }
    EXPECT_EQ(x.ptr<int64_t>()[0], mask) << mesh_group_name(g) << " on rank " << r;
    EXPECT_EQ(x.ptr<int64_t>()[1], sum) << mesh_group_name(g) << " on rank " << r;
  }
  w.barrier();
}

TEST(MeshDist, GroupsOnAnyWorld) {
  const int n = world().size();
  check_mesh({});                                                                  // DP n
  check_mesh({.tensor_model_parallel_size = n, .sequence_parallel = true});         // TP n
  check_mesh({.expert_model_parallel_size = n, .expert_tensor_parallel_size = 1});  // EP n folded onto DP
  check_mesh({.pipeline_model_parallel_size = n});                                  // PP n
}

TEST(MeshDist, GroupsOnEightRanks) {
  if (world().size() != 8) GTEST_SKIP() << "needs mpirun -np 8 (world has " << world().size() << " ranks)";
  // Folded TP2·EP2 (ETP = TP, EDP 2, attention DP 4).
  check_mesh({.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2, .sequence_parallel = true});
  // TP2·CP2·PP2 attention; ETP1·EP4·PP2 experts (EP spans TP x CP of a stage).
  check_mesh({.tensor_model_parallel_size = 2, .context_parallel_size = 2, .expert_model_parallel_size = 4,
              .expert_tensor_parallel_size = 1, .pipeline_model_parallel_size = 2});
  // PP2·TP2·EP2, and PP4 (the middle stages are in no embedding group).
  check_mesh({.tensor_model_parallel_size = 2, .expert_model_parallel_size = 2, .pipeline_model_parallel_size = 2,
              .sequence_parallel = true});
  check_mesh({.expert_model_parallel_size = 2, .pipeline_model_parallel_size = 4});
  // Order with pp not last (EDP == DP).
  check_mesh({.tensor_model_parallel_size = 2, .pipeline_model_parallel_size = 2, .order = "tp-pp-dp"});
}

}  // namespace
}  // namespace foundry

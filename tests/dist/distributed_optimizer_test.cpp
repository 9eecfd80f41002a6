// DistributedAdamW (ZeRO-1) over the MPI world (mpirun with 2, 4 and 8 ranks) and over split
// sub-groups: each rank has its own deterministic gradients; every rank checks, against the
// replicated AdamW + clip_grad_norm on the sum of all ranks' gradients computed locally, five steps
// with clipping (parameters equal bit for bit: the gradients are on a 1/16 grid, so every sum is
// exact in any order), the gathered state, scatter(gather(state)) and a resume from a replicated
// AdamW, for a table that shards exactly and one that needs padding (tests/optim/
// distributed_optimizer_check.h).
#include <gtest/gtest.h>

#include "foundry/comm/communicator.h"
#include "optim/distributed_optimizer_check.h"

namespace foundry {
namespace {

TEST(DistDistributedAdamW, WorldEqualsAdamWOnTheSummedGradient) {
  Communicator& w = world();
  zero_test::check_against_adamw(w, /*tiny=*/false);  // N = 128: exact shards
  zero_test::check_against_adamw(w, /*tiny=*/true);   // N = 48: padded shards
  w.barrier();
}

TEST(DistDistributedAdamW, SplitDataParallelGroups) {
  // Two dp groups (even and odd ranks, reversed order), as when the world also holds TP or PP.
  Communicator& w = world();
  auto dp = w.split(w.rank() % 2, -w.rank(), "dp");
  EXPECT_EQ(dp->size(), w.size() / 2);
  zero_test::check_against_adamw(*dp, /*tiny=*/false);
  zero_test::check_against_adamw(*dp, /*tiny=*/true);
  w.barrier();
}

}  // namespace
}  // namespace foundry

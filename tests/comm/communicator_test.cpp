// The world of a process started without mpirun is a SelfCommunicator of size 1: collectives are
// copies or no-ops, with the same argument checks as the MPI communicator.
#include <gtest/gtest.h>

#include <vector>

#include "../dist/dist_util.h"
#include "foundry/comm/communicator.h"

namespace foundry {
namespace {

using testing::filled;
using testing::values;

template <class F> std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(Communicator, WorldWithoutLauncherIsSelf) {
  Communicator& w = world();
  EXPECT_TRUE(world_initialized());
  EXPECT_EQ(w.size(), 1);
  EXPECT_EQ(w.rank(), 0);
  EXPECT_EQ(w.name(), "world");
  EXPECT_EQ(&w, &world());
  EXPECT_DOUBLE_EQ(w.all_reduce_sum(2.5), 2.5);
}

TEST(Communicator, SelfCollectivesAreIdentity) {
  auto c = make_self_communicator("tp");
  Tensor x = filled(DType::bf16, 5, [](int64_t i) { return i - 2.0; });
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min}) c->all_reduce(x, op);
  c->broadcast(x, 0);
  c->barrier();
  EXPECT_EQ(values(x), (std::vector<double>{-2, -1, 0, 1, 2}));

  Tensor in = filled(DType::i64, 7, [](int64_t i) { return 10 * i; });
  Tensor out = Tensor::zeros({7}, DType::i64);
  c->reduce_scatter(in, out);
  EXPECT_EQ(values(out), values(in));
  out.zero_();
  c->all_gather(in, out);
  EXPECT_EQ(values(out), values(in));
  out.zero_();
  const std::vector<int64_t> counts{7};
  c->all_gather_v(in, out, counts);
  EXPECT_EQ(values(out), values(in));
  out.zero_();
  c->reduce_scatter_v(in, out, counts);
  EXPECT_EQ(values(out), values(in));
  Tensor none = Tensor::zeros({0}, DType::i64);
  const std::vector<int64_t> zero{0};
  c->reduce_scatter_v(none, none, zero);  // an empty chunk

  // all_to_all_v honours offsets: in[2, 5) -> out[1, 4).
  out = filled(DType::i64, 6, [](int64_t) { return -1; });
  const std::vector<int64_t> sc{3}, so{2}, rc{3}, ro{1};
  c->all_to_all_v(in, sc, so, out, rc, ro);
  EXPECT_EQ(values(out), (std::vector<double>{-1, 20, 30, 40, -1, -1}));

  Tensor f = filled(DType::f32, 3, [](int64_t i) { return i + 0.5; });
  Tensor g = Tensor::zeros({3});
  c->all_reduce_async(f)->wait();
  c->reduce_scatter_async(f, g)->wait();
  EXPECT_EQ(values(g), values(f));
  g.zero_();
  { auto r = c->all_gather_async(f, g); }  // dropped without wait: already complete
  EXPECT_EQ(values(g), values(f));

  auto sub = c->split(3, -1, "dp");
  EXPECT_EQ(sub->size(), 1);
  EXPECT_EQ(sub->name(), "dp");
  EXPECT_DOUBLE_EQ(sub->all_reduce_sum(-1.25), -1.25);
}

TEST(Communicator, SelfErrorsNameTheCollectiveAndGroup) {
  auto c = make_self_communicator("ep");
  Tensor a = Tensor::zeros({4}), b = Tensor::zeros({3});
  EXPECT_NE(error_of([&] { c->all_gather(a, b); }).find("all_gather on group 'ep'"), std::string::npos);
  EXPECT_NE(error_of([&] { c->reduce_scatter(a, b); }).find("reduce_scatter on group 'ep'"), std::string::npos);
  EXPECT_NE(error_of([&] { c->send(a, 0); }).find("cannot send to itself"), std::string::npos);
  EXPECT_NE(error_of([&] { c->recv(a, 0); }).find("cannot receive from itself"), std::string::npos);
  EXPECT_NE(error_of([&] { c->broadcast(a, 1); }).find("root 1 out of range"), std::string::npos);
  const std::vector<int64_t> counts{3};
  EXPECT_NE(error_of([&] { c->all_gather_v(a, a, counts); }).find("counts[0] = 3"), std::string::npos);
  EXPECT_NE(error_of([&] { c->reduce_scatter_v(a, a, counts); }).find("reduce_scatter_v on group 'ep': counts sum "
                                                                   "to 3 but input"), std::string::npos);
  EXPECT_NE(error_of([&] { c->reduce_scatter_v(b, a, counts); }).find("counts[0] = 3 but this rank's output"),
            std::string::npos);
  const std::vector<int64_t> two{1, 2};
  EXPECT_NE(error_of([&] { c->reduce_scatter_v(b, b, two); }).find("2 counts for a group of size 1"),
            std::string::npos);
  const std::vector<int64_t> sc{3}, so{2}, rc{3}, ro{0};
  EXPECT_NE(error_of([&] { c->all_to_all_v(a, sc, so, a, rc, ro); }).find("send block for rank 0"),
            std::string::npos);
  Tensor i = Tensor::zeros({4}, DType::i32);
  EXPECT_NE(error_of([&] { c->all_gather(a, i); }).find("differ in dtype"), std::string::npos);
}

}  // namespace
}  // namespace foundry

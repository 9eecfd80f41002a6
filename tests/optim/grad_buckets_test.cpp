// GradBuckets in one process: the bucket layout (reverse registration order, contiguous ranges of
// grad_buffer(kind) tiling it, cut at parameter boundaries, Megatron's ">= bucket_bytes closes a
// bucket" rule, an oversized parameter, one bucket when bucket_bytes <= 0, dense and expert kinds
// apart) over the self communicator (no collectives), and the start order of the all-reduces over
// a recording communicator of size 2: a bucket starts when its parameters are all ready and every
// bucket before it has started; finish() reduces the rest in bucket order and waits for all. The multi-process
// check of the sums is tests/dist/grad_buckets_test.cpp.
#include "foundry/optim/grad_buckets.h"

#include <array>
#include <utility>

#include "testing.h"

namespace foundry {
namespace {

// 8 parameters registered dense / expert interleaved; sizes in f32 elements (16 = 64 bytes, the
// arena alignment: sizes not a multiple of 16 leave padding after the parameter).
struct Table {
  static constexpr std::array<std::pair<int64_t, bool>, 8> kSpecs = {{
      {40, false}, {16, false}, {7, true}, {100, false}, {33, true}, {3, false}, {64, true}, {20, false}}};
  std::array<Param, 8> params;
  ParamTable table;
  Table() {
    for (size_t i = 0; i < kSpecs.size(); ++i)
      table.add(params[i], {.name = std::string("p").append(std::to_string(i)), .shape = Shape{kSpecs[i].first},
                            .expert_local = kSpecs[i].second});
    table.allocate(1);
  }
  int64_t offset(int i, ParamTable::Kind kind) const {  // f32 elements into grad_buffer(kind)
    return (static_cast<const char*>(params[static_cast<size_t>(i)].grad.data()) -
            static_cast<const char*>(table.grad_buffer(kind).data)) / 4;
  }
};

TEST(GradBuckets, LayoutReverseOrderContiguousAtParameterBoundaries) {
  Table t;
  const auto self = make_self_communicator("dp");
  const int64_t bucket_bytes = 256;  // 64 elements
  GradBuckets dense(t.table, ParamTable::Kind::dense, *self, bucket_bytes);
  // Dense parameters 0 (40 -> 48 with padding), 1 (16), 3 (100 -> 112), 5 (3 -> 16), 7 (20 -> 32),
  // offsets 0, 48, 64, 176, 192; N = 224. From the end: {7, 5, 3} (32 + 16 + 112 = 160 >= 64),
  // {1, 0} (64 >= 64, the front bucket).
  ASSERT_EQ(dense.num_buckets(), 2);
  EXPECT_EQ(dense.bytes(), 224 * 4);
  EXPECT_EQ(dense.bucket(0).params, (std::vector<int>{7, 5, 3}));
  EXPECT_EQ(dense.bucket(0).begin, t.offset(3, ParamTable::Kind::dense));
  EXPECT_EQ(dense.bucket(0).begin, 64);
  EXPECT_EQ(dense.bucket(0).end, 224);
  EXPECT_EQ(dense.bucket(1).params, (std::vector<int>{1, 0}));
  EXPECT_EQ(dense.bucket(1).begin, 0);
  EXPECT_EQ(dense.bucket(1).end, 64);
  EXPECT_EQ(dense.bucket_of(3), 0);
  EXPECT_EQ(dense.bucket_of(0), 1);
  EXPECT_EQ(dense.bucket_of(2), -1);  // expert

  GradBuckets expert(t.table, ParamTable::Kind::expert, *self, bucket_bytes);
  // Expert parameters 2 (7 -> 16), 4 (33 -> 48), 6 (64): offsets 0, 16, 64; N = 128.
  // From the end: {6} (64 >= 64), {4, 2} (64).
  ASSERT_EQ(expert.num_buckets(), 2);
  EXPECT_EQ(expert.bucket(0).params, (std::vector<int>{6}));
  EXPECT_EQ(expert.bucket(0).begin, 64);
  EXPECT_EQ(expert.bucket(0).end, 128);
  EXPECT_EQ(expert.bucket(1).params, (std::vector<int>{4, 2}));
  EXPECT_EQ(expert.bucket(1).begin, 0);
  EXPECT_EQ(expert.bucket_of(3), -1);
}

TEST(GradBuckets, EveryBucketAtLeastBucketBytesButTheFrontOneAndOversizedParameters) {
  Table t;
  const auto self = make_self_communicator("dp");
  for (const int64_t bucket_bytes : {1, 64, 100, 200, 300, 500, 1000, 100000}) {
    for (const auto kind : {ParamTable::Kind::dense, ParamTable::Kind::expert}) {
      GradBuckets g(t.table, kind, *self, bucket_bytes);
      int64_t end = g.bytes() / 4;
      for (int b = 0; b < g.num_buckets(); ++b) {
        const auto& bk = g.bucket(b);
        EXPECT_EQ(bk.end, end) << "buckets tile the range from its end";
        end = bk.begin;
        // The bucket starts where its front parameter starts; it was still short of bucket_bytes
        // before that parameter joined.
        const int front = bk.params.back();
        EXPECT_EQ(bk.begin, t.offset(front, kind));
        const int64_t before_front = bk.bytes() - (bk.params.size() > 1
                                                       ? (t.offset(bk.params[bk.params.size() - 2], kind) - bk.begin) * 4
                                                       : bk.bytes());
        EXPECT_LT(before_front, bucket_bytes);
        if (b + 1 < g.num_buckets()) {
          EXPECT_GE(bk.bytes(), bucket_bytes);
        }
      }
      EXPECT_EQ(end, 0);
    }
  }
  // One parameter larger than the bucket alone: parameter 3 spans 448 bytes > 160.
  GradBuckets g(t.table, ParamTable::Kind::dense, *self, 160);
  // From the end: {7, 5} (32 + 16 = 48 elements = 192 bytes >= 160), {3} (448), {1, 0} (256).
  ASSERT_EQ(g.num_buckets(), 3);
  EXPECT_EQ(g.bucket(1).params, (std::vector<int>{3}));
  EXPECT_EQ(g.bucket(1).bytes(), 448);
  EXPECT_GT(g.bucket(1).bytes(), g.bucket_bytes());
}

TEST(GradBuckets, NonPositiveBucketBytesIsOneBucket) {
  Table t;
  const auto self = make_self_communicator("dp");
  GradBuckets g(t.table, ParamTable::Kind::dense, *self, 0);
  ASSERT_EQ(g.num_buckets(), 1);
  EXPECT_EQ(g.bucket(0).params, (std::vector<int>{7, 5, 3, 1, 0}));
  EXPECT_EQ(g.bucket(0).begin, 0);
  EXPECT_EQ(g.bucket(0).end, 224);
  // The default (40 MB) holds this small model in one bucket too.
  EXPECT_EQ(GradBuckets(t.table, ParamTable::Kind::expert, *self).num_buckets(), 1);
}

TEST(GradBuckets, NoParametersOfTheKindIsNoBuckets) {
  Param a, b;
  ParamTable table;
  table.add(a, {.name = "a", .shape = Shape{5}});
  table.add(b, {.name = "b", .shape = Shape{3, 4}});
  table.allocate(1);
  const auto self = make_self_communicator("edp");
  GradBuckets g(table, ParamTable::Kind::expert, *self, 16);
  EXPECT_EQ(g.num_buckets(), 0);
  EXPECT_EQ(g.bytes(), 0);
  g.mark_range_ready(0, 2);  // dense: ignored
  g.finish();
}

TEST(GradBuckets, SelfCommunicatorIsANoOpAndChecksMarks) {
  Table t;
  const auto self = make_self_communicator("dp");
  GradBuckets g(t.table, ParamTable::Kind::dense, *self, 64);
  for (int i = 0; i < t.table.size(); ++i) {
    float* p = t.params[static_cast<size_t>(i)].grad.ptr<float>();
    for (int64_t j = 0; j < t.params[static_cast<size_t>(i)].grad.numel(); ++j) p[j] = static_cast<float>(i + j);
  }
  const Tensor before = t.params[3].grad.clone();
  g.mark_ready(7);
  g.mark_ready(2);  // expert: ignored
  EXPECT_THROW(g.mark_ready(7), Error);
  EXPECT_THROW(g.mark_ready(8), Error);
  EXPECT_THROW(g.mark_ready(-1), Error);
  g.finish();
  EXPECT_EQ(g.num_started(), 0);  // reset for the next step
  EXPECT_TRUE(testing::allclose(t.params[3].grad, before, 0, 0));
  g.mark_range_ready(6, 8);  // a new step: no longer marked (6 is expert: ignored)
  g.reset();
  g.mark_ready(7);
}

// Size 2, records the ranges handed to all_reduce_async and all_reduce (element offsets into
// `base`), the blocking calls and the waits.
class RecordingComm final : public Communicator {
 public:
  explicit RecordingComm(const void* base) : base_(static_cast<const char*>(base)) {}
  std::vector<std::pair<int64_t, int64_t>> started;  // [begin, end) in f32 elements
  int waits = 0, blocking = 0;

  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string name() const override { return "recording"; }
  std::unique_ptr<Request> all_reduce_async(TensorView x, ReduceOp op) override {
    EXPECT_EQ(op, ReduceOp::sum);
    const int64_t b = (static_cast<const char*>(x.data) - base_) / 4;
    started.emplace_back(b, b + x.numel());
    return std::make_unique<Waited>(waits);
  }

  void all_reduce(TensorView x, ReduceOp op) override {
    all_reduce_async(x, op);
    ++blocking;
  }
  void reduce_scatter(TensorView, TensorView) override { unused(); }
  void all_gather(TensorView, TensorView) override { unused(); }
  void reduce_scatter_v(TensorView, TensorView, std::span<const int64_t>) override { unused(); }
  void all_gather_v(TensorView, TensorView, std::span<const int64_t>) override { unused(); }
  void all_to_all_v(TensorView, std::span<const int64_t>, std::span<const int64_t>, TensorView,
                    std::span<const int64_t>, std::span<const int64_t>) override { unused(); }
  void broadcast(TensorView, int) override { unused(); }
  void send(TensorView, int, int) override { unused(); }
  void recv(TensorView, int, int) override { unused(); }
  void barrier() override { unused(); }
  std::unique_ptr<Request> reduce_scatter_async(TensorView, TensorView) override { unused(); }
  std::unique_ptr<Request> all_gather_async(TensorView, TensorView) override { unused(); }
  std::unique_ptr<Request> send_async(TensorView, int, int) override { unused(); }
  std::unique_ptr<Request> recv_async(TensorView, int, int) override { unused(); }
  std::unique_ptr<Communicator> split(int, int, const std::string&) override { unused(); }

 private:
  struct Waited final : Request {
    explicit Waited(int& n) : n(n) {}
    void wait() override { ++n; }
    int& n;
  };
  [[noreturn]] static void unused() { throw std::logic_error("RecordingComm: only all_reduce_async"); }
  const char* base_;
};

TEST(GradBuckets, BucketsStartInBucketOrderWhenComplete) {
  Table t;
  RecordingComm comm(t.table.grad_buffer(ParamTable::Kind::dense).data);
  GradBuckets g(t.table, ParamTable::Kind::dense, comm, 160);  // {7, 5} [176, 224), {3} [64, 176), {1, 0} [0, 64)
  using R = std::vector<std::pair<int64_t, int64_t>>;
  // Reverse registration order: each bucket starts at its last parameter.
  g.mark_ready(7);
  EXPECT_TRUE(comm.started.empty());
  g.mark_ready(5);
  EXPECT_EQ(comm.started, (R{{176, 224}}));
  g.mark_ready(3);
  EXPECT_EQ(comm.started, (R{{176, 224}, {64, 176}}));
  EXPECT_EQ(g.num_started(), 2);
  g.mark_ready(1);
  g.mark_ready(0);
  EXPECT_EQ(comm.started, (R{{176, 224}, {64, 176}, {0, 64}}));
  EXPECT_EQ(comm.waits, 0);
  g.finish();
  EXPECT_EQ(comm.waits, 3);
  EXPECT_EQ(comm.started.size(), 3u);  // nothing left to start

  // Out of order: bucket 2 complete first waits for buckets 0 and 1.
  comm.started.clear();
  g.mark_ready(0);
  g.mark_ready(1);
  g.mark_ready(3);
  EXPECT_TRUE(comm.started.empty());
  g.mark_ready(5);
  g.mark_ready(7);
  EXPECT_EQ(comm.started, (R{{176, 224}, {64, 176}, {0, 64}}));
  g.finish();

  // Unmarked parameters: finish() reduces the remaining buckets in order (blocking all_reduce:
  // they would be waited for at once), then waits for the ones in flight.
  comm.started.clear();
  comm.waits = 0;
  g.mark_ready(7);
  g.mark_ready(5);
  g.mark_ready(0);
  EXPECT_EQ(comm.started, (R{{176, 224}}));
  g.finish();
  EXPECT_EQ(comm.started, (R{{176, 224}, {64, 176}, {0, 64}}));
  EXPECT_EQ(comm.blocking, 2);
  EXPECT_EQ(comm.waits, 1);
}

}  // namespace
}  // namespace foundry

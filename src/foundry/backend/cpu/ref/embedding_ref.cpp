#include "foundry/backend/cpu/ref/embedding_ref.h"

#include <vector>

namespace foundry::ref {

void embedding_forward(const EmbeddingArgs& g) {
  const int64_t N = g.ids.size(0), V = g.table.size(0), H = g.table.size(1);
  const int32_t* ids = g.ids.ptr<int32_t>();
  for (int64_t n = 0; n < N; ++n) {
    FOUNDRY_CHECK(ids[n] >= 0 && ids[n] < V, "ref::embedding_forward: id {} at {}", ids[n], n);
    for (int64_t j = 0; j < H; ++j) g.out.ptr<float>()[n * H + j] = g.table.ptr<float>()[ids[n] * H + j];
  }
}

void embedding_backward(const EmbeddingArgs& g) {
  const int64_t N = g.ids.size(0), V = g.dtable.size(0), H = g.dtable.size(1);
  const int32_t* ids = g.ids.ptr<int32_t>();
  std::vector<double> acc(static_cast<size_t>(V * H), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    FOUNDRY_CHECK(ids[n] >= 0 && ids[n] < V, "ref::embedding_backward: id {} at {}", ids[n], n);
    for (int64_t j = 0; j < H; ++j) acc[ids[n] * H + j] += g.dout.ptr<float>()[n * H + j];
  }
  float* dtable = g.dtable.ptr<float>();
  for (int64_t i = 0; i < V * H; ++i) dtable[i] = static_cast<float>(dtable[i] + acc[i]);
}

}  // namespace foundry::ref

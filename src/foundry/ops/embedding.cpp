// Embedding: validates shapes, dtypes and devices, then dispatches on the device. The ids
// themselves are range-checked by the backend, which can read them.
#include "foundry/ops/embedding.h"

#include "foundry/backend/cpu/embedding.h"
#include "foundry/ops/pointwise_checks.h"

namespace foundry {

using detail::check_cpu;
using detail::check_tensor;

namespace {

void check_ids_and_table(std::string_view op, const TensorView& ids, const TensorView& table,
                         std::string_view table_name) {
  check_tensor(op, "ids", ids, DType::i32);
  FOUNDRY_CHECK(ids.ndim() == 1, "{}: ids must be 1-D (N), got shape {}", op, ids.shape.str());
  check_tensor(op, table_name, table, DType::f32);
  FOUNDRY_CHECK(table.ndim() == 2, "{}: {} must be 2-D (V, H), got shape {}", op, table_name,
                table.shape.str());
}

}  // namespace

void embedding_forward(const EmbeddingArgs& args) {
  constexpr std::string_view op = "embedding_forward";
  check_ids_and_table(op, args.ids, args.table, "table");
  check_tensor(op, "out", args.out, DType::f32, Shape{args.ids.size(0), args.table.size(1)});
  check_cpu(op, {args.ids, args.table, args.out});
  cpu::embedding_forward(args);
}

// dtable accumulated (+=).
void embedding_backward(const EmbeddingArgs& args) {
  constexpr std::string_view op = "embedding_backward";
  check_ids_and_table(op, args.ids, args.dtable, "dtable");
  check_tensor(op, "dout", args.dout, DType::f32, Shape{args.ids.size(0), args.dtable.size(1)});
  check_cpu(op, {args.ids, args.dout, args.dtable});
  cpu::embedding_backward(args);
}

}  // namespace foundry

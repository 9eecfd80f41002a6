// CPU MoE permute / unpermute (contract in ops/moe_permute.h).
#pragma once

#include "foundry/ops/moe_permute.h"

namespace foundry::cpu {

// Arguments already validated by ops/moe_permute.cpp (shapes, dtypes); the backend checks the
// values it reads (map entries 0/1, N, row_token range).
void moe_permute_forward(const MoePermuteArgs& args);
void moe_permute_backward(const MoePermuteArgs& args);
int64_t moe_permute_num_rows(const TensorView& routing_map, int64_t pad_multiple, int64_t capacity);
void moe_unpermute_forward(const MoeUnpermuteArgs& args);
void moe_unpermute_backward(const MoeUnpermuteArgs& args);

}  // namespace foundry::cpu

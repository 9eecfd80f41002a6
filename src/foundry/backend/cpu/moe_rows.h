#pragma once

#include "foundry/ops/moe_rows.h"

namespace foundry::cpu {

void row_scale_forward(const RowScaleArgs& args);
void row_scale_backward(const RowScaleArgs& args);
void weighted_swiglu_forward(const WeightedSwigluArgs& args);
void weighted_swiglu_backward(const WeightedSwigluArgs& args);
void probs_scatter(const ProbsScatterArgs& args);

}  // namespace foundry::cpu

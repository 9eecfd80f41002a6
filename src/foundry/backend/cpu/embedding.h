// CPU embedding lookup and its scatter-add backward (contract in ops/embedding.h).
#pragma once

#include "foundry/ops/embedding.h"

namespace foundry::cpu {

void embedding_forward(const EmbeddingArgs& args);
void embedding_backward(const EmbeddingArgs& args);

}  // namespace foundry::cpu

// Naive reference embedding for tests, same contract as ops/embedding.h (dtable += scatter).
#pragma once

#include "foundry/ops/embedding.h"

namespace foundry::ref {

void embedding_forward(const EmbeddingArgs& args);
void embedding_backward(const EmbeddingArgs& args);  // dtable accumulated (+=)

}  // namespace foundry::ref

// A trained model loaded from a checkpoint on its own: the resolved configuration stored in
// trainer_state.json, the parameters, and the tokenizer saved beside them. Used by
// `foundry eval` and `foundry generate`.
#pragma once

#include <memory>
#include <string>

#include "foundry/data/tokenizer.h"
#include "foundry/models/gpt/gpt_model.h"
#include "foundry/train/config.h"

namespace foundry {

struct Pretrained {
  std::string dir;  // the checkpoint directory
  int64_t step = 0;
  RunConfig config;
  std::unique_ptr<GPTModel> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the checkpoint holds none
};

// `path` is a checkpoint directory, a root holding them (its latest is used), or a run's
// output directory (its checkpoints/).
Pretrained load_pretrained(const std::string& path);
// The checkpoint directory such a path names; throws naming path when there is none.
std::string resolve_pretrained_checkpoint(const std::string& path);

}  // namespace foundry

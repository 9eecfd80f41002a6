// foundry generate CKPT --prompt TEXT: samples a continuation from a checkpoint with a KV
// cache (greedy, temperature, top-k, top-p), streaming the text and reporting tokens/s.
#include "foundry/cli/commands.h"
#include "foundry/cli/print_generation.h"
#include "foundry/train/pretrained.h"

namespace foundry::cli {

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a checkpoint");
  struct Options {
    std::string checkpoint, prompt;
    GenerateConfig gen{.max_new_tokens = 100, .temperature = 0.8f};
    bool greedy = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("checkpoint", o->checkpoint, "Checkpoint directory (or a directory holding checkpoints)")->required();
  cmd->add_option("--prompt", o->prompt, "Text to continue")->required();
  cmd->add_option("--max-new-tokens", o->gen.max_new_tokens, "Tokens to generate at most");
  cmd->add_option("--temperature", o->gen.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", o->gen.top_k, "Keep the k most likely tokens (0: all)");
  cmd->add_option("--top-p", o->gen.top_p, "Keep the smallest set with this total probability (1: all)");
  cmd->add_option("--seed", o->gen.seed, "Sampler seed (same seed, same text)");
  cmd->add_flag("--greedy", o->greedy, "Always take the most likely token");
  cmd->callback([o] {
    const Pretrained p = load_pretrained(o->checkpoint);
    FOUNDRY_CHECK(p.tokenizer != nullptr, "checkpoint {} holds no tokenizer", p.dir);
    GenerateConfig gen = o->gen;
    if (o->greedy) gen.temperature = 0.f;
    print_generation(*p.model, *p.tokenizer, o->prompt, gen);
  });
}

}  // namespace foundry::cli

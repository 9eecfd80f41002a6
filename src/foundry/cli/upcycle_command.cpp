// foundry upcycle DENSE_CKPT --num-experts N --topk T [--granularity G]
//   [--router softmax-then-topk|topk-then-softmax] [--weight-scaling auto|none|VALUE]
//   [--scaling-split linear|equal] [--seed S] --out MOE_ROOT
// Offline dense -> MoE upcycling (models/gpt/upcycle.h, train/upcycling.h; docs/upcycling.md):
// writes one checkpoint under MOE_ROOT (no optimizer state) that `foundry train RECIPE
// train.load=MOE_ROOT` continues from, with the MoE model section it prints.
#include <cstdio>
#include <optional>

#include "foundry/cli/commands.h"
#include "foundry/train/upcycling.h"

namespace foundry::cli {

void add_upcycle_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("upcycle", "Turn a dense checkpoint into a Mixture-of-Experts checkpoint");
  struct Options {
    std::string dense, out, router = "topk-then-softmax", weight_scaling = "auto", scaling_split = "linear";
    int64_t num_experts = 0, topk = 0, granularity = 1;
    std::optional<uint64_t> seed;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("dense", o->dense, "Dense checkpoint (a checkpoint directory, a root of them, or a run directory)")
      ->required();
  cmd->add_option("--num-experts", o->num_experts, "Experts N = R x G")->required();
  cmd->add_option("--topk", o->topk, "Experts per token T (a multiple of G when G > 1)")->required();
  cmd->add_option("--granularity", o->granularity, "G: each expert holds 1/G of the dense MLP (default 1)");
  cmd->add_option("--router", o->router, "Router order: topk-then-softmax (default; exact at G | T) or softmax-then-topk")
      ->check(CLI::IsMember({"topk-then-softmax", "softmax-then-topk"}));
  cmd->add_option("--weight-scaling", o->weight_scaling,
                  "auto (c = G, or R G^2 / T for softmax-then-topk), none, or the activation scale c on the expert output");
  cmd->add_option("--scaling-split", o->scaling_split,
                  "linear (up and fc2 by sqrt c; exact for SwiGLU, default) or equal (gate, up, fc2 by c^(1/3))");
  cmd->add_option("--seed", o->seed, "Seed of the MoE model's router init (default: the dense run's train.seed)");
  cmd->add_option("--out", o->out, "Output root for the MoE checkpoint (must hold no checkpoints)")->required();
  cmd->callback([o] {
    const OfflineUpcycleResult r = upcycle_checkpoint(
        {.dense = o->dense,
         .options = {.num_experts = o->num_experts, .topk = o->topk, .granularity = o->granularity,
                     .pre_softmax = o->router == "softmax-then-topk", .weight_scaling = o->weight_scaling,
                     .scaling_split = o->scaling_split},
         .seed = o->seed,
         .out = o->out});
    const GPTConfig& m = r.config.model;
    std::printf("upcycled %s into %lld experts of ffn %lld (granularity %lld), top-%lld, %s router\n"
                "activation scale c = %g: gate x %g, up x %g, fc2 x %g\n"
                "wrote %s (step %lld, no optimizer state)\n"
                "continue with: foundry train RECIPE train.load=%s (model section: num_moe_experts=%lld, "
                "moe_ffn_hidden_size=%lld, moe_router_topk=%lld, moe_router_pre_softmax=%s)\n",
                o->dense.c_str(), static_cast<long long>(m.num_moe_experts),
                static_cast<long long>(m.moe_ffn_hidden_size), static_cast<long long>(o->granularity),
                static_cast<long long>(m.moe_router_topk), o->router.c_str(), r.scales.c, r.scales.gate, r.scales.up,
                r.scales.fc2, r.checkpoint_dir.c_str(), static_cast<long long>(r.step), o->out.c_str(),
                static_cast<long long>(m.num_moe_experts), static_cast<long long>(m.moe_ffn_hidden_size),
                static_cast<long long>(m.moe_router_topk), m.moe_router_pre_softmax ? "true" : "false");
  });
}

}  // namespace foundry::cli

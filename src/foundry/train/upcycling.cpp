// Upcycling from / into checkpoints; see upcycling.h.
#include "foundry/train/upcycling.h"

#include <filesystem>
#include <memory>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/checkpoint/safetensors.h"
#include "foundry/train/pretrained.h"

namespace foundry {

namespace fs = std::filesystem;

DenseCheckpoint read_dense_checkpoint(const std::string& path) {
  DenseCheckpoint d;
  d.dir = resolve_pretrained_checkpoint(path);
  d.trainer_state = read_trainer_state(d.dir);
  d.step = d.trainer_state["step"].get<int64_t>();
  FOUNDRY_CHECK(d.trainer_state.contains("config") && d.trainer_state["config"].is_string(),
                "upcycling: dense checkpoint {}: trainer_state.json holds no \"config\"", d.dir);
  d.config = RunConfig::parse(d.trainer_state["config"].get<std::string>(), d.dir + "/trainer_state.json");
  d.model = resolve_gpt_config(d.config.model);
  return d;
}

DenseSource dense_checkpoint_source(const std::string& dir) {
  auto files = std::make_shared<const ShardedSafetensors>(dir, "model");
  return {.description = fmt::format("dense checkpoint '{}'", dir),
          .read = [files](const std::string& name) -> Tensor {
            if (!files->contains(name)) return Tensor();
            Tensor t = files->read(name);
            return t.dtype() == DType::bf16 || t.dtype() == DType::f16 ? t.to(DType::f32) : t;
          }};
}

nlohmann::json upcycled_from_record(const DenseCheckpoint& dense, const UpcycleOptions& o, const UpcycleScales& s,
                                    bool online) {
  return {{"dense_checkpoint", fs::absolute(dense.dir).lexically_normal().string()},
          {"dense_step", dense.step},
          {"mode", online ? "online" : "offline"},
          {"num_experts", o.num_experts},
          {"topk", o.topk},
          {"granularity", o.granularity},
          {"router", o.pre_softmax ? "softmax-then-topk" : "topk-then-softmax"},
          {"weight_scaling", o.weight_scaling},
          {"scaling_split", o.scaling_split},
          {"c", s.c},
          {"scales", {{"gate", s.gate}, {"up", s.up}, {"fc2", s.fc2}}}};
}

OfflineUpcycleResult upcycle_checkpoint(const OfflineUpcycle& job) {
  FOUNDRY_CHECK(!job.out.empty(), "foundry upcycle: --out is required");
  FOUNDRY_CHECK(!latest_checkpoint(job.out).has_value(),
                "foundry upcycle: --out '{}' already holds checkpoints; choose an empty directory", job.out);
  const DenseCheckpoint dense = read_dense_checkpoint(job.dense);
  OfflineUpcycleResult r;
  r.config = dense.config;
  r.config.model = upcycled_config(dense.model, job.options);
  r.config.model.upcycle_from.clear();
  r.config.train.load.clear();
  if (job.seed) r.config.train.seed = *job.seed;
  r.config = RunConfig::parse(r.config.to_yaml(), "the upcycled MoE config");  // validated as a recipe

  GPTModel moe(r.config.model, r.config.train.seed);
  r.scales = upcycle_model(moe, job.options, dense_checkpoint_source(dense.dir));
  r.step = dense.step;

  // The dense run's position: step, data, RNG (so training continues where the dense run stopped).
  nlohmann::json state = {{"config", r.config.to_yaml()},
                          {"consumed_samples", dense.trainer_state.value("consumed_samples", int64_t{0})},
                          {"skipped_steps", dense.trainer_state.value("skipped_steps", int64_t{0})},
                          {"upcycled_from", upcycled_from_record(dense, job.options, r.scales, /*online=*/false)}};
  state["rng"] = dense.trainer_state.contains("rng")
                     ? dense.trainer_state["rng"]
                     : nlohmann::json{{"seed", r.config.train.seed}, {"offset", 0}};
  if (dense.trainer_state.contains("valid_consumed_samples"))
    state["valid_consumed_samples"] = dense.trainer_state["valid_consumed_samples"];
  CheckpointContents contents{.step = dense.step, .params = &moe.params(), .optimizer = nullptr,
                              .trainer_state = std::move(state)};
  const fs::path tok = fs::path(dense.dir) / "tokenizer";
  std::error_code ec;
  if (fs::is_directory(tok, ec) && !fs::is_empty(tok, ec)) {
    contents.save_tokenizer = [tok](const std::string& dir) {
      fs::copy(tok, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    };
  }
  r.checkpoint_dir = save_checkpoint(contents, job.out);
  return r;
}

}  // namespace foundry

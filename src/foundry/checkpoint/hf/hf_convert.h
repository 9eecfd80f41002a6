// Whole Hugging Face model directories <-> foundry checkpoints (`foundry convert`).
//
//   HF directory                               foundry checkpoint (ROOT/iter_0000000)
//   config.json                                trainer_state.json: "config" (the RunConfig YAML,
//                                              model section from hf_config.h) and "hf"
//                                              {architecture, torch_dtype, dtypes of tensors that
//                                              differ from it, config: the original config.json}
//   model.safetensors | model-0000k-of-0000N.safetensors + model.safetensors.index.json
//                                              model.safetensors (f32, Megatron-Core names; exact:
//                                              bf16 / fp16 widen losslessly)
//   tokenizer.json, tokenizer_config.json,     hf/ (verbatim, for export) and tokenizer/ (a copy of
//   special_tokens_map.json, generation_config  tokenizer.json when foundry's tokenizer reads it)
//
// Export writes the reverse: config.json (the imported one with the model's fields rewritten, or
// a fresh one), the weights in the imported dtype (or --dtype; f32 -> bf16 / fp16 rounds to
// nearest even) sharded as transformers' save_pretrained does (5 GB shards + index), and the
// tokenizer files. HF -> foundry -> HF reproduces every tensor bit for bit.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "foundry/checkpoint/checkpoint.h"
#include "foundry/checkpoint/hf/hf_config.h"

namespace foundry {

// A Hugging Face directory read into a one-process model.
struct HfModel {
  HfArch arch = HfArch::llama;
  nlohmann::json config;      // config.json as read
  DType dtype = DType::f32;   // torch_dtype (else the weights' dtype)
  nlohmann::json dtypes = nlohmann::json::object();  // tensors stored in another dtype: name -> "BF16" ...
  std::unique_ptr<GPTModel> model;
};
// Errors name the directory and the file, key or tensor.
HfModel read_hf_model(const std::string& dir);

// `foundry convert --from-hf DIR --to ROOT`: saves the model as a checkpoint of step 0 under ROOT
// (atomic, checkpoint/checkpoint.h) and returns its directory.
std::string import_hf_checkpoint(const std::string& hf_dir, const std::string& out_root);

struct HfExportOptions {
  std::string architecture;  // "": the imported one, else default_hf_arch(); or a name hf_arch_from_name takes
  std::string dtype;         // "": the imported torch_dtype, else float32; or bfloat16 / float16 / float32
  int64_t max_shard_bytes = kDefaultMaxShardBytes;
};
// `foundry convert --from CKPT --to-hf DIR`: CKPT is a checkpoint, a root or a run directory. DIR
// must not exist or be empty; it is written as DIR.tmp-<pid> and renamed, so a failed export
// leaves nothing half-written under DIR.
void export_hf_checkpoint(const std::string& checkpoint, const std::string& out_dir, const HfExportOptions& options);

}  // namespace foundry

// Hugging Face tensor names and layouts <-> foundry parameters (Megatron-Core names), for the
// architectures of hf_config.h. Every HF tensor is a set of row ranges of one foundry parameter
// (of one expert's slice for expert tensors), so import and export are the same table read in
// opposite directions and copy values bit for bit:
//
//   model.embed_tokens.weight (V, H)                 embedding.word_embeddings.weight
//   model.layers.L.self_attn.q_proj.weight (NH HD, H)  decoder.layers.L.self_attention.linear_qkv.weight
//     k_proj, v_proj (NKV HD, H); Qwen2: .bias too      rows of Megatron's grouped layout: for group
//                                                        g < NKV, [q heads g G..g G+G-1; k_g; v_g]
//                                                        (G = NH / NKV), (NKV (G + 2) HD, H)
//   self_attn.o_proj.weight (H, NH HD)               self_attention.linear_proj.weight
//   self_attn.q_norm / k_norm.weight (HD) (Qwen3)    self_attention.q_layernorm / k_layernorm.weight
//   input_layernorm.weight                           input_layernorm.weight
//   post_attention_layernorm.weight                  pre_mlp_layernorm.weight
//   mlp.gate_proj / up_proj.weight (F, H)            mlp.linear_fc1.weight rows [0, F) / [F, 2F)
//   mlp.down_proj.weight (H, F)                      mlp.linear_fc2.weight
//   Mixtral block_sparse_moe.gate.weight (E, H)      mlp.router.weight
//     block_sparse_moe.experts.e.w1 / w3 (gate / up)  mlp.experts.linear_fc1.weight[e] rows [0, F) / [F, 2F)
//     block_sparse_moe.experts.e.w2 (down)            mlp.experts.linear_fc2.weight[e]
//   Qwen3-MoE mlp.gate.weight, mlp.experts.e.{gate,up,down}_proj.weight: the same places
//   model.norm.weight                                decoder.final_layernorm.weight
//   lm_head.weight (V, H) (absent when tied)         output_layer.weight
#pragma once

#include <string>
#include <vector>

#include "foundry/checkpoint/hf/hf_config.h"
#include "foundry/checkpoint/safetensors.h"
#include "foundry/nn/param.h"

namespace foundry {

struct HfTensorMapping {
  struct Rows {
    int64_t hf_begin = 0;     // first row of the HF tensor (axis 0)
    int64_t param_begin = 0;  // first row of the parameter (of its expert slice)
    int64_t count = 0;
  };
  std::string hf_name;
  Shape hf_shape;
  std::string param;    // foundry parameter name
  int64_t expert = -1;  // the parameter's index on axis 0 (expert tensors), else -1
  std::vector<Rows> rows;
};

// Every HF tensor of the model, in the order transformers' state_dict() lists them.
std::vector<HfTensorMapping> hf_tensor_mappings(const GPTConfig& resolved, HfArch arch);

// Fills every parameter of a one-process model's table from the HF tensors in `files` (any of
// F32 / BF16 / F16, converted exactly to f32). Checked first: every mapped tensor present with
// its shape and a float dtype, every parameter element covered once, no tensor left unused
// (rotary inv_freq buffers excepted; a tied model's lm_head.weight must equal the embedding).
// Errors name the tensor and `dir`.
void import_hf_weights(const GPTConfig& resolved, HfArch arch, const ShardedSafetensors& files,
                       const std::string& dir, ParamTable& params);

// The HF tensors (f32) of a one-process model's table, in state_dict order.
std::vector<std::pair<std::string, Tensor>> export_hf_weights(const GPTConfig& resolved, HfArch arch,
                                                              const ParamTable& params);

}  // namespace foundry

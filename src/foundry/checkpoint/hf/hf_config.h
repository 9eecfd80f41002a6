// Hugging Face `config.json` <-> GPTConfig for the architectures foundry imports and exports
// (transformers' configuration_{llama,mixtral,qwen2,qwen3,qwen3_moe}.py and the matching
// modeling_*.py, which decide what each field means):
//
//   HF key                         GPTConfig                             note
//   vocab_size, hidden_size        vocab_size, hidden_size
//   num_hidden_layers              num_layers
//   num_attention_heads            num_attention_heads
//   num_key_value_heads            num_query_groups                      GQA
//   head_dim                       kv_channels                           Qwen3: may differ from H / NH
//   intermediate_size              ffn_hidden_size                       Mixtral: also the expert size
//   rms_norm_eps                   layernorm_epsilon                     also the q/k norms (Qwen3)
//   rope_theta                     rotary_base                           rotate-half RoPE in both
//   rope_scaling llama3            use_rope_scaling + rope_* factors     others are refused
//   partial_rotary_factor          rotary_percent
//   tie_word_embeddings            share_embeddings_and_output_weights
//   initializer_range              init_method_std
//   (Qwen2)                        add_qkv_bias = true                   q/k/v biases, o_proj none
//   (Qwen3, Qwen3-MoE)             qk_layernorm = true                   q_norm / k_norm over head_dim
//   num_local_experts | num_experts            num_moe_experts
//   num_experts_per_tok                        moe_router_topk
//   moe_intermediate_size (Qwen3-MoE)          moe_ffn_hidden_size
//   norm_topk_prob (Qwen3-MoE; Mixtral: true)  moe_router_pre_softmax = !norm_topk_prob
//        softmax over all experts, top-k, renormalised = softmax over the top-k logits
//   decoder_sparse_step, mlp_only_layers       moe_layer_pattern: layer l is MoE iff l is not in
//                                              mlp_only_layers and (l + 1) % decoder_sparse_step == 0
//   router_aux_loss_coef, router_jitter_noise  moe_aux_loss_coeff, moe_input_jitter_eps
//
// Anything that changes the function and has no GPTConfig equivalent (another activation,
// biases beyond Qwen2's, sliding-window attention, another rope_scaling type) is an error naming
// the key, never a silent difference.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "foundry/models/gpt/gpt_model.h"

namespace foundry {

enum class HfArch { llama, mixtral, qwen2, qwen3, qwen3_moe };

std::string hf_class_name(HfArch arch);  // "LlamaForCausalLM"
std::string hf_model_type(HfArch arch);  // "llama"
// "llama", "LlamaForCausalLM", "qwen3_moe", ... -> the architecture; an error lists the supported ones.
HfArch hf_arch_from_name(const std::string& name);
// The architecture of a config.json (its "architectures" list, else "model_type"); `path` names
// the file in errors.
HfArch hf_arch_of(const nlohmann::json& config, const std::string& path);

// The resolved GPTConfig of an HF config.json.
GPTConfig gpt_config_from_hf(const nlohmann::json& config, const std::string& path);

// The architecture an exported model is written as: Mixtral for an MoE without q/k norms, Qwen3-MoE
// with them; Qwen2 for a dense model with q/k/v biases, Qwen3 with q/k norms, else Llama.
HfArch default_hf_arch(const GPTConfig& resolved);
// Throws, naming the model.* key, when `arch` cannot represent the model exactly.
void check_hf_representable(const GPTConfig& resolved, HfArch arch);

// config.json for `resolved` written as `arch` with torch_dtype `torch_dtype` ("bfloat16",
// "float16", "float32"). Keys of `base` (an earlier config.json of the same architecture, e.g.
// the one the model was imported from; may be empty) that the model does not determine (token
// ids, max_position_embeddings, transformers_version, ...) are kept. max_position_embeddings
// defaults to `max_positions` when base has none.
nlohmann::json hf_config_from_gpt(const GPTConfig& resolved, HfArch arch, const std::string& torch_dtype,
                                  const nlohmann::json& base, int64_t max_positions);

// "bfloat16" | "float16" | "float32" <-> DType (also accepts bf16 / fp16 / fp32 / f32 ...).
DType hf_dtype_from_name(const std::string& name);
std::string hf_torch_dtype_name(DType dtype);

}  // namespace foundry

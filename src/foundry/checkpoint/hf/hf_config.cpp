#include "foundry/checkpoint/hf/hf_config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "foundry/core/check.h"

namespace foundry {

using json = nlohmann::json;

namespace {

struct ArchNames {
  HfArch arch;
  const char* class_name;
  const char* model_type;
};
constexpr ArchNames kArchs[] = {
    {HfArch::llama, "LlamaForCausalLM", "llama"},
    {HfArch::mixtral, "MixtralForCausalLM", "mixtral"},
    {HfArch::qwen2, "Qwen2ForCausalLM", "qwen2"},
    {HfArch::qwen3, "Qwen3ForCausalLM", "qwen3"},
    {HfArch::qwen3_moe, "Qwen3MoeForCausalLM", "qwen3_moe"},
};

const ArchNames& names_of(HfArch a) {
  for (const ArchNames& n : kArchs)
    if (n.arch == a) return n;
  FOUNDRY_FAIL("unknown Hugging Face architecture {}", static_cast<int>(a));
}

std::string supported_list() {
  std::string s;
  for (const ArchNames& n : kArchs) s += fmt::format("{}{} ({})", s.empty() ? "" : ", ", n.class_name, n.model_type);
  return s;
}

// A float config value as the decimal it was written from (1e-06, not 9.99999997e-07).
double shortest(float v) { return std::stod(fmt::format("{}", v)); }

bool is_moe(HfArch a) { return a == HfArch::mixtral || a == HfArch::qwen3_moe; }

// Typed reads of config.json keys with the transformers class defaults; errors name file and key.
struct Reader {
  const json& c;
  const std::string& path;

  bool has(const char* key) const { return c.contains(key) && !c[key].is_null(); }
  int64_t integer(const char* key) const {
    FOUNDRY_CHECK(has(key), "{}: config key \"{}\" is missing", path, key);
    FOUNDRY_CHECK(c[key].is_number_integer(), "{}: config key \"{}\" must be an integer, got {}", path, key,
                  c[key].dump());
    return c[key].get<int64_t>();
  }
  int64_t integer(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    FOUNDRY_CHECK(c[key].is_number(), "{}: config key \"{}\" must be a number, got {}", path, key, c[key].dump());
    return c[key].get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    FOUNDRY_CHECK(c[key].is_boolean(), "{}: config key \"{}\" must be true or false, got {}", path, key,
                  c[key].dump());
    return c[key].get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    FOUNDRY_CHECK(c[key].is_string(), "{}: config key \"{}\" must be a string, got {}", path, key, c[key].dump());
    return c[key].get<std::string>();
  }
};

// RoPE settings: transformers 4.x writes rope_theta + rope_scaling, 5.x rope_parameters.
void read_rope(const Reader& r, HfArch arch, GPTConfig& g) {
  json scaling;
  double theta = arch == HfArch::mixtral ? 1e6 : 10000.0;
  if (r.has("rope_parameters")) {
    const json& p = r.c["rope_parameters"];
    FOUNDRY_CHECK(p.is_object(), "{}: config key \"rope_parameters\" must be an object", r.path);
    const Reader rp{p, r.path};
    theta = rp.number("rope_theta", r.number("rope_theta", theta));
    scaling = p;
  } else {
    theta = r.number("rope_theta", theta);
    if (r.has("rope_scaling")) scaling = r.c["rope_scaling"];
  }
  g.rotary_base = static_cast<float>(theta);
  g.rotary_percent = static_cast<float>(r.number("partial_rotary_factor", 1.0));
  if (scaling.is_null()) return;
  FOUNDRY_CHECK(scaling.is_object(), "{}: config key \"rope_scaling\" must be an object or null", r.path);
  const Reader rs{scaling, r.path};
  const std::string type = rs.string("rope_type", rs.string("type", "default"));
  if (type == "default") return;
  FOUNDRY_CHECK(type == "llama3",
                "{}: rope_scaling type \"{}\" is not supported (foundry implements \"default\" and \"llama3\")", r.path,
                type);
  g.use_rope_scaling = true;
  g.rope_scaling_factor = static_cast<float>(rs.number("factor", 8.0));
  g.rope_low_freq_factor = static_cast<float>(rs.number("low_freq_factor", 1.0));
  g.rope_high_freq_factor = static_cast<float>(rs.number("high_freq_factor", 4.0));
  g.rope_original_max_position_embeddings = rs.integer("original_max_position_embeddings", 8192);
}

// Keys whose non-default value would change the model in a way GPTConfig cannot express.
void refuse_unsupported(const Reader& r, HfArch arch) {
  const std::string act = r.string("hidden_act", r.string("hidden_activation", "silu"));
  FOUNDRY_CHECK(act == "silu", "{}: hidden_act \"{}\" is not supported (foundry's MLP is SwiGLU: \"silu\")", r.path,
                act);
  if (arch != HfArch::qwen2)
    FOUNDRY_CHECK(!r.boolean("attention_bias", false),
                  "{}: attention_bias true (biases on q/k/v and o_proj) is not supported for {}", r.path,
                  hf_model_type(arch));
  FOUNDRY_CHECK(!r.boolean("mlp_bias", false), "{}: mlp_bias true is not supported", r.path);
  FOUNDRY_CHECK(r.number("attention_dropout", 0.0) == 0.0, "{}: attention_dropout {} is not supported (only 0)",
                r.path, r.number("attention_dropout", 0.0));
  if (arch == HfArch::mixtral)
    FOUNDRY_CHECK(!r.has("sliding_window"), "{}: sliding_window {} is not supported (full causal attention only)",
                  r.path, r.c.value("sliding_window", json()).dump());
  if (arch != HfArch::llama && arch != HfArch::mixtral)
    FOUNDRY_CHECK(!r.boolean("use_sliding_window", false),
                  "{}: use_sliding_window true is not supported (full causal attention only)", r.path);
  FOUNDRY_CHECK(r.integer("pretraining_tp", 1) == 1, "{}: pretraining_tp {} is not supported (only 1)", r.path,
                r.integer("pretraining_tp", 1));
}

}  // namespace

std::string hf_class_name(HfArch arch) { return names_of(arch).class_name; }
std::string hf_model_type(HfArch arch) { return names_of(arch).model_type; }

HfArch hf_arch_from_name(const std::string& name) {
  for (const ArchNames& n : kArchs)
    if (name == n.class_name || name == n.model_type) return n.arch;
  FOUNDRY_FAIL("Hugging Face architecture \"{}\" is not supported; supported: {}", name, supported_list());
}

HfArch hf_arch_of(const json& config, const std::string& path) {
  FOUNDRY_CHECK(config.is_object(), "{}: not a JSON object", path);
  if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty()) {
    const json& a = config["architectures"][0];
    FOUNDRY_CHECK(a.is_string(), "{}: \"architectures\" must list strings", path);
    for (const ArchNames& n : kArchs)
      if (a.get<std::string>() == n.class_name) return n.arch;
    FOUNDRY_FAIL("{}: architecture \"{}\" is not supported; supported: {}", path, a.get<std::string>(),
                 supported_list());
  }
  FOUNDRY_CHECK(config.contains("model_type") && config["model_type"].is_string(),
                "{}: neither \"architectures\" nor \"model_type\" says which model this is", path);
  for (const ArchNames& n : kArchs)
    if (config["model_type"].get<std::string>() == n.model_type) return n.arch;
  FOUNDRY_FAIL("{}: model_type \"{}\" is not supported; supported: {}", path, config["model_type"].get<std::string>(),
               supported_list());
}

GPTConfig gpt_config_from_hf(const json& config, const std::string& path) {
  const HfArch arch = hf_arch_of(config, path);
  const Reader r{config, path};
  refuse_unsupported(r, arch);
  GPTConfig g;
  g.vocab_size = r.integer("vocab_size");
  g.hidden_size = r.integer("hidden_size");
  g.num_layers = r.integer("num_hidden_layers");
  g.num_attention_heads = r.integer("num_attention_heads");
  const int64_t default_kv = arch == HfArch::mixtral ? 8 : arch == HfArch::qwen3_moe ? 4 : g.num_attention_heads;
  g.num_query_groups = r.integer("num_key_value_heads", default_kv);
  FOUNDRY_CHECK(g.num_attention_heads > 0 && g.hidden_size > 0, "{}: hidden_size and num_attention_heads must be positive",
                path);
  const int64_t default_head_dim = arch == HfArch::qwen3 ? 128 : g.hidden_size / g.num_attention_heads;
  g.kv_channels = r.integer("head_dim", default_head_dim);
  g.ffn_hidden_size = r.integer("intermediate_size");
  g.layernorm_epsilon = static_cast<float>(r.number("rms_norm_eps", arch == HfArch::mixtral ? 1e-5 : 1e-6));
  g.init_method_std = static_cast<float>(r.number("initializer_range", 0.02));
  g.share_embeddings_and_output_weights = r.boolean("tie_word_embeddings", false);
  g.qk_layernorm = arch == HfArch::qwen3 || arch == HfArch::qwen3_moe;
  g.add_qkv_bias = arch == HfArch::qwen2;
  read_rope(r, arch, g);

  if (arch == HfArch::mixtral) {
    g.num_moe_experts = r.integer("num_local_experts", 8);
    g.moe_router_topk = r.integer("num_experts_per_tok", 2);
    g.moe_ffn_hidden_size = g.ffn_hidden_size;
    g.moe_router_pre_softmax = false;
    g.moe_aux_loss_coeff = {static_cast<float>(r.number("router_aux_loss_coef", 0.001))};
    g.moe_input_jitter_eps = static_cast<float>(r.number("router_jitter_noise", 0.0));
  } else if (arch == HfArch::qwen3_moe) {
    g.num_moe_experts = r.integer("num_experts", 128);
    g.moe_router_topk = r.integer("num_experts_per_tok", 8);
    g.moe_ffn_hidden_size = r.integer("moe_intermediate_size", 768);
    g.moe_router_pre_softmax = !r.boolean("norm_topk_prob", false);
    g.moe_aux_loss_coeff = {static_cast<float>(r.number("router_aux_loss_coef", 0.001))};
    const int64_t step = r.integer("decoder_sparse_step", 1);
    FOUNDRY_CHECK(step >= 1, "{}: decoder_sparse_step must be >= 1, got {}", path, step);
    std::set<int64_t> dense_only;
    if (r.has("mlp_only_layers")) {
      FOUNDRY_CHECK(config["mlp_only_layers"].is_array(), "{}: mlp_only_layers must be a list of layer indices", path);
      for (const json& l : config["mlp_only_layers"]) {
        FOUNDRY_CHECK(l.is_number_integer(), "{}: mlp_only_layers must be a list of layer indices", path);
        dense_only.insert(l.get<int64_t>());
      }
    }
    g.moe_layer_pattern.clear();
    for (int64_t l = 0; l < g.num_layers; ++l)
      g.moe_layer_pattern.push_back(!dense_only.count(l) && (l + 1) % step == 0 ? 1 : 0);
  }
  try {
    return resolve_gpt_config(g);
  } catch (const Error& e) {
    FOUNDRY_FAIL("{}: {}", path, e.message());
  }
}

HfArch default_hf_arch(const GPTConfig& c) {
  if (c.num_moe_experts > 0) return c.qk_layernorm ? HfArch::qwen3_moe : HfArch::mixtral;
  if (c.add_qkv_bias) return HfArch::qwen2;
  return c.qk_layernorm ? HfArch::qwen3 : HfArch::llama;
}

void check_hf_representable(const GPTConfig& c, HfArch arch) {
  const std::string name = hf_class_name(arch);
  auto need = [&](bool ok, const std::string& what) {
    FOUNDRY_CHECK(ok, "cannot export as {}: {}", name, what);
  };
  need(is_moe(arch) == (c.num_moe_experts > 0),
       is_moe(arch) ? "the model has no MoE layers (model.num_moe_experts = 0)" : "the model has MoE layers");
  const bool wants_qk_norm = arch == HfArch::qwen3 || arch == HfArch::qwen3_moe;
  need(c.qk_layernorm == wants_qk_norm, wants_qk_norm ? "it has q/k norms, the model has none (model.qk_layernorm)"
                                                      : "model.qk_layernorm = true has no equivalent");
  need(!c.add_qkv_bias || arch == HfArch::qwen2, "model.add_qkv_bias = true has no equivalent (use qwen2)");
  need(c.add_qkv_bias || arch != HfArch::qwen2, "Qwen2 has q/k/v biases, the model has none (model.add_qkv_bias)");
  need(arch != HfArch::qwen2 || c.kv_channels * c.num_attention_heads == c.hidden_size,
       "Qwen2's head dimension is hidden_size / num_attention_heads (model.kv_channels differs)");
  if (c.num_moe_experts == 0) return;
  need(c.moe_router_score_function == "softmax",
       fmt::format("model.moe_router_score_function = {} (only softmax)", c.moe_router_score_function));
  need(c.moe_router_num_groups == 0, "group-limited routing (model.moe_router_num_groups)");
  need(c.moe_router_topk_scaling_factor == 0.f, "model.moe_router_topk_scaling_factor");
  need(!c.moe_router_enable_expert_bias, "the expert bias (model.moe_router_enable_expert_bias)");
  need(c.moe_shared_expert_intermediate_size == 0, "shared experts (model.moe_shared_expert_intermediate_size)");
  if (arch == HfArch::mixtral) {
    need(!c.moe_router_pre_softmax, "Mixtral routes top-k then softmax (model.moe_router_pre_softmax = true)");
    for (int64_t l = 0; l < c.num_layers; ++l)
      need(c.is_moe_layer(l), fmt::format("layer {} is dense; every Mixtral layer is MoE (model.moe_layer_freq)", l));
  }
}

json hf_config_from_gpt(const GPTConfig& c, HfArch arch, const std::string& torch_dtype, const json& base,
                        int64_t max_positions) {
  check_hf_representable(c, arch);
  json out = base.is_object() ? base : json::object();
  // Keys this function decides; an earlier value of them never survives.
  for (const char* k : {"rope_parameters", "rope_scaling", "dtype"}) out.erase(k);
  out["architectures"] = json::array({hf_class_name(arch)});
  out["model_type"] = hf_model_type(arch);
  out["vocab_size"] = c.vocab_size;
  out["hidden_size"] = c.hidden_size;
  out["intermediate_size"] = c.ffn_hidden_size;
  out["num_hidden_layers"] = c.num_layers;
  out["num_attention_heads"] = c.num_attention_heads;
  out["num_key_value_heads"] = c.num_query_groups;
  if (arch != HfArch::qwen2) out["head_dim"] = c.kv_channels;  // Qwen2Config has none: H / NH
  out["hidden_act"] = "silu";
  if (!out.contains("max_position_embeddings")) out["max_position_embeddings"] = max_positions;
  out["initializer_range"] = shortest(c.init_method_std);
  out["rms_norm_eps"] = shortest(c.layernorm_epsilon);
  out["rope_theta"] = shortest(c.rotary_base);
  if (c.rotary_percent != 1.f) out["partial_rotary_factor"] = shortest(c.rotary_percent);
  else out.erase("partial_rotary_factor");
  out["rope_scaling"] = c.use_rope_scaling ? json{{"rope_type", "llama3"},
                                                  {"factor", shortest(c.rope_scaling_factor)},
                                                  {"low_freq_factor", shortest(c.rope_low_freq_factor)},
                                                  {"high_freq_factor", shortest(c.rope_high_freq_factor)},
                                                  {"original_max_position_embeddings",
                                                   c.rope_original_max_position_embeddings}}
                                           : json();
  out["tie_word_embeddings"] = c.share_embeddings_and_output_weights;
  out["torch_dtype"] = torch_dtype;
  if (!out.contains("use_cache")) out["use_cache"] = true;
  out["attention_dropout"] = 0.0;
  if (arch == HfArch::llama || arch == HfArch::qwen3 || arch == HfArch::qwen3_moe) out["attention_bias"] = false;
  if (arch == HfArch::llama) {
    out["mlp_bias"] = false;
    out["pretraining_tp"] = 1;
  }
  if (arch == HfArch::qwen2 || arch == HfArch::qwen3 || arch == HfArch::qwen3_moe) {
    out["use_sliding_window"] = false;
    if (!out.contains("max_window_layers")) out["max_window_layers"] = c.num_layers;
  }
  if (arch == HfArch::mixtral) {
    out["intermediate_size"] = c.moe_ffn_hidden_size;  // every layer is MoE: the experts' size
    out["sliding_window"] = json();
    out["num_local_experts"] = c.num_moe_experts;
    out["num_experts_per_tok"] = c.moe_router_topk;
    out["router_aux_loss_coef"] = shortest(c.moe_aux_loss_coeff.empty() ? 0.f : c.moe_aux_loss_coeff.front());
    out["router_jitter_noise"] = shortest(c.moe_input_jitter_eps);
    if (!out.contains("output_router_logits")) out["output_router_logits"] = false;
  }
  if (arch == HfArch::qwen3_moe) {
    out["num_experts"] = c.num_moe_experts;
    out["num_experts_per_tok"] = c.moe_router_topk;
    out["moe_intermediate_size"] = c.moe_ffn_hidden_size;
    out["norm_topk_prob"] = !c.moe_router_pre_softmax;
    out["router_aux_loss_coef"] = shortest(c.moe_aux_loss_coeff.empty() ? 0.f : c.moe_aux_loss_coeff.front());
    if (!out.contains("output_router_logits")) out["output_router_logits"] = false;
    // Keep the base's sparse step and dense-layer list when they give this model's pattern.
    const Reader r{out, "config.json"};
    const int64_t step = std::max<int64_t>(1, r.integer("decoder_sparse_step", 1));
    bool same = out.contains("mlp_only_layers") && out["mlp_only_layers"].is_array();
    std::set<int64_t> dense_only;
    if (same)
      for (const json& l : out["mlp_only_layers"]) dense_only.insert(l.is_number_integer() ? l.get<int64_t>() : -1);
    for (int64_t l = 0; l < c.num_layers && same; ++l)
      same = c.is_moe_layer(l) == (!dense_only.count(l) && (l + 1) % step == 0);
    if (!same) {
      out["decoder_sparse_step"] = 1;
      json dense = json::array();
      for (int64_t l = 0; l < c.num_layers; ++l)
        if (!c.is_moe_layer(l)) dense.push_back(l);
      out["mlp_only_layers"] = dense;
    }
  }
  return out;
}

DType hf_dtype_from_name(const std::string& name) {
  if (name == "bfloat16" || name == "bf16") return DType::bf16;
  if (name == "float16" || name == "fp16" || name == "f16" || name == "half") return DType::f16;
  if (name == "float32" || name == "fp32" || name == "f32" || name == "float") return DType::f32;
  FOUNDRY_FAIL("dtype \"{}\" is not supported for Hugging Face checkpoints (bfloat16, float16 or float32)", name);
}

std::string hf_torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::f32: return "float32";
    default: FOUNDRY_FAIL("dtype {} is not a Hugging Face weight dtype", dtype_name(dtype));
  }
}

}  // namespace foundry

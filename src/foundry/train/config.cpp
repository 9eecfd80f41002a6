#include "foundry/train/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "foundry/core/check.h"
#include "foundry/core/did_you_mean.h"
#include "foundry/core/yaml_sections.h"
#include "foundry/models/gpt/upcycle.h"
#include "foundry/optim/lr_schedule.h"

namespace foundry {

namespace {

// One settable key: how to read it from a YAML scalar and how to print it.
struct Field {
  std::function<void(RunConfig&, const YAML::Node&)> set;
  std::function<std::string(const RunConfig&)> get;
};

template <class S, class T>
Field make_field(S RunConfig::*section, T S::*member, const char* type_name, const std::string& key) {
  Field f;
  f.set = [=](RunConfig& c, const YAML::Node& n) {
    FOUNDRY_CHECK(n.IsDefined() && !n.IsNull(), "config key '{}': no value (quote values that YAML reads as "
                  "special, e.g. '%')", key);
    try {
      (c.*section).*member = n.as<T>();
    } catch (const YAML::Exception&) {
      FOUNDRY_FAIL("config key '{}': value '{}' is not a valid {}", key,
                   n.IsScalar() ? n.Scalar() : std::string("<non-scalar>"), type_name);
    }
  };
  f.get = [=](const RunConfig& c) {
    const T& v = (c.*section).*member;
    YAML::Emitter out;
    out.SetBoolFormat(YAML::TrueFalseBool);
    out << YAML::Flow;
    if constexpr (std::is_same_v<T, std::string>) out << YAML::DoubleQuoted << v;
    else if constexpr (std::is_same_v<T, float>) out << fmt::format("{}", v);  // shortest round trip
    else out << v;
    return std::string(out.c_str());
  };
  return f;
}

// A list of strings may also be written as one space-separated string (Megatron's --data-path).
template <class S>
Field make_list_field(S RunConfig::*section, std::vector<std::string> S::*member, const std::string& key) {
  Field f = make_field(section, member, "list of strings", key);
  auto set_list = f.set;
  f.set = [=](RunConfig& c, const YAML::Node& n) {
    if (n.IsNull()) {
      ((c.*section).*member).clear();
    } else if (n.IsScalar()) {
      std::vector<std::string> words;
      std::istringstream in(n.Scalar());
      for (std::string w; in >> w;) words.push_back(w);
      (c.*section).*member = words;
    } else {
      set_list(c, n);
    }
  };
  return f;
}

// Megatron's list form of --moe-layer-freq as a string: a sum of bracketed lists, each optionally
// repeated, e.g. "([0]*3+[1]*58)" or "[1,0,1,0]".
std::vector<int64_t> parse_layer_pattern(std::string text, const std::string& key) {
  std::erase_if(text, [](char ch) { return std::isspace(static_cast<unsigned char>(ch)); });
  if (text.size() >= 2 && text.front() == '(' && text.back() == ')') text = text.substr(1, text.size() - 2);
  std::vector<int64_t> out;
  size_t i = 0;
  auto fail = [&] {
    FOUNDRY_FAIL("config key '{}': '{}' is not an integer or a layer pattern like \"([0]*3+[1]*58)\"", key, text);
  };
  auto number = [&] {
    const size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || i - start > 9) fail();
    return std::stoll(text.substr(start, i - start));
  };
  while (i < text.size()) {
    if (text[i] != '[') fail();
    ++i;
    std::vector<int64_t> term;
    while (i < text.size() && text[i] != ']') {
      term.push_back(number());
      if (i < text.size() && text[i] == ',') ++i;
    }
    if (i >= text.size()) fail();
    ++i;  // ']'
    int64_t repeat = 1;
    if (i < text.size() && text[i] == '*') ++i, repeat = number();
    for (int64_t r = 0; r < repeat; ++r) out.insert(out.end(), term.begin(), term.end());
    if (i < text.size()) {
      if (text[i] != '+' || i + 1 == text.size()) fail();  // a '+' needs a term after it
      ++i;
    }
  }
  if (out.empty()) fail();
  return out;
}

// model.moe_layer_freq: an integer N (every N-th layer is MoE), a YAML list of 0/1 per layer, or
// Megatron's pattern string.
Field moe_layer_freq_field() {
  const std::string key = "model.moe_layer_freq";
  Field f;
  f.set = [key](RunConfig& c, const YAML::Node& n) {
    FOUNDRY_CHECK(n.IsDefined() && !n.IsNull(), "config key '{}': no value", key);
    if (n.IsSequence()) {
      std::vector<int64_t> pattern;
      for (const auto& v : n) {
        try {
          pattern.push_back(v.as<int64_t>());
        } catch (const YAML::Exception&) {
          FOUNDRY_FAIL("config key '{}': list entry '{}' is not an integer", key, v.IsScalar() ? v.Scalar() : "<non-scalar>");
        }
      }
      c.model.moe_layer_pattern = pattern;
      return;
    }
    FOUNDRY_CHECK(n.IsScalar(), "config key '{}': expected an integer or a list", key);
    try {
      c.model.moe_layer_freq = n.as<int64_t>();
      c.model.moe_layer_pattern.clear();
    } catch (const YAML::Exception&) {
      c.model.moe_layer_pattern = parse_layer_pattern(n.Scalar(), key);
    }
  };
  f.get = [](const RunConfig& c) {
    if (c.model.moe_layer_pattern.empty()) return std::to_string(c.model.moe_layer_freq);
    return fmt::format("[{}]", fmt::join(c.model.moe_layer_pattern, ", "));
  };
  return f;
}

// A list of numbers may also be written as one number (Megatron's --moe-aux-loss-coeff).
Field number_list_field(std::vector<float> GPTConfig::*member, const std::string& key) {
  Field f = make_field(&RunConfig::model, member, "number or list of numbers", key);
  auto set_list = f.set;
  f.set = [=](RunConfig& c, const YAML::Node& n) {
    if (!n.IsScalar()) return set_list(c, n);
    try {
      c.model.*member = {n.as<float>()};
    } catch (const YAML::Exception&) {
      FOUNDRY_FAIL("config key '{}': value '{}' is not a number or a list of numbers", key, n.Scalar());
    }
  };
  return f;
}

const std::map<std::string, std::map<std::string, Field>>& fields() {
  static const auto table = [] {
    std::map<std::string, std::map<std::string, Field>> t;
    auto& m = t["model"];
    auto mk = [&](const char* key, auto member, const char* type) {
      m[key] = make_field(&RunConfig::model, member, type, std::string("model.") + key);
    };
    mk("vocab_size", &GPTConfig::vocab_size, "integer");
    mk("hidden_size", &GPTConfig::hidden_size, "integer");
    mk("num_layers", &GPTConfig::num_layers, "integer");
    mk("num_attention_heads", &GPTConfig::num_attention_heads, "integer");
    mk("num_query_groups", &GPTConfig::num_query_groups, "integer");
    mk("kv_channels", &GPTConfig::kv_channels, "integer");
    mk("ffn_hidden_size", &GPTConfig::ffn_hidden_size, "integer");
    mk("layernorm_epsilon", &GPTConfig::layernorm_epsilon, "number");
    mk("qk_layernorm", &GPTConfig::qk_layernorm, "boolean");
    mk("add_qkv_bias", &GPTConfig::add_qkv_bias, "boolean");
    mk("rotary_base", &GPTConfig::rotary_base, "number");
    mk("rotary_percent", &GPTConfig::rotary_percent, "number");
    mk("use_rope_scaling", &GPTConfig::use_rope_scaling, "boolean");
    mk("rope_scaling_factor", &GPTConfig::rope_scaling_factor, "number");
    mk("rope_low_freq_factor", &GPTConfig::rope_low_freq_factor, "number");
    mk("rope_high_freq_factor", &GPTConfig::rope_high_freq_factor, "number");
    mk("rope_original_max_position_embeddings", &GPTConfig::rope_original_max_position_embeddings, "integer");
    mk("init_method_std", &GPTConfig::init_method_std, "number");
    mk("share_embeddings_and_output_weights", &GPTConfig::share_embeddings_and_output_weights, "boolean");
    mk("bf16", &GPTConfig::bf16, "boolean");
    mk("num_moe_experts", &GPTConfig::num_moe_experts, "integer");
    m["moe_layer_freq"] = moe_layer_freq_field();
    mk("moe_ffn_hidden_size", &GPTConfig::moe_ffn_hidden_size, "integer");
    mk("moe_router_topk", &GPTConfig::moe_router_topk, "integer");
    mk("moe_router_score_function", &GPTConfig::moe_router_score_function, "string");
    mk("moe_router_pre_softmax", &GPTConfig::moe_router_pre_softmax, "boolean");
    mk("moe_router_num_groups", &GPTConfig::moe_router_num_groups, "integer");
    mk("moe_router_group_topk", &GPTConfig::moe_router_group_topk, "integer");
    mk("moe_router_topk_scaling_factor", &GPTConfig::moe_router_topk_scaling_factor, "number");
    mk("moe_router_enable_expert_bias", &GPTConfig::moe_router_enable_expert_bias, "boolean");
    mk("moe_router_bias_update_rate", &GPTConfig::moe_router_bias_update_rate, "number");
    m["moe_router_load_balancing_type"] = make_list_field(&RunConfig::model, &GPTConfig::moe_router_load_balancing_type,
                                                          "model.moe_router_load_balancing_type");
    m["moe_aux_loss_coeff"] = number_list_field(&GPTConfig::moe_aux_loss_coeff, "model.moe_aux_loss_coeff");
    mk("moe_z_loss_coeff", &GPTConfig::moe_z_loss_coeff, "number");
    mk("moe_input_jitter_eps", &GPTConfig::moe_input_jitter_eps, "number");
    mk("moe_expert_capacity_factor", &GPTConfig::moe_expert_capacity_factor, "number");
    mk("moe_token_drop_policy", &GPTConfig::moe_token_drop_policy, "string");
    mk("moe_token_dispatcher_type", &GPTConfig::moe_token_dispatcher_type, "string");
    mk("moe_pad_expert_input_to_capacity", &GPTConfig::moe_pad_expert_input_to_capacity, "boolean");
    mk("moe_shared_expert_intermediate_size", &GPTConfig::moe_shared_expert_intermediate_size, "integer");
    mk("moe_shared_expert_gate", &GPTConfig::moe_shared_expert_gate, "boolean");
    mk("upcycle_from", &GPTConfig::upcycle_from, "string");
    mk("upcycle_weight_scaling", &GPTConfig::upcycle_weight_scaling, "string");
    mk("upcycle_scaling_split", &GPTConfig::upcycle_scaling_split, "string");
    auto& tr = t["train"];
    auto tk = [&](const char* key, auto member, const char* type) {
      tr[key] = make_field(&RunConfig::train, member, type, std::string("train.") + key);
    };
    tk("micro_batch_size", &TrainConfig::micro_batch_size, "integer");
    tk("seq_length", &TrainConfig::seq_length, "integer");
    tk("train_iters", &TrainConfig::train_iters, "integer");
    tk("lr", &TrainConfig::lr, "number");
    tk("weight_decay", &TrainConfig::weight_decay, "number");
    tk("adam_beta1", &TrainConfig::adam_beta1, "number");
    tk("adam_beta2", &TrainConfig::adam_beta2, "number");
    tk("adam_eps", &TrainConfig::adam_eps, "number");
    tk("clip_grad", &TrainConfig::clip_grad, "number");
    tk("seed", &TrainConfig::seed, "integer");
    tk("log_interval", &TrainConfig::log_interval, "integer");
    tk("threads", &TrainConfig::threads, "integer");
    tk("global_batch_size", &TrainConfig::global_batch_size, "integer");
    tk("min_lr", &TrainConfig::min_lr, "number");
    tk("lr_warmup_iters", &TrainConfig::lr_warmup_iters, "integer");
    tk("lr_decay_iters", &TrainConfig::lr_decay_iters, "integer");
    tk("lr_decay_style", &TrainConfig::lr_decay_style, "string");
    tk("lr_wsd_decay_iters", &TrainConfig::lr_wsd_decay_iters, "integer");
    tk("lr_wsd_decay_style", &TrainConfig::lr_wsd_decay_style, "string");
    tk("eval_interval", &TrainConfig::eval_interval, "integer");
    tk("eval_iters", &TrainConfig::eval_iters, "integer");
    tk("save_interval", &TrainConfig::save_interval, "integer");
    tk("save_keep_last", &TrainConfig::save_keep_last, "integer");
    tk("output_dir", &TrainConfig::output_dir, "string");
    tk("load", &TrainConfig::load, "string");
    tk("nan_action", &TrainConfig::nan_action, "string");
    tk("use_distributed_optimizer", &TrainConfig::use_distributed_optimizer, "boolean");
    tk("overlap_grad_reduce", &TrainConfig::overlap_grad_reduce, "boolean");
    tk("ddp_bucket_size", &TrainConfig::ddp_bucket_size, "integer");
    tk("log_all_ranks", &TrainConfig::log_all_ranks, "boolean");
    auto& d = t["data"];
    d["data_path"] = make_list_field(&RunConfig::data, &DataConfig::data_path, "data.data_path");
    d["text_files"] = make_list_field(&RunConfig::data, &DataConfig::text_files, "data.text_files");
    auto dk = [&](const char* key, auto member, const char* type) {
      d[key] = make_field(&RunConfig::data, member, type, std::string("data.") + key);
    };
    dk("split", &DataConfig::split, "string");
    dk("tokenizer_model", &DataConfig::tokenizer_model, "string");
    dk("mock_data", &DataConfig::mock_data, "boolean");
    dk("text_document_separator", &DataConfig::text_document_separator, "string");
    dk("tokenizer_vocab_size", &DataConfig::tokenizer_vocab_size, "integer");
    auto& par = t["parallel"];
    auto pk = [&](const char* key, auto member, const char* type) {
      par[key] = make_field(&RunConfig::parallel, member, type, std::string("parallel.") + key);
    };
    pk("tensor_model_parallel_size", &ParallelConfig::tensor_model_parallel_size, "integer");
    pk("context_parallel_size", &ParallelConfig::context_parallel_size, "integer");
    pk("expert_model_parallel_size", &ParallelConfig::expert_model_parallel_size, "integer");
    pk("expert_tensor_parallel_size", &ParallelConfig::expert_tensor_parallel_size, "integer");
    pk("pipeline_model_parallel_size", &ParallelConfig::pipeline_model_parallel_size, "integer");
    pk("virtual_pipeline_model_parallel_size", &ParallelConfig::virtual_pipeline_model_parallel_size, "integer");
    pk("decoder_first_pipeline_num_layers", &ParallelConfig::decoder_first_pipeline_num_layers, "integer");
    pk("decoder_last_pipeline_num_layers", &ParallelConfig::decoder_last_pipeline_num_layers, "integer");
    pk("sequence_parallel", &ParallelConfig::sequence_parallel, "boolean");
    pk("order", &ParallelConfig::order, "string");
    return t;
  }();
  return table;
}

const Field& find_field(const std::string& section, const std::string& key, const std::string& where) {
  const auto& t = fields();
  auto s = t.find(section);
  FOUNDRY_CHECK(s != t.end(), "{}: unknown config section '{}'{}", where, section, did_you_mean(section, t, ""));
  auto f = s->second.find(key);
  FOUNDRY_CHECK(f != s->second.end(), "{}: unknown config key '{}.{}'{}", where, section, key,
                did_you_mean(key, s->second, section + "."));
  return f->second;
}

void validate(RunConfig& c) {
  FOUNDRY_CHECK(c.train.micro_batch_size > 0, "train.micro_batch_size must be positive, got {}", c.train.micro_batch_size);
  FOUNDRY_CHECK(c.train.seq_length > 0, "train.seq_length must be positive, got {}", c.train.seq_length);
  FOUNDRY_CHECK(c.train.train_iters >= 0, "train.train_iters must be >= 0, got {}", c.train.train_iters);
  FOUNDRY_CHECK(c.train.lr >= 0, "train.lr must be >= 0, got {}", c.train.lr);
  FOUNDRY_CHECK(c.train.log_interval > 0, "train.log_interval must be positive, got {}", c.train.log_interval);
  FOUNDRY_CHECK(c.train.threads >= 0, "train.threads must be >= 0, got {}", c.train.threads);
  FOUNDRY_CHECK(c.model.rotary_percent > 0 && c.model.rotary_percent <= 1,
                "model.rotary_percent must be in (0, 1], got {}", c.model.rotary_percent);
  const TrainConfig& t = c.train;
  FOUNDRY_CHECK(t.global_batch_size >= 0, "train.global_batch_size must be >= 0, got {}", t.global_batch_size);
  if (t.global_batch_size > 0)
    FOUNDRY_CHECK(t.global_batch_size % t.micro_batch_size == 0,
                  "train.global_batch_size {} is not a multiple of train.micro_batch_size {}",
                  t.global_batch_size, t.micro_batch_size);
  FOUNDRY_CHECK(t.min_lr >= 0 && t.min_lr <= t.lr, "train.min_lr {} must be in [0, train.lr = {}]", t.min_lr, t.lr);
  FOUNDRY_CHECK(t.lr_warmup_iters >= 0, "train.lr_warmup_iters must be >= 0, got {}", t.lr_warmup_iters);
  FOUNDRY_CHECK(t.lr_decay_iters >= 0, "train.lr_decay_iters must be >= 0, got {}", t.lr_decay_iters);
  LRSchedule::parse_style(t.lr_decay_style);
  LRSchedule::parse_wsd_style(t.lr_wsd_decay_style);
  FOUNDRY_CHECK(t.eval_interval >= 0 && t.eval_iters > 0,
                "train.eval_interval must be >= 0 and train.eval_iters > 0 (got {} and {})", t.eval_interval, t.eval_iters);
  FOUNDRY_CHECK(t.save_interval >= 0 && t.save_keep_last >= 0,
                "train.save_interval and train.save_keep_last must be >= 0 (got {} and {})", t.save_interval, t.save_keep_last);
  FOUNDRY_CHECK(t.ddp_bucket_size > 0, "train.ddp_bucket_size must be positive (parameters per bucket), got {}",
                t.ddp_bucket_size);
  FOUNDRY_CHECK(t.nan_action == "stop" || t.nan_action == "skip",
                "train.nan_action '{}' is not one of stop, skip", t.nan_action);
  FOUNDRY_CHECK(!t.output_dir.empty(), "train.output_dir must not be empty");
  resolve_gpt_config(c.model, /*require_vocab=*/false);  // every model.* key, MoE router included
  check_weight_scaling(c.model.upcycle_weight_scaling, "model.upcycle_weight_scaling");
  check_scaling_split(c.model.upcycle_scaling_split, "model.upcycle_scaling_split");
  FOUNDRY_CHECK(c.data.tokenizer_vocab_size > 256, "data.tokenizer_vocab_size must exceed 256 (the byte alphabet), got {}",
                c.data.tokenizer_vocab_size);
}

}  // namespace

RunConfig RunConfig::parse(const std::string& text, const std::string& source,
                           const std::vector<std::string>& overrides) {
  RunConfig c;
  for_each_yaml_key(text, source, fields(), "a recipe is a map of sections (model:, train:)",
                    [&](const std::string& section, const std::string& key, const YAML::Node& value) {
                      find_field(section, key, source).set(c, value);
                    });
  for (const auto& o : overrides) c.set_from_assignment(o);
  validate(c);
  return c;
}

RunConfig RunConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  FOUNDRY_CHECK(in.good(), "cannot open recipe '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path, overrides);
}

void RunConfig::apply_override(const std::string& assignment) {
  set_from_assignment(assignment);
  validate(*this);
}

void RunConfig::set_from_assignment(const std::string& assignment) {
  const YamlAssignment a = parse_yaml_assignment(assignment);
  find_field(a.section, a.key, "override").set(*this, a.value);
}

std::string RunConfig::to_yaml() const {
  std::string out;
  for (const auto& [section, keys] : fields()) {
    out += section + ":\n";
    for (const auto& [key, f] : keys) out += "  " + key + ": " + f.get(*this) + "\n";
  }
  return out;
}

}  // namespace foundry

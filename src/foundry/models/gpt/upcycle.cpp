// Dense -> MoE upcycling; the layout, the scaling rule and their sources are in upcycle.h.
#include "foundry/models/gpt/upcycle.h"

#include <cmath>
#include <cstdlib>

namespace foundry {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The rules every (N, T, G) must satisfy against the dense intermediate size F.
void check_options(const UpcycleOptions& o, int64_t F) {
  FOUNDRY_CHECK(o.num_experts >= 1, "upcycling: num_experts (--num-experts / model.num_moe_experts) must be >= 1, got {}",
                o.num_experts);
  FOUNDRY_CHECK(o.topk >= 1, "upcycling: topk (--topk / model.moe_router_topk) must be >= 1, got {}", o.topk);
  FOUNDRY_CHECK(o.topk <= o.num_experts, "upcycling: topk {} exceeds num_experts {} (--topk / --num-experts)", o.topk,
                o.num_experts);
  FOUNDRY_CHECK(o.topk > 1 || o.pre_softmax,
                "upcycling: topk 1 with the topk-then-softmax router gives every token probability 1 (no router "
                "gradient; Megatron refuses it too): use --router softmax-then-topk (moe_router_pre_softmax)");
  FOUNDRY_CHECK(o.granularity >= 1, "upcycling: granularity (--granularity) must be >= 1, got {}", o.granularity);
  FOUNDRY_CHECK(F % o.granularity == 0,
                "upcycling: the dense ffn_hidden_size {} is not divisible by granularity {} (--granularity; "
                "expert size F / G = model.moe_ffn_hidden_size)", F, o.granularity);
  FOUNDRY_CHECK(o.num_experts % o.granularity == 0,
                "upcycling: num_experts {} is not divisible by granularity {} (--num-experts / --granularity: "
                "N = R G experts, R copies of the G shards)", o.num_experts, o.granularity);
  FOUNDRY_CHECK(o.granularity == 1 || o.topk % o.granularity == 0,
                "upcycling: topk {} is not divisible by granularity {} (--topk / --granularity: the router must "
                "select whole virtual groups of G experts)", o.topk, o.granularity);
  check_weight_scaling(o.weight_scaling, "--weight-scaling / model.upcycle_weight_scaling");
  check_scaling_split(o.scaling_split, "--scaling-split / model.upcycle_scaling_split");
}

// spec's blocks; an unsharded parameter is one block covering it.
std::vector<ShardBlock> blocks_of(const ParamSpec& s) {
  if (s.sharded()) return s.blocks;
  ShardBlock b;
  for (int d = 0; d < s.shape.ndim(); ++d) {
    b.local_offset.push_back(0);
    b.global_offset.push_back(0);
    b.extent.push_back(s.shape[d]);
  }
  return {b};
}

Tensor read_dense(const DenseSource& dense, const std::string& name, const std::string& for_what) {
  Tensor t = dense.read(name);
  FOUNDRY_CHECK(t.defined(), "upcycling: {} has no tensor '{}' (needed for '{}')", dense.description, name, for_what);
  FOUNDRY_CHECK(t.dtype() == DType::f32, "upcycling: {}: tensor '{}' is {}, expected f32", dense.description, name,
                dtype_name(t.dtype()));
  return t;
}

// experts.linear_fc1 (N, 2f, H): expert e = [gate rows; up rows] of shard e mod G, scaled.
void fill_expert_fc1(const ParamSpec& spec, Tensor& local, const Tensor& dense, const UpcycleOptions& o,
                     const UpcycleScales& sc, const std::string& dense_name) {
  const Shape& full = spec.full_shape();
  const int64_t N = full[0], f = full[1] / 2, H = full[2], G = o.granularity, F = f * G;
  FOUNDRY_CHECK(dense.shape() == Shape({2 * F, H}),
                "upcycling: dense '{}' is {}, expected ({}, {}) = (2 F, H) for {} experts of size {} at granularity {}",
                dense_name, dense.shape().str(), 2 * F, H, N, f, G);
  const float* D = dense.ptr<float>();
  float* L = local.ptr<float>();
  const int64_t s1 = spec.shape[1], s2 = spec.shape[2];  // local strides
  for (const ShardBlock& b : blocks_of(spec)) {
    for (int64_t e = 0; e < b.extent[0]; ++e) {
      const int64_t shard = (b.global_offset[0] + e) % G;
      for (int64_t r = 0; r < b.extent[1]; ++r) {
        const int64_t gr = b.global_offset[1] + r;  // row of the expert's [gate; up]
        const bool gate = gr < f;
        const int64_t dense_row = gate ? shard * f + gr : F + shard * f + (gr - f);
        const double scale = gate ? sc.gate : sc.up;
        const float* src = D + dense_row * H + b.global_offset[2];
        float* dst = L + ((b.local_offset[0] + e) * s1 + b.local_offset[1] + r) * s2 + b.local_offset[2];
        for (int64_t k = 0; k < b.extent[2]; ++k) dst[k] = static_cast<float>(static_cast<double>(src[k]) * scale);
      }
    }
  }
}

// experts.linear_fc2 (N, H, f): expert e = columns of shard e mod G, scaled.
void fill_expert_fc2(const ParamSpec& spec, Tensor& local, const Tensor& dense, const UpcycleOptions& o,
                     const UpcycleScales& sc, const std::string& dense_name) {
  const Shape& full = spec.full_shape();
  const int64_t N = full[0], H = full[1], f = full[2], G = o.granularity, F = f * G;
  FOUNDRY_CHECK(dense.shape() == Shape({H, F}),
                "upcycling: dense '{}' is {}, expected ({}, {}) = (H, F) for {} experts of size {} at granularity {}",
                dense_name, dense.shape().str(), H, F, N, f, G);
  const float* D = dense.ptr<float>();
  float* L = local.ptr<float>();
  const int64_t s1 = spec.shape[1], s2 = spec.shape[2];
  for (const ShardBlock& b : blocks_of(spec)) {
    for (int64_t e = 0; e < b.extent[0]; ++e) {
      const int64_t shard = (b.global_offset[0] + e) % G;
      for (int64_t h = 0; h < b.extent[1]; ++h) {
        const float* src = D + (b.global_offset[1] + h) * F + shard * f + b.global_offset[2];
        float* dst = L + ((b.local_offset[0] + e) * s1 + b.local_offset[1] + h) * s2 + b.local_offset[2];
        for (int64_t k = 0; k < b.extent[2]; ++k) dst[k] = static_cast<float>(static_cast<double>(src[k]) * sc.fc2);
      }
    }
  }
}

// router (N, H): W[e] = W0[e div G] from the model's own init W0 (Megatron: the first R rows, each
// repeated G times).
void regroup_router(const ParamSpec& spec, Tensor& w, const UpcycleOptions& o) {
  FOUNDRY_CHECK(!spec.sharded(), "upcycling: router '{}' is sharded; routers are replicated", spec.name);
  FOUNDRY_CHECK(spec.shape.ndim() == 2 && spec.shape[0] == o.num_experts,
                "upcycling: router '{}' is {}, expected {} rows (num_experts)", spec.name, spec.shape.str(),
                o.num_experts);
  if (o.granularity == 1) return;
  const int64_t N = spec.shape[0], H = spec.shape[1];
  const Tensor w0 = w.clone();
  for (int64_t e = 0; e < N; ++e) {
    const float* src = w0.ptr<float>() + (e / o.granularity) * H;
    std::copy(src, src + H, w.ptr<float>() + e * H);
  }
}

}  // namespace

void check_weight_scaling(const std::string& value, const std::string& key) {
  if (value == "auto" || value == "none") return;
  char* end = nullptr;
  const double c = std::strtod(value.c_str(), &end);
  FOUNDRY_CHECK(!value.empty() && end == value.c_str() + value.size() && std::isfinite(c) && c > 0,
                "{}: '{}' is not auto, none or a positive number (the activation scale c on the expert output)",
                key, value);
}

void check_scaling_split(const std::string& value, const std::string& key) {
  FOUNDRY_CHECK(value == "linear" || value == "equal",
                "{}: '{}' is not linear (up and fc2 by sqrt c, exact for SwiGLU) or equal (gate, up, fc2 by "
                "c^(1/3), Megatron's rule)", key, value);
}

UpcycleScales upcycle_scales(const UpcycleOptions& o) {
  check_weight_scaling(o.weight_scaling, "weight_scaling");
  check_scaling_split(o.scaling_split, "scaling_split");
  FOUNDRY_CHECK(o.granularity >= 1 && o.topk >= 1 && o.num_experts >= 1,
                "upcycling: num_experts {}, topk {} and granularity {} must be positive", o.num_experts, o.topk,
                o.granularity);
  UpcycleScales s;
  const double G = static_cast<double>(o.granularity);
  const double R = static_cast<double>(o.num_experts / o.granularity), T = static_cast<double>(o.topk);
  if (o.weight_scaling == "auto") s.c = o.pre_softmax ? R * G * G / T : G;
  else if (o.weight_scaling == "none") s.c = 1;
  else s.c = std::strtod(o.weight_scaling.c_str(), nullptr);
  if (o.scaling_split == "linear") {
    s.gate = 1;
    s.up = s.fc2 = std::sqrt(s.c);
  } else {
    s.gate = s.up = s.fc2 = std::cbrt(s.c);
  }
  return s;
}

GPTConfig upcycled_config(const GPTConfig& dense, const UpcycleOptions& o) {
  FOUNDRY_CHECK(dense.num_moe_experts == 0,
                "upcycling: the dense model is already a MoE (model.num_moe_experts = {}); upcycle a dense model",
                dense.num_moe_experts);
  check_options(o, dense.ffn_hidden_size);
  GPTConfig m = dense;
  m.num_moe_experts = o.num_experts;
  m.moe_ffn_hidden_size = dense.ffn_hidden_size / o.granularity;
  m.moe_router_topk = o.topk;
  m.moe_router_pre_softmax = o.pre_softmax;
  m.moe_router_score_function = "softmax";
  m.moe_layer_freq = 1;
  m.moe_layer_pattern.clear();
  m.moe_shared_expert_intermediate_size = 0;
  m.moe_shared_expert_gate = false;
  m.upcycle_from.clear();
  return resolve_gpt_config(m, /*require_vocab=*/false);
}

UpcycleOptions upcycle_options_for(const GPTConfig& dense, const GPTConfig& moe, const std::string& weight_scaling,
                                   const std::string& scaling_split) {
  FOUNDRY_CHECK(dense.num_moe_experts == 0,
                "model.upcycle_from: the checkpoint is already a MoE (model.num_moe_experts = {}); upcycle a dense one",
                dense.num_moe_experts);
  FOUNDRY_CHECK(moe.num_moe_experts > 0, "model.upcycle_from needs a MoE model (model.num_moe_experts > 0)");
  // Every field outside the MLP must agree (else the dense tensors do not fit or mean something else).
  auto same = [&](const char* key, const auto& a, const auto& b) {
    FOUNDRY_CHECK(a == b, "model.upcycle_from: model.{} differs: the dense checkpoint has {}, the MoE config {}", key,
                  a, b);
  };
  same("vocab_size", dense.vocab_size, moe.vocab_size);
  same("hidden_size", dense.hidden_size, moe.hidden_size);
  same("num_layers", dense.num_layers, moe.num_layers);
  same("num_attention_heads", dense.num_attention_heads, moe.num_attention_heads);
  same("num_query_groups", dense.num_query_groups, moe.num_query_groups);
  same("kv_channels", dense.kv_channels, moe.kv_channels);
  same("layernorm_epsilon", dense.layernorm_epsilon, moe.layernorm_epsilon);
  same("qk_layernorm", dense.qk_layernorm, moe.qk_layernorm);
  same("rotary_base", dense.rotary_base, moe.rotary_base);
  same("rotary_percent", dense.rotary_percent, moe.rotary_percent);
  same("share_embeddings_and_output_weights", dense.share_embeddings_and_output_weights,
       moe.share_embeddings_and_output_weights);
  for (int64_t l = 0; l < moe.num_layers; ++l)
    if (!moe.is_moe_layer(l)) same("ffn_hidden_size (of the dense layers)", dense.ffn_hidden_size, moe.ffn_hidden_size);
  FOUNDRY_CHECK(moe.moe_shared_expert_intermediate_size == 0,
                "model.upcycle_from: model.moe_shared_expert_intermediate_size = {}: upcycling into shared experts is "
                "not supported (set it to 0)", moe.moe_shared_expert_intermediate_size);
  FOUNDRY_CHECK(moe.moe_router_score_function == "softmax" && moe.moe_router_num_groups == 0,
                "model.upcycle_from: the virtual-group router init needs model.moe_router_score_function softmax "
                "(got '{}') and no router groups (model.moe_router_num_groups = {})", moe.moe_router_score_function,
                moe.moe_router_num_groups);
  FOUNDRY_CHECK(dense.ffn_hidden_size % moe.moe_ffn_hidden_size == 0,
                "model.upcycle_from: the dense ffn_hidden_size {} is not a multiple of model.moe_ffn_hidden_size {} "
                "(granularity G = F_dense / moe_ffn_hidden_size)", dense.ffn_hidden_size, moe.moe_ffn_hidden_size);
  UpcycleOptions o{.num_experts = moe.num_moe_experts,
                   .topk = moe.moe_router_topk,
                   .granularity = dense.ffn_hidden_size / moe.moe_ffn_hidden_size,
                   .pre_softmax = moe.moe_router_pre_softmax,
                   .weight_scaling = weight_scaling,
                   .scaling_split = scaling_split};
  check_options(o, dense.ffn_hidden_size);
  return o;
}

DenseSource dense_source_of(const ParamTable& dense) {
  return {.description = "the dense model",
          .read = [&dense](const std::string& name) -> Tensor {
            for (int i = 0; i < dense.size(); ++i) {
              if (dense.spec(i).name != name) continue;
              FOUNDRY_CHECK(!dense.spec(i).sharded(), "upcycling: dense parameter '{}' is sharded; give a one-process model",
                            name);
              return dense.param(i).value;
            }
            for (int i = 0; i < dense.num_buffers(); ++i)
              if (dense.buffer_name(i) == name) return dense.buffer(i);
            return Tensor();
          }};
}

UpcycleScales upcycle_params(ParamTable& moe, const GPTConfig& cfg, const UpcycleOptions& o, const DenseSource& dense) {
  FOUNDRY_CHECK(moe.allocated(), "upcycling: the MoE parameter table is not allocated");
  FOUNDRY_CHECK(cfg.num_moe_experts == o.num_experts && cfg.moe_router_topk == o.topk &&
                    cfg.moe_router_pre_softmax == o.pre_softmax,
                "upcycling: the MoE config (num_moe_experts {}, moe_router_topk {}, pre_softmax {}) does not match the "
                "options (num_experts {}, topk {}, pre_softmax {})", cfg.num_moe_experts, cfg.moe_router_topk,
                cfg.moe_router_pre_softmax, o.num_experts, o.topk, o.pre_softmax);
  check_options(o, cfg.moe_ffn_hidden_size * o.granularity);
  const UpcycleScales sc = upcycle_scales(o);
  const std::string fc1 = ".experts.linear_fc1.weight", fc2 = ".experts.linear_fc2.weight";
  for (int i = 0; i < moe.size(); ++i) {
    const ParamSpec& spec = moe.spec(i);
    Tensor& value = moe.param(i).value;
    FOUNDRY_CHECK(spec.dtype == DType::f32, "upcycling: parameter '{}' is {}, expected f32", spec.name,
                  dtype_name(spec.dtype));
    if (ends_with(spec.name, ".mlp.router.weight")) {
      regroup_router(spec, value, o);
    } else if (ends_with(spec.name, ".mlp" + fc1)) {
      const std::string name = spec.name.substr(0, spec.name.size() - fc1.size()) + ".linear_fc1.weight";
      fill_expert_fc1(spec, value, read_dense(dense, name, spec.name), o, sc, name);
    } else if (ends_with(spec.name, ".mlp" + fc2)) {
      const std::string name = spec.name.substr(0, spec.name.size() - fc2.size()) + ".linear_fc2.weight";
      fill_expert_fc2(spec, value, read_dense(dense, name, spec.name), o, sc, name);
    } else {
      FOUNDRY_CHECK(spec.name.find(".mlp.shared_experts.") == std::string::npos,
                    "upcycling: '{}': shared experts are not upcycled", spec.name);
      const Tensor t = read_dense(dense, spec.name, spec.name);
      FOUNDRY_CHECK(t.shape() == spec.full_shape(), "upcycling: {}: '{}' is {}, the MoE model expects {}",
                    dense.description, spec.name, t.shape().str(), spec.full_shape().str());
      if (spec.sharded()) copy_full_to_shard(spec, t, value);
      else std::copy(t.ptr<float>(), t.ptr<float>() + t.numel(), value.ptr<float>());
    }
  }
  for (int b = 0; b < moe.num_buffers(); ++b) {
    Tensor& buf = moe.buffer(b);
    if (ends_with(moe.buffer_name(b), ".mlp.router.expert_bias")) {
      buf.zero_();
      continue;
    }
    const Tensor t = read_dense(dense, moe.buffer_name(b), moe.buffer_name(b));
    FOUNDRY_CHECK(t.shape() == buf.shape(), "upcycling: {}: buffer '{}' is {}, the MoE model expects {}",
                  dense.description, moe.buffer_name(b), t.shape().str(), buf.shape().str());
    std::copy(t.ptr<float>(), t.ptr<float>() + t.numel(), buf.ptr<float>());
  }
  return sc;
}

}  // namespace foundry

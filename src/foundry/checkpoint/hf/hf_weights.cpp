#include "foundry/checkpoint/hf/hf_weights.h"

#include <cstring>
#include <map>
#include <set>

#include "foundry/core/check.h"

namespace foundry {

namespace {

using Rows = HfTensorMapping::Rows;

// Elements per row of a shape (row = everything after axis 0; a 1-D tensor's row is one element).
int64_t row_elems(const Shape& s) { return s.ndim() <= 1 ? 1 : s.numel() / s[0]; }

HfTensorMapping whole(const std::string& hf, Shape shape, const std::string& param, int64_t expert = -1) {
  const int64_t n = shape[0];
  return {hf, std::move(shape), param, expert, {{0, 0, n}}};
}

// q/k/v of Megatron's grouped fused layout: group g holds G query heads, one key head, one value
// head, so q_proj's rows [g G HD, (g+1) G HD) land at g (G + 2) HD, and so on.
void add_qkv(std::vector<HfTensorMapping>& out, const std::string& hf_attn, const std::string& param,
             const GPTConfig& c, bool cols) {
  const int64_t nh = c.num_attention_heads, nkv = c.num_query_groups, hd = c.kv_channels, g = nh / nkv;
  auto shape = [&](int64_t rows) { return cols ? Shape{rows, c.hidden_size} : Shape{rows}; };
  const std::string suffix = cols ? ".weight" : ".bias";
  HfTensorMapping q{hf_attn + ".q_proj" + suffix, shape(nh * hd), param, -1, {}};
  HfTensorMapping k{hf_attn + ".k_proj" + suffix, shape(nkv * hd), param, -1, {}};
  HfTensorMapping v{hf_attn + ".v_proj" + suffix, shape(nkv * hd), param, -1, {}};
  for (int64_t grp = 0; grp < nkv; ++grp) {
    const int64_t base = grp * (g + 2) * hd;
    q.rows.push_back({grp * g * hd, base, g * hd});
    k.rows.push_back({grp * hd, base + g * hd, hd});
    v.rows.push_back({grp * hd, base + (g + 1) * hd, hd});
  }
  out.push_back(std::move(q));
  out.push_back(std::move(k));
  out.push_back(std::move(v));
}

// Tensor element bytes as f32 values (F32 / BF16 / F16 only).
Tensor to_f32(const Tensor& t, const std::string& name, const std::string& dir) {
  FOUNDRY_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16,
                "{}: tensor '{}' is {}, expected F32, BF16 or F16", dir, name, dtype_name(t.dtype()));
  return t.dtype() == DType::f32 ? t : t.to(DType::f32);
}

bool ignorable(const std::string& name) {
  return name.size() >= 20 && name.compare(name.size() - 20, 20, "rotary_emb.inv_freq") == 0;
}

}  // namespace

std::vector<HfTensorMapping> hf_tensor_mappings(const GPTConfig& c, HfArch arch) {
  const int64_t H = c.hidden_size, V = c.vocab_size, F = c.ffn_hidden_size, hd = c.kv_channels;
  std::vector<HfTensorMapping> out;
  out.push_back(whole("model.embed_tokens.weight", {V, H}, "embedding.word_embeddings.weight"));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string hf = fmt::format("model.layers.{}.", l), fd = fmt::format("decoder.layers.{}.", l);
    add_qkv(out, hf + "self_attn", fd + "self_attention.linear_qkv.weight", c, true);
    if (c.add_qkv_bias) add_qkv(out, hf + "self_attn", fd + "self_attention.linear_qkv.bias", c, false);
    out.push_back(whole(hf + "self_attn.o_proj.weight", {H, c.num_attention_heads * hd},
                        fd + "self_attention.linear_proj.weight"));
    if (c.qk_layernorm) {
      out.push_back(whole(hf + "self_attn.q_norm.weight", {hd}, fd + "self_attention.q_layernorm.weight"));
      out.push_back(whole(hf + "self_attn.k_norm.weight", {hd}, fd + "self_attention.k_layernorm.weight"));
    }
    if (!c.is_moe_layer(l)) {
      const std::string fc1 = fd + "mlp.linear_fc1.weight";
      out.push_back({hf + "mlp.gate_proj.weight", {F, H}, fc1, -1, {{0, 0, F}}});
      out.push_back({hf + "mlp.up_proj.weight", {F, H}, fc1, -1, {{0, F, F}}});
      out.push_back(whole(hf + "mlp.down_proj.weight", {H, F}, fd + "mlp.linear_fc2.weight"));
    } else {
      const int64_t E = c.num_moe_experts, f = c.moe_ffn_hidden_size;
      const bool mixtral = arch == HfArch::mixtral;
      const std::string block = hf + (mixtral ? "block_sparse_moe." : "mlp.");
      const std::string fc1 = fd + "mlp.experts.linear_fc1.weight", fc2 = fd + "mlp.experts.linear_fc2.weight";
      out.push_back(whole(block + "gate.weight", {E, H}, fd + "mlp.router.weight"));
      for (int64_t e = 0; e < E; ++e) {
        const std::string x = block + fmt::format("experts.{}.", e);
        HfTensorMapping gate{x + (mixtral ? "w1.weight" : "gate_proj.weight"), {f, H}, fc1, e, {{0, 0, f}}};
        HfTensorMapping up{x + (mixtral ? "w3.weight" : "up_proj.weight"), {f, H}, fc1, e, {{0, f, f}}};
        HfTensorMapping down = whole(x + (mixtral ? "w2.weight" : "down_proj.weight"), {H, f}, fc2, e);
        if (mixtral) {  // MixtralBlockSparseTop2MLP registers w1, w2, w3
          out.push_back(std::move(gate));
          out.push_back(std::move(down));
          out.push_back(std::move(up));
        } else {
          out.push_back(std::move(gate));
          out.push_back(std::move(up));
          out.push_back(std::move(down));
        }
      }
    }
    out.push_back(whole(hf + "input_layernorm.weight", {H}, fd + "input_layernorm.weight"));
    out.push_back(whole(hf + "post_attention_layernorm.weight", {H}, fd + "pre_mlp_layernorm.weight"));
  }
  out.push_back(whole("model.norm.weight", {H}, "decoder.final_layernorm.weight"));
  if (!c.share_embeddings_and_output_weights) out.push_back(whole("lm_head.weight", {V, H}, "output_layer.weight"));
  return out;
}

void import_hf_weights(const GPTConfig& c, HfArch arch, const ShardedSafetensors& files, const std::string& dir,
                       ParamTable& params) {
  const std::vector<HfTensorMapping> maps = hf_tensor_mappings(c, arch);
  // 1. Validate: every tensor present with its shape; coverage of every parameter.
  std::set<std::string> used;
  std::map<std::string, int64_t> covered;  // parameter -> elements filled
  for (const HfTensorMapping& m : maps) {
    FOUNDRY_CHECK(files.contains(m.hf_name), "{}: tensor '{}' is missing (needed for {})", dir, m.hf_name, m.param);
    const SafetensorsEntry& e = files.entry(m.hf_name);
    FOUNDRY_CHECK(e.shape == m.hf_shape, "{}: tensor '{}' has shape {}, config.json implies {}", dir, m.hf_name,
                  e.shape.str(), m.hf_shape.str());
    FOUNDRY_CHECK(e.dtype == DType::f32 || e.dtype == DType::bf16 || e.dtype == DType::f16,
                  "{}: tensor '{}' is {}, expected F32, BF16 or F16", dir, m.hf_name, e.dtype_name);
    used.insert(m.hf_name);
    int64_t n = 0;
    for (const Rows& r : m.rows) n += r.count;
    covered[m.param] += n * row_elems(m.hf_shape);
  }
  for (int i = 0; i < params.size(); ++i) {
    const ParamSpec& s = params.spec(i);
    FOUNDRY_CHECK(!s.sharded(), "import_hf_weights: parameter '{}' is sharded; import into a one-process model",
                  s.name);
    FOUNDRY_CHECK(covered[s.name] == s.shape.numel(),
                  "import_hf_weights: {} of the {} elements of '{}' come from the Hugging Face tensors", covered[s.name],
                  s.shape.numel(), s.name);
  }
  FOUNDRY_CHECK(params.num_buffers() == 0, "import_hf_weights: the model has buffers ('{}') Hugging Face does not hold",
                params.num_buffers() ? params.buffer_name(0) : "");
  for (const std::string& name : files.names()) {
    if (used.count(name) || ignorable(name)) continue;
    if (name == "lm_head.weight" && c.share_embeddings_and_output_weights) {
      const Tensor head = to_f32(files.read(name), name, dir);
      const Tensor emb = to_f32(files.read("model.embed_tokens.weight"), name, dir);
      FOUNDRY_CHECK(head.shape() == emb.shape() && std::memcmp(head.data(), emb.data(), head.nbytes()) == 0,
                    "{}: tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight", dir);
      continue;
    }
    FOUNDRY_FAIL("{}: tensor '{}' is not part of a {} model with this config.json", dir, name, hf_class_name(arch));
  }
  // 2. Copy.
  for (const HfTensorMapping& m : maps) {
    const Tensor src = to_f32(files.read(m.hf_name), m.hf_name, dir);
    Tensor dst = params.at(m.param).value;
    if (m.expert >= 0) dst = dst.slice(m.expert, m.expert + 1);
    const int64_t row = row_elems(m.hf_shape);
    for (const Rows& r : m.rows)
      std::memcpy(dst.ptr<float>() + r.param_begin * row, src.ptr<float>() + r.hf_begin * row,
                  static_cast<size_t>(r.count * row) * sizeof(float));
  }
}

std::vector<std::pair<std::string, Tensor>> export_hf_weights(const GPTConfig& c, HfArch arch,
                                                              const ParamTable& params) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const HfTensorMapping& m : hf_tensor_mappings(c, arch)) {
    const Param& p = params.at(m.param);
    Tensor src = p.value;
    FOUNDRY_CHECK(!params.spec(p.index).sharded(),
                  "export_hf_weights: parameter '{}' is sharded; export a one-process model", m.param);
    if (m.expert >= 0) src = src.slice(m.expert, m.expert + 1);
    Tensor t = Tensor::empty(m.hf_shape, DType::f32);
    const int64_t row = row_elems(m.hf_shape);
    for (const Rows& r : m.rows)
      std::memcpy(t.ptr<float>() + r.hf_begin * row, src.ptr<float>() + r.param_begin * row,
                  static_cast<size_t>(r.count * row) * sizeof(float));
    out.emplace_back(m.hf_name, std::move(t));
  }
  return out;
}

}  // namespace foundry

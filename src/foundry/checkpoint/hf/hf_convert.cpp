#include "foundry/checkpoint/hf/hf_convert.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "foundry/checkpoint/durable_io.h"
#include "foundry/checkpoint/hf/hf_weights.h"
#include "foundry/checkpoint/safetensors.h"
#include "foundry/core/check.h"
#include "foundry/data/bpe_tokenizer.h"
#include "foundry/data/hf_tokenizer.h"
#include "foundry/train/config.h"
#include "foundry/train/pretrained.h"

namespace foundry {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kHfDir = "hf";
// Files beside the weights that belong to the model's Hugging Face form.
constexpr const char* kSideFiles[] = {"tokenizer.json",      "tokenizer_config.json", "special_tokens_map.json",
                                      "generation_config.json", "tokenizer.model",   "vocab.json",
                                      "merges.txt",          "added_tokens.json",     "chat_template.jinja"};

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  FOUNDRY_CHECK(in.good(), "cannot open '{}'", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    FOUNDRY_FAIL("'{}' is not valid JSON: {}", path, e.what());
  }
}

void copy_hf_file(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  FOUNDRY_CHECK(!ec, "cannot copy '{}' to '{}': {}", from.string(), to.string(), ec.message());
}

}  // namespace

HfModel read_hf_model(const std::string& dir) {
  FOUNDRY_CHECK(fs::is_directory(dir), "Hugging Face model directory '{}' does not exist", dir);
  const std::string config_path = (fs::path(dir) / "config.json").string();
  FOUNDRY_CHECK(fs::exists(config_path), "'{}' has no config.json", dir);
  FOUNDRY_CHECK(has_safetensors(dir), "'{}' has no model.safetensors nor model.safetensors.index.json "
                "(only safetensors weights are read; convert .bin weights with transformers first)", dir);
  HfModel m;
  m.config = read_json_file(config_path);
  m.arch = hf_arch_of(m.config, config_path);
  const GPTConfig cfg = gpt_config_from_hf(m.config, config_path);
  const ShardedSafetensors files(dir);

  // The dtype: torch_dtype (transformers 5: dtype), else the embedding's.
  const std::string dtype_key = m.config.contains("torch_dtype") ? "torch_dtype" : "dtype";
  if (m.config.contains(dtype_key) && m.config[dtype_key].is_string()) {
    m.dtype = hf_dtype_from_name(m.config[dtype_key].get<std::string>());
  } else {
    FOUNDRY_CHECK(files.contains("model.embed_tokens.weight"), "{}: tensor 'model.embed_tokens.weight' is missing", dir);
    const auto d = files.entry("model.embed_tokens.weight").dtype;
    m.dtype = d ? *d : DType::f32;
  }
  for (const std::string& name : files.names()) {
    const SafetensorsEntry& e = files.entry(name);
    if (e.dtype && *e.dtype != m.dtype) m.dtypes[name] = e.dtype_name;
  }
  m.model = std::make_unique<GPTModel>(cfg, /*seed=*/0);
  import_hf_weights(m.model->config(), m.arch, files, dir, m.model->params());
  return m;
}

std::string import_hf_checkpoint(const std::string& hf_dir, const std::string& out_root) {
  HfModel m = read_hf_model(hf_dir);
  RunConfig rc;
  rc.model = m.model->config();
  json state = {{"consumed_samples", 0},
                {"skipped_steps", 0},
                {"rng", {{"seed", rc.train.seed}, {"offset", 0}}},
                {"config", rc.to_yaml()},
                {"hf",
                 {{"architecture", hf_class_name(m.arch)},
                  {"torch_dtype", hf_torch_dtype_name(m.dtype)},
                  {"dtypes", m.dtypes},
                  {"source", fs::absolute(hf_dir).lexically_normal().string()},
                  {"config", m.config}}}};
  CheckpointContents contents{.step = 0, .params = &m.model->params(), .trainer_state = std::move(state)};
  // The tokenizer: usable by foundry when its loader accepts tokenizer.json (a note otherwise).
  const fs::path tokenizer_json = fs::path(hf_dir) / "tokenizer.json";
  if (fs::exists(tokenizer_json)) {
    try {
      Tokenizer::load(tokenizer_json.string());
      contents.save_tokenizer = [tokenizer_json](const std::string& dir) {
        copy_hf_file(tokenizer_json, fs::path(dir) / "tokenizer.json");
      };
    } catch (const Error& e) {
      std::fprintf(stderr, "note: %s: foundry cannot use this tokenizer (%s); it is kept for export only\n",
                   tokenizer_json.c_str(), e.message().c_str());
    }
  }
  contents.save_extra = [hf_dir](const std::string& dir) {
    const fs::path side = fs::path(dir) / kHfDir;
    fs::create_directories(side);
    for (const char* name : kSideFiles)
      if (fs::exists(fs::path(hf_dir) / name)) copy_hf_file(fs::path(hf_dir) / name, side / name);
  };
  return save_checkpoint(contents, out_root);
}

void export_hf_checkpoint(const std::string& checkpoint, const std::string& out_dir, const HfExportOptions& o) {
  const Pretrained p = load_pretrained(checkpoint);
  const json state = read_trainer_state(p.dir);
  const json hf = state.contains("hf") ? state["hf"] : json::object();
  const GPTConfig& cfg = p.model->config();

  // The architecture: --architecture, else the imported one while it still fits the model (an
  // upcycled Llama is no longer a Llama), else the one the model's features call for.
  HfArch arch = default_hf_arch(cfg);
  if (!o.architecture.empty()) {
    arch = hf_arch_from_name(o.architecture);
  } else if (hf.contains("architecture")) {
    const HfArch imported = hf_arch_from_name(hf["architecture"].get<std::string>());
    try {
      check_hf_representable(cfg, imported);
      arch = imported;
    } catch (const Error&) {
    }
  }
  const bool same_arch = hf.contains("architecture") && hf_arch_from_name(hf["architecture"].get<std::string>()) == arch;
  DType dtype = DType::f32;
  if (!o.dtype.empty()) dtype = hf_dtype_from_name(o.dtype);
  else if (hf.contains("torch_dtype")) dtype = hf_dtype_from_name(hf["torch_dtype"].get<std::string>());
  check_hf_representable(cfg, arch);

  json base = same_arch && hf.contains("config") ? hf["config"] : json::object();
  // A model without an imported config: its token ids come from its tokenizer.
  if (p.tokenizer && !base.contains("eos_token_id")) {
    try {
      base["eos_token_id"] = p.tokenizer->eod_id();
    } catch (const Error&) {
    }
    for (const char* bos : {"<|begin_of_text|>", "<s>", "<|endoftext|>"})
      if (!base.contains("bos_token_id") && p.tokenizer->special_token_id(bos) >= 0)
        base["bos_token_id"] = p.tokenizer->special_token_id(bos);
  }
  const json config = hf_config_from_gpt(cfg, arch, hf_torch_dtype_name(dtype), base, p.config.train.seq_length);
  // Each tensor in the export dtype (f32 -> bf16 / fp16 rounds to nearest even), except those the
  // source stored in another dtype, which go back in it (a round trip keeps them exact).
  std::vector<std::pair<std::string, Tensor>> tensors = export_hf_weights(cfg, arch, p.model->params());
  for (auto& [name, t] : tensors) {
    DType d = dtype;
    if (o.dtype.empty() && same_arch && hf.contains("dtypes") && hf["dtypes"].contains(name)) {
      const auto stored = dtype_from_safetensors(hf["dtypes"][name].get<std::string>());
      FOUNDRY_CHECK(stored.has_value(), "{}: tensor '{}' had dtype {}", p.dir, name, hf["dtypes"][name].dump());
      d = *stored;
    }
    if (d != DType::f32) t = t.to(d);
  }

  std::error_code ec;
  FOUNDRY_CHECK(!fs::exists(out_dir) || (fs::is_directory(out_dir) && fs::is_empty(out_dir)),
                "convert: '{}' exists and is not an empty directory; choose a new output directory", out_dir);
  const fs::path tmp = fs::path(out_dir).lexically_normal().string() + fmt::format(".tmp-{}", ::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  FOUNDRY_CHECK(!ec, "cannot create '{}': {}", tmp.string(), ec.message());
  try {
    std::vector<NamedTensor> named;
    for (const auto& [name, t] : tensors) named.push_back({name, t.view()});
    save_sharded(tmp.string(), named, o.max_shard_bytes, {{"format", "pt"}}, "model");
    write_file_atomic((tmp / "config.json").string(), config.dump(2) + "\n");
    // Tokenizer: the imported side files, else the checkpoint's tokenizer.json, else one written
    // from a merge-list BPE tokenizer.
    const fs::path side = fs::path(p.dir) / kHfDir, tok_dir = fs::path(p.dir) / "tokenizer";
    bool tokenizer = false;
    if (fs::is_directory(side))
      for (const char* name : kSideFiles)
        if (fs::exists(side / name)) {
          copy_hf_file(side / name, tmp / name);
          tokenizer = tokenizer || std::string(name) == "tokenizer.json";
        }
    if (!tokenizer && fs::exists(tok_dir / "tokenizer.json")) {
      copy_hf_file(tok_dir / "tokenizer.json", tmp / "tokenizer.json");
      tokenizer = true;
    }
    if (!tokenizer && p.tokenizer) {
      const auto* bpe = dynamic_cast<const BpeTokenizer*>(p.tokenizer.get());
      if (bpe && !bpe->spec().bpe.rank_based()) {
        save_tokenizer_json(*bpe, (tmp / "tokenizer.json").string());
        tokenizer = true;
      }
    }
    // transformers picks the tokenizer class from tokenizer_config.json (without one, the
    // architecture's own class, e.g. Llama's sentencepiece-style one): a plain fast tokenizer.
    if (tokenizer && !fs::exists(tmp / "tokenizer_config.json") && p.tokenizer) {
      json tc = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"model_max_length", p.config.train.seq_length},
                 {"clean_up_tokenization_spaces", false}};
      const auto token_text = [&](const char* key) -> json {
        if (!config.contains(key) || !config[key].is_number_integer()) return json();
        const int32_t id = config[key].get<int32_t>();
        return p.tokenizer->decode(std::span<const int32_t>(&id, 1));
      };
      tc["bos_token"] = token_text("bos_token_id");
      tc["eos_token"] = token_text("eos_token_id");
      write_file_atomic((tmp / "tokenizer_config.json").string(), tc.dump(2) + "\n");
    }
    if (!tokenizer)
      std::fprintf(stderr, "note: %s holds no tokenizer Hugging Face can read (tokenizer.json); none exported\n",
                   p.dir.c_str());
    fsync_tree(tmp.string());
    if (fs::exists(out_dir)) fs::remove(out_dir, ec);
    fs::rename(tmp, out_dir, ec);
    FOUNDRY_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp.string(), out_dir, ec.message());
    fsync_path(fs::absolute(out_dir).parent_path().string());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace foundry

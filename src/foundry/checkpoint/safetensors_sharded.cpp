// Sharded safetensors saves with an index JSON, following Hugging Face's convention
// (`huggingface_hub.split_torch_state_dict_into_shards`, `transformers` save_pretrained):
//   model-00001-of-00003.safetensors ... model-00003-of-00003.safetensors
//   model.safetensors.index.json = {"metadata": {"total_size": N}, "weight_map": {name: file}}
// written with sorted keys and 2-space indentation, as `json.dumps(index, indent=2,
// sort_keys=True)` does. A save that fits in one shard is a single `model.safetensors`.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <cctype>
#include <set>

#include "foundry/checkpoint/durable_io.h"
#include "foundry/checkpoint/safetensors.h"

namespace foundry {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shard_file_name(std::string_view base, int shard, int shards) {
  if (shards == 1) return fmt::format("{}.safetensors", base);
  return fmt::format("{}-{:05d}-of-{:05d}.safetensors", base, shard, shards);
}

std::string shard_index_name(std::string_view base) { return fmt::format("{}.safetensors.index.json", base); }

namespace {
// "base-DDDDD-of-DDDDD.safetensors"
bool is_shard_name(std::string_view name, std::string_view base) {
  constexpr std::string_view kPattern = "-00000-of-00000.safetensors";
  if (name.size() != base.size() + kPattern.size() || name.substr(0, base.size()) != base) return false;
  const std::string_view rest = name.substr(base.size());
  for (size_t i = 0; i < kPattern.size(); ++i) {
    const bool digit = kPattern[i] == '0';
    if (digit ? !std::isdigit(static_cast<unsigned char>(rest[i])) : rest[i] != kPattern[i]) return false;
  }
  return true;
}
}  // namespace

bool has_safetensors(const std::string& dir, std::string_view base) {
  return fs::exists(fs::path(dir) / shard_file_name(base, 1, 1)) ||
         fs::exists(fs::path(dir) / shard_index_name(base));
}

ShardedSaveResult save_sharded(const std::string& dir, std::span<const NamedTensor> tensors,
                               int64_t max_shard_bytes, const SafetensorsMetadata& metadata,
                               std::string_view base) {
  FOUNDRY_CHECK(max_shard_bytes > 0, "save_sharded: max_shard_bytes must be positive, got {}", max_shard_bytes);
  FOUNDRY_CHECK(!base.empty() && base.find('/') == std::string_view::npos,
                "save_sharded: base name '{}' must be a plain file name", base);
  std::error_code ec;
  fs::create_directories(dir, ec);
  FOUNDRY_CHECK(!ec, "cannot create directory '{}': {}", dir, ec.message());

  // Fill shards in order; a tensor larger than the limit gets a shard of its own.
  std::vector<std::vector<NamedTensor>> shards;
  int64_t current = 0;
  ShardedSaveResult result;
  for (const NamedTensor& t : tensors) {
    const int64_t n = t.tensor.nbytes();
    if (shards.empty() || (!shards.back().empty() && current + n > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(t);
    current += n;
    result.total_size += n;
    if (n > max_shard_bytes) current = max_shard_bytes;  // closes this shard
  }
  if (shards.empty()) shards.emplace_back();  // no tensors: one empty file
  const int count = static_cast<int>(shards.size());

  json weight_map = json::object();
  for (int s = 0; s < count; ++s) {
    const std::string name = shard_file_name(base, s + 1, count);
    save_safetensors((fs::path(dir) / name).string(), shards[static_cast<size_t>(s)], metadata);
    result.files.push_back(name);
    for (const NamedTensor& t : shards[static_cast<size_t>(s)]) weight_map[t.name] = name;
  }
  if (count > 1) {
    const json index = {{"metadata", {{"total_size", result.total_size}}}, {"weight_map", weight_map}};
    write_file_atomic((fs::path(dir) / shard_index_name(base)).string(), index.dump(2) + "\n");
  }

  // Remove files of an earlier save under the same base that this save does not use.
  const std::set<std::string> keep(result.files.begin(), result.files.end());
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (keep.count(name)) continue;
    if (name == shard_file_name(base, 1, 1) || is_shard_name(name, base) ||
        (count == 1 && name == shard_index_name(base)))
      stale.push_back(entry.path());
  }
  for (const fs::path& p : stale) fs::remove(p);
  return result;
}

// ---- reading ---------------------------------------------------------------------------------

ShardedSafetensors::ShardedSafetensors(const std::string& dir, std::string_view base) : dir_(dir) {
  const fs::path index_path = fs::path(dir) / shard_index_name(base);
  const fs::path single_path = fs::path(dir) / shard_file_name(base, 1, 1);
  if (!fs::exists(index_path)) {
    FOUNDRY_CHECK(fs::exists(single_path), "'{}' has neither {} nor {}", dir, single_path.filename().string(),
                  index_path.filename().string());
    files_.emplace_back(single_path.string());
    for (const SafetensorsEntry& e : files_[0].entries()) where_[e.name] = 0;
    return;
  }

  sharded_ = true;
  const std::string ipath = index_path.string();
  json index;
  try {
    index = json::parse(read_small_file(ipath));
  } catch (const json::exception& e) {
    FOUNDRY_FAIL("'{}' is not valid JSON: {}", ipath, e.what());
  }
  FOUNDRY_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
                "'{}' has no \"weight_map\" object", ipath);
  std::map<std::string, std::string> weight_map;  // tensor -> file
  std::vector<std::string> file_names;            // distinct, in first-seen order
  for (const auto& [name, file] : index["weight_map"].items()) {
    FOUNDRY_CHECK(file.is_string(), "'{}': weight_map entry for '{}' is {}, not a file name", ipath, name,
                  file.dump());
    const std::string f = file.get<std::string>();
    // Shard names are plain file names inside dir: never follow a path out of it.
    FOUNDRY_CHECK(!f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos,
                  "'{}': weight_map entry for '{}' names '{}', not a file in the checkpoint directory", ipath,
                  name, f);
    weight_map[name] = f;
    if (std::find(file_names.begin(), file_names.end(), f) == file_names.end()) file_names.push_back(f);
  }
  std::sort(file_names.begin(), file_names.end());
  for (size_t i = 0; i < file_names.size(); ++i) {
    const fs::path p = fs::path(dir) / file_names[i];
    FOUNDRY_CHECK(fs::exists(p), "'{}' maps tensors to '{}', which does not exist", ipath, p.string());
    files_.emplace_back(p.string());
    for (const SafetensorsEntry& e : files_.back().entries()) {
      const auto it = weight_map.find(e.name);
      FOUNDRY_CHECK(it != weight_map.end(), "'{}' holds tensor '{}', which the index '{}' does not list",
                    p.string(), e.name, ipath);
      FOUNDRY_CHECK(it->second == file_names[i], "'{}' holds tensor '{}', which the index '{}' maps to '{}'",
                    p.string(), e.name, ipath, it->second);
      where_[e.name] = i;
    }
  }
  for (const auto& [name, file] : weight_map)
    FOUNDRY_CHECK(where_.count(name), "'{}' maps tensor '{}' to '{}', which does not hold it", ipath, name, file);
  if (index.contains("metadata") && index["metadata"].is_object() && index["metadata"].contains("total_size")) {
    const json& ts = index["metadata"]["total_size"];
    FOUNDRY_CHECK(ts.is_number_unsigned() && ts.get<int64_t>() == total_size(),
                  "'{}': metadata.total_size {} differs from the {} tensor bytes in its shards", ipath, ts.dump(),
                  total_size());
  }
}

std::vector<std::string> ShardedSafetensors::names() const {
  std::vector<std::string> out;
  for (const SafetensorsFile& f : files_)
    for (const SafetensorsEntry& e : f.entries()) out.push_back(e.name);
  return out;
}

int64_t ShardedSafetensors::total_size() const {
  int64_t n = 0;
  for (const SafetensorsFile& f : files_) n += f.data_bytes();
  return n;
}

const SafetensorsEntry& ShardedSafetensors::entry(const std::string& name) const {
  const auto it = where_.find(name);
  FOUNDRY_CHECK(it != where_.end(), "'{}' has no tensor named '{}'", dir_, name);
  return files_[it->second].entry(name);
}

Tensor ShardedSafetensors::read(const std::string& name) const {
  entry(name);
  return files_[where_.at(name)].read(name);
}

void ShardedSafetensors::read_into(const std::string& name, Tensor& dst) const {
  entry(name);
  files_[where_.at(name)].read_into(name, dst);
}

std::map<std::string, Tensor> load_sharded(const std::string& dir, std::string_view base) {
  const ShardedSafetensors s(dir, base);
  std::map<std::string, Tensor> out;
  for (const std::string& name : s.names()) out.emplace(name, s.read(name));
  return out;
}

}  // namespace foundry

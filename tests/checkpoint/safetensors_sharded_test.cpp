// Sharded safetensors: shard boundaries, Hugging Face's file names and index JSON, loading
// either form back, and corrupt indexes.
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint/scratch.h"
#include "foundry/checkpoint/safetensors.h"
#include "testing.h"

namespace foundry {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::scratch_dir;
using testing::write_bytes;

// Five f32 tensors of 40, 24, 40, 8 and 100 bytes.
struct FiveTensors {
  std::vector<Tensor> values;
  std::vector<NamedTensor> named;
  FiveTensors() {
    const std::pair<const char*, Shape> specs[] = {
        {"layers.0.w", {2, 5}}, {"layers.0.b", {6}}, {"layers.1.w", {2, 5}}, {"layers.1.b", {2}}, {"head", {5, 5}}};
    uint64_t seed = 1;
    for (const auto& [name, shape] : specs) values.push_back(testing::randn(shape, seed++));
    for (size_t i = 0; i < values.size(); ++i) named.push_back({std::get<0>(specs[i]), values[i]});
  }
};

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SafetensorsSharded, SplitsIntoShardsWithAnIndex) {
  const FiveTensors t;
  const std::string dir = scratch_dir();
  // Limit 64 bytes: [w0 40 + b0 24] [w1 40 + b1 8] [head 100, alone: larger than the limit].
  const ShardedSaveResult r = save_sharded(dir, t.named, 64);
  const std::vector<std::string> shards = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors"};
  EXPECT_EQ(r.files, shards);
  EXPECT_EQ(r.total_size, 212);
  std::vector<std::string> expected_files = shards;
  expected_files.push_back("model.safetensors.index.json");
  EXPECT_EQ(files_in(dir), expected_files);

  const auto index = nlohmann::json::parse(read_bytes(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 212);
  const nlohmann::json weight_map = {{"layers.0.w", shards[0]}, {"layers.0.b", shards[0]},
                                     {"layers.1.w", shards[1]}, {"layers.1.b", shards[1]},
                                     {"head", shards[2]}};
  EXPECT_EQ(index["weight_map"], weight_map);
  // Byte for byte what Python's json.dumps(index, indent=2, sort_keys=True) + "\n" writes.
  EXPECT_EQ(read_bytes(dir + "/model.safetensors.index.json"),
            "{\n  \"metadata\": {\n    \"total_size\": 212\n  },\n  \"weight_map\": {\n"
            "    \"head\": \"model-00003-of-00003.safetensors\",\n"
            "    \"layers.0.b\": \"model-00001-of-00003.safetensors\",\n"
            "    \"layers.0.w\": \"model-00001-of-00003.safetensors\",\n"
            "    \"layers.1.b\": \"model-00002-of-00003.safetensors\",\n"
            "    \"layers.1.w\": \"model-00002-of-00003.safetensors\"\n  }\n}\n");
  // Every shard is a standalone safetensors file with the Hugging Face format tag.
  const SafetensorsFile second(dir + "/" + shards[1]);
  EXPECT_EQ(second.metadata().at("format"), "pt");
  EXPECT_EQ(second.entries().size(), 2u);

  const ShardedSafetensors s(dir);
  EXPECT_TRUE(s.sharded());
  EXPECT_EQ(s.files().size(), 3u);
  EXPECT_EQ(s.total_size(), 212);
  const auto loaded = load_sharded(dir);
  ASSERT_EQ(loaded.size(), 5u);
  for (const NamedTensor& n : t.named) {
    const Tensor& x = loaded.at(n.name);
    EXPECT_EQ(x.shape(), n.tensor.shape);
    EXPECT_EQ(std::memcmp(x.data(), n.tensor.data, static_cast<size_t>(x.nbytes())), 0) << n.name;
  }
}

TEST(SafetensorsSharded, OneFileWhenItFitsAndStaleFilesOfTheOtherFormAreRemoved) {
  const FiveTensors t;
  const std::string dir = scratch_dir();
  save_sharded(dir, t.named, 64);
  const ShardedSaveResult r = save_sharded(dir, t.named, 212);  // exactly fits
  EXPECT_EQ(r.files, std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"model.safetensors"});
  const ShardedSafetensors s(dir);
  EXPECT_FALSE(s.sharded());
  EXPECT_EQ(s.names().size(), 5u);
  save_sharded(dir, t.named, 100);  // back to shards: model.safetensors goes
  EXPECT_EQ(files_in(dir).size(), 4u);
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  EXPECT_EQ(load_sharded(dir).size(), 5u);
  // Another base name in the same directory is left alone.
  save_sharded(dir, t.named, 1000, {}, "other");
  EXPECT_EQ(files_in(dir).size(), 5u);
  EXPECT_EQ(load_sharded(dir, "other").size(), 5u);
}

TEST(SafetensorsSharded, CorruptIndexesGiveClearErrors) {
  const FiveTensors t;
  const std::string dir = scratch_dir();
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "neither model.safetensors nor model.safetensors.index.json");
  save_sharded(dir, t.named, 64);
  const std::string index_path = dir + "/model.safetensors.index.json";
  const std::string good = read_bytes(index_path);
  auto with_index = [&](const nlohmann::json& j) { write_bytes(index_path, j.dump()); };
  nlohmann::json j = nlohmann::json::parse(good);

  write_bytes(index_path, "{\"weight_map\": ");
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "model.safetensors.index.json", "not valid JSON");
  with_index({{"metadata", {}}});
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "no \"weight_map\"");
  nlohmann::json bad = j;
  bad["weight_map"]["head"] = "../escape.safetensors";
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "'head'", "not a file in the checkpoint directory");
  bad = j;
  bad["weight_map"]["head"] = "model-00009-of-00009.safetensors";
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "model-00009-of-00009.safetensors", "does not exist");
  bad = j;
  bad["weight_map"]["head"] = "model-00001-of-00003.safetensors";
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "'head'", "to 'model-00001-of-00003.safetensors'",
                        "does not hold it");
  bad = j;
  bad["weight_map"]["layers.1.b"] = "model-00001-of-00003.safetensors";
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "model-00002-of-00003.safetensors", "'layers.1.b'",
                        "maps to 'model-00001-of-00003.safetensors'");
  bad = j;
  bad["weight_map"].erase("layers.1.b");
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "'layers.1.b'", "does not list");
  bad = j;
  bad["weight_map"]["ghost"] = "model-00002-of-00003.safetensors";
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "'ghost'", "does not hold it");
  bad = j;
  bad["metadata"]["total_size"] = 213;
  with_index(bad);
  EXPECT_ERROR_MENTIONS(ShardedSafetensors{dir}, "total_size 213", "212 tensor bytes");
  write_bytes(index_path, good);
  // A corrupt shard is reported by its own name.
  const std::string shard = dir + "/model-00002-of-00003.safetensors";
  const std::string bytes = read_bytes(shard);
  write_bytes(shard, bytes.substr(0, bytes.size() - 1));
  EXPECT_ERROR_MENTIONS(load_sharded(dir), "model-00002-of-00003.safetensors", "truncated");
  EXPECT_ERROR_MENTIONS(save_sharded(dir, t.named, 0), "max_shard_bytes");
}

}  // namespace
}  // namespace foundry

// preprocess(): text files -> indexed dataset with a byte-level test tokenizer: every document
// comes back as its bytes plus the end-of-document id, in input order, identical for any
// number of workers and chunk size; and build_gpt_datasets() assembles split, single and
// blended GPT datasets from the result.
#include "foundry/data/preprocess.h"

#include <filesystem>

#include "data_testing.h"
#include "foundry/data/blended_dataset.h"
#include "foundry/data/dataset_builder.h"
#include "foundry/data/gpt_dataset.h"
#include "testing.h"

namespace foundry::testing {
namespace {

std::vector<int32_t> bytes_of(const std::string& s, bool eod = true) {
  std::vector<int32_t> v;
  for (unsigned char c : s) v.push_back(c);
  if (eod) v.push_back(256);
  return v;
}

// A corpus of n documents of varied lengths in a .jsonl, plus a .txt.
std::vector<std::string> write_corpus(const std::string& dir, int n) {
  std::vector<std::string> docs;
  std::string jsonl;
  for (int i = 0; i < n; ++i) {
    std::string d = "document " + std::to_string(i) + ":";
    for (int j = 0; j < (i * 37) % 101; ++j) d += static_cast<char>('a' + (i + j) % 26);
    docs.push_back(d);
    jsonl += "{\"text\": \"" + d + "\"}\n";
  }
  write_text(dir + "/corpus.jsonl", jsonl);
  write_text(dir + "/tail.txt", "the whole file\nis one document\n");
  docs.push_back("the whole file\nis one document\n");
  return docs;
}

TEST(Preprocess, DocumentsRoundTripAsBytesPlusEod) {
  const std::string dir = scratch_dir();
  const auto docs = write_corpus(dir, 300);
  ByteTokenizer tok;
  std::vector<PreprocessProgress> updates;
  const PreprocessResult r = preprocess(
      tok, {.inputs = {dir + "/corpus.jsonl", dir + "/tail.txt"}, .output_prefix = dir + "/out/corpus", .chunk_bytes = 4096},
      [&](const PreprocessProgress& p) { updates.push_back(p); });
  EXPECT_EQ(r.documents, 301);
  EXPECT_EQ(r.dtype, IndexedDType::u16);
  const IndexedDataset ds(dir + "/out/corpus");
  ASSERT_EQ(ds.num_documents(), 301);
  ASSERT_EQ(ds.num_sequences(), 301);
  int64_t tokens = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(ds.sequence(static_cast<int64_t>(i)), bytes_of(docs[i])) << "document " << i;
    tokens += static_cast<int64_t>(docs[i].size()) + 1;
  }
  EXPECT_EQ(r.tokens, tokens);
  EXPECT_EQ(ds.num_tokens(), tokens);
  ASSERT_GT(updates.size(), 2u);  // chunked: several progress updates
  EXPECT_EQ(updates.back().documents, 301);
  EXPECT_EQ(updates.back().bytes_read, updates.back().total_bytes);
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/corpus.bin.tmp"));
}

TEST(Preprocess, OutputIndependentOfWorkersAndChunks) {
  const std::string dir = scratch_dir();
  write_corpus(dir, 200);
  ByteTokenizer tok;
  preprocess(tok, {.inputs = {dir + "/corpus.jsonl"}, .output_prefix = dir + "/one", .workers = 1, .chunk_bytes = 1});
  preprocess(tok, {.inputs = {dir + "/corpus.jsonl"}, .output_prefix = dir + "/two", .workers = 2, .chunk_bytes = 1 << 20});
  EXPECT_EQ(read_bytes(dir + "/one.bin"), read_bytes(dir + "/two.bin"));
  EXPECT_EQ(read_bytes(dir + "/one.idx"), read_bytes(dir + "/two.idx"));
}

TEST(Preprocess, WithoutEodAndWithSeparator) {
  const std::string dir = scratch_dir();
  write_text(dir + "/f.txt", "one\n%\n%\ntwo\n");
  ByteTokenizer tok;
  const PreprocessResult r = preprocess(tok, {.inputs = {dir + "/f.txt"}, .output_prefix = dir + "/f", .append_eod = false,
                                              .corpus = {.document_separator = "%"}});
  EXPECT_EQ(r.documents, 2);
  EXPECT_EQ(r.empty_documents, 1);
  const IndexedDataset ds(dir + "/f");
  EXPECT_EQ(ds.sequence(0), bytes_of("one\n", false));
  EXPECT_EQ(ds.sequence(1), bytes_of("two\n", false));
}

// A tokenizer that fails on one document, to check the error names where it came from.
class PickyTokenizer : public ByteTokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    FOUNDRY_CHECK(text.find("poison") == std::string_view::npos, "cannot encode poison");
    return ByteTokenizer::encode(text);
  }
};

// Ids outside the vocabulary are a tokenizer bug, reported rather than written.
class BrokenTokenizer : public ByteTokenizer {
 public:
  std::vector<int32_t> encode(std::string_view) const override { return {1, 999}; }
};

TEST(Preprocess, BadInputLeavesNoOutput) {
  const std::string dir = scratch_dir();
  write_text(dir + "/a.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"poison\"}\n");
  EXPECT_ERROR_MENTIONS(preprocess(PickyTokenizer{}, {.inputs = {dir + "/a.jsonl"}, .output_prefix = dir + "/x"}),
                        "a.jsonl:2", "cannot encode poison");
  EXPECT_ERROR_MENTIONS(preprocess(BrokenTokenizer{}, {.inputs = {dir + "/a.jsonl"}, .output_prefix = dir + "/x"}),
                        "a.jsonl:1", "id 999", "[0, 257)");
  write_text(dir + "/b.jsonl", "{\"text\": \"fine\"}\nnot json\n");
  EXPECT_ERROR_MENTIONS(preprocess(ByteTokenizer{}, {.inputs = {dir + "/b.jsonl"}, .output_prefix = dir + "/x"}),
                        "b.jsonl:2", "invalid JSON");
  for (const char* f : {"/x.bin", "/x.idx", "/x.bin.tmp", "/x.idx.tmp"}) EXPECT_FALSE(std::filesystem::exists(dir + f)) << f;
}

TEST(DatasetBuilder, SingleDatasetSplits) {
  const std::string dir = scratch_dir();
  write_corpus(dir, 100);
  preprocess(ByteTokenizer{}, {.inputs = {dir + "/corpus.jsonl"}, .output_prefix = dir + "/c"});
  const auto sets = build_gpt_datasets(
      {.blend = parse_data_path({dir + "/c"}), .split = "90,10,0", .seq_length = 16, .seed = 9}, {500, 20, 20});
  ASSERT_NE(sets[0], nullptr);
  ASSERT_NE(sets[1], nullptr);
  EXPECT_EQ(sets[2], nullptr);  // zero-weight split
  const auto* train = dynamic_cast<const GPTDataset*>(sets[0].get());
  const auto* valid = dynamic_cast<const GPTDataset*>(sets[1].get());
  ASSERT_NE(train, nullptr);
  ASSERT_NE(valid, nullptr);
  EXPECT_GE(train->size(), 500);
  EXPECT_GE(valid->size(), 20);
  // Train uses documents [0, 90), valid [90, 100).
  for (int32_t d : train->document_index()) EXPECT_LT(d, 90);
  for (int32_t d : valid->document_index()) EXPECT_GE(d, 90);
}

TEST(DatasetBuilder, BlendOfTwoDatasets) {
  const std::string dir = scratch_dir();
  write_corpus(dir, 60);
  ByteTokenizer tok;
  preprocess(tok, {.inputs = {dir + "/corpus.jsonl"}, .output_prefix = dir + "/a"});
  preprocess(tok, {.inputs = {dir + "/tail.txt"}, .output_prefix = dir + "/b"});
  const DataBlend blend = parse_data_path({"0.25", dir + "/a", "0.75", dir + "/b"});
  EXPECT_EQ(blend.weights, (std::vector<double>{0.25, 0.75}));
  const auto sets = build_gpt_datasets({.blend = blend, .split = "1", .seq_length = 8, .seed = 1}, {400, 0, 0});
  const auto* mix = dynamic_cast<const BlendedDataset*>(sets[0].get());
  ASSERT_NE(mix, nullptr);
  EXPECT_EQ(mix->size(), 400);
  int64_t from_b = 0;
  for (int16_t d : mix->dataset_index()) from_b += d;
  EXPECT_EQ(from_b, 300);
  EXPECT_EQ(sets[1], nullptr);
  EXPECT_ERROR_MENTIONS(parse_data_path({"0.3", "a", "b"}), "3 words");
  EXPECT_ERROR_MENTIONS(parse_data_path({"x", "a", "0.5", "b"}), "\"x\" is not a weight");
  EXPECT_ERROR_MENTIONS(
      build_gpt_datasets({.blend = parse_data_path({dir + "/b"}), .split = "1,1", .seq_length = 8}, {10, 10, 0}),
      "train split", "empty");
}

}  // namespace
}  // namespace foundry::testing

// Megatron's MMIDIDX indexed dataset: a fixture assembled byte by byte from the format spec
// (independently of foundry's writer) must load, foundry's writer must produce exactly those
// bytes, the committed fixture written by tools/ref/write_megatron_idx.py (Megatron's
// IndexedDatasetBuilder logic) must load and be reproduced byte for byte, round trips hold for
// every integer dtype, and corrupt or truncated files fail with errors naming the file.
#include "foundry/data/indexed_dataset.h"

#include <cstring>
#include <filesystem>

#include "data_testing.h"
#include "testing.h"

namespace foundry::testing {
namespace {

// Little-endian byte builder, written from the spec in indexed_dataset.h.
struct Bytes {
  std::vector<uint8_t> b;
  template <class T> Bytes& put(T v) {
    for (size_t i = 0; i < sizeof(T); ++i) b.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
    return *this;
  }
  Bytes& raw(const char* s, size_t n) {
    b.insert(b.end(), s, s + n);
    return *this;
  }
};

// Documents as lists of sequences.
using Docs = std::vector<std::vector<std::vector<int32_t>>>;

// .idx and .bin bytes of `docs` in uint16, from the spec.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> spec_files(const Docs& docs) {
  std::vector<int32_t> lengths;
  std::vector<int64_t> doc_index{0};
  Bytes bin;
  for (const auto& d : docs) {
    for (const auto& s : d) {
      lengths.push_back(static_cast<int32_t>(s.size()));
      for (int32_t t : s) bin.put(static_cast<uint16_t>(t));
    }
    doc_index.push_back(static_cast<int64_t>(lengths.size()));
  }
  Bytes idx;
  idx.raw("MMIDIDX\0\0", 9).put<uint64_t>(1).put<uint8_t>(8).put<uint64_t>(lengths.size()).put<uint64_t>(doc_index.size());
  for (int32_t l : lengths) idx.put(l);
  int64_t ptr = 0;
  for (int32_t l : lengths) {
    idx.put(ptr);
    ptr += 2 * l;
  }
  for (int64_t d : doc_index) idx.put(d);
  return {idx.b, bin.b};
}

const Docs kSpecDocs = {{{5, 6, 7}}, {{65535, 0}}, {{}}, {{1}, {2, 3}}, {{40000, 32768, 32767}}};

void expect_content(const IndexedDataset& ds, const Docs& docs) {
  int64_t seq = 0;
  ASSERT_EQ(ds.num_documents(), static_cast<int64_t>(docs.size()));
  EXPECT_EQ(ds.document_index(0), 0);
  for (size_t d = 0; d < docs.size(); ++d) {
    for (const auto& s : docs[d]) {
      ASSERT_LT(seq, ds.num_sequences());
      EXPECT_EQ(ds.sequence(seq), s) << "sequence " << seq;
      ++seq;
    }
    EXPECT_EQ(ds.document_index(static_cast<int64_t>(d) + 1), seq) << "document " << d;
  }
  EXPECT_EQ(ds.num_sequences(), seq);
}

TEST(IndexedDataset, SpecFixtureLoads) {
  const std::string p = scratch_dir() + "/spec";
  const auto [idx, bin] = spec_files(kSpecDocs);
  write_bytes(p + ".idx", idx);
  write_bytes(p + ".bin", bin);
  const IndexedDataset ds(p);
  EXPECT_EQ(ds.dtype(), IndexedDType::u16);
  EXPECT_EQ(ds.num_tokens(), 11);
  EXPECT_EQ(ds.sequence_pointer(4), 2 * (3 + 2 + 0 + 1));
  expect_content(ds, kSpecDocs);
  std::vector<int32_t> part(2);
  ds.read(5, 1, part);  // tokens 1..2 of {40000, 32768, 32767}
  EXPECT_EQ(part, (std::vector<int32_t>{32768, 32767}));
}

TEST(IndexedDataset, WriterMatchesSpecBytes) {
  const std::string p = scratch_dir() + "/w";
  IndexedDatasetWriter w(p, IndexedDType::u16);
  for (const auto& d : kSpecDocs) {
    if (d.size() == 1) {
      w.add_document(d[0]);
    } else {
      for (const auto& s : d) w.add_sequence(s);
      w.end_document();
    }
  }
  w.finalize();
  const auto [idx, bin] = spec_files(kSpecDocs);
  EXPECT_EQ(read_bytes(p + ".idx"), idx);
  EXPECT_EQ(read_bytes(p + ".bin"), bin);
  EXPECT_FALSE(std::filesystem::exists(p + ".idx.tmp"));
  EXPECT_FALSE(std::filesystem::exists(p + ".bin.tmp"));
}

TEST(IndexedDataset, RoundTripEveryIntegerDtype) {
  const std::string dir = scratch_dir();
  struct Case {
    IndexedDType dtype;
    std::vector<int32_t> ids;
  };
  const std::vector<Case> cases = {
      {IndexedDType::u16, {0, 1, 255, 256, 32767, 32768, 65534, 65535}},
      {IndexedDType::i32, {0, -1, 65536, 100277, 2147483647, -2147483647 - 1}},
      {IndexedDType::u8, {0, 127, 128, 255}},
      {IndexedDType::i8, {-128, -1, 0, 127}},
      {IndexedDType::i16, {-32768, -1, 0, 32767}},
      {IndexedDType::i64, {-2147483647 - 1, 0, 2147483647}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(indexed_dtype_name(c.dtype)));
    const std::string p = dir + "/" + std::string(indexed_dtype_name(c.dtype));
    // Documents: all ids, each prefix of them, and an empty one.
    std::vector<std::vector<int32_t>> docs = {c.ids, {}};
    for (size_t n = 1; n < c.ids.size(); ++n) docs.emplace_back(c.ids.begin(), c.ids.begin() + static_cast<long>(n));
    write_dataset(p, docs, c.dtype);
    const IndexedDataset ds(p);
    EXPECT_EQ(ds.dtype(), c.dtype);
    EXPECT_EQ(std::filesystem::file_size(p + ".bin"),
              static_cast<uintmax_t>(ds.num_tokens() * indexed_dtype_size(c.dtype)));
    ASSERT_EQ(ds.num_sequences(), static_cast<int64_t>(docs.size()));
    EXPECT_EQ(ds.num_documents(), static_cast<int64_t>(docs.size()));
    for (size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(ds.sequence(static_cast<int64_t>(i)), docs[i]);
  }
}

TEST(IndexedDataset, EmptyDataset) {
  const std::string p = scratch_dir() + "/empty";
  write_dataset(p, {});
  EXPECT_EQ(std::filesystem::file_size(p + ".bin"), 0u);
  EXPECT_EQ(std::filesystem::file_size(p + ".idx"), static_cast<uintmax_t>(kIndexHeaderBytes + 8));
  const IndexedDataset ds(p);
  EXPECT_EQ(ds.num_sequences(), 0);
  EXPECT_EQ(ds.num_documents(), 0);
}

TEST(IndexedDataset, OptimalDtypeIsMegatrons) {
  EXPECT_EQ(optimal_indexed_dtype(50257), IndexedDType::u16);
  EXPECT_EQ(optimal_indexed_dtype(65499), IndexedDType::u16);
  EXPECT_EQ(optimal_indexed_dtype(65500), IndexedDType::i32);
  EXPECT_EQ(optimal_indexed_dtype(100277), IndexedDType::i32);
}

// The documents of tools/ref/write_megatron_idx.py: tiny_documents().
Docs megatron_tiny_documents() {
  Docs docs;
  for (int d = 0; d < 8; ++d) {
    const int n = (d * 7) % 11 + 1;
    std::vector<int32_t> s;
    for (int j = 0; j < n; ++j) s.push_back((d * 9973 + j * 4099) % 65500);
    docs.push_back({s});
  }
  docs[3] = {{1, 2, 3}, {65499, 40000}, {7}};
  docs[5] = {{}};
  return docs;
}

const std::string kMegatronTiny = FOUNDRY_FIXTURES_DIR "/megatron_tiny";

TEST(IndexedDataset, LoadsMegatronWrittenFixture) {
  const IndexedDataset ds(kMegatronTiny);
  EXPECT_EQ(ds.dtype(), IndexedDType::u16);
  EXPECT_EQ(ds.num_sequences(), 10);
  EXPECT_EQ(ds.num_documents(), 8);
  expect_content(ds, megatron_tiny_documents());
  EXPECT_NE(ds.describe().find("8 documents, 10 sequences, 42 tokens, uint16"), std::string::npos) << ds.describe();
}

// The reverse direction: foundry's writer reproduces Megatron's bytes exactly, so Megatron
// reads what foundry writes. The file stays in the temp dir for
// `tools/ref/write_megatron_idx.py --check-tiny PREFIX`.
TEST(IndexedDataset, WriterReproducesMegatronFixture) {
  const std::string p = scratch_dir() + "/megatron_tiny";
  IndexedDatasetWriter w(p, optimal_indexed_dtype(65000));
  for (const auto& d : megatron_tiny_documents()) {
    for (const auto& s : d) w.add_sequence(s);
    w.end_document();
  }
  w.finalize();
  EXPECT_EQ(read_bytes(p + ".idx"), read_bytes(kMegatronTiny + ".idx"));
  EXPECT_EQ(read_bytes(p + ".bin"), read_bytes(kMegatronTiny + ".bin"));
}

TEST(IndexedDataset, WriterRejectsIdsOutsideDtype) {
  const std::string p = scratch_dir() + "/bad";
  IndexedDatasetWriter w(p, IndexedDType::u16);
  const std::vector<int32_t> big = {1, 70000};
  EXPECT_ERROR_MENTIONS(w.add_document(big), "70000", "uint16", p.c_str());
  const std::vector<int32_t> neg = {-1};
  EXPECT_ERROR_MENTIONS(w.add_document(neg), "-1", "uint16");
  EXPECT_ERROR_MENTIONS(IndexedDatasetWriter(p + "f", IndexedDType::f32), "integer dtype", "float32");
  EXPECT_ERROR_MENTIONS(IndexedDatasetWriter(p + "/no/such/dir/x", IndexedDType::u16), "cannot create");
}

TEST(IndexedDataset, UnfinishedWriterLeavesNothing) {
  const std::string dir = scratch_dir();
  {
    IndexedDatasetWriter w(dir + "/x", IndexedDType::u16);
    const std::vector<int32_t> d = {1, 2, 3};
    w.add_document(d);
    EXPECT_TRUE(std::filesystem::exists(dir + "/x.bin.tmp"));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

// ---- bad input ----------------------------------------------------------------------------

class CorruptIndexedDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    p_ = scratch_dir() + "/c";
    ip_ = p_ + ".idx";
    bp_ = p_ + ".bin";
    std::tie(idx_, bin_) = spec_files(kSpecDocs);
  }
  // Writes the (modified) files.
  void write() {
    write_bytes(p_ + ".idx", idx_);
    write_bytes(p_ + ".bin", bin_);
  }
  std::string p_, ip_, bp_;  // prefix, .idx and .bin paths
  std::vector<uint8_t> idx_, bin_;
};

TEST_F(CorruptIndexedDataset, IntactLoads) {
  write();
  EXPECT_NO_THROW(IndexedDataset{p_});
}

TEST_F(CorruptIndexedDataset, MissingFiles) {
  write();
  std::filesystem::remove(p_ + ".bin");
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, bp_.c_str());
  const std::string nothing = p_ + "_nothing";
  const std::string nothing_idx = nothing + ".idx";
  EXPECT_ERROR_MENTIONS(IndexedDataset{nothing}, nothing_idx.c_str());
}

TEST_F(CorruptIndexedDataset, TruncatedHeader) {
  idx_.resize(20);
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "truncated");
}

TEST_F(CorruptIndexedDataset, TruncatedIndexArrays) {
  for (const size_t cut : {size_t{1}, size_t{8}, size_t{60}}) {
    SetUp();
    idx_.resize(idx_.size() - cut);
    write();
    EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "truncated");
  }
}

TEST_F(CorruptIndexedDataset, TruncatedData) {
  bin_.resize(bin_.size() - 2);
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), bp_.c_str(), "truncated");
  bin_.clear();
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, bp_.c_str(), "truncated");
}

TEST_F(CorruptIndexedDataset, DataLongerThanIndex) {
  bin_.push_back(0);
  bin_.push_back(0);
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, bp_.c_str(), "covers");
}

TEST_F(CorruptIndexedDataset, BadMagic) {
  idx_[0] = 'X';
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "MMIDIDX");
}

TEST_F(CorruptIndexedDataset, BadVersion) {
  idx_[9] = 2;
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "version 2");
}

TEST_F(CorruptIndexedDataset, BadDtypeCode) {
  idx_[17] = 9;
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "dtype code 9");
  idx_[17] = 7;
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "float32");
}

TEST_F(CorruptIndexedDataset, HugeCountsDoNotOverflow) {
  for (size_t i = 18; i < 26; ++i) idx_[i] = 0xff;  // sequence count 2^64 - 1
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "corrupt");
}

TEST_F(CorruptIndexedDataset, DocumentIndexMustEndAtSequenceCount) {
  idx_[idx_.size() - 8] = 5;  // last entry 6 -> 5
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "document index ends at 5");
}

TEST_F(CorruptIndexedDataset, PointerOutsideData) {
  // Pointer of sequence 1 (after the 6 lengths): 2 -> 4000.
  const size_t at = static_cast<size_t>(kIndexHeaderBytes) + 6 * 4 + 8;
  idx_[at] = 0xa0;
  idx_[at + 1] = 0x0f;
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "sequence 1", "outside");
}

TEST_F(CorruptIndexedDataset, NegativeLength) {
  const size_t at = static_cast<size_t>(kIndexHeaderBytes);
  for (size_t i = 0; i < 4; ++i) idx_[at + i] = 0xff;  // length of sequence 0 = -1
  write();
  EXPECT_ERROR_MENTIONS(IndexedDataset{p_}, ip_.c_str(), "negative length");
}

TEST_F(CorruptIndexedDataset, ReadsOutsideSequencesFail) {
  write();
  const IndexedDataset ds(p_);
  std::vector<int32_t> out(3);
  EXPECT_ERROR_MENTIONS(ds.read(1, 0, out), "outside sequence 1");
  EXPECT_ERROR_MENTIONS(ds.sequence(99), "sequence 99 out of range");
  EXPECT_ERROR_MENTIONS(ds.sequence(0, std::span<int32_t>(out.data(), 2)), "buffer holds 2");
}

}  // namespace
}  // namespace foundry::testing

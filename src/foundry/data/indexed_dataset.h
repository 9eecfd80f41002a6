// Megatron-LM's indexed dataset ("MMIDIDX"), as written by IndexedDatasetBuilder and read by
// IndexedDataset in megatron/core/datasets/indexed_dataset.py. A dataset is a pair of files:
//
//   P.bin  the tokens of every sequence, back to back, as `dtype` (little-endian, no header)
//   P.idx  the index, little-endian:
//            magic        9 bytes   "MMIDIDX\0\0"
//            version      u64       1
//            dtype code   u8        1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64,
//                                   7 float32, 8 uint16
//            seq count    u64       N sequences
//            doc count    u64       D + 1 (entries of the document index)
//            lengths      i32 x N   tokens per sequence
//            pointers     i64 x N   byte offset of each sequence in P.bin
//            doc index    i64 x (D+1)  0, then the sequence count after each document
//            [modes       i8 x N    only in multimodal datasets; ignored here]
//
// A document is one or more sequences (Megatron's preprocessing writes one sequence per
// document unless it splits sentences); GPT datasets sample over sequences. Megatron picks
// uint16 tokens when the vocabulary has fewer than 65500 entries, else int32.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/data/mapped_file.h"

namespace foundry {

enum class IndexedDType : uint8_t {
  u8 = 1, i8 = 2, i16 = 3, i32 = 4, i64 = 5, f64 = 6, f32 = 7, u16 = 8
};

int64_t indexed_dtype_size(IndexedDType t);
std::string_view indexed_dtype_name(IndexedDType t);  // numpy names: "uint16", "int32", ...
// Megatron's DType.optimal_dtype: uint16 when vocab_size < 65500, else int32.
IndexedDType optimal_indexed_dtype(int64_t vocab_size);

inline constexpr char kIndexMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
inline constexpr int64_t kIndexHeaderBytes = 9 + 8 + 1 + 8 + 8;  // 34

// Streaming writer. Tokens go straight to P.bin.tmp; the index (12 bytes per sequence, 8 per
// document) is kept in memory and written by finalize(), which then renames P.bin.tmp -> P.bin
// and P.idx.tmp -> P.idx. A writer destroyed before finalize() removes its .tmp files.
class IndexedDatasetWriter {
 public:
  // Integer dtypes only (token ids). The directory of `prefix` must exist.
  IndexedDatasetWriter(std::string prefix, IndexedDType dtype);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  // One document made of one sequence (Megatron's add_document with a single length).
  // Every id must fit the dtype (e.g. 0..65535 for uint16), else a foundry::Error.
  void add_document(std::span<const int32_t> tokens);
  // Several sequences per document: add_sequence() each, then end_document()
  // (Megatron's add_item / end_document).
  void add_sequence(std::span<const int32_t> tokens);
  void end_document();
  // Writes P.idx and moves both files into place. Sequences added after the last
  // end_document() are closed into a final document first.
  void finalize();

  int64_t num_sequences() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_documents() const { return static_cast<int64_t>(doc_index_.size()) - 1; }
  int64_t num_tokens() const { return num_tokens_; }
  IndexedDType dtype() const { return dtype_; }

 private:
  void remove_temporaries();
  std::string prefix_;
  IndexedDType dtype_;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> doc_index_{0};
  std::vector<uint8_t> buffer_;  // one sequence converted to dtype
  int64_t num_tokens_ = 0;
  bool finalized_ = false;
};

// Memory-mapped reader. Opening validates the header, the .idx size against the counts, the
// document index (starts at 0, non-decreasing, ends at the sequence count) and every sequence's
// byte range against the .bin size; any mismatch (truncation, wrong file, corruption) is a
// foundry::Error naming the file. Reads are thread-safe.
class IndexedDataset {
 public:
  explicit IndexedDataset(const std::string& prefix);  // opens prefix.idx and prefix.bin

  const std::string& prefix() const { return prefix_; }
  IndexedDType dtype() const { return dtype_; }
  int64_t num_sequences() const { return num_sequences_; }
  int64_t num_documents() const { return num_doc_entries_ - 1; }
  int64_t num_tokens() const { return num_tokens_; }

  int32_t sequence_length(int64_t i) const;
  int64_t sequence_pointer(int64_t i) const;  // byte offset in P.bin
  int64_t document_index(int64_t j) const;    // j in [0, num_documents()]

  // Tokens [offset, offset + out.size()) of sequence i, converted to int32.
  void read(int64_t i, int64_t offset, std::span<int32_t> out) const;
  // The whole sequence i into `out` (out.size() must equal its length).
  void sequence(int64_t i, std::span<int32_t> out) const;
  std::vector<int32_t> sequence(int64_t i) const;

  // "P: 1000 documents, 1000 sequences, 523412 tokens, uint16 (1.0 MiB)"
  std::string describe() const;

 private:
  void validate();
  std::string prefix_;
  MappedFile idx_;
  MappedFile bin_;
  IndexedDType dtype_ = IndexedDType::i32;
  int64_t itemsize_ = 4;
  int64_t num_sequences_ = 0;
  int64_t num_doc_entries_ = 0;
  int64_t num_tokens_ = 0;
  const uint8_t* lengths_ = nullptr;    // i32 x N, possibly unaligned (offset 34)
  const uint8_t* pointers_ = nullptr;   // i64 x N
  const uint8_t* doc_index_ = nullptr;  // i64 x (D + 1)
};

}  // namespace foundry

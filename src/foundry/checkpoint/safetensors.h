// The safetensors file format (Hugging Face, https://github.com/huggingface/safetensors,
// `safetensors/src/tensor.rs`), written and read exactly:
//
//   bytes [0, 8)        N, the header length, u64 little-endian
//   bytes [8, 8 + N)    UTF-8 JSON object, padded with spaces (0x20) to a multiple of 8:
//                         {"__metadata__": {str: str},                       (optional)
//                          name: {"dtype": "F32", "shape": [d0, d1, ...],
//                                 "data_offsets": [begin, end]}, ...}
//   bytes [8 + N, EOF)  the data section: every tensor's bytes, row-major, little-endian,
//                       contiguous; offsets are relative to the data section's first byte and
//                       the tensors cover it exactly (no gaps, no overlap, nothing after).
//
// The writer produces the reference writer's bytes: tensors ordered by dtype alignment
// (descending, in the Rust `Dtype` enum order) then by name, compact JSON with "__metadata__"
// first and tensors in data order, header padded to 8 bytes. The reader validates everything
// (header length against the file size, the JSON, each entry's dtype/shape/offsets, duplicate
// names, coverage of the data section) and reports each problem as one foundry::Error naming
// the file and the tensor.
//
// Sharded form (Hugging Face `transformers` / `huggingface_hub` convention): when the tensors
// exceed one shard, `model-00001-of-00003.safetensors` ... and `model.safetensors.index.json`
// = {"metadata": {"total_size": <sum of tensor bytes>}, "weight_map": {name: shard file}}.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "foundry/core/tensor.h"

namespace foundry {

// One tensor to write, under its name. Device tensors are staged through host memory.
struct NamedTensor {
  std::string name;
  TensorView tensor;
};
using SafetensorsMetadata = std::map<std::string, std::string>;

// Header dtype string of a foundry dtype ("F32", "BF16", "F8_E4M3", "F4" for e2m1, ...).
// Element bytes are copied as stored (F4 packs two elements per byte, as foundry's e2m1 does).
std::string_view safetensors_dtype(DType t);
// The foundry dtype of a header dtype string; nullopt for a valid safetensors dtype foundry
// does not hold (F64, I16, U16, U32, U64, C64, F6_*); throws for an unknown string.
std::optional<DType> dtype_from_safetensors(std::string_view name);

// The whole file as bytes (header + data); what save_safetensors writes.
std::string serialize_safetensors(std::span<const NamedTensor> tensors,
                                  const SafetensorsMetadata& metadata = {});
// Writes the file at path (created or replaced in place; callers wanting atomicity write to a
// temporary name and rename). Returns the file size in bytes.
int64_t save_safetensors(const std::string& path, std::span<const NamedTensor> tensors,
                         const SafetensorsMetadata& metadata = {});

// One validated header entry.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;      // as written in the header, e.g. "F32"
  std::optional<DType> dtype;  // nullopt when foundry has no such dtype
  Shape shape;
  int64_t begin = 0, end = 0;  // byte range within the data section
  int64_t nbytes() const { return end - begin; }
};

// A safetensors file opened for reading: the header is read and validated on construction,
// tensor bytes are read (pread) on demand, so opening a large file costs only its header.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& o) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) = delete;
  SafetensorsFile(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in data order
  const SafetensorsMetadata& metadata() const { return metadata_; }
  int64_t header_bytes() const { return header_bytes_; }  // N
  int64_t data_bytes() const { return data_bytes_; }

  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming name and file
  // The tensor's contents in a new CPU tensor.
  Tensor read(const std::string& name) const;
  // Reads into dst (any device), which must have the entry's dtype and shape.
  void read_into(const std::string& name, Tensor& dst) const;

 private:
  std::string path_;
  int fd_ = -1;
  int64_t header_bytes_ = 0, data_bytes_ = 0;
  SafetensorsMetadata metadata_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
};

// Every tensor of one file, by name.
std::map<std::string, Tensor> load_safetensors(const std::string& path);

// ---- sharded files (implemented in safetensors_sharded.cpp) ----------------------------------

// The file names a save of `shards` shards uses: "model.safetensors" when shards == 1, else
// "model-00001-of-0000N.safetensors" ...; and the index name "model.safetensors.index.json".
std::string shard_file_name(std::string_view base, int shard, int shards);
std::string shard_index_name(std::string_view base);

struct ShardedSaveResult {
  std::vector<std::string> files;  // file names inside dir, in order
  int64_t total_size = 0;          // sum of tensor bytes (the index's metadata.total_size)
};

// Writes tensors into dir (created if missing) under `base`: one `base.safetensors` when their
// bytes fit in max_shard_bytes, else shards filled in the given order (a new shard starts when
// the next tensor would overflow the current one; a tensor larger than the limit gets its own
// shard) plus the index JSON. Each file carries `metadata` (default {"format": "pt"}, which
// Hugging Face loaders require). Removes files of the other form left by an earlier save.
ShardedSaveResult save_sharded(const std::string& dir, std::span<const NamedTensor> tensors,
                               int64_t max_shard_bytes,
                               const SafetensorsMetadata& metadata = {{"format", "pt"}},
                               std::string_view base = "model");

// The tensors of a sharded or single-file save, opened for reading. With an index the index is
// authoritative: every shard it names must exist and hold exactly the tensors mapped to it.
class ShardedSafetensors {
 public:
  ShardedSafetensors(const std::string& dir, std::string_view base = "model");

  const std::vector<SafetensorsFile>& files() const { return files_; }
  bool sharded() const { return sharded_; }
  std::vector<std::string> names() const;  // every tensor, by shard then data order
  int64_t total_size() const;              // sum of tensor bytes
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  Tensor read(const std::string& name) const;
  void read_into(const std::string& name, Tensor& dst) const;

 private:
  std::string dir_;
  bool sharded_ = false;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

// True when dir holds `base.safetensors` or `base.safetensors.index.json`.
bool has_safetensors(const std::string& dir, std::string_view base = "model");
// Every tensor of a sharded or single-file save, by name.
std::map<std::string, Tensor> load_sharded(const std::string& dir, std::string_view base = "model");

}  // namespace foundry

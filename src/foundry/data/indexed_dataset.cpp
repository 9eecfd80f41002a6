#include "foundry/data/indexed_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "foundry/core/check.h"

namespace foundry {

static_assert(std::endian::native == std::endian::little,
              "the MMIDIDX format is little-endian; foundry reads it in place");

namespace {

bool valid_code(uint8_t c) { return c >= 1 && c <= 8; }
bool is_float(IndexedDType t) { return t == IndexedDType::f32 || t == IndexedDType::f64; }

template <class T> T load(const uint8_t* base, int64_t i) {
  T v;
  std::memcpy(&v, base + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

// Range of ids a dtype holds.
void id_range(IndexedDType t, int64_t& lo, int64_t& hi) {
  switch (t) {
    case IndexedDType::u8: lo = 0; hi = 255; return;
    case IndexedDType::i8: lo = -128; hi = 127; return;
    case IndexedDType::i16: lo = -32768; hi = 32767; return;
    case IndexedDType::u16: lo = 0; hi = 65535; return;
    default: lo = std::numeric_limits<int32_t>::min(); hi = std::numeric_limits<int32_t>::max(); return;
  }
}

template <class T> void narrow(std::span<const int32_t> in, uint8_t* out) {
  T* o = reinterpret_cast<T*>(out);
  for (size_t i = 0; i < in.size(); ++i) o[i] = static_cast<T>(in[i]);
}

template <class T> void widen(const uint8_t* in, int64_t n, int32_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(load<T>(in, i));
}

void write_all(std::FILE* f, const void* data, size_t bytes, const std::string& path) {
  if (bytes == 0) return;
  FOUNDRY_CHECK(std::fwrite(data, 1, bytes, f) == bytes, "cannot write {}: {}", path, std::strerror(errno));
}

}  // namespace

int64_t indexed_dtype_size(IndexedDType t) {
  switch (t) {
    case IndexedDType::u8: case IndexedDType::i8: return 1;
    case IndexedDType::i16: case IndexedDType::u16: return 2;
    case IndexedDType::i32: case IndexedDType::f32: return 4;
    case IndexedDType::i64: case IndexedDType::f64: return 8;
  }
  FOUNDRY_FAIL("invalid indexed dataset dtype code {}", static_cast<int>(t));
}

std::string_view indexed_dtype_name(IndexedDType t) {
  switch (t) {
    case IndexedDType::u8: return "uint8";
    case IndexedDType::i8: return "int8";
    case IndexedDType::i16: return "int16";
    case IndexedDType::i32: return "int32";
    case IndexedDType::i64: return "int64";
    case IndexedDType::f64: return "float64";
    case IndexedDType::f32: return "float32";
    case IndexedDType::u16: return "uint16";
  }
  return "invalid";
}

IndexedDType optimal_indexed_dtype(int64_t vocab_size) {
  return vocab_size < 65500 ? IndexedDType::u16 : IndexedDType::i32;
}

// ---- writer ------------------------------------------------------------------------------

IndexedDatasetWriter::IndexedDatasetWriter(std::string prefix, IndexedDType dtype)
    : prefix_(std::move(prefix)), dtype_(dtype) {
  FOUNDRY_CHECK(valid_code(static_cast<uint8_t>(dtype)) && !is_float(dtype),
                "indexed dataset {}: token ids need an integer dtype, got {}", prefix_,
                indexed_dtype_name(dtype));
  const std::string path = prefix_ + ".bin.tmp";
  bin_ = std::fopen(path.c_str(), "wb");
  FOUNDRY_CHECK(bin_ != nullptr, "cannot create {}: {}", path, std::strerror(errno));
  std::setvbuf(bin_, nullptr, _IOFBF, 1 << 20);
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (!finalized_) remove_temporaries();
}

void IndexedDatasetWriter::remove_temporaries() {
  if (bin_ != nullptr) std::fclose(bin_);
  bin_ = nullptr;
  std::error_code ec;
  std::filesystem::remove(prefix_ + ".bin.tmp", ec);
  std::filesystem::remove(prefix_ + ".idx.tmp", ec);
}

void IndexedDatasetWriter::add_sequence(std::span<const int32_t> tokens) {
  FOUNDRY_CHECK(!finalized_, "indexed dataset {}: add after finalize()", prefix_);
  FOUNDRY_CHECK(tokens.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                "indexed dataset {}: a sequence of {} tokens exceeds the format's int32 length",
                prefix_, tokens.size());
  int64_t lo, hi;
  id_range(dtype_, lo, hi);
  if (dtype_ != IndexedDType::i32 && dtype_ != IndexedDType::i64) {
    for (size_t i = 0; i < tokens.size(); ++i)
      FOUNDRY_CHECK(tokens[i] >= lo && tokens[i] <= hi,
                    "indexed dataset {}: token id {} does not fit dtype {} (sequence {}, position {})",
                    prefix_, tokens[i], indexed_dtype_name(dtype_), lengths_.size(), i);
  }
  const int64_t item = indexed_dtype_size(dtype_);
  buffer_.resize(tokens.size() * static_cast<size_t>(item));
  switch (dtype_) {
    case IndexedDType::u8: narrow<uint8_t>(tokens, buffer_.data()); break;
    case IndexedDType::i8: narrow<int8_t>(tokens, buffer_.data()); break;
    case IndexedDType::i16: narrow<int16_t>(tokens, buffer_.data()); break;
    case IndexedDType::u16: narrow<uint16_t>(tokens, buffer_.data()); break;
    case IndexedDType::i32: narrow<int32_t>(tokens, buffer_.data()); break;
    case IndexedDType::i64: narrow<int64_t>(tokens, buffer_.data()); break;
    default: FOUNDRY_FAIL("indexed dataset {}: unsupported dtype", prefix_);
  }
  write_all(bin_, buffer_.data(), buffer_.size(), prefix_ + ".bin.tmp");
  lengths_.push_back(static_cast<int32_t>(tokens.size()));
  num_tokens_ += static_cast<int64_t>(tokens.size());
}

void IndexedDatasetWriter::end_document() {
  FOUNDRY_CHECK(!finalized_, "indexed dataset {}: end_document after finalize()", prefix_);
  doc_index_.push_back(static_cast<int64_t>(lengths_.size()));
}

void IndexedDatasetWriter::add_document(std::span<const int32_t> tokens) {
  add_sequence(tokens);
  end_document();
}

void IndexedDatasetWriter::finalize() {
  FOUNDRY_CHECK(!finalized_, "indexed dataset {}: finalize() called twice", prefix_);
  if (doc_index_.back() != static_cast<int64_t>(lengths_.size())) end_document();
  const std::string bin_tmp = prefix_ + ".bin.tmp", idx_tmp = prefix_ + ".idx.tmp";
  FOUNDRY_CHECK(std::fflush(bin_) == 0, "cannot write {}: {}", bin_tmp, std::strerror(errno));
  const int bin_closed = std::fclose(bin_);
  bin_ = nullptr;
  FOUNDRY_CHECK(bin_closed == 0, "cannot write {}: {}", bin_tmp, std::strerror(errno));

  std::FILE* f = std::fopen(idx_tmp.c_str(), "wb");
  FOUNDRY_CHECK(f != nullptr, "cannot create {}: {}", idx_tmp, std::strerror(errno));
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  try {
    const uint64_t version = 1, nseq = lengths_.size(), ndoc = doc_index_.size();
    const uint8_t code = static_cast<uint8_t>(dtype_);
    write_all(f, kIndexMagic, sizeof(kIndexMagic), idx_tmp);
    write_all(f, &version, 8, idx_tmp);
    write_all(f, &code, 1, idx_tmp);
    write_all(f, &nseq, 8, idx_tmp);
    write_all(f, &ndoc, 8, idx_tmp);
    write_all(f, lengths_.data(), lengths_.size() * 4, idx_tmp);
    // Pointers: byte offsets of consecutive sequences (Megatron's _sequence_pointers).
    const int64_t item = indexed_dtype_size(dtype_);
    std::vector<int64_t> chunk;
    chunk.reserve(1 << 16);
    int64_t ptr = 0;
    for (size_t i = 0; i < lengths_.size(); ++i) {
      chunk.push_back(ptr);
      ptr += static_cast<int64_t>(lengths_[i]) * item;
      if (chunk.size() == chunk.capacity() || i + 1 == lengths_.size()) {
        write_all(f, chunk.data(), chunk.size() * 8, idx_tmp);
        chunk.clear();
      }
    }
    write_all(f, doc_index_.data(), doc_index_.size() * 8, idx_tmp);
    FOUNDRY_CHECK(std::fflush(f) == 0, "cannot write {}: {}", idx_tmp, std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    remove_temporaries();
    throw;
  }
  FOUNDRY_CHECK(std::fclose(f) == 0, "cannot write {}: {}", idx_tmp, std::strerror(errno));
  std::error_code ec;
  std::filesystem::rename(bin_tmp, prefix_ + ".bin", ec);
  FOUNDRY_CHECK(!ec, "cannot rename {} to {}.bin: {}", bin_tmp, prefix_, ec.message());
  std::filesystem::rename(idx_tmp, prefix_ + ".idx", ec);
  FOUNDRY_CHECK(!ec, "cannot rename {} to {}.idx: {}", idx_tmp, prefix_, ec.message());
  finalized_ = true;
}

// ---- reader ------------------------------------------------------------------------------

IndexedDataset::IndexedDataset(const std::string& prefix) : prefix_(prefix) {
  const std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  FOUNDRY_CHECK(std::filesystem::exists(idx_path) && std::filesystem::exists(bin_path),
                "indexed dataset {}: expected both {} and {}", prefix, idx_path, bin_path);
  idx_ = MappedFile(idx_path);
  bin_ = MappedFile(bin_path);
  validate();
}

void IndexedDataset::validate() {
  const std::string& ip = idx_.path();
  const uint8_t* p = idx_.data();
  const int64_t size = idx_.size();
  FOUNDRY_CHECK(size >= kIndexHeaderBytes,
                "{}: truncated index: {} bytes, the header alone is {}", ip, size, kIndexHeaderBytes);
  FOUNDRY_CHECK(std::memcmp(p, kIndexMagic, 9) == 0,
                "{}: not a Megatron indexed dataset index (magic is not MMIDIDX)", ip);
  const uint64_t version = load<uint64_t>(p + 9, 0);
  FOUNDRY_CHECK(version == 1, "{}: unsupported index version {} (expected 1)", ip, version);
  const uint8_t code = p[17];
  FOUNDRY_CHECK(valid_code(code), "{}: invalid dtype code {} (expected 1..8)", ip, code);
  dtype_ = static_cast<IndexedDType>(code);
  FOUNDRY_CHECK(!is_float(dtype_), "{}: dtype {} holds no token ids", ip, indexed_dtype_name(dtype_));
  itemsize_ = indexed_dtype_size(dtype_);
  const uint64_t nseq = load<uint64_t>(p + 18, 0), ndoc = load<uint64_t>(p + 26, 0);
  // Bound the counts by the file size before multiplying, so corrupt counts cannot overflow.
  const uint64_t room = static_cast<uint64_t>(size - kIndexHeaderBytes);
  FOUNDRY_CHECK(nseq <= room / 12 && ndoc <= room / 8 && ndoc >= 1,
                "{}: truncated or corrupt index: {} sequences and {} document entries do not fit "
                "in {} bytes", ip, nseq, ndoc, size);
  num_sequences_ = static_cast<int64_t>(nseq);
  num_doc_entries_ = static_cast<int64_t>(ndoc);
  const int64_t expected = kIndexHeaderBytes + 12 * num_sequences_ + 8 * num_doc_entries_;
  // Multimodal datasets append one int8 mode per sequence.
  FOUNDRY_CHECK(size == expected || size == expected + num_sequences_,
                "{}: index is {} bytes, but {} sequences and {} document entries need {}{}", ip,
                size, nseq, ndoc, expected, size < expected ? " (truncated)" : "");
  lengths_ = p + kIndexHeaderBytes;
  pointers_ = lengths_ + 4 * num_sequences_;
  doc_index_ = pointers_ + 8 * num_sequences_;

  FOUNDRY_CHECK(document_index(0) == 0, "{}: document index must start at 0, got {}", ip, document_index(0));
  for (int64_t j = 1; j < num_doc_entries_; ++j) {
    const int64_t a = document_index(j - 1), b = document_index(j);
    FOUNDRY_CHECK(b >= a, "{}: document index decreases at entry {} ({} after {})", ip, j, b, a);
  }
  FOUNDRY_CHECK(document_index(num_doc_entries_ - 1) == num_sequences_,
                "{}: document index ends at {}, expected the sequence count {}", ip,
                document_index(num_doc_entries_ - 1), num_sequences_);

  const std::string& bp = bin_.path();
  const int64_t bin_size = bin_.size();
  int64_t end = 0, tokens = 0;
  for (int64_t i = 0; i < num_sequences_; ++i) {
    const int64_t len = sequence_length(i), ptr = sequence_pointer(i);
    FOUNDRY_CHECK(len >= 0, "{}: sequence {} has negative length {}", ip, i, len);
    const bool inside = ptr >= 0 && ptr <= bin_size && len * itemsize_ <= bin_size - ptr;
    FOUNDRY_CHECK(inside && ptr % itemsize_ == 0,
                  "{}: sequence {} ({} tokens at byte {}) lies outside {} ({} bytes){}", ip, i, len,
                  ptr, bp, bin_size, inside ? ": misaligned pointer" : ": truncated or mismatched data file");
    end = std::max(end, ptr + len * itemsize_);
    tokens += len;
  }
  FOUNDRY_CHECK(end == bin_size, "{}: data file is {} bytes but the index {} covers {} bytes", bp,
                bin_size, ip, end);
  num_tokens_ = tokens;
}

int32_t IndexedDataset::sequence_length(int64_t i) const { return load<int32_t>(lengths_, i); }
int64_t IndexedDataset::sequence_pointer(int64_t i) const { return load<int64_t>(pointers_, i); }
int64_t IndexedDataset::document_index(int64_t j) const { return load<int64_t>(doc_index_, j); }

void IndexedDataset::read(int64_t i, int64_t offset, std::span<int32_t> out) const {
  FOUNDRY_CHECK(i >= 0 && i < num_sequences_, "{}: sequence {} out of range [0, {})", prefix_, i,
                num_sequences_);
  const int64_t len = sequence_length(i), n = static_cast<int64_t>(out.size());
  FOUNDRY_CHECK(offset >= 0 && n <= len - offset, "{}: tokens [{}, {}) outside sequence {} of {} tokens",
                prefix_, offset, offset + n, i, len);
  const uint8_t* src = bin_.data() + sequence_pointer(i) + offset * itemsize_;
  int32_t* dst = out.data();
  switch (dtype_) {
    case IndexedDType::u8: widen<uint8_t>(src, n, dst); break;
    case IndexedDType::i8: widen<int8_t>(src, n, dst); break;
    case IndexedDType::i16: widen<int16_t>(src, n, dst); break;
    case IndexedDType::u16: widen<uint16_t>(src, n, dst); break;
    case IndexedDType::i32: if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4); break;
    case IndexedDType::i64:
      for (int64_t k = 0; k < n; ++k) {
        const int64_t v = load<int64_t>(src, k);
        FOUNDRY_CHECK(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(),
                      "{}: token {} of sequence {} ({}) does not fit int32", prefix_, offset + k, i, v);
        dst[k] = static_cast<int32_t>(v);
      }
      break;
    default: FOUNDRY_FAIL("{}: unsupported dtype {}", prefix_, indexed_dtype_name(dtype_));
  }
}

void IndexedDataset::sequence(int64_t i, std::span<int32_t> out) const {
  FOUNDRY_CHECK(i >= 0 && i < num_sequences_, "{}: sequence {} out of range [0, {})", prefix_, i,
                num_sequences_);
  FOUNDRY_CHECK(static_cast<int64_t>(out.size()) == sequence_length(i),
                "{}: sequence {} has {} tokens, buffer holds {}", prefix_, i, sequence_length(i), out.size());
  read(i, 0, out);
}

std::vector<int32_t> IndexedDataset::sequence(int64_t i) const {
  FOUNDRY_CHECK(i >= 0 && i < num_sequences_, "{}: sequence {} out of range [0, {})", prefix_, i,
                num_sequences_);
  std::vector<int32_t> out(static_cast<size_t>(sequence_length(i)));
  read(i, 0, out);
  return out;
}

std::string IndexedDataset::describe() const {
  const double mib = static_cast<double>(bin_.size()) / (1024.0 * 1024.0);
  return fmt::format("{}: {} documents, {} sequences, {} tokens, {} ({:.1f} MiB)", prefix_,
                     num_documents(), num_sequences_, num_tokens_, indexed_dtype_name(dtype_), mib);
}

}  // namespace foundry

// Reader of foundry's binary test fixtures (format FDRYFIX1, written by tools/ref/fixture.py and
// documented in tests/fixtures/README.md):
//   magic "FDRYFIX1" (8 bytes), u32 count, then per tensor: u32 name_len, name (UTF-8),
//   u8 dtype (0 = f32, 1 = i32, 2 = i64), u32 ndim, i64 dims[ndim], row-major data.
//   Everything little-endian.
// Every error (missing file, bad magic, truncation, unknown dtype, duplicate or missing tensor)
// is a foundry::Error naming the file.
//
//   auto fx = foundry::testing::Fixture::load(FOUNDRY_FIXTURES_DIR "/gpt_tiny.bin");
//   const Tensor& logits = fx.at("logits");   // f32 (B*S, V)
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "foundry/core/check.h"
#include "foundry/core/tensor.h"

namespace foundry::testing {

class Fixture {
 public:
  static constexpr char kMagic[8] = {'F', 'D', 'R', 'Y', 'F', 'I', 'X', '1'};

  // Reads and validates the whole file; throws foundry::Error naming `path` on any problem.
  static Fixture load(const std::string& path) {
    static_assert(std::endian::native == std::endian::little, "fixtures are little-endian");
    std::ifstream in(path, std::ios::binary);
    FOUNDRY_CHECK(in.good(), "fixture {}: cannot open file", path);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    FOUNDRY_CHECK(!in.bad(), "fixture {}: read error", path);

    Fixture fx;
    fx.path_ = path;
    Reader r{path, bytes, 0};
    FOUNDRY_CHECK(bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0,
                  "fixture {}: bad magic (expected FDRYFIX1; not a foundry fixture file)", path);
    r.pos = sizeof(kMagic);
    const uint32_t count = r.get<uint32_t>("tensor count");
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t name_len = r.get<uint32_t>("name length");
      const std::string name = r.bytes_as_string(name_len, "name");
      const uint8_t code = r.get<uint8_t>(name);
      FOUNDRY_CHECK(code <= 2, "fixture {}: tensor '{}' has unknown dtype code {} (0 f32, 1 i32, 2 i64)",
                    path, name, code);
      const DType dtype = code == 0 ? DType::f32 : code == 1 ? DType::i32 : DType::i64;
      const uint32_t ndim = r.get<uint32_t>(name);
      FOUNDRY_CHECK(ndim <= static_cast<uint32_t>(Shape::kMaxDims),
                    "fixture {}: tensor '{}' has {} dims (at most {})", path, name, ndim, Shape::kMaxDims);
      Shape shape;
      uint64_t numel = 1;
      for (uint32_t d = 0; d < ndim; ++d) {
        const int64_t dim = r.get<int64_t>(name);
        FOUNDRY_CHECK(dim >= 0, "fixture {}: tensor '{}' has negative dim {}", path, name, dim);
        // numel stays <= file size, so the product cannot overflow.
        FOUNDRY_CHECK(dim == 0 || numel <= bytes.size() / static_cast<uint64_t>(dim),
                      "fixture {}: truncated or corrupt: tensor '{}' is larger than the file", path, name);
        numel *= static_cast<uint64_t>(dim);
        shape.push_back(dim);
      }
      const uint64_t nbytes = numel * static_cast<uint64_t>(dtype_size(dtype));
      FOUNDRY_CHECK(nbytes <= bytes.size() - r.pos,
                    "fixture {}: truncated: tensor '{}' {} needs {} bytes at offset {}, file has {}", path,
                    name, shape.str(), nbytes, r.pos, bytes.size());
      Tensor t = Tensor::empty(shape, dtype);
      if (nbytes > 0) std::memcpy(t.data(), bytes.data() + r.pos, nbytes);
      r.pos += nbytes;
      FOUNDRY_CHECK(fx.tensors_.emplace(name, std::move(t)).second,
                    "fixture {}: tensor '{}' appears twice", path, name);
      fx.order_.push_back(name);
    }
    FOUNDRY_CHECK(r.pos == bytes.size(), "fixture {}: {} trailing bytes after {} tensors", path,
                  bytes.size() - r.pos, count);
    return fx;
  }

  // The tensor called `name`; throws foundry::Error naming the file and the tensor when absent.
  const Tensor& at(const std::string& name) const {
    auto it = tensors_.find(name);
    FOUNDRY_CHECK(it != tensors_.end(), "fixture {}: no tensor named '{}' ({} tensors in the file)", path_,
                  name, tensors_.size());
    return it->second;
  }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Names in file order.
  const std::vector<std::string>& names() const { return order_; }
  size_t size() const { return order_.size(); }
  const std::string& path() const { return path_; }

 private:
  // Bounds-checked little-endian cursor over the file bytes.
  struct Reader {
    const std::string& path;
    const std::vector<char>& bytes;
    size_t pos;

    template <class T> T get(const std::string& what) {
      FOUNDRY_CHECK(bytes.size() - pos >= sizeof(T), "fixture {}: truncated at offset {} reading {} ({} bytes)",
                    path, pos, what, bytes.size());
      T v;
      std::memcpy(&v, bytes.data() + pos, sizeof(T));
      pos += sizeof(T);
      return v;
    }
    std::string bytes_as_string(uint32_t n, const std::string& what) {
      FOUNDRY_CHECK(bytes.size() - pos >= n, "fixture {}: truncated at offset {} reading {} of {} bytes ({} bytes)",
                    path, pos, what, n, bytes.size());
      std::string s(bytes.data() + pos, n);
      pos += n;
      return s;
    }
  };

  std::string path_;
  std::map<std::string, Tensor> tensors_;
  std::vector<std::string> order_;
};

}  // namespace foundry::testing

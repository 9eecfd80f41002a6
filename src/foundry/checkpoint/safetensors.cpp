// safetensors writer and validating reader; format in safetensors.h.
#include "foundry/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "foundry/checkpoint/durable_io.h"

namespace foundry {

namespace {

using json = nlohmann::json;

// The reference reader refuses headers above 100 MB; so do we (a corrupt length must not make
// us allocate gigabytes).
constexpr int64_t kMaxHeaderBytes = 100'000'000;

// Every dtype of the reference `Dtype` enum, in its declaration order (= increasing alignment,
// which the writer sorts by), with its size in bits and the foundry dtype where one exists.
struct DtypeInfo {
  std::string_view name;
  int bits;
  std::optional<DType> dtype;
};
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 8, DType::boolean}, {"F4", 4, DType::e2m1},        {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt}, {"U8", 8, DType::u8},          {"I8", 8, DType::i8},
    {"F8_E5M2", 8, DType::e5m2},  {"F8_E4M3", 8, DType::e4m3},   {"F8_E8M0", 8, DType::e8m0},
    {"I16", 16, std::nullopt},    {"U16", 16, std::nullopt},     {"F16", 16, DType::f16},
    {"BF16", 16, DType::bf16},    {"I32", 32, DType::i32},       {"U32", 32, std::nullopt},
    {"F32", 32, DType::f32},      {"C64", 64, std::nullopt},     {"F64", 64, std::nullopt},
    {"I64", 64, DType::i64},      {"U64", 64, std::nullopt},
};

const DtypeInfo* find_dtype(std::string_view name) {
  for (const DtypeInfo& d : kDtypes)
    if (d.name == name) return &d;
  return nullptr;
}

int dtype_rank(DType t) {
  for (size_t i = 0; i < std::size(kDtypes); ++i)
    if (kDtypes[i].dtype == t) return static_cast<int>(i);
  FOUNDRY_FAIL("safetensors: dtype {} has no safetensors equivalent", dtype_name(t));
}

std::string quoted(const std::string& s, std::string_view what) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    FOUNDRY_FAIL("safetensors: {} '{}' is not valid UTF-8", what, s);
  }
}

// The header text (padded) and the tensors in data order.
struct Prepared {
  std::string header;
  std::vector<const NamedTensor*> order;
};

Prepared prepare(std::span<const NamedTensor> tensors, const SafetensorsMetadata& metadata) {
  Prepared p;
  std::set<std::string_view> seen;
  for (const NamedTensor& t : tensors) {
    FOUNDRY_CHECK(!t.name.empty(), "safetensors: a tensor has an empty name");
    FOUNDRY_CHECK(t.name != "__metadata__", "safetensors: '__metadata__' is reserved, not a tensor name");
    FOUNDRY_CHECK(seen.insert(t.name).second, "safetensors: tensor '{}' given twice", t.name);
    FOUNDRY_CHECK(t.tensor.defined() || t.tensor.numel() == 0, "safetensors: tensor '{}' is undefined",
                  t.name);
    FOUNDRY_CHECK(t.tensor.dtype != DType::e2m1 || t.tensor.numel() % 2 == 0,
                  "safetensors: e2m1 tensor '{}' has an odd element count {} (F4 stores whole bytes)",
                  t.name, t.tensor.numel());
    dtype_rank(t.tensor.dtype);  // throws for a dtype with no safetensors name
    p.order.push_back(&t);
  }
  // Reference order: descending dtype alignment, then name (byte order).
  std::sort(p.order.begin(), p.order.end(), [](const NamedTensor* a, const NamedTensor* b) {
    const int ra = dtype_rank(a->tensor.dtype), rb = dtype_rank(b->tensor.dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });

  std::string& h = p.header;
  h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ",";
      first = false;
      h += quoted(k, "metadata key") + ":" + quoted(v, "metadata value");
    }
    h += "}";
  }
  int64_t offset = 0;
  for (const NamedTensor* t : p.order) {
    if (h.size() > 1) h += ",";
    const int64_t n = t->tensor.nbytes();
    h += quoted(t->name, "tensor name");
    h += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[", safetensors_dtype(t->tensor.dtype));
    for (int d = 0; d < t->tensor.ndim(); ++d) h += fmt::format("{}{}", d ? "," : "", t->tensor.shape[d]);
    h += fmt::format("],\"data_offsets\":[{},{}]}}", offset, offset + n);
    offset += n;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return p;
}

std::string length_prefix(size_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// The tensor's bytes in host memory (a staging copy for device tensors).
struct HostBytes {
  Tensor staged;
  const void* data = nullptr;
  explicit HostBytes(const TensorView& v) {
    if (v.device.is_cpu() || v.nbytes() == 0) {
      data = v.data;
    } else {
      staged = Tensor::empty(v.shape, v.dtype, Device::cpu());
      staged.copy_from(v);
      data = staged.data();
    }
  }
};

// A JSON value as an unsigned 64-bit integer, or an error naming the field.
uint64_t as_u64(const json& j, const std::string& path, const std::string& name, const char* field) {
  FOUNDRY_CHECK(j.is_number_unsigned(), "'{}': tensor '{}' has a {} entry {} that is not a non-negative integer",
                path, name, field, j.dump());
  return j.get<uint64_t>();
}

}  // namespace

std::string_view safetensors_dtype(DType t) { return kDtypes[static_cast<size_t>(dtype_rank(t))].name; }

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  const DtypeInfo* d = find_dtype(name);
  FOUNDRY_CHECK(d != nullptr, "unknown safetensors dtype '{}'", name);
  return d->dtype;
}

std::string serialize_safetensors(std::span<const NamedTensor> tensors, const SafetensorsMetadata& metadata) {
  const Prepared p = prepare(tensors, metadata);
  std::string out = length_prefix(p.header.size()) + p.header;
  for (const NamedTensor* t : p.order) {
    if (t->tensor.nbytes() == 0) continue;
    HostBytes b(t->tensor);
    out.append(static_cast<const char*>(b.data), static_cast<size_t>(t->tensor.nbytes()));
  }
  return out;
}

int64_t save_safetensors(const std::string& path, std::span<const NamedTensor> tensors,
                         const SafetensorsMetadata& metadata) {
  const Prepared p = prepare(tensors, metadata);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FOUNDRY_CHECK(fd >= 0, "cannot create '{}': {}", path, std::strerror(errno));
  int64_t size = 0;
  try {
    const std::string prefix = length_prefix(p.header.size()) + p.header;
    write_all(fd, prefix.data(), prefix.size(), path);
    size += static_cast<int64_t>(prefix.size());
    for (const NamedTensor* t : p.order) {
      HostBytes b(t->tensor);
      write_all(fd, b.data, static_cast<size_t>(t->tensor.nbytes()), path);
      size += t->tensor.nbytes();
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  FOUNDRY_CHECK(::close(fd) == 0, "cannot write '{}': {}", path, std::strerror(errno));
  return size;
}

// ---- reader ----------------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  FOUNDRY_CHECK(fd_ >= 0, "cannot open safetensors file '{}': {}", path, std::strerror(errno));
  try {
    struct stat st {};
    FOUNDRY_CHECK(::fstat(fd_, &st) == 0, "cannot stat '{}': {}", path, std::strerror(errno));
    FOUNDRY_CHECK(S_ISREG(st.st_mode), "'{}' is not a regular file", path);
    const int64_t file_size = st.st_size;
    FOUNDRY_CHECK(file_size >= 8, "'{}' is {} bytes, too short for a safetensors file (8-byte header length)",
                  path, file_size);
    unsigned char len[8];
    pread_exact(fd_, len, 8, 0, path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
    FOUNDRY_CHECK(n <= static_cast<uint64_t>(kMaxHeaderBytes),
                  "'{}': header length {} exceeds the {}-byte limit (corrupt or not a safetensors file)",
                  path, n, kMaxHeaderBytes);
    FOUNDRY_CHECK(static_cast<int64_t>(n) <= file_size - 8,
                  "'{}': header length {} runs past the end of the file ({} bytes; truncated or corrupt)",
                  path, n, file_size);
    header_bytes_ = static_cast<int64_t>(n);
    data_bytes_ = file_size - 8 - header_bytes_;
    std::string text(n, '\0');
    pread_exact(fd_, text.data(), n, 8, path);
    FOUNDRY_CHECK(!text.empty() && text[0] == '{', "'{}': header does not start with '{{' (not a safetensors file?)",
                  path);

    // Duplicate top-level keys are an error (a JSON object would silently keep the last one).
    std::set<std::string> keys;
    std::string duplicate;
    const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    };
    json header;
    try {
      header = json::parse(text, on_event);
    } catch (const json::exception& e) {
      FOUNDRY_FAIL("'{}': header is not valid JSON: {}", path, e.what());
    }
    FOUNDRY_CHECK(duplicate.empty(), "'{}': tensor '{}' appears twice in the header", path, duplicate);
    FOUNDRY_CHECK(header.is_object(), "'{}': header is not a JSON object", path);

    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        FOUNDRY_CHECK(value.is_object(), "'{}': __metadata__ is not an object of strings", path);
        for (const auto& [k, v] : value.items()) {
          FOUNDRY_CHECK(v.is_string(), "'{}': __metadata__ value for '{}' is {}, not a string", path, k, v.dump());
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      FOUNDRY_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") &&
                        value.contains("data_offsets"),
                    "'{}': tensor '{}' needs an object with dtype, shape and data_offsets, got {}", path,
                    name, value.dump());
      SafetensorsEntry e;
      e.name = name;
      const json& jd = value["dtype"];
      FOUNDRY_CHECK(jd.is_string(), "'{}': tensor '{}' has dtype {}, not a string", path, name, jd.dump());
      e.dtype_name = jd.get<std::string>();
      const DtypeInfo* info = find_dtype(e.dtype_name);
      FOUNDRY_CHECK(info != nullptr, "'{}': tensor '{}' has unknown dtype '{}'", path, name, e.dtype_name);
      e.dtype = info->dtype;

      const json& js = value["shape"];
      FOUNDRY_CHECK(js.is_array(), "'{}': tensor '{}' has shape {}, not an array", path, name, js.dump());
      FOUNDRY_CHECK(js.size() <= static_cast<size_t>(Shape::kMaxDims),
                    "'{}': tensor '{}' has {} dimensions; foundry supports at most {}", path, name,
                    js.size(), Shape::kMaxDims);
      uint64_t numel = 1;
      bool overflow = false;
      for (const json& d : js) {
        const uint64_t v = as_u64(d, path, name, "shape");
        overflow |= v > (uint64_t{1} << 62) || __builtin_mul_overflow(numel, v, &numel) ||
                    numel > (uint64_t{1} << 62);
        if (!overflow) e.shape.push_back(static_cast<int64_t>(v));
      }
      FOUNDRY_CHECK(!overflow, "'{}': tensor '{}' has shape {} whose size overflows", path, name, js.dump());

      const json& jo = value["data_offsets"];
      FOUNDRY_CHECK(jo.is_array() && jo.size() == 2, "'{}': tensor '{}' has data_offsets {}, expected [begin, end]",
                    path, name, jo.dump());
      const uint64_t begin = as_u64(jo[0], path, name, "data_offsets");
      const uint64_t end = as_u64(jo[1], path, name, "data_offsets");
      FOUNDRY_CHECK(begin <= end, "'{}': tensor '{}' has data_offsets [{}, {}] with begin after end", path,
                    name, begin, end);
      FOUNDRY_CHECK(end <= static_cast<uint64_t>(data_bytes_),
                    "'{}': tensor '{}' has data_offsets [{}, {}] beyond the {} data bytes in the file "
                    "(truncated file or corrupt offsets)",
                    path, name, begin, end, data_bytes_);
      FOUNDRY_CHECK(numel * static_cast<uint64_t>(info->bits) % 8 == 0,
                    "'{}': tensor '{}' of dtype {} has {} elements, not a whole number of bytes", path,
                    name, e.dtype_name, numel);
      const uint64_t expected = numel * static_cast<uint64_t>(info->bits) / 8;
      FOUNDRY_CHECK(end - begin == expected,
                    "'{}': tensor '{}' is {} {} ({} bytes) but its data_offsets [{}, {}] span {} bytes",
                    path, name, e.dtype_name, e.shape.str(), expected, begin, end, end - begin);
      e.begin = static_cast<int64_t>(begin);
      e.end = static_cast<int64_t>(end);
      entries_.push_back(std::move(e));
    }

    // The tensors must tile the data section exactly: sorted by offset, each starts where the
    // previous one ended, and the last ends at the end of the file.
    std::sort(entries_.begin(), entries_.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    int64_t expected_begin = 0;
    for (size_t i = 0; i < entries_.size(); ++i) {
      const SafetensorsEntry& e = entries_[i];
      FOUNDRY_CHECK(e.begin >= expected_begin, "'{}': tensor '{}' data_offsets [{}, {}] overlap tensor '{}' which ends at {}",
                    path, e.name, e.begin, e.end, entries_[i - 1].name, expected_begin);
      FOUNDRY_CHECK(e.begin == expected_begin,
                    "'{}': {} bytes of data before tensor '{}' (offsets [{}, {}]) belong to no tensor", path,
                    e.begin - expected_begin, e.name, e.begin, e.end);
      expected_begin = e.end;
      index_[e.name] = i;
    }
    FOUNDRY_CHECK(expected_begin == data_bytes_,
                  "'{}': the file has {} bytes of data after the last tensor (data section {} bytes, tensors end at {})",
                  path, data_bytes_ - expected_begin, data_bytes_, expected_begin);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(std::exchange(o.fd_, -1)),
      header_bytes_(o.header_bytes_),
      data_bytes_(o.data_bytes_),
      metadata_(std::move(o.metadata_)),
      entries_(std::move(o.entries_)),
      index_(std::move(o.index_)) {}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  const auto it = index_.find(name);
  FOUNDRY_CHECK(it != index_.end(), "'{}' has no tensor named '{}'", path_, name);
  return entries_[it->second];
}

Tensor SafetensorsFile::read(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  FOUNDRY_CHECK(e.dtype.has_value(), "'{}': tensor '{}' has dtype {}, which foundry does not support", path_,
                name, e.dtype_name);
  Tensor t = Tensor::empty(e.shape, *e.dtype);
  read_into(name, t);
  return t;
}

void SafetensorsFile::read_into(const std::string& name, Tensor& dst) const {
  const SafetensorsEntry& e = entry(name);
  FOUNDRY_CHECK(e.dtype.has_value(), "'{}': tensor '{}' has dtype {}, which foundry does not support", path_,
                name, e.dtype_name);
  FOUNDRY_CHECK(dst.dtype() == *e.dtype && dst.shape() == e.shape,
                "'{}': tensor '{}' is {} {}, the destination is {}", path_, name, e.dtype_name, e.shape.str(),
                dst.str());
  if (e.nbytes() == 0) return;
  if (dst.device().is_cpu()) {
    pread_exact(fd_, dst.data(), static_cast<size_t>(e.nbytes()), 8 + header_bytes_ + e.begin, path_);
    return;
  }
  Tensor host = Tensor::empty(e.shape, *e.dtype);
  pread_exact(fd_, host.data(), static_cast<size_t>(e.nbytes()), 8 + header_bytes_ + e.begin, path_);
  dst.copy_from(host);
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
  const SafetensorsFile f(path);
  std::map<std::string, Tensor> out;
  for (const SafetensorsEntry& e : f.entries()) out.emplace(e.name, f.read(e.name));
  return out;
}

}  // namespace foundry

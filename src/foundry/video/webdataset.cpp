// ustar writer and b.7 shard layout (see the header for the format and the rules).
#include "foundry/video/webdataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>

#include "foundry/core/check.h"

namespace foundry::video {

namespace {

namespace fs = std::filesystem;

constexpr int64_t kBlock = 512;
constexpr int64_t kRecord = 20 * kBlock;  // GNU tar's and Python's default record size

// `value` in zero-padded octal filling width - 1 digits, then NUL (the ustar number format).
void put_octal(char* field, int width, int64_t value, const std::string& what) {
  const std::string digits = fmt::format("{:0{}o}", value, width - 1);
  FOUNDRY_CHECK(value >= 0 && int(digits.size()) == width - 1, "tar: {} {} does not fit a {}-byte field", what,
                value, width);
  std::memcpy(field, digits.data(), digits.size());
  field[width - 1] = '\0';
}

}  // namespace

// ---- TarWriter -----------------------------------------------------------------------------------

TarWriter::TarWriter(const std::string& path, int64_t mtime) : path_(path), partial_(path + ".partial"), mtime_(mtime) {
  out_.open(partial_, std::ios::binary | std::ios::trunc);
  FOUNDRY_CHECK(out_.good(), "tar: cannot create '{}'", partial_);
}

TarWriter::~TarWriter() {
  if (closed_) return;
  out_.close();
  std::error_code ec;
  fs::remove(partial_, ec);
}

void TarWriter::write_padded(const char* data, int64_t size) {
  out_.write(data, size);
  const int64_t pad = (kBlock - size % kBlock) % kBlock;
  static const std::array<char, kBlock> zeros{};
  out_.write(zeros.data(), pad);
  written_ += size + pad;
  FOUNDRY_CHECK(out_.good(), "tar: writing '{}' failed", partial_);
}

// One 512-byte ustar header. name must already fit (<= 100 bytes, or prefix/name split).
void TarWriter::write_header(const std::string& name, int64_t size, char typeflag) {
  std::array<char, kBlock> h{};
  std::string prefix, base = name;
  if (name.size() > 100) {
    // Split at a '/' so that prefix <= 155 and name <= 100 (the caller checked that one exists).
    size_t cut = std::string::npos;
    for (size_t p = name.find('/'); p != std::string::npos; p = name.find('/', p + 1))
      if (p <= 155 && name.size() - p - 1 <= 100 && p > 0 && p + 1 < name.size()) {
        cut = p;
        break;
      }
    FOUNDRY_CHECK(cut != std::string::npos, "tar: name '{}' needs a pax record", name);
    prefix = name.substr(0, cut);
    base = name.substr(cut + 1);
  }
  std::memcpy(&h[0], base.data(), base.size());  // name[100]
  put_octal(&h[100], 8, 0644, "mode");
  put_octal(&h[108], 8, 0, "uid");
  put_octal(&h[116], 8, 0, "gid");
  put_octal(&h[124], 12, size, "size");
  put_octal(&h[136], 12, mtime_, "mtime");
  std::memset(&h[148], ' ', 8);  // chksum, counted as spaces
  h[156] = typeflag;
  std::memcpy(&h[257], "ustar", 6);  // magic "ustar\0"
  std::memcpy(&h[263], "00", 2);     // version
  std::memcpy(&h[345], prefix.data(), prefix.size());  // prefix[155]
  int64_t sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  put_octal(&h[148], 7, sum, "checksum");  // 6 digits + NUL ...
  h[155] = ' ';                            // ... + space
  write_padded(h.data(), kBlock);
}

void TarWriter::add(const std::string& name, const std::string& bytes) {
  FOUNDRY_CHECK(!closed_, "tar '{}': add after close", path_);
  FOUNDRY_CHECK(!name.empty() && name.find('\0') == std::string::npos && name.front() != '/',
                "tar '{}': bad member name '{}' (must be relative, non-empty, without NUL)", path_, name);
  bool fits = name.size() <= 100;
  for (size_t p = name.find('/'); !fits && p != std::string::npos; p = name.find('/', p + 1))
    fits = p > 0 && p <= 155 && name.size() - p - 1 <= 100 && p + 1 < name.size();
  if (!fits) {
    // pax extended header: one record "LEN path=NAME\n", LEN counting its own digits.
    const std::string body = " path=" + name + "\n";
    size_t len = body.size() + 1;
    while (std::to_string(len).size() + body.size() != len) ++len;
    const std::string record = std::to_string(len) + body;
    write_header(fmt::format("PaxHeaders/{}", entries_), int64_t(record.size()), 'x');
    write_padded(record.data(), int64_t(record.size()));
    write_header(name.substr(0, 100), int64_t(bytes.size()), '0');  // the name for readers without pax
  } else {
    write_header(name, int64_t(bytes.size()), '0');
  }
  write_padded(bytes.data(), int64_t(bytes.size()));
  ++entries_;
}

void TarWriter::close() {
  if (closed_) return;
  static const std::array<char, kBlock> zeros{};
  for (int k = 0; k < 2; ++k) write_padded(zeros.data(), kBlock);  // end of archive
  while (written_ % kRecord != 0) write_padded(zeros.data(), kBlock);
  out_.close();
  FOUNDRY_CHECK(!out_.fail(), "tar: closing '{}' failed", partial_);
  std::error_code ec;
  fs::rename(partial_, path_, ec);
  FOUNDRY_CHECK(!ec, "tar: cannot rename '{}' to '{}': {}", partial_, path_, ec.message());
  closed_ = true;
}

// ---- buckets -------------------------------------------------------------------------------------

std::string shard_bucket(int width, int height, int64_t frames, int frame_window) {
  FOUNDRY_CHECK(width > 0 && height > 0, "shard_bucket: size {}x{} is not positive", width, height);
  FOUNDRY_CHECK(frames >= 0 && frame_window > 0, "shard_bucket: frames {} / window {} invalid", frames, frame_window);
  const int short_side = std::min(width, height);
  const char* resolution = short_side < 720 ? "lt_720" : short_side < 1080 ? "lt_1080" : "gt_1080";
  const double r = double(width) / double(height);
  const char* aspect = r <= 0.65 ? "9_16" : r <= 0.88 ? "3_4" : r <= 1.16 ? "1_1" : r <= 1.55 ? "4_3" : "16_9";
  const int64_t a = frames / frame_window * frame_window;
  return fmt::format("resolution_{}/aspect_ratio_{}/frames_{}_{}", resolution, aspect, a, a + frame_window - 1);
}

// ---- ShardWriter ---------------------------------------------------------------------------------

ShardWriter::ShardWriter(const std::string& root, int samples_per_shard, int shards_per_part)
    : root_(root), samples_per_shard_(samples_per_shard), shards_per_part_(shards_per_part) {
  FOUNDRY_CHECK(samples_per_shard > 0 && shards_per_part > 0,
                "shards '{}': samples_per_shard {} and shards_per_part {} must be positive", root, samples_per_shard,
                shards_per_part);
}

ShardWriter::~ShardWriter() = default;  // TarWriter's destructor removes unclosed .partial files

void ShardWriter::add(const std::string& bucket, const std::string& key, const std::string& mp4_bytes,
                      const std::string& json_text) {
  FOUNDRY_CHECK(!key.empty() && key.find_first_of(std::string("./\0", 3)) == std::string::npos,
                "shards '{}': key '{}' must be non-empty without '.', '/' or NUL (WebDataset groups by key)", root_,
                key);
  FOUNDRY_CHECK(!bucket.empty() && bucket.front() != '/' && bucket.find("..") == std::string::npos,
                "shards '{}': bucket '{}' must be a relative path without '..'", root_, bucket);
  Bucket& b = buckets_[bucket];
  FOUNDRY_CHECK(b.keys.insert(key).second, "shards '{}': key '{}' is already in bucket '{}'", root_, key, bucket);
  if (b.samples % samples_per_shard_ == 0) {  // a new shard
    if (b.video) b.video->close();
    if (b.metas) b.metas->close();
    const int64_t shard = b.samples / samples_per_shard_;
    const std::string rel = fmt::format("part_{:06d}/{:06d}.tar", shard / shards_per_part_, shard);
    for (const char* kind : {"video", "metas"}) {
      const fs::path p = fs::path(root_) / bucket / kind / rel;
      std::error_code ec;
      fs::create_directories(p.parent_path(), ec);
      FOUNDRY_CHECK(!ec, "shards: cannot create '{}': {}", p.parent_path().string(), ec.message());
      (std::string(kind) == "video" ? b.video : b.metas) = std::make_unique<TarWriter>(p.string());
      shards_.push_back(p.string());
    }
  }
  b.video->add(key + ".mp4", mp4_bytes);
  b.metas->add(key + ".json", json_text);
  ++b.samples;
}

void ShardWriter::close() {
  for (auto& [name, b] : buckets_) {
    if (b.video) b.video->close();
    if (b.metas) b.metas->close();
  }
}

}  // namespace foundry::video

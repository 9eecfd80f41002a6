// File helpers for the tokenizer formats (see tokenizer_io.h).
#include "foundry/data/tokenizer_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "foundry/core/check.h"

namespace foundry {

std::string read_file(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  FOUNDRY_CHECK(fs::exists(path, ec), "{} '{}' does not exist", what, path);
  FOUNDRY_CHECK(fs::is_regular_file(path, ec), "{} '{}' is not a regular file", what, path);
  std::ifstream in(path, std::ios::binary);
  FOUNDRY_CHECK(in.good(), "cannot open {} '{}': {}", what, path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FOUNDRY_CHECK(!in.bad(), "cannot read {} '{}': {}", what, path, std::strerror(errno));
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    FOUNDRY_CHECK(out.good(), "cannot write '{}': {}", tmp, std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    FOUNDRY_CHECK(out.good(), "cannot write '{}': {}", tmp, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  FOUNDRY_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
}

std::string quote_for_error(const std::string& text, size_t max) {
  std::string s;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    s += (c >= 0x20 && c < 0x7F) ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  if (text.size() > max) s += "...";
  return s;
}

}  // namespace foundry

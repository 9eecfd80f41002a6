// MappedFile: a read-only memory map of a whole file (POSIX mmap), released on destruction.
// An empty file maps to no memory (data() == nullptr, size() == 0) rather than failing, since
// an empty dataset's .bin is legitimately zero bytes.
#pragma once

#include <cstdint>
#include <string>

namespace foundry {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path`; a missing or unreadable file is a foundry::Error naming the path.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace foundry

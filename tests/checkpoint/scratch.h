// Helpers for the checkpoint tests: a fresh scratch directory per test, whole-file reads and
// writes, and hand-built safetensors files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace foundry::testing {

inline std::filesystem::path scratch_path(const ::testing::TestInfo& info) {
  return std::filesystem::path(::testing::TempDir()) / (std::string("foundry_checkpoint_") +
                                                        info.test_suite_name() + "_" + info.name() + "_" +
                                                        std::to_string(::getpid()));
}

// ::testing::TempDir()/foundry_checkpoint_<suite>_<test>_<pid>, emptied on each call; removed
// when the test passes (kept for inspection when it fails).
inline std::string scratch_dir() {
  const std::filesystem::path dir = scratch_path(*::testing::UnitTest::GetInstance()->current_test_info());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

struct ScratchCleanup : ::testing::EmptyTestEventListener {
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result() != nullptr && info.result()->Passed()) {
      std::error_code ec;
      std::filesystem::remove_all(scratch_path(info), ec);
    }
  }
};
inline const bool kScratchCleanupRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new ScratchCleanup);
  return true;
}();

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// 8-byte little-endian length + header text (no padding added) + data.
inline std::string safetensors_bytes(const std::string& header, const std::string& data, uint64_t length) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out + header + data;
}
inline std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return safetensors_bytes(header, data, header.size());
}

// Little-endian bytes of a value.
template <class T> std::string le_bytes(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

}  // namespace foundry::testing

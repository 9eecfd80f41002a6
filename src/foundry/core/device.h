// Device: where a tensor lives. "cpu" or "cuda:N".
#pragma once

#include <string>
#include <string_view>

namespace foundry {

struct Device {
  enum class Kind : uint8_t { cpu, cuda };
  Kind kind = Kind::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {Kind::cuda, i}; }
  static Device parse(std::string_view s);  // "cpu", "cuda", "cuda:1"; throws naming the value

  bool is_cpu() const { return kind == Kind::cpu; }
  bool is_cuda() const { return kind == Kind::cuda; }
  std::string str() const;
  friend bool operator==(const Device&, const Device&) = default;
};

// Number of CUDA devices this build and machine can use (0 without the CUDA backend or a GPU).
int cuda_device_count();

}  // namespace foundry

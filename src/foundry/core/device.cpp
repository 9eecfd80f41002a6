#include "foundry/core/device.h"

#include <charconv>

#include "foundry/core/check.h"
#ifdef FOUNDRY_HAVE_CUDA
#include "foundry/backend/cuda/runtime.h"
#endif

namespace foundry {

Device Device::parse(std::string_view s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.substr(0, 5) == "cuda:") {
    int i = -1;
    auto rest = s.substr(5);
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), i);
    if (ec == std::errc() && p == rest.data() + rest.size() && i >= 0) return cuda(i);
  }
  FOUNDRY_FAIL("unknown device '{}' (expected cpu, cuda or cuda:N)", s);
}

int cuda_device_count() {
#ifdef FOUNDRY_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

}  // namespace foundry

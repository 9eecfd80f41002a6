#include "foundry/core/allocator.h"

#include <cstdlib>
#include <memory>

#include "foundry/core/check.h"
#ifdef FOUNDRY_HAVE_CUDA
#include "foundry/backend/cuda/runtime.h"  // link-time only: the CUDA build's device memory
#endif

namespace foundry {

namespace {

class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() : Allocator(Device::cpu()) {}
  ~CpuAllocator() override { release_cached(); }

 protected:
  void* raw_allocate(size_t bytes) override {
    void* p = std::aligned_alloc(64, bytes);
    FOUNDRY_CHECK(p != nullptr, "cpu allocator: out of memory allocating {} bytes", bytes);
    return p;
  }
  void raw_free(void* p) override { std::free(p); }
};

#ifdef FOUNDRY_HAVE_CUDA
class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int index) : Allocator(Device::cuda(index)), index_(index) {}
  ~CudaAllocator() override { release_cached(); }

 protected:
  void* raw_allocate(size_t bytes) override { return cuda::malloc_on(index_, bytes); }
  void raw_free(void* p) override { cuda::free_on(index_, p); }

 private:
  int index_;
};
#endif

}  // namespace

Allocator::~Allocator() = default;

size_t Allocator::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t r = (bytes + 63) & ~size_t{63};
  if (r <= 4096) return r;
  // Round up to the next of 8 steps between consecutive powers of two (waste <= 12.5%).
  int top = 63 - __builtin_clzll(r);
  size_t step = size_t{1} << (top - 3);
  return (r + step - 1) & ~(step - 1);
}

void* Allocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  void* p = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= static_cast<int64_t>(size);
    }
  }
  if (p == nullptr) {
    try {
      p = raw_allocate(size);
    } catch (const Error&) {
      release_cached();  // retry once with the cache returned to the system
      p = raw_allocate(size);
    }
  }
  std::lock_guard lock(mu_);
  live_ += static_cast<int64_t>(size);
  if (live_ > peak_) peak_ = live_;
  return p;
}

void Allocator::deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t size = round_size(bytes);
  std::lock_guard lock(mu_);
  live_ -= static_cast<int64_t>(size);
  cached_ += static_cast<int64_t>(size);
  free_[size].push_back(ptr);
}

void Allocator::release_cached() {
  std::lock_guard lock(mu_);
  for (auto& [size, ptrs] : free_)
    for (void* p : ptrs) raw_free(p);
  free_.clear();
  cached_ = 0;
}

Allocator& Allocator::get(Device d) {
  static CpuAllocator* cpu = new CpuAllocator();  // lives for the whole process
  if (d.is_cpu()) return *cpu;
#ifdef FOUNDRY_HAVE_CUDA
  static const int count = cuda::device_count();
  FOUNDRY_CHECK(d.index >= 0 && d.index < count, "device {} not present ({} CUDA devices)", d.str(), count);
  static std::mutex mu;
  static std::map<int, Allocator*> per_device;
  std::lock_guard lock(mu);
  Allocator*& a = per_device[d.index];
  if (a == nullptr) a = new CudaAllocator(d.index);
  return *a;
#else
  FOUNDRY_FAIL("device {} not supported: this build has no CUDA backend", d.str());
#endif
}

}  // namespace foundry

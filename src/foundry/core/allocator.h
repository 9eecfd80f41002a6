// Allocator: a caching allocator per device. Freed blocks go to a per-size free list and are
// reused by the next request of the same rounded size, so steady-state training steps make no
// system allocations. Live and peak byte counters (requested sizes, rounded) let tests and the
// planner measure memory effects such as recomputation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "foundry/core/device.h"

namespace foundry {

class Allocator {
 public:
  virtual ~Allocator();
  void* allocate(size_t bytes);
  void deallocate(void* ptr, size_t bytes);

  int64_t live_bytes() const { return live_; }
  int64_t peak_bytes() const { return peak_; }
  int64_t cached_bytes() const { return cached_; }
  void reset_peak() { peak_ = live_; }
  void release_cached();  // returns every cached block to the system

  static size_t round_size(size_t bytes);  // 64-byte granularity, then to 1/8 power-of-two steps

  // The allocator for a device (one per device, created on first use).
  static Allocator& get(Device d);

 protected:
  explicit Allocator(Device d) : device_(d) {}
  virtual void* raw_allocate(size_t bytes) = 0;
  virtual void raw_free(void* ptr) = 0;

 private:
  Device device_;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  int64_t live_ = 0, peak_ = 0, cached_ = 0;
};

}  // namespace foundry

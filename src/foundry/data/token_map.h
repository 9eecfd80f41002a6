// Open-addressing hash maps for byte-pair encoding: token bytes -> id, and a pair of ids ->
// (merge rank, merged id). Lookups by std::string_view never allocate; keys live in one arena.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace foundry {

// 64-bit hash of a short byte string (eight bytes at a time, multiply-xorshift mixing).
inline uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * k;
  const char* p = s.data();
  size_t n = s.size();
  auto mix = [](uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
  };
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w) * k;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = mix(h ^ w) * k;
  }
  return mix(h);
}

// Byte string -> int32 value (token id or rank).
class BytesMap {
 public:
  // Inserts (key, value); false (and no change) when `key` is already present.
  bool insert(std::string_view key, int32_t value) {
    if ((entries_.size() + 1) * 2 > slots_.size()) grow();
    const uint64_t h = hash_bytes(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const int32_t e = slots_[i];
      if (e < 0) {
        slots_[i] = static_cast<int32_t>(entries_.size());
        entries_.push_back({arena_.size(), static_cast<uint32_t>(key.size()), value, static_cast<uint32_t>(h)});
        arena_.append(key);
        return true;
      }
      if (matches(entries_[e], key, h)) return false;
    }
  }
  // The value of `key`, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash_bytes(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const int32_t e = slots_[i];
      if (e < 0) return -1;
      if (matches(entries_[e], key, h)) return entries_[e].value;
    }
  }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    size_t offset;
    uint32_t length;
    int32_t value;
    uint32_t hash;
  };
  bool matches(const Entry& e, std::string_view key, uint64_t h) const {
    return e.hash == static_cast<uint32_t>(h) && e.length == key.size() &&
           std::memcmp(arena_.data() + e.offset, key.data(), key.size()) == 0;
  }
  void grow() {
    const size_t n = slots_.empty() ? 1024 : slots_.size() * 2;
    slots_.assign(n, -1);
    mask_ = n - 1;
    for (size_t e = 0; e < entries_.size(); ++e) {
      size_t i = hash_bytes({arena_.data() + entries_[e].offset, entries_[e].length}) & mask_;
      while (slots_[i] >= 0) i = (i + 1) & mask_;
      slots_[i] = static_cast<int32_t>(e);
    }
  }
  std::vector<int32_t> slots_;  // entry index, -1 when empty
  std::vector<Entry> entries_;
  std::string arena_;
  size_t mask_ = 0;
};

// (left id, right id) -> (rank, merged id) for merge-list BPE.
class PairMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };
  // Inserts; false (and no change) when the pair is already present.
  bool insert(int32_t left, int32_t right, Value v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, v};
        ++size_;
        return true;
      }
      if (slots_[i].key == key) return false;
    }
  }
  // The value of the pair, or nullptr.
  const Value* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;  // ids are non-negative, so no pair packs to this
  struct Slot {
    uint64_t key = kEmpty;
    Value value{};
  };
  static uint64_t pack(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static uint64_t hash(uint64_t key) {
    key ^= key >> 30;  // splitmix64's finaliser
    key *= 0xBF58476D1CE4E5B9ull;
    key ^= key >> 27;
    key *= 0x94D049BB133111EBull;
    return key ^ (key >> 31);
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t n = old.empty() ? 1024 : old.size() * 2;
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = hash(s.key) & mask_;
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace foundry

#include "foundry/models/gpt/kv_cache.h"

namespace foundry {

KVCache::KVCache(int64_t num_layers, int64_t batch, int64_t max_len, int64_t num_kv_heads,
                 int64_t head_dim, Device device)
    : batch_(batch), max_len_(max_len) {
  FOUNDRY_CHECK(num_layers > 0 && batch > 0 && max_len > 0 && num_kv_heads > 0 && head_dim > 0,
                "KVCache: layers {}, batch {}, max_len {}, kv heads {} and head dim {} must all be "
                "positive",
                num_layers, batch, max_len, num_kv_heads, head_dim);
  for (int64_t l = 0; l < num_layers; ++l) {
    k_.push_back(Tensor::empty({batch, max_len, num_kv_heads, head_dim}, DType::f32, device));
    v_.push_back(Tensor::empty({batch, max_len, num_kv_heads, head_dim}, DType::f32, device));
  }
}

int64_t KVCache::bytes() const {
  int64_t n = 0;
  for (size_t l = 0; l < k_.size(); ++l) n += k_[l].nbytes() + v_[l].nbytes();
  return n;
}

const Tensor& KVCache::k(int64_t layer) const {
  FOUNDRY_CHECK(layer >= 0 && layer < num_layers(), "KVCache: layer {} out of range [0, {})", layer,
                num_layers());
  return k_[static_cast<size_t>(layer)];
}

const Tensor& KVCache::v(int64_t layer) const {
  FOUNDRY_CHECK(layer >= 0 && layer < num_layers(), "KVCache: layer {} out of range [0, {})", layer,
                num_layers());
  return v_[static_cast<size_t>(layer)];
}

void KVCache::advance(int64_t n) {
  FOUNDRY_CHECK(n >= 0 && length_ + n <= max_len_,
                "KVCache: {} cached + {} new positions exceed max_len {}", length_, n, max_len_);
  length_ += n;
}

}  // namespace foundry

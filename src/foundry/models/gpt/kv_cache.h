// KVCache: the keys (after RoPE) and values of every position a GPTModel has seen so far in
// inference, per layer, so each new token costs one token's forward instead of the whole
// sequence's (the cache of Hugging Face's `past_key_values` / Megatron's inference
// `key_value_memory_dict`, laid out for ops/attention.h's attention_kv_forward):
//   k[l], v[l]: (B, Smax, NKV, HD) f32; rows [0, length()) of every batch row are valid.
// All B sequences share one length (they advance together). Memory: 2 L B Smax NKV HD floats.
#pragma once

#include <vector>

#include "foundry/core/tensor.h"

namespace foundry {

class KVCache {
 public:
  KVCache() = default;
  KVCache(int64_t num_layers, int64_t batch, int64_t max_len, int64_t num_kv_heads,
          int64_t head_dim, Device device = Device::cpu());

  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t batch() const { return batch_; }
  int64_t max_len() const { return max_len_; }  // Smax
  int64_t length() const { return length_; }    // positions cached so far (the next position)
  int64_t bytes() const;

  const Tensor& k(int64_t layer) const;  // (B, Smax, NKV, HD)
  const Tensor& v(int64_t layer) const;

  // Marks n more positions valid, after every layer appended them; an error past max_len.
  void advance(int64_t n);
  // Forgets every position (the buffers are kept for the next sequences).
  void reset() { length_ = 0; }

 private:
  std::vector<Tensor> k_, v_;
  int64_t batch_ = 0, max_len_ = 0, length_ = 0;
};

}  // namespace foundry

#include "foundry/train/synthetic_data.h"

namespace foundry {

Batch synthetic_batch(int64_t batch, int64_t seq, int64_t vocab, uint64_t seed, int64_t index) {
  // Each sequence draws S + 1 tokens: 2 uniforms per token (noise coin and noise token).
  const int64_t n = batch * (seq + 1);
  Tensor u = Tensor::empty({2 * n});
  Philox(seed, static_cast<uint64_t>(index) * static_cast<uint64_t>((2 * n + 3) / 4)).uniform_(u);
  const float* r = u.ptr<float>();
  Batch b;
  b.tokens = Tensor::empty({batch * seq}, DType::i32);
  b.targets = Tensor::empty({batch * seq}, DType::i32);
  int32_t* tok = b.tokens.ptr<int32_t>();
  int32_t* tgt = b.targets.ptr<int32_t>();
  for (int64_t s = 0; s < batch; ++s) {
    int64_t prev = static_cast<int64_t>(r[2 * s * (seq + 1) + 1] * static_cast<float>(vocab)) % vocab;
    for (int64_t t = 0; t <= seq; ++t) {
      const int64_t i = s * (seq + 1) + t;
      int64_t cur = prev;
      if (t > 0) {
        const bool noise = r[2 * i] < 0.1f;
        cur = noise ? static_cast<int64_t>(r[2 * i + 1] * static_cast<float>(vocab)) % vocab
                    : (7 * prev + 3) % vocab;
      }
      if (t < seq) tok[s * seq + t] = static_cast<int32_t>(cur);
      if (t > 0) tgt[s * seq + t - 1] = static_cast<int32_t>(cur);
      prev = cur;
    }
  }
  b.layout = SequenceLayout::uniform(batch, seq);
  return b;
}

}  // namespace foundry

#include "foundry/train/batch_source.h"

namespace foundry {

Batch SyntheticBatchSource::next() {
  const int64_t index = consumed_ / micro_batch_;
  consumed_ += micro_batch_;
  return synthetic_batch(micro_batch_, seq_, vocab_, seed_, index);
}

void SyntheticBatchSource::seek(int64_t consumed_samples) {
  FOUNDRY_CHECK(consumed_samples >= 0 && consumed_samples % micro_batch_ == 0,
                "synthetic data: cannot resume at {} samples (micro batch {})", consumed_samples, micro_batch_);
  consumed_ = consumed_samples;
}

}  // namespace foundry

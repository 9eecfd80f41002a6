// GradBuckets: contiguous gradient buckets all-reduced as they become ready (see the header;
// Megatron-Core distributed/param_and_grad_buffer.py, distributed_data_parallel.py).
#include "foundry/optim/grad_buckets.h"

#include <cstdint>
#include <cstdio>
#include <exception>

#include "foundry/core/check.h"

namespace foundry {

namespace {

const char* kind_name(ParamTable::Kind k) { return k == ParamTable::Kind::dense ? "dense" : "expert"; }

}  // namespace

GradBuckets::GradBuckets(const ParamTable& table, ParamTable::Kind kind, Communicator& group, int64_t bucket_bytes)
    : table_(table), kind_(kind), group_(group), bucket_bytes_(bucket_bytes) {
  FOUNDRY_CHECK(table.allocated(), "GradBuckets ({} parameters, group '{}'): the ParamTable is not allocated",
                kind_name(kind), group.name());
  grads_ = table.grad_buffer(kind);
  numel_ = grads_.numel();
  const auto* base = static_cast<const char*>(grads_.data);
  const int n = table.size();
  bucket_of_.assign(static_cast<size_t>(n), -1);
  ready_.assign(static_cast<size_t>(n), 0);

  // Parameters of this kind in REVERSE registration order (= descending offsets in G). Parameter p
  // spans [o_p, end), end = the offset of the parameter after it (N for the last one).
  const bool expert = kind == ParamTable::Kind::expert;
  int64_t end = numel_;  // f32 elements
  Bucket cur;
  cur.end = numel_;
  for (int i = n - 1; i >= 0; --i) {
    if (table.spec(i).expert_local != expert) continue;
    const auto* p = static_cast<const char*>(table.param(i).grad.data());
    const int64_t byte_off = p - base;
    FOUNDRY_CHECK(byte_off >= 0 && byte_off % 4 == 0 && byte_off / 4 <= end,
                  "GradBuckets ({} parameters, group '{}'): gradient of '{}' is not at a 4-byte offset before {} "
                  "inside grad_buffer({}) of {} elements (byte offset {})",
                  kind_name(kind), group.name(), table.spec(i).name, end, kind_name(kind), numel_, byte_off);
    const int64_t begin = byte_off / 4;
    cur.begin = begin;
    cur.params.push_back(i);
    end = begin;
    if (bucket_bytes_ > 0 && cur.bytes() >= bucket_bytes_) {  // Megatron: close once >= bucket_size
      buckets_.push_back(std::move(cur));
      cur = Bucket{};
      cur.begin = cur.end = begin;
    }
  }
  if (!cur.params.empty()) buckets_.push_back(std::move(cur));
  FOUNDRY_CHECK(buckets_.empty() || end == 0,
                "GradBuckets ({} parameters, group '{}'): the parameters start at element {} of grad_buffer({}), "
                "not at 0", kind_name(kind), group.name(), end, kind_name(kind));
  if (!buckets_.empty()) buckets_.back().begin = 0;
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (int i : buckets_[b].params) bucket_of_[static_cast<size_t>(i)] = static_cast<int>(b);
  missing_.resize(buckets_.size());
  reset();
}

GradBuckets::~GradBuckets() {
  for (auto& r : requests_) {
    try {
      r->wait();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "foundry: warning: GradBuckets: %s\n", e.what());
    }
  }
}

int GradBuckets::bucket_of(int param_index) const {
  FOUNDRY_CHECK(param_index >= 0 && param_index < table_.size(),
                "GradBuckets ({} parameters, group '{}'): parameter index {} outside the table of {}",
                kind_name(kind_), group_.name(), param_index, table_.size());
  return bucket_of_[static_cast<size_t>(param_index)];
}

void GradBuckets::mark_ready(int param_index) {
  const int b = bucket_of(param_index);
  if (b < 0) return;  // the other kind's parameter
  char& r = ready_[static_cast<size_t>(param_index)];
  FOUNDRY_CHECK(!r, "GradBuckets ({} parameters, group '{}'): gradient of '{}' marked ready twice in one step",
                kind_name(kind_), group_.name(), table_.spec(param_index).name);
  r = 1;
  --missing_[static_cast<size_t>(b)];
  start_ready_buckets();
}

void GradBuckets::mark_range_ready(int begin, int end) {
  for (int i = begin; i < end; ++i) mark_ready(i);
}

void GradBuckets::start_ready_buckets() {
  // In bucket order only: every rank issues the same sequence of collectives (see the header).
  while (next_start_ < num_buckets() && missing_[static_cast<size_t>(next_start_)] == 0) {
    const Bucket& bk = buckets_[static_cast<size_t>(next_start_)];
    if (group_.size() > 1 && bk.end > bk.begin)
      requests_.push_back(group_.all_reduce_async(grads_.slice(bk.begin, bk.end)));  // sum
    ++next_start_;
  }
}

void GradBuckets::finish() {
  // Buckets not started yet (parameters never marked, or the last bucket when finish() comes
  // right after the backward) would be waited for at once: a blocking all_reduce, which also
  // progresses the requests in flight (Open MPI's blocking allreduce is faster than
  // MPI_Iallreduce + MPI_Wait for large messages: bench/grad_buckets_bench). Same order as
  // starting them, so the sequence of collectives on the group does not change.
  for (; next_start_ < num_buckets(); ++next_start_) {
    const Bucket& bk = buckets_[static_cast<size_t>(next_start_)];
    if (group_.size() > 1 && bk.end > bk.begin) group_.all_reduce(grads_.slice(bk.begin, bk.end));  // sum
  }
  reset();
}

void GradBuckets::reset() {
  for (auto& r : requests_) r->wait();
  requests_.clear();
  next_start_ = 0;
  for (char& r : ready_) r = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) missing_[b] = static_cast<int>(buckets_[b].params.size());
}

}  // namespace foundry

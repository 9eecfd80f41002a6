// GradBuckets: the data-parallel gradient reduction cut into contiguous buckets, each all-reduced
// as soon as backward has produced all of its gradients, so communication overlaps the rest of the
// backward (Megatron-Core's distributed/param_and_grad_buffer.py: _ParamAndGradBucket /
// _ParamAndGradBucketGroup, and distributed/distributed_data_parallel.py: overlap_grad_reduce,
// register_grad_ready, finish_grad_sync; average_in_collective off: a plain sum, since train_step
// already normalises the loss by the global number of tokens).
//
// Layout. One GradBuckets covers one kind of parameter: ParamTable::grad_buffer(kind), a contiguous
// f32 range G of length N (dense parameters are reduced over the data-parallel group, expert
// parameters over the expert-data-parallel group: two GradBuckets). Inside G the parameters of
// that kind lie in registration order; parameter p owns the span [o_p, o_next) (its elements plus
// the alignment padding after it; the last one owns up to N, the first one starts at 0), so the
// spans tile G. Buckets are built walking the parameters in REVERSE registration order (the order
// backward produces gradients: last layer first), as Megatron does:
//   bucket b = the spans of consecutive parameters p_k, p_{k-1}, ..., p_j   (a contiguous range
//              [o_{p_j}, end) of G), closed as soon as it holds >= bucket_bytes
// so every bucket boundary is a parameter boundary, every bucket but the last (bucket b = B - 1,
// which ends at the front of G) holds at least bucket_bytes, and a bucket exceeds bucket_bytes by
// less than the span of its front parameter (the one added last; so a parameter larger than
// bucket_bytes makes a bucket larger than bucket_bytes). bucket_bytes <= 0: one bucket for the
// whole range. The buckets tile G, so
// their all-reduces together equal one all-reduce of G (element for element the same sum: each
// element is summed over the same ranks; the MPI implementation may pick a different summation
// order for a different message length, which only rounds differently for inexact sums).
//
// Protocol per step (every rank of the group, the same calls):
//   mark_ready(i)  parameter i's gradient is final for this step (after the LAST microbatch's
//                  backward produced it); when bucket b has all its parameters ready and
//                  buckets 0..b-1 have started, all_reduce_async(bucket b) starts (and then any
//                  later bucket already complete).
//   finish()       reduces every bucket not started yet (parameters never marked, e.g. unused
//                  ones), in bucket order, with a blocking all_reduce (it would be waited for at
//                  once; Open MPI's blocking allreduce is also much faster than MPI_Iallreduce for
//                  large messages), waits for the buckets in flight, and resets for the next step.
//                  Afterwards G holds the sum over the group of every rank's G.
// Ordering: MPI requires every rank of a communicator to start its (non-blocking) collectives in
// the same order. Megatron (NCCL, one stream) starts a bucket whenever it is complete; here a
// bucket starts only after every bucket before it in bucket order has started, so the sequence
// of collectives is always bucket 0, 1, ..., B - 1 on every rank whatever the order of mark_ready
// calls (and equal across ranks). Backward producing gradients in reverse registration order
// makes buckets complete in bucket order, so this costs nothing in the common case. Other
// collectives on the same group between the first mark_ready and finish() (e.g. the loss
// all-reduce) are fine when every rank has marked the same set of parameters by then (then every
// rank has started the same buckets before it), as when mark_ready is called from the same
// deterministic backward on every rank.
// Overlap: Open MPI progresses non-blocking collectives only inside MPI calls, so on CPU the
// overlap with compute is partial (the transfer proceeds while a later bucket's MPI call or the
// final waits run); results are exact either way. bench/grad_buckets_bench (2 ranks, 33.6 MB of
// gradients, noisy machine): buckets of 4-16 MB take 0.72-1.06x the step time of one blocking
// all-reduce after the backward; one bucket for everything (an MPI_Iallreduce started at the
// end) 1.13-1.27x, so keep several buckets (a few MB each) per step.
//
// With a communicator of size 1 no collective is issued (the bookkeeping still runs).
// Parameters of the other kind are ignored by mark_ready, so a model may call mark_ready with the
// same indices on the dense and the expert GradBuckets.
#pragma once

#include <memory>
#include <vector>

#include "foundry/comm/communicator.h"
#include "foundry/nn/param.h"

namespace foundry {

class GradBuckets {
 public:
  // Megatron's DDP default is 40M elements; 40 MB (10M f32 elements) suits CPU transfers.
  static constexpr int64_t kDefaultBucketBytes = 40'000'000;

  // The table must be allocated and outlive this object; `group` is the data-parallel group
  // (kind dense) or the expert-data-parallel group (kind expert). Local (no communication).
  GradBuckets(const ParamTable& table, ParamTable::Kind kind, Communicator& group,
              int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradBuckets();  // waits for collectives still in flight (their buffer is the table's arena)
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  struct Bucket {
    int64_t begin = 0, end = 0;  // f32 elements of grad_buffer(kind): [begin, end)
    std::vector<int> params;     // table indices, in reverse registration order
    int64_t bytes() const { return (end - begin) * 4; }
  };

  // Collective (may start all-reduces on the group). Parameter param_index's gradient is final for
  // this step. Throws for an index outside the table or a parameter marked twice in one step;
  // ignores parameters of the other kind.
  void mark_ready(int param_index);
  // mark_ready(i) for i in [begin, end) (a layer's parameters are registered consecutively).
  void mark_range_ready(int begin, int end);
  // Collective. Reduces the buckets not started yet (in bucket order), waits for all, resets.
  void finish();
  // Forgets this step's readiness (after waiting for collectives already started).
  void reset();

  ParamTable::Kind kind() const { return kind_; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  const Bucket& bucket(int b) const { return buckets_[static_cast<size_t>(b)]; }
  int bucket_of(int param_index) const;  // -1: a parameter of the other kind
  int64_t bytes() const { return numel_ * 4; }  // the whole range G
  int64_t bucket_bytes() const { return bucket_bytes_; }
  int num_started() const { return next_start_; }  // buckets started this step

 private:
  void start_ready_buckets();  // starts buckets next_start_.. while complete

  const ParamTable& table_;
  ParamTable::Kind kind_;
  Communicator& group_;
  int64_t bucket_bytes_;
  TensorView grads_;  // grad_buffer(kind)
  int64_t numel_ = 0;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;     // per table index; -1 for the other kind
  std::vector<char> ready_;        // per table index, this step
  std::vector<int> missing_;       // per bucket: parameters not ready yet
  int next_start_ = 0;             // buckets [0, next_start_) have started
  std::vector<std::unique_ptr<Request>> requests_;
};

}  // namespace foundry

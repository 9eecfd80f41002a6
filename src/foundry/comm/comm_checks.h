// Argument checks shared by the Communicator implementations (self, MPI, NCCL): every error names
// the collective, the group and the offending tensor or count, so a mismatch between ranks' calls
// is found at the call site rather than as a hang or a corrupted buffer.
// Only local facts are checked (shapes, dtypes, counts against buffer sizes); agreement across ranks
// is the caller's contract (communicator.h).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "foundry/comm/communicator.h"
#include "foundry/core/check.h"

namespace foundry::comm_detail {

// Communicators move whole elements: packed sub-byte dtypes (e2m1) have no element address.
inline void check_movable(std::string_view op, const Communicator& c, const TensorView& t,
                          std::string_view what) {
  FOUNDRY_CHECK(t.dtype != DType::e2m1, "{} on group '{}': {} has dtype e2m1 (packed 4-bit), which "
                "communicators do not move; reinterpret it as u8", op, c.name(), what);
  FOUNDRY_CHECK(t.numel() == 0 || t.data != nullptr, "{} on group '{}': {} {} has no data", op,
                c.name(), what, t.str());
}

inline void check_same_dtype(std::string_view op, const Communicator& c, const TensorView& in,
                             const TensorView& out) {
  FOUNDRY_CHECK(in.dtype == out.dtype, "{} on group '{}': input {} and output {} differ in dtype", op,
                c.name(), in.str(), out.str());
}

// reduce_scatter: in (size * n), out (n).
inline void check_reduce_scatter(std::string_view op, const Communicator& c, const TensorView& in,
                                 const TensorView& out) {
  check_movable(op, c, in, "input");
  check_movable(op, c, out, "output");
  check_same_dtype(op, c, in, out);
  FOUNDRY_CHECK(in.numel() == c.size() * out.numel(), "{} on group '{}' of size {}: input {} must have "
                "size * numel(output {}) = {} elements", op, c.name(), c.size(), in.str(), out.str(),
                c.size() * out.numel());
}

// One count per rank, none negative; returns their sum.
inline int64_t check_counts(std::string_view op, const Communicator& c, std::span<const int64_t> counts) {
  FOUNDRY_CHECK(static_cast<int64_t>(counts.size()) == c.size(), "{} on group '{}': {} counts for a "
                "group of size {}", op, c.name(), counts.size(), c.size());
  int64_t total = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    FOUNDRY_CHECK(counts[r] >= 0, "{} on group '{}': counts[{}] = {} is negative", op, c.name(), r,
                  counts[r]);
    total += counts[r];
  }
  return total;
}

// reduce_scatter_v: in (sum_r counts[r]) rank after rank, out (counts[rank]).
inline void check_reduce_scatter_v(std::string_view op, const Communicator& c, const TensorView& in,
                                   const TensorView& out, std::span<const int64_t> counts) {
  check_movable(op, c, in, "input");
  check_movable(op, c, out, "output");
  check_same_dtype(op, c, in, out);
  const int64_t total = check_counts(op, c, counts);
  FOUNDRY_CHECK(total == in.numel(), "{} on group '{}': counts sum to {} but input {} has {} elements",
                op, c.name(), total, in.str(), in.numel());
  FOUNDRY_CHECK(counts[c.rank()] == out.numel(), "{} on group '{}': counts[{}] = {} but this rank's "
                "output {} has {} elements", op, c.name(), c.rank(), counts[c.rank()], out.str(), out.numel());
}

// all_gather: in (n), out (size * n).
inline void check_all_gather(std::string_view op, const Communicator& c, const TensorView& in,
                             const TensorView& out) {
  check_movable(op, c, in, "input");
  check_movable(op, c, out, "output");
  check_same_dtype(op, c, in, out);
  FOUNDRY_CHECK(out.numel() == c.size() * in.numel(), "{} on group '{}' of size {}: output {} must have "
                "size * numel(input {}) = {} elements", op, c.name(), c.size(), out.str(), in.str(),
                c.size() * in.numel());
}

// all_gather_v: counts[r] = numel of rank r's input; out holds their sum.
inline void check_all_gather_v(std::string_view op, const Communicator& c, const TensorView& in,
                               const TensorView& out, std::span<const int64_t> counts) {
  check_movable(op, c, in, "input");
  check_movable(op, c, out, "output");
  check_same_dtype(op, c, in, out);
  const int64_t total = check_counts(op, c, counts);
  FOUNDRY_CHECK(counts[c.rank()] == in.numel(), "{} on group '{}': counts[{}] = {} but this rank's "
                "input {} has {} elements", op, c.name(), c.rank(), counts[c.rank()], in.str(), in.numel());
  FOUNDRY_CHECK(total == out.numel(), "{} on group '{}': counts sum to {} but output {} has {} elements",
                op, c.name(), total, out.str(), out.numel());
}

// all_to_all_v: per-peer (count, offset) pairs must lie inside the buffer.
inline void check_all_to_all_side(std::string_view op, const Communicator& c, const TensorView& t,
                                  std::span<const int64_t> counts, std::span<const int64_t> offsets,
                                  std::string_view side) {
  FOUNDRY_CHECK(static_cast<int64_t>(counts.size()) == c.size() &&
                static_cast<int64_t>(offsets.size()) == c.size(),
                "{} on group '{}' of size {}: {} counts ({}) and offsets ({}) must have one entry per rank",
                op, c.name(), c.size(), side, counts.size(), offsets.size());
  for (size_t r = 0; r < counts.size(); ++r)
    FOUNDRY_CHECK(counts[r] >= 0 && offsets[r] >= 0 && offsets[r] + counts[r] <= t.numel(),
                  "{} on group '{}': {} block for rank {} (offset {}, count {}) lies outside {}", op,
                  c.name(), side, r, offsets[r], counts[r], t.str());
}

inline void check_all_to_all_v(std::string_view op, const Communicator& c, const TensorView& in,
                               std::span<const int64_t> send_counts, std::span<const int64_t> send_offsets,
                               const TensorView& out, std::span<const int64_t> recv_counts,
                               std::span<const int64_t> recv_offsets) {
  check_movable(op, c, in, "input");
  check_movable(op, c, out, "output");
  check_same_dtype(op, c, in, out);
  check_all_to_all_side(op, c, in, send_counts, send_offsets, "send");
  check_all_to_all_side(op, c, out, recv_counts, recv_offsets, "recv");
}

inline void check_root(std::string_view op, const Communicator& c, int root) {
  FOUNDRY_CHECK(root >= 0 && root < c.size(), "{} on group '{}' of size {}: root {} out of range", op,
                c.name(), c.size(), root);
}

inline void check_peer(std::string_view op, const Communicator& c, int peer) {
  FOUNDRY_CHECK(peer >= 0 && peer < c.size(), "{} on group '{}' of size {}: peer {} out of range", op,
                c.name(), c.size(), peer);
  FOUNDRY_CHECK(peer != c.rank(), "{} on group '{}': rank {} cannot {} itself (a blocking self "
                "message would deadlock)", op, c.name(), peer, op == "send" ? "send to" : "receive from");
}

}  // namespace foundry::comm_detail

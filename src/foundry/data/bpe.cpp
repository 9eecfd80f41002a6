// Byte-pair merging (see bpe.h): tiktoken's src/lib.rs byte_pair_merge for short pieces, a
// heap over a linked list of parts for long ones; both merge the lowest-priority pair, leftmost
// first.
#include "foundry/data/bpe.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <queue>

#include "foundry/core/check.h"
#include "foundry/data/tokenizer_io.h"

namespace foundry {

namespace {

constexpr int32_t kNone = INT32_MAX;  // "this pair does not merge"

struct PairRank {
  int32_t rank;    // priority, kNone when the pair does not merge
  int32_t merged;  // the id it merges to
};

// One part of a piece being merged: bytes [start, next part's start), the pair with the next part.
struct Part {
  uint32_t start;
  int32_t id;
  int32_t rank;
  int32_t merged;
};

}  // namespace

void BytePairEncoder::add_tokens(std::vector<Token> tokens, const std::string& source) {
  int32_t max_id = -1;
  for (const Token& t : tokens) {
    FOUNDRY_CHECK(t.id >= 0, "{}: token '{}' has negative id {}", source, quote_for_error(t.bytes), t.id);
    FOUNDRY_CHECK(!t.bytes.empty(), "{}: token {} is empty", source, t.id);
    max_id = std::max(max_id, t.id);
  }
  bytes_.assign(static_cast<size_t>(max_id) + 1, std::string());
  present_.assign(bytes_.size(), 0);
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (Token& t : tokens) {
    FOUNDRY_CHECK(!present_[t.id], "{}: id {} is given to two tokens ('{}' and '{}')", source, t.id,
                  quote_for_error(bytes_[t.id]), quote_for_error(t.bytes));
    FOUNDRY_CHECK(ids_.insert(t.bytes, t.id), "{}: token '{}' is listed twice (ids {} and {})", source,
                  quote_for_error(t.bytes), ids_.find(t.bytes), t.id);
    if (t.bytes.size() == 1) byte_ids_[static_cast<unsigned char>(t.bytes[0])] = t.id;
    present_[t.id] = 1;
    bytes_[t.id] = std::move(t.bytes);
  }
  for (int b = 0; b < 256; ++b)
    FOUNDRY_CHECK(byte_ids_[b] >= 0, "{}: the vocabulary has no token for the single byte 0x{:02x}, so byte-level "
                  "encoding is impossible (truncated or not a byte-level BPE vocabulary?)", source, b);
}

BytePairEncoder BytePairEncoder::from_ranks(std::vector<Token> tokens, const std::string& source) {
  BytePairEncoder bpe;
  bpe.rank_based_ = true;
  bpe.ignore_merges_ = true;
  bpe.add_tokens(std::move(tokens), source);
  return bpe;
}

BytePairEncoder BytePairEncoder::from_merges(std::vector<Token> vocab, std::vector<Merge> merges, bool ignore_merges,
                                             const std::string& source) {
  BytePairEncoder bpe;
  bpe.rank_based_ = false;
  bpe.ignore_merges_ = ignore_merges;
  bpe.add_tokens(std::move(vocab), source);
  bpe.merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [l, r] = merges[i];
    FOUNDRY_CHECK(bpe.contains(l) && bpe.contains(r), "{}: merge {} names id {} that is not in the vocabulary", source,
                  i, bpe.contains(l) ? r : l);
    const std::string joined = bpe.bytes_[l] + bpe.bytes_[r];
    const int32_t id = bpe.ids_.find(joined);
    FOUNDRY_CHECK(id >= 0, "{}: merge {} ('{}' + '{}') makes '{}', which is not in the vocabulary", source, i,
                  quote_for_error(bpe.bytes_[l]), quote_for_error(bpe.bytes_[r]), quote_for_error(joined));
    if (bpe.pairs_.insert(l, r, {static_cast<int32_t>(bpe.merges_.size()), id})) bpe.merges_.push_back({l, r});
  }
  if (!ignore_merges) {  // which tokens the merges rebuild from their bytes: those may skip merging
    bpe.reachable_.assign(bpe.bytes_.size(), 0);
    std::vector<int32_t> ids;
    for (size_t id = 0; id < bpe.bytes_.size(); ++id) {
      if (!bpe.present_[id]) continue;
      ids.clear();
      bpe.merge(bpe.bytes_[id], ids);
      bpe.reachable_[id] = ids.size() == 1 && ids[0] == static_cast<int32_t>(id);
    }
  }
  return bpe;
}

void BytePairEncoder::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  FOUNDRY_CHECK(piece.size() < UINT32_MAX, "BPE: a {}-byte piece is too long (4 GiB at most)", piece.size());
  if (piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const int32_t whole = ids_.find(piece);
  if (whole >= 0 && (ignore_merges_ || reachable_[whole])) {
    out.push_back(whole);
    return;
  }
  merge(piece, out);
}

void BytePairEncoder::merge(std::string_view piece, std::vector<int32_t>& out) const {
  if (rank_based_) {
    merge_with(piece, [&](int32_t, int32_t, size_t begin, size_t end) {
      const int32_t r = ids_.find(piece.substr(begin, end - begin));
      return PairRank{r < 0 ? kNone : r, r};
    }, out);
  } else {
    merge_with(piece, [&](int32_t left, int32_t right, size_t, size_t) {
      const PairMap::Value* v = pairs_.find(left, right);
      return v ? PairRank{v->rank, v->id} : PairRank{kNone, -1};
    }, out);
  }
}

// pair(left id, right id, begin, end) -> PairRank of the adjacent parts covering [begin, end).
template <class PairFn>
void BytePairEncoder::merge_with(std::string_view piece, PairFn pair, std::vector<int32_t>& out) const {
  const size_t n = piece.size();
  const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
  if (n <= heap_threshold_) {
    // tiktoken's scan: parts[0..m) plus a sentinel holding the end of the piece.
    constexpr size_t kStack = 64;
    Part stack_parts[kStack + 1];
    std::vector<Part> heap_parts;
    Part* p = stack_parts;
    if (n > kStack) {
      heap_parts.resize(n + 1);
      p = heap_parts.data();
    }
    for (size_t i = 0; i < n; ++i) p[i] = {static_cast<uint32_t>(i), byte_ids_[bytes[i]], kNone, -1};
    p[n] = {static_cast<uint32_t>(n), -1, kNone, -1};
    auto set_pair = [&](size_t i) {
      const PairRank pr = pair(p[i].id, p[i + 1].id, p[i].start, p[i + 2].start);
      p[i].rank = pr.rank;
      p[i].merged = pr.merged;
    };
    size_t m = n;
    for (size_t i = 0; i + 1 < m; ++i) set_pair(i);
    while (m > 1) {
      int32_t best = kNone;
      size_t at = 0;
      for (size_t i = 0; i + 1 < m; ++i) {
        if (p[i].rank < best) {
          best = p[i].rank;
          at = i;
        }
      }
      if (best == kNone) break;
      p[at].id = p[at].merged;
      std::memmove(p + at + 1, p + at + 2, (m - at - 1) * sizeof(Part));  // drop part at+1, keep the sentinel
      --m;
      if (at + 1 < m) {
        set_pair(at);
      } else {
        p[at].rank = kNone;
      }
      if (at > 0) set_pair(at - 1);
    }
    for (size_t i = 0; i < m; ++i) out.push_back(p[i].id);
    return;
  }

  // Long pieces: parts are named by their start byte; a heap holds candidate pairs, and an entry
  // is stale once either part has changed (versions) or died.
  struct Candidate {
    int32_t rank;
    uint32_t left, right;
    uint32_t left_version, right_version;
    int32_t merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<int32_t> id(n);
  std::vector<uint32_t> next(n), version(n, 0);
  std::vector<int64_t> prev(n);
  std::vector<char> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_ids_[bytes[i]];
    next[i] = static_cast<uint32_t>(i + 1);
    prev[i] = static_cast<int64_t>(i) - 1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](uint32_t left) {
    const uint32_t right = next[left];
    if (right >= n) return;
    const size_t end = next[right];
    const PairRank pr = pair(id[left], id[right], left, end);
    if (pr.rank != kNone) heap.push({pr.rank, left, right, version[left], version[right], pr.merged});
  };
  for (uint32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right || version[c.left] != c.left_version ||
        version[c.right] != c.right_version)
      continue;
    id[c.left] = c.merged;
    ++version[c.left];
    alive[c.right] = 0;
    next[c.left] = next[c.right];
    if (next[c.right] < n) prev[next[c.right]] = c.left;
    if (prev[c.left] >= 0) push(static_cast<uint32_t>(prev[c.left]));
    push(c.left);
  }
  for (size_t i = 0; i < n; i = next[i]) out.push_back(id[i]);
}

}  // namespace foundry

// Near-duplicate grouping of clips by perceptual fingerprint (video/perceptual_hash.h): one clip
// per group of near-duplicates is kept. This is the cheap, decode-only stage of the curation
// pipeline's dedup (reference/video.md b.6 describes Cosmos' embedding-based SemDeDup, which needs
// a video embedding model; pHash catches re-encodes, rescales and re-uploads of the same footage).
//
// Duplicate relation: fingerprint_distance(a, b) <= max_distance (mean Hamming bits per sampled
// frame, of 64).
//
// Grouping: connected components of that relation (union-find), so near-duplicate chains join:
// if a~b and b~c then a, b, c form one group even when a and c are farther apart than
// max_distance. Chosen over clique-style grouping (every pair within the threshold) because it is
// order-independent and unique, and because a chain of small edits (re-encode, then rescale, then
// re-encode) is still the same footage. The cost is that a long chain can drift; with a threshold
// of 6 bits of 64 per frame that needs many consecutive near-identical clips, which is what a
// dedup should collapse anyway.
//
// Kept: in each group the item with the highest priority (ties: the lower index).
// Group ids are dense, numbered by the lowest index in each group (item 0 is in group 0, the first
// item not in group 0 starts group 1, ...).
//
// Candidate pairs (both exact, so results are identical; a test checks it):
//  - all_pairs: n (n - 1) / 2 distances. Fine up to a few thousand clips.
//  - banded: multi-index hashing. If mean_j d_j <= D over m aligned samples, some sample has
//    d_j <= r = floor(D) (the minimum is at most the mean, and is an integer). Split the 64 bits
//    into r + 1 bands; by pigeonhole two hashes within r bits agree exactly on at least one band.
//    So index every (sample j, band b, band bits) of every fingerprint, and only pairs that share
//    a bucket are candidates. This indexes every sample, not only the first: a pair at mean 6 can
//    differ by 10 bits on its first sample, so bands of the first hash alone (4 x 16 bits, exact
//    for Hamming <= 3 on that one hash) would miss it. Fingerprints are banded within groups of
//    equal length (aligned samples); pairs of different lengths (clips shorter than `samples`
//    frames) are compared all-pairs. A pair that shares several buckets is compared once (in the
//    first bucket it shares). With D = 6 there are 7 bands of 9-10 bits and 8 samples: unrelated
//    random hashes share a bucket with probability ~56/2^9.1, about 10% of the pairs (measured on
//    3000 random fingerprints: 9.7%; D = 3: 0.05%; D = 10: 81%): the cost grows with D as the
//    bands narrow. Identical fingerprints (black clips, repeated intros) are joined up front and
//    banded once, so a big bucket of them does not cost n^2 per band.
// Pairs whose items are already in one component are skipped (their distance cannot change it).
#pragma once

#include <vector>

#include "foundry/video/perceptual_hash.h"

namespace foundry::video {

enum class CandidateSearch {
  automatic,  // all_pairs up to 4096 items, banded above
  all_pairs,
  banded,
};

struct DedupOptions {
  // Mean Hamming bits (of 64) per aligned sampled frame for two clips to be near-duplicates.
  // Default 6, measured in tests/video/dedup_test.cpp on a textured synthetic clip (libx264 crf 18
  // vs crf 35: 0.75 bits; vs the same frames at half size: 0.25) and a different clip (31.75);
  // unrelated content sits near 32 (random 64-bit hashes: 32 +- 4 per frame, +- 1.4 for the mean
  // of 8), so 6 is far from chance while leaving room for heavier edits. Smooth, textureless
  // clips are the weak spot of pHash: many of their 64 low DCT terms lie near the median, where
  // compression noise flips bits (a gradient-with-a-blob clip measured 6.75 at half size and 7.25
  // at crf 35 while the test was written; the test now uses texture). The default errs on that
  // side: a missed duplicate keeps one extra clip, a false merge drops a distinct one. (imagehash
  // users commonly take <= 10 bits for a single image; a mean over 8 frames is steadier.)
  double max_distance = 6.0;
  CandidateSearch search = CandidateSearch::automatic;
};

struct DedupItem {
  ClipFingerprint fingerprint;
  double priority = 0;  // the highest priority of a group is kept (ties: the lower index)
};

struct DedupResult {
  std::vector<int> group;     // (n) dense group id, numbered by each group's lowest index
  std::vector<bool> keep;     // (n) true for exactly one item per group
  std::vector<int> kept_of;   // (n) index of the item kept in item i's group
  int groups = 0;             // number of groups
  int64_t pairs_compared = 0; // fingerprint distances computed (for reporting the search's cost)
};

DedupResult dedup_clips(const std::vector<DedupItem>& items, const DedupOptions& options = {});

}  // namespace foundry::video

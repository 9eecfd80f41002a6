// Perceptual hash (pHash) of frames and clips, for near-duplicate detection in video curation.
//
// Frame hash: the `imagehash` package's phash(image, hash_size=8, highfreq_factor=4):
//   grey = image.convert("L"); small = grey.resize((32, 32)); pixels = asarray(small)   (u8)
//   D = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)   DCT-II, unnormalised:
//       along an axis of N = 32: y[k] = 2 * sum_n x[n] * cos(pi * k * (2n + 1) / (2N))
//   low = D[:8, :8]; bit (u, v) = low[u][v] > median(low)   (median of 64 = mean of the 2 middle ones)
// Bit order (the same as imagehash's hex string): row-major over (u, v), the first coefficient
// low[0][0] (the DC term) is the most significant bit of the uint64_t; low[7][7] is bit 0.
//
// Two stated differences from imagehash (tools/ref/write_phash_fixture.py implements both, and
// tests/fixtures/phash.json holds its hashes, resized images and coefficients):
//  1. Resize: exact area averaging, not PIL's Lanczos (ANTIALIAS). Each 32x32 output pixel is the
//     overlap-weighted mean of the source pixels under its cell, computed in integers and rounded
//     half up to u8 (PIL's resize returns u8 too). Up- and downscaling alike. On the fixture's
//     textured images the hash is 0..2 bits from the one with PIL's Lanczos resize.
//  2. DCT coefficients with |c| < 1e-6 are set to 0. With integer input they are exactly 0 in
//     exact arithmetic, and a float DCT returns rounding noise (~1e-9) for them; imagehash's bits
//     for those terms are noise. So a flat grey frame hashes to 0x8000000000000000 and a black
//     frame to 0, deterministically, instead of to noise.
//
// Clip fingerprint: the frame hashes of `samples` frames at evenly spaced positions of the clip
// (ClipFingerprinter), compared by mean Hamming distance over aligned samples.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "foundry/video/video_reader.h"

namespace foundry::video {

constexpr int kPhashSize = 32;  // the resized image is kPhashSize x kPhashSize
constexpr int kPhashLow = 8;    // the hash keeps the kPhashLow x kPhashLow lowest frequencies

// gray: (height, width) u8, rows packed -> (32, 32) u8 by exact area averaging (rounded half up).
std::array<uint8_t, kPhashSize * kPhashSize> resize_area_32(const uint8_t* gray, int width, int height);

// small: (32, 32) u8 -> (8, 8) row-major float64 coefficients D[u][v] of the 2-D unnormalised
// DCT-II (scipy.fftpack.dct type 2, along axis 0 then axis 1), |D| < 1e-6 set to 0.
std::array<double, kPhashLow * kPhashLow> dct_low_8x8(const uint8_t* small);

// The 64 bits "coefficient > median of the 64", row-major, first coefficient = most significant bit.
uint64_t phash_bits(const std::array<double, kPhashLow * kPhashLow>& coefficients);

// pHash of a grey image: gray (height, width) u8, rows packed.
uint64_t phash64(const uint8_t* gray, int width, int height);

// PIL's convert("L") of an RGB pixel: (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
inline uint8_t luma_pil(uint8_t b, uint8_t g, uint8_t r) {
  return static_cast<uint8_t>((19595u * r + 38470u * g + 7471u * b + 0x8000u) >> 16);
}

// pHash of a decoded frame: channels 3 is taken as BGR24 (VideoReader's default format) and
// converted with luma_pil; channels 1 as GRAY8 (used as is). RGB24 frames are not accepted
// (a Frame does not say its channel order): decode with PixelFormat::bgr24 or gray8.
uint64_t phash64_bgr(const Frame& bgr);

// Number of differing bits (0..64).
int hamming(uint64_t a, uint64_t b);

// A clip fingerprint: the pHashes of the sampled frames, in clip order.
struct ClipFingerprint {
  std::vector<uint64_t> hashes;
};

// Hashes `samples` frames at evenly spaced positions of a clip that is fed frame by frame.
// Sampled frame i (0 <= i < samples) is round(i * (N - 1) / (samples - 1)) (halves round up),
// so the first and the last frame are always sampled; when N <= samples every frame is sampled;
// samples = 1 takes the middle frame round((N - 1) / 2). N = expected_frames, the clip's frame
// count (shot detection knows it exactly). If the clip ends early, result() holds only the
// samples seen; frames after the expected N are ignored.
class ClipFingerprinter {
 public:
  explicit ClipFingerprinter(int64_t expected_frames, int samples = 8);
  // Called with every frame of the clip, in order; hashes only the sampled ones.
  void add(const Frame& bgr);
  ClipFingerprint result() const { return fingerprint_; }
  // The frame indices that are hashed (increasing, distinct).
  const std::vector<int64_t>& positions() const { return positions_; }
  int64_t frames_seen() const { return seen_; }

 private:
  std::vector<int64_t> positions_;
  size_t next_ = 0;  // the next entry of positions_ to hash
  int64_t seen_ = 0;
  ClipFingerprint fingerprint_;
};

// Mean Hamming distance over aligned samples, in bits of 64 (0..64). With m = the shorter
// fingerprint's length and n the longer's, sample j (0 <= j < m) of the shorter is compared with
// sample round(j * (n - 1) / (m - 1)) of the longer, i.e. at the same relative position in the
// clip (m = 1: with the longer's middle sample, round((n - 1) / 2)); equal lengths align one to
// one. An empty fingerprint is at distance 64 from everything (nothing shows they match).
double fingerprint_distance(const ClipFingerprint& a, const ClipFingerprint& b);

}  // namespace foundry::video

// Perceptual hash and near-duplicate grouping (video/perceptual_hash.h, video/dedup.h):
//  - pHash parity with tools/ref/write_phash_fixture.py (tests/fixtures/phash.json): PIL's grey
//    conversion, the area resize, the 8x8 DCT coefficients and the hashes; and a second check of
//    the DCT against the DCT-II formula written out;
//  - bit order and Hamming distance by construction;
//  - the fingerprinter's sampled frame positions and the distance's alignment of unequal lengths;
//  - a synthetic clip written with libx264 at crf 18, re-encoded at crf 35 and at half size and
//    decoded with VideoReader stays within max_distance, while a different clip is far;
//  - dedup_clips: groups, the kept item, chains, singletons, against a naive transitive closure;
//    the banded candidate search equals all pairs on random fingerprints with planted duplicates.
#include <unistd.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>

#include "foundry/video/dedup.h"
#include "foundry/video/perceptual_hash.h"
#include "foundry/video/video_writer.h"
#include "testing.h"

extern "C" {
#include <libavutil/log.h>
}

namespace foundry::video {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> bytes(hex.size() / 2);
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return bytes;
}

const nlohmann::json& fixture() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::string(FOUNDRY_FIXTURES_DIR) + "/phash.json");
    EXPECT_TRUE(in.good()) << "tests/fixtures/phash.json (tools/ref/write_phash_fixture.py)";
    return nlohmann::json::parse(in);
  }();
  return doc;
}

// The unnormalised 2-D DCT-II written out, straight from the formula, for the 8x8 lowest
// frequencies: D[u][v] = sum_y sum_x 4 cos(pi u (2y + 1) / 64) cos(pi v (2x + 1) / 64) small[y][x].
std::array<double, 64> naive_dct_8x8(const uint8_t* small) {
  std::array<double, 64> d{};
  for (int u = 0; u < 8; ++u)
    for (int v = 0; v < 8; ++v) {
      double s = 0;
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          s += 4 * std::cos(std::numbers::pi * u * (2 * y + 1) / 64) *
               std::cos(std::numbers::pi * v * (2 * x + 1) / 64) * small[y * 32 + x];
      d[static_cast<size_t>(u * 8 + v)] = s;
    }
  return d;
}

TEST(PerceptualHash, MatchesThePythonReferenceFixture) {
  const auto& cases = fixture().at("cases");
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    const int h = c.at("height"), w = c.at("width"), channels = c.at("channels");
    const std::vector<uint8_t> pixels = from_hex(c.at("pixels"));
    ASSERT_EQ(pixels.size(), static_cast<size_t>(h * w * channels)) << name;
    std::vector<uint8_t> gray = pixels;
    if (channels == 3) {  // PIL's convert("L"), as the fixture's PIL output
      gray.assign(static_cast<size_t>(h * w), 0);
      for (int i = 0; i < h * w; ++i) gray[i] = luma_pil(pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]);
      EXPECT_EQ(gray, from_hex(c.at("gray"))) << name;
    }
    const auto small = resize_area_32(gray.data(), w, h);
    EXPECT_EQ(std::vector<uint8_t>(small.begin(), small.end()), from_hex(c.at("resized"))) << name;
    const auto coeffs = dct_low_8x8(small.data());
    const std::vector<double> expected = c.at("dct8x8");
    for (size_t i = 0; i < 64; ++i) EXPECT_NEAR(coeffs[i], expected[i], 1e-9) << name << " coefficient " << i;
    const uint64_t want = std::stoull(c.at("hash").get<std::string>(), nullptr, 16);
    EXPECT_EQ(phash_bits(coeffs), want) << name;
    EXPECT_EQ(phash64(gray.data(), w, h), want) << name;
    if (channels == 3) {
      Frame f;
      f.width = w, f.height = h, f.channels = 3, f.data = pixels;
      EXPECT_EQ(phash64_bgr(f), want) << name;
    } else {
      Frame f;
      f.width = w, f.height = h, f.channels = 1, f.data = pixels;
      EXPECT_EQ(phash64_bgr(f), want) << name << " (GRAY8 frame)";
    }
  }
  // Flat frames hash to their DC bit only (the header's difference 2).
  const std::vector<uint8_t> grey(24 * 24, 128), black(16 * 16, 0);
  EXPECT_EQ(phash64(grey.data(), 24, 24), 0x8000000000000000ull);
  EXPECT_EQ(phash64(black.data(), 16, 16), 0ull);
}

TEST(PerceptualHash, DctEqualsTheFormulaWrittenOut) {
  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> images;
  for (const auto& c : fixture().at("cases")) images.push_back(from_hex(c.at("resized")));
  for (int k = 0; k < 3; ++k) {
    std::vector<uint8_t> img(32 * 32);
    for (auto& p : img) p = static_cast<uint8_t>(rng() % 256);
    images.push_back(img);
  }
  for (size_t n = 0; n < images.size(); ++n) {
    const auto low = dct_low_8x8(images[n].data());
    auto naive_low = naive_dct_8x8(images[n].data());
    for (size_t i = 0; i < 64; ++i) {
      if (std::abs(naive_low[i]) < 1e-6) naive_low[i] = 0;  // the stated snap of exact zeros
      EXPECT_NEAR(low[i], naive_low[i], 1e-9) << "image " << n << " coefficient " << i;
    }
    EXPECT_EQ(phash_bits(low), phash_bits(naive_low)) << "image " << n;
  }
}

TEST(PerceptualHash, BitOrderAndHamming) {
  // Coefficient i = i: the median is 31.5, so coefficients 32..63 (the last, least significant bits) are set.
  std::array<double, 64> rising{}, falling{};
  for (int i = 0; i < 64; ++i) rising[static_cast<size_t>(i)] = i, falling[static_cast<size_t>(i)] = -i;
  EXPECT_EQ(phash_bits(rising), 0x00000000ffffffffull);
  EXPECT_EQ(phash_bits(falling), 0xffffffff00000000ull);
  std::array<double, 64> one_high{};
  one_high[0] = 5;  // only the first coefficient above the median 0: the most significant bit
  EXPECT_EQ(phash_bits(one_high), 0x8000000000000000ull);

  EXPECT_EQ(hamming(0, 0), 0);
  EXPECT_EQ(hamming(0, ~0ull), 64);
  EXPECT_EQ(hamming(0x8000000000000000ull, 1), 2);
  std::mt19937_64 rng(3);
  for (int k = 0; k < 100; ++k) {
    const uint64_t a = rng(), b = rng();
    int naive = 0;
    for (int bit = 0; bit < 64; ++bit) naive += ((a >> bit) & 1) != ((b >> bit) & 1);
    EXPECT_EQ(hamming(a, b), naive);
  }
}

// A 16x12 BGR frame whose pHash identifies t: a bright square at one of 192 places.
Frame marked_frame(int64_t t) {
  Frame f;
  f.width = 16, f.height = 12, f.channels = 3, f.index = t;
  f.data.assign(16 * 12 * 3, 20);
  const int x0 = static_cast<int>(t % 16), y0 = static_cast<int>((t / 16) % 12);
  for (int y = y0; y < std::min(12, y0 + 4); ++y)
    for (int x = x0; x < std::min(16, x0 + 4); ++x)
      for (int c = 0; c < 3; ++c) f.data[static_cast<size_t>((y * 16 + x) * 3 + c)] = 230;
  return f;
}

TEST(ClipFingerprinter, SamplesEvenlySpacedFrames) {
  using P = std::vector<int64_t>;
  // round(i * 99 / 7): 0, 14.14, 28.29, 42.43, 56.57, 70.71, 84.86, 99.
  EXPECT_EQ(ClipFingerprinter(100, 8).positions(), (P{0, 14, 28, 42, 57, 71, 85, 99}));
  EXPECT_EQ(ClipFingerprinter(9, 8).positions(), (P{0, 1, 2, 3, 5, 6, 7, 8}));  // i * 8 / 7
  EXPECT_EQ(ClipFingerprinter(4, 3).positions(), (P{0, 2, 3}));                 // 1.5 rounds up
  EXPECT_EQ(ClipFingerprinter(8, 8).positions(), (P{0, 1, 2, 3, 4, 5, 6, 7}));  // N <= samples: all
  EXPECT_EQ(ClipFingerprinter(3, 8).positions(), (P{0, 1, 2}));
  EXPECT_EQ(ClipFingerprinter(0, 8).positions(), P{});
  EXPECT_EQ(ClipFingerprinter(10, 1).positions(), P{5});                        // round(4.5)
  EXPECT_THROW(ClipFingerprinter(10, 0), Error);
  EXPECT_THROW(ClipFingerprinter(-1, 8), Error);

  // Fed every frame, it hashes exactly the sampled ones, in order.
  ClipFingerprinter fp(100, 8);
  for (int64_t t = 0; t < 100; ++t) fp.add(marked_frame(t));
  ClipFingerprint want;
  for (int64_t t : fp.positions()) want.hashes.push_back(phash64_bgr(marked_frame(t)));
  EXPECT_EQ(fp.result().hashes, want.hashes);
  for (size_t i = 1; i < want.hashes.size(); ++i) EXPECT_NE(want.hashes[i], want.hashes[i - 1]);
  // A clip that ends early keeps the samples it reached; frames past N are ignored.
  ClipFingerprinter early(100, 8);
  for (int64_t t = 0; t < 50; ++t) early.add(marked_frame(t));
  EXPECT_EQ(early.result().hashes, std::vector<uint64_t>(want.hashes.begin(), want.hashes.begin() + 4));
  ClipFingerprinter longer(100, 8);
  for (int64_t t = 0; t < 130; ++t) longer.add(marked_frame(t));
  EXPECT_EQ(longer.result().hashes, want.hashes);
  EXPECT_EQ(longer.frames_seen(), 130);
  Frame rgba = marked_frame(0);
  rgba.channels = 4;
  EXPECT_THROW(phash64_bgr(rgba), Error);
}

TEST(ClipFingerprint, DistanceAlignsRelativePositions) {
  const uint64_t z = 0, one = 1, three = 7, all = ~0ull;
  // Equal lengths: sample by sample, mean of (0 + 1 + 3) bits.
  EXPECT_DOUBLE_EQ(fingerprint_distance({{z, z, z}}, {{z, one, three}}), 4.0 / 3.0);
  // 3 samples vs 8: sample j meets sample round(j * 7 / 2) = 0, 4 (3.5 up), 7; all others differ fully.
  const ClipFingerprint a{{z, all, all, all, one, all, all, three}}, b{{z, z, z}};
  EXPECT_DOUBLE_EQ(fingerprint_distance(a, b), (0 + 1 + 3) / 3.0);
  EXPECT_DOUBLE_EQ(fingerprint_distance(b, a), (0 + 1 + 3) / 3.0);
  // One sample meets the longer's middle, round(7 / 2) = 4.
  EXPECT_DOUBLE_EQ(fingerprint_distance(a, {{z}}), 1.0);
  // Nothing to compare: the maximum.
  EXPECT_DOUBLE_EQ(fingerprint_distance(a, {}), 64.0);
  EXPECT_DOUBLE_EQ(fingerprint_distance({}, {}), 64.0);
}

// ---- encoded clips -------------------------------------------------------------------------------

constexpr int kW = 160, kH = 120, kFrames = 24;

std::string scratch(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("foundry_dedup_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

// A clip pans over a still texture (2 px right and 1 px down per frame). The texture has the
// roughly 1/f amplitude spectrum of natural images: random-phase cosines, amplitude 1/|f| for
// 1..6 cycles per frame in each direction, so the low 8x8 DCT terms the hash keeps are of
// comparable size. (A smooth picture, e.g. a gradient with a blob, leaves a quarter of them near
// the median, where compression noise flips bits: pHash needs texture, as real footage has.)
constexpr int kTexW = kW + 2 * kFrames, kTexH = kH + kFrames;

std::vector<double> texture(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(static_cast<size_t>(kTexW * kTexH), 128.0);
  for (int fy = 0; fy <= 6; ++fy)
    for (int fx = 0; fx <= 6; ++fx) {
      if (fx == 0 && fy == 0) continue;
      const double phase = 2 * std::numbers::pi * (rng() % 1000) / 1000.0;
      const double amplitude = 45.0 / std::sqrt(double(fx * fx + fy * fy));
      for (int y = 0; y < kTexH; ++y)
        for (int x = 0; x < kTexW; ++x)
          v[static_cast<size_t>(y * kTexW + x)] +=
              amplitude * std::cos(2 * std::numbers::pi * (double(fx) * x / kW + double(fy) * y / kH) + phase);
    }
  return v;
}

// BGR frame t of texture `seed`, full size (kW x kH) or halved by 2x2 box averaging.
std::vector<uint8_t> clip_frame(const std::vector<double>& tex, int t, bool half) {
  std::vector<uint8_t> full(static_cast<size_t>(kW * kH * 3));
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      const double v = tex[static_cast<size_t>((y + t) * kTexW + x + 2 * t)];
      uint8_t* p = full.data() + static_cast<size_t>((y * kW + x) * 3);
      p[0] = static_cast<uint8_t>(std::clamp(0.8 * v + 30, 0.0, 255.0));
      p[1] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      p[2] = static_cast<uint8_t>(std::clamp(1.1 * v - 10, 0.0, 255.0));
    }
  if (!half) return full;
  std::vector<uint8_t> small(static_cast<size_t>(kW / 2 * kH / 2 * 3));
  for (int y = 0; y < kH / 2; ++y)
    for (int x = 0; x < kW / 2; ++x)
      for (int c = 0; c < 3; ++c) {
        int sum = 2;  // rounds half up
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) sum += full[static_cast<size_t>(((2 * y + dy) * kW + 2 * x + dx) * 3 + c)];
        small[static_cast<size_t>((y * (kW / 2) + x) * 3 + c)] = static_cast<uint8_t>(sum / 4);
      }
  return small;
}

std::string write_clip(const std::string& name, const std::vector<double>& tex, bool half, int crf) {
  const std::string path = scratch(name);
  const int w = half ? kW / 2 : kW, h = half ? kH / 2 : kH;
  VideoWriter writer(path, {.width = w, .height = h, .fps = {25, 1}, .codecs = {"libx264"}, .crf = crf});
  EXPECT_EQ(writer.codec(), "libx264");
  for (int t = 0; t < kFrames; ++t) writer.write(clip_frame(tex, t, half).data());
  writer.close();
  return path;
}

ClipFingerprint fingerprint_file(const std::string& path) {
  VideoReader reader(path);
  ClipFingerprinter fp(reader.info().frame_count);
  Frame f;
  while (reader.next(f)) fp.add(f);
  EXPECT_EQ(fp.frames_seen(), kFrames) << path;
  return fp.result();
}

TEST(Dedup, ReencodedClipIsANearDuplicateAndAnotherClipIsNot) {
  set_libav_log_level(AV_LOG_ERROR);  // no libx264 statistics on stderr
  const std::vector<double> scene = texture(1), other_scene = texture(2);
  const ClipFingerprint good = fingerprint_file(write_clip("a_crf18.mp4", scene, false, 18));
  const ClipFingerprint poor = fingerprint_file(write_clip("a_crf35.mp4", scene, false, 35));
  const ClipFingerprint half = fingerprint_file(write_clip("a_half.mp4", scene, true, 18));
  const ClipFingerprint other = fingerprint_file(write_clip("b_crf18.mp4", other_scene, false, 18));
  fs::remove_all(fs::path(scratch("x")).parent_path());
  ASSERT_EQ(good.hashes.size(), 8u);
  const double max_distance = DedupOptions{}.max_distance;
  const double d_poor = fingerprint_distance(good, poor), d_half = fingerprint_distance(good, half);
  const double d_other = fingerprint_distance(good, other);
  std::printf("pHash distance: crf 18 vs crf 35 %.3f, vs half size %.3f, vs another clip %.3f bits\n", d_poor, d_half,
              d_other);
  EXPECT_LE(d_poor, max_distance);
  EXPECT_LE(d_half, max_distance);
  EXPECT_LE(fingerprint_distance(poor, half), max_distance);
  EXPECT_GE(d_other, 20.0);
  EXPECT_GE(fingerprint_distance(poor, other), 20.0);

  const DedupResult r = dedup_clips({{good, 1.0}, {other, 1.0}, {poor, 0.5}, {half, 0.8}});
  EXPECT_EQ(r.groups, 2);
  EXPECT_EQ(r.group, (std::vector<int>{0, 1, 0, 0}));
  EXPECT_EQ(r.keep, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(r.kept_of, (std::vector<int>{0, 1, 0, 0}));
}

// ---- grouping ------------------------------------------------------------------------------------

// flip `bits` distinct random bits of h.
uint64_t flip(uint64_t h, int bits, std::mt19937_64& rng) {
  uint64_t mask = 0;
  while (std::popcount(mask) < bits) mask |= uint64_t{1} << (rng() % 64);
  return h ^ mask;
}

ClipFingerprint random_fingerprint(std::mt19937_64& rng, int samples = 8) {
  ClipFingerprint f;
  for (int i = 0; i < samples; ++i) f.hashes.push_back(rng());
  return f;
}

ClipFingerprint perturbed(const ClipFingerprint& f, int bits_per_sample, std::mt19937_64& rng) {
  ClipFingerprint g = f;
  for (auto& h : g.hashes) h = flip(h, bits_per_sample, rng);
  return g;
}

// The reference: transitive closure of the explicit adjacency matrix by depth-first search.
std::vector<int> naive_groups(const std::vector<DedupItem>& items, double max_distance) {
  const size_t n = items.size();
  std::vector<int> group(n, -1);
  int next = 0;
  for (size_t s = 0; s < n; ++s) {
    if (group[s] >= 0) continue;
    std::vector<size_t> stack{s};
    group[s] = next;
    while (!stack.empty()) {
      const size_t a = stack.back();
      stack.pop_back();
      for (size_t b = 0; b < n; ++b)
        if (group[b] < 0 && fingerprint_distance(items[a].fingerprint, items[b].fingerprint) <= max_distance) {
          group[b] = next;
          stack.push_back(b);
        }
    }
    ++next;
  }
  return group;
}

TEST(Dedup, GroupsKeepTheHighestPriorityChainsJoinSingletonsStayAlone) {
  std::mt19937_64 rng(11);
  const ClipFingerprint a = random_fingerprint(rng), c = random_fingerprint(rng), s = random_fingerprint(rng);
  const ClipFingerprint a1 = perturbed(a, 3, rng), a2 = perturbed(a, 2, rng);
  // Chain c - c1 - c2: 5 bits per step, so c and c2 are 10 bits apart (> 6) but joined through c1.
  ClipFingerprint c1 = perturbed(c, 5, rng), c2 = c1;
  for (size_t i = 0; i < c2.hashes.size(); ++i) {
    uint64_t step;
    do step = flip(0, 5, rng); while ((step & (c1.hashes[i] ^ c.hashes[i])) != 0);  // 5 new bits
    c2.hashes[i] ^= step;
  }
  ASSERT_DOUBLE_EQ(fingerprint_distance(c, c2), 10.0);
  const std::vector<DedupItem> items = {
      {a, 1.0},    // 0: group 0
      {c2, 2.0},   // 1: group 1
      {s, 0.0},    // 2: group 2, alone
      {a1, 5.0},   // 3: group 0, ties with 4: the lower index is kept
      {c, 9.0},    // 4: group 1, kept
      {a2, 5.0},   // 5: group 0
      {c1, -1.0},  // 6: group 1
  };
  for (const CandidateSearch search : {CandidateSearch::all_pairs, CandidateSearch::banded}) {
    const DedupResult r = dedup_clips(items, {.max_distance = 6.0, .search = search});
    EXPECT_EQ(r.groups, 3);
    EXPECT_EQ(r.group, (std::vector<int>{0, 1, 2, 0, 1, 0, 1}));
    EXPECT_EQ(r.kept_of, (std::vector<int>{3, 4, 2, 3, 4, 3, 4}));
    EXPECT_EQ(r.keep, (std::vector<bool>{false, false, true, true, true, false, false}));
    EXPECT_EQ(r.group, naive_groups(items, 6.0));
  }
  // A threshold below the chain's steps splits it; 0 keeps every distinct fingerprint.
  EXPECT_EQ(dedup_clips(items, {.max_distance = 4.0}).group, (std::vector<int>{0, 1, 2, 0, 3, 0, 4}));
  EXPECT_EQ(dedup_clips(items, {.max_distance = 0.0}).groups, 7);
  EXPECT_EQ(dedup_clips({}).groups, 0);
  EXPECT_THROW(dedup_clips(items, {.max_distance = std::nan("")}), Error);
}

TEST(Dedup, BandedSearchEqualsAllPairs) {
  std::mt19937_64 rng(5);
  std::vector<DedupItem> items;
  // 150 random clips, each with 0..3 planted near-duplicates at 0..9 bits per sample (around the
  // threshold), some chained off the previous copy; plus short fingerprints (clips shorter than
  // 8 frames: 1, 3, 5 samples, and one empty) that take the all-pairs path across lengths.
  for (int base = 0; base < 150; ++base) {
    const int length = base % 10 == 9 ? static_cast<int>(1 + 2 * (rng() % 3)) : 8;
    ClipFingerprint f = random_fingerprint(rng, length);
    items.push_back({f, static_cast<double>(rng() % 5)});
    const int copies = static_cast<int>(rng() % 4);
    for (int k = 0; k < copies; ++k) {
      const ClipFingerprint g = perturbed(f, static_cast<int>(rng() % 10), rng);
      items.push_back({g, static_cast<double>(rng() % 5)});
      if (rng() % 2) f = g;
    }
  }
  // Empty fingerprints (distance 64 to everything, so never merged, not even with each other) and
  // 30 identical ones (black clips; banded joins identical fingerprints up front).
  items.push_back({{}, 1.0});
  items.push_back({{}, 2.0});
  for (int k = 0; k < 30; ++k) items.push_back({{std::vector<uint64_t>(8, 0)}, static_cast<double>(k % 7)});
  std::shuffle(items.begin(), items.end(), rng);
  for (const double max_distance : {0.0, 3.0, 6.0, 7.5, 12.0}) {
    const DedupResult all = dedup_clips(items, {.max_distance = max_distance, .search = CandidateSearch::all_pairs});
    const DedupResult band = dedup_clips(items, {.max_distance = max_distance, .search = CandidateSearch::banded});
    EXPECT_EQ(band.group, all.group) << max_distance;
    EXPECT_EQ(band.keep, all.keep) << max_distance;
    EXPECT_EQ(band.kept_of, all.kept_of) << max_distance;
    EXPECT_EQ(all.group, naive_groups(items, max_distance)) << max_distance;
    EXPECT_LT(all.groups, static_cast<int>(items.size())) << max_distance;  // duplicates were found
    EXPECT_LT(band.pairs_compared, all.pairs_compared) << max_distance;
    std::printf("max_distance %.1f: %zu items, %d groups; distances computed: all pairs %lld, banded %lld\n",
                max_distance, items.size(), all.groups, static_cast<long long>(all.pairs_compared),
                static_cast<long long>(band.pairs_compared));
  }
}

}  // namespace
}  // namespace foundry::video

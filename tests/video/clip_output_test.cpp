// The output side of curation (video/clip_transcoder.h, video/webdataset.h).
//
// Transcoding: a synthetic 25 fps H.264 video whose frame t shows t in binary (8 black/white
// blocks across the top, robust to compression and downscaling; the background changes at two
// cuts) is cut into spans; every output frame is decoded again and its number read back, so the
// source frame each output frame shows is checked against a naive transcription of the rule
// (nearest source frame to start + k/fps_out, exact integer arithmetic, ties to the earlier frame).
// Sizes follow the stated rules; on_frame sees exactly the frames written; no .partial file is left;
// a span beyond the end gives an error result and no file.
//
// Shards: tar archives are read back by GNU tar (/usr/bin/tar -tvf / -xf), an independent reader;
// bucket names for typical sizes; shard rollover and part folders.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "foundry/core/check.h"
#include "foundry/video/clip_transcoder.h"
#include "foundry/video/video_writer.h"
#include "foundry/video/webdataset.h"
#include "testing.h"

namespace foundry::video {
namespace {

namespace fs = std::filesystem;

constexpr int kW = 192, kH = 108, kFrames = 100, kBits = 8;

fs::path scratch_dir() {
  const fs::path d = fs::path(::testing::TempDir()) / ("foundry_clipout_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
std::string scratch(const std::string& name) { return (scratch_dir() / name).string(); }

// Frame t: bit b of t as a 24x36 block (white 235 / black 20) at x = 24 b, y = 0; below, a field
// whose colour changes at frames 40 and 70.
std::vector<uint8_t> synthetic_frame(int t) {
  const uint8_t fields[3][3] = {{200, 60, 30}, {40, 50, 190}, {60, 170, 70}};  // BGR
  const int scene = t < 40 ? 0 : t < 70 ? 1 : 2;
  std::vector<uint8_t> f(size_t(kW * kH * 3));
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x)
      for (int c = 0; c < 3; ++c) {
        const uint8_t bit = ((t >> (x / 24)) & 1) ? 235 : 20;
        f[size_t((y * kW + x) * 3 + c)] = y < 36 ? bit : fields[scene][c];
      }
  return f;
}

// The number a frame of any size shows: the blocks' centres, thresholded.
int frame_number(const Frame& f) {
  int t = 0;
  for (int b = 0; b < kBits; ++b) {
    const int x = int((24 * b + 12) * double(f.width) / kW), y = int(18 * double(f.height) / kH);
    const uint8_t* p = f.pixel(y, x);
    if ((p[0] + p[1] + p[2]) / 3 > 128) t |= 1 << b;
  }
  return t;
}

const std::string& source_video() {
  static const std::string path = [] {
    const std::string p = scratch("source.mp4");
    VideoWriter w(p, {.width = kW, .height = kH, .fps = {25, 1}, .crf = 12, .gop = 10, .threads = 1});
    for (int t = 0; t < kFrames; ++t) w.write(synthetic_frame(t).data());
    w.close();
    return p;
  }();
  return path;
}

struct Decoded {
  VideoInfo info;
  std::vector<int> numbers;  // frame_number of each frame
  int64_t errors = 0;
};
Decoded decode(const std::string& path) {
  ReaderOptions o;
  o.threads = 1;
  VideoReader r(path, o);
  Decoded d;
  d.info = r.info();
  Frame f;
  while (r.next(f)) d.numbers.push_back(frame_number(f));
  d.errors = r.errors();
  return d;
}

// The rule, transcribed naively: output frame k at start/25 + k/fps_out shows the source frame j in
// [start, end) nearest it, ties to the earlier one. Times in units of 1/(25*num) s: exact integers
// (fps_out = num/den: t_k = (start*num + 25*den*k) / (25*num)).
std::vector<int> expected_frames(int start, int end, Rational fps_out) {
  const int64_t num = fps_out.num, den = fps_out.den;
  const int64_t n = (2 * int64_t(end - start) * num + 25 * den) / (50 * den);  // round((end-start)/25 * fps) half up
  std::vector<int> out;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t t = start * num + 25 * den * k;
    int best = start;
    for (int j = start; j < end; ++j)
      if (std::llabs(j * num - t) < std::llabs(best * num - t)) best = j;
    out.push_back(best);
  }
  return out;
}

std::vector<std::string> partial_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(scratch_dir()))
    if (e.path().extension() == ".partial") out.push_back(e.path().string());
  return out;
}

ClipSpan frames_span(int64_t a, int64_t b) { return {.start_frame = a, .end_frame = b}; }

TEST(ClipTranscoder, SpansAtTheSourceRateAndSize) {
  const std::vector<ClipSpan> spans = {frames_span(10, 35), frames_span(40, 70), frames_span(75, 100)};
  const std::vector<std::string> outs = {scratch("a0.mp4"), scratch("a1.mp4"), scratch("a2.mp4")};
  std::map<size_t, std::vector<int>> seen;
  const auto results = transcode_clips(source_video(), spans, outs, {},
                                       [&](size_t i, const Frame& f) { seen[i].push_back(frame_number(f)); });
  ASSERT_EQ(results.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& r = results[i];
    SCOPED_TRACE(outs[i]);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.path, outs[i]);
    EXPECT_EQ(r.codec, "libx264");
    EXPECT_EQ(r.width, kW);
    EXPECT_EQ(r.height, kH);
    EXPECT_EQ(r.fps.num, 25);
    const int a = int(spans[i].start_frame), b = int(spans[i].end_frame);
    EXPECT_EQ(r.frames, b - a);
    EXPECT_DOUBLE_EQ(r.duration, (b - a) / 25.0);
    ASSERT_TRUE(fs::exists(outs[i]));
    EXPECT_EQ(r.bytes, int64_t(fs::file_size(outs[i])));
    std::vector<int> want;
    for (int j = a; j < b; ++j) want.push_back(j);
    const Decoded d = decode(outs[i]);
    EXPECT_EQ(d.errors, 0);
    EXPECT_EQ(d.info.codec, "h264");
    EXPECT_EQ(d.info.pixel_format, "yuv420p");
    EXPECT_EQ(d.info.frame_count, b - a);
    EXPECT_NEAR(d.info.duration, (b - a) / 25.0, 0.5 / 25);
    EXPECT_EQ(d.numbers, want);  // first, last and every frame in between
    EXPECT_EQ(seen[i], want);    // on_frame: exactly the frames written
  }
  EXPECT_TRUE(partial_files().empty());
}

TEST(ClipTranscoder, FrameRateConversionPicksTheNearestFrames) {
  const std::vector<ClipSpan> spans = {frames_span(10, 35), frames_span(41, 70)};
  for (Rational fps : {Rational{25, 2}, Rational{30, 1}}) {
    SCOPED_TRACE(fps.value());
    const std::vector<std::string> outs = {scratch("r0.mp4"), scratch("r1.mp4")};
    TranscodeOptions o;
    o.fps = fps;
    o.seek_ahead = 0.1;  // the second span is reached by a seek
    std::map<size_t, std::vector<int>> seen;
    const auto results =
        transcode_clips(source_video(), spans, outs, o, [&](size_t i, const Frame& f) { seen[i].push_back(frame_number(f)); });
    for (size_t i = 0; i < spans.size(); ++i) {
      const std::vector<int> want = expected_frames(int(spans[i].start_frame), int(spans[i].end_frame), fps);
      EXPECT_EQ(results[i].error, "");
      EXPECT_EQ(results[i].frames, int64_t(want.size()));
      EXPECT_DOUBLE_EQ(results[i].duration, double(want.size()) / fps.value());
      const Decoded d = decode(outs[i]);
      EXPECT_EQ(d.info.fps.value(), fps.value());
      EXPECT_EQ(d.numbers, want);
      EXPECT_EQ(seen[i], want);
    }
  }
  // The transcription on known answers: 25 -> 12.5 keeps every second frame (span of 25 frames ->
  // round(12.5) = 13 frames); 25 -> 30 duplicates every fifth (t = 0.1 s lies between frames 2
  // and 3 exactly: the earlier).
  EXPECT_EQ(expected_frames(10, 35, {25, 2}), (std::vector<int>{10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34}));
  EXPECT_EQ(expected_frames(0, 5, {30, 1}), (std::vector<int>{0, 1, 2, 2, 3, 4}));
}

TEST(ClipTranscoder, SizeRules) {
  const auto size = [](int sw, int sh, int w, int h, int cap) {
    TranscodeOptions o;
    o.width = w;
    o.height = h;
    o.max_short_side = cap;
    int ow = 0, oh = 0;
    transcode_size(sw, sh, o, ow, oh);
    return std::pair{ow, oh};
  };
  EXPECT_EQ(size(192, 108, 0, 0, 0), std::pair(192, 108));
  EXPECT_EQ(size(192, 108, 96, 0, 0), std::pair(96, 54));   // one 0 keeps the aspect ratio
  EXPECT_EQ(size(192, 108, 0, 54, 0), std::pair(96, 54));
  EXPECT_EQ(size(192, 108, 70, 0, 0), std::pair(70, 40));   // 39.375 -> nearest even 40
  EXPECT_EQ(size(192, 108, 71, 33, 0), std::pair(72, 34));  // both given: each rounded to even
  EXPECT_EQ(size(641, 481, 0, 0, 0), std::pair(642, 482));  // odd source: halves round up
  EXPECT_EQ(size(192, 108, 0, 0, 50), std::pair(88, 50));   // 88.9 x 50
  EXPECT_EQ(size(192, 108, 0, 0, 51), std::pair(90, 50));   // 90.7 x 51: the short side rounds down
  EXPECT_EQ(size(108, 192, 0, 0, 50), std::pair(50, 88));
  EXPECT_EQ(size(192, 108, 0, 0, 200), std::pair(192, 108));  // never upscale
  EXPECT_EQ(size(1920, 1080, 0, 0, 720), std::pair(1280, 720));
  EXPECT_THROW(size(192, 108, -2, 0, 0), Error);

  // A real downscale (area): the frames still read back as the right numbers.
  TranscodeOptions o;
  o.max_short_side = 50;
  std::vector<std::pair<int, int>> sizes;
  const auto results = transcode_clips(source_video(), {frames_span(20, 30)}, {scratch("small.mp4")}, o,
                                       [&](size_t, const Frame& f) { sizes.emplace_back(f.width, f.height); });
  ASSERT_EQ(results[0].error, "");
  EXPECT_EQ(results[0].width, 88);
  EXPECT_EQ(results[0].height, 50);
  const Decoded d = decode(scratch("small.mp4"));
  EXPECT_EQ(d.info.width, 88);
  EXPECT_EQ(d.info.height, 50);
  EXPECT_EQ(d.numbers, (std::vector<int>{20, 21, 22, 23, 24, 25, 26, 27, 28, 29}));
  EXPECT_EQ(sizes, (std::vector<std::pair<int, int>>(10, {88, 50})));
}

TEST(ClipTranscoder, FrameRatesFromNumbers) {
  auto same = [](Rational a, Rational b) { return a.num == b.num && a.den == b.den; };
  EXPECT_TRUE(same(frame_rate_from(24), {24, 1}));
  EXPECT_TRUE(same(frame_rate_from(29.97), {30000, 1001}));
  EXPECT_TRUE(same(frame_rate_from(23.976), {24000, 1001}));
  EXPECT_TRUE(same(frame_rate_from(59.94), {60000, 1001}));
  EXPECT_TRUE(same(frame_rate_from(30000.0 / 1001), {30000, 1001}));
  EXPECT_TRUE(same(frame_rate_from(12.5), {25, 2}));
  EXPECT_TRUE(same(frame_rate_from(7.3), {73, 10}));
  EXPECT_ERROR_MENTIONS(frame_rate_from(0), "frame rate 0");
}

TEST(ClipTranscoder, SpansBeyondTheEndAndBadPaths) {
  // Times instead of frames; one span is past the end, one crosses it.
  const std::vector<ClipSpan> spans = {{.start_time = 3.6, .end_time = 4.0},
                                       {.start_time = 4.8, .end_time = 6.0},
                                       {.start_time = 3.8, .end_time = 4.4}};
  const std::vector<std::string> outs = {scratch("e0.mp4"), scratch("e1.mp4"), scratch("e2.mp4")};
  const auto results = transcode_clips(source_video(), spans, outs, {});
  EXPECT_EQ(results[0].error, "");
  EXPECT_EQ(results[0].frames, 10);
  EXPECT_EQ(decode(outs[0]).numbers, (std::vector<int>{90, 91, 92, 93, 94, 95, 96, 97, 98, 99}));
  EXPECT_EQ(results[1].path, "");
  EXPECT_EQ(results[1].frames, 0);
  EXPECT_NE(results[1].error.find("no frame decoded"), std::string::npos) << results[1].error;
  EXPECT_FALSE(fs::exists(outs[1]));
  EXPECT_EQ(results[2].frames, 5);  // frames 95..99 of the 15 asked for
  EXPECT_NE(results[2].error.find("the source ends at 4.000 s"), std::string::npos) << results[2].error;
  EXPECT_EQ(decode(outs[2]).numbers, (std::vector<int>{95, 96, 97, 98, 99}));
  EXPECT_TRUE(partial_files().empty());

  try {
    transcode_clips(scratch("missing.mp4"), {frames_span(0, 5)}, {scratch("m.mp4")}, {});
    ADD_FAILURE() << "no error for a missing source";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.mp4"), std::string::npos) << e.what();
  }
  const std::string bad = scratch("no_such_dir/c.mp4");
  try {
    transcode_clips(source_video(), {frames_span(0, 5), frames_span(2, 8)}, {scratch("ok.mp4"), bad}, {});
    ADD_FAILURE() << "no error for an output in a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_dir/c.mp4"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(partial_files().empty());
}

TEST(ClipTranscoder, DamageInsideASpanIsRecordedAndTheClipKeepsWhatDecoded) {
  // Matroska is streamable: a file cut at 2/3 opens and decodes up to the cut.
  const std::string whole = scratch("whole.mkv"), cut = scratch("cut.mkv");
  {
    VideoWriter w(whole, {.width = kW, .height = kH, .fps = {25, 1}, .crf = 12, .gop = 10, .threads = 1});
    for (int t = 0; t < kFrames; ++t) w.write(synthetic_frame(t).data());
    w.close();
    std::ifstream in(whole, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() * 2 / 3);
  }
  const std::vector<std::string> outs = {scratch("d0.mp4"), scratch("d1.mp4")};
  const auto results = transcode_clips(cut, {frames_span(0, 20), frames_span(40, 100)}, outs, {});
  EXPECT_EQ(results[0].error, "");
  EXPECT_EQ(results[0].decode_errors, 0);
  EXPECT_EQ(results[0].frames, 20);
  const auto& r = results[1];
  EXPECT_GT(r.decode_errors, 0);
  EXPECT_NE(r.error.find("cut.mkv"), std::string::npos) << r.error;
  EXPECT_GT(r.frames, 5);
  EXPECT_LT(r.frames, 60);
  ASSERT_EQ(r.path, outs[1]);
  const Decoded d = decode(outs[1]);
  ASSERT_EQ(int64_t(d.numbers.size()), r.frames);
  EXPECT_EQ(d.numbers.front(), 40);
  for (size_t k = 1; k < d.numbers.size(); ++k) EXPECT_GE(d.numbers[k], d.numbers[k - 1]);  // gaps: the previous frame held
  EXPECT_LT(d.numbers.back(), 100);
  std::cout << "cut mkv: clip [40, 100) kept " << r.frames << " frames; " << r.error << "\n";
  EXPECT_TRUE(partial_files().empty());
}

// ---- tar / shards ----------------------------------------------------------------------------------

std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << command;
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// `tar -tvf --numeric-owner` lines: "-rw-r--r-- 0/0   SIZE 1970-01-01 00:00 NAME".
struct Listed {
  std::string mode, owner, name;
  int64_t size = 0;
};
std::vector<Listed> list_tar(const std::string& path) {
  std::vector<Listed> out;
  std::istringstream lines(run("/usr/bin/tar --numeric-owner --utc -tvf '" + path + "'"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    Listed l;
    std::string date, time;
    f >> l.mode >> l.owner >> l.size >> date >> time;
    std::getline(f >> std::ws, l.name);
    out.push_back(l);
  }
  return out;
}

TEST(TarWriter, ReadBackBySystemTar) {
  const std::string long_dir = std::string(60, 'd') + "/" + std::string(60, 'e') + "/";
  const std::string prefixed = long_dir + std::string(90, 'f') + ".mp4";  // 212 bytes: prefix + name
  const std::string pax = std::string(230, 'g') + ".json";                 // one 235-byte component: pax
  std::string binary(1000, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = char((i * 7) % 256);
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"clip0.mp4", binary}, {"clip0.json", "{\"a\": 1}\n"}, {prefixed, "x"}, {pax, std::string(513, 'y')},
      {"empty.txt", ""}};
  const std::string path = scratch("t.tar");
  {
    TarWriter t(path);
    for (const auto& [n, b] : entries) t.add(n, b);
    EXPECT_FALSE(fs::exists(path));  // only the .partial until close()
    t.close();
  }
  ASSERT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(fs::file_size(path) % 10240, 0u);

  const std::vector<Listed> listed = list_tar(path);
  ASSERT_EQ(listed.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(listed[i].name, entries[i].first);
    EXPECT_EQ(listed[i].size, int64_t(entries[i].second.size()));
    EXPECT_EQ(listed[i].mode, "-rw-r--r--");
    EXPECT_EQ(listed[i].owner, "0/0");
  }
  const fs::path x = scratch_dir() / "extracted";
  fs::remove_all(x);
  fs::create_directories(x);
  run("/usr/bin/tar -xf '" + path + "' -C '" + x.string() + "'");
  for (const auto& [n, b] : entries) EXPECT_EQ(read_file((x / n).string()), b) << n;

  // Reproducible: the same entries give the same bytes.
  {
    TarWriter t(scratch("t2.tar"));
    for (const auto& [n, b] : entries) t.add(n, b);
    t.close();
  }
  EXPECT_EQ(read_file(path), read_file(scratch("t2.tar")));
  // Destroyed without close(): nothing under either name.
  {
    TarWriter t(scratch("abandoned.tar"));
    t.add("a.txt", "a");
  }
  EXPECT_FALSE(fs::exists(scratch("abandoned.tar")));
  EXPECT_FALSE(fs::exists(scratch("abandoned.tar.partial")));
}

TEST(ShardBucket, TypicalSizesAndFrameCounts) {
  EXPECT_EQ(shard_bucket(1280, 720, 120), "resolution_lt_1080/aspect_ratio_16_9/frames_0_255");
  EXPECT_EQ(shard_bucket(1920, 1080, 256), "resolution_gt_1080/aspect_ratio_16_9/frames_256_511");
  EXPECT_EQ(shard_bucket(720, 1280, 255), "resolution_lt_1080/aspect_ratio_9_16/frames_0_255");
  EXPECT_EQ(shard_bucket(640, 480, 1500), "resolution_lt_720/aspect_ratio_4_3/frames_1280_1535");
  EXPECT_EQ(shard_bucket(3840, 2160, 600), "resolution_gt_1080/aspect_ratio_16_9/frames_512_767");
  EXPECT_EQ(shard_bucket(1080, 1080, 0), "resolution_gt_1080/aspect_ratio_1_1/frames_0_255");
  EXPECT_EQ(shard_bucket(1080, 1440, 48), "resolution_gt_1080/aspect_ratio_3_4/frames_0_255");
  EXPECT_EQ(shard_bucket(1078, 720, 48), "resolution_lt_1080/aspect_ratio_4_3/frames_0_255");  // 1.497
  EXPECT_EQ(shard_bucket(1100, 1000, 48), "resolution_lt_1080/aspect_ratio_1_1/frames_0_255");  // 1.1
  EXPECT_EQ(shard_bucket(650, 1000, 48), "resolution_lt_720/aspect_ratio_9_16/frames_0_255");  // .65: the bin's closed end
  EXPECT_EQ(shard_bucket(4000, 200, 48), "resolution_lt_720/aspect_ratio_16_9/frames_0_255");  // 20: clamped
  EXPECT_EQ(shard_bucket(1280, 720, 100, 64), "resolution_lt_1080/aspect_ratio_16_9/frames_64_127");
  EXPECT_THROW(shard_bucket(0, 720, 1), Error);
}

TEST(ShardWriter, RolloverPartsAndKeys) {
  const fs::path root = scratch_dir() / "shards";
  fs::remove_all(root);
  const std::string a = shard_bucket(1280, 720, 100), b = shard_bucket(640, 480, 300);
  {
    ShardWriter w(root.string(), /*samples_per_shard=*/3, /*shards_per_part=*/2);
    for (int i = 0; i < 7; ++i) w.add(a, fmt::format("clip_{:03d}", i), "mp4-" + std::to_string(i), "{}");
    for (int i = 0; i < 2; ++i) w.add(b, fmt::format("other_{}", i), "m", "{\"i\": " + std::to_string(i) + "}");
    EXPECT_THROW(w.add(a, "clip.0", "", ""), Error);    // a dot splits WebDataset keys
    EXPECT_THROW(w.add(a, "clip_000", "", ""), Error);  // already in the bucket
    w.close();
    EXPECT_EQ(w.shards().size(), 8u);  // a: 3 shards, b: 1 shard; video + metas each
  }
  const auto names = [](const fs::path& p) {
    std::vector<std::string> out;
    for (const Listed& l : list_tar(p.string())) out.push_back(l.name);
    return out;
  };
  const fs::path va = root / a / "video", ma = root / a / "metas";
  EXPECT_EQ(names(va / "part_000000/000000.tar"), (std::vector<std::string>{"clip_000.mp4", "clip_001.mp4", "clip_002.mp4"}));
  EXPECT_EQ(names(va / "part_000000/000001.tar"), (std::vector<std::string>{"clip_003.mp4", "clip_004.mp4", "clip_005.mp4"}));
  EXPECT_EQ(names(va / "part_000001/000002.tar"), (std::vector<std::string>{"clip_006.mp4"}));
  EXPECT_EQ(names(ma / "part_000000/000001.tar"), (std::vector<std::string>{"clip_003.json", "clip_004.json", "clip_005.json"}));
  EXPECT_EQ(names(ma / "part_000001/000002.tar"), (std::vector<std::string>{"clip_006.json"}));
  EXPECT_EQ(names(root / b / "metas/part_000000/000000.tar"), (std::vector<std::string>{"other_0.json", "other_1.json"}));
  const fs::path x = scratch_dir() / "shard_x";
  fs::remove_all(x);
  fs::create_directories(x);
  run("/usr/bin/tar -xf '" + (va / "part_000000/000001.tar").string() + "' -C '" + x.string() + "'");
  EXPECT_EQ(read_file((x / "clip_004.mp4").string()), "mp4-4");
  EXPECT_TRUE(partial_files().empty());
}

}  // namespace
}  // namespace foundry::video
